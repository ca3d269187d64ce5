// Whole training steps: one SGD step (forward, backward, update) of the
// default model on a batch of 128 Fashion-MNIST-sized images, int8 on every
// kernel path this machine runs against the fp32 baseline (oneDNN).
//
// Case names: train_step/<model>/<precision>/t<threads>, counter img_per_s
//   model      resnet8 (the CLI's default: 1x28x28 images, 10 classes)
//   precision  int8_<isa> (int8_generic, int8_avx2, int8_avx512vnni, ...)
//              or fp32 (standard batch norm, as the fp32 baseline trains)
// The images are synthetic (a fixed pseudo-random batch shaped like
// normalised Fashion-MNIST): a step's cost does not depend on the pixels.
#include <map>
#include <string>
#include <vector>

#include "bench_common.h"

namespace {

using namespace i8t_bench;

constexpr size_t kBatch = 128;
constexpr int kChannels = 1, kSide = 28, kClasses = 10;

struct TrainArgs {
  const char *model;
  i8t_precision precision;
  i8t_isa isa; // int8 only
  int threads;
};

// Normalised Fashion-MNIST looks like a background near -0.8 with brighter
// strokes up to about 2: half the pixels background, half spread over it.
std::vector<float> synthetic_images(size_t n) {
  Rng rng(41);
  std::vector<float> v(n * kChannels * kSide * kSide);
  for (auto &p : v) p = rng.range(0, 1) ? -0.81f : -0.8f + 2.8f * (rng.range(0, 1000) / 1000.0f);
  return v;
}

// One model per case, kept for the whole run: Google Benchmark calls a case
// several times (to size its iteration count, then once per repetition), and
// building the model, growing its buffers and creating oneDNN's primitives
// belong to none of the timed steps. Declared after the first env_for call,
// so destroyed before the contexts the models use.
struct ModelTable {
  std::map<std::string, i8t_model *> models;
  ~ModelTable() {
    for (auto &m : models) i8t_model_destroy(m.second);
  }
};

i8t_model *model_for(const std::string &key, const TrainArgs &a, i8t_context *ctx) {
  static ModelTable table;
  auto it = table.models.find(key);
  if (it != table.models.end()) return it->second;
  i8t_model_config cfg;
  if (i8t_model_config_preset(a.model, kChannels, kSide, kSide, kClasses, &cfg)) return nullptr;
  cfg.precision = a.precision;
  i8t_model *model = nullptr;
  if (i8t_model_create(ctx, &cfg, 1, &model)) return nullptr;
  table.models[key] = model;
  return model;
}

void train_case(benchmark::State &state, TrainArgs a) {
  Env *env = env_for(a.threads);
  if (!env) return void(fail(state, "context"));
  if (a.precision == I8T_PRECISION_INT8 && !select_isa(state, a.isa)) return;
  std::string key = std::string(a.model) + "/" + std::to_string(a.precision) + "/" +
                    std::to_string(a.isa) + "/" + std::to_string(a.threads);
  i8t_model *model = model_for(key, a, env->ctx);
  if (!model) return void(fail(state, "model"));
  static const auto images = synthetic_images(kBatch);
  static const auto labels = random_ints<uint8_t>(kBatch, 0, kClasses - 1, 42);
  i8t_batch_result r;
  // A small learning rate: thousands of steps on one batch must not diverge.
  auto step = [&] {
    return i8t_model_train_step(model, images.data(), labels.data(), kBatch, 0.01f, &r) == I8T_OK;
  };
  bool ok = step(); // warm-up (the first one grows buffers, creates primitives)
  for (auto _ : state) {
    if (!ok || !(ok = step())) break;
  }
  if (!ok) return void(fail(state, "training step"));
  rate_counter(state, "img_per_s", static_cast<double>(kBatch));
}

void register_train_cases() {
  const char *model = "resnet8";
  for (int t : thread_counts()) {
    for (const IsaPath &path : isa_paths()) {
      if (path.isa == I8T_ISA_GENERIC && t != 1) continue;
      std::string name = std::string("train_step/") + model + "/int8_" + path.name + "/" +
                         threads_token(t);
      auto *b = add_case(name, [=](benchmark::State &st) {
        train_case(st, TrainArgs{model, I8T_PRECISION_INT8, path.isa, t});
      });
      // The portable kernels take seconds per step: a few steps suffice.
      if (path.isa == I8T_ISA_GENERIC) b->Iterations(2);
    }
    if (i8t_have_onednn())
      add_case(std::string("train_step/") + model + "/fp32/" + threads_token(t),
               [=](benchmark::State &st) {
                 train_case(st, TrainArgs{model, I8T_PRECISION_FP32, I8T_ISA_GENERIC, t});
               });
  }
}

const bool registered = (register_train_cases(), true);

}  // namespace
