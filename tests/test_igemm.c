/* The implicit ("indirect") GEMM of the int8 conv forward: the indirect u8s8
 * GEMM against a plain int64 product (row pointers anywhere, aliased rows,
 * edge tiles, several KC blocks of whole taps, 1-3 threads), the row ranges
 * both u8s8 GEMMs can take as they store (groups that tiles straddle, edge
 * tiles, several KC blocks, 1-3 threads, extreme values), and the conv
 * forward and grad input (its stride-1 transposed convolution over dy + 128),
 * which take it where the kernel can, against direct integer loops on every
 * ISA (the others keep im2col): borders, strides, kernels 1 / 3 / 5, pads
 * 0-2, 4-128 channels, random and extreme values. */
#include <stdlib.h>
#include <string.h>

#include "isa_list.h"
#include "kernel_table.h"
#include "nn/nn_conv.h"
#include "test_util.h"

/* ------------------------------------------------------------------------ */
/* The indirect GEMM itself                                                 */
/* ------------------------------------------------------------------------ */

/* Row i of A: taps runs of tap_bytes at rows[i] + t * pitch. */
static int64_t indirect_ref(const void *const *rows, size_t taps, size_t tap_bytes, size_t pitch,
                            int zp, const int8_t *b, size_t N, size_t i, size_t n) {
  int64_t acc = 0;
  for (size_t t = 0; t < taps; t++)
    for (size_t k = 0; k < tap_bytes; k++)
      acc += (int64_t)(((const uint8_t *)rows[i])[t * pitch + k] - zp) *
             b[(t * tap_bytes + k) * N + n];
  return acc;
}

/* Group g's rows [g * rpg, ...) of C (row stride ldc, N columns) against
 * the ranges a ranged GEMM returned. */
static void check_row_ranges(const int32_t *c, size_t M, size_t N, size_t ldc, size_t rpg,
                             const int32_t *mn, const int32_t *mx) {
  for (size_t g = 0; g * rpg < M; g++) {
    int32_t lo = INT32_MAX, hi = INT32_MIN;
    for (size_t i = g * rpg; i < M && i < (g + 1) * rpg; i++)
      for (size_t n = 0; n < N; n++) {
        lo = c[i * ldc + n] < lo ? c[i * ldc + n] : lo;
        hi = c[i * ldc + n] > hi ? c[i * ldc + n] : hi;
      }
    if (mn[g] != lo || mx[g] != hi)
      fail_msg("row ranges M=%zu N=%zu rows/group=%zu: group %zu got [%d, %d], expected [%d, %d]",
               M, N, rpg, g, mn[g], mx[g], lo, hi);
  }
}

/* Rows per group for the ranged runs: single rows, groups that MR (4, 8 or
 * 16) straddles, groups that end one row before a tile does (MR - 1), and
 * one group of all rows. */
enum { RANGES_CHOICES = 8 };
static size_t ranges_rows(size_t M, int which) {
  static const size_t rpg[RANGES_CHOICES - 1] = {1, 3, 5, 7, 13, 15, 49};
  return which < RANGES_CHOICES - 1 ? rpg[which] : M;
}

/* ctxs: no context (the calling thread) and one of 3 workers. Each context
 * runs the plain GEMM and the ranged one (rows per group ranges_rows(M,
 * which)); both must write the same C. */
