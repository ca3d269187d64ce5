/* The int8 weight gradient as an implicit GEMM: no column matrix.
 *
 * dW[co][k'] = sum over samples and output pixels p of dy[p][co] * col[p][k'],
 * k' = (ky, kx, c). The im2col route writes col (K' bytes per pixel), then
 * widens and packs it again to int16 for the int16 dot steps: for 16-channel
 * layers that is more memory traffic than multiplying. Here the product is
 * taken transposed, dW^T[k' x Co] = col^T[k' x pixels] * dy[pixels x Co], so
 * that the column side is the GEMM's A, which the microkernel broadcasts
 * (one int16 pair, two neighbouring output pixels, per K group) from
 * wherever it lies. Only dy, the small operand, is packed.
 *
 * Where A lies: a "pair copy" of the sample, per padded input row, holds
 * for each pair of neighbouring pixels that one tap reads (2 j and 2 j + 1
 * along the output row) the C channels' (x - zp) pairs side by side: row
 * (ky, kx, c) of col^T is then one pointer, with its next pair C * 4 bytes
 * on and its next output row `stride` input rows on, and the C rows of one
 * tap are interleaved, 4 bytes apart, so the microkernel addresses a whole
 * tile from one pointer (i8t_gemm_indirect_a.interleave). The pixels of a
 * tap along an output row are every stride-th input column from kx on:
 * there is one copy per phase kx % stride and parity of kx / stride (pairs
 * start at even or odd columns), built with the C channels of two pixels
 * interleaved, a vectorisable loop over NHWC rows. Padding is 0 (x - zp of
 * the zero point). The GEMM's K is the sample's output pixels, one tap per
 * output row of ceil(ow / 2) pairs; an odd width reads one more pixel per
 * row against a zero dy row (dy is then copied with a zero row after each).
 *
 * Samples split over tasks as in conv.c's per-task weight gradient; each
 * worker adds its samples into its own int64 dW^T, and the workers' sums
 * are added (exact, so in any order) and transposed into dw at the end. */
#include <stdlib.h>
#include <string.h>

#include "kernel_table.h"
#include "nn_conv.h"

/* Strides up to this take this path (a copy per phase and parity). */
#define WGRAD_MAX_STRIDE 8

typedef struct pair_geom {
  size_t stride, C;
  size_t pairs;      /* K groups per tap: int16 pairs per output row */
  size_t cpairs;     /* pairs per padded row of a copy */
  size_t row_bytes;  /* one padded row of a copy */
  size_t rows;       /* padded rows */
  size_t copy_bytes; /* one copy (64-byte multiple) */
  size_t copies;     /* 2 * stride: phase kx % stride, parity of kx / stride */
} pair_geom;

static pair_geom pair_geom_make(const nn_conv_geom *g) {
  const i8t_conv_shape *s = &g->s;
  pair_geom p;
  size_t st = (size_t)s->stride, k = (size_t)s->kernel;
  p.stride = st;
  p.C = (size_t)s->in_c;
  p.pairs = (g->ow + 1) / 2;
  p.cpairs = p.pairs + (k - 1) / st / 2; /* a tap starts (kx / st) / 2 pairs on */
  p.row_bytes = p.cpairs * p.C * 2 * sizeof(int16_t);
  p.rows = (size_t)s->in_h + 2 * (size_t)s->pad;
  p.copy_bytes = I8T_ROUND_UP(p.rows * p.row_bytes, 64);
  p.copies = 2 * st;
  return p;
}

/* A worker's int64 dW^T above this stays on the im2col route (conv.c's
 * batched mode): the GEMM adds each KC block of a sample into it. */
#define WGRAD_MAX_SUM_BYTES ((size_t)2 << 20)

/* Samples of fewer output pixels stay on the im2col route: each sample is
 * one GEMM whose int64 tile updates (a KC block's worth of C) cost as much
 * as its multiplies when K is small (7x7 outputs: 20 % slower). */
#define WGRAD_MIN_PIXELS 128

int i8t_conv_wgrad_implicit_fits(const i8t_conv_shape *s) {
  size_t ow = (size_t)i8t_conv_out_w(s), oh = (size_t)i8t_conv_out_h(s);
  return s->stride <= WGRAD_MAX_STRIDE && oh * ow >= WGRAD_MIN_PIXELS &&
         i8t_conv_k(s) * (size_t)s->out_c * sizeof(int64_t) <= WGRAD_MAX_SUM_BYTES &&
         i8t_gemm_s16s16s64_indirect_ok((size_t)s->out_c, 4 * ((ow + 1) / 2));
}

