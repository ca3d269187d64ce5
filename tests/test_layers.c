/* fp32 layers: every backward against central finite differences of its own
 * forward (conv with stride / padding / 1x1, fc, standard BN, sum + ReLU,
 * max-pool, avg-pool, softmax cross-entropy), the convolution forward against
 * a direct loop, and the oneDNN and portable backends against each other. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "int8train/layers.h"
#include "test_util.h"

static float *rand_vec(size_t n, float lo, float hi, uint64_t *s) {
  float *v = malloc(n * sizeof *v);
  for (size_t i = 0; i < n; i++) v[i] = test_rand_float(s, lo, hi);
  return v;
}

static double dot(const float *a, const float *b, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}

/* L(x) = sum r * forward(x); the check compares dL/dx[i] with the analytic
 * gradient at `probes` random coordinates. */
typedef double (*loss_fn)(void *ctx, float *x);

static void check_fd(const char *what, loss_fn f, void *ctx, float *x, size_t n,
                     const float *grad, int probes, float h, double rel_tol, uint64_t seed) {
  double gmax = 0.0;
  for (size_t i = 0; i < n; i++) gmax = fabs(grad[i]) > gmax ? fabs(grad[i]) : gmax;
  for (int p = 0; p < probes; p++) {
    size_t i = (size_t)(test_rand(&seed) % n);
    float keep = x[i];
    x[i] = keep + h;
    double lp = f(ctx, x);
    x[i] = keep - h;
    double lm = f(ctx, x);
    x[i] = keep;
    double num = (lp - lm) / (2.0 * h);
    if (fabs(num - grad[i]) > rel_tol * gmax + 1e-6)
      fail_msg("%s: d/dx[%zu] finite difference %.6g, backward %.6g (max |grad| %.3g)", what, i,
               num, (double)grad[i], gmax);
  }
}

static i8t_workspace *workspace(i8t_fp32_backend backend) {
  i8t_workspace *ws;
  assert_int_equal(i8t_workspace_create(NULL, &ws), I8T_OK);
  if (backend == I8T_FP32_ONEDNN && !i8t_have_onednn()) {
    i8t_workspace_destroy(ws);
    return NULL;
  }
  assert_int_equal(i8t_workspace_set_fp32_backend(ws, backend), I8T_OK);
  return ws;
}

/* ------------------------------------------------------------------------ */
/* Convolution                                                              */
/* ------------------------------------------------------------------------ */

static void conv_direct(const i8t_conv_shape *s, const float *x, const float *w, float *y) {
  int oh = i8t_conv_out_h(s), ow = i8t_conv_out_w(s), k = s->kernel;
  for (int n = 0; n < s->batch; n++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++)
        for (int co = 0; co < s->out_c; co++) {
          double acc = 0.0;
          for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
              int iy = oy * s->stride - s->pad + ky, ix = ox * s->stride - s->pad + kx;
              if (iy < 0 || iy >= s->in_h || ix < 0 || ix >= s->in_w) continue;
              for (int ci = 0; ci < s->in_c; ci++)
                acc += (double)x[((n * s->in_h + iy) * s->in_w + ix) * s->in_c + ci] *
                       w[((co * k + ky) * k + kx) * s->in_c + ci];
            }
          y[((n * oh + oy) * ow + ox) * s->out_c + co] = (float)acc;
        }
}

typedef struct conv_ctx {
  i8t_workspace *ws;
  i8t_conv_shape s;
  float *x, *w, *y, *r;
  size_t ny;
  int wrt_w;
} conv_ctx;

static double conv_loss(void *arg, float *v) {
  conv_ctx *c = arg;
  assert_int_equal(i8t_conv2d_forward_f32(c->ws, &c->s, c->wrt_w ? c->x : v, c->wrt_w ? v : c->w,
                                          c->y),
                   I8T_OK);
  return dot(c->y, c->r, c->ny);
}

