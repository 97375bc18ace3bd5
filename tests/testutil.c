/* Helpers shared by the Check suites. */
#include "testutil.h"

#include "normscope/norm.h"

#include <hdf5_hl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

static char tmpdir[256];
static pid_t tmpdir_owner;

/* Removes the temporary directory at exit of the process that made it (a
 * forked test inherits the handler but not the ownership). */
static void tmpdir_remove(void)
{
    if (tmpdir[0] && getpid() == tmpdir_owner)
        ns_test_system("rm -rf '%s'", tmpdir);
}

const char *ns_test_tmpdir(void)
{
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/nstest-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            abort();
        }
        tmpdir_owner = getpid();
        atexit(tmpdir_remove);
    }
    return tmpdir;
}

const char *ns_test_path(const char *name)
{
    static char buf[8][512];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, 512, "%s/%s", ns_test_tmpdir(), name);
    return b;
}

const char *ns_test_python(void)
{
    static int probed;
    static char py[256];
    if (!probed) {
        probed = 1;
        const char *p = getenv("PYTHON");
        snprintf(py, sizeof py, "%s", p && *p ? p : "/usr/bin/python3");
        if (ns_test_system("%s -c 'import torch, h5py' >/dev/null 2>&1", py) != 0)
            py[0] = '\0';
    }
    return py[0] ? py : NULL;
}

