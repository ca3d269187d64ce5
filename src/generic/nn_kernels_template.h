/* The layer-pass kernels (kernel_table.h, "Layer passes") as portable C,
 * written so that compilers vectorise them (restrict, no branches in the
 * loops). Each ISA folder includes this once with I8T_NN_SFX set and its own
 * compiler flags; elementwise float operations without contraction
 * (-ffp-contract=off) and integer reductions round the same at any width,
 * so every instance is bit-identical to the generic one. */
#include <string.h>

#include "../nn_kernels.h"

#ifndef I8T_NN_SFX
#error "define I8T_NN_SFX (the ISA suffix) before including nn_kernels_template.h"
#endif
#define I8T_NN_CAT2(a, b) a##__##b
#define I8T_NN_CAT(a, b) I8T_NN_CAT2(a, b)
#define I8T_NN_FN(name) I8T_NN_CAT(name, I8T_NN_SFX)

/* 0.0f + t, not t: -0 turns into +0 exactly as after zeroing v (no
 * -ffast-math, so the compiler keeps the add). */
#define I8T_NN_AXPY()                                                        \
  if (accumulate)                                                            \
    for (size_t i = 0; i < n; i++) v[i] += sc * (float)p[i];                 \
  else                                                                       \
    for (size_t i = 0; i < n; i++) v[i] = 0.0f + sc * (float)p[i];

void I8T_NN_FN(i8t_axpy_s32_f32)(size_t n, float sc, const int32_t *restrict p, int accumulate,
                                 float *restrict v) {
  I8T_NN_AXPY()
}

void I8T_NN_FN(i8t_axpy_s8_f32)(size_t n, float sc, const int8_t *restrict p, int accumulate,
                                float *restrict v) {
  I8T_NN_AXPY()
}

/* Two loops, not (accumulate ? v : 0) + t: 0 + (-0) would turn -0 into +0. */
void I8T_NN_FN(i8t_affine_u8_f32)(size_t n, const uint8_t *restrict x, const float *restrict m,
                                  const float *restrict a, int accumulate, float *restrict v) {
  if (accumulate)
    for (size_t i = 0; i < n; i++) v[i] += m[i] * (float)x[i] + a[i];
  else
    for (size_t i = 0; i < n; i++) v[i] = m[i] * (float)x[i] + a[i];
}

/* The last term of a u8 sum straight to u8 (kernel_table.h); the x86
 * folders take the vector version from x86_elementwise_template.h. */
#ifndef I8T_NN_X86_QUANTIZE
void I8T_NN_FN(i8t_affine_quantize_u8)(size_t n, const uint8_t *x, const float *m,
                                       const float *a, const float *base, int relu,
                                       uint8_t *mask, float inv_scale, int32_t zp,
                                       i8t_noise noise, uint8_t *q) {
  for (size_t i = 0; i < n; i++)
    q[i] = i8t_affine_quantize_u8_one(x, m, a, base, relu, mask, inv_scale, zp, noise, i);
}
#endif

/* One row of lanes; strict comparisons keep the earliest group. */
static inline void I8T_NN_FN(bn_lane_extremes_row)(size_t n, uint16_t b,
                                                   const uint8_t *restrict x,
                                                   uint8_t *restrict mn, uint8_t *restrict mx,
                                                   uint16_t *restrict amn,
                                                   uint16_t *restrict amx) {
  for (size_t i = 0; i < n; i++) {
    uint8_t v = x[i];
    amn[i] = v < mn[i] ? b : amn[i];
    mn[i] = v < mn[i] ? v : mn[i];
    amx[i] = v > mx[i] ? b : amx[i];
    mx[i] = v > mx[i] ? v : mx[i];
  }
}

void I8T_NN_FN(i8t_bn_lane_extremes)(size_t rows, size_t n, size_t ld, uint16_t b,
                                     const uint8_t *x, uint8_t *mn, uint8_t *mx, uint16_t *amn,
                                     uint16_t *amx) {
  for (size_t r = 0; r < rows; r++)
    I8T_NN_FN(bn_lane_extremes_row)(n, (uint16_t)(b + r), x + r * ld, mn, mx, amn, amx);
}

/* Integer min/max: order-free, so any vector width gives the same result. */
void I8T_NN_FN(i8t_minmax_s32)(size_t n, const int32_t *restrict y, int32_t *mn, int32_t *mx) {
  int32_t lo = INT32_MAX, hi = INT32_MIN;
  for (size_t i = 0; i < n; i++) {
    lo = y[i] < lo ? y[i] : lo;
    hi = y[i] > hi ? y[i] : hi;
  }
  *mn = lo, *mx = hi;
}