static void check_conv(i8t_fp32_backend backend, i8t_conv_shape s) {
  i8t_workspace *ws = workspace(backend);
  if (!ws) return;
  uint64_t seed = 99 + (uint64_t)s.kernel * 7 + (uint64_t)s.stride;
  size_t nx = (size_t)s.batch * s.in_h * s.in_w * s.in_c, nw = (size_t)s.out_c * i8t_conv_k(&s);
  size_t ny = (size_t)s.batch * i8t_conv_out_h(&s) * i8t_conv_out_w(&s) * s.out_c;
  float *x = rand_vec(nx, -1, 1, &seed), *w = rand_vec(nw, -1, 1, &seed);
  float *r = rand_vec(ny, -1, 1, &seed), *y = malloc(ny * 4), *ref = malloc(ny * 4);
  float *dx = malloc(nx * 4), *dw = malloc(nw * 4);
  assert_int_equal(i8t_conv2d_forward_f32(ws, &s, x, w, y), I8T_OK);
  conv_direct(&s, x, w, ref);
  for (size_t i = 0; i < ny; i++)
    if (fabsf(y[i] - ref[i]) > 1e-4f * (1.0f + fabsf(ref[i])))
      fail_msg("%s conv forward [%zu]: %g vs direct %g", i8t_workspace_fp32_backend_name(ws), i,
               (double)y[i], (double)ref[i]);
  assert_int_equal(i8t_conv2d_backward_data_f32(ws, &s, r, w, dx), I8T_OK);
  assert_int_equal(i8t_conv2d_backward_weights_f32(ws, &s, r, x, dw), I8T_OK);
  conv_ctx c = {ws, s, x, w, y, r, ny, 0};
  /* Linear in each argument: the difference quotient is exact up to rounding. */
  check_fd("conv dx", conv_loss, &c, x, nx, dx, 40, 0.25f, 1e-3, seed);
  c.wrt_w = 1;
  check_fd("conv dw", conv_loss, &c, w, nw, dw, 40, 0.25f, 1e-3, seed + 1);
  free(x), free(w), free(r), free(y), free(ref), free(dx), free(dw);
  i8t_workspace_destroy(ws);
}

static void test_conv_fd(void **state) {
  (void)state;
  const i8t_conv_shape shapes[] = {
      {2, 7, 6, 3, 4, 3, 2, 1}, /* stride 2, padding, odd sizes */
      {2, 5, 5, 4, 5, 3, 1, 1}, /* 3x3 same */
      {3, 4, 4, 6, 3, 1, 1, 0}, /* 1x1: the direct path */
      {2, 6, 6, 4, 8, 1, 2, 0}, /* 1x1 stride 2 (shortcut) */
      {1, 6, 5, 2, 3, 5, 1, 2}, /* 5x5 */
  };
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    check_conv(I8T_FP32_PORTABLE, shapes[i]);
    check_conv(I8T_FP32_ONEDNN, shapes[i]);
  }
}

static void test_conv_rejects_bad_shapes(void **state) {
  (void)state;
  i8t_conv_shape s = {1, 3, 3, 1, 1, 5, 1, 0};
  assert_int_equal(i8t_conv_check(&s), I8T_ERR_SHAPE);
  s = (i8t_conv_shape){1, 3, 3, 1, 0, 3, 1, 1};
  assert_int_equal(i8t_conv_check(&s), I8T_ERR_SHAPE);
  s = (i8t_conv_shape){1, 3, 3, 1, 1, 3, 0, 1};
  assert_int_equal(i8t_conv_check(&s), I8T_ERR_SHAPE);
  assert_true(strlen(i8t_last_error()) > 0);
}

/* ------------------------------------------------------------------------ */
/* Fully connected                                                          */
/* ------------------------------------------------------------------------ */

typedef struct fc_ctx {
  i8t_workspace *ws;
  int n, in, out, which; /* 0 x, 1 w, 2 bias */
  float *x, *w, *b, *y, *r;
} fc_ctx;

static double fc_loss(void *arg, float *v) {
  fc_ctx *c = arg;
  assert_int_equal(i8t_fc_forward_f32(c->ws, c->n, c->in, c->out, c->which == 0 ? v : c->x,
                                      c->which == 1 ? v : c->w, c->which == 2 ? v : c->b, c->y),
                   I8T_OK);
  return dot(c->y, c->r, (size_t)c->n * c->out);
}

