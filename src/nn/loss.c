/* The loss (softmax cross-entropy, in float as the method keeps it) and the
 * optimiser (SGD with momentum on the float32 master weights). */
#include <math.h>

#include "nn_internal.h"

i8t_status i8t_softmax_xent(const float *logits, const uint8_t *labels, size_t n,
                            size_t classes, double *loss, size_t *correct, float *dlogits) {
  if (!logits || !labels || !loss || !correct)
    return i8t_error(I8T_ERR_INVALID_ARG, "softmax-xent: NULL argument");
  if (n == 0 || classes < 2)
    return i8t_error(I8T_ERR_SHAPE, "softmax-xent: %zu samples of %zu classes", n, classes);
  double total = 0.0;
  size_t hits = 0;
  for (size_t i = 0; i < n; i++) {
    const float *z = logits + i * classes;
    if (labels[i] >= classes)
      return i8t_error(I8T_ERR_INVALID_ARG, "label %u of sample %zu is not below %zu classes",
                       labels[i], i, classes);
    size_t arg = 0;
    for (size_t k = 1; k < classes; k++) arg = z[k] > z[arg] ? k : arg;
    if (!isfinite(z[arg])) return i8t_error(I8T_ERR_NONFINITE, "logits of sample %zu", i);
    hits += arg == labels[i];
    double sum = 0.0;
    for (size_t k = 0; k < classes; k++) sum += exp((double)z[k] - z[arg]);
    double log_sum = log(sum) + z[arg];
    total += log_sum - z[labels[i]];
    if (dlogits)
      for (size_t k = 0; k < classes; k++) {
        double p = exp((double)z[k] - log_sum);
        dlogits[i * classes + k] = (float)((p - (k == labels[i] ? 1.0 : 0.0)) / (double)n);
      }
  }
  *loss = total / (double)n;
  *correct = hits;
  return I8T_OK;
}

void i8t_sgd_update(float *w, const float *g, float *v, size_t count, float lr, float momentum,
                    float decay) {
  for (size_t i = 0; i < count; i++) {
    v[i] = momentum * v[i] + (g[i] + decay * w[i]);
    w[i] -= lr * v[i];
  }
}
