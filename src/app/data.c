/* Data set loaders: MNIST-format IDX files (raw or gzipped, read through zlib,
 * which passes raw files through) and CIFAR-10 binary batches. Every file is
 * read whole, then its header, size and labels are checked, so a bad file is
 * refused with a message naming it before any training starts. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "int8train/data.h"
#include "internal.h"

#define IDX_CLASSES 10
#define IDX_MAX_SIDE 4096
#define CIFAR_SIDE 32
#define CIFAR_CHANNELS 3
#define CIFAR_RECORD (1 + CIFAR_CHANNELS * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_CLASSES 10
#define CIFAR_TRAIN_BATCHES 5

void i8t_data_options_default(i8t_data_options *opts) {
  memset(opts, 0, sizeof *opts);
}

void i8t_dataset_free(i8t_dataset *d) {
  if (!d) return;
  free(d->pixels);
  free(d->labels);
  memset(d, 0, sizeof *d);
}

size_t i8t_dataset_image_size(const i8t_dataset *d) {
  return (size_t)d->channels * (size_t)d->height * (size_t)d->width;
}

/* ------------------------------------------------------------------------ */
/* Reading whole files                                                      */
/* ------------------------------------------------------------------------ */

static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Reads the whole (decompressed, if gzipped) content of `path`. The buffer
 * grows with the data actually read, so a header that lies about its size
 * cannot make us allocate more than the file holds. */
/* gzerror() puts the path in front of its message; we name the file once. */
static const char *gz_message(gzFile f, const char *path, int *errnum) {
  const char *msg = gzerror(f, errnum);
  size_t n = strlen(path);
  return strncmp(msg, path, n) == 0 && strncmp(msg + n, ": ", 2) == 0 ? msg + n + 2 : msg;
}

static i8t_status read_whole_file(const char *path, uint8_t **out, size_t *out_size) {
  *out = NULL;
  *out_size = 0;
  errno = 0;
  gzFile f = gzopen(path, "rb");
  if (!f)
    return i8t_error(I8T_ERR_IO, "cannot open %s: %s", path,
                     errno ? strerror(errno) : "out of memory");
  gzbuffer(f, 1u << 18);
  size_t cap = 1u << 20, size = 0;
  uint8_t *buf = malloc(cap);
  i8t_status st = buf ? I8T_OK : i8t_error(I8T_ERR_NO_MEMORY, "reading %s: out of memory", path);
  while (st == I8T_OK) {
    if (size == cap) {
      uint8_t *bigger = realloc(buf, cap * 2);
      if (!bigger) {
        st = i8t_error(I8T_ERR_NO_MEMORY, "reading %s: out of memory at %zu bytes", path, size);
        break;
      }
      buf = bigger;
      cap *= 2;
    }
    size_t want = I8T_MIN(cap - size, (size_t)1 << 30);
    int got = gzread(f, buf + size, (unsigned)want);
    if (got < 0) {
      int errnum = 0;
      const char *msg = gz_message(f, path, &errnum);
      st = errnum == Z_ERRNO
               ? i8t_error(I8T_ERR_IO, "cannot read %s: %s", path, strerror(errno))
               : i8t_error(I8T_ERR_FORMAT, "%s: corrupt gzip data (%s)", path, msg);
      break;
    }
    if (got == 0) {
      /* A gzip stream cut short ends without error from gzread but leaves
       * Z_BUF_ERROR behind. */
      int errnum = 0;
      const char *msg = gz_message(f, path, &errnum);
      if (errnum == Z_BUF_ERROR)
        st = i8t_error(I8T_ERR_FORMAT, "%s: truncated gzip stream (%s)", path, msg);
      break;
    }
    size += (size_t)got;
  }
  gzclose(f);
  if (st != I8T_OK) {
    free(buf);
    return st;
  }
  *out = buf;
  *out_size = size;
  return I8T_OK;
}

static uint32_t read_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Drops the first `skip` bytes of a buffer read by read_whole_file and
 * shrinks it to `keep` bytes, so the data set owns exactly its payload. */
static uint8_t *keep_payload(uint8_t *buf, size_t skip, size_t keep) {
  memmove(buf, buf + skip, keep);
  uint8_t *shrunk = realloc(buf, keep ? keep : 1);
  return shrunk ? shrunk : buf;
}

