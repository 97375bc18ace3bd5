/*
 * normscope eval: accuracy and loss of a checkpoint on a data set, with
 * the run's own preprocessing.
 */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "normscope/train.h"

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
    const char *data = NULL;
    int split = NS_SPLIT_TEST;
    size_t n = 0, batch = 500;
    int threads = 0;
    ns_mode mode = NS_MODE_EVAL;
    int recal = 0;
    size_t recal_n = 10000;
    int recal_set = 0;   /* the default is clamped to the training set; a given value is not */
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            if (strcmp(optarg, "last") && ns_cli_u64("eval", "--ckpt", optarg, &step))
                return NS_EXIT_USAGE;
            break;
        case 'd': data = optarg; break;
        case 's':
            if (!strcmp(optarg, "test")) split = NS_SPLIT_TEST;
            else if (!strcmp(optarg, "train")) split = NS_SPLIT_TRAIN;
            else return ns_cli_usage_error("eval", "--split is test or train, got '%s'", optarg);
            break;
        case 'n': if (ns_cli_size("eval", "--n", optarg, &n)) return NS_EXIT_USAGE; break;
        case 'b':
            if (ns_cli_size("eval", "--batch", optarg, &batch)) return NS_EXIT_USAGE;
            if (!batch) return ns_cli_usage_error("eval", "--batch must be positive");
            break;
        case 't': if (ns_cli_threads("eval", optarg, &threads)) return NS_EXIT_USAGE; break;
        case 'm':
            if (!strcmp(optarg, "eval")) mode = NS_MODE_EVAL;
            else if (!strcmp(optarg, "batch")) mode = NS_MODE_BATCH;
            else if (!strcmp(optarg, "recal")) recal = 1;
            else return ns_cli_usage_error("eval", "--mode is eval, batch or recal, got '%s'", optarg);
            break;
        case 'q': ns_progress_set_quiet(1); break;
        case 'r':
            if (ns_cli_size("eval", "--recal-n", optarg, &recal_n)) return NS_EXIT_USAGE;
            recal_set = 1;
            break;
        case 'h': fputs(usage_text, stdout); return NS_EXIT_OK;
        default: return ns_cli_bad_option("eval", options, opt, argv);
        }
    }
    if (optind != argc - 1)
        return ns_cli_usage_error("eval", "expected one run file");
    const char *path = argv[optind];
    ns_set_threads(threads);
    ns_net *net = NULL;
    ns_dataset *d = NULL;
    ns_train_config cfg;
    uint64_t got;
    /* The whole file is checked, whichever checkpoint is evaluated. */
    int st = ns_run_check(path);
    if (!st)
        st = ns_run_load(path, step, batch, &net, &cfg, &got);
    if (st)
        return ns_cli_fail(st, NULL);
    ns_run_data rd;
    hid_t fid;
    if (!(st = ns_run_open(path, &fid, NULL, &rd)))
        ns_h5_close(fid);
    const double *mean = rd.mean, *std = rd.std;
    size_t nch = rd.c;
    if (!st) {
        if (data)
            snprintf(cfg.data, sizeof cfg.data, "%s", data);
        cfg.test_n = split == NS_SPLIT_TEST ? n : 0;
        cfg.train_n = split == NS_SPLIT_TRAIN ? n : 0;
        st = ns_train_load_data(&cfg, split, &d, NULL, NULL);
    }
    if (!st && n > d->n)
        st = ns_error(NS_EINVAL, "--n %zu is larger than the data set (%zu %s samples in '%s')",
                      n, d->n, split == NS_SPLIT_TRAIN ? "training" : "test", cfg.data);
    if (!st && (d->c != net->in_c || d->h != net->in_h || d->w != net->in_w))
        st = ns_error(NS_EINVAL, "data set '%s' has samples of %zux%zux%zu; the network takes "
                      "%zux%zux%zu", cfg.data, d->c, d->h, d->w, net->in_c, net->in_h, net->in_w);
    if (!st && d->c != nch)
        st = ns_error(NS_EFORMAT, "cannot read '%s': /data statistics have %zu channels", path, nch);
    double loss = 0, acc = 0;
    if (!st && recal) {
        ns_dataset *tr = NULL;
        ns_train_config tc = cfg;
        tc.train_n = recal_n;
        st = ns_train_load_data(&tc, NS_SPLIT_TRAIN, &tr, NULL, NULL);
        if (!st && recal_set && recal_n > tr->n)
            st = ns_error(NS_EINVAL, "--recal-n %zu is larger than the training set (%zu "
                          "samples in '%s')", recal_n, tr->n, cfg.data);
        if (!st && cfg.standardize)
            ns_data_standardize(tr, mean, std);
        if (!st)
            st = ns_recalibrate(net, tr, recal_n < tr->n ? recal_n : tr->n);
        ns_data_free(tr);
    }
    if (!st) {
        if (cfg.standardize)
            ns_data_standardize(d, mean, std);
        if (mode == NS_MODE_EVAL) {
            st = ns_evaluate(net, d, &loss, &acc);
        } else {
            /* Batch statistics: forward in NS_MODE_BATCH batch by batch. */
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
            loss = total / (double)d->n;
            acc = (double)hits / (double)d->n;
            ns_free(x);
            ns_free(y);
        }
    }
    if (!st)
        printf("%s step %llu on %s/%s (%zu samples, %s mode): accuracy %.2f%%, loss %.4f\n",
               path, (unsigned long long)got, cfg.data, split == NS_SPLIT_TEST ? "test" : "train",
               d->n, recal ? "recal" : mode == NS_MODE_EVAL ? "eval" : "batch", 100 * acc, loss);
    ns_data_free(d);
    ns_net_free(net);
    return st ? ns_cli_fail(st, NULL) : NS_EXIT_OK;
}
