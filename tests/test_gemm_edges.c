/* GEMM edge cases that depend on each path's tile (MR, NR, KR, KC) and on
 * its packers, driven by the same ISA list as test_gemm.c:
 *   - every packer of every table, byte for byte against the portable one,
 *     for row-major, transposed and doubly strided sources, sizes around
 *     MR / NR / KR (edge panels, K tails, zero padding);
 *   - every microkernel's entry points (run, and run_ex with A packed,
 *     read in place or indirect (row pointers and taps), int32 or int64 C, accumulation, the column correction)
 *     against a plain int64 product of the packed panels, at the extreme
 *     values each packed format can hold, and the column sums of its packed
 *     B panels (sum_b);
 *   - whole GEMMs with shapes around MR / NR / KR and the KC blocking, with A
 *     and B in every layout (B transposed and strided too).
 * Each kind's optional narrow microkernel (kernel_table.h) gets all three. */
#include <stdlib.h>
#include <string.h>

#include "isa_list.h"
#include "kernel_table.h"
#include "pack.h"
#include "test_util.h"

typedef enum { KIND_U8S8, KIND_S8S8, KIND_S16U8, KIND_COUNT } gemm_kind;

/* The main (narrow = 0) or narrow (1) microkernel of a kind; NULL for a
 * narrow one the table does not have. */
static const i8t_gemm_ukernel *ukernel_of(const i8t_kernel_table *t, gemm_kind k, int narrow) {
  if (narrow) {
    const i8t_gemm_ukernel *uk = k == KIND_U8S8   ? &t->gemm_u8s8s32_narrow
                                 : k == KIND_S8S8 ? &t->gemm_s8s8s32_narrow
                                                  : &t->gemm_s16u8s32_narrow;
    return uk->run ? uk : NULL;
  }
  return k == KIND_U8S8 ? &t->gemm_u8s8s32 : k == KIND_S8S8 ? &t->gemm_s8s8s32 : &t->gemm_s16u8s32;
}

/* Source element types of A and B for each kind (as the driver passes them). */
static i8t_pack_elem a_src_elem(gemm_kind k) {
  return k == KIND_U8S8 ? I8T_PACK_U8 : k == KIND_S8S8 ? I8T_PACK_S8 : I8T_PACK_S16;
}
static i8t_pack_elem b_src_elem(gemm_kind k) { return k == KIND_S16U8 ? I8T_PACK_U8 : I8T_PACK_S8; }

static void src_range(i8t_pack_elem e, int32_t *lo, int32_t *hi) {
  *lo = e == I8T_PACK_U8 ? 0 : e == I8T_PACK_S8 ? -127 : -32767;
  *hi = e == I8T_PACK_U8 ? 255 : e == I8T_PACK_S8 ? 127 : 32767;
}

static void put(void *p, size_t i, i8t_pack_elem e, int32_t v) {
  if (e == I8T_PACK_U8) ((uint8_t *)p)[i] = (uint8_t)v;
  else if (e == I8T_PACK_S8) ((int8_t *)p)[i] = (int8_t)v;
  else ((int16_t *)p)[i] = (int16_t)v;
}
static int32_t get(const void *p, size_t i, i8t_pack_elem e) {
  if (e == I8T_PACK_U8) return ((const uint8_t *)p)[i];
  if (e == I8T_PACK_S8) return ((const int8_t *)p)[i];
  return ((const int16_t *)p)[i];
}

/* Value patterns: random in range, or only the two extremes. */
static int32_t pick(uint64_t *rng, int32_t lo, int32_t hi, int extremes) {
  if (extremes) return (test_rand(rng) & 1) ? hi : lo;
  return test_rand_range(rng, lo, hi);
}

/* A source view of rows x cols in one of three layouts. */
typedef enum { LAYOUT_ROW_MAJOR, LAYOUT_TRANSPOSED, LAYOUT_STRIDED, LAYOUT_COUNT } layout;

typedef struct view {
  void *data;
  size_t row_stride, col_stride;
} view;

static view make_view(size_t rows, size_t cols, layout l, i8t_pack_elem e, int32_t lo, int32_t hi,
                      int extremes, uint64_t *rng) {
  view v;
  size_t n;
  if (l == LAYOUT_ROW_MAJOR) {
    v.row_stride = cols + 3, v.col_stride = 1, n = rows * v.row_stride;
  } else if (l == LAYOUT_TRANSPOSED) {
    v.row_stride = 1, v.col_stride = rows + 2, n = cols * v.col_stride;
  } else {
    v.col_stride = 2, v.row_stride = 2 * cols + 1, n = rows * v.row_stride;
  }
  v.data = calloc(n + 1, i8t_pack_elem_size(e));
  for (size_t r = 0; r < rows; r++)
    for (size_t c = 0; c < cols; c++)
      put(v.data, r * v.row_stride + c * v.col_stride, e, pick(rng, lo, hi, extremes));
  return v;
}

