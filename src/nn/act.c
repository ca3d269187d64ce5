/* Activations between layers: the fused "sum of terms + ReLU -> u8" pass
 * that ends every conv-BN-ReLU unit and residual block (forward and
 * backward), the requantization of GEMM outputs, the input images, and the
 * batch-mean ranges of the activation quantizers. Values are computed in
 * blocks of NN_BLOCK floats and quantized by the kernel table's quantizers;
 * the backward's integer gradient sources go straight through the fused
 * grad_sum kernels instead (absmax pass, then sum + mask + quantize). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_table.h"
#include "rng.h"
#include "nn_internal.h"

void i8t_batch_range(const float *sample_min, const float *sample_max, size_t n, float *lo,
                     float *hi) {
  double a = 0.0, b = 0.0;
  for (size_t i = 0; i < n; i++) a += sample_min[i], b += sample_max[i];
  *lo = n ? (float)(a / (double)n) : 0.0f;
  *hi = n ? (float)(b / (double)n) : 0.0f;
}

void i8t_running_range_update(float running[2], float lo, float hi) {
  running[0] = 0.1f * running[0] + 0.9f * lo;
  running[1] = 0.1f * running[1] + 0.9f * hi;
}

/* ------------------------------------------------------------------------ */
/* Sum of u8 terms + ReLU                                                   */
/* ------------------------------------------------------------------------ */

/* The terms with their per-channel parameters replicated over a block of
 * rows (in the workspace's shared buffer). */
typedef struct rep_terms {
  int n;
  const uint8_t *x[4];
  const float *mul[4], *add[4];
} rep_terms;

static i8t_status replicate_terms(i8t_workspace *ws, const i8t_u8_term *t, int nt, size_t C,
                                  rep_terms *rt) {
  float *buf = nn_shared_floats(ws, 2 * (size_t)nt, C);
  if (!buf) return I8T_ERR_NO_MEMORY;
  size_t len = nn_block_rows(C) * C;
  rt->n = nt;
  for (int k = 0; k < nt; k++) {
    float *m = buf + (size_t)(2 * k) * len, *a = m + len;
    nn_replicate(t[k].mul, C, m);
    nn_replicate(t[k].add, C, a);
    rt->x[k] = t[k].x, rt->mul[k] = m, rt->add[k] = a;
  }
  return I8T_OK;
}

/* v[0..n) = relu?(sum of terms) for the n values from element `first` (a
 * whole number of rows, at most one block); one function for the forward,
 * the range and the backward mask, so that all three see the same values. */
static void eval_block(const rep_terms *t, int relu, size_t first, size_t n, float *restrict v) {
  const i8t_kernel_table *kt = i8t_kernels(); /* the loops run on the table's ISA */
  for (int k = 0; k < t->n; k++)
    kt->affine_u8_f32.run(n, t->x[k] + first, t->mul[k], t->add[k], k > 0, v);
  if (relu)
    for (size_t i = 0; i < n; i++) v[i] = v[i] > 0.0f ? v[i] : 0.0f;
}

static i8t_status check_terms(const i8t_u8_term *t, int nt, i8t_act_shape sh) {
  if (!t || nt < 1 || nt > 4)
    return i8t_error(I8T_ERR_INVALID_ARG, "sum-act: 1 to 4 terms expected (got %d)", nt);
  for (int k = 0; k < nt; k++)
    if (!t[k].x || !t[k].mul || !t[k].add)
      return i8t_error(I8T_ERR_INVALID_ARG, "sum-act: term %d has a NULL pointer", k);
  if (sh.batch == 0 || sh.spatial == 0 || sh.channels == 0)
    return i8t_error(I8T_ERR_SHAPE, "sum-act: empty shape");
  if (sh.batch * sh.spatial * sh.channels > UINT32_MAX)
    return i8t_error(I8T_ERR_SHAPE, "sum-act: tensors above 2^32 elements are not supported");
  return I8T_OK;
}

typedef struct sum_act_job {
  rep_terms t;
  int relu;
  i8t_act_shape sh;
  size_t per; /* samples (range pass) or rows (other passes) per task */
  i8t_workspace *ws;
  float *smin, *smax;
  i8t_qparams p;
  float inv_scale; /* 1 / p.scale, as the quantizer takes it */
  i8t_rounding r;
  uint8_t *out, *mask_out;
  /* backward */
  const uint8_t *mask; /* relu' as bytes, or NULL: recomputed from the terms */
  const i8t_grad_src *srcs;
  int ns;
  float *task_abs;
  int8_t *gpre;
  float *gpre_scale;
  nn_errors err;
} sum_act_job;

/* Runs fn(job, b0, b1, v, w) on the blocks of rows [r0, r1), v and w being
 * the worker's two block buffers. */
typedef void (*block_fn)(sum_act_job *j, size_t b0, size_t b1, float *v, float *w);

