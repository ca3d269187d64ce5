/* Checkpoint files on synthetic state tensors: bit-exact round trip of every
 * tensor and meta field; truncated, bit-flipped, foreign, wrong-version and
 * wrong-model files refused without touching the destination; an atomic
 * write that fails leaves the previous file intact and no temporary behind. */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "int8train/checkpoint.h"
#include "test_util.h"

static char tmpdir[512];

static int setup_dir(void **state) {
  (void)state;
  const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(tmpdir, sizeof tmpdir, "%s/i8t_test_ckpt_XXXXXX", base);
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state) {
  (void)state;
  test_remove_tree(tmpdir);
  return 0;
}

static const char *path_in(const char *name) {
  static char path[2][1024];
  static int next;
  next ^= 1;
  snprintf(path[next], sizeof path[next], "%s/%s", tmpdir, name);
  return path[next];
}

/* ------------------------------------------------------------------------ */
/* A synthetic "model": a few named tensors and a configuration             */
/* ------------------------------------------------------------------------ */

#define NT 4
static const char *const names[NT] = {"conv1.weight", "bn1.gamma", "bn1.running_range",
                                      "fc.weight.momentum"};
static const size_t sizes[NT] = {3 * 3 * 16, 16, 16, 640};

typedef struct synth {
  float *data[NT];
  i8t_state_tensor t[NT];
} synth;

/* Random floats plus the values a float round trip could lose: -0, NaN
 * payloads, infinities, denormals. */
static void synth_init(synth *s, uint64_t seed) {
  for (int i = 0; i < NT; i++) {
    s->data[i] = malloc(sizes[i] * sizeof(float));
    for (size_t k = 0; k < sizes[i]; k++) s->data[i][k] = test_rand_float(&seed, -3.0f, 3.0f);
    s->t[i] = (i8t_state_tensor){names[i], s->data[i], sizes[i]};
  }
  const uint32_t specials[] = {0x80000000u, 0x7fc12345u, 0x7f800000u, 0xff800000u, 0x00000001u};
  for (int k = 0; k < 5; k++) memcpy(&s->data[0][k], &specials[k], 4);
}

static void synth_fill(synth *s, float v) {
  for (int i = 0; i < NT; i++)
    for (size_t k = 0; k < sizes[i]; k++) s->data[i][k] = v;
}

static void synth_free(synth *s) {
  for (int i = 0; i < NT; i++) free(s->data[i]);
}

static int synth_all_equal(const synth *s, float v) {
  for (int i = 0; i < NT; i++)
    for (size_t k = 0; k < sizes[i]; k++)
      if (memcmp(&s->data[i][k], &v, 4) != 0) return 0;
  return 1;
}

static i8t_checkpoint_meta sample_meta(void) {
  i8t_checkpoint_meta m;
  memset(&m, 0, sizeof m);
  snprintf(m.arch, sizeof m.arch, "resnet");
  /* A literal: m.arch would dangle once the struct is returned by value. */
  m.model = (i8t_model_config){.arch = "resnet", .depth = 8, .width = 16, .in_channels = 1,
                               .in_height = 28, .in_width = 28, .num_classes = 10,
                               .precision = I8T_PRECISION_INT8, .norm = I8T_NORM_RANGE,
                               .wgrad_bits = 16, .act_stochastic = 0, .momentum = 0.9f,
                               .weight_decay = 5e-4f, .weight_per_channel = 1,
                               .range_bn_paper = 0};
  snprintf(m.data, sizeof m.data, "/some/dir with spaces/fashion");
  m.data_channels = 1;
  m.data_mean[0] = 0.286f;
  m.data_std[0] = 0.353f;
  m.seed = 0x123456789abcdefull;
  m.epochs_done = 3;
  m.epochs = 7;
  m.batch = 128;
  m.schedule = 1;
  m.limit_train = 2000;
  m.train_count = 2000;
  m.lr = 0.1f;
  m.warmup_epochs = 0.5f;
  m.steps = 46;
  m.threads = 2;
  m.train_loss = 0.4321;
  m.test_accuracy = 0.8765;
  return m;
}

