/*
 * Cross-check of the normalization layers of src/norm beyond BN against
 * PyTorch (tests/torch_ref.py): GroupNorm against nn.GroupNorm(G, C),
 * LayerNorm against nn.GroupNorm(1, C) on maps and nn.LayerNorm(C) on dense
 * activations, InstanceNorm against nn.GroupNorm(C, C), FRN + TLU against a
 * small module written in torch_ref.py (learned eps on 1x1 maps), psBN
 * against BatchNorm plus alpha (FixMatch-pytorch's PSBatchNorm2d).
 *
 * Each case is a small cnn or mlp with the method in its `norm` slots and
 * non-trivial parameters and running statistics.  Logits, loss, every
 * parameter gradient of the mean cross-entropy and the BN buffers after the
 * pass must agree to 1e-10 (double build, torch in float64) or 1e-5 (float
 * build, torch in float32), relative to the largest magnitude of each
 * tensor.  Importing torch takes seconds, so main() writes every case's
 * input before the tests fork and runs torch_ref.py once for all of them;
 * each test then rebuilds its network from the same seeds and compares.
 * Python with torch and h5py is required: without it every case fails.
 */
#include "testutil.h"

#include "normscope/nn.h"
#include "normscope/norm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef NS_DOUBLE
#define TOL 1e-10
#else
#define TOL 1e-5
#endif

typedef struct tcase {
    const char *name;
    const char *arch;
    const char *norm;  /* opts.norm */
    size_t groups;     /* opts.gn_groups */
    double eps_l;      /* FRN's learned eps parameter (1x1 maps), 0: left at its init */
    size_t c, h, w, nout, n;
    ns_mode mode;      /* NS_MODE_TRAIN or NS_MODE_EVAL */
} tcase;

#define TR NS_MODE_TRAIN
#define EV NS_MODE_EVAL
#define SMALL_CNN "conv3x3:8,norm,relu,conv3x3:8/2,norm,relu,gap,fc:out"

static const tcase cases[] = {
    /* GroupNorm: groups of 4 and of 2 channels of 8, the cnn preset with 4
     * groups of 8, 16, 32 channels, a fallback (6 and 12 channels with 4
     * requested: 3 and 4 groups), and dense activations in groups of 4 */
    {"gn2-cnn", SMALL_CNN, "gn", 2, 0, 2, 10, 10, 5, 6, TR},
    {"gn4-cnn", SMALL_CNN, "gn", 4, 0, 2, 10, 10, 5, 6, TR},
    {"gn4-cnn-preset", "cnn", "gn", 4, 0, 1, 12, 12, 10, 6, TR},
    {"gn4-cnn-eval", "cnn", "gn", 4, 0, 1, 12, 12, 10, 6, EV},
    {"gn-fallback", "conv3x3:6,norm,relu,conv3x3:12/2,norm,relu,gap,fc:out", "gn", 4, 0, 2,
     10, 10, 5, 6, TR},
    {"gn4-mlp", "mlp:16x2", "gn", 4, 0, 1, 6, 6, 10, 8, TR},
    /* LayerNorm: GroupNorm(1, C) on maps, LayerNorm(C) on dense */
    {"ln-cnn", "cnn", "ln", 0, 0, 1, 12, 12, 10, 6, TR},
    {"ln-mlp", "mlp:16x2", "ln", 0, 0, 1, 6, 6, 10, 8, TR},
    {"ln-mlp-eval", "mlp:16x2", "ln", 0, 0, 1, 6, 6, 10, 8, EV},
    /* InstanceNorm: GroupNorm(C, C) */
    {"in-cnn", "cnn", "in", 0, 0, 1, 12, 12, 10, 6, TR},
    {"in-small-cnn", SMALL_CNN, "in", 0, 0, 2, 10, 10, 5, 6, TR},
    /* FRN + TLU: fixed eps on maps, learned eps (either sign) on dense */
    {"frn-cnn", "cnn", "frn", 0, 0, 1, 12, 12, 10, 6, TR},
    {"frn-small-cnn", SMALL_CNN, "frn", 0, 0, 2, 10, 10, 5, 6, TR},
    {"frn-mlp", "mlp:16x2", "frn", 0, 0.05, 1, 6, 6, 10, 8, TR},
    {"frn-mlp-neg-eps", "mlp:16x2", "frn", 0, -0.03, 1, 6, 6, 10, 8, TR},
    {"frn-mlp-init-eps", "mlp:16x2", "frn", 0, 0, 1, 6, 6, 10, 8, TR},
    /* psBN: BatchNorm + 0.1, train (running statistics too) and eval */
    {"psbn-cnn-train", "cnn", "psbn", 0, 0, 1, 12, 12, 10, 8, TR},
    {"psbn-cnn-eval", "cnn", "psbn", 0, 0, 1, 12, 12, 10, 8, EV},
    {"psbn-mlp-train", "mlp:16x2", "psbn", 0, 0, 1, 6, 6, 10, 8, TR},
    {"psbn-mlp-eval", "mlp:16x2", "psbn", 0, 0, 1, 6, 6, 10, 8, EV},
};
#define NCASES (sizeof cases / sizeof *cases)

