/* The int8 model passes (the paper's scheme): u8 activations between layers,
 * s8 weights re-quantized every step, every GEMM on the integer kernels,
 * Range BN on u8 statistics, s8 errors for the grad-input GEMMs and s16 (or
 * 8-bit) errors for the weight-gradient GEMMs. Stream roles (with the
 * operation's index and the step) key every stochastic rounding. */
#include <math.h>
#include <string.h>

#include "nn_model.h"

enum role {
  ROLE_INPUT = 1, ROLE_CONV_OUT, ROLE_ACT_OUT, ROLE_GPRE, ROLE_BN_S8, ROLE_BN_S16,
  ROLE_BN2_S8, ROLE_BN2_S16, ROLE_POOL, ROLE_FEAT, ROLE_HEAD_S8, ROLE_HEAD_S16,
};

static int per_channel(const i8t_model *m) { return m->cfg.weight_per_channel != 0; }

static i8t_rounding nearest(void) {
  i8t_rounding r = {0, 0, 0};
  return r;
}

/* Weight tensor [rows x len] -> s8, per tensor or per row. */
static i8t_status quantize_weights(const i8t_model *m, const float *w, size_t rows, size_t len,
                                   int8_t *q, float *scale) {
  if (per_channel(m)) return i8t_quantize_per_channel_s8(w, rows, len, nearest(), q, scale);
  i8t_qparams p;
  i8t_status st = i8t_quantize_auto_s8(w, rows * len, nearest(), q, &p);
  scale[0] = p.scale;
  return st;
}

/* Range of an activation quantizer: the batch's (training, with the running
 * update) or the running one (evaluation). */
static i8t_qparams activation_range(const float *smin, const float *smax, size_t n,
                                    float running[2], int training) {
  if (training) {
    float lo, hi;
    i8t_batch_range(smin, smax, n, &lo, &hi);
    i8t_running_range_update(running, lo, hi);
    return i8t_qparams_u8(lo, hi);
  }
  return i8t_qparams_u8(running[0], running[1]);
}

static int act_stochastic(const i8t_model *m, int training) {
  return training && m->cfg.act_stochastic;
}

/* ------------------------------------------------------------------------ */
/* Forward                                                                  */
/* ------------------------------------------------------------------------ */

static i8t_status input_forward(i8t_model *m, int op, const float *images, size_t n,
                                int training) {
  nn_tensor *t = &m->tensor[0];
  size_t size = t->spatial * (size_t)t->c;
  i8t_status st = i8t_images_sample_range(m->ws, images, n, size, m->in_smin, m->in_smax);
  if (st) return st;
  t->qp = activation_range(m->in_smin, m->in_smax, n, m->input_range, training);
  return i8t_images_to_u8(m->ws, images, (int)n, t->c, t->h, t->w, t->qp,
                          nn_model_stream(m, op, ROLE_INPUT, act_stochastic(m, training)), t->q);
}

static i8t_status conv_forward(i8t_model *m, int op, nn_conv *c, size_t n, int training) {
  const nn_tensor *t = &m->tensor[c->in];
  i8t_conv_shape s = c->shape;
  s.batch = (int)n;
  size_t co = (size_t)s.out_c, ncs = per_channel(m) ? co : 1;
  for (size_t k = 0; k < ncs; k++) c->col_scale[k] = t->qp.scale * c->wscale[k];
  const uint8_t zp = (uint8_t)t->qp.zero_point;
  i8t_rounding r = nn_model_stream(m, op, ROLE_CONV_OUT, act_stochastic(m, training));
  /* A convolution cheap enough to run twice (the stem): ranges first, then
   * the u8 output straight from the recomputed int32 blocks. */
  int twice = i8t_conv2d_forward_u8_fits(&s, c->col_scale, ncs);
  i8t_status st = I8T_OK;
  if (!twice || training) /* (evaluation uses the running range) */
    st = i8t_conv2d_forward_s8(m->ws, &s, t->q, zp, c->wq, twice ? NULL : c->y32, c->col_scale,
                               ncs, training ? c->smin : NULL, training ? c->smax : NULL);
  if (st) return st;
  c->pqp = activation_range(c->smin, c->smax, n, c->out_range, training);
  if (twice)
    return i8t_conv2d_forward_u8(m->ws, &s, t->q, zp, c->wq, c->col_scale, ncs, c->pqp, r, c->pq);
  return i8t_requantize_s32_u8(m->ws, c->y32, n * (size_t)c->oh * c->ow, co, c->col_scale, ncs,
                               c->pqp, r, c->pq);
}