static void assert_meta_equal(const i8t_checkpoint_meta *a, const i8t_checkpoint_meta *b) {
  assert_string_equal(a->model.arch, b->model.arch);
  assert_int_equal(a->model.depth, b->model.depth);
  assert_int_equal(a->model.width, b->model.width);
  assert_int_equal(a->model.in_channels, b->model.in_channels);
  assert_int_equal(a->model.in_height, b->model.in_height);
  assert_int_equal(a->model.in_width, b->model.in_width);
  assert_int_equal(a->model.num_classes, b->model.num_classes);
  assert_int_equal(a->model.precision, b->model.precision);
  assert_int_equal(a->model.norm, b->model.norm);
  assert_int_equal(a->model.wgrad_bits, b->model.wgrad_bits);
  assert_int_equal(a->model.act_stochastic, b->model.act_stochastic);
  assert_int_equal(a->model.weight_per_channel, b->model.weight_per_channel);
  assert_int_equal(a->model.range_bn_paper, b->model.range_bn_paper);
  assert_true(a->model.momentum == b->model.momentum);
  assert_true(a->model.weight_decay == b->model.weight_decay);
  assert_string_equal(a->data, b->data);
  assert_int_equal(a->data_channels, b->data_channels);
  assert_memory_equal(a->data_mean, b->data_mean, sizeof a->data_mean);
  assert_memory_equal(a->data_std, b->data_std, sizeof a->data_std);
  assert_true(a->seed == b->seed);
  assert_int_equal(a->epochs_done, b->epochs_done);
  assert_int_equal(a->epochs, b->epochs);
  assert_int_equal(a->batch, b->batch);
  assert_int_equal(a->schedule, b->schedule);
  assert_true(a->limit_train == b->limit_train && a->train_count == b->train_count);
  assert_true(a->lr == b->lr && a->warmup_epochs == b->warmup_epochs);
  assert_true(a->steps == b->steps);
  assert_int_equal(a->threads, b->threads);
  assert_true(a->train_loss == b->train_loss && a->test_accuracy == b->test_accuracy);
}

static void expect_failure(i8t_status got, i8t_status want, const char *needle1,
                           const char *needle2) {
  const char *msg = i8t_last_error();
  printf("[ MESSAGE  ] %s\n", msg);
  assert_int_equal(got, want);
  if (needle1) assert_non_null(strstr(msg, needle1));
  if (needle2) assert_non_null(strstr(msg, needle2));
}

static uint8_t *read_all(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  *size = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *buf = malloc(*size + 1);
  assert_int_equal(fread(buf, 1, *size, f), *size);
  fclose(f);
  return buf;
}

static void write_all(const char *path, const uint8_t *buf, size_t size) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(buf, 1, size, f), size);
  fclose(f);
}

/* Loads `path` into a sentinel-filled synth and checks the failure leaves it untouched. */
static void expect_refused(const char *path, const i8t_model_config *expect, i8t_status want,
                           const char *needle1, const char *needle2) {
  synth dst;
  synth_init(&dst, 9);
  synth_fill(&dst, 42.0f);
  i8t_checkpoint_meta m;
  expect_failure(i8t_checkpoint_load_tensors(path, expect, dst.t, NT, &m), want, needle1, needle2);
  assert_true(synth_all_equal(&dst, 42.0f));
  synth_free(&dst);
}

/* ------------------------------------------------------------------------ */

