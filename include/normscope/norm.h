/*
 * normscope normalization methods.  `--norm NAME` picks a method from a
 * registry; each entry carries the hooks of what the method does to a
 * network (ns_net_method, normscope/nn.h): how to fill a normalization slot
 * (a layer, or nothing), weight rules (projections after the optimiser
 * step, reparametrisations) and network rewrites.
 */
#ifndef NORMSCOPE_NORM_H
#define NORMSCOPE_NORM_H

#include "normscope/nn.h"
#include "normscope/opt.h"

/* What a method asks of training (what it does to the network is in its
 * hooks). */
enum ns_norm_flags {
    NS_NORM_MIMIC_INIT = 8,   /* MimicNorm's initialisation unless --init is given */
    NS_NORM_AGC = 256         /* adaptive gradient clipping before each step */
};

typedef struct ns_norm_method {
    const char *name;       /* one word: "bn" */
    const char *summary;    /* one line for --list-norms */
    const char *reference;  /* paper, or "normscope's own definition" */
    /* What it does to a network (ns_net_build); NULL: nothing, the slots
     * are left empty.  The bn hook is the registry's, whatever the entry. */
    const ns_net_method *net;
    const char *notes;      /* what --help-norm adds to the options: the reasons for the
                               default recipe (NULL: nothing) */
    unsigned flags;         /* ns_norm_flags */
    double lr;              /* the method's default learning rate (0: the global 0.05) */
    size_t warmup;          /* its default linear warm-up in steps (0: none) */
    double clip;            /* its default gradient-norm clipping (0: none) */
    /* Its options: the ones declared with it, in its source file (NULL: none),
     * then the /config keys of options declared with other methods that it
     * reads too, space-separated ("norm_group bn_eps"; NULL: none). */
    const ns_opt_table *opts;
    const char *reads;
} ns_norm_method;

/* Lookup by name; NULL if unknown. */
const ns_norm_method *ns_norm_find(const char *name);

/* Builds a network (ns_net_build_with, normscope/nn.h, for the grammar) with
 * the hooks of the method opts->norm names.  NS_EINVAL for an unknown
 * method, and as ns_net_build_with. */
int ns_net_build(const char *arch, const ns_net_opts *opts, size_t c, size_t h,
                 size_t w, size_t nout, ns_net **out);
/* Fills opts with the defaults of ns_net_opts (normscope/nn.h; norm "bn",
 * max_batch 128), the methods' options included. */
void ns_net_opts_default(ns_net_opts *o);
/* Registry access for listings. */
size_t ns_norm_count(void);
const ns_norm_method *ns_norm_at(size_t i);

/* ------------------------------------------------- method options */

/* The option tables, each declared in the method's source file: bn
 * (norm_group, bn_momentum, bn_eps, bn_affine, read by most methods), ubn,
 * psbn, brn and ic in batchnorm.c, mabn.c, bkn.c, powernorm.c, gn in
 * groupnorm.c, frn.c, mimic (wm_all, res_scale_paper) and nf (agc) in
 * weightmean.c.  Every entry carries NS_OPT_NET: its field is in
 * ns_net_opts. */
/* In a table: the /config key of a field of ns_net_opts, which is its name. */
#define NS_NET_FIELD(f) .key = #f, .offset = offsetof(ns_net_opts, f)

extern const ns_opt_table ns_bn_options, ns_ubn_options, ns_psbn_options, ns_brn_options,
    ns_ic_options, ns_mabn_options, ns_bkn_options, ns_pn_options, ns_gn_options,
    ns_frn_options, ns_mimic_options, ns_nf_options;

/* Every method option once: the methods' own tables in registry order,
 * entries 0, 1, ...; NULL beyond. */
const ns_opt *ns_norm_opt_at(size_t i);
/* The method option with this command-line option, flag or /config key
 * ("--bkn-p", "--frn-relu", "bkn_p"); NULL if none. */
const ns_opt *ns_norm_opt_find(const char *name);
/* The options method m reads: its own, then those m->reads names (a key
 * that names no option is skipped); entries 0, 1, ...; NULL beyond. */
const ns_opt *ns_norm_reads(const ns_norm_method *m, size_t i);
/* Sets every method option in o to its declared default (the rest of o is
 * left alone). */
void ns_norm_opts_default(ns_net_opts *o);

/* Batch normalization over (N, H, W) per channel, in groups of `group`
 * samples (0: the whole batch); running variance unbiased as in PyTorch. */
int ns_bn_create(ns_layer *L, double momentum, double eps, int affine, size_t group);

/* Which conv/dense layers a weight rule applies to. */
typedef enum ns_pick {
    NS_PICK_MIMIC,              /* the MimicNorm authors' rule: conv with fan-in > 50,
                                 * or the hidden dense layers of a conv-free net */
    NS_PICK_ALL,                /* every conv and dense layer */
    NS_PICK_CONV_ELSE_HIDDEN,   /* every conv, or the hidden dense layers of a conv-free net */
    NS_PICK_ALL_BUT_CLASSIFIER  /* every conv and dense layer but the last dense */
} ns_pick;

