/* The fp32 baseline passes: the same network in float32, convolution, batch
 * norm and inner product on oneDNN (or the portable fallback), Range BN
 * (when chosen) in the reference float formulas. Gradients of activations
 * accumulate in float buffers. */
#include <math.h>
#include <string.h>

#include "nn_model.h"

static int dnnl_bn(const i8t_model *m) {
  return m->norm.kind == I8T_NORM_STANDARD && nn_use_onednn(m->ws);
}

static size_t elems(const nn_tensor *t, size_t n) { return n * t->spatial * (size_t)t->c; }

/* ------------------------------------------------------------------------ */
/* Forward                                                                  */
/* ------------------------------------------------------------------------ */

static i8t_status bn_forward(i8t_model *m, nn_bn *bn, size_t n, int training) {
  const nn_conv *c = &m->conv[bn->conv];
  size_t C = (size_t)c->shape.out_c, rows = n * (size_t)c->oh * c->ow;
  const float eps = m->norm.eps;
  i8t_status st;
  if (dnnl_bn(m)) {
    if (!training)
      return nn_dnnl_bn_forward(m->ws, rows, C, eps, 0, c->pf, bn->gamma->w, bn->beta->w,
                                bn->running_mean, bn->running_var, bn->y);
    st = nn_dnnl_bn_forward(m->ws, rows, C, eps, 1, c->pf, bn->gamma->w, bn->beta->w, bn->mean,
                            bn->var, bn->y);
    if (st) return st;
    for (size_t k = 0; k < C; k++) bn->scale[k] = 1.0f / sqrtf(bn->var[k] + eps);
    nn_bn_update_running(m, bn, C, rows);
    return I8T_OK;
  }
  if (training) {
    st = i8t_norm_stats_f32(m->ws, &m->norm, c->pf, rows, C, bn->mean, bn->scale, bn->var);
    if (st) return st;
    nn_bn_update_running(m, bn, C, rows);
  } else {
    memcpy(bn->mean, bn->running_mean, C * sizeof(float));
    nn_bn_running_scale(m, bn, C, bn->scale);
  }
  return i8t_norm_forward_f32(m->ws, c->pf, rows, C, bn->mean, bn->scale, bn->gamma->w,
                              bn->beta->w, bn->y);
}

static i8t_status normact_forward(i8t_model *m, nn_normact *a, size_t n, int training) {
  const float *inputs[3];
  int ni = 0;
  for (int k = 0; k < a->nbn; k++) {
    i8t_status st = bn_forward(m, &a->bn[k], n, training);
    if (st) return st;
    inputs[ni++] = a->bn[k].y;
  }
  if (a->identity >= 0) inputs[ni++] = m->tensor[a->identity].f;
  nn_tensor *out = &m->tensor[a->out];
  return i8t_sum_act_forward_f32(m->ws, inputs, ni, a->relu, elems(out, n), out->f);
}

static i8t_status head_forward(i8t_model *m, size_t n) {
  nn_head *h = &m->head;
  const nn_tensor *in = &m->tensor[h->in];
  i8t_act_shape shape = {n, in->spatial, (size_t)h->features};
  i8t_status st = i8t_avgpool_forward_f32(m->ws, shape, in->f, h->feat);
  if (st) return st;
  return i8t_fc_forward_f32(m->ws, (int)n, h->features, h->classes, h->feat, h->w->w, h->b->w,
                            h->logits);
}

i8t_status nn_forward_fp32(i8t_model *m, const float *images, size_t n, int training) {
  i8t_status st = I8T_OK;
  double t0 = m->profile ? nn_now() : 0.0;
  for (int i = 0; i < m->nops && !st; i++) {
    const nn_op *op = &m->ops[i];
    if (op->kind == OP_INPUT) {
      nn_tensor *t = &m->tensor[0];
      st = i8t_images_to_f32(m->ws, images, (int)n, t->c, t->h, t->w, t->f);
    } else if (op->kind == OP_CONV) {
      nn_conv *c = &m->conv[op->index];
      i8t_conv_shape s = c->shape;
      s.batch = (int)n;
      st = i8t_conv2d_forward_f32(m->ws, &s, m->tensor[c->in].f, c->w->w, c->pf);
    } else if (op->kind == OP_NORMACT) {
      st = normact_forward(m, &m->norm_ops[op->index], n, training);
    } else if (op->kind == OP_POOL) {
      nn_pool *p = &m->pool[op->index];
      i8t_pool_shape s = p->shape;
      s.batch = (int)n;
      st = i8t_maxpool_forward_f32(m->ws, &s, m->tensor[p->in].f, m->tensor[p->out].f);
    } else {
      st = head_forward(m, n);
    }
    nn_prof(m, training ? &m->prof_op[i][0] : &m->prof_phase[1], &t0);
  }
  return st;
}