/* The u8 terms of a normalisation op, folded with the current statistics. */
static int normact_terms(i8t_model *m, nn_normact *a, i8t_u8_term *terms) {
  int nt = 0;
  for (int k = 0; k < a->nbn; k++) {
    nn_bn *bn = &a->bn[k];
    nn_conv *c = &m->conv[bn->conv];
    i8t_norm_fold_u8((size_t)c->shape.out_c, c->pqp, bn->mean, bn->scale, bn->gamma->w,
                     bn->beta->w, bn->mul, bn->add);
    terms[nt++] = (i8t_u8_term){c->pq, bn->mul, bn->add};
  }
  if (a->identity >= 0) {
    const nn_tensor *id = &m->tensor[a->identity];
    i8t_identity_fold_u8((size_t)id->c, id->qp, a->id_mul, a->id_add);
    terms[nt++] = (i8t_u8_term){id->q, a->id_mul, a->id_add};
  }
  return nt;
}

/* A lone BN (no second term, no shortcut): its output range follows from
 * the per-sample extremes of its input, found with the statistics. */
static int range_from_extremes(const nn_normact *a) { return a->xmin != NULL; }

static i8t_status normact_forward(i8t_model *m, int op, nn_normact *a, size_t n, int training) {
  nn_tensor *out = &m->tensor[a->out];
  for (int k = 0; k < a->nbn; k++) {
    nn_bn *bn = &a->bn[k];
    nn_conv *c = &m->conv[bn->conv];
    size_t C = (size_t)c->shape.out_c, rows = n * (size_t)c->oh * c->ow;
    if (training) {
      i8t_act_shape sh = {n, (size_t)c->oh * c->ow, C};
      i8t_status st =
          range_from_extremes(a)
              ? i8t_norm_stats_samples_u8(m->ws, &m->norm, c->pq, c->pqp, sh, bn->mean,
                                          bn->scale, bn->var, a->xmin, a->xmax)
              : i8t_norm_stats_u8(m->ws, &m->norm, c->pq, c->pqp, rows, C, bn->mean, bn->scale,
                                  bn->var);
      if (st) return st;
      nn_bn_update_running(m, bn, C, rows);
    } else {
      memcpy(bn->mean, bn->running_mean, C * sizeof(float));
      nn_bn_running_scale(m, bn, C, bn->scale);
    }
  }
  i8t_u8_term terms[3];
  int nt = normact_terms(m, a, terms);
  i8t_act_shape shape = {n, out->spatial, (size_t)out->c};
  if (training && range_from_extremes(a)) {
    i8t_sum_act_range_from_extremes(terms[0].mul, terms[0].add, a->relu, shape, a->xmin,
                                    a->xmax, a->smin, a->smax);
    for (size_t i = 0; i < n; i++)
      if (!isfinite(a->smin[i]) || !isfinite(a->smax[i]))
        return i8t_error(I8T_ERR_NONFINITE, "%s: activation of sample %zu is not finite",
                         a->name, i);
  } else if (training) {
    i8t_status st = i8t_sum_act_range_u8(m->ws, terms, nt, a->relu, shape, a->smin, a->smax);
    if (st) return st;
  }
  out->qp = activation_range(a->smin, a->smax, n, a->out_range, training);
  i8t_rounding r = nn_model_stream(m, op, ROLE_ACT_OUT, act_stochastic(m, training));
  if (training && a->relu) /* keep relu' for the backward */
    return i8t_sum_act_forward_mask_u8(m->ws, terms, nt, shape, out->qp, r, out->q, a->mask);
  return i8t_sum_act_forward_u8(m->ws, terms, nt, a->relu, shape, out->qp, r, out->q);
}

static i8t_status pool_forward(i8t_model *m, nn_pool *p, size_t n) {
  const nn_tensor *in = &m->tensor[p->in];
  nn_tensor *out = &m->tensor[p->out];
  i8t_pool_shape s = p->shape;
  s.batch = (int)n;
  out->qp = in->qp; /* max commutes with the monotone quantizer */
  return i8t_maxpool_forward_u8(m->ws, &s, in->q, out->q);
}

