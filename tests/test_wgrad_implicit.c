/* The implicit weight gradient (src/nn/conv_wgrad.c): the indirect int16 GEMM
 * against a plain int64 product (row pointers anywhere, interleaved rows,
 * spaced K groups, blocks of taps, edge tiles, several KC blocks of whole
 * taps, adding into C, B as a matrix or packed, 1-3 threads), and the conv weight gradient, which takes it where the
 * kernel can, against direct integer loops on every ISA (the others keep
 * im2col): strides 1-3, kernels 1 / 3 / 5, pads 0-2, odd output widths,
 * 3-64 channels, random values and the extremes whose int32 partial sums
 * would overflow without the int64 KC blocks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "int8train/layers.h"
#include "isa_list.h"
#include "kernel_table.h"
#include "nn/nn_conv.h"
#include "test_util.h"

/* ------------------------------------------------------------------------ */
/* The indirect int16 GEMM itself                                           */
/* ------------------------------------------------------------------------ */

/* Value k of row i: group g = (k % tap_vals) / 2 of tap t = k / tap_vals
 * at rows[i] + (t / bt) * bpitch + (t % bt) * pitch + g * gpitch (bt = 0:
 * one block). */
static int16_t a_at(const i8t_gemm_indirect_a *A, size_t gpitch, size_t i, size_t k) {
  size_t tap_vals = A->tap_bytes / 2, t = k / tap_vals, g = (k % tap_vals) / 2;
  size_t bt = A->block_taps ? A->block_taps : SIZE_MAX;
  const char *p = (const char *)A->rows[i] + (t / bt) * A->block_pitch + (t % bt) * A->tap_pitch +
                  g * gpitch;
  return ((const int16_t *)(const void *)p)[k % 2];
}

typedef struct s16_case {
  size_t M, N, taps, tap_vals; /* K = taps * tap_vals */
  size_t interleave;           /* 0: rows anywhere; else groups of rows 4 bytes apart */
  size_t block_taps;           /* 0: one run of taps; else blocks of this many */
  int extremes;                /* a = +-255, b = -32768: int32 overflow past 256 values */
} s16_case;

