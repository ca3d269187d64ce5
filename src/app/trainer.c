/* The training loop: per-epoch shuffle (a pure function of seed and epoch),
 * SGD steps at a scheduled learning rate (a pure function of the global
 * step), test evaluation, checkpoint and JSON-lines log after every epoch.
 * Nothing else carries state between epochs, which is what makes a resumed
 * run bit-identical to an uninterrupted one. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app_internal.h"
#include "int8train/trainer.h"

static const char *const schedule_names[] = {"cosine", "step", "constant"};

const char *i8t_lr_schedule_name(i8t_lr_schedule s) {
  return (unsigned)s < 3 ? schedule_names[s] : "unknown";
}

i8t_status i8t_lr_schedule_from_name(const char *name, i8t_lr_schedule *out) {
  for (int i = 0; i < 3; i++)
    if (name && strcmp(name, schedule_names[i]) == 0) {
      *out = (i8t_lr_schedule)i;
      return I8T_OK;
    }
  return i8t_error(I8T_ERR_INVALID_ARG, "unknown schedule '%s' (cosine, step or constant)",
                   name ? name : "(null)");
}

void i8t_train_options_default(i8t_train_options *o) {
  memset(o, 0, sizeof *o);
  o->epochs = 5;
  o->batch = 128;
  o->lr = 0.1f;
  o->warmup_epochs = 1.0f;
  o->schedule = I8T_SCHEDULE_COSINE;
  o->seed = 1;
}

/* ------------------------------------------------------------------------ */
/* Schedule and shuffle: pure functions                                     */
/* ------------------------------------------------------------------------ */

float i8t_lr_at(const i8t_train_options *o, uint64_t step, size_t steps_per_epoch) {
  const double spe = (double)steps_per_epoch;
  const double total = spe * (double)o->epochs;
  const double warm = floor((double)o->warmup_epochs * spe + 0.5);
  const double s = (double)step;
  if (s < warm) return (float)((double)o->lr * (s + 1.0) / warm);
  double factor = 1.0;
  if (o->schedule == I8T_SCHEDULE_COSINE) {
    double t = total > warm ? (s - warm) / (total - warm) : 0.0;
    factor = 0.5 * (1.0 + cos(M_PI * I8T_MIN(t, 1.0)));
  } else if (o->schedule == I8T_SCHEDULE_STEP) {
    uint64_t epoch = step / (steps_per_epoch ? steps_per_epoch : 1);
    uint64_t half = (uint64_t)o->epochs / 2, three_quarters = (uint64_t)o->epochs * 3 / 4;
    if (three_quarters > 0 && epoch >= three_quarters) factor = 0.01;
    else if (half > 0 && epoch >= half) factor = 0.1;
  }
  return (float)((double)o->lr * factor);
}

static uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void i8t_shuffle_order(uint64_t seed, uint32_t epoch, uint32_t *order, size_t n) {
  uint64_t state = seed ^ 0x5851F42D4C957F2Dull;
  state = splitmix64(&state) + epoch;
  (void)splitmix64(&state);
  for (size_t i = 0; i < n; i++) order[i] = (uint32_t)i;
  /* Fisher-Yates; the modulo bias is below n / 2^64. */
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)(splitmix64(&state) % i);
    uint32_t t = order[i - 1];
    order[i - 1] = order[j];
    order[j] = t;
  }
}

/* ------------------------------------------------------------------------ */
/* Evaluation                                                               */
/* ------------------------------------------------------------------------ */

i8t_status i8t_evaluate_dataset(i8t_model *model, const i8t_dataset *data, size_t batch,
                                double *loss, double *accuracy) {
  if (!model || !data || !batch || !data->count)
    return i8t_error(I8T_ERR_INVALID_ARG, "evaluate: no model, no data or batch 0");
  const size_t image = i8t_dataset_image_size(data), bn = I8T_MIN(batch, data->count);
  float *images = i8t_aligned_alloc(bn * image * sizeof *images);
  uint8_t *labels = malloc(bn);
  i8t_status st = images && labels ? I8T_OK : i8t_error(I8T_ERR_NO_MEMORY, "evaluate");
  double loss_sum = 0;
  size_t correct = 0;
  for (size_t first = 0; st == I8T_OK && first < data->count; first += bn) {
    size_t n = I8T_MIN(bn, data->count - first);
    i8t_batch_result r = {0, 0};
    st = i8t_dataset_gather(data, NULL, first, n, images, labels);
    if (st == I8T_OK) st = i8t_model_evaluate(model, images, labels, n, &r);
    loss_sum += r.loss * (double)n;
    correct += r.correct;
  }
  i8t_aligned_free(images);
  free(labels);
  if (st != I8T_OK) return st;
  if (loss) *loss = loss_sum / (double)data->count;
  if (accuracy) *accuracy = (double)correct / (double)data->count;
  return I8T_OK;
}

