/* The quantizer's rounding rule for one element, in scalar C. The generic
 * kernels use it for every element and the SIMD kernels for their tails; SIMD
 * bodies compute exactly the same operations lane-wise, so every ISA produces
 * identical bits (the build uses -ffp-contract=off: no fused multiply-add). */
#ifndef INT8TRAIN_QUANTIZE_SCALAR_H
#define INT8TRAIN_QUANTIZE_SCALAR_H

#include <math.h>
#include <stdint.h>

#include "kernel_table.h"
#include "rng.h"

/* v = x * inv_scale (one rounding). Nearest: round half to even (the SIMD
 * conversions' default mode). Stochastic: floor(v) + (u < v - floor(v)),
 * u uniform in [0, 1) from the counter stream; v - floor(v) is exact in
 * float, so E[q] = v up to the 2^-24 resolution of u. Returns a float
 * holding an integer (or a value beyond any clamp range). */
static inline float i8t_round_scaled(float v, i8t_noise noise, uint32_t i) {
  if (!noise.stochastic) return nearbyintf(v);
  float f = floorf(v);
  float u = i8t_rng_uniform(noise.key, noise.ctr + i);
  return f + (u < v - f ? 1.0f : 0.0f);
}

/* Clamps in float before converting, so huge values cannot overflow the int;
 * NaN gives lo (converting it would be undefined), as every vector path. */
static inline int32_t i8t_clamp_to_int(float r, float lo, float hi) {
  r = r >= lo ? r : lo;
  r = r > hi ? hi : r;
  return (int32_t)r;
}

#endif