int ns_test_system(const char *fmt, ...)
{
    /* sized to the command: a long argument list must not be cut short */
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *cmd = len < 0 ? NULL : malloc((size_t)len + 1);
    if (!cmd)
        return -1;
    va_start(ap, fmt);
    vsnprintf(cmd, (size_t)len + 1, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    free(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

double ns_test_relerr(const ns_real *a, const ns_real *b, size_t n, double floor)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double den = fabs((double)b[i]);
        if (den < floor)
            den = floor;
        double e = fabs((double)a[i] - (double)b[i]) / den;
        if (!(e <= worst))
            worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

double ns_test_relerr_d(const double *a, const double *b, size_t n, double floor)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double den = fabs(b[i]);
        if (den < floor)
            den = floor;
        double e = fabs(a[i] - b[i]) / den;
        if (!(e <= worst))
            worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

/* ------------------------------------------------ PyTorch cross-checks */

/* What torch_ref.py needs beyond the layer struct: conv and pooling
 * geometry, the lrelu slope, the dropout probability and, for layers in
 * normalization slots, the method that filled them ("lastbn" for
 * MimicNorm's BN on the logits). */
typedef struct torch_geom {
    size_t k, stride, pad;
    double alpha, p;
    const char *method;
} torch_geom;

static int torch_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int torch_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "torch reference: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return -1;
}

static int kind_is(const ns_net *net, size_t li, const char *kind)
{
    return li < net->nlayers && strcmp(net->layers[li].ops->kind, kind) == 0;
}

/* Layer li must be a `kind`; returns li + 1, or (size_t)-1. */
static size_t geom_expect(const ns_net *net, size_t li, const char *kind)
{
    if (!kind_is(net, li, kind)) {
        torch_fail("layer %zu is not a %s", li, kind);
        return (size_t)-1;
    }
    return li + 1;
}

static size_t geom_conv(const ns_net *net, torch_geom *g, size_t li, size_t k, size_t s,
                        size_t p)
{
    if (li == (size_t)-1 || geom_expect(net, li, "conv") == (size_t)-1)
        return (size_t)-1;
    const ns_layer *L = &net->layers[li];
    if (L->out_h != (L->in_h + 2 * p - k) / s + 1 || L->param[0].dims[2] != k) {
        torch_fail("layer %s does not have the geometry of its token", L->name);
        return (size_t)-1;
    }
    g[li].k = k;
    g[li].stride = s;
    g[li].pad = p;
    return li + 1;
}

/* A relu token: the layer, or nothing where FRN's TLU took its place. */
static size_t geom_relu(const ns_net *net, size_t li)
{
    if (li == (size_t)-1)
        return li;
    if (li > 0 && kind_is(net, li - 1, "frn") && !net->opts.frn_relu)
        return li;
    return geom_expect(net, li, "relu");
}

/* A normalization slot: the layer there, if any, was filled by `method`. */
static size_t geom_norm(const ns_net *net, torch_geom *g, size_t li, const char *method)
{
    if (li == (size_t)-1 || li >= net->nlayers || !ns_layer_is_norm(&net->layers[li]))
        return li;
    g[li].method = method;
    return li + 1;
}

/* Walks the expanded architecture string beside the layer list. */
static int torch_geometry(const ns_net *net, torch_geom *g)
{
    char *copy = strdup(net->arch), *save = NULL;
    if (!copy)
        return torch_fail("out of memory");
    const char *slot = net->opts.norm;
    size_t li = 0;
    for (char *t = strtok_r(copy, ",", &save); t && li != (size_t)-1;
         t = strtok_r(NULL, ",", &save)) {
        size_t k, k2, c, s, p;
        char *e;
        if (sscanf(t, "conv%zux%zu:%zu", &k, &k2, &c) == 3) {
            s = 1;
            p = k / 2;
            if ((e = strchr(t, '/')))
                s = strtoul(e + 1, NULL, 10);
            if ((e = strchr(t, 'p')))
                p = strtoul(e + 1, NULL, 10);
            li = geom_conv(net, g, li, k, s, p);
        } else if (strncmp(t, "maxpool:", 8) == 0 || strncmp(t, "avgpool:", 8) == 0) {
            k = strtoul(t + 8, &e, 10);
            s = *e == '/' ? strtoul(e + 1, NULL, 10) : k;
            if (geom_expect(net, li, t[0] == 'm' ? "maxpool" : "avgpool") != (size_t)-1) {
                g[li].k = k;
                g[li].stride = s;
                li++;
            } else {
                li = (size_t)-1;
            }
        } else if (strncmp(t, "res:", 4) == 0) {
            c = strtoul(t + 4, &e, 10);
            s = *e == '/' ? strtoul(e + 1, NULL, 10) : 1;
            li = geom_conv(net, g, li, 3, s, 1);
            li = geom_norm(net, g, li, slot);
            li = geom_relu(net, li);
            li = geom_conv(net, g, li, 3, 1, 1);
            li = geom_norm(net, g, li, slot);
            /* MimicNorm's scalar ends the branch */
            if (li != (size_t)-1 && kind_is(net, li, "scale"))
                li++;
            if (li != (size_t)-1 && kind_is(net, li, "conv")) {
                li = geom_conv(net, g, li, 1, s, 0);
                li = geom_norm(net, g, li, slot);
            }
            if (li != (size_t)-1)
                li = geom_expect(net, li, "add");
            if (li != (size_t)-1)
                li = geom_expect(net, li, "relu");
        } else if (strcmp(t, "relu") == 0) {
            li = geom_relu(net, li);
        } else if (strcmp(t, "norm") == 0 || strcmp(t, "bn") == 0) {
            li = geom_norm(net, g, li, t[0] == 'b' ? "bn" : slot);
        } else if (strncmp(t, "lrelu", 5) == 0) {
            if (geom_expect(net, li, "lrelu") != (size_t)-1) {
                g[li].alpha = t[5] == ':' ? strtod(t + 6, NULL) : 0.01;
                li++;
            } else {
                li = (size_t)-1;
            }
        } else if (strncmp(t, "dropout:", 8) == 0) {
            if (geom_expect(net, li, "dropout") != (size_t)-1) {
                g[li].p = strtod(t + 8, NULL);
                li++;
            } else {
                li = (size_t)-1;
            }
        } else {
            li++;
        }
    }
    free(copy);
    /* MimicNorm's last BN follows the tokens */
    const ns_norm_method *m = ns_norm_find(slot);
    if (m && m->net && m->net->logits && li == net->nlayers - 1 && kind_is(net, li, "bn")) {
        g[li].method = "lastbn";
        li++;
    }
    if (li != net->nlayers)
        return torch_fail("the layers of '%s' do not follow its tokens", net->arch);
    return 0;
}

static int h5_int(hid_t f, const char *obj, const char *name, long v)
{
    int i = (int)v;
    return H5LTset_attribute_int(f, obj, name, &i, 1) >= 0 ? 0 : -1;
}

static int h5_double(hid_t f, const char *obj, const char *name, double v)
{
    return H5LTset_attribute_double(f, obj, name, &v, 1) >= 0 ? 0 : -1;
}

static int h5_real(hid_t f, const char *path, int rank, const hsize_t *dims, const ns_real *v)
{
#ifdef NS_DOUBLE
    return H5LTmake_dataset_double(f, path, rank, dims, v) >= 0 ? 0 : -1;
#else
    return H5LTmake_dataset_float(f, path, rank, dims, v) >= 0 ? 0 : -1;
#endif
}

static int h5_tensor(hid_t f, const char *obj, const ns_tensor *t)
{
    char path[128];
    hsize_t dims[4];
    for (int d = 0; d < t->ndim; d++)
        dims[d] = t->dims[d];
    snprintf(path, sizeof path, "%s/%s", obj, t->name);
    return h5_real(f, path, t->ndim, dims, t->data);
}

int ns_test_torch_write(const char *path, const ns_net *net, const ns_real *x,
                        const int32_t *y, size_t n, ns_mode mode)
{
    size_t nl = net->nlayers;
    torch_geom *g = calloc(nl, sizeof *g);
    size_t len = nl * (sizeof net->layers[0].name + 1), used = 0;
    char *names = calloc(len, 1);
    hid_t f = -1;
    int bad = 0;
    if (!g || !names) {
        bad = torch_fail("out of memory");
        goto cleanup;
    }
    if (torch_geometry(net, g)) {
        bad = -1;
        goto cleanup;
    }
    f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        bad = torch_fail("cannot create '%s'", path);
        goto cleanup;
    }
    const ns_net_opts *o = &net->opts;
#ifdef NS_DOUBLE
    bad |= H5LTset_attribute_string(f, "/", "dtype", "float64") < 0;
#else
    bad |= H5LTset_attribute_string(f, "/", "dtype", "float32") < 0;
#endif
    bad |= H5LTset_attribute_string(f, "/", "mode", mode == NS_MODE_TRAIN ? "train" : "eval") < 0;
    bad |= h5_int(f, "/", "group", (long)o->norm_group);
    bad |= h5_double(f, "/", "eps", o->bn_eps);
    bad |= h5_double(f, "/", "momentum", o->bn_momentum);
    bad |= h5_int(f, "/", "gn_groups", (long)o->gn_groups);
    bad |= h5_double(f, "/", "psbn_alpha", o->psbn_alpha);
    bad |= h5_double(f, "/", "frn_eps", o->frn_eps);
    bad |= H5LTset_attribute_string(f, "/", "norm", o->norm) < 0;
    bad |= h5_int(f, "/", "wm_all", o->wm_all);
    bad |= h5_int(f, "/", "brn_warmup", (long)o->brn_warmup);
    bad |= h5_int(f, "/", "brn_ramp", (long)o->brn_ramp);
    bad |= h5_double(f, "/", "bkn_p", o->bkn_p);
    bad |= H5LTset_attribute_string(f, "/", "bkn_predict",
                                    ns_bkn_predict_name((ns_bkn_predict)o->bkn_predict)) < 0;
    bad |= h5_int(f, "/", "bkn_grad", o->bkn_grad);
    bad |= h5_int(f, "/", "mabn_buffer", (long)ns_mabn_buffer_size(o));
    bad |= h5_int(f, "/", "mabn_warmup", (long)o->mabn_warmup);
    bad |= h5_int(f, "/", "pn_warmup", (long)o->pn_warmup);
    bad |= h5_double(f, "/", "agc", o->agc);
    for (size_t i = 0; i < nl; i++)
        used += (size_t)snprintf(names + used, len - used, "%s%s", i ? "," : "",
                                 net->layers[i].name);
    bad |= H5LTset_attribute_string(f, "/", "names", names) < 0;
    hsize_t xd[4] = {n, net->in_c, net->in_h, net->in_w}, yd[1] = {n};
    bad |= h5_real(f, "/x", 4, xd, x);
    bad |= H5LTmake_dataset_int(f, "/y", 1, yd, y) < 0;
    hid_t gl = H5Gcreate2(f, "/layers", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bad |= gl < 0;
    if (gl >= 0)
        H5Gclose(gl);
    for (size_t i = 0; i < nl && !bad; i++) {
        const ns_layer *L = &net->layers[i];
        char obj[64];
        snprintf(obj, sizeof obj, "/layers/%s", L->name);
        hid_t gi = H5Gcreate2(f, obj, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        bad |= gi < 0;
        if (gi >= 0)
            H5Gclose(gi);
        bad |= H5LTset_attribute_string(f, obj, "kind", L->ops->kind) < 0;
        if (g[i].method)
            bad |= H5LTset_attribute_string(f, obj, "method", g[i].method) < 0;
        bad |= h5_int(f, obj, "src", L->src);
        bad |= h5_int(f, obj, "src2", L->src2);
        int shape[3] = {(int)L->in_c, (int)L->in_h, (int)L->in_w};
        bad |= H5LTset_attribute_int(f, obj, "in_shape", shape, 3) < 0;
        bad |= h5_int(f, obj, "k", (long)g[i].k);
        bad |= h5_int(f, obj, "stride", (long)g[i].stride);
        bad |= h5_int(f, obj, "pad", (long)g[i].pad);
        bad |= h5_double(f, obj, "alpha", g[i].alpha);
        bad |= h5_double(f, obj, "p", g[i].p);
        /* BN: affine as the layer has it (MimicNorm's last BN has none) */
        bad |= h5_int(f, obj, "affine",
                      kind_is(net, i, "bn") ? L->nparam > 0 : o->bn_affine);
        if (kind_is(net, i, "dense") || kind_is(net, i, "conv")) {
            static const char *const rules[] = {"none", "center", "standardize", "scaled"};
            bad |= H5LTset_attribute_string(f, obj, "wrule",
                                            ns_layer_wrule(L) <= 3 ? rules[ns_layer_wrule(L)]
                                                                   : "unknown") < 0;
            bad |= h5_int(f, obj, "weight_mean", ns_layer_weight_mean(L));
        }
        for (int t = 0; t < L->nparam; t++)
            bad |= h5_tensor(f, obj, &L->param[t]);
        for (int t = 0; t < L->nstate; t++)
            bad |= h5_tensor(f, obj, &L->state[t]);
    }
    if (bad)
        bad = torch_fail("cannot write '%s'", path);
cleanup:
    if (f >= 0 && H5Fclose(f) < 0 && !bad)
        bad = torch_fail("cannot close '%s'", path);
    free(g);
    free(names);
    return bad ? -1 : 0;
}

/* Opens path for writing with a property list that creates the groups
 * on a new link's path. */
static hid_t h5_open_rw(const char *path, hid_t *lcpl)
{
    *lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (*lcpl < 0)
        return -1;
    H5Pset_create_intermediate_group(*lcpl, 1);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0)
        H5Pclose(*lcpl);
    return f;
}

static int h5_add(const char *path, const char *dset, int rank, const size_t *dims,
                  hid_t type, const void *v)
{
    hid_t lcpl, f = h5_open_rw(path, &lcpl);
    if (f < 0)
        return torch_fail("cannot open '%s'", path);
    hsize_t hd[8];
    for (int d = 0; d < rank && d < 8; d++)
        hd[d] = dims[d];
    int bad = rank < 1 || rank > 8;
    hid_t sp = bad ? -1 : H5Screate_simple(rank, hd, NULL);
    hid_t ds = sp < 0 ? -1 : H5Dcreate2(f, dset, type, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    bad |= ds < 0 || H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0;
    if (ds >= 0)
        H5Dclose(ds);
    if (sp >= 0)
        H5Sclose(sp);
    H5Pclose(lcpl);
    bad |= H5Fclose(f) < 0;
    return bad ? torch_fail("cannot write '%s' to '%s'", dset, path) : 0;
}

int ns_test_h5_add(const char *path, const char *dset, int rank, const size_t *dims,
                   const double *v)
{
    return h5_add(path, dset, rank, dims, H5T_NATIVE_DOUBLE, v);
}

int ns_test_h5_add_int(const char *path, const char *dset, size_t n, const int32_t *v)
{
    size_t dims[1] = {n};
    return h5_add(path, dset, 1, dims, H5T_NATIVE_INT32, v);
}

int ns_test_h5_set_attr(const char *path, const char *obj, const char *name, double v)
{
    hid_t lcpl, f = h5_open_rw(path, &lcpl);
    if (f < 0)
        return torch_fail("cannot open '%s'", path);
    H5Pclose(lcpl);
    int bad = h5_double(f, obj, name, v) != 0;
    bad |= H5Fclose(f) < 0;
    return bad ? torch_fail("cannot set attribute '%s' in '%s'", name, path) : 0;
}

double *ns_test_read_ref(hid_t f, const char *path, size_t n)
{
    int rank;
    ck_assert_msg(H5LTget_dataset_ndims(f, path, &rank) >= 0, "reference lacks '%s'", path);
    hsize_t dims[8];
    H5T_class_t cls;
    size_t tsize;
    ck_assert(rank <= 8 && H5LTget_dataset_info(f, path, dims, &cls, &tsize) >= 0);
    size_t cnt = 1;
    for (int d = 0; d < rank; d++)
        cnt *= dims[d];
    ck_assert_msg(cnt == n, "'%s' has %zu values, normscope %zu", path, cnt, n);
    double *v = malloc((n ? n : 1) * sizeof *v);
    ck_assert_ptr_nonnull(v);
    ck_assert(H5LTread_dataset_double(f, path, v) >= 0);
    return v;
}

void ns_test_compare(const char *cs, const char *what, const ns_real *a, const double *ref,
                     size_t n, double floor, double tol)
{
    double mx = 0, worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++)
        mx = fabs(ref[i]) > mx ? fabs(ref[i]) : mx;
    double den = mx > floor ? mx : floor;
    den = den > 1e-30 ? den : 1e-30;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - ref[i]) / den;
        if (!(e <= worst)) {
            worst = isnan(e) ? INFINITY : e;
            at = i;
        }
    }
    if (getenv("NS_TEST_VERBOSE"))
        fprintf(stderr, "%-18s %-28s %.3g\n", cs, what, worst);
    ck_assert_msg(worst < tol,
                  "%s: %s[%zu]: normscope %.12g, torch %.12g (error %.3g of max %.3g)", cs,
                  what, at, (double)a[at], ref[at], worst, mx);
}