static void for_blocks(sum_act_job *j, int worker, size_t r0, size_t r1, block_fn fn) {
  size_t sub = nn_block_rows(j->sh.channels);
  float *v = nn_scratch(j->ws, worker, NN_SLOT_D), *w = v + sub * j->sh.channels;
  for (size_t b0 = r0; b0 < r1; b0 += sub) fn(j, b0, I8T_MIN(r1, b0 + sub), v, w);
}

static i8t_status reserve_blocks(i8t_workspace *ws, size_t C) {
  return nn_reserve(ws, NN_SLOT_D, 2 * nn_block_rows(C) * C * sizeof(float));
}

static void range_block(sum_act_job *j, size_t b0, size_t b1, float *v, float *w) {
  (void)w;
  size_t C = j->sh.channels, n = (b1 - b0) * C, sample = b0 / j->sh.spatial;
  eval_block(&j->t, j->relu, b0 * C, n, v);
  float mn, mx;
  if (i8t_minmax_f32(v, n, &mn, &mx) != I8T_OK) mn = mx = NAN; /* reported by the caller */
  j->smin[sample] = mn < j->smin[sample] || mn != mn ? mn : j->smin[sample];
  j->smax[sample] = mx > j->smax[sample] || mx != mx ? mx : j->smax[sample];
}

static void range_task(void *arg, size_t task, int worker) {
  sum_act_job *j = arg;
  size_t n0 = task * j->per, n1 = I8T_MIN(j->sh.batch, n0 + j->per);
  for (size_t n = n0; n < n1; n++) { /* blocks never straddle two samples */
    j->smin[n] = INFINITY, j->smax[n] = -INFINITY;
    for_blocks(j, worker, n * j->sh.spatial, (n + 1) * j->sh.spatial, range_block);
  }
}

i8t_status i8t_sum_act_range_u8(i8t_workspace *ws, const i8t_u8_term *terms, int nterms,
                                int relu, i8t_act_shape shape, float *sample_min,
                                float *sample_max) {
  i8t_status st = check_terms(terms, nterms, shape);
  if (st) return st;
  if (!ws || !sample_min || !sample_max)
    return i8t_error(I8T_ERR_INVALID_ARG, "sum-act range: NULL argument");
  sum_act_job j = {.relu = relu, .sh = shape, .ws = ws, .smin = sample_min, .smax = sample_max};
  if ((st = reserve_blocks(ws, shape.channels)) ||
      (st = replicate_terms(ws, terms, nterms, shape.channels, &j.t)))
    return st;
  j.per = nn_samples_per_task(shape.batch, shape.spatial, 4096);
  i8t_parallel_for(ws->ctx, nn_task_count(shape.batch, j.per), range_task, &j);
  for (size_t n = 0; n < shape.batch; n++)
    if (!isfinite(sample_min[n]) || !isfinite(sample_max[n]))
      return i8t_error(I8T_ERR_NONFINITE, "activation of sample %zu is not finite", n);
  return I8T_OK;
}

/* Channel c's output range in one sample from its input extremes: as
 * eval_block, mul * (float)q + add, then the ReLU. Plain comparisons, not
 * fminf / fmaxf (a libm call per value in the baseline-ISA build); returns
 * whether a value was NaN. */
static inline int channel_range(const float *mul, const float *add, int relu,
                                const uint8_t *qmin, const uint8_t *qmax, size_t c, float *l,
                                float *h) {
  float a = mul[c] * (float)qmin[c] + add[c];
  float b = mul[c] * (float)qmax[c] + add[c];
  if (relu) a = a > 0.0f ? a : 0.0f, b = b > 0.0f ? b : 0.0f;
  *l = a < b ? a : b, *h = a > b ? a : b;
  return a != a || b != b;
}

void i8t_sum_act_range_from_extremes(const float *mul, const float *add, int relu,
                                     i8t_act_shape shape, const uint8_t *sample_min,
                                     const uint8_t *sample_max, float *out_min, float *out_max) {
  /* Independent min / max chains over the channels: with a single chain its
   * latency bounded the loop (a tenth of Range BN's forward at 7x7x512). */
  enum { LANES = 16 };
  const size_t C = shape.channels, whole = C / LANES * LANES;
  for (size_t n = 0; n < shape.batch; n++) {
    const uint8_t *qmin = sample_min + n * C, *qmax = sample_max + n * C;
    float lo[LANES], hi[LANES], l, h;
    int nan = 0;
    for (size_t k = 0; k < LANES; k++) lo[k] = INFINITY, hi[k] = -INFINITY;
    for (size_t c0 = 0; c0 < whole; c0 += LANES)
      for (size_t k = 0; k < LANES; k++) {
        nan |= channel_range(mul, add, relu, qmin, qmax, c0 + k, &l, &h);
        lo[k] = l < lo[k] ? l : lo[k];
        hi[k] = h > hi[k] ? h : hi[k];
      }
    for (size_t c = whole; c < C; c++) { /* the leftover channels: chain 0 */
      nan |= channel_range(mul, add, relu, qmin, qmax, c, &l, &h);
      lo[0] = l < lo[0] ? l : lo[0];
      hi[0] = h > hi[0] ? h : hi[0];
    }
    for (size_t k = 1; k < LANES; k++) {
      lo[0] = lo[k] < lo[0] ? lo[k] : lo[0];
      hi[0] = hi[k] > hi[0] ? hi[k] : hi[0];
    }
    if (nan) lo[0] = hi[0] = NAN; /* NaN statistics: report, never hide */
    out_min[n] = lo[0], out_max[n] = hi[0];
  }
}

