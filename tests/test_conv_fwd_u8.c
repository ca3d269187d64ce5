/* The fused int8 conv forward on the GEMM path (i8t_conv2d_forward_u8 and the
 * ranges-only i8t_conv2d_forward_s8 with y = NULL) against forward_s8's y then
 * i8t_requantize_s32_u8: the same bytes and ranges on the path that takes it
 * (AVX-512 VNNI, natively or through SIMDe), every layout of the test hook,
 * 1-3 threads, one or per-channel scales, nearest and stochastic rounding;
 * shapes that do not fit, and every shape on the other paths, are refused
 * with a status (and forward_s8 still gives the right y). */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "int8train/layers.h"
#include "isa_list.h"
#include "nn/nn_conv.h"
#include "test_util.h"

/* How a case fills x and w. */
typedef enum fill_kind {
  FILL_RANDOM,
  FILL_MAX,   /* x all 255, w all +127 */
  FILL_MIN,   /* x all 0, w all +127: with zp 255, the most negative sums */
  FILL_SIGNS, /* x 0 / 255 alternating, w +-127 */
} fill_kind;

typedef struct fwd_case {
  i8t_conv_shape s;
  fill_kind fill;
  int zp;
} fwd_case;

typedef struct operands {
  uint8_t *x;
  int8_t *w;
  size_t nx, nw, ny, rows; /* rows: output pixels per sample */
} operands;

static operands make_operands(const fwd_case *c, uint64_t seed) {
  const i8t_conv_shape *s = &c->s;
  operands o;
  o.rows = (size_t)i8t_conv_out_h(s) * (size_t)i8t_conv_out_w(s);
  o.nx = (size_t)s->batch * s->in_h * s->in_w * s->in_c;
  o.nw = (size_t)s->out_c * i8t_conv_k(s);
  o.ny = (size_t)s->batch * o.rows * s->out_c;
  o.x = malloc(o.nx);
  o.w = malloc(o.nw);
  for (size_t i = 0; i < o.nx; i++) {
    int v = test_rand_range(&seed, 0, 255);
    if (c->fill == FILL_MAX) v = 255;
    if (c->fill == FILL_MIN) v = 0;
    if (c->fill == FILL_SIGNS) v = i % 2 ? 255 : 0;
    o.x[i] = (uint8_t)v;
  }
  for (size_t i = 0; i < o.nw; i++) {
    int v = test_rand_range(&seed, -127, 127);
    if (c->fill == FILL_MAX || c->fill == FILL_MIN) v = 127;
    if (c->fill == FILL_SIGNS) v = i % 3 ? -127 : 127;
    o.w[i] = (int8_t)v;
  }
  return o;
}

static void free_operands(operands *o) { free(o->x), free(o->w); }

/* y = sum (x - zp) w over each window, padding counting as x = zp. */
static void reference(const fwd_case *c, const operands *o, int64_t *y) {
  const i8t_conv_shape *s = &c->s;
  int OH = i8t_conv_out_h(s), OW = i8t_conv_out_w(s), k = s->kernel, Ci = s->in_c;
  size_t K = i8t_conv_k(s);
  for (int n = 0; n < s->batch; n++)
    for (int oy = 0; oy < OH; oy++)
      for (int ox = 0; ox < OW; ox++)
        for (int co = 0; co < s->out_c; co++) {
          int64_t acc = 0;
          for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
              int iy = oy * s->stride - s->pad + ky, ix = ox * s->stride - s->pad + kx;
              if (iy < 0 || iy >= s->in_h || ix < 0 || ix >= s->in_w) continue;
              const uint8_t *px = o->x + (((size_t)n * s->in_h + iy) * s->in_w + ix) * Ci;
              const int8_t *wk = o->w + co * K + (size_t)(ky * k + kx) * Ci;
              for (int ci = 0; ci < Ci; ci++) acc += (int64_t)(px[ci] - c->zp) * wk[ci];
            }
          y[(((size_t)n * OH + oy) * OW + ox) * s->out_c + co] = acc;
        }
}

