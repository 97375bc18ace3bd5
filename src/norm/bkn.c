/*
 * Batch Kalman Normalization (Wang et al. 2018), following METHODS.md and
 * the authors' code (KalmanNorm/kalman_norm.py, cifar-kn-microbatch.py):
 * the statistics of a normalization layer are estimated by mixing the
 * observed (micro-)batch moments with a prediction made from the previous
 * normalization layer's statistics through this layer's own weights:
 *   pseudo-input S = ReLU(m + sqrt(v) eps), eps ~ N(0, 1), (m, v) the
 *     previous layer's estimated mean and variance per channel;
 *   (mhat, vhat) = moments of (weight layer)(S) per channel;
 *   mu~ = p mhat + (1-p) mu,
 *   s2~ = p vhat + (1-p) s2 + p (1-p) (mu - mhat)^2,
 *   used only when mean(vhat / (s2 + eps)) < 100 (else mu, s2);
 *   y = gamma (x - mu~) / sqrt(s2~ + eps) + beta;
 *   running averages of (mu~, s2~) with decay 0.9 are used at inference.
 * One pseudo-input with moments over (H, W) for convolutions, as the
 * authors' code; on dense layers (a single value per channel) `samples`
 * pseudo-inputs instead (normscope's own choice).
 *
 * Groups (--norm-group S), two modes:
 *   NS_BKN_PREDICT_GROUP (the authors' code, the default): group g is
 *     predicted from group g of the previous layer, with its own pseudo-input
 *     (drawn in group order from one stream); one guard decision for the
 *     whole batch (the mean of vhat / s2 over every group and channel); the
 *     running averages take group 0's (mu~, s2~) only, once per step; each
 *     group's (mu~, s2~) is handed on to the next layer.
 *   NS_BKN_PREDICT_LAST (normscope's first reading, runs written before the
 *     mode was recorded): one prediction serves every group, made from the
 *     previous layer's last group; the guard per group; the running
 *     averages take every group in turn.
 * The eps in the guard keeps a constant channel finite (the authors divide
 * by s2 alone).
 *
 * Gradient: with `grad` 1 (the default) it flows through the prediction
 * as autograd does in the authors' code: into the weight layer's
 * parameters through the pseudo-input's image, and through the pseudo-input
 * into the previous layer's (mu~, s2~) (see est_deposit), hence into that
 * layer's input and its own prediction; the draws eps are held fixed.  The
 * prediction is linear in the weight layer's weights and bias, so the
 * layer's output stays invariant to their scale and (for the bias) shift,
 * as with BN.  With `grad` 0 (normscope's first reading, runs written
 * before the option) the prediction is a constant in backward and the
 * gradient flows through the observed mu and s2 only, a fraction 1 - p.
 *
 * The first normalization layer of a network has no predecessor and uses
 * its batch statistics.  After a residual block the statistics carried on
 * are the sums of the branch's and the skip path's (see est_add), and a
 * projection shortcut's BKN predicts from the block's input statistics.  p
 * defaults to 0.9 for normalisation groups of at most 16 samples and 0.05
 * otherwise.
 */
#include "normscope/norm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct bkn_impl {
    double p, eps, decay;
    double recal_saved;      /* decay while recalibrating */
    size_t group, samples;
    ns_bkn_predict predict;
    int grad;                /* gradient through the prediction */
    int frozen;              /* tests: reuse the last prediction */
    int have_pred;           /* the last prediction exists */
    ns_layer *wl;            /* the weight layer feeding this one (or NULL) */
    size_t gmax;             /* groups of a batch of max_batch samples */
    size_t pc;               /* channels of the previous layer's statistics */
    size_t ns;               /* pseudo-inputs per prediction (1 on maps) */
    /* per group (gmax rows of C): */
    double *mt, *st;         /* mu~, s2~ used */
    double *mu, *s2;         /* observed moments */
    double *mh, *vh;         /* prediction (one row per prediction) */
    double *dmh, *dvh;       /* backward scratch: dL/d(mh, vh) */
    double *est_m, *est_v;   /* (mu~, s2~) handed on to the next BKN */
    double *dest_m, *dest_v; /* dL/d(est) added by the layers that predicted from it */
    double *pm, *pv;         /* gmax rows of pc: the previous statistics used */
    size_t *psrc;            /* the previous layer's group each prediction read */
    int *mixed;              /* per group: the prediction was used */
    ns_real *noise, *pin, *pout, *dpin, *dpout; /* gmax * ns pseudo-inputs and images */
    size_t npred;            /* predictions of the last forward */
    size_t ngroups, gsize;
    size_t est_ng;           /* groups in est (0: no estimate yet) */
} bkn_impl;

