// Layer benchmarks: the three convolution passes and batch normalisation
// forward + backward, int8 (int8train's layers on every kernel path this
// machine runs) against the fp32 baseline on oneDNN, at the layer shapes of
// the default model (resnet8, 28x28 Fashion-MNIST, batch 128) and of
// ResNet-18 on ImageNet (batch 8).
//
// Case names
//   conv/<pass>/<impl>/<shape>/t<threads>   counter GOPS = 2 * MACs / s / 1e9
//     pass   fwd, bwd_data, bwd_weights
//     impl   generic, avx2, avx512vnni, ...: the int8 layer on that kernel
//            table; onednn_f32: oneDNN's f32 convolution called directly
//            (NHWC activations, weights in its preferred blocked format);
//            fp32_layer: the fp32 layer API (i8t_conv2d_*_f32, oneDNN
//            backend), which the fp32 training step calls
//     shape  <model>_<H>x<W>x<Cin>_k<kernel>s<stride>_o<Cout>_n<batch>
//   bn/<impl>/<model>_<H>x<W>x<C>_n<batch>/t<threads>   counter elements_per_s
//     impl   an int8 path: Range BN on the u8 tensor; onednn_f32: oneDNN's
//            f32 batch normalisation (training forward + backward)
// What one iteration does, int8 vs fp32, is spelled out at run_conv_* and
// run_bn_*: each side produces what the next layer of its training step
// consumes.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "bench_common.h"

#ifdef I8T_HAVE_ONEDNN
#include <dnnl.h>
#endif

