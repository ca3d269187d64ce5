/* The training loop: learning-rate schedules and shuffles against their
 * definitions; a run stopped after an epoch and resumed from its checkpoint
 * ends bit-identical to an uninterrupted run; resuming with other options or
 * another model is refused; JSON logs; model checkpoints round trip. The
 * "accuracy" group (a separate ctest entry) trains resnet8 in int8 on a
 * Fashion-MNIST subset and must beat a stated test accuracy. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "int8train/trainer.h"
#include "test_util.h"

static char tmpdir[512];

static int setup_dir(void **state) {
  (void)state;
  const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(tmpdir, sizeof tmpdir, "%s/i8t_test_trainer_XXXXXX", base);
  return mkdtemp(tmpdir) ? 0 : -1;
}

static const char *const scratch_files[] = {"a.ckpt", "b.ckpt", "a.jsonl", "b.jsonl", "m.ckpt"};

static int teardown_dir(void **state) {
  (void)state;
  char path[1024];
  for (size_t i = 0; i < sizeof scratch_files / sizeof scratch_files[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", tmpdir, scratch_files[i]);
    unlink(path);
  }
  rmdir(tmpdir);
  return 0;
}

static const char *path_in(const char *name) {
  static char path[4][1024];
  static int next;
  next = (next + 1) % 4;
  snprintf(path[next], sizeof path[next], "%s/%s", tmpdir, name);
  return path[next];
}

/* ------------------------------------------------------------------------ */
/* Schedule and shuffle                                                     */
/* ------------------------------------------------------------------------ */

static void test_lr_schedules(void **state) {
  (void)state;
  i8t_train_options o;
  i8t_train_options_default(&o);
  o.epochs = 8;
  o.lr = 0.4f;
  o.warmup_epochs = 1.0f;
  const size_t spe = 10; /* steps per epoch: 10 warm-up steps, 70 after */
  for (uint64_t s = 0; s < 10; s++)
    assert_float_equal(i8t_lr_at(&o, s, spe), 0.4 * (double)(s + 1) / 10.0, 1e-7);
  for (uint64_t s = 10; s < 80; s++)
    assert_float_equal(i8t_lr_at(&o, s, spe), 0.2 * (1 + cos(M_PI * (double)(s - 10) / 70.0)),
                       1e-7);
  assert_true(i8t_lr_at(&o, 79, spe) > 0.0f);
  o.schedule = I8T_SCHEDULE_STEP;
  o.warmup_epochs = 0.0f;
  assert_float_equal(i8t_lr_at(&o, 39, spe), 0.4, 1e-7);  /* epoch 3 */
  assert_float_equal(i8t_lr_at(&o, 40, spe), 0.04, 1e-7); /* epoch 4 = 8/2 */
  assert_float_equal(i8t_lr_at(&o, 60, spe), 0.004, 1e-8); /* epoch 6 = 3*8/4 */
  o.schedule = I8T_SCHEDULE_CONSTANT;
  o.warmup_epochs = 0.5f;
  assert_float_equal(i8t_lr_at(&o, 0, spe), 0.08, 1e-7);
  assert_float_equal(i8t_lr_at(&o, 5, spe), 0.4, 1e-7);
  assert_float_equal(i8t_lr_at(&o, 79, spe), 0.4, 1e-7);
  i8t_lr_schedule s;
  assert_int_equal(i8t_lr_schedule_from_name("step", &s), I8T_OK);
  assert_int_equal(s, I8T_SCHEDULE_STEP);
  assert_int_equal(i8t_lr_schedule_from_name("linear", &s), I8T_ERR_INVALID_ARG);
  assert_string_equal(i8t_lr_schedule_name(I8T_SCHEDULE_COSINE), "cosine");
}