/* eval_block's values (and the ReLU's mask) quantized: the terms before the
 * last summed into v, the last one added, rectified and quantized in the
 * kernel's registers (affine_quantize_u8: the same bits as eval_block with
 * the ReLU, then quantize_f32_u8). */
static void forward_block(sum_act_job *j, size_t b0, size_t b1, float *v, float *w) {
  (void)w;
  const i8t_kernel_table *kt = i8t_kernels();
  const rep_terms *t = &j->t;
  const size_t C = j->sh.channels, n = (b1 - b0) * C, first = b0 * C;
  const int last = t->n - 1;
  for (int k = 0; k < last; k++)
    kt->affine_u8_f32.run(n, t->x[k] + first, t->mul[k], t->add[k], k > 0, v);
  i8t_rounding r = nn_round_at(j->r, first);
  i8t_noise noise;
  for (size_t at = 0, len; at < n; at += len) { /* split where the counter wraps */
    len = i8t_noise_piece(r, at, n, &noise);
    kt->affine_quantize_u8.run(len, t->x[last] + first + at, t->mul[last] + at,
                               t->add[last] + at, last ? v + at : NULL, j->relu,
                               j->mask_out ? j->mask_out + first + at : NULL, j->inv_scale,
                               j->p.zero_point, noise, j->out + first + at);
  }
}

static void forward_task(void *arg, size_t task, int worker) {
  sum_act_job *j = arg;
  size_t rows = j->sh.batch * j->sh.spatial, r0 = task * j->per;
  for_blocks(j, worker, r0, I8T_MIN(rows, r0 + j->per), forward_block);
}

static i8t_status sum_act_forward(i8t_workspace *ws, const i8t_u8_term *terms, int nterms,
                                  int relu, i8t_act_shape shape, i8t_qparams p, i8t_rounding r,
                                  uint8_t *out, uint8_t *mask) {
  i8t_status st = check_terms(terms, nterms, shape);
  if (st) return st;
  if (!ws || !out) return i8t_error(I8T_ERR_INVALID_ARG, "sum-act forward: NULL argument");
  if (!(p.scale > 0.0f) || !isfinite(p.scale))
    return i8t_error(I8T_ERR_INVALID_ARG, "sum-act forward: scale %g is not a positive finite "
                     "number", (double)p.scale);
  sum_act_job j = {.relu = relu, .sh = shape, .ws = ws, .p = p, .inv_scale = 1.0f / p.scale,
                   .r = r, .out = out, .mask_out = mask};
  if ((st = reserve_blocks(ws, shape.channels)) ||
      (st = replicate_terms(ws, terms, nterms, shape.channels, &j.t)))
    return st;
  size_t rows = shape.batch * shape.spatial;
  nn_errors_init(&j.err);
  j.per = nn_rows_per_task(rows, shape.channels);
  i8t_parallel_for(ws->ctx, nn_task_count(rows, j.per), forward_task, &j);
  return nn_errors_get(&j.err);
}

i8t_status i8t_sum_act_forward_u8(i8t_workspace *ws, const i8t_u8_term *terms, int nterms,
                                  int relu, i8t_act_shape shape, i8t_qparams p,
                                  i8t_rounding r, uint8_t *out) {
  return sum_act_forward(ws, terms, nterms, relu, shape, p, r, out, NULL);
}

i8t_status i8t_sum_act_forward_mask_u8(i8t_workspace *ws, const i8t_u8_term *terms, int nterms,
                                       i8t_act_shape shape, i8t_qparams p, i8t_rounding r,
                                       uint8_t *out, uint8_t *relu_mask) {
  if (!relu_mask) return i8t_error(I8T_ERR_INVALID_ARG, "sum-act forward: NULL mask");
  return sum_act_forward(ws, terms, nterms, 1, shape, p, r, out, relu_mask);
}

/* ------------------------------------------------------------------------ */
/* Backward: combine the incoming gradient, mask, quantize to s8            */
/* ------------------------------------------------------------------------ */