static const ns_layer_ops bkn_ops;

static int is_bkn(const ns_layer *L)
{
    return L->ops == &bkn_ops;
}

static int is_add(const ns_layer *L)
{
    return L->ops->role == NS_ROLE_ADD;
}

/*
 * The statistics (m, v) of C channels that flow out of L, for the next BKN,
 * one row per group: a BKN layer's last (mu~, s2~) of each group; after a
 * residual block (L its add layer) the sums of the branch's and the skip
 * path's estimates, as for the sum of independent inputs (normscope's
 * reading of the authors' `m + m3, v + v3`).  est_groups gives the number
 * of groups (0 when L is none of these, has no estimate yet, or the paths
 * disagree); est_add adds group k's statistics to (m, v); est_deposit adds
 * dL/d(m, v) of group k where the statistics came from.
 */
static size_t est_groups(const ns_layer *L, size_t C)
{
    if (!L || L->in_c != C)
        return 0;
    if (is_bkn(L)) {
        const bkn_impl *b = L->impl;
        return b->est_ng;
    }
    if (!is_add(L))
        return 0;
    size_t g1 = est_groups(L->prev_norm, C), g2 = est_groups(L->prev_norm2, C);
    return g1 == g2 ? g1 : 0;
}

static void est_add(const ns_layer *L, size_t k, double *m, double *v, size_t C)
{
    if (is_bkn(L)) {
        const bkn_impl *b = L->impl;
        for (size_t c = 0; c < C; c++) {
            m[c] += b->est_m[k * C + c];
            v[c] += b->est_v[k * C + c];
        }
        return;
    }
    est_add(L->prev_norm, k, m, v, C);
    est_add(L->prev_norm2, k, m, v, C);
}

static void est_deposit(const ns_layer *L, size_t k, const double *dm, const double *dv,
                        size_t C)
{
    if (is_bkn(L)) {
        /* the layer's impl is its own scratch; L itself stays read-only */
        bkn_impl *b = L->impl;
        for (size_t c = 0; c < C; c++) {
            b->dest_m[k * C + c] += dm[c];
            b->dest_v[k * C + c] += dv[c];
        }
        return;
    }
    est_deposit(L->prev_norm, k, dm, dv, C);
    est_deposit(L->prev_norm2, k, dm, dv, C);
}

static size_t group_size(const bkn_impl *b, size_t n)
{
    return (b->group == 0 || b->group > n) ? n : b->group;
}

/* Prediction (mh, vh) per prediction row from the previous layer's
 * estimate for ng groups; 0 if none. */
static int predict(ns_layer *L, bkn_impl *b, const ns_ctx *ctx, size_t ng)
{
    if (b->frozen)
        return b->have_pred;
    ns_layer *W = b->wl;
    if (!L->prev_norm || !W || b->pc == 0)
        return 0;
    size_t pc = b->pc, in = ns_layer_in_size(W), out = ns_layer_out_size(W);
    size_t pg = est_groups(L->prev_norm, pc);
    if (pg == 0 || (b->predict == NS_BKN_PREDICT_GROUP && pg != ng))
        return 0;
    size_t np = b->predict == NS_BKN_PREDICT_GROUP ? ng : 1, ns = b->ns;
    size_t per = in / pc;   /* input values per channel of the predecessor */
    memset(b->pm, 0, np * pc * sizeof *b->pm);
    memset(b->pv, 0, np * pc * sizeof *b->pv);
    ns_rng r;
    ns_rng_seed(&r, ctx->seed ^ 0xb4a1u, ctx->step * 4096 + (uint64_t)atoi(L->name));
    for (size_t k = 0; k < np; k++) {
        b->psrc[k] = b->predict == NS_BKN_PREDICT_GROUP ? k : pg - 1;
        double *pm = b->pm + k * pc, *pv = b->pv + k * pc;
        est_add(L->prev_norm, b->psrc[k], pm, pv, pc);
        for (size_t s = 0; s < ns; s++)
            for (size_t j = 0; j < in; j++) {
                size_t c = j / per, q = (k * ns + s) * in + j;
                double e = ns_rng_normal(&r);
                double v = pm[c] + sqrt(pv[c] > 0 ? pv[c] : 0) * e;
                b->noise[q] = (ns_real)e;
                b->pin[q] = (ns_real)(v > 0 ? v : 0);
            }
    }
    /* through the weight layer, at most max_batch samples a call */
    ns_ctx pc_ctx = {.mode = NS_MODE_EVAL, .seed = ctx->seed, .step = ctx->step};
    size_t rows = np * ns, chunk = W->max_batch / ns * ns;
    for (size_t r0 = 0; r0 < rows; r0 += chunk) {
        size_t m = rows - r0 < chunk ? rows - r0 : chunk;
        if (W->ops->forward(W, b->pout + r0 * out, b->pin + r0 * in, NULL, m, &pc_ctx))
            return 0;
    }
    size_t C = L->in_c, P = L->in_h * L->in_w;
    double cnt = (double)(ns * P);
    for (size_t k = 0; k < np; k++)
        for (size_t c = 0; c < C; c++) {
            double s1 = 0, s2 = 0;
            for (size_t s = 0; s < ns; s++) {
                const ns_real *o = b->pout + (k * ns + s) * out + c * P;
                for (size_t j = 0; j < P; j++) {
                    s1 += o[j];
                    s2 += (double)o[j] * o[j];
                }
            }
            double mh = s1 / cnt, vh = s2 / cnt - mh * mh;
            b->mh[k * C + c] = mh;
            b->vh[k * C + c] = vh > 0 ? vh : 0;
        }
    b->npred = np;
    return 1;
}

