/* The quantizer: rounding error bounds, unbiased stochastic rounding, zero
 * ranges, NaN/Inf rejection, reproducibility, and every ISA's quantize and
 * reduction kernels (and the layer-pass kernels of src/nn) bit-identical to
 * the portable ones. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "isa_list.h"
#include "kernel_table.h"
#include "rng.h"
#include "test_util.h"

static float *random_floats(size_t n, float lo, float hi, uint64_t seed) {
  float *x = malloc(n * sizeof *x);
  for (size_t i = 0; i < n; i++) x[i] = test_rand_float(&seed, lo, hi);
  return x;
}

static void test_nearest_error_within_half_step(void **state) {
  (void)state;
  const size_t n = 10007;
  float *x = random_floats(n, -3.0f, 5.0f, 1), *y = malloc(n * sizeof *y);
  uint8_t *q8 = malloc(n);
  i8t_qparams p;
  i8t_rounding r = {0, 0, 0};
  assert_int_equal(i8t_quantize_auto_u8(x, n, r, q8, &p), I8T_OK);
  i8t_dequantize_u8(q8, n, p, y);
  for (size_t i = 0; i < n; i++) assert_true(fabsf(y[i] - x[i]) <= p.scale * 0.5f * 1.0001f);
  int8_t *s8 = malloc(n);
  assert_int_equal(i8t_quantize_auto_s8(x, n, r, s8, &p), I8T_OK);
  i8t_dequantize_s8(s8, n, p, y);
  for (size_t i = 0; i < n; i++) {
    assert_true(fabsf(y[i] - x[i]) <= p.scale * 0.5f * 1.0001f);
    assert_true(s8[i] >= -127);
  }
  free(x); free(y); free(q8); free(s8);
}

static void test_per_channel_scales(void **state) {
  (void)state;
  enum { C = 5, L = 37 };
  float x[C * L], y[L];
  int8_t q[C * L];
  float scales[C];
  uint64_t rng = 17;
  for (int c = 0; c < C; c++)
    for (int i = 0; i < L; i++) x[c * L + i] = test_rand_float(&rng, -1.0f, 1.0f) * (float)(c + 1) * 10.0f;
  i8t_rounding r = {0, 0, 0};
  assert_int_equal(i8t_quantize_per_channel_s8(x, C, L, r, q, scales), I8T_OK);
  for (int c = 0; c < C; c++) {
    float absmax = 0;
    for (int i = 0; i < L; i++) absmax = fmaxf(absmax, fabsf(x[c * L + i]));
    assert_float_equal(scales[c], absmax / 127.0f, absmax * 1e-6f);
    i8t_dequantize_s8(q + c * L, L, (i8t_qparams){scales[c], 0}, y);
    for (int i = 0; i < L; i++) assert_true(fabsf(y[i] - x[c * L + i]) <= scales[c] * 0.5001f);
  }
}

static void test_zero_point_nudging(void **state) {
  (void)state;
  i8t_qparams p = i8t_qparams_u8(0.5f, 3.0f); /* widened to [0, 3] */
  assert_int_equal(p.zero_point, 0);
  p = i8t_qparams_u8(-3.0f, -1.0f); /* widened to [-3, 0] */
  assert_int_equal(p.zero_point, 255);
  p = i8t_qparams_u8(-1.0f, 1.0f);
  assert_true(p.zero_point == 127 || p.zero_point == 128);
  p = i8t_qparams_u8(0.0f, 0.0f);
  assert_true(p.scale >= I8T_MIN_SCALE);
}

static void test_real_zero_is_exact(void **state) {
  (void)state;
  float x[5] = {-1.3f, 0.0f, 2.7f, 0.0f, 0.4f}, y[5];
  uint8_t q[5];
  i8t_qparams p;
  i8t_rounding r = {0, 0, 0};
  assert_int_equal(i8t_quantize_auto_u8(x, 5, r, q, &p), I8T_OK);
  i8t_dequantize_u8(q, 5, p, y);
  assert_true(y[1] == 0.0f && y[3] == 0.0f);
}

/* E[dequantize(q)] = x: the mean over many independent draws of one value
 * must be within 5 standard errors of x (scale/2/sqrt(n) bounds the error). */
static void check_unbiased(int bits) {
  const size_t n = 200000;
  const float values[] = {0.3f, -0.77f, 0.5f, 0.01f};
  float *x = malloc(n * sizeof *x);
  for (size_t v = 0; v < 4; v++) {
    for (size_t i = 0; i < n; i++) x[i] = values[v];
    x[0] = 1.0f; /* fixes the range at [-1, 1] */
    x[1] = -1.0f;
    i8t_qparams p = i8t_qparams_symmetric(1.0f, bits);
    i8t_rounding r = {1, 42 + v, 1000};
    double sum = 0;
    if (bits == 8) {
      int8_t *q = malloc(n);
      assert_int_equal(i8t_quantize_f32_s8(x, n, p, r, q), I8T_OK);
      for (size_t i = 2; i < n; i++) sum += q[i] * (double)p.scale;
      free(q);
    } else {
      int16_t *q = malloc(n * 2);
      assert_int_equal(i8t_quantize_f32_s16(x, n, p, r, q), I8T_OK);
      for (size_t i = 2; i < n; i++) sum += q[i] * (double)p.scale;
      free(q);
    }
    double mean = sum / (double)(n - 2);
    double tol = 5.0 * p.scale * 0.5 / sqrt((double)n);
    if (fabs(mean - values[v]) > tol)
      fail_msg("%d-bit stochastic mean %.7f for x = %.7f (tolerance %.2g)", bits, mean,
               (double)values[v], tol);
  }
  free(x);
}

