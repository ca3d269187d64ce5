/* Checkpoint files (format in docs/checkpoint-format.md): the whole file is
 * built in memory, CRC32-stamped and written atomically; reading checks
 * magic, version, size and CRC before parsing, and a load touches the model
 * only after the configuration and every tensor name and size matched. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "app_internal.h"
#include "int8train/checkpoint.h"

static const char ckpt_magic[8] = {'I', '8', 'T', 'C', 'K', 'P', 'T', '\0'};
#define HEADER_BYTES 24 /* magic, version, flags, total size */
#define CRC_BYTES 4
#define MAX_STRING 4096

/* ------------------------------------------------------------------------ */
/* Model configurations: serialisation, comparison, description             */
/* ------------------------------------------------------------------------ */

static const char *arch_of(const i8t_model_config *c) { return c->arch ? c->arch : "resnet"; }

/* I8T_NORM_DEFAULT means range for int8 and standard for fp32 (model.h), so
 * two configurations are compared on what they resolve to. */
static int resolved_norm(const i8t_model_config *c) {
  if (c->norm != I8T_NORM_DEFAULT) return c->norm;
  return c->precision == I8T_PRECISION_INT8 ? I8T_NORM_RANGE : I8T_NORM_STANDARD;
}

static const char *precision_name(int p);
static const char *norm_name(int n);

const char *i8t_checkpoint_describe_model(const i8t_model_config *c, char *buf, size_t size) {
  snprintf(buf, size,
           "%s depth %d width %d, input %dx%dx%d, %d classes, %s, %s BN, %d-bit weight-gradient "
           "operand, %s activation rounding, %s weight scales, momentum %g, weight decay %g%s",
           arch_of(c), c->depth, c->width, c->in_channels, c->in_height, c->in_width,
           c->num_classes, precision_name(c->precision), norm_name(resolved_norm(c)), c->wgrad_bits,
           c->act_stochastic ? "stochastic" : "nearest",
           c->weight_per_channel ? "per-channel" : "per-tensor", (double)c->momentum,
           (double)c->weight_decay, c->range_bn_paper ? ", the paper's Range BN" : "");
  return buf;
}

static const char *precision_name(int p) { return p == I8T_PRECISION_FP32 ? "fp32" : "int8"; }
static const char *norm_name(int n) { return n == I8T_NORM_RANGE ? "range" : "standard"; }

