/* int8train: 8-bit integer training of neural networks on CPUs.
 * Umbrella header: core types (status codes, ISA selection, contexts) and the
 * other public headers. Every exported name starts with i8t_ / I8T_. */
#ifndef INT8TRAIN_INT8TRAIN_H
#define INT8TRAIN_INT8TRAIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define I8T_VERSION_MAJOR 0
#define I8T_VERSION_MINOR 1
#define I8T_VERSION_PATCH 0

/** Status code returned by every fallible call. I8T_OK is zero. */
typedef enum i8t_status {
  I8T_OK = 0,
  I8T_ERR_INVALID_ARG,  /**< a NULL pointer, a zero or inconsistent size */
  I8T_ERR_SHAPE,        /**< shapes that do not fit together or exceed a documented limit */
  I8T_ERR_NONFINITE,    /**< NaN or Inf in a tensor that is being quantized */
  I8T_ERR_NO_MEMORY,
  I8T_ERR_UNSUPPORTED,  /**< an ISA or feature this CPU or build does not have */
  I8T_ERR_IO,           /**< a file could not be opened, read or written */
  I8T_ERR_FORMAT,       /**< a file is truncated, corrupt or of the wrong kind */
} i8t_status;

/** Execution context (threads, scratch); see context.h. Declared here so that
 * every public header can name it whatever the include order. */
typedef struct i8t_context i8t_context;

/** Human-readable name of a status ("invalid argument", ...). Never NULL. */
const char *i8t_status_string(i8t_status status);

/** Message of the last error raised on this thread (file names, sizes, ...),
 * or "" if none. Valid until the next failing call on the same thread. */
const char *i8t_last_error(void);

/* ------------------------------------------------------------------------ */
/* Instruction sets and kernel dispatch                                     */
/* ------------------------------------------------------------------------ */

/** Kernel paths. Within one architecture a larger value is a richer ISA:
 * GENERIC < AVX2 < AVX512VNNI on x86-64, GENERIC < NEON < NEONDOT on aarch64. */
typedef enum i8t_isa {
  I8T_ISA_GENERIC = 0,    /**< portable C, every CPU */
  I8T_ISA_AVX2 = 1,       /**< x86-64 AVX2 + FMA */
  I8T_ISA_AVX512VNNI = 2, /**< x86-64 AVX-512 F/BW/VL + VNNI */
  I8T_ISA_NEON = 3,       /**< aarch64 Advanced SIMD, no dot product */
  I8T_ISA_NEONDOT = 4,    /**< aarch64 Advanced SIMD with SDOT/UDOT */
  I8T_ISA_COUNT
} i8t_isa;

/** Lower-case name used by INT8TRAIN_ISA and `int8train info` ("avx2", ...). */
const char *i8t_isa_name(i8t_isa isa);

/** Parses an ISA name; returns I8T_ERR_INVALID_ARG for an unknown name. */
i8t_status i8t_isa_from_name(const char *name, i8t_isa *isa);

/** Whether this build contains kernels for `isa` and the CPU can run them. */
int i8t_isa_available(i8t_isa isa);

/** The best ISA this CPU and build can run. */
i8t_isa i8t_isa_best(void);

/** The ISA whose kernels are in use. On first use it is i8t_isa_best(),
 * lowered by the environment variable INT8TRAIN_ISA if that is set. */
i8t_isa i8t_isa_selected(void);

/** Selects the kernels of `isa` for the whole process. Fails with
 * I8T_ERR_UNSUPPORTED (and a message in i8t_last_error()) when the CPU or the
 * build lacks it: the selection can be lowered but never raised above what
 * the CPU has. Not thread-safe against concurrent kernel calls. */
i8t_status i8t_isa_select(i8t_isa isa);

/** Comma-separated CPU features detected ("avx2,fma,avx512f,..."). */
const char *i8t_cpu_features(void);

/** Number of kernels in the selected table, and the name of kernel `i`
 * ("gemm_u8s8s32_4x16c2__avx2", ...); NULL past the end. */
size_t i8t_kernel_count(void);
const char *i8t_kernel_name(size_t i);
/** The role of kernel `i` in the table ("gemm_u8s8s32", "quantize_f32_u8", ...). */
const char *i8t_kernel_role(size_t i);

#ifdef __cplusplus
}
#endif

#include "int8train/context.h"
#include "int8train/kernels.h"

#endif
