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

#include <hdf5.h>

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

/* ------------------------------------------------------ string builder */

typedef struct sbuf {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_vprintf(sbuf *b, const char *fmt, va_list ap)
{
    if (b->oom)
        return;
    va_list ap2;
    va_copy(ap2, ap);
    int k = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
    if (k >= 0 && b->len + (size_t)k + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + (size_t)k + 1 > cap)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            va_end(ap2);
            return;
        }
        b->s = s;
        b->cap = cap;
        vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap2);
    }
    va_end(ap2);
    if (k > 0)
        b->len += (size_t)k;
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(b, fmt, ap);
    va_end(ap);
}

/* A JSON string (null for NULL). */
static void sb_json_str(sbuf *b, const char *s)
{
    if (!s) {
        sb_printf(b, "null");
        return;
    }
    sb_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            sb_printf(b, "\\%c", *p);
        else if (*p == '\n')
            sb_printf(b, "\\n");
        else if (*p == '\t')
            sb_printf(b, "\\t");
        else if (*p < 0x20)
            sb_printf(b, "\\u%04x", *p);
        else
            sb_printf(b, "%c", *p);
    }
    sb_printf(b, "\"");
}

/* A JSON number: null for NaN and infinities, integers without fraction,
 * otherwise the shortest form that keeps 15 significant digits. */
static void sb_json_num(sbuf *b, double v)
{
    if (!isfinite(v))
        sb_printf(b, "null");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0)
        sb_printf(b, "%.0f", v);
    else
        sb_printf(b, "%.15g", v);
}

/* -------------------------------------------------------- attributes */

#define MAX_ATTR_VALUES 64

/* Appends the value of attribute name of the object obj: strings as they
 * are (quoted in JSON), numbers comma-separated (a JSON array when the
 * attribute is an array), "-" / null when unreadable. */
static void sb_attr(sbuf *b, hid_t fid, const char *obj, const char *name, int json)
{
    const char *none = json ? "null" : "-";
    if (!ns_h5_exists(fid, obj) || H5Aexists_by_name(fid, obj, name, H5P_DEFAULT) <= 0) {
        sb_printf(b, "%s", none);
        return;
    }
    hid_t a = H5Aopen_by_name(fid, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) {
        sb_printf(b, "%s", none);
        return;
    }
    hid_t ft = H5Aget_type(a), sp = H5Aget_space(a);
    H5T_class_t cls = H5Tget_class(ft);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    int array = H5Sget_simple_extent_ndims(sp) > 0;
    if (cls == H5T_STRING && n == 1) {
        char buf[8192];
        if (ns_h5_get_str(fid, obj, name, buf, sizeof buf))
            sb_printf(b, "%s", none);
        else if (json)
            sb_json_str(b, buf);
        else
            sb_printf(b, "%s", buf);
    } else if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && n >= 1 && n <= MAX_ATTR_VALUES) {
        double v[MAX_ATTR_VALUES];
        size_t got = 0;
        if (ns_h5_get_doubles(fid, obj, name, v, MAX_ATTR_VALUES, &got)) {
            sb_printf(b, "%s", none);
        } else {
            if (json && array)
                sb_printf(b, "[");
            for (size_t i = 0; i < got; i++) {
                if (i)
                    sb_printf(b, json ? ", " : ",");
                if (json)
                    sb_json_num(b, v[i]);
                else
                    sb_printf(b, cls == H5T_INTEGER ? "%.0f" : "%.6g", v[i]);
            }
            if (json && array)
                sb_printf(b, "]");
        }
    } else if (cls == H5T_ENUM && n == 1) {
        /* h5py stores booleans as an enum FALSE/TRUE. */
        hid_t nt = H5Tget_native_type(ft, H5T_DIR_ASCEND);
        long long raw = 0;
        char ename[64];
        if (nt >= 0 && H5Tget_size(nt) <= sizeof raw && H5Aread(a, nt, &raw) >= 0 &&
            H5Tenum_nameof(nt, &raw, ename, sizeof ename) >= 0) {
            if (json && (!strcmp(ename, "TRUE") || !strcmp(ename, "FALSE")))
                sb_printf(b, "%s", ename[0] == 'T' ? "true" : "false");
            else if (json)
                sb_json_str(b, ename);
            else
                sb_printf(b, "%s", ename);
        } else {
            sb_printf(b, "%s", none);
        }
        if (nt >= 0)
            H5Tclose(nt);
    } else if (json) {
        sb_printf(b, "null");
    } else {
        sb_printf(b, "[%lld values]", (long long)n);
    }
    H5Sclose(sp);
    H5Tclose(ft);
    H5Aclose(a);
}

