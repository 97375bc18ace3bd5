/*
 * Pooling: max pooling and average pooling (kernel K, stride S, no padding,
 * floor output size, as nn.MaxPool2d / nn.AvgPool2d defaults) and global
 * average pooling (nn.AdaptiveAvgPool2d(1) followed by a flatten).
 * Max pooling keeps the argmax of each output for backward (first maximum
 * on ties, like PyTorch).
 */
#include "normscope/nn.h"

#include <string.h>

typedef struct pool_impl {
    int is_max;
    size_t k, stride;
    int32_t *argmax;   /* max_batch * out_size */
} pool_impl;

static int pool_forward(ns_layer *L, ns_real *y, const ns_real *x,
                        const ns_real *x2, size_t n, const ns_ctx *ctx)
{
    (void)x2;
    (void)ctx;
    pool_impl *p = L->impl;
    size_t H = L->in_h, W = L->in_w, OH = L->out_h, OW = L->out_w;
    size_t planes = n * L->in_c;
    ns_real inv = (ns_real)1 / (ns_real)(p->k * p->k);
#pragma omp parallel for schedule(static)
    for (size_t pl = 0; pl < planes; pl++) {
        const ns_real *xp = x + pl * H * W;
        ns_real *yp = y + pl * OH * OW;
        int32_t *ap = p->argmax ? p->argmax + pl * OH * OW : NULL;
        for (size_t i = 0; i < OH; i++)
            for (size_t j = 0; j < OW; j++) {
                size_t i0 = i * p->stride, j0 = j * p->stride;
                if (p->is_max) {
                    size_t best = i0 * W + j0;
                    for (size_t u = 0; u < p->k; u++)
                        for (size_t v = 0; v < p->k; v++) {
                            size_t idx = (i0 + u) * W + j0 + v;
                            if (xp[idx] > xp[best])
                                best = idx;
                        }
                    yp[i * OW + j] = xp[best];
                    ap[i * OW + j] = (int32_t)best;
                } else {
                    ns_real s = 0;
                    for (size_t u = 0; u < p->k; u++)
                        for (size_t v = 0; v < p->k; v++)
                            s += xp[(i0 + u) * W + j0 + v];
                    yp[i * OW + j] = s * inv;
                }
            }
    }
    return NS_OK;
}

static void pool_backward(ns_layer *L, ns_real *dx, ns_real *dx2, int acc,
                          const ns_real *dy, const ns_real *y, const ns_real *x,
                          size_t n)
{
    acc &= 1; /* only bit 0 (dx) applies to a one-input layer */
    (void)dx2;
    (void)y;
    (void)x;
    if (!dx)
        return;
    pool_impl *p = L->impl;
    size_t H = L->in_h, W = L->in_w, OH = L->out_h, OW = L->out_w;
    size_t planes = n * L->in_c;
    ns_real inv = (ns_real)1 / (ns_real)(p->k * p->k);
#pragma omp parallel for schedule(static)
    for (size_t pl = 0; pl < planes; pl++) {
        ns_real *dxp = dx + pl * H * W;
        const ns_real *dyp = dy + pl * OH * OW;
        if (!acc)
            memset(dxp, 0, H * W * sizeof *dxp);
        for (size_t i = 0; i < OH; i++)
            for (size_t j = 0; j < OW; j++) {
                ns_real g = dyp[i * OW + j];
                if (p->is_max) {
                    dxp[p->argmax[pl * OH * OW + i * OW + j]] += g;
                } else {
                    size_t i0 = i * p->stride, j0 = j * p->stride;
                    for (size_t u = 0; u < p->k; u++)
                        for (size_t v = 0; v < p->k; v++)
                            dxp[(i0 + u) * W + j0 + v] += g * inv;
                }
            }
    }
}

static void pool_release(ns_layer *L)
{
    pool_impl *p = L->impl;
    if (!p)
        return;
    ns_free(p->argmax);
    ns_free(p);
    L->impl = NULL;
}

static const ns_layer_ops maxpool_ops = {
    .kind = "maxpool", .forward = pool_forward, .backward = pool_backward,
    .release = pool_release,
};
static const ns_layer_ops avgpool_ops = {
    .kind = "avgpool", .forward = pool_forward, .backward = pool_backward,
    .release = pool_release,
};

int ns_pool_create(ns_layer *L, int is_max, size_t k, size_t stride)
{
    if (k == 0 || stride == 0)
        return ns_error(NS_EINVAL, "pooling needs a positive kernel and stride");
    if (L->in_h < k || L->in_w < k)
        return ns_error(NS_EINVAL, "%zux%zu pooling does not fit a %zux%zu input",
                        k, k, L->in_h, L->in_w);
    pool_impl *p = ns_calloc(1, sizeof *p);
    if (!p)
        return NS_ENOMEM;
    L->impl = p;
    L->ops = is_max ? &maxpool_ops : &avgpool_ops;
    p->is_max = is_max;
    p->k = k;
    p->stride = stride;
    L->out_c = L->in_c;
    L->out_h = (L->in_h - k) / stride + 1;
    L->out_w = (L->in_w - k) / stride + 1;
    if (is_max) {
        size_t cnt = L->max_batch * ns_layer_out_size(L);
        p->argmax = ns_malloc(cnt * sizeof *p->argmax);
        if (!p->argmax)
            return NS_ENOMEM;
        L->cache_bytes = cnt * sizeof *p->argmax;
    }
    return NS_OK;
}

/* ---------------------------------------------------- global average pool */

static int gap_forward(ns_layer *L, ns_real *y, const ns_real *x,
                       const ns_real *x2, size_t n, const ns_ctx *ctx)
{
    (void)x2;
    (void)ctx;
    size_t P = L->in_h * L->in_w, planes = n * L->in_c;
    ns_real inv = (ns_real)1 / (ns_real)P;
#pragma omp parallel for schedule(static)
    for (size_t pl = 0; pl < planes; pl++) {
        ns_real s = 0;
        for (size_t j = 0; j < P; j++)
            s += x[pl * P + j];
        y[pl] = s * inv;
    }
    return NS_OK;
}

static void gap_backward(ns_layer *L, ns_real *dx, ns_real *dx2, int acc,
                         const ns_real *dy, const ns_real *y, const ns_real *x,
                         size_t n)
{
    acc &= 1; /* only bit 0 (dx) applies to a one-input layer */
    (void)dx2;
    (void)y;
    (void)x;
    if (!dx)
        return;
    size_t P = L->in_h * L->in_w, planes = n * L->in_c;
    ns_real inv = (ns_real)1 / (ns_real)P;
#pragma omp parallel for schedule(static)
    for (size_t pl = 0; pl < planes; pl++) {
        ns_real g = dy[pl] * inv;
        for (size_t j = 0; j < P; j++)
            dx[pl * P + j] = (acc ? dx[pl * P + j] : 0) + g;
    }
}

static const ns_layer_ops gap_ops = {
    .kind = "gap", .forward = gap_forward, .backward = gap_backward,
};

int ns_gap_create(ns_layer *L)
{
    L->ops = &gap_ops;
    L->out_c = L->in_c;
    L->out_h = L->out_w = 1;
    return NS_OK;
}
