/*
 * Batch Kalman Normalization (Wang et al. 2018), following METHODS.md:
 * the statistics of a normalization layer are estimated by mixing the
 * observed (micro-)batch moments with a prediction made from the previous
 * normalization layer's statistics through this layer's own weights:
 *   pseudo-input S = ReLU(m + sqrt(v) eps), eps ~ N(0, 1), (m, v) the
 *     previous layer's estimated mean and variance per channel;
 *   (mhat, vhat) = moments of (weight layer)(S) per channel;
 *   mu~ = p mhat + (1-p) mu,
 *   s2~ = p vhat + (1-p) s2 + p (1-p) (mu - mhat)^2,
 *   used only when mean(vhat / s2) < 100 (else mu, s2);
 *   y = gamma (x - mu~) / sqrt(s2~ + eps) + beta;
 *   running averages of (mu~, s2~) with decay 0.9 are used at inference.
 * One pseudo-input with moments over (H, W) for convolutions, as the
 * authors' code; on dense layers (a single value per channel) `samples`
 * pseudo-inputs instead (normscope's own choice).  The prediction is taken
 * as a constant in backward (normscope's reading: no gradient through the
 * pseudo-input); the gradient flows through the observed mu and s2.
 * With groups, one prediction serves every group (made from the previous
 * layer's last group) and the running averages take every group in turn;
 * the authors' code predicts each group from the matching group of the
 * previous layer and averages the first group's statistics (both ours).
 * The first normalization layer of a network has no predecessor and uses
 * its batch statistics.  After a residual block the statistics carried on
 * are the sums of the branch's and the skip path's (see bkn_estimate), and a
 * projection shortcut's BKN predicts from the block's input statistics.  p defaults to 0.9 for normalisation groups of at
 * most 16 samples and 0.05 otherwise.
 */
#include "normscope/norm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct bkn_impl {
    double p, eps, decay;
    size_t group, samples;
    int frozen;              /* tests: reuse the last prediction */
    int have_pred;           /* the last prediction exists */
    ns_layer *wl;            /* the weight layer feeding this one (or NULL) */
    double *mt, *st;         /* ngroups_max * C: mu~, s2~ used */
    double *mu, *s2;         /* ngroups_max * C: observed moments */
    double *mh, *vh;         /* C: prediction */
    int *mixed;              /* ngroups_max: the prediction was used */
    double *est_m, *est_v;   /* C: this layer's last estimate, read by the next BKN */
    ns_real *pin, *pout;     /* pseudo-input and its image */
    size_t ngroups, gsize;
    int have_est;
} bkn_impl;

/*
 * The statistics (m, v) of C channels that flow out of L, for the next BKN:
 * a BKN layer's last (mu~, s2~); after a residual block (L its add layer)
 * the sums of the branch's and the skip path's estimates, as for the sum of
 * independent inputs (normscope's reading of "carried along the skip").
 * 0 when L is none of these or has no estimate yet.
 */
static int bkn_estimate(const ns_layer *L, double *m, double *v, size_t C)
{
    if (!L || L->in_c != C)
        return 0;
    if (strcmp(L->ops->kind, "bkn") == 0) {
        const bkn_impl *b = L->impl;
        if (!b->have_est)
            return 0;
        memcpy(m, b->est_m, C * sizeof *m);
        memcpy(v, b->est_v, C * sizeof *v);
        return 1;
    }
    if (strcmp(L->ops->kind, "add") != 0 || !bkn_estimate(L->prev_norm, m, v, C))
        return 0;
    double *t = malloc(2 * C * sizeof *t);
    int ok = t && bkn_estimate(L->prev_norm2, t, t + C, C);
    for (size_t c = 0; ok && c < C; c++) {
        m[c] += t[c];
        v[c] += t[C + c];
    }
    free(t);
    return ok;
}

static size_t group_size(const bkn_impl *b, size_t n)
{
    return (b->group == 0 || b->group > n) ? n : b->group;
}

