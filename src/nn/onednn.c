/* The fp32 baseline on oneDNN's f32 primitives (convolution, inner product,
 * batch normalisation) through its C API, with plain NHWC / OHWI / NC memory
 * so that no reorders are needed. Primitives are cached per shape in the
 * workspace. Without oneDNN every entry point reports I8T_ERR_UNSUPPORTED. */
#include "nn_internal.h"

#ifdef I8T_HAVE_ONEDNN

#include <stdlib.h>
#include <string.h>

#include <dnnl.h>

enum prim_kind {
  PK_CONV_FWD = 1, PK_CONV_BWD_DATA, PK_CONV_BWD_WEIGHTS,
  PK_FC_FWD, PK_FC_FWD_BIAS, PK_FC_BWD_DATA, PK_FC_BWD_WEIGHTS, PK_FC_BWD_WEIGHTS_BIAS,
  PK_BN_FWD_TRAIN, PK_BN_FWD_EVAL, PK_BN_BWD,
};

#define CACHE_SIZE 256
#define KEY_LEN 9

typedef struct cache_entry {
  int64_t key[KEY_LEN]; /* key[0] = kind, 0 = empty */
  dnnl_primitive_t prim;
  /* Convolutions: oneDNN's jit kernels want their own weights layout; the
   * weights are reordered from / to the plain OHWI master copy per call. */
  dnnl_primitive_t reorder; /* NULL when the plain layout is used */
  dnnl_memory_desc_t wei_md;
  void *wbuf;
  uint64_t last_use;
} cache_entry;

struct nn_dnnl {
  dnnl_engine_t engine;
  dnnl_stream_t stream;
  cache_entry cache[CACHE_SIZE];
  uint64_t clock;
};

static i8t_status dnnl_fail(dnnl_status_t s, const char *what) {
  return i8t_error(s == dnnl_out_of_memory ? I8T_ERR_NO_MEMORY : I8T_ERR_UNSUPPORTED,
                   "oneDNN: %s failed (status %d)", what, (int)s);
}

#define DNNL_TRY(call, what)                   \
  do {                                         \
    dnnl_status_t s_ = (call);                 \
    if (s_ != dnnl_success) return dnnl_fail(s_, what); \
  } while (0)

static void entry_clear(cache_entry *e) {
  if (e->prim) dnnl_primitive_destroy(e->prim);
  if (e->reorder) dnnl_primitive_destroy(e->reorder);
  free(e->wbuf);
  memset(e, 0, sizeof *e);
}

void nn_dnnl_destroy(struct nn_dnnl *d) {
  if (!d) return;
  for (int i = 0; i < CACHE_SIZE; i++) entry_clear(&d->cache[i]);
  if (d->stream) dnnl_stream_destroy(d->stream);
  if (d->engine) dnnl_engine_destroy(d->engine);
  free(d);
}

static i8t_status get_dnnl(i8t_workspace *ws, struct nn_dnnl **out) {
  if (!ws->dnnl) {
    struct nn_dnnl *d = calloc(1, sizeof *d);
    if (!d) return i8t_error(I8T_ERR_NO_MEMORY, "oneDNN state");
    dnnl_status_t s = dnnl_engine_create(&d->engine, dnnl_cpu, 0);
    if (s == dnnl_success) s = dnnl_stream_create(&d->stream, d->engine, dnnl_stream_default_flags);
    if (s != dnnl_success) {
      nn_dnnl_destroy(d);
      return dnnl_fail(s, "engine/stream creation");
    }
    ws->dnnl = d;
  }
  *out = ws->dnnl;
  return I8T_OK;
}

/* Cached entry for `key`, or NULL: the caller builds one and stores it with
 * cache_put. */
static cache_entry *cache_get(struct nn_dnnl *d, const int64_t *key) {
  for (int i = 0; i < CACHE_SIZE; i++) {
    if (d->cache[i].key[0] && !memcmp(d->cache[i].key, key, sizeof d->cache[i].key)) {
      d->cache[i].last_use = ++d->clock;
      return &d->cache[i];
    }
  }
  return NULL;
}

