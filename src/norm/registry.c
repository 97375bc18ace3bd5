/*
 * The registry of normalization methods behind `--norm NAME`.  An entry
 * points to the method's hooks (ns_net_method): how a normalization slot of
 * an architecture is filled, and for methods that are weight rules or
 * network rewrites what else they do to the network.  A new method adds its
 * hooks and one entry here; the builder in src/nn does not change.  Its
 * options are declared in the method's source file (ns_<method>_options);
 * the entry points to them and names the shared ones it reads too, and the
 * walks over every method option (defaults, lookup) are here.
 */
#include "normscope/norm.h"

#include <math.h>
#include <string.h>

static int create_bn(ns_layer *L, const ns_net_opts *o)
{
    return ns_bn_create(L, o->bn_momentum, o->bn_eps, o->bn_affine, o->norm_group);
}

static const ns_net_method bn_net = {.slot = create_bn};

/* ---------------------------------------------------------- weight rules */

/* Gives the layers `which` picks the weight-mean projection (mean) or the
 * reparametrisation `rule`. */
static int weight_rule(ns_net *net, ns_pick which, int mean, ns_wrule rule)
{
    unsigned char *pick = ns_calloc(net->nlayers, 1);
    if (!pick)
        return NS_ENOMEM;
    ns_weight_layers_pick(net, which, pick);
    int st = NS_OK;
    for (size_t i = 0; !st && i < net->nlayers; i++) {
        ns_layer *L = &net->layers[i];
        if (!pick[i])
            continue;
        if (mean) {
            st = ns_layer_set_weight_mean(L);
            continue;
        }
        /* BN-free nets fold the ReLU gain into the weight that follows one. */
        const ns_layer_ops *in = L->src >= 0 ? net->layers[L->src].ops : NULL;
        int after_relu = in && in->role == NS_ROLE_ACT && in->act == NS_ACT_RELU;
        double g = rule == NS_WRULE_SCALED && after_relu
                       ? sqrt(2.0 / (1.0 - 1.0 / 3.14159265358979323846)) : 1;
        st = ns_layer_set_wrule(L, rule, g);
    }
    ns_free(pick);
    return st;
}

static int weights_mean(ns_net *net)
{
    return weight_rule(net, net->opts.wm_all ? NS_PICK_ALL : NS_PICK_MIMIC, 1, NS_WRULE_NONE);
}

static int weights_center(ns_net *net)
{
    return weight_rule(net, NS_PICK_CONV_ELSE_HIDDEN, 0, NS_WRULE_CENTER);
}

static int weights_standardize(ns_net *net)
{
    return weight_rule(net, NS_PICK_CONV_ELSE_HIDDEN, 0, NS_WRULE_STANDARDIZE);
}

static int weights_scaled(ns_net *net)
{
    return weight_rule(net, NS_PICK_ALL_BUT_CLASSIFIER, 0, NS_WRULE_SCALED);
}

/* MimicNorm's last BN: on the logits, no affine, default settings. */
static int last_bn(ns_layer *L, const ns_net_opts *o)
{
    return ns_bn_create(L, o->bn_momentum, o->bn_eps, 0, 0);
}

/* MimicNorm's scalar at the end of residual branch l: 1.2^2 / l (the
 * authors' code) or 1 / sqrt(l) (the paper). */
static int res_scale(ns_layer *L, size_t block, const ns_net_opts *o)
{
    double l = (double)block;
    return ns_scale_create(L, o->res_scale_paper ? 1.0 / sqrt(l) : 1.44 / l);
}

/* -------------------------------------------------------------- methods */

static int create_psbn(ns_layer *L, const ns_net_opts *o)
{
    int st = create_bn(L, o);
    if (!st)
        ns_bn_set_shift(L, o->psbn_alpha);
    return st;
}

static const ns_net_method psbn_net = {.slot = create_psbn};

static int create_ubn(ns_layer *L, const ns_net_opts *o)
{
    int st = create_bn(L, o);
    if (!st)
        st = ns_bn_set_condensation_gate(L, o->fct);
    return st;
}

static const ns_net_method ubn_net = {.slot = create_ubn};

static int create_brn(ns_layer *L, const ns_net_opts *o)
{
    int st = create_bn(L, o);
    if (!st)
        st = ns_bn_set_renorm(L, 3, 5, o->brn_warmup, o->brn_ramp);
    return st;
}

static const ns_net_method brn_net = {.slot = create_brn};

