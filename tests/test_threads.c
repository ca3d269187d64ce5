/* The thread pool: creation and destruction, every task run exactly once,
 * all workers (caller included) running at once, pinning as described,
 * oversubscription, the environment variables, scratch failure, and
 * multi-threaded GEMMs and quantizers bit-identical to single-threaded ones. */
#define _GNU_SOURCE /* sched_getcpu, sched_getaffinity */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "isa_list.h"
#include "test_util.h"
#include "threadpool.h"
#include "topology.h"

static i8t_context *make_context(int threads, i8t_pin_policy pin) {
  i8t_context_options o;
  i8t_context_options_default(&o);
  o.threads = threads;
  o.pin = pin;
  o.pin_from_env = 0;
  i8t_context *ctx = NULL;
  i8t_status st = i8t_context_create(&o, &ctx);
  if (st) print_error("context(threads=%d): %s\n", threads, i8t_last_error());
  assert_int_equal(st, I8T_OK);
  assert_non_null(ctx);
  return ctx;
}

static int usable_pus(void) {
  cpu_set_t set;
  assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
  return CPU_COUNT(&set);
}

static double seconds_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* Lifetime and coverage                                                    */
/* ------------------------------------------------------------------------ */

static void test_create_destroy_many(void **state) {
  (void)state;
  const int counts[] = {1, 2, 3, 4, 0};
  for (int round = 0; round < 40; round++) {
    int t = counts[round % 5];
    i8t_context *ctx = make_context(t, (i8t_pin_policy)(round % 3));
    if (t) assert_int_equal(i8t_context_threads(ctx), t);
    else assert_true(i8t_context_threads(ctx) >= 1);
    i8t_context_destroy(ctx);
  }
  i8t_context *ctx = NULL;
  assert_int_equal(i8t_context_create(NULL, &ctx), I8T_OK); /* defaults */
  i8t_context_destroy(ctx);
  i8t_context_destroy(NULL);
  assert_int_equal(i8t_context_threads(NULL), 1);
  assert_int_equal(i8t_context_create(NULL, NULL), I8T_ERR_INVALID_ARG);
}

typedef struct coverage {
  atomic_int *hits;
  int threads;
  atomic_int bad_worker;
} coverage;

static void count_task(void *arg, size_t task, int worker) {
  coverage *c = arg;
  atomic_fetch_add(&c->hits[task], 1);
  if (worker < 0 || worker >= c->threads) atomic_store(&c->bad_worker, 1);
}

static void check_coverage(i8t_context *ctx, size_t n_tasks) {
  coverage c = {calloc(n_tasks + 1, sizeof(atomic_int)), i8t_context_threads(ctx), 0};
  i8t_parallel_for(ctx, n_tasks, count_task, &c);
  for (size_t t = 0; t < n_tasks; t++) {
    if (atomic_load(&c.hits[t]) != 1)
      print_error("threads=%d n_tasks=%zu: task %zu ran %d times\n", c.threads, n_tasks, t,
                  atomic_load(&c.hits[t]));
    assert_int_equal(atomic_load(&c.hits[t]), 1);
  }
  assert_int_equal(atomic_load(&c.bad_worker), 0);
  free(c.hits);
}

static void test_every_task_once(void **state) {
  (void)state;
  const int thread_counts[] = {1, 2, 3, 4, 7};
  const size_t task_counts[] = {0, 1, 2, 3, 5, 17, 1000, 10007};
  for (size_t i = 0; i < sizeof thread_counts / sizeof *thread_counts; i++) {
    i8t_context *ctx = make_context(thread_counts[i], I8T_PIN_COMPACT);
    for (size_t k = 0; k < sizeof task_counts / sizeof *task_counts; k++)
      check_coverage(ctx, task_counts[k]);
    check_coverage(NULL, 33);
    i8t_context_destroy(ctx);
  }
}

/* Hundreds of back-to-back calls (workers spinning), then calls separated by
 * pauses longer than the spin time (workers asleep when the job comes). */
/* A context destroyed right after a job, while a worker that woke for that
 * job may still be on its way to join it: the worker must still see the stop
 * signal (it once waited for a later generation forever: hung under qemu
 * with three test processes on two cores). More threads than PUs make the
 * descheduling that opens the window likely. */
static void test_destroy_right_after_job(void **state) {
  (void)state;
  for (int round = 0; round < 200; round++) {
    i8t_context *ctx = make_context(usable_pus() + 1 + round % 2, I8T_PIN_NONE);
    check_coverage(ctx, (size_t)(1 + round % 5));
    i8t_context_destroy(ctx);
  }
}

