/* The quantizer's public entry points: range -> parameters, and the calls
 * into the selected table's kernels. The stochastic stream's 64-bit counter
 * is split here so that kernels only ever see a 32-bit counter and a key. */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"
#include "kernel_table.h"
#include "rng.h"
#include "threadpool.h"

/* Elements per parallel task of the _ctx variants: a fixed size, so the split
 * never depends on the thread count (and the stochastic counter is per
 * element anyway); 64 KiB of input outweighs a task's dispatch cost. */
#define CHUNK 16384

static size_t chunks(size_t n) { return (n + CHUNK - 1) / CHUNK; }

typedef struct minmax_job {
  i8t_minmax_f32_fn run;
  const float *x;
  size_t n;
  float *lo, *hi;        /* per chunk */
  unsigned char *bad;    /* per chunk: NaN or Inf seen */
} minmax_job;

static void minmax_chunk(void *arg, size_t task, int worker) {
  const minmax_job *j = arg;
  (void)worker;
  size_t begin = task * CHUNK;
  j->bad[task] = (unsigned char)(j->run(j->x + begin, I8T_MIN(CHUNK, j->n - begin),
                                        &j->lo[task], &j->hi[task]) != 0);
}

/* Per-chunk ranges folded in chunk order. Returns non-zero on NaN or Inf. */
static int minmax_parallel(i8t_context *ctx, i8t_minmax_f32_fn run, const float *x, size_t n,
                           float *min, float *max, int *no_memory) {
  size_t tasks = chunks(n);
  float *lohi = malloc(tasks * (2 * sizeof(float) + 1));
  *no_memory = !lohi;
  if (!lohi) return 0;
  minmax_job j = {run, x, n, lohi, lohi + tasks, (unsigned char *)(lohi + 2 * tasks)};
  i8t_parallel_for(ctx, tasks, minmax_chunk, &j);
  int bad = 0;
  *min = j.lo[0];
  *max = j.hi[0];
  for (size_t t = 0; t < tasks; t++) {
    bad |= j.bad[t];
    *min = fminf(*min, j.lo[t]);
    *max = fmaxf(*max, j.hi[t]);
  }
  free(lohi);
  return bad;
}

i8t_status i8t_minmax_f32_ctx(i8t_context *ctx, const float *x, size_t n, float *min,
                              float *max) {
  if (!x || !min || !max || n == 0)
    return i8t_error(I8T_ERR_INVALID_ARG, "minmax: empty or NULL tensor");
  i8t_minmax_f32_fn run = i8t_kernels()->minmax_f32.run;
  int bad, no_memory = 0;
  if (ctx && n > CHUNK) bad = minmax_parallel(ctx, run, x, n, min, max, &no_memory);
  else bad = run(x, n, min, max);
  if (no_memory) return i8t_error(I8T_ERR_NO_MEMORY, "minmax: %zu partial ranges", chunks(n));
  if (bad) return i8t_error(I8T_ERR_NONFINITE, "tensor of %zu values contains NaN or Inf", n);
  return I8T_OK;
}

i8t_status i8t_minmax_f32(const float *x, size_t n, float *min, float *max) {
  return i8t_minmax_f32_ctx(NULL, x, n, min, max);
}

i8t_qparams i8t_qparams_u8(float min, float max) {
  min = fminf(min, 0.0f);
  max = fmaxf(max, 0.0f);
  float scale = fmaxf((max - min) / 255.0f, I8T_MIN_SCALE);
  /* Nudge the zero point to an integer so that real 0 is exactly q = zp. */
  float zp = nearbyintf(-min / scale);
  zp = fminf(fmaxf(zp, 0.0f), 255.0f);
  return (i8t_qparams){scale, (int32_t)zp};
}

i8t_qparams i8t_qparams_symmetric(float absmax, int bits) {
  float qmax = bits == 16 ? 32767.0f : 127.0f;
  return (i8t_qparams){fmaxf(absmax / qmax, I8T_MIN_SCALE), 0};
}

float i8t_rounding_noise(uint64_t seed, uint64_t counter) {
  return i8t_rng_uniform(i8t_rng_key(seed, (uint32_t)(counter >> 32)), (uint32_t)counter);
}

/* Calls `fn` on pieces of [0, n) that do not cross a 2^32 boundary of the
 * counter, each with its own key. */
typedef void (*piece_fn)(void *arg, size_t begin, size_t len, i8t_noise noise);

static void for_each_counter_piece(size_t n, i8t_rounding r, piece_fn fn, void *arg) {
  i8t_noise noise;
  for (size_t begin = 0, len; begin < n; begin += len) {
    len = i8t_noise_piece(r, begin, n, &noise);
    fn(arg, begin, len, noise);
  }
}

