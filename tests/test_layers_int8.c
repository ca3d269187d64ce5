/* int8 layers: the convolution's three integer passes exactly equal to a
 * direct integer loop, and close to fp32 on the unquantized tensors within a
 * bound derived from the quantization steps; the fused sum + ReLU forward /
 * backward, requantization, max-pool and pooled gradients against plain
 * float references. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "int8train/layers.h"
#include "isa_list.h"
#include "nn/nn_conv.h"
#include "test_util.h"

static i8t_context *test_ctx; /* the context of the last ws_make(threads > 1) */

static i8t_workspace *ws_make(int threads) { return test_workspace(threads, &test_ctx); }

static void ws_free(i8t_workspace *ws, i8t_context *ctx) { test_workspace_free(ws, ctx); }

/* Direct integer convolution: y = sum (x - zp) w, and the transposed and
 * weight-gradient sums, all in int64. */
static void conv_ref_int(const i8t_conv_shape *s, const uint8_t *x, int zp, const int8_t *w,
                         int64_t *y, const int8_t *dy8, int64_t *dx, const int16_t *dy16,
                         int64_t *dw) {
  int oh = i8t_conv_out_h(s), ow = i8t_conv_out_w(s), k = s->kernel, K = (int)i8t_conv_k(s);
  memset(dx, 0, (size_t)s->batch * s->in_h * s->in_w * s->in_c * 8);
  memset(dw, 0, (size_t)s->out_c * K * 8);
  for (int n = 0; n < s->batch; n++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++)
        for (int co = 0; co < s->out_c; co++) {
          size_t o = ((size_t)(n * oh + oy) * ow + ox) * s->out_c + co;
          int64_t acc = 0;
          for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++)
              for (int ci = 0; ci < s->in_c; ci++) {
                int iy = oy * s->stride - s->pad + ky, ix = ox * s->stride - s->pad + kx;
                int kk = (ky * k + kx) * s->in_c + ci;
                int xv = 0; /* padding is real zero: q = zp */
                size_t xi = 0;
                int inside = iy >= 0 && iy < s->in_h && ix >= 0 && ix < s->in_w;
                if (inside) {
                  xi = ((size_t)(n * s->in_h + iy) * s->in_w + ix) * s->in_c + ci;
                  xv = x[xi] - zp;
                }
                acc += (int64_t)xv * w[co * K + kk];
                dw[co * K + kk] += (int64_t)dy16[o] * xv;
                if (inside) dx[xi] += (int64_t)dy8[o] * w[co * K + kk];
              }
          y[o] = acc;
        }
}

/* The int8 passes' layouts (nn_conv.h's test hook): by shape, batched in
 * chunks of the default size, batched one sample per chunk (chunk bytes 1),
 * one block of samples per task. */
static const struct {
  int layout;
  size_t chunk_bytes;
} conv_layouts[] = {{0, 0}, {1, 0}, {1, 1}, {2, 0}};

/* i8t_conv2d_backward_data_absmax_s8 with an int8 source before dx and a
 * ReLU mask (then none): the same dx, and max |g| of the masked sum
 * (0 + sc * g8 + dx_scale * dx, in that order) over the whole input. */
static void check_backward_data_absmax(i8t_workspace *ws, const i8t_conv_shape *s,
                                       const int8_t *dy8, const int8_t *w, int32_t *dx,
                                       const int64_t *rdx, int seed) {
  size_t nx = (size_t)s->batch * s->in_h * s->in_w * s->in_c;
  int8_t *g8 = malloc(nx);
  uint8_t *mask = malloc(nx);
  uint64_t rng = 77 + (uint64_t)seed;
  for (size_t i = 0; i < nx; i++) {
    g8[i] = (int8_t)(i % 5 == 0 ? -128 : test_rand_range(&rng, -127, 127));
    mask[i] = (uint8_t)(test_rand(&rng) % 3 != 0);
  }
  i8t_grad_src other = {I8T_GRAD_S8, g8, 3e-3f};
  for (int mode = 0; mode < 3; mode++) { /* masked; unmasked; masked, sum replacing dx */
    const int masked = mode != 1, in_place = mode == 2;
    i8t_grad_sum_ref sum = {&other, 1, 1e-7f, masked ? mask : NULL,
                            in_place ? (float *)(void *)dx : NULL};
    float got = -1.0f, want = 0.0f;
    assert_int_equal(i8t_conv2d_backward_data_absmax_s8(ws, s, dy8, w, dx, &sum, &got), I8T_OK);
    for (size_t i = 0; i < nx; i++) {
      float v = 0.0f + other.scale * (float)g8[i];
      v = v + sum.dx_scale * (float)(int32_t)rdx[i];
      if (masked && !mask[i]) v = 0.0f;
      want = fabsf(v) > want ? fabsf(v) : want;
      if (!in_place) {
        assert_true(dx[i] == rdx[i]);
      } else {
        float g;
        memcpy(&g, &dx[i], sizeof g);
        assert_true(g == v);
      }
    }
    assert_true(got == want);
  }
  free(g8), free(mask);
}

