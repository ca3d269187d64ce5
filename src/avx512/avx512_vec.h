/* The vector operations of the x86 templates (src/x86/) for AVX-512: 16
 * float or int32 lanes in a zmm register (the AVX2 twin is
 * src/avx2/avx2_vec.h). Only intrinsics that SIMDe 0.7.4 emulates correctly,
 * or the i8t_mm512_* shims of avx512_intrinsics.h, appear here. */
#ifndef INT8TRAIN_AVX512_VEC_H
#define INT8TRAIN_AVX512_VEC_H

#include "avx512_intrinsics.h"
#include "../x86/x86_reduce.h"

#define I8T_X86_ISA avx512vnni
#define I8T_VLANES 16

typedef __m512 i8t_vf;
typedef __m512i i8t_vi;

/* ---- float lanes ---- */
static inline i8t_vf vf_load(const float *p) { return _mm512_loadu_ps(p); }
static inline i8t_vf vf_set1(float x) { return _mm512_set1_ps(x); }
static inline i8t_vf vf_mul(i8t_vf a, i8t_vf b) { return _mm512_mul_ps(a, b); }
static inline i8t_vf vf_add(i8t_vf a, i8t_vf b) { return _mm512_add_ps(a, b); }
static inline i8t_vf vf_sub(i8t_vf a, i8t_vf b) { return _mm512_sub_ps(a, b); }
/* a < b ? a : b and a > b ? a : b (b when either is NaN). */
static inline i8t_vf vf_min(i8t_vf a, i8t_vf b) { return _mm512_min_ps(a, b); }
static inline i8t_vf vf_max(i8t_vf a, i8t_vf b) { return _mm512_max_ps(a, b); }
static inline i8t_vf vf_round_even(i8t_vf v) { return i8t_mm512_round_even_ps(v); }
static inline i8t_vf vf_floor(i8t_vf v) { return i8t_mm512_floor_ps(v); }
/* a < b ? 1.0f : 0.0f (ordered: false on NaN). */
static inline i8t_vf vf_one_if_less(i8t_vf a, i8t_vf b) {
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), _mm512_set1_ps(1.0f));
}
static inline i8t_vi vf_to_vi_trunc(i8t_vf v) { return i8t_mm512_cvttps_epi32(v); }
static inline i8t_vf vi_to_vf(i8t_vi v) { return i8t_mm512_cvtepi32_ps(v); }
static inline i8t_vi vf_bits(i8t_vf v) { return _mm512_castps_si512(v); }
static inline __m256 vf_lo8(i8t_vf v) { return _mm256_castsi256_ps(i8t_mm512_lo256(vf_bits(v))); }
static inline __m256 vf_hi8(i8t_vf v) { return _mm256_castsi256_ps(i8t_mm512_hi256(vf_bits(v))); }
static inline float vf_hmin(i8t_vf v) { return x86_hmin8(_mm256_min_ps(vf_lo8(v), vf_hi8(v))); }
static inline float vf_hmax(i8t_vf v) { return x86_hmax8(_mm256_max_ps(vf_lo8(v), vf_hi8(v))); }

/* ---- int32 lanes ---- */
static inline i8t_vi vi_zero(void) { return _mm512_setzero_si512(); }
static inline i8t_vi vi_set1(int32_t x) { return _mm512_set1_epi32(x); }
static inline i8t_vi vi_iota(void) {
  return _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
}
static inline i8t_vi vi_load(const void *p) { return _mm512_loadu_si512(p); }
static inline void vi_store(void *p, i8t_vi v) { _mm512_storeu_si512(p, v); }
static inline i8t_vi vi_bcast32(const void *p) {
  int32_t x;
  __builtin_memcpy(&x, p, sizeof x);
  return _mm512_set1_epi32(x);
}
static inline i8t_vi vi_add32(i8t_vi a, i8t_vi b) { return _mm512_add_epi32(a, b); }
static inline i8t_vi vi_sub32(i8t_vi a, i8t_vi b) { return _mm512_sub_epi32(a, b); }
static inline i8t_vi vi_mullo32(i8t_vi a, i8t_vi b) { return _mm512_mullo_epi32(a, b); }
static inline i8t_vi vi_xor(i8t_vi a, i8t_vi b) { return _mm512_xor_si512(a, b); }
static inline i8t_vi vi_or(i8t_vi a, i8t_vi b) { return _mm512_or_si512(a, b); }
#define VI_SRLI32(v, n) _mm512_srli_epi32((v), (n))
static inline i8t_vi vi_min32(i8t_vi a, i8t_vi b) { return _mm512_min_epi32(a, b); }
static inline i8t_vi vi_max32(i8t_vi a, i8t_vi b) { return _mm512_max_epi32(a, b); }
/* Lane c = the int16 pair (a[c], b[c]): two pixels' values of a channel
 * side by side, for the s16 dot step (one vpermw of the two rows). */
static inline i8t_vi vi_pair16(const int16_t *a, const int16_t *b) {
  static const int16_t order[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,
                                    21, 6, 22, 7, 23, 8,  24, 9,  25, 10, 26,
                                    11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  __m512i ab = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a)),
                                  _mm256_loadu_si256((const __m256i *)b), 1);
  return _mm512_permutexvar_epi16(_mm512_loadu_si512(order), ab);
}
static inline int vi_any_bit(i8t_vi v) { return _mm512_test_epi32_mask(v, v) != 0; }

