/* CPU feature detection: cpuid/xgetbv on x86-64, getauxval(AT_HWCAP) on aarch64. */
#ifndef INT8TRAIN_CPU_FEATURES_H
#define INT8TRAIN_CPU_FEATURES_H

typedef struct i8t_cpu_info {
  int avx2, fma, avx512f, avx512bw, avx512vl, avx512vnni, os_avx, os_avx512;
  int neon, asimddp;
} i8t_cpu_info;

/* Detected once; cached. */
const i8t_cpu_info *i8t_cpu_detect(void);

#endif
