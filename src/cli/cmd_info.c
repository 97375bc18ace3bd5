/*
 * normscope info FILE [--json]: what a run or result file holds.
 *
 * A run file (DESIGN.md section 3) is summarised on one screen: its
 * identity (arch, norm, data set, seed, status, ...), the configuration of
 * /config, the parameter count of the last checkpoint, the checkpoints, the
 * per-epoch table of /history/epoch and the memory figures of /memory.
 * A result file is listed: every group with its provenance attributes and
 * every data set with its shape, type, description and units.
 * With --json the same goes to stdout as one JSON object.  Parts missing
 * from a file (an interrupted run has no memory figures, say) are shown as
 * "-" (null in JSON) rather than refused: info is how one inspects odd files.
 * The file is read through the walker of io.h (src/io/walk.c: objects,
 * attributes with typed values, data-set shapes, JSON of attributes); this
 * file only renders what it finds.
 */
#include "cli.h"

#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "normscope/core.h"
#include "normscope/io.h"
#include "normscope/train.h"

static const char usage_text[] =
    "usage: normscope info FILE [--json]\n"
    "\n"
    "Summarises a run file (identity, configuration, parameters, checkpoints,\n"
    "per-epoch history, memory) or lists what a result file holds.\n"
    "\n"
    "      --json    print the summary as one JSON object\n"
    "  -h, --help    this help\n";

/* -------------------------------------------------------- attributes */

/* Appends the value of attribute name of the object obj as text: strings
 * as they are, numbers comma-separated, "-" when missing or unreadable,
 * "[N values]" for what the walker does not read. */
static void sb_attr(ns_sb *b, ns_hid fid, const char *obj, const char *name)
{
    ns_h5_value v;
    ns_h5_attr_value(fid, obj, name, &v);
    if (v.cls == NS_H5_UNREADABLE) {
        ns_sb_append(b, "-");
    } else if (!v.held) {
        ns_sb_appendf(b, "[%lld values]", (long long)v.count);
    } else if (v.cls == NS_H5_STRING || v.cls == NS_H5_ENUM) {
        ns_sb_append(b, v.str);
    } else {
        for (size_t i = 0; i < v.n; i++)
            ns_sb_appendf(b, v.cls == NS_H5_INT ? "%s%.0f" : "%s%.6g", i ? "," : "", v.num[i]);
    }
}

/* A string attribute or NULL (for JSON null / text "-"). */
static const char *get_str(ns_hid fid, const char *obj, const char *name, char *buf,
                           size_t len)
{
    return ns_h5_get_str(fid, obj, name, buf, len) ? NULL : buf;
}

static double get_num(ns_hid fid, const char *obj, const char *name)
{
    double v;
    return ns_h5_get_double(fid, obj, name, &v) ? NAN : v;
}

/* ----------------------------------------------------------- run files */

enum { E_EPOCH, E_STEP, E_TRAIN_LOSS, E_TRAIN_ACC, E_TEST_LOSS, E_TEST_ACC, E_LR,
       E_SECONDS, E_IPS, E_NCOL };
static const char *const epoch_cols[E_NCOL] = {
    "epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc", "lr",
    "seconds", "images_per_second"};

typedef struct run_summary {
    uint64_t *ckpt;          /* checkpoint steps, ascending */
    size_t nckpt;
    size_t nparams, ntensors;
    int have_params;
    double *ep[E_NCOL];      /* /history/epoch columns (NaN where missing) */
    size_t nepochs;
} run_summary;

/* Data sets below a checkpoint's params group (soft links included). */
static int count_params(void *ctx, const ns_h5_object *o)
{
    run_summary *r = ctx;
    if (o->dataset) {
        if (o->count > 0)
            r->nparams += (size_t)o->count;
        r->ntensors++;
    }
    return NS_OK;
}

