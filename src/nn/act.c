/* Activations between layers: the fused "sum of terms + ReLU -> u8" pass
 * that ends every conv-BN-ReLU unit and residual block (forward and
 * backward), the requantization of GEMM outputs, the input images, and the
 * batch-mean ranges of the activation quantizers. Values are computed in
 * blocks of NN_BLOCK floats and quantized by the kernel table's quantizers. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* v[rows r0..r1) = relu?(sum of terms); one function for forward, range and
 * the backward mask, so that all three see the very same values. */
static void eval_terms(const i8t_u8_term *t, int nt, int relu, size_t C, size_t r0, size_t r1,
                       float *v) {
  for (size_t r = r0; r < r1; r++) {
    float *vr = v + (r - r0) * C;
    const uint8_t *x0 = t[0].x + r * C;
    for (size_t c = 0; c < C; c++) vr[c] = t[0].mul[c] * (float)x0[c] + t[0].add[c];
    for (int k = 1; k < nt; k++) {
      const uint8_t *xk = t[k].x + r * C;
      for (size_t c = 0; c < C; c++) vr[c] += t[k].mul[c] * (float)xk[c] + t[k].add[c];
    }
    if (relu)
      for (size_t c = 0; c < C; c++) vr[c] = vr[c] > 0.0f ? vr[c] : 0.0f;
  }
}

static size_t block_rows(size_t C) { return I8T_MAX((size_t)1, NN_BLOCK / C); }

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
  const i8t_u8_term *t;
  int nt, relu;
  i8t_act_shape sh;
  size_t per; /* samples (range pass) or rows (other passes) per task */
  i8t_workspace *ws;
  float *smin, *smax;
  i8t_qparams p;
  i8t_rounding r;
  uint8_t *out;
  /* backward */
  const i8t_grad_src *srcs;
  int ns;
  float *task_abs;
  int8_t *gpre;
  nn_errors err;
} sum_act_job;

static void range_task(void *arg, size_t task, int worker) {
  sum_act_job *j = arg;
  const size_t C = j->sh.channels, sub = block_rows(C);
  float *v = nn_scratch(j->ws, worker, NN_SLOT_D);
  size_t n0 = task * j->per, n1 = I8T_MIN(j->sh.batch, n0 + j->per);
  for (size_t n = n0; n < n1; n++) {
    float mn = INFINITY, mx = -INFINITY;
    size_t r1 = (n + 1) * j->sh.spatial;
    for (size_t b0 = n * j->sh.spatial; b0 < r1; b0 += sub) {
      size_t b1 = I8T_MIN(r1, b0 + sub);
      eval_terms(j->t, j->nt, j->relu, C, b0, b1, v);
      for (size_t i = 0; i < (b1 - b0) * C; i++) {
        mn = v[i] < mn ? v[i] : mn;
        mx = v[i] > mx ? v[i] : mx;
      }
    }
    j->smin[n] = mn;
    j->smax[n] = mx;
  }
}

i8t_status i8t_sum_act_range_u8(i8t_workspace *ws, const i8t_u8_term *terms, int nterms,
                                int relu, i8t_act_shape shape, float *sample_min,
                                float *sample_max) {
  i8t_status st = check_terms(terms, nterms, shape);
  if (st) return st;
  if (!ws || !sample_min || !sample_max)
    return i8t_error(I8T_ERR_INVALID_ARG, "sum-act range: NULL argument");
  if ((st = nn_reserve(ws, NN_SLOT_D, block_rows(shape.channels) * shape.channels * 4))) return st;
  sum_act_job j = {.t = terms, .nt = nterms, .relu = relu, .sh = shape, .ws = ws,
                   .smin = sample_min, .smax = sample_max};
  j.per = nn_samples_per_task(shape.batch, shape.spatial, 4096);
  i8t_parallel_for(ws->ctx, nn_task_count(shape.batch, j.per), range_task, &j);
  for (size_t n = 0; n < shape.batch; n++)
    if (!isfinite(sample_min[n]) || !isfinite(sample_max[n]))
      return i8t_error(I8T_ERR_NONFINITE, "activation of sample %zu is not finite", n);
  return I8T_OK;
}

static void forward_task(void *arg, size_t task, int worker) {
  sum_act_job *j = arg;
  const size_t C = j->sh.channels, sub = block_rows(C), rows = j->sh.batch * j->sh.spatial;
  float *v = nn_scratch(j->ws, worker, NN_SLOT_D);
  size_t r0 = task * j->per, r1 = I8T_MIN(rows, r0 + j->per);
  for (size_t b0 = r0; b0 < r1; b0 += sub) {
    size_t b1 = I8T_MIN(r1, b0 + sub);
    eval_terms(j->t, j->nt, j->relu, C, b0, b1, v);
    nn_errors_set(&j->err, i8t_quantize_f32_u8(v, (b1 - b0) * C, j->p,
                                               nn_round_at(j->r, b0 * C), j->out + b0 * C));
  }
}

