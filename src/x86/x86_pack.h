/* Fast packers of the x86 paths for the two packed formats their kernels
 * read (layout: kernel_table.h), written once with SSE4.1 / AVX2 intrinsics so
 * that both src/avx2 and src/avx512 compile them with their own flags:
 *
 *   c2s16: KR = 2 int16 values per group (4 bytes)      AVX2 all kinds, VNNI s16u8
 *   c4x8 : KR = 4 int8 / uint8 values per group (4 bytes)  VNNI u8s8 and s8s8
 *
 * A and B panels are the same operation seen from two sides: a panel has L
 * lanes (MR rows of A, or NR columns of B) and runs along K; element
 * (lane l, k) of the source is data[l * lane_stride + k * k_stride]. Two
 * source layouts have vector paths:
 *   k-contiguous   (k_stride == 1: row-major A, transposed B): 4 lanes x 4
 *                  groups are loaded as 4 dword rows and transposed 4x4;
 *   lane-contiguous (lane_stride == 1: transposed A, row-major B): the KR
 *                  source rows of a group are interleaved (unpack).
 * Everything else (other strides, edge lanes, the K tail, zero padding) goes
 * through a scalar loop over the remaining part of the panel only. */
#ifndef INT8TRAIN_X86_PACK_H
#define INT8TRAIN_X86_PACK_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../kernel_table.h"

typedef struct x86_pack_view {
  const char *data;
  i8t_pack_elem elem;
  int32_t shift;
  size_t lane_stride, k_stride; /* in source elements */
} x86_pack_view;

static inline size_t x86_elem_size(i8t_pack_elem e) { return e == I8T_PACK_S16 ? 2 : 1; }

static inline int32_t x86_load_elem(const x86_pack_view *v, size_t l, size_t k) {
  size_t i = l * v->lane_stride + k * v->k_stride;
  switch (v->elem) {
    case I8T_PACK_U8: return ((const uint8_t *)v->data)[i];
    case I8T_PACK_S8: return ((const int8_t *)v->data)[i];
    default: {
      int16_t x;
      memcpy(&x, v->data + 2 * i, 2);
      return x;
    }
  }
}

/* Stores 4 lanes x 4 groups given as 4 vectors (one per lane, one dword per
 * group), transposed: dst_dw[(g * L) + l] for g = 0..3, l = 0..3. */
static inline void x86_store_transposed_4x4(uint32_t *dst_dw, size_t L, __m128i x0, __m128i x1,
                                            __m128i x2, __m128i x3) {
  __m128i t0 = _mm_unpacklo_epi32(x0, x1), t1 = _mm_unpacklo_epi32(x2, x3);
  __m128i t2 = _mm_unpackhi_epi32(x0, x1), t3 = _mm_unpackhi_epi32(x2, x3);
  _mm_storeu_si128((__m128i *)(dst_dw + 0 * L), _mm_unpacklo_epi64(t0, t1));
  _mm_storeu_si128((__m128i *)(dst_dw + 1 * L), _mm_unpackhi_epi64(t0, t1));
  _mm_storeu_si128((__m128i *)(dst_dw + 2 * L), _mm_unpacklo_epi64(t2, t3));
  _mm_storeu_si128((__m128i *)(dst_dw + 3 * L), _mm_unpackhi_epi64(t2, t3));
}

/* The part of a panel the vector paths did not write: lanes [lanes_done, L)
 * for every group, and groups [groups_done, kc_pad / KR) of lanes
 * [0, lanes_done). Values past `valid` lanes or past kc are 0. */
static void x86_pack_rest(const x86_pack_view *v, size_t valid, size_t L, size_t kc, size_t kr,
                          size_t lanes_done, size_t groups_done, void *dst, int dst_s16) {
  size_t groups = (kc + kr - 1) / kr;
  /* Skips the (usually many) groups whose lanes are all done at once. */
  size_t g = lanes_done >= L ? groups_done : 0;
  for (; g < groups; g++) {
    size_t l0 = g < groups_done ? lanes_done : 0;
    for (size_t l = l0; l < L; l++) {
      for (size_t j = 0; j < kr; j++) {
        size_t k = g * kr + j, at = (g * L + l) * kr + j;
        int32_t x = (l < valid && k < kc) ? x86_load_elem(v, l, k) + v->shift : 0;
        if (dst_s16) ((int16_t *)dst)[at] = (int16_t)x;
        else ((uint8_t *)dst)[at] = (uint8_t)x;
      }
    }
  }
}

