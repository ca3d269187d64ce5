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

/** Most workers a context accepts (API and INT8TRAIN_THREADS). */
#define I8T_MAX_THREADS 1024

/** "compact", "scatter" or "none". */
const char *i8t_pin_policy_name(i8t_pin_policy pin);
/** Parses a policy name (case-insensitive); I8T_ERR_INVALID_ARG with a
 * message for anything else. For command-line flags such as --pin. */
i8t_status i8t_pin_policy_from_name(const char *name, i8t_pin_policy *out);

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

/** Creates a context; `opts` may be NULL for the defaults.
 *
 * Threads: opts->threads if non-zero, else INT8TRAIN_THREADS if set to a
 * non-zero value, else one per physical core of the calling thread's
 * affinity mask. INT8TRAIN_THREADS must be an integer in 0..I8T_MAX_THREADS
 * (empty or 0: one per core); anything else, or an INT8TRAIN_PIN other than
 * compact|scatter|none, makes creation fail with I8T_ERR_INVALID_ARG.
 *
 * Placement (topology from hwloc, or sysfs in builds without it): the
 * calling thread is worker 0 and is pinned too (i8t_context_destroy, called
 * from the same thread, restores its previous affinity). Up to one worker
 * per core, each is bound to all PUs of its core; beyond that, up to one per
 * PU, each bound to one PU (SMT siblings last); with more workers than PUs
 * none is pinned. compact follows the topology order, scatter alternates
 * between NUMA nodes (or packages).
 *
 * Idle workers spin for about 100 us, then sleep (no spinning at all when
 * oversubscribed). In builds with oneDNN, creation also calls
 * omp_set_num_threads(threads) on the calling thread, so that the fp32
 * baseline's OpenMP parallel regions started from it use the same number
 * of threads (not restored on destroy), and starts that OpenMP team before
 * pinning the caller, so that its threads are not confined to the caller's
 * core (libgomp threads inherit their creator's affinity). */
i8t_status i8t_context_create(const i8t_context_options *opts, i8t_context **out);

/** Destroys the context and joins its workers. NULL is a no-op. Must not
 * be called while another thread is inside a call that uses `ctx`. */
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
