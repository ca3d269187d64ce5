/* The quantizer's public entry points: range -> parameters, and the calls
 * into the selected table's kernels. The stochastic stream's 64-bit counter
 * is split here so that kernels only ever see a 32-bit counter and a key. */
#include <math.h>

#include "internal.h"
#include "kernel_table.h"
#include "rng.h"

i8t_status i8t_minmax_f32(const float *x, size_t n, float *min, float *max) {
  if (!x || !min || !max || n == 0)
    return i8t_error(I8T_ERR_INVALID_ARG, "minmax: empty or NULL tensor");
  if (i8t_kernels()->minmax_f32.run(x, n, min, max))
    return i8t_error(I8T_ERR_NONFINITE, "tensor of %zu values contains NaN or Inf", n);
  return I8T_OK;
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
  size_t begin = 0;
  while (begin < n) {
    uint64_t ctr = r.counter + begin;
    uint64_t room = (1ull << 32) - (uint32_t)ctr;
    size_t len = (size_t)I8T_MIN((uint64_t)(n - begin), room);
    i8t_noise noise = {r.stochastic, i8t_rng_key(r.seed, (uint32_t)(ctr >> 32)), (uint32_t)ctr};
    fn(arg, begin, len, noise);
    begin += len;
  }
}

typedef struct quant_call {
  const float *x;
  void *q;
  float inv_scale;
  int32_t zp;
  int kind; /* 0 u8, 1 s8, 2 s16 */
} quant_call;

static void quantize_piece(void *arg, size_t begin, size_t len, i8t_noise noise) {
  const quant_call *c = arg;
  const i8t_kernel_table *t = i8t_kernels();
  const float *x = c->x + begin;
  switch (c->kind) {
    case 0: t->quantize_f32_u8.run(x, len, c->inv_scale, c->zp, noise, (uint8_t *)c->q + begin); break;
    case 1: t->quantize_f32_s8.run(x, len, c->inv_scale, noise, (int8_t *)c->q + begin); break;
    default: t->quantize_f32_s16.run(x, len, c->inv_scale, noise, (int16_t *)c->q + begin); break;
  }
}

static i8t_status quantize(const float *x, size_t n, i8t_qparams p, i8t_rounding r, void *q,
                           int kind) {
  if (!x || !q) return i8t_error(I8T_ERR_INVALID_ARG, "quantize: NULL tensor");
  if (!(p.scale > 0.0f) || !isfinite(p.scale))
    return i8t_error(I8T_ERR_INVALID_ARG, "quantize: scale %g is not a positive finite number",
                     (double)p.scale);
  quant_call c = {x, q, 1.0f / p.scale, p.zero_point, kind};
  for_each_counter_piece(n, r, quantize_piece, &c);
  return I8T_OK;
}

i8t_status i8t_quantize_f32_u8(const float *x, size_t n, i8t_qparams p, i8t_rounding r,
                               uint8_t *q) {
  return quantize(x, n, p, r, q, 0);
}
i8t_status i8t_quantize_f32_s8(const float *x, size_t n, i8t_qparams p, i8t_rounding r,
                               int8_t *q) {
  return quantize(x, n, p, r, q, 1);
}
i8t_status i8t_quantize_f32_s16(const float *x, size_t n, i8t_qparams p, i8t_rounding r,
                                int16_t *q) {
  return quantize(x, n, p, r, q, 2);
}

i8t_status i8t_quantize_auto_u8(const float *x, size_t n, i8t_rounding r, uint8_t *q,
                                i8t_qparams *p) {
  float lo, hi;
  i8t_status st = i8t_minmax_f32(x, n, &lo, &hi);
  if (st) return st;
  *p = i8t_qparams_u8(lo, hi);
  return i8t_quantize_f32_u8(x, n, *p, r, q);
}

static i8t_status absmax(const float *x, size_t n, float *out) {
  float lo, hi;
  i8t_status st = i8t_minmax_f32(x, n, &lo, &hi);
  *out = fmaxf(-lo, hi);
  return st;
}

i8t_status i8t_quantize_auto_s8(const float *x, size_t n, i8t_rounding r, int8_t *q,
                                i8t_qparams *p) {
  float m;
  i8t_status st = absmax(x, n, &m);
  if (st) return st;
  *p = i8t_qparams_symmetric(m, 8);
  return i8t_quantize_f32_s8(x, n, *p, r, q);
}

i8t_status i8t_quantize_auto_s16(const float *x, size_t n, i8t_rounding r, int16_t *q,
                                 i8t_qparams *p) {
  float m;
  i8t_status st = absmax(x, n, &m);
  if (st) return st;
  *p = i8t_qparams_symmetric(m, 16);
  return i8t_quantize_f32_s16(x, n, *p, r, q);
}

i8t_status i8t_quantize_per_channel_s8(const float *x, size_t channels, size_t len,
                                       i8t_rounding r, int8_t *q, float *scales) {
  if (!x || !q || !scales || channels == 0 || len == 0)
    return i8t_error(I8T_ERR_INVALID_ARG, "per-channel quantize: empty or NULL tensor");
  for (size_t c = 0; c < channels; c++) {
    i8t_qparams p;
    i8t_rounding rc = r;
    rc.counter = r.counter + c * len;
    i8t_status st = i8t_quantize_auto_s8(x + c * len, len, rc, q + c * len, &p);
    if (st) return st;
    scales[c] = p.scale;
  }
  return I8T_OK;
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