/* ------------------------------- helpers of the layer and norm suites */

void ns_test_fill_normal(ns_real *v, size_t n, ns_rng *r, double scale, double shift)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (ns_real)(shift + scale * ns_rng_normal(r));
}

void ns_test_fill_const(ns_real *v, size_t n, double c)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (ns_real)c;
}

int ns_test_all_finite(const ns_real *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite((double)v[i]))
            return 0;
    return 1;
}

double ns_test_max_abs(const ns_real *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)v[i]) > m)
            m = fabs((double)v[i]);
    return m;
}

int ns_test_is_kind(const ns_layer *L, const char *kind)
{
    return strcmp(L->ops->kind, kind) == 0;
}

int ns_test_net_has_kind(const ns_net *net, const char *kind)
{
    for (size_t i = 0; i < net->nlayers; i++)
        if (ns_test_is_kind(&net->layers[i], kind))
            return 1;
    return 0;
}

ns_tensor *ns_test_find_tensor(ns_tensor *t, int count, const char *name)
{
    for (int i = 0; i < count; i++)
        if (strcmp(t[i].name, name) == 0)
            return &t[i];
    return NULL;
}

void ns_test_assert_close(double a, double ref, double tol, const char *what, size_t i)
{
    double den = fabs(ref) > 1e-3 ? fabs(ref) : 1e-3;
    ck_assert_msg(fabs(a - ref) / den < tol, "%s[%zu]: %.12g, expected %.12g", what, i, a, ref);
}

