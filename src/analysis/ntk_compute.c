/*
 * Empirical NTK in tiles of sample blocks (include/normscope/ntk.h).
 *
 * A block of samples is turned into factors:
 *   dense layers (structured):  A (m x (n_in + 1)), the inputs with a ones
 *       column, and D (m*K x n_out), the output cotangents of every
 *       (sample, output) pair, row i*K + k;
 *   every other parameterised layer (Jacobian form): its rows of J, packed
 *       side by side into G (m*K x gw).
 * A tile of the kernel between blocks I and J is then
 *   G_I G_J^T + sum_dense (A_I A_J^T)[i(r), j(s)] * (D_I D_J^T)[r, s],
 * and the trace kernel is the same product with the K rows of a sample read
 * as one row K times as wide (the layout is the same memory).
 *
 * Eval mode: one forward over a chunk of the block, then K backward passes
 * with cotangent e_k on every sample give all cotangents at once (samples
 * are independent).  Per-sample gradients of a Jacobian-form layer come from
 * its own backward on one sample (after a one-sample forward of that layer
 * where its backward reads forward caches; conv and dense read only x, dy
 * and the weights).  Batch mode: one forward over all n samples, then a
 * full backward per (sample, output) pair gives each row of J.
 */
#include "normscope/ntk.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct plan {
    ns_net *net;
    const ns_ntk_opts *o;
    size_t n, K, kr, wm;     /* rows per sample (K or 1), width factor (1 or K) */
    int batch;
    /* structured dense layers */
    size_t nd;
    size_t *dl, *din, *dout;
    /* Jacobian-form layers: layer, offset in a G row (of one output), size,
     * offset of its parameters in the slab */
    size_t ng, gw;
    size_t *gl, *goff, *gsz, *gslab;
    size_t max_out;          /* largest output size of a Jacobian-form layer */
} plan;

typedef struct block {
    size_t s0, m;
    ns_real **A, **D, *G;
} block;

static size_t layer_nparams(const ns_layer *L)
{
    size_t s = 0;
    for (int p = 0; p < L->nparam; p++)
        s += L->param[p].size;
    return s;
}

int ns_ntk_has_batch_stats(const ns_net *net)
{
    for (size_t i = 0; i < net->nlayers; i++)
        if (net->layers[i].ops->flags & NS_LAYER_BATCH_STATS)
            return 1;
    return 0;
}

static void plan_free(plan *p)
{
    free(p->dl);
    free(p->din);
    free(p->dout);
    free(p->gl);
    free(p->goff);
    free(p->gsz);
    free(p->gslab);
    memset(p, 0, sizeof *p);
}

static int plan_make(plan *p, ns_net *net, const ns_ntk_opts *o, size_t n)
{
    memset(p, 0, sizeof *p);
    p->net = net;
    p->o = o;
    p->n = n;
    p->K = net->nout;
    p->batch = o->mode == NS_MODE_BATCH;
    p->kr = o->trace ? 1 : p->K;
    p->wm = o->trace ? p->K : 1;
    size_t nl = net->nlayers;
    p->dl = calloc(nl, sizeof *p->dl);
    p->din = calloc(nl, sizeof *p->din);
    p->dout = calloc(nl, sizeof *p->dout);
    p->gl = calloc(nl, sizeof *p->gl);
    p->goff = calloc(nl, sizeof *p->goff);
    p->gsz = calloc(nl, sizeof *p->gsz);
    p->gslab = calloc(nl, sizeof *p->gslab);
    if (!p->dl || !p->din || !p->dout || !p->gl || !p->goff || !p->gsz || !p->gslab) {
        plan_free(p);
        return ns_error(NS_ENOMEM, "out of memory planning the NTK");
    }
    for (size_t i = 0; i < nl; i++) {
        ns_layer *L = &net->layers[i];
        size_t np = layer_nparams(L);
        if (!np)
            continue;
        /* The layer's parameters must be one contiguous range of the slab. */
        size_t lo = (size_t)(L->param[0].data - net->params), hi = lo;
        for (int q = 0; q < L->nparam; q++) {
            size_t a = (size_t)(L->param[q].data - net->params);
            lo = a < lo ? a : lo;
            hi = a + L->param[q].size > hi ? a + L->param[q].size : hi;
        }
        if (hi - lo != np) {
            plan_free(p);
            return ns_error(NS_EFAIL, "parameters of layer '%s' are not contiguous", L->name);
        }
        int structured = 0;
        if (!p->batch && L->ops->role == NS_ROLE_DENSE && !ns_layer_wrule(L) &&
            o->method != NS_NTK_JACOBIAN) {
            /* FLOPs per pair of samples: structured n_in + K^2 n_out against
             * the Jacobian form's K^2 (n_in + 1) n_out. */
            double nin = (double)ns_layer_in_size(L), nout = (double)L->out_c;
            double K2 = (double)(p->K * p->K);
            structured = o->method == NS_NTK_STRUCTURED || nin + 1 + K2 * nout < K2 * (nin + 1) * nout;
        }
        if (structured) {
            p->dl[p->nd] = i;
            p->din[p->nd] = ns_layer_in_size(L);
            p->dout[p->nd] = ns_layer_out_size(L);
            p->nd++;
        } else {
            p->gl[p->ng] = i;
            p->goff[p->ng] = p->gw;
            p->gsz[p->ng] = np;
            p->gslab[p->ng] = lo;
            p->gw += np;
            p->ng++;
            size_t os = ns_layer_out_size(L);
            p->max_out = os > p->max_out ? os : p->max_out;
        }
    }
    return NS_OK;
}

