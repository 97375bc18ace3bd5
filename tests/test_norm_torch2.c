/*
 * Cross-check against PyTorch of the normalization methods torch.nn does
 * not have, each against a small reference written from the method's
 * formulas in tests/norm_ref.py (built into networks by tests/torch_ref.py):
 *
 *   brn      Batch Renormalization, train mode with r and d clipped (the
 *            step and the schedule put rmax at 1.4 and dmax at 1, and the
 *            running statistics far from the batch's), ghost groups, the
 *            warm-up (plain BN), eval, and steps across the schedule.  The
 *            running statistics follow normscope's documented choice,
 *            PyTorch's BN convention (sigma = sqrt(running_var + eps),
 *            running_var the average of the unbiased variance), not the
 *            paper's moving sigma.
 *   ws, cenconv, nf   the weight reparametrisations inside the forward pass
 *            (gradients through the mean and std to the raw weights; nf's
 *            learned gain and the ReLU gain), nf's adaptive gradient
 *            clipping over training steps.  WS follows nn.h's definition,
 *            (W - mean) / sqrt(var + 1e-5) with the biased variance (Qiao
 *            et al.'s code divides by the unbiased std + 1e-5), scaled WS
 *            gain g (W - mean) / sqrt(n var + 1e-4) (the NF-nets code takes
 *            max(n var, 1e-4)).
 *   mimic, wm, lastbn   MimicNorm's network (last BN without affine on the
 *            logits, residual scalars) forward and backward on an mlp and
 *            a small resnet; the weight-mean projection after SGD steps
 *            with momentum (the training loop's order: backward, optimiser
 *            step, ns_net_project), against torch.optim.SGD followed by
 *            W -= W.mean(fan-in) on the layers the documented rule picks.
 *   bkn      BKN in train mode: the prediction from the previous BKN
 *            layer's estimate through this layer's weights (normscope's
 *            N(0, 1) draws are reproduced here and given to torch), mixing
 *            weight p (explicit, and the group-size default), the
 *            variance-ratio guard both ways, groups in both prediction
 *            modes (per group from the same group of the previous layer,
 *            one guard decision and group 0's running averages, as the
 *            authors' code; or one prediction from the previous layer's
 *            last group), running averages; gradients with the prediction
 *            held constant (normscope's reading) and through it (autograd
 *            through the pseudo-input's path in torch, as in the authors'
 *            graph).  Eval mode.  Residual blocks: the
 *            statistics after an add are the sums of the branch's and the
 *            skip's (normscope's reading); the reference finds each BKN
 *            layer's source by following the data flow into its weight
 *            layer, independently of normscope's build-order links.
 *   mabn, pn  MABN and PowerNorm after warm-up (MABN past its 1000
 *            iterations, r clamped) with their own backward definitions and
 *            the state their backward updates, in warm-up (exact gradient),
 *            eval, and steps across the end of warm-up.
 *
 * Which layers carry a weight rule is derived independently in
 * norm_ref.py from the method and checked against normscope's choice.
 * Each case also checks from the reference's record of the last forward
 * that it exercised what it is for (clipped and unclipped r and d, mixed
 * and guarded BKN groups, clamped MABN r), and the training cases check
 * their own side (projected rows of zero mean, AGC clipping some rows and
 * not others).
 *
 * Values must agree to 1e-10 (double build, torch in float64) or 1e-5
 * (float build, torch in float32), relative to the largest magnitude of
 * each tensor; gradients (parameters after steps) are floored at 1e-3 of
 * the network's largest, and gradients that vanish exactly are compared to
 * the largest.  main()
 * writes every case's input before the tests fork and runs torch_ref.py
 * once for all of them.  Python with torch and h5py is required: without
 * it every case fails.
 */
#include "testutil.h"

#include "normscope/nn.h"
#include "normscope/norm.h"
#include "normscope/train.h"

#include <hdf5_hl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef NS_DOUBLE
#define TOL 1e-10
#else
#define TOL 1e-5
#endif

/* State of the normalization layers before the pass. */
enum {
    SETUP_PLAIN = 0, /* gamma, beta, running statistics near their usual values */
    SETUP_WIDE,      /* BN running statistics far from the batch's */
    SETUP_POST,      /* MABN / PowerNorm past warm-up, buffers filled */
    SETUP_WARM,      /* MABN / PowerNorm at their first iteration */
    SETUP_CROSS      /* MABN / PowerNorm just before warm-up ends */
};

/* What a case must exercise. */
enum {
    X_RCLIP = 1,     /* BRN: some r at 1/rmax or rmax */
    X_DCLIP = 2,     /* BRN: some d at -dmax or dmax */
    X_INSIDE = 4,    /* BRN: some r and some d strictly inside */
    X_MIXED = 8,     /* BKN: some group mixed the prediction in */
    X_GUARD = 16,    /* BKN: a layer with a prediction refused it (guard) */
    X_CLAMP = 32,    /* MABN: some r clamped, some not */
    X_AGC = 64,      /* nf steps: AGC clipped some rows and kept others */
    X_PROJ = 128     /* weight mean: projected layers exist, rows of zero mean */
};

