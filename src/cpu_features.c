/* CPU feature detection. x86-64: cpuid leaves 1 and 7, and xgetbv to confirm
 * the OS saves the YMM/ZMM state. aarch64: HWCAP_ASIMD and HWCAP_ASIMDDP. */
#include "cpu_features.h"

#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>

static unsigned long long read_xcr0(void) {
  unsigned int lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((unsigned long long)hi << 32) | lo;
}

static void detect(i8t_cpu_info *f) {
  unsigned int a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return;
  int osxsave = (c >> 27) & 1;
  f->fma = (c >> 12) & 1;
  if (osxsave) {
    unsigned long long xcr0 = read_xcr0();
    f->os_avx = (xcr0 & 0x6) == 0x6;            /* XMM | YMM */
    f->os_avx512 = f->os_avx && (xcr0 & 0xE0) == 0xE0; /* opmask | ZMM */
  }
  if (__get_cpuid_max(0, 0) >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    f->avx2 = (b >> 5) & 1;
    f->avx512f = (b >> 16) & 1;
    f->avx512bw = (b >> 30) & 1;
    f->avx512vl = (b >> 31) & 1;
    f->avx512vnni = (c >> 11) & 1;
  }
  if (!f->os_avx) f->avx2 = f->fma = 0;
  if (!f->os_avx512) f->avx512f = f->avx512bw = f->avx512vl = f->avx512vnni = 0;
}
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
static void detect(i8t_cpu_info *f) {
  unsigned long hw = getauxval(AT_HWCAP);
  f->neon = (hw & HWCAP_ASIMD) != 0;
  f->asimddp = (hw & HWCAP_ASIMDDP) != 0;
}
#else
static void detect(i8t_cpu_info *f) { (void)f; }
#endif

const i8t_cpu_info *i8t_cpu_detect(void) {
  static i8t_cpu_info features;
  static int done;
  if (!done) {
    i8t_cpu_info f;
    memset(&f, 0, sizeof f);
    detect(&f);
    features = f;
    done = 1;
  }
  return &features;
}