static int create_mabn(ns_layer *L, const ns_net_opts *o)
{
    return ns_mabn_create(L, o->bn_eps, ns_mabn_buffer_size(o), o->mabn_warmup, o->norm_group);
}

/* MABN comes with CenConv weights. */
static const ns_net_method mabn_net = {.slot = create_mabn, .weights = weights_center};

static int create_bkn(ns_layer *L, const ns_net_opts *o)
{
    ns_bkn_opts b = {.p = o->bkn_p, .eps = o->bn_eps, .group = o->norm_group,
                     .samples = o->bkn_samples, .predict = (ns_bkn_predict)o->bkn_predict,
                     .grad = o->bkn_grad};
    return ns_bkn_create(L, &b);
}

static const ns_net_method bkn_net = {.slot = create_bkn};

static int create_pn(ns_layer *L, const ns_net_opts *o)
{
    return ns_pn_create(L, o->bn_eps, o->pn_warmup);
}

static const ns_net_method pn_net = {.slot = create_pn};

static int create_gn(ns_layer *L, const ns_net_opts *o)
{
    return ns_gn_create(L, NS_GN_GROUP, o->gn_groups, o->bn_eps);
}

static const ns_net_method gn_net = {.slot = create_gn};

static int create_ln(ns_layer *L, const ns_net_opts *o)
{
    return ns_gn_create(L, NS_GN_LAYER, 1, o->bn_eps);
}

static const ns_net_method ln_net = {.slot = create_ln};

static int create_in(ns_layer *L, const ns_net_opts *o)
{
    return ns_gn_create(L, NS_GN_INSTANCE, L->in_c, o->bn_eps);
}

static const ns_net_method in_net = {.slot = create_in};

static int create_frn(ns_layer *L, const ns_net_opts *o)
{
    return ns_frn_create(L, o->frn_eps, -1);
}

/* FRN's TLU is the activation of its slot (FRN + TLU replace BN + ReLU): a
 * relu right after it is left out unless --frn-relu. */
static int frn_replaces_act(ns_act_fn fn, const ns_net_opts *o)
{
    return fn == NS_ACT_RELU && !o->frn_relu;
}

static const ns_net_method frn_net = {.slot = create_frn, .replaces_act = frn_replaces_act};

/* MimicNorm: no norm layers, the weight mean, the residual scalars and the
 * last BN. */
static const ns_net_method mimic_net = {.branch_end = res_scale, .logits = last_bn,
                                        .weights = weights_mean};
static const ns_net_method wm_net = {.weights = weights_mean};
static const ns_net_method lastbn_net = {.logits = last_bn};
static const ns_net_method cenconv_net = {.slot = create_bn, .weights = weights_center};
static const ns_net_method ws_net = {.slot = create_gn, .weights = weights_standardize};
static const ns_net_method nf_net = {.weights = weights_scaled};

/* IC layer: BN then dropout after each activation, so before the next
 * weight layer (Chen et al. 2019); the slots stay empty. */
static int ic_after_act(ns_layer *L, size_t k, const ns_net_opts *o)
{
    if (k == 0)
        return create_bn(L, o);
    if (k == 1)
        return ns_dropout_create(L, o->ic_drop);
    return NS_OK;
}

static const ns_net_method ic_net = {.after_act = ic_after_act};

