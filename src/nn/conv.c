/* Convolution and fully connected layers in int8: im2col of u8 NHWC
 * activations feeding the three integer GEMMs, per block of samples so that
 * the column buffer stays in cache; col2im of the exact int32 grad input. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "kernel_table.h"
#include "nn_conv.h"

i8t_conv_shape i8t_fc_shape(int batch, int in_features, int out_features) {
  i8t_conv_shape s = {batch, 1, 1, in_features, out_features, 1, 1, 0};
  return s;
}

int i8t_conv_out_h(const i8t_conv_shape *s) {
  return (s->in_h + 2 * s->pad - s->kernel) / s->stride + 1;
}
int i8t_conv_out_w(const i8t_conv_shape *s) {
  return (s->in_w + 2 * s->pad - s->kernel) / s->stride + 1;
}
size_t i8t_conv_k(const i8t_conv_shape *s) {
  return (size_t)s->kernel * (size_t)s->kernel * (size_t)s->in_c;
}

i8t_status i8t_conv_check(const i8t_conv_shape *s) {
  if (!s) return i8t_error(I8T_ERR_INVALID_ARG, "conv: NULL shape");
  if (s->batch <= 0 || s->in_h <= 0 || s->in_w <= 0 || s->in_c <= 0 || s->out_c <= 0 ||
      s->kernel <= 0 || s->stride <= 0 || s->pad < 0)
    return i8t_error(I8T_ERR_SHAPE,
                     "conv: sizes must be positive (batch %d, input %dx%dx%d, out_c %d, "
                     "kernel %d, stride %d, pad %d)",
                     s->batch, s->in_h, s->in_w, s->in_c, s->out_c, s->kernel, s->stride, s->pad);
  if (s->kernel > s->in_h + 2 * s->pad || s->kernel > s->in_w + 2 * s->pad)
    return i8t_error(I8T_ERR_SHAPE, "conv: kernel %d larger than the padded input %dx%d",
                     s->kernel, s->in_h + 2 * s->pad, s->in_w + 2 * s->pad);
  if (s->pad >= s->kernel)
    return i8t_error(I8T_ERR_SHAPE, "conv: padding %d must be smaller than the kernel %d",
                     s->pad, s->kernel);
  if (i8t_conv_k(s) > I8T_GEMM_MAX_K || (size_t)s->out_c > I8T_GEMM_MAX_K)
    return i8t_error(I8T_ERR_SHAPE, "conv: K=%zu or out_c=%d exceeds the int32-exact limit %d",
                     i8t_conv_k(s), s->out_c, I8T_GEMM_MAX_K);
  /* col2im adds kernel^2 GEMM results of |value| <= 127 * 127 * out_c each. */
  if ((size_t)s->out_c * (size_t)s->kernel * (size_t)s->kernel > (size_t)INT32_MAX / (127 * 127))
    return i8t_error(I8T_ERR_SHAPE, "conv: out_c * kernel^2 = %zu too large for int32 col2im",
                     (size_t)s->out_c * (size_t)s->kernel * (size_t)s->kernel);
  size_t in = (size_t)s->batch * s->in_h * s->in_w * s->in_c;
  size_t out = (size_t)s->batch * i8t_conv_out_h(s) * i8t_conv_out_w(s) * s->out_c;
  if (in > UINT32_MAX || out > UINT32_MAX)
    return i8t_error(I8T_ERR_SHAPE, "conv: tensors above 2^32 elements are not supported");
  return I8T_OK;
}

nn_conv_geom nn_conv_geom_make(const i8t_conv_shape *s) {
  nn_conv_geom g;
  g.s = *s;
  g.oh = (size_t)i8t_conv_out_h(s);
  g.ow = (size_t)i8t_conv_out_w(s);
  g.K = i8t_conv_k(s);
  g.in_rows = (size_t)s->in_h * s->in_w;
  g.out_rows = g.oh * g.ow;
  g.direct = s->kernel == 1 && s->stride == 1 && s->pad == 0;
  /* ~1.5k output rows per task: the column block stays in L2. */
  g.spt = nn_samples_per_task((size_t)s->batch, g.out_rows, 1536);
  g.tasks = nn_task_count((size_t)s->batch, g.spt);
  return g;
}