typedef struct tcase {
    const char *name, *arch, *norm;
    size_t c, h, w, nout, n;
    ns_mode mode;        /* of the single pass (steps train) */
    size_t steps;        /* 0: one forward/backward; K: K SGD steps */
    uint64_t step0;      /* optimiser step of the (first) forward */
    int setup;           /* SETUP_* */
    size_t group, gn_groups, brn_warmup, brn_ramp, mabn_buffer, mabn_warmup, pn_warmup;
    double bkn_p;        /* 0: the default for the group size */
    int bkn_last;        /* BKN: one prediction from the previous layer's last group */
    int bkn_grad;        /* BKN: gradient through the prediction */
    double agc;          /* 0: the default */
    double xscale;       /* 0: 1 */
    int wm_all;
    int expect;          /* X_* */
} tcase;

#define TR NS_MODE_TRAIN
#define EV NS_MODE_EVAL
#define SMALL_CNN "conv3x3:8,norm,relu,conv3x3:8/2,norm,relu,gap,fc:out"
#define SMALL_RESNET "conv3x3:8,norm,relu,res:8,res:16/2,gap,fc:out"
/* the three networks, on n samples */
#define CNN_N(nm, norm_, mode_, n_) .name = nm, .arch = SMALL_CNN, .norm = norm_, .c = 2, \
                                    .h = 10, .w = 10, .nout = 5, .n = n_, .mode = mode_
#define MLP_N(nm, norm_, mode_, n_) .name = nm, .arch = "mlp:16x2", .norm = norm_, .c = 1, \
                                    .h = 6, .w = 6, .nout = 10, .n = n_, .mode = mode_
#define CNN(nm, norm_, mode_) CNN_N(nm, norm_, mode_, 6)
#define MLP(nm, norm_, mode_) MLP_N(nm, norm_, mode_, 8)
#define RES_N(nm, norm_, mode_, n_) .name = nm, .arch = SMALL_RESNET, .norm = norm_, .c = 2, \
                                    .h = 8, .w = 8, .nout = 5, .n = n_, .mode = mode_
#define RES(nm, norm_, mode_) RES_N(nm, norm_, mode_, 6)
/* BRN at step 30 of warm-up 10 + ramp 100: rmax 1.4, dmax 1 */
#define BRN_MID .step0 = 30, .brn_warmup = 10, .brn_ramp = 100, .setup = SETUP_WIDE
#define BRN_X (X_RCLIP | X_DCLIP | X_INSIDE)

