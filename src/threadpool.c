/* The worker pool behind i8t_context: by default one worker per physical core
 * (the calling thread is worker 0), each pinned to its core; workers wait for
 * a new job by spinning briefly on the job word, then sleeping on a condition
 * variable. Also: options and environment, scratch, describe. */
#include "topology.h" /* first: defines _GNU_SOURCE */

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#ifdef I8T_HAVE_OPENMP
#include <omp.h>
#endif

#include "internal.h"
#include "threadpool.h"

/* How long an idle worker (or a waiting caller) spins before it sleeps: long
 * enough to bridge the gap between the parallel loops of one training step,
 * short enough not to burn a core when the process goes serial. */
#define SPIN_NS 100000
/* Scratch each worker allocates (and touches) when it starts. */
#define INITIAL_SCRATCH (1u << 20)

typedef struct worker {
  _Alignas(64) struct i8t_context *ctx; /* one cache line per worker at least */
  pthread_t thread;
  int index;
  int started;      /* a thread was created: join it */
  int core;         /* index into ctx->topo.cores; -1: not pinned */
  int bound;        /* the binding took effect */
  cpu_set_t cpus;   /* where it is bound (core >= 0) */
  void *scratch;
  size_t scratch_size;
} worker;

/* The job word: generation (32 bits) | closed (1 bit) | active workers (31
 * bits). A worker joins the open job of a generation by incrementing the
 * count, and may then read fn/arg/n_tasks and take tasks; once the caller
 * has run out of tasks it closes the job and waits only for the workers
 * that joined. A worker that was asleep or descheduled meanwhile finds the
 * job closed and never delays the caller. */
#define JOB_GEN(word) ((uint32_t)((word) >> 32))
#define JOB_CLOSED ((uint64_t)1 << 31)
#define JOB_ACTIVE(word) ((uint32_t)((word)&0x7fffffffu))

struct i8t_context {
  /* The job: fn/arg/n_tasks are written by the caller before it publishes a
   * new generation in `job`. */
  _Alignas(64) atomic_uint_fast64_t job;
  i8t_task_fn fn;
  void *arg;
  size_t n_tasks;
  _Alignas(64) atomic_size_t next_task;
  _Alignas(64) atomic_int caller_waiting; /* the caller sleeps on `done` */
  atomic_int sleepers;                    /* workers sleeping on `wake` */
  atomic_int started;                     /* workers that finished starting */
  atomic_int stop;
  pthread_mutex_t lock;
  pthread_cond_t wake, done;
  pthread_mutex_t call_lock; /* serialises parallel_for calls from several threads */

  int threads;
  i8t_pin_policy pin;
  char pin_note[96]; /* why workers are not pinned; "" when they are */
  long spin_ns;
  worker *workers;
  i8t_topology topo;
  cpu_set_t usable;
  pthread_t creator;
  int creator_pinned;
  size_t scratch_limit;
  int sync_ready; /* mutexes and condition variables initialised */
};

/* The pool (and worker) the current thread is running a task for. */
typedef struct current_task {
  i8t_context *ctx;
  int worker;
} current_task;
static _Thread_local current_task tls_current;
/* Contexts that pinned this thread, and its affinity before the first one. */
static _Thread_local int tls_pin_depth;
static _Thread_local cpu_set_t tls_original_mask;

/* ------------------------------------------------------------------------ */
/* Options and environment                                                  */
/* ------------------------------------------------------------------------ */

void i8t_context_options_default(i8t_context_options *opts) {
  opts->threads = 0;
  opts->pin = I8T_PIN_COMPACT;
  opts->pin_from_env = 1;
}

const char *i8t_pin_policy_name(i8t_pin_policy pin) {
  switch (pin) {
    case I8T_PIN_COMPACT: return "compact";
    case I8T_PIN_SCATTER: return "scatter";
    case I8T_PIN_NONE: return "none";
  }
  return "unknown";
}

i8t_status i8t_pin_policy_from_name(const char *name, i8t_pin_policy *out) {
  for (int p = I8T_PIN_COMPACT; p <= I8T_PIN_NONE; p++) {
    if (name && out && strcasecmp(name, i8t_pin_policy_name((i8t_pin_policy)p)) == 0) {
      *out = (i8t_pin_policy)p;
      return I8T_OK;
    }
  }
  return i8t_error(I8T_ERR_INVALID_ARG, "pin policy '%s': expected compact, scatter or none",
                   name ? name : "(null)");
}

