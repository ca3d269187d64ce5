/* The 1-channel stem convolution (3x3, stride 1, pad 1): its direct kernels
 * (kernel table entries conv3x3_c1_fwd / _wgrad) on every path against a
 * plain integer reference, and the layer calls that route to them (forward
 * with per-sample ranges, weight gradient) bit-exact at 1-3 threads, on
 * random and extreme inputs, odd widths, 1x1 / 2x2 images and rows long
 * enough to widen the int32 sums inside a row. */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "int8train/layers.h"
#include "isa_list.h"
#include "kernel_table.h"
#include "test_util.h"

/* How a case fills its operands. */
typedef enum fill_kind {
  FILL_RANDOM,
  FILL_MAX,   /* x all 255, w all +127, dy all +32767 */
  FILL_MIXED, /* x all 0, w all -128, dy all -32768 */
  FILL_SIGNS, /* x 0 / 255 alternating, w +-127, dy +-32767 */
} fill_kind;

typedef struct stem_case {
  int batch, h, w, out_c;
  fill_kind fill;
  int zp;
} stem_case;

typedef struct operands {
  uint8_t *x;
  int8_t *w;
  int16_t *dy;
  size_t nx, nw, ny;
} operands;

static operands make_operands(const stem_case *c, uint64_t seed) {
  operands o;
  o.nx = (size_t)c->batch * c->h * c->w;
  o.nw = (size_t)c->out_c * 9;
  o.ny = o.nx * (size_t)c->out_c;
  o.x = malloc(o.nx);
  o.w = malloc(o.nw);
  o.dy = malloc(o.ny * sizeof *o.dy);
  for (size_t i = 0; i < o.nx; i++) {
    int v = test_rand_range(&seed, 0, 255);
    if (c->fill == FILL_MAX) v = 255;
    if (c->fill == FILL_MIXED) v = 0;
    if (c->fill == FILL_SIGNS) v = i % 2 ? 255 : 0;
    o.x[i] = (uint8_t)v;
  }
  for (size_t i = 0; i < o.nw; i++) {
    int v = i % 11 == 0 ? -128 : test_rand_range(&seed, -127, 127);
    if (c->fill == FILL_MAX) v = 127;
    if (c->fill == FILL_MIXED) v = -128;
    if (c->fill == FILL_SIGNS) v = i % 3 ? -127 : 127;
    o.w[i] = (int8_t)v;
  }
  for (size_t i = 0; i < o.ny; i++) {
    int v = i % 7 == 0 ? (i % 2 ? 32767 : -32768) : test_rand_range(&seed, -32768, 32767);
    if (c->fill == FILL_MAX) v = 32767;
    if (c->fill == FILL_MIXED) v = -32768;
    if (c->fill == FILL_SIGNS) v = (i / 16) % 2 ? -32767 : 32767;
    o.dy[i] = (int16_t)v;
  }
  return o;
}

static void free_operands(operands *o) { free(o->x), free(o->w), free(o->dy); }

/* y[n][oy][ox][co] = sum (x - zp) w over the 3x3 window (padding: x = zp),
 * dw[co][tap] = sum dy * (x - zp). */
static void reference(const stem_case *c, const operands *o, int64_t *y, int64_t *dw) {
  int H = c->h, W = c->w, C = c->out_c;
  memset(dw, 0, o->nw * sizeof *dw);
  for (int n = 0; n < c->batch; n++)
    for (int oy = 0; oy < H; oy++)
      for (int ox = 0; ox < W; ox++)
        for (int co = 0; co < C; co++) {
          size_t p = ((size_t)(n * H + oy) * W + ox) * C + co;
          int64_t acc = 0;
          for (int t = 0; t < 9; t++) {
            int iy = oy - 1 + t / 3, ix = ox - 1 + t % 3, xv = 0;
            if (iy >= 0 && iy < H && ix >= 0 && ix < W)
              xv = o->x[(size_t)(n * H + iy) * W + ix] - c->zp;
            acc += (int64_t)xv * o->w[co * 9 + t];
            dw[co * 9 + t] += (int64_t)o->dy[p] * xv;
          }
          y[p] = acc;
        }
}

