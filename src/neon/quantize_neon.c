/* Quantize kernels and reductions for aarch64 Advanced SIMD (both neon and
 * neondot use them). Every result is bit-identical to src/generic: the lanes
 * run the same float operations as quantize_scalar.h, and tails call it. */
#include <arm_neon.h>
#include <math.h>

#include "../nn_kernels.h" /* quantize_f32_s8s16's scalar rule */
#include "../quantize_scalar.h"
#include "neon_kernels.h"

/* ---- stochastic noise: rng.h's hash, four counters at a time ---- */

static inline uint32x4_t rng_hash_x4(uint32x4_t key, uint32x4_t ctr) {
  uint32x4_t h = veorq_u32(vmulq_u32(ctr, vdupq_n_u32(I8T_RNG_GOLDEN)), key);
  h = veorq_u32(h, vshrq_n_u32(h, 16));
  h = vmulq_u32(h, vdupq_n_u32(I8T_RNG_MIX1));
  h = veorq_u32(h, vshrq_n_u32(h, 13));
  h = vmulq_u32(h, vdupq_n_u32(I8T_RNG_MIX2));
  return veorq_u32(h, vshrq_n_u32(h, 16));
}

/* Uniform in [0, 1) from the top 24 bits, as i8t_rng_uniform: both steps exact. */
static inline float32x4_t rng_uniform_x4(uint32x4_t key, uint32x4_t ctr) {
  uint32x4_t bits = vshrq_n_u32(rng_hash_x4(key, ctr), 8);
  return vmulq_f32(vcvtq_f32_u32(bits), vdupq_n_f32(1.0f / 16777216.0f));
}

/* ---- quantize ---- */

typedef struct quant_params {
  float inv_scale;
  float zp, lo, hi; /* zero point and clamp range, as floats (exact) */
  i8t_noise noise;
} quant_params;

/* Elements i .. i+3: the lane-wise form of quantize_scalar.h. Rounding stays
 * in float (FRINTN = nearbyintf in the default mode, FRINTM = floorf), the
 * zero point is added and the clamp applied in float, and only the clamped,
 * integral value is converted: the same operations in the same order as the
 * generic kernels, hence the same bits for every input, huge ones included. */
static inline int32x4_t quantize_x4(float32x4_t x, size_t i, const quant_params *p) {
  float32x4_t v = vmulq_f32(x, vdupq_n_f32(p->inv_scale));
  float32x4_t r;
  if (!p->noise.stochastic) {
    r = vrndnq_f32(v);
  } else {
    static const uint32_t lane_index[4] = {0, 1, 2, 3};
    uint32x4_t ctr = vaddq_u32(vdupq_n_u32(p->noise.ctr + (uint32_t)i), vld1q_u32(lane_index));
    float32x4_t u = rng_uniform_x4(vdupq_n_u32(p->noise.key), ctr);
    float32x4_t f = vrndmq_f32(v);
    uint32x4_t round_up = vcltq_f32(u, vsubq_f32(v, f));
    uint32x4_t one = vreinterpretq_u32_f32(vdupq_n_f32(1.0f));
    r = vaddq_f32(f, vreinterpretq_f32_u32(vandq_u32(round_up, one)));
  }
  r = vaddq_f32(r, vdupq_n_f32(p->zp));
  r = vminq_f32(vmaxnmq_f32(r, vdupq_n_f32(p->lo)), vdupq_n_f32(p->hi)); /* FMAXNM: NaN gives lo */
  return vcvtq_s32_f32(r);
}

/* Eight elements i.. as int16 from their values in two vectors (values
 * already within the output range once quantized). */
static inline int16x8_t quantize_x8(float32x4_t lo, float32x4_t hi, size_t i,
                                    const quant_params *p) {
  return vcombine_s16(vmovn_s32(quantize_x4(lo, i, p)), vmovn_s32(quantize_x4(hi, i + 4, p)));
}

static inline int32_t quantize_one(const float *x, size_t i, const quant_params *p) {
  float r = i8t_round_scaled(x[i] * p->inv_scale, p->noise, (uint32_t)i) + p->zp;
  return i8t_clamp_to_int(r, p->lo, p->hi);
}

/* Body of eight at a time, scalar tail. STORE8(q + i, int16x8_t) narrows. */
#define DEFINE_NEON_QUANTIZE(NAME, OUT_TYPE, STORE8)                                \
  static void NAME(const float *x, size_t n, const quant_params *p, OUT_TYPE *q) {   \
    size_t i = 0;                                                                  \
    for (; i + 8 <= n; i += 8)                                                     \
      STORE8(q + i, quantize_x8(vld1q_f32(x + i), vld1q_f32(x + i + 4), i, p));     \
    for (; i < n; i++) q[i] = (OUT_TYPE)quantize_one(x, i, p);                     \
  }

