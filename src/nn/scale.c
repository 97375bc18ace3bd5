/*
 * A learnable scalar: y = a x.  MimicNorm ends each residual branch with
 * one (initialised to 1.2^2/l in the authors' code for basic blocks, l the
 * 1-based block index; 1/sqrt(l) in the paper's text).
 */
#include "normscope/nn.h"

typedef struct scale_impl {
    double init;
} scale_impl;

static int scale_forward(ns_layer *L, ns_real *y, const ns_real *x,
                         const ns_real *x2, size_t n, const ns_ctx *ctx)
{
    (void)x2;
    (void)ctx;
    size_t len = n * ns_layer_in_size(L);
    ns_real a = L->param[0].data[0];
#pragma omp parallel for schedule(static) if (len > 65536)
    for (size_t i = 0; i < len; i++)
        y[i] = a * x[i];
    return NS_OK;
}

static void scale_backward(ns_layer *L, ns_real *dx, ns_real *dx2, int acc,
                           const ns_real *dy, const ns_real *y, const ns_real *x,
                           size_t n)
{
    (void)dx2;
    (void)y;
    acc &= 1;
    size_t len = n * ns_layer_in_size(L);
    ns_real a = L->param[0].data[0];
    double g = 0;
#pragma omp simd reduction(+ : g)
    for (size_t i = 0; i < len; i++)
        g += (double)dy[i] * x[i];
    L->param[0].grad[0] += (ns_real)g;
    if (dx)
        for (size_t i = 0; i < len; i++)
            dx[i] = (acc ? dx[i] : 0) + a * dy[i];
}

static void scale_init(ns_layer *L, const ns_init *init, ns_rng *r)
{
    (void)init;
    (void)r;
    L->param[0].data[0] = (ns_real)((scale_impl *)L->impl)->init;
}

static void scale_release(ns_layer *L)
{
    ns_free(L->impl);
    L->impl = NULL;
}

static const ns_layer_ops scale_ops = {
    .kind = "scale", .forward = scale_forward, .backward = scale_backward,
    .init = scale_init, .release = scale_release, .flags = NS_LAYER_PURE_BACKWARD,
};

int ns_scale_create(ns_layer *L, double init_value)
{
    scale_impl *s = ns_calloc(1, sizeof *s);
    if (!s)
        return NS_ENOMEM;
    s->init = init_value;
    L->impl = s;
    L->ops = &scale_ops;
    L->out_c = L->in_c;
    L->out_h = L->in_h;
    L->out_w = L->in_w;
    size_t one[1] = {1};
    return ns_layer_add_param(L, "weight", 1, one);
}