static void check_indirect_gemm(i8t_context *const ctxs[2], size_t M, size_t N, size_t taps,
                                size_t tap_bytes, int extremes, uint64_t *rng) {
  size_t K = taps * tap_bytes, pitch = tap_bytes + 36, span = taps * pitch + 64;
  size_t img_bytes = 8 * span; /* rows start anywhere in 8 windows' room */
  uint8_t *img = malloc(img_bytes);
  int8_t *b = malloc(K * N);
  const void **rows = malloc(M * sizeof *rows);
  int32_t *c = malloc(M * (N + 3) * sizeof *c);
  int zp = extremes ? 255 : test_rand_range(rng, 0, 255);
  for (size_t i = 0; i < img_bytes; i++)
    img[i] = (uint8_t)(extremes ? 0 : test_rand_range(rng, 0, 255));
  for (size_t i = 0; i < K * N; i++)
    b[i] = (int8_t)(extremes ? 127 : test_rand_range(rng, -127, 127));
  for (size_t i = 0; i < M; i++) /* every third row aliases the one before */
    rows[i] = i % 3 == 2 ? rows[i - 1] : img + (size_t)test_rand_range(rng, 0, (int32_t)(7 * span));
  int32_t *mn = malloc(2 * M * sizeof *mn), *mx = mn + M;
  for (int run = 0; run < 4; run++) {
    i8t_context *ctx = ctxs[run % 2];
    memset(c, 0x55, M * (N + 3) * sizeof *c);
    i8t_gemm_indirect_a A = {.rows = rows, .taps = taps, .tap_bytes = tap_bytes, .tap_pitch = pitch};
    i8t_matrix B = {b, N, 1};
    size_t rpg = ranges_rows(M, (int)((M + N + taps + (size_t)run) % RANGES_CHOICES));
    i8t_gemm_row_ranges r = {rpg, mn, mx};
    i8t_status st =
        run < 2 ? i8t_gemm_u8s8s32_indirect(ctx, M, N, &A, (uint8_t)zp, B, c, N + 3)
                : i8t_gemm_u8s8s32_indirect_ranged(ctx, M, N, &A, (uint8_t)zp, B, c, N + 3, &r);
    if (!i8t_gemm_u8s8s32_indirect_ok(N, tap_bytes)) {
      assert_int_equal(st, I8T_ERR_UNSUPPORTED);
    } else {
      assert_int_equal(st, I8T_OK);
      for (size_t i = 0; i < M; i++) {
        for (size_t n = 0; n < N; n++) {
          int64_t want = indirect_ref(rows, taps, tap_bytes, pitch, zp, b, N, i, n);
          if (c[i * (N + 3) + n] != want)
            fail_msg("indirect M=%zu N=%zu taps=%zu x %zu: C[%zu][%zu] = %d, expected %lld", M, N,
                     taps, tap_bytes, i, n, c[i * (N + 3) + n], (long long)want);
        }
        for (size_t n = N; n < N + 3; n++) assert_true(c[i * (N + 3) + n] == 0x55555555);
      }
      if (run >= 2) check_row_ranges(c, M, N, N + 3, rpg, mn, mx);
    }
  }
  free(img), free(b), free(rows), free(c), free(mn);
}

/* The plain u8s8 GEMM with row ranges (the im2col route of the conv
 * forward) against an int64 product: A u8 with a zero point, K of one or
 * several KC blocks, edge tiles; the calling thread and 3 workers. */
static void check_ranged_gemm(i8t_context *const ctxs[2], size_t M, size_t N, size_t K,
                              size_t rpg, int extremes, uint64_t *rng) {
  uint8_t *a = malloc(M * K);
  int8_t *b = malloc(K * N);
  int32_t *c = malloc(M * N * sizeof *c), *mn = malloc(2 * M * sizeof *mn), *mx = mn + M;
  int zp = extremes ? 0 : test_rand_range(rng, 0, 255);
  for (size_t i = 0; i < M * K; i++) a[i] = (uint8_t)(extremes ? 255 : test_rand_range(rng, 0, 255));
  for (size_t i = 0; i < K * N; i++)
    b[i] = (int8_t)(extremes ? (i % 3 ? -127 : 127) : test_rand_range(rng, -127, 127));
  for (int ci = 0; ci < 2; ci++) {
    i8t_matrix A = {a, K, 1}, B = {b, N, 1};
    i8t_gemm_row_ranges r = {rpg, mn, mx};
    memset(c, 0x55, M * N * sizeof *c);
    assert_int_equal(i8t_gemm_u8s8s32_ranged(ctxs[ci], M, N, K, A, (uint8_t)zp, B, c, N, &r),
                     I8T_OK);
    for (size_t i = 0; i < M; i++)
      for (size_t n = 0; n < N; n++) {
        int64_t want = 0;
        for (size_t k = 0; k < K; k++) want += (int64_t)(a[i * K + k] - zp) * b[k * N + n];
        if (c[i * N + n] != want)
          fail_msg("ranged M=%zu N=%zu K=%zu: C[%zu][%zu] = %d, expected %lld", M, N, K, i, n,
                   c[i * N + n], (long long)want);
      }
    check_row_ranges(c, M, N, N, rpg, mn, mx);
  }
  free(a), free(b), free(c), free(mn);
}

/* Rows whose outputs grow with the row (row i of A all i, zp 0, B all 1:
 * C[i][n] = K i), so that each group's minimum is its first row and its
 * maximum its last: a row folded into the wrong group shows. Both GEMMs,
 * every choice of rows per group, full tiles of both widths. */