/* Sets pick[i] (nlayers entries) for the layers the rule applies to;
 * returns how many. */
int ns_weight_layers_pick(const ns_net *net, ns_pick rule, unsigned char *pick);

/* Batch Renormalization on a BN layer: final rmax, dmax and the schedule
 * (steps of warm-up with r = 1, d = 0, then a linear ramp). */
int ns_bn_set_renorm(ns_layer *L, double rmax, double dmax, size_t warmup, size_t ramp);

/* Sets a BN layer's running-statistics momentum; returns the old one. */
double ns_bn_set_momentum(ns_layer *L, double momentum);

/* psBN: adds a constant alpha to the BN output in both modes. */
void ns_bn_set_shift(ns_layer *L, double alpha);
/* UBN stage 1: measure the condensation of the BN input each training step
 * and skip the running-statistics update when it exceeds tau. */
int ns_bn_set_condensation_gate(ns_layer *L, double tau);

/* GroupNorm family: NS_GN_GROUP (groups), NS_GN_LAYER (one group),
 * NS_GN_INSTANCE (a group per channel; refused on 1x1 maps, where its
 * output is identically zero). */
typedef enum ns_gn_kind { NS_GN_GROUP, NS_GN_LAYER, NS_GN_INSTANCE } ns_gn_kind;
int ns_gn_create(ns_layer *L, ns_gn_kind kind, size_t groups, double eps);

/* MABN with a buffer of S iterations and warm-up iterations. */
int ns_mabn_create(ns_layer *L, double eps, size_t buffer, size_t warmup, size_t group);

/* MABN's buffer length in iterations: opts->mabn_buffer when set, else the
 * authors' rule buffer = real_B / B, with real_B = opts->mabn_real_batch and
 * B the samples of one iteration (the normalisation group, or max_batch for
 * whole batches), at least 1 (normscope's reading when B > real_B). */
size_t ns_mabn_buffer_size(const ns_net_opts *o);

/* PowerNorm with warm-up steps (whole batch as one group). */
int ns_pn_create(ns_layer *L, double eps, size_t warmup);

/* Batch Kalman Normalization (src/norm/bkn.c).  How the prediction
 * serves the normalisation groups of a batch: */
typedef enum ns_bkn_predict {
    NS_BKN_PREDICT_LAST = 0,  /* one prediction for every group, from the previous
                               * layer's last group; running averages over every
                               * group (normscope's first reading; runs written
                               * before the mode was recorded) */
    NS_BKN_PREDICT_GROUP = 1  /* the authors' code: group g predicted from group g of
                               * the previous layer, one guard decision per batch,
                               * running averages of group 0's statistics */
} ns_bkn_predict;

typedef struct ns_bkn_opts {
    double p;                 /* mixing weight; < 0: 0.9 for groups <= 16, else 0.05 */
    double eps;               /* variance epsilon */
    size_t group;             /* samples per normalisation group (0: the batch) */
    size_t samples;           /* pseudo-inputs per prediction on dense layers */
    ns_bkn_predict predict;
    int grad;                 /* 1: the gradient flows through the prediction (into
                               * the weight layer and the previous layer's statistics);
                               * 0: the prediction is a constant in backward */
} ns_bkn_opts;

/* Fills a BKN layer (NS_EINVAL for p outside [0, 1] or an unknown mode).
 * ns_bkn_freeze makes it reuse its last prediction (for gradient tests;
 * no gradient flows through a frozen prediction). */
int ns_bkn_create(ns_layer *L, const ns_bkn_opts *o);
void ns_bkn_freeze(ns_layer *L, int frozen);
/* Sets a BKN layer's running-average decay (0.9); returns the old one. */
double ns_bkn_set_decay(ns_layer *L, double decay);
/* "group" / "last" for --bkn-predict and /config; NS_EINVAL otherwise. */
int ns_bkn_parse_predict(const char *s, ns_bkn_predict *mode);
const char *ns_bkn_predict_name(ns_bkn_predict mode);
/* The last forward of a BKN layer in train or batch mode: its groups
 * (into *ngroups, may be NULL) and how many mixed the prediction in. */
size_t ns_bkn_mixed(const ns_layer *L, size_t *ngroups);
/* Group k of that forward, C values each (any pointer may be NULL): the
 * observed moments (mu, s2) and the prediction (mh, vh) it was offered.
 * Returns 1 with a prediction, 0 without one (mh, vh left alone), -1 when
 * there is no group k. */
int ns_bkn_moments(const ns_layer *L, size_t k, double *mu, double *s2, double *mh,
                   double *vh);
/* The statistics (m, v) of C channels of group k that a BKN layer or a
 * residual add layer hands on to the next BKN (see src/norm/bkn.c); 0 when
 * there are none for that group. */
int ns_bkn_carried(const ns_layer *L, size_t k, double *m, double *v, size_t C);

/* FRN + TLU; learned_eps < 0: learned exactly when the map is 1x1. */
int ns_frn_create(ns_layer *L, double eps0, int learned_eps);

#endif
