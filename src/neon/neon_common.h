/* Structure shared by the two aarch64 GEMM paths (neon and neondot): the
 * 8 x 8 tile skeleton whose K step broadcasts one lane of packed A per row,
 * its accumulator set-up and its store. Each path supplies only the step. */
#ifndef INT8TRAIN_NEON_COMMON_H
#define INT8TRAIN_NEON_COMMON_H

#include <arm_neon.h>

#include "neon_kernels.h"

/* Expands STEP(r) for rows 0..7 with r a literal: NEON lane arguments must be
 * compile-time constants, so the row loop is written out, not looped. */
#define I8T_NEON_ROWS_8(STEP) STEP(0) STEP(1) STEP(2) STEP(3) STEP(4) STEP(5) STEP(6) STEP(7)

/* C row = (accumulate ? C row : 0) + v, for 4 int32 values. The addition
 * wraps like the generic kernels' uint32 sums (exactness: kernel_table.h). */
static inline void i8t_neon_store_s32x4(int32_t *c, int32x4_t v, int accumulate) {
  if (accumulate) v = vaddq_s32(v, vld1q_s32(c));
  vst1q_s32(c, v);
}

/* The 8 x 8 tile: acc[r][0] holds columns 0-3 of row r, acc[r][1] columns 4-7. */
#define I8T_NEON_TILE_ZERO_ROW(r) acc[r][0] = acc[r][1] = vdupq_n_s32(0);
#define I8T_NEON_TILE_STORE_ROW(r)                                  \
  i8t_neon_store_s32x4(c + (r) * ldc, acc[r][0], accumulate);       \
  i8t_neon_store_s32x4(c + (r) * ldc + 4, acc[r][1], accumulate);

/* Defines NAME, an i8t_gemm_ukernel_fn over an 8 x 8 tile in K groups of KR.
 * LOAD_GROUP reads one group of packed A (pointer `a`, type A_TYPE) and
 * packed B (`b`, B_TYPE) into locals and advances both pointers; ROW_STEP(r)
 * then adds row r's products to acc[r][0] and acc[r][1]. */
#define I8T_NEON_DEFINE_8X8_UKERNEL(NAME, A_TYPE, B_TYPE, KR, LOAD_GROUP, ROW_STEP)   \
  void NAME(size_t kc, const void *a_packed, const void *b_packed, int32_t *c,       \
            size_t ldc, int accumulate) {                                            \
    const A_TYPE *a = a_packed;                                                      \
    const B_TYPE *b = b_packed;                                                      \
    int32x4_t acc[8][2];                                                             \
    I8T_NEON_ROWS_8(I8T_NEON_TILE_ZERO_ROW)                                          \
    for (size_t k = 0; k < kc; k += (KR)) {                                          \
      LOAD_GROUP                                                                     \
      I8T_NEON_ROWS_8(ROW_STEP)                                                      \
    }                                                                                \
    I8T_NEON_ROWS_8(I8T_NEON_TILE_STORE_ROW)                                         \
  }

#endif
