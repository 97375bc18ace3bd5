/*
 * 2-D convolution, PyTorch's nn.Conv2d (groups = 1, dilation = 1):
 *   y[n, o, i, j] = b[o] + sum_{c, u, v} W[o, c, u, v] x[n, c, i*s - p + u, j*s - p + v]
 computed as GEMMs on im2col matrices.  Samples are taken in blocks of
 * `blk` (so each GEMM has some 1000 columns whatever the map size: per-sample
 * GEMMs of a 7x7 map run at half speed), blocks are split over threads, and
 * each thread has its own column buffer and weight-gradient accumulator
 * (summed in thread order: deterministic for a thread count).  The columns
 * are rebuilt in backward rather than kept, so the layer keeps no activation
 * memory beyond its input.
 */
#include "normscope/nn.h"

#include <omp.h>
#include <string.h>

typedef struct conv_impl {
    size_t k, stride, pad;
    size_t blk;      /* samples per GEMM */
    int nthr;
    ns_real *col;    /* nthr * K * blk*P: columns of a block, row stride blk*P */
    ns_real *yb;     /* nthr * cout * blk*P: outputs/gradients of a block */
    ns_real *dw;     /* nthr * cout * K */
} conv_impl;

/* Output columns j whose input column j*s - p + v lies in [0, w). */
static void valid_range(size_t v, size_t s, size_t p, size_t w, size_t ow, size_t *j0,
                        size_t *j1)
{
    /* j*s + v >= p  and  j*s + v - p < w */
    size_t lo = v >= p ? 0 : (p - v + s - 1) / s;
    size_t hi = w + p > v ? (w + p - v + s - 1) / s : 0;
    *j0 = lo < ow ? lo : ow;
    *j1 = hi < ow ? hi : ow;
    if (*j1 < *j0)
        *j1 = *j0;
}

/* Columns of one sample into col (row stride ld, so the samples of a block
 * sit side by side). */
static void im2col(const ns_real *x, ns_real *col, size_t ld, size_t c, size_t h,
                   size_t w, size_t oh, size_t ow, size_t k, size_t s, size_t p)
{
    for (size_t ci = 0; ci < c; ci++)
        for (size_t u = 0; u < k; u++)
            for (size_t v = 0; v < k; v++) {
                ns_real *row = col + ((ci * k + u) * k + v) * ld;
                const ns_real *xc = x + ci * h * w;
                size_t j0, j1;
                valid_range(v, s, p, w, ow, &j0, &j1);
                for (size_t i = 0; i < oh; i++) {
                    ptrdiff_t ih = (ptrdiff_t)(i * s + u) - (ptrdiff_t)p;
                    ns_real *r = row + i * ow;
                    if (ih < 0 || ih >= (ptrdiff_t)h) {
                        memset(r, 0, ow * sizeof *r);
                        continue;
                    }
                    /* input column of output j: j*s + v - p, valid for j0 <= j < j1 */
                    const ns_real *xr = xc + (size_t)ih * w;
                    ptrdiff_t off = (ptrdiff_t)v - (ptrdiff_t)p;
                    for (size_t j = 0; j < j0; j++)
                        r[j] = 0;
                    if (s == 1) {
                        if (j1 > j0)
                            memcpy(r + j0, xr + (ptrdiff_t)j0 + off, (j1 - j0) * sizeof *r);
                    } else {
                        for (size_t j = j0; j < j1; j++)
                            r[j] = xr[(ptrdiff_t)(j * s) + off];
                    }
                    for (size_t j = j1; j < ow; j++)
                        r[j] = 0;
                }
            }
}

/* dx (+)= col2im(dcol) */
static void col2im(const ns_real *col, size_t ld, ns_real *x, int acc, size_t c,
                   size_t h, size_t w, size_t oh, size_t ow, size_t k, size_t s, size_t p)
{
    if (!acc)
        memset(x, 0, c * h * w * sizeof *x);
    for (size_t ci = 0; ci < c; ci++)
        for (size_t u = 0; u < k; u++)
            for (size_t v = 0; v < k; v++) {
                const ns_real *row = col + ((ci * k + u) * k + v) * ld;
                ns_real *xc = x + ci * h * w;
                size_t j0, j1;
                valid_range(v, s, p, w, ow, &j0, &j1);
                for (size_t i = 0; i < oh; i++) {
                    ptrdiff_t ih = (ptrdiff_t)(i * s + u) - (ptrdiff_t)p;
                    if (ih < 0 || ih >= (ptrdiff_t)h)
                        continue;
                    ns_real *xr = xc + (size_t)ih * w;
                    ptrdiff_t off = (ptrdiff_t)v - (ptrdiff_t)p;
                    const ns_real *r = row + i * ow;
                    if (s == 1) {
#pragma omp simd
                        for (size_t j = j0; j < j1; j++)
                            xr[(ptrdiff_t)j + off] += r[j];
                    } else {
                        for (size_t j = j0; j < j1; j++)
                            xr[(ptrdiff_t)(j * s) + off] += r[j];
                    }
                }
            }
}