/* Names of the attributes of obj, in name order. */
typedef struct names {
    char **v;
    size_t n;
} names;

static herr_t collect_attr(hid_t loc, const char *name, const H5A_info_t *info, void *op)
{
    (void)loc;
    (void)info;
    names *nm = op;
    char **v = realloc(nm->v, (nm->n + 1) * sizeof *v);
    if (!v)
        return -1;
    nm->v = v;
    if (!(nm->v[nm->n] = malloc(strlen(name) + 1)))
        return -1;
    memcpy(nm->v[nm->n], name, strlen(name) + 1);
    nm->n++;
    return 0;
}

static void names_free(names *nm)
{
    for (size_t i = 0; i < nm->n; i++)
        free(nm->v[i]);
    free(nm->v);
    nm->v = NULL;
    nm->n = 0;
}

static void attr_names(hid_t fid, const char *obj, names *nm)
{
    nm->v = NULL;
    nm->n = 0;
    if (!ns_h5_exists(fid, obj))
        return;
    hid_t o = H5Oopen(fid, obj, H5P_DEFAULT);
    if (o < 0)
        return;
    hsize_t idx = 0;
    H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_attr, nm);
    H5Oclose(o);
}

/* All attributes of obj as a JSON object. */
static void sb_json_attrs(sbuf *b, hid_t fid, const char *obj)
{
    names nm;
    attr_names(fid, obj, &nm);
    sb_printf(b, "{");
    for (size_t i = 0; i < nm.n; i++) {
        sb_printf(b, "%s", i ? ", " : "");
        sb_json_str(b, nm.v[i]);
        sb_printf(b, ": ");
        sb_attr(b, fid, obj, nm.v[i], 1);
    }
    sb_printf(b, "}");
    names_free(&nm);
}

/* A string attribute or NULL (for JSON null / text "-"). */
static const char *get_str(hid_t fid, const char *obj, const char *name, char *buf,
                           size_t len)
{
    return ns_h5_get_str(fid, obj, name, buf, len) ? NULL : buf;
}

static double get_num(hid_t fid, const char *obj, const char *name)
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

static herr_t count_params(hid_t g, const char *name, const H5L_info_t *info, void *op)
{
    (void)info;
    run_summary *r = op;
    hid_t o = H5Oopen(g, name, H5P_DEFAULT);
    if (o < 0)
        return 0;
    if (H5Iget_type(o) == H5I_DATASET) {
        hid_t sp = H5Dget_space(o);
        hssize_t k = H5Sget_simple_extent_npoints(sp);
        H5Sclose(sp);
        if (k > 0)
            r->nparams += (size_t)k;
        r->ntensors++;
    }
    H5Oclose(o);
    return 0;
}

