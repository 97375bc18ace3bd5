/*
 * Weight rules of dense and conv layers, and the other operations on a
 * network's weights or gradients between backward and the optimiser step.
 *
 * Reparametrisations inside the forward pass, W' = f(W) per output unit o
 * over the fan-in (gradients flow through them):
 *   CenConv (MABN, Yan et al., ICLR 2020): W' = W - mean(W_o)
 *   Weight Standardization (Qiao et al. 2019): W' = (W - mean) / sqrt(var + 1e-5)
 *   scaled WS (NF nets, Brock et al., ICLR 2021): W' = gain g (W - mean) /
 *     sqrt(n var + 1e-4), n the fan-in, g the activation gain folded in.
 * MimicNorm's weight mean (Fei et al., AAAI 2021): after initialisation and
 * after every optimiser step each output unit's weights are projected to
 * zero mean over the fan-in, W[o, :] <- W[o, :] - mean_i W[o, i] (for conv
 * kernels over in_channels x kh x kw).  It is a projection of the stored
 * weights, not a term of the forward pass: no gradient flows through it.
 * Which layers get which rule is the method's choice (its weights hook in
 * src/norm); the rule's buffers live here, not in ns_layer.
 *
 * Also here: adaptive gradient clipping (the nf method) on the layers with
 * a reparametrisation.
 */
#include "normscope/nn.h"

#include <math.h>
#include <string.h>

struct ns_wrule_state {
    ns_wrule rule;       /* reparametrisation, or NS_WRULE_NONE */
    int weight_mean;     /* projected by ns_net_project */
    ns_real *wt, *gw;    /* reparametrised weight and its gradient (rule only) */
    double *wis;         /* per-row 1/std of the standardised weight (rule only) */
    ns_real *wu;         /* scaled WS: the standardised weight before the gain */
    double gamma;        /* scaled WS: the activation gain folded into W' */
};

static int is_weight_layer(const ns_layer *L)
{
    return (L->ops->role == NS_ROLE_DENSE || L->ops->role == NS_ROLE_CONV) && L->nparam > 0 &&
           L->param[0].ndim >= 2;
}

/* Makes the layer's rule state on first use. */
static int state_of(ns_layer *L)
{
    if (!is_weight_layer(L))
        return ns_error(NS_EINVAL, "layer '%s' has no weight matrix for a weight rule",
                        L->name);
    if (!L->wrule && !(L->wrule = ns_calloc(1, sizeof *L->wrule)))
        return NS_ENOMEM;
    return NS_OK;
}

int ns_layer_set_wrule(ns_layer *L, ns_wrule rule, double g)
{
    if (rule == NS_WRULE_NONE)
        return NS_OK;
    int st = state_of(L);
    if (st)
        return st;
    ns_wrule_state *s = L->wrule;
    if (s->rule)
        return ns_error(NS_EINVAL, "layer '%s' has a weight rule already", L->name);
    ns_tensor *W = &L->param[0];
    s->wt = ns_malloc(W->size * sizeof *s->wt);
    s->gw = ns_malloc(W->size * sizeof *s->gw);
    s->wis = ns_malloc(W->dims[0] * sizeof *s->wis);
    if (!s->wt || !s->gw || !s->wis)
        return NS_ENOMEM;
    s->rule = rule;
    s->gamma = 1;
    if (rule == NS_WRULE_SCALED) {
        s->gamma = g;
        s->wu = ns_malloc(W->size * sizeof *s->wu);
        if (!s->wu)
            return NS_ENOMEM;
        size_t gd[1] = {W->dims[0]};
        return ns_layer_add_param(L, "gain", 1, gd);
    }
    return NS_OK;
}

int ns_layer_set_weight_mean(ns_layer *L)
{
    int st = state_of(L);
    if (!st)
        L->wrule->weight_mean = 1;
    return st;
}

ns_wrule ns_layer_wrule(const ns_layer *L)
{
    return L->wrule ? L->wrule->rule : NS_WRULE_NONE;
}

int ns_layer_weight_mean(const ns_layer *L)
{
    return L->wrule && L->wrule->weight_mean;
}

void ns_layer_wrule_init(ns_layer *L)
{
    if (!L->wrule || L->wrule->rule != NS_WRULE_SCALED)
        return;
    ns_tensor *g = &L->param[2];   /* "gain", added by ns_layer_set_wrule */
    for (size_t k = 0; k < g->size; k++)
        g->data[k] = 1;
}

void ns_layer_wrule_free(ns_layer *L)
{
    ns_wrule_state *s = L->wrule;
    if (!s)
        return;
    ns_free(s->wt);
    ns_free(s->gw);
    ns_free(s->wis);
    ns_free(s->wu);
    ns_free(s);
    L->wrule = NULL;
}

