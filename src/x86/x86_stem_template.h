/* The 1-channel 3x3 stem convolution's direct kernels on x86 (kernel_table.h:
 * i8t_conv3x3_c1_fwd_fn, i8t_conv3x3_c1_wgrad_fn), written once on the
 * vector vocabulary of src/x86/README.md; 16 output channels = STEM_NV vectors.
 *
 * Forward: a window row is 3 pixels plus one byte that meets a zero weight,
 * so per pixel and window row one 32-bit broadcast of the u8 image and one
 * u8 x s8 dot step (vpdpbusd) per vector: 3 per pixel; the zero-point
 * correction is the accumulators' start value (bias). Needs STEM_DOT_U8S8.
 * With STEM_FWD_S16 (no such dot step) it reads the s16 image instead: per
 * window row two broadcasts of int16 pairs, (x0, x1) and (x2, x3), against
 * the weight pairs (w0, w1) and (w2, 0): 6 s16 dot steps per pixel.
 *
 * Weight gradient: pixel PAIRS (p, p + 1 of one output row): dy of the two
 * pixels interleaved as int16 pairs per channel (vi_pair16), and for each of
 * the 9 taps the pair (x[p + tap], x[p + 1 + tap]) - zp is one 32-bit
 * broadcast of the int16 image (neighbouring pixels are neighbours in a
 * row): 9 s16 dot steps per pair into 9 accumulators, widened into int64
 * every I8T_STEM_FLUSH_PIXELS pixels (the int32 bound). A row of odd width
 * ends with a pair whose second dy is zero.
 *
 * Include after the ISA's vector header with STEM_FWD_NAME (optional, with
 * STEM_DOT_U8S8 or STEM_FWD_S16) and STEM_WGRAD_NAME defined; they are
 * undefined at the end. */
#if !defined(STEM_WGRAD_NAME) || \
    (defined(STEM_FWD_NAME) && !defined(STEM_DOT_U8S8) && !defined(STEM_FWD_S16))
#error "define STEM_WGRAD_NAME (and STEM_FWD_NAME with STEM_DOT_U8S8 or STEM_FWD_S16)"
#endif

#include <string.h>

#define STEM_NV (16 / I8T_VLANES)

#ifdef STEM_FWD_NAME
/* Pixels per forward block: independent dot chains that hide the dot
 * step's latency (3 or 6 dependent steps per pixel); 8 zmm or 4 x 2 ymm
 * accumulators (AVX2's 16 registers). */
#define STEM_FWD_PIX (8 / STEM_NV)
#ifdef STEM_FWD_S16
typedef int16_t stem_pixel;
#define STEM_FWD_STEPS 2 /* dot steps per window row */
#define STEM_FWD_DOT vi_dot_s16
#else
typedef uint8_t stem_pixel;
#define STEM_FWD_STEPS 1
#define STEM_FWD_DOT STEM_DOT_U8S8
#endif

/* N pixels from ox: y, and the running extremes. N is a constant after
 * inlining, so the accumulators stay in registers. Step s of a window row
 * reads the image 2 s elements on (the s16 image's second pair). */
static inline __attribute__((always_inline)) void stem_fwd_pixels(
    const int N, const stem_pixel *r0, size_t ldx, const i8t_vi wv[3][STEM_FWD_STEPS][STEM_NV],
    const i8t_vi b[STEM_NV], int32_t *y, size_t ldy, i8t_vi lo[STEM_NV], i8t_vi hi[STEM_NV]) {
  i8t_vi acc[STEM_FWD_PIX][STEM_NV];
  _Pragma("GCC unroll 8") for (int j = 0; j < N; j++) {
    _Pragma("GCC unroll 4") for (int v = 0; v < STEM_NV; v++) acc[j][v] = b[v];
  }
  _Pragma("GCC unroll 3") for (int ky = 0; ky < 3; ky++) {
    _Pragma("GCC unroll 2") for (int st = 0; st < STEM_FWD_STEPS; st++) {
      _Pragma("GCC unroll 8") for (int j = 0; j < N; j++) {
        i8t_vi xv = vi_bcast32(r0 + (size_t)ky * ldx + j + 2 * st);
        _Pragma("GCC unroll 4") for (int v = 0; v < STEM_NV; v++)
          acc[j][v] = STEM_FWD_DOT(acc[j][v], xv, wv[ky][st][v]);
      }
    }
  }
  _Pragma("GCC unroll 8") for (int j = 0; j < N; j++) {
    _Pragma("GCC unroll 4") for (int v = 0; v < STEM_NV; v++) {
      vi_store(y + (size_t)j * ldy + v * I8T_VLANES, acc[j][v]);
      lo[v] = vi_min32(lo[v], acc[j][v]);
      hi[v] = vi_max32(hi[v], acc[j][v]);
    }
  }
}

