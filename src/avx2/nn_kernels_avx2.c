/* Layer-pass kernels for the avx2 table: the portable template compiled with
 * this folder's flags (see src/generic/nn_kernels_template.h). */
#define I8T_NN_SFX avx2
#include "../generic/nn_kernels_template.h"
