/* The model's internal structure: a list of operations (input, convolution,
 * normalisation + sum + ReLU, max-pool, head) over NHWC activation tensors,
 * with the buffers of both precisions. model.c builds it and owns the state;
 * model_int8.c and model_fp32.c run its forward and backward passes. */
#ifndef INT8TRAIN_NN_MODEL_H
#define INT8TRAIN_NN_MODEL_H

#include "int8train/model.h"
#include "nn_internal.h"

#define NN_NAME 64
#define NN_MAX_SRC 4

/* A trainable float32 tensor with its momentum and gradient. */
typedef struct nn_param {
  char name[NN_NAME];
  float *w, *v, *g;
  size_t size;
  int decay; /* weight decay applies (conv and fc weights, not BN, not biases) */
} nn_param;

/* An activation between operations: [batch, h, w, c] NHWC. */
typedef struct nn_tensor {
  int h, w, c;
  size_t spatial;
  /* int8 */
  uint8_t *q;
  i8t_qparams qp;
  i8t_grad_src src[NN_MAX_SRC]; /* gradient contributions of its consumers */
  int nsrc;
  int consumers; /* operations that read it (each adds one source) */
  int producer;  /* the normalisation op that writes it, or -1 */
  /* gsum_ready: the last source's pass summed and masked the gradient into
   * one float source src[0] (in place of its int32 output) and found its
   * max |g|, gabs. */
  int gsum_ready;
  float gabs;
  /* fp32 */
  float *f, *g;
  int g_written;
} nn_tensor;

typedef struct nn_conv {
  char name[NN_NAME];
  i8t_conv_shape shape; /* batch filled in per call */
  int in;               /* activation tensor */
  int oh, ow;
  nn_param *w;          /* [out_c x K] */
  float out_range[2];   /* running range of the output quantizer (state) */
  /* int8 */
  int8_t *wq;
  float *wscale;        /* [out_c] (per channel) or [1] */
  float *col_scale;     /* [out_c]: input scale * weight scale */
  int32_t *y32;
  uint8_t *pq;          /* quantized output: the BN input */
  i8t_qparams pqp;
  int8_t *d8;           /* gradient of the output (s8: grad-input GEMM operand) */
  int16_t *d16;         /* gradient of the output (s16: weight-gradient operand) */
  float d8_scale, d16_scale;
  int32_t *dx32;
  int64_t *dw64;
  float *smin, *smax;
  /* fp32 */
  float *pf, *df;
} nn_conv;

typedef struct nn_bn {
  char name[NN_NAME];
  int conv;             /* the convolution whose output it normalises */
  nn_param *gamma, *beta;
  float *running_mean, *running_var; /* state; Range BN: running_var holds the running scale */
  float *mean, *scale, *var;         /* batch statistics */
  float *mul, *add;                  /* int8: folded per-channel affine */
  float *y;                          /* fp32: output */
} nn_bn;

/* out = relu?(bn[0](conv) [+ bn[1](conv)] [+ identity]) */
typedef struct nn_normact {
  char name[NN_NAME];
  int nbn;
  nn_bn bn[2];
  int identity;         /* activation tensor or -1 */
  int relu;
  int out;
  float out_range[2];   /* running range of the output quantizer (state) */
  /* int8 */
  float *id_mul, *id_add;
  uint8_t *mask; /* relu' of the last training forward */
  uint8_t *xmin, *xmax; /* one BN term, no shortcut: per-sample extremes of its input */
  int8_t *gpre;
  float gpre_scale;
  float *smin, *smax;
  /* fp32 */
  float *gpref;
} nn_normact;

typedef struct nn_pool {
  char name[NN_NAME];
  i8t_pool_shape shape;
  int in, out;
  int32_t *dx32;
  float dx_scale;
} nn_pool;

