/*
 * Group normalization (Wu & He, ECCV 2018) and its two ends:
 *   per sample, the C channels are cut into G groups of C/G channels, and
 *   xhat = (x - mu_g) / sqrt(var_g + eps) over (C/G, H, W), var biased;
 *   y = gamma[c] xhat + beta[c]                      (nn.GroupNorm(G, C))
 *   LayerNorm: G = 1 (statistics over all of C, H, W, per-channel affine,
 *     which is nn.GroupNorm(1, C); on dense activations it equals
 *     nn.LayerNorm(C));
 *   InstanceNorm: G = C (per channel over H, W, nn.GroupNorm(C, C), i.e.
 *     nn.InstanceNorm2d(C, affine=True)).
 * No batch dependence: train and eval are the same function.  Only the
 * per-(sample, group) mean and 1/std are kept for backward; xhat is
 * recomputed from the input.
 */
#include "normscope/norm.h"

#include <math.h>
#include <string.h>

typedef struct gn_impl {
    size_t groups;
    double eps;
    double *mean, *invstd;   /* max_batch * groups */
} gn_impl;

static int gn_forward(ns_layer *L, ns_real *y, const ns_real *x,
                      const ns_real *x2, size_t n, const ns_ctx *ctx)
{
    (void)x2;
    (void)ctx;
    gn_impl *g = L->impl;
    size_t C = L->in_c, P = L->in_h * L->in_w, G = g->groups, cpg = C / G;
    size_t size = C * P, len = cpg * P;
    const ns_real *gamma = L->param[0].data, *beta = L->param[1].data;
#pragma omp parallel for schedule(static) if (n * size > 32768)
    for (size_t ig = 0; ig < n * G; ig++) {
        size_t i = ig / G, k = ig % G;
        const ns_real *xp = x + i * size + k * len;
        ns_real *yp = y + i * size + k * len;
        double s = 0, ss = 0;
#pragma omp simd reduction(+ : s)
        for (size_t j = 0; j < len; j++)
            s += xp[j];
        double mu = s / (double)len;
#pragma omp simd reduction(+ : ss)
        for (size_t j = 0; j < len; j++) {
            double d = (double)xp[j] - mu;
            ss += d * d;
        }
        double is = 1.0 / sqrt(ss / (double)len + g->eps);
        g->mean[ig] = mu;
        g->invstd[ig] = is;
        for (size_t cc = 0; cc < cpg; cc++) {
            size_t c = k * cpg + cc;
            ns_real a = (ns_real)(gamma[c] * is);
            ns_real b = (ns_real)(beta[c] - gamma[c] * is * mu);
#pragma omp simd
            for (size_t j = 0; j < P; j++)
                yp[cc * P + j] = a * xp[cc * P + j] + b;
        }
    }
    return NS_OK;
}

static void gn_backward(ns_layer *L, ns_real *dx, ns_real *dx2, int acc,
                        const ns_real *dy, const ns_real *y, const ns_real *x,
                        size_t n)
{
    (void)dx2;
    (void)y;
    acc &= 1;
    gn_impl *g = L->impl;
    size_t C = L->in_c, P = L->in_h * L->in_w, G = g->groups, cpg = C / G;
    size_t size = C * P, len = cpg * P;
    const ns_real *gamma = L->param[0].data;
    ns_real *dgamma = L->param[0].grad, *dbeta = L->param[1].grad;
    /* Parameter gradients, channel by channel (no cross-thread sums). */
#pragma omp parallel for schedule(static) if (n * size > 32768)
    for (size_t c = 0; c < C; c++) {
        double a1 = 0, a2 = 0;
        for (size_t i = 0; i < n; i++) {
            size_t ig = i * G + c / cpg;
            double mu = g->mean[ig], is = g->invstd[ig];
            const ns_real *d = dy + i * size + c * P, *xp = x + i * size + c * P;
#pragma omp simd reduction(+ : a1, a2)
            for (size_t j = 0; j < P; j++) {
                a1 += d[j];
                a2 += (double)d[j] * ((double)xp[j] - mu) * is;
            }
        }
        dgamma[c] += (ns_real)a2;
        dbeta[c] += (ns_real)a1;
    }
    if (!dx)
        return;
    /* dx = is (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), dxhat = gamma dy */
#pragma omp parallel for schedule(static) if (n * size > 32768)
    for (size_t ig = 0; ig < n * G; ig++) {
        size_t i = ig / G, k = ig % G;
        double mu = g->mean[ig], is = g->invstd[ig], s1 = 0, s2 = 0;
        const ns_real *d = dy + i * size + k * len, *xp = x + i * size + k * len;
        ns_real *o = dx + i * size + k * len;
        for (size_t cc = 0; cc < cpg; cc++) {
            double gm = gamma[k * cpg + cc];
            for (size_t j = 0; j < P; j++) {
                double dh = gm * d[cc * P + j];
                s1 += dh;
                s2 += dh * ((double)xp[cc * P + j] - mu) * is;
            }
        }
        double m1 = s1 / (double)len, m2 = s2 / (double)len;
        for (size_t cc = 0; cc < cpg; cc++) {
            double gm = gamma[k * cpg + cc];
            for (size_t j = 0; j < P; j++) {
                size_t q = cc * P + j;
                double xh = ((double)xp[q] - mu) * is;
                ns_real v = (ns_real)(is * (gm * d[q] - m1 - xh * m2));
                o[q] = acc ? o[q] + v : v;
            }
        }
    }
}

