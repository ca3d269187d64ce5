/* Batch normalisation: Range BN (method.md section 3) and standard BN, in
 * fp32 (the reference formulas, checked against finite differences) and on
 * u8 inputs, where every reduction is an exact integer sum: the statistics
 * come from i8t_colwise_stats_u8, the backward sums from int32 per segment. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn_internal.h"


void i8t_norm_config_init(i8t_norm_config *cfg, i8t_norm_kind kind) {
  cfg->kind = kind == I8T_NORM_STANDARD ? I8T_NORM_STANDARD : I8T_NORM_RANGE;
  cfg->chunks = 16;
  cfg->paper = 0;
  cfg->eps = 1e-5f;
}

size_t i8t_range_bn_chunks(const i8t_norm_config *cfg, size_t n) {
  size_t k = cfg->paper || cfg->chunks < 1 ? 1 : (size_t)cfg->chunks;
  if (k > n / 2) k = n / 2; /* every chunk holds at least 2 values */
  return k < 1 ? 1 : k;
}

double i8t_range_bn_constant(const i8t_norm_config *cfg, size_t n, size_t chunks) {
  double m = (double)n / (double)(chunks ? chunks : 1);
  if (m < 2.0) m = 2.0; /* ln m > 0: no division by zero, no NaN */
  double c = 1.0 / sqrt(2.0 * log(m));
  /* The reference's factor 0.5 * 0.35 * (1 + sqrt(pi ln 4)) = 0.540208. */
  return cfg->paper ? c : 0.5 * 0.35 * (1.0 + sqrt(M_PI * log(4.0))) * c;
}

static i8t_status check_config(const i8t_norm_config *cfg) {
  if (!cfg) return i8t_error(I8T_ERR_INVALID_ARG, "norm: NULL config");
  if (cfg->kind != I8T_NORM_RANGE && cfg->kind != I8T_NORM_STANDARD)
    return i8t_error(I8T_ERR_INVALID_ARG, "norm: kind must be range or standard (got %d)",
                     (int)cfg->kind);
  if (!(cfg->eps > 0.0f)) return i8t_error(I8T_ERR_INVALID_ARG, "norm: eps must be > 0");
  return I8T_OK;
}

static i8t_status check_dims(size_t rows, size_t channels) {
  if (rows == 0 || channels == 0)
    return i8t_error(I8T_ERR_SHAPE, "norm: empty tensor (%zu rows, %zu channels)", rows, channels);
  if (rows > (size_t)1 << 24)
    return i8t_error(I8T_ERR_SHAPE, "norm: %zu rows exceed the supported 2^24", rows);
  return I8T_OK;
}

/* ------------------------------------------------------------------------ */
/* Segments: the unit of parallel work. A segment never crosses a chunk      */
/* boundary and holds at most 32768 rows (int32 sums of u8 x s8 products).  */
/* ------------------------------------------------------------------------ */

typedef struct segment {
  size_t lo, hi, chunk;
} segment;

typedef struct segments {
  segment *seg;
  size_t count, chunks;
} segments;

static size_t chunk_lo(size_t k, size_t rows, size_t chunks) {
  return (size_t)((uint64_t)k * rows / chunks);
}

static i8t_status segments_make(size_t rows, size_t chunks, segments *out) {
  size_t per = (rows + 31) / 32;
  per = per < 64 ? 64 : per > 32768 ? 32768 : per;
  size_t cap = rows / per + 2 * chunks + 2;
  out->seg = malloc(cap * sizeof *out->seg);
  if (!out->seg) return i8t_error(I8T_ERR_NO_MEMORY, "norm segments");
  out->count = 0;
  out->chunks = chunks;
  for (size_t k = 0; k < chunks; k++) {
    size_t hi = chunk_lo(k + 1, rows, chunks);
    for (size_t lo = chunk_lo(k, rows, chunks); lo < hi; lo += per)
      out->seg[out->count++] = (segment){lo, I8T_MIN(hi, lo + per), k};
  }
  return I8T_OK;
}

static size_t norm_chunks(const i8t_norm_config *cfg, size_t rows) {
  return cfg->kind == I8T_NORM_RANGE ? i8t_range_bn_chunks(cfg, rows) : 1;
}

/* ------------------------------------------------------------------------ */
/* fp32 statistics                                                          */
/* ------------------------------------------------------------------------ */

