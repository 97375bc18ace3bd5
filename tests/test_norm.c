/*
 * Tests of the normalization layers beyond plain BN (src/norm): GroupNorm,
 * LayerNorm and InstanceNorm (groupnorm.c), FRN + TLU (frn.c), psBN's
 * post-shift and UBN's condensation gate (batchnorm.c), and the registry
 * behind --norm (registry.c).  BN itself is tested in test_nn.c, the
 * PyTorch cross-checks of these layers are in test_norm_torch.c.
 *
 * Gradient checks (double build): each method sits in the `norm` slot of a
 * tiny network behind a parametrised layer, and the analytic gradients of
 * L = sum_k r_k z_k over the logits z with fixed random r (or the real
 * softmax cross-entropy for whole networks) are compared with central
 * differences (step 1e-6): every parameter, including FRN's learned eps,
 * and the network input, whose gradient comes from calling the first
 * layer's backward.  Normalisation parameters are random, not 1 and 0.
 * FRN cases assert that the TLU passes some entries and clamps others, and
 * that no pre-activation lies within 1e-5 of its threshold (the kink).
 * In the float build the same cases check finite, non-zero values.
 *
 * Property tests (both builds): psBN = BN + alpha with BN's gradients and
 * running statistics in every mode; UBN = BN in output and gradients, its
 * condensation against a hand computation, the gate on the running
 * statistics; GN/LN/IN and FRN forward passes by hand, no batch dependence
 * and no state; the group-count fallback; the acc flag of every backward;
 * error messages; every registry entry on an mlp and a cnn.
 */
#include "testutil.h"

#include "normscope/nn.h"
#include "normscope/norm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TLU_MARGIN 1e-5 /* nearest FRN pre-activation to its threshold: a step of
                        * 1e-6 moves one by about gamma / rms(x) * 1e-6 */

#ifdef NS_DOUBLE
#define REL_TOL 1e-12  /* hand-computed references */
#else
#define REL_TOL 2e-5
#endif

/* ---------------------------------------------------------------- helpers */

/* The input of layer L of net for the last forward. */
static const ns_real *layer_input(const ns_net *net, const ns_layer *L)
{
    return L->src < 0 ? net->input : net->act[L->src];
}

/* FRN's pre-TLU value gamma x / sqrt(nu2 + eps) + beta of every entry of
 * layer L (n samples of input x) into v, by hand in double. */
static void frn_by_hand(const ns_layer *L, const ns_real *x, size_t n, double eps0, double *v)
{
    size_t C = L->in_c, P = L->in_h * L->in_w;
    const ns_tensor *eps_l = ns_test_find_tensor((ns_tensor *)L->param, L->nparam, "eps");
    double eps = eps0 + (eps_l ? fabs((double)eps_l->data[0]) : 0);
    for (size_t ic = 0; ic < n * C; ic++) {
        size_t c = ic % C;
        double s = 0;
        for (size_t j = 0; j < P; j++)
            s += (double)x[ic * P + j] * x[ic * P + j];
        double inv = 1 / sqrt(s / (double)P + eps);
        for (size_t j = 0; j < P; j++)
            v[ic * P + j] = L->param[0].data[c] * x[ic * P + j] * inv + L->param[1].data[c];
    }
}

/* Over every FRN layer of net after a forward on n samples: the nearest
 * pre-TLU value to its threshold and the fraction the TLU passes. */
static void tlu_margin(const ns_net *net, size_t n, double *margin, double *active)
{
    size_t pass = 0, total = 0;
    *margin = INFINITY;
    for (size_t i = 0; i < net->nlayers; i++) {
        const ns_layer *L = &net->layers[i];
        if (!ns_test_is_kind(L, "frn"))
            continue;
        size_t C = L->in_c, P = L->in_h * L->in_w, len = n * C * P;
        double *v = malloc(len * sizeof *v);
        ck_assert_ptr_nonnull(v);
        frn_by_hand(L, layer_input(net, L), n, net->opts.frn_eps, v);
        for (size_t q = 0; q < len; q++) {
            double d = v[q] - L->param[2].data[(q / P) % C];
            *margin = fabs(d) < *margin ? fabs(d) : *margin;
            pass += d > 0;
        }
        total += len;
        free(v);
    }
    *active = total ? (double)pass / (double)total : NAN;
}

/* ------------------------------------------------------ gradient cases */

#define TR NS_MODE_TRAIN
#define EV NS_MODE_EVAL
#define BA NS_MODE_BATCH
/* What fills `norm` slots: method m, GroupNorm with g groups, FRN with
 * learned eps e (0: fixed eps), weight standardization with GN of g groups. */
#define NO(m) {.norm = m}
#define GN(g) {.norm = "gn", .groups = g}
#define FRN(e) {.norm = "frn", .eps_l = e}
#define WS(g) {.norm = "ws", .groups = g}
/* BKN: prediction from the last group (1) or per group (0), gradient
 * through the prediction, normalisation groups, mixing weight */
#define BKN(last, grad, grp) {.norm = "bkn", .bkn_last = last, .bkn_grad = grad, .group = grp}
#define BKN_P(last, grad, grp, p) {.norm = "bkn", .bkn_last = last, .bkn_grad = grad, \
                                   .group = grp, .bkn_p = p}
#define BKN_CONV "conv3x3:4,norm,relu,conv3x3:3/2,norm,relu,conv3x3:3,norm,fc:out"
#define BKN_DENSE "fc:6,norm,relu,fc:5,norm,relu,fc:4,norm,fc:out"

