/* int8train models: networks built from int8 (or fp32 baseline) layers, with
 * one call per training step and per evaluation batch. The layers are in
 * layers.h; the training loop, data and checkpoints in trainer.h, data.h and
 * checkpoint.h. */
#ifndef INT8TRAIN_MODEL_H
#define INT8TRAIN_MODEL_H

#include "int8train/int8train.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Arithmetic of a whole run. */
typedef enum i8t_precision {
  I8T_PRECISION_INT8 = 0, /**< the paper's scheme: int8 GEMMs, 16-bit weight-gradient operand */
  I8T_PRECISION_FP32 = 1, /**< float32 baseline (oneDNN primitives) */
} i8t_precision;

/** Normalisation layer after each convolution. */
typedef enum i8t_norm_kind {
  I8T_NORM_DEFAULT = 0,  /**< range for int8, standard for fp32 (the paper's comparison) */
  I8T_NORM_RANGE = 1,    /**< Range BN */
  I8T_NORM_STANDARD = 2, /**< standard batch norm */
} i8t_norm_kind;

typedef struct i8t_model_config {
  const char *arch;      /**< "resnet" (default) or "cnn" */
  int depth;             /**< resnet: 6n+2 (8, 14, 20, ...); cnn: number of conv layers */
  int width;             /**< channels of the first stage (16: stages 16-32-64) */
  int in_channels, in_height, in_width; /**< input image shape (1x28x28, 3x32x32) */
  int num_classes;
  i8t_precision precision;
  i8t_norm_kind norm;
  int wgrad_bits;        /**< bits of the weight-gradient operand: 16 (default) or 8 */
  int act_stochastic;    /**< round activations stochastically (reference bug #4), default 0 */
  float momentum;        /**< SGD momentum (0.9) */
  float weight_decay;    /**< on conv and fc weights only (1e-4 per reference; 5e-4 default here) */
  /* Additions; i8t_model_config_preset fills them with the defaults. */
  int weight_per_channel; /**< int8: one weight scale per output channel (default 0: per tensor) */
  int range_bn_paper;     /**< Range BN: the paper's single range, C(n) = 1/sqrt(2 ln n),
                               instead of the reference's 16 chunks (default 0) */
} i8t_model_config;

/** Defaults for a named model: "resnet8", "resnet14", "resnet20", "cnn" (and
 * "resnet"/"cnn<depth>"), for a given input shape and class count.
 * I8T_ERR_INVALID_ARG for an unknown name. */
i8t_status i8t_model_config_preset(const char *name, int in_channels, int in_height,
                                   int in_width, int num_classes, i8t_model_config *cfg);

typedef struct i8t_model i8t_model;

/** Builds the network with the reference initialisation drawn from `seed`
 * (also the seed of the stochastic-rounding streams). `ctx` may be NULL (no
 * worker threads); it must outlive the model.
 *
 * Networks (NHWC inside; the first conv and the fc layer are quantized too):
 * - "resnet", depth 6n+2: conv3x3(width) BN ReLU, three stages of n basic
 *   blocks (widths w, 2w, 4w; the first block of stages 2 and 3 has stride 2
 *   and a 1x1 conv + BN projection shortcut), global average pool, fc.
 *   Block: conv3x3 BN ReLU conv3x3 BN (gamma = 0 at init), + shortcut, ReLU.
 * - "cnn", depth d: d x (conv3x3 BN ReLU), a 2x2 max-pool after every second
 *   conv but the last (channels doubling after each pool), global average
 *   pool, fc.
 * Initialisation: conv ~ N(0, sqrt(2 / (k k C_out))), BN gamma 1 beta 0,
 * fc ~ N(0, 0.01), bias 0. SGD with momentum; weight decay on conv and fc
 * weights only. Running statistics: Range BN and activation ranges use the
 * reference's running = 0.1 * running + 0.9 * batch; standard BN PyTorch's
 * running = 0.9 * running + 0.1 * batch (unbiased variance). A batch of one
 * sample leaves the BN running statistics unchanged. See layers.h for the
 * int8 formats and docs/training.md for the decisions. */
i8t_status i8t_model_create(i8t_context *ctx, const i8t_model_config *cfg, uint64_t seed,
                            i8t_model **out);
void i8t_model_destroy(i8t_model *model);
const i8t_model_config *i8t_model_get_config(const i8t_model *model);

/** Loss and accuracy of one batch. */
typedef struct i8t_batch_result {
  double loss;      /**< mean softmax cross-entropy over the batch */
  size_t correct;   /**< samples whose arg-max prediction equals the label */
} i8t_batch_result;

/** One SGD step on a batch: images are float NCHW [n x C x H x W] (already
 * normalised), labels in [0, num_classes). Batch statistics in train mode. */
i8t_status i8t_model_train_step(i8t_model *model, const float *images, const uint8_t *labels,
                                size_t n, float lr, i8t_batch_result *result);

/** Forward pass in evaluation mode (running statistics), no update. */
i8t_status i8t_model_evaluate(i8t_model *model, const float *images, const uint8_t *labels,
                              size_t n, i8t_batch_result *result);

/** Everything that defines the model's state, for checkpoints: parameters,
 * momentum buffers, running statistics and quantizer ranges, each a named
 * float tensor, plus the step counter that drives the rounding streams. */
typedef struct i8t_state_tensor {
  const char *name; /**< unique and stable, e.g. "stage1.block0.conv1.weight" */
  float *data;
  size_t size;      /**< number of floats */
} i8t_state_tensor;

/** Names: "<param>" (e.g. "conv1.weight", "bn1.gamma", "fc.bias"),
 * "<param>.momentum", "<bn>.running_mean", "<bn>.running_var" (standard BN)
 * or "<bn>.running_scale" (Range BN), int8 quantizer ranges "<name>.range"
 * (2 floats: running min, max), and "rng.seed" (4 floats of 16 bits: the
 * rounding streams' seed). Restoring every tensor and the step count makes
 * the next steps bit-identical to an uninterrupted run (same thread-count
 * independence as everything else). */
size_t i8t_model_state_count(const i8t_model *model);
i8t_status i8t_model_state(i8t_model *model, size_t i, i8t_state_tensor *out);
uint64_t i8t_model_step_count(const i8t_model *model);
void i8t_model_set_step_count(i8t_model *model, uint64_t steps);

/* Additions for tools and benchmarks. */

/** Number of trainable parameters (floats). */
size_t i8t_model_parameter_count(const i8t_model *model);
/** One line per layer ("conv1 3x3 1->16 stride 1 out 28x28", ...), like
 * snprintf: writes at most `size` bytes and returns the length it needed. */
size_t i8t_model_describe(const i8t_model *model, char *buf, size_t size);
/** The fp32 backend of a model (an i8t_fp32_backend of layers.h: 0 auto,
 * 1 portable, 2 oneDNN). Tests compare them; the default is auto. */
i8t_status i8t_model_set_fp32_backend(i8t_model *model, int backend);

#ifdef __cplusplus
}
#endif

#endif
