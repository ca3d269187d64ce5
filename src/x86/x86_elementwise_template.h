/* The elementwise kernels of the x86 tables (minmax, quantize, per-column
 * stats), written once against the vector operations of avx2_vec.h /
 * avx512_vec.h (see src/x86/README.md). Included by exactly one .c file per
 * ISA, after its vector header; it defines i8t_<kernel>__<I8T_X86_ISA>.
 *
 * Bit-identity with src/generic/quantize_generic.c: the vector bodies apply
 * the same float operations lane-wise (one multiply, round-to-nearest-even or
 * floor + noise compare, + zp, clamp with the same NaN-propagating order,
 * truncating conversion), and the tails call the scalar rule itself. */
#include <stddef.h>
#include <stdint.h>

#include "../nn_kernels.h" /* quantize_f32_s8s16's scalar rule */
#include "../quantize_scalar.h"
#include "../rng.h"
#include "../generic/generic_kernels.h" /* the portable colwise kernel serves the tail */

#ifndef I8T_X86_ISA
#error "include an ISA vector header (avx2_vec.h / avx512_vec.h) first"
#endif

#define I8T_X86_CAT2(a, b) a##__##b
#define I8T_X86_CAT(a, b) I8T_X86_CAT2(a, b)
#define I8T_X86_NAME(base) I8T_X86_CAT(base, I8T_X86_ISA)

/* ------------------------------------------------------------------------ */
/* minmax with NaN / Inf detection                                          */
/* ------------------------------------------------------------------------ */

/* Running min and max over pairs of vectors (two chains, so that min/max
 * latency does not bound the loop), plus a flag for NaN or Inf: v - v is
 * +0.0 for finite v and NaN for NaN or Inf, so OR-ing its bits flags any
 * non-finite lane at the cost of two cheap operations. The scalar tail
 * continues from the folded result. Shared by minmax_f32 and the gradient
 * sum's absmax. */
typedef struct minmax_lanes {
  i8t_vf lo0, hi0, lo1, hi1;
  i8t_vi bad;
} minmax_lanes;

static inline minmax_lanes minmax_lanes_start(void) {
  minmax_lanes m;
  m.lo0 = m.lo1 = vf_set1(INFINITY);
  m.hi0 = m.hi1 = vf_set1(-INFINITY);
  m.bad = vi_zero();
  return m;
}

static inline void minmax_lanes_add2(minmax_lanes *m, i8t_vf v0, i8t_vf v1) {
  m->bad = vi_or(m->bad, vi_or(vf_bits(vf_sub(v0, v0)), vf_bits(vf_sub(v1, v1))));
  m->lo0 = vf_min(v0, m->lo0);
  m->hi0 = vf_max(v0, m->hi0);
  m->lo1 = vf_min(v1, m->lo1);
  m->hi1 = vf_max(v1, m->hi1);
}

/* Folds the lanes into *lo, *hi; returns whether a lane was not finite. */
static inline int minmax_lanes_fold(const minmax_lanes *m, float *lo, float *hi) {
  *lo = vf_hmin(vf_min(m->lo0, m->lo1));
  *hi = vf_hmax(vf_max(m->hi0, m->hi1));
  return vi_any_bit(m->bad);
}

static inline int minmax_scalar_add(float v, float *lo, float *hi) {
  *lo = v < *lo ? v : *lo;
  *hi = v > *hi ? v : *hi;
  return !isfinite(v);
}

int I8T_X86_NAME(i8t_minmax_f32)(const float *x, size_t n, float *min, float *max) {
  minmax_lanes m = minmax_lanes_start();
  size_t i = 0;
  for (; i + 2 * I8T_VLANES <= n; i += 2 * I8T_VLANES)
    minmax_lanes_add2(&m, vf_load(x + i), vf_load(x + i + I8T_VLANES));
  float lo, hi;
  int any_bad = minmax_lanes_fold(&m, &lo, &hi);
  for (; i < n; i++) any_bad |= minmax_scalar_add(x[i], &lo, &hi);
  *min = lo;
  *max = hi;
  return any_bad;
}

/* ------------------------------------------------------------------------ */
/* quantize                                                                 */
/* ------------------------------------------------------------------------ */

/* i8t_rng_hash applied lane-wise, given weyl = ctr * I8T_RNG_GOLDEN (mod
 * 2^32): the loops step weyl by an add instead of a multiply per vector. */
static inline i8t_vi vi_rng_hash_weyl(i8t_vi key, i8t_vi weyl) {
  i8t_vi h = vi_xor(weyl, key);
  h = vi_xor(h, VI_SRLI32(h, 16));
  h = vi_mullo32(h, vi_set1((int32_t)I8T_RNG_MIX1));
  h = vi_xor(h, VI_SRLI32(h, 13));
  h = vi_mullo32(h, vi_set1((int32_t)I8T_RNG_MIX2));
  return vi_xor(h, VI_SRLI32(h, 16));
}

typedef struct quant_consts {
  i8t_vf inv_scale, zp, lo, hi, one, u_scale, big;
  i8t_vi key, weyl_step, zp_int;
  int stochastic;
} quant_consts;

static inline quant_consts quant_consts_make(float inv_scale, int32_t zp, float lo, float hi,
                                             i8t_noise noise) {
  quant_consts k;
  k.inv_scale = vf_set1(inv_scale);
  k.zp = vf_set1((float)zp);
  k.lo = vf_set1(lo);
  k.hi = vf_set1(hi);
  k.one = vf_set1(1.0f);
  k.u_scale = vf_set1(1.0f / 16777216.0f);
  k.key = vi_set1((int32_t)noise.key);
  k.weyl_step = vi_set1((int32_t)(I8T_VLANES * I8T_RNG_GOLDEN));
  k.big = vf_set1(1073741824.0f); /* 2^30: beyond any output, within int32 */
  k.zp_int = vi_set1(zp);
  k.stochastic = noise.stochastic;
  return k;
}