static const ns_test_gcase cases[] = {
    /* GroupNorm on maps: 8 channels in groups of 4 and of 2; 6 channels
     * with 4 groups asked (3 used); more groups asked than channels (= IN) */
    {"gn2-conv", "conv3x3:8,norm,fc:out", GN(2), 2, 5, 5, 3, 3, BA, 0, 0},
    {"gn4-conv", "conv3x3:8,norm,fc:out", GN(4), 2, 5, 5, 3, 3, BA, 0, 0},
    {"gn4-conv-train", "conv3x3:8,norm,fc:out", GN(4), 2, 5, 5, 3, 3, TR, 0, 0},
    {"gn4-conv-eval", "conv3x3:8,norm,fc:out", GN(4), 2, 5, 5, 3, 3, EV, 0, 0},
    {"gn-fallback", "conv3x3:6,norm,fc:out", GN(4), 2, 5, 5, 3, 3, BA, 0, 0},
    {"gn-over", "conv3x3:3/2,norm,fc:out", GN(32), 2, 5, 5, 3, 3, BA, 0, 0},
    {"gn-first", "norm,conv3x3:2,fc:out", GN(2), 4, 4, 4, 3, 3, BA, 0, 0},
    /* GroupNorm on dense activations: groups of 4 features (of 2 the
     * normalised pair is +-1 whatever x, a degenerate check) */
    {"gn2-dense", "fc:8,norm,fc:out", GN(2), 2, 3, 3, 3, 4, BA, 0, 0},
    {"gn3-dense", "fc:12,norm,fc:out", GN(3), 2, 3, 3, 3, 4, BA, 0, 0},
    /* LayerNorm on maps and dense activations */
    {"ln-conv", "conv3x3:4,norm,fc:out", NO("ln"), 2, 5, 5, 3, 3, BA, 0, 0},
    {"ln-dense", "fc:6,norm,fc:out", NO("ln"), 2, 3, 3, 3, 4, BA, 0, 0},
    {"ln-dense-eval", "fc:6,norm,fc:out", NO("ln"), 2, 3, 3, 3, 4, EV, 0, 0},
    {"ln-first", "norm,fc:out", NO("ln"), 2, 3, 3, 3, 4, BA, 0, 0},
    /* InstanceNorm on maps, 5x5 and 3x3 */
    {"in-conv", "conv3x3:4,norm,fc:out", NO("in"), 2, 5, 5, 3, 3, BA, 0, 0},
    {"in-conv-s2", "conv3x3:3/2,norm,fc:out", NO("in"), 2, 5, 5, 3, 3, BA, 0, 0},
    {"in-first", "norm,conv3x3:2,fc:out", NO("in"), 2, 4, 4, 3, 3, BA, 0, 0},
    /* FRN + TLU: fixed eps on maps; learned eps (both signs) on 1x1 */
    {"frn-conv", "conv3x3:4,norm,fc:out", FRN(0), 2, 5, 5, 3, 3, BA, 0, 0},
    {"frn-conv-s2", "conv3x3:4/2,norm,fc:out", FRN(0), 2, 5, 5, 3, 3, BA, 0, 0},
    {"frn-conv-train", "conv3x3:4,norm,fc:out", FRN(0), 2, 5, 5, 3, 3, TR, 0, 0},
    {"frn-first", "norm,fc:out", FRN(0), 2, 3, 3, 3, 4, BA, 0, 0},
    {"frn-dense", "fc:6,norm,fc:out", FRN(0.3), 2, 3, 3, 3, 5, BA, 0, 0},
    {"frn-dense-neg-eps", "fc:6,norm,fc:out", FRN(-0.2), 2, 3, 3, 3, 5, BA, 0, 0},
    {"frn-dense-eval", "fc:6,norm,fc:out", FRN(0.05), 2, 3, 3, 3, 5, EV, 0, 0},
    /* psBN in every mode, maps and dense */
    {"psbn-conv-train", "conv3x3:3,norm,fc:out", NO("psbn"), 2, 5, 5, 3, 4, TR, 0, 0},
    {"psbn-conv-eval", "conv3x3:3,norm,fc:out", NO("psbn"), 2, 5, 5, 3, 4, EV, 0, 0},
    {"psbn-conv-batch", "conv3x3:3,norm,fc:out", NO("psbn"), 2, 5, 5, 3, 4, BA, 0, 0},
    {"psbn-dense-train", "fc:6,norm,fc:out", NO("psbn"), 2, 3, 3, 3, 5, TR, 0, 0},
    {"psbn-dense-eval", "fc:6,norm,fc:out", NO("psbn"), 2, 3, 3, 3, 5, EV, 0, 0},
    /* UBN in training mode (the gate acts on running statistics only) */
    {"ubn-conv-train", "conv3x3:3,norm,fc:out", NO("ubn"), 2, 5, 5, 3, 4, TR, 0, 0},
    {"ubn-dense-train", "fc:6,norm,fc:out", NO("ubn"), 2, 3, 3, 3, 5, TR, 0, 0},
    /* weight rules: reparametrisations inside the forward pass (gradients
     * flow through them), MimicNorm's network rewrite, batch-mode BRN/MABN */
    {"nf-dense", "fc:6,relu,fc:5,relu,fc:out", NO("nf"), 2, 3, 3, 3, 4, BA, 0, 0},
    {"nf-conv", "conv3x3:4,relu,conv3x3:3/2,relu,fc:out", NO("nf"), 2, 5, 5, 3, 3, BA, 0, 0},
    {"ws-conv", "conv3x3:4,norm,relu,conv3x3:4,norm,fc:out", WS(2), 2, 5, 5, 3, 3, BA, 0, 0},
    {"ws-dense", "fc:8,norm,relu,fc:8,norm,relu,fc:out", WS(2), 2, 3, 3, 3, 4, BA, 0, 0},
    {"cenconv-conv", "conv3x3:4,norm,relu,conv3x3:3,norm,fc:out", NO("cenconv"), 2, 5, 5, 3, 4, BA, 0, 0},
    {"mimic-mlp", "mlp:16x2", NO("mimic"), 1, 4, 4, 5, 6, BA, 1, 0},
    {"mimic-res", "conv3x3:4,norm,relu,res:4,res:6/2,gap,fc:out", NO("mimic"), 2, 6, 6, 3, 5, BA, 1, 0},
    {"mabn-batch", "conv3x3:4,norm,relu,fc:6,norm,fc:out", NO("mabn"), 2, 5, 5, 3, 4, BA, 0, 0},
    {"brn-batch", "conv3x3:4,norm,relu,fc:6,norm,fc:out", NO("brn"), 2, 5, 5, 3, 4, BA, 0, 0},
    {"ic-mlp", "mlp:8x2", NO("ic"), 1, 3, 3, 4, 5, BA, 1, 0},
    /* PowerNorm in batch mode: the exact gradient of x / sqrt(E[x^2] + eps) */
    {"pn-conv", "conv3x3:4,norm,relu,fc:6,norm,fc:out", NO("pn"), 2, 5, 5, 3, 4, BA, 0, 0},
    /* BKN with its prediction frozen (it is a constant in backward) */
    {"bkn-dense", "fc:6,norm,relu,fc:5,norm,fc:out", NO("bkn"), 2, 3, 3, 3, 6, BA, 0, 0},
    {"bkn-conv", "conv3x3:4,norm,relu,conv3x3:3/2,norm,fc:out", NO("bkn"), 2, 5, 5, 3, 4, BA, 0, 0},
    /* ... in groups of 2 and 4, each group predicted from its own group of
     * the previous layer (the default) or all from its last group */
    {"bkn-conv-g2", BKN_CONV, BKN(0, 0, 2), 2, 5, 5, 3, 6, BA, 0, 0},
    {"bkn-conv-g4-train", BKN_CONV, BKN(0, 0, 4), 2, 5, 5, 3, 12, TR, 0, 0},
    {"bkn-conv-last-g2", BKN_CONV, BKN(1, 0, 2), 2, 5, 5, 3, 6, BA, 0, 0},
    {"bkn-conv-last-g4", BKN_CONV, BKN(1, 0, 4), 2, 5, 5, 3, 12, TR, 0, 0},
    {"bkn-dense-g2", BKN_DENSE, BKN(0, 0, 2), 2, 3, 3, 3, 6, TR, 0, 0},
    /* with the gradient through the prediction: into the weight layer and
     * through the pseudo-input into the previous layer's statistics (p 0.5
     * for the whole batch, where the default 0.05 would hide it) */
    {"bkn-conv-grad", BKN_CONV, BKN_P(0, 1, 0, 0.5), 2, 5, 5, 3, 4, BA, 0, 0},
    {"bkn-conv-grad-g2", BKN_CONV, BKN(0, 1, 2), 2, 5, 5, 3, 6, BA, 0, 0},
    {"bkn-conv-grad-g2-train", BKN_CONV, BKN(0, 1, 2), 2, 5, 5, 3, 6, TR, 0, 0},
    {"bkn-conv-grad-g4", BKN_CONV, BKN(0, 1, 4), 2, 5, 5, 3, 12, TR, 0, 0},
    {"bkn-conv-last-grad-g2", BKN_CONV, BKN(1, 1, 2), 2, 5, 5, 3, 6, BA, 0, 0},
    {"bkn-conv-last-grad-g4", BKN_CONV, BKN(1, 1, 4), 2, 5, 5, 3, 12, TR, 0, 0},
    {"bkn-dense-grad-g2", BKN_DENSE, BKN(0, 1, 2), 2, 3, 3, 3, 6, TR, 0, 0},
    {"bkn-dense-last-grad", BKN_DENSE, BKN_P(1, 1, 0, 0.5), 2, 3, 3, 3, 6, BA, 0, 0},
    {"bkn-res-grad-g2", "conv3x3:4,norm,relu,res:4,res:6/2,gap,fc:out", BKN(0, 1, 2), 2, 6, 6,
     3, 6, BA, 0, 0},
    {"cnn-bkn-grad-g2", "cnn", BKN(0, 1, 2), 1, 8, 8, 5, 6, TR, 1, 16},
    {"cnn-bkn-g4", "cnn", BKN(0, 0, 4), 1, 8, 8, 5, 8, TR, 1, 16},
    /* whole networks with the real loss */
    {"mlp-gn4", "mlp:16x2", GN(4), 1, 4, 4, 5, 6, BA, 1, 0},
    {"mlp-ln", "mlp:16x2", NO("ln"), 1, 4, 4, 5, 6, BA, 1, 0},
    {"mlp-frn", "mlp:16x2", FRN(0.1), 1, 4, 4, 5, 6, BA, 1, 0},
    {"mlp-psbn", "mlp:16x2", NO("psbn"), 1, 4, 4, 5, 6, TR, 1, 0},
    {"mlp-ubn", "mlp:16x2", NO("ubn"), 1, 4, 4, 5, 6, TR, 1, 0},
    {"cnn-gn4", "cnn", GN(4), 1, 8, 8, 5, 4, BA, 1, 16},
    {"cnn-ln", "cnn", NO("ln"), 1, 8, 8, 5, 4, BA, 1, 16},
    {"cnn-in", "cnn", NO("in"), 1, 8, 8, 5, 4, BA, 1, 16},
    {"cnn-frn", "cnn", FRN(0), 1, 8, 8, 5, 4, BA, 1, 16},
    {"cnn-psbn-eval", "cnn", NO("psbn"), 1, 8, 8, 5, 4, EV, 1, 16},
};
#define NCASES (sizeof cases / sizeof *cases)

/* The case's network holds the method asked for in its norm slots. */
static void assert_method(const ns_test_gprob *p)
{
    static const struct { const char *norm, *kind; } kinds[] = {
        {"gn", "gn"}, {"ln", "ln"}, {"in", "in"}, {"frn", "frn"}, {"psbn", "bn"}, {"ubn", "bn"},
        {"ws", "gn"}, {"cenconv", "bn"}, {"mimic", "bn"}, {"mabn", "mabn"}, {"brn", "bn"},
        {"ic", "bn"}, {"nf", ""}, {"bkn", "bkn"}, {"pn", "pn"}};
    const char *kind = NULL;
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++)
        if (!strcmp(kinds[k].norm, p->gc->no.norm))
            kind = kinds[k].kind;
    ck_assert_ptr_nonnull(kind);
    size_t found = 0;
    for (size_t i = 0; i < p->net->nlayers; i++)
        if (ns_layer_is_norm(&p->net->layers[i])) {
            ck_assert_msg(ns_test_is_kind(&p->net->layers[i], kind), "%s: %s in a norm slot",
                          p->gc->name, p->net->layers[i].name);
            found++;
        }
    ck_assert_msg(found > 0 || !kind[0], "%s: no normalization layer", p->gc->name);
    /* Reparametrising methods reparametrise some layer. */
    const char *norm = p->gc->no.norm;
    if (!strcmp(norm, "nf") || !strcmp(norm, "ws") || !strcmp(norm, "cenconv") ||
        !strcmp(norm, "mabn")) {
        size_t nrule = 0;
        for (size_t i = 0; i < p->net->nlayers; i++)
            nrule += ns_layer_wrule(&p->net->layers[i]) != NS_WRULE_NONE;
        ck_assert_msg(nrule > 0, "%s: no layer with a weight rule", p->gc->name);
    }
}

/* FRN cases: the TLU passes some entries and clamps others, none near the
 * kink (a difference step across it would not be a derivative). */
static void assert_tlu_mixed(const ns_test_gprob *p)
{
    double margin, active;
    tlu_margin(p->net, p->gc->n, &margin, &active);
    if (isnan(active))
        return;
    ck_assert_msg(active > 0.1 && active < 0.9, "%s: the TLU passes %.0f%% of the entries",
                  p->gc->name, 100 * active);
    ck_assert_msg(margin > TLU_MARGIN, "%s: a pre-activation lies %.3g from its threshold",
                  p->gc->name, margin);
}

/* BKN cases outside eval mode: some group of some layer mixed its
 * prediction in (else the prediction and its gradient go unchecked), and
 * with groups every layer that predicts ran in the groups asked for. */
static void assert_bkn_mixed(const ns_test_gprob *p)
{
    const ns_test_gcase *gc = p->gc;
    if (strcmp(gc->no.norm, "bkn") != 0 || gc->mode == NS_MODE_EVAL)
        return;
    size_t mixed = 0, want = gc->no.group ? (gc->n + gc->no.group - 1) / gc->no.group : 1;
    for (size_t i = 0; i < p->net->nlayers; i++) {
        const ns_layer *L = &p->net->layers[i];
        if (!ns_test_is_kind(L, "bkn"))
            continue;
        size_t ng;
        mixed += ns_bkn_mixed(L, &ng);
        ck_assert_msg(ng == want, "%s: %s ran in %zu groups, not %zu", gc->name, L->name, ng,
                      want);
    }
    ck_assert_msg(mixed > 0, "%s: no BKN group used its prediction", gc->name);
}

#ifdef NS_DOUBLE
/* Every parameter, each normalization parameter with a non-zero gradient,
 * and the input against central differences. */
START_TEST(test_gradients)
{
    const ns_test_gcase *gc = &cases[_i];
    ns_test_gprob p;
    ns_test_gprob_init(&p, gc);
    assert_method(&p);
    ns_test_gprob_analytic_keep_state(&p);
    assert_tlu_mixed(&p);
    assert_bkn_mixed(&p);
    size_t norm_checked;
    ns_test_gprob_check_all(&p, &norm_checked);
    /* nf and mimic have no affine normalization layer: their own parameters
     * (gains, residual scalars) are among those checked. */
    ck_assert_msg(norm_checked >= 2 || !strcmp(gc->no.norm, "nf") ||
                      !strcmp(gc->no.norm, "mimic"),
                  "%s: no normalization parameters checked", gc->name);
    ns_test_gprob_release(&p);
}
END_TEST
#endif /* NS_DOUBLE */

/* Both builds: forward and backward run and give finite, non-zero values. */
START_TEST(test_finite)
{
    ns_test_gprob p;
    ns_test_gprob_init(&p, &cases[_i]);
    assert_method(&p);
    ns_test_gprob_analytic(&p);
    assert_tlu_mixed(&p);
    assert_bkn_mixed(&p);
    ns_test_gprob_check_finite(&p);
    ns_test_gprob_release(&p);
}
END_TEST

