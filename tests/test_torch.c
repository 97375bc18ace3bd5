/*
 * Cross-check of the network engine against PyTorch (tests/torch_ref.py).
 *
 * Each case builds a network, writes its layers (kind, wiring, geometry),
 * parameters and BN state in PyTorch's layout, a batch and the mode to an
 * HDF5 file, and runs torch_ref.py, which rebuilds the network from
 * torch.nn modules, runs forward and the mean cross-entropy backward, and
 * writes logits, loss, parameter gradients and the BN buffers after the
 * pass.  normscope does the same step and the results must agree to 1e-10
 * (double build, torch in float64) or 1e-5 (float build, torch in float32),
 * relative to the largest magnitude of each tensor.  Python with torch and
 * h5py is required: without it every case fails.
 */
#include "testutil.h"

#include "normscope/nn.h"
#include "normscope/norm.h"

#include <hdf5.h>
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

typedef struct tcase {
    const char *name;
    const char *arch;
    const char *norm;
    size_t group;
    int affine;
    size_t c, h, w, nout, n;
    ns_mode mode;      /* NS_MODE_TRAIN or NS_MODE_EVAL */
} tcase;

#define TR NS_MODE_TRAIN
#define EV NS_MODE_EVAL

static const tcase cases[] = {
    /* dense: BatchNorm1d */
    {"mlp-bn-train", "mlp:32x2", "bn", 0, 1, 1, 6, 6, 10, 12, TR},
    {"mlp-bn-eval", "mlp:32x2", "bn", 0, 1, 1, 6, 6, 10, 12, EV},
    /* convolutions: BatchNorm2d, stride 2 */
    {"cnn-bn-train", "cnn", "bn", 0, 1, 1, 12, 12, 10, 8, TR},
    {"cnn-bn-eval", "cnn", "bn", 0, 1, 1, 12, 12, 10, 8, EV},
    /* pooling and activations */
    {"pool", "conv5x5:4p0,relu,maxpool:2,avgpool:2/1,gap,fc:out", "none", 0, 1, 1, 12, 12,
     10, 8, TR},
    {"pool-acts",
     "conv3x3:6/2,lrelu:0.2,maxpool:3/2,conv1x1:5,tanh,avgpool:2,flatten,fc:16,erf,id,fc:out",
     "none", 0, 1, 2, 12, 12, 7, 8, TR},
    /* residual blocks, identity and projection shortcuts */
    {"resnet8-bn-train", "resnet8", "bn", 0, 1, 1, 12, 12, 10, 8, TR},
    {"resnet8-bn-eval", "resnet8", "bn", 0, 1, 1, 12, 12, 10, 8, EV},
    /* BN variants: ghost groups (short last group), no affine, dropout off */
    {"bn-ghost-train", "conv3x3:4,bn,relu,fc:12,bn,relu,fc:out", "bn", 5, 1, 2, 6, 6, 5, 13,
     TR},
    {"bn-noaffine-train", "conv3x3:4,bn,relu,conv3x3:4/2,bn,gap,fc:out", "bn", 0, 0, 2, 6, 6,
     5, 8, TR},
    {"dropout-bn-eval", "fc:16,bn,dropout:0.5,relu,fc:out", "bn", 0, 1, 1, 5, 5, 4, 8, EV},
};
#define NCASES (sizeof cases / sizeof *cases)

static int is_kind(const ns_layer *L, const char *kind)
{
    return strcmp(L->ops->kind, kind) == 0;
}

/* ------------------------------------------------------------- the test */

/* 1 when layer i's bias gradient vanishes in exact arithmetic: its only
 * reader is a batch norm using batch statistics, which removes the mean. */
static int bias_vanishes(const ns_net *net, size_t i, ns_mode mode)
{
    if (mode == NS_MODE_EVAL)
        return 0;
    int readers = 0, bn = 0;
    for (size_t j = i + 1; j < net->nlayers; j++) {
        const ns_layer *L = &net->layers[j];
        if (L->src == (int)i || L->src2 == (int)i) {
            readers++;
            bn |= is_kind(L, "bn");
        }
    }
    return readers == 1 && bn;
}

static void randomize_bn(ns_net *net, ns_rng *r)
{
    for (size_t i = 0; i < net->nlayers; i++) {
        ns_layer *L = &net->layers[i];
        if (!is_kind(L, "bn"))
            continue;
        for (int t = 0; t < L->nparam; t++)
            for (size_t j = 0; j < L->param[t].size; j++)
                L->param[t].data[j] = (ns_real)(t == 0 ? 0.6 + 0.8 * ns_rng_uniform(r)
                                                       : 0.3 * ns_rng_normal(r));
        for (size_t j = 0; j < L->out_c; j++) {
            L->state[0].data[j] = (ns_real)(0.2 * ns_rng_normal(r));
            L->state[1].data[j] = (ns_real)(0.5 + ns_rng_uniform(r));
        }
        L->state[2].data[0] = 3;
    }
}