/* ------------------------------------------------------------------------ */
/* Packers against the portable ones                                        */
/* ------------------------------------------------------------------------ */

static void check_packers_of(const i8t_gemm_ukernel *uk, gemm_kind kind, uint64_t *rng) {
  const size_t kcs[] = {1, uk->kr - 1u, uk->kr, uk->kr + 1u, 4u * uk->kr, 16u * uk->kr + 1u, 37, 64,
                        12, 27};
  const size_t mr = uk->mr, nr = uk->nr;
  const size_t lanes_a[] = {1, mr - 1, mr, mr + 1, 2 * mr + 3};
  const size_t lanes_b[] = {1, nr - 1, nr, nr + 1, 2 * nr + 5};
  const int32_t zp = 200;
  for (int side = 0; side < 2; side++) {
    i8t_pack_elem se = side == 0 ? a_src_elem(kind) : b_src_elem(kind);
    i8t_pack_elem de = side == 0 ? (i8t_pack_elem)uk->a_elem : (i8t_pack_elem)uk->b_elem;
    int32_t lo, hi;
    src_range(se, &lo, &hi);
    size_t esize = i8t_pack_elem_size(de), L = side == 0 ? mr : nr;
    for (size_t li = 0; li < 5; li++) {
      size_t lanes = side == 0 ? lanes_a[li] : lanes_b[li];
      if (lanes == 0) continue;
      for (size_t ki = 0; ki < sizeof kcs / sizeof kcs[0]; ki++) {
        size_t kc = kcs[ki];
        if (kc == 0) continue;
        for (int l = 0; l < LAYOUT_COUNT; l++) {
          size_t rows = side == 0 ? lanes : kc, cols = side == 0 ? kc : lanes;
          view v = make_view(rows, cols, (layout)l, se, lo, hi, (int)(ki & 1), rng);
          i8t_pack_src src = {v.data, v.row_stride, v.col_stride, se,
                              i8t_pack_shift(se, de, se == I8T_PACK_U8 ? zp : 0)};
          size_t bytes = (lanes + L - 1) / L * L * ((kc + uk->kr - 1) / uk->kr * uk->kr) * esize;
          unsigned char *want = malloc(bytes), *got = malloc(bytes);
          memset(want, 0x5A, bytes);
          memset(got, 0xA5, bytes); /* every byte must be written */
          if (side == 0) {
            i8t_pack_a_portable(uk, &src, lanes, kc, want);
            (uk->pack_a ? uk->pack_a : i8t_pack_a_portable)(uk, &src, lanes, kc, got);
          } else {
            i8t_pack_b_portable(uk, &src, kc, lanes, want);
            (uk->pack_b ? uk->pack_b : i8t_pack_b_portable)(uk, &src, kc, lanes, got);
          }
          if (memcmp(want, got, bytes) != 0)
            fail_msg("%s: %s packer differs from the portable one (lanes %zu, kc %zu, layout %d)",
                     uk->name, side == 0 ? "A" : "B", lanes, kc, l);
          free(want);
          free(got);
          free(v.data);
        }
      }
    }
  }
}

static void check_packers(i8t_isa isa) {
  test_select_isa_or_skip(isa);
  const i8t_kernel_table *t = i8t_kernels_for_isa(isa);
  uint64_t rng = 77;
  for (int k = 0; k < KIND_COUNT; k++) {
    for (int narrow = 0; narrow < 2; narrow++) {
      const i8t_gemm_ukernel *uk = ukernel_of(t, (gemm_kind)k, narrow);
      if (uk) check_packers_of(uk, (gemm_kind)k, &rng);
    }
  }
}

/* ------------------------------------------------------------------------ */
/* Microkernel entry points against the product of the packed panels        */
/* ------------------------------------------------------------------------ */

/* Range of a packed format's values as the driver can produce them: an s8
 * A may hold -128 (u8 0 shifted by -128), an s8 B never does (quantizer
 * range [-127, 127], no shift). */