/* Stores `e` (taking its primitives and buffer), evicting the least recently used. */
static cache_entry *cache_put(struct nn_dnnl *d, const int64_t *key, const cache_entry *e) {
  int victim = 0;
  for (int i = 0; i < CACHE_SIZE; i++) {
    if (!d->cache[i].key[0]) {
      victim = i;
      break;
    }
    if (d->cache[i].last_use < d->cache[victim].last_use) victim = i;
  }
  cache_entry *slot = &d->cache[victim];
  entry_clear(slot);
  *slot = *e;
  memcpy(slot->key, key, sizeof slot->key);
  slot->last_use = ++d->clock;
  return slot;
}

static i8t_status make_primitive(struct nn_dnnl *d, const void *op_desc,
                                 const_dnnl_primitive_desc_t hint, dnnl_primitive_t *prim) {
  dnnl_primitive_desc_t pd;
  DNNL_TRY(dnnl_primitive_desc_create(&pd, op_desc, NULL, d->engine, hint), "primitive descriptor");
  dnnl_status_t s = dnnl_primitive_create(prim, pd);
  dnnl_primitive_desc_destroy(pd);
  if (s != dnnl_success) return dnnl_fail(s, "primitive creation");
  return I8T_OK;
}

/* Runs `prim` with (arg id, memory descriptor, pointer) triples. */
typedef struct exec_arg {
  int arg;
  const dnnl_memory_desc_t *md;
  const void *ptr;
} exec_arg;

static i8t_status execute(struct nn_dnnl *d, dnnl_primitive_t prim, const exec_arg *args, int n,
                          const char *what) {
  dnnl_exec_arg_t ea[12];
  int made = 0;
  i8t_status st = I8T_OK;
  for (; made < n; made++) {
    ea[made].arg = args[made].arg;
    dnnl_status_t s = dnnl_memory_create(&ea[made].memory, args[made].md, d->engine,
                                         (void *)args[made].ptr);
    if (s != dnnl_success) {
      st = dnnl_fail(s, "memory creation");
      (void)what;
      break;
    }
  }
  if (!st) {
    dnnl_status_t s = dnnl_primitive_execute(prim, d->stream, n, ea);
    if (s == dnnl_success) s = dnnl_stream_wait(d->stream);
    if (s != dnnl_success) st = dnnl_fail(s, what);
  }
  for (int i = 0; i < made; i++) dnnl_memory_destroy(ea[i].memory);
  return st;
}

/* ------------------------------------------------------------------------ */
/* Convolution                                                              */
/* ------------------------------------------------------------------------ */

typedef struct conv_mds {
  dnnl_memory_desc_t src, wei, wei_any, dst;
  dnnl_dims_t strides, pad_l, pad_r;
} conv_mds;

static i8t_status conv_descs(const i8t_conv_shape *s, conv_mds *m) {
  dnnl_dims_t src = {s->batch, s->in_c, s->in_h, s->in_w};
  dnnl_dims_t wei = {s->out_c, s->in_c, s->kernel, s->kernel};
  dnnl_dims_t dst = {s->batch, s->out_c, i8t_conv_out_h(s), i8t_conv_out_w(s)};
  /* acdb: NHWC for data, OHWI for weights. */
  DNNL_TRY(dnnl_memory_desc_init_by_tag(&m->src, 4, src, dnnl_f32, dnnl_acdb), "src md");
  DNNL_TRY(dnnl_memory_desc_init_by_tag(&m->wei, 4, wei, dnnl_f32, dnnl_acdb), "weights md");
  DNNL_TRY(dnnl_memory_desc_init_by_tag(&m->wei_any, 4, wei, dnnl_f32, dnnl_format_tag_any),
           "weights md");
  DNNL_TRY(dnnl_memory_desc_init_by_tag(&m->dst, 4, dst, dnnl_f32, dnnl_acdb), "dst md");
  m->strides[0] = m->strides[1] = s->stride;
  m->pad_l[0] = m->pad_l[1] = s->pad;
  m->pad_r[0] = (i8t_conv_out_h(s) - 1) * s->stride + s->kernel - s->in_h - s->pad;
  m->pad_r[1] = (i8t_conv_out_w(s) - 1) * s->stride + s->kernel - s->in_w - s->pad;
  return I8T_OK;
}

static void conv_key(int kind, const i8t_conv_shape *s, int64_t *key) {
  int64_t k[KEY_LEN] = {kind, s->batch, s->in_h, s->in_w, s->in_c, s->out_c, s->kernel,
                        s->stride, s->pad};
  memcpy(key, k, sizeof k);
}

