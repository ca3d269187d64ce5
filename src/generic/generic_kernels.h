/* Portable kernels (src/generic): every ISA's table starts from these. */
#ifndef INT8TRAIN_GENERIC_KERNELS_H
#define INT8TRAIN_GENERIC_KERNELS_H

#include "../kernel_table.h"

void i8t_gemm_u8s8s32_ukernel_4x8__generic(size_t kc, const void *a, const void *b,
                                           int32_t *c, size_t ldc, int accumulate);
void i8t_gemm_s8s8s32_ukernel_4x8__generic(size_t kc, const void *a, const void *b,
                                           int32_t *c, size_t ldc, int accumulate);
void i8t_gemm_s16u8s32_ukernel_4x8__generic(size_t kc, const void *a, const void *b,
                                            int32_t *c, size_t ldc, int accumulate);

int i8t_minmax_f32__generic(const float *x, size_t n, float *min, float *max);
void i8t_quantize_f32_u8__generic(const float *x, size_t n, float inv_scale, int32_t zp,
                                  i8t_noise noise, uint8_t *q);
void i8t_quantize_f32_s8__generic(const float *x, size_t n, float inv_scale,
                                  i8t_noise noise, int8_t *q);
void i8t_quantize_f32_s16__generic(const float *x, size_t n, float inv_scale,
                                   i8t_noise noise, int16_t *q);
void i8t_colwise_stats_u8__generic(const uint8_t *x, size_t rows, size_t cols, size_t ld,
                                   uint8_t *min, uint8_t *max, uint32_t *sum);

void i8t_conv3x3_c1_fwd__generic(size_t h, size_t w, const void *img, size_t ldx,
                                 const int8_t *wq, const int32_t *bias, int32_t *y,
                                 size_t ldy, int32_t *mn, int32_t *mx);
void i8t_conv3x3_c1_wgrad__generic(size_t h, size_t w, const int16_t *xs, size_t ldx,
                                   const int16_t *dy, size_t ldd, int64_t *acc);

#endif