/* Low byte (16 bits) of each lane, consecutively: truncation, as a C cast. */
static inline void vi_store_lo8x4(void *q, i8t_vi a, i8t_vi b, i8t_vi c, i8t_vi d) {
  __m128i *p = (__m128i *)q;
  _mm_storeu_si128(p + 0, i8t_mm512_cvtepi32_epi8(a));
  _mm_storeu_si128(p + 1, i8t_mm512_cvtepi32_epi8(b));
  _mm_storeu_si128(p + 2, i8t_mm512_cvtepi32_epi8(c));
  _mm_storeu_si128(p + 3, i8t_mm512_cvtepi32_epi8(d));
}
static inline void vi_store_lo16x2(void *q, i8t_vi a, i8t_vi b) {
  __m256i *p = (__m256i *)q;
  _mm256_storeu_si256(p + 0, i8t_mm512_cvtepi32_epi16(a));
  _mm256_storeu_si256(p + 1, i8t_mm512_cvtepi32_epi16(b));
}

/* Saturating stores of lanes already in range (the callers clamp first):
 * int8 from four vectors or two, int16 from two. In-lane packs and one lane
 * permute: half the shuffle uops of vpmovdb / vpmovdw per vector. */
static inline __m512i vi_bytes_in_order_x4(__m512i abcd) {
  /* 128-bit lane L holds dwords a[4L..], b[4L..], c[4L..], d[4L..]. */
  const __m512i order = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
  return _mm512_permutexvar_epi32(order, abcd);
}
static inline __m512i vi_packs8x4_ordered(i8t_vi a, i8t_vi b, i8t_vi c, i8t_vi d) {
  return vi_bytes_in_order_x4(
      _mm512_packs_epi16(_mm512_packs_epi32(a, b), _mm512_packs_epi32(c, d)));
}
static inline void vi_store_sat_s8x4(void *q, i8t_vi a, i8t_vi b, i8t_vi c, i8t_vi d) {
  _mm512_storeu_si512(q, vi_packs8x4_ordered(a, b, c, d));
}
/* uint8 from four vectors, any int32 lanes saturating to 0..255 (to int16,
 * then unsigned to bytes). */
static inline void vi_store_sat_u8x4(void *q, i8t_vi a, i8t_vi b, i8t_vi c, i8t_vi d) {
  _mm512_storeu_si512(q, vi_bytes_in_order_x4(_mm512_packus_epi16(_mm512_packs_epi32(a, b),
                                                                  _mm512_packs_epi32(c, d))));
}
static inline void vi_store_sat_s8x2(void *q, i8t_vi a, i8t_vi b) {
  _mm256_storeu_si256((__m256i *)q, i8t_mm512_lo256(vi_packs8x4_ordered(a, b, a, b)));
}
static inline void vi_store_sat_s16x2(void *q, i8t_vi a, i8t_vi b) {
  const __m512i order = _mm512_set_epi64(7, 5, 3, 1, 6, 4, 2, 0);
  _mm512_storeu_si512(q, _mm512_permutexvar_epi64(order, _mm512_packs_epi32(a, b)));
}
/* The lanes sign-extended to int64 and stored to c[0..16), or added to it. */
static inline void vi_store_s64(int64_t *c, i8t_vi v, int accumulate) {
  __m512i lo = i8t_mm512_cvtepi32_epi64(i8t_mm512_lo256(v));
  __m512i hi = i8t_mm512_cvtepi32_epi64(i8t_mm512_hi256(v));
  if (accumulate) {
    lo = _mm512_add_epi64(lo, _mm512_loadu_si512(c));
    hi = _mm512_add_epi64(hi, _mm512_loadu_si512(c + 8));
  }
  _mm512_storeu_si512(c, lo);
  _mm512_storeu_si512(c + 8, hi);
}

/* ---- u8 / u16 lanes ---- */
static inline i8t_vi vb_min_u8(i8t_vi a, i8t_vi b) { return _mm512_min_epu8(a, b); }
static inline i8t_vi vb_max_u8(i8t_vi a, i8t_vi b) { return _mm512_max_epu8(a, b); }
static inline i8t_vi vb_add16(i8t_vi a, i8t_vi b) { return _mm512_add_epi16(a, b); }
static inline i8t_vi vb_set1_u8(uint8_t x) { return _mm512_set1_epi8((char)x); }
static inline i8t_vi vb_widen_u8_lo(i8t_vi v) { return i8t_mm512_cvtepu8_epi16(i8t_mm512_lo256(v)); }
static inline i8t_vi vb_widen_u8_hi(i8t_vi v) { return i8t_mm512_cvtepu8_epi16(i8t_mm512_hi256(v)); }
static inline i8t_vi vb_widen_u16_lo(i8t_vi v) { return i8t_mm512_cvtepu16_epi32(i8t_mm512_lo256(v)); }
static inline i8t_vi vb_widen_u16_hi(i8t_vi v) { return i8t_mm512_cvtepu16_epi32(i8t_mm512_hi256(v)); }

/* ---- GEMM steps ---- */
/* acc += four u8 x s8 products per lane (a: u8, b: s8). Exact: no saturation. */
static inline i8t_vi vi_dot_u8s8(i8t_vi acc, i8t_vi a, i8t_vi b) {
  return _mm512_dpbusd_epi32(acc, a, b);
}
/* acc += two s16 x s16 products per lane. */
static inline i8t_vi vi_dot_s16(i8t_vi acc, i8t_vi a, i8t_vi b) {
  return _mm512_dpwssd_epi32(acc, a, b);
}

#endif