/* INT8TRAIN_THREADS: unset, empty or 0 mean "one per core" (*out = 0). */
static i8t_status threads_from_env(int *out) {
  const char *s = getenv("INT8TRAIN_THREADS");
  *out = 0;
  if (!s || !*s) return I8T_OK;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  while (*end == ' ' || *end == '\t' || *end == '\n') end++;
  if (end == s || *end || errno || v < 0 || v > I8T_MAX_THREADS)
    return i8t_error(I8T_ERR_INVALID_ARG,
                     "INT8TRAIN_THREADS='%s': expected an integer from 0 (one per core) to %d",
                     s, I8T_MAX_THREADS);
  *out = (int)v;
  return I8T_OK;
}

/* Requested thread count (0: auto) and policy, API over environment for the
 * count, environment over API for the policy when pin_from_env is set. */
static i8t_status resolve_options(const i8t_context_options *opts, int *threads,
                                  i8t_pin_policy *pin) {
  i8t_context_options o;
  if (opts) o = *opts;
  else i8t_context_options_default(&o);
  if (o.threads < 0 || o.threads > I8T_MAX_THREADS)
    return i8t_error(I8T_ERR_INVALID_ARG, "context: threads=%d is outside 0..%d", o.threads,
                     I8T_MAX_THREADS);
  if (o.pin < I8T_PIN_COMPACT || o.pin > I8T_PIN_NONE)
    return i8t_error(I8T_ERR_INVALID_ARG, "context: unknown pin policy %d", (int)o.pin);
  *threads = o.threads;
  *pin = o.pin;
  i8t_status st = *threads == 0 ? threads_from_env(threads) : I8T_OK;
  const char *env_pin = o.pin_from_env ? getenv("INT8TRAIN_PIN") : NULL;
  if (!st && env_pin && *env_pin) {
    st = i8t_pin_policy_from_name(env_pin, pin);
    if (st) i8t_error(st, "INT8TRAIN_PIN='%s': expected compact, scatter or none", env_pin);
  }
  return st;
}

/* ------------------------------------------------------------------------ */
/* Placement                                                                */
/* ------------------------------------------------------------------------ */

/* The PUs this process may use: the creating thread's affinity as it was
 * before any context pinned it. */
static void usable_mask(cpu_set_t *set) {
  if (tls_pin_depth > 0) {
    *set = tls_original_mask;
    return;
  }
  if (sched_getaffinity(0, sizeof *set, set) == 0 && CPU_COUNT(set) > 0) return;
  CPU_ZERO(set);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  for (long i = 0; i < I8T_MAX(n, 1) && i < CPU_SETSIZE; i++) CPU_SET((int)i, set);
}

/* Decides where each worker runs (i8t_topology_place) and why not, if not. */
static i8t_status place_workers(i8t_context *ctx) {
  const i8t_topology *t = &ctx->topo;
  i8t_placement *where = malloc((size_t)ctx->threads * sizeof *where);
  if (!where) return i8t_error(I8T_ERR_NO_MEMORY, "context: placement");
  ctx->pin_note[0] = '\0';
  if (!i8t_topology_place(t, ctx->pin, ctx->threads, where)) {
    if (ctx->pin == I8T_PIN_NONE) snprintf(ctx->pin_note, sizeof ctx->pin_note, "workers not pinned");
    else if (ctx->threads > t->n_pus)
      snprintf(ctx->pin_note, sizeof ctx->pin_note,
               "not pinned: %d threads > %d usable PUs (oversubscribed)", ctx->threads, t->n_pus);
    else snprintf(ctx->pin_note, sizeof ctx->pin_note, "not pinned (no memory for placement)");
  }
  for (int i = 0; i < ctx->threads; i++) {
    worker *w = &ctx->workers[i];
    w->core = where[i].core;
    CPU_ZERO(&w->cpus);
    for (int p = 0; p < where[i].n_pus; p++) CPU_SET(t->pu_os[where[i].first_pu + p], &w->cpus);
  }
  free(where);
  return I8T_OK;
}