/* ------------------------------------------------------------------------ */
/* The loop                                                                 */
/* ------------------------------------------------------------------------ */

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Re-raises the model's error with the position in the run in front. */
static i8t_status with_position(i8t_status st, int epoch, size_t step) {
  char msg[768];
  snprintf(msg, sizeof msg, "%s", i8t_last_error());
  return i8t_error(st, "epoch %d, step %zu: %s", epoch, step, msg);
}

static i8t_status check_options(const i8t_train_options *o, const i8t_model_config *cfg,
                                const i8t_dataset *train, const i8t_dataset *test) {
  if (o->epochs < 1) return i8t_error(I8T_ERR_INVALID_ARG, "train: epochs %d < 1", o->epochs);
  if (o->batch < 1 || o->batch > (1u << 20))
    return i8t_error(I8T_ERR_INVALID_ARG, "train: batch %zu out of range 1..%u", o->batch, 1u << 20);
  if (!(o->lr > 0.0f) || !isfinite(o->lr))
    return i8t_error(I8T_ERR_INVALID_ARG, "train: learning rate %g must be positive", (double)o->lr);
  if (!(o->warmup_epochs >= 0.0f) || !isfinite(o->warmup_epochs))
    return i8t_error(I8T_ERR_INVALID_ARG, "train: warm-up %g epochs", (double)o->warmup_epochs);
  if ((unsigned)o->schedule > I8T_SCHEDULE_CONSTANT)
    return i8t_error(I8T_ERR_INVALID_ARG, "train: unknown schedule %d", (int)o->schedule);
  if (!train || !train->count || !test || !test->count)
    return i8t_error(I8T_ERR_INVALID_ARG, "train: empty training or test set");
  if (train->count > UINT32_MAX)
    return i8t_error(I8T_ERR_INVALID_ARG, "train: %zu training images (at most 2^32-1)", train->count);
  const i8t_dataset *sets[2] = {train, test};
  for (int i = 0; i < 2; i++) {
    const i8t_dataset *d = sets[i];
    if (d->channels != cfg->in_channels || d->height != cfg->in_height ||
        d->width != cfg->in_width || d->num_classes > cfg->num_classes)
      return i8t_error(I8T_ERR_SHAPE,
                       "train: the model takes %dx%dx%d images and %d classes, the %s set has "
                       "%dx%dx%d images and %d classes", cfg->in_channels, cfg->in_height,
                       cfg->in_width, cfg->num_classes, i ? "test" : "training", d->channels,
                       d->height, d->width, d->num_classes);
  }
  return I8T_OK;
}

/* The checkpoint's training options must be the ones of this call, or the
 * resumed run would not continue the same trajectory. */
static i8t_status check_resume(const char *path, const i8t_checkpoint_meta *m,
                               const i8t_train_options *o, const i8t_dataset *train) {
  const char *what = NULL;
  char have[64] = "", want[64] = "";
  if (m->batch != o->batch) {
    what = "batch";
    snprintf(have, sizeof have, "%u", m->batch);
    snprintf(want, sizeof want, "%zu", o->batch);
  } else if (m->lr != o->lr) {
    what = "lr";
    snprintf(have, sizeof have, "%g", (double)m->lr);
    snprintf(want, sizeof want, "%g", (double)o->lr);
  } else if (m->warmup_epochs != o->warmup_epochs) {
    what = "warm-up epochs";
    snprintf(have, sizeof have, "%g", (double)m->warmup_epochs);
    snprintf(want, sizeof want, "%g", (double)o->warmup_epochs);
  } else if (m->schedule != (uint32_t)o->schedule) {
    what = "schedule";
    snprintf(have, sizeof have, "%s", i8t_lr_schedule_name((i8t_lr_schedule)m->schedule));
    snprintf(want, sizeof want, "%s", i8t_lr_schedule_name(o->schedule));
  } else if (m->seed != o->seed) {
    what = "seed";
    snprintf(have, sizeof have, "%llu", (unsigned long long)m->seed);
    snprintf(want, sizeof want, "%llu", (unsigned long long)o->seed);
  } else if (m->train_count != train->count) {
    what = "training images";
    snprintf(have, sizeof have, "%llu", (unsigned long long)m->train_count);
    snprintf(want, sizeof want, "%zu", train->count);
  }
  if (what)
    return i8t_error(I8T_ERR_INVALID_ARG,
                     "resume from %s: %s is %s in the checkpoint but %s now (resuming needs the "
                     "same options)", path, what, have, want);
  for (int c = 0; c < train->channels; c++)
    if (m->data_mean[c] != train->mean[c] || m->data_std[c] != train->std[c])
      return i8t_error(I8T_ERR_INVALID_ARG,
                       "resume from %s: the data normalisation differs from the checkpoint's "
                       "(load the data with the checkpoint's mean and std)", path);
  if ((int)m->epochs_done > o->epochs)
    return i8t_error(I8T_ERR_INVALID_ARG,
                     "resume from %s: the checkpoint has completed %u epochs, more than the %d "
                     "asked for", path, m->epochs_done, o->epochs);
  return I8T_OK;
}