typedef struct nn_head {
  int in;
  int features, classes;
  nn_param *w, *b;      /* [classes x features], [classes] */
  float in_range[2];    /* running range of the feature quantizer (state) */
  float *feat, *logits, *dlogits;
  /* int8 */
  uint8_t *featq;
  i8t_qparams fqp;
  int8_t *wq, *g8, *g8b; /* g8b: 8-bit weight-gradient operand (wgrad_bits = 8) */
  float *wscale, *gscaled; /* gscaled: dlogits * per-class weight scale */
  int16_t *g16;
  int32_t *logit32, *dfeat32;
  int64_t *dw64;
  float *smin, *smax;
  /* fp32 */
  float *dfeat;
} nn_head;

typedef enum nn_op_kind { OP_INPUT, OP_CONV, OP_NORMACT, OP_POOL, OP_HEAD } nn_op_kind;

typedef struct nn_op {
  nn_op_kind kind;
  int index;
} nn_op;

/* A per-batch buffer: reallocated for `bytes_per_sample * batch` when the
 * batch grows beyond the allocated one. */
typedef struct nn_batch_buf {
  void **ptr;
  size_t bytes_per_sample;
} nn_batch_buf;

#define NN_MAX_CONV 128
#define NN_MAX_NORM 128
#define NN_MAX_POOL 16
#define NN_MAX_TENSOR 160
#define NN_MAX_OPS 320
#define NN_MAX_PARAM 512

struct i8t_model {
  i8t_model_config cfg;
  char arch[16];
  i8t_norm_config norm;
  i8t_context *ctx;
  i8t_workspace *ws;
  uint64_t step;
  float seed_state[4]; /* the rounding streams' seed, 16 bits per float (state) */
  float input_range[2]; /* running range of the input quantizer (state) */
  float *in_smin, *in_smax; /* int8: per-sample range of the images */

  nn_tensor tensor[NN_MAX_TENSOR];
  int ntensor;
  nn_conv conv[NN_MAX_CONV];
  int nconv;
  nn_normact norm_ops[NN_MAX_NORM];
  int nnorm;
  nn_pool pool[NN_MAX_POOL];
  int npool;
  nn_head head;
  nn_op ops[NN_MAX_OPS];
  int nops;
  nn_param param[NN_MAX_PARAM];
  int nparam;

  nn_batch_buf *bufs;
  size_t nbufs, cap_bufs;
  void **owned; /* allocations that live as long as the model */
  size_t nowned, cap_owned;
  size_t batch_alloc;
  float *grad_tmp; /* fp32: a gradient before it is added to an existing one */

  /* INT8TRAIN_PROFILE set: seconds per operation (forward, backward) and
   * per step phase, printed to stderr by i8t_model_destroy. */
  int profile;
  double prof_op[NN_MAX_OPS][2];
  double prof_phase[4]; /* weights, evaluation, update, training steps */

  i8t_state_tensor *state;
  size_t nstate;
  char (*state_names)[NN_NAME + 16];
};

/* Monotonic clock in seconds (profiling). */
double nn_now(void);
/* Accumulates the time since *t0 into *acc and restarts *t0 (profiling). */
static inline void nn_prof(const i8t_model *m, double *acc, double *t0) {
  if (!m->profile) return;
  double t = nn_now();
  *acc += t - *t0;
  *t0 = t;
}

/* The rounding stream of tensor `role` of operation `op` at the current step. */
i8t_rounding nn_model_stream(const i8t_model *m, int op, int role, int stochastic);

/* Forward (training or evaluation) and backward passes of each precision.
 * The forward leaves the loss, accuracy and dlogits in m->head. */
i8t_status nn_forward_int8(i8t_model *m, const float *images, size_t n, int training);
i8t_status nn_backward_int8(i8t_model *m, size_t n);
i8t_status nn_forward_fp32(i8t_model *m, const float *images, size_t n, int training);
i8t_status nn_backward_fp32(i8t_model *m, size_t n);

/* Running statistics of a BN from one batch (n values per channel). */
void nn_bn_update_running(const i8t_model *m, nn_bn *bn, size_t channels, size_t n);
/* Eval-mode scale of a BN from its running statistics. */
void nn_bn_running_scale(const i8t_model *m, const nn_bn *bn, size_t channels, float *scale);

#endif