ns_net *ns_test_build(const char *arch, const ns_test_nopts *no, size_t c, size_t h, size_t w,
                      size_t nout, size_t max_batch)
{
    ns_net_opts o;
    ns_net_opts_default(&o);
    snprintf(o.norm, sizeof o.norm, "%s", no->norm);
    if (no->groups)
        o.gn_groups = no->groups;
    if (no->fct != 0)
        o.fct = no->fct;
    o.norm_group = no->group;
    if (no->no_affine)
        o.bn_affine = 0;
    if (no->bkn_last)
        o.bkn_predict = NS_BKN_PREDICT_LAST;
    o.bkn_grad = no->bkn_grad;
    if (no->bkn_p > 0)
        o.bkn_p = no->bkn_p;
    o.max_batch = max_batch;
    ns_net *net = NULL;
    int st = ns_net_build(arch, &o, c, h, w, nout, &net);
    ck_assert_msg(st == NS_OK && net, "cannot build '%s' with %s: %s", arch, no->norm,
                  ns_errmsg());
    ns_init ini = {NS_INIT_TORCH, 0, 0};
    ns_net_init(net, &ini, 1234);
    return net;
}

void ns_test_randomize_norm(ns_net *net, double eps_l, uint64_t seed)
{
    ns_rng r;
    ns_rng_seed(&r, seed, 99);
    for (size_t i = 0; i < net->nlayers; i++) {
        ns_layer *L = &net->layers[i];
        if (!ns_layer_is_norm(L))
            continue;
        for (int t = 0; t < L->nparam; t++) {
            ns_tensor *T = &L->param[t];
            for (size_t j = 0; j < T->size; j++) {
                if (!strcmp(T->name, "weight"))
                    T->data[j] = (ns_real)(0.5 + ns_rng_uniform(&r));
                else if (!strcmp(T->name, "eps"))
                    T->data[j] = eps_l != 0 ? (ns_real)eps_l : T->data[j];
                else
                    T->data[j] = (ns_real)(0.3 * ns_rng_normal(&r));
            }
        }
        ns_tensor *t = ns_test_find_tensor(L->state, L->nstate, "running_mean");
        /* BN always has its running statistics */
        ck_assert_msg(t || !ns_test_is_kind(L, "bn"), "%s: no running_mean", L->name);
        if (t)
            ns_test_fill_normal(t->data, t->size, &r, 0.4, 0.1);
        t = ns_test_find_tensor(L->state, L->nstate, "running_var");
        ck_assert_msg(t || !ns_test_is_kind(L, "bn"), "%s: no running_var", L->name);
        if (t)
            for (size_t c = 0; c < t->size; c++)
                t->data[c] = (ns_real)(0.5 + 1.5 * ns_rng_uniform(&r));
    }
}