/* GEMM output widths are padded to whole 32-column panels (zero weights in
 * the extra columns, results dropped): edge tiles of the microkernels go
 * through a slow scalar copy-out, full ones are stored directly. */
#define NN_PANEL 32
static size_t padded(size_t n) { return I8T_ROUND_UP(n, NN_PANEL); }

/* dst [rows x ld] = src [rows x cols] with zero columns after cols. */
static void pad_columns_s8(const int8_t *src, size_t rows, size_t cols, size_t ld, int8_t *dst) {
  for (size_t r = 0; r < rows; r++) {
    memcpy(dst + r * ld, src + r * cols, cols);
    memset(dst + r * ld + cols, 0, ld - cols);
  }
}

/* The first `cols` columns of src [rows x ld] into dst [rows x cols]. */
static void copy_columns_s32(const int32_t *src, size_t rows, size_t ld, size_t cols,
                             int32_t *dst) {
  for (size_t r = 0; r < rows; r++) {
    const int32_t *s = src + r * ld;
    int32_t *d = dst + r * cols;
    size_t c = 0;
    for (; c + 4 <= cols; c += 4) memcpy(d + c, s + c, 16); /* inlined moves, no call */
    for (; c < cols; c++) d[c] = s[c];
  }
}

/* memcpy for the short runs of im2col (a window row of pixels): fixed-size
 * moves that the compiler inlines, the tail as an overlapping last move;
 * the library call costs more than the copy at these sizes. */
static inline void copy_run(unsigned char *restrict d, const unsigned char *restrict s, size_t n) {
  if (n >= 16) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) memcpy(d + i, s + i, 16);
    if (i < n) memcpy(d + n - 16, s + n - 16, 16);
  } else if (n >= 8) {
    memcpy(d, s, 8);
    memcpy(d + n - 8, s + n - 8, 8);
  } else if (n >= 4) {
    memcpy(d, s, 4);
    memcpy(d + n - 4, s + n - 4, 4);
  } else {
    for (size_t i = 0; i < n; i++) d[i] = s[i];
  }
}

/* One im2col row at the border: the part of each window row inside the
 * image is one contiguous run (for any stride), the rest is padding. */
static void border_row(const nn_conv_geom *g, const unsigned char *src, size_t n, long iy0,
                       long ix0, size_t pix, unsigned char pad_byte, unsigned char *row) {
  const long H = g->s.in_h, W = g->s.in_w, k = g->s.kernel;
  long lo = ix0 < 0 ? -ix0 : 0, hi = ix0 + k > W ? W - ix0 : k;
  for (long ky = 0; ky < k; ky++) {
    unsigned char *seg = row + (size_t)(ky * k) * pix;
    long iy = iy0 + ky;
    if (iy < 0 || iy >= H || hi <= lo) {
      memset(seg, pad_byte, (size_t)k * pix);
      continue;
    }
    const unsigned char *line = src + (n * (size_t)H + (size_t)iy) * (size_t)W * pix;
    if (lo > 0) memset(seg, pad_byte, (size_t)lo * pix);
    copy_run(seg + (size_t)lo * pix, line + (size_t)(ix0 + lo) * pix, (size_t)(hi - lo) * pix);
    if (hi < k) memset(seg + (size_t)hi * pix, pad_byte, (size_t)(k - hi) * pix);
  }
}

void nn_im2col(const nn_conv_geom *g, const void *x, size_t esize, unsigned char pad_byte,
               size_t n0, size_t n1, void *cols, size_t ld) {
  /* Columns past K (ld > K) are left as they are: their products are dropped. */
  const size_t H = (size_t)g->s.in_h, W = (size_t)g->s.in_w, k = (size_t)g->s.kernel;
  const long P = g->s.pad, S = g->s.stride;
  const size_t pix = (size_t)g->s.in_c * esize, rowbytes = ld * esize, kpix = k * pix;
  const unsigned char *src = x;
  unsigned char *dst = cols;
  for (size_t n = n0; n < n1; n++) {
    for (size_t oy = 0; oy < g->oh; oy++) {
      long iy0 = (long)oy * S - P;
      int rows_inside = iy0 >= 0 && iy0 + (long)k <= (long)H;
      for (size_t ox = 0; ox < g->ow; ox++, dst += rowbytes) {
        long ix0 = (long)ox * S - P;
        if (rows_inside && ix0 >= 0 && ix0 + (long)k <= (long)W) { /* interior: k runs */
          const unsigned char *s0 = src + ((n * H + (size_t)iy0) * W + (size_t)ix0) * pix;
          for (size_t ky = 0; ky < k; ky++) copy_run(dst + ky * kpix, s0 + ky * W * pix, kpix);
        } else {
          border_row(g, src, n, iy0, ix0, pix, pad_byte, dst);
        }
      }
    }
  }
}

