/* The portable GEMM driver (BLIS-style): blocking, packing, edge tiles, the
 * zero-point correction and the split over threads are written once here;
 * each ISA contributes only microkernels and packers (kernel_table.h).
 *
 * Loop nest of one task (a block of C of task rows x at most NC columns):
 *   for pc in K by KC:           pack B[pc:pc+KC, block columns] -> NR panels
 *     for each MC-row block of the task's rows:
 *       pack A[block rows, pc:pc+KC]                            -> MR panels
 *       for each NR panel, for each MR panel: microkernel(MR x NR tile)
 * A task may span several MC blocks: its packed B block (KC x NC, meant for
 * L3) is then packed once and reused by all of them, while each A block
 * (MC x KC) still fits L2. Tasks are independent blocks of C, so threads
 * never share an output.
 *
 * With a microkernel's optional run_ex (kernel_table.h) the driver also
 * reads A in place when the source already is the packed type (only edge
 * rows are packed), lets the kernel add into int64 C, and has it subtract
 * the zero-point correction as it stores the last KC block; otherwise edge
 * tiles, int64 sums and the correction go through a small tile buffer.
 *
 * An indirect A (i8t_gemm_u8s8s32_indirect: row pointers and taps, the
 * implicit convolution) is never packed: every tile hands its MR row
 * pointers to run_ex (edge tiles repeat a row and drop its results), and
 * the KC blocks hold whole taps.
 *
 * The correction's column sums of B come from the packed B panels (sum_b),
 * added up by each task over its own columns as it packs each KC block: no
 * separate pass over B, and no output shared between tasks.
 *
 * Row ranges (i8t_gemm_row_ranges: a convolution's per-sample output
 * extremes) are folded as the last KC block is stored: by run_ex into
 * per-worker lanes for a whole tile of one group, by the driver from C for
 * the rest; the lanes are reduced once at the end. */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "kernel_table.h"
#include "pack.h"
#include "threadpool.h"

typedef struct gemm_job {
  const i8t_gemm_ukernel *uk;
  size_t M, N, K, kc;
  size_t mt, nc;          /* task block: rows, columns */
  size_t mc;              /* A block rows within a task (at most the ukernel's MC) */
  size_t tasks_n;         /* tasks along N */
  i8t_pack_src a, b;      /* shifts already set for the packed formats */
  int32_t *c32;           /* int32 output (u8s8, s8s8), or */
  int64_t *c64;           /* int64 output (s16u8): KC blocks summed in int64 */
  size_t ldc;
  int32_t corr_factor;     /* C -= corr_factor * colsum(B); 0 = no correction */
  int a_in_place;          /* A is read where it is (see a_readable_in_place) */
  const i8t_gemm_indirect_a *ind; /* or A is indirect (never packed; kc whole taps) */
  size_t tap_len, tap_groups;      /* indirect: K values, K groups per tap */
  size_t group_pitch;              /* indirect: bytes from a K group to the next */
  int interleaved;                 /* indirect: whole tiles from one pointer */
  int add_to_c;                    /* the first KC block adds into C too */
  const char *b_packed;            /* or B comes packed over the whole K ... */
  size_t b_panel_bytes;            /* ... its NR-column panels this far apart */
  /* Row ranges (i8t_gemm_row_ranges) or NULL: per worker and group, the
   * kernel's range lanes (kernel_table.h), reduced at the end of run_job. */
  const i8t_gemm_row_ranges *ranges;
  size_t range_groups;
  int32_t *range_lanes;
} gemm_job;

enum { RANGE_SLOT = 2 * I8T_RANGE_LANES }; /* 128 bytes: two cache lines */

/* Worker w's range lanes of row group g (RANGE_SLOT values: minimums, then
 * maximums). */
static int32_t *range_slot(const gemm_job *j, int w, size_t g) {
  return j->range_lanes + ((size_t)w * j->range_groups + g) * RANGE_SLOT;
}

/* The driver's share of the ranges: rows [row, row + m) x columns [col,
 * col + n) of C, already final, folded row by row into their groups' lanes
 * (tiles that cross a group boundary, edge tiles, kernels without run_ex). */
static void fold_rows_into_ranges(const gemm_job *j, int worker, size_t row, size_t col,
                                  size_t m, size_t n) {
  i8t_minmax_s32_fn minmax = i8t_kernels()->minmax_s32.run; /* the table's vector loop */
  for (size_t r = row; r < row + m; r++) {
    int32_t *slot = range_slot(j, worker, r / j->ranges->rows_per_group);
    int32_t lo, hi;
    minmax(n, j->c32 + r * j->ldc + col, &lo, &hi);
    slot[0] = lo < slot[0] ? lo : slot[0];
    slot[I8T_RANGE_LANES] = hi > slot[I8T_RANGE_LANES] ? hi : slot[I8T_RANGE_LANES];
  }
}

static size_t a_block_bytes(const gemm_job *j) {
  if (j->ind) return 0; /* never packed */
  return I8T_ROUND_UP(j->mc, j->uk->mr) * I8T_ROUND_UP(j->kc, j->uk->kr) *
         i8t_pack_elem_size(j->uk->a_elem);
}
static size_t b_block_bytes(const gemm_job *j) {
  if (j->b_packed) return 0; /* read where it is */
  return I8T_ROUND_UP(j->nc, j->uk->nr) * I8T_ROUND_UP(j->kc, j->uk->kr) *
         i8t_pack_elem_size(j->uk->b_elem);
}
static size_t tile_bytes(const gemm_job *j) {
  return (size_t)j->uk->mr * j->uk->nr * sizeof(int32_t);
}
/* Column sums of the task's B columns, then their correction terms. */
static size_t sums_bytes(const gemm_job *j) {
  return I8T_ROUND_UP(j->nc, j->uk->nr) * sizeof(int32_t);
}
static size_t scratch_bytes(const gemm_job *j) {
  return a_block_bytes(j) + b_block_bytes(j) + tile_bytes(j) + sums_bytes(j) + 192;
}

