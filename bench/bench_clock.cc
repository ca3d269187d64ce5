// Measures the core clock with a dependent add chain (see bench_clock.h).
// The chain runs at one add per cycle whatever the turbo state, so
// adds / second is the clock of this core at the time of measurement. The
// addend is a register, not an immediate: recent Intel cores fold
// add-immediate chains at rename, which would count several adds per cycle. Heavy
// AVX-512 code may run at a lower clock: ops_per_cycle is then a slight
// underestimate; pin the figure with I8T_BENCH_GHZ when it matters.
#include "bench_clock.h"

#include <chrono>
#include <cstdint>
#include <cstdlib>

namespace i8t_bench {
namespace {

constexpr int kAddsPerLoop = 32;

// Runs `loops` iterations of kAddsPerLoop dependent adds.
bool add_chain(uint64_t loops) {
  static volatile uint64_t one_source = 1;
  uint64_t one = one_source;
#if defined(__x86_64__)
#define I8T_ADD4 "add %2, %0\n\tadd %2, %0\n\tadd %2, %0\n\tadd %2, %0\n\t"
  uint64_t x = 0;
  __asm__ volatile(
      "1:\n\t" I8T_ADD4 I8T_ADD4 I8T_ADD4 I8T_ADD4 I8T_ADD4 I8T_ADD4 I8T_ADD4 I8T_ADD4
      "dec %1\n\tjnz 1b"
      : "+r"(x), "+r"(loops)
      : "r"(one)
      : "cc");
  return true;
#elif defined(__aarch64__)
#define I8T_ADD4 "add %0, %0, %2\n\tadd %0, %0, %2\n\tadd %0, %0, %2\n\tadd %0, %0, %2\n\t"
  uint64_t x = 0;
  __asm__ volatile(
      "1:\n\t" I8T_ADD4 I8T_ADD4 I8T_ADD4 I8T_ADD4 I8T_ADD4 I8T_ADD4 I8T_ADD4 I8T_ADD4
      "subs %1, %1, #1\n\tb.ne 1b"
      : "+r"(x), "+r"(loops)
      : "r"(one)
      : "cc");
  return true;
#else
  (void)loops;
  (void)one;
  return false;
#endif
}

}  // namespace

Clock core_clock() {
  Clock c;
  if (const char *env = std::getenv("I8T_BENCH_GHZ")) {
    char *end = nullptr;
    double v = std::strtod(env, &end);
    if (end != env && v > 0.0) {
      c.ghz = v;
      c.source = "I8T_BENCH_GHZ";
      return c;
    }
  }
  const uint64_t loops = 1u << 20; // ~33 M adds: about 10 ms
  if (!add_chain(1000)) {
    c.source = "unknown (set I8T_BENCH_GHZ)";
    return c;
  }
  double best = 0.0; // fastest of several runs: the least disturbed one
  for (int rep = 0; rep < 7; rep++) {
    auto t0 = std::chrono::steady_clock::now();
    add_chain(loops);
    std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    double ghz = static_cast<double>(loops) * kAddsPerLoop / dt.count() / 1e9;
    if (ghz > best) best = ghz;
  }
  c.ghz = best;
  c.source = "measured";
  return c;
}

}  // namespace i8t_bench
