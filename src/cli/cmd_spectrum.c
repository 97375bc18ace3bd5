/*
 * normscope spectrum: how whitened each layer's activations are, and the
 * spectra of the weights.  Options and the summary; the analysis is
 * ns_spectrum_run (include/normscope/spectrum.h, src/analysis/spectrum.c).
 */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "normscope/inputs.h"
#include "normscope/result.h"
#include "normscope/spectrum.h"

static const char usage_text[] =
    "usage: normscope spectrum RUN.h5 -o OUT.h5 [--data D] [--split train|test] [--n N]\n"
    "                          [--ckpt init|last|all|STEP,...] [--mode eval|batch|recal]\n"
    "                          [--recal-n N] [--layers LIST] [--at pre|post] [--pool]\n"
    "                          [--gram-n N] [--quantile-n N] [--no-weights]\n"
    "                          [--threads T] [--force] [--quiet]\n"
    "\n"
    "Whitening of activations, layer by layer, on N samples of a split (default:\n"
    "the run's own data set, training split, N = 1000; --n 0 takes the whole\n"
    "split), for each chosen checkpoint (default last), and the spectra of the\n"
    "weights.  Features are the units of a dense layer and the channels of a\n"
    "conv layer, with samples and positions as observations (--pool: per-sample\n"
    "spatial means instead).\n"
    "\n"
    "  --layers LIST  layer names as in `normscope info` (03-relu,...); default:\n"
    "                 every dense, conv and activation layer\n"
    "  --at pre|post  each chosen layer's input (pre) or output (post, default)\n"
    "  --mode         eval (running statistics, default), batch (the N samples'\n"
    "                 own statistics, all in one pass), recal (running statistics\n"
    "                 re-estimated on --recal-n training samples first)\n"
    "  --gram-n N     samples in the cosine Gram matrix (default 500; 0: all)\n"
    "  --quantile-n N observations drawn per layer for the channel quantiles\n"
    "                 (default 65536; all when there are fewer)\n"
    "  --no-weights   no weight spectra\n"
    "\n"
    "Per checkpoint and layer, /spectrum/<step>/<layer>/: cov_eigenvalues and\n"
    "corr_eigenvalues (descending), gram_eigenvalues, channel_quantiles (F x 7:\n"
    "1, 5, 25, 50, 75, 95, 99%), channel_mean, channel_std, channel_positive,\n"
    "and attributes condition_number (l_max / max(l_min, 1e-12 l_max)),\n"
    "effective_rank (exp of the spectral entropy), participation_ratio ((sum\n"
    "l)^2 / sum l^2), mean_abs_corr (mean |R_ij|, i != j), corr_identity_distance\n"
    "(||R - I||_F / sqrt(F(F-1))) and mean_cosine (mean cosine similarity of\n"
    "two samples' feature vectors).  Per dense and conv layer,\n"
    "/spectrum/<step>/weights/<layer>/: singular_values of the weight (conv:\n"
    "out x in*k*k) with stable_rank and alpha, the power-law exponent of the\n"
    "eigenvalues of W^T W (maximum likelihood, xmin by the Kolmogorov-Smirnov\n"
    "distance; Clauset, Shalizi and Newman 2009).  These measures are\n"
    "normscope's definitions (METHODS.md).\n";

static void print_summary(void *ctx, const ns_spectrum_summary *s)
{
    (void)ctx;
    printf("  step %llu, %zu samples\n", (unsigned long long)s->step, s->n);
    printf("    %-12s %8s %10s %9s %9s %9s %9s %9s\n", "layer", "features", "cond",
           "eff.rank", "part.rat", "|corr|", "R-I", "cosine");
    for (size_t i = 0; i < s->nlayers; i++) {
        const ns_spectrum_layer *l = &s->layers[i];
        printf("    %-12s %8zu %10.4g %9.2f %9.2f %9.4f %9.4f %9.4f\n", l->name, l->features,
               l->w.condition_number, l->w.effective_rank, l->w.participation_ratio,
               l->w.mean_abs_corr, l->w.corr_identity_distance, l->mean_cosine);
    }
}