static void check_fc(i8t_fp32_backend backend) {
  i8t_workspace *ws = workspace(backend);
  if (!ws) return;
  uint64_t seed = 5;
  int n = 5, in = 7, out = 4;
  float *x = rand_vec((size_t)n * in, -1, 1, &seed), *w = rand_vec((size_t)out * in, -1, 1, &seed);
  float *b = rand_vec((size_t)out, -1, 1, &seed), *r = rand_vec((size_t)n * out, -1, 1, &seed);
  float *y = malloc((size_t)n * out * 4), *dx = malloc((size_t)n * in * 4);
  float *dw = malloc((size_t)out * in * 4), *db = malloc((size_t)out * 4);
  assert_int_equal(i8t_fc_forward_f32(ws, n, in, out, x, w, b, y), I8T_OK);
  for (int i = 0; i < n; i++)
    for (int o = 0; o < out; o++) {
      double ref = b[o] + dot(x + i * in, w + o * in, (size_t)in);
      assert_true(fabs(y[i * out + o] - ref) < 1e-5);
    }
  assert_int_equal(i8t_fc_backward_data_f32(ws, n, in, out, r, w, dx), I8T_OK);
  assert_int_equal(i8t_fc_backward_weights_f32(ws, n, in, out, r, x, dw, db), I8T_OK);
  fc_ctx c = {ws, n, in, out, 0, x, w, b, y, r};
  check_fd("fc dx", fc_loss, &c, x, (size_t)n * in, dx, 20, 0.25f, 1e-4, 1);
  c.which = 1;
  check_fd("fc dw", fc_loss, &c, w, (size_t)out * in, dw, 20, 0.25f, 1e-4, 2);
  c.which = 2;
  check_fd("fc dbias", fc_loss, &c, b, (size_t)out, db, 8, 0.25f, 1e-4, 3);
  free(x), free(w), free(b), free(r), free(y), free(dx), free(dw), free(db);
  i8t_workspace_destroy(ws);
}

static void test_fc_fd(void **state) {
  (void)state;
  check_fc(I8T_FP32_PORTABLE);
  check_fc(I8T_FP32_ONEDNN);
}

/* ------------------------------------------------------------------------ */
/* Standard batch norm (the portable formulas; oneDNN compared in the model) */
/* ------------------------------------------------------------------------ */

typedef struct bn_ctx {
  i8t_workspace *ws;
  i8t_norm_config cfg;
  size_t rows, C;
  float *x, *gamma, *beta, *y, *r, *mean, *scale;
  int which; /* 0 x, 1 gamma, 2 beta */
} bn_ctx;

static double bn_loss(void *arg, float *v) {
  bn_ctx *c = arg;
  const float *x = c->which == 0 ? v : c->x;
  assert_int_equal(i8t_norm_stats_f32(c->ws, &c->cfg, x, c->rows, c->C, c->mean, c->scale, NULL),
                   I8T_OK);
  assert_int_equal(i8t_norm_forward_f32(c->ws, x, c->rows, c->C, c->mean, c->scale,
                                        c->which == 1 ? v : c->gamma,
                                        c->which == 2 ? v : c->beta, c->y),
                   I8T_OK);
  return dot(c->y, c->r, c->rows * c->C);
}

/* Values with distinct magnitudes per channel so that Range BN's max / min
 * do not switch under the probe step (used by test_rangebn too). */
static void check_norm_fd(i8t_norm_kind kind, size_t rows, size_t C, uint64_t seed) {
  i8t_workspace *ws = workspace(I8T_FP32_PORTABLE);
  size_t n = rows * C;
  float *x = rand_vec(n, -2, 2, &seed), *r = rand_vec(n, -1, 1, &seed);
  float *gamma = rand_vec(C, 0.5f, 1.5f, &seed), *beta = rand_vec(C, -1, 1, &seed);
  float *y = malloc(n * 4), *dx = malloc(n * 4), *dg = malloc(C * 4), *db = malloc(C * 4);
  float *mean = malloc(C * 4), *scale = malloc(C * 4);
  bn_ctx c = {ws, {0}, rows, C, x, gamma, beta, y, r, mean, scale, 0};
  i8t_norm_config_init(&c.cfg, kind);
  bn_loss(&c, x);
  assert_int_equal(i8t_norm_backward_f32(ws, &c.cfg, x, rows, C, r, mean, scale, gamma, dx, dg, db),
                   I8T_OK);
  check_fd("norm dx", bn_loss, &c, x, n, dx, 60, 1e-3f, 2e-3, seed);
  c.which = 1;
  check_fd("norm dgamma", bn_loss, &c, gamma, C, dg, (int)C, 1e-3f, 2e-3, seed + 1);
  c.which = 2;
  check_fd("norm dbeta", bn_loss, &c, beta, C, db, (int)C, 1e-3f, 2e-3, seed + 2);
  free(x), free(r), free(gamma), free(beta), free(y), free(dx), free(dg), free(db);
  free(mean), free(scale);
  i8t_workspace_destroy(ws);
}

