/* The GEMM harness: every GEMM kind on every ISA path (isa_list.h) against a
 * plain int64 reference, over a table of shapes (K = 1, K not a multiple of
 * any block, M or N = 1, odd sizes, padded and transposed operands) and value
 * patterns (random, all-extreme, mixed extremes), plus K large enough that
 * naive int32 sums would overflow. Every result must be bit-exact. Narrow
 * outputs (N = 1..16, which run the narrow microkernels where a path has
 * them, see kernel_table.h) get a sweep of their own. */
#include <stdlib.h>
#include <string.h>

#include "isa_list.h"
#include "kernel_table.h"
#include "test_util.h"

typedef enum { KIND_U8S8, KIND_S8S8, KIND_S16U8 } gemm_kind;

typedef struct shape {
  size_t M, N, K;
  int a_transposed; /* A stored K x M (column-major view) */
  size_t a_pad;     /* extra elements per stored row of A */
} shape;

static const shape shapes[] = {
    {1, 1, 1, 0, 0},     {1, 7, 1, 0, 0},     {4, 8, 16, 0, 0},    {5, 9, 17, 0, 3},
    {13, 1, 33, 0, 0},   {1, 33, 300, 0, 0},  {37, 29, 301, 0, 5}, {64, 64, 64, 0, 0},
    {100, 70, 515, 1, 0}, {3, 5, 1030, 0, 0}, {17, 130, 600, 1, 2}, {200, 48, 96, 0, 0},
    {48, 200, 257, 1, 0}, {31, 67, 1, 0, 0},  {96, 33, 1153, 0, 0},
    /* tasks spanning several MC blocks that share packed B over several KC blocks */
    {400, 40, 600, 0, 0}, {390, 20, 530, 1, 1},
    /* narrow outputs: whole and partial 16-column panels, rows past a 16-row
     * tile, several MC and KC blocks */
    {50, 16, 37, 0, 0},  {33, 16, 144, 1, 0}, {100, 12, 151, 0, 2}, {17, 15, 4, 0, 0},
    {400, 16, 600, 0, 0}, {161, 14, 1100, 0, 1},
};

typedef enum { VALUES_RANDOM, VALUES_MAX, VALUES_MIN_MAX, VALUES_EXTREME_MIX } value_mode;

typedef struct operands {
  void *a, *b;
  size_t lda;     /* stored row length of A (K + pad, or M + pad if transposed) */
  int32_t zp;     /* zero point of the u8 operand */
} operands;

static int32_t pick(uint64_t *rng, value_mode mode, int32_t lo, int32_t hi, int first) {
  switch (mode) {
    case VALUES_RANDOM: return test_rand_range(rng, lo, hi);
    case VALUES_MAX: return hi;
    case VALUES_MIN_MAX: return first ? hi : lo;
    default: return (test_rand(rng) & 1) ? hi : lo;
  }
}

/* A's range: u8 [0,255] for u8s8, s8 [-127,127] for s8s8, s16 for s16u8. */
static void range_of_a(gemm_kind k, int32_t *lo, int32_t *hi) {
  *lo = k == KIND_U8S8 ? 0 : k == KIND_S8S8 ? -127 : -32767;
  *hi = k == KIND_U8S8 ? 255 : k == KIND_S8S8 ? 127 : 32767;
}
static void range_of_b(gemm_kind k, int32_t *lo, int32_t *hi) {
  *lo = k == KIND_S16U8 ? 0 : -127;
  *hi = k == KIND_S16U8 ? 255 : 127;
}
static size_t a_esize(gemm_kind k) { return k == KIND_S16U8 ? 2 : 1; }

static int32_t get(const void *p, size_t i, int elem /*0 u8 1 s8 2 s16*/) {
  return elem == 0 ? ((const uint8_t *)p)[i] : elem == 1 ? ((const int8_t *)p)[i] : ((const int16_t *)p)[i];
}
static void put(void *p, size_t i, int elem, int32_t v) {
  if (elem == 0) ((uint8_t *)p)[i] = (uint8_t)v;
  else if (elem == 1) ((int8_t *)p)[i] = (int8_t)v;
  else ((int16_t *)p)[i] = (int16_t)v;
}
static int a_elem(gemm_kind k) { return k == KIND_U8S8 ? 0 : k == KIND_S8S8 ? 1 : 2; }
static int b_elem(gemm_kind k) { return k == KIND_S16U8 ? 0 : 1; }

static size_t a_index(const shape *s, const operands *o, size_t m, size_t k) {
  return s->a_transposed ? k * o->lda + m : m * o->lda + k;
}

