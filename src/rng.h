/* Counter-based random stream for stochastic rounding. The noise of element i
 * is a pure function of (key, counter + i), so results do not depend on how
 * work is split over threads or SIMD lanes, and every ISA computes the same
 * bits: SIMD versions apply exactly these 32-bit operations lane-wise. */
#ifndef INT8TRAIN_RNG_H
#define INT8TRAIN_RNG_H

#include <stddef.h>
#include <stdint.h>

#define I8T_RNG_GOLDEN 0x9E3779B9u
#define I8T_RNG_MIX1 0x85EBCA6Bu
#define I8T_RNG_MIX2 0xC2B2AE35u

/* murmur3's fmix32 finaliser over a keyed Weyl sequence: a bijection of the
 * counter for each key, with full avalanche. */
static inline uint32_t i8t_rng_hash(uint32_t key, uint32_t ctr) {
  uint32_t h = ctr * I8T_RNG_GOLDEN ^ key;
  h ^= h >> 16;
  h *= I8T_RNG_MIX1;
  h ^= h >> 13;
  h *= I8T_RNG_MIX2;
  h ^= h >> 16;
  return h;
}

/* Uniform in [0, 1) with 24 bits: exact in float. */
static inline float i8t_rng_uniform(uint32_t key, uint32_t ctr) {
  return (float)(i8t_rng_hash(key, ctr) >> 8) * (1.0f / 16777216.0f);
}

/* 16 random bits for element counter c from a hash shared by the pair (c
 * even, c + 1): the low half for the even element, the high half for the odd
 * one. Half as many hashes as i8t_rng_hash per element, for kernels that need
 * no more than 16 bits per element; the vector kernels take the halves of a
 * vector of pair hashes with one zero-extension each. The key is xored with
 * a constant so that pair counters (c / 2) never meet the per-element
 * counters of a stream with the same key. */
#define I8T_RNG_PAIR_DOMAIN 0x5851F42Du
static inline uint32_t i8t_rng_pair_bits(uint32_t key, uint32_t c) {
  uint32_t h = i8t_rng_hash(key ^ I8T_RNG_PAIR_DOMAIN, c >> 1);
  return c & 1u ? h >> 16 : h & 0xFFFFu;
}

/* How many of n elements from counter ctr come before the 32-bit counter
 * wraps: the kernels that step pair counters linearly split there. */
static inline size_t i8t_rng_run_to_wrap(size_t n, uint32_t ctr) {
  uint64_t to_wrap = ((uint64_t)1 << 32) - ctr;
  return (uint64_t)n < to_wrap ? n : (size_t)to_wrap;
}

/* Key of one call from the user's 64-bit seed and the high half of the counter. */
static inline uint32_t i8t_rng_key(uint64_t seed, uint32_t ctr_high) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (uint64_t)(ctr_high + 1u);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return (uint32_t)(z ^ (z >> 31));
}

#endif