static i8t_status head_forward(i8t_model *m, int op, size_t n, int training) {
  nn_head *h = &m->head;
  const nn_tensor *in = &m->tensor[h->in];
  size_t F = (size_t)h->features, K = (size_t)h->classes;
  i8t_act_shape shape = {n, in->spatial, F};
  i8t_status st = i8t_avgpool_forward_u8(m->ws, shape, in->q, in->qp, h->feat);
  if (st) return st;
  for (size_t i = 0; i < n && training; i++) {
    const float *f = h->feat + i * F;
    float lo = f[0], hi = f[0];
    for (size_t k = 1; k < F; k++) lo = f[k] < lo ? f[k] : lo, hi = f[k] > hi ? f[k] : hi;
    h->smin[i] = lo, h->smax[i] = hi;
  }
  h->fqp = activation_range(h->smin, h->smax, n, h->in_range, training);
  st = i8t_quantize_f32_u8(h->feat, n * F, h->fqp,
                           nn_model_stream(m, op, ROLE_FEAT, act_stochastic(m, training)), h->featq);
  if (st) return st;
  st = i8t_fc_forward_s8(m->ws, (int)n, (int)F, (int)K, h->featq, (uint8_t)h->fqp.zero_point,
                         h->wq, h->logit32);
  if (st) return st;
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < K; k++)
      h->logits[i * K + k] = h->fqp.scale * h->wscale[per_channel(m) ? k : 0] *
                                 (float)h->logit32[i * K + k] + h->b->w[k];
  return I8T_OK;
}

i8t_status nn_forward_int8(i8t_model *m, const float *images, size_t n, int training) {
  i8t_status st = I8T_OK;
  double tw = m->profile ? nn_now() : 0.0;
  for (int i = 0; i < m->nconv && !st; i++) {
    nn_conv *c = &m->conv[i];
    st = quantize_weights(m, c->w->w, (size_t)c->shape.out_c, i8t_conv_k(&c->shape), c->wq,
                          c->wscale);
  }
  if (!st)
    st = quantize_weights(m, m->head.w->w, (size_t)m->head.classes, (size_t)m->head.features,
                          m->head.wq, m->head.wscale);
  if (st) return i8t_error(st, "weights: %s (diverged?)", i8t_last_error());
  double t0 = m->profile ? nn_now() : 0.0;
  nn_prof(m, training ? &m->prof_phase[0] : &m->prof_phase[1], &tw);
  for (int i = 0; i < m->nops && !st; i++) {
    const nn_op *op = &m->ops[i];
    switch (op->kind) {
      case OP_INPUT: st = input_forward(m, i, images, n, training); break;
      case OP_CONV: st = conv_forward(m, i, &m->conv[op->index], n, training); break;
      case OP_NORMACT: st = normact_forward(m, i, &m->norm_ops[op->index], n, training); break;
      case OP_POOL: st = pool_forward(m, &m->pool[op->index], n); break;
      case OP_HEAD: st = head_forward(m, i, n, training); break;
    }
    nn_prof(m, training ? &m->prof_op[i][0] : &m->prof_phase[1], &t0);
  }
  return st;
}

/* ------------------------------------------------------------------------ */
/* Backward                                                                 */
/* ------------------------------------------------------------------------ */

static i8t_status push_source(nn_tensor *t, i8t_grad_src_kind kind, const void *data,
                              float scale) {
  if (t->nsrc == NN_MAX_SRC)
    return i8t_error(I8T_ERR_SHAPE, "model: an activation has more than %d consumers", NN_MAX_SRC);
  t->src[t->nsrc++] = (i8t_grad_src){kind, data, scale};
  return I8T_OK;
}

