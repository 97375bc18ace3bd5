/*
 * Filter response normalization with a thresholded linear unit (Singh &
 * Krishnan, CVPR 2020):
 *   nu2 = mean over (H, W) of x^2   (per sample and channel)
 *   y = gamma x / sqrt(nu2 + eps) + beta;   z = max(y, tau)
 * gamma, beta, tau per channel; no batch dependence.  On dense layers and
 * 1x1 maps nu2 = x^2 and, with a fixed small eps, x / sqrt(x^2 + eps) is
 * about sign(x), whose gradient vanishes; there the paper's remedy is used:
 * eps = |eps_learned| + eps0 with eps_learned a parameter (initialised to
 * 1e-4; METHODS.md).  Larger maps use the fixed eps0 (1e-6).
 * The TLU is part of this layer and is the slot's activation, as in the
 * paper (FRN + TLU replace BN + ReLU): the network builder leaves out a relu
 * that directly follows an FRN layer, unless ns_net_opts.frn_relu keeps it
 * (max(max(y, tau), 0), i.e. a TLU with tau clamped at 0).
 */
#include "normscope/norm.h"

#include <math.h>
#include <string.h>

typedef struct frn_impl {
    double eps0;
    int learned_eps;
    double *inv;      /* max_batch * C: 1/sqrt(nu2 + eps) */
    double *part;     /* max_batch * C * 3: per-sample sums of backward */
} frn_impl;

static double frn_eps(const ns_layer *L, const frn_impl *f)
{
    return f->learned_eps ? fabs((double)L->param[3].data[0]) + f->eps0 : f->eps0;
}

static int frn_forward(ns_layer *L, ns_real *y, const ns_real *x,
                       const ns_real *x2, size_t n, const ns_ctx *ctx)
{
    (void)x2;
    (void)ctx;
    frn_impl *f = L->impl;
    size_t C = L->in_c, P = L->in_h * L->in_w;
    const ns_real *gamma = L->param[0].data, *beta = L->param[1].data,
                  *tau = L->param[2].data;
    double eps = frn_eps(L, f);
#pragma omp parallel for schedule(static) if (n * C * P > 32768)
    for (size_t ic = 0; ic < n * C; ic++) {
        size_t c = ic % C;
        const ns_real *xp = x + ic * P;
        ns_real *yp = y + ic * P;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (size_t j = 0; j < P; j++)
            s += (double)xp[j] * xp[j];
        double inv = 1.0 / sqrt(s / (double)P + eps);
        f->inv[ic] = inv;
        ns_real a = (ns_real)(gamma[c] * inv), b = beta[c], t = tau[c];
#pragma omp simd
        for (size_t j = 0; j < P; j++) {
            ns_real v = a * xp[j] + b;
            yp[j] = v > t ? v : t;
        }
    }
    return NS_OK;
}

static void frn_backward(ns_layer *L, ns_real *dx, ns_real *dx2, int acc,
                         const ns_real *dy, const ns_real *y, const ns_real *x,
                         size_t n)
{
    (void)dx2;
    (void)y;
    acc &= 1;
    frn_impl *f = L->impl;
    size_t C = L->in_c, P = L->in_h * L->in_w;
    const ns_real *gamma = L->param[0].data, *beta = L->param[1].data,
                  *tau = L->param[2].data;
    ns_real *dgamma = L->param[0].grad, *dbeta = L->param[1].grad, *dtau = L->param[2].grad;
    double *part = f->part;
    /* One pass per (sample, channel), with the TLU mask recomputed as in
     * forward: g = dy where the TLU passes.  part holds sum g x, sum g and
     * sum dy where it clips; dx = a (g - x mean(g x) inv^2), a = gamma inv. */
#pragma omp parallel for schedule(static) if (n * C * P > 32768)
    for (size_t ic = 0; ic < n * C; ic++) {
        size_t c = ic % C;
        const ns_real *xp = x + ic * P, *d = dy + ic * P;
        double inv = f->inv[ic];
        ns_real a = (ns_real)(gamma[c] * inv), b = beta[c], t = tau[c];
        double sgx = 0, sg = 0, sd = 0;
#pragma omp simd reduction(+ : sgx, sg, sd)
        for (size_t j = 0; j < P; j++) {
            ns_real g = a * xp[j] + b > t ? d[j] : 0;
            sgx += (double)g * xp[j];
            sg += g;
            sd += d[j];
        }
        part[3 * ic] = sgx;
        part[3 * ic + 1] = sg;
        part[3 * ic + 2] = sd - sg;
        if (!dx)
            continue;
        ns_real *o = dx + ic * P;
        ns_real m = (ns_real)(sgx / (double)P * inv * inv);
        if (acc) {
#pragma omp simd
            for (size_t j = 0; j < P; j++) {
                ns_real g = a * xp[j] + b > t ? d[j] : 0;
                o[j] += a * (g - xp[j] * m);
            }
        } else {
#pragma omp simd
            for (size_t j = 0; j < P; j++) {
                ns_real g = a * xp[j] + b > t ? d[j] : 0;
                o[j] = a * (g - xp[j] * m);
            }
        }
    }
    /* Parameter gradients per channel; d y / d eps = -gamma x inv^3 / 2. */
    double deps_total = 0;
    for (size_t c = 0; c < C; c++) {
        double dg = 0, db = 0, dt = 0;
        for (size_t i = 0; i < n; i++) {
            size_t ic = i * C + c;
            double inv = f->inv[ic];
            dg += part[3 * ic] * inv;
            db += part[3 * ic + 1];
            dt += part[3 * ic + 2];
            deps_total += -0.5 * gamma[c] * inv * inv * inv * part[3 * ic];
        }
        dgamma[c] += (ns_real)dg;
        dbeta[c] += (ns_real)db;
        dtau[c] += (ns_real)dt;
    }
    if (f->learned_eps) {
        ns_real e = L->param[3].data[0];
        L->param[3].grad[0] += (ns_real)(deps_total * (e > 0 ? 1 : e < 0 ? -1 : 0));
    }
}

