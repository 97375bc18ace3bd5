/*
 * Figures of `normscope ntk` result files (the /ntk group written by
 * src/analysis/ntk.c, DESIGN.md section 3; its names are the NS_NTK_*
 * macros of include/normscope/ntk.h):
 *   ntk-spectrum  plots/ntk-spectrum.gp: eigenvalues against their rank,
 *                 log scales, one colour per checkpoint from early (dark) to
 *                 late (light); left absolute, right divided by the largest
 *                 (lambda_i / lambda_1); one row of two panels per file.
 *                 spec<f>.dat: one block per checkpoint (gnuplot index k),
 *                 rows: rank lambda lambda/lambda_1.
 *   ntk-training  plots/ntk-training.gp: over the optimiser step, the
 *                 condition number, the drift to the first and to the
 *                 previous checkpoint, the effective rank and the alignment,
 *                 files overlaid.  train<f>.dat: step cond drift_first
 *                 drift_prev eff_rank alignment trace.
 *   ntk-layers    plots/ntk-layers.gp: each parameterised layer's share of
 *                 the trace over the steps, one colour per layer, one panel
 *                 per file (bars by layer for a file of one checkpoint).
 *                 layers<f>.dat: step share_1 ... share_L;
 *                 bars<f>.dat: layer share (one checkpoint).
 *   ntk-depth     plots/ntk-depth.gp (see its function below).
 *
 * Every input is checked for an /ntk group with checkpoints before a data
 * file is written, so bad input leaves nothing behind.  Checkpoints that
 * lack a data set (eigenvalues, layer_trace) are left out with a note on
 * stderr and in the figure, missing attributes and drift become NaN (which
 * the scripts skip); a kind fails only when no file holds anything it can
 * draw.
 *
 * Labels come from the result file alone: the run's "norm arch" when /ntk
 * carries them, else the base name of the source run file; the kernel,
 * mode, sample count and data set are added where the files differ, and
 * the result file's name where labels still collide.
 */
#include "internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "normscope/ntk.h"

/* Paths of the result's groups, from the names of ntk.h. */
#define DRIFT NS_NTK_GROUP "/" NS_NTK_DRIFT "/"
#define ANALYTIC NS_NTK_GROUP "/" NS_NTK_ANALYTIC
#define DEPTH ANALYTIC "/" NS_NTK_ANALYTIC_DEPTH "/"

/* ------------------------------------------------------------- strings */

/* -------------------------------------------------------------- inputs */

typedef struct ntk_file {
    uint64_t *step; /* checkpoint steps of /ntk, ascending */
    size_t n;
    size_t rows;    /* rows of the kernel (N*K full, N trace); 0: unknown */
} ntk_file;

typedef struct ntk_set {
    ntk_file *f;
    size_t n;
    char (*label)[NS_PLOT_LABEL_MAX];    /* legend labels */
    char (*desc)[2 * NS_PLOT_LABEL_MAX]; /* panel titles */
} ntk_set;