static void check_ranges_at_group_edges(i8t_context *const ctxs[2]) {
  enum { M = 120, K = 64 };
  static const size_t Ns[] = {16, 32, 64};
  uint8_t *a = malloc(M * K);
  int8_t b[K * 64];
  const void *rows[M];
  int32_t *c = malloc(M * 64 * sizeof *c), mn[M], mx[M];
  for (size_t i = 0; i < M; i++) {
    memset(a + i * K, (int)i, K);
    rows[i] = a + i * K;
  }
  memset(b, 1, sizeof b);
  for (size_t n = 0; n < 3; n++)
    for (int which = 0; which < RANGES_CHOICES; which++)
      for (int run = 0; run < 4; run++) {
        const size_t N = Ns[n], rpg = ranges_rows(M, which);
        i8t_gemm_row_ranges r = {rpg, mn, mx};
        i8t_matrix A = {a, K, 1}, B = {b, N, 1};
        i8t_gemm_indirect_a ind = {.rows = rows, .taps = 1, .tap_bytes = K, .tap_pitch = K};
        i8t_status st =
            run < 2 ? i8t_gemm_u8s8s32_ranged(ctxs[run % 2], M, N, K, A, 0, B, c, N, &r)
                    : i8t_gemm_u8s8s32_indirect_ranged(ctxs[run % 2], M, N, &ind, 0, B, c, N, &r);
        if (run >= 2 && !i8t_gemm_u8s8s32_indirect_ok(N, K)) {
          assert_int_equal(st, I8T_ERR_UNSUPPORTED);
          continue;
        }
        assert_int_equal(st, I8T_OK);
        for (size_t g = 0; g * rpg < M; g++) {
          size_t last = (g + 1) * rpg < M ? (g + 1) * rpg - 1 : M - 1;
          if (mn[g] != (int32_t)(K * g * rpg) || mx[g] != (int32_t)(K * last))
            fail_msg("ordered rows, N=%zu rows/group=%zu run %d: group %zu got [%d, %d]", N, rpg,
                     run, g, mn[g], mx[g]);
        }
      }
  free(a), free(c);
}

static void check_ranged_gemms(void) {
  uint64_t rng = 777;
  static const size_t Ms[] = {1, 37, 98}, Ns[] = {3, 16, 40}, Ks[] = {16, 144, 1100};
  i8t_context *ctxs[2] = {NULL, NULL};
  i8t_workspace *ws = test_workspace(3, &ctxs[1]);
  for (size_t m = 0; m < 3; m++)
    for (size_t n = 0; n < 3; n++)
      for (size_t k = 0; k < 3; k++)
        check_ranged_gemm(ctxs, Ms[m], Ns[n], Ks[k],
                          ranges_rows(Ms[m], (int)((m + n + k) % RANGES_CHOICES)), 0, &rng);
  /* Extremes at both ends: all 255 against +-127 over K = 1100. */
  check_ranged_gemm(ctxs, 49, 32, 1100, 7, 1, &rng);
  check_ranges_at_group_edges(ctxs);
  i8t_gemm_row_ranges none = {0, NULL, NULL};
  uint8_t a[4] = {0};
  int8_t b[4] = {0};
  int32_t c[4] = {7, 7, 7, 7};
  i8t_matrix A = {a, 2, 1}, B = {b, 2, 1};
  assert_int_equal(i8t_gemm_u8s8s32_ranged(NULL, 2, 2, 2, A, 0, B, c, 2, &none),
                   I8T_ERR_INVALID_ARG);
  for (int i = 0; i < 4; i++) assert_int_equal(c[i], 7);
  test_workspace_free(ws, ctxs[1]);
}

