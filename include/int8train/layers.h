/* int8train layers: the building blocks of the networks in model.h, in int8
 * (integer GEMMs, 8-bit tensors between layers) and in fp32 (oneDNN or a
 * portable C fallback). The models call exactly these functions; tests and
 * benchmarks call them directly.
 *
 * CONVENTIONS (the int8 scheme's decisions, written down once)
 * - Layout: activations are NHWC, rows = n*H*W, one column per channel.
 *   Convolution weights are [out_c][kh][kw][in_c], i.e. an [out_c x K]
 *   row-major matrix with K = kh*kw*in_c in im2col's column order; fully
 *   connected weights are [out x in].
 * - Activations (int8): u8 with a zero point, real = scale * (q - zp), from
 *   i8t_qparams_u8 (range widened to include 0, zero point nudged to an
 *   integer so that real zero - convolution padding, ReLU zeros - is exact).
 *   In training a tensor's range is the batch mean of each sample's min and
 *   max (values outside are clamped, gradients pass straight through); in
 *   evaluation the running range, running = 0.1 * running + 0.9 * batch.
 *   Round to nearest even; stochastic optionally (the reference's bug #4).
 * - Weights: s8 symmetric in [-127, 127], scale = absmax / 127 per tensor
 *   (per output channel optionally), re-quantized from the fp32 master copy
 *   at every step, round to nearest.
 * - Errors: s8 symmetric, scale = absmax / 127 of the tensor, stochastic
 *   rounding, for the grad-input GEMM. The weight-gradient GEMM's error
 *   operand is s16 (absmax / 32767, stochastic, an independent draw). The
 *   8-bit ablation (wgrad_bits = 8) widens the very s8 tensor the grad-input
 *   GEMM uses into the s16 buffer (as the reference used one quantized
 *   gradient for both), so it still runs through i8t_gemm_s16u8s64.
 * - Every activation's incoming gradient is re-quantized to s8 (stochastic)
 *   after the ReLU mask, before the batch-norm backward (the reference's
 *   quantize_grad on the BN output); the identity shortcut of a residual
 *   block passes on that same s8 tensor.
 * - Stochastic streams: an i8t_rounding {seed, counter} per tensor; element i
 *   uses counter + i (i8t_quantize_*), so results never depend on threads.
 * - Range BN (method.md section 3): n = rows values per channel split into
 *   K chunks [k*n/K, (k+1)*n/K) (uneven when K does not divide n);
 *   R = mean over chunks of (max - min), s = 1 / (R * C(m) + eps), m = n / K
 *   (a real number), C(m) = 0.5 * 0.35 * (1 + sqrt(pi ln 4)) / sqrt(2 ln m).
 *   Tiny batches: K is lowered to max(1, min(K, n / 2)) so that every chunk
 *   holds at least 2 values, and m is clamped to >= 2 in C(m); n = 1 gives
 *   R = 0, s = 1 / eps and x - mu = 0 (output beta, zero input gradient,
 *   never NaN). The paper's variant: one range over the whole batch and
 *   C(n) = 1 / sqrt(2 ln n). The max and min route their gradient to the
 *   first occurrence (lowest row) of the chunk's max / min, as autograd's
 *   max(dim) does; with max == min the two routes cancel.
 * - Threads: every parallel pass runs as tasks through i8t_parallel_for with
 *   a split that depends on the shapes only; float reductions are combined
 *   in task order, integer ones are exact, so results are bit-identical for
 *   any thread count. */
#ifndef INT8TRAIN_LAYERS_H
#define INT8TRAIN_LAYERS_H

#include "int8train/int8train.h"
#include "int8train/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Workspace                                                                */
/* ------------------------------------------------------------------------ */

/** Scratch memory (grown on demand, per worker), the context's threads and
 * the fp32 backend's cached primitives. One per model (or per benchmark); not
 * to be shared by concurrent calls. */
typedef struct i8t_workspace i8t_workspace;

