/* The stem convolution's direct kernels for the avx512vnni table: the x86
 * template (src/x86/x86_stem_template.h) with one zmm of 16 channels,
 * vpdpbusd forward and vpdpwssd weight gradient. */
#include "../x86/x86_kernels.h"
#include "avx512_vec.h"

#define STEM_FWD_NAME i8t_conv3x3_c1_fwd__avx512vnni
#define STEM_DOT_U8S8 vi_dot_u8s8
#define STEM_WGRAD_NAME i8t_conv3x3_c1_wgrad__avx512vnni
#include "../x86/x86_stem_template.h"