static i8t_status conv_op_desc(int kind, const conv_mds *m, dnnl_convolution_desc_t *cd) {
  dnnl_status_t s;
  if (kind == PK_CONV_FWD)
    s = dnnl_convolution_forward_desc_init(cd, dnnl_forward_training, dnnl_convolution_direct,
                                           &m->src, &m->wei_any, NULL, &m->dst, m->strides,
                                           m->pad_l, m->pad_r);
  else if (kind == PK_CONV_BWD_DATA)
    s = dnnl_convolution_backward_data_desc_init(cd, dnnl_convolution_direct, &m->src,
                                                 &m->wei_any, &m->dst, m->strides, m->pad_l,
                                                 m->pad_r);
  else
    s = dnnl_convolution_backward_weights_desc_init(cd, dnnl_convolution_direct, &m->src,
                                                    &m->wei_any, NULL, &m->dst, m->strides,
                                                    m->pad_l, m->pad_r);
  if (s != dnnl_success) return dnnl_fail(s, "convolution descriptor");
  return I8T_OK;
}

/* Primitive plus, when its weights layout is not OHWI, the reorder between
 * the two (plain -> blocked for forward / backward data, blocked -> plain
 * for the weight gradient) and a buffer for the blocked copy. */
static i8t_status conv_entry_build(struct nn_dnnl *d, int kind, const conv_mds *m,
                                   cache_entry *e) {
  memset(e, 0, sizeof *e);
  dnnl_convolution_desc_t cd, fd;
  dnnl_primitive_desc_t hint = NULL, pd = NULL, rpd = NULL;
  i8t_status st = conv_op_desc(kind, m, &cd);
  if (!st && kind != PK_CONV_FWD && !(st = conv_op_desc(PK_CONV_FWD, m, &fd))) {
    dnnl_status_t s = dnnl_primitive_desc_create(&hint, &fd, NULL, d->engine, NULL);
    if (s != dnnl_success) st = dnnl_fail(s, "convolution forward hint");
  }
  if (!st) {
    dnnl_status_t s = dnnl_primitive_desc_create(&pd, &cd, NULL, d->engine, hint);
    if (s != dnnl_success) st = dnnl_fail(s, "convolution primitive descriptor");
  }
  if (!st) {
    e->wei_md = *dnnl_primitive_desc_query_md(
        pd, kind == PK_CONV_BWD_WEIGHTS ? dnnl_query_diff_weights_md : dnnl_query_weights_md, 0);
    dnnl_status_t s = dnnl_primitive_create(&e->prim, pd);
    if (s == dnnl_success && !dnnl_memory_desc_equal(&e->wei_md, &m->wei)) {
      const dnnl_memory_desc_t *from = kind == PK_CONV_BWD_WEIGHTS ? &e->wei_md : &m->wei;
      const dnnl_memory_desc_t *to = kind == PK_CONV_BWD_WEIGHTS ? &m->wei : &e->wei_md;
      s = dnnl_reorder_primitive_desc_create(&rpd, from, d->engine, to, d->engine, NULL);
      if (s == dnnl_success) s = dnnl_primitive_create(&e->reorder, rpd);
      if (s == dnnl_success && !(e->wbuf = malloc(dnnl_memory_desc_get_size(&e->wei_md))))
        s = dnnl_out_of_memory;
    }
    if (s != dnnl_success) st = dnnl_fail(s, "convolution primitive");
  }
  if (hint) dnnl_primitive_desc_destroy(hint);
  if (pd) dnnl_primitive_desc_destroy(pd);
  if (rpd) dnnl_primitive_desc_destroy(rpd);
  if (st) entry_clear(e);
  return st;
}

static i8t_status conv_entry(i8t_workspace *ws, int kind, const i8t_conv_shape *s,
                             struct nn_dnnl **dout, conv_mds *m, cache_entry **out) {
  struct nn_dnnl *d;
  i8t_status st = get_dnnl(ws, &d);
  if (st || (st = conv_descs(s, m))) return st;
  *dout = d;
  int64_t key[KEY_LEN];
  conv_key(kind, s, key);
  if ((*out = cache_get(d, key))) return I8T_OK;
  cache_entry e;
  if ((st = conv_entry_build(d, kind, m, &e))) return st;
  *out = cache_put(d, key, &e);
  return I8T_OK;
}