/* col2im for int32 and float: dx (samples n0..n1, zeroed by the caller) +=
 * every column value routed back to its input pixel. One body for both types. */
#define DEFINE_COL2IM(NAME, T)                                                            \
  void NAME(const nn_conv_geom *g, const T *cols, size_t ld, size_t n0, size_t n1, T *dx) { \
    const size_t H = (size_t)g->s.in_h, W = (size_t)g->s.in_w, k = (size_t)g->s.kernel;  \
    const size_t C = (size_t)g->s.in_c;                                                   \
    const long P = g->s.pad, S = g->s.stride;                                             \
    for (size_t n = n0; n < n1; n++) {                                                    \
      for (size_t oy = 0; oy < g->oh; oy++) {                                             \
        for (size_t ox = 0; ox < g->ow; ox++, cols += ld) {                               \
          for (size_t ky = 0; ky < k; ky++) {                                             \
            long iy = (long)oy * S - P + (long)ky;                                        \
            if (iy < 0 || iy >= (long)H) continue;                                        \
            for (size_t kx = 0; kx < k; kx++) {                                           \
              long ix = (long)ox * S - P + (long)kx;                                      \
              if (ix < 0 || ix >= (long)W) continue;                                      \
              T *d = dx + ((n * H + (size_t)iy) * W + (size_t)ix) * C;                     \
              const T *c = cols + (ky * k + kx) * C;                                      \
              for (size_t i = 0; i < C; i++) d[i] += c[i];                                \
            }                                                                             \
          }                                                                               \
        }                                                                                 \
      }                                                                                   \
    }                                                                                     \
  }

/* int32 adds of exact integer products: no wrap-around, as
 * 127 * 127 * out_c * kernel^2 fits (checked by i8t_conv_check). */
DEFINE_COL2IM(nn_col2im_s32, int32_t)
DEFINE_COL2IM(nn_col2im_f32, float)

/* ------------------------------------------------------------------------ */
/* int8 forward                                                             */
/* ------------------------------------------------------------------------ */

typedef struct fwd_job {
  nn_conv_geom g;
  i8t_workspace *ws;
  const uint8_t *x;
  uint8_t zp;
  const int8_t *w;
  int32_t *y;
  const float *col_scale;
  size_t ncs;
  float *smin, *smax;
  nn_errors err;
} fwd_job;

/* Real-valued min and max of one sample's int32 output block. */
static void sample_range(const int32_t *y, size_t rows, size_t C, const float *col_scale,
                         size_t ncs, float *lo, float *hi) {
  if (ncs == 1) {
    int32_t mn, mx;
    i8t_kernels()->minmax_s32.run(rows * C, y, &mn, &mx); /* rows * C > 0 */
    float a = (float)mn * col_scale[0], b = (float)mx * col_scale[0];
    *lo = a < b ? a : b;
    *hi = a < b ? b : a;
    return;
  }
  float mn = INFINITY, mx = -INFINITY;
  for (size_t r = 0; r < rows; r++) {
    const int32_t *yr = y + r * C;
    for (size_t c = 0; c < C; c++) {
      float v = (float)yr[c] * col_scale[c];
      mn = v < mn ? v : mn;
      mx = v > mx ? v : mx;
    }
  }
  *lo = mn;
  *hi = mx;
}

