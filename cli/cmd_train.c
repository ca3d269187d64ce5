/* `int8train train`: builds a model, loads the data, runs i8t_train with a
 * progress display, and prints the final test accuracy. With --resume the
 * model, data normalisation and training options come from the checkpoint;
 * options given explicitly must agree with it. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "int8train/int8train.h"
#include "int8train/trainer.h"
#include "options.h"
#include "progress.h"

static const char *const precision_choices[] = {"int8", "fp32", NULL};
static const char *const pin_choices[] = {"compact", "scatter", "none", NULL};
static const char *const schedule_choices[] = {"cosine", "step", "constant", NULL};
static const char *const wgrad_choices[] = {"8", "16", NULL};
static const char *const norm_choices[] = {"range", "standard", NULL};
static const char *const rounding_choices[] = {"nearest", "stochastic", NULL};

typedef struct train_args {
  const char *model, *data, *checkpoint, *resume, *log_json;
  int precision, schedule, pin, wgrad, norm, rounding, threads, epochs;
  size_t batch, limit_train, limit_test;
  float lr, warmup;
  uint64_t seed;
} train_args;

static const char usage_line[] = "int8train train [options]";
static const char description[] =
    "Trains a model with 8-bit integer arithmetic (or the fp32 baseline) and prints the\n"
    "test accuracy after every epoch and at the end. --data takes 'fashion-mnist' (Debian's\n"
    "dataset-fashion-mnist package) or a directory of MNIST-format IDX files (raw or .gz)\n"
    "or of CIFAR-10 binary batches. --resume continues a run from its checkpoint (same\n"
    "options, bit-identical result); only --epochs may then be raised.";

/* Fills the option table; `a` holds the defaults on entry. */
static size_t make_options(train_args *a, i8t_cli_option *o) {
  i8t_cli_option table[] = {
      {"--model", I8T_CLI_STRING, &a->model, 0, 0, NULL, "NAME",
       "resnet8 (default), resnet14, resnet20, ..., cnn", 0},
      {"--data", I8T_CLI_STRING, &a->data, 0, 0, NULL, "fashion-mnist|DIR",
       "data set (default fashion-mnist)", 0},
      {"--precision", I8T_CLI_CHOICE, &a->precision, 0, 0, precision_choices, "int8|fp32",
       "arithmetic (default int8)", 0},
      {"--epochs", I8T_CLI_INT, &a->epochs, 1, 100000, NULL, "N", "epochs (default 5)", 0},
      {"--batch", I8T_CLI_SIZE, &a->batch, 1, 65536, NULL, "N", "images per step (default 128)", 0},
      {"--lr", I8T_CLI_FLOAT, &a->lr, 1e-9, 100, NULL, "X", "peak learning rate (default 0.1)", 0},
      {"--warmup", I8T_CLI_FLOAT, &a->warmup, 0, 10000, NULL, "EPOCHS",
       "linear warm-up length in epochs (default 1)", 0},
      {"--schedule", I8T_CLI_CHOICE, &a->schedule, 0, 0, schedule_choices,
       "cosine|step|constant", "after the warm-up (default cosine)", 0},
      {"--threads", I8T_CLI_INT, &a->threads, 0, I8T_MAX_THREADS, NULL, "N",
       "worker threads (default 0: one per core)", 0},
      {"--pin", I8T_CLI_CHOICE, &a->pin, 0, 0, pin_choices, "compact|scatter|none",
       "thread pinning (default compact, or INT8TRAIN_PIN)", 0},
      {"--seed", I8T_CLI_U64, &a->seed, 0, 0, NULL, "N",
       "seed of the initialisation and the shuffle (default 1)", 0},
      {"--limit-train", I8T_CLI_SIZE, &a->limit_train, 0, (double)UINT32_MAX, NULL, "N",
       "train on the first N images only (default 0: all)", 0},
      {"--limit-test", I8T_CLI_SIZE, &a->limit_test, 0, (double)UINT32_MAX, NULL, "N",
       "evaluate on the first N test images only (default 0: all)", 0},
      {"--checkpoint", I8T_CLI_STRING, &a->checkpoint, 0, 0, NULL, "FILE",
       "save a checkpoint after every epoch (default: none; with --resume: that file)", 0},
      {"--resume", I8T_CLI_STRING, &a->resume, 0, 0, NULL, "FILE",
       "continue the run saved in FILE", 0},
      {"--log-json", I8T_CLI_STRING, &a->log_json, 0, 0, NULL, "FILE",
       "append one JSON object per epoch (truncated first unless resuming)", 0},
      {"--wgrad-bits", I8T_CLI_CHOICE, &a->wgrad, 0, 0, wgrad_choices, "8|16",
       "bits of the weight-gradient operand (default 16; ablation)", 0},
      {"--norm", I8T_CLI_CHOICE, &a->norm, 0, 0, norm_choices, "range|standard",
       "batch norm kind (default range for int8, standard for fp32)", 0},
      {"--act-rounding", I8T_CLI_CHOICE, &a->rounding, 0, 0, rounding_choices,
       "nearest|stochastic", "activation rounding (default nearest; ablation)", 0},
  };
  memcpy(o, table, sizeof table);
  return sizeof table / sizeof table[0];
}

