/* Batch normalisation: Range BN (method.md section 3) and standard BN, in
 * fp32 (the reference formulas, checked against finite differences) and on
 * u8 inputs, where every reduction is an exact integer sum: the statistics
 * come from i8t_colwise_stats_u8, the backward sums from int32 per segment. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_table.h"
#include "nn_internal.h"
#include "rng.h"


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

/* Rows whose int32 sums of u8 x s8 products cannot overflow (255 * 128 *
 * 32768 < 2^31): a segment's most, and the channel split's sums' pieces. */
enum { SUM_ROWS = 32768 };

typedef struct segment {
  size_t lo, hi, chunk, sample;
} segment;

typedef struct segments {
  segment *seg;
  size_t count, chunks;
} segments;

static size_t chunk_lo(size_t k, size_t rows, size_t chunks) {
  return (size_t)((uint64_t)k * rows / chunks);
}

/* Segments of at most 32768 rows inside one chunk and, when spatial > 0,
 * inside one sample (of `spatial` rows), about `target` of them. The u8
 * passes ask for 16 (at least one per chunk anyway): enough tasks for the
 * pool, and each segment's fixed cost (folding its lanes) stays small. The
 * fp32 statistics keep 32: their double sums are combined per segment. */
enum { SEGMENTS_F32 = 32, SEGMENTS_U8 = 16 };
static i8t_status segments_make(size_t rows, size_t chunks, size_t spatial, size_t target,
                                segments *out) {
  size_t per = (rows + target - 1) / target;
  per = per < 64 ? 64 : per > SUM_ROWS ? SUM_ROWS : per;
  size_t cap = rows / per + 2 * chunks + (spatial ? rows / spatial : 0) + 2;
  out->seg = malloc(cap * sizeof *out->seg);
  if (!out->seg) return i8t_error(I8T_ERR_NO_MEMORY, "norm segments");
  out->count = 0;
  out->chunks = chunks;
  for (size_t k = 0; k < chunks; k++) {
    size_t hi = chunk_lo(k + 1, rows, chunks);
    for (size_t lo = chunk_lo(k, rows, chunks); lo < hi;) {
      size_t end = I8T_MIN(hi, lo + per), sample = spatial ? lo / spatial : 0;
      if (spatial) end = I8T_MIN(end, (sample + 1) * spatial);
      out->seg[out->count++] = (segment){lo, end, k, sample};
      lo = end;
    }
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
  if ((st = segments_make(rows, norm_chunks(cfg, rows), 0, SEGMENTS_F32, &sg))) return st;
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
  if ((st = segments_make(rows, norm_chunks(cfg, rows), 0, SEGMENTS_F32, &sg))) return st;
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

/* Wide tensors are split by channels instead of rows: a task takes a block
 * of CHANNEL_BLOCK channels over every row and finishes its channels' results
 * itself (whole cache lines of each row; the AVX-512 kernels' vector width).
 * Split by rows, the per-segment results of all C channels have to be
 * combined afterwards, reading what the other workers wrote: at C = 512 that
 * combine took longer on 2 threads than the sums themselves. Every result
 * is an exact integer sum or extreme, so both splits give the same bytes;
 * the split is taken when there are at least two blocks per worker. */
enum { CHANNEL_BLOCK = 64 };

static int norm_by_channels(const i8t_workspace *ws, size_t C) {
  return C % CHANNEL_BLOCK == 0 && C / CHANNEL_BLOCK >= 2 * (size_t)ws->threads;
}

typedef struct u8_stats_job {
  const uint8_t *x;
  size_t C, rows, spatial;
  const segments *sg;
  int range;
  uint8_t *mn, *mx;   /* split by rows: [segments x C] */
  uint32_t *sum, *sq; /* split by rows: [segments x C]; sq only for standard BN */
  /* Combined: sum q and sum q^2 [2 C], the chunks' extremes [chunks x C],
   * the samples' extremes [samples x C] (when spatial > 0). */
  uint64_t *tot;
  uint8_t *cmn, *cmx, *sample_min, *sample_max;
  const i8t_norm_config *cfg;
  i8t_qparams xq;
  float *mean, *scale, *var;
} u8_stats_job;

/* Sum of squares of n columns over `rows` rows of stride ld (standard BN). */
static void col_squares_u8(const uint8_t *x, size_t rows, size_t n, size_t ld, uint32_t *sq) {
  for (size_t c = 0; c < n; c++) sq[c] = 0;
  for (size_t r = 0; r < rows; r++)
    for (size_t c = 0; c < n; c++) sq[c] += (uint32_t)x[r * ld + c] * x[r * ld + c];
}

static void u8_stats_task(void *arg, size_t t, int worker) {
  (void)worker;
  u8_stats_job *j = arg;
  const segment *s = &j->sg->seg[t];
  const size_t C = j->C;
  const uint8_t *x = j->x + s->lo * C;
  i8t_colwise_stats_u8(x, s->hi - s->lo, C, C, j->mn + t * C, j->mx + t * C, j->sum + t * C);
  if (!j->range) col_squares_u8(x, s->hi - s->lo, C, C, j->sq + t * C);
}

/* Combining the segments' results: the loops over a segment's C values,
 * restrict so that they vectorise (no aliasing checks per segment). */
static void min_into_u8(uint8_t *restrict d, const uint8_t *restrict s, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = s[i] < d[i] ? s[i] : d[i];
}

static void max_into_u8(uint8_t *restrict d, const uint8_t *restrict s, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = s[i] > d[i] ? s[i] : d[i];
}

static void add_into_u64(uint64_t *restrict d, const uint32_t *restrict s, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] += s[i];
}

/* The combined results of channels [c0, c0 + n) set to their starting values. */
static void stats_reset(const u8_stats_job *j, size_t c0, size_t n) {
  const size_t C = j->C;
  memset(j->tot + c0, 0, n * sizeof *j->tot);
  memset(j->tot + C + c0, 0, n * sizeof *j->tot);
  for (size_t k = 0; j->range && k < j->sg->chunks; k++)
    memset(j->cmn + k * C + c0, 255, n), memset(j->cmx + k * C + c0, 0, n);
  for (size_t b = 0; j->spatial && b < j->rows / j->spatial; b++)
    memset(j->sample_min + b * C + c0, 255, n), memset(j->sample_max + b * C + c0, 0, n);
}

/* Segment t's results for channels [c0, c0 + n) into the combined ones. */
static void stats_combine(const u8_stats_job *j, size_t t, size_t c0, size_t n,
                          const uint8_t *mn, const uint8_t *mx, const uint32_t *sum,
                          const uint32_t *sq) {
  const size_t C = j->C;
  const segment *s = &j->sg->seg[t];
  add_into_u64(j->tot + c0, sum, n);
  if (!j->range) add_into_u64(j->tot + C + c0, sq, n);
  if (j->spatial) { /* each segment lies in one sample */
    min_into_u8(j->sample_min + s->sample * C + c0, mn, n);
    max_into_u8(j->sample_max + s->sample * C + c0, mx, n);
  }
  if (j->range) {
    min_into_u8(j->cmn + s->chunk * C + c0, mn, n);
    max_into_u8(j->cmx + s->chunk * C + c0, mx, n);
  }
}

/* mean, scale (and var) of channels [c0, c1) from the combined results. */
static void stats_channels(const u8_stats_job *j, size_t c0, size_t c1) {
  const size_t C = j->C, K = j->sg->chunks;
  const double sx = j->xq.scale, cm = i8t_range_bn_constant(j->cfg, j->rows, K);
  for (size_t c = c0; c < c1; c++) {
    uint64_t s1 = j->tot[c], s2 = j->tot[C + c];
    double qbar = (double)s1 / (double)j->rows;
    j->mean[c] = (float)(sx * (qbar - j->xq.zero_point));
    if (!j->range) {
      double vq = (double)s2 / (double)j->rows - qbar * qbar;
      double v = sx * sx * (vq > 0.0 ? vq : 0.0);
      j->scale[c] = (float)(1.0 / sqrt(v + j->cfg->eps));
      if (j->var) j->var[c] = (float)v;
      continue;
    }
    uint32_t rsum = 0;
    for (size_t k = 0; k < K; k++) rsum += (uint32_t)(j->cmx[k * C + c] - j->cmn[k * C + c]);
    double r = sx * (double)rsum / (double)K;
    j->scale[c] = (float)(1.0 / (r * cm + j->cfg->eps));
    if (j->var) j->var[c] = 1.0f / (j->scale[c] * j->scale[c]);
  }
}

/* Split by channels: block t over every segment, then its channels' results. */
static void u8_stats_channel_task(void *arg, size_t t, int worker) {
  (void)worker;
  const u8_stats_job *j = arg;
  const size_t C = j->C, c0 = t * CHANNEL_BLOCK, n = CHANNEL_BLOCK;
  uint8_t mn[CHANNEL_BLOCK], mx[CHANNEL_BLOCK];
  uint32_t sum[CHANNEL_BLOCK], sq[CHANNEL_BLOCK];
  stats_reset(j, c0, n);
  for (size_t i = 0; i < j->sg->count; i++) {
    const segment *s = &j->sg->seg[i];
    const uint8_t *x = j->x + s->lo * C + c0;
    i8t_colwise_stats_u8(x, s->hi - s->lo, n, C, mn, mx, sum);
    if (!j->range) col_squares_u8(x, s->hi - s->lo, n, C, sq);
    stats_combine(j, i, c0, n, mn, mx, sum, sq);
  }
  stats_channels(j, c0, c0 + n);
}

static i8t_status norm_stats_u8(i8t_workspace *ws, const i8t_norm_config *cfg,
                                const uint8_t *x, i8t_qparams xq, size_t rows, size_t channels,
                                size_t spatial, float *mean, float *scale, float *var,
                                uint8_t *sample_min, uint8_t *sample_max) {
  i8t_status st = check_config(cfg);
  if (st || (st = check_dims(rows, channels))) return st;
  if (!ws || !x || !mean || !scale) return i8t_error(I8T_ERR_INVALID_ARG, "norm stats: NULL");
  const size_t C = channels;
  const int range = cfg->kind == I8T_NORM_RANGE, by_channels = norm_by_channels(ws, C);
  segments sg;
  if ((st = segments_make(rows, norm_chunks(cfg, rows), spatial, SEGMENTS_U8, &sg))) return st;
  const size_t per_seg = by_channels ? 0 : sg.count * C; /* split by rows: [segments x C] */
  /* Cache-line aligned: with C a multiple of CHANNEL_BLOCK, no two channel
   * blocks' results share a line (two workers writing one line each pass
   * it back and forth). */
  uint8_t *mm = i8t_aligned_alloc(2 * (per_seg + sg.chunks * C));
  uint32_t *sums = malloc((2 * per_seg + 1) * sizeof *sums);
  uint64_t *totals = i8t_aligned_alloc(2 * C * sizeof *totals);
  if (!mm || !sums || !totals) {
    st = i8t_error(I8T_ERR_NO_MEMORY, "norm stats");
    goto done;
  }
  u8_stats_job j = {.x = x, .C = C, .rows = rows, .spatial = spatial, .sg = &sg,
                    .range = range, .mn = mm, .mx = mm + per_seg, .sum = sums,
                    .sq = sums + per_seg, .tot = totals, .cmn = mm + 2 * per_seg,
                    .cmx = mm + 2 * per_seg + sg.chunks * C, .sample_min = sample_min,
                    .sample_max = sample_max, .cfg = cfg, .xq = xq, .mean = mean,
                    .scale = scale, .var = var};
  if (by_channels) {
    i8t_parallel_for(ws->ctx, C / CHANNEL_BLOCK, u8_stats_channel_task, &j);
    goto done;
  }
  i8t_parallel_for(ws->ctx, sg.count, u8_stats_task, &j);
  stats_reset(&j, 0, C);
  for (size_t t = 0; t < sg.count; t++) /* segment by segment: contiguous */
    stats_combine(&j, t, 0, C, j.mn + t * C, j.mx + t * C, j.sum + t * C, j.sq + t * C);
  stats_channels(&j, 0, C);
done:
  free(sg.seg);
  i8t_aligned_free(mm);
  free(sums);
  i8t_aligned_free(totals);
  return st;
}

i8t_status i8t_norm_stats_u8(i8t_workspace *ws, const i8t_norm_config *cfg, const uint8_t *x,
                             i8t_qparams xq, size_t rows, size_t channels, float *mean,
                             float *scale, float *var) {
  return norm_stats_u8(ws, cfg, x, xq, rows, channels, 0, mean, scale, var, NULL, NULL);
}

i8t_status i8t_norm_stats_samples_u8(i8t_workspace *ws, const i8t_norm_config *cfg,
                                     const uint8_t *x, i8t_qparams xq, i8t_act_shape shape,
                                     float *mean, float *scale, float *var, uint8_t *sample_min,
                                     uint8_t *sample_max) {
  if (!sample_min || !sample_max || shape.spatial == 0)
    return i8t_error(I8T_ERR_INVALID_ARG, "norm stats: NULL sample extremes or empty samples");
  return norm_stats_u8(ws, cfg, x, xq, shape.batch * shape.spatial, shape.channels,
                       shape.spatial, mean, scale, var, sample_min, sample_max);
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

/* The replicated per-channel parameters of dx (nn_replicate): dx = a g + b
 * + e (q - qbar) + routing, and the s8 operand's column scales. */
enum { REP_A, REP_B, REP_E, REP_QBAR, REP_COL, REP_COUNT };

/* Values per group of the extremes' lanes (see segment_extremes): folding
 * the lanes is scalar work per segment, which lanes as long as a dense block
 * (2048) made as costly as the pass itself at C = 512. */
enum { RED_LANES = 256 };

/* A routed Range BN term: dx[at] += d. */
typedef struct route_term {
  size_t at;
  float d;
} route_term;

typedef struct u8_bwd_job {
  const uint8_t *x;
  const int8_t *g;
  size_t C, rows, sub; /* sub: rows per block of the dense pass */
  size_t red_rows;      /* rows per group of the reductions' lanes */
  const segments *sg;
  u8_red red;
  int range;
  const float *rep;            /* REP_COUNT arrays of sub * C floats */
  const float *route;          /* [C]: dR / K per channel (Range BN) */
  const uint32_t *amin, *amax; /* [chunks x C] rows of the chunk extremes */
  float *cmax_abs;             /* evaluation pass: per segment per channel |dx| max */
  /* quantize pass */
  size_t rows_per_task;  /* standard BN; Range BN's tasks are the segments */
  size_t route_blocks;   /* Range BN: the most blocks of a segment */
  i8t_grad_out *out;
  i8t_qparams p8, p16;
  int want_s8, want_s16, s16_from_s8;
  int s8s16_pass;    /* both errors from quantize_f32_s8s16 */
  float inv8, inv16; /* 1 / scale of p8, p16 */
  i8t_workspace *ws;
  nn_errors err;
} u8_bwd_job;

static const float *rep(const u8_bwd_job *j, int which) {
  return j->rep + (size_t)which * j->sub * j->C;
}

/* The segment's sums per channel (kernel table: bn_col_sums, whose vector
 * versions keep them in registers over the rows). */
static void segment_sums(const u8_bwd_job *j, const segment *s, size_t o) {
  i8t_kernels()->bn_col_sums.run(s->hi - s->lo, j->C, j->C, j->g + s->lo * j->C,
                                 j->x + s->lo * j->C, j->red.sg + o, j->red.sgq + o,
                                 j->red.sq + o, j->red.gmin + o, j->red.gmax + o);
}

/* The segment's extremes per channel and the first row holding each: lanes
 * folded with the row order (group, then the lane's row in the group). */
static void segment_extremes(const u8_bwd_job *j, const segment *s, int worker, size_t o) {
  const size_t C = j->C, L = j->red_rows * C, R = j->red_rows;
  uint8_t *mn = (uint8_t *)nn_scratch(j->ws, worker, NN_SLOT_D), *mx = mn + L;
  uint16_t *amn = (uint16_t *)(mx + L), *amx = amn + L; /* 32768 rows: < 2^16 groups */
  memset(mn, 255, L), memset(mx, 0, L);
  memset(amn, 0, L * sizeof *amn), memset(amx, 0, L * sizeof *amx);
  uint16_t b = 0;
  /* Per lane the min and max of x and the first group (index b) holding
   * each (kernel table, like the sums). */
  i8t_bn_lane_extremes_fn extremes = i8t_kernels()->bn_lane_extremes.run;
  for (size_t r = s->lo; r < s->hi; r += R, b++)
    extremes(1, (I8T_MIN(s->hi, r + R) - r) * C, 0, b, j->x + r * C, mn, mx, amn, amx);
  size_t lanes_rows = I8T_MIN(R, s->hi - s->lo); /* lanes past a short segment saw nothing */
  /* The lowest (value, row) for the min and (255 - value, row) for the max,
   * compared as one key value << 24 | row (rows < 2^24, check_dims):
   * branch-free minimums instead of unpredictable value-then-row tests. */
  uint32_t *kmn = j->red.amin + o, *kmx = j->red.amax + o;
  for (size_t c = 0; c < C; c++) kmn[c] = kmx[c] = UINT32_MAX;
  for (size_t lr = 0; lr < lanes_rows; lr++) {
    const uint8_t *mnl = mn + lr * C, *mxl = mx + lr * C;
    const uint16_t *amnl = amn + lr * C, *amxl = amx + lr * C;
    const uint32_t row0 = (uint32_t)(s->lo + lr);
    for (size_t c = 0; c < C; c++) {
      uint32_t keyn = (uint32_t)mnl[c] << 24 | (row0 + (uint32_t)amnl[c] * (uint32_t)R);
      uint32_t keyx = (uint32_t)(255 - mxl[c]) << 24 | (row0 + (uint32_t)amxl[c] * (uint32_t)R);
      kmn[c] = keyn < kmn[c] ? keyn : kmn[c];
      kmx[c] = keyx < kmx[c] ? keyx : kmx[c];
    }
  }
  uint8_t *vmn = j->red.xmin + o, *vmx = j->red.xmax + o;
  for (size_t c = 0; c < C; c++) {
    vmn[c] = (uint8_t)(kmn[c] >> 24), vmx[c] = (uint8_t)(255 - (kmx[c] >> 24));
    kmn[c] &= 0xFFFFFFu, kmx[c] &= 0xFFFFFFu;
  }
}

static void u8_reduce_task(void *arg, size_t t, int worker) {
  u8_bwd_job *j = arg;
  const segment *s = &j->sg->seg[t];
  segment_sums(j, s, t * j->C);
  if (j->range) segment_extremes(j, s, worker, t * j->C);
}

/* Dense part of dx for rows [r0, r0 + n / C): one flat loop. */
static void dense_block(const u8_bwd_job *j, size_t r0, size_t n, float *restrict v) {
  const i8t_kernel_table *kt = i8t_kernels();
  kt->affine_s8_f32.run(n, j->g + r0 * j->C, rep(j, REP_A), rep(j, REP_B), v);
  if (j->range) return;
  kt->add_centered_u8_f32.run(n, j->x + r0 * j->C, rep(j, REP_E), rep(j, REP_QBAR), v);
}

/* Standard BN: |dx| per channel needs the values (they depend on x). */
static void u8_absmax_task(void *arg, size_t t, int worker) {
  u8_bwd_job *j = arg;
  const segment *s = &j->sg->seg[t];
  const size_t C = j->C;
  float *v = nn_scratch(j->ws, worker, NN_SLOT_D), *mrep = v + j->sub * C;
  for (size_t i = 0; i < j->sub * C; i++) mrep[i] = 0.0f;
  for (size_t r = s->lo; r < s->hi; r += j->sub) {
    size_t n = (I8T_MIN(s->hi, r + j->sub) - r) * C;
    dense_block(j, r, n, v);
    for (size_t i = 0; i < n; i++) {
      float a = fabsf(v[i]);
      mrep[i] = a > mrep[i] || a != a ? a : mrep[i];
    }
  }
  float *m = j->cmax_abs + t * C;
  for (size_t c = 0; c < C; c++) m[c] = 0.0f;
  for (size_t i = 0; i < j->sub * C; i++) m[i % C] = mrep[i] > m[i % C] || mrep[i] != mrep[i] ? mrep[i] : m[i % C];
}

/* fmaxf (a NaN argument gives the other one) without a libm call per value
 * in the baseline-ISA build; equal operands here are never -0 and +0. */
static inline float max_num(float a, float b) {
  return a != a ? b : b != b ? a : a > b ? a : b;
}

/* Values of a segment that the quantize pass routes in one span (128 KB of
 * floats, L2-resident): no sort of its terms. */
enum { ROUTE_SPAN = 32768 };

/* Range BN: the routed terms of segment s (which lies in one chunk) sorted
 * by block of the segment, stably, so that an element gets its + (the
 * chunk's max) before its - (the min); block b's terms are terms[start[b]
 * .. start[b + 1]). Each quantize task sorts its own segment's terms from
 * its chunk's 2 C (one serial sort of all 2 K C terms was a quarter of the
 * backward at C = 512). Used for segments of more than ROUTE_SPAN values.
 * blk: 2 C scratch, start: route_blocks + 2. */
static void segment_routes(const u8_bwd_job *j, const segment *s, route_term *terms,
                           uint32_t *blk, size_t *start) {
  const size_t C = j->C, nb = j->route_blocks, rows = s->hi - s->lo;
  const uint32_t *amax = j->amax + s->chunk * C, *amin = j->amin + s->chunk * C;
  /* (row - lo) / sub as a multiply-shift, exact: a segment's rows times sub
   * (<= 2048 / C, or 1) stay below 2^32. Rows outside the segment (the
   * chunk's other segments) go to block nb, not applied. */
  const uint64_t inv_sub = (((uint64_t)1 << 32) + j->sub - 1) / j->sub;
  for (size_t b = 0; b < nb + 2; b++) start[b] = 0;
  for (size_t c = 0; c < C; c++)
    for (int m = 0; m < 2; m++) {
      size_t d = (m ? amin[c] : amax[c]) - s->lo; /* wraps above rows when below lo */
      blk[2 * c + m] = d < rows ? (uint32_t)(((uint64_t)d * inv_sub) >> 32) : (uint32_t)nb;
      start[blk[2 * c + m] + 1]++;
    }
  for (size_t b = 0; b < nb; b++) start[b + 1] += start[b];
  for (size_t c = 0; c < C; c++)
    for (int m = 0; m < 2; m++) {
      uint32_t b = blk[2 * c + m];
      if (b == nb) continue;
      size_t row = m ? amin[c] : amax[c];
      terms[start[b]++] = (route_term){row * C + c, m ? -j->route[c] : j->route[c]};
    }
  for (size_t b = nb; b > 0; b--) start[b] = start[b - 1]; /* the cursors back to starts */
  start[0] = 0;
}

/* The s8 and s16 errors of the n values v from element `first` in one pass
 * (quantize_f32_s8s16: one hash per two elements, on the s8 operand's stream), in
 * pieces that do not cross a 2^32 boundary of the counter (each piece has its
 * own key, as in src/quantize.c). cs: the replicated column scales or NULL. */
static void quantize_s8s16(const u8_bwd_job *j, const float *v, const float *cs, size_t first,
                           size_t n) {
  i8t_quantize_f32_s8s16_fn run = i8t_kernels()->quantize_f32_s8s16.run;
  const i8t_rounding r = nn_round_at(j->out->s8_round, first); /* stochastic: s8s16_pass */
  i8t_noise noise;
  for (size_t done = 0, len; done < n; done += len) {
    len = i8t_noise_piece(r, done, n, &noise);
    run(len, v + done, cs ? cs + done : NULL, j->inv8, j->inv16, noise,
        j->out->s8 + first + done, j->out->s16 + first + done);
  }
}

/* The outputs of elements first .. first + n from their values v: the f32
 * copy, the s8 and s16 errors. cs: the column scales replicated from
 * channel 0 (n <= sub * C), w: n floats of scratch. */
static i8t_status quantize_values(const u8_bwd_job *j, const float *v, const float *cs,
                                  float *w, size_t first, size_t n) {
  i8t_grad_out *o = j->out;
  i8t_status st = I8T_OK;
  if (o->f32) memcpy(o->f32 + first, v, n * sizeof *v);
  if (j->s8s16_pass) {
    quantize_s8s16(j, v, o->s8_col_scale ? cs : NULL, first, n);
    return I8T_OK;
  }
  if (j->want_s8) {
    const float *src = v;
    if (o->s8_col_scale) {
      for (size_t i = 0; i < n; i++) w[i] = v[i] * cs[i];
      src = w;
    }
    st = i8t_quantize_f32_s8(src, n, j->p8, nn_round_at(o->s8_round, first), o->s8 + first);
  }
  if (!st && j->want_s16) {
    if (o->s16_bits == 8) {
      /* 8-bit levels in the s16 buffer: the s8 operand itself when it is
       * unscaled, else a draw of its own (per-channel s8 differs). */
      const int8_t *src = o->s8 + first;
      if (!j->s16_from_s8) {
        int8_t *tmp = (int8_t *)w;
        st = i8t_quantize_f32_s8(v, n, j->p16, nn_round_at(o->s16_round, first), tmp);
        src = tmp;
      }
      for (size_t i = 0; !st && i < n; i++) o->s16[first + i] = src[i];
    } else {
      st = i8t_quantize_f32_s16(v, n, j->p16, nn_round_at(o->s16_round, first), o->s16 + first);
    }
  }
  return st;
}

/* Range BN, a segment of at most ROUTE_SPAN values: its chunk's terms added
 * straight into v (the whole segment from row lo), max then min per
 * channel, no sort. */
static void add_routes_direct(const u8_bwd_job *j, const segment *s, float *restrict v) {
  const size_t C = j->C, lo = s->lo, rows = s->hi - lo;
  /* Locals, restrict: stores to v would otherwise reload j's fields. */
  const uint32_t *restrict amax = j->amax + s->chunk * C, *restrict amin = j->amin + s->chunk * C;
  const float *restrict route = j->route;
  for (size_t c = 0; c < C; c++) {
    size_t dx = amax[c] - lo, dn = amin[c] - lo; /* wrap above rows when below lo */
    if (dx < rows) v[dx * C + c] += route[c];
    if (dn < rows) v[dn * C + c] += -route[c];
  }
}

/* The quantize pass over rows [r0, r1): the dense part in blocks of sub rows
 * (the replicated parameters' length) into a span of v, the routed terms,
 * then the outputs block by block. A span is a block, or for Range BN a
 * whole segment of at most ROUTE_SPAN values (terms added directly). */
static void u8_quantize_task(void *arg, size_t t, int worker) {
  u8_bwd_job *j = arg;
  const size_t C = j->C, sub = j->sub;
  size_t r0 = t * j->rows_per_task, r1 = I8T_MIN(j->rows, r0 + j->rows_per_task);
  float *w = nn_scratch(j->ws, worker, NN_SLOT_D), *v = w + sub * C;
  const segment *s = j->route ? &j->sg->seg[t] : NULL;
  size_t span = sub;
  route_term *terms = NULL;
  size_t *start = NULL;
  if (s) {
    r0 = s->lo, r1 = s->hi;
    if ((r1 - r0) * C <= ROUTE_SPAN) {
      span = r1 - r0;
    } else {
      terms = (route_term *)(v + sub * C);
      start = (size_t *)(terms + 2 * C);
      segment_routes(j, s, terms, (uint32_t *)(start + j->route_blocks + 2), start);
    }
  }
  i8t_status st = I8T_OK;
  for (size_t b0 = r0, id = 0; !st && b0 < r1; b0 += span, id++) {
    size_t b1 = I8T_MIN(r1, b0 + span), first = b0 * C;
    for (size_t p = b0; p < b1; p += sub)
      dense_block(j, p, (I8T_MIN(b1, p + sub) - p) * C, v + (p - b0) * C);
    if (s && !terms) add_routes_direct(j, s, v);
    if (terms)
      for (size_t i = start[id]; i < start[id + 1]; i++) v[terms[i].at - first] += terms[i].d;
    for (size_t p = b0; !st && p < b1; p += sub)
      st = quantize_values(j, v + (p - b0) * C, rep(j, REP_COL), w, p * C,
                           (I8T_MIN(b1, p + sub) - p) * C);
  }
  if (st) nn_errors_set(&j->err, st);
}

/* The per-channel part between the two passes, in tasks of COEF_CHANNELS
 * channels (every step is per channel, so the tasks share it and the
 * results do not depend on the split): the segments' totals, dgamma, dbeta
 * and dx's coefficients, |dx|'s bound, and for Range BN the chunks' first
 * extremes and the routed values' part of the bound. At C = 512 this was a
 * serial quarter of the backward. */
enum { COEF_CHANNELS = 64 };
_Static_assert((int)CHANNEL_BLOCK <= (int)COEF_CHANNELS, "norm_channel_task's coefficients");

typedef struct coef_job {
  u8_bwd_job *j;
  size_t C, rows;
  double cm, sx, sgs;
  const float *scale, *gamma;
  float *dgamma, *dbeta, *a, *b, *e, *qbar, *route, *chan_abs, *ones;
  int64_t *totals; /* [C] Sg, Sgq, Sq, then int8 [C] gmin, gmax */
  uint32_t *amin, *amax; /* [chunks x C] */
  uint8_t *cmn, *cmx;    /* [chunks x C] */
  int8_t *gmx, *gmn;     /* [chunks x C]: g at those rows (the routed values' bound) */
} coef_job;

static void add_into_s64(int64_t *restrict d, const int32_t *restrict s, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] += s[i];
}

static void min_into_s8(int8_t *restrict d, const int8_t *restrict s, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = s[i] < d[i] ? s[i] : d[i];
}

static void max_into_s8(int8_t *restrict d, const int8_t *restrict s, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = s[i] > d[i] ? s[i] : d[i];
}

/* The totals' five arrays (coef_job.totals: Sg, Sgq, Sq, then int8 gmin,
 * gmax, C each) from channel c0 on: their layout in one place. */
typedef struct totals_view {
  int64_t *sg, *sgq, *sq;
  int8_t *gmin, *gmax;
} totals_view;

static totals_view totals_at(const coef_job *cj, size_t c0) {
  const size_t C = cj->C;
  int64_t *sg = cj->totals + c0;
  int8_t *gmin = (int8_t *)(cj->totals + 3 * C) + c0;
  return (totals_view){sg, sg + C, sg + 2 * C, gmin, gmin + C};
}

/* The totals of channels [c0, c0 + n) set to their starting values. */
static void totals_reset(const coef_job *cj, size_t c0, size_t n) {
  const totals_view t = totals_at(cj, c0);
  for (size_t c = 0; c < n; c++)
    t.sg[c] = t.sgq[c] = t.sq[c] = 0, t.gmin[c] = 127, t.gmax[c] = -127;
}

/* One piece of rows' sums and g extremes of channels [c0, c0 + n) into the
 * totals. */
static void totals_add(const coef_job *cj, size_t c0, size_t n, const int32_t *sg,
                       const int32_t *sgq, const uint32_t *sq, const int8_t *gmin,
                       const int8_t *gmax) {
  const totals_view t = totals_at(cj, c0);
  add_into_s64(t.sg, sg, n);
  add_into_s64(t.sgq, sgq, n);
  add_into_s64(t.sq, (const int32_t *)sq, n); /* sum q < 2^23 */
  min_into_s8(t.gmin, gmin, n);
  max_into_s8(t.gmax, gmax, n);
}

/* The segments' sums of channels [c0, c1), segment by segment (contiguous
 * runs of [segments x C]). */
static void norm_coef_totals(const coef_job *cj, size_t c0, size_t c1) {
  const u8_red *red = &cj->j->red;
  const size_t n = c1 - c0;
  totals_reset(cj, c0, n);
  for (size_t t = 0; t < cj->j->sg->count; t++) {
    const size_t o = t * cj->C + c0;
    totals_add(cj, c0, n, red->sg + o, red->sgq + o, red->sq + o, red->gmin + o, red->gmax + o);
  }
}

static void norm_coef_channels(const coef_job *cj, size_t c0, size_t c1) {
  const int range = cj->j->range;
  const double n = (double)cj->rows, sx = cj->sx, sgs = cj->sgs;
  const totals_view t = totals_at(cj, 0);
  for (size_t c = c0; c < c1; c++) {
    const int64_t Sg = t.sg[c], Sgq = t.sgq[c];
    const uint64_t Sq = (uint64_t)t.sq[c];
    const int gmin = t.gmin[c], gmax = t.gmax[c];
    double qb = (double)Sq / n;
    double sxm = sgs * sx * ((double)Sgq - qb * (double)Sg); /* sum g (x - mu), real units */
    double s = cj->scale[c], gs = (double)cj->gamma[c] * s;
    cj->dbeta[c] = (float)(sgs * (double)Sg);
    cj->dgamma[c] = (float)(s * sxm);
    cj->a[c] = (float)(gs * sgs);
    cj->b[c] = (float)(-gs * sgs * (double)Sg / n);
    cj->qbar[c] = (float)qb;
    cj->e[c] = range ? 0.0f : (float)(-gs * s * s * sx * sxm / n);
    cj->route[c] = range ? (float)(-(double)cj->gamma[c] * sxm * cj->cm * s * s /
                                   (double)cj->j->sg->chunks)
                         : 0.0f;
    cj->ones[c] = 1.0f;
    /* |a g + b| is largest at an extreme of g (Range BN: exact bound of the
     * dense part; the routed values are added below). */
    float m1 = fabsf(cj->a[c] * (float)gmin + cj->b[c]);
    float m2 = fabsf(cj->a[c] * (float)gmax + cj->b[c]);
    cj->chan_abs[c] = m1 > m2 ? m1 : m2;
  }
}

/* Segment t's first extremes of channels [c0, c0 + n) (values and rows,
 * from channel c0 on) into its chunk's. A chunk's segments come in row
 * order: the first is taken as is, a later one only where strictly lower
 * (higher), so that equal values keep the earlier row. */
static void fold_chunk_extremes(const coef_job *cj, size_t t, size_t c0, size_t n,
                                const uint8_t *xmin, const uint8_t *xmax, const uint32_t *rmin,
                                const uint32_t *rmax) {
  const size_t C = cj->C;
  const segments *sg = cj->j->sg;
  const size_t k = sg->seg[t].chunk;
  uint8_t *mn = cj->cmn + k * C + c0, *mx = cj->cmx + k * C + c0;
  uint32_t *an = cj->amin + k * C + c0, *ax = cj->amax + k * C + c0;
  if (t == 0 || sg->seg[t - 1].chunk != k) { /* the chunk's first segment */
    memcpy(mn, xmin, n), memcpy(mx, xmax, n);
    memcpy(an, rmin, n * sizeof *an), memcpy(ax, rmax, n * sizeof *ax);
    return;
  }
  for (size_t c = 0; c < n; c++) {
    const int lower = xmin[c] < mn[c], higher = xmax[c] > mx[c];
    mn[c] = lower ? xmin[c] : mn[c];
    an[c] = lower ? rmin[c] : an[c];
    mx[c] = higher ? xmax[c] : mx[c];
    ax[c] = higher ? rmax[c] : ax[c];
  }
}

/* g at chunk k's extreme rows, channels [c0, c0 + n). */
static void chunk_route_g(const coef_job *cj, size_t k, size_t c0, size_t n) {
  const size_t C = cj->C, o = k * C + c0;
  const int8_t *g = cj->j->g + c0;
  for (size_t i = 0; i < n; i++)
    cj->gmx[o + i] = g[cj->amax[o + i] * C + i], cj->gmn[o + i] = g[cj->amin[o + i] * C + i];
}

/* First extreme of each chunk in channels [c0, c1), from the segments'. */
static void norm_coef_chunk_extremes(const coef_job *cj, size_t c0, size_t c1) {
  const u8_red *red = &cj->j->red;
  for (size_t t = 0; t < cj->j->sg->count; t++) {
    const size_t o = t * cj->C + c0;
    fold_chunk_extremes(cj, t, c0, c1 - c0, red->xmin + o, red->xmax + o, red->amin + o,
                        red->amax + o);
  }
}

/* The routed values' part of |dx|'s bound (max and min rows may coincide):
 * per chunk one flat loop of plain comparisons (vectorisable) over g at the
 * chunk's extreme rows (chunk_route_g); the NaN-ignoring max_num over
 * again, in the original order, only if a value was NaN. */
static void norm_coef_routed_bound(const coef_job *cj, size_t c0, size_t c1) {
  const size_t C = cj->C, K = cj->j->sg->chunks, n = c1 - c0;
  const float *restrict a = cj->a + c0, *restrict b = cj->b + c0, *restrict route = cj->route + c0;
  float m[COEF_CHANNELS], gx[COEF_CHANNELS], gn[COEF_CHANNELS], d[COEF_CHANNELS];
  int nan = 0;
  for (size_t i = 0; i < n; i++) m[i] = cj->chan_abs[c0 + i];
  for (size_t k = 0; k < K; k++) {
    const uint32_t *ax = cj->amax + k * C + c0, *an = cj->amin + k * C + c0;
    const int8_t *gmx = cj->gmx + k * C + c0, *gmn = cj->gmn + k * C + c0;
    for (size_t i = 0; i < n; i++) {
      gx[i] = (float)gmx[i], gn[i] = (float)gmn[i];
      d[i] = ax[i] == an[i] ? 0.0f : route[i];
    }
    for (size_t i = 0; i < n; i++) {
      float amx = fabsf(a[i] * gx[i] + b[i] + d[i]), amn = fabsf(a[i] * gn[i] + b[i] - d[i]);
      nan |= (amx != amx) | (amn != amn) | (m[i] != m[i]);
      float t = amx > m[i] ? amx : m[i];
      m[i] = amn > t ? amn : t;
    }
  }
  if (!nan) {
    memcpy(cj->chan_abs + c0, m, n * sizeof *m);
    return;
  }
  for (size_t k = 0; k < K; k++)
    for (size_t c = c0; c < c1; c++) {
      const size_t rmx = cj->amax[k * C + c], rmn = cj->amin[k * C + c];
      const float dc = rmx == rmn ? 0.0f : cj->route[c];
      float vmx = cj->a[c] * (float)cj->gmx[k * C + c] + cj->b[c] + dc;
      float vmn = cj->a[c] * (float)cj->gmn[k * C + c] + cj->b[c] - dc;
      cj->chan_abs[c] = max_num(cj->chan_abs[c], max_num(fabsf(vmx), fabsf(vmn)));
    }
}

static void norm_coef_task(void *arg, size_t t, int worker) {
  (void)worker;
  const coef_job *cj = arg;
  size_t c0 = t * COEF_CHANNELS, c1 = I8T_MIN(cj->C, c0 + COEF_CHANNELS);
  norm_coef_totals(cj, c0, c1);
  norm_coef_channels(cj, c0, c1);
  if (!cj->j->range) return;
  norm_coef_chunk_extremes(cj, c0, c1);
  for (size_t k = 0; k < cj->j->sg->chunks; k++) chunk_route_g(cj, k, c0, c1 - c0);
  norm_coef_routed_bound(cj, c0, c1);
}

/* The channel split's sums take consecutive segments together until they
 * hold SPAN_ROWS rows (without passing SUM_ROWS): a segment can be a few
 * rows (ResNet-18's 7x7x512 at batch 8: 16 chunks of 24 rows), and one call
 * per segment cost more than its rows. A span of a 64-channel block stays
 * in L1 for the segments' extremes that follow. Returns the span's end. */
enum { SPAN_ROWS = 128 };
static size_t sum_span_end(const segments *sg, size_t i) {
  const size_t lo = sg->seg[i].lo;
  size_t e = i + 1;
  while (e < sg->count && sg->seg[e - 1].hi - lo < SPAN_ROWS && sg->seg[e].hi - lo <= SUM_ROWS)
    e++;
  return e;
}

/* Split by channels (norm_by_channels): block t's sums and first extremes
 * over every segment, straight into the totals and the chunks' extremes,
 * then the block's coefficients, in one task. */
static void norm_channel_task(void *arg, size_t t, int worker) {
  (void)worker;
  const coef_job *cj = arg;
  const u8_bwd_job *j = cj->j;
  const i8t_kernel_table *kt = i8t_kernels();
  const size_t C = cj->C, c0 = t * CHANNEL_BLOCK, n = CHANNEL_BLOCK;
  int32_t sg[CHANNEL_BLOCK], sgq[CHANNEL_BLOCK];
  uint32_t sq[CHANNEL_BLOCK], rmn[CHANNEL_BLOCK], rmx[CHANNEL_BLOCK];
  int8_t gmin[CHANNEL_BLOCK], gmax[CHANNEL_BLOCK];
  uint8_t mn[CHANNEL_BLOCK], mx[CHANNEL_BLOCK];
  uint16_t amn[CHANNEL_BLOCK], amx[CHANNEL_BLOCK]; /* a segment's rows: < 2^15 */
  totals_reset(cj, c0, n);
  const segments *sgs = j->sg;
  for (size_t i = 0, e; i < sgs->count; i = e) {
    e = sum_span_end(sgs, i);
    const size_t lo = sgs->seg[i].lo, off = lo * C + c0;
    kt->bn_col_sums.run(sgs->seg[e - 1].hi - lo, n, C, j->g + off, j->x + off, sg, sgq, sq, gmin,
                        gmax);
    totals_add(cj, c0, n, sg, sgq, sq, gmin, gmax);
    for (size_t k = i; j->range && k < e; k++) { /* the span's rows are in L1 */
      const segment *s = &sgs->seg[k];
      const size_t rows = s->hi - s->lo, soff = s->lo * C + c0;
      memset(mn, 255, n), memset(mx, 0, n), memset(amn, 0, sizeof amn), memset(amx, 0, sizeof amx);
      kt->bn_lane_extremes.run(rows, n, C, 0, j->x + soff, mn, mx, amn, amx);
      for (size_t c = 0; c < n; c++)
        rmn[c] = (uint32_t)(s->lo + amn[c]), rmx[c] = (uint32_t)(s->lo + amx[c]);
      fold_chunk_extremes(cj, k, c0, n, mn, mx, rmn, rmx);
      if (k + 1 == sgs->count || sgs->seg[k + 1].chunk != s->chunk) /* the chunk's last */
        chunk_route_g(cj, s->chunk, c0, n);
    }
  }
  norm_coef_channels(cj, c0, c0 + n);
  if (j->range) norm_coef_routed_bound(cj, c0, c0 + n);
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
  const size_t C = channels, sub = nn_block_rows(C);
  const int range = cfg->kind == I8T_NORM_RANGE, by_channels = norm_by_channels(ws, C);
  float *reps = nn_shared_floats(ws, REP_COUNT, C);
  if (!reps) return I8T_ERR_NO_MEMORY;
  /* Slot D: the extremes' lanes (2 uint8 + 2 uint16 per value, at most a
   * block's worth), or two float blocks. */
  if ((st = nn_reserve(ws, NN_SLOT_D, sub * C * 8 + 64))) return st;
  segments sg;
  if ((st = segments_make(rows, norm_chunks(cfg, rows), 0, SEGMENTS_U8, &sg))) return st;
  size_t nf = 7 * C + sg.count * C;
  u8_red red = {0}; /* split by rows only */
  void *red_mem = by_channels ? NULL : u8_red_alloc(&red, sg.count * C);
  /* Per-channel arrays cache-line aligned, as in norm_stats_u8. */
  float *f = i8t_aligned_alloc(nf * sizeof *f);
  uint32_t *arg = i8t_aligned_alloc(2 * sg.chunks * C * sizeof *arg);
  uint8_t *cext = i8t_aligned_alloc(4 * sg.chunks * C); /* cmn, cmx, gmx, gmn */
  int64_t *totals = i8t_aligned_alloc(C * (3 * sizeof *totals + 2)); /* Sg, Sgq, Sq, gmin, gmax */
  if ((!by_channels && !red_mem) || !f || !arg || !cext || !totals) {
    st = i8t_error(I8T_ERR_NO_MEMORY, "norm backward u8");
    goto done;
  }
  u8_bwd_job j = {.x = x, .g = dy, .C = C, .rows = rows, .sub = sub,
                  .red_rows = C >= RED_LANES ? 1 : RED_LANES / C, .sg = &sg, .red = red,
                  .range = range, .rep = reps, .out = out, .ws = ws};
  nn_errors_init(&j.err);
  if (!by_channels) i8t_parallel_for(ws->ctx, sg.count, u8_reduce_task, &j);

  float *a = f, *b = f + C, *e = f + 2 * C, *qbar = f + 3 * C, *route = f + 4 * C;
  float *chan_abs = f + 5 * C, *ones = f + 6 * C;
  coef_job cj = {.j = &j, .C = C, .rows = rows, .cm = i8t_range_bn_constant(cfg, rows, sg.chunks),
                 .sx = xq.scale, .sgs = dy_scale, .scale = scale, .gamma = gamma,
                 .dgamma = dgamma, .dbeta = dbeta, .a = a, .b = b, .e = e, .qbar = qbar,
                 .route = route, .chan_abs = chan_abs, .ones = ones, .totals = totals,
                 .amin = arg, .amax = arg + sg.chunks * C, .cmn = cext,
                 .cmx = cext + sg.chunks * C, .gmx = (int8_t *)cext + 2 * sg.chunks * C,
                 .gmn = (int8_t *)cext + 3 * sg.chunks * C};
  if (by_channels)
    i8t_parallel_for(ws->ctx, C / CHANNEL_BLOCK, norm_channel_task, &cj);
  else
    i8t_parallel_for(ws->ctx, nn_task_count(C, COEF_CHANNELS), norm_coef_task, &cj);
  nn_replicate(a, C, reps + REP_A * sub * C);
  nn_replicate(b, C, reps + REP_B * sub * C);
  nn_replicate(e, C, reps + REP_E * sub * C);
  nn_replicate(qbar, C, reps + REP_QBAR * sub * C);
  nn_replicate(out->s8_col_scale ? out->s8_col_scale : ones, C, reps + REP_COL * sub * C);
  if (range) {
    j.route = route, j.amin = cj.amin, j.amax = cj.amax;
  } else {
    j.cmax_abs = f + 7 * C;
    i8t_parallel_for(ws->ctx, sg.count, u8_absmax_task, &j);
    for (size_t c = 0; c < C; c++) {
      chan_abs[c] = 0.0f;
      for (size_t t = 0; t < sg.count; t++) {
        float v = j.cmax_abs[t * C + c];
        chan_abs[c] = v > chan_abs[c] || v != v ? v : chan_abs[c];
      }
    }
  }
  float abs8 = 0.0f, abs16 = 0.0f;
  int nan = 0;
  for (size_t c = 0; c < C; c++) {
    float m8 = out->s8_col_scale ? chan_abs[c] * fabsf(out->s8_col_scale[c]) : chan_abs[c];
    nan |= m8 != m8;
    abs8 = fmaxf(abs8, m8);
    abs16 = fmaxf(abs16, chan_abs[c]);
  }
  if ((st = nn_check_finite(nan ? NAN : abs8, "batch-norm input gradient"))) goto done;
  int bits16 = out->s16_bits ? out->s16_bits : 16;
  j.want_s8 = out->s8 != NULL;
  j.want_s16 = out->s16 != NULL;
  j.s16_from_s8 = j.want_s16 && bits16 == 8 && j.want_s8 && !out->s8_col_scale;
  j.p8 = nn_symmetric(abs8, 8);
  j.p16 = nn_symmetric(abs16, bits16);
  /* The default pair (s8 and 16-bit s16, both stochastic) comes from 16
   * random bits per element on the s8 stream, one hash per two elements:
   * all 16 round s8, their low byte s16 (out->s16_round is then not used);
   * see quantize_f32_s8s16 in kernel_table.h. */
  j.s8s16_pass = j.want_s8 && j.want_s16 && bits16 == 16 && out->s8_round.stochastic &&
                 out->s16_round.stochastic;
  j.inv8 = 1.0f / j.p8.scale;
  j.inv16 = 1.0f / j.p16.scale;
  out->s8_scale = j.p8.scale;
  out->s16_scale = j.s16_from_s8 ? j.p8.scale : j.p16.scale;
  j.rows_per_task = nn_rows_per_task(rows, C);
  size_t tasks = nn_task_count(rows, j.rows_per_task);
  if (range) {
    size_t most = 0;
    for (size_t t = 0; t < sg.count; t++) most = I8T_MAX(most, sg.seg[t].hi - sg.seg[t].lo);
    j.route_blocks = (most + sub - 1) / sub;
    tasks = sg.count;
  }
  /* Slot D: w (a block), v (a block, or a whole segment up to ROUTE_SPAN
   * values), then a segment's sorted terms, block starts, blocks of its terms */
  size_t route_bytes = range ? 2 * C * (sizeof(route_term) + sizeof(uint32_t)) +
                                   (j.route_blocks + 2) * sizeof(size_t)
                             : 0;
  size_t v_values = range ? I8T_MAX(sub * C, (size_t)ROUTE_SPAN) : sub * C;
  if ((st = nn_reserve(ws, NN_SLOT_D, (sub * C + v_values) * 4 + route_bytes + 64))) goto done;
  i8t_parallel_for(ws->ctx, tasks, u8_quantize_task, &j);
  st = nn_errors_get(&j.err);
done:
  free(sg.seg);
  free(red_mem);
  i8t_aligned_free(f);
  i8t_aligned_free(arg);
  i8t_aligned_free(cext);
  i8t_aligned_free(totals);
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
