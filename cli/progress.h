/* Progress output of `int8train train`: a redrawn bar (loss, images/s, ETA)
 * on a terminal, plain lines otherwise, and a summary line per epoch. */
#ifndef INT8TRAIN_CLI_PROGRESS_H
#define INT8TRAIN_CLI_PROGRESS_H

#include <signal.h>

#include "int8train/trainer.h"

typedef struct i8t_cli_progress {
  int bar;             /**< redraw a bar on stderr (a terminal) */
  double last_draw;    /**< when the bar was last drawn (seconds) */
  size_t next_line;    /**< plain mode: the next step that prints a line */
  int bar_visible;
  volatile sig_atomic_t *interrupted; /**< set by SIGINT: ask the trainer to stop */
} i8t_cli_progress;

/** Chooses bar or lines from isatty(stderr). */
void i8t_cli_progress_init(i8t_cli_progress *p, volatile sig_atomic_t *interrupted);

/** The i8t_progress_fn for i8t_train; `user` is an i8t_cli_progress. */
int i8t_cli_progress_report(const i8t_progress *p, void *user);

/** Clears a bar left on the terminal (before printing an error). */
void i8t_cli_progress_clear(i8t_cli_progress *p);

/** "1h02m", "3m05s", "12s". */
void i8t_cli_format_duration(double seconds, char *buf, size_t size);

#endif
