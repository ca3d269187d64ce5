/* GEMM microkernel template of the x86 paths (see src/x86/README.md): an
 * MR x (NV * I8T_VLANES) tile of int32 accumulators over K groups of 4 bytes
 * per row / column (KR = 4 int8 values or 2 int16 values).
 *
 * Per K group: NV vectors of packed B (NR columns x 4 bytes), then for each
 * row one 32-bit broadcast of A and NV dot steps acc += a * b. The dot step is
 * the only ISA-specific part: vpmaddwd + vpaddd (AVX2), vpdpbusd or vpdpwssd
 * (AVX-512 VNNI). The tile is stored to int32 C (optionally adding C and
 * subtracting a per-column term, and folding the stored values into the
 * driver's range lanes: i8t_ukernel_args.range) or widened into int64 C.
 *
 * A comes from a packed panel or a row-major source (UK_A_PANEL), through MR
 * row pointers in taps (UK_A_ROWS: the implicit-GEMM convolutions), or from
 * one pointer with the MR rows' groups side by side, in taps and blocks of
 * taps (UK_A_TAPS: the weight gradient's pair copies); see i8t_ukernel_args.
 *
 * Defines UK_NAME (the kernel_table.h `run` contract: packed A) and
 * UK_NAME_EX (`run_ex`: i8t_ukernel_args), and UK_SUM_NAME if defined (the
 * i8t_sum_b_fn of this B format: the same dot step with every A value 1).
 * Include after the ISA's vector header with these defined (undefined at
 * the end):
 *   UK_NAME, UK_NAME_EX   function names
 *   UK_SUM_NAME           optional: column sums of a packed B panel
 *   UK_MR, UK_NV          rows, vectors per row (NR = NV * I8T_VLANES)
 *   UK_KR                 K values per group (4 bytes)
 *   UK_DOT(acc, a, b)     the dot step */
#if !defined(UK_NAME) || !defined(UK_NAME_EX) || !defined(UK_MR) || !defined(UK_NV) || \
    !defined(UK_KR) || !defined(UK_DOT)
#error "define UK_NAME, UK_NAME_EX, UK_MR, UK_NV, UK_KR and UK_DOT before including this template"
#endif

#define UK_CAT2(a, b) a##b
#define UK_CAT(a, b) UK_CAT2(a, b)
#define UK_TILE UK_CAT(UK_NAME, _tile)

/* One K group of the tile: NV vectors of B from b (then b moves to the next
 * group), and for each row r (the loop variable ROW_ADDR is written in) the
 * 4 bytes of A at ROW_ADDR broadcast and dotted into acc[r]. */
#define UK_GROUP(ROW_ADDR)                                                              \
  do {                                                                                 \
    i8t_vi bv[UK_NV];                                                                  \
    _Pragma("GCC unroll 8") for (int v = 0; v < UK_NV; v++)                            \
      bv[v] = vi_load(b + v * 4 * I8T_VLANES);                                         \
    _Pragma("GCC unroll 32") for (int r = 0; r < UK_MR; r++) {                         \
      i8t_vi av = vi_bcast32(ROW_ADDR);                                                \
      _Pragma("GCC unroll 8") for (int v = 0; v < UK_NV; v++)                          \
        acc[r][v] = UK_DOT(acc[r][v], av, bv[v]);                                      \
    }                                                                                  \
    b += 4 * UK_NV * I8T_VLANES;                                                       \
  } while (0)

#ifndef UK_A_MODES
#define UK_A_MODES
/* Addressing of A in a tile (kernel_table.h, i8t_ukernel_args). */
enum { UK_A_PANEL = 0, UK_A_ROWS = 1, UK_A_TAPS = 2 };
#endif

/* The int32 tile to C: less the column correction, plus C when
 * accumulating; with FOLD (a constant after inlining) also each stored
 * value into p->range's lanes (kernel_table.h), so that a tile without it
 * pays nothing. */
static inline __attribute__((always_inline)) void UK_CAT(UK_NAME, _store32)(
    const i8t_ukernel_args *p, i8t_vi acc[UK_MR][UK_NV], const int fold) {
  i8t_vi sub[UK_NV], lo = vi_set1(INT32_MAX), hi = vi_set1(INT32_MIN);
  _Pragma("GCC unroll 8") for (int v = 0; v < UK_NV; v++)
    sub[v] = p->col_sub ? vi_load(p->col_sub + v * I8T_VLANES) : vi_zero();
  _Pragma("GCC unroll 32") for (int r = 0; r < UK_MR; r++) {
    int32_t *cr = p->c32 + (size_t)r * p->ldc;
    _Pragma("GCC unroll 8") for (int v = 0; v < UK_NV; v++) {
      i8t_vi out = vi_sub32(acc[r][v], sub[v]);
      if (p->accumulate) out = vi_add32(out, vi_load(cr + v * I8T_VLANES));
      vi_store(cr + v * I8T_VLANES, out);
      if (fold) lo = vi_min32(lo, out), hi = vi_max32(hi, out);
    }
  }
  if (fold) {
    vi_store(p->range, vi_min32(lo, vi_load(p->range)));
    vi_store(p->range + I8T_RANGE_LANES, vi_max32(hi, vi_load(p->range + I8T_RANGE_LANES)));
  }
}

/* The whole tile: inlined into both entry points, so that the packed-A
 * strides of UK_NAME are compile-time constants; `mode` (a constant at each
 * call) selects the addressing of A, so that run_ex holds one whole tile
 * per mode and its usual one is compiled without the others' loops. */