/* ----------------------------------------------- one forward and backward */

/* A network with its batch, the upstream gradient and the results of one
 * forward/backward in a given mode. */
typedef struct pass {
    ns_net *net;
    size_t n, nin, nz;
    ns_real *x, *dl;
    ns_real *z, *g, *gx, *s0;   /* logits, parameter and input gradient, state before */
} pass;

static void pass_init(pass *q, const char *arch, const ns_test_nopts *no, size_t c, size_t h,
                      size_t w, size_t nout, size_t n, double xshift)
{
    memset(q, 0, sizeof *q);
    q->net = ns_test_build(arch, no, c, h, w, nout, n);
    ns_test_randomize_norm(q->net, no->eps_l, 77);
    q->n = n;
    q->nin = n * c * h * w;
    q->nz = n * nout;
    q->x = malloc(q->nin * sizeof *q->x);
    q->dl = malloc(q->nz * sizeof *q->dl);
    q->z = malloc(q->nz * sizeof *q->z);
    q->g = malloc((q->net->nparams + 1) * sizeof *q->g);
    q->gx = malloc(q->nin * sizeof *q->gx);
    q->s0 = malloc((q->net->nstate + 1) * sizeof *q->s0);
    ck_assert(q->x && q->dl && q->z && q->g && q->gx && q->s0);
    ns_rng r;
    ns_rng_seed(&r, 31, 4);
    ns_test_fill_normal(q->x, q->nin, &r, 1.1, xshift);
    ns_test_fill_normal(q->dl, q->nz, &r, 1.0, 0.1);
    memcpy(q->s0, q->net->state, q->net->nstate * sizeof *q->s0);
}

/* Forward and backward in `mode`; results into z, g, gx. */
static void pass_run(pass *q, ns_mode mode)
{
    ns_net *net = q->net;
    ns_ctx ctx = {mode, 3, 1};
    ck_assert_msg(ns_net_forward(net, q->x, q->n, &ctx) == NS_OK, "%s", ns_errmsg());
    memcpy(q->z, ns_net_logits(net), q->nz * sizeof *q->z);
    ns_net_zero_grad(net);
    ns_net_backward(net, q->dl);
    memcpy(q->g, net->grads, net->nparams * sizeof *q->g);
    ns_layer *L0 = &net->layers[0];
    const ns_real *dy0 = net->nlayers == 1 ? q->dl : net->dact[0];
    L0->ops->backward(L0, q->gx, NULL, 0, dy0, net->act[0], q->x, q->n);
}

static void pass_release(pass *q)
{
    ns_net_free(q->net);
    free(q->x);
    free(q->dl);
    free(q->z);
    free(q->g);
    free(q->gx);
    free(q->s0);
}

/* ----------------------------------------------------------------- psBN */

/* psBN against BN on the same network: the output is BN's plus alpha, the
 * gradients (parameters and input) and the running statistics are BN's. */
static void check_psbn_vs_bn(const char *arch, size_t c, size_t h, size_t w, size_t nout,
                             ns_mode mode)
{
    const ns_test_nopts bn = NO("bn"), ps = NO("psbn");
    pass a, b;
    pass_init(&a, arch, &bn, c, h, w, nout, 5, 0.3);
    pass_init(&b, arch, &ps, c, h, w, nout, 5, 0.3);
    ck_assert_uint_eq(a.net->nparams, b.net->nparams);
    ck_assert(memcmp(a.net->params, b.net->params, a.net->nparams * sizeof(ns_real)) == 0);
    pass_run(&a, mode);
    pass_run(&b, mode);
    const double alpha = b.net->opts.psbn_alpha;
    ck_assert(alpha == 0.1);
    for (size_t i = 0; i < a.nz; i++)
        ck_assert_msg(fabs((double)b.z[i] - (double)a.z[i] - alpha) < REL_TOL * 10,
                      "%s mode %d: output[%zu] psbn %.12g, bn %.12g", arch, (int)mode, i,
                      (double)b.z[i], (double)a.z[i]);
    ck_assert_msg(memcmp(a.g, b.g, a.net->nparams * sizeof(ns_real)) == 0,
                  "%s mode %d: psbn parameter gradients differ from bn's", arch, (int)mode);
    ck_assert_msg(memcmp(a.gx, b.gx, a.nin * sizeof(ns_real)) == 0,
                  "%s mode %d: psbn input gradient differs from bn's", arch, (int)mode);
    ck_assert_msg(memcmp(a.net->state, b.net->state, a.net->nstate * sizeof(ns_real)) == 0,
                  "%s mode %d: psbn running statistics differ from bn's", arch, (int)mode);
    if (mode == NS_MODE_TRAIN)
        ck_assert(memcmp(a.s0, a.net->state, a.net->nstate * sizeof(ns_real)) != 0);
    pass_release(&a);
    pass_release(&b);
}

START_TEST(test_psbn_is_bn_plus_alpha)
{
    static const ns_mode modes[3] = {NS_MODE_TRAIN, NS_MODE_EVAL, NS_MODE_BATCH};
    for (int m = 0; m < 3; m++) {
        /* the norm layer last, so its output is the logits */
        check_psbn_vs_bn("conv3x3:3,norm", 2, 5, 5, 75, modes[m]);
        check_psbn_vs_bn("fc:6,norm", 2, 3, 3, 6, modes[m]);
    }
}
END_TEST

/* The shift follows --psbn-alpha, and a collapsed channel (gamma = beta = 0)
 * feeds alpha to the next ReLU, which then passes gradient. */
START_TEST(test_psbn_alpha_revives)
{
    ns_net_opts o;
    ns_net_opts_default(&o);
    snprintf(o.norm, sizeof o.norm, "psbn");
    o.psbn_alpha = 0.25;
    o.max_batch = 4;
    ns_net *net = NULL;
    ck_assert_int_eq(ns_net_build("fc:3,norm,relu,fc:out", &o, 1, 2, 2, 2, &net), NS_OK);
    ns_init ini = {NS_INIT_TORCH, 0, 0};
    ns_net_init(net, &ini, 5);
    ns_layer *L = &net->layers[1];
    ns_test_fill_const(L->param[0].data, 3, 0);   /* collapsed: gamma = beta = 0 */
    ns_test_fill_const(L->param[1].data, 3, 0);
    ns_real x[16], dl[8];
    ns_rng r;
    ns_rng_seed(&r, 2, 0);
    ns_test_fill_normal(x, 16, &r, 1, 0);
    ns_test_fill_normal(dl, 8, &r, 1, 0);
    ns_ctx ctx = {NS_MODE_TRAIN, 1, 0};
    ck_assert_int_eq(ns_net_forward(net, x, 4, &ctx), NS_OK);
    for (size_t i = 0; i < 12; i++)
        ck_assert_msg(fabs(net->act[1][i] - 0.25) < REL_TOL, "psbn output %g, expected alpha",
                      (double)net->act[1][i]);
    ns_net_zero_grad(net);
    ns_net_backward(net, dl);
    ck_assert_msg(ns_test_max_abs(L->param[0].grad, 3) > 0,
                  "a collapsed psbn channel gets no gradient");
    ns_net_free(net);
}
END_TEST

/* ------------------------------------------------------------------ UBN */

/* mean_{i != j} cos(f_i, f_j) over the flattened samples of x, by hand;
 * the cosine with an all-zero sample counts as 0 (torch's
 * cosine_similarity gives 0 there too). */
static double condensation_by_hand(const ns_real *x, size_t n, size_t size)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            if (i == j)
                continue;
            double dot = 0, ni = 0, nj = 0;
            for (size_t k = 0; k < size; k++) {
                double a = x[i * size + k], b = x[j * size + k];
                dot += a * b;
                ni += a * a;
                nj += b * b;
            }
            if (ni > 0 && nj > 0)
                s += dot / sqrt(ni * nj);
        }
    return s / ((double)n * (double)(n - 1));
}

/* The condensation metric of layer L (NAN if it reports none). */
static double condensation_of(const ns_layer *L)
{
    double v[4];
    const char *names[4];
    if (!L->ops->metrics || L->ops->metrics(L, v, names, 4) < 1)
        return NAN;
    ck_assert_str_eq(names[0], "condensation");
    return v[0];
}

static const char *ubn_arch = "conv3x3:4,norm,relu,fc:8,norm,relu,fc:out";

START_TEST(test_ubn_condensation_by_hand)
{
    const ns_test_nopts ubn = NO("ubn");
    pass q;
    pass_init(&q, ubn_arch, &ubn, 2, 5, 5, 3, 6, 0.2);
    pass_run(&q, NS_MODE_TRAIN);
    size_t seen = 0;
    for (size_t i = 0; i < q.net->nlayers; i++) {
        const ns_layer *L = &q.net->layers[i];
        if (!ns_layer_is_norm(L))
            continue;
        double ref = condensation_by_hand(layer_input(q.net, L), q.n, ns_layer_in_size(L));
        double got = condensation_of(L);
        if (getenv("NS_TEST_VERBOSE"))
            fprintf(stderr, "%s condensation %.12g, by hand %.12g\n", L->name, got, ref);
        ck_assert_msg(fabs(got - ref) < 1e-9, "%s: condensation %.12g, by hand %.12g", L->name,
                      got, ref);
        ck_assert(fabs(ref) > 1e-3);   /* a value that tells something */
        seen++;
    }
    ck_assert_uint_eq(seen, 2);
    pass_release(&q);
}
END_TEST

/* n copies of one sample: every pair has cosine 1. */
START_TEST(test_ubn_condensation_identical)
{
    const ns_test_nopts ubn = NO("ubn");
    pass q;
    pass_init(&q, ubn_arch, &ubn, 2, 5, 5, 3, 4, 0.2);
    size_t size = 2 * 5 * 5;
    for (size_t i = 1; i < q.n; i++)
        memcpy(q.x + i * size, q.x, size * sizeof *q.x);
    pass_run(&q, NS_MODE_TRAIN);
    for (size_t i = 0; i < q.net->nlayers; i++)
        if (ns_layer_is_norm(&q.net->layers[i])) {
            double c = condensation_of(&q.net->layers[i]);
            ck_assert_msg(fabs(c - 1) < 1e-12, "%s: condensation of identical samples %.15g",
                          q.net->layers[i].name, c);
        }
    pass_release(&q);
}
END_TEST

/* A sample whose BN input is all zero has no direction: its pairs count
 * as cosine 0, they do not pull the mean below the other pairs' value. */
