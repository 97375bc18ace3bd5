/*
 * The empirical NTK (src/analysis/ntk_compute.c, src/analysis/eig.c).
 *
 * Against PyTorch (tests/ntk_ref.py: a per-output autograd loop, itself
 * checked against functorch's vmap(jacrev) and finite differences) on the
 * same weights and inputs: mlp, small cnn, a residual net and GroupNorm in
 * eval mode, full and trace kernels, and the coupled batch-mode kernel of
 * BN networks.  Tolerance: 1e-8 of max |Theta| in the double build (torch
 * in float64), 1e-4 in the float build.
 *
 * Properties: structured = Jacobian form; symmetry; positive
 * semi-definiteness; the diagonal equals the squared norms of Jacobian rows
 * computed by whole-network backward passes; blockwise (factors recomputed
 * per tile) = one block; the HDF5 sink = the memory sink; ARPACK's top
 * eigenvalues = LAPACK's; K v = lambda v for the eigenpairs.
 */
#include "testutil.h"

#include "normscope/nn.h"
#include "normscope/io.h"
#include "normscope/meanfield.h"
#include "normscope/norm.h"
#include "normscope/ntk.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef NS_DOUBLE
#define TOL 1e-8
#define PTOL 1e-10
#else
#define TOL 1e-4
#define PTOL 1e-4
#endif

typedef struct tcase {
    const char *name, *arch, *norm;
    size_t c, h, w, nout, n;
    ns_mode mode;
    int trace;
} tcase;

#define EV NS_MODE_EVAL
#define BA NS_MODE_BATCH
#define CNN "conv3x3:4,norm,relu,conv3x3:6/2,norm,relu,gap,fc:out"
#define RES "conv3x3:4,norm,relu,res:4,res:6/2,gap,fc:out"

static const tcase cases[] = {
    {"mlp-bn-eval", "mlp:24x2", "bn", 1, 6, 6, 5, 6, EV, 0},
    {"mlp-none-eval", "mlp:24x2", "none", 1, 6, 6, 5, 6, EV, 0},
    {"mlp-bn-trace", "mlp:24x2", "bn", 1, 6, 6, 5, 6, EV, 1},
    {"cnn-bn-eval", CNN, "bn", 1, 8, 8, 4, 5, EV, 0},
    {"cnn-bn-trace", CNN, "bn", 1, 8, 8, 4, 5, EV, 1},
    {"cnn-gn-eval", CNN, "gn", 1, 8, 8, 4, 5, EV, 0},
    {"res-bn-eval", RES, "bn", 1, 8, 8, 3, 4, EV, 0},
    {"mlp-bn-batch", "mlp:24x2", "bn", 1, 6, 6, 5, 6, BA, 0},
    {"cnn-bn-batch", CNN, "bn", 1, 8, 8, 4, 5, BA, 0},
    {"cnn-bn-batch-trace", CNN, "bn", 1, 8, 8, 4, 5, BA, 1},
};
#define NCASES (sizeof cases / sizeof *cases)

/* Non-trivial norm parameters and running statistics. */
static void randomize_norm(ns_net *net, ns_rng *r)
{
    for (size_t i = 0; i < net->nlayers; i++) {
        ns_layer *L = &net->layers[i];
        if (!ns_layer_is_norm(L))
            continue;
        for (int t = 0; t < L->nparam; t++)
            for (size_t j = 0; j < L->param[t].size; j++)
                L->param[t].data[j] = !strcmp(L->param[t].name, "weight")
                                          ? (ns_real)(0.6 + 0.8 * ns_rng_uniform(r))
                                          : (ns_real)(0.3 * ns_rng_normal(r));
        if (!strcmp(L->ops->kind, "bn"))
            for (size_t j = 0; j < L->out_c; j++) {
                L->state[0].data[j] = (ns_real)(0.2 * ns_rng_normal(r));
                L->state[1].data[j] = (ns_real)(0.5 + ns_rng_uniform(r));
            }
    }
}