static void check_s16_gemm(i8t_context *const ctxs[2], s16_case t, uint64_t *rng) {
  size_t K = t.taps * t.tap_vals, ldc = t.N + 3;
  /* interleaved: a copy of G rows per group, pairs G * 4 bytes apart */
  size_t G = t.interleave ? t.interleave : 1, gpitch = 4 * G;
  size_t pitch = (t.tap_vals / 2) * gpitch + 64;
  size_t bt = t.block_taps ? t.block_taps : t.taps, bpitch = bt * pitch + 128;
  size_t span = (t.taps + bt - 1) / bt * bpitch + 64;
  size_t groups = (t.M + G - 1) / G, img_vals = (groups + 4) * span / 2;
  int16_t *img = malloc(img_vals * sizeof *img);
  int16_t *b = malloc(K * t.N * sizeof *b);
  const void **rows = malloc(t.M * sizeof *rows);
  int64_t *c = malloc(t.M * ldc * sizeof *c), *c0 = malloc(t.M * ldc * sizeof *c0);
  for (size_t i = 0; i < img_vals; i++)
    img[i] = (int16_t)(t.extremes ? (i % 3 ? 255 : -255) : test_rand_range(rng, -255, 255));
  for (size_t i = 0; i < K * t.N; i++)
    b[i] = (int16_t)(t.extremes ? -32768 : test_rand_range(rng, -32768, 32767));
  for (size_t i = 0; i < t.M; i++) {
    if (t.interleave) {
      rows[i] = (const char *)img + (i / G) * span + (i % G) * 4;
    } else { /* anywhere (2-byte aligned), every third row aliasing the one before */
      size_t at = 2 * (size_t)test_rand_range(rng, 0, (int32_t)((groups + 2) * span / 2));
      rows[i] = i % 3 == 2 ? rows[i - 1] : (const char *)img + at;
    }
  }
  for (size_t i = 0; i < t.M * ldc; i++) c0[i] = (int64_t)test_rand_range(rng, -1000, 1000);
  i8t_gemm_indirect_a A = {.rows = rows, .taps = t.taps, .tap_bytes = 2 * t.tap_vals,
                           .tap_pitch = pitch, .group_pitch = t.interleave ? gpitch : 0,
                           .interleave = t.interleave, .block_taps = t.block_taps,
                           .block_pitch = t.block_taps ? bpitch : 0};
  i8t_matrix B = {b, t.N, 1};
  /* B packed as documented: NR-column panels of K / 2 groups (k, k + 1) */
  size_t nr = i8t_gemm_panel_width(I8T_GEMM_S16U8S64, t.N), panels = (t.N + nr - 1) / nr;
  int16_t *bp = calloc(panels * nr * K, sizeof *bp);
  for (size_t k = 0; k < K; k++)
    for (size_t n = 0; n < t.N; n++)
      bp[(n / nr) * nr * K + ((k / 2) * nr + n % nr) * 2 + k % 2] = b[k * t.N + n];
  for (int run = 0; run < 4; run++) {
    int ci = run % 2, packed = run / 2;
    for (int accumulate = 0; accumulate < 2; accumulate++) {
      memcpy(c, c0, t.M * ldc * sizeof *c);
      i8t_status st =
          packed ? i8t_gemm_s16s16s64_indirect_packed(ctxs[ci], t.M, t.N, &A, bp, c, ldc, accumulate)
                 : i8t_gemm_s16s16s64_indirect(ctxs[ci], t.M, t.N, &A, B, c, ldc, accumulate);
      if (!i8t_gemm_s16s16s64_indirect_ok(t.M, t.N, &A)) {
        assert_int_equal(st, I8T_ERR_UNSUPPORTED);
        continue;
      }
      assert_int_equal(st, I8T_OK);
      for (size_t i = 0; i < t.M; i++) {
        for (size_t n = 0; n < t.N; n++) {
          int64_t want = accumulate ? c0[i * ldc + n] : 0;
          for (size_t k = 0; k < K; k++)
            want += (int64_t)a_at(&A, t.interleave ? gpitch : 4, i, k) * b[k * t.N + n];
          if (c[i * ldc + n] != want)
            fail_msg("s16 indirect M=%zu N=%zu taps=%zu x %zu interleave %zu blocks %zu acc %d "
                     "packed B %d: C[%zu][%zu] = %lld, expected %lld",
                     t.M, t.N, t.taps, t.tap_vals, t.interleave, t.block_taps, accumulate, packed,
                     i, n,
                     (long long)c[i * ldc + n], (long long)want);
        }
        for (size_t n = t.N; n < ldc; n++) assert_true(c[i * ldc + n] == c0[i * ldc + n]);
      }
    }
  }
  free(img), free(b), free(bp), free(rows), free(c), free(c0);
}

static void check_s16_gemms(void) {
  uint64_t rng = 5151;
  /* M, N, taps, values per tap, interleave, blocks, extremes: edge rows and
   * columns; narrow and wide kernels; K in one KC block, in several (256
   * values a block: blocks of whole taps), a tap of one group; interleaved
   * groups of 16 and 32 rows (whole tiles from one pointer) and of 4 (MR
   * does not divide it: row pointers); blocks of taps that KC blocks start
   * inside of (7 taps of 28 values, 9 a KC block) and of one tap; the
   * extremes over 3 and 6 KC blocks. */
  static const s16_case cases[] = {
      {15, 16, 3, 28, 0, 0, 0},   {17, 17, 2, 14, 0, 0, 0},   {33, 40, 9, 28, 0, 0, 0},
      {48, 16, 7, 2, 16, 0, 0},   {64, 32, 20, 28, 32, 0, 0}, {36, 64, 5, 8, 4, 0, 0},
      {1, 1, 1, 2, 0, 0, 0},      {32, 16, 24, 28, 16, 0, 1}, {17, 48, 40, 40, 0, 0, 1},
      {16, 16, 2, 6, 0, 0, 0}, /* 12-byte taps */
      {32, 16, 28, 28, 16, 7, 0}, {64, 64, 12, 14, 32, 1, 0}, {32, 32, 30, 28, 32, 5, 1},
  };
  i8t_context *ctxs[2] = {NULL, NULL};
  i8t_workspace *ws = test_workspace(3, &ctxs[1]);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_s16_gemm(ctxs, cases[i], &rng);
  test_workspace_free(ws, ctxs[1]);
}