namespace {

using namespace i8t_bench;

// ---------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------

struct ConvCase {
  const char *model; // "r8", "r18"
  i8t_conv_shape s;  // batch, in_h, in_w, in_c, out_c, kernel, stride, pad
};

// resnet8 (stages 16-32-64) on 1x28x28, batch 128: the stem, each stage's
// 3x3 convolutions, the strided ones that open stages 2 and 3 and their 1x1
// projection shortcuts.
const ConvCase kConvCases[] = {
    {"r8", {128, 28, 28, 1, 16, 3, 1, 1}},   {"r8", {128, 28, 28, 16, 16, 3, 1, 1}},
    {"r8", {128, 28, 28, 16, 32, 3, 2, 1}},  {"r8", {128, 28, 28, 16, 32, 1, 2, 0}},
    {"r8", {128, 14, 14, 32, 32, 3, 1, 1}},  {"r8", {128, 14, 14, 32, 64, 3, 2, 1}},
    {"r8", {128, 14, 14, 32, 64, 1, 2, 0}},  {"r8", {128, 7, 7, 64, 64, 3, 1, 1}},
    // ResNet-18's 3x3 convolutions, batch 8.
    {"r18", {8, 56, 56, 64, 64, 3, 1, 1}},   {"r18", {8, 56, 56, 64, 128, 3, 2, 1}},
    {"r18", {8, 28, 28, 128, 128, 3, 1, 1}}, {"r18", {8, 28, 28, 128, 256, 3, 2, 1}},
    {"r18", {8, 14, 14, 256, 256, 3, 1, 1}}, {"r18", {8, 14, 14, 256, 512, 3, 2, 1}},
    {"r18", {8, 7, 7, 512, 512, 3, 1, 1}},
};

struct BnCase {
  const char *model;
  int batch, h, w, c;
};

// The normalised tensors of the same networks (each conv output shape).
const BnCase kBnCases[] = {
    {"r8", 128, 28, 28, 16}, {"r8", 128, 14, 14, 32}, {"r8", 128, 7, 7, 64},
    {"r18", 8, 56, 56, 64},  {"r18", 8, 28, 28, 128}, {"r18", 8, 14, 14, 256},
    {"r18", 8, 7, 7, 512},
};

std::string conv_token(const ConvCase &c) {
  const i8t_conv_shape &s = c.s;
  return std::string(c.model) + "_" + std::to_string(s.in_h) + "x" + std::to_string(s.in_w) +
         "x" + std::to_string(s.in_c) + "_k" + std::to_string(s.kernel) + "s" +
         std::to_string(s.stride) + "_o" + std::to_string(s.out_c) + "_n" +
         std::to_string(s.batch);
}

std::string bn_token(const BnCase &c) {
  return std::string(c.model) + "_" + std::to_string(c.h) + "x" + std::to_string(c.w) + "x" +
         std::to_string(c.c) + "_n" + std::to_string(c.batch);
}

// The portable kernels are ~50x slower: only the smaller resnet8 layers,
// single-threaded, so that a full run stays short.
bool generic_runs(const ConvCase &c, int threads) {
  return threads == 1 && c.s.batch * c.s.in_h * c.s.in_w * c.s.in_c <= 128 * 14 * 14 * 32;
}

// ---------------------------------------------------------------------------
// Convolution
// ---------------------------------------------------------------------------

enum class Pass { fwd, bwd_data, bwd_weights };
const struct {
  Pass pass;
  const char *name;
} kPasses[] = {{Pass::fwd, "fwd"}, {Pass::bwd_data, "bwd_data"}, {Pass::bwd_weights, "bwd_weights"}};

double conv_macs(const i8t_conv_shape &s) {
  return static_cast<double>(s.batch) * i8t_conv_out_h(&s) * i8t_conv_out_w(&s) * s.out_c *
         static_cast<double>(i8t_conv_k(&s));
}

// Tensors of one convolution in both precisions.
struct ConvData {
  i8t_conv_shape s;
  size_t in, out, wsize, rows;
  explicit ConvData(const i8t_conv_shape &shape) : s(shape) {
    rows = static_cast<size_t>(s.batch) * i8t_conv_out_h(&s) * i8t_conv_out_w(&s);
    in = static_cast<size_t>(s.batch) * s.in_h * s.in_w * s.in_c;
    out = rows * s.out_c;
    wsize = static_cast<size_t>(s.out_c) * i8t_conv_k(&s);
  }
};

// int8 forward, as a training step runs it: the weights re-quantized from
// the fp32 master copy (s8, absmax / 127), the integer convolution with the
// per-sample range of its real output, and the output requantized to u8
// with the batch range (the tensor the batch norm reads). Where the
// convolution is cheap enough to run twice (i8t_conv2d_forward_u8_fits: the
// stem), a ranges-only pass and then the fused forward to u8, as the model.
void run_conv_fwd_s8(benchmark::State &state, i8t_workspace *ws, const ConvData &d) {
  const i8t_conv_shape &s = d.s;
  auto x = random_ints<uint8_t>(d.in, 0, 255, 1);
  auto wf = random_floats(d.wsize, 0.05f, 2);
  std::vector<int8_t> w(d.wsize);
  std::vector<int32_t> y(d.out);
  std::vector<uint8_t> q(d.out);
  std::vector<float> smin(s.batch), smax(s.batch);
  const uint8_t zp = 37;
  const float xscale = 0.02f;
  auto once = [&]() -> bool {
    i8t_qparams pw;
    i8t_rounding nearest = {0, 0, 0};
    if (i8t_quantize_auto_s8(wf.data(), d.wsize, nearest, w.data(), &pw)) return false;
    float col_scale = xscale * pw.scale, lo, hi;
    const bool twice = i8t_conv2d_forward_u8_fits(&s, &col_scale, 1);
    if (i8t_conv2d_forward_s8(ws, &s, x.data(), zp, w.data(), twice ? nullptr : y.data(),
                              &col_scale, 1, smin.data(), smax.data()))
      return false;
    i8t_batch_range(smin.data(), smax.data(), s.batch, &lo, &hi);
    if (twice)
      return i8t_conv2d_forward_u8(ws, &s, x.data(), zp, w.data(), &col_scale, 1,
                                   i8t_qparams_u8(lo, hi), nearest, q.data()) == I8T_OK;
    return i8t_requantize_s32_u8(ws, y.data(), d.rows, s.out_c, &col_scale, 1,
                                 i8t_qparams_u8(lo, hi), nearest, q.data()) == I8T_OK;
  };
  if (!once()) return void(fail(state, "int8 conv forward"));
  for (auto _ : state) {
    if (!once()) return void(fail(state, "int8 conv forward"));
    benchmark::ClobberMemory();
  }
}

// int8 grad input: exact int32 dx from the s8 error and the s8 weights.
void run_conv_bwd_data_s8(benchmark::State &state, i8t_workspace *ws, const ConvData &d) {
  auto dy = random_ints<int8_t>(d.out, -127, 127, 3);
  auto w = random_ints<int8_t>(d.wsize, -127, 127, 4);
  std::vector<int32_t> dx(d.in);
  auto once = [&] {
    return i8t_conv2d_backward_data_s8(ws, &d.s, dy.data(), w.data(), dx.data()) == I8T_OK;
  };
  if (!once()) return void(fail(state, "int8 conv grad input"));
  for (auto _ : state) {
    if (!once()) return void(fail(state, "int8 conv grad input"));
    benchmark::ClobberMemory();
  }
}

// int8 weight gradient: exact int64 dw from the s16 error and the u8 input.
void run_conv_bwd_weights_s16(benchmark::State &state, i8t_workspace *ws, const ConvData &d) {
  auto dy = random_ints<int16_t>(d.out, -32767, 32767, 5);
  auto x = random_ints<uint8_t>(d.in, 0, 255, 6);
  std::vector<int64_t> dw(d.wsize);
  auto once = [&] {
    return i8t_conv2d_backward_weights_s16(ws, &d.s, dy.data(), x.data(), 37, dw.data()) ==
           I8T_OK;
  };
  if (!once()) return void(fail(state, "int8 conv weight gradient"));
  for (auto _ : state) {
    if (!once()) return void(fail(state, "int8 conv weight gradient"));
    benchmark::ClobberMemory();
  }
}

// fp32 through the layer API (i8t_conv2d_*_f32, workspace backend oneDNN):
// exactly what the fp32 baseline's training step calls.
void run_conv_f32(benchmark::State &state, i8t_workspace *ws, const ConvData &d, Pass pass) {
  auto x = random_floats(d.in, 1.0f, 7);
  auto w = random_floats(d.wsize, 0.05f, 8);
  auto dy = random_floats(d.out, 1e-3f, 9);
  std::vector<float> y(d.out), dx(d.in), dw(d.wsize);
  auto once = [&] {
    switch (pass) {
      case Pass::fwd:
        return i8t_conv2d_forward_f32(ws, &d.s, x.data(), w.data(), y.data()) == I8T_OK;
      case Pass::bwd_data:
        return i8t_conv2d_backward_data_f32(ws, &d.s, dy.data(), w.data(), dx.data()) == I8T_OK;
      default:
        return i8t_conv2d_backward_weights_f32(ws, &d.s, dy.data(), x.data(), dw.data()) ==
               I8T_OK;
    }
  };
  if (!once()) return void(fail(state, "fp32 convolution"));
  for (auto _ : state) {
    if (!once()) return void(fail(state, "fp32 convolution"));
    benchmark::ClobberMemory();
  }
}

#ifdef I8T_HAVE_ONEDNN
// oneDNN's f32 convolution called directly, at its best for NHWC
// activations (the model's layout): source and destination NHWC, weights in
// the blocked format the primitive prefers ("any"). A training step keeps
// OHWI master weights, so each step reorders them in (forward; the grad-input
// pass reuses that copy) and the weight gradient out (bwd_weights): those
// reorders are timed with their pass.
class OnednnConv {
 public:
  OnednnConv(const i8t_conv_shape &s, Pass pass) : pass_(pass) {
    dnnl_dims_t src = {s.batch, s.in_c, s.in_h, s.in_w};
    dnnl_dims_t wei = {s.out_c, s.in_c, s.kernel, s.kernel};
    dnnl_dims_t dst = {s.batch, s.out_c, i8t_conv_out_h(&s), i8t_conv_out_w(&s)};
    dnnl_dims_t strides = {s.stride, s.stride}, pad_l = {s.pad, s.pad};
    dnnl_dims_t pad_r = {(i8t_conv_out_h(&s) - 1) * s.stride + s.kernel - s.in_h - s.pad,
                         (i8t_conv_out_w(&s) - 1) * s.stride + s.kernel - s.in_w - s.pad};
    dnnl_memory_desc_t wany;
    dnnl_convolution_desc_t fd, bd;
    dnnl_primitive_desc_t fpd = nullptr, pd = nullptr;
    ok_ = dnnl_engine_create(&engine_, dnnl_cpu, 0) == dnnl_success &&
          dnnl_stream_create(&stream_, engine_, dnnl_stream_default_flags) == dnnl_success &&
          dnnl_memory_desc_init_by_tag(&src_, 4, src, dnnl_f32, dnnl_acdb) == dnnl_success &&
          dnnl_memory_desc_init_by_tag(&wei_, 4, wei, dnnl_f32, dnnl_acdb) == dnnl_success &&
          dnnl_memory_desc_init_by_tag(&wany, 4, wei, dnnl_f32, dnnl_format_tag_any) ==
              dnnl_success &&
          dnnl_memory_desc_init_by_tag(&dst_, 4, dst, dnnl_f32, dnnl_acdb) == dnnl_success &&
          dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct,
                                             &src_, &wany, nullptr, &dst_, strides, pad_l,
                                             pad_r) == dnnl_success &&
          dnnl_primitive_desc_create(&fpd, &fd, nullptr, engine_, nullptr) == dnnl_success;
    if (ok_ && pass == Pass::fwd) {
      pd = fpd;
      fpd = nullptr;
    } else if (ok_) {
      dnnl_status_t st =
          pass == Pass::bwd_data
              ? dnnl_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &src_,
                                                         &wany, &dst_, strides, pad_l, pad_r)
              : dnnl_convolution_backward_weights_desc_init(&bd, dnnl_convolution_direct, &src_,
                                                            &wany, nullptr, &dst_, strides,
                                                            pad_l, pad_r);
      ok_ = st == dnnl_success &&
            dnnl_primitive_desc_create(&pd, &bd, nullptr, engine_, fpd) == dnnl_success;
    }
    if (ok_) {
      dnnl_query_t q = pass == Pass::bwd_weights ? dnnl_query_diff_weights_md
                                                 : dnnl_query_weights_md;
      blocked_ = *dnnl_primitive_desc_query_md(pd, q, 0);
      ok_ = dnnl_primitive_create(&conv_, pd) == dnnl_success;
      const char *impl = nullptr;
      dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
      impl_ = impl ? impl : "?";
      // Weights in their blocked format need a reorder to / from OHWI.
      need_reorder_ = !dnnl_memory_desc_equal(&blocked_, &wei_);
      if (ok_ && need_reorder_) {
        dnnl_primitive_desc_t rpd = nullptr;
        const dnnl_memory_desc_t *from = pass == Pass::bwd_weights ? &blocked_ : &wei_;
        const dnnl_memory_desc_t *to = pass == Pass::bwd_weights ? &wei_ : &blocked_;
        ok_ = dnnl_reorder_primitive_desc_create(&rpd, from, engine_, to, engine_, nullptr) ==
                  dnnl_success &&
              dnnl_primitive_create(&reorder_, rpd) == dnnl_success;
        if (rpd) dnnl_primitive_desc_destroy(rpd);
      }
    }
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    if (pd) dnnl_primitive_desc_destroy(pd);
  }
  ~OnednnConv() {
    for (dnnl_memory_t m : mems_) dnnl_memory_destroy(m);
    if (conv_) dnnl_primitive_destroy(conv_);
    if (reorder_) dnnl_primitive_destroy(reorder_);
    if (stream_) dnnl_stream_destroy(stream_);
    if (engine_) dnnl_engine_destroy(engine_);
  }
  bool ok() const { return ok_; }
  const std::string &impl() const { return impl_; }
  // Binds the tensors (NHWC x / y, OHWI w; dx, dy, dw alike) once.
  void bind(float *x, float *w, float *y) {
    dnnl_memory_t mx = wrap(&src_, x), my = wrap(&dst_, y), mw = wrap(&wei_, w);
    dnnl_memory_t mb = need_reorder_ ? wrap(&blocked_, nullptr) : mw;
    int warg = pass_ == Pass::bwd_weights ? DNNL_ARG_DIFF_WEIGHTS : DNNL_ARG_WEIGHTS;
    if (pass_ == Pass::fwd) args_ = {{DNNL_ARG_SRC, mx}, {warg, mb}, {DNNL_ARG_DST, my}};
    else if (pass_ == Pass::bwd_data)
      args_ = {{DNNL_ARG_DIFF_SRC, mx}, {warg, mb}, {DNNL_ARG_DIFF_DST, my}};
    else args_ = {{DNNL_ARG_SRC, mx}, {warg, mb}, {DNNL_ARG_DIFF_DST, my}};
    if (need_reorder_) {
      bool out = pass_ == Pass::bwd_weights;
      reorder_args_ = {{DNNL_ARG_FROM, out ? mb : mw}, {DNNL_ARG_TO, out ? mw : mb}};
    }
  }
  // One pass; `with_reorder`: also the weight reorder a step pays for it.
  bool run(bool with_reorder) {
    bool reorder = need_reorder_ && (with_reorder || !reordered_);
    if (reorder && pass_ != Pass::bwd_weights && !exec(reorder_, reorder_args_)) return false;
    if (!exec(conv_, args_)) return false;
    if (reorder && pass_ == Pass::bwd_weights && !exec(reorder_, reorder_args_)) return false;
    reordered_ = reordered_ || reorder;
    return dnnl_stream_wait(stream_) == dnnl_success;
  }

 private:
  dnnl_memory_t wrap(const dnnl_memory_desc_t *md, void *p) {
    dnnl_memory_t m = nullptr;
    if (dnnl_memory_create(&m, md, engine_, p ? p : DNNL_MEMORY_ALLOCATE) != dnnl_success)
      ok_ = false;
    else mems_.push_back(m);
    return m;
  }
  bool exec(dnnl_primitive_t p, const std::vector<dnnl_exec_arg_t> &a) {
    return dnnl_primitive_execute(p, stream_, static_cast<int>(a.size()), a.data()) ==
           dnnl_success;
  }
  Pass pass_;
  bool ok_ = false, need_reorder_ = false, reordered_ = false;
  std::string impl_;
  dnnl_engine_t engine_ = nullptr;
  dnnl_stream_t stream_ = nullptr;
  dnnl_memory_desc_t src_, wei_, dst_, blocked_;
  dnnl_primitive_t conv_ = nullptr, reorder_ = nullptr;
  std::vector<dnnl_memory_t> mems_;
  std::vector<dnnl_exec_arg_t> args_, reorder_args_;
};