/* The padded image of kernel_table.h: (h + 2) rows of w + 3 elements. */
static void pad_image(const stem_case *c, const uint8_t *x, uint8_t *xp, int16_t *xs) {
  size_t ld = (size_t)c->w + 3;
  for (size_t i = 0; i < ((size_t)c->h + 2) * ld; i++) xp[i] = (uint8_t)c->zp, xs[i] = 0;
  for (int iy = 0; iy < c->h; iy++)
    for (int ix = 0; ix < c->w; ix++) {
      xp[(size_t)(iy + 1) * ld + ix + 1] = x[(size_t)iy * c->w + ix];
      xs[(size_t)(iy + 1) * ld + ix + 1] = (int16_t)(x[(size_t)iy * c->w + ix] - c->zp);
    }
}

/* The table's kernels on sample 0, channels 0..15, against the reference:
 * y and the per-channel extremes, the weight gradient (either may be NULL). */
static void check_kernels(const i8t_kernel_table *t, const stem_case *c) {
  operands o = make_operands(c, 77 + (uint64_t)c->w);
  int64_t *ry = malloc(o.ny * sizeof *ry), *rdw = malloc(o.nw * sizeof *rdw);
  stem_case one = *c;
  one.batch = 1;
  reference(&one, &o, ry, rdw);
  size_t ld = (size_t)c->w + 3, rows = (size_t)c->h * c->w, C = (size_t)c->out_c;
  uint8_t *xp = malloc(((size_t)c->h + 2) * ld);
  int16_t *xs = malloc(((size_t)c->h + 2) * ld * sizeof *xs);
  int8_t wq[3 * 16 * 4] = {0};
  int32_t bias[16], mn[16], mx[16];
  int32_t *y = malloc(rows * C * sizeof *y);
  int64_t acc[9 * 16] = {0};
  pad_image(c, o.x, xp, xs);
  for (int co = 0; co < 16; co++) {
    int32_t sum = 0;
    for (int tap = 0; tap < 9; tap++) {
      wq[((tap / 3) * 16 + co) * 4 + tap % 3] = o.w[co * 9 + tap];
      sum += o.w[co * 9 + tap];
    }
    bias[co] = t->conv3x3_c1_fwd.s16_image ? 0 : -c->zp * sum;
  }
  memset(y, 0x55, rows * C * sizeof *y);
  if (t->conv3x3_c1_fwd.run)
    t->conv3x3_c1_fwd.run((size_t)c->h, (size_t)c->w,
                          t->conv3x3_c1_fwd.s16_image ? (const void *)xs : (const void *)xp, ld,
                          wq, bias, y, C, mn, mx);
  if (t->conv3x3_c1_wgrad.run)
    t->conv3x3_c1_wgrad.run((size_t)c->h, (size_t)c->w, xs, ld, o.dy, C, acc);
  for (size_t co = 0; co < 16; co++) {
    for (int tap = 0; t->conv3x3_c1_wgrad.run && tap < 9; tap++)
      assert_true(acc[tap * 16 + co] == rdw[co * 9 + tap]);
    if (!t->conv3x3_c1_fwd.run) continue;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t p = 0; p < rows; p++) {
      assert_true(y[p * C + co] == ry[p * C + co]);
      lo = ry[p * C + co] < lo ? ry[p * C + co] : lo;
      hi = ry[p * C + co] > hi ? ry[p * C + co] : hi;
    }
    assert_true(mn[co] == lo && mx[co] == hi);
    if (C > 16) assert_true(y[co + 16] == 0x55555555); /* channels of the next block untouched */
  }
  free(xp), free(xs), free(y), free(ry), free(rdw);
  free_operands(&o);
}

/* The per-sample range as conv.c's elementwise definition. */
static void reference_range(const int64_t *y, size_t rows, size_t C, const float *cs,
                            size_t ncs, float *lo, float *hi) {
  float mn = INFINITY, mx = -INFINITY;
  for (size_t p = 0; p < rows; p++)
    for (size_t c = 0; c < C; c++) {
      float v = (float)(int32_t)y[p * C + c] * cs[ncs == 1 ? 0 : c];
      mn = v < mn ? v : mn;
      mx = v > mx ? v : mx;
    }
  *lo = mn, *hi = mx;
}

/* The fused forward (i8t_conv2d_forward_u8, and the ranges-only pass with
 * y = NULL) against i8t_conv2d_forward_s8's y then i8t_requantize_s32_u8:
 * the same ranges and bytes, nearest and stochastic (the counter crossing
 * 2^32 inside the tensor), for an output range inside and one narrower
 * than the values (clamping). */