/* Pins the creating thread (worker 0), remembering its affinity so that the
 * last context it created restores it. */
static void pin_caller(i8t_context *ctx) {
  worker *w = &ctx->workers[0];
  if (w->core < 0) return;
  if (tls_pin_depth == 0 && sched_getaffinity(0, sizeof tls_original_mask, &tls_original_mask))
    return;
  if (sched_setaffinity(0, sizeof w->cpus, &w->cpus) != 0) return;
  w->bound = 1;
  tls_pin_depth++;
  ctx->creator_pinned = 1;
  ctx->creator = pthread_self();
}

static void unpin_caller(i8t_context *ctx) {
  if (!ctx->creator_pinned || !pthread_equal(ctx->creator, pthread_self())) return;
  if (--tls_pin_depth == 0) sched_setaffinity(0, sizeof tls_original_mask, &tls_original_mask);
}

#ifdef I8T_HAVE_OPENMP
/* oneDNN (the fp32 baseline) runs on OpenMP: it gets as many threads as we
 * have workers, so that the two never oversubscribe the cores. libgomp's
 * threads inherit the affinity of the thread that starts them, so the team
 * is started here, with the caller's unpinned affinity: started later from
 * the pinned caller, all of it would run on the caller's one core. */
static void start_openmp_team(int threads) {
  cpu_set_t pinned;
  int moved = tls_pin_depth > 0 && sched_getaffinity(0, sizeof pinned, &pinned) == 0 &&
              sched_setaffinity(0, sizeof tls_original_mask, &tls_original_mask) == 0;
  omp_set_num_threads(threads);
#pragma omp parallel num_threads(threads)
  { (void)omp_get_thread_num(); }
  if (moved) sched_setaffinity(0, sizeof pinned, &pinned);
}
#endif

/* ------------------------------------------------------------------------ */
/* Waiting: spin, then sleep                                                */
/* ------------------------------------------------------------------------ */

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Spins while the job's generation is `seen`, for at most spin_ns. */
static uint32_t spin_on_generation(i8t_context *ctx, uint32_t seen) {
  uint64_t deadline = 0;
  for (unsigned i = 1; ctx->spin_ns > 0; i++) {
    uint32_t g = JOB_GEN(atomic_load_explicit(&ctx->job, memory_order_relaxed));
    if (g != seen) return g;
    cpu_relax();
    if (i % 64 == 0) {
      uint64_t t = now_ns();
      if (!deadline) deadline = t + (uint64_t)ctx->spin_ns;
      else if (t > deadline) break;
    }
  }
  return seen;
}

/* A worker waits for a generation other than `seen`. The seq_cst pairs
 * (sleepers++, load job) here and (store job, load sleepers) in
 * publish_job() ensure that either the caller sees the sleeper and wakes
 * it, or the worker sees the new generation. */
static uint32_t wait_for_job(i8t_context *ctx, uint32_t seen) {
  uint32_t g = spin_on_generation(ctx, seen);
  if (g != seen) return g;
  pthread_mutex_lock(&ctx->lock);
  atomic_fetch_add(&ctx->sleepers, 1);
  while ((g = JOB_GEN(atomic_load(&ctx->job))) == seen) pthread_cond_wait(&ctx->wake, &ctx->lock);
  atomic_fetch_sub(&ctx->sleepers, 1);
  pthread_mutex_unlock(&ctx->lock);
  return g;
}

/* Joins the current job if it is still open; *seen becomes its generation
 * either way. The successful CAS also makes fn/arg/n_tasks visible. */
static int join_job(i8t_context *ctx, uint32_t *seen) {
  uint64_t word = atomic_load(&ctx->job);
  for (;;) {
    *seen = JOB_GEN(word);
    if (word & JOB_CLOSED) return 0;
    if (atomic_compare_exchange_weak(&ctx->job, &word, word + 1)) return 1;
  }
}

/* A worker leaves the job it joined; the last one out of a closed job wakes
 * the caller if it sleeps (seq_cst pair with wait_for_active()). */