/* ------------------------------------------------------------------------ */
/* c2s16                                                                    */
/* ------------------------------------------------------------------------ */

/* 8 consecutive source elements as int16, plus the shift. Inlined with a
 * constant `e`, so each layout loop is specialised per source type. */
static inline __attribute__((always_inline)) __m128i x86_load8_s16(const char *p,
                                                                   i8t_pack_elem e,
                                                                   __m128i shift) {
  switch (e) {
    case I8T_PACK_U8: return _mm_add_epi16(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)p)), shift);
    case I8T_PACK_S8: return _mm_add_epi16(_mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)p)), shift);
    default: return _mm_add_epi16(_mm_loadu_si128((const __m128i *)p), shift);
  }
}

/* k-contiguous: 4 lanes x 8 k (4 groups) per step. Returns groups done. */
static inline __attribute__((always_inline)) size_t x86_c2s16_kcontig(
    const x86_pack_view *v, i8t_pack_elem e, size_t lanes, size_t L, size_t kc, int16_t *dst) {
  const size_t es = x86_elem_size(e);
  const __m128i shift = _mm_set1_epi16((int16_t)v->shift);
  size_t kv = kc / 8 * 8;
  for (size_t l = 0; l < lanes; l += 4) {
    const char *p = v->data + l * v->lane_stride * es;
    const size_t ls = v->lane_stride * es;
    for (size_t k = 0; k < kv; k += 8) {
      __m128i x0 = x86_load8_s16(p + k * es, e, shift);
      __m128i x1 = x86_load8_s16(p + ls + k * es, e, shift);
      __m128i x2 = x86_load8_s16(p + 2 * ls + k * es, e, shift);
      __m128i x3 = x86_load8_s16(p + 3 * ls + k * es, e, shift);
      x86_store_transposed_4x4((uint32_t *)dst + (k / 2) * L + l, L, x0, x1, x2, x3);
    }
  }
  return kv / 2;
}

/* k-contiguous int8 source into 4-lane panels (AVX2's MR = 4 A panels, the
 * hot packer of its u8s8 / s8s8 GEMMs): 4 rows x 16 k (8 groups) per step.
 * The byte pairs are interleaved first (two unpack rounds of 16-byte
 * vectors) and widened after, so that each group pair lands as one 32-byte
 * store: 8 shuffles, 4 widenings and 4 stores per 64 values. */
static inline __attribute__((always_inline)) size_t x86_c2s16_kcontig_4lanes_x8(
    const x86_pack_view *v, i8t_pack_elem e, size_t kc, int16_t *dst) {
  const __m256i shift = _mm256_set1_epi16((int16_t)v->shift);
  const size_t ls = v->lane_stride;
  const char *p = v->data;
  __m256i *d = (__m256i *)dst; /* 8 groups x 4 lanes x 2 values = 4 vectors */
  size_t kv = kc / 16 * 16;
  for (size_t k = 0; k < kv; k += 16, d += 4) {
    __m128i x0 = _mm_loadu_si128((const __m128i *)(p + k));
    __m128i x1 = _mm_loadu_si128((const __m128i *)(p + ls + k));
    __m128i x2 = _mm_loadu_si128((const __m128i *)(p + 2 * ls + k));
    __m128i x3 = _mm_loadu_si128((const __m128i *)(p + 3 * ls + k));
    __m128i t0 = _mm_unpacklo_epi16(x0, x1), t1 = _mm_unpackhi_epi16(x0, x1);
    __m128i t2 = _mm_unpacklo_epi16(x2, x3), t3 = _mm_unpackhi_epi16(x2, x3);
    __m128i o[4] = {_mm_unpacklo_epi32(t0, t2), _mm_unpackhi_epi32(t0, t2),
                    _mm_unpacklo_epi32(t1, t3), _mm_unpackhi_epi32(t1, t3)};
    for (int i = 0; i < 4; i++) {
      __m256i w = e == I8T_PACK_U8 ? _mm256_cvtepu8_epi16(o[i]) : _mm256_cvtepi8_epi16(o[i]);
      _mm256_storeu_si256(d + i, _mm256_add_epi16(w, shift));
    }
  }
  /* A tail of 8 k (4 groups) the same way from 8-byte loads: short rows
   * (a 3x3 kernel on one channel: K = 12) would otherwise be all scalar. */
  if (kc - kv >= 8) {
    __m128i x0 = _mm_loadl_epi64((const __m128i *)(p + kv));
    __m128i x1 = _mm_loadl_epi64((const __m128i *)(p + ls + kv));
    __m128i x2 = _mm_loadl_epi64((const __m128i *)(p + 2 * ls + kv));
    __m128i x3 = _mm_loadl_epi64((const __m128i *)(p + 3 * ls + kv));
    __m128i t0 = _mm_unpacklo_epi16(x0, x1), t2 = _mm_unpacklo_epi16(x2, x3);
    __m128i o[2] = {_mm_unpacklo_epi32(t0, t2), _mm_unpackhi_epi32(t0, t2)};
    for (int i = 0; i < 2; i++) {
      __m256i w = e == I8T_PACK_U8 ? _mm256_cvtepu8_epi16(o[i]) : _mm256_cvtepi8_epi16(o[i]);
      _mm256_storeu_si256(d + i, _mm256_add_epi16(w, shift));
    }
    kv += 8;
  }
  return kv / 2;
}

