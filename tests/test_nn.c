/*
 * Tests of the network engine (src/nn, src/norm/batchnorm.c).
 *
 * Gradient checks (double build): for every layer kind in every mode where
 * its behaviour differs, a tiny network is built from an architecture
 * string and the analytic gradients of a scalar objective are compared with
 * central differences (step 1e-6).  The objective is L = sum_k r_k z_k over
 * the logits z with fixed random r (so no gradient is special), or the real
 * softmax cross-entropy for whole networks.  Every parameter gradient is
 * checked (a random subset of each large tensor for whole networks), and so
 * is the gradient with respect to the network input, obtained by calling
 * the first layer's backward with an input-gradient buffer: the network
 * itself never computes it.  Each layer kind under test also sits behind a
 * parametrised layer, so its input-gradient code is checked through the
 * parameter gradients of the layers before it.  In the float build the same
 * cases only check that forward and backward run and give finite values.
 *
 * Property tests (both builds): running statistics and outputs of batch
 * normalization computed by hand, ghost groups, the acc flag of every
 * layer's backward, dropout masks, the loss, determinism, architecture
 * errors, layer names, activation memory and the parameter slab.
 */
#include "testutil.h"

#include "normscope/nn.h"
#include "normscope/norm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef NS_DOUBLE
#define REL_TOL 1e-12 /* hand-computed references */
#else
#define REL_TOL 2e-5
#endif

/* ---------------------------------------------------------------- helpers */

/* ns_test_build with the options of BN: `norm` in the slots, ghost groups
 * of `group` samples (0: the batch), affine parameters or not. */
static ns_net *build_net(const char *arch, const char *norm, size_t group, int affine,
                         size_t c, size_t h, size_t w, size_t nout, size_t max_batch)
{
    ns_test_nopts no = {.norm = norm, .group = group, .no_affine = !affine};
    return ns_test_build(arch, &no, c, h, w, nout, max_batch);
}

/* ------------------------------------------------------ gradient cases */

#define TR NS_MODE_TRAIN
#define EV NS_MODE_EVAL
#define BA NS_MODE_BATCH
/* What fills `norm` slots: BN with ghost groups of g samples (0: the
 * batch), with or without affine parameters, or nothing. */
#define BN(g) {.norm = "bn", .group = g}
#define BN_NOAFFINE(g) {.norm = "bn", .group = g, .no_affine = 1}
#define NONE {.norm = "none"}

static const ns_test_gcase cases[] = {
    /* dense, on a conv-shaped input (implicit flatten) */
    {"dense", "fc:6,fc:out", BN(0), 2, 5, 5, 3, 4, BA, 0, 0},
    {"dense-after-conv", "conv3x3:3,fc:out", BN(0), 2, 5, 5, 3, 4, BA, 0, 0},
    /* convolutions: 3x3 p1 s1, 3x3 s2, 1x1 direct, 1x1 s2 (im2col), 5x5 p0 */
    {"conv3x3", "conv3x3:3,conv3x3:4,fc:out", BN(0), 2, 5, 5, 3, 4, BA, 0, 0},
    {"conv3x3-s2", "conv3x3:3,conv3x3:4/2,fc:out", BN(0), 2, 5, 5, 3, 4, BA, 0, 0},
    {"conv1x1-direct", "conv3x3:3,conv1x1:4,fc:out", BN(0), 2, 5, 5, 3, 4, BA, 0, 0},
    {"conv1x1-s2", "conv3x3:3,conv1x1:4/2,fc:out", BN(0), 2, 5, 5, 3, 4, BA, 0, 0},
    {"conv5x5-p0", "conv3x3:3,conv5x5:2p0,fc:out", BN(0), 2, 6, 6, 3, 4, BA, 0, 0},
    {"conv3x3-p2-s3", "conv3x3:3,conv3x3:2/3p2,fc:out", BN(0), 2, 5, 5, 3, 3, BA, 0, 0},
    /* pooling, including overlapping windows and a ragged edge */
    {"maxpool", "conv3x3:3,maxpool:2,fc:out", BN(0), 2, 5, 5, 3, 4, BA, 0, 0},
    {"maxpool-3s2", "conv3x3:3,maxpool:3/2,fc:out", BN(0), 2, 5, 5, 3, 4, BA, 0, 0},
    {"avgpool", "conv3x3:3,avgpool:2,fc:out", BN(0), 2, 5, 5, 3, 4, BA, 0, 0},
    {"avgpool-3s1", "conv3x3:3,avgpool:3/1,fc:out", BN(0), 2, 5, 5, 3, 4, BA, 0, 0},
    {"gap", "conv3x3:3,gap,fc:out", BN(0), 2, 5, 5, 3, 4, BA, 0, 0},
    {"flatten", "conv3x3:3,flatten,fc:out", BN(0), 2, 5, 5, 3, 4, BA, 0, 0},
    /* activations */
    {"relu", "conv3x3:3,relu,fc:out", BN(0), 2, 5, 5, 3, 4, BA, 0, 0},
    {"lrelu", "conv3x3:3,lrelu:0.2,fc:out", BN(0), 2, 5, 5, 3, 4, BA, 0, 0},
    {"tanh", "conv3x3:3,tanh,fc:out", BN(0), 2, 5, 5, 3, 4, BA, 0, 0},
    {"erf", "conv3x3:3,erf,fc:out", BN(0), 2, 5, 5, 3, 4, BA, 0, 0},
    {"id", "conv3x3:3,id,fc:out", BN(0), 2, 5, 5, 3, 4, BA, 0, 0},
    {"dense-acts", "fc:7,tanh,fc:6,erf,fc:5,lrelu,fc:out", BN(0), 2, 3, 3, 3, 4, BA, 0, 0},
    /* first layers without parameters: checked through the input gradient */
    {"first-relu", "relu,fc:out", BN(0), 2, 3, 3, 3, 4, BA, 0, 0},
    {"first-maxpool", "maxpool:2/1,conv1x1:2,fc:out", BN(0), 2, 4, 4, 3, 3, BA, 0, 0},
    {"first-avgpool", "avgpool:2,fc:out", BN(0), 2, 4, 4, 3, 3, BA, 0, 0},
    {"first-gap", "gap,fc:out", BN(0), 3, 4, 4, 3, 3, BA, 0, 0},
    /* dropout: the mask is fixed by (seed, step) across evaluations */
    {"dropout-train", "conv3x3:3,dropout:0.4,fc:out", BN(0), 2, 5, 5, 3, 4, TR, 0, 0},
    {"dropout-dense-train", "fc:8,dropout:0.25,fc:out", BN(0), 2, 4, 4, 3, 4, TR, 0, 0},
    {"dropout-eval", "conv3x3:3,dropout:0.4,fc:out", BN(0), 2, 5, 5, 3, 4, EV, 0, 0},
    {"dropout-batch", "fc:8,dropout:0.25,fc:out", BN(0), 2, 4, 4, 3, 4, BA, 0, 0},
    /* residual blocks: identity shortcut, projection with stride 2, and a
     * projection through the direct 1x1 path */
    {"res-id", "conv3x3:3,res:3,fc:out", NONE, 2, 5, 5, 3, 3, BA, 0, 0},
    {"res-proj-s2", "conv3x3:3,res:4/2,fc:out", NONE, 2, 5, 5, 3, 3, BA, 0, 0},
    {"res-proj-s1", "conv3x3:3,res:4,fc:out", NONE, 2, 5, 5, 3, 3, BA, 0, 0},
    {"res-id-bn", "conv3x3:3,res:3,fc:out", BN(0), 2, 5, 5, 3, 3, BA, 0, 0},
    {"res-proj-s2-bn", "conv3x3:3,res:4/2,fc:out", BN(0), 2, 5, 5, 3, 3, BA, 0, 0},
    {"res-proj-s1-bn", "conv3x3:3,res:4,fc:out", BN(0), 2, 5, 5, 3, 3, BA, 0, 0},
    {"res-id-bn-eval", "conv3x3:3,res:3,fc:out", BN(0), 2, 5, 5, 3, 3, EV, 0, 0},
    {"res-proj-s2-bn-eval", "conv3x3:3,res:4/2,fc:out", BN(0), 2, 5, 5, 3, 3, EV, 0, 0},
    {"res-proj-s1-bn-eval", "conv3x3:3,res:4,fc:out", BN(0), 2, 5, 5, 3, 3, EV, 0, 0},
    /* batch normalization on conv maps and on dense activations (1x1 maps) */
    {"bn-conv", "conv3x3:3,bn,fc:out", NONE, 2, 5, 5, 3, 4, BA, 0, 0},
    {"bn-conv-eval", "conv3x3:3,bn,fc:out", NONE, 2, 5, 5, 3, 4, EV, 0, 0},
    {"bn-slot-relu", "conv3x3:3,norm,relu,fc:out", BN(0), 2, 5, 5, 3, 4, BA, 0, 0},
    {"bn-dense", "fc:6,bn,fc:out", BN(0), 2, 3, 3, 3, 5, BA, 0, 0},
    {"bn-dense-eval", "fc:6,bn,fc:out", BN(0), 2, 3, 3, 3, 5, EV, 0, 0},
    {"bn-dense-last", "fc:4,bn", BN(0), 2, 3, 3, 4, 5, BA, 0, 0},
    {"bn-first", "bn,conv3x3:2,fc:out", BN(0), 2, 4, 4, 3, 4, BA, 0, 0},
    {"bn-first-eval", "bn,conv3x3:2,fc:out", BN(0), 2, 4, 4, 3, 4, EV, 0, 0},
    /* ghost groups of 2: batch 6, and batch 5 with a short last group */
    {"bn-ghost-6", "conv3x3:3,bn,fc:out", BN(2), 2, 4, 4, 3, 6, BA, 0, 0},
    {"bn-ghost-5", "conv3x3:3,bn,fc:out", BN(2), 2, 4, 4, 3, 5, BA, 0, 0},
    {"bn-ghost-5-eval", "conv3x3:3,bn,fc:out", BN(2), 2, 4, 4, 3, 5, EV, 0, 0},
    /* on 1x1 maps a group of 2 is degenerate (xhat = +-1 whatever x): use 3, 4 */
    {"bn-ghost-dense-6", "fc:5,bn,fc:out", BN(3), 2, 3, 3, 3, 6, BA, 0, 0},
    {"bn-ghost-dense-11", "fc:5,bn,fc:out", BN(4), 2, 3, 3, 3, 11, BA, 0, 0},
    /* without affine parameters */
    {"bn-noaffine", "conv3x3:3,bn,fc:out", BN_NOAFFINE(0), 2, 5, 5, 3, 4, BA, 0, 0},
    {"bn-noaffine-eval", "conv3x3:3,bn,fc:out", BN_NOAFFINE(0), 2, 5, 5, 3, 4, EV, 0, 0},
    {"bn-noaffine-dense-ghost", "fc:5,bn,fc:out", BN_NOAFFINE(4), 2, 3, 3, 3, 11, BA, 0, 0},
    /* dropout and BN together in training mode */
    {"bn-dropout-train", "conv3x3:3,bn,relu,dropout:0.3,fc:out", BN(0), 2, 4, 4, 3, 4, TR, 0, 0},
    /* whole networks with the real loss */
    {"mlp-bn", "mlp:16x2", BN(0), 1, 4, 4, 5, 6, BA, 1, 0},
    {"mlp-bn-eval", "mlp:16x2", BN(0), 1, 4, 4, 5, 6, EV, 1, 0},
    {"mlp-none", "mlp:16x2", NONE, 1, 4, 4, 5, 6, BA, 1, 0},
    {"mlp-none-eval", "mlp:16x2", NONE, 1, 4, 4, 5, 6, EV, 1, 0},
    {"cnn-bn", "cnn", BN(0), 1, 8, 8, 5, 4, BA, 1, 16},
    {"cnn-bn-eval", "cnn", BN(0), 1, 8, 8, 5, 4, EV, 1, 16},
    {"cnn-none", "cnn", NONE, 1, 8, 8, 5, 4, BA, 1, 16},
    {"cnn-none-eval", "cnn", NONE, 1, 8, 8, 5, 4, EV, 1, 16},
    {"resnet8-bn", "resnet8", BN(0), 1, 8, 8, 5, 4, BA, 1, 12},
    {"resnet8-bn-eval", "resnet8", BN(0), 1, 8, 8, 5, 4, EV, 1, 12},
    {"resnet8-none", "resnet8", NONE, 1, 8, 8, 5, 4, BA, 1, 12},
    {"resnet8-none-eval", "resnet8", NONE, 1, 8, 8, 5, 4, EV, 1, 12},
    {"resnet8-bn-ghost", "resnet8", BN(2), 1, 8, 8, 5, 5, BA, 1, 12},
};
#define NCASES (sizeof cases / sizeof *cases)