static void gn_init(ns_layer *L, const ns_init *init, ns_rng *r)
{
    (void)init;
    (void)r;
    for (size_t c = 0; c < L->in_c; c++) {
        L->param[0].data[c] = 1;
        L->param[1].data[c] = 0;
    }
}

static void gn_release(ns_layer *L)
{
    gn_impl *g = L->impl;
    if (!g)
        return;
    ns_free(g->mean);
    ns_free(g->invstd);
    ns_free(g);
    L->impl = NULL;
}

#define GN_OPS(name)                                                                   \
    {.kind = name, .forward = gn_forward, .backward = gn_backward, .init = gn_init,     \
     .release = gn_release, .flags = NS_LAYER_NORM}
static const ns_layer_ops gn_ops = GN_OPS("gn");
static const ns_layer_ops ln_ops = GN_OPS("ln");
static const ns_layer_ops in_ops = GN_OPS("in");
#undef GN_OPS

int ns_gn_create(ns_layer *L, ns_gn_kind kind, size_t groups, double eps)
{
    size_t C = L->in_c, P = L->in_h * L->in_w;
    if (groups == 0)
        return ns_error(NS_EINVAL, "group normalization needs at least one group");
    if (!(eps > 0))
        return ns_error(NS_EINVAL, "normalization eps %g is not positive", eps);
    /* The largest divisor of C not above the requested count. */
    size_t G = groups < C ? groups : C;
    while (C % G)
        G--;
    /* A group of one value normalises to zero whatever the input. */
    if (G == C && P == 1) {
        if (kind == NS_GN_INSTANCE)
            return ns_error(NS_EINVAL, "instance normalization of a dense layer "
                            "(%zu channels of 1x1) makes every output zero", C);
        if (G == 1)
            return ns_error(NS_EINVAL, "layer normalization of a single feature "
                            "(1 channel of 1x1) makes every output zero");
        return ns_error(NS_EINVAL, "group normalization with %zu groups of one feature "
                        "(%zu channels of 1x1) makes every output zero; ask for fewer "
                        "groups", G, C);
    }
    gn_impl *g = ns_calloc(1, sizeof *g);
    if (!g)
        return NS_ENOMEM;
    L->impl = g;
    L->ops = kind == NS_GN_LAYER ? &ln_ops : kind == NS_GN_INSTANCE ? &in_ops : &gn_ops;
    g->groups = G;
    g->eps = eps;
    L->out_c = C;
    L->out_h = L->in_h;
    L->out_w = L->in_w;
    g->mean = ns_malloc(L->max_batch * G * sizeof *g->mean);
    g->invstd = ns_malloc(L->max_batch * G * sizeof *g->invstd);
    if (!g->mean || !g->invstd)
        return NS_ENOMEM;
    L->cache_bytes = 2 * L->max_batch * G * sizeof(double);
    size_t cd[1] = {C};
    int st = ns_layer_add_param(L, "weight", 1, cd);
    if (!st)
        st = ns_layer_add_param(L, "bias", 1, cd);
    return st;
}

/* ------------------------------------------------------------- options */

static const ns_opt gn_opts[] = {
    {.option = "--gn-groups", NS_NET_FIELD(gn_groups), .type = NS_OPT_SIZE, .min = 1,
     .max = 65536, .flags = NS_OPT_NET | NS_OPT_OLD, .def = 32, .old = 32, .arg = "G",
     .help = "groups of channels: the largest divisor of the channel count not above G"},
};
const ns_opt_table ns_gn_options = {gn_opts, sizeof gn_opts / sizeof *gn_opts};
