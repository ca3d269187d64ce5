/* The kernel table: every ISA-specific function int8train calls, filled once
 * per ISA by src/<isa>/<isa>_table.c. Nothing outside src/<isa>/ includes an
 * ISA header; everything else calls through this table.
 *
 * Adding an ISA: write its microkernels and one i8t_init_table_<isa>()
 * that starts from the generic table and overrides what it has, then add a
 * line to the ISA list in dispatch.c. The GEMM driver, the packers, the
 * tests and the benchmarks pick it up from the table. */
#ifndef INT8TRAIN_KERNEL_TABLE_H
#define INT8TRAIN_KERNEL_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "int8train/int8train.h"
#include "rng.h"

/* ------------------------------------------------------------------------ */
/* GEMM microkernels and the packed layout they read                        */
/* ------------------------------------------------------------------------ */

/* Element type of a packed panel. */
typedef enum i8t_pack_elem {
  I8T_PACK_S8 = 0,  /* int8  */
  I8T_PACK_U8 = 1,  /* uint8 */
  I8T_PACK_S16 = 2, /* int16 */
} i8t_pack_elem;

/* PACKED LAYOUT (the one place it is written down).
 *
 * A microkernel computes an MR x NR tile of C over a K panel of kc values,
 * kc a multiple of KR (the driver zero-pads K up to it).
 *
 *   packed A panel: kc/KR groups; group g holds, for row r = 0..MR-1, the KR
 *                   values A[r][g*KR .. g*KR+KR-1]  -> element (g, r, j) at
 *                   index (g * MR + r) * KR + j
 *   packed B panel: kc/KR groups; group g holds, for column c = 0..NR-1, the
 *                   KR values B[g*KR .. g*KR+KR-1][c] -> element (g, c, j) at
 *                   index (g * NR + c) * KR + j
 *
 * Rows past M, columns past N and k past K are packed as 0 (in the packed
 * element domain), so they add nothing to the accumulators.
 *
 * Element conversion while packing (source value v, zero point zp of a u8 source):
 *   to S16: v - zp           (zp = 0 for signed sources; exact, no correction)
 *   to U8 : v + 128 for an s8 source (VNNI's vpdpbusd wants u8 x s8), v for u8
 *   to S8 : v - 128 for a u8 source (SDOT / sign-trick want s8 x s8), v for s8
 * The shift `off` applied to an int8-packed A changes the product by
 * (zp + off) * colsum(B); the driver subtracts that from C using column sums
 * of B over the whole K, which it adds up from the packed B panels (sum_b)
 * of each KC block as it uses them, less the B shift times K. */

/* C[0..MR)[0..NR) (row stride ldc, in int32 elements) = (accumulate ? C : 0)
 * + packed_A * packed_B over kc values of K. Exactness contract: the int32
 * accumulation may wrap only where the true result would not fit, which the
 * driver prevents by its choice of kc. */
typedef void (*i8t_gemm_ukernel_fn)(size_t kc, const void *a_packed,
                                    const void *b_packed, int32_t *c, size_t ldc,
                                    int accumulate);

/* Source of a packing call: element (r, c) of the operand block is
 * data[r * row_stride + c * col_stride] (strides in elements of type `elem`),
 * converted by adding `shift` (see the conversion rules above). */
typedef struct i8t_pack_src {
  const void *data;
  size_t row_stride, col_stride;
  i8t_pack_elem elem; /* source element type: U8, S8 or S16 */
  int32_t shift;
} i8t_pack_src;

/* Arguments of the optional extended microkernel entry point (run_ex): the
 * same tile product as i8t_gemm_ukernel_fn, plus three things that save the
 * driver a pass over memory:
 *   - A may be read in place: group g of row r is the KR values at
 *     a + r * a_row_bytes + g * a_group_bytes (a packed panel has
 *     a_row_bytes = KR * size, a_group_bytes = MR * KR * size; the source
 *     itself has a_row_bytes = lda * size, a_group_bytes = KR * size);
 *   - C may be int64 (c64): the int32 tile is sign-extended and stored or added;
 *   - col_sub (int32 C only): NR values subtracted from every row of the tile
 *     at the end (the zero-point correction of kernel_table.h), or NULL. */