static int conv_forward(ns_layer *L, ns_real *y, const ns_real *x,
                        const ns_real *x2, size_t n, const ns_ctx *ctx)
{
    (void)x2;
    (void)ctx;
    conv_impl *c = L->impl;
    size_t K = L->in_c * c->k * c->k, P = L->out_h * L->out_w;
    size_t in = ns_layer_in_size(L), out = ns_layer_out_size(L), co = L->out_c;
    size_t blk = c->blk, nb = (n + blk - 1) / blk;
    const ns_real *W = ns_layer_weight_forward(L), *b = L->param[1].data;
#pragma omp parallel num_threads(nb < (size_t)c->nthr ? (int)nb : c->nthr)
    {
        int t = omp_get_thread_num();
        ns_real *col = c->col + (size_t)t * K * blk * P;
        ns_real *yb = c->yb + (size_t)t * co * blk * P;
#pragma omp for schedule(static)
        for (size_t bi = 0; bi < nb; bi++) {
            size_t i0 = bi * blk, m = n - i0 < blk ? n - i0 : blk, ld = m * P;
            for (size_t s = 0; s < m; s++)
                im2col(x + (i0 + s) * in, col + s * P, ld, L->in_c, L->in_h, L->in_w,
                       L->out_h, L->out_w, c->k, c->stride, c->pad);
            /* yb (co, m*P) = W (co, K) col (K, m*P) */
            ns_gemm1(0, 0, co, ld, K, 1, W, K, col, ld, 0, yb, ld);
            for (size_t s = 0; s < m; s++)
                for (size_t o = 0; o < co; o++) {
                    const ns_real *src = yb + o * ld + s * P;
                    ns_real *dst = y + (i0 + s) * out + o * P, bo = b[o];
#pragma omp simd
                    for (size_t j = 0; j < P; j++)
                        dst[j] = src[j] + bo;
                }
        }
    }
    return NS_OK;
}

static void conv_backward(ns_layer *L, ns_real *dx, ns_real *dx2, int acc,
                          const ns_real *dy, const ns_real *y, const ns_real *x,
                          size_t n)
{
    (void)dx2;
    (void)y;
    int pg = !(acc & NS_BACKWARD_NO_PARAM_GRAD);
    acc &= 1; /* only bit 0 (dx) applies to a one-input layer */
    conv_impl *c = L->impl;
    size_t K = L->in_c * c->k * c->k, P = L->out_h * L->out_w;
    size_t in = ns_layer_in_size(L), out = ns_layer_out_size(L), co = L->out_c;
    size_t blk = c->blk, nb = (n + blk - 1) / blk;
    /* With a weight rule the forward multiplied with W'. */
    const ns_real *W = ns_layer_weight_used(L);
    if (!pg && !dx)
        return;
    ns_real *dW = pg ? ns_layer_weight_grad_begin(L) : NULL, *db = L->param[1].grad;
    int nthr = c->nthr;
    if (pg)
        memset(c->dw, 0, (size_t)nthr * co * K * sizeof *c->dw);
#pragma omp parallel num_threads(nb < (size_t)nthr ? (int)nb : nthr)
    {
        int t = omp_get_thread_num();
        ns_real *col = c->col + (size_t)t * K * blk * P;
        ns_real *yb = c->yb + (size_t)t * co * blk * P;
        ns_real *dwt = c->dw + (size_t)t * co * K;
#pragma omp for schedule(static)
        for (size_t bi = 0; bi < nb; bi++) {
            size_t i0 = bi * blk, m = n - i0 < blk ? n - i0 : blk, ld = m * P;
            for (size_t s = 0; s < m; s++) {
                for (size_t o = 0; o < co; o++)
                    memcpy(yb + o * ld + s * P, dy + (i0 + s) * out + o * P,
                           P * sizeof *yb);
                if (pg)
                    im2col(x + (i0 + s) * in, col + s * P, ld, L->in_c, L->in_h, L->in_w,
                           L->out_h, L->out_w, c->k, c->stride, c->pad);
            }
            /* dW (co, K) += dy (co, m*P) col^T (m*P, K) */
            if (pg)
                ns_gemm1(0, 1, co, K, ld, 1, yb, ld, col, ld, 1, dwt, K);
            if (!dx)
                continue;
            /* dcol (K, m*P) = W^T (K, co) dy (co, m*P), then scatter per sample */
            ns_gemm1(1, 0, K, ld, co, 1, W, K, yb, ld, 0, col, ld);
            for (size_t s = 0; s < m; s++)
                col2im(col + s * P, ld, dx + (i0 + s) * in, acc, L->in_c, L->in_h,
                       L->in_w, L->out_h, L->out_w, c->k, c->stride, c->pad);
        }
    }
    if (!pg)
        return;
    for (int t = 0; t < nthr; t++) {
        const ns_real *dwt = c->dw + (size_t)t * co * K;
#pragma omp simd
        for (size_t j = 0; j < co * K; j++)
            dW[j] += dwt[j];
    }
    ns_layer_weight_grad_end(L);
    for (size_t i = 0; i < n; i++)
        for (size_t o = 0; o < co; o++) {
            const ns_real *d = dy + i * out + o * P;
            ns_real s = 0;
#pragma omp simd reduction(+ : s)
            for (size_t j = 0; j < P; j++)
                s += d[j];
            db[o] += s;
        }
}