int cmd_spectrum(int argc, char **argv)
{
    static const struct option options[] = {
        {"ckpt", required_argument, NULL, 'c'}, {"data", required_argument, NULL, 'd'},
        {"split", required_argument, NULL, 's'}, {"n", required_argument, NULL, 'n'},
        {"mode", required_argument, NULL, 'm'}, {"recal-n", required_argument, NULL, 'r'},
        {"layers", required_argument, NULL, 'l'}, {"at", required_argument, NULL, 'a'},
        {"pool", no_argument, NULL, 'p'}, {"gram-n", required_argument, NULL, 'g'},
        {"quantile-n", required_argument, NULL, 'Q'}, {"no-weights", no_argument, NULL, 'W'},
        {"threads", required_argument, NULL, 't'}, {"quiet", no_argument, NULL, 'q'},
        {"force", no_argument, NULL, 'f'}, {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    const char *out = NULL;
    int force = 0, threads = 0;
    ns_inputs_opts io;
    ns_run_inputs_defaults(&io);
    io.n = 1000;
    io.ckpt = "last";
    ns_spectrum_opts so;
    ns_spectrum_defaults(&so);
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":ho:", options, NULL)) != -1) {
        switch (opt) {
        case 'c': io.ckpt = optarg; break;
        case 'd': io.data = optarg; break;
        case 's':
            if (!strcmp(optarg, "test")) io.split = NS_SPLIT_TEST;
            else if (!strcmp(optarg, "train")) io.split = NS_SPLIT_TRAIN;
            else return ns_cli_usage_error("spectrum", "--split is train or test, got '%s'",
                                           optarg);
            break;
        case 'n': if (ns_cli_size("spectrum", "--n", optarg, &io.n)) return NS_EXIT_USAGE; break;
        case 'm':
            if (!strcmp(optarg, "eval")) io.mode = NS_BN_EVAL;
            else if (!strcmp(optarg, "batch")) io.mode = NS_BN_BATCH;
            else if (!strcmp(optarg, "recal")) io.mode = NS_BN_RECAL;
            else return ns_cli_usage_error("spectrum", "--mode is eval, batch or recal, "
                                           "got '%s'", optarg);
            break;
        case 'r':
            if (ns_cli_size("spectrum", "--recal-n", optarg, &io.recal_n)) return NS_EXIT_USAGE;
            break;
        case 'l':
            if (!ns_cli_list_ok(optarg))
                return ns_cli_usage_error("spectrum", "--layers expects names separated by "
                                          "commas, got '%s'", optarg);
            so.layers = optarg;
            break;
        case 'a':
            if (!strcmp(optarg, "pre")) so.at_pre = 1;
            else if (!strcmp(optarg, "post")) so.at_pre = 0;
            else return ns_cli_usage_error("spectrum", "--at is pre or post, got '%s'", optarg);
            break;
        case 'p': so.pool = 1; break;
        case 'g': if (ns_cli_size("spectrum", "--gram-n", optarg, &so.gram_n)) return NS_EXIT_USAGE; break;
        case 'Q':
            if (ns_cli_size("spectrum", "--quantile-n", optarg, &so.quantile_n))
                return NS_EXIT_USAGE;
            if (!so.quantile_n) return ns_cli_usage_error("spectrum", "--quantile-n must be positive");
            break;
        case 'W': so.weights = 0; break;
        case 't': if (ns_cli_threads("spectrum", optarg, &threads)) return NS_EXIT_USAGE; break;
        case 'q': ns_progress_set_quiet(1); break;
        case 'f': force = 1; break;
        case 'o': out = optarg; break;
        case 'h': fputs(usage_text, stdout); return NS_EXIT_OK;
        default: return ns_cli_bad_option("spectrum", options, opt, argv);
        }
    }
    if (optind != argc - 1)
        return ns_cli_usage_error("spectrum", "expected one run file");
    if (!out)
        return ns_cli_usage_error("spectrum", "no output file given (use -o OUT.h5)");
    const char *path = argv[optind];
    ns_set_threads(threads);

    if (io.mode == NS_BN_BATCH && io.n == 0)
        return ns_cli_usage_error("spectrum", "--mode batch takes all samples in one pass: "
                                  "give their number with --n");
    /* The run, its checkpoints and samples; the checks that need no forward. */
    int usage = 0;
    ns_run_inputs in;
    io.max_batch = ns_spectrum_max_batch(io.mode == NS_BN_BATCH, io.n);
    int st = ns_run_inputs_open(&in, path, &io, &usage);
    if (st)
        return usage ? ns_cli_usage_error("spectrum", "%s", ns_errmsg()) : ns_cli_fail(st, NULL);
    if (in.n < 2)
        st = ns_error(NS_EINVAL, "spectrum needs two samples or more, got %zu", in.n);
    if (!st && (st = ns_spectrum_check(&so, &in))) {
        ns_run_inputs_free(&in);
        return ns_cli_usage_error("spectrum", "%s", ns_errmsg());
    }
    ns_result *res = NULL;
    ns_spectrum_summary sum = {0};
    if (!st) {
        const char *inputs[2] = {path, in.cfg.data};
        st = ns_result_create(&res, out, force, ns_cli_cmdline(), inputs, 2);
    }
    so.cmdline = ns_cli_cmdline();
    so.report = print_summary;
    if (!st) {
        printf("spectrum of %s on %zu %s samples of %s, %s mode\n", path, in.n,
               in.opts.split == NS_SPLIT_TRAIN ? "training" : "test", in.cfg.data,
               ns_bn_mode_name(in.opts.mode));
        st = ns_spectrum_run(&so, &in, res, &sum);
    }
    if (!st) {
        st = ns_result_commit(res);
        res = NULL;
    }
    if (!st)
        printf("wrote %s\n", out);
    ns_result_free(res);
    ns_spectrum_summary_free(&sum);
    ns_run_inputs_free(&in);
    return st ? ns_cli_fail(st, NULL) : NS_EXIT_OK;
}