/* Prediction (mh, vh) from the previous layer's estimate; 0 if none. */
static int predict(ns_layer *L, bkn_impl *b, const ns_ctx *ctx)
{
    if (b->frozen)
        return b->have_pred;
    ns_layer *W = b->wl;
    if (!L->prev_norm || !W)
        return 0;
    size_t pc = L->prev_norm->in_c, in = ns_layer_in_size(W);
    if (in % pc != 0)
        return 0;
    double *pm = malloc(2 * pc * sizeof *pm);
    if (!pm || !bkn_estimate(L->prev_norm, pm, pm + pc, pc)) {
        free(pm);
        return 0;
    }
    const double *pv = pm + pc;
    size_t per = in / pc;   /* input values per channel of the predecessor */
    size_t ns = W->out_h * W->out_w == 1 ? b->samples : 1;
    ns_rng r;
    ns_rng_seed(&r, ctx->seed ^ 0xb4a1u, ctx->step * 4096 + (uint64_t)atoi(L->name));
    for (size_t s = 0; s < ns; s++)
        for (size_t j = 0; j < in; j++) {
            size_t c = j / per;
            double v = pm[c] + sqrt(pv[c] > 0 ? pv[c] : 0) * ns_rng_normal(&r);
            b->pin[s * in + j] = (ns_real)(v > 0 ? v : 0);
        }
    free(pm);
    ns_ctx pc_ctx = {.mode = NS_MODE_EVAL, .seed = ctx->seed, .step = ctx->step};
    if (W->ops->forward(W, b->pout, b->pin, NULL, ns, &pc_ctx))
        return 0;
    size_t C = L->in_c, P = L->in_h * L->in_w;
    for (size_t c = 0; c < C; c++) {
        double s1 = 0, s2 = 0, cnt = (double)(ns * P);
        for (size_t s = 0; s < ns; s++)
            for (size_t j = 0; j < P; j++) {
                double v = b->pout[s * C * P + c * P + j];
                s1 += v;
                s2 += v * v;
            }
        b->mh[c] = s1 / cnt;
        b->vh[c] = s2 / cnt - b->mh[c] * b->mh[c];
        if (b->vh[c] < 0)
            b->vh[c] = 0;
    }
    return 1;
}

static int bkn_forward(ns_layer *L, ns_real *y, const ns_real *x,
                       const ns_real *x2, size_t n, const ns_ctx *ctx)
{
    (void)x2;
    bkn_impl *b = L->impl;
    size_t C = L->in_c, P = L->in_h * L->in_w, size = C * P;
    const ns_real *gamma = L->param[0].data, *beta = L->param[1].data;
    ns_real *rm = L->state[0].data, *rv = L->state[1].data;
    L->last_mode = ctx->mode;
    if (ctx->mode == NS_MODE_EVAL) {
        b->ngroups = 1;
        b->gsize = n;
        b->mixed[0] = 0;
        for (size_t c = 0; c < C; c++) {
            b->mt[c] = rm[c];
            b->st[c] = rv[c];
            b->mu[c] = rm[c];
        }
    } else {
        size_t g = group_size(b, n), ng = (n + g - 1) / g;
        for (size_t k = 0; k < ng; k++) {
            size_t lo = k * g, hi = lo + g < n ? lo + g : n;
            if ((hi - lo) * P < 2)
                return ns_error(NS_EINVAL, "batch Kalman normalization in '%s' needs more "
                                "than one value per channel", L->name);
        }
        b->ngroups = ng;
        b->gsize = g;
        int have = predict(L, b, ctx);
        b->have_pred = have;
        for (size_t k = 0; k < ng; k++) {
            size_t lo = k * g, hi = lo + g < n ? lo + g : n;
            double cnt = (double)((hi - lo) * P);
            double *mu = b->mu + k * C, *s2 = b->s2 + k * C;
            double *mt = b->mt + k * C, *st = b->st + k * C;
            for (size_t c = 0; c < C; c++) {
                double s = 0, ss = 0;
                for (size_t i = lo; i < hi; i++)
                    for (size_t j = 0; j < P; j++)
                        s += x[i * size + c * P + j];
                mu[c] = s / cnt;
                for (size_t i = lo; i < hi; i++)
                    for (size_t j = 0; j < P; j++) {
                        double d = x[i * size + c * P + j] - mu[c];
                        ss += d * d;
                    }
                s2[c] = ss / cnt;
            }
            /* The variance-ratio guard of the authors' code. */
            int mix = have;
            if (mix) {
                double ratio = 0;
                for (size_t c = 0; c < C; c++)
                    ratio += b->vh[c] / (s2[c] + b->eps);
                mix = ratio / (double)C < 100;
            }
            b->mixed[k] = mix;
            double p = mix ? b->p : 0;
            for (size_t c = 0; c < C; c++) {
                double dm = mu[c] - (mix ? b->mh[c] : mu[c]);
                mt[c] = p * (mix ? b->mh[c] : 0) + (1 - p) * mu[c];
                st[c] = p * (mix ? b->vh[c] : 0) + (1 - p) * s2[c] + p * (1 - p) * dm * dm;
                if (ctx->mode == NS_MODE_TRAIN) {
                    rm[c] = (ns_real)(b->decay * rm[c] + (1 - b->decay) * mt[c]);
                    rv[c] = (ns_real)(b->decay * rv[c] + (1 - b->decay) * st[c]);
                }
            }
        }
        /* The estimate the next BKN layer predicts from: the last group's. */
        memcpy(b->est_m, b->mt + (ng - 1) * C, C * sizeof *b->est_m);
        memcpy(b->est_v, b->st + (ng - 1) * C, C * sizeof *b->est_v);
        b->have_est = 1;
    }
    for (size_t k = 0; k < b->ngroups; k++) {
        size_t lo = k * b->gsize, hi = lo + b->gsize < n ? lo + b->gsize : n;
        const double *mt = b->mt + k * C, *st = b->st + k * C;
        for (size_t i = lo; i < hi; i++)
            for (size_t c = 0; c < C; c++) {
                double is = 1.0 / sqrt(st[c] + b->eps);
                ns_real a = (ns_real)(gamma[c] * is), bb = (ns_real)(beta[c] - gamma[c] * is * mt[c]);
                const ns_real *xp = x + i * size + c * P;
                ns_real *yp = y + i * size + c * P;
                for (size_t j = 0; j < P; j++)
                    yp[j] = a * xp[j] + bb;
            }
    }
    return NS_OK;
}

