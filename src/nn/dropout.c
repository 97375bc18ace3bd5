/*
 * Inverted dropout (nn.Dropout): in training each value is zeroed with
 * probability p and the survivors are scaled by 1/(1-p); identity otherwise.
 * The mask stream depends on (seed, step, layer position), so a resumed run
 * draws the same masks as an uninterrupted one.
 */
#include "normscope/nn.h"

#include <stdlib.h>
#include <string.h>

typedef struct dropout_impl {
    double p;
    uint8_t *mask;      /* max_batch * size */
    int active;         /* the last forward applied a mask */
    size_t index;       /* layer position, for the random stream */
} dropout_impl;

static int dropout_forward(ns_layer *L, ns_real *y, const ns_real *x,
                           const ns_real *x2, size_t n, const ns_ctx *ctx)
{
    (void)x2;
    dropout_impl *d = L->impl;
    size_t len = n * ns_layer_in_size(L);
    d->active = ctx->mode == NS_MODE_TRAIN && d->p > 0;
    if (!d->active) {
        memcpy(y, x, len * sizeof *y);
        return NS_OK;
    }
    ns_rng r;
    ns_rng_seed(&r, ctx->seed ^ 0xd509u, ctx->step * 4096 + d->index);
    ns_real scale = (ns_real)(1.0 / (1.0 - d->p));
    for (size_t i = 0; i < len; i++) {
        d->mask[i] = ns_rng_uniform(&r) >= d->p;
        y[i] = d->mask[i] ? x[i] * scale : 0;
    }
    return NS_OK;
}

static void dropout_backward(ns_layer *L, ns_real *dx, ns_real *dx2, int acc,
                             const ns_real *dy, const ns_real *y, const ns_real *x,
                             size_t n)
{
    acc &= 1; /* only bit 0 (dx) applies to a one-input layer */
    (void)dx2;
    (void)y;
    (void)x;
    if (!dx)
        return;
    dropout_impl *d = L->impl;
    size_t len = n * ns_layer_in_size(L);
    ns_real scale = d->active ? (ns_real)(1.0 / (1.0 - d->p)) : 1;
    for (size_t i = 0; i < len; i++) {
        ns_real g = (!d->active || d->mask[i]) ? dy[i] * scale : 0;
        dx[i] = (acc ? dx[i] : 0) + g;
    }
}

static void dropout_release(ns_layer *L)
{
    dropout_impl *d = L->impl;
    if (!d)
        return;
    ns_free(d->mask);
    ns_free(d);
    L->impl = NULL;
}

static const ns_layer_ops dropout_ops = {
    "dropout", dropout_forward, dropout_backward, NULL, dropout_release, NULL,
};

int ns_dropout_create(ns_layer *L, double p)
{
    if (!(p >= 0 && p < 1))
        return ns_error(NS_EINVAL, "dropout probability %g is not in [0, 1)", p);
    dropout_impl *d = ns_calloc(1, sizeof *d);
    if (!d)
        return NS_ENOMEM;
    L->impl = d;
    L->ops = &dropout_ops;
    d->p = p;
    d->index = (size_t)atoi(L->name);
    L->out_c = L->in_c;
    L->out_h = L->in_h;
    L->out_w = L->in_w;
    size_t cnt = L->max_batch * ns_layer_in_size(L);
    d->mask = ns_malloc(cnt);
    if (!d->mask)
        return NS_ENOMEM;
    L->cache_bytes = cnt;
    return NS_OK;
}
