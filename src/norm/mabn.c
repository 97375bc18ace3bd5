/*
 * Moving Average Batch Normalization (Yan et al., ICLR 2020), following the
 * authors' public code (METHODS.md, [code]):
 *   train:  x2 = E[x^2] over the batch (per channel, no centering: MABN is
 *           paired with centred weights, --norm mabn uses CenConv);
 *           var = mean of the last S values of x2 (the batch's own x2 during
 *           warm-up and while the buffer fills);
 *           z = x / sqrt(var + eps);
 *           r = sqrt(var + eps) / sqrt(running_var + eps), 1 for the first
 *           max(1000, warm-up) iterations, then clamped to [1/5, 5];
 *           y = gamma r z + beta;  running_var <- 0.98 running_var + 0.02 var
 *   backward (the paper's modification):  g = dy gamma r,
 *           gz = E[g z] pushed into a buffer of S values,
 *           dx = (g - z mean(buffer gz)) / sqrt(var + eps)
 *           (the batch's own gz during warm-up: then this is the exact
 *           gradient of the forward function);
 *   eval:   y = gamma x / sqrt(running_var + eps) + beta.
 * With normalisation groups each group is one iteration of the buffers, in
 * order (normscope's reading of chunked application).  This layer's
 * backward updates its gradient buffer: the one place where backward
 * changes state, because the method is defined that way.
 * NS_MODE_BATCH uses the batch's own x2 and gz, r = 1, and touches nothing:
 * the exact gradient of x / sqrt(E[x^2] + eps).
 */
#include "normscope/norm.h"

#include <math.h>
#include <string.h>

typedef struct mabn_impl {
    double eps, momentum;   /* momentum: decay of running_var (0.98) */
    size_t S, warmup, group;
    double *is, *r;         /* ngroups_max * C of the last forward */
    uint64_t *it;           /* ngroups_max: iteration number of each group */
    double *tmp;            /* C */
    size_t ngroups, gsize;
    int batch_mode;
} mabn_impl;

static size_t group_size(const mabn_impl *m, size_t n)
{
    return (m->group == 0 || m->group > n) ? n : m->group;
}

/* s[c] = mean over samples lo..hi-1 and positions of a[c] b[c] (b may equal a). */
static void channel_mean_prod(const ns_real *a, const ns_real *b, size_t lo, size_t hi,
                              size_t C, size_t P, double *s)
{
    size_t size = C * P;
    double cnt = (double)((hi - lo) * P);
    for (size_t c = 0; c < C; c++) {
        double acc = 0;
        for (size_t i = lo; i < hi; i++) {
            const ns_real *ap = a + i * size + c * P, *bp = b + i * size + c * P;
#pragma omp simd reduction(+ : acc)
            for (size_t j = 0; j < P; j++)
                acc += (double)ap[j] * bp[j];
        }
        s[c] = acc / cnt;
    }
}

static int mabn_forward(ns_layer *L, ns_real *y, const ns_real *x,
                        const ns_real *x2, size_t n, const ns_ctx *ctx)
{
    (void)x2;
    mabn_impl *m = L->impl;
    size_t C = L->in_c, P = L->in_h * L->in_w, size = C * P;
    const ns_real *gamma = L->param[0].data, *beta = L->param[1].data;
    ns_real *rv = L->state[0].data, *iters = L->state[1].data;
    ns_real *bx2 = L->state[2].data;
    L->last_mode = ctx->mode;
    if (ctx->mode == NS_MODE_EVAL) {
        m->ngroups = 1;
        m->gsize = n;
        for (size_t c = 0; c < C; c++) {
            m->is[c] = 1.0 / sqrt((double)rv[c] + m->eps);
            m->r[c] = 1;
        }
    } else {
        size_t g = group_size(m, n), ng = (n + g - 1) / g;
        m->ngroups = ng;
        m->gsize = g;
        m->batch_mode = ctx->mode == NS_MODE_BATCH;
        for (size_t k = 0; k < ng; k++) {
            size_t lo = k * g, hi = lo + g < n ? lo + g : n;
            double *is = m->is + k * C, *r = m->r + k * C;
            channel_mean_prod(x, x, lo, hi, C, P, m->tmp);
            if (m->batch_mode) {
                for (size_t c = 0; c < C; c++) {
                    is[c] = 1.0 / sqrt(m->tmp[c] + m->eps);
                    r[c] = 1;
                }
                continue;
            }
            uint64_t it = (uint64_t)iters[0] + 1;
            iters[0] = (ns_real)it;
            m->it[k] = it;
            ns_real *slot = bx2 + (it % m->S) * C;
            for (size_t c = 0; c < C; c++)
                slot[c] = (ns_real)m->tmp[c];
            int warm = it <= m->S || it < m->warmup;
            int clamp_one = it <= (m->warmup > 1000 ? m->warmup : 1000);
            for (size_t c = 0; c < C; c++) {
                double var = m->tmp[c];
                if (!warm) {
                    var = 0;
                    for (size_t q = 0; q < m->S; q++)
                        var += bx2[q * C + c];
                    var /= (double)m->S;
                }
                is[c] = 1.0 / sqrt(var + m->eps);
                double rr = sqrt(var + m->eps) / sqrt((double)rv[c] + m->eps);
                r[c] = clamp_one ? 1 : rr < 0.2 ? 0.2 : rr > 5 ? 5 : rr;
                rv[c] = (ns_real)(m->momentum * rv[c] + (1 - m->momentum) * var);
            }
        }
    }
    for (size_t k = 0; k < m->ngroups; k++) {
        size_t lo = k * m->gsize, hi = lo + m->gsize < n ? lo + m->gsize : n;
        const double *is = m->is + k * C, *r = m->r + k * C;
        for (size_t i = lo; i < hi; i++)
            for (size_t c = 0; c < C; c++) {
                const ns_real *xp = x + i * size + c * P;
                ns_real *yp = y + i * size + c * P;
                ns_real a = (ns_real)(gamma[c] * r[c] * is[c]), b = beta[c];
#pragma omp simd
                for (size_t j = 0; j < P; j++)
                    yp[j] = a * xp[j] + b;
            }
    }
    return NS_OK;
}

