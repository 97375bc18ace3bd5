/*
 * Batch normalization (Ioffe & Szegedy 2015), as PyTorch's BatchNorm1d/2d:
 * per channel over (N, H, W),
 *   train:  xhat = (x - mu_B) / sqrt(var_B + eps), var_B biased;
 *           running <- (1 - m) running + m stat, with the unbiased variance
 *   eval:   xhat = (x - running_mean) / sqrt(running_var + eps)
 *   y = gamma xhat + beta   (affine optional)
 * Ghost/split BN: the batch is cut into groups of `group` consecutive
 * samples, each normalised with its own statistics and each updating the
 * running statistics in turn (PyTorch's BN applied chunk by chunk).
 * NS_MODE_BATCH normalises with batch statistics and updates nothing, for
 * analyses of the batch function.
 *
 * Batch Renormalization (Ioffe 2017) is the same layer with
 *   xhat = r (x - mu_B) / sigma_B + d,  r = clip(sigma_B / sigma, 1/rmax, rmax),
 *   d = clip((mu_B - mu) / sigma, -dmax, dmax), sigma = sqrt(running_var + eps),
 * r and d without gradient; rmax ramps 1 -> 3 and dmax 0 -> 5 linearly over
 * `ramp` steps after `warmup` steps (the paper's 5k/40k-step schedule scaled
 * to short runs: normscope's default of 500 + 2000 steps).
 *
 * Like PyTorch, the layer keeps only per-channel statistics for backward:
 * xhat is recomputed from the input, which the previous layer keeps anyway.
 * Statistics are accumulated in double.  Loops run sample-major so that
 * dense activations (H = W = 1) vectorise across channels; convolutional
 * maps are split over channels between threads.
 */
#include "normscope/norm.h"

#include <math.h>
#include <string.h>

typedef struct bn_impl {
    double momentum, eps;
    double recal_saved; /* momentum while recalibrating */
    int affine;
    size_t group;       /* samples per group, 0: whole batch */
    double *mean;       /* ngroups_max * C: mean used by the last forward */
    double *rr, *dd;    /* ngroups_max * C: Batch Renormalization's r and d (NULL for BN) */
    double rmax_final, dmax_final;
    size_t warmup, ramp;/* BRN schedule in optimiser steps */
    double *invstd;     /* ngroups_max * C */
    double *s1, *s2;    /* C: scratch sums */
    double *work;       /* per-sample size: condensation scratch (UBN only) */
    ns_real *a, *b;     /* C: per-channel scale and shift of the last group */
    size_t ngroups, gsize; /* of the last forward */
    double shift;       /* psBN post-shift alpha (0 for BN) */
    double fct;         /* UBN gate threshold (0: no gate) */
    double condensation;/* of the last training forward (NAN if not measured) */
    size_t skipped;     /* running-statistics updates skipped by the gate */
} bn_impl;

/* Mean pairwise cosine similarity of the flattened per-sample inputs,
 * mean_{i != j} cos(f_i, f_j) = (|sum_i u_i|^2 - m) / (n (n - 1)) with
 * u_i = f_i / |f_i| and m the number of non-zero samples (|u_i|^2 = 1):
 * UBN's feature condensation as METHODS.md defines it (normscope's own
 * definition).  An all-zero sample has no direction; its cosines count as
 * 0 (u_i = 0), as in torch's cosine_similarity. */
static double condensation(const ns_real *x, size_t n, size_t size, double *acc)
{
    if (n < 2)
        return NAN;
    memset(acc, 0, size * sizeof *acc);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const ns_real *xi = x + i * size;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (size_t j = 0; j < size; j++)
            s += (double)xi[j] * xi[j];
        if (!(s > 0))
            continue;
        double inv = 1.0 / sqrt(s);
        m++;
#pragma omp simd
        for (size_t j = 0; j < size; j++)
            acc[j] += xi[j] * inv;
    }
    double t = 0;
    for (size_t j = 0; j < size; j++)
        t += acc[j] * acc[j];
    return (t - (double)m) / ((double)n * (double)(n - 1));
}

/* Large maps are worth a thread each; dense activations are not. */
#define BN_PAR(C, P, n) ((P) > 1 && (C) * (P) * (n) > 32768)

/* s[c] = sum over samples lo..hi-1 and positions of (x - center[c]),
 * squared when sq is set. */
