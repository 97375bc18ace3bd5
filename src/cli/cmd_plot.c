/*
 * normscope plot FILE... --what KIND -o DIR [--format png|svg|pdf] [--force]:
 * draws a figure kind of src/plot/plot.c from run or result files with
 * gnuplot, writes DIR/KIND.FORMAT and prints its path.
 */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "normscope/core.h"
#include "normscope/io.h"
#include "normscope/plot.h"

static const char usage_text[] =
    "usage: normscope plot FILE... --what KIND -o DIR [--format png|svg|pdf] [--force]\n"
    "       normscope plot --what list\n"
    "\n"
    "Draws a figure from run or result files through gnuplot into DIR/KIND.FORMAT\n"
    "and prints its path; the data it shows goes to DIR/KIND-data/.\n"
    "\n"
    "  -w, --what KIND     figure kind ('--what list' shows them)\n"
    "  -o, --output DIR    output directory, created when missing\n"
    "  -f, --format FMT    png (default), svg or pdf\n"
    "      --force         overwrite an existing figure\n"
    "  -q, --quiet         no notes on stderr\n"
    "  -h, --help          this help\n"
    "\n"
    "The gnuplot scripts are looked up in $NS_PLOTS_DIR, then in plots/ of the\n"
    "source tree or PREFIX/share/normscope/plots beside the executable.\n";

static void list_kinds(void)
{
    size_t n;
    const ns_plot_kind *k = ns_plot_kinds(&n);
    printf("figure kinds (normscope plot FILE... --what KIND -o DIR):\n");
    for (size_t i = 0; i < n; i++)
        printf("  %-14s %s (%s files)\n", k[i].name, k[i].description,
               strcmp(k[i].input, NS_RUN_FORMAT) == 0 ? "run" : "result");
}

int cmd_plot(int argc, char **argv)
{
    enum { OPT_FORCE = 256 };
    static const struct option longopts[] = {
        {"what", required_argument, NULL, 'w'},
        {"output", required_argument, NULL, 'o'},
        {"format", required_argument, NULL, 'f'},
        {"force", no_argument, NULL, OPT_FORCE},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *what = NULL;
    ns_plot_opts opts = {NULL, "png", 0};
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":w:o:f:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'w': what = optarg; break;
        case 'o': opts.outdir = optarg; break;
        case 'f': opts.format = optarg; break;
        case OPT_FORCE: opts.force = 1; break;
        case 'q': ns_progress_set_quiet(1); break;
        case 'h': fputs(usage_text, stdout); return NS_EXIT_OK;
        default: return ns_cli_bad_option("plot", longopts, c, argv);
        }
    }
    if (!what)
        return ns_cli_usage_error("plot", "no figure kind given (use --what KIND; see "
                                  "'normscope plot --what list')");
    if (strcmp(what, "list") == 0) {
        list_kinds();
        return NS_EXIT_OK;
    }
    const ns_plot_kind *kind = ns_plot_find(what);
    if (!kind)
        return ns_cli_usage_error("plot", "unknown figure kind '%s' (see 'normscope plot "
                                  "--what list')", what);
    if (!ns_plot_format_ok(opts.format))
        return ns_cli_usage_error("plot", "unknown format '%s' (%s)", opts.format,
                                  NS_PLOT_FORMATS);
    if (optind >= argc)
        return ns_cli_usage_error("plot", "no input file given");
    if (!opts.outdir)
        return ns_cli_usage_error("plot", "no output directory given (-o DIR)");

    char figure[1200];
    int st = ns_plot_render(kind, (const char *const *)argv + optind, (size_t)(argc - optind),
                            &opts, figure, sizeof figure);
    if (st)
        return ns_cli_fail(st, NULL);
    printf("%s\n", figure);
    return NS_EXIT_OK;
}