/* The prediction row group k uses. */
static size_t pred_row(const bkn_impl *b, size_t k)
{
    return b->npred > 1 ? k : 0;
}

/* The guard of the authors' code: mean(vhat / s2) < 100, over the groups
 * [k0, k1) and their channels. */
static int guard_passes(const bkn_impl *b, size_t C, size_t k0, size_t k1)
{
    double ratio = 0;
    for (size_t k = k0; k < k1; k++) {
        const double *vh = b->vh + pred_row(b, k) * C, *s2 = b->s2 + k * C;
        for (size_t c = 0; c < C; c++)
            ratio += vh[c] / (s2[c] + b->eps);
    }
    return ratio / (double)((k1 - k0) * C) < 100;
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
        /* the observed moments and the mixing of the last training
         * forward stay for ns_bkn_moments */
        b->ngroups = 1;
        b->gsize = n;
        for (size_t c = 0; c < C; c++) {
            b->mt[c] = rm[c];
            b->st[c] = rv[c];
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
        int have = predict(L, b, ctx, ng);
        if (have && b->frozen && b->npred > 1 && b->npred != ng)
            have = 0;
        b->have_pred = have;
        for (size_t k = 0; k < ng; k++) {
            size_t lo = k * g, hi = lo + g < n ? lo + g : n;
            double cnt = (double)((hi - lo) * P);
            double *mu = b->mu + k * C, *s2 = b->s2 + k * C;
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
        }
        /* The variance-ratio guard: one decision for the batch (the
         * authors' code takes the mean over every group), or per group. */
        int joint = have && b->predict == NS_BKN_PREDICT_GROUP ? guard_passes(b, C, 0, ng) : 0;
        int update = ctx->mode == NS_MODE_TRAIN;
        for (size_t k = 0; k < ng; k++) {
            int mix = have && (b->predict == NS_BKN_PREDICT_GROUP ? joint
                                                                  : guard_passes(b, C, k, k + 1));
            b->mixed[k] = mix;
            double p = mix ? b->p : 0;
            const double *mh = b->mh + pred_row(b, k) * C, *vh = b->vh + pred_row(b, k) * C;
            const double *mu = b->mu + k * C, *s2 = b->s2 + k * C;
            double *mt = b->mt + k * C, *st = b->st + k * C;
            for (size_t c = 0; c < C; c++) {
                if (mix) {
                    double dm = mu[c] - mh[c];
                    mt[c] = p * mh[c] + (1 - p) * mu[c];
                    st[c] = p * vh[c] + (1 - p) * s2[c] + p * (1 - p) * dm * dm;
                } else {
                    mt[c] = mu[c];
                    st[c] = s2[c];
                }
            }
            /* running averages: group 0's (authors) or every group's */
            if (update && (k == 0 || b->predict == NS_BKN_PREDICT_LAST))
                for (size_t c = 0; c < C; c++) {
                    rm[c] = (ns_real)(b->decay * rm[c] + (1 - b->decay) * mt[c]);
                    rv[c] = (ns_real)(b->decay * rv[c] + (1 - b->decay) * st[c]);
                }
        }
        /* What the next BKN layer predicts from: every group's estimate. */
        memcpy(b->est_m, b->mt, ng * C * sizeof *b->est_m);
        memcpy(b->est_v, b->st, ng * C * sizeof *b->est_v);
        memset(b->dest_m, 0, ng * C * sizeof *b->dest_m);
        memset(b->dest_v, 0, ng * C * sizeof *b->dest_v);
        b->est_ng = ng;
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

/* Backward through the prediction: dL/d(mh, vh) in b->dmh, b->dvh to the
 * weight layer's parameters and, through the pseudo-input, to the previous
 * layer's statistics. */
static void predict_backward(ns_layer *L, bkn_impl *b, int bits)
{
    ns_layer *W = b->wl;
    size_t C = L->in_c, P = L->in_h * L->in_w, pc = b->pc, ns = b->ns;
    size_t in = ns_layer_in_size(W), out = ns_layer_out_size(W), per = in / pc;
    double cnt = (double)(ns * P);
    /* mh = mean(o), vh = mean(o^2) - mh^2 over (samples, P) */
    for (size_t k = 0; k < b->npred; k++)
        for (size_t c = 0; c < C; c++) {
            double mh = b->mh[k * C + c], a = b->dmh[k * C + c] / cnt;
            double v2 = b->vh[k * C + c] > 0 ? 2 * b->dvh[k * C + c] / cnt : 0;
            for (size_t s = 0; s < ns; s++) {
                size_t q = (k * ns + s) * out + c * P;
                for (size_t j = 0; j < P; j++)
                    b->dpout[q + j] = (ns_real)(a + v2 * (b->pout[q + j] - mh));
            }
        }
    size_t rows = b->npred * ns, chunk = W->max_batch / ns * ns;
    for (size_t r0 = 0; r0 < rows; r0 += chunk) {
        size_t m = rows - r0 < chunk ? rows - r0 : chunk;
        W->ops->backward(W, b->dpin + r0 * in, NULL, bits, b->dpout + r0 * out,
                         b->pout + r0 * out, b->pin + r0 * in, m);
    }
    /* S = relu(m + sqrt(v) eps): dS/dm = 1, dS/dv = eps / (2 sqrt(v)) where S > 0 */
    double *dm = b->dmh, *dv = b->dvh;   /* reused as scratch, pc <= gmax rows */
    for (size_t k = 0; k < b->npred; k++) {
        const double *pv = b->pv + k * pc;
        memset(dm, 0, pc * sizeof *dm);
        memset(dv, 0, pc * sizeof *dv);
        for (size_t s = 0; s < ns; s++)
            for (size_t j = 0; j < in; j++) {
                size_t c = j / per, q = (k * ns + s) * in + j;
                if (b->pin[q] <= 0)
                    continue;
                dm[c] += b->dpin[q];
                if (pv[c] > 0)
                    dv[c] += b->dpin[q] * b->noise[q] * 0.5 / sqrt(pv[c]);
            }
        est_deposit(L->prev_norm, b->psrc[k], dm, dv, pc);
    }
}

static void bkn_backward(ns_layer *L, ns_real *dx, ns_real *dx2, int acc,
                         const ns_real *dy, const ns_real *y, const ns_real *x,
                         size_t n)
{
    (void)dx2;
    (void)y;
    int bits = acc & NS_BACKWARD_NO_PARAM_GRAD;   /* for the weight layer's backward */
    acc &= 1;
    bkn_impl *b = L->impl;
    size_t C = L->in_c, P = L->in_h * L->in_w, size = C * P;
    const ns_real *gamma = L->param[0].data;
    ns_real *dgamma = L->param[0].grad, *dbeta = L->param[1].grad;
    int eval = L->last_mode == NS_MODE_EVAL;
    int through = !eval && b->grad && b->have_pred && !b->frozen;
    if (through) {
        memset(b->dmh, 0, b->npred * C * sizeof *b->dmh);
        memset(b->dvh, 0, b->npred * C * sizeof *b->dvh);
    }
    for (size_t k = 0; k < b->ngroups; k++) {
        size_t lo = k * b->gsize, hi = lo + b->gsize < n ? lo + b->gsize : n;
        double cnt = (double)((hi - lo) * P);
        const double *mt = b->mt + k * C, *st = b->st + k * C, *mu = b->mu + k * C;
        const double *mh = b->mh + pred_row(b, k) * C;
        double p = !eval && b->mixed[k] ? b->p : 0, d = 1 - p;
        for (size_t c = 0; c < C; c++) {
            double is = 1.0 / sqrt(st[c] + b->eps), s1 = 0, sxc = 0;
            for (size_t i = lo; i < hi; i++)
                for (size_t j = 0; j < P; j++) {
                    double dyv = dy[i * size + c * P + j];
                    s1 += dyv;
                    sxc += dyv * (x[i * size + c * P + j] - mt[c]);
                }
            dgamma[c] += (ns_real)(sxc * is);
            dbeta[c] += (ns_real)s1;
            if (eval) {
                for (size_t i = lo; i < hi && dx; i++)
                    for (size_t j = 0; j < P; j++) {
                        size_t q = i * size + c * P + j;
                        double v = is * gamma[c] * dy[q];
                        dx[q] = (ns_real)(acc ? dx[q] + v : v);
                    }
                continue;
            }
            /* dL/d(mu~, s2~): this layer's own use plus the next layers'
             * predictions made from them */
            double A = -gamma[c] * is * s1 + b->dest_m[k * C + c];
            double B = -0.5 * gamma[c] * is * is * is * sxc + b->dest_v[k * C + c];
            double dmu = d * A, ds2 = d * B;
            if (p > 0) {
                double cross = 2 * p * d * (mu[c] - mh[c]) * B;
                dmu += cross;
                if (through) {
                    b->dmh[pred_row(b, k) * C + c] += p * A - cross;
                    b->dvh[pred_row(b, k) * C + c] += p * B;
                }
            }
            if (!dx)
                continue;
            /* dx_i = gamma is dy_i + dmu / m + 2 ds2 (x_i - mu) / m */
            double a0 = dmu / cnt, a1 = 2 * ds2 / cnt;
            for (size_t i = lo; i < hi; i++)
                for (size_t j = 0; j < P; j++) {
                    size_t q = i * size + c * P + j;
                    double v = is * gamma[c] * dy[q] + a0 + a1 * (x[q] - mu[c]);
                    dx[q] = (ns_real)(acc ? dx[q] + v : v);
                }
        }
    }
    if (through)
        predict_backward(L, b, bits);
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
    b->est_ng = 0;
}

static void bkn_release(ns_layer *L)
{
    bkn_impl *b = L->impl;
    if (!b)
        return;
    double *d[] = {b->mt, b->st, b->mu, b->s2, b->mh, b->vh, b->dmh, b->dvh, b->est_m,
                   b->est_v, b->dest_m, b->dest_v, b->pm, b->pv};
    for (size_t i = 0; i < sizeof d / sizeof *d; i++)
        ns_free(d[i]);
    ns_real *r[] = {b->noise, b->pin, b->pout, b->dpin, b->dpout};
    for (size_t i = 0; i < sizeof r / sizeof *r; i++)
        ns_free(r[i]);
    ns_free(b->psrc);
    ns_free(b->mixed);
    ns_free(b);
    L->impl = NULL;
}

/* Recalibration: running averages reset, then the plain mean of the
 * calibration batches (decay k/(k+1) before batch k). */
static void bkn_recal_begin(ns_layer *L)
{
    bkn_impl *b = L->impl;
    for (size_t c = 0; c < L->in_c; c++) {
        L->state[0].data[c] = 0;
        L->state[1].data[c] = 1;
    }
    b->recal_saved = b->decay;
}

static void bkn_recal_batch(ns_layer *L, size_t k)
{
    ((bkn_impl *)L->impl)->decay = (double)k / (double)(k + 1);
}

static void bkn_recal_end(ns_layer *L)
{
    bkn_impl *b = L->impl;
    b->decay = b->recal_saved;
}

static const ns_layer_ops bkn_ops = {
    .kind = "bkn", .forward = bkn_forward, .backward = bkn_backward,
    .init = bkn_init, .release = bkn_release, .flags = NS_LAYER_NORM | NS_LAYER_BATCH_STATS,
    .recal_begin = bkn_recal_begin, .recal_batch = bkn_recal_batch, .recal_end = bkn_recal_end,
};

int ns_bkn_carried(const ns_layer *L, size_t k, double *m, double *v, size_t C)
{
    if (k >= est_groups(L, C))
        return 0;
    memset(m, 0, C * sizeof *m);
    memset(v, 0, C * sizeof *v);
    est_add(L, k, m, v, C);
    return 1;
}

size_t ns_bkn_mixed(const ns_layer *L, size_t *ngroups)
{
    const bkn_impl *b = L->impl;
    if (ngroups)
        *ngroups = b->est_ng;
    size_t m = 0;
    for (size_t k = 0; k < b->est_ng; k++)
        m += b->mixed[k] != 0;
    return m;
}

int ns_bkn_moments(const ns_layer *L, size_t k, double *mu, double *s2, double *mh,
                   double *vh)
{
    const bkn_impl *b = L->impl;
    size_t C = L->in_c;
    if (k >= b->est_ng)
        return -1;
    if (mu)
        memcpy(mu, b->mu + k * C, C * sizeof *mu);
    if (s2)
        memcpy(s2, b->s2 + k * C, C * sizeof *s2);
    if (!b->have_pred)
        return 0;
    if (mh)
        memcpy(mh, b->mh + pred_row(b, k) * C, C * sizeof *mh);
    if (vh)
        memcpy(vh, b->vh + pred_row(b, k) * C, C * sizeof *vh);
    return 1;
}

double ns_bkn_set_decay(ns_layer *L, double decay)
{
    bkn_impl *b = L->impl;
    double old = b->decay;
    b->decay = decay;
    return old;
}

void ns_bkn_freeze(ns_layer *L, int frozen)
{
    ((bkn_impl *)L->impl)->frozen = frozen;
}

int ns_bkn_parse_predict(const char *s, ns_bkn_predict *mode)
{
    if (!strcmp(s, "group"))
        *mode = NS_BKN_PREDICT_GROUP;
    else if (!strcmp(s, "last"))
        *mode = NS_BKN_PREDICT_LAST;
    else
        return ns_error(NS_EINVAL, "--bkn-predict is group or last, got '%s'", s);
    return NS_OK;
}

const char *ns_bkn_predict_name(ns_bkn_predict mode)
{
    return mode == NS_BKN_PREDICT_LAST ? "last" : "group";
}

int ns_bkn_create(ns_layer *L, const ns_bkn_opts *o)
{
    bkn_impl *b = ns_calloc(1, sizeof *b);
    if (!b)
        return NS_ENOMEM;
    L->impl = b;
    L->ops = &bkn_ops;
    double p = o->p;
    if (p < 0)
        p = (o->group && o->group <= 16) ? 0.9 : 0.05;
    if (!(p >= 0 && p <= 1))
        return ns_error(NS_EINVAL, "--bkn-p must be in [0, 1], got %g", p);
    if (o->predict != NS_BKN_PREDICT_GROUP && o->predict != NS_BKN_PREDICT_LAST)
        return ns_error(NS_EINVAL, "unknown BKN prediction mode %d", (int)o->predict);
    b->p = p;
    b->eps = o->eps;
    b->decay = 0.9;
    b->group = o->group;
    b->predict = o->predict;
    b->grad = o->grad != 0;
    L->out_c = L->in_c;
    L->out_h = L->in_h;
    L->out_w = L->in_w;
    size_t C = L->in_c, B = L->max_batch;
    size_t g = o->group && o->group < B ? o->group : B;
    b->gmax = (B + g - 1) / g;
    /* The weight layer whose weights carry the prediction, and the
     * statistics it reads. */
    ns_layer *W = L->in_layer;
    if (W && (W->ops->role == NS_ROLE_DENSE || W->ops->role == NS_ROLE_CONV) &&
        L->prev_norm && ns_layer_in_size(W) % L->prev_norm->in_c == 0) {
        b->wl = W;
        b->pc = L->prev_norm->in_c;
    }
    b->samples = o->samples < B ? o->samples : B;
    if (b->samples == 0)
        b->samples = 1;
    b->ns = b->wl ? (b->wl->out_h * b->wl->out_w == 1 ? b->samples : 1) : 0;
    size_t G = b->gmax, pc = b->pc > C ? b->pc : C;
    size_t npin = b->wl ? G * b->ns * ns_layer_in_size(b->wl) : 1;
    size_t npout = b->wl ? G * b->ns * ns_layer_out_size(b->wl) : 1;
    double **d[] = {&b->mt, &b->st, &b->mu, &b->s2, &b->mh, &b->vh, &b->dmh, &b->dvh,
                    &b->est_m, &b->est_v, &b->dest_m, &b->dest_v, &b->pm, &b->pv};
    int bad = 0;
    for (size_t i = 0; i < sizeof d / sizeof *d; i++)
        bad |= !(*d[i] = ns_calloc(G * pc, sizeof **d[i]));
    b->psrc = ns_calloc(G, sizeof *b->psrc);
    b->mixed = ns_calloc(G, sizeof *b->mixed);
    b->noise = ns_malloc(npin * sizeof *b->noise);
    b->pin = ns_malloc(npin * sizeof *b->pin);
    b->pout = ns_malloc(npout * sizeof *b->pout);
    if (b->grad) {
        b->dpin = ns_malloc(npin * sizeof *b->dpin);
        b->dpout = ns_malloc(npout * sizeof *b->dpout);
    }
    if (bad || !b->psrc || !b->mixed || !b->noise || !b->pin || !b->pout ||
        (b->grad && (!b->dpin || !b->dpout)))
        return NS_ENOMEM;
    size_t groups = o->group && o->group < B ? (B + o->group - 1) / o->group : 1;
    L->cache_bytes = 4 * groups * C * sizeof(double);
    if (b->grad)   /* the pseudo-inputs, their draws and images */
        L->cache_bytes += (2 * npin + npout) * sizeof(ns_real);
    size_t cd[1] = {C};
    int st = ns_layer_add_param(L, "weight", 1, cd);
    if (!st) st = ns_layer_add_param(L, "bias", 1, cd);
    if (!st) st = ns_layer_add_state(L, "running_mean", 1, cd);
    if (!st) st = ns_layer_add_state_flags(L, "running_var", 1, cd, NS_TENSOR_NONNEG);
    return st;
}

/* ------------------------------------------------------------- options */

static const ns_opt_choice predict_choices[] = {
    {"group", NS_BKN_PREDICT_GROUP}, {"last", NS_BKN_PREDICT_LAST},
};
static const ns_opt_choice grad_choices[] = {{"none", 0}, {"full", 1}};

/* Runs written before bkn_predict and bkn_grad were recorded predicted
 * every group from the previous layer's last group, without gradient
 * through the prediction: their `old` values. */
static const ns_opt bkn_opts[] = {
    {.option = "--bkn-p", NS_NET_FIELD(bkn_p), .type = NS_OPT_DOUBLE, .min = 0, .max = 1,
     .flags = NS_OPT_NET | NS_OPT_OLD | NS_OPT_UNSET, .unset = -1, .def = -1, .old = -1,
     .arg = "P", .help = "mixing weight of the prediction; unless given, 0.9 for "
                         "--norm-group <= 16, else 0.05"},
    {.option = "--bkn-predict", NS_NET_FIELD(bkn_predict), .type = NS_OPT_INT,
     .flags = NS_OPT_NET | NS_OPT_OLD | NS_OPT_BY_NAME, .def = NS_BKN_PREDICT_GROUP,
     .old = NS_BKN_PREDICT_LAST, .choices = predict_choices, .nchoices = 2,
     .help = "group, the authors' code: each group predicted from the "
             "same group of the previous layer, one guard decision per batch, running "
             "averages of group 0's statistics; last: one prediction for every group from "
             "the previous layer's last group, running averages over every group, "
             "normscope's first reading and what runs written before the option load with"},
    {.option = "--bkn-grad", NS_NET_FIELD(bkn_grad), .type = NS_OPT_INT,
     .flags = NS_OPT_NET | NS_OPT_OLD, .def = 1, .old = 0, .choices = grad_choices,
     .nchoices = 2,
     .help = "full, the authors' code: the gradient also flows through "
             "the prediction into the weight layer and the previous layer's statistics; "
             "none: the prediction is a constant in backward, normscope's first reading and "
             "what runs written before the option load with; cnn, one epoch, groups of 2, "
             "seeds 1-3: 78.6% against 82.7% with the gradient"},
    {.option = "--bkn-samples", NS_NET_FIELD(bkn_samples), .type = NS_OPT_SIZE, .min = 1,
     .max = 65536, .flags = NS_OPT_NET | NS_OPT_OLD, .def = 64, .old = 64, .arg = "K",
     .help = "pseudo-inputs per prediction on dense layers"},
};
const ns_opt_table ns_bkn_options = {bkn_opts, sizeof bkn_opts / sizeof *bkn_opts};