static int is_kind(const ns_layer *L, const char *kind)
{
    return strcmp(L->ops->kind, kind) == 0;
}

/* Non-trivial parameters of every normalization layer: gamma in
 * [0.6, 1.4], beta and tau about N(0, 0.3^2) (the TLU then passes some
 * entries and clamps others), BN running statistics away from (0, 1). */
static void randomize_norm(ns_net *net, const tcase *tc, ns_rng *r)
{
    for (size_t i = 0; i < net->nlayers; i++) {
        ns_layer *L = &net->layers[i];
        if (!ns_layer_is_norm(L))
            continue;
        for (int t = 0; t < L->nparam; t++) {
            ns_tensor *T = &L->param[t];
            for (size_t j = 0; j < T->size; j++) {
                if (!strcmp(T->name, "weight"))
                    T->data[j] = (ns_real)(0.6 + 0.8 * ns_rng_uniform(r));
                else if (!strcmp(T->name, "eps"))
                    T->data[j] = tc->eps_l != 0 ? (ns_real)tc->eps_l : T->data[j];
                else
                    T->data[j] = (ns_real)(0.3 * ns_rng_normal(r));
            }
        }
        if (is_kind(L, "bn")) {
            for (size_t j = 0; j < L->out_c; j++) {
                L->state[0].data[j] = (ns_real)(0.2 * ns_rng_normal(r));
                L->state[1].data[j] = (ns_real)(0.5 + ns_rng_uniform(r));
            }
            L->state[2].data[0] = 3;
        }
    }
}

/* The network, batch and labels of a case; the same on every call.
 * Returns NS_OK or the build status (no Check asserts: main calls it). */
static int make_case(const tcase *tc, ns_net **net, ns_real **x, int32_t **y)
{
    ns_net_opts o;
    ns_net_opts_default(&o);
    snprintf(o.norm, sizeof o.norm, "%s", tc->norm);
    if (tc->groups)
        o.gn_groups = tc->groups;
    o.max_batch = tc->n;
    *x = NULL;
    *y = NULL;
    int st = ns_net_build(tc->arch, &o, tc->c, tc->h, tc->w, tc->nout, net);
    if (st)
        return st;
    ns_init ini = {NS_INIT_TORCH, 0, 0};
    ns_net_init(*net, &ini, 99);
    ns_rng r;
    ns_rng_seed(&r, 314, 0);
    randomize_norm(*net, tc, &r);
    size_t nin = tc->n * tc->c * tc->h * tc->w;
    *x = malloc(nin * sizeof **x);
    *y = malloc(tc->n * sizeof **y);
    if (!*x || !*y)
        return NS_ENOMEM;
    for (size_t i = 0; i < nin; i++)
        (*x)[i] = (ns_real)(0.25 + 1.2 * ns_rng_normal(&r));
    for (size_t i = 0; i < tc->n; i++)
        (*y)[i] = (int32_t)ns_rng_below(&r, tc->nout);
    return NS_OK;
}

static const char *in_path(size_t i)
{
    char name[64];
    snprintf(name, sizeof name, "norm-in-%s.h5", cases[i].name);
    return ns_test_path(name);
}

static const char *out_path(size_t i)
{
    char name[64];
    snprintf(name, sizeof name, "norm-out-%s.h5", cases[i].name);
    return ns_test_path(name);
}

/* Why the reference is missing ("" when torch_ref.py ran). */
static char ref_problem[512] = "the reference was not computed";

/* The input file of case i (for ns_test_compute_refs). */
static int write_case(size_t i, char *why, size_t len)
{
    const tcase *tc = &cases[i];
    ns_net *net = NULL;
    ns_real *x;
    int32_t *y;
    int st = make_case(tc, &net, &x, &y);
    if (!st && ns_test_torch_write(in_path(i), net, x, y, tc->n, tc->mode) != 0)
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
    static const char *const need[] = {"tests/torch_ref.py", NULL};
    ns_test_compute_refs("tests/torch_ref.py", need, NCASES, write_case, in_path, out_path, ref_problem,
                         sizeof ref_problem);
}

