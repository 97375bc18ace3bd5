/* Tests of the training module: optimiser rules, schedules, configuration
 * round trip, checkpoint round trip. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "normscope/norm.h"
#include "normscope/train.h"
#include "testutil.h"

#ifdef NS_DOUBLE
#define TOL 1e-12
#else
#define TOL 1e-5
#endif

/* Runs 3 steps of an optimiser on a 3-vector with fixed gradients and
 * compares with the rule written out in double. */
static void run_opt(ns_optim_kind kind, int nesterov, double wd, double *out)
{
    ns_train_config c;
    ns_train_config_default(&c);
    c.optim = kind;
    c.nesterov = nesterov;
    c.wd = wd;
    ns_optim o;
    ck_assert_int_eq(ns_optim_alloc(&o, kind, 3), NS_OK);
    ns_real p[3] = {0.5, -1.25, 2.385};
    const ns_real g[3][3] = {{0.1, -0.2, 0.3}, {0.05, 0.4, -0.7}, {-0.3, 0.2, 0.11}};
    for (int s = 0; s < 3; s++)
        ns_optim_step(&o, &c, 0.05, p, g[s]);
    for (int i = 0; i < 3; i++)
        out[i] = p[i];
    ns_optim_release(&o);
}

static void ref_opt(ns_optim_kind kind, int nesterov, double wd, double *p)
{
    const double g[3][3] = {{0.1, -0.2, 0.3}, {0.05, 0.4, -0.7}, {-0.3, 0.2, 0.11}};
    double b[3] = {0}, m[3] = {0}, v[3] = {0}, lr = 0.05, mu = 0.9;
    p[0] = (ns_real)0.5;
    p[1] = (ns_real)-1.25;
    p[2] = (ns_real)2.385;
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < 3; i++) {
            double gi = g[s][i];
            if (kind == NS_OPTIM_SGD) {
                gi += wd * p[i];
                b[i] = s == 0 ? gi : mu * b[i] + gi;
                p[i] -= lr * (nesterov ? gi + mu * b[i] : b[i]);
            } else {
                if (kind == NS_OPTIM_ADAMW)
                    p[i] *= 1 - lr * wd;
                else
                    gi += wd * p[i];
                m[i] = 0.9 * m[i] + 0.1 * gi;
                v[i] = 0.999 * v[i] + 0.001 * gi * gi;
                double mh = m[i] / (1 - pow(0.9, s + 1)), vh = v[i] / (1 - pow(0.999, s + 1));
                p[i] -= lr * mh / (sqrt(vh) + 1e-8);
            }
        }
}

START_TEST(test_optimizers)
{
    struct { ns_optim_kind k; int nest; double wd; } cases[] = {
        {NS_OPTIM_SGD, 0, 0}, {NS_OPTIM_SGD, 1, 0}, {NS_OPTIM_SGD, 0, 5e-4},
        {NS_OPTIM_ADAM, 0, 0}, {NS_OPTIM_ADAM, 0, 1e-2}, {NS_OPTIM_ADAMW, 0, 1e-2},
    };
    for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
        double got[3], want[3];
        run_opt(cases[t].k, cases[t].nest, cases[t].wd, got);
        ref_opt(cases[t].k, cases[t].nest, cases[t].wd, want);
        for (int i = 0; i < 3; i++)
            ck_assert_msg(fabs(got[i] - want[i]) <= TOL * 10 * fabs(want[i]) + TOL,
                          "case %zu coord %d: %.10g vs %.10g", t, i, got[i], want[i]);
    }
}
END_TEST

