/* Topology discovery for the thread pool: hwloc when the build has it (cores,
 * packages, NUMA nodes, caches), else Linux sysfs (core_id and
 * physical_package_id per PU), else one core per PU of the affinity mask. */
#include "topology.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef I8T_HAVE_HWLOC
#include <hwloc.h>
#endif

#include "internal.h"

/* ------------------------------------------------------------------------ */
/* Shared helpers                                                           */
/* ------------------------------------------------------------------------ */

int i8t_cpuset_format(const cpu_set_t *set, char *buf, size_t size) {
  size_t len = 0;
  if (size) buf[0] = '\0';
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (!CPU_ISSET(cpu, set)) continue;
    int last = cpu;
    while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, set)) last++;
    char item[32];
    int n = last > cpu ? snprintf(item, sizeof item, "%s%d-%d", len ? "," : "", cpu, last)
                       : snprintf(item, sizeof item, "%s%d", len ? "," : "", cpu);
    if (len + (size_t)n < size) memcpy(buf + len, item, (size_t)n + 1);
    len += (size_t)n;
    cpu = last;
  }
  return (int)len;
}

/* Replaces raw ids (logical indices, sysfs ids) by dense 0.. indices in
 * order of first appearance; returns how many distinct ids there were. */
static int densify(int *ids, int n) {
  int distinct = 0;
  int *seen = malloc((size_t)(n > 0 ? n : 1) * sizeof *seen);
  if (!seen) return 1;
  for (int i = 0; i < n; i++) {
    int d = 0;
    while (d < distinct && seen[d] != ids[i]) d++;
    if (d == distinct) seen[distinct++] = ids[i];
    ids[i] = d;
  }
  free(seen);
  return distinct;
}

static void densify_cores(i8t_topology *t) {
  int *pkg = malloc((size_t)t->n_cores * sizeof *pkg);
  int *numa = malloc((size_t)t->n_cores * sizeof *numa);
  t->n_packages = t->n_numa = 1;
  if (pkg && numa) {
    for (int i = 0; i < t->n_cores; i++) {
      pkg[i] = t->cores[i].package;
      numa[i] = t->cores[i].numa;
    }
    t->n_packages = densify(pkg, t->n_cores);
    t->n_numa = densify(numa, t->n_cores);
    for (int i = 0; i < t->n_cores; i++) {
      t->cores[i].package = pkg[i];
      t->cores[i].numa = numa[i];
    }
  }
  free(pkg);
  free(numa);
}

static i8t_status alloc_topology(i8t_topology *t, int max_cores, int max_pus) {
  memset(t, 0, sizeof *t);
  t->cores = malloc((size_t)(max_cores > 0 ? max_cores : 1) * sizeof *t->cores);
  t->pu_os = malloc((size_t)(max_pus > 0 ? max_pus : 1) * sizeof *t->pu_os);
  if (t->cores && t->pu_os) return I8T_OK;
  i8t_topology_free(t);
  return i8t_error(I8T_ERR_NO_MEMORY, "context: topology tables");
}

void i8t_topology_free(i8t_topology *t) {
  free(t->cores);
  free(t->pu_os);
  t->cores = NULL;
  t->pu_os = NULL;
}

/* ------------------------------------------------------------------------ */
/* hwloc                                                                    */
/* ------------------------------------------------------------------------ */

#ifdef I8T_HAVE_HWLOC
static void format_size(char *buf, size_t size, unsigned long long bytes) {
  if (bytes >= (1ull << 20) && bytes % (1ull << 20) == 0)
    snprintf(buf, size, "%llu MiB", bytes >> 20);
  else
    snprintf(buf, size, "%llu KiB", bytes >> 10);
}

static int numa_of(hwloc_topology_t topo, hwloc_obj_t obj) {
  hwloc_obj_t node = NULL;
  while ((node = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE, node)))
    if (!hwloc_bitmap_iszero(node->cpuset) && hwloc_bitmap_isincluded(obj->cpuset, node->cpuset))
      return (int)node->logical_index;
  return 0;
}

/* Appends "L1d 48 KiB x2"-style entries for the data/unified caches. */
static void describe_caches(hwloc_topology_t topo, char *buf, size_t size) {
  static const hwloc_obj_type_t levels[] = {HWLOC_OBJ_L1CACHE, HWLOC_OBJ_L2CACHE,
                                            HWLOC_OBJ_L3CACHE};
  static const char *names[] = {"L1d", "L2", "L3"};
  for (int i = 0; i < 3; i++) {
    int n = hwloc_get_nbobjs_by_type(topo, levels[i]);
    hwloc_obj_t obj = n > 0 ? hwloc_get_obj_by_type(topo, levels[i], 0) : NULL;
    if (!obj || !obj->attr) continue;
    char sz[32];
    format_size(sz, sizeof sz, (unsigned long long)obj->attr->cache.size);
    size_t len = strlen(buf);
    snprintf(buf + len, size - len, ", %s %s x%d", names[i], sz, n);
  }
}