static void forward_task(void *arg, size_t task, int worker) {
  fwd_job *j = arg;
  const nn_conv_geom *g = &j->g;
  size_t n0 = task * g->spt, n1 = I8T_MIN(n0 + g->spt, (size_t)g->s.batch);
  size_t r0 = n0 * g->out_rows, m = (n1 - n0) * g->out_rows, C = (size_t)g->s.out_c;
  const uint8_t *a = j->x + n0 * g->in_rows * (size_t)g->s.in_c;
  if (!g->direct) {
    uint8_t *cols = nn_scratch(j->ws, worker, NN_SLOT_A);
    nn_im2col(g, j->x, 1, j->zp, n0, n1, cols, g->K);
    a = cols;
  }
  /* j->w: [Cp x K], rows past C zero; Cp = C when C fills whole panels. */
  size_t Cp = padded(C);
  int32_t *out = Cp == C ? j->y + r0 * C : nn_scratch(j->ws, worker, NN_SLOT_C);
  i8t_matrix A = {a, g->K, 1}, B = {j->w, 1, g->K};
  i8t_status st = i8t_gemm_u8s8s32(j->ws->ctx, m, Cp, g->K, A, j->zp, B, out, Cp);
  if (st) {
    nn_errors_set(&j->err, st);
    return;
  }
  if (Cp != C) copy_columns_s32(out, m, Cp, C, j->y + r0 * C);
  if (!j->smin) return;
  for (size_t n = n0; n < n1; n++)
    sample_range(j->y + n * g->out_rows * C, g->out_rows, C, j->col_scale, j->ncs,
                 &j->smin[n], &j->smax[n]);
}

i8t_status i8t_conv2d_forward_s8(i8t_workspace *ws, const i8t_conv_shape *s, const uint8_t *x,
                                 uint8_t x_zp, const int8_t *w, int32_t *y,
                                 const float *col_scale, size_t col_scale_count,
                                 float *sample_min, float *sample_max) {
  i8t_status st = i8t_conv_check(s);
  if (st) return st;
  if (!ws || !x || !w || !y) return i8t_error(I8T_ERR_INVALID_ARG, "conv forward: NULL argument");
  if ((sample_min || sample_max) &&
      (!sample_min || !sample_max || !col_scale ||
       (col_scale_count != 1 && col_scale_count != (size_t)s->out_c)))
    return i8t_error(I8T_ERR_INVALID_ARG,
                     "conv forward: sample ranges need both outputs and 1 or out_c=%d scales",
                     s->out_c);
  fwd_job j = {.g = nn_conv_geom_make(s), .ws = ws, .x = x, .zp = x_zp, .w = w, .y = y,
               .col_scale = col_scale, .ncs = col_scale_count, .smin = sample_min,
               .smax = sample_max};
  nn_errors_init(&j.err);
  size_t Co = (size_t)s->out_c, Cp = padded(Co), rows = j.g.spt * j.g.out_rows;
  if (!j.g.direct && (st = nn_reserve(ws, NN_SLOT_A, rows * j.g.K))) return st;
  if (Cp != Co) {
    int8_t *wp = nn_shared_bytes(ws, Cp * j.g.K);
    if (!wp || (st = nn_reserve(ws, NN_SLOT_C, rows * Cp * sizeof(int32_t))))
      return wp ? st : I8T_ERR_NO_MEMORY;
    memcpy(wp, w, Co * j.g.K);
    memset(wp + Co * j.g.K, 0, (Cp - Co) * j.g.K);
    j.w = wp;
  }
  i8t_parallel_for(ws->ctx, j.g.tasks, forward_task, &j);
  return nn_errors_get(&j.err);
}

/* ------------------------------------------------------------------------ */
/* int8 grad input                                                          */
/* ------------------------------------------------------------------------ */

/* Stride 1: the input gradient is itself a convolution of dy, with the
 * kernel flipped and in / out channels swapped, padding k - 1 - pad:
 *   dx[iy][ix][ci] = sum dy[iy - (k-1-pad) + ky'][...][co] * W[co][k-1-ky'][k-1-kx'][ci]
 * so im2col of the s8 dy feeds the GEMM directly (no int32 columns, no
 * col2im). Other strides scatter the int32 columns back (col2im). */