static i8t_pack_src offset_src(const i8t_pack_src *s, size_t r, size_t c) {
  i8t_pack_src o = *s;
  o.data = (const char *)s->data +
           (r * s->row_stride + c * s->col_stride) * i8t_pack_elem_size(s->elem);
  return o;
}

/* Where a microkernel finds an MR-row panel of A: group g of row r at
 * a + r * row_bytes + g * group_bytes; or an indirect A in taps (see
 * i8t_ukernel_args), through MR row pointers or, interleaved, from a. */
typedef struct a_panel {
  const char *a;
  size_t row_bytes, group_bytes;
  const void *const *rows; /* indirect A: MR row pointers (then `a` is unused) */
  int interleaved_taps;    /* indirect A from a, rows interleaved */
  size_t block_tap;        /* interleaved: the first tap's place in its block */
} a_panel;

/* Row pointers of an indirect tile (rows [row, row + m) of A, from tap t0 on)
 * never exceed this many (i8t_gemm_u8s8s32_indirect_ok checks MR). */
#define INDIRECT_MAX_MR 32

/* A can skip packing when run_ex exists, rows are contiguous along K and the
 * source already is the packed element type with no shift. */
static int a_readable_in_place(const gemm_job *j) {
  return j->uk->run_ex && j->a.col_stride == 1 && j->a.elem == (i8t_pack_elem)j->uk->a_elem &&
         j->a.shift == 0;
}

/* Adds (or stores, on the first KC block) the m x n valid part of an int32
 * tile into C, subtracting the tile's column correction `corr` (or NULL). */
static void add_tile(const gemm_job *j, const int32_t *tile, size_t row, size_t col, size_t m,
                     size_t n, int first_k, const int32_t *corr) {
  for (size_t r = 0; r < m; r++) {
    const int32_t *t = tile + r * j->uk->nr;
    if (j->c32) {
      int32_t *c = j->c32 + (row + r) * j->ldc + col;
      for (size_t x = 0; x < n; x++) {
        uint32_t v = (uint32_t)t[x] + (first_k ? 0u : (uint32_t)c[x]);
        c[x] = (int32_t)(v - (corr ? (uint32_t)corr[x] : 0u));
      }
    } else {
      int64_t *c = j->c64 + (row + r) * j->ldc + col;
      for (size_t x = 0; x < n; x++) c[x] = first_k ? t[x] : c[x] + t[x];
    }
  }
}

/* One MR x NR tile (m x n valid) of a KC block. Full tiles go straight to C
 * (int32 with `run`; int32 or int64 with run_ex, which also subtracts the
 * correction `corr`, non-NULL on the last KC block only, and folds the
 * stored values into `range` if not NULL); the rest go through `tile` and
 * add_tile. Inlined into gemm_task's tile loop (called out of line, it cost
 * a 16-channel 1x1 convolution's tiles of four K groups 9 %). */
static inline __attribute__((always_inline)) void run_tile(
    const gemm_job *j, a_panel ap, const void *bp, size_t kc_pad, size_t row, size_t col,
    size_t m, size_t n, int first_k, const int32_t *corr, int32_t *range, int32_t *tile) {
  const i8t_gemm_ukernel *uk = j->uk;
  int full = m == uk->mr && n == uk->nr;
  if (uk->run_ex) {
    /* Every field assigned, none zero-filled: an initialiser of this 16-word
     * struct compiled to `rep stos`, which took 40 % of ResNet-18's
     * 7x7x512 weight gradient (its tiles are short). */
    i8t_ukernel_args args;
    int taps = ap.rows || ap.interleaved_taps;
    args.kc = kc_pad;
    args.a = ap.a;
    args.a_row_bytes = ap.row_bytes;
    args.a_group_bytes = ap.group_bytes;
    args.b = bp;
    args.accumulate = !first_k;
    args.col_sub = NULL;
    args.a_rows = ap.rows;
    args.a_tap_bytes = taps ? j->ind->tap_pitch : 0;
    args.a_tap_groups = taps ? j->tap_groups : 0;
    args.a_block_taps = taps ? j->ind->block_taps : 0;
    args.a_block_tap = ap.block_tap;
    args.a_block_skip = taps ? j->ind->block_pitch - j->ind->block_taps * j->ind->tap_pitch : 0;
    args.range = NULL;
    if (full) {
      args.c32 = j->c32 ? j->c32 + row * j->ldc + col : NULL;
      args.c64 = j->c64 ? j->c64 + row * j->ldc + col : NULL;
      args.ldc = j->ldc;
      args.col_sub = corr;
      args.range = range;
      uk->run_ex(&args);
      return;
    }
    args.c32 = tile;
    args.c64 = NULL;
    args.ldc = uk->nr;
    args.accumulate = 0;
    uk->run_ex(&args);
  } else if (full && j->c32 && !corr) {
    uk->run(kc_pad, ap.a, bp, j->c32 + row * j->ldc + col, j->ldc, !first_k);
    return;
  } else {
    uk->run(kc_pad, ap.a, bp, tile, uk->nr, 0);
  }
  add_tile(j, tile, row, col, m, n, first_k, corr);
}