typedef struct i8t_ukernel_args {
  size_t kc; /* a multiple of KR */
  const void *a;
  size_t a_row_bytes, a_group_bytes;
  const void *b; /* packed B panel */
  int32_t *c32;  /* exactly one of c32 / c64 is non-NULL */
  int64_t *c64;
  size_t ldc; /* row stride of C, in elements */
  int accumulate;
  const int32_t *col_sub;
  /* Optional A in taps (a_tap_groups = 0: the addressing above, from a): the
   * kc values of a row are kc / (KR * a_tap_groups) taps of a_tap_groups
   * groups, group g of tap t of row r at
   *   a_rows[r] + t * a_tap_bytes + g * a_group_bytes   with a_rows (MR
   *     pointers: an implicit convolution, a tap being one window row of the
   *     input image, a_tap_bytes its row pitch; i8t_gemm_u8s8s32_indirect);
   *   a + 4 * r + t * a_tap_bytes + g * a_group_bytes     when a_rows is NULL
   *     (interleaved rows: one K group of each of the MR rows side by side;
   *     a_row_bytes is not used; i8t_gemm_s16s16s64_indirect), where the
   *     taps may come in blocks: a_block_taps > 0 taps a block, tap t being
   *     tap a_block_tap + t of the first block in order, and a_block_skip
   *     more bytes between the last tap of a block and the next's first. */
  const void *const *a_rows;
  size_t a_tap_bytes, a_tap_groups;
  size_t a_block_taps, a_block_tap, a_block_skip;
  /* Optional (NULL: none; int32 C only): the running extremes of the values
   * stored, I8T_RANGE_LANES lane-wise minimums then as many maximums: the
   * kernel folds every stored value into one of its first vector-width
   * lanes of each half (the driver's per-group ranges, i8t_gemm_row_ranges,
   * without a pass over C). */
  int32_t *range;
} i8t_ukernel_args;
enum { I8T_RANGE_LANES = 16 };
typedef void (*i8t_gemm_ukernel_ex_fn)(const i8t_ukernel_args *args);

struct i8t_gemm_ukernel;
/* Packs rows [0, m) x k [0, kc) of A into ceil(m / MR) consecutive A panels
 * (each MR x round_up(kc, KR)). */
typedef void (*i8t_pack_a_fn)(const struct i8t_gemm_ukernel *uk, const i8t_pack_src *src,
                              size_t m, size_t kc, void *dst);
/* Packs k [0, kc) x columns [0, n) of B into ceil(n / NR) consecutive B panels. */
typedef void (*i8t_pack_b_fn)(const struct i8t_gemm_ukernel *uk, const i8t_pack_src *src,
                              size_t kc, size_t n, void *dst);
/* Adds to sums[0..NR) the column sums of one packed B panel of kc_pad values
 * (a multiple of KR), in the packed element domain: sums[c] += the sum over
 * g, j of element (g, c, j). The driver takes the zero-point correction of an
 * int8-packed A from these (one pass over a panel already in cache, instead
 * of one over B in memory). */
typedef void (*i8t_sum_b_fn)(const struct i8t_gemm_ukernel *uk, size_t kc_pad,
                             const void *b_panel, int32_t *sums);

typedef struct i8t_gemm_ukernel {
  const char *name;        /* e.g. "gemm_u8s8s32_4x16c2__avx2" */
  i8t_gemm_ukernel_fn run;
  /* Optional (NULL: the driver only calls `run`): see i8t_ukernel_args. */
  i8t_gemm_ukernel_ex_fn run_ex;
  /* Packers; NULL selects the portable ones in src/pack.c. An ISA supplies
   * its own where packing would otherwise limit speed. */
  i8t_pack_a_fn pack_a;
  i8t_pack_b_fn pack_b;
  /* Optional (NULL: the portable one in src/pack.c); int8 B panels only. */
  i8t_sum_b_fn sum_b;
  uint8_t mr, nr, kr;      /* tile rows, tile columns, K group */
  uint8_t a_elem, b_elem;  /* i8t_pack_elem of the packed panels */
  /* Cache blocking (0 = driver default). kc is further capped by the
   * overflow bound of the GEMM kind. */
  uint16_t mc, kc;
  uint32_t nc;
} i8t_gemm_ukernel;