START_TEST(test_ubn_condensation_zero_sample)
{
    const ns_test_nopts ubn = NO("ubn");
    pass q;
    pass_init(&q, "norm,fc:out", &ubn, 2, 3, 3, 3, 4, 0.5);
    size_t size = 2 * 3 * 3;
    ns_test_fill_const(q.x + 2 * size, size, 0);   /* sample 2 is zero */
    pass_run(&q, NS_MODE_TRAIN);
    double ref = condensation_by_hand(q.x, q.n, size);
    double got = condensation_of(&q.net->layers[0]);
    ck_assert_msg(fabs(got - ref) < 1e-9, "condensation with a zero sample %.12g, by hand %.12g",
                  got, ref);
    /* two samples, one zero: no pair has a cosine */
    q.n = 2;
    memcpy(q.x + size, q.x + 2 * size, size * sizeof *q.x);
    pass_run(&q, NS_MODE_TRAIN);
    got = condensation_of(&q.net->layers[0]);
    ck_assert_msg(fabs(got) < 1e-12, "condensation of a sample and a zero %.12g", got);
    pass_release(&q);
}
END_TEST

/* The metric: named "condensation", NAN before any training pass and for
 * a single sample, untouched by eval and batch passes; plain BN reports
 * nothing. */
START_TEST(test_ubn_metrics)
{
    const ns_test_nopts ubn = NO("ubn"), bn = NO("bn");
    pass q;
    pass_init(&q, ubn_arch, &ubn, 2, 5, 5, 3, 5, 0.2);
    ns_layer *L = &q.net->layers[1];
    ck_assert(ns_layer_is_norm(L) && ns_test_is_kind(L, "bn"));
    ck_assert_ptr_nonnull(L->ops->metrics);
    double v[2] = {0, 0};
    const char *names[2] = {NULL, NULL};
    ck_assert_uint_eq(L->ops->metrics(L, v, names, 2), 1);
    ck_assert_str_eq(names[0], "condensation");
    ck_assert_msg(isnan(v[0]), "condensation before training %g", v[0]);
    ck_assert_uint_eq(L->ops->metrics(L, v, names, 0), 0);
    pass_run(&q, NS_MODE_TRAIN);
    double c = condensation_of(L);
    ck_assert(isfinite(c));
    q.x[0] += 1;   /* another batch: eval and batch passes must not measure it */
    pass_run(&q, NS_MODE_EVAL);
    ck_assert(condensation_of(L) == c);
    pass_run(&q, NS_MODE_BATCH);
    ck_assert(condensation_of(L) == c);
    pass_release(&q);
    /* one sample (of maps, so BN has values to normalise): no pairs */
    pass_init(&q, "conv3x3:4,norm,relu,fc:out", &ubn, 2, 5, 5, 3, 1, 0.2);
    pass_run(&q, NS_MODE_TRAIN);
    ck_assert(isnan(condensation_of(&q.net->layers[1])));
    pass_release(&q);
    pass_init(&q, ubn_arch, &bn, 2, 5, 5, 3, 5, 0.2);
    pass_run(&q, NS_MODE_TRAIN);
    L = &q.net->layers[1];
    ck_assert(!L->ops->metrics || L->ops->metrics(L, v, names, 2) == 0);
    pass_release(&q);
}
END_TEST

/* UBN against BN in training mode: identical outputs and gradients
 * whatever the gate does; running statistics BN's when the threshold is
 * above the measured condensation, the initial ones (and no count) when
 * it is below. */
START_TEST(test_ubn_gate)
{
    const ns_test_nopts bn = NO("bn"), ubn = NO("ubn");
    pass a, b;
    pass_init(&a, ubn_arch, &bn, 2, 5, 5, 3, 6, 1.0);
    pass_init(&b, ubn_arch, &ubn, 2, 5, 5, 3, 6, 1.0);
    ck_assert(memcmp(a.s0, b.s0, a.net->nstate * sizeof(ns_real)) == 0);
    /* measure the condensation of each layer on this batch */
    pass_run(&b, NS_MODE_TRAIN);
    double cond[2];
    ns_layer *U[2];
    size_t k = 0;
    for (size_t i = 0; i < b.net->nlayers; i++)
        if (ns_layer_is_norm(&b.net->layers[i])) {
            ck_assert(k < 2);
            U[k] = &b.net->layers[i];
            cond[k] = condensation_of(U[k]);
            ck_assert_msg(cond[k] > 0.02, "%s: condensation %g is too small to gate",
                          U[k]->name, cond[k]);
            k++;
        }
    ck_assert_uint_eq(k, 2);
    for (int above = 0; above < 2; above++) {
        /* fresh running statistics in both networks */
        memcpy(a.net->state, a.s0, a.net->nstate * sizeof(ns_real));
        memcpy(b.net->state, b.s0, b.net->nstate * sizeof(ns_real));
        for (k = 0; k < 2; k++)
            ns_bn_set_condensation_gate(U[k], above ? cond[k] * 1.01 : cond[k] * 0.99);
        pass_run(&a, NS_MODE_TRAIN);
        pass_run(&b, NS_MODE_TRAIN);
        ck_assert_msg(memcmp(a.z, b.z, a.nz * sizeof(ns_real)) == 0,
                      "ubn output differs from bn's (threshold %s)", above ? "above" : "below");
        ck_assert_msg(memcmp(a.g, b.g, a.net->nparams * sizeof(ns_real)) == 0,
                      "ubn gradients differ from bn's (threshold %s)", above ? "above" : "below");
        ck_assert_msg(memcmp(a.gx, b.gx, a.nin * sizeof(ns_real)) == 0,
                      "ubn input gradient differs from bn's");
        for (k = 0; k < 2; k++)
            ck_assert(fabs(condensation_of(U[k]) - cond[k]) < 1e-12);
        if (above) {
            ck_assert_msg(memcmp(a.net->state, b.net->state, a.net->nstate * sizeof(ns_real)) == 0,
                          "ubn below its threshold does not update like bn");
            ck_assert(memcmp(b.s0, b.net->state, b.net->nstate * sizeof(ns_real)) != 0);
        } else {
            ck_assert_msg(memcmp(b.s0, b.net->state, b.net->nstate * sizeof(ns_real)) == 0,
                          "ubn above its threshold changed the running statistics "
                          "or num_batches_tracked");
            ck_assert(memcmp(a.s0, a.net->state, a.net->nstate * sizeof(ns_real)) != 0);
        }
    }
    /* one gated layer, one not: each layer decides alone */
    memcpy(b.net->state, b.s0, b.net->nstate * sizeof(ns_real));
    ns_bn_set_condensation_gate(U[0], cond[0] * 0.99);
    ns_bn_set_condensation_gate(U[1], cond[1] * 1.01);
    pass_run(&b, NS_MODE_TRAIN);
    for (int t = 0; t < U[0]->nstate; t++)
        ck_assert(memcmp(U[0]->state[t].data, b.s0 + (U[0]->state[t].data - b.net->state),
                         U[0]->state[t].size * sizeof(ns_real)) == 0);
    ck_assert(memcmp(U[1]->state[0].data, b.s0 + (U[1]->state[0].data - b.net->state),
                     U[1]->state[0].size * sizeof(ns_real)) != 0);
    ck_assert(U[1]->state[2].data[0] == 1);
    pass_release(&a);
    pass_release(&b);
}
END_TEST

/* --fct reaches the gate: with 0.5 a batch of near-identical
 * samples (condensation about 1) keeps the running statistics. */
START_TEST(test_ubn_fct_option)
{
    const ns_test_nopts low = {.norm = "ubn", .fct = 0.5},
                        high = {.norm = "ubn", .fct = 0.9999999};
    for (int h = 0; h < 2; h++) {
        pass q;
        pass_init(&q, "fc:6,norm,fc:out", h ? &high : &low, 2, 3, 3, 3, 4, 3.0);
        pass_run(&q, NS_MODE_TRAIN);
        ns_layer *L = &q.net->layers[1];
        double c = condensation_of(L);
        ck_assert_msg(c > 0.5 && c < 0.9999999, "condensation %g", c);
        int same = memcmp(q.s0, q.net->state, q.net->nstate * sizeof(ns_real)) == 0;
        ck_assert_msg(same == !h, "fct %g, condensation %g: running statistics %s",
                      q.net->opts.fct, c, same ? "kept" : "updated");
        pass_release(&q);
    }
}
END_TEST

/* PowerNorm after warm-up: forward with the running quadratic mean of the
 * previous step, backward (g - nu xhat) / psi, nu updated as Algorithm 1. */
START_TEST(test_pn_running_backward)
{
    ns_net_opts o;
    ns_net_opts_default(&o);
    snprintf(o.norm, sizeof o.norm, "pn");
    o.pn_warmup = 0;
    o.max_batch = 6;
    ns_net *net;
    ck_assert_int_eq(ns_net_build("fc:3,norm,fc:out", &o, 2, 1, 1, 4, &net), NS_OK);
    ns_init ini = {NS_INIT_TORCH, 0, 0};
    ns_net_init(net, &ini, 9);
    ns_layer *L = &net->layers[1];
    ck_assert_str_eq(L->ops->kind, "pn");
    L->param[0].data[0] = (ns_real)1.7;
    L->state[0].data[1] = (ns_real)2.385;   /* running psi^2 */
    L->state[1].data[1] = (ns_real)0.31;    /* nu */
    ns_real x[12], dl[24];
    ns_rng r;
    ns_rng_seed(&r, 3, 0);
    ns_test_fill_normal(x, 12, &r, 1.1, 0.2);
    ns_test_fill_normal(dl, 24, &r, 1.0, 0);
    ns_ctx ctx = {NS_MODE_TRAIN, 1, 0};
    ck_assert_int_eq(ns_net_forward(net, x, 6, &ctx), NS_OK);
    const ns_real *h = net->act[0], *yv = net->act[1];
    double psi = sqrt(2.385 + 1e-5);
    for (size_t i = 0; i < 6; i++)
        ns_test_assert_close(yv[i * 3 + 1], h[i * 3 + 1] / psi + L->param[1].data[1], 1e-5,
                     "pn y", i);
    ns_net_zero_grad(net);
    ns_net_backward(net, dl);
    const ns_real *g = net->dact[1], *dx = net->dact[0];
    double sxx = 0, sgx = 0;
    for (size_t i = 0; i < 6; i++) {
        double xh = h[i * 3 + 1] / psi;
        sxx += xh * xh;
        sgx += g[i * 3 + 1] * xh;
        ns_test_assert_close(dx[i * 3 + 1], (g[i * 3 + 1] - 0.31 * xh) / psi, 1e-5, "pn dx", i);
    }
    double lam = sgx / 6 - 0.31 * sxx / 6;
    double nu = 0.31 * (1 - 0.1 * sxx / 6) + 0.1 * lam;
    ns_test_assert_close(L->state[1].data[1], nu, 1e-5, "pn nu", 0);
    ns_net_free(net);
}
END_TEST

/* ------------------------------------------------------ GN, LN, IN, FRN */