static void check_conv_exact(i8t_conv_shape s) {
  uint64_t seed = 1000 + (uint64_t)s.kernel * 10 + (uint64_t)s.stride + (uint64_t)s.out_c;
  size_t nx = (size_t)s.batch * s.in_h * s.in_w * s.in_c, K = i8t_conv_k(&s);
  size_t nw = (size_t)s.out_c * K;
  size_t ny = (size_t)s.batch * i8t_conv_out_h(&s) * i8t_conv_out_w(&s) * s.out_c;
  uint8_t *x = malloc(nx);
  int8_t *w = malloc(nw), *dy8 = malloc(ny);
  int16_t *dy16 = malloc(ny * 2);
  int32_t *y = malloc(ny * 4), *dx = malloc(nx * 4);
  int64_t *dw = malloc(nw * 8), *ry = malloc(ny * 8), *rdx = malloc(nx * 8), *rdw = malloc(nw * 8);
  float *smin = malloc((size_t)s.batch * sizeof *smin), *smax = malloc((size_t)s.batch * sizeof *smax);
  /* Extremes included: 0 / 255 activations, +-127 weights, -128 / 127 and
   * +-32767 errors. */
  for (size_t i = 0; i < nx; i++) x[i] = (uint8_t)(i % 17 == 0 ? 255 : test_rand_range(&seed, 0, 255));
  for (size_t i = 0; i < nw; i++) w[i] = (int8_t)(i % 13 == 0 ? -127 : test_rand_range(&seed, -127, 127));
  for (size_t i = 0; i < ny; i++) {
    dy8[i] = (int8_t)(i % 7 == 0 ? (i % 2 ? 127 : -128) : test_rand_range(&seed, -127, 127));
    dy16[i] = (int16_t)(i % 11 == 0 ? -32767 : test_rand_range(&seed, -32767, 32767));
  }
  int zp = 37;
  float col_scale = 0.5f;
  conv_ref_int(&s, x, zp, w, ry, dy8, rdx, dy16, rdw);
  size_t per = ny / (size_t)s.batch;
  for (int threads = 1; threads <= 3; threads++) {
    i8t_workspace *ws = ws_make(threads);
    for (size_t l = 0; l < sizeof conv_layouts / sizeof conv_layouts[0]; l++) {
      i8t_conv_layout_for_tests(conv_layouts[l].layout, conv_layouts[l].chunk_bytes);
      memset(y, 0x55, ny * 4), memset(dx, 0x55, nx * 4), memset(dw, 0x55, nw * 8);
      assert_int_equal(i8t_conv2d_forward_s8(ws, &s, x, (uint8_t)zp, w, y, &col_scale, 1, smin, smax),
                       I8T_OK);
      assert_int_equal(i8t_conv2d_backward_data_s8(ws, &s, dy8, w, dx), I8T_OK);
      assert_int_equal(i8t_conv2d_backward_weights_s16(ws, &s, dy16, x, (uint8_t)zp, dw), I8T_OK);
      for (size_t i = 0; i < ny; i++) assert_true(y[i] == ry[i]);
      for (size_t i = 0; i < nx; i++) assert_true(dx[i] == rdx[i]);
      memset(dx, 0x55, nx * 4);
      check_backward_data_absmax(ws, &s, dy8, w, dx, rdx, threads);
      for (size_t i = 0; i < nw; i++) assert_true(dw[i] == rdw[i]);
      for (int n = 0; n < s.batch; n++) {
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        for (size_t i = 0; i < per; i++) {
          lo = ry[n * per + i] < lo ? ry[n * per + i] : lo;
          hi = ry[n * per + i] > hi ? ry[n * per + i] : hi;
        }
        assert_true(smin[n] == 0.5f * (float)lo && smax[n] == 0.5f * (float)hi);
      }
    }
    i8t_conv_layout_for_tests(0, 0);
    ws_free(ws, test_ctx);
  }
  free(x), free(w), free(dy8), free(dy16), free(y), free(dx), free(dw), free(ry), free(rdx), free(rdw);
  free(smin), free(smax);
}