/* The lane-contiguous c4x8 packer prefetches the source rows of the group 4
 * groups ahead, once per 64-byte line: +3-4% on a 64 x 576 x 3136 u8s8 GEMM,
 * where packing B is a fifth of the time (the same in the c2s16 packer
 * measured no change). */
static inline void x86_prefetch_rows(const char *p, size_t ks, int rows) {
  for (int r = 0; r < rows; r++) _mm_prefetch(p + (size_t)r * ks, _MM_HINT_T0);
}

/* 16 lanes of one c2s16 group from an int8 source (rows p and p + ks):
 * the bytes are interleaved first (lane l: k0, k1) and widened after, one
 * 32-byte store of 8 pairs per half. (Widening each row to dwords and
 * merging them with a shift and a masked move, with AVX-512 BW, measured
 * ~5% slower; so did the same for c4x8, ~25%.) */
static inline __attribute__((always_inline)) void x86_c2s16_group16_x8(const char *p, size_t ks,
                                                                       i8t_pack_elem e,
                                                                       __m256i shift,
                                                                       uint32_t *d) {
  __m128i r0 = _mm_loadu_si128((const __m128i *)p);
  __m128i r1 = _mm_loadu_si128((const __m128i *)(p + ks));
  __m128i lo = _mm_unpacklo_epi8(r0, r1), hi = _mm_unpackhi_epi8(r0, r1);
  __m256i wlo = e == I8T_PACK_U8 ? _mm256_cvtepu8_epi16(lo) : _mm256_cvtepi8_epi16(lo);
  __m256i whi = e == I8T_PACK_U8 ? _mm256_cvtepu8_epi16(hi) : _mm256_cvtepi8_epi16(hi);
  _mm256_storeu_si256((__m256i *)d, _mm256_add_epi16(wlo, shift));
  _mm256_storeu_si256((__m256i *)(d + 8), _mm256_add_epi16(whi, shift));
}

/* lane-contiguous, `panels` whole panels at once: one group (2 source rows)
 * x 16 lanes (int8 sources, L % 16 == 0) or 8 lanes per step, groups
 * outermost so that the source rows are read once, front to back (panel by
 * panel would stream them panels times). */
