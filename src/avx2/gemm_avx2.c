/* AVX2 GEMM microkernel and packers. All three GEMMs run on one kernel: both
 * operands packed as int16 pairs (c2s16) and multiplied with vpmaddwd.
 *
 * Why widen to int16 rather than the vpmaddubsw sign trick: vpmaddubsw
 * saturates u8 x s8 pair sums (255 * 127 * 2 > 32767), and its exact variant
 * (A packed as s8 = u8 - 128, vpsignb of B by A per row, |a| x sign(b, a)
 * pair sums <= 2 * 128 * 127 = 32512) spends vpsignb + vpmaddubsw + vpmaddwd
 * (three multiply-port uops) per 32 MACs. Packing u8 - zp, s8 and s16 as
 * int16 makes every product exact (vpmaddwd overflows only for
 * (-32768)^2 + (-32768)^2, and no packed value here is -32768 on both sides)
 * at one multiply-port uop per 16 MACs plus a vpaddd: the same 64 ops/cycle
 * peak as the saturating chain on Zen 3 (two multiply pipes, four adders).
 * The u8 zero point is subtracted while packing, so no correction term. */
#include "../x86/x86_kernels.h"
#include "avx2_vec.h"
#include "../x86/x86_pack.h"

I8T_X86_DEFINE_PACKERS(avx2)

#define UK_NAME i8t_gemm_s16s16s32_ukernel_4x16c2__avx2
#define UK_NAME_EX i8t_gemm_s16s16s32_ukernel_ex_4x16c2__avx2
#define UK_MR 4
#define UK_NV 2
#define UK_KR 2
#define UK_DOT vi_dot_s16
#include "../x86/x86_ukernel_template.h"