static void test_shuffle_is_a_pure_permutation(void **state) {
  (void)state;
  enum { N = 1000 };
  uint32_t a[N], b[N], c[N], d[N];
  i8t_shuffle_order(7, 3, a, N);
  i8t_shuffle_order(7, 3, b, N);
  i8t_shuffle_order(7, 4, c, N);
  i8t_shuffle_order(8, 3, d, N);
  assert_memory_equal(a, b, sizeof a);
  assert_memory_not_equal(a, c, sizeof a);
  assert_memory_not_equal(a, d, sizeof a);
  uint8_t seen[N] = {0};
  size_t fixed = 0;
  for (int i = 0; i < N; i++) {
    assert_true(a[i] < N && !seen[a[i]]);
    seen[a[i]] = 1;
    fixed += a[i] == (uint32_t)i;
  }
  assert_true(fixed < 10); /* about 1 expected for a random permutation */
}

/* ------------------------------------------------------------------------ */
/* A small synthetic data set the model can learn: class k brightens row
 * band k of a noisy image. 16x16 images keep the test quick (also under
 * ASan); the model is built for that shape.                                */
/* ------------------------------------------------------------------------ */

#define SIDE 16
#define PIXELS (SIDE * SIDE)

static i8t_dataset synthetic_set(size_t count, uint64_t seed) {
  i8t_dataset d;
  memset(&d, 0, sizeof d);
  d.count = count;
  d.channels = 1;
  d.height = d.width = SIDE;
  d.num_classes = 10;
  d.pixels = malloc(count * PIXELS);
  d.labels = malloc(count);
  for (size_t i = 0; i < count; i++) {
    int k = (int)(test_rand(&seed) % 10);
    d.labels[i] = (uint8_t)k;
    for (int p = 0; p < PIXELS; p++) {
      int row = p / SIDE, v = (int)(test_rand(&seed) % 192);
      if (row >= 2 * k - 2 && row < 2 * k) v += 40; /* class 0: no band */
      d.pixels[i * PIXELS + (size_t)p] = (uint8_t)v;
    }
  }
  d.mean[0] = 0.25f;
  d.std[0] = 0.2f;
  snprintf(d.format, sizeof d.format, "synthetic");
  return d;
}

static i8t_model *make_model_for(i8t_context *ctx, const char *name, uint64_t seed, int side) {
  i8t_model_config cfg;
  assert_int_equal(i8t_model_config_preset(name, 1, side, side, 10, &cfg), I8T_OK);
  i8t_model *m = NULL;
  i8t_status st = i8t_model_create(ctx, &cfg, seed, &m);
  if (st != I8T_OK) printf("[ MESSAGE  ] %s\n", i8t_last_error());
  assert_int_equal(st, I8T_OK);
  return m;
}

static i8t_model *make_model(i8t_context *ctx, const char *name, uint64_t seed) {
  return make_model_for(ctx, name, seed, SIDE);
}

static void assert_same_state(i8t_model *a, i8t_model *b) {
  assert_int_equal(i8t_model_state_count(a), i8t_model_state_count(b));
  assert_true(i8t_model_step_count(a) == i8t_model_step_count(b));
  for (size_t i = 0; i < i8t_model_state_count(a); i++) {
    i8t_state_tensor x, y;
    assert_int_equal(i8t_model_state(a, i, &x), I8T_OK);
    assert_int_equal(i8t_model_state(b, i, &y), I8T_OK);
    assert_string_equal(x.name, y.name);
    assert_int_equal(x.size, y.size);
    if (memcmp(x.data, y.data, x.size * sizeof(float)) != 0) {
      printf("[ MESSAGE  ] state tensor '%s' differs\n", x.name);
      fail();
    }
  }
}

static int stop_after_first_epoch(const i8t_progress *p, void *user) {
  (void)user;
  return p->event == I8T_PROGRESS_EPOCH && p->epoch == 1;
}

static void resume_options(i8t_train_options *o) {
  i8t_train_options_default(o);
  o->epochs = 3;
  o->batch = 32;
  o->lr = 0.05f;
  o->warmup_epochs = 0.5f;
  o->seed = 11;
  o->eval_batch = 50;
  o->threads = 2;
}

