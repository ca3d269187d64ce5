/* Portable GEMM microkernels: plain C over the packed layout of
 * kernel_table.h with KR = 1, written so that compilers vectorise the NR loop.
 * They are also the reference the SIMD kernels are compared against. */
#include "generic_kernels.h"

/* Accumulates in uint32 so that wrap-around is defined (see the exactness
 * contract in kernel_table.h). */
#define DEFINE_GENERIC_UKERNEL(NAME, A_TYPE, B_TYPE, MR, NR)                          \
  void NAME(size_t kc, const void *a_packed, const void *b_packed, int32_t *c,        \
            size_t ldc, int accumulate) {                                             \
    const A_TYPE *a = a_packed;                                                       \
    const B_TYPE *b = b_packed;                                                       \
    uint32_t acc[MR][NR] = {{0}};                                                     \
    for (size_t k = 0; k < kc; k++) {                                                 \
      for (int r = 0; r < MR; r++) {                                                  \
        int32_t av = a[k * MR + r];                                                   \
        for (int x = 0; x < NR; x++) acc[r][x] += (uint32_t)(av * (int32_t)b[k * NR + x]); \
      }                                                                               \
    }                                                                                 \
    for (int r = 0; r < MR; r++) {                                                    \
      int32_t *cr = c + r * ldc;                                                      \
      for (int x = 0; x < NR; x++)                                                    \
        cr[x] = (int32_t)(acc[r][x] + (accumulate ? (uint32_t)cr[x] : 0u));           \
    }                                                                                 \
  }

DEFINE_GENERIC_UKERNEL(i8t_gemm_u8s8s32_ukernel_4x8__generic, int16_t, int8_t, 4, 8)
DEFINE_GENERIC_UKERNEL(i8t_gemm_s8s8s32_ukernel_4x8__generic, int8_t, int8_t, 4, 8)
DEFINE_GENERIC_UKERNEL(i8t_gemm_s16u8s32_ukernel_4x8__generic, int16_t, int16_t, 4, 8)
