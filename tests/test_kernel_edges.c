/* Edge cases of the elementwise kernels on every ISA path, each checked
 * against an independent expectation and against the generic kernel: exact
 * rounding ties, noise exactly equal to the fraction (stochastic rounding must
 * not round up), values beyond every clamp, NaN/Inf at every position of
 * short and long vectors, column sums that overflow 16-bit lanes, and the
 * weight gradient's pixel interleave against a plain loop. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "isa_list.h"
#include "kernel_table.h"
#include "rng.h"
#include "test_util.h"

static const i8t_kernel_table *generic_table(void) {
  return i8t_kernels_for_isa(I8T_ISA_GENERIC);
}

/* With inv_scale 1, k + 0.5 is an exact tie: nearest-even must give the even
 * neighbour (a round-half-away or truncating SIMD conversion fails here). */
static void check_ties(const i8t_kernel_table *t) {
  enum { N = 203 };
  float x[N];
  int8_t s8[N];
  int16_t s16[N];
  uint8_t u8[N];
  for (int i = 0; i < N; i++) x[i] = (float)(i - 101) + 0.5f;
  i8t_noise nearest = {0, 0, 0};
  t->quantize_f32_s8.run(x, N, 1.0f, nearest, s8);
  t->quantize_f32_s16.run(x, N, 1.0f, nearest, s16);
  t->quantize_f32_u8.run(x, N, 1.0f, 128, nearest, u8);
  for (int i = 0; i < N; i++) {
    int even = (int)nearbyint((double)x[i]); /* double: an independent reference */
    assert_int_equal(even % 2, 0);
    assert_int_equal(s16[i], even);
    assert_int_equal(s8[i], even < -127 ? -127 : even > 127 ? 127 : even);
    int u = even + 128;
    assert_int_equal(u8[i], u < 0 ? 0 : u > 255 ? 255 : u);
  }
}

/* x = u_i (or u_i - 1) where u_i is exactly the noise of element i: then
 * v - floor(v) == u_i, and the rule floor(v) + (u < v - floor(v)) must NOT
 * round up. A `<=` in place of `<`, or noise taken from the wrong counter,
 * changes some of these. */
static void check_noise_equal_to_fraction(const i8t_kernel_table *t) {
  enum { N = 301 };
  const uint32_t key = 0x5EED1234u, ctr = 0xFFFFFF00u; /* the counter wraps inside */
  float x[N];
  int16_t q[N], ref[N];
  for (int i = 0; i < N; i++) {
    float u = i8t_rng_uniform(key, ctr + (uint32_t)i);
    x[i] = (i % 2) ? u - 1.0f : u; /* both exact in float */
  }
  i8t_noise noise = {1, key, ctr};
  t->quantize_f32_s16.run(x, N, 1.0f, noise, q);
  generic_table()->quantize_f32_s16.run(x, N, 1.0f, noise, ref);
  for (int i = 0; i < N; i++) {
    int want = (x[i] < 0.0f) ? -1 : 0;
    if (q[i] != want) fail_msg("element %d: x = %.9g gave %d, expected %d", i, (double)x[i], q[i], want);
  }
  assert_memory_equal(q, ref, sizeof q);
}

/* Magnitudes beyond int32 and float's largest values clamp, in both modes. */
static void check_huge_values(const i8t_kernel_table *t) {
  const float big[] = {3e9f, -3e9f, 1e30f, -1e30f, 3.4e38f, -3.4e38f, 16777217.0f, -2147483648.0f};
  enum { N = 8 * 5 };
  float x[N];
  for (int i = 0; i < N; i++) x[i] = big[i % 8];
  for (int stoch = 0; stoch < 2; stoch++) {
    i8t_noise noise = {stoch, 77, 5};
    uint8_t u8[N], u8r[N];
    int8_t s8[N];
    int16_t s16[N];
    t->quantize_f32_u8.run(x, N, 1.0f, 255, noise, u8);
    generic_table()->quantize_f32_u8.run(x, N, 1.0f, 255, noise, u8r);
    assert_memory_equal(u8, u8r, N);
    t->quantize_f32_s8.run(x, N, 3.0f, noise, s8);
    t->quantize_f32_s16.run(x, N, 3.0f, noise, s16);
    for (int i = 0; i < N; i++) {
      int pos = x[i] > 0;
      assert_int_equal(u8[i], pos ? 255 : 0);
      assert_int_equal(s8[i], pos ? 127 : -127);
      assert_int_equal(s16[i], pos ? 32767 : -32767);
    }
  }
}

/* A NaN or infinity anywhere in vectors of every short length (SIMD body,
 * tail, first and last element) must be reported. */