#ifdef NS_DOUBLE
/* Every parameter and the input against central differences. */
START_TEST(test_gradients)
{
    ns_test_gprob p;
    ns_test_gprob_init(&p, &cases[_i]);
    ns_test_gprob_analytic_keep_state(&p);
    ns_test_gprob_check_all(&p, NULL);
    ns_test_gprob_release(&p);
}
END_TEST

/* The softmax cross-entropy's dlogits against differences of its loss. */
START_TEST(test_softmax_ce_gradient)
{
    enum { N = 5, K = 4 };
    ns_real z[N * K], d[N * K];
    int32_t y[N] = {0, 3, 1, 1, 2};
    ns_rng r;
    ns_rng_seed(&r, 11, 0);
    ns_test_fill_normal(z, N * K, &r, 2.1, 0.3);
    double loss;
    ns_softmax_ce(z, y, N, K, d, &loss, NULL);
    for (size_t i = 0; i < N * K; i++) {
        ns_real z0 = z[i];
        double lp, lm;
        z[i] = z0 + NS_TEST_FD_STEP;
        double hp = z[i];
        ns_softmax_ce(z, y, N, K, NULL, &lp, NULL);
        z[i] = z0 - NS_TEST_FD_STEP;
        double hm = z[i];
        ns_softmax_ce(z, y, N, K, NULL, &lm, NULL);
        z[i] = z0;
        double num = (lp - lm) / (hp - hm);
        double den = fabs(num) > NS_TEST_FD_FLOOR ? fabs(num) : NS_TEST_FD_FLOOR;
        ck_assert_msg(fabs(d[i] - num) / den < NS_TEST_FD_TOL,
                      "dlogits[%zu]: analytic %.12g, finite difference %.12g", i,
                      (double)d[i], num);
    }
}
END_TEST
#endif /* NS_DOUBLE */

/* Float build (and double too): forward and backward run and give finite,
 * non-trivial values. */
START_TEST(test_finite)
{
    ns_test_gprob p;
    ns_test_gprob_init(&p, &cases[_i]);
    ns_test_gprob_analytic(&p);
    ns_test_gprob_check_finite(&p);
    ns_test_gprob_release(&p);
}
END_TEST

/* TRAIN gives the same outputs and gradients as BATCH (it only also
 * updates the running statistics), for every case without dropout. */
