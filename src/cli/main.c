/*
 * normscope: the command table.  Each subcommand lives in cmd_<name>.c and
 * parses its own options; only this layer prints errors and exits.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "normscope/core.h"
#include "normscope/train.h"

static char cmdline[4096];

const char *ns_cli_cmdline(void)
{
    return cmdline;
}

/* One line, whatever the message holds: control characters become spaces. */
static void put_line(const char *prefix, const char *msg, const char *hint)
{
    fputs(prefix, stderr);
    for (const char *p = msg; *p; p++)
        fputc((unsigned char)*p < ' ' ? ' ' : *p, stderr);
    fprintf(stderr, "%s\n", hint);
}

int ns_cli_fail(int status, const char *msg)
{
    put_line("normscope: ", msg ? msg : ns_errmsg(), "");
    return ns_status_is_input(status) ? NS_EXIT_USAGE : NS_EXIT_FAIL;
}

int ns_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[1024], prefix[64], hint[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(prefix, sizeof prefix, "normscope %s: ", cmd);
    /* At most one hint a line: a message that ends in a bracketed hint of
     * its own ("(use -o OUT.h5)", "(sgd, adam, adamw)") goes without the
     * general one. */
    size_t n = strlen(msg);
    if (n && msg[n - 1] == ')')
        hint[0] = '\0';
    else
        snprintf(hint, sizeof hint, " (see 'normscope %s --help')", cmd);
    put_line(prefix, msg, hint);
    return NS_EXIT_USAGE;
}

int ns_cli_bad_option(const char *cmd, const struct option *opts, int c, char **argv)
{
    /* getopt_long has just passed the element of a long option (unknown,
     * ambiguous, missing its value or given one it does not take); a short
     * option is known only by optopt, as its element may not be passed yet. */
    const char *arg = optind > 0 ? argv[optind - 1] : "";
    if (arg[0] == '-' && arg[1] == '-' && arg[2]) {
        const char *name = arg + 2;
        size_t len = strcspn(name, "=");
        const struct option *hit = NULL;
        char alts[256] = "";
        size_t nhit = 0, used = 0;
        for (const struct option *o = opts; o->name; o++) {
            if (strncmp(o->name, name, len))
                continue;
            if (strlen(o->name) == len) {   /* an exact name beats prefixes */
                hit = o;
                nhit = 1;
                break;
            }
            hit = o;
            nhit++;
            if (used < sizeof alts)
                used += (size_t)snprintf(alts + used, sizeof alts - used, "%s--%s",
                                         nhit > 1 ? ", " : "", o->name);
        }
        if (c == '?' && optopt == 0)
            return nhit > 1 ? ns_cli_usage_error(cmd, "option '--%.*s' is ambiguous: %s",
                                                 (int)len, name, alts)
                            : ns_cli_usage_error(cmd, "unknown option '--%.*s'", (int)len, name);
        if (nhit == 1 && hit->val == optopt) {
            if (c == ':')
                return ns_cli_usage_error(cmd, "option '--%s' needs a value", hit->name);
            if (hit->has_arg == no_argument)
                return ns_cli_usage_error(cmd, "option '--%s' takes no value", hit->name);
        }
    }
    if (c == ':')
        return ns_cli_usage_error(cmd, "option '-%c' needs a value", optopt);
    if (optopt > ' ' && optopt < 127)
        return ns_cli_usage_error(cmd, "unknown option '-%c'", optopt);
    return ns_cli_usage_error(cmd, "unknown option '%s'", arg);
}

int ns_cli_parse_u64(const char *s, uint64_t *v)
{
    if (*s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (*end || errno)
        return -1;
    *v = x;
    return 0;
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
    if (x > SIZE_MAX) {
        ns_cli_usage_error(cmd, "%s %s is too large", opt, s);
        return -1;
    }
    *v = (size_t)x;
    return 0;
}

int ns_cli_u64(const char *cmd, const char *opt, const char *s, uint64_t *v)
{
    if (ns_cli_parse_u64(s, v)) {
        ns_cli_usage_error(cmd, "%s expects a non-negative integer, got '%s'", opt, s);
        return -1;
    }
    return 0;
}

int ns_cli_list_ok(const char *s)
{
    size_t n = strlen(s);
    return n && s[0] != ',' && s[n - 1] != ',' && !strstr(s, ",,");
}

/* --mem: a decimal number of bytes (digits, an optional fraction), then
 * an optional K, M or G (powers of 1024), then an optional B or iB: "300K",
 * "1.5G", "512MiB".  No sign, blank, exponent, hex, inf or nan; at most
 * 2^50 bytes. */
static int parse_mem(const char *s, size_t *out)
{
    const char *p = s;
    while (*p >= '0' && *p <= '9')
        p++;
    if (p == s)
        return -1;
    if (*p == '.') {
        const char *f = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == f)
            return -1;
    }
    double v = strtod(s, NULL);   /* the plain decimal prefix just checked */
    double mul = 1;
    int unit = 1;
    switch (*p) {
    case 'K': case 'k': mul = 1024.0; break;
    case 'M': case 'm': mul = 1024.0 * 1024; break;
    case 'G': case 'g': mul = 1024.0 * 1024 * 1024; break;
    default: unit = 0;
    }
    p += unit;
    if (unit && (*p == 'i' || *p == 'I') && (p[1] == 'B' || p[1] == 'b'))
        p += 2;
    else if (*p == 'B' || *p == 'b')
        p++;
    if (*p || !(v * mul <= 1125899906842624.0))
        return -1;
    *out = (size_t)(v * mul);
    return 0;
}