void run_conv_onednn(benchmark::State &state, const ConvData &d, Pass pass) {
  auto x = random_floats(d.in, 1.0f, 7);
  auto w = random_floats(d.wsize, 0.05f, 8);
  auto dy = random_floats(d.out, 1e-3f, 9);
  std::vector<float> y(d.out), dx(d.in), dw(d.wsize);
  OnednnConv conv(d.s, pass);
  if (pass == Pass::fwd) conv.bind(x.data(), w.data(), y.data());
  else if (pass == Pass::bwd_data) conv.bind(dx.data(), w.data(), dy.data());
  else conv.bind(x.data(), dw.data(), dy.data());
  if (!conv.ok() || !conv.run(true)) return void(state.SkipWithError("oneDNN convolution failed"));
  // The grad-input pass reuses the forward's reordered weights.
  bool with_reorder = pass != Pass::bwd_data;
  for (auto _ : state) {
    if (!conv.run(with_reorder)) return void(state.SkipWithError("oneDNN convolution failed"));
    benchmark::ClobberMemory();
  }
  state.SetLabel(conv.impl());
}
#endif

enum class ConvImpl { int8, fp32_layer, onednn };

struct ConvArgs {
  ConvCase c;
  Pass pass;
  ConvImpl impl;
  i8t_isa isa; // int8 only
  int threads;
};

