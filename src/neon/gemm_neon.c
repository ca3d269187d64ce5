/* GEMM microkernels for aarch64 cores without the dot product (Cortex-A53,
 * A72: Raspberry Pi 3/4): int8 products widened in pairs to int16, then
 * pairwise into int32; and the s16 x s16 weight-gradient tile (also used by
 * the neondot path, which has no faster instruction for it). */
#include "neon_common.h"

/* One K group of 16 for one (row, column) pair: vmull_s8 + vmlal_high_s8
 * leave two products per int16 lane, then vpadalq_s16 adds lane pairs into
 * the int32 accumulator. Exact for every packed input the library produces:
 * |a| <= 128 (u8 shifted by -128, or s8) and |b| <= 127, so a pair of
 * products is at most 2 * 128 * 127 = 32512 < 32767. */
static inline int32x4_t dot16_accumulate(int32x4_t acc, int8x16_t a, int8x16_t b) {
  int16x8_t pairs = vmull_s8(vget_low_s8(a), vget_low_s8(b));
  pairs = vmlal_high_s8(pairs, a, b);
  return vpadalq_s16(acc, pairs);
}

/* The four per-column accumulators of a row (4 partial sums each) reduced to
 * the row's four results [c0 c1 c2 c3]. */
static inline int32x4_t reduce_row(const int32x4_t acc[4]) {
  return vpaddq_s32(vpaddq_s32(acc[0], acc[1]), vpaddq_s32(acc[2], acc[3]));
}

/* 4 x 4 tile, K groups of 16: packed A group = 4 rows x 16 values, packed B
 * group = 4 columns x 16 values (kernel_table.h), one int32x4 accumulator per
 * (row, column) pair: 16 accumulators + 8 operands fit the 32 registers. */
static inline void s8s8_tile_4x4c16(size_t kc, const int8_t *a, const int8_t *b, int32_t *c,
                                    size_t ldc, int accumulate) {
  int32x4_t acc[4][4];
#pragma GCC unroll 4
  for (int r = 0; r < 4; r++) {
#pragma GCC unroll 4
    for (int x = 0; x < 4; x++) acc[r][x] = vdupq_n_s32(0);
  }
  for (size_t k = 0; k < kc; k += 16) {
    int8x16_t av[4], bv[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
      av[i] = vld1q_s8(a + 16 * i);
      bv[i] = vld1q_s8(b + 16 * i);
    }
    a += 64;
    b += 64;
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
#pragma GCC unroll 4
      for (int x = 0; x < 4; x++) acc[r][x] = dot16_accumulate(acc[r][x], av[r], bv[x]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < 4; r++) i8t_neon_store_s32x4(c + r * ldc, reduce_row(acc[r]), accumulate);
}

/* After the -128 shift of a u8 A (kernel_table.h; the driver subtracts
 * (zp - 128) * colsum(B)), the u8 x s8 GEMM is an s8 x s8 GEMM: one tile
 * serves both table entries. */
void i8t_gemm_u8s8s32_ukernel_4x4c16__neon(size_t kc, const void *a, const void *b,
                                           int32_t *c, size_t ldc, int accumulate) {
  s8s8_tile_4x4c16(kc, a, b, c, ldc, accumulate);
}

void i8t_gemm_s8s8s32_ukernel_4x4c16__neon(size_t kc, const void *a, const void *b,
                                           int32_t *c, size_t ldc, int accumulate) {
  s8s8_tile_4x4c16(kc, a, b, c, ldc, accumulate);
}

/* Weight gradient, A s16 and B s16 (= b - zp), K groups of 1: per k, one
 * vector of 8 A values (rows) and one of 8 B values (columns); row r adds
 * B * A[r] with vmlal_(high_)laneq_s16 (int16 x int16 -> int32, exact; the
 * driver's KC keeps the int32 sums from overflowing). */
#define S16_LOAD_GROUP                                  \
  const int16x8_t av = vld1q_s16(a), bv = vld1q_s16(b); \
  a += 8;                                               \
  b += 8;
#define S16_ROW_STEP(r)                                               \
  acc[r][0] = vmlal_laneq_s16(acc[r][0], vget_low_s16(bv), av, r);    \
  acc[r][1] = vmlal_high_laneq_s16(acc[r][1], bv, av, r);

I8T_NEON_DEFINE_8X8_UKERNEL(i8t_gemm_s16u8s32_ukernel_8x8__neon, int16_t, int16_t, 1,
                            S16_LOAD_GROUP, S16_ROW_STEP)