static inline __attribute__((always_inline)) size_t x86_c2s16_lanecontig(
    const x86_pack_view *v, i8t_pack_elem e, size_t panels, size_t L, size_t kc, char *dst,
    size_t panel_bytes) {
  const size_t es = x86_elem_size(e), ks = v->k_stride * es;
  const __m128i shift = _mm_set1_epi16((int16_t)v->shift);
  const __m256i shift256 = _mm256_set1_epi16((int16_t)v->shift);
  const int wide = e != I8T_PACK_S16 && L % 16 == 0;
  size_t groups = kc / 2;
  for (size_t g = 0; g < groups; g++) {
    const char *p0 = v->data + 2 * g * ks;
    for (size_t p = 0; p < panels; p++, p0 += L * es) {
      uint32_t *d = (uint32_t *)(dst + p * panel_bytes) + g * L;
      if (wide) {
        for (size_t l = 0; l < L; l += 16) x86_c2s16_group16_x8(p0 + l, ks, e, shift256, d + l);
        continue;
      }
      for (size_t l = 0; l < L; l += 8) {
        __m128i r0 = x86_load8_s16(p0 + l * es, e, shift);
        __m128i r1 = x86_load8_s16(p0 + ks + l * es, e, shift);
        _mm_storeu_si128((__m128i *)(d + l), _mm_unpacklo_epi16(r0, r1));
        _mm_storeu_si128((__m128i *)(d + l + 4), _mm_unpackhi_epi16(r0, r1));
      }
    }
  }
  return groups;
}

#define X86_FOR_EACH_ELEM(e, CALL)                          \
  switch (e) {                                              \
    case I8T_PACK_U8: CALL(I8T_PACK_U8); break;             \
    case I8T_PACK_S8: CALL(I8T_PACK_S8); break;             \
    default: CALL(I8T_PACK_S16); break;                     \
  }

/* One panel of L lanes (valid of them real) x kc, format c2s16. */
static void x86_pack_panel_c2s16(const x86_pack_view *v, size_t valid, size_t L, size_t kc,
                                 int16_t *dst) {
  size_t lanes = 0, groups = 0;
  if (v->k_stride == 1 && L == 4 && valid == 4 && v->elem != I8T_PACK_S16) {
    lanes = 4;
    if (v->elem == I8T_PACK_U8) groups = x86_c2s16_kcontig_4lanes_x8(v, I8T_PACK_U8, kc, dst);
    else groups = x86_c2s16_kcontig_4lanes_x8(v, I8T_PACK_S8, kc, dst);
  } else if (v->k_stride == 1) {
    lanes = valid / 4 * 4;
#define X86_CALL(E) groups = x86_c2s16_kcontig(v, E, lanes, L, kc, dst)
    if (lanes) X86_FOR_EACH_ELEM(v->elem, X86_CALL)
#undef X86_CALL
  }
  x86_pack_rest(v, valid, L, kc, 2, lanes, groups, dst, 1);
}

/* Whole panels of a lane-contiguous source, format c2s16; returns groups done. */
static size_t x86_pack_panels_lanecontig_c2s16(const x86_pack_view *v, size_t panels, size_t L,
                                               size_t kc, void *dst, size_t panel_bytes) {
  size_t groups = 0;
#define X86_CALL(E) groups = x86_c2s16_lanecontig(v, E, panels, L, kc, dst, panel_bytes)
  X86_FOR_EACH_ELEM(v->elem, X86_CALL)
#undef X86_CALL
  return groups;
}

/* ------------------------------------------------------------------------ */
/* c4x8                                                                     */
/* ------------------------------------------------------------------------ */

/* The int8 conversions are +-128 (s8 <-> u8) or none: both are an XOR of the
 * sign bit. */
static inline __m128i x86_flip_mask(const x86_pack_view *v) {
  return _mm_set1_epi8(v->shift ? (char)0x80 : 0);
}

/* k-contiguous: 4 lanes x 16 k (4 groups) per step. */
static size_t x86_c4x8_kcontig(const x86_pack_view *v, size_t lanes, size_t L, size_t kc,
                               uint8_t *dst) {
  const __m128i flip = x86_flip_mask(v);
  const size_t ls = v->lane_stride;
  size_t kv = kc / 16 * 16;
  for (size_t l = 0; l < lanes; l += 4) {
    const char *p = v->data + l * ls;
    for (size_t k = 0; k < kv; k += 16) {
      __m128i x0 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(p + k)), flip);
      __m128i x1 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(p + ls + k)), flip);
      __m128i x2 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(p + 2 * ls + k)), flip);
      __m128i x3 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(p + 3 * ls + k)), flip);
      x86_store_transposed_4x4((uint32_t *)dst + (k / 4) * L + l, L, x0, x1, x2, x3);
    }
  }
  return kv / 4;
}