i8t_status i8t_sum_act_forward_u8(i8t_workspace *ws, const i8t_u8_term *terms, int nterms,
                                  int relu, i8t_act_shape shape, i8t_qparams p,
                                  i8t_rounding r, uint8_t *out) {
  i8t_status st = check_terms(terms, nterms, shape);
  if (st) return st;
  if (!ws || !out) return i8t_error(I8T_ERR_INVALID_ARG, "sum-act forward: NULL argument");
  if ((st = nn_reserve(ws, NN_SLOT_D, block_rows(shape.channels) * shape.channels * 4))) return st;
  size_t rows = shape.batch * shape.spatial;
  sum_act_job j = {.t = terms, .nt = nterms, .relu = relu, .sh = shape, .ws = ws, .p = p,
                   .r = r, .out = out};
  nn_errors_init(&j.err);
  j.per = nn_rows_per_task(rows, shape.channels);
  i8t_parallel_for(ws->ctx, nn_task_count(rows, j.per), forward_task, &j);
  return nn_errors_get(&j.err);
}

/* ------------------------------------------------------------------------ */
/* Backward: combine the incoming gradient, mask, quantize to s8            */
/* ------------------------------------------------------------------------ */

void nn_combine_sources(const i8t_grad_src *s, int ns, i8t_act_shape sh, size_t r0,
                        size_t r1, float *v) {
  const size_t C = sh.channels, n = (r1 - r0) * C, first = r0 * C;
  memset(v, 0, n * sizeof *v);
  for (int k = 0; k < ns; k++) {
    const float sc = s[k].scale;
    switch (s[k].kind) {
      case I8T_GRAD_S32: {
        const int32_t *p = (const int32_t *)s[k].data + first;
        for (size_t i = 0; i < n; i++) v[i] += sc * (float)p[i];
        break;
      }
      case I8T_GRAD_S8: {
        const int8_t *p = (const int8_t *)s[k].data + first;
        for (size_t i = 0; i < n; i++) v[i] += sc * (float)p[i];
        break;
      }
      case I8T_GRAD_F32: {
        const float *p = (const float *)s[k].data + first;
        for (size_t i = 0; i < n; i++) v[i] += sc * p[i];
        break;
      }
      case I8T_GRAD_S32_POOLED:
        for (size_t r = r0; r < r1; r++) {
          const int32_t *p = (const int32_t *)s[k].data + (r / sh.spatial) * C;
          float *vr = v + (r - r0) * C;
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
static void masked_gradient(const sum_act_job *j, size_t b0, size_t b1, float *v, float *w) {
  nn_combine_sources(j->srcs, j->ns, j->sh, b0, b1, v);
  if (!j->relu) return;
  eval_terms(j->t, j->nt, 0, j->sh.channels, b0, b1, w);
  for (size_t i = 0; i < (b1 - b0) * j->sh.channels; i++) v[i] = w[i] > 0.0f ? v[i] : 0.0f;
}

static void backward_absmax_task(void *arg, size_t task, int worker) {
  sum_act_job *j = arg;
  const size_t C = j->sh.channels, sub = block_rows(C), rows = j->sh.batch * j->sh.spatial;
  float *v = nn_scratch(j->ws, worker, NN_SLOT_D), *w = v + sub * C;
  size_t r0 = task * j->per, r1 = I8T_MIN(rows, r0 + j->per);
  float m = 0.0f;
  for (size_t b0 = r0; b0 < r1; b0 += sub) {
    size_t b1 = I8T_MIN(r1, b0 + sub);
    masked_gradient(j, b0, b1, v, w);
    m = fmaxf(m, nn_absmax(v, (b1 - b0) * C));
  }
  j->task_abs[task] = m;
}

static void backward_quantize_task(void *arg, size_t task, int worker) {
  sum_act_job *j = arg;
  const size_t C = j->sh.channels, sub = block_rows(C), rows = j->sh.batch * j->sh.spatial;
  float *v = nn_scratch(j->ws, worker, NN_SLOT_D), *w = v + sub * C;
  size_t r0 = task * j->per, r1 = I8T_MIN(rows, r0 + j->per);
  for (size_t b0 = r0; b0 < r1; b0 += sub) {
    size_t b1 = I8T_MIN(r1, b0 + sub);
    masked_gradient(j, b0, b1, v, w);
    nn_errors_set(&j->err, i8t_quantize_f32_s8(v, (b1 - b0) * C, j->p,
                                               nn_round_at(j->r, b0 * C), j->gpre + b0 * C));
  }
}

i8t_status i8t_sum_act_backward_u8(i8t_workspace *ws, const i8t_grad_src *srcs, int nsrcs,
                                   const i8t_u8_term *terms, int nterms, int relu,
                                   i8t_act_shape shape, i8t_rounding r, int8_t *gpre,
                                   float *gpre_scale) {
  i8t_status st = nn_check_sources(srcs, nsrcs);
  if (st || (relu && (st = check_terms(terms, nterms, shape)))) return st;
  if (!ws || !gpre || !gpre_scale)
    return i8t_error(I8T_ERR_INVALID_ARG, "sum-act backward: NULL argument");
  if (shape.batch == 0 || shape.spatial == 0 || shape.channels == 0)
    return i8t_error(I8T_ERR_SHAPE, "sum-act backward: empty shape");
  size_t rows = shape.batch * shape.spatial, sub = block_rows(shape.channels);
  if ((st = nn_reserve(ws, NN_SLOT_D, 2 * sub * shape.channels * sizeof(float)))) return st;
  sum_act_job j = {.t = terms, .nt = nterms, .relu = relu, .sh = shape, .ws = ws, .r = r,
                   .srcs = srcs, .ns = nsrcs, .gpre = gpre};
  nn_errors_init(&j.err);
  j.per = nn_rows_per_task(rows, shape.channels);
  size_t tasks = nn_task_count(rows, j.per);
  float task_abs[64];
  float *ta = tasks <= 64 ? task_abs : malloc(tasks * sizeof *ta);
  if (!ta) return i8t_error(I8T_ERR_NO_MEMORY, "sum-act backward");
  j.task_abs = ta;
  i8t_parallel_for(ws->ctx, tasks, backward_absmax_task, &j);
  float m = 0.0f;
  int nan = 0;
  for (size_t t = 0; t < tasks; t++) nan |= ta[t] != ta[t], m = fmaxf(m, ta[t]);
  if (ta != task_abs) free(ta);
  if (nan) m = NAN;
  if ((st = nn_check_finite(m, "activation gradient"))) return st;
  j.p = nn_symmetric(m, 8);
  *gpre_scale = j.p.scale;
  i8t_parallel_for(ws->ctx, tasks, backward_quantize_task, &j);
  return nn_errors_get(&j.err);
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

i8t_status i8t_relu_backward_f32(i8t_workspace *ws, const float *out, const float *g,
                                 size_t count, float *gpre) {
  (void)ws;
  if (!out || !g || !gpre) return i8t_error(I8T_ERR_INVALID_ARG, "relu backward: NULL");
  for (size_t i = 0; i < count; i++) gpre[i] = out[i] > 0.0f ? g[i] : 0.0f;
  return I8T_OK;
}

/* ------------------------------------------------------------------------ */
/* Requantization of GEMM outputs                                           */
/* ------------------------------------------------------------------------ */

typedef struct requant_job {
  const int32_t *y;
  size_t rows, C, per;
  const float *cs;
  size_t ncs;
  i8t_qparams p;
  i8t_rounding r;
  uint8_t *q;
  i8t_workspace *ws;
  nn_errors err;
} requant_job;

static void requant_task(void *arg, size_t task, int worker) {
  requant_job *j = arg;
  const size_t C = j->C, sub = block_rows(C);
  float *v = nn_scratch(j->ws, worker, NN_SLOT_D);
  size_t r0 = task * j->per, r1 = I8T_MIN(j->rows, r0 + j->per);
  for (size_t b0 = r0; b0 < r1; b0 += sub) {
    size_t b1 = I8T_MIN(r1, b0 + sub), n = (b1 - b0) * C;
    const int32_t *y = j->y + b0 * C;
    if (j->ncs == 1) {
      const float s = j->cs[0];
      for (size_t i = 0; i < n; i++) v[i] = (float)y[i] * s;
    } else {
      for (size_t r = 0; r < b1 - b0; r++)
        for (size_t c = 0; c < C; c++) v[r * C + c] = (float)y[r * C + c] * j->cs[c];
    }
    nn_errors_set(&j->err, i8t_quantize_f32_u8(v, n, j->p, nn_round_at(j->r, b0 * C), j->q + b0 * C));
  }
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
  i8t_status st = nn_reserve(ws, NN_SLOT_D, block_rows(channels) * channels * sizeof(float));
  if (st) return st;
  requant_job j = {y, rows, channels, nn_rows_per_task(rows, channels), col_scale,
                   col_scale_count, out, r, q, ws, {0}};
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
