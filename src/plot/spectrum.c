/*
 * Figures of `normscope spectrum` result files (the /spectrum group written
 * by src/analysis/spectrum.c; its names are the NS_SPEC_* macros of
 * include/normscope/spectrum.h).  Every kind reads the last checkpoint of
 * each file.
 *   act-spectrum  plots/act-spectrum.gp: each layer's covariance
 *                 eigenvalues divided by the largest against their rank,
 *                 log-log, one colour per layer from shallow (dark) to deep
 *                 (light), one panel per file.  act<f>.dat: one block per
 *                 layer (gnuplot index k), rows: rank lambda/lambda_1 (NaN
 *                 at or below NS_COND_FLOOR: rounding noise of a singular
 *                 covariance).
 *   whitening     plots/whitening.gp: the whitening metrics against the
 *                 layer's index, one colour per file.  white<f>.dat: index
 *                 condition_number effective_rank/F participation_ratio/F
 *                 mean_abs_corr corr_identity_distance mean_cosine
 *                 activation(0/1) features.
 *   channels      plots/channels.gp: box plots of the first CHAN_SHOWN
 *                 channels of up to four layers per file (activation layers
 *                 where there are any, evenly spaced through depth), a row
 *                 per file (MimicNorm, Figures 2 and 3).  chan<f>.dat: one
 *                 block per layer, rows: channel q1 q5 q25 q50 q75 q95 q99.
 *   weight-esd    plots/weight-esd.gp: the empirical density of the
 *                 eigenvalues of W^T W (singular values squared) on
 *                 log-spaced bins over each file's own range (weights of
 *                 different scale each get their resolution) with the
 *                 fitted power law
 *                 x^-alpha above xmin (Clauset, Shalizi and Newman 2009, as
 *                 fitted by the analysis), up to six weights evenly spaced
 *                 through depth, files overlaid.  esd<f>.dat: one block per
 *                 panel, rows: x density (the left and right edge of each
 *                 bin, NaN for an empty one); fit<f>.dat: one block per
 *                 panel, rows: x density of the fit.
 *
 * Every input is checked for a /spectrum group with a checkpoint before a
 * data file is written, so bad input leaves nothing behind.  A layer that
 * lacks a data set is left out with a note on stderr and in the figure; a
 * kind fails only when no file holds anything it can draw.
 *
 * Labels come from the result file: the run's "norm arch" that /spectrum
 * carries, else the base name of the source run file; the step drawn, the
 * sample count, data set, mode, --at and --pool are added where the files
 * differ, and the result file's name where labels still collide.  What
 * the files share goes into the subtitle (for one file: its label, step,
 * samples and mode).
 */
#include "internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "normscope/spectrum.h"

/* Channels drawn per layer by `channels`, layers per file, panels of
 * `weight-esd`. */
#define CHAN_SHOWN 30
#define CHAN_LAYERS 4
#define ESD_PANELS 6

/* ------------------------------------------------------------- strings */

/* -------------------------------------------------------------- inputs */

/* One group of the last checkpoint: a layer's statistics or a weight's
 * singular values. */
typedef struct spec_layer {
    char name[64];
    char kind[32];
    int64_t index;  /* position in the network (-1: not recorded) */
    int act;        /* an activation layer */
} spec_layer;

typedef struct spec_file {
    uint64_t step;       /* the last checkpoint */
    spec_layer *lay;     /* /spectrum/<step>/<layer>, by index */
    size_t nlay;
    spec_layer *w;       /* /spectrum/<step>/weights/<layer>, by index */
    size_t nw;
} spec_file;

typedef struct spec_set {
    spec_file *f;
    size_t n;
    char (*label)[NS_PLOT_LABEL_MAX]; /* legend labels and panel titles */
    char subtitle[2 * NS_PLOT_LABEL_MAX];
} spec_set;

static void spec_set_release(spec_set *s)
{
    for (size_t i = 0; s->f && i < s->n; i++) {
        free(s->f[i].lay);
        free(s->f[i].w);
    }
    free(s->f);
    free(s->label);
    memset(s, 0, sizeof *s);
}

/* An activation layer, as the analysis's `role` attribute says. */
static int is_activation(const char *role)
{
    return !strcmp(role, "activation");
}

static int cmp_layer(const void *a, const void *b)
{
    const spec_layer *x = a, *y = b;
    if (x->index != y->index)
        return (x->index > y->index) - (x->index < y->index);
    return strcmp(x->name, y->name);
}

/* The groups below group that carry an `index` attribute (layers, weights),
 * ordered by it, into *out. */