static void test_round_trip(void **state) {
  (void)state;
  synth src, dst;
  synth_init(&src, 1);
  synth_init(&dst, 2);
  i8t_checkpoint_meta meta = sample_meta(), back, header;
  const char *path = path_in("nested/dirs/run.ckpt"); /* parents are created */
  assert_int_equal(i8t_checkpoint_save_tensors(path, &meta, src.t, NT), I8T_OK);
  assert_int_equal(i8t_checkpoint_load_tensors(path, &meta.model, dst.t, NT, &back), I8T_OK);
  for (int i = 0; i < NT; i++) assert_memory_equal(src.data[i], dst.data[i], sizes[i] * 4);
  assert_meta_equal(&meta, &back);
  assert_ptr_equal(back.model.arch, back.arch);
  assert_int_equal(i8t_checkpoint_read_meta(path, &header), I8T_OK);
  assert_meta_equal(&meta, &header);
  /* The file is exactly: header, sections, CRC32 of everything before it. */
  size_t size;
  uint8_t *buf = read_all(path, &size);
  assert_memory_equal(buf, "I8TCKPT", 8);
  uLong crc = crc32(crc32(0L, Z_NULL, 0), buf, (uInt)(size - 4));
  assert_int_equal(buf[size - 4] | buf[size - 3] << 8 | buf[size - 2] << 16 | (uint32_t)buf[size - 1] << 24,
                   (uint32_t)crc);
  assert_int_equal(buf[16] | buf[17] << 8 | buf[18] << 16, size);
  free(buf);
  synth_free(&src);
  synth_free(&dst);
}

/* Saving again over an existing file replaces it (rename over). */
static void test_overwrite(void **state) {
  (void)state;
  synth a, b, dst;
  synth_init(&a, 1);
  synth_init(&b, 5);
  synth_init(&dst, 0);
  i8t_checkpoint_meta meta = sample_meta(), back;
  const char *path = path_in("run.ckpt");
  assert_int_equal(i8t_checkpoint_save_tensors(path, &meta, a.t, NT), I8T_OK);
  meta.epochs_done = 4;
  assert_int_equal(i8t_checkpoint_save_tensors(path, &meta, b.t, NT), I8T_OK);
  assert_int_equal(i8t_checkpoint_load_tensors(path, NULL, dst.t, NT, &back), I8T_OK);
  assert_int_equal(back.epochs_done, 4);
  for (int i = 0; i < NT; i++) assert_memory_equal(b.data[i], dst.data[i], sizes[i] * 4);
  synth_free(&a);
  synth_free(&b);
  synth_free(&dst);
}

static void test_truncated_refused(void **state) {
  (void)state;
  synth src;
  synth_init(&src, 1);
  i8t_checkpoint_meta meta = sample_meta();
  const char *path = path_in("run.ckpt");
  assert_int_equal(i8t_checkpoint_save_tensors(path, &meta, src.t, NT), I8T_OK);
  size_t size;
  uint8_t *buf = read_all(path, &size);
  const size_t cuts[] = {0, 5, 20, 27, 100, size / 2, size - 4, size - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    const char *cut = path_in("cut.ckpt");
    write_all(cut, buf, cuts[i]);
    expect_refused(cut, NULL, I8T_ERR_FORMAT, cut, cuts[i] ? "truncated" : "empty");
  }
  free(buf);
  synth_free(&src);
}

/* Every byte of the file, one bit flipped at a time (a sample of positions
 * covering header, meta, names, data and CRC): always refused. */
static void test_bit_flips_refused(void **state) {
  (void)state;
  synth src;
  synth_init(&src, 1);
  i8t_checkpoint_meta meta = sample_meta();
  const char *path = path_in("run.ckpt");
  assert_int_equal(i8t_checkpoint_save_tensors(path, &meta, src.t, NT), I8T_OK);
  size_t size;
  uint8_t *buf = read_all(path, &size);
  const char *bad = path_in("flipped.ckpt");
  int checksum_failures = 0;
  for (size_t pos = 0; pos < size; pos += (pos < 64 ? 1 : 37)) {
    buf[pos] ^= (uint8_t)(1u << (pos % 8));
    write_all(bad, buf, size);
    synth dst;
    synth_init(&dst, 2);
    synth_fill(&dst, 42.0f);
    i8t_status st = i8t_checkpoint_load_tensors(bad, NULL, dst.t, NT, NULL);
    assert_int_equal(st, I8T_ERR_FORMAT);
    assert_non_null(strstr(i8t_last_error(), bad));
    assert_true(synth_all_equal(&dst, 42.0f));
    checksum_failures += strstr(i8t_last_error(), "checksum") != NULL;
    synth_free(&dst);
    buf[pos] ^= (uint8_t)(1u << (pos % 8));
  }
  printf("[   INFO   ] %d flips caught by the CRC, the others by magic/version/size\n",
         checksum_failures);
  assert_true(checksum_failures > 0);
  free(buf);
  synth_free(&src);
}

