/* Sub-commands of the int8train tool. Each returns the process exit status. */
#ifndef INT8TRAIN_CLI_COMMANDS_H
#define INT8TRAIN_CLI_COMMANDS_H

int i8t_cmd_info(int argc, char **argv);
int i8t_cmd_train(int argc, char **argv);
int i8t_cmd_eval(int argc, char **argv);

#endif
