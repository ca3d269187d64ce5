/* The stem convolution's weight gradient for the avx2 table: the x86 template
 * (src/x86/x86_stem_template.h) with two ymm of 8 channels and vpmaddwd +
 * vpaddd as the s16 dot step. */
#include "../x86/x86_kernels.h"
#include "avx2_vec.h"

#define STEM_WGRAD_NAME i8t_conv3x3_c1_wgrad__avx2
#include "../x86/x86_stem_template.h"
