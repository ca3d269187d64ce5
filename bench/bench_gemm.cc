// int8train_bench: the three training GEMMs on every kernel path this machine
// runs, beside oneDNN's int8 and fp32 GEMMs at the same shapes.
//
// Case names: gemm/<kind>/<impl>/<M>x<N>x<K>/t<threads>
//   kind  u8s8 (forward), s8s8 (grad input), s16u8 (weight gradient)
//   impl  generic, avx2, avx512vnni, neon, neondot: int8train's kernel table
//         (i8t_isa_select), registered only where i8t_isa_available says it
//         runs natively; onednn: dnnl_gemm_u8s8s32 / dnnl_gemm_s8s8s32 (no
//         int16 GEMM in oneDNN, so none for s16u8); onednn_f32: dnnl_sgemm.
//   threads  each count of I8T_BENCH_THREADS (default "1,2"), as for the
//         layer cases: one context per count (bench_common.h), and oneDNN's
//         OpenMP set to the same count per case, so one run holds the 1- and
//         2-thread times of every GEMM (the generic path: 1 thread only).
// Counters: GOPS = 2*M*N*K / s / 1e9, ops_per_cycle = GOPS / core GHz (see
// bench_clock.h).
//
// Exactness differs: int8train is exact for the full quantizer ranges. On
// AVX2 CPUs oneDNN's int8 GEMM uses vpmaddubsw, which saturates int16 pair
// sums for full-range s8 B (255 * 127 * 2 > 32767), so its results at these
// inputs are wrong there; its speed is still the fair peer.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench_clock.h"
#include "bench_common.h"
#include "int8train/int8train.h" // umbrella: context.h and kernels.h

#ifdef I8T_HAVE_ONEDNN
#include <dnnl.h>
#endif

namespace {

enum class Kind { u8s8, s8s8, s16u8 };
enum class ImplType { ours, onednn_int, onednn_f32 };

struct Shape {
  int M, N, K;
};

struct Impl {
  const char *name;
  ImplType type;
  i8t_isa isa; // for ImplType::ours
};

const Shape kShapes[] = {
    {256, 256, 256},  {1024, 1024, 1024}, {3136, 64, 576}, // ResNet conv layers (im2col)
    {784, 128, 1152}, {12544, 32, 144},   {64, 576, 3136}, // last: a weight gradient
    {100352, 16, 144}, // resnet8's 16-channel 3x3 conv at 28x28, batch 128 (narrow kernels)
};

const struct {
  Kind kind;
  const char *name;
} kKinds[] = {{Kind::u8s8, "u8s8"}, {Kind::s8s8, "s8s8"}, {Kind::s16u8, "s16u8"}};

const Impl kImpls[] = {
    {"generic", ImplType::ours, I8T_ISA_GENERIC},
    {"avx2", ImplType::ours, I8T_ISA_AVX2},
    {"avx512vnni", ImplType::ours, I8T_ISA_AVX512VNNI},
    {"neon", ImplType::ours, I8T_ISA_NEON},
    {"neondot", ImplType::ours, I8T_ISA_NEONDOT},
    {"onednn", ImplType::onednn_int, I8T_ISA_GENERIC},
    {"onednn_f32", ImplType::onednn_f32, I8T_ISA_GENERIC},
};

i8t_bench::Clock g_clock;

// xorshift64*: reproducible operands.
struct Rng {
  uint64_t s;
  int32_t range(int32_t lo, int32_t hi) {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    uint64_t x = s * 0x2545F4914F6CDD1Dull;
    return lo + static_cast<int32_t>((x >> 32) % static_cast<uint64_t>(hi - lo + 1));
  }
};

// Row-major A [M x K] and B [K x N] in the kind's types and full quantizer
// ranges, their float copies for sgemm, and C.
struct Operands {
  std::vector<uint8_t> a8, b8; // u8 or s8 bit patterns
  std::vector<int16_t> a16;
  std::vector<float> af, bf, cf;
  std::vector<int32_t> c32;
  std::vector<int64_t> c64;
  uint8_t zp = 0;

