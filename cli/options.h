/* Table-driven parsing of `--name value` / `--name=value` options for the
 * sub-commands: numbers are checked whole and in range, choices by name, and
 * every mistake is reported in one line naming the option. */
#ifndef INT8TRAIN_CLI_OPTIONS_H
#define INT8TRAIN_CLI_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum i8t_cli_kind {
  I8T_CLI_FLAG,   /**< no value; dest: int, set to 1 */
  I8T_CLI_STRING, /**< dest: const char * (points into argv) */
  I8T_CLI_INT,    /**< dest: int, in [min, max] */
  I8T_CLI_SIZE,   /**< dest: size_t, in [min, max] */
  I8T_CLI_U64,    /**< dest: uint64_t, any value */
  I8T_CLI_FLOAT,  /**< dest: float, finite, in [min, max] */
  I8T_CLI_CHOICE, /**< dest: int, the index of the value in `choices` */
} i8t_cli_kind;

typedef struct i8t_cli_option {
  const char *name;    /**< "--epochs" */
  i8t_cli_kind kind;
  void *dest;
  double min, max;     /**< for INT, SIZE and FLOAT */
  const char *const *choices; /**< NULL-terminated, for CHOICE */
  const char *metavar; /**< "N", "FILE", ... for the help text */
  const char *help;    /**< one line; the default in it */
  int given;           /**< set by the parser when the option appears */
} i8t_cli_option;

typedef enum i8t_cli_result {
  I8T_CLI_OK = 0,
  I8T_CLI_HELP = 1,  /**< --help or -h: the caller prints help and exits 0 */
  I8T_CLI_ERROR = 2, /**< a one-line reason went to stderr: exit 2 */
} i8t_cli_result;

/** Parses argv[1..argc) (argv[0] is the command name) into the table.
 * `cmd` names the command in messages ("train"). */
i8t_cli_result i8t_cli_parse(const char *cmd, i8t_cli_option *opts, size_t count, int argc,
                             char **argv);

/** Prints "usage: ...", the description and one line per option. */
void i8t_cli_print_help(FILE *out, const char *usage, const char *description,
                        const i8t_cli_option *opts, size_t count);

/** The option called `name` in the table (NULL if none). */
i8t_cli_option *i8t_cli_find(i8t_cli_option *opts, size_t count, const char *name);

/** Prints "int8train <cmd>: <message>" to stderr; returns 2 (bad usage). */
int i8t_cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