static void make_operands(gemm_kind kind, const shape *s, value_mode mode, uint64_t *rng,
                          operands *o) {
  int32_t alo, ahi, blo, bhi;
  range_of_a(kind, &alo, &ahi);
  range_of_b(kind, &blo, &bhi);
  o->lda = (s->a_transposed ? s->M : s->K) + s->a_pad;
  size_t a_rows = s->a_transposed ? s->K : s->M;
  o->a = calloc(a_rows * o->lda, a_esize(kind));
  o->b = calloc(s->K * s->N, 1);
  for (size_t m = 0; m < s->M; m++)
    for (size_t k = 0; k < s->K; k++)
      put(o->a, a_index(s, o, m, k), a_elem(kind), pick(rng, mode, alo, ahi, 1));
  for (size_t i = 0; i < s->K * s->N; i++) put(o->b, i, b_elem(kind), pick(rng, mode, blo, bhi, 0));
  /* Zero points: random, or the extreme that maximises |a - zp|. */
  o->zp = mode == VALUES_RANDOM ? test_rand_range(rng, 0, 255) : (mode == VALUES_MAX ? 0 : 255);
}

static int64_t reference(gemm_kind kind, const shape *s, const operands *o, size_t m, size_t n) {
  int64_t acc = 0;
  for (size_t k = 0; k < s->K; k++) {
    int64_t a = get(o->a, a_index(s, o, m, k), a_elem(kind));
    int64_t b = get(o->b, k * s->N + n, b_elem(kind));
    if (kind == KIND_U8S8) a -= o->zp;
    if (kind == KIND_S16U8) b -= o->zp;
    acc += a * b;
  }
  return acc;
}

static void run_and_check(gemm_kind kind, const shape *s, const operands *o) {
  i8t_matrix A = {o->a, s->a_transposed ? 1 : o->lda, s->a_transposed ? o->lda : 1};
  i8t_matrix B = {o->b, s->N, 1};
  size_t ldc = s->N + 3; /* a padded C checks that the driver honours ldc */
  int32_t *c32 = NULL;
  int64_t *c64 = NULL;
  i8t_status st;
  if (kind == KIND_S16U8) {
    c64 = malloc(s->M * ldc * sizeof *c64);
    st = i8t_gemm_s16u8s64(NULL, s->M, s->N, s->K, A, B, (uint8_t)o->zp, c64, ldc);
  } else {
    c32 = malloc(s->M * ldc * sizeof *c32);
    st = kind == KIND_U8S8
             ? i8t_gemm_u8s8s32(NULL, s->M, s->N, s->K, A, (uint8_t)o->zp, B, c32, ldc)
             : i8t_gemm_s8s8s32(NULL, s->M, s->N, s->K, A, B, c32, ldc);
  }
  assert_int_equal(st, I8T_OK);
  size_t wrong = 0;
  for (size_t m = 0; m < s->M; m++) {
    for (size_t n = 0; n < s->N; n++) {
      int64_t want = reference(kind, s, o, m, n);
      int64_t got = c64 ? c64[m * ldc + n] : c32[m * ldc + n];
      if (got != want && wrong++ < 3)
        print_error("M=%zu N=%zu K=%zu: C[%zu][%zu] = %lld, expected %lld\n", s->M, s->N,
                    s->K, m, n, (long long)got, (long long)want);
    }
  }
  free(c32);
  free(c64);
  assert_int_equal(wrong, 0);
}

/* One GEMM of shape s on fresh operands of the given value pattern. */
static void check_values(gemm_kind kind, const shape *s, value_mode mode, uint64_t *rng) {
  operands o;
  make_operands(kind, s, mode, rng, &o);
  run_and_check(kind, s, &o);
  free(o.a);
  free(o.b);
}

static void check_all_shapes(gemm_kind kind) {
  uint64_t rng = 0x1234567 + (uint64_t)kind;
  for (int mode = VALUES_RANDOM; mode <= VALUES_EXTREME_MIX; mode++) {
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
      check_values(kind, &shapes[i], (value_mode)mode, &rng);
    }
  }
}

/* Every N from 1 to 16, M around multiples of 8, 12 and 16 rows, K never a
 * multiple of 4 (a K tail in every group), A row-major or transposed. */
static void check_narrow_sweep(gemm_kind kind) {
  uint64_t rng = 0x77 + (uint64_t)kind;
  for (size_t N = 1; N <= 16; N++) {
    const shape s = {23 + 3 * N, N, 4 * N + 1 + N % 3, (int)(N & 1), N % 4};
    for (int mode = VALUES_RANDOM; mode <= VALUES_EXTREME_MIX; mode++)
      check_values(kind, &s, (value_mode)mode, &rng);
  }
}

/* The driver runs a path's narrow kernel exactly when N fits in it, and
 * i8t_gemm_panel_width reports the NR that runs. */
