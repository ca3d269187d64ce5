/* The int8 weight gradient as an implicit GEMM: no column matrix.
 *
 * dW[co][k'] = sum over samples and output pixels p of dy[p][co] * col[p][k'],
 * k' = (ky, kx, c). The im2col route writes col (K' bytes per pixel), then
 * widens and packs it again to int16 for the int16 dot steps: for 16-channel
 * layers that is more memory traffic than multiplying. Here the product is
 * taken transposed, dW^T[k' x Co] = col^T[k' x pixels] * dy[pixels x Co], so
 * that the column side is the GEMM's A, which the microkernel broadcasts
 * (one int16 pair per K group) from wherever it lies. Only dy, the small
 * operand, is packed.
 *
 * The pairs are one pixel of two samples (n, n + 1): the K order is (pair
 * of samples, output row, output column, sample). Where A lies: a "pair
 * copy" of the two samples holds, per padded input row and pixel, the C
 * channels' (x_n - zp, x_n+1 - zp) pairs side by side, so row (ky, kx, c)
 * of col^T is one pointer, its next output column C * 4 bytes on (every
 * stride-th input column: one copy per phase kx % stride, whose pixels are
 * those columns), its next output row `stride` input rows on, and its next
 * pair of samples one pair copy on (the GEMM's blocks of taps). The C rows
 * of one tap are interleaved, 4 bytes apart, so the microkernel addresses a
 * whole tile from one pointer (i8t_gemm_indirect_a.interleave). Padding
 * is 0 (x - zp of the zero point); an odd batch pairs its last sample with
 * a zero one (a zero dy). dy goes straight into the GEMM's packed layout
 * (the two samples' channels interleaved per pixel), so the driver packs
 * nothing.
 *
 * Samples split over tasks of whole pairs; each worker adds its tasks into
 * its own int64 dW^T in one GEMM per task, and the workers' sums are added
 * (exact, so in any order) and transposed into dw at the end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_table.h"
#include "nn_conv.h"

/* Strides up to this take this path (a copy per phase). */
#define WGRAD_MAX_STRIDE 8
/* A worker's int64 dW^T above this stays on the im2col route (conv.c's
 * batched mode): the GEMM adds each KC block of a task into it. */
#define WGRAD_MAX_SUM_BYTES ((size_t)2 << 20)
/* Output pixels per task (two samples a pair): about 3 KC blocks of K. */
#define WGRAD_TASK_PIXELS 768

typedef struct pair_geom {
  size_t stride, C;
  size_t cols;       /* pixels per padded row of a copy (its phase's columns) */
  size_t row_bytes;  /* one padded row of a copy */
  size_t rows;       /* padded rows */
  size_t copy_bytes; /* one copy (64-byte multiple) */
  size_t pair_bytes; /* the `stride` copies of one pair of samples */
} pair_geom;

static pair_geom pair_geom_make(const nn_conv_geom *g) {
  const i8t_conv_shape *s = &g->s;
  pair_geom p;
  size_t st = (size_t)s->stride, k = (size_t)s->kernel;
  p.stride = st;
  p.C = (size_t)s->in_c;
  p.cols = g->ow + (k - 1) / st; /* a tap starts kx / stride pixels on */
  p.row_bytes = p.cols * p.C * 2 * sizeof(int16_t);
  p.rows = (size_t)s->in_h + 2 * (size_t)s->pad;
  p.copy_bytes = I8T_ROUND_UP(p.rows * p.row_bytes, 64);
  p.pair_bytes = st * p.copy_bytes;
  return p;
}

/* The indirect A of `pairs` sample pairs from row pointers `rows`: one
 * block of taps (output rows) per pair. */
static i8t_gemm_indirect_a pairs_a(const nn_conv_geom *g, const pair_geom *p, const void **rows,
                                   size_t pairs) {
  return (i8t_gemm_indirect_a){.rows = rows, .taps = pairs * g->oh, .tap_bytes = 4 * g->ow,
                               .tap_pitch = p->stride * p->row_bytes,
                               .group_pitch = 4 * p->C, .interleave = p->C,
                               .block_taps = pairs > 1 ? g->oh : 0,
                               .block_pitch = pairs > 1 ? p->pair_bytes : 0};
}

/* How many sample pairs one GEMM may take for shape s on the current
 * table: many where the kernel reads whole tiles from one pointer
 * (interleaved rows: C a multiple of its MR), else one (row pointers step
 * one tap pitch only); 0 where the implicit GEMM does not run. */