static i8t_context *two_threads(void) {
  i8t_context_options co;
  i8t_context_options_default(&co);
  co.threads = 2;
  co.pin = I8T_PIN_NONE;
  co.pin_from_env = 0;
  i8t_context *ctx = NULL;
  assert_int_equal(i8t_context_create(&co, &ctx), I8T_OK);
  return ctx;
}

/* 128 images, batch 32: 4 steps per epoch, 3 epochs. Run A goes straight
 * through; run B stops after epoch 1; run C starts from another
 * initialisation, resumes B's checkpoint and finishes. A and C must agree
 * bit for bit, and so must their test results. */
static void test_exact_resume(void **state) {
  (void)state;
  i8t_dataset train = synthetic_set(128, 1), test = synthetic_set(100, 2);
  i8t_context *ctx = two_threads();
  i8t_train_options o;
  i8t_train_result ra, rb, rc;

  resume_options(&o);
  o.checkpoint_path = path_in("a.ckpt");
  o.log_json_path = path_in("a.jsonl");
  i8t_model *a = make_model(ctx, "resnet8", 5);
  assert_int_equal(i8t_train(a, &train, &test, &o, &ra), I8T_OK);
  assert_int_equal(ra.epochs_done, 3);
  assert_false(ra.stopped);
  assert_true(ra.steps == 12);

  resume_options(&o);
  o.checkpoint_path = path_in("b.ckpt");
  o.log_json_path = path_in("b.jsonl");
  o.progress = stop_after_first_epoch;
  i8t_model *b = make_model(ctx, "resnet8", 5);
  assert_int_equal(i8t_train(b, &train, &test, &o, &rb), I8T_OK);
  assert_true(rb.stopped);
  assert_int_equal(rb.epochs_done, 1);
  assert_true(rb.steps == 4);

  resume_options(&o);
  o.resume_path = path_in("b.ckpt");
  o.checkpoint_path = path_in("b.ckpt");
  o.log_json_path = path_in("b.jsonl");
  i8t_model *c = make_model(ctx, "resnet8", 999);
  assert_int_equal(i8t_train(c, &train, &test, &o, &rc), I8T_OK);
  assert_int_equal(rc.epochs_done, 3);
  assert_same_state(a, c);
  assert_true(ra.test_accuracy == rc.test_accuracy);
  assert_true(ra.test_loss == rc.test_loss);
  printf("[   INFO   ] after 3 epochs: test accuracy %.4f, loss %.4f (both runs)\n",
         ra.test_accuracy, ra.test_loss);

  /* The two checkpoints hold the same state and position. */
  i8t_checkpoint_meta ma, mc;
  assert_int_equal(i8t_checkpoint_read_meta(path_in("a.ckpt"), &ma), I8T_OK);
  assert_int_equal(i8t_checkpoint_read_meta(path_in("b.ckpt"), &mc), I8T_OK);
  assert_int_equal(ma.epochs_done, 3);
  assert_int_equal(mc.epochs_done, 3);
  assert_true(ma.steps == 12 && mc.steps == 12);
  assert_true(ma.test_accuracy == mc.test_accuracy);

  i8t_model_destroy(a);
  i8t_model_destroy(b);
  i8t_model_destroy(c);
  i8t_context_destroy(ctx);
  i8t_dataset_free(&train);
  i8t_dataset_free(&test);
}