static i8t_status head_backward(i8t_model *m, int op, size_t n) {
  nn_head *h = &m->head;
  nn_tensor *in = &m->tensor[h->in];
  size_t F = (size_t)h->features, K = (size_t)h->classes, nk = n * K;
  const float *g = h->dlogits, *g_for_s8 = g;
  if (per_channel(m)) { /* grad input sums over classes with per-class weight scales */
    for (size_t i = 0; i < nk; i++) h->gscaled[i] = g[i] * h->wscale[i % K];
    g_for_s8 = h->gscaled;
  }
  i8t_qparams p8, p16;
  i8t_status st = i8t_quantize_auto_s8(g_for_s8, nk, nn_model_stream(m, op, ROLE_HEAD_S8, 1),
                                       h->g8, &p8);
  if (st) return st;
  i8t_rounding r16 = nn_model_stream(m, op, ROLE_HEAD_S16, 1);
  if (m->cfg.wgrad_bits == 16) {
    st = i8t_quantize_auto_s16(g, nk, r16, h->g16, &p16);
  } else { /* 8-bit ablation: the grad-input operand itself, when it is unscaled */
    const int8_t *src = h->g8;
    p16 = p8;
    if (per_channel(m)) {
      st = i8t_quantize_auto_s8(g, nk, r16, h->g8b, &p16);
      src = h->g8b;
    }
    for (size_t i = 0; i < nk; i++) h->g16[i] = src[i];
  }
  if (st) return st;
  if ((st = i8t_fc_backward_data_s8(m->ws, (int)n, (int)F, (int)K, h->g8, h->wq, h->dfeat32)))
    return st;
  float wsc = per_channel(m) ? 1.0f : h->wscale[0];
  if ((st = push_source(in, I8T_GRAD_S32_POOLED, h->dfeat32,
                        p8.scale * wsc / (float)in->spatial)))
    return st;
  if ((st = i8t_fc_backward_weights_s16(m->ws, (int)n, (int)F, (int)K, h->g16, h->featq,
                                        (uint8_t)h->fqp.zero_point, h->dw64)))
    return st;
  float s = p16.scale * h->fqp.scale;
  for (size_t i = 0; i < K * F; i++) h->w->g[i] = s * (float)h->dw64[i];
  for (size_t k = 0; k < K; k++) {
    float sum = 0.0f;
    for (size_t i = 0; i < n; i++) sum += g[i * K + k];
    h->b->g[k] = sum;
  }
  return I8T_OK;
}

static i8t_status pool_backward(i8t_model *m, int op, nn_pool *p, size_t n) {
  nn_tensor *in = &m->tensor[p->in], *out = &m->tensor[p->out];
  i8t_pool_shape s = p->shape;
  s.batch = (int)n;
  i8t_status st = i8t_maxpool_backward_u8(m->ws, &s, in->q, out->src, out->nsrc,
                                          nn_model_stream(m, op, ROLE_POOL, 1), p->dx32,
                                          &p->dx_scale);
  return st ? st : push_source(in, I8T_GRAD_S32, p->dx32, p->dx_scale);
}

static i8t_status normact_backward(i8t_model *m, int op, nn_normact *a, size_t n) {
  nn_tensor *out = &m->tensor[a->out];
  i8t_act_shape shape = {n, out->spatial, (size_t)out->c};
  const uint8_t *mask = a->relu && !out->gsum_ready ? a->mask : NULL;
  i8t_rounding r = nn_model_stream(m, op, ROLE_GPRE, 1);
  i8t_status st =
      out->gsum_ready
          ? i8t_sum_act_backward_mask_absmax_u8(m->ws, out->src, out->nsrc, mask, shape,
                                                out->gabs, r, a->gpre, &a->gpre_scale)
          : i8t_sum_act_backward_mask_u8(m->ws, out->src, out->nsrc, mask, shape, r, a->gpre,
                                         &a->gpre_scale);
  if (st) return st;
  if (a->identity >= 0 &&
      (st = push_source(&m->tensor[a->identity], I8T_GRAD_S8, a->gpre, a->gpre_scale)))
    return st;
  for (int k = 0; k < a->nbn; k++) {
    nn_bn *bn = &a->bn[k];
    nn_conv *c = &m->conv[bn->conv];
    i8t_grad_out go;
    memset(&go, 0, sizeof go);
    if (c->in != 0) { /* the first conv needs no input gradient */
      go.s8 = c->d8;
      go.s8_round = nn_model_stream(m, op, k ? ROLE_BN2_S8 : ROLE_BN_S8, 1);
      go.s8_col_scale = per_channel(m) ? c->wscale : NULL;
    }
    go.s16 = c->d16;
    go.s16_bits = m->cfg.wgrad_bits;
    go.s16_round = nn_model_stream(m, op, k ? ROLE_BN2_S16 : ROLE_BN_S16, 1);
    st = i8t_norm_backward_u8(m->ws, &m->norm, c->pq, c->pqp, n * (size_t)c->oh * c->ow,
                              (size_t)c->shape.out_c, a->gpre, a->gpre_scale, bn->mean,
                              bn->scale, bn->gamma->w, bn->gamma->g, bn->beta->g, &go);
    if (st) return st;
    c->d8_scale = go.s8_scale;
    c->d16_scale = go.s16_scale;
  }
  return I8T_OK;
}

