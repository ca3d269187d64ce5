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
 * calling thread. Not re-entrant: a task must not call i8t_parallel_for. */
typedef void (*i8t_task_fn)(void *arg, size_t task, int worker);
void i8t_parallel_for(i8t_context *ctx, size_t n_tasks, i8t_task_fn fn, void *arg);

/* Scratch memory of `worker`, at least `bytes` long and 64-byte aligned,
 * valid until the next call for the same worker. ctx NULL: returns NULL
 * (callers then allocate for themselves). */
void *i8t_context_scratch(i8t_context *ctx, int worker, size_t bytes);

#endif
