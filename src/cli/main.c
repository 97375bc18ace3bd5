/*
 * normscope: the command table.  Each subcommand lives in cmd_<name>.c and
 * parses its own options; only this layer prints errors and exits.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "normscope/core.h"

static char cmdline[4096];

const char *ns_cli_cmdline(void)
{
    return cmdline;
}

int ns_cli_fail(int status, const char *msg)
{
    fprintf(stderr, "normscope: %s\n", msg ? msg : ns_errmsg());
    return ns_status_is_input(status) ? NS_EXIT_USAGE : NS_EXIT_FAIL;
}

int ns_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "normscope %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'normscope %s --help')\n", cmd);
    return NS_EXIT_USAGE;
}

int ns_cli_double(const char *cmd, const char *opt, const char *s, double *v)
{
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (end == s || *end || errno || x != x) {
        ns_cli_usage_error(cmd, "%s expects a number, got '%s'", opt, s);
        return -1;
    }
    *v = x;
    return 0;
}

int ns_cli_size(const char *cmd, const char *opt, const char *s, size_t *v)
{
    uint64_t x;
    if (ns_cli_u64(cmd, opt, s, &x))
        return -1;
    *v = (size_t)x;
    return 0;
}

int ns_cli_u64(const char *cmd, const char *opt, const char *s, uint64_t *v)
{
    char *end;
    errno = 0;
    if (*s == '-' || *s == '\0') {
        ns_cli_usage_error(cmd, "%s expects a non-negative integer, got '%s'", opt, s);
        return -1;
    }
    unsigned long long x = strtoull(s, &end, 10);
    if (*end || errno) {
        ns_cli_usage_error(cmd, "%s expects a non-negative integer, got '%s'", opt, s);
        return -1;
    }
    *v = x;
    return 0;
}

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"train", cmd_train, "train an architecture with a normalization method; writes a run file"},
    {"eval", cmd_eval, "accuracy and loss of a checkpoint on a data set"},
    {"info", cmd_info, "what a run or result file holds"},
    {"ntk", cmd_ntk, "empirical NTK of checkpoints: spectrum, conditioning, alignment, drift"},
    {"meanfield", cmd_meanfield, "mean-field theory: fixed points, chi_1, depth scales, phase diagram"},
    {"plot", cmd_plot, "figures from run and result files through gnuplot"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: normscope <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n'normscope <command> --help' describes a command's options.\n"
               "exit codes: 0 success, 1 failure, 2 bad usage or input, 3 quality gate\n");
}

int main(int argc, char **argv)
{
    size_t used = 0;
    for (int i = 0; i < argc && used < sizeof cmdline - 1; i++)
        used += (size_t)snprintf(cmdline + used, sizeof cmdline - used, "%s%s",
                                 i ? " " : "", i ? argv[i] : "normscope");
    if (argc < 2) {
        usage(stderr);
        return NS_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return NS_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("normscope %s (%s)\n", NS_VERSION, NS_REAL_NAME);
        return NS_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "normscope: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return NS_EXIT_USAGE;
}