static void check_minmax_nonfinite(const i8t_kernel_table *t) {
  const float bad[3] = {NAN, INFINITY, -INFINITY};
  float x[40];
  for (size_t n = 1; n <= 40; n++) {
    uint64_t rng = n;
    for (size_t i = 0; i < n; i++) x[i] = test_rand_float(&rng, -5.0f, 5.0f);
    float mn, mx, gmn, gmx;
    assert_int_equal(t->minmax_f32.run(x, n, &mn, &mx), 0);
    generic_table()->minmax_f32.run(x, n, &gmn, &gmx);
    assert_true(mn == gmn && mx == gmx);
    for (size_t pos = 0; pos < n; pos++) {
      for (int b = 0; b < 3; b++) {
        float keep = x[pos];
        x[pos] = bad[b];
        if (t->minmax_f32.run(x, n, &mn, &mx) == 0)
          fail_msg("n = %zu: %g at position %zu not reported", n, (double)bad[b], pos);
        x[pos] = keep;
      }
    }
  }
}

/* Columns of 255 over row counts around the points where 16-bit partial
 * sums would wrap (257 * 255 = 65535), with 16-wide blocks and a tail. */
static void check_colwise_saturation(const i8t_kernel_table *t) {
  const size_t rows_list[] = {256, 257, 258, 600};
  const size_t cols = 35, ld = 40;
  for (size_t ri = 0; ri < 4; ri++) {
    size_t rows = rows_list[ri];
    uint8_t *m = malloc(rows * ld);
    memset(m, 255, rows * ld);
    m[(rows / 2) * ld + 3] = 7; /* one low value in a vector column */
    uint8_t mn[35], mx[35];
    uint32_t sum[35];
    t->colwise_stats_u8.run(m, rows, cols, ld, mn, mx, sum);
    for (size_t c = 0; c < cols; c++) {
      assert_int_equal(mx[c], 255);
      assert_int_equal(mn[c], c == 3 ? 7 : 255);
      assert_int_equal(sum[c], 255u * rows - (c == 3 ? 248u : 0u));
    }
    free(m);
  }
}

/* The weight gradient's pixel interleave: channel counts below, at and
 * past the 16-channel blocks, pair steps of 1-3 pixels with the second
 * pixel 1-2 pixels on (strides 1 and 2), zero points 0 and 255 against 255
 * and 0 (the int16 extremes +-255). */
static void check_interleave_pixels(const i8t_kernel_table *t) {
  static const size_t Cs[] = {1, 3, 16, 17, 32, 48, 64};
  uint64_t rng = 31337;
  uint8_t row[40 * 64];
  int16_t d[9 * 2 * 64 + 1];
  for (size_t ci = 0; ci < sizeof Cs / sizeof Cs[0]; ci++)
    for (int mode = 0; mode < 3; mode++) {
      size_t C = Cs[ci], n = 9, step = (1 + ci % 3) * C, b_off = (1 + ci % 2) * C;
      int zp = mode == 0 ? test_rand_range(&rng, 0, 255) : mode == 1 ? 0 : 255;
      for (size_t i = 0; i < sizeof row; i++)
        row[i] = (uint8_t)(mode == 0 ? test_rand_range(&rng, 0, 255) : mode == 1 ? 255 : 0);
      d[2 * n * C] = 0x1234; /* past the end: untouched */
      t->interleave_pixels_u8_s16.run(n, C, row, step, b_off, (int16_t)zp, d);
      for (size_t q = 0; q < n; q++)
        for (size_t c = 0; c < C; c++)
          for (size_t i = 0; i < 2; i++) {
            int want = row[q * step + i * b_off + c] - zp;
            if (d[q * 2 * C + 2 * c + i] != want)
              fail_msg("interleave C=%zu zp=%d: pair %zu channel %zu [%zu] = %d, expected %d", C,
                       zp, q, c, i, d[q * 2 * C + 2 * c + i], want);
          }
      assert_int_equal(d[2 * n * C], 0x1234);
    }
}

/* The weight gradient's dy pairs: widths below, at and past 16, padding
 * pairs, strided rows, b NULL (zeros), the int16 extremes; the gaps between
 * rows (ldd past the pairs) untouched. Widths of whole 16-pair steps with
 * no padding take the kernels' fast path, in one run where rows are
 * contiguous (mode 1) and row by row where not (mode 4). */
static void check_interleave_rows(const i8t_kernel_table *t) {
  static const size_t widths[] = {1, 7, 15, 16, 17, 32, 33, 48};
  uint64_t rng = 777;
  for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++)
    for (int mode = 0; mode < 5; mode++) { /* 4: like 3 (strided, no padding) with b */
      size_t w = widths[wi], rows = 1 + wi % 4;
      size_t pairs = w + (mode & 1 || mode == 4 ? 0 : 16 - w % 16);
      size_t lda = w + (mode >= 2 ? 5 : 0), ldd = 2 * pairs + (mode >= 2 ? 4 : 0);
      int with_b = mode != 3;
      int16_t *a = malloc(rows * lda * 2), *b = malloc(rows * lda * 2);
      int16_t *d = malloc(rows * ldd * 2);
      for (size_t i = 0; i < rows * lda; i++) {
        a[i] = i % 5 == 0 ? INT16_MIN : (int16_t)test_rand(&rng);
        b[i] = i % 7 == 0 ? INT16_MAX : (int16_t)test_rand(&rng);
      }
      for (size_t i = 0; i < rows * ldd; i++) d[i] = 0x5A5A;
      t->interleave_rows_s16.run(rows, w, pairs, a, with_b ? b : NULL, lda, d, ldd);
      for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < ldd; c++) {
          int want = c >= 2 * pairs ? 0x5A5A
                     : c >= 2 * w   ? 0
                     : c % 2        ? (with_b ? b[r * lda + c / 2] : 0)
                                    : a[r * lda + c / 2];
          if (d[r * ldd + c] != want)
            fail_msg("interleave_rows w=%zu pairs=%zu ld %zu/%zu b=%d: row %zu [%zu] = %d, "
                     "expected %d",
                     w, pairs, lda, ldd, with_b, r, c, d[r * ldd + c], want);
        }
      free(a), free(b), free(d);
    }
}