START_TEST(test_train_equals_batch)
{
    const ns_test_gcase *gc = &cases[_i];
    if (gc->mode != NS_MODE_BATCH || strstr(gc->arch, "dropout"))
        return;
    ns_test_gprob p;
    ns_test_gprob_init(&p, gc);
    ns_net *net = p.net;
    size_t np = net->nparams, ns = net->nstate;
    ns_real *zb = malloc(p.nz * sizeof *zb), *gb = malloc((np + 1) * sizeof *gb);
    ns_real *gxb = malloc(p.nin * sizeof *gxb), *s0 = malloc((ns + 1) * sizeof *s0);
    ck_assert(zb && gb && gxb && s0);
    memcpy(s0, net->state, ns * sizeof *s0);
    ns_test_gprob_analytic(&p);
    memcpy(zb, ns_net_logits(net), p.nz * sizeof *zb);
    memcpy(gb, p.ga, np * sizeof *gb);
    memcpy(gxb, p.gx, p.nin * sizeof *gxb);
    ck_assert_msg(memcmp(s0, net->state, ns * sizeof *s0) == 0, "%s: batch mode changed state",
                  gc->name);
    p.ctx.mode = NS_MODE_TRAIN;
    ns_test_gprob_analytic(&p);
    ck_assert_msg(memcmp(zb, ns_net_logits(net), p.nz * sizeof *zb) == 0,
                  "%s: train logits differ from batch logits", gc->name);
    ck_assert_msg(memcmp(gb, p.ga, np * sizeof *gb) == 0,
                  "%s: train gradients differ from batch gradients", gc->name);
    ck_assert_msg(memcmp(gxb, p.gx, p.nin * sizeof *gxb) == 0,
                  "%s: train input gradient differs from batch", gc->name);
    if (ns_test_net_has_kind(net, "bn"))
        ck_assert_msg(memcmp(s0, net->state, ns * sizeof *s0) != 0,
                      "%s: train mode did not update the running statistics", gc->name);
    free(zb);
    free(gb);
    free(gxb);
    free(s0);
    ns_test_gprob_release(&p);
}
END_TEST

/* ---------------------------------------------------- batch normalization */

/* Mean and biased variance of channel c over samples [lo, hi). */
static void channel_stats(const ns_real *x, size_t C, size_t P, size_t c, size_t lo,
                          size_t hi, double *mean, double *var)
{
    double s = 0, ss = 0, cnt = (double)((hi - lo) * P);
    for (size_t i = lo; i < hi; i++)
        for (size_t j = 0; j < P; j++)
            s += x[(i * C + c) * P + j];
    *mean = s / cnt;
    for (size_t i = lo; i < hi; i++)
        for (size_t j = 0; j < P; j++) {
            double d = x[(i * C + c) * P + j] - *mean;
            ss += d * d;
        }
    *var = ss / cnt;
}

/* A BN layer alone on a C x H x W input, with non-trivial parameters and
 * running statistics; n samples of input in *x. */
static ns_net *bn_alone(size_t group, double momentum, size_t C, size_t H, size_t W,
                        size_t n, ns_real **x)
{
    ns_net_opts o;
    ns_net_opts_default(&o);
    o.norm_group = group;
    o.bn_momentum = momentum;
    o.max_batch = 16;
    ns_net *net = NULL;
    ck_assert_int_eq(ns_net_build("bn", &o, C, H, W, C * H * W, &net), NS_OK);
    ns_init ini = {NS_INIT_TORCH, 0, 0};
    ns_net_init(net, &ini, 3);
    ns_test_randomize_norm(net, 0, 17);
    *x = malloc(n * C * H * W * sizeof **x);
    ck_assert_ptr_nonnull(*x);
    ns_rng r;
    ns_rng_seed(&r, 8, 0);
    ns_test_fill_normal(*x, n * C * H * W, &r, 1.7, -0.4);
    return net;
}

/* Train-mode running statistics and outputs against a hand computation,
 * for whole-batch statistics and for ghost groups of 2 (last group short). */
static void check_bn_train_by_hand(size_t group)
{
    const size_t C = 3, H = 3, W = 2, P = H * W, n = 5;
    const double m = 0.25, eps = 1e-5;
    ns_real *x;
    ns_net *net = bn_alone(group, m, C, H, W, n, &x);
    ns_layer *L = ns_net_find(net, "00-bn");
    ck_assert_ptr_nonnull(L);
    const ns_real *gamma = L->param[0].data, *beta = L->param[1].data;
    double rm[3], rv[3];
    for (size_t c = 0; c < C; c++) {
        rm[c] = L->state[0].data[c];
        rv[c] = L->state[1].data[c];
    }
    ns_ctx ctx = {NS_MODE_TRAIN, 1, 0};
    ck_assert_int_eq(ns_net_forward(net, x, n, &ctx), NS_OK);
    const ns_real *y = ns_net_logits(net);
    size_t g = group ? group : n, ng = (n + g - 1) / g;
    for (size_t c = 0; c < C; c++) {
        for (size_t k = 0; k < ng; k++) {
            size_t lo = k * g, hi = lo + g < n ? lo + g : n;
            double mu, var, cnt = (double)((hi - lo) * P);
            channel_stats(x, C, P, c, lo, hi, &mu, &var);
            /* running <- (1 - m) running + m stat, unbiased variance, group by group */
            rm[c] = (1 - m) * rm[c] + m * mu;
            rv[c] = (1 - m) * rv[c] + m * var * cnt / (cnt - 1);
            for (size_t i = lo; i < hi; i++)
                for (size_t j = 0; j < P; j++) {
                    size_t idx = (i * C + c) * P + j;
                    double ref = gamma[c] * (x[idx] - mu) / sqrt(var + eps) + beta[c];
                    ns_test_assert_close(y[idx], ref, REL_TOL * 10, "train output", idx);
                }
        }
        ns_test_assert_close(L->state[0].data[c], rm[c], REL_TOL, "running_mean", c);
        ns_test_assert_close(L->state[1].data[c], rv[c], REL_TOL, "running_var", c);
    }
    ck_assert_msg(L->state[2].data[0] == (ns_real)ng, "num_batches_tracked %g, expected %zu",
                  (double)L->state[2].data[0], ng);
    free(x);
    ns_net_free(net);
}

/* Dropout on an input large enough for the parallel, chunked mask path
 * (test_dropout_masks covers small ones): the kept fraction is 1 - p within
 * 5 standard errors, kept values are scaled by 1/(1-p), the mask is the same
 * with 1 and 2 threads, and another step draws another mask. */
START_TEST(test_dropout_mask)
{
    const size_t C = 8, H = 32, W = 32, n = 16, len = n * C * H * W;
    const double p = 0.3;
    ns_net_opts o;
    ns_net_opts_default(&o);
    o.max_batch = n;
    ns_net *net = NULL;
    ck_assert_int_eq(ns_net_build("dropout:0.3", &o, C, H, W, C * H * W, &net), NS_OK);
    ns_real *x = malloc(len * sizeof *x), *y1 = malloc(len * sizeof *y1);
    ck_assert(x && y1);
    for (size_t i = 0; i < len; i++)
        x[i] = (ns_real)(1 + i % 7);
    ns_ctx ctx = {NS_MODE_TRAIN, 5, 9};
    ns_set_threads(1);
    ck_assert_int_eq(ns_net_forward(net, x, n, &ctx), NS_OK);
    memcpy(y1, ns_net_logits(net), len * sizeof *y1);
    ns_set_threads(2);
    ck_assert_int_eq(ns_net_forward(net, x, n, &ctx), NS_OK);
    const ns_real *y = ns_net_logits(net);
    size_t kept = 0;
    for (size_t i = 0; i < len; i++) {
        ck_assert_msg(y[i] == y1[i], "mask differs with the thread count at %zu", i);
        if (y[i] != 0) {
            kept++;
            ns_test_assert_close(y[i], x[i] / (1 - p), REL_TOL, "kept value", i);
        }
    }
    double se = sqrt(len * p * (1 - p));
    ck_assert_msg(fabs((double)kept - len * (1 - p)) < 5 * se, "kept %zu of %zu, p %g",
                  kept, len, p);
    ctx.step = 10;
    ck_assert_int_eq(ns_net_forward(net, x, n, &ctx), NS_OK);
    size_t same = 0;
    for (size_t i = 0; i < len; i++)
        same += (y[i] != 0) == (y1[i] != 0);
    /* independent masks agree on a fraction p^2 + (1-p)^2 = 0.58 */
    ck_assert_msg(same < 0.7 * len, "step 10 repeats step 9's mask (%zu of %zu)", same, len);
    free(x);
    free(y1);
    ns_net_free(net);
}
END_TEST