/* Reads the JSON log and checks each line's epoch and fields. */
static void check_log(const char *path, int lines_expected) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char line[4096];
  int lines = 0;
  while (fgets(line, sizeof line, f)) {
    lines++;
    int epoch = 0;
    double acc = -1, ips = -1, loss = -1;
    assert_int_equal(sscanf(line, "{\"epoch\":%d", &epoch), 1);
    assert_int_equal(epoch, lines);
    const char *p = strstr(line, "\"test_accuracy\":");
    assert_non_null(p);
    assert_int_equal(sscanf(p, "\"test_accuracy\":%lf", &acc), 1);
    assert_true(acc >= 0.0 && acc <= 1.0);
    assert_non_null(p = strstr(line, "\"train_loss\":"));
    assert_int_equal(sscanf(p, "\"train_loss\":%lf", &loss), 1);
    assert_true(loss > 0.0);
    assert_non_null(p = strstr(line, "\"images_per_second\":"));
    assert_int_equal(sscanf(p, "\"images_per_second\":%lf", &ips), 1);
    assert_true(ips > 0.0);
    assert_non_null(strstr(line, "\"precision\":\"int8\""));
    assert_true(line[strlen(line) - 2] == '}');
  }
  fclose(f);
  assert_int_equal(lines, lines_expected);
}

static void test_json_log_and_resume_refusals(void **state) {
  (void)state;
  i8t_dataset train = synthetic_set(64, 3), test = synthetic_set(32, 4);
  i8t_train_options o;
  resume_options(&o);
  o.epochs = 2;
  o.checkpoint_path = path_in("a.ckpt");
  o.log_json_path = path_in("a.jsonl");
  i8t_model *m = make_model(NULL, "resnet8", 1);
  assert_int_equal(i8t_train(m, &train, &test, &o, NULL), I8T_OK);
  check_log(path_in("a.jsonl"), 2);

  /* Resuming with other options, more epochs done than asked, another model. */
  resume_options(&o);
  o.epochs = 2;
  o.resume_path = path_in("a.ckpt");
  o.batch = 16;
  assert_int_equal(i8t_train(m, &train, &test, &o, NULL), I8T_ERR_INVALID_ARG);
  printf("[ MESSAGE  ] %s\n", i8t_last_error());
  assert_non_null(strstr(i8t_last_error(), "batch is 32 in the checkpoint but 16"));
  o.batch = 32;
  o.seed = 12;
  assert_int_equal(i8t_train(m, &train, &test, &o, NULL), I8T_ERR_INVALID_ARG);
  assert_non_null(strstr(i8t_last_error(), "seed"));
  o.seed = 11;
  o.epochs = 1;
  assert_int_equal(i8t_train(m, &train, &test, &o, NULL), I8T_ERR_INVALID_ARG);
  assert_non_null(strstr(i8t_last_error(), "completed 2 epochs"));
  o.epochs = 2;
  i8t_dataset fewer = train;
  fewer.count = 50;
  assert_int_equal(i8t_train(m, &fewer, &test, &o, NULL), I8T_ERR_INVALID_ARG);
  assert_non_null(strstr(i8t_last_error(), "training images is 64"));
  i8t_model *other = make_model(NULL, "resnet14", 1);
  assert_int_equal(i8t_train(other, &train, &test, &o, NULL), I8T_ERR_FORMAT);
  printf("[ MESSAGE  ] %s\n", i8t_last_error());
  assert_non_null(strstr(i8t_last_error(), "another model"));
  /* A finished run resumed with the same epochs does nothing and succeeds. */
  i8t_train_result r;
  assert_int_equal(i8t_train(m, &train, &test, &o, &r), I8T_OK);
  assert_int_equal(r.epochs_done, 2);
  assert_true(r.steps == 4);
  check_log(path_in("a.jsonl"), 2);

  i8t_model_destroy(m);
  i8t_model_destroy(other);
  i8t_dataset_free(&train);
  i8t_dataset_free(&test);
}

