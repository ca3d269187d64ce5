/* int8train data sets: Fashion-MNIST / MNIST-format IDX files and CIFAR-10
 * binary batches, validated on load and handed to the trainer as normalised
 * float NCHW batches with uint8 labels. */
#ifndef INT8TRAIN_DATA_H
#define INT8TRAIN_DATA_H

#include "int8train/int8train.h"

#ifdef __cplusplus
extern "C" {
#endif

#define I8T_DATA_MAX_CHANNELS 3

/** Where `i8t_data_load("fashion-mnist", ...)` looks: Debian's
 * dataset-fashion-mnist package. */
#define I8T_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/** One split of a data set. Pixels stay 8-bit in memory (4x smaller than
 * float); i8t_dataset_gather() turns a batch of them into normalised floats. */
typedef struct i8t_dataset {
  uint8_t *pixels;  /**< count x channels x height x width, NCHW */
  uint8_t *labels;  /**< count labels in [0, num_classes) */
  size_t count;
  int channels, height, width;
  int num_classes;
  /** Per-channel normalisation: float = (pixel / 255 - mean[c]) / std[c]. */
  float mean[I8T_DATA_MAX_CHANNELS], std[I8T_DATA_MAX_CHANNELS];
  char format[16];  /**< "idx" or "cifar10" */
} i8t_dataset;

typedef struct i8t_data_options {
  size_t limit_train; /**< keep the first N training images; 0: all */
  size_t limit_test;  /**< keep the first N test images; 0: all */
  /** Normalisation to apply (e.g. the one a checkpoint recorded). When
   * `have_norm` is 0 it is computed over the whole training split (before
   * limit_train) as the per-channel mean and standard deviation. */
  int have_norm;
  float mean[I8T_DATA_MAX_CHANNELS], std[I8T_DATA_MAX_CHANNELS];
} i8t_data_options;

/** Defaults: no limits, normalisation from the training split. */
void i8t_data_options_default(i8t_data_options *opts);

/** Loads a data set. `spec` is "fashion-mnist" (I8T_FASHION_MNIST_DIR) or
 * the path of a directory that holds either
 *  - MNIST-format IDX files: train-images-idx3-ubyte, train-labels-idx1-ubyte,
 *    t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each raw or gzipped
 *    (the same name + ".gz"; "train-images.idx3-ubyte" spellings accepted),
 *    10 classes; or
 *  - CIFAR-10 binary batches: data_batch_1.bin .. data_batch_5.bin and
 *    test_batch.bin (directly or in a cifar-10-batches-bin subdirectory).
 * `train` may be NULL when only the test split is wanted (it is then read
 * only if the normalisation has to be computed). Headers, dimensions, sizes,
 * label ranges and image/label counts are checked: a missing, truncated or
 * corrupt file fails with I8T_ERR_IO / I8T_ERR_FORMAT and a message naming
 * the file in i8t_last_error(). */
i8t_status i8t_data_load(const char *spec, const i8t_data_options *opts, i8t_dataset *train,
                         i8t_dataset *test);

/** Frees the arrays of `d` and zeroes it. NULL is a no-op. */
void i8t_dataset_free(i8t_dataset *d);

/** Number of floats of one image (channels x height x width). */
size_t i8t_dataset_image_size(const i8t_dataset *d);

/** Writes images indices[0..n) as normalised float NCHW into `images`
 * (n x image_size floats) and their labels into `labels`. indices NULL means
 * the n images starting at `first`; otherwise `first` is ignored. */
i8t_status i8t_dataset_gather(const i8t_dataset *d, const uint32_t *indices, size_t first,
                              size_t n, float *images, uint8_t *labels);

#ifdef __cplusplus
}
#endif

#endif