/** fp32 convolution / batch-norm / inner-product implementation. */
typedef enum i8t_fp32_backend {
  I8T_FP32_AUTO = 0,     /**< oneDNN when the build has it, else portable */
  I8T_FP32_PORTABLE = 1, /**< im2col + plain C sgemm, plain C batch norm */
  I8T_FP32_ONEDNN = 2,   /**< oneDNN f32 primitives (I8T_ERR_UNSUPPORTED without it) */
} i8t_fp32_backend;

/** `ctx` may be NULL (calling thread only). */
i8t_status i8t_workspace_create(i8t_context *ctx, i8t_workspace **out);
void i8t_workspace_destroy(i8t_workspace *ws);
i8t_status i8t_workspace_set_fp32_backend(i8t_workspace *ws, i8t_fp32_backend backend);
/** "onednn" or "portable": what fp32 calls on `ws` use. */
const char *i8t_workspace_fp32_backend_name(const i8t_workspace *ws);
/** Whether this build has oneDNN. */
int i8t_have_onednn(void);

/* ------------------------------------------------------------------------ */
/* Convolution and fully connected                                          */
/* ------------------------------------------------------------------------ */

/** A 2-D convolution on NHWC tensors with a square kernel. A fully
 * connected layer is the case in_h = in_w = kernel = 1 (i8t_fc_shape). */
typedef struct i8t_conv_shape {
  int batch;
  int in_h, in_w, in_c;
  int out_c;
  int kernel, stride, pad;
} i8t_conv_shape;

i8t_conv_shape i8t_fc_shape(int batch, int in_features, int out_features);
/** I8T_ERR_SHAPE (with a message) for a non-positive size, a kernel larger
 * than the padded input, or K above I8T_GEMM_MAX_K. */
i8t_status i8t_conv_check(const i8t_conv_shape *s);
int i8t_conv_out_h(const i8t_conv_shape *s);
int i8t_conv_out_w(const i8t_conv_shape *s);
/** GEMM depth K = kernel * kernel * in_c (elements per output channel's weights). */
size_t i8t_conv_k(const i8t_conv_shape *s);

/** int8 forward: y[n,oh,ow,co] = sum (x - x_zp) * w, exact int32. x u8 NHWC,
 * w s8 [out_c x K]. Optionally (sample_min/max non-NULL, [batch] each) the
 * per-sample min and max of col_scale[co] * y (col_scale [out_c], or one
 * value when col_scale_count = 1): the range of the real output, computed
 * while the block is in cache. */
i8t_status i8t_conv2d_forward_s8(i8t_workspace *ws, const i8t_conv_shape *s, const uint8_t *x,
                                 uint8_t x_zp, const int8_t *w, int32_t *y,
                                 const float *col_scale, size_t col_scale_count,
                                 float *sample_min, float *sample_max);
/** Whether i8t_conv2d_forward_u8 runs shape s with these scales (1 or out_c
 * of them): where the convolution is cheap enough to compute twice, which
 * depends on the shape (and the kernel table) only, never on the thread
 * count:
 * - the 1-channel 3x3 stem (stride 1, pad 1, out_c a multiple of 16) on a
 *   kernel table with its direct kernel, per-channel scales positive normal
 *   floats;
 * - any other convolution of in_c > 1 with a shallow GEMM, K = kernel^2 *
 *   in_c <= 16 (resnet8's first 1x1 shortcut, 16 -> 32 channels), with any
 *   scales, on the AVX-512 VNNI kernels (where it was measured faster).
 * For such a shape i8t_conv2d_forward_s8 also accepts y = NULL with the
 * sample ranges wanted: a pass that stores no int32 output (the same
 * ranges, bit for bit). */
int i8t_conv2d_forward_u8_fits(const i8t_conv_shape *s, const float *col_scale,
                               size_t col_scale_count);
/** The forward straight to the next layer's u8 input: q = what
 * i8t_conv2d_forward_s8 followed by i8t_requantize_s32_u8(out, r) gives,
 * bit for bit (stochastic rounding included, at any thread count), but
 * each sample's int32 block is recomputed and requantized while in cache
 * (no int32 tensor goes through memory). I8T_ERR_UNSUPPORTED where
 * i8t_conv2d_forward_u8_fits says no. */