static int read_layers(ns_hid fid, const char *path, const char *group, spec_layer **out,
                       size_t *nout)
{
    char **names = NULL;
    size_t n = 0;
    *out = NULL;
    *nout = 0;
    int st = ns_h5_children(fid, group, &names, &n);
    if (st == NS_ENOMEM)
        return ns_error(NS_ENOMEM, "cannot read '%s': out of memory listing %s", path, group);
    if (st)
        return ns_error(NS_EFORMAT, "cannot read '%s': %s is not a group", path, group);
    spec_layer *L = calloc(n ? n : 1, sizeof *L);
    if (!L) {
        ns_h5_names_free(names, n);
        return ns_error(NS_ENOMEM, "cannot read '%s': out of memory listing %s", path, group);
    }
    size_t k = 0;
    for (size_t j = 0; j < n; j++) {
        char g[512];
        if ((size_t)snprintf(g, sizeof g, "%s/%s", group, names[j]) >= sizeof g ||
            !ns_h5_attr_exists(fid, g, "index"))
            continue;
        spec_layer *l = &L[k++];
        snprintf(l->name, sizeof l->name, "%s", names[j]);
        if (ns_h5_get_int(fid, g, "index", &l->index) != NS_OK)
            l->index = -1;
        if (ns_h5_get_str(fid, g, "kind", l->kind, sizeof l->kind) != NS_OK)
            l->kind[0] = '\0';
        char role[32];
        if (ns_h5_get_str(fid, g, "role", role, sizeof role) != NS_OK)
            role[0] = '\0';
        l->act = is_activation(role);
    }
    ns_h5_names_free(names, n);
    qsort(L, k, sizeof *L, cmp_layer);
    *out = L;
    *nout = k;
    return NS_OK;
}

/* The last checkpoint of /spectrum and its layers and weights. */
static int read_file(const ns_plot_ctx *c, size_t i, spec_file *f)
{
    ns_hid fid = c->fids[i];
    if (!ns_h5_exists(fid, NS_SPEC_GROUP))
        return ns_error(NS_EFORMAT, "cannot read '%s': no spectrum results ('" NS_SPEC_GROUP
                        "' is missing; write them with normscope spectrum)", c->paths[i]);
    char **names;
    size_t n;
    int st = ns_h5_children(fid, NS_SPEC_GROUP, &names, &n);
    if (st == NS_ENOMEM)
        return ns_error(NS_ENOMEM, "cannot read '%s': out of memory listing " NS_SPEC_GROUP,
                        c->paths[i]);
    if (st)
        return ns_error(NS_EFORMAT, "cannot read '%s': " NS_SPEC_GROUP " is not a group",
                        c->paths[i]);
    int found = 0;
    for (size_t k = 0; k < n; k++) {
        char *end;
        const char *name = names[k];
        unsigned long long v = strtoull(name, &end, 10);
        if (!*end && end != name && *name >= '0' && *name <= '9' && (!found || v > f->step)) {
            f->step = v;
            found = 1;
        }
    }
    ns_h5_names_free(names, n);
    if (!found)
        return ns_error(NS_EFORMAT, "cannot read '%s': " NS_SPEC_GROUP " holds no checkpoint",
                        c->paths[i]);
    char g[128];
    snprintf(g, sizeof g, NS_SPEC_GROUP "/%llu", (unsigned long long)f->step);
    if ((st = read_layers(fid, c->paths[i], g, &f->lay, &f->nlay)))
        return st;
    snprintf(g, sizeof g, NS_SPEC_GROUP "/%llu/" NS_SPEC_WEIGHTS, (unsigned long long)f->step);
    if (ns_h5_exists(fid, g))
        st = read_layers(fid, c->paths[i], g, &f->w, &f->nw);
    return st;
}

static void get_str(ns_hid f, const char *name, char *buf, size_t len)
{
    if (ns_h5_get_str(f, NS_SPEC_GROUP, name, buf, len) != NS_OK)
        buf[0] = '\0';
}

static int64_t get_int(ns_hid f, const char *name)
{
    int64_t v;
    return ns_h5_get_int(f, NS_SPEC_GROUP, name, &v) == NS_OK ? v : -1;
}

/* The run's name: "norm arch" where /spectrum has them, else the source
 * run file's base name, else the result file's. */
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

/* What tells results of the same run apart: string attributes of /spectrum
 * (mode, data, at), its integers n and pool, and the checkpoint drawn. */
enum { KEY_STEP, KEY_N, KEY_DATA, KEY_MODE, KEY_AT, KEY_POOL, NKEYS };

/* The value of key q for file i, as it reads in a label (empty: nothing
 * worth saying, as for --at post and no --pool when all files agree). */
static void key_text(const ns_plot_ctx *c, const spec_set *s, size_t i, unsigned q, int differ,
                     char *buf, size_t len)
{
    ns_hid f = c->fids[i];
    char v[64];
    int64_t n;
    buf[0] = '\0';
    switch (q) {
    case KEY_STEP:
        snprintf(buf, len, "step %llu", (unsigned long long)s->f[i].step);
        break;
    case KEY_N:
        if ((n = get_int(f, "n")) > 0)
            snprintf(buf, len, "%lld samples", (long long)n);
        break;
    case KEY_DATA:
        get_str(f, "data", v, sizeof v);
        snprintf(buf, len, "%s", v);
        break;
    case KEY_MODE:
        get_str(f, "mode", v, sizeof v);
        if (*v)
            snprintf(buf, len, "%s mode", v);
        break;
    case KEY_AT:
        get_str(f, "at", v, sizeof v);
        if (!strcmp(v, "pre") || differ)
            snprintf(buf, len, "%s", !strcmp(v, "pre") ? "layer inputs" : "layer outputs");
        break;
    default:
        n = get_int(f, "pool");
        if (n > 0 || differ)
            snprintf(buf, len, "%s", n > 0 ? "pooled" : "not pooled");
        break;
    }
}

static unsigned differing(const ns_plot_ctx *c, const spec_set *s)
{
    unsigned d = 0;
    for (unsigned q = 0; q < NKEYS; q++)
        for (size_t i = 1; i < c->n; i++) {
            char a[96], b[96];
            key_text(c, s, i, q, 1, a, sizeof a);
            key_text(c, s, 0, q, 1, b, sizeof b);
            d |= (unsigned)(strcmp(a, b) != 0) << q;
        }
    return d;
}

/* Labels "<run> (<what differs>)[ [file]]" and the subtitle: for one file
 * "<run>: <step, samples, data, mode...>", for several what they share. */
static void make_labels(const ns_plot_ctx *c, spec_set *s)
{
    unsigned d = differing(c, s);
    ns_sb extra = NS_SB_INIT;
    char t[96];
    for (size_t i = 0; i < c->n; i++) {
        char run[NS_PLOT_LABEL_MAX];
        run_name(c, i, run, sizeof run);
        ns_sb_reset(&extra);
        for (unsigned q = 0; q < NKEYS; q++) {
            key_text(c, s, i, q, 1, t, sizeof t);
            if ((d >> q & 1) && *t)
                ns_sb_appendf(&extra, "%s%s", extra.len ? ", " : "", t);
        }
        const char *ex = ns_sb_str(&extra);
        snprintf(s->label[i], NS_PLOT_LABEL_MAX, "%.100s%s%.50s%s", run, *ex ? " (" : "", ex,
                 *ex ? ")" : "");
    }
    /* What the files share, "samples of data" read together. */
    ns_sb_reset(&extra);
    for (unsigned q = 0; q < NKEYS; q++) {
        key_text(c, s, 0, q, 0, t, sizeof t);
        if (!(d >> q & 1) && *t)
            ns_sb_appendf(&extra, "%s%s", !extra.len ? "" : q == KEY_DATA && !(d >> KEY_N & 1)
                                                             ? " of " : ", ", t);
    }
    char run[NS_PLOT_LABEL_MAX];
    run_name(c, 0, run, sizeof run);
    snprintf(s->subtitle, sizeof s->subtitle, "%s%s%s", c->n == 1 ? run : "",
             c->n == 1 && extra.len ? ": " : "", ns_sb_str(&extra));
    ns_sb_release(&extra);
    /* Labels that still collide get the result file's name, or its path
     * where the names collide too (the same file given twice). */
    char (*tag)[NS_PLOT_LABEL_MAX] = calloc(c->n, sizeof *tag);
    char *dup = calloc(c->n, 1);
    for (int pass = 0; pass < 2 && tag && dup; pass++) {
        char x[2 * NS_PLOT_LABEL_MAX], y[2 * NS_PLOT_LABEL_MAX];
        for (size_t i = 0; i < c->n; i++) {
            dup[i] = 0;
            snprintf(x, sizeof x, "%s%s", s->label[i], tag[i]);
            for (size_t j = 0; j < c->n; j++) {
                snprintf(y, sizeof y, "%s%s", s->label[j], tag[j]);
                dup[i] |= j != i && strcmp(x, y) == 0;
            }
        }
        for (size_t i = 0; i < c->n; i++)
            if (dup[i])
                snprintf(tag[i], sizeof tag[i], " [%.100s]",
                         pass ? c->paths[i] : ns_plot_base(c->paths[i]));
    }
    for (size_t i = 0; i < c->n; i++) {
        size_t u = strlen(s->label[i]);
        if (tag && u < NS_PLOT_LABEL_MAX)
            snprintf(s->label[i] + u, NS_PLOT_LABEL_MAX - u, "%s", tag[i]);
        ns_plot_clean(s->label[i], 0);
    }
    ns_plot_clean(s->subtitle, 0);
    free(tag);
    free(dup);
}

/* Opens every input's /spectrum (failing before anything is written) and
 * makes the labels. */
static int spec_set_load(const ns_plot_ctx *c, spec_set *s)
{
    memset(s, 0, sizeof *s);
    s->n = c->n;
    s->f = calloc(c->n, sizeof *s->f);
    s->label = calloc(c->n, sizeof *s->label);
    if (!s->f || !s->label) {
        spec_set_release(s);
        return ns_error(NS_ENOMEM, "out of memory");
    }
    int st = NS_OK;
    for (size_t i = 0; i < c->n && !st; i++)
        st = read_file(c, i, &s->f[i]);
    if (st) {
        spec_set_release(s);
        return st;
    }
    make_labels(c, s);
    return NS_OK;
}

/* labels ('|'-separated), subtitle and nfiles. */
static int labels_var(ns_plot_ctx *c, const spec_set *s)
{
    ns_sb l = NS_SB_INIT;
    for (size_t i = 0; i < s->n; i++)
        ns_sb_appendf(&l, "%s%s", i ? "|" : "", s->label[i]);
    int st = ns_plot_sb_var(c, &l, "labels", NS_OK);
    if (!st)
        st = ns_plot_var_str(c, "subtitle", s->subtitle);
    if (!st)
        st = ns_plot_var_num(c, "nfiles", (double)c->n);
    return st;
}

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

/* "/spectrum/<step>/<layer>/<name>" or, for a weight,
 * "/spectrum/<step>/weights/<layer>/<name>" (name may be empty: the group). */
static void lpath(char *buf, size_t len, const spec_file *f, const spec_layer *l, int weight,
                  const char *name)
{
    snprintf(buf, len, NS_SPEC_GROUP "/%llu/%s%s%s%s", (unsigned long long)f->step,
             weight ? NS_SPEC_WEIGHTS "/" : "", l->name, *name ? "/" : "", name);
}