/* Weyl values (counter * golden) of the lanes of the first vector. */
static inline i8t_vi quant_weyl_start(i8t_noise noise) {
  i8t_vi ctr = vi_add32(vi_set1((int32_t)noise.ctr), vi_iota());
  return vi_mullo32(ctr, vi_set1((int32_t)I8T_RNG_GOLDEN));
}

/* One vector of i8t_round_scaled(x * inv_scale) + zp, clamped and truncated
 * to int32; weyl holds the lanes' counters times the golden ratio. add_zp 0
 * skips the + 0.0f of the symmetric formats: it only turns -0 into +0, which
 * truncate to the same integer. */
static inline i8t_vi quantize_lanes(const quant_consts *k, i8t_vf x, i8t_vi weyl, int add_zp) {
  i8t_vf v = vf_mul(x, k->inv_scale), r;
  if (!k->stochastic) {
    r = vf_round_even(v);
  } else {
    i8t_vf f = vf_floor(v);
    i8t_vf u = vf_mul(vi_to_vf(VI_SRLI32(vi_rng_hash_weyl(k->key, weyl), 8)), k->u_scale);
    r = vf_add(f, vf_one_if_less(u, vf_sub(v, f)));
  }
  if (add_zp) r = vf_add(r, k->zp);
  r = vf_max(r, k->lo); /* r >= lo ? r : lo (maxps returns its second operand for NaN) */
  r = vf_min(k->hi, r); /* r > hi ? hi : r */
  return vf_to_vi_trunc(r);
}

/* quantize_lanes for the u8 outputs, whose stores saturate (vi_store_sat_u8x4),
 * as int32 lanes the store clamps. Native AVX-512, nearest: one conversion
 * with embedded round-to-nearest-even, then + zp in int32, in place of the
 * float round, add, clamp and truncation; the same bytes: in range the
 * integers are equal, a value above 2^30 (or +Inf) is cut to 2^30 first, and
 * below -2^31 or NaN the conversion gives INT32_MIN (minps keeps a NaN
 * second operand), all of which saturate as the float clamp does (NaN: 0). */
static inline i8t_vi quantize_u8_lanes(const quant_consts *k, i8t_vf x, i8t_vi weyl) {
#if I8T_VLANES == 16 && !defined(I8T_AVX512_EMULATED)
  if (!k->stochastic) {
    i8t_vf v = vf_min(k->big, vf_mul(x, k->inv_scale));
    return vi_add32(_mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                    k->zp_int);
  }
#endif
  return quantize_lanes(k, x, weyl, 1);
}

/* The loop shared by the quantizers: blocks of 4 vectors of the values
 * LOAD_LANES(at) (elements at.. of the input), stored through
 * STORE_BLOCK(q + i, v0, v1, v2, v3), then the scalar rule on VALUE_AT(i)
 * for the tail. */
#define I8T_X86_QUANTIZE_LOOP(OUT_TYPE, LO, HI, LANES, LOAD_LANES, VALUE_AT, STORE_BLOCK) \
  quant_consts k = quant_consts_make(inv_scale, zp, LO, HI, noise);                  \
  i8t_vi weyl = quant_weyl_start(noise);                                             \
  size_t i = 0;                                                                      \
  for (; i + 4 * I8T_VLANES <= n; i += 4 * I8T_VLANES) {                             \
    i8t_vi v[4];                                                                     \
    for (int j = 0; j < 4; j++) {                                                    \
      v[j] = LANES(&k, LOAD_LANES(i + (size_t)j * I8T_VLANES), weyl);               \
      weyl = vi_add32(weyl, k.weyl_step);                                            \
    }                                                                                \
    STORE_BLOCK(q + i, v[0], v[1], v[2], v[3]);                                      \
  }                                                                                  \
  for (; i < n; i++) {                                                               \
    float r = i8t_round_scaled(VALUE_AT(i) * inv_scale, noise, (uint32_t)i) + (float)zp; \
    q[i] = (OUT_TYPE)i8t_clamp_to_int(r, LO, HI);                                    \
  }

/* The quantizers' input: floats x. */
#define I8T_X86_LOAD_F32(at) vf_load(x + (at))
#define I8T_X86_F32_AT(i) x[i]
/* requantize_s32_u8's: (float)y * s (cvtdq2ps rounds to nearest, as the C
 * cast). */
#define I8T_X86_LOAD_SCALED_S32(at) vf_mul(vi_to_vf(vi_load(y + (at))), vf_load(s + (at)))
#define I8T_X86_SCALED_S32_AT(i) ((float)y[i] * s[i])

/* The lanes of the u8 format (with its zero point) and the symmetric ones. */
#define I8T_X86_LANES_ZP(k, x, weyl) quantize_u8_lanes((k), (x), (weyl))
#define I8T_X86_LANES_SYM(k, x, weyl) quantize_lanes((k), (x), (weyl), 0)
#define I8T_X86_STORE_U8(q, a, b, c, d) vi_store_sat_u8x4((q), (a), (b), (c), (d))
#define I8T_X86_STORE_8BIT(q, a, b, c, d) vi_store_lo8x4((q), (a), (b), (c), (d))
#define I8T_X86_STORE_16BIT(q, a, b, c, d)          \
  do {                                              \
    vi_store_lo16x2((q), (a), (b));                 \
    vi_store_lo16x2((q) + 2 * I8T_VLANES, (c), (d)); \
  } while (0)

void I8T_X86_NAME(i8t_quantize_f32_u8)(const float *x, size_t n, float inv_scale, int32_t zp,
                                       i8t_noise noise, uint8_t *q) {
  I8T_X86_QUANTIZE_LOOP(uint8_t, 0.0f, 255.0f, I8T_X86_LANES_ZP, I8T_X86_LOAD_F32,
                        I8T_X86_F32_AT, I8T_X86_STORE_U8)
}

