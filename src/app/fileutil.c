/* Atomic file writes (temporary file + fsync + rename), mkdir -p of a file's
 * parent, and the little-endian byte buffer checkpoints are built in. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app_internal.h"

i8t_status i8t_make_parent_dirs(const char *path) {
  char dir[4096];
  if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
    return i8t_error(I8T_ERR_IO, "path too long: %s", path);
  char *slash = strrchr(dir, '/');
  if (!slash || slash == dir) return I8T_OK;
  *slash = '\0';
  for (char *p = dir + 1; ; p++) {
    if (*p != '/' && *p != '\0') continue;
    char saved = *p;
    *p = '\0';
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
      return i8t_error(I8T_ERR_IO, "cannot create directory %s: %s", dir, strerror(errno));
    *p = saved;
    if (saved == '\0') break;
  }
  return I8T_OK;
}

static int write_all(int fd, const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* fsync of the directory makes the rename itself durable; some file systems
 * refuse it (EINVAL), which costs only durability, not atomicity. */
static void sync_parent_dir(const char *path) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash == dir) slash[1] = '\0';
  else if (slash) *slash = '\0';
  else snprintf(dir, sizeof dir, ".");
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
}

i8t_status i8t_write_file_atomic(const char *path, const void *data, size_t size) {
  i8t_status st = i8t_make_parent_dirs(path);
  if (st != I8T_OK) return st;
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp)
    return i8t_error(I8T_ERR_IO, "path too long: %s", path);
  int fd = mkstemp(tmp);
  if (fd < 0)
    return i8t_error(I8T_ERR_IO, "cannot create a temporary file next to %s: %s", path,
                     strerror(errno));
  const char *step = NULL;
  (void)fchmod(fd, 0644); /* mkstemp creates 0600; a checkpoint is an ordinary file */
  if (write_all(fd, data, size) != 0) step = "write";
  else if (fsync(fd) != 0) step = "fsync";
  int saved_errno = errno;
  if (close(fd) != 0 && !step) {
    step = "close";
    saved_errno = errno;
  }
  if (!step && rename(tmp, path) != 0) {
    step = "rename";
    saved_errno = errno;
  }
  if (step) {
    unlink(tmp);
    return i8t_error(I8T_ERR_IO, "cannot write %s (%s of %s failed: %s); any previous file is "
                     "unchanged", path, step, tmp, strerror(saved_errno));
  }
  sync_parent_dir(path);
  return I8T_OK;
}

/* ------------------------------------------------------------------------ */

void i8t_bytes_put(i8t_bytes *b, const void *p, size_t n) {
  if (b->failed) return;
  if (b->size + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->size + n) cap *= 2;
    uint8_t *bigger = realloc(b->data, cap);
    if (!bigger) {
      b->failed = 1;
      return;
    }
    b->data = bigger;
    b->cap = cap;
  }
  if (n) memcpy(b->data + b->size, p, n);
  b->size += n;
}

void i8t_bytes_u32(i8t_bytes *b, uint32_t v) {
  uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  i8t_bytes_put(b, le, 4);
}

void i8t_bytes_u64(i8t_bytes *b, uint64_t v) {
  i8t_bytes_u32(b, (uint32_t)v);
  i8t_bytes_u32(b, (uint32_t)(v >> 32));
}

void i8t_bytes_f32(i8t_bytes *b, float v) {
  uint32_t bits;
  memcpy(&bits, &v, 4);
  i8t_bytes_u32(b, bits);
}

void i8t_bytes_f64(i8t_bytes *b, double v) {
  uint64_t bits;
  memcpy(&bits, &v, 8);
  i8t_bytes_u64(b, bits);
}

void i8t_bytes_free(i8t_bytes *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
}
