/*
 * Figures of `normscope ntk` result files (the /ntk group of
 * src/cli/cmd_ntk.c), several files overlaid (one line style per file):
 *   ntk-spectrum  plots/ntk-spectrum.gp: eigenvalues against their rank, log
 *                 scales, one colour per checkpoint from early (dark) to late
 *                 (light); left absolute, right divided by the largest.
 *                 spec<i>.dat: one block per checkpoint (gnuplot index),
 *                 rows rank lambda lambda/lambda_1.
 *   ntk-training  plots/ntk-training.gp: over the optimiser step, the
 *                 condition number, the drift to the first and the previous
 *                 checkpoint, the effective rank and the alignment.
 *                 train<i>.dat: step cond drift_init drift_prev eff_rank
 *                 alignment trace.
 *   ntk-layers    plots/ntk-layers.gp: each parameterised layer's share of
 *                 the trace over the steps, one colour per layer, one panel
 *                 per file.  layers<i>.dat: step share_1 ... share_L.
 * Gnuplot variables: nfiles, labels ('|'-separated file labels), and per
 * kind the checkpoint counts (nsteps: a space-separated list), step names,
 * layer counts and names.  Non-finite values are written as NaN.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STEPS 256

/* The checkpoint steps of /ntk, ascending. */
typedef struct steps {
    uint64_t v[MAX_STEPS];
    size_t n;
} steps;

static herr_t collect_step(hid_t g, const char *name, const H5L_info_t *info, void *op)
{
    (void)g;
    (void)info;
    steps *s = op;
    char *end;
    unsigned long long v = strtoull(name, &end, 10);
    if (*end || end == name || s->n >= MAX_STEPS)
        return 0;
    size_t k = s->n++;
    while (k > 0 && s->v[k - 1] > v) {
        s->v[k] = s->v[k - 1];
        k--;
    }
    s->v[k] = v;
    return 0;
}

static int read_steps(const ns_plot_ctx *c, size_t i, steps *s)
{
    s->n = 0;
    hid_t f = c->fids[i];
    if (!ns_h5_exists(f, "/ntk"))
        return ns_error(NS_EFORMAT, "cannot read '%s': no NTK results ('/ntk' is missing; write "
                        "them with normscope ntk)", c->paths[i]);
    hid_t g = H5Gopen2(f, "/ntk", H5P_DEFAULT);
    if (g < 0)
        return ns_error(NS_EFORMAT, "cannot read '%s': /ntk is not a group", c->paths[i]);
    H5Literate(g, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, collect_step, s);
    H5Gclose(g);
    if (!s->n)
        return ns_error(NS_EFORMAT, "cannot read '%s': /ntk holds no checkpoint", c->paths[i]);
    return NS_OK;
}

/* "<file base name>: <kernel> kernel, <mode> mode". */
static void label_of(const ns_plot_ctx *c, size_t i, char *buf, size_t len)
{
    char kernel[32] = "?", mode[32] = "?", src[512] = "";
    ns_h5_get_str(c->fids[i], "/ntk", "kernel", kernel, sizeof kernel);
    ns_h5_get_str(c->fids[i], "/ntk", "mode", mode, sizeof mode);
    ns_h5_get_str(c->fids[i], "/ntk", "source", src, sizeof src);
    const char *b = strrchr(src, '/');
    b = b ? b + 1 : src;
    snprintf(buf, len, "%.400s (%.31s, %.31s mode)", *b ? b : c->paths[i], kernel, mode);
    for (char *p = buf; *p; p++)
        if (*p == '|')
            *p = '/';
}

static double attr(hid_t f, const char *g, const char *name)
{
    double v;
    return ns_h5_get_double(f, g, name, &v) == NS_OK ? v : NAN;
}

