/* The library's internal view of a context: parallel loops over tasks and
 * per-worker scratch memory. Every parallel pass in int8train goes through
 * i8t_parallel_for, so the split of work (and hence every result) depends
 * only on the task count, never on which worker runs a task. */
#ifndef INT8TRAIN_THREADPOOL_H
#define INT8TRAIN_THREADPOOL_H

#include "int8train/context.h"

/* Runs fn(arg, task, worker) for task = 0..n_tasks-1 on the context's
 * workers (the caller is worker 0) and returns when all are done. worker is
 * in [0, i8t_context_threads(ctx)). ctx NULL runs the tasks in order on the
 * calling thread. Tasks are handed out dynamically: which worker runs a task
 * varies from call to call, so a task's result must depend only on `task`.
 * A call from inside a task of the same context runs all its tasks inline on
 * that worker (it then shares that worker's scratch: avoid). Calls from
 * several threads on one context are serialised. An empty call costs about
 * 0.3-1.5 us with the workers spinning (2 cores); a worker that has not
 * joined by the time the caller runs out of tasks (asleep, descheduled)
 * does not delay it (see the job word in threadpool.c). */
typedef void (*i8t_task_fn)(void *arg, size_t task, int worker);
void i8t_parallel_for(i8t_context *ctx, size_t n_tasks, i8t_task_fn fn, void *arg);

/* Scratch memory of `worker`, at least `bytes` long and 64-byte aligned,
 * valid until the next call for the same worker. ctx NULL: returns NULL
 * (callers then allocate for themselves), and NULL when the memory cannot
 * be had: callers must check. */
void *i8t_context_scratch(i8t_context *ctx, int worker, size_t bytes);

/* Caps what i8t_context_scratch will allocate per worker (tests use it to
 * make scratch allocation fail). SIZE_MAX by default. */
void i8t_context_limit_scratch(i8t_context *ctx, size_t max_bytes);

/* The OS processor indices `worker` is bound to, at most `max` of them
 * written to pus; returns how many there are (0: not pinned). */
int i8t_context_worker_pus(const i8t_context *ctx, int worker, int *pus, int max);

#endif
