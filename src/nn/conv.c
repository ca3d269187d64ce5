/* Convolution and fully connected layers in int8: im2col of u8 NHWC
 * activations feeding the three integer GEMMs, per block of samples so that
 * the column buffer stays in cache; col2im of the exact int32 grad input. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conv_stem.h"
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

/* GEMM output widths are padded to whole panels of the microkernel that
 * will run (i8t_gemm_panel_width: its NR, 16 for N <= 16 where the ISA has a
 * narrow kernel) with zero weights in the extra columns, results dropped:
 * edge tiles of the microkernels go through a slow scalar copy-out, full
 * ones are stored directly. */
static size_t padded(i8t_gemm_kind kind, size_t n) {
  return I8T_ROUND_UP(n, i8t_gemm_panel_width(kind, n));
}

/* Outputs narrower than a panel (C = 8 with 16-wide panels, 16 with 32-wide
 * ones) waste half of it or more, and padding them costs a copy of the
 * output. Instead G = panel / C output rows go into one GEMM row: row r' of
 * A is rows G r' .. G r' + G - 1 of the column matrix side by side (the same
 * bytes, read with a G times longer row), and B is block-diagonal, group g's
 * C columns seeing only the g-th part. The GEMM then writes y itself, whole
 * panels. Returns G, or 1 where that does not apply (C not dividing the
 * panel, `rows` per sample not a multiple of G, a GEMM depth G * ld above
 * the int32-exact limit). */
static size_t row_groups(i8t_gemm_kind kind, size_t C, size_t rows, size_t ld) {
  size_t panel = i8t_gemm_panel_width(kind, C);
  if (C >= panel || panel % C != 0) return 1;
  size_t G = panel / C;
  return rows % G == 0 && G * ld <= I8T_GEMM_MAX_K ? G : 1;
}

/* The GEMM's B as [N x G*ld] bytes (the B^T of i8t_matrix {b, 1, G*ld}),
 * from w [C x K]: with G = 1, w padded with zero rows to N and zero columns
 * to ld; with G > 1 (N = G*C) block-diagonal, row g*C + c holding w's row c
 * at column g*ld. */