static int run_load(ns_hid fid, run_summary *r)
{
    memset(r, 0, sizeof *r);
    if (ns_h5_exists(fid, "/checkpoints") && ns_run_checkpoints(fid, &r->ckpt, &r->nckpt))
        return NS_EFORMAT;
    if (r->nckpt) {
        char p[128];
        snprintf(p, sizeof p, "/checkpoints/%llu/params",
                 (unsigned long long)r->ckpt[r->nckpt - 1]);
        r->have_params = ns_h5_walk(fid, p, 1, count_params, r) == NS_OK;
    }
    /* The epoch column fixes the number of rows; a column of another length
     * is shown as missing rather than refusing the file. */
    if (ns_h5_exists(fid, "/history/epoch/epoch")) {
        double *e;
        if (ns_h5_read_double_alloc(fid, "/history/epoch/epoch", &e, &r->nepochs) == NS_OK)
            r->ep[E_EPOCH] = e;
        else
            r->nepochs = 0;
    }
    for (int j = 0; j < E_NCOL; j++) {
        if (r->ep[j])
            continue;
        char p[128];
        size_t k = 0;
        snprintf(p, sizeof p, "/history/epoch/%s", epoch_cols[j]);
        if (ns_h5_exists(fid, p) && ns_h5_read_double_alloc(fid, p, &r->ep[j], &k) == NS_OK &&
            k == r->nepochs)
            continue;
        ns_free(r->ep[j]);
        r->ep[j] = ns_malloc((r->nepochs ? r->nepochs : 1) * sizeof(double));
        if (!r->ep[j])
            return NS_ENOMEM;
        for (size_t i = 0; i < r->nepochs; i++)
            r->ep[j][i] = NAN;
    }
    return NS_OK;
}

static void run_release(run_summary *r)
{
    ns_free(r->ckpt);
    for (int j = 0; j < E_NCOL; j++)
        ns_free(r->ep[j]);
    memset(r, 0, sizeof *r);
}