static const tcase cases[] = {
    /* Batch Renormalization */
    {CNN_N("brn-cnn-train", "brn", TR, 8), BRN_MID, .expect = BRN_X},
    {MLP("brn-mlp-train", "brn", TR), BRN_MID, .expect = BRN_X},
    {.name = "brn-ghost-train", .arch = "conv3x3:4,norm,relu,fc:12,norm,relu,fc:out",
     .norm = "brn", .c = 2, .h = 6, .w = 6, .nout = 5, .n = 13, .mode = TR, BRN_MID,
     .group = 5, .expect = X_RCLIP | X_DCLIP},
    {CNN("brn-cnn-eval", "brn", EV), BRN_MID},
    {CNN("brn-cnn-warmup", "brn", TR), .step0 = 10, .brn_warmup = 10, .brn_ramp = 100,
     .setup = SETUP_WIDE},
    /* steps 0..3 with warm-up 1, ramp 2: t = 0, 0, 0.5, 1 */
    {CNN("brn-cnn-steps", "brn", TR), .steps = 4, .brn_warmup = 1, .brn_ramp = 2,
     .setup = SETUP_WIDE},
    /* weight reparametrisations */
    {CNN("ws-cnn-train", "ws", TR), .gn_groups = 4},
    {MLP("ws-mlp-train", "ws", TR), .gn_groups = 4},
    {CNN("cenconv-cnn-train", "cenconv", TR)},
    {CNN("cenconv-cnn-eval", "cenconv", EV)},
    {MLP("cenconv-mlp-train", "cenconv", TR)},
    {CNN("nf-cnn-train", "nf", TR)},
    {MLP("nf-mlp-train", "nf", TR)},
    {CNN("nf-cnn-steps", "nf", TR), .steps = 3, .agc = 0.3, .expect = X_AGC},
    {MLP("nf-mlp-steps", "nf", TR), .steps = 3, .agc = 0.3, .expect = X_AGC},
    /* MimicNorm and its halves */
    {MLP("mimic-mlp-train", "mimic", TR)},
    {MLP("mimic-mlp-eval", "mimic", EV)},
    {RES("mimic-resnet-train", "mimic", TR)},
    {RES("mimic-resnet-eval", "mimic", EV)},
    /* no gap before the classifier here: the logits of an untrained
     * conv net with gap differ across samples by about 1% of their mean,
     * and the last BN's division by that spread leaves float (on either
     * side) a few 1e-6 of the largest gradient */
    {.name = "lastbn-cnn-train", .arch = "conv3x3:8,norm,relu,conv3x3:8/2,norm,relu,fc:out",
     .norm = "lastbn", .c = 2, .h = 10, .w = 10, .nout = 5, .n = 6, .mode = TR},
    {MLP("mimic-mlp-steps", "mimic", TR), .steps = 3, .expect = X_PROJ},
    {RES("mimic-resnet-steps", "mimic", TR), .steps = 3, .expect = X_PROJ},
    {CNN("wm-cnn-steps", "wm", TR), .steps = 3, .expect = X_PROJ},
    {MLP("wm-all-mlp-steps", "wm", TR), .steps = 3, .wm_all = 1, .expect = X_PROJ},
    {MLP("lastbn-mlp-steps", "lastbn", TR), .steps = 3},
    /* Batch Kalman Normalization */
    {MLP("bkn-mlp-train", "bkn", TR), .bkn_p = 0.3, .expect = X_MIXED},
    {CNN("bkn-cnn-train", "bkn", TR), .bkn_p = 0.5, .expect = X_MIXED},
    /* groups: per group (the default) and from the last group */
    {CNN_N("bkn-cnn-group", "bkn", TR, 8), .group = 4, .expect = X_MIXED},
    {CNN_N("bkn-cnn-group2", "bkn", TR, 8), .group = 2, .expect = X_MIXED},
    {CNN_N("bkn-cnn-group-last", "bkn", TR, 8), .group = 4, .bkn_last = 1, .expect = X_MIXED},
    {MLP_N("bkn-mlp-group", "bkn", TR, 12), .group = 4, .expect = X_MIXED},
    {MLP_N("bkn-mlp-group-last", "bkn", TR, 12), .group = 4, .bkn_last = 1, .expect = X_MIXED},
    {CNN("bkn-cnn-guard", "bkn", TR), .bkn_p = 0.5, .xscale = 30, .expect = X_GUARD},
    {CNN_N("bkn-cnn-group-guard", "bkn", TR, 8), .group = 2, .xscale = 30, .expect = X_GUARD},
    {CNN("bkn-cnn-eval", "bkn", EV)},
    /* the gradient through the prediction */
    {CNN("bkn-cnn-grad", "bkn", TR), .bkn_p = 0.5, .bkn_grad = 1, .expect = X_MIXED},
    {CNN_N("bkn-cnn-group-grad", "bkn", TR, 8), .group = 2, .bkn_grad = 1, .expect = X_MIXED},
    {CNN_N("bkn-cnn-last-grad", "bkn", TR, 8), .group = 4, .bkn_last = 1, .bkn_grad = 1,
     .expect = X_MIXED},
    {MLP_N("bkn-mlp-group-grad", "bkn", TR, 12), .group = 4, .bkn_grad = 1, .expect = X_MIXED},
    /* residual blocks: statistics summed over branch and skip, the
     * projection shortcut's BKN predicting from the block's input */
    {RES("bkn-resnet-train", "bkn", TR), .bkn_p = 0.5, .expect = X_MIXED},
    {RES_N("bkn-resnet-group", "bkn", TR, 8), .group = 4, .expect = X_MIXED},
    {RES_N("bkn-resnet-group-last", "bkn", TR, 8), .group = 4, .bkn_last = 1, .expect = X_MIXED},
    {RES_N("bkn-resnet-group-grad", "bkn", TR, 8), .group = 2, .bkn_grad = 1,
     .expect = X_MIXED},
    {RES("bkn-resnet-eval", "bkn", EV)},
    /* MABN */
    {CNN("mabn-cnn-post", "mabn", TR), .setup = SETUP_POST, .mabn_buffer = 4,
     .expect = X_CLAMP},
    {MLP("mabn-mlp-post", "mabn", TR), .setup = SETUP_POST, .mabn_buffer = 4,
     .expect = X_CLAMP},
    {CNN("mabn-cnn-warm", "mabn", TR), .setup = SETUP_WARM, .mabn_buffer = 4},
    {CNN("mabn-cnn-eval", "mabn", EV), .setup = SETUP_POST, .mabn_buffer = 4},
    /* iterations 2 (warm), 3, 4, 5 (buffer means, r = 1) */
    {CNN("mabn-cnn-steps", "mabn", TR), .steps = 4, .setup = SETUP_CROSS, .mabn_buffer = 2,
     .mabn_warmup = 3},
    /* PowerNorm */
    {CNN("pn-cnn-post", "pn", TR), .setup = SETUP_POST, .pn_warmup = 5},
    {MLP("pn-mlp-post", "pn", TR), .setup = SETUP_POST, .pn_warmup = 5},
    {CNN("pn-cnn-warm", "pn", TR), .setup = SETUP_WARM, .pn_warmup = 5},
    {CNN("pn-cnn-eval", "pn", EV), .setup = SETUP_POST, .pn_warmup = 5},
    /* one step in warm-up, then the running normaliser */
    {CNN("pn-cnn-steps", "pn", TR), .steps = 3, .setup = SETUP_CROSS, .pn_warmup = 5},
};
#define NCASES (sizeof cases / sizeof *cases)

#define LR 0.05
#define SGD_MOMENTUM 0.9

