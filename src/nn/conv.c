/*
 * 2-D convolution, PyTorch's nn.Conv2d (groups = 1, dilation = 1):
 *   y[n, o, i, j] = b[o] + sum_{c, u, v} W[o, c, u, v] x[n, c, i*s - p + u, j*s - p + v]
 * computed per sample as one GEMM on the im2col matrix (C*K*K, OH*OW).
 * Samples are split over threads, each with its own column buffer and
 * weight-gradient accumulator (summed in thread order: deterministic for a
 * thread count).  The columns are rebuilt in backward rather than kept, so
 * the layer keeps no activation memory beyond its input.
 */
#include "normscope/nn.h"

#include <omp.h>
#include <string.h>

typedef struct conv_impl {
    size_t k, stride, pad;
    int direct;      /* 1x1, stride 1, no padding: the input is the column matrix */
    int nthr;
    ns_real *col;    /* nthr * K * P */
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

static void im2col(const ns_real *x, ns_real *col, size_t c, size_t h, size_t w,
                   size_t oh, size_t ow, size_t k, size_t s, size_t p)
{
    for (size_t ci = 0; ci < c; ci++)
        for (size_t u = 0; u < k; u++)
            for (size_t v = 0; v < k; v++) {
                ns_real *row = col + ((ci * k + u) * k + v) * oh * ow;
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
static void col2im(const ns_real *col, ns_real *x, int acc, size_t c, size_t h,
                   size_t w, size_t oh, size_t ow, size_t k, size_t s, size_t p)
{
    if (!acc)
        memset(x, 0, c * h * w * sizeof *x);
    for (size_t ci = 0; ci < c; ci++)
        for (size_t u = 0; u < k; u++)
            for (size_t v = 0; v < k; v++) {
                const ns_real *row = col + ((ci * k + u) * k + v) * oh * ow;
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
    const ns_real *W = L->param[0].data, *b = L->param[1].data;
#pragma omp parallel num_threads(c->nthr)
    {
        ns_real *col = c->col + (size_t)omp_get_thread_num() * K * P;
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i++) {
            const ns_real *xi = x + i * in;
            ns_real *yi = y + i * out;
            if (!c->direct) {
                im2col(xi, col, L->in_c, L->in_h, L->in_w, L->out_h, L->out_w,
                       c->k, c->stride, c->pad);
                xi = col;
            }
            for (size_t o = 0; o < co; o++)
                for (size_t j = 0; j < P; j++)
                    yi[o * P + j] = b[o];
            ns_gemm1(0, 0, co, P, K, 1, W, K, xi, P, 1, yi, P);
        }
    }
    return NS_OK;
}

static void conv_backward(ns_layer *L, ns_real *dx, ns_real *dx2, int acc,
                          const ns_real *dy, const ns_real *y, const ns_real *x,
                          size_t n)
{
    acc &= 1; /* only bit 0 (dx) applies to a one-input layer */
    (void)dx2;
    (void)y;
    conv_impl *c = L->impl;
    size_t K = L->in_c * c->k * c->k, P = L->out_h * L->out_w;
    size_t in = ns_layer_in_size(L), out = ns_layer_out_size(L), co = L->out_c;
    const ns_real *W = L->param[0].data;
    ns_real *dW = L->param[0].grad, *db = L->param[1].grad;
    int nthr = c->nthr;
    memset(c->dw, 0, (size_t)nthr * co * K * sizeof *c->dw);
#pragma omp parallel num_threads(nthr)
    {
        int t = omp_get_thread_num();
        ns_real *col = c->col + (size_t)t * K * P;
        ns_real *dwt = c->dw + (size_t)t * co * K;
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i++) {
            const ns_real *xi = x + i * in;
            const ns_real *dyi = dy + i * out;
            if (!c->direct) {
                im2col(xi, col, L->in_c, L->in_h, L->in_w, L->out_h, L->out_w,
                       c->k, c->stride, c->pad);
                xi = col;
            }
            /* dW (co, K) += dy_i (co, P) col^T (P, K) */
            ns_gemm1(0, 1, co, K, P, 1, dyi, P, xi, P, 1, dwt, K);
            if (!dx)
                continue;
            ns_real *dxi = dx + i * in;
            if (c->direct) {
                ns_gemm1(1, 0, K, P, co, 1, W, K, dyi, P, acc ? 1 : 0, dxi, P);
            } else {
                /* dcol (K, P) = W^T (K, co) dy_i (co, P), then scatter */
                ns_gemm1(1, 0, K, P, co, 1, W, K, dyi, P, 0, col, P);
                col2im(col, dxi, acc, L->in_c, L->in_h, L->in_w, L->out_h,
                       L->out_w, c->k, c->stride, c->pad);
            }
        }
    }
    for (int t = 0; t < nthr; t++) {
        const ns_real *dwt = c->dw + (size_t)t * co * K;
#pragma omp simd
        for (size_t j = 0; j < co * K; j++)
            dW[j] += dwt[j];
    }
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
};

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
    c->direct = k == 1 && stride == 1 && pad == 0;
    c->nthr = ns_get_threads();
    size_t K = L->in_c * k * k, P = L->out_h * L->out_w;
    c->col = ns_malloc((size_t)c->nthr * K * P * sizeof *c->col);
    c->dw = ns_malloc((size_t)c->nthr * cout * K * sizeof *c->dw);
    if (!c->col || !c->dw)
        return NS_ENOMEM; /* release frees what was allocated */
    size_t wd[4] = {cout, L->in_c, k, k}, bd[1] = {cout};
    int st = ns_layer_add_param(L, "weight", 4, wd);
    if (!st)
        st = ns_layer_add_param(L, "bias", 1, bd);
    return st;
}