/* GroupNorm forward by hand with G groups: per sample and group, over the
 * C/G channels and the map, biased variance, eps 1e-5. */
static double gn_by_hand_error(const ns_layer *L, const ns_real *x, const ns_real *y, size_t n,
                               size_t G)
{
    size_t C = L->in_c, P = L->in_h * L->in_w, len = C / G * P;
    double worst = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < G; k++) {
            const ns_real *xp = x + i * C * P + k * len;
            const ns_real *yp = y + i * C * P + k * len;
            double s = 0, ss = 0;
            for (size_t j = 0; j < len; j++)
                s += xp[j];
            double mu = s / (double)len;
            for (size_t j = 0; j < len; j++)
                ss += (xp[j] - mu) * (xp[j] - mu);
            double is = 1 / sqrt(ss / (double)len + 1e-5);
            for (size_t j = 0; j < len; j++) {
                size_t c = k * (C / G) + j / P;
                double ref = L->param[0].data[c] * (xp[j] - mu) * is + L->param[1].data[c];
                double e = fabs(yp[j] - ref) / (fabs(ref) > 1 ? fabs(ref) : 1);
                worst = e > worst ? e : worst;
            }
        }
    return worst;
}

typedef struct gn_by_hand_case {
    const char *arch;
    ns_test_nopts no;
    size_t c, h, w, G;   /* the groups normscope must use */
} gn_by_hand_case;

static const gn_by_hand_case gn_hand[] = {
    {"norm", GN(4), 8, 5, 4, 4},
    {"norm", GN(2), 8, 3, 3, 2},
    {"norm", GN(4), 6, 4, 4, 3},    /* fallback: largest divisor of 6 not above 4 */
    {"norm", GN(5), 12, 2, 3, 4},   /* 5 -> 4 */
    {"norm", GN(7), 7, 2, 2, 7},    /* = C */
    {"norm", GN(32), 5, 3, 3, 5},   /* more than C -> C */
    {"norm", GN(4), 16, 1, 1, 4},   /* dense, groups of 4 */
    {"norm", GN(7), 16, 1, 1, 4},   /* dense: 7 -> 4 */
    {"norm", NO("ln"), 6, 4, 4, 1},
    {"norm", NO("ln"), 9, 1, 1, 1},
    {"norm", NO("in"), 6, 4, 4, 6},
    {"norm", NO("in"), 3, 2, 1, 3},
    /* a large map: the threaded path */
    {"norm", GN(4), 16, 32, 32, 4},
};
#define NGNHAND (sizeof gn_hand / sizeof *gn_hand)

START_TEST(test_gn_by_hand)
{
    const gn_by_hand_case *hc = &gn_hand[_i];
    const size_t n = 5, size = hc->c * hc->h * hc->w;
    ns_set_threads(2);
    ns_net *net = ns_test_build(hc->arch, &hc->no, hc->c, hc->h, hc->w, size, n);
    ns_test_randomize_norm(net, 0, 8);
    ns_real *x = malloc(n * size * sizeof *x);
    ck_assert_ptr_nonnull(x);
    ns_rng r;
    ns_rng_seed(&r, 8, 0);
    ns_test_fill_normal(x, n * size, &r, 1.4, 0.7);
    ns_ctx ctx = {NS_MODE_TRAIN, 1, 0};
    ck_assert_int_eq(ns_net_forward(net, x, n, &ctx), NS_OK);
    double e = gn_by_hand_error(&net->layers[0], x, ns_net_logits(net), n, hc->G);
    ck_assert_msg(e < REL_TOL * 10, "%s %zux%zux%zu, %zu groups: error %.3g", hc->no.norm,
                  hc->c, hc->h, hc->w, hc->G, e);
    free(x);
    ns_net_free(net);
}
END_TEST

/* 6 channels with 4 groups asked behave exactly as 3 groups asked, and
 * unlike 2 or 6. */
START_TEST(test_gn_fallback_equals_divisor)
{
    const size_t n = 3, C = 6, size = C * 4 * 4;
    ns_real *y[4], *x = malloc(n * size * sizeof *x);
    ck_assert_ptr_nonnull(x);
    ns_rng r;
    ns_rng_seed(&r, 9, 0);
    ns_test_fill_normal(x, n * size, &r, 1.0, 0.4);
    static const size_t asked[4] = {4, 3, 2, 6};
    for (int k = 0; k < 4; k++) {
        ns_test_nopts no = GN(asked[k]);
        ns_net *net = ns_test_build("conv3x3:6,norm,fc:out", &no, C, 4, 4, 5, n);
        ns_test_randomize_norm(net, 0, 8);
        ns_ctx ctx = {NS_MODE_TRAIN, 1, 0};
        ck_assert_int_eq(ns_net_forward(net, x, n, &ctx), NS_OK);
        y[k] = malloc(n * 5 * sizeof **y);
        ck_assert_ptr_nonnull(y[k]);
        memcpy(y[k], ns_net_logits(net), n * 5 * sizeof **y);
        ns_net_free(net);
    }
    ck_assert_msg(memcmp(y[0], y[1], n * 5 * sizeof **y) == 0, "gn 4 of 6 differs from gn 3");
    ck_assert(memcmp(y[0], y[2], n * 5 * sizeof **y) != 0);
    ck_assert(memcmp(y[0], y[3], n * 5 * sizeof **y) != 0);
    for (int k = 0; k < 4; k++)
        free(y[k]);
    free(x);
}
END_TEST

/* LN is GN with one group; IN is GN with a group per channel. */
START_TEST(test_ln_in_are_gn)
{
    const size_t n = 3, C = 6, size = C * 3 * 3;
    ns_real *x = malloc(n * size * sizeof *x), *ref = malloc(n * size * sizeof *ref);
    ck_assert(x && ref);
    ns_rng r;
    ns_rng_seed(&r, 10, 0);
    ns_test_fill_normal(x, n * size, &r, 1.0, 0.4);
    const ns_test_nopts pairs[2][2] = {{GN(1), NO("ln")}, {GN(6), NO("in")}};
    for (int p = 0; p < 2; p++)
        for (int k = 0; k < 2; k++) {
            ns_net *net = ns_test_build("norm", &pairs[p][k], C, 3, 3, size, n);
            ns_test_randomize_norm(net, 0, 8);
            ns_ctx ctx = {NS_MODE_TRAIN, 1, 0};
            ck_assert_int_eq(ns_net_forward(net, x, n, &ctx), NS_OK);
            if (k == 0)
                memcpy(ref, ns_net_logits(net), n * size * sizeof *ref);
            else
                ck_assert_msg(memcmp(ref, ns_net_logits(net), n * size * sizeof *ref) == 0,
                              "%s differs from gn", pairs[p][k].norm);
            ck_assert_str_eq(net->layers[0].ops->kind, pairs[p][k].norm);
            ns_net_free(net);
        }
    free(x);
    free(ref);
}
END_TEST

/* FRN + TLU take the place of BN + ReLU: the builder leaves out a relu right
 * after an FRN layer (not one after a residual add or an explicit bn slot),
 * and --frn-relu keeps it. */
static size_t count_kind(const ns_net *net, const char *kind)
{
    size_t k = 0;
    for (size_t i = 0; i < net->nlayers; i++)
        k += ns_test_is_kind(&net->layers[i], kind) != 0;
    return k;
}

START_TEST(test_frn_tlu_replaces_relu)
{
    static const struct { const char *arch; size_t relu, relu_kept, frn; } tlu_cases[] = {
        {"cnn", 0, 3, 3},
        {"mlp:8x2", 0, 2, 2},
        {"resnet8", 3, 7, 9},   /* the relu after each residual add stays */
        {"conv3x3:4,norm,relu,conv3x3:4,bn,relu,gap,fc:out", 1, 2, 1},
        {"conv3x3:4,norm,tanh,gap,fc:out", 0, 0, 1},
    };
    for (size_t k = 0; k < sizeof tlu_cases / sizeof *tlu_cases; k++)
        for (int keep = 0; keep < 2; keep++) {
            ns_net_opts o;
            ns_net_opts_default(&o);
            snprintf(o.norm, sizeof o.norm, "frn");
            o.frn_relu = keep;
            o.max_batch = 2;
            ns_net *net = NULL;
            ck_assert_int_eq(ns_net_build(tlu_cases[k].arch, &o, 1, 8, 8, 10, &net), NS_OK);
            ck_assert_uint_eq(count_kind(net, "frn"), tlu_cases[k].frn);
            ck_assert_msg(count_kind(net, "relu") == (keep ? tlu_cases[k].relu_kept : tlu_cases[k].relu),
                          "%s, frn_relu %d: %zu relu layers", tlu_cases[k].arch, keep,
                          count_kind(net, "relu"));
            ns_net_free(net);
        }
    /* Other methods keep every relu. */
    ns_net_opts o;
    ns_net_opts_default(&o);
    snprintf(o.norm, sizeof o.norm, "gn");
    o.max_batch = 2;
    ns_net *net = NULL;
    ck_assert_int_eq(ns_net_build("cnn", &o, 1, 8, 8, 10, &net), NS_OK);
    ck_assert_uint_eq(count_kind(net, "relu"), 3);
    ns_net_free(net);
}
END_TEST

/* FRN forward by hand: z = max(gamma x / sqrt(nu2 + eps) + beta, tau);
 * learned eps (a parameter "eps", init 1e-4, used as |eps| + eps0) on 1x1
 * maps only; --frn-eps sets eps0. */