/* The strided grad input's col2im against a plain scatter: strides 1-3,
 * kernels 1/3/5, padding 0-2, strides past the kernel (pixels no tap reads:
 * 0), odd sizes, two samples, garbage in the columns' padding and in dx
 * beforehand (every element written), nothing past the end; values up to
 * (2^31 - 1) / 9, so that the largest sums reach the int32 range. */
static void check_col2im(const i8t_kernel_table *t) {
  static const size_t geoms[][6] = {/* h, w, C, kernel, stride, pad */
                                    {7, 9, 3, 3, 2, 1},  {28, 28, 16, 3, 2, 1}, {6, 5, 1, 1, 2, 0},
                                    {8, 8, 4, 5, 3, 2},  {5, 7, 16, 3, 3, 0},  {4, 4, 2, 1, 3, 0},
                                    {9, 9, 17, 3, 1, 1}, {3, 3, 8, 3, 1, 2}};
  uint64_t rng = 4242;
  for (size_t gi = 0; gi < sizeof geoms / sizeof geoms[0]; gi++)
    for (int extreme = 0; extreme < 2; extreme++) {
      const size_t *q = geoms[gi], S = 2, C = q[2], k = q[3];
      i8t_col2im_geom g = {q[0], q[1], C, k, q[4], q[5], (q[0] + 2 * q[5] - k) / q[4] + 1,
                           (q[1] + 2 * q[5] - k) / q[4] + 1};
      size_t K = k * k * C, ld = K + 5, rows = S * g.oh * g.ow, px = S * g.h * g.w * C;
      int32_t *cols = malloc(rows * ld * sizeof *cols), *dx = malloc((px + 1) * sizeof *dx);
      int64_t *ref = calloc(px, sizeof *ref);
      const int32_t big = INT32_MAX / 9;
      for (size_t i = 0; i < rows * ld; i++)
        cols[i] = extreme ? (test_rand(&rng) & 1 ? big : -big)
                          : (int32_t)test_rand_range(&rng, -1000000, 1000000);
      for (size_t i = 0; i <= px; i++) dx[i] = 0x5A5A5A5A;
      for (size_t n = 0; n < S; n++)
        for (size_t oy = 0; oy < g.oh; oy++)
          for (size_t ox = 0; ox < g.ow; ox++)
            for (size_t ky = 0; ky < k; ky++)
              for (size_t kx = 0; kx < k; kx++) {
                long iy = (long)(oy * g.stride + ky) - (long)g.pad;
                long ix = (long)(ox * g.stride + kx) - (long)g.pad;
                if (iy < 0 || ix < 0 || iy >= (long)g.h || ix >= (long)g.w) continue;
                for (size_t c = 0; c < C; c++)
                  ref[((n * g.h + (size_t)iy) * g.w + (size_t)ix) * C + c] +=
                      cols[((n * g.oh + oy) * g.ow + ox) * ld + (ky * k + kx) * C + c];
              }
      t->col2im_s32.run(&g, cols, ld, S, dx);
      for (size_t i = 0; i < px; i++)
        if (dx[i] != ref[i])
          fail_msg("col2im %zux%zux%zu k%zu s%zu p%zu: dx[%zu] = %d, expected %lld", g.h, g.w, C,
                   k, g.stride, g.pad, i, dx[i], (long long)ref[i]);
      assert_int_equal(dx[px], 0x5A5A5A5A);
      free(cols), free(dx), free(ref);
    }
}

static void check_edges(i8t_isa isa) {
  test_select_isa_or_skip(isa);
  const i8t_kernel_table *t = i8t_kernels_for_isa(isa);
  check_ties(t);
  check_noise_equal_to_fraction(t);
  check_huge_values(t);
  check_minmax_nonfinite(t);
  check_colwise_saturation(t);
  check_interleave_pixels(t);
  check_col2im(t);
  check_interleave_rows(t);
}

#define DEFINE_ISA_TEST(name, isa) \
  static void test_edges_##name(void **state) { (void)state; check_edges(isa); }
I8T_TEST_ISAS(DEFINE_ISA_TEST)
#define LIST_ISA_TEST(name, isa) cmocka_unit_test(test_edges_##name),

int main(void) {
  const struct CMUnitTest tests[] = {I8T_TEST_ISAS(LIST_ISA_TEST)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
