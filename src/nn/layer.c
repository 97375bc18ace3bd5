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

/* ------------------------------------------------- weight reparametrisation */

int ns_layer_set_wrule(ns_layer *L, ns_wrule rule)
{
    if (rule == NS_WRULE_NONE)
        return NS_OK;
    ns_tensor *W = &L->param[0];
    L->wt = ns_malloc(W->size * sizeof *L->wt);
    L->gw = ns_malloc(W->size * sizeof *L->gw);
    L->wis = ns_malloc(W->dims[0] * sizeof *L->wis);
    if (!L->wt || !L->gw || !L->wis)
        return NS_ENOMEM;
    L->wrule = rule;
    L->wgamma = 1;
    if (rule == NS_WRULE_SCALED) {
        L->wu = ns_malloc(W->size * sizeof *L->wu);
        if (!L->wu)
            return NS_ENOMEM;
        size_t gd[1] = {W->dims[0]};
        return ns_layer_add_param(L, "gain", 1, gd);
    }
    return NS_OK;
}

const ns_real *ns_layer_weight_forward(ns_layer *L)
{
    const ns_tensor *W = &L->param[0];
    if (!L->wrule)
        return W->data;
    size_t rows = W->dims[0], fan = W->size / rows;
    for (size_t o = 0; o < rows; o++) {
        const ns_real *w = W->data + o * fan;
        ns_real *t = L->wt + o * fan;
        double s = 0, ss = 0;
        for (size_t k = 0; k < fan; k++)
            s += w[k];
        double mu = s / (double)fan, is = 1;
        if (L->wrule != NS_WRULE_CENTER)
            for (size_t k = 0; k < fan; k++)
                ss += ((double)w[k] - mu) * ((double)w[k] - mu);
        if (L->wrule == NS_WRULE_STANDARDIZE)
            is = 1.0 / sqrt(ss / (double)fan + 1e-5);
        if (L->wrule == NS_WRULE_SCALED)
            is = 1.0 / sqrt(ss + 1e-4);   /* fan * var = ss */
        L->wis[o] = is;
        if (L->wrule == NS_WRULE_SCALED) {
            double c = L->param[2].data[o] * L->wgamma;
            for (size_t k = 0; k < fan; k++) {
                L->wu[o * fan + k] = (ns_real)(((double)w[k] - mu) * is);
                t[k] = (ns_real)(c * L->wu[o * fan + k]);
            }
            continue;
        }
        for (size_t k = 0; k < fan; k++)
            t[k] = (ns_real)(((double)w[k] - mu) * is);
    }
    return L->wt;
}

ns_real *ns_layer_weight_grad_begin(ns_layer *L)
{
    if (!L->wrule)
        return L->param[0].grad;
    memset(L->gw, 0, L->param[0].size * sizeof *L->gw);
    return L->gw;
}

void ns_layer_weight_grad_end(ns_layer *L)
{
    if (!L->wrule)
        return;
    ns_tensor *W = &L->param[0];
    size_t rows = W->dims[0], fan = W->size / rows;
    if (L->wrule == NS_WRULE_SCALED) {
        /* W' = c u, u = (W - mu) / s, c = gain g:  dgain = g sum(G u),
         * dW = (c / s) (G - mean(G) - u sum(G u)) */
        for (size_t o = 0; o < rows; o++) {
            const ns_real *g = L->gw + o * fan, *u = L->wu + o * fan;
            ns_real *dW = W->grad + o * fan;
            double m1 = 0, gu = 0, c = L->param[2].data[o] * L->wgamma;
            for (size_t k = 0; k < fan; k++) {
                m1 += g[k];
                gu += (double)g[k] * u[k];
            }
            m1 /= (double)fan;
            L->param[2].grad[o] += (ns_real)(L->wgamma * gu);
            double a = c * L->wis[o];
            for (size_t k = 0; k < fan; k++)
                dW[k] += (ns_real)(a * (g[k] - m1 - u[k] * gu));
        }
        return;
    }
    for (size_t o = 0; o < rows; o++) {
        const ns_real *g = L->gw + o * fan, *t = L->wt + o * fan;
        ns_real *dW = W->grad + o * fan;
        double m1 = 0, m2 = 0;
        for (size_t k = 0; k < fan; k++) {
            m1 += g[k];
            m2 += (double)g[k] * t[k];
        }
        m1 /= (double)fan;
        m2 /= (double)fan;
        double is = L->wis[o];
        /* center: dW = g - mean(g); standardize: is (g - mean(g) - W' mean(g W')) */
        for (size_t k = 0; k < fan; k++)
            dW[k] += (ns_real)(L->wrule == NS_WRULE_CENTER
                                   ? g[k] - m1
                                   : is * (g[k] - m1 - t[k] * m2));
    }
}
