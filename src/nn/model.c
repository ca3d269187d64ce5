/* Models: configuration presets, building the network (ResNet 6n+2, plain
 * CNN) with the reference initialisation, per-batch buffers grown on demand,
 * the state tensors, and one call per training step / evaluation batch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include "nn_model.h"
#include "rng.h"

/* ------------------------------------------------------------------------ */
/* Configuration                                                            */
/* ------------------------------------------------------------------------ */

static int parse_depth(const char *s, int *depth) {
  if (!*s) return 0;
  char *end;
  long d = strtol(s, &end, 10);
  if (*end || d <= 0 || d > 1000) return -1;
  *depth = (int)d;
  return 1;
}

i8t_status i8t_model_config_preset(const char *name, int in_channels, int in_height,
                                   int in_width, int num_classes, i8t_model_config *cfg) {
  if (!cfg) return i8t_error(I8T_ERR_INVALID_ARG, "model preset: NULL config");
  if (!name) name = "resnet8";
  memset(cfg, 0, sizeof *cfg);
  int depth = 0, r;
  if (!strncmp(name, "resnet", 6)) {
    cfg->arch = "resnet";
    depth = 8;
    r = parse_depth(name + 6, &depth);
  } else if (!strncmp(name, "cnn", 3)) {
    cfg->arch = "cnn";
    depth = 4;
    r = parse_depth(name + 3, &depth);
  } else {
    r = -1;
  }
  if (r < 0 || (!strcmp(cfg->arch, "resnet") && (depth < 8 || (depth - 2) % 6)))
    return i8t_error(I8T_ERR_INVALID_ARG,
                     "unknown model '%s' (resnet8, resnet14, resnet20, resnet<6n+2>, cnn, "
                     "cnn<depth>)", name);
  cfg->depth = depth;
  cfg->width = 16;
  cfg->in_channels = in_channels;
  cfg->in_height = in_height;
  cfg->in_width = in_width;
  cfg->num_classes = num_classes;
  cfg->precision = I8T_PRECISION_INT8;
  cfg->norm = I8T_NORM_DEFAULT;
  cfg->wgrad_bits = 16;
  cfg->act_stochastic = 0;
  cfg->momentum = 0.9f;
  cfg->weight_decay = 5e-4f;
  cfg->weight_per_channel = 0;
  cfg->range_bn_paper = 0;
  return I8T_OK;
}

static i8t_status check_config(const i8t_model_config *c) {
  const char *arch = c->arch ? c->arch : "resnet";
  if (strcmp(arch, "resnet") && strcmp(arch, "cnn"))
    return i8t_error(I8T_ERR_INVALID_ARG, "model: unknown arch '%s' (resnet or cnn)", arch);
  if (!strcmp(arch, "resnet") && (c->depth < 8 || (c->depth - 2) % 6))
    return i8t_error(I8T_ERR_INVALID_ARG, "model: resnet depth %d is not 6n+2 >= 8", c->depth);
  if (!strcmp(arch, "cnn") && (c->depth < 1 || c->depth > 60))
    return i8t_error(I8T_ERR_INVALID_ARG, "model: cnn depth %d not in [1, 60]", c->depth);
  if (c->width < 1 || c->width > 1024)
    return i8t_error(I8T_ERR_INVALID_ARG, "model: width %d not in [1, 1024]", c->width);
  if (c->in_channels < 1 || c->in_channels > 64 || c->in_height < 4 || c->in_width < 4 ||
      c->in_height > 4096 || c->in_width > 4096)
    return i8t_error(I8T_ERR_SHAPE, "model: input %dx%dx%d not supported", c->in_channels,
                     c->in_height, c->in_width);
  if (c->num_classes < 2 || c->num_classes > 256)
    return i8t_error(I8T_ERR_INVALID_ARG, "model: %d classes (2..256: labels are bytes)",
                     c->num_classes);
  if (c->precision != I8T_PRECISION_INT8 && c->precision != I8T_PRECISION_FP32)
    return i8t_error(I8T_ERR_INVALID_ARG, "model: unknown precision %d", (int)c->precision);
  if (c->norm != I8T_NORM_DEFAULT && c->norm != I8T_NORM_RANGE && c->norm != I8T_NORM_STANDARD)
    return i8t_error(I8T_ERR_INVALID_ARG, "model: unknown norm %d", (int)c->norm);
  if (c->wgrad_bits != 8 && c->wgrad_bits != 16)
    return i8t_error(I8T_ERR_INVALID_ARG, "model: wgrad_bits %d (8 or 16)", c->wgrad_bits);
  if (!(c->momentum >= 0.0f && c->momentum < 1.0f) || !(c->weight_decay >= 0.0f))
    return i8t_error(I8T_ERR_INVALID_ARG, "model: momentum %g / weight decay %g out of range",
                     (double)c->momentum, (double)c->weight_decay);
  return I8T_OK;
}

