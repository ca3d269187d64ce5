/* The 1-channel stem convolution (3x3, stride 1, padding 1, in_c = 1, out_c a
 * multiple of 16) on the kernel table's direct kernels (conv_stem.c): conv.c
 * hands its int8 forward and weight gradient here when they fit. */
#ifndef INT8TRAIN_CONV_STEM_H
#define INT8TRAIN_CONV_STEM_H

#include "nn_internal.h"

/* Whether the forward of shape s (arguments already checked) runs here: the
 * shape, a forward kernel in the current table and, with per-channel scales
 * (col_scale NULL: no ranges wanted), all of them positive normal floats (each channel's range then follows
 * from its integer extremes; other scales keep the elementwise range of
 * conv.c). */
int nn_stem_forward_fits(const i8t_conv_shape *s, const float *col_scale, size_t ncs);
/* Whether the weight gradient of shape s runs here. */
int nn_stem_wgrad_fits(const i8t_conv_shape *s);

/* i8t_conv2d_forward_s8 / i8t_conv2d_backward_weights_s16 for a fitting
 * shape, arguments checked: the same results, bit for bit. y may be NULL
 * here (the ranges only). */
i8t_status nn_stem_forward(i8t_workspace *ws, const i8t_conv_shape *s, const uint8_t *x,
                           uint8_t x_zp, const int8_t *w, int32_t *y, const float *col_scale,
                           size_t ncs, float *sample_min, float *sample_max);
/* i8t_conv2d_forward_u8 for a fitting shape: the int32 output of each
 * sample, in the worker's cache, requantized as i8t_requantize_s32_u8. */
i8t_status nn_stem_forward_u8(i8t_workspace *ws, const i8t_conv_shape *s, const uint8_t *x,
                              uint8_t x_zp, const int8_t *w, const float *col_scale, size_t ncs,
                              i8t_qparams out, i8t_rounding r, uint8_t *q);
i8t_status nn_stem_backward_weights(i8t_workspace *ws, const i8t_conv_shape *s,
                                    const int16_t *dy, const uint8_t *x, uint8_t x_zp,
                                    int64_t *dw);

#endif
