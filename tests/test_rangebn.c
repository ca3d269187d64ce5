/* Range BN: the constant and the chunk rule (uneven chunks, tiny batches,
 * never NaN), the fp32 backward against finite differences (distinct values
 * so that the max / min routing is differentiable), the u8 statistics and
 * backward against the fp32 formulas on the dequantized tensors, the paper's
 * single-range variant, standard BN on u8, and the u8 passes' bits at 1-3
 * threads, whichever way they split the work (by rows, or by blocks of 64
 * channels for wide tensors: src/nn/norm.c, norm_by_channels). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "int8train/layers.h"
#include "test_util.h"

static i8t_workspace *ws_make(void) {
  i8t_workspace *ws;
  assert_int_equal(i8t_workspace_create(NULL, &ws), I8T_OK);
  return ws;
}

static double dot(const float *a, const float *b, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}

static void test_constant_and_chunks(void **state) {
  (void)state;
  i8t_norm_config cfg;
  i8t_norm_config_init(&cfg, I8T_NORM_RANGE);
  assert_int_equal(cfg.chunks, 16);
  /* reference: 0.5 * 0.35 * (1 + sqrt(pi ln 4)) / sqrt(2 ln m), m = n / 16 */
  double m = 100352.0 / 16.0;
  double want = 0.5 * 0.35 * (1.0 + sqrt(M_PI * log(4.0))) / sqrt(2.0 * log(m));
  assert_true(fabs(i8t_range_bn_constant(&cfg, 100352, 16) - want) < 1e-12);
  assert_int_equal(i8t_range_bn_chunks(&cfg, 100352), 16);
  assert_int_equal(i8t_range_bn_chunks(&cfg, 33), 16);  /* uneven: 2 or 3 values per chunk */
  assert_int_equal(i8t_range_bn_chunks(&cfg, 31), 15);  /* at least 2 values per chunk */
  assert_int_equal(i8t_range_bn_chunks(&cfg, 3), 1);
  assert_int_equal(i8t_range_bn_chunks(&cfg, 1), 1);
  for (size_t n = 1; n < 40; n++) {
    double c = i8t_range_bn_constant(&cfg, n, i8t_range_bn_chunks(&cfg, n));
    assert_true(isfinite(c) && c > 0.0);
  }
  cfg.paper = 1;
  assert_int_equal(i8t_range_bn_chunks(&cfg, 1000), 1);
  assert_true(fabs(i8t_range_bn_constant(&cfg, 1000, 1) - 1.0 / sqrt(2.0 * log(1000.0))) < 1e-12);
}

/* x[r][c] distinct: a shuffled ramp with gaps of 0.05 plus a per-value jitter. */
static float *distinct_values(size_t n, uint64_t seed) {
  float *x = malloc(n * sizeof *x);
  size_t *perm = malloc(n * sizeof *perm);
  for (size_t i = 0; i < n; i++) perm[i] = i;
  for (size_t i = n - 1; i > 0; i--) {
    size_t j = (size_t)(test_rand(&seed) % (i + 1)), t = perm[i];
    perm[i] = perm[j], perm[j] = t;
  }
  for (size_t i = 0; i < n; i++)
    x[i] = -2.0f + 0.05f * (float)perm[i] + test_rand_float(&seed, 0.0f, 0.01f);
  free(perm);
  return x;
}

typedef struct rbn_ctx {
  i8t_workspace *ws;
  i8t_norm_config cfg;
  size_t rows, C;
  float *x, *gamma, *beta, *y, *r, *mean, *scale;
  int which;
} rbn_ctx;

static double rbn_loss(void *arg, float *v) {
  rbn_ctx *c = arg;
  const float *x = c->which == 0 ? v : c->x;
  assert_int_equal(i8t_norm_stats_f32(c->ws, &c->cfg, x, c->rows, c->C, c->mean, c->scale, NULL),
                   I8T_OK);
  assert_int_equal(i8t_norm_forward_f32(c->ws, x, c->rows, c->C, c->mean, c->scale,
                                        c->which == 1 ? v : c->gamma, c->which == 2 ? v : c->beta,
                                        c->y),
                   I8T_OK);
  return dot(c->y, c->r, c->rows * c->C);
}