i8t_status i8t_conv2d_forward_u8(i8t_workspace *ws, const i8t_conv_shape *s, const uint8_t *x,
                                 uint8_t x_zp, const int8_t *w, const float *col_scale,
                                 size_t col_scale_count, i8t_qparams out, i8t_rounding r,
                                 uint8_t *q);
/** int8 grad input: dx = conv^T(dy, w), exact int32, dy s8 [batch, oh, ow, out_c]. */
i8t_status i8t_conv2d_backward_data_s8(i8t_workspace *ws, const i8t_conv_shape *s,
                                       const int8_t *dy, const int8_t *w, int32_t *dx);
/** int8 weight gradient: dw[co][k] = sum over rows dy[r][co] * (col[r][k] - x_zp),
 * exact int64, dy s16 [batch, oh, ow, out_c]. */
i8t_status i8t_conv2d_backward_weights_s16(i8t_workspace *ws, const i8t_conv_shape *s,
                                           const int16_t *dy, const uint8_t *x, uint8_t x_zp,
                                           int64_t *dw);

/** fp32 convolution (no bias), weights [out_c x K] as above. */
i8t_status i8t_conv2d_forward_f32(i8t_workspace *ws, const i8t_conv_shape *s, const float *x,
                                  const float *w, float *y);
i8t_status i8t_conv2d_backward_data_f32(i8t_workspace *ws, const i8t_conv_shape *s,
                                        const float *dy, const float *w, float *dx);
i8t_status i8t_conv2d_backward_weights_f32(i8t_workspace *ws, const i8t_conv_shape *s,
                                           const float *dy, const float *x, float *dw);

/** Fully connected, x [n x in], w [out x in], y [n x out]. int8: as the
 * convolution (no bias in the integer GEMM; add it in float). */
i8t_status i8t_fc_forward_s8(i8t_workspace *ws, int n, int in, int out, const uint8_t *x,
                             uint8_t x_zp, const int8_t *w, int32_t *y);
i8t_status i8t_fc_backward_data_s8(i8t_workspace *ws, int n, int in, int out, const int8_t *dy,
                                   const int8_t *w, int32_t *dx);
i8t_status i8t_fc_backward_weights_s16(i8t_workspace *ws, int n, int in, int out,
                                       const int16_t *dy, const uint8_t *x, uint8_t x_zp,
                                       int64_t *dw);
/** fp32 (inner product): y = x w^T + bias (bias may be NULL). */
i8t_status i8t_fc_forward_f32(i8t_workspace *ws, int n, int in, int out, const float *x,
                              const float *w, const float *bias, float *y);
i8t_status i8t_fc_backward_data_f32(i8t_workspace *ws, int n, int in, int out, const float *dy,
                                    const float *w, float *dx);
/** dw = dy^T x; dbias = column sums of dy (may be NULL). */
i8t_status i8t_fc_backward_weights_f32(i8t_workspace *ws, int n, int in, int out,
                                       const float *dy, const float *x, float *dw, float *dbias);

/* ------------------------------------------------------------------------ */
/* Quantized tensors                                                        */
/* ------------------------------------------------------------------------ */

/** Shape of an activation: batch samples of `spatial` rows of `channels`. */
typedef struct i8t_act_shape {
  size_t batch, spatial, channels;
} i8t_act_shape;

/** Range of a u8 activation quantizer from per-sample extremes: the batch
 * mean of sample_min and of sample_max (summed in order). */
void i8t_batch_range(const float *sample_min, const float *sample_max, size_t n, float *lo,
                     float *hi);
/** running = 0.1 * running + 0.9 * batch (the reference's convention). */
void i8t_running_range_update(float running[2], float lo, float hi);

/** q = Q_u8(col_scale[c] * y) for an int32 [rows x channels] tensor (one
 * col_scale when col_scale_count = 1): requantizes a GEMM output. */
i8t_status i8t_requantize_s32_u8(i8t_workspace *ws, const int32_t *y, size_t rows,
                                 size_t channels, const float *col_scale,
                                 size_t col_scale_count, i8t_qparams out, i8t_rounding r,
                                 uint8_t *q);