/* 1234567 -> "1,234,567". */
static const char *thousands(size_t v, char *buf, size_t len)
{
    char raw[32];
    int k = snprintf(raw, sizeof raw, "%zu", v);
    size_t o = 0;
    for (int i = 0; i < k && o + 2 < len; i++) {
        if (i && (k - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = raw[i];
    }
    buf[o] = '\0';
    return buf;
}

static void sb_text_field(ns_sb *b, const char *key, const char *val)
{
    ns_sb_appendf(b, "  %-12s %s\n", key, val ? val : "-");
}

static void sb_text_fieldf(ns_sb *b, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void sb_text_fieldf(ns_sb *b, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ns_sb_appendf(b, "  %-12s ", key);
    ns_sb_vappendf(b, fmt, ap);
    ns_sb_append(b, "\n");
    va_end(ap);
}

/* Values of the text epoch table: "-" for missing ones. */
static void sb_cell(ns_sb *b, const char *fmt, int width, double v)
{
    if (!isfinite(v)) {
        ns_sb_appendf(b, "%*s", width, "-");
        return;
    }
    char cell[64];
    snprintf(cell, sizeof cell, fmt, v);
    ns_sb_appendf(b, "%*s", width, cell);
}

static void sb_epoch_row(ns_sb *b, const run_summary *r, size_t i)
{
    ns_sb_append(b, "  ");
    sb_cell(b, "%.0f", 5, r->ep[E_EPOCH][i]);
    sb_cell(b, "%.0f", 9, r->ep[E_STEP][i]);
    sb_cell(b, "%.4f", 12, r->ep[E_TRAIN_LOSS][i]);
    sb_cell(b, "%.2f%%", 11, 100 * r->ep[E_TRAIN_ACC][i]);
    sb_cell(b, "%.4f", 11, r->ep[E_TEST_LOSS][i]);
    sb_cell(b, "%.2f%%", 10, 100 * r->ep[E_TEST_ACC][i]);
    sb_cell(b, "%.3g", 10, r->ep[E_LR][i]);
    sb_cell(b, "%.0f", 10, r->ep[E_IPS][i]);
    ns_sb_append(b, "\n");
}

static void run_text(ns_sb *b, ns_hid fid, const char *path, const run_summary *r)
{
    char buf[8192], tmp[512], num[64];
    int64_t ver = 0;
    ns_h5_get_int(fid, ".", "format_version", &ver);
    ns_sb_appendf(b, "%s: normscope run file (format %lld)\n", path, (long long)ver);
    sb_text_field(b, "arch", get_str(fid, ".", "arch", buf, sizeof buf));
    sb_text_field(b, "norm", get_str(fid, ".", "norm", buf, sizeof buf));

    /* data set, its size and preprocessing */
    const char *ds = get_str(fid, ".", "dataset", buf, sizeof buf);
    double trn = get_num(fid, "/data", "train_n"), tst = get_num(fid, "/data", "test_n");
    if (ds && isfinite(trn) && isfinite(tst))
        sb_text_fieldf(b, "dataset", "%s: %.0f train, %.0f test samples", ds, trn, tst);
    else
        sb_text_field(b, "dataset", ds);
    double ch = get_num(fid, "/data", "c"), h = get_num(fid, "/data", "h"),
           w = get_num(fid, "/data", "w"), nc = get_num(fid, "/data", "nclass");
    if (isfinite(ch) && isfinite(h) && isfinite(w)) {
        ns_sb line = NS_SB_INIT;
        ns_sb_appendf(&line, "%.0fx%.0fx%.0f", ch, h, w);
        if (isfinite(nc))
            ns_sb_appendf(&line, ", %.0f classes", nc);
        if (ns_h5_attr_exists(fid, "/data", "mean")) {
            ns_sb_append(&line, "; standardised with mean ");
            sb_attr(&line, fid, "/data", "mean");
            ns_sb_append(&line, ", std ");
            sb_attr(&line, fid, "/data", "std");
        }
        sb_text_field(b, "inputs", line.failed ? "?" : ns_sb_str(&line));
        ns_sb_release(&line);
    }

    int64_t seed;
    if (ns_h5_get_int(fid, ".", "seed", &seed) == NS_OK) {
        snprintf(tmp, sizeof tmp, "%lld", (long long)seed);
        sb_text_field(b, "seed", tmp);
    } else {
        sb_text_field(b, "seed", NULL);
    }
    const char *status = get_str(fid, ".", "status", buf, sizeof buf);
    int64_t dstep;
    if (status && strcmp(status, "diverged") == 0 &&
        ns_h5_get_int(fid, ".", "diverged_step", &dstep) == NS_OK) {
        snprintf(tmp, sizeof tmp, "diverged at step %lld", (long long)dstep);
        status = tmp;
    }
    sb_text_field(b, "status", status);
    sb_text_field(b, "precision", get_str(fid, ".", "precision", buf, sizeof buf));
    if (get_str(fid, ".", "normscope_version", buf, sizeof buf))
        sb_text_fieldf(b, "version", "normscope %s", buf);
    else
        sb_text_field(b, "version", NULL);
    sb_text_field(b, "created", get_str(fid, ".", "created", buf, sizeof buf));
    sb_text_field(b, "command", get_str(fid, ".", "command_line", buf, sizeof buf));

    if (r->have_params) {
        snprintf(tmp, sizeof tmp, "%s in %zu tensors (checkpoint %llu)",
                 thousands(r->nparams, num, sizeof num), r->ntensors,
                 (unsigned long long)r->ckpt[r->nckpt - 1]);
        sb_text_field(b, "parameters", tmp);
    } else {
        sb_text_field(b, "parameters", NULL);
    }

    /* checkpoints: all steps when few, else the first and last ones */
    ns_sb line = NS_SB_INIT;
    if (r->nckpt)
        ns_sb_appendf(&line, "%zu", r->nckpt);
    else
        ns_sb_append(&line, "none");
    for (size_t i = 0; i < r->nckpt; i++) {
        if (r->nckpt > 12 && i == 5) {
            ns_sb_append(&line, " ...");
            i = r->nckpt - 5;
        }
        ns_sb_appendf(&line, "%s%llu", i ? " " : ": ", (unsigned long long)r->ckpt[i]);
    }
    sb_text_field(b, "checkpoints", line.failed ? "?" : ns_sb_str(&line));
    ns_sb_release(&line);

    double act = get_num(fid, "/memory", "activation_bytes");
    double rss = get_num(fid, "/memory", "peak_rss_bytes");
    if (isfinite(act) || isfinite(rss)) {
        char a[48] = "-", p[48] = "-";
        if (isfinite(act))
            snprintf(a, sizeof a, "%.1f MB", act / 1048576.0);
        if (isfinite(rss))
            snprintf(p, sizeof p, "%.1f MB", rss / 1048576.0);
        snprintf(tmp, sizeof tmp, "activations %s per step, peak RSS %s", a, p);
        sb_text_field(b, "memory", tmp);
    } else {
        sb_text_field(b, "memory", NULL);
    }

    /* the configuration, key=value wrapped at 78 columns */
    char **keys;
    size_t nkeys;
    ns_h5_attr_names(fid, "/config", 1, &keys, &nkeys);
    ns_sb_append(b, "config\n");
    if (nkeys == 0)
        ns_sb_append(b, "  -\n");
    size_t col = 0;
    ns_sb kv = NS_SB_INIT;
    for (size_t i = 0; i < nkeys; i++) {
        ns_sb_reset(&kv);
        ns_sb_appendf(&kv, "%s=", keys[i]);
        sb_attr(&kv, fid, "/config", keys[i]);
        if (kv.failed)
            continue;
        if (col && col + 1 + kv.len > 78) {
            ns_sb_append(b, "\n");
            col = 0;
        }
        ns_sb_appendf(b, "%s%s", col ? " " : "  ", ns_sb_str(&kv));
        col += (col ? 1 : 2) + kv.len;
    }
    ns_sb_release(&kv);
    if (col)
        ns_sb_append(b, "\n");
    ns_h5_names_free(keys, nkeys);

    /* the epoch table: all rows when they fit a screen, else the ends */
    ns_sb_append(b, "epochs\n");
    if (r->nepochs == 0) {
        ns_sb_append(b, "  -\n");
        return;
    }
    ns_sb_appendf(b, "  %5s%9s%12s%11s%11s%10s%10s%10s\n", "epoch", "step", "train loss",
              "train acc", "test loss", "test acc", "lr", "img/s");
    for (size_t i = 0; i < r->nepochs; i++) {
        if (r->nepochs > 20 && i == 5) {
            ns_sb_appendf(b, "  %5s   (%zu epochs not shown)\n", "...", r->nepochs - 15);
            i = r->nepochs - 10;
        }
        sb_epoch_row(b, r, i);
    }
}

static void run_json(ns_sb *b, ns_hid fid, const char *path, const run_summary *r)
{
    char buf[8192];
    static const char *const strs[] = {"format", "arch", "norm", "dataset", "status",
                                       "precision", "normscope_version", "created",
                                       "command_line"};
    ns_sb_append(b, "{\"file\": ");
    ns_sb_json_str(b, path);
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) {
        ns_sb_appendf(b, ", \"%s\": ", strs[i]);
        ns_sb_json_str(b, get_str(fid, ".", strs[i], buf, sizeof buf));
    }
    static const char *const ints[] = {"format_version", "seed", "diverged_step"};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        int64_t v;
        if (ns_h5_get_int(fid, ".", ints[i], &v) == NS_OK)
            ns_sb_appendf(b, ", \"%s\": %" PRId64, ints[i], v);
        else if (strcmp(ints[i], "diverged_step") != 0)
            ns_sb_appendf(b, ", \"%s\": null", ints[i]);
    }
    ns_sb_append(b, ", \"parameters\": ");
    if (r->have_params)
        ns_sb_appendf(b, "%zu", r->nparams);
    else
        ns_sb_append(b, "null");
    ns_sb_append(b, ", \"config\": ");
    ns_h5_json_attrs(b, fid, "/config");
    ns_sb_append(b, ", \"data\": ");
    ns_h5_json_attrs(b, fid, "/data");
    ns_sb_append(b, ", \"checkpoints\": [");
    for (size_t i = 0; i < r->nckpt; i++)
        ns_sb_appendf(b, "%s%llu", i ? ", " : "", (unsigned long long)r->ckpt[i]);
    ns_sb_append(b, "], \"epochs\": [");
    for (size_t i = 0; i < r->nepochs; i++) {
        ns_sb_appendf(b, "%s{", i ? ", " : "");
        for (int j = 0; j < E_NCOL; j++) {
            ns_sb_appendf(b, "%s\"%s\": ", j ? ", " : "", epoch_cols[j]);
            ns_sb_json_num(b, r->ep[j][i]);
        }
        ns_sb_append(b, "}");
    }
    ns_sb_append(b, "], \"memory\": {\"activation_bytes\": ");
    ns_sb_json_num(b, get_num(fid, "/memory", "activation_bytes"));
    ns_sb_append(b, ", \"peak_rss_bytes\": ");
    ns_sb_json_num(b, get_num(fid, "/memory", "peak_rss_bytes"));
    ns_sb_append(b, "}}\n");
}

/* -------------------------------------------------------- result files */

typedef struct entry {
    char *path;
    int dataset;
} entry;

typedef struct entries {
    entry *v;
    size_t n;
} entries;

static int collect_obj(void *ctx, const ns_h5_object *o)
{
    entries *es = ctx;
    entry *v = realloc(es->v, (es->n + 1) * sizeof *v);
    if (!v)
        return NS_ENOMEM;
    es->v = v;
    size_t k = strlen(o->path) + 1;
    if (!(es->v[es->n].path = malloc(k)))
        return NS_ENOMEM;
    memcpy(es->v[es->n].path, o->path, k);
    es->v[es->n].dataset = o->dataset;
    es->n++;
    return NS_OK;
}

/* The group's numeric scalar attributes on one indented line ("trace
 * 1.64e+04, condition_number 179.1, ..."), in the order HDF5 keeps them;
 * seed is part of the provenance. */
static void group_numbers(ns_sb *b, ns_hid fid, const char *path)
{
    char **names;
    size_t n;
    int shown = 0;
    ns_h5_value v;
    ns_h5_attr_names(fid, path, 0, &names, &n);
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(names[i], "seed"))
            continue;
        ns_h5_attr_value(fid, path, names[i], &v);
        if ((v.cls == NS_H5_FLOAT || v.cls == NS_H5_INT) && v.count == 1 && v.held) {
            ns_sb_appendf(b, "%s%s %.6g", shown ? ", " : "      ", names[i], v.num[0]);
            shown++;
        }
    }
    if (shown)
        ns_sb_append(b, "\n");
    ns_h5_names_free(names, n);
}