typedef struct wgrad_job {
  nn_conv_geom g;
  pair_geom p;
  i8t_workspace *ws;
  const int16_t *dy;
  const uint8_t *x;
  uint8_t zp;
  size_t M; /* k * k * in_c rows of dW^T */
  unsigned char used[2 * WGRAD_MAX_STRIDE]; /* copies some tap reads */
  unsigned char *row_used; /* [padded rows]: rows some tap reads */
  nn_errors err;
} wgrad_job;

/* Whether some tap reads padded row py. */
static int row_read(const nn_conv_geom *g, size_t py) {
  size_t st = (size_t)g->s.stride;
  for (size_t ky = 0; ky < (size_t)g->s.kernel && ky <= py; ky++)
    if ((py - ky) % st == 0 && (py - ky) / st < g->oh) return 1;
  return 0;
}

/* The padded input row: padded_cols pixels of C bytes, the zero point
 * at both ends; the pairs of copy (phase, parity) are pixels stride *
 * (2 q + parity) + phase and stride further on. It holds every column a
 * copy's cpairs pairs read (the last pair may read past the padding). */
static size_t padded_cols(const wgrad_job *j) {
  const pair_geom *p = &j->p;
  return I8T_MAX(p->stride * (2 * p->cpairs + 2), (size_t)(j->g.s.in_w + 2 * j->g.s.pad));
}

/* One sample's rows into the pair copies at img, each through the padded
 * row prow (its ends set before); rows of padding and the copies no tap
 * reads keep the zeros written before. */
static void fill_pairs(const wgrad_job *j, const uint8_t *x, uint8_t *prow, char *img) {
  const i8t_conv_shape *s = &j->g.s;
  const pair_geom *p = &j->p;
  const i8t_interleave_pixels_u8_s16_fn interleave = i8t_kernels()->interleave_pixels_u8_s16.run;
  size_t W = (size_t)s->in_w, C = p->C, pad = (size_t)s->pad, st = p->stride;
  for (size_t iy = 0; iy < (size_t)s->in_h; iy++) {
    if (!j->row_used[iy + pad]) continue;
    memcpy(prow + pad * C, x + iy * W * C, W * C);
    for (size_t copy = 0; copy < p->copies; copy++) {
      if (!j->used[copy]) continue;
      size_t phase = copy / 2, parity = copy % 2;
      interleave(p->cpairs, C, prow + (st * parity + phase) * C, 2 * st * C, st * C,
                 (int16_t)j->zp,
                 (int16_t *)(void *)(img + copy * p->copy_bytes + (iy + pad) * p->row_bytes));
    }
  }
}

/* The M row pointers into the copies at img: row (ky, kx, c). */
static void row_pointers(const wgrad_job *j, const char *img, const void **rows) {
  const pair_geom *p = &j->p;
  size_t k = (size_t)j->g.s.kernel, C = p->C, st = p->stride;
  for (size_t ky = 0; ky < k; ky++)
    for (size_t kx = 0; kx < k; kx++) {
      size_t copy = (kx % st) * 2 + (kx / st) % 2, q0 = kx / st / 2;
      const char *tap = img + copy * p->copy_bytes + ky * p->row_bytes + q0 * C * 4;
      for (size_t c = 0; c < C; c++) rows[(ky * k + kx) * C + c] = tap + c * 4;
    }
}

/* Scratch of a worker: slot A the pair copies (then, for an odd output
 * width, the padded dy), slot B the row pointers and the padded row, slot
 * C its dW^T sums. */
static size_t image_bytes(const wgrad_job *j) { return j->p.copies * j->p.copy_bytes; }
static size_t dy_pad_bytes(const wgrad_job *j) {
  return j->g.ow % 2 ? j->g.oh * 2 * j->p.pairs * (size_t)j->g.s.out_c * sizeof(int16_t) : 0;
}