/* ------------------------------------------------------------------------ */
/* Allocation helpers                                                       */
/* ------------------------------------------------------------------------ */

static void *own(i8t_model *m, size_t bytes) {
  if (m->nowned == m->cap_owned) {
    size_t cap = m->cap_owned ? 2 * m->cap_owned : 64;
    void **o = realloc(m->owned, cap * sizeof *o);
    if (!o) return NULL;
    m->owned = o;
    m->cap_owned = cap;
  }
  void *p = i8t_aligned_alloc(bytes ? bytes : 1);
  if (p) {
    memset(p, 0, bytes ? bytes : 1);
    m->owned[m->nowned++] = p;
  }
  return p;
}

/* Registers a per-batch buffer (allocated by reserve_batch). */
static int batch_buf(i8t_model *m, void *ptr_to_ptr, size_t bytes_per_sample) {
  if (m->nbufs == m->cap_bufs) {
    size_t cap = m->cap_bufs ? 2 * m->cap_bufs : 64;
    nn_batch_buf *b = realloc(m->bufs, cap * sizeof *b);
    if (!b) return -1;
    m->bufs = b;
    m->cap_bufs = cap;
  }
  m->bufs[m->nbufs++] = (nn_batch_buf){ptr_to_ptr, bytes_per_sample};
  return 0;
}

static void free_batch_bufs(i8t_model *m) {
  for (size_t i = 0; i < m->nbufs; i++) {
    i8t_aligned_free(*m->bufs[i].ptr);
    *m->bufs[i].ptr = NULL;
  }
  m->batch_alloc = 0;
}

/* Grows every per-batch buffer to n samples (never shrinks). */
static i8t_status reserve_batch(i8t_model *m, size_t n) {
  if (n <= m->batch_alloc) return I8T_OK;
  free_batch_bufs(m);
  for (size_t i = 0; i < m->nbufs; i++) {
    size_t bytes = m->bufs[i].bytes_per_sample * n;
    *m->bufs[i].ptr = i8t_aligned_alloc(bytes);
    if (!*m->bufs[i].ptr) {
      free_batch_bufs(m);
      return i8t_error(I8T_ERR_NO_MEMORY, "model buffers for a batch of %zu", n);
    }
    memset(*m->bufs[i].ptr, 0, bytes);
  }
  m->batch_alloc = n;
  return I8T_OK;
}

/* ------------------------------------------------------------------------ */
/* Initialisation: a seeded Gaussian stream                                 */
/* ------------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static double uniform01(uint64_t *s) { return ((double)(splitmix64(s) >> 11) + 0.5) / 9007199254740992.0; }

static void fill_gaussian(float *w, size_t n, double std, uint64_t *s) {
  for (size_t i = 0; i < n; i += 2) {
    double u1 = uniform01(s), u2 = uniform01(s), r = sqrt(-2.0 * log(u1));
    w[i] = (float)(std * r * cos(2.0 * M_PI * u2));
    if (i + 1 < n) w[i + 1] = (float)(std * r * sin(2.0 * M_PI * u2));
  }
}

/* ------------------------------------------------------------------------ */
/* Building the graph                                                       */
/* ------------------------------------------------------------------------ */

typedef struct builder {
  i8t_model *m;
  uint64_t rng;
  i8t_status st;
} builder;

static int fail(builder *b, i8t_status st) {
  if (!b->st) b->st = st;
  return -1;
}

static int int8_mode(const i8t_model *m) { return m->cfg.precision == I8T_PRECISION_INT8; }

static nn_param *add_param(builder *b, const char *name, size_t size, int decay) {
  i8t_model *m = b->m;
  if (m->nparam == NN_MAX_PARAM) {
    fail(b, i8t_error(I8T_ERR_SHAPE, "model: too many parameters"));
    return NULL;
  }
  nn_param *p = &m->param[m->nparam];
  snprintf(p->name, sizeof p->name, "%s", name);
  p->size = size;
  p->decay = decay;
  p->w = own(m, size * sizeof(float));
  p->v = own(m, size * sizeof(float));
  p->g = own(m, size * sizeof(float));
  if (!p->w || !p->v || !p->g) {
    fail(b, i8t_error(I8T_ERR_NO_MEMORY, "model parameter %s", name));
    return NULL;
  }
  m->nparam++;
  return p;
}

static void add_op(builder *b, nn_op_kind kind, int index) {
  if (b->m->nops == NN_MAX_OPS) {
    fail(b, i8t_error(I8T_ERR_SHAPE, "model: too many operations"));
    return;
  }
  b->m->ops[b->m->nops++] = (nn_op){kind, index};
}

