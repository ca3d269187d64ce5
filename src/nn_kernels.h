/* Declarations of the layer-pass kernels (kernel_table.h, "Layer passes"):
 * every ISA folder compiles src/generic/nn_kernels_template.h under its own
 * suffix (the x86 folders take quantize_f32_s8s16 and bn_col_sums from the
 * x86 elementwise template instead); these macros declare one suffix's set and put it into a
 * table. */
#ifndef INT8TRAIN_NN_KERNELS_H
#define INT8TRAIN_NN_KERNELS_H

#include <math.h>

#include "kernel_table.h"
#include "quantize_scalar.h"
#include "rng.h"

#define I8T_NN_DECLARE(SFX)                                                                 \
  void i8t_requantize_s32_u8__##SFX(size_t n, const int32_t *y, const float *s,             \
                                    float inv_scale, int32_t zp, i8t_noise noise,           \
                                    uint8_t *q);                                            \
  void i8t_axpy_s32_f32__##SFX(size_t n, float sc, const int32_t *p, int accumulate,        \
                               float *v);                                                   \
  void i8t_axpy_s8_f32__##SFX(size_t n, float sc, const int8_t *p, int accumulate,          \
                              float *v);                                                    \
  void i8t_affine_u8_f32__##SFX(size_t n, const uint8_t *x, const float *m, const float *a, \
                                int accumulate, float *v);                                  \
  void i8t_affine_quantize_u8__##SFX(size_t n, const uint8_t *x, const float *m,            \
                                     const float *a, const float *base, int relu,          \
                                     uint8_t *mask, float inv_scale, int32_t zp,           \
                                     i8t_noise noise, uint8_t *q);                         \
  void i8t_bn_lane_extremes__##SFX(size_t rows, size_t n, size_t ld, uint16_t b,          \
                                   const uint8_t *x, uint8_t *mn, uint8_t *mx,            \
                                   uint16_t *amn, uint16_t *amx);                         \
  void i8t_minmax_s32__##SFX(size_t n, const int32_t *y, int32_t *mn, int32_t *mx);         \
  void i8t_mask_u8_f32__##SFX(size_t n, const uint8_t *mask, float *v);                     \
  void i8t_mask_pos_f32__##SFX(size_t n, const float *w, float *v);                         \
  void i8t_affine_s8_f32__##SFX(size_t n, const int8_t *g, const float *a, const float *b,  \
                                float *v);                                                  \
  void i8t_add_centered_u8_f32__##SFX(size_t n, const uint8_t *x, const float *e,           \
                                      const float *qbar, float *v);                         \
  void i8t_quantize_f32_s8s16__##SFX(size_t n, const float *v, const float *cs, float inv8,  \
                                     float inv16, i8t_noise noise, int8_t *q8, int16_t *q16); \
  void i8t_bn_col_sums__##SFX(size_t rows, size_t C, size_t ld, const int8_t *g,           \
                              const uint8_t *x,                                          \
                              int32_t *sg, int32_t *sgq, uint32_t *sq, int8_t *gmin,         \
                              int8_t *gmax);                                                 \
  void i8t_bn_col_sums_portable__##SFX(size_t rows, size_t C, size_t ld, const int8_t *g,    \
                                       const uint8_t *x, int32_t *sg, int32_t *sgq,          \
                                       uint32_t *sq, int8_t *gmin, int8_t *gmax);       \
  float i8t_grad_sum_absmax__##SFX(size_t n, const i8t_grad_span *s, float *out);                    \
  void i8t_grad_sum_quantize_s8__##SFX(size_t n, const i8t_grad_span *s, float inv_scale,    \
                                       i8t_noise noise, int8_t *q);                          \
  void i8t_interleave_pixels_u8_s16__##SFX(size_t n, size_t C, const uint8_t *row,          \
                                          size_t step, size_t b_off, int16_t zp, int16_t *d); \
  void i8t_col2im_s32__##SFX(const i8t_col2im_geom *g, const int32_t *cols, size_t ld,       \
                             size_t samples, int32_t *dx);                               \
  void i8t_interleave_rows_s16__##SFX(size_t rows, size_t w, size_t pairs,                  \
                                      const int16_t *a, const int16_t *b, size_t lda,       \
                                      int16_t *d, size_t ldd);

/* Fills the layer-pass entries of table t with the kernels of suffix SFX. */
#define I8T_NN_SET(t, SFX)                         \
  do {                                             \
    I8T_TABLE_SET(t, requantize_s32_u8, SFX);     \
    I8T_TABLE_SET(t, axpy_s32_f32, SFX);          \
    I8T_TABLE_SET(t, axpy_s8_f32, SFX);           \
    I8T_TABLE_SET(t, affine_u8_f32, SFX);         \
    I8T_TABLE_SET(t, affine_quantize_u8, SFX);    \
    I8T_TABLE_SET(t, bn_lane_extremes, SFX);      \
    I8T_TABLE_SET(t, minmax_s32, SFX);            \
    I8T_TABLE_SET(t, mask_u8_f32, SFX);           \
    I8T_TABLE_SET(t, mask_pos_f32, SFX);          \
    I8T_TABLE_SET(t, affine_s8_f32, SFX);         \
    I8T_TABLE_SET(t, add_centered_u8_f32, SFX);   \
    I8T_TABLE_SET(t, quantize_f32_s8s16, SFX);    \
    I8T_TABLE_SET(t, bn_col_sums, SFX);           \
    I8T_TABLE_SET(t, grad_sum_absmax, SFX);       \
    I8T_TABLE_SET(t, grad_sum_quantize_s8, SFX);  \
    I8T_TABLE_SET(t, interleave_pixels_u8_s16, SFX); \
    I8T_TABLE_SET(t, col2im_s32, SFX);            \
    I8T_TABLE_SET(t, interleave_rows_s16, SFX);   \
  } while (0)