/* Paths compared component by component, numbers by value, so that
 * ntk/469 sorts before ntk/1407 and a group before its members. */
static int natural_cmp(const void *pa, const void *pb)
{
    const char *a = ((const entry *)pa)->path, *b = ((const entry *)pb)->path;
    while (*a && *b) {
        if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
            char *ea, *eb;
            unsigned long long x = strtoull(a, &ea, 10), y = strtoull(b, &eb, 10);
            if (x != y)
                return x < y ? -1 : 1;
            a = ea;
            b = eb;
            continue;
        }
        if (*a != *b)
            return *a == '/' ? -1 : *b == '/' ? 1 : (unsigned char)*a - (unsigned char)*b;
        a++;
        b++;
    }
    return (unsigned char)*a - (unsigned char)*b;
}

/* "100x100", "scalar", "?" when unknown; at most len - 1 bytes. */
static void shape_text(const ns_h5_dsinfo *d, char *shape, size_t len)
{
    ns_sb t = NS_SB_INIT;
    if (d->ndim == 0)
        ns_sb_append(&t, "scalar");
    for (int i = 0; i < d->ndim; i++)
        ns_sb_appendf(&t, "%s%llu", i ? "x" : "", (unsigned long long)d->dims[i]);
    snprintf(shape, len, "%s", d->ndim < 0 ? "?" : ns_sb_str(&t));
    ns_sb_release(&t);
}