static void test_bad_options_refused(void **state) {
  (void)state;
  i8t_dataset train = synthetic_set(64, 3), test = synthetic_set(16, 4);
  i8t_model *m = make_model(NULL, "resnet8", 1);
  i8t_train_options o;
  i8t_train_options_default(&o);
  o.epochs = 0;
  assert_int_equal(i8t_train(m, &train, &test, &o, NULL), I8T_ERR_INVALID_ARG);
  i8t_train_options_default(&o);
  o.lr = NAN;
  assert_int_equal(i8t_train(m, &train, &test, &o, NULL), I8T_ERR_INVALID_ARG);
  i8t_train_options_default(&o);
  o.batch = 0;
  assert_int_equal(i8t_train(m, &train, &test, &o, NULL), I8T_ERR_INVALID_ARG);
  i8t_train_options_default(&o);
  i8t_dataset wide = train;
  wide.width = SIDE - 1;
  assert_int_equal(i8t_train(m, &wide, &test, &o, NULL), I8T_ERR_SHAPE);
  printf("[ MESSAGE  ] %s\n", i8t_last_error());
  o.resume_path = path_in("absent.ckpt");
  assert_int_equal(i8t_train(m, &train, &test, &o, NULL), I8T_ERR_IO);
  assert_int_equal(i8t_model_step_count(m), 0);
  i8t_model_destroy(m);
  i8t_dataset_free(&train);
  i8t_dataset_free(&test);
}

/* A model's checkpoint restores every state tensor and the step counter
 * into a model created from another seed. */
static void test_model_checkpoint_round_trip(void **state) {
  (void)state;
  i8t_dataset train = synthetic_set(64, 5);
  i8t_model *a = make_model(NULL, "resnet8", 1), *b = make_model(NULL, "resnet8", 2);
  float *images = malloc(32 * PIXELS * sizeof *images);
  uint8_t labels[32];
  i8t_batch_result r;
  for (int s = 0; s < 2; s++) {
    assert_int_equal(i8t_dataset_gather(&train, NULL, 32 * (size_t)s, 32, images, labels), I8T_OK);
    assert_int_equal(i8t_model_train_step(a, images, labels, 32, 0.05f, &r), I8T_OK);
  }
  i8t_checkpoint_meta meta;
  memset(&meta, 0, sizeof meta);
  assert_int_equal(i8t_checkpoint_save(path_in("m.ckpt"), a, &meta), I8T_OK);
  i8t_checkpoint_meta back;
  assert_int_equal(i8t_checkpoint_load(path_in("m.ckpt"), b, &back), I8T_OK);
  assert_true(back.steps == 2);
  assert_same_state(a, b);
  /* Both now predict identically. */
  i8t_batch_result ea, eb;
  assert_int_equal(i8t_model_evaluate(a, images, labels, 32, &ea), I8T_OK);
  assert_int_equal(i8t_model_evaluate(b, images, labels, 32, &eb), I8T_OK);
  assert_true(ea.loss == eb.loss && ea.correct == eb.correct);
  i8t_model *c = make_model(NULL, "resnet14", 1);
  assert_int_equal(i8t_checkpoint_load(path_in("m.ckpt"), c, NULL), I8T_ERR_FORMAT);
  assert_non_null(strstr(i8t_last_error(), "depth 8 vs 14"));
  assert_int_equal(i8t_model_step_count(c), 0);
  free(images);
  i8t_model_destroy(a);
  i8t_model_destroy(b);
  i8t_model_destroy(c);
  i8t_dataset_free(&train);
}

/* ------------------------------------------------------------------------ */
/* Accuracy on real data                                                    */
/* ------------------------------------------------------------------------ */

/* resnet8 trained in int8 on the first Fashion-MNIST images must beat a
 * stated test accuracy (chance is 0.10). Full scale: 2000 images x 3 epochs of
 * batch 32 (a short warm-up: 188 steps), tested on 1000 images, about 40 s
 * natively on two cores. Small scale (I8T_TEST_SCALE=small, the qemu runs of
 * the ARM CI): resnet8 at half width (8-16-32), 768 images x 3 epochs,
 * tested on 200, so that the int8 kernels
 * of every ARM path are shown to learn within the CI's time. */
typedef struct accuracy_run {
  size_t train, test;
  int epochs, batch;
  int width; /* channels of resnet8's first stage */
  double threshold;
} accuracy_run;