START_TEST(test_schedules)
{
    ns_train_config c;
    ns_train_config_default(&c);
    /* the default: cosine annealing to zero over the run */
    ck_assert_int_eq(c.schedule, NS_SCHED_COSINE);
    ck_assert_double_eq_tol(ns_schedule_lr(&c, 250, 10, 1000),
                            0.05 * 0.5 * (1 + cos(acos(-1.0) / 4)), 1e-15);
    ck_assert_int_eq(ns_parse_schedule("const", &c), NS_OK);
    ck_assert_double_eq_tol(ns_schedule_lr(&c, 123, 10, 1000), 0.05, 1e-15);
    ck_assert_int_eq(ns_parse_schedule("step:2,4@0.5", &c), NS_OK);
    ck_assert_double_eq_tol(ns_schedule_lr(&c, 19, 10, 100), 0.05, 1e-15);
    ck_assert_double_eq_tol(ns_schedule_lr(&c, 20, 10, 100), 0.025, 1e-15);
    ck_assert_double_eq_tol(ns_schedule_lr(&c, 45, 10, 100), 0.0125, 1e-15);
    ck_assert_int_eq(ns_parse_schedule("cosine", &c), NS_OK);
    ck_assert_double_eq_tol(ns_schedule_lr(&c, 0, 10, 100), 0.05, 1e-15);
    ck_assert_double_eq_tol(ns_schedule_lr(&c, 50, 10, 100), 0.025, 1e-12);
    c.warmup = 10;
    c.schedule = NS_SCHED_CONST;
    ck_assert_double_eq_tol(ns_schedule_lr(&c, 4, 10, 100), 0.025, 1e-15);
    ck_assert_double_eq_tol(ns_schedule_lr(&c, 10, 10, 100), 0.05, 1e-15);
    ck_assert_int_eq(ns_parse_schedule("step:x", &c), NS_EINVAL);
    ck_assert_int_eq(ns_parse_schedule("linear", &c), NS_EINVAL);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "linear"));
}
END_TEST

START_TEST(test_config_checks)
{
    ns_train_config c;
    ns_train_config_default(&c);
    ck_assert_int_eq(ns_train_config_check(&c), NS_OK);
    c.lr = -1;
    ck_assert_int_eq(ns_train_config_check(&c), NS_EINVAL);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "--lr"));
    ns_train_config_default(&c);
    c.batch = 0;
    ck_assert_int_eq(ns_train_config_check(&c), NS_EINVAL);
    ns_train_config_default(&c);
    c.momentum = 1.5;
    ck_assert_int_eq(ns_train_config_check(&c), NS_EINVAL);
    ns_train_config_default(&c);
    c.clip = -1;
    ck_assert_int_eq(ns_train_config_check(&c), NS_EINVAL);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "--clip"));
    ns_init in;
    ck_assert_int_eq(ns_parse_init("gauss:2.0,0.05", &in), NS_OK);
    ck_assert_double_eq(in.sw2, 2.0);
    ck_assert_int_eq(ns_parse_init("gauss:-1,0", &in), NS_EINVAL);
    ck_assert_int_eq(ns_parse_init("lecun", &in), NS_EINVAL);
}
END_TEST

START_TEST(test_config_roundtrip)
{
    ns_train_config c, d;
    ns_train_config_default(&c);
    snprintf(c.arch, sizeof c.arch, "cnn");
    c.lr = 0.0123;
    c.wd = 5e-4;
    c.clip = 2.5;
    c.optim = NS_OPTIM_ADAMW;
    ns_parse_schedule("step:3,7@0.2", &c);
    ns_parse_init("gauss:1.7,0.01", &c.init);
    c.net.norm_group = 4;
    c.nckpt_steps = 2;
    c.ckpt_steps[0] = 5;
    c.ckpt_steps[1] = 17;
    ns_h5out o;
    ck_assert_int_eq(ns_h5out_create(&o, ns_test_path("cfg.h5"), 1), NS_OK);
    ck_assert_int_eq(ns_train_config_save(o.fid, &c), NS_OK);
    ck_assert_int_eq(ns_train_config_load(o.fid, &d), NS_OK);
    ns_h5out_abort(&o);
    ck_assert_str_eq(d.arch, "cnn");
    ck_assert_double_eq(d.lr, 0.0123);
    ck_assert_double_eq(d.wd, 5e-4);
    ck_assert_double_eq(d.clip, 2.5);
    ck_assert_int_eq(d.net.frn_relu, 0);   /* the loader's legacy default is 1 */
    ck_assert_int_eq(d.optim, NS_OPTIM_ADAMW);
    ck_assert_int_eq(d.schedule, NS_SCHED_STEP);
    ck_assert_uint_eq(d.nmilestones, 2);
    ck_assert_double_eq(d.gamma, 0.2);
    ck_assert_double_eq(d.init.sw2, 1.7);
    ck_assert_uint_eq(d.net.norm_group, 4);
    ck_assert_uint_eq(d.nckpt_steps, 2);
    ck_assert_uint_eq(d.ckpt_steps[1], 17);
    ck_assert_int_eq(d.net.bkn_predict, NS_BKN_PREDICT_GROUP);  /* legacy default: last */
    ck_assert_int_eq(d.net.bkn_grad, 1);                        /* legacy default: 0 */
}
END_TEST

/* BKN's prediction mode and gradient round-trip in both values; a run
 * written before they were recorded loads with the behaviour it trained
 * with (last group, no gradient through the prediction); a bad mode is
 * refused. */
START_TEST(test_config_bkn_modes)
{
    ns_train_config c, d;
    ns_train_config_default(&c);
    snprintf(c.net.norm, sizeof c.net.norm, "bkn");
    ns_h5out o;
    ck_assert_int_eq(ns_h5out_create(&o, ns_test_path("cfg-bkn.h5"), 1), NS_OK);
    for (int mode = 0; mode < 2; mode++) {
        c.net.bkn_predict = mode ? NS_BKN_PREDICT_GROUP : NS_BKN_PREDICT_LAST;
        c.net.bkn_grad = mode;
        ck_assert_int_eq(ns_train_config_check(&c), NS_OK);
        ck_assert_int_eq(ns_train_config_save(o.fid, &c), NS_OK);
        ck_assert_int_eq(ns_train_config_load(o.fid, &d), NS_OK);
        ck_assert_int_eq(d.net.bkn_predict, c.net.bkn_predict);
        ck_assert_int_eq(d.net.bkn_grad, c.net.bkn_grad);
    }
    ck_assert_int_ge(H5Adelete_by_name(o.fid, "/config", "bkn_predict", H5P_DEFAULT), 0);
    ck_assert_int_ge(H5Adelete_by_name(o.fid, "/config", "bkn_grad", H5P_DEFAULT), 0);
    ck_assert_int_eq(ns_train_config_load(o.fid, &d), NS_OK);
    ck_assert_int_eq(d.net.bkn_predict, NS_BKN_PREDICT_LAST);
    ck_assert_int_eq(d.net.bkn_grad, 0);
    ck_assert_int_eq(ns_h5_attr_str(o.fid, "/config", "bkn_predict", "first"), NS_OK);
    ck_assert_int_eq(ns_train_config_load(o.fid, &d), NS_EFORMAT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "'first'"));
    ns_h5out_abort(&o);
    c.net.bkn_grad = 2;
    ck_assert_int_eq(ns_train_config_check(&c), NS_EINVAL);
}
END_TEST

/* Files written before a method option existed still load, with its default. */
START_TEST(test_config_missing_method_options)
{
    ns_train_config c, d;
    ns_train_config_default(&c);
    c.net.gn_groups = 8;
    ns_h5out o;
    ck_assert_int_eq(ns_h5out_create(&o, ns_test_path("cfg-old.h5"), 1), NS_OK);
    ck_assert_int_eq(ns_train_config_save(o.fid, &c), NS_OK);
    ck_assert_int_ge(H5Adelete_by_name(o.fid, "/config", "gn_groups", H5P_DEFAULT), 0);
    ck_assert_int_ge(H5Adelete_by_name(o.fid, "/config", "mabn_buffer", H5P_DEFAULT), 0);
    ck_assert_int_ge(H5Adelete_by_name(o.fid, "/config", "clip", H5P_DEFAULT), 0);
    ck_assert_int_ge(H5Adelete_by_name(o.fid, "/config", "frn_relu", H5P_DEFAULT), 0);
    ck_assert_int_eq(ns_train_config_load(o.fid, &d), NS_OK);
    ck_assert_uint_eq(d.net.gn_groups, 32);
    ck_assert_uint_eq(d.net.mabn_buffer, 16);
    ck_assert_double_eq(d.clip, 0);
    ck_assert_int_eq(d.net.frn_relu, 1);   /* older FRN runs kept the relu */
    /* A core setting that is missing is still an error naming it. */
    ck_assert_int_ge(H5Adelete_by_name(o.fid, "/config", "lr", H5P_DEFAULT), 0);
    ck_assert_int_eq(ns_train_config_load(o.fid, &d), NS_EFORMAT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "'lr'"));
    ns_h5out_abort(&o);
}
END_TEST

/* Recalibrated running mean = mean of the BN input over the samples used
 * (equal batches), whatever the running statistics were before. */
START_TEST(test_recalibrate)
{
    ns_net_opts o;
    ns_net_opts_default(&o);
    o.max_batch = 4;
    ns_net *net;
    ck_assert_int_eq(ns_net_build("fc:3,bn,fc:out", &o, 2, 1, 1, 2, &net), NS_OK);
    ns_init in = {NS_INIT_TORCH, 0, 0};
    ns_net_init(net, &in, 5);
    ns_dataset *d;
    ck_assert_int_eq(ns_data_alloc(12, 2, 1, 1, 2, &d), NS_OK);
    ns_rng r;
    ns_rng_seed(&r, 8, 0);
    for (size_t i = 0; i < 24; i++)
        d->x[i] = (float)(2.385 * ns_rng_normal(&r) + 0.7);
    for (size_t i = 0; i < 12; i++)
        d->y[i] = (int32_t)(i % 2);
    net->layers[1].state[0].data[0] = 99;   /* stale running statistics */
    ck_assert_int_eq(ns_recalibrate(net, d, 12), NS_OK);
    const ns_tensor *W = &net->layers[0].param[0], *b = &net->layers[0].param[1];
    for (size_t c = 0; c < 3; c++) {
        double m = 0;
        for (size_t i = 0; i < 12; i++)
            m += b->data[c] + W->data[c * 2] * d->x[i * 2] + W->data[c * 2 + 1] * d->x[i * 2 + 1];
        m /= 12;
        ck_assert_msg(fabs(net->layers[1].state[0].data[c] - m) < 1e-4 * (1 + fabs(m)),
                      "channel %zu: %g vs %g", c, net->layers[1].state[0].data[c], m);
    }
    ns_data_free(d);
    ns_net_free(net);
}
END_TEST

/* BKN: the recalibrated running mean of the first BKN layer (no
 * prediction: its estimate is the group's batch mean) is the plain average
 * over the batches of group 0's mean, whatever it was before. */
