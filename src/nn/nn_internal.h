/* Internals shared by the layer library (src/nn): the workspace, the task
 * split every parallel pass uses, error collection inside tasks, and the
 * block-wise quantization of values computed on the fly. */
#ifndef INT8TRAIN_NN_INTERNAL_H
#define INT8TRAIN_NN_INTERNAL_H

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>

#include "int8train/layers.h"
#include "internal.h"
#include "threadpool.h"

/* Per-worker scratch slots: a pass reserves the slots it uses for every
 * worker before its parallel loop, so tasks never allocate. */
enum { NN_SLOT_A = 0, NN_SLOT_B, NN_SLOT_C, NN_SLOT_D, NN_SLOTS };

typedef struct nn_buf {
  void *p;
  size_t size;
} nn_buf;

struct nn_dnnl;

struct i8t_workspace {
  i8t_context *ctx;
  int threads;
  nn_buf *scratch; /* [threads][NN_SLOTS] */
  nn_buf shared;   /* read-only during a parallel pass: replicated parameters */
  i8t_fp32_backend backend;
  struct nn_dnnl *dnnl; /* oneDNN engine, stream and primitive cache */
};

/* Grows slot `slot` of every worker to at least `bytes`. */
i8t_status nn_reserve(i8t_workspace *ws, int slot, size_t bytes);
static inline void *nn_scratch(i8t_workspace *ws, int worker, int slot) {
  return ws->scratch[(size_t)worker * NN_SLOTS + slot].p;
}

/* Values are computed into blocks of this many floats (in L1) and handed to
 * the quantizer kernels in one call. */
#define NN_BLOCK 2048

/* Rows of `channels` values per block: whole rows, about NN_BLOCK values. */
static inline size_t nn_block_rows(size_t channels) {
  return channels >= NN_BLOCK ? 1 : NN_BLOCK / channels;
}

/* Per-channel parameters replicated over a block of rows (rep[r * C + c] =
 * p[c]), so that the passes run one long, vectorisable loop per block
 * instead of a short one per row. The workspace's shared buffer holds
 * `count` such arrays of nn_block_rows(C) * C floats; returns NULL (with a
 * message) when it cannot grow. */
float *nn_shared_floats(i8t_workspace *ws, size_t count, size_t channels);
/* The shared buffer as `bytes` bytes (NULL with a message if it cannot grow). */
void *nn_shared_bytes(i8t_workspace *ws, size_t bytes);
static inline void nn_replicate(const float *p, size_t C, float *rep) {
  size_t rows = nn_block_rows(C);
  for (size_t r = 0; r < rows; r++)
    for (size_t c = 0; c < C; c++) rep[r * C + c] = p[c];
}

/* First failure of a parallel pass (tasks cannot return a status). */
typedef struct nn_errors {
  atomic_int status;
} nn_errors;
static inline void nn_errors_init(nn_errors *e) { atomic_init(&e->status, I8T_OK); }
static inline void nn_errors_set(nn_errors *e, i8t_status st) {
  int expected = I8T_OK;
  if (st != I8T_OK) atomic_compare_exchange_strong(&e->status, &expected, (int)st);
}
static inline i8t_status nn_errors_get(nn_errors *e) {
  return (i8t_status)atomic_load(&e->status);
}

/* Splits `items` into tasks of `per` items (the last may be shorter). */
static inline size_t nn_task_count(size_t items, size_t per) {
  return per ? (items + per - 1) / per : 0;
}

/* Samples per task for a pass over `batch` samples of `rows_per_sample`
 * rows: about `target_rows` rows per task and at least 16 tasks when the
 * batch allows. Depends on the shapes only, never on the thread count. */
size_t nn_samples_per_task(size_t batch, size_t rows_per_sample, size_t target_rows);

/* Rows per task for a pass over `rows` rows of `channels` values. */
size_t nn_rows_per_task(size_t rows, size_t channels);

/* Quantizes values computed on the fly: v[0..n) are elements first..first+n
 * of a tensor whose stream is r. */
static inline i8t_rounding nn_round_at(i8t_rounding r, size_t first) {
  r.counter += first;
  return r;
}

/* i8t_requantize_s32_u8 of `rows` rows of C values at y, which are the
 * tensor's elements first.. (so that the rounding stream matches): q =
 * Q_u8(y * cs) in blocks of nn_block_rows(C) rows; cs is the column scales
 * replicated over a block. */
i8t_status nn_requantize_rows(const int32_t *y, size_t rows, size_t C, const float *cs,
                              i8t_qparams p, i8t_rounding r, size_t first, uint8_t *q);

/* A convolution output's real min and max from its int32 ones, with one
 * column scale (which may be negative: then they swap). */
static inline void nn_scaled_range(int32_t mn, int32_t mx, float scale, float *lo, float *hi) {
  float a = (float)mn * scale, b = (float)mx * scale;
  *lo = a < b ? a : b;
  *hi = a < b ? b : a;
}

