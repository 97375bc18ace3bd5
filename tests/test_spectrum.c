/*
 * The spectrum analysis (src/analysis/spectrum.c) against numpy: small mlp
 * and cnn runs, the statistics of every default layer of a checkpoint, and
 * the same layers' activations and weights written out here for
 * tests/spectrum_ref.py to recompute everything from.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "normscope/inputs.h"
#include "normscope/result.h"
#include "normscope/spectrum.h"
#include "testutil.h"

static void train(const char *arch, const char *norm, const char *path)
{
    ns_train_config c;
    ns_train_config_default(&c);
    snprintf(c.arch, sizeof c.arch, "%s", arch);
    snprintf(c.net.norm, sizeof c.net.norm, "%s", norm);
    c.train_n = 256;
    c.test_n = 64;
    c.epochs = 1;
    c.batch = 32;
    c.threads = 2;
    ns_train_result r;
    ck_assert_msg(ns_train(&c, NULL, path, 1, "test", NULL, &r) == NS_OK, "%s", ns_errmsg());
}

/* Runs the analysis on n samples at the last checkpoint, then writes the
 * activations of the layers it chose (read back from its result) and every
 * weight for the reference. */
static void compare(const char *run, size_t n, int pool, ns_bn_mode mode, const char *tag)
{
    char res_path[512], act_path[600];
    snprintf(res_path, sizeof res_path, "%s", ns_test_path(tag));
    snprintf(act_path, sizeof act_path, "%s.acts.h5", res_path);
    ns_inputs_opts io;
    ns_run_inputs_defaults(&io);
    io.n = n;
    io.ckpt = "last";
    io.mode = mode;
    io.max_batch = ns_spectrum_max_batch(mode == NS_BN_BATCH, n);
    ns_run_inputs in;
    ck_assert_msg(ns_run_inputs_open(&in, run, &io, NULL) == NS_OK, "%s", ns_errmsg());
    ns_spectrum_opts so;
    ns_spectrum_defaults(&so);
    so.pool = pool;
    so.gram_n = n / 2;
    so.quantile_n = 1u << 30;      /* every observation: exact quantiles */
    ns_result *res;
    ns_spectrum_summary sum;
    ck_assert_int_eq(ns_result_create(&res, res_path, 1, "test", NULL, 0), NS_OK);
    ck_assert_msg(ns_spectrum_run(&so, &in, res, &sum) == NS_OK, "%s", ns_errmsg());
    ck_assert_int_eq(ns_result_commit(res), NS_OK);
    ck_assert(sum.nlayers >= 3);

    hid_t f = H5Fcreate(act_path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(f >= 0);
    H5Fclose(f);
    /* The same forward pass, the chosen layers' outputs kept. */
    ns_net *net = in.net;
    size_t dim = ns_data_dim(in.d), B = net->max_batch;
    ns_ctx ctx = {.mode = ns_bn_mode_net(mode)};
    for (size_t j = 0; j < sum.nlayers; j++) {
        ns_layer *L = ns_net_find(net, sum.layers[j].name);
        ck_assert_ptr_nonnull(L);
        size_t li = (size_t)(L - net->layers), per = ns_layer_out_size(L);
        double *v = malloc(n * per * sizeof *v);
        for (size_t i0 = 0; i0 < n; i0 += B) {
            size_t m = n - i0 < B ? n - i0 : B;
            ck_assert_int_eq(ns_net_forward(net, in.x + i0 * dim, m, &ctx), NS_OK);
            for (size_t k = 0; k < m * per; k++)
                v[i0 * per + k] = net->act[li][k];
        }
        char p[128];
        snprintf(p, sizeof p, "acts/%s", L->name);
        size_t dims[3] = {n, L->out_c, L->out_h * L->out_w};
        ck_assert_int_eq(ns_test_h5_add(act_path, p, 3, dims, v), 0);
        free(v);
    }
    for (size_t i = 0; i < net->nlayers; i++) {
        const ns_layer *L = &net->layers[i];
        if (L->nparam == 0 || L->param[0].ndim < 2)
            continue;
        const ns_tensor *W = &L->param[0];
        double *v = malloc(W->size * sizeof *v);
        for (size_t k = 0; k < W->size; k++)
            v[k] = W->data[k];
        char p[128];
        snprintf(p, sizeof p, "weights/%s", L->name);
        size_t dims[2] = {W->dims[0], W->size / W->dims[0]};
        ck_assert_int_eq(ns_test_h5_add(act_path, p, 2, dims, v), 0);
        free(v);
    }
    char step[32];
    snprintf(step, sizeof step, "%llu", (unsigned long long)in.step);
    const char *py = ns_test_python();
    ck_assert_msg(py, "no python3 with numpy and h5py");
    ck_assert_msg(ns_test_system("%s tests/spectrum_ref.py %s %s %s %d", py, res_path, act_path,
                                 step, pool) == 0, "numpy disagrees (%s)", tag);
    ns_spectrum_summary_free(&sum);
    ns_run_inputs_free(&in);
}

START_TEST(test_mlp_against_numpy)
{
    const char *run = ns_test_path("mlp.h5");
    train("mlp:48x2", "bn", run);
    compare(run, 96, 0, NS_BN_EVAL, "mlp_eval.h5");
    compare(run, 64, 0, NS_BN_BATCH, "mlp_batch.h5");
}
END_TEST

START_TEST(test_cnn_against_numpy)
{
    const char *run = ns_test_path("cnn.h5");
    train("conv3x3:8,norm,relu,conv3x3:16/2,norm,relu,gap,fc:out", "bn", run);
    compare(run, 40, 0, NS_BN_EVAL, "cnn_eval.h5");
    compare(run, 40, 1, NS_BN_EVAL, "cnn_pool.h5");
}
END_TEST

/* Unknown layer names are refused before anything is computed. */
START_TEST(test_check_layers)
{
    const char *run = ns_test_path("mlp2.h5");
    train("mlp:16x1", "none", run);
    ns_inputs_opts io;
    ns_run_inputs_defaults(&io);
    io.n = 8;
    ns_run_inputs in;
    ck_assert_int_eq(ns_run_inputs_open(&in, run, &io, NULL), NS_OK);
    ns_spectrum_opts so;
    ns_spectrum_defaults(&so);
    so.layers = "00-dense,07-nothing";
    ck_assert_int_eq(ns_spectrum_check(&so, &in), NS_EINVAL);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "'07-nothing' is not a layer"));
    so.layers = "00-dense";
    ck_assert_int_eq(ns_spectrum_check(&so, &in), NS_OK);
    ns_run_inputs_free(&in);
}
END_TEST

int main(void)
{
    ns_set_threads(2);
    Suite *s = suite_create("spectrum");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_mlp_against_numpy);
    tcase_add_test(tc, test_cnn_against_numpy);
    tcase_add_test(tc, test_check_layers);
    suite_add_tcase(s, tc);
    return ns_test_run(s);
}
