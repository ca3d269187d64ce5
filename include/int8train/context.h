/* int8train execution context: owns the worker threads (pinned through hwloc)
 * and the scratch memory the kernels pack into. Create one per training run
 * and pass it to every call; a NULL context means "this thread, no pool". */
#ifndef INT8TRAIN_CONTEXT_H
#define INT8TRAIN_CONTEXT_H

#include "int8train/int8train.h"

#ifdef __cplusplus
extern "C" {
#endif

/** How workers are placed on the machine's cores. */
typedef enum i8t_pin_policy {
  I8T_PIN_COMPACT = 0, /**< worker i on the i-th physical core, in topology order */
  I8T_PIN_SCATTER = 1, /**< workers spread over packages / NUMA nodes first */
  I8T_PIN_NONE = 2,    /**< no pinning: the OS places the threads */
} i8t_pin_policy;

typedef struct i8t_context_options {
  /** Number of workers, the calling thread included. 0: one per physical
   * core (or INT8TRAIN_THREADS if set). */
  int threads;
  /** Pinning policy; INT8TRAIN_PIN (compact|scatter|none) overrides the
   * default when `pin_from_env` is non-zero. */
  i8t_pin_policy pin;
  int pin_from_env;
} i8t_context_options;

typedef struct i8t_context i8t_context;

/** Fills `opts` with the defaults: threads = 0 (auto), pin = compact,
 * pin_from_env = 1. */
void i8t_context_options_default(i8t_context_options *opts);

/** Creates a context; `opts` may be NULL for the defaults. */
i8t_status i8t_context_create(const i8t_context_options *opts, i8t_context **out);

/** Destroys the context and joins its workers. NULL is a no-op. */
void i8t_context_destroy(i8t_context *ctx);

/** Number of workers (>= 1) of `ctx`; 1 for NULL. */
int i8t_context_threads(const i8t_context *ctx);

/** Writes a human-readable description of the topology and of where each
 * worker is pinned into `buf` (truncated to `size`); returns the length it
 * needed, like snprintf. */
size_t i8t_context_describe(const i8t_context *ctx, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif
