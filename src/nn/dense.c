/*
 * Dense (fully connected) layer, PyTorch's nn.Linear:
 *   y[n, o] = sum_i x[n, i] W[o, i] + b[o]
 * The input is read flat (c*h*w values per sample), so a dense layer after a
 * convolution flattens implicitly, in NCHW order as torch.flatten does.
 */
#include "normscope/nn.h"

#include <string.h>

static int dense_forward(ns_layer *L, ns_real *y, const ns_real *x,
                         const ns_real *x2, size_t n, const ns_ctx *ctx)
{
    (void)x2;
    (void)ctx;
    size_t in = ns_layer_in_size(L), out = L->out_c;
    const ns_real *W = ns_layer_weight_forward(L), *b = L->param[1].data;
    /* y (n, out) = x (n, in) W^T (in, out), bias broadcast first. */
    for (size_t i = 0; i < n; i++)
        memcpy(y + i * out, b, out * sizeof *y);
    ns_gemm(0, 1, n, out, in, 1, x, in, W, in, 1, y, out);
    return NS_OK;
}

static void dense_backward(ns_layer *L, ns_real *dx, ns_real *dx2, int acc,
                           const ns_real *dy, const ns_real *y, const ns_real *x,
                           size_t n)
{
    int pg = !(acc & NS_BACKWARD_NO_PARAM_GRAD);
    acc &= 1; /* only bit 0 (dx) applies to a one-input layer */
    (void)dx2;
    (void)y;
    size_t in = ns_layer_in_size(L), out = L->out_c;
    /* With a weight rule the forward multiplied with W'. */
    const ns_real *W = ns_layer_weight_used(L);
    if (pg) {
        ns_real *dW = ns_layer_weight_grad_begin(L), *db = L->param[1].grad;
        /* dW (out, in) += dy^T (out, n) x (n, in) */
        ns_gemm(1, 0, out, in, n, 1, dy, out, x, in, 1, dW, in);
        ns_layer_weight_grad_end(L);
        for (size_t i = 0; i < n; i++)
            for (size_t o = 0; o < out; o++)
                db[o] += dy[i * out + o];
    }
    /* dx (n, in) = dy (n, out) W (out, in) */
    if (dx)
        ns_gemm(0, 0, n, in, out, 1, dy, out, W, in, acc ? 1 : 0, dx, in);
}

static void dense_init(ns_layer *L, const ns_init *init, ns_rng *r)
{
    size_t in = ns_layer_in_size(L), out = L->out_c;
    ns_init_fill(L->param[0].data, in * out, L->param[1].data, out, (double)in,
                 (double)out, init, r);
}

static const ns_layer_ops dense_ops = {
    .kind = "dense",
    .forward = dense_forward,
    .backward = dense_backward,
    .init = dense_init,
    .role = NS_ROLE_DENSE,
    .flags = NS_LAYER_PURE_BACKWARD,
};

int ns_dense_create(ns_layer *L, size_t nout)
{
    size_t in = ns_layer_in_size(L);
    if (nout == 0)
        return ns_error(NS_EINVAL, "dense layer with zero outputs");
    L->ops = &dense_ops;
    L->out_c = nout;
    L->out_h = L->out_w = 1;
    size_t wd[2] = {nout, in}, bd[1] = {nout};
    int st = ns_layer_add_param(L, "weight", 2, wd);
    if (!st)
        st = ns_layer_add_param(L, "bias", 1, bd);
    return st;
}