static size_t pairs_per_gemm(const nn_conv_geom *g, const pair_geom *p) {
  size_t M = g->K, Co = (size_t)g->s.out_c;
  const void *row = NULL;
  i8t_gemm_indirect_a many = pairs_a(g, p, &row, 2), one = pairs_a(g, p, &row, 1);
  if (i8t_gemm_s16s16s64_indirect_ok(M, Co, &many)) return SIZE_MAX;
  return i8t_gemm_s16s16s64_indirect_ok(M, Co, &one) ? 1 : 0;
}

int i8t_conv_wgrad_implicit_fits(const i8t_conv_shape *s) {
  /* 1x1: im2col is a plain copy (or none), the multiplies few; the pair
   * copies' fixed costs made resnet8's 1x1 stride-2 shortcuts 35 % slower. */
  if (s->kernel == 1 || s->stride > WGRAD_MAX_STRIDE) return 0;
  nn_conv_geom g = nn_conv_geom_make(s);
  pair_geom p = pair_geom_make(&g);
  return g.K * (size_t)s->out_c * sizeof(int64_t) <= WGRAD_MAX_SUM_BYTES &&
         pairs_per_gemm(&g, &p) > 0;
}

typedef struct wgrad_job {
  nn_conv_geom g;
  pair_geom p;
  i8t_workspace *ws;
  const int16_t *dy;
  const uint8_t *x;
  uint8_t zp;
  size_t M;   /* k * k * in_c rows of dW^T */
  size_t ppt; /* sample pairs per task */
  size_t ppg; /* sample pairs per GEMM (pairs_per_gemm) */
  size_t nr;  /* the microkernel's NR: dy's packed panels */
  unsigned char used[WGRAD_MAX_STRIDE]; /* copies some tap reads */
  unsigned char *row_used;              /* [padded rows]: rows some tap reads */
  nn_errors err;
} wgrad_job;

/* Whether some tap reads padded row py. */
static int row_read(const nn_conv_geom *g, size_t py) {
  size_t st = (size_t)g->s.stride;
  for (size_t ky = 0; ky < (size_t)g->s.kernel && ky <= py; ky++)
    if ((py - ky) % st == 0 && (py - ky) / st < g->oh) return 1;
  return 0;
}

/* A padded input row: padded_cols pixels of C bytes, the zero point at
 * both ends; copy `phase` takes pixels stride * e + phase. It holds every
 * pixel a copy row reads. */
static size_t padded_cols(const wgrad_job *j) {
  const pair_geom *p = &j->p;
  return I8T_MAX(p->stride * (p->cols + 1), (size_t)(j->g.s.in_w + 2 * j->g.s.pad));
}

/* The copies of samples a and b (b NULL: a zero sample) at pc, through the
 * two padded rows at prow (padded_cols pixels apart, their ends set before;
 * a zero sample's row is all zero point); rows of padding and the copies no
 * tap reads keep the zeros written before. */
static void fill_pair(const wgrad_job *j, const uint8_t *a, const uint8_t *b, uint8_t *prow,
                      char *pc) {
  const i8t_conv_shape *s = &j->g.s;
  const pair_geom *p = &j->p;
  const i8t_interleave_pixels_u8_s16_fn interleave = i8t_kernels()->interleave_pixels_u8_s16.run;
  size_t W = (size_t)s->in_w, C = p->C, pad = (size_t)s->pad, st = p->stride;
  size_t b_off = padded_cols(j) * C;
  for (size_t iy = 0; iy < (size_t)s->in_h; iy++) {
    if (!j->row_used[iy + pad]) continue;
    memcpy(prow + pad * C, a + iy * W * C, W * C);
    if (b) memcpy(prow + b_off + pad * C, b + iy * W * C, W * C);
    else memset(prow + b_off + pad * C, j->zp, W * C);
    for (size_t phase = 0; phase < st; phase++) {
      if (!j->used[phase]) continue;
      interleave(p->cols, C, prow + phase * C, st * C, b_off, (int16_t)j->zp,
                 (int16_t *)(void *)(pc + phase * p->copy_bytes + (iy + pad) * p->row_bytes));
    }
  }
}

/* The padding rows of the pair copies at pc that some tap reads, zeroed
 * (x - zp of the zero point): fill_pair writes every other row a tap reads,
 * and rows and copies no tap reads are never read (zeroing whole copies was
 * the pass's largest memset). */