static int labels_var(ns_plot_ctx *c)
{
    size_t len = c->n * 600 + 1, u = 0;
    char *all = calloc(len, 1);
    if (!all)
        return ns_error(NS_ENOMEM, "out of memory");
    for (size_t i = 0; i < c->n; i++) {
        char l[560];
        label_of(c, i, l, sizeof l);
        u += (size_t)snprintf(all + u, len - u, "%s%s", i ? "|" : "", l);
    }
    int st = ns_plot_var_str(c, "labels", all);
    free(all);
    if (!st)
        st = ns_plot_var_num(c, "nfiles", (double)c->n);
    return st;
}

/* ------------------------------------------------------------ spectrum */

int ns_plot_export_ntk_spectrum(ns_plot_ctx *c)
{
    char nsteps[4096] = "", names[8192] = "", path[1200], file[64], g[96];
    double lo = INFINITY, hi = 0;
    size_t maxrank = 1;
    int st = labels_var(c);
    for (size_t i = 0; !st && i < c->n; i++) {
        steps s;
        if ((st = read_steps(c, i, &s)))
            break;
        snprintf(file, sizeof file, "spec%zu.dat", i + 1);
        FILE *o = ns_plot_data_open(c, file, path, sizeof path);
        if (!o)
            return NS_EIO;
        for (size_t k = 0; k < s.n && !st; k++) {
            double *ev = NULL;
            size_t n = 0;
            snprintf(g, sizeof g, "/ntk/%llu/eigenvalues", (unsigned long long)s.v[k]);
            if ((st = ns_h5_read_double_alloc(c->fids[i], g, &ev, &n)))
                break;
            fprintf(o, "# step %llu\n", (unsigned long long)s.v[k]);
            for (size_t r = 0; r < n; r++) {
                double v = ev[r] > 0 ? ev[r] : NAN;
                fprintf(o, "%zu", r + 1);
                ns_plot_data_num(o, v);
                ns_plot_data_num(o, v / ev[0]);
                fputc('\n', o);
                if (v > 0) {
                    lo = v < lo ? v : lo;
                    hi = v > hi ? v : hi;
                }
            }
            fputs("\n\n", o);
            maxrank = n > maxrank ? n : maxrank;
            free(ev);
            size_t u = strlen(names);
            snprintf(names + u, sizeof names - u, "%s%llu", u ? " " : "", (unsigned long long)s.v[k]);
        }
        size_t u = strlen(nsteps);
        snprintf(nsteps + u, sizeof nsteps - u, "%s%zu", u ? " " : "", s.n);
        int cl = ns_plot_data_close(o, path);
        st = st ? st : cl;
    }
    if (!st) st = ns_plot_var_str(c, "nsteps", nsteps);
    if (!st) st = ns_plot_var_str(c, "stepnames", names);
    if (!st) st = ns_plot_var_num(c, "maxrank", (double)maxrank);
    if (!st) st = ns_plot_var_num(c, "evlo", isfinite(lo) ? lo : 1e-6);
    if (!st) st = ns_plot_var_num(c, "evhi", hi > 0 ? hi : 1);
    return st;
}

/* ------------------------------------------------------------ training */