static void leave_job(i8t_context *ctx) {
  uint64_t word = atomic_fetch_sub(&ctx->job, 1) - 1;
  if ((word & JOB_CLOSED) && JOB_ACTIVE(word) == 0 && atomic_load(&ctx->caller_waiting)) {
    pthread_mutex_lock(&ctx->lock);
    pthread_cond_signal(&ctx->done);
    pthread_mutex_unlock(&ctx->lock);
  }
}

/* The caller, having closed the job, waits for the workers still in it. */
static void wait_for_active(i8t_context *ctx) {
  uint64_t deadline = 0;
  for (unsigned i = 1; ctx->spin_ns > 0; i++) {
    if (JOB_ACTIVE(atomic_load_explicit(&ctx->job, memory_order_acquire)) == 0) return;
    cpu_relax();
    if (i % 64 == 0) {
      uint64_t t = now_ns();
      if (!deadline) deadline = t + (uint64_t)ctx->spin_ns;
      else if (t > deadline) break;
    }
  }
  pthread_mutex_lock(&ctx->lock);
  /* An exchange, not a store: see publish_job(). */
  atomic_exchange(&ctx->caller_waiting, 1);
  while (JOB_ACTIVE(atomic_load(&ctx->job)) > 0) pthread_cond_wait(&ctx->done, &ctx->lock);
  atomic_store(&ctx->caller_waiting, 0);
  pthread_mutex_unlock(&ctx->lock);
}

/* Publishes the next generation, open (a job) or closed (the stop signal),
 * and wakes the sleeping workers.
 * Both halves of each store-then-load handshake (here: store job, load
 * sleepers; wait_for_active(): set caller_waiting, load job) write with a
 * read-modify-write, not a plain seq_cst store. C11 orders either, but on
 * AArch64 a seq_cst store and load compile to stlr and ldar, whose ordering
 * an emulator on an x86 host (qemu-user, where the ARM tests run) need not
 * keep; an atomic RMW is a full barrier everywhere, at no measurable cost
 * once per job. */
static void publish_job(i8t_context *ctx, int open) {
  uint32_t gen = JOB_GEN(atomic_load(&ctx->job)) + 1;
  atomic_exchange(&ctx->job, ((uint64_t)gen << 32) | (open ? 0 : JOB_CLOSED));
  if (atomic_load(&ctx->sleepers) > 0) {
    pthread_mutex_lock(&ctx->lock);
    pthread_cond_broadcast(&ctx->wake);
    pthread_mutex_unlock(&ctx->lock);
  }
}

/* ------------------------------------------------------------------------ */
/* Workers and jobs                                                         */
/* ------------------------------------------------------------------------ */

/* Tasks are handed out by an atomic counter: any worker may run any task,
 * which is fine because a task's result does not depend on who runs it. */
static void run_tasks(i8t_context *ctx, int worker_index) {
  i8t_task_fn fn = ctx->fn;
  void *arg = ctx->arg;
  size_t n = ctx->n_tasks;
  for (;;) {
    size_t t = atomic_fetch_add_explicit(&ctx->next_task, 1, memory_order_relaxed);
    if (t >= n) return;
    fn(arg, t, worker_index);
  }
}

/* Replaces a worker's scratch by a larger block. When the worker itself
 * asks, it also touches every page, so that the pages land on its NUMA node. */
static int grow_scratch(i8t_context *ctx, worker *w, size_t bytes) {
  size_t size = I8T_ROUND_UP(bytes, (size_t)64 << 10);
  void *p = i8t_aligned_alloc(size);
  if (!p) return 0; /* the old block stays valid */
  i8t_aligned_free(w->scratch);
  w->scratch = p;
  w->scratch_size = size;
  if (tls_current.ctx == ctx && tls_current.worker == w->index) memset(p, 0, size);
  return 1;
}