#define STORE8_U8(dst, v) vst1_u8(dst, vqmovun_s16(v))
#define STORE8_S8(dst, v) vst1_s8(dst, vqmovn_s16(v))
#define STORE8_S16(dst, v) vst1q_s16(dst, v)
DEFINE_NEON_QUANTIZE(quantize_u8, uint8_t, STORE8_U8)
DEFINE_NEON_QUANTIZE(quantize_s8, int8_t, STORE8_S8)
DEFINE_NEON_QUANTIZE(quantize_s16, int16_t, STORE8_S16)

void i8t_quantize_f32_u8__neon(const float *x, size_t n, float inv_scale, int32_t zp,
                               i8t_noise noise, uint8_t *q) {
  const quant_params p = {inv_scale, (float)zp, 0.0f, 255.0f, noise};
  quantize_u8(x, n, &p, q);
}

void i8t_quantize_f32_s8__neon(const float *x, size_t n, float inv_scale, i8t_noise noise,
                               int8_t *q) {
  const quant_params p = {inv_scale, 0.0f, -127.0f, 127.0f, noise};
  quantize_s8(x, n, &p, q);
}

void i8t_quantize_f32_s16__neon(const float *x, size_t n, float inv_scale, i8t_noise noise,
                                int16_t *q) {
  const quant_params p = {inv_scale, 0.0f, -32767.0f, 32767.0f, noise};
  quantize_s16(x, n, &p, q);
}

/* ---- a GEMM output straight to u8 (kernel_table.h: requantize_s32_u8) ---- */

/* (float)y * s: SCVTF rounds to nearest, as the C cast. */
static inline float32x4_t scaled_s32_x4(const int32_t *y, const float *s, size_t i) {
  return vmulq_f32(vcvtq_f32_s32(vld1q_s32(y + i)), vld1q_f32(s + i));
}

void i8t_requantize_s32_u8__neon(size_t n, const int32_t *y, const float *s, float inv_scale,
                                 int32_t zp, i8t_noise noise, uint8_t *q) {
  const quant_params p = {inv_scale, (float)zp, 0.0f, 255.0f, noise};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    STORE8_U8(q + i, quantize_x8(scaled_s32_x4(y, s, i), scaled_s32_x4(y, s, i + 4), i, &p));
  for (; i < n; i++) q[i] = i8t_requantize_u8_one(y, s, inv_scale, zp, noise, i);
}

/* ---- the last term of a u8 sum straight to u8 (kernel_table.h: affine_quantize_u8) ---- */

/* Four lanes of m * (float)x + a (+ base); x widened from u16 lanes. */
static inline float32x4_t affine_x4(uint16x4_t x, const float *m, const float *a,
                                    const float *base, size_t i) {
  float32x4_t v = vaddq_f32(vmulq_f32(vld1q_f32(m + i), vcvtq_f32_u32(vmovl_u16(x))),
                            vld1q_f32(a + i));
  return base ? vaddq_f32(vld1q_f32(base + i), v) : v;
}

/* v > 0 ? v : 0 by a select: FMAX would keep a NaN, the rule gives 0. */
static inline float32x4_t relu_x4(float32x4_t v, uint32x4_t pos) {
  return vbslq_f32(pos, v, vdupq_n_f32(0.0f));
}

void i8t_affine_quantize_u8__neon(size_t n, const uint8_t *x, const float *m, const float *a,
                                  const float *base, int relu, uint8_t *mask, float inv_scale,
                                  int32_t zp, i8t_noise noise, uint8_t *q) {
  const quant_params p = {inv_scale, (float)zp, 0.0f, 255.0f, noise};
  const float32x4_t zero = vdupq_n_f32(0.0f);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint16x8_t x16 = vmovl_u8(vld1_u8(x + i));
    float32x4_t v0 = affine_x4(vget_low_u16(x16), m, a, base, i);
    float32x4_t v1 = affine_x4(vget_high_u16(x16), m, a, base, i + 4);
    if (relu) {
      uint32x4_t p0 = vcgtq_f32(v0, zero), p1 = vcgtq_f32(v1, zero); /* NaN: false */
      if (mask)
        vst1_u8(mask + i, vand_u8(vmovn_u16(vcombine_u16(vmovn_u32(p0), vmovn_u32(p1))),
                                  vdup_n_u8(1)));
      v0 = relu_x4(v0, p0), v1 = relu_x4(v1, p1);
    }
    STORE8_U8(q + i, quantize_x8(v0, v1, i, &p));
  }
  for (; i < n; i++)
    q[i] = i8t_affine_quantize_u8_one(x, m, a, base, relu, mask, inv_scale, zp, noise, i);
}

