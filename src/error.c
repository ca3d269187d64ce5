/* Status strings, the per-thread last-error message, aligned allocation. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

static _Thread_local char last_error[1024];

const char *i8t_status_string(i8t_status status) {
  switch (status) {
    case I8T_OK: return "ok";
    case I8T_ERR_INVALID_ARG: return "invalid argument";
    case I8T_ERR_SHAPE: return "invalid shape";
    case I8T_ERR_NONFINITE: return "non-finite value (NaN or Inf)";
    case I8T_ERR_NO_MEMORY: return "out of memory";
    case I8T_ERR_UNSUPPORTED: return "not supported on this CPU or build";
    case I8T_ERR_IO: return "I/O error";
    case I8T_ERR_FORMAT: return "corrupt or invalid file";
  }
  return "unknown status";
}

const char *i8t_last_error(void) { return last_error; }

i8t_status i8t_error(i8t_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return status;
}

void *i8t_aligned_alloc(size_t size) {
  void *p = NULL;
  if (posix_memalign(&p, 64, size ? I8T_ROUND_UP(size, 64) : 64) != 0) return NULL;
  return p;
}

void i8t_aligned_free(void *p) { free(p); }