static void channel_sums(const ns_real *x, size_t lo, size_t hi, size_t C, size_t P,
                         const double *center, int sq, double *s)
{
    size_t size = C * P;
    if (P == 1) {
        memset(s, 0, C * sizeof *s);
        for (size_t i = lo; i < hi; i++) {
            const ns_real *xi = x + i * size;
            if (sq) {
#pragma omp simd
                for (size_t c = 0; c < C; c++) {
                    double d = (double)xi[c] - center[c];
                    s[c] += d * d;
                }
            } else {
#pragma omp simd
                for (size_t c = 0; c < C; c++)
                    s[c] += xi[c];
            }
        }
        return;
    }
#pragma omp parallel for schedule(static) if (BN_PAR(C, P, hi - lo))
    for (size_t c = 0; c < C; c++) {
        double acc = 0, m = center ? center[c] : 0;
        for (size_t i = lo; i < hi; i++) {
            const ns_real *xp = x + i * size + c * P;
            if (sq) {
#pragma omp simd reduction(+ : acc)
                for (size_t j = 0; j < P; j++) {
                    double d = (double)xp[j] - m;
                    acc += d * d;
                }
            } else {
#pragma omp simd reduction(+ : acc)
                for (size_t j = 0; j < P; j++)
                    acc += xp[j];
            }
        }
        s[c] = acc;
    }
}

/* y = a[c] x + b[c] over samples lo..hi-1. */
static void channel_affine(ns_real *y, const ns_real *x, size_t lo, size_t hi, size_t C,
                           size_t P, const ns_real *a, const ns_real *b)
{
    size_t size = C * P;
    if (P == 1) {
        for (size_t i = lo; i < hi; i++) {
            const ns_real *xi = x + i * size;
            ns_real *yi = y + i * size;
#pragma omp simd
            for (size_t c = 0; c < C; c++)
                yi[c] = a[c] * xi[c] + b[c];
        }
        return;
    }
#pragma omp parallel for schedule(static) if (BN_PAR(C, P, hi - lo))
    for (size_t c = 0; c < C; c++)
        for (size_t i = lo; i < hi; i++) {
            const ns_real *xp = x + i * size + c * P;
            ns_real *yp = y + i * size + c * P;
            ns_real ac = a[c], bc = b[c];
#pragma omp simd
            for (size_t j = 0; j < P; j++)
                yp[j] = ac * xp[j] + bc;
        }
}

static size_t group_size(const bn_impl *b, size_t n)
{
    return (b->group == 0 || b->group > n) ? n : b->group;
}