void conv_case(benchmark::State &state, ConvArgs a) {
  Env *env = env_for(a.threads);
  if (!env) return void(fail(state, "context"));
  if (a.impl == ConvImpl::int8 && !select_isa(state, a.isa)) return;
  ConvData d(a.c.s);
  if (a.impl == ConvImpl::fp32_layer) {
    run_conv_f32(state, env->ws, d, a.pass);
  } else if (a.impl == ConvImpl::onednn) {
#ifdef I8T_HAVE_ONEDNN
    run_conv_onednn(state, d, a.pass);
#endif
  } else if (a.pass == Pass::fwd) run_conv_fwd_s8(state, env->ws, d);
  else if (a.pass == Pass::bwd_data) run_conv_bwd_data_s8(state, env->ws, d);
  else run_conv_bwd_weights_s16(state, env->ws, d);
  rate_counter(state, "GOPS", 2.0 * conv_macs(d.s) / 1e9);
}

// ---------------------------------------------------------------------------
// Batch normalisation
// ---------------------------------------------------------------------------

struct BnData {
  size_t batch, spatial, C, rows, n;
  explicit BnData(const BnCase &c)
      : batch(c.batch), spatial(static_cast<size_t>(c.h) * c.w), C(c.c), rows(batch * spatial),
        n(rows * C) {}
};