static i8t_status check_labels(const char *path, const uint8_t *labels, size_t n, int classes,
                               const char *unit) {
  for (size_t i = 0; i < n; i++)
    if (labels[i] >= classes)
      return i8t_error(I8T_ERR_FORMAT, "%s: label %u of %s %zu is out of range (%d classes: 0..%d)",
                       path, labels[i], unit, i, classes, classes - 1);
  return I8T_OK;
}

/* ------------------------------------------------------------------------ */
/* IDX (MNIST format)                                                       */
/* ------------------------------------------------------------------------ */

/* Parses an IDX header: magic 00 00 08 <ndims>, then ndims big-endian
 * dimensions. Checks that the payload is exactly the product of the
 * dimensions (truncated or trailing bytes are refused). */
static i8t_status parse_idx(const char *path, const uint8_t *buf, size_t size, int want_dims,
                            uint32_t dims[3], size_t *payload_offset) {
  const char *kind = want_dims == 3 ? "images" : "labels";
  if (size < 4)
    return i8t_error(I8T_ERR_FORMAT, "%s: truncated: %zu bytes, too short for an IDX header",
                     path, size);
  uint32_t magic = read_be32(buf);
  uint32_t want_magic = 0x800u | (uint32_t)want_dims;
  if (buf[0] != 0 || buf[1] != 0)
    return i8t_error(I8T_ERR_FORMAT,
                     "%s: not an IDX file (magic 0x%08x, expected 0x%08x for %s)", path, magic,
                     want_magic, kind);
  if (buf[2] != 0x08)
    return i8t_error(I8T_ERR_FORMAT,
                     "%s: IDX element type 0x%02x is not supported (need unsigned byte, 0x08)",
                     path, buf[2]);
  if (buf[3] != want_dims)
    return i8t_error(I8T_ERR_FORMAT,
                     "%s: IDX file has %u dimensions, expected %d for %s (magic 0x%08x, expected "
                     "0x%08x)", path, buf[3], want_dims, kind, magic, want_magic);
  size_t header = 4 + 4 * (size_t)want_dims;
  if (size < header)
    return i8t_error(I8T_ERR_FORMAT, "%s: truncated inside the IDX header (%zu of %zu bytes)",
                     path, size, header);
  uint64_t payload = 1;
  for (int d = 0; d < want_dims; d++) {
    dims[d] = read_be32(buf + 4 + 4 * d);
    uint32_t limit = d == 0 ? UINT32_MAX : IDX_MAX_SIDE;
    if (dims[d] == 0 || dims[d] > limit)
      return i8t_error(I8T_ERR_FORMAT, "%s: IDX dimension %d is %u (must be 1..%u)", path, d,
                       dims[d], limit);
    payload *= dims[d];
  }
  if (size - header < payload)
    return i8t_error(I8T_ERR_FORMAT,
                     "%s: truncated: the header declares %llu bytes of %s, the file holds %zu",
                     path, (unsigned long long)payload, kind, size - header);
  if (size - header > payload)
    return i8t_error(I8T_ERR_FORMAT,
                     "%s: %zu unexpected bytes after the %llu bytes of %s the header declares",
                     path, size - header - (size_t)payload, (unsigned long long)payload, kind);
  *payload_offset = header;
  return I8T_OK;
}

/* Finds `<dir>/<name>` or `<dir>/<name>.gz`, trying the "-idx" and ".idx"
 * spellings of the name. Writes the path found (or the first candidate, for
 * the error message) into `path`. */
static int find_idx_file(const char *dir, const char *prefix, const char *suffix, char *path,
                         size_t size) {
  static const char *const seps[] = {"-", "."};
  static const char *const exts[] = {"", ".gz"};
  for (int s = 0; s < 2; s++)
    for (int e = 0; e < 2; e++) {
      snprintf(path, size, "%s/%s%s%s%s", dir, prefix, seps[s], suffix, exts[e]);
      if (file_exists(path)) return 1;
    }
  snprintf(path, size, "%s/%s-%s[.gz]", dir, prefix, suffix);
  return 0;
}