/* ------------------------------------------------------------------------ */
/* Elementwise kernels                                                      */
/* ------------------------------------------------------------------------ */

/* Stochastic rounding key/counter for one kernel call: element i uses counter
 * (ctr + i) mod 2^32 under key (see rng.h). */
typedef struct i8t_noise {
  int stochastic;
  uint32_t key;
  uint32_t ctr;
} i8t_noise;

/* A kernel call's key and 32-bit counter cover one 2^32 block of a rounding
 * stream's 64-bit counter. For elements [at, n) of the stream r: *noise for
 * element `at`, and how many elements from `at` stay within its block (the
 * length of the call). Every quantizing loop splits its calls this way, so
 * an element's draw depends on its index only. */
static inline size_t i8t_noise_piece(i8t_rounding r, size_t at, size_t n, i8t_noise *noise) {
  uint64_t ctr = r.counter + at;
  uint64_t room = ((uint64_t)1 << 32) - (uint32_t)ctr;
  noise->stochastic = r.stochastic;
  noise->key = i8t_rng_key(r.seed, (uint32_t)(ctr >> 32));
  noise->ctr = (uint32_t)ctr;
  return (uint64_t)(n - at) < room ? n - at : (size_t)room;
}

/* Returns non-zero if any element is NaN or Inf (min/max then undefined). */
typedef int (*i8t_minmax_f32_fn)(const float *x, size_t n, float *min, float *max);
/* q = clamp(R(x * inv_scale) + zp, lo, hi), R = nearest-even or stochastic;
 * NaN gives lo. The product is one float multiply (no FMA) so that every ISA
 * rounds the same. */
typedef void (*i8t_quantize_f32_u8_fn)(const float *x, size_t n, float inv_scale,
                                       int32_t zp, i8t_noise noise, uint8_t *q);
typedef void (*i8t_quantize_f32_s8_fn)(const float *x, size_t n, float inv_scale,
                                       i8t_noise noise, int8_t *q);
typedef void (*i8t_quantize_f32_s16_fn)(const float *x, size_t n, float inv_scale,
                                        i8t_noise noise, int16_t *q);
/* Per-column min/max/sum of a u8 matrix (see i8t_colwise_stats_u8). */
typedef void (*i8t_colwise_stats_u8_fn)(const uint8_t *x, size_t rows, size_t cols,
                                        size_t ld, uint8_t *min, uint8_t *max,
                                        uint32_t *sum);

/* Layer passes (src/nn): the inner loops over one block of n values. Plain C
 * in src/generic/nn_kernels_template.h, compiled once per ISA folder with its
 * flags; -ffp-contract=off keeps every result bit-identical across ISAs. */
/* A GEMM output straight to u8: q[i] = what quantize_f32_u8 gives for the
 * float v[i] = (float)y[i] * s[i] (the cast rounding to nearest), element i
 * taking noise's counter + i. One pass, the float only in a register: the two-pass
 * form spent as long on its float round trip as on the rounding. */
typedef void (*i8t_requantize_s32_u8_fn)(size_t n, const int32_t *y, const float *s,
                                         float inv_scale, int32_t zp, i8t_noise noise,
                                         uint8_t *q);
/* One gradient source into the sum: v[i] = (accumulate ? v[i] : 0.0f) +
 * sc * (float)p[i], the +0.0f kept (bit-identical to zeroing v first). */
typedef void (*i8t_axpy_s32_f32_fn)(size_t n, float sc, const int32_t *p, int accumulate,
                                    float *v);
typedef void (*i8t_axpy_s8_f32_fn)(size_t n, float sc, const int8_t *p, int accumulate,
                                   float *v);
/* v[i] = m[i] * (float)x[i] + a[i], or v[i] += (that) when accumulate. */
typedef void (*i8t_affine_u8_f32_fn)(size_t n, const uint8_t *x, const float *m,
                                     const float *a, int accumulate, float *v);