static i8t_status wgrad_samples(wgrad_job *j, size_t n0, size_t n1, int worker) {
  const nn_conv_geom *g = &j->g;
  const pair_geom *p = &j->p;
  size_t Co = (size_t)g->s.out_c, in_px = g->in_rows * p->C;
  char *img = nn_scratch(j->ws, worker, NN_SLOT_A);
  int16_t *dy_pad = (int16_t *)(void *)(img + image_bytes(j));
  const void **rows = nn_scratch(j->ws, worker, NN_SLOT_B);
  uint8_t *prow = (uint8_t *)(rows + j->M);
  int64_t *acc = nn_scratch(j->ws, worker, NN_SLOT_C);
  memset(img, 0, image_bytes(j) + dy_pad_bytes(j));
  memset(prow, j->zp, padded_cols(j) * p->C);
  row_pointers(j, img, rows);
  i8t_gemm_indirect_a A = {.rows = rows, .taps = g->oh, .tap_bytes = 4 * p->pairs,
                           .tap_pitch = p->stride * p->row_bytes,
                           .group_pitch = 4 * p->C, .interleave = p->C};
  for (size_t n = n0; n < n1; n++) {
    fill_pairs(j, j->x + n * in_px, prow, img);
    const int16_t *dy = j->dy + n * g->out_rows * Co;
    if (dy_pad_bytes(j)) { /* a zero row after each output row */
      for (size_t oy = 0; oy < g->oh; oy++)
        memcpy(dy_pad + oy * (g->ow + 1) * Co, dy + oy * g->ow * Co, g->ow * Co * sizeof *dy);
      dy = dy_pad;
    }
    i8t_matrix B = {dy, Co, 1};
    i8t_status st = i8t_gemm_s16s16s64_indirect(j->ws->ctx, j->M, Co, &A, B, acc, Co, 1);
    if (st) return st;
  }
  return I8T_OK;
}

static void wgrad_task(void *arg, size_t task, int worker) {
  wgrad_job *j = arg;
  size_t n0 = task * j->g.spt, n1 = I8T_MIN(n0 + j->g.spt, (size_t)j->g.s.batch);
  nn_errors_set(&j->err, wgrad_samples(j, n0, n1, worker));
}

i8t_status nn_wgrad_implicit(i8t_workspace *ws, const i8t_conv_shape *s, const int16_t *dy,
                             const uint8_t *x, uint8_t x_zp, int64_t *dw) {
  wgrad_job j = {.g = nn_conv_geom_make(s), .ws = ws, .dy = dy, .x = x, .zp = x_zp};
  j.p = pair_geom_make(&j.g);
  j.M = j.g.K;
  for (size_t kx = 0; kx < (size_t)s->kernel; kx++)
    j.used[(kx % j.p.stride) * 2 + (kx / j.p.stride) % 2] = 1;
  size_t Co = (size_t)s->out_c, wsize = Co * j.M;
  i8t_status st;
  if ((st = nn_reserve(ws, NN_SLOT_A, image_bytes(&j) + dy_pad_bytes(&j))) ||
      (st = nn_reserve(ws, NN_SLOT_B, j.M * sizeof(void *) + padded_cols(&j) * j.p.C)) ||
      (st = nn_reserve(ws, NN_SLOT_C, wsize * sizeof(int64_t))))
    return st;
  j.row_used = malloc(j.p.rows);
  if (!j.row_used) return i8t_error(I8T_ERR_NO_MEMORY, "conv backward weights: %zu rows", j.p.rows);
  for (size_t py = 0; py < j.p.rows; py++) j.row_used[py] = (unsigned char)row_read(&j.g, py);
  for (int w = 0; w < ws->threads; w++) memset(nn_scratch(ws, w, NN_SLOT_C), 0, wsize * 8);
  nn_errors_init(&j.err);
  i8t_parallel_for(ws->ctx, j.g.tasks, wgrad_task, &j);
  free(j.row_used);
  if ((st = nn_errors_get(&j.err))) return st;
  /* dw[co][k'] = the workers' dW^T[k'][co], summed (exact int64). */
  memset(dw, 0, wsize * sizeof *dw);
  for (int w = 0; w < ws->threads; w++) {
    const int64_t *acc = nn_scratch(ws, w, NN_SLOT_C);
    for (size_t k = 0; k < j.M; k++)
      for (size_t co = 0; co < Co; co++) dw[co * j.M + k] += acc[k * Co + co];
  }
  return I8T_OK;
}