static void check_indirect_gemms(void) {
  uint64_t rng = 4242;
  /* taps x tap_bytes: one group; a 16-channel 3x3 window; more taps than one
   * KC block holds (1024 on AVX-512: blocks of 2 taps of 400); taps of a
   * whole block; a tap longer than a block and one of partial K groups
   * (both unsupported). */
  static const size_t tapss[][2] = {{1, 4}, {3, 48}, {6, 400}, {2, 1024}, {1, 1028}, {3, 6}};
  static const size_t Ms[] = {1, 15, 17, 100}, Ns[] = {1, 16, 17, 40};
  i8t_context *ctxs[2] = {NULL, NULL};
  i8t_workspace *ws = test_workspace(3, &ctxs[1]);
  for (size_t t = 0; t < sizeof tapss / sizeof tapss[0]; t++)
    for (size_t m = 0; m < 4; m++)
      for (size_t n = 0; n < 4; n++)
        check_indirect_gemm(ctxs, Ms[m], Ns[n], tapss[t][0], tapss[t][1], 0, &rng);
  /* Largest products: (0 - 255) * 127 over K = 2048. */
  check_indirect_gemm(ctxs, 33, 32, 2, 1024, 1, &rng);
  check_indirect_gemm(ctxs, 33, 16, 6, 400, 1, &rng);
  test_workspace_free(ws, ctxs[1]);
}

/* Bad arguments: clear statuses, nothing written. */
static void check_indirect_errors(void) {
  uint8_t img[64] = {0};
  const void *rows[2] = {img, img};
  int8_t b[64] = {0};
  int32_t c[4] = {7, 7, 7, 7};
  i8t_gemm_indirect_a A = {.rows = rows, .taps = 2, .tap_bytes = 16, .tap_pitch = 16};
  i8t_matrix B = {b, 2, 1};
  assert_int_equal(i8t_gemm_u8s8s32_indirect(NULL, 2, 2, NULL, 0, B, c, 2), I8T_ERR_INVALID_ARG);
  i8t_gemm_indirect_a none = {.rows = NULL, .taps = 2, .tap_bytes = 16, .tap_pitch = 16};
  assert_int_equal(i8t_gemm_u8s8s32_indirect(NULL, 2, 2, &none, 0, B, c, 2), I8T_ERR_INVALID_ARG);
  assert_int_equal(i8t_gemm_u8s8s32_indirect(NULL, 0, 2, &A, 0, B, c, 2), I8T_ERR_SHAPE);
  assert_int_equal(i8t_gemm_u8s8s32_indirect(NULL, 2, 2, &A, 0, B, c, 1), I8T_ERR_SHAPE);
  i8t_gemm_indirect_a odd = {.rows = rows, .taps = 2, .tap_bytes = 6, .tap_pitch = 16};
  assert_int_equal(i8t_gemm_u8s8s32_indirect(NULL, 2, 2, &odd, 0, B, c, 2), I8T_ERR_UNSUPPORTED);
  for (int i = 0; i < 4; i++) assert_int_equal(c[i], 7);
}

/* ------------------------------------------------------------------------ */
/* The conv forward through it                                              */
/* ------------------------------------------------------------------------ */

static void conv_forward_ref(const i8t_conv_shape *s, const uint8_t *x, int zp, const int8_t *w,
                             int64_t *y) {
  int oh = i8t_conv_out_h(s), ow = i8t_conv_out_w(s), k = s->kernel, K = (int)i8t_conv_k(s);
  for (int n = 0; n < s->batch; n++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++)
        for (int co = 0; co < s->out_c; co++) {
          int64_t acc = 0;
          for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
              int iy = oy * s->stride - s->pad + ky, ix = ox * s->stride - s->pad + kx;
              if (iy < 0 || iy >= s->in_h || ix < 0 || ix >= s->in_w) continue; /* x - zp = 0 */
              const uint8_t *px = x + ((size_t)(n * s->in_h + iy) * s->in_w + ix) * s->in_c;
              const int8_t *wk = w + (size_t)co * K + (size_t)(ky * k + kx) * s->in_c;
              for (int ci = 0; ci < s->in_c; ci++) acc += (int64_t)(px[ci] - zp) * wk[ci];
            }
          y[((size_t)(n * oh + oy) * ow + ox) * s->out_c + co] = acc;
        }
}

