/* X-macro list of every kernel path: adding an ISA is one line here, and every
 * parameterized test then runs on it (or skips it where the CPU lacks it). */
#define I8T_TEST_ISAS(X) \
  X(generic, I8T_ISA_GENERIC) \
  X(avx2, I8T_ISA_AVX2) \
  X(avx512vnni, I8T_ISA_AVX512VNNI) \
  X(neon, I8T_ISA_NEON) \
  X(neondot, I8T_ISA_NEONDOT)

/* Defines `static void test_<fn>_<name>(void **state)`, the cmocka test that
 * runs fn(isa) with that ISA selected (skipped where the CPU or the build
 * lacks it) and restores the previous selection. For files that include
 * cmocka and test_util.h (test_select_isa_or_skip). */
#define I8T_ISA_TEST(fn, name, isa)                  \
  static void test_##fn##_##name(void **state) {      \
    i8t_isa before = i8t_isa_selected();              \
    (void)state;                                      \
    test_select_isa_or_skip(isa);                     \
    fn(isa);                                          \
    assert_int_equal(i8t_isa_select(before), I8T_OK); \
  }