/* The weight vectors of each window row's dot steps. */
static void stem_fwd_weights(const int8_t *wq, i8t_vi wv[3][STEM_FWD_STEPS][STEM_NV]) {
#ifdef STEM_FWD_S16
  int16_t pairs[2][16][2]; /* a window row's (w0, w1) and (w2, 0) per channel */
  for (int ky = 0; ky < 3; ky++) {
    for (int co = 0; co < 16; co++) {
      const int8_t *g = wq + (ky * 16 + co) * 4;
      pairs[0][co][0] = g[0], pairs[0][co][1] = g[1];
      pairs[1][co][0] = g[2], pairs[1][co][1] = 0;
    }
    for (int st = 0; st < 2; st++)
      for (int v = 0; v < STEM_NV; v++) wv[ky][st][v] = vi_load(pairs[st][v * I8T_VLANES]);
  }
#else
  for (int ky = 0; ky < 3; ky++)
    for (int v = 0; v < STEM_NV; v++) wv[ky][0][v] = vi_load(wq + (ky * 16 + v * I8T_VLANES) * 4);
#endif
}

void STEM_FWD_NAME(size_t h, size_t w, const void *img, size_t ldx, const int8_t *wq,
                   const int32_t *bias, int32_t *y, size_t ldy, int32_t *mn, int32_t *mx) {
  const stem_pixel *xp = img;
  i8t_vi wv[3][STEM_FWD_STEPS][STEM_NV], b[STEM_NV], lo[STEM_NV], hi[STEM_NV];
  stem_fwd_weights(wq, wv);
  for (int v = 0; v < STEM_NV; v++) {
    b[v] = vi_load(bias + v * I8T_VLANES);
    lo[v] = vi_set1(INT32_MAX);
    hi[v] = vi_set1(INT32_MIN);
  }
  for (size_t oy = 0; oy < h; oy++) {
    const stem_pixel *r0 = xp + oy * ldx;
    int32_t *yr = y + oy * w * ldy;
    size_t ox = 0;
    for (; ox + STEM_FWD_PIX <= w; ox += STEM_FWD_PIX)
      stem_fwd_pixels(STEM_FWD_PIX, r0 + ox, ldx, wv, b, yr + ox * ldy, ldy, lo, hi);
    for (; ox < w; ox++) stem_fwd_pixels(1, r0 + ox, ldx, wv, b, yr + ox * ldy, ldy, lo, hi);
  }
  for (int v = 0; v < STEM_NV; v++) {
    vi_store(mn + v * I8T_VLANES, lo[v]);
    vi_store(mx + v * I8T_VLANES, hi[v]);
  }
}
#undef STEM_FWD_PIX
#undef STEM_FWD_STEPS
#undef STEM_FWD_DOT
#undef STEM_FWD_NAME
#undef STEM_DOT_U8S8
#undef STEM_FWD_S16
#endif

/* acc64[t * 16 + c] (c: the pass's I8T_VLANES channels) += the int32
 * partial sums, which restart at 0. */
static inline void stem_wgrad_flush(i8t_vi part[9], int64_t *acc64) {
  for (int t = 0; t < 9; t++) {
    vi_store_s64(acc64 + t * 16, part[t], 1);
    part[t] = vi_zero();
  }
}

/* One pixel pair: d0, d1 the two pixels' dy (the pass's channels), x0 the
 * int16 image at the first pixel's top-left tap. */
static inline __attribute__((always_inline)) void stem_wgrad_pair(
    const int16_t *d0, const int16_t *d1, const int16_t *x0, size_t ldx, i8t_vi part[9]) {
  i8t_vi d = vi_pair16(d0, d1);
  _Pragma("GCC unroll 3") for (int ky = 0; ky < 3; ky++) {
    _Pragma("GCC unroll 3") for (int kx = 0; kx < 3; kx++)
      part[ky * 3 + kx] = vi_dot_s16(part[ky * 3 + kx], vi_bcast32(x0 + (size_t)ky * ldx + kx), d);
  }
}

/* One pass over the sample per vector of channels: its 9 accumulators stay
 * in registers (9 x 2 ymm and the operands would not fit AVX2's 16). */
void STEM_WGRAD_NAME(size_t h, size_t w, const int16_t *xs, size_t ldx, const int16_t *dy,
                     size_t ldd, int64_t *acc64) {
  static const int16_t zero_dy[16]; /* the missing second pixel of an odd row's end */
  for (int v = 0; v < STEM_NV; v++) {
    const int16_t *dv = dy + v * I8T_VLANES;
    i8t_vi part[9];
    for (int t = 0; t < 9; t++) part[t] = vi_zero();
    size_t pending = 0; /* pixels (pairs count 2) in part since the last flush */
    for (size_t oy = 0; oy < h; oy++) {
      const int16_t *xr = xs + oy * ldx, *dr = dv + oy * w * ldd;
      for (size_t ox = 0; ox < w; ox += 2) {
        if (pending == I8T_STEM_FLUSH_PIXELS) {
          stem_wgrad_flush(part, acc64 + v * I8T_VLANES);
          pending = 0;
        }
        const int16_t *d1 = ox + 1 < w ? dr + (ox + 1) * ldd : zero_dy;
        stem_wgrad_pair(dr + ox * ldd, d1, xr + ox, ldx, part);
        pending += 2;
      }
    }
    stem_wgrad_flush(part, acc64 + v * I8T_VLANES);
  }
}

#undef STEM_WGRAD_NAME
#undef STEM_NV
