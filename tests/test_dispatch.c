/* Dispatch: names round-trip, the table is complete on every path, the
 * selection can be lowered but never raised above the CPU, and the
 * environment variable is honoured (checked through `int8train info`-like
 * queries in a child process would need the CLI; here via the API). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isa_list.h"
#include "kernel_table.h"
#include "test_util.h"

static void test_isa_names_round_trip(void **state) {
  (void)state;
  for (int i = 0; i < I8T_ISA_COUNT; i++) {
    i8t_isa isa;
    assert_int_equal(i8t_isa_from_name(i8t_isa_name((i8t_isa)i), &isa), I8T_OK);
    assert_int_equal(isa, i);
  }
  i8t_isa isa;
  assert_int_equal(i8t_isa_from_name("sse9", &isa), I8T_ERR_INVALID_ARG);
  assert_non_null(strstr(i8t_last_error(), "sse9"));
}

static void test_generic_always_available(void **state) {
  (void)state;
  assert_true(i8t_isa_available(I8T_ISA_GENERIC));
  assert_true(i8t_isa_available(i8t_isa_best()));
}

static void test_cannot_raise_above_cpu(void **state) {
  (void)state;
  i8t_isa before = i8t_isa_selected();
  for (int i = 0; i < I8T_ISA_COUNT; i++) {
    if (i8t_isa_available((i8t_isa)i)) continue;
    assert_int_equal(i8t_isa_select((i8t_isa)i), I8T_ERR_UNSUPPORTED);
    assert_non_null(strstr(i8t_last_error(), i8t_isa_name((i8t_isa)i)));
    assert_int_equal(i8t_isa_selected(), before);
  }
  assert_int_equal(i8t_isa_select((i8t_isa)99), I8T_ERR_INVALID_ARG);
}

static void check_table_complete(i8t_isa isa) {
  test_select_isa_or_skip(isa);
  assert_int_equal(i8t_isa_selected(), isa);
  const i8t_kernel_table *t = i8t_kernels();
  const i8t_gemm_ukernel *g[3] = {&t->gemm_u8s8s32, &t->gemm_s8s8s32, &t->gemm_s16u8s32};
  for (int i = 0; i < 3; i++) {
    assert_non_null(g[i]->run);
    assert_true(g[i]->mr > 0 && g[i]->nr > 0 && g[i]->kr > 0);
    assert_true(256 % g[i]->kr == 0); /* the s16u8 overflow block must hold whole groups */
  }
  assert_int_equal(t->gemm_s16u8s32.a_elem, I8T_PACK_S16);
  assert_int_equal(t->gemm_s16u8s32.b_elem, I8T_PACK_S16);
  /* every elementwise and layer-pass entry filled */
  assert_true(t->minmax_f32.run && t->quantize_f32_u8.run && t->quantize_f32_s8.run &&
              t->quantize_f32_s16.run && t->colwise_stats_u8.run);
  assert_true(t->requantize_s32_u8.run && t->axpy_s32_f32.run && t->axpy_s8_f32.run &&
              t->affine_u8_f32.run && t->affine_quantize_u8.run && t->bn_lane_extremes.run);
  assert_true(t->minmax_s32.run && t->mask_u8_f32.run &&
              t->mask_pos_f32.run && t->affine_s8_f32.run && t->add_centered_u8_f32.run &&
              t->quantize_f32_s8s16.run && t->bn_col_sums.run);
  assert_true(t->grad_sum_absmax.run && t->grad_sum_quantize_s8.run &&
              t->interleave_pixels_u8_s16.run && t->col2im_s32.run &&
              t->interleave_rows_s16.run);
  assert_int_equal(i8t_kernel_count(), 31);
  for (size_t i = 0; i < i8t_kernel_count(); i++) {
    const char *name = i8t_kernel_name(i), *role = i8t_kernel_role(i);
    assert_non_null(name);
    const char *narrow = strstr(role, "_narrow");
    if (narrow) { /* optional: "(none)", or a kernel of the role's GEMM kind */
      if (strcmp(name, "(none)") == 0) continue;
      assert_int_equal(strncmp(name, role, (size_t)(narrow - role)), 0);
    } else if (strncmp(role, "conv3x3_c1_", 11) == 0 && strcmp(name, "(none)") == 0) {
      continue; /* optional stem kernels */
    } else {
      assert_non_null(strstr(name, role));
    }
    /* Kernel names end in __<isa> (neon kernels may serve neondot). */
    assert_non_null(strstr(name, "__"));
  }
}

/* CI runs the suite on CPUs whose best path it knows and names it in
 * I8T_TEST_EXPECT_ISA (the ARM stage: neondot under qemu -cpu max, neon under
 * -cpu cortex-a53): dispatch must have chosen exactly that path on its own,
 * nothing richer may be available, and the path's table must carry its own
 * GEMM kernels. Runs first, before the other tests change the selection. */
static void test_dispatch_chose_expected_isa(void **state) {
  (void)state;
  const char *want = getenv("I8T_TEST_EXPECT_ISA");
  if (!want || !*want) {
    print_message("[   INFO   ] I8T_TEST_EXPECT_ISA is not set: skipped\n");
    skip();
  }
  i8t_isa isa;
  assert_int_equal(i8t_isa_from_name(want, &isa), I8T_OK);
  assert_string_equal(i8t_isa_name(i8t_isa_best()), want);
  /* INT8TRAIN_ISA may lower the start-up choice, never raise it: CI also runs
   * this with INT8TRAIN_ISA=neondot on a core without SDOT. */
  const char *forced = getenv("INT8TRAIN_ISA");
  i8t_isa forced_isa, selected = isa;
  if (forced && i8t_isa_from_name(forced, &forced_isa) == I8T_OK && i8t_isa_available(forced_isa))
    selected = forced_isa;
  assert_string_equal(i8t_isa_name(i8t_isa_selected()), i8t_isa_name(selected));
  for (int i = isa + 1; i < I8T_ISA_COUNT; i++) assert_false(i8t_isa_available((i8t_isa)i));
  char suffix[32];
  snprintf(suffix, sizeof suffix, "__%s", want);
  const char *gemm = i8t_kernels_for_isa(isa)->gemm_u8s8s32.name;
  size_t len = strlen(gemm), slen = strlen(suffix);
  assert_true(len > slen);
  assert_string_equal(gemm + len - slen, suffix);
}

#define DEFINE_ISA_TEST(name, isa) \
  static void test_table_##name(void **state) { (void)state; check_table_complete(isa); }
I8T_TEST_ISAS(DEFINE_ISA_TEST)
#define LIST_ISA_TEST(name, isa) cmocka_unit_test(test_table_##name),

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dispatch_chose_expected_isa),
      cmocka_unit_test(test_isa_names_round_trip), cmocka_unit_test(test_generic_always_available),
      cmocka_unit_test(test_cannot_raise_above_cpu), I8T_TEST_ISAS(LIST_ISA_TEST)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