typedef struct quant_call {
  const i8t_kernel_table *t; /* read once per call: workers see the same ISA */
  const float *x;
  void *q;
  float inv_scale;
  int32_t zp;
  int kind; /* 0 u8, 1 s8, 2 s16 */
} quant_call;

static void quantize_piece(void *arg, size_t begin, size_t len, i8t_noise noise) {
  const quant_call *c = arg;
  const i8t_kernel_table *t = c->t;
  const float *x = c->x + begin;
  switch (c->kind) {
    case 0: t->quantize_f32_u8.run(x, len, c->inv_scale, c->zp, noise, (uint8_t *)c->q + begin); break;
    case 1: t->quantize_f32_s8.run(x, len, c->inv_scale, noise, (int8_t *)c->q + begin); break;
    default: t->quantize_f32_s16.run(x, len, c->inv_scale, noise, (int16_t *)c->q + begin); break;
  }
}

typedef struct quant_job {
  quant_call call;
  i8t_rounding r;
  size_t n, esize;
} quant_job;

/* One chunk of a parallel quantize: element i of the call still uses counter
 * r.counter + i, so the output is bit-identical to the serial one. */
static void quantize_chunk(void *arg, size_t task, int worker) {
  const quant_job *j = arg;
  (void)worker;
  size_t begin = task * CHUNK;
  quant_call c = j->call;
  c.x += begin;
  c.q = (char *)c.q + begin * j->esize;
  i8t_rounding r = j->r;
  r.counter += begin;
  for_each_counter_piece(I8T_MIN(CHUNK, j->n - begin), r, quantize_piece, &c);
}

static i8t_status quantize(i8t_context *ctx, const float *x, size_t n, i8t_qparams p,
                           i8t_rounding r, void *q, int kind) {
  if (!x || !q) return i8t_error(I8T_ERR_INVALID_ARG, "quantize: NULL tensor");
  if (!(p.scale > 0.0f) || !isfinite(p.scale))
    return i8t_error(I8T_ERR_INVALID_ARG, "quantize: scale %g is not a positive finite number",
                     (double)p.scale);
  quant_call c = {i8t_kernels(), x, q, 1.0f / p.scale, p.zero_point, kind};
  if (ctx && n > CHUNK) {
    quant_job j = {c, r, n, kind == 2 ? 2u : 1u};
    i8t_parallel_for(ctx, chunks(n), quantize_chunk, &j);
  } else {
    for_each_counter_piece(n, r, quantize_piece, &c);
  }
  return I8T_OK;
}

i8t_status i8t_quantize_f32_u8_ctx(i8t_context *ctx, const float *x, size_t n, i8t_qparams p,
                                   i8t_rounding r, uint8_t *q) {
  return quantize(ctx, x, n, p, r, q, 0);
}
i8t_status i8t_quantize_f32_s8_ctx(i8t_context *ctx, const float *x, size_t n, i8t_qparams p,
                                   i8t_rounding r, int8_t *q) {
  return quantize(ctx, x, n, p, r, q, 1);
}
i8t_status i8t_quantize_f32_s16_ctx(i8t_context *ctx, const float *x, size_t n, i8t_qparams p,
                                    i8t_rounding r, int16_t *q) {
  return quantize(ctx, x, n, p, r, q, 2);
}
i8t_status i8t_quantize_f32_u8(const float *x, size_t n, i8t_qparams p, i8t_rounding r,
                               uint8_t *q) {
  return quantize(NULL, x, n, p, r, q, 0);
}
i8t_status i8t_quantize_f32_s8(const float *x, size_t n, i8t_qparams p, i8t_rounding r,
                               int8_t *q) {
  return quantize(NULL, x, n, p, r, q, 1);
}
i8t_status i8t_quantize_f32_s16(const float *x, size_t n, i8t_qparams p, i8t_rounding r,
                                int16_t *q) {
  return quantize(NULL, x, n, p, r, q, 2);
}

i8t_status i8t_quantize_auto_u8_ctx(i8t_context *ctx, const float *x, size_t n,
                                    i8t_rounding r, uint8_t *q, i8t_qparams *p) {
  float lo, hi;
  i8t_status st = i8t_minmax_f32_ctx(ctx, x, n, &lo, &hi);
  if (st) return st;
  *p = i8t_qparams_u8(lo, hi);
  return i8t_quantize_f32_u8_ctx(ctx, x, n, *p, r, q);
}

static i8t_status absmax(i8t_context *ctx, const float *x, size_t n, float *out) {
  float lo, hi;
  i8t_status st = i8t_minmax_f32_ctx(ctx, x, n, &lo, &hi);
  *out = fmaxf(-lo, hi);
  return st;
}