static void test_many_calls_spinning_and_sleeping(void **state) {
  (void)state;
  i8t_context *ctx = make_context(usable_pus() > 2 ? usable_pus() : 2, I8T_PIN_COMPACT);
  for (int i = 0; i < 2000; i++) check_coverage(ctx, (size_t)(1 + i % 7));
  for (int i = 0; i < 20; i++) {
    usleep(2000);
    check_coverage(ctx, 64);
  }
  i8t_context_destroy(ctx);
}

/* Jobs where a worker's task outlasts the caller's spin (SPIN_NS, 100 us) by
 * a varying margin: the caller closes the job, spins, goes to sleep, and the
 * last worker out must wake it. A lost wake-up in that handshake hangs here
 * (ctest's timeout turns a hang into a failure). */
static void busy_wait_us(double us) {
  double end = seconds_now() + 1e-6 * us;
  while (seconds_now() < end) {
  }
}

static void slow_worker_task(void *arg, size_t task, int worker) {
  const unsigned *round = arg;
  if (worker != 0) busy_wait_us((double)((*round * 37u + (unsigned)task * 11u) % 220u));
}

static void test_caller_woken_by_last_worker(void **state) {
  (void)state;
  i8t_context *ctx = make_context(2, I8T_PIN_COMPACT);
  for (unsigned round = 0; round < 1500; round++)
    i8t_parallel_for(ctx, 2, slow_worker_task, &round);
  check_coverage(ctx, 100); /* and the pool still works */
  i8t_context_destroy(ctx);
}

/* n_tasks == threads tasks that each wait until all of them have started:
 * only possible if every worker, the caller included, runs one at once. */
typedef struct rendezvous {
  int n;
  atomic_int arrived;
  atomic_int timed_out;
  int *worker_of_task;
  int *cpu_of_task;
  cpu_set_t *mask_of_task;
} rendezvous;

static void meet_task(void *arg, size_t task, int worker) {
  rendezvous *r = arg;
  r->worker_of_task[task] = worker;
  atomic_fetch_add(&r->arrived, 1);
  double deadline = seconds_now() + 20.0;
  while (atomic_load(&r->arrived) < r->n) {
    if (seconds_now() > deadline) {
      atomic_store(&r->timed_out, 1);
      break;
    }
    sched_yield();
  }
  r->cpu_of_task[task] = sched_getcpu();
  sched_getaffinity(0, sizeof r->mask_of_task[task], &r->mask_of_task[task]);
}

static void run_rendezvous(i8t_context *ctx, rendezvous *r) {
  int n = i8t_context_threads(ctx);
  r->n = n;
  atomic_store(&r->arrived, 0);
  atomic_store(&r->timed_out, 0);
  i8t_parallel_for(ctx, (size_t)n, meet_task, r);
  assert_int_equal(atomic_load(&r->timed_out), 0);
  int *seen = calloc((size_t)n, sizeof *seen);
  for (int t = 0; t < n; t++) {
    assert_in_range(r->worker_of_task[t], 0, n - 1);
    seen[r->worker_of_task[t]]++;
  }
  for (int w = 0; w < n; w++) assert_int_equal(seen[w], 1); /* caller included */
  free(seen);
}

static rendezvous new_rendezvous(int n) {
  rendezvous r = {.n = n};
  r.worker_of_task = calloc((size_t)n, sizeof(int));
  r.cpu_of_task = calloc((size_t)n, sizeof(int));
  r.mask_of_task = calloc((size_t)n, sizeof(cpu_set_t));
  return r;
}

static void free_rendezvous(rendezvous *r) {
  free(r->worker_of_task);
  free(r->cpu_of_task);
  free(r->mask_of_task);
}

static void test_all_workers_run_at_once(void **state) {
  (void)state;
  const int thread_counts[] = {2, 3, 5};
  for (size_t i = 0; i < 3; i++) {
    i8t_context *ctx = make_context(thread_counts[i], I8T_PIN_COMPACT);
    rendezvous r = new_rendezvous(thread_counts[i]);
    for (int round = 0; round < 3; round++) run_rendezvous(ctx, &r);
    free_rendezvous(&r);
    i8t_context_destroy(ctx);
  }
}

/* No cmocka assertions inside tasks: they may run on other threads. */
typedef struct nested {
  i8t_context *ctx;
  atomic_int wrong;
} nested;

typedef struct inner_arg {
  int worker;
  size_t ran;
  int wrong;
} inner_arg;

static void inner_task(void *arg, size_t task, int worker) {
  inner_arg *in = arg;
  in->wrong |= worker != in->worker || task != in->ran;
  in->ran++;
}

