/* The avx512vnni kernel table (AVX-512 F/BW/VL + VNNI CPUs, or any AVX2 CPU
 * in the SIMDe emulation build): the generic table with the VNNI GEMM
 * kernels, packers, quantizers and reductions. */
#include "../nn_kernels.h"
#include "../x86/x86_kernels.h"

/* u8 x s8 kernels (vpdpbusd; s8 A is packed as u8 = a + 128). The wide
 * 8 x 32 tile: its 32 x kc B panel (32 KiB at kc = 1024) stays in L1 while
 * the 8-row A panels stream past it from L2 (the mc x kc A block: 384 KiB).
 * A large kc saves passes over C, a large mc re-packs B less often. The
 * narrow 16 x 16 tile (N <= 16) keeps the same blocking. */
static i8t_gemm_ukernel vnni_u8s8_ukernel(const char *name, i8t_gemm_ukernel_fn run,
                                          i8t_gemm_ukernel_ex_fn run_ex, i8t_sum_b_fn sum_b,
                                          uint8_t mr, uint8_t nr) {
  return (i8t_gemm_ukernel){.name = name, .run = run, .run_ex = run_ex,
                            .pack_a = i8t_pack_a_c4x8__avx512vnni,
                            .pack_b = i8t_pack_b_c4x8__avx512vnni,
                            .sum_b = sum_b, .mr = mr, .nr = nr, .kr = 4,
                            .a_elem = I8T_PACK_U8, .b_elem = I8T_PACK_S8,
                            .mc = 384, .kc = 1024, .nc = 512};
}

/* int16 x int16 kernels (vpdpwssd) of the weight gradient: u8 B widened to
 * int16 (b - zp) while packing. */
static i8t_gemm_ukernel vnni_s16_ukernel(const char *name, i8t_gemm_ukernel_fn run,
                                         i8t_gemm_ukernel_ex_fn run_ex, uint8_t mr, uint8_t nr) {
  return (i8t_gemm_ukernel){.name = name, .run = run, .run_ex = run_ex,
                            .pack_a = i8t_pack_a_c2s16__avx512vnni,
                            .pack_b = i8t_pack_b_c2s16__avx512vnni,
                            .mr = mr, .nr = nr, .kr = 2,
                            .a_elem = I8T_PACK_S16, .b_elem = I8T_PACK_S16,
                            .mc = 192, .kc = 256, .nc = 512};
}

#define VNNI_U8S8_8X32(NAME)                                                     \
  vnni_u8s8_ukernel(NAME, i8t_gemm_u8s8s32_ukernel_8x32c4__avx512vnni,            \
                    i8t_gemm_u8s8s32_ukernel_ex_8x32c4__avx512vnni,               \
                    i8t_sum_b_8x32c4__avx512vnni, 8, 32)
#define VNNI_U8S8_16X16(NAME)                                                    \
  vnni_u8s8_ukernel(NAME, i8t_gemm_u8s8s32_ukernel_16x16c4__avx512vnni,           \
                    i8t_gemm_u8s8s32_ukernel_ex_16x16c4__avx512vnni,              \
                    i8t_sum_b_16x16c4__avx512vnni, 16, 16)

void i8t_init_table_avx512vnni(i8t_kernel_table *t) {
  i8t_init_table_generic(t);
  t->isa = I8T_ISA_AVX512VNNI;
  t->gemm_u8s8s32 = VNNI_U8S8_8X32("gemm_u8s8s32_8x32c4__avx512vnni");
  t->gemm_s8s8s32 = VNNI_U8S8_8X32("gemm_s8s8s32_8x32c4__avx512vnni");
  t->gemm_s16u8s32 = vnni_s16_ukernel("gemm_s16u8s32_8x32c2__avx512vnni",
                                      i8t_gemm_s16s16s32_ukernel_8x32c2__avx512vnni,
                                      i8t_gemm_s16s16s32_ukernel_ex_8x32c2__avx512vnni, 8, 32);
  /* Narrow variants: the driver runs them for N <= 16 (kernel_table.h). */
  t->gemm_u8s8s32_narrow = VNNI_U8S8_16X16("gemm_u8s8s32_16x16c4__avx512vnni");
  t->gemm_s8s8s32_narrow = VNNI_U8S8_16X16("gemm_s8s8s32_16x16c4__avx512vnni");
  t->gemm_s16u8s32_narrow = vnni_s16_ukernel("gemm_s16u8s32_16x16c2__avx512vnni",
                                             i8t_gemm_s16s16s32_ukernel_16x16c2__avx512vnni,
                                             i8t_gemm_s16s16s32_ukernel_ex_16x16c2__avx512vnni,
                                             16, 16);
  I8T_X86_SET_ELEMENTWISE(t, avx512vnni);
  I8T_NN_SET(t, avx512vnni);
  I8T_X86_SET_STEM(t, avx512vnni, 0);
}
