/*
 * normscope ntk: empirical NTK of a run's checkpoints, its spectrum,
 * conditioning, alignment with the labels and drift over training
 * (include/normscope/ntk.h; result layout in DESIGN.md section 3).
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "normscope/io.h"
#include "normscope/meanfield.h"
#include "normscope/ntk.h"
#include "normscope/train.h"

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

typedef struct kern {
    uint64_t step;
    int in_mem;
    double *k;          /* in memory: dim x dim */
    char path[96];      /* data set in the output file */
    double frob;
} kern;

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

/* A byte count as "N KiB", "N MiB" or "N.N GiB", rounded up. */
static void fmt_bytes_up(size_t b, char *buf, size_t len)
{
    const double K = 1024.0, M = K * K, G = M * K;
    if (b < M)
        snprintf(buf, len, "%.0f KiB", ceil((double)b / K));
    else if (b < G)
        snprintf(buf, len, "%.0f MiB", ceil((double)b / M));
    else
        snprintf(buf, len, "%.1f GiB", ceil((double)b / G * 10) / 10);
}

/* Products with a kernel on disk, with a progress line every 10. */
typedef struct counted {
    ns_h5_matvec *m;
    size_t count;
    double t0;
    uint64_t step;
} counted;

static int counted_matvec(void *ctx, const double *x, double *y)
{
    counted *c = ctx;
    int st = ns_matvec_h5(c->m, x, y);
    if (++c->count % 10 == 0)
        ns_note("ntk step %llu: ARPACK, %zu kernel products in %.0f s",
                (unsigned long long)c->step, c->count, ns_time() - c->t0);
    return st;
}

/* Reads rows [r0, r0 + nr) of a kernel into buf. */
static int kern_rows(hid_t fid, const kern *k, size_t dim, size_t r0, size_t nr, double *buf)
{
    if (k->in_mem) {
        memcpy(buf, k->k + r0 * dim, nr * dim * sizeof *buf);
        return NS_OK;
    }
    hid_t d = H5Dopen2(fid, k->path, H5P_DEFAULT);
    hid_t fs = d < 0 ? -1 : H5Dget_space(d);
    hsize_t off[2] = {r0, 0}, cnt[2] = {nr, dim};
    hid_t ms = H5Screate_simple(2, cnt, NULL);
    herr_t e = d < 0 || fs < 0 || ms < 0 ? -1
               : H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL);
    if (e >= 0)
        e = H5Dread(d, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, buf);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    if (d >= 0) H5Dclose(d);
    return e < 0 ? ns_error(NS_EIO, "cannot read kernel %s", k->path) : NS_OK;
}

/* 1 - <A,B>_F / (||A|| ||B||), reading both in row blocks. */
static int drift(hid_t fid, const kern *a, const kern *b, size_t dim, size_t mem, double *out)
{
    size_t rows = mem / 4 / (2 * dim * sizeof(double));
    rows = rows < 1 ? 1 : rows > dim ? dim : rows;
    double *ba = malloc(rows * dim * sizeof *ba), *bb = malloc(rows * dim * sizeof *bb);
    int st = !ba || !bb ? ns_error(NS_ENOMEM, "out of memory comparing kernels") : NS_OK;
    double dot = 0;
    for (size_t r0 = 0; r0 < dim && !st; r0 += rows) {
        size_t nr = dim - r0 < rows ? dim - r0 : rows;
        if ((st = kern_rows(fid, a, dim, r0, nr, ba)) || (st = kern_rows(fid, b, dim, r0, nr, bb)))
            break;
        for (size_t q = 0; q < nr * dim; q++)
            dot += ba[q] * bb[q];
    }
    free(ba);
    free(bb);
    *out = a->frob > 0 && b->frob > 0 ? 1 - dot / (a->frob * b->frob) : NAN;
    return st;
}

static int write_layer_info(hid_t fid, const char *g, const ns_net *net, const ns_ntk_stats *s)
{
    size_t nl = 0;
    for (size_t i = 0; i < net->nlayers; i++)
        nl += s->layer_method[i] != 0;
    double *t = malloc((nl ? nl : 1) * sizeof *t);
    char *names = calloc(nl ? nl : 1, 40), *methods = calloc(nl + 1, 1);
    int st = !t || !names || !methods ? ns_error(NS_ENOMEM, "out of memory") : NS_OK;
    size_t j = 0, len = 0;
    for (size_t i = 0; !st && i < net->nlayers; i++) {
        if (!s->layer_method[i])
            continue;
        t[j] = s->layer_trace[i];
        methods[j] = s->layer_method[i];
        len += (size_t)snprintf(names + len, 40, "%s%s", j ? "," : "", net->layers[i].name);
        j++;
    }
    char path[256];
    snprintf(path, sizeof path, "%s/layer_trace", g);
    size_t dims[1] = {nl};
    if (!st) st = ns_h5_write_double(fid, path, 1, dims, t);
    if (!st) st = ns_h5_describe(fid, path, "each parameterised layer's share of the kernel's "
                                 "trace, in the order of the attribute layers", NULL);
    if (!st) st = ns_h5_attr_str(fid, path, "layers", names);
    if (!st) st = ns_h5_attr_str(fid, path, "methods", methods);
    free(t);
    free(names);
    free(methods);
    return st;
}

