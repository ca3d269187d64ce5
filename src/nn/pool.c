/* Pooling: max pooling (u8 exact, since max commutes with a monotone
 * quantizer; gradient to the first maximum of each window) and global
 * average pooling (exact integer sums on u8). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn_internal.h"

int i8t_pool_out_h(const i8t_pool_shape *s) { return (s->h - s->kernel) / s->stride + 1; }
int i8t_pool_out_w(const i8t_pool_shape *s) { return (s->w - s->kernel) / s->stride + 1; }

static i8t_status pool_check(const i8t_pool_shape *s, const void *a, const void *b) {
  if (!s || !a || !b) return i8t_error(I8T_ERR_INVALID_ARG, "pool: NULL argument");
  if (s->batch <= 0 || s->h <= 0 || s->w <= 0 || s->c <= 0 || s->kernel <= 0 || s->stride <= 0)
    return i8t_error(I8T_ERR_SHAPE, "pool: sizes must be positive");
  if (s->kernel > s->h || s->kernel > s->w)
    return i8t_error(I8T_ERR_SHAPE, "pool: window %d larger than the input %dx%d", s->kernel,
                     s->h, s->w);
  return I8T_OK;
}

/* Offset (in elements) of the first maximum of channel c in the window of
 * output (oy, ox) of sample n: row-major order, strict comparison. One body
 * for u8 and float. */
#define DEFINE_ARGMAX(NAME, T)                                                              \
  static size_t NAME(const i8t_pool_shape *s, const T *x, size_t n, size_t oy, size_t ox,   \
                     size_t c) {                                                            \
    const size_t W = (size_t)s->w, C = (size_t)s->c, k = (size_t)s->kernel;                 \
    size_t base = (n * (size_t)s->h + oy * (size_t)s->stride) * W + ox * (size_t)s->stride;  \
    size_t best = base * C + c;                                                             \
    for (size_t ky = 0; ky < k; ky++)                                                       \
      for (size_t kx = 0; kx < k; kx++) {                                                   \
        size_t i = (base + ky * W + kx) * C + c;                                            \
        if (x[i] > x[best]) best = i;                                                       \
      }                                                                                     \
    return best;                                                                            \
  }
DEFINE_ARGMAX(argmax_u8, uint8_t)
DEFINE_ARGMAX(argmax_f32, float)

/* Forward max over windows, vectorised over channels. */
#define DEFINE_MAXPOOL_FORWARD(NAME, T)                                                        \
  static void NAME(const i8t_pool_shape *s, const T *x, size_t n0, size_t n1, T *y) {          \
    const size_t W = (size_t)s->w, C = (size_t)s->c, k = (size_t)s->kernel;                    \
    const size_t oh = (size_t)i8t_pool_out_h(s), ow = (size_t)i8t_pool_out_w(s);               \
    for (size_t n = n0; n < n1; n++)                                                           \
      for (size_t oy = 0; oy < oh; oy++)                                                       \
        for (size_t ox = 0; ox < ow; ox++) {                                                   \
          T *out = y + ((n * oh + oy) * ow + ox) * C;                                          \
          size_t base = (n * (size_t)s->h + oy * (size_t)s->stride) * W + ox * (size_t)s->stride; \
          memcpy(out, x + base * C, C * sizeof(T));                                            \
          for (size_t ky = 0; ky < k; ky++)                                                    \
            for (size_t kx = 0; kx < k; kx++) {                                                \
              const T *in = x + (base + ky * W + kx) * C;                                      \
              for (size_t c = 0; c < C; c++) out[c] = in[c] > out[c] ? in[c] : out[c];         \
            }                                                                                  \
        }                                                                                      \
  }
DEFINE_MAXPOOL_FORWARD(maxpool_u8, uint8_t)
DEFINE_MAXPOOL_FORWARD(maxpool_f32, float)

typedef struct pool_job {
  const i8t_pool_shape *s;
  const void *x;
  void *y;
  int is_u8;
  size_t per;
  /* backward */
  const i8t_grad_src *srcs;
  int ns;
  const float *dy;
  int accumulate;
  i8t_act_shape out_shape;
  float *task_abs;
  i8t_qparams p;
  i8t_rounding r;
  i8t_workspace *ws;
  nn_errors err;
} pool_job;

static void forward_task(void *arg, size_t task, int worker) {
  (void)worker;
  pool_job *j = arg;
  size_t n0 = task * j->per, n1 = I8T_MIN((size_t)j->s->batch, n0 + j->per);
  if (j->is_u8) maxpool_u8(j->s, j->x, n0, n1, j->y);
  else maxpool_f32(j->s, j->x, n0, n1, j->y);
}