typedef struct bwd_data_job {
  nn_conv_geom g;  /* the layer */
  nn_conv_geom gt; /* stride 1: the transposed convolution */
  int transposed;
  i8t_workspace *ws;
  const int8_t *dy, *w, *wt;
  int32_t *dx;
  nn_errors err;
} bwd_data_job;

/* wt [in_c x k*k*out_c]: the weights flipped and transposed. */
static void flip_weights(const i8t_conv_shape *s, const int8_t *w, int8_t *wt) {
  size_t k = (size_t)s->kernel, Ci = (size_t)s->in_c, Co = (size_t)s->out_c, K = k * k * Ci;
  size_t Kt = k * k * Co;
  for (size_t co = 0; co < Co; co++)
    for (size_t ky = 0; ky < k; ky++)
      for (size_t kx = 0; kx < k; kx++)
        for (size_t ci = 0; ci < Ci; ci++)
          wt[ci * Kt + ((k - 1 - ky) * k + (k - 1 - kx)) * Co + co] = w[co * K + (ky * k + kx) * Ci + ci];
}

static void backward_data_task(void *arg, size_t task, int worker) {
  bwd_data_job *j = arg;
  const nn_conv_geom *g = &j->g;
  size_t Co = (size_t)g->s.out_c, Ci = (size_t)g->s.in_c;
  if (j->transposed) {
    const nn_conv_geom *t = &j->gt;
    size_t n0 = task * t->spt, n1 = I8T_MIN(n0 + t->spt, (size_t)t->s.batch);
    size_t m = (n1 - n0) * t->out_rows, Cip = padded(Ci);
    int8_t *cols = nn_scratch(j->ws, worker, NN_SLOT_A);
    int32_t *dx = j->dx + n0 * g->in_rows * Ci;
    int32_t *out = Cip == Ci ? dx : nn_scratch(j->ws, worker, NN_SLOT_C);
    nn_im2col(t, j->dy, 1, 0, n0, n1, cols, t->K);
    i8t_matrix A = {cols, t->K, 1}, B = {j->wt, 1, t->K}; /* wt: [Cip x K'] */
    i8t_status st = i8t_gemm_s8s8s32(j->ws->ctx, m, Cip, t->K, A, B, out, Cip);
    if (!st && Cip != Ci) copy_columns_s32(out, m, Cip, Ci, dx);
    nn_errors_set(&j->err, st);
    return;
  }
  size_t n0 = task * g->spt, n1 = I8T_MIN(n0 + g->spt, (size_t)g->s.batch);
  size_t r0 = n0 * g->out_rows, m = (n1 - n0) * g->out_rows;
  int32_t *dx = j->dx + n0 * g->in_rows * Ci;
  if (g->direct) {
    i8t_matrix A = {j->dy + r0 * Co, Co, 1}, B = {j->w, g->K, 1};
    nn_errors_set(&j->err, i8t_gemm_s8s8s32(j->ws->ctx, m, g->K, Co, A, B, dx, Ci));
    return;
  }
  size_t Kp = padded(g->K); /* j->w: [Co x Kp], zero columns past K */
  int32_t *cols = nn_scratch(j->ws, worker, NN_SLOT_A);
  i8t_matrix A = {j->dy + r0 * Co, Co, 1}, B = {j->w, Kp, 1};
  i8t_status st = i8t_gemm_s8s8s32(j->ws->ctx, m, Kp, Co, A, B, cols, Kp);
  if (st) {
    nn_errors_set(&j->err, st);
    return;
  }
  memset(dx, 0, (n1 - n0) * g->in_rows * Ci * sizeof *dx);
  nn_col2im_s32(g, cols, Kp, n0, n1, j->dx);
}