static void test_stochastic_unbiased(void **state) {
  (void)state;
  check_unbiased(8);
  check_unbiased(16);
}

static void test_zero_range_gives_no_nan(void **state) {
  (void)state;
  float x[64] = {0}, y[64];
  uint8_t q[64];
  int8_t s[64];
  i8t_qparams p;
  i8t_rounding r = {1, 7, 0};
  assert_int_equal(i8t_quantize_auto_u8(x, 64, r, q, &p), I8T_OK);
  assert_true(p.scale > 0 && isfinite(p.scale));
  i8t_dequantize_u8(q, 64, p, y);
  for (int i = 0; i < 64; i++) assert_true(y[i] == 0.0f);
  assert_int_equal(i8t_quantize_auto_s8(x, 64, r, s, &p), I8T_OK);
  for (int i = 0; i < 64; i++) assert_int_equal(s[i], 0);
}

static void test_nonfinite_is_an_error(void **state) {
  (void)state;
  const size_t n = 1000;
  float *x = random_floats(n, -1, 1, 3);
  uint8_t *q = malloc(n);
  i8t_qparams p;
  i8t_rounding r = {0, 0, 0};
  const float bad[3] = {NAN, INFINITY, -INFINITY};
  const size_t where[4] = {0, 5, 511, 999}; /* SIMD body, tail and head */
  for (int b = 0; b < 3; b++) {
    for (int w = 0; w < 4; w++) {
      float keep = x[where[w]];
      x[where[w]] = bad[b];
      assert_int_equal(i8t_quantize_auto_u8(x, n, r, q, &p), I8T_ERR_NONFINITE);
      assert_true(strstr(i8t_last_error(), "NaN") != NULL);
      x[where[w]] = keep;
    }
  }
  free(x);
  free(q);
}

static void test_seed_reproducible(void **state) {
  (void)state;
  const size_t n = 4099;
  float *x = random_floats(n, -2, 2, 5);
  int8_t *q1 = malloc(n), *q2 = malloc(n), *q3 = malloc(n);
  i8t_qparams p = i8t_qparams_symmetric(2.0f, 8);
  i8t_rounding r = {1, 1234, 77};
  assert_int_equal(i8t_quantize_f32_s8(x, n, p, r, q1), I8T_OK);
  assert_int_equal(i8t_quantize_f32_s8(x, n, p, r, q2), I8T_OK);
  assert_memory_equal(q1, q2, n);
  r.seed = 1235;
  assert_int_equal(i8t_quantize_f32_s8(x, n, p, r, q3), I8T_OK);
  assert_true(memcmp(q1, q3, n) != 0);
  /* The stream is counter-based: quantizing the second half alone with the
   * counter advanced gives the same bits as the whole call. */
  r.seed = 1234;
  r.counter = 77 + 2000;
  assert_int_equal(i8t_quantize_f32_s8(x + 2000, n - 2000, p, r, q3), I8T_OK);
  assert_memory_equal(q1 + 2000, q3, n - 2000);
  free(x); free(q1); free(q2); free(q3);
}

static void test_noise_uniform(void **state) {
  (void)state;
  int buckets[16] = {0};
  const int n = 160000;
  for (int i = 0; i < n; i++) {
    float u = i8t_rounding_noise(9, (uint64_t)i);
    assert_true(u >= 0.0f && u < 1.0f);
    buckets[(int)(u * 16)]++;
  }
  for (int b = 0; b < 16; b++) assert_true(abs(buckets[b] - n / 16) < 5 * 100); /* sd = 97 */
}

/* ---- every ISA's elementwise kernels vs the generic ones, bit for bit ---- */

/* Inputs that exercise ties (k + 0.5 steps), clamping and both signs. */
static float *adversarial_floats(size_t n, uint64_t seed) {
  float *x = random_floats(n, -300.0f, 300.0f, seed);
  for (size_t i = 0; i < n; i += 7) x[i] = (float)((int)(i % 600) - 300) + 0.5f;
  for (size_t i = 3; i < n; i += 97) x[i] = (i & 1) ? 1e9f : -1e9f;
  /* beyond int32 once scaled, infinite, NaN (every path: the low bound) */
  const float extreme[] = {1e10f, -1e10f, INFINITY, -INFINITY, NAN, 3e9f};
  for (size_t i = 5; i < n; i += 31) x[i] = extreme[(i / 31) % 6];
  return x;
}

