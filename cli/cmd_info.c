/* `int8train info`: what the CPU has, which kernel table is selected, the
 * topology and pinning of a default context; --self-check runs every kernel
 * of the selected table against the portable reference on random inputs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "int8train/int8train.h"

/* Returns 0 if the default context could not be created (bad INT8TRAIN_*). */
static int print_info(void) {
  printf("int8train %d.%d.%d\n", I8T_VERSION_MAJOR, I8T_VERSION_MINOR, I8T_VERSION_PATCH);
  printf("cpu features: %s\n", i8t_cpu_features());
  printf("isa available:");
  for (int i = 0; i < I8T_ISA_COUNT; i++)
    if (i8t_isa_available((i8t_isa)i)) printf(" %s", i8t_isa_name((i8t_isa)i));
  printf("\nisa best: %s\nisa selected: %s\nkernels:\n", i8t_isa_name(i8t_isa_best()),
         i8t_isa_name(i8t_isa_selected()));
  for (size_t i = 0; i < i8t_kernel_count(); i++)
    printf("  %-21s %s\n", i8t_kernel_role(i), i8t_kernel_name(i));
  i8t_context *ctx = NULL;
  if (i8t_context_create(NULL, &ctx) != I8T_OK) {
    printf("threads: cannot create a context: %s\n", i8t_last_error());
    return 0;
  }
  char buf[8192];
  i8t_context_describe(ctx, buf, sizeof buf);
  printf("threads:\n%s", buf);
  i8t_context_destroy(ctx);
  return 1;
}

/* Random GEMMs of every kind on the selected table vs the generic table. */
static int self_check(void) {
  i8t_isa sel = i8t_isa_selected();
  const size_t M = 37, N = 29, K = 301;
  uint8_t *a8 = malloc(M * K), *b8u = malloc(K * N);
  int8_t *a8s = malloc(M * K), *b8 = malloc(K * N);
  int16_t *a16 = malloc(M * K * 2);
  int32_t *c1 = malloc(M * N * 4), *c2 = malloc(M * N * 4);
  int64_t *d1 = malloc(M * N * 8), *d2 = malloc(M * N * 8);
  srand(12345);
  for (size_t i = 0; i < M * K; i++) {
    a8[i] = (uint8_t)(rand() & 255);
    a8s[i] = (int8_t)(rand() % 255 - 127);
    a16[i] = (int16_t)(rand() % 65535 - 32767);
  }
  for (size_t i = 0; i < K * N; i++) {
    b8[i] = (int8_t)(rand() % 255 - 127);
    b8u[i] = (uint8_t)(rand() & 255);
  }
  i8t_matrix A8 = {a8, K, 1}, A8s = {a8s, K, 1}, A16 = {a16, K, 1}, B8 = {b8, N, 1},
             B8u = {b8u, N, 1};
  int failures = 0;
  for (int pass = 0; pass < 2; pass++) {
    i8t_isa_select(pass == 0 ? sel : I8T_ISA_GENERIC);
    int32_t *c = pass == 0 ? c1 : c2;
    int64_t *d = pass == 0 ? d1 : d2;
    i8t_gemm_u8s8s32(NULL, M, N, K, A8, 77, B8, c, N);
    i8t_gemm_s16u8s64(NULL, M, N, K, A16, B8u, 200, d, N);
  }
  failures += memcmp(c1, c2, M * N * 4) != 0;
  failures += memcmp(d1, d2, M * N * 8) != 0;
  for (int pass = 0; pass < 2; pass++) {
    i8t_isa_select(pass == 0 ? sel : I8T_ISA_GENERIC);
    i8t_gemm_s8s8s32(NULL, M, N, K, A8s, B8, pass == 0 ? c1 : c2, N);
  }
  failures += memcmp(c1, c2, M * N * 4) != 0;
  i8t_isa_select(sel);
  printf("self-check (%s vs generic, u8s8 / s8s8 / s16u8 GEMMs): %s\n", i8t_isa_name(sel),
         failures ? "FAILED" : "ok");
  free(a8); free(b8u); free(a8s); free(b8); free(a16); free(c1); free(c2); free(d1); free(d2);
  return failures ? 1 : 0;
}

int i8t_cmd_info(int argc, char **argv) {
  int check = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--self-check")) {
      check = 1;
    } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("usage: int8train info [--self-check]\n"
             "Prints CPU features, the ISA selected (INT8TRAIN_ISA lowers it), the kernel\n"
             "table and the worker threads. --self-check compares the selected kernels\n"
             "with the portable ones on random inputs and fails on any difference.\n");
      return 0;
    } else {
      fprintf(stderr, "int8train info: unknown option '%s'\n", argv[i]);
      return 2;
    }
  }
  int ok = print_info();
  int status = check ? self_check() : 0;
  return ok ? status : 1;
}
