/* Portable packers for the GEMM driver (layout: see kernel_table.h). */
#ifndef INT8TRAIN_PACK_H
#define INT8TRAIN_PACK_H

#include "kernel_table.h"

size_t i8t_pack_elem_size(i8t_pack_elem e);

/* Value added to a source element when it is packed as `dst`: -zp for S16,
 * +128 for s8 -> U8, -128 for u8 -> S8, else 0. */
int32_t i8t_pack_shift(i8t_pack_elem src, i8t_pack_elem dst, int32_t zero_point);

void i8t_pack_a_portable(const i8t_gemm_ukernel *uk, const i8t_pack_src *src, size_t m,
                         size_t kc, void *dst);
void i8t_pack_b_portable(const i8t_gemm_ukernel *uk, const i8t_pack_src *src, size_t kc,
                         size_t n, void *dst);
void i8t_sum_b_portable(const i8t_gemm_ukernel *uk, size_t kc_pad, const void *b_panel,
                        int32_t *sums);

#endif