/* Every layout at 1-3 threads on the edge shapes: stride 2 with and without
 * padding, 1x1 at stride 1 (the input is the column matrix) and 2, batch 1,
 * one input channel, channel counts off the 32-column panels (below, above,
 * several flip blocks of the grad input's weights) and on them (K a multiple
 * of 32: the weight gradient's GEMM writes dw directly); 8 or 16 channels
 * with whole row groups (G output rows per GEMM row, K not a multiple of 4,
 * the 1x1 direct case) and without (odd rows per sample); images one or two
 * pixels wide (im2col runs of 1-4 bytes); 16, 32 and 64 channels through
 * im2col's constant-size interior copies, at stride 1 and 2; strided grad
 * inputs up to stride 5. */
static void check_conv_shapes(void) {
  const i8t_conv_shape shapes[] = {
      {3, 7, 6, 3, 5, 3, 2, 1},  {2, 5, 5, 16, 8, 3, 1, 1}, {4, 4, 4, 6, 3, 1, 1, 0},
      {2, 6, 6, 4, 8, 1, 2, 0},  {1, 8, 8, 1, 4, 3, 1, 1},  {2, 7, 7, 4, 8, 3, 2, 0},
      {2, 5, 5, 8, 40, 3, 1, 1}, {2, 4, 4, 33, 32, 3, 1, 1}, {2, 4, 4, 32, 64, 3, 1, 1},
      {1, 3, 3, 70, 70, 3, 1, 1}, {20, 6, 6, 8, 8, 3, 1, 1},  {2, 6, 6, 3, 16, 3, 1, 1},
      {3, 4, 4, 5, 8, 3, 1, 1},   {4, 4, 4, 6, 16, 1, 1, 0},  {2, 6, 6, 1, 16, 3, 1, 1},
      {2, 6, 6, 16, 5, 3, 1, 1},  {2, 4, 4, 8, 3, 3, 1, 1},   {2, 5, 5, 16, 16, 3, 1, 1},
      {2, 3, 1, 1, 4, 3, 1, 1},   {2, 2, 2, 2, 4, 3, 1, 1},   {2, 5, 4, 64, 8, 3, 1, 1},
      {2, 7, 6, 16, 8, 3, 2, 1},
      /* strided grad inputs (col2im): 3x3 / 5x5 at strides 2-5, odd sizes,
       * strides past the kernel (input pixels no tap reads: dx 0), in_c off
       * the panels */
      {2, 8, 8, 16, 32, 3, 2, 1}, {2, 9, 7, 5, 12, 5, 3, 2}, {2, 7, 7, 8, 4, 1, 3, 0},
      {1, 9, 9, 4, 8, 2, 3, 0},   {2, 10, 9, 6, 16, 5, 2, 2}, {1, 11, 11, 3, 4, 3, 4, 1},
      {1, 12, 12, 4, 8, 3, 5, 1},
  };
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) check_conv_exact(shapes[i]);
}

static void conv_int8_exact(i8t_isa isa) {
  (void)isa;
  check_conv_shapes();
}
#define DEFINE_CONV_ISA_TEST(name, isa) I8T_ISA_TEST(conv_int8_exact, name, isa)
I8T_TEST_ISAS(DEFINE_CONV_ISA_TEST)

/* ------------------------------------------------------------------------ */
/* int8 close to fp32 on the unquantized tensors                            */
/* ------------------------------------------------------------------------ */

