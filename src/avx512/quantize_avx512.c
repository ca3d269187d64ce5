/* AVX-512 quantizers and reductions: the x86 elementwise template
 * instantiated for 16 lanes (bit-identical to src/generic). */
#include "../x86/x86_kernels.h"
#include "avx512_vec.h"
#include "../x86/x86_elementwise_template.h"
