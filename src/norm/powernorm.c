/*
 * Power Normalization (Shen et al., ICML 2020), Algorithm 1 of the paper:
 *   train:  psi_B^2 = E[x^2] over (N, H, W) per channel (no centering);
 *           xhat = x / psi_{t-1}, the running quadratic mean of the previous
 *           step (the batch's own psi_B during warm-up);
 *           y = gamma xhat + beta;
 *           psi_t^2 = alpha psi_{t-1}^2 + (1 - alpha) psi_B^2
 *   backward (approximate, through the running statistics):
 *           dxhat = gamma dy;  xt = dxhat - nu_{t-1} xhat;  dx = xt / psi_{t-1};
 *           nu_t = nu_{t-1} (1 - (1 - alpha) E[xhat^2]) + (1 - alpha) E[xt xhat]
 *   eval:   xhat = x / psi.
 * During warm-up the normaliser is the batch's own quadratic mean and the
 * backward is its exact gradient, dx = (dxhat - xhat E[dxhat xhat]) / psi_B,
 * while nu is already tracked, so that it has settled when warm-up ends.
 * alpha = 0.9 and the warm-up length (--pn-warmup, 10000 steps) are the
 * defaults of the authors' code; the whole batch is one group.  With a short
 * warm-up (100 steps) the cnn at lr 0.05 diverged within five steps of the
 * switch to the running normaliser, with the exact coefficient in the
 * backward as well: a channel whose running quadratic mean is small amplifies
 * the change its weights make before psi catches up.  Like MABN, the
 * backward updates the layer's gradient statistic nu by definition.
 */
#include "normscope/norm.h"

#include <math.h>
#include <string.h>

typedef struct pn_impl {
    double alpha, eps;
    size_t warmup;
    double *psi;        /* C: normaliser used by the last forward */
    int warm, eval;     /* the last forward was in warm-up / eval mode */
} pn_impl;

static int pn_forward(ns_layer *L, ns_real *y, const ns_real *x,
                      const ns_real *x2, size_t n, const ns_ctx *ctx)
{
    (void)x2;
    pn_impl *p = L->impl;
    size_t C = L->in_c, P = L->in_h * L->in_w, size = C * P;
    const ns_real *gamma = L->param[0].data, *beta = L->param[1].data;
    ns_real *rphi = L->state[0].data, *iters = L->state[2].data;
    L->last_mode = ctx->mode;
    p->eval = ctx->mode == NS_MODE_EVAL;
    uint64_t it = (uint64_t)iters[0];
    p->warm = ctx->mode == NS_MODE_BATCH || (!p->eval && it < p->warmup);
    for (size_t c = 0; c < C; c++) {
        double s = 0;
        if (!p->eval) {
            for (size_t i = 0; i < n; i++) {
                const ns_real *xp = x + i * size + c * P;
                for (size_t j = 0; j < P; j++)
                    s += (double)xp[j] * xp[j];
            }
            s /= (double)(n * P);
        }
        double phi2 = p->warm ? s : rphi[c];
        p->psi[c] = sqrt(phi2 + p->eps);
        if (ctx->mode == NS_MODE_TRAIN)
            rphi[c] = (ns_real)(p->alpha * rphi[c] + (1 - p->alpha) * s);
        ns_real a = (ns_real)(gamma[c] / p->psi[c]), b = beta[c];
        for (size_t i = 0; i < n; i++) {
            const ns_real *xp = x + i * size + c * P;
            ns_real *yp = y + i * size + c * P;
            for (size_t j = 0; j < P; j++)
                yp[j] = a * xp[j] + b;
        }
    }
    if (ctx->mode == NS_MODE_TRAIN)
        iters[0] = (ns_real)(it + 1);
    return NS_OK;
}