void nn_combine_sources(const i8t_grad_src *s, int ns, i8t_act_shape sh, size_t r0,
                        size_t r1, float *restrict v) {
  const size_t C = sh.channels, n = (r1 - r0) * C, first = r0 * C;
  const i8t_kernel_table *kt = i8t_kernels();
  /* A first s32 or s8 source writes v itself (as 0 + term): no zeroing pass. */
  int fresh = s[0].kind == I8T_GRAD_S32 || s[0].kind == I8T_GRAD_S8;
  if (!fresh) memset(v, 0, n * sizeof *v);
  for (int k = 0; k < ns; k++) { /* in source order: the same sums every time */
    const float sc = s[k].scale;
    switch (s[k].kind) {
      case I8T_GRAD_S32:
        kt->axpy_s32_f32.run(n, sc, (const int32_t *)s[k].data + first, k > 0, v);
        break;
      case I8T_GRAD_S8:
        kt->axpy_s8_f32.run(n, sc, (const int8_t *)s[k].data + first, k > 0, v);
        break;
      case I8T_GRAD_F32: {
        const float *restrict p = (const float *)s[k].data + first;
        for (size_t i = 0; i < n; i++) v[i] += sc * p[i];
        break;
      }
      case I8T_GRAD_S32_POOLED:
        for (size_t r = r0; r < r1; r++) {
          const int32_t *restrict p = (const int32_t *)s[k].data + (r / sh.spatial) * C;
          float *restrict vr = v + (r - r0) * C;
          for (size_t c = 0; c < C; c++) vr[c] += sc * (float)p[c];
        }
        break;
    }
  }
}

i8t_status nn_check_sources(const i8t_grad_src *s, int ns) {
  if (!s || ns < 1 || ns > 8)
    return i8t_error(I8T_ERR_INVALID_ARG, "gradient: 1 to 8 sources expected (got %d)", ns);
  for (int k = 0; k < ns; k++) {
    if (!s[k].data) return i8t_error(I8T_ERR_INVALID_ARG, "gradient source %d is NULL", k);
    if ((unsigned)s[k].kind > I8T_GRAD_F32)
      return i8t_error(I8T_ERR_INVALID_ARG, "gradient source %d: unknown kind %d", k,
                       (int)s[k].kind);
  }
  return I8T_OK;
}

/* Masked incoming gradient of rows [b0, b1) into v (w: scratch). */
static void masked_gradient(const sum_act_job *j, size_t b0, size_t b1, float *restrict v,
                            float *restrict w) {
  size_t n = (b1 - b0) * j->sh.channels;
  nn_combine_sources(j->srcs, j->ns, j->sh, b0, b1, v);
  if (!j->relu) return;
  if (j->mask) {
    i8t_kernels()->mask_u8_f32.run(n, j->mask + b0 * j->sh.channels, v);
    return;
  }
  eval_block(&j->t, 0, b0 * j->sh.channels, n, w);
  i8t_kernels()->mask_pos_f32.run(n, w, v);
}

static void absmax_block(sum_act_job *j, size_t b0, size_t b1, float *v, float *w) {
  masked_gradient(j, b0, b1, v, w);
  size_t task = b0 / j->per;
  float m = nn_absmax(v, (b1 - b0) * j->sh.channels);
  j->task_abs[task] = m > j->task_abs[task] || m != m ? m : j->task_abs[task];
}

static void backward_absmax_task(void *arg, size_t task, int worker) {
  sum_act_job *j = arg;
  size_t rows = j->sh.batch * j->sh.spatial, r0 = task * j->per;
  j->task_abs[task] = 0.0f;
  for_blocks(j, worker, r0, I8T_MIN(rows, r0 + j->per), absmax_block);
}

static void quantize_block(sum_act_job *j, size_t b0, size_t b1, float *v, float *w) {
  size_t C = j->sh.channels;
  masked_gradient(j, b0, b1, v, w);
  nn_errors_set(&j->err, i8t_quantize_f32_s8(v, (b1 - b0) * C, j->p, nn_round_at(j->r, b0 * C),
                                             j->gpre + b0 * C));
}

static void backward_quantize_task(void *arg, size_t task, int worker) {
  sum_act_job *j = arg;
  size_t rows = j->sh.batch * j->sh.spatial, r0 = task * j->per;
  for_blocks(j, worker, r0, I8T_MIN(rows, r0 + j->per), quantize_block);
}

/* A gradient that already is the masked sum (i8t_grad_sum_absmax_u8's
 * sum_out: one float source of scale 1, no ReLU) is quantized straight from
 * it, with the rule and stream of quantize_block (0 + 1 * v is v). */
static int ready_gradient(const sum_act_job *j) {
  return j->ns == 1 && j->srcs[0].kind == I8T_GRAD_F32 && j->srcs[0].scale == 1.0f && !j->relu;
}

static void ready_quantize_task(void *arg, size_t task, int worker) {
  sum_act_job *j = arg;
  (void)worker;
  const size_t C = j->sh.channels, rows = j->sh.batch * j->sh.spatial, r0 = task * j->per;
  const size_t n = (I8T_MIN(rows, r0 + j->per) - r0) * C;
  const float *v = (const float *)j->srcs[0].data + r0 * C;
  nn_errors_set(&j->err,
                i8t_quantize_f32_s8(v, n, j->p, nn_round_at(j->r, r0 * C), j->gpre + r0 * C));
}