void I8T_NN_FN(i8t_mask_u8_f32)(size_t n, const uint8_t *restrict mask, float *restrict v) {
  for (size_t i = 0; i < n; i++) v[i] = mask[i] ? v[i] : 0.0f;
}

void I8T_NN_FN(i8t_mask_pos_f32)(size_t n, const float *restrict w, float *restrict v) {
  for (size_t i = 0; i < n; i++) v[i] = w[i] > 0.0f ? v[i] : 0.0f;
}

void I8T_NN_FN(i8t_affine_s8_f32)(size_t n, const int8_t *restrict g, const float *restrict a,
                                  const float *restrict b, float *restrict v) {
  for (size_t i = 0; i < n; i++) v[i] = a[i] * (float)g[i] + b[i];
}

void I8T_NN_FN(i8t_add_centered_u8_f32)(size_t n, const uint8_t *restrict x,
                                        const float *restrict e, const float *restrict qbar,
                                        float *restrict v) {
  for (size_t i = 0; i < n; i++) v[i] += e[i] * ((float)x[i] - qbar[i]);
}

/* A GEMM output to u8 (kernel_table.h): the scaled float, then
 * quantize_f32_u8's rule on it. The x86 folders take the vector version
 * from src/x86/x86_elementwise_template.h. */
#ifndef I8T_NN_X86_QUANTIZE
void I8T_NN_FN(i8t_requantize_s32_u8)(size_t n, const int32_t *restrict y,
                                      const float *restrict s, float inv_scale, int32_t zp,
                                      i8t_noise noise, uint8_t *restrict q) {
  for (size_t i = 0; i < n; i++) q[i] = i8t_requantize_u8_one(y, s, inv_scale, zp, noise, i);
}
#endif

/* Two stochastic roundings per element from 16 random bits (kernel_table.h).
 * The x86 folders define I8T_NN_X86_QUANTIZE and take the vector version
 * from src/x86/x86_elementwise_template.h, which applies these operations
 * lane-wise (its head and tail call i8t_quantize_s8s16_one itself). */
#ifndef I8T_NN_X86_QUANTIZE
void I8T_NN_FN(i8t_quantize_f32_s8s16)(size_t n, const float *restrict v,
                                       const float *restrict cs, float inv8, float inv16,
                                       i8t_noise noise, int8_t *restrict q8,
                                       int16_t *restrict q16) {
  size_t i = 0;
  if (n && (noise.ctr & 1u)) /* the odd half of a pair: its own hash */
    i8t_quantize_s8s16_one(v, cs, inv8, inv16, noise, i++, q8, q16);
  for (; i + 2 <= n; i += 2) { /* a pair's two halves from one hash (no wrap inside a pair) */
    uint32_t h = i8t_rng_hash(noise.key ^ I8T_RNG_PAIR_DOMAIN, (noise.ctr + (uint32_t)i) >> 1);
    i8t_quantize_s8s16_bits(v, cs, inv8, inv16, h & 0xFFFFu, i, q8, q16);
    i8t_quantize_s8s16_bits(v, cs, inv8, inv16, h >> 16, i + 1, q8, q16);
  }
  if (i < n) i8t_quantize_s8s16_one(v, cs, inv8, inv16, noise, i, q8, q16);
}
#endif

/* BN backward's per-channel sums (kernel_table.h). Narrow tensors (C < 256)
 * gather in lanes of L = C * (256 / C) values first, so that the inner loop
 * is one long vectorisable run over L instead of C, then fold the lanes;
 * wider ones run row by row. The x86 folders take a vector version that
 * keeps its sums in registers; it calls this one for shapes it does not
 * cover and for leftover rows. */
enum { I8T_NN_SUM_LANES = 256 };

static void I8T_NN_FN(bn_sums_rows)(size_t n, size_t rows, size_t ld,
                                     const int8_t *restrict g, const uint8_t *restrict x,
                                     int32_t *restrict sg, int32_t *restrict sgq,
                                     uint32_t *restrict sq, int8_t *restrict gmin,
                                     int8_t *restrict gmax) {
  for (size_t r = 0; r < rows; r++)
    for (size_t i = 0; i < n; i++) {
      int16_t gi = g[r * ld + i], qi = x[r * ld + i];
      sg[i] += gi;
      sgq[i] += (int16_t)(gi * qi); /* |g q| <= 128 * 255 fits 16 bits */
      sq[i] += (uint32_t)qi;
      gmin[i] = gi < gmin[i] ? (int8_t)gi : gmin[i];
      gmax[i] = gi > gmax[i] ? (int8_t)gi : gmax[i];
    }
}