static i8t_status load_hwloc(const cpu_set_t *usable, i8t_topology *out) {
  hwloc_topology_t topo;
  if (hwloc_topology_init(&topo) != 0) return I8T_ERR_UNSUPPORTED;
  if (hwloc_topology_load(topo) != 0) {
    hwloc_topology_destroy(topo);
    return I8T_ERR_UNSUPPORTED;
  }
  hwloc_obj_type_t unit =
      hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
  int n_units = hwloc_get_nbobjs_by_type(topo, unit);
  int n_pus_total = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
  i8t_status st = alloc_topology(out, n_units, n_pus_total);
  if (st) {
    hwloc_topology_destroy(topo);
    return st;
  }
  for (int i = 0; i < n_units; i++) {
    hwloc_obj_t obj = hwloc_get_obj_by_type(topo, unit, (unsigned)i);
    int first = out->n_pus;
    unsigned pu;
    hwloc_bitmap_foreach_begin(pu, obj->cpuset) {
      if (pu < CPU_SETSIZE && CPU_ISSET(pu, usable) && out->n_pus < n_pus_total)
        out->pu_os[out->n_pus++] = (int)pu;
    }
    hwloc_bitmap_foreach_end();
    if (out->n_pus == first) continue; /* no usable PU on this core */
    hwloc_obj_t pkg = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, obj);
    out->cores[out->n_cores++] = (i8t_core){.package = pkg ? (int)pkg->logical_index : 0,
                                            .numa = numa_of(topo, obj),
                                            .first_pu = first,
                                            .n_pus = out->n_pus - first};
  }
  snprintf(out->summary, sizeof out->summary,
           "hwloc: %d package(s), %d NUMA node(s), %d cores, %d PUs",
           hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE),
           I8T_MAX(1, hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE)),
           hwloc_get_nbobjs_by_type(topo, unit), n_pus_total);
  describe_caches(topo, out->summary, sizeof out->summary);
  hwloc_topology_destroy(topo);
  return I8T_OK;
}
#endif

/* ------------------------------------------------------------------------ */
/* sysfs fallback                                                           */
/* ------------------------------------------------------------------------ */

static int read_sysfs_int(int cpu, const char *leaf, int fallback) {
  char path[128];
  snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/%s", cpu, leaf);
  FILE *f = fopen(path, "r");
  int v = fallback;
  if (f) {
    if (fscanf(f, "%d", &v) != 1) v = fallback;
    fclose(f);
  }
  return v;
}

/* The NUMA node of a PU: the "node<N>" link in its sysfs directory. */
static int sysfs_numa_node(int cpu) {
  char path[64];
  snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d", cpu);
  DIR *d = opendir(path);
  int node = 0;
  if (!d) return 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (strncmp(e->d_name, "node", 4) == 0 && e->d_name[4] >= '0' && e->d_name[4] <= '9') {
      node = atoi(e->d_name + 4);
      break;
    }
  }
  closedir(d);
  return node;
}

/* Reads the first word of a sysfs file of `cpu` into buf; 0 if missing. */
static int read_sysfs_word(int cpu, const char *leaf, char *buf, size_t size) {
  char path[128], fmt[16];
  snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/%s", cpu, leaf);
  snprintf(fmt, sizeof fmt, "%%%zus", size - 1);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  int ok = fscanf(f, fmt, buf) == 1;
  fclose(f);
  return ok;
}

static void sysfs_caches(int cpu, char *buf, size_t size) {
  for (int idx = 0; idx < 8; idx++) {
    char leaf[64], type[32], sz[32];
    snprintf(leaf, sizeof leaf, "cache/index%d/type", idx);
    if (!read_sysfs_word(cpu, leaf, type, sizeof type)) break;
    snprintf(leaf, sizeof leaf, "cache/index%d/size", idx);
    if (!read_sysfs_word(cpu, leaf, sz, sizeof sz) || strcmp(type, "Instruction") == 0) continue;
    snprintf(leaf, sizeof leaf, "cache/index%d/level", idx);
    int level = read_sysfs_int(cpu, leaf, 0);
    size_t len = strlen(buf);
    snprintf(buf + len, size - len, ", L%d%s %s", level, level == 1 ? "d" : "", sz);
  }
}

typedef struct pu_key {
  int package, core, cpu, numa;
} pu_key;

static int compare_pu(const void *a, const void *b) {
  const pu_key *x = a, *y = b;
  if (x->package != y->package) return x->package < y->package ? -1 : 1;
  if (x->core != y->core) return x->core < y->core ? -1 : 1;
  return (x->cpu > y->cpu) - (x->cpu < y->cpu);
}