static void check_forward_u8(i8t_workspace *ws, const i8t_conv_shape *s, const operands *o,
                             uint8_t zp, const int32_t *y, const float *cs, size_t ncs,
                             const float *smin, const float *smax) {
  size_t N = (size_t)s->batch, rows = (size_t)s->in_h * s->in_w, C = (size_t)s->out_c;
  size_t count = N * rows * C;
  float *lo = malloc(2 * N * sizeof *lo), *hi = lo + N;
  uint8_t *want = malloc(count), *got = malloc(count);
  assert_true(i8t_conv2d_forward_u8_fits(s, cs, ncs));
  assert_int_equal(i8t_conv2d_forward_s8(ws, s, o->x, zp, o->w, NULL, cs, ncs, lo, hi), I8T_OK);
  assert_memory_equal(lo, smin, N * sizeof *lo);
  assert_memory_equal(hi, smax, N * sizeof *hi);
  for (int mode = 0; mode < 4; mode++) {
    float a = smin[0], b = smax[0];
    if (mode & 1) a = 0.6f * a + 0.4f * b, b = 0.4f * a + 0.6f * b; /* clamps some */
    i8t_qparams p = i8t_qparams_u8(a < b ? a : b, a < b ? b : a);
    i8t_rounding r = {mode >= 2, 0x1234, mode >= 2 ? (1ull << 32) - count / 2 : 0};
    assert_int_equal(i8t_requantize_s32_u8(ws, y, N * rows, C, cs, ncs, p, r, want), I8T_OK);
    memset(got, 0x55, count);
    assert_int_equal(i8t_conv2d_forward_u8(ws, s, o->x, zp, o->w, cs, ncs, p, r, got), I8T_OK);
    assert_memory_equal(got, want, count);
  }
  free(lo), free(want), free(got);
}

/* The layer calls at 1-3 threads, one scale and per-channel scales. */
static void check_layer(const stem_case *c) {
  i8t_conv_shape s = {c->batch, c->h, c->w, 1, c->out_c, 3, 1, 1};
  operands o = make_operands(c, 5 + (uint64_t)c->h * 100 + (uint64_t)c->w);
  int64_t *ry = malloc(o.ny * sizeof *ry), *rdw = malloc(o.nw * sizeof *rdw);
  int32_t *y = malloc(o.ny * sizeof *y);
  int64_t *dw = malloc(o.nw * sizeof *dw);
  size_t C = (size_t)c->out_c, rows = (size_t)c->h * c->w;
  float *cs = malloc(C * sizeof *cs), *smin = malloc((size_t)c->batch * sizeof(float) * 2);
  float *smax = smin + c->batch;
  reference(c, &o, ry, rdw);
  for (size_t k = 0; k < C; k++) cs[k] = 0.001f * (float)(k + 1);
  for (int threads = 1; threads <= 3; threads++) {
    i8t_context *ctx = NULL;
    i8t_workspace *ws = test_workspace(threads, &ctx);
    for (size_t ncs = 1; ncs <= C; ncs += C - 1) {
      memset(y, 0x55, o.ny * sizeof *y), memset(dw, 0x55, o.nw * sizeof *dw);
      assert_int_equal(i8t_conv2d_forward_s8(ws, &s, o.x, (uint8_t)c->zp, o.w, y, cs, ncs,
                                             smin, smax),
                       I8T_OK);
      assert_int_equal(i8t_conv2d_backward_weights_s16(ws, &s, o.dy, o.x, (uint8_t)c->zp, dw),
                       I8T_OK);
      for (size_t i = 0; i < o.ny; i++) assert_true(y[i] == ry[i]);
      for (size_t i = 0; i < o.nw; i++) assert_true(dw[i] == rdw[i]);
      for (int n = 0; n < c->batch; n++) {
        float lo, hi;
        reference_range(ry + (size_t)n * rows * C, rows, C, cs, ncs, &lo, &hi);
        assert_true(memcmp(&lo, &smin[n], sizeof lo) == 0);
        assert_true(memcmp(&hi, &smax[n], sizeof hi) == 0);
      }
      check_forward_u8(ws, &s, &o, (uint8_t)c->zp, y, cs, ncs, smin, smax);
    }
    test_workspace_free(ws, ctx);
  }
  free(ry), free(rdw), free(y), free(dw), free(cs), free(smin);
  free_operands(&o);
}

