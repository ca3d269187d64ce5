/* The fused gradient-span kernels (kernel_table.h: grad_sum_absmax,
 * grad_sum_quantize_s8) of every ISA against a plain multi-pass reference,
 * and i8t_sum_act_backward_mask_u8 (which uses them) against the same
 * reference end to end, on every ISA and with 1 and 2 threads; so is its
 * split form (i8t_grad_sum_absmax_u8 over row ranges, then
 * i8t_sum_act_backward_mask_absmax_u8). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "int8train/int8train.h"
#include "int8train/layers.h"
#include "isa_list.h"
#include "kernel_table.h"
#include "rng.h"
#include "test_util.h"

/* The sum as separate passes over a zeroed float buffer, then the mask. */
static void ref_sum(const i8t_grad_span *s, size_t n, float *v) {
  for (size_t i = 0; i < n; i++) v[i] = 0.0f;
  for (int k = 0; k < s->n_src; k++)
    for (size_t i = 0; i < n; i++) {
      float x = s->s8[k] ? (float)((const int8_t *)s->src[k])[i]
                         : (float)((const int32_t *)s->src[k])[i];
      float t = s->sc[k] * x;
      v[i] = v[i] + t;
    }
  if (s->mask)
    for (size_t i = 0; i < n; i++)
      if (!s->mask[i]) v[i] = 0.0f;
}

static float ref_absmax(const float *v, size_t n) {
  float m = 0.0f;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(v[i])) return NAN;
    m = fabsf(v[i]) > m ? fabsf(v[i]) : m;
  }
  return m;
}

/* Stochastic: floor(t) + (u < t - floor(t)), u from the element's counter;
 * nearest: round half to even; then clamped to [-127, 127]. */
static int8_t ref_quantize(float v, float inv, i8t_noise noise, size_t i) {
  float t = v * inv, r;
  if (noise.stochastic) {
    float f = floorf(t), u = i8t_rng_uniform(noise.key, noise.ctr + (uint32_t)i);
    r = f + (u < t - f ? 1.0f : 0.0f);
  } else {
    r = nearbyintf(t);
  }
  return (int8_t)(r < -127.0f ? -127 : r > 127.0f ? 127 : (int)r);
}

enum { MAXN = 1100 };

typedef struct span_data {
  int32_t s32[I8T_GRAD_SPAN_MAX][MAXN];
  int8_t s8[I8T_GRAD_SPAN_MAX][MAXN];
  uint8_t mask[MAXN];
} span_data;

/* Random sources with saturating int32 / int8 values sprinkled in. */
static void fill(span_data *d, uint64_t *rng) {
  for (int k = 0; k < I8T_GRAD_SPAN_MAX; k++)
    for (size_t i = 0; i < MAXN; i++) {
      d->s32[k][i] = (int32_t)test_rand(rng); /* above 2^24: the conversion rounds */
      if (i % 7 == 0) d->s32[k][i] = test_rand_range(rng, -300, 300);
      if (i % 23 == 5) d->s32[k][i] = i & 1 ? INT32_MAX : INT32_MIN;
      d->s8[k][i] = (int8_t)test_rand(rng);
      if (i % 19 == 3) d->s8[k][i] = i & 1 ? 127 : -128;
    }
  for (size_t i = 0; i < MAXN; i++) d->mask[i] = (uint8_t)(test_rand(rng) % 3); /* 0, 1, 2 */
}

/* One span over n elements: `kinds` is a string of '4' (int32) and '1'
 * (int8) per source; mask_mode 0 none, 1 random bytes, 2 all zero. */
static i8t_grad_span make_span(span_data *d, const char *kinds, int mask_mode, size_t off,
                               uint64_t *rng) {
  i8t_grad_span s = {.n_src = (int)strlen(kinds)};
  for (int k = 0; k < s.n_src; k++) {
    s.s8[k] = kinds[k] == '1';
    s.src[k] = s.s8[k] ? (const void *)(d->s8[k] + off) : (const void *)(d->s32[k] + off);
    s.sc[k] = test_rand_float(rng, -2e-6f, 2e-6f) * (s.s8[k] ? 1e5f : 1.0f);
    if (k == 1) s.sc[k] = -0.0f; /* -0 terms: the sum must still start at +0 */
  }
  static const uint8_t zeros[MAXN];
  s.mask = mask_mode == 0 ? NULL : mask_mode == 1 ? d->mask + off : zeros;
  return s;
}