static void outer_task(void *arg, size_t task, int worker) {
  nested *n = arg;
  inner_arg in = {worker, 0, 0};
  i8t_parallel_for(n->ctx, 5 + task, inner_task, &in); /* inline, in order, same worker */
  if (in.wrong || in.ran != 5 + task) atomic_store(&n->wrong, 1);
}

static void test_nested_call_runs_inline(void **state) {
  (void)state;
  nested n = {make_context(3, I8T_PIN_COMPACT), 0};
  i8t_parallel_for(n.ctx, 50, outer_task, &n);
  assert_int_equal(atomic_load(&n.wrong), 0);
  i8t_context_destroy(n.ctx);
}

typedef struct concurrent_caller {
  i8t_context *ctx;
  int failures;
} concurrent_caller;

static void *call_repeatedly(void *arg) {
  concurrent_caller *c = arg;
  for (int i = 0; i < 200; i++) {
    size_t n = 37;
    coverage cov = {calloc(n, sizeof(atomic_int)), i8t_context_threads(c->ctx), 0};
    i8t_parallel_for(c->ctx, n, count_task, &cov);
    for (size_t t = 0; t < n; t++) c->failures += atomic_load(&cov.hits[t]) != 1;
    free(cov.hits);
  }
  return NULL;
}

static void test_concurrent_callers_serialised(void **state) {
  (void)state;
  i8t_context *ctx = make_context(2, I8T_PIN_NONE);
  concurrent_caller a = {ctx, 0}, b = {ctx, 0};
  pthread_t ta, tb;
  assert_int_equal(pthread_create(&ta, NULL, call_repeatedly, &a), 0);
  assert_int_equal(pthread_create(&tb, NULL, call_repeatedly, &b), 0);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  assert_int_equal(a.failures + b.failures, 0);
  i8t_context_destroy(ctx);
}

/* ------------------------------------------------------------------------ */
/* Placement                                                                */
/* ------------------------------------------------------------------------ */

/* Every worker runs on, and is bound to exactly, the PUs it was given. */
static void check_pinning(i8t_pin_policy pin, int threads) {
  i8t_context *ctx = make_context(threads, pin);
  int n = i8t_context_threads(ctx);
  int pus[64];
  if (i8t_context_worker_pus(ctx, 0, pus, 64) == 0) {
    char buf[2048];
    i8t_context_describe(ctx, buf, sizeof buf);
    print_message("[   INFO   ] workers are not pinned here (binding refused?):\n%s", buf);
    i8t_context_destroy(ctx);
    skip();
  }
  rendezvous r = new_rendezvous(n);
  cpu_set_t *used = calloc((size_t)n, sizeof *used);
  for (int round = 0; round < 5; round++) {
    run_rendezvous(ctx, &r);
    for (int t = 0; t < n; t++) {
      int w = r.worker_of_task[t];
      int count = i8t_context_worker_pus(ctx, w, pus, 64);
      assert_in_range(count, 1, 64);
      cpu_set_t want;
      CPU_ZERO(&want);
      for (int i = 0; i < count; i++) CPU_SET(pus[i], &want);
      assert_true(CPU_EQUAL(&want, &r.mask_of_task[t]));
      assert_true(CPU_ISSET(r.cpu_of_task[t], &want));
      CPU_OR(&used[w], &used[w], &want);
    }
  }
  /* Workers are on distinct PUs (threads <= PUs here). */
  for (int a = 0; a < n; a++)
    for (int b = a + 1; b < n; b++) {
      cpu_set_t both;
      CPU_AND(&both, &used[a], &used[b]);
      assert_int_equal(CPU_COUNT(&both), 0);
    }
  free(used);
  free_rendezvous(&r);
  i8t_context_destroy(ctx);
}

static void test_pinning_compact(void **state) {
  (void)state;
  check_pinning(I8T_PIN_COMPACT, 0);
}

static void test_pinning_scatter(void **state) {
  (void)state;
  check_pinning(I8T_PIN_SCATTER, 0);
}

static void test_pinning_one_per_pu(void **state) {
  (void)state;
  check_pinning(I8T_PIN_COMPACT, usable_pus());
}

/* Placement on a made-up machine: 2 packages (one NUMA node each) of 3
 * cores with 2 PUs each; core k of package p has OS PUs p*3+k and p*3+k+6. */