/* The fused path: int32, int8 and pooled sources with stored ReLU bytes (or
 * no ReLU) are summed, masked and reduced or quantized in one kernel call
 * per span, reading the sources directly (kernel_table.h, i8t_grad_span).
 * Float sources and masks recomputed from the terms take the passes above. */
static int fused_backward(const sum_act_job *j) {
  if (j->relu && !j->mask) return 0;
  for (int k = 0; k < j->ns; k++)
    if (j->srcs[k].kind == I8T_GRAD_F32) return 0;
  return 1;
}

static int has_pooled(const sum_act_job *j) {
  for (int k = 0; k < j->ns; k++)
    if (j->srcs[k].kind == I8T_GRAD_S32_POOLED) return 1;
  return 0;
}

/* The span of rows [r0, ...): element i is element r0 * C + i of the
 * activation; a pooled source is only contiguous within one row. */
static i8t_grad_span span_at_row(const sum_act_job *j, size_t r0) {
  const size_t C = j->sh.channels, first = r0 * C;
  i8t_grad_span s = {.n_src = j->ns, .mask = j->relu ? j->mask + first : NULL};
  for (int k = 0; k < j->ns; k++) {
    const i8t_grad_src *g = &j->srcs[k];
    s.sc[k] = g->scale;
    s.s8[k] = g->kind == I8T_GRAD_S8;
    if (g->kind == I8T_GRAD_S8) s.src[k] = (const int8_t *)g->data + first;
    else if (g->kind == I8T_GRAD_S32) s.src[k] = (const int32_t *)g->data + first;
    else s.src[k] = (const int32_t *)g->data + (r0 / j->sh.spatial) * C;
  }
  return s;
}

static i8t_grad_span span_skip(i8t_grad_span s, size_t d) {
  for (int k = 0; k < s.n_src; k++)
    s.src[k] = s.s8[k] ? (const void *)((const int8_t *)s.src[k] + d)
                       : (const void *)((const int32_t *)s.src[k] + d);
  if (s.mask) s.mask += d;
  return s;
}

/* max |v| over rows [r0, r1) of the fused span (NaN if any is not finite),
 * and v itself into out (indexed as the activation) unless it is NULL: one
 * kernel call for the whole range, a row at a time with a pooled source. */
static float fused_absmax_rows(const sum_act_job *j, size_t r0, size_t r1, float *out) {
  const size_t C = j->sh.channels;
  const i8t_kernel_table *kt = i8t_kernels();
  float m = 0.0f;
  size_t step = has_pooled(j) ? 1 : r1 - r0; /* rows per kernel call */
  for (size_t r = r0; r < r1; r += step) {
    i8t_grad_span s = span_at_row(j, r);
    float a = kt->grad_sum_absmax.run(I8T_MIN(step, r1 - r) * C, &s, out ? out + r * C : NULL);
    m = a > m || a != a ? a : m;
  }
  return m;
}

static void fused_absmax_task(void *arg, size_t task, int worker) {
  sum_act_job *j = arg;
  (void)worker;
  const size_t rows = j->sh.batch * j->sh.spatial, r0 = task * j->per;
  j->task_abs[task] = fused_absmax_rows(j, r0, I8T_MIN(rows, r0 + j->per), NULL);
}

/* Elements [first, first + n) of gpre from span s, in pieces that do not
 * cross a 2^32 boundary of the rounding counter (as i8t_quantize_f32_s8). */
static void fused_quantize_span(const sum_act_job *j, const i8t_grad_span *s, size_t first,
                                size_t n, float inv_scale) {
  i8t_rounding r = nn_round_at(j->r, first);
  const i8t_kernel_table *kt = i8t_kernels();
  i8t_noise noise;
  for (size_t done = 0, len; done < n; done += len) {
    len = i8t_noise_piece(r, done, n, &noise);
    i8t_grad_span p = span_skip(*s, done);
    kt->grad_sum_quantize_s8.run(len, &p, inv_scale, noise, j->gpre + first + done);
  }
}

static void fused_quantize_task(void *arg, size_t task, int worker) {
  sum_act_job *j = arg;
  (void)worker;
  const size_t C = j->sh.channels, rows = j->sh.batch * j->sh.spatial, r0 = task * j->per;
  const size_t r1 = I8T_MIN(rows, r0 + j->per);
  const float inv_scale = 1.0f / j->p.scale;
  size_t step = has_pooled(j) ? 1 : r1 - r0;
  for (size_t r = r0; r < r1; r += step) {
    i8t_grad_span s = span_at_row(j, r);
    fused_quantize_span(j, &s, r * C, I8T_MIN(step, r1 - r) * C, inv_scale);
  }
}

/* max |g| over the whole activation (the first pass), NaN if any value is
 * not finite. */