/** Images (float NCHW [n x c x h x w]) to NHWC: u8 with parameters p, or f32.
 * images_sample_range gives each sample's min and max (NaN/Inf rejected). */
i8t_status i8t_images_sample_range(i8t_workspace *ws, const float *images, size_t n,
                                   size_t sample_size, float *sample_min, float *sample_max);
i8t_status i8t_images_to_u8(i8t_workspace *ws, const float *images, int n, int c, int h, int w,
                            i8t_qparams p, i8t_rounding r, uint8_t *q);
i8t_status i8t_images_to_f32(i8t_workspace *ws, const float *images, int n, int c, int h, int w,
                             float *x);

/* ------------------------------------------------------------------------ */
/* Batch normalisation: Range BN and standard BN                            */
/* ------------------------------------------------------------------------ */

typedef struct i8t_norm_config {
  i8t_norm_kind kind; /**< I8T_NORM_RANGE or I8T_NORM_STANDARD */
  int chunks;         /**< Range BN: K (16) */
  int paper;          /**< Range BN: 1 = the paper's single range and C(n) = 1/sqrt(2 ln n) */
  float eps;          /**< 1e-5 */
} i8t_norm_config;

void i8t_norm_config_init(i8t_norm_config *cfg, i8t_norm_kind kind);
/** Chunks Range BN uses for n values (the tiny-batch rule above). */
size_t i8t_range_bn_chunks(const i8t_norm_config *cfg, size_t n);
/** C(m) for n values in `chunks` chunks (m = n / chunks clamped to >= 2). */
double i8t_range_bn_constant(const i8t_norm_config *cfg, size_t n, size_t chunks);

/** Batch statistics per channel of an [rows x channels] tensor: mean and
 * scale (Range BN: 1 / (R C(m) + eps); standard: 1 / sqrt(var + eps)), and
 * the biased variance for standard BN (var may be NULL; Range BN writes
 * 1 / scale^2 there, unused). The u8 version reduces the integers with
 * i8t_colwise_stats_u8 (Range BN) or exact integer sums of squares. */
i8t_status i8t_norm_stats_f32(i8t_workspace *ws, const i8t_norm_config *cfg, const float *x,
                              size_t rows, size_t channels, float *mean, float *scale,
                              float *var);
i8t_status i8t_norm_stats_u8(i8t_workspace *ws, const i8t_norm_config *cfg, const uint8_t *x,
                             i8t_qparams xq, size_t rows, size_t channels, float *mean,
                             float *scale, float *var);

/** i8t_norm_stats_u8 that also writes each sample's per-channel min and max
 * of x ([batch x channels] each, from the same integer reductions): through
 * a monotone per-channel affine + ReLU they give the output's per-sample
 * range without another pass (i8t_sum_act_range_from_extremes). */
i8t_status i8t_norm_stats_samples_u8(i8t_workspace *ws, const i8t_norm_config *cfg,
                                     const uint8_t *x, i8t_qparams xq, i8t_act_shape shape,
                                     float *mean, float *scale, float *var, uint8_t *sample_min,
                                     uint8_t *sample_max);

/** y = gamma * (x - mean) * scale + beta (fp32). */
i8t_status i8t_norm_forward_f32(i8t_workspace *ws, const float *x, size_t rows, size_t channels,
                                const float *mean, const float *scale, const float *gamma,
                                const float *beta, float *y);
/** Backward of training-mode normalisation with batch statistics (mean,
 * scale from i8t_norm_stats_f32 on the same x): dx, dgamma, dbeta. */
i8t_status i8t_norm_backward_f32(i8t_workspace *ws, const i8t_norm_config *cfg, const float *x,
                                 size_t rows, size_t channels, const float *dy,
                                 const float *mean, const float *scale, const float *gamma,
                                 float *dx, float *dgamma, float *dbeta);

