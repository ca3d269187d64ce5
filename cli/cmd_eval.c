/* `int8train eval`: rebuilds the model a checkpoint describes, restores its
 * state, and prints its loss and accuracy on the test split of the data it
 * was trained on (or of --data), normalised as during training. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "int8train/int8train.h"
#include "int8train/trainer.h"
#include "options.h"

static const char *const pin_choices[] = {"compact", "scatter", "none", NULL};

typedef struct eval_args {
  const char *checkpoint, *data;
  size_t batch, limit_test;
  int threads, pin;
} eval_args;

static const char usage_line[] = "int8train eval --checkpoint FILE [options]";
static const char description[] =
    "Evaluates a checkpoint on the test split of its data set (the --data it was trained\n"
    "with, unless --data is given) and prints the test accuracy and loss.";

static int fail(const char *what) {
  fprintf(stderr, "int8train eval: %s: %s\n", what, i8t_last_error());
  return 1;
}

static int evaluate(const eval_args *a, const i8t_cli_option *pin_opt) {
  i8t_checkpoint_meta meta;
  if (i8t_checkpoint_read_meta(a->checkpoint, &meta) != I8T_OK) return fail("--checkpoint");
  const char *spec = a->data ? a->data : meta.data[0] ? meta.data : "fashion-mnist";
  i8t_data_options dopts;
  i8t_data_options_default(&dopts);
  dopts.have_norm = 1;
  memcpy(dopts.mean, meta.data_mean, sizeof dopts.mean);
  memcpy(dopts.std, meta.data_std, sizeof dopts.std);
  dopts.limit_test = a->limit_test;
  i8t_dataset test;
  if (i8t_data_load(spec, &dopts, NULL, &test) != I8T_OK) return fail("--data");

  int rc = 1;
  i8t_context *ctx = NULL;
  i8t_model *model = NULL;
  i8t_context_options copts;
  i8t_context_options_default(&copts);
  copts.threads = a->threads;
  if (pin_opt->given) {
    copts.pin = (i8t_pin_policy)a->pin;
    copts.pin_from_env = 0;
  }
  double loss = 0, accuracy = 0;
  char desc[512];
  i8t_model_config cfg = meta.model;
  cfg.arch = meta.arch;
  if (test.channels != cfg.in_channels || test.height != cfg.in_height ||
      test.width != cfg.in_width || test.num_classes > cfg.num_classes) {
    fprintf(stderr, "int8train eval: --data: %s has %dx%dx%d images and %d classes, the model "
            "takes %dx%dx%d and %d\n", spec, test.channels, test.height, test.width,
            test.num_classes, cfg.in_channels, cfg.in_height, cfg.in_width, cfg.num_classes);
  } else if (i8t_context_create(&copts, &ctx) != I8T_OK) {
    rc = fail("threads");
  } else if (i8t_model_create(ctx, &cfg, meta.seed, &model) != I8T_OK) {
    rc = fail("model");
  } else if (i8t_checkpoint_load(a->checkpoint, model, &meta) != I8T_OK) {
    rc = fail("--checkpoint");
  } else if (i8t_evaluate_dataset(model, &test, a->batch, &loss, &accuracy) != I8T_OK) {
    rc = fail("evaluation");
  } else {
    printf("checkpoint: %s (%u of %u epochs, %llu steps)\n", a->checkpoint, meta.epochs_done,
           meta.epochs, (unsigned long long)meta.steps);
    printf("model: %s\n", i8t_checkpoint_describe_model(&cfg, desc, sizeof desc));
    printf("data: %s: %zu test images\n", spec, test.count);
    printf("test loss: %.4f\n", loss);
    printf("test accuracy: %.4f (%.0f/%zu images)\n", accuracy, accuracy * (double)test.count,
           test.count);
    rc = 0;
  }
  i8t_model_destroy(model);
  i8t_context_destroy(ctx);
  i8t_dataset_free(&test);
  return rc;
}

int i8t_cmd_eval(int argc, char **argv) {
  eval_args a = {.batch = 256};
  i8t_cli_option o[] = {
      {"--checkpoint", I8T_CLI_STRING, &a.checkpoint, 0, 0, NULL, "FILE",
       "checkpoint to evaluate (required)", 0},
      {"--data", I8T_CLI_STRING, &a.data, 0, 0, NULL, "fashion-mnist|DIR",
       "data set (default: the one the checkpoint was trained on)", 0},
      {"--batch", I8T_CLI_SIZE, &a.batch, 1, 65536, NULL, "N", "images per call (default 256)", 0},
      {"--limit-test", I8T_CLI_SIZE, &a.limit_test, 0, 4294967295.0, NULL, "N",
       "the first N test images only (default 0: all)", 0},
      {"--threads", I8T_CLI_INT, &a.threads, 0, I8T_MAX_THREADS, NULL, "N",
       "worker threads (default 0: one per core)", 0},
      {"--pin", I8T_CLI_CHOICE, &a.pin, 0, 0, pin_choices, "compact|scatter|none",
       "thread pinning (default compact, or INT8TRAIN_PIN)", 0},
  };
  const size_t n = sizeof o / sizeof o[0];
  switch (i8t_cli_parse("eval", o, n, argc, argv)) {
    case I8T_CLI_HELP:
      i8t_cli_print_help(stdout, usage_line, description, o, n);
      return 0;
    case I8T_CLI_ERROR:
      return 2;
    case I8T_CLI_OK:
      break;
  }
  if (!a.checkpoint) return i8t_cli_usage_error("eval", "--checkpoint FILE is required");
  return evaluate(&a, &o[5]);
}
