/*
 * Cross-check of the network engine against PyTorch (tests/torch_ref.py).
 *
 * Each case builds a network, writes its layers (kind, wiring, geometry),
 * parameters and BN state in PyTorch's layout, a batch and the mode to an
 * HDF5 file, and runs torch_ref.py, which rebuilds the network from
 * torch.nn modules, runs forward and the mean cross-entropy backward, and
 * writes logits, loss, parameter gradients and the BN buffers after the
 * pass.  normscope does the same step and the results must agree to 1e-10
 * (double build, torch in float64) or 1e-5 (float build, torch in float32),
 * relative to the largest magnitude of each tensor.  Python with torch and
 * h5py is required: without it every case fails.
 */
#include "testutil.h"

#include "normscope/nn.h"
#include "normscope/norm.h"

#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef NS_DOUBLE
#define TOL 1e-10
#define DTYPE "float64"
#define make_real H5LTmake_dataset_double
#else
#define TOL 1e-5
#define DTYPE "float32"
#define make_real H5LTmake_dataset_float
#endif

typedef struct tcase {
    const char *name;
    const char *arch;
    const char *norm;
    size_t group;
    int affine;
    size_t c, h, w, nout, n;
    ns_mode mode;      /* NS_MODE_TRAIN or NS_MODE_EVAL */
} tcase;

#define TR NS_MODE_TRAIN
#define EV NS_MODE_EVAL

static const tcase cases[] = {
    /* dense: BatchNorm1d */
    {"mlp-bn-train", "mlp:32x2", "bn", 0, 1, 1, 6, 6, 10, 12, TR},
    {"mlp-bn-eval", "mlp:32x2", "bn", 0, 1, 1, 6, 6, 10, 12, EV},
    /* convolutions: BatchNorm2d, stride 2 */
    {"cnn-bn-train", "cnn", "bn", 0, 1, 1, 12, 12, 10, 8, TR},
    {"cnn-bn-eval", "cnn", "bn", 0, 1, 1, 12, 12, 10, 8, EV},
    /* pooling and activations */
    {"pool", "conv5x5:4p0,relu,maxpool:2,avgpool:2/1,gap,fc:out", "none", 0, 1, 1, 12, 12,
     10, 8, TR},
    {"pool-acts",
     "conv3x3:6/2,lrelu:0.2,maxpool:3/2,conv1x1:5,tanh,avgpool:2,flatten,fc:16,erf,id,fc:out",
     "none", 0, 1, 2, 12, 12, 7, 8, TR},
    /* residual blocks, identity and projection shortcuts */
    {"resnet8-bn-train", "resnet8", "bn", 0, 1, 1, 12, 12, 10, 8, TR},
    {"resnet8-bn-eval", "resnet8", "bn", 0, 1, 1, 12, 12, 10, 8, EV},
    /* BN variants: ghost groups (short last group), no affine, dropout off */
    {"bn-ghost-train", "conv3x3:4,bn,relu,fc:12,bn,relu,fc:out", "bn", 5, 1, 2, 6, 6, 5, 13,
     TR},
    {"bn-noaffine-train", "conv3x3:4,bn,relu,conv3x3:4/2,bn,gap,fc:out", "bn", 0, 0, 2, 6, 6,
     5, 8, TR},
    {"dropout-bn-eval", "fc:16,bn,dropout:0.5,relu,fc:out", "bn", 0, 1, 1, 5, 5, 4, 8, EV},
};
#define NCASES (sizeof cases / sizeof *cases)

/* ------------------------------------------------------- layer geometry */

/* What torch needs beyond the layer struct: conv and pooling geometry,
 * the lrelu slope and the dropout probability. */
typedef struct geom {
    size_t k, stride, pad;
    double alpha, p;
} geom;

static int is_kind(const ns_layer *L, const char *kind)
{
    return strcmp(L->ops->kind, kind) == 0;
}

static size_t expect(const ns_net *net, size_t li, const char *kind)
{
    ck_assert_msg(li < net->nlayers && is_kind(&net->layers[li], kind),
                  "layer %zu is not a %s", li, kind);
    return li + 1;
}

static size_t conv_geom(const ns_net *net, geom *g, size_t li, size_t k, size_t s, size_t p)
{
    const ns_layer *L = &net->layers[li];
    expect(net, li, "conv");
    g[li].k = k;
    g[li].stride = s;
    g[li].pad = p;
    ck_assert_uint_eq(L->out_h, (L->in_h + 2 * p - k) / s + 1);
    ck_assert_uint_eq(L->param[0].dims[2], k);
    return li + 1;
}