/* The MR row pointers of an indirect tile, rows [row, row + m) of A from
 * tap t0 on: the caller's own for a whole tile of the first taps, else
 * copied to rp, moved to tap t0, rows past m repeating the first (their
 * results are dropped). */
static const void *const *indirect_tile_rows(const gemm_job *j, size_t row, size_t m,
                                             size_t t0, const void **rp) {
  const void *const *rows = j->ind->rows + row;
  if (t0 == 0 && m == j->uk->mr) return rows;
  size_t skip = t0 * j->ind->tap_pitch;
  for (size_t r = 0; r < j->uk->mr; r++) rp[r] = (const char *)rows[r < m ? r : 0] + skip;
  return rp;
}

/* The correction terms of NR columns from their column sums over the whole K
 * in the packed domain (which added the B shift K times): in place. */
static void sums_to_correction(const gemm_job *j, int32_t *sums) {
  uint32_t shift_k = (uint32_t)j->b.shift * (uint32_t)j->K;
  for (size_t x = 0; x < j->uk->nr; x++)
    sums[x] = (int32_t)(((uint32_t)sums[x] - shift_k) * (uint32_t)j->corr_factor);
}

/* One task; RANGES (a constant after inlining: gemm_task) says whether the
 * GEMM takes row ranges, so that a GEMM without them runs the tile loop it
 * had before they existed (its per-tile checks cost the 4-group tiles of a
 * 16-channel 1x1 convolution 5 %). */
static inline __attribute__((always_inline)) void gemm_task_body(const gemm_job *j, size_t task,
                                                                 int worker, void *scratch,
                                                                 const int RANGES) {
  const i8t_gemm_ukernel *uk = j->uk;
  size_t task_row0 = (task / j->tasks_n) * j->mt, col0 = (task % j->tasks_n) * j->nc;
  size_t task_mb = I8T_MIN(j->mt, j->M - task_row0), nb = I8T_MIN(j->nc, j->N - col0);
  char *apack = scratch;
  char *bpack = apack + I8T_ROUND_UP(a_block_bytes(j), 64);
  int32_t *tile = (int32_t *)(bpack + I8T_ROUND_UP(b_block_bytes(j), 64));
  int32_t *sums = j->corr_factor ? tile + I8T_ROUND_UP(tile_bytes(j), 64) / sizeof *tile : NULL;
  i8t_pack_a_fn pack_a = uk->pack_a ? uk->pack_a : i8t_pack_a_portable;
  i8t_pack_b_fn pack_b = uk->pack_b ? uk->pack_b : i8t_pack_b_portable;
  i8t_sum_b_fn sum_b = uk->sum_b ? uk->sum_b : i8t_sum_b_portable;
  if (sums) memset(sums, 0, sums_bytes(j));
  size_t a_esize = i8t_pack_elem_size(uk->a_elem), b_esize = i8t_pack_elem_size(uk->b_elem);

  for (size_t pc = 0; pc < j->K; pc += j->kc) {
    size_t kb = I8T_MIN(j->kc, j->K - pc), kc_pad = I8T_ROUND_UP(kb, uk->kr);
    i8t_pack_src bs = offset_src(&j->b, pc, col0);
    if (!j->b_packed) pack_b(uk, &bs, kb, nb, bpack);
    int first_k = pc == 0 && !j->add_to_c, last_k = pc + kb == j->K;
    size_t tap0 = j->ind ? pc / j->tap_len : 0; /* no division per tile */
    size_t bt = j->ind ? j->ind->block_taps : 0, block_tap0 = bt ? tap0 % bt : 0;
    size_t tap0_bytes = !j->ind ? 0
                        : bt    ? tap0 / bt * j->ind->block_pitch + block_tap0 * j->ind->tap_pitch
                                : tap0 * j->ind->tap_pitch;
    for (size_t row0 = task_row0; row0 < task_row0 + task_mb; row0 += j->mc) {
      size_t mb = I8T_MIN(j->mc, task_row0 + task_mb - row0);
      int first_m = row0 == task_row0; /* the one that sums the B panels */
      /* Rows [0, m_direct) of the block are read in place (whole panels, and
       * only when this KC block holds whole K groups); the rest are packed. */
      size_t m_direct = j->ind ? mb
                        : j->a_in_place && kb % uk->kr == 0 ? mb / uk->mr * uk->mr : 0;
      if (mb > m_direct) {
        i8t_pack_src as = offset_src(&j->a, row0 + m_direct, pc);
        pack_a(uk, &as, mb - m_direct, kb, apack);
      }
      for (size_t jr = 0; jr < nb; jr += uk->nr) {
        const char *bp = j->b_packed /* panel (col0 + jr) / NR from k = pc, or jr / NR */
                             ? j->b_packed + (col0 + jr) / uk->nr * j->b_panel_bytes +
                                   pc * uk->nr * b_esize
                             : bpack + jr * kc_pad * b_esize;
        /* Summed just before its first tiles: the panel is then in L1. */
        if (sums && first_m) sum_b(uk, kc_pad, bp, sums + jr);
        if (sums && first_m && last_k) sums_to_correction(j, sums + jr);
        const int32_t *corr = sums && last_k ? sums + jr : NULL;
        const int ranged = RANGES && last_k;
        const size_t rpg = ranged ? j->ranges->rows_per_group : 1;
        size_t group = ranged ? row0 / rpg : 0, group_end = (group + 1) * rpg;
        for (size_t ir = 0; ir < mb; ir += uk->mr) {
          a_panel ap;
          const void *rp[INDIRECT_MAX_MR];
          if (j->ind && j->interleaved && mb - ir >= uk->mr) {
            ap = (a_panel){(const char *)j->ind->rows[row0 + ir] + tap0_bytes, 0, j->group_pitch,
                           NULL, 1, block_tap0};
          } else if (j->ind) {
            ap = (a_panel){NULL, 0, j->group_pitch,
                           indirect_tile_rows(j, row0 + ir, I8T_MIN(uk->mr, mb - ir),
                                              tap0, rp), 0, 0};
          } else if (ir < m_direct) {
            ap = (a_panel){offset_src(&j->a, row0 + ir, pc).data, j->a.row_stride * a_esize,
                           uk->kr * a_esize, NULL, 0, 0};
          } else {
            /* panel (ir - m_direct) / MR: MR * kc_pad elements each */
            ap = (a_panel){apack + (ir - m_direct) * kc_pad * a_esize, uk->kr * a_esize,
                           (size_t)uk->mr * uk->kr * a_esize, NULL, 0, 0};
          }
          const size_t row = row0 + ir, m = I8T_MIN(uk->mr, mb - ir);
          const size_t n = I8T_MIN(uk->nr, nb - jr);
          /* Row ranges, on the last KC block: the kernel folds a whole tile
           * of one group as it stores it, the driver any other tile from C
           * (the group followed from tile to tile, no division per tile). */
          int32_t *range = NULL;
          int fold_from_c = 0;
          if (ranged) {
            for (; row >= group_end; group_end += rpg) group++;
            if (uk->run_ex && m == uk->mr && n == uk->nr && row + m <= group_end)
              range = range_slot(j, worker, group);
            else
              fold_from_c = 1;
          }
          run_tile(j, ap, bp, kc_pad, row, col0 + jr, m, n, first_k, corr, range, tile);
          if (fold_from_c) fold_rows_into_ranges(j, worker, row, col0 + jr, m, n);
        }
      }
    }
  }
}