static void test_conv_int8_close_to_fp32(void **state) {
  (void)state;
  i8t_workspace *ws = ws_make(1);
  i8t_conv_shape s = {2, 9, 8, 5, 6, 3, 2, 1};
  uint64_t seed = 77;
  size_t nx = (size_t)s.batch * s.in_h * s.in_w * s.in_c, K = i8t_conv_k(&s), nw = (size_t)s.out_c * K;
  int oh = i8t_conv_out_h(&s), ow = i8t_conv_out_w(&s);
  size_t ny = (size_t)s.batch * oh * ow * s.out_c;
  float *x = malloc(nx * 4), *w = malloc(nw * 4), *dy = malloc(ny * 4);
  for (size_t i = 0; i < nx; i++) x[i] = test_rand_float(&seed, -0.5f, 2.0f);
  for (size_t i = 0; i < nw; i++) w[i] = test_rand_float(&seed, -0.3f, 0.3f);
  for (size_t i = 0; i < ny; i++) dy[i] = test_rand_float(&seed, -1.0f, 1.0f);
  /* quantize as the model does */
  uint8_t *xq = malloc(nx);
  int8_t *wq = malloc(nw), *dy8 = malloc(ny);
  int16_t *dy16 = malloc(ny * 2);
  i8t_qparams px, pw, p8, p16;
  i8t_rounding near = {0, 0, 0}, st8 = {1, 3, 0}, st16 = {1, 4, 0};
  assert_int_equal(i8t_quantize_auto_u8(x, nx, near, xq, &px), I8T_OK);
  assert_int_equal(i8t_quantize_auto_s8(w, nw, near, wq, &pw), I8T_OK);
  assert_int_equal(i8t_quantize_auto_s8(dy, ny, st8, dy8, &p8), I8T_OK);
  assert_int_equal(i8t_quantize_auto_s16(dy, ny, st16, dy16, &p16), I8T_OK);
  int32_t *y32 = malloc(ny * 4), *dx32 = malloc(nx * 4);
  int64_t *dw64 = malloc(nw * 8);
  float *y = malloc(ny * 4), *dx = malloc(nx * 4), *dw = malloc(nw * 4);
  assert_int_equal(i8t_conv2d_forward_s8(ws, &s, xq, (uint8_t)px.zero_point, wq, y32, NULL, 0, NULL, NULL), I8T_OK);
  assert_int_equal(i8t_conv2d_backward_data_s8(ws, &s, dy8, wq, dx32), I8T_OK);
  assert_int_equal(i8t_conv2d_backward_weights_s16(ws, &s, dy16, xq, (uint8_t)px.zero_point, dw64), I8T_OK);
  assert_int_equal(i8t_workspace_set_fp32_backend(ws, I8T_FP32_PORTABLE), I8T_OK);
  assert_int_equal(i8t_conv2d_forward_f32(ws, &s, x, w, y), I8T_OK);
  assert_int_equal(i8t_conv2d_backward_data_f32(ws, &s, dy, w, dx), I8T_OK);
  assert_int_equal(i8t_conv2d_backward_weights_f32(ws, &s, dy, x, dw), I8T_OK);
  /* Bounds: |a b - a' b'| <= |a| eb + |b| ea + ea eb per product, with the
   * rounding errors ea, eb <= half a step (nearest) or one step (stochastic). */
  float ex = px.scale / 2, ew = pw.scale / 2, e8 = p8.scale, e16 = p16.scale;
  double ratio = 0.0;
  for (size_t i = 0; i < ny; i++) {
    double bound = 0.0, sum_w = 0.0;
    for (size_t k = 0; k < nw / (size_t)s.out_c; k++) sum_w += fabs(w[(i % (size_t)s.out_c) * K + k]);
    bound = sum_w * ex + K * 2.0 * ew + K * ex * ew; /* |x| <= 2 */
    double err = fabs((double)px.scale * pw.scale * y32[i] - y[i]);
    assert_true(err <= bound * 1.001 + 1e-6);
    ratio += err / bound / (double)ny;
  }
  for (size_t i = 0; i < nx; i++) {
    double bound = (double)s.out_c * 9 * (1.0 * ew + 0.3 * e8 + e8 * ew);
    assert_true(fabs((double)p8.scale * pw.scale * dx32[i] - dx[i]) <= bound);
  }
  size_t rows = (size_t)s.batch * oh * ow;
  for (size_t i = 0; i < nw; i++) {
    double bound = (double)rows * (2.0 * e16 + 1.0 * ex + e16 * ex);
    assert_true(fabs((double)p16.scale * px.scale * dw64[i] - dw[i]) <= bound);
  }
  /* and on average far inside the worst-case bound (errors partly cancel) */
  assert_true(ratio < 0.3);
  free(x), free(w), free(dy), free(xq), free(wq), free(dy8), free(dy16), free(y32), free(dx32);
  free(dw64), free(y), free(dx), free(dw);
  i8t_workspace_destroy(ws);
}