START_TEST(test_recalibrate_bkn)
{
    ns_net_opts o;
    ns_net_opts_default(&o);
    snprintf(o.norm, sizeof o.norm, "bkn");
    o.norm_group = 2;
    o.max_batch = 4;
    ns_net *net;
    ck_assert_int_eq(ns_net_build("fc:3,norm,relu,fc:3,norm,fc:out", &o, 2, 1, 1, 2, &net),
                     NS_OK);
    ns_init in = {NS_INIT_TORCH, 0, 0};
    ns_net_init(net, &in, 5);
    ns_dataset *d;
    ck_assert_int_eq(ns_data_alloc(12, 2, 1, 1, 2, &d), NS_OK);
    ns_rng r;
    ns_rng_seed(&r, 8, 0);
    for (size_t i = 0; i < 24; i++)
        d->x[i] = (float)(2.385 * ns_rng_normal(&r) + 0.7);
    for (size_t i = 0; i < 12; i++)
        d->y[i] = (int32_t)(i % 2);
    net->layers[1].state[0].data[0] = 99;   /* stale running statistics */
    ck_assert_int_eq(ns_recalibrate(net, d, 12), NS_OK);
    const ns_tensor *W = &net->layers[0].param[0], *b = &net->layers[0].param[1];
    for (size_t c = 0; c < 3; c++) {
        double m = 0;
        for (size_t k = 0; k < 3; k++)      /* batches of 4: samples 4k, 4k + 1 */
            for (size_t i = 4 * k; i < 4 * k + 2; i++)
                m += b->data[c] + W->data[c * 2] * d->x[i * 2] + W->data[c * 2 + 1] * d->x[i * 2 + 1];
        m /= 6;
        ck_assert_msg(fabs(net->layers[1].state[0].data[c] - m) < 1e-4 * (1 + fabs(m)),
                      "channel %zu: %g vs %g", c, net->layers[1].state[0].data[c], m);
    }
    /* the decay is restored: one more training forward moves it by 0.1 */
    double before = net->layers[1].state[0].data[0];
    ns_real x[8];
    size_t idx[4] = {0, 1, 2, 3};
    ns_data_gather(d, idx, 4, x, NULL);
    ns_ctx ctx = {.mode = NS_MODE_TRAIN, .seed = 1, .step = 1};
    ck_assert_int_eq(ns_net_forward(net, x, 4, &ctx), NS_OK);
    double mus[3];   /* the first BKN layer has no prediction */
    ck_assert_int_eq(ns_bkn_moments(&net->layers[1], 0, mus, NULL, NULL, NULL), 0);
    ck_assert(fabs(net->layers[1].state[0].data[0] - (0.9 * before + 0.1 * mus[0])) <
              1e-5 * (1 + fabs(before)));
    ns_data_free(d);
    ns_net_free(net);
}
END_TEST

START_TEST(test_checkpoint_roundtrip)
{
    ns_net_opts o;
    ns_net_opts_default(&o);
    o.max_batch = 8;
    ns_net *a, *b;
    ck_assert_int_eq(ns_net_build("cnn", &o, 1, 8, 8, 10, &a), NS_OK);
    ck_assert_int_eq(ns_net_build("cnn", &o, 1, 8, 8, 10, &b), NS_OK);
    ns_init in = {NS_INIT_TORCH, 0, 0};
    ns_net_init(a, &in, 3);
    ns_net_init(b, &in, 4);
    for (size_t i = 0; i < a->nstate; i++)
        a->state[i] = (ns_real)(0.25 + 0.01 * i);
    ns_h5out f;
    ck_assert_int_eq(ns_h5out_create(&f, ns_test_path("ck.h5"), 1), NS_OK);
    ck_assert_int_eq(ns_run_write_checkpoint(f.fid, a, 42), NS_OK);
    ck_assert_int_eq(ns_run_read_checkpoint(f.fid, b, 42), NS_OK);
    ck_assert_mem_eq(a->params, b->params, a->nparams * sizeof(ns_real));
    ck_assert_mem_eq(a->state, b->state, a->nstate * sizeof(ns_real));
    ck_assert_int_eq(ns_run_read_checkpoint(f.fid, b, 7), NS_EINVAL);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "no checkpoint at step 7"));
    uint64_t *steps;
    size_t n;
    ck_assert_int_eq(ns_run_checkpoints(f.fid, &steps, &n), NS_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(steps[0], 42);
    ns_free(steps);
    /* A NaN weight is refused on load. */
    a->params[3] = (ns_real)NAN;
    ck_assert_int_eq(ns_run_write_checkpoint(f.fid, a, 43), NS_OK);
    ck_assert_int_eq(ns_run_read_checkpoint(f.fid, b, 43), NS_ENUMERIC);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "non-finite"));
    ck_assert_int_eq(ns_h5out_commit(&f), NS_OK);
    /* Committed file is in place; the temporary is gone. */
    hid_t fid;
    ck_assert_int_eq(ns_h5_open(ns_test_path("ck.h5"), &fid), NS_OK);
    ns_h5_close(fid);
    ns_net_free(a);
    ns_net_free(b);
}
END_TEST