static void packed_range(i8t_pack_elem e, int is_a, int32_t *lo, int32_t *hi) {
  if (e == I8T_PACK_U8) *lo = 0, *hi = 255;
  else if (e == I8T_PACK_S8) *lo = is_a ? -128 : -127, *hi = 127;
  else if (is_a) *lo = -32767, *hi = 32767;
  else *lo = -255, *hi = 255;
}

static int64_t panel_dot(const i8t_gemm_ukernel *uk, const void *ap, const void *bp, size_t kc,
                         size_t r, size_t c) {
  int64_t s = 0;
  for (size_t k = 0; k < kc; k++) {
    size_t g = k / uk->kr, j = k % uk->kr;
    s += (int64_t)get(ap, (g * uk->mr + r) * uk->kr + j, uk->a_elem) *
         get(bp, (g * uk->nr + c) * uk->kr + j, uk->b_elem);
  }
  return s;
}

/* The column sums of a packed B panel (the zero-point correction's input)
 * added to arbitrary starting values, against a plain sum. */
static void check_sum_b(const i8t_gemm_ukernel *uk, const void *bp, size_t kc, uint64_t *rng) {
  int32_t sums[64], start[64];
  for (size_t c = 0; c < uk->nr; c++) sums[c] = start[c] = test_rand_range(rng, -1000000, 1000000);
  (uk->sum_b ? uk->sum_b : i8t_sum_b_portable)(uk, kc, bp, sums);
  for (size_t c = 0; c < uk->nr; c++) {
    int64_t want = start[c];
    for (size_t k = 0; k < kc; k++)
      want += get(bp, ((k / uk->kr) * uk->nr + c) * uk->kr + k % uk->kr, uk->b_elem);
    if (sums[c] != want)
      fail_msg("%s: column sum %zu over kc %zu = %d, expected %lld", uk->name, c, kc, sums[c],
               (long long)want);
  }
}