static const accuracy_run full_run = {2000, 1000, 3, 32, 16, 0.60};
static const accuracy_run small_run = {768, 200, 3, 32, 8, 0.40};

static int scale_is_small(void) {
  const char *scale = getenv("I8T_TEST_SCALE");
  return scale && strcmp(scale, "small") == 0;
}

/* Too slow under a sanitizer (the same code paths are exercised by the other
 * tests); I8T_TEST_ACCURACY=1 runs it anyway. */
static int accuracy_run_too_slow_here(void) {
  if (getenv("I8T_TEST_ACCURACY") && strcmp(getenv("I8T_TEST_ACCURACY"), "1") == 0) return 0;
#if defined(__SANITIZE_ADDRESS__)
  return 1;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return 1;
#endif
#endif
  return 0;
}

static void test_short_run_beats_threshold(void **state) {
  (void)state;
  if (accuracy_run_too_slow_here()) {
    printf("[   INFO   ] sanitizer build: skipped (I8T_TEST_ACCURACY=1 runs it anyway)\n");
    skip();
  }
  struct stat st;
  if (stat(I8T_FASHION_MNIST_DIR "/train-images-idx3-ubyte.gz", &st) != 0) {
    printf("[   INFO   ] %s absent (Debian package dataset-fashion-mnist): skipped\n",
           I8T_FASHION_MNIST_DIR);
    skip();
  }
  const accuracy_run *run = scale_is_small() ? &small_run : &full_run;
  i8t_data_options d;
  i8t_data_options_default(&d);
  d.limit_train = run->train;
  d.limit_test = run->test;
  i8t_dataset train, test;
  assert_int_equal(i8t_data_load("fashion-mnist", &d, &train, &test), I8T_OK);
  i8t_context *ctx = NULL;
  assert_int_equal(i8t_context_create(NULL, &ctx), I8T_OK);
  i8t_model_config cfg;
  assert_int_equal(i8t_model_config_preset("resnet8", 1, 28, 28, 10, &cfg), I8T_OK);
  cfg.width = run->width;
  i8t_model *m = NULL;
  assert_int_equal(i8t_model_create(ctx, &cfg, 1, &m), I8T_OK);
  i8t_train_options o;
  i8t_train_options_default(&o);
  o.epochs = run->epochs;
  o.batch = run->batch;
  o.warmup_epochs = 0.2f;
  i8t_train_result r;
  i8t_status status = i8t_train(m, &train, &test, &o, &r);
  if (status != I8T_OK) printf("[ MESSAGE  ] %s\n", i8t_last_error());
  assert_int_equal(status, I8T_OK);
  printf("[   INFO   ] resnet8 width %d int8 (%s kernels), %zu images x %d epochs: test accuracy "
         "%.4f on %zu images (threshold %.2f), %.0f images/s, %d threads\n", run->width,
         i8t_isa_name(i8t_isa_selected()), run->train, run->epochs, r.test_accuracy, run->test,
         run->threshold, r.images_per_second, i8t_context_threads(ctx));
  assert_true(r.test_accuracy > run->threshold);
  i8t_model_destroy(m);
  i8t_context_destroy(ctx);
  i8t_dataset_free(&train);
  i8t_dataset_free(&test);
}

#define DIR_TEST(f) cmocka_unit_test_setup_teardown(f, setup_dir, teardown_dir)

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lr_schedules),
      cmocka_unit_test(test_shuffle_is_a_pure_permutation),
      DIR_TEST(test_exact_resume),
      DIR_TEST(test_json_log_and_resume_refusals),
      DIR_TEST(test_bad_options_refused),
      DIR_TEST(test_model_checkpoint_round_trip),
  };
  const struct CMUnitTest accuracy[] = {
      cmocka_unit_test(test_short_run_beats_threshold),
  };
  if (argc > 1 && strcmp(argv[1], "accuracy") == 0)
    return cmocka_run_group_tests_name("accuracy", accuracy, NULL, NULL);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
