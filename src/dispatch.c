/* Runtime dispatch: one kernel table per ISA, filled once; the selected one
 * starts as the best the CPU has, lowered by INT8TRAIN_ISA or i8t_isa_select()
 * and never raised above what the CPU can run. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_features.h"
#include "internal.h"
#include "kernel_table.h"

static const char *const isa_names[I8T_ISA_COUNT] = {"generic", "avx2", "avx512vnni",
                                                     "neon", "neondot"};

const char *i8t_isa_name(i8t_isa isa) {
  return (unsigned)isa < I8T_ISA_COUNT ? isa_names[isa] : "unknown";
}

i8t_status i8t_isa_from_name(const char *name, i8t_isa *isa) {
  for (int i = 0; name && i < I8T_ISA_COUNT; i++) {
    if (strcmp(name, isa_names[i]) == 0) {
      *isa = (i8t_isa)i;
      return I8T_OK;
    }
  }
  return i8t_error(I8T_ERR_INVALID_ARG,
                   "unknown ISA '%s' (expected generic, avx2, avx512vnni, neon or neondot)",
                   name ? name : "(null)");
}

/* Whether the build holds kernels for `isa` and the CPU can execute them. In
 * the AVX-512 emulation build (SIMDe), avx512vnni runs on any AVX2 CPU. */
static int isa_runs_here(i8t_isa isa) {
  const i8t_cpu_info *f = i8t_cpu_detect();
  (void)f; /* unused when only the generic kernels are built */
  switch (isa) {
    case I8T_ISA_GENERIC: return 1;
#ifdef I8T_HAVE_AVX2
    case I8T_ISA_AVX2: return f->avx2 && f->fma;
#endif
#ifdef I8T_HAVE_AVX512
    case I8T_ISA_AVX512VNNI:
#ifdef I8T_AVX512_EMULATED
      return f->avx2 && f->fma;
#else
      return f->avx512f && f->avx512bw && f->avx512vl && f->avx512vnni;
#endif
#endif
#ifdef I8T_HAVE_NEON
    case I8T_ISA_NEON: return f->neon;
#endif
#ifdef I8T_HAVE_NEONDOT
    case I8T_ISA_NEONDOT: return f->neon && f->asimddp;
#endif
    default: return 0;
  }
}

typedef void (*table_init_fn)(i8t_kernel_table *);

static table_init_fn table_init_for(i8t_isa isa) {
  switch (isa) {
    case I8T_ISA_GENERIC: return i8t_init_table_generic;
#ifdef I8T_HAVE_AVX2
    case I8T_ISA_AVX2: return i8t_init_table_avx2;
#endif
#ifdef I8T_HAVE_AVX512
    case I8T_ISA_AVX512VNNI: return i8t_init_table_avx512vnni;
#endif
#ifdef I8T_HAVE_NEON
    case I8T_ISA_NEON: return i8t_init_table_neon;
#endif
#ifdef I8T_HAVE_NEONDOT
    case I8T_ISA_NEONDOT: return i8t_init_table_neondot;
#endif
    default: return NULL;
  }
}

static i8t_kernel_table tables[I8T_ISA_COUNT];
static int table_ok[I8T_ISA_COUNT];
static const i8t_kernel_table *selected;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static i8t_isa compute_best(void) {
  i8t_isa best = I8T_ISA_GENERIC;
  for (int i = 1; i < I8T_ISA_COUNT; i++) {
#ifdef I8T_AVX512_EMULATED
    /* Emulated AVX-512 is for testing, far slower than AVX2: only on request. */
    if (i == I8T_ISA_AVX512VNNI) continue;
#endif
    if (table_ok[i]) best = (i8t_isa)i;
  }
  return best;
}

static void init_tables(void) {
  for (int i = 0; i < I8T_ISA_COUNT; i++) {
    table_init_fn init = table_init_for((i8t_isa)i);
    if (init && isa_runs_here((i8t_isa)i)) {
      init(&tables[i]);
      tables[i].isa = (i8t_isa)i;
      table_ok[i] = 1;
    }
  }
  selected = &tables[compute_best()];
  const char *env = getenv("INT8TRAIN_ISA");
  if (env && *env) {
    i8t_isa want = I8T_ISA_GENERIC;
    if (i8t_isa_from_name(env, &want) != I8T_OK) {
      fprintf(stderr, "int8train: ignoring INT8TRAIN_ISA: %s\n", i8t_last_error());
    } else if (!table_ok[want]) {
      fprintf(stderr,
              "int8train: ignoring INT8TRAIN_ISA=%s: this CPU or build cannot run it; "
              "using %s\n",
              env, i8t_isa_name(selected->isa));
    } else {
      selected = &tables[want];
    }
  }
}