/* The last term of a sum of u8 terms straight to u8 (i8t_sum_act_forward_u8):
 * v = m[i] * (float)x[i] + a[i], then base[i] + v where base holds the
 * earlier terms' sum (NULL: no earlier term); with relu, mask[i] = v > 0
 * (mask may be NULL) and v = v > 0 ? v : 0; then q[i] = quantize_f32_u8's
 * rule on v, element i taking noise's counter + i. The operations of
 * affine_u8_f32, the ReLU and quantize_f32_u8 in turn, so the same bits as
 * those passes over a float block. */
typedef void (*i8t_affine_quantize_u8_fn)(size_t n, const uint8_t *x, const float *m,
                                          const float *a, const float *base, int relu,
                                          uint8_t *mask, float inv_scale, int32_t zp,
                                          i8t_noise noise, uint8_t *q);
/* Range BN lanes: over `rows` rows of n lanes (row r at x + r * ld), the
 * min/max of x per lane and the group index b + r where each first occurs. */
typedef void (*i8t_bn_lane_extremes_fn)(size_t rows, size_t n, size_t ld, uint16_t b,
                                        const uint8_t *x, uint8_t *mn, uint8_t *mx,
                                        uint16_t *amn, uint16_t *amx);
/* *mn, *mx = min and max of y[0..n), n > 0 (per-sample GEMM output ranges). */
typedef void (*i8t_minmax_s32_fn)(size_t n, const int32_t *y, int32_t *mn, int32_t *mx);
/* v[i] = mask[i] ? v[i] : 0 (masked gradient from stored ReLU bytes). */
typedef void (*i8t_mask_u8_f32_fn)(size_t n, const uint8_t *mask, float *v);
/* v[i] = w[i] > 0 ? v[i] : 0 (masked gradient from recomputed activations). */
typedef void (*i8t_mask_pos_f32_fn)(size_t n, const float *w, float *v);
/* BN backward's dense part: v[i] = a[i] * (float)g[i] + b[i]; then, for
 * standard BN, v[i] += e[i] * ((float)x[i] - qbar[i]). */
typedef void (*i8t_affine_s8_f32_fn)(size_t n, const int8_t *g, const float *a,
                                     const float *b, float *v);
typedef void (*i8t_add_centered_u8_f32_fn)(size_t n, const uint8_t *x, const float *e,
                                           const float *qbar, float *v);
/* BN backward's two stochastic error operands from 16 random bits per
 * element, b = i8t_rng_pair_bits(noise.key, noise.ctr + i) (one hash per two
 * elements): q8 = floor(clamp(w * inv8 + b / 2^16, -127, 127)), w = cs ? v *
 * cs : v; q16 = floor(clamp(v * inv16 + (b & 255) / 256, -32767, 32767)).
 * The s8 needs the 16 bits: its errors are mostly a small fraction of a
 * step, and with 8 bits (a rounding bias of up to 1/256 of a step, the same
 * sign for every value) resnet8's training loss ended 10-20 % higher. The
 * s16's step is 258 times finer: its low byte (the s8's draw depends on it
 * only at a tie of the high byte) bounds its bias at the same absolute size.
 * i8t_quantize_s8s16_one in src/nn_kernels.h is the rule. */
typedef void (*i8t_quantize_f32_s8s16_fn)(size_t n, const float *v, const float *cs, float inv8,
                                          float inv16, i8t_noise noise, int8_t *q8,
                                          int16_t *q16);
/* BN backward's sums over `rows` rows of C channels (row r at r * ld, ld >= C,
 * rows <= 32768): per channel sg = sum g, sgq = sum g q, sq = sum q and the
 * min / max of g, written fresh (127 / -127 when rows = 0). Exact integers:
 * any order gives the same result. */
typedef void (*i8t_bn_col_sums_fn)(size_t rows, size_t C, size_t ld, const int8_t *g,
                                   const uint8_t *x,
                                   int32_t *sg, int32_t *sgq, uint32_t *sq, int8_t *gmin,
                                   int8_t *gmax);