static int bn_forward(ns_layer *L, ns_real *y, const ns_real *x,
                      const ns_real *x2, size_t n, const ns_ctx *ctx)
{
    (void)x2;
    bn_impl *b = L->impl;
    size_t C = L->in_c, P = L->in_h * L->in_w;
    const ns_real *gamma = b->affine ? L->param[0].data : NULL;
    const ns_real *beta = b->affine ? L->param[1].data : NULL;
    ns_real *rmean = L->state[0].data, *rvar = L->state[1].data;
    ns_real *nbt = L->state[2].data;
    L->last_mode = ctx->mode;

    if (ctx->mode == NS_MODE_EVAL) {
        b->ngroups = 1;
        b->gsize = n;
        for (size_t c = 0; c < C; c++) {
            double is = 1.0 / sqrt((double)rvar[c] + b->eps), g = gamma ? gamma[c] : 1;
            b->mean[c] = rmean[c];
            b->invstd[c] = is;
            b->a[c] = (ns_real)(g * is);
            b->b[c] = (ns_real)((beta ? beta[c] : 0) - g * is * rmean[c] + b->shift);
        }
        channel_affine(y, x, 0, n, C, P, b->a, b->b);
        return NS_OK;
    }

    size_t g = group_size(b, n);
    size_t ng = (n + g - 1) / g;
    for (size_t k = 0; k < ng; k++) {
        size_t lo = k * g, hi = lo + g < n ? lo + g : n;
        if ((hi - lo) * P < 2)
            return ns_error(NS_EINVAL,
                            "batch normalization in '%s' needs more than one value "
                            "per channel (a group of %zu sample%s of %zux%zu)",
                            L->name, hi - lo, hi - lo == 1 ? "" : "s", L->in_h, L->in_w);
    }
    b->ngroups = ng;
    b->gsize = g;
    int update = ctx->mode == NS_MODE_TRAIN;
    double rmax_now = 1, dmax_now = 0;
    if (b->rr) {
        /* r_max 1 -> final and d_max 0 -> final, linearly after warm-up. */
        double t = ctx->step <= b->warmup ? 0
                   : b->ramp ? (double)(ctx->step - b->warmup) / (double)b->ramp : 1;
        t = t > 1 ? 1 : t;
        rmax_now = 1 + (b->rmax_final - 1) * t;
        dmax_now = b->dmax_final * t;
    }
    if (update && b->work) {
        b->condensation = condensation(x, n, C * P, b->work);
        if (b->fct > 0 && b->condensation > b->fct) {
            update = 0;
            b->skipped++;
        }
    }
    for (size_t k = 0; k < ng; k++) {
        size_t lo = k * g, hi = lo + g < n ? lo + g : n;
        double cnt = (double)((hi - lo) * P);
        double *mu = b->mean + k * C, *is = b->invstd + k * C;
        channel_sums(x, lo, hi, C, P, NULL, 0, b->s1);
        for (size_t c = 0; c < C; c++)
            mu[c] = b->s1[c] / cnt;
        channel_sums(x, lo, hi, C, P, mu, 1, b->s2);
        for (size_t c = 0; c < C; c++) {
            double var = b->s2[c] / cnt, gm = gamma ? gamma[c] : 1;
            is[c] = 1.0 / sqrt(var + b->eps);
            double r = 1, d = 0;
            if (b->rr) {
                /* Batch Renormalization: r, d from the running statistics
                 * before this update, clipped, treated as constants. */
                double sig = sqrt((double)rvar[c] + b->eps), rmax = rmax_now, dmax = dmax_now;
                r = (1.0 / is[c]) / sig;
                r = r < 1 / rmax ? 1 / rmax : r > rmax ? rmax : r;
                d = (mu[c] - rmean[c]) / sig;
                d = d < -dmax ? -dmax : d > dmax ? dmax : d;
                b->rr[k * C + c] = r;
                b->dd[k * C + c] = d;
            }
            b->a[c] = (ns_real)(gm * r * is[c]);
            b->b[c] = (ns_real)((beta ? beta[c] : 0) + gm * (d - r * is[c] * mu[c]) + b->shift);
            if (update) {
                double m = b->momentum;
                rmean[c] = (ns_real)((1 - m) * rmean[c] + m * mu[c]);
                rvar[c] = (ns_real)((1 - m) * rvar[c] + m * var * cnt / (cnt - 1));
            }
        }
        channel_affine(y, x, lo, hi, C, P, b->a, b->b);
    }
    if (update)
        nbt[0] += (ns_real)ng;
    return NS_OK;
}

/* s1[c] = sum dy, s2[c] = sum dy xhat, xhat = (x - mu[c]) is[c]. */
static void grad_sums(const ns_real *dy, const ns_real *x, size_t lo, size_t hi, size_t C,
                      size_t P, const double *mu, const double *is, double *s1, double *s2)
{
    size_t size = C * P;
    if (P == 1) {
        memset(s1, 0, C * sizeof *s1);
        memset(s2, 0, C * sizeof *s2);
        for (size_t i = lo; i < hi; i++) {
            const ns_real *d = dy + i * size, *xi = x + i * size;
#pragma omp simd
            for (size_t c = 0; c < C; c++) {
                s1[c] += d[c];
                s2[c] += (double)d[c] * ((double)xi[c] - mu[c]);
            }
        }
        for (size_t c = 0; c < C; c++)
            s2[c] *= is[c];
        return;
    }
#pragma omp parallel for schedule(static) if (BN_PAR(C, P, hi - lo))
    for (size_t c = 0; c < C; c++) {
        double a1 = 0, a2 = 0, m = mu[c];
        for (size_t i = lo; i < hi; i++) {
            const ns_real *d = dy + i * size + c * P, *xp = x + i * size + c * P;
#pragma omp simd reduction(+ : a1, a2)
            for (size_t j = 0; j < P; j++) {
                a1 += d[j];
                a2 += (double)d[j] * ((double)xp[j] - m);
            }
        }
        s1[c] = a1;
        s2[c] = a2 * is[c];
    }
}

/* dx = A[c] dy + B[c] x + D[c]: the BN input gradient written as an affine
 * function of dy and x per channel (so xhat is never stored). */
