/* Helpers shared by the data, checkpoint and trainer files (not installed):
 * atomic file writes, parent-directory creation, a growable byte buffer. */
#ifndef INT8TRAIN_APP_INTERNAL_H
#define INT8TRAIN_APP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* Creates the directories above `path` that do not exist yet (mkdir -p of
 * its dirname). */
i8t_status i8t_make_parent_dirs(const char *path);

/* Writes `size` bytes to `path` atomically: a temporary file next to it is
 * written, fsync'ed and renamed over `path` (and the directory fsync'ed), so
 * readers see either the old file or the whole new one. */
i8t_status i8t_write_file_atomic(const char *path, const void *data, size_t size);

/* Growable little-endian byte buffer for serialisation. `failed` records an
 * allocation failure so that callers check once at the end. */
typedef struct i8t_bytes {
  uint8_t *data;
  size_t size, cap;
  int failed;
} i8t_bytes;

void i8t_bytes_put(i8t_bytes *b, const void *p, size_t n);
void i8t_bytes_u32(i8t_bytes *b, uint32_t v);
void i8t_bytes_u64(i8t_bytes *b, uint64_t v);
void i8t_bytes_f32(i8t_bytes *b, float v);
void i8t_bytes_f64(i8t_bytes *b, double v);
void i8t_bytes_free(i8t_bytes *b);

#endif