/* Bad arguments: clear statuses, C untouched. */
static void check_s16_errors(void) {
  int16_t img[64] = {0}, b[64] = {0};
  const void *rows[2] = {img, img + 8};
  int64_t c[4] = {7, 7, 7, 7};
  i8t_matrix B = {b, 2, 1};
  i8t_gemm_indirect_a A = {.rows = rows, .taps = 2, .tap_bytes = 8, .tap_pitch = 32};
  assert_int_equal(i8t_gemm_s16s16s64_indirect(NULL, 2, 2, NULL, B, c, 2, 0), I8T_ERR_INVALID_ARG);
  assert_int_equal(i8t_gemm_s16s16s64_indirect(NULL, 0, 2, &A, B, c, 2, 0), I8T_ERR_SHAPE);
  assert_int_equal(i8t_gemm_s16s16s64_indirect(NULL, 2, 2, &A, B, c, 1, 0), I8T_ERR_SHAPE);
  i8t_gemm_indirect_a odd = {.rows = rows, .taps = 2, .tap_bytes = 6, .tap_pitch = 32};
  assert_int_equal(i8t_gemm_s16s16s64_indirect(NULL, 2, 2, &odd, B, c, 2, 0),
                   I8T_ERR_UNSUPPORTED); /* 3 values: half a K group */
  /* blocks of taps through row pointers (no interleave) */
  i8t_gemm_indirect_a blocks = {.rows = rows, .taps = 2, .tap_bytes = 8, .tap_pitch = 32,
                                .block_taps = 1, .block_pitch = 64};
  assert_int_equal(i8t_gemm_s16s16s64_indirect(NULL, 2, 2, &blocks, B, c, 2, 0),
                   I8T_ERR_UNSUPPORTED);
  for (int i = 0; i < 4; i++) assert_true(c[i] == 7);
}

/* ------------------------------------------------------------------------ */
/* The conv weight gradient through it                                      */
/* ------------------------------------------------------------------------ */

/* dw[co][(ky, kx, c)] = sum over the windows of dy16 * (x - zp), int64. */
static void wgrad_ref(const i8t_conv_shape *s, const uint8_t *x, int zp, const int16_t *dy,
                      int64_t *dw) {
  int oh = i8t_conv_out_h(s), ow = i8t_conv_out_w(s), k = s->kernel, K = (int)i8t_conv_k(s);
  memset(dw, 0, (size_t)s->out_c * K * sizeof *dw);
  for (int n = 0; n < s->batch; n++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++)
        for (int ky = 0; ky < k; ky++)
          for (int kx = 0; kx < k; kx++) {
            int iy = oy * s->stride - s->pad + ky, ix = ox * s->stride - s->pad + kx;
            if (iy < 0 || iy >= s->in_h || ix < 0 || ix >= s->in_w) continue; /* x - zp = 0 */
            const uint8_t *px = x + ((size_t)(n * s->in_h + iy) * s->in_w + ix) * s->in_c;
            const int16_t *g = dy + ((size_t)(n * oh + oy) * ow + ox) * s->out_c;
            for (int co = 0; co < s->out_c; co++)
              for (int ci = 0; ci < s->in_c; ci++)
                dw[(size_t)co * K + (size_t)(ky * k + kx) * s->in_c + ci] +=
                    (int64_t)g[co] * (px[ci] - zp);
          }
}

/* Layouts (nn_conv.h's hook): by shape, one block of samples per task (both
 * take the implicit GEMM where it fits), batched (im2col). */
static const int layouts[] = {0, 2, 1};

/* Mode 0 random, 1 x = 255 against zp 0 with dy = -32768 (the largest
 * sums), 2 x = 0 against zp 255 with dy = 32767. Returns whether the shape
 * took the implicit GEMM on the current table. */