/* ------------------------------------------- finite-difference checks */

void ns_test_gprob_init(ns_test_gprob *p, const ns_test_gcase *gc)
{
    memset(p, 0, sizeof *p);
    p->gc = gc;
    p->net = ns_test_build(gc->arch, &gc->no, gc->c, gc->h, gc->w, gc->nout, gc->n + 3);
    ns_test_randomize_norm(p->net, gc->no.eps_l, 4321);
    p->nin = gc->n * gc->c * gc->h * gc->w;
    p->nz = gc->n * gc->nout;
    p->x = malloc(p->nin * sizeof *p->x);
    p->r = malloc(p->nz * sizeof *p->r);
    p->dl = malloc(p->nz * sizeof *p->dl);
    p->y = malloc(gc->n * sizeof *p->y);
    p->ga = malloc((p->net->nparams + 1) * sizeof *p->ga);
    p->gx = malloc(p->nin * sizeof *p->gx);
    ck_assert(p->x && p->r && p->dl && p->y && p->ga && p->gx);
    ns_rng rng;
    ns_rng_seed(&rng, 2024, 1);
    ns_test_fill_normal(p->x, p->nin, &rng, 1.3, 0.37);
    ns_test_fill_normal(p->r, p->nz, &rng, 1.0, 0.0);
    for (size_t i = 0; i < gc->n; i++)
        p->y[i] = (int32_t)ns_rng_below(&rng, gc->nout);
    p->ctx.mode = gc->mode;
    p->ctx.seed = 77;
    p->ctx.step = 5;
    if (ns_test_net_has_kind(p->net, "bkn") && !p->net->opts.bkn_grad) {
        ns_ctx tr = p->ctx;
        tr.mode = NS_MODE_BATCH;
        ck_assert_int_eq(ns_net_forward(p->net, p->x, gc->n, &tr), NS_OK);
        for (size_t i = 0; i < p->net->nlayers; i++)
            if (ns_test_is_kind(&p->net->layers[i], "bkn"))
                ns_bkn_freeze(&p->net->layers[i], 1);
    }
}