#define MAX_OPTIONS 32

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
  (void)sig;
  interrupted = 1;
}

static void install_sigint(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C ends the process at once */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
}

static int fail(const char *what) {
  fprintf(stderr, "int8train train: %s: %s\n", what, i8t_last_error());
  return 1;
}

/* With --resume: options given explicitly must equal the checkpoint's; the
 * others are taken from it. */
static int adopt_checkpoint(train_args *a, i8t_cli_option *o, size_t n,
                            const i8t_checkpoint_meta *m) {
  const i8t_model_config *c = &m->model;
  int norm = c->norm != I8T_NORM_DEFAULT ? (int)c->norm
             : c->precision == I8T_PRECISION_INT8 ? I8T_NORM_RANGE : I8T_NORM_STANDARD;
  struct { const char *name; int differs; } checks[] = {
      {"--precision", a->precision != (int)c->precision},
      {"--norm", a->norm + 1 != norm},
      {"--wgrad-bits", (a->wgrad ? 16 : 8) != c->wgrad_bits},
      {"--act-rounding", a->rounding != c->act_stochastic},
      {"--batch", a->batch != m->batch},
      {"--lr", a->lr != m->lr},
      {"--warmup", a->warmup != m->warmup_epochs},
      {"--schedule", (uint32_t)a->schedule != m->schedule},
      {"--seed", a->seed != m->seed},
      {"--limit-train", a->limit_train != m->limit_train},
  };
  if (i8t_cli_find(o, n, "--model")->given) {
    i8t_model_config preset;
    if (i8t_model_config_preset(a->model, c->in_channels, c->in_height, c->in_width,
                                c->num_classes, &preset) != I8T_OK)
      return i8t_cli_usage_error("train", "--model: %s", i8t_last_error());
    if (strcmp(preset.arch ? preset.arch : "resnet", c->arch ? c->arch : "resnet") != 0 ||
        preset.depth != c->depth || preset.width != c->width)
      return i8t_cli_usage_error("train", "--model %s differs from the model of the run in %s",
                                 a->model, a->resume);
  }
  for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++)
    if (i8t_cli_find(o, n, checks[i].name)->given && checks[i].differs)
      return i8t_cli_usage_error("train",
                                 "%s differs from the run in %s (a resumed run keeps its options)",
                                 checks[i].name, a->resume);
  a->precision = (int)c->precision;
  a->norm = norm - 1;
  a->wgrad = c->wgrad_bits == 16;
  a->rounding = c->act_stochastic;
  a->batch = m->batch;
  a->lr = m->lr;
  a->warmup = m->warmup_epochs;
  a->schedule = (int)m->schedule;
  a->seed = m->seed;
  a->limit_train = (size_t)m->limit_train;
  if (!i8t_cli_find(o, n, "--epochs")->given) a->epochs = (int)m->epochs;
  if (!i8t_cli_find(o, n, "--data")->given && m->data[0]) a->data = m->data;
  if (!a->checkpoint) a->checkpoint = a->resume;
  return 0;
}

/* The configuration of a fresh run: the preset for --model, then the flags. */
static int make_config(const train_args *a, const i8t_cli_option *o, size_t n,
                       const i8t_dataset *d, i8t_model_config *cfg) {
  if (i8t_model_config_preset(a->model, d->channels, d->height, d->width, d->num_classes, cfg) !=
      I8T_OK)
    return i8t_cli_usage_error("train", "--model: %s", i8t_last_error());
  cfg->precision = a->precision ? I8T_PRECISION_FP32 : I8T_PRECISION_INT8;
  cfg->norm = i8t_cli_find((i8t_cli_option *)o, n, "--norm")->given
                  ? (a->norm ? I8T_NORM_STANDARD : I8T_NORM_RANGE)
                  : I8T_NORM_DEFAULT;
  cfg->wgrad_bits = a->wgrad ? 16 : 8;
  cfg->act_stochastic = a->rounding;
  return 0;
}

/* Checkpoints store the data spec so that `eval` finds the data: a
 * directory is stored as an absolute path. */
static void absolute_spec(const char *spec, char *buf, size_t size) {
  char resolved[PATH_MAX];
  if (strcmp(spec, "fashion-mnist") != 0 && realpath(spec, resolved))
    snprintf(buf, size, "%s", resolved);
  else
    snprintf(buf, size, "%s", spec);
}