START_TEST(test_bn_running_stats)
{
    check_bn_train_by_hand(0);
}
END_TEST

START_TEST(test_bn_ghost_running_stats)
{
    check_bn_train_by_hand(2);
}
END_TEST

/* Train-mode forward and backward of a BN layer alone against a hand
 * computation in double: dx = gamma is (dy - mean(dy) - xhat mean(dy xhat)).
 * Sizes large enough for the threaded path (maps) or many channels (1x1);
 * shift moves the input mean away from 0 (relative to a unit spread). */
static double bn_by_hand_error(size_t C, size_t H, size_t W, size_t n, double shift)
{
    const size_t P = H * W, len = n * C * P;
    ns_net_opts o;
    ns_net_opts_default(&o);
    o.max_batch = n;
    ns_net *net = NULL;
    ck_assert_int_eq(ns_net_build("bn", &o, C, H, W, C * P, &net), NS_OK);
    ns_init ini = {NS_INIT_TORCH, 0, 0};
    ns_net_init(net, &ini, 3);
    ns_test_randomize_norm(net, 0, 21);
    ns_layer *L = &net->layers[0];
    ns_real *x = malloc(len * sizeof *x), *dy = malloc(len * sizeof *dy);
    ns_real *dx = malloc(len * sizeof *dx);
    ck_assert(x && dy && dx);
    ns_rng r;
    ns_rng_seed(&r, 8, 1);
    ns_test_fill_normal(x, len, &r, 1.0, shift);
    ns_test_fill_normal(dy, len, &r, 1.0, 0.2);
    ns_ctx ctx = {NS_MODE_TRAIN, 1, 0};
    ck_assert_int_eq(ns_net_forward(net, x, n, &ctx), NS_OK);
    const ns_real *y = ns_net_logits(net);
    ns_net_zero_grad(net);
    L->ops->backward(L, dx, NULL, 0, dy, y, x, n);
    double worst = 0;
    for (size_t c = 0; c < C; c++) {
        double mu, var, g = L->param[0].data[c], be = L->param[1].data[c];
        channel_stats(x, C, P, c, 0, n, &mu, &var);
        double is = 1 / sqrt(var + 1e-5), m1 = 0, m2 = 0, cnt = (double)(n * P);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < P; j++) {
                size_t idx = (i * C + c) * P + j;
                m1 += dy[idx];
                m2 += dy[idx] * (x[idx] - mu) * is;
            }
        double e = fabs(L->param[0].grad[c] - m2) / (fabs(m2) > 1 ? fabs(m2) : 1);
        worst = e > worst ? e : worst;
        e = fabs(L->param[1].grad[c] - m1) / (fabs(m1) > 1 ? fabs(m1) : 1);
        worst = e > worst ? e : worst;
        m1 /= cnt;
        m2 /= cnt;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < P; j++) {
                size_t idx = (i * C + c) * P + j;
                double xh = (x[idx] - mu) * is;
                double yr = g * xh + be, dr = g * is * (dy[idx] - m1 - xh * m2);
                e = fabs(y[idx] - yr) / (fabs(yr) > 1 ? fabs(yr) : 1);
                worst = e > worst ? e : worst;
                e = fabs(dx[idx] - dr) / (fabs(dr) > 1 ? fabs(dr) : 1);
                worst = e > worst ? e : worst;
            }
    }
    free(x);
    free(dy);
    free(dx);
    ns_net_free(net);
    return worst;
}

START_TEST(test_bn_large_by_hand)
{
    double e1 = bn_by_hand_error(8, 16, 16, 20, 0.3);   /* threaded maps */
    double e2 = bn_by_hand_error(2048, 1, 1, 20, 0.3);  /* 1x1, many channels */
    if (getenv("NS_TEST_VERBOSE"))
        fprintf(stderr, "bn by hand: maps %.3g, dense %.3g\n", e1, e2);
    ck_assert_msg(e1 < REL_TOL * 10, "maps: error %.3g", e1);
    ck_assert_msg(e2 < REL_TOL * 10, "dense: error %.3g", e2);
}
END_TEST

/* Inputs whose mean is large against their spread (unnormalised pixels,
 * a drifting pre-activation): normalising must not lose the precision. */
START_TEST(test_bn_offset_input)
{
    double e1 = bn_by_hand_error(4, 6, 6, 8, 30.0);
    double e2 = bn_by_hand_error(64, 1, 1, 8, 30.0);
    if (getenv("NS_TEST_VERBOSE"))
        fprintf(stderr, "bn offset 30: maps %.3g, dense %.3g\n", e1, e2);
    ck_assert_msg(e1 < REL_TOL * 10, "maps: error %.3g", e1);
    ck_assert_msg(e2 < REL_TOL * 10, "dense: error %.3g", e2);
}
END_TEST

START_TEST(test_bn_eval_by_hand)
{
    const size_t C = 3, H = 2, W = 2, P = H * W, n = 4;
    ns_real *x;
    ns_net *net = bn_alone(2, 0.1, C, H, W, n, &x);
    ns_layer *L = ns_net_find(net, "00-bn");
    ck_assert_ptr_nonnull(L);
    ns_real *s0 = malloc(net->nstate * sizeof *s0);
    ck_assert_ptr_nonnull(s0);
    memcpy(s0, net->state, net->nstate * sizeof *s0);
    ns_ctx ctx = {NS_MODE_EVAL, 1, 0};
    ck_assert_int_eq(ns_net_forward(net, x, n, &ctx), NS_OK);
    const ns_real *y = ns_net_logits(net);
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < C; c++)
            for (size_t j = 0; j < P; j++) {
                size_t idx = (i * C + c) * P + j;
                double ref = L->param[0].data[c] * (x[idx] - L->state[0].data[c]) /
                             sqrt((double)L->state[1].data[c] + 1e-5) + L->param[1].data[c];
                ns_test_assert_close(y[idx], ref, REL_TOL * 10, "eval output", idx);
            }
    ck_assert_msg(memcmp(s0, net->state, net->nstate * sizeof *s0) == 0,
                  "eval forward changed the state");
    /* One sample per group is fine in eval mode. */
    ck_assert_int_eq(ns_net_forward(net, x, 1, &ctx), NS_OK);
    free(s0);
    free(x);
    ns_net_free(net);
}
END_TEST