static int add_tensor(builder *b, int h, int w, int c) {
  i8t_model *m = b->m;
  if (m->ntensor == NN_MAX_TENSOR) return fail(b, i8t_error(I8T_ERR_SHAPE, "model: too many tensors"));
  nn_tensor *t = &m->tensor[m->ntensor];
  t->h = h, t->w = w, t->c = c;
  t->spatial = (size_t)h * w;
  size_t e = t->spatial * (size_t)c;
  int bad = int8_mode(m) ? batch_buf(m, &t->q, e)
                         : batch_buf(m, &t->f, 4 * e) | batch_buf(m, &t->g, 4 * e);
  if (bad) return fail(b, i8t_error(I8T_ERR_NO_MEMORY, "model tensors"));
  return m->ntensor++;
}

static int add_conv(builder *b, const char *name, int in, int out_c, int k, int stride, int pad) {
  i8t_model *m = b->m;
  if (b->st) return -1;
  if (m->nconv == NN_MAX_CONV) return fail(b, i8t_error(I8T_ERR_SHAPE, "model: too many convs"));
  nn_tensor *t = &m->tensor[in];
  nn_conv *c = &m->conv[m->nconv];
  snprintf(c->name, sizeof c->name, "%s", name);
  c->in = in;
  c->shape = (i8t_conv_shape){1, t->h, t->w, t->c, out_c, k, stride, pad};
  i8t_status st = i8t_conv_check(&c->shape);
  if (st) return fail(b, st);
  c->oh = i8t_conv_out_h(&c->shape);
  c->ow = i8t_conv_out_w(&c->shape);
  size_t K = i8t_conv_k(&c->shape), co = (size_t)out_c, o = (size_t)c->oh * c->ow * co;
  size_t in_e = t->spatial * (size_t)t->c;
  char pname[NN_NAME];
  snprintf(pname, sizeof pname, "%s.weight", name);
  if (!(c->w = add_param(b, pname, co * K, 1))) return -1;
  fill_gaussian(c->w->w, co * K, sqrt(2.0 / ((double)k * k * out_c)), &b->rng);
  int bad = 0;
  if (int8_mode(m)) {
    bad |= !(c->wq = own(m, co * K)) || !(c->wscale = own(m, co * 4)) ||
           !(c->col_scale = own(m, co * 4)) || !(c->dw64 = own(m, co * K * 8));
    bad |= batch_buf(m, &c->y32, 4 * o) | batch_buf(m, &c->pq, o) | batch_buf(m, &c->d8, o) |
           batch_buf(m, &c->d16, 2 * o) | batch_buf(m, &c->smin, 4) | batch_buf(m, &c->smax, 4);
    if (in != 0) bad |= batch_buf(m, &c->dx32, 4 * in_e);
  } else {
    bad |= batch_buf(m, &c->pf, 4 * o) | batch_buf(m, &c->df, 4 * o);
  }
  if (bad) return fail(b, i8t_error(I8T_ERR_NO_MEMORY, "model conv %s", name));
  add_op(b, OP_CONV, m->nconv);
  return m->nconv++;
}

static int init_bn(builder *b, nn_bn *bn, const char *name, int conv, float gamma0) {
  i8t_model *m = b->m;
  size_t C = (size_t)m->conv[conv].shape.out_c;
  size_t o = (size_t)m->conv[conv].oh * m->conv[conv].ow * C;
  char pname[NN_NAME];
  snprintf(bn->name, sizeof bn->name, "%s", name);
  bn->conv = conv;
  snprintf(pname, sizeof pname, "%s.gamma", name);
  if (!(bn->gamma = add_param(b, pname, C, 0))) return -1;
  snprintf(pname, sizeof pname, "%s.beta", name);
  if (!(bn->beta = add_param(b, pname, C, 0))) return -1;
  for (size_t c = 0; c < C; c++) bn->gamma->w[c] = gamma0;
  float *f = own(m, 7 * C * sizeof(float));
  if (!f) return fail(b, i8t_error(I8T_ERR_NO_MEMORY, "model bn %s", name));
  bn->running_mean = f, bn->running_var = f + C, bn->mean = f + 2 * C, bn->scale = f + 3 * C;
  bn->var = f + 4 * C, bn->mul = f + 5 * C, bn->add = f + 6 * C;
  for (size_t c = 0; c < C; c++) bn->running_var[c] = 1.0f; /* variance 1 / scale 1 */
  if (!int8_mode(m) && batch_buf(m, &bn->y, 4 * o))
    return fail(b, i8t_error(I8T_ERR_NO_MEMORY, "model bn %s", name));
  return 0;
}