void I8T_X86_NAME(i8t_requantize_s32_u8)(size_t n, const int32_t *y, const float *s,
                                         float inv_scale, int32_t zp, i8t_noise noise,
                                         uint8_t *q) {
  I8T_X86_QUANTIZE_LOOP(uint8_t, 0.0f, 255.0f, I8T_X86_LANES_ZP, I8T_X86_LOAD_SCALED_S32,
                        I8T_X86_SCALED_S32_AT, I8T_X86_STORE_U8)
}

/* u8 widened to int32 lanes (SIMDe: two AVX2 halves, as grad_s8_lanes). */
static inline __m256i u8_x8(const uint8_t *p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p));
}
#if I8T_VLANES == 16 && !defined(I8T_AVX512_EMULATED)
static inline i8t_vi u8_lanes(const uint8_t *p) {
  return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
}
#elif I8T_VLANES == 16
static inline i8t_vi u8_lanes(const uint8_t *p) {
  return i8t_mm512_join256(u8_x8(p), u8_x8(p + 8));
}
#else
static inline i8t_vi u8_lanes(const uint8_t *p) { return u8_x8(p); }
#endif

/* affine_quantize_u8 (kernel_table.h): per vector, the term (plus base),
 * the ReLU and its mask, then quantize_u8_lanes on the value in its register;
 * outputs and mask bytes go out four vectors at a time. vf_max(v, 0) is the
 * ReLU's v > 0 ? v : 0 (maxps returns its second operand for NaN and for
 * -0 against +0); 0 < v, ordered, is its mask. */
static inline i8t_vf affine_lanes(const uint8_t *x, const float *m, const float *a,
                                  const float *base, size_t at) {
  i8t_vf v = vf_add(vf_mul(vf_load(m + at), vi_to_vf(u8_lanes(x + at))), vf_load(a + at));
  return base ? vf_add(vf_load(base + at), v) : v;
}

void I8T_X86_NAME(i8t_affine_quantize_u8)(size_t n, const uint8_t *x, const float *m,
                                          const float *a, const float *base, int relu,
                                          uint8_t *mask, float inv_scale, int32_t zp,
                                          i8t_noise noise, uint8_t *q) {
  const quant_consts k = quant_consts_make(inv_scale, zp, 0.0f, 255.0f, noise);
  const i8t_vf zero = vf_set1(0.0f);
  i8t_vi weyl = quant_weyl_start(noise);
  size_t i = 0;
  for (; i + 4 * I8T_VLANES <= n; i += 4 * I8T_VLANES) {
    i8t_vi out[4], on[4];
    for (int j = 0; j < 4; j++) {
      i8t_vf v = affine_lanes(x, m, a, base, i + (size_t)j * I8T_VLANES);
      on[j] = vf_to_vi_trunc(vf_one_if_less(zero, v)); /* a select on relu && mask cost more */
      if (relu) v = vf_max(v, zero);
      out[j] = quantize_u8_lanes(&k, v, weyl);
      weyl = vi_add32(weyl, k.weyl_step);
    }
    vi_store_sat_u8x4(q + i, out[0], out[1], out[2], out[3]);
    if (relu && mask) vi_store_sat_u8x4(mask + i, on[0], on[1], on[2], on[3]);
  }
  for (; i < n; i++)
    q[i] = i8t_affine_quantize_u8_one(x, m, a, base, relu, mask, inv_scale, zp, noise, i);
}

void I8T_X86_NAME(i8t_quantize_f32_s8)(const float *x, size_t n, float inv_scale,
                                       i8t_noise noise, int8_t *q) {
  const int32_t zp = 0;
  I8T_X86_QUANTIZE_LOOP(int8_t, -127.0f, 127.0f, I8T_X86_LANES_SYM, I8T_X86_LOAD_F32,
                        I8T_X86_F32_AT, I8T_X86_STORE_8BIT)
}

void I8T_X86_NAME(i8t_quantize_f32_s16)(const float *x, size_t n, float inv_scale,
                                        i8t_noise noise, int16_t *q) {
  const int32_t zp = 0;
  I8T_X86_QUANTIZE_LOOP(int16_t, -32767.0f, 32767.0f, I8T_X86_LANES_SYM, I8T_X86_LOAD_F32,
                        I8T_X86_F32_AT, I8T_X86_STORE_16BIT)
}

/* ------------------------------------------------------------------------ */
/* BN backward's s8 and s16 errors from pair hashes (kernel_table.h)       */
/* ------------------------------------------------------------------------ */

/* The low byte of every 32-bit lane (the vector headers have no AND). */
static inline i8t_vi vi_low_byte(i8t_vi h) {
#if I8T_VLANES == 16
  return _mm512_and_si512(h, _mm512_set1_epi32(255));
#else
  return _mm256_and_si256(h, _mm256_set1_epi32(255));
#endif
}

/* i8t_stochastic_floor lane-wise: floor(clamp(tu = t + u, lo, hi)) as int32,
 * NaN giving lo (vf_max returns its second operand on NaN). Native AVX-512
 * converts with round-down directly (one instruction for the floor and the
 * conversion); the clamped value is in int32 range. */