static void conv_init(ns_layer *L, const ns_init *init, ns_rng *r)
{
    conv_impl *c = L->impl;
    size_t kk = c->k * c->k;
    ns_init_fill(L->param[0].data, L->param[0].size, L->param[1].data, L->out_c,
                 (double)(L->in_c * kk), (double)(L->out_c * kk), init, r);
}

static void conv_release(ns_layer *L)
{
    conv_impl *c = L->impl;
    if (!c)
        return;
    ns_free(c->col);
    ns_free(c->yb);
    ns_free(c->dw);
    ns_free(c);
    L->impl = NULL;
}

static const ns_layer_ops conv_ops = {
    .kind = "conv",
    .forward = conv_forward,
    .backward = conv_backward,
    .init = conv_init,
    .release = conv_release,
    .role = NS_ROLE_CONV,
    .flags = NS_LAYER_PURE_BACKWARD,
};

void ns_conv_im2col(const ns_layer *L, const ns_real *x, ns_real *col)
{
    const conv_impl *c = L->impl;
    im2col(x, col, L->out_h * L->out_w, L->in_c, L->in_h, L->in_w, L->out_h, L->out_w, c->k,
           c->stride, c->pad);
}

int ns_conv_create(ns_layer *L, size_t cout, size_t k, size_t stride, size_t pad)
{
    if (cout == 0 || k == 0 || stride == 0)
        return ns_error(NS_EINVAL, "convolution needs positive channels, kernel and stride");
    if (L->in_h + 2 * pad < k || L->in_w + 2 * pad < k)
        return ns_error(NS_EINVAL, "%zux%zu convolution does not fit a %zux%zu input",
                        k, k, L->in_h, L->in_w);
    conv_impl *c = ns_calloc(1, sizeof *c);
    if (!c)
        return NS_ENOMEM;
    L->ops = &conv_ops;
    L->impl = c;
    c->k = k;
    c->stride = stride;
    c->pad = pad;
    L->out_c = cout;
    L->out_h = (L->in_h + 2 * pad - k) / stride + 1;
    L->out_w = (L->in_w + 2 * pad - k) / stride + 1;
    c->nthr = ns_get_threads();
    size_t K = ns_size_bounded(ns_size_bounded(L->in_c, k), k);
    size_t P = ns_size_bounded(L->out_h, L->out_w);
    if (!P || !ns_size_bounded(cout, P))
        return ns_error(NS_EINVAL, "output of %zu x %zu x %zu values per sample is too large",
                        cout, L->out_h, L->out_w);
    /* About 1024 GEMM columns per block, at least one sample, and not more
     * samples than a thread gets from a full batch (so blk * P is at most
     * max(P, 1024)). */
    size_t per_thread = (L->max_batch + (size_t)c->nthr - 1) / (size_t)c->nthr;
    c->blk = 1024 / P;
    if (c->blk > per_thread)
        c->blk = per_thread;
    if (c->blk < 1)
        c->blk = 1;
    size_t nt = (size_t)c->nthr, ncol = ns_size_bounded(ns_size_bounded(nt, K), c->blk * P);
    size_t nyb = ns_size_bounded(ns_size_bounded(nt, cout), c->blk * P);
    size_t ndw = ns_size_bounded(ns_size_bounded(nt, cout), K);
    if (!ncol || !nyb || !ndw)
        return ns_error(NS_EINVAL, "%zux%zu convolution of %zu to %zu channels on %zux%zu "
                        "maps is too large", k, k, L->in_c, cout, L->out_h, L->out_w);
    c->col = ns_malloc(ncol * sizeof *c->col);
    c->yb = ns_malloc(nyb * sizeof *c->yb);
    c->dw = ns_malloc(ndw * sizeof *c->dw);
    if (!c->col || !c->yb || !c->dw)
        return NS_ENOMEM; /* release frees what was allocated */
    size_t wd[4] = {cout, L->in_c, k, k}, bd[1] = {cout};
    int st = ns_layer_add_param(L, "weight", 4, wd);
    if (!st)
        st = ns_layer_add_param(L, "bias", 1, bd);
    return st;
}