static int is_kind(const ns_layer *L, const char *kind)
{
    return strcmp(L->ops->kind, kind) == 0;
}

static size_t nbatches(const tcase *tc)
{
    return tc->steps ? tc->steps : 1;
}

/* Parameters and state of the normalization layers (and nf's gains): gamma
 * in [0.6, 1.4], beta about N(0, 0.3^2), running statistics per the set-up. */
static void randomize(ns_net *net, const tcase *tc, ns_rng *r)
{
    for (size_t i = 0; i < net->nlayers; i++) {
        ns_layer *L = &net->layers[i];
        for (int t = 0; t < L->nparam; t++) {
            ns_tensor *T = &L->param[t];
            int gain = !strcmp(T->name, "gain");
            if (!ns_layer_is_norm(L) && !gain)
                continue;
            for (size_t j = 0; j < T->size; j++)
                T->data[j] = (ns_real)(gain || !strcmp(T->name, "weight")
                                           ? 0.6 + 0.8 * ns_rng_uniform(r)
                                           : 0.3 * ns_rng_normal(r));
        }
        size_t C = L->in_c;
        ns_tensor *S = L->state;
        if (is_kind(L, "bn") || is_kind(L, "bkn")) {
            int wide = tc->setup == SETUP_WIDE;
            for (size_t j = 0; j < C; j++) {
                S[0].data[j] = (ns_real)((wide ? 1.0 : 0.2) * ns_rng_normal(r));
                S[1].data[j] = (ns_real)(wide ? exp(1.5 * ns_rng_normal(r))
                                              : 0.5 + ns_rng_uniform(r));
            }
            if (is_kind(L, "bn"))
                S[2].data[0] = 3;
        } else if (is_kind(L, "mabn")) {
            /* running_var, iters, buffer_x2 (S x C), buffer_gz (S x C) */
            for (size_t j = 0; j < C; j++)
                S[0].data[j] = (ns_real)(tc->setup == SETUP_POST ? exp(3 * ns_rng_normal(r))
                                                                 : 0.5 + ns_rng_uniform(r));
            S[1].data[0] = tc->setup == SETUP_POST ? 2000 : tc->setup == SETUP_CROSS ? 1 : 0;
            for (size_t j = 0; j < S[2].size; j++) {
                S[2].data[j] = (ns_real)(0.3 + 1.7 * ns_rng_uniform(r));
                S[3].data[j] = (ns_real)(0.05 * ns_rng_normal(r));
            }
        } else if (is_kind(L, "pn")) {
            /* running_phi, nu, iters */
            for (size_t j = 0; j < C; j++) {
                S[0].data[j] = (ns_real)(0.3 + 1.7 * ns_rng_uniform(r));
                S[1].data[j] = (ns_real)(0.1 * ns_rng_normal(r));
            }
            S[2].data[0] = (ns_real)(tc->setup == SETUP_POST    ? tc->pn_warmup + 5
                                     : tc->setup == SETUP_CROSS ? tc->pn_warmup - 1
                                                                : 0);
        }
    }
}

/* The network and its batches (nbatches(tc) of n samples); the same on
 * every call.  Returns NS_OK or the build status (no Check asserts: main
 * calls it). */
static int make_case(const tcase *tc, ns_net **net, ns_real **x, int32_t **y)
{
    ns_net_opts o;
    ns_net_opts_default(&o);
    snprintf(o.norm, sizeof o.norm, "%s", tc->norm);
    o.norm_group = tc->group;
    if (tc->gn_groups)
        o.gn_groups = tc->gn_groups;
    if (tc->brn_warmup || tc->brn_ramp) {
        o.brn_warmup = tc->brn_warmup;
        o.brn_ramp = tc->brn_ramp;
    }
    if (tc->mabn_buffer)
        o.mabn_buffer = tc->mabn_buffer;
    if (tc->mabn_warmup)
        o.mabn_warmup = tc->mabn_warmup;
    if (tc->pn_warmup)
        o.pn_warmup = tc->pn_warmup;
    if (tc->bkn_p > 0)
        o.bkn_p = tc->bkn_p;
    if (tc->bkn_last)
        o.bkn_predict = NS_BKN_PREDICT_LAST;
    o.bkn_grad = tc->bkn_grad;
    if (tc->agc > 0)
        o.agc = tc->agc;
    o.wm_all = tc->wm_all;
    o.max_batch = tc->n;
    *x = NULL;
    *y = NULL;
    int st = ns_net_build(tc->arch, &o, tc->c, tc->h, tc->w, tc->nout, net);
    if (st)
        return st;
    /* MimicNorm's initialisation where the method asks for it */
    int mimic_init = (ns_norm_find(tc->norm)->flags & NS_NORM_MIMIC_INIT) != 0;
    ns_init ini = {mimic_init ? NS_INIT_MIMIC : NS_INIT_TORCH, 0, 0};
    ns_net_init(*net, &ini, 99);
    ns_rng r;
    ns_rng_seed(&r, 314, 0);
    randomize(*net, tc, &r);
    size_t nin = nbatches(tc) * tc->n * tc->c * tc->h * tc->w;
    *x = malloc(nin * sizeof **x);
    *y = malloc(nbatches(tc) * tc->n * sizeof **y);
    if (!*x || !*y)
        return NS_ENOMEM;
    double scale = tc->xscale > 0 ? tc->xscale : 1;
    for (size_t i = 0; i < nin; i++)
        (*x)[i] = (ns_real)(scale * (0.25 + 1.2 * ns_rng_normal(&r)));
    for (size_t i = 0; i < nbatches(tc) * tc->n; i++)
        (*y)[i] = (int32_t)ns_rng_below(&r, tc->nout);
    return NS_OK;
}

