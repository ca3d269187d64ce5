/* Checkpoints of a model: lists its state tensors and hands them to the
 * tensor-level writer and reader of checkpoint.c, with the model's
 * configuration and step counter. */
#include <stdlib.h>

#include "internal.h"
#include "int8train/checkpoint.h"

/* Lists the model's state tensors into a new array. */
static i8t_status list_model_state(i8t_model *model, i8t_state_tensor **out, size_t *count) {
  *count = i8t_model_state_count(model);
  *out = calloc(*count ? *count : 1, sizeof **out);
  if (!*out) return i8t_error(I8T_ERR_NO_MEMORY, "checkpoint: out of memory");
  for (size_t i = 0; i < *count; i++) {
    i8t_status st = i8t_model_state(model, i, &(*out)[i]);
    if (st != I8T_OK) {
      free(*out);
      *out = NULL;
      return st;
    }
  }
  return I8T_OK;
}

i8t_status i8t_checkpoint_save(const char *path, i8t_model *model,
                               const i8t_checkpoint_meta *meta) {
  if (!path || !model || !meta)
    return i8t_error(I8T_ERR_INVALID_ARG, "checkpoint save: NULL argument");
  i8t_checkpoint_meta m = *meta;
  m.model = *i8t_model_get_config(model);
  m.steps = i8t_model_step_count(model);
  i8t_state_tensor *tensors = NULL;
  size_t count = 0;
  i8t_status st = list_model_state(model, &tensors, &count);
  if (st == I8T_OK) st = i8t_checkpoint_save_tensors(path, &m, tensors, count);
  free(tensors);
  return st;
}

i8t_status i8t_checkpoint_load(const char *path, i8t_model *model, i8t_checkpoint_meta *meta) {
  if (!path || !model) return i8t_error(I8T_ERR_INVALID_ARG, "checkpoint load: NULL argument");
  i8t_state_tensor *tensors = NULL;
  size_t count = 0;
  i8t_checkpoint_meta m;
  i8t_status st = list_model_state(model, &tensors, &count);
  if (st == I8T_OK)
    st = i8t_checkpoint_load_tensors(path, i8t_model_get_config(model), tensors, count, &m);
  free(tensors);
  if (st != I8T_OK) return st;
  i8t_model_set_step_count(model, m.steps);
  if (meta) {
    *meta = m;
    meta->model.arch = meta->arch;
  }
  return I8T_OK;
}
