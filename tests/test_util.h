/* Shared helpers for the cmocka tests: a seeded RNG and the list of ISAs. */
#ifndef INT8TRAIN_TEST_UTIL_H
#define INT8TRAIN_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "int8train/int8train.h"
#include "int8train/layers.h"

/* xorshift64*: the tests' own generator, independent of the library's. */
uint64_t test_rand(uint64_t *state);
int32_t test_rand_range(uint64_t *state, int32_t lo, int32_t hi); /* inclusive */
float test_rand_float(uint64_t *state, float lo, float hi);

/* Removes a file, or a directory and everything under it (test scratch dirs). */
void test_remove_tree(const char *path);

/* Selects `isa` for the test, or skips the test (visibly) if the CPU or the
 * build cannot run it. */
void test_select_isa_or_skip(i8t_isa isa);

/* A layer workspace on a new unpinned context of `threads` workers, or on no
 * context (the calling thread alone) for threads <= 1; *ctx receives the
 * context (NULL then). test_workspace_free() releases both. */
i8t_workspace *test_workspace(int threads, i8t_context **ctx);
void test_workspace_free(i8t_workspace *ws, i8t_context *ctx);

#endif
