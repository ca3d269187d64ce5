/* Builds against the installed headers and library; runs one exact GEMM. */
#include <int8train/int8train.h>
#include <stdio.h>

int main(void) {
  uint8_t a[2 * 3] = {255, 0, 1, 2, 3, 4};
  int8_t b[3 * 2] = {127, -127, 1, 2, -3, 4};
  int32_t c[4];
  i8t_matrix A = {a, 3, 1}, B = {b, 2, 1};
  if (i8t_gemm_u8s8s32(NULL, 2, 2, 3, A, 0, B, c, 2) != I8T_OK) return 1;
  /* row 0: 255*127 + 0 + 1*-3 ; 255*-127 + 0 + 4 */
  if (c[0] != 32382 || c[1] != -32381) return 1;
  printf("int8train consumer ok (isa %s)\n", i8t_isa_name(i8t_isa_selected()));
  return 0;
}
