/* int8train: command-line entry point; dispatches to the sub-commands. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

typedef struct command {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} command;

static const command commands[] = {
    {"info", i8t_cmd_info, "CPU features, selected ISA, kernel table; --self-check runs the kernels"},
    {"train", i8t_cmd_train, "train a model (resnet8 on Fashion-MNIST by default), print the accuracy"},
    {"eval", i8t_cmd_eval, "evaluate a checkpoint on the test set"},
};

static void usage(FILE *out) {
  fprintf(out, "usage: int8train <command> [options]\n\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "\n`int8train <command> --help` describes a command's options.\n"
               "INT8TRAIN_ISA=generic|avx2|avx512vnni|neon|neondot lowers the kernel ISA.\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "int8train: unknown command '%s' (try int8train --help)\n", argv[1]);
  return 2;
}
