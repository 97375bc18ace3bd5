/*
 * normscope ntk: empirical NTK of a run's checkpoints, its spectrum,
 * conditioning, alignment with the labels and drift over training.  Options
 * and the summary; the analysis is ns_ntk_run (include/normscope/ntk.h,
 * src/analysis/ntk.c; result layout in DESIGN.md section 3).
 */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "normscope/inputs.h"
#include "normscope/ntk.h"
#include "normscope/result.h"

static const char usage_text[] =
    "usage: normscope ntk RUN.h5 -o OUT.h5 [--data D] [--split train|test] [--n N]\n"
    "                     [--ckpt init|last|all|STEP,...] [--mode eval|batch|recal]\n"
    "                     [--kernel full|trace] [--method auto|structured|jacobian]\n"
    "                     [--mem LIMIT] [--top K] [--recal-n N] [--force] [--quiet]\n"
    "                     [--analytic] [--analytic-depth L] [--block B] [--threads T]\n"
    "\n"
    "Empirical neural tangent kernel Theta = J J^T of the logits (K outputs) with\n"
    "respect to every trainable parameter, on the first N samples of a split\n"
    "(default: the run's own data set, training split, N = 128), for each chosen\n"
    "checkpoint (default all).  Rows are sample-major: row i*K + k is sample i,\n"
    "output k; --kernel trace gives the N x N kernel sum_k Theta[(i,k),(j,k)].\n"
    "\n"
    "  --mode eval    BN with its running statistics (samples independent; default)\n"
    "  --mode batch   BN with the statistics of the N samples together: the kernel\n"
    "                 of the coupled batch function, all N samples in one pass\n"
    "  --mode recal   running statistics re-estimated on --recal-n (10000)\n"
    "                 training samples first, then eval\n"
    "  --method       structured: dense layers as (A A^T) o (D D^T); jacobian:\n"
    "                 per-sample parameter gradients of every layer; auto (default)\n"
    "                 picks per layer by FLOP count (conv and norm parameters\n"
    "                 always take the Jacobian form; batch mode takes it everywhere)\n"
    "  --mem LIMIT    memory for factors, tiles and the kernel (default 2G; K, M, G\n"
    "                 suffixes).  A kernel larger than a sixteenth of it (four\n"
    "                 copies within half: first, previous and current checkpoint\n"
    "                 and LAPACK's) is written to OUT.h5 tile by tile (chunked)\n"
    "                 and its top --top (50)\n"
    "                 eigenvalues come from ARPACK reading it back in row blocks.\n"
    "  --block B      samples per tile (default: as many as --mem allows, at most\n"
    "                 2048)\n"
    "\n"
    "Per checkpoint, /ntk/<step>/: kernel, eigenvalues (descending; all by LAPACK\n"
    "when the kernel fits in memory and has at most 12000 rows, else the top\n"
    "--top by ARPACK), layer_trace (each parameterised layer's share of the trace)\n"
    "and attributes trace, frobenius_norm, condition_number (largest/smallest\n"
    "eigenvalue; NaN when only the top ones are known), effective_rank ((trace)^2\n"
    "/ ||Theta||_F^2, the participation ratio of the spectrum: normscope's\n"
    "choice), alignment (kernel-target alignment <Theta, T>_F / (||Theta||_F\n"
    "||T||_F) with T = Y Y^T of the one-hot labels).  Across checkpoints,\n"
    "/ntk/drift: 1 - <T1,T2>_F / (||T1||_F ||T2||_F) to the first chosen\n"
    "checkpoint and to the previous one.  Gradients are those of the stored\n"
    "parameters: MimicNorm's weight-mean projection is not applied to them.\n"
    "\n"
    "--analytic (dense networks without norm layers, trained from --init\n"
    "gauss:SW2,SB2): the infinite-width NTK of one output for the same inputs,\n"
    "widths and variances (standard parametrisation, as measured; see\n"
    "`normscope meanfield`), in /ntk/analytic with its eigenvalues and its\n"
    "condition number against depth 1..L (--analytic-depth, 50) with and without\n"
    "the weight mean; each checkpoint gets output_condition_number (of the\n"
    "kernel of one output, sum_k Theta[(i,k),(j,k)] / K) and analytic_relerr\n"
    "(||that - analytic||_F / ||analytic||_F).\n";