static void *worker_main(void *p) {
  worker *w = p;
  i8t_context *ctx = w->ctx;
  tls_current.ctx = ctx;
  tls_current.worker = w->index;
  if (INITIAL_SCRATCH <= ctx->scratch_limit) grow_scratch(ctx, w, INITIAL_SCRATCH);
  pthread_mutex_lock(&ctx->lock);
  atomic_fetch_add(&ctx->started, 1);
  pthread_cond_signal(&ctx->done);
  pthread_mutex_unlock(&ctx->lock);
  /* The stop flag is read after join_job(), not before: join_job() moves
   * `seen` to the newest generation, which may already be the stop signal
   * (the worker woke for the last job and was descheduled until the context
   * was destroyed); read before, the worker would then wait for a generation
   * after the stop signal forever, and i8t_context_destroy() with it. The
   * flag is stored before the stop generation is published, so a worker
   * that has seen that generation sees the flag. */
  uint32_t seen = 0; /* the context starts at generation 0, closed */
  for (;;) {
    if (join_job(ctx, &seen)) {
      run_tasks(ctx, w->index);
      leave_job(ctx);
    }
    if (atomic_load(&ctx->stop)) return NULL;
    seen = wait_for_job(ctx, seen);
  }
}

static i8t_status start_worker(i8t_context *ctx, worker *w) {
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return i8t_error(I8T_ERR_NO_MEMORY, "context: thread attributes");
  /* Bound from birth, so that its stack is first touched on its node. */
  int pinned = w->core >= 0 && pthread_attr_setaffinity_np(&attr, sizeof w->cpus, &w->cpus) == 0;
  int rc = pthread_create(&w->thread, &attr, worker_main, w);
  if (rc == EINVAL && pinned) { /* a PU we may not use after all: run unpinned */
    pthread_attr_destroy(&attr);
    pthread_attr_init(&attr);
    pinned = 0;
    rc = pthread_create(&w->thread, &attr, worker_main, w);
  }
  pthread_attr_destroy(&attr);
  if (rc != 0)
    return i8t_error(I8T_ERR_NO_MEMORY, "context: could not start worker %d of %d: %s", w->index,
                     ctx->threads, strerror(rc));
  w->started = 1;
  w->bound = pinned;
  return I8T_OK;
}

static void stop_workers(i8t_context *ctx) {
  atomic_store(&ctx->stop, 1);
  publish_job(ctx, 0);
  for (int i = 1; i < ctx->threads; i++)
    if (ctx->workers[i].started) pthread_join(ctx->workers[i].thread, NULL);
}

static i8t_status start_workers(i8t_context *ctx) {
  atomic_store(&ctx->job, JOB_CLOSED); /* generation 0: nothing to join */
  for (int i = 1; i < ctx->threads; i++) {
    i8t_status st = start_worker(ctx, &ctx->workers[i]);
    if (st) {
      stop_workers(ctx);
      return st;
    }
  }
  pthread_mutex_lock(&ctx->lock); /* until every worker has its scratch */
  while (atomic_load(&ctx->started) < ctx->threads - 1) pthread_cond_wait(&ctx->done, &ctx->lock);
  pthread_mutex_unlock(&ctx->lock);
  return I8T_OK;
}

/* ------------------------------------------------------------------------ */
/* Context lifetime                                                         */
/* ------------------------------------------------------------------------ */

static i8t_status init_sync(i8t_context *ctx) {
  if (pthread_mutex_init(&ctx->lock, NULL)) return I8T_ERR_NO_MEMORY;
  if (pthread_mutex_init(&ctx->call_lock, NULL)) {
    pthread_mutex_destroy(&ctx->lock);
    return I8T_ERR_NO_MEMORY;
  }
  if (pthread_cond_init(&ctx->wake, NULL)) {
    pthread_mutex_destroy(&ctx->lock);
    pthread_mutex_destroy(&ctx->call_lock);
    return I8T_ERR_NO_MEMORY;
  }
  if (pthread_cond_init(&ctx->done, NULL)) {
    pthread_cond_destroy(&ctx->wake);
    pthread_mutex_destroy(&ctx->lock);
    pthread_mutex_destroy(&ctx->call_lock);
    return I8T_ERR_NO_MEMORY;
  }
  ctx->sync_ready = 1;
  return I8T_OK;
}

/* Frees everything but the threads (already joined or never started). */
static void free_context(i8t_context *ctx) {
  if (ctx->workers)
    for (int i = 0; i < ctx->threads; i++) i8t_aligned_free(ctx->workers[i].scratch);
  i8t_aligned_free(ctx->workers);
  i8t_topology_free(&ctx->topo);
  if (ctx->sync_ready) {
    pthread_cond_destroy(&ctx->done);
    pthread_cond_destroy(&ctx->wake);
    pthread_mutex_destroy(&ctx->call_lock);
    pthread_mutex_destroy(&ctx->lock);
  }
  i8t_aligned_free(ctx);
}