i8t_status i8t_conv2d_backward_data_s8(i8t_workspace *ws, const i8t_conv_shape *s,
                                       const int8_t *dy, const int8_t *w, int32_t *dx) {
  i8t_status st = i8t_conv_check(s);
  if (st) return st;
  if (!ws || !dy || !w || !dx)
    return i8t_error(I8T_ERR_INVALID_ARG, "conv backward data: NULL argument");
  bwd_data_job j = {.g = nn_conv_geom_make(s), .ws = ws, .dy = dy, .w = w, .dx = dx};
  nn_errors_init(&j.err);
  size_t tasks = j.g.tasks;
  j.transposed = !j.g.direct && s->stride == 1;
  if (j.transposed) {
    i8t_conv_shape ts = {s->batch, i8t_conv_out_h(s), i8t_conv_out_w(s), s->out_c, s->in_c,
                         s->kernel, 1, s->kernel - 1 - s->pad};
    j.gt = nn_conv_geom_make(&ts);
    size_t Cip = padded((size_t)s->in_c), rows = j.gt.spt * j.gt.out_rows;
    int8_t *wt = nn_shared_bytes(ws, Cip * j.gt.K);
    if (!wt) return I8T_ERR_NO_MEMORY;
    memset(wt, 0, Cip * j.gt.K);
    flip_weights(s, w, wt);
    j.wt = wt;
    tasks = j.gt.tasks;
    if (!(st = nn_reserve(ws, NN_SLOT_A, rows * j.gt.K)) && Cip != (size_t)s->in_c)
      st = nn_reserve(ws, NN_SLOT_C, rows * Cip * sizeof(int32_t));
  } else if (!j.g.direct) {
    size_t Kp = padded(j.g.K);
    int8_t *wp = nn_shared_bytes(ws, (size_t)s->out_c * Kp);
    if (!wp) return I8T_ERR_NO_MEMORY;
    pad_columns_s8(w, (size_t)s->out_c, j.g.K, Kp, wp);
    j.w = wp;
    st = nn_reserve(ws, NN_SLOT_A, j.g.spt * j.g.out_rows * Kp * sizeof(int32_t));
  }
  if (st) return st;
  i8t_parallel_for(ws->ctx, tasks, backward_data_task, &j);
  return nn_errors_get(&j.err);
}

/* ------------------------------------------------------------------------ */
/* int8 weight gradient                                                     */
/* ------------------------------------------------------------------------ */

typedef struct bwd_weights_job {
  nn_conv_geom g;
  i8t_workspace *ws;
  const int16_t *dy;
  const uint8_t *x;
  uint8_t zp;
  nn_errors err;
} bwd_weights_job;

/* Columns of the weight-gradient GEMM: K rounded up to whole panels (the
 * extra columns' products are computed and dropped): edge panels also pack
 * far more slowly than whole ones. */
static size_t wgrad_ld(size_t K) { return padded(K); }

/* Each task's int64 block is added into its worker's accumulator: int64
 * sums are exact, so the result does not depend on which worker ran what. */
static void backward_weights_task(void *arg, size_t task, int worker) {
  bwd_weights_job *j = arg;
  const nn_conv_geom *g = &j->g;
  size_t n0 = task * g->spt, n1 = I8T_MIN(n0 + g->spt, (size_t)g->s.batch);
  size_t r0 = n0 * g->out_rows, m = (n1 - n0) * g->out_rows, Co = (size_t)g->s.out_c;
  const uint8_t *b = j->x + n0 * g->in_rows * (size_t)g->s.in_c;
  size_t ld = g->K;
  if (!g->direct) {
    uint8_t *cols = nn_scratch(j->ws, worker, NN_SLOT_A);
    ld = wgrad_ld(g->K);
    nn_im2col(g, j->x, 1, j->zp, n0, n1, cols, ld);
    b = cols;
  }
  int64_t *tmp = nn_scratch(j->ws, worker, NN_SLOT_B);
  int64_t *acc = nn_scratch(j->ws, worker, NN_SLOT_C);
  i8t_matrix A = {j->dy + r0 * Co, 1, Co}, B = {b, ld, 1};
  i8t_status st = i8t_gemm_s16u8s64(j->ws->ctx, Co, ld, m, A, B, j->zp, tmp, ld);
  if (st) {
    nn_errors_set(&j->err, st);
    return;
  }
  for (size_t co = 0; co < Co; co++)
    for (size_t k = 0; k < g->K; k++) acc[co * g->K + k] += tmp[co * ld + k];
}

