/* X-macro list of every kernel path: adding an ISA is one line here, and every
 * parameterized test then runs on it (or skips it where the CPU lacks it). */
#define I8T_TEST_ISAS(X) \
  X(generic, I8T_ISA_GENERIC) \
  X(avx2, I8T_ISA_AVX2) \
  X(avx512vnni, I8T_ISA_AVX512VNNI) \
  X(neon, I8T_ISA_NEON) \
  X(neondot, I8T_ISA_NEONDOT)