static inline i8t_vi stochastic_lanes(i8t_vf tu, i8t_vf lo, i8t_vf hi) {
  i8t_vf r = vf_min(hi, vf_max(tu, lo));
#if I8T_VLANES == 16 && !defined(I8T_AVX512_EMULATED)
  return _mm512_cvt_roundps_epi32(r, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
#else
  return vf_to_vi_trunc(vf_floor(r));
#endif
}

/* t + x * s where the product is exact (an integer below 2^24 times a power
 * of two): one FMA gives the same float as the multiply and the add. The
 * emulated AVX-512 build keeps the two operations. */
static inline i8t_vf vf_add_exact_product(i8t_vf t, i8t_vf x, i8t_vf s) {
#if I8T_VLANES == 16 && !defined(I8T_AVX512_EMULATED)
  return _mm512_fmadd_ps(x, s, t);
#elif I8T_VLANES == 8
  return _mm256_fmadd_ps(x, s, t);
#else
  return vf_add(t, vf_mul(x, s));
#endif
}

/* i8t_interleave_pixels_u8_s16 (kernel_table.h): per 16 channels, the two
 * pixels' bytes unpacked into pairs and widened to int16, on 128/256-bit
 * AVX2 instructions in both ISAs (the compiler's own vectorisation of the
 * plain loop built the pairs byte by byte). */
void I8T_X86_NAME(i8t_interleave_pixels_u8_s16)(size_t n, size_t C, const uint8_t *row,
                                                size_t step, size_t b_off, int16_t zp,
                                                int16_t *d) {
#if I8T_VLANES == 16 && !defined(I8T_AVX512_EMULATED)
  const __m512i z = _mm512_set1_epi16(zp);
#else
  const __m256i z = _mm256_set1_epi16(zp);
#endif
  for (size_t q = 0; q < n; q++, d += 2 * C) {
    const uint8_t *a = row + q * step, *b = a + b_off;
    size_t c = 0;
    for (; c + 16 <= C; c += 16) {
      __m128i va = _mm_loadu_si128((const __m128i *)(const void *)(a + c));
      __m128i vb = _mm_loadu_si128((const __m128i *)(const void *)(b + c));
      __m128i lo8 = _mm_unpacklo_epi8(va, vb), hi8 = _mm_unpackhi_epi8(va, vb);
#if I8T_VLANES == 16 && !defined(I8T_AVX512_EMULATED) /* one widening, one store */
      __m512i w = _mm512_cvtepu8_epi16(_mm256_set_m128i(hi8, lo8));
      _mm512_storeu_si512((void *)(d + 2 * c), _mm512_sub_epi16(w, z));
#else
      _mm256_storeu_si256((__m256i *)(void *)(d + 2 * c),
                          _mm256_sub_epi16(_mm256_cvtepu8_epi16(lo8), z));
      _mm256_storeu_si256((__m256i *)(void *)(d + 2 * c + 16),
                          _mm256_sub_epi16(_mm256_cvtepu8_epi16(hi8), z));
#endif
    }
    for (; c < C; c++) {
      d[2 * c] = (int16_t)(a[c] - zp);
      d[2 * c + 1] = (int16_t)(b[c] - zp);
    }
  }
}

/* i8t_interleave_rows_s16 (kernel_table.h): 16 pairs a step, one two-source
 * word permute on native AVX-512, two unpacks and two lane permutes on AVX2
 * (the baseline-ISA loop it replaces went 8 pairs a step with SSE2). */
static inline void interleave16_s16(const int16_t *a, const int16_t *b, int16_t *d) {
  __m256i va = _mm256_loadu_si256((const __m256i *)(const void *)a);
  __m256i vb = b ? _mm256_loadu_si256((const __m256i *)(const void *)b) : _mm256_setzero_si256();
#if I8T_VLANES == 16 && !defined(I8T_AVX512_EMULATED)
  const __m512i idx = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9,
                                       40, 8, 39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1,
                                       32, 0);
  __m512i out = _mm512_permutex2var_epi16(_mm512_castsi256_si512(va), idx,
                                          _mm512_castsi256_si512(vb));
  _mm512_storeu_si512((void *)d, out);
#else
  __m256i lo = _mm256_unpacklo_epi16(va, vb), hi = _mm256_unpackhi_epi16(va, vb);
  _mm256_storeu_si256((__m256i *)(void *)d, _mm256_permute2x128_si256(lo, hi, 0x20));
  _mm256_storeu_si256((__m256i *)(void *)(d + 16), _mm256_permute2x128_si256(lo, hi, 0x31));
#endif
}

void I8T_X86_NAME(i8t_interleave_rows_s16)(size_t rows, size_t w, size_t pairs,
                                           const int16_t *a, const int16_t *b, size_t lda,
                                           int16_t *d, size_t ldd) {
  if (b && w == pairs && w % 16 == 0) { /* whole steps, no padding (Co % 16 == 0) */
    if (lda == w && ldd == 2 * w) w *= rows, rows = 1; /* contiguous rows: one run */
    for (size_t r = 0; r < rows; r++)
      for (size_t c = 0; c < w; c += 16)
        interleave16_s16(a + r * lda + c, b + r * lda + c, d + r * ldd + 2 * c);
    return;
  }
  for (size_t r = 0; r < rows; r++) {
    const int16_t *ar = a + r * lda, *br = b ? b + r * lda : NULL;
    int16_t *dr = d + r * ldd;
    size_t c = 0;
    for (; c + 16 <= w; c += 16) interleave16_s16(ar + c, br ? br + c : NULL, dr + 2 * c);
    i8t_interleave_row_s16_from(c, w, pairs, ar, br, dr);
  }
}

typedef struct s8s16_consts {
  i8t_vf inv8, inv16, lo8, hi8, lo16, hi16, u16_scale, u8_scale;
  i8t_vi key, step;
} s8s16_consts;

/* The 2 * I8T_VLANES values from element o, from one vector of pair hashes
 * h: vector j takes the zero-extended 16-bit halves j * VLANES.. of h (so
 * element 2p's bits are the low half of pair p's hash, 2p + 1's the high
 * half, as in i8t_rng_pair_bits), all 16 rounding q8, the low byte q16. CS
 * is NULL or cs, fixed per call (the caller unswitches it). */
static inline __attribute__((always_inline)) void s8s16_pair_vectors(
    const s8s16_consts *k, const float *v, const float *cs, size_t o, i8t_vi h, i8t_vi q8[2],
    i8t_vi q16[2]) {
  const i8t_vi bits[2] = {vb_widen_u16_lo(h), vb_widen_u16_hi(h)};
  for (int j = 0; j < 2; j++) {
    size_t e = o + (size_t)j * I8T_VLANES;
    i8t_vf x = vf_load(v + e), w = cs ? vf_mul(x, vf_load(cs + e)) : x;
    q8[j] = stochastic_lanes(
        vf_add_exact_product(vf_mul(w, k->inv8), vi_to_vf(bits[j]), k->u16_scale), k->lo8,
        k->hi8);
    q16[j] = stochastic_lanes(
        vf_add_exact_product(vf_mul(x, k->inv16), vi_to_vf(vi_low_byte(bits[j])), k->u8_scale),
        k->lo16, k->hi16);
  }
}

