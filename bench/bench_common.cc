// Kernel paths, thread counts, per-thread-count contexts and the small
// helpers the layer / quantizer / training-step benchmarks share
// (bench_common.h).
#include "bench_common.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>

#ifdef I8T_HAVE_ONEDNN
#include <omp.h>
#endif

namespace i8t_bench {

const std::vector<IsaPath> &isa_paths() {
  static const std::vector<IsaPath> paths = [] {
    std::vector<IsaPath> v;
    for (int i = 0; i < I8T_ISA_COUNT; i++) {
      i8t_isa isa = static_cast<i8t_isa>(i);
      if (!i8t_isa_available(isa)) continue;
      // An AVX-512 table on a CPU without AVX-512 VNNI is the SIMDe emulation.
      if (isa == I8T_ISA_AVX512VNNI && !std::strstr(i8t_cpu_features(), "avx512vnni")) continue;
      v.push_back({isa, i8t_isa_name(isa)});
    }
    return v;
  }();
  return paths;
}

const std::vector<int> &thread_counts() {
  static const std::vector<int> counts = [] {
    std::vector<int> v;
    const char *env = std::getenv("I8T_BENCH_THREADS");
    std::string spec = env && *env ? env : "1,2";
    size_t pos = 0;
    while (pos <= spec.size()) {
      size_t comma = spec.find(',', pos);
      std::string item = spec.substr(pos, comma == std::string::npos ? std::string::npos
                                                                     : comma - pos);
      char *end = nullptr;
      long n = std::strtol(item.c_str(), &end, 10);
      if (item.empty() || *end || n < 1 || n > I8T_MAX_THREADS)
        std::fprintf(stderr, "int8train_bench: I8T_BENCH_THREADS: ignoring '%s'\n", item.c_str());
      else
        v.push_back(static_cast<int>(n));
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
    if (v.empty()) v.push_back(1);
    return v;
  }();
  return counts;
}

namespace {

// Owns the contexts; destroyed after main returns, on the main thread (the
// thread that created them, as i8t_context_destroy requires).
struct EnvTable {
  std::map<int, Env> envs;
  ~EnvTable() {
    for (auto &e : envs) {
      i8t_workspace_destroy(e.second.ws);
      i8t_context_destroy(e.second.ctx);
    }
  }
};

EnvTable &env_table() {
  static EnvTable table;
  return table;
}

}  // namespace

Env *env_for(int threads) {
  auto &envs = env_table().envs;
  auto it = envs.find(threads);
  if (it == envs.end()) {
    Env e;
    i8t_context_options opts;
    i8t_context_options_default(&opts);
    opts.threads = threads;
    if (i8t_context_create(&opts, &e.ctx) != I8T_OK) return nullptr;
    if (i8t_workspace_create(e.ctx, &e.ws) != I8T_OK) {
      i8t_context_destroy(e.ctx);
      return nullptr;
    }
    if (i8t_have_onednn()) i8t_workspace_set_fp32_backend(e.ws, I8T_FP32_ONEDNN);
    it = envs.emplace(threads, e).first;
  }
#ifdef I8T_HAVE_ONEDNN
  // i8t_context_create sets OpenMP's count (and starts its team unpinned);
  // set it again per case, as cases of other thread counts change it.
  omp_set_num_threads(threads);
#endif
  return &it->second;
}

bool select_isa(benchmark::State &state, i8t_isa isa) {
  if (i8t_isa_select(isa) == I8T_OK) return true;
  state.SkipWithError(i8t_last_error());
  return false;
}

bool fail(benchmark::State &state, const char *what) {
  static thread_local std::string msg;
  msg = std::string(what) + ": " + i8t_last_error();
  state.SkipWithError(msg.c_str());
  return false;
}

void rate_counter(benchmark::State &state, const char *name, double per_iteration) {
  state.counters[name] =
      benchmark::Counter(per_iteration, benchmark::Counter::kIsIterationInvariantRate);
}

std::string threads_token(int threads) { return "t" + std::to_string(threads); }

std::vector<float> random_floats(size_t n, float sd, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto &x : v) x = rng.normal(sd);
  return v;
}

}  // namespace i8t_bench