typedef struct f32_stats_job {
  const float *x;
  size_t C;
  const segments *sg;
  const double *mean; /* second pass of standard BN */
  double *sum;        /* [segments x C] */
  float *mn, *mx;     /* [segments x C] (Range BN) */
  int range;
} f32_stats_job;

static void f32_stats_task(void *arg, size_t t, int worker) {
  (void)worker;
  f32_stats_job *j = arg;
  const segment *s = &j->sg->seg[t];
  double *sum = j->sum + t * j->C;
  for (size_t c = 0; c < j->C; c++) sum[c] = 0.0;
  if (j->mean) { /* sum of squared deviations */
    for (size_t r = s->lo; r < s->hi; r++)
      for (size_t c = 0; c < j->C; c++) {
        double d = (double)j->x[r * j->C + c] - j->mean[c];
        sum[c] += d * d;
      }
    return;
  }
  float *mn = j->range ? j->mn + t * j->C : NULL, *mx = j->range ? j->mx + t * j->C : NULL;
  if (mn)
    for (size_t c = 0; c < j->C; c++) mn[c] = INFINITY, mx[c] = -INFINITY;
  for (size_t r = s->lo; r < s->hi; r++) {
    const float *xr = j->x + r * j->C;
    for (size_t c = 0; c < j->C; c++) sum[c] += xr[c];
    if (mn)
      for (size_t c = 0; c < j->C; c++) {
        mn[c] = xr[c] < mn[c] ? xr[c] : mn[c];
        mx[c] = xr[c] > mx[c] ? xr[c] : mx[c];
      }
  }
}

/* Range of every chunk (min over its segments, max over its segments). */
static void chunk_ranges_f32(const segments *sg, size_t C, const float *smn, const float *smx,
                             float *cmn, float *cmx) {
  for (size_t i = 0; i < sg->chunks * C; i++) cmn[i] = INFINITY, cmx[i] = -INFINITY;
  for (size_t t = 0; t < sg->count; t++) {
    float *mn = cmn + sg->seg[t].chunk * C, *mx = cmx + sg->seg[t].chunk * C;
    for (size_t c = 0; c < C; c++) {
      mn[c] = smn[t * C + c] < mn[c] ? smn[t * C + c] : mn[c];
      mx[c] = smx[t * C + c] > mx[c] ? smx[t * C + c] : mx[c];
    }
  }
}

i8t_status i8t_norm_stats_f32(i8t_workspace *ws, const i8t_norm_config *cfg, const float *x,
                              size_t rows, size_t channels, float *mean, float *scale,
                              float *var) {
  i8t_status st = check_config(cfg);
  if (st || (st = check_dims(rows, channels))) return st;
  if (!ws || !x || !mean || !scale) return i8t_error(I8T_ERR_INVALID_ARG, "norm stats: NULL");
  const size_t C = channels;
  int range = cfg->kind == I8T_NORM_RANGE;
  segments sg;
  if ((st = segments_make(rows, norm_chunks(cfg, rows), &sg))) return st;
  double *sum = malloc(sg.count * C * sizeof *sum), *mu = malloc(C * sizeof *mu);
  float *mm = malloc(2 * (sg.count + sg.chunks) * C * sizeof *mm);
  if (!sum || !mu || !mm) {
    st = i8t_error(I8T_ERR_NO_MEMORY, "norm stats");
    goto done;
  }
  f32_stats_job j = {x, C, &sg, NULL, sum, mm, mm + sg.count * C, range};
  i8t_parallel_for(ws->ctx, sg.count, f32_stats_task, &j);
  for (size_t c = 0; c < C; c++) mu[c] = 0.0;
  for (size_t t = 0; t < sg.count; t++)
    for (size_t c = 0; c < C; c++) mu[c] += sum[t * C + c];
  for (size_t c = 0; c < C; c++) mu[c] /= (double)rows, mean[c] = (float)mu[c];
  if (range) {
    float *cmn = mm + 2 * sg.count * C, *cmx = cmn + sg.chunks * C;
    chunk_ranges_f32(&sg, C, j.mn, j.mx, cmn, cmx);
    double cm = i8t_range_bn_constant(cfg, rows, sg.chunks);
    for (size_t c = 0; c < C; c++) {
      double r = 0.0;
      for (size_t k = 0; k < sg.chunks; k++) r += (double)cmx[k * C + c] - (double)cmn[k * C + c];
      r /= (double)sg.chunks;
      scale[c] = (float)(1.0 / (r * cm + cfg->eps));
      if (var) var[c] = 1.0f / (scale[c] * scale[c]);
    }
  } else {
    j.mean = mu;
    i8t_parallel_for(ws->ctx, sg.count, f32_stats_task, &j);
    for (size_t c = 0; c < C; c++) {
      double v = 0.0;
      for (size_t t = 0; t < sg.count; t++) v += sum[t * C + c];
      v /= (double)rows;
      scale[c] = (float)(1.0 / sqrt(v + cfg->eps));
      if (var) var[c] = (float)v;
    }
  }
  for (size_t c = 0; c < C; c++)
    if (!isfinite(mean[c]) || !isfinite(scale[c])) {
      st = i8t_error(I8T_ERR_NONFINITE, "norm stats: channel %zu is not finite", c);
      break;
    }
done:
  free(sg.seg);
  free(sum);
  free(mu);
  free(mm);
  return st;
}

