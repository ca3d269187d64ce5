// Shared by the layer, quantizer and training-step benchmarks
// (bench_layers.cc, bench_quantize.cc, bench_train.cc): which kernel paths
// run here, the thread counts to measure, one context + layer workspace per
// thread count, reproducible random operands and case registration.
//
// These cases register themselves at static initialisation (as BENCHMARK()
// does), so int8train_bench's main needs no hook for them. Their thread count
// is part of the case name (.../t1, .../t2) and comes from I8T_BENCH_THREADS
// (a comma-separated list, default "1,2"), not from --threads, which sets the
// GEMM cases only: one JSON file then holds both counts, so ratios at 1 and 2
// threads come from one run.
#ifndef INT8TRAIN_BENCH_COMMON_H
#define INT8TRAIN_BENCH_COMMON_H

#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "int8train/layers.h"

namespace i8t_bench {

// One of int8train's kernel paths that runs natively on this machine.
struct IsaPath {
  i8t_isa isa;
  const char *name; // "generic", "avx2", "avx512vnni", ...
};

// Every path i8t_isa_available reports, except an emulated avx512vnni (a
// SIMDe test build, far slower than any real path).
const std::vector<IsaPath> &isa_paths();

// I8T_BENCH_THREADS, parsed once (bad entries are reported and dropped).
const std::vector<int> &thread_counts();

// The context and workspace for `threads` workers (created on first use,
// fp32 backend oneDNN when the build has it). Also sets OpenMP's thread
// count on the calling thread, so that oneDNN runs on as many threads.
struct Env {
  i8t_context *ctx = nullptr;
  i8t_workspace *ws = nullptr;
};
Env *env_for(int threads);

// Selects `isa` for the case; false (and the case skipped with the reason)
// when that fails.
bool select_isa(benchmark::State &state, i8t_isa isa);

// Marks the case failed with the library's last error; returns false.
bool fail(benchmark::State &state, const char *what);

// Adds a throughput counter: `per_iteration` units per iteration / second.
void rate_counter(benchmark::State &state, const char *name, double per_iteration);

// "t1", "t2": the thread part of a case name.
std::string threads_token(int threads);

// Registers `fn` (a callable taking benchmark::State &) under `name`, timed
// in wall-clock time (the work runs on several threads) and milliseconds.
template <typename Fn>
benchmark::internal::Benchmark *add_case(const std::string &name, Fn &&fn) {
  auto *b = benchmark::RegisterBenchmark(name.c_str(), std::forward<Fn>(fn));
  b->UseRealTime()->Unit(benchmark::kMillisecond);
  return b;
}

// xorshift64*: reproducible operands.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed ? seed : 0x9E3779B97F4A7C15ull) {}
  uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
  int32_t range(int32_t lo, int32_t hi) {
    return lo + static_cast<int32_t>((next() >> 32) % static_cast<uint64_t>(hi - lo + 1));
  }
  // Roughly normal (sum of 4 uniforms), mean 0, standard deviation `sd`.
  float normal(float sd) {
    double u = 0.0;
    for (int i = 0; i < 4; i++) u += static_cast<double>(next() >> 11) * 0x1.0p-53;
    return static_cast<float>((u - 2.0) * 1.7320508 * sd);
  }
};

template <typename T>
std::vector<T> random_ints(size_t n, int32_t lo, int32_t hi, uint64_t seed) {
  Rng rng(seed);
  std::vector<T> v(n);
  for (auto &x : v) x = static_cast<T>(rng.range(lo, hi));
  return v;
}

std::vector<float> random_floats(size_t n, float sd, uint64_t seed);

}  // namespace i8t_bench

#endif
