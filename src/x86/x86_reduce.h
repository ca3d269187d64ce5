/* Horizontal min / max of 8 floats, shared by the AVX2 and AVX-512 vector
 * headers (AVX-512 folds its 16 lanes to 8 first). Lane order does not
 * matter: min and max of a NaN-free set do not depend on it. */
#ifndef INT8TRAIN_X86_REDUCE_H
#define INT8TRAIN_X86_REDUCE_H

#include <immintrin.h>

static inline float x86_hmin8(__m256 v) {
  __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_min_ps(m, _mm_movehl_ps(m, m));
  m = _mm_min_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

static inline float x86_hmax8(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

#endif
