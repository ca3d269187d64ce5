/* int8train checkpoints: one binary file holding a model's configuration and
 * every state tensor, the data normalisation and the trainer's position, with
 * a CRC32, written atomically (docs/checkpoint-format.md describes the bytes). */
#ifndef INT8TRAIN_CHECKPOINT_H
#define INT8TRAIN_CHECKPOINT_H

#include "int8train/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define I8T_CHECKPOINT_VERSION 1

/** Everything a checkpoint holds besides the tensors. After a read,
 * `model.arch` points into `arch` (re-point it after copying the struct). */
typedef struct i8t_checkpoint_meta {
  i8t_model_config model;
  char arch[32];
  /* The data the run trains on: the --data spec and its normalisation. */
  char data[1024];
  int data_channels;
  float data_mean[3], data_std[3];
  /* The trainer's options and position: enough to resume exactly. */
  uint64_t seed;
  uint32_t epochs_done;  /**< completed epochs */
  uint32_t epochs;       /**< epochs planned */
  uint32_t batch;
  uint32_t schedule;     /**< an i8t_lr_schedule (trainer.h) */
  uint64_t limit_train;  /**< 0: all training images */
  uint64_t train_count;  /**< training images per epoch */
  float lr, warmup_epochs;
  uint64_t steps;        /**< the model's step counter */
  uint32_t threads;      /**< workers of the run (informational) */
  /* Results of the last completed epoch. */
  double train_loss, test_accuracy;
} i8t_checkpoint_meta;

/** Writes `model` (its configuration, step counter and every state tensor)
 * and `meta` to `path` atomically: a temporary file in the same directory is
 * written, fsync'ed and renamed over `path`, so a failure leaves any previous
 * file intact. meta->model and meta->steps are taken from the model. */
i8t_status i8t_checkpoint_save(const char *path, i8t_model *model, const i8t_checkpoint_meta *meta);

/** Reads and validates (magic, version, size, CRC32) the checkpoint at
 * `path` and returns its meta data without touching any model. */
i8t_status i8t_checkpoint_read_meta(const char *path, i8t_checkpoint_meta *meta);

/** Restores `model` from `path`: refuses (I8T_ERR_FORMAT, with a message
 * naming the file and the difference) a corrupt or truncated file, or one
 * written for another model configuration or with other state tensors; the
 * model is only modified once everything checked out. `meta` may be NULL. */
i8t_status i8t_checkpoint_load(const char *path, i8t_model *model, i8t_checkpoint_meta *meta);

/** The same on bare tensors: what save and load do once they have listed the
 * model's state. load_tensors checks meta->model against `expect` (unless
 * NULL) and the names and sizes of the stored tensors against `tensors`. */
i8t_status i8t_checkpoint_save_tensors(const char *path, const i8t_checkpoint_meta *meta,
                                       const i8t_state_tensor *tensors, size_t count);
i8t_status i8t_checkpoint_load_tensors(const char *path, const i8t_model_config *expect,
                                       const i8t_state_tensor *tensors, size_t count,
                                       i8t_checkpoint_meta *meta);

/** One-line description of a configuration ("resnet depth 8 width 16,
 * 1x28x28 -> 10 classes, int8, range BN, ..."), for messages; returns buf. */
const char *i8t_checkpoint_describe_model(const i8t_model_config *cfg, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif
