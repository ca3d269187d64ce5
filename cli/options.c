/* Command-line option parsing for the sub-commands (see options.h): strict
 * numbers (whole string, range-checked), named choices, one-line errors. */
#include "options.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int i8t_cli_usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "int8train %s: ", cmd);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, " (see int8train %s --help)\n", cmd);
  va_end(ap);
  return I8T_CLI_ERROR;
}

i8t_cli_option *i8t_cli_find(i8t_cli_option *opts, size_t count, const char *name) {
  for (size_t i = 0; i < count; i++)
    if (strcmp(opts[i].name, name) == 0) return &opts[i];
  return NULL;
}

static int out_of_range(const char *cmd, const i8t_cli_option *o, const char *value) {
  return i8t_cli_usage_error(cmd, "%s %s is out of range (%.15g..%.15g)", o->name, value, o->min,
                             o->max);
}

/* Whole numbers: the entire string must be digits (optionally signed). */
static int parse_whole(const char *cmd, const i8t_cli_option *o, const char *value,
                       long double *out) {
  char *end;
  errno = 0;
  if (value[0] == '-') {
    long long v = strtoll(value, &end, 10);
    *out = (long double)v;
  } else {
    unsigned long long v = strtoull(value, &end, 10);
    *out = (long double)v;
  }
  if (!*value || *end || end == value || (value[0] == '+' && value[1] == '\0'))
    return i8t_cli_usage_error(cmd, "%s: '%s' is not a whole number", o->name, value);
  if (errno == ERANGE) return out_of_range(cmd, o, value);
  return I8T_CLI_OK;
}

static int store_value(const char *cmd, i8t_cli_option *o, const char *value) {
  long double v = 0;
  switch (o->kind) {
    case I8T_CLI_FLAG:
      *(int *)o->dest = 1;
      return I8T_CLI_OK;
    case I8T_CLI_STRING:
      if (!*value) return i8t_cli_usage_error(cmd, "%s needs a non-empty value", o->name);
      *(const char **)o->dest = value;
      return I8T_CLI_OK;
    case I8T_CLI_INT:
    case I8T_CLI_SIZE:
      if (parse_whole(cmd, o, value, &v) != I8T_CLI_OK) return I8T_CLI_ERROR;
      if (v < (long double)o->min || v > (long double)o->max) return out_of_range(cmd, o, value);
      if (o->kind == I8T_CLI_INT) *(int *)o->dest = (int)v;
      else *(size_t *)o->dest = (size_t)v;
      return I8T_CLI_OK;
    case I8T_CLI_U64: {
      char *end;
      errno = 0;
      unsigned long long u = strtoull(value, &end, 10);
      if (!*value || *end || value[0] == '-')
        return i8t_cli_usage_error(cmd, "%s: '%s' is not a non-negative whole number", o->name,
                                   value);
      if (errno == ERANGE) return i8t_cli_usage_error(cmd, "%s %s is too large", o->name, value);
      *(uint64_t *)o->dest = (uint64_t)u;
      return I8T_CLI_OK;
    }
    case I8T_CLI_FLOAT: {
      char *end;
      errno = 0;
      double d = strtod(value, &end);
      if (!*value || *end || !isfinite(d))
        return i8t_cli_usage_error(cmd, "%s: '%s' is not a number", o->name, value);
      if (d < o->min || d > o->max) return out_of_range(cmd, o, value);
      *(float *)o->dest = (float)d;
      return I8T_CLI_OK;
    }
    case I8T_CLI_CHOICE:
      for (int i = 0; o->choices[i]; i++)
        if (strcmp(o->choices[i], value) == 0) {
          *(int *)o->dest = i;
          return I8T_CLI_OK;
        }
      {
        char list[256] = "";
        for (int i = 0; o->choices[i]; i++) {
          strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
          strncat(list, o->choices[i], sizeof list - strlen(list) - 1);
        }
        return i8t_cli_usage_error(cmd, "%s: unknown value '%s' (one of %s)", o->name, value,
                                   list);
      }
  }
  return I8T_CLI_ERROR;
}

i8t_cli_result i8t_cli_parse(const char *cmd, i8t_cli_option *opts, size_t count, int argc,
                             char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) return I8T_CLI_HELP;
    if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
      return (i8t_cli_result)i8t_cli_usage_error(cmd, "unexpected argument '%s'", arg);
    char name[64];
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    if (len >= sizeof name)
      return (i8t_cli_result)i8t_cli_usage_error(cmd, "unknown option '%.*s'", 64, arg);
    memcpy(name, arg, len);
    name[len] = '\0';
    i8t_cli_option *o = i8t_cli_find(opts, count, name);
    if (!o) return (i8t_cli_result)i8t_cli_usage_error(cmd, "unknown option '%s'", name);
    const char *value = NULL;
    if (o->kind == I8T_CLI_FLAG) {
      if (eq) return (i8t_cli_result)i8t_cli_usage_error(cmd, "%s takes no value", name);
    } else if (eq) {
      value = eq + 1;
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return (i8t_cli_result)i8t_cli_usage_error(cmd, "%s needs a value (%s)", name,
                                                 o->metavar ? o->metavar : "VALUE");
    }
    if (store_value(cmd, o, value) != I8T_CLI_OK) return I8T_CLI_ERROR;
    o->given = 1;
  }
  return I8T_CLI_OK;
}

void i8t_cli_print_help(FILE *out, const char *usage, const char *description,
                        const i8t_cli_option *opts, size_t count) {
  fprintf(out, "usage: %s\n\n%s\n\noptions:\n", usage, description);
  for (size_t i = 0; i < count; i++) {
    char left[64];
    snprintf(left, sizeof left, "%s%s%s", opts[i].name, opts[i].kind == I8T_CLI_FLAG ? "" : " ",
             opts[i].kind == I8T_CLI_FLAG ? "" : (opts[i].metavar ? opts[i].metavar : "VALUE"));
    if (strlen(left) > 26) fprintf(out, "  %s\n  %-26s %s\n", left, "", opts[i].help);
    else fprintf(out, "  %-26s %s\n", left, opts[i].help);
  }
  fprintf(out, "  %-26s %s\n", "--help, -h", "this text");
}