static i8t_topology fake_topology(i8t_core *cores, int *pus) {
  i8t_topology t = {.n_cores = 6, .n_pus = 12, .n_packages = 2, .n_numa = 2,
                    .cores = cores, .pu_os = pus};
  for (int c = 0; c < 6; c++) {
    cores[c] = (i8t_core){c / 3, c / 3, 2 * c, 2};
    pus[2 * c] = c;
    pus[2 * c + 1] = c + 6;
  }
  return t;
}

static void expect_placement(const i8t_topology *t, i8t_pin_policy pin, int threads,
                             const int *cores, const int *first_os_pu, int pus_each) {
  i8t_placement where[16];
  assert_int_equal(i8t_topology_place(t, pin, threads, where), 1);
  for (int w = 0; w < threads; w++) {
    assert_int_equal(where[w].core, cores[w]);
    assert_int_equal(where[w].n_pus, pus_each);
    assert_int_equal(t->pu_os[where[w].first_pu], first_os_pu[w]);
  }
}

static void test_placement_policies(void **state) {
  (void)state;
  i8t_core cores[6];
  int pus[12];
  i8t_topology t = fake_topology(cores, pus);
  /* Up to one per core: whole cores (both PUs). */
  expect_placement(&t, I8T_PIN_COMPACT, 4, (int[]){0, 1, 2, 3}, (int[]){0, 1, 2, 3}, 2);
  expect_placement(&t, I8T_PIN_SCATTER, 4, (int[]){0, 3, 1, 4}, (int[]){0, 3, 1, 4}, 2);
  /* More than cores: single PUs, SMT siblings last. */
  expect_placement(&t, I8T_PIN_COMPACT, 8, (int[]){0, 1, 2, 3, 4, 5, 0, 1},
                   (int[]){0, 1, 2, 3, 4, 5, 6, 7}, 1);
  expect_placement(&t, I8T_PIN_SCATTER, 8, (int[]){0, 3, 1, 4, 2, 5, 0, 3},
                   (int[]){0, 3, 1, 4, 2, 5, 6, 9}, 1);
  /* Oversubscribed or policy none: nobody pinned. */
  i8t_placement where[16];
  assert_int_equal(i8t_topology_place(&t, I8T_PIN_COMPACT, 13, where), 0);
  for (int w = 0; w < 13; w++) assert_int_equal(where[w].core, -1);
  assert_int_equal(i8t_topology_place(&t, I8T_PIN_NONE, 2, where), 0);
  assert_int_equal(where[1].core, -1);
  /* Uneven cores (core 0 keeps both PUs, the others lost one to the mask). */
  int uneven_pus[7] = {0, 6, 1, 2, 3, 4, 5};
  for (int c = 0; c < 6; c++) cores[c] = (i8t_core){c / 3, c / 3, c == 0 ? 0 : c + 1, c == 0 ? 2 : 1};
  t.pu_os = uneven_pus;
  t.n_pus = 7;
  expect_placement(&t, I8T_PIN_COMPACT, 7, (int[]){0, 1, 2, 3, 4, 5, 0},
                   (int[]){0, 1, 2, 3, 4, 5, 6}, 1);
}

static void test_caller_affinity_restored(void **state) {
  (void)state;
  cpu_set_t before, after;
  assert_int_equal(sched_getaffinity(0, sizeof before, &before), 0);
  i8t_context *a = make_context(0, I8T_PIN_COMPACT);
  i8t_context *b = make_context(0, I8T_PIN_SCATTER); /* sees the original mask */
  assert_int_equal(i8t_context_threads(a), i8t_context_threads(b));
  i8t_context_destroy(b);
  i8t_context_destroy(a);
  assert_int_equal(sched_getaffinity(0, sizeof after, &after), 0);
  assert_true(CPU_EQUAL(&before, &after));
  i8t_context *none = make_context(0, I8T_PIN_NONE);
  assert_int_equal(i8t_context_worker_pus(none, 0, NULL, 0), 0);
  assert_int_equal(sched_getaffinity(0, sizeof after, &after), 0);
  assert_true(CPU_EQUAL(&before, &after));
  i8t_context_destroy(none);
}

#ifdef I8T_TEST_OPENMP
#include <omp.h>
/* oneDNN's OpenMP team gets the pool's thread count, and its threads are not
 * stuck on the core the context pinned its creator to. */