START_TEST(test_frn_by_hand)
{
    static const struct { size_t c, h, w; double eps0, eps_l; int learned; } fc[] = {
        {3, 4, 4, 1e-6, 0, 0}, {3, 1, 2, 1e-3, 0, 0}, {5, 1, 1, 1e-6, 0, 1},
        {5, 1, 1, 1e-6, -0.2, 1}, {4, 1, 1, 0.01, 0.3, 1}, {8, 32, 40, 1e-6, 0, 0}};   /* the last threaded */
    ns_set_threads(2);
    for (size_t k = 0; k < sizeof fc / sizeof *fc; k++) {
        const size_t n = 4, C = fc[k].c, P = fc[k].h * fc[k].w, len = n * C * P;
        ns_net_opts o;
        ns_net_opts_default(&o);
        snprintf(o.norm, sizeof o.norm, "frn");
        o.frn_eps = fc[k].eps0;
        o.max_batch = n;
        ns_net *net = NULL;
        ck_assert_int_eq(ns_net_build("norm", &o, C, fc[k].h, fc[k].w, C * P, &net), NS_OK);
        ns_init ini = {NS_INIT_TORCH, 0, 0};
        ns_net_init(net, &ini, 1);
        ns_layer *L = &net->layers[0];
        ck_assert_str_eq(L->ops->kind, "frn");
        ck_assert_int_eq(L->nparam, 3 + fc[k].learned);
        ck_assert_str_eq(L->param[2].name, "tau");
        ck_assert_uint_eq(net->nstate, 0);
        if (fc[k].learned) {
            ck_assert_str_eq(L->param[3].name, "eps");
            ck_assert_uint_eq(L->param[3].size, 1);
            ck_assert(fabs(L->param[3].data[0] - 1e-4) < 1e-10);
        }
        ns_test_randomize_norm(net, fc[k].eps_l, 12);
        ns_real *x = malloc(len * sizeof *x);
        double *v = malloc(len * sizeof *v);
        ck_assert(x && v);
        ns_rng r;
        ns_rng_seed(&r, 3, k);
        ns_test_fill_normal(x, len, &r, 0.8, 0.1);
        ns_ctx ctx = {NS_MODE_TRAIN, 1, 0};
        ck_assert_int_eq(ns_net_forward(net, x, n, &ctx), NS_OK);
        frn_by_hand(L, x, n, fc[k].eps0, v);
        const ns_real *z = ns_net_logits(net);
        size_t clamped = 0;
        for (size_t q = 0; q < len; q++) {
            double tau = L->param[2].data[(q / P) % C];
            clamped += v[q] <= tau;
            ns_test_assert_close(z[q], v[q] > tau ? v[q] : tau, REL_TOL * 10, "frn output", q);
        }
        ck_assert_msg(clamped > 0 && clamped < len, "the TLU clamped %zu of %zu", clamped, len);
        free(x);
        free(v);
        ns_net_free(net);
    }
}
END_TEST

/* GN, LN, IN and FRN have no batch dependence and no state: every mode
 * gives the same output, and a sample alone gives what it gives in a batch. */
START_TEST(test_no_batch_dependence)
{
    static const struct { const char *arch; ns_test_nopts no; size_t c, h, w; } bc[] = {
        {"conv3x3:8,norm,relu,fc:out", GN(4), 2, 5, 5},
        {"fc:8,norm,relu,fc:out", GN(2), 2, 3, 3},
        {"conv3x3:4,norm,relu,fc:out", NO("ln"), 2, 5, 5},
        {"fc:6,norm,relu,fc:out", NO("ln"), 2, 3, 3},
        {"conv3x3:4,norm,relu,fc:out", NO("in"), 2, 5, 5},
        {"conv3x3:4,norm,relu,fc:out", FRN(0), 2, 5, 5},
        {"fc:6,norm,relu,fc:out", FRN(0.1), 2, 3, 3},
    };
    for (size_t k = 0; k < sizeof bc / sizeof *bc; k++) {
        const size_t n = 5, nout = 3, size = bc[k].c * bc[k].h * bc[k].w;
        ns_net *net = ns_test_build(bc[k].arch, &bc[k].no, bc[k].c, bc[k].h, bc[k].w, nout, n);
        ck_assert_uint_eq(net->nstate, 0);
        ns_test_randomize_norm(net, bc[k].no.eps_l, 8);
        ns_real *x = malloc(n * size * sizeof *x), *z = malloc(n * nout * sizeof *z);
        ck_assert(x && z);
        ns_rng r;
        ns_rng_seed(&r, 4, k);
        ns_test_fill_normal(x, n * size, &r, 1.2, 0.3);
        ns_ctx ctx = {NS_MODE_TRAIN, 1, 0};
        ck_assert_int_eq(ns_net_forward(net, x, n, &ctx), NS_OK);
        memcpy(z, ns_net_logits(net), n * nout * sizeof *z);
        for (int m = 1; m <= 2; m++) {
            ctx.mode = m == 1 ? NS_MODE_EVAL : NS_MODE_BATCH;
            ck_assert_int_eq(ns_net_forward(net, x, n, &ctx), NS_OK);
            ck_assert_msg(memcmp(z, ns_net_logits(net), n * nout * sizeof *z) == 0,
                          "%s %s: mode %d differs from train", bc[k].no.norm, bc[k].arch, m);
        }
        ctx.mode = NS_MODE_TRAIN;
        for (size_t i = 0; i < n; i++) {
            ck_assert_int_eq(ns_net_forward(net, x + i * size, 1, &ctx), NS_OK);
            for (size_t j = 0; j < nout; j++)
                ns_test_assert_close(ns_net_logits(net)[j], z[i * nout + j], REL_TOL, "alone", j);
        }
        free(x);
        free(z);
        ns_net_free(net);
    }
}
END_TEST

/* ------------------------------------------------------- acc semantics */

/* Every norm layer's backward: with acc 0 it overwrites dx (NaN before
 * must not leak), with acc 1 it adds to it; parameter gradients always
 * accumulate; backward leaves the state alone. */
static void check_acc(const char *arch, const ns_test_nopts *no, ns_mode mode)
{
    const size_t n = 4, nout = 3;
    ns_net *net = ns_test_build(arch, no, 2, 6, 6, nout, n);
    ns_test_randomize_norm(net, no->eps_l, 5);
    size_t nin = n * 2 * 6 * 6;
    ns_real *x = malloc(nin * sizeof *x), *dl = malloc(n * nout * sizeof *dl);
    ns_real *s0 = malloc((net->nstate + 1) * sizeof *s0);
    ns_real *g1 = malloc(net->nparams * sizeof *g1);
    ck_assert(x && dl && s0 && g1);
    ns_rng r;
    ns_rng_seed(&r, 6, 0);
    ns_test_fill_normal(x, nin, &r, 1.2, 0.1);
    ns_test_fill_normal(dl, n * nout, &r, 1.0, 0);
    ns_ctx ctx = {mode, 9, 2};
    ck_assert_int_eq(ns_net_forward(net, x, n, &ctx), NS_OK);
    ns_net_zero_grad(net);
    ns_net_backward(net, dl);   /* fills every dact */
    memcpy(s0, net->state, net->nstate * sizeof *s0);
    size_t checked = 0;
    for (size_t li = 0; li < net->nlayers; li++) {
        ns_layer *L = &net->layers[li];
        if (!ns_layer_is_norm(L))
            continue;
        const ns_real *in = layer_input(net, L);
        const ns_real *dy = net->dact[li];
        size_t len = n * ns_layer_in_size(L);
        ns_real *a = malloc(len * sizeof *a), *b = malloc(len * sizeof *b);
        ck_assert(a && b);
        ns_net_zero_grad(net);
        ns_test_fill_const(a, len, NAN);
        L->ops->backward(L, a, NULL, 0, dy, net->act[li], in, n);
        ck_assert_msg(ns_test_all_finite(a, len), "%s %s: backward with acc 0 reads dx", no->norm,
                      L->name);
        memcpy(g1, net->grads, net->nparams * sizeof *g1);
        ns_test_fill_const(b, len, 0.75);
        L->ops->backward(L, b, NULL, 1, dy, net->act[li], in, n);
        for (size_t i = 0; i < len; i++)
            ck_assert_msg(fabs(b[i] - a[i] - 0.75) <= 1e-5 * (1 + fabs(a[i])),
                          "%s %s: acc 1: dx[%zu] = %g, expected %g", no->norm, L->name, i,
                          (double)b[i], (double)a[i] + 0.75);
        /* acc bit 1 alone (dx2) still overwrites dx */
        ns_test_fill_const(b, len, NAN);
        L->ops->backward(L, b, NULL, 2, dy, net->act[li], in, n);
        ck_assert_msg(memcmp(a, b, len * sizeof *a) == 0, "%s %s: acc 2 does not overwrite dx",
                      no->norm, L->name);
        /* no dx wanted: parameter gradients only */
        L->ops->backward(L, NULL, NULL, 0, dy, net->act[li], in, n);
        for (size_t i = 0; i < net->nparams; i++)
            ck_assert_msg(fabs(net->grads[i] - 4 * g1[i]) <= 1e-5 * (1 + fabs(4 * g1[i])),
                          "%s %s: parameter gradients do not accumulate", no->norm, L->name);
        ck_assert_msg(ns_test_max_abs(g1, net->nparams) > 0, "%s %s: no parameter gradient",
                      no->norm, L->name);
        ck_assert_msg(memcmp(s0, net->state, net->nstate * sizeof *s0) == 0,
                      "%s %s: backward changed the state", no->norm, L->name);
        free(a);
        free(b);
        checked++;
    }
    ck_assert_uint_eq(checked, 2);
    free(x);
    free(dl);
    free(s0);
    free(g1);
    ns_net_free(net);
}

START_TEST(test_acc)
{
    static const char *mixed = "conv3x3:4,norm,relu,fc:8,norm,relu,fc:out";
    static const char *maps = "conv3x3:4,norm,relu,conv3x3:4/2,norm,relu,fc:out";
    static const ns_test_nopts gn = GN(2), ln = NO("ln"), in = NO("in"), frn = FRN(0.1),
                       psbn = NO("psbn"), ubn = NO("ubn");
    check_acc(mixed, &gn, NS_MODE_TRAIN);
    check_acc(mixed, &ln, NS_MODE_TRAIN);
    check_acc(maps, &in, NS_MODE_TRAIN);
    check_acc(mixed, &frn, NS_MODE_TRAIN);
    check_acc(maps, &frn, NS_MODE_EVAL);
    check_acc(mixed, &psbn, NS_MODE_TRAIN);
    check_acc(mixed, &psbn, NS_MODE_EVAL);
    check_acc(mixed, &ubn, NS_MODE_TRAIN);
    check_acc(mixed, &ubn, NS_MODE_BATCH);
}
END_TEST

/* ------------------------------------------------------------- errors */

typedef struct bad_norm {
    const char *arch;
    const char *norm;
    size_t groups;          /* gn_groups (0: default) */
    double bn_eps, frn_eps; /* 0: default */
    size_t c, h, w, nout;
    const char *why[3];     /* must all appear in the message */
} bad_norm;

static const bad_norm bad_norms[] = {
    /* instance normalization of a dense slot is identically zero */
    {"mlp:16x2", "in", 0, 0, 0, 1, 4, 4, 3, {"'norm'", "instance", "zero"}},
    {"conv3x3:4,gap,norm,fc:out", "in", 0, 0, 0, 1, 4, 4, 3, {"'norm'", "instance", "1x1"}},
    /* so is GroupNorm with a group per feature, and LayerNorm of one feature */
    {"fc:8,norm,fc:out", "gn", 8, 0, 0, 1, 4, 4, 3, {"'norm'", "group", "zero"}},
    {"mlp:16x2", "gn", 0, 0, 0, 1, 4, 4, 3, {"'norm'", "16 groups", "zero"}},
    {"fc:1,norm,fc:out", "ln", 0, 0, 0, 1, 4, 4, 3, {"'norm'", "layer", "zero"}},
    /* option values */
    {"conv3x3:4,norm,fc:out", "gn", (size_t)-1, 0, 0, 1, 4, 4, 3, {"'norm'", "group", NULL}},
    {"conv3x3:4,norm,fc:out", "gn", 0, -1, 0, 1, 4, 4, 3, {"'norm'", "eps", NULL}},
    {"conv3x3:4,norm,fc:out", "ln", 0, -1, 0, 1, 4, 4, 3, {"'norm'", "eps", NULL}},
    {"conv3x3:4,norm,fc:out", "in", 0, -1, 0, 1, 4, 4, 3, {"'norm'", "eps", NULL}},
    {"conv3x3:4,norm,fc:out", "frn", 0, 0, -1, 1, 4, 4, 3, {"'norm'", "FRN eps", NULL}},
    {"fc:4,norm,fc:out", "frn", 0, 0, -1, 1, 4, 4, 3, {"'norm'", "FRN eps", NULL}},
    {"fc:4,norm,fc:out", "psbn", 0, -1, 0, 1, 4, 4, 3, {"'norm'", "eps", NULL}},
    {"fc:4,norm,fc:out", "ubn", 0, -1, 0, 1, 4, 4, 3, {"'norm'", "eps", NULL}},
};
#define NBAD (sizeof bad_norms / sizeof *bad_norms)

