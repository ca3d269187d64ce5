/* Progress output of `int8train train`. On a terminal a single status line on
 * stderr is redrawn at most ten times a second; in a log (not a terminal)
 * a plain line is printed every tenth of an epoch. Epoch summaries go to
 * stdout in both cases. */
#include "progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void i8t_cli_format_duration(double s, char *buf, size_t size) {
  if (!(s >= 0) || s > 1e7) {
    snprintf(buf, size, "?");
    return;
  }
  long t = (long)(s + 0.5);
  if (t >= 3600) snprintf(buf, size, "%ldh%02ldm", t / 3600, t / 60 % 60);
  else if (t >= 60) snprintf(buf, size, "%ldm%02lds", t / 60, t % 60);
  else snprintf(buf, size, "%lds", t);
}

void i8t_cli_progress_init(i8t_cli_progress *p, volatile sig_atomic_t *interrupted) {
  p->bar = isatty(STDERR_FILENO);
  p->last_draw = now_seconds();
  p->next_line = 0;
  p->bar_visible = 0;
  p->interrupted = interrupted;
}

void i8t_cli_progress_clear(i8t_cli_progress *p) {
  if (p->bar_visible) {
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
    p->bar_visible = 0;
  }
}

static void draw_bar(i8t_cli_progress *c, const i8t_progress *p) {
  enum { WIDTH = 24 };
  double frac = p->steps_per_epoch ? (double)p->step / (double)p->steps_per_epoch : 1.0;
  char bar[WIDTH + 1], eta[32];
  int filled = (int)(frac * WIDTH + 0.5);
  for (int i = 0; i < WIDTH; i++) bar[i] = i < filled ? '#' : '-';
  bar[WIDTH] = '\0';
  i8t_cli_format_duration(p->eta_seconds, eta, sizeof eta);
  if (p->event == I8T_PROGRESS_EVALUATING)
    fprintf(stderr, "\r\033[Kepoch %d/%d [%s] evaluating on the test set...  ETA %s", p->epoch,
            p->epochs, bar, eta);
  else
    fprintf(stderr, "\r\033[Kepoch %d/%d [%s] %3.0f%%  loss %.4f  lr %.4f  %.0f img/s  ETA %s",
            p->epoch, p->epochs, bar, 100.0 * frac, p->train_loss, (double)p->lr,
            p->images_per_second, eta);
  fflush(stderr);
  c->bar_visible = 1;
}

static void print_step_line(const i8t_progress *p) {
  char eta[32];
  i8t_cli_format_duration(p->eta_seconds, eta, sizeof eta);
  printf("epoch %d/%d step %zu/%zu  loss %.4f  lr %.4f  %.0f img/s  ETA %s\n", p->epoch,
         p->epochs, p->step, p->steps_per_epoch, p->train_loss, (double)p->lr,
         p->images_per_second, eta);
  fflush(stdout);
}

static void print_epoch_line(const i8t_progress *p) {
  char took[32];
  i8t_cli_format_duration(p->epoch_seconds, took, sizeof took);
  printf("epoch %d/%d  train loss %.4f acc %.2f%%  test loss %.4f acc %.2f%%  %.0f img/s  %s\n",
         p->epoch, p->epochs, p->train_loss, 100.0 * p->train_accuracy, p->test_loss,
         100.0 * p->test_accuracy, p->images_per_second, took);
  fflush(stdout);
}

int i8t_cli_progress_report(const i8t_progress *p, void *user) {
  i8t_cli_progress *c = user;
  if (p->event == I8T_PROGRESS_EPOCH) {
    i8t_cli_progress_clear(c);
    print_epoch_line(p);
    c->next_line = 0;
  } else if (c->bar) {
    double t = now_seconds();
    if (t - c->last_draw >= 0.1 || p->event == I8T_PROGRESS_EVALUATING ||
        p->step == p->steps_per_epoch) {
      draw_bar(c, p);
      c->last_draw = t;
    }
  } else if (p->event == I8T_PROGRESS_STEP && p->steps_per_epoch >= 10) {
    /* A line per tenth of an epoch, but none for runs too short to need one. */
    size_t tenth = p->steps_per_epoch / 10;
    if (c->next_line == 0) c->next_line = tenth;
    if (p->step >= c->next_line && p->step < p->steps_per_epoch) {
      double t = now_seconds();
      if (t - c->last_draw >= 1.0) {
        print_step_line(p);
        c->last_draw = t;
      }
      c->next_line += tenth;
    }
  }
  return c->interrupted && *c->interrupted;
}
