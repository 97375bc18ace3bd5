/*
 * `normscope plot --what curves`: training curves of one or more run files
 * overlaid (plots/curves.gp).  For run i (1-based) it writes, from the
 * tables of DESIGN.md section 3,
 *   run<i>-epoch.dat  epoch step train_loss train_acc test_loss test_acc lr
 *                     (/history/epoch; accuracies as fractions)
 *   run<i>-step.dat   step epoch loss loss_smooth lr   (/history/step)
 * and the gnuplot variables nruns, labels ('|'-separated), maxepoch,
 * maxstep, nacc, nloss, nlr (how many points each panel can draw: a panel
 * without any says so instead of failing), lossmin and lossmax (the loss
 * axis: lowest positive loss, highest loss but at most ten times the
 * highest initial loss, so a diverging run does not squash the others),
 * lrmin and lrmax (lowest and highest peak learning rate of a run) and
 * lrlog (1 when those differ more than tenfold, so the learning-rate panel
 * needs a log scale).  Missing values are NaN.
 *
 * The smoothed loss is an exponential moving average with the start-up bias
 * removed (m_t / (1 - beta^t), as in Adam and TensorBoard), over about a
 * fiftieth of the run, so curves of different lengths are smoothed alike.
 * Step files of very long runs are thinned to at most MAX_STEP_ROWS rows
 * after smoothing.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STEP_ROWS 20000

/* What the script needs to know about the runs together. */
typedef struct curves_stats {
    double maxepoch, maxstep; /* x ranges */
    size_t nacc, nloss, nlr;  /* points the three panels can draw */
    double lrlo, lrhi;        /* lowest and highest peak learning rate of a run */
    double losslo, losshi;    /* lowest positive and highest finite loss */
    double loss0;             /* highest first finite loss of a run */
} curves_stats;

typedef struct column {
    const char *name;
    int required;
    double *v;
} column;

/* Reads the 1-D data sets of a table group into cols (NaN-filled when
 * optional and missing); every column has *rows values. */
static int read_table(ns_hid fid, const char *group, column *cols, size_t ncol,
                      size_t *rows)
{
    char path[256];
    *rows = 0;
    int have = 0, st = NS_OK;
    if (!ns_h5_exists(fid, group))
        return ns_error(NS_EFORMAT, "cannot read '%s': no training history ('%s' is missing)",
                        ns_h5_name(fid), group);
    for (size_t j = 0; j < ncol; j++) {
        snprintf(path, sizeof path, "%s/%s", group, cols[j].name);
        if (!ns_h5_exists(fid, path)) {
            if (cols[j].required)
                return ns_error(NS_EFORMAT, "cannot read '%s': data set '%s' is missing",
                                ns_h5_name(fid), path);
            continue;
        }
        size_t k;
        if ((st = ns_h5_read_double_alloc(fid, path, &cols[j].v, &k)))
            return st;
        if (have && k != *rows)
            return ns_error(NS_EFORMAT, "cannot read '%s': '%s' has %zu values, "
                            "other columns of '%s' %zu", ns_h5_name(fid), path, k,
                            group, *rows);
        *rows = k;
        have = 1;
    }
    for (size_t j = 0; j < ncol; j++) {
        if (cols[j].v)
            continue;
        cols[j].v = ns_malloc((*rows ? *rows : 1) * sizeof(double));
        if (!cols[j].v)
            return NS_ENOMEM;
        for (size_t r = 0; r < *rows; r++)
            cols[j].v[r] = NAN;
    }
    return NS_OK;
}

static void free_table(column *cols, size_t ncol)
{
    for (size_t j = 0; j < ncol; j++) {
        ns_free(cols[j].v);
        cols[j].v = NULL;
    }
}

static void header(FILE *f, const char *what, const char *path, const char *label,
                   const char *columns)
{
    fprintf(f, "# normscope curves: %s of '%s' (%s)\n# %s\n", what, path, label, columns);
}

static int export_epochs(ns_plot_ctx *c, size_t i, const char *label, curves_stats *cs,
                         size_t *rows)
{
    column cols[] = {{"epoch", 1, NULL},      {"step", 0, NULL},
                     {"train_loss", 0, NULL}, {"train_acc", 0, NULL},
                     {"test_loss", 0, NULL},  {"test_acc", 1, NULL},
                     {"lr", 0, NULL}};
    const size_t ncol = sizeof cols / sizeof *cols;
    char name[64], path[1200];
    FILE *f = NULL;
    int st = read_table(c->fids[i], "/history/epoch", cols, ncol, rows);
    if (st)
        goto cleanup;
    snprintf(name, sizeof name, "run%zu-epoch.dat", i + 1);
    if (!(f = ns_plot_data_open(c, name, path, sizeof path))) {
        st = NS_EIO;
        goto cleanup;
    }
    header(f, "per-epoch history", c->paths[i], label,
           "epoch step train_loss train_acc test_loss test_acc lr");
    for (size_t r = 0; r < *rows; r++) {
        for (size_t j = 0; j < ncol; j++)
            ns_plot_data_num(f, cols[j].v[r]);
        fputc('\n', f);
        if (isfinite(cols[0].v[r]) && cols[0].v[r] > cs->maxepoch)
            cs->maxepoch = cols[0].v[r];
        cs->nacc += isfinite(cols[0].v[r]) &&
                    (isfinite(cols[3].v[r]) || isfinite(cols[5].v[r]));
    }
    st = ns_plot_data_close(f, path);
cleanup:
    free_table(cols, ncol);
    return st;
}