START_TEST(test_build_errors)
{
    const bad_norm *b = &bad_norms[_i];
    ns_net_opts o;
    ns_net_opts_default(&o);
    snprintf(o.norm, sizeof o.norm, "%s", b->norm);
    /* (size_t)-1 stands for 0 groups, which the table uses for the default */
    if (b->groups)
        o.gn_groups = b->groups == (size_t)-1 ? 0 : b->groups;
    if (b->bn_eps)
        o.bn_eps = b->bn_eps < 0 ? 0 : b->bn_eps;
    if (b->frn_eps)
        o.frn_eps = b->frn_eps < 0 ? 0 : b->frn_eps;
    ns_net *net = (ns_net *)&o;   /* must be reset to NULL */
    ns_error_clear();
    int st = ns_net_build(b->arch, &o, b->c, b->h, b->w, b->nout, &net);
    ck_assert_msg(st == NS_EINVAL, "%s on '%s': status %d", b->norm, b->arch, st);
    ck_assert_ptr_null(net);
    const char *msg = ns_errmsg();
    for (int k = 0; k < 3 && b->why[k]; k++)
        ck_assert_msg(strstr(msg, b->why[k]), "%s on '%s': message lacks \"%s\": \"%s\"",
                      b->norm, b->arch, b->why[k], msg);
    ck_assert_msg(strlen(msg) > 0 && strlen(msg) < 240 && msg[strlen(msg) - 1] != '.',
                  "malformed message \"%s\"", msg);
}
END_TEST

/* -------------------------------------------------------------- registry */

/* Every method's option table: each entry a method option (NS_OPT_NET) with
 * a key, help, and an option taking a value or a 0/1 flag; its default and
 * its old-run value acceptable; option names and keys unique over all
 * tables and each table listed by one method; the keys a method reads
 * from others all exist; ns_net_opts_default holds every default. */
START_TEST(test_method_options)
{
    ns_net_opts def;
    ns_net_opts_default(&def);
    char why[256];
    size_t n = 0;
    const ns_opt *o;
    for (; (o = ns_norm_opt_at(n)); n++) {
        ck_assert_msg(o->flags & NS_OPT_NET, "%s: not in ns_net_opts", o->key);
        ck_assert_msg(o->key && *o->key && o->help && *o->help, "entry %zu: key or help", n);
        ck_assert_msg(!o->option != !o->flag, "%s: wants one option or one flag", o->key);
        if (o->option)
            ck_assert_msg(!strncmp(o->option, "--", 2) && (o->choices || o->arg),
                          "%s: option '%s' or its value's name", o->key, o->option);
        if (o->flag)
            ck_assert_msg(!strncmp(o->flag, "--", 2) && o->type == NS_OPT_INT && o->min == 0 &&
                          o->max == 1 && !o->choices && (o->def == 0 || o->def == 1),
                          "%s: a flag is a 0/1 int", o->key);
        if (o->choices)
            ck_assert_msg(o->type == NS_OPT_INT && o->nchoices >= 2, "%s: choices", o->key);
        else
            ck_assert_msg(!(o->flags & NS_OPT_BY_NAME), "%s: by name without names", o->key);
        ck_assert_msg(o->type != NS_OPT_U64, "%s: a method option is no u64", o->key);
        /* the default: from files always, typed unless it is the unset value */
        ck_assert_msg(ns_opt_check(o, o->def, 0, why, sizeof why) == 0, "%s default: %s",
                      o->key, why);
        if (!((o->flags & NS_OPT_UNSET) && o->def == o->unset) && !o->flag)
            ck_assert_msg(ns_opt_check(o, o->def, 1, why, sizeof why) == 0, "%s default: %s",
                          o->key, why);
        if (o->flags & NS_OPT_OLD)
            ck_assert_msg(ns_opt_check(o, o->old, 0, why, sizeof why) == 0, "%s old: %s",
                          o->key, why);
        ck_assert_msg(ns_opt_get(o, &def) == o->def, "%s: ns_net_opts_default holds %g, not %g",
                      o->key, ns_opt_get(o, &def), o->def);
        ck_assert_ptr_eq(ns_norm_opt_find(o->key), o);
        ck_assert_ptr_eq(ns_norm_opt_find(o->option ? o->option : o->flag), o);
        for (size_t k = 0; k < n; k++) {
            const ns_opt *p = ns_norm_opt_at(k);
            const char *a = o->option ? o->option : o->flag, *b = p->option ? p->option : p->flag;
            ck_assert_msg(strcmp(o->key, p->key) && strcmp(a, b) && o->offset != p->offset,
                          "%s and %s share a key, an option or a field", o->key, p->key);
        }
    }
    ck_assert_uint_ge(n, 20);
    ck_assert_ptr_null(ns_norm_opt_find("--bogus"));
    for (size_t i = 0; i < ns_norm_count(); i++) {
        const ns_norm_method *m = ns_norm_at(i);
        for (size_t k = 0; k < i && m->opts; k++)
            ck_assert_msg(ns_norm_at(k)->opts != m->opts, "%s lists the table of %s", m->name,
                          ns_norm_at(k)->name);
        /* every key of reads names an option declared elsewhere */
        size_t nkeys = 0, nread = 0;
        for (const char *p = m->reads; p && *p; p += strspn(p, " ")) {
            size_t len = strcspn(p, " ");
            char key[64];
            ck_assert_uint_lt(len, sizeof key);
            memcpy(key, p, len);
            key[len] = 0;
            const ns_opt *r = ns_norm_opt_find(key);
            ck_assert_msg(r, "%s reads '%s', which no method declares", m->name, key);
            for (size_t k = 0; m->opts && k < m->opts->n; k++)
                ck_assert_ptr_ne(r, &m->opts->opt[k]);
            nkeys++;
            p += len;
        }
        while (ns_norm_reads(m, nread))
            nread++;
        ck_assert_uint_eq(nread, (m->opts ? m->opts->n : 0) + nkeys);
    }
    /* what a few methods read */
    const ns_norm_method *bkn = ns_norm_find("bkn");
    ck_assert_str_eq(ns_norm_reads(bkn, 0)->key, "bkn_p");
    ck_assert_str_eq(ns_norm_reads(bkn, 5)->key, "bn_eps");
    ck_assert_ptr_null(ns_norm_reads(bkn, 6));
    ck_assert_ptr_null(ns_norm_reads(ns_norm_find("none"), 0));
    ck_assert_str_eq(ns_norm_reads(ns_norm_find("ws"), 0)->key, "gn_groups");
}
END_TEST

/* Declarations at work: strict parsing, choices by name, ranges and value
 * texts as messages and help show them. */
START_TEST(test_opt_parse_and_texts)
{
    ns_net_opts o;
    ns_net_opts_default(&o);
    char buf[256];
    const ns_opt *predict = ns_norm_opt_find("--bkn-predict");
    const ns_opt *grad = ns_norm_opt_find("bkn_grad");
    const ns_opt *p = ns_norm_opt_find("--bkn-p");
    ck_assert_int_eq(ns_opt_parse(predict, "last", &o), NS_OK);
    ck_assert_int_eq(o.bkn_predict, NS_BKN_PREDICT_LAST);
    ck_assert_int_eq(ns_opt_parse(predict, "1", &o), NS_EINVAL);
    ck_assert_str_eq(ns_errmsg(), "--bkn-predict is group or last, got '1'");
    ck_assert_int_eq(o.bkn_predict, NS_BKN_PREDICT_LAST);
    ck_assert_int_eq(ns_opt_parse(grad, "none", &o), NS_OK);
    ck_assert_int_eq(o.bkn_grad, 0);
    /* a choice by number in files, by name when typed or stored by name */
    ck_assert_int_eq(ns_opt_check(grad, 2, 0, buf, sizeof buf), -1);
    ck_assert_str_eq(buf, "must be 0 or 1, got 2");
    ck_assert_int_eq(ns_opt_check(grad, 1, 0, buf, sizeof buf), 0);
    ck_assert_int_eq(ns_opt_check(predict, 7, 0, buf, sizeof buf), -1);
    ck_assert_str_eq(buf, "must be group or last, got 7");
    ns_opt_range(grad, 1, buf, sizeof buf);
    ck_assert_str_eq(buf, "none or full");
    ns_opt_value_text(predict, NS_BKN_PREDICT_GROUP, buf, sizeof buf);
    ck_assert_str_eq(buf, "group");
    /* the unset value: from files, not typed */
    ck_assert_int_eq(ns_opt_check(p, -1, 0, buf, sizeof buf), 0);
    ck_assert_int_eq(ns_opt_check(p, -1, 1, buf, sizeof buf), -1);
    ck_assert_str_eq(buf, "must be a number in [0, 1], got -1");
    ck_assert_int_eq(ns_opt_check(p, 2.5, 0, buf, sizeof buf), -1);
    ck_assert_str_eq(buf, "must be a number in [0, 1] or -1, got 2.5");
    ck_assert_int_eq(ns_opt_parse(p, "0.35", &o), NS_OK);
    ck_assert_double_eq(o.bkn_p, 0.35);
    ck_assert_int_eq(ns_opt_parse(p, "0.35x", &o), NS_EINVAL);
    ck_assert_str_eq(ns_errmsg(), "--bkn-p expects a number, got '0.35x'");
    /* integers: decimal digits only */
    const ns_opt *k = ns_norm_opt_find("--bkn-samples");
    ck_assert_int_eq(ns_opt_parse(k, "+3", &o), NS_EINVAL);
    ck_assert_int_eq(ns_opt_parse(k, "0", &o), NS_EINVAL);
    ck_assert_str_eq(ns_errmsg(), "--bkn-samples must be an integer in 1..65536, got '0'");
    ck_assert_int_eq(ns_opt_parse(k, "17", &o), NS_OK);
    ck_assert_uint_eq(o.bkn_samples, 17);
    ns_opt_value_text(ns_norm_opt_find("bn_eps"), 1e-5, buf, sizeof buf);
    ck_assert_str_eq(buf, "1e-05");
    /* ns_opt_set and ns_opt_get on every type of field */
    ns_opt_set(k, &o, 5);
    ck_assert_double_eq(ns_opt_get(k, &o), 5);
    ns_opt_set(ns_norm_opt_find("frn_relu"), &o, 1);
    ck_assert_int_eq(o.frn_relu, 1);
    ns_opt_defaults(ns_bkn_options.opt, ns_bkn_options.n, &o);
    ck_assert_uint_eq(o.bkn_samples, 64);
    ck_assert_double_eq(o.bkn_p, -1);
}
END_TEST