START_TEST(test_against_torch)
{
    const tcase *tc = &cases[_i];
    const char *py = ns_test_python();
    ck_assert_msg(py != NULL, "python3 with torch and h5py is required (set PYTHON or "
                  "install python3-torch python3-h5py)");
    ns_net_opts o;
    ns_net_opts_default(&o);
    snprintf(o.norm, sizeof o.norm, "%s", tc->norm);
    o.norm_group = tc->group;
    o.bn_affine = tc->affine;
    o.max_batch = tc->n;
    ns_net *net = NULL;
    ck_assert_msg(ns_net_build(tc->arch, &o, tc->c, tc->h, tc->w, tc->nout, &net) == NS_OK,
                  "%s: %s", tc->name, ns_errmsg());
    ns_init ini = {NS_INIT_TORCH, 0, 0};
    ns_net_init(net, &ini, 99);
    ns_rng r;
    ns_rng_seed(&r, 314, 0);
    randomize_bn(net, &r);
    size_t nin = tc->n * tc->c * tc->h * tc->w, nz = tc->n * tc->nout;
    ns_real *x = malloc(nin * sizeof *x), *dl = malloc(nz * sizeof *dl);
    int32_t *y = malloc(tc->n * sizeof *y);
    ck_assert(x && dl && y);
    for (size_t i = 0; i < nin; i++)
        x[i] = (ns_real)(0.25 + 1.2 * ns_rng_normal(&r));
    for (size_t i = 0; i < tc->n; i++)
        y[i] = (int32_t)ns_rng_below(&r, tc->nout);

    ck_assert_msg(access("tests/torch_ref.py", R_OK) == 0,
                  "tests/torch_ref.py not found: run from the source root");
    char in[64], out[64];
    snprintf(in, sizeof in, "in-%s.h5", tc->name);
    snprintf(out, sizeof out, "out-%s.h5", tc->name);
    const char *inp = ns_test_path(in), *outp = ns_test_path(out);
    ck_assert_msg(ns_test_torch_write(inp, net, x, y, tc->n, tc->mode) == 0,
                  "%s: cannot write the torch input", tc->name);
    int st = ns_test_system("'%s' tests/torch_ref.py '%s' '%s'", py, inp, outp);
    ck_assert_msg(st == 0, "%s: torch_ref.py failed with status %d", tc->name, st);

    ns_ctx ctx = {tc->mode, 1, 0};
    ck_assert_int_eq(ns_net_forward(net, x, tc->n, &ctx), NS_OK);
    double loss;
    ns_softmax_ce(ns_net_logits(net), y, tc->n, tc->nout, dl, &loss, NULL);
    ns_net_zero_grad(net);
    ns_net_backward(net, dl);

    hid_t f = H5Fopen(outp, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_msg(f >= 0, "cannot open '%s'", outp);
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
    for (size_t i = 0; i < net->nlayers; i++) {
        const ns_layer *L = &net->layers[i];
        for (int t = 0; t < L->nparam; t++) {
            snprintf(path, sizeof path, "/grad/%s/%s", L->name, L->param[t].name);
            ref = ns_test_read_ref(f, path, L->param[t].size);
            int zero = strcmp(L->param[t].name, "bias") == 0 && bias_vanishes(net, i, tc->mode);
            ns_test_compare(tc->name, path, L->param[t].grad, ref, L->param[t].size,
                            zero ? gmax : 1e-3 * gmax, TOL);
            free(ref);
        }
        for (int t = 0; t < L->nstate; t++) {
            snprintf(path, sizeof path, "/state/%s/%s", L->name, L->state[t].name);
            ref = ns_test_read_ref(f, path, L->state[t].size);
            ns_test_compare(tc->name, path, L->state[t].data, ref, L->state[t].size, 0, TOL);
            free(ref);
        }
    }
    H5Fclose(f);
    free(x);
    free(dl);
    free(y);
    ns_net_free(net);
}
END_TEST

static Suite *torch_suite(void)
{
    Suite *s = suite_create("torch");
    TCase *tc = tcase_create("reference");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_against_torch, 0, (int)NCASES);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    ns_set_threads(2);
    /* Probe python and make the directory once, before the tests fork. */
    ns_test_python();
    ns_test_tmpdir();
    return ns_test_run(torch_suite());
}