static int export_steps(ns_plot_ctx *c, size_t i, const char *label, curves_stats *cs,
                        size_t *rows)
{
    column cols[] = {{"step", 1, NULL}, {"epoch", 0, NULL}, {"loss", 1, NULL},
                     {"lr", 0, NULL}};
    const size_t ncol = sizeof cols / sizeof *cols;
    char name[64], path[1200];
    FILE *f = NULL;
    int st = read_table(c->fids[i], "/history/step", cols, ncol, rows);
    if (st)
        goto cleanup;
    snprintf(name, sizeof name, "run%zu-step.dat", i + 1);
    if (!(f = ns_plot_data_open(c, name, path, sizeof path))) {
        st = NS_EIO;
        goto cleanup;
    }
    header(f, "per-step history", c->paths[i], label, "step epoch loss loss_smooth lr");

    size_t n = *rows;
    double window = (double)n / 50;
    if (window < 1)
        window = 1;
    if (window > 1000)
        window = 1000;
    const double beta = 1 - 1 / window;
    size_t stride = (n + MAX_STEP_ROWS - 1) / MAX_STEP_ROWS;
    if (stride < 1)
        stride = 1;
    double m = 0, bias = 1, peak = 0, first = NAN;
    for (size_t r = 0; r < n; r++) {
        double x = cols[2].v[r], smooth = NAN;
        if (isfinite(x)) {
            if (isnan(first))
                first = x;
            if (x > 0 && x < cs->losslo)
                cs->losslo = x;
            if (x > cs->losshi)
                cs->losshi = x;
            m = beta * m + (1 - beta) * x;
            bias *= beta;
            smooth = m / (1 - bias);
        }
        if (isfinite(cols[0].v[r]) && cols[0].v[r] > cs->maxstep)
            cs->maxstep = cols[0].v[r];
        if (isfinite(cols[3].v[r]) && cols[3].v[r] > peak)
            peak = cols[3].v[r];
        if (r % stride != 0 && r != n - 1)
            continue;
        /* Only points written count: the log axis needs a positive loss. */
        cs->nloss += isfinite(cols[0].v[r]) && isfinite(x) && x > 0;
        cs->nlr += isfinite(cols[0].v[r]) && isfinite(cols[3].v[r]);
        ns_plot_data_num(f, cols[0].v[r]);
        ns_plot_data_num(f, cols[1].v[r]);
        ns_plot_data_num(f, x);
        ns_plot_data_num(f, smooth);
        ns_plot_data_num(f, cols[3].v[r]);
        fputc('\n', f);
    }
    st = ns_plot_data_close(f, path);
    if (peak > 0 && peak < cs->lrlo)
        cs->lrlo = peak;
    if (peak > cs->lrhi)
        cs->lrhi = peak;
    if (first > cs->loss0)
        cs->loss0 = first;
cleanup:
    free_table(cols, ncol);
    return st;
}

int ns_plot_export_curves(ns_plot_ctx *c)
{
    char (*labels)[NS_PLOT_LABEL_MAX] = ns_calloc(c->n, sizeof *labels);
    const size_t jlen = c->n * NS_PLOT_LABEL_MAX + 1;
    char *joined = ns_malloc(jlen);
    if (!labels || !joined) {
        ns_free(labels);
        ns_free(joined);
        return NS_ENOMEM;
    }
    ns_plot_run_labels(c, labels);
    curves_stats cs = {0, 0, 0, 0, 0, INFINITY, 0, INFINITY, 0, 0};
    size_t used = 0;
    int st = NS_OK;
    joined[0] = '\0';
    for (size_t i = 0; i < c->n && !st; i++) {
        size_t e = 0, s = 0;
        st = export_epochs(c, i, labels[i], &cs, &e);
        if (!st)
            st = export_steps(c, i, labels[i], &cs, &s);
        if (!st && e == 0)
            ns_note("normscope: '%s' has no completed epoch", c->paths[i]);
        if (!st && s == 0)
            ns_note("normscope: '%s' has no training step", c->paths[i]);
        used += (size_t)snprintf(joined + used, jlen - used, "%s%s", i ? "|" : "",
                                 labels[i]);
    }
    if (!st) st = ns_plot_var_num(c, "nruns", (double)c->n);
    if (!st) st = ns_plot_var_str(c, "labels", joined);
    if (!st) st = ns_plot_var_num(c, "maxepoch", cs.maxepoch);
    if (!st) st = ns_plot_var_num(c, "maxstep", cs.maxstep);
    if (!st) st = ns_plot_var_num(c, "nacc", (double)cs.nacc);
    if (!st) st = ns_plot_var_num(c, "nloss", (double)cs.nloss);
    if (!st) st = ns_plot_var_num(c, "nlr", (double)cs.nlr);
    /* Runs whose peak learning rates differ tenfold share a log axis. */
    if (!st) st = ns_plot_var_num(c, "lrlog", cs.lrhi > 10 * cs.lrlo);
    if (!st) st = ns_plot_var_num(c, "lrmax", cs.lrhi);
    if (!st) st = ns_plot_var_num(c, "lrmin", isfinite(cs.lrlo) ? cs.lrlo : 0);
    /* A diverging run would squash the others: the loss axis stops at ten
     * times the highest initial loss, and the blow-up leaves the panel. */
    double top = cs.losshi;
    if (cs.loss0 > 0 && top > 10 * cs.loss0)
        top = 10 * cs.loss0;
    if (!st) st = ns_plot_var_num(c, "lossmin", isfinite(cs.losslo) ? cs.losslo : 0);
    if (!st) st = ns_plot_var_num(c, "lossmax", top);
    ns_free(labels);
    ns_free(joined);
    return st;
}