/* The grad input dx = sum over the windows of dy * w (int64). */
static void conv_grad_input_ref(const i8t_conv_shape *s, const int8_t *dy, const int8_t *w,
                                int64_t *dx) {
  int oh = i8t_conv_out_h(s), ow = i8t_conv_out_w(s), k = s->kernel, K = (int)i8t_conv_k(s);
  memset(dx, 0, (size_t)s->batch * s->in_h * s->in_w * s->in_c * sizeof *dx);
  for (int n = 0; n < s->batch; n++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++)
        for (int ky = 0; ky < k; ky++)
          for (int kx = 0; kx < k; kx++) {
            int iy = oy * s->stride - s->pad + ky, ix = ox * s->stride - s->pad + kx;
            if (iy < 0 || iy >= s->in_h || ix < 0 || ix >= s->in_w) continue;
            int64_t *d = dx + ((size_t)(n * s->in_h + iy) * s->in_w + ix) * s->in_c;
            const int8_t *g = dy + ((size_t)(n * oh + oy) * ow + ox) * s->out_c;
            for (int co = 0; co < s->out_c; co++)
              for (int ci = 0; ci < s->in_c; ci++)
                d[ci] += (int64_t)g[co] * w[(size_t)co * K + (size_t)(ky * k + kx) * s->in_c + ci];
          }
}

/* Values of mode 0 random (zp random), 1 all 255 against zp 0 and +127
 * weights (largest sums), 2 all 0 against zp 255 (smallest), 3 0 / 255 at
 * random against zp 128 with +-127 weights. */
static void fill_conv(int mode, uint64_t *rng, uint8_t *x, size_t nx, int8_t *w, size_t nw,
                      int *zp) {
  static const int zps[] = {-1, 0, 255, 128};
  *zp = mode == 0 ? test_rand_range(rng, 0, 255) : zps[mode];
  for (size_t i = 0; i < nx; i++)
    x[i] = (uint8_t)(mode == 0   ? test_rand_range(rng, 0, 255)
                     : mode == 1 ? 255
                     : mode == 2 ? 0
                                 : 255 * test_rand_range(rng, 0, 1));
  for (size_t i = 0; i < nw; i++)
    w[i] = (int8_t)(mode == 0   ? test_rand_range(rng, -127, 127)
                    : mode == 3 ? (test_rand_range(rng, 0, 1) ? 127 : -127)
                                : 127);
}

/* Conv forward layouts (nn_conv.h's hook): by shape, batched one sample per
 * chunk, one block of samples per task. */
static const struct {
  int layout;
  size_t chunk_bytes;
} layouts[] = {{0, 0}, {1, 1}, {2, 0}};

/* Returns whether the shape ran the indirect GEMM on the current table.
 * wss: workspaces of 1 and 2 threads. */
/* got[0..n) == want[0..n), else a message naming the case and the first difference. */
static void check_equal(const char *what, const int32_t *got, const int64_t *want, size_t n,
                        const i8t_conv_shape *s, int mode, int threads, size_t layout) {
  for (size_t i = 0; i < n; i++)
    if (got[i] != want[i])
      fail_msg("conv %dx%dx%dx%d -> %d k%d s%d p%d mode %d, %d threads, layout %zu: "
               "%s[%zu] = %d, expected %lld",
               s->batch, s->in_h, s->in_w, s->in_c, s->out_c, s->kernel, s->stride, s->pad, mode,
               threads, layout, what, i, got[i], (long long)want[i]);
}

static int check_conv_forward(i8t_workspace *const wss[2], i8t_conv_shape s, uint64_t *rng) {
  size_t nx = (size_t)s.batch * s.in_h * s.in_w * s.in_c, nw = (size_t)s.out_c * i8t_conv_k(&s);
  size_t ny = (size_t)s.batch * i8t_conv_out_h(&s) * i8t_conv_out_w(&s) * s.out_c;
  uint8_t *x = malloc(nx);
  int8_t *w = malloc(nw);
  int32_t *y = malloc(ny * sizeof *y);
  int64_t *ref = malloc(ny * sizeof *ref), *dref = malloc(nx * sizeof *dref);
  int8_t *dy = malloc(ny);
  int32_t *dx = malloc(nx * sizeof *dx);
  for (int mode = 0; mode < 4; mode++) {
    int zp;
    fill_conv(mode, rng, x, nx, w, nw, &zp);
    conv_forward_ref(&s, x, zp, w, ref);
    /* dy: random, or all -128 / 127 / +-127 (the grad input's u8 path
     * reads dy + 128: 0, 255 and the extremes of its zero point 128). */
    for (size_t i = 0; i < ny; i++)
      dy[i] = (int8_t)(mode == 0   ? test_rand_range(rng, -128, 127)
                       : mode == 1 ? 127
                       : mode == 2 ? -128
                                   : (test_rand_range(rng, 0, 1) ? 127 : -127));
    conv_grad_input_ref(&s, dy, w, dref);
    for (int threads = 1; threads <= 2; threads++) {
      i8t_workspace *ws = wss[threads - 1];
      for (size_t l = 0; l < sizeof layouts / sizeof layouts[0]; l++) {
        i8t_conv_layout_for_tests(layouts[l].layout, layouts[l].chunk_bytes);
        memset(y, 0x55, ny * sizeof *y);
        assert_int_equal(i8t_conv2d_forward_s8(ws, &s, x, (uint8_t)zp, w, y, NULL, 0, NULL, NULL),
                         I8T_OK);
        check_equal("y", y, ref, ny, &s, mode, threads, l);
        memset(dx, 0x55, nx * sizeof *dx);
        assert_int_equal(i8t_conv2d_backward_data_s8(ws, &s, dy, w, dx), I8T_OK);
        check_equal("dx", dx, dref, nx, &s, mode, threads, l);
      }
      i8t_conv_layout_for_tests(0, 0);
    }
  }
  free(x), free(w), free(y), free(ref), free(dref), free(dy), free(dx);
  /* The conv's rule (conv.c forward_indirect_ok) for the shapes below, all
   * of one row group: not 1x1 stride 1 unpadded, more than one channel. */
  size_t N = I8T_ROUND_UP((size_t)s.out_c, i8t_gemm_panel_width(I8T_GEMM_U8S8S32, s.out_c));
  return !(s.kernel == 1 && s.stride == 1 && s.pad == 0) && s.in_c > 1 &&
         i8t_gemm_u8s8s32_indirect_ok(N, (size_t)s.kernel * s.in_c);
}

