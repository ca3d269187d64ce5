/* The 1-channel 3x3 stem convolution's kernels in portable C (kernel_table.h:
 * i8t_conv3x3_c1_fwd_fn / i8t_conv3x3_c1_wgrad_fn): the reference semantics
 * of the vector versions, and the stem path of tables without their own. */
#include <string.h>

#include "generic_kernels.h"

enum { STEM_CO = 16, STEM_TAPS = 9 };

void i8t_conv3x3_c1_fwd__generic(size_t h, size_t w, const void *img, size_t ldx,
                                 const int8_t *wq, const int32_t *bias, int32_t *y,
                                 size_t ldy, int32_t *mn, int32_t *mx) {
  const uint8_t *xp = img; /* the u8 image */
  /* Weights per tap with the channels contiguous, int16: the channel loops
   * vectorise as widening 16-bit multiplies (u8 x s8 fits int16). */
  int16_t wt[STEM_TAPS][STEM_CO];
  int32_t lo[STEM_CO], hi[STEM_CO];
  for (int t = 0; t < STEM_TAPS; t++)
    for (int co = 0; co < STEM_CO; co++) wt[t][co] = wq[((t / 3) * STEM_CO + co) * 4 + t % 3];
  for (int co = 0; co < STEM_CO; co++) {
    lo[co] = INT32_MAX;
    hi[co] = INT32_MIN;
  }
  for (size_t oy = 0; oy < h; oy++) {
    for (size_t ox = 0; ox < w; ox++) {
      int32_t acc[STEM_CO];
      memcpy(acc, bias, sizeof acc);
      for (int t = 0; t < STEM_TAPS; t++) {
        int16_t v = xp[(oy + (size_t)(t / 3)) * ldx + ox + (size_t)(t % 3)];
        for (int co = 0; co < STEM_CO; co++) acc[co] += (int32_t)v * wt[t][co];
      }
      int32_t *yp = y + (oy * w + ox) * ldy;
      for (int co = 0; co < STEM_CO; co++) {
        yp[co] = acc[co];
        lo[co] = acc[co] < lo[co] ? acc[co] : lo[co];
        hi[co] = acc[co] > hi[co] ? acc[co] : hi[co];
      }
    }
  }
  memcpy(mn, lo, sizeof lo);
  memcpy(mx, hi, sizeof hi);
}

/* acc [9][16] += part, which restarts at 0. */
static void flush_part(int32_t part[STEM_TAPS][STEM_CO], int64_t *acc) {
  for (int t = 0; t < STEM_TAPS; t++)
    for (int co = 0; co < STEM_CO; co++) acc[t * STEM_CO + co] += part[t][co];
  memset(part, 0, sizeof(int32_t) * STEM_TAPS * STEM_CO);
}

void i8t_conv3x3_c1_wgrad__generic(size_t h, size_t w, const int16_t *xs, size_t ldx,
                                   const int16_t *dy, size_t ldd, int64_t *acc) {
  int32_t part[STEM_TAPS][STEM_CO];
  memset(part, 0, sizeof part);
  size_t pending = 0; /* pixels summed in part since the last flush */
  for (size_t oy = 0; oy < h; oy++) {
    for (size_t ox = 0; ox < w; ox++) {
      if (pending == I8T_STEM_FLUSH_PIXELS) {
        flush_part(part, acc);
        pending = 0;
      }
      const int16_t *d = dy + (oy * w + ox) * ldd;
      for (int t = 0; t < STEM_TAPS; t++) {
        int32_t v = xs[(oy + (size_t)(t / 3)) * ldx + ox + (size_t)(t % 3)];
        for (int co = 0; co < STEM_CO; co++) part[t][co] += v * d[co];
      }
      pending++;
    }
  }
  flush_part(part, acc);
}