static i8t_status maxpool_forward(i8t_workspace *ws, const i8t_pool_shape *s, const void *x,
                                  void *y, int is_u8) {
  i8t_status st = pool_check(s, x, y);
  if (st) return st;
  if (!ws) return i8t_error(I8T_ERR_INVALID_ARG, "pool: NULL workspace");
  pool_job j = {.s = s, .x = x, .y = y, .is_u8 = is_u8};
  j.per = nn_samples_per_task((size_t)s->batch, (size_t)s->h * s->w, 4096);
  i8t_parallel_for(ws->ctx, nn_task_count((size_t)s->batch, j.per), forward_task, &j);
  return I8T_OK;
}

i8t_status i8t_maxpool_forward_u8(i8t_workspace *ws, const i8t_pool_shape *s, const uint8_t *x,
                                  uint8_t *y) {
  return maxpool_forward(ws, s, x, y, 1);
}
i8t_status i8t_maxpool_forward_f32(i8t_workspace *ws, const i8t_pool_shape *s, const float *x,
                                   float *y) {
  return maxpool_forward(ws, s, x, y, 0);
}

/* ---- int8 backward: combined sources -> s8 -> routed into int32 dx ---- */

static void u8_absmax_task(void *arg, size_t task, int worker) {
  pool_job *j = arg;
  size_t C = j->out_shape.channels, n0 = task * j->per;
  size_t n1 = I8T_MIN(j->out_shape.batch, n0 + j->per), sp = j->out_shape.spatial;
  float *v = nn_scratch(j->ws, worker, NN_SLOT_D);
  nn_combine_sources(j->srcs, j->ns, j->out_shape, n0 * sp, n1 * sp, v);
  j->task_abs[task] = nn_absmax(v, (n1 - n0) * sp * C);
}

static void u8_route_task(void *arg, size_t task, int worker) {
  pool_job *j = arg;
  const i8t_pool_shape *s = j->s;
  size_t C = j->out_shape.channels, sp = j->out_shape.spatial, n0 = task * j->per;
  size_t n1 = I8T_MIN(j->out_shape.batch, n0 + j->per), ow = (size_t)i8t_pool_out_w(s);
  float *v = nn_scratch(j->ws, worker, NN_SLOT_D);
  int8_t *q = (int8_t *)(v + j->per * sp * C);
  nn_combine_sources(j->srcs, j->ns, j->out_shape, n0 * sp, n1 * sp, v);
  i8t_status st = i8t_quantize_f32_s8(v, (n1 - n0) * sp * C, j->p,
                                      nn_round_at(j->r, n0 * sp * C), q);
  if (st) {
    nn_errors_set(&j->err, st);
    return;
  }
  int32_t *dx = j->y;
  size_t in_sample = (size_t)s->h * s->w * C;
  memset(dx + n0 * in_sample, 0, (n1 - n0) * in_sample * sizeof *dx);
  for (size_t n = n0; n < n1; n++)
    for (size_t p = 0; p < sp; p++)
      for (size_t c = 0; c < C; c++)
        dx[argmax_u8(s, j->x, n, p / ow, p % ow, c)] += q[((n - n0) * sp + p) * C + c];
}

i8t_status i8t_maxpool_backward_u8(i8t_workspace *ws, const i8t_pool_shape *s,
                                   const uint8_t *x, const i8t_grad_src *srcs, int nsrcs,
                                   i8t_rounding r, int32_t *dx, float *dx_scale) {
  i8t_status st = pool_check(s, x, dx);
  if (st || (st = nn_check_sources(srcs, nsrcs))) return st;
  if (!ws || !dx_scale) return i8t_error(I8T_ERR_INVALID_ARG, "maxpool backward: NULL argument");
  size_t sp = (size_t)i8t_pool_out_h(s) * i8t_pool_out_w(s);
  pool_job j = {.s = s, .x = x, .y = dx, .srcs = srcs, .ns = nsrcs, .r = r, .ws = ws,
                .out_shape = {(size_t)s->batch, sp, (size_t)s->c}};
  nn_errors_init(&j.err);
  j.per = nn_samples_per_task((size_t)s->batch, sp, 2048);
  size_t tasks = nn_task_count((size_t)s->batch, j.per);
  size_t block = j.per * sp * (size_t)s->c;
  j.task_abs = malloc(tasks * sizeof *j.task_abs);
  if (!j.task_abs) return i8t_error(I8T_ERR_NO_MEMORY, "maxpool backward");
  if ((st = nn_reserve(ws, NN_SLOT_D, block * (sizeof(float) + 1)))) goto done;
  i8t_parallel_for(ws->ctx, tasks, u8_absmax_task, &j);
  float m = nn_max_of_parts(j.task_abs, tasks);
  if ((st = nn_check_finite(m, "max-pool gradient"))) goto done;
  j.p = i8t_qparams_symmetric(m, 8);
  *dx_scale = j.p.scale;
  i8t_parallel_for(ws->ctx, tasks, u8_route_task, &j);
  st = nn_errors_get(&j.err);
done:
  free(j.task_abs);
  return st;
}

/* ---- fp32 backward ---- */