static int same_float(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* The absmax kernel storing the sums: into a separate buffer, then in
 * place over a copy of the first int32 source (when there is one). */
static void check_sum_out(const i8t_kernel_table *t, const i8t_grad_span *s, size_t n,
                          const float *v, float m) {
  static float out[MAXN + 1];
  static int32_t inplace[MAXN + 1];
  out[n] = 7.0f;
  float a = t->grad_sum_absmax.run(n, s, out);
  assert_true(a == m || (a != a && m != m));
  for (size_t i = 0; i < n; i++)
    if (!same_float(out[i], v[i]))
      fail_msg("%s n=%zu sum[%zu] = %g vs %g", t->grad_sum_absmax.name, n, i, (double)out[i],
               (double)v[i]);
  assert_true(out[n] == 7.0f); /* nothing written past n */
  int k = 0;
  while (k < s->n_src && s->s8[k]) k++;
  if (k == s->n_src) return;
  i8t_grad_span l = *s;
  memcpy(inplace, s->src[k], n * sizeof *inplace);
  l.src[k] = inplace;
  a = t->grad_sum_absmax.run(n, &l, (float *)(void *)inplace);
  assert_true(a == m || (a != a && m != m));
  for (size_t i = 0; i < n; i++) {
    float got;
    memcpy(&got, &inplace[i], sizeof got);
    if (!same_float(got, v[i]))
      fail_msg("%s n=%zu in place: sum[%zu] = %g vs %g", t->grad_sum_absmax.name, n, i,
               (double)got, (double)v[i]);
  }
}

static void check_span(const i8t_kernel_table *t, const i8t_grad_span *s, size_t n,
                       uint64_t *rng) {
  static float v[MAXN];
  static int8_t want[MAXN], got[MAXN];
  ref_sum(s, n, v);
  float m = ref_absmax(v, n), a = t->grad_sum_absmax.run(n, s, NULL);
  if (!(a == m || (a != a && m != m)))
    fail_msg("%s n=%zu absmax %g vs %g", t->grad_sum_absmax.name, n, (double)a, (double)m);
  check_sum_out(t, s, n, v, m);
  for (int mode = 0; mode < 3; mode++) {
    /* exact scale, saturating (4x too fine), nearest rounding */
    float inv = (m > 0.0f && isfinite(m) ? 127.0f / m : 1.0f) * (mode == 1 ? 4.0f : 1.0f);
    i8t_noise noise = {mode != 2, (uint32_t)test_rand(rng), (uint32_t)test_rand(rng)};
    if (mode == 1) noise.ctr = 0xFFFFFFF0u; /* the counter wraps inside the span */
    for (size_t i = 0; i < n; i++) want[i] = ref_quantize(v[i], inv, noise, i);
    memset(got, 0x55, sizeof got);
    t->grad_sum_quantize_s8.run(n, s, inv, noise, got);
    for (size_t i = 0; i < n; i++)
      if (got[i] != want[i])
        fail_msg("%s n=%zu mode %d q[%zu] = %d vs %d", t->grad_sum_quantize_s8.name, n, mode,
                 i, got[i], want[i]);
    assert_int_equal(got[n], 0x55); /* nothing written past n */
  }
}

static void check_kernels(i8t_isa isa) {
  const i8t_kernel_table *t = i8t_kernels_for_isa(isa);
  if (!t) {
    print_message("[   INFO   ] %s kernels are not available on this CPU/build: skipped\n",
                  i8t_isa_name(isa));
    skip();
  }
  static span_data d;
  uint64_t rng = 0x5EED0000u + (uint64_t)isa;
  fill(&d, &rng);
  static const char *const kinds[] = {"4",   "1",    "41",       "14",      "44",
                                      "11",  "414",  "1414",     "44444444", "11111111"};
  static const size_t ns[] = {0, 1, 5, 8, 15, 16, 17, 31, 33, 63, 64, 65, 100, 257, 1031};
  for (size_t a = 0; a < sizeof kinds / sizeof *kinds; a++)
    for (int mask_mode = 0; mask_mode < 3; mask_mode++)
      for (size_t b = 0; b < sizeof ns / sizeof *ns; b++) {
        size_t off = b % 3; /* unaligned sources */
        i8t_grad_span s = make_span(&d, kinds[a], mask_mode, off, &rng);
        check_span(t, &s, ns[b], &rng);
      }
  /* Non-finite sums: NaN from the absmax unless the mask hides them. */
  i8t_grad_span s = make_span(&d, "41", 1, 0, &rng);
  s.sc[0] = 1e38f;
  d.mask[40] = 1, d.s32[0][40] = INT32_MAX;
  float a = t->grad_sum_absmax.run(100, &s, NULL);
  assert_true(a != a);
  for (size_t i = 0; i < 100; i++) d.mask[i] = d.s32[0][i] > 1 || d.s32[0][i] < -1 ? 0 : 1;
  a = t->grad_sum_absmax.run(100, &s, NULL);
  assert_true(isfinite(a));
}

/* ---- end to end: i8t_sum_act_backward_mask_u8 ---- */


/* Reference of the whole backward: per-element sum in source order (pooled
 * sources broadcast over each sample's rows), mask, absmax over the tensor,
 * symmetric 8-bit scale, stochastic rounding on the element's counter. */
static void ref_backward(const i8t_grad_src *src, int ns, const uint8_t *mask, i8t_act_shape sh,
                         i8t_rounding r, int8_t *q, float *scale) {
  size_t C = sh.channels, n = sh.batch * sh.spatial * C;
  float *v = malloc(n * sizeof *v), m = 0.0f;
  for (size_t i = 0; i < n; i++) {
    float acc = 0.0f;
    for (int k = 0; k < ns; k++) {
      float x;
      if (src[k].kind == I8T_GRAD_S8) x = (float)((const int8_t *)src[k].data)[i];
      else if (src[k].kind == I8T_GRAD_S32) x = (float)((const int32_t *)src[k].data)[i];
      else x = (float)((const int32_t *)src[k].data)[(i / C / sh.spatial) * C + i % C];
      float t = src[k].scale * x;
      acc = acc + t;
    }
    v[i] = mask && !mask[i] ? 0.0f : acc;
    m = fabsf(v[i]) > m ? fabsf(v[i]) : m;
  }
  *scale = i8t_qparams_symmetric(m, 8).scale;
  float inv = 1.0f / *scale;
  for (size_t i = 0; i < n; i++) {
    uint64_t c = r.counter + i;
    i8t_noise noise = {r.stochastic, i8t_rng_key(r.seed, (uint32_t)(c >> 32)), (uint32_t)c};
    q[i] = ref_quantize(v[i], inv, noise, 0);
  }
  free(v);
}

static void check_backward_case(i8t_act_shape sh, const char *kinds, int mask_mode,
                                uint64_t counter, uint64_t *rng) {
  size_t C = sh.channels, n = sh.batch * sh.spatial * C;
  int ns = (int)strlen(kinds);
  i8t_grad_src src[4];
  void *bufs[4];
  for (int k = 0; k < ns; k++) {
    size_t cnt = kinds[k] == 'p' ? sh.batch * C : n;
    if (kinds[k] == '1') {
      int8_t *p = malloc(cnt);
      for (size_t i = 0; i < cnt; i++) p[i] = (int8_t)test_rand(rng);
      for (size_t i = 0; i < cnt; i += 29) p[i] = -128;
      bufs[k] = p;
      src[k] = (i8t_grad_src){I8T_GRAD_S8, p, test_rand_float(rng, 0.001f, 0.01f)};
    } else {
      int32_t *p = malloc(cnt * 4);
      for (size_t i = 0; i < cnt; i++) p[i] = test_rand_range(rng, -2000000, 2000000);
      for (size_t i = 0; i < cnt; i += 31) p[i] = INT32_MIN;
      bufs[k] = p;
      src[k] = (i8t_grad_src){kinds[k] == 'p' ? I8T_GRAD_S32_POOLED : I8T_GRAD_S32, p,
                              test_rand_float(rng, 1e-9f, 1e-8f)};
    }
  }
  uint8_t *mask = malloc(n);
  for (size_t i = 0; i < n; i++) mask[i] = test_rand(rng) & 1;
  for (size_t i = 0; i < C * sh.spatial && i < n; i++) mask[i] = 0; /* a sample all masked */
  const uint8_t *mk = mask_mode ? mask : NULL;
  i8t_rounding r = {1, test_rand(rng), counter};
  int8_t *want = malloc(n), *got = malloc(n);
  float ws_scale, got_scale;
  ref_backward(src, ns, mk, sh, r, want, &ws_scale);
  for (int threads = 1; threads <= 2; threads++) {
    i8t_context *ctx;
    i8t_workspace *ws = test_workspace(threads, &ctx);
    assert_int_equal(i8t_sum_act_backward_mask_u8(ws, src, ns, mk, sh, r, got, &got_scale),
                     I8T_OK);
    assert_true(got_scale == ws_scale);
    for (size_t i = 0; i < n; i++)
      if (got[i] != want[i])
        fail_msg("%s %s threads %d gpre[%zu] = %d vs %d", i8t_isa_name(i8t_isa_selected()),
                 kinds, threads, i, got[i], want[i]);
    /* The first pass on its own over two row ranges, then the one-pass
     * backward given its maximum: the same bytes and scale. */
    size_t rows = sh.batch * sh.spatial, cut = rows / 3;
    float a0, a1;
    assert_int_equal(i8t_grad_sum_absmax_u8(src, ns, mk, sh, 0, cut, &a0, NULL), I8T_OK);
    assert_int_equal(i8t_grad_sum_absmax_u8(src, ns, mk, sh, cut, rows, &a1, NULL), I8T_OK);
    float absmax = a0 > a1 ? a0 : a1;
    assert_true(i8t_qparams_symmetric(absmax, 8).scale == ws_scale);
    memset(got, 0x55, n);
    assert_int_equal(i8t_sum_act_backward_mask_absmax_u8(ws, src, ns, mk, sh, absmax, r, got,
                                                         &got_scale),
                     I8T_OK);
    assert_true(got_scale == ws_scale);
    assert_memory_equal(got, want, n);
    /* The sum itself as the one float source, unmasked: the same bytes. */
    float *sum = malloc(n * sizeof *sum), s0, s1;
    assert_int_equal(i8t_grad_sum_absmax_u8(src, ns, mk, sh, 0, cut, &s0, sum), I8T_OK);
    assert_int_equal(i8t_grad_sum_absmax_u8(src, ns, mk, sh, cut, rows, &s1, sum), I8T_OK);
    assert_true(s0 == a0 && s1 == a1);
    i8t_grad_src folded = {I8T_GRAD_F32, sum, 1.0f};
    memset(got, 0x55, n);
    assert_int_equal(i8t_sum_act_backward_mask_absmax_u8(ws, &folded, 1, NULL, sh, absmax, r,
                                                         got, &got_scale),
                     I8T_OK);
    assert_true(got_scale == ws_scale);
    assert_memory_equal(got, want, n);
    free(sum);
    test_workspace_free(ws, ctx);
  }
  for (int k = 0; k < ns; k++) free(bufs[k]);
  free(mask), free(want), free(got);
}

static void check_backward(i8t_isa isa) {
  if (!i8t_kernels_for_isa(isa)) skip();
  i8t_isa before = i8t_isa_selected();
  assert_int_equal(i8t_isa_select(isa), I8T_OK);
  uint64_t rng = 0xBAC0 + (uint64_t)isa;
  const i8t_act_shape shapes[] = {{3, 5, 7}, {4, 16, 64}, {2, 49, 16}};
  const char *const kinds[] = {"4", "1", "41p", "p4"};
  for (size_t a = 0; a < 3; a++)
    for (size_t b = 0; b < 4; b++) {
      check_backward_case(shapes[a], kinds[b], 1, 5 + a, &rng);
      check_backward_case(shapes[a], kinds[b], 0, (1ull << 32) - 37, &rng); /* key changes */
    }
  assert_int_equal(i8t_isa_select(before), I8T_OK);
}

/* The split first pass: bad arguments are refused, a non-finite value gives
 * NaN, which the one-pass backward reports. */
static void test_absmax_errors(void **state) {
  (void)state;
  int32_t g32[8] = {1, -2, 3, -4, 5, -6, 7, -8};
  int8_t g8[8] = {0};
  float f[8] = {0};
  uint8_t mask[8] = {1, 1, 1, 1, 1, 1, 1, 0};
  i8t_act_shape sh = {2, 2, 2};
  i8t_grad_src src[2] = {{I8T_GRAD_S32, g32, 0.5f}, {I8T_GRAD_S8, g8, 1.0f}};
  float m;
  assert_int_equal(i8t_grad_sum_absmax_u8(src, 2, mask, sh, 0, 4, &m, NULL), I8T_OK);
  assert_true(m == 3.5f); /* -8 * 0.5 is masked */
  assert_int_equal(i8t_grad_sum_absmax_u8(src, 2, NULL, sh, 1, 2, &m, NULL), I8T_OK);
  assert_true(m == 2.0f); /* row 1: 1.5, -2 */
  assert_int_equal(i8t_grad_sum_absmax_u8(src, 2, mask, sh, 0, 5, &m, NULL), I8T_ERR_SHAPE);
  assert_int_equal(i8t_grad_sum_absmax_u8(src, 2, mask, sh, 3, 2, &m, NULL), I8T_ERR_SHAPE);
  assert_int_equal(i8t_grad_sum_absmax_u8(src, 2, mask, sh, 0, 4, NULL, NULL), I8T_ERR_INVALID_ARG);
  i8t_grad_src with_f32[2] = {src[0], {I8T_GRAD_F32, f, 1.0f}};
  assert_int_equal(i8t_grad_sum_absmax_u8(with_f32, 2, mask, sh, 0, 4, &m, NULL), I8T_ERR_INVALID_ARG);
  i8t_context *ctx;
  i8t_workspace *ws = test_workspace(1, &ctx);
  int8_t q[8];
  float scale;
  i8t_rounding r = {1, 7, 0};
  assert_int_equal(i8t_sum_act_backward_mask_absmax_u8(ws, with_f32, 2, mask, sh, 4.0f, r, q,
                                                       &scale),
                   I8T_OK); /* float sources take the unfused quantize pass */
  assert_int_equal(i8t_sum_act_backward_mask_absmax_u8(ws, src, 2, mask, sh, -1.0f, r, q, &scale),
                   I8T_ERR_INVALID_ARG);
  src[0].scale = INFINITY; /* 0 * inf is NaN, the others inf */
  assert_int_equal(i8t_grad_sum_absmax_u8(src, 2, mask, sh, 0, 4, &m, NULL), I8T_OK);
  assert_true(m != m);
  assert_int_equal(i8t_sum_act_backward_mask_absmax_u8(ws, src, 2, mask, sh, m, r, q, &scale),
                   I8T_ERR_NONFINITE);
  test_workspace_free(ws, ctx);
}

#define DEFINE_ISA_TEST(name, isa)                                                         \
  static void test_kernels_##name(void **state) { (void)state; check_kernels(isa); }      \
  static void test_backward_##name(void **state) { (void)state; check_backward(isa); }
I8T_TEST_ISAS(DEFINE_ISA_TEST)
#define LIST_ISA_TEST(name, isa) cmocka_unit_test(test_kernels_##name), \
                                 cmocka_unit_test(test_backward_##name),

int main(void) {
  const struct CMUnitTest tests[] = {I8T_TEST_ISAS(LIST_ISA_TEST)
                                         cmocka_unit_test(test_absmax_errors)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