/* quantize_f32_s8s16 over elements whose counters do not wrap (so pair
 * counters grow linearly): an odd first counter by the scalar rule, then
 * blocks of two hash vectors, one, and the scalar tail. The outputs are
 * clamped, so saturating packs store them. */
static inline __attribute__((always_inline)) void s8s16_linear(
    const s8s16_consts *k, size_t n, const float *v, const float *cs, float inv8, float inv16,
    i8t_noise noise, int8_t *q8, int16_t *q16) {
  size_t i = 0;
  if (n && (noise.ctr & 1u)) i8t_quantize_s8s16_one(v, cs, inv8, inv16, noise, i++, q8, q16);
  i8t_vi pair = vi_add32(vi_set1((int32_t)((noise.ctr + (uint32_t)i) >> 1)), vi_iota());
  i8t_vi weyl = vi_mullo32(pair, vi_set1((int32_t)I8T_RNG_GOLDEN));
  i8t_vi a[4], b[4];
  for (; i + 4 * I8T_VLANES <= n; i += 4 * I8T_VLANES) {
    s8s16_pair_vectors(k, v, cs, i, vi_rng_hash_weyl(k->key, weyl), a, b);
    weyl = vi_add32(weyl, k->step);
    s8s16_pair_vectors(k, v, cs, i + 2 * I8T_VLANES, vi_rng_hash_weyl(k->key, weyl), a + 2, b + 2);
    weyl = vi_add32(weyl, k->step);
    vi_store_sat_s8x4(q8 + i, a[0], a[1], a[2], a[3]);
    vi_store_sat_s16x2(q16 + i, b[0], b[1]);
    vi_store_sat_s16x2(q16 + i + 2 * I8T_VLANES, b[2], b[3]);
  }
  if (i + 2 * I8T_VLANES <= n) {
    s8s16_pair_vectors(k, v, cs, i, vi_rng_hash_weyl(k->key, weyl), a, b);
    vi_store_sat_s8x2(q8 + i, a[0], a[1]);
    vi_store_sat_s16x2(q16 + i, b[0], b[1]);
    i += 2 * I8T_VLANES;
  }
  for (; i < n; i++) i8t_quantize_s8s16_one(v, cs, inv8, inv16, noise, i, q8, q16);
}

void I8T_X86_NAME(i8t_quantize_f32_s8s16)(size_t n, const float *v, const float *cs,
                                          float inv8, float inv16, i8t_noise noise, int8_t *q8,
                                          int16_t *q16) {
  const s8s16_consts k = {
      vf_set1(inv8),      vf_set1(inv16),      vf_set1(-127.0f),
      vf_set1(127.0f),    vf_set1(-32767.0f),  vf_set1(32767.0f),
      vf_set1(1.0f / 65536.0f), vf_set1(1.0f / 256.0f),
      vi_set1((int32_t)(noise.key ^ I8T_RNG_PAIR_DOMAIN)),
      vi_set1((int32_t)(I8T_VLANES * I8T_RNG_GOLDEN))};
  while (n) { /* pieces up to the counter's wrap (2^32 is even: no pair straddles it) */
    size_t len = i8t_rng_run_to_wrap(n, noise.ctr);
    if (cs)
      s8s16_linear(&k, len, v, cs, inv8, inv16, noise, q8, q16);
    else
      s8s16_linear(&k, len, v, NULL, inv8, inv16, noise, q8, q16);
    n -= len, v += len, q8 += len, q16 += len, cs = cs ? cs + len : NULL;
    noise.ctr += (uint32_t)len;
  }
}

/* ------------------------------------------------------------------------ */
/* BN backward's per-channel sums (kernel_table.h: bn_col_sums)             */
/* ------------------------------------------------------------------------ */

/* u16 lane products (low 16 bits; the vector headers have none). */
static inline i8t_vi vw_mullo16(i8t_vi a, i8t_vi b) {
#if I8T_VLANES == 16
  return _mm512_mullo_epi16(a, b);
#else
  return _mm256_mullo_epi16(a, b);
#endif
}

/* Sums of one vector of columns over `rows` rows of stride ld, all unsigned:
 * u = g xor 0x80 = g + 128 in [0, 255], so sum u, sum u q (u q <= 65025 fits
 * the 16-bit product) and sum q, and the min / max of u. Per-lane u32 sums:
 * rows <= 32768 keep sum u q below 2^31; u16 partial sums of q and u
 * are widened every 256 rows (256 * 255 < 2^16). */
typedef struct bn_sums_lanes {
  uint32_t sq[4 * I8T_VLANES], su[4 * I8T_VLANES], suq[4 * I8T_VLANES];
  uint8_t umin[4 * I8T_VLANES], umax[4 * I8T_VLANES];
} bn_sums_lanes;

