/* The 1-channel stem convolution (3x3, stride 1, padding 1) without im2col:
 * its 9-byte column rows filled a fraction of a GEMM tile. Per sample, a
 * zero-point-padded copy of the image feeds the table's direct kernels (16
 * output channels a call); samples split over the workers. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "conv_stem.h"
#include "kernel_table.h"

enum { STEM_CO = 16, STEM_TAPS = 9 };

static int stem_shape(const i8t_conv_shape *s) {
  return s->in_c == 1 && s->kernel == 3 && s->stride == 1 && s->pad == 1 &&
         s->out_c % STEM_CO == 0;
}

int nn_stem_forward_fits(const i8t_conv_shape *s, const float *col_scale, size_t ncs) {
  if (!stem_shape(s) || !i8t_kernels()->conv3x3_c1_fwd.run) return 0;
  for (size_t c = 0; col_scale && ncs > 1 && c < ncs; c++)
    if (!(col_scale[c] >= FLT_MIN && col_scale[c] <= FLT_MAX)) return 0;
  return 1;
}

int nn_stem_wgrad_fits(const i8t_conv_shape *s) {
  return stem_shape(s) && i8t_kernels()->conv3x3_c1_wgrad.run != NULL;
}

/* The padded image: (H + 2) rows of W + 3 elements (kernel_table.h). */
static size_t padded_ld(const i8t_conv_shape *s) { return (size_t)s->in_w + 3; }
static size_t padded_size(const i8t_conv_shape *s) {
  return ((size_t)s->in_h + 2) * padded_ld(s);
}

/* One sample's rows into the padded image, whose border was set before. */
static void fill_u8(const i8t_conv_shape *s, const uint8_t *x, uint8_t *xp) {
  size_t W = (size_t)s->in_w, ld = padded_ld(s);
  for (size_t iy = 0; iy < (size_t)s->in_h; iy++) memcpy(xp + (iy + 1) * ld + 1, x + iy * W, W);
}

static void fill_s16(const i8t_conv_shape *s, const uint8_t *x, int16_t zp, int16_t *xs) {
  size_t W = (size_t)s->in_w, ld = padded_ld(s);
  for (size_t iy = 0; iy < (size_t)s->in_h; iy++) {
    const uint8_t *restrict src = x + iy * W;
    int16_t *restrict dst = xs + (iy + 1) * ld + 1;
    for (size_t ix = 0; ix < W; ix++) dst[ix] = (int16_t)(src[ix] - zp);
  }
}

/* ------------------------------------------------------------------------ */
/* Forward                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct stem_fwd_job {
  i8t_workspace *ws;
  const i8t_conv_shape *s;
  const uint8_t *x;
  uint8_t zp;
  int s16_image; /* the kernel reads the s16 image (kernel_table.h) */
  const int8_t *wq;    /* [out_c / 16][3][16][4]: the kernel's weight groups */
  const int32_t *bias; /* [out_c]: -zp * the channel's weight sum (u8 image), or 0 */
  int32_t *y; /* NULL: each sample's int32 block goes to the worker's slot C */
  const float *col_scale;
  size_t ncs, spt;
  float *smin, *smax;
  nn_fused_u8 out; /* nn_stem_forward_u8's u8 output */
  nn_errors err;
} stem_fwd_job;

/* Weight groups of every block of 16 channels, and the zero-point terms
 * (zp = 0 for kernels on the s16 image, where x - zp is already taken). */
static void prepare_weights(const int8_t *w, size_t C, uint8_t zp, int8_t *wq, int32_t *bias) {
  memset(wq, 0, C * 12);
  for (size_t co = 0; co < C; co++) {
    int32_t sum = 0;
    for (size_t t = 0; t < STEM_TAPS; t++) {
      size_t blk = co / STEM_CO, ky = t / 3, kx = t % 3;
      wq[((blk * 3 + ky) * STEM_CO + co % STEM_CO) * 4 + kx] = w[co * STEM_TAPS + t];
      sum += w[co * STEM_TAPS + t];
    }
    bias[co] = -(int32_t)zp * sum;
  }
}

/* The sample's real output range from each channel's integer extremes:
 * with one scale, as conv.c's sample_range (the integer extremes, then
 * nn_scaled_range); with per-channel scales (positive normal floats:
 * x -> x * s is monotone and never gives -0), the extremes of each
 * channel's scaled extremes, which are the extremes of the scaled values. */