/* colwise_stats_u8 of table t equals the generic one's (min, max, sum of
 * each of `cols` <= 128 columns); returns column 5's sum (0 if cols <= 5). */
static uint32_t expect_colwise_same(const i8t_kernel_table *t, const i8t_kernel_table *g,
                                    const uint8_t *m, size_t rows, size_t cols, size_t ld) {
  uint8_t mn1[128], mx1[128], mn2[128], mx2[128];
  uint32_t s1[128], s2[128];
  assert_true(cols <= 128);
  t->colwise_stats_u8.run(m, rows, cols, ld, mn1, mx1, s1);
  g->colwise_stats_u8.run(m, rows, cols, ld, mn2, mx2, s2);
  assert_memory_equal(mn1, mn2, cols);
  assert_memory_equal(mx1, mx2, cols);
  assert_memory_equal(s1, s2, cols * 4);
  return cols > 5 ? s1[5] : 0;
}

static void check_elementwise(i8t_isa isa) {
  test_select_isa_or_skip(isa);
  const i8t_kernel_table *t = i8t_kernels_for_isa(isa), *g = i8t_kernels_for_isa(I8T_ISA_GENERIC);
  const size_t sizes[] = {1, 7, 31, 64, 100, 1027};
  for (size_t si = 0; si < 6; si++) {
    size_t n = sizes[si];
    float *x = adversarial_floats(n, 11 + n);
    for (int stoch = 0; stoch < 2; stoch++) {
      i8t_noise noise = {stoch, 0xABCDEF01u, 0xFFFFFFF0u}; /* counter wraps inside */
      uint8_t u1[1100], u2[1100];
      int8_t s1[1100], s2[1100];
      int16_t w1[1100], w2[1100];
      t->quantize_f32_u8.run(x, n, 0.37f, 128, noise, u1);
      g->quantize_f32_u8.run(x, n, 0.37f, 128, noise, u2);
      assert_memory_equal(u1, u2, n);
      t->quantize_f32_s8.run(x, n, 0.41f, noise, s1);
      g->quantize_f32_s8.run(x, n, 0.41f, noise, s2);
      assert_memory_equal(s1, s2, n);
      t->quantize_f32_s16.run(x, n, 97.3f, noise, w1);
      g->quantize_f32_s16.run(x, n, 97.3f, noise, w2);
      assert_memory_equal(w1, w2, n * 2);
    }
    for (size_t i = 0; i < n; i++) x[i] = isfinite(x[i]) ? x[i] : 0.0f; /* minmax: finite */
    float mn1, mx1, mn2, mx2;
    assert_int_equal(t->minmax_f32.run(x, n, &mn1, &mx1), 0);
    g->minmax_f32.run(x, n, &mn2, &mx2);
    assert_true(mn1 == mn2 && mx1 == mx2);
    x[n - 1] = NAN;
    assert_int_not_equal(t->minmax_f32.run(x, n, &mn1, &mx1), 0);
    x[n - 1] = 0.0f;
    x[0] = -INFINITY;
    assert_int_not_equal(t->minmax_f32.run(x, n, &mn1, &mx1), 0);
    free(x);
  }
  /* Range BN's per-column stats on u8, with odd column counts and strides. */
  const size_t shapes[][2] = {{1, 1}, {7, 3}, {100, 16}, {33, 65}, {1000, 37}, {64, 128}};
  uint64_t rng = 5;
  for (size_t si = 0; si < 6; si++) {
    size_t rows = shapes[si][0], cols = shapes[si][1], ld = cols + 5;
    uint8_t *m = malloc(rows * ld);
    for (size_t i = 0; i < rows * ld; i++) m[i] = (uint8_t)(si == 2 ? 255 : test_rand(&rng));
    expect_colwise_same(t, g, m, rows, cols, ld);
    free(m);
  }
  /* Narrow contiguous matrices (ld = cols dividing a vector: several rows per
   * vector, lanes folded into columns), leftover rows, and all-255 columns
   * over more than 257 vector rows (the 16-bit partial sums' widening). */
  const size_t narrow[][2] = {{1, 1}, {7, 2}, {100, 16}, {1001, 16}, {33, 32}, {5003, 4},
                              {3, 8}, {2400, 16}, {999, 32}};
  for (size_t si = 0; si < 9; si++) {
    size_t rows = narrow[si][0], cols = narrow[si][1];
    uint8_t *m = malloc(rows * cols);
    for (size_t i = 0; i < rows * cols; i++) m[i] = (uint8_t)(si == 7 ? 255 : test_rand(&rng));
    uint32_t sum5 = expect_colwise_same(t, g, m, rows, cols, cols);
    if (si == 7) assert_int_equal(sum5, 255u * rows);
    free(m);
  }
}

/* ---- the layer-pass kernels (kernel_table.h) vs the generic ones ---- */