/* Factor values (ns_real) of one sample. */
static size_t sample_values(const plan *p)
{
    size_t v = p->K * p->gw;
    for (size_t d = 0; d < p->nd; d++)
        v += p->din[d] + 1 + p->K * p->dout[d];
    return v;
}

/* Bytes of one tile between blocks of bs samples (sv bytes of factors per
 * sample, kr rows per sample): both blocks' factors, the tile in double and
 * two ns_real scratch matrices. */
static size_t block_bytes(size_t sv, size_t kr, size_t bs)
{
    return 2 * bs * sv + bs * kr * bs * kr * (sizeof(double) + 2 * sizeof(ns_real));
}

size_t ns_ntk_block_bytes(const ns_net *net, const ns_ntk_opts *o, size_t nblock)
{
    plan p;
    if (plan_make(&p, (ns_net *)net, o, 1))
        return 0;
    size_t b = block_bytes(sample_values(&p) * sizeof(ns_real), p.kr, nblock);
    plan_free(&p);
    return b;
}

static void block_free(const plan *p, block *b)
{
    if (b->A)
        for (size_t d = 0; d < p->nd; d++)
            ns_free(b->A[d]);
    if (b->D)
        for (size_t d = 0; d < p->nd; d++)
            ns_free(b->D[d]);
    free(b->A);
    free(b->D);
    ns_free(b->G);
    memset(b, 0, sizeof *b);
}

static int block_alloc(const plan *p, block *b, size_t s0, size_t m)
{
    memset(b, 0, sizeof *b);
    b->s0 = s0;
    b->m = m;
    b->A = calloc(p->nd ? p->nd : 1, sizeof *b->A);
    b->D = calloc(p->nd ? p->nd : 1, sizeof *b->D);
    if (!b->A || !b->D)
        goto oom;
    for (size_t d = 0; d < p->nd; d++) {
        b->A[d] = ns_malloc(m * (p->din[d] + 1) * sizeof(ns_real));
        b->D[d] = ns_malloc(m * p->K * p->dout[d] * sizeof(ns_real));
        if (!b->A[d] || !b->D[d])
            goto oom;
    }
    if (p->gw && !(b->G = ns_malloc(m * p->K * p->gw * sizeof(ns_real))))
        goto oom;
    return NS_OK;
oom:
    block_free(p, b);
    return ns_error(NS_ENOMEM, "out of memory for NTK factors of %zu samples", m);
}

/* The cotangent a layer's backward received in the last backward pass. */
static const ns_real *layer_dy(const ns_net *net, size_t i, const ns_real *dlogits)
{
    return i == net->nlayers - 1 ? dlogits : net->dact[i];
}

/* Layers whose backward reads only x, dy and the parameters, not caches of
 * the forward pass, so that it may run on one sample of a larger forward. */
static int backward_is_pure(const ns_layer *L)
{
    return (L->ops->flags & NS_LAYER_PURE_BACKWARD) != 0;
}

