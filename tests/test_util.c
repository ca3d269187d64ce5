/* Shared helpers for the cmocka tests. */
#include "test_util.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

uint64_t test_rand(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1Dull;
}

int32_t test_rand_range(uint64_t *s, int32_t lo, int32_t hi) {
  return lo + (int32_t)(test_rand(s) % (uint64_t)((int64_t)hi - lo + 1));
}

float test_rand_float(uint64_t *s, float lo, float hi) {
  return lo + (hi - lo) * (float)(test_rand(s) >> 40) * (1.0f / 16777216.0f);
}

void test_select_isa_or_skip(i8t_isa isa) {
  if (!i8t_isa_available(isa)) {
    printf("[   INFO   ] %s kernels are not available on this CPU/build: skipped\n",
           i8t_isa_name(isa));
    skip();
  }
  assert_int_equal(i8t_isa_select(isa), I8T_OK);
}

void test_remove_tree(const char *path) {
  DIR *d = opendir(path);
  if (!d) {
    unlink(path);
    return;
  }
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char child[1024];
    snprintf(child, sizeof child, "%s/%s", path, e->d_name);
    test_remove_tree(child);
  }
  closedir(d);
  rmdir(path);
}

i8t_workspace *test_workspace(int threads, i8t_context **ctx) {
  *ctx = NULL;
  if (threads > 1) {
    i8t_context_options o;
    i8t_context_options_default(&o);
    o.threads = threads;
    o.pin = I8T_PIN_NONE;
    o.pin_from_env = 0;
    assert_int_equal(i8t_context_create(&o, ctx), I8T_OK);
  }
  i8t_workspace *ws;
  assert_int_equal(i8t_workspace_create(*ctx, &ws), I8T_OK);
  return ws;
}

void test_workspace_free(i8t_workspace *ws, i8t_context *ctx) {
  i8t_workspace_destroy(ws);
  i8t_context_destroy(ctx);
}