static void test_openmp_team(void **state) {
  (void)state;
  if (usable_pus() < 2) skip();
  i8t_context *ctx = make_context(2, I8T_PIN_COMPACT);
  assert_int_equal(omp_get_max_threads(), 2);
  atomic_int narrow = 0, team = 0;
#pragma omp parallel
  {
    cpu_set_t set;
    atomic_fetch_add(&team, 1);
    if (omp_get_thread_num() != 0 && sched_getaffinity(0, sizeof set, &set) == 0)
      atomic_fetch_add(&narrow, CPU_COUNT(&set) < 2);
  }
  i8t_context_destroy(ctx);
  assert_int_equal(atomic_load(&team), 2);
  assert_int_equal(atomic_load(&narrow), 0);
}
#else
static void test_openmp_team(void **state) {
  (void)state;
  print_message("[   INFO   ] built without oneDNN/OpenMP: skipped\n");
  skip();
}
#endif

static void test_more_threads_than_pus(void **state) {
  (void)state;
  int n = 2 * usable_pus() + 1;
  i8t_context *ctx = make_context(n, I8T_PIN_COMPACT);
  assert_int_equal(i8t_context_threads(ctx), n);
  for (int w = 0; w < n; w++) assert_int_equal(i8t_context_worker_pus(ctx, w, NULL, 0), 0);
  check_coverage(ctx, 1001);
  rendezvous r = new_rendezvous(n);
  run_rendezvous(ctx, &r);
  free_rendezvous(&r);
  char buf[4096];
  i8t_context_describe(ctx, buf, sizeof buf);
  assert_non_null(strstr(buf, "oversubscribed"));
  i8t_context_destroy(ctx);
}

static void test_one_thread(void **state) {
  (void)state;
  i8t_context *ctx = make_context(1, I8T_PIN_COMPACT);
  inner_arg in = {0, 0, 0};
  i8t_parallel_for(ctx, 100, inner_task, &in); /* in order, on the caller */
  assert_int_equal(in.ran, 100);
  assert_int_equal(in.wrong, 0);
  i8t_context_destroy(ctx);
}

static size_t count_lines_with(const char *text, const char *needle) {
  size_t n = 0;
  for (const char *p = text; (p = strstr(p, needle)); p++) n++;
  return n;
}

static void test_describe(void **state) {
  (void)state;
  i8t_context *ctx = make_context(3, I8T_PIN_COMPACT);
  size_t need = i8t_context_describe(ctx, NULL, 0);
  char *buf = malloc(need + 1);
  assert_int_equal(i8t_context_describe(ctx, buf, need + 1), need);
  assert_int_equal(strlen(buf), need);
  assert_non_null(strstr(buf, "topology: "));
  assert_non_null(strstr(buf, "pin policy compact"));
  assert_int_equal(count_lines_with(buf, "  worker "), 3);
  char small[16];
  assert_int_equal(i8t_context_describe(ctx, small, sizeof small), need); /* truncated */
  assert_int_equal(strlen(small), sizeof small - 1);
  free(buf);
  i8t_context_destroy(ctx);
  assert_true(i8t_context_describe(NULL, small, sizeof small) > 0);
}

/* ------------------------------------------------------------------------ */
/* Options and environment                                                  */
/* ------------------------------------------------------------------------ */

static i8t_status create_from_env(const char *threads, const char *pin, i8t_context **ctx) {
  if (threads) setenv("INT8TRAIN_THREADS", threads, 1);
  else unsetenv("INT8TRAIN_THREADS");
  if (pin) setenv("INT8TRAIN_PIN", pin, 1);
  else unsetenv("INT8TRAIN_PIN");
  *ctx = NULL;
  i8t_status st = i8t_context_create(NULL, ctx);
  unsetenv("INT8TRAIN_THREADS");
  unsetenv("INT8TRAIN_PIN");
  return st;
}

static void expect_env_threads(const char *value, int want) {
  i8t_context *ctx;
  assert_int_equal(create_from_env(value, NULL, &ctx), I8T_OK);
  assert_int_equal(i8t_context_threads(ctx), want);
  i8t_context_destroy(ctx);
}

static void expect_env_rejected(const char *threads, const char *pin, const char *mention) {
  i8t_context *ctx;
  assert_int_equal(create_from_env(threads, pin, &ctx), I8T_ERR_INVALID_ARG);
  assert_null(ctx);
  assert_non_null(strstr(i8t_last_error(), mention));
}