static void ntk_set_release(ntk_set *s)
{
    for (size_t i = 0; s->f && i < s->n; i++)
        free(s->f[i].step);
    free(s->f);
    free(s->label);
    free(s->desc);
    memset(s, 0, sizeof *s);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The checkpoint groups of /ntk: its links named by a step (not drift,
 * indices, analytic), ascending. */
static int read_steps(const ns_plot_ctx *c, size_t i, ntk_file *f)
{
    ns_hid fid = c->fids[i];
    if (!ns_h5_exists(fid, NS_NTK_GROUP))
        return ns_error(NS_EFORMAT, "cannot read '%s': no NTK results ('" NS_NTK_GROUP "' is "
                        "missing; write them with normscope ntk)", c->paths[i]);
    char **names;
    size_t n;
    int st = ns_h5_children(fid, NS_NTK_GROUP, &names, &n);
    if (st == NS_ENOMEM)
        return ns_error(NS_ENOMEM, "cannot read '%s': out of memory listing " NS_NTK_GROUP,
                        c->paths[i]);
    if (st)
        return ns_error(NS_EFORMAT, "cannot read '%s': " NS_NTK_GROUP " is not a group",
                        c->paths[i]);
    f->step = n ? malloc(n * sizeof *f->step) : NULL;
    if (n && !f->step)
        st = ns_error(NS_ENOMEM, "cannot read '%s': out of memory listing " NS_NTK_GROUP,
                      c->paths[i]);
    for (size_t k = 0; !st && k < n; k++) {
        char *end;
        const char *name = names[k];
        unsigned long long v = strtoull(name, &end, 10);
        if (!*end && end != name && *name >= '0' && *name <= '9')
            f->step[f->n++] = v;
    }
    ns_h5_names_free(names, n);
    if (st)
        return st;
    if (!f->n)
        return ns_error(NS_EFORMAT, "cannot read '%s': " NS_NTK_GROUP " holds no checkpoint",
                        c->paths[i]);
    qsort(f->step, f->n, sizeof *f->step, cmp_u64);
    return NS_OK;
}

static void get_str(ns_hid f, const char *name, char *buf, size_t len)
{
    if (ns_h5_get_str(f, NS_NTK_GROUP, name, buf, len) != NS_OK)
        buf[0] = '\0';
}

static int64_t get_int(ns_hid f, const char *name)
{
    int64_t v;
    return ns_h5_get_int(f, NS_NTK_GROUP, name, &v) == NS_OK ? v : -1;
}

/* The run's name: "norm arch" where /ntk has them, else the source run
 * file's base name, else the result file's. */
static void run_name(const ns_plot_ctx *c, size_t i, char *buf, size_t len)
{
    char norm[32], arch[96], src[1024];
    get_str(c->fids[i], "norm", norm, sizeof norm);
    get_str(c->fids[i], "arch", arch, sizeof arch);
    get_str(c->fids[i], "source", src, sizeof src);
    if (*norm && *arch)
        snprintf(buf, len, "%s %s", norm, arch);
    else
        snprintf(buf, len, "%s", ns_plot_base(*src ? src : c->paths[i]));
}

/* Which of kernel, mode, n and data differ between the files (bit 0..3). */
static unsigned differing(const ns_plot_ctx *c)
{
    static const char *const keys[] = {"kernel", "mode", "n", "data"};
    unsigned d = 0;
    for (size_t q = 0; q < 4; q++)
        for (size_t i = 1; i < c->n; i++) {
            char a[96], b[96];
            if (q == 2)
                d |= (unsigned)(get_int(c->fids[i], "n") != get_int(c->fids[0], "n")) << q;
            else {
                get_str(c->fids[i], keys[q], a, sizeof a);
                get_str(c->fids[0], keys[q], b, sizeof b);
                d |= (unsigned)(strcmp(a, b) != 0) << q;
            }
        }
    return d;
}

static void make_labels(const ns_plot_ctx *c, ntk_set *s)
{
    unsigned d = differing(c);
    /* label: "<run>[ (<what differs>)]"; desc (panel titles): "<run>, <full
     * description>"; tag: what tells colliding labels apart. */
    char (*name)[NS_PLOT_LABEL_MAX] = calloc(c->n, sizeof *name);
    char (*tag)[NS_PLOT_LABEL_MAX] = calloc(c->n, sizeof *tag);
    char *dup = calloc(c->n, 1);
    ns_sb extra = NS_SB_INIT;
    for (size_t i = 0; i < c->n; i++) {
        ns_hid f = c->fids[i];
        char run[NS_PLOT_LABEL_MAX], kernel[32], mode[32], data[64];
        run_name(c, i, run, sizeof run);
        get_str(f, "kernel", kernel, sizeof kernel);
        get_str(f, "mode", mode, sizeof mode);
        get_str(f, "data", data, sizeof data);
        int64_t n = get_int(f, "n"), k = get_int(f, "outputs");
        ns_sb_reset(&extra);
        if (d & 1)
            ns_sb_appendf(&extra, ", %.31s kernel", kernel);
        if (d & 2)
            ns_sb_appendf(&extra, ", %.31s mode", mode);
        if (d & 4)
            ns_sb_appendf(&extra, ", %lld samples", (long long)n);
        if (d & 8)
            ns_sb_appendf(&extra, ", %.63s", data);
        const char *ex = ns_sb_str(&extra);
        snprintf(s->label[i], NS_PLOT_LABEL_MAX, "%.100s%s%.50s%s", run, *ex ? " (" : "",
                 *ex ? ex + 2 : "", *ex ? ")" : "");
        if (name)
            snprintf(name[i], NS_PLOT_LABEL_MAX, "%s", run);

        /* "full kernel of 32 samples x 10 outputs, eval mode" */
        int full = strcmp(kernel, "trace") != 0;
        if (n > 0 && full && k > 0)
            snprintf(s->desc[i], sizeof s->desc[i], "%s kernel of %lld samples x %lld outputs",
                     *kernel ? kernel : "full", (long long)n, (long long)k);
        else if (n > 0)
            snprintf(s->desc[i], sizeof s->desc[i], "%s kernel of %lld samples",
                     *kernel ? kernel : "full", (long long)n);
        else
            snprintf(s->desc[i], sizeof s->desc[i], "%s kernel", *kernel ? kernel : "full");
        size_t u = strlen(s->desc[i]);
        if (*mode)
            snprintf(s->desc[i] + u, sizeof s->desc[i] - u, ", %.31s mode", mode);
        s->f[i].rows = n > 0 ? (size_t)n * (full && k > 0 ? (size_t)k : 1) : 0;
    }
    /* Labels that still collide get the result file's name, or its path
     * where the names collide too (the same file given twice). */
    for (int pass = 0; pass < 2 && name && tag && dup; pass++) {
        char probe[2][NS_PLOT_LABEL_MAX];
        for (size_t i = 0; i < c->n; i++) {
            dup[i] = 0;
            for (size_t j = 0; j < c->n; j++) {
                snprintf(probe[0], sizeof probe[0], "%s%s", s->label[i], tag[i]);
                snprintf(probe[1], sizeof probe[1], "%s%s", s->label[j], tag[j]);
                dup[i] |= j != i && strcmp(probe[0], probe[1]) == 0;
            }
        }
        for (size_t i = 0; i < c->n; i++)
            if (dup[i])
                snprintf(tag[i], sizeof tag[i], " [%.100s]",
                         pass ? c->paths[i] : ns_plot_base(c->paths[i]));
    }
    for (size_t i = 0; i < c->n; i++) {
        char desc[sizeof s->desc[i]];
        memcpy(desc, s->desc[i], sizeof desc);
        if (tag && name) {
            size_t u = strlen(s->label[i]);
            snprintf(s->label[i] + u, NS_PLOT_LABEL_MAX - u, "%s", tag[i]);
            snprintf(s->desc[i], sizeof s->desc[i], "%.90s%.100s, %.120s", name[i], tag[i], desc);
        }
        ns_plot_clean(s->label[i], 0);
        ns_plot_clean(s->desc[i], 0);
    }
    ns_sb_release(&extra);
    free(name);
    free(tag);
    free(dup);
}

/* Opens every input's /ntk (failing before anything is written) and makes
 * the labels. */
static int ntk_set_load(const ns_plot_ctx *c, ntk_set *s)
{
    memset(s, 0, sizeof *s);
    s->n = c->n;
    s->f = calloc(c->n, sizeof *s->f);
    s->label = calloc(c->n, sizeof *s->label);
    s->desc = calloc(c->n, sizeof *s->desc);
    if (!s->f || !s->label || !s->desc) {
        ntk_set_release(s);
        return ns_error(NS_ENOMEM, "out of memory");
    }
    int st = NS_OK;
    for (size_t i = 0; i < c->n && !st; i++)
        st = read_steps(c, i, &s->f[i]);
    if (st) {
        ntk_set_release(s);
        return st;
    }
    make_labels(c, s);
    return NS_OK;
}

/* labels, descs ('|'-separated) and nfiles. */
static int labels_var(ns_plot_ctx *c, const ntk_set *s)
{
    ns_sb l = NS_SB_INIT, d = NS_SB_INIT;
    for (size_t i = 0; i < s->n; i++) {
        ns_sb_appendf(&l, "%s%s", i ? "|" : "", s->label[i]);
        ns_sb_appendf(&d, "%s%s", i ? "|" : "", s->desc[i]);
    }
    int st = ns_plot_sb_var(c, &l, "labels", NS_OK);
    st = ns_plot_sb_var(c, &d, "descs", st);
    if (!st)
        st = ns_plot_var_num(c, "nfiles", (double)c->n);
    return st;
}

static double attr(ns_hid f, const char *g, const char *name)
{
    double v;
    return ns_h5_get_double(f, g, name, &v) == NS_OK ? v : NAN;
}

/* "/ntk/<step>/<name>" (name may be empty: the group). */
static void ckpt_path(char *buf, size_t len, uint64_t step, const char *name)
{
    snprintf(buf, len, NS_NTK_GROUP "/%llu%s%s", (unsigned long long)step, *name ? "/" : "",
             name);
}

/* Which checkpoints of every file have the data set name: per file a note
 * ("no NAME at step S", "no NAME at K of N checkpoints", "no NAME in this
 * file") for the figure, repeated on stderr when some file has it at all;
 * fails (nothing written yet) when none has. */
static int check_ckpts(const ns_plot_ctx *c, const ntk_set *s, const char *name, ns_sb *note)
{
    size_t total = 0;
    char p[128];
    for (size_t i = 0; i < s->n; i++) {
        const ntk_file *f = &s->f[i];
        size_t have = 0, miss = 0;
        uint64_t first = 0;
        for (size_t k = 0; k < f->n; k++) {
            ckpt_path(p, sizeof p, f->step[k], name);
            if (ns_h5_exists(c->fids[i], p))
                have++;
            else if (!miss++)
                first = f->step[k];
        }
        total += have;
        if (!miss)
            continue;
        if (!have)
            ns_sb_appendf(&note[i], "no %s in this file", name);
        else if (miss == 1)
            ns_sb_appendf(&note[i], "no %s at step %llu", name, (unsigned long long)first);
        else
            ns_sb_appendf(&note[i], "no %s at %zu of %zu checkpoints", name, miss, f->n);
    }
    if (!total && s->n == 1)
        return ns_error(NS_EFORMAT, "cannot read '%s': no checkpoint holds %s", c->paths[0],
                        name);
    if (!total)
        return ns_error(NS_EFORMAT, "cannot read '%s' and %zu other file%s: no checkpoint "
                        "holds %s", c->paths[0], s->n - 1, s->n > 2 ? "s" : "", name);
    for (size_t i = 0; i < s->n; i++)
        if (note[i].len)
            ns_note("normscope: '%s': %s (left out of the figure)", c->paths[i],
                    ns_sb_str(&note[i]));
    return NS_OK;
}

/* ------------------------------------------------------------ spectrum */

/* The files' notes joined with '|' into the gnuplot variable name; frees
 * them. */
static int notes_var(ns_plot_ctx *c, ns_sb *note, size_t n, const char *name, int st)
{
    ns_sb all = NS_SB_INIT;
    for (size_t i = 0; i < n; i++) {
        ns_sb_appendf(&all, "%s%s", i ? "|" : "", ns_sb_str(&note[i]));
        all.failed |= note[i].failed;
        ns_sb_release(&note[i]);
    }
    free(note);
    return ns_plot_sb_var(c, &all, name, st);
}

int ns_plot_export_ntk_spectrum(ns_plot_ctx *c)
{
    ntk_set s;
    int st = ntk_set_load(c, &s);
    if (st)
        return st;
    ns_sb nsteps = NS_SB_INIT, names = NS_SB_INIT, *note = calloc(s.n, sizeof *note);
    char path[1200], file[64], g[128];
    double lo = INFINITY, hi = 0, rlo = INFINITY;
    size_t maxrank = 1;
    if (!note) {
        ntk_set_release(&s);
        return ns_error(NS_ENOMEM, "out of memory");
    }

    /* What each file can show, before anything is written. */
    st = check_ckpts(c, &s, NS_NTK_EIGENVALUES, note);
    if (!st)
        st = labels_var(c, &s);

    for (size_t i = 0; !st && i < s.n; i++) {
        ns_hid f = c->fids[i];
        snprintf(file, sizeof file, "spec%zu.dat", i + 1);
        FILE *o = ns_plot_data_open(c, file, path, sizeof path);
        if (!o) {
            st = NS_EIO;
            break;
        }
        size_t blocks = 0, fewest = SIZE_MAX;
        for (size_t k = 0; k < s.f[i].n && !st; k++) {
            double *ev = NULL;
            size_t n = 0;
            ckpt_path(g, sizeof g, s.f[i].step[k], NS_NTK_EIGENVALUES);
            if (!ns_h5_exists(f, g))
                continue;
            if ((st = ns_h5_read_double_alloc(f, g, &ev, &n)))
                break;
            fprintf(o, "# step %llu: rank lambda lambda/lambda_1\n",
                    (unsigned long long)s.f[i].step[k]);
            /* Eigenvalues at or below zero (rounding of a PSD kernel)
             * have no place on a log axis. */
            double top = n && ev[0] > 0 ? ev[0] : NAN;
            for (size_t r = 0; r < n; r++) {
                double v = ev[r] > 0 ? ev[r] : NAN;
                fprintf(o, "%zu", r + 1);
                ns_plot_data_num(o, v);
                ns_plot_data_num(o, v / top);
                fputc('\n', o);
                if (v > 0) {
                    lo = v < lo ? v : lo;
                    hi = v > hi ? v : hi;
                    rlo = isfinite(v / top) && v / top < rlo ? v / top : rlo;
                }
            }
            /* A block without rows would shift gnuplot's index count. */
            if (!n)
                fputs("1 NaN NaN\n", o);
            fputs("\n\n", o);
            maxrank = n > maxrank ? n : maxrank;
            fewest = n < fewest ? n : fewest;
            free(ev);
            ns_sb_appendf(&names, "%s%llu", names.len ? " " : "",
                          (unsigned long long)s.f[i].step[k]);
            blocks++;
        }
        ns_sb_appendf(&nsteps, "%s%zu", i ? " " : "", blocks);
        int cl = ns_plot_data_close(o, path);
        st = st ? st : cl;
        /* ARPACK's top eigenvalues only: say how many of how many. */
        if (!st && blocks && s.f[i].rows && fewest < s.f[i].rows) {
            ns_note("normscope: '%s': only the top %zu of %zu eigenvalues are known (ARPACK)",
                    c->paths[i], fewest, s.f[i].rows);
            ns_sb t = NS_SB_INIT;
            ns_sb_appendf(&t, "top %zu of %zu eigenvalues%s%s", fewest, s.f[i].rows,
                      note[i].len ? "; " : "", ns_sb_str(&note[i]));
            ns_sb_release(&note[i]);
            note[i] = t;
        }
    }
    st = notes_var(c, note, s.n, "notes", st);
    st = ns_plot_sb_var(c, &nsteps, "nsteps", st);
    st = ns_plot_sb_var(c, &names, "stepnames", st);
    if (!st) st = ns_plot_var_num(c, "maxrank", (double)maxrank);
    if (!st) st = ns_plot_var_num(c, "evlo", isfinite(lo) ? lo : 1e-6);
    if (!st) st = ns_plot_var_num(c, "evhi", hi > 0 ? hi : 1);
    if (!st) st = ns_plot_var_num(c, "rello", isfinite(rlo) && rlo < 1 ? rlo : 0.1);
    ntk_set_release(&s);
    return st;
}

/* ------------------------------------------------------------ training */

int ns_plot_export_ntk_training(ns_plot_ctx *c)
{
    ntk_set s;
    int st = ntk_set_load(c, &s);
    if (st)
        return st;
    char path[1200], file[64], g[128];
    double maxstep = 1, clo = INFINITY, chi = 0;
    size_t ndrift = 0, ncond = 0, multi = 0;
    ns_sb condok = NS_SB_INIT, nodrift = NS_SB_INIT;
    st = labels_var(c, &s);
    for (size_t i = 0; !st && i < s.n; i++) {
        ns_hid f = c->fids[i];
        double *di = NULL, *dp = NULL, *ds = NULL;
        size_t nd = 0, n1 = 0, n2 = 0;
        if (s.f[i].n > 1) {
            if (ns_h5_exists(f, DRIFT NS_NTK_DRIFT_STEPS) &&
                ns_h5_exists(f, DRIFT NS_NTK_DRIFT_TO_INIT) &&
                ns_h5_exists(f, DRIFT NS_NTK_DRIFT_TO_PREVIOUS) &&
                !ns_h5_read_double_alloc(f, DRIFT NS_NTK_DRIFT_STEPS, &ds, &nd) &&
                !ns_h5_read_double_alloc(f, DRIFT NS_NTK_DRIFT_TO_INIT, &di, &n1) &&
                !ns_h5_read_double_alloc(f, DRIFT NS_NTK_DRIFT_TO_PREVIOUS, &dp, &n2) &&
                n1 == nd && n2 == nd) {
                /* read */
            } else {
                ns_note("normscope: '%s' has %zu checkpoints but no drift (" NS_NTK_GROUP "/"
                        NS_NTK_DRIFT "), drawn without it", c->paths[i], s.f[i].n);
                ns_sb_appendf(&nodrift, "%s%s", nodrift.len ? ", " : "", s.label[i]);
                nd = 0;
            }
            multi++;
        }
        snprintf(file, sizeof file, "train%zu.dat", i + 1);
        FILE *o = ns_plot_data_open(c, file, path, sizeof path);
        if (!o) {
            st = NS_EIO;
        } else {
            size_t fc = 0;
            fputs("# step cond drift_first drift_prev eff_rank alignment trace\n", o);
            for (size_t k = 0; k < s.f[i].n; k++) {
                double step = (double)s.f[i].step[k];
                ckpt_path(g, sizeof g, s.f[i].step[k], "");
                double d0 = NAN, d1 = NAN, cond = attr(f, g, "condition_number");
                /* The first checkpoint's drift is 0 by definition: not a
                 * point worth drawing. */
                for (size_t q = 0; k > 0 && q < nd; q++)
                    if (ds[q] == step) {
                        d0 = di[q];
                        d1 = dp[q];
                        ndrift++;
                    }
                if (isfinite(cond) && cond > 0) {
                    fc++;
                    clo = cond < clo ? cond : clo;
                    chi = cond > chi ? cond : chi;
                }
                fprintf(o, "%llu", (unsigned long long)s.f[i].step[k]);
                ns_plot_data_num(o, cond);
                ns_plot_data_num(o, d0);
                ns_plot_data_num(o, d1);
                ns_plot_data_num(o, attr(f, g, "effective_rank"));
                ns_plot_data_num(o, attr(f, g, "alignment"));
                ns_plot_data_num(o, attr(f, g, "trace"));
                fputc('\n', o);
                maxstep = step > maxstep ? step : maxstep;
            }
            ncond += fc;
            ns_sb_appendf(&condok, "%s%d", i ? " " : "", fc > 0);
            st = ns_plot_data_close(o, path);
        }
        free(di);
        free(dp);
        free(ds);
    }
    st = ns_plot_sb_var(c, &condok, "condok", st);
    st = ns_plot_sb_var(c, &nodrift, "nodrift", st);
    if (!st) st = ns_plot_var_num(c, "multi", (double)multi);
    if (!st) st = ns_plot_var_num(c, "maxstep", maxstep);
    if (!st) st = ns_plot_var_num(c, "ndrift", (double)ndrift);
    if (!st) st = ns_plot_var_num(c, "ncond", (double)ncond);
    if (!st) st = ns_plot_var_num(c, "condlo", ncond ? clo : 1);
    if (!st) st = ns_plot_var_num(c, "condhi", ncond ? chi : 10);
    ntk_set_release(&s);
    return st;
}

/* -------------------------------------------------------------- layers */

int ns_plot_export_ntk_layers(ns_plot_ctx *c)
{
    ntk_set s;
    int st = ntk_set_load(c, &s);
    if (st)
        return st;
    char path[1200], file[64], g[128];
    double maxstep = 1, lo = INFINITY, hi = 0;
    ns_sb nl = NS_SB_INIT, names = NS_SB_INIT, nst = NS_SB_INIT, first = NS_SB_INIT, *note = calloc(s.n, sizeof *note);
    if (!note) {
        ntk_set_release(&s);
        return ns_error(NS_ENOMEM, "out of memory");
    }
    st = check_ckpts(c, &s, NS_NTK_LAYER_TRACE, note);
    if (!st)
        st = labels_var(c, &s);
    for (size_t i = 0; !st && i < s.n; i++) {
        ns_hid f = c->fids[i];
        /* The layers: those of the first checkpoint that has them. */
        size_t nlay = 0;
        char lnames[8192] = "";
        for (size_t k = 0; k < s.f[i].n && !nlay; k++) {
            int nd;
            size_t dims[8];
            ckpt_path(g, sizeof g, s.f[i].step[k], NS_NTK_LAYER_TRACE);
            if (ns_h5_exists(f, g) && !ns_h5_shape(f, g, &nd, dims, &nlay))
                ns_h5_get_str(f, g, "layers", lnames, sizeof lnames);
        }
        snprintf(file, sizeof file, "layers%zu.dat", i + 1);
        FILE *o = ns_plot_data_open(c, file, path, sizeof path);
        if (!o) {
            st = NS_EIO;
            break;
        }
        double *one = calloc(nlay ? nlay : 1, sizeof *one);
        fputs("# step share_1 ... share_L (layer trace / sum of the layers' traces)\n", o);
        for (size_t k = 0; k < s.f[i].n && !st && one; k++) {
            double *t = NULL;
            size_t n = 0;
            ckpt_path(g, sizeof g, s.f[i].step[k], NS_NTK_LAYER_TRACE);
            if (ns_h5_exists(f, g) && (st = ns_h5_read_double_alloc(f, g, &t, &n)))
                break;
            double sum = 0;
            for (size_t q = 0; q < n; q++)
                sum += t[q];
            fprintf(o, "%llu", (unsigned long long)s.f[i].step[k]);
            for (size_t q = 0; q < nlay; q++) {
                double v = q < n && sum > 0 ? t[q] / sum : NAN;
                ns_plot_data_num(o, v);
                if (v > 0) {
                    lo = v < lo ? v : lo;
                    hi = v > hi ? v : hi;
                }
                if (t)
                    one[q] = v;
            }
            fputc('\n', o);
            maxstep = (double)s.f[i].step[k] > maxstep ? (double)s.f[i].step[k] : maxstep;
            free(t);
        }
        int cl = ns_plot_data_close(o, path);
        st = st ? st : cl;
        if (!one && !st)
            st = ns_error(NS_ENOMEM, "out of memory");

        /* Layer names: comma-separated in the file, one word each here;
         * "layer j" where the attribute is missing or short. */
        size_t have = 0;
        char *save = NULL;
        for (char *w = strtok_r(lnames, ",", &save); w && have < nlay;
             w = strtok_r(NULL, ",", &save), have++) {
            ns_plot_clean(w, '_');
            ns_sb_appendf(&names, "%s%s", names.len ? " " : "", w);
        }
        for (; have < nlay; have++)
            ns_sb_appendf(&names, "%slayer_%zu", names.len ? " " : "", have + 1);
        ns_sb_appendf(&nl, "%s%zu", i ? " " : "", nlay);
        ns_sb_appendf(&nst, "%s%zu", i ? " " : "", s.f[i].n);
        ns_sb_appendf(&first, "%s%llu", i ? " " : "", (unsigned long long)s.f[i].step[0]);

        /* One checkpoint: bars by layer read better than lone points. */
        if (!st && s.f[i].n == 1) {
            snprintf(file, sizeof file, "bars%zu.dat", i + 1);
            if (!(o = ns_plot_data_open(c, file, path, sizeof path)))
                st = NS_EIO;
            for (size_t q = 0; !st && q < nlay; q++) {
                fprintf(o, "%zu", q + 1);
                ns_plot_data_num(o, one[q]);
                fputc('\n', o);
            }
            if (o && !st)
                st = ns_plot_data_close(o, path);
        }
        free(one);
    }
    st = ns_plot_sb_var(c, &nl, "nlayers", st);
    st = ns_plot_sb_var(c, &names, "layernames", st);
    st = ns_plot_sb_var(c, &nst, "nsteps", st);
    st = ns_plot_sb_var(c, &first, "firststeps", st);
    st = notes_var(c, note, s.n, "notes", st);
    if (!st) st = ns_plot_var_num(c, "maxstep", maxstep);
    if (!st) st = ns_plot_var_num(c, "sharelo", isfinite(lo) ? lo : 1e-3);
    if (!st) st = ns_plot_var_num(c, "sharehi", hi > 0 ? hi : 1);
    ntk_set_release(&s);
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
    ntk_set s;
    int st = ntk_set_load(c, &s);
    if (st)
        return st;
    st = labels_var(c, &s);
    ns_hid f = c->fids[0];
    if (!st && !ns_h5_exists(f, DEPTH NS_NTK_DEPTH_COND))
        st = ns_error(NS_EFORMAT, "cannot read '%s': no analytic kernel ('" ANALYTIC "' is "
                      "missing; run normscope ntk with --analytic)", c->paths[0]);
    if (!st) st = ns_h5_read_double_alloc(f, DEPTH NS_NTK_DEPTH_DEPTH, &d, &n);
    if (!st) st = ns_h5_read_double_alloc(f, DEPTH NS_NTK_DEPTH_COND, &c0, &n0);
    if (!st) st = ns_h5_read_double_alloc(f, DEPTH NS_NTK_DEPTH_COND_WM, &c1, &n1);
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
    o = NULL;
    if (!st && !(o = ns_plot_data_open(c, "points.dat", path, sizeof path)))
        st = NS_EIO;
    for (size_t i = 0; !st && i < c->n; i++) {
        ckpt_path(g, sizeof g, s.f[i].step[0], "");
        double dep = attr(c->fids[i], g, "depth"), oc = attr(c->fids[i], g, "output_condition_number");
        double ac = attr(c->fids[i], ANALYTIC, "condition_number");
        int64_t wm = 0;
        ns_h5_get_int(c->fids[i], ANALYTIC, "weight_mean", &wm);
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
    ntk_set_release(&s);
    return st;
}