static void ensure_init(void) { pthread_once(&init_once, init_tables); }

const i8t_kernel_table *i8t_kernels(void) {
  ensure_init();
  return selected;
}

const i8t_kernel_table *i8t_kernels_for_isa(i8t_isa isa) {
  ensure_init();
  return ((unsigned)isa < I8T_ISA_COUNT && table_ok[isa]) ? &tables[isa] : NULL;
}

int i8t_isa_available(i8t_isa isa) { return i8t_kernels_for_isa(isa) != NULL; }

i8t_isa i8t_isa_best(void) {
  ensure_init();
  return compute_best();
}

i8t_isa i8t_isa_selected(void) { return i8t_kernels()->isa; }

i8t_status i8t_isa_select(i8t_isa isa) {
  ensure_init();
  if ((unsigned)isa >= I8T_ISA_COUNT)
    return i8t_error(I8T_ERR_INVALID_ARG, "ISA value %d out of range", (int)isa);
  if (!table_ok[isa]) {
    return i8t_error(I8T_ERR_UNSUPPORTED,
                     "ISA %s is not available: the CPU lacks it or this build has no "
                     "kernels for it (best here: %s)",
                     i8t_isa_name(isa), i8t_isa_name(compute_best()));
  }
  selected = &tables[isa];
  return I8T_OK;
}

const char *i8t_cpu_features(void) {
  static char buf[256];
  const i8t_cpu_info *f = i8t_cpu_detect();
  buf[0] = 0;
  struct { int on; const char *name; } list[] = {
      {f->avx2, "avx2"},         {f->fma, "fma"},           {f->avx512f, "avx512f"},
      {f->avx512bw, "avx512bw"}, {f->avx512vl, "avx512vl"}, {f->avx512vnni, "avx512vnni"},
      {f->neon, "asimd"},        {f->asimddp, "asimddp"},
  };
  for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) {
    if (!list[i].on) continue;
    if (buf[0]) strcat(buf, ",");
    strcat(buf, list[i].name);
  }
  if (!buf[0]) strcpy(buf, "(none)");
  return buf;
}

/* The table's entries as (role, name) pairs, for `int8train info` and tests;
 * the optional ones last, the narrow GEMM kernels and the stem convolution's
 * ("(none)" where a path has none). Each entry appears once: its role is its
 * field's name, so the roles and the names cannot drift apart. */
#define KERNEL_ENTRIES(X)                                                                   \
  X(gemm_u8s8s32) X(gemm_s8s8s32) X(gemm_s16u8s32) X(minmax_f32) X(quantize_f32_u8)        \
  X(quantize_f32_s8) X(quantize_f32_s16) X(colwise_stats_u8) X(requantize_s32_u8)          \
  X(axpy_s32_f32) X(axpy_s8_f32) X(affine_u8_f32) X(affine_quantize_u8)                    \
  X(bn_lane_extremes) X(minmax_s32) X(mask_u8_f32)                                         \
  X(mask_pos_f32) X(affine_s8_f32) X(add_centered_u8_f32) X(quantize_f32_s8s16)            \
  X(bn_col_sums) X(grad_sum_absmax) X(grad_sum_quantize_s8) X(interleave_pixels_u8_s16)    \
  X(col2im_s32) X(interleave_rows_s16) X(gemm_u8s8s32_narrow) X(gemm_s8s8s32_narrow)       \
  X(gemm_s16u8s32_narrow) X(conv3x3_c1_fwd) X(conv3x3_c1_wgrad)

#define KERNEL_ROLE(entry) #entry,
static const char *const kernel_roles[] = {KERNEL_ENTRIES(KERNEL_ROLE)};
enum { KERNEL_COUNT = sizeof kernel_roles / sizeof kernel_roles[0] };

size_t i8t_kernel_count(void) { return KERNEL_COUNT; }

const char *i8t_kernel_role(size_t i) { return i < KERNEL_COUNT ? kernel_roles[i] : NULL; }

const char *i8t_kernel_name(size_t i) {
  const i8t_kernel_table *t = i8t_kernels();
#define KERNEL_NAME(entry) t->entry.name,
  const char *const names[KERNEL_COUNT] = {KERNEL_ENTRIES(KERNEL_NAME)};
#undef KERNEL_NAME
  if (i >= KERNEL_COUNT) return NULL;
  return names[i] ? names[i] : "(none)";
}