static void bn_sums_block(const int8_t *g, const uint8_t *x, size_t rows, size_t ld,
                          bn_sums_lanes *out) {
  const i8t_vi flip = vi_set1((int32_t)0x80808080u);
  i8t_vi mn = vb_set1_u8(255), mx = vi_zero();
  i8t_vi q32[4], u32[4], p32[4];
  for (int k = 0; k < 4; k++) q32[k] = u32[k] = p32[k] = vi_zero();
  for (size_t r0 = 0; r0 < rows; r0 += 256) {
    size_t r1 = r0 + 256 < rows ? r0 + 256 : rows;
    i8t_vi q16[2] = {vi_zero(), vi_zero()}, u16[2] = {vi_zero(), vi_zero()};
    for (size_t r = r0; r < r1; r++) {
      i8t_vi xv = vi_load(x + r * ld), uv = vi_xor(vi_load(g + r * ld), flip);
      mn = vb_min_u8(mn, uv);
      mx = vb_max_u8(mx, uv);
      i8t_vi xw[2] = {vb_widen_u8_lo(xv), vb_widen_u8_hi(xv)};
      i8t_vi uw[2] = {vb_widen_u8_lo(uv), vb_widen_u8_hi(uv)};
      for (int h = 0; h < 2; h++) {
        q16[h] = vb_add16(q16[h], xw[h]);
        u16[h] = vb_add16(u16[h], uw[h]);
        i8t_vi p = vw_mullo16(uw[h], xw[h]);
        p32[2 * h] = vi_add32(p32[2 * h], vb_widen_u16_lo(p));
        p32[2 * h + 1] = vi_add32(p32[2 * h + 1], vb_widen_u16_hi(p));
      }
    }
    for (int h = 0; h < 2; h++) {
      q32[2 * h] = vi_add32(q32[2 * h], vb_widen_u16_lo(q16[h]));
      q32[2 * h + 1] = vi_add32(q32[2 * h + 1], vb_widen_u16_hi(q16[h]));
      u32[2 * h] = vi_add32(u32[2 * h], vb_widen_u16_lo(u16[h]));
      u32[2 * h + 1] = vi_add32(u32[2 * h + 1], vb_widen_u16_hi(u16[h]));
    }
  }
  for (int k = 0; k < 4; k++) {
    vi_store(out->sq + k * I8T_VLANES, q32[k]);
    vi_store(out->su + k * I8T_VLANES, u32[k]);
    vi_store(out->suq + k * I8T_VLANES, p32[k]);
  }
  vi_store(out->umin, mn);
  vi_store(out->umax, mx);
}

/* Lane j (n values) into channel c, back to signed g: sum g = sum u - 128 n,
 * sum g q = sum u q - 128 sum q. */
static inline void bn_sums_add_lane(const bn_sums_lanes *l, size_t j, size_t n, size_t c,
                                    int32_t *sg, int32_t *sgq, uint32_t *sq, int8_t *gmin,
                                    int8_t *gmax) {
  sg[c] += (int32_t)((int64_t)l->su[j] - 128 * (int64_t)n);
  sgq[c] += (int32_t)((int64_t)l->suq[j] - 128 * (int64_t)l->sq[j]);
  sq[c] += l->sq[j];
  int8_t lo = (int8_t)(l->umin[j] ^ 0x80), hi = (int8_t)(l->umax[j] ^ 0x80);
  gmin[c] = lo < gmin[c] ? lo : gmin[c];
  gmax[c] = hi > gmax[c] ? hi : gmax[c];
}

void I8T_X86_NAME(i8t_bn_col_sums)(size_t rows, size_t C, size_t ld, const int8_t *g,
                                   const uint8_t *x, int32_t *sg, int32_t *sgq, uint32_t *sq,
                                   int8_t *gmin, int8_t *gmax) {
  enum { BLOCK = 4 * I8T_VLANES };
  bn_sums_lanes l;
  /* Several rows per vector (lane j is channel j mod C) needs contiguous rows. */
  if (C < BLOCK && BLOCK % C == 0 && ld == C) {
    size_t per = BLOCK / C, vrows = rows / per, left = vrows * per;
    I8T_X86_NAME(i8t_bn_col_sums_portable)(rows - left, C, C, g + left * C, x + left * C, sg,
                                           sgq, sq, gmin, gmax);
    bn_sums_block(g, x, vrows, BLOCK, &l);
    for (size_t j0 = 0; j0 < BLOCK; j0 += C) /* no modulo: a division per lane */
      for (size_t c = 0; c < C; c++) bn_sums_add_lane(&l, j0 + c, vrows, c, sg, sgq, sq, gmin, gmax);
  } else if (C % BLOCK == 0) { /* whole vectors of channels, rows of stride ld */
    for (size_t c0 = 0; c0 < C; c0 += BLOCK) {
      bn_sums_block(g + c0, x + c0, rows, ld, &l);
      for (size_t j = 0; j < BLOCK; j++) {
        size_t c = c0 + j;
        sg[c] = sgq[c] = 0, sq[c] = 0, gmin[c] = 127, gmax[c] = -127;
        bn_sums_add_lane(&l, j, rows, c, sg, sgq, sq, gmin, gmax);
      }
    }
  } else {
    I8T_X86_NAME(i8t_bn_col_sums_portable)(rows, C, ld, g, x, sg, sgq, sq, gmin, gmax);
  }
}

/* ------------------------------------------------------------------------ */
/* Range BN's per-column min / max / sum of a u8 matrix                     */
/* ------------------------------------------------------------------------ */

/* One vector of columns (4 * I8T_VLANES bytes). Sums gather in u16 lanes
 * for up to 257 rows (257 * 255 = 65535) and are widened to u32 every 256. */
static void colwise_block(const uint8_t *x, size_t rows, size_t ld, uint8_t *min,
                          uint8_t *max, uint32_t *sum) {
  i8t_vi mn = vb_set1_u8(255), mx = vi_zero();
  i8t_vi s32[4] = {vi_zero(), vi_zero(), vi_zero(), vi_zero()};
  for (size_t r0 = 0; r0 < rows; r0 += 256) {
    size_t r1 = r0 + 256 < rows ? r0 + 256 : rows;
    i8t_vi s16lo = vi_zero(), s16hi = vi_zero();
    for (size_t r = r0; r < r1; r++) {
      i8t_vi v = vi_load(x + r * ld);
      mn = vb_min_u8(mn, v);
      mx = vb_max_u8(mx, v);
      s16lo = vb_add16(s16lo, vb_widen_u8_lo(v));
      s16hi = vb_add16(s16hi, vb_widen_u8_hi(v));
    }
    s32[0] = vi_add32(s32[0], vb_widen_u16_lo(s16lo));
    s32[1] = vi_add32(s32[1], vb_widen_u16_hi(s16lo));
    s32[2] = vi_add32(s32[2], vb_widen_u16_lo(s16hi));
    s32[3] = vi_add32(s32[3], vb_widen_u16_hi(s16hi));
  }
  vi_store(min, mn);
  vi_store(max, mx);
  for (int j = 0; j < 4; j++) vi_store(sum + j * I8T_VLANES, s32[j]);
}