START_TEST(test_bn_num_batches_tracked)
{
    ns_real *x;
    ns_net *net = bn_alone(2, 0.1, 2, 3, 3, 5, &x);
    ns_layer *L = ns_net_find(net, "00-bn");
    ck_assert_ptr_nonnull(L);
    ns_tensor *nbt = ns_test_find_tensor(L->state, L->nstate, "num_batches_tracked");
    ck_assert_ptr_nonnull(nbt);
    ck_assert(nbt->data[0] == 0);
    ns_ctx ctx = {NS_MODE_TRAIN, 1, 0};
    ck_assert_int_eq(ns_net_forward(net, x, 5, &ctx), NS_OK);   /* groups 2, 2, 1 */
    ck_assert_msg(nbt->data[0] == 3, "after 5 samples: %g", (double)nbt->data[0]);
    ck_assert_int_eq(ns_net_forward(net, x, 4, &ctx), NS_OK);   /* groups 2, 2 */
    ck_assert_msg(nbt->data[0] == 5, "after 4 more: %g", (double)nbt->data[0]);
    ck_assert_int_eq(ns_net_forward(net, x, 1, &ctx), NS_OK);   /* one group of 1 */
    ck_assert_msg(nbt->data[0] == 6, "after 1 more: %g", (double)nbt->data[0]);
    ctx.mode = NS_MODE_BATCH;
    ck_assert_int_eq(ns_net_forward(net, x, 5, &ctx), NS_OK);
    ctx.mode = NS_MODE_EVAL;
    ck_assert_int_eq(ns_net_forward(net, x, 5, &ctx), NS_OK);
    ck_assert_msg(nbt->data[0] == 6, "batch/eval changed the count: %g", (double)nbt->data[0]);
    /* Whole-batch statistics: one per forward. */
    free(x);
    ns_net_free(net);
    net = bn_alone(0, 0.1, 2, 3, 3, 5, &x);
    L = ns_net_find(net, "00-bn");
    nbt = ns_test_find_tensor(L->state, L->nstate, "num_batches_tracked");
    ctx.mode = NS_MODE_TRAIN;
    ck_assert_int_eq(ns_net_forward(net, x, 5, &ctx), NS_OK);
    ck_assert_int_eq(ns_net_forward(net, x, 3, &ctx), NS_OK);
    ck_assert_msg(nbt->data[0] == 2, "whole batch: %g", (double)nbt->data[0]);
    free(x);
    ns_net_free(net);
}
END_TEST

/* A group of one sample on 1x1 maps has a single value per channel. */
START_TEST(test_bn_group_of_one)
{
    ns_net *net = build_net("fc:4,bn,fc:out", "bn", 0, 1, 1, 2, 2, 3, 8);
    ns_real x[8 * 4];
    ns_rng r;
    ns_rng_seed(&r, 1, 0);
    ns_test_fill_normal(x, 32, &r, 1.1, 0.2);
    ns_ctx ctx = {NS_MODE_TRAIN, 1, 0};
    ns_error_clear();
    ck_assert_int_eq(ns_net_forward(net, x, 1, &ctx), NS_EINVAL);
    ck_assert_msg(strstr(ns_errmsg(), "01-bn"), "message does not name the layer: %s",
                  ns_errmsg());
    ctx.mode = NS_MODE_BATCH;
    ck_assert_int_eq(ns_net_forward(net, x, 1, &ctx), NS_EINVAL);
    ctx.mode = NS_MODE_EVAL;
    ck_assert_int_eq(ns_net_forward(net, x, 1, &ctx), NS_OK);
    ns_net_free(net);
    /* Ghost groups of 2 on a batch of 5 leave a last group of one. */
    net = build_net("fc:4,bn,fc:out", "bn", 2, 1, 1, 2, 2, 3, 8);
    ctx.mode = NS_MODE_TRAIN;
    ns_error_clear();
    ck_assert_int_eq(ns_net_forward(net, x, 5, &ctx), NS_EINVAL);
    ck_assert_msg(strstr(ns_errmsg(), "01-bn"), "message does not name the layer: %s",
                  ns_errmsg());
    ck_assert_int_eq(ns_net_forward(net, x, 6, &ctx), NS_OK);
    ns_net_free(net);
    /* One sample of 2x2 maps has 4 values per channel: fine. */
    net = build_net("conv3x3:2,bn,fc:out", "bn", 0, 1, 1, 2, 2, 3, 8);
    ctx.mode = NS_MODE_TRAIN;
    ck_assert_int_eq(ns_net_forward(net, x, 1, &ctx), NS_OK);
    ns_net_free(net);
}
END_TEST

/* -------------------------------------------------------- acc semantics */

/* Every layer kind, each behind a layer, so each has an input gradient. */
static const char *acc_arch =
    "conv3x3:4,bn,relu,conv1x1:4,tanh,conv3x3:4/2,erf,maxpool:2/1,avgpool:2/1,id,"
    "dropout:0.3,res:4,res:6,gap,fc:8,bn,lrelu:0.1,flatten,fc:out";

/* Calls L's backward with acc bits `acc`, dx and dx2 prefilled with pre
 * (NaN for "overwrite": the previous content must not leak in). */
static void call_backward(ns_net *net, ns_layer *L, size_t li, int acc, ns_real *dx,
                          ns_real *dx2, size_t len, size_t len2, double pre1,
                          double pre2, const ns_real *dy, const ns_real *x, size_t n)
{
    ns_test_fill_const(dx, len, pre1);
    if (dx2)
        ns_test_fill_const(dx2, len2, pre2);
    L->ops->backward(L, dx, dx2, acc, dy, net->act[li], x, n);
}

static void check_acc(ns_mode mode)
{
    const size_t n = 4, nout = 3;
    ns_net *net = build_net(acc_arch, "bn", 0, 1, 2, 7, 7, nout, n);
    ns_test_randomize_norm(net, 0, 5);
    size_t nin = n * 2 * 7 * 7;
    ns_real *x = malloc(nin * sizeof *x), *dl = malloc(n * nout * sizeof *dl);
    ck_assert(x && dl);
    ns_rng r;
    ns_rng_seed(&r, 6, 0);
    ns_test_fill_normal(x, nin, &r, 1.2, 0.1);
    ns_test_fill_normal(dl, n * nout, &r, 1.0, 0);
    ns_ctx ctx = {mode, 9, 2};
    ck_assert_int_eq(ns_net_forward(net, x, n, &ctx), NS_OK);
    ns_net_zero_grad(net);
    ns_net_backward(net, dl);   /* fills every dact */
    ns_real *s0 = malloc(net->nstate * sizeof *s0);
    ns_real *g1 = malloc(net->nparams * sizeof *g1);
    ck_assert(s0 && g1);
    memcpy(s0, net->state, net->nstate * sizeof *s0);
    int seen_add = 0;
    for (size_t li = 1; li < net->nlayers; li++) {
        ns_layer *L = &net->layers[li];
        const ns_real *in = L->src < 0 ? x : net->act[L->src];
        const ns_real *dy = li == net->nlayers - 1 ? dl : net->dact[li];
        size_t len = n * ns_layer_in_size(L), len2 = len;
        ns_real *a = malloc(len * sizeof *a), *b = malloc(len * sizeof *b);
        ns_real *a2 = malloc(len2 * sizeof *a2), *b2 = malloc(len2 * sizeof *b2);
        ck_assert(a && b && a2 && b2);
        int is_add = L->src2 >= 0;
        seen_add |= is_add;
        /* overwrite: NaN before must not matter */
        ns_net_zero_grad(net);
        call_backward(net, L, li, 0, a, is_add ? a2 : NULL, len, len2, NAN, NAN, dy, in, n);
        ck_assert_msg(ns_test_all_finite(a, len), "%s: backward with acc 0 reads dx", L->name);
        if (is_add)
            ck_assert_msg(ns_test_all_finite(a2, len2), "%s: backward with acc 0 reads dx2",
                          L->name);
        memcpy(g1, net->grads, net->nparams * sizeof *g1);
        /* accumulate into a prefilled buffer: bit 0 for dx, bit 1 for dx2
         * (a one-input layer given only bit 1 still overwrites dx) */
        for (int acc = 1; acc <= 3; acc++) {
            call_backward(net, L, li, acc, b, is_add ? b2 : NULL, len, len2,
                          (acc & 1) ? 0.75 : NAN, (acc & 2) ? -1.25 : NAN, dy, in, n);
            for (size_t i = 0; i < len; i++) {
                double want = a[i] + ((acc & 1) ? 0.75 : 0);
                ck_assert_msg(fabs(b[i] - want) <= 1e-5 * (1 + fabs(want)),
                              "%s: acc %d: dx[%zu] = %g, expected %g", L->name, acc, i,
                              (double)b[i], want);
            }
            for (size_t i = 0; is_add && i < len2; i++) {
                double want = a2[i] + ((acc & 2) ? -1.25 : 0);
                ck_assert_msg(fabs(b2[i] - want) <= 1e-5 * (1 + fabs(want)),
                              "%s: acc %d: dx2[%zu] = %g, expected %g", L->name, acc, i,
                              (double)b2[i], want);
            }
        }
        /* parameter gradients always accumulate: 4 calls give 4 times one */
        double k = 4;
        for (size_t i = 0; i < net->nparams; i++)
            ck_assert_msg(fabs(net->grads[i] - k * g1[i]) <= 1e-5 * (1 + fabs(k * g1[i])),
                          "%s: parameter gradients do not accumulate", L->name);
        ck_assert_msg(memcmp(s0, net->state, net->nstate * sizeof *s0) == 0,
                      "%s: backward changed the state", L->name);
        free(a);
        free(b);
        free(a2);
        free(b2);
    }
    ck_assert(seen_add);
    free(s0);
    free(g1);
    free(x);
    free(dl);
    ns_net_free(net);
}