i8t_status i8t_norm_forward_f32(i8t_workspace *ws, const float *x, size_t rows, size_t channels,
                                const float *mean, const float *scale, const float *gamma,
                                const float *beta, float *y) {
  (void)ws;
  if (!x || !mean || !scale || !gamma || !beta || !y)
    return i8t_error(I8T_ERR_INVALID_ARG, "norm forward: NULL argument");
  for (size_t r = 0; r < rows; r++)
    for (size_t c = 0; c < channels; c++)
      y[r * channels + c] = gamma[c] * (x[r * channels + c] - mean[c]) * scale[c] + beta[c];
  return I8T_OK;
}

/* ------------------------------------------------------------------------ */
/* fp32 backward (the reference formulas)                                   */
/* ------------------------------------------------------------------------ */

/* First position (row) of the min and max of every channel of every chunk;
 * strict comparisons keep the earliest of equal values. */
static void chunk_argext_f32(const float *x, size_t C, const segments *sg, size_t *amin,
                             size_t *amax) {
  for (size_t k = 0; k < sg->chunks; k++) {
    size_t lo = sg->seg[0].lo, hi = 0;
    int first = 1;
    for (size_t t = 0; t < sg->count; t++)
      if (sg->seg[t].chunk == k) {
        if (first) lo = sg->seg[t].lo, first = 0;
        hi = sg->seg[t].hi;
      }
    for (size_t c = 0; c < C; c++) {
      size_t imn = lo, imx = lo;
      for (size_t r = lo + 1; r < hi; r++) {
        if (x[r * C + c] < x[imn * C + c]) imn = r;
        if (x[r * C + c] > x[imx * C + c]) imx = r;
      }
      amin[k * C + c] = imn;
      amax[k * C + c] = imx;
    }
  }
}

i8t_status i8t_norm_backward_f32(i8t_workspace *ws, const i8t_norm_config *cfg, const float *x,
                                 size_t rows, size_t channels, const float *dy,
                                 const float *mean, const float *scale, const float *gamma,
                                 float *dx, float *dgamma, float *dbeta) {
  i8t_status st = check_config(cfg);
  if (st || (st = check_dims(rows, channels))) return st;
  if (!ws || !x || !dy || !mean || !scale || !gamma || !dx || !dgamma || !dbeta)
    return i8t_error(I8T_ERR_INVALID_ARG, "norm backward: NULL argument");
  const size_t C = channels;
  segments sg;
  if ((st = segments_make(rows, norm_chunks(cfg, rows), &sg))) return st;
  double *sums = calloc(2 * C, sizeof *sums);
  size_t *arg = malloc(2 * sg.chunks * C * sizeof *arg);
  if (!sums || !arg) {
    st = i8t_error(I8T_ERR_NO_MEMORY, "norm backward");
    goto done;
  }
  double *sg_sum = sums, *sgx = sums + C; /* sum dy, sum dy * (x - mu) */
  for (size_t r = 0; r < rows; r++)
    for (size_t c = 0; c < C; c++) {
      double g = dy[r * C + c];
      sg_sum[c] += g;
      sgx[c] += g * ((double)x[r * C + c] - mean[c]);
    }
  double cm = i8t_range_bn_constant(cfg, rows, sg.chunks);
  for (size_t c = 0; c < C; c++) {
    double s = scale[c], gs = (double)gamma[c] * s, gbar = sg_sum[c] / (double)rows;
    dbeta[c] = (float)sg_sum[c];
    dgamma[c] = (float)(sgx[c] * s);
    for (size_t r = 0; r < rows; r++) {
      double v = gs * ((double)dy[r * C + c] - gbar);
      if (cfg->kind == I8T_NORM_STANDARD)
        v -= gs * ((double)x[r * C + c] - mean[c]) * s * s * sgx[c] / (double)rows;
      dx[r * C + c] = (float)v;
    }
  }
  if (cfg->kind == I8T_NORM_RANGE) {
    size_t *amin = arg, *amax = arg + sg.chunks * C;
    chunk_argext_f32(x, C, &sg, amin, amax);
    for (size_t c = 0; c < C; c++) {
      double s = scale[c];
      double dR = -(double)gamma[c] * sgx[c] * cm * s * s;
      float route = (float)(dR / (double)sg.chunks);
      for (size_t k = 0; k < sg.chunks; k++) {
        dx[amax[k * C + c] * C + c] += route;
        dx[amin[k * C + c] * C + c] -= route;
      }
    }
  }
done:
  free(sg.seg);
  free(sums);
  free(arg);
  return st;
}

