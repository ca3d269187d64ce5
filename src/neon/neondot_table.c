/* The neondot kernel table (cores with SDOT): the neon table with the two
 * int8 GEMMs replaced by SDOT tiles. Built with +dotprod like the kernels;
 * dispatch fills it only when HWCAP_ASIMDDP is set. */
#include "neon_kernels.h"

void i8t_init_table_neondot(i8t_kernel_table *t) {
  i8t_init_table_neon(t);
  t->isa = I8T_ISA_NEONDOT;
  t->gemm_u8s8s32 = (i8t_gemm_ukernel){.name = "gemm_u8s8s32_8x8c4__neondot",
                                       .run = i8t_gemm_u8s8s32_ukernel_8x8c4__neondot,
                                       .mr = 8, .nr = 8, .kr = 4,
                                       .a_elem = I8T_PACK_S8, .b_elem = I8T_PACK_S8};
  t->gemm_s8s8s32 = (i8t_gemm_ukernel){.name = "gemm_s8s8s32_8x8c4__neondot",
                                       .run = i8t_gemm_s8s8s32_ukernel_8x8c4__neondot,
                                       .mr = 8, .nr = 8, .kr = 4,
                                       .a_elem = I8T_PACK_S8, .b_elem = I8T_PACK_S8};
}