static void zero_padding_rows(const wgrad_job *j, char *pc) {
  const pair_geom *p = &j->p;
  size_t pad = (size_t)j->g.s.pad, h = (size_t)j->g.s.in_h;
  for (size_t phase = 0; phase < p->stride; phase++) {
    if (!j->used[phase]) continue;
    for (size_t py = 0; py < p->rows; py++)
      if ((py < pad || py >= pad + h) && j->row_used[py])
        memset(pc + phase * p->copy_bytes + py * p->row_bytes, 0, p->row_bytes);
  }
}

/* The M row pointers into the first pair copy at img: row (ky, kx, c). */
static void row_pointers(const wgrad_job *j, const char *img, const void **rows) {
  const pair_geom *p = &j->p;
  size_t k = (size_t)j->g.s.kernel, C = p->C, st = p->stride;
  for (size_t ky = 0; ky < k; ky++)
    for (size_t kx = 0; kx < k; kx++) {
      const char *tap = img + (kx % st) * p->copy_bytes + ky * p->row_bytes + (kx / st) * C * 4;
      for (size_t c = 0; c < C; c++) rows[(ky * k + kx) * C + c] = tap + c * 4;
    }
}

/* Scratch of a worker: slot A the task's pair copies, then its dy packed;
 * slot B the row pointers (twice: the first pair's and, one pair a GEMM,
 * the current one's) and two padded rows; slot C its dW^T sums. */
static size_t copies_bytes(const wgrad_job *j) { return j->ppt * j->p.pair_bytes; }
static size_t panels(const wgrad_job *j) { return ((size_t)j->g.s.out_c + j->nr - 1) / j->nr; }
static size_t dy_bytes(const wgrad_job *j) {
  return panels(j) * j->nr * j->ppt * 2 * j->g.out_rows * sizeof(int16_t);
}

/* dy of samples a and b (b NULL: a zero sample) as K groups g0.. of the
 * packed B at d whose panels are `groups` groups long: group g0 + px of
 * panel q holds, for its NR columns c, (a[px][q NR + c], b[px][q NR + c]),
 * columns past Co zero (the table's interleave_rows_s16, a panel a call). */
static void pack_dy(const wgrad_job *j, const int16_t *a, const int16_t *b, size_t groups,
                    size_t g0, int16_t *d) {
  const i8t_interleave_rows_s16_fn interleave = i8t_kernels()->interleave_rows_s16.run;
  size_t Co = (size_t)j->g.s.out_c, nr = j->nr, pixels = j->g.out_rows;
  for (size_t q = 0; q < panels(j); q++) {
    size_t c0 = q * nr, w = I8T_MIN(nr, Co - c0);
    interleave(pixels, w, nr, a + c0, b ? b + c0 : NULL, Co, d + (q * groups + g0) * nr * 2,
               2 * nr);
  }
}

static void wgrad_task(void *arg, size_t task, int worker) {
  wgrad_job *j = arg;
  const nn_conv_geom *g = &j->g;
  const pair_geom *p = &j->p;
  size_t Co = (size_t)g->s.out_c, in_px = g->in_rows * p->C, out_px = g->out_rows * Co;
  size_t n0 = task * 2 * j->ppt, n1 = I8T_MIN(n0 + 2 * j->ppt, (size_t)g->s.batch);
  size_t pairs = (n1 - n0 + 1) / 2;
  char *img = nn_scratch(j->ws, worker, NN_SLOT_A);
  int16_t *dy = (int16_t *)(void *)(img + copies_bytes(j));
  const void **rows = nn_scratch(j->ws, worker, NN_SLOT_B);
  uint8_t *prow = (uint8_t *)(rows + 2 * j->M);
  for (size_t i = 0; i < pairs; i++) zero_padding_rows(j, img + i * p->pair_bytes);
  memset(prow, j->zp, 2 * padded_cols(j) * p->C);
  row_pointers(j, img, rows);
  /* One GEMM for all pairs, or one per pair (ppg is SIZE_MAX or 1), each
   * with its own packed B: K / 2 = its pairs' pixels per panel. */
  size_t per_gemm = I8T_MIN(j->ppg, pairs), groups = per_gemm * g->out_rows;
  size_t gemm_b = panels(j) * j->nr * 2 * groups; /* int16 values of one GEMM's B */
  for (size_t i = 0; i < pairs; i++) {
    size_t a = n0 + 2 * i;
    int second = a + 1 < n1;
    fill_pair(j, j->x + a * in_px, second ? j->x + (a + 1) * in_px : NULL, prow,
              img + i * p->pair_bytes);
    pack_dy(j, j->dy + a * out_px, second ? j->dy + (a + 1) * out_px : NULL, groups,
            (i % per_gemm) * g->out_rows, dy + i / per_gemm * gemm_b);
  }
  int64_t *acc = nn_scratch(j->ws, worker, NN_SLOT_C);
  for (size_t i = 0; i < pairs; i += per_gemm) {
    const void **r = rows;
    if (i > 0) { /* a later pair's own GEMM: its row pointers */
      r = rows + j->M;
      for (size_t m = 0; m < j->M; m++) r[m] = (const char *)rows[m] + i * p->pair_bytes;
    }
    i8t_gemm_indirect_a A = pairs_a(g, p, r, per_gemm);
    i8t_status st = i8t_gemm_s16s16s64_indirect_packed(j->ws->ctx, j->M, Co, &A,
                                                       dy + i / per_gemm * gemm_b, acc, Co, 1);
    if (st) {
      nn_errors_set(&j->err, st);
      return;
    }
  }
}