static int run_load(hid_t fid, run_summary *r)
{
    memset(r, 0, sizeof *r);
    if (ns_h5_exists(fid, "/checkpoints") && ns_run_checkpoints(fid, &r->ckpt, &r->nckpt))
        return NS_EFORMAT;
    if (r->nckpt) {
        char p[128];
        snprintf(p, sizeof p, "/checkpoints/%llu/params",
                 (unsigned long long)r->ckpt[r->nckpt - 1]);
        if (ns_h5_exists(fid, p)) {
            hid_t g = H5Gopen2(fid, p, H5P_DEFAULT);
            if (g >= 0) {
                r->have_params = H5Lvisit(g, H5_INDEX_NAME, H5_ITER_INC, count_params, r) >= 0;
                H5Gclose(g);
            }
        }
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

static void sb_text_field(sbuf *b, const char *key, const char *val)
{
    sb_printf(b, "  %-12s %s\n", key, val ? val : "-");
}

static void sb_text_fieldf(sbuf *b, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void sb_text_fieldf(sbuf *b, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_printf(b, "  %-12s ", key);
    sb_vprintf(b, fmt, ap);
    sb_printf(b, "\n");
    va_end(ap);
}

/* Values of the text epoch table: "-" for missing ones. */
static void sb_cell(sbuf *b, const char *fmt, int width, double v)
{
    if (!isfinite(v)) {
        sb_printf(b, "%*s", width, "-");
        return;
    }
    char cell[64];
    snprintf(cell, sizeof cell, fmt, v);
    sb_printf(b, "%*s", width, cell);
}

static void sb_epoch_row(sbuf *b, const run_summary *r, size_t i)
{
    sb_printf(b, "  ");
    sb_cell(b, "%.0f", 5, r->ep[E_EPOCH][i]);
    sb_cell(b, "%.0f", 9, r->ep[E_STEP][i]);
    sb_cell(b, "%.4f", 12, r->ep[E_TRAIN_LOSS][i]);
    sb_cell(b, "%.2f%%", 11, 100 * r->ep[E_TRAIN_ACC][i]);
    sb_cell(b, "%.4f", 11, r->ep[E_TEST_LOSS][i]);
    sb_cell(b, "%.2f%%", 10, 100 * r->ep[E_TEST_ACC][i]);
    sb_cell(b, "%.3g", 10, r->ep[E_LR][i]);
    sb_cell(b, "%.0f", 10, r->ep[E_IPS][i]);
    sb_printf(b, "\n");
}

static void run_text(sbuf *b, hid_t fid, const char *path, const run_summary *r)
{
    char buf[8192], tmp[512], num[64];
    int64_t ver = 0;
    ns_h5_get_int(fid, ".", "format_version", &ver);
    sb_printf(b, "%s: normscope run file (format %lld)\n", path, (long long)ver);
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
        sbuf line = {0};
        sb_printf(&line, "%.0fx%.0fx%.0f", ch, h, w);
        if (isfinite(nc))
            sb_printf(&line, ", %.0f classes", nc);
        if (ns_h5_exists(fid, "/data") && H5Aexists_by_name(fid, "/data", "mean", H5P_DEFAULT) > 0) {
            sb_printf(&line, "; standardised with mean ");
            sb_attr(&line, fid, "/data", "mean", 0);
            sb_printf(&line, ", std ");
            sb_attr(&line, fid, "/data", "std", 0);
        }
        sb_text_field(b, "inputs", line.oom ? "?" : line.s);
        free(line.s);
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
    sbuf line = {0};
    if (r->nckpt)
        sb_printf(&line, "%zu", r->nckpt);
    else
        sb_printf(&line, "none");
    for (size_t i = 0; i < r->nckpt; i++) {
        if (r->nckpt > 12 && i == 5) {
            sb_printf(&line, " ...");
            i = r->nckpt - 5;
        }
        sb_printf(&line, "%s%llu", i ? " " : ": ", (unsigned long long)r->ckpt[i]);
    }
    sb_text_field(b, "checkpoints", line.oom ? "?" : line.s);
    free(line.s);

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
    names nm;
    attr_names(fid, "/config", &nm);
    sb_printf(b, "config\n");
    if (nm.n == 0)
        sb_printf(b, "  -\n");
    size_t col = 0;
    for (size_t i = 0; i < nm.n; i++) {
        sbuf kv = {0};
        sb_printf(&kv, "%s=", nm.v[i]);
        sb_attr(&kv, fid, "/config", nm.v[i], 0);
        if (kv.oom)
            continue;
        if (col && col + 1 + kv.len > 78) {
            sb_printf(b, "\n");
            col = 0;
        }
        sb_printf(b, "%s%s", col ? " " : "  ", kv.s);
        col += (col ? 1 : 2) + kv.len;
        free(kv.s);
    }
    if (col)
        sb_printf(b, "\n");
    names_free(&nm);

    /* the epoch table: all rows when they fit a screen, else the ends */
    sb_printf(b, "epochs\n");
    if (r->nepochs == 0) {
        sb_printf(b, "  -\n");
        return;
    }
    sb_printf(b, "  %5s%9s%12s%11s%11s%10s%10s%10s\n", "epoch", "step", "train loss",
              "train acc", "test loss", "test acc", "lr", "img/s");
    for (size_t i = 0; i < r->nepochs; i++) {
        if (r->nepochs > 20 && i == 5) {
            sb_printf(b, "  %5s   (%zu epochs not shown)\n", "...", r->nepochs - 15);
            i = r->nepochs - 10;
        }
        sb_epoch_row(b, r, i);
    }
}

static void run_json(sbuf *b, hid_t fid, const char *path, const run_summary *r)
{
    char buf[8192];
    static const char *const strs[] = {"format", "arch", "norm", "dataset", "status",
                                       "precision", "normscope_version", "created",
                                       "command_line"};
    sb_printf(b, "{\"file\": ");
    sb_json_str(b, path);
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) {
        sb_printf(b, ", \"%s\": ", strs[i]);
        sb_json_str(b, get_str(fid, ".", strs[i], buf, sizeof buf));
    }
    static const char *const ints[] = {"format_version", "seed", "diverged_step"};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        int64_t v;
        if (ns_h5_get_int(fid, ".", ints[i], &v) == NS_OK)
            sb_printf(b, ", \"%s\": %" PRId64, ints[i], v);
        else if (strcmp(ints[i], "diverged_step") != 0)
            sb_printf(b, ", \"%s\": null", ints[i]);
    }
    sb_printf(b, ", \"parameters\": ");
    if (r->have_params)
        sb_printf(b, "%zu", r->nparams);
    else
        sb_printf(b, "null");
    sb_printf(b, ", \"config\": ");
    sb_json_attrs(b, fid, "/config");
    sb_printf(b, ", \"data\": ");
    sb_json_attrs(b, fid, "/data");
    sb_printf(b, ", \"checkpoints\": [");
    for (size_t i = 0; i < r->nckpt; i++)
        sb_printf(b, "%s%llu", i ? ", " : "", (unsigned long long)r->ckpt[i]);
    sb_printf(b, "], \"epochs\": [");
    for (size_t i = 0; i < r->nepochs; i++) {
        sb_printf(b, "%s{", i ? ", " : "");
        for (int j = 0; j < E_NCOL; j++) {
            sb_printf(b, "%s\"%s\": ", j ? ", " : "", epoch_cols[j]);
            sb_json_num(b, r->ep[j][i]);
        }
        sb_printf(b, "}");
    }
    sb_printf(b, "], \"memory\": {\"activation_bytes\": ");
    sb_json_num(b, get_num(fid, "/memory", "activation_bytes"));
    sb_printf(b, ", \"peak_rss_bytes\": ");
    sb_json_num(b, get_num(fid, "/memory", "peak_rss_bytes"));
    sb_printf(b, "}}\n");
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

static herr_t collect_obj(hid_t g, const char *name, const H5L_info_t *info, void *op)
{
    entries *es = op;
    if (info->type != H5L_TYPE_HARD)
        return 0;
    hid_t o = H5Oopen(g, name, H5P_DEFAULT);
    if (o < 0)
        return 0;
    H5I_type_t t = H5Iget_type(o);
    H5Oclose(o);
    if (t != H5I_DATASET && t != H5I_GROUP)
        return 0;
    entry *v = realloc(es->v, (es->n + 1) * sizeof *v);
    if (!v)
        return -1;
    es->v = v;
    size_t k = strlen(name) + 1;
    if (!(es->v[es->n].path = malloc(k)))
        return -1;
    memcpy(es->v[es->n].path, name, k);
    es->v[es->n].dataset = t == H5I_DATASET;
    es->n++;
    return 0;
}

/* The group's numeric scalar attributes on one indented line ("trace
 * 1.64e+04, condition_number 179.1, ..."); seed is part of the provenance. */
typedef struct numattrs {
    sbuf *b;
    int n;
} numattrs;

static herr_t one_number(hid_t loc, const char *name, const H5A_info_t *info, void *op)
{
    (void)info;
    numattrs *na = op;
    if (!strcmp(name, "seed"))
        return 0;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0)
        return 0;
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    H5T_class_t c = H5Tget_class(t);
    double v;
    if ((c == H5T_FLOAT || c == H5T_INTEGER) && H5Sget_simple_extent_npoints(sp) == 1 &&
        H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0) {
        sb_printf(na->b, "%s%s %.6g", na->n ? ", " : "      ", name, v);
        na->n++;
    }
    H5Sclose(sp);
    H5Tclose(t);
    H5Aclose(a);
    return 0;
}

static void group_numbers(sbuf *b, hid_t fid, const char *path)
{
    hid_t g = H5Gopen2(fid, path, H5P_DEFAULT);
    if (g < 0)
        return;
    numattrs na = {b, 0};
    hsize_t idx = 0;
    H5Aiterate2(g, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, one_number, &na);
    if (na.n)
        sb_printf(b, "\n");
    H5Gclose(g);
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

/* "100x100", "scalar"; and the element type ("float64", "int64", "string"). */
static void dataset_shape(hid_t fid, const char *path, char *shape, size_t slen,
                          char *type, size_t tlen, hsize_t *dims, int *ndim)
{
    snprintf(shape, slen, "?");
    snprintf(type, tlen, "?");
    *ndim = -1;
    hid_t d = H5Dopen2(fid, path, H5P_DEFAULT);
    if (d < 0)
        return;
    hid_t sp = H5Dget_space(d), t = H5Dget_type(d);
    int nd = H5Sget_simple_extent_ndims(sp);
    if (nd >= 0 && nd <= 8) {
        H5Sget_simple_extent_dims(sp, dims, NULL);
        *ndim = nd;
        size_t o = 0;
        if (nd == 0)
            snprintf(shape, slen, "scalar");
        for (int i = 0; i < nd && o < slen; i++)
            o += (size_t)snprintf(shape + o, slen - o, "%s%llu", i ? "x" : "",
                                  (unsigned long long)dims[i]);
    }
    size_t bits = 8 * H5Tget_size(t);
    switch (H5Tget_class(t)) {
    case H5T_FLOAT: snprintf(type, tlen, "float%zu", bits); break;
    case H5T_INTEGER:
        snprintf(type, tlen, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", bits);
        break;
    case H5T_STRING: snprintf(type, tlen, "string"); break;
    case H5T_ENUM: snprintf(type, tlen, "enum"); break;
    case H5T_COMPOUND: snprintf(type, tlen, "compound"); break;
    default: snprintf(type, tlen, "other"); break;
    }
    H5Tclose(t);
    H5Sclose(sp);
    H5Dclose(d);
}

static void result_list(sbuf *b, hid_t fid, const char *path, const entries *es, int json)
{
    char buf[8192], shape[128], type[32];
    hsize_t dims[8];
    int ndim;
    if (json) {
        sb_printf(b, "{\"file\": ");
        sb_json_str(b, path);
        sb_printf(b, ", \"format\": \"%s\", \"attrs\": ", NS_RESULT_FORMAT);
        sb_json_attrs(b, fid, "/");
        sb_printf(b, ", \"groups\": [");
        size_t k = 0;
        for (size_t i = 0; i < es->n; i++) {
            if (es->v[i].dataset)
                continue;
            sb_printf(b, "%s{\"path\": ", k++ ? ", " : "");
            sb_json_str(b, es->v[i].path);
            sb_printf(b, ", \"attrs\": ");
            sb_json_attrs(b, fid, es->v[i].path);
            sb_printf(b, "}");
        }
        sb_printf(b, "], \"datasets\": [");
        k = 0;
        for (size_t i = 0; i < es->n; i++) {
            if (!es->v[i].dataset)
                continue;
            dataset_shape(fid, es->v[i].path, shape, sizeof shape, type, sizeof type, dims,
                          &ndim);
            sb_printf(b, "%s{\"path\": ", k++ ? ", " : "");
            sb_json_str(b, es->v[i].path);
            sb_printf(b, ", \"shape\": ");
            if (ndim < 0) {
                sb_printf(b, "null");
            } else {
                sb_printf(b, "[");
                for (int j = 0; j < ndim; j++)
                    sb_printf(b, "%s%llu", j ? ", " : "", (unsigned long long)dims[j]);
                sb_printf(b, "]");
            }
            double v;
            if (ndim == 0 && (!strncmp(type, "float", 5) || strstr(type, "int")) &&
                ns_h5_read_double(fid, es->v[i].path, &v, 1) == NS_OK) {
                sb_printf(b, ", \"value\": ");
                sb_json_num(b, v);
            }
            sb_printf(b, ", \"type\": \"%s\", \"description\": ", type);
            sb_json_str(b, get_str(fid, es->v[i].path, "description", buf, sizeof buf));
            sb_printf(b, ", \"units\": ");
            sb_json_str(b, get_str(fid, es->v[i].path, "units", buf, sizeof buf));
            sb_printf(b, "}");
        }
        sb_printf(b, "]}\n");
        return;
    }

    int64_t ver = 0;
    ns_h5_get_int(fid, ".", "format_version", &ver);
    sb_printf(b, "%s: normscope result file (format %lld)\n", path, (long long)ver);
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
        sb_printf(b, "  (empty)\n");
    for (size_t i = 0; i < es->n; i++) {
        const char *p = es->v[i].path;
        if (!es->v[i].dataset) {
            sb_printf(b, "  %s/", p);
            /* provenance of analysis groups (and a meanfield group's activation) */
            static const char *const prov[] = {"source", "mode", "seed", "act"};
            int first = 1;
            for (size_t j = 0; j < sizeof prov / sizeof *prov; j++) {
                if (H5Aexists_by_name(fid, p, prov[j], H5P_DEFAULT) <= 0)
                    continue;
                sb_printf(b, "%s%s ", first ? "  (" : ", ", prov[j]);
                sb_attr(b, fid, p, prov[j], 0);
                first = 0;
            }
            sb_printf(b, "%s\n", first ? "" : ")");
            group_numbers(b, fid, p);
            continue;
        }
        dataset_shape(fid, p, shape, sizeof shape, type, sizeof type, dims, &ndim);
        /* a numeric scalar shows its value (meanfield's q*, chi_1, ...) */
        double v;
        if (ndim == 0 && (!strncmp(type, "float", 5) || strstr(type, "int")) &&
            ns_h5_read_double(fid, p, &v, 1) == NS_OK)
            snprintf(shape, sizeof shape, "= %.6g", v);
        const char *desc = get_str(fid, p, "description", buf, sizeof buf);
        char units[256];
        const char *u = get_str(fid, p, "units", units, sizeof units);
        sb_printf(b, "    %-*s %-12s %s", (int)width, p, shape, type);
        if (desc || u)
            sb_printf(b, "%*s%s", (int)(9 - strlen(type)) > 1 ? (int)(9 - strlen(type)) : 1, "",
                      desc ? desc : "");
        if (u)
            sb_printf(b, " [%s]", u);
        sb_printf(b, "\n");
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
    hid_t fid;
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

    sbuf b = {0};
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
        if (H5Lvisit(fid, H5_INDEX_NAME, H5_ITER_INC, collect_obj, &es) < 0) {
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
    if (!st && b.oom)
        st = ns_error(NS_ENOMEM, "out of memory");
    if (st) {
        free(b.s);
        return ns_cli_fail(st, NULL);
    }
    if (b.len)
        fwrite(b.s, 1, b.len, stdout);
    free(b.s);
    if (fflush(stdout) != 0 || ferror(stdout))
        return ns_cli_fail(NS_EFAIL, "cannot write to standard output");
    return NS_EXIT_OK;
}