  Operands(Kind kind, const Shape &s, bool want_float) {
    Rng rng{0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(s.M * 131 + s.N * 7 + s.K)};
    size_t mk = static_cast<size_t>(s.M) * s.K, kn = static_cast<size_t>(s.K) * s.N;
    size_t mn = static_cast<size_t>(s.M) * s.N;
    zp = static_cast<uint8_t>(rng.range(0, 255));
    if (want_float) af.resize(mk), bf.resize(kn), cf.resize(mn);
    if (kind == Kind::s16u8) {
      a16.resize(mk);
      for (size_t i = 0; i < mk; i++) a16[i] = static_cast<int16_t>(rng.range(-32767, 32767));
      if (want_float)
        for (size_t i = 0; i < mk; i++) af[i] = a16[i];
    } else {
      a8.resize(mk);
      for (size_t i = 0; i < mk; i++) {
        int32_t v = kind == Kind::u8s8 ? rng.range(0, 255) : rng.range(-127, 127);
        a8[i] = static_cast<uint8_t>(v);
        if (want_float) af[i] = static_cast<float>(v);
      }
    }
    b8.resize(kn);
    for (size_t i = 0; i < kn; i++) {
      int32_t v = kind == Kind::s16u8 ? rng.range(0, 255) : rng.range(-127, 127);
      b8[i] = static_cast<uint8_t>(v);
      if (want_float) bf[i] = static_cast<float>(v);
    }
    if (kind == Kind::s16u8) c64.resize(mn);
    else c32.resize(mn);
  }
};

i8t_status run_ours(i8t_context *ctx, Kind kind, const Shape &s, Operands &op) {
  size_t M = s.M, N = s.N, K = s.K;
  i8t_matrix B = {op.b8.data(), N, 1};
  switch (kind) {
    case Kind::u8s8:
      return i8t_gemm_u8s8s32(ctx, M, N, K, i8t_matrix{op.a8.data(), K, 1}, op.zp, B,
                              op.c32.data(), N);
    case Kind::s8s8:
      return i8t_gemm_s8s8s32(ctx, M, N, K, i8t_matrix{op.a8.data(), K, 1}, B,
                              op.c32.data(), N);
    default:
      return i8t_gemm_s16u8s64(ctx, M, N, K, i8t_matrix{op.a16.data(), K, 1}, B, op.zp,
                               op.c64.data(), N);
  }
}

#ifdef I8T_HAVE_ONEDNN
dnnl_status_t run_onednn(ImplType type, Kind kind, const Shape &s, Operands &op) {
  int32_t co = 0;
  if (type == ImplType::onednn_f32)
    return dnnl_sgemm('N', 'N', s.M, s.N, s.K, 1.0f, op.af.data(), s.K, op.bf.data(), s.N, 0.0f,
                      op.cf.data(), s.N);
  const int8_t *b = reinterpret_cast<const int8_t *>(op.b8.data());
  if (kind == Kind::u8s8)
    return dnnl_gemm_u8s8s32('N', 'N', 'F', s.M, s.N, s.K, 1.0f, op.a8.data(), s.K, op.zp, b, s.N,
                             0, 0.0f, op.c32.data(), s.N, &co);
  return dnnl_gemm_s8s8s32('N', 'N', 'F', s.M, s.N, s.K, 1.0f,
                           reinterpret_cast<const int8_t *>(op.a8.data()), s.K, 0, b, s.N, 0, 0.0f,
                           op.c32.data(), s.N, &co);
}
#endif

void set_counters(benchmark::State &state, const Shape &s) {
  double gops = 2.0 * s.M * s.N * s.K / 1e9;
  state.counters["GOPS"] = benchmark::Counter(gops, benchmark::Counter::kIsIterationInvariantRate);
  if (g_clock.ghz > 0)
    state.counters["ops_per_cycle"] =
        benchmark::Counter(gops / g_clock.ghz, benchmark::Counter::kIsIterationInvariantRate);
}

void bench_case(benchmark::State &state, Kind kind, Shape s, Impl impl, int threads) {
  // Per case: also sets OpenMP's count for oneDNN (cases of other thread
  // counts, GEMM or layer, run interleaved with this one and change it).
  i8t_bench::Env *env = i8t_bench::env_for(threads);
  if (!env) return void(i8t_bench::fail(state, "context"));
  Operands op(kind, s, impl.type == ImplType::onednn_f32);
  if (impl.type == ImplType::ours) {
    if (!i8t_bench::select_isa(state, impl.isa)) return;
    for (auto _ : state) {
      if (run_ours(env->ctx, kind, s, op) != I8T_OK) {
        state.SkipWithError(i8t_last_error());
        break;
      }
      benchmark::ClobberMemory();
    }
  } else {
#ifdef I8T_HAVE_ONEDNN
    for (auto _ : state) {
      if (run_onednn(impl.type, kind, s, op) != dnnl_success) {
        state.SkipWithError("oneDNN GEMM failed");
        break;
      }
      benchmark::ClobberMemory();
    }
#endif
  }
  set_counters(state, s);
}

// Runs natively here: the emulated avx512vnni of a SIMDe build (a test
// vehicle, orders of magnitude slower) is not benchmarked.
bool impl_runs_here(const Impl &impl, Kind kind) {
  (void)kind; // without oneDNN only the int8train paths are registered
  switch (impl.type) {
    case ImplType::ours:
      if (!i8t_isa_available(impl.isa)) return false;
      return impl.isa != I8T_ISA_AVX512VNNI || std::strstr(i8t_cpu_features(), "avx512vnni");
    case ImplType::onednn_int:
#ifdef I8T_HAVE_ONEDNN
      return kind != Kind::s16u8;
#else
      return false;
#endif
    default:
#ifdef I8T_HAVE_ONEDNN
      return true;
#else
      return false;
#endif
  }
}

void register_all() {
  for (int t : i8t_bench::thread_counts()) {
    for (const auto &k : kKinds) {
      for (const Shape &s : kShapes) {
        for (const Impl &impl : kImpls) {
          if (!impl_runs_here(impl, k.kind)) continue;
          // The portable kernels are 20-50x slower: 1 thread only.
          if (impl.type == ImplType::ours && impl.isa == I8T_ISA_GENERIC && t != 1) continue;
          std::string name = std::string("gemm/") + k.name + "/" + impl.name + "/" +
                             std::to_string(s.M) + "x" + std::to_string(s.N) + "x" +
                             std::to_string(s.K) + "/" + i8t_bench::threads_token(t);
          // Wall time (add_case): at 2 threads the work is not on the main
          // thread alone. Google Benchmark's default minimum time (0.5 s per
          // repetition) also bounds the slowest case, the portable kernels at
          // 1024^3 (about 0.2 s an iteration).
          i8t_bench::add_case(name, [=](benchmark::State &st) {
            bench_case(st, k.kind, s, impl, t);
          });
        }
      }
    }
  }
}

// --threads=N chose the GEMM cases' count before they took I8T_BENCH_THREADS
// like every other case: say so rather than fail with "unrecognized flag".
bool has_old_threads_flag(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (std::strncmp(argv[i], "--threads", 9) == 0 && (!argv[i][9] || argv[i][9] == '=')) {
      std::fprintf(stderr, "int8train_bench: --threads is gone: every case (gemm/ too) runs once "
                           "per count of I8T_BENCH_THREADS, e.g. I8T_BENCH_THREADS=1,2\n");
      return true;
    }
  }
  return false;
}

}  // namespace

int main(int argc, char **argv) {
  if (has_old_threads_flag(argc, argv)) return 2;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  g_clock = i8t_bench::core_clock();
  std::string counts;
  for (int t : i8t_bench::thread_counts()) counts += (counts.empty() ? "" : ",") + std::to_string(t);
  benchmark::AddCustomContext("int8train_bench_threads", counts);
  benchmark::AddCustomContext("int8train_cpu_features", i8t_cpu_features());
  benchmark::AddCustomContext("core_ghz", std::to_string(g_clock.ghz) + " (" + g_clock.source + ")");
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
