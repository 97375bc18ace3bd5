/*
 * Pointwise activations and the flatten view:
 *   relu  max(0, x)            lrelu  x > 0 ? x : a x (nn.LeakyReLU)
 *   tanh  tanh(x)              erf    erf(x) (the mean-field papers' sigmoid)
 *   id    x                    flatten  x, reshaped to (c*h*w, 1, 1)
 * Backward reads the layer's output where that suffices (relu, tanh), the
 * input otherwise, so no activation keeps extra memory.
 */
#include "normscope/nn.h"

#include <math.h>
#include <string.h>

typedef struct act_impl {
    ns_act_fn kind;
    double alpha;
} act_impl;

static int act_forward(ns_layer *L, ns_real *y, const ns_real *x,
                       const ns_real *x2, size_t n, const ns_ctx *ctx)
{
    (void)x2;
    (void)ctx;
    const act_impl *a = L->impl;
    size_t len = n * ns_layer_in_size(L);
    ns_real al = (ns_real)a->alpha;
    switch (a->kind) {
    case NS_ACT_RELU:
#pragma omp parallel for schedule(static) if (len > 65536)
        for (size_t i = 0; i < len; i++)
            y[i] = x[i] > 0 ? x[i] : 0;
        break;
    case NS_ACT_LRELU:
#pragma omp parallel for schedule(static) if (len > 65536)
        for (size_t i = 0; i < len; i++)
            y[i] = x[i] > 0 ? x[i] : al * x[i];
        break;
    case NS_ACT_TANH:
        for (size_t i = 0; i < len; i++)
            y[i] = (ns_real)tanh((double)x[i]);
        break;
    case NS_ACT_ERF:
        for (size_t i = 0; i < len; i++)
            y[i] = (ns_real)erf((double)x[i]);
        break;
    case NS_ACT_ID:
    case NS_ACT_NONE:
        memcpy(y, x, len * sizeof *y);
        break;
    }
    return NS_OK;
}

static void act_backward(ns_layer *L, ns_real *dx, ns_real *dx2, int acc,
                         const ns_real *dy, const ns_real *y, const ns_real *x,
                         size_t n)
{
    acc &= 1; /* only bit 0 (dx) applies to a one-input layer */
    (void)dx2;
    if (!dx)
        return;
    const act_impl *a = L->impl;
    size_t len = n * ns_layer_in_size(L);
    ns_real al = (ns_real)a->alpha;
    /* Without acc, dx is not read: 0 * dx would let a stale NaN through. */
    const ns_real c_erf = (ns_real)1.1283791670955126 /* 2/sqrt(pi) */;
    switch (a->kind) {
    case NS_ACT_RELU:
#pragma omp parallel for schedule(static) if (len > 65536)
        for (size_t i = 0; i < len; i++)
            dx[i] = (acc ? dx[i] : 0) + (y[i] > 0 ? dy[i] : 0);
        break;
    case NS_ACT_LRELU:
        for (size_t i = 0; i < len; i++)
            dx[i] = (acc ? dx[i] : 0) + (x[i] > 0 ? dy[i] : al * dy[i]);
        break;
    case NS_ACT_TANH:
        for (size_t i = 0; i < len; i++)
            dx[i] = (acc ? dx[i] : 0) + dy[i] * (1 - y[i] * y[i]);
        break;
    case NS_ACT_ERF:
        for (size_t i = 0; i < len; i++)
            dx[i] = (acc ? dx[i] : 0) + dy[i] * c_erf * (ns_real)exp(-(double)x[i] * x[i]);
        break;
    case NS_ACT_ID:
    case NS_ACT_NONE:
        for (size_t i = 0; i < len; i++)
            dx[i] = (acc ? dx[i] : 0) + dy[i];
        break;
    }
}

static void act_release(ns_layer *L)
{
    ns_free(L->impl);
    L->impl = NULL;
}

#define ACT_OPS(name, fn)                                                                  \
    {.kind = name, .forward = act_forward, .backward = act_backward, .release = act_release,   \
     .role = NS_ROLE_ACT, .act = fn}
static const ns_layer_ops relu_ops = ACT_OPS("relu", NS_ACT_RELU);
static const ns_layer_ops lrelu_ops = ACT_OPS("lrelu", NS_ACT_LRELU);
static const ns_layer_ops tanh_ops = ACT_OPS("tanh", NS_ACT_TANH);
static const ns_layer_ops erf_ops = ACT_OPS("erf", NS_ACT_ERF);
static const ns_layer_ops id_ops = ACT_OPS("id", NS_ACT_ID);
#undef ACT_OPS
/* A view, not an activation: no role. */
static const ns_layer_ops flatten_ops = {
    .kind = "flatten", .forward = act_forward, .backward = act_backward, .release = act_release,
};

int ns_act_create(ns_layer *L, ns_act_fn fn, double alpha)
{
    static const ns_layer_ops *const table[] = {
        [NS_ACT_RELU] = &relu_ops, [NS_ACT_LRELU] = &lrelu_ops, [NS_ACT_TANH] = &tanh_ops,
        [NS_ACT_ERF] = &erf_ops, [NS_ACT_ID] = &id_ops,
    };
    if ((size_t)fn >= sizeof table / sizeof *table || !table[fn])
        return ns_error(NS_EINVAL, "unknown activation %d", (int)fn);
    act_impl *a = ns_calloc(1, sizeof *a);
    if (!a)
        return NS_ENOMEM;
    a->kind = fn;
    a->alpha = alpha;
    L->impl = a;
    L->ops = table[fn];
    L->out_c = L->in_c;
    L->out_h = L->in_h;
    L->out_w = L->in_w;
    return NS_OK;
}

int ns_flatten_create(ns_layer *L)
{
    act_impl *a = ns_calloc(1, sizeof *a);
    if (!a)
        return NS_ENOMEM;
    a->kind = NS_ACT_ID;
    L->impl = a;
    L->ops = &flatten_ops;
    L->out_c = ns_layer_in_size(L);
    L->out_h = L->out_w = 1;
    return NS_OK;
}