static void sample_range(const int32_t *mn, const int32_t *mx, size_t C, const float *cs,
                         size_t ncs, float *lo, float *hi) {
  if (ncs == 1) {
    int32_t a = mn[0], b = mx[0];
    for (size_t c = 1; c < C; c++) {
      a = mn[c] < a ? mn[c] : a;
      b = mx[c] > b ? mx[c] : b;
    }
    nn_scaled_range(a, b, cs[0], lo, hi);
    return;
  }
  float l = INFINITY, h = -INFINITY;
  for (size_t c = 0; c < C; c++) {
    float a = (float)mn[c] * cs[c], b = (float)mx[c] * cs[c];
    l = a < l ? a : l;
    h = b > h ? b : h;
  }
  *lo = l;
  *hi = h;
}

static void stem_fwd_task(void *arg, size_t task, int worker) {
  stem_fwd_job *j = arg;
  const i8t_conv_shape *s = j->s;
  const i8t_conv3x3_c1_fwd_fn run = i8t_kernels()->conv3x3_c1_fwd.run;
  size_t H = (size_t)s->in_h, W = (size_t)s->in_w, C = (size_t)s->out_c, rows = H * W;
  size_t n0 = task * j->spt, n1 = I8T_MIN(n0 + j->spt, (size_t)s->batch);
  void *img = nn_scratch(j->ws, worker, NN_SLOT_A);
  int32_t *mn = nn_scratch(j->ws, worker, NN_SLOT_B), *mx = mn + C;
  if (j->s16_image)
    memset(img, 0, padded_size(s) * sizeof(int16_t));
  else
    memset(img, j->zp, padded_size(s));
  for (size_t n = n0; n < n1; n++) {
    if (j->s16_image)
      fill_s16(s, j->x + n * rows, j->zp, img);
    else
      fill_u8(s, j->x + n * rows, img);
    int32_t *y = j->y ? j->y + n * rows * C : nn_scratch(j->ws, worker, NN_SLOT_C);
    for (size_t b = 0; b < C / STEM_CO; b++)
      run(H, W, img, padded_ld(s), j->wq + b * 12 * STEM_CO, j->bias + b * STEM_CO,
          y + b * STEM_CO, C, mn + b * STEM_CO, mx + b * STEM_CO);
    if (j->smin) sample_range(mn, mx, C, j->col_scale, j->ncs, &j->smin[n], &j->smax[n]);
    if (j->out.q) nn_errors_set(&j->err, nn_fused_u8_sample(&j->out, y, rows, C, n));
  }
}

/* The forward with j's outputs (y or not, ranges or not, q or not) set. */
static i8t_status stem_forward(stem_fwd_job *j, const int8_t *w) {
  const i8t_conv_shape *s = j->s;
  size_t C = (size_t)s->out_c, rows = (size_t)s->in_h * (size_t)s->in_w;
  size_t rep = nn_fused_rep_count(&j->out, C);
  i8t_workspace *ws = j->ws;
  j->s16_image = i8t_kernels()->conv3x3_c1_fwd.s16_image;
  i8t_status st;
  if ((st = nn_reserve(ws, NN_SLOT_A, padded_size(s) * (j->s16_image ? 2 : 1))) ||
      (st = nn_reserve(ws, NN_SLOT_B, 2 * C * sizeof(int32_t))) ||
      (!j->y && (st = nn_reserve(ws, NN_SLOT_C, rows * C * sizeof(int32_t)))))
    return st;
  /* bias, weight groups, scales: each a multiple of 64 bytes (C % 16 == 0) */
  char *shared = nn_shared_bytes(ws, C * sizeof(int32_t) + C * 12 + rep * sizeof(float));
  if (!shared) return I8T_ERR_NO_MEMORY;
  int32_t *bias = (int32_t *)(void *)shared; /* 64-byte aligned base */
  int8_t *wq = (int8_t *)(shared + C * sizeof(int32_t));
  float *cs_rep = (float *)(void *)(shared + C * sizeof(int32_t) + C * 12);
  prepare_weights(w, C, j->s16_image ? 0 : j->zp, wq, bias);
  nn_replicate_scales(j->col_scale, j->ncs, C, rep, cs_rep);
  j->wq = wq, j->bias = bias, j->out.cs_rep = cs_rep;
  j->spt = nn_samples_per_task((size_t)s->batch, rows, 1536);
  nn_errors_init(&j->err);
  i8t_parallel_for(ws->ctx, nn_task_count((size_t)s->batch, j->spt), stem_fwd_task, j);
  return nn_errors_get(&j->err);
}

