/* int8train kernels: the three training GEMMs and the quantizer.
 * Each call runs on the kernel table selected by i8t_isa_select() and, when a
 * context is given, on its worker threads. All integer results are exact. */
#ifndef INT8TRAIN_KERNELS_H
#define INT8TRAIN_KERNELS_H

#include "int8train/int8train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* GEMMs                                                                    */
/* ------------------------------------------------------------------------ */

/** A read-only matrix view: element (r, c) is at data[r * row_stride + c * col_stride]
 * (strides in elements). A transposed operand is a view with the strides swapped. */
typedef struct i8t_matrix {
  const void *data;
  size_t row_stride;
  size_t col_stride;
} i8t_matrix;

/** Largest K accepted by the u8 x s8 and s8 x s8 GEMMs: every exact result
 * (|a - zp| <= 255, |b| <= 127) then fits in int32. */
#define I8T_GEMM_MAX_K 66311

/** Forward GEMM: C[M x N] = (A - a_zero_point) * B with A u8 [M x K], B s8
 * [K x N] in [-127, 127], C int32 with row stride ldc. */
i8t_status i8t_gemm_u8s8s32(i8t_context *ctx, size_t M, size_t N, size_t K,
                            i8t_matrix A, uint8_t a_zero_point, i8t_matrix B,
                            int32_t *C, size_t ldc);

/** Grad-input GEMM: C[M x N] = A * B with A s8 [M x K] and B s8 [K x N],
 * both in [-127, 127]; C int32 with row stride ldc. */
i8t_status i8t_gemm_s8s8s32(i8t_context *ctx, size_t M, size_t N, size_t K,
                            i8t_matrix A, i8t_matrix B, int32_t *C, size_t ldc);

/** Weight-gradient GEMM ("gradient bifurcation"): C[M x N] = A * (B - b_zero_point)
 * with A s16 [M x K] in [-32767, 32767], B u8 [K x N], C int64 with row
 * stride ldc. Any K: the reduction is split into blocks whose int32 partial
 * sums cannot overflow, and the blocks are summed in int64. */
i8t_status i8t_gemm_s16u8s64(i8t_context *ctx, size_t M, size_t N, size_t K,
                             i8t_matrix A, i8t_matrix B, uint8_t b_zero_point,
                             int64_t *C, size_t ldc);

/* ------------------------------------------------------------------------ */
/* Quantizer                                                                */
/* ------------------------------------------------------------------------ */

/** Rounding of a quantizer. Stochastic rounding adds noise from a counter-based
 * generator: element i of a call uses counter (counter + i) under key `seed`,
 * so results depend only on (seed, counter, data), never on threads. */
typedef struct i8t_rounding {
  int stochastic;   /**< 0: round to nearest even; 1: stochastic (unbiased) */
  uint64_t seed;
  uint64_t counter;
} i8t_rounding;

/** Parameters of a quantized tensor: real value = scale * (q - zero_point). */
typedef struct i8t_qparams {
  float scale;       /**< > 0, never zero: a zero range gets a tiny scale */
  int32_t zero_point; /**< 0 for the symmetric (signed) formats */
} i8t_qparams;

/** Smallest scale a quantizer uses (guards zero ranges: no NaN, no Inf). */
#define I8T_MIN_SCALE 1e-30f

/** Minimum and maximum of x[0..n); I8T_ERR_NONFINITE if any element is NaN or Inf. */
i8t_status i8t_minmax_f32(const float *x, size_t n, float *min, float *max);

/** Parameters for an asymmetric u8 range [min, max] (widened to include 0 so
 * that real zero is exact): scale = (max - min) / 255, zero point nudged to
 * an integer in [0, 255]. */
i8t_qparams i8t_qparams_u8(float min, float max);
/** Parameters for a symmetric signed range: scale = absmax / qmax, zero
 * point 0; qmax = 127 (8 bits) or 32767 (16 bits). */
i8t_qparams i8t_qparams_symmetric(float absmax, int bits);

/** q = clamp(round(x / scale) + zero_point, 0, 255). These quantizers take
 * the values as they are: +-Inf and values beyond the range clamp, and NaN
 * gives the low bound (0, -127, -32767), the same on every kernel path; the
 * _auto variants reject NaN and Inf (I8T_ERR_NONFINITE). */