/* 32 lanes of one c4x8 group (source rows p + i * ks, i = 0..3) into d:
 * byte then word interleaving within each 16-byte half leaves lanes
 * [0-3 | 16-19], [4-7 | 20-23], [8-11 | 24-27], [12-15 | 28-31]; two
 * cross-half permutes put them in order. */
static inline __attribute__((always_inline)) void x86_c4x8_group32(const char *p, size_t ks,
                                                                   __m256i flip, uint32_t *d) {
  __m256i r0 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)p), flip);
  __m256i r1 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + ks)), flip);
  __m256i r2 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + 2 * ks)), flip);
  __m256i r3 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + 3 * ks)), flip);
  __m256i lo01 = _mm256_unpacklo_epi8(r0, r1), lo23 = _mm256_unpacklo_epi8(r2, r3);
  __m256i hi01 = _mm256_unpackhi_epi8(r0, r1), hi23 = _mm256_unpackhi_epi8(r2, r3);
  __m256i q0 = _mm256_unpacklo_epi16(lo01, lo23), q1 = _mm256_unpackhi_epi16(lo01, lo23);
  __m256i q2 = _mm256_unpacklo_epi16(hi01, hi23), q3 = _mm256_unpackhi_epi16(hi01, hi23);
  _mm256_storeu_si256((__m256i *)d, _mm256_permute2x128_si256(q0, q1, 0x20));
  _mm256_storeu_si256((__m256i *)(d + 8), _mm256_permute2x128_si256(q2, q3, 0x20));
  _mm256_storeu_si256((__m256i *)(d + 16), _mm256_permute2x128_si256(q0, q1, 0x31));
  _mm256_storeu_si256((__m256i *)(d + 24), _mm256_permute2x128_si256(q2, q3, 0x31));
}

/* 16 lanes of one c4x8 group, 16-byte vectors (panels of 16 lanes). */
static inline __attribute__((always_inline)) void x86_c4x8_group16(const char *p, size_t ks,
                                                                   __m128i flip, uint32_t *d) {
  __m128i r0 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), flip);
  __m128i r1 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(p + ks)), flip);
  __m128i r2 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(p + 2 * ks)), flip);
  __m128i r3 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(p + 3 * ks)), flip);
  __m128i lo01 = _mm_unpacklo_epi8(r0, r1), lo23 = _mm_unpacklo_epi8(r2, r3);
  __m128i hi01 = _mm_unpackhi_epi8(r0, r1), hi23 = _mm_unpackhi_epi8(r2, r3);
  _mm_storeu_si128((__m128i *)d, _mm_unpacklo_epi16(lo01, lo23));
  _mm_storeu_si128((__m128i *)(d + 4), _mm_unpackhi_epi16(lo01, lo23));
  _mm_storeu_si128((__m128i *)(d + 8), _mm_unpacklo_epi16(hi01, hi23));
  _mm_storeu_si128((__m128i *)(d + 12), _mm_unpackhi_epi16(hi01, hi23));
}

/* lane-contiguous, whole panels (L % 16 == 0): one group (4 source rows) x
 * 32 or 16 lanes per step, groups outermost (see x86_c2s16_lanecontig). */
static size_t x86_pack_panels_lanecontig_c4x8(const x86_pack_view *v, size_t panels, size_t L,
                                              size_t kc, void *dst, size_t panel_bytes) {
  const __m128i flip = x86_flip_mask(v);
  const __m256i flip256 = _mm256_set1_epi8(v->shift ? (char)0x80 : 0);
  const size_t ks = v->k_stride;
  size_t groups = kc / 4;
  for (size_t g = 0; g < groups; g++) {
    const char *p = v->data + 4 * g * ks;
    for (size_t panel = 0; panel < panels; panel++, p += L) {
      uint32_t *d = (uint32_t *)((char *)dst + panel * panel_bytes) + g * L;
      size_t l = 0;
      if (g + 4 < groups && (panel * L) % 64 < L) x86_prefetch_rows(p + 16 * ks, ks, 4);
      for (; l + 32 <= L; l += 32) x86_c4x8_group32(p + l, ks, flip256, d + l);
      for (; l < L; l += 16) x86_c4x8_group16(p + l, ks, flip, d + l);
    }
  }
  return groups;
}