static void grad_apply(ns_real *dx, int acc, const ns_real *dy, const ns_real *x,
                       size_t lo, size_t hi, size_t C, size_t P, const ns_real *A,
                       const ns_real *Bc, const ns_real *D)
{
    size_t size = C * P;
    /* Without acc (bit 0), dx is not read: 0 * dx would let a stale NaN in. */
    int add = acc & 1;
    if (P == 1) {
        for (size_t i = lo; i < hi; i++) {
            const ns_real *d = dy + i * size, *xi = x + i * size;
            ns_real *o = dx + i * size;
#pragma omp simd
            for (size_t c = 0; c < C; c++)
                o[c] = (add ? o[c] : 0) + A[c] * d[c] + Bc[c] * xi[c] + D[c];
        }
        return;
    }
#pragma omp parallel for schedule(static) if (BN_PAR(C, P, hi - lo))
    for (size_t c = 0; c < C; c++)
        for (size_t i = lo; i < hi; i++) {
            const ns_real *d = dy + i * size + c * P, *xp = x + i * size + c * P;
            ns_real *o = dx + i * size + c * P;
            ns_real a = A[c], bb = Bc[c], dd = D[c];
#pragma omp simd
            for (size_t j = 0; j < P; j++)
                o[j] = (add ? o[j] : 0) + a * d[j] + bb * xp[j] + dd;
        }
}

static void bn_backward(ns_layer *L, ns_real *dx, ns_real *dx2, int acc,
                        const ns_real *dy, const ns_real *y, const ns_real *x,
                        size_t n)
{
    (void)dx2;
    (void)y;
    bn_impl *b = L->impl;
    size_t C = L->in_c, P = L->in_h * L->in_w;
    const ns_real *gamma = b->affine ? L->param[0].data : NULL;
    ns_real *dgamma = b->affine ? L->param[0].grad : NULL;
    ns_real *dbeta = b->affine ? L->param[1].grad : NULL;
    int eval = L->last_mode == NS_MODE_EVAL;
    size_t g = b->gsize, ng = b->ngroups;
    /* A, B, D reuse the forward's scale/shift scratch. */
    ns_real *A = b->a, *Bc = b->b, *D = A + C;
    for (size_t k = 0; k < ng; k++) {
        size_t lo = k * g, hi = lo + g < n ? lo + g : n;
        double cnt = (double)((hi - lo) * P);
        const double *mu = b->mean + k * C, *is = b->invstd + k * C;
        grad_sums(dy, x, lo, hi, C, P, mu, is, b->s1, b->s2);
        for (size_t c = 0; c < C; c++) {
            /* BRN: y = gamma (r xhat + d) + beta with constant r, d */
            double r = (!eval && b->rr) ? b->rr[k * C + c] : 1;
            double d = (!eval && b->rr) ? b->dd[k * C + c] : 0;
            if (dgamma) {
                dgamma[c] += (ns_real)(r * b->s2[c] + d * b->s1[c]);
                dbeta[c] += (ns_real)b->s1[c];
            }
            double gi = (gamma ? gamma[c] : 1) * r * is[c];
            if (eval) {
                /* dx = gamma is dy */
                A[c] = (ns_real)gi;
                Bc[c] = 0;
                D[c] = 0;
            } else {
                /* dx = gamma is (dy - s1/m - xhat s2/m), xhat = (x - mu) is */
                double m1 = b->s1[c] / cnt, m2 = b->s2[c] / cnt;
                A[c] = (ns_real)gi;
                Bc[c] = (ns_real)(-gi * m2 * is[c]);
                D[c] = (ns_real)(-gi * m1 + gi * m2 * is[c] * mu[c]);
            }
        }
        if (dx)
            grad_apply(dx, acc, dy, x, lo, hi, C, P, A, Bc, D);
    }
}

static void bn_init(ns_layer *L, const ns_init *init, ns_rng *r)
{
    (void)init;
    (void)r;
    bn_impl *b = L->impl;
    size_t C = L->in_c;
    if (b->affine)
        for (size_t c = 0; c < C; c++) {
            L->param[0].data[c] = 1;
            L->param[1].data[c] = 0;
        }
    for (size_t c = 0; c < C; c++) {
        L->state[0].data[c] = 0;
        L->state[1].data[c] = 1;
    }
    L->state[2].data[0] = 0;
}

static void bn_release(ns_layer *L)
{
    bn_impl *b = L->impl;
    if (!b)
        return;
    ns_free(b->mean);
    ns_free(b->rr);
    ns_free(b->dd);
    ns_free(b->invstd);
    ns_free(b->s1);
    ns_free(b->s2);
    ns_free(b->work);
    ns_free(b->a);
    ns_free(b->b);
    ns_free(b);
    L->impl = NULL;
}

static size_t bn_metrics(const ns_layer *L, double *vals, const char **names, size_t max)
{
    const bn_impl *b = L->impl;
    if (!b->work || max < 1)
        return 0;
    vals[0] = b->condensation;
    names[0] = "condensation";
    return 1;
}

