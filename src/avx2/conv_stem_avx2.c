/* The stem convolution's direct kernels for the avx2 table: the x86 template
 * (src/x86/x86_stem_template.h) with two ymm of 8 channels and vpmaddwd +
 * vpaddd as the s16 dot step, the forward on the s16 image. */
#include "../x86/x86_kernels.h"
#include "avx2_vec.h"

#define STEM_FWD_NAME i8t_conv3x3_c1_fwd__avx2
#define STEM_FWD_S16 1
#define STEM_WGRAD_NAME i8t_conv3x3_c1_wgrad__avx2
#include "../x86/x86_stem_template.h"