/* The per-sample range by its elementwise definition. */
static void reference_range(const int64_t *y, size_t rows, size_t C, const float *cs,
                            size_t ncs, float *lo, float *hi) {
  float mn = INFINITY, mx = -INFINITY;
  for (size_t p = 0; p < rows * C; p++) {
    float v = (float)(int32_t)y[p] * cs[ncs == 1 ? 0 : p % C];
    mn = v < mn ? v : mn;
    mx = v > mx ? v : mx;
  }
  *lo = mn, *hi = mx;
}

/* forward_s8 with y against the reference (values and ranges), the
 * ranges-only pass against it, then forward_u8 against y requantized, for
 * an output range inside the values and one narrower (clamping), nearest
 * and stochastic (the counter crossing 2^32 inside the tensor). */
static void check_fused(i8t_workspace *ws, const fwd_case *c, const operands *o,
                        const int64_t *ry, const float *cs, size_t ncs) {
  const i8t_conv_shape *s = &c->s;
  size_t N = (size_t)s->batch, C = (size_t)s->out_c, count = o->ny;
  const uint8_t zp = (uint8_t)c->zp;
  int32_t *y = malloc(count * sizeof *y);
  float *smin = malloc(4 * N * sizeof *smin), *smax = smin + N, *lo = smax + N, *hi = lo + N;
  uint8_t *want = malloc(count), *got = malloc(count);
  memset(y, 0x55, count * sizeof *y);
  assert_int_equal(i8t_conv2d_forward_s8(ws, s, o->x, zp, o->w, y, cs, ncs, smin, smax), I8T_OK);
  for (size_t i = 0; i < count; i++) assert_true(y[i] == ry[i]);
  for (size_t n = 0; n < N; n++) {
    float a, b;
    reference_range(ry + n * o->rows * C, o->rows, C, cs, ncs, &a, &b);
    assert_true(memcmp(&a, &smin[n], sizeof a) == 0 && memcmp(&b, &smax[n], sizeof b) == 0);
  }
  memset(lo, 0x55, 2 * N * sizeof *lo);
  assert_int_equal(i8t_conv2d_forward_s8(ws, s, o->x, zp, o->w, NULL, cs, ncs, lo, hi), I8T_OK);
  assert_memory_equal(lo, smin, N * sizeof *lo);
  assert_memory_equal(hi, smax, N * sizeof *hi);
  for (int mode = 0; mode < 4; mode++) {
    float a = smin[0], b = smax[0];
    for (size_t n = 1; n < N; n++) a = fminf(a, smin[n]), b = fmaxf(b, smax[n]);
    if (mode & 1) a = 0.6f * a + 0.4f * b, b = 0.4f * a + 0.6f * b; /* clamps some */
    i8t_qparams p = i8t_qparams_u8(a < b ? a : b, a < b ? b : a);
    i8t_rounding r = {mode >= 2, 0x1234, mode >= 2 ? (1ull << 32) - count / 2 : 0};
    assert_int_equal(i8t_requantize_s32_u8(ws, y, N * o->rows, C, cs, ncs, p, r, want), I8T_OK);
    memset(got, 0x55, count);
    assert_int_equal(i8t_conv2d_forward_u8(ws, s, o->x, zp, o->w, cs, ncs, p, r, got), I8T_OK);
    assert_memory_equal(got, want, count);
  }
  free(y), free(smin), free(want), free(got);
}

/* A shape without the fused route: refused by forward_u8 and by the
 * ranges-only pass, forward_s8 with y unchanged. */
static void check_refused(i8t_workspace *ws, const fwd_case *c, const operands *o,
                          const int64_t *ry, const float *cs, size_t ncs) {
  const i8t_conv_shape *s = &c->s;
  size_t N = (size_t)s->batch;
  int32_t *y = malloc(o->ny * sizeof *y);
  float *smin = malloc(2 * N * sizeof *smin), *smax = smin + N;
  uint8_t *q = malloc(o->ny);
  assert_false(i8t_conv2d_forward_u8_fits(s, cs, ncs));
  assert_int_equal(i8t_conv2d_forward_u8(ws, s, o->x, (uint8_t)c->zp, o->w, cs, ncs,
                                         i8t_qparams_u8(-1, 1), (i8t_rounding){0, 0, 0}, q),
                   I8T_ERR_UNSUPPORTED);
  assert_int_equal(i8t_conv2d_forward_s8(ws, s, o->x, (uint8_t)c->zp, o->w, NULL, cs, ncs, smin,
                                         smax),
                   I8T_ERR_INVALID_ARG);
  assert_int_equal(i8t_conv2d_forward_s8(ws, s, o->x, (uint8_t)c->zp, o->w, y, cs, ncs, smin,
                                         smax),
                   I8T_OK);
  for (size_t i = 0; i < o->ny; i++) assert_true(y[i] == ry[i]);
  free(y), free(smin), free(q);
}