static int make_case(const tcase *tc, ns_net **net, ns_real **x, int32_t **y)
{
    ns_net_opts o;
    ns_net_opts_default(&o);
    snprintf(o.norm, sizeof o.norm, "%s", tc->norm);
    o.gn_groups = 2;
    o.max_batch = tc->n;
    *x = NULL;
    *y = NULL;
    int st = ns_net_build(tc->arch, &o, tc->c, tc->h, tc->w, tc->nout, net);
    if (st)
        return st;
    ns_init ini = {NS_INIT_TORCH, 0, 0};
    ns_net_init(*net, &ini, 7);
    ns_rng r;
    ns_rng_seed(&r, 271, 0);
    randomize_norm(*net, &r);
    size_t nin = tc->n * tc->c * tc->h * tc->w;
    *x = malloc(nin * sizeof **x);
    *y = malloc(tc->n * sizeof **y);
    if (!*x || !*y)
        return NS_ENOMEM;
    for (size_t i = 0; i < nin; i++)
        (*x)[i] = (ns_real)ns_rng_normal(&r);
    for (size_t i = 0; i < tc->n; i++)
        (*y)[i] = (int32_t)(i % tc->nout);
    return NS_OK;
}

/* The kernel of a case in memory (dim x dim). */
static double *kernel_of(ns_net *net, const ns_real *x, const int32_t *y, size_t n,
                         const ns_ntk_opts *o, ns_ntk_stats *s, size_t *dim)
{
    *dim = o->trace ? n : n * net->nout;
    ns_ntk_memsink ms = {calloc(*dim * *dim, sizeof(double)), *dim};
    ck_assert_ptr_nonnull(ms.k);
    ns_ntk_sink sink = {ns_ntk_memsink_put, &ms};
    ns_ntk_stats tmp;
    int st = ns_ntk_compute(net, x, y, n, o, &sink, s ? s : &tmp);
    ck_assert_msg(st == NS_OK, "ntk: %s", ns_errmsg());
    if (!s)
        ns_ntk_stats_free(&tmp);
    return ms.k;
}