static void test_foreign_and_future_files_refused(void **state) {
  (void)state;
  const char *text = path_in("notes.txt");
  write_all(text, (const uint8_t *)"hello, world\n", 13);
  expect_refused(text, NULL, I8T_ERR_FORMAT, text, "not an int8train checkpoint");
  expect_refused(path_in("absent.ckpt"), NULL, I8T_ERR_IO, path_in("absent.ckpt"), NULL);

  synth src;
  synth_init(&src, 1);
  i8t_checkpoint_meta meta = sample_meta();
  const char *path = path_in("run.ckpt");
  assert_int_equal(i8t_checkpoint_save_tensors(path, &meta, src.t, NT), I8T_OK);
  size_t size;
  uint8_t *buf = read_all(path, &size);
  buf[8] = 2; /* version 2, with a valid CRC: refused for its version */
  uLong crc = crc32(crc32(0L, Z_NULL, 0), buf, (uInt)(size - 4));
  for (int i = 0; i < 4; i++) buf[size - 4 + i] = (uint8_t)(crc >> (8 * i));
  write_all(path, buf, size);
  expect_refused(path, NULL, I8T_ERR_FORMAT, path, "version 2");
  buf[8] = 1; /* trailing bytes */
  write_all(path, buf, size + 1);
  expect_refused(path, NULL, I8T_ERR_FORMAT, path, "unexpected bytes");
  free(buf);
  synth_free(&src);
}

static void test_wrong_model_refused(void **state) {
  (void)state;
  synth src;
  synth_init(&src, 1);
  i8t_checkpoint_meta meta = sample_meta();
  const char *path = path_in("run.ckpt");
  assert_int_equal(i8t_checkpoint_save_tensors(path, &meta, src.t, NT), I8T_OK);

  i8t_model_config other = meta.model;
  other.depth = 14;
  expect_refused(path, &other, I8T_ERR_FORMAT, "another model", "depth 8 vs 14");
  other = meta.model;
  other.precision = I8T_PRECISION_FP32;
  other.norm = I8T_NORM_RANGE;
  expect_refused(path, &other, I8T_ERR_FORMAT, "another model", "precision int8 vs fp32");
  other = meta.model;
  other.weight_per_channel = 0;
  expect_refused(path, &other, I8T_ERR_FORMAT, "per-channel weight scales 1 vs 0", NULL);
  other = meta.model;
  other.arch = "cnn";
  expect_refused(path, &other, I8T_ERR_FORMAT, "arch resnet vs cnn", NULL);
  /* norm DEFAULT resolves to range for int8: the same model. */
  other = meta.model;
  other.norm = I8T_NORM_DEFAULT;
  synth dst;
  synth_init(&dst, 3);
  assert_int_equal(i8t_checkpoint_load_tensors(path, &other, dst.t, NT, NULL), I8T_OK);
  synth_free(&dst);

  /* Same configuration, other tensors: count, names, sizes. */
  synth_init(&dst, 3);
  synth_fill(&dst, 42.0f);
  expect_failure(i8t_checkpoint_load_tensors(path, NULL, dst.t, NT - 1, NULL), I8T_ERR_FORMAT,
                 "holds 4 state tensors, the model has 3", NULL);
  dst.t[2].name = "bn1.running_var";
  expect_failure(i8t_checkpoint_load_tensors(path, NULL, dst.t, NT, NULL), I8T_ERR_FORMAT,
                 "'bn1.running_range' in the checkpoint but 'bn1.running_var'", NULL);
  dst.t[2].name = names[2];
  dst.t[3].size = 639;
  expect_failure(i8t_checkpoint_load_tensors(path, NULL, dst.t, NT, NULL), I8T_ERR_FORMAT,
                 "'fc.weight.momentum' holds 640 floats in the checkpoint, 639", NULL);
  dst.t[3].size = 640;
  assert_true(synth_all_equal(&dst, 42.0f));
  synth_free(&dst);
  synth_free(&src);
}