static double attr(ns_hid f, const char *g, const char *name)
{
    double v;
    return ns_h5_get_double(f, g, name, &v) == NS_OK ? v : NAN;
}

/* Which layers of every file (the weights where weight is set) hold the
 * data set name, into has[i][j]; per file a note ("no NAME for 03-relu",
 * "no NAME for 3 of 7 layers", "no weights in this file"), repeated on
 * stderr; fails (nothing written yet) when no file has any. */
static int check_layers(const ns_plot_ctx *c, const spec_set *s, int weight, const char *name,
                        ns_sb *note, char **has)
{
    size_t total = 0;
    char p[512];
    for (size_t i = 0; i < s->n; i++) {
        const spec_file *f = &s->f[i];
        size_t nl = weight ? f->nw : f->nlay, have = 0, miss = 0;
        const spec_layer *L = weight ? f->w : f->lay;
        const char *first = "";
        has[i] = calloc(nl ? nl : 1, 1);
        if (!has[i])
            return ns_error(NS_ENOMEM, "out of memory");
        for (size_t j = 0; j < nl; j++) {
            lpath(p, sizeof p, f, &L[j], weight, name);
            has[i][j] = (char)ns_h5_exists(c->fids[i], p);
            if (has[i][j])
                have++;
            else if (!miss++)
                first = L[j].name;
        }
        total += have;
        if (!nl && weight)
            ns_sb_appendf(&note[i], "no weight spectra at step %llu",
                          (unsigned long long)f->step);
        else if (!nl)
            ns_sb_appendf(&note[i], "no layers at step %llu", (unsigned long long)f->step);
        else if (!have)
            ns_sb_appendf(&note[i], "no %s in this file", name);
        else if (miss == 1)
            ns_sb_appendf(&note[i], "no %s for %s", name, first);
        else if (miss)
            ns_sb_appendf(&note[i], "no %s for %zu of %zu layers", name, miss, nl);
    }
    if (!total && s->n == 1 && weight)
        return ns_error(NS_EFORMAT, "cannot read '%s': no weight spectra at step %llu (write "
                        "them with normscope spectrum, without --no-weights)", c->paths[0],
                        (unsigned long long)s->f[0].step);
    if (!total && s->n == 1)
        return ns_error(NS_EFORMAT, "cannot read '%s': no layer at step %llu holds %s (write "
                        "them with normscope spectrum)", c->paths[0],
                        (unsigned long long)s->f[0].step, name);
    if (!total)
        return ns_error(NS_EFORMAT, "cannot read '%s' and %zu other file%s: no %s in the last "
                        "checkpoint", c->paths[0], s->n - 1, s->n > 2 ? "s" : "",
                        weight ? "weight spectra" : name);
    for (size_t i = 0; i < s->n; i++)
        if (note[i].len)
            ns_note("normscope: '%s': %s (left out of the figure)", c->paths[i],
                    ns_sb_str(&note[i]));
    return NS_OK;
}

static void has_free(char **has, size_t n)
{
    for (size_t i = 0; has && i < n; i++)
        free(has[i]);
    free(has);
}

/* k of n evenly spaced (the first and the last among them), ascending and
 * distinct, into pick; returns how many (min(k, n)). */
static size_t spread(size_t n, size_t k, size_t *pick)
{
    if (k > n)
        k = n;
    for (size_t j = 0; j < k; j++)
        pick[j] = k > 1 ? (size_t)floor((double)j * (double)(n - 1) / (double)(k - 1) + 0.5) : 0;
    return k;
}

/* ------------------------------------------------------ act-spectrum */

int ns_plot_export_act_spectrum(ns_plot_ctx *c)
{
    spec_set s;
    int st = spec_set_load(c, &s);
    if (st)
        return st;
    ns_sb nl = NS_SB_INIT, names = NS_SB_INIT, *note = calloc(s.n, sizeof *note);
    char **has = calloc(s.n, sizeof *has);
    char path[1200], file[64], g[512];
    double rlo = INFINITY;
    size_t maxrank = 2;
    if (!note || !has) {
        free(note);
        free(has);
        spec_set_release(&s);
        return ns_error(NS_ENOMEM, "out of memory");
    }
    st = check_layers(c, &s, 0, NS_SPEC_COV_EIG, note, has);
    if (!st)
        st = labels_var(c, &s);
    for (size_t i = 0; !st && i < s.n; i++) {
        const spec_file *f = &s.f[i];
        snprintf(file, sizeof file, "act%zu.dat", i + 1);
        FILE *o = ns_plot_data_open(c, file, path, sizeof path);
        if (!o) {
            st = NS_EIO;
            break;
        }
        size_t blocks = 0;
        for (size_t j = 0; j < f->nlay && !st; j++) {
            double *ev = NULL;
            size_t n = 0;
            if (!has[i][j])
                continue;
            lpath(g, sizeof g, f, &f->lay[j], 0, NS_SPEC_COV_EIG);
            if ((st = ns_h5_read_double_alloc(c->fids[i], g, &ev, &n)))
                break;
            fprintf(o, "# %s (index %lld, %s): rank lambda/lambda_1\n", f->lay[j].name,
                    (long long)f->lay[j].index, f->lay[j].kind);
            double top = n && ev[0] > 0 ? ev[0] : NAN;
            for (size_t r = 0; r < n; r++) {
                /* At or below the floor of the condition number an
                 * eigenvalue is rounding noise of a singular covariance. */
                double v = ev[r] / top;
                if (!(v > NS_COND_FLOOR))
                    v = NAN;
                fprintf(o, "%zu", r + 1);
                ns_plot_data_num(o, v);
                fputc('\n', o);
                rlo = isfinite(v) && v < rlo ? v : rlo;
            }
            /* A block without rows would shift gnuplot's index count. */
            if (!n)
                fputs("1 NaN\n", o);
            fputs("\n\n", o);
            maxrank = n > maxrank ? n : maxrank;
            free(ev);
            char nm[64];
            snprintf(nm, sizeof nm, "%s", f->lay[j].name);
            ns_plot_clean(nm, '_');
            ns_sb_appendf(&names, "%s%s", names.len ? " " : "", nm);
            blocks++;
        }
        ns_sb_appendf(&nl, "%s%zu", i ? " " : "", blocks);
        int cl = ns_plot_data_close(o, path);
        st = st ? st : cl;
    }
    st = notes_var(c, note, s.n, "notes", st);
    st = ns_plot_sb_var(c, &nl, "nlayers", st);
    st = ns_plot_sb_var(c, &names, "layernames", st);
    if (!st) st = ns_plot_var_num(c, "maxrank", (double)maxrank);
    if (!st) st = ns_plot_var_num(c, "rello", isfinite(rlo) && rlo < 1 ? rlo : 0.1);
    has_free(has, s.n);
    spec_set_release(&s);
    return st;
}

