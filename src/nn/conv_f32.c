/* fp32 convolution and fully connected layers: oneDNN's primitives when the
 * build has them, else a portable im2col + plain C sgemm (ARM cross builds,
 * and the independent second implementation the tests compare against). */
#include <stdlib.h>
#include <string.h>

#include "nn_conv.h"

/* ------------------------------------------------------------------------ */
/* Portable sgemm                                                           */
/* ------------------------------------------------------------------------ */

/* Blocked over K so that a block of B rows stays in cache; the inner loop
 * runs over contiguous columns of B and C and vectorises. */
void nn_sgemm(size_t M, size_t N, size_t K, const float *A, size_t a_rs, size_t a_cs,
              const float *B, size_t b_rs, size_t b_cs, float *C, size_t ldc, int accumulate) {
  enum { KB = 128 };
  if (!accumulate)
    for (size_t i = 0; i < M; i++) memset(C + i * ldc, 0, N * sizeof *C);
  for (size_t k0 = 0; k0 < K; k0 += KB) {
    size_t k1 = I8T_MIN(K, k0 + KB);
    for (size_t i = 0; i < M; i++) {
      float *c = C + i * ldc;
      for (size_t k = k0; k < k1; k++) {
        float a = A[i * a_rs + k * a_cs];
        const float *b = B + k * b_rs;
        if (b_cs == 1) {
          for (size_t j = 0; j < N; j++) c[j] += a * b[j];
        } else {
          for (size_t j = 0; j < N; j++) c[j] += a * b[j * b_cs];
        }
      }
    }
  }
}

/* w [rows x cols] -> wt [cols x rows]. */
static float *transposed_copy(const float *w, size_t rows, size_t cols) {
  float *t = malloc(rows * cols * sizeof *t);
  if (!t) return NULL;
  for (size_t r = 0; r < rows; r++)
    for (size_t c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c];
  return t;
}

/* ------------------------------------------------------------------------ */
/* Portable convolution: per block of samples, like the int8 path           */
/* ------------------------------------------------------------------------ */

typedef struct f32_job {
  nn_conv_geom g;
  i8t_workspace *ws;
  const float *x, *w, *dy;
  float *y, *dx;
  float *partials; /* backward weights: one [out_c x K] block per task */
} f32_job;

static void block_range(const nn_conv_geom *g, size_t task, size_t *n0, size_t *n1) {
  *n0 = task * g->spt;
  *n1 = I8T_MIN(*n0 + g->spt, (size_t)g->s.batch);
}

static const float *columns(f32_job *j, size_t n0, size_t n1, int worker) {
  const nn_conv_geom *g = &j->g;
  if (g->direct) return j->x + n0 * g->in_rows * (size_t)g->s.in_c;
  float *cols = nn_scratch(j->ws, worker, NN_SLOT_A);
  nn_im2col(g, j->x, sizeof(float), 0, n0, n1, cols, g->K);
  return cols;
}

static void f32_forward_task(void *arg, size_t task, int worker) {
  f32_job *j = arg;
  const nn_conv_geom *g = &j->g;
  size_t n0, n1, Co = (size_t)g->s.out_c;
  block_range(g, task, &n0, &n1);
  const float *cols = columns(j, n0, n1, worker);
  /* j->w holds the weights transposed to [K x out_c]. */
  nn_sgemm((n1 - n0) * g->out_rows, Co, g->K, cols, g->K, 1, j->w, Co, 1,
           j->y + n0 * g->out_rows * Co, Co, 0);
}