static void bkn_backward(ns_layer *L, ns_real *dx, ns_real *dx2, int acc,
                         const ns_real *dy, const ns_real *y, const ns_real *x,
                         size_t n)
{
    (void)dx2;
    (void)y;
    acc &= 1;
    bkn_impl *b = L->impl;
    size_t C = L->in_c, P = L->in_h * L->in_w, size = C * P;
    const ns_real *gamma = L->param[0].data;
    ns_real *dgamma = L->param[0].grad, *dbeta = L->param[1].grad;
    int eval = L->last_mode == NS_MODE_EVAL;
    for (size_t k = 0; k < b->ngroups; k++) {
        size_t lo = k * b->gsize, hi = lo + b->gsize < n ? lo + b->gsize : n;
        double cnt = (double)((hi - lo) * P);
        const double *mt = b->mt + k * C, *st = b->st + k * C, *mu = b->mu + k * C;
        double p = b->mixed[k] ? b->p : 0, d = 1 - p;
        for (size_t c = 0; c < C; c++) {
            double is = 1.0 / sqrt(st[c] + b->eps), sg = 0, sgx = 0, s1 = 0;
            for (size_t i = lo; i < hi; i++)
                for (size_t j = 0; j < P; j++) {
                    double dyv = dy[i * size + c * P + j];
                    double xh = (x[i * size + c * P + j] - mt[c]) * is;
                    s1 += dyv;
                    sgx += dyv * xh;
                }
            dgamma[c] += (ns_real)sgx;
            dbeta[c] += (ns_real)s1;
            if (!dx)
                continue;
            sg = gamma[c] * s1;
            sgx *= gamma[c];
            /* dx_i = is g_i - (d/m) is sum g
             *        - is^2 (sum g xhat)/m [d (x_i - mu) + p d (mu - mhat)] */
            double shift = b->mixed[k] ? p * d * (mu[c] - b->mh[c]) : 0;
            for (size_t i = lo; i < hi; i++)
                for (size_t j = 0; j < P; j++) {
                    size_t q = i * size + c * P + j;
                    double v = is * gamma[c] * dy[q];
                    if (!eval)
                        v -= d / cnt * is * sg +
                             is * is * sgx / cnt * (d * (x[q] - mu[c]) + shift);
                    dx[q] = (ns_real)(acc ? dx[q] + v : v);
                }
        }
    }
}