/* --------------------------------------------------------- whitening */

int ns_plot_export_whitening(ns_plot_ctx *c)
{
    spec_set s;
    int st = spec_set_load(c, &s);
    if (st)
        return st;
    char path[1200], file[64], g[512];
    double clo = INFINITY, chi = 0, maxidx = 1;
    ns_sb ticks = NS_SB_INIT, *note = calloc(s.n, sizeof *note);
    if (!note) {
        spec_set_release(&s);
        return ns_error(NS_ENOMEM, "out of memory");
    }
    size_t total = 0;
    for (size_t i = 0; i < s.n; i++) {
        total += s.f[i].nlay;
        if (!s.f[i].nlay) {
            ns_sb_appendf(&note[i], "no layers at step %llu", (unsigned long long)s.f[i].step);
            ns_note("normscope: '%s': %s (left out of the figure)", c->paths[i],
                    ns_sb_str(&note[i]));
        }
    }
    if (!total)
        st = ns_error(NS_EFORMAT, "cannot read '%s'%s: no layer statistics in the last "
                      "checkpoint", c->paths[0], s.n > 1 ? " and the other files" : "");
    if (!st)
        st = labels_var(c, &s);
    for (size_t i = 0; !st && i < s.n; i++) {
        const spec_file *f = &s.f[i];
        ns_hid fid = c->fids[i];
        snprintf(file, sizeof file, "white%zu.dat", i + 1);
        FILE *o = ns_plot_data_open(c, file, path, sizeof path);
        if (!o) {
            st = NS_EIO;
            break;
        }
        fputs("# index condition_number effective_rank/F participation_ratio/F mean_abs_corr "
              "corr_identity_distance mean_cosine activation F\n", o);
        for (size_t j = 0; j < f->nlay; j++) {
            const spec_layer *l = &f->lay[j];
            lpath(g, sizeof g, f, l, 0, "");
            double F = attr(fid, g, "features"), cond = attr(fid, g, "condition_number");
            double x = l->index >= 0 ? (double)l->index : (double)j;
            fprintf(o, "%.0f", x);
            ns_plot_data_num(o, cond);
            ns_plot_data_num(o, attr(fid, g, "effective_rank") / F);
            ns_plot_data_num(o, attr(fid, g, "participation_ratio") / F);
            ns_plot_data_num(o, attr(fid, g, "mean_abs_corr"));
            ns_plot_data_num(o, attr(fid, g, "corr_identity_distance"));
            ns_plot_data_num(o, attr(fid, g, "mean_cosine"));
            fprintf(o, " %d", l->act);
            ns_plot_data_num(o, F);
            fputc('\n', o);
            if (isfinite(cond) && cond > 0) {
                clo = cond < clo ? cond : clo;
                chi = cond > chi ? cond : chi;
            }
            maxidx = x > maxidx ? x : maxidx;
        }
        st = ns_plot_data_close(o, path);
    }
    /* Layer names as tick labels where every file has the same layers. */
    int same = 1;
    for (size_t i = 1; i < s.n && same; i++) {
        same = s.f[i].nlay == s.f[0].nlay;
        for (size_t j = 0; same && j < s.f[0].nlay; j++)
            same = !strcmp(s.f[i].lay[j].name, s.f[0].lay[j].name) &&
                   s.f[i].lay[j].index == s.f[0].lay[j].index;
    }
    for (size_t j = 0; same && j < s.f[0].nlay; j++) {
        char nm[64];
        snprintf(nm, sizeof nm, "%s", s.f[0].lay[j].name);
        ns_plot_clean(nm, '_');
        ns_sb_appendf(&ticks, "%s%s %lld", j ? " " : "", nm,
                      (long long)(s.f[0].lay[j].index >= 0 ? s.f[0].lay[j].index : (int64_t)j));
    }
    st = ns_plot_sb_var(c, &ticks, "ticks", st);
    st = notes_var(c, note, s.n, "notes", st);
    if (!st) st = ns_plot_var_num(c, "maxindex", maxidx);
    if (!st) st = ns_plot_var_num(c, "condlo", isfinite(clo) ? clo : 1);
    if (!st) st = ns_plot_var_num(c, "condhi", chi > 0 ? chi : 10);
    if (!st) st = ns_plot_var_num(c, "condfloor", 1 / NS_COND_FLOOR);
    spec_set_release(&s);
    return st;
}