static void test_fc_int8(void **state) {
  (void)state;
  i8t_workspace *ws = ws_make(1);
  int n = 9, in = 33, out = 10;
  uint64_t seed = 3;
  uint8_t x[9 * 33];
  int8_t w[10 * 33], dy8[90];
  int16_t dy16[90];
  int32_t y[90], dx[9 * 33];
  int64_t dw[10 * 33];
  for (int i = 0; i < n * in; i++) x[i] = (uint8_t)test_rand_range(&seed, 0, 255);
  for (int i = 0; i < out * in; i++) w[i] = (int8_t)test_rand_range(&seed, -127, 127);
  for (int i = 0; i < n * out; i++) {
    dy8[i] = (int8_t)(i % 7 == 0 ? (i % 2 ? 127 : -128) : test_rand_range(&seed, -127, 127));
    dy16[i] = (int16_t)test_rand_range(&seed, -32767, 32767);
  }
  assert_int_equal(i8t_fc_forward_s8(ws, n, in, out, x, 5, w, y), I8T_OK);
  assert_int_equal(i8t_fc_backward_data_s8(ws, n, in, out, dy8, w, dx), I8T_OK);
  assert_int_equal(i8t_fc_backward_weights_s16(ws, n, in, out, dy16, x, 5, dw), I8T_OK);
  for (int i = 0; i < n; i++)
    for (int o = 0; o < out; o++) {
      int64_t acc = 0;
      for (int k = 0; k < in; k++) acc += (int64_t)(x[i * in + k] - 5) * w[o * in + k];
      assert_true(y[i * out + o] == acc);
    }
  for (int i = 0; i < n; i++)
    for (int k = 0; k < in; k++) {
      int64_t acc = 0;
      for (int o = 0; o < out; o++) acc += (int64_t)dy8[i * out + o] * w[o * in + k];
      assert_true(dx[i * in + k] == acc);
    }
  for (int o = 0; o < out; o++)
    for (int k = 0; k < in; k++) {
      int64_t acc = 0;
      for (int i = 0; i < n; i++) acc += (int64_t)dy16[i * out + o] * (x[i * in + k] - 5);
      assert_true(dw[o * in + k] == acc);
    }
  assert_int_equal(i8t_fc_forward_s8(ws, 0, in, out, x, 5, w, y), I8T_ERR_SHAPE);
  i8t_workspace_destroy(ws);
}

/* ------------------------------------------------------------------------ */
/* Fused sum + ReLU, requantization, pooling                                */
/* ------------------------------------------------------------------------ */