static const stem_case cases[] = {
    {1, 1, 1, 16, FILL_RANDOM, 37},  {2, 2, 2, 16, FILL_RANDOM, 0},
    {3, 5, 7, 16, FILL_RANDOM, 255}, {2, 28, 28, 16, FILL_RANDOM, 37},
    {2, 4, 9, 32, FILL_RANDOM, 128}, {1, 3, 301, 16, FILL_RANDOM, 17},
    {2, 6, 5, 16, FILL_MAX, 0},      {2, 6, 5, 16, FILL_MAX, 255},
    {2, 5, 6, 16, FILL_MIXED, 255},  {2, 5, 6, 16, FILL_MIXED, 0},
    {2, 7, 8, 16, FILL_SIGNS, 128},  {1, 2, 300, 16, FILL_MAX, 0},
    {1, 2, 300, 16, FILL_MIXED, 255}, {5, 1, 3, 48, FILL_RANDOM, 200},
};
enum { NCASES = sizeof cases / sizeof cases[0] };

/* Every case's kernels and layer on the selected ISA's table. */
static void stem(i8t_isa isa) {
  const i8t_kernel_table *t = i8t_kernels();
  (void)isa;
  for (int i = 0; i < NCASES; i++) {
    check_kernels(t, &cases[i]);
    check_layer(&cases[i]);
  }
}
#define DEFINE_STEM_ISA_TEST(name, isa) I8T_ISA_TEST(stem, name, isa)
I8T_TEST_ISAS(DEFINE_STEM_ISA_TEST)

/* Per-channel scales that are not positive normal floats keep conv.c's
 * elementwise range (zero, negative, subnormal, infinite, NaN): the layer
 * still matches the reference definition bit for bit. */
static void test_stem_unusual_scales(void **state) {
  stem_case c = {2, 3, 4, 16, FILL_SIGNS, 128};
  i8t_conv_shape s = {c.batch, c.h, c.w, 1, c.out_c, 3, 1, 1};
  operands o = make_operands(&c, 9);
  int64_t *ry = malloc(o.ny * sizeof *ry), rdw[16 * 9];
  int32_t *y = malloc(o.ny * sizeof *y);
  float cs[16], smin[2], smax[2];
  const float odd[] = {0.0f, -0.5f, 1e-42f, INFINITY, NAN};
  (void)state;
  reference(&c, &o, ry, rdw);
  i8t_context *ctx = NULL;
  i8t_workspace *ws = test_workspace(1, &ctx);
  for (size_t k = 0; k < sizeof odd / sizeof odd[0]; k++) {
    for (int i = 0; i < 16; i++) cs[i] = i == 5 ? odd[k] : 0.01f;
    assert_int_equal(i8t_conv2d_forward_s8(ws, &s, o.x, 128, o.w, y, cs, 16, smin, smax), I8T_OK);
    for (size_t i = 0; i < o.ny; i++) assert_true(y[i] == ry[i]);
    /* no fused forward, no ranges-only pass for these scales */
    uint8_t q[2 * 12 * 16];
    assert_false(i8t_conv2d_forward_u8_fits(&s, cs, 16));
    assert_int_equal(i8t_conv2d_forward_u8(ws, &s, o.x, 128, o.w, cs, 16, i8t_qparams_u8(0, 1),
                                           (i8t_rounding){0, 0, 0}, q),
                     I8T_ERR_UNSUPPORTED);
    assert_int_equal(i8t_conv2d_forward_s8(ws, &s, o.x, 128, o.w, NULL, cs, 16, smin, smax),
                     I8T_ERR_INVALID_ARG);
    for (int n = 0; n < 2; n++) {
      float lo, hi;
      reference_range(ry + (size_t)n * 12 * 16, 12, 16, cs, 16, &lo, &hi);
      assert_true(memcmp(&lo, &smin[n], sizeof lo) == 0 && memcmp(&hi, &smax[n], sizeof hi) == 0);
    }
  }
  test_workspace_free(ws, ctx);
  free(ry), free(y);
  free_operands(&o);
}

#define LIST_STEM_ISA_TEST(name, isa) cmocka_unit_test(test_stem_##name),

int main(void) {
  const struct CMUnitTest tests[] = {
      I8T_TEST_ISAS(LIST_STEM_ISA_TEST)
      cmocka_unit_test(test_stem_unusual_scales),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