/* Recalibration: running statistics reset, then the plain mean of the
 * calibration batches (momentum 1/(k+1) before batch k); the batch count
 * is left alone. */
static void bn_recal_begin(ns_layer *L)
{
    bn_impl *b = L->impl;
    for (size_t c = 0; c < L->in_c; c++) {
        L->state[0].data[c] = 0;
        L->state[1].data[c] = 1;
    }
    b->recal_saved = b->momentum;
}

static void bn_recal_batch(ns_layer *L, size_t k)
{
    ((bn_impl *)L->impl)->momentum = 1.0 / (double)(k + 1);
}

static void bn_recal_end(ns_layer *L)
{
    bn_impl *b = L->impl;
    b->momentum = b->recal_saved;
}

static const ns_layer_ops bn_ops = {
    .kind = "bn", .forward = bn_forward, .backward = bn_backward, .init = bn_init,
    .release = bn_release, .metrics = bn_metrics, .flags = NS_LAYER_NORM | NS_LAYER_BATCH_STATS,
    .recal_begin = bn_recal_begin, .recal_batch = bn_recal_batch, .recal_end = bn_recal_end,
};

int ns_bn_set_renorm(ns_layer *L, double rmax, double dmax, size_t warmup, size_t ramp)
{
    bn_impl *b = L->impl;
    if (!(rmax >= 1) || !(dmax >= 0))
        return ns_error(NS_EINVAL, "batch renormalization needs rmax >= 1 and dmax >= 0");
    size_t cnt = L->max_batch * L->in_c;
    b->rr = ns_malloc(cnt * sizeof *b->rr);
    b->dd = ns_malloc(cnt * sizeof *b->dd);
    if (!b->rr || !b->dd)
        return NS_ENOMEM;
    b->rmax_final = rmax;
    b->dmax_final = dmax;
    b->warmup = warmup;
    b->ramp = ramp;
    return NS_OK;
}

double ns_bn_set_momentum(ns_layer *L, double momentum)
{
    bn_impl *b = L->impl;
    double old = b->momentum;
    b->momentum = momentum;
    return old;
}

void ns_bn_set_shift(ns_layer *L, double alpha)
{
    ((bn_impl *)L->impl)->shift = alpha;
}

int ns_bn_set_condensation_gate(ns_layer *L, double tau)
{
    bn_impl *b = L->impl;
    b->fct = tau;
    b->condensation = NAN;
    if (!b->work)
        b->work = ns_malloc(ns_layer_in_size(L) * sizeof *b->work);
    return b->work ? NS_OK : NS_ENOMEM;
}

int ns_bn_create(ns_layer *L, double momentum, double eps, int affine, size_t group)
{
    if (!(momentum >= 0 && momentum <= 1))
        return ns_error(NS_EINVAL, "batch-norm momentum %g is not in [0, 1]", momentum);
    if (!(eps > 0))
        return ns_error(NS_EINVAL, "batch-norm eps %g is not positive", eps);
    bn_impl *b = ns_calloc(1, sizeof *b);
    if (!b)
        return NS_ENOMEM;
    L->impl = b;
    L->ops = &bn_ops;
    b->momentum = momentum;
    b->eps = eps;
    b->affine = affine;
    b->group = group;
    L->out_c = L->in_c;
    L->out_h = L->in_h;
    L->out_w = L->in_w;
    size_t C = L->in_c, ngmax = L->max_batch;
    b->mean = ns_malloc(ngmax * C * sizeof *b->mean);
    b->invstd = ns_malloc(ngmax * C * sizeof *b->invstd);
    b->s1 = ns_malloc(C * sizeof *b->s1);
    b->s2 = ns_malloc(C * sizeof *b->s2);
    b->a = ns_malloc(2 * C * sizeof *b->a);
    b->b = ns_malloc(C * sizeof *b->b);
    if (!b->mean || !b->invstd || !b->s1 || !b->s2 || !b->a || !b->b)
        return NS_ENOMEM;
    /* Kept for backward: the statistics of each group. */
    size_t ng = group && group < L->max_batch ? (L->max_batch + group - 1) / group : 1;
    L->cache_bytes = 2 * ng * C * sizeof(double);
    size_t cd[1] = {C}, one[1] = {1};
    int st = NS_OK;
    if (affine) {
        st = ns_layer_add_param(L, "weight", 1, cd);
        if (!st)
            st = ns_layer_add_param(L, "bias", 1, cd);
    }
    if (!st)
        st = ns_layer_add_state(L, "running_mean", 1, cd);
    if (!st)
        st = ns_layer_add_state_flags(L, "running_var", 1, cd, NS_TENSOR_NONNEG);
    if (!st)
        st = ns_layer_add_state_flags(L, "num_batches_tracked", 1, one, NS_TENSOR_NONNEG);
    return st;
}

