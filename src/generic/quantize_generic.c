/* Portable quantize kernels and reductions: the definition of every
 * elementwise result (SIMD versions must match them bit for bit). */
#include <math.h>

#include "../quantize_scalar.h"
#include "generic_kernels.h"

int i8t_minmax_f32__generic(const float *x, size_t n, float *min, float *max) {
  float lo = INFINITY, hi = -INFINITY;
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    float v = x[i];
    bad |= !isfinite(v);
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  *min = lo;
  *max = hi;
  return bad;
}

/* One loop for the three formats: zp is 0 for the signed ones. */
#define DEFINE_GENERIC_QUANTIZE(NAME, OUT_TYPE, LO, HI)                              \
  static void NAME##_core(const float *x, size_t n, float inv_scale, int32_t zp,     \
                          i8t_noise noise, OUT_TYPE *q) {                            \
    for (size_t i = 0; i < n; i++) {                                                 \
      float r = i8t_round_scaled(x[i] * inv_scale, noise, (uint32_t)i) + (float)zp;  \
      q[i] = (OUT_TYPE)i8t_clamp_to_int(r, LO, HI);                                  \
    }                                                                                \
  }

DEFINE_GENERIC_QUANTIZE(quantize_u8, uint8_t, 0.0f, 255.0f)
DEFINE_GENERIC_QUANTIZE(quantize_s8, int8_t, -127.0f, 127.0f)
DEFINE_GENERIC_QUANTIZE(quantize_s16, int16_t, -32767.0f, 32767.0f)

void i8t_quantize_f32_u8__generic(const float *x, size_t n, float inv_scale, int32_t zp,
                                  i8t_noise noise, uint8_t *q) {
  quantize_u8_core(x, n, inv_scale, zp, noise, q);
}
void i8t_quantize_f32_s8__generic(const float *x, size_t n, float inv_scale,
                                  i8t_noise noise, int8_t *q) {
  quantize_s8_core(x, n, inv_scale, 0, noise, q);
}
void i8t_quantize_f32_s16__generic(const float *x, size_t n, float inv_scale,
                                   i8t_noise noise, int16_t *q) {
  quantize_s16_core(x, n, inv_scale, 0, noise, q);
}

/* Columns are handled in groups of up to 64 whose running min/max/sum live
 * in local arrays and are stored once at the end: callers run this on
 * adjacent row segments from several threads with outputs packed next to
 * each other, and per-row stores to shared cache lines made two threads
 * slower than one (false sharing). Local arrays also free the compiler from
 * assuming the outputs alias the input. */
void i8t_colwise_stats_u8__generic(const uint8_t *x, size_t rows, size_t cols, size_t ld,
                                   uint8_t *min, uint8_t *max, uint32_t *sum) {
  enum { GROUP = 64 };
  for (size_t c0 = 0; c0 < cols; c0 += GROUP) {
    size_t n = cols - c0 < GROUP ? cols - c0 : GROUP;
    uint8_t lo[GROUP], hi[GROUP];
    uint32_t total[GROUP];
    for (size_t c = 0; c < n; c++) {
      lo[c] = 255;
      hi[c] = 0;
      total[c] = 0;
    }
    for (size_t r = 0; r < rows; r++) {
      const uint8_t *row = x + r * ld + c0;
      for (size_t c = 0; c < n; c++) {
        uint8_t v = row[c];
        lo[c] = v < lo[c] ? v : lo[c];
        hi[c] = v > hi[c] ? v : hi[c];
        total[c] += v;
      }
    }
    for (size_t c = 0; c < n; c++) {
      min[c0 + c] = lo[c];
      max[c0 + c] = hi[c];
      sum[c0 + c] = total[c];
    }
  }
}