/* The workers' int64 dW^T sums: zeroed before the pass (one task per
 * worker's sums) and added into dw after it (rows of dW^T in blocks). */
#define SUM_ROWS 64
typedef struct sums_job {
  i8t_workspace *ws;
  int64_t *dw;
  size_t M, Co;
} sums_job;

static void zero_sums_task(void *arg, size_t task, int worker) {
  const sums_job *sj = arg;
  (void)worker;
  memset(nn_scratch(sj->ws, (int)task, NN_SLOT_C), 0, sj->M * sj->Co * sizeof(int64_t));
}

/* dw[co][k'] = the sum over workers of dW^T[k'][co] (exact int64: any order). */
static void add_sums_task(void *arg, size_t task, int worker) {
  const sums_job *sj = arg;
  size_t k1 = I8T_MIN(sj->M, (task + 1) * SUM_ROWS);
  (void)worker;
  for (size_t k = task * SUM_ROWS; k < k1; k++)
    for (size_t co = 0; co < sj->Co; co++) {
      int64_t sum = 0;
      for (int w = 0; w < sj->ws->threads; w++)
        sum += ((const int64_t *)nn_scratch(sj->ws, w, NN_SLOT_C))[k * sj->Co + co];
      sj->dw[co * sj->M + k] = sum;
    }
}

i8t_status nn_wgrad_implicit(i8t_workspace *ws, const i8t_conv_shape *s, const int16_t *dy,
                             const uint8_t *x, uint8_t x_zp, int64_t *dw) {
  wgrad_job j = {.g = nn_conv_geom_make(s), .ws = ws, .dy = dy, .x = x, .zp = x_zp};
  j.p = pair_geom_make(&j.g);
  j.M = j.g.K;
  j.ppg = pairs_per_gemm(&j.g, &j.p);
  j.nr = i8t_gemm_panel_width(I8T_GEMM_S16U8S64, (size_t)s->out_c);
  j.ppt = nn_samples_per_task(((size_t)s->batch + 1) / 2, 2 * j.g.out_rows, WGRAD_TASK_PIXELS);
  for (size_t kx = 0; kx < (size_t)s->kernel; kx++) j.used[kx % j.p.stride] = 1;
  size_t Co = (size_t)s->out_c;
  size_t tasks = nn_task_count(((size_t)s->batch + 1) / 2, j.ppt);
  i8t_status st;
  if ((st = nn_reserve(ws, NN_SLOT_A, copies_bytes(&j) + dy_bytes(&j))) ||
      (st = nn_reserve(ws, NN_SLOT_B, 2 * j.M * sizeof(void *) +
                                          2 * padded_cols(&j) * j.p.C)) ||
      (st = nn_reserve(ws, NN_SLOT_C, j.M * Co * sizeof(int64_t))))
    return st;
  j.row_used = malloc(j.p.rows);
  if (!j.row_used) return i8t_error(I8T_ERR_NO_MEMORY, "conv backward weights: %zu rows", j.p.rows);
  for (size_t py = 0; py < j.p.rows; py++) j.row_used[py] = (unsigned char)row_read(&j.g, py);
  sums_job sj = {ws, dw, j.M, Co};
  i8t_parallel_for(ws->ctx, (size_t)ws->threads, zero_sums_task, &sj);
  nn_errors_init(&j.err);
  i8t_parallel_for(ws->ctx, tasks, wgrad_task, &j);
  free(j.row_used);
  if ((st = nn_errors_get(&j.err))) return st;
  i8t_parallel_for(ws->ctx, nn_task_count(j.M, SUM_ROWS), add_sums_task, &sj);
  return I8T_OK;
}