/* Weights in the primitive's layout: reordered into the entry's buffer. */
static i8t_status weights_in(struct nn_dnnl *d, cache_entry *e, const conv_mds *m,
                             const float *w, const void **wp) {
  *wp = w;
  if (!e->reorder) return I8T_OK;
  exec_arg a[] = {{DNNL_ARG_SRC, &m->wei, w}, {DNNL_ARG_DST, &e->wei_md, e->wbuf}};
  *wp = e->wbuf;
  return execute(d, e->reorder, a, 2, "weights reorder");
}

i8t_status nn_dnnl_conv_forward(i8t_workspace *ws, const i8t_conv_shape *s, const float *x,
                                 const float *w, float *y) {
  struct nn_dnnl *d;
  conv_mds m;
  cache_entry *e;
  const void *wp;
  i8t_status st = conv_entry(ws, PK_CONV_FWD, s, &d, &m, &e);
  if (st || (st = weights_in(d, e, &m, w, &wp))) return st;
  exec_arg a[] = {{DNNL_ARG_SRC, &m.src, x}, {DNNL_ARG_WEIGHTS, &e->wei_md, wp},
                  {DNNL_ARG_DST, &m.dst, y}};
  return execute(d, e->prim, a, 3, "convolution forward");
}

i8t_status nn_dnnl_conv_backward_data(i8t_workspace *ws, const i8t_conv_shape *s,
                                      const float *dy, const float *w, float *dx) {
  struct nn_dnnl *d;
  conv_mds m;
  cache_entry *e;
  const void *wp;
  i8t_status st = conv_entry(ws, PK_CONV_BWD_DATA, s, &d, &m, &e);
  if (st || (st = weights_in(d, e, &m, w, &wp))) return st;
  exec_arg a[] = {{DNNL_ARG_DIFF_DST, &m.dst, dy}, {DNNL_ARG_WEIGHTS, &e->wei_md, wp},
                  {DNNL_ARG_DIFF_SRC, &m.src, dx}};
  return execute(d, e->prim, a, 3, "convolution backward data");
}

i8t_status nn_dnnl_conv_backward_weights(i8t_workspace *ws, const i8t_conv_shape *s,
                                         const float *dy, const float *x, float *dw) {
  struct nn_dnnl *d;
  conv_mds m;
  cache_entry *e;
  i8t_status st = conv_entry(ws, PK_CONV_BWD_WEIGHTS, s, &d, &m, &e);
  if (st) return st;
  exec_arg a[] = {{DNNL_ARG_SRC, &m.src, x}, {DNNL_ARG_DIFF_DST, &m.dst, dy},
                  {DNNL_ARG_DIFF_WEIGHTS, &e->wei_md, e->reorder ? e->wbuf : (void *)dw}};
  if ((st = execute(d, e->prim, a, 3, "convolution backward weights")) || !e->reorder) return st;
  exec_arg r[] = {{DNNL_ARG_SRC, &e->wei_md, e->wbuf}, {DNNL_ARG_DST, &m.wei, dw}};
  return execute(d, e->reorder, r, 2, "weights reorder");
}

/* ------------------------------------------------------------------------ */
/* Inner product                                                            */
/* ------------------------------------------------------------------------ */

typedef struct fc_mds {
  dnnl_memory_desc_t src, wei, bias, dst;
} fc_mds;

static i8t_status fc_descs(int n, int in, int out, fc_mds *m) {
  dnnl_dims_t src = {n, in}, wei = {out, in}, bias = {out}, dst = {n, out};
  DNNL_TRY(dnnl_memory_desc_init_by_tag(&m->src, 2, src, dnnl_f32, dnnl_ab), "fc src md");
  DNNL_TRY(dnnl_memory_desc_init_by_tag(&m->wei, 2, wei, dnnl_f32, dnnl_ab), "fc weights md");
  DNNL_TRY(dnnl_memory_desc_init_by_tag(&m->bias, 1, bias, dnnl_f32, dnnl_a), "fc bias md");
  DNNL_TRY(dnnl_memory_desc_init_by_tag(&m->dst, 2, dst, dnnl_f32, dnnl_ab), "fc dst md");
  return I8T_OK;
}