static void test_environment(void **state) {
  (void)state;
  i8t_context *ctx;
  assert_int_equal(create_from_env(NULL, NULL, &ctx), I8T_OK);
  int per_core = i8t_context_threads(ctx);
  i8t_context_destroy(ctx);
  expect_env_threads("3", 3);
  expect_env_threads(" 1", 1);
  expect_env_threads("", per_core);
  expect_env_threads("0", per_core);
  const char *bad[] = {"abc", "-1", "2x", "1025", "99999999999999999999", "1.5"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    expect_env_rejected(bad[i], NULL, "INT8TRAIN_THREADS");
  expect_env_rejected(NULL, "tight", "INT8TRAIN_PIN");

  assert_int_equal(create_from_env(NULL, "Scatter", &ctx), I8T_OK);
  char buf[4096];
  i8t_context_describe(ctx, buf, sizeof buf);
  assert_non_null(strstr(buf, "pin policy scatter"));
  i8t_context_destroy(ctx);

  /* The API's thread count wins over INT8TRAIN_THREADS; pin_from_env = 0
   * ignores INT8TRAIN_PIN. */
  setenv("INT8TRAIN_THREADS", "3", 1);
  setenv("INT8TRAIN_PIN", "bogus", 1);
  i8t_context_options o;
  i8t_context_options_default(&o);
  o.threads = 2;
  o.pin = I8T_PIN_NONE;
  o.pin_from_env = 0;
  assert_int_equal(i8t_context_create(&o, &ctx), I8T_OK);
  assert_int_equal(i8t_context_threads(ctx), 2);
  i8t_context_destroy(ctx);
  unsetenv("INT8TRAIN_THREADS");
  unsetenv("INT8TRAIN_PIN");
}

static void test_bad_options(void **state) {
  (void)state;
  i8t_context_options o;
  i8t_context *ctx = NULL;
  i8t_context_options_default(&o);
  o.threads = -1;
  assert_int_equal(i8t_context_create(&o, &ctx), I8T_ERR_INVALID_ARG);
  o.threads = I8T_MAX_THREADS + 1;
  assert_int_equal(i8t_context_create(&o, &ctx), I8T_ERR_INVALID_ARG);
  i8t_context_options_default(&o);
  o.pin = (i8t_pin_policy)7;
  o.pin_from_env = 0;
  assert_int_equal(i8t_context_create(&o, &ctx), I8T_ERR_INVALID_ARG);
  assert_null(ctx);
  for (int p = I8T_PIN_COMPACT; p <= I8T_PIN_NONE; p++) {
    i8t_pin_policy back;
    assert_int_equal(i8t_pin_policy_from_name(i8t_pin_policy_name((i8t_pin_policy)p), &back),
                     I8T_OK);
    assert_int_equal(back, p);
  }
  i8t_pin_policy back;
  assert_int_equal(i8t_pin_policy_from_name("spread", &back), I8T_ERR_INVALID_ARG);
  assert_int_equal(i8t_pin_policy_from_name(NULL, &back), I8T_ERR_INVALID_ARG);
}

/* ------------------------------------------------------------------------ */
/* Kernels: multi-threaded == single-threaded                               */
/* ------------------------------------------------------------------------ */

typedef enum { KIND_U8S8, KIND_S8S8, KIND_S16U8 } gemm_kind;

typedef struct gemm_case {
  gemm_kind kind;
  size_t M, N, K;
  void *a, *b;
  uint8_t zp;
} gemm_case;

static void make_case(gemm_case *g, gemm_kind kind, size_t M, size_t N, size_t K, uint64_t *rng) {
  *g = (gemm_case){kind, M, N, K, NULL, NULL, (uint8_t)test_rand_range(rng, 0, 255)};
  size_t a_size = kind == KIND_S16U8 ? 2 : 1;
  g->a = malloc(M * K * a_size);
  g->b = malloc(K * N);
  for (size_t i = 0; i < M * K; i++) {
    if (kind == KIND_S16U8) ((int16_t *)g->a)[i] = (int16_t)test_rand_range(rng, -32767, 32767);
    else if (kind == KIND_U8S8) ((uint8_t *)g->a)[i] = (uint8_t)test_rand_range(rng, 0, 255);
    else ((int8_t *)g->a)[i] = (int8_t)test_rand_range(rng, -127, 127);
  }
  for (size_t i = 0; i < K * N; i++) {
    if (kind == KIND_S16U8) ((uint8_t *)g->b)[i] = (uint8_t)test_rand_range(rng, 0, 255);
    else ((int8_t *)g->b)[i] = (int8_t)test_rand_range(rng, -127, 127);
  }
}

/* Runs the case into a fresh C (ldc = N + 1, padding poisoned). */
static void *run_case(i8t_context *ctx, const gemm_case *g, i8t_status *st) {
  size_t ldc = g->N + 1, esize = g->kind == KIND_S16U8 ? 8 : 4;
  void *c = malloc(g->M * ldc * esize);
  memset(c, 0x5a, g->M * ldc * esize);
  i8t_matrix A = {g->a, g->K, 1}, B = {g->b, g->N, 1};
  if (g->kind == KIND_U8S8) *st = i8t_gemm_u8s8s32(ctx, g->M, g->N, g->K, A, g->zp, B, c, ldc);
  else if (g->kind == KIND_S8S8) *st = i8t_gemm_s8s8s32(ctx, g->M, g->N, g->K, A, B, c, ldc);
  else *st = i8t_gemm_s16u8s64(ctx, g->M, g->N, g->K, A, B, g->zp, c, ldc);
  return c;
}

static void check_gemms_match_serial(void) {
  static const size_t shapes[][3] = {{1, 1, 1},    {5, 300, 7},    {97, 130, 1030},
                                     {300, 64, 200}, {64, 576, 300}, {401, 33, 65}};
  const int thread_counts[] = {1, 2, 3, 4};
  i8t_context *ctxs[4];
  for (int t = 0; t < 4; t++) ctxs[t] = make_context(thread_counts[t], I8T_PIN_COMPACT);
  uint64_t rng = 4242;
  for (int kind = KIND_U8S8; kind <= KIND_S16U8; kind++) {
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
      gemm_case g;
      make_case(&g, (gemm_kind)kind, shapes[s][0], shapes[s][1], shapes[s][2], &rng);
      i8t_status st;
      void *want = run_case(NULL, &g, &st); /* the path test_gemm checks */
      assert_int_equal(st, I8T_OK);
      size_t bytes = g.M * (g.N + 1) * (kind == KIND_S16U8 ? 8 : 4);
      for (int t = 0; t < 4; t++) {
        void *got = run_case(ctxs[t], &g, &st);
        assert_int_equal(st, I8T_OK);
        if (memcmp(got, want, bytes) != 0)
          print_error("kind %d %zux%zux%zu threads=%d differs from serial\n", kind, g.M, g.N,
                      g.K, thread_counts[t]);
        assert_memory_equal(got, want, bytes);
        free(got);
      }
      free(want);
      free(g.a);
      free(g.b);
    }
  }
  for (int t = 0; t < 4; t++) i8t_context_destroy(ctxs[t]);
}

