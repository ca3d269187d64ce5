/* GEMM microkernels with SDOT (armv8.2-a dotprod: Cortex-A55/A76 and later,
 * Neoverse N1/V1). Built with +dotprod: dispatch calls this file only when
 * HWCAP_ASIMDDP is set. u8 A arrives packed as s8 (the -128 shift). */
#include "neon_common.h"

/* One K group of 4: packed A = 8 rows x 4 values (rows 0-3 in a_lo, 4-7 in
 * a_hi), packed B = 8 columns x 4 values (columns 0-3 in b_lo, 4-7 in b_hi).
 * SDOT by lane broadcasts row r's 4 values against every column's 4. */
#define DOT_LOAD_GROUP                                                   \
  const int8x16_t a_lo = vld1q_s8(a), a_hi = vld1q_s8(a + 16);          \
  const int8x16_t b_lo = vld1q_s8(b), b_hi = vld1q_s8(b + 16);          \
  a += 32;                                                               \
  b += 32;
#define DOT_A_QUAD(r) ((r) < 4 ? a_lo : a_hi)
#define DOT_ROW_STEP(r)                                                       \
  acc[r][0] = vdotq_laneq_s32(acc[r][0], b_lo, DOT_A_QUAD(r), (r) % 4);      \
  acc[r][1] = vdotq_laneq_s32(acc[r][1], b_hi, DOT_A_QUAD(r), (r) % 4);

/* u8 x s8 and s8 x s8 are the same tile once A is packed as s8. */
I8T_NEON_DEFINE_8X8_UKERNEL(i8t_gemm_u8s8s32_ukernel_8x8c4__neondot, int8_t, int8_t, 4,
                            DOT_LOAD_GROUP, DOT_ROW_STEP)
I8T_NEON_DEFINE_8X8_UKERNEL(i8t_gemm_s8s8s32_ukernel_8x8c4__neondot, int8_t, int8_t, 4,
                            DOT_LOAD_GROUP, DOT_ROW_STEP)