static void gemm_task(const gemm_job *j, size_t task, int worker, void *scratch) {
  if (j->ranges)
    gemm_task_body(j, task, worker, scratch, 1);
  else
    gemm_task_body(j, task, worker, scratch, 0);
}

typedef struct task_adapter {
  gemm_job *job;
  i8t_context *ctx;
  atomic_int no_scratch; /* a worker got no scratch: C is incomplete */
} task_adapter;

static void gemm_task_in_pool(void *arg, size_t task, int worker) {
  task_adapter *t = arg;
  void *scratch = i8t_context_scratch(t->ctx, worker, scratch_bytes(t->job));
  if (!scratch) {
    atomic_store_explicit(&t->no_scratch, 1, memory_order_relaxed);
    return;
  }
  gemm_task(t->job, task, worker, scratch);
}

/* Cost of one task per k, in multiply-adds: its tile area plus the elements
 * it packs, each worth PACK_COST (every task packs its A rows and its B
 * columns once per KC block, so many small tasks cost more than a few big
 * ones). 32 matches what 1-thread runs of 2-thread splits measured with the
 * AVX-512 kernels. */
#define PACK_COST 32.0
/* Imbalance that noise (other processes, a late wake-up) adds at the end of
 * a parallel GEMM, as a fraction of one task: favours more, smaller tasks. */
#define NOISE_TAIL 0.125

static double task_work(size_t m, size_t n) {
  return (double)m * (double)n + PACK_COST * (double)(m + n);
}

/* Block size (a multiple of `unit`) that splits `total` into `blocks` nearly
 * equal parts, so that no thread is left with a sliver. */
static size_t even_split(size_t total, size_t blocks, unsigned unit) {
  return I8T_ROUND_UP((total + blocks - 1) / blocks, unit);
}

/* Estimated time of a split, per k. Tasks go in order to whichever worker
 * is free first (the pool's atomic counter): simulated exactly when that is
 * cheap, else whole waves of average tasks. */
static double split_time(size_t M, size_t N, size_t mc, size_t nc, int threads) {
  size_t rows = (M + mc - 1) / mc, cols = (N + nc - 1) / nc, tasks = rows * cols;
  size_t m_last = M - (rows - 1) * mc, n_last = N - (cols - 1) * nc;
  double total = (double)((rows - 1) * (cols - 1)) * task_work(mc, nc) +
                 (double)(rows - 1) * task_work(mc, n_last) +
                 (double)(cols - 1) * task_work(m_last, nc) + task_work(m_last, n_last);
  if (threads <= 1) return total;
  double tail = NOISE_TAIL * task_work(mc, nc);
  if (threads > 64 || tasks * (size_t)threads > 1024) {
    size_t waves = (tasks + (size_t)threads - 1) / (size_t)threads;
    return total / (double)tasks * (double)waves + tail;
  }
  double finish[64] = {0}, end = 0;
  for (size_t r = 0; r < rows; r++) {
    for (size_t c = 0; c < cols; c++) {
      int w = 0;
      for (int i = 1; i < threads; i++)
        if (finish[i] < finish[w]) w = i;
      finish[w] += task_work(r + 1 < rows ? mc : m_last, c + 1 < cols ? nc : n_last);
      end = I8T_MAX(end, finish[w]);
    }
  }
  return end + tail;
}

/* The next number of row blocks to try: every count up to a few per worker
 * (tasks spanning several MC blocks pack their B columns only once), then
 * the counts around the MC split from bm0 to bm_hi in steps of bm_step. */