static float gradient_absmax(sum_act_job *j, size_t tasks, int fused) {
  float task_abs[64];
  float *ta = tasks <= 64 ? task_abs : malloc(tasks * sizeof *ta);
  if (!ta) return -1.0f;
  j->task_abs = ta;
  i8t_parallel_for(j->ws->ctx, tasks, fused ? fused_absmax_task : backward_absmax_task, j);
  float m = nn_max_of_parts(ta, tasks);
  if (ta != task_abs) free(ta);
  return m;
}

/* absmax: the first pass's result when the caller has it
 * (i8t_sum_act_backward_mask_absmax_u8), else negative. */
static i8t_status sum_act_backward(sum_act_job *j, float absmax) {
  i8t_act_shape shape = j->sh;
  size_t rows = shape.batch * shape.spatial;
  nn_errors_init(&j->err);
  j->per = nn_rows_per_task(rows, shape.channels);
  size_t tasks = nn_task_count(rows, j->per);
  int fused = fused_backward(j);
  if (absmax < 0.0f && (absmax = gradient_absmax(j, tasks, fused)) < 0.0f)
    return i8t_error(I8T_ERR_NO_MEMORY, "sum-act backward");
  i8t_status st = nn_check_finite(absmax, "activation gradient");
  if (st) return st;
  j->p = nn_symmetric(absmax, 8);
  *j->gpre_scale = j->p.scale;
  i8t_parallel_for(j->ws->ctx, tasks,
                   ready_gradient(j) ? ready_quantize_task
                   : fused           ? fused_quantize_task
                                     : backward_quantize_task,
                   j);
  return nn_errors_get(&j->err);
}

static i8t_status check_backward(i8t_workspace *ws, const i8t_grad_src *srcs, int nsrcs,
                                 i8t_act_shape shape, const int8_t *gpre, const float *scale) {
  i8t_status st = nn_check_sources(srcs, nsrcs);
  if (st) return st;
  if (!ws || !gpre || !scale)
    return i8t_error(I8T_ERR_INVALID_ARG, "sum-act backward: NULL argument");
  if (shape.batch == 0 || shape.spatial == 0 || shape.channels == 0)
    return i8t_error(I8T_ERR_SHAPE, "sum-act backward: empty shape");
  return reserve_blocks(ws, shape.channels);
}

i8t_status i8t_sum_act_backward_u8(i8t_workspace *ws, const i8t_grad_src *srcs, int nsrcs,
                                   const i8t_u8_term *terms, int nterms, int relu,
                                   i8t_act_shape shape, i8t_rounding r, int8_t *gpre,
                                   float *gpre_scale) {
  i8t_status st = check_backward(ws, srcs, nsrcs, shape, gpre, gpre_scale);
  if (st || (relu && (st = check_terms(terms, nterms, shape)))) return st;
  sum_act_job j = {.relu = relu, .sh = shape, .ws = ws, .r = r, .srcs = srcs, .ns = nsrcs,
                   .gpre = gpre, .gpre_scale = gpre_scale};
  if (relu && (st = replicate_terms(ws, terms, nterms, shape.channels, &j.t))) return st;
  return sum_act_backward(&j, -1.0f);
}

static sum_act_job mask_job(i8t_workspace *ws, const i8t_grad_src *srcs, int nsrcs,
                            const uint8_t *relu_mask, i8t_act_shape shape, i8t_rounding r,
                            int8_t *gpre, float *gpre_scale) {
  sum_act_job j = {.relu = relu_mask != NULL, .sh = shape, .ws = ws, .r = r, .srcs = srcs,
                   .ns = nsrcs, .mask = relu_mask, .gpre = gpre, .gpre_scale = gpre_scale};
  return j;
}

i8t_status i8t_sum_act_backward_mask_u8(i8t_workspace *ws, const i8t_grad_src *srcs, int nsrcs,
                                        const uint8_t *relu_mask, i8t_act_shape shape,
                                        i8t_rounding r, int8_t *gpre, float *gpre_scale) {
  i8t_status st = check_backward(ws, srcs, nsrcs, shape, gpre, gpre_scale);
  if (st) return st;
  sum_act_job j = mask_job(ws, srcs, nsrcs, relu_mask, shape, r, gpre, gpre_scale);
  return sum_act_backward(&j, -1.0f);
}

/* The fused kernels' sources: no float ones (kernel_table.h, i8t_grad_span). */
static i8t_status check_fusable(const i8t_grad_src *srcs, int nsrcs, const char *what) {
  i8t_status st = nn_check_sources(srcs, nsrcs);
  if (st) return st;
  for (int k = 0; k < nsrcs; k++)
    if (srcs[k].kind == I8T_GRAD_F32)
      return i8t_error(I8T_ERR_INVALID_ARG, "%s: source %d is float (not supported)", what, k);
  return I8T_OK;
}