/* ---- reductions ---- */

/* FMIN/FMAX (vminq/vmaxq and the across-vector vminvq/vmaxvq) propagate NaN,
 * so a NaN anywhere leaves NaN in both results and an infinity shows as the
 * min or the max: one isfinite check at the end finds every bad element.
 * The vectors start from x[0], so an empty body adds no false infinity. */
int i8t_minmax_f32__neon(const float *x, size_t n, float *min, float *max) {
  if (n == 0) { /* as the generic kernel: an empty range, no error */
    *min = INFINITY;
    *max = -INFINITY;
    return 0;
  }
  float32x4_t lo0 = vdupq_n_f32(x[0]), hi0 = lo0, lo1 = lo0, hi1 = lo0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    float32x4_t v0 = vld1q_f32(x + i), v1 = vld1q_f32(x + i + 4);
    lo0 = vminq_f32(lo0, v0);
    hi0 = vmaxq_f32(hi0, v0);
    lo1 = vminq_f32(lo1, v1);
    hi1 = vmaxq_f32(hi1, v1);
  }
  float lo = vminvq_f32(vminq_f32(lo0, lo1)), hi = vmaxvq_f32(vmaxq_f32(hi0, hi1));
  int bad = !isfinite(lo) || !isfinite(hi);
  for (; i < n; i++) {
    float v = x[i];
    bad |= !isfinite(v);
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  *min = lo;
  *max = hi;
  return bad;
}

/* Per-column stats, 16 columns at a time: each row is one vector load; sums
 * collect in uint16 for up to 257 rows (257 * 255 = 65535) and are then
 * widened into uint32. The uint32 sums wrap exactly like the generic ones. */
enum { ROWS_PER_U16_BLOCK = 257 };

static void colwise_stats_16(const uint8_t *x, size_t rows, size_t ld, uint8_t *min,
                             uint8_t *max, uint32_t *sum) {
  uint8x16_t lo = vdupq_n_u8(255), hi = vdupq_n_u8(0);
  uint32x4_t s0 = vdupq_n_u32(0), s1 = s0, s2 = s0, s3 = s0;
  for (size_t r0 = 0; r0 < rows; r0 += ROWS_PER_U16_BLOCK) {
    size_t r_end = r0 + ROWS_PER_U16_BLOCK < rows ? r0 + ROWS_PER_U16_BLOCK : rows;
    uint16x8_t s_lo = vdupq_n_u16(0), s_hi = s_lo;
    for (size_t r = r0; r < r_end; r++) {
      uint8x16_t v = vld1q_u8(x + r * ld);
      lo = vminq_u8(lo, v);
      hi = vmaxq_u8(hi, v);
      s_lo = vaddw_u8(s_lo, vget_low_u8(v));
      s_hi = vaddw_high_u8(s_hi, v);
    }
    s0 = vaddw_u16(s0, vget_low_u16(s_lo));
    s1 = vaddw_high_u16(s1, s_lo);
    s2 = vaddw_u16(s2, vget_low_u16(s_hi));
    s3 = vaddw_high_u16(s3, s_hi);
  }
  vst1q_u8(min, lo);
  vst1q_u8(max, hi);
  vst1q_u32(sum, s0);
  vst1q_u32(sum + 4, s1);
  vst1q_u32(sum + 8, s2);
  vst1q_u32(sum + 12, s3);
}

/* The last cols % 16 columns, one at a time. */
static void colwise_stats_scalar(const uint8_t *x, size_t rows, size_t cols, size_t ld,
                                 uint8_t *min, uint8_t *max, uint32_t *sum) {
  for (size_t c = 0; c < cols; c++) {
    uint8_t lo = 255, hi = 0;
    uint32_t s = 0;
    for (size_t r = 0; r < rows; r++) {
      uint8_t v = x[r * ld + c];
      lo = v < lo ? v : lo;
      hi = v > hi ? v : hi;
      s += v;
    }
    min[c] = lo;
    max[c] = hi;
    sum[c] = s;
  }
}