i8t_status i8t_conv2d_backward_weights_s16(i8t_workspace *ws, const i8t_conv_shape *s,
                                           const int16_t *dy, const uint8_t *x, uint8_t x_zp,
                                           int64_t *dw) {
  i8t_status st = i8t_conv_check(s);
  if (st) return st;
  if (!ws || !dy || !x || !dw)
    return i8t_error(I8T_ERR_INVALID_ARG, "conv backward weights: NULL argument");
  bwd_weights_job j = {.g = nn_conv_geom_make(s), .ws = ws, .dy = dy, .x = x, .zp = x_zp};
  nn_errors_init(&j.err);
  size_t wsize = (size_t)s->out_c * j.g.K, ld = wgrad_ld(j.g.K);
  if ((!j.g.direct && (st = nn_reserve(ws, NN_SLOT_A, j.g.spt * j.g.out_rows * ld))) ||
      (st = nn_reserve(ws, NN_SLOT_B, (size_t)s->out_c * ld * sizeof(int64_t))) ||
      (st = nn_reserve(ws, NN_SLOT_C, wsize * sizeof(int64_t))))
    return st;
  for (int w = 0; w < ws->threads; w++) memset(nn_scratch(ws, w, NN_SLOT_C), 0, wsize * 8);
  i8t_parallel_for(ws->ctx, j.g.tasks, backward_weights_task, &j);
  memset(dw, 0, wsize * sizeof *dw);
  for (int w = 0; w < ws->threads; w++) {
    const int64_t *acc = nn_scratch(ws, w, NN_SLOT_C);
    for (size_t i = 0; i < wsize; i++) dw[i] += acc[i];
  }
  return nn_errors_get(&j.err);
}

/* ------------------------------------------------------------------------ */
/* Fully connected (int8): one GEMM each, parallel inside the GEMM          */
/* ------------------------------------------------------------------------ */

static i8t_status fc_check(const void *ws, int n, int in, int out, const void *a, const void *b,
                           const void *c) {
  if (!ws || !a || !b || !c) return i8t_error(I8T_ERR_INVALID_ARG, "fc: NULL argument");
  if (n <= 0 || in <= 0 || out <= 0)
    return i8t_error(I8T_ERR_SHAPE, "fc: sizes must be positive (n %d, in %d, out %d)", n, in,
                     out);
  if (in > I8T_GEMM_MAX_K || out > I8T_GEMM_MAX_K)
    return i8t_error(I8T_ERR_SHAPE, "fc: in=%d or out=%d exceeds %d", in, out, I8T_GEMM_MAX_K);
  return I8T_OK;
}

i8t_status i8t_fc_forward_s8(i8t_workspace *ws, int n, int in, int out, const uint8_t *x,
                             uint8_t x_zp, const int8_t *w, int32_t *y) {
  i8t_status st = fc_check(ws, n, in, out, x, w, y);
  if (st) return st;
  i8t_matrix A = {x, (size_t)in, 1}, B = {w, 1, (size_t)in};
  return i8t_gemm_u8s8s32(ws->ctx, (size_t)n, (size_t)out, (size_t)in, A, x_zp, B, y,
                          (size_t)out);
}

i8t_status i8t_fc_backward_data_s8(i8t_workspace *ws, int n, int in, int out, const int8_t *dy,
                                   const int8_t *w, int32_t *dx) {
  i8t_status st = fc_check(ws, n, in, out, dy, w, dx);
  if (st) return st;
  i8t_matrix A = {dy, (size_t)out, 1}, B = {w, (size_t)in, 1};
  return i8t_gemm_s8s8s32(ws->ctx, (size_t)n, (size_t)in, (size_t)out, A, B, dx, (size_t)in);
}

i8t_status i8t_fc_backward_weights_s16(i8t_workspace *ws, int n, int in, int out,
                                       const int16_t *dy, const uint8_t *x, uint8_t x_zp,
                                       int64_t *dw) {
  i8t_status st = fc_check(ws, n, in, out, dy, x, dw);
  if (st) return st;
  i8t_matrix A = {dy, 1, (size_t)out}, B = {x, (size_t)in, 1};
  return i8t_gemm_s16u8s64(ws->ctx, (size_t)out, (size_t)in, (size_t)n, A, B, x_zp, dw,
                           (size_t)in);
}
