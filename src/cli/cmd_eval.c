/*
 * normscope eval: accuracy and loss of a checkpoint on a data set, with
 * the run's own preprocessing.
 */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "normscope/inputs.h"

static const char usage_text[] =
    "usage: normscope eval RUN.h5 [--ckpt STEP|last] [--data D] [--split test|train]\n"
    "                      [--n N] [--mode eval|batch|recal] [--recal-n N] [--batch B]\n"
    "\n"
    "Evaluates a checkpoint of a run file on a data set (default: the run's own\n"
    "data set, test split) with the run's preprocessing, and prints accuracy and\n"
    "mean cross-entropy loss.  --mode batch normalises with each batch's own\n"
    "statistics instead of the running ones; --mode recal first re-estimates the\n"
    "running statistics of the BN layers as the average over the first --recal-n\n"
    "(10000) training samples, then evaluates with them.\n";

/* Loss and accuracy with each batch normalised by its own statistics:
 * forward in NS_MODE_BATCH over d in order, net->max_batch at a time. */
static int evaluate_batch_mode(ns_net *net, const ns_dataset *d, double *loss, double *acc)
{
    int st = NS_OK;
    size_t B = net->max_batch, dim = ns_data_dim(d), hits = 0;
    ns_real *x = ns_malloc(B * dim * sizeof *x);
    int32_t *y = ns_malloc(B * sizeof *y);
    size_t idx[4096];
    double total = 0;
    ns_ctx ctx = {.mode = NS_MODE_BATCH};
    if (!x || !y || B > 4096)
        st = ns_error(NS_EINVAL, "--batch at most 4096 in batch mode");
    for (size_t i = 0; !st && i < d->n; i += B) {
        size_t m = d->n - i < B ? d->n - i : B;
        for (size_t j = 0; j < m; j++)
            idx[j] = i + j;
        ns_data_gather(d, idx, m, x, y);
        if (!(st = ns_net_forward(net, x, m, &ctx))) {
            double l;
            size_t h;
            ns_softmax_ce(ns_net_logits(net), y, m, net->nout, NULL, &l, &h);
            total += l * (double)m;
            hits += h;
        }
    }
    *loss = total / (double)d->n;
    *acc = (double)hits / (double)d->n;
    ns_free(x);
    ns_free(y);
    return st;
}

int cmd_eval(int argc, char **argv)
{
    static const struct option options[] = {
        {"ckpt", required_argument, NULL, 'c'}, {"data", required_argument, NULL, 'd'},
        {"split", required_argument, NULL, 's'}, {"n", required_argument, NULL, 'n'},
        {"mode", required_argument, NULL, 'm'}, {"batch", required_argument, NULL, 'b'},
        {"threads", required_argument, NULL, 't'}, {"quiet", no_argument, NULL, 'q'},
        {"recal-n", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    uint64_t step = UINT64_MAX;
    char ckpt[24] = "last";
    ns_inputs_opts io;
    ns_run_inputs_defaults(&io);
    io.split = NS_SPLIT_TEST;
    io.n = 0;
    io.max_batch = 500;
    io.set_only = 1;     /* evaluated in place, the whole split or its first --n */
    int threads = 0;
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            if (strcmp(optarg, "last") && ns_cli_u64("eval", "--ckpt", optarg, &step))
                return NS_EXIT_USAGE;
            break;
        case 'd': io.data = optarg; break;
        case 's':
            if (!strcmp(optarg, "test")) io.split = NS_SPLIT_TEST;
            else if (!strcmp(optarg, "train")) io.split = NS_SPLIT_TRAIN;
            else return ns_cli_usage_error("eval", "--split is test or train, got '%s'", optarg);
            break;
        case 'n': if (ns_cli_size("eval", "--n", optarg, &io.n)) return NS_EXIT_USAGE; break;
        case 'b':
            if (ns_cli_size("eval", "--batch", optarg, &io.max_batch)) return NS_EXIT_USAGE;
            if (!io.max_batch) return ns_cli_usage_error("eval", "--batch must be positive");
            break;
        case 't': if (ns_cli_threads("eval", optarg, &threads)) return NS_EXIT_USAGE; break;
        case 'm':
            if (!strcmp(optarg, "eval")) io.mode = NS_BN_EVAL;
            else if (!strcmp(optarg, "batch")) io.mode = NS_BN_BATCH;
            else if (!strcmp(optarg, "recal")) io.mode = NS_BN_RECAL;
            else return ns_cli_usage_error("eval", "--mode is eval, batch or recal, got '%s'", optarg);
            break;
        case 'q': ns_progress_set_quiet(1); break;
        case 'r':
            if (ns_cli_size("eval", "--recal-n", optarg, &io.recal_n)) return NS_EXIT_USAGE;
            /* the default is clamped to the training set; a given value is not */
            io.recal_n_strict = 1;
            break;
        case 'h': fputs(usage_text, stdout); return NS_EXIT_OK;
        default: return ns_cli_bad_option("eval", options, opt, argv);
        }
    }
    if (optind != argc - 1)
        return ns_cli_usage_error("eval", "expected one run file");
    const char *path = argv[optind];
    ns_set_threads(threads);
    if (step != UINT64_MAX)
        snprintf(ckpt, sizeof ckpt, "%llu", (unsigned long long)step);
    io.ckpt = ckpt;
    ns_run_inputs in;
    int st = ns_run_inputs_open(&in, path, &io, NULL);
    if (st)
        return ns_cli_fail(st, NULL);
    ns_net *net = in.net;
    const ns_dataset *d = in.d;
    double loss = 0, acc = 0;
    if (io.mode == NS_BN_BATCH)
        st = evaluate_batch_mode(net, d, &loss, &acc);
    else
        st = ns_evaluate(net, d, &loss, &acc);
    if (!st)
        printf("%s step %llu on %s/%s (%zu samples, %s mode): accuracy %.2f%%, loss %.4f\n",
               path, (unsigned long long)in.step, in.cfg.data,
               io.split == NS_SPLIT_TEST ? "test" : "train", d->n, ns_bn_mode_name(io.mode),
               100 * acc, loss);
    ns_run_inputs_free(&in);
    return st ? ns_cli_fail(st, NULL) : NS_EXIT_OK;
}