/* out = relu?(bn(conv0) [+ bn(conv1)] [+ identity]); gamma0[i]: initial gamma. */
static int add_normact(builder *b, const char *name, const char *const *bn_names,
                       const int *convs, const float *gamma0, int nbn, int identity, int relu) {
  i8t_model *m = b->m;
  if (b->st) return -1;
  if (m->nnorm == NN_MAX_NORM) return fail(b, i8t_error(I8T_ERR_SHAPE, "model: too many BNs"));
  nn_normact *a = &m->norm_ops[m->nnorm];
  const nn_conv *c0 = &m->conv[convs[0]];
  snprintf(a->name, sizeof a->name, "%s", name);
  a->nbn = nbn;
  a->identity = identity;
  a->relu = relu;
  for (int i = 0; i < nbn; i++)
    if (init_bn(b, &a->bn[i], bn_names[i], convs[i], gamma0[i])) return -1;
  if ((a->out = add_tensor(b, c0->oh, c0->ow, c0->shape.out_c)) < 0) return -1;
  size_t C = (size_t)c0->shape.out_c, o = (size_t)c0->oh * c0->ow * C;
  int bad = 0;
  if (int8_mode(m)) {
    bad |= !(a->id_mul = own(m, C * 4)) || !(a->id_add = own(m, C * 4));
    bad |= batch_buf(m, &a->gpre, o) | batch_buf(m, &a->smin, 4) | batch_buf(m, &a->smax, 4);
    if (relu) bad |= batch_buf(m, &a->mask, o);
    if (nbn == 1 && identity < 0) bad |= batch_buf(m, &a->xmin, C) | batch_buf(m, &a->xmax, C);
  } else {
    bad |= batch_buf(m, &a->gpref, 4 * o);
  }
  if (bad) return fail(b, i8t_error(I8T_ERR_NO_MEMORY, "model %s", name));
  add_op(b, OP_NORMACT, m->nnorm);
  m->nnorm++;
  return a->out;
}

/* conv + BN + ReLU; returns the activation tensor. */
static int conv_bn_relu(builder *b, const char *conv_name, const char *bn_name, int in,
                        int out_c, int k, int stride, int pad) {
  int c = add_conv(b, conv_name, in, out_c, k, stride, pad);
  if (c < 0) return -1;
  const char *names[1] = {bn_name};
  float g[1] = {1.0f};
  return add_normact(b, bn_name, names, &c, g, 1, -1, 1);
}

static int add_pool(builder *b, const char *name, int in, int k, int stride) {
  i8t_model *m = b->m;
  if (b->st) return -1;
  if (m->npool == NN_MAX_POOL) return fail(b, i8t_error(I8T_ERR_SHAPE, "model: too many pools"));
  nn_tensor *t = &m->tensor[in];
  nn_pool *p = &m->pool[m->npool];
  snprintf(p->name, sizeof p->name, "%s", name);
  p->shape = (i8t_pool_shape){1, t->h, t->w, t->c, k, stride};
  p->in = in;
  if ((p->out = add_tensor(b, i8t_pool_out_h(&p->shape), i8t_pool_out_w(&p->shape), t->c)) < 0)
    return -1;
  if (int8_mode(m) && batch_buf(m, &p->dx32, 4 * t->spatial * (size_t)t->c))
    return fail(b, i8t_error(I8T_ERR_NO_MEMORY, "model pool"));
  add_op(b, OP_POOL, m->npool);
  m->npool++;
  return p->out;
}

static void add_head(builder *b, int in) {
  i8t_model *m = b->m;
  if (b->st) return;
  nn_head *h = &m->head;
  size_t F = (size_t)m->tensor[in].c, K = (size_t)m->cfg.num_classes;
  h->in = in;
  h->features = (int)F;
  h->classes = (int)K;
  if (!(h->w = add_param(b, "fc.weight", K * F, 1)) || !(h->b = add_param(b, "fc.bias", K, 0)))
    return;
  fill_gaussian(h->w->w, K * F, 0.01, &b->rng);
  int bad = batch_buf(m, &h->feat, 4 * F) | batch_buf(m, &h->logits, 4 * K) |
            batch_buf(m, &h->dlogits, 4 * K);
  if (int8_mode(m)) {
    bad |= !(h->wq = own(m, K * F)) || !(h->wscale = own(m, K * 4)) || !(h->dw64 = own(m, K * F * 8));
    bad |= batch_buf(m, &h->featq, F) | batch_buf(m, &h->g8, K) | batch_buf(m, &h->g8b, K) |
           batch_buf(m, &h->gscaled, 4 * K) |
           batch_buf(m, &h->g16, 2 * K) | batch_buf(m, &h->logit32, 4 * K) |
           batch_buf(m, &h->dfeat32, 4 * F) | batch_buf(m, &h->smin, 4) | batch_buf(m, &h->smax, 4);
  } else {
    bad |= batch_buf(m, &h->dfeat, 4 * F);
  }
  if (bad) fail(b, i8t_error(I8T_ERR_NO_MEMORY, "model head"));
  add_op(b, OP_HEAD, 0);
}

static int add_input(builder *b) {
  i8t_model *m = b->m;
  int t = add_tensor(b, m->cfg.in_height, m->cfg.in_width, m->cfg.in_channels);
  if (t >= 0 && int8_mode(m) && (batch_buf(m, &m->in_smin, 4) | batch_buf(m, &m->in_smax, 4)))
    return fail(b, i8t_error(I8T_ERR_NO_MEMORY, "model input"));
  add_op(b, OP_INPUT, 0);
  return t;
}