static void fd_range_bn(size_t rows, size_t C, int paper, uint64_t seed) {
  i8t_workspace *ws = ws_make();
  size_t n = rows * C;
  float *x = distinct_values(n, seed), *r = malloc(n * 4), *y = malloc(n * 4);
  float *gamma = malloc(C * 4), *beta = malloc(C * 4), *mean = malloc(C * 4), *scale = malloc(C * 4);
  float *dx = malloc(n * 4), *dg = malloc(C * 4), *db = malloc(C * 4);
  for (size_t i = 0; i < n; i++) r[i] = test_rand_float(&seed, -1, 1);
  for (size_t c = 0; c < C; c++) gamma[c] = test_rand_float(&seed, 0.5f, 1.5f), beta[c] = 0.1f * (float)c;
  rbn_ctx ctx = {ws, {0}, rows, C, x, gamma, beta, y, r, mean, scale, 0};
  i8t_norm_config_init(&ctx.cfg, I8T_NORM_RANGE);
  ctx.cfg.paper = paper;
  rbn_loss(&ctx, x);
  assert_int_equal(i8t_norm_backward_f32(ws, &ctx.cfg, x, rows, C, r, mean, scale, gamma, dx, dg, db),
                   I8T_OK);
  double gmax = 0.0;
  for (size_t i = 0; i < n; i++) gmax = fabs(dx[i]) > gmax ? fabs(dx[i]) : gmax;
  /* Every coordinate: the routed max / min ones included. h = 1e-3 stays
   * below the 0.04 gap between values, so no max / min switches. */
  const float h = 1e-3f;
  for (size_t i = 0; i < n; i++) {
    float keep = x[i];
    x[i] = keep + h;
    double lp = rbn_loss(&ctx, x);
    x[i] = keep - h;
    double lm = rbn_loss(&ctx, x);
    x[i] = keep;
    double num = (lp - lm) / (2.0 * h);
    if (fabs(num - dx[i]) > 3e-3 * gmax + 1e-5)
      fail_msg("Range BN rows %zu paper %d: dx[%zu] FD %.6g vs backward %.6g", rows, paper, i,
               num, (double)dx[i]);
  }
  ctx.which = 1;
  for (size_t c = 0; c < C; c++) {
    float keep = gamma[c];
    gamma[c] = keep + h;
    double lp = rbn_loss(&ctx, gamma);
    gamma[c] = keep - h;
    double lm = rbn_loss(&ctx, gamma);
    gamma[c] = keep;
    assert_true(fabs((lp - lm) / (2.0 * h) - dg[c]) < 1e-2 * (1.0 + fabs(dg[c])));
  }
  for (size_t c = 0; c < C; c++) {
    double s = 0.0;
    for (size_t k = 0; k < rows; k++) s += r[k * C + c];
    assert_true(fabs(s - db[c]) < 1e-4);
  }
  free(x), free(r), free(y), free(gamma), free(beta), free(mean), free(scale), free(dx), free(dg);
  free(db);
  i8t_workspace_destroy(ws);
}

static void test_range_bn_fd(void **state) {
  (void)state;
  fd_range_bn(64, 3, 0, 1);  /* 16 even chunks of 4 */
  fd_range_bn(53, 2, 0, 2);  /* 16 uneven chunks of 3 or 4 */
  fd_range_bn(21, 2, 0, 3);  /* 10 chunks (tiny-batch rule) */
  fd_range_bn(5, 3, 0, 4);   /* 2 chunks */
  fd_range_bn(40, 2, 1, 5);  /* the paper's single range */
}