// int8 Range BN, as the int8 step runs it for a conv's lone BN. Forward:
// batch statistics and each sample's per-channel extremes from exact integer
// reductions of the u8 input, the normalisation folded into a per-channel
// multiply-add, the output's per-sample range from those extremes (no extra
// pass) and the output quantized to u8. Backward: from the s8 error to the
// s8 (grad-input GEMM) and s16 (weight-gradient GEMM) errors of the layer
// below, dgamma and dbeta.
void run_bn_s8(benchmark::State &state, i8t_workspace *ws, const BnData &d) {
  const size_t C = d.C;
  auto x = random_ints<uint8_t>(d.n, 0, 255, 11);
  auto dy = random_ints<int8_t>(d.n, -127, 127, 12);
  std::vector<float> gamma(C, 1.0f), beta(C, 0.0f), mean(C), scale(C), mul(C), add(C);
  std::vector<float> dgamma(C), dbeta(C), smin(d.batch), smax(d.batch);
  std::vector<uint8_t> xmin(d.batch * C), xmax(d.batch * C), y(d.n);
  std::vector<int8_t> dx8(d.n);
  std::vector<int16_t> dx16(d.n);
  const i8t_qparams xq = {0.03f, 20};
  i8t_norm_config cfg;
  i8t_norm_config_init(&cfg, I8T_NORM_RANGE);
  const i8t_act_shape shape = {d.batch, d.spatial, C};
  uint64_t step = 0;
  auto once = [&]() -> bool {
    if (i8t_norm_stats_samples_u8(ws, &cfg, x.data(), xq, shape, mean.data(), scale.data(),
                                  nullptr, xmin.data(), xmax.data()))
      return false;
    i8t_norm_fold_u8(C, xq, mean.data(), scale.data(), gamma.data(), beta.data(), mul.data(),
                     add.data());
    i8t_u8_term term = {x.data(), mul.data(), add.data()};
    float lo, hi;
    i8t_sum_act_range_from_extremes(mul.data(), add.data(), 0, shape, xmin.data(), xmax.data(),
                                    smin.data(), smax.data());
    i8t_batch_range(smin.data(), smax.data(), d.batch, &lo, &hi);
    i8t_rounding nearest = {0, 0, 0};
    if (i8t_sum_act_forward_u8(ws, &term, 1, 0, shape, i8t_qparams_u8(lo, hi), nearest,
                               y.data()))
      return false;
    i8t_grad_out out = {};
    out.s8 = dx8.data();
    out.s8_round = {1, 21, step * 2 * d.n};
    out.s16 = dx16.data();
    out.s16_round = {1, 22, step * 2 * d.n + d.n};
    step++;
    return i8t_norm_backward_u8(ws, &cfg, x.data(), xq, d.rows, C, dy.data(), 1e-4f,
                                mean.data(), scale.data(), gamma.data(), dgamma.data(),
                                dbeta.data(), &out) == I8T_OK;
  };
  if (!once()) return void(fail(state, "int8 Range BN"));
  for (auto _ : state) {
    if (!once()) return void(fail(state, "int8 Range BN"));
    benchmark::ClobberMemory();
  }
}