void i8t_colwise_stats_u8__neon(const uint8_t *x, size_t rows, size_t cols, size_t ld,
                                uint8_t *min, uint8_t *max, uint32_t *sum) {
  size_t c = 0;
  for (; c + 16 <= cols; c += 16) colwise_stats_16(x + c, rows, ld, min + c, max + c, sum + c);
  colwise_stats_scalar(x + c, rows, cols - c, ld, min + c, max + c, sum + c);
}

/* ---- BN backward's s8 and s16 errors (kernel_table.h: quantize_f32_s8s16) ---- */

/* i8t_stochastic_floor lane-wise for bits k scaled by s (an exact product,
 * so the fused multiply-add rounds t + u once, as the scalar add does).
 * FMAXNM returns lo for NaN, like the scalar clamp; FCVTMS is the floor. */
static inline int32x4_t stochastic_floor_x4(float32x4_t t, uint32x4_t k, float s, float lo,
                                            float hi) {
  float32x4_t r = vfmaq_f32(t, vcvtq_f32_u32(k), vdupq_n_f32(s));
  r = vminq_f32(vmaxnmq_f32(r, vdupq_n_f32(lo)), vdupq_n_f32(hi));
  return vcvtmq_s32_f32(r);
}

/* Elements whose counters do not wrap, eight at a time from one vector of
 * four pair hashes: its 16-bit halves, widened, are the eight values' bits
 * (element 2p the low half of pair p's hash, as in i8t_rng_pair_bits); all
 * 16 round q8, the low byte q16. An odd first counter and the tail take the
 * scalar rule. */
static inline __attribute__((always_inline)) void s8s16_linear(
    size_t n, const float *v, const float *cs, float inv8, float inv16, i8t_noise noise,
    int8_t *q8, int16_t *q16) {
  size_t i = 0;
  if (n && (noise.ctr & 1u)) i8t_quantize_s8s16_one(v, cs, inv8, inv16, noise, i++, q8, q16);
  const uint32x4_t key = vdupq_n_u32(noise.key ^ I8T_RNG_PAIR_DOMAIN);
  const uint32_t lanes[4] = {0, 1, 2, 3};
  uint32x4_t pair = vaddq_u32(vdupq_n_u32((noise.ctr + (uint32_t)i) >> 1), vld1q_u32(lanes));
  for (; i + 8 <= n; i += 8, pair = vaddq_u32(pair, vdupq_n_u32(4))) {
    uint16x8_t h = vreinterpretq_u16_u32(rng_hash_x4(key, pair));
    const uint32x4_t bits[2] = {vmovl_u16(vget_low_u16(h)), vmovl_u16(vget_high_u16(h))};
    int32x4_t a8[2], a16[2];
    for (int j = 0; j < 2; j++) {
      float32x4_t x = vld1q_f32(v + i + 4 * j);
      float32x4_t w = cs ? vmulq_f32(x, vld1q_f32(cs + i + 4 * j)) : x;
      a8[j] = stochastic_floor_x4(vmulq_f32(w, vdupq_n_f32(inv8)), bits[j], 1.0f / 65536.0f,
                                  -127.0f, 127.0f);
      a16[j] = stochastic_floor_x4(vmulq_f32(x, vdupq_n_f32(inv16)),
                                   vandq_u32(bits[j], vdupq_n_u32(255)), 1.0f / 256.0f,
                                   -32767.0f, 32767.0f);
    }
    vst1q_s16(q16 + i, vcombine_s16(vmovn_s32(a16[0]), vmovn_s32(a16[1])));
    vst1_s8(q8 + i, vmovn_s16(vcombine_s16(vmovn_s32(a8[0]), vmovn_s32(a8[1]))));
  }
  for (; i < n; i++) i8t_quantize_s8s16_one(v, cs, inv8, inv16, noise, i, q8, q16);
}

void i8t_quantize_f32_s8s16__neon(size_t n, const float *v, const float *cs, float inv8,
                                  float inv16, i8t_noise noise, int8_t *q8, int16_t *q16) {
  while (n) { /* pieces up to the counter's wrap (2^32 is even: no pair straddles it) */
    size_t len = i8t_rng_run_to_wrap(n, noise.ctr);
    if (cs)
      s8s16_linear(len, v, cs, inv8, inv16, noise, q8, q16);
    else
      s8s16_linear(len, v, NULL, inv8, inv16, noise, q8, q16);
    n -= len, v += len, q8 += len, q16 += len, cs = cs ? cs + len : NULL;
    noise.ctr += (uint32_t)len;
  }
}