static const ns_norm_method methods[] = {
    {"none", "no normalization: the slots are left empty", "-", NULL, NULL, 0, 0, 0, 0,
     .opts = NULL},
    {"bn", "batch normalization over (N,H,W) per channel; --norm-group S for ghost batches",
     "Ioffe & Szegedy, ICML 2015", &bn_net, NULL, 0, 0, 0, 0,
     .opts = &ns_bn_options},
    {"ubn", "BN whose running statistics skip steps with feature condensation above --fct "
            "(stage 1; condensation = mean pairwise cosine of the BN inputs)",
     "Wang et al. 2023; condensation measure and gate are normscope's own definition",
     &ubn_net, NULL, 0, 0, 0, 0,
     .opts = &ns_ubn_options, .reads = "norm_group bn_momentum bn_eps bn_affine"},
    {"psbn", "BN plus a constant post-shift alpha in both modes (--psbn-alpha, 0.1)",
     "Zhou et al. 2020, as read by FixMatch-pytorch's PSBatchNorm2d (third-party reading)",
     &psbn_net, NULL, 0, 0, 0, 0,
     .opts = &ns_psbn_options, .reads = "norm_group bn_momentum bn_eps bn_affine"},
    {"brn", "batch renormalization: BN with clipped corrections r, d towards the running "
            "statistics (rmax 1->3, dmax 0->5 after warm-up)",
     "Ioffe, NeurIPS 2017; the step schedule is normscope's scaled-down default", &brn_net,
     NULL, 0, 0, 0, 0,
     .opts = &ns_brn_options, .reads = "norm_group bn_momentum bn_eps bn_affine"},
    {"mabn", "moving average BN: no centering, E[x^2] averaged over the last S iterations, "
             "buffered E[g z] in backward, clamped renorm factor; with CenConv weights",
     "Yan et al., ICLR 2020 (authors' code); groups as buffer iterations are normscope's "
     "reading", &mabn_net, NULL, 0, 0, 0, 0,
     .opts = &ns_mabn_options, .reads = "norm_group bn_eps"},
    {"bkn", "batch Kalman normalization: batch moments mixed with a prediction from the "
            "previous norm layer's statistics through this layer's weights",
     "Wang et al. 2018 (authors' code); normscope's choices: pseudo-samples on dense "
     "layers, the sum of branch and skip statistics after a residual add", &bkn_net,
     NULL, 0, 0, 0, 0,
     .opts = &ns_bkn_options, .reads = "norm_group bn_eps"},
    {"pn", "PowerNorm: quadratic mean instead of variance, the running estimate normalises "
           "after warm-up, approximate backward through running statistics",
     "Shen et al., ICML 2020 (Algorithm 1); alpha 0.9 and the 10000-step warm-up are the "
     "authors' code defaults", &pn_net, NULL, 0, 0.1, 0, 0,
     .opts = &ns_pn_options, .reads = "bn_eps"},
    {"gn", "group normalization per sample over channel groups (--gn-groups, 32)",
     "Wu & He, ECCV 2018", &gn_net, NULL, 0, 0, 0, 0,
     .opts = &ns_gn_options, .reads = "bn_eps"},
    {"ln", "layer normalization: one group over (C,H,W) per sample, per-channel affine",
     "Ba et al. 2016 (as GroupNorm(1, C))", &ln_net,
     "default recipe --lr 0.3 --warmup 300 --clip 2, normscope's choice (one epoch, seed 1: "
     "cnn 75.9% at lr 0.05, 80.8% with the recipe; resnet8 77.4% and 82.9%; without --clip "
     "resnet8 lost its seed-1 run to a gradient spike in the warm-up)",
     0, 0.3, 300, 2,
     .reads = "bn_eps"},
    {"in", "instance normalization per sample and channel over (H,W); refused on dense slots",
     "Ulyanov et al. 2016", &in_net,
     "default --lr 0.2 (one epoch of the cnn: 74.1% at 0.05, 83.4% at 0.2)",
     0, 0.2, 0, 0,
     .reads = "bn_eps"},
    {"frn", "filter response normalization + TLU, which takes the place of the slot's relu; "
            "learned eps on 1x1 maps (--frn-eps)",
     "Singh & Krishnan, CVPR 2020", &frn_net,
     "default recipe --lr 0.3 --warmup 300 --clip 2, normscope's choice (one epoch, seed 1: "
     "cnn 75.9% at lr 0.05, 82.9% with the recipe; resnet8 81.1% and 83.9%)",
     0, 0.3, 300, 2,
     .opts = &ns_frn_options},
    {"mimic", "MimicNorm: weight mean (projection) + last BN on the logits, no other norm "
              "layers, residual-branch scalars, weight-mean initialisation",
     "Fei et al., AAAI 2021", &mimic_net,
     "--init overrides the weight-mean initialisation",
     NS_NORM_MIMIC_INIT, 0.1, 0, 0,
     .opts = &ns_mimic_options},
    {"wm", "MimicNorm's weight mean alone: per-unit zero-mean projection after every step, "
           "no norm layers", "Fei et al., AAAI 2021 (ablation)", &wm_net,
     "--init overrides the weight-mean initialisation; default --lr 0.02, since without any "
     "norm layer resnet8 diverges at 0.05",
     NS_NORM_MIMIC_INIT, 0.02, 0, 0,
     .reads = "wm_all"},
    {"cenconv", "centred weights as a reparametrisation: W' = W - mean per output unit inside "
                "the forward pass (gradients flow through the mean), BN in the slots",
     "MABN's CenConv (Yan et al., ICLR 2020)", &cenconv_net, NULL, 0, 0, 0, 0,
     .reads = "norm_group bn_momentum bn_eps bn_affine"},
    {"ws", "weight standardization (zero mean, unit variance per output unit inside the "
           "forward pass) with GroupNorm in the slots", "Qiao et al. 2019", &ws_net,
     NULL, 0, 0, 0, 0,
     .reads = "gn_groups bn_eps"},
    {"ic", "IC layer: BN then dropout after every activation, i.e. before each weight "
           "layer; the slots are left empty", "Chen et al. 2019", &ic_net,
     NULL, 0, 0, 0, 0,
     .opts = &ns_ic_options, .reads = "norm_group bn_momentum bn_eps bn_affine"},
    {"nf", "BN-free training: no norm layers, scaled weight standardization with a learned "
           "gain on conv and hidden dense layers (ReLU gain folded in), adaptive "
           "gradient clipping on those weights",
     "Brock et al., ICLR 2021 / ICML 2021 (NF nets); no residual alpha/beta scaling yet",
     &nf_net,
     "default --lr 0.2 (one epoch, seed 1: cnn 78.2% at 0.05, 83.9% at 0.2; resnet8 82.8% "
     "and 85.9%; mlp 86.5% and 87.3%)",
     NS_NORM_AGC, 0.2, 0, 0,
     .opts = &ns_nf_options},
    {"lastbn", "MimicNorm's last BN alone: a BN without affine on the logits, no other "
               "norm layers", "Fei et al., AAAI 2021 (ablation)", &lastbn_net,
     NULL, 0, 0, 0, 0,
     .reads = "bn_momentum bn_eps"},
};