#ifdef I8T_HAVE_ONEDNN
// oneDNN's f32 batch normalisation, training forward (batch statistics,
// scale and shift) and backward (dx, dgamma, dbeta): the primitives and the
// [rows x C x 1 x 1] NHWC layout the fp32 baseline's layers use, built once.
class OnednnBn {
 public:
  OnednnBn(size_t rows, size_t C, float eps) {
    dnnl_dims_t dims = {static_cast<dnnl_dim_t>(rows), static_cast<dnnl_dim_t>(C), 1, 1};
    dnnl_dims_t sdims = {static_cast<dnnl_dim_t>(C)};
    unsigned flags = dnnl_use_scale | dnnl_use_shift;
    dnnl_batch_normalization_desc_t fd, bd;
    dnnl_primitive_desc_t fpd = nullptr, bpd = nullptr;
    ok_ = dnnl_engine_create(&engine_, dnnl_cpu, 0) == dnnl_success &&
          dnnl_stream_create(&stream_, engine_, dnnl_stream_default_flags) == dnnl_success &&
          dnnl_memory_desc_init_by_tag(&data_, 4, dims, dnnl_f32, dnnl_acdb) == dnnl_success &&
          dnnl_memory_desc_init_by_tag(&stat_, 1, sdims, dnnl_f32, dnnl_a) == dnnl_success &&
          dnnl_batch_normalization_forward_desc_init(&fd, dnnl_forward_training, &data_, eps,
                                                     flags) == dnnl_success &&
          dnnl_primitive_desc_create(&fpd, &fd, nullptr, engine_, nullptr) == dnnl_success &&
          dnnl_primitive_create(&fwd_, fpd) == dnnl_success &&
          dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward, &data_, &data_, eps,
                                                      flags) == dnnl_success &&
          dnnl_primitive_desc_create(&bpd, &bd, nullptr, engine_, fpd) == dnnl_success &&
          dnnl_primitive_create(&bwd_, bpd) == dnnl_success;
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    if (bpd) dnnl_primitive_desc_destroy(bpd);
  }
  ~OnednnBn() {
    for (dnnl_memory_t m : mems_) dnnl_memory_destroy(m);
    if (fwd_) dnnl_primitive_destroy(fwd_);
    if (bwd_) dnnl_primitive_destroy(bwd_);
    if (stream_) dnnl_stream_destroy(stream_);
    if (engine_) dnnl_engine_destroy(engine_);
  }
  bool ok() const { return ok_; }
  // A memory object over `p`: data-shaped or per-channel.
  dnnl_memory_t data(void *p) { return wrap(&data_, p); }
  dnnl_memory_t stat(void *p) { return wrap(&stat_, p); }
  bool run(bool forward, const std::vector<dnnl_exec_arg_t> &args) {
    dnnl_status_t s = dnnl_primitive_execute(forward ? fwd_ : bwd_, stream_,
                                             static_cast<int>(args.size()), args.data());
    return s == dnnl_success && dnnl_stream_wait(stream_) == dnnl_success;
  }

 private:
  dnnl_memory_t wrap(const dnnl_memory_desc_t *md, void *p) {
    dnnl_memory_t m = nullptr;
    if (dnnl_memory_create(&m, md, engine_, p) != dnnl_success) ok_ = false;
    else mems_.push_back(m);
    return m;
  }
  bool ok_ = false;
  dnnl_engine_t engine_ = nullptr;
  dnnl_stream_t stream_ = nullptr;
  dnnl_memory_desc_t data_, stat_;
  dnnl_primitive_t fwd_ = nullptr, bwd_ = nullptr;
  std::vector<dnnl_memory_t> mems_;
};