const ns_real *ns_layer_weight_forward(ns_layer *L)
{
    const ns_tensor *W = &L->param[0];
    const ns_wrule_state *s = L->wrule;
    if (!s || !s->rule)
        return W->data;
    size_t rows = W->dims[0], fan = W->size / rows;
    for (size_t o = 0; o < rows; o++) {
        const ns_real *w = W->data + o * fan;
        ns_real *t = s->wt + o * fan;
        double sum = 0, ss = 0;
        for (size_t k = 0; k < fan; k++)
            sum += w[k];
        double mu = sum / (double)fan, is = 1;
        if (s->rule != NS_WRULE_CENTER)
            for (size_t k = 0; k < fan; k++)
                ss += ((double)w[k] - mu) * ((double)w[k] - mu);
        if (s->rule == NS_WRULE_STANDARDIZE)
            is = 1.0 / sqrt(ss / (double)fan + 1e-5);
        if (s->rule == NS_WRULE_SCALED)
            is = 1.0 / sqrt(ss + 1e-4);   /* fan * var = ss */
        s->wis[o] = is;
        if (s->rule == NS_WRULE_SCALED) {
            double c = L->param[2].data[o] * s->gamma;
            for (size_t k = 0; k < fan; k++) {
                s->wu[o * fan + k] = (ns_real)(((double)w[k] - mu) * is);
                t[k] = (ns_real)(c * s->wu[o * fan + k]);
            }
            continue;
        }
        for (size_t k = 0; k < fan; k++)
            t[k] = (ns_real)(((double)w[k] - mu) * is);
    }
    return s->wt;
}

const ns_real *ns_layer_weight_used(const ns_layer *L)
{
    return L->wrule && L->wrule->rule ? L->wrule->wt : L->param[0].data;
}

ns_real *ns_layer_weight_grad_begin(ns_layer *L)
{
    const ns_wrule_state *s = L->wrule;
    if (!s || !s->rule)
        return L->param[0].grad;
    memset(s->gw, 0, L->param[0].size * sizeof *s->gw);
    return s->gw;
}

void ns_layer_weight_grad_end(ns_layer *L)
{
    const ns_wrule_state *s = L->wrule;
    if (!s || !s->rule)
        return;
    ns_tensor *W = &L->param[0];
    size_t rows = W->dims[0], fan = W->size / rows;
    if (s->rule == NS_WRULE_SCALED) {
        /* W' = c u, u = (W - mu) / s, c = gain g:  dgain = g sum(G u),
         * dW = (c / s) (G - mean(G) - u sum(G u)) */
        for (size_t o = 0; o < rows; o++) {
            const ns_real *g = s->gw + o * fan, *u = s->wu + o * fan;
            ns_real *dW = W->grad + o * fan;
            double m1 = 0, gu = 0, c = L->param[2].data[o] * s->gamma;
            for (size_t k = 0; k < fan; k++) {
                m1 += g[k];
                gu += (double)g[k] * u[k];
            }
            m1 /= (double)fan;
            L->param[2].grad[o] += (ns_real)(s->gamma * gu);
            double a = c * s->wis[o];
            for (size_t k = 0; k < fan; k++)
                dW[k] += (ns_real)(a * (g[k] - m1 - u[k] * gu));
        }
        return;
    }
    for (size_t o = 0; o < rows; o++) {
        const ns_real *g = s->gw + o * fan, *t = s->wt + o * fan;
        ns_real *dW = W->grad + o * fan;
        double m1 = 0, m2 = 0;
        for (size_t k = 0; k < fan; k++) {
            m1 += g[k];
            m2 += (double)g[k] * t[k];
        }
        m1 /= (double)fan;
        m2 /= (double)fan;
        double is = s->wis[o];
        /* center: dW = g - mean(g); standardize: is (g - mean(g) - W' mean(g W')) */
        for (size_t k = 0; k < fan; k++)
            dW[k] += (ns_real)(s->rule == NS_WRULE_CENTER
                                   ? g[k] - m1
                                   : is * (g[k] - m1 - t[k] * m2));
    }
}

/* ------------------------------------------------------- whole network */

void ns_net_project(ns_net *net)
{
    for (size_t i = 0; i < net->nlayers; i++) {
        ns_layer *L = &net->layers[i];
        if (!L->wrule || !L->wrule->weight_mean)
            continue;
        ns_tensor *W = &L->param[0];
        size_t rows = W->dims[0], fan = W->size / rows;
        for (size_t o = 0; o < rows; o++) {
            ns_real *w = W->data + o * fan;
            double s = 0;
            for (size_t k = 0; k < fan; k++)
                s += w[k];
            ns_real m = (ns_real)(s / (double)fan);
            for (size_t k = 0; k < fan; k++)
                w[k] -= m;
        }
    }
}

int ns_net_has_projection(const ns_net *net)
{
    for (size_t i = 0; i < net->nlayers; i++)
        if (ns_layer_weight_mean(&net->layers[i]))
            return 1;
    return 0;
}

void ns_net_agc(ns_net *net, double lambda)
{
    for (size_t i = 0; i < net->nlayers; i++) {
        ns_layer *L = &net->layers[i];
        if (!ns_layer_wrule(L))
            continue;
        ns_tensor *W = &L->param[0];
        size_t rows = W->dims[0], fan = W->size / rows;
        for (size_t o = 0; o < rows; o++) {
            const ns_real *w = W->data + o * fan;
            ns_real *g = W->grad + o * fan;
            double wn = 0, gn = 0;
            for (size_t k = 0; k < fan; k++) {
                wn += (double)w[k] * w[k];
                gn += (double)g[k] * g[k];
            }
            wn = sqrt(wn);
            gn = sqrt(gn);
            double lim = lambda * (wn > 1e-3 ? wn : 1e-3);
            if (gn > lim) {
                ns_real f = (ns_real)(lim / gn);
                for (size_t k = 0; k < fan; k++)
                    g[k] *= f;
            }
        }
    }
}
