/* The AVX-512 emulation build (cmake -DI8T_AVX512_EMULATION=ON): each
 * i8t_mm512_* shim of src/avx512/avx512_intrinsics.h, and each SIMDe
 * intrinsic the kernels rely on for an exact semantics (NaN operand order of
 * min/max, ordered compares, wrapping multiplies, the VNNI dot products),
 * against scalar C on random inputs read at run time (so that gcc cannot
 * fold the check away). Built only in that build, with its flags. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "avx512/avx512_intrinsics.h"
#include "test_util.h"

enum { ROUNDS = 200 };

static uint64_t rng = 0xC0FFEE;

static float rand_float(void) {
  switch (test_rand(&rng) % 16) {
    case 0: return NAN;
    case 1: return INFINITY;
    case 2: return -0.0f;
    case 3: return (float)test_rand_range(&rng, -1000, 1000) + 0.5f; /* ties */
    default: return test_rand_float(&rng, -3e5f, 3e5f);
  }
}

static void fill_i32(int32_t *x, int n) {
  for (int i = 0; i < n; i++) x[i] = (int32_t)(uint32_t)test_rand(&rng);
}

static uint32_t bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

/* x86 conversion: NaN and out-of-range give INT32_MIN. */
static int32_t cvtt_ref(float x) {
  if (isnan(x) || x >= 2147483648.0f || x < -2147483648.0f) return INT32_MIN;
  return (int32_t)x;
}

static void test_float_shims(void **state) {
  (void)state;
  for (int round = 0; round < ROUNDS; round++) {
    float a[16], b[16], r[16];
    int32_t ri[16], ai[16];
    for (int i = 0; i < 16; i++) a[i] = rand_float(), b[i] = rand_float();
    fill_i32(ai, 16);
    __m512 va = _mm512_loadu_ps(a), vb = _mm512_loadu_ps(b);

    _mm512_storeu_si512(ri, i8t_mm512_cvttps_epi32(va));
    for (int i = 0; i < 16; i++) assert_int_equal(ri[i], cvtt_ref(a[i]));
    _mm512_storeu_ps(r, i8t_mm512_cvtepi32_ps(_mm512_loadu_si512(ai)));
    for (int i = 0; i < 16; i++) assert_true(r[i] == (float)ai[i]);
    _mm512_storeu_ps(r, i8t_mm512_round_even_ps(va));
    for (int i = 0; i < 16; i++) assert_int_equal(bits(r[i]), bits(isnan(a[i]) ? r[i] : nearbyintf(a[i])));
    _mm512_storeu_ps(r, i8t_mm512_floor_ps(va));
    for (int i = 0; i < 16; i++) assert_int_equal(bits(r[i]), bits(isnan(a[i]) ? r[i] : floorf(a[i])));
    for (int i = 0; i < 16; i++) assert_true(isnan(r[i]) == isnan(a[i]));

    /* min/max: b when either is NaN; ordered less-than; masked move. */
    _mm512_storeu_ps(r, _mm512_min_ps(va, vb));
    for (int i = 0; i < 16; i++) assert_int_equal(bits(r[i]), bits(a[i] < b[i] ? a[i] : b[i]));
    _mm512_storeu_ps(r, _mm512_max_ps(va, vb));
    for (int i = 0; i < 16; i++) assert_int_equal(bits(r[i]), bits(a[i] > b[i] ? a[i] : b[i]));
    __mmask16 lt = _mm512_cmp_ps_mask(va, vb, _CMP_LT_OQ);
    _mm512_storeu_ps(r, _mm512_maskz_mov_ps(lt, _mm512_set1_ps(1.0f)));
    for (int i = 0; i < 16; i++) assert_true(r[i] == (a[i] < b[i] ? 1.0f : 0.0f));
  }
}

static void test_integer_shims(void **state) {
  (void)state;
  for (int round = 0; round < ROUNDS; round++) {
    int32_t a[16], b[16], acc[16], r[16];
    int64_t r64[16];
    int16_t r16[16];
    uint8_t r8[16], u8[32];
    uint16_t u16[16], w16[32];
    uint32_t w32[16];
    fill_i32(a, 16), fill_i32(b, 16), fill_i32(acc, 16);
    for (int i = 0; i < 32; i++) u8[i] = (uint8_t)test_rand(&rng);
    for (int i = 0; i < 16; i++) u16[i] = (uint16_t)test_rand(&rng);
    __m512i va = _mm512_loadu_si512(a), vb = _mm512_loadu_si512(b), vacc = _mm512_loadu_si512(acc);

    _mm256_storeu_si256((__m256i *)r16, i8t_mm512_cvtepi32_epi16(va));
    for (int i = 0; i < 16; i++) assert_int_equal(r16[i], (int16_t)a[i]);
    _mm_storeu_si128((__m128i *)r8, i8t_mm512_cvtepi32_epi8(va));
    for (int i = 0; i < 16; i++) assert_int_equal(r8[i], (uint8_t)a[i]);
    _mm512_storeu_si512(r64, i8t_mm512_cvtepi32_epi64(_mm256_loadu_si256((const __m256i *)a)));
    for (int i = 0; i < 8; i++) assert_true(r64[i] == a[i]);
    _mm512_storeu_si512(w16, i8t_mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)u8)));
    for (int i = 0; i < 32; i++) assert_int_equal(w16[i], u8[i]);
    _mm512_storeu_si512(w32, i8t_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)u16)));
    for (int i = 0; i < 16; i++) assert_int_equal(w32[i], u16[i]);
    _mm512_storeu_si512(r, i8t_mm512_join256(i8t_mm512_hi256(va), i8t_mm512_lo256(va)));
    for (int i = 0; i < 16; i++) assert_int_equal(r[i], a[(i + 8) % 16]);

    /* Wrapping 32-bit multiply and add, logical shift (the noise hash). */
    _mm512_storeu_si512(r, _mm512_mullo_epi32(va, vb));
    for (int i = 0; i < 16; i++) assert_int_equal((uint32_t)r[i], (uint32_t)a[i] * (uint32_t)b[i]);
    _mm512_storeu_si512(r, _mm512_srli_epi32(_mm512_add_epi32(va, vb), 13));
    for (int i = 0; i < 16; i++) assert_int_equal((uint32_t)r[i], ((uint32_t)a[i] + (uint32_t)b[i]) >> 13);

    /* VNNI: u8 x s8 and s16 x s16 dot products, accumulated with wrap-around. */
    uint8_t a8[64];
    int8_t b8[64];
    int16_t a16[32], b16[32];
    memcpy(a8, a, 64), memcpy(b8, b, 64), memcpy(a16, a, 64), memcpy(b16, b, 64);
    _mm512_storeu_si512(r, _mm512_dpbusd_epi32(vacc, va, vb));
    for (int i = 0; i < 16; i++) {
      uint32_t want = (uint32_t)acc[i];
      for (int j = 0; j < 4; j++)
        want += (uint32_t)(a8[4 * i + j] * b8[4 * i + j]);
      assert_int_equal((uint32_t)r[i], want);
    }
    _mm512_storeu_si512(r, _mm512_dpwssd_epi32(vacc, va, vb));
    for (int i = 0; i < 16; i++) {
      uint32_t want = (uint32_t)acc[i];
      for (int j = 0; j < 2; j++)
        want += (uint32_t)((int32_t)a16[2 * i + j] * b16[2 * i + j]);
      assert_int_equal((uint32_t)r[i], want);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_float_shims),
                                     cmocka_unit_test(test_integer_shims)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