i8t_status i8t_quantize_auto_s8_ctx(i8t_context *ctx, const float *x, size_t n,
                                    i8t_rounding r, int8_t *q, i8t_qparams *p) {
  float m;
  i8t_status st = absmax(ctx, x, n, &m);
  if (st) return st;
  *p = i8t_qparams_symmetric(m, 8);
  return i8t_quantize_f32_s8_ctx(ctx, x, n, *p, r, q);
}

i8t_status i8t_quantize_auto_s16_ctx(i8t_context *ctx, const float *x, size_t n,
                                     i8t_rounding r, int16_t *q, i8t_qparams *p) {
  float m;
  i8t_status st = absmax(ctx, x, n, &m);
  if (st) return st;
  *p = i8t_qparams_symmetric(m, 16);
  return i8t_quantize_f32_s16_ctx(ctx, x, n, *p, r, q);
}

i8t_status i8t_quantize_auto_u8(const float *x, size_t n, i8t_rounding r, uint8_t *q,
                                i8t_qparams *p) {
  return i8t_quantize_auto_u8_ctx(NULL, x, n, r, q, p);
}
i8t_status i8t_quantize_auto_s8(const float *x, size_t n, i8t_rounding r, int8_t *q,
                                i8t_qparams *p) {
  return i8t_quantize_auto_s8_ctx(NULL, x, n, r, q, p);
}
i8t_status i8t_quantize_auto_s16(const float *x, size_t n, i8t_rounding r, int16_t *q,
                                 i8t_qparams *p) {
  return i8t_quantize_auto_s16_ctx(NULL, x, n, r, q, p);
}

typedef struct channel_job {
  const float *x;
  size_t len;
  i8t_rounding r;
  int8_t *q;
  float *scales;
  atomic_size_t first_bad; /* lowest channel with NaN or Inf; SIZE_MAX: none */
} channel_job;

/* One output channel; channel c uses counters from r.counter + c * len. */
static void quantize_channel(void *arg, size_t c, int worker) {
  channel_job *j = arg;
  (void)worker;
  i8t_qparams p;
  i8t_rounding rc = j->r;
  rc.counter = j->r.counter + c * j->len;
  if (i8t_quantize_auto_s8(j->x + c * j->len, j->len, rc, j->q + c * j->len, &p) == I8T_OK) {
    j->scales[c] = p.scale;
    return;
  }
  size_t seen = atomic_load(&j->first_bad);
  while (c < seen && !atomic_compare_exchange_weak(&j->first_bad, &seen, c)) {
  }
}

i8t_status i8t_quantize_per_channel_s8_ctx(i8t_context *ctx, const float *x, size_t channels,
                                           size_t len, i8t_rounding r, int8_t *q,
                                           float *scales) {
  if (!x || !q || !scales || channels == 0 || len == 0)
    return i8t_error(I8T_ERR_INVALID_ARG, "per-channel quantize: empty or NULL tensor");
  channel_job j = {x, len, r, q, scales, SIZE_MAX};
  i8t_parallel_for(ctx, channels, quantize_channel, &j);
  size_t bad = atomic_load(&j.first_bad);
  if (bad != SIZE_MAX)
    return i8t_error(I8T_ERR_NONFINITE, "per-channel quantize: channel %zu of %zu contains NaN or Inf",
                     bad, channels);
  return I8T_OK;
}

i8t_status i8t_quantize_per_channel_s8(const float *x, size_t channels, size_t len,
                                       i8t_rounding r, int8_t *q, float *scales) {
  return i8t_quantize_per_channel_s8_ctx(NULL, x, channels, len, r, q, scales);
}

void i8t_dequantize_u8(const uint8_t *q, size_t n, i8t_qparams p, float *x) {
  for (size_t i = 0; i < n; i++) x[i] = p.scale * (float)((int32_t)q[i] - p.zero_point);
}
void i8t_dequantize_s8(const int8_t *q, size_t n, i8t_qparams p, float *x) {
  for (size_t i = 0; i < n; i++) x[i] = p.scale * (float)q[i];
}
void i8t_dequantize_s16(const int16_t *q, size_t n, i8t_qparams p, float *x) {
  for (size_t i = 0; i < n; i++) x[i] = p.scale * (float)q[i];
}

void i8t_colwise_stats_u8(const uint8_t *x, size_t rows, size_t cols, size_t ld,
                          uint8_t *min, uint8_t *max, uint32_t *sum) {
  i8t_kernels()->colwise_stats_u8.run(x, rows, cols, ld, min, max, sum);
}