#define DEFINE_GEMM_TEST(name, isa)                    \
  static void test_gemm_threads_##name(void **state) { \
    (void)state;                                       \
    test_select_isa_or_skip(isa);                      \
    check_gemms_match_serial();                        \
  }
I8T_TEST_ISAS(DEFINE_GEMM_TEST)

static void test_gemm_scratch_failure(void **state) {
  (void)state;
  i8t_context *ctx = make_context(2, I8T_PIN_COMPACT);
  uint64_t rng = 7;
  gemm_case g;
  make_case(&g, KIND_U8S8, 64, 64, 64, &rng);
  i8t_context_limit_scratch(ctx, 1024); /* far below a packed block */
  assert_null(i8t_context_scratch(ctx, 1, 4096));
  assert_null(i8t_context_scratch(ctx, 2, 64)); /* no such worker */
  i8t_status st;
  free(run_case(ctx, &g, &st));
  assert_int_equal(st, I8T_ERR_NO_MEMORY);
  assert_non_null(strstr(i8t_last_error(), "scratch"));
  i8t_context_limit_scratch(ctx, SIZE_MAX);
  void *want = run_case(NULL, &g, &st), *got = run_case(ctx, &g, &st);
  assert_int_equal(st, I8T_OK);
  assert_memory_equal(got, want, g.M * (g.N + 1) * 4);
  void *s = i8t_context_scratch(ctx, 1, 5u << 20); /* growth */
  assert_non_null(s);
  assert_int_equal((uintptr_t)s % 64, 0);
  free(want);
  free(got);
  free(g.a);
  free(g.b);
  i8t_context_destroy(ctx);
}

static float *random_tensor(size_t n, uint64_t seed) {
  float *x = malloc(n * sizeof *x);
  for (size_t i = 0; i < n; i++) x[i] = test_rand_float(&seed, -3.0f, 5.0f);
  return x;
}

/* Stochastic rounding with a counter that crosses 2^32 inside the tensor:
 * every _ctx variant must equal the serial call byte for byte. */
