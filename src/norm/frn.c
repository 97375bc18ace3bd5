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
 * The TLU is part of this layer, so the slot's following ReLU still
 * applies; the FRN paper replaces it, which `--arch` strings can do by
 * leaving the relu out.
 */
#include "normscope/norm.h"

#include <math.h>
#include <string.h>

typedef struct frn_impl {
    double eps0;
    int learned_eps;
    double *inv;      /* max_batch * C: 1/sqrt(nu2 + eps) */
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
    double deps_total = 0;
    /* Per channel: parameter gradients (no cross-thread sums). */
#pragma omp parallel for schedule(static) if (n * C * P > 32768) reduction(+ : deps_total)
    for (size_t c = 0; c < C; c++) {
        double dg = 0, db = 0, dt = 0, de = 0;
        for (size_t i = 0; i < n; i++) {
            size_t ic = i * C + c;
            const ns_real *xp = x + ic * P, *d = dy + ic * P;
            double inv = f->inv[ic], a = gamma[c] * inv, sxd = 0;
            for (size_t j = 0; j < P; j++) {
                double v = a * xp[j] + beta[c];
                if (v > tau[c]) {
                    dg += d[j] * xp[j] * inv;
                    db += d[j];
                    sxd += (double)d[j] * xp[j];
                } else {
                    dt += d[j];
                }
            }
            /* d y / d eps = -gamma x inv^3 / 2 */
            de += -0.5 * gamma[c] * inv * inv * inv * sxd;
        }
        dgamma[c] += (ns_real)dg;
        dbeta[c] += (ns_real)db;
        dtau[c] += (ns_real)dt;
        deps_total += de;
    }
    if (f->learned_eps) {
        ns_real e = L->param[3].data[0];
        L->param[3].grad[0] += (ns_real)(deps_total * (e > 0 ? 1 : e < 0 ? -1 : 0));
    }
    if (!dx)
        return;
    /* dx = gamma inv (g - x mean(g x) inv^2), g = dy where the TLU passes */
#pragma omp parallel for schedule(static) if (n * C * P > 32768)
    for (size_t ic = 0; ic < n * C; ic++) {
        size_t c = ic % C;
        const ns_real *xp = x + ic * P, *d = dy + ic * P;
        ns_real *o = dx + ic * P;
        double inv = f->inv[ic], a = gamma[c] * inv, sgx = 0;
        for (size_t j = 0; j < P; j++)
            if (a * xp[j] + beta[c] > tau[c])
                sgx += (double)d[j] * xp[j];
        double m = sgx / (double)P * inv * inv;
        for (size_t j = 0; j < P; j++) {
            double g = a * xp[j] + beta[c] > tau[c] ? d[j] : 0;
            ns_real v = (ns_real)(a * (g - xp[j] * m));
            o[j] = acc ? o[j] + v : v;
        }
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
    ns_free(f);
    L->impl = NULL;
}

static const ns_layer_ops frn_ops = {"frn", frn_forward, frn_backward, frn_init, frn_release, NULL};

int ns_frn_create(ns_layer *L, double eps0, int learned_eps)
{
    if (!(eps0 > 0))
        return ns_error(NS_EINVAL, "FRN eps %g is not positive", eps0);
    frn_impl *f = ns_calloc(1, sizeof *f);
    if (!f)
        return NS_ENOMEM;
    L->impl = f;
    L->ops = &frn_ops;
    L->is_norm = 1;
    f->eps0 = eps0;
    /* Learned eps wherever the normalised extent is a single value. */
    f->learned_eps = learned_eps < 0 ? L->in_h * L->in_w == 1 : learned_eps;
    L->out_c = L->in_c;
    L->out_h = L->in_h;
    L->out_w = L->in_w;
    f->inv = ns_malloc(L->max_batch * L->in_c * sizeof *f->inv);
    if (!f->inv)
        return NS_ENOMEM;
    L->cache_bytes = L->max_batch * L->in_c * sizeof(double);
    size_t cd[1] = {L->in_c}, one[1] = {1};
    int st = ns_layer_add_param(L, "weight", 1, cd);
    if (!st) st = ns_layer_add_param(L, "bias", 1, cd);
    if (!st) st = ns_layer_add_param(L, "tau", 1, cd);
    if (!st && f->learned_eps) st = ns_layer_add_param(L, "eps", 1, one);
    return st;
}