static void build_resnet(builder *b) {
  i8t_model *m = b->m;
  const i8t_model_config *c = &m->cfg;
  int blocks = (c->depth - 2) / 6;
  int t = add_input(b);
  t = conv_bn_relu(b, "conv1", "bn1", t, c->width, 3, 1, 1);
  for (int s = 0; s < 3 && !b->st; s++) {
    int width = c->width << s;
    for (int k = 0; k < blocks && !b->st; k++) {
      int stride = s > 0 && k == 0 ? 2 : 1;
      char p[32], n1[NN_NAME], n2[NN_NAME], n3[NN_NAME], n4[NN_NAME], n5[NN_NAME], n6[NN_NAME];
      snprintf(p, sizeof p, "stage%d.block%d", s + 1, k);
      snprintf(n1, sizeof n1, "%s.conv1", p);
      snprintf(n2, sizeof n2, "%s.bn1", p);
      snprintf(n3, sizeof n3, "%s.conv2", p);
      snprintf(n4, sizeof n4, "%s.bn2", p);
      snprintf(n5, sizeof n5, "%s.shortcut.conv", p);
      snprintf(n6, sizeof n6, "%s.shortcut.bn", p);
      int h = conv_bn_relu(b, n1, n2, t, width, 3, stride, 1);
      if (h < 0) return;
      int c2 = add_conv(b, n3, h, width, 3, 1, 1);
      if (c2 < 0) return;
      if (stride != 1 || m->tensor[t].c != width) {
        int sc = add_conv(b, n5, t, width, 1, stride, 0);
        if (sc < 0) return;
        const char *names[2] = {n4, n6};
        int convs[2] = {c2, sc};
        float g[2] = {0.0f, 1.0f};
        t = add_normact(b, p, names, convs, g, 2, -1, 1);
      } else {
        const char *names[1] = {n4};
        float g[1] = {0.0f};
        t = add_normact(b, p, names, &c2, g, 1, t, 1);
      }
    }
  }
  if (t >= 0) add_head(b, t);
}

static void build_cnn(builder *b) {
  i8t_model *m = b->m;
  const i8t_model_config *c = &m->cfg;
  int t = add_input(b), width = c->width, pools = 0;
  for (int i = 0; i < c->depth && t >= 0; i++) {
    char cn[NN_NAME], bn[NN_NAME];
    snprintf(cn, sizeof cn, "conv%d", i + 1);
    snprintf(bn, sizeof bn, "bn%d", i + 1);
    t = conv_bn_relu(b, cn, bn, t, width, 3, 1, 1);
    if (t >= 0 && i % 2 == 1 && i != c->depth - 1 && m->tensor[t].h >= 4 &&
        m->tensor[t].w >= 4 && width <= 512) {
      char pn[NN_NAME];
      snprintf(pn, sizeof pn, "pool%d", ++pools);
      t = add_pool(b, pn, t, 2, 2);
      width *= 2;
    }
  }
  if (t >= 0) add_head(b, t);
}

/* ------------------------------------------------------------------------ */
/* State tensors                                                            */
/* ------------------------------------------------------------------------ */

/* Each tensor's consumer count and producing normalisation op (the int8
 * backward fuses the gradient sum's first pass into its last source). */
static void link_tensors(i8t_model *m) {
  for (int i = 0; i < m->ntensor; i++) m->tensor[i].consumers = 0, m->tensor[i].producer = -1;
  for (int i = 0; i < m->nconv; i++) m->tensor[m->conv[i].in].consumers++;
  for (int i = 0; i < m->npool; i++) m->tensor[m->pool[i].in].consumers++;
  for (int i = 0; i < m->nnorm; i++) {
    const nn_normact *a = &m->norm_ops[i];
    if (a->identity >= 0) m->tensor[a->identity].consumers++;
    m->tensor[a->out].producer = i;
  }
  m->tensor[m->head.in].consumers++;
}