void run_bn_f32(benchmark::State &state, const BnData &d) {
  const size_t C = d.C;
  auto x = random_floats(d.n, 1.0f, 13);
  auto dy = random_floats(d.n, 1e-3f, 14);
  std::vector<float> y(d.n), dx(d.n), gamma(C, 1.0f), beta(C, 0.0f), mean(C), var(C);
  std::vector<float> dgamma(C), dbeta(C);
  OnednnBn bn(d.rows, C, 1e-5f);
  std::vector<dnnl_exec_arg_t> fwd = {
      {DNNL_ARG_SRC, bn.data(x.data())},       {DNNL_ARG_DST, bn.data(y.data())},
      {DNNL_ARG_SCALE, bn.stat(gamma.data())}, {DNNL_ARG_SHIFT, bn.stat(beta.data())},
      {DNNL_ARG_MEAN, bn.stat(mean.data())},   {DNNL_ARG_VARIANCE, bn.stat(var.data())}};
  std::vector<dnnl_exec_arg_t> bwd = {
      {DNNL_ARG_SRC, bn.data(x.data())},           {DNNL_ARG_DIFF_DST, bn.data(dy.data())},
      {DNNL_ARG_MEAN, bn.stat(mean.data())},       {DNNL_ARG_VARIANCE, bn.stat(var.data())},
      {DNNL_ARG_SCALE, bn.stat(gamma.data())},     {DNNL_ARG_DIFF_SRC, bn.data(dx.data())},
      {DNNL_ARG_DIFF_SCALE, bn.stat(dgamma.data())}, {DNNL_ARG_DIFF_SHIFT, bn.stat(dbeta.data())},
      // oneDNN 2.6 wants the shift in the backward too (else "invalid
      // arguments"), although dx does not depend on it.
      {DNNL_ARG_SHIFT, bn.stat(beta.data())}};
  if (!bn.ok()) return void(state.SkipWithError("oneDNN batch norm setup failed"));
  auto once = [&] { return bn.run(true, fwd) && bn.run(false, bwd); };
  if (!once()) return void(state.SkipWithError("oneDNN batch norm failed"));
  for (auto _ : state) {
    if (!once()) return void(state.SkipWithError("oneDNN batch norm failed"));
    benchmark::ClobberMemory();
  }
}
#endif

