/* Helpers shared by the library's C files (not installed). */
#ifndef INT8TRAIN_INTERNAL_H
#define INT8TRAIN_INTERNAL_H

#include "int8train/int8train.h"

#if defined(__GNUC__)
#define I8T_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define I8T_PRINTF(f, a)
#endif

/* Records a message for i8t_last_error() and returns `status`, so that a
 * failure reads: return i8t_error(I8T_ERR_SHAPE, "K=%zu exceeds ...", k); */
i8t_status i8t_error(i8t_status status, const char *fmt, ...) I8T_PRINTF(2, 3);

/* Aligned allocation (64 bytes: one cache line, one AVX-512 register). */
void *i8t_aligned_alloc(size_t size);
void i8t_aligned_free(void *p);

#define I8T_MIN(a, b) ((a) < (b) ? (a) : (b))
#define I8T_MAX(a, b) ((a) > (b) ? (a) : (b))
#define I8T_ROUND_UP(x, m) (((x) + (m) - 1) / (m) * (m))

#endif