static void check_entry_points(const i8t_gemm_ukernel *uk, uint64_t *rng) {
  const size_t kcs[] = {uk->kr, 3u * uk->kr, 64, 256};
  const size_t mr = uk->mr, nr = uk->nr, ldc = nr + 5;
  size_t as = i8t_pack_elem_size(uk->a_elem);
  for (size_t ki = 0; ki < 4; ki++) {
    size_t kc = kcs[ki];
    for (int extremes = 0; extremes < 2; extremes++) {
      int32_t alo, ahi, blo, bhi;
      packed_range(uk->a_elem, 1, &alo, &ahi);
      packed_range(uk->b_elem, 0, &blo, &bhi);
      void *ap = calloc(mr * kc, as), *bp = calloc(nr * kc, i8t_pack_elem_size(uk->b_elem));
      for (size_t i = 0; i < mr * kc; i++) put(ap, i, uk->a_elem, pick(rng, alo, ahi, extremes));
      for (size_t i = 0; i < nr * kc; i++) put(bp, i, uk->b_elem, pick(rng, blo, bhi, extremes));
      /* The same A, unpacked: row-major rows of lda = kc + 7 elements. */
      size_t lda = kc + 7;
      void *a_rows = calloc(mr * lda, as);
      for (size_t r = 0; r < mr; r++)
        for (size_t k = 0; k < kc; k++)
          put(a_rows, r * lda + k, uk->a_elem,
              get(ap, ((k / uk->kr) * mr + r) * uk->kr + k % uk->kr, uk->a_elem));
      /* The same A again, indirect: each row's kc values in taps of tap_groups
       * groups, tap t of row r at rows[r] + t * pitch, the rows interleaved
       * in reverse order within each pitch. */
      size_t groups = kc / uk->kr, tap_groups = groups % 4 == 0 ? 4 : groups % 3 == 0 ? 3 : 1;
      size_t tap_bytes = tap_groups * uk->kr * as, pitch = mr * tap_bytes + 12;
      char *img = calloc(groups / tap_groups * pitch, 1);
      const void *rows[64];
      for (size_t r = 0; r < mr; r++) {
        rows[r] = img + (mr - 1 - r) * tap_bytes;
        for (size_t t = 0; t < groups / tap_groups; t++)
          memcpy(img + t * pitch + (mr - 1 - r) * tap_bytes,
                 (char *)a_rows + (r * lda + t * tap_groups * uk->kr) * as, tap_bytes);
      }
      int32_t *c32 = malloc(mr * ldc * sizeof *c32), col_sub[64];
      int64_t *c64 = malloc(mr * ldc * sizeof *c64), *want = malloc(mr * nr * sizeof *want);
      for (size_t c = 0; c < nr; c++) col_sub[c] = test_rand_range(rng, -1000000, 1000000);
      for (size_t r = 0; r < mr; r++)
        for (size_t c = 0; c < nr; c++) want[r * nr + c] = panel_dot(uk, ap, bp, kc, r, c);
      check_sum_b(uk, bp, kc, rng);
      if (kc > uk->kr) check_sum_b(uk, bp, kc - uk->kr, rng); /* a prefix is a panel too */
      for (int mode = 0; mode < 8; mode++) {
        /* 0 run, 1 run accumulate, 2 ex packed + col_sub + accumulate,
         * 3 ex in place, 4 ex int64, 5 ex int64 accumulate in place,
         * 6 ex indirect + col_sub + accumulate, 7 ex int64 indirect */
        if (mode >= 2 && !uk->run_ex) break;
        for (size_t i = 0; i < mr * ldc; i++) c32[i] = (int32_t)i * 7 - 300, c64[i] = (int64_t)i * 1000003 - 5;
        int acc = mode == 1 || mode == 2 || mode == 5 || mode == 6;
        int in_place = mode == 3 || mode == 5, wide = mode == 4 || mode == 5 || mode == 7;
        int sub = mode == 2 || mode == 6;
        if (mode < 2) {
          uk->run(kc, ap, bp, c32, ldc, acc);
        } else {
          i8t_ukernel_args args = {.kc = kc, .a = in_place ? a_rows : ap,
                                   .a_row_bytes = in_place ? lda * as : uk->kr * as,
                                   .a_group_bytes = in_place ? uk->kr * as : mr * uk->kr * as,
                                   .b = bp, .c32 = wide ? NULL : c32, .c64 = wide ? c64 : NULL,
                                   .ldc = ldc, .accumulate = acc, .col_sub = sub ? col_sub : NULL};
          if (mode >= 6) {
            args.a = NULL;
            args.a_group_bytes = uk->kr * as;
            args.a_rows = rows;
            args.a_tap_bytes = pitch;
            args.a_tap_groups = tap_groups;
          }
          uk->run_ex(&args);
        }
        for (size_t r = 0; r < mr; r++) {
          for (size_t c = 0; c < nr; c++) {
            size_t i = r * ldc + c;
            int64_t w = want[r * nr + c] - (sub ? col_sub[c] : 0);
            int64_t got;
            if (wide) {
              got = c64[i] - (acc ? (int64_t)i * 1000003 - 5 : 0);
            } else {
              got = (int32_t)((uint32_t)c32[i] - (acc ? (uint32_t)((int32_t)i * 7 - 300) : 0u));
            }
            if (got != w)
              fail_msg("%s mode %d kc %zu: C[%zu][%zu] = %lld, expected %lld", uk->name, mode, kc,
                       r, c, (long long)got, (long long)w);
          }
          for (size_t c = nr; c < ldc; c++) /* nothing outside the tile is written */
            assert_true(wide ? c64[r * ldc + c] == (int64_t)(r * ldc + c) * 1000003 - 5
                                  : c32[r * ldc + c] == (int32_t)(r * ldc + c) * 7 - 300);
        }
      }
      free(ap), free(bp), free(a_rows), free(img), free(c32), free(c64), free(want);
    }
  }
}

static void check_ukernels(i8t_isa isa) {
  test_select_isa_or_skip(isa);
  const i8t_kernel_table *t = i8t_kernels_for_isa(isa);
  uint64_t rng = 91;
  for (int k = 0; k < 2 * KIND_COUNT; k++) {
    const i8t_gemm_ukernel *uk = ukernel_of(t, (gemm_kind)(k / 2), k % 2);
    if (!uk) continue;
    assert_true(uk->nr <= 64);
    check_entry_points(uk, &rng);
  }
}

/* ------------------------------------------------------------------------ */
/* Whole GEMMs around the tile and the blocking                             */
/* ------------------------------------------------------------------------ */

static size_t kc_of(const i8t_gemm_ukernel *uk, gemm_kind k) {
  size_t kc = uk->kc ? uk->kc : (k == KIND_S16U8 ? 256 : 512);
  return k == KIND_S16U8 && kc > 256 ? 256 : kc;
}