static void grouped_weights(const int8_t *w, size_t C, size_t K, size_t ld, size_t G, size_t N,
                            int8_t *b) {
  memset(b, 0, N * G * ld);
  for (size_t g = 0; g < G; g++)
    for (size_t c = 0; c < C; c++) memcpy(b + (g * C + c) * G * ld + g * ld, w + c * K, K);
}

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
  } else if (n >= 2) { /* not a byte loop: the compiler made that a memmove call */
    memcpy(d, s, 2);
    memcpy(d + n - 2, s + n - 2, 2);
  } else if (n == 1) {
    d[0] = s[0];
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

/* `count` interior im2col rows of one output line (every window inside the
 * image): k runs of kpix bytes each, source windows `step` bytes apart.
 * The common 3x3 sizes (1, 16, 32, 64 channels) get copies of constant
 * size, which the compiler turns into a few moves (the loop of copy_run cost
 * as much as the moves at 16-32 channels). */
#define INTERIOR_ROWS(K, KPIX)                                                   \
  for (size_t i = 0; i < count; i++, dst += rowbytes, src += step)              \
    for (size_t ky = 0; ky < (K); ky++) memcpy(dst + ky * (KPIX), src + ky * line, (KPIX))

static void interior_rows(unsigned char *dst, size_t rowbytes, const unsigned char *src,
                          size_t count, size_t step, size_t line, size_t k, size_t kpix) {
  if (k == 3 && kpix == 3) { /* a 1-channel stem */
    INTERIOR_ROWS(3, 3);
  } else if (k == 3 && kpix == 48) {
    INTERIOR_ROWS(3, 48);
  } else if (k == 3 && kpix == 96) {
    INTERIOR_ROWS(3, 96);
  } else if (k == 3 && kpix == 192) {
    INTERIOR_ROWS(3, 192);
  } else {
    for (size_t i = 0; i < count; i++, dst += rowbytes, src += step)
      for (size_t ky = 0; ky < k; ky++) copy_run(dst + ky * kpix, src + ky * line, kpix);
  }
}

void nn_im2col(const nn_conv_geom *g, const void *x, size_t esize, unsigned char pad_byte,
               size_t n0, size_t n1, void *cols, size_t ld) {
  /* Columns past K (ld > K) are left as they are: their products are dropped. */
  const size_t H = (size_t)g->s.in_h, W = (size_t)g->s.in_w, k = (size_t)g->s.kernel;
  const long P = g->s.pad, S = g->s.stride;
  const size_t pix = (size_t)g->s.in_c * esize, rowbytes = ld * esize, kpix = k * pix;
  /* Output columns [ox_lo, ox_hi) have their whole window inside a row. */
  size_t ox_lo = (size_t)((P + S - 1) / S), ox_hi = 0;
  if ((long)W - (long)k + P >= 0) ox_hi = I8T_MIN(g->ow, (size_t)(((long)W - (long)k + P) / S) + 1);
  if (ox_hi < ox_lo) ox_hi = ox_lo = 0;
  const unsigned char *src = x;
  unsigned char *dst = cols;
  for (size_t n = n0; n < n1; n++) {
    for (size_t oy = 0; oy < g->oh; oy++) {
      long iy0 = (long)oy * S - P;
      int rows_inside = iy0 >= 0 && iy0 + (long)k <= (long)H;
      for (size_t ox = 0; ox < g->ow; ox++, dst += rowbytes) {
        if (rows_inside && ox == ox_lo && ox_hi > ox_lo) {
          const unsigned char *s0 =
              src + ((n * H + (size_t)iy0) * W + (size_t)((long)ox * S - P)) * pix;
          interior_rows(dst, rowbytes, s0, ox_hi - ox_lo, (size_t)S * pix, W * pix, k, kpix);
          dst += (ox_hi - ox_lo - 1) * rowbytes;
          ox = ox_hi - 1;
          continue;
        }
        border_row(g, src, n, iy0, (long)ox * S - P, pix, pad_byte, dst);
      }
    }
  }
}

/* col2im for the fp32 path: dx (samples n0..n1, zeroed by the caller) +=
 * every column value routed back to its input pixel. The taps of one window
 * row that fall inside the image are neighbouring pixels in dx and in the
 * column row alike: one run of adds each (restrict: dx and the columns never
 * overlap, so the compiler vectorises it). Each element's sum keeps the
 * order of the taps. (The int8 path's int32 columns go through the kernel
 * table's col2im_s32, which gathers row by row: integer sums in any order.) */
void nn_col2im_f32(const nn_conv_geom *g, const float *cols, size_t ld, size_t n0, size_t n1,
                   float *dx) {
  const long H = g->s.in_h, W = g->s.in_w, k = g->s.kernel;
  const size_t C = (size_t)g->s.in_c;
  const long P = g->s.pad, S = g->s.stride;
  for (size_t n = n0; n < n1; n++) {
    for (size_t oy = 0; oy < g->oh; oy++) {
      for (size_t ox = 0; ox < g->ow; ox++, cols += ld) {
        long ix0 = (long)ox * S - P, lo = ix0 < 0 ? -ix0 : 0;
        long hi = ix0 + k > W ? W - ix0 : k;
        if (hi <= lo) continue;
        size_t run = (size_t)(hi - lo) * C;
        for (long ky = 0; ky < k; ky++) {
          long iy = (long)oy * S - P + ky;
          if (iy < 0 || iy >= H) continue;
          float *restrict d = dx + ((n * (size_t)H + (size_t)iy) * (size_t)W +
                                    (size_t)(ix0 + lo)) * C;
          const float *restrict c = cols + (size_t)(ky * k + lo) * C;
          for (size_t i = 0; i < run; i++) d[i] += c[i];
        }
      }
    }
  }
}

/* ------------------------------------------------------------------------ */
/* Blocks of samples, per task or batched                                   */
/* ------------------------------------------------------------------------ */

/* Every pass handles blocks of samples: columns (im2col), one GEMM, then a
 * per-sample finish. Usually each block is a pool task (its GEMM runs on that
 * worker, the column block stays in its cache). A block of few output rows
 * (small images) makes a poor GEMM, though: it re-packs all the weights and,
 * in the int8 GEMMs, re-sums their columns, for little work, and in the
 * weight gradient each block adds a whole int64 partial gradient. Below these
 * many rows per block a pass runs "batched": chunks of many samples one after
 * the other, each chunk's columns built by parallel tasks, then one GEMM over
 * the chunk that is parallel over its output tiles (in the weight gradient
 * each output tile runs the chunk's whole reduction). The same block code
 * serves both: a parallel loop called from inside a task runs inline. */
#define NN_BATCHED_ROWS 384
/* The weight gradient runs batched when a block's int64 partial gradient
 * (Co x K x 8 bytes, added into its worker's sum) outweighs its columns
 * (rows x K bytes): rows < 8 Co. A small gradient (16 channels) stays per
 * task, in cache, and splits over the threads far better than its few
 * output tiles would. */
#define NN_WGRAD_BYTES_PER_CHANNEL 8
/* Chunk buffers (columns, padded outputs) of a batched pass, in bytes. */
#define NN_CHUNK_BYTES ((size_t)8 << 20)

static size_t test_chunk_bytes; /* test overrides, see nn_conv.h */
static int test_layout;

void i8t_conv_layout_for_tests(int layout, size_t chunk_bytes) {
  test_layout = layout;
  test_chunk_bytes = chunk_bytes;
}

/* Whether a pass whose blocks have `rows` output rows runs batched. */
static int run_batched(size_t rows, size_t threshold) {
  return test_layout ? test_layout == 1 : rows < threshold;
}

/* Samples per chunk when a chunk needs `row_bytes` of buffers per output row. */
static size_t chunk_samples(const nn_conv_geom *g, size_t row_bytes) {
  size_t per_sample = I8T_MAX((size_t)1, g->out_rows * row_bytes);
  size_t n = (test_chunk_bytes ? test_chunk_bytes : NN_CHUNK_BYTES) / per_sample;
  return I8T_MAX((size_t)1, I8T_MIN(n, (size_t)g->s.batch));
}

/* Regions of the workspace's shared buffer (read-only or split between tasks
 * during a pass): ptrs[i] gets sizes[i] bytes (NULL for 0), 64-byte aligned. */
static i8t_status shared_regions(i8t_workspace *ws, size_t n, const size_t *sizes, void **ptrs) {
  size_t total = 0;
  for (size_t i = 0; i < n; i++) total += I8T_ROUND_UP(sizes[i], 64);
  char *base = nn_shared_bytes(ws, I8T_MAX(total, (size_t)64));
  if (!base) return I8T_ERR_NO_MEMORY;
  for (size_t i = 0; i < n; i++) {
    ptrs[i] = sizes[i] ? base : NULL;
    base += I8T_ROUND_UP(sizes[i], 64);
  }
  return I8T_OK;
}

typedef struct im2col_job {
  const nn_conv_geom *g;
  const void *x;
  unsigned char pad;
  size_t n0, ld;
  unsigned char *cols;
} im2col_job;

static void im2col_task(void *arg, size_t task, int worker) {
  const im2col_job *j = arg;
  (void)worker;
  nn_im2col(j->g, j->x, 1, j->pad, j->n0 + task, j->n0 + task + 1,
            j->cols + task * j->g->out_rows * j->ld, j->ld);
}

/* Byte columns of samples [n0, n1), one task per sample. */
static void im2col_samples(i8t_context *ctx, const nn_conv_geom *g, const void *x,
                           unsigned char pad, size_t n0, size_t n1, void *cols, size_t ld) {
  im2col_job j = {g, x, pad, n0, ld, cols};
  i8t_parallel_for(ctx, n1 - n0, im2col_task, &j);
}

/* ------------------------------------------------------------------------ */
/* int8 forward                                                             */
/* ------------------------------------------------------------------------ */

typedef struct fwd_job {
  nn_conv_geom g;
  i8t_workspace *ws;
  const uint8_t *x;
  uint8_t zp;
  const int8_t *w; /* [N x G*ld]: grouped_weights */
  size_t ld, G, N;  /* column matrix row bytes, row groups, GEMM width */
  int indirect;     /* implicit GEMM: row pointers into x (see gemm_indirect_block) */
  int32_t *y; /* NULL: each block's int32 output goes to scratch (gemm_fused_fits) */
  const float *col_scale;
  size_t ncs;
  float *smin, *smax;
  /* [2 x batch] with one column scale, else NULL: room for the samples'
   * int32 minimums, then maximums, where forward_block has the GEMM take
   * them as it stores */
  int32_t *ext;
  nn_fused_u8 out; /* i8t_conv2d_forward_u8's u8 output */
  nn_errors err;
} fwd_job;

/* Real-valued min and max of one sample's int32 output block. */
static void sample_range(const int32_t *y, size_t rows, size_t C, const float *col_scale,
                         size_t ncs, float *lo, float *hi) {
  if (ncs == 1) {
    int32_t mn, mx;
    i8t_kernels()->minmax_s32.run(rows * C, y, &mn, &mx); /* rows * C > 0 */
    nn_scaled_range(mn, mx, col_scale[0], lo, hi);
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

/* The finish of one block: its padded GEMM output `out` (rows N apart,
 * sample n0 first; NULL when the GEMM wrote y) to y (the block's rows C
 * apart: in the output tensor, or scratch), the per-sample ranges and, for
 * i8t_conv2d_forward_u8, the u8 output. */
typedef struct fwd_finish {
  fwd_job *j;
  size_t n0;
  const int32_t *out;
  int32_t *y;
  int ranged; /* the GEMM took the ranges */
} fwd_finish;

static void forward_finish_task(void *arg, size_t task, int worker) {
  const fwd_finish *f = arg;
  fwd_job *j = f->j;
  (void)worker;
  const nn_conv_geom *g = &j->g;
  size_t n = f->n0 + task, C = (size_t)g->s.out_c, rows = g->out_rows;
  int32_t *y = f->y + task * rows * C;
  if (f->out) copy_columns_s32(f->out + task * rows * j->N, rows, j->N, C, y);
  if (j->smin && !f->ranged)
    sample_range(y, rows, C, j->col_scale, j->ncs, &j->smin[n], &j->smax[n]);
  if (j->out.q) nn_errors_set(&j->err, nn_fused_u8_sample(&j->out, y, rows, C, n));
}

/* ------------------------------------------------------------------------ */
/* Implicit GEMM: convolutions without a column matrix                      */
/* ------------------------------------------------------------------------ */

/* In NHWC a window row of the input (kernel pixels of C channels) is one
 * run of kernel * C bytes, and the next window row is an image row further
 * on. So an output pixel's im2col row is `kernel` runs at one pointer, an
 * image row apart: the indirect GEMM (kernel_table.h) reads them in place,
 * given one pointer per output pixel. With padding, each sample is first
 * copied into a padded image ((H + 2P) x (W + 2P) pixels: 1/k^2 of the
 * column matrix's bytes), so that every window is inside it; an int8 source
 * (the grad input's dy) is copied as dy + 128 (u8, zero point 128) at any
 * padding. Where the table's u8s8 kernel cannot read A in place (AVX2 packs
 * it to int16, generic, NEON), for taps of partial K groups (kernel * C not
 * a multiple of 4), row-grouped outputs (G > 1) and 1-channel inputs, conv
 * keeps im2col. */
static int indirect_ok(const nn_conv_geom *g, size_t G, size_t N) {
  return !g->direct && g->s.in_c > 1 && G == 1 &&
         i8t_gemm_u8s8s32_indirect_ok(N, (size_t)g->s.kernel * (size_t)g->s.in_c);
}

/* An implicit GEMM's A: samples of the input of geometry g, bytes of x (s8:
 * int8 values, read as x + 128 through the copy), padding pad_byte (also
 * the GEMM's zero point). */
typedef struct indirect_src {
  const nn_conv_geom *g;
  const void *x;
  uint8_t pad_byte;
  int s8;
} indirect_src;

static size_t padded_image_bytes(const indirect_src *src) {
  const i8t_conv_shape *s = &src->g->s;
  if (s->pad == 0 && !src->s8) return 0; /* rows point into x itself */
  size_t hp = (size_t)(s->in_h + 2 * s->pad), wp = (size_t)(s->in_w + 2 * s->pad);
  return I8T_ROUND_UP(hp * wp * (size_t)s->in_c, 64);
}

/* Buffer bytes per output row that gemm_indirect_block needs (row
 * pointers, padded images and the alignment of the images' start), in the
 * units the chunk and scratch sizes count (bytes per output row). */
static size_t indirect_row_bytes(const indirect_src *src) {
  const nn_conv_geom *g = src->g;
  size_t per_sample = g->out_rows * sizeof(void *) + padded_image_bytes(src) + 64;
  return (per_sample + g->out_rows - 1) / g->out_rows;
}

/* d[0..n) = s + 128 for int8 s (the sign bit flipped), as u8. */
static void copy_s8_as_u8(uint8_t *restrict d, const uint8_t *restrict s, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = s[i] ^ 0x80;
}

/* dst = sample image src (h x w pixels of pixb bytes; s8: + 128) framed by
 * p pixels of pad_byte on every side. */
static void pad_image(const uint8_t *src, size_t h, size_t w, size_t pixb, size_t p,
                      uint8_t pad_byte, int s8, uint8_t *dst) {
  size_t wpb = (w + 2 * p) * pixb, side = p * pixb, line = w * pixb;
  memset(dst, pad_byte, p * wpb);
  dst += p * wpb;
  for (size_t y = 0; y < h; y++, dst += wpb, src += line) {
    memset(dst, pad_byte, side);
    if (s8) {
      copy_s8_as_u8(dst + side, src, line);
    } else {
      memcpy(dst + side, src, line);
    }
    memset(dst + side + line, pad_byte, side);
  }
  memset(dst, pad_byte, p * wpb);
}

typedef struct indirect_rows_job {
  const indirect_src *src;
  size_t n0;
  const void **rows; /* out_rows per sample */
  uint8_t *images;   /* padded_image_bytes per sample */
} indirect_rows_job;

/* One sample: its padded image (if any), then a pointer per output pixel
 * to its window's first byte (the image rows are `pitch` bytes apart). */
static void indirect_rows_task(void *arg, size_t task, int worker) {
  const indirect_rows_job *r = arg;
  const nn_conv_geom *g = r->src->g;
  size_t C = (size_t)g->s.in_c, S = (size_t)g->s.stride, P = (size_t)g->s.pad;
  size_t pitch = ((size_t)g->s.in_w + 2 * P) * C, image_bytes = padded_image_bytes(r->src);
  const uint8_t *img = (const uint8_t *)r->src->x + (r->n0 + task) * g->in_rows * C;
  (void)worker;
  if (image_bytes) {
    uint8_t *dst = r->images + task * image_bytes;
    pad_image(img, (size_t)g->s.in_h, (size_t)g->s.in_w, C, P, r->src->pad_byte, r->src->s8,
              dst);
    img = dst;
  }
  const void **rows = r->rows + task * g->out_rows;
  for (size_t oy = 0; oy < g->oh; oy++) {
    const uint8_t *line = img + oy * S * pitch;
    for (size_t ox = 0; ox < g->ow; ox++) *rows++ = line + ox * S * C;
  }
}

/* The GEMM of samples [n0, n1) with weights w [N x K] (rows K bytes apart)
 * into dst (rows N apart), from row pointers and padded images in buf
 * (indirect_row_bytes per output row). */
static i8t_status gemm_indirect_block(i8t_context *ctx, const indirect_src *src, size_t n0,
                                      size_t n1, void *buf, const int8_t *w, size_t N,
                                      int32_t *dst, const i8t_gemm_row_ranges *ranges) {
  const nn_conv_geom *g = src->g;
  size_t m = (n1 - n0) * g->out_rows, C = (size_t)g->s.in_c, k = (size_t)g->s.kernel;
  indirect_rows_job r = {src, n0, buf, (uint8_t *)buf + I8T_ROUND_UP(m * sizeof(void *), 64)};
  i8t_parallel_for(ctx, n1 - n0, indirect_rows_task, &r);
  i8t_gemm_indirect_a A = {.rows = r.rows, .taps = k, .tap_bytes = k * C,
                           .tap_pitch = ((size_t)g->s.in_w + 2 * (size_t)g->s.pad) * C};
  i8t_matrix B = {w, 1, g->K};
  return i8t_gemm_u8s8s32_indirect_ranged(ctx, m, N, &A, src->pad_byte, B, dst, N, ranges);
}

/* The shallowest GEMM whose per-sample ranges its microkernels take (see
 * forward_block). */
#define NN_RANGED_MIN_K 32

/* Samples [n0, n1): cols holds their columns (or, indirect, their row
 * pointers and padded images), out their padded output (both unused when
 * not needed), y their int32 output (rows C apart, sample n0 first). */
static i8t_status forward_block(fwd_job *j, size_t n0, size_t n1, uint8_t *cols, int32_t *out,
                                int32_t *y) {
  const nn_conv_geom *g = &j->g;
  i8t_context *ctx = j->ws->ctx;
  size_t m = (n1 - n0) * g->out_rows, C = (size_t)g->s.out_c, Kg = j->G * j->ld;
  int padded_out = j->G == 1 && j->N != C;
  int32_t *dst = padded_out ? out : y;
  /* The samples' int32 extremes from the GEMM as it stores them (no pass
   * over y; a GEMM row holds G output pixels of one sample), where no
   * padded column would join them, the GEMM is deep enough and its
   * microkernel folds them (run_ex: the x86 kernels; elsewhere the driver
   * would read every tile back row by row). The fold costs two vector
   * operations per stored vector, which at K = 16 (the 1x1 shortcut of 16
   * channels) is half the tile's own work: that layer ran 4-13 % slower
   * than with the pass over y, resnet8's K = 32 to 576 layers 3-9 % faster. */
  const size_t batch = (size_t)g->s.batch;
  const int ranged = j->ext && !padded_out && Kg >= NN_RANGED_MIN_K &&
                     i8t_gemm_ukernel_for(i8t_kernels(), I8T_GEMM_U8S8S32, j->N)->run_ex;
  const i8t_gemm_row_ranges rr = {g->out_rows / j->G, j->ext ? j->ext + n0 : NULL,
                                  j->ext ? j->ext + batch + n0 : NULL};
  i8t_status st;
  if (j->indirect) {
    indirect_src src = {g, j->x, j->zp, 0};
    st = gemm_indirect_block(ctx, &src, n0, n1, cols, j->w, j->N, dst, ranged ? &rr : NULL);
  } else {
    const uint8_t *a = j->x + n0 * g->in_rows * (size_t)g->s.in_c;
    if (!g->direct) {
      im2col_samples(ctx, g, j->x, j->zp, n0, n1, cols, j->ld);
      a = cols;
    }
    i8t_matrix A = {a, Kg, 1}, B = {j->w, 1, Kg};
    st = i8t_gemm_u8s8s32_ranged(ctx, m / j->G, j->N, Kg, A, j->zp, B, dst, j->N,
                                 ranged ? &rr : NULL);
  }
  if (st) return st;
  for (size_t n = n0; ranged && n < n1; n++)
    nn_scaled_range(j->ext[n], j->ext[batch + n], j->col_scale[0], &j->smin[n], &j->smax[n]);
  if (!padded_out && (!j->smin || ranged) && !j->out.q) return I8T_OK;
  fwd_finish f = {j, n0, padded_out ? out : NULL, y, ranged};
  i8t_parallel_for(ctx, n1 - n0, forward_finish_task, &f);
  return I8T_OK;
}

/* Each task's block into y, or without y into its worker's slot B. */
static void forward_task(void *arg, size_t task, int worker) {
  fwd_job *j = arg;
  const nn_conv_geom *g = &j->g;
  size_t n0 = task * g->spt, n1 = I8T_MIN(n0 + g->spt, (size_t)g->s.batch);
  int32_t *y = j->y ? j->y + n0 * g->out_rows * (size_t)g->s.out_c
                    : nn_scratch(j->ws, worker, NN_SLOT_B);
  nn_errors_set(&j->err, forward_block(j, n0, n1, nn_scratch(j->ws, worker, NN_SLOT_A),
                                       nn_scratch(j->ws, worker, NN_SLOT_C), y));
}

/* GEMM-path shapes cheap enough to compute twice, a ranges-only pass and
 * then the u8 output from each block recomputed in cache (see
 * i8t_conv2d_forward_u8_fits): the recompute beats the int32 tensor's
 * round trip through memory while the GEMM is shallow. Measured (AVX-512
 * VNNI, batch 128, 1 and 2 threads), fused / unfused speed: resnet8's 1x1
 * shortcuts 1.08-1.26x at K = 16 (28x28x16 -> 32) and 0.98-1.06x at K = 32
 * (14x14x32 -> 64; the bench's conv/fwd case, three builds side by side:
 * 0.90x at one thread, so K = 32 is left out); 0.96-0.98x for 28x28x32 -> 32,
 * 0.79-0.81x at K = 48, 0.77-0.86x at K = 64, 0.84-0.89x at K = 72 and
 * 0.62-0.73x for the 3x3 convolutions of K = 144 and 288. 1-channel inputs
 * are left to the stem's rule (their im2col of 1-byte pixels, not an
 * in-place GEMM, would be recomputed). Shape only: the same rule at any
 * thread count. */
#ifndef NN_FUSED_MAX_K /* a build may set it, to measure other bounds */
#define NN_FUSED_MAX_K 16
#endif
static int gemm_fused_fits(const i8t_conv_shape *s) {
  /* Only where the u8s8 kernel reads A as u8 (AVX-512 VNNI): AVX2 packs A
   * to int16 and its K = 16 shortcut ran 2x slower fused (0.80 -> 1.59 ms);
   * the portable and NEON paths are unmeasured. */
  return s->in_c > 1 && i8t_conv_k(s) <= NN_FUSED_MAX_K &&
         i8t_kernels()->gemm_u8s8s32.a_elem == I8T_PACK_U8;
}

/* The forward of j (arguments checked; outputs y or not, ranges or not, q
 * or not, as set in j): the GEMM's layout, its buffers, then the blocks. */
static i8t_status forward(fwd_job *j) {
  const nn_conv_geom *g = &j->g;
  const i8t_conv_shape *s = &g->s;
  i8t_workspace *ws = j->ws;
  i8t_status st;
  nn_errors_init(&j->err);
  /* Column rows of whole 4-byte groups: the GEMM reads them in place. The
   * extra columns meet zero weights; their bytes are never used. */
  size_t Co = (size_t)s->out_c, K = g->K;
  j->ld = g->direct ? K : I8T_ROUND_UP(K, 4);
  j->G = row_groups(I8T_GEMM_U8S8S32, Co, g->out_rows, j->ld);
  j->N = j->G > 1 ? j->G * Co : padded(I8T_GEMM_U8S8S32, Co);
  j->indirect = indirect_ok(g, j->G, j->N);
  indirect_src src = {g, j->x, j->zp, 0};
  size_t col_bytes = g->direct ? 0 : j->indirect ? indirect_row_bytes(&src) : j->ld;
  size_t out_bytes = j->G == 1 && j->N != Co ? j->N * sizeof(int32_t) : 0;
  size_t y_bytes = j->y ? 0 : Co * sizeof(int32_t); /* the blocks' int32 output in scratch */
  size_t rep = nn_fused_rep_count(&j->out, Co);
  int batched = run_batched(g->spt * g->out_rows, NN_BATCHED_ROWS);
  size_t spc = batched ? chunk_samples(g, col_bytes + out_bytes + y_bytes) : 0;
  size_t rows = spc * g->out_rows;
  void *buf[5];
  int regroup = j->N != Co || j->ld != K;
  size_t sizes[5] = {regroup ? j->N * j->G * j->ld : 0, rows * col_bytes, rows * out_bytes,
                     rows * y_bytes, rep * sizeof(float)};
  if ((st = shared_regions(ws, 5, sizes, buf))) return st;
  if (regroup) {
    grouped_weights(j->w, Co, K, j->ld, j->G, j->N, buf[0]);
    j->w = buf[0];
  }
  if (rep) {
    nn_replicate_scales(j->col_scale, j->ncs, Co, rep, buf[4]);
    j->out.cs_rep = buf[4];
  }
  if (batched) {
    for (size_t n0 = 0; n0 < (size_t)s->batch && !st; n0 += spc)
      st = forward_block(j, n0, I8T_MIN(n0 + spc, (size_t)s->batch), buf[1], buf[2],
                         j->y ? j->y + n0 * g->out_rows * Co : buf[3]);
    return st ? st : nn_errors_get(&j->err);
  }
  rows = g->spt * g->out_rows;
  if ((col_bytes && (st = nn_reserve(ws, NN_SLOT_A, rows * col_bytes))) ||
      (y_bytes && (st = nn_reserve(ws, NN_SLOT_B, rows * y_bytes))) ||
      (out_bytes && (st = nn_reserve(ws, NN_SLOT_C, rows * out_bytes))))
    return st;
  i8t_parallel_for(ws->ctx, g->tasks, forward_task, j);
  return nn_errors_get(&j->err);
}

i8t_status i8t_conv2d_forward_s8(i8t_workspace *ws, const i8t_conv_shape *s, const uint8_t *x,
                                 uint8_t x_zp, const int8_t *w, int32_t *y,
                                 const float *col_scale, size_t col_scale_count,
                                 float *sample_min, float *sample_max) {
  i8t_status st = i8t_conv_check(s);
  if (st) return st;
  if (!ws || !x || !w) return i8t_error(I8T_ERR_INVALID_ARG, "conv forward: NULL argument");
  if ((sample_min || sample_max) &&
      (!sample_min || !sample_max || !col_scale ||
       (col_scale_count != 1 && col_scale_count != (size_t)s->out_c)))
    return i8t_error(I8T_ERR_INVALID_ARG,
                     "conv forward: sample ranges need both outputs and 1 or out_c=%d scales",
                     s->out_c);
  int stem = nn_stem_forward_fits(s, sample_min ? col_scale : NULL, col_scale_count);
  if (!y && !(sample_min && (stem || gemm_fused_fits(s))))
    return i8t_error(I8T_ERR_INVALID_ARG, "conv forward: NULL y (allowed for the ranges of a "
                                          "shape i8t_conv2d_forward_u8_fits accepts)");
  if (stem)
    return nn_stem_forward(ws, s, x, x_zp, w, y, col_scale, col_scale_count, sample_min,
                           sample_max);
  fwd_job j = {.g = nn_conv_geom_make(s), .ws = ws, .x = x, .zp = x_zp, .w = w, .y = y,
               .col_scale = col_scale, .ncs = col_scale_count, .smin = sample_min,
               .smax = sample_max};
  if (sample_min && col_scale_count == 1 &&
      !(j.ext = malloc(2 * (size_t)s->batch * sizeof *j.ext)))
    return i8t_error(I8T_ERR_NO_MEMORY, "conv forward: sample ranges");
  st = forward(&j);
  free(j.ext);
  return st;
}

int i8t_conv2d_forward_u8_fits(const i8t_conv_shape *s, const float *col_scale,
                               size_t col_scale_count) {
  return s && col_scale && i8t_conv_check(s) == I8T_OK &&
         (col_scale_count == 1 || col_scale_count == (size_t)s->out_c) &&
         (nn_stem_forward_fits(s, col_scale, col_scale_count) || gemm_fused_fits(s));
}

i8t_status i8t_conv2d_forward_u8(i8t_workspace *ws, const i8t_conv_shape *s, const uint8_t *x,
                                 uint8_t x_zp, const int8_t *w, const float *col_scale,
                                 size_t col_scale_count, i8t_qparams out, i8t_rounding r,
                                 uint8_t *q) {
  i8t_status st = i8t_conv_check(s);
  if (st) return st;
  if (!ws || !x || !w || !q || !col_scale)
    return i8t_error(I8T_ERR_INVALID_ARG, "conv forward u8: NULL argument");
  if (!i8t_conv2d_forward_u8_fits(s, col_scale, col_scale_count))
    return i8t_error(I8T_ERR_UNSUPPORTED,
                     "conv forward u8: not for this shape, these scales or kernel table "
                     "(see i8t_conv2d_forward_u8_fits)");
  if (nn_stem_forward_fits(s, col_scale, col_scale_count))
    return nn_stem_forward_u8(ws, s, x, x_zp, w, col_scale, col_scale_count, out, r, q);
  fwd_job j = {.g = nn_conv_geom_make(s), .ws = ws, .x = x, .zp = x_zp, .w = w,
               .col_scale = col_scale, .ncs = col_scale_count,
               .out = {.q = q, .qp = out, .r = r}};
  return forward(&j);
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
  size_t G, N; /* transposed: row groups and GEMM width (see row_groups) */
  i8t_workspace *ws;
  const int8_t *dy, *w, *wt;
  const uint8_t *dy_u8; /* transposed, when set: dy + 128 (see dy_as_u8) */
  int indirect;         /* transposed: implicit GEMM over dy + 128 (gemm_indirect_block) */
  int32_t *dx;
  /* i8t_conv2d_backward_data_absmax_s8: the gradient sum dx completes (its
   * sources, dx last) and each sample's max |g|, taken after its block. */
  i8t_grad_src sum_src[I8T_GRAD_SPAN_MAX];
  int sum_nsrc;
  const uint8_t *sum_mask;
  float *sum_out;
  float *sample_abs;
  nn_errors err;
} bwd_data_job;

/* The transposed convolution's weights wt [rows x k*k*Co], rows `ldw` bytes
 * apart: row ci holds, for each tap of the flipped kernel and each co,
 * w[co][tap][ci]; rows Ci..rows are zero. Each task writes FLIP_ROWS rows of
 * wt, transposing Co x FLIP_ROWS tiles of every tap (the scalar scatter of
 * one element at a time, a wt row apart, cost as much as the GEMM at 7x7x512). */
#define FLIP_ROWS 32
#define FLIP_COLS 64
typedef struct flip_job {
  const i8t_conv_shape *s;
  const int8_t *w;
  int8_t *wt;
  size_t rows, ldw;
} flip_job;

/* dst rows j = 0..7 (dstride apart) = column j of the 8 x 8 bytes at src
 * (rows sstride apart), in 64-bit words: three rounds of swapping 1-, 2- and
 * 4-byte halves between word pairs leave column j in word j (little-endian
 * byte order; other machines take the scalar loop). */
static int transpose8x8(const int8_t *src, size_t sstride, int8_t *dst, size_t dstride) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  uint64_t r[8];
  for (int i = 0; i < 8; i++) memcpy(&r[i], src + (size_t)i * sstride, 8);
  /* Written out so that the words stay in registers. */
#define SWAP_HALVES(A, B, SHIFT, LO)                                 \
  do {                                                              \
    uint64_t a_ = r[A], b_ = r[B];                                  \
    r[A] = (a_ & (LO)) | ((b_ << (SHIFT)) & ~(LO));                 \
    r[B] = ((a_ >> (SHIFT)) & (LO)) | (b_ & ~(LO));                 \
  } while (0)
  const uint64_t m1 = 0x00FF00FF00FF00FFull, m2 = 0x0000FFFF0000FFFFull;
  const uint64_t m4 = 0x00000000FFFFFFFFull;
  SWAP_HALVES(0, 1, 8, m1);
  SWAP_HALVES(2, 3, 8, m1);
  SWAP_HALVES(4, 5, 8, m1);
  SWAP_HALVES(6, 7, 8, m1);
  SWAP_HALVES(0, 2, 16, m2);
  SWAP_HALVES(1, 3, 16, m2);
  SWAP_HALVES(4, 6, 16, m2);
  SWAP_HALVES(5, 7, 16, m2);
  SWAP_HALVES(0, 4, 32, m4);
  SWAP_HALVES(1, 5, 32, m4);
  SWAP_HALVES(2, 6, 32, m4);
  SWAP_HALVES(3, 7, 32, m4);
#undef SWAP_HALVES
  for (int i = 0; i < 8; i++) memcpy(dst + (size_t)i * dstride, &r[i], 8);
  return 1;
#else
  (void)src, (void)sstride, (void)dst, (void)dstride;
  return 0;
#endif
}

static void flip_task(void *arg, size_t task, int worker) {
  const flip_job *j = arg;
  size_t k2 = (size_t)j->s->kernel * (size_t)j->s->kernel, Ci = (size_t)j->s->in_c;
  size_t Co = (size_t)j->s->out_c, K = k2 * Ci, Kt = k2 * Co, ldw = j->ldw;
  size_t c0 = task * FLIP_ROWS, c1 = I8T_MIN(c0 + FLIP_ROWS, j->rows), cw = I8T_MIN(c1, Ci);
  (void)worker;
  for (size_t ci = I8T_MAX(c0, Ci); ci < c1; ci++) memset(j->wt + ci * ldw, 0, Kt);
  for (size_t tap = 0; tap < k2; tap++) {
    const int8_t *src = j->w + tap * Ci;
    int8_t *dst = j->wt + (k2 - 1 - tap) * Co;
    for (size_t o0 = 0; o0 < Co; o0 += FLIP_COLS) {
      size_t o1 = I8T_MIN(o0 + FLIP_COLS, Co), ci = c0;
      for (; ci + 8 <= cw; ci += 8) { /* 8 x 8 blocks, then the columns left */
        size_t co = o0;
        while (co + 8 <= o1 && transpose8x8(src + co * K + ci, K, dst + ci * ldw + co, ldw))
          co += 8;
        for (size_t c = ci; c < ci + 8; c++)
          for (size_t o = co; o < o1; o++) dst[c * ldw + o] = src[o * K + c];
      }
      for (; ci < cw; ci++)
        for (size_t co = o0; co < o1; co++) dst[ci * ldw + co] = src[co * K + ci];
    }
  }
}

/* The GEMM's B for the transposed convolution as [N x G*Kt] bytes, laid
 * out as grouped_weights does (G = 1: Cip = N rows; else block-diagonal). */
static void flip_weights(i8t_context *ctx, const i8t_conv_shape *s, const int8_t *w, size_t G,
                         size_t N, int8_t *wt) {
  size_t Ci = (size_t)s->in_c, Kt = (size_t)s->kernel * (size_t)s->kernel * (size_t)s->out_c;
  size_t rows = G > 1 ? Ci : N;
  if (G > 1) memset(wt, 0, N * G * Kt);
  flip_job j = {s, w, wt, rows, G * Kt};
  i8t_parallel_for(ctx, (rows + FLIP_ROWS - 1) / FLIP_ROWS, flip_task, &j);
  for (size_t g = 1; g < G; g++)
    for (size_t ci = 0; ci < Ci; ci++) memcpy(wt + (g * Ci + ci) * G * Kt + g * Kt, wt + ci * G * Kt, Kt);
}

/* Whether the transposed path feeds the GEMM u8 columns of dy + 128 (zero
 * point 128, exactly the same products): the u8s8 kernel reads u8 columns in
 * place, while s8 ones are packed with a +128 shift first (the A packing was
 * a quarter of this pass at 16 channels). Only where the u8s8 kernel reads A
 * unpacked; elsewhere both kinds are packed and the shifted copy would be an
 * extra pass. */
static int dy_as_u8(size_t N) {
  const i8t_kernel_table *t = i8t_kernels();
  const i8t_gemm_ukernel *uk = i8t_gemm_ukernel_for(t, I8T_GEMM_U8S8S32, N);
  /* N was padded to the s8s8 kernel's width: the u8s8 one must tile it too. */
  return uk->run_ex && uk->a_elem == I8T_PACK_U8 &&
         uk->nr == i8t_gemm_ukernel_for(t, I8T_GEMM_S8S8S32, N)->nr;
}

typedef struct shift_job {
  const int8_t *src;
  uint8_t *dst;
  size_t count, per_task;
} shift_job;

static void shift_task(void *arg, size_t task, int worker) {
  const shift_job *j = arg;
  size_t i0 = task * j->per_task, i1 = I8T_MIN(i0 + j->per_task, j->count);
  (void)worker;
  size_t i = i0;
  for (; i + 8 <= i1; i += 8) { /* 8 bytes a word: the byte loop stayed scalar */
    uint64_t v;
    memcpy(&v, j->src + i, 8);
    v ^= 0x8080808080808080ull; /* v + 128 in each byte */
    memcpy(j->dst + i, &v, 8);
  }
  for (; i < i1; i++) j->dst[i] = (uint8_t)(j->src[i] ^ 0x80);
}

/* dst = src + 128 as u8, in parallel blocks. */
static void shift_s8_to_u8(i8t_context *ctx, const int8_t *src, size_t count, uint8_t *dst) {
  shift_job j = {src, dst, count, (size_t)1 << 16};
  i8t_parallel_for(ctx, (count + j.per_task - 1) / j.per_task, shift_task, &j);
}

/* The finish of one block of the strided (col2im) path, or the padded
 * output of the transposed one: `out` holds samples [n0, ...). */
typedef struct bwd_data_finish {
  bwd_data_job *j;
  size_t n0;
  const int32_t *out;
} bwd_data_finish;

static void backward_data_finish_task(void *arg, size_t task, int worker) {
  const bwd_data_finish *f = arg;
  const nn_conv_geom *g = &f->j->g;
  size_t n = f->n0 + task, Ci = (size_t)g->s.in_c;
  int32_t *dx = f->j->dx + n * g->in_rows * Ci;
  (void)worker;
  if (f->j->transposed) {
    copy_columns_s32(f->out + task * g->in_rows * f->j->N, g->in_rows, f->j->N, Ci, dx);
    return;
  }
  size_t Kp = padded(I8T_GEMM_S8S8S32, g->K);
  const i8t_col2im_geom cg = {(size_t)g->s.in_h, (size_t)g->s.in_w, Ci, (size_t)g->s.kernel,
                              (size_t)g->s.stride, (size_t)g->s.pad, g->oh, g->ow};
  i8t_kernels()->col2im_s32.run(&cg, f->out + task * g->out_rows * Kp, Kp, 1, dx);
}

/* Samples [n0, n1): cols holds their s8 columns (transposed path), out the
 * padded int32 output or the int32 columns (strided path). */
static i8t_status backward_data_gemm(bwd_data_job *j, size_t n0, size_t n1, int8_t *cols,
                                     int32_t *out) {
  const nn_conv_geom *g = &j->g;
  i8t_context *ctx = j->ws->ctx;
  size_t Co = (size_t)g->s.out_c, Ci = (size_t)g->s.in_c;
  int32_t *dx = j->dx + n0 * g->in_rows * Ci;
  i8t_status st;
  if (j->transposed) {
    const nn_conv_geom *t = &j->gt;
    size_t m = (n1 - n0) * t->out_rows, Kg = j->G * t->K;
    int padded_out = j->G == 1 && j->N != Ci;
    i8t_matrix A = {cols, Kg, 1}, B = {j->wt, 1, Kg}; /* wt: [N x Kg] */
    int32_t *c = padded_out ? out : dx;
    if (j->indirect) { /* dy + 128 through the padded copies, padding byte 128 */
      indirect_src src = {t, j->dy, 128, 1};
      st = gemm_indirect_block(ctx, &src, n0, n1, cols, j->wt, j->N, c, NULL);
    } else if (j->dy_u8) { /* padding is the value 0: byte 128 */
      im2col_samples(ctx, t, j->dy_u8, 128, n0, n1, cols, t->K);
      st = i8t_gemm_u8s8s32(ctx, m / j->G, j->N, Kg, A, 128, B, c, j->N);
    } else {
      im2col_samples(ctx, t, j->dy, 0, n0, n1, cols, t->K);
      st = i8t_gemm_s8s8s32(ctx, m / j->G, j->N, Kg, A, B, c, j->N);
    }
    if (st || !padded_out) return st;
  } else {
    size_t m = (n1 - n0) * g->out_rows;
    i8t_matrix A = {j->dy + n0 * g->out_rows * Co, Co, 1};
    if (g->direct) {
      i8t_matrix B = {j->w, g->K, 1};
      return i8t_gemm_s8s8s32(ctx, m, g->K, Co, A, B, dx, Ci);
    }
    size_t Kp = padded(I8T_GEMM_S8S8S32, g->K); /* j->w: [Co x Kp], zero columns past K */
    i8t_matrix B = {j->w, Kp, 1};
    if ((st = i8t_gemm_s8s8s32(ctx, m, Kp, Co, A, B, out, Kp))) return st;
  }
  bwd_data_finish f = {j, n0, out};
  i8t_parallel_for(ctx, n1 - n0, backward_data_finish_task, &f);
  return I8T_OK;
}

typedef struct sample_absmax_job {
  bwd_data_job *j;
  size_t n0;
} sample_absmax_job;

static void sample_absmax_task(void *arg, size_t task, int worker) {
  const sample_absmax_job *a = arg;
  const bwd_data_job *j = a->j;
  const nn_conv_geom *g = &j->g;
  size_t n = a->n0 + task, rows = g->in_rows;
  i8t_act_shape sh = {(size_t)g->s.batch, rows, (size_t)g->s.in_c};
  (void)worker;
  /* Arguments checked by the caller: cannot fail. */
  (void)i8t_grad_sum_absmax_u8(j->sum_src, j->sum_nsrc, j->sum_mask, sh, n * rows,
                               (n + 1) * rows, &j->sample_abs[n], j->sum_out);
}

/* The block's GEMM, then (absmax variant) its samples' max |g| while their
 * dx is in cache; one task per sample (inline inside a task). */
static i8t_status backward_data_block(bwd_data_job *j, size_t n0, size_t n1, int8_t *cols,
                                      int32_t *out) {
  i8t_status st = backward_data_gemm(j, n0, n1, cols, out);
  if (st || !j->sample_abs) return st;
  sample_absmax_job a = {j, n0};
  i8t_parallel_for(j->ws->ctx, n1 - n0, sample_absmax_task, &a);
  return I8T_OK;
}

static void backward_data_task(void *arg, size_t task, int worker) {
  bwd_data_job *j = arg;
  const nn_conv_geom *g = j->transposed ? &j->gt : &j->g;
  size_t n0 = task * g->spt, n1 = I8T_MIN(n0 + g->spt, (size_t)g->s.batch);
  nn_errors_set(&j->err, backward_data_block(j, n0, n1, nn_scratch(j->ws, worker, NN_SLOT_A),
                                             nn_scratch(j->ws, worker, NN_SLOT_C)));
}

/* The gradient sum's sources into srcs: the others, then dx (I8T_GRAD_S32
 * with dx_scale); returns their count. */
static int sum_sources(const i8t_grad_sum_ref *sum, const int32_t *dx, i8t_grad_src *srcs) {
  for (int k = 0; k < sum->nothers; k++) srcs[k] = sum->others[k];
  srcs[sum->nothers] = (i8t_grad_src){I8T_GRAD_S32, dx, sum->dx_scale};
  return sum->nothers + 1;
}

/* sum and sample_abs: the absmax variant's, or NULL. */
static i8t_status backward_data(i8t_workspace *ws, const i8t_conv_shape *s, const int8_t *dy,
                                const int8_t *w, int32_t *dx, const i8t_grad_sum_ref *sum,
                                float *sample_abs) {
  i8t_status st = i8t_conv_check(s);
  if (st) return st;
  if (!ws || !dy || !w || !dx)
    return i8t_error(I8T_ERR_INVALID_ARG, "conv backward data: NULL argument");
  bwd_data_job j = {.g = nn_conv_geom_make(s), .ws = ws, .dy = dy, .w = w, .dx = dx,
                    .sample_abs = sample_abs};
  if (sum) {
    j.sum_nsrc = sum_sources(sum, dx, j.sum_src);
    j.sum_mask = sum->relu_mask;
    j.sum_out = sum->sum_out;
  }
  nn_errors_init(&j.err);
  size_t Co = (size_t)s->out_c, Ci = (size_t)s->in_c;
  j.transposed = !j.g.direct && s->stride == 1;
  /* The geometry that splits the samples: the GEMM's rows are its outputs. */
  const nn_conv_geom *g = &j.g;
  size_t wbytes = 0, col_bytes = 0, out_bytes = 0;
  if (j.transposed) {
    i8t_conv_shape ts = {s->batch, i8t_conv_out_h(s), i8t_conv_out_w(s), s->out_c, s->in_c,
                         s->kernel, 1, s->kernel - 1 - s->pad};
    j.gt = nn_conv_geom_make(&ts);
    g = &j.gt;
    /* Width of the s8s8 kernel (u8s8, when dy goes as u8, has the same NR). */
    j.G = row_groups(I8T_GEMM_S8S8S32, Ci, g->out_rows, g->K);
    j.N = j.G > 1 ? j.G * Ci : padded(I8T_GEMM_S8S8S32, Ci);
    wbytes = j.N * j.G * g->K;
    j.indirect = dy_as_u8(j.N) && indirect_ok(g, j.G, j.N);
    indirect_src src = {g, dy, 128, 1};
    col_bytes = j.indirect ? indirect_row_bytes(&src) : g->K;
    out_bytes = j.G == 1 && j.N != Ci ? j.N * sizeof(int32_t) : 0;
  } else if (!j.g.direct) {
    wbytes = Co * padded(I8T_GEMM_S8S8S32, g->K);
    out_bytes = padded(I8T_GEMM_S8S8S32, g->K) * sizeof(int32_t);
  }
  int batched = run_batched(g->spt * g->out_rows, NN_BATCHED_ROWS);
  size_t spc = batched ? chunk_samples(g, col_bytes + out_bytes) : 0, rows = spc * g->out_rows;
  void *buf[4];
  size_t dy_bytes = (size_t)s->batch * j.g.out_rows * Co;
  size_t sizes[4] = {wbytes, rows * col_bytes, rows * out_bytes,
                     j.transposed && !j.indirect && dy_as_u8(j.N) ? dy_bytes : 0};
  if ((st = shared_regions(ws, 4, sizes, buf))) return st;
  if (j.transposed) {
    flip_weights(ws->ctx, s, w, j.G, j.N, buf[0]);
    j.wt = buf[0];
    if (buf[3]) {
      shift_s8_to_u8(ws->ctx, dy, dy_bytes, buf[3]);
      j.dy_u8 = buf[3];
    }
  } else if (buf[0]) {
    pad_columns_s8(w, Co, j.g.K, padded(I8T_GEMM_S8S8S32, j.g.K), buf[0]);
    j.w = buf[0];
  }
  if (batched) {
    for (size_t n0 = 0; n0 < (size_t)s->batch && !st; n0 += spc)
      st = backward_data_block(&j, n0, I8T_MIN(n0 + spc, (size_t)s->batch), buf[1], buf[2]);
    return st;
  }
  rows = g->spt * g->out_rows;
  if ((col_bytes && (st = nn_reserve(ws, NN_SLOT_A, rows * col_bytes))) ||
      (out_bytes && (st = nn_reserve(ws, NN_SLOT_C, rows * out_bytes))))
    return st;
  i8t_parallel_for(ws->ctx, g->tasks, backward_data_task, &j);
  return nn_errors_get(&j.err);
}

i8t_status i8t_conv2d_backward_data_s8(i8t_workspace *ws, const i8t_conv_shape *s,
                                       const int8_t *dy, const int8_t *w, int32_t *dx) {
  return backward_data(ws, s, dy, w, dx, NULL, NULL);
}

i8t_status i8t_conv2d_backward_data_absmax_s8(i8t_workspace *ws, const i8t_conv_shape *s,
                                              const int8_t *dy, const int8_t *w, int32_t *dx,
                                              const i8t_grad_sum_ref *sum, float *absmax) {
  i8t_status st = i8t_conv_check(s);
  if (st) return st;
  if (!sum || !absmax || !dx || (sum->nothers > 0 && !sum->others) || sum->nothers < 0 ||
      sum->nothers >= I8T_GRAD_SPAN_MAX)
    return i8t_error(I8T_ERR_INVALID_ARG,
                     "conv backward data absmax: NULL argument or %d other sources (0 to %d)",
                     sum ? sum->nothers : 0, I8T_GRAD_SPAN_MAX - 1);
  /* Checks the sources as the per-sample calls will see them (dx last). */
  i8t_grad_src srcs[I8T_GRAD_SPAN_MAX];
  int nsrc = sum_sources(sum, dx, srcs);
  i8t_act_shape sh = {(size_t)s->batch, (size_t)s->in_h * (size_t)s->in_w, (size_t)s->in_c};
  float unused;
  if ((st = i8t_grad_sum_absmax_u8(srcs, nsrc, sum->relu_mask, sh, 0, 0, &unused, NULL)))
    return st;
  float *sample_abs = malloc((size_t)s->batch * sizeof *sample_abs);
  if (!sample_abs) return i8t_error(I8T_ERR_NO_MEMORY, "conv backward data absmax");
  if (!(st = backward_data(ws, s, dy, w, dx, sum, sample_abs)))
    *absmax = nn_max_of_parts(sample_abs, (size_t)s->batch);
  free(sample_abs);
  return st;
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
static size_t wgrad_ld(size_t K) { return padded(I8T_GEMM_S16U8S64, K); }

/* dst [Co x K] = (accumulate ? dst : 0) + src [Co x ld], one task per
 * block of rows. int64 sums are exact: the order of blocks does not matter. */
#define ADD_ROWS 8
typedef struct add_s64_job {
  const int64_t *src;
  int64_t *dst;
  size_t rows, K, ld;
  int accumulate;
} add_s64_job;

static void add_s64_task(void *arg, size_t task, int worker) {
  const add_s64_job *j = arg;
  (void)worker;
  for (size_t r = task * ADD_ROWS; r < I8T_MIN(j->rows, (task + 1) * ADD_ROWS); r++) {
    const int64_t *s = j->src + r * j->ld;
    int64_t *d = j->dst + r * j->K;
    if (j->accumulate) {
      for (size_t k = 0; k < j->K; k++) d[k] += s[k];
    } else {
      memcpy(d, s, j->K * sizeof *d);
    }
  }
}

/* Samples [n0, n1) into dst [Co x K] (added when accumulate): cols holds
 * their columns, tmp the GEMM's [Co x ld] result when it cannot go straight
 * to dst. */
static i8t_status backward_weights_block(bwd_weights_job *j, size_t n0, size_t n1,
                                         uint8_t *cols, int64_t *tmp, int64_t *dst,
                                         int accumulate) {
  const nn_conv_geom *g = &j->g;
  i8t_context *ctx = j->ws->ctx;
  size_t m = (n1 - n0) * g->out_rows, Co = (size_t)g->s.out_c;
  const uint8_t *b = j->x + n0 * g->in_rows * (size_t)g->s.in_c;
  size_t ld = g->K;
  if (!g->direct) {
    ld = wgrad_ld(g->K);
    im2col_samples(ctx, g, j->x, j->zp, n0, n1, cols, ld);
    b = cols;
  }
  int64_t *c = !accumulate && ld == g->K ? dst : tmp;
  i8t_matrix A = {j->dy + n0 * g->out_rows * Co, 1, Co}, B = {b, ld, 1};
  i8t_status st = i8t_gemm_s16u8s64(ctx, Co, ld, m, A, B, j->zp, c, ld);
  if (st || c == dst) return st;
  add_s64_job a = {tmp, dst, Co, g->K, ld, accumulate};
  i8t_parallel_for(ctx, (Co + ADD_ROWS - 1) / ADD_ROWS, add_s64_task, &a);
  return I8T_OK;
}

/* Each task's block is added into its worker's accumulator (slot C). */
static void backward_weights_task(void *arg, size_t task, int worker) {
  bwd_weights_job *j = arg;
  size_t n0 = task * j->g.spt, n1 = I8T_MIN(n0 + j->g.spt, (size_t)j->g.s.batch);
  nn_errors_set(&j->err, backward_weights_block(j, n0, n1, nn_scratch(j->ws, worker, NN_SLOT_A),
                                                nn_scratch(j->ws, worker, NN_SLOT_B),
                                                nn_scratch(j->ws, worker, NN_SLOT_C), 1));
}

i8t_status i8t_conv2d_backward_weights_s16(i8t_workspace *ws, const i8t_conv_shape *s,
                                           const int16_t *dy, const uint8_t *x, uint8_t x_zp,
                                           int64_t *dw) {
  i8t_status st = i8t_conv_check(s);
  if (st) return st;
  if (!ws || !dy || !x || !dw)
    return i8t_error(I8T_ERR_INVALID_ARG, "conv backward weights: NULL argument");
  if (nn_stem_wgrad_fits(s)) return nn_stem_backward_weights(ws, s, dy, x, x_zp, dw);
  bwd_weights_job j = {.g = nn_conv_geom_make(s), .ws = ws, .dy = dy, .x = x, .zp = x_zp};
  nn_errors_init(&j.err);
  const nn_conv_geom *g = &j.g;
  size_t Co = (size_t)s->out_c, wsize = Co * g->K, ld = g->direct ? g->K : wgrad_ld(g->K);
  size_t col_bytes = g->direct ? 0 : ld;
  /* The implicit GEMM adds into each worker's int64 sum as it goes (no
   * partial gradient per block, the batched mode's reason): it runs
   * wherever it fits, but for the tests' batched layout, which keeps this
   * im2col route tested on every ISA. */
  if (test_layout != 1 && i8t_conv_wgrad_implicit_fits(s))
    return nn_wgrad_implicit(ws, s, dy, x, x_zp, dw);
  if (run_batched(g->spt * g->out_rows, NN_WGRAD_BYTES_PER_CHANNEL * Co)) {
    /* Chunks in turn, each GEMM tiled over dw; only a second chunk, or
     * padded columns, need the int64 block in tmp. */
    size_t spc = chunk_samples(g, col_bytes), rows = spc * g->out_rows;
    int need_tmp = ld != g->K || spc < (size_t)s->batch;
    void *buf[2];
    size_t sizes[2] = {rows * col_bytes, need_tmp ? Co * ld * sizeof(int64_t) : 0};
    if ((st = shared_regions(ws, 2, sizes, buf))) return st;
    for (size_t n0 = 0; n0 < (size_t)s->batch && !st; n0 += spc)
      st = backward_weights_block(&j, n0, I8T_MIN(n0 + spc, (size_t)s->batch), buf[0], buf[1],
                                  dw, n0 > 0);
    return st;
  }
  if ((col_bytes && (st = nn_reserve(ws, NN_SLOT_A, g->spt * g->out_rows * col_bytes))) ||
      (st = nn_reserve(ws, NN_SLOT_B, Co * ld * sizeof(int64_t))) ||
      (st = nn_reserve(ws, NN_SLOT_C, wsize * sizeof(int64_t))))
    return st;
  for (int w = 0; w < ws->threads; w++) memset(nn_scratch(ws, w, NN_SLOT_C), 0, wsize * 8);
  i8t_parallel_for(ws->ctx, g->tasks, backward_weights_task, &j);
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
