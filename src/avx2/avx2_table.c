/* The avx2 kernel table (AVX2 + FMA CPUs): the generic table with the AVX2
 * GEMM kernel, packers, quantizers and reductions. */
#include "../nn_kernels.h"
#include "../x86/x86_kernels.h"

/* One kernel for the three GEMMs (see gemm_avx2.c); only the names differ.
 * Blocking: a 4 x kc int16 A panel and the 16 x kc B panel stay in L1
 * (kc = 512: 4 KiB + 32 KiB), the mc x kc A block in L2. */
static i8t_gemm_ukernel avx2_ukernel(const char *name) {
  return (i8t_gemm_ukernel){.name = name,
                            .run = i8t_gemm_s16s16s32_ukernel_4x16c2__avx2,
                            .run_ex = i8t_gemm_s16s16s32_ukernel_ex_4x16c2__avx2,
                            .pack_a = i8t_pack_a_c2s16__avx2,
                            .pack_b = i8t_pack_b_c2s16__avx2,
                            .mr = 4, .nr = 16, .kr = 2,
                            .a_elem = I8T_PACK_S16, .b_elem = I8T_PACK_S16,
                            .mc = 192, .kc = 512, .nc = 512};
}

void i8t_init_table_avx2(i8t_kernel_table *t) {
  i8t_init_table_generic(t);
  t->isa = I8T_ISA_AVX2;
  t->gemm_u8s8s32 = avx2_ukernel("gemm_u8s8s32_4x16c2__avx2");
  t->gemm_s8s8s32 = avx2_ukernel("gemm_s8s8s32_4x16c2__avx2");
  t->gemm_s16u8s32 = avx2_ukernel("gemm_s16u8s32_4x16c2__avx2");
  I8T_X86_SET_ELEMENTWISE(t, avx2);
  I8T_NN_SET(t, avx2);
  /* The stem's kernels from the x86 template, the forward on the s16 image
   * (vpmaddwd: no u8 x s8 dot step without saturation). */
  I8T_X86_SET_STEM(t, avx2, 1);
}