/** Where an int8 backward pass writes the gradient of its input: any of a
 * float copy, an s8 tensor (stochastic, absmax / 127; values multiplied by
 * s8_col_scale[c] first when it is non-NULL, for per-channel weight scales)
 * and an s16 tensor (stochastic, absmax / 32767; with s16_bits = 8 it holds
 * the s8 tensor widened, scale the s8 scale). Unused outputs are NULL. */
typedef struct i8t_grad_out {
  float *f32;
  int8_t *s8;
  float s8_scale;            /**< out */
  const float *s8_col_scale; /**< [channels] or NULL */
  i8t_rounding s8_round;
  int16_t *s16;
  float s16_scale;           /**< out */
  int s16_bits;              /**< 16 (default when 0) or 8 */
  /** Used only when s8 is not also written stochastically with 16-bit s16:
   * that pair comes from 16 random bits per element on s8_round's stream
   * (all 16 round s8, their low byte s16; one hash per two elements),
   * i8t_norm_backward_u8's default. */
  i8t_rounding s16_round;
} i8t_grad_out;

/** int8 normalisation backward: x u8 (parameters xq), dy s8 with scale
 * dy_scale, batch statistics from i8t_norm_stats_u8. The reductions are exact
 * integer sums; dgamma, dbeta in float; dx goes to `out`. */
i8t_status i8t_norm_backward_u8(i8t_workspace *ws, const i8t_norm_config *cfg,
                                const uint8_t *x, i8t_qparams xq, size_t rows, size_t channels,
                                const int8_t *dy, float dy_scale, const float *mean,
                                const float *scale, const float *gamma, float *dgamma,
                                float *dbeta, i8t_grad_out *out);

/* ------------------------------------------------------------------------ */
/* Fused sum + ReLU (the end of a conv-BN-ReLU unit or a residual block)     */
/* ------------------------------------------------------------------------ */

/** One u8 summand: value = mul[c] * q + add[c]. A batch norm on a quantized
 * input folds into this (i8t_norm_fold_u8); an identity shortcut is
 * mul = scale, add = -scale * zp (i8t_identity_fold_u8). */
typedef struct i8t_u8_term {
  const uint8_t *x;
  const float *mul, *add; /**< [channels] */
} i8t_u8_term;

/** Folds gamma * (x - mean) * scale + beta, x = xq.scale * (q - xq.zp). */
void i8t_norm_fold_u8(size_t channels, i8t_qparams xq, const float *mean, const float *scale,
                      const float *gamma, const float *beta, float *mul, float *add);
void i8t_identity_fold_u8(size_t channels, i8t_qparams xq, float *mul, float *add);

/** Per-sample min and max of relu?(sum of terms) (the output quantizer's range). */
i8t_status i8t_sum_act_range_u8(i8t_workspace *ws, const i8t_u8_term *terms, int nterms,
                                int relu, i8t_act_shape shape, float *sample_min,
                                float *sample_max);
/** The per-sample range of relu?(mul[c] * q + add[c]) for one term, from the
 * per-sample per-channel extremes of q (i8t_norm_stats_samples_u8): exact,
 * as the map is monotone in q for every channel (the same float operations
 * as the forward). */
void i8t_sum_act_range_from_extremes(const float *mul, const float *add, int relu,
                                     i8t_act_shape shape, const uint8_t *sample_min,
                                     const uint8_t *sample_max, float *out_min, float *out_max);

/** out = Q_u8(relu?(sum of terms)) with parameters p. */
i8t_status i8t_sum_act_forward_u8(i8t_workspace *ws, const i8t_u8_term *terms, int nterms,
                                  int relu, i8t_act_shape shape, i8t_qparams p,
                                  i8t_rounding r, uint8_t *out);

/** The gradient arriving at an int8 activation: the sum of its consumers'
 * contributions, each a tensor times a scale. */
typedef enum i8t_grad_src_kind {
  I8T_GRAD_S32 = 0,        /**< int32, same shape as the activation */
  I8T_GRAD_S8 = 1,         /**< int8, same shape */
  I8T_GRAD_S32_POOLED = 2, /**< int32 [batch x channels], broadcast over spatial rows
                                (global average pooling's backward; fold 1/spatial into scale) */
  I8T_GRAD_F32 = 3,        /**< float, same shape */
} i8t_grad_src_kind;