static void test_tiny_batches_no_nan(void **state) {
  (void)state;
  i8t_workspace *ws = ws_make();
  i8t_norm_config cfg;
  for (int kind = 0; kind < 2; kind++) {
    i8t_norm_config_init(&cfg, kind ? I8T_NORM_STANDARD : I8T_NORM_RANGE);
    for (size_t rows = 1; rows <= 4; rows++) {
      float x[8] = {0.5f, -1.0f, 2.0f, 0.25f, 3.0f, 3.0f, -2.0f, 1.0f};
      float dy[8] = {1, -1, 0.5f, 2, -0.5f, 0.25f, 1, 1};
      float mean[2], scale[2], y[8], dx[8], dg[2], db[2], gamma[2] = {1.5f, 0.5f},
                                                            beta[2] = {0.1f, -0.2f};
      assert_int_equal(i8t_norm_stats_f32(ws, &cfg, x, rows, 2, mean, scale, NULL), I8T_OK);
      assert_int_equal(i8t_norm_forward_f32(ws, x, rows, 2, mean, scale, gamma, beta, y), I8T_OK);
      assert_int_equal(i8t_norm_backward_f32(ws, &cfg, x, rows, 2, dy, mean, scale, gamma, dx, dg, db),
                       I8T_OK);
      for (size_t i = 0; i < rows * 2; i++) assert_true(isfinite(y[i]) && isfinite(dx[i]));
      if (rows == 1) /* a single value: x - mu = 0, output beta, zero input gradient */
        for (size_t c = 0; c < 2; c++) {
          assert_true(fabsf(y[c] - beta[c]) < 1e-6f);
          assert_true(fabsf(dx[c]) < 1e-6f);
        }
    }
  }
  i8t_workspace_destroy(ws);
}

/* Forward statistics and output of Range BN on u8 equal the fp32 formulas
 * on the dequantized tensor (the integer reductions are exact). */
static void test_u8_stats_match_f32(void **state) {
  (void)state;
  i8t_workspace *ws = ws_make();
  /* C = 128: split by channel blocks (one thread); 5: by rows */
  const size_t sizes[][2] = {{1, 5}, {7, 5}, {33, 5}, {1000, 5}, {5000, 5}, {3, 128}, {700, 128}};
  for (int kind = 0; kind < 2; kind++)
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
      size_t rows = sizes[si][0], C = sizes[si][1], n = rows * C;
      uint64_t seed = 7 + si;
      uint8_t *q = malloc(n);
      float *x = malloc(n * 4);
      for (size_t i = 0; i < n; i++) q[i] = (uint8_t)test_rand_range(&seed, 0, 255);
      i8t_qparams p = {0.037f, 19};
      i8t_dequantize_u8(q, n, p, x);
      i8t_norm_config cfg;
      i8t_norm_config_init(&cfg, kind ? I8T_NORM_STANDARD : I8T_NORM_RANGE);
      float m8[128], s8[128], v8[128], m32[128], s32[128], v32[128];
      assert_int_equal(i8t_norm_stats_u8(ws, &cfg, q, p, rows, C, m8, s8, v8), I8T_OK);
      assert_int_equal(i8t_norm_stats_f32(ws, &cfg, x, rows, C, m32, s32, v32), I8T_OK);
      for (size_t c = 0; c < C; c++) {
        assert_true(fabsf(m8[c] - m32[c]) <= 1e-5f * (1.0f + fabsf(m32[c])));
        if (fabsf(s8[c] - s32[c]) > 1e-4f * s32[c])
          fail_msg("kind %d rows %zu: scale %g (u8) vs %g (f32)", kind, rows, (double)s8[c],
                   (double)s32[c]);
      }
      free(q), free(x);
    }
  i8t_workspace_destroy(ws);
}

/* The u8 backward (s8 incoming gradient, exact integer sums) equals the fp32
 * backward on the dequantized tensors, ties in the u8 data included (both
 * route to the first maximum / minimum). Its s8 / s16 outputs are stochastic
 * quantizations of that float gradient. */