/* The whole state of one call of i8t_train. */
typedef struct run {
  i8t_model *model;
  const i8t_dataset *train, *test;
  const i8t_train_options *opts;
  size_t batch, steps_per_epoch, image;
  float *images;
  uint8_t *labels;
  uint32_t *order;
  FILE *log;
  int epochs_done;
  int stopped;
  double last_eval_seconds, train_seconds;
  size_t train_images;
  i8t_train_result result;
} run;

static double estimate_eta(const run *r, const i8t_progress *p) {
  if (r->train_images == 0) return 0.0;
  const double per_image = r->train_seconds / (double)r->train_images;
  const double steps_left = (double)(p->epochs - p->epoch) * (double)r->steps_per_epoch +
                            (double)(r->steps_per_epoch - p->step);
  /* Until an evaluation was timed, guess that a forward pass costs a third
   * of a training step. */
  const double eval = r->last_eval_seconds > 0
                          ? r->last_eval_seconds
                          : per_image * (double)r->test->count / 3.0;
  const int evals_left = p->epochs - p->epoch + (p->event == I8T_PROGRESS_EPOCH ? 0 : 1);
  return steps_left * (double)r->batch * per_image + evals_left * eval;
}

static int report(run *r, i8t_progress *p) {
  p->eta_seconds = estimate_eta(r, p);
  if (r->opts->progress && r->opts->progress(p, r->opts->progress_user)) r->stopped = 1;
  return r->stopped;
}

static void json_number(FILE *f, const char *key, double v) {
  if (isfinite(v)) fprintf(f, ",\"%s\":%.9g", key, v);
  else fprintf(f, ",\"%s\":null", key);
}

static void json_string(FILE *f, const char *key, const char *s) {
  fprintf(f, ",\"%s\":\"", key);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
    else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
    else fputc(*s, f);
  }
  fputc('"', f);
}

static void log_epoch(run *r, const i8t_progress *p) {
  if (!r->log) return;
  const i8t_model_config *cfg = i8t_model_get_config(r->model);
  FILE *f = r->log;
  fprintf(f, "{\"epoch\":%d", p->epoch);
  fprintf(f, ",\"epochs\":%d,\"steps\":%llu", p->epochs, (unsigned long long)p->global_step);
  json_number(f, "lr", p->lr);
  json_number(f, "train_loss", p->train_loss);
  json_number(f, "train_accuracy", p->train_accuracy);
  json_number(f, "test_loss", p->test_loss);
  json_number(f, "test_accuracy", p->test_accuracy);
  json_number(f, "images_per_second", p->images_per_second);
  json_number(f, "epoch_seconds", p->epoch_seconds);
  json_number(f, "eval_seconds", r->last_eval_seconds);
  json_string(f, "precision", cfg->precision == I8T_PRECISION_FP32 ? "fp32" : "int8");
  json_string(f, "arch", cfg->arch ? cfg->arch : "resnet");
  fprintf(f, ",\"depth\":%d,\"width\":%d", cfg->depth, cfg->width);
  int norm = cfg->norm != I8T_NORM_DEFAULT ? (int)cfg->norm
             : cfg->precision == I8T_PRECISION_INT8 ? I8T_NORM_RANGE : I8T_NORM_STANDARD;
  json_string(f, "norm", norm == I8T_NORM_RANGE ? "range" : "standard");
  fprintf(f, ",\"wgrad_bits\":%d,\"act_rounding\":\"%s\"", cfg->wgrad_bits,
          cfg->act_stochastic ? "stochastic" : "nearest");
  fprintf(f, ",\"batch\":%zu,\"train_images\":%zu,\"test_images\":%zu", r->batch,
          r->train->count, r->test->count);
  fprintf(f, ",\"seed\":%llu,\"threads\":%d", (unsigned long long)r->opts->seed, r->opts->threads);
  json_string(f, "schedule", i8t_lr_schedule_name(r->opts->schedule));
  fprintf(f, "}\n");
  fflush(f);
}

