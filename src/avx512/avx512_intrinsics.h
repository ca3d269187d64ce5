/* The one place that chooses where src/avx512's intrinsics come from:
 *   native build    : <immintrin.h>, real AVX-512 instructions;
 *   I8T_AVX512_EMULATED (cmake -DI8T_AVX512_EMULATION=ON): SIMDe's
 *                     <simde/x86/avx512.h> with native aliases, built with
 *                     -mavx2 so that the same sources run on AVX2-only CPUs.
 *
 * SIMDe 0.7.4 (Debian 12) lacks several AVX-512 intrinsics. The kernels use
 * a small set that it has, plus the i8t_mm512_* shims below: real
 * instructions natively, two 256-bit AVX2 halves under emulation (each one
 * checked against scalar C by tests/test_avx512_shim.c in the emulation
 * build). Its _mm512_madd_epi16 alias is broken: the kernels do not use it. */
#ifndef INT8TRAIN_AVX512_INTRINSICS_H
#define INT8TRAIN_AVX512_INTRINSICS_H

#include <stdint.h>

#ifdef I8T_AVX512_EMULATED
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#else
#include <immintrin.h>
#endif

#ifdef I8T_AVX512_EMULATED

/* The two 256-bit halves of a 512-bit vector, and back. */
static inline __m256i i8t_mm512_lo256(__m512i v) { return _mm512_castsi512_si256(v); }
static inline __m256i i8t_mm512_hi256(__m512i v) { return _mm512_extracti64x4_epi64(v, 1); }
static inline __m512i i8t_mm512_join256(__m256i lo, __m256i hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

static inline __m512i i8t_mm512_cvttps_epi32(__m512 v) {
  __m512i b = _mm512_castps_si512(v);
  return i8t_mm512_join256(_mm256_cvttps_epi32(_mm256_castsi256_ps(i8t_mm512_lo256(b))),
                           _mm256_cvttps_epi32(_mm256_castsi256_ps(i8t_mm512_hi256(b))));
}

static inline __m512 i8t_mm512_cvtepi32_ps(__m512i v) {
  __m256 lo = _mm256_cvtepi32_ps(i8t_mm512_lo256(v)), hi = _mm256_cvtepi32_ps(i8t_mm512_hi256(v));
  return _mm512_castsi512_ps(i8t_mm512_join256(_mm256_castps_si256(lo), _mm256_castps_si256(hi)));
}

/* vrndscaleps to nearest-even / towards -inf. SIMDe's emulated
 * _mm512_roundscale_ps gets the directed modes wrong (floor(-0.06) = 0). */
#define I8T_MM512_ROUND_HALVES(v, mode)                                                      \
  _mm512_castsi512_ps(i8t_mm512_join256(                                                     \
      _mm256_castps_si256(_mm256_round_ps(                                                   \
          _mm256_castsi256_ps(i8t_mm512_lo256(_mm512_castps_si512(v))), (mode))),            \
      _mm256_castps_si256(_mm256_round_ps(                                                   \
          _mm256_castsi256_ps(i8t_mm512_hi256(_mm512_castps_si512(v))), (mode)))))
static inline __m512 i8t_mm512_round_even_ps(__m512 v) {
  return I8T_MM512_ROUND_HALVES(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
static inline __m512 i8t_mm512_floor_ps(__m512 v) {
  return I8T_MM512_ROUND_HALVES(v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
}

/* vpmovdw: low 16 bits of each lane, in order (truncation). */
static inline __m256i i8t_mm512_cvtepi32_epi16(__m512i v) {
  const __m256i m = _mm256_set1_epi32(0xFFFF);
  __m256i w = _mm256_packus_epi32(_mm256_and_si256(i8t_mm512_lo256(v), m),
                                  _mm256_and_si256(i8t_mm512_hi256(v), m));
  return _mm256_permute4x64_epi64(w, 0xD8);
}

/* vpmovdb: low byte of each lane, in order (truncation). */
static inline __m128i i8t_mm512_cvtepi32_epi8(__m512i v) {
  const __m512i m = _mm512_set1_epi32(0xFF);
  __m256i w = i8t_mm512_cvtepi32_epi16(_mm512_and_si512(v, m));
  return _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
}

/* vpmovzxbw / vpmovsxdq / vpmovzxwd from a 256-bit source, in order. */
static inline __m512i i8t_mm512_cvtepu8_epi16(__m256i v) {
  return i8t_mm512_join256(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(v)),
                           _mm256_cvtepu8_epi16(_mm256_extracti128_si256(v, 1)));
}
static inline __m512i i8t_mm512_cvtepi32_epi64(__m256i v) {
  return i8t_mm512_join256(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)),
                           _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1)));
}
static inline __m512i i8t_mm512_cvtepu16_epi32(__m256i v) {
  return i8t_mm512_join256(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(v)),
                           _mm256_cvtepu16_epi32(_mm256_extracti128_si256(v, 1)));
}

#else /* native */

static inline __m256i i8t_mm512_lo256(__m512i v) { return _mm512_castsi512_si256(v); }
static inline __m256i i8t_mm512_hi256(__m512i v) { return _mm512_extracti64x4_epi64(v, 1); }
static inline __m512i i8t_mm512_cvttps_epi32(__m512 v) { return _mm512_cvttps_epi32(v); }
static inline __m512 i8t_mm512_cvtepi32_ps(__m512i v) { return _mm512_cvtepi32_ps(v); }
static inline __m512 i8t_mm512_round_even_ps(__m512 v) {
  return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
static inline __m512 i8t_mm512_floor_ps(__m512 v) {
  return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
}
static inline __m256i i8t_mm512_cvtepi32_epi16(__m512i v) { return _mm512_cvtepi32_epi16(v); }
static inline __m128i i8t_mm512_cvtepi32_epi8(__m512i v) { return _mm512_cvtepi32_epi8(v); }
static inline __m512i i8t_mm512_cvtepu8_epi16(__m256i v) { return _mm512_cvtepu8_epi16(v); }
static inline __m512i i8t_mm512_cvtepu16_epi32(__m256i v) { return _mm512_cvtepu16_epi32(v); }
static inline __m512i i8t_mm512_cvtepi32_epi64(__m256i v) { return _mm512_cvtepi32_epi64(v); }

#endif

#endif
