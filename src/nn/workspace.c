/* The layer workspace: per-worker scratch slots grown on demand, the fp32
 * backend choice, and the task-splitting rules shared by every pass. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn_internal.h"

i8t_status i8t_workspace_create(i8t_context *ctx, i8t_workspace **out) {
  if (!out) return i8t_error(I8T_ERR_INVALID_ARG, "workspace: NULL output");
  *out = NULL;
  i8t_workspace *ws = calloc(1, sizeof *ws);
  if (!ws) return i8t_error(I8T_ERR_NO_MEMORY, "workspace");
  ws->ctx = ctx;
  ws->threads = i8t_context_threads(ctx);
  if (ws->threads < 1) ws->threads = 1;
  ws->scratch = calloc((size_t)ws->threads * NN_SLOTS, sizeof *ws->scratch);
  if (!ws->scratch) {
    free(ws);
    return i8t_error(I8T_ERR_NO_MEMORY, "workspace scratch table");
  }
  ws->backend = I8T_FP32_AUTO;
  *out = ws;
  return I8T_OK;
}

void i8t_workspace_destroy(i8t_workspace *ws) {
  if (!ws) return;
  for (size_t i = 0; i < (size_t)ws->threads * NN_SLOTS; i++) i8t_aligned_free(ws->scratch[i].p);
  free(ws->scratch);
  i8t_aligned_free(ws->shared.p);
  nn_dnnl_destroy(ws->dnnl);
  free(ws);
}

int i8t_have_onednn(void) {
#ifdef I8T_HAVE_ONEDNN
  return 1;
#else
  return 0;
#endif
}

i8t_status i8t_workspace_set_fp32_backend(i8t_workspace *ws, i8t_fp32_backend backend) {
  if (!ws) return i8t_error(I8T_ERR_INVALID_ARG, "workspace: NULL");
  if (backend == I8T_FP32_ONEDNN && !i8t_have_onednn())
    return i8t_error(I8T_ERR_UNSUPPORTED, "this build has no oneDNN");
  if (backend != I8T_FP32_AUTO && backend != I8T_FP32_PORTABLE && backend != I8T_FP32_ONEDNN)
    return i8t_error(I8T_ERR_INVALID_ARG, "unknown fp32 backend %d", (int)backend);
  ws->backend = backend;
  return I8T_OK;
}

int nn_use_onednn(const i8t_workspace *ws) {
  return i8t_have_onednn() && ws->backend != I8T_FP32_PORTABLE;
}

const char *i8t_workspace_fp32_backend_name(const i8t_workspace *ws) {
  return ws && nn_use_onednn(ws) ? "onednn" : "portable";
}

i8t_status nn_reserve(i8t_workspace *ws, int slot, size_t bytes) {
  for (int w = 0; w < ws->threads; w++) {
    nn_buf *b = &ws->scratch[(size_t)w * NN_SLOTS + slot];
    if (b->size >= bytes) continue;
    i8t_aligned_free(b->p);
    size_t size = bytes + bytes / 4; /* some headroom: fewer regrowths */
    b->p = i8t_aligned_alloc(size);
    b->size = b->p ? size : 0;
    if (!b->p) return i8t_error(I8T_ERR_NO_MEMORY, "layer scratch of %zu bytes", size);
    memset(b->p, 0, size); /* bytes a pass skips (padding columns) stay defined */
  }
  return I8T_OK;
}

void *nn_shared_bytes(i8t_workspace *ws, size_t bytes) {
  if (ws->shared.size < bytes) {
    i8t_aligned_free(ws->shared.p);
    ws->shared.p = i8t_aligned_alloc(bytes);
    ws->shared.size = ws->shared.p ? bytes : 0;
    if (!ws->shared.p) {
      i8t_error(I8T_ERR_NO_MEMORY, "layer parameters of %zu bytes", bytes);
      return NULL;
    }
  }
  return ws->shared.p;
}

float *nn_shared_floats(i8t_workspace *ws, size_t count, size_t channels) {
  return nn_shared_bytes(ws, count * nn_block_rows(channels) * channels * sizeof(float));
}

size_t nn_samples_per_task(size_t batch, size_t rows_per_sample, size_t target_rows) {
  size_t per = rows_per_sample ? target_rows / rows_per_sample : batch;
  if (per < 1) per = 1;
  size_t for_16 = (batch + 15) / 16;
  if (per > for_16) per = for_16;
  return per < 1 ? 1 : per;
}

size_t nn_rows_per_task(size_t rows, size_t channels) {
  size_t per = channels ? (size_t)32768 / channels : rows; /* ~32k values per task */
  if (per < 16) per = 16;
  size_t for_16 = (rows + 15) / 16;
  if (per > for_16) per = for_16;
  return per < 1 ? 1 : per;
}

float nn_absmax(const float *v, size_t n) {
  float lo, hi;
  if (n == 0) return 0.0f;
  if (i8t_minmax_f32(v, n, &lo, &hi) != I8T_OK) return NAN; /* the kernel's reduction */
  return fmaxf(-lo, hi);
}

i8t_status nn_check_finite(float absmax, const char *what) {
  if (!isfinite(absmax))
    return i8t_error(I8T_ERR_NONFINITE, "%s contains NaN or Inf (diverged?)", what);
  return I8T_OK;
}
