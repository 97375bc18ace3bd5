/*
 * Residual add: y = x + x2, the join of a residual block (x from the
 * branch, x2 from the shortcut).  Shapes must match exactly.
 */
#include "normscope/nn.h"

static int add_forward(ns_layer *L, ns_real *y, const ns_real *x,
                       const ns_real *x2, size_t n, const ns_ctx *ctx)
{
    (void)ctx;
    size_t len = n * ns_layer_in_size(L);
#pragma omp parallel for schedule(static) if (len > 65536)
    for (size_t i = 0; i < len; i++)
        y[i] = x[i] + x2[i];
    return NS_OK;
}

static void add_backward(ns_layer *L, ns_real *dx, ns_real *dx2, int acc,
                         const ns_real *dy, const ns_real *y, const ns_real *x,
                         size_t n)
{
    (void)y;
    (void)x;
    size_t len = n * ns_layer_in_size(L);
    /* Bit 0 of acc: add into dx; bit 1: add into dx2.  Without the bit the
     * buffer is not read (0 * dx would let a stale NaN through). */
    if (dx)
        for (size_t i = 0; i < len; i++)
            dx[i] = ((acc & 1) ? dx[i] : 0) + dy[i];
    if (dx2)
        for (size_t i = 0; i < len; i++)
            dx2[i] = ((acc & 2) ? dx2[i] : 0) + dy[i];
}

static const ns_layer_ops add_ops = {
    .kind = "add", .forward = add_forward, .backward = add_backward, .role = NS_ROLE_ADD,
};

int ns_add_create(ns_layer *L, const ns_layer *other)
{
    if (other->out_c != L->in_c || other->out_h != L->in_h || other->out_w != L->in_w)
        return ns_error(NS_EINVAL, "residual add of shapes %zux%zux%zu and %zux%zux%zu",
                        L->in_c, L->in_h, L->in_w, other->out_c, other->out_h,
                        other->out_w);
    L->ops = &add_ops;
    L->out_c = L->in_c;
    L->out_h = L->in_h;
    L->out_w = L->in_w;
    return NS_OK;
}