/* Floats with -0, +-Inf, exact ties of the u8/s8 products and 2^24-scale values. */
static void adversarial_fill(float *v, size_t n, uint64_t *rng) {
  for (size_t i = 0; i < n; i++) v[i] = test_rand_float(rng, -40.0f, 40.0f);
  for (size_t i = 0; i < n; i += 5) v[i] = -0.0f;
  for (size_t i = 2; i < n; i += 11) v[i] = (i & 1) ? INFINITY : -INFINITY;
  for (size_t i = 3; i < n; i += 13) v[i] = (float)((int32_t)i - 500) * 16777215.0f;
}

static void check_layer_kernels(const i8t_kernel_table *t, const i8t_kernel_table *g, size_t n,
                                uint64_t rng) {
  float *v1 = malloc(n * sizeof *v1), *v2 = malloc(n * sizeof *v2);
  float *m = malloc(n * sizeof *m), *a = malloc(n * sizeof *a);
  int32_t *y = malloc(n * sizeof *y);
  int8_t *q8 = malloc(n);
  uint8_t *x = malloc(n);
  for (size_t i = 0; i < n; i++) {
    y[i] = (int32_t)test_rand(&rng); /* above 2^24: the conversion rounds */
    q8[i] = (int8_t)test_rand(&rng);
    x[i] = (uint8_t)test_rand(&rng);
    m[i] = test_rand_float(&rng, -3.0f, 3.0f);
    a[i] = i % 9 == 0 ? -0.0f : test_rand_float(&rng, -100.0f, 100.0f);
  }
  for (size_t i = 0; i < n; i += 17) y[i] = i & 1 ? INT32_MAX : INT32_MIN, q8[i] = -128;
  for (size_t i = 1; i < n; i += 17) x[i] = i & 2 ? 255 : 0, q8[i] = 127;
  for (size_t i = 4; i < n; i += 19) m[i] = -0.0f; /* -0 * q + -0 = -0: kept, not +0 */
  for (int acc = 0; acc < 2; acc++) {
    adversarial_fill(v1, n, &rng);
    memcpy(v2, v1, n * sizeof *v1);
    t->axpy_s32_f32.run(n, 3.7e-5f, y, acc, v1);
    g->axpy_s32_f32.run(n, 3.7e-5f, y, acc, v2);
    assert_memory_equal(v1, v2, n * sizeof *v1);
    t->axpy_s8_f32.run(n, -0.013f, q8, acc, v1);
    g->axpy_s8_f32.run(n, -0.013f, q8, acc, v2);
    assert_memory_equal(v1, v2, n * sizeof *v1);
    /* a fresh sum is 0 + term: -0 terms (q = 0, negative scale) give +0 */
    t->axpy_s8_f32.run(n, -0.5f, q8, 0, v1);
    for (size_t i = 0; i < n; i++)
      if (q8[i] == 0) assert_false(signbit(v1[i]));
  }
  for (int acc = 0; acc < 2; acc++) {
    adversarial_fill(v1, n, &rng);
    memcpy(v2, v1, n * sizeof *v1);
    t->affine_u8_f32.run(n, x, m, a, acc, v1);
    g->affine_u8_f32.run(n, x, m, a, acc, v2);
    assert_memory_equal(v1, v2, n * sizeof *v1);
  }
  /* dense part of BN backward: v = a g + b, then += e (x - qbar) */
  t->affine_s8_f32.run(n, q8, m, a, v1);
  g->affine_s8_f32.run(n, q8, m, a, v2);
  assert_memory_equal(v1, v2, n * sizeof *v1);
  t->add_centered_u8_f32.run(n, x, a, m, v1);
  g->add_centered_u8_f32.run(n, x, a, m, v2);
  assert_memory_equal(v1, v2, n * sizeof *v1);
  adversarial_fill(v1, n, &rng);
  memcpy(v2, v1, n * sizeof *v1);
  t->mask_u8_f32.run(n, x, v1); /* x: bytes 0 and 1..255 both count */
  g->mask_u8_f32.run(n, x, v2);
  assert_memory_equal(v1, v2, n * sizeof *v1);
  float *w = malloc(n * sizeof *w);
  adversarial_fill(w, n, &rng);
  for (size_t i = 6; i < n; i += 23) w[i] = NAN;
  t->mask_pos_f32.run(n, w, v1);
  g->mask_pos_f32.run(n, w, v2);
  assert_memory_equal(v1, v2, n * sizeof *v1);
  free(w);
  /* int32 extremes, with INT32_MIN / INT32_MAX among the values */
  int32_t mn1, mx1, mn2, mx2;
  t->minmax_s32.run(n, y, &mn1, &mx1);
  g->minmax_s32.run(n, y, &mn2, &mx2);
  assert_int_equal(mn1, mn2);
  assert_int_equal(mx1, mx2);
  /* Range BN extremes lanes: start anywhere, two blocks each. */
  uint8_t *mn[2], *mx[2];
  uint16_t *amn[2], *amx[2];
  for (int k = 0; k < 2; k++) {
    mn[k] = malloc(n), mx[k] = malloc(n);
    amn[k] = malloc(n * 2), amx[k] = malloc(n * 2);
  }
  for (size_t i = 0; i < n; i++) {
    mn[0][i] = i % 4 ? (uint8_t)test_rand(&rng) : x[i]; /* ties: the earlier block stays */
    mx[0][i] = i % 4 ? (uint8_t)test_rand(&rng) : x[i];
    amn[0][i] = (uint16_t)test_rand(&rng), amx[0][i] = (uint16_t)test_rand(&rng);
  }
  memcpy(mn[1], mn[0], n), memcpy(mx[1], mx[0], n);
  memcpy(amn[1], amn[0], n * 2), memcpy(amx[1], amx[0], n * 2);
  for (uint16_t b = 7; b < 9; b++) {
    t->bn_lane_extremes.run(1, n, 0, b, x, mn[0], mx[0], amn[0], amx[0]);
    g->bn_lane_extremes.run(1, n, 0, b, x, mn[1], mx[1], amn[1], amx[1]);
  }
  assert_memory_equal(mn[0], mn[1], n);
  assert_memory_equal(mx[0], mx[1], n);
  assert_memory_equal(amn[0], amn[1], n * 2);
  assert_memory_equal(amx[0], amx[1], n * 2);
  for (int k = 0; k < 2; k++) free(mn[k]), free(mx[k]), free(amn[k]), free(amx[k]);
  free(v1), free(v2), free(m), free(a), free(y), free(q8), free(x);
}