/* ------------------------------------------------------------- options */

/* Read by most methods: ns_norm_method.reads names them. */
static const ns_opt bn_opts[] = {
    {.option = "--norm-group", NS_NET_FIELD(norm_group), .type = NS_OPT_SIZE, .min = 0,
     .max = 65536, .flags = NS_OPT_NET, .def = 0, .arg = "S",
     .help = "normalise in groups of S samples (ghost batches); 0: the whole batch"},
    {.option = "--bn-momentum", NS_NET_FIELD(bn_momentum), .type = NS_OPT_DOUBLE, .min = 0,
     .max = 1, .flags = NS_OPT_NET, .def = 0.1, .arg = "M",
     .help = "momentum of the running statistics"},
    {.option = "--bn-eps", NS_NET_FIELD(bn_eps), .type = NS_OPT_DOUBLE, .min = 0,
     .max = INFINITY, .flags = NS_OPT_NET | NS_OPT_MIN_OPEN, .def = 1e-5, .arg = "E",
     .help = "variance epsilon"},
    {.flag = "--no-bn-affine", NS_NET_FIELD(bn_affine), .type = NS_OPT_INT, .min = 0, .max = 1,
     .flags = NS_OPT_NET, .def = 1, .help = "BN without gamma and beta"},
};
const ns_opt_table ns_bn_options = {bn_opts, sizeof bn_opts / sizeof *bn_opts};

static const ns_opt ubn_opts[] = {
    {.option = "--fct", NS_NET_FIELD(fct), .type = NS_OPT_DOUBLE, .min = -1, .max = 1,
     .flags = NS_OPT_NET | NS_OPT_OLD | NS_OPT_MIN_OPEN, .def = 0.9, .old = 0.9, .arg = "TAU",
     .help = "skip a layer's running-statistics update when its condensation exceeds TAU; "
             "condensation is recorded per layer and step in /history/step/condensation"},
};
const ns_opt_table ns_ubn_options = {ubn_opts, sizeof ubn_opts / sizeof *ubn_opts};

static const ns_opt psbn_opts[] = {
    {.option = "--psbn-alpha", NS_NET_FIELD(psbn_alpha), .type = NS_OPT_DOUBLE,
     .min = -INFINITY, .max = INFINITY, .flags = NS_OPT_NET | NS_OPT_OLD, .def = 0.1,
     .old = 0.1, .arg = "A", .help = "constant added to the BN output in both modes"},
};
const ns_opt_table ns_psbn_options = {psbn_opts, sizeof psbn_opts / sizeof *psbn_opts};

static const ns_opt brn_opts[] = {
    {.option = "--brn-warmup", NS_NET_FIELD(brn_warmup), .type = NS_OPT_SIZE, .min = 0,
     .max = NS_OPT_MAX_STEPS, .flags = NS_OPT_NET | NS_OPT_OLD, .def = 500, .old = 500,
     .arg = "STEPS", .help = "steps with r = 1, d = 0 (plain BN) before the ramp"},
    {.option = "--brn-ramp", NS_NET_FIELD(brn_ramp), .type = NS_OPT_SIZE, .min = 0,
     .max = NS_OPT_MAX_STEPS, .flags = NS_OPT_NET | NS_OPT_OLD, .def = 2000, .old = 2000,
     .arg = "STEPS", .help = "steps of the linear ramp of rmax to 3 and dmax to 5"},
};
const ns_opt_table ns_brn_options = {brn_opts, sizeof brn_opts / sizeof *brn_opts};

/* The IC layer: this BN followed by dropout (the network builder places it). */
static const ns_opt ic_opts[] = {
    {.option = "--ic-drop", NS_NET_FIELD(ic_drop), .type = NS_OPT_DOUBLE, .min = 0, .max = 1,
     .flags = NS_OPT_NET | NS_OPT_OLD | NS_OPT_MAX_OPEN, .def = 0.05, .old = 0.05, .arg = "P",
     .help = "dropout probability after each BN"},
};
const ns_opt_table ns_ic_options = {ic_opts, sizeof ic_opts / sizeof *ic_opts};