static int check_conv_wgrad(i8t_workspace *const wss[2], i8t_conv_shape s, uint64_t *rng) {
  size_t nx = (size_t)s.batch * s.in_h * s.in_w * s.in_c, nw = (size_t)s.out_c * i8t_conv_k(&s);
  size_t ny = (size_t)s.batch * i8t_conv_out_h(&s) * i8t_conv_out_w(&s) * s.out_c;
  uint8_t *x = malloc(nx);
  int16_t *dy = malloc(ny * sizeof *dy);
  int64_t *dw = malloc(nw * sizeof *dw), *ref = malloc(nw * sizeof *ref);
  for (int mode = 0; mode < 3; mode++) {
    int zp = mode == 0 ? test_rand_range(rng, 0, 255) : mode == 1 ? 0 : 255;
    for (size_t i = 0; i < nx; i++)
      x[i] = (uint8_t)(mode == 0 ? test_rand_range(rng, 0, 255) : mode == 1 ? 255 : 0);
    for (size_t i = 0; i < ny; i++)
      dy[i] = (int16_t)(mode == 0 ? test_rand_range(rng, -32768, 32767) : mode == 1 ? -32768 : 32767);
    wgrad_ref(&s, x, zp, dy, ref);
    for (int threads = 1; threads <= 2; threads++) {
      for (size_t l = 0; l < sizeof layouts / sizeof layouts[0]; l++) {
        i8t_conv_layout_for_tests(layouts[l], 0);
        memset(dw, 0x55, nw * sizeof *dw);
        assert_int_equal(
            i8t_conv2d_backward_weights_s16(wss[threads - 1], &s, dy, x, (uint8_t)zp, dw), I8T_OK);
        for (size_t i = 0; i < nw; i++)
          if (dw[i] != ref[i])
            fail_msg("wgrad %dx%dx%dx%d -> %d k%d s%d p%d mode %d, %d threads, layout %d: "
                     "dw[%zu] = %lld, expected %lld",
                     s.batch, s.in_h, s.in_w, s.in_c, s.out_c, s.kernel, s.stride, s.pad, mode,
                     threads, layouts[l], i, (long long)dw[i], (long long)ref[i]);
      }
      i8t_conv_layout_for_tests(0, 0);
    }
  }
  free(x), free(dy), free(dw), free(ref);
  return i8t_conv_wgrad_implicit_fits(&s);
}

static void check_conv_shapes(i8t_isa isa) {
  /* batch, in_h, in_w, in_c, out_c, kernel, stride, pad */
  static const i8t_conv_shape shapes[] = {
      {3, 16, 16, 16, 16, 3, 1, 1}, /* 256 pixels: KC blocks of whole rows */
      {2, 12, 13, 3, 32, 3, 1, 1},  /* odd width (a zero dy column), rows by pointer */
      {2, 24, 22, 8, 16, 3, 2, 1},  /* stride 2: phase copies, odd output width */
      {2, 24, 26, 16, 32, 1, 2, 0}, /* 1x1 stride 2: stays on im2col */
      {1, 16, 16, 4, 16, 5, 1, 2},  /* kernel 5: pairs starting 1 and 2 pairs on */
      {1, 38, 40, 16, 16, 3, 3, 1}, /* stride 3 */
      {2, 14, 14, 32, 64, 3, 1, 0}, /* no padding, wide kernel, 32 rows a tap */
      {2, 14, 14, 64, 16, 3, 1, 1}, /* 64 channels */
      {3, 7, 7, 16, 16, 3, 1, 1},   /* 49 pixels, an odd batch (a zero sample) */
      {5, 8, 8, 4, 16, 3, 2, 1},    /* odd batch, rows by pointer (a GEMM per pair) */
  };
  uint64_t rng = 99;
  int implicit = 0;
  i8t_context *ctx1, *ctx2;
  i8t_workspace *wss[2] = {test_workspace(1, &ctx1), test_workspace(2, &ctx2)};
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
    implicit += check_conv_wgrad(wss, shapes[i], &rng);
  test_workspace_free(wss[0], ctx1);
  test_workspace_free(wss[1], ctx2);
  /* The x86 kernels read A in place: every shape but the small one. */
  /* The x86 kernels read A in place: every shape but the 1x1 one
   * (interleaved rows where 16 divides C, a GEMM per pair of samples
   * otherwise). */
  if (isa == I8T_ISA_AVX512VNNI || isa == I8T_ISA_AVX2)
    assert_int_equal(implicit, (int)(sizeof shapes / sizeof shapes[0]) - 1);
}

/* The GEMM itself, then the convolution through it, on one ISA. */
static void s16_indirect_gemm(i8t_isa isa) {
  (void)isa;
  check_s16_gemms();
  check_s16_errors();
}
static void conv_wgrad(i8t_isa isa) { check_conv_shapes(isa); }

#define DEFINE_ISA_TESTS(name, isa) \
  I8T_ISA_TEST(s16_indirect_gemm, name, isa) I8T_ISA_TEST(conv_wgrad, name, isa)
I8T_TEST_ISAS(DEFINE_ISA_TESTS)

#define ISA_TEST_ENTRIES(name, isa) \
  cmocka_unit_test(test_s16_indirect_gemm_##name), cmocka_unit_test(test_conv_wgrad_##name),

int main(void) {
  const struct CMUnitTest tests[] = {I8T_TEST_ISAS(ISA_TEST_ENTRIES)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