static i8t_status fc_primitive(i8t_workspace *ws, int kind, int n, int in, int out,
                               struct nn_dnnl **dout, fc_mds *m, dnnl_primitive_t *prim) {
  struct nn_dnnl *d;
  i8t_status st = get_dnnl(ws, &d);
  if (st || (st = fc_descs(n, in, out, m))) return st;
  *dout = d;
  int64_t key[KEY_LEN] = {kind, n, in, out};
  cache_entry *hit = cache_get(d, key), e;
  if (hit) {
    *prim = hit->prim;
    return I8T_OK;
  }
  int with_bias = kind == PK_FC_FWD_BIAS || kind == PK_FC_BWD_WEIGHTS_BIAS;
  dnnl_inner_product_desc_t fd, bd;
  DNNL_TRY(dnnl_inner_product_forward_desc_init(&fd, dnnl_forward_training, &m->src, &m->wei,
                                                with_bias ? &m->bias : NULL, &m->dst),
           "inner product forward descriptor");
  if (kind == PK_FC_FWD || kind == PK_FC_FWD_BIAS) {
    st = make_primitive(d, &fd, NULL, prim);
  } else {
    dnnl_primitive_desc_t hint;
    DNNL_TRY(dnnl_primitive_desc_create(&hint, &fd, NULL, d->engine, NULL), "fc hint");
    dnnl_status_t ds =
        kind == PK_FC_BWD_DATA
            ? dnnl_inner_product_backward_data_desc_init(&bd, &m->src, &m->wei, &m->dst)
            : dnnl_inner_product_backward_weights_desc_init(&bd, &m->src, &m->wei,
                                                            with_bias ? &m->bias : NULL, &m->dst);
    st = ds == dnnl_success ? make_primitive(d, &bd, hint, prim)
                            : dnnl_fail(ds, "inner product backward descriptor");
    dnnl_primitive_desc_destroy(hint);
  }
  if (!st) {
    memset(&e, 0, sizeof e);
    e.prim = *prim;
    cache_put(d, key, &e);
  }
  return st;
}

i8t_status nn_dnnl_fc_forward(i8t_workspace *ws, int n, int in, int out, const float *x,
                              const float *w, const float *bias, float *y) {
  struct nn_dnnl *d;
  fc_mds m;
  dnnl_primitive_t p;
  i8t_status st = fc_primitive(ws, bias ? PK_FC_FWD_BIAS : PK_FC_FWD, n, in, out, &d, &m, &p);
  if (st) return st;
  exec_arg a[] = {{DNNL_ARG_SRC, &m.src, x}, {DNNL_ARG_WEIGHTS, &m.wei, w},
                  {DNNL_ARG_DST, &m.dst, y}, {DNNL_ARG_BIAS, &m.bias, bias}};
  return execute(d, p, a, bias ? 4 : 3, "inner product forward");
}

i8t_status nn_dnnl_fc_backward_data(i8t_workspace *ws, int n, int in, int out,
                                    const float *dy, const float *w, float *dx) {
  struct nn_dnnl *d;
  fc_mds m;
  dnnl_primitive_t p;
  i8t_status st = fc_primitive(ws, PK_FC_BWD_DATA, n, in, out, &d, &m, &p);
  if (st) return st;
  exec_arg a[] = {{DNNL_ARG_DIFF_DST, &m.dst, dy}, {DNNL_ARG_WEIGHTS, &m.wei, w},
                  {DNNL_ARG_DIFF_SRC, &m.src, dx}};
  return execute(d, p, a, 3, "inner product backward data");
}

i8t_status nn_dnnl_fc_backward_weights(i8t_workspace *ws, int n, int in, int out,
                                       const float *dy, const float *x, float *dw,
                                       float *dbias) {
  struct nn_dnnl *d;
  fc_mds m;
  dnnl_primitive_t p;
  int kind = dbias ? PK_FC_BWD_WEIGHTS_BIAS : PK_FC_BWD_WEIGHTS;
  i8t_status st = fc_primitive(ws, kind, n, in, out, &d, &m, &p);
  if (st) return st;
  exec_arg a[] = {{DNNL_ARG_SRC, &m.src, x}, {DNNL_ARG_DIFF_DST, &m.dst, dy},
                  {DNNL_ARG_DIFF_WEIGHTS, &m.wei, dw}, {DNNL_ARG_DIFF_BIAS, &m.bias, dbias}};
  return execute(d, p, a, dbias ? 4 : 3, "inner product backward weights");
}

