/* AVX-512 VNNI GEMM microkernels and packers.
 *   u8s8, s8s8: A packed u8 (raw u8, or s8 + 128), B packed s8, four K values
 *               per group: vpdpbusd (u8 x s8, 4 products per int32 lane,
 *               no saturation: exact). The driver subtracts (zp or 128) *
 *               colsum(B), see kernel_table.h.
 *   s16u8:      both packed int16 (b - zp on B), two K values per group:
 *               vpdpwssd (exact for these ranges, as vpmaddwd in gemm_avx2.c).
 * Each kind has a wide kernel (NR = 32, two zmm per row) and a narrow one
 * (NR = 16, one zmm per row) for GEMMs of at most 16 columns, with 16 rows:
 * 16 independent dot chains hide vpdpbusd's latency, and convolutions' row
 * counts (28 x 28, 14 x 14 per sample) are multiples of 16, so no edge tiles
 * (12 rows left 4 edge rows per sample, whose packing and copy-out took ~5 %
 * of the 16-channel conv forward; 8, 12 and 16 rows otherwise ran its GEMM
 * within noise, 24 slower). s16u8: 16 rows, resnet8's 16 output channels. */
#include "../x86/x86_kernels.h"
#include "avx512_vec.h"
#include "../x86/x86_pack.h"

I8T_X86_DEFINE_PACKERS(avx512vnni)

#define UK_NAME i8t_gemm_u8s8s32_ukernel_8x32c4__avx512vnni
#define UK_NAME_EX i8t_gemm_u8s8s32_ukernel_ex_8x32c4__avx512vnni
#define UK_SUM_NAME i8t_sum_b_8x32c4__avx512vnni
#define UK_MR 8
#define UK_NV 2
#define UK_KR 4
#define UK_DOT vi_dot_u8s8
#include "../x86/x86_ukernel_template.h"

#define UK_NAME i8t_gemm_s16s16s32_ukernel_8x32c2__avx512vnni
#define UK_NAME_EX i8t_gemm_s16s16s32_ukernel_ex_8x32c2__avx512vnni
#define UK_MR 8
#define UK_NV 2
#define UK_KR 2
#define UK_DOT vi_dot_s16
#include "../x86/x86_ukernel_template.h"

#define UK_NAME i8t_gemm_u8s8s32_ukernel_16x16c4__avx512vnni
#define UK_NAME_EX i8t_gemm_u8s8s32_ukernel_ex_16x16c4__avx512vnni
#define UK_SUM_NAME i8t_sum_b_16x16c4__avx512vnni
#define UK_MR 16
#define UK_NV 1
#define UK_KR 4
#define UK_DOT vi_dot_u8s8
#include "../x86/x86_ukernel_template.h"

#define UK_NAME i8t_gemm_s16s16s32_ukernel_16x16c2__avx512vnni
#define UK_NAME_EX i8t_gemm_s16s16s32_ukernel_ex_16x16c2__avx512vnni
#define UK_MR 16
#define UK_NV 1
#define UK_KR 2
#define UK_DOT vi_dot_s16
#include "../x86/x86_ukernel_template.h"