/* ---------------------------------------------------------- channels */

int ns_plot_export_channels(ns_plot_ctx *c)
{
    spec_set s;
    int st = spec_set_load(c, &s);
    if (st)
        return st;
    ns_sb nsel = NS_SB_INIT, titles = NS_SB_INIT, *note = calloc(s.n, sizeof *note);
    char **has = calloc(s.n, sizeof *has);
    char path[1200], file[64], g[512];
    size_t maxsel = 1;
    if (!note || !has) {
        free(note);
        free(has);
        spec_set_release(&s);
        return ns_error(NS_ENOMEM, "out of memory");
    }
    st = check_layers(c, &s, 0, NS_SPEC_QUANTILES, note, has);
    if (!st)
        st = labels_var(c, &s);
    for (size_t i = 0; !st && i < s.n; i++) {
        const spec_file *f = &s.f[i];
        ns_hid fid = c->fids[i];
        /* The candidates: activation layers that have quantiles, else
         * every layer that has them. */
        size_t *cand = malloc((f->nlay ? f->nlay : 1) * sizeof *cand), ncand = 0;
        size_t pick[CHAN_LAYERS], npick;
        if (!cand) {
            st = ns_error(NS_ENOMEM, "out of memory");
            break;
        }
        for (int any = 0; any < 2 && !ncand; any++)
            for (size_t j = 0; j < f->nlay; j++)
                if (has[i][j] && (any || f->lay[j].act))
                    cand[ncand++] = j;
        npick = spread(ncand, CHAN_LAYERS, pick);
        snprintf(file, sizeof file, "chan%zu.dat", i + 1);
        FILE *o = ns_plot_data_open(c, file, path, sizeof path);
        if (!o) {
            free(cand);
            st = NS_EIO;
            break;
        }
        size_t drawn = 0;
        for (size_t q = 0; q < npick && !st; q++) {
            const spec_layer *l = &f->lay[cand[pick[q]]];
            double *qu = NULL;
            size_t n = 0, dims[8];
            int nd = 0;
            lpath(g, sizeof g, f, l, 0, NS_SPEC_QUANTILES);
            if ((st = ns_h5_shape(fid, g, &nd, dims, &n)))
                break;
            if (nd != 2 || dims[1] != NS_NQUANT) {
                st = ns_error(NS_EFORMAT, "cannot read '%s': %s is %s, not channels x %d "
                              "quantiles", c->paths[i], g, nd == 2 ? "of another width"
                              : "not two-dimensional", NS_NQUANT);
                break;
            }
            if ((st = ns_h5_read_double_alloc(fid, g, &qu, &n)))
                break;
            size_t F = dims[0], show = F < CHAN_SHOWN ? F : CHAN_SHOWN;
            fprintf(o, "# %s (%s): channel q1 q5 q25 q50 q75 q95 q99\n", l->name, l->kind);
            for (size_t ch = 0; ch < show; ch++) {
                fprintf(o, "%zu", ch + 1);
                for (size_t k = 0; k < NS_NQUANT; k++)
                    ns_plot_data_num(o, qu[ch * NS_NQUANT + k]);
                fputc('\n', o);
            }
            if (!show)
                fputs("1 NaN NaN NaN NaN NaN NaN NaN\n", o);
            fputs("\n\n", o);
            free(qu);
            char t[160];
            snprintf(t, sizeof t, "%s: %s%zu of %zu channels", l->name,
                     show < F ? "first " : "", show, F);
            ns_plot_clean(t, 0);
            ns_sb_appendf(&titles, "%s%s", titles.len ? "|" : "", t);
            drawn++;
        }
        free(cand);
        int cl = ns_plot_data_close(o, path);
        st = st ? st : cl;
        ns_sb_appendf(&nsel, "%s%zu", i ? " " : "", drawn);
        maxsel = drawn > maxsel ? drawn : maxsel;
    }
    st = notes_var(c, note, s.n, "notes", st);
    st = ns_plot_sb_var(c, &nsel, "nsel", st);
    st = ns_plot_sb_var(c, &titles, "titles", st);
    if (!st) st = ns_plot_var_num(c, "maxsel", (double)maxsel);
    has_free(has, s.n);
    spec_set_release(&s);
    return st;
}

/* -------------------------------------------------------- weight-esd */

/* The eigenvalues of W^T W of one weight (the squares of the stored
 * singular values), positive ones only. */
static int read_esd(ns_hid fid, const char *g, double **ev, size_t *n)
{
    int st = ns_h5_read_double_alloc(fid, g, ev, n);
    if (st)
        return st;
    size_t k = 0;
    for (size_t r = 0; r < *n; r++) {
        double v = (*ev)[r] * (*ev)[r];
        if (isfinite(v) && v > 0)
            (*ev)[k++] = v;
    }
    *n = k;
    return NS_OK;
}