static void test_sum_act(void **state) {
  (void)state;
  i8t_workspace *ws = ws_make(1);
  i8t_act_shape sh = {3, 10, 4};
  size_t n = sh.batch * sh.spatial * sh.channels;
  uint64_t seed = 9;
  uint8_t *a = malloc(n), *b = malloc(n), *out = malloc(n);
  for (size_t i = 0; i < n; i++) a[i] = (uint8_t)test_rand_range(&seed, 0, 255), b[i] = (uint8_t)test_rand_range(&seed, 0, 255);
  float mean[4] = {1, -1, 0.5f, 0}, scale[4] = {2, 1, 0.5f, 3}, gamma[4] = {1, 0.5f, -1, 2},
        beta[4] = {0, 0.1f, 0.2f, -0.3f}, mul[2][4], add[2][4];
  i8t_qparams pa = {0.02f, 100}, pb = {0.01f, 0};
  i8t_norm_fold_u8(4, pa, mean, scale, gamma, beta, mul[0], add[0]);
  i8t_identity_fold_u8(4, pb, mul[1], add[1]);
  i8t_u8_term t[2] = {{a, mul[0], add[0]}, {b, mul[1], add[1]}};
  float smin[3], smax[3];
  assert_int_equal(i8t_sum_act_range_u8(ws, t, 2, 1, sh, smin, smax), I8T_OK);
  float *ref = malloc(n * 4);
  for (size_t i = 0; i < n; i++) {
    size_t c = i % 4;
    float xa = pa.scale * (float)(a[i] - pa.zero_point), xb = pb.scale * (float)(b[i] - pb.zero_point);
    float v = gamma[c] * (xa - mean[c]) * scale[c] + beta[c] + xb;
    ref[i] = v > 0 ? v : 0;
  }
  for (size_t s = 0; s < sh.batch; s++) {
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = s * 40; i < (s + 1) * 40; i++) {
      lo = ref[i] < lo ? ref[i] : lo;
      hi = ref[i] > hi ? ref[i] : hi;
    }
    assert_true(fabsf(smin[s] - lo) < 1e-4f && fabsf(smax[s] - hi) < 1e-4f);
  }
  float lo, hi;
  i8t_batch_range(smin, smax, sh.batch, &lo, &hi);
  i8t_qparams po = i8t_qparams_u8(lo, hi);
  assert_int_equal(i8t_sum_act_forward_u8(ws, t, 2, 1, sh, po, (i8t_rounding){0, 0, 0}, out), I8T_OK);
  for (size_t i = 0; i < n; i++) {
    float v = fminf(ref[i], po.scale * (255 - po.zero_point)); /* clamped above the batch range */
    assert_true(fabsf(po.scale * (float)(out[i] - po.zero_point) - v) <= po.scale * 0.5f + 1e-4f);
  }
  /* backward: g = 0.5 * s32 + 0.25 * pooled broadcast, masked by relu' */
  int32_t *g32 = malloc(n * 4), pooled[12];
  for (size_t i = 0; i < n; i++) g32[i] = test_rand_range(&seed, -1000, 1000);
  for (int i = 0; i < 12; i++) pooled[i] = test_rand_range(&seed, -500, 500);
  i8t_grad_src src[2] = {{I8T_GRAD_S32, g32, 0.5f}, {I8T_GRAD_S32_POOLED, pooled, 0.25f}};
  int8_t *gpre = malloc(n);
  float gs;
  assert_int_equal(i8t_sum_act_backward_u8(ws, src, 2, t, 2, 1, sh, (i8t_rounding){1, 8, 0}, gpre, &gs), I8T_OK);
  for (size_t i = 0; i < n; i++) {
    size_t sample = i / 40, c = i % 4;
    float g = 0.5f * (float)g32[i] + 0.25f * (float)pooled[sample * 4 + c];
    float want = ref[i] > 0 ? g : 0.0f;
    if (fabsf(gs * (float)gpre[i] - want) > gs * 1.0001f)
      fail_msg("gpre[%zu] = %g vs %g", i, (double)(gs * gpre[i]), (double)want);
    if (ref[i] <= 0) assert_int_equal(gpre[i], 0);
  }
  free(a), free(b), free(out), free(ref), free(g32), free(gpre);
  i8t_workspace_destroy(ws);
}

/* The mask-keeping forward and the mask backward equal the recomputing ones. */
static void test_sum_act_mask_variants(void **state) {
  (void)state;
  i8t_workspace *ws = ws_make(1);
  i8t_act_shape sh = {4, 9, 5};
  size_t n = sh.batch * sh.spatial * sh.channels;
  uint64_t seed = 19;
  uint8_t *a = malloc(n), *b = malloc(n), *o1 = malloc(n), *o2 = malloc(n), *mask = malloc(n);
  for (size_t i = 0; i < n; i++) a[i] = (uint8_t)test_rand_range(&seed, 0, 255), b[i] = (uint8_t)test_rand_range(&seed, 0, 255);
  float mul[2][5], add[2][5];
  for (int c = 0; c < 5; c++) {
    mul[0][c] = test_rand_float(&seed, -0.02f, 0.02f), add[0][c] = test_rand_float(&seed, -1, 1);
    mul[1][c] = 0.01f, add[1][c] = -0.5f;
  }
  i8t_u8_term t[2] = {{a, mul[0], add[0]}, {b, mul[1], add[1]}};
  i8t_qparams p = i8t_qparams_u8(0.0f, 2.0f);
  i8t_rounding r = {1, 3, 7};
  assert_int_equal(i8t_sum_act_forward_u8(ws, t, 2, 1, sh, p, r, o1), I8T_OK);
  assert_int_equal(i8t_sum_act_forward_mask_u8(ws, t, 2, sh, p, r, o2, mask), I8T_OK);
  assert_memory_equal(o1, o2, n);
  for (size_t i = 0; i < n; i++) {
    float v = mul[0][i % 5] * (float)a[i] + add[0][i % 5] + (mul[1][i % 5] * (float)b[i] + add[1][i % 5]);
    assert_int_equal(mask[i], v > 0.0f);
  }
  int32_t *g = malloc(n * 4);
  for (size_t i = 0; i < n; i++) g[i] = test_rand_range(&seed, -5000, 5000);
  i8t_grad_src src = {I8T_GRAD_S32, g, 0.001f};
  int8_t *g1 = malloc(n), *g2 = malloc(n);
  float s1, s2;
  assert_int_equal(i8t_sum_act_backward_u8(ws, &src, 1, t, 2, 1, sh, r, g1, &s1), I8T_OK);
  assert_int_equal(i8t_sum_act_backward_mask_u8(ws, &src, 1, mask, sh, r, g2, &s2), I8T_OK);
  assert_memory_equal(g1, g2, n);
  assert_true(s1 == s2);
  free(a), free(b), free(o1), free(o2), free(mask), free(g), free(g1), free(g2);
  i8t_workspace_destroy(ws);
}