static i8t_status build_state(i8t_model *m) {
  size_t cap = 2 * (size_t)m->nparam + 2 * NN_MAX_NORM * 2 + NN_MAX_CONV + NN_MAX_NORM + 4;
  m->state = calloc(cap, sizeof *m->state);
  m->state_names = calloc(cap, sizeof *m->state_names);
  if (!m->state || !m->state_names) return i8t_error(I8T_ERR_NO_MEMORY, "model state");
  size_t n = 0;
#define ADD_STATE(ptr, count, ...)                                                          \
  do {                                                                                      \
    snprintf(m->state_names[n], sizeof m->state_names[n], __VA_ARGS__);                     \
    m->state[n] = (i8t_state_tensor){m->state_names[n], (ptr), (count)};                    \
    n++;                                                                                    \
  } while (0)
  for (int i = 0; i < m->nparam; i++) ADD_STATE(m->param[i].w, m->param[i].size, "%s", m->param[i].name);
  for (int i = 0; i < m->nparam; i++)
    ADD_STATE(m->param[i].v, m->param[i].size, "%s.momentum", m->param[i].name);
  int range = m->norm.kind == I8T_NORM_RANGE;
  for (int i = 0; i < m->nnorm; i++)
    for (int k = 0; k < m->norm_ops[i].nbn; k++) {
      nn_bn *bn = &m->norm_ops[i].bn[k];
      size_t C = (size_t)m->conv[bn->conv].shape.out_c;
      ADD_STATE(bn->running_mean, C, "%s.running_mean", bn->name);
      ADD_STATE(bn->running_var, C, "%s.%s", bn->name, range ? "running_scale" : "running_var");
    }
  if (int8_mode(m)) {
    ADD_STATE(m->input_range, 2, "input.range");
    for (int i = 0; i < m->nconv; i++) ADD_STATE(m->conv[i].out_range, 2, "%s.range", m->conv[i].name);
    for (int i = 0; i < m->nnorm; i++)
      ADD_STATE(m->norm_ops[i].out_range, 2, "%s.range", m->norm_ops[i].name);
    ADD_STATE(m->head.in_range, 2, "fc.input.range");
  }
  ADD_STATE(m->seed_state, 4, "rng.seed");
#undef ADD_STATE
  m->nstate = n;
  return I8T_OK;
}

static uint64_t stream_seed(const i8t_model *m) {
  uint64_t s = 0;
  for (int i = 0; i < 4; i++) {
    float f = m->seed_state[i];
    uint64_t part = f >= 0.0f && f <= 65535.0f ? (uint64_t)f : 0;
    s |= (part & 0xFFFF) << (16 * i);
  }
  return s;
}

i8t_rounding nn_model_stream(const i8t_model *m, int op, int role, int stochastic) {
  uint64_t z = stream_seed(m) ^ (0x9E3779B97F4A7C15ull * (uint64_t)(op * 64 + role + 1));
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  i8t_rounding r = {stochastic, z ^ (z >> 31), m->step << 32};
  return r;
}

/* ------------------------------------------------------------------------ */
/* Profiling (INT8TRAIN_PROFILE)                                            */
/* ------------------------------------------------------------------------ */

double nn_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static const char *op_name(const i8t_model *m, const nn_op *op) {
  switch (op->kind) {
    case OP_INPUT: return "input";
    case OP_CONV: return m->conv[op->index].name;
    case OP_NORMACT: return m->norm_ops[op->index].name;
    case OP_POOL: return m->pool[op->index].name;
    case OP_HEAD: return "avgpool+fc+loss";
  }
  return "?";
}

static void profile_report(const i8t_model *m) {
  double steps = m->prof_phase[3];
  if (!m->profile || steps < 1) return;
  double total = 0.0;
  fprintf(stderr, "int8train profile (%s, %.0f training steps), ms per step:\n",
          int8_mode(m) ? "int8" : "fp32", steps);
  fprintf(stderr, "  %-34s %9s %9s\n", "operation", "forward", "backward");
  for (int i = 0; i < m->nops; i++) {
    fprintf(stderr, "  %-34s %9.3f %9.3f\n", op_name(m, &m->ops[i]),
            1e3 * m->prof_op[i][0] / steps, 1e3 * m->prof_op[i][1] / steps);
    total += m->prof_op[i][0] + m->prof_op[i][1];
  }
  fprintf(stderr, "  %-34s %9.3f\n  %-34s %9.3f\n  %-34s %9.3f\n", "weight quantization",
          1e3 * m->prof_phase[0] / steps, "SGD update", 1e3 * m->prof_phase[2] / steps,
          "total", 1e3 * (total + m->prof_phase[0] + m->prof_phase[2]) / steps);
}

/* ------------------------------------------------------------------------ */
/* Create / destroy                                                         */
/* ------------------------------------------------------------------------ */