static size_t next_row_blocks(size_t bm, size_t few, size_t bm0, size_t bm_step) {
  if (bm < few && bm + 1 < bm0) return bm + 1;
  return bm < bm0 ? bm0 : bm + bm_step;
}

/* Splits C into tasks of some rows x about the ukernel's NC columns,
 * choosing among even splits (from one row block, and from the fewest NC
 * blocks, to a few more per worker) the one with the lowest split_time; the
 * A block of a task (mc) is then an even split of its rows into at most MC.
 * Any split gives bit-identical results (the integer sums are exact, and the
 * KC blocks are added in order); only the speed depends on it. */
static void search_blocks(gemm_job *j, int threads) {
  const i8t_gemm_ukernel *uk = j->uk;
  size_t mc_max = I8T_ROUND_UP(I8T_MIN((size_t)(uk->mc ? uk->mc : 192), j->M), uk->mr);
  size_t nc_max = I8T_ROUND_UP(I8T_MIN((size_t)(uk->nc ? uk->nc : 512), j->N), uk->nr);
  size_t bm0 = (j->M + mc_max - 1) / mc_max, bn0 = (j->N + nc_max - 1) / nc_max;
  size_t extra = threads > 1 ? 4 * (size_t)threads : 0;
  size_t bm_hi = I8T_MIN(bm0 + extra, (j->M + uk->mr - 1) / uk->mr);
  size_t bn_hi = I8T_MIN(bn0 + extra, (j->N + uk->nr - 1) / uk->nr);
  size_t mc_limit = mc_max;
  if (threads > 1) { /* blocks up to 25% over MC x NC, if that balances better */
    mc_limit = mc_max * 5 / 4;
    bm0 = (j->M + mc_limit - 1) / mc_limit;
    bn0 = (j->N + nc_max * 5 / 4 - 1) / (nc_max * 5 / 4);
  }
  size_t bm_step = I8T_MAX((size_t)1, (bm_hi - bm0) / 16);
  size_t bn_step = I8T_MAX((size_t)1, (bn_hi - bn0) / 16);
  size_t few = 4 * (size_t)threads;
  double best = -1.0;
  for (size_t bm = 1; bm <= bm_hi; bm = next_row_blocks(bm, few, bm0, bm_step)) {
    size_t mt = even_split(j->M, bm, uk->mr);
    for (size_t bn = bn0; bn <= bn_hi; bn += bn_step) {
      size_t nc = even_split(j->N, bn, uk->nr);
      double t = split_time(j->M, j->N, mt, nc, threads);
      if (best < 0 || t < best) {
        best = t;
        j->mt = mt;
        j->nc = nc;
      }
    }
  }
  j->mc = even_split(j->mt, (j->mt + mc_limit - 1) / mc_limit, uk->mr);
}

/* The search takes microseconds, and a training step repeats the same few
 * shapes, so every thread remembers its recent choices. */
typedef struct split_memo {
  const i8t_gemm_ukernel *uk;
  size_t M, N, mt, mc, nc;
  int threads;
} split_memo;
static _Thread_local split_memo split_memos[64];

static void choose_blocks(gemm_job *j, int threads) {
  split_memo *m = &split_memos[(j->M * 31 + j->N * 7 + (size_t)threads) % 64];
  if (m->uk != j->uk || m->M != j->M || m->N != j->N || m->threads != threads) {
    search_blocks(j, threads);
    *m = (split_memo){j->uk, j->M, j->N, j->mt, j->mc, j->nc, threads};
  }
  j->mt = m->mt;
  j->mc = m->mc;
  j->nc = m->nc;
  j->tasks_n = (j->N + j->nc - 1) / j->nc;
}

static i8t_status run_tasks(i8t_context *ctx, gemm_job *j, size_t tasks) {
  if (ctx) {
    task_adapter t = {j, ctx, 0};
    i8t_parallel_for(ctx, tasks, gemm_task_in_pool, &t);
    if (atomic_load(&t.no_scratch))
      return i8t_error(I8T_ERR_NO_MEMORY, "GEMM: no scratch memory of %zu bytes for a worker",
                       scratch_bytes(j));
    return I8T_OK;
  }
  void *scratch = i8t_aligned_alloc(scratch_bytes(j));
  if (!scratch) return i8t_error(I8T_ERR_NO_MEMORY, "GEMM scratch of %zu bytes", scratch_bytes(j));
  for (size_t t = 0; t < tasks; t++) gemm_task(j, t, 0, scratch);
  i8t_aligned_free(scratch);
  return I8T_OK;
}

/* The requested row ranges from the workers' lanes. */
static void reduce_ranges(const gemm_job *j, int workers) {
  for (size_t g = 0; g < j->range_groups; g++) {
    int32_t lo = INT32_MAX, hi = INT32_MIN;
    for (int w = 0; w < workers; w++) {
      const int32_t *slot = range_slot(j, w, g);
      for (int l = 0; l < I8T_RANGE_LANES; l++) {
        lo = slot[l] < lo ? slot[l] : lo;
        hi = slot[I8T_RANGE_LANES + l] > hi ? slot[I8T_RANGE_LANES + l] : hi;
      }
    }
    j->ranges->min[g] = lo, j->ranges->max[g] = hi;
  }
}