/* The one-screen summary, printed as ns_ntk_run goes. */
static void print_summary(void *ctx, const ns_ntk_summary *s, int event)
{
    const ns_run_inputs *in = ctx;
    if (event == NS_NTK_EV_BEGIN) {
        printf("ntk of %s on %zu %s samples of %s, %s kernel (%zu x %zu), %s mode\n", in->path,
               s->n, in->opts.split == NS_SPLIT_TRAIN ? "training" : "test", in->cfg.data,
               s->trace ? "trace" : "full", s->dim, s->dim,
               ns_bn_mode_name(in->opts.mode));
    } else if (event == NS_NTK_EV_ANALYTIC) {
        printf("  analytic (%s, sw2 %g, sb2 %g%s, depth %zu): condition number %.4g; at depth %zu "
               "%.4g plain, %.4g with weight mean\n", s->act, s->sw2, s->sb2,
               s->weight_mean ? ", weight mean" : "", s->depth, s->an_cond, s->maxdepth,
               s->an_cond_plain, s->an_cond_wm);
    } else if (event == NS_NTK_EV_STEP) {
        const ns_ntk_step_summary *t = &s->steps[s->nsteps - 1];
        printf("  step %-8llu trace %.4g  cond %.4g  eff. rank %.2f  alignment %.4f  "
               "lambda_max %.4g  (%.1f s, %.1f GFLOP)\n", (unsigned long long)t->step, t->trace,
               t->cond, t->eff_rank, t->align, t->lambda_max, t->seconds, t->gflop);
    } else if (event == NS_NTK_EV_DRIFT) {
        for (size_t c = 1; c < s->nsteps; c++)
            printf("  drift step %-8llu to first %.4g, to previous %.4g\n",
                   (unsigned long long)s->steps[c].step, s->steps[c].to_init,
                   s->steps[c].to_previous);
    }
}