static void check_u8_backward(i8t_norm_kind kind, int paper, size_t rows, size_t C, int bits16,
                              const float *col_scale) {
  i8t_workspace *ws = ws_make();
  size_t n = rows * C;
  uint64_t seed = 100 + rows + (uint64_t)kind;
  uint8_t *q = malloc(n);
  int8_t *g8 = malloc(n), *o8 = malloc(n);
  int16_t *o16 = malloc(n * 2);
  float *x = malloc(n * 4), *g = malloc(n * 4), *dx = malloc(n * 4), *dxf = malloc(n * 4);
  for (size_t i = 0; i < n; i++) {
    q[i] = (uint8_t)test_rand_range(&seed, 10, 60); /* many ties */
    g8[i] = (int8_t)test_rand_range(&seed, -127, 127);
  }
  i8t_qparams p = {0.05f, 30};
  float gs = 0.002f;
  i8t_dequantize_u8(q, n, p, x);
  for (size_t i = 0; i < n; i++) g[i] = gs * (float)g8[i];
  i8t_norm_config cfg;
  i8t_norm_config_init(&cfg, kind);
  cfg.paper = paper;
  float mean[700], scale[700], gamma[700], dg8[700], db8[700], dg[700], db[700];
  for (size_t c = 0; c < C; c++) gamma[c] = 0.5f + 0.25f * (float)c;
  assert_int_equal(i8t_norm_stats_u8(ws, &cfg, q, p, rows, C, mean, scale, NULL), I8T_OK);
  assert_int_equal(i8t_norm_backward_f32(ws, &cfg, x, rows, C, g, mean, scale, gamma, dx, dg, db),
                   I8T_OK);
  i8t_grad_out out;
  memset(&out, 0, sizeof out);
  out.f32 = dxf;
  out.s8 = o8;
  out.s8_col_scale = col_scale;
  out.s8_round = (i8t_rounding){1, 5, 0};
  out.s16 = o16;
  out.s16_bits = bits16;
  out.s16_round = (i8t_rounding){1, 6, 0};
  assert_int_equal(i8t_norm_backward_u8(ws, &cfg, q, p, rows, C, g8, gs, mean, scale, gamma, dg8,
                                        db8, &out),
                   I8T_OK);
  float dmax = 0.0f;
  for (size_t i = 0; i < n; i++) dmax = fabsf(dx[i]) > dmax ? fabsf(dx[i]) : dmax;
  for (size_t i = 0; i < n; i++)
    if (fabsf(dxf[i] - dx[i]) > 1e-4f * dmax + 1e-9f)
      fail_msg("u8 backward dx[%zu] = %g vs f32 %g", i, (double)dxf[i], (double)dx[i]);
  for (size_t c = 0; c < C; c++) {
    assert_true(fabsf(dg8[c] - dg[c]) <= 1e-4f * (1.0f + fabsf(dg[c])));
    assert_true(fabsf(db8[c] - db[c]) <= 1e-5f * (1.0f + fabsf(db[c])));
  }
  /* Stochastic rounding: within one step of the value, levels within range. */
  for (size_t i = 0; i < n; i++) {
    float v8 = col_scale ? dxf[i] * col_scale[i % C] : dxf[i];
    assert_true(fabsf(out.s8_scale * (float)o8[i] - v8) <= out.s8_scale * 1.0001f);
    assert_true(o8[i] >= -127);
    int lim = bits16 == 8 ? 127 : 32767;
    assert_true(o16[i] >= -lim && o16[i] <= lim);
    assert_true(fabsf(out.s16_scale * (float)o16[i] - dxf[i]) <= out.s16_scale * 1.0001f);
    if (bits16 == 8 && !col_scale) assert_int_equal(o16[i], o8[i]); /* the same draw */
  }
  if (bits16 == 8 && !col_scale) assert_true(out.s16_scale == out.s8_scale);
  free(q), free(g8), free(o8), free(o16), free(x), free(g), free(dx), free(dxf);
  i8t_workspace_destroy(ws);
}