/* One block of esd<f>.dat: the density of ev[0..n) on about 1.5 sqrt(n)
 * log-spaced bins over its own range (files of different scale each get
 * their resolution), rows at the left and right edge of each bin, NaN for
 * an empty one. */
static int esd_block(FILE *o, const char *name, const double *ev, size_t n)
{
    fprintf(o, "# %s: x density (left and right edge of each bin)\n", name);
    double lo = INFINITY, hi = 0;
    for (size_t r = 0; r < n; r++) {
        lo = ev[r] < lo ? ev[r] : lo;
        hi = ev[r] > hi ? ev[r] : hi;
    }
    size_t nb = (size_t)ceil(1.5 * sqrt((double)n));
    nb = nb < 5 ? 5 : nb > 40 ? 40 : nb;
    /* A range of one value gets a decade around it. */
    double a = log(lo), b = log(hi);
    if (!(hi > lo)) {
        a -= log(10) / 2;
        b += log(10) / 2;
    }
    double w = (b - a) / (double)nb;
    size_t *cnt = n ? calloc(nb, sizeof *cnt) : NULL;
    if (n && !cnt)
        return ns_error(NS_ENOMEM, "out of memory");
    for (size_t r = 0; r < n; r++) {
        double t = (log(ev[r]) - a) / w;
        size_t k = t <= 0 ? 0 : t >= (double)nb ? nb - 1 : (size_t)t;
        cnt[k]++;
    }
    for (size_t k = 0; k < nb && n; k++) {
        double e0 = exp(a + (double)k * w), e1 = exp(a + (double)(k + 1) * w);
        double d = cnt[k] ? (double)cnt[k] / ((double)n * (e1 - e0)) : NAN;
        for (int side = 0; side < 2; side++) {
            ns_plot_data_num(o, side ? e1 : e0);
            ns_plot_data_num(o, d);
            fputc('\n', o);
        }
    }
    /* A block without rows would shift gnuplot's index count. */
    if (!n)
        fputs("NaN NaN\n", o);
    fputs("\n\n", o);
    free(cnt);
    return NS_OK;
}

/* One block of fit<f>.dat: the fitted law as a density of all n
 * eigenvalues, the tail's share ntail / n times (alpha - 1) / xmin
 * (x / xmin)^-alpha, from xmin to the largest eigenvalue.  1 when there
 * is a law to draw. */
static int fit_block(FILE *o, const char *name, const double *ev, size_t n, double alpha,
                     double xmin, double ntail)
{
    fprintf(o, "# %s: x density of the power law, alpha %g, xmin %g, tail %g\n", name, alpha,
            xmin, ntail);
    double top = 0;
    for (size_t r = 0; r < n; r++)
        top = ev[r] > top ? ev[r] : top;
    int drawn = isfinite(alpha) && alpha > 1 && xmin > 0 && ntail > 0 && n && top > xmin;
    for (int k = 0; drawn && k <= 40; k++) {
        double x = xmin * pow(top / xmin, k / 40.0);
        ns_plot_data_num(o, x);
        ns_plot_data_num(o, ntail / (double)n * (alpha - 1) / xmin * pow(x / xmin, -alpha));
        fputc('\n', o);
    }
    if (!drawn)
        fputs("NaN NaN\n", o);
    fputs("\n\n", o);
    return drawn;
}

/* The title of panel p: the weights' names, each once, and how many
 * eigenvalues they have. */
static void esd_title(ns_sb *t, const char (*name)[64], const size_t *n, size_t nf)
{
    size_t lo = SIZE_MAX, hi = 0, used = t->len;
    for (size_t i = 0; i < nf; i++) {
        if (!name[i][0])
            continue;
        int seen = 0;
        for (size_t j = 0; j < i; j++)
            seen |= !strcmp(name[i], name[j]);
        if (!seen)
            ns_sb_appendf(t, "%s%s", t->len > used ? ", " : "", name[i]);
        lo = n[i] < lo ? n[i] : lo;
        hi = n[i] > hi ? n[i] : hi;
    }
    if (lo == hi)
        ns_sb_appendf(t, " (%zu eigenvalues)", hi);
    else if (hi)
        ns_sb_appendf(t, " (%zu to %zu eigenvalues)", lo, hi);
}