/* ------------------------------------------------------------------------ */
/* Backward                                                                 */
/* ------------------------------------------------------------------------ */

/* Where a consumer writes its contribution to t's gradient: t->g itself the
 * first time, else the scratch buffer, added by finish_grad. */
static float *grad_target(i8t_model *m, nn_tensor *t) {
  return t->g_written ? m->grad_tmp : t->g;
}

static void finish_grad(i8t_model *m, nn_tensor *t, size_t n) {
  if (t->g_written) {
    size_t e = elems(t, n);
    for (size_t i = 0; i < e; i++) t->g[i] += m->grad_tmp[i];
  }
  t->g_written = 1;
}

static i8t_status head_backward(i8t_model *m, size_t n) {
  nn_head *h = &m->head;
  nn_tensor *in = &m->tensor[h->in];
  i8t_status st = i8t_fc_backward_data_f32(m->ws, (int)n, h->features, h->classes, h->dlogits,
                                           h->w->w, h->dfeat);
  if (!st)
    st = i8t_fc_backward_weights_f32(m->ws, (int)n, h->features, h->classes, h->dlogits,
                                     h->feat, h->w->g, h->b->g);
  if (st) return st;
  i8t_act_shape shape = {n, in->spatial, (size_t)h->features};
  st = i8t_avgpool_backward_f32(m->ws, shape, h->dfeat, in->g, in->g_written);
  in->g_written = 1;
  return st;
}

static i8t_status normact_backward(i8t_model *m, nn_normact *a, size_t n) {
  nn_tensor *out = &m->tensor[a->out];
  size_t e = elems(out, n);
  if (!out->g_written) memset(out->g, 0, e * sizeof(float));
  const float *gpre = out->g;
  i8t_status st;
  if (a->relu) {
    if ((st = i8t_relu_backward_f32(m->ws, out->f, out->g, e, a->gpref))) return st;
    gpre = a->gpref;
  }
  if (a->identity >= 0) {
    nn_tensor *id = &m->tensor[a->identity];
    memcpy(grad_target(m, id), gpre, e * sizeof(float));
    finish_grad(m, id, n);
  }
  for (int k = 0; k < a->nbn; k++) {
    nn_bn *bn = &a->bn[k];
    nn_conv *c = &m->conv[bn->conv];
    size_t C = (size_t)c->shape.out_c, rows = n * (size_t)c->oh * c->ow;
    if (dnnl_bn(m))
      st = nn_dnnl_bn_backward(m->ws, rows, C, m->norm.eps, c->pf, gpre, bn->mean, bn->var,
                               bn->gamma->w, bn->beta->w, c->df, bn->gamma->g, bn->beta->g);
    else
      st = i8t_norm_backward_f32(m->ws, &m->norm, c->pf, rows, C, gpre, bn->mean, bn->scale,
                                 bn->gamma->w, c->df, bn->gamma->g, bn->beta->g);
    if (st) return st;
  }
  return I8T_OK;
}

static i8t_status conv_backward(i8t_model *m, nn_conv *c, size_t n) {
  nn_tensor *t = &m->tensor[c->in];
  i8t_conv_shape s = c->shape;
  s.batch = (int)n;
  i8t_status st;
  if (c->in != 0) {
    if ((st = i8t_conv2d_backward_data_f32(m->ws, &s, c->df, c->w->w, grad_target(m, t))))
      return st;
    finish_grad(m, t, n);
  }
  return i8t_conv2d_backward_weights_f32(m->ws, &s, c->df, t->f, c->w->g);
}

static i8t_status pool_backward(i8t_model *m, nn_pool *p, size_t n) {
  nn_tensor *in = &m->tensor[p->in], *out = &m->tensor[p->out];
  i8t_pool_shape s = p->shape;
  s.batch = (int)n;
  if (!out->g_written) memset(out->g, 0, elems(out, n) * sizeof(float));
  i8t_status st = i8t_maxpool_backward_f32(m->ws, &s, in->f, out->g, in->g, in->g_written);
  in->g_written = 1;
  return st;
}

i8t_status nn_backward_fp32(i8t_model *m, size_t n) {
  for (int i = 0; i < m->ntensor; i++) m->tensor[i].g_written = 0;
  i8t_status st = I8T_OK;
  double t0 = m->profile ? nn_now() : 0.0;
  for (int i = m->nops - 1; i >= 0 && !st; i--) {
    const nn_op *op = &m->ops[i];
    switch (op->kind) {
      case OP_INPUT: break;
      case OP_CONV: st = conv_backward(m, &m->conv[op->index], n); break;
      case OP_NORMACT: st = normact_backward(m, &m->norm_ops[op->index], n); break;
      case OP_POOL: st = pool_backward(m, &m->pool[op->index], n); break;
      case OP_HEAD: st = head_backward(m, n); break;
    }
    nn_prof(m, &m->prof_op[i][1], &t0);
  }
  return st;
}