static void print_header(const train_args *a, const i8t_model_config *cfg, const i8t_dataset *tr,
                         const i8t_dataset *te, int threads) {
  char desc[512];
  printf("model: %s\n", i8t_checkpoint_describe_model(cfg, desc, sizeof desc));
  printf("data: %s: %zu training / %zu test images, %dx%dx%d, %d classes\n", a->data, tr->count,
         te->count, tr->channels, tr->height, tr->width, tr->num_classes);
  printf("training: %d epoch%s, batch %zu, lr %g, warm-up %g epoch%s, %s schedule, seed %llu, "
         "%d threads, %s kernels\n", a->epochs, a->epochs == 1 ? "" : "s", a->batch,
         (double)a->lr, (double)a->warmup, a->warmup == 1.0f ? "" : "s",
         schedule_choices[a->schedule], (unsigned long long)a->seed, threads,
         i8t_isa_name(i8t_isa_selected()));
  fflush(stdout);
}

static int run_training(train_args *a, i8t_cli_option *o, size_t n) {
  i8t_checkpoint_meta meta;
  i8t_data_options dopts;
  i8t_data_options_default(&dopts);
  if (a->resume) {
    if (i8t_checkpoint_read_meta(a->resume, &meta) != I8T_OK) return fail("--resume");
    if (adopt_checkpoint(a, o, n, &meta)) return 2;
    dopts.have_norm = 1;
    memcpy(dopts.mean, meta.data_mean, sizeof dopts.mean);
    memcpy(dopts.std, meta.data_std, sizeof dopts.std);
  }
  dopts.limit_train = a->limit_train;
  dopts.limit_test = a->limit_test;
  i8t_dataset train, test;
  if (i8t_data_load(a->data, &dopts, &train, &test) != I8T_OK) return fail("--data");

  int rc = 1;
  i8t_context *ctx = NULL;
  i8t_model *model = NULL;
  i8t_model_config cfg;
  i8t_context_options copts;
  i8t_context_options_default(&copts);
  copts.threads = a->threads;
  if (i8t_cli_find(o, n, "--pin")->given) {
    copts.pin = (i8t_pin_policy)a->pin;
    copts.pin_from_env = 0;
  }
  if (a->resume) {
    cfg = meta.model;
    cfg.arch = meta.arch;
  } else if (make_config(a, o, n, &train, &cfg)) {
    rc = 2;
    goto done;
  }
  if (i8t_context_create(&copts, &ctx) != I8T_OK) {
    rc = fail("threads");
    goto done;
  }
  if (i8t_model_create(ctx, &cfg, a->seed, &model) != I8T_OK) {
    rc = fail("model");
    goto done;
  }
  print_header(a, i8t_model_get_config(model), &train, &test, i8t_context_threads(ctx));

  char spec[PATH_MAX + 1];
  absolute_spec(a->data, spec, sizeof spec);
  i8t_cli_progress progress;
  i8t_cli_progress_init(&progress, &interrupted);
  i8t_train_options topts;
  i8t_train_options_default(&topts);
  topts.epochs = a->epochs;
  topts.batch = a->batch;
  topts.lr = a->lr;
  topts.warmup_epochs = a->warmup;
  topts.schedule = (i8t_lr_schedule)a->schedule;
  topts.seed = a->seed;
  topts.limit_train = a->limit_train;
  topts.data_spec = spec;
  topts.checkpoint_path = a->checkpoint;
  topts.resume_path = a->resume;
  topts.log_json_path = a->log_json;
  topts.threads = i8t_context_threads(ctx);
  topts.progress = i8t_cli_progress_report;
  topts.progress_user = &progress;
  install_sigint();
  i8t_train_result result;
  i8t_status st = i8t_train(model, &train, &test, &topts, &result);
  i8t_cli_progress_clear(&progress);
  signal(SIGINT, SIG_DFL);
  if (st != I8T_OK) {
    rc = fail("training failed");
  } else if (result.stopped) {
    printf("interrupted after %d completed epoch%s%s%s\n", result.epochs_done,
           result.epochs_done == 1 ? "" : "s",
           a->checkpoint ? "; continue with --resume " : "", a->checkpoint ? a->checkpoint : "");
    rc = 130;
  } else {
    printf("final test accuracy: %.4f (%.0f/%zu images) after %d epoch%s, %.0f images/s\n",
           result.test_accuracy, result.test_accuracy * (double)test.count, test.count,
           result.epochs_done, result.epochs_done == 1 ? "" : "s", result.images_per_second);
    rc = 0;
  }
done:
  i8t_model_destroy(model);
  i8t_context_destroy(ctx);
  i8t_dataset_free(&train);
  i8t_dataset_free(&test);
  return rc;
}

int i8t_cmd_train(int argc, char **argv) {
  train_args a = {
      .model = "resnet8", .data = "fashion-mnist", .wgrad = 1, .epochs = 5, .batch = 128,
      .lr = 0.1f, .warmup = 1.0f, .seed = 1,
  };
  i8t_cli_option o[MAX_OPTIONS];
  size_t n = make_options(&a, o);
  switch (i8t_cli_parse("train", o, n, argc, argv)) {
    case I8T_CLI_HELP:
      i8t_cli_print_help(stdout, usage_line, description, o, n);
      return 0;
    case I8T_CLI_ERROR:
      return 2;
    case I8T_CLI_OK:
      break;
  }
  return run_training(&a, o, n);
}