/* AGC's decisions: rows clipped and rows kept (what ns_net_agc will do). */
static void agc_count(const ns_net *net, double lambda, size_t *clip, size_t *keep)
{
    for (size_t i = 0; i < net->nlayers; i++) {
        const ns_layer *L = &net->layers[i];
        if (!ns_layer_wrule(L))
            continue;
        const ns_tensor *W = &L->param[0];
        size_t rows = W->dims[0], fan = W->size / rows;
        for (size_t o = 0; o < rows; o++) {
            double wn = 0, gn = 0;
            for (size_t k = 0; k < fan; k++) {
                wn += (double)W->data[o * fan + k] * W->data[o * fan + k];
                gn += (double)W->grad[o * fan + k] * W->grad[o * fan + k];
            }
            wn = sqrt(wn);
            if (sqrt(gn) > lambda * (wn > 1e-3 ? wn : 1e-3))
                (*clip)++;
            else
                (*keep)++;
        }
    }
}

/* normscope's side of a case: one forward/backward in tc->mode, or
 * tc->steps training steps in the training loop's order (forward,
 * cross-entropy, backward, AGC for nf, SGD with momentum, the weight-mean
 * projection).  losses gets the loss of each pass. */
static int run_case(const tcase *tc, ns_net *net, const ns_real *x, const int32_t *y,
                    double *losses, size_t *clip, size_t *keep)
{
    size_t nz = tc->n * tc->nout, nin = tc->n * tc->c * tc->h * tc->w;
    ns_real *dl = malloc(nz * sizeof *dl);
    ns_train_config cfg;
    ns_train_config_default(&cfg);
    cfg.optim = NS_OPTIM_SGD;
    cfg.lr = LR;
    cfg.momentum = SGD_MOMENTUM;
    cfg.wd = 0;
    cfg.nesterov = 0;
    ns_optim opt = {0};
    int st = dl ? NS_OK : NS_ENOMEM;
    if (!st && tc->steps)
        st = ns_optim_alloc(&opt, NS_OPTIM_SGD, net->nparams);
    int agc = (ns_norm_find(tc->norm)->flags & NS_NORM_AGC) != 0;
    for (size_t k = 0; !st && k < nbatches(tc); k++) {
        ns_ctx ctx = {tc->steps ? NS_MODE_TRAIN : tc->mode, 1, tc->step0 + k};
        st = ns_net_forward(net, x + k * nin, tc->n, &ctx);
        if (st)
            break;
        ns_softmax_ce(ns_net_logits(net), y + k * tc->n, tc->n, tc->nout, dl, &losses[k], NULL);
        ns_net_zero_grad(net);
        ns_net_backward(net, dl);
        if (!tc->steps)
            break;
        if (agc) {
            agc_count(net, net->opts.agc, clip, keep);
            ns_net_agc(net, net->opts.agc);
        }
        ns_optim_step(&opt, &cfg, LR, net->params, net->grads);
        ns_net_project(net);
    }
    ns_optim_release(&opt);
    free(dl);
    return st;
}

static const char *in_path(size_t i)
{
    char name[64];
    snprintf(name, sizeof name, "norm2-in-%s.h5", cases[i].name);
    return ns_test_path(name);
}

static const char *out_path(size_t i)
{
    char name[64];
    snprintf(name, sizeof name, "norm2-out-%s.h5", cases[i].name);
    return ns_test_path(name);
}

/* A layer BKN statistics flow out of: a BKN layer, or the add of a
 * residual block (the branch's and the skip's summed). */
static int carries_statistics(const ns_layer *L)
{
    return L && (is_kind(L, "bkn") || is_kind(L, "add"));
}

/* BKN's pseudo-input draws: for every BKN layer that predicts (statistics
 * flow into it from a BKN layer or a residual add, a dense or conv layer
 * feeds it),
 * the N(0, 1) values src/norm/bkn.c draws in a training forward of n
 * samples at `step` of a run with `seed` (its stream: seed ^ 0xb4a1, step *
 * 4096 + the layer's index; prediction by prediction, one per group or one
 * for the batch, samples x inputs of the weight layer, one sample on maps,
 * min(bkn_samples, max_batch) on dense layers), written for torch. */