/* A GEMM output straight to u8: bit-identical across ISAs, and equal to
 * its definition, (float)y * s then quantize_f32_u8, on int32 extremes,
 * exact ties (odd y times 0.5), -0, NaN and infinite scales, values far
 * outside the u8 range, both roundings, and a counter that wraps inside the
 * call. */
static void check_requantize(const i8t_kernel_table *t, const i8t_kernel_table *g, size_t n,
                             uint64_t rng) {
  int32_t *y = malloc(n * sizeof *y);
  float *s = malloc(n * sizeof *s), *v = malloc(n * sizeof *v);
  uint8_t *q1 = malloc(n), *q2 = malloc(n), *q3 = malloc(n);
  for (size_t i = 0; i < n; i++) {
    y[i] = i % 3 ? (int32_t)test_rand(&rng) : (int32_t)(test_rand(&rng) % 601) - 300;
    s[i] = i % 3 ? test_rand_float(&rng, -3.0f, 3.0f) : 0.5f;
  }
  for (size_t i = 0; i < n; i += 17) y[i] = i & 1 ? INT32_MAX : INT32_MIN;
  for (size_t i = 4; i < n; i += 19) s[i] = -0.0f;
  for (size_t i = 5; i < n; i += 23) s[i] = i & 1 ? NAN : (i & 2 ? INFINITY : -INFINITY);
  const struct { float inv; int32_t zp; } cases[] = {{1.0f, 128}, {2.5e-8f, 3}, {0.37f, 0}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    for (int stoch = 0; stoch < 2; stoch++) {
      const i8t_noise noise = {stoch, 0x9E3779B9u, 0xFFFFFFF3u};
      t->requantize_s32_u8.run(n, y, s, cases[c].inv, cases[c].zp, noise, q1);
      g->requantize_s32_u8.run(n, y, s, cases[c].inv, cases[c].zp, noise, q2);
      for (size_t i = 0; i < n; i++) v[i] = (float)y[i] * s[i];
      g->quantize_f32_u8.run(v, n, cases[c].inv, cases[c].zp, noise, q3);
      assert_memory_equal(q1, q2, n);
      assert_memory_equal(q2, q3, n);
    }
  free(y), free(s), free(v), free(q1), free(q2), free(q3);
}

/* The last term of a u8 sum straight to u8: bit-identical across ISAs, and
 * equal to its definition, affine_u8_f32 (onto the earlier terms' sum or
 * not), the ReLU and its mask (or none), then quantize_f32_u8: with and without
 * an earlier sum, ReLU and mask, both roundings and a wrapping counter, on
 * x = 0 and 255, -0, NaN and infinite parameters, sums far outside the u8
 * range and exact ties. */
static void check_affine_quantize(const i8t_kernel_table *t, const i8t_kernel_table *g,
                                  size_t n, uint64_t rng) {
  uint8_t *x = malloc(n), *q1 = malloc(n), *q2 = malloc(n), *q3 = malloc(n);
  uint8_t *k1 = malloc(n), *k2 = malloc(n), *k3 = malloc(n);
  float *m = malloc(n * sizeof *m), *a = malloc(n * sizeof *a), *base = malloc(n * sizeof *base);
  float *v = malloc(n * sizeof *v);
  for (size_t i = 0; i < n; i++) {
    x[i] = (uint8_t)test_rand(&rng);
    m[i] = test_rand_float(&rng, -0.5f, 0.5f);
    a[i] = test_rand_float(&rng, -40.0f, 40.0f);
    base[i] = test_rand_float(&rng, -60.0f, 60.0f);
  }
  for (size_t i = 0; i < n; i += 7) x[i] = i & 1 ? 255 : 0;
  for (size_t i = 1; i < n; i += 9) m[i] = 0.5f, a[i] = 0.0f, x[i] |= 1; /* ties of x / 2 */
  for (size_t i = 2; i < n; i += 11) m[i] = -0.0f, a[i] = -0.0f;        /* -0 sums */
  for (size_t i = 3; i < n; i += 13) a[i] = i & 2 ? INFINITY : -INFINITY;
  for (size_t i = 5; i < n; i += 17) base[i] = NAN;
  for (size_t i = 6; i < n; i += 19) a[i] = 3e9f;
  const float inv_scale = 0.9f;
  const int32_t zp = 17;
  for (int mode = 0; mode < 16; mode++) {
    const int has_base = mode & 1, relu = (mode >> 1) & 1, masked = (mode >> 2) & 1;
    const i8t_noise noise = {(mode >> 3) & 1, 0x51ED270Bu, 0xFFFFFFE9u};
    const float *b = has_base ? base : NULL;
    uint8_t *mk1 = relu && masked ? k1 : NULL, *mk2 = relu && masked ? k2 : NULL;
    t->affine_quantize_u8.run(n, x, m, a, b, relu, mk1, inv_scale, zp, noise, q1);
    g->affine_quantize_u8.run(n, x, m, a, b, relu, mk2, inv_scale, zp, noise, q2);
    if (has_base) memcpy(v, base, n * sizeof *v);
    g->affine_u8_f32.run(n, x, m, a, has_base, v);
    for (size_t i = 0; relu && i < n; i++) { /* NaN: mask 0, value +0 */
      k3[i] = v[i] > 0.0f;
      v[i] = v[i] > 0.0f ? v[i] : 0.0f;
    }
    g->quantize_f32_u8.run(v, n, inv_scale, zp, noise, q3);
    assert_memory_equal(q1, q2, n);
    assert_memory_equal(q2, q3, n);
    if (mk1) {
      assert_memory_equal(k1, k2, n);
      assert_memory_equal(k2, k3, n);
    }
  }
  free(x), free(q1), free(q2), free(q3), free(k1), free(k2), free(k3);
  free(m), free(a), free(base), free(v);
}

/* BN backward's s8 + s16 errors, one hash per two elements: bit-identical
 * across ISAs; both follow floor(clamp(t + u)) with an element's 16 random
 * bits (s8, on v * cs) and their low byte (s16), written out here (NaN
 * clamps to -lim); both roundings are unbiased and their draws independent
 * but for the s8's ties within one high byte (1 in 256). */
static int32_t floor_of_clamped(float t, float u, float lim) {
  float r = t + u;
  if (!(r >= -lim)) r = -lim;
  if (r > lim) r = lim;
  return (int32_t)floorf(r);
}

static void check_s8s16(const i8t_kernel_table *t, const i8t_kernel_table *g, size_t n,
                        uint64_t rng) {
  float *v = malloc(n * sizeof *v), *cs = malloc(n * sizeof *cs);
  int8_t *a8 = malloc(n), *b8 = malloc(n);
  int16_t *a16 = malloc(n * 2), *b16 = malloc(n * 2);
  adversarial_fill(v, n, &rng);
  for (size_t i = 0; i < n; i++) cs[i] = i % 7 == 0 ? -0.0f : test_rand_float(&rng, -2.0f, 2.0f);
  const float inv8 = 127.0f / 30.0f, inv16 = 32767.0f / 30.0f;
  /* Both counters wrap inside the larger sizes; the odd one starts in the
   * middle of a pair, the even one at its first half. */
  const uint32_t starts[2] = {0xFFFFFF00u, 0xFFFFF701u};
  for (int si = 0; si < 4; si++) {
    const float *c = si & 1 ? cs : NULL;
    const i8t_noise noise = {1, 0x2545F491u, starts[si >> 1]};
    t->quantize_f32_s8s16.run(n, v, c, inv8, inv16, noise, a8, a16);
    g->quantize_f32_s8s16.run(n, v, c, inv8, inv16, noise, b8, b16);
    assert_memory_equal(a8, b8, n);
    assert_memory_equal(a16, b16, n * 2);
    for (size_t i = 0; i < n; i++) { /* the rule, written out: one hash per counter pair */
      uint32_t ctr = noise.ctr + (uint32_t)i;
      uint32_t h = i8t_rng_hash(noise.key ^ I8T_RNG_PAIR_DOMAIN, ctr >> 1);
      uint32_t bits = ctr & 1u ? h >> 16 : h & 0xFFFFu;
      float x8 = (c ? v[i] * c[i] : v[i]) * inv8, x16 = v[i] * inv16;
      float u8 = (float)bits / 65536.0f, u16 = (float)(bits & 255u) / 256.0f;
      assert_int_equal(a8[i], (int8_t)floor_of_clamped(x8, u8, 127.0f));
      assert_int_equal(a16[i], (int16_t)floor_of_clamped(x16, u16, 32767.0f));
    }
    /* Split at an odd element (as threads split a tensor): the same bytes. */
    size_t k = n / 3 | 1;
    if (k < n) {
      i8t_noise rest = noise;
      rest.ctr += (uint32_t)k;
      t->quantize_f32_s8s16.run(k, v, c, inv8, inv16, noise, b8, b16);
      t->quantize_f32_s8s16.run(n - k, v + k, c ? c + k : NULL, inv8, inv16, rest, b8 + k,
                                b16 + k);
      assert_memory_equal(a8, b8, n);
      assert_memory_equal(a16, b16, n * 2);
    }
  }
  const i8t_noise noise = {1, 0x2545F491u, starts[0]};
  if (n >= 2048) { /* x.3 in s16 steps, x.5 in s8 steps */
    for (size_t i = 0; i < n; i++) v[i] = 10.3f / inv16;
    for (size_t i = 0; i < n; i++) cs[i] = (10.5f / inv8) / v[i];
    t->quantize_f32_s8s16.run(n, v, cs, inv8, inv16, noise, a8, a16);
    size_t up16 = 0, up8 = 0, both = 0, pair8 = 0, pairs = 0;
    for (size_t i = 0; i < n; i++) {
      assert_true(a16[i] == 10 || a16[i] == 11);
      assert_true(a8[i] == 10 || a8[i] == 11);
      up16 += a16[i] == 11, up8 += a8[i] == 11, both += a16[i] == 11 && a8[i] == 11;
      if (i % 2 == 0 && i + 1 < n) pairs++, pair8 += a8[i] == 11 && a8[i + 1] == 11;
    }
    /* Independent draws: of one element's two roundings, and of the two
     * elements that share a hash. */
    double p16 = (double)up16 / n, p8 = (double)up8 / n, pb = (double)both / n;
    double pp = (double)pair8 / pairs;
    if (fabs(p16 - 0.3) > 0.035 || fabs(p8 - 0.5) > 0.04 || fabs(pb - p16 * p8) > 0.035 ||
        fabs(pp - p8 * p8) > 0.04)
      fail_msg("s8s16 draws: P(s16 up) %.3f (0.3), P(s8 up) %.3f (0.5), P(both) %.3f, P(pair "
               "both s8 up) %.3f", p16, p8, pb, pp);
  }
  free(v), free(cs), free(a8), free(b8), free(a16), free(b16);
}

/* The s8 error of a value far below its step stays unbiased: t = -0.0005
 * of a step gives -1 with probability 0.0005 (about 33 of 2^16 values). A
 * draw of only 8 bits rounds every such value to -1 with probability 1/256
 * (256 of them): a bias that made resnet8 train visibly worse. */
static void check_s8s16_tiny_values(const i8t_kernel_table *t) {
  const size_t n = (size_t)1 << 16;
  const float inv8 = 127.0f / 30.0f, inv16 = 32767.0f / 30.0f;
  float *v = malloc(n * sizeof *v);
  int8_t *q8 = malloc(n);
  int16_t *q16 = malloc(n * 2);
  for (size_t i = 0; i < n; i++) v[i] = -0.0005f / inv8;
  const i8t_noise noise = {1, 0x9E3779B9u, 12345u};
  t->quantize_f32_s8s16.run(n, v, NULL, inv8, inv16, noise, q8, q16);
  size_t down = 0;
  for (size_t i = 0; i < n; i++) {
    assert_true(q8[i] == 0 || q8[i] == -1);
    down += q8[i] == -1;
  }
  if (down > 80) fail_msg("s8s16: %zu of %zu values of -0.0005 steps rounded to -1 (~33)", down, n);
  free(v), free(q8), free(q16);
}

/* Range BN's lanes over several rows of stride ld against a plain loop:
 * values 0..3 (ties everywhere: the first row must win), lanes starting
 * from earlier extremes (kept unless strictly beaten), group b + r. */
static void check_bn_lane_extremes_rows(const i8t_kernel_table *t) {
  const size_t shapes[][3] = {{1, 64, 0}, {5, 64, 512}, {33, 64, 64}, {7, 100, 130}, {3, 1, 9}};
  uint64_t rng = 91;
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
    size_t rows = shapes[si][0], n = shapes[si][1], ld = shapes[si][2];
    size_t len = (rows - 1) * ld + n;
    uint8_t *x = malloc(len), mn[128], mx[128];
    uint16_t amn[128], amx[128];
    for (size_t i = 0; i < len; i++) x[i] = (uint8_t)(test_rand(&rng) & 3);
    for (size_t i = 0; i < n; i++)
      mn[i] = (uint8_t)(i % 3), mx[i] = (uint8_t)(1 + i % 3), amn[i] = amx[i] = 1;
    t->bn_lane_extremes.run(rows, n, ld, 40, x, mn, mx, amn, amx);
    for (size_t i = 0; i < n; i++) {
      int lo = (int)(i % 3), hi = (int)(1 + i % 3), alo = 1, ahi = 1;
      for (size_t r = 0; r < rows; r++) {
        int v = x[r * ld + i];
        if (v < lo) lo = v, alo = 40 + (int)r;
        if (v > hi) hi = v, ahi = 40 + (int)r;
      }
      if (mn[i] != lo || mx[i] != hi || amn[i] != alo || amx[i] != ahi)
        fail_msg("bn_lane_extremes %zu x %zu (ld %zu) lane %zu: %d@%d %d@%d vs %d@%d %d@%d",
                 rows, n, ld, i, mn[i], amn[i], mx[i], amx[i], lo, alo, hi, ahi);
    }
    free(x);
  }
}