/* ------------------------------------------------------------------------ */
/* Batch normalisation: data [rows x channels] as N = rows, C, H = W = 1    */
/* ------------------------------------------------------------------------ */

typedef struct bn_mds {
  dnnl_memory_desc_t data, stat;
} bn_mds;

static i8t_status bn_descs(size_t rows, size_t channels, bn_mds *m) {
  dnnl_dims_t data = {(dnnl_dim_t)rows, (dnnl_dim_t)channels, 1, 1}, stat = {(dnnl_dim_t)channels};
  DNNL_TRY(dnnl_memory_desc_init_by_tag(&m->data, 4, data, dnnl_f32, dnnl_acdb), "bn data md");
  DNNL_TRY(dnnl_memory_desc_init_by_tag(&m->stat, 1, stat, dnnl_f32, dnnl_a), "bn stat md");
  return I8T_OK;
}

static unsigned bn_flags(int kind) {
  unsigned f = dnnl_use_scale | dnnl_use_shift;
  return kind == PK_BN_FWD_EVAL ? f | dnnl_use_global_stats : f;
}

static i8t_status bn_forward_desc(int kind, const bn_mds *m, float eps,
                                  dnnl_batch_normalization_desc_t *bd) {
  DNNL_TRY(dnnl_batch_normalization_forward_desc_init(
               bd, kind == PK_BN_FWD_EVAL ? dnnl_forward_inference : dnnl_forward_training,
               &m->data, eps, bn_flags(kind)),
           "batch norm forward descriptor");
  return I8T_OK;
}

static i8t_status bn_primitive(i8t_workspace *ws, int kind, size_t rows, size_t channels,
                               float eps, struct nn_dnnl **dout, bn_mds *m,
                               dnnl_primitive_t *prim) {
  struct nn_dnnl *d;
  i8t_status st = get_dnnl(ws, &d);
  if (st || (st = bn_descs(rows, channels, m))) return st;
  *dout = d;
  int32_t eps_bits;
  memcpy(&eps_bits, &eps, sizeof eps_bits);
  int64_t key[KEY_LEN] = {kind, (int64_t)rows, (int64_t)channels, eps_bits};
  cache_entry *hit = cache_get(d, key), e;
  if (hit) {
    *prim = hit->prim;
    return I8T_OK;
  }
  dnnl_batch_normalization_desc_t fd, bd;
  if (kind != PK_BN_BWD) {
    if (!(st = bn_forward_desc(kind, m, eps, &fd))) st = make_primitive(d, &fd, NULL, prim);
  } else if (!(st = bn_forward_desc(PK_BN_FWD_TRAIN, m, eps, &fd))) {
    dnnl_primitive_desc_t hint;
    DNNL_TRY(dnnl_primitive_desc_create(&hint, &fd, NULL, d->engine, NULL), "bn hint");
    dnnl_status_t ds = dnnl_batch_normalization_backward_desc_init(
        &bd, dnnl_backward, &m->data, &m->data, eps, bn_flags(PK_BN_FWD_TRAIN));
    st = ds == dnnl_success ? make_primitive(d, &bd, hint, prim)
                            : dnnl_fail(ds, "batch norm backward descriptor");
    dnnl_primitive_desc_destroy(hint);
  }
  if (!st) {
    memset(&e, 0, sizeof e);
    e.prim = *prim;
    cache_put(d, key, &e);
  }
  return st;
}

i8t_status nn_dnnl_bn_forward(i8t_workspace *ws, size_t rows, size_t channels, float eps,
                              int training, const float *x, const float *gamma,
                              const float *beta, float *mean, float *var, float *y) {
  struct nn_dnnl *d;
  bn_mds m;
  dnnl_primitive_t p;
  int kind = training ? PK_BN_FWD_TRAIN : PK_BN_FWD_EVAL;
  i8t_status st = bn_primitive(ws, kind, rows, channels, eps, &d, &m, &p);
  if (st) return st;
  exec_arg a[] = {{DNNL_ARG_SRC, &m.data, x},       {DNNL_ARG_DST, &m.data, y},
                  {DNNL_ARG_SCALE, &m.stat, gamma}, {DNNL_ARG_SHIFT, &m.stat, beta},
                  {DNNL_ARG_MEAN, &m.stat, mean},   {DNNL_ARG_VARIANCE, &m.stat, var}};
  return execute(d, p, a, 6, "batch norm forward");
}

