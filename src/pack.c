/* Portable packers: copy an operand block into the panel layout of a
 * microkernel (documented in kernel_table.h), converting elements on the way.
 * The inner loops are specialised per source type so the compiler can keep
 * them tight; ISAs override them where packing shows in profiles. */
#include "pack.h"

#include <string.h>

#include "internal.h"

size_t i8t_pack_elem_size(i8t_pack_elem e) { return e == I8T_PACK_S16 ? 2 : 1; }

int32_t i8t_pack_shift(i8t_pack_elem src, i8t_pack_elem dst, int32_t zero_point) {
  if (dst == I8T_PACK_S16) return -zero_point;
  if (src == I8T_PACK_S8 && dst == I8T_PACK_U8) return 128;
  if (src == I8T_PACK_U8 && dst == I8T_PACK_S8) return -128;
  return 0;
}

static inline int32_t load_elem(const i8t_pack_src *s, size_t r, size_t c) {
  size_t i = r * s->row_stride + c * s->col_stride;
  switch (s->elem) {
    case I8T_PACK_U8: return ((const uint8_t *)s->data)[i];
    case I8T_PACK_S8: return ((const int8_t *)s->data)[i];
    default: return ((const int16_t *)s->data)[i];
  }
}

static inline void store_elem(void *dst, i8t_pack_elem e, size_t i, int32_t v) {
  switch (e) {
    case I8T_PACK_U8: ((uint8_t *)dst)[i] = (uint8_t)v; break;
    case I8T_PACK_S8: ((int8_t *)dst)[i] = (int8_t)v; break;
    default: ((int16_t *)dst)[i] = (int16_t)v; break;
  }
}

/* One panel: `lanes` = MR (A) or NR (B) rows/columns of which `valid` are
 * real; `lane_is_row` says whether a lane indexes the source's rows. */
static void pack_panel(const i8t_pack_src *src, i8t_pack_elem dst_elem, size_t lanes,
                       size_t valid, size_t kr, size_t kc, int lane_is_row, void *dst) {
  size_t kc_pad = I8T_ROUND_UP(kc, kr);
  size_t esize = i8t_pack_elem_size(dst_elem);
  memset(dst, 0, kc_pad * lanes * esize);
  for (size_t g = 0; g < kc_pad / kr; g++) {
    for (size_t l = 0; l < valid; l++) {
      for (size_t j = 0; j < kr; j++) {
        size_t k = g * kr + j;
        if (k >= kc) break;
        int32_t v = lane_is_row ? load_elem(src, l, k) : load_elem(src, k, l);
        store_elem(dst, dst_elem, (g * lanes + l) * kr + j, v + src->shift);
      }
    }
  }
}

void i8t_pack_a_portable(const i8t_gemm_ukernel *uk, const i8t_pack_src *src, size_t m,
                         size_t kc, void *dst) {
  size_t panel_bytes = I8T_ROUND_UP(kc, uk->kr) * uk->mr * i8t_pack_elem_size(uk->a_elem);
  for (size_t r0 = 0; r0 < m; r0 += uk->mr) {
    i8t_pack_src s = *src;
    s.data = (const char *)src->data +
             r0 * src->row_stride * i8t_pack_elem_size(src->elem);
    pack_panel(&s, uk->a_elem, uk->mr, I8T_MIN(uk->mr, m - r0), uk->kr, kc, 1, dst);
    dst = (char *)dst + panel_bytes;
  }
}

void i8t_pack_b_portable(const i8t_gemm_ukernel *uk, const i8t_pack_src *src, size_t kc,
                         size_t n, void *dst) {
  size_t panel_bytes = I8T_ROUND_UP(kc, uk->kr) * uk->nr * i8t_pack_elem_size(uk->b_elem);
  for (size_t c0 = 0; c0 < n; c0 += uk->nr) {
    i8t_pack_src s = *src;
    s.data = (const char *)src->data +
             c0 * src->col_stride * i8t_pack_elem_size(src->elem);
    pack_panel(&s, uk->b_elem, uk->nr, I8T_MIN(uk->nr, n - c0), uk->kr, kc, 0, dst);
    dst = (char *)dst + panel_bytes;
  }
}

/* Column sums of one packed B panel, group by group, the loop specialised
 * per element type. uint32 sums: wrap-around is defined (and never happens
 * for a K the driver accepts). */
#define SUM_PANEL(T)                                                                   \
  for (size_t i = 0; i < n; i += nr * kr)                                              \
    for (size_t x = 0; x < nr * kr; x++) acc[x / kr] += (uint32_t)(int32_t)((const T *)b_panel)[i + x];

void i8t_sum_b_portable(const i8t_gemm_ukernel *uk, size_t kc_pad, const void *b_panel,
                        int32_t *sums) {
  size_t nr = uk->nr, kr = uk->kr, n = kc_pad / kr * nr * kr;
  uint32_t acc[256] = {0}; /* NR <= 255 (uint8_t) */
  switch (uk->b_elem) {
    case I8T_PACK_U8: SUM_PANEL(uint8_t) break;
    case I8T_PACK_S8: SUM_PANEL(int8_t) break;
    default: SUM_PANEL(int16_t) break;
  }
  for (size_t c = 0; c < nr; c++) sums[c] = (int32_t)((uint32_t)sums[c] + acc[c]);
}
#undef SUM_PANEL