void I8T_NN_FN(i8t_bn_col_sums_portable)(size_t rows, size_t C, size_t ld, const int8_t *g,
                                         const uint8_t *x, int32_t *sg, int32_t *sgq,
                                         uint32_t *sq, int8_t *gmin, int8_t *gmax) {
  for (size_t c = 0; c < C; c++) sg[c] = sgq[c] = 0, sq[c] = 0, gmin[c] = 127, gmax[c] = -127;
  size_t per = C < I8T_NN_SUM_LANES ? I8T_NN_SUM_LANES / C : 1, L = per * C;
  if (per == 1 || rows < per || ld != C) { /* lanes of several rows need contiguous rows */
    I8T_NN_FN(bn_sums_rows)(C, rows, ld, g, x, sg, sgq, sq, gmin, gmax);
    return;
  }
  int32_t lsg[I8T_NN_SUM_LANES], lsgq[I8T_NN_SUM_LANES];
  uint32_t lsq[I8T_NN_SUM_LANES];
  int8_t lmin[I8T_NN_SUM_LANES], lmax[I8T_NN_SUM_LANES];
  for (size_t i = 0; i < L; i++) lsg[i] = lsgq[i] = 0, lsq[i] = 0, lmin[i] = 127, lmax[i] = -127;
  size_t groups = rows / per, left = groups * per;
  I8T_NN_FN(bn_sums_rows)(L, groups, L, g, x, lsg, lsgq, lsq, lmin, lmax);
  I8T_NN_FN(bn_sums_rows)(C, rows - left, C, g + left * C, x + left * C, sg, sgq, sq, gmin,
                          gmax);
  for (size_t i0 = 0; i0 < L; i0 += C) /* fold the lanes: lane i0 + c is channel c */
    for (size_t c = 0; c < C; c++) {
      size_t i = i0 + c;
      sg[c] += lsg[i], sgq[c] += lsgq[i], sq[c] += lsq[i];
      gmin[c] = lmin[i] < gmin[c] ? lmin[i] : gmin[c];
      gmax[c] = lmax[i] > gmax[c] ? lmax[i] : gmax[c];
    }
}

#ifndef I8T_NN_X86_QUANTIZE
void I8T_NN_FN(i8t_bn_col_sums)(size_t rows, size_t C, size_t ld, const int8_t *g,
                                const uint8_t *x, int32_t *sg, int32_t *sgq, uint32_t *sq,
                                int8_t *gmin, int8_t *gmax) {
  I8T_NN_FN(i8t_bn_col_sums_portable)(rows, C, ld, g, x, sg, sgq, sq, gmin, gmax);
}
#endif

/* Gradient spans (kernel_table.h, i8t_grad_span): tiles of 64 values summed
 * source by source into a stack array (vectorisable loops, the per-element
 * operations of i8t_grad_sum_one in the same order), then reduced or
 * quantized. The x86 folders keep the sum in registers instead
 * (src/x86/x86_elementwise_template.h). */
#ifndef I8T_NN_X86_QUANTIZE
enum { I8T_NN_GRAD_TILE = 64 };

static void I8T_NN_FN(grad_tile)(const i8t_grad_span *s, size_t i0, size_t m,
                                 float *restrict t) {
  for (size_t i = 0; i < m; i++) t[i] = 0.0f;
  for (int k = 0; k < s->n_src; k++) {
    const float sc = s->sc[k];
    if (s->s8[k]) {
      const int8_t *restrict p = (const int8_t *)s->src[k] + i0;
      for (size_t i = 0; i < m; i++) t[i] += sc * (float)p[i];
    } else {
      const int32_t *restrict p = (const int32_t *)s->src[k] + i0;
      for (size_t i = 0; i < m; i++) t[i] += sc * (float)p[i];
    }
  }
  if (s->mask) {
    const uint8_t *restrict mk = s->mask + i0;
    for (size_t i = 0; i < m; i++) t[i] = mk[i] ? t[i] : 0.0f;
  }
}