i8t_status i8t_model_create(i8t_context *ctx, const i8t_model_config *cfg, uint64_t seed,
                            i8t_model **out) {
  if (!cfg || !out) return i8t_error(I8T_ERR_INVALID_ARG, "model create: NULL argument");
  *out = NULL;
  i8t_status st = check_config(cfg);
  if (st) return st;
  i8t_model *m = calloc(1, sizeof *m);
  if (!m) return i8t_error(I8T_ERR_NO_MEMORY, "model");
  m->cfg = *cfg;
  snprintf(m->arch, sizeof m->arch, "%s", cfg->arch ? cfg->arch : "resnet");
  m->cfg.arch = m->arch;
  i8t_norm_kind kind = cfg->norm;
  if (kind == I8T_NORM_DEFAULT)
    kind = cfg->precision == I8T_PRECISION_INT8 ? I8T_NORM_RANGE : I8T_NORM_STANDARD;
  i8t_norm_config_init(&m->norm, kind);
  m->norm.paper = cfg->range_bn_paper != 0;
  m->ctx = ctx;
  m->profile = getenv("INT8TRAIN_PROFILE") != NULL;
  for (int i = 0; i < 4; i++) m->seed_state[i] = (float)((seed >> (16 * i)) & 0xFFFF);
  if ((st = i8t_workspace_create(ctx, &m->ws))) {
    free(m);
    return st;
  }
  builder b = {m, seed ^ 0x5DEECE66Dull, I8T_OK};
  if (!strcmp(m->arch, "cnn")) build_cnn(&b);
  else build_resnet(&b);
  st = b.st;
  if (!st) link_tensors(m);
  if (!st) st = build_state(m);
  if (!st && !int8_mode(m)) {
    size_t biggest = 0;
    for (int i = 0; i < m->ntensor; i++)
      biggest = I8T_MAX(biggest, m->tensor[i].spatial * (size_t)m->tensor[i].c);
    if (batch_buf(m, &m->grad_tmp, 4 * biggest))
      st = i8t_error(I8T_ERR_NO_MEMORY, "model gradient buffer");
  }
  if (st) {
    i8t_model_destroy(m);
    return st;
  }
  *out = m;
  return I8T_OK;
}

void i8t_model_destroy(i8t_model *m) {
  if (!m) return;
  profile_report(m);
  free_batch_bufs(m);
  free(m->bufs);
  for (size_t i = 0; i < m->nowned; i++) i8t_aligned_free(m->owned[i]);
  free(m->owned);
  free(m->state);
  free(m->state_names);
  i8t_workspace_destroy(m->ws);
  free(m);
}

const i8t_model_config *i8t_model_get_config(const i8t_model *m) { return m ? &m->cfg : NULL; }

/* ------------------------------------------------------------------------ */
/* Batch norm running statistics                                            */
/* ------------------------------------------------------------------------ */

void nn_bn_update_running(const i8t_model *m, nn_bn *bn, size_t C, size_t n) {
  if (n < 2) return; /* one value per channel: no statistics */
  if (m->norm.kind == I8T_NORM_STANDARD) {
    float unbias = (float)n / (float)(n - 1);
    for (size_t c = 0; c < C; c++) {
      bn->running_mean[c] = 0.9f * bn->running_mean[c] + 0.1f * bn->mean[c];
      bn->running_var[c] = 0.9f * bn->running_var[c] + 0.1f * bn->var[c] * unbias;
    }
  } else {
    for (size_t c = 0; c < C; c++) {
      bn->running_mean[c] = 0.1f * bn->running_mean[c] + 0.9f * bn->mean[c];
      bn->running_var[c] = 0.1f * bn->running_var[c] + 0.9f * bn->scale[c];
    }
  }
}

void nn_bn_running_scale(const i8t_model *m, const nn_bn *bn, size_t C, float *scale) {
  for (size_t c = 0; c < C; c++)
    scale[c] = m->norm.kind == I8T_NORM_STANDARD
                   ? 1.0f / sqrtf(bn->running_var[c] + m->norm.eps)
                   : bn->running_var[c];
}

/* ------------------------------------------------------------------------ */
/* Steps                                                                    */
/* ------------------------------------------------------------------------ */

static i8t_status check_batch(const i8t_model *m, const float *images, const uint8_t *labels,
                              size_t n, i8t_batch_result *result) {
  if (!m || !images || !labels || !result)
    return i8t_error(I8T_ERR_INVALID_ARG, "model step: NULL argument");
  if (n == 0) return i8t_error(I8T_ERR_SHAPE, "model step: empty batch");
  if (n > 65536) return i8t_error(I8T_ERR_SHAPE, "model step: batch %zu above 65536", n);
  for (size_t i = 0; i < n; i++)
    if (labels[i] >= m->cfg.num_classes)
      return i8t_error(I8T_ERR_INVALID_ARG, "label %u of sample %zu is not below %d classes",
                       labels[i], i, m->cfg.num_classes);
  return I8T_OK;
}

static i8t_status forward(i8t_model *m, const float *images, const uint8_t *labels, size_t n,
                          int training, i8t_batch_result *result) {
  i8t_status st = reserve_batch(m, n);
  if (st) return st;
  st = int8_mode(m) ? nn_forward_int8(m, images, n, training)
                    : nn_forward_fp32(m, images, n, training);
  if (st) return st;
  return i8t_softmax_xent(m->head.logits, labels, n, (size_t)m->head.classes, &result->loss,
                          &result->correct, training ? m->head.dlogits : NULL);
}