static int write_bkn_noise(const char *path, const ns_net *net, size_t n, uint64_t seed,
                           uint64_t step)
{
    size_t g = net->opts.norm_group && net->opts.norm_group < n ? net->opts.norm_group : n;
    size_t npred = net->opts.bkn_predict == NS_BKN_PREDICT_GROUP ? (n + g - 1) / g : 1;
    for (size_t i = 0; i < net->nlayers; i++) {
        const ns_layer *L = &net->layers[i];
        const ns_layer *W = L->in_layer;
        if (!is_kind(L, "bkn") || !carries_statistics(L->prev_norm) || !W ||
            !(is_kind(W, "dense") || is_kind(W, "conv")))
            continue;
        size_t samples = net->opts.bkn_samples < net->max_batch ? net->opts.bkn_samples
                                                                : net->max_batch;
        size_t ns = (W->out_h * W->out_w == 1 ? samples : 1) * npred, in = ns_layer_in_size(W);
        double *v = malloc(ns * in * sizeof *v);
        if (!v)
            return -1;
        ns_rng r;
        ns_rng_seed(&r, seed ^ 0xb4a1u, step * 4096 + (uint64_t)atoi(L->name));
        for (size_t j = 0; j < ns * in; j++)
            v[j] = ns_rng_normal(&r);
        char dset[96];
        snprintf(dset, sizeof dset, "/bkn_noise/%s", L->name);
        size_t dims[2] = {ns, in};
        int bad = ns_test_h5_add(path, dset, 2, dims, v);
        free(v);
        if (bad)
            return -1;
    }
    return 0;
}

/* The input file of a case: network, first batch, the settings and, for
 * training cases, the other batches. */
static int write_case(size_t ci, const ns_net *net, const ns_real *x, const int32_t *y)
{
    const tcase *tc = &cases[ci];
    const char *p = in_path(ci);
    ns_mode mode = tc->steps ? NS_MODE_TRAIN : tc->mode;
    if (ns_test_torch_write(p, net, x, y, tc->n, mode) ||
        ns_test_h5_set_attr(p, "/", "step", (double)tc->step0))
        return -1;
    if (tc->steps &&
        (ns_test_h5_set_attr(p, "/", "train_steps", (double)tc->steps) ||
         ns_test_h5_set_attr(p, "/", "lr", LR) ||
         ns_test_h5_set_attr(p, "/", "sgd_momentum", SGD_MOMENTUM)))
        return -1;
    size_t nin = tc->n * tc->c * tc->h * tc->w;
    double *xd = malloc(nin * sizeof *xd);
    if (!xd)
        return -1;
    for (size_t k = 1; k < nbatches(tc); k++) {
        char dset[64];
        for (size_t i = 0; i < nin; i++)
            xd[i] = x[k * nin + i];
        size_t dims[4] = {tc->n, tc->c, tc->h, tc->w};
        snprintf(dset, sizeof dset, "/batches/%zu/x", k);
        int bad = ns_test_h5_add(p, dset, 4, dims, xd);
        snprintf(dset, sizeof dset, "/batches/%zu/y", k);
        bad = bad || ns_test_h5_add_int(p, dset, tc->n, y + k * tc->n);
        if (bad) {
            free(xd);
            return -1;
        }
    }
    free(xd);
    if (!tc->steps && mode == NS_MODE_TRAIN)
        return write_bkn_noise(p, net, tc->n, 1, tc->step0);
    return 0;
}

/* Why the reference is missing ("" when torch_ref.py ran). */
static char ref_problem[512] = "the reference was not computed";

/* The input file of case i (for ns_test_compute_refs). */
static int write_case_i(size_t i, char *why, size_t len)
{
    const tcase *tc = &cases[i];
    ns_net *net = NULL;
    ns_real *x;
    int32_t *y;
    int st = make_case(tc, &net, &x, &y);
    if (!st && write_case(i, net, x, y) != 0)
        st = NS_EIO;
    if (st)
        snprintf(why, len, "%s: cannot build or write the case: %s", tc->name, ns_errmsg());
    ns_net_free(net);
    free(x);
    free(y);
    return st;
}

/* Writes every case's input and runs tests/torch_ref.py once over all of them. */
static void compute_references(void)
{
    static const char *const need[] = {"tests/torch_ref.py", "tests/norm_ref.py", NULL};
    ns_test_compute_refs("tests/torch_ref.py", need, NCASES, write_case_i, in_path, out_path, ref_problem,
                         sizeof ref_problem);
}

/* A diagnostic of the reference (NULL when absent); *n gets its length. */
static double *read_diag(hid_t f, const char *layer, const char *what, size_t *n)
{
    char group[96], path[128];
    snprintf(group, sizeof group, "/diag/%s", layer);
    snprintf(path, sizeof path, "%s/%s", group, what);
    /* each step of the path, or HDF5 reports an error */
    if (H5Lexists(f, "/diag", H5P_DEFAULT) <= 0 || H5Lexists(f, group, H5P_DEFAULT) <= 0 ||
        H5Lexists(f, path, H5P_DEFAULT) <= 0)
        return NULL;
    hsize_t dims[1];
    H5T_class_t cls;
    size_t ts;
    ck_assert(H5LTget_dataset_info(f, path, dims, &cls, &ts) >= 0);
    *n = (size_t)dims[0];
    return ns_test_read_ref(f, path, *n);
}

