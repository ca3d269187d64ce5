/* The quantizer: rounding error bounds, unbiased stochastic rounding, zero
 * ranges, NaN/Inf rejection, reproducibility, and every ISA's quantize and
 * reduction kernels bit-identical to the portable ones. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "isa_list.h"
#include "kernel_table.h"
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
  return x;
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
    uint8_t mn1[128], mx1[128], mn2[128], mx2[128];
    uint32_t s1[128], s2[128];
    t->colwise_stats_u8.run(m, rows, cols, ld, mn1, mx1, s1);
    g->colwise_stats_u8.run(m, rows, cols, ld, mn2, mx2, s2);
    assert_memory_equal(mn1, mn2, cols);
    assert_memory_equal(mx1, mx2, cols);
    assert_memory_equal(s1, s2, cols * 4);
    free(m);
  }
}

#define DEFINE_ISA_TEST(name, isa) \
  static void test_elementwise_##name(void **state) { (void)state; check_elementwise(isa); }
I8T_TEST_ISAS(DEFINE_ISA_TEST)
#define LIST_ISA_TEST(name, isa) cmocka_unit_test(test_elementwise_##name),

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