static void bkn_init(ns_layer *L, const ns_init *init, ns_rng *r)
{
    (void)init;
    (void)r;
    bkn_impl *b = L->impl;
    for (size_t c = 0; c < L->in_c; c++) {
        L->param[0].data[c] = 1;
        L->param[1].data[c] = 0;
        L->state[0].data[c] = 0;
        L->state[1].data[c] = 1;
    }
    b->have_est = 0;
}

static void bkn_release(ns_layer *L)
{
    bkn_impl *b = L->impl;
    if (!b)
        return;
    ns_free(b->mt);
    ns_free(b->st);
    ns_free(b->mu);
    ns_free(b->s2);
    ns_free(b->mh);
    ns_free(b->vh);
    ns_free(b->mixed);
    ns_free(b->est_m);
    ns_free(b->est_v);
    ns_free(b->pin);
    ns_free(b->pout);
    ns_free(b);
    L->impl = NULL;
}

static const ns_layer_ops bkn_ops = {
    .kind = "bkn", .forward = bkn_forward, .backward = bkn_backward,
    .init = bkn_init, .release = bkn_release,
};

int ns_bkn_carried(const ns_layer *L, double *m, double *v, size_t C)
{
    return bkn_estimate(L, m, v, C);
}

void ns_bkn_freeze(ns_layer *L, int frozen)
{
    ((bkn_impl *)L->impl)->frozen = frozen;
}

int ns_bkn_create(ns_layer *L, double p, double eps, size_t group, size_t samples)
{
    bkn_impl *b = ns_calloc(1, sizeof *b);
    if (!b)
        return NS_ENOMEM;
    L->impl = b;
    L->ops = &bkn_ops;
    L->is_norm = 1;
    if (p < 0)
        p = (group && group <= 16) ? 0.9 : 0.05;
    if (!(p >= 0 && p <= 1))
        return ns_error(NS_EINVAL, "--bkn-p must be in [0, 1], got %g", p);
    b->p = p;
    b->eps = eps;
    b->decay = 0.9;
    b->group = group;
    L->out_c = L->in_c;
    L->out_h = L->in_h;
    L->out_w = L->in_w;
    size_t C = L->in_c, ng = L->max_batch;
    /* The weight layer whose weights carry the prediction. */
    ns_layer *W = L->in_layer;
    if (W && (!strcmp(W->ops->kind, "dense") || !strcmp(W->ops->kind, "conv")))
        b->wl = W;
    b->samples = samples < L->max_batch ? samples : L->max_batch;
    size_t ns = b->wl ? (b->wl->out_h * b->wl->out_w == 1 ? b->samples : 1) : 0;
    b->mt = ns_malloc(ng * C * sizeof *b->mt);
    b->st = ns_malloc(ng * C * sizeof *b->st);
    b->mu = ns_malloc(ng * C * sizeof *b->mu);
    b->s2 = ns_malloc(ng * C * sizeof *b->s2);
    b->mh = ns_calloc(C, sizeof *b->mh);
    b->vh = ns_calloc(C, sizeof *b->vh);
    b->mixed = ns_calloc(ng, sizeof *b->mixed);
    b->est_m = ns_malloc(C * sizeof *b->est_m);
    b->est_v = ns_malloc(C * sizeof *b->est_v);
    b->pin = ns_malloc((ns ? ns * ns_layer_in_size(b->wl) : 1) * sizeof *b->pin);
    b->pout = ns_malloc((ns ? ns * ns_layer_out_size(b->wl) : 1) * sizeof *b->pout);
    if (!b->mt || !b->st || !b->mu || !b->s2 || !b->mh || !b->vh || !b->mixed ||
        !b->est_m || !b->est_v || !b->pin || !b->pout)
        return NS_ENOMEM;
    L->cache_bytes = 4 * (group && group < ng ? (ng + group - 1) / group : 1) * C * sizeof(double);
    size_t cd[1] = {C};
    int st = ns_layer_add_param(L, "weight", 1, cd);
    if (!st) st = ns_layer_add_param(L, "bias", 1, cd);
    if (!st) st = ns_layer_add_state(L, "running_mean", 1, cd);
    if (!st) st = ns_layer_add_state_flags(L, "running_var", 1, cd, NS_TENSOR_NONNEG);
    return st;
}