/* ------------------------------------------------------------------------ */
/* u8 statistics                                                            */
/* ------------------------------------------------------------------------ */

typedef struct u8_stats_job {
  const uint8_t *x;
  size_t C;
  const segments *sg;
  uint8_t *mn, *mx;  /* [segments x C] */
  uint32_t *sum, *sq; /* [segments x C]; sq only for standard BN */
} u8_stats_job;

static void u8_stats_task(void *arg, size_t t, int worker) {
  (void)worker;
  u8_stats_job *j = arg;
  const segment *s = &j->sg->seg[t];
  const size_t C = j->C;
  const uint8_t *x = j->x + s->lo * C;
  i8t_colwise_stats_u8(x, s->hi - s->lo, C, C, j->mn + t * C, j->mx + t * C, j->sum + t * C);
  if (!j->sq) return;
  uint32_t *sq = j->sq + t * C;
  for (size_t c = 0; c < C; c++) sq[c] = 0;
  for (size_t r = 0; r < s->hi - s->lo; r++)
    for (size_t c = 0; c < C; c++) sq[c] += (uint32_t)x[r * C + c] * x[r * C + c];
}

i8t_status i8t_norm_stats_u8(i8t_workspace *ws, const i8t_norm_config *cfg, const uint8_t *x,
                             i8t_qparams xq, size_t rows, size_t channels, float *mean,
                             float *scale, float *var) {
  i8t_status st = check_config(cfg);
  if (st || (st = check_dims(rows, channels))) return st;
  if (!ws || !x || !mean || !scale) return i8t_error(I8T_ERR_INVALID_ARG, "norm stats: NULL");
  const size_t C = channels;
  int range = cfg->kind == I8T_NORM_RANGE;
  segments sg;
  if ((st = segments_make(rows, norm_chunks(cfg, rows), &sg))) return st;
  uint8_t *mm = malloc(2 * (sg.count + sg.chunks) * C);
  uint32_t *sums = malloc(2 * sg.count * C * sizeof *sums);
  if (!mm || !sums) {
    st = i8t_error(I8T_ERR_NO_MEMORY, "norm stats");
    goto done;
  }
  u8_stats_job j = {x, C, &sg, mm, mm + sg.count * C, sums, range ? NULL : sums + sg.count * C};
  i8t_parallel_for(ws->ctx, sg.count, u8_stats_task, &j);
  const double sx = xq.scale;
  for (size_t c = 0; c < C; c++) {
    uint64_t s1 = 0, s2 = 0;
    for (size_t t = 0; t < sg.count; t++) {
      s1 += j.sum[t * C + c];
      if (j.sq) s2 += j.sq[t * C + c];
    }
    double qbar = (double)s1 / (double)rows;
    mean[c] = (float)(sx * (qbar - xq.zero_point));
    if (!range) {
      double vq = (double)s2 / (double)rows - qbar * qbar;
      double v = sx * sx * (vq > 0.0 ? vq : 0.0);
      scale[c] = (float)(1.0 / sqrt(v + cfg->eps));
      if (var) var[c] = (float)v;
    }
  }
  if (range) {
    uint8_t *cmn = mm + 2 * sg.count * C, *cmx = cmn + sg.chunks * C;
    memset(cmn, 255, sg.chunks * C);
    memset(cmx, 0, sg.chunks * C);
    for (size_t t = 0; t < sg.count; t++) {
      uint8_t *mn = cmn + sg.seg[t].chunk * C, *mx = cmx + sg.seg[t].chunk * C;
      for (size_t c = 0; c < C; c++) {
        mn[c] = j.mn[t * C + c] < mn[c] ? j.mn[t * C + c] : mn[c];
        mx[c] = j.mx[t * C + c] > mx[c] ? j.mx[t * C + c] : mx[c];
      }
    }
    double cm = i8t_range_bn_constant(cfg, rows, sg.chunks);
    for (size_t c = 0; c < C; c++) {
      uint32_t rsum = 0;
      for (size_t k = 0; k < sg.chunks; k++) rsum += (uint32_t)(cmx[k * C + c] - cmn[k * C + c]);
      double r = sx * (double)rsum / (double)sg.chunks;
      scale[c] = (float)(1.0 / (r * cm + cfg->eps));
      if (var) var[c] = 1.0f / (scale[c] * scale[c]);
    }
  }
done:
  free(sg.seg);
  free(mm);
  free(sums);
  return st;
}