/* Zeroes the gradients of Jacobian-form layer g, runs its backward on one
 * sample and copies the gradient into row `row` of G. */
static void sample_grad(const plan *p, size_t g, ns_real *G, size_t row, const ns_real *dy,
                        const ns_real *y, const ns_real *x)
{
    ns_net *net = p->net;
    ns_layer *L = &net->layers[p->gl[g]];
    ns_real *gr = net->grads + p->gslab[g];
    memset(gr, 0, p->gsz[g] * sizeof *gr);
    L->ops->backward(L, NULL, NULL, 0, dy, y, x, 1);
    memcpy(G + row * p->gw + p->goff[g], gr, p->gsz[g] * sizeof *gr);
}

/* A conv layer without a weight rule: its per-sample gradient is
 * dy_i (co x P) col_i^T (P x K) and the bias's the row sums of dy_i, formed
 * here for all samples of a chunk in parallel from columns computed once. */
static int fast_conv(const ns_layer *L)
{
    return L->ops->role == NS_ROLE_CONV && !ns_layer_wrule(L) && L->nparam == 2;
}

/* Eval-mode factors of samples [b->s0, b->s0 + b->m). */
static int gen_eval(const plan *p, const ns_real *x, block *b)
{
    ns_net *net = p->net;
    size_t K = p->K, in = net->in_c * net->in_h * net->in_w, cmax = net->max_batch;
    int impure = 0;
    for (size_t g = 0; g < p->ng; g++)
        impure |= !backward_is_pure(&net->layers[p->gl[g]]);
    ns_real *dl = ns_malloc(cmax * K * sizeof *dl);
    ns_real *yone = ns_malloc((p->max_out ? p->max_out : 1) * sizeof *yone);
    if (!dl || !yone) {
        ns_free(dl);
        ns_free(yone);
        return ns_error(NS_ENOMEM, "out of memory for NTK cotangents");
    }
    ns_ctx ctx = {.mode = NS_MODE_EVAL};
    int st = NS_OK;
    /* columns of the fast conv layers for a chunk */
    ns_real **cols = calloc(p->ng ? p->ng : 1, sizeof *cols);
    if (!cols)
        st = ns_error(NS_ENOMEM, "out of memory for NTK columns");
    for (size_t g = 0; !st && g < p->ng; g++) {
        const ns_layer *L = &net->layers[p->gl[g]];
        size_t cs = fast_conv(L) ? L->param[0].size / L->out_c * L->out_h * L->out_w : 0;
        if (cs && !(cols[g] = ns_malloc(cmax * cs * sizeof(ns_real))))
            st = ns_error(NS_ENOMEM, "out of memory for NTK columns");
    }
    for (size_t c0 = 0; c0 < b->m && !st; c0 += cmax) {
        size_t mc = b->m - c0 < cmax ? b->m - c0 : cmax;
        const ns_real *xc = x + (b->s0 + c0) * in;
        if ((st = ns_net_forward(net, xc, mc, &ctx)))
            break;
        for (size_t g = 0; g < p->ng; g++) {
            const ns_layer *L = &net->layers[p->gl[g]];
            if (!cols[g])
                continue;
            const ns_real *xin = L->src < 0 ? xc : net->act[L->src];
            size_t is = ns_layer_in_size(L), cs = L->param[0].size / L->out_c * L->out_h * L->out_w;
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < mc; i++)
                ns_conv_im2col(L, xin + i * is, cols[g] + i * cs);
        }
        for (size_t d = 0; d < p->nd; d++) {
            const ns_layer *L = &net->layers[p->dl[d]];
            const ns_real *a = L->src < 0 ? xc : net->act[L->src];
            size_t w = p->din[d] + 1;
            for (size_t i = 0; i < mc; i++) {
                ns_real *row = b->A[d] + (c0 + i) * w;
                memcpy(row, a + i * p->din[d], p->din[d] * sizeof *row);
                row[p->din[d]] = 1;
            }
        }
        /* K backward passes with cotangent e_k on every sample at once. */
        for (size_t k = 0; k < K && !st; k++) {
            /* One-sample forwards of layers below overwrote their caches. */
            if (k > 0 && impure && (st = ns_net_forward(net, xc, mc, &ctx)))
                break;
            memset(dl, 0, mc * K * sizeof *dl);
            for (size_t i = 0; i < mc; i++)
                dl[i * K + k] = 1;
            /* only cotangents are needed from this pass */
            ns_net_backward_input(net, dl);
            for (size_t d = 0; d < p->nd; d++) {
                const ns_real *dy = layer_dy(net, p->dl[d], dl);
                size_t w = p->dout[d];
                for (size_t i = 0; i < mc; i++)
                    memcpy(b->D[d] + ((c0 + i) * K + k) * w, dy + i * w, w * sizeof(ns_real));
            }
            for (size_t g = 0; g < p->ng && !st; g++) {
                ns_layer *L = &net->layers[p->gl[g]];
                const ns_real *dy = layer_dy(net, p->gl[g], dl);
                if (cols[g]) {
                    size_t co = L->out_c, P = L->out_h * L->out_w, os = co * P;
                    size_t Kc = L->param[0].size / co;   /* in_c k k */
                    size_t wo = (size_t)(L->param[0].data - net->params) - p->gslab[g];
                    size_t bo = (size_t)(L->param[1].data - net->params) - p->gslab[g];
#pragma omp parallel for schedule(static)
                    for (size_t i = 0; i < mc; i++) {
                        ns_real *row = b->G + ((c0 + i) * K + k) * p->gw + p->goff[g];
                        const ns_real *d = dy + i * os;
                        ns_gemm1(0, 1, co, Kc, P, 1, d, P, cols[g] + i * Kc * P, P, 0, row + wo,
                                 Kc);
                        for (size_t o = 0; o < co; o++) {
                            ns_real s = 0;
                            for (size_t q = 0; q < P; q++)
                                s += d[o * P + q];
                            row[bo + o] = s;
                        }
                    }
                    continue;
                }
                const ns_real *xin = L->src < 0 ? xc : net->act[L->src];
                size_t is = ns_layer_in_size(L), os = ns_layer_out_size(L);
                int pure = backward_is_pure(L);
                for (size_t i = 0; i < mc && !st; i++) {
                    const ns_real *y = net->act[p->gl[g]] + i * os;
                    if (!pure) {
                        /* refresh the layer's caches for this one sample */
                        if ((st = L->ops->forward(L, yone, xin + i * is, NULL, 1, &ctx)))
                            break;
                        y = yone;
                    }
                    sample_grad(p, g, b->G, (c0 + i) * K + k, dy + i * os, y, xin + i * is);
                }
            }
        }
    }
    for (size_t g = 0; cols && g < p->ng; g++)
        ns_free(cols[g]);
    free(cols);
    ns_free(dl);
    ns_free(yone);
    return st;
}