/* Names the first field in which two configurations differ, or returns 0. */
static int config_difference(const i8t_model_config *a, const i8t_model_config *b, char *buf,
                             size_t size) {
  if (strcmp(arch_of(a), arch_of(b)) != 0) {
    snprintf(buf, size, "arch %s vs %s", arch_of(a), arch_of(b));
  } else if (a->precision != b->precision) {
    snprintf(buf, size, "precision %s vs %s", precision_name(a->precision),
             precision_name(b->precision));
  } else if (resolved_norm(a) != resolved_norm(b)) {
    snprintf(buf, size, "norm %s vs %s", norm_name(resolved_norm(a)), norm_name(resolved_norm(b)));
  } else if (a->momentum != b->momentum || a->weight_decay != b->weight_decay) {
    snprintf(buf, size, "momentum/weight decay %g/%g vs %g/%g", (double)a->momentum,
             (double)a->weight_decay, (double)b->momentum, (double)b->weight_decay);
  } else {
    struct { const char *name; int x, y; } ints[] = {
        {"depth", a->depth, b->depth},
        {"width", a->width, b->width},
        {"input channels", a->in_channels, b->in_channels},
        {"input height", a->in_height, b->in_height},
        {"input width", a->in_width, b->in_width},
        {"classes", a->num_classes, b->num_classes},
        {"weight-gradient bits", a->wgrad_bits, b->wgrad_bits},
        {"stochastic activation rounding", a->act_stochastic, b->act_stochastic},
        {"per-channel weight scales", a->weight_per_channel, b->weight_per_channel},
        {"paper's Range BN", a->range_bn_paper, b->range_bn_paper},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
      if (ints[i].x != ints[i].y) {
        snprintf(buf, size, "%s %d vs %d", ints[i].name, ints[i].x, ints[i].y);
        return 1;
      }
    return 0;
  }
  return 1;
}

static void put_string(i8t_bytes *b, const char *s) {
  size_t n = strlen(s);
  i8t_bytes_u32(b, (uint32_t)n);
  i8t_bytes_put(b, s, n);
}

static void put_config(i8t_bytes *b, const i8t_model_config *c) {
  put_string(b, arch_of(c));
  const int fields[] = {c->depth,      c->width,       c->in_channels, c->in_height,
                        c->in_width,   c->num_classes, (int)c->precision, (int)c->norm,
                        c->wgrad_bits, c->act_stochastic, c->weight_per_channel,
                        c->range_bn_paper};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    i8t_bytes_u32(b, (uint32_t)fields[i]);
  i8t_bytes_f32(b, c->momentum);
  i8t_bytes_f32(b, c->weight_decay);
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */
/* ------------------------------------------------------------------------ */

static void put_meta(i8t_bytes *b, const i8t_checkpoint_meta *m) {
  put_config(b, &m->model);
  put_string(b, m->data);
  i8t_bytes_u32(b, (uint32_t)m->data_channels);
  for (int c = 0; c < 3; c++) i8t_bytes_f32(b, m->data_mean[c]);
  for (int c = 0; c < 3; c++) i8t_bytes_f32(b, m->data_std[c]);
  i8t_bytes_u64(b, m->seed);
  i8t_bytes_u32(b, m->epochs_done);
  i8t_bytes_u32(b, m->epochs);
  i8t_bytes_u32(b, m->batch);
  i8t_bytes_u32(b, m->schedule);
  i8t_bytes_u64(b, m->limit_train);
  i8t_bytes_u64(b, m->train_count);
  i8t_bytes_f32(b, m->lr);
  i8t_bytes_f32(b, m->warmup_epochs);
  i8t_bytes_u64(b, m->steps);
  i8t_bytes_u32(b, m->threads);
  i8t_bytes_f64(b, m->train_loss);
  i8t_bytes_f64(b, m->test_accuracy);
}

static void put_tensors(i8t_bytes *b, const i8t_state_tensor *t, size_t count) {
  i8t_bytes_u32(b, (uint32_t)count);
  for (size_t i = 0; i < count; i++) {
    put_string(b, t[i].name);
    i8t_bytes_u64(b, t[i].size);
    for (size_t k = 0; k < t[i].size; k++) i8t_bytes_f32(b, t[i].data[k]);
  }
}

static i8t_status check_strings(const i8t_checkpoint_meta *m, const i8t_state_tensor *t,
                                size_t count) {
  if (strlen(m->data) >= MAX_STRING || strlen(arch_of(&m->model)) >= sizeof m->arch)
    return i8t_error(I8T_ERR_INVALID_ARG, "checkpoint: data spec or arch name too long");
  for (size_t i = 0; i < count; i++) {
    if (!t[i].name || !*t[i].name || strlen(t[i].name) >= MAX_STRING || (!t[i].data && t[i].size))
      return i8t_error(I8T_ERR_INVALID_ARG, "checkpoint: state tensor %zu has no name or data", i);
  }
  return I8T_OK;
}

i8t_status i8t_checkpoint_save_tensors(const char *path, const i8t_checkpoint_meta *meta,
                                       const i8t_state_tensor *tensors, size_t count) {
  if (!path || !meta || (count && !tensors))
    return i8t_error(I8T_ERR_INVALID_ARG, "checkpoint save: NULL argument");
  i8t_status st = check_strings(meta, tensors, count);
  if (st != I8T_OK) return st;
  i8t_bytes b = {0};
  i8t_bytes_put(&b, ckpt_magic, sizeof ckpt_magic);
  i8t_bytes_u32(&b, I8T_CHECKPOINT_VERSION);
  i8t_bytes_u32(&b, 0); /* flags, reserved */
  i8t_bytes_u64(&b, 0); /* total size, patched below */
  put_meta(&b, meta);
  put_tensors(&b, tensors, count);
  i8t_bytes_u32(&b, 0); /* room for the CRC */
  if (b.failed) {
    i8t_bytes_free(&b);
    return i8t_error(I8T_ERR_NO_MEMORY, "checkpoint %s: out of memory", path);
  }
  uint64_t total = b.size;
  for (int i = 0; i < 8; i++) b.data[16 + i] = (uint8_t)(total >> (8 * i));
  uLong crc = crc32(0L, Z_NULL, 0);
  for (size_t off = 0; off < b.size - CRC_BYTES; off += 1u << 30)
    crc = crc32(crc, b.data + off, (uInt)I8T_MIN((size_t)1 << 30, b.size - CRC_BYTES - off));
  for (int i = 0; i < 4; i++) b.data[b.size - CRC_BYTES + i] = (uint8_t)(crc >> (8 * i));
  st = i8t_write_file_atomic(path, b.data, b.size);
  i8t_bytes_free(&b);
  return st;
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct cursor {
  const uint8_t *p;
  size_t left;
  int bad; /* read past the end, or a field out of range */
} cursor;

static const uint8_t *take(cursor *c, size_t n) {
  if (c->bad || c->left < n) {
    c->bad = 1;
    return NULL;
  }
  const uint8_t *p = c->p;
  c->p += n;
  c->left -= n;
  return p;
}

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t get_u32(cursor *c) {
  const uint8_t *p = take(c, 4);
  return p ? le32(p) : 0;
}

static uint64_t get_u64(cursor *c) {
  uint64_t lo = get_u32(c);
  return lo | (uint64_t)get_u32(c) << 32;
}

static float get_f32(cursor *c) {
  uint32_t bits = get_u32(c);
  float v;
  memcpy(&v, &bits, 4);
  return v;
}

static double get_f64(cursor *c) {
  uint64_t bits = get_u64(c);
  double v;
  memcpy(&v, &bits, 8);
  return v;
}

/* A length-prefixed string into dst[cap]; too long marks the cursor bad. */
static void get_string(cursor *c, char *dst, size_t cap) {
  uint32_t n = get_u32(c);
  if (n >= cap) c->bad = 1;
  const uint8_t *p = take(c, n);
  if (!p) {
    dst[0] = '\0';
    return;
  }
  memcpy(dst, p, n);
  dst[n] = '\0';
}

static void get_config(cursor *c, i8t_checkpoint_meta *m) {
  get_string(c, m->arch, sizeof m->arch);
  i8t_model_config *cfg = &m->model;
  int *fields[] = {&cfg->depth,       &cfg->width,       &cfg->in_channels, &cfg->in_height,
                   &cfg->in_width,    &cfg->num_classes, NULL, NULL,
                   &cfg->wgrad_bits,  &cfg->act_stochastic, &cfg->weight_per_channel,
                   &cfg->range_bn_paper};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    uint32_t v = get_u32(c);
    if (i == 6) cfg->precision = (i8t_precision)v;
    else if (i == 7) cfg->norm = (i8t_norm_kind)v;
    else *fields[i] = (int)v;
  }
  cfg->momentum = get_f32(c);
  cfg->weight_decay = get_f32(c);
  cfg->arch = m->arch;
}

static void get_meta(cursor *c, i8t_checkpoint_meta *m) {
  memset(m, 0, sizeof *m);
  get_config(c, m);
  get_string(c, m->data, sizeof m->data);
  m->data_channels = (int)get_u32(c);
  for (int k = 0; k < 3; k++) m->data_mean[k] = get_f32(c);
  for (int k = 0; k < 3; k++) m->data_std[k] = get_f32(c);
  m->seed = get_u64(c);
  m->epochs_done = get_u32(c);
  m->epochs = get_u32(c);
  m->batch = get_u32(c);
  m->schedule = get_u32(c);
  m->limit_train = get_u64(c);
  m->train_count = get_u64(c);
  m->lr = get_f32(c);
  m->warmup_epochs = get_f32(c);
  m->steps = get_u64(c);
  m->threads = get_u32(c);
  m->train_loss = get_f64(c);
  m->test_accuracy = get_f64(c);
  if (m->data_channels < 0 || m->data_channels > 3) c->bad = 1;
}

/* Reads the file and checks magic, version, declared size and CRC32. On
 * success *body is a cursor over the sections (after the header, before the
 * CRC) and *file the buffer to free. */
static i8t_status read_checked(const char *path, uint8_t **file, cursor *body) {
  *file = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return i8t_error(I8T_ERR_IO, "cannot open checkpoint %s: %s", path, strerror(errno));
  size_t cap = 1u << 16, size = 0;
  uint8_t *buf = malloc(cap);
  while (buf) {
    size += fread(buf + size, 1, cap - size, f);
    if (size < cap) break;
    uint8_t *bigger = realloc(buf, cap * 2);
    if (!bigger) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = bigger;
    cap *= 2;
  }
  int read_error = ferror(f);
  fclose(f);
  if (!buf) return i8t_error(I8T_ERR_NO_MEMORY, "checkpoint %s: out of memory", path);
  i8t_status st = I8T_OK;
  size_t magic_len = I8T_MIN(size, sizeof ckpt_magic);
  if (read_error)
    st = i8t_error(I8T_ERR_IO, "cannot read checkpoint %s", path);
  else if (size == 0)
    st = i8t_error(I8T_ERR_FORMAT, "%s: checkpoint file is empty", path);
  else if (memcmp(buf, ckpt_magic, magic_len) != 0)
    st = i8t_error(I8T_ERR_FORMAT, "%s is not an int8train checkpoint (bad magic)", path);
  else if (size < HEADER_BYTES + CRC_BYTES)
    st = i8t_error(I8T_ERR_FORMAT, "%s: truncated checkpoint (%zu bytes, shorter than a header)",
                   path, size);
  if (st == I8T_OK) {
    uint32_t version = le32(buf + 8);
    uint64_t total = le32(buf + 16) | (uint64_t)le32(buf + 20) << 32;
    if (version != I8T_CHECKPOINT_VERSION)
      st = i8t_error(I8T_ERR_FORMAT,
                     "%s: checkpoint format version %u is not supported (this build reads "
                     "version %d)", path, version, I8T_CHECKPOINT_VERSION);
    else if (size < total)
      st = i8t_error(I8T_ERR_FORMAT, "%s: truncated checkpoint (%zu of %llu bytes)", path, size,
                     (unsigned long long)total);
    else if (size > total)
      st = i8t_error(I8T_ERR_FORMAT, "%s: %zu unexpected bytes after the %llu-byte checkpoint",
                     path, size - (size_t)total, (unsigned long long)total);
  }
  if (st == I8T_OK) {
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t off = 0; off < size - CRC_BYTES; off += 1u << 30)
      crc = crc32(crc, buf + off, (uInt)I8T_MIN((size_t)1 << 30, size - CRC_BYTES - off));
    uint32_t stored = le32(buf + size - CRC_BYTES);
    if (stored != (uint32_t)crc)
      st = i8t_error(I8T_ERR_FORMAT,
                     "%s: checksum mismatch (stored 0x%08x, computed 0x%08x): the checkpoint is "
                     "corrupt", path, stored, (uint32_t)crc);
  }
  if (st != I8T_OK) {
    free(buf);
    return st;
  }
  *file = buf;
  body->p = buf + HEADER_BYTES;
  body->left = size - HEADER_BYTES - CRC_BYTES;
  body->bad = 0;
  return I8T_OK;
}

i8t_status i8t_checkpoint_read_meta(const char *path, i8t_checkpoint_meta *meta) {
  if (!path || !meta) return i8t_error(I8T_ERR_INVALID_ARG, "checkpoint: NULL argument");
  uint8_t *file;
  cursor c;
  i8t_status st = read_checked(path, &file, &c);
  if (st != I8T_OK) return st;
  get_meta(&c, meta);
  free(file);
  if (c.bad) return i8t_error(I8T_ERR_FORMAT, "%s: corrupt checkpoint header", path);
  return I8T_OK;
}

/* Checks the stored tensors against `tensors` (names, sizes, count) and,
 * only if all agree, copies them in. */
static i8t_status restore_tensors(const char *path, cursor *c, const i8t_state_tensor *tensors,
                                  size_t count) {
  uint32_t stored = get_u32(c);
  if (c->bad) return i8t_error(I8T_ERR_FORMAT, "%s: corrupt checkpoint (tensor table)", path);
  if (stored != count)
    return i8t_error(I8T_ERR_FORMAT, "%s: checkpoint holds %u state tensors, the model has %zu",
                     path, stored, count);
  const cursor start = *c;
  char name[MAX_STRING];
  for (int pass = 0; pass < 2; pass++) {
    *c = start;
    for (size_t i = 0; i < count; i++) {
      get_string(c, name, sizeof name);
      uint64_t n = get_u64(c);
      const uint8_t *p = (!c->bad && n <= c->left / 4) ? take(c, (size_t)n * 4) : NULL;
      if (!p) return i8t_error(I8T_ERR_FORMAT, "%s: corrupt checkpoint (tensor %zu)", path, i);
      if (pass == 0 && strcmp(name, tensors[i].name) != 0)
        return i8t_error(I8T_ERR_FORMAT,
                         "%s: state tensor %zu is '%s' in the checkpoint but '%s' in the model",
                         path, i, name, tensors[i].name);
      if (pass == 0 && n != tensors[i].size)
        return i8t_error(I8T_ERR_FORMAT,
                         "%s: state tensor '%s' holds %llu floats in the checkpoint, %zu in the "
                         "model", path, name, (unsigned long long)n, tensors[i].size);
      if (pass == 1)
        for (size_t k = 0; k < n; k++) {
          uint32_t bits = le32(p + 4 * k);
          memcpy(&tensors[i].data[k], &bits, 4);
        }
    }
  }
  if (c->left != 0)
    return i8t_error(I8T_ERR_FORMAT, "%s: corrupt checkpoint (%zu stray bytes)", path, c->left);
  return I8T_OK;
}

i8t_status i8t_checkpoint_load_tensors(const char *path, const i8t_model_config *expect,
                                       const i8t_state_tensor *tensors, size_t count,
                                       i8t_checkpoint_meta *meta) {
  if (!path || (count && !tensors))
    return i8t_error(I8T_ERR_INVALID_ARG, "checkpoint load: NULL argument");
  uint8_t *file;
  cursor c;
  i8t_status st = read_checked(path, &file, &c);
  if (st != I8T_OK) return st;
  i8t_checkpoint_meta m;
  get_meta(&c, &m);
  char diff[256], have[512], want[512];
  if (c.bad) {
    st = i8t_error(I8T_ERR_FORMAT, "%s: corrupt checkpoint header", path);
  } else if (expect && config_difference(&m.model, expect, diff, sizeof diff)) {
    st = i8t_error(I8T_ERR_FORMAT,
                   "%s: checkpoint is for another model (%s): checkpoint: %s; model: %s", path,
                   diff, i8t_checkpoint_describe_model(&m.model, have, sizeof have),
                   i8t_checkpoint_describe_model(expect, want, sizeof want));
  } else {
    st = restore_tensors(path, &c, tensors, count);
  }
  free(file);
  if (st == I8T_OK && meta) {
    *meta = m;
    meta->model.arch = meta->arch;
  }
  return st;
}
