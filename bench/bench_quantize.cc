// Quantizer benchmarks: float32 tensors to the training step's integer
// formats, round-to-nearest and stochastic, on every kernel path this machine
// runs, through the _ctx calls (fixed 16384-element chunks on the context's
// workers).
//
// Case names: quantize/<mode>/<impl>/<size>/t<threads>, counter elements_per_s
//   mode  nearest_u8      activations (u8 with a zero point, round to nearest)
//         stochastic_s8   errors for the grad-input GEMM
//         stochastic_s16  errors for the weight-gradient GEMM
//   impl  generic, avx2, avx512vnni, ...: int8train's kernel table
//   size  elements: 65536 (256 KiB of floats, cache-resident) and 1605632
//         (resnet8's largest activation, 128 x 28 x 28 x 16)
// The parameters are fixed beforehand (as the layers pass them in); the
// range search is its own case, minmax/<impl>/<size>/t<threads>.
#include <string>
#include <vector>

#include "bench_common.h"

namespace {

using namespace i8t_bench;

enum class Mode { nearest_u8, stochastic_s8, stochastic_s16, minmax };

const size_t kSizes[] = {65536, 1605632};

struct QuantArgs {
  Mode mode;
  i8t_isa isa;
  size_t n;
  int threads;
};

void quantize_case(benchmark::State &state, QuantArgs a) {
  Env *env = env_for(a.threads);
  if (!env) return void(fail(state, "context"));
  if (!select_isa(state, a.isa)) return;
  auto x = random_floats(a.n, 1.0f, 31);
  std::vector<uint8_t> q8(a.n);
  std::vector<int16_t> q16(a.n);
  float lo = 0.0f, hi = 0.0f;
  if (i8t_minmax_f32(x.data(), a.n, &lo, &hi)) return void(fail(state, "minmax"));
  float absmax = hi > -lo ? hi : -lo;
  i8t_qparams pu8 = i8t_qparams_u8(lo, hi), ps8 = i8t_qparams_symmetric(absmax, 8);
  i8t_qparams ps16 = i8t_qparams_symmetric(absmax, 16);
  i8t_rounding r = {a.mode != Mode::nearest_u8, 0x5EED, 0};
  i8t_context *ctx = env->ctx;
  auto once = [&] {
    r.counter += a.n; // a fresh stream every call, as successive steps use
    switch (a.mode) {
      case Mode::nearest_u8:
        return i8t_quantize_f32_u8_ctx(ctx, x.data(), a.n, pu8, r, q8.data());
      case Mode::stochastic_s8:
        return i8t_quantize_f32_s8_ctx(ctx, x.data(), a.n, ps8, r,
                                       reinterpret_cast<int8_t *>(q8.data()));
      case Mode::stochastic_s16:
        return i8t_quantize_f32_s16_ctx(ctx, x.data(), a.n, ps16, r, q16.data());
      default:
        return i8t_minmax_f32_ctx(ctx, x.data(), a.n, &lo, &hi);
    }
  };
  if (once()) return void(fail(state, "quantize"));
  for (auto _ : state) {
    if (once()) return void(fail(state, "quantize"));
    benchmark::ClobberMemory();
  }
  rate_counter(state, "elements_per_s", static_cast<double>(a.n));
}

void register_quantize_cases() {
  const struct {
    Mode mode;
    const char *name;
  } modes[] = {{Mode::nearest_u8, "quantize/nearest_u8"},
               {Mode::stochastic_s8, "quantize/stochastic_s8"},
               {Mode::stochastic_s16, "quantize/stochastic_s16"},
               {Mode::minmax, "minmax"}};
  for (int t : thread_counts())
    for (const auto &m : modes)
      for (const IsaPath &path : isa_paths())
        for (size_t n : kSizes) {
          if (path.isa == I8T_ISA_GENERIC && t != 1) continue;
          std::string name = std::string(m.name) + "/" + path.name + "/" + std::to_string(n) +
                             "/" + threads_token(t);
          add_case(name, [=](benchmark::State &st) {
            quantize_case(st, QuantArgs{m.mode, path.isa, n, t});
          })->Unit(benchmark::kMicrosecond);
        }
}

const bool registered = (register_quantize_cases(), true);

}  // namespace