int ns_plot_export_ntk_training(ns_plot_ctx *c)
{
    char path[1200], file[64], g[96];
    double maxstep = 1;
    size_t ndrift = 0, ncond = 0;
    int st = labels_var(c);
    for (size_t i = 0; !st && i < c->n; i++) {
        steps s;
        if ((st = read_steps(c, i, &s)))
            break;
        hid_t f = c->fids[i];
        double *di = NULL, *dp = NULL, *ds = NULL;
        size_t nd = 0;
        if (ns_h5_exists(f, "/ntk/drift/to_init")) {
            ns_h5_read_double_alloc(f, "/ntk/drift/steps", &ds, &nd);
            ns_h5_read_double_alloc(f, "/ntk/drift/to_init", &di, &nd);
            ns_h5_read_double_alloc(f, "/ntk/drift/to_previous", &dp, &nd);
        }
        snprintf(file, sizeof file, "train%zu.dat", i + 1);
        FILE *o = ns_plot_data_open(c, file, path, sizeof path);
        if (!o) {
            free(di);
            free(dp);
            free(ds);
            return NS_EIO;
        }
        fputs("# step cond drift_init drift_prev eff_rank alignment trace\n", o);
        for (size_t k = 0; k < s.n; k++) {
            snprintf(g, sizeof g, "/ntk/%llu", (unsigned long long)s.v[k]);
            double d0 = NAN, d1 = NAN, cond = attr(f, g, "condition_number");
            for (size_t q = 0; di && dp && ds && q < nd; q++)
                if (ds[q] == (double)s.v[k] && k > 0) {
                    d0 = di[q];
                    d1 = dp[q];
                    ndrift++;
                }
            ncond += isfinite(cond) != 0;
            fprintf(o, "%llu", (unsigned long long)s.v[k]);
            ns_plot_data_num(o, cond);
            ns_plot_data_num(o, d0);
            ns_plot_data_num(o, d1);
            ns_plot_data_num(o, attr(f, g, "effective_rank"));
            ns_plot_data_num(o, attr(f, g, "alignment"));
            ns_plot_data_num(o, attr(f, g, "trace"));
            fputc('\n', o);
            maxstep = (double)s.v[k] > maxstep ? (double)s.v[k] : maxstep;
        }
        free(di);
        free(dp);
        free(ds);
        if ((st = ns_plot_data_close(o, path)))
            break;
    }
    if (!st) st = ns_plot_var_num(c, "maxstep", maxstep);
    if (!st) st = ns_plot_var_num(c, "ndrift", (double)ndrift);
    if (!st) st = ns_plot_var_num(c, "ncond", (double)ncond);
    return st;
}

/* -------------------------------------------------------------- layers */

int ns_plot_export_ntk_layers(ns_plot_ctx *c)
{
    char path[1200], file[64], g[128], nl[1024] = "", names[16384] = "";
    double maxstep = 1, lo = INFINITY;
    int st = labels_var(c);
    for (size_t i = 0; !st && i < c->n; i++) {
        steps s;
        if ((st = read_steps(c, i, &s)))
            break;
        hid_t f = c->fids[i];
        snprintf(file, sizeof file, "layers%zu.dat", i + 1);
        FILE *o = ns_plot_data_open(c, file, path, sizeof path);
        if (!o)
            return NS_EIO;
        size_t nlay = 0;
        char lnames[4096] = "";
        for (size_t k = 0; k < s.n && !st; k++) {
            double *t = NULL;
            size_t n = 0;
            snprintf(g, sizeof g, "/ntk/%llu/layer_trace", (unsigned long long)s.v[k]);
            if ((st = ns_h5_read_double_alloc(f, g, &t, &n)))
                break;
            if (k == 0) {
                nlay = n;
                ns_h5_get_str(f, g, "layers", lnames, sizeof lnames);
            }
            double sum = 0;
            for (size_t q = 0; q < n; q++)
                sum += t[q];
            fprintf(o, "%llu", (unsigned long long)s.v[k]);
            for (size_t q = 0; q < nlay; q++) {
                double v = q < n && sum > 0 ? t[q] / sum : NAN;
                ns_plot_data_num(o, v);
                if (v > 0)
                    lo = v < lo ? v : lo;
            }
            fputc('\n', o);
            maxstep = (double)s.v[k] > maxstep ? (double)s.v[k] : maxstep;
            free(t);
        }
        int cl = ns_plot_data_close(o, path);
        st = st ? st : cl;
        size_t u = strlen(nl);
        snprintf(nl + u, sizeof nl - u, "%s%zu", u ? " " : "", nlay);
        /* layer names, comma separated in the file: space separated here,
         * files separated by ';' */
        for (char *p = lnames; *p; p++)
            if (*p == ',')
                *p = ' ';
        u = strlen(names);
        snprintf(names + u, sizeof names - u, "%s%s", u ? " " : "", lnames);
    }
    if (!st) st = ns_plot_var_str(c, "nlayers", nl);
    if (!st) st = ns_plot_var_str(c, "layernames", names);
    if (!st) st = ns_plot_var_num(c, "maxstep", maxstep);
    if (!st) st = ns_plot_var_num(c, "sharelo", isfinite(lo) ? lo : 1e-6);
    return st;
}