static void test_u8_backward_matches_f32(void **state) {
  (void)state;
  const float cs[4] = {0.5f, 2.0f, 1.0f, 0.25f};
  check_u8_backward(I8T_NORM_RANGE, 0, 3000, 4, 16, NULL);
  check_u8_backward(I8T_NORM_RANGE, 0, 77, 3, 8, NULL);   /* uneven chunks, 8-bit wgrad */
  check_u8_backward(I8T_NORM_RANGE, 0, 9, 2, 16, NULL);   /* tiny: 4 chunks */
  check_u8_backward(I8T_NORM_RANGE, 1, 500, 4, 16, cs);   /* paper variant, per-channel s8 */
  check_u8_backward(I8T_NORM_STANDARD, 0, 700, 4, 16, NULL);
  /* segments of many blocks (the lanes of the reductions fold across blocks) */
  check_u8_backward(I8T_NORM_RANGE, 0, 20000, 4, 16, NULL);
  check_u8_backward(I8T_NORM_RANGE, 1, 20000, 2, 16, NULL);
  check_u8_backward(I8T_NORM_RANGE, 0, 300, 700, 16, NULL);
  /* chunks of more than 32768 values: routed terms sorted per block */
  check_u8_backward(I8T_NORM_RANGE, 0, 40000, 16, 16, NULL);
  check_u8_backward(I8T_NORM_STANDARD, 0, 50, 4, 8, cs);
  /* split by blocks of 64 channels: several chunks; one chunk over 16 segments */
  check_u8_backward(I8T_NORM_RANGE, 0, 300, 640, 16, NULL);
  check_u8_backward(I8T_NORM_RANGE, 1, 3000, 128, 16, NULL);
  check_u8_backward(I8T_NORM_STANDARD, 0, 500, 192, 16, NULL);
}

/* Range BN u8 at 1, 2 and 3 threads: the same bits (the statistics with
 * the samples' extremes; s8, s16, f32, dgamma, dbeta), for segments routed
 * directly and through the per-block sort, the chunk extremes found across
 * several segments of a chunk, and wide tensors split by channel blocks at
 * some thread counts and by rows at others (C = 128: blocks at 1 thread,
 * rows at 2; C = 256: rows at 3). */
typedef struct bn_run {
  int8_t *o8;
  int16_t *o16;
  float *f, *dg, *db, *mean, *scale;
  uint8_t *smin, *smax;
} bn_run;

enum { BN_RUN_SAMPLES = 4 };

static void u8_backward_run(int threads, int paper, size_t rows, size_t C, const uint8_t *q,
                            const int8_t *g, const bn_run *r) {
  i8t_context *ctx;
  i8t_workspace *ws = test_workspace(threads, &ctx);
  i8t_norm_config cfg;
  i8t_norm_config_init(&cfg, I8T_NORM_RANGE);
  cfg.paper = paper; /* one chunk: its extremes found across 16 segments */
  i8t_qparams p = {0.05f, 30};
  float *mean = r->mean, *scale = r->scale, *gamma = malloc(C * 4);
  for (size_t c = 0; c < C; c++) gamma[c] = 0.5f + 0.01f * (float)c;
  i8t_act_shape shape = {BN_RUN_SAMPLES, rows / BN_RUN_SAMPLES, C};
  assert_int_equal(i8t_norm_stats_samples_u8(ws, &cfg, q, p, shape, mean, scale, NULL, r->smin,
                                             r->smax),
                   I8T_OK);
  i8t_grad_out out;
  memset(&out, 0, sizeof out);
  out.f32 = r->f, out.s8 = r->o8, out.s16 = r->o16;
  out.s8_round = (i8t_rounding){1, 7, 99};
  out.s16_round = (i8t_rounding){1, 8, 0};
  assert_int_equal(i8t_norm_backward_u8(ws, &cfg, q, p, rows, C, g, 0.01f, mean, scale, gamma,
                                        r->dg, r->db, &out),
                   I8T_OK);
  free(gamma);
  test_workspace_free(ws, ctx);
}

static bn_run bn_run_alloc(size_t n, size_t C) {
  bn_run r = {malloc(n), malloc(2 * n), malloc(4 * n), malloc(4 * C), malloc(4 * C),
              malloc(4 * C), malloc(4 * C), malloc(BN_RUN_SAMPLES * C),
              malloc(BN_RUN_SAMPLES * C)};
  return r;
}

static void bn_run_free(bn_run *r) {
  free(r->o8), free(r->o16), free(r->f), free(r->dg), free(r->db), free(r->mean);
  free(r->scale), free(r->smin), free(r->smax);
}