/* The incoming gradient of one activation span, summed, masked and reduced
 * or quantized in one pass (src/nn/act.c): element i is v = 0.0f + sc[0] *
 * x0[i] + sc[1] * x1[i] + ... in source order (x_k int8 if s8[k], else
 * int32; one float multiply and add each, no FMA), then mask[i] ? v : 0.0f
 * when mask is not NULL (i8t_grad_sum_one in src/nn_kernels.h is the rule). */
enum { I8T_GRAD_SPAN_MAX = 8 };
typedef struct i8t_grad_span {
  int n_src;
  const void *src[I8T_GRAD_SPAN_MAX];
  float sc[I8T_GRAD_SPAN_MAX];
  unsigned char s8[I8T_GRAD_SPAN_MAX];
  const uint8_t *mask;
} i8t_grad_span;
/* max |v| over the span's n elements (0 for n = 0), NaN if any is NaN or Inf;
 * when out is not NULL, also out[i] = v. out may be the memory of an int32
 * source (the sum replacing it): each element is read before it is written. */
typedef float (*i8t_grad_sum_absmax_fn)(size_t n, const i8t_grad_span *s, float *out);
/* q[i] = clamp(R(v * inv_scale), -127, 127), R as quantize_f32_s8. */
typedef void (*i8t_grad_sum_quantize_s8_fn)(size_t n, const i8t_grad_span *s, float inv_scale,
                                            i8t_noise noise, int8_t *q);

/* The weight gradient's pair copies (src/nn/conv_wgrad.c): for q < n, the C
 * channels of two pixels of an NHWC row, a = row + q * step and b = a + b_off,
 * interleaved less zp: d[q * 2 C + 2 c] = a[c] - zp, d[q * 2 C + 2 c + 1] =
 * b[c] - zp. */
typedef void (*i8t_interleave_pixels_u8_s16_fn)(size_t n, size_t C, const uint8_t *row,
                                                size_t step, size_t b_off, int16_t zp,
                                                int16_t *d);

/* The weight gradient's packed dy (src/nn/conv_wgrad.c): for each of `rows`
 * rows, the pairs (a[c], b[c]) of its first w values (b NULL: (a[c], 0))
 * side by side, then zero pairs up to `pairs` (w <= pairs):
 * d[r * ldd + 2 c] = a[r * lda + c], d[r * ldd + 2 c + 1] = b[r * lda + c]. */
typedef void (*i8t_interleave_rows_s16_fn)(size_t rows, size_t w, size_t pairs,
                                           const int16_t *a, const int16_t *b, size_t lda,
                                           int16_t *d, size_t ldd);

/* col2im of the strided grad input's int32 columns (src/nn/conv.c): every
 * column value added back onto the input pixel its tap reads. cols holds
 * `samples` samples of oh x ow rows, ld int32 apart; row (oy, ox) has tap
 * (ky, kx)'s C values at (ky * kernel + kx) * C. dx gets those samples'
 * h x w x C values, every one written (0 where no tap reads the pixel).
 * Exact int32 sums (i8t_conv_check bounds them), so any order of the adds
 * gives the same result. */
typedef struct i8t_col2im_geom {
  size_t h, w, c, kernel, stride, pad, oh, ow;
} i8t_col2im_geom;
typedef void (*i8t_col2im_s32_fn)(const i8t_col2im_geom *g, const int32_t *cols, size_t ld,
                                  size_t samples, int32_t *dx);

/* The 1-channel stem convolution (3x3, stride 1, padding 1, in_c = 1), 16
 * output channels per call, one sample (src/nn/conv_stem.c): direct kernels
 * instead of im2col + GEMM, whose 9-value rows waste most of a GEMM tile.
 * The image comes padded, (h + 2) rows of ldx >= w + 3 elements (pixel
 * (iy, ix) at [(iy + 1) * ldx + ix + 1]; the last column is only read
 * against a zero weight or a zero dy): either u8 with the zero point as
 * padding, or int16 x - zp with 0 as padding (the "s16 image").
 *
 * Forward: y[p][co] (rows ldy int32 apart, p = oy * w + ox) = bias[co] +
 * sum over ky, kx of img[(oy + ky) * ldx + ox + kx] * wq[(ky * 16 + co) * 4 + kx]
 * (wq's byte 3 of each group is 0), and mn / mx [16] = each channel's min /
 * max of y. img is the u8 image (bias = -zp * the channel's weight sum), or
 * the s16 image where the table entry says so (bias = 0). */