static void test_quantize_matches_serial(void **state) {
  (void)state;
  const size_t n = 3 * 16384 + 1234;
  float *x = random_tensor(n, 5);
  i8t_rounding r = {1, 77, (1ull << 32) - 20000};
  uint8_t *u_want = malloc(n), *u_got = malloc(n);
  int8_t *s_want = malloc(n), *s_got = malloc(n);
  int16_t *w_want = malloc(2 * n), *w_got = malloc(2 * n);
  i8t_qparams pw, pg;
  assert_int_equal(i8t_quantize_auto_u8(x, n, r, u_want, &pw), I8T_OK);
  assert_int_equal(i8t_quantize_auto_s8(x, n, r, s_want, &pw), I8T_OK);
  assert_int_equal(i8t_quantize_auto_s16(x, n, r, w_want, &pw), I8T_OK);
  for (int threads = 1; threads <= 3; threads++) {
    i8t_context *ctx = make_context(threads, I8T_PIN_COMPACT);
    assert_int_equal(i8t_quantize_auto_u8_ctx(ctx, x, n, r, u_got, &pg), I8T_OK);
    assert_memory_equal(u_got, u_want, n);
    assert_int_equal(i8t_quantize_auto_s8_ctx(ctx, x, n, r, s_got, &pg), I8T_OK);
    assert_memory_equal(s_got, s_want, n);
    assert_int_equal(i8t_quantize_auto_s16_ctx(ctx, x, n, r, w_got, &pg), I8T_OK);
    assert_memory_equal(w_got, w_want, 2 * n);
    assert_memory_equal(&pg, &pw, sizeof pg);
    float lo, hi, lo2, hi2;
    assert_int_equal(i8t_minmax_f32(x, n, &lo, &hi), I8T_OK);
    assert_int_equal(i8t_minmax_f32_ctx(ctx, x, n, &lo2, &hi2), I8T_OK);
    assert_true(lo == lo2 && hi == hi2);
    float saved = x[n - 3];
    x[n - 3] = NAN; /* NaN in the last chunk */
    assert_int_equal(i8t_minmax_f32_ctx(ctx, x, n, &lo2, &hi2), I8T_ERR_NONFINITE);
    x[n - 3] = saved;
    i8t_context_destroy(ctx);
  }
  free(x);
  free(u_want); free(u_got); free(s_want); free(s_got); free(w_want); free(w_got);
}

static void test_per_channel_matches_serial(void **state) {
  (void)state;
  const size_t channels = 37, len = 301;
  float *x = random_tensor(channels * len, 9);
  i8t_rounding r = {1, 3, 12345};
  int8_t *want = malloc(channels * len), *got = malloc(channels * len);
  float sw[37], sg[37];
  assert_int_equal(i8t_quantize_per_channel_s8(x, channels, len, r, want, sw), I8T_OK);
  i8t_context *ctx = make_context(3, I8T_PIN_COMPACT);
  assert_int_equal(i8t_quantize_per_channel_s8_ctx(ctx, x, channels, len, r, got, sg), I8T_OK);
  assert_memory_equal(got, want, channels * len);
  assert_memory_equal(sg, sw, sizeof sw);
  x[20 * len + 5] = INFINITY;
  x[30 * len] = -INFINITY;
  assert_int_equal(i8t_quantize_per_channel_s8_ctx(ctx, x, channels, len, r, got, sg),
                   I8T_ERR_NONFINITE);
  assert_non_null(strstr(i8t_last_error(), "channel 20 "));
  i8t_context_destroy(ctx);
  free(x);
  free(want);
  free(got);
}

#define LIST_GEMM_TEST(name, isa) cmocka_unit_test(test_gemm_threads_##name),

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_create_destroy_many),
      cmocka_unit_test(test_every_task_once),
      cmocka_unit_test(test_many_calls_spinning_and_sleeping),
      cmocka_unit_test(test_caller_woken_by_last_worker),
      cmocka_unit_test(test_destroy_right_after_job),
      cmocka_unit_test(test_all_workers_run_at_once),
      cmocka_unit_test(test_nested_call_runs_inline),
      cmocka_unit_test(test_concurrent_callers_serialised),
      cmocka_unit_test(test_pinning_compact),
      cmocka_unit_test(test_pinning_scatter),
      cmocka_unit_test(test_pinning_one_per_pu),
      cmocka_unit_test(test_placement_policies),
      cmocka_unit_test(test_caller_affinity_restored),
      cmocka_unit_test(test_openmp_team),
      cmocka_unit_test(test_more_threads_than_pus),
      cmocka_unit_test(test_one_thread),
      cmocka_unit_test(test_describe),
      cmocka_unit_test(test_environment),
      cmocka_unit_test(test_bad_options),
      I8T_TEST_ISAS(LIST_GEMM_TEST)
      cmocka_unit_test(test_gemm_scratch_failure),
      cmocka_unit_test(test_quantize_matches_serial),
      cmocka_unit_test(test_per_channel_matches_serial),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