/* One case at 1-3 threads, one scale and per-channel scales (some negative
 * and one zero: the GEMM path takes any), every layout of the test hook
 * (batched with a small chunk cap, so that several chunks run). */
static void check_case(const fwd_case *c, int fits) {
  const i8t_conv_shape *s = &c->s;
  operands o = make_operands(c, 11 + (uint64_t)s->in_h * 131 + (uint64_t)s->out_c);
  int64_t *ry = malloc(o.ny * sizeof *ry);
  size_t C = (size_t)s->out_c;
  float *cs = malloc(C * sizeof *cs);
  reference(c, &o, ry);
  for (size_t k = 0; k < C; k++) cs[k] = 0.001f * (float)(k + 1) * (k % 5 == 3 ? -1.0f : 1.0f);
  if (C > 2) cs[2] = 0.0f;
  for (int threads = 1; threads <= 3; threads++) {
    i8t_context *ctx = NULL;
    i8t_workspace *ws = test_workspace(threads, &ctx);
    for (int layout = 0; layout <= 2; layout++) {
      i8t_conv_layout_for_tests(layout, layout == 1 ? 4096 : 0);
      for (size_t ncs = 1; ncs <= C; ncs += C > 1 ? C - 1 : 1) {
        assert_int_equal(i8t_conv2d_forward_u8_fits(s, cs, ncs), fits);
        if (fits)
          check_fused(ws, c, &o, ry, cs, ncs);
        else
          check_refused(ws, c, &o, ry, cs, ncs);
      }
    }
    i8t_conv_layout_for_tests(0, 0);
    test_workspace_free(ws, ctx);
  }
  free(ry), free(cs);
  free_operands(&o);
}

/* {batch, in_h, in_w, in_c, out_c, kernel, stride, pad}: the resnet8
 * shortcut (small), a direct 1x1, small windows over few channels, K = 16
 * at the bound, K not a multiple of 4, narrow, wide and odd out_c (row
 * groups, padded outputs), one sample of many rows (per task by default). */
static const fwd_case fitting[] = {
    {{3, 9, 9, 16, 32, 1, 2, 0}, FILL_RANDOM, 37},
    {{2, 8, 8, 16, 64, 1, 2, 0}, FILL_RANDOM, 128},
    {{2, 5, 7, 16, 24, 1, 1, 0}, FILL_RANDOM, 3},
    {{2, 6, 5, 4, 8, 2, 1, 1}, FILL_RANDOM, 200},
    {{2, 7, 7, 4, 16, 2, 2, 0}, FILL_RANDOM, 90},
    {{2, 4, 4, 16, 32, 1, 1, 0}, FILL_RANDOM, 0},
    {{2, 8, 8, 3, 16, 2, 1, 1}, FILL_RANDOM, 255},
    {{3, 5, 5, 8, 5, 1, 1, 0}, FILL_RANDOM, 17},
    {{1, 40, 24, 16, 32, 1, 1, 0}, FILL_RANDOM, 64},
    {{2, 6, 6, 16, 32, 1, 2, 0}, FILL_MAX, 0},
    {{2, 6, 6, 16, 32, 1, 2, 0}, FILL_MIN, 255},
    {{2, 5, 5, 2, 16, 2, 1, 1}, FILL_MAX, 255},
    {{2, 5, 5, 2, 16, 2, 1, 1}, FILL_MIN, 0},
    {{2, 7, 6, 16, 64, 1, 2, 0}, FILL_SIGNS, 0},
    {{2, 7, 6, 16, 64, 1, 2, 0}, FILL_SIGNS, 255},
};
/* K above the bound (27, 32, 36, 64, 144), and a 1-channel 3x3 that is not
 * the stem's (out_c not a multiple of 16). */