/* Batch-mode factors: rows of J for samples [b->s0, b->s0 + b->m), after
 * one forward over all p->n samples (done by the caller). */
static int gen_batch(const plan *p, block *b)
{
    ns_net *net = p->net;
    size_t K = p->K, n = p->n;
    ns_real *dl = ns_calloc(n * K, sizeof *dl);
    if (!dl)
        return ns_error(NS_ENOMEM, "out of memory for NTK cotangents");
    for (size_t i = 0; i < b->m; i++)
        for (size_t k = 0; k < K; k++) {
            size_t r = (b->s0 + i) * K + k;
            dl[r] = 1;
            for (size_t g = 0; g < p->ng; g++)
                memset(net->grads + p->gslab[g], 0, p->gsz[g] * sizeof(ns_real));
            ns_net_backward(net, dl);
            dl[r] = 0;
            ns_real *row = b->G + (i * K + k) * p->gw;
            for (size_t g = 0; g < p->ng; g++)
                memcpy(row + p->goff[g], net->grads + p->gslab[g], p->gsz[g] * sizeof(ns_real));
        }
    ns_free(dl);
    return NS_OK;
}

static int gen_block(const plan *p, const ns_real *x, block *b)
{
    return p->batch ? gen_batch(p, b) : gen_eval(p, x, b);
}