i8t_status nn_dnnl_bn_backward(i8t_workspace *ws, size_t rows, size_t channels, float eps,
                               const float *x, const float *dy, const float *mean,
                               const float *var, const float *gamma, const float *beta, float *dx,
                               float *dgamma, float *dbeta) {
  struct nn_dnnl *d;
  bn_mds m;
  dnnl_primitive_t p;
  i8t_status st = bn_primitive(ws, PK_BN_BWD, rows, channels, eps, &d, &m, &p);
  if (st) return st;
  exec_arg a[] = {{DNNL_ARG_SRC, &m.data, x},          {DNNL_ARG_DIFF_DST, &m.data, dy},
                  {DNNL_ARG_MEAN, &m.stat, mean},      {DNNL_ARG_VARIANCE, &m.stat, var},
                  {DNNL_ARG_SCALE, &m.stat, gamma},    {DNNL_ARG_DIFF_SRC, &m.data, dx},
                  {DNNL_ARG_DIFF_SCALE, &m.stat, dgamma}, {DNNL_ARG_DIFF_SHIFT, &m.stat, dbeta},
                  {DNNL_ARG_SHIFT, &m.stat, beta}}; /* unused, but 2.6 insists on it */
  return execute(d, p, a, 9, "batch norm backward");
}

#else /* !I8T_HAVE_ONEDNN */

static i8t_status no_onednn(void) {
  return i8t_error(I8T_ERR_UNSUPPORTED, "this build has no oneDNN");
}

void nn_dnnl_destroy(struct nn_dnnl *d) { (void)d; }

i8t_status nn_dnnl_conv_forward(i8t_workspace *ws, const i8t_conv_shape *s, const float *x,
                                 const float *w, float *y) {
  (void)ws, (void)s, (void)x, (void)w, (void)y;
  return no_onednn();
}
i8t_status nn_dnnl_conv_backward_data(i8t_workspace *ws, const i8t_conv_shape *s,
                                      const float *dy, const float *w, float *dx) {
  (void)ws, (void)s, (void)dy, (void)w, (void)dx;
  return no_onednn();
}
i8t_status nn_dnnl_conv_backward_weights(i8t_workspace *ws, const i8t_conv_shape *s,
                                         const float *dy, const float *x, float *dw) {
  (void)ws, (void)s, (void)dy, (void)x, (void)dw;
  return no_onednn();
}
i8t_status nn_dnnl_fc_forward(i8t_workspace *ws, int n, int in, int out, const float *x,
                              const float *w, const float *bias, float *y) {
  (void)ws, (void)n, (void)in, (void)out, (void)x, (void)w, (void)bias, (void)y;
  return no_onednn();
}
i8t_status nn_dnnl_fc_backward_data(i8t_workspace *ws, int n, int in, int out,
                                    const float *dy, const float *w, float *dx) {
  (void)ws, (void)n, (void)in, (void)out, (void)dy, (void)w, (void)dx;
  return no_onednn();
}
i8t_status nn_dnnl_fc_backward_weights(i8t_workspace *ws, int n, int in, int out,
                                       const float *dy, const float *x, float *dw,
                                       float *dbias) {
  (void)ws, (void)n, (void)in, (void)out, (void)dy, (void)x, (void)dw, (void)dbias;
  return no_onednn();
}
i8t_status nn_dnnl_bn_forward(i8t_workspace *ws, size_t rows, size_t channels, float eps,
                              int training, const float *x, const float *gamma,
                              const float *beta, float *mean, float *var, float *y) {
  (void)ws, (void)rows, (void)channels, (void)eps, (void)training, (void)x, (void)gamma;
  (void)beta, (void)mean, (void)var, (void)y;
  return no_onednn();
}
i8t_status nn_dnnl_bn_backward(i8t_workspace *ws, size_t rows, size_t channels, float eps,
                               const float *x, const float *dy, const float *mean,
                               const float *var, const float *gamma, const float *beta, float *dx,
                               float *dgamma, float *dbeta) {
  (void)ws, (void)rows, (void)channels, (void)eps, (void)x, (void)dy, (void)mean, (void)var;
  (void)gamma, (void)beta, (void)dx, (void)dgamma, (void)dbeta;
  return no_onednn();
}

#endif