static double max_abs(const double *a, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

static double rel_diff(const double *a, const double *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fabs(a[i] - b[i]) > m ? fabs(a[i] - b[i]) : m;
    return m / max_abs(b, n);
}

/* ----------------------------------------------------------- PyTorch */

static char ref_problem[512] = "the reference was not computed";

static const char *in_path(size_t i)
{
    char name[64];
    snprintf(name, sizeof name, "ntk-in-%s.h5", cases[i].name);
    return ns_test_path(name);
}

static const char *out_path(size_t i)
{
    char name[64];
    snprintf(name, sizeof name, "ntk-out-%s.h5", cases[i].name);
    return ns_test_path(name);
}

/* The input file of case i: torch_ref.py's format plus the NTK mode and
 * kernel (for ns_test_compute_refs). */
static int write_case(size_t i, char *why, size_t len)
{
    const tcase *tc = &cases[i];
    ns_net *net = NULL;
    ns_real *x;
    int32_t *y;
    int st = make_case(tc, &net, &x, &y);
    if (!st && ns_test_torch_write(in_path(i), net, x, y, tc->n, NS_MODE_EVAL) != 0)
        st = NS_EIO;
    if (!st) {
        hid_t f = H5Fopen(in_path(i), H5F_ACC_RDWR, H5P_DEFAULT);
        st = f < 0;
        if (!st) {
            st = ns_h5_attr_str(f, ".", "ntk_mode", tc->mode == BA ? "batch" : "eval") ||
                 ns_h5_attr_str(f, ".", "kernel", tc->trace ? "trace" : "full");
            H5Fclose(f);
        }
    }
    ns_net_free(net);
    free(x);
    free(y);
    if (st)
        snprintf(why, len, "%s: cannot write the case", tc->name);
    return st;
}

/* Writes every case's input and runs ntk_ref.py once over all of them. */
static void compute_references(void)
{
    static const char *const need[] = {"tests/ntk_ref.py", "tests/torch_ref.py", NULL};
    ns_test_compute_refs("tests/ntk_ref.py", need, NCASES, write_case, in_path, out_path,
                         ref_problem, sizeof ref_problem);
}

START_TEST(test_against_torch)
{
    const tcase *tc = &cases[_i];
    ck_assert_msg(ref_problem[0] == '\0', "%s: %s", tc->name, ref_problem);
    ns_net *net = NULL;
    ns_real *x;
    int32_t *y;
    ck_assert_int_eq(make_case(tc, &net, &x, &y), NS_OK);
    ns_ntk_opts o = {.mode = tc->mode, .trace = tc->trace};
    size_t dim;
    double *k = kernel_of(net, x, y, tc->n, &o, NULL, &dim);
    hid_t f = H5Fopen(out_path((size_t)_i), H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_msg(f >= 0, "cannot open '%s'", out_path((size_t)_i));
    double *ref = ns_test_read_ref(f, "/kernel", dim * dim);
    H5Fclose(f);
    double e = rel_diff(k, ref, dim * dim);
    ck_assert_msg(e < TOL, "%s: kernel differs from PyTorch by %.3g of max |Theta|", tc->name, e);
    /* batch and eval kernels of a BN net differ */
    if (tc->mode == BA) {
        ns_ntk_opts oe = o;
        oe.mode = EV;
        double *ke = kernel_of(net, x, y, tc->n, &oe, NULL, &dim);
        ck_assert_msg(rel_diff(ke, k, dim * dim) > 1e-3, "%s: batch = eval kernel", tc->name);
        free(ke);
    }
    free(ref);
    free(k);
    free(x);
    free(y);
    ns_net_free(net);
}
END_TEST

/* -------------------------------------------------------- properties */

/* Rows of J by whole-network backward passes: eval mode one sample at a
 * time, batch mode over the whole batch. */
static double *jacobian(ns_net *net, const ns_real *x, size_t n, ns_mode mode)
{
    size_t K = net->nout, P = net->nparams, in = net->in_c * net->in_h * net->in_w;
    double *J = malloc(n * K * P * sizeof *J);
    ns_real *dl = calloc(n * K, sizeof *dl);
    ck_assert(J && dl);
    ns_ctx ctx = {.mode = mode};
    if (mode == BA)
        ck_assert_int_eq(ns_net_forward(net, x, n, &ctx), NS_OK);
    for (size_t i = 0; i < n; i++) {
        if (mode == EV)
            ck_assert_int_eq(ns_net_forward(net, x + i * in, 1, &ctx), NS_OK);
        for (size_t k = 0; k < K; k++) {
            size_t r = mode == EV ? k : i * K + k;
            memset(dl, 0, n * K * sizeof *dl);
            dl[r] = 1;
            ns_net_zero_grad(net);
            ns_net_backward(net, dl);
            for (size_t p = 0; p < P; p++)
                J[(i * K + k) * P + p] = (double)net->grads[p];
        }
    }
    free(dl);
    return J;
}

START_TEST(test_properties)
{
    const tcase *tc = &cases[_i];
    ns_net *net = NULL;
    ns_real *x;
    int32_t *y;
    ck_assert_int_eq(make_case(tc, &net, &x, &y), NS_OK);
    ns_ntk_opts o = {.mode = tc->mode, .trace = tc->trace};
    size_t dim, K = net->nout, n = tc->n;
    ns_ntk_stats s;
    double *k = kernel_of(net, x, y, n, &o, &s, &dim);
    double mx = max_abs(k, dim * dim);
    /* symmetric */
    for (size_t i = 0; i < dim; i++)
        for (size_t j = 0; j < dim; j++)
            ck_assert_msg(k[i * dim + j] == k[j * dim + i], "%s: not symmetric at (%zu, %zu)",
                          tc->name, i, j);
    /* J J^T from whole-network backward passes */
    double *J = jacobian(net, x, n, tc->mode);
    size_t P = net->nparams;
    double *ref = calloc(dim * dim, sizeof *ref);
    for (size_t r = 0; r < n * K; r++)
        for (size_t q = 0; q < n * K; q++) {
            if (tc->trace && r % K != q % K)
                continue;
            double v = 0;
            for (size_t p = 0; p < P; p++)
                v += J[r * P + p] * J[q * P + p];
            size_t a = tc->trace ? r / K : r, b = tc->trace ? q / K : q;
            ref[a * dim + b] += v;
        }
    double e = rel_diff(k, ref, dim * dim);
    ck_assert_msg(e < PTOL, "%s: kernel vs J J^T %.3g", tc->name, e);
    /* the trace and the per-layer shares */
    double tr = 0, lt = 0;
    for (size_t i = 0; i < dim; i++)
        tr += ref[i * dim + i];
    for (size_t i = 0; i < net->nlayers; i++)
        lt += s.layer_trace[i];
    ck_assert_msg(fabs(s.trace - tr) < PTOL * tr, "%s: trace %.10g vs %.10g", tc->name, s.trace, tr);
    ck_assert_msg(fabs(lt - tr) < PTOL * tr, "%s: layer traces sum to %.10g, trace %.10g",
                  tc->name, lt, tr);
    double f2 = 0;
    for (size_t i = 0; i < dim * dim; i++)
        f2 += k[i] * k[i];
    ck_assert_msg(fabs(s.frob2 - f2) < 1e-9 * f2, "%s: frobenius", tc->name);
    /* positive semi-definite, and K v = lambda v */
    double *a = malloc(dim * dim * sizeof *a), *w = malloc(dim * sizeof *w);
    memcpy(a, k, dim * dim * sizeof *a);
    ck_assert_int_eq(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'U', (lapack_int)dim, a,
                                   (lapack_int)dim, w), 0);
    ck_assert_msg(w[0] > -PTOL * mx, "%s: eigenvalue %.3g < 0", tc->name, w[0]);
    for (size_t j = 0; j < dim; j++) {
        double err = 0;
        for (size_t i = 0; i < dim; i++) {
            double kv = 0;
            for (size_t l = 0; l < dim; l++)
                kv += k[i * dim + l] * a[l * dim + j];
            err = fmax(err, fabs(kv - w[j] * a[i * dim + j]));
        }
        ck_assert_msg(err < 1e-9 * mx, "%s: K v != lambda v (%.3g)", tc->name, err);
    }
    /* ns_eig_sym gives the same spectrum, descending */
    double *ev = malloc(dim * sizeof *ev);
    memcpy(a, k, dim * dim * sizeof *a);
    ck_assert_int_eq(ns_eig_sym(a, dim, ev), NS_OK);
    for (size_t j = 0; j < dim; j++)
        ck_assert(fabs(ev[j] - w[dim - 1 - j]) < 1e-9 * mx);
    /* structured = Jacobian form (eval mode: the methods differ) */
    if (tc->mode == EV) {
        for (int m = NS_NTK_STRUCTURED; m <= NS_NTK_JACOBIAN; m++) {
            ns_ntk_opts om = o;
            om.method = (ns_ntk_method)m;
            double *km = kernel_of(net, x, y, n, &om, NULL, &dim);
            double em = rel_diff(km, k, dim * dim);
            ck_assert_msg(em < PTOL, "%s: method %d differs by %.3g", tc->name, m, em);
            free(km);
        }
    }
    /* blockwise, factors recomputed per tile (a tiny budget) = one block */
    if (tc->mode == EV) {
        ns_ntk_opts ob = o;
        ob.block = 2;
        ob.mem = (size_t)1 << 20;
        double *kb = kernel_of(net, x, y, n, &ob, NULL, &dim);
        double eb = rel_diff(kb, k, dim * dim);
        ck_assert_msg(eb < (sizeof(ns_real) == 8 ? 1e-12 : 1e-6), "%s: blockwise differs by %.3g", tc->name, eb);
        free(kb);
    }
    ns_ntk_stats_free(&s);
    free(ev);
    free(a);
    free(w);
    free(ref);
    free(J);
    free(k);
    free(x);
    free(y);
    ns_net_free(net);
}
END_TEST

/* The HDF5 sink writes what the memory sink holds; ARPACK reading it back
 * finds LAPACK's top eigenvalues. */
START_TEST(test_h5_sink_arpack)
{
    const tcase *tc = &cases[3];   /* cnn-bn-eval */
    ns_net *net = NULL;
    ns_real *x;
    int32_t *y;
    ck_assert_int_eq(make_case(tc, &net, &x, &y), NS_OK);
    ns_ntk_opts o = {.mode = EV, .block = 2, .mem = (size_t)1 << 20};
    size_t dim;
    double *k = kernel_of(net, x, y, tc->n, &o, NULL, &dim);
    const char *path = ns_test_path("ntk-sink.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t hd[2] = {dim, dim}, ch[2] = {4, 4};
    hid_t sp = H5Screate_simple(2, hd, NULL), pl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(pl, 2, ch);
    hid_t d = H5Dcreate2(f, "k", H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    ck_assert(d >= 0);
    ns_ntk_h5sink hs = {.dset = d, .single = 0};
    ns_ntk_sink sink = {ns_ntk_h5sink_put, &hs};
    ns_ntk_stats s;
    ck_assert_int_eq(ns_ntk_compute(net, x, y, tc->n, &o, &sink, &s), NS_OK);
    ns_ntk_stats_free(&s);
    double *back = malloc(dim * dim * sizeof *back);
    ck_assert(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
    ck_assert(rel_diff(back, k, dim * dim) == 0);
    /* ARPACK top 4 and bottom 3 from the data set, read 3 rows at a time */
    double top[4], bot[3], *a = malloc(dim * dim * sizeof *a), *ev = malloc(dim * sizeof *ev);
    memcpy(a, k, dim * dim * sizeof *a);
    ck_assert_int_eq(ns_eig_sym(a, dim, ev), NS_OK);
    ns_h5_matvec hm;
    ck_assert_int_eq(ns_h5_matvec_init(&hm, d, dim, 3 * dim * sizeof(double)), NS_OK);
    size_t nmv;
    ck_assert_int_eq(ns_eig_arpack(ns_matvec_h5, &hm, dim, 4, 1, 1e-12, top, &nmv), NS_OK);
    ck_assert_int_eq(ns_eig_arpack(ns_matvec_h5, &hm, dim, 3, 0, 1e-12, bot, &nmv), NS_OK);
    /* reading only the upper blocks gives the same products */
    double *xv = malloc(dim * sizeof *xv), *y1 = malloc(dim * sizeof *y1),
           *y2 = malloc(dim * sizeof *y2);
    for (size_t i = 0; i < dim; i++)
        xv[i] = sin((double)i + 0.5);
    ck_assert_int_eq(ns_matvec_h5(&hm, xv, y1), NS_OK);
    hm.upper = 1;
    ck_assert_int_eq(ns_matvec_h5(&hm, xv, y2), NS_OK);
    ck_assert_msg(rel_diff(y2, y1, dim) < 1e-13, "upper-only product differs");
    double top2[4];
    ck_assert_int_eq(ns_eig_arpack(ns_matvec_h5, &hm, dim, 4, 1, 1e-12, top2, &nmv), NS_OK);
    for (int i = 0; i < 4; i++)
        ck_assert(fabs(top2[i] - ev[i]) < 1e-8 * ev[0]);
    free(xv);
    free(y1);
    free(y2);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(fabs(top[i] - ev[i]) < 1e-8 * ev[0], "top %d: %.12g vs %.12g", i, top[i],
                      ev[i]);
    for (int i = 0; i < 3; i++)
        ck_assert_msg(fabs(bot[i] - ev[dim - 3 + i]) < 1e-8 * ev[0], "bottom %d: %.12g vs %.12g",
                      i, bot[i], ev[dim - 3 + i]);
    ns_h5_matvec_free(&hm);
    H5Dclose(d);
    H5Pclose(pl);
    H5Sclose(sp);
    H5Fclose(f);
    free(a);
    free(ev);
    free(back);
    free(k);
    free(x);
    free(y);
    ns_net_free(net);
}
END_TEST

START_TEST(test_bad_options)
{
    const tcase *tc = &cases[1];   /* mlp without BN */
    ns_net *net = NULL;
    ns_real *x;
    int32_t *y;
    ck_assert_int_eq(make_case(tc, &net, &x, &y), NS_OK);
    ns_ntk_memsink ms = {calloc(100 * 100, sizeof(double)), 100};
    ns_ntk_sink sink = {ns_ntk_memsink_put, &ms};
    ns_ntk_stats s;
    ns_ntk_opts o = {.mode = BA};
    ck_assert_int_eq(ns_ntk_compute(net, x, y, tc->n, &o, &sink, &s), NS_EINVAL);
    ck_assert(strstr(ns_errmsg(), "batch statistics") != NULL);
    o.mode = EV;
    o.mem = 1000;
    o.block = 6;
    ck_assert_int_eq(ns_ntk_compute(net, x, y, tc->n, &o, &sink, &s), NS_EINVAL);
    ck_assert(strstr(ns_errmsg(), "--mem") != NULL);
    free(ms.k);
    free(x);
    free(y);
    ns_net_free(net);
}
END_TEST

/* A ReLU MLP of width 2048 at initialisation (weights N(0, 2/fan_in),
 * biases N(0, 0.1)) against the analytic infinite-width NTK of the same
 * parametrisation (ns_mf_kernel with the widths): the mean over 6 seeds and
 * the K outputs of each output's kernel must lie within 4 standard errors
 * (estimated from the seeds) of the analytic value, and those errors must
 * be small (the check has teeth). */
START_TEST(test_wide_relu_analytic)
{
    const size_t n = 3, K = 2, din = 16, width = 2048, nseed = 16;
    ns_rng r;
    ns_rng_seed(&r, 99, 0);
    ns_real x[3 * 16];
    for (size_t i = 0; i < n * din; i++)
        x[i] = (ns_real)ns_rng_normal(&r);
    int32_t y[3] = {0, 1, 0};
    double G[9], est[9 * 16], mean[9] = {0}, var[9] = {0}, ana[9];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t q = 0; q < din; q++)
                s += (double)x[i * din + q] * (double)x[j * din + q];
            G[i * n + j] = s / (double)din;
        }
    ns_net_opts o;
    ns_net_opts_default(&o);
    snprintf(o.norm, sizeof o.norm, "none");
    o.max_batch = n;
    for (size_t sd = 0; sd < nseed; sd++) {
        ns_net *net = NULL;
        ck_assert_int_eq(ns_net_build("fc:2048,relu,fc:2048,relu,fc:out", &o, 1, 4, 4, K, &net),
                         NS_OK);
        ns_init ini = {NS_INIT_GAUSS, 2.0, 0.1};
        ns_net_init(net, &ini, 1000 + sd);
        ns_ntk_opts no = {.mode = EV};
        size_t dim;
        double *k = kernel_of(net, x, y, n, &no, NULL, &dim);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++) {
                double s = 0;
                for (size_t c = 0; c < K; c++)
                    s += k[(i * K + c) * dim + j * K + c];
                est[sd * 9 + i * n + j] = s / (double)K;
            }
        free(k);
        ns_net_free(net);
    }
    for (size_t q = 0; q < n * n; q++) {
        for (size_t sd = 0; sd < nseed; sd++)
            mean[q] += est[sd * 9 + q] / (double)nseed;
        for (size_t sd = 0; sd < nseed; sd++)
            var[q] += pow(est[sd * 9 + q] - mean[q], 2) / (double)(nseed - 1);
    }
    ns_mf_work *w = ns_mf_work_alloc(1e-12);
    ck_assert_ptr_nonnull(w);
    ns_mf_net mn = {.sw2 = 2.0, .sb2 = 0.1};
    ck_assert_int_eq(ns_mf_act_parse("relu", &mn.act), NS_OK);
    size_t widths[3] = {din, width, width};
    ck_assert_int_eq(ns_mf_kernel(w, &mn, 3, G, n, widths, NULL, ana), NS_OK);
    ns_mf_work_free(w);
    for (size_t q = 0; q < n * n; q++)
        if (getenv("NS_TEST_VERBOSE"))
            fprintf(stderr, "entry %zu: %.6g +- %.3g, analytic %.6g\n", q, mean[q],
                    sqrt(var[q] / (double)nseed), ana[q]);
    for (size_t q = 0; q < n * n; q++) {
        double se = sqrt(var[q] / (double)nseed);
        ck_assert_msg(se < 0.05 * ana[q / n * (n + 1)], "entry %zu: standard error %.4g of "
                      "%.4g is too large to test anything", q, se, ana[q]);
        ck_assert_msg(fabs(mean[q] - ana[q]) < 4 * se + 1e-9 * ana[0],
                      "entry %zu: empirical %.6g +- %.2g, analytic %.6g", q, mean[q], se, ana[q]);
    }
}
END_TEST

static Suite *ntk_suite(void)
{
    Suite *s = suite_create("ntk");
    TCase *tc = tcase_create("ntk");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_against_torch, 0, (int)NCASES);
    tcase_add_loop_test(tc, test_properties, 0, (int)NCASES);
    tcase_add_test(tc, test_h5_sink_arpack);
    tcase_add_test(tc, test_bad_options);
    tcase_add_test(tc, test_wide_relu_analytic);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    ns_set_threads(2);
    ns_progress_set_quiet(1);
    compute_references();
    return ns_test_run(ntk_suite());
}