static i8t_status run_job(i8t_context *ctx, gemm_job *j) {
  int threads = i8t_context_threads(ctx);
  choose_blocks(j, threads);
  size_t tasks = ((j->M + j->mt - 1) / j->mt) * j->tasks_n;
  if (!j->ranges) return run_tasks(ctx, j, tasks);
  /* Cache-line aligned, whole lines per slot: each worker writes its own
   * lines only (lanes on the caller's stack, beside its hot frames, made a
   * 2-thread ResNet-18 layer 30 % slower). */
  const int workers = ctx ? threads : 1;
  j->range_groups = (j->M + j->ranges->rows_per_group - 1) / j->ranges->rows_per_group;
  size_t lanes = (size_t)workers * j->range_groups * RANGE_SLOT;
  j->range_lanes = i8t_aligned_alloc(lanes * sizeof *j->range_lanes);
  if (!j->range_lanes) return i8t_error(I8T_ERR_NO_MEMORY, "GEMM row ranges");
  for (size_t i = 0; i < lanes; i++)
    j->range_lanes[i] = i % RANGE_SLOT < I8T_RANGE_LANES ? INT32_MAX : INT32_MIN;
  i8t_status st = run_tasks(ctx, j, tasks);
  if (!st) reduce_ranges(j, workers);
  i8t_aligned_free(j->range_lanes);
  return st;
}

/* Largest KC whose int32 partial sums cannot overflow when every packed
 * product is at most max_product in magnitude. */
static size_t overflow_safe_kc(size_t want, int64_t max_product, unsigned kr) {
  size_t limit = (size_t)(INT32_MAX / max_product);
  limit = limit / kr * kr;
  return I8T_MAX((size_t)kr, I8T_MIN(want, limit));
}

/* The KC that splits K into as few blocks of at most `kc` as possible, all
 * of nearly equal size (a multiple of kr): no short last block that pays a
 * full pass over C for little work. */
static size_t balanced_kc(size_t K, size_t kc, unsigned kr) {
  size_t blocks = (K + kc - 1) / kc;
  return I8T_ROUND_UP((K + blocks - 1) / blocks, kr);
}

static i8t_status check_common(size_t M, size_t N, size_t K, const void *a, const void *b,
                               const void *c, size_t ldc) {
  if (!a || !b || !c) return i8t_error(I8T_ERR_INVALID_ARG, "GEMM: NULL operand");
  if (M == 0 || N == 0 || K == 0)
    return i8t_error(I8T_ERR_SHAPE, "GEMM: empty shape M=%zu N=%zu K=%zu", M, N, K);
  if (ldc < N) return i8t_error(I8T_ERR_SHAPE, "GEMM: ldc=%zu < N=%zu", ldc, N);
  return I8T_OK;
}

/* The KC bound of the int8 GEMMs: packed products are at most 255 * 128
 * (u8 x s8, or the -128 shift), so no int32 partial sum overflows. */
static size_t u8s8_kc_limit(const i8t_gemm_ukernel *uk) {
  return overflow_safe_kc(uk->kc ? uk->kc : 512, 255 * 128, uk->kr);
}

/* The s8 B operand of the int8 GEMMs, shifted to the kernel's packed type. */
static i8t_pack_src s8_b_src(const i8t_gemm_ukernel *uk, i8t_matrix B) {
  return (i8t_pack_src){B.data, B.row_stride, B.col_stride, I8T_PACK_S8,
                        i8t_pack_shift(I8T_PACK_S8, uk->b_elem, 0)};
}

/* Row ranges need a group size and both outputs. */
static i8t_status check_ranges(const i8t_gemm_row_ranges *r) {
  if (r && (r->rows_per_group == 0 || !r->min || !r->max))
    return i8t_error(I8T_ERR_INVALID_ARG, "GEMM row ranges: no rows per group or NULL outputs");
  return I8T_OK;
}

/* u8s8 and s8s8 share everything but the source type and zero point of A. */
static i8t_status gemm_x8s8s32(i8t_context *ctx, const i8t_gemm_ukernel *uk, size_t M,
                               size_t N, size_t K, i8t_matrix A, i8t_pack_elem a_src,
                               int32_t a_zp, i8t_matrix B, int32_t *C, size_t ldc,
                               const i8t_gemm_row_ranges *ranges) {
  i8t_status st = check_common(M, N, K, A.data, B.data, C, ldc);
  if (st || (st = check_ranges(ranges))) return st;
  if (K > I8T_GEMM_MAX_K)
    return i8t_error(I8T_ERR_SHAPE, "GEMM: K=%zu exceeds the int32-exact limit %d", K,
                     I8T_GEMM_MAX_K);
  gemm_job j = {.uk = uk, .M = M, .N = N, .K = K, .c32 = C, .ldc = ldc, .ranges = ranges};
  j.a = (i8t_pack_src){A.data, A.row_stride, A.col_stride, a_src,
                       i8t_pack_shift(a_src, uk->a_elem, a_zp)};
  j.b = s8_b_src(uk, B);
  j.kc = balanced_kc(K, u8s8_kc_limit(uk), uk->kr);
  /* see kernel_table.h; an S16-packed A has its zero point subtracted */
  j.corr_factor = uk->a_elem != I8T_PACK_S16 ? a_zp + j.a.shift : 0;
  j.a_in_place = a_readable_in_place(&j);
  return run_job(ctx, &j);
}

static const i8t_kernel_table *table(void) { return i8t_kernels(); }

const i8t_gemm_ukernel *i8t_gemm_ukernel_for(const i8t_kernel_table *t, i8t_gemm_kind kind,
                                             size_t N) {
  const i8t_gemm_ukernel *wide = kind == I8T_GEMM_U8S8S32   ? &t->gemm_u8s8s32
                                 : kind == I8T_GEMM_S8S8S32 ? &t->gemm_s8s8s32
                                                            : &t->gemm_s16u8s32;
  const i8t_gemm_ukernel *narrow = kind == I8T_GEMM_U8S8S32   ? &t->gemm_u8s8s32_narrow
                                   : kind == I8T_GEMM_S8S8S32 ? &t->gemm_s8s8s32_narrow
                                                              : &t->gemm_s16u8s32_narrow;
  return narrow->run && N <= narrow->nr && narrow->nr < wide->nr ? narrow : wide;
}

