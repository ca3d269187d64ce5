/* The generic kernel table: portable C for every entry. */
#include "../nn_kernels.h"
#include "generic_kernels.h"

void i8t_init_table_generic(i8t_kernel_table *t) {
  *t = (i8t_kernel_table){
      .isa = I8T_ISA_GENERIC,
      .gemm_u8s8s32 = {.name = "gemm_u8s8s32_4x8__generic",
                       .run = i8t_gemm_u8s8s32_ukernel_4x8__generic,
                       .mr = 4, .nr = 8, .kr = 1,
                       .a_elem = I8T_PACK_S16, .b_elem = I8T_PACK_S8},
      .gemm_s8s8s32 = {.name = "gemm_s8s8s32_4x8__generic",
                       .run = i8t_gemm_s8s8s32_ukernel_4x8__generic,
                       .mr = 4, .nr = 8, .kr = 1,
                       .a_elem = I8T_PACK_S8, .b_elem = I8T_PACK_S8},
      .gemm_s16u8s32 = {.name = "gemm_s16u8s32_4x8__generic",
                        .run = i8t_gemm_s16u8s32_ukernel_4x8__generic,
                        .mr = 4, .nr = 8, .kr = 1,
                        .a_elem = I8T_PACK_S16, .b_elem = I8T_PACK_S16},
      .minmax_f32 = {"minmax_f32__generic", i8t_minmax_f32__generic},
      .quantize_f32_u8 = {"quantize_f32_u8__generic", i8t_quantize_f32_u8__generic},
      .quantize_f32_s8 = {"quantize_f32_s8__generic", i8t_quantize_f32_s8__generic},
      .quantize_f32_s16 = {"quantize_f32_s16__generic", i8t_quantize_f32_s16__generic},
      .colwise_stats_u8 = {"colwise_stats_u8__generic", i8t_colwise_stats_u8__generic},
      .conv3x3_c1_fwd = {"conv3x3_c1_fwd__generic", i8t_conv3x3_c1_fwd__generic},
      .conv3x3_c1_wgrad = {"conv3x3_c1_wgrad__generic", i8t_conv3x3_c1_wgrad__generic},
  };
  I8T_NN_SET(t, generic);
}
