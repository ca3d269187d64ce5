/* Declarations of the x86 kernels (src/avx2, src/avx512): both ISAs export
 * the same set under their own suffix, so one macro declares each set. */
#ifndef INT8TRAIN_X86_KERNELS_H
#define INT8TRAIN_X86_KERNELS_H

#include "../kernel_table.h"

#define I8T_X86_DECLARE_ELEMENTWISE(SFX)                                                  \
  int i8t_minmax_f32__##SFX(const float *x, size_t n, float *min, float *max);            \
  void i8t_quantize_f32_u8__##SFX(const float *x, size_t n, float inv_scale, int32_t zp,  \
                                  i8t_noise noise, uint8_t *q);                          \
  void i8t_quantize_f32_s8__##SFX(const float *x, size_t n, float inv_scale,             \
                                  i8t_noise noise, int8_t *q);                           \
  void i8t_quantize_f32_s16__##SFX(const float *x, size_t n, float inv_scale,            \
                                   i8t_noise noise, int16_t *q);                         \
  void i8t_colwise_stats_u8__##SFX(const uint8_t *x, size_t rows, size_t cols, size_t ld, \
                                   uint8_t *min, uint8_t *max, uint32_t *sum);

#define I8T_X86_DECLARE_PACKERS(SFX)                                                      \
  void i8t_pack_a_c2s16__##SFX(const i8t_gemm_ukernel *uk, const i8t_pack_src *src,       \
                               size_t m, size_t kc, void *dst);                          \
  void i8t_pack_b_c2s16__##SFX(const i8t_gemm_ukernel *uk, const i8t_pack_src *src,       \
                               size_t kc, size_t n, void *dst);                          \
  void i8t_pack_a_c4x8__##SFX(const i8t_gemm_ukernel *uk, const i8t_pack_src *src,        \
                              size_t m, size_t kc, void *dst);                           \
  void i8t_pack_b_c4x8__##SFX(const i8t_gemm_ukernel *uk, const i8t_pack_src *src,        \
                              size_t kc, size_t n, void *dst);

/* A microkernel's two entry points (kernel_table.h: run and run_ex). */
#define I8T_X86_DECLARE_UKERNEL(NAME, NAME_EX)                                                \
  void NAME(size_t kc, const void *a, const void *b, int32_t *c, size_t ldc, int accumulate); \
  void NAME_EX(const i8t_ukernel_args *args);

/* The stem convolution's direct kernels (x86_stem_template.h). */
#define I8T_X86_DECLARE_STEM(SFX)                                                          \
  void i8t_conv3x3_c1_fwd__##SFX(size_t h, size_t w, const void *img, size_t ldx,          \
                                 const int8_t *wq, const int32_t *bias, int32_t *y,       \
                                 size_t ldy, int32_t *mn, int32_t *mx);                   \
  void i8t_conv3x3_c1_wgrad__##SFX(size_t h, size_t w, const int16_t *xs, size_t ldx,      \
                                   const int16_t *dy, size_t ldd, int64_t *acc);

/* Fills the stem entries of table t (S16_IMAGE: the forward reads the s16 image). */
#define I8T_X86_SET_STEM(t, SFX, S16_IMAGE)                        \
  do {                                                             \
    I8T_TABLE_SET(t, conv3x3_c1_fwd, SFX);                        \
    (t)->conv3x3_c1_fwd.s16_image = (S16_IMAGE);                   \
    I8T_TABLE_SET(t, conv3x3_c1_wgrad, SFX);                      \
  } while (0)

/* Fills the elementwise entries of table t with the kernels of suffix SFX. */
#define I8T_X86_SET_ELEMENTWISE(t, SFX)       \
  do {                                        \
    I8T_TABLE_SET(t, minmax_f32, SFX);        \
    I8T_TABLE_SET(t, quantize_f32_u8, SFX);   \
    I8T_TABLE_SET(t, quantize_f32_s8, SFX);   \
    I8T_TABLE_SET(t, quantize_f32_s16, SFX);  \
    I8T_TABLE_SET(t, colwise_stats_u8, SFX);  \
  } while (0)

I8T_X86_DECLARE_ELEMENTWISE(avx2)
I8T_X86_DECLARE_PACKERS(avx2)
I8T_X86_DECLARE_UKERNEL(i8t_gemm_s16s16s32_ukernel_4x16c2__avx2,
                        i8t_gemm_s16s16s32_ukernel_ex_4x16c2__avx2)
I8T_X86_DECLARE_STEM(avx2)

I8T_X86_DECLARE_ELEMENTWISE(avx512vnni)
I8T_X86_DECLARE_PACKERS(avx512vnni)
I8T_X86_DECLARE_UKERNEL(i8t_gemm_u8s8s32_ukernel_8x32c4__avx512vnni,
                        i8t_gemm_u8s8s32_ukernel_ex_8x32c4__avx512vnni)
void i8t_sum_b_8x32c4__avx512vnni(const i8t_gemm_ukernel *uk, size_t kc_pad,
                                  const void *b_panel, int32_t *sums);
I8T_X86_DECLARE_UKERNEL(i8t_gemm_s16s16s32_ukernel_8x32c2__avx512vnni,
                        i8t_gemm_s16s16s32_ukernel_ex_8x32c2__avx512vnni)
I8T_X86_DECLARE_STEM(avx512vnni)
/* Narrow variants (NR = 16) for GEMMs of at most 16 columns. */
I8T_X86_DECLARE_UKERNEL(i8t_gemm_u8s8s32_ukernel_16x16c4__avx512vnni,
                        i8t_gemm_u8s8s32_ukernel_ex_16x16c4__avx512vnni)
void i8t_sum_b_16x16c4__avx512vnni(const i8t_gemm_ukernel *uk, size_t kc_pad,
                                   const void *b_panel, int32_t *sums);
I8T_X86_DECLARE_UKERNEL(i8t_gemm_s16s16s32_ukernel_16x16c2__avx512vnni,
                        i8t_gemm_s16s16s32_ukernel_ex_16x16c2__avx512vnni)

#endif