size_t i8t_gemm_panel_width(i8t_gemm_kind kind, size_t N) {
  return i8t_gemm_ukernel_for(table(), kind, N)->nr;
}

i8t_status i8t_gemm_u8s8s32_ranged(i8t_context *ctx, size_t M, size_t N, size_t K,
                                   i8t_matrix A, uint8_t a_zero_point, i8t_matrix B, int32_t *C,
                                   size_t ldc, const i8t_gemm_row_ranges *ranges) {
  return gemm_x8s8s32(ctx, i8t_gemm_ukernel_for(table(), I8T_GEMM_U8S8S32, N), M, N, K, A,
                      I8T_PACK_U8, a_zero_point, B, C, ldc, ranges);
}

i8t_status i8t_gemm_u8s8s32(i8t_context *ctx, size_t M, size_t N, size_t K, i8t_matrix A,
                            uint8_t a_zero_point, i8t_matrix B, int32_t *C, size_t ldc) {
  return i8t_gemm_u8s8s32_ranged(ctx, M, N, K, A, a_zero_point, B, C, ldc, NULL);
}

i8t_status i8t_gemm_s8s8s32(i8t_context *ctx, size_t M, size_t N, size_t K, i8t_matrix A,
                            i8t_matrix B, int32_t *C, size_t ldc) {
  return gemm_x8s8s32(ctx, i8t_gemm_ukernel_for(table(), I8T_GEMM_S8S8S32, N), M, N, K, A,
                      I8T_PACK_S8, 0, B, C, ldc, NULL);
}


/* Whether kernel uk reads an indirect A of element type `elem` in taps of
 * tap_bytes: run_ex, that packed type, whole K groups per tap and a tap
 * within one KC block of at most kc_limit values. */
static int indirect_ok(const i8t_gemm_ukernel *uk, i8t_pack_elem elem, size_t tap_bytes,
                       size_t kc_limit) {
  size_t group_bytes = (size_t)uk->kr * i8t_pack_elem_size(elem);
  return uk->run_ex && uk->a_elem == elem && uk->mr <= INDIRECT_MAX_MR && tap_bytes > 0 &&
         tap_bytes % group_bytes == 0 && tap_bytes / i8t_pack_elem_size(elem) <= kc_limit;
}

/* Blocks of taps need every tile read from one pointer (interleaved rows,
 * whole tiles): the row-pointer kernels step taps at one pitch only. */
static int blocks_ok(const i8t_gemm_ukernel *uk, size_t M, const i8t_gemm_indirect_a *A) {
  return A->block_taps == 0 ||
         (A->interleave && A->interleave % uk->mr == 0 && M % uk->mr == 0 &&
          A->block_pitch >= A->block_taps * A->tap_pitch);
}

/* KC of an indirect A: blocks of whole taps, as few as fit in kc_limit
 * values, nearly equal. */
static void indirect_blocks(gemm_job *j, size_t kc_limit) {
  size_t esize = i8t_pack_elem_size(j->uk->a_elem);
  j->tap_len = j->ind->tap_bytes / esize;
  j->tap_groups = j->tap_len / j->uk->kr;
  j->group_pitch = j->ind->group_pitch ? j->ind->group_pitch : j->uk->kr * esize;
  j->interleaved = j->ind->interleave && j->ind->interleave % j->uk->mr == 0;
  size_t max_taps = kc_limit / j->tap_len, blocks = (j->ind->taps + max_taps - 1) / max_taps;
  j->kc = (j->ind->taps + blocks - 1) / blocks * j->tap_len;
}

int i8t_gemm_u8s8s32_indirect_ok(size_t N, size_t tap_bytes) {
  const i8t_gemm_ukernel *uk = i8t_gemm_ukernel_for(table(), I8T_GEMM_U8S8S32, N);
  return indirect_ok(uk, I8T_PACK_U8, tap_bytes, u8s8_kc_limit(uk));
}

i8t_status i8t_gemm_u8s8s32_indirect(i8t_context *ctx, size_t M, size_t N,
                                     const i8t_gemm_indirect_a *A, uint8_t a_zero_point,
                                     i8t_matrix B, int32_t *C, size_t ldc) {
  return i8t_gemm_u8s8s32_indirect_ranged(ctx, M, N, A, a_zero_point, B, C, ldc, NULL);
}