/* Per-layer shares of the trace from the factors of a block. */
static void layer_traces(const plan *p, const block *b, double *lt)
{
    size_t K = p->K;
    for (size_t d = 0; d < p->nd; d++) {
        size_t w = p->din[d] + 1, o = p->dout[d];
        double s = 0;
        for (size_t i = 0; i < b->m; i++) {
            double aa = 0, dd = 0;
            const ns_real *a = b->A[d] + i * w, *dv = b->D[d] + i * K * o;
            for (size_t j = 0; j < w; j++)
                aa += (double)a[j] * a[j];
            for (size_t j = 0; j < K * o; j++)
                dd += (double)dv[j] * dv[j];
            s += aa * dd;
        }
        lt[p->dl[d]] += s;
    }
    for (size_t g = 0; g < p->ng; g++) {
        double s = 0;
        for (size_t r = 0; r < b->m * K; r++) {
            const ns_real *v = b->G + r * p->gw + p->goff[g];
            for (size_t j = 0; j < p->gsz[g]; j++)
                s += (double)v[j] * v[j];
        }
        lt[p->gl[g]] += s;
    }
}

typedef struct tilebuf {
    double *t;
    ns_real *tmp, *ga;
} tilebuf;

/* C (R x R) = A A^T for A (R x w): only the row blocks on and above the
 * diagonal are multiplied (about half the work for a diagonal tile), the
 * rest mirrored. */
static void gram_sym(size_t R, size_t w, const ns_real *A, ns_real *C)
{
    const size_t bs = 512;
    for (size_t a = 0; a < R; a += bs) {
        size_t ra = R - a < bs ? R - a : bs;
        /* rows a.. against rows a.. (the diagonal block and right of it) */
        ns_gemm(0, 1, ra, R - a, w, 1, A + a * w, w, A + a * w, w, 0, C + a * R + a, R);
    }
    for (size_t r = 0; r < R; r++)
        for (size_t s = 0; s < r; s++)
            C[r * R + s] = C[s * R + r];
}

/* Multiply-adds x 2 of an R x S product of width w (gram_sym's share when
 * sym). */
static double gemm_flop(size_t R, size_t S, size_t w, int sym)
{
    if (!sym)
        return 2.0 * (double)R * (double)S * (double)w;
    double f = 0;
    for (size_t a = 0; a < R; a += 512)
        f += 2.0 * (double)(R - a < 512 ? R - a : 512) * (double)(R - a) * (double)w;
    return f;
}

/* Tile between blocks I and J into tb->t ((mI kr) x (mJ kr)); returns its
 * GFLOP. */
static double tile(const plan *p, const block *I, const block *J, tilebuf *tb)
{
    size_t kr = p->kr, wm = p->wm, R = I->m * kr, S = J->m * kr;
    double flop = 0;
    double *t = tb->t;
    memset(t, 0, R * S * sizeof *t);
    if (p->gw) {
        size_t w = p->gw * wm;
        if (I == J)
            gram_sym(R, w, I->G, tb->tmp);
        else
            ns_gemm(0, 1, R, S, w, 1, I->G, w, J->G, w, 0, tb->tmp, S);
#pragma omp parallel for schedule(static)
        for (size_t q = 0; q < R * S; q++)
            t[q] += tb->tmp[q];
        flop += gemm_flop(R, S, w, I == J);
    }
    for (size_t d = 0; d < p->nd; d++) {
        size_t wa = p->din[d] + 1, wd = p->dout[d] * wm;
        ns_gemm(0, 1, I->m, J->m, wa, 1, I->A[d], wa, J->A[d], wa, 0, tb->ga, J->m);
        if (I == J)
            gram_sym(R, wd, I->D[d], tb->tmp);
        else
            ns_gemm(0, 1, R, S, wd, 1, I->D[d], wd, J->D[d], wd, 0, tb->tmp, S);
#pragma omp parallel for schedule(static)
        for (size_t r = 0; r < R; r++) {
            const ns_real *ga = tb->ga + (r / kr) * J->m, *tm = tb->tmp + r * S;
            double *tr = t + r * S;
            for (size_t s = 0; s < S; s++)
                tr[s] += (double)ga[s / kr] * (double)tm[s];
        }
        flop += gemm_flop(I->m, J->m, wa, 0) + gemm_flop(R, S, wd, I == J);
    }
    return flop * 1e-9;
}

/* <tile, T> for the alignment target T = Y Y^T of the one-hot labels: the
 * entries (i*K + y_i, j*K + y_j) of a full tile, those with y_i = y_j of a
 * trace tile. */
