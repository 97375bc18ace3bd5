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

struct option;

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_meanfield(int argc, char **argv);
int cmd_ntk(int argc, char **argv);
int cmd_spectrum(int argc, char **argv);

/* The full command line as one string (for run and result files). */
const char *ns_cli_cmdline(void);

/* Every error is one line on stderr (control characters in a message are
 * printed as spaces) carrying at most one bracketed hint. */

/* Prints "normscope: <msg>" (the last library error when msg is NULL) and
 * returns the exit code for status: 2 for bad input, 1 otherwise. */
int ns_cli_fail(int status, const char *msg);

/* Prints "normscope <cmd>: <formatted message>" followed by the hint
 * "(see 'normscope <cmd> --help')", unless the message ends in a bracketed
 * hint of its own (its last character is ')'); returns 2. */
int ns_cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The usage error for getopt_long's ':' or '?' return c, just after it,
 * with the command's long options opts: names the option as the user wrote
 * it (unknown, ambiguous, missing its value, given a value it does not
 * take); returns 2. */
int ns_cli_bad_option(const char *cmd, const struct option *opts, int c, char **argv);

/* Strict number parsing for option values: integers are decimal digits
 * only (no sign or blank).  On error print a usage error naming the option
 * and return -1. */
int ns_cli_double(const char *cmd, const char *opt, const char *s, double *v);
/* The same integer rule without a message: 0, or -1 for anything but
 * decimal digits in range (strtoull alone takes blanks and signs, and wraps
 * " -3" round to 2^64 - 3). */
int ns_cli_parse_u64(const char *s, uint64_t *v);
int ns_cli_size(const char *cmd, const char *opt, const char *s, size_t *v);
int ns_cli_u64(const char *cmd, const char *opt, const char *s, uint64_t *v);
/* --threads: an integer in 1..256, the rule of the training option table
 * (ns_train_opt_find("--threads")). */
int ns_cli_threads(const char *cmd, const char *s, int *t);
/* A memory size (--mem): a decimal number of bytes (digits, an optional
 * fraction), then an optional K, M or G (powers of 1024), then an optional B
 * or iB: "300K", "1.5G", "512MiB".  No sign, blank, exponent, hex, inf or
 * nan; at most 2^50 bytes.  On error a usage error naming opt, -1. */
int ns_cli_mem(const char *cmd, const char *opt, const char *s, size_t *v);
/* A byte count as "N KiB", "N MiB" or "N.N GiB", rounded up. */
void ns_cli_bytes_up(size_t b, char *buf, size_t len);
/* 1 when s is a comma-separated list without empty items ("", "1,,2",
 * ",1" and "1," are not). */
int ns_cli_list_ok(const char *s);

#endif