i8t_status i8t_grad_sum_absmax_u8(const i8t_grad_src *srcs, int nsrcs, const uint8_t *relu_mask,
                                  i8t_act_shape shape, size_t row0, size_t row1, float *absmax,
                                  float *sum_out) {
  i8t_status st = check_fusable(srcs, nsrcs, "gradient absmax");
  if (st) return st;
  if (!absmax) return i8t_error(I8T_ERR_INVALID_ARG, "gradient absmax: NULL result");
  if (row0 > row1 || row1 > shape.batch * shape.spatial || shape.channels == 0)
    return i8t_error(I8T_ERR_SHAPE, "gradient absmax: rows [%zu, %zu) outside %zu x %zu", row0,
                     row1, shape.batch, shape.spatial);
  i8t_rounding unused = {0};
  sum_act_job j = mask_job(NULL, srcs, nsrcs, relu_mask, shape, unused, NULL, NULL);
  *absmax = fused_absmax_rows(&j, row0, row1, sum_out);
  return I8T_OK;
}

i8t_status i8t_sum_act_backward_mask_absmax_u8(i8t_workspace *ws, const i8t_grad_src *srcs,
                                               int nsrcs, const uint8_t *relu_mask,
                                               i8t_act_shape shape, float absmax,
                                               i8t_rounding r, int8_t *gpre,
                                               float *gpre_scale) {
  i8t_status st = check_backward(ws, srcs, nsrcs, shape, gpre, gpre_scale);
  if (st) return st;
  if (absmax < 0.0f)
    return i8t_error(I8T_ERR_INVALID_ARG, "sum-act backward: negative absmax %g", absmax);
  sum_act_job j = mask_job(ws, srcs, nsrcs, relu_mask, shape, r, gpre, gpre_scale);
  return sum_act_backward(&j, absmax); /* NaN: reported as not finite */
}

/* ------------------------------------------------------------------------ */
/* fp32 sum + ReLU                                                          */
/* ------------------------------------------------------------------------ */

i8t_status i8t_sum_act_forward_f32(i8t_workspace *ws, const float *const *inputs, int ninputs,
                                   int relu, size_t count, float *out) {
  (void)ws;
  if (!inputs || ninputs < 1 || !out)
    return i8t_error(I8T_ERR_INVALID_ARG, "sum-act f32: no inputs");
  for (int k = 0; k < ninputs; k++)
    if (!inputs[k]) return i8t_error(I8T_ERR_INVALID_ARG, "sum-act f32: input %d is NULL", k);
  if (out != inputs[0]) memcpy(out, inputs[0], count * sizeof *out);
  for (int k = 1; k < ninputs; k++)
    for (size_t i = 0; i < count; i++) out[i] += inputs[k][i];
  if (relu)
    for (size_t i = 0; i < count; i++) out[i] = out[i] > 0.0f ? out[i] : 0.0f;
  return I8T_OK;
}

/* Branch-free and restrict-qualified so that it vectorises: a data-dependent
 * branch here mispredicts on half the elements. */
static void relu_mask_f32(const float *restrict out, const float *restrict g, size_t count,
                          float *restrict gpre) {
  for (size_t i = 0; i < count; i++) {
    float v = g[i]; /* loaded unconditionally: no control flow in the loop */
    gpre[i] = out[i] > 0.0f ? v : 0.0f;
  }
}

i8t_status i8t_relu_backward_f32(i8t_workspace *ws, const float *out, const float *g,
                                 size_t count, float *gpre) {
  (void)ws;
  if (!out || !g || !gpre) return i8t_error(I8T_ERR_INVALID_ARG, "relu backward: NULL");
  if (gpre == g) { /* in place */
    for (size_t i = 0; i < count; i++) {
      float v = gpre[i];
      gpre[i] = out[i] > 0.0f ? v : 0.0f;
    }
    return I8T_OK;
  }
  relu_mask_f32(out, g, count, gpre);
  return I8T_OK;
}

/* ------------------------------------------------------------------------ */
/* Requantization of GEMM outputs                                           */
/* ------------------------------------------------------------------------ */

typedef struct requant_job {
  const int32_t *y;
  size_t rows, C, per;
  const float *cs; /* replicated over a block */
  i8t_qparams p;
  i8t_rounding r;
  uint8_t *q;
  i8t_workspace *ws;
  nn_errors err;
} requant_job;

i8t_status nn_requantize_rows(const int32_t *y, size_t rows, size_t C, const float *cs,
                              i8t_qparams p, i8t_rounding r, size_t first, uint8_t *q) {
  if (!(p.scale > 0.0f) || !isfinite(p.scale))
    return i8t_error(I8T_ERR_INVALID_ARG, "requantize: scale %g is not a positive finite number",
                     (double)p.scale);
  const i8t_requantize_s32_u8_fn run = i8t_kernels()->requantize_s32_u8.run;
  const float inv_scale = 1.0f / p.scale; /* as i8t_quantize_f32_u8 */
  const size_t block = nn_block_rows(C) * C, total = rows * C;
  r.counter += first;
  /* cs repeats every block; the counter's 2^32 boundaries split a call too */
  for (size_t b0 = 0; b0 < total; b0 += block) {
    size_t b1 = I8T_MIN(total, b0 + block);
    i8t_noise noise;
    for (size_t at = b0, len; at < b1; at += len) {
      len = i8t_noise_piece(r, at, b1, &noise);
      run(len, y + at, cs + (at - b0), inv_scale, p.zero_point, noise, q + at);
    }
  }
  return I8T_OK;
}