static double target_dot(const plan *p, const int32_t *y, const double *t, size_t i0,
                         size_t mi, size_t j0, size_t mj)
{
    size_t K = p->K, S = mj * p->kr;
    double s = 0;
    for (size_t i = 0; i < mi; i++)
        for (size_t j = 0; j < mj; j++) {
            int32_t yi = y[i0 + i], yj = y[j0 + j];
            if (p->kr == 1)
                s += yi == yj ? t[i * S + j] : 0;
            else
                s += t[(i * K + (size_t)yi) * S + j * K + (size_t)yj];
        }
    return s;
}

void ns_ntk_stats_free(ns_ntk_stats *st)
{
    free(st->layer_trace);
    free(st->layer_method);
    st->layer_trace = NULL;
    st->layer_method = NULL;
}

int ns_ntk_compute(ns_net *net, const ns_real *x, const int32_t *y, size_t n,
                   const ns_ntk_opts *o, const ns_ntk_sink *sink, ns_ntk_stats *st)
{
    memset(st, 0, sizeof *st);
    if (n == 0)
        return ns_error(NS_EINVAL, "the NTK needs at least one sample");
    if (o->mode != NS_MODE_EVAL && o->mode != NS_MODE_BATCH)
        return ns_error(NS_EINVAL, "NTK mode must be eval or batch");
    if (o->mode == NS_MODE_BATCH && !ns_ntk_has_batch_stats(net))
        return ns_error(NS_EINVAL, "--mode batch needs a layer with batch statistics; this "
                        "network has none (use --mode eval)");
    if (o->mode == NS_MODE_BATCH && n > net->max_batch)
        return ns_error(NS_EINVAL, "batch mode takes all %zu samples in one pass; the network "
                        "was built for %zu", n, net->max_batch);
    double t0 = ns_time();
    plan p;
    int rc = plan_make(&p, net, o, n);
    if (rc)
        return rc;
    size_t mem = o->mem ? o->mem : (size_t)2 << 30;
    size_t kr = p.kr, sv = sample_values(&p) * sizeof(ns_real);
    /* Block size: two blocks of factors and a tile (double + two ns_real
     * scratch) within half the budget. */
    size_t bs = o->block;
    if (!bs) {
        bs = p.batch ? n : 4096;
        while (bs > 1 && block_bytes(sv, kr, bs) > mem / 2)
            bs /= 2;
        if (!p.batch && bs > net->max_batch * 8)
            bs = net->max_batch * 8;
    }
    if (bs > n)
        bs = n;
    size_t need = block_bytes(sv, kr, bs);
    if (need > mem) {
        plan_free(&p);
        return ns_error(NS_EINVAL, "--mem %zu MiB is too small for one block of the NTK "
                        "(%zu samples need %zu MiB)", mem >> 20, bs, (need >> 20) + 1);
    }
    size_t nb = (n + bs - 1) / bs;
    int keep = nb == 1 || n * sv <= mem / 2;   /* factors of every block fit */
    st->dim = n * kr;
    st->layer_trace = calloc(net->nlayers, sizeof *st->layer_trace);
    st->layer_method = calloc(net->nlayers, 1);
    block *blocks = calloc(keep ? nb : 2, sizeof *blocks);
    tilebuf tb = {
        .t = ns_malloc(bs * kr * bs * kr * sizeof(double)),
        .tmp = ns_malloc(bs * kr * bs * kr * sizeof(ns_real)),
        .ga = ns_malloc(bs * bs * sizeof(ns_real)),
    };
    if (!st->layer_trace || !st->layer_method || !blocks || !tb.t || !tb.tmp || !tb.ga) {
        rc = ns_error(NS_ENOMEM, "out of memory for NTK tiles of %zu samples", bs);
        goto done;
    }
    for (size_t d = 0; d < p.nd; d++)
        st->layer_method[p.dl[d]] = 's';
    for (size_t g = 0; g < p.ng; g++)
        st->layer_method[p.gl[g]] = 'j';
    if (p.batch) {
        ns_ctx ctx = {.mode = NS_MODE_BATCH};
        if ((rc = ns_net_forward(net, x, n, &ctx)))
            goto done;
    }
    size_t ntiles = nb * (nb + 1) / 2, done_tiles = 0;
    ns_progress pr;
    ns_progress_begin(&pr, o->label ? o->label : "ntk", ntiles);
    double num = 0;
    for (size_t bi = 0; bi < nb && !rc; bi++) {
        block *I = keep ? &blocks[bi] : &blocks[0];
        size_t s0 = bi * bs, m = n - s0 < bs ? n - s0 : bs;
        if (!I->m || !keep) {
            block_free(&p, I);
            if ((rc = block_alloc(&p, I, s0, m)) || (rc = gen_block(&p, x, I)))
                break;
        }
        layer_traces(&p, I, st->layer_trace);
        for (size_t bj = bi; bj < nb && !rc; bj++) {
            block *J = I;
            if (bj != bi) {
                J = keep ? &blocks[bj] : &blocks[1];
                size_t t0j = bj * bs, mj = n - t0j < bs ? n - t0j : bs;
                if (!J->m || !keep) {
                    block_free(&p, J);
                    if ((rc = block_alloc(&p, J, t0j, mj)) || (rc = gen_block(&p, x, J)))
                        break;
                }
            }
            st->gflop += tile(&p, I, J, &tb);
            size_t R = I->m * kr, S = J->m * kr, r0 = I->s0 * kr, c0 = J->s0 * kr;
            if (bi == bj)   /* exactly symmetric whatever the GEMM's summation order */
                for (size_t r = 0; r < R; r++)
                    for (size_t s = r + 1; s < S; s++) {
                        double v = 0.5 * (tb.t[r * S + s] + tb.t[s * S + r]);
                        tb.t[r * S + s] = tb.t[s * S + r] = v;
                    }
            double w = bi == bj ? 1 : 2, f2 = 0;
#pragma omp parallel for reduction(+ : f2) schedule(static)
            for (size_t q = 0; q < R * S; q++)
                f2 += tb.t[q] * tb.t[q];
            if (bi == bj)
                for (size_t r = 0; r < R; r++)
                    st->trace += tb.t[r * S + r];
            double tn = target_dot(&p, y, tb.t, I->s0, I->m, J->s0, J->m);
            st->frob2 += w * f2;
            num += w * tn;
            if ((rc = sink->put(sink->ctx, r0, c0, R, S, tb.t)))
                break;
            if (bi != bj) {
                /* the mirrored tile, transposed in strips of 64 rows */
                size_t h = S < 64 ? S : 64;
                double *tt = malloc(h * R * sizeof *tt);
                if (!tt) {
                    rc = ns_error(NS_ENOMEM, "out of memory for an NTK tile");
                    break;
                }
                for (size_t q0 = 0; q0 < S && !rc; q0 += h) {
                    size_t hh = S - q0 < h ? S - q0 : h;
                    for (size_t s = 0; s < hh; s++)
                        for (size_t r = 0; r < R; r++)
                            tt[s * R + r] = tb.t[r * S + q0 + s];
                    rc = sink->put(sink->ctx, c0 + q0, r0, hh, R, tt);
                }
                free(tt);
            }
            ns_progress_update(&pr, ++done_tiles, NULL);
        }
    }
    ns_progress_end(&pr, NULL);
    if (!rc) {
        /* ||T||_F: trace kernel sqrt(sum_c n_c^2); full kernel n (y y^T with
         * one 1 per sample). */
        double tf = (double)n;
        if (kr == 1) {
            double s2 = 0;
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < n; j++)
                    s2 += y[i] == y[j];
            tf = sqrt(s2);
        }
        st->align = st->frob2 > 0 ? num / (sqrt(st->frob2) * tf) : 0;
    }
done:
    if (blocks)
        for (size_t b = 0; b < (keep ? nb : 2); b++)
            block_free(&p, &blocks[b]);
    free(blocks);
    ns_free(tb.t);
    ns_free(tb.tmp);
    ns_free(tb.ga);
    plan_free(&p);
    st->seconds = ns_time() - t0;
    if (rc)
        ns_ntk_stats_free(st);
    return rc;
}

/* ---------------------------------------------------------------- sinks */

int ns_ntk_memsink_put(void *ctx, size_t r0, size_t c0, size_t nr, size_t nc, const double *tile)
{
    ns_ntk_memsink *m = ctx;
    for (size_t r = 0; r < nr; r++)
        memcpy(m->k + (r0 + r) * m->dim + c0, tile + r * nc, nc * sizeof *tile);
    return NS_OK;
}