static void check_narrow_selection(i8t_isa isa) {
  const i8t_kernel_table *t = i8t_kernels_for_isa(isa);
  const i8t_gemm_ukernel *wide[3] = {&t->gemm_u8s8s32, &t->gemm_s8s8s32, &t->gemm_s16u8s32};
  const i8t_gemm_ukernel *narrow[3] = {&t->gemm_u8s8s32_narrow, &t->gemm_s8s8s32_narrow,
                                       &t->gemm_s16u8s32_narrow};
  for (int k = 0; k < 3; k++) {
    i8t_gemm_kind kind = (i8t_gemm_kind)k;
    assert_ptr_equal(i8t_gemm_ukernel_for(t, kind, (size_t)wide[k]->nr + 1), wide[k]);
    assert_int_equal(i8t_gemm_panel_width(kind, 1000), wide[k]->nr);
    if (!narrow[k]->run) {
      assert_ptr_equal(i8t_gemm_ukernel_for(t, kind, 1), wide[k]);
      continue;
    }
    assert_true(narrow[k]->nr < wide[k]->nr);
    assert_int_equal(narrow[k]->kr, wide[k]->kr); /* same packed format */
    assert_ptr_equal(i8t_gemm_ukernel_for(t, kind, 1), narrow[k]);
    assert_ptr_equal(i8t_gemm_ukernel_for(t, kind, narrow[k]->nr), narrow[k]);
    assert_ptr_equal(i8t_gemm_ukernel_for(t, kind, (size_t)narrow[k]->nr + 1), wide[k]);
    assert_int_equal(i8t_gemm_panel_width(kind, narrow[k]->nr), narrow[k]->nr);
  }
}

/* K at the int32-exact limit with all-extreme operands: any int16 or
 * early int32 saturation, or a wrong zero-point correction, shows here. */
static void check_large_k(gemm_kind kind) {
  uint64_t rng = 99;
  size_t K = kind == KIND_S16U8 ? 20000 : I8T_GEMM_MAX_K;
  const shape s = {3, 5, K, 0, 0};
  for (int mode = VALUES_MAX; mode <= VALUES_EXTREME_MIX; mode++)
    check_values(kind, &s, (value_mode)mode, &rng);
}

#define DEFINE_ISA_TESTS(name, isa)                                                          \
  static void test_u8s8_##name(void **state) { (void)state; test_select_isa_or_skip(isa); check_all_shapes(KIND_U8S8); } \
  static void test_s8s8_##name(void **state) { (void)state; test_select_isa_or_skip(isa); check_all_shapes(KIND_S8S8); } \
  static void test_s16u8_##name(void **state) { (void)state; test_select_isa_or_skip(isa); check_all_shapes(KIND_S16U8); } \
  static void test_large_k_##name(void **state) {                                              \
    (void)state;                                                                               \
    test_select_isa_or_skip(isa);                                                              \
    check_large_k(KIND_U8S8);                                                                  \
    check_large_k(KIND_S8S8);                                                                  \
    check_large_k(KIND_S16U8);                                                                 \
  }                                                                                            \
  static void test_narrow_##name(void **state) {                                               \
    (void)state;                                                                               \
    test_select_isa_or_skip(isa);                                                              \
    check_narrow_selection(isa);                                                               \
    check_narrow_sweep(KIND_U8S8);                                                             \
    check_narrow_sweep(KIND_S8S8);                                                             \
    check_narrow_sweep(KIND_S16U8);                                                            \
  }
I8T_TEST_ISAS(DEFINE_ISA_TESTS)

static void test_rejects_bad_shapes(void **state) {
  (void)state;
  uint8_t a[4] = {0};
  int8_t b[4] = {0};
  int32_t c[4];
  i8t_matrix A = {a, 2, 1}, B = {b, 2, 1};
  assert_int_equal(i8t_gemm_u8s8s32(NULL, 0, 2, 2, A, 0, B, c, 2), I8T_ERR_SHAPE);
  assert_int_equal(i8t_gemm_u8s8s32(NULL, 2, 2, 2, A, 0, B, c, 1), I8T_ERR_SHAPE);
  assert_int_equal(i8t_gemm_u8s8s32(NULL, 1, 1, I8T_GEMM_MAX_K + 1, A, 0, B, c, 1), I8T_ERR_SHAPE);
  i8t_matrix null_a = {NULL, 2, 1};
  assert_int_equal(i8t_gemm_s8s8s32(NULL, 2, 2, 2, null_a, B, c, 2), I8T_ERR_INVALID_ARG);
  assert_true(strlen(i8t_last_error()) > 0);
}

#define LIST_ISA_TESTS(name, isa)                                                    \
  cmocka_unit_test(test_u8s8_##name), cmocka_unit_test(test_s8s8_##name),          \
      cmocka_unit_test(test_s16u8_##name), cmocka_unit_test(test_large_k_##name), \
      cmocka_unit_test(test_narrow_##name),

int main(void) {
  const struct CMUnitTest tests[] = {I8T_TEST_ISAS(LIST_ISA_TESTS)
                                         cmocka_unit_test(test_rejects_bad_shapes)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
