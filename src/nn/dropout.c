/*
 * Inverted dropout (nn.Dropout): in training each value is zeroed with
 * probability p and the survivors are scaled by 1/(1-p); identity otherwise.
 * The mask stream depends on (seed, step, layer position), so a resumed run
 * draws the same masks as an uninterrupted one.
 */
#include "normscope/nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { MASK_CHUNK = 1 << 14 };

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
    /* Chunks of MASK_CHUNK elements draw from their own streams, two 32-bit
     * uniforms per 64-bit draw, so the mask does not depend on the thread
     * count.  A unit is kept when its uniform is >= p (to 2^-32). */
    ns_real scale = (ns_real)(1.0 / (1.0 - d->p));
    double t = ldexp(d->p, 32);
    uint64_t thr = t >= 4294967296.0 ? 4294967296u : (uint64_t)t;
    uint64_t base = ((uint64_t)ctx->step * 4096 + d->index) << 20;
    size_t nch = (len + MASK_CHUNK - 1) / MASK_CHUNK;
#pragma omp parallel for schedule(static) if (len > 4 * MASK_CHUNK)
    for (size_t k = 0; k < nch; k++) {
        ns_rng r;
        ns_rng_seed(&r, ctx->seed ^ 0xd509u, base + k);
        size_t lo = k * MASK_CHUNK, hi = lo + MASK_CHUNK < len ? lo + MASK_CHUNK : len;
        for (size_t i = lo; i < hi; i += 2) {
            uint64_t u = ns_rng_u64(&r);
            d->mask[i] = (u & 0xffffffffu) >= thr;
            if (i + 1 < hi)
                d->mask[i + 1] = (u >> 32) >= thr;
        }
#pragma omp simd
        for (size_t i = lo; i < hi; i++)
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
    int active = d->active;
    const uint8_t *mask = d->mask;
#pragma omp parallel for simd schedule(static) if (len > 4 * MASK_CHUNK)
    for (size_t i = 0; i < len; i++) {
        ns_real g = (!active || mask[i]) ? dy[i] * scale : 0;
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
    .kind = "dropout", .forward = dropout_forward, .backward = dropout_backward,
    .release = dropout_release,
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