START_TEST(test_acc_train)
{
    check_acc(NS_MODE_TRAIN);
}
END_TEST

START_TEST(test_acc_batch)
{
    check_acc(NS_MODE_BATCH);
}
END_TEST

START_TEST(test_acc_eval)
{
    check_acc(NS_MODE_EVAL);
}
END_TEST

/* A network's backward must not depend on what its gradient buffers held
 * before (a previous step's NaN must not poison later steps). */
START_TEST(test_backward_ignores_stale_gradients)
{
    const size_t n = 4, nout = 3;
    ns_net *net = build_net(acc_arch, "bn", 0, 1, 2, 7, 7, nout, n);
    size_t nin = n * 2 * 7 * 7;
    ns_real *x = malloc(nin * sizeof *x), *dl = malloc(n * nout * sizeof *dl);
    ns_real *g = malloc(net->nparams * sizeof *g);
    ck_assert(x && dl && g);
    ns_rng r;
    ns_rng_seed(&r, 6, 0);
    ns_test_fill_normal(x, nin, &r, 1.2, 0.1);
    ns_test_fill_normal(dl, n * nout, &r, 1.0, 0);
    ns_ctx ctx = {NS_MODE_TRAIN, 9, 2};
    ck_assert_int_eq(ns_net_forward(net, x, n, &ctx), NS_OK);
    ns_net_zero_grad(net);
    ns_net_backward(net, dl);
    memcpy(g, net->grads, net->nparams * sizeof *g);
    for (size_t i = 0; i < net->nlayers; i++)
        ns_test_fill_const(net->dact[i], n * ns_layer_out_size(&net->layers[i]), NAN);
    ns_net_zero_grad(net);
    ns_net_backward(net, dl);
    ck_assert_msg(ns_test_all_finite(net->grads, net->nparams),
                  "stale NaN in the gradient buffers leaks into the gradients");
    ck_assert(memcmp(g, net->grads, net->nparams * sizeof *g) == 0);
    free(x);
    free(dl);
    free(g);
    ns_net_free(net);
}
END_TEST

/* ------------------------------------------------------------ dropout */

START_TEST(test_dropout_masks)
{
    const size_t n = 8, C = 4, H = 8, W = 8, len = n * C * H * W;
    const double p = 0.3;
    ns_net_opts o;
    ns_net_opts_default(&o);
    o.max_batch = n;
    ns_net *net = NULL;
    ck_assert_int_eq(ns_net_build("dropout:0.3", &o, C, H, W, C * H * W, &net), NS_OK);
    ns_real *x = malloc(len * sizeof *x), *y1 = malloc(len * sizeof *y1);
    ck_assert(x && y1);
    ns_rng r;
    ns_rng_seed(&r, 3, 0);
    ns_test_fill_normal(x, len, &r, 1.0, 3.0);   /* nonzero values */
    for (size_t i = 0; i < len; i++)
        if (x[i] == 0)
            x[i] = 1;
    ns_ctx ctx = {NS_MODE_TRAIN, 42, 7};
    ck_assert_int_eq(ns_net_forward(net, x, n, &ctx), NS_OK);
    memcpy(y1, ns_net_logits(net), len * sizeof *y1);
    size_t dropped = 0;
    ns_real scale = (ns_real)(1.0 / (1.0 - p));
    for (size_t i = 0; i < len; i++) {
        if (y1[i] == 0)
            dropped++;
        else
            ck_assert_msg(y1[i] == x[i] * scale, "survivor %zu not scaled by 1/(1-p)", i);
    }
    double frac = (double)dropped / (double)len;
    ck_assert_msg(fabs(frac - p) < 0.05, "dropped fraction %g, expected about %g", frac, p);
    /* same (seed, step): same mask; another step: another mask */
    ck_assert_int_eq(ns_net_forward(net, x, n, &ctx), NS_OK);
    ck_assert(memcmp(y1, ns_net_logits(net), len * sizeof *y1) == 0);
    ctx.step = 8;
    ck_assert_int_eq(ns_net_forward(net, x, n, &ctx), NS_OK);
    ck_assert(memcmp(y1, ns_net_logits(net), len * sizeof *y1) != 0);
    /* batch and eval: identity */
    ctx.mode = NS_MODE_EVAL;
    ck_assert_int_eq(ns_net_forward(net, x, n, &ctx), NS_OK);
    ck_assert(memcmp(x, ns_net_logits(net), len * sizeof *x) == 0);
    ctx.mode = NS_MODE_BATCH;
    ck_assert_int_eq(ns_net_forward(net, x, n, &ctx), NS_OK);
    ck_assert(memcmp(x, ns_net_logits(net), len * sizeof *x) == 0);
    free(x);
    free(y1);
    ns_net_free(net);
}
END_TEST

/* ---------------------------------------------------------------- loss */

START_TEST(test_softmax_ce_values)
{
    /* loss of one sample by hand: log(sum exp z) - z_y */
    ns_real z[6] = {0.3, -1.7, 2.25, 1000.5, 999.0, -3.0};
    int32_t y[2] = {2, 1};
    ns_real d[6];
    double loss;
    size_t correct;
    ns_softmax_ce(z, y, 2, 3, d, &loss, &correct);
    double z0 = z[0], z1 = z[1], z2 = z[2];
    double l0 = log(exp(z0) + exp(z1) + exp(z2)) - z2;
    double l1 = 1000.5 + log(1 + exp(999.0 - 1000.5) + exp(-1003.5)) - 999.0;
    ck_assert(isfinite(loss));
    ns_test_assert_close(loss, (l0 + l1) / 2, REL_TOL * 10, "loss", 0);
    ck_assert_uint_eq(correct, 1);
    for (size_t i = 0; i < 2; i++) {
        double s = 0;
        for (size_t j = 0; j < 3; j++)
            s += d[i * 3 + j];
        ck_assert_msg(fabs(s) < 1e-6, "dlogits of sample %zu sum to %g", i, s);
    }
    /* dlogits = (softmax - onehot) / n */
    double s0 = exp(z0) + exp(z1) + exp(z2);
    ns_test_assert_close(d[0], exp(z0) / s0 / 2, REL_TOL * 10, "dlogits", 0);
    ns_test_assert_close(d[2], (exp(z2) / s0 - 1) / 2, REL_TOL * 10, "dlogits", 2);
}
END_TEST

/* ------------------------------------------------------------ building */