i8t_status i8t_gemm_u8s8s32_indirect_ranged(i8t_context *ctx, size_t M, size_t N,
                                            const i8t_gemm_indirect_a *A, uint8_t a_zero_point,
                                            i8t_matrix B, int32_t *C, size_t ldc,
                                            const i8t_gemm_row_ranges *ranges) {
  const i8t_gemm_ukernel *uk = i8t_gemm_ukernel_for(table(), I8T_GEMM_U8S8S32, N);
  if (!A) return i8t_error(I8T_ERR_INVALID_ARG, "indirect GEMM: NULL A");
  size_t K = A->taps * A->tap_bytes;
  i8t_status st = check_common(M, N, K, A->rows, B.data, C, ldc);
  if (st || (st = check_ranges(ranges))) return st;
  if (K > I8T_GEMM_MAX_K)
    return i8t_error(I8T_ERR_SHAPE, "indirect GEMM: K=%zu exceeds the int32-exact limit %d", K,
                     I8T_GEMM_MAX_K);
  if (!indirect_ok(uk, I8T_PACK_U8, A->tap_bytes, u8s8_kc_limit(uk)) || !blocks_ok(uk, M, A))
    return i8t_error(I8T_ERR_UNSUPPORTED,
                     "indirect GEMM: kernel %s cannot read taps of %zu bytes in place",
                     uk->name, A->tap_bytes);
  gemm_job j = {.uk = uk, .M = M, .N = N, .K = K, .c32 = C, .ldc = ldc, .ind = A,
                .ranges = ranges};
  j.b = s8_b_src(uk, B);
  indirect_blocks(&j, u8s8_kc_limit(uk));
  j.corr_factor = a_zero_point; /* A packed as raw u8: shift 0 */
  return run_job(ctx, &j);
}

/* The KC bound of the int16 GEMMs: products of at most 32768 * 255 in
 * magnitude (an int16 error times a u8 activation less its zero point). */
static size_t s16_kc_limit(const i8t_gemm_ukernel *uk) {
  return overflow_safe_kc(uk->kc ? uk->kc : 256, 32768 * 255, uk->kr);
}

int i8t_gemm_s16s16s64_indirect_ok(size_t M, size_t N, const i8t_gemm_indirect_a *A) {
  const i8t_gemm_ukernel *uk = i8t_gemm_ukernel_for(table(), I8T_GEMM_S16U8S64, N);
  return A && indirect_ok(uk, I8T_PACK_S16, A->tap_bytes, s16_kc_limit(uk)) &&
         blocks_ok(uk, M, A);
}

/* The two s16 indirect entry points: B as a matrix, or packed (b_packed). */
static i8t_status gemm_s16s16s64_indirect(i8t_context *ctx, size_t M, size_t N,
                                          const i8t_gemm_indirect_a *A, i8t_matrix B,
                                          const int16_t *b_packed, int64_t *C, size_t ldc,
                                          int accumulate) {
  const i8t_gemm_ukernel *uk = i8t_gemm_ukernel_for(table(), I8T_GEMM_S16U8S64, N);
  if (!A) return i8t_error(I8T_ERR_INVALID_ARG, "indirect s16 GEMM: NULL A");
  const void *b = b_packed ? (const void *)b_packed : B.data;
  i8t_status st = check_common(M, N, A->taps * (A->tap_bytes / 2), A->rows, b, C, ldc);
  if (st) return st;
  if (!i8t_gemm_s16s16s64_indirect_ok(M, N, A))
    return i8t_error(I8T_ERR_UNSUPPORTED,
                     "indirect s16 GEMM: kernel %s cannot read taps of %zu bytes (blocks of %zu) "
                     "in place",
                     uk->name, A->tap_bytes, A->block_taps);
  gemm_job j = {.uk = uk, .M = M, .N = N, .K = A->taps * (A->tap_bytes / 2), .c64 = C,
                .ldc = ldc, .ind = A, .add_to_c = accumulate != 0};
  j.b = (i8t_pack_src){B.data, B.row_stride, B.col_stride, I8T_PACK_S16, 0};
  if (b_packed) {
    j.b_packed = (const char *)b_packed;
    j.b_panel_bytes = j.K * uk->nr * sizeof(int16_t);
  }
  indirect_blocks(&j, s16_kc_limit(uk));
  return run_job(ctx, &j);
}

i8t_status i8t_gemm_s16s16s64_indirect(i8t_context *ctx, size_t M, size_t N,
                                       const i8t_gemm_indirect_a *A, i8t_matrix B, int64_t *C,
                                       size_t ldc, int accumulate) {
  return gemm_s16s16s64_indirect(ctx, M, N, A, B, NULL, C, ldc, accumulate);
}

i8t_status i8t_gemm_s16s16s64_indirect_packed(i8t_context *ctx, size_t M, size_t N,
                                              const i8t_gemm_indirect_a *A,
                                              const int16_t *b_packed, int64_t *C, size_t ldc,
                                              int accumulate) {
  i8t_matrix none = {NULL, 0, 0};
  return gemm_s16s16s64_indirect(ctx, M, N, A, none, b_packed, C, ldc, accumulate);
}

i8t_status i8t_gemm_s16u8s64(i8t_context *ctx, size_t M, size_t N, size_t K, i8t_matrix A,
                             i8t_matrix B, uint8_t b_zero_point, int64_t *C, size_t ldc) {
  const i8t_gemm_ukernel *uk = i8t_gemm_ukernel_for(table(), I8T_GEMM_S16U8S64, N);
  i8t_status st = check_common(M, N, K, A.data, B.data, C, ldc);
  if (st) return st;
  gemm_job j = {.uk = uk, .M = M, .N = N, .K = K, .c64 = C, .ldc = ldc};
  j.a = (i8t_pack_src){A.data, A.row_stride, A.col_stride, I8T_PACK_S16, 0};
  /* B is always packed as int16 (b - zp): no correction term. */
  j.b = (i8t_pack_src){B.data, B.row_stride, B.col_stride, I8T_PACK_U8,
                       i8t_pack_shift(I8T_PACK_U8, I8T_PACK_S16, b_zero_point)};
  /* |a| <= 32767 (32768 if a caller passes -32768), |b - zp| <= 255. */
  j.kc = balanced_kc(K, s16_kc_limit(uk), uk->kr);
  j.a_in_place = a_readable_in_place(&j);
  return run_job(ctx, &j);
}