static size_t skip_norm(const ns_net *net, size_t li)
{
    return li < net->nlayers && is_kind(&net->layers[li], "bn") ? li + 1 : li;
}

/* Walks the expanded architecture string beside the layer list. */
static void arch_geometry(const ns_net *net, geom *g)
{
    char *copy = strdup(net->arch), *save = NULL;
    ck_assert_ptr_nonnull(copy);
    size_t li = 0;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        size_t k, k2, c, s, p;
        char *e;
        if (sscanf(t, "conv%zux%zu:%zu", &k, &k2, &c) == 3) {
            s = 1;
            p = k / 2;
            if ((e = strchr(t, '/')))
                s = strtoul(e + 1, NULL, 10);
            if ((e = strchr(t, 'p')))
                p = strtoul(e + 1, NULL, 10);
            li = conv_geom(net, g, li, k, s, p);
        } else if (strncmp(t, "maxpool:", 8) == 0 || strncmp(t, "avgpool:", 8) == 0) {
            k = strtoul(t + 8, &e, 10);
            s = *e == '/' ? strtoul(e + 1, NULL, 10) : k;
            expect(net, li, t[0] == 'm' ? "maxpool" : "avgpool");
            g[li].k = k;
            g[li].stride = s;
            li++;
        } else if (strncmp(t, "res:", 4) == 0) {
            c = strtoul(t + 4, &e, 10);
            s = *e == '/' ? strtoul(e + 1, NULL, 10) : 1;
            li = conv_geom(net, g, li, 3, s, 1);
            li = skip_norm(net, li);
            li = expect(net, li, "relu");
            li = conv_geom(net, g, li, 3, 1, 1);
            li = skip_norm(net, li);
            if (is_kind(&net->layers[li], "conv")) {
                li = conv_geom(net, g, li, 1, s, 0);
                li = skip_norm(net, li);
            }
            li = expect(net, li, "add");
            li = expect(net, li, "relu");
        } else if (strcmp(t, "norm") == 0 || strcmp(t, "bn") == 0) {
            li = skip_norm(net, li);
        } else if (strncmp(t, "lrelu", 5) == 0) {
            g[li].alpha = t[5] == ':' ? strtod(t + 6, NULL) : 0.01;
            li = expect(net, li, "lrelu");
        } else if (strncmp(t, "dropout:", 8) == 0) {
            g[li].p = strtod(t + 8, NULL);
            li = expect(net, li, "dropout");
        } else {
            li++;
        }
    }
    ck_assert_uint_eq(li, net->nlayers);
    free(copy);
}

/* ---------------------------------------------------------------- HDF5 */

static void set_int(hid_t f, const char *obj, const char *name, long v)
{
    int i = (int)v;
    ck_assert(H5LTset_attribute_int(f, obj, name, &i, 1) >= 0);
}

static void set_double(hid_t f, const char *obj, const char *name, double v)
{
    ck_assert(H5LTset_attribute_double(f, obj, name, &v, 1) >= 0);
}

static void put_tensor(hid_t f, const char *obj, const ns_tensor *t)
{
    char path[128];
    hsize_t dims[4];
    for (int d = 0; d < t->ndim; d++)
        dims[d] = t->dims[d];
    snprintf(path, sizeof path, "%s/%s", obj, t->name);
    ck_assert(make_real(f, path, t->ndim, dims, t->data) >= 0);
}

static void write_input(const char *path, const tcase *tc, const ns_net *net,
                        const ns_real *x, const int32_t *y)
{
    geom *g = calloc(net->nlayers, sizeof *g);
    ck_assert_ptr_nonnull(g);
    arch_geometry(net, g);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_msg(f >= 0, "cannot create '%s'", path);
    H5LTset_attribute_string(f, "/", "mode", tc->mode == NS_MODE_TRAIN ? "train" : "eval");
    H5LTset_attribute_string(f, "/", "dtype", DTYPE);
    set_int(f, "/", "group", (long)tc->group);
    set_double(f, "/", "eps", net->opts.bn_eps);
    set_double(f, "/", "momentum", net->opts.bn_momentum);
    size_t nl = net->nlayers, len = nl * (sizeof net->layers[0].name + 1), used = 0;
    char *names = calloc(len, 1);
    ck_assert_ptr_nonnull(names);
    for (size_t i = 0; i < nl; i++)
        used += (size_t)snprintf(names + used, len - used, "%s%s", i ? "," : "",
                                 net->layers[i].name);
    H5LTset_attribute_string(f, "/", "names", names);
    free(names);
    hsize_t xd[4] = {tc->n, tc->c, tc->h, tc->w}, yd[1] = {tc->n};
    ck_assert(make_real(f, "/x", 4, xd, x) >= 0);
    ck_assert(H5LTmake_dataset_int(f, "/y", 1, yd, y) >= 0);
    hid_t gl = H5Gcreate2(f, "/layers", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(gl >= 0);
    for (size_t i = 0; i < nl; i++) {
        const ns_layer *L = &net->layers[i];
        char obj[64];
        snprintf(obj, sizeof obj, "/layers/%s", L->name);
        hid_t gi = H5Gcreate2(f, obj, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        ck_assert(gi >= 0);
        H5Gclose(gi);
        H5LTset_attribute_string(f, obj, "kind", L->ops->kind);
        set_int(f, obj, "src", L->src);
        set_int(f, obj, "src2", L->src2);
        int shape[3] = {(int)L->in_c, (int)L->in_h, (int)L->in_w};
        H5LTset_attribute_int(f, obj, "in_shape", shape, 3);
        set_int(f, obj, "k", (long)g[i].k);
        set_int(f, obj, "stride", (long)g[i].stride);
        set_int(f, obj, "pad", (long)g[i].pad);
        set_double(f, obj, "alpha", g[i].alpha);
        set_double(f, obj, "p", g[i].p);
        set_int(f, obj, "affine", net->opts.bn_affine);
        for (int t = 0; t < L->nparam; t++)
            put_tensor(f, obj, &L->param[t]);
        for (int t = 0; t < L->nstate; t++)
            put_tensor(f, obj, &L->state[t]);
    }
    H5Gclose(gl);
    H5Fclose(f);
    free(g);
}

/* Reads a float64 dataset of exactly n values into a new buffer. */
static double *read_ref(hid_t f, const char *path, size_t n)
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

/* Largest |a - ref| relative to max |ref|, or to floor when that is larger
 * (gradients that vanish in exact arithmetic, such as the bias of a layer
 * before a batch norm, are rounding noise in both programs). */
static void compare(const char *cs, const char *what, const ns_real *a, const double *ref,
                    size_t n, double floor)
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
    ck_assert_msg(worst < TOL, "%s: %s[%zu]: normscope %.12g, torch %.12g (error %.3g of max %.3g)",
                  cs, what, at, (double)a[at], ref[at], worst, mx);
}

/* ------------------------------------------------------------- the test */

/* 1 when layer i's bias gradient vanishes in exact arithmetic: its only
 * reader is a batch norm using batch statistics, which removes the mean. */
static int bias_vanishes(const ns_net *net, size_t i, ns_mode mode)
{
    if (mode == NS_MODE_EVAL)
        return 0;
    int readers = 0, bn = 0;
    for (size_t j = i + 1; j < net->nlayers; j++) {
        const ns_layer *L = &net->layers[j];
        if (L->src == (int)i || L->src2 == (int)i) {
            readers++;
            bn |= is_kind(L, "bn");
        }
    }
    return readers == 1 && bn;
}

static void randomize_bn(ns_net *net, ns_rng *r)
{
    for (size_t i = 0; i < net->nlayers; i++) {
        ns_layer *L = &net->layers[i];
        if (!is_kind(L, "bn"))
            continue;
        for (int t = 0; t < L->nparam; t++)
            for (size_t j = 0; j < L->param[t].size; j++)
                L->param[t].data[j] = (ns_real)(t == 0 ? 0.6 + 0.8 * ns_rng_uniform(r)
                                                       : 0.3 * ns_rng_normal(r));
        for (size_t j = 0; j < L->out_c; j++) {
            L->state[0].data[j] = (ns_real)(0.2 * ns_rng_normal(r));
            L->state[1].data[j] = (ns_real)(0.5 + ns_rng_uniform(r));
        }
        L->state[2].data[0] = 3;
    }
}

START_TEST(test_against_torch)
{
    const tcase *tc = &cases[_i];
    const char *py = ns_test_python();
    ck_assert_msg(py != NULL, "python3 with torch and h5py is required (set PYTHON or "
                  "install python3-torch python3-h5py)");
    ns_net_opts o;
    ns_net_opts_default(&o);
    snprintf(o.norm, sizeof o.norm, "%s", tc->norm);
    o.norm_group = tc->group;
    o.bn_affine = tc->affine;
    o.max_batch = tc->n;
    ns_net *net = NULL;
    ck_assert_msg(ns_net_build(tc->arch, &o, tc->c, tc->h, tc->w, tc->nout, &net) == NS_OK,
                  "%s: %s", tc->name, ns_errmsg());
    ns_init ini = {NS_INIT_TORCH, 0, 0};
    ns_net_init(net, &ini, 99);
    ns_rng r;
    ns_rng_seed(&r, 314, 0);
    randomize_bn(net, &r);
    size_t nin = tc->n * tc->c * tc->h * tc->w, nz = tc->n * tc->nout;
    ns_real *x = malloc(nin * sizeof *x), *dl = malloc(nz * sizeof *dl);
    int32_t *y = malloc(tc->n * sizeof *y);
    ck_assert(x && dl && y);
    for (size_t i = 0; i < nin; i++)
        x[i] = (ns_real)(0.25 + 1.2 * ns_rng_normal(&r));
    for (size_t i = 0; i < tc->n; i++)
        y[i] = (int32_t)ns_rng_below(&r, tc->nout);

    ck_assert_msg(access("tests/torch_ref.py", R_OK) == 0,
                  "tests/torch_ref.py not found: run from the source root");
    char in[64], out[64];
    snprintf(in, sizeof in, "in-%s.h5", tc->name);
    snprintf(out, sizeof out, "out-%s.h5", tc->name);
    const char *inp = ns_test_path(in), *outp = ns_test_path(out);
    write_input(inp, tc, net, x, y);
    int st = ns_test_system("'%s' tests/torch_ref.py '%s' '%s'", py, inp, outp);
    ck_assert_msg(st == 0, "%s: torch_ref.py failed with status %d", tc->name, st);

    ns_ctx ctx = {tc->mode, 1, 0};
    ck_assert_int_eq(ns_net_forward(net, x, tc->n, &ctx), NS_OK);
    double loss;
    ns_softmax_ce(ns_net_logits(net), y, tc->n, tc->nout, dl, &loss, NULL);
    ns_net_zero_grad(net);
    ns_net_backward(net, dl);

    hid_t f = H5Fopen(outp, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_msg(f >= 0, "cannot open '%s'", outp);
    double *ref = read_ref(f, "/logits", nz);
    compare(tc->name, "logits", ns_net_logits(net), ref, nz, 0);
    free(ref);
    ref = read_ref(f, "/loss", 1);
    ns_real l = (ns_real)loss;
    compare(tc->name, "loss", &l, ref, 1, 0);
    free(ref);
    /* gradients: relative to each tensor's largest, floored at 1e-3 of the
     * largest gradient of the network; gradients that vanish exactly are
     * rounding noise on both sides, compared to the largest gradient */
    double gmax = 0;
    for (size_t i = 0; i < net->nparams; i++)
        gmax = fabs((double)net->grads[i]) > gmax ? fabs((double)net->grads[i]) : gmax;
    char path[128];
    for (size_t i = 0; i < net->nlayers; i++) {
        const ns_layer *L = &net->layers[i];
        for (int t = 0; t < L->nparam; t++) {
            snprintf(path, sizeof path, "/grad/%s/%s", L->name, L->param[t].name);
            ref = read_ref(f, path, L->param[t].size);
            int zero = strcmp(L->param[t].name, "bias") == 0 && bias_vanishes(net, i, tc->mode);
            compare(tc->name, path, L->param[t].grad, ref, L->param[t].size,
                    zero ? gmax : 1e-3 * gmax);
            free(ref);
        }
        for (int t = 0; t < L->nstate; t++) {
            snprintf(path, sizeof path, "/state/%s/%s", L->name, L->state[t].name);
            ref = read_ref(f, path, L->state[t].size);
            compare(tc->name, path, L->state[t].data, ref, L->state[t].size, 0);
            free(ref);
        }
    }
    H5Fclose(f);
    free(x);
    free(dl);
    free(y);
    ns_net_free(net);
}
END_TEST

static Suite *torch_suite(void)
{
    Suite *s = suite_create("torch");
    TCase *tc = tcase_create("reference");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_against_torch, 0, (int)NCASES);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    ns_set_threads(2);
    /* Probe python and make the directory once, before the tests fork. */
    ns_test_python();
    ns_test_tmpdir();
    return ns_test_run(torch_suite());
}