static i8t_status save_checkpoint(run *r, const i8t_progress *p) {
  const i8t_train_options *o = r->opts;
  if (!o->checkpoint_path) return I8T_OK;
  i8t_checkpoint_meta m;
  memset(&m, 0, sizeof m);
  snprintf(m.data, sizeof m.data, "%s", o->data_spec ? o->data_spec : "");
  m.data_channels = r->train->channels;
  for (int c = 0; c < r->train->channels && c < 3; c++) {
    m.data_mean[c] = r->train->mean[c];
    m.data_std[c] = r->train->std[c];
  }
  m.seed = o->seed;
  m.epochs_done = (uint32_t)r->epochs_done;
  m.epochs = (uint32_t)o->epochs;
  m.batch = (uint32_t)o->batch;
  m.schedule = (uint32_t)o->schedule;
  m.limit_train = o->limit_train;
  m.train_count = r->train->count;
  m.lr = o->lr;
  m.warmup_epochs = o->warmup_epochs;
  m.threads = (uint32_t)(o->threads > 0 ? o->threads : 0);
  m.train_loss = p->train_loss;
  m.test_accuracy = p->test_accuracy;
  return i8t_checkpoint_save(o->checkpoint_path, r->model, &m);
}

/* One epoch of training steps; returns with r->stopped set if asked to. */
static i8t_status train_epoch(run *r, int epoch, i8t_progress *p) {
  const i8t_train_options *o = r->opts;
  i8t_shuffle_order(o->seed, (uint32_t)epoch, r->order, r->train->count);
  double loss_sum = 0, start = now_seconds();
  size_t correct = 0, seen = 0;
  memset(p, 0, sizeof *p);
  p->epoch = epoch + 1;
  p->epochs = o->epochs;
  p->steps_per_epoch = r->steps_per_epoch;
  for (size_t s = 0; s < r->steps_per_epoch; s++) {
    uint64_t global = (uint64_t)epoch * r->steps_per_epoch + s;
    float lr = i8t_lr_at(o, global, r->steps_per_epoch);
    i8t_batch_result br = {0, 0};
    double t0 = now_seconds();
    i8t_status st = i8t_dataset_gather(r->train, r->order + s * r->batch, 0, r->batch, r->images,
                                       r->labels);
    if (st == I8T_OK) st = i8t_model_train_step(r->model, r->images, r->labels, r->batch, lr, &br);
    if (st != I8T_OK) return with_position(st, epoch + 1, s + 1);
    if (!isfinite(br.loss))
      return i8t_error(I8T_ERR_NONFINITE,
                       "epoch %d, step %zu: the loss is %g: training diverged (lower --lr?)",
                       epoch + 1, s + 1, br.loss);
    r->train_seconds += now_seconds() - t0;
    r->train_images += r->batch;
    loss_sum += br.loss * (double)r->batch;
    correct += br.correct;
    seen += r->batch;
    p->event = I8T_PROGRESS_STEP;
    p->step = s + 1;
    p->global_step = global + 1;
    p->lr = lr;
    p->train_loss = loss_sum / (double)seen;
    p->train_accuracy = (double)correct / (double)seen;
    p->epoch_seconds = now_seconds() - start;
    p->images_per_second = (double)seen / (p->epoch_seconds > 0 ? p->epoch_seconds : 1e-9);
    if (report(r, p)) return I8T_OK;
  }
  return I8T_OK;
}