static void f32_backward_data_task(void *arg, size_t task, int worker) {
  f32_job *j = arg;
  const nn_conv_geom *g = &j->g;
  size_t n0, n1, Co = (size_t)g->s.out_c, Ci = (size_t)g->s.in_c;
  block_range(g, task, &n0, &n1);
  size_t m = (n1 - n0) * g->out_rows;
  const float *dy = j->dy + n0 * g->out_rows * Co;
  float *dx = j->dx + n0 * g->in_rows * Ci;
  if (g->direct) {
    nn_sgemm(m, g->K, Co, dy, Co, 1, j->w, g->K, 1, dx, Ci, 0);
    return;
  }
  float *cols = nn_scratch(j->ws, worker, NN_SLOT_A);
  nn_sgemm(m, g->K, Co, dy, Co, 1, j->w, g->K, 1, cols, g->K, 0);
  memset(dx, 0, (n1 - n0) * g->in_rows * Ci * sizeof *dx);
  nn_col2im_f32(g, cols, g->K, n0, n1, j->dx);
}

static void f32_backward_weights_task(void *arg, size_t task, int worker) {
  f32_job *j = arg;
  const nn_conv_geom *g = &j->g;
  size_t n0, n1, Co = (size_t)g->s.out_c;
  block_range(g, task, &n0, &n1);
  const float *cols = columns(j, n0, n1, worker);
  nn_sgemm(Co, g->K, (n1 - n0) * g->out_rows, j->dy + n0 * g->out_rows * Co, 1, Co, cols, g->K,
           1, j->partials + task * Co * g->K, g->K, 0);
}

static i8t_status conv_args(i8t_workspace *ws, const i8t_conv_shape *s, const void *a,
                            const void *b, const void *c) {
  i8t_status st = i8t_conv_check(s);
  if (st) return st;
  if (!ws || !a || !b || !c) return i8t_error(I8T_ERR_INVALID_ARG, "conv f32: NULL argument");
  return I8T_OK;
}

static i8t_status reserve_columns(i8t_workspace *ws, const nn_conv_geom *g) {
  if (g->direct) return I8T_OK;
  return nn_reserve(ws, NN_SLOT_A, g->spt * g->out_rows * g->K * sizeof(float));
}

i8t_status i8t_conv2d_forward_f32(i8t_workspace *ws, const i8t_conv_shape *s, const float *x,
                                  const float *w, float *y) {
  i8t_status st = conv_args(ws, s, x, w, y);
  if (st) return st;
  if (nn_use_onednn(ws)) return nn_dnnl_conv_forward(ws, s, x, w, y);
  f32_job j = {.g = nn_conv_geom_make(s), .ws = ws, .x = x, .y = y};
  if ((st = reserve_columns(ws, &j.g))) return st;
  float *wt = transposed_copy(w, (size_t)s->out_c, j.g.K);
  if (!wt) return i8t_error(I8T_ERR_NO_MEMORY, "conv f32 weights");
  j.w = wt;
  i8t_parallel_for(ws->ctx, j.g.tasks, f32_forward_task, &j);
  free(wt);
  return I8T_OK;
}

i8t_status i8t_conv2d_backward_data_f32(i8t_workspace *ws, const i8t_conv_shape *s,
                                        const float *dy, const float *w, float *dx) {
  i8t_status st = conv_args(ws, s, dy, w, dx);
  if (st) return st;
  if (nn_use_onednn(ws)) return nn_dnnl_conv_backward_data(ws, s, dy, w, dx);
  f32_job j = {.g = nn_conv_geom_make(s), .ws = ws, .w = w, .dy = dy, .dx = dx};
  if ((st = reserve_columns(ws, &j.g))) return st;
  i8t_parallel_for(ws->ctx, j.g.tasks, f32_backward_data_task, &j);
  return I8T_OK;
}