/* BN backward's per-channel sums against a plain loop, for narrow channel
 * counts (several rows per vector), whole vectors and other counts, with
 * leftover rows, rows of stride ld > C (a block of a wider tensor's
 * channels), and the int32 / 16-bit limits (32768 rows of g = -128 and of
 * g = 127 with q = 255). */
static void check_bn_col_sums(const i8t_kernel_table *t) {
  const size_t shapes[][3] = {{0, 16, 16},   {1, 16, 16},    {3, 16, 16},     {300, 16, 16},
                              {1001, 32, 32}, {77, 4, 4},     {513, 1, 1},     {9, 2, 2},
                              {257, 64, 64}, {130, 128, 128}, {50, 3, 3},      {40, 48, 48},
                              {33, 100, 100}, {40, 64, 512},  {257, 64, 128},  {33, 16, 48},
                              {100, 128, 192}, {9, 3, 7},     {32768, 16, 16}, {32768, 64, 64},
                              {32768, 64, 128}};
  uint64_t rng = 77;
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
    size_t rows = shapes[si][0], C = shapes[si][1], ld = shapes[si][2], n = rows * ld;
    int8_t *g = malloc(n + 1);
    uint8_t *x = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
      g[i] = (int8_t)test_rand(&rng), x[i] = (uint8_t)test_rand(&rng);
      if (rows == 32768 && i % ld < C) g[i] = C == 16 ? -128 : 127, x[i] = 255;
    }
    int32_t sg[128], sgq[128];
    uint32_t sq[128];
    int8_t mn[128], mx[128];
    t->bn_col_sums.run(rows, C, ld, g, x, sg, sgq, sq, mn, mx);
    for (size_t c = 0; c < C; c++) {
      int64_t rg = 0, rgq = 0, rq = 0;
      int lo = 127, hi = -127;
      for (size_t r = 0; r < rows; r++) {
        int gi = g[r * ld + c], qi = x[r * ld + c];
        rg += gi, rgq += gi * qi, rq += qi;
        lo = gi < lo ? gi : lo, hi = gi > hi ? gi : hi;
      }
      if (sg[c] != rg || sgq[c] != rgq || sq[c] != (uint64_t)rq || mn[c] != lo || mx[c] != hi)
        fail_msg("bn_col_sums %zu x %zu (ld %zu) channel %zu: %d %d %u %d %d vs %lld %lld %lld "
                 "%d %d",
                 rows, C, ld, c, sg[c], sgq[c], sq[c], mn[c], mx[c], (long long)rg, (long long)rgq,
                 (long long)rq, lo, hi);
    }
    free(g), free(x);
  }
}