void ns_test_gprob_release(ns_test_gprob *p)
{
    ns_net_free(p->net);
    free(p->x);
    free(p->r);
    free(p->dl);
    free(p->y);
    free(p->ga);
    free(p->gx);
}

double ns_test_gprob_objective(ns_test_gprob *p, ns_real *dl)
{
    const ns_test_gcase *gc = p->gc;
    int st = ns_net_forward(p->net, p->x, gc->n, &p->ctx);
    ck_assert_msg(st == NS_OK, "%s: forward failed: %s", gc->name, ns_errmsg());
    const ns_real *z = ns_net_logits(p->net);
    if (gc->ce) {
        double loss;
        ns_softmax_ce(z, p->y, gc->n, gc->nout, dl, &loss, NULL);
        return loss;
    }
    long double s = 0;
    for (size_t i = 0; i < p->nz; i++)
        s += (long double)p->r[i] * z[i];
    if (dl)
        memcpy(dl, p->r, p->nz * sizeof *dl);
    return (double)s;
}

void ns_test_gprob_analytic(ns_test_gprob *p)
{
    ns_net *net = p->net;
    ns_net_zero_grad(net);
    ns_test_gprob_objective(p, p->dl);
    ns_net_backward(net, p->dl);
    memcpy(p->ga, net->grads, net->nparams * sizeof *p->ga);
    /* The network never needs dL/dx; ask the first layer for it (this adds
     * its parameter gradients a second time, after they were copied). */
    ns_layer *L0 = &net->layers[0];
    const ns_real *dy0 = net->nlayers == 1 ? p->dl : net->dact[0];
    L0->ops->backward(L0, p->gx, NULL, 0, dy0, net->act[0], p->x, p->gc->n);
}