/* Element i of quantize_f32_s8s16 (kernel_table.h): the portable kernel and
 * the vector kernels' tails. floor(clamp(t + u)) with u uniform in [0, 1) is
 * floor(t) + 1 with probability t - floor(t), like floor(t) + (u < t -
 * floor(t)), in fewer vector operations (no compare and select). */
static inline int32_t i8t_stochastic_floor(float t, float u, float lo, float hi) {
  float r = t + u;
  r = r >= lo ? r : lo; /* NaN gives lo: defined, and what the vector clamp gives */
  r = r > hi ? hi : r;
  /* floor of a value in int32 range without a libm call (floorf is one in
   * baseline x86 builds): truncate, minus 1 where that rounded up. */
  int32_t i = (int32_t)r;
  return i - (r < (float)i);
}

static inline void i8t_quantize_s8s16_bits(const float *v, const float *cs, float inv8,
                                           float inv16, uint32_t bits, size_t i, int8_t *q8,
                                           int16_t *q16) {
  float w = cs ? v[i] * cs[i] : v[i];
  float u8 = (float)bits * (1.0f / 65536.0f), u16 = (float)(bits & 255u) * (1.0f / 256.0f);
  q8[i] = (int8_t)i8t_stochastic_floor(w * inv8, u8, -127.0f, 127.0f);
  q16[i] = (int16_t)i8t_stochastic_floor(v[i] * inv16, u16, -32767.0f, 32767.0f);
}

static inline void i8t_quantize_s8s16_one(const float *v, const float *cs, float inv8,
                                          float inv16, i8t_noise noise, size_t i, int8_t *q8,
                                          int16_t *q16) {
  uint32_t bits = i8t_rng_pair_bits(noise.key, noise.ctr + (uint32_t)i);
  i8t_quantize_s8s16_bits(v, cs, inv8, inv16, bits, i, q8, q16);
}

/* One row of interleave_rows_s16 (kernel_table.h) from pair c on: the
 * portable kernel (c = 0) and the vector kernels' tails. */
static inline void i8t_interleave_row_s16_from(size_t c, size_t w, size_t pairs,
                                               const int16_t *restrict a,
                                               const int16_t *restrict b, int16_t *restrict d) {
  for (; c < w; c++) d[2 * c] = a[c], d[2 * c + 1] = b ? b[c] : 0;
  for (c = 2 * w; c < 2 * pairs; c++) d[c] = 0;
}

/* Element i of a gradient span (kernel_table.h, i8t_grad_span): the portable
 * kernels and the vector kernels' tails. v starts at 0.0f so that a -0 term
 * gives +0, as the sum of separate passes over a zeroed buffer did. */
static inline float i8t_grad_sum_one(const i8t_grad_span *s, size_t i) {
  float v = 0.0f;
  for (int k = 0; k < s->n_src; k++) {
    float x = s->s8[k] ? (float)((const int8_t *)s->src[k])[i]
                       : (float)((const int32_t *)s->src[k])[i];
    v += s->sc[k] * x;
  }
  return s->mask && !s->mask[i] ? 0.0f : v;
}

/* quantize_f32_u8's rule for one value (the element at counter offset i). */
static inline uint8_t i8t_quantize_u8_one(float v, float inv_scale, int32_t zp, i8t_noise noise,
                                          size_t i) {
  float r = i8t_round_scaled(v * inv_scale, noise, (uint32_t)i) + (float)zp;
  return (uint8_t)i8t_clamp_to_int(r, 0.0f, 255.0f);
}

/* Element i of requantize_s32_u8 (kernel_table.h): the portable kernel and
 * the NEON tail (the x86 tail spells the same rule in its quantize loop). */
static inline uint8_t i8t_requantize_u8_one(const int32_t *y, const float *s, float inv_scale,
                                            int32_t zp, i8t_noise noise, size_t i) {
  return i8t_quantize_u8_one((float)y[i] * s[i], inv_scale, zp, noise, i);
}

/* Element i of affine_quantize_u8 (kernel_table.h): the portable kernel and
 * the vector kernels' tails. */
static inline uint8_t i8t_affine_quantize_u8_one(const uint8_t *x, const float *m,
                                                 const float *a, const float *base, int relu,
                                                 uint8_t *mask, float inv_scale, int32_t zp,
                                                 i8t_noise noise, size_t i) {
  float v = m[i] * (float)x[i] + a[i];
  if (base) v = base[i] + v;
  if (relu) {
    if (mask) mask[i] = v > 0.0f;
    v = v > 0.0f ? v : 0.0f;
  }
  return i8t_quantize_u8_one(v, inv_scale, zp, noise, i);
}

/* quantize_f32_s8's rule for one value (the element at counter offset i). */
static inline int8_t i8t_quantize_s8_one(float v, float inv_scale, i8t_noise noise, size_t i) {
  float r = i8t_round_scaled(v * inv_scale, noise, (uint32_t)i) + 0.0f;
  return (int8_t)i8t_clamp_to_int(r, -127.0f, 127.0f);
}

I8T_NN_DECLARE(generic)
#if defined(__x86_64__) || defined(_M_X64)
I8T_NN_DECLARE(avx2)
I8T_NN_DECLARE(avx512vnni)
#endif

#endif