static void test_u8_backward_threads_identical(void **state) {
  (void)state;
  const size_t shapes[][3] = {{392, 512, 0}, {392, 256, 0}, {300, 128, 0},
                              {3000, 128, 1}, {40000, 16, 0}, {70000, 1, 1}}; /* rows, C, paper */
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
    size_t rows = shapes[si][0], C = shapes[si][1], n = rows * C;
    int paper = (int)shapes[si][2];
    uint64_t seed = 7 + si;
    uint8_t *q = malloc(n);
    int8_t *g = malloc(n);
    for (size_t i = 0; i < n; i++) {
      q[i] = (uint8_t)test_rand_range(&seed, 0, 40); /* ties */
      g[i] = (int8_t)test_rand_range(&seed, -127, 127);
    }
    bn_run r[2] = {bn_run_alloc(n, C), bn_run_alloc(n, C)};
    u8_backward_run(1, paper, rows, C, q, g, &r[0]);
    for (int threads = 2; threads <= 3; threads++) {
      u8_backward_run(threads, paper, rows, C, q, g, &r[1]);
      assert_memory_equal(r[0].mean, r[1].mean, 4 * C);
      assert_memory_equal(r[0].scale, r[1].scale, 4 * C);
      assert_memory_equal(r[0].smin, r[1].smin, BN_RUN_SAMPLES * C);
      assert_memory_equal(r[0].smax, r[1].smax, BN_RUN_SAMPLES * C);
      assert_memory_equal(r[0].o8, r[1].o8, n);
      assert_memory_equal(r[0].o16, r[1].o16, 2 * n);
      assert_memory_equal(r[0].f, r[1].f, 4 * n);
      assert_memory_equal(r[0].dg, r[1].dg, 4 * C);
      assert_memory_equal(r[0].db, r[1].db, 4 * C);
    }
    free(q), free(g);
    bn_run_free(&r[0]), bn_run_free(&r[1]);
  }
}

static void test_u8_backward_zero_gradient(void **state) {
  (void)state;
  /* A zero incoming gradient (gamma = 0 at initialisation) gives zeros, no NaN. */
  i8t_workspace *ws = ws_make();
  size_t rows = 40, C = 2, n = rows * C;
  uint8_t q[80];
  int8_t g[80], o8[80];
  int16_t o16[80];
  for (size_t i = 0; i < n; i++) q[i] = (uint8_t)(i * 3), g[i] = 0;
  i8t_qparams p = {0.1f, 0};
  i8t_norm_config cfg;
  i8t_norm_config_init(&cfg, I8T_NORM_RANGE);
  float mean[2], scale[2], gamma[2] = {0, 0}, dg[2], db[2];
  assert_int_equal(i8t_norm_stats_u8(ws, &cfg, q, p, rows, C, mean, scale, NULL), I8T_OK);
  i8t_grad_out out;
  memset(&out, 0, sizeof out);
  out.s8 = o8, out.s16 = o16;
  assert_int_equal(i8t_norm_backward_u8(ws, &cfg, q, p, rows, C, g, 1.0f, mean, scale, gamma, dg,
                                        db, &out),
                   I8T_OK);
  for (size_t i = 0; i < n; i++) assert_true(o8[i] == 0 && o16[i] == 0);
  assert_true(out.s8_scale > 0.0f && isfinite(out.s8_scale));
  i8t_workspace_destroy(ws);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_constant_and_chunks),
      cmocka_unit_test(test_range_bn_fd),
      cmocka_unit_test(test_tiny_batches_no_nan),
      cmocka_unit_test(test_u8_stats_match_f32),
      cmocka_unit_test(test_u8_backward_matches_f32),
      cmocka_unit_test(test_u8_backward_threads_identical),
      cmocka_unit_test(test_u8_backward_zero_gradient),
  };
  if (getenv("I8T_TEST_FILTER")) cmocka_set_test_filter(getenv("I8T_TEST_FILTER"));
  return cmocka_run_group_tests(tests, NULL, NULL);
}