static const fwd_case refused[] = {
    {{2, 8, 8, 32, 64, 1, 2, 0}, FILL_RANDOM, 128},
    {{2, 6, 5, 3, 8, 3, 1, 1}, FILL_RANDOM, 200},
    {{2, 5, 5, 4, 16, 3, 1, 1}, FILL_RANDOM, 37},
    {{2, 4, 4, 64, 32, 1, 1, 0}, FILL_MAX, 0},
    {{2, 4, 4, 16, 16, 3, 1, 1}, FILL_SIGNS, 255},
    {{2, 6, 6, 1, 8, 3, 1, 1}, FILL_RANDOM, 5},
};

/* Fitting cases fit on the AVX-512 VNNI kernels only (the GEMM-path rule). */
static void fwd_u8(i8t_isa isa) {
  for (size_t i = 0; i < sizeof fitting / sizeof fitting[0]; i++)
    check_case(&fitting[i], isa == I8T_ISA_AVX512VNNI);
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) check_case(&refused[i], 0);
}
#define DEFINE_FWD_U8_ISA_TEST(name, isa) I8T_ISA_TEST(fwd_u8, name, isa)
I8T_TEST_ISAS(DEFINE_FWD_U8_ISA_TEST)

/* Bad arguments: a clear status, never a crash. */
static void test_fwd_u8_bad_args(void **state) {
  i8t_conv_shape s = {2, 6, 6, 16, 32, 1, 2, 0};
  uint8_t x[2 * 6 * 6 * 16] = {0}, q[2 * 3 * 3 * 32];
  int8_t w[32 * 16] = {0};
  float cs[32], smin[2], smax[2];
  i8t_qparams p = i8t_qparams_u8(-1, 1);
  i8t_rounding r = {0, 0, 0};
  (void)state;
  for (int i = 0; i < 32; i++) cs[i] = 0.01f;
  i8t_context *ctx = NULL;
  i8t_workspace *ws = test_workspace(1, &ctx);
  int fused = i8t_isa_selected() == I8T_ISA_AVX512VNNI; /* the GEMM-path rule's ISA */
  assert_int_equal(i8t_conv2d_forward_u8_fits(&s, cs, 1), fused);
  assert_false(i8t_conv2d_forward_u8_fits(&s, cs, 2)); /* neither 1 nor out_c scales */
  assert_false(i8t_conv2d_forward_u8_fits(&s, NULL, 1));
  assert_false(i8t_conv2d_forward_u8_fits(NULL, cs, 1));
  /* y = NULL needs the ranges */
  assert_int_equal(i8t_conv2d_forward_s8(ws, &s, x, 0, w, NULL, cs, 1, NULL, NULL),
                   I8T_ERR_INVALID_ARG);
  assert_int_equal(i8t_conv2d_forward_u8(ws, &s, x, 0, w, cs, 2, p, r, q), I8T_ERR_UNSUPPORTED);
  assert_int_equal(i8t_conv2d_forward_u8(ws, &s, x, 0, w, cs, 1, p, r, NULL),
                   I8T_ERR_INVALID_ARG);
  assert_int_equal(i8t_conv2d_forward_u8(ws, &s, NULL, 0, w, cs, 1, p, r, q),
                   I8T_ERR_INVALID_ARG);
  i8t_conv_shape bad = s;
  bad.stride = 0;
  assert_int_equal(i8t_conv2d_forward_u8(ws, &bad, x, 0, w, cs, 1, p, r, q), I8T_ERR_SHAPE);
  assert_false(i8t_conv2d_forward_u8_fits(&bad, cs, 1));
  assert_int_equal(i8t_conv2d_forward_s8(ws, &s, x, 0, w, NULL, cs, 1, smin, smax),
                   fused ? I8T_OK : I8T_ERR_INVALID_ARG);
  test_workspace_free(ws, ctx);
}

#define LIST_FWD_U8_ISA_TEST(name, isa) cmocka_unit_test(test_fwd_u8_##name),

int main(void) {
  const struct CMUnitTest tests[] = {
      I8T_TEST_ISAS(LIST_FWD_U8_ISA_TEST)
      cmocka_unit_test(test_fwd_u8_bad_args),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