/* The analytic counterpart of a dense network (see --analytic). */
typedef struct analytic {
    int on;
    size_t depth, maxdepth, *widths;
    ns_mf_net mn;
    double *kernel;          /* n x n, one output */
} analytic;

static int analytic_setup(analytic *a, const ns_net *net, const ns_train_config *cfg,
                          const char *path)
{
    if (cfg->init.kind != NS_INIT_GAUSS)
        return ns_error(NS_EINVAL, "--analytic needs a run trained from --init gauss:SW2,SB2 "
                        "('%s' used another initialisation)", path);
    const char *act = NULL;
    int wm = -1;
    a->depth = 0;
    a->widths = calloc(net->nlayers + 1, sizeof *a->widths);
    if (!a->widths)
        return NS_ENOMEM;
    a->widths[0] = net->in_c * net->in_h * net->in_w;
    for (size_t i = 0; i < net->nlayers; i++) {
        const ns_layer *L = &net->layers[i];
        const char *k = L->ops->kind;
        if (!strcmp(k, "dense")) {
            if (L->wrule)
                return ns_error(NS_EINVAL, "--analytic: layer '%s' reparametrises its weight",
                                L->name);
            if (a->depth > 0) {
                int lw = L->weight_mean != 0;
                if (wm >= 0 && lw != wm)
                    return ns_error(NS_EINVAL, "--analytic: the weight mean projects some hidden "
                                    "layers and not others");
                wm = lw;
            }
            a->widths[++a->depth] = L->out_c;
            continue;
        }
        if (!strcmp(k, "relu") || !strcmp(k, "tanh") || !strcmp(k, "erf") || !strcmp(k, "id")) {
            if (act && strcmp(act, k))
                return ns_error(NS_EINVAL, "--analytic needs one activation (found %s and %s)",
                                act, k);
            act = k;
            continue;
        }
        return ns_error(NS_EINVAL, "--analytic needs a network of dense layers and activations; "
                        "'%s' has layer %s (norm %s)", path, L->name, cfg->net.norm);
    }
    if (!act || a->depth < 2)
        return ns_error(NS_EINVAL, "--analytic needs at least one hidden dense layer and an "
                        "activation");
    memset(&a->mn, 0, sizeof a->mn);
    if (ns_mf_act_parse(!strcmp(act, "id") ? "linear" : act, &a->mn.act))
        return NS_EINVAL;
    a->mn.sw2 = cfg->init.sw2;
    a->mn.sb2 = cfg->init.sb2;
    a->mn.weight_mean = wm > 0;
    return ns_mf_net_check(&a->mn);
}