START_TEST(test_atomic_refuse)
{
    ns_h5out f;
    const char *p = ns_test_path("exists.h5");
    ck_assert_int_eq(ns_h5out_create(&f, p, 1), NS_OK);
    ck_assert_int_eq(ns_h5out_commit(&f), NS_OK);
    ck_assert_int_eq(ns_h5out_create(&f, p, 0), NS_EINVAL);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "use --force"));
    ck_assert_int_eq(ns_h5out_create(&f, "/nonexistent-dir/x.h5", 1), NS_EIO);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "/nonexistent-dir/x.h5"));
    ck_assert_int_eq(ns_h5_open_format(p, NS_RUN_FORMAT, &f.fid), NS_EFORMAT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "not a normscope run file"));
}
END_TEST

/* Global-norm clipping: one SGD step without momentum moves the parameters
 * by lr * min(clip, |g|), with |g| the norm the history records. */
static double clipped_step(double clip, double *gnorm)
{
    ns_train_config c;
    ns_train_config_default(&c);
    snprintf(c.arch, sizeof c.arch, "mlp:16x1");
    snprintf(c.data, sizeof c.data, "gauss:3:5:96");
    snprintf(c.net.norm, sizeof c.net.norm, "none");
    c.momentum = 0;
    c.lr = 0.1;
    c.schedule = NS_SCHED_CONST;
    c.epochs = 0;
    c.steps = 1;
    c.batch = 32;
    c.clip = clip;
    c.threads = 2;
    const char *path = ns_test_path("clip.h5");
    ns_train_result r;
    ck_assert_int_eq(ns_train(&c, NULL, path, 1, "test", &r), NS_OK);
    ns_net *a, *b;
    ns_train_config cfg;
    uint64_t got;
    ck_assert_int_eq(ns_run_load(path, 0, 0, &a, &cfg, &got), NS_OK);
    ck_assert_int_eq(ns_run_load(path, 1, 0, &b, &cfg, &got), NS_OK);
    ck_assert_double_eq(cfg.clip, clip);
    double d2 = 0;
    for (size_t i = 0; i < a->nparams; i++)
        d2 += ((double)b->params[i] - a->params[i]) * ((double)b->params[i] - a->params[i]);
    hid_t fid;
    ck_assert_int_eq(ns_h5_open(path, &fid), NS_OK);
    ck_assert_int_eq(ns_h5_read_double(fid, "/history/step/grad_norm", gnorm, 1), NS_OK);
    ns_h5_close(fid);
    ns_net_free(a);
    ns_net_free(b);
    return sqrt(d2);
}

START_TEST(test_clip)
{
    ns_progress_set_quiet(1);
    double g0, g1;
    double free_step = clipped_step(0, &g0);
    ck_assert_double_eq_tol(free_step, 0.1 * g0, 1e3 * TOL * g0);
    ck_assert_double_gt(g0, 0.05);
    double step = clipped_step(0.5 * g0, &g1);
    ck_assert_double_eq_tol(g1, g0, 1e3 * TOL * g0);  /* the norm before clipping */
    /* clip / (|g| + 1e-6), as in PyTorch: 2e-6 relative here */
    ck_assert_double_eq_tol(step, 0.1 * 0.5 * g0, 1e-5 * g0 + 1e3 * TOL * g0);
    /* A threshold above the norm changes nothing. */
    ck_assert_double_eq_tol(clipped_step(2 * g0, &g1), free_step, 1e3 * TOL * g0);
}
END_TEST

int main(void)
{
    ns_set_threads(2);
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_optimizers);
    tcase_add_test(tc, test_schedules);
    tcase_add_test(tc, test_config_checks);
    tcase_add_test(tc, test_config_roundtrip);
    tcase_add_test(tc, test_config_missing_method_options);
    tcase_add_test(tc, test_config_bkn_modes);
    tcase_add_test(tc, test_recalibrate);
    tcase_add_test(tc, test_recalibrate_bkn);
    tcase_add_test(tc, test_checkpoint_roundtrip);
    tcase_add_test(tc, test_atomic_refuse);
    tcase_add_test(tc, test_clip);
    suite_add_tcase(s, tc);
    return ns_test_run(s);
}