/* ------------------------------------------------------------------------ */
/* u8 backward                                                              */
/* ------------------------------------------------------------------------ */

/* Per segment and channel (arrays [segments x C]): exact sums of g, g * q
 * and q, the extremes of g, and (Range BN) the first min / max of x with
 * their rows. int32 cannot overflow: a segment holds at most 32768 rows. */
typedef struct u8_red {
  int32_t *sg, *sgq;
  uint32_t *sq, *amin, *amax;
  int8_t *gmin, *gmax;
  uint8_t *xmin, *xmax;
} u8_red;

static void *u8_red_alloc(u8_red *r, size_t n) {
  char *p = malloc(n * (2 * sizeof(int32_t) + 3 * sizeof(uint32_t) + 4));
  if (!p) return NULL;
  r->sg = (int32_t *)p;
  r->sgq = r->sg + n;
  r->sq = (uint32_t *)(r->sgq + n);
  r->amin = r->sq + n;
  r->amax = r->amin + n;
  r->gmin = (int8_t *)(r->amax + n);
  r->gmax = r->gmin + n;
  r->xmin = (uint8_t *)(r->gmax + n);
  r->xmax = r->xmin + n;
  return p;
}

typedef struct u8_bwd_job {
  const uint8_t *x;
  const int8_t *g;
  size_t C, rows;
  const segments *sg;
  u8_red red;
  int range;
  /* dx = a[c] * g + b[c] + e[c] * (q - qbar[c]) + routing */
  const float *a, *b, *e, *qbar;
  const float *route;          /* [C]: dR / K per channel (Range BN) */
  const uint32_t *amin, *amax; /* [chunks x C] rows of the chunk extremes */
  float *cmax_abs;             /* evaluation pass: per segment per channel |dx| max */
  /* quantize pass */
  size_t rows_per_task;
  i8t_grad_out *out;
  i8t_qparams p8, p16;
  int want_s8, want_s16, s16_from_s8;
  i8t_workspace *ws;
  nn_errors err;
} u8_bwd_job;

static void u8_reduce_task(void *arg, size_t t, int worker) {
  (void)worker;
  u8_bwd_job *j = arg;
  const segment *s = &j->sg->seg[t];
  const size_t C = j->C, o = t * C;
  int32_t *sg = j->red.sg + o, *sgq = j->red.sgq + o;
  uint32_t *sq = j->red.sq + o, *amin = j->red.amin + o, *amax = j->red.amax + o;
  int8_t *gmin = j->red.gmin + o, *gmax = j->red.gmax + o;
  uint8_t *xmin = j->red.xmin + o, *xmax = j->red.xmax + o;
  for (size_t c = 0; c < C; c++) {
    sg[c] = sgq[c] = 0;
    sq[c] = 0;
    gmin[c] = 127, gmax[c] = -127;
    xmin[c] = 255, xmax[c] = 0;
    amin[c] = amax[c] = (uint32_t)s->lo; /* right when every value equals the start value */
  }
  for (size_t r = s->lo; r < s->hi; r++) {
    const int8_t *gr = j->g + r * C;
    const uint8_t *xr = j->x + r * C;
    for (size_t c = 0; c < C; c++) {
      int32_t g = gr[c], q = xr[c];
      sg[c] += g;
      sgq[c] += g * q;
      sq[c] += (uint32_t)q;
      gmin[c] = gr[c] < gmin[c] ? gr[c] : gmin[c];
      gmax[c] = gr[c] > gmax[c] ? gr[c] : gmax[c];
    }
    if (!j->range) continue;
    for (size_t c = 0; c < C; c++) { /* strict: the first occurrence wins */
      if (xr[c] < xmin[c]) xmin[c] = xr[c], amin[c] = (uint32_t)r;
      if (xr[c] > xmax[c]) xmax[c] = xr[c], amax[c] = (uint32_t)r;
    }
  }
}