typedef void (*i8t_conv3x3_c1_fwd_fn)(size_t h, size_t w, const void *img, size_t ldx,
                                      const int8_t *wq, const int32_t *bias, int32_t *y,
                                      size_t ldy, int32_t *mn, int32_t *mx);
/* Weight gradient: acc[tap * 16 + co] += sum over pixels p = (oy, ox) of
 * dy[p * ldd + co] * xs[(oy + ky) * ldx + ox + kx], tap = ky * 3 + kx, where
 * xs is the padded image as int16 x - zp (padding 0). Exact (int64): the
 * kernels widen their int32 sums into acc every I8T_STEM_FLUSH_PIXELS pixels
 * (|dy * (x - zp)| <= 32768 * 255: 256 of them fit in int32). */
#define I8T_STEM_FLUSH_PIXELS 256
typedef void (*i8t_conv3x3_c1_wgrad_fn)(size_t h, size_t w, const int16_t *xs, size_t ldx,
                                        const int16_t *dy, size_t ldd, int64_t *acc);

/* Sets entry ENTRY of table t to kernel i8t_ENTRY__SFX, named "ENTRY__SFX"
 * (every ISA's table fills its kernel entries this way). */
#define I8T_TABLE_SET(t, ENTRY, SFX)      \
  do {                                    \
    (t)->ENTRY.name = #ENTRY "__" #SFX;   \
    (t)->ENTRY.run = i8t_##ENTRY##__##SFX; \
  } while (0)

typedef struct i8t_kernel_table {
  i8t_isa isa;
  i8t_gemm_ukernel gemm_u8s8s32;  /* forward: activations x weights */
  i8t_gemm_ukernel gemm_s8s8s32;  /* grad input: errors x W^T */
  i8t_gemm_ukernel gemm_s16u8s32; /* weight gradient: 16-bit errors x activations */
  /* Optional narrow variants (zeroed: none), the same kinds with a smaller
   * NR: the driver runs one when N <= its NR, so that outputs of few
   * columns (16-channel convolutions) do not pay for a wide tile's padding. */
  i8t_gemm_ukernel gemm_u8s8s32_narrow;
  i8t_gemm_ukernel gemm_s8s8s32_narrow;
  i8t_gemm_ukernel gemm_s16u8s32_narrow;

  struct { const char *name; i8t_minmax_f32_fn run; } minmax_f32;
  struct { const char *name; i8t_quantize_f32_u8_fn run; } quantize_f32_u8;
  struct { const char *name; i8t_quantize_f32_s8_fn run; } quantize_f32_s8;
  struct { const char *name; i8t_quantize_f32_s16_fn run; } quantize_f32_s16;
  struct { const char *name; i8t_colwise_stats_u8_fn run; } colwise_stats_u8;

  struct { const char *name; i8t_requantize_s32_u8_fn run; } requantize_s32_u8;
  struct { const char *name; i8t_axpy_s32_f32_fn run; } axpy_s32_f32;
  struct { const char *name; i8t_axpy_s8_f32_fn run; } axpy_s8_f32;
  struct { const char *name; i8t_affine_u8_f32_fn run; } affine_u8_f32;
  struct { const char *name; i8t_affine_quantize_u8_fn run; } affine_quantize_u8;
  struct { const char *name; i8t_bn_lane_extremes_fn run; } bn_lane_extremes;
  struct { const char *name; i8t_minmax_s32_fn run; } minmax_s32;
  struct { const char *name; i8t_mask_u8_f32_fn run; } mask_u8_f32;
  struct { const char *name; i8t_mask_pos_f32_fn run; } mask_pos_f32;
  struct { const char *name; i8t_affine_s8_f32_fn run; } affine_s8_f32;
  struct { const char *name; i8t_add_centered_u8_f32_fn run; } add_centered_u8_f32;
  struct { const char *name; i8t_quantize_f32_s8s16_fn run; } quantize_f32_s8s16;
  struct { const char *name; i8t_bn_col_sums_fn run; } bn_col_sums;
  struct { const char *name; i8t_grad_sum_absmax_fn run; } grad_sum_absmax;
  struct { const char *name; i8t_grad_sum_quantize_s8_fn run; } grad_sum_quantize_s8;
  struct { const char *name; i8t_interleave_pixels_u8_s16_fn run; } interleave_pixels_u8_s16;
  struct { const char *name; i8t_col2im_s32_fn run; } col2im_s32;
  struct { const char *name; i8t_interleave_rows_s16_fn run; } interleave_rows_s16;
  /* Optional (run NULL: conv keeps im2col + GEMM for the stem). */
  struct { const char *name; i8t_conv3x3_c1_fwd_fn run; int s16_image; } conv3x3_c1_fwd;
  struct { const char *name; i8t_conv3x3_c1_wgrad_fn run; } conv3x3_c1_wgrad;
} i8t_kernel_table;