/* Narrow contiguous matrices (cols divides one vector, ld = cols): one
 * vector holds block / cols whole rows, so the vector loop runs over them as
 * if they were one wide row, and its lanes fold into the columns at the end
 * (lane j is column j mod cols). The rows left over (fewer than one vector) go
 * through the portable kernel first. */
static void colwise_narrow(const uint8_t *x, size_t rows, size_t cols, uint8_t *min,
                           uint8_t *max, uint32_t *sum) {
  enum { BLOCK = 4 * I8T_VLANES };
  uint8_t lmn[BLOCK], lmx[BLOCK];
  uint32_t lsum[BLOCK];
  size_t per = BLOCK / cols, vrows = rows / per;
  i8t_colwise_stats_u8__generic(x + vrows * BLOCK, rows - vrows * per, cols, cols, min, max, sum);
  colwise_block(x, vrows, BLOCK, lmn, lmx, lsum);
  for (size_t j0 = 0; j0 < BLOCK; j0 += cols) /* no modulo: a division per lane */
    for (size_t c = 0; c < cols; c++) {
      size_t j = j0 + c;
      min[c] = lmn[j] < min[c] ? lmn[j] : min[c];
      max[c] = lmx[j] > max[c] ? lmx[j] : max[c];
      sum[c] += lsum[j];
    }
}

void I8T_X86_NAME(i8t_colwise_stats_u8)(const uint8_t *x, size_t rows, size_t cols, size_t ld,
                                        uint8_t *min, uint8_t *max, uint32_t *sum) {
  const size_t block = 4 * I8T_VLANES;
  if (cols < block && ld == cols && block % cols == 0) {
    colwise_narrow(x, rows, cols, min, max, sum);
    return;
  }
  size_t c = 0;
  for (; c + block <= cols; c += block) colwise_block(x + c, rows, ld, min + c, max + c, sum + c);
  /* Remaining columns (fewer than one vector): the portable kernel, which
   * keeps its running values local and stores them once. */
  if (c < cols) i8t_colwise_stats_u8__generic(x + c, rows, cols - c, ld, min + c, max + c, sum + c);
}

/* ------------------------------------------------------------------------ */
/* Gradient spans: sum, mask, absmax or quantize (kernel_table.h)           */
/* ------------------------------------------------------------------------ */

/* 8 lanes of AVX2: int8 widened to int32, and v where the mask byte is
 * non-zero, +0 elsewhere. */
static inline __m256i grad_s8_x8(const int8_t *p) {
  return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p));
}
static inline __m256 grad_mask_x8(__m256 v, const uint8_t *m) {
  __m256i m32 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)m));
  __m256i off = _mm256_cmpeq_epi32(m32, _mm256_setzero_si256());
  return _mm256_andnot_ps(_mm256_castsi256_ps(off), v);
}

#if I8T_VLANES == 16 && !defined(I8T_AVX512_EMULATED)
static inline i8t_vi grad_s8_lanes(const int8_t *p) {
  return _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p));
}
static inline i8t_vf grad_mask_lanes(i8t_vf v, const uint8_t *m) {
  __m512i m32 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)m));
  return _mm512_maskz_mov_ps(_mm512_test_epi32_mask(m32, m32), v);
}
#elif I8T_VLANES == 16 /* SIMDe: two AVX2 halves */
static inline i8t_vi grad_s8_lanes(const int8_t *p) {
  return i8t_mm512_join256(grad_s8_x8(p), grad_s8_x8(p + 8));
}
static inline i8t_vf grad_mask_lanes(i8t_vf v, const uint8_t *m) {
  __m256 lo = grad_mask_x8(vf_lo8(v), m), hi = grad_mask_x8(vf_hi8(v), m + 8);
  return _mm512_castsi512_ps(
      i8t_mm512_join256(_mm256_castps_si256(lo), _mm256_castps_si256(hi)));
}
#else
static inline i8t_vi grad_s8_lanes(const int8_t *p) { return grad_s8_x8(p); }
static inline i8t_vf grad_mask_lanes(i8t_vf v, const uint8_t *m) { return grad_mask_x8(v, m); }
#endif

/* The span's shape: its source count, which sources are int8 (bit k) and
 * whether it is masked. The kernels below are written once as inline bodies
 * over a shape and instantiated for the common shapes with constants (one
 * or two sources), so that the per-vector loop has no branches on the kinds;
 * other shapes read them from the span. */
typedef struct grad_shape {
  int ns;         /* 0: read the shape from the span */
  unsigned kinds; /* bit k: source k is int8 */
  int masked;
} grad_shape;

#define I8T_GRAD_INLINE static inline __attribute__((always_inline))

/* i8t_grad_sum_one for the I8T_VLANES elements from i: the same float
 * operations lane-wise (0 + term, then += term per source, then the mask). */
I8T_GRAD_INLINE i8t_vf grad_lanes(const i8t_grad_span *s, const i8t_vf *sc, size_t i,
                                  grad_shape g) {
  i8t_vf v = vf_set1(0.0f);
  int ns = g.ns ? g.ns : s->n_src;
  for (int k = 0; k < ns; k++) {
    int is8 = g.ns ? (int)((g.kinds >> k) & 1u) : s->s8[k];
    i8t_vi x = is8 ? grad_s8_lanes((const int8_t *)s->src[k] + i)
                   : vi_load((const int32_t *)s->src[k] + i);
    v = vf_add(v, vf_mul(sc[k], vi_to_vf(x)));
  }
  int masked = g.ns ? g.masked : s->mask != NULL;
  return masked ? grad_mask_lanes(v, s->mask + i) : v;
}

