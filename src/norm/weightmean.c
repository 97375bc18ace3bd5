/*
 * MimicNorm's weight mean (Fei et al., AAAI 2021): after initialisation and
 * after every optimiser step each output unit's weights are projected to
 * zero mean over the fan-in, W[o, :] <- W[o, :] - mean_i W[o, i] (for conv
 * kernels over in_channels x kh x kw).  It is a projection of the stored
 * weights, not a term of the forward pass: no gradient flows through it
 * (CenConv, the reparametrised variant, is a different method).
 *
 * Which layers: the authors skip layers with fan-in <= 50 and leave Linear
 * layers out; in a network without convolutions (the mlp presets) the
 * hidden dense layers are projected, the theory's own setting (METHODS.md).
 * ns_net_opts.wm_all projects every conv and dense layer instead.
 *
 * The other operations on a whole network's weights or gradients between
 * backward and the optimiser live here too: adaptive gradient clipping (the
 * nf method) and global gradient-norm clipping (--clip).
 */
#include "normscope/norm.h"

#include <math.h>
#include <string.h>

static int is_weight_layer(const ns_layer *L, const char *kind)
{
    return !strcmp(L->ops->kind, kind) && L->nparam > 0 && L->param[0].ndim >= 2;
}

int ns_weight_layers_pick(const ns_net *net, ns_pick rule, unsigned char *pick)
{
    size_t nconv = 0, last_dense = (size_t)-1;
    int count = 0;
    for (size_t i = 0; i < net->nlayers; i++) {
        if (is_weight_layer(&net->layers[i], "conv"))
            nconv++;
        if (is_weight_layer(&net->layers[i], "dense"))
            last_dense = i;
    }
    for (size_t i = 0; i < net->nlayers; i++) {
        const ns_layer *L = &net->layers[i];
        int conv = is_weight_layer(L, "conv"), dense = is_weight_layer(L, "dense");
        int hidden_dense = dense && i != last_dense;
        size_t fan_in = (conv || dense) ? L->param[0].size / L->param[0].dims[0] : 0;
        switch (rule) {
        case NS_PICK_ALL: pick[i] = conv || dense; break;
        case NS_PICK_MIMIC: pick[i] = nconv ? conv && fan_in > 50 : hidden_dense; break;
        case NS_PICK_CONV_ELSE_HIDDEN: pick[i] = nconv ? conv : hidden_dense; break;
        case NS_PICK_ALL_BUT_CLASSIFIER: pick[i] = conv || hidden_dense; break;
        }
        count += pick[i];
    }
    return count;
}

void ns_net_project(ns_net *net)
{
    for (size_t i = 0; i < net->nlayers; i++) {
        ns_layer *L = &net->layers[i];
        if (!L->weight_mean)
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
        if (net->layers[i].weight_mean)
            return 1;
    return 0;
}

double ns_net_clip_grad(ns_net *net, double max_norm)
{
    ns_real *g = net->grads;
    double g2 = 0;
#pragma omp simd reduction(+ : g2)
    for (size_t i = 0; i < net->nparams; i++)
        g2 += (double)g[i] * g[i];
    double norm = sqrt(g2);
    if (max_norm > 0 && norm > max_norm) {
        ns_real f = (ns_real)(max_norm / (norm + 1e-6));
#pragma omp simd
        for (size_t i = 0; i < net->nparams; i++)
            g[i] *= f;
    }
    return norm;
}

void ns_net_agc(ns_net *net, double lambda)
{
    for (size_t i = 0; i < net->nlayers; i++) {
        ns_layer *L = &net->layers[i];
        if (!L->wrule)
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

/* ------------------------------------------------------------- options */

static const ns_opt_choice res_scale_choices[] = {{"paper", 1}, {"code", 0}};

/* MimicNorm's (wm reads wm_all too). */
static const ns_opt mimic_opts[] = {
    {.flag = "--wm-all", NS_NET_FIELD(wm_all), .type = NS_OPT_INT, .min = 0, .max = 1,
     .flags = NS_OPT_NET | NS_OPT_OLD, .def = 0, .old = 0,
     .help = "project every conv/dense layer, not only conv with fan-in > 50 or the hidden "
             "dense layers of a conv-free net"},
    {.option = "--res-scale", NS_NET_FIELD(res_scale_paper), .type = NS_OPT_INT,
     .flags = NS_OPT_NET | NS_OPT_OLD, .def = 0, .old = 0, .choices = res_scale_choices,
     .nchoices = 2,
     .help = "initial residual-branch scalar: 1/sqrt(l) (paper) or 1.2^2/l (code)"},
};
const ns_opt_table ns_mimic_options = {mimic_opts, sizeof mimic_opts / sizeof *mimic_opts};

static const ns_opt nf_opts[] = {
    {.option = "--agc", NS_NET_FIELD(agc), .type = NS_OPT_DOUBLE, .min = 0, .max = INFINITY,
     .flags = NS_OPT_NET | NS_OPT_OLD | NS_OPT_MIN_OPEN, .def = 0.01, .old = 0.01,
     .arg = "LAMBDA",
     .help = "adaptive gradient clipping: a unit's gradient is scaled down to LAMBDA times "
             "its weight norm (at least 1e-3) when it is larger"},
};
const ns_opt_table ns_nf_options = {nf_opts, sizeof nf_opts / sizeof *nf_opts};