/* The three GEMM kinds of the table (and of src/gemm.c's entry points). */
typedef enum i8t_gemm_kind {
  I8T_GEMM_U8S8S32,  /* i8t_gemm_u8s8s32 */
  I8T_GEMM_S8S8S32,  /* i8t_gemm_s8s8s32 */
  I8T_GEMM_S16U8S64, /* i8t_gemm_s16u8s64 (the s16u8s32 microkernels) */
} i8t_gemm_kind;

/* The microkernel the driver runs for a GEMM of `kind` with N columns on
 * table t: the narrow variant when it exists and N fits in its NR, else the
 * main one. */
const i8t_gemm_ukernel *i8t_gemm_ukernel_for(const i8t_kernel_table *t, i8t_gemm_kind kind,
                                             size_t N);

/* The column count a caller should round a GEMM's N up to (padding with
 * columns it drops) so that every tile is whole: the NR of the microkernel
 * that will run (in the current table). Whole tiles are stored straight to
 * C; edge tiles go through a slower copy. */
size_t i8t_gemm_panel_width(i8t_gemm_kind kind, size_t N);

/* Indirect ("implicit") u8s8 GEMM: C[M x N] = (A - zp) * B[K x N] where row
 * i of A is never stored as such: it is `taps` runs of tap_bytes bytes, run
 * t at rows[i] + t * tap_pitch (K = taps * tap_bytes). A convolution passes
 * one pointer per output pixel into its (padded) NHWC input, a tap being
 * one window row (kernel * C contiguous bytes, pitch = the image row):
 * no column matrix. The microkernel reads A where it is, so only where
 * i8t_gemm_u8s8s32_indirect_ok holds (else I8T_ERR_UNSUPPORTED). */
typedef struct i8t_gemm_indirect_a {
  const void *const *rows; /* M pointers */
  size_t taps, tap_bytes, tap_pitch;
  /* Optional layout of the runs (0, 0: a run is tap_bytes contiguous bytes):
   * group_pitch > 0 puts each K group (4 bytes) of a run group_pitch bytes
   * after the one before; interleave > 0 says that rows come in aligned
   * groups of `interleave` rows, row first + i at rows[first] + 4 i (their
   * K groups side by side), which lets the microkernel address a tile's
   * rows from one pointer when MR divides `interleave`. */
  size_t group_pitch, interleave;
  /* Optional (0: one run of taps): taps in blocks of block_taps, block b's
   * tap t at rows[i] + b * block_pitch + t * tap_pitch (a batch of images
   * each with its own padding); only with interleaved rows. */
  size_t block_taps, block_pitch;
} i8t_gemm_indirect_a;

/* Whether the current table runs an indirect u8s8 GEMM of N columns whose
 * taps are tap_bytes long: the microkernel has run_ex, packs A as raw u8
 * and tap_bytes is whole K groups within one KC block. */
int i8t_gemm_u8s8s32_indirect_ok(size_t N, size_t tap_bytes);