static inline __attribute__((always_inline)) void UK_TILE(const i8t_ukernel_args *p,
                                                          const int mode) {
  const char *a = p->a, *b = p->b;
  const size_t a_row = p->a_row_bytes, a_group = p->a_group_bytes;
  i8t_vi acc[UK_MR][UK_NV];
  _Pragma("GCC unroll 32") for (int r = 0; r < UK_MR; r++) {
    _Pragma("GCC unroll 8") for (int v = 0; v < UK_NV; v++) acc[r][v] = vi_zero();
  }
  if (mode == UK_A_TAPS) { /* interleaved rows: group g of row r at a + 4 r + g * a_group */
    size_t tap = p->a_block_tap; /* taps come in blocks of a_block_taps */
    for (size_t g = p->kc / UK_KR; g > 0; g -= p->a_tap_groups, a += p->a_tap_bytes) {
      const char *t = a;
      for (size_t i = 0; i < p->a_tap_groups; i++, t += a_group) UK_GROUP(t + 4 * r);
      if (++tap == p->a_block_taps) tap = 0, a += p->a_block_skip;
    }
  } else if (mode == UK_A_ROWS) { /* taps of a_tap_groups groups per row pointer */
    const size_t tap_bytes = p->a_tap_groups * a_group;
    const char *rows[UK_MR];
    _Pragma("GCC unroll 32") for (int r = 0; r < UK_MR; r++) rows[r] = p->a_rows[r];
    /* kc / KR groups in whole taps; counted down (no division per call) */
    for (size_t g = p->kc / UK_KR; g > 0; g -= p->a_tap_groups) {
      for (size_t off = 0; off < tap_bytes; off += a_group) UK_GROUP(rows[r] + off);
      _Pragma("GCC unroll 32") for (int r = 0; r < UK_MR; r++) rows[r] += p->a_tap_bytes;
    }
  } else {
    for (size_t g = p->kc / UK_KR; g > 0; g--, a += a_group) UK_GROUP(a + r * a_row);
  }
  if (p->c64) {
    _Pragma("GCC unroll 32") for (int r = 0; r < UK_MR; r++) {
      int64_t *cr = p->c64 + (size_t)r * p->ldc;
      _Pragma("GCC unroll 8") for (int v = 0; v < UK_NV; v++)
        vi_store_s64(cr + v * I8T_VLANES, acc[r][v], p->accumulate);
    }
    return;
  }
  if (p->range)
    UK_CAT(UK_NAME, _store32)(p, acc, 1);
  else
    UK_CAT(UK_NAME, _store32)(p, acc, 0);
}

void UK_NAME(size_t kc, const void *a_packed, const void *b_packed, int32_t *c, size_t ldc,
             int accumulate) {
  const i8t_ukernel_args p = {.kc = kc, .a = a_packed, .a_row_bytes = 4,
                              .a_group_bytes = UK_MR * 4, .b = b_packed, .c32 = c,
                              .ldc = ldc, .accumulate = accumulate};
  UK_TILE(&p, UK_A_PANEL);
}

void UK_NAME_EX(const i8t_ukernel_args *p) {
  if (__builtin_expect(p->a_rows == NULL && p->a_tap_groups == 0, 1)) { /* the usual tile */
    UK_TILE(p, UK_A_PANEL);
  } else if (p->a_rows) {
    UK_TILE(p, UK_A_ROWS);
  } else {
    UK_TILE(p, UK_A_TAPS);
  }
}

#ifdef UK_SUM_NAME
/* sums[c] += column c of the panel: a dot step against a broadcast of ones
 * (KR values of 1 per 32 bits) adds a column's KR values of a group into its
 * lane. Four accumulator sets, one per group of 4 in a row, so that the
 * dependency chains do not limit it (one set ran at a third of the speed). */
void UK_SUM_NAME(const i8t_gemm_ukernel *uk, size_t kc_pad, const void *b_panel,
                 int32_t *sums) {
  enum { SETS = 4, GROUP_BYTES = 4 * UK_NV * I8T_VLANES };
  const char *b = b_panel;
  const i8t_vi ones = vi_set1(UK_KR == 4 ? 0x01010101 : 0x00010001);
  i8t_vi acc[SETS][UK_NV];
  (void)uk;
  _Pragma("GCC unroll 4") for (int s = 0; s < SETS; s++) {
    _Pragma("GCC unroll 8") for (int v = 0; v < UK_NV; v++) acc[s][v] = vi_zero();
  }
  size_t groups = kc_pad / UK_KR, g = 0;
  for (; g + SETS <= groups; g += SETS, b += SETS * GROUP_BYTES) {
    _Pragma("GCC unroll 4") for (int s = 0; s < SETS; s++) {
      _Pragma("GCC unroll 8") for (int v = 0; v < UK_NV; v++)
        acc[s][v] = UK_DOT(acc[s][v], ones, vi_load(b + s * GROUP_BYTES + v * 4 * I8T_VLANES));
    }
  }
  for (; g < groups; g++, b += GROUP_BYTES) {
    _Pragma("GCC unroll 8") for (int v = 0; v < UK_NV; v++)
      acc[0][v] = UK_DOT(acc[0][v], ones, vi_load(b + v * 4 * I8T_VLANES));
  }
  _Pragma("GCC unroll 8") for (int v = 0; v < UK_NV; v++) {
    i8t_vi t = vi_add32(vi_add32(acc[0][v], acc[1][v]), vi_add32(acc[2][v], acc[3][v]));
    vi_store(sums + v * I8T_VLANES, vi_add32(t, vi_load(sums + v * I8T_VLANES)));
  }
}
#undef UK_SUM_NAME
#endif

#undef UK_TILE
#undef UK_GROUP
#undef UK_CAT
#undef UK_CAT2
#undef UK_NAME
#undef UK_NAME_EX
#undef UK_MR
#undef UK_NV
#undef UK_KR
#undef UK_DOT