/* The u8 output of a convolution forward fused to it (i8t_conv2d_forward_u8,
 * on the stem's kernels or the GEMM path): each sample's int32 block,
 * recomputed in cache, requantized into q with qp and r (q NULL: no u8
 * output); cs_rep: the column scales replicated over a requantize block. */
typedef struct nn_fused_u8 {
  uint8_t *q;
  i8t_qparams qp;
  i8t_rounding r;
  const float *cs_rep;
} nn_fused_u8;

/* Floats of f's replicated column scales for C channels (0 without q). */
static inline size_t nn_fused_rep_count(const nn_fused_u8 *f, size_t C) {
  return f->q ? nn_block_rows(C) * C : 0;
}

/* rep[0..n) = the column scales (ncs = 1 or C of them) over a block of rows. */
static inline void nn_replicate_scales(const float *cs, size_t ncs, size_t C, size_t n,
                                       float *rep) {
  for (size_t i = 0; i < n; i++) rep[i] = cs[ncs == 1 ? 0 : i % C];
}

/* Sample n's int32 block y (rows x C) requantized into f->q at the sample's
 * element offset (the rounding stream of the whole tensor). */
static inline i8t_status nn_fused_u8_sample(const nn_fused_u8 *f, const int32_t *y, size_t rows,
                                            size_t C, size_t n) {
  return nn_requantize_rows(y, rows, C, f->cs_rep, f->qp, f->r, n * rows * C, f->q + n * rows * C);
}

/* Absolute maximum of v[0..n) (0 for n = 0); non-finite values make it +Inf. */
float nn_absmax(const float *v, size_t n);

/* The largest of n partial maxima of |value| (each >= 0, or NaN where its
 * part held a non-finite value), NaN if any is NaN: the fold of per-task or
 * per-sample absmax results, in any order. */
static inline float nn_max_of_parts(const float *m, size_t n) {
  float r = 0.0f;
  int nan = 0;
  for (size_t i = 0; i < n; i++) nan |= m[i] != m[i], r = fmaxf(r, m[i]);
  return nan ? NAN : r;
}

/* Largest |value| the quantizer may see: a non-finite value is an error. */
i8t_status nn_check_finite(float absmax, const char *what);

/* Parameters of a symmetric tensor with this absmax (8 or 16 bits). */
static inline i8t_qparams nn_symmetric(float absmax, int bits) {
  return i8t_qparams_symmetric(absmax, bits);
}

/* v[rows r0..r1) of an activation = sum of scale * source, in source order. */
void nn_combine_sources(const i8t_grad_src *s, int ns, i8t_act_shape sh, size_t r0, size_t r1,
                        float *v);
i8t_status nn_check_sources(const i8t_grad_src *s, int ns);

/* ------------------------------------------------------------------------ */
/* fp32 backend entry points (src/nn/onednn.c, src/nn/conv_f32.c)           */
/* ------------------------------------------------------------------------ */

int nn_use_onednn(const i8t_workspace *ws);
void nn_dnnl_destroy(struct nn_dnnl *d);

i8t_status nn_dnnl_conv_forward(i8t_workspace *ws, const i8t_conv_shape *s, const float *x,
                                 const float *w, float *y);
i8t_status nn_dnnl_conv_backward_data(i8t_workspace *ws, const i8t_conv_shape *s,
                                      const float *dy, const float *w, float *dx);
i8t_status nn_dnnl_conv_backward_weights(i8t_workspace *ws, const i8t_conv_shape *s,
                                         const float *dy, const float *x, float *dw);
i8t_status nn_dnnl_fc_forward(i8t_workspace *ws, int n, int in, int out, const float *x,
                              const float *w, const float *bias, float *y);
i8t_status nn_dnnl_fc_backward_data(i8t_workspace *ws, int n, int in, int out,
                                    const float *dy, const float *w, float *dx);
i8t_status nn_dnnl_fc_backward_weights(i8t_workspace *ws, int n, int in, int out,
                                       const float *dy, const float *x, float *dw,
                                       float *dbias);
/* Standard BN, training (mean/var out) or evaluation (mean/var in). */
i8t_status nn_dnnl_bn_forward(i8t_workspace *ws, size_t rows, size_t channels, float eps,
                              int training, const float *x, const float *gamma,
                              const float *beta, float *mean, float *var, float *y);
i8t_status nn_dnnl_bn_backward(i8t_workspace *ws, size_t rows, size_t channels, float eps,
                               const float *x, const float *dy, const float *mean,
                               const float *var, const float *gamma, const float *beta, float *dx,
                               float *dgamma, float *dbeta);

/* Portable sgemm: C[M x N] = (accumulate ? C : 0) + A[M x K] * B[K x N],
 * element (r, c) of X at X[r * rs + c * cs]; C row-major with ldc. */
void nn_sgemm(size_t M, size_t N, size_t K, const float *A, size_t a_rs, size_t a_cs,
              const float *B, size_t b_rs, size_t b_cs, float *C, size_t ldc, int accumulate);

#endif
