/* Layer-pass kernels for the avx512vnni table: the portable template compiled with
 * this folder's flags (see src/generic/nn_kernels_template.h). */
#define I8T_NN_SFX avx512vnni
#include "../generic/nn_kernels_template.h"
