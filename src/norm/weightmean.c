/*
 * Which layers a method's weight rule acts on (the rules themselves, the
 * weight-mean projection and the reparametrisations, are in src/nn/wrule.c).
 *
 * MimicNorm's weight mean (Fei et al., AAAI 2021): the authors skip layers
 * with fan-in <= 50 and leave Linear layers out; in a network without
 * convolutions (the mlp presets) the hidden dense layers are projected, the
 * theory's own setting (METHODS.md).  ns_net_opts.wm_all projects every
 * conv and dense layer instead.  CenConv and WS take every conv (or the
 * hidden dense layers of a conv-free net), the nf method every conv and
 * dense layer but the classifier.
 */
#include "normscope/norm.h"

#include <math.h>

static int is_weight_layer(const ns_layer *L, ns_layer_role role)
{
    return L->ops->role == role && L->nparam > 0 && L->param[0].ndim >= 2;
}

int ns_weight_layers_pick(const ns_net *net, ns_pick rule, unsigned char *pick)
{
    size_t nconv = 0, last_dense = (size_t)-1;
    int count = 0;
    for (size_t i = 0; i < net->nlayers; i++) {
        if (is_weight_layer(&net->layers[i], NS_ROLE_CONV))
            nconv++;
        if (is_weight_layer(&net->layers[i], NS_ROLE_DENSE))
            last_dense = i;
    }
    for (size_t i = 0; i < net->nlayers; i++) {
        const ns_layer *L = &net->layers[i];
        int conv = is_weight_layer(L, NS_ROLE_CONV), dense = is_weight_layer(L, NS_ROLE_DENSE);
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
