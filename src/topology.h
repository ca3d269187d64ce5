/* The machine as the thread pool sees it: the physical cores this process may
 * run on, each a list of OS processor (PU) indices, grouped by package and
 * NUMA node. Read from hwloc when the build has it, else from sysfs. */
#ifndef INT8TRAIN_TOPOLOGY_H
#define INT8TRAIN_TOPOLOGY_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* cpu_set_t, sched_{get,set}affinity */
#endif
#include <sched.h>

#include "int8train/int8train.h" /* i8t_pin_policy via context.h */

typedef struct i8t_core {
  int package;  /* dense index over the usable cores' packages */
  int numa;     /* dense index over their NUMA nodes (0 when unknown) */
  int first_pu; /* its PUs are pu_os[first_pu .. first_pu + n_pus) */
  int n_pus;
} i8t_core;

typedef struct i8t_topology {
  int n_cores, n_pus, n_packages, n_numa; /* usable ones only */
  i8t_core *cores;                        /* in topology (logical) order */
  int *pu_os;                             /* OS indices, core after core */
  char summary[384]; /* machine, source, caches; one line, no newline */
} i8t_topology;

/* Reads the topology restricted to the PUs in `usable` (non-empty). */
i8t_status i8t_topology_load(const cpu_set_t *usable, i8t_topology *out);
void i8t_topology_free(i8t_topology *topo);

/* Where one worker runs: topology core `core` (-1: not pinned), bound to
 * pu_os[first_pu .. first_pu + n_pus). */
typedef struct i8t_placement {
  int core, first_pu, n_pus;
} i8t_placement;

/* Places `threads` workers (worker 0 first) by `pin`. Up to one worker per
 * core: each bound to all PUs of its core. Up to one per PU: each bound to
 * one PU, the first PU of every core before any second one (SMT siblings
 * last). More workers than PUs, or I8T_PIN_NONE: none pinned. Core order:
 * compact = topology order; scatter = the first core of every NUMA node (or
 * package, on one-node machines), then the second of each, and so on.
 * Returns non-zero if the workers are pinned. */
int i8t_topology_place(const i8t_topology *topo, i8t_pin_policy pin, int threads,
                       i8t_placement *out);

/* Writes the PUs in `set` as "0-3,8" to buf (snprintf semantics). */
int i8t_cpuset_format(const cpu_set_t *set, char *buf, size_t size);

#endif
