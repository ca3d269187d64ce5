/* Contexts without worker threads: the serial fallback used until the
 * hwloc-pinned pool (threadpool.c) is built in. Replaced by threadpool.c. */
#include <stdlib.h>
#include <stdio.h>

#include "internal.h"
#include "threadpool.h"

struct i8t_context {
  void *scratch;
  size_t scratch_size;
};

void i8t_context_options_default(i8t_context_options *opts) {
  opts->threads = 0;
  opts->pin = I8T_PIN_COMPACT;
  opts->pin_from_env = 1;
}

i8t_status i8t_context_create(const i8t_context_options *opts, i8t_context **out) {
  (void)opts;
  if (!out) return i8t_error(I8T_ERR_INVALID_ARG, "context: NULL output");
  *out = calloc(1, sizeof **out);
  return *out ? I8T_OK : i8t_error(I8T_ERR_NO_MEMORY, "context");
}

void i8t_context_destroy(i8t_context *ctx) {
  if (!ctx) return;
  i8t_aligned_free(ctx->scratch);
  free(ctx);
}

int i8t_context_threads(const i8t_context *ctx) { (void)ctx; return 1; }

size_t i8t_context_describe(const i8t_context *ctx, char *buf, size_t size) {
  (void)ctx;
  return (size_t)snprintf(buf, size, "1 worker, not pinned\n");
}

void i8t_parallel_for(i8t_context *ctx, size_t n_tasks, i8t_task_fn fn, void *arg) {
  (void)ctx;
  for (size_t t = 0; t < n_tasks; t++) fn(arg, t, 0);
}

void *i8t_context_scratch(i8t_context *ctx, int worker, size_t bytes) {
  (void)worker;
  if (!ctx) return NULL;
  if (ctx->scratch_size < bytes) {
    i8t_aligned_free(ctx->scratch);
    ctx->scratch = i8t_aligned_alloc(bytes);
    ctx->scratch_size = ctx->scratch ? bytes : 0;
  }
  return ctx->scratch;
}