/* Whether a conv's grad input is the last source of t's gradient, which a
 * normalisation op then sums, masks and quantizes in two passes: the conv
 * can then take the first pass's max |g| per block as it writes dx. */
static int completes_gradient(const nn_tensor *t) {
  if (t->producer < 0 || t->nsrc + 1 != t->consumers) return 0;
  for (int k = 0; k < t->nsrc; k++)
    if (t->src[k].kind == I8T_GRAD_F32) return 0; /* the fused kernels take none */
  return 1;
}

/* The input gradient's contribution (the conv is not the first layer). */
static i8t_status conv_grad_input(i8t_model *m, nn_conv *c, const i8t_conv_shape *s) {
  nn_tensor *t = &m->tensor[c->in];
  float wsc = per_channel(m) ? 1.0f : c->wscale[0], dx_scale = c->d8_scale * wsc;
  if (!completes_gradient(t)) {
    i8t_status st = i8t_conv2d_backward_data_s8(m->ws, s, c->d8, c->wq, c->dx32);
    return st ? st : push_source(t, I8T_GRAD_S32, c->dx32, dx_scale);
  }
  /* The masked sum of all sources replaces dx32, with its max |g|: the
   * normalisation op's backward then reads one float source, once. */
  const nn_normact *p = &m->norm_ops[t->producer];
  i8t_grad_sum_ref sum = {t->src, t->nsrc, dx_scale, p->relu ? p->mask : NULL, (float *)c->dx32};
  i8t_status st = i8t_conv2d_backward_data_absmax_s8(m->ws, s, c->d8, c->wq, c->dx32, &sum,
                                                     &t->gabs);
  if (st) return st;
  t->nsrc = 0;
  t->gsum_ready = 1;
  return push_source(t, I8T_GRAD_F32, c->dx32, 1.0f);
}

static i8t_status conv_backward(i8t_model *m, nn_conv *c, size_t n) {
  nn_tensor *t = &m->tensor[c->in];
  i8t_conv_shape s = c->shape;
  s.batch = (int)n;
  i8t_status st;
  if (c->in != 0 && (st = conv_grad_input(m, c, &s))) return st;
  if ((st = i8t_conv2d_backward_weights_s16(m->ws, &s, c->d16, t->q, (uint8_t)t->qp.zero_point,
                                            c->dw64)))
    return st;
  float scale = c->d16_scale * t->qp.scale;
  for (size_t i = 0; i < c->w->size; i++) c->w->g[i] = scale * (float)c->dw64[i];
  return I8T_OK;
}

i8t_status nn_backward_int8(i8t_model *m, size_t n) {
  for (int i = 0; i < m->ntensor; i++) m->tensor[i].nsrc = 0, m->tensor[i].gsum_ready = 0;
  i8t_status st = I8T_OK;
  double t0 = m->profile ? nn_now() : 0.0;
  for (int i = m->nops - 1; i >= 0 && !st; i--) {
    const nn_op *op = &m->ops[i];
    switch (op->kind) {
      case OP_INPUT: break;
      case OP_CONV: st = conv_backward(m, &m->conv[op->index], n); break;
      case OP_NORMACT: st = normact_backward(m, i, &m->norm_ops[op->index], n); break;
      case OP_POOL: st = pool_backward(m, i, &m->pool[op->index], n); break;
      case OP_HEAD: st = head_backward(m, i, n); break;
    }
    nn_prof(m, &m->prof_op[i][1], &t0);
  }
  return st;
}