size_t ns_norm_count(void)
{
    return sizeof methods / sizeof *methods;
}

const ns_norm_method *ns_norm_at(size_t i)
{
    return i < ns_norm_count() ? &methods[i] : NULL;
}

const ns_norm_method *ns_norm_find(const char *name)
{
    for (size_t i = 0; i < ns_norm_count(); i++)
        if (strcmp(methods[i].name, name) == 0)
            return &methods[i];
    return NULL;
}

/* ------------------------------------------------------ method options */

const ns_opt *ns_norm_opt_at(size_t i)
{
    for (size_t m = 0; m < ns_norm_count(); m++) {
        const ns_opt_table *t = methods[m].opts;
        if (!t)
            continue;
        if (i < t->n)
            return &t->opt[i];
        i -= t->n;
    }
    return NULL;
}

const ns_opt *ns_norm_opt_find(const char *name)
{
    const ns_opt *o;
    for (size_t i = 0; (o = ns_norm_opt_at(i)); i++)
        if ((o->option && !strcmp(o->option, name)) || (o->flag && !strcmp(o->flag, name)) ||
            !strcmp(o->key, name))
            return o;
    return NULL;
}

const ns_opt *ns_norm_reads(const ns_norm_method *m, size_t i)
{
    if (m->opts && i < m->opts->n)
        return &m->opts->opt[i];
    i -= m->opts ? m->opts->n : 0;
    /* the i-th key of m->reads that names an option */
    for (const char *p = m->reads; p && *p;) {
        size_t n = strcspn(p, " ");
        char key[64];
        if (n && n < sizeof key) {
            memcpy(key, p, n);
            key[n] = 0;
            const ns_opt *o = ns_norm_opt_find(key);
            if (o && i-- == 0)
                return o;
        }
        p += n + (p[n] == ' ');
    }
    return NULL;
}

void ns_norm_opts_default(ns_net_opts *o)
{
    for (size_t m = 0; m < ns_norm_count(); m++)
        if (methods[m].opts)
            ns_opt_defaults(methods[m].opts->opt, methods[m].opts->n, o);
}

int ns_net_build(const char *arch, const ns_net_opts *opts, size_t c, size_t h,
                 size_t w, size_t nout, ns_net **out)
{
    *out = NULL;
    const ns_norm_method *m = ns_norm_find(opts->norm);
    if (!m)
        return ns_error(NS_EINVAL, "unknown normalization method '%s'", opts->norm);
    ns_net_method hooks = {0};
    if (m->net)
        hooks = *m->net;
    hooks.bn = create_bn;   /* `bn` tokens, whatever the method */
    return ns_net_build_with(arch, opts, &hooks, c, h, w, nout, out);
}

void ns_net_opts_default(ns_net_opts *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->norm, sizeof o->norm, "bn");
    ns_norm_opts_default(o);   /* each method option as its method declares it */
    o->max_batch = 128;
}