i8t_status i8t_quantize_f32_u8(const float *x, size_t n, i8t_qparams p,
                               i8t_rounding r, uint8_t *q);
/** q = clamp(round(x / scale), -127, 127). */
i8t_status i8t_quantize_f32_s8(const float *x, size_t n, i8t_qparams p,
                               i8t_rounding r, int8_t *q);
/** q = clamp(round(x / scale), -32767, 32767). */
i8t_status i8t_quantize_f32_s16(const float *x, size_t n, i8t_qparams p,
                                i8t_rounding r, int16_t *q);

/** Fused range + quantize: finds the range of x (min/max for u8, absmax for
 * s8/s16), writes the parameters to *p and quantizes. */
i8t_status i8t_quantize_auto_u8(const float *x, size_t n, i8t_rounding r,
                                uint8_t *q, i8t_qparams *p);
i8t_status i8t_quantize_auto_s8(const float *x, size_t n, i8t_rounding r,
                                int8_t *q, i8t_qparams *p);
i8t_status i8t_quantize_auto_s16(const float *x, size_t n, i8t_rounding r,
                                 int16_t *q, i8t_qparams *p);

/** The same with a context: large tensors (over 16384 elements) are split
 * into fixed 16384-element chunks run on the context's workers, so results
 * are bit-identical to the calls above for any thread count (the stochastic
 * counter is per element). ctx NULL: the calls above. */
i8t_status i8t_minmax_f32_ctx(i8t_context *ctx, const float *x, size_t n, float *min,
                              float *max);
i8t_status i8t_quantize_f32_u8_ctx(i8t_context *ctx, const float *x, size_t n,
                                   i8t_qparams p, i8t_rounding r, uint8_t *q);
i8t_status i8t_quantize_f32_s8_ctx(i8t_context *ctx, const float *x, size_t n,
                                   i8t_qparams p, i8t_rounding r, int8_t *q);
i8t_status i8t_quantize_f32_s16_ctx(i8t_context *ctx, const float *x, size_t n,
                                    i8t_qparams p, i8t_rounding r, int16_t *q);
i8t_status i8t_quantize_auto_u8_ctx(i8t_context *ctx, const float *x, size_t n,
                                    i8t_rounding r, uint8_t *q, i8t_qparams *p);
i8t_status i8t_quantize_auto_s8_ctx(i8t_context *ctx, const float *x, size_t n,
                                    i8t_rounding r, int8_t *q, i8t_qparams *p);
i8t_status i8t_quantize_auto_s16_ctx(i8t_context *ctx, const float *x, size_t n,
                                     i8t_rounding r, int16_t *q, i8t_qparams *p);

/** Per-output-channel symmetric s8 quantization of a [channels x len] row-major
 * matrix (one row per output channel): scales[c] = absmax(row c) / 127. */
i8t_status i8t_quantize_per_channel_s8(const float *x, size_t channels, size_t len,
                                       i8t_rounding r, int8_t *q, float *scales);
/** The same with the channels spread over the context's workers (identical
 * results; on NaN or Inf the other channels are still written). */
i8t_status i8t_quantize_per_channel_s8_ctx(i8t_context *ctx, const float *x, size_t channels,
                                           size_t len, i8t_rounding r, int8_t *q,
                                           float *scales);

/** x = scale * (q - zero_point). */
void i8t_dequantize_u8(const uint8_t *q, size_t n, i8t_qparams p, float *x);
void i8t_dequantize_s8(const int8_t *q, size_t n, i8t_qparams p, float *x);
void i8t_dequantize_s16(const int16_t *q, size_t n, i8t_qparams p, float *x);

/** The noise the stochastic quantizer adds for counter value `counter` under
 * `seed`: a number in [0, 1) with 24 random bits. Exposed for tests. */
float i8t_rounding_noise(uint64_t seed, uint64_t counter);

/* ------------------------------------------------------------------------ */
/* Reductions used by Range BN                                              */
/* ------------------------------------------------------------------------ */

/** Per column c of a u8 matrix [rows x cols] (row stride ld): min, max and sum
 * of its values. The outputs are overwritten. */
void i8t_colwise_stats_u8(const uint8_t *x, size_t rows, size_t cols, size_t ld,
                          uint8_t *min, uint8_t *max, uint32_t *sum);

#ifdef __cplusplus
}
#endif

#endif