/* 1 when layer i's bias gradient vanishes in exact arithmetic: its only
 * reader removes the per-channel mean (BN on batch statistics, or IN). */
static int bias_vanishes(const ns_net *net, size_t i, ns_mode mode)
{
    int readers = 0, removes = 0;
    for (size_t j = i + 1; j < net->nlayers; j++) {
        const ns_layer *L = &net->layers[j];
        if (L->src == (int)i || L->src2 == (int)i) {
            readers++;
            removes |= (is_kind(L, "bn") && mode != NS_MODE_EVAL) || is_kind(L, "in");
        }
    }
    return readers == 1 && removes;
}

START_TEST(test_against_torch)
{
    const tcase *tc = &cases[_i];
    ck_assert_msg(ref_problem[0] == '\0', "%s: %s", tc->name, ref_problem);
    ns_net *net = NULL;
    ns_real *x;
    int32_t *y;
    ck_assert_msg(make_case(tc, &net, &x, &y) == NS_OK, "%s: %s", tc->name, ns_errmsg());
    /* the norm slots hold the method under test */
    size_t nnorm = 0;
    for (size_t i = 0; i < net->nlayers; i++)
        nnorm += ns_layer_is_norm(&net->layers[i]);
    ck_assert_msg(nnorm >= 2, "%s: %zu normalization layers", tc->name, nnorm);
    size_t nz = tc->n * tc->nout;
    ns_real *dl = malloc(nz * sizeof *dl);
    ck_assert_ptr_nonnull(dl);
    ns_ctx ctx = {tc->mode, 1, 0};
    ck_assert_int_eq(ns_net_forward(net, x, tc->n, &ctx), NS_OK);
    double loss;
    ns_softmax_ce(ns_net_logits(net), y, tc->n, tc->nout, dl, &loss, NULL);
    ns_net_zero_grad(net);
    ns_net_backward(net, dl);

    hid_t f = H5Fopen(out_path((size_t)_i), H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_msg(f >= 0, "cannot open '%s'", out_path((size_t)_i));
    double *ref = ns_test_read_ref(f, "/logits", nz);
    ns_test_compare(tc->name, "logits", ns_net_logits(net), ref, nz, 0, TOL);
    free(ref);
    ref = ns_test_read_ref(f, "/loss", 1);
    ns_real l = (ns_real)loss;
    ns_test_compare(tc->name, "loss", &l, ref, 1, 0, TOL);
    free(ref);
    /* gradients: relative to each tensor's largest, floored at 1e-3 of the
     * largest gradient of the network; gradients that vanish exactly are
     * rounding noise on both sides, compared to the largest gradient */
    double gmax = 0;
    for (size_t i = 0; i < net->nparams; i++)
        gmax = fabs((double)net->grads[i]) > gmax ? fabs((double)net->grads[i]) : gmax;
    char path[128];
    int seen_eps = 0;
    for (size_t i = 0; i < net->nlayers; i++) {
        const ns_layer *L = &net->layers[i];
        for (int t = 0; t < L->nparam; t++) {
            snprintf(path, sizeof path, "/grad/%s/%s", L->name, L->param[t].name);
            ref = ns_test_read_ref(f, path, L->param[t].size);
            int zero = strcmp(L->param[t].name, "bias") == 0 && bias_vanishes(net, i, tc->mode);
            ns_test_compare(tc->name, path, L->param[t].grad, ref, L->param[t].size,
                            zero ? gmax : 1e-3 * gmax, TOL);
            seen_eps |= strcmp(L->param[t].name, "eps") == 0;
            free(ref);
        }
        for (int t = 0; t < L->nstate; t++) {
            snprintf(path, sizeof path, "/state/%s/%s", L->name, L->state[t].name);
            ref = ns_test_read_ref(f, path, L->state[t].size);
            ns_test_compare(tc->name, path, L->state[t].data, ref, L->state[t].size, 0, TOL);
            free(ref);
        }
    }
    /* FRN on dense activations learns its eps; on maps it does not */
    if (!strcmp(tc->norm, "frn"))
        ck_assert_msg(seen_eps == (strstr(tc->arch, "mlp") != NULL),
                      "%s: learned eps %s", tc->name, seen_eps ? "on maps" : "missing");
    H5Fclose(f);
    free(x);
    free(y);
    free(dl);
    ns_net_free(net);
}
END_TEST

static Suite *norm_torch_suite(void)
{
    Suite *s = suite_create("norm-torch");
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
    return ns_test_run(norm_torch_suite());
}