/* One panel of L lanes (valid of them real) x kc, format c4x8. The source is
 * u8 or s8; the shift is 0 or +-128. */
static void x86_pack_panel_c4x8(const x86_pack_view *v, size_t valid, size_t L, size_t kc,
                                uint8_t *dst) {
  size_t lanes = 0, groups = 0;
  if (v->k_stride == 1) {
    lanes = valid / 4 * 4;
    if (lanes) groups = x86_c4x8_kcontig(v, lanes, L, kc, dst);
  }
  x86_pack_rest(v, valid, L, kc, 4, lanes, groups, dst, 0);
}

/* ------------------------------------------------------------------------ */
/* Whole-operand packers (the i8t_pack_a_fn / i8t_pack_b_fn contract)       */
/* ------------------------------------------------------------------------ */

static inline x86_pack_view x86_view_a(const i8t_pack_src *s) {
  return (x86_pack_view){s->data, s->elem, s->shift, s->row_stride, s->col_stride};
}
static inline x86_pack_view x86_view_b(const i8t_pack_src *s) {
  return (x86_pack_view){s->data, s->elem, s->shift, s->col_stride, s->row_stride};
}

/* Panels of L lanes over `lanes` lanes; each panel is L * kc_pad elements.
 * A lane-contiguous source has its whole panels packed in one pass (then
 * only their K tail is left); everything else goes panel by panel. */
static inline void x86_pack_panels(x86_pack_view v, size_t lanes, size_t L, size_t kc,
                                   int c2s16, void *dst) {
  size_t kr = c2s16 ? 2 : 4, es_dst = c2s16 ? 2 : 1, es_src = x86_elem_size(v.elem);
  size_t panel_bytes = L * ((kc + kr - 1) / kr * kr) * es_dst;
  size_t step = c2s16 ? 8 : 16, whole = 0, groups = 0;
  if (v.lane_stride == 1 && v.k_stride != 1 && L % step == 0) {
    whole = lanes / L;
    if (whole && c2s16) groups = x86_pack_panels_lanecontig_c2s16(&v, whole, L, kc, dst, panel_bytes);
    if (whole && !c2s16) groups = x86_pack_panels_lanecontig_c4x8(&v, whole, L, kc, dst, panel_bytes);
  }
  const char *base = v.data;
  for (size_t l0 = 0; l0 < lanes; l0 += L) {
    v.data = base + l0 * v.lane_stride * es_src;
    size_t valid = lanes - l0 < L ? lanes - l0 : L;
    if (l0 / L < whole) x86_pack_rest(&v, L, L, kc, kr, L, groups, dst, c2s16);
    else if (c2s16) x86_pack_panel_c2s16(&v, valid, L, kc, dst);
    else x86_pack_panel_c4x8(&v, valid, L, kc, dst);
    dst = (char *)dst + panel_bytes;
  }
}

/* Defines the four exported packers of one ISA (suffix SFX) for its tables. */
#define I8T_X86_DEFINE_PACKERS(SFX)                                                        \
  void i8t_pack_a_c2s16__##SFX(const i8t_gemm_ukernel *uk, const i8t_pack_src *src,        \
                               size_t m, size_t kc, void *dst) {                           \
    x86_pack_panels(x86_view_a(src), m, uk->mr, kc, 1, dst);                               \
  }                                                                                        \
  void i8t_pack_b_c2s16__##SFX(const i8t_gemm_ukernel *uk, const i8t_pack_src *src,        \
                               size_t kc, size_t n, void *dst) {                           \
    x86_pack_panels(x86_view_b(src), n, uk->nr, kc, 1, dst);                               \
  }                                                                                        \
  void i8t_pack_a_c4x8__##SFX(const i8t_gemm_ukernel *uk, const i8t_pack_src *src,         \
                              size_t m, size_t kc, void *dst) {                            \
    x86_pack_panels(x86_view_a(src), m, uk->mr, kc, 0, dst);                               \
  }                                                                                        \
  void i8t_pack_b_c4x8__##SFX(const i8t_gemm_ukernel *uk, const i8t_pack_src *src,         \
                              size_t kc, size_t n, void *dst) {                            \
    x86_pack_panels(x86_view_b(src), n, uk->nr, kc, 0, dst);                               \
  }

#endif