int cmd_ntk(int argc, char **argv)
{
    static const struct option options[] = {
        {"ckpt", required_argument, NULL, 'c'}, {"data", required_argument, NULL, 'd'},
        {"split", required_argument, NULL, 's'}, {"n", required_argument, NULL, 'n'},
        {"mode", required_argument, NULL, 'm'}, {"kernel", required_argument, NULL, 'k'},
        {"method", required_argument, NULL, 'M'}, {"mem", required_argument, NULL, 'x'},
        {"top", required_argument, NULL, 'T'}, {"recal-n", required_argument, NULL, 'r'},
        {"block", required_argument, NULL, 'b'},
        {"analytic", no_argument, NULL, 'A'}, {"analytic-depth", required_argument, NULL, 'D'},
        {"threads", required_argument, NULL, 't'}, {"quiet", no_argument, NULL, 'q'},
        {"force", no_argument, NULL, 'f'}, {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    const char *out = NULL, *mem_arg = "2G";
    int force = 0, threads = 0;
    ns_inputs_opts io;
    ns_run_inputs_defaults(&io);
    ns_ntk_run_opts ro;
    ns_ntk_run_defaults(&ro);
    ns_ntk_opts *o = &ro.ntk;
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
            else return ns_cli_usage_error("ntk", "--split is train or test, got '%s'", optarg);
            break;
        case 'n':
            if (ns_cli_size("ntk", "--n", optarg, &io.n)) return NS_EXIT_USAGE;
            if (!io.n) return ns_cli_usage_error("ntk", "--n must be positive");
            break;
        case 'm':
            if (!strcmp(optarg, "eval")) io.mode = NS_BN_EVAL;
            else if (!strcmp(optarg, "batch")) io.mode = NS_BN_BATCH;
            else if (!strcmp(optarg, "recal")) io.mode = NS_BN_RECAL;
            else return ns_cli_usage_error("ntk", "--mode is eval, batch or recal, got '%s'", optarg);
            break;
        case 'k':
            if (!strcmp(optarg, "full")) o->trace = 0;
            else if (!strcmp(optarg, "trace")) o->trace = 1;
            else return ns_cli_usage_error("ntk", "--kernel is full or trace, got '%s'", optarg);
            break;
        case 'M':
            if (!strcmp(optarg, "auto")) o->method = NS_NTK_AUTO;
            else if (!strcmp(optarg, "structured")) o->method = NS_NTK_STRUCTURED;
            else if (!strcmp(optarg, "jacobian")) o->method = NS_NTK_JACOBIAN;
            else return ns_cli_usage_error("ntk", "--method is auto, structured or jacobian, "
                                           "got '%s'", optarg);
            break;
        case 'x':
            if (ns_cli_mem("ntk", "--mem", optarg, &o->mem)) return NS_EXIT_USAGE;
            mem_arg = optarg;
            break;
        case 'T':
            if (ns_cli_size("ntk", "--top", optarg, &ro.top)) return NS_EXIT_USAGE;
            if (!ro.top) return ns_cli_usage_error("ntk", "--top must be positive");
            break;
        case 'r': if (ns_cli_size("ntk", "--recal-n", optarg, &io.recal_n)) return NS_EXIT_USAGE; break;
        case 'b': if (ns_cli_size("ntk", "--block", optarg, &o->block)) return NS_EXIT_USAGE; break;
        case 'A': ro.analytic = 1; break;
        case 'D':
            if (ns_cli_size("ntk", "--analytic-depth", optarg, &ro.analytic_depth)) return NS_EXIT_USAGE;
            if (ro.analytic_depth < 1 || ro.analytic_depth > 1000)
                return ns_cli_usage_error("ntk", "--analytic-depth is between 1 and 1000");
            break;
        case 't': if (ns_cli_threads("ntk", optarg, &threads)) return NS_EXIT_USAGE; break;
        case 'q': ns_progress_set_quiet(1); break;
        case 'f': force = 1; break;
        case 'o': out = optarg; break;
        case 'h': fputs(usage_text, stdout); return NS_EXIT_OK;
        default: return ns_cli_bad_option("ntk", options, opt, argv);
        }
    }
    if (optind != argc - 1)
        return ns_cli_usage_error("ntk", "expected one run file");
    if (!out)
        return ns_cli_usage_error("ntk", "no output file given (use -o OUT.h5)");
    const char *path = argv[optind];
    ns_set_threads(threads);

    /* The run, its checkpoints and samples; the checks that need no kernel. */
    int usage = 0;
    ns_run_inputs in;
    io.max_batch = ns_ntk_max_batch(io.mode == NS_BN_BATCH, io.n);
    int st = ns_run_inputs_open(&in, path, &io, &usage);
    if (st)
        return usage ? ns_cli_usage_error("ntk", "%s", ns_errmsg()) : ns_cli_fail(st, NULL);
    size_t need = 0;
    st = ns_ntk_check(&ro, &in, &need);
    if (!st && (need > o->mem || !o->mem)) {
        char least[32];
        ns_cli_bytes_up(need, least, sizeof least);
        st = ns_error(NS_EINVAL, "--mem %s: too small for one block of the NTK (at least %s)",
                      mem_arg, least);
    }
    /* The analysis, into a result file that names neither input. */
    ns_result *res = NULL;
    ns_ntk_summary sum = {0};
    if (!st) {
        const char *inputs[2] = {path, in.cfg.data};
        st = ns_result_create(&res, out, force, ns_cli_cmdline(), inputs, 2);
    }
    ro.cmdline = ns_cli_cmdline();
    ro.report = print_summary;
    ro.report_ctx = &in;
    if (!st)
        st = ns_ntk_run(&ro, &in, res, &sum);
    if (!st) {
        st = ns_result_commit(res);
        res = NULL;
    }
    if (!st)
        printf("wrote %s\n", out);
    ns_result_free(res);
    ns_ntk_summary_free(&sum);
    ns_run_inputs_free(&in);
    return st ? ns_cli_fail(st, NULL) : NS_EXIT_OK;
}