static void frn_init(ns_layer *L, const ns_init *init, ns_rng *r)
{
    (void)init;
    (void)r;
    frn_impl *f = L->impl;
    for (size_t c = 0; c < L->in_c; c++) {
        L->param[0].data[c] = 1;
        L->param[1].data[c] = 0;
        L->param[2].data[c] = 0;
    }
    if (f->learned_eps)
        L->param[3].data[0] = (ns_real)1e-4;
}

static void frn_release(ns_layer *L)
{
    frn_impl *f = L->impl;
    if (!f)
        return;
    ns_free(f->inv);
    ns_free(f->part);
    ns_free(f);
    L->impl = NULL;
}

static const ns_layer_ops frn_ops = {
    .kind = "frn", .forward = frn_forward, .backward = frn_backward, .init = frn_init,
    .release = frn_release, .flags = NS_LAYER_NORM,
};

int ns_frn_create(ns_layer *L, double eps0, int learned_eps)
{
    if (!(eps0 > 0))
        return ns_error(NS_EINVAL, "FRN eps %g is not positive", eps0);
    frn_impl *f = ns_calloc(1, sizeof *f);
    if (!f)
        return NS_ENOMEM;
    L->impl = f;
    L->ops = &frn_ops;
    f->eps0 = eps0;
    /* Learned eps wherever the normalised extent is a single value. */
    f->learned_eps = learned_eps < 0 ? L->in_h * L->in_w == 1 : learned_eps;
    L->out_c = L->in_c;
    L->out_h = L->in_h;
    L->out_w = L->in_w;
    f->inv = ns_malloc(L->max_batch * L->in_c * sizeof *f->inv);
    f->part = ns_malloc(3 * L->max_batch * L->in_c * sizeof *f->part);
    if (!f->inv || !f->part)
        return NS_ENOMEM;
    L->cache_bytes = L->max_batch * L->in_c * sizeof(double);
    size_t cd[1] = {L->in_c}, one[1] = {1};
    int st = ns_layer_add_param(L, "weight", 1, cd);
    if (!st) st = ns_layer_add_param(L, "bias", 1, cd);
    if (!st) st = ns_layer_add_param(L, "tau", 1, cd);
    if (!st && f->learned_eps) st = ns_layer_add_param(L, "eps", 1, one);
    return st;
}

/* ------------------------------------------------------------- options */

/* Runs written before frn_relu was recorded kept the relu. */
static const ns_opt frn_opts[] = {
    {.option = "--frn-eps", NS_NET_FIELD(frn_eps), .type = NS_OPT_DOUBLE, .min = 0,
     .max = INFINITY, .flags = NS_OPT_NET | NS_OPT_OLD | NS_OPT_MIN_OPEN, .def = 1e-6,
     .old = 1e-6, .arg = "E",
     .help = "eps of the normalisation; on 1x1 maps eps0 of the learned |eps| + eps0"},
    {.flag = "--frn-relu", NS_NET_FIELD(frn_relu), .type = NS_OPT_INT, .min = 0, .max = 1,
     .flags = NS_OPT_NET | NS_OPT_OLD, .def = 0, .old = 1,
     .help = "keep a relu that follows the slot (max(TLU, 0): tau clamped at 0) instead of "
             "letting the TLU take its place"},
};
const ns_opt_table ns_frn_options = {frn_opts, sizeof frn_opts / sizeof *frn_opts};