static int near(double a, double b)
{
    return fabs(a - b) <= 1e-6 * fabs(b);
}

/* 1 when a later BKN layer predicts from the estimate of layer L (a BKN
 * layer or a residual add), directly or through adds: its prediction, and
 * with it the gradient, depends on it. */
static int estimate_read(const ns_net *net, const ns_layer *L)
{
    for (size_t j = 0; j < net->nlayers; j++) {
        const ns_layer *M = &net->layers[j];
        if (M->prev_norm != L && M->prev_norm2 != L)
            continue;
        if (is_kind(M, "bkn") || (is_kind(M, "add") && estimate_read(net, M)))
            return 1;
    }
    return 0;
}

/* 1 when layer i's bias gradient vanishes in exact arithmetic: its only
 * reader removes the per-channel mean of the batch (a BN-type layer on
 * batch statistics, BRN's d being a constant; a BKN layer that used its
 * batch statistics alone, without gradient through predictions; a BKN
 * layer with gradient through its prediction, which the bias shifts as
 * much as the batch mean, when no later prediction reads its estimate). */
static int bias_vanishes(const ns_net *net, size_t i, ns_mode mode, hid_t f)
{
    int readers = 0, removes = 0;
    for (size_t j = i + 1; j < net->nlayers; j++) {
        const ns_layer *L = &net->layers[j];
        if (L->src != (int)i && L->src2 != (int)i)
            continue;
        readers++;
        if (mode == NS_MODE_EVAL)
            continue;
        if (is_kind(L, "bn"))
            removes = 1;
        if (is_kind(L, "bkn")) {
            size_t n = 0, mixed = 0;
            double *m = read_diag(f, L->name, "mixed", &n);
            for (size_t k = 0; m && k < n; k++)
                mixed += m[k] != 0;
            if (net->opts.bkn_grad)
                removes |= m && !estimate_read(net, L);
            else
                removes |= m && mixed == 0;
            free(m);
        }
    }
    return readers == 1 && removes;
}

/* The checks that the case exercised what it is for. */
static void check_expectations(const tcase *tc, const ns_net *net, hid_t f, size_t clip,
                               size_t keep)
{
    size_t rclip = 0, dclip = 0, rin = 0, din = 0, mixed = 0, guarded = 0, mclamp = 0,
           min_ = 0;
    for (size_t i = 0; i < net->nlayers; i++) {
        const ns_layer *L = &net->layers[i];
        size_t n = 0, nd = 0, one = 0;
        if (is_kind(L, "bn")) {
            double *r = read_diag(f, L->name, "r", &n), *d = read_diag(f, L->name, "d", &nd);
            double *rmax = read_diag(f, L->name, "rmax", &one);
            double *dmax = read_diag(f, L->name, "dmax", &one);
            for (size_t k = 0; r && d && rmax && dmax && k < n && k < nd; k++) {
                int rc = near(r[k], *rmax) || near(r[k], 1 / *rmax);
                int dc = near(fabs(d[k]), *dmax);
                rclip += rc;
                dclip += dc;
                rin += !rc && r[k] > 1 / *rmax && r[k] < *rmax;
                din += !dc && fabs(d[k]) < *dmax;
            }
            free(r);
            free(d);
            free(rmax);
            free(dmax);
        } else if (is_kind(L, "bkn")) {
            double *m = read_diag(f, L->name, "mixed", &n);
            size_t mx = 0;
            for (size_t k = 0; m && k < n; k++)
                mx += m[k] != 0;
            mixed += mx;
            /* a layer that predicts (draws were written) but mixed nothing */
            if (m && mx == 0 && carries_statistics(L->prev_norm))
                guarded++;
            free(m);
        } else if (is_kind(L, "mabn")) {
            double *r = read_diag(f, L->name, "r", &n);
            for (size_t k = 0; r && k < n; k++) {
                int c = near(r[k], 0.2) || near(r[k], 5);
                mclamp += c;
                min_ += !c;
            }
            free(r);
        }
    }
    if (getenv("NS_TEST_VERBOSE"))
        fprintf(stderr, "%-18s r clipped %zu inside %zu, d clipped %zu inside %zu, bkn mixed "
                "%zu guarded %zu, mabn r clamped %zu inside %zu, agc clipped %zu kept %zu\n",
                tc->name, rclip, rin, dclip, din, mixed, guarded, mclamp, min_, clip, keep);
    if (tc->expect & X_RCLIP)
        ck_assert_msg(rclip > 0, "%s: no BRN r was clipped", tc->name);
    if (tc->expect & X_DCLIP)
        ck_assert_msg(dclip > 0, "%s: no BRN d was clipped", tc->name);
    if (tc->expect & X_INSIDE)
        ck_assert_msg(rin > 0 && din > 0, "%s: BRN r or d clipped everywhere", tc->name);
    if (tc->expect & X_MIXED)
        ck_assert_msg(mixed > 0, "%s: no BKN group used the prediction", tc->name);
    if (tc->expect & X_GUARD)
        ck_assert_msg(guarded > 0 && mixed == 0, "%s: the BKN guard did not refuse the "
                      "prediction", tc->name);
    if (tc->expect & X_CLAMP)
        ck_assert_msg(mclamp > 0 && min_ > 0, "%s: MABN r clamped in %zu channels, not in %zu",
                      tc->name, mclamp, min_);
    if (tc->expect & X_AGC)
        ck_assert_msg(clip > 0 && keep > 0, "%s: AGC clipped %zu rows and kept %zu", tc->name,
                      clip, keep);
    if (tc->expect & X_PROJ) {
        /* after the last step every projected row has zero mean */
        size_t layers = 0;
        for (size_t i = 0; i < net->nlayers; i++) {
            const ns_layer *L = &net->layers[i];
            if (!ns_layer_weight_mean(L))
                continue;
            layers++;
            const ns_tensor *W = &L->param[0];
            size_t rows = W->dims[0], fan = W->size / rows;
            for (size_t o = 0; o < rows; o++) {
                double s = 0, mx = 0;
                for (size_t k = 0; k < fan; k++) {
                    s += W->data[o * fan + k];
                    mx = fmax(mx, fabs((double)W->data[o * fan + k]));
                }
                ck_assert_msg(fabs(s / (double)fan) <= 10 * TOL * mx,
                              "%s: %s row %zu has mean %g", tc->name, L->name, o, s / (double)fan);
            }
        }
        ck_assert_msg(layers > 0, "%s: no layer is projected", tc->name);
    }
}

