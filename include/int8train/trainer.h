/* int8train training loop: epochs of shuffled mini-batch SGD steps with a
 * warm-up + cosine/step learning-rate schedule, an evaluation on the test
 * split after every epoch, checkpoints, JSON-lines logs, progress reports,
 * and exact resumption from a checkpoint. */
#ifndef INT8TRAIN_TRAINER_H
#define INT8TRAIN_TRAINER_H

#include "int8train/checkpoint.h"
#include "int8train/data.h"
#include "int8train/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Learning rate after the warm-up. Every schedule is a pure function of
 * the global step, so a resumed run follows the same curve. */
typedef enum i8t_lr_schedule {
  I8T_SCHEDULE_COSINE = 0,   /**< lr * (1 + cos(pi * t)) / 2, t = progress after warm-up in [0, 1) */
  I8T_SCHEDULE_STEP = 1,     /**< lr, x0.1 from epoch floor(E/2), x0.01 from floor(3E/4) */
  I8T_SCHEDULE_CONSTANT = 2, /**< lr */
} i8t_lr_schedule;

/** "cosine", "step", "constant"; and back (I8T_ERR_INVALID_ARG if unknown). */
const char *i8t_lr_schedule_name(i8t_lr_schedule s);
i8t_status i8t_lr_schedule_from_name(const char *name, i8t_lr_schedule *out);

/** What a progress callback is told. */
typedef enum i8t_progress_event {
  I8T_PROGRESS_STEP = 0,      /**< after a training step */
  I8T_PROGRESS_EVALUATING = 1,/**< the test-set evaluation of an epoch starts */
  I8T_PROGRESS_EPOCH = 2,     /**< an epoch ended: test results are filled in */
} i8t_progress_event;

typedef struct i8t_progress {
  i8t_progress_event event;
  int epoch, epochs;            /**< 1-based epoch, total planned */
  size_t step, steps_per_epoch; /**< steps done in this epoch */
  uint64_t global_step;         /**< steps since the start of the run (resumes included) */
  float lr;                     /**< learning rate of the last step */
  double train_loss;            /**< mean loss over this epoch's steps so far */
  double train_accuracy;        /**< over this epoch's steps so far, 0..1 */
  double images_per_second;     /**< training throughput of this epoch so far */
  double epoch_seconds;         /**< wall time of this epoch so far */
  double eta_seconds;           /**< estimated time to the end of the run */
  double test_loss, test_accuracy; /**< I8T_PROGRESS_EPOCH only; accuracy 0..1 */
} i8t_progress;

/** Called by the trainer; returning non-zero stops training after the
 * current step (the last epoch's checkpoint stays the resume point). */
typedef int (*i8t_progress_fn)(const i8t_progress *p, void *user);

typedef struct i8t_train_options {
  int epochs;             /**< total epochs of the run (default 5) */
  size_t batch;           /**< images per step (128); the epoch's incomplete last batch is dropped */
  float lr;               /**< peak learning rate (0.1) */
  float warmup_epochs;    /**< linear warm-up from lr/steps to lr over this many epochs (1) */
  i8t_lr_schedule schedule; /**< after the warm-up (cosine) */
  uint64_t seed;          /**< drives the shuffle; the model has its own init seed (1) */
  size_t limit_train;     /**< recorded in checkpoints; the caller limits the data set (0) */
  size_t eval_batch;      /**< images per evaluation call; 0: same as batch */
  const char *data_spec;  /**< recorded in checkpoints so that `eval` finds the data (NULL) */
  const char *checkpoint_path; /**< saved after every epoch (NULL: none) */
  const char *resume_path;     /**< continue the run saved there (NULL: fresh start) */
  const char *log_json_path;   /**< one JSON object per epoch, appended on resume (NULL: none) */
  int threads;            /**< recorded in checkpoints and logs (informational) */
  i8t_progress_fn progress;
  void *progress_user;
} i8t_train_options;

/** Defaults for resnet8 on Fashion-MNIST: 5 epochs, batch 128, lr 0.1, one
 * warm-up epoch, cosine, seed 1. */
void i8t_train_options_default(i8t_train_options *opts);

typedef struct i8t_train_result {
  int epochs_done;            /**< completed epochs, resumed ones included */
  uint64_t steps;             /**< the model's step counter */
  int stopped;                /**< the progress callback asked to stop */
  double train_loss;          /**< of the last completed epoch */
  double test_loss, test_accuracy; /**< of the last completed epoch */
  double images_per_second;   /**< training throughput over the epochs of this call */
} i8t_train_result;

/** Learning rate of global step `step` (0-based) for a run of `epochs`
 * epochs of `steps_per_epoch` steps. */
float i8t_lr_at(const i8t_train_options *opts, uint64_t step, size_t steps_per_epoch);

/** The training order of epoch `epoch` (0-based): a permutation of 0..n-1
 * that depends only on (seed, epoch, n). */
void i8t_shuffle_order(uint64_t seed, uint32_t epoch, uint32_t *order, size_t n);

/** Trains `model` on `train`, evaluating on `test` after each epoch. With
 * opts->resume_path the model state, step counter and epoch are restored
 * first, and the checkpoint's batch, lr, warm-up, schedule, seed and
 * training-set size must equal the options' (I8T_ERR_INVALID_ARG naming the
 * difference otherwise); epochs may be raised. Given the same seed and
 * thread count, a resumed run ends with bit-identical weights to an
 * uninterrupted one. `result` may be NULL. */
i8t_status i8t_train(i8t_model *model, const i8t_dataset *train, const i8t_dataset *test,
                     const i8t_train_options *opts, i8t_train_result *result);

/** Evaluates `model` on the whole of `data` in batches of `batch` images. */
i8t_status i8t_evaluate_dataset(i8t_model *model, const i8t_dataset *data, size_t batch,
                                double *loss, double *accuracy);

#ifdef __cplusplus
}
#endif

#endif
