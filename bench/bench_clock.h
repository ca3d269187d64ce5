// The core clock for the benchmarks' ops_per_cycle counter.
// I8T_BENCH_GHZ=<GHz> sets it; otherwise it is measured once at startup by
// timing a chain of dependent integer adds (one cycle each on every x86-64 and
// aarch64 core) on the calling thread.
#ifndef INT8TRAIN_BENCH_CLOCK_H
#define INT8TRAIN_BENCH_CLOCK_H

#include <string>

namespace i8t_bench {

struct Clock {
  double ghz = 0.0;   // 0: unknown (no ops_per_cycle counter)
  std::string source; // "I8T_BENCH_GHZ", "measured" or why it is unknown
};

// Reads I8T_BENCH_GHZ or measures; call once, before the benchmarks run.
Clock core_clock();

}  // namespace i8t_bench

#endif