static void result_list(ns_sb *b, ns_hid fid, const char *path, const entries *es, int json)
{
    char buf[8192], shape[128];
    ns_h5_dsinfo d;
    if (json) {
        ns_sb_append(b, "{\"file\": ");
        ns_sb_json_str(b, path);
        ns_sb_appendf(b, ", \"format\": \"%s\", \"attrs\": ", NS_RESULT_FORMAT);
        ns_h5_json_attrs(b, fid, "/");
        ns_sb_append(b, ", \"groups\": [");
        size_t k = 0;
        for (size_t i = 0; i < es->n; i++) {
            if (es->v[i].dataset)
                continue;
            ns_sb_appendf(b, "%s{\"path\": ", k++ ? ", " : "");
            ns_sb_json_str(b, es->v[i].path);
            ns_sb_append(b, ", \"attrs\": ");
            ns_h5_json_attrs(b, fid, es->v[i].path);
            ns_sb_append(b, "}");
        }
        ns_sb_append(b, "], \"datasets\": [");
        k = 0;
        for (size_t i = 0; i < es->n; i++) {
            if (!es->v[i].dataset)
                continue;
            ns_h5_dataset_info(fid, es->v[i].path, &d);
            ns_sb_appendf(b, "%s{\"path\": ", k++ ? ", " : "");
            ns_sb_json_str(b, es->v[i].path);
            ns_sb_append(b, ", \"shape\": ");
            if (d.ndim < 0) {
                ns_sb_append(b, "null");
            } else {
                ns_sb_append(b, "[");
                for (int j = 0; j < d.ndim; j++)
                    ns_sb_appendf(b, "%s%llu", j ? ", " : "", (unsigned long long)d.dims[j]);
                ns_sb_append(b, "]");
            }
            double v;
            if (d.ndim == 0 && (d.cls == NS_H5_FLOAT || d.cls == NS_H5_INT) &&
                ns_h5_read_double(fid, es->v[i].path, &v, 1) == NS_OK) {
                ns_sb_append(b, ", \"value\": ");
                ns_sb_json_num(b, v);
            }
            ns_sb_appendf(b, ", \"type\": \"%s\", \"description\": ", d.type);
            ns_sb_json_str(b, get_str(fid, es->v[i].path, "description", buf, sizeof buf));
            ns_sb_append(b, ", \"units\": ");
            ns_sb_json_str(b, get_str(fid, es->v[i].path, "units", buf, sizeof buf));
            ns_sb_append(b, "}");
        }
        ns_sb_append(b, "]}\n");
        return;
    }

    int64_t ver = 0;
    ns_h5_get_int(fid, ".", "format_version", &ver);
    ns_sb_appendf(b, "%s: normscope result file (format %lld)\n", path, (long long)ver);
    static const char *const root[] = {"normscope_version", "created", "command_line"};
    for (size_t i = 0; i < sizeof root / sizeof *root; i++)
        if (get_str(fid, ".", root[i], buf, sizeof buf))
            sb_text_field(b, root[i], buf);
    size_t width = 8;
    for (size_t i = 0; i < es->n; i++) {
        size_t k = strlen(es->v[i].path);
        if (es->v[i].dataset && k > width)
            width = k;
    }
    if (width > 48)
        width = 48;
    if (es->n == 0)
        ns_sb_append(b, "  (empty)\n");
    for (size_t i = 0; i < es->n; i++) {
        const char *p = es->v[i].path;
        if (!es->v[i].dataset) {
            ns_sb_appendf(b, "  %s/", p);
            /* provenance of analysis groups (and a meanfield group's activation) */
            static const char *const prov[] = {"source", "mode", "seed", "act"};
            int first = 1;
            for (size_t j = 0; j < sizeof prov / sizeof *prov; j++) {
                if (!ns_h5_attr_exists(fid, p, prov[j]))
                    continue;
                ns_sb_appendf(b, "%s%s ", first ? "  (" : ", ", prov[j]);
                sb_attr(b, fid, p, prov[j]);
                first = 0;
            }
            ns_sb_appendf(b, "%s\n", first ? "" : ")");
            group_numbers(b, fid, p);
            continue;
        }
        ns_h5_dataset_info(fid, p, &d);
        shape_text(&d, shape, sizeof shape);
        /* a numeric scalar shows its value (meanfield's q*, chi_1, ...) */
        double v;
        if (d.ndim == 0 && (d.cls == NS_H5_FLOAT || d.cls == NS_H5_INT) &&
            ns_h5_read_double(fid, p, &v, 1) == NS_OK)
            snprintf(shape, sizeof shape, "= %.6g", v);
        const char *desc = get_str(fid, p, "description", buf, sizeof buf);
        char units[256];
        const char *u = get_str(fid, p, "units", units, sizeof units);
        const char *type = d.type;
        ns_sb_appendf(b, "    %-*s %-12s %s", (int)width, p, shape, type);
        if (desc || u)
            ns_sb_appendf(b, "%*s%s", (int)(9 - strlen(type)) > 1 ? (int)(9 - strlen(type)) : 1,
                          "", desc ? desc : "");
        if (u)
            ns_sb_appendf(b, " [%s]", u);
        ns_sb_append(b, "\n");
    }
}