static void check_layer_kernels_isa(i8t_isa isa) {
  test_select_isa_or_skip(isa);
  const i8t_kernel_table *t = i8t_kernels_for_isa(isa), *g = i8t_kernels_for_isa(I8T_ISA_GENERIC);
  const size_t sizes[] = {1, 15, 33, 64, 127, 2048, 4099}; /* tails of every vector width */
  for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
    check_layer_kernels(t, g, sizes[si], 1000 + si), check_s8s16(t, g, sizes[si], 2000 + si),
        check_requantize(t, g, sizes[si], 3000 + si),
        check_affine_quantize(t, g, sizes[si], 4000 + si);
  check_s8s16_tiny_values(t);
  check_bn_col_sums(t);
  check_bn_lane_extremes_rows(t);
}

#define DEFINE_ISA_TEST(name, isa)                                                          \
  static void test_elementwise_##name(void **state) { (void)state; check_elementwise(isa); } \
  static void test_layer_kernels_##name(void **state) {                                    \
    (void)state;                                                                             \
    check_layer_kernels_isa(isa);                                                            \
  }
I8T_TEST_ISAS(DEFINE_ISA_TEST)
#define LIST_ISA_TEST(name, isa) \
  cmocka_unit_test(test_elementwise_##name), cmocka_unit_test(test_layer_kernels_##name),

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_nearest_error_within_half_step),
      cmocka_unit_test(test_real_zero_is_exact),
      cmocka_unit_test(test_per_channel_scales),
      cmocka_unit_test(test_zero_point_nudging),
      cmocka_unit_test(test_stochastic_unbiased),
      cmocka_unit_test(test_zero_range_gives_no_nan),
      cmocka_unit_test(test_nonfinite_is_an_error),
      cmocka_unit_test(test_seed_reproducible),
      cmocka_unit_test(test_noise_uniform),
      I8T_TEST_ISAS(LIST_ISA_TEST)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