typedef struct i8t_grad_src {
  i8t_grad_src_kind kind;
  const void *data;
  float scale;
} i8t_grad_src;

/** Backward of sum + ReLU: g = sum of the sources, masked by
 * relu'(sum of terms) (recomputed exactly as in the forward), quantized to
 * s8 (stochastic, absmax / 127) into gpre with *gpre_scale. gpre is the
 * incoming gradient of every term (a BN's backward, an identity shortcut). */
i8t_status i8t_sum_act_backward_u8(i8t_workspace *ws, const i8t_grad_src *srcs, int nsrcs,
                                   const i8t_u8_term *terms, int nterms, int relu,
                                   i8t_act_shape shape, i8t_rounding r, int8_t *gpre,
                                   float *gpre_scale);

/** The same forward that also writes relu_mask[i] = 1 where the sum is
 * positive (0 elsewhere): a byte per value, so that the backward need not
 * recompute the terms. */
i8t_status i8t_sum_act_forward_mask_u8(i8t_workspace *ws, const i8t_u8_term *terms, int nterms,
                                       i8t_act_shape shape, i8t_qparams p, i8t_rounding r,
                                       uint8_t *out, uint8_t *relu_mask);
/** Backward of sum + ReLU from that mask (NULL: no ReLU): the same result as
 * i8t_sum_act_backward_u8 on the same terms. */
i8t_status i8t_sum_act_backward_mask_u8(i8t_workspace *ws, const i8t_grad_src *srcs, int nsrcs,
                                        const uint8_t *relu_mask, i8t_act_shape shape,
                                        i8t_rounding r, int8_t *gpre, float *gpre_scale);

/** The first of i8t_sum_act_backward_mask_u8's two passes on its own: max |g|
 * over activation rows [row0, row1) (a row: one spatial position of one
 * sample, `channels` values), NaN if any value is not finite. The maximum
 * over all rows, passed to i8t_sum_act_backward_mask_absmax_u8, saves that
 * function its own pass: a pass producing a source can take the maximum of
 * each block while it is in cache (i8t_conv2d_backward_data_absmax_s8).
 * When sum_out is not NULL, g itself is written to sum_out[row * channels +
 * c] for those rows; sum_out may be the data of an I8T_GRAD_S32 source (g
 * then replaces it; each element is read before it is written). g as the
 * one source {I8T_GRAD_F32, sum_out, 1.0f}, with no mask, gives the same
 * backward result as the sources and mask it sums. Sources must not be
 * I8T_GRAD_F32. */
i8t_status i8t_grad_sum_absmax_u8(const i8t_grad_src *srcs, int nsrcs, const uint8_t *relu_mask,
                                  i8t_act_shape shape, size_t row0, size_t row1, float *absmax,
                                  float *sum_out);
/** i8t_sum_act_backward_mask_u8 given max |g| over the whole activation
 * (from i8t_grad_sum_absmax_u8 on the same sources and mask): one pass over
 * the sources instead of two, the same result bit for bit. A NaN absmax is
 * reported as a non-finite gradient (I8T_ERR_NONFINITE). */
i8t_status i8t_sum_act_backward_mask_absmax_u8(i8t_workspace *ws, const i8t_grad_src *srcs,
                                               int nsrcs, const uint8_t *relu_mask,
                                               i8t_act_shape shape, float absmax,
                                               i8t_rounding r, int8_t *gpre,
                                               float *gpre_scale);

/** The gradient sum that a grad-input pass completes: the activation's
 * other sources (in order) and its ReLU mask, with the pass's own output
 * dx joining them as the last source, I8T_GRAD_S32 with scale dx_scale. */