/* Loads one split ("train" or "t10k") of an IDX directory. */
static i8t_status load_idx_split(const char *dir, const char *split, i8t_dataset *out) {
  char img_path[4096], lab_path[4096], prefix[64];
  snprintf(prefix, sizeof prefix, "%s-images", split);
  if (!find_idx_file(dir, prefix, "idx3-ubyte", img_path, sizeof img_path))
    return i8t_error(I8T_ERR_IO, "missing IDX file %s", img_path);
  snprintf(prefix, sizeof prefix, "%s-labels", split);
  if (!find_idx_file(dir, prefix, "idx1-ubyte", lab_path, sizeof lab_path))
    return i8t_error(I8T_ERR_IO, "missing IDX file %s", lab_path);

  uint8_t *img = NULL, *lab = NULL;
  size_t img_size = 0, lab_size = 0, img_off = 0, lab_off = 0;
  uint32_t idims[3] = {0, 0, 0}, ldims[3] = {0, 0, 0};
  i8t_status st = read_whole_file(img_path, &img, &img_size);
  if (st == I8T_OK) st = parse_idx(img_path, img, img_size, 3, idims, &img_off);
  if (st == I8T_OK) st = read_whole_file(lab_path, &lab, &lab_size);
  if (st == I8T_OK) st = parse_idx(lab_path, lab, lab_size, 1, ldims, &lab_off);
  if (st == I8T_OK && ldims[0] != idims[0])
    st = i8t_error(I8T_ERR_FORMAT, "%s has %u labels but %s has %u images", lab_path, ldims[0],
                   img_path, idims[0]);
  if (st == I8T_OK) st = check_labels(lab_path, lab + lab_off, ldims[0], IDX_CLASSES, "item");
  if (st != I8T_OK) {
    free(img);
    free(lab);
    return st;
  }
  memset(out, 0, sizeof *out);
  out->count = idims[0];
  out->channels = 1;
  out->height = (int)idims[1];
  out->width = (int)idims[2];
  out->num_classes = IDX_CLASSES;
  snprintf(out->format, sizeof out->format, "idx");
  out->pixels = keep_payload(img, img_off, img_size - img_off);
  out->labels = keep_payload(lab, lab_off, lab_size - lab_off);
  return I8T_OK;
}

/* ------------------------------------------------------------------------ */
/* CIFAR-10 binary                                                          */
/* ------------------------------------------------------------------------ */

/* Appends the records of one CIFAR-10 batch file (label byte + 3x32x32 CHW
 * pixels each) to `out`. */
static i8t_status append_cifar_file(const char *path, i8t_dataset *out) {
  if (!file_exists(path)) return i8t_error(I8T_ERR_IO, "missing CIFAR-10 file %s", path);
  uint8_t *buf = NULL;
  size_t size = 0;
  i8t_status st = read_whole_file(path, &buf, &size);
  if (st != I8T_OK) return st;
  if (size == 0 || size % CIFAR_RECORD != 0) {
    free(buf);
    return i8t_error(I8T_ERR_FORMAT,
                     "%s: size %zu is not a positive multiple of the %d-byte CIFAR-10 record "
                     "(truncated, or not CIFAR-10 binary)", path, size, CIFAR_RECORD);
  }
  const size_t n = size / CIFAR_RECORD, image = CIFAR_RECORD - 1;
  for (size_t i = 0; i < n; i++)
    if (buf[i * CIFAR_RECORD] >= CIFAR_CLASSES) {
      st = i8t_error(I8T_ERR_FORMAT, "%s: label %u of record %zu is out of range (10 classes: 0..9)",
                     path, buf[i * CIFAR_RECORD], i);
      free(buf);
      return st;
    }
  uint8_t *pixels = realloc(out->pixels, (out->count + n) * image);
  if (pixels) out->pixels = pixels;
  uint8_t *labels = pixels ? realloc(out->labels, out->count + n) : NULL;
  if (labels) out->labels = labels;
  if (!pixels || !labels) {
    free(buf);
    return i8t_error(I8T_ERR_NO_MEMORY, "reading %s: out of memory", path);
  }
  for (size_t i = 0; i < n; i++) {
    out->labels[out->count + i] = buf[i * CIFAR_RECORD];
    memcpy(out->pixels + (out->count + i) * image, buf + i * CIFAR_RECORD + 1, image);
  }
  out->count += n;
  free(buf);
  return I8T_OK;
}