static i8t_status load_sysfs(const cpu_set_t *usable, i8t_topology *out) {
  int n = CPU_COUNT(usable);
  pu_key *keys = malloc((size_t)(n > 0 ? n : 1) * sizeof *keys);
  i8t_status st = keys ? alloc_topology(out, n, n)
                       : i8t_error(I8T_ERR_NO_MEMORY, "context: topology tables");
  if (st) {
    free(keys);
    return st;
  }
  int k = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE && k < n; cpu++) {
    if (!CPU_ISSET(cpu, usable)) continue;
    /* Without core_id every PU counts as its own core. */
    keys[k++] = (pu_key){read_sysfs_int(cpu, "topology/physical_package_id", 0),
                         read_sysfs_int(cpu, "topology/core_id", -1 - cpu), cpu,
                         sysfs_numa_node(cpu)};
  }
  qsort(keys, (size_t)k, sizeof *keys, compare_pu);
  for (int i = 0; i < k; i++) {
    int new_core = i == 0 || keys[i].package != keys[i - 1].package ||
                   keys[i].core != keys[i - 1].core;
    if (new_core)
      out->cores[out->n_cores++] = (i8t_core){keys[i].package, keys[i].numa, out->n_pus, 0};
    out->cores[out->n_cores - 1].n_pus++;
    out->pu_os[out->n_pus++] = keys[i].cpu;
  }
  snprintf(out->summary, sizeof out->summary, "sysfs (no hwloc): %d cores, %d PUs",
           out->n_cores, out->n_pus);
  if (k > 0) sysfs_caches(keys[0].cpu, out->summary, sizeof out->summary);
  free(keys);
  return I8T_OK;
}

i8t_status i8t_topology_load(const cpu_set_t *usable, i8t_topology *out) {
  i8t_status st = I8T_ERR_UNSUPPORTED;
#ifdef I8T_HAVE_HWLOC
  st = load_hwloc(usable, out);
  if (st == I8T_OK && out->n_cores == 0) {
    i8t_topology_free(out); /* hwloc saw none of our PUs: trust the mask */
    st = I8T_ERR_UNSUPPORTED;
  }
  if (st != I8T_OK && st != I8T_ERR_UNSUPPORTED) return st;
#endif
  if (st == I8T_ERR_UNSUPPORTED) st = load_sysfs(usable, out);
  if (st == I8T_OK) densify_cores(out);
  return st;
}

/* ------------------------------------------------------------------------ */
/* Placement                                                                */
/* ------------------------------------------------------------------------ */

static int domain_of(const i8t_topology *t, int core) {
  return t->n_numa > 1 ? t->cores[core].numa : t->cores[core].package;
}

/* Core order of a policy (see i8t_topology_place). Core lists are in
 * topology order, so within one rank the domains come in order too. */
static void core_order(const i8t_topology *t, i8t_pin_policy pin, int *order) {
  int n = t->n_cores, k = 0;
  int *rank = pin == I8T_PIN_SCATTER ? calloc((size_t)n, sizeof *rank) : NULL;
  if (!rank) { /* compact (or no memory for scatter's ranks) */
    for (int i = 0; i < n; i++) order[i] = i;
    return;
  }
  int max_rank = 0;
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < i; j++) rank[i] += domain_of(t, j) == domain_of(t, i);
    max_rank = I8T_MAX(max_rank, rank[i]);
  }
  for (int r = 0; r <= max_rank; r++)
    for (int i = 0; i < n; i++)
      if (rank[i] == r) order[k++] = i;
  free(rank);
}

int i8t_topology_place(const i8t_topology *t, i8t_pin_policy pin, int threads,
                       i8t_placement *out) {
  for (int i = 0; i < threads; i++) out[i] = (i8t_placement){-1, 0, 0};
  int *order = malloc((size_t)(t->n_cores > 0 ? t->n_cores : 1) * sizeof *order);
  if (pin == I8T_PIN_NONE || threads > t->n_pus || t->n_cores == 0 || !order) {
    free(order);
    return 0;
  }
  core_order(t, pin, order);
  if (threads <= t->n_cores) {
    for (int i = 0; i < threads; i++) {
      const i8t_core *c = &t->cores[order[i]];
      out[i] = (i8t_placement){order[i], c->first_pu, c->n_pus};
    }
  } else {
    int w = 0;
    for (int level = 0; w < threads; level++)
      for (int i = 0; i < t->n_cores && w < threads; i++) {
        const i8t_core *c = &t->cores[order[i]];
        if (level < c->n_pus) out[w++] = (i8t_placement){order[i], c->first_pu + level, 1};
      }
  }
  free(order);
  return 1;
}