static inline float dense_dx(const u8_bwd_job *j, size_t r, size_t c) {
  float v = j->a[c] * (float)j->g[r * j->C + c] + j->b[c];
  if (j->e) v += j->e[c] * ((float)j->x[r * j->C + c] - j->qbar[c]);
  return v;
}

/* Standard BN: |dx| per channel needs the values (they depend on x). */
static void u8_absmax_task(void *arg, size_t t, int worker) {
  (void)worker;
  u8_bwd_job *j = arg;
  const segment *s = &j->sg->seg[t];
  float *m = j->cmax_abs + t * j->C;
  for (size_t c = 0; c < j->C; c++) m[c] = 0.0f;
  for (size_t r = s->lo; r < s->hi; r++)
    for (size_t c = 0; c < j->C; c++) {
      float v = fabsf(dense_dx(j, r, c));
      m[c] = v > m[c] ? v : m[c];
    }
}

/* Adds the routed Range BN terms that fall in rows [r0, r1) to v (rows r0..). */
static void add_routes(const u8_bwd_job *j, size_t r0, size_t r1, float *v) {
  if (!j->route) return;
  for (size_t k = 0; k < j->sg->chunks; k++) {
    for (size_t c = 0; c < j->C; c++) {
      uint32_t mx = j->amax[k * j->C + c], mn = j->amin[k * j->C + c];
      if (mx >= r0 && mx < r1) v[(mx - r0) * j->C + c] += j->route[c];
      if (mn >= r0 && mn < r1) v[(mn - r0) * j->C + c] -= j->route[c];
    }
  }
}

static void u8_quantize_task(void *arg, size_t t, int worker) {
  u8_bwd_job *j = arg;
  const size_t C = j->C;
  size_t r0 = t * j->rows_per_task, r1 = I8T_MIN(j->rows, r0 + j->rows_per_task);
  size_t sub = I8T_MAX((size_t)1, NN_BLOCK / C);
  float *v = nn_scratch(j->ws, worker, NN_SLOT_D);
  float *w = v + sub * C;
  i8t_grad_out *o = j->out;
  for (size_t b0 = r0; b0 < r1; b0 += sub) {
    size_t b1 = I8T_MIN(r1, b0 + sub), n = (b1 - b0) * C, first = b0 * C;
    for (size_t r = b0; r < b1; r++)
      for (size_t c = 0; c < C; c++) v[(r - b0) * C + c] = dense_dx(j, r, c);
    add_routes(j, b0, b1, v);
    i8t_status st = I8T_OK;
    if (o->f32) memcpy(o->f32 + first, v, n * sizeof *v);
    if (j->want_s8) {
      const float *src = v;
      if (o->s8_col_scale) {
        for (size_t i = 0; i < n; i++) w[i] = v[i] * o->s8_col_scale[i % C];
        src = w;
      }
      st = i8t_quantize_f32_s8(src, n, j->p8, nn_round_at(o->s8_round, first), o->s8 + first);
    }
    if (!st && j->want_s16) {
      if (j->s16_from_s8) {
        for (size_t i = 0; i < n; i++) o->s16[first + i] = o->s8[first + i];
      } else if (o->s16_bits == 8) {
        /* 8-bit levels in the s16 buffer (per-channel s8 differs from it). */
        int8_t *tmp = (int8_t *)w;
        st = i8t_quantize_f32_s8(v, n, j->p16, nn_round_at(o->s16_round, first), tmp);
        for (size_t i = 0; !st && i < n; i++) o->s16[first + i] = tmp[i];
      } else {
        st = i8t_quantize_f32_s16(v, n, j->p16, nn_round_at(o->s16_round, first), o->s16 + first);
      }
    }
    if (st) {
      nn_errors_set(&j->err, st);
      return;
    }
  }
}