/* Allocates the context, loads the topology and decides the placement. */
static i8t_status prepare_context(const i8t_context_options *opts, i8t_context *ctx) {
  int threads;
  i8t_status st = resolve_options(opts, &threads, &ctx->pin);
  if (st) return st;
  usable_mask(&ctx->usable);
  if ((st = i8t_topology_load(&ctx->usable, &ctx->topo))) return st;
  ctx->threads = threads > 0 ? threads : I8T_MAX(1, ctx->topo.n_cores);
  ctx->workers = i8t_aligned_alloc((size_t)ctx->threads * sizeof *ctx->workers);
  if (!ctx->workers) return i8t_error(I8T_ERR_NO_MEMORY, "context: %d workers", ctx->threads);
  memset(ctx->workers, 0, (size_t)ctx->threads * sizeof *ctx->workers);
  for (int i = 0; i < ctx->threads; i++) {
    ctx->workers[i].ctx = ctx;
    ctx->workers[i].index = i;
  }
  /* Spinning only pays when every worker has a PU of its own. */
  ctx->spin_ns = ctx->threads <= CPU_COUNT(&ctx->usable) ? SPIN_NS : 0;
  ctx->scratch_limit = SIZE_MAX;
  if ((st = place_workers(ctx))) return st;
  if (init_sync(ctx)) return i8t_error(I8T_ERR_NO_MEMORY, "context: mutexes");
  return I8T_OK;
}

i8t_status i8t_context_create(const i8t_context_options *opts, i8t_context **out) {
  if (!out) return i8t_error(I8T_ERR_INVALID_ARG, "context: NULL output");
  *out = NULL;
  i8t_context *ctx = i8t_aligned_alloc(sizeof *ctx);
  if (!ctx) return i8t_error(I8T_ERR_NO_MEMORY, "context");
  memset(ctx, 0, sizeof *ctx);
  i8t_status st = prepare_context(opts, ctx);
  if (st) {
    free_context(ctx);
    return st;
  }
#ifdef I8T_HAVE_OPENMP
  start_openmp_team(ctx->threads);
#endif
  pin_caller(ctx);
  tls_current.ctx = ctx; /* worker 0's scratch is touched by the caller */
  tls_current.worker = 0;
  grow_scratch(ctx, &ctx->workers[0], INITIAL_SCRATCH);
  tls_current.ctx = NULL;
  if ((st = start_workers(ctx))) {
    unpin_caller(ctx);
    free_context(ctx);
    return st;
  }
  *out = ctx;
  return I8T_OK;
}

void i8t_context_destroy(i8t_context *ctx) {
  if (!ctx) return;
  stop_workers(ctx);
  unpin_caller(ctx);
  free_context(ctx);
}

int i8t_context_threads(const i8t_context *ctx) { return ctx ? ctx->threads : 1; }

/* ------------------------------------------------------------------------ */
/* Parallel loops and scratch                                               */
/* ------------------------------------------------------------------------ */

static void run_inline(i8t_context *ctx, int worker_index, size_t n_tasks, i8t_task_fn fn,
                       void *arg) {
  for (size_t t = 0; t < n_tasks; t++) fn(arg, t, worker_index);
  (void)ctx;
}

/* The caller publishes the job, runs tasks until none is left, closes the
 * job and waits for the workers that joined it. */
static void dispatch(i8t_context *ctx, size_t n_tasks, i8t_task_fn fn, void *arg) {
  ctx->fn = fn;
  ctx->arg = arg;
  ctx->n_tasks = n_tasks;
  atomic_store_explicit(&ctx->next_task, 0, memory_order_relaxed);
  publish_job(ctx, 1); /* seq_cst store: the stores above come before it */
  run_tasks(ctx, 0);
  if (JOB_ACTIVE(atomic_fetch_or(&ctx->job, JOB_CLOSED)) > 0) wait_for_active(ctx);
}