static void check_gemm(gemm_kind kind, size_t M, size_t N, size_t K, layout la, layout lb,
                       int extremes, uint64_t *rng) {
  i8t_pack_elem ae = a_src_elem(kind), be = b_src_elem(kind);
  int32_t alo, ahi, blo, bhi;
  src_range(ae, &alo, &ahi);
  src_range(be, &blo, &bhi);
  view a = make_view(M, K, la, ae, alo, ahi, extremes, rng);
  view b = make_view(K, N, lb, be, blo, bhi, extremes, rng);
  int32_t zp = extremes ? 255 : test_rand_range(rng, 0, 255);
  i8t_matrix A = {a.data, a.row_stride, a.col_stride}, B = {b.data, b.row_stride, b.col_stride};
  size_t ldc = N + 1;
  int32_t *c32 = malloc(M * ldc * sizeof *c32);
  int64_t *c64 = malloc(M * ldc * sizeof *c64);
  i8t_status st = kind == KIND_U8S8   ? i8t_gemm_u8s8s32(NULL, M, N, K, A, (uint8_t)zp, B, c32, ldc)
                  : kind == KIND_S8S8 ? i8t_gemm_s8s8s32(NULL, M, N, K, A, B, c32, ldc)
                                      : i8t_gemm_s16u8s64(NULL, M, N, K, A, B, (uint8_t)zp, c64, ldc);
  assert_int_equal(st, I8T_OK);
  for (size_t m = 0; m < M; m++) {
    for (size_t n = 0; n < N; n++) {
      int64_t want = 0;
      for (size_t k = 0; k < K; k++) {
        int64_t x = get(a.data, m * a.row_stride + k * a.col_stride, ae);
        int64_t y = get(b.data, k * b.row_stride + n * b.col_stride, be);
        if (kind == KIND_U8S8) x -= zp;
        if (kind == KIND_S16U8) y -= zp;
        want += x * y;
      }
      int64_t got = kind == KIND_S16U8 ? c64[m * ldc + n] : c32[m * ldc + n];
      if (got != want)
        fail_msg("kind %d M=%zu N=%zu K=%zu layouts %d/%d: C[%zu][%zu] = %lld, expected %lld",
                 kind, M, N, K, la, lb, m, n, (long long)got, (long long)want);
    }
  }
  free(a.data), free(b.data), free(c32), free(c64);
}

static void check_gemm_shapes(i8t_isa isa) {
  test_select_isa_or_skip(isa);
  const i8t_kernel_table *t = i8t_kernels_for_isa(isa);
  uint64_t rng = 1234;
  for (int kn = 0; kn < 2 * KIND_COUNT; kn++) {
    /* Shapes around the narrow kernel's tile too (N = nr + 1 runs the main one). */
    const gemm_kind k = (gemm_kind)(kn / 2);
    const i8t_gemm_ukernel *uk = ukernel_of(t, k, kn % 2);
    if (!uk) continue;
    size_t mr = uk->mr, nr = uk->nr, kr = uk->kr, kc = kc_of(uk, k);
    /* M, N, K triples: edge rows / columns, K tails, one and two KC blocks. */
    const size_t shapes[][3] = {
        {1, 1, 1},          {mr, nr, kr},           {mr + 1, nr - 1, kr + 1},
        {2 * mr - 1, nr + 1, 3 * kr - 1}, {mr, 2 * nr + 1, kc},  {3 * mr + 1, nr, kc + kr},
        {mr - 1, 1, kc + 1},              {2 * mr, nr, 2 * kc + 3}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
      for (int la = 0; la < LAYOUT_COUNT; la++) {
        for (int lb = 0; lb < LAYOUT_COUNT; lb++) {
          if (shapes[s][0] == 0 || shapes[s][1] == 0 || shapes[s][2] == 0) continue;
          check_gemm((gemm_kind)k, shapes[s][0], shapes[s][1], shapes[s][2], (layout)la,
                     (layout)lb, (int)((s + (size_t)la + (size_t)lb) & 1), &rng);
        }
      }
    }
  }
}

#define DEFINE_ISA_TESTS(name, isa)                                                              \
  static void test_packers_##name(void **state) { (void)state; check_packers(isa); }            \
  static void test_ukernels_##name(void **state) { (void)state; check_ukernels(isa); }          \
  static void test_shapes_##name(void **state) { (void)state; check_gemm_shapes(isa); }
I8T_TEST_ISAS(DEFINE_ISA_TESTS)

#define LIST_ISA_TESTS(name, isa)                                                    \
  cmocka_unit_test(test_packers_##name), cmocka_unit_test(test_ukernels_##name),     \
      cmocka_unit_test(test_shapes_##name),

int main(void) {
  const struct CMUnitTest tests[] = {I8T_TEST_ISAS(LIST_ISA_TESTS)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