START_TEST(test_determinism)
{
    ns_net *a = build_net("resnet8", "bn", 0, 1, 1, 8, 8, 5, 4);
    ns_net *b = build_net("resnet8", "bn", 0, 1, 1, 8, 8, 5, 4);
    ck_assert_uint_eq(a->nparams, b->nparams);
    ck_assert(memcmp(a->params, b->params, a->nparams * sizeof *a->params) == 0);
    ck_assert(memcmp(a->state, b->state, a->nstate * sizeof *a->state) == 0);
    ns_real x[4 * 64], dl[4 * 5];
    ns_rng r;
    ns_rng_seed(&r, 12, 0);
    ns_test_fill_normal(x, 4 * 64, &r, 1.0, 0.5);
    ns_test_fill_normal(dl, 4 * 5, &r, 1.0, 0);
    ns_ctx ctx = {NS_MODE_TRAIN, 1, 1};
    ck_assert_int_eq(ns_net_forward(a, x, 4, &ctx), NS_OK);
    ck_assert_int_eq(ns_net_forward(b, x, 4, &ctx), NS_OK);
    ck_assert(memcmp(ns_net_logits(a), ns_net_logits(b), 4 * 5 * sizeof(ns_real)) == 0);
    ns_net_zero_grad(a);
    ns_net_zero_grad(b);
    ns_net_backward(a, dl);
    ns_net_backward(b, dl);
    ck_assert(memcmp(a->grads, b->grads, a->nparams * sizeof *a->grads) == 0);
    ck_assert(memcmp(a->state, b->state, a->nstate * sizeof *a->state) == 0);
    /* another seed gives other parameters */
    ns_init ini = {NS_INIT_TORCH, 0, 0};
    ns_net_init(b, &ini, 1235);
    ck_assert(memcmp(a->params, b->params, a->nparams * sizeof *a->params) != 0);
    ns_net_free(a);
    ns_net_free(b);
}
END_TEST

typedef struct bad_arch {
    const char *arch;
    size_t c, h, w, nout;
    const char *named;   /* must appear in the message */
    const char *why;     /* and so must the reason (NULL: not checked) */
} bad_arch;

static const bad_arch bad_archs[] = {
    {"fc:", 1, 4, 4, 3, "'fc:'", NULL},
    {"fc:x", 1, 4, 4, 3, "'fc:x'", NULL},
    {"conv3x3:0", 1, 4, 4, 3, "'conv3x3:0'", NULL},
    {"foo", 1, 4, 4, 3, "'foo'", "unknown layer"},
    {"conv3x3:4,foo,fc:out", 1, 4, 4, 3, "'foo'", "unknown layer"},
    {"conv3x2:8", 1, 4, 4, 3, "'conv3x2:8'", NULL},
    {"conv3x3:8/0", 1, 4, 4, 3, "'conv3x3:8/0'", NULL},
    {"conv3x3:8p", 1, 4, 4, 3, "'conv3x3:8p'", NULL},
    {"conv3x3:8q", 1, 4, 4, 3, "'conv3x3:8q'", NULL},
    {"conv9x9:4p0,fc:out", 1, 4, 4, 3, "'conv9x9:4p0'", "does not fit"},
    {"res:8", 1, 4, 4, 3, "'res:8'", "first layer"},
    {"conv3x3:4,res:0", 1, 4, 4, 3, "'res:0'", NULL},
    {"maxpool:9", 1, 4, 4, 3, "'maxpool:9'", "does not fit"},
    {"conv3x3:4,avgpool:5,fc:out", 1, 4, 4, 3, "'avgpool:5'", "does not fit"},
    {"maxpool:2/", 1, 4, 4, 3, "'maxpool:2/'", NULL},
    {"lrelu:2", 1, 4, 4, 3, "'lrelu:2'", "lrelu:A"},
    {"lrelux", 1, 4, 4, 3, "'lrelux'", NULL},
    {"dropout:1", 1, 4, 4, 3, "'dropout:1'", "dropout:P"},
    {"fc:7", 1, 4, 4, 3, "'fc:7'", "7 outputs"},          /* 3 classes */
    {"conv3x3:2", 1, 4, 4, 3, "'conv3x3:2'", "32 outputs"},
    {"mlp:0x2", 1, 4, 4, 3, "'mlp:0x2'", NULL},
    {"mlp:16", 1, 4, 4, 3, "'mlp:16'", NULL},
    /* Sizes that wrapped: a 16384 x 2^24 x 2^24 conv output on a 1x1 input
     * got 64-byte buffers and the forward pass overran them. */
    {"conv128x128:16384p8388671,gap,fc:out", 1, 1, 1, 10, "'conv128x128:16384p8388671'",
     "too large"},
    {"conv1x1:16777216,conv1x1:16777216,gap,fc:out", 1, 1, 1, 10,
     "'conv1x1:16777216'", "too large"},
    {"fc:16777216,fc:16777216,fc:out", 1, 4, 4, 3, "'fc:16777216'", "too large"},
};
#define NBAD (sizeof bad_archs / sizeof *bad_archs)

START_TEST(test_build_errors)
{
    const bad_arch *b = &bad_archs[_i];
    ns_net_opts o;
    ns_net_opts_default(&o);
    ns_net *net = (ns_net *)&o;   /* must be reset to NULL */
    ns_error_clear();
    int st = ns_net_build(b->arch, &o, b->c, b->h, b->w, b->nout, &net);
    ck_assert_msg(st == NS_EINVAL, "'%s': status %d", b->arch, st);
    ck_assert_ptr_null(net);
    const char *msg = ns_errmsg();
    ck_assert_msg(strstr(msg, b->named), "'%s': message does not name %s: \"%s\"", b->arch,
                  b->named, msg);
    ck_assert_msg(!b->why || strstr(msg, b->why), "'%s': message lacks the reason \"%s\": \"%s\"",
                  b->arch, b->why, msg);
    ck_assert_msg(strlen(msg) > 0 && strlen(msg) < 200 && msg[strlen(msg) - 1] != '.',
                  "'%s': malformed message \"%s\"", b->arch, msg);
}
END_TEST

START_TEST(test_build_option_errors)
{
    ns_net_opts o;
    ns_net_opts_default(&o);
    ns_net *net = NULL;
    snprintf(o.norm, sizeof o.norm, "nope");
    ck_assert_int_eq(ns_net_build("fc:out", &o, 1, 2, 2, 3, &net), NS_EINVAL);
    ck_assert(strstr(ns_errmsg(), "'nope'"));
    ck_assert_ptr_null(net);
    ns_net_opts_default(&o);
    o.max_batch = 0;
    ck_assert_int_eq(ns_net_build("fc:out", &o, 1, 2, 2, 3, &net), NS_EINVAL);
    ns_net_opts_default(&o);
    o.bn_eps = 0;
    ck_assert_int_eq(ns_net_build("fc:4,bn,fc:out", &o, 1, 2, 2, 3, &net), NS_EINVAL);
    ck_assert_msg(strstr(ns_errmsg(), "'bn'") && strstr(ns_errmsg(), "eps"), "%s", ns_errmsg());
    ns_net_opts_default(&o);
    o.bn_momentum = 1.5;
    ck_assert_int_eq(ns_net_build("fc:4,norm,fc:out", &o, 1, 2, 2, 3, &net), NS_EINVAL);
    ck_assert_msg(strstr(ns_errmsg(), "'norm'") && strstr(ns_errmsg(), "momentum"), "%s",
                  ns_errmsg());
    ns_net_opts_default(&o);
    o.max_batch = NS_MAX_BATCH + 1;
    ck_assert_int_eq(ns_net_build("fc:out", &o, 1, 2, 2, 3, &net), NS_EINVAL);
    ns_net_opts_default(&o);
    /* an input shape whose size wraps to 0 (c, h, w from a run file) */
    ck_assert_int_eq(ns_net_build("fc:out", &o, (size_t)1 << 32, (size_t)1 << 32, 1, 3, &net),
                     NS_EINVAL);
    ck_assert_ptr_null(net);
    ck_assert(strstr(ns_errmsg(), "input shape"));
    ck_assert_int_eq(ns_net_build("", &o, 1, 2, 2, 3, &net), NS_EINVAL);
    ck_assert_int_eq(ns_net_build(" , ", &o, 1, 2, 2, 3, &net), NS_EINVAL);
    /* a batch larger than max_batch, or empty */
    o.max_batch = 2;
    ck_assert_int_eq(ns_net_build("fc:out", &o, 1, 2, 2, 3, &net), NS_OK);
    ns_real x[12] = {0};
    ns_ctx ctx = {NS_MODE_TRAIN, 0, 0};
    ck_assert_int_eq(ns_net_forward(net, x, 3, &ctx), NS_EINVAL);
    ck_assert_int_eq(ns_net_forward(net, x, 0, &ctx), NS_EINVAL);
    ck_assert_int_eq(ns_net_forward(net, x, 2, &ctx), NS_OK);
    ns_net_free(net);
    ns_net_free(NULL);
}
END_TEST