static i8t_status load_cifar_split(const char *dir, int train, i8t_dataset *out) {
  memset(out, 0, sizeof *out);
  out->channels = CIFAR_CHANNELS;
  out->height = out->width = CIFAR_SIDE;
  out->num_classes = CIFAR_CLASSES;
  snprintf(out->format, sizeof out->format, "cifar10");
  char path[4096];
  i8t_status st = I8T_OK;
  for (int b = 1; st == I8T_OK && b <= (train ? CIFAR_TRAIN_BATCHES : 1); b++) {
    if (train)
      snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, b);
    else
      snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    st = append_cifar_file(path, out);
  }
  if (st != I8T_OK) i8t_dataset_free(out);
  return st;
}

/* ------------------------------------------------------------------------ */
/* Normalisation, limits, the public loader                                 */
/* ------------------------------------------------------------------------ */

/* Per-channel mean and standard deviation of pixel / 255, from exact
 * per-channel histograms (independent of summation order). */
static void compute_norm(const i8t_dataset *d, float *mean, float *std) {
  const size_t plane = (size_t)d->height * (size_t)d->width;
  for (int c = 0; c < d->channels; c++) {
    uint64_t hist[256] = {0};
    for (size_t i = 0; i < d->count; i++) {
      const uint8_t *p = d->pixels + (i * (size_t)d->channels + (size_t)c) * plane;
      for (size_t k = 0; k < plane; k++) hist[p[k]]++;
    }
    double n = 0, sum = 0, sq = 0;
    for (int v = 0; v < 256; v++) {
      double x = v / 255.0;
      n += (double)hist[v];
      sum += (double)hist[v] * x;
      sq += (double)hist[v] * x * x;
    }
    double m = sum / n, var = sq / n - m * m;
    mean[c] = (float)m;
    std[c] = var > 1e-12 ? (float)sqrt(var) : 1.0f;
  }
}

static void truncate_split(i8t_dataset *d, size_t limit) {
  if (limit && limit < d->count) d->count = limit;
}

static i8t_status check_same_shape(const char *dir, const i8t_dataset *train,
                                   const i8t_dataset *test) {
  if (train->channels != test->channels || train->height != test->height ||
      train->width != test->width)
    return i8t_error(I8T_ERR_FORMAT,
                     "%s: test images are %dx%dx%d but training images are %dx%dx%d", dir,
                     test->channels, test->height, test->width, train->channels, train->height,
                     train->width);
  return I8T_OK;
}

static void apply_norm(i8t_dataset *d, const float *mean, const float *std) {
  for (int c = 0; c < d->channels; c++) {
    d->mean[c] = mean[c];
    d->std[c] = std[c];
  }
}

/* Resolves the spec to a directory and the loader for it. */
static i8t_status resolve_dir(const char *spec, char *dir, size_t size, int *is_cifar) {
  if (!spec || !*spec) return i8t_error(I8T_ERR_INVALID_ARG, "data: empty data set name");
  const char *path = strcmp(spec, "fashion-mnist") == 0 ? I8T_FASHION_MNIST_DIR : spec;
  struct stat st;
  if (stat(path, &st) != 0) {
    if (path != spec)
      return i8t_error(I8T_ERR_IO,
                       "data: Fashion-MNIST not found in %s (install Debian's "
                       "dataset-fashion-mnist package, or give --data DIR)", path);
    return i8t_error(I8T_ERR_IO, "data: %s: %s", path, strerror(errno));
  }
  if (!S_ISDIR(st.st_mode))
    return i8t_error(I8T_ERR_INVALID_ARG,
                     "data: %s is not a directory (give the directory that holds the IDX or "
                     "CIFAR-10 files)", path);
  snprintf(dir, size, "%s", path);
  char probe[4096];
  snprintf(probe, sizeof probe, "%s/cifar-10-batches-bin/data_batch_1.bin", path);
  if (file_exists(probe)) {
    snprintf(dir, size, "%s/cifar-10-batches-bin", path);
    *is_cifar = 1;
    return I8T_OK;
  }
  snprintf(probe, sizeof probe, "%s/data_batch_1.bin", path);
  *is_cifar = file_exists(probe);
  if (*is_cifar) return I8T_OK;
  snprintf(probe, sizeof probe, "%s/test_batch.bin", path);
  if (file_exists(probe)) *is_cifar = 1; /* a CIFAR-10 directory missing its train batches */
  if (*is_cifar) return I8T_OK;
  static const char *const idx_prefixes[] = {"train-images", "t10k-images", "train-labels",
                                             "t10k-labels"};
  for (int i = 0; i < 4; i++)
    if (find_idx_file(path, idx_prefixes[i], i < 2 ? "idx3-ubyte" : "idx1-ubyte", probe,
                      sizeof probe))
      return I8T_OK;
  return i8t_error(I8T_ERR_IO,
                   "data: %s holds neither MNIST-format IDX files (train-images-idx3-ubyte[.gz], "
                   "...) nor CIFAR-10 batches (data_batch_1.bin, ..., test_batch.bin)", path);
}

