/* The neon kernel table (every aarch64 core): the generic table with the
 * Advanced SIMD GEMMs, quantizers (BN backward's s8 + s16 pass, the GEMM
 * outputs' requantize and the u8 sums' among them) and reductions. */
#include "neon_kernels.h"

void i8t_init_table_neon(i8t_kernel_table *t) {
  i8t_init_table_generic(t);
  t->isa = I8T_ISA_NEON;
  t->gemm_u8s8s32 = (i8t_gemm_ukernel){.name = "gemm_u8s8s32_4x4c16__neon",
                                       .run = i8t_gemm_u8s8s32_ukernel_4x4c16__neon,
                                       .mr = 4, .nr = 4, .kr = 16,
                                       .a_elem = I8T_PACK_S8, .b_elem = I8T_PACK_S8};
  t->gemm_s8s8s32 = (i8t_gemm_ukernel){.name = "gemm_s8s8s32_4x4c16__neon",
                                       .run = i8t_gemm_s8s8s32_ukernel_4x4c16__neon,
                                       .mr = 4, .nr = 4, .kr = 16,
                                       .a_elem = I8T_PACK_S8, .b_elem = I8T_PACK_S8};
  t->gemm_s16u8s32 = (i8t_gemm_ukernel){.name = "gemm_s16u8s32_8x8__neon",
                                        .run = i8t_gemm_s16u8s32_ukernel_8x8__neon,
                                        .mr = 8, .nr = 8, .kr = 1,
                                        .a_elem = I8T_PACK_S16, .b_elem = I8T_PACK_S16};
  I8T_TABLE_SET(t, minmax_f32, neon);
  I8T_TABLE_SET(t, quantize_f32_u8, neon);
  I8T_TABLE_SET(t, quantize_f32_s8, neon);
  I8T_TABLE_SET(t, quantize_f32_s16, neon);
  I8T_TABLE_SET(t, colwise_stats_u8, neon);
  I8T_TABLE_SET(t, quantize_f32_s8s16, neon);
  I8T_TABLE_SET(t, requantize_s32_u8, neon);
  I8T_TABLE_SET(t, affine_quantize_u8, neon);
}