/* The per-sample range from the BN input's extremes equals the evaluated one
 * bit for bit (increasing and decreasing channels), and the statistics equal
 * those of i8t_norm_stats_u8. */
static void test_range_from_extremes(void **state) {
  (void)state;
  i8t_workspace *ws = ws_make(1);
  i8t_act_shape sh = {7, 23, 6}; /* 161 rows: 16 uneven chunks that straddle samples */
  size_t n = sh.batch * sh.spatial * sh.channels;
  uint64_t seed = 23;
  uint8_t *x = malloc(n), xmin[42], xmax[42];
  for (size_t i = 0; i < n; i++) x[i] = (uint8_t)test_rand_range(&seed, 0, 255);
  i8t_qparams xq = {0.04f, 90};
  for (int kind = 0; kind < 2; kind++) {
    i8t_norm_config cfg;
    i8t_norm_config_init(&cfg, kind ? I8T_NORM_STANDARD : I8T_NORM_RANGE);
    float mean[6], scale[6], m2[6], s2[6], mul[6], add[6], beta[6] = {0, 0.1f, -0.2f, 0.3f, 0, 1};
    float gamma[6] = {1.0f, -0.5f, 2.0f, -1.5f, 0.0f, 0.7f};
    assert_int_equal(i8t_norm_stats_samples_u8(ws, &cfg, x, xq, sh, mean, scale, NULL, xmin, xmax), I8T_OK);
    assert_int_equal(i8t_norm_stats_u8(ws, &cfg, x, xq, sh.batch * sh.spatial, 6, m2, s2, NULL), I8T_OK);
    assert_memory_equal(mean, m2, sizeof mean);
    assert_memory_equal(scale, s2, sizeof scale);
    for (size_t s = 0; s < sh.batch; s++)
      for (size_t c = 0; c < 6; c++) {
        uint8_t lo = 255, hi = 0;
        for (size_t p = 0; p < sh.spatial; p++) {
          uint8_t v = x[(s * sh.spatial + p) * 6 + c];
          lo = v < lo ? v : lo, hi = v > hi ? v : hi;
        }
        assert_int_equal(xmin[s * 6 + c], lo);
        assert_int_equal(xmax[s * 6 + c], hi);
      }
    i8t_norm_fold_u8(6, xq, mean, scale, gamma, beta, mul, add);
    i8t_u8_term t = {x, mul, add};
    for (int relu = 0; relu < 2; relu++) {
      float a1[7], b1[7], a2[7], b2[7];
      assert_int_equal(i8t_sum_act_range_u8(ws, &t, 1, relu, sh, a1, b1), I8T_OK);
      i8t_sum_act_range_from_extremes(mul, add, relu, sh, xmin, xmax, a2, b2);
      assert_memory_equal(a1, a2, sizeof a1);
      assert_memory_equal(b1, b2, sizeof b1);
    }
  }
  free(x);
  i8t_workspace_destroy(ws);
}