I8T_GRAD_INLINE void grad_scales(const i8t_grad_span *s, i8t_vf *sc, grad_shape g) {
  int ns = g.ns ? g.ns : s->n_src;
  for (int k = 0; k < ns; k++) sc[k] = vf_set1(s->sc[k]);
}

/* Calls BODY(n, span, ..., shape) with the shape as constants when it is a
 * common one (the span s is copied to a local first: the quantizer's int8
 * stores could otherwise alias it and force reloads of its pointers). */
#define I8T_GRAD_SHAPE_CASE(NS, KINDS, MASKED, BODY, ...) \
  case (NS) * 8 + (KINDS) * 2 + (MASKED):                 \
    return BODY(__VA_ARGS__, (grad_shape){NS, KINDS, MASKED});
#define I8T_GRAD_DISPATCH(BODY, ...)                                                     \
  do {                                                                                   \
    int key_ = l.n_src > 2 ? -1                                                          \
               : l.n_src * 8 + (l.s8[0] + (l.n_src > 1 ? 2 * l.s8[1] : 0)) * 2 +          \
                     (l.mask != NULL);                                                   \
    switch (key_) {                                                                      \
      I8T_GRAD_SHAPE_CASE(1, 0, 0, BODY, __VA_ARGS__)                                    \
      I8T_GRAD_SHAPE_CASE(1, 0, 1, BODY, __VA_ARGS__)                                    \
      I8T_GRAD_SHAPE_CASE(1, 1, 0, BODY, __VA_ARGS__)                                    \
      I8T_GRAD_SHAPE_CASE(1, 1, 1, BODY, __VA_ARGS__)                                    \
      I8T_GRAD_SHAPE_CASE(2, 0, 0, BODY, __VA_ARGS__)                                    \
      I8T_GRAD_SHAPE_CASE(2, 0, 1, BODY, __VA_ARGS__)                                    \
      I8T_GRAD_SHAPE_CASE(2, 1, 0, BODY, __VA_ARGS__)                                    \
      I8T_GRAD_SHAPE_CASE(2, 1, 1, BODY, __VA_ARGS__)                                    \
      I8T_GRAD_SHAPE_CASE(2, 2, 0, BODY, __VA_ARGS__)                                    \
      I8T_GRAD_SHAPE_CASE(2, 2, 1, BODY, __VA_ARGS__)                                    \
      I8T_GRAD_SHAPE_CASE(2, 3, 0, BODY, __VA_ARGS__)                                    \
      I8T_GRAD_SHAPE_CASE(2, 3, 1, BODY, __VA_ARGS__)                                    \
      default: return BODY(__VA_ARGS__, (grad_shape){0, 0, 0});                          \
    }                                                                                    \
  } while (0)

/* Min and max as i8t_minmax_f32 (v - v flags NaN and Inf), then max |v|;
 * the sums stored to out when it is not NULL (after their sources' loads). */
I8T_GRAD_INLINE float grad_absmax_body(size_t n, const i8t_grad_span *s, float *out,
                                       grad_shape g) {
  i8t_vf sc[I8T_GRAD_SPAN_MAX];
  grad_scales(s, sc, g);
  minmax_lanes m = minmax_lanes_start();
  size_t i = 0;
  for (; i + 2 * I8T_VLANES <= n; i += 2 * I8T_VLANES) {
    i8t_vf a = grad_lanes(s, sc, i, g), b = grad_lanes(s, sc, i + I8T_VLANES, g);
    if (out) {
      vi_store(out + i, vf_bits(a));
      vi_store(out + i + I8T_VLANES, vf_bits(b));
    }
    minmax_lanes_add2(&m, a, b);
  }
  float lo, hi;
  int any_bad = minmax_lanes_fold(&m, &lo, &hi);
  for (; i < n; i++) {
    float v = i8t_grad_sum_one(s, i);
    if (out) out[i] = v;
    any_bad |= minmax_scalar_add(v, &lo, &hi);
  }
  return any_bad ? NAN : fmaxf(-lo, hi);
}

float I8T_X86_NAME(i8t_grad_sum_absmax)(size_t n, const i8t_grad_span *s, float *out) {
  if (n == 0) return 0.0f;
  i8t_grad_span l = *s;
  I8T_GRAD_DISPATCH(grad_absmax_body, n, &l, out);
}

/* quantize_f32_s8's vector body on the summed lanes, its scalar rule for the
 * tail. */
I8T_GRAD_INLINE int grad_quantize_body(size_t n, const i8t_grad_span *s, float inv_scale,
                                       i8t_noise noise, int8_t *q, grad_shape g) {
  i8t_vf sc[I8T_GRAD_SPAN_MAX];
  grad_scales(s, sc, g);
  quant_consts k = quant_consts_make(inv_scale, 0, -127.0f, 127.0f, noise);
  i8t_vi weyl = quant_weyl_start(noise);
  size_t i = 0;
  for (; i + 4 * I8T_VLANES <= n; i += 4 * I8T_VLANES) {
    i8t_vi v[4];
    for (int j = 0; j < 4; j++) {
      v[j] = quantize_lanes(&k, grad_lanes(s, sc, i + (size_t)j * I8T_VLANES, g), weyl, 0);
      weyl = vi_add32(weyl, k.weyl_step);
    }
    vi_store_lo8x4(q + i, v[0], v[1], v[2], v[3]);
  }
  for (; i < n; i++) q[i] = i8t_quantize_s8_one(i8t_grad_sum_one(s, i), inv_scale, noise, i);
  return 0;
}

static int grad_quantize_dispatch(size_t n, const i8t_grad_span *s, float inv_scale,
                                  i8t_noise noise, int8_t *q) {
  i8t_grad_span l = *s;
  I8T_GRAD_DISPATCH(grad_quantize_body, n, &l, inv_scale, noise, q);
}

void I8T_X86_NAME(i8t_grad_sum_quantize_s8)(size_t n, const i8t_grad_span *s, float inv_scale,
                                            i8t_noise noise, int8_t *q) {
  (void)grad_quantize_dispatch(n, s, inv_scale, noise, q);
}
