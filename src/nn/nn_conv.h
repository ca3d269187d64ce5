/* Convolution geometry shared by the int8 (conv.c) and fp32 (conv_f32.c)
 * convolutions: output sizes, the per-task sample split, im2col / col2im. */
#ifndef INT8TRAIN_NN_CONV_H
#define INT8TRAIN_NN_CONV_H

#include "nn_internal.h"

typedef struct nn_conv_geom {
  i8t_conv_shape s;
  size_t oh, ow, K;
  size_t in_rows, out_rows; /* pixels per sample */
  int direct;               /* 1x1, stride 1, no padding: the input is the column matrix */
  size_t spt, tasks;        /* samples per task, task count */
} nn_conv_geom;

nn_conv_geom nn_conv_geom_make(const i8t_conv_shape *s);

/* Column matrix of samples [n0, n1): one row per output pixel, K values in
 * (ky, kx, c) order, rows `ld` >= K elements apart (columns past K are
 * not written); padding is filled with pad_byte (the zero point for u8, 0
 * for float). esize: bytes per element. */
void nn_im2col(const nn_conv_geom *g, const void *x, size_t esize, unsigned char pad_byte,
               size_t n0, size_t n1, void *cols, size_t ld);
/* dx[samples n0..n1) += columns routed back to their input pixels (cols
 * points at sample n0's first row; rows ld >= K elements apart). The int32
 * columns of the int8 path: the kernel table's col2im_s32. */
void nn_col2im_f32(const nn_conv_geom *g, const float *cols, size_t ld, size_t n0, size_t n1,
                   float *dx);

/* The weight gradient as an implicit GEMM (conv_wgrad.c): whether the current
 * table runs shape s (arguments checked) that way (i8t_-prefixed: exported
 * for the tests), and the pass itself, per task of samples as conv.c's: the
 * same dw, bit for bit. */
int i8t_conv_wgrad_implicit_fits(const i8t_conv_shape *s);
i8t_status nn_wgrad_implicit(i8t_workspace *ws, const i8t_conv_shape *s, const int16_t *dy,
                             const uint8_t *x, uint8_t x_zp, int64_t *dw);

/* Test hook (not thread-safe; 0, 0 restores the defaults): layout 1 runs
 * every int8 pass batched, 2 per task, 0 by the shape's rows per block;
 * chunk_bytes > 0 caps the chunk of a batched pass, so that small tests
 * reach several chunks. Results are identical either way. */
void i8t_conv_layout_for_tests(int layout, size_t chunk_bytes);

#endif