void i8t_parallel_for(i8t_context *ctx, size_t n_tasks, i8t_task_fn fn, void *arg) {
  if (n_tasks == 0) return;
  if (!ctx) {
    run_inline(NULL, 0, n_tasks, fn, arg);
    return;
  }
  if (tls_current.ctx == ctx) { /* nested call from a task: run it on this worker */
    run_inline(ctx, tls_current.worker, n_tasks, fn, arg);
    return;
  }
  pthread_mutex_lock(&ctx->call_lock);
  current_task saved = tls_current;
  tls_current.ctx = ctx;
  tls_current.worker = 0;
  if (ctx->threads == 1 || n_tasks == 1) run_inline(ctx, 0, n_tasks, fn, arg);
  else dispatch(ctx, n_tasks, fn, arg);
  tls_current = saved;
  pthread_mutex_unlock(&ctx->call_lock);
}

void *i8t_context_scratch(i8t_context *ctx, int worker_index, size_t bytes) {
  if (!ctx || worker_index < 0 || worker_index >= ctx->threads || bytes > ctx->scratch_limit)
    return NULL;
  worker *w = &ctx->workers[worker_index];
  if (w->scratch_size < bytes && !grow_scratch(ctx, w, bytes)) return NULL;
  return w->scratch;
}

void i8t_context_limit_scratch(i8t_context *ctx, size_t max_bytes) {
  if (ctx) ctx->scratch_limit = max_bytes;
}

int i8t_context_worker_pus(const i8t_context *ctx, int worker_index, int *pus, int max) {
  if (!ctx || worker_index < 0 || worker_index >= ctx->threads) return 0;
  const worker *w = &ctx->workers[worker_index];
  if (w->core < 0 || !w->bound) return 0;
  int n = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (!CPU_ISSET(cpu, &w->cpus)) continue;
    if (n < max) pus[n] = cpu;
    n++;
  }
  return n;
}

/* ------------------------------------------------------------------------ */
/* Description                                                              */
/* ------------------------------------------------------------------------ */

typedef struct text {
  char *buf;
  size_t size, len;
} text;

static void append(text *t, const char *fmt, ...) I8T_PRINTF(2, 3);
static void append(text *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t room = t->len < t->size ? t->size - t->len : 0;
  int n = vsnprintf(room ? t->buf + t->len : NULL, room, fmt, ap);
  va_end(ap);
  if (n > 0) t->len += (size_t)n;
}

static void describe_worker(text *t, const i8t_context *ctx, const worker *w) {
  append(t, "  worker %d%s: ", w->index, w->index == 0 ? " (caller)" : "");
  if (w->core < 0) {
    append(t, "not pinned\n");
    return;
  }
  const i8t_core *c = &ctx->topo.cores[w->core];
  char cpus[256];
  i8t_cpuset_format(&w->cpus, cpus, sizeof cpus);
  append(t, "core %d (package %d, NUMA node %d), cpus %s%s\n", w->core, c->package, c->numa,
         cpus, w->bound ? "" : " [binding failed: runs unpinned]");
}

size_t i8t_context_describe(const i8t_context *ctx, char *buf, size_t size) {
  text t = {buf, size, 0};
  if (size) buf[0] = '\0';
  if (!ctx) {
    append(&t, "no context: 1 worker (the calling thread), not pinned\n");
    return t.len;
  }
  char usable[256];
  i8t_cpuset_format(&ctx->usable, usable, sizeof usable);
  append(&t, "topology: %s\n", ctx->topo.summary);
  append(&t, "usable: cpus %s: %d cores, %d PUs, %d package(s), %d NUMA node(s)\n", usable,
         ctx->topo.n_cores, ctx->topo.n_pus, ctx->topo.n_packages, ctx->topo.n_numa);
  append(&t, "workers: %d, pin policy %s%s%s\n", ctx->threads, i8t_pin_policy_name(ctx->pin),
         ctx->pin_note[0] ? ", " : "", ctx->pin_note);
  for (int i = 0; i < ctx->threads; i++) describe_worker(&t, ctx, &ctx->workers[i]);
#ifdef I8T_HAVE_OPENMP
  append(&t, "openmp (oneDNN baseline): %d threads\n", omp_get_max_threads());
#endif
  return t.len;
}