/* ------------------------------------------------------------- command */

int cmd_info(int argc, char **argv)
{
    enum { OPT_JSON = 256 };
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int json = 0, c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_JSON: json = 1; break;
        case 'h': fputs(usage_text, stdout); return NS_EXIT_OK;
        default: return ns_cli_bad_option("info", longopts, c, argv);
        }
    }
    if (optind >= argc)
        return ns_cli_usage_error("info", "no file given");
    if (argc - optind > 1)
        return ns_cli_usage_error("info", "one file at a time, got %d", argc - optind);
    const char *path = argv[optind];

    /* Temporaries of this file left by a killed command. */
    ns_out_note_stale(path);
    ns_hid fid;
    int st = ns_h5_open(path, &fid);
    if (st)
        return ns_cli_fail(st, NULL);
    char fmt[64] = "";
    int run = 0;
    if (ns_h5_get_str(fid, ".", "format", fmt, sizeof fmt) ||
        (strcmp(fmt, NS_RUN_FORMAT) != 0 && strcmp(fmt, NS_RESULT_FORMAT) != 0))
        st = ns_error(NS_EFORMAT, "cannot read '%s': not a normscope run or result file", path);
    else
        run = strcmp(fmt, NS_RUN_FORMAT) == 0;
    ns_h5_close(fid);
    /* A damaged run file is refused as every other command refuses it: the
     * one line says what is wrong and where. */
    if (!st && run)
        st = ns_run_check(path);
    if (!st)
        st = ns_h5_open_format(path, run ? NS_RUN_FORMAT : NS_RESULT_FORMAT, &fid);
    if (st)
        return ns_cli_fail(st, NULL);

    ns_sb b = NS_SB_INIT;
    if (run) {
        run_summary r;
        st = run_load(fid, &r);
        if (!st) {
            if (json)
                run_json(&b, fid, path, &r);
            else
                run_text(&b, fid, path, &r);
        }
        run_release(&r);
    } else {
        entries es = {NULL, 0};
        if (ns_h5_walk(fid, "/", 0, collect_obj, &es) != NS_OK) {
            st = ns_error(NS_EFORMAT, "cannot read '%s': damaged group structure", path);
        } else {
            /* checkpoint groups in step order: 0, 469, 938, 1407 (no
             * qsort of a null array: a file may hold no object) */
            if (es.n > 1)
                qsort(es.v, es.n, sizeof *es.v, natural_cmp);
            result_list(&b, fid, path, &es, json);
        }
        for (size_t i = 0; i < es.n; i++)
            free(es.v[i].path);
        free(es.v);
    }
    ns_h5_close(fid);
    if (!st && b.failed)
        st = ns_error(NS_ENOMEM, "out of memory");
    if (st) {
        ns_sb_release(&b);
        return ns_cli_fail(st, NULL);
    }
    if (b.len)
        fwrite(b.s, 1, b.len, stdout);
    ns_sb_release(&b);
    if (fflush(stdout) != 0 || ferror(stdout))
        return ns_cli_fail(NS_EFAIL, "cannot write to standard output");
    return NS_EXIT_OK;
}
