/* AVX2 quantizers and reductions: the x86 elementwise template instantiated
 * for 8 lanes (bit-identical to src/generic/quantize_generic.c). */
#include "../x86/x86_kernels.h"
#include "avx2_vec.h"
#include "../x86/x86_elementwise_template.h"