static void test_requantize(void **state) {
  (void)state;
  i8t_workspace *ws = ws_make(1);
  size_t rows = 50, C = 3, n = rows * C;
  uint64_t seed = 4;
  int32_t *y = malloc(n * 4);
  float *f = malloc(n * 4), cs[3] = {0.001f, 0.002f, 0.0005f};
  uint8_t *q = malloc(n), *q2 = malloc(n);
  for (size_t i = 0; i < n; i++) y[i] = test_rand_range(&seed, -100000, 100000), f[i] = (float)y[i] * cs[i % C];
  i8t_qparams p = i8t_qparams_u8(-50.0f, 60.0f);
  for (int stoch = 0; stoch < 2; stoch++) {
    i8t_rounding r = {stoch, 12, 77};
    assert_int_equal(i8t_requantize_s32_u8(ws, y, rows, C, cs, C, p, r, q), I8T_OK);
    assert_int_equal(i8t_quantize_f32_u8(f, n, p, r, q2), I8T_OK);
    assert_memory_equal(q, q2, n); /* the same stream, the same bits */
  }
  free(y), free(f), free(q), free(q2);
  i8t_workspace_destroy(ws);
}

static void test_maxpool_u8(void **state) {
  (void)state;
  i8t_workspace *ws = ws_make(1);
  i8t_pool_shape s = {2, 6, 5, 3, 2, 2};
  size_t nx = 2 * 6 * 5 * 3, ny = 2 * 3 * 2 * 3;
  uint64_t seed = 6;
  uint8_t x[180], y[36];
  float xf[180], yf[36];
  for (size_t i = 0; i < nx; i++) x[i] = (uint8_t)test_rand_range(&seed, 0, 20), xf[i] = x[i];
  assert_int_equal(i8t_maxpool_forward_u8(ws, &s, x, y), I8T_OK);
  assert_int_equal(i8t_maxpool_forward_f32(ws, &s, xf, yf), I8T_OK);
  for (size_t i = 0; i < ny; i++) assert_true((float)y[i] == yf[i]);
  int8_t g8[36];
  for (size_t i = 0; i < ny; i++) g8[i] = (int8_t)test_rand_range(&seed, -127, 127);
  g8[0] = 127; /* absmax 127 at scale 1: the requantization is exact */
  i8t_grad_src src = {I8T_GRAD_S8, g8, 1.0f};
  int32_t dx[180];
  float gf[36], dxf[180], dxs;
  for (size_t i = 0; i < ny; i++) gf[i] = g8[i];
  assert_int_equal(i8t_maxpool_backward_u8(ws, &s, x, &src, 1, (i8t_rounding){1, 1, 0}, dx, &dxs), I8T_OK);
  assert_int_equal(i8t_maxpool_backward_f32(ws, &s, xf, gf, dxf, 0), I8T_OK);
  assert_true(dxs == 1.0f);
  for (size_t i = 0; i < nx; i++) assert_true((float)dx[i] == dxf[i]); /* ties: same routing */
  i8t_workspace_destroy(ws);
}

static void test_avgpool_u8(void **state) {
  (void)state;
  i8t_act_shape sh = {2, 9, 3};
  uint8_t x[54];
  float xf[54], y[6], yf[6];
  i8t_qparams p = {0.1f, 3};
  for (int i = 0; i < 54; i++) x[i] = (uint8_t)(i * 5 % 256);
  i8t_dequantize_u8(x, 54, p, xf);
  assert_int_equal(i8t_avgpool_forward_u8(NULL, sh, x, p, y), I8T_OK);
  assert_int_equal(i8t_avgpool_forward_f32(NULL, sh, xf, yf), I8T_OK);
  for (int i = 0; i < 6; i++) assert_true(fabsf(y[i] - yf[i]) < 1e-5f);
}

#define LIST_CONV_ISA_TEST(name, isa) cmocka_unit_test(test_conv_int8_exact_##name),

int main(void) {
  const struct CMUnitTest tests[] = {
      I8T_TEST_ISAS(LIST_CONV_ISA_TEST)
      cmocka_unit_test(test_conv_int8_close_to_fp32),
      cmocka_unit_test(test_fc_int8),
      cmocka_unit_test(test_sum_act),
      cmocka_unit_test(test_sum_act_mask_variants),
      cmocka_unit_test(test_range_from_extremes),
      cmocka_unit_test(test_requantize),
      cmocka_unit_test(test_maxpool_u8),
      cmocka_unit_test(test_avgpool_u8),
  };
  if (getenv("I8T_TEST_FILTER")) cmocka_set_test_filter(getenv("I8T_TEST_FILTER"));
  return cmocka_run_group_tests(tests, NULL, NULL);
}