float I8T_NN_FN(i8t_grad_sum_absmax)(size_t n, const i8t_grad_span *s, float *out) {
  float t[I8T_NN_GRAD_TILE], lo = INFINITY, hi = -INFINITY;
  int bad = 0;
  if (n == 0) return 0.0f;
  for (size_t i0 = 0; i0 < n; i0 += I8T_NN_GRAD_TILE) {
    size_t m = n - i0 < I8T_NN_GRAD_TILE ? n - i0 : I8T_NN_GRAD_TILE;
    I8T_NN_FN(grad_tile)(s, i0, m, t); /* the tile's sources are read first */
    if (out) memcpy(out + i0, t, m * sizeof *t);
    for (size_t i = 0; i < m; i++) {
      bad |= !isfinite(t[i]);
      lo = t[i] < lo ? t[i] : lo;
      hi = t[i] > hi ? t[i] : hi;
    }
  }
  return bad ? NAN : fmaxf(-lo, hi);
}

void I8T_NN_FN(i8t_grad_sum_quantize_s8)(size_t n, const i8t_grad_span *s, float inv_scale,
                                         i8t_noise noise, int8_t *q) {
  float t[I8T_NN_GRAD_TILE];
  for (size_t i0 = 0; i0 < n; i0 += I8T_NN_GRAD_TILE) {
    size_t m = n - i0 < I8T_NN_GRAD_TILE ? n - i0 : I8T_NN_GRAD_TILE;
    I8T_NN_FN(grad_tile)(s, i0, m, t);
    for (size_t i = 0; i < m; i++) q[i0 + i] = i8t_quantize_s8_one(t[i], inv_scale, noise, i0 + i);
  }
}
#endif

#ifndef I8T_NN_X86_QUANTIZE /* x86: src/x86/x86_elementwise_template.h */
void I8T_NN_FN(i8t_interleave_pixels_u8_s16)(size_t n, size_t C, const uint8_t *row,
                                             size_t step, size_t b_off, int16_t zp,
                                             int16_t *restrict d) {
  for (size_t q = 0; q < n; q++, d += 2 * C) {
    const uint8_t *restrict a = row + q * step, *restrict b = a + b_off;
    for (size_t c = 0; c < C; c++) {
      d[2 * c] = (int16_t)(a[c] - zp);
      d[2 * c + 1] = (int16_t)(b[c] - zp);
    }
  }
}
#endif

/* col2im (kernel_table.h), dx row by row: the row zeroed, then the column
 * rows (oy) whose tap row ky = iy + pad - oy * stride lies on it add their
 * windows' runs. The row stays in L1 while it gathers them and is written
 * to memory once (a whole-sample memset and then scattered adds into it was
 * more than half of the strided grad input at 16 channels). */
void I8T_NN_FN(i8t_col2im_s32)(const i8t_col2im_geom *g, const int32_t *cols, size_t ld,
                               size_t samples, int32_t *dx) {
  const size_t C = g->c, k = g->kernel, S = g->stride, row_len = g->w * C;
  const long W = (long)g->w, P = (long)g->pad;
  for (size_t n = 0; n < samples; n++)
    for (size_t iy = 0; iy < g->h; iy++) {
      int32_t *restrict d = dx + (n * g->h + iy) * row_len;
      for (size_t i = 0; i < row_len; i++) d[i] = 0;
      const size_t top = iy + g->pad; /* oy * S + ky */
      const size_t oy0 = top + 1 > k ? (top + 1 - k + S - 1) / S : 0;
      const size_t oy1 = top / S + 1 < g->oh ? top / S + 1 : g->oh;
      for (size_t oy = oy0; oy < oy1; oy++) {
        const int32_t *row = cols + (n * g->oh + oy) * g->ow * ld + (top - oy * S) * k * C;
        for (size_t ox = 0; ox < g->ow; ox++, row += ld) {
          const long ix0 = (long)(ox * S) - P, lo = ix0 < 0 ? -ix0 : 0;
          const long hi = ix0 + (long)k > W ? W - ix0 : (long)k;
          if (hi <= lo) continue;
          const int32_t *restrict c = row + (size_t)lo * C;
          int32_t *restrict o = d + (size_t)(ix0 + lo) * C;
          for (size_t i = 0; i < (size_t)(hi - lo) * C; i++) o[i] += c[i];
        }
      }
    }
}

#ifndef I8T_NN_X86_QUANTIZE /* x86: src/x86/x86_elementwise_template.h */
void I8T_NN_FN(i8t_interleave_rows_s16)(size_t rows, size_t w, size_t pairs, const int16_t *a,
                                        const int16_t *b, size_t lda, int16_t *d, size_t ldd) {
  for (size_t r = 0; r < rows; r++)
    i8t_interleave_row_s16_from(0, w, pairs, a + r * lda, b ? b + r * lda : NULL, d + r * ldd);
}
#endif