static void f32_route_task(void *arg, size_t task, int worker) {
  (void)worker;
  pool_job *j = arg;
  const i8t_pool_shape *s = j->s;
  size_t C = (size_t)s->c, ow = (size_t)i8t_pool_out_w(s);
  size_t sp = (size_t)i8t_pool_out_h(s) * ow, n0 = task * j->per;
  size_t n1 = I8T_MIN((size_t)s->batch, n0 + j->per), in_sample = (size_t)s->h * s->w * C;
  float *dx = j->y;
  if (!j->accumulate) memset(dx + n0 * in_sample, 0, (n1 - n0) * in_sample * sizeof *dx);
  for (size_t n = n0; n < n1; n++)
    for (size_t p = 0; p < sp; p++)
      for (size_t c = 0; c < C; c++)
        dx[argmax_f32(s, j->x, n, p / ow, p % ow, c)] += j->dy[(n * sp + p) * C + c];
}

i8t_status i8t_maxpool_backward_f32(i8t_workspace *ws, const i8t_pool_shape *s, const float *x,
                                    const float *dy, float *dx, int accumulate) {
  i8t_status st = pool_check(s, x, dx);
  if (st) return st;
  if (!ws || !dy) return i8t_error(I8T_ERR_INVALID_ARG, "maxpool backward: NULL argument");
  pool_job j = {.s = s, .x = x, .y = dx, .dy = dy, .accumulate = accumulate};
  j.per = nn_samples_per_task((size_t)s->batch, (size_t)s->h * s->w, 4096);
  i8t_parallel_for(ws->ctx, nn_task_count((size_t)s->batch, j.per), f32_route_task, &j);
  return I8T_OK;
}

/* ------------------------------------------------------------------------ */
/* Global average pooling                                                   */
/* ------------------------------------------------------------------------ */

static i8t_status avg_check(i8t_act_shape sh, const void *a, const void *b) {
  if (!a || !b) return i8t_error(I8T_ERR_INVALID_ARG, "avgpool: NULL argument");
  if (sh.batch == 0 || sh.spatial == 0 || sh.channels == 0)
    return i8t_error(I8T_ERR_SHAPE, "avgpool: empty shape");
  if (sh.spatial > (size_t)1 << 24) return i8t_error(I8T_ERR_SHAPE, "avgpool: too many pixels");
  return I8T_OK;
}

i8t_status i8t_avgpool_forward_u8(i8t_workspace *ws, i8t_act_shape sh, const uint8_t *x,
                                  i8t_qparams xq, float *y) {
  (void)ws;
  i8t_status st = avg_check(sh, x, y);
  if (st) return st;
  const size_t C = sh.channels;
  uint32_t *sum = malloc(C * sizeof *sum);
  if (!sum) return i8t_error(I8T_ERR_NO_MEMORY, "avgpool");
  for (size_t n = 0; n < sh.batch; n++) {
    memset(sum, 0, C * sizeof *sum);
    const uint8_t *xs = x + n * sh.spatial * C;
    for (size_t p = 0; p < sh.spatial; p++)
      for (size_t c = 0; c < C; c++) sum[c] += xs[p * C + c];
    for (size_t c = 0; c < C; c++)
      y[n * C + c] = (float)((double)xq.scale *
                             ((double)sum[c] / (double)sh.spatial - (double)xq.zero_point));
  }
  free(sum);
  return I8T_OK;
}

i8t_status i8t_avgpool_forward_f32(i8t_workspace *ws, i8t_act_shape sh, const float *x,
                                   float *y) {
  (void)ws;
  i8t_status st = avg_check(sh, x, y);
  if (st) return st;
  const size_t C = sh.channels;
  for (size_t n = 0; n < sh.batch; n++) {
    float *yn = y + n * C;
    const float *xs = x + n * sh.spatial * C;
    for (size_t c = 0; c < C; c++) yn[c] = 0.0f;
    for (size_t p = 0; p < sh.spatial; p++)
      for (size_t c = 0; c < C; c++) yn[c] += xs[p * C + c];
    for (size_t c = 0; c < C; c++) yn[c] /= (float)sh.spatial;
  }
  return I8T_OK;
}

i8t_status i8t_avgpool_backward_f32(i8t_workspace *ws, i8t_act_shape sh, const float *dy,
                                    float *dx, int accumulate) {
  (void)ws;
  i8t_status st = avg_check(sh, dy, dx);
  if (st) return st;
  const size_t C = sh.channels;
  const float inv = 1.0f / (float)sh.spatial;
  for (size_t n = 0; n < sh.batch; n++)
    for (size_t p = 0; p < sh.spatial; p++) {
      float *d = dx + (n * sh.spatial + p) * C;
      const float *g = dy + n * C;
      if (accumulate)
        for (size_t c = 0; c < C; c++) d[c] += g[c] * inv;
      else
        for (size_t c = 0; c < C; c++) d[c] = g[c] * inv;
    }
  return I8T_OK;
}