static void test_standard_bn_fd(void **state) {
  (void)state;
  check_norm_fd(I8T_NORM_STANDARD, 37, 3, 11);
  check_norm_fd(I8T_NORM_STANDARD, 5, 4, 12); /* small batches: n = 2 is flat (outputs +-1) */
}

/* ------------------------------------------------------------------------ */
/* Sum + ReLU, pooling, softmax cross-entropy                               */
/* ------------------------------------------------------------------------ */

typedef struct act_ctx {
  float *a, *b, *y, *r;
  size_t n;
  int which;
} act_ctx;

static double act_loss(void *arg, float *v) {
  act_ctx *c = arg;
  const float *in[2] = {c->which == 0 ? v : c->a, c->which == 1 ? v : c->b};
  assert_int_equal(i8t_sum_act_forward_f32(NULL, in, 2, 1, c->n, c->y), I8T_OK);
  return dot(c->y, c->r, c->n);
}

static void test_add_relu_fd(void **state) {
  (void)state;
  uint64_t seed = 21;
  size_t n = 200;
  float *a = rand_vec(n, -1, 1, &seed), *b = rand_vec(n, -1, 1, &seed);
  float *r = rand_vec(n, -1, 1, &seed), *y = malloc(n * 4), *g = malloc(n * 4);
  for (size_t i = 0; i < n; i++) /* keep every sum away from the kink */
    if (fabsf(a[i] + b[i]) < 0.05f) a[i] += 0.1f;
  act_ctx c = {a, b, y, r, n, 0};
  act_loss(&c, a);
  assert_int_equal(i8t_relu_backward_f32(NULL, y, r, n, g), I8T_OK);
  check_fd("relu(a + b) da", act_loss, &c, a, n, g, 40, 1e-3f, 1e-3, 1);
  c.which = 1;
  check_fd("relu(a + b) db", act_loss, &c, b, n, g, 40, 1e-3f, 1e-3, 2);
  free(a), free(b), free(r), free(y), free(g);
}

typedef struct pool_ctx {
  i8t_pool_shape s;
  float *y, *r;
  size_t ny;
  int avg;
} pool_ctx;

static double pool_loss(void *arg, float *x) {
  pool_ctx *c = arg;
  if (c->avg) {
    i8t_act_shape sh = {(size_t)c->s.batch, (size_t)c->s.h * c->s.w, (size_t)c->s.c};
    assert_int_equal(i8t_avgpool_forward_f32(NULL, sh, x, c->y), I8T_OK);
  } else {
    i8t_workspace *ws;
    assert_int_equal(i8t_workspace_create(NULL, &ws), I8T_OK);
    assert_int_equal(i8t_maxpool_forward_f32(ws, &c->s, x, c->y), I8T_OK);
    i8t_workspace_destroy(ws);
  }
  return dot(c->y, c->r, c->ny);
}