/* RLIMIT_FSIZE makes the write of the new, larger file fail half-way (as a
 * full disk would): the old checkpoint must still load and no temporary
 * file may be left behind. Works as root too, unlike a read-only directory. */
static void test_failed_write_keeps_old_file(void **state) {
  (void)state;
  synth a, big, dst;
  synth_init(&a, 1);
  synth_init(&big, 2);
  synth_init(&dst, 3);
  i8t_checkpoint_meta meta = sample_meta();
  const char *path = path_in("run.ckpt");
  assert_int_equal(i8t_checkpoint_save_tensors(path, &meta, a.t, NT), I8T_OK);
  size_t old_size;
  free(read_all(path, &old_size));

  float *huge = calloc(100000, sizeof *huge);
  big.t[3].data = huge;
  big.t[3].size = 100000;
  struct rlimit saved, small;
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
  small = saved;
  small.rlim_cur = old_size + 1000;
  void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
  meta.epochs_done = 99;
  i8t_status st = i8t_checkpoint_save_tensors(path, &meta, big.t, NT);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
  signal(SIGXFSZ, old_handler);
  expect_failure(st, I8T_ERR_IO, path, "unchanged");

  i8t_checkpoint_meta back;
  assert_int_equal(i8t_checkpoint_load_tensors(path, NULL, dst.t, NT, &back), I8T_OK);
  assert_int_equal(back.epochs_done, 3);
  for (int i = 0; i < NT; i++) assert_memory_equal(a.data[i], dst.data[i], sizes[i] * 4);
  DIR *d = opendir(tmpdir);
  struct dirent *e;
  int files = 0;
  while ((e = readdir(d)) != NULL) files += e->d_name[0] != '.';
  closedir(d);
  assert_int_equal(files, 1); /* run.ckpt only */
  free(huge);
  big.t[3].data = big.data[3];
  synth_free(&a);
  synth_free(&big);
  synth_free(&dst);
}

static void test_bad_arguments(void **state) {
  (void)state;
  i8t_checkpoint_meta meta = sample_meta();
  i8t_state_tensor t = {"", NULL, 0};
  expect_failure(i8t_checkpoint_save_tensors(path_in("x"), &meta, &t, 1), I8T_ERR_INVALID_ARG,
                 NULL, NULL);
  expect_failure(i8t_checkpoint_save_tensors(NULL, &meta, &t, 1), I8T_ERR_INVALID_ARG, NULL, NULL);
  char desc[512];
  i8t_checkpoint_describe_model(&meta.model, desc, sizeof desc);
  printf("[   INFO   ] %s\n", desc);
  assert_non_null(strstr(desc, "resnet depth 8 width 16"));
}

#define DIR_TEST(f) cmocka_unit_test_setup_teardown(f, setup_dir, teardown_dir)

int main(void) {
  const struct CMUnitTest tests[] = {
      DIR_TEST(test_round_trip),
      DIR_TEST(test_overwrite),
      DIR_TEST(test_truncated_refused),
      DIR_TEST(test_bit_flips_refused),
      DIR_TEST(test_foreign_and_future_files_refused),
      DIR_TEST(test_wrong_model_refused),
      DIR_TEST(test_failed_write_keeps_old_file),
      DIR_TEST(test_bad_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