struct BnArgs {
  BnCase c;
  bool int8;
  i8t_isa isa;
  int threads;
};

void bn_case(benchmark::State &state, BnArgs a) {
  Env *env = env_for(a.threads);
  if (!env) return void(fail(state, "context"));
  BnData d(a.c);
  if (a.int8) {
    if (!select_isa(state, a.isa)) return;
    run_bn_s8(state, env->ws, d);
  } else {
#ifdef I8T_HAVE_ONEDNN
    run_bn_f32(state, d);
#endif
  }
  rate_counter(state, "elements_per_s", static_cast<double>(d.n));
}

// ---------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------

void register_layer_cases() {
  for (int t : thread_counts()) {
    for (const auto &p : kPasses) {
      for (const ConvCase &c : kConvCases) {
        // A network's first convolution needs no input gradient.
        if (p.pass == Pass::bwd_data && c.s.in_c < 4) continue;
        std::string tail = "/" + conv_token(c) + "/" + threads_token(t);
        for (const IsaPath &path : isa_paths()) {
          if (path.isa == I8T_ISA_GENERIC && !generic_runs(c, t)) continue;
          auto *b = add_case(std::string("conv/") + p.name + "/" + path.name + tail,
                             [=](benchmark::State &st) {
                               conv_case(st, ConvArgs{c, p.pass, ConvImpl::int8, path.isa, t});
                             });
          if (path.isa == I8T_ISA_GENERIC) b->MinTime(0.05);
        }
        if (!i8t_have_onednn()) continue;
        add_case(std::string("conv/") + p.name + "/onednn_f32" + tail,
                 [=](benchmark::State &st) {
                   conv_case(st, ConvArgs{c, p.pass, ConvImpl::onednn, I8T_ISA_GENERIC, t});
                 });
        add_case(std::string("conv/") + p.name + "/fp32_layer" + tail,
                 [=](benchmark::State &st) {
                   conv_case(st, ConvArgs{c, p.pass, ConvImpl::fp32_layer, I8T_ISA_GENERIC, t});
                 });
      }
    }
    for (const BnCase &c : kBnCases) {
      std::string tail = "/" + bn_token(c) + "/" + threads_token(t);
      for (const IsaPath &path : isa_paths()) {
        if (path.isa == I8T_ISA_GENERIC && t != 1) continue;
        add_case("bn/" + std::string(path.name) + tail, [=](benchmark::State &st) {
          bn_case(st, BnArgs{c, true, path.isa, t});
        });
      }
#ifdef I8T_HAVE_ONEDNN
      add_case("bn/onednn_f32" + tail, [=](benchmark::State &st) {
        bn_case(st, BnArgs{c, false, I8T_ISA_GENERIC, t});
      });
#endif
    }
  }
}

const bool registered = (register_layer_cases(), true);

}  // namespace
