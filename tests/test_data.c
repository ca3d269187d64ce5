/* Data loaders: IDX (raw and gzipped) and CIFAR-10 files built in a temporary
 * directory load with the right pixels, labels and normalisation; missing,
 * truncated, bad-magic, bad-label and inconsistent files are refused with a
 * message naming the file; the real Fashion-MNIST package loads (if present). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "int8train/data.h"
#include "test_util.h"

/* ------------------------------------------------------------------------ */
/* Temporary directories and files                                          */
/* ------------------------------------------------------------------------ */

static char tmpdir[512];


static int setup_dir(void **state) {
  (void)state;
  const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(tmpdir, sizeof tmpdir, "%s/i8t_test_data_XXXXXX", base);
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state) {
  (void)state;
  test_remove_tree(tmpdir);
  return 0;
}

static const char *path_in(const char *name) {
  static char path[4][1024];
  static int next;
  next = (next + 1) % 4;
  snprintf(path[next], sizeof path[next], "%s/%s", tmpdir, name);
  return path[next];
}

static void write_file(const char *name, const uint8_t *data, size_t n, int gz) {
  if (gz) {
    gzFile f = gzopen(path_in(name), "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, data, (unsigned)n), (int)n);
    gzclose(f);
  } else {
    FILE *f = fopen(path_in(name), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
  }
}

static void truncate_file(const char *name, size_t keep) {
  assert_int_equal(truncate(path_in(name), (off_t)keep), 0);
}

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* ------------------------------------------------------------------------ */
/* Synthetic IDX sets                                                       */
/* ------------------------------------------------------------------------ */

typedef struct idx_set {
  uint32_t count, rows, cols;
  uint8_t *pixels, *labels;
} idx_set;

static idx_set make_set(uint32_t count, uint32_t rows, uint32_t cols, uint64_t seed) {
  idx_set s = {count, rows, cols, malloc((size_t)count * rows * cols), malloc(count)};
  for (size_t i = 0; i < (size_t)count * rows * cols; i++) s.pixels[i] = (uint8_t)test_rand(&seed);
  for (size_t i = 0; i < count; i++) s.labels[i] = (uint8_t)(test_rand(&seed) % 10);
  return s;
}

static void free_set(idx_set *s) {
  free(s->pixels);
  free(s->labels);
}

/* Writes the two IDX files of one split ("train" or "t10k"). */
static void write_idx(const char *split, const idx_set *s, int gz) {
  size_t npix = (size_t)s->count * s->rows * s->cols;
  uint8_t *img = malloc(16 + npix), *lab = malloc(8 + s->count);
  put_be32(img, 0x803);
  put_be32(img + 4, s->count);
  put_be32(img + 8, s->rows);
  put_be32(img + 12, s->cols);
  memcpy(img + 16, s->pixels, npix);
  put_be32(lab, 0x801);
  put_be32(lab + 4, s->count);
  memcpy(lab + 8, s->labels, s->count);
  char name[128];
  snprintf(name, sizeof name, "%s-images-idx3-ubyte%s", split, gz ? ".gz" : "");
  write_file(name, img, 16 + npix, gz);
  snprintf(name, sizeof name, "%s-labels-idx1-ubyte%s", split, gz ? ".gz" : "");
  write_file(name, lab, 8 + s->count, gz);
  free(img);
  free(lab);
}

static void write_idx_pair(int gz) {
  idx_set tr = make_set(20, 4, 5, 1), te = make_set(7, 4, 5, 2);
  write_idx("train", &tr, gz);
  write_idx("t10k", &te, gz);
  free_set(&tr);
  free_set(&te);
}

static void expect_failure(i8t_status got, i8t_status want, const char *needle1,
                           const char *needle2) {
  const char *msg = i8t_last_error();
  printf("[ MESSAGE  ] %s\n", msg);
  assert_int_equal(got, want);
  if (needle1) assert_non_null(strstr(msg, needle1));
  if (needle2) assert_non_null(strstr(msg, needle2));
}

/* ------------------------------------------------------------------------ */
/* IDX: good files                                                          */
/* ------------------------------------------------------------------------ */

static void check_loaded_idx(const i8t_dataset *tr, const i8t_dataset *te) {
  idx_set etr = make_set(20, 4, 5, 1), ete = make_set(7, 4, 5, 2);
  assert_int_equal(tr->count, 20);
  assert_int_equal(te->count, 7);
  assert_int_equal(tr->channels, 1);
  assert_int_equal(tr->height, 4);
  assert_int_equal(tr->width, 5);
  assert_int_equal(tr->num_classes, 10);
  assert_memory_equal(tr->pixels, etr.pixels, 20 * 20);
  assert_memory_equal(tr->labels, etr.labels, 20);
  assert_memory_equal(te->pixels, ete.pixels, 7 * 20);
  assert_memory_equal(te->labels, ete.labels, 7);
  /* Mean and std of pixel/255 over the training split, computed here directly. */
  double sum = 0, sq = 0;
  for (int i = 0; i < 400; i++) {
    double x = etr.pixels[i] / 255.0;
    sum += x;
    sq += x * x;
  }
  double mean = sum / 400, std = sqrt(sq / 400 - mean * mean);
  assert_float_equal(tr->mean[0], mean, 1e-6);
  assert_float_equal(tr->std[0], std, 1e-6);
  assert_true(te->mean[0] == tr->mean[0] && te->std[0] == tr->std[0]);
  /* gather: normalised floats in NCHW, labels alongside. */
  float images[3 * 20];
  uint8_t labels[3];
  uint32_t idx[3] = {6, 0, 3};
  assert_int_equal(i8t_dataset_gather(te, idx, 0, 3, images, labels), I8T_OK);
  for (int b = 0; b < 3; b++) {
    assert_int_equal(labels[b], ete.labels[idx[b]]);
    for (int k = 0; k < 20; k++) {
      float want = ((float)ete.pixels[idx[b] * 20 + k] / 255.0f - tr->mean[0]) / tr->std[0];
      assert_float_equal(images[b * 20 + k], want, 1e-6);
    }
  }
  free_set(&etr);
  free_set(&ete);
}

static void test_idx_raw_loads(void **state) {
  (void)state;
  write_idx_pair(0);
  i8t_dataset tr, te;
  assert_int_equal(i8t_data_load(tmpdir, NULL, &tr, &te), I8T_OK);
  check_loaded_idx(&tr, &te);
  i8t_dataset_free(&tr);
  i8t_dataset_free(&te);
}

static void test_idx_gz_loads_like_raw(void **state) {
  (void)state;
  write_idx_pair(1);
  i8t_dataset tr, te;
  assert_int_equal(i8t_data_load(tmpdir, NULL, &tr, &te), I8T_OK);
  check_loaded_idx(&tr, &te);
  i8t_dataset_free(&tr);
  i8t_dataset_free(&te);
}

/* A raw file named .gz (zlib passes it through) and the "train-images.idx3-ubyte" spelling. */
static void test_idx_alternative_names(void **state) {
  (void)state;
  write_idx_pair(0);
  assert_int_equal(rename(path_in("train-images-idx3-ubyte"), path_in("train-images.idx3-ubyte")), 0);
  assert_int_equal(rename(path_in("t10k-labels-idx1-ubyte"), path_in("t10k-labels-idx1-ubyte.gz")), 0);
  i8t_dataset tr, te;
  assert_int_equal(i8t_data_load(tmpdir, NULL, &tr, &te), I8T_OK);
  check_loaded_idx(&tr, &te);
  i8t_dataset_free(&tr);
  i8t_dataset_free(&te);
}

static void test_limits_and_given_normalisation(void **state) {
  (void)state;
  write_idx_pair(0);
  i8t_data_options o;
  i8t_data_options_default(&o);
  o.limit_train = 9;
  o.limit_test = 100; /* more than there are: all 7 */
  i8t_dataset tr, te, full;
  assert_int_equal(i8t_data_load(tmpdir, &o, &tr, &te), I8T_OK);
  assert_int_equal(tr.count, 9);
  assert_int_equal(te.count, 7);
  o.limit_train = 0;
  i8t_dataset_free(&te);
  assert_int_equal(i8t_data_load(tmpdir, &o, &full, &te), I8T_OK);
  /* The normalisation comes from the whole training split, not the first 9. */
  assert_true(tr.mean[0] == full.mean[0] && tr.std[0] == full.std[0]);
  assert_memory_equal(tr.pixels, full.pixels, 9 * 20);
  i8t_dataset_free(&tr);
  i8t_dataset_free(&te);
  i8t_dataset_free(&full);
  /* Given normalisation, test split only (the training files are not needed). */
  unlink(path_in("train-images-idx3-ubyte"));
  o.have_norm = 1;
  o.mean[0] = 0.25f;
  o.std[0] = 0.5f;
  assert_int_equal(i8t_data_load(tmpdir, &o, NULL, &te), I8T_OK);
  assert_true(te.mean[0] == 0.25f && te.std[0] == 0.5f);
  float x[3 * 20];
  uint8_t y[3];
  assert_int_equal(i8t_dataset_gather(&te, NULL, 2, 1, x, y), I8T_OK);
  assert_float_equal(x[0], (te.pixels[2 * 20] / 255.0f - 0.25f) / 0.5f, 1e-6);
  assert_int_equal(i8t_dataset_gather(&te, NULL, 5, 3, x, y), I8T_ERR_INVALID_ARG);
  uint32_t bad = 7;
  assert_int_equal(i8t_dataset_gather(&te, &bad, 0, 1, x, y), I8T_ERR_INVALID_ARG);
  i8t_dataset_free(&te);
}

/* ------------------------------------------------------------------------ */
/* IDX: bad files                                                           */
/* ------------------------------------------------------------------------ */

static void expect_load_failure(i8t_status want, const char *needle1, const char *needle2) {
  i8t_dataset tr, te;
  i8t_status st = i8t_data_load(tmpdir, NULL, &tr, &te);
  expect_failure(st, want, needle1, needle2);
  assert_null(tr.pixels);
  assert_null(te.pixels);
}

static void test_missing_file(void **state) {
  (void)state;
  write_idx_pair(0);
  unlink(path_in("t10k-labels-idx1-ubyte"));
  expect_load_failure(I8T_ERR_IO, path_in("t10k-labels-idx1-ubyte"), "missing");
}

static void test_truncated_raw_images(void **state) {
  (void)state;
  write_idx_pair(0);
  truncate_file("train-images-idx3-ubyte", 16 + 20 * 20 - 3);
  expect_load_failure(I8T_ERR_FORMAT, path_in("train-images-idx3-ubyte"), "truncated");
  truncate_file("train-images-idx3-ubyte", 10); /* inside the header */
  expect_load_failure(I8T_ERR_FORMAT, path_in("train-images-idx3-ubyte"), "truncated");
}

static void test_truncated_gz(void **state) {
  (void)state;
  write_idx_pair(1);
  struct stat st;
  assert_int_equal(stat(path_in("t10k-images-idx3-ubyte.gz"), &st), 0);
  truncate_file("t10k-images-idx3-ubyte.gz", (size_t)st.st_size / 2);
  expect_load_failure(I8T_ERR_FORMAT, path_in("t10k-images-idx3-ubyte.gz"), NULL);
}

static void test_corrupt_gz(void **state) {
  (void)state;
  write_idx_pair(1);
  const char *p = path_in("train-images-idx3-ubyte.gz");
  FILE *f = fopen(p, "r+b");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, size - 6, SEEK_SET); /* inside the CRC32 of the gzip trailer */
  int c = fgetc(f);
  fseek(f, size - 6, SEEK_SET);
  fputc(c ^ 0x55, f);
  fclose(f);
  expect_load_failure(I8T_ERR_FORMAT, p, "gzip");
}

static void test_bad_magic(void **state) {
  (void)state;
  write_idx_pair(0);
  uint8_t lab[8 + 20] = {0};
  put_be32(lab, 0x803); /* an images magic on a labels file */
  put_be32(lab + 4, 20);
  write_file("train-labels-idx1-ubyte", lab, sizeof lab, 0);
  expect_load_failure(I8T_ERR_FORMAT, path_in("train-labels-idx1-ubyte"), "0x00000801");
  lab[0] = 0x1f; /* not IDX at all */
  write_file("train-labels-idx1-ubyte", lab, sizeof lab, 0);
  expect_load_failure(I8T_ERR_FORMAT, path_in("train-labels-idx1-ubyte"), "magic");
  put_be32(lab, 0x0d01); /* float elements */
  write_file("train-labels-idx1-ubyte", lab, sizeof lab, 0);
  expect_load_failure(I8T_ERR_FORMAT, path_in("train-labels-idx1-ubyte"), "element type");
}

static void test_bad_label(void **state) {
  (void)state;
  idx_set te = make_set(7, 4, 5, 2);
  write_idx_pair(0);
  te.labels[4] = 10;
  write_idx("t10k", &te, 0);
  expect_load_failure(I8T_ERR_FORMAT, path_in("t10k-labels-idx1-ubyte"), "label 10 of item 4");
  free_set(&te);
}

static void test_count_mismatch_and_trailing_bytes(void **state) {
  (void)state;
  write_idx_pair(0);
  idx_set s = make_set(19, 4, 5, 1);
  uint8_t lab[8 + 19];
  put_be32(lab, 0x801);
  put_be32(lab + 4, 19);
  memcpy(lab + 8, s.labels, 19);
  write_file("train-labels-idx1-ubyte", lab, sizeof lab, 0);
  expect_load_failure(I8T_ERR_FORMAT, path_in("train-labels-idx1-ubyte"),
                      path_in("train-images-idx3-ubyte"));
  put_be32(lab + 4, 18); /* one byte more than the header says */
  write_file("train-labels-idx1-ubyte", lab, sizeof lab, 0);
  expect_load_failure(I8T_ERR_FORMAT, path_in("train-labels-idx1-ubyte"), "unexpected bytes");
  free_set(&s);
}

static void test_train_test_shape_mismatch(void **state) {
  (void)state;
  write_idx_pair(0);
  idx_set te = make_set(7, 5, 4, 2);
  write_idx("t10k", &te, 0);
  expect_load_failure(I8T_ERR_FORMAT, "5x4", "4x5");
  free_set(&te);
}

static void test_bad_spec(void **state) {
  (void)state;
  i8t_dataset tr, te;
  expect_failure(i8t_data_load(path_in("nope"), NULL, &tr, &te), I8T_ERR_IO, path_in("nope"), NULL);
  expect_failure(i8t_data_load(tmpdir, NULL, &tr, &te), I8T_ERR_IO, "neither", tmpdir);
  write_file("plain", (const uint8_t *)"x", 1, 0);
  expect_failure(i8t_data_load(path_in("plain"), NULL, &tr, &te), I8T_ERR_INVALID_ARG,
                 "not a directory", NULL);
  expect_failure(i8t_data_load("", NULL, &tr, &te), I8T_ERR_INVALID_ARG, NULL, NULL);
}

/* ------------------------------------------------------------------------ */
/* CIFAR-10                                                                 */
/* ------------------------------------------------------------------------ */

#define REC 3073

/* Record r of a file: label (file + r) % 10, pixel k = (file * 7 + r * 3 + k) & 255. */
static void write_cifar_file(const char *name, int file, int records) {
  uint8_t *buf = malloc((size_t)records * REC);
  for (int r = 0; r < records; r++) {
    buf[r * REC] = (uint8_t)((file + r) % 10);
    for (int k = 0; k < REC - 1; k++) buf[r * REC + 1 + k] = (uint8_t)(file * 7 + r * 3 + k);
  }
  write_file(name, buf, (size_t)records * REC, 0);
  free(buf);
}

static const int cifar_records[6] = {2, 3, 1, 2, 2, 3}; /* batches 1..5, test */

static void write_cifar(const char *sub) {
  char name[128];
  if (sub) mkdir(path_in(sub), 0777);
  for (int b = 0; b < 6; b++) {
    if (b < 5)
      snprintf(name, sizeof name, "%s%sdata_batch_%d.bin", sub ? sub : "", sub ? "/" : "", b + 1);
    else
      snprintf(name, sizeof name, "%s%stest_batch.bin", sub ? sub : "", sub ? "/" : "");
    write_cifar_file(name, b, cifar_records[b]);
  }
}

static void check_cifar(const i8t_dataset *d, int first_file, int files) {
  size_t i = 0;
  for (int f = first_file; f < first_file + files; f++)
    for (int r = 0; r < cifar_records[f]; r++, i++) {
      assert_int_equal(d->labels[i], (f + r) % 10);
      for (int k = 0; k < REC - 1; k += 517)
        assert_int_equal(d->pixels[i * (REC - 1) + k], (uint8_t)(f * 7 + r * 3 + k));
    }
  assert_int_equal(d->count, i);
}

static void test_cifar_loads(void **state) {
  (void)state;
  write_cifar(NULL);
  i8t_dataset tr, te;
  assert_int_equal(i8t_data_load(tmpdir, NULL, &tr, &te), I8T_OK);
  assert_string_equal(tr.format, "cifar10");
  assert_int_equal(tr.channels, 3);
  assert_int_equal(tr.height, 32);
  assert_int_equal(tr.width, 32);
  check_cifar(&tr, 0, 5);
  check_cifar(&te, 5, 1);
  /* Per-channel normalisation: channel c of record r of file f holds
   * (f*7 + r*3 + c*1024 + k) & 255, so each channel's mean differs. */
  for (int c = 0; c < 3; c++) {
    double sum = 0, sq = 0, n = 0;
    for (size_t i = 0; i < tr.count; i++)
      for (int k = 0; k < 1024; k++) {
        double x = tr.pixels[i * 3072 + (size_t)c * 1024 + k] / 255.0;
        sum += x;
        sq += x * x;
        n++;
      }
    assert_float_equal(tr.mean[c], sum / n, 1e-6);
    assert_float_equal(tr.std[c], sqrt(sq / n - (sum / n) * (sum / n)), 1e-6);
  }
  i8t_dataset_free(&tr);
  i8t_dataset_free(&te);
}

static void test_cifar_subdirectory(void **state) {
  (void)state;
  write_cifar("cifar-10-batches-bin");
  i8t_dataset tr, te;
  assert_int_equal(i8t_data_load(tmpdir, NULL, &tr, &te), I8T_OK);
  check_cifar(&tr, 0, 5);
  i8t_dataset_free(&tr);
  i8t_dataset_free(&te);
}

static void test_cifar_bad_files(void **state) {
  (void)state;
  write_cifar(NULL);
  truncate_file("data_batch_3.bin", REC - 100);
  expect_load_failure(I8T_ERR_FORMAT, path_in("data_batch_3.bin"), "3073");
  write_cifar(NULL);
  uint8_t rec[REC] = {11};
  write_file("test_batch.bin", rec, REC, 0);
  expect_load_failure(I8T_ERR_FORMAT, path_in("test_batch.bin"), "label 11 of record 0");
  write_cifar(NULL);
  unlink(path_in("data_batch_5.bin"));
  expect_load_failure(I8T_ERR_IO, path_in("data_batch_5.bin"), "missing");
  write_cifar(NULL);
  truncate_file("test_batch.bin", 0);
  expect_load_failure(I8T_ERR_FORMAT, path_in("test_batch.bin"), NULL);
}

/* ------------------------------------------------------------------------ */
/* The real Fashion-MNIST package                                           */
/* ------------------------------------------------------------------------ */

static void test_fashion_mnist_package(void **state) {
  (void)state;
  struct stat st;
  if (stat(I8T_FASHION_MNIST_DIR "/train-images-idx3-ubyte.gz", &st) != 0) {
    printf("[   INFO   ] %s absent (Debian package dataset-fashion-mnist): skipped\n",
           I8T_FASHION_MNIST_DIR);
    skip();
  }
  i8t_dataset tr, te;
  assert_int_equal(i8t_data_load("fashion-mnist", NULL, &tr, &te), I8T_OK);
  assert_int_equal(tr.count, 60000);
  assert_int_equal(te.count, 10000);
  assert_int_equal(tr.height, 28);
  assert_int_equal(tr.width, 28);
  size_t hist_tr[10] = {0}, hist_te[10] = {0};
  for (size_t i = 0; i < tr.count; i++) hist_tr[tr.labels[i]]++;
  for (size_t i = 0; i < te.count; i++) hist_te[te.labels[i]]++;
  for (int c = 0; c < 10; c++) {
    assert_int_equal(hist_tr[c], 6000);
    assert_int_equal(hist_te[c], 1000);
  }
  /* The published statistics of Fashion-MNIST: mean 0.2860, std 0.3530. */
  printf("[   INFO   ] Fashion-MNIST mean %.4f std %.4f\n", tr.mean[0], tr.std[0]);
  assert_float_equal(tr.mean[0], 0.2860, 5e-4);
  assert_float_equal(tr.std[0], 0.3530, 5e-4);
  i8t_dataset_free(&tr);
  i8t_dataset_free(&te);
}

#define DIR_TEST(f) cmocka_unit_test_setup_teardown(f, setup_dir, teardown_dir)

int main(void) {
  const struct CMUnitTest tests[] = {
      DIR_TEST(test_idx_raw_loads),
      DIR_TEST(test_idx_gz_loads_like_raw),
      DIR_TEST(test_idx_alternative_names),
      DIR_TEST(test_limits_and_given_normalisation),
      DIR_TEST(test_missing_file),
      DIR_TEST(test_truncated_raw_images),
      DIR_TEST(test_truncated_gz),
      DIR_TEST(test_corrupt_gz),
      DIR_TEST(test_bad_magic),
      DIR_TEST(test_bad_label),
      DIR_TEST(test_count_mismatch_and_trailing_bytes),
      DIR_TEST(test_train_test_shape_mismatch),
      DIR_TEST(test_bad_spec),
      DIR_TEST(test_cifar_loads),
      DIR_TEST(test_cifar_subdirectory),
      DIR_TEST(test_cifar_bad_files),
      cmocka_unit_test(test_fashion_mnist_package),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
