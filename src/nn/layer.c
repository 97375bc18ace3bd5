/*
 * Tensor declarations of layers under construction.  A layer declares the
 * names and shapes of its parameters and state; the network then carves
 * their storage out of its slabs.
 */
#include "normscope/nn.h"

#include <math.h>
#include <string.h>

static int add_tensor(ns_layer *L, ns_tensor *t, int *count, const char *name,
                      int ndim, const size_t *dims)
{
    if (*count >= NS_MAX_TENSORS || ndim < 1 || ndim > 4)
        return ns_error(NS_EFAIL, "layer '%s': too many tensors", L->name);
    ns_tensor *d = &t[(*count)++];
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", name);
    d->ndim = ndim;
    d->size = 1;
    for (int i = 0; i < ndim; i++) {
        d->dims[i] = dims[i];
        d->size = ns_size_bounded(d->size, dims[i]);
    }
    if (d->size == 0)
        return ns_error(NS_EINVAL, "tensor '%s' is empty or too large (more than 2^36 "
                        "values)", name);
    return NS_OK;
}

int ns_layer_add_param(ns_layer *L, const char *name, int ndim, const size_t *dims)
{
    return add_tensor(L, L->param, &L->nparam, name, ndim, dims);
}

int ns_layer_add_state(ns_layer *L, const char *name, int ndim, const size_t *dims)
{
    return add_tensor(L, L->state, &L->nstate, name, ndim, dims);
}

int ns_layer_add_state_flags(ns_layer *L, const char *name, int ndim, const size_t *dims,
                             unsigned flags)
{
    int st = add_tensor(L, L->state, &L->nstate, name, ndim, dims);
    if (!st)
        L->state[L->nstate - 1].flags = flags;
    return st;
}

void ns_init_fill(ns_real *W, size_t nw, ns_real *b, size_t nb, double fan_in,
                  double fan_out, const ns_init *init, ns_rng *r)
{
    double wb = 0, ws = 0, bb = 0, bs = 0; /* uniform bounds / normal sigmas */
    switch (init->kind) {
    case NS_INIT_TORCH: wb = bb = 1.0 / sqrt(fan_in); break;
    case NS_INIT_HE_NORMAL: ws = sqrt(2.0 / fan_in); break;
    case NS_INIT_HE_UNIFORM: wb = sqrt(6.0 / fan_in); break;
    case NS_INIT_XAVIER: wb = sqrt(6.0 / (fan_in + fan_out)); break;
    case NS_INIT_GAUSS: ws = sqrt(init->sw2 / fan_in); bs = sqrt(init->sb2); break;
    case NS_INIT_MIMIC:
        /* sigma_w^2 = 2n / ((n-1)(1-1/pi)), Var W = sigma_w^2 / n (METHODS.md) */
        ws = fan_in > 1 ? sqrt(2.0 / ((fan_in - 1) * (1 - 1 / 3.14159265358979323846)))
                        : sqrt(2.0);
        break;
    }
    for (size_t i = 0; i < nw; i++)
        W[i] = (ns_real)(ws > 0 ? ws * ns_rng_normal(r)
                                : wb * (2 * ns_rng_uniform(r) - 1));
    for (size_t o = 0; b && o < nb; o++)
        b[o] = (ns_real)(bs > 0 ? bs * ns_rng_normal(r)
                                : bb > 0 ? bb * (2 * ns_rng_uniform(r) - 1) : 0);
}
