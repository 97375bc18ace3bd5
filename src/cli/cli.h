/*
 * The normscope command line: one cmd_<name>() per subcommand, shared
 * option helpers.  Commands return an exit code (DESIGN.md section 4):
 * 0 success, 1 failure of the work, 2 bad usage or input, 3 a quality gate.
 */
#ifndef NS_CLI_H
#define NS_CLI_H

#include <stddef.h>
#include <stdint.h>

enum { NS_EXIT_OK = 0, NS_EXIT_FAIL = 1, NS_EXIT_USAGE = 2, NS_EXIT_GATE = 3 };

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_meanfield(int argc, char **argv);
int cmd_ntk(int argc, char **argv);

/* The full command line as one string (for run and result files). */
const char *ns_cli_cmdline(void);

/* Prints "normscope: <msg>" (the last library error when msg is NULL) and
 * returns the exit code for status: 2 for bad input, 1 otherwise. */
int ns_cli_fail(int status, const char *msg);

/* Prints "normscope <cmd>: <formatted message>" and a hint to use --help;
 * returns 2. */
int ns_cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Strict number parsing for option values; on error print a usage error
 * naming the option and return -1. */
int ns_cli_double(const char *cmd, const char *opt, const char *s, double *v);
int ns_cli_size(const char *cmd, const char *opt, const char *s, size_t *v);
int ns_cli_u64(const char *cmd, const char *opt, const char *s, uint64_t *v);

#endif