static void check_conv_shapes(i8t_isa isa) {
  /* batch, in_h, in_w, in_c, out_c, kernel, stride, pad */
  static const i8t_conv_shape shapes[] = {
      {3, 14, 14, 16, 16, 3, 1, 1}, /* 196 rows per sample: tiles across samples */
      {2, 9, 7, 4, 16, 3, 1, 1},    {2, 8, 8, 8, 16, 3, 2, 1},    {2, 7, 9, 32, 32, 3, 1, 1},
      {2, 6, 6, 64, 64, 3, 2, 1},   {2, 10, 10, 16, 32, 5, 1, 2}, {2, 9, 11, 8, 16, 5, 2, 2},
      {2, 10, 10, 16, 16, 1, 2, 0}, {2, 8, 8, 16, 16, 3, 1, 0},   {2, 9, 9, 16, 16, 3, 2, 0},
      {2, 3, 3, 16, 20, 3, 1, 2}, /* windows wholly in the padding */
      {2, 2, 9, 16, 16, 3, 1, 1},   {2, 6, 6, 8, 40, 3, 1, 1},    {2, 5, 5, 4, 8, 3, 1, 1},
      {1, 4, 4, 128, 16, 3, 1, 1}, /* K = 1152: KC blocks of whole taps */
      {2, 5, 5, 6, 16, 3, 1, 1},   /* taps of 18 bytes: im2col */
  };
  uint64_t rng = 77;
  int indirect = 0;
  i8t_context *ctx1, *ctx2;
  i8t_workspace *wss[2] = {test_workspace(1, &ctx1), test_workspace(2, &ctx2)};
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
    indirect += check_conv_forward(wss, shapes[i], &rng);
  test_workspace_free(wss[0], ctx1);
  test_workspace_free(wss[1], ctx2);
  /* The ISA whose kernel reads A in place must have taken the indirect path. */
  if (isa == I8T_ISA_AVX512VNNI) assert_int_equal(indirect, 15);
}

/* The GEMM itself, then the convolutions through it, on one ISA. */
static void indirect_gemm(i8t_isa isa) {
  (void)isa;
  check_indirect_gemms();
  check_indirect_errors();
  check_ranged_gemms();
}
static void conv_forward(i8t_isa isa) { check_conv_shapes(isa); }

#define DEFINE_ISA_TESTS(name, isa) \
  I8T_ISA_TEST(indirect_gemm, name, isa) I8T_ISA_TEST(conv_forward, name, isa)
I8T_TEST_ISAS(DEFINE_ISA_TESTS)

#define ISA_TEST_ENTRIES(name, isa) \
  cmocka_unit_test(test_indirect_gemm_##name), cmocka_unit_test(test_conv_forward_##name),

int main(void) {
  const struct CMUnitTest tests[] = {I8T_TEST_ISAS(ISA_TEST_ENTRIES)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