static i8t_status finish_epoch(run *r, i8t_progress *p) {
  p->event = I8T_PROGRESS_EVALUATING;
  report(r, p);
  double t0 = now_seconds();
  i8t_status st = i8t_evaluate_dataset(r->model, r->test, r->opts->eval_batch ? r->opts->eval_batch
                                                                              : r->batch,
                                       &p->test_loss, &p->test_accuracy);
  if (st != I8T_OK) return with_position(st, p->epoch, p->step);
  r->last_eval_seconds = now_seconds() - t0;
  r->epochs_done = p->epoch;
  st = save_checkpoint(r, p);
  if (st != I8T_OK) return st;
  log_epoch(r, p);
  r->result.epochs_done = p->epoch;
  r->result.train_loss = p->train_loss;
  r->result.test_loss = p->test_loss;
  r->result.test_accuracy = p->test_accuracy;
  p->event = I8T_PROGRESS_EPOCH;
  report(r, p);
  return I8T_OK;
}

static i8t_status open_log(run *r, int append) {
  const char *path = r->opts->log_json_path;
  if (!path) return I8T_OK;
  i8t_status st = i8t_make_parent_dirs(path);
  if (st != I8T_OK) return st;
  r->log = fopen(path, append ? "a" : "w");
  if (!r->log)
    return i8t_error(I8T_ERR_IO, "cannot open the JSON log %s: %s", path, strerror(errno));
  return I8T_OK;
}

static i8t_status resume(run *r) {
  const char *path = r->opts->resume_path;
  i8t_checkpoint_meta m;
  i8t_status st = i8t_checkpoint_read_meta(path, &m);
  if (st == I8T_OK) st = check_resume(path, &m, r->opts, r->train);
  if (st == I8T_OK) st = i8t_checkpoint_load(path, r->model, &m);
  if (st != I8T_OK) return st;
  r->epochs_done = (int)m.epochs_done;
  r->result.epochs_done = r->epochs_done;
  r->result.train_loss = m.train_loss;
  r->result.test_accuracy = m.test_accuracy;
  r->result.test_loss = NAN;
  return I8T_OK;
}

static i8t_status train_run(run *r) {
  const i8t_train_options *o = r->opts;
  i8t_status st = I8T_OK;
  if (o->resume_path) st = resume(r);
  if (st == I8T_OK) st = open_log(r, o->resume_path != NULL);
  const size_t n = r->train->count;
  r->images = i8t_aligned_alloc(r->batch * r->image * sizeof *r->images);
  r->labels = malloc(r->batch);
  r->order = malloc(n * sizeof *r->order);
  if (st == I8T_OK && (!r->images || !r->labels || !r->order))
    st = i8t_error(I8T_ERR_NO_MEMORY, "train: out of memory for the batch buffers");
  for (int epoch = r->epochs_done; st == I8T_OK && epoch < o->epochs && !r->stopped; epoch++) {
    i8t_progress p;
    st = train_epoch(r, epoch, &p);
    if (st == I8T_OK && !r->stopped) st = finish_epoch(r, &p);
  }
  return st;
}

i8t_status i8t_train(i8t_model *model, const i8t_dataset *train, const i8t_dataset *test,
                     const i8t_train_options *opts, i8t_train_result *result) {
  i8t_train_options defaults;
  if (!opts) {
    i8t_train_options_default(&defaults);
    opts = &defaults;
  }
  if (!model) return i8t_error(I8T_ERR_INVALID_ARG, "train: NULL model");
  i8t_status st = check_options(opts, i8t_model_get_config(model), train, test);
  if (st != I8T_OK) return st;
  run r;
  memset(&r, 0, sizeof r);
  r.model = model;
  r.train = train;
  r.test = test;
  r.opts = opts;
  /* The epoch's incomplete last batch is dropped (a tiny batch gives Range BN
   * a noisy range); a set smaller than a batch is one step. */
  r.batch = I8T_MIN(opts->batch, train->count);
  r.steps_per_epoch = train->count / r.batch;
  r.image = i8t_dataset_image_size(train);
  r.result.test_loss = r.result.test_accuracy = r.result.train_loss = NAN;
  st = train_run(&r);
  if (r.log) fclose(r.log);
  i8t_aligned_free(r.images);
  free(r.labels);
  free(r.order);
  r.result.steps = i8t_model_step_count(model);
  r.result.stopped = r.stopped;
  r.result.images_per_second =
      r.train_seconds > 0 ? (double)r.train_images / r.train_seconds : 0.0;
  if (result) *result = r.result;
  return st;
}