static void mabn_backward(ns_layer *L, ns_real *dx, ns_real *dx2, int acc,
                          const ns_real *dy, const ns_real *y, const ns_real *x,
                          size_t n)
{
    (void)dx2;
    (void)y;
    acc &= 1;
    mabn_impl *m = L->impl;
    size_t C = L->in_c, P = L->in_h * L->in_w, size = C * P;
    const ns_real *gamma = L->param[0].data;
    ns_real *dgamma = L->param[0].grad, *dbeta = L->param[1].grad;
    ns_real *bgz = L->state[3].data;
    int eval = L->last_mode == NS_MODE_EVAL;
    for (size_t k = 0; k < m->ngroups; k++) {
        size_t lo = k * m->gsize, hi = lo + m->gsize < n ? lo + m->gsize : n;
        double cnt = (double)((hi - lo) * P);
        const double *is = m->is + k * C, *r = m->r + k * C;
        for (size_t c = 0; c < C; c++) {
            /* gz = E[g z] with g = dy gamma r, z = x is */
            double s1 = 0, s2 = 0;
            for (size_t i = lo; i < hi; i++) {
                const ns_real *d = dy + i * size + c * P, *xp = x + i * size + c * P;
                for (size_t j = 0; j < P; j++) {
                    s1 += d[j];
                    s2 += (double)d[j] * xp[j];
                }
            }
            dgamma[c] += (ns_real)(s2 * r[c] * is[c]);
            dbeta[c] += (ns_real)s1;
            m->tmp[c] = gamma[c] * r[c] * is[c] * s2 / cnt;
        }
        if (!eval && !m->batch_mode) {
            uint64_t it = m->it[k];
            ns_real *slot = bgz + (it % m->S) * C;
            for (size_t c = 0; c < C; c++)
                slot[c] = (ns_real)m->tmp[c];
            if (!(it <= m->S || it < m->warmup))
                for (size_t c = 0; c < C; c++) {
                    double s = 0;
                    for (size_t q = 0; q < m->S; q++)
                        s += bgz[q * C + c];
                    m->tmp[c] = s / (double)m->S;
                }
        }
        if (!dx)
            continue;
        for (size_t i = lo; i < hi; i++)
            for (size_t c = 0; c < C; c++) {
                const ns_real *d = dy + i * size + c * P, *xp = x + i * size + c * P;
                ns_real *o = dx + i * size + c * P;
                double gr = gamma[c] * r[c], mgz = eval ? 0 : m->tmp[c];
                for (size_t j = 0; j < P; j++) {
                    double z = xp[j] * is[c];
                    ns_real v = (ns_real)(is[c] * (d[j] * gr - z * mgz));
                    o[j] = acc ? o[j] + v : v;
                }
            }
    }
}