START_TEST(test_against_torch)
{
    const tcase *tc = &cases[_i];
    ck_assert_msg(ref_problem[0] == '\0', "%s: %s", tc->name, ref_problem);
    ns_net *net = NULL;
    ns_real *x;
    int32_t *y;
    ck_assert_msg(make_case(tc, &net, &x, &y) == NS_OK, "%s: %s", tc->name, ns_errmsg());
    double losses[16];
    size_t clip = 0, keep = 0;
    ck_assert(nbatches(tc) <= 16);
    ck_assert_msg(run_case(tc, net, x, y, losses, &clip, &keep) == NS_OK, "%s: %s", tc->name,
                  ns_errmsg());
    size_t nz = tc->n * tc->nout;

    hid_t f = H5Fopen(out_path((size_t)_i), H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_msg(f >= 0, "cannot open '%s'", out_path((size_t)_i));
    double *ref = ns_test_read_ref(f, "/logits", nz);
    ns_test_compare(tc->name, "logits", ns_net_logits(net), ref, nz, 0, TOL);
    free(ref);
    ns_real l[16];
    for (size_t k = 0; k < nbatches(tc); k++)
        l[k] = (ns_real)losses[k];
    ref = ns_test_read_ref(f, tc->steps ? "/losses" : "/loss", nbatches(tc));
    ns_test_compare(tc->name, "loss", l, ref, nbatches(tc), 0, TOL);
    free(ref);
    /* gradients (parameters after steps): relative to each tensor's
     * largest, floored at 1e-3 of the network's largest; gradients that
     * vanish exactly are rounding noise on both sides, compared to the
     * largest gradient */
    double gmax = 0, pmax = 0;
    for (size_t i = 0; i < net->nparams; i++) {
        gmax = fmax(gmax, fabs((double)net->grads[i]));
        pmax = fmax(pmax, fabs((double)net->params[i]));
    }
    char path[128];
    for (size_t i = 0; i < net->nlayers; i++) {
        const ns_layer *L = &net->layers[i];
        for (int t = 0; t < L->nparam; t++) {
            const ns_tensor *T = &L->param[t];
            if (tc->steps) {
                /* parameters after the steps */
                snprintf(path, sizeof path, "/param/%s/%s", L->name, T->name);
                ref = ns_test_read_ref(f, path, T->size);
                ns_test_compare(tc->name, path, T->data, ref, T->size, 1e-3 * pmax, TOL);
            } else {
                snprintf(path, sizeof path, "/grad/%s/%s", L->name, T->name);
                ref = ns_test_read_ref(f, path, T->size);
                int zero = !strcmp(T->name, "bias") && bias_vanishes(net, i, tc->mode, f);
                ns_test_compare(tc->name, path, T->grad, ref, T->size,
                                zero ? gmax : 1e-3 * gmax, TOL);
            }
            free(ref);
        }
        for (int t = 0; t < L->nstate; t++) {
            snprintf(path, sizeof path, "/state/%s/%s", L->name, L->state[t].name);
            ref = ns_test_read_ref(f, path, L->state[t].size);
            ns_test_compare(tc->name, path, L->state[t].data, ref, L->state[t].size, 0, TOL);
            free(ref);
        }
    }
    check_expectations(tc, net, f, clip, keep);
    H5Fclose(f);
    free(x);
    free(y);
    ns_net_free(net);
}
END_TEST

static Suite *norm_torch2_suite(void)
{
    Suite *s = suite_create("norm-torch2");
    TCase *tc = tcase_create("reference");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_against_torch, 0, (int)NCASES);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    ns_set_threads(2);
    /* One interpreter for every case, before the tests fork. */
    compute_references();
    return ns_test_run(norm_torch2_suite());
}