static i8t_status load_split(const char *dir, int is_cifar, int train, i8t_dataset *out) {
  if (is_cifar) return load_cifar_split(dir, train, out);
  return load_idx_split(dir, train ? "train" : "t10k", out);
}

i8t_status i8t_data_load(const char *spec, const i8t_data_options *opts, i8t_dataset *train,
                         i8t_dataset *test) {
  i8t_data_options defaults;
  if (!opts) {
    i8t_data_options_default(&defaults);
    opts = &defaults;
  }
  if (!test) return i8t_error(I8T_ERR_INVALID_ARG, "data: NULL test split");
  memset(test, 0, sizeof *test);
  if (train) memset(train, 0, sizeof *train);
  char dir[4096];
  int is_cifar = 0;
  i8t_status st = resolve_dir(spec, dir, sizeof dir, &is_cifar);
  if (st != I8T_OK) return st;

  i8t_dataset local_train;
  i8t_dataset *tr = train ? train : &local_train;
  const int need_train = train != NULL || !opts->have_norm;
  memset(tr, 0, sizeof *tr);
  if (need_train) st = load_split(dir, is_cifar, 1, tr);
  if (st == I8T_OK) st = load_split(dir, is_cifar, 0, test);
  if (st == I8T_OK && need_train) st = check_same_shape(dir, tr, test);
  if (st == I8T_OK) {
    float mean[I8T_DATA_MAX_CHANNELS], std[I8T_DATA_MAX_CHANNELS];
    if (opts->have_norm) {
      memcpy(mean, opts->mean, sizeof mean);
      memcpy(std, opts->std, sizeof std);
      for (int c = 0; c < test->channels; c++)
        if (!(std[c] > 0.0f))
          st = i8t_error(I8T_ERR_INVALID_ARG, "data: standard deviation of channel %d is %g",
                         c, (double)std[c]);
    } else {
      compute_norm(tr, mean, std);
    }
    apply_norm(tr, mean, std);
    apply_norm(test, mean, std);
    truncate_split(tr, opts->limit_train);
    truncate_split(test, opts->limit_test);
  }
  if (st != I8T_OK || !train) i8t_dataset_free(tr);
  if (st != I8T_OK) i8t_dataset_free(test);
  return st;
}

i8t_status i8t_dataset_gather(const i8t_dataset *d, const uint32_t *indices, size_t first,
                              size_t n, float *images, uint8_t *labels) {
  if (!d || !d->pixels || !images || !labels)
    return i8t_error(I8T_ERR_INVALID_ARG, "gather: NULL data set or output");
  if (!indices && (first > d->count || n > d->count - first))
    return i8t_error(I8T_ERR_INVALID_ARG, "gather: images %zu..%zu of a set of %zu", first,
                     first + n, d->count);
  /* One table per channel: 256 float values, the same for every batch. */
  float table[I8T_DATA_MAX_CHANNELS][256];
  for (int c = 0; c < d->channels; c++)
    for (int v = 0; v < 256; v++)
      table[c][v] = ((float)v / 255.0f - d->mean[c]) / d->std[c];
  const size_t plane = (size_t)d->height * (size_t)d->width, image = i8t_dataset_image_size(d);
  for (size_t i = 0; i < n; i++) {
    size_t src = indices ? indices[i] : first + i;
    if (src >= d->count)
      return i8t_error(I8T_ERR_INVALID_ARG, "gather: index %zu of a set of %zu", src, d->count);
    const uint8_t *p = d->pixels + src * image;
    float *o = images + i * image;
    for (int c = 0; c < d->channels; c++)
      for (size_t k = 0; k < plane; k++) o[c * plane + k] = table[c][p[c * plane + k]];
    labels[i] = d->labels[src];
  }
  return I8T_OK;
}