i8t_status i8t_gemm_u8s8s32_indirect(i8t_context *ctx, size_t M, size_t N,
                                     const i8t_gemm_indirect_a *A, uint8_t a_zero_point,
                                     i8t_matrix B, int32_t *C, size_t ldc);

/* Optional output of the int32 GEMMs: the minimum and maximum of each group
 * of rows_per_group consecutive rows of C (rows [g * rows_per_group, ...),
 * the last group possibly shorter; all N columns), into min[g] and max[g].
 * A convolution asks for its samples' output ranges this way: the
 * microkernels fold the values as they store them (run_ex), the driver the
 * rest (tiles across two groups, kernels without run_ex). */
typedef struct i8t_gemm_row_ranges {
  size_t rows_per_group;
  int32_t *min, *max; /* ceil(M / rows_per_group) each */
} i8t_gemm_row_ranges;

/* i8t_gemm_u8s8s32 and i8t_gemm_u8s8s32_indirect with row ranges (NULL:
 * none, as the plain ones). */
i8t_status i8t_gemm_u8s8s32_ranged(i8t_context *ctx, size_t M, size_t N, size_t K,
                                   i8t_matrix A, uint8_t a_zero_point, i8t_matrix B, int32_t *C,
                                   size_t ldc, const i8t_gemm_row_ranges *ranges);
i8t_status i8t_gemm_u8s8s32_indirect_ranged(i8t_context *ctx, size_t M, size_t N,
                                            const i8t_gemm_indirect_a *A, uint8_t a_zero_point,
                                            i8t_matrix B, int32_t *C, size_t ldc,
                                            const i8t_gemm_row_ranges *ranges);

/* Indirect int16 GEMM of the weight gradient (src/nn/conv_wgrad.c): C[M x N]
 * (int64) = (accumulate ? C : 0) + A * B[K x N], row i of A being `taps`
 * runs of tap_bytes bytes of int16 values at rows[i] + t * tap_pitch (K =
 * taps * tap_bytes / 2), B int16. A's values are activations less their
 * zero point (|a| <= 255) and B's errors (|b| <= 32768): the int32 partial
 * sums of a KC block of at most 256 values cannot overflow, and the blocks
 * are added in int64, so the result is exact. Only where
 * i8t_gemm_s16s16s64_indirect_ok holds (else I8T_ERR_UNSUPPORTED). */
int i8t_gemm_s16s16s64_indirect_ok(size_t M, size_t N, const i8t_gemm_indirect_a *A);
i8t_status i8t_gemm_s16s16s64_indirect(i8t_context *ctx, size_t M, size_t N,
                                       const i8t_gemm_indirect_a *A, i8t_matrix B, int64_t *C,
                                       size_t ldc, int accumulate);
/* The same with B already in the microkernel's packed layout over the whole
 * K (kernel_table.h's PACKED LAYOUT, KR = 2): NR = i8t_gemm_panel_width(
 * I8T_GEMM_S16U8S64, N) columns a panel, panel p at b_packed + p * K * NR,
 * columns past N zero; the driver then packs nothing. */
i8t_status i8t_gemm_s16s16s64_indirect_packed(i8t_context *ctx, size_t M, size_t N,
                                              const i8t_gemm_indirect_a *A,
                                              const int16_t *b_packed, int64_t *C, size_t ldc,
                                              int accumulate);

/* The table in use (filled on first call). Never NULL. */
const i8t_kernel_table *i8t_kernels(void);

/* The table of one ISA, or NULL if this build or CPU lacks it. Tests and
 * benchmarks use it to run every path side by side. */
const i8t_kernel_table *i8t_kernels_for_isa(i8t_isa isa);

/* Per-ISA initialisers. Each starts from i8t_init_table_generic(). */
void i8t_init_table_generic(i8t_kernel_table *t);
void i8t_init_table_avx2(i8t_kernel_table *t);
void i8t_init_table_avx512vnni(i8t_kernel_table *t);
void i8t_init_table_neon(i8t_kernel_table *t);
void i8t_init_table_neondot(i8t_kernel_table *t);

#endif