i8t_status i8t_norm_backward_u8(i8t_workspace *ws, const i8t_norm_config *cfg,
                                const uint8_t *x, i8t_qparams xq, size_t rows, size_t channels,
                                const int8_t *dy, float dy_scale, const float *mean,
                                const float *scale, const float *gamma, float *dgamma,
                                float *dbeta, i8t_grad_out *out) {
  i8t_status st = check_config(cfg);
  if (st || (st = check_dims(rows, channels))) return st;
  if (!ws || !x || !dy || !mean || !scale || !gamma || !dgamma || !dbeta || !out)
    return i8t_error(I8T_ERR_INVALID_ARG, "norm backward u8: NULL argument");
  if (out->s16_bits != 0 && out->s16_bits != 8 && out->s16_bits != 16)
    return i8t_error(I8T_ERR_INVALID_ARG, "norm backward u8: s16_bits must be 8 or 16");
  (void)mean; /* the exact integer mean of x is recomputed */
  const size_t C = channels;
  const int range = cfg->kind == I8T_NORM_RANGE;
  segments sg;
  if ((st = segments_make(rows, norm_chunks(cfg, rows), &sg))) return st;
  size_t nf = 6 * C + sg.count * C;
  u8_red red;
  void *red_mem = u8_red_alloc(&red, sg.count * C);
  float *f = malloc(nf * sizeof *f);
  uint32_t *arg = malloc(2 * sg.chunks * C * sizeof *arg);
  if (!red_mem || !f || !arg) {
    st = i8t_error(I8T_ERR_NO_MEMORY, "norm backward u8");
    goto done;
  }
  u8_bwd_job j = {.x = x, .g = dy, .C = C, .rows = rows, .sg = &sg, .red = red, .range = range,
                  .out = out, .ws = ws};
  nn_errors_init(&j.err);
  i8t_parallel_for(ws->ctx, sg.count, u8_reduce_task, &j);

  float *a = f, *b = f + C, *e = f + 2 * C, *qbar = f + 3 * C, *route = f + 4 * C;
  float *chan_abs = f + 5 * C;
  uint32_t *amin = arg, *amax = arg + sg.chunks * C;
  double cm = i8t_range_bn_constant(cfg, rows, sg.chunks);
  const double n = (double)rows, sx = xq.scale, sgs = dy_scale;
  for (size_t c = 0; c < C; c++) {
    int64_t Sg = 0, Sgq = 0;
    uint64_t Sq = 0;
    int gmin = 127, gmax = -127;
    for (size_t t = 0; t < sg.count; t++) {
      size_t i = t * C + c;
      Sg += red.sg[i], Sgq += red.sgq[i], Sq += red.sq[i];
      gmin = red.gmin[i] < gmin ? red.gmin[i] : gmin;
      gmax = red.gmax[i] > gmax ? red.gmax[i] : gmax;
    }
    double qb = (double)Sq / n;
    double sxm = sgs * sx * ((double)Sgq - qb * (double)Sg); /* sum g (x - mu), real units */
    double s = scale[c], gs = (double)gamma[c] * s;
    dbeta[c] = (float)(sgs * (double)Sg);
    dgamma[c] = (float)(s * sxm);
    a[c] = (float)(gs * sgs);
    b[c] = (float)(-gs * sgs * (double)Sg / n);
    qbar[c] = (float)qb;
    e[c] = range ? 0.0f : (float)(-gs * s * s * sx * sxm / n);
    route[c] = range ? (float)(-(double)gamma[c] * sxm * cm * s * s / (double)sg.chunks) : 0.0f;
    /* |a g + b| is largest at an extreme of g (Range BN: exact bound of the
     * dense part; the routed values are added below). */
    float m1 = fabsf(a[c] * (float)gmin + b[c]), m2 = fabsf(a[c] * (float)gmax + b[c]);
    chan_abs[c] = m1 > m2 ? m1 : m2;
  }
  j.a = a, j.b = b, j.e = range ? NULL : e, j.qbar = qbar;
  if (range) {
    /* First extreme of each chunk: segments of a chunk in row order. */
    for (size_t k = 0; k < sg.chunks * C; k++) amin[k] = UINT32_MAX, amax[k] = UINT32_MAX;
    uint8_t *cmn = malloc(2 * sg.chunks * C);
    if (!cmn) {
      st = i8t_error(I8T_ERR_NO_MEMORY, "norm backward u8");
      goto done;
    }
    uint8_t *cmx = cmn + sg.chunks * C;
    for (size_t t = 0; t < sg.count; t++) {
      size_t k = sg.seg[t].chunk;
      for (size_t c = 0; c < C; c++) {
        size_t i = k * C + c, r = t * C + c;
        if (amin[i] == UINT32_MAX || red.xmin[r] < cmn[i]) cmn[i] = red.xmin[r], amin[i] = red.amin[r];
        if (amax[i] == UINT32_MAX || red.xmax[r] > cmx[i]) cmx[i] = red.xmax[r], amax[i] = red.amax[r];
      }
    }
    free(cmn);
    j.route = route, j.amin = amin, j.amax = amax;
    /* The routed values themselves (max and min rows may coincide). */
    for (size_t k = 0; k < sg.chunks; k++)
      for (size_t c = 0; c < C; c++) {
        size_t rmx = amax[k * C + c], rmn = amin[k * C + c];
        float vmx = dense_dx(&j, rmx, c) + (rmx == rmn ? 0.0f : route[c]);
        float vmn = dense_dx(&j, rmn, c) - (rmx == rmn ? 0.0f : route[c]);
        chan_abs[c] = fmaxf(chan_abs[c], fmaxf(fabsf(vmx), fabsf(vmn)));
      }
  } else {
    j.cmax_abs = f + 6 * C;
    i8t_parallel_for(ws->ctx, sg.count, u8_absmax_task, &j);
    for (size_t c = 0; c < C; c++) {
      chan_abs[c] = 0.0f;
      for (size_t t = 0; t < sg.count; t++) chan_abs[c] = fmaxf(chan_abs[c], j.cmax_abs[t * C + c]);
    }
  }
  float abs8 = 0.0f, abs16 = 0.0f;
  for (size_t c = 0; c < C; c++) {
    float m8 = out->s8_col_scale ? chan_abs[c] * fabsf(out->s8_col_scale[c]) : chan_abs[c];
    abs8 = fmaxf(abs8, m8);
    abs16 = fmaxf(abs16, chan_abs[c]);
  }
  if ((st = nn_check_finite(abs16, "batch-norm input gradient")) ||
      (st = nn_check_finite(abs8, "batch-norm input gradient")))
    goto done;
  int bits16 = out->s16_bits ? out->s16_bits : 16;
  j.want_s8 = out->s8 != NULL;
  j.want_s16 = out->s16 != NULL;
  j.s16_from_s8 = j.want_s16 && bits16 == 8 && j.want_s8 && !out->s8_col_scale;
  j.p8 = nn_symmetric(abs8, 8);
  j.p16 = nn_symmetric(abs16, bits16);
  out->s8_scale = j.p8.scale;
  out->s16_scale = j.s16_from_s8 ? j.p8.scale : j.p16.scale;
  j.rows_per_task = nn_rows_per_task(rows, C);
  size_t sub = I8T_MAX((size_t)1, NN_BLOCK / C);
  if ((st = nn_reserve(ws, NN_SLOT_D, 2 * sub * C * sizeof(float)))) goto done;
  i8t_parallel_for(ws->ctx, nn_task_count(rows, j.rows_per_task), u8_quantize_task, &j);
  st = nn_errors_get(&j.err);
done:
  free(sg.seg);
  free(red_mem);
  free(f);
  free(arg);
  return st;
}

void i8t_norm_fold_u8(size_t channels, i8t_qparams xq, const float *mean, const float *scale,
                      const float *gamma, const float *beta, float *mul, float *add) {
  for (size_t c = 0; c < channels; c++) {
    double gs = (double)gamma[c] * scale[c];
    mul[c] = (float)(gs * xq.scale);
    add[c] = (float)(beta[c] - gs * ((double)mean[c] + (double)xq.scale * xq.zero_point));
  }
}

void i8t_identity_fold_u8(size_t channels, i8t_qparams xq, float *mul, float *add) {
  for (size_t c = 0; c < channels; c++) {
    mul[c] = xq.scale;
    add[c] = -xq.scale * (float)xq.zero_point;
  }
}