static void pn_backward(ns_layer *L, ns_real *dx, ns_real *dx2, int acc,
                        const ns_real *dy, const ns_real *y, const ns_real *x,
                        size_t n)
{
    (void)dx2;
    (void)y;
    acc &= 1;
    pn_impl *p = L->impl;
    size_t C = L->in_c, P = L->in_h * L->in_w, size = C * P;
    const ns_real *gamma = L->param[0].data;
    ns_real *dgamma = L->param[0].grad, *dbeta = L->param[1].grad;
    ns_real *nu = L->state[1].data;
    double cnt = (double)(n * P);
    int approx = !p->eval && !p->warm && L->last_mode == NS_MODE_TRAIN;
    for (size_t c = 0; c < C; c++) {
        double psi = p->psi[c], s1 = 0, sgx = 0, sxx = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < P; j++) {
                size_t q = i * size + c * P + j;
                double xh = x[q] / psi;
                s1 += dy[q];
                sgx += dy[q] * xh;
                sxx += xh * xh;
            }
        dgamma[c] += (ns_real)sgx;
        dbeta[c] += (ns_real)s1;
        /* the coefficient of xhat subtracted from dxhat */
        double k = p->eval ? 0 : approx ? nu[c] : gamma[c] * sgx / cnt;
        /* nu is tracked in warm-up too, so the switch finds it settled. */
        if (L->last_mode == NS_MODE_TRAIN) {
            /* E[xt xhat] = E[dxhat xhat] - nu E[xhat^2] */
            double lam = gamma[c] * sgx / cnt - nu[c] * sxx / cnt;
            nu[c] = (ns_real)(nu[c] * (1 - (1 - p->alpha) * sxx / cnt) + (1 - p->alpha) * lam);
        }
        if (!dx)
            continue;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < P; j++) {
                size_t q = i * size + c * P + j;
                double xh = x[q] / psi;
                ns_real v = (ns_real)((gamma[c] * dy[q] - k * xh) / psi);
                dx[q] = acc ? dx[q] + v : v;
            }
    }
}

static void pn_init(ns_layer *L, const ns_init *init, ns_rng *r)
{
    (void)init;
    (void)r;
    for (size_t c = 0; c < L->in_c; c++) {
        L->param[0].data[c] = 1;
        L->param[1].data[c] = 0;
        L->state[0].data[c] = 1;
        L->state[1].data[c] = 0;
    }
    L->state[2].data[0] = 0;
}

static void pn_release(ns_layer *L)
{
    pn_impl *p = L->impl;
    if (!p)
        return;
    ns_free(p->psi);
    ns_free(p);
    L->impl = NULL;
}

static const ns_layer_ops pn_ops = {
    .kind = "pn", .forward = pn_forward, .backward = pn_backward,
    .init = pn_init, .release = pn_release, .flags = NS_LAYER_NORM | NS_LAYER_BATCH_STATS,
};

int ns_pn_create(ns_layer *L, double eps, size_t warmup)
{
    pn_impl *p = ns_calloc(1, sizeof *p);
    if (!p)
        return NS_ENOMEM;
    L->impl = p;
    L->ops = &pn_ops;
    p->alpha = 0.9;
    p->eps = eps;
    p->warmup = warmup;
    L->out_c = L->in_c;
    L->out_h = L->in_h;
    L->out_w = L->in_w;
    size_t C = L->in_c;
    p->psi = ns_malloc(C * sizeof *p->psi);
    if (!p->psi)
        return NS_ENOMEM;
    L->cache_bytes = C * sizeof(double);
    size_t cd[1] = {C}, one[1] = {1};
    int st = ns_layer_add_param(L, "weight", 1, cd);
    if (!st) st = ns_layer_add_param(L, "bias", 1, cd);
    if (!st) st = ns_layer_add_state_flags(L, "running_phi", 1, cd, NS_TENSOR_NONNEG);
    if (!st) st = ns_layer_add_state(L, "nu", 1, cd);
    if (!st) st = ns_layer_add_state_flags(L, "iters", 1, one, NS_TENSOR_NONNEG);
    return st;
}

/* ------------------------------------------------------------- options */

static const ns_opt pn_opts[] = {
    {.option = "--pn-warmup", NS_NET_FIELD(pn_warmup), .type = NS_OPT_SIZE, .min = 0,
     .max = NS_OPT_MAX_STEPS, .flags = NS_OPT_NET | NS_OPT_OLD, .def = 10000, .old = 10000,
     .arg = "STEPS",
     .help = "steps normalised by the batch's own quadratic mean before the running "
             "estimate takes over; 10000 is the authors' default: a shorter warm-up diverged "
             "on the cnn at lr 0.05 right after the switch"},
};
const ns_opt_table ns_pn_options = {pn_opts, sizeof pn_opts / sizeof *pn_opts};