typedef struct i8t_grad_sum_ref {
  const i8t_grad_src *others; /**< may be NULL when nothers = 0 */
  int nothers;                /**< 0 to 7 */
  float dx_scale;
  const uint8_t *relu_mask;   /**< as in i8t_sum_act_backward_mask_u8 (NULL: no ReLU) */
  float *sum_out; /**< NULL, or where the sum g goes (as in i8t_grad_sum_absmax_u8);
                       (float *)dx: g replaces dx */
} i8t_grad_sum_ref;
/** i8t_conv2d_backward_data_s8 that also returns *absmax, max |g| of that
 * gradient sum over the whole input activation (i8t_grad_sum_absmax_u8 over
 * all its rows), and writes g to sum->sum_out if set: each block of samples
 * is reduced right after its dx is written, while it is in cache, instead of
 * in later passes over memory. */
i8t_status i8t_conv2d_backward_data_absmax_s8(i8t_workspace *ws, const i8t_conv_shape *s,
                                              const int8_t *dy, const int8_t *w, int32_t *dx,
                                              const i8t_grad_sum_ref *sum, float *absmax);

/* fp32 counterparts: out = relu?(sum of n inputs); gpre = g * [out > 0]. */
i8t_status i8t_sum_act_forward_f32(i8t_workspace *ws, const float *const *inputs, int ninputs,
                                   int relu, size_t count, float *out);
i8t_status i8t_relu_backward_f32(i8t_workspace *ws, const float *out, const float *g,
                                 size_t count, float *gpre);

/* ------------------------------------------------------------------------ */
/* Pooling, loss, optimiser                                                 */
/* ------------------------------------------------------------------------ */

/** Max pooling, square window `kernel`, `stride`, no padding: out is
 * [batch, (h - kernel) / stride + 1, (w - kernel) / stride + 1, c]. The
 * gradient goes to the first (row-major) maximum of each window. */
typedef struct i8t_pool_shape {
  int batch, h, w, c, kernel, stride;
} i8t_pool_shape;
int i8t_pool_out_h(const i8t_pool_shape *s);
int i8t_pool_out_w(const i8t_pool_shape *s);
i8t_status i8t_maxpool_forward_u8(i8t_workspace *ws, const i8t_pool_shape *s, const uint8_t *x,
                                  uint8_t *y);
/** int8 backward: the incoming sources are quantized to s8 (stochastic) and
 * routed into dx (int32, x's shape, zeroed first) with scale *dx_scale. */
i8t_status i8t_maxpool_backward_u8(i8t_workspace *ws, const i8t_pool_shape *s,
                                   const uint8_t *x, const i8t_grad_src *srcs, int nsrcs,
                                   i8t_rounding r, int32_t *dx, float *dx_scale);
i8t_status i8t_maxpool_forward_f32(i8t_workspace *ws, const i8t_pool_shape *s, const float *x,
                                   float *y);
/** dx (x's shape) = routed dy; accumulate != 0 adds to dx instead of overwriting. */
i8t_status i8t_maxpool_backward_f32(i8t_workspace *ws, const i8t_pool_shape *s, const float *x,
                                    const float *dy, float *dx, int accumulate);

/** Global average pooling [batch, spatial, c] -> [batch, c]. The u8 version
 * sums the integers exactly and writes real values. */
i8t_status i8t_avgpool_forward_u8(i8t_workspace *ws, i8t_act_shape shape, const uint8_t *x,
                                  i8t_qparams xq, float *y);
i8t_status i8t_avgpool_forward_f32(i8t_workspace *ws, i8t_act_shape shape, const float *x,
                                   float *y);
i8t_status i8t_avgpool_backward_f32(i8t_workspace *ws, i8t_act_shape shape, const float *dy,
                                    float *dx, int accumulate);

/** Mean softmax cross-entropy of logits [n x classes]; dlogits (may be NULL)
 * = (softmax - onehot) / n; *correct counts arg-max hits. Labels >= classes
 * are an error. */
i8t_status i8t_softmax_xent(const float *logits, const uint8_t *labels, size_t n,
                            size_t classes, double *loss, size_t *correct, float *dlogits);

/** SGD with momentum (PyTorch's convention): v = momentum * v + g + decay * w;
 * w -= lr * v. */
void i8t_sgd_update(float *w, const float *g, float *v, size_t count, float lr, float momentum,
                    float decay);

#ifdef __cplusplus
}
#endif

#endif