i8t_status i8t_model_train_step(i8t_model *m, const float *images, const uint8_t *labels,
                                size_t n, float lr, i8t_batch_result *result) {
  i8t_status st = check_batch(m, images, labels, n, result);
  if (st) return st;
  if (!isfinite(lr) || lr < 0.0f)
    return i8t_error(I8T_ERR_INVALID_ARG, "model step: learning rate %g", (double)lr);
  if ((st = forward(m, images, labels, n, 1, result))) return st;
  st = int8_mode(m) ? nn_backward_int8(m, n) : nn_backward_fp32(m, n);
  if (st) return st;
  double t0 = m->profile ? nn_now() : 0.0;
  for (int i = 0; i < m->nparam; i++) {
    nn_param *p = &m->param[i];
    i8t_sgd_update(p->w, p->g, p->v, p->size, lr, m->cfg.momentum,
                   p->decay ? m->cfg.weight_decay : 0.0f);
  }
  nn_prof(m, &m->prof_phase[2], &t0);
  m->prof_phase[3] += 1.0;
  m->step++;
  return I8T_OK;
}

i8t_status i8t_model_evaluate(i8t_model *m, const float *images, const uint8_t *labels,
                              size_t n, i8t_batch_result *result) {
  i8t_status st = check_batch(m, images, labels, n, result);
  if (st) return st;
  return forward(m, images, labels, n, 0, result);
}

size_t i8t_model_state_count(const i8t_model *m) { return m ? m->nstate : 0; }

i8t_status i8t_model_state(i8t_model *m, size_t i, i8t_state_tensor *out) {
  if (!m || !out) return i8t_error(I8T_ERR_INVALID_ARG, "model state: NULL argument");
  if (i >= m->nstate)
    return i8t_error(I8T_ERR_INVALID_ARG, "model state: index %zu of %zu", i, m->nstate);
  *out = m->state[i];
  return I8T_OK;
}

uint64_t i8t_model_step_count(const i8t_model *m) { return m ? m->step : 0; }
void i8t_model_set_step_count(i8t_model *m, uint64_t steps) {
  if (m) m->step = steps;
}

size_t i8t_model_parameter_count(const i8t_model *m) {
  size_t n = 0;
  for (int i = 0; m && i < m->nparam; i++) n += m->param[i].size;
  return n;
}

i8t_status i8t_model_set_fp32_backend(i8t_model *m, int backend) {
  if (!m) return i8t_error(I8T_ERR_INVALID_ARG, "model: NULL");
  return i8t_workspace_set_fp32_backend(m->ws, (i8t_fp32_backend)backend);
}

size_t i8t_model_describe(const i8t_model *m, char *buf, size_t size) {
  if (!m) return 0;
  size_t len = 0;
  char line[256];
#define EMIT(...)                                                        \
  do {                                                                   \
    int k_ = snprintf(line, sizeof line, __VA_ARGS__);                   \
    if (k_ > 0) {                                                        \
      if (buf && len < size) snprintf(buf + len, size - len, "%s", line); \
      len += (size_t)k_;                                                 \
    }                                                                    \
  } while (0)
  EMIT("%s depth %d width %d, %s, %s BN%s, %zu parameters\n", m->arch, m->cfg.depth,
       m->cfg.width, int8_mode(m) ? "int8" : "fp32",
       m->norm.kind == I8T_NORM_RANGE ? "range" : "standard",
       m->norm.kind == I8T_NORM_RANGE && m->norm.paper ? " (paper's single range)" : "",
       i8t_model_parameter_count(m));
  for (int i = 0; i < m->nops; i++) {
    const nn_op *op = &m->ops[i];
    if (op->kind == OP_INPUT) {
      const nn_tensor *t = &m->tensor[0];
      EMIT("input %dx%dx%d\n", t->c, t->h, t->w);
    } else if (op->kind == OP_CONV) {
      const nn_conv *c = &m->conv[op->index];
      EMIT("%s %dx%d %d->%d stride %d out %dx%d\n", c->name, c->shape.kernel, c->shape.kernel,
           c->shape.in_c, c->shape.out_c, c->shape.stride, c->oh, c->ow);
    } else if (op->kind == OP_NORMACT) {
      const nn_normact *a = &m->norm_ops[op->index];
      EMIT("%s: %s%s%s%s%s\n", a->name, a->bn[0].name, a->nbn > 1 ? " + " : "",
           a->nbn > 1 ? a->bn[1].name : "", a->identity >= 0 ? " + identity" : "",
           a->relu ? ", relu" : "");
    } else if (op->kind == OP_POOL) {
      const nn_pool *p = &m->pool[op->index];
      EMIT("%s max %dx%d stride %d\n", p->name, p->shape.kernel, p->shape.kernel, p->shape.stride);
    } else {
      EMIT("avgpool, fc %d->%d\n", m->head.features, m->head.classes);
    }
  }
#undef EMIT
  if (buf && size && len >= size) buf[size - 1] = '\0';
  return len;
}
