/* The vector operations of the x86 templates (src/x86/) for AVX2: 8 float or
 * int32 lanes in a ymm register. src/avx512/avx512_vec.h defines the same
 * names for 16 lanes; the templates are written once against these names.
 * Every operation's lane semantics is stated where it matters for
 * bit-identity with the scalar kernels. */
#ifndef INT8TRAIN_AVX2_VEC_H
#define INT8TRAIN_AVX2_VEC_H

#include <immintrin.h>
#include <stdint.h>

#include "../x86/x86_reduce.h"

#define I8T_X86_ISA avx2
#define I8T_VLANES 8 /* int32 / float lanes per vector */

typedef __m256 i8t_vf;
typedef __m256i i8t_vi;

/* ---- float lanes ---- */
static inline i8t_vf vf_load(const float *p) { return _mm256_loadu_ps(p); }
static inline i8t_vf vf_set1(float x) { return _mm256_set1_ps(x); }
static inline i8t_vf vf_mul(i8t_vf a, i8t_vf b) { return _mm256_mul_ps(a, b); }
static inline i8t_vf vf_add(i8t_vf a, i8t_vf b) { return _mm256_add_ps(a, b); }
static inline i8t_vf vf_sub(i8t_vf a, i8t_vf b) { return _mm256_sub_ps(a, b); }
/* a < b ? a : b and a > b ? a : b: b when either is NaN, like the scalar
 * ternaries they replace. */
static inline i8t_vf vf_min(i8t_vf a, i8t_vf b) { return _mm256_min_ps(a, b); }
static inline i8t_vf vf_max(i8t_vf a, i8t_vf b) { return _mm256_max_ps(a, b); }
static inline i8t_vf vf_round_even(i8t_vf v) {
  return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
static inline i8t_vf vf_floor(i8t_vf v) {
  return _mm256_round_ps(v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
}
/* a < b ? 1.0f : 0.0f (ordered: false on NaN, like the scalar '<'). */
static inline i8t_vf vf_one_if_less(i8t_vf a, i8t_vf b) {
  return _mm256_and_ps(_mm256_cmp_ps(a, b, _CMP_LT_OQ), _mm256_set1_ps(1.0f));
}
static inline i8t_vi vf_to_vi_trunc(i8t_vf v) { return _mm256_cvttps_epi32(v); }
static inline i8t_vf vi_to_vf(i8t_vi v) { return _mm256_cvtepi32_ps(v); }
static inline i8t_vi vf_bits(i8t_vf v) { return _mm256_castps_si256(v); }
static inline float vf_hmin(i8t_vf v) { return x86_hmin8(v); }
static inline float vf_hmax(i8t_vf v) { return x86_hmax8(v); }

/* ---- int32 lanes ---- */
static inline i8t_vi vi_zero(void) { return _mm256_setzero_si256(); }
static inline i8t_vi vi_set1(int32_t x) { return _mm256_set1_epi32(x); }
static inline i8t_vi vi_iota(void) { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }
static inline i8t_vi vi_load(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline void vi_store(void *p, i8t_vi v) { _mm256_storeu_si256((__m256i *)p, v); }
/* The 32 bits at p in every lane (one load-port broadcast). */
static inline i8t_vi vi_bcast32(const void *p) {
  int32_t x;
  __builtin_memcpy(&x, p, sizeof x);
  return _mm256_set1_epi32(x);
}
static inline i8t_vi vi_add32(i8t_vi a, i8t_vi b) { return _mm256_add_epi32(a, b); }
static inline i8t_vi vi_sub32(i8t_vi a, i8t_vi b) { return _mm256_sub_epi32(a, b); }
static inline i8t_vi vi_mullo32(i8t_vi a, i8t_vi b) { return _mm256_mullo_epi32(a, b); }
static inline i8t_vi vi_xor(i8t_vi a, i8t_vi b) { return _mm256_xor_si256(a, b); }
static inline i8t_vi vi_or(i8t_vi a, i8t_vi b) { return _mm256_or_si256(a, b); }
#define VI_SRLI32(v, n) _mm256_srli_epi32((v), (n))
static inline i8t_vi vi_min32(i8t_vi a, i8t_vi b) { return _mm256_min_epi32(a, b); }
static inline i8t_vi vi_max32(i8t_vi a, i8t_vi b) { return _mm256_max_epi32(a, b); }
/* Lane c = the int16 pair (a[c], b[c]): two pixels' values of a channel
 * side by side, for the s16 dot step. */
static inline i8t_vi vi_pair16(const int16_t *a, const int16_t *b) {
  __m128i x = _mm_loadu_si128((const __m128i *)a), y = _mm_loadu_si128((const __m128i *)b);
  return _mm256_set_m128i(_mm_unpackhi_epi16(x, y), _mm_unpacklo_epi16(x, y));
}
static inline int vi_any_bit(i8t_vi v) { return !_mm256_testz_si256(v, v); }

/* Low byte of each lane of a, b, c, d -> 32 consecutive bytes (truncation,
 * like a C cast: masking to 0..255 makes the unsigned saturating packs exact). */
static inline void vi_store_lo8x4(void *q, i8t_vi a, i8t_vi b, i8t_vi c, i8t_vi d) {
  const __m256i m = _mm256_set1_epi32(0xFF);
  __m256i ab = _mm256_packus_epi32(_mm256_and_si256(a, m), _mm256_and_si256(b, m));
  __m256i cd = _mm256_packus_epi32(_mm256_and_si256(c, m), _mm256_and_si256(d, m));
  __m256i abcd = _mm256_packus_epi16(ab, cd); /* dwords: a0 b0 c0 d0 a1 b1 c1 d1 */
  abcd = _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256((__m256i *)q, abcd);
}
/* Low 16 bits of each lane of a, b -> 16 consecutive int16 (truncation). */
static inline void vi_store_lo16x2(void *q, i8t_vi a, i8t_vi b) {
  const __m256i m = _mm256_set1_epi32(0xFFFF);
  __m256i ab = _mm256_packus_epi32(_mm256_and_si256(a, m), _mm256_and_si256(b, m));
  _mm256_storeu_si256((__m256i *)q, _mm256_permute4x64_epi64(ab, 0xD8));
}

/* Saturating stores of lanes already in range (the callers clamp first):
 * int8 from four vectors or two, int16 from two; vi_store_lo8x4's packs
 * without its masks. */
static inline __m256i vi_packs8x4_ordered(i8t_vi a, i8t_vi b, i8t_vi c, i8t_vi d) {
  __m256i abcd = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
  return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}
static inline void vi_store_sat_s8x4(void *q, i8t_vi a, i8t_vi b, i8t_vi c, i8t_vi d) {
  _mm256_storeu_si256((__m256i *)q, vi_packs8x4_ordered(a, b, c, d));
}
/* uint8 from four vectors, any int32 lanes saturating to 0..255 (to int16,
 * then unsigned to bytes). */
static inline void vi_store_sat_u8x4(void *q, i8t_vi a, i8t_vi b, i8t_vi c, i8t_vi d) {
  __m256i abcd = _mm256_packus_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
  abcd = _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256((__m256i *)q, abcd);
}
static inline void vi_store_sat_s8x2(void *q, i8t_vi a, i8t_vi b) {
  _mm_storeu_si128((__m128i *)q, _mm256_castsi256_si128(vi_packs8x4_ordered(a, b, a, b)));
}
static inline void vi_store_sat_s16x2(void *q, i8t_vi a, i8t_vi b) {
  _mm256_storeu_si256((__m256i *)q, _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8));
}
/* The lanes sign-extended to int64 and stored to c[0..8), or added to it. */
static inline void vi_store_s64(int64_t *c, i8t_vi v, int accumulate) {
  __m256i lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(v));
  __m256i hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1));
  if (accumulate) {
    lo = _mm256_add_epi64(lo, _mm256_loadu_si256((const __m256i *)c));
    hi = _mm256_add_epi64(hi, _mm256_loadu_si256((const __m256i *)(c + 4)));
  }
  _mm256_storeu_si256((__m256i *)c, lo);
  _mm256_storeu_si256((__m256i *)(c + 4), hi);
}