i8t_status nn_stem_forward(i8t_workspace *ws, const i8t_conv_shape *s, const uint8_t *x,
                           uint8_t x_zp, const int8_t *w, int32_t *y, const float *col_scale,
                           size_t ncs, float *sample_min, float *sample_max) {
  stem_fwd_job j = {.ws = ws, .s = s, .x = x, .zp = x_zp, .y = y, .col_scale = col_scale,
                    .ncs = ncs, .smin = sample_min, .smax = sample_max};
  return stem_forward(&j, w);
}

i8t_status nn_stem_forward_u8(i8t_workspace *ws, const i8t_conv_shape *s, const uint8_t *x,
                              uint8_t x_zp, const int8_t *w, const float *col_scale, size_t ncs,
                              i8t_qparams out, i8t_rounding r, uint8_t *q) {
  stem_fwd_job j = {.ws = ws, .s = s, .x = x, .zp = x_zp, .col_scale = col_scale, .ncs = ncs,
                    .out = {.q = q, .qp = out, .r = r}};
  return stem_forward(&j, w);
}

/* ------------------------------------------------------------------------ */
/* Weight gradient                                                          */
/* ------------------------------------------------------------------------ */

typedef struct stem_wgrad_job {
  i8t_workspace *ws;
  const i8t_conv_shape *s;
  const int16_t *dy;
  const uint8_t *x;
  uint8_t zp;
  size_t spt;
} stem_wgrad_job;

/* Each task's samples into its worker's int64 sums [out_c / 16][9][16]. */
static void stem_wgrad_task(void *arg, size_t task, int worker) {
  const stem_wgrad_job *j = arg;
  const i8t_conv_shape *s = j->s;
  const i8t_conv3x3_c1_wgrad_fn run = i8t_kernels()->conv3x3_c1_wgrad.run;
  size_t H = (size_t)s->in_h, W = (size_t)s->in_w, C = (size_t)s->out_c, rows = H * W;
  size_t n0 = task * j->spt, n1 = I8T_MIN(n0 + j->spt, (size_t)s->batch);
  int16_t *xs = nn_scratch(j->ws, worker, NN_SLOT_A);
  int64_t *acc = nn_scratch(j->ws, worker, NN_SLOT_C);
  memset(xs, 0, padded_size(s) * sizeof *xs);
  for (size_t n = n0; n < n1; n++) {
    fill_s16(s, j->x + n * rows, j->zp, xs);
    for (size_t b = 0; b < C / STEM_CO; b++)
      run(H, W, xs, padded_ld(s), j->dy + n * rows * C + b * STEM_CO, C,
          acc + b * STEM_TAPS * STEM_CO);
  }
}

i8t_status nn_stem_backward_weights(i8t_workspace *ws, const i8t_conv_shape *s,
                                    const int16_t *dy, const uint8_t *x, uint8_t x_zp,
                                    int64_t *dw) {
  size_t C = (size_t)s->out_c, rows = (size_t)s->in_h * (size_t)s->in_w;
  size_t acc_size = C * STEM_TAPS;
  i8t_status st;
  if ((st = nn_reserve(ws, NN_SLOT_A, padded_size(s) * sizeof(int16_t))) ||
      (st = nn_reserve(ws, NN_SLOT_C, acc_size * sizeof(int64_t))))
    return st;
  for (int w = 0; w < ws->threads; w++) memset(nn_scratch(ws, w, NN_SLOT_C), 0, acc_size * 8);
  stem_wgrad_job j = {ws, s, dy, x, x_zp, nn_samples_per_task((size_t)s->batch, rows, 1536)};
  i8t_parallel_for(ws->ctx, nn_task_count((size_t)s->batch, j.spt), stem_wgrad_task, &j);
  /* Exact int64 sums: any order of workers gives the same dw. */
  memset(dw, 0, acc_size * sizeof *dw);
  for (int w = 0; w < ws->threads; w++) {
    const int64_t *acc = nn_scratch(ws, w, NN_SLOT_C);
    for (size_t co = 0; co < C; co++)
      for (size_t t = 0; t < STEM_TAPS; t++)
        dw[co * STEM_TAPS + t] += acc[((co / STEM_CO) * STEM_TAPS + t) * STEM_CO + co % STEM_CO];
  }
  return I8T_OK;
}