i8t_status i8t_conv2d_backward_weights_f32(i8t_workspace *ws, const i8t_conv_shape *s,
                                           const float *dy, const float *x, float *dw) {
  i8t_status st = conv_args(ws, s, dy, x, dw);
  if (st) return st;
  if (nn_use_onednn(ws)) return nn_dnnl_conv_backward_weights(ws, s, dy, x, dw);
  f32_job j = {.g = nn_conv_geom_make(s), .ws = ws, .x = x, .dy = dy};
  if ((st = reserve_columns(ws, &j.g))) return st;
  size_t wsize = (size_t)s->out_c * j.g.K;
  j.partials = malloc(j.g.tasks * wsize * sizeof(float));
  if (!j.partials) return i8t_error(I8T_ERR_NO_MEMORY, "conv f32 weight-gradient partials");
  i8t_parallel_for(ws->ctx, j.g.tasks, f32_backward_weights_task, &j);
  /* Summed in task order: the same bits for any thread count. */
  memcpy(dw, j.partials, wsize * sizeof *dw);
  for (size_t t = 1; t < j.g.tasks; t++)
    for (size_t i = 0; i < wsize; i++) dw[i] += j.partials[t * wsize + i];
  free(j.partials);
  return I8T_OK;
}

/* ------------------------------------------------------------------------ */
/* Fully connected (fp32)                                                   */
/* ------------------------------------------------------------------------ */

static i8t_status fc_args(i8t_workspace *ws, int n, int in, int out, const void *a,
                          const void *b, const void *c) {
  if (!ws || !a || !b || !c) return i8t_error(I8T_ERR_INVALID_ARG, "fc f32: NULL argument");
  if (n <= 0 || in <= 0 || out <= 0)
    return i8t_error(I8T_ERR_SHAPE, "fc f32: sizes must be positive (n %d, in %d, out %d)", n,
                     in, out);
  return I8T_OK;
}

i8t_status i8t_fc_forward_f32(i8t_workspace *ws, int n, int in, int out, const float *x,
                              const float *w, const float *bias, float *y) {
  i8t_status st = fc_args(ws, n, in, out, x, w, y);
  if (st) return st;
  if (nn_use_onednn(ws)) return nn_dnnl_fc_forward(ws, n, in, out, x, w, bias, y);
  float *wt = transposed_copy(w, (size_t)out, (size_t)in);
  if (!wt) return i8t_error(I8T_ERR_NO_MEMORY, "fc f32 weights");
  nn_sgemm((size_t)n, (size_t)out, (size_t)in, x, (size_t)in, 1, wt, (size_t)out, 1, y,
           (size_t)out, 0);
  free(wt);
  if (bias)
    for (size_t r = 0; r < (size_t)n; r++)
      for (size_t c = 0; c < (size_t)out; c++) y[r * (size_t)out + c] += bias[c];
  return I8T_OK;
}

i8t_status i8t_fc_backward_data_f32(i8t_workspace *ws, int n, int in, int out, const float *dy,
                                    const float *w, float *dx) {
  i8t_status st = fc_args(ws, n, in, out, dy, w, dx);
  if (st) return st;
  if (nn_use_onednn(ws)) return nn_dnnl_fc_backward_data(ws, n, in, out, dy, w, dx);
  nn_sgemm((size_t)n, (size_t)in, (size_t)out, dy, (size_t)out, 1, w, (size_t)in, 1, dx,
           (size_t)in, 0);
  return I8T_OK;
}

i8t_status i8t_fc_backward_weights_f32(i8t_workspace *ws, int n, int in, int out,
                                       const float *dy, const float *x, float *dw, float *dbias) {
  i8t_status st = fc_args(ws, n, in, out, dy, x, dw);
  if (st) return st;
  if (nn_use_onednn(ws)) return nn_dnnl_fc_backward_weights(ws, n, in, out, dy, x, dw, dbias);
  nn_sgemm((size_t)out, (size_t)in, (size_t)n, dy, 1, (size_t)out, x, (size_t)in, 1, dw,
           (size_t)in, 0);
  if (dbias) {
    for (size_t c = 0; c < (size_t)out; c++) dbias[c] = 0.0f;
    for (size_t r = 0; r < (size_t)n; r++)
      for (size_t c = 0; c < (size_t)out; c++) dbias[c] += dy[r * (size_t)out + c];
  }
  return I8T_OK;
}