/* --------------------------------------------------------------- depth */

/* ntk-depth: the analytic condition number against depth (plain and with
 * the weight mean) from the first file's /ntk/analytic/depth, and the
 * measured points (depth, one-output condition number at the first
 * checkpoint) of every file run with --analytic.  curve.dat: depth cond
 * cond_wm; points.dat: depth cond analytic_cond wm (one row per file). */
int ns_plot_export_ntk_depth(ns_plot_ctx *c)
{
    char path[1200], g[96];
    double *d = NULL, *c0 = NULL, *c1 = NULL;
    size_t n = 0, n0 = 0, n1 = 0;
    int st = labels_var(c);
    hid_t f = c->fids[0];
    if (!st && !ns_h5_exists(f, "/ntk/analytic/depth/condition_number"))
        st = ns_error(NS_EFORMAT, "cannot read '%s': no analytic kernel ('/ntk/analytic' is "
                      "missing; run normscope ntk with --analytic)", c->paths[0]);
    if (!st) st = ns_h5_read_double_alloc(f, "/ntk/analytic/depth/depth", &d, &n);
    if (!st) st = ns_h5_read_double_alloc(f, "/ntk/analytic/depth/condition_number", &c0, &n0);
    if (!st) st = ns_h5_read_double_alloc(f, "/ntk/analytic/depth/condition_number_wm", &c1, &n1);
    if (!st && (n0 != n || n1 != n))
        st = ns_error(NS_EFORMAT, "cannot read '%s': analytic depth curves of different lengths",
                      c->paths[0]);
    FILE *o = NULL;
    if (!st && !(o = ns_plot_data_open(c, "curve.dat", path, sizeof path)))
        st = NS_EIO;
    double hi = 1;
    for (size_t i = 0; !st && i < n; i++) {
        fprintf(o, "%g", d[i]);
        ns_plot_data_num(o, c0[i]);
        ns_plot_data_num(o, c1[i]);
        fputc('\n', o);
        hi = isfinite(c0[i]) && c0[i] > hi ? c0[i] : hi;
    }
    if (o && !st)
        st = ns_plot_data_close(o, path);
    size_t npts = 0;
    if (!st && !(o = ns_plot_data_open(c, "points.dat", path, sizeof path)))
        st = NS_EIO;
    for (size_t i = 0; !st && i < c->n; i++) {
        steps s;
        if (read_steps(c, i, &s))
            continue;
        snprintf(g, sizeof g, "/ntk/%llu", (unsigned long long)s.v[0]);
        double dep = attr(c->fids[i], g, "depth"), oc = attr(c->fids[i], g, "output_condition_number");
        double ac = attr(c->fids[i], "/ntk/analytic", "condition_number");
        int64_t wm = 0;
        ns_h5_get_int(c->fids[i], "/ntk/analytic", "weight_mean", &wm);
        if (!isfinite(dep))
            continue;
        fprintf(o, "%g", dep);
        ns_plot_data_num(o, oc);
        ns_plot_data_num(o, ac);
        fprintf(o, " %d\n", (int)wm);
        npts++;
        hi = isfinite(oc) && oc > hi ? oc : hi;
    }
    if (o && !st)
        st = ns_plot_data_close(o, path);
    if (!st) st = ns_plot_var_num(c, "npoints", (double)npts);
    if (!st) st = ns_plot_var_num(c, "maxdepth", n ? d[n - 1] : 1);
    free(d);
    free(c0);
    free(c1);
    return st;
}
