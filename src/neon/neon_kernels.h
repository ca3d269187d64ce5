/* aarch64 kernels (src/neon): the neon path (armv8-a Advanced SIMD) and the
 * neondot path (SDOT, built with +dotprod, run only where HWCAP_ASIMDDP). */
#ifndef INT8TRAIN_NEON_KERNELS_H
#define INT8TRAIN_NEON_KERNELS_H

#include "../kernel_table.h"

/* neon: vmull_s8/vmlal_s8 + vpadalq_s16 over K groups of 16 (A packed s8,
 * so u8 A goes through the -128 shift); s16 x s16 with vmlal_s16. */
void i8t_gemm_u8s8s32_ukernel_4x4c16__neon(size_t kc, const void *a, const void *b,
                                           int32_t *c, size_t ldc, int accumulate);
void i8t_gemm_s8s8s32_ukernel_4x4c16__neon(size_t kc, const void *a, const void *b,
                                           int32_t *c, size_t ldc, int accumulate);
void i8t_gemm_s16u8s32_ukernel_8x8__neon(size_t kc, const void *a, const void *b,
                                         int32_t *c, size_t ldc, int accumulate);

/* neondot: SDOT by lane (vdotq_laneq_s32), K groups of 4. */
void i8t_gemm_u8s8s32_ukernel_8x8c4__neondot(size_t kc, const void *a, const void *b,
                                             int32_t *c, size_t ldc, int accumulate);
void i8t_gemm_s8s8s32_ukernel_8x8c4__neondot(size_t kc, const void *a, const void *b,
                                             int32_t *c, size_t ldc, int accumulate);

int i8t_minmax_f32__neon(const float *x, size_t n, float *min, float *max);
void i8t_affine_quantize_u8__neon(size_t n, const uint8_t *x, const float *m, const float *a,
                                  const float *base, int relu, uint8_t *mask, float inv_scale,
                                  int32_t zp, i8t_noise noise, uint8_t *q);
void i8t_requantize_s32_u8__neon(size_t n, const int32_t *y, const float *s, float inv_scale,
                                 int32_t zp, i8t_noise noise, uint8_t *q);
void i8t_quantize_f32_u8__neon(const float *x, size_t n, float inv_scale, int32_t zp,
                               i8t_noise noise, uint8_t *q);
void i8t_quantize_f32_s8__neon(const float *x, size_t n, float inv_scale,
                               i8t_noise noise, int8_t *q);
void i8t_quantize_f32_s16__neon(const float *x, size_t n, float inv_scale,
                                i8t_noise noise, int16_t *q);
void i8t_colwise_stats_u8__neon(const uint8_t *x, size_t rows, size_t cols, size_t ld,
                                uint8_t *min, uint8_t *max, uint32_t *sum);
void i8t_quantize_f32_s8s16__neon(size_t n, const float *v, const float *cs, float inv8,
                                  float inv16, i8t_noise noise, int8_t *q8, int16_t *q16);

#endif