void ns_test_gprob_analytic_keep_state(ns_test_gprob *p)
{
    const ns_test_gcase *gc = p->gc;
    ns_net *net = p->net;
    ns_real *state0 = malloc((net->nstate + 1) * sizeof *state0);
    ck_assert_ptr_nonnull(state0);
    memcpy(state0, net->state, net->nstate * sizeof *state0);
    ns_test_gprob_analytic(p);
    /* Batch and eval passes leave the state alone. */
    if (gc->mode != NS_MODE_TRAIN)
        ck_assert_msg(memcmp(state0, net->state, net->nstate * sizeof *state0) == 0,
                      "%s: state changed in mode %d", gc->name, (int)gc->mode);
    free(state0);
}

/* Central difference of the objective in one value. */
static double gprob_central(ns_test_gprob *p, ns_real *v)
{
    ns_real v0 = *v;
    *v = (ns_real)(v0 + NS_TEST_FD_STEP);
    double hp = *v;
    double lp = ns_test_gprob_objective(p, NULL);
    *v = (ns_real)(v0 - NS_TEST_FD_STEP);
    double hm = *v;
    double lm = ns_test_gprob_objective(p, NULL);
    *v = v0;
    return (lp - lm) / (hp - hm);
}

/* Indices of a tensor of `size` values to check: all, or first, last and
 * random others. */
static size_t gprob_pick(size_t j, size_t size, size_t maxcheck, ns_rng *r)
{
    if (maxcheck == 0 || size <= maxcheck || j == 0)
        return j;
    if (j == maxcheck - 1)
        return size - 1;
    return ns_rng_below(r, size);
}

double ns_test_gprob_check_values(ns_test_gprob *p, const char *what, ns_real *v,
                                  const ns_real *ana, size_t size, ns_rng *r)
{
    const ns_test_gcase *gc = p->gc;
    size_t cnt = (gc->maxcheck && size > gc->maxcheck) ? gc->maxcheck : size;
    double worst = 0;
    for (size_t j = 0; j < cnt; j++) {
        size_t i = gprob_pick(j, size, gc->maxcheck, r);
        double num = gprob_central(p, v + i);
        double a = ana[i];
        double den = fabs(num) > NS_TEST_FD_FLOOR ? fabs(num) : NS_TEST_FD_FLOOR;
        double err = fabs(a - num) / den;
        ck_assert_msg(err < NS_TEST_FD_TOL,
                      "%s: %s[%zu]: analytic %.12g, finite difference %.12g "
                      "(relative error %.3g)", gc->name, what, i, a, num, err);
        worst = err > worst ? err : worst;
        if (getenv("NS_TEST_VERBOSE") && err > 5e-8)
            fprintf(stderr, "  %s %s[%zu] analytic %.10g fd %.10g err %.3g\n", gc->name, what,
                    i, a, num, err);
    }
    return worst;
}

