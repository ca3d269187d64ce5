/* Layer-pass kernels for the avx2 table: the portable template compiled with
 * this folder's flags (see src/generic/nn_kernels_template.h). */
#define I8T_NN_SFX avx2
#define I8T_NN_X86_QUANTIZE /* quantize_f32_s8s16: src/x86/x86_elementwise_template.h */
#include "../generic/nn_kernels_template.h"