int ns_plot_export_weight_esd(ns_plot_ctx *c)
{
    spec_set s;
    int st = spec_set_load(c, &s);
    if (st)
        return st;
    size_t nf = s.n, P = ESD_PANELS;
    ns_sb titles = NS_SB_INIT, alphas = NS_SB_INIT, xmins = NS_SB_INIT, hasw = NS_SB_INIT;
    ns_sb ranges = NS_SB_INIT;
    ns_sb *note = calloc(nf, sizeof *note);
    char **has = calloc(nf, sizeof *has);
    size_t *ncand = calloc(nf, sizeof *ncand), *nev = calloc(nf, sizeof *nev);
    size_t (*pick)[ESD_PANELS] = calloc(nf, sizeof *pick);
    FILE **oe = calloc(nf, sizeof *oe), **of = calloc(nf, sizeof *of);
    char (*pe)[1200] = calloc(nf, sizeof *pe), (*pf)[1200] = calloc(nf, sizeof *pf);
    char (*name)[64] = calloc(nf, sizeof *name);
    double **ev = calloc(nf, sizeof *ev);
    char file[64], g[512];
    if (!note || !has || !ncand || !nev || !pick || !oe || !of || !pe || !pf || !name || !ev)
        st = ns_error(NS_ENOMEM, "out of memory");
    if (!st)
        st = check_layers(c, &s, 1, NS_SPEC_SINGULAR, note, has);
    if (!st)
        st = labels_var(c, &s);
    /* Panels: as many as the file with the fewest weights has (up to
     * ESD_PANELS), so that each panel shows a different weight of every
     * file; the weights of each file evenly spaced through depth.  Files
     * without weights are left out. */
    for (size_t i = 0; !st && i < nf; i++) {
        for (size_t j = 0; j < s.f[i].nw; j++)
            ncand[i] += has[i][j] != 0;
        if (ncand[i] && ncand[i] < P)
            P = ncand[i];
    }
    for (size_t i = 0; !st && i < nf; i++) {
        size_t k = 0, at = 0;
        spread(ncand[i], P, pick[i]);
        /* pick[i][p]: from the rank among the weights with data to the
         * weight's place in s.f[i].w. */
        for (size_t j = 0; j < s.f[i].nw && k < P && ncand[i]; j++)
            if (has[i][j] && at++ == pick[i][k])
                pick[i][k++] = j;
        ns_sb_appendf(&hasw, "%s%d", i ? " " : "", ncand[i] > 0);
    }
    for (size_t i = 0; !st && i < nf; i++) {
        snprintf(file, sizeof file, "esd%zu.dat", i + 1);
        if (!(oe[i] = ns_plot_data_open(c, file, pe[i], sizeof pe[i]))) {
            st = NS_EIO;
            break;
        }
        snprintf(file, sizeof file, "fit%zu.dat", i + 1);
        if (!(of[i] = ns_plot_data_open(c, file, pf[i], sizeof pf[i])))
            st = NS_EIO;
    }
    for (size_t p = 0; !st && p < P; p++) {
        double lo = INFINITY, hi = 0;
        for (size_t i = 0; !st && i < nf; i++) {
            double al = NAN, xm = NAN, nt = NAN;
            free(ev[i]);
            ev[i] = NULL;
            nev[i] = 0;
            name[i][0] = '\0';
            if (ncand[i]) {
                const spec_layer *l = &s.f[i].w[pick[i][p]];
                snprintf(name[i], sizeof name[i], "%s", l->name);
                ns_plot_clean(name[i], 0);
                lpath(g, sizeof g, &s.f[i], l, 1, NS_SPEC_SINGULAR);
                if ((st = read_esd(c->fids[i], g, &ev[i], &nev[i])))
                    break;
                lpath(g, sizeof g, &s.f[i], l, 1, "");
                al = attr(c->fids[i], g, "alpha");
                xm = attr(c->fids[i], g, "alpha_xmin");
                nt = attr(c->fids[i], g, "alpha_ntail");
            }
            for (size_t r = 0; r < nev[i]; r++) {
                lo = ev[i][r] < lo ? ev[i][r] : lo;
                hi = ev[i][r] > hi ? ev[i][r] : hi;
            }
            const char *nm = name[i][0] ? name[i] : "-";
            if ((st = esd_block(oe[i], nm, ev[i], nev[i])))
                break;
            int fit = fit_block(of[i], nm, ev[i], nev[i], al, xm, nt);
            ns_sb_appendf(&alphas, "%s", i || p ? " " : "");
            ns_sb_appendf(&xmins, "%s", i || p ? " " : "");
            if (fit) {
                ns_sb_appendf(&alphas, "%.2f", al);
                ns_sb_appendf(&xmins, "%.3g", xm);
            } else {
                ns_sb_append(&alphas, "-");
                ns_sb_append(&xmins, "-");
            }
        }
        if (!st) {
            if (p)
                ns_sb_append(&titles, "|");
            esd_title(&titles, (const char (*)[64])name, nev, nf);
            /* The panel's x range: the eigenvalues of its files, a decade
             * where there is a single value or none. */
            if (!(hi > lo)) {
                lo = hi > 0 ? hi / sqrt(10) : 0.1;
                hi = lo * 10;
            }
            ns_sb_appendf(&ranges, "%s%.6g %.6g", p ? " " : "", lo, hi);
        }
    }
    for (size_t i = 0; oe && i < nf; i++) {
        int cl = oe[i] ? ns_plot_data_close(oe[i], pe[i]) : NS_OK;
        st = st ? st : cl;
        cl = of[i] ? ns_plot_data_close(of[i], pf[i]) : NS_OK;
        st = st ? st : cl;
    }
    if (note)
        st = notes_var(c, note, nf, "notes", st);
    st = ns_plot_sb_var(c, &titles, "titles", st);
    st = ns_plot_sb_var(c, &alphas, "alphas", st);
    st = ns_plot_sb_var(c, &xmins, "xmins", st);
    st = ns_plot_sb_var(c, &hasw, "hasw", st);
    st = ns_plot_sb_var(c, &ranges, "xranges", st);
    if (!st)
        st = ns_plot_var_num(c, "npanels", (double)P);
    for (size_t i = 0; ev && i < nf; i++)
        free(ev[i]);
    free(ev);
    free(name);
    free(nev);
    free(oe);
    free(of);
    free(pe);
    free(pf);
    free(pick);
    free(ncand);
    has_free(has, nf);
    spec_set_release(&s);
    return st;
}