static void requant_task(void *arg, size_t task, int worker) {
  requant_job *j = arg;
  const size_t C = j->C, r0 = task * j->per, r1 = I8T_MIN(j->rows, r0 + j->per);
  (void)worker;
  nn_errors_set(&j->err, nn_requantize_rows(j->y + r0 * C, r1 - r0, C, j->cs, j->p, j->r, r0 * C,
                                            j->q + r0 * C));
}

i8t_status i8t_requantize_s32_u8(i8t_workspace *ws, const int32_t *y, size_t rows,
                                 size_t channels, const float *col_scale,
                                 size_t col_scale_count, i8t_qparams out, i8t_rounding r,
                                 uint8_t *q) {
  if (!ws || !y || !col_scale || !q)
    return i8t_error(I8T_ERR_INVALID_ARG, "requantize: NULL argument");
  if (rows == 0 || channels == 0) return i8t_error(I8T_ERR_SHAPE, "requantize: empty tensor");
  if (col_scale_count != 1 && col_scale_count != channels)
    return i8t_error(I8T_ERR_INVALID_ARG, "requantize: %zu scales for %zu channels",
                     col_scale_count, channels);
  float *cs = nn_shared_floats(ws, 1, channels);
  if (!cs) return I8T_ERR_NO_MEMORY;
  size_t len = nn_block_rows(channels) * channels;
  for (size_t i = 0; i < len; i++) cs[i] = col_scale[col_scale_count == 1 ? 0 : i % channels];
  requant_job j = {y, rows, channels, nn_rows_per_task(rows, channels), cs, out, r, q, ws, {0}};
  nn_errors_init(&j.err);
  i8t_parallel_for(ws->ctx, nn_task_count(rows, j.per), requant_task, &j);
  return nn_errors_get(&j.err);
}

/* ------------------------------------------------------------------------ */
/* Input images: NCHW float -> NHWC                                         */
/* ------------------------------------------------------------------------ */

i8t_status i8t_images_sample_range(i8t_workspace *ws, const float *images, size_t n,
                                   size_t sample_size, float *sample_min, float *sample_max) {
  (void)ws;
  if (!images || !sample_min || !sample_max || n == 0 || sample_size == 0)
    return i8t_error(I8T_ERR_INVALID_ARG, "image range: empty or NULL");
  for (size_t i = 0; i < n; i++) {
    i8t_status st = i8t_minmax_f32(images + i * sample_size, sample_size, &sample_min[i],
                                   &sample_max[i]);
    if (st) return i8t_error(st, "image %zu contains NaN or Inf", i);
  }
  return I8T_OK;
}

/* One sample NCHW -> HWC. */
static void to_hwc(const float *src, size_t c, size_t hw, float *dst) {
  for (size_t p = 0; p < hw; p++)
    for (size_t k = 0; k < c; k++) dst[p * c + k] = src[k * hw + p];
}

static i8t_status image_args(const float *images, int n, int c, int h, int w, const void *out) {
  if (!images || !out) return i8t_error(I8T_ERR_INVALID_ARG, "images: NULL argument");
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0)
    return i8t_error(I8T_ERR_SHAPE, "images: sizes must be positive (%d x %d x %d x %d)", n, c,
                     h, w);
  return I8T_OK;
}

i8t_status i8t_images_to_u8(i8t_workspace *ws, const float *images, int n, int c, int h, int w,
                            i8t_qparams p, i8t_rounding r, uint8_t *q) {
  i8t_status st = image_args(images, n, c, h, w, q);
  if (st) return st;
  if (!ws) return i8t_error(I8T_ERR_INVALID_ARG, "images: NULL workspace");
  size_t hw = (size_t)h * w, size = hw * c;
  if (c > 1 && (st = nn_reserve(ws, NN_SLOT_D, size * sizeof(float)))) return st;
  for (size_t i = 0; i < (size_t)n; i++) {
    const float *src = images + i * size;
    if (c > 1) {
      float *t = nn_scratch(ws, 0, NN_SLOT_D);
      to_hwc(src, (size_t)c, hw, t);
      src = t;
    }
    if ((st = i8t_quantize_f32_u8(src, size, p, nn_round_at(r, i * size), q + i * size)))
      return st;
  }
  return I8T_OK;
}

i8t_status i8t_images_to_f32(i8t_workspace *ws, const float *images, int n, int c, int h, int w,
                             float *x) {
  (void)ws;
  i8t_status st = image_args(images, n, c, h, w, x);
  if (st) return st;
  size_t hw = (size_t)h * w, size = hw * c;
  for (size_t i = 0; i < (size_t)n; i++) to_hwc(images + i * size, (size_t)c, hw, x + i * size);
  return I8T_OK;
}