static void mabn_init(ns_layer *L, const ns_init *init, ns_rng *rng)
{
    (void)init;
    (void)rng;
    size_t C = L->in_c;
    for (size_t c = 0; c < C; c++) {
        L->param[0].data[c] = 1;
        L->param[1].data[c] = 0;
        L->state[0].data[c] = 1;
    }
    L->state[1].data[0] = 0;
    memset(L->state[2].data, 0, L->state[2].size * sizeof(ns_real));
    memset(L->state[3].data, 0, L->state[3].size * sizeof(ns_real));
}

static void mabn_release(ns_layer *L)
{
    mabn_impl *m = L->impl;
    if (!m)
        return;
    ns_free(m->is);
    ns_free(m->r);
    ns_free(m->it);
    ns_free(m->tmp);
    ns_free(m);
    L->impl = NULL;
}

static const ns_layer_ops mabn_ops = {
    .kind = "mabn", .forward = mabn_forward, .backward = mabn_backward,
    .init = mabn_init, .release = mabn_release, .flags = NS_LAYER_NORM | NS_LAYER_BATCH_STATS,
};

size_t ns_mabn_buffer_size(const ns_net_opts *o)
{
    if (o->mabn_buffer)
        return o->mabn_buffer;
    size_t b = o->norm_group ? o->norm_group : o->max_batch;
    size_t s = b && b < o->mabn_real_batch ? o->mabn_real_batch / b : 1;
    return s ? s : 1;
}

int ns_mabn_create(ns_layer *L, double eps, size_t buffer, size_t warmup, size_t group)
{
    if (buffer == 0)
        return ns_error(NS_EINVAL, "MABN needs a buffer of at least one batch");
    mabn_impl *m = ns_calloc(1, sizeof *m);
    if (!m)
        return NS_ENOMEM;
    L->impl = m;
    L->ops = &mabn_ops;
    m->eps = eps;
    m->momentum = 0.98;
    m->S = buffer;
    m->warmup = warmup;
    m->group = group;
    L->out_c = L->in_c;
    L->out_h = L->in_h;
    L->out_w = L->in_w;
    size_t C = L->in_c, ng = L->max_batch;
    m->is = ns_malloc(ng * C * sizeof *m->is);
    m->r = ns_malloc(ng * C * sizeof *m->r);
    m->it = ns_malloc(ng * sizeof *m->it);
    m->tmp = ns_malloc(C * sizeof *m->tmp);
    if (!m->is || !m->r || !m->it || !m->tmp)
        return NS_ENOMEM;
    L->cache_bytes = 2 * (group && group < ng ? (ng + group - 1) / group : 1) * C * sizeof(double);
    size_t cd[1] = {C}, one[1] = {1}, bd[2] = {buffer, C};
    int st = ns_layer_add_param(L, "weight", 1, cd);
    if (!st) st = ns_layer_add_param(L, "bias", 1, cd);
    if (!st) st = ns_layer_add_state_flags(L, "running_var", 1, cd, NS_TENSOR_NONNEG);
    if (!st) st = ns_layer_add_state_flags(L, "iters", 1, one, NS_TENSOR_NONNEG);
    if (!st) st = ns_layer_add_state_flags(L, "buffer_x2", 2, bd, NS_TENSOR_NONNEG);
    if (!st) st = ns_layer_add_state(L, "buffer_gz", 2, bd);
    return st;
}

/* ------------------------------------------------------------- options */

static const ns_opt mabn_opts[] = {
    {.option = "--mabn-real-batch", NS_NET_FIELD(mabn_real_batch), .type = NS_OPT_SIZE,
     .min = 1, .max = 65536, .flags = NS_OPT_NET | NS_OPT_OLD, .def = 32, .old = 32,
     .arg = "R", .help = "the buffer spans R samples, max(1, R / B) iterations of B "
                         "samples as in the authors' rule; B is the normalisation group, or "
                         "else the batch"},
    /* Runs written before the attribute used 16 iterations. */
    {.option = "--mabn-buffer", NS_NET_FIELD(mabn_buffer), .type = NS_OPT_SIZE, .min = 0,
     .max = 4096, .flags = NS_OPT_NET | NS_OPT_OLD, .def = 0, .old = 16, .arg = "S",
     .help = "sets the buffer to S iterations directly; 0: the rule of --mabn-real-batch"},
    {.option = "--mabn-warmup", NS_NET_FIELD(mabn_warmup), .type = NS_OPT_SIZE, .min = 0,
     .max = NS_OPT_MAX_STEPS, .flags = NS_OPT_NET | NS_OPT_OLD, .def = 100, .old = 100,
     .arg = "N", .help = "warm-up iterations with the batch's own statistics"},
};
const ns_opt_table ns_mabn_options = {mabn_opts, sizeof mabn_opts / sizeof *mabn_opts};