/* /ntk/analytic: the kernel for the inputs, its spectrum, cond vs depth. */
static int analytic_write(analytic *a, hid_t fid, const ns_real *x, size_t n, size_t din)
{
    double *G = malloc(n * n * sizeof *G);
    a->kernel = malloc(n * n * sizeof *a->kernel);
    double *ev = malloc(n * sizeof *ev), *cp = malloc(n * n * sizeof *cp);
    size_t L = a->maxdepth;
    double *c0 = malloc(L * sizeof *c0), *c1 = malloc(L * sizeof *c1), *dd = malloc(L * sizeof *dd);
    size_t *wl = malloc((L + 1) * sizeof *wl);
    ns_mf_work *w = ns_mf_work_alloc(1e-10);
    int st = !G || !a->kernel || !ev || !cp || !c0 || !c1 || !dd || !wl || !w
                 ? ns_error(NS_ENOMEM, "out of memory for the analytic kernel") : NS_OK;
    for (size_t i = 0; !st && i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t q = 0; q < din; q++)
                s += (double)x[i * din + q] * (double)x[j * din + q];
            G[i * n + j] = s / (double)din;
        }
    unsigned flags = a->mn.weight_mean ? NS_MF_WM_HIDDEN : 0;
    ns_mf_net mn = a->mn;
    mn.weight_mean = (int)flags;
    if (!st)
        st = ns_mf_kernel(w, &mn, a->depth, G, n, a->widths, NULL, a->kernel);
    size_t dims2[2] = {n, n}, d1[1] = {n}, dl[1] = {L};
    if (!st) st = ns_h5_write_double(fid, "/ntk/analytic/kernel", 2, dims2, a->kernel);
    if (!st) st = ns_h5_describe(fid, "/ntk/analytic/kernel", "infinite-width NTK of one output "
                                 "(standard parametrisation, the run's widths and variances)", NULL);
    if (!st) {
        memcpy(cp, a->kernel, n * n * sizeof *cp);
        st = ns_eig_sym(cp, n, ev);
    }
    if (!st) st = ns_h5_write_double(fid, "/ntk/analytic/eigenvalues", 1, d1, ev);
    if (!st) st = ns_h5_describe(fid, "/ntk/analytic/eigenvalues", "eigenvalues of the analytic "
                                 "kernel, descending", NULL);
    char an[32];
    ns_mf_act_name(&a->mn.act, an, sizeof an);
    if (!st) st = ns_h5_attr_double(fid, "/ntk/analytic", "condition_number",
                                    ev[n - 1] > 0 ? ev[0] / ev[n - 1] : INFINITY);
    if (!st) st = ns_h5_attr_int(fid, "/ntk/analytic", "depth", (int64_t)a->depth);
    if (!st) st = ns_h5_attr_double(fid, "/ntk/analytic", "sw2", a->mn.sw2);
    if (!st) st = ns_h5_attr_double(fid, "/ntk/analytic", "sb2", a->mn.sb2);
    if (!st) st = ns_h5_attr_int(fid, "/ntk/analytic", "weight_mean", a->mn.weight_mean);
    if (!st) st = ns_h5_attr_str(fid, "/ntk/analytic", "activation", an);
    /* cond against depth: hidden layers as wide as the first */
    for (size_t l = 0; !st && l <= L; l++)
        wl[l] = l == 0 ? a->widths[0] : a->widths[1];
    for (size_t l = 0; l < L; l++)
        dd[l] = (double)(l + 1);
    ns_mf_net plain = a->mn, wmn = a->mn;
    plain.weight_mean = 0;
    wmn.weight_mean = NS_MF_WM_HIDDEN;
    if (!st) st = ns_mf_ntk_cond(w, &plain, L, G, n, wl, c0);
    if (!st) st = ns_mf_ntk_cond(w, &wmn, L, G, n, wl, c1);
    if (!st) st = ns_h5_write_double(fid, "/ntk/analytic/depth/depth", 1, dl, dd);
    if (!st) st = ns_h5_describe(fid, "/ntk/analytic/depth/depth", "number of dense layers", NULL);
    if (!st) st = ns_h5_write_double(fid, "/ntk/analytic/depth/condition_number", 1, dl, c0);
    if (!st) st = ns_h5_describe(fid, "/ntk/analytic/depth/condition_number", "condition number "
                                 "of the analytic NTK of these inputs, plain network", NULL);
    if (!st) st = ns_h5_write_double(fid, "/ntk/analytic/depth/condition_number_wm", 1, dl, c1);
    if (!st) st = ns_h5_describe(fid, "/ntk/analytic/depth/condition_number_wm", "the same with "
                                 "MimicNorm's weight mean on the hidden layers", NULL);
    if (!st)
        printf("  analytic (%s, sw2 %g, sb2 %g%s, depth %zu): condition number %.4g; at depth %zu "
               "%.4g plain, %.4g with weight mean\n", an, a->mn.sw2, a->mn.sb2,
               a->mn.weight_mean ? ", weight mean" : "", a->depth,
               ev[n - 1] > 0 ? ev[0] / ev[n - 1] : INFINITY, L, c0[L - 1], c1[L - 1]);
    ns_mf_work_free(w);
    free(G);
    free(ev);
    free(cp);
    free(c0);
    free(c1);
    free(dd);
    free(wl);
    return st;
}