double ns_test_gprob_check_all(ns_test_gprob *p, size_t *norm_checked)
{
    const ns_test_gcase *gc = p->gc;
    ns_net *net = p->net;
    ck_assert_msg(net->nparams == 0 || ns_test_max_abs(p->ga, net->nparams) > 0,
                  "%s: all parameter gradients are zero", gc->name);
    ns_rng r;
    ns_rng_seed(&r, 555, 0);
    double worst = 0, e;
    char what[64];
    if (norm_checked)
        *norm_checked = 0;
    for (size_t i = 0; i < net->nlayers; i++) {
        ns_layer *L = &net->layers[i];
        for (int t = 0; t < L->nparam; t++) {
            ns_tensor *T = &L->param[t];
            const ns_real *ana = p->ga + (T->data - net->params);
            if (norm_checked && ns_layer_is_norm(L)) {
                ck_assert_msg(ns_test_max_abs(ana, T->size) > 1e-8, "%s: %s.%s: zero gradient",
                              gc->name, L->name, T->name);
                (*norm_checked)++;
            }
            snprintf(what, sizeof what, "%s.%s", L->name, T->name);
            e = ns_test_gprob_check_values(p, what, T->data, ana, T->size, &r);
            worst = e > worst ? e : worst;
        }
    }
    ck_assert_msg(ns_test_max_abs(p->gx, p->nin) > 1e-8, "%s: zero input gradient", gc->name);
    e = ns_test_gprob_check_values(p, "input", p->x, p->gx, p->nin, &r);
    worst = e > worst ? e : worst;
    if (getenv("NS_TEST_VERBOSE"))
        fprintf(stderr, "%-24s worst relative error %.3g\n", gc->name, worst);
    return worst;
}

void ns_test_gprob_check_finite(ns_test_gprob *p)
{
    const ns_test_gcase *gc = p->gc;
    ns_net *net = p->net;
    ck_assert_msg(ns_test_all_finite(ns_net_logits(net), p->nz), "%s: logits not finite",
                  gc->name);
    ck_assert_msg(ns_test_all_finite(p->ga, net->nparams), "%s: gradients not finite", gc->name);
    ck_assert_msg(ns_test_all_finite(p->gx, p->nin), "%s: input gradient not finite", gc->name);
    ck_assert_msg(ns_test_all_finite(net->state, net->nstate), "%s: state not finite", gc->name);
    ck_assert_msg(ns_test_max_abs(p->gx, p->nin) > 0, "%s: input gradient is zero", gc->name);
    ck_assert_msg(net->nparams == 0 || ns_test_max_abs(p->ga, net->nparams) > 0,
                  "%s: all parameter gradients are zero", gc->name);
}

int ns_test_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

void ns_test_compute_refs(const char *script, const char *const *need, size_t n,
                          int (*write_case)(size_t i, char *why, size_t len),
                          const char *(*in_path)(size_t i), const char *(*out_path)(size_t i),
                          char *problem, size_t len)
{
    const char *py = ns_test_python();
    if (!py) {
        snprintf(problem, len, "python3 with torch and h5py is required (set PYTHON or install "
                 "python3-torch python3-h5py)");
        return;
    }
    for (const char *const *f = need; f && *f; f++)
        if (access(*f, R_OK) != 0) {
            snprintf(problem, len, "%s not found: run from the source root", *f);
            return;
        }
    size_t cap = 64 + strlen(py) + strlen(script) + n * 1100, used;
    char *cmd = malloc(cap);
    if (!cmd) {
        snprintf(problem, len, "out of memory");
        return;
    }
    used = (size_t)snprintf(cmd, cap, "'%s' %s", py, script);
    for (size_t i = 0; i < n; i++) {
        if (write_case(i, problem, len) != 0) {
            free(cmd);
            return;
        }
        used += (size_t)snprintf(cmd + used, cap - used, " '%s' '%s'", in_path(i), out_path(i));
    }
    int st = ns_test_system("%s >/dev/null", cmd);
    free(cmd);
    if (st != 0)
        snprintf(problem, len, "%s failed with status %d", script, st);
    else
        problem[0] = '\0';
}