void ns_cli_bytes_up(size_t b, char *buf, size_t len)
{
    const double K = 1024.0, M = K * K, G = M * K;
    if (b < M)
        snprintf(buf, len, "%.0f KiB", ceil((double)b / K));
    else if (b < G)
        snprintf(buf, len, "%.0f MiB", ceil((double)b / M));
    else
        snprintf(buf, len, "%.1f GiB", ceil((double)b / G * 10) / 10);
}

int ns_cli_mem(const char *cmd, const char *opt, const char *s, size_t *v)
{
    if (parse_mem(s, v) == 0)
        return 0;
    ns_cli_usage_error(cmd, "%s expects a size such as 512M or 2G, got '%s'", opt, s);
    return -1;
}

int ns_cli_threads(const char *cmd, const char *s, int *t)
{
    /* The training option table's rule, for every command. */
    ns_train_config c;
    ns_train_config_default(&c);
    if (ns_train_opt_parse(ns_train_opt_find("--threads"), s, &c)) {
        ns_cli_usage_error(cmd, "%s", ns_errmsg());
        return -1;
    }
    *t = c.threads;
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
    {"spectrum", cmd_spectrum, "whitening of activations per layer: covariance spectra, correlation, weight spectra"},
    {"meanfield", cmd_meanfield, "mean-field theory: fixed points, chi_1, depth scales, phase diagram"},
    {"plot", cmd_plot, "figures from run and result files through gnuplot"},
};

static void usage(void)
{
    printf("usage: normscope <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        printf("  %-10s %s\n", commands[i].name, commands[i].help);
    printf("\n'normscope <command> --help' describes a command's options.\n"
           "exit codes: 0 success, 1 failure, 2 bad usage or input, 3 quality gate\n");
}

int main(int argc, char **argv)
{
    /* A file-size limit (ulimit -f) makes a write fail with EFBIG, which the
     * writers report like a full disk, instead of killing the process and
     * leaving its temporary file behind. */
    signal(SIGXFSZ, SIG_IGN);
    size_t used = 0;
    for (int i = 0; i < argc && used < sizeof cmdline - 1; i++)
        used += (size_t)snprintf(cmdline + used, sizeof cmdline - used, "%s%s",
                                 i ? " " : "", i ? argv[i] : "normscope");
    if (argc < 2) {
        fprintf(stderr, "normscope: no command given (see 'normscope --help')\n");
        return NS_EXIT_USAGE;
    }
    int help = !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help");
    if (help && argc == 3) {
        /* "normscope help CMD" is "normscope CMD --help". */
        for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
            if (!strcmp(argv[2], commands[i].name)) {
                char opt[] = "--help", *args[] = {argv[2], opt, NULL};
                return commands[i].fn(2, args);
            }
        fprintf(stderr, "normscope: no help on '%s': not a command (see 'normscope --help')\n",
                argv[2]);
        return NS_EXIT_USAGE;
    }
    if ((help || !strcmp(argv[1], "--version")) && argc > 2) {
        fprintf(stderr, "normscope: %s takes %s, got '%s' (see 'normscope --help')\n",
                argv[1], help ? "at most one command name" : "no arguments", argv[argc - 1]);
        return NS_EXIT_USAGE;
    }
    if (help) {
        usage();
        return NS_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("normscope %s (%s)\n", NS_VERSION, NS_REAL_NAME);
        return NS_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "normscope: unknown %s '%s' (see 'normscope --help')\n",
            argv[1][0] == '-' ? "option" : "command", argv[1]);
    return NS_EXIT_USAGE;
}