/* ---- u8 / u16 lanes (4 * I8T_VLANES bytes per vector) ---- */
static inline i8t_vi vb_min_u8(i8t_vi a, i8t_vi b) { return _mm256_min_epu8(a, b); }
static inline i8t_vi vb_max_u8(i8t_vi a, i8t_vi b) { return _mm256_max_epu8(a, b); }
static inline i8t_vi vb_add16(i8t_vi a, i8t_vi b) { return _mm256_add_epi16(a, b); }
static inline i8t_vi vb_set1_u8(uint8_t x) { return _mm256_set1_epi8((char)x); }
/* Zero-extends the low / high half of the bytes of v to u16, in order. */
static inline i8t_vi vb_widen_u8_lo(i8t_vi v) {
  return _mm256_cvtepu8_epi16(_mm256_castsi256_si128(v));
}
static inline i8t_vi vb_widen_u8_hi(i8t_vi v) {
  return _mm256_cvtepu8_epi16(_mm256_extracti128_si256(v, 1));
}
/* Zero-extends the low / high half of the u16 lanes of v to u32, in order. */
static inline i8t_vi vb_widen_u16_lo(i8t_vi v) {
  return _mm256_cvtepu16_epi32(_mm256_castsi256_si128(v));
}
static inline i8t_vi vb_widen_u16_hi(i8t_vi v) {
  return _mm256_cvtepu16_epi32(_mm256_extracti128_si256(v, 1));
}

/* ---- GEMM step: acc += pairwise s16 x s16 products (vpmaddwd + vpaddd) ---- */
static inline i8t_vi vi_dot_s16(i8t_vi acc, i8t_vi a, i8t_vi b) {
  return _mm256_add_epi32(_mm256_madd_epi16(a, b), acc);
}

#endif