START_TEST(test_layer_names)
{
    ns_net *net = build_net("conv3x3:4,norm,relu,res:4,res:6/2,gap,fc:out", "bn", 0, 1, 1,
                            6, 6, 3, 2);
    static const char *names[] = {
        "00-conv", "01-bn", "02-relu",                                  /* stem */
        "03-conv", "04-bn", "05-relu", "06-conv", "07-bn", "08-add", "09-relu",
        "10-conv", "11-bn", "12-relu", "13-conv", "14-bn", "15-conv", "16-bn",
        "17-add", "18-relu", "19-gap", "20-dense",
    };
    size_t nn = sizeof names / sizeof *names;
    ck_assert_uint_eq(net->nlayers, nn);
    for (size_t i = 0; i < nn; i++) {
        ck_assert_str_eq(net->layers[i].name, names[i]);
        ck_assert_ptr_eq(ns_net_find(net, names[i]), &net->layers[i]);
    }
    ck_assert_ptr_null(ns_net_find(net, "21-dense"));
    /* the wiring of the two blocks */
    ck_assert_int_eq(net->layers[3].src, 2);
    ck_assert_int_eq(net->layers[8].src, 7);
    ck_assert_int_eq(net->layers[8].src2, 2);     /* identity shortcut */
    ck_assert_int_eq(net->layers[10].src, 9);
    ck_assert_int_eq(net->layers[15].src, 9);     /* projection reads the block input */
    ck_assert_int_eq(net->layers[17].src, 14);
    ck_assert_int_eq(net->layers[17].src2, 16);
    ck_assert_int_eq(net->layers[0].src, -1);
    for (size_t i = 0; i < nn; i++)
        if (i != 8 && i != 17)
            ck_assert_int_eq(net->layers[i].src2, -1);
    ns_net_free(net);
    /* with norm none the slots are empty and names close up */
    net = build_net("conv3x3:4,norm,relu,res:4,gap,fc:out", "none", 0, 1, 1, 6, 6, 3, 2);
    static const char *names2[] = {"00-conv", "01-relu", "02-conv", "03-relu", "04-conv",
                                   "05-add", "06-relu", "07-gap", "08-dense"};
    ck_assert_uint_eq(net->nlayers, sizeof names2 / sizeof *names2);
    for (size_t i = 0; i < net->nlayers; i++)
        ck_assert_str_eq(net->layers[i].name, names2[i]);
    ns_net_free(net);
}
END_TEST

START_TEST(test_activation_bytes)
{
    ns_net *bn = build_net("cnn", "bn", 0, 1, 1, 8, 8, 5, 16);
    ns_net *none = build_net("cnn", "none", 0, 1, 1, 8, 8, 5, 16);
    size_t a = ns_net_activation_bytes(bn, 16), b = ns_net_activation_bytes(none, 16);
    ck_assert_uint_gt(b, 0);
    ck_assert_msg(a > b, "bn net %zu bytes, no-norm net %zu bytes", a, b);
    ck_assert_uint_lt(ns_net_activation_bytes(bn, 8), a);
    size_t sum = 0;
    for (size_t i = 0; i < bn->nlayers; i++)
        sum += ns_layer_activation_bytes(&bn->layers[i], 16);
    ck_assert_uint_eq(sum, a);
    /* at least the outputs are kept */
    size_t outs = 0;
    for (size_t i = 0; i < none->nlayers; i++)
        outs += 16 * ns_layer_out_size(&none->layers[i]) * sizeof(ns_real);
    ck_assert_uint_ge(b, outs);
    ns_net_free(bn);
    ns_net_free(none);
}
END_TEST

START_TEST(test_param_slab)
{
    ns_net *net = build_net("resnet8", "bn", 0, 1, 1, 8, 8, 5, 2);
    size_t po = 0, so = 0;
    for (size_t i = 0; i < net->nlayers; i++) {
        const ns_layer *L = &net->layers[i];
        for (int t = 0; t < L->nparam; t++) {
            const ns_tensor *T = &L->param[t];
            ck_assert_msg(T->data == net->params + po, "%s.%s not contiguous", L->name,
                          T->name);
            ck_assert(T->grad == net->grads + po);
            size_t s = 1;
            for (int d = 0; d < T->ndim; d++)
                s *= T->dims[d];
            ck_assert_uint_eq(s, T->size);
            po += T->size;
        }
        for (int t = 0; t < L->nstate; t++) {
            ck_assert(L->state[t].data == net->state + so);
            ck_assert_ptr_null(L->state[t].grad);
            so += L->state[t].size;
        }
    }
    ck_assert_uint_eq(po, net->nparams);
    ck_assert_uint_eq(so, net->nstate);
    /* PyTorch layouts */
    const ns_layer *c0 = ns_net_find(net, "00-conv");
    ck_assert_str_eq(c0->param[0].name, "weight");
    ck_assert_int_eq(c0->param[0].ndim, 4);
    ck_assert_uint_eq(c0->param[0].dims[0], 16);
    ck_assert_uint_eq(c0->param[0].dims[1], 1);
    ck_assert_uint_eq(c0->param[0].dims[2], 3);
    const ns_layer *last = &net->layers[net->nlayers - 1];
    ck_assert_uint_eq(last->param[0].dims[0], 5);
    ck_assert_uint_eq(last->param[0].dims[1], 64);
    ns_net_free(net);
}
END_TEST

static Suite *nn_suite(void)
{
    Suite *s = suite_create("nn");
    TCase *tc = tcase_create("gradients");
    tcase_set_timeout(tc, 600);
#ifdef NS_DOUBLE
    tcase_add_loop_test(tc, test_gradients, 0, (int)NCASES);
    tcase_add_test(tc, test_softmax_ce_gradient);
#endif
    tcase_add_loop_test(tc, test_finite, 0, (int)NCASES);
    tcase_add_loop_test(tc, test_train_equals_batch, 0, (int)NCASES);
    suite_add_tcase(s, tc);

    tc = tcase_create("batchnorm");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_dropout_mask);
    tcase_add_test(tc, test_bn_running_stats);
    tcase_add_test(tc, test_bn_ghost_running_stats);
    tcase_add_test(tc, test_bn_eval_by_hand);
    tcase_add_test(tc, test_bn_large_by_hand);
    tcase_add_test(tc, test_bn_offset_input);
    tcase_add_test(tc, test_bn_num_batches_tracked);
    tcase_add_test(tc, test_bn_group_of_one);
    suite_add_tcase(s, tc);

    tc = tcase_create("layers");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_acc_train);
    tcase_add_test(tc, test_acc_batch);
    tcase_add_test(tc, test_acc_eval);
    tcase_add_test(tc, test_backward_ignores_stale_gradients);
    tcase_add_test(tc, test_dropout_masks);
    tcase_add_test(tc, test_softmax_ce_values);
    suite_add_tcase(s, tc);

    tc = tcase_create("build");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_determinism);
    tcase_add_loop_test(tc, test_build_errors, 0, (int)NBAD);
    tcase_add_test(tc, test_build_option_errors);
    tcase_add_test(tc, test_layer_names);
    tcase_add_test(tc, test_activation_bytes);
    tcase_add_test(tc, test_param_slab);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    ns_set_threads(2);
    return ns_test_run(nn_suite());
}