/* Every registered method builds the mlp and the cnn (IN not the mlp: its
 * dense slots would be identically zero) and trains, evaluates and
 * backpropagates with finite values. */
START_TEST(test_registry)
{
    size_t count = ns_norm_count();
    ck_assert_uint_gt(count, 8);
    ck_assert_ptr_null(ns_norm_at(count));
    ck_assert_ptr_null(ns_norm_find("no-such-method"));
    static const char *expected[] = {"none", "bn", "gn", "ln", "in", "frn", "psbn", "ubn"};
    for (size_t k = 0; k < sizeof expected / sizeof *expected; k++)
        ck_assert_msg(ns_norm_find(expected[k]), "'%s' is not registered", expected[k]);
    for (size_t i = 0; i < count; i++) {
        const ns_norm_method *m = ns_norm_at(i);
        ck_assert_ptr_nonnull(m);
        ck_assert_ptr_eq(ns_norm_find(m->name), m);
        ck_assert_msg(m->summary && *m->summary && m->reference && *m->reference,
                      "'%s' lacks a summary or reference", m->name);
        for (int a = 0; a < 2; a++) {
            const char *arch = a ? "cnn" : "mlp:16x2";
            const size_t n = 4, c = 1, h = a ? 8 : 4, w = h, nout = 5, nin = n * c * h * w;
            ns_net_opts o;
            ns_net_opts_default(&o);
            snprintf(o.norm, sizeof o.norm, "%s", m->name);
            o.gn_groups = 4;   /* the 16 features of mlp:16x2 in groups of 4 */
            o.max_batch = n;
            ns_net *net = NULL;
            int st = ns_net_build(arch, &o, c, h, w, nout, &net);
            if (!a && !strcmp(m->name, "in")) {
                ck_assert_msg(st == NS_EINVAL, "in on an mlp: status %d", st);
                continue;
            }
            ck_assert_msg(st == NS_OK, "%s on %s: %s", m->name, arch, ns_errmsg());
            ns_init ini = {NS_INIT_TORCH, 0, 0};
            ns_net_init(net, &ini, 7);
            ns_real *x = malloc(nin * sizeof *x), *dl = malloc(n * nout * sizeof *dl);
            ck_assert(x && dl);
            ns_rng r;
            ns_rng_seed(&r, 1, i);
            ns_test_fill_normal(x, nin, &r, 1.0, 0.2);
            ns_test_fill_normal(dl, n * nout, &r, 0.5, 0);
            static const ns_mode modes[3] = {NS_MODE_TRAIN, NS_MODE_BATCH, NS_MODE_EVAL};
            for (int k = 0; k < 3; k++) {
                ns_ctx ctx = {modes[k], 1, 1};
                ck_assert_msg(ns_net_forward(net, x, n, &ctx) == NS_OK, "%s on %s: %s",
                              m->name, arch, ns_errmsg());
                ck_assert_msg(ns_test_all_finite(ns_net_logits(net), n * nout),
                              "%s on %s: logits", m->name, arch);
                ns_net_zero_grad(net);
                ns_net_backward(net, dl);
                ck_assert_msg(ns_test_all_finite(net->grads, net->nparams),
                              "%s on %s: gradients", m->name, arch);
                ck_assert_msg(ns_test_max_abs(net->grads, net->nparams) > 0,
                              "%s on %s: zero gradients", m->name, arch);
                ck_assert_msg(ns_test_all_finite(net->state, net->nstate), "%s on %s: state",
                              m->name, arch);
            }
            free(x);
            free(dl);
            ns_net_free(net);
        }
    }
}
END_TEST

/* BKN in resnet8: statistics are carried along the skip paths.  Every add
 * layer reads the branch's last BKN and the skip's source (the statistics
 * entering the block, or the projection shortcut's BKN); the BKN after a
 * block predicts from the add; a projection shortcut's BKN predicts from
 * the statistics entering its block, not from the branch.  After a forward
 * in train mode the add hands on the sums of both paths' statistics. */
START_TEST(test_bkn_residual_statistics)
{
    ns_net_opts o;
    ns_net_opts_default(&o);
    snprintf(o.norm, sizeof o.norm, "bkn");
    o.norm_group = 4;
    ns_net *net = NULL;
    ck_assert_int_eq(ns_net_build("resnet8", &o, 1, 8, 8, 10, &net), NS_OK);
    ns_init init = {.kind = NS_INIT_TORCH};
    ns_net_init(net, &init, 3);
    size_t nadd = 0, nproj = 0, nafter = 0;
    const ns_layer *Ls = net->layers;
    for (size_t i = 0; i < net->nlayers; i++) {
        const ns_layer *L = &Ls[i];
        if (strcmp(L->ops->kind, "add") == 0) {
            nadd++;
            ck_assert_ptr_eq(L->prev_norm, &Ls[L->src]);
            ck_assert_str_eq(L->prev_norm->ops->kind, "bkn");
            const ns_layer *S = &Ls[L->src2];
            if (strcmp(S->ops->kind, "bkn") == 0)   /* projection shortcut */
                ck_assert_ptr_eq(L->prev_norm2, S);
            else                                      /* identity: the block's input */
                ck_assert_ptr_eq(L->prev_norm2, Ls[L->src2 + 2].prev_norm);
            ck_assert_ptr_nonnull(L->prev_norm2);
        }
        if (strcmp(L->ops->kind, "bkn") != 0)
            continue;
        const ns_layer *W = &Ls[L->src];          /* the conv feeding it */
        if (W->src < 0)
            continue;
        const ns_layer *src = &Ls[W->src];        /* what the conv reads */
        if (strcmp(src->ops->kind, "relu") == 0 && src->src >= 0 &&
            strcmp(Ls[src->src].ops->kind, "add") == 0) {
            nafter++;
            ck_assert_ptr_eq(L->prev_norm, &Ls[src->src]);
        }
        if (W->param[0].ndim == 4 && W->param[0].dims[2] == 1) {
            nproj++;
            ck_assert_ptr_eq(L->prev_norm, Ls[W->src + 2].prev_norm);
        }
    }
    ck_assert_uint_eq(nadd, 3);
    ck_assert_uint_eq(nproj, 2);
    ck_assert_uint_eq(nafter, 4);   /* two BKN (branch, projection) after blocks 1 and 2 */

    size_t n = 8, in = 64;
    ns_real *x = malloc(n * in * sizeof *x);
    ns_rng r;
    ns_rng_seed(&r, 5, 0);
    for (size_t i = 0; i < n * in; i++)
        x[i] = (ns_real)ns_rng_normal(&r);
    ns_ctx ctx = {.mode = NS_MODE_TRAIN, .seed = 1, .step = 1};
    ck_assert_int_eq(ns_net_forward(net, x, n, &ctx), NS_OK);
    for (size_t i = 0; i < net->nlayers; i++) {
        const ns_layer *A = &net->layers[i];
        if (strcmp(A->ops->kind, "add") != 0)
            continue;
        size_t C = A->in_c;
        double *m = malloc(6 * C * sizeof *m), *v = m + C, *m1 = v + C, *v1 = m1 + C,
               *m2 = v1 + C, *v2 = m2 + C;
        /* two groups of 4, then none */
        for (size_t k = 0; k < 2; k++) {
            ck_assert(ns_bkn_carried(A, k, m, v, C));
            ck_assert(ns_bkn_carried(A->prev_norm, k, m1, v1, C));
            ck_assert(ns_bkn_carried(A->prev_norm2, k, m2, v2, C));
            for (size_t c = 0; c < C; c++) {
                ck_assert_double_eq_tol(m[c], m1[c] + m2[c], 1e-12 * (1 + fabs(m[c])));
                ck_assert_double_eq_tol(v[c], v1[c] + v2[c], 1e-12 * (1 + fabs(v[c])));
                ck_assert(v[c] > 0);
            }
        }
        ck_assert(!ns_bkn_carried(A, 2, m, v, C));
        free(m);
    }
    free(x);
    ns_net_free(net);
}
END_TEST

static Suite *norm_suite(void)
{
    Suite *s = suite_create("norm");
    TCase *tc = tcase_create("gradients");
    tcase_set_timeout(tc, 120);
#ifdef NS_DOUBLE
    tcase_add_loop_test(tc, test_gradients, 0, (int)NCASES);
#endif
    tcase_add_loop_test(tc, test_finite, 0, (int)NCASES);
    suite_add_tcase(s, tc);

    tc = tcase_create("psbn-ubn");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_psbn_is_bn_plus_alpha);
    tcase_add_test(tc, test_psbn_alpha_revives);
    tcase_add_test(tc, test_ubn_condensation_by_hand);
    tcase_add_test(tc, test_ubn_condensation_identical);
    tcase_add_test(tc, test_ubn_condensation_zero_sample);
    tcase_add_test(tc, test_ubn_metrics);
    tcase_add_test(tc, test_ubn_gate);
    tcase_add_test(tc, test_ubn_fct_option);
    tcase_add_test(tc, test_pn_running_backward);
    tcase_add_test(tc, test_bkn_residual_statistics);
    suite_add_tcase(s, tc);

    tc = tcase_create("gn-frn");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_gn_by_hand, 0, (int)NGNHAND);
    tcase_add_test(tc, test_gn_fallback_equals_divisor);
    tcase_add_test(tc, test_ln_in_are_gn);
    tcase_add_test(tc, test_frn_by_hand);
    tcase_add_test(tc, test_frn_tlu_replaces_relu);
    tcase_add_test(tc, test_no_batch_dependence);
    tcase_add_test(tc, test_acc);
    suite_add_tcase(s, tc);

    tc = tcase_create("build");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_build_errors, 0, (int)NBAD);
    tcase_add_test(tc, test_registry);
    tcase_add_test(tc, test_method_options);
    tcase_add_test(tc, test_opt_parse_and_texts);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* One thread: the networks here are tiny, and a parallel region per
     * layer call costs milliseconds on a loaded machine.  The tests of the
     * threaded paths (large maps) ask for two themselves. */
    ns_set_threads(1);
    return ns_test_run(norm_suite());
}