static void test_pool_fd(void **state) {
  (void)state;
  i8t_workspace *ws;
  assert_int_equal(i8t_workspace_create(NULL, &ws), I8T_OK);
  const i8t_pool_shape shapes[] = {{2, 6, 6, 3, 2, 2}, {1, 7, 5, 2, 3, 2}};
  for (int k = 0; k < 2; k++) {
    i8t_pool_shape s = shapes[k];
    uint64_t seed = 31 + (uint64_t)k;
    size_t nx = (size_t)s.batch * s.h * s.w * s.c;
    size_t ny = (size_t)s.batch * i8t_pool_out_h(&s) * i8t_pool_out_w(&s) * s.c;
    float *x = malloc(nx * 4), *r = rand_vec(ny, -1, 1, &seed), *y = malloc(ny * 4);
    float *dx = malloc(nx * 4);
    for (size_t i = 0; i < nx; i++) x[i] = (float)((i * 7919) % nx) * 0.01f; /* distinct */
    pool_ctx c = {s, y, r, ny, 0};
    assert_int_equal(i8t_maxpool_backward_f32(ws, &s, x, r, dx, 0), I8T_OK);
    check_fd("maxpool dx", pool_loss, &c, x, nx, dx, 60, 1e-3f, 1e-3, seed);
    /* accumulate adds to what is there */
    float *dx2 = malloc(nx * 4);
    for (size_t i = 0; i < nx; i++) dx2[i] = 1.0f;
    assert_int_equal(i8t_maxpool_backward_f32(ws, &s, x, r, dx2, 1), I8T_OK);
    for (size_t i = 0; i < nx; i++) assert_true(fabsf(dx2[i] - 1.0f - dx[i]) < 1e-6f);
    i8t_act_shape sh = {(size_t)s.batch, (size_t)s.h * s.w, (size_t)s.c};
    size_t na = (size_t)s.batch * s.c;
    float *ra = rand_vec(na, -1, 1, &seed);
    pool_ctx ca = {s, y, ra, na, 1};
    assert_int_equal(i8t_avgpool_backward_f32(NULL, sh, ra, dx, 0), I8T_OK);
    check_fd("avgpool dx", pool_loss, &ca, x, nx, dx, 30, 0.25f, 1e-4, seed);
    free(x), free(r), free(y), free(dx), free(dx2), free(ra);
  }
  i8t_workspace_destroy(ws);
}

typedef struct xent_ctx {
  const uint8_t *labels;
  size_t n, k;
} xent_ctx;

static double xent_loss(void *arg, float *z) {
  xent_ctx *c = arg;
  double loss;
  size_t correct;
  assert_int_equal(i8t_softmax_xent(z, c->labels, c->n, c->k, &loss, &correct, NULL), I8T_OK);
  return loss;
}

static void test_softmax_xent(void **state) {
  (void)state;
  uint64_t seed = 41;
  size_t n = 6, k = 5;
  float *z = rand_vec(n * k, -3, 3, &seed), *dz = malloc(n * k * 4);
  uint8_t labels[6] = {0, 4, 2, 2, 1, 3};
  double loss;
  size_t correct, expect = 0;
  assert_int_equal(i8t_softmax_xent(z, labels, n, k, &loss, &correct, dz), I8T_OK);
  for (size_t i = 0; i < n; i++) {
    size_t arg = 0;
    for (size_t j = 1; j < k; j++) arg = z[i * k + j] > z[i * k + arg] ? j : arg;
    expect += arg == labels[i];
  }
  assert_int_equal(correct, expect);
  xent_ctx c = {labels, n, k};
  check_fd("softmax-xent dz", xent_loss, &c, z, n * k, dz, 30, 1e-3f, 1e-3, 1);
  /* huge logits stay finite */
  z[0] = 1e30f;
  assert_int_equal(i8t_softmax_xent(z, labels, n, k, &loss, &correct, dz), I8T_OK);
  assert_true(isfinite(loss));
  labels[1] = 9;
  assert_int_equal(i8t_softmax_xent(z, labels, n, k, &loss, &correct, dz), I8T_ERR_INVALID_ARG);
  free(z), free(dz);
}

static void test_sgd(void **state) {
  (void)state;
  float w[2] = {1.0f, -2.0f}, g[2] = {0.5f, 0.25f}, v[2] = {0.1f, 0.0f};
  i8t_sgd_update(w, g, v, 2, 0.1f, 0.9f, 0.01f);
  /* v = 0.9 v + g + 0.01 w; w -= 0.1 v */
  assert_true(fabsf(v[0] - (0.09f + 0.5f + 0.01f)) < 1e-6f);
  assert_true(fabsf(w[0] - (1.0f - 0.1f * v[0])) < 1e-6f);
  assert_true(fabsf(v[1] - (0.25f - 0.02f)) < 1e-6f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conv_fd),        cmocka_unit_test(test_conv_rejects_bad_shapes),
      cmocka_unit_test(test_fc_fd),          cmocka_unit_test(test_standard_bn_fd),
      cmocka_unit_test(test_add_relu_fd),    cmocka_unit_test(test_pool_fd),
      cmocka_unit_test(test_softmax_xent),   cmocka_unit_test(test_sgd),
  };
  if (getenv("I8T_TEST_FILTER")) cmocka_set_test_filter(getenv("I8T_TEST_FILTER"));
  return cmocka_run_group_tests(tests, NULL, NULL);
}