/* Per checkpoint: the kernel of one output (in memory) against the analytic. */
static int analytic_compare(const analytic *a, hid_t fid, const char *g, const double *k,
                            size_t n, size_t K, int trace)
{
    size_t dim = trace ? n : n * K;
    double *e = malloc(n * n * sizeof *e), *ev = malloc(n * sizeof *ev);
    if (!e || !ev) {
        free(e);
        free(ev);
        return ns_error(NS_ENOMEM, "out of memory");
    }
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            if (trace)
                s = k[i * dim + j];
            else
                for (size_t c = 0; c < K; c++)
                    s += k[(i * K + c) * dim + j * K + c];
            e[i * n + j] = s / (double)K;
            num += pow(e[i * n + j] - a->kernel[i * n + j], 2);
            den += a->kernel[i * n + j] * a->kernel[i * n + j];
        }
    int st = ns_eig_sym(e, n, ev);
    if (!st) st = ns_h5_attr_double(fid, g, "output_condition_number",
                                    ev[n - 1] > 0 ? ev[0] / ev[n - 1] : INFINITY);
    if (!st) st = ns_h5_attr_double(fid, g, "analytic_relerr", sqrt(num / den));
    if (!st) st = ns_h5_attr_int(fid, g, "depth", (int64_t)a->depth);
    free(e);
    free(ev);
    return st;
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
    const char *data = NULL, *out = NULL, *ckpt = "all", *mem_arg = "2G";
    int split = NS_SPLIT_TRAIN, force = 0, recal = 0;
    size_t n = 128, top = 50, recal_n = 10000, block = 0;
    int threads = 0;
    ns_ntk_opts o = {.mode = NS_MODE_EVAL, .mem = (size_t)2 << 30};
    analytic an = {.maxdepth = 50};
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":ho:", options, NULL)) != -1) {
        switch (opt) {
        case 'c': ckpt = optarg; break;
        case 'd': data = optarg; break;
        case 's':
            if (!strcmp(optarg, "test")) split = NS_SPLIT_TEST;
            else if (!strcmp(optarg, "train")) split = NS_SPLIT_TRAIN;
            else return ns_cli_usage_error("ntk", "--split is train or test, got '%s'", optarg);
            break;
        case 'n':
            if (ns_cli_size("ntk", "--n", optarg, &n)) return NS_EXIT_USAGE;
            if (!n) return ns_cli_usage_error("ntk", "--n must be positive");
            break;
        case 'm':
            if (!strcmp(optarg, "eval")) o.mode = NS_MODE_EVAL;
            else if (!strcmp(optarg, "batch")) o.mode = NS_MODE_BATCH;
            else if (!strcmp(optarg, "recal")) recal = 1;
            else return ns_cli_usage_error("ntk", "--mode is eval, batch or recal, got '%s'", optarg);
            break;
        case 'k':
            if (!strcmp(optarg, "full")) o.trace = 0;
            else if (!strcmp(optarg, "trace")) o.trace = 1;
            else return ns_cli_usage_error("ntk", "--kernel is full or trace, got '%s'", optarg);
            break;
        case 'M':
            if (!strcmp(optarg, "auto")) o.method = NS_NTK_AUTO;
            else if (!strcmp(optarg, "structured")) o.method = NS_NTK_STRUCTURED;
            else if (!strcmp(optarg, "jacobian")) o.method = NS_NTK_JACOBIAN;
            else return ns_cli_usage_error("ntk", "--method is auto, structured or jacobian, "
                                           "got '%s'", optarg);
            break;
        case 'x':
            if (parse_mem(optarg, &o.mem))
                return ns_cli_usage_error("ntk", "--mem expects a size such as 512M or 2G, "
                                          "got '%s'", optarg);
            mem_arg = optarg;
            break;
        case 'T':
            if (ns_cli_size("ntk", "--top", optarg, &top)) return NS_EXIT_USAGE;
            if (!top) return ns_cli_usage_error("ntk", "--top must be positive");
            break;
        case 'r': if (ns_cli_size("ntk", "--recal-n", optarg, &recal_n)) return NS_EXIT_USAGE; break;
        case 'b': if (ns_cli_size("ntk", "--block", optarg, &block)) return NS_EXIT_USAGE; break;
        case 'A': an.on = 1; break;
        case 'D':
            if (ns_cli_size("ntk", "--analytic-depth", optarg, &an.maxdepth)) return NS_EXIT_USAGE;
            if (an.maxdepth < 1 || an.maxdepth > 1000)
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
    o.block = block;
    ns_set_threads(threads);

    /* The run file and its checkpoints. */
    hid_t rf;
    ns_run_data rd;
    /* The whole file is checked, whichever checkpoints are analysed. */
    int st = ns_run_check(path);
    if (!st)
        st = ns_run_open(path, &rf, NULL, &rd);
    if (st)
        return ns_cli_fail(st, NULL);
    uint64_t *have = NULL, *steps = NULL;
    size_t nhave = 0, nsteps = 0;
    const double *mean = rd.mean, *sd = rd.std;
    size_t nch = rd.c;
    st = ns_run_checkpoints(rf, &have, &nhave);
    ns_h5_close(rf);
    if (!st && !nhave)
        st = ns_error(NS_EFORMAT, "'%s' has no checkpoints", path);
    if (!st && !(steps = ns_malloc((nhave + 64) * sizeof *steps)))
        st = NS_ENOMEM;
    if (!st) {
        if (!strcmp(ckpt, "all")) {
            memcpy(steps, have, nhave * sizeof *steps);
            nsteps = nhave;
        } else if (!strcmp(ckpt, "init")) {
            steps[nsteps++] = have[0];
        } else if (!strcmp(ckpt, "last")) {
            steps[nsteps++] = have[nhave - 1];
        } else {
            char *copy = ns_cli_list_ok(ckpt) ? strdup(ckpt) : NULL, *save = NULL;
            for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t && !st;
                 t = strtok_r(NULL, ",", &save)) {
                uint64_t v;
                if (ns_cli_parse_u64(t, &v) || nsteps >= 64) {
                    free(copy);
                    ns_free(steps);
                    ns_free(have);
                    return ns_cli_usage_error("ntk", "--ckpt takes init, last, all or a list of "
                                              "at most 64 steps, got '%s'", ckpt);
                }
                size_t j = 0;
                while (j < nhave && have[j] != v)
                    j++;
                if (j == nhave) {
                    char list[256];
                    size_t u = 0;
                    for (size_t q = 0; q < nhave && u < sizeof list - 24; q++)
                        u += (size_t)snprintf(list + u, sizeof list - u, "%s%llu", q ? ", " : "",
                                              (unsigned long long)have[q]);
                    st = ns_error(NS_EINVAL, "no checkpoint at step %llu in '%s' (it has %s)",
                                  (unsigned long long)v, path, list);
                }
                for (size_t q = 0; !st && q < nsteps; q++)
                    if (steps[q] == v)
                        st = ns_error(NS_EINVAL, "--ckpt names step %llu twice",
                                      (unsigned long long)v);
                steps[nsteps++] = v;
            }
            free(copy);
            if (!nsteps) {
                ns_free(steps);
                ns_free(have);
                return ns_cli_usage_error("ntk", "--ckpt takes init, last, all or a list of "
                                          "at most 64 steps, got '%s'", ckpt);
            }
        }
    }
    ns_free(have);

    /* Configuration, data and the first network. */
    ns_train_config cfg;
    ns_net *net = NULL;
    ns_dataset *d = NULL;
    uint64_t got;
    size_t mb = o.mode == NS_MODE_BATCH ? n : 256;
    if (!st)
        st = ns_run_load(path, steps[0], mb, &net, &cfg, &got);
    if (!st) {
        if (data)
            snprintf(cfg.data, sizeof cfg.data, "%s", data);
        /* only the first n samples are used */
        cfg.train_n = split == NS_SPLIT_TRAIN ? n : 0;
        cfg.test_n = split == NS_SPLIT_TEST ? n : 0;
        st = ns_train_load_data(&cfg, split, &d, NULL, NULL);
    }
    if (!st && (d->c != net->in_c || d->h != net->in_h || d->w != net->in_w))
        st = ns_error(NS_EINVAL, "data set '%s' has samples of %zux%zux%zu; the network takes "
                      "%zux%zux%zu", cfg.data, d->c, d->h, d->w, net->in_c, net->in_h, net->in_w);
    if (!st && d->c != nch)
        st = ns_error(NS_EFORMAT, "cannot read '%s': /data statistics have %zu channels", path, nch);
    if (!st && n > d->n)
        st = ns_error(NS_EINVAL, "--n %zu is larger than the data set (%zu %s samples in '%s')",
                      n, d->n, split == NS_SPLIT_TRAIN ? "training" : "test", cfg.data);
    if (!st && o.mode == NS_MODE_BATCH && !ns_ntk_has_batch_stats(net))
        st = ns_error(NS_EINVAL, "--mode batch needs a layer with batch statistics; the network "
                      "of '%s' (norm %s) has none", path, cfg.net.norm);
    if (!st && an.on)
        st = analytic_setup(&an, net, &cfg, path);
    if (!st && cfg.standardize)
        ns_data_standardize(d, mean, sd);
    ns_dataset *cal = NULL;
    if (!st && recal) {
        ns_train_config tc = cfg;
        tc.train_n = recal_n;
        st = ns_train_load_data(&tc, NS_SPLIT_TRAIN, &cal, NULL, NULL);
        if (!st && cfg.standardize)
            ns_data_standardize(cal, mean, sd);
    }
    size_t K = net ? net->nout : 0, dim = o.trace ? n : n * K;
    size_t in = d ? ns_data_dim(d) : 0;
    ns_real *x = NULL;
    int32_t *y = NULL;
    size_t *idx = NULL;
    if (!st) {
        x = ns_malloc(n * in * sizeof *x);
        y = ns_malloc(n * sizeof *y);
        idx = ns_malloc(n * sizeof *idx);
        if (!x || !y || !idx)
            st = ns_error(NS_ENOMEM, "out of memory for %zu samples", n);
    }
    if (!st) {
        for (size_t i = 0; i < n; i++)
            idx[i] = i;
        ns_data_gather(d, idx, n, x, y);
    }
    /* Kernels in memory: the first, the previous, the current and an eigen
     * copy, within half the budget. */
    int in_mem = (double)dim * (double)dim * 8 * 4 <= (double)o.mem / 2;
    /* Check that one block fits before anything is written (the smallest
     * block ns_ntk_compute would take; --mem 0 would mean its default). */
    if (!st) {
        size_t bs = o.mode == NS_MODE_BATCH ? n : o.block ? o.block : 1;
        size_t need = ns_ntk_block_bytes(net, &o, bs < n ? bs : n);
        char least[32];
        fmt_bytes_up(need, least, sizeof least);
        if (need > o.mem || !o.mem)
            st = ns_error(NS_EINVAL, "--mem %s: too small for one block of the NTK (at least "
                          "%s)", mem_arg, least);
    }

    ns_h5out ho = {.fid = -1};
    if (!st) {
        /* The run file, and the data set file when the samples come from one. */
        const char *inputs[2] = {path, cfg.data};
        st = ns_out_names_input(out, inputs, 2);
    }
    if (!st)
        st = ns_h5out_create(&ho, out, force);
    if (!st) st = ns_result_file_attrs(ho.fid, ns_cli_cmdline());
    if (!st) st = ns_h5_group(ho.fid, "/ntk");
    if (!st) st = ns_result_group_attrs(ho.fid, "/ntk", ns_cli_cmdline(), path,
                                        recal ? "recal" : o.mode == NS_MODE_BATCH ? "batch" : "eval",
                                        cfg.seed);
    if (!st) {
        int64_t *ii = ns_malloc(n * sizeof *ii);
        for (size_t i = 0; ii && i < n; i++)
            ii[i] = (int64_t)i;
        size_t dims[1] = {n};
        st = ii ? ns_h5_write_int(ho.fid, "/ntk/indices", 1, dims, ii) : NS_ENOMEM;
        if (!st) st = ns_h5_describe(ho.fid, "/ntk/indices", "data-set indices of the samples "
                                     "(rows of the kernel, in order)", NULL);
        if (!st) st = ns_h5_attr_str(ho.fid, "/ntk/indices", "split",
                                     split == NS_SPLIT_TRAIN ? "train" : "test");
        ns_free(ii);
    }
    if (!st) st = ns_h5_attr_str(ho.fid, "/ntk", "kernel", o.trace ? "trace" : "full");
    if (!st) st = ns_h5_attr_str(ho.fid, "/ntk", "method",
                                 o.method == NS_NTK_AUTO ? "auto" :
                                 o.method == NS_NTK_STRUCTURED ? "structured" : "jacobian");
    if (!st) st = ns_h5_attr_int(ho.fid, "/ntk", "n", (int64_t)n);
    if (!st) st = ns_h5_attr_int(ho.fid, "/ntk", "outputs", (int64_t)K);
    if (!st) st = ns_h5_attr_str(ho.fid, "/ntk", "data", cfg.data);
    if (!st) st = ns_h5_attr_str(ho.fid, "/ntk", "norm", cfg.net.norm);
    if (!st) st = ns_h5_attr_str(ho.fid, "/ntk", "arch", cfg.arch);

    if (!st && an.on && !in_mem)
        st = ns_error(NS_EINVAL, "--analytic compares kernels in memory; this one (%zu x %zu) "
                      "exceeds --mem", dim, dim);
    kern *ks = calloc(nsteps ? nsteps : 1, sizeof *ks);
    double *to_init = calloc(nsteps ? nsteps : 1, sizeof *to_init);
    double *to_prev = calloc(nsteps ? nsteps : 1, sizeof *to_prev);
    if (!st && (!ks || !to_init || !to_prev))
        st = NS_ENOMEM;
    if (!st)
        printf("ntk of %s on %zu %s samples of %s, %s kernel (%zu x %zu), %s mode\n", path, n,
               split == NS_SPLIT_TRAIN ? "training" : "test", cfg.data, o.trace ? "trace" : "full",
               dim, dim, recal ? "recal" : o.mode == NS_MODE_BATCH ? "batch" : "eval");
    if (!st && an.on)
        st = analytic_write(&an, ho.fid, x, n, in);
    for (size_t c = 0; c < nsteps && !st; c++) {
        if (c > 0) {
            ns_net_free(net);
            net = NULL;
            if ((st = ns_run_load(path, steps[c], mb, &net, &cfg, &got)))
                break;
        }
        if (recal && (st = ns_recalibrate(net, cal, recal_n)))
            break;
        char g[64], label[48];
        snprintf(g, sizeof g, "/ntk/%llu", (unsigned long long)steps[c]);
        snprintf(label, sizeof label, "ntk step %llu", (unsigned long long)steps[c]);
        o.label = label;
        kern *k = &ks[c];
        k->step = steps[c];
        k->in_mem = in_mem;
        snprintf(k->path, sizeof k->path, "%s/kernel", g);
        if ((st = ns_h5_group(ho.fid, g)))
            break;
        ns_ntk_stats s;
        ns_ntk_memsink ms = {0};
        ns_ntk_h5sink hs = {0};
        ns_ntk_sink sink;
        hid_t dset = -1;
        if (in_mem) {
            ms.dim = dim;
            ms.k = k->k = malloc(dim * dim * sizeof *ms.k);
            if (!ms.k) {
                st = ns_error(NS_ENOMEM, "out of memory for a %zu x %zu kernel", dim, dim);
                break;
            }
            sink = (ns_ntk_sink){ns_ntk_memsink_put, &ms};
        } else {
            hsize_t hd[2] = {dim, dim}, ch[2] = {dim < 1024 ? dim : 1024, dim < 1024 ? dim : 1024};
            hid_t sp = H5Screate_simple(2, hd, NULL), pl = H5Pcreate(H5P_DATASET_CREATE);
            hs.type = sizeof(ns_real) == 4 ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE;
            if (sp >= 0 && pl >= 0 && H5Pset_chunk(pl, 2, ch) >= 0)
                dset = H5Dcreate2(ho.fid, k->path, hs.type, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
            char what[160];
            snprintf(what, sizeof what, "data set '%s'", k->path);
            if (dset < 0)
                st = ns_h5_write_failed(ho.fid, what);
            if (sp >= 0) H5Sclose(sp);
            if (pl >= 0) H5Pclose(pl);
            if (st)
                break;
            hs.dset = dset;
            sink = (ns_ntk_sink){ns_ntk_h5sink_put, &hs};
        }
        st = ns_ntk_compute(net, x, y, n, &o, &sink, &s);
        ns_ntk_h5sink_free(&hs);
        /* Tiles still in HDF5's chunk cache are written now, so a full disk
         * shows as a failed write rather than as a failed read-back. */
        if (!st && dset >= 0 && H5Dflush(dset) < 0) {
            char what[160];
            snprintf(what, sizeof what, "data set '%s'", k->path);
            st = ns_h5_write_failed(dset, what);
        }
        if (dset >= 0)
            H5Dclose(dset);
        if (st)
            break;
        k->frob = sqrt(s.frob2);
        size_t dims2[2] = {dim, dim};
        if (in_mem && (st = ns_h5_write_double(ho.fid, k->path, 2, dims2, k->k)))
            break;
        if ((st = ns_h5_describe(ho.fid, k->path, o.trace ? "trace NTK sum_k Theta[(i,k),(j,k)]"
                                 : "NTK, row i*K + k = sample i, output k", NULL)))
            break;
        /* Spectrum. */
        double *ev = NULL;
        size_t nev = 0, nmv = 0;
        double t_eig = ns_time();
        if (in_mem && dim <= 12000) {
            double *a = malloc(dim * dim * sizeof *a);
            ev = malloc(dim * sizeof *ev);
            if (!a || !ev) {
                free(a);
                st = ns_error(NS_ENOMEM, "out of memory for the eigenvalues");
            } else {
                memcpy(a, k->k, dim * dim * sizeof *a);
                st = ns_eig_sym(a, dim, ev);
                nev = dim;
            }
            free(a);
        } else {
            nev = top < dim ? top : dim - 1;
            ev = malloc(nev * sizeof *ev);
            if (!ev) {
                st = NS_ENOMEM;
            } else if (in_mem) {
                ns_sym_matrix mm = {k->k, dim};
                st = ns_eig_arpack(ns_matvec_mem, &mm, dim, nev, 1, 1e-10, ev, &nmv);
            } else {
                hid_t dd = H5Dopen2(ho.fid, k->path, H5P_DEFAULT);
                ns_h5_matvec hm = {0};
                st = dd < 0 ? ns_error(NS_EIO, "cannot reopen %s", k->path)
                            : ns_h5_matvec_init(&hm, dd, dim, o.mem / 8);
                hm.upper = 1;   /* symmetric: half the reads */
                counted cm = {&hm, 0, ns_time(), steps[c]};
                if (!st)
                    st = ns_eig_arpack(counted_matvec, &cm, dim, nev, 1, 1e-8, ev, &nmv);
                ns_h5_matvec_free(&hm);
                if (dd >= 0)
                    H5Dclose(dd);
            }
        }
        t_eig = ns_time() - t_eig;
        double cond = NAN;
        if (!st && nev == dim)
            cond = ev[dim - 1] > 0 ? ev[0] / ev[dim - 1] : INFINITY;
        char ep[96];
        snprintf(ep, sizeof ep, "%s/eigenvalues", g);
        size_t de[1] = {nev};
        if (!st) st = ns_h5_write_double(ho.fid, ep, 1, de, ev);
        if (!st) st = ns_h5_describe(ho.fid, ep, nev == dim ? "all eigenvalues, descending (LAPACK "
                                     "dsyevd)" : "the largest eigenvalues, descending (ARPACK)", NULL);
        double eff = s.frob2 > 0 ? s.trace * s.trace / s.frob2 : NAN;
        if (!st) st = write_layer_info(ho.fid, g, net, &s);
        if (!st && an.on)
            st = analytic_compare(&an, ho.fid, g, k->k, n, K, o.trace);
        if (!st) st = ns_h5_attr_int(ho.fid, g, "step", (int64_t)steps[c]);
        if (!st) st = ns_h5_attr_double(ho.fid, g, "trace", s.trace);
        if (!st) st = ns_h5_attr_double(ho.fid, g, "frobenius_norm", k->frob);
        if (!st) st = ns_h5_attr_double(ho.fid, g, "condition_number", cond);
        if (!st) st = ns_h5_attr_double(ho.fid, g, "effective_rank", eff);
        if (!st) st = ns_h5_attr_double(ho.fid, g, "alignment", s.align);
        if (!st) st = ns_h5_attr_double(ho.fid, g, "seconds", s.seconds);
        if (!st) st = ns_h5_attr_double(ho.fid, g, "eig_seconds", t_eig);
        if (!st) st = ns_h5_attr_double(ho.fid, g, "gflop", s.gflop);
        if (!st) st = ns_h5_attr_int(ho.fid, g, "arpack_products", (int64_t)nmv);
        if (!st)
            printf("  step %-8llu trace %.4g  cond %.4g  eff. rank %.2f  alignment %.4f  "
                   "lambda_max %.4g  (%.1f s, %.1f GFLOP)\n",
                   (unsigned long long)steps[c], s.trace, cond, eff, s.align, ev ? ev[0] : NAN,
                   s.seconds, s.gflop);
        free(ev);
        ns_ntk_stats_free(&s);
        if (!st && c > 0) {
            if (!(st = drift(ho.fid, &ks[0], k, dim, o.mem, &to_init[c])))
                st = drift(ho.fid, &ks[c - 1], k, dim, o.mem, &to_prev[c]);
        }
        /* Only the first and the previous kernel are needed from here on. */
        if (c >= 2 && ks[c - 1].k) {
            free(ks[c - 1].k);
            ks[c - 1].k = NULL;
            ks[c - 1].in_mem = 0;
        }
    }
    if (!st && nsteps > 1) {
        double *sv = malloc(nsteps * sizeof *sv);
        for (size_t c = 0; sv && c < nsteps; c++)
            sv[c] = (double)steps[c];
        size_t dn[1] = {nsteps};
        st = sv ? ns_h5_write_double(ho.fid, "/ntk/drift/steps", 1, dn, sv) : NS_ENOMEM;
        free(sv);
        to_init[0] = to_prev[0] = 0;
        if (!st) st = ns_h5_write_double(ho.fid, "/ntk/drift/to_init", 1, dn, to_init);
        if (!st) st = ns_h5_describe(ho.fid, "/ntk/drift/to_init", "1 - <T_0, T_s>_F / (||T_0||_F "
                                     "||T_s||_F) against the first chosen checkpoint", NULL);
        if (!st) st = ns_h5_write_double(ho.fid, "/ntk/drift/to_previous", 1, dn, to_prev);
        if (!st) st = ns_h5_describe(ho.fid, "/ntk/drift/to_previous", "the same against the "
                                     "previous chosen checkpoint", NULL);
        for (size_t c = 1; !st && c < nsteps; c++)
            printf("  drift step %-8llu to first %.4g, to previous %.4g\n",
                   (unsigned long long)steps[c], to_init[c], to_prev[c]);
    }
    if (!st)
        st = ns_h5out_commit(&ho);
    else
        ns_h5out_abort(&ho);
    if (!st)
        printf("wrote %s\n", out);
    for (size_t c = 0; ks && c < nsteps; c++)
        free(ks[c].k);
    free(ks);
    free(to_init);
    free(to_prev);
    ns_free(x);
    ns_free(y);
    ns_free(idx);
    ns_free(steps);
    free(an.widths);
    free(an.kernel);
    ns_data_free(d);
    ns_data_free(cal);
    ns_net_free(net);
    return st ? ns_cli_fail(st, NULL) : NS_EXIT_OK;
}
