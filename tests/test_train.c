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
    /* A NaN weight is refused on load, as bad input naming the data set. */
    a->params[3] = (ns_real)NAN;
    ck_assert_int_eq(ns_run_write_checkpoint(f.fid, a, 43), NS_OK);
    ck_assert_int_eq(ns_run_read_checkpoint(f.fid, b, 43), NS_EFORMAT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "/checkpoints/43/params/00-conv/weight holds "
                                 "non-finite values"));
    /* A weight of the right size in another shape is refused too. */
    a->params[3] = 0;
    ck_assert_int_eq(ns_run_write_checkpoint(f.fid, a, 44), NS_OK);
    size_t td[4] = {1, 32, 3, 3};
    ck_assert_int_eq(ns_h5_write_real(f.fid, "/checkpoints/44/params/00-conv/weight", 4, td,
                                      a->layers[0].param[0].data), NS_OK);
    ck_assert_int_eq(ns_run_read_checkpoint(f.fid, b, 44), NS_EFORMAT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "/checkpoints/44/params/00-conv/weight has shape "
                                 "1x32x3x3, the architecture's is 32x1x3x3"));
    /* A negative running variance (a state flagged non-negative) is refused. */
    ns_layer *bn = &a->layers[1];
    ck_assert_str_eq(bn->state[1].name, "running_var");
    ck_assert_uint_eq(bn->state[1].flags, NS_TENSOR_NONNEG);
    ck_assert_uint_eq(bn->state[0].flags, 0);
    bn->state[1].data[2] = -1;
    ck_assert_int_eq(ns_run_write_checkpoint(f.fid, a, 45), NS_OK);
    ck_assert_int_eq(ns_run_read_checkpoint(f.fid, b, 45), NS_EFORMAT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "/checkpoints/45/state/01-bn/running_var holds "
                                 "negative values"));
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

/* A string attribute that holds several strings is refused, not read into
 * the room of one (H5Aread writes every element: a heap overflow for fixed
 * length, a stack overflow for variable length). */
START_TEST(test_h5_string_array)
{
    ns_h5out f;
    ck_assert_int_eq(ns_h5out_create(&f, ns_test_path("strarr.h5"), 1), NS_OK);
    hsize_t n = 70;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    for (int vlen = 0; vlen < 2; vlen++) {
        const char *name = vlen ? "v" : "fixed";
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, vlen ? H5T_VARIABLE : 6);
        char fixed[70][6];
        const char *ptr[70];
        for (int i = 0; i < 70; i++) {
            memcpy(fixed[i], "abcde", 6);
            ptr[i] = "abcde";
        }
        hid_t a = H5Acreate2(f.fid, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
        ck_assert_int_ge(a, 0);
        ck_assert_int_ge(H5Awrite(a, t, vlen ? (const void *)ptr : (const void *)fixed), 0);
        H5Aclose(a);
        H5Tclose(t);
        char buf[8];
        ck_assert_int_eq(ns_h5_get_str(f.fid, ".", name, buf, sizeof buf), NS_EFORMAT);
        ck_assert_ptr_nonnull(strstr(ns_errmsg(), "is not a string"));
    }
    H5Sclose(sp);
    ns_h5out_abort(&f);
}
END_TEST

/* /checkpoints without a step is an empty list (no qsort of NULL). */
START_TEST(test_checkpoints_none)
{
    ns_h5out f;
    ck_assert_int_eq(ns_h5out_create(&f, ns_test_path("nock.h5"), 1), NS_OK);
    ck_assert_int_eq(ns_h5_group(f.fid, "/checkpoints/x"), NS_OK);
    uint64_t *steps;
    size_t n = 7;
    ck_assert_int_eq(ns_run_checkpoints(f.fid, &steps, &n), NS_OK);
    ck_assert_uint_eq(n, 0);
    ns_free(steps);
    ns_h5out_abort(&f);
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
    ck_assert_int_eq(ns_train(&c, NULL, path, 1, "test", NULL, &r), NS_OK);
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

/* ------------------------------------------------ the option table */

/* A pointer to the field of table entry o in c. */
static void *opt_field(const ns_train_opt *o, ns_train_config *c)
{
    return (o->flags & NS_OPT_NET ? (char *)&c->net : (char *)c) + o->offset;
}

/* Stores v in the field if its type can hold it; 0 if it cannot. */
static int opt_store(const ns_train_opt *o, ns_train_config *c, double v)
{
    void *p = opt_field(o, c);
    switch (o->type) {
    case NS_OPT_DOUBLE: *(double *)p = v; return 1;
    case NS_OPT_SIZE:
        if (!(v >= 0 && v < 1.8e19) || v != floor(v)) return 0;
        *(size_t *)p = (size_t)v; return 1;
    case NS_OPT_INT:
        if (!(v >= -2e9 && v <= 2e9) || v != floor(v)) return 0;
        *(int *)p = (int)v; return 1;
    case NS_OPT_U64: return 0;
    }
    return 0;
}

/* Writes v as the /config attribute of o: an integer type for whole
 * values of integer options (as normscope writes them), else a double. */
static void opt_attr(hid_t fid, const ns_train_opt *o, double v)
{
    if (o->type != NS_OPT_DOUBLE && isfinite(v) && v == floor(v) && fabs(v) < 9e18)
        ck_assert_int_eq(ns_h5_attr_int(fid, "/config", o->key, (int64_t)v), NS_OK);
    else
        ck_assert_int_eq(ns_h5_attr_double(fid, "/config", o->key, v), NS_OK);
}

static const char *opt_name(const ns_train_opt *o)
{
    return o->option ? o->option : o->key;
}

/* v is refused by every path: the check (from the command line and, unless
 * it is the unset value, from files), the command-line parser, the struct
 * check and /config loading, each naming the option or key. */
static void opt_refused(const ns_train_opt *o, double v, hid_t fid)
{
    char why[256], txt[64];
    ns_train_config c, d;
    ck_assert_msg(ns_train_opt_check(o, v, 1, why, sizeof why) != 0,
                  "%s accepts %.17g on the command line", opt_name(o), v);
    int unset = (o->flags & NS_OPT_UNSET) && v == o->unset;
    if (!unset)
        ck_assert_msg(ns_train_opt_check(o, v, 0, why, sizeof why) != 0,
                      "%s accepts %.17g", opt_name(o), v);
    if (o->option) {
        ns_train_config_default(&c);
        snprintf(txt, sizeof txt, "%.17g", v);
        ck_assert_msg(ns_train_opt_parse(o, txt, &c) == NS_EINVAL,
                      "%s accepts '%s' on the command line", o->option, txt);
        ck_assert_msg(strstr(ns_errmsg(), o->option), "%s: %s", o->option, ns_errmsg());
    }
    if (unset)
        return;
    ns_train_config_default(&c);
    if (opt_store(o, &c, v)) {
        ck_assert_msg(ns_train_config_check(&c) == NS_EINVAL,
                      "ns_train_config_check accepts %s = %.17g", opt_name(o), v);
        ck_assert_msg(strstr(ns_errmsg(), opt_name(o)), "%s: %s", opt_name(o), ns_errmsg());
    }
    /* a seed of -1 in a file is 2^64 - 1, written as int64 */
    if (o->type == NS_OPT_U64 && v == floor(v))
        return;
    opt_attr(fid, o, v);
    ck_assert_msg(ns_train_config_load(fid, &d) == NS_EFORMAT,
                  "/config accepts %s = %.17g", o->key, v);
    char key[64];
    snprintf(key, sizeof key, "'%s'", o->key);
    ck_assert_msg(strstr(ns_errmsg(), key) && strstr(ns_errmsg(), ns_h5_name(fid)),
                  "%s: %s", o->key, ns_errmsg());
}

/* v is accepted by the parser (when typed), the struct check and /config
 * loading, and loads back as v. */
static void opt_accepted(const ns_train_opt *o, double v, int typed, hid_t fid)
{
    char why[256], txt[64];
    ns_train_config c, d;
    ck_assert_msg(ns_train_opt_check(o, v, typed, why, sizeof why) == 0, "%s refuses %.17g: %s",
                  opt_name(o), v, why);
    if (o->option && typed) {
        ns_train_config_default(&c);
        snprintf(txt, sizeof txt, o->type == NS_OPT_DOUBLE ? "%.17g" : "%.0f", v);
        ck_assert_msg(ns_train_opt_parse(o, txt, &c) == NS_OK, "%s refuses '%s': %s",
                      o->option, txt, ns_errmsg());
        ck_assert_double_eq(ns_train_opt_get(o, &c), v);
    }
    ns_train_config_default(&c);
    ck_assert(opt_store(o, &c, v));
    /* what ties settings together: a norm group within the batch, a length */
    if (!strcmp(o->key, "norm_group"))
        c.batch = c.net.norm_group ? c.net.norm_group : 1;
    if (!c.epochs && !c.steps)
        c.steps = 1;
    ck_assert_msg(ns_train_config_check(&c) == NS_OK, "%s = %.17g: %s", opt_name(o), v,
                  ns_errmsg());
    ck_assert_int_eq(ns_h5_attr_int(fid, "/config", "batch", (int64_t)c.batch), NS_OK);
    ck_assert_int_eq(ns_h5_attr_int(fid, "/config", "steps", (int64_t)c.steps), NS_OK);
    opt_attr(fid, o, v);
    ck_assert_msg(ns_train_config_load(fid, &d) == NS_OK, "/config %s = %.17g: %s", o->key, v,
                  ns_errmsg());
    /* MABN's buffer 0 (the rule) is resolved on loading, as training resolves it */
    double want = !strcmp(o->key, "mabn_buffer") && v == 0 ? (double)ns_mabn_buffer_size(&c.net)
                                                           : v;
    ck_assert_msg(ns_train_opt_get(o, &d) == want, "/config %s = %.17g loads as %.17g", o->key,
                  v, ns_train_opt_get(o, &d));
}

/* Every entry of the table, driven from the table: non-finite values,
 * values just outside each finite bound, non-integers for integer options
 * and the unset value on the command line are refused by the parser, the
 * struct check and /config loading alike; the bounds themselves (when
 * closed) and the defaults are accepted. */
START_TEST(test_option_table)
{
    ns_train_config def;
    ns_train_config_default(&def);
    ck_assert_int_gt(ns_train_opt_count(), 30);
    ck_assert_ptr_null(ns_train_opt_at(ns_train_opt_count()));
    ck_assert_ptr_eq(ns_train_opt_find("--adam-eps"), ns_train_opt_find("adam_eps"));
    ck_assert_ptr_null(ns_train_opt_find("--bogus"));
    ns_h5out f;
    ck_assert_int_eq(ns_h5out_create(&f, ns_test_path("opts.h5"), 1), NS_OK);
    ck_assert_int_eq(ns_train_config_save(f.fid, &def), NS_OK);
    for (size_t i = 0; i < ns_train_opt_count(); i++) {
        const ns_train_opt *o = ns_train_opt_at(i);
        ck_assert_ptr_eq(ns_train_opt_find(o->key), o);
        if (o->option)
            ck_assert_ptr_eq(ns_train_opt_find(o->option), o);
        double bad[8];
        size_t nb = 0;
        bad[nb++] = NAN;
        bad[nb++] = INFINITY;
        bad[nb++] = -INFINITY;
        int integer = o->type != NS_OPT_DOUBLE;
        if (o->type == NS_OPT_U64) {
            bad[nb++] = -1;
            bad[nb++] = 2.5;
        } else {
            if (isfinite(o->min))
                bad[nb++] = o->flags & NS_OPT_MIN_OPEN ? o->min
                            : integer ? o->min - 1 : nextafter(o->min, -INFINITY);
            if (isfinite(o->max))
                bad[nb++] = o->flags & NS_OPT_MAX_OPEN ? o->max
                            : integer ? o->max + 1 : nextafter(o->max, INFINITY);
            if (integer)
                bad[nb++] = o->min + 0.5;
            if (o->flags & NS_OPT_UNSET)
                bad[nb++] = o->unset;   /* refused when typed, accepted from files */
        }
        for (size_t k = 0; k < nb; k++)
            opt_refused(o, bad[k], f.fid);
        double dv = ns_train_opt_get(o, &def);
        if (o->type != NS_OPT_U64) {
            if (isfinite(o->min) && !(o->flags & NS_OPT_MIN_OPEN))
                opt_accepted(o, o->min, 1, f.fid);
            if (isfinite(o->max) && !(o->flags & NS_OPT_MAX_OPEN))
                opt_accepted(o, o->max, 1, f.fid);
            if (o->flags & NS_OPT_UNSET)
                opt_accepted(o, o->unset, 0, f.fid);
            opt_accepted(o, dv, !((o->flags & NS_OPT_UNSET) && dv == o->unset), f.fid);
        }
        /* back to the default for the next entry */
        ck_assert_int_eq(ns_train_config_save(f.fid, &def), NS_OK);
    }
    /* Integers are decimal digits on the command line. */
    ns_train_config c;
    ns_train_config_default(&c);
    ck_assert_int_eq(ns_train_opt_parse(ns_train_opt_find("--epochs"), " 3", &c), NS_EINVAL);
    ck_assert_int_eq(ns_train_opt_parse(ns_train_opt_find("--epochs"), "+3", &c), NS_EINVAL);
    ck_assert_int_eq(ns_train_opt_parse(ns_train_opt_find("--epochs"), "3.0", &c), NS_EINVAL);
    ck_assert_int_eq(ns_train_opt_parse(ns_train_opt_find("--seed"),
                                        "18446744073709551615", &c), NS_OK);
    ck_assert_uint_eq(c.seed, UINT64_MAX);
    ck_assert_int_eq(ns_train_opt_parse(ns_train_opt_find("--lr"), "0.1x", &c), NS_EINVAL);
    ck_assert_str_eq(ns_errmsg(), "--lr expects a number, got '0.1x'");
    ck_assert_int_eq(ns_train_opt_parse(ns_train_opt_find("--adam-eps"), "-1", &c), NS_EINVAL);
    ck_assert_str_eq(ns_errmsg(), "--adam-eps must be a finite number > 0, got '-1'");
    /* A seed from 2^63 up round-trips through its int64 attribute. */
    ck_assert_int_eq(ns_train_config_save(f.fid, &c), NS_OK);
    ns_train_config d;
    ck_assert_int_eq(ns_train_config_load(f.fid, &d), NS_OK);
    ck_assert_uint_eq(d.seed, UINT64_MAX);
    ns_h5out_abort(&f);
}
END_TEST

/* A value other than o's default that o accepts from files. */
static double other_value(const ns_opt *o)
{
    char why[256];
    if (o->choices)
        return o->choices[0].value != o->def ? o->choices[0].value : o->choices[1].value;
    if (o->flag)
        return 1 - o->def;
    const double c[] = {o->def + 1, o->def - 1, 0.5 * o->def, 0.5 * (o->min + o->max)};
    for (size_t k = 0; k < sizeof c / sizeof *c; k++)
        if (c[k] != o->def && (o->type == NS_OPT_U64 ||
                               ns_opt_check(o, c[k], 0, why, sizeof why) == 0))
            return c[k];
    ck_abort_msg("%s: no other value", o->key);
    return o->def;
}

/* Every setting of every table, walked once: keys, options and flags
 * unique over the training table and all method tables; the defaults are
 * ns_train_config_default's; a configuration with every setting off its
 * default round-trips through /config (choices stored by name as strings);
 * with the keys added after format version 1 removed it loads with their
 * old-run values, and a missing key of format version 1 is an error. */
START_TEST(test_settings_roundtrip)
{
    ns_train_config def, c, d;
    ns_train_config_default(&def);
    c = def;
    const ns_opt *o;
    size_t n = 0, nnum = 0;
    for (; (o = ns_train_setting_at(n)); n++) {
        const char *name = o->option ? o->option : o->flag;
        ck_assert_ptr_eq(ns_train_opt_find(o->key), o);
        if (name)
            ck_assert_ptr_eq(ns_train_opt_find(name), o);
        for (size_t k = 0; k < n; k++) {
            const ns_opt *p = ns_train_setting_at(k);
            const char *pname = p->option ? p->option : p->flag;
            ck_assert_msg(strcmp(o->key, p->key) != 0, "key '%s' twice", o->key);
            ck_assert_msg(!name || !pname || strcmp(name, pname) != 0, "'%s' twice", name);
        }
        ck_assert_msg(o->type == NS_OPT_U64 || ns_train_opt_get(o, &def) == o->def,
                      "%s: the default config holds %g, not %g", o->key,
                      ns_train_opt_get(o, &def), o->def);
        nnum += !o->choices;
        double v = other_value(o);
        if (o->type == NS_OPT_U64)
            *(uint64_t *)((char *)ns_train_opt_base(o, &c) + o->offset) = (uint64_t)v;
        else
            ns_opt_set(o, ns_train_opt_base(o, &c), v);
    }
    ck_assert_uint_eq(n, ns_train_setting_count());
    ck_assert_uint_eq(nnum, ns_train_opt_count());
    ck_assert_ptr_null(ns_train_setting_at(n));
    if (c.net.norm_group > c.batch)
        c.batch = c.net.norm_group;
    ck_assert_msg(ns_train_config_check(&c) == NS_OK, "%s", ns_errmsg());
    ns_h5out f;
    ck_assert_int_eq(ns_h5out_create(&f, ns_test_path("settings.h5"), 1), NS_OK);
    ck_assert_int_eq(ns_train_config_save(f.fid, &c), NS_OK);
    ck_assert_int_eq(ns_train_config_load(f.fid, &d), NS_OK);
    char buf[64];
    for (size_t i = 0; (o = ns_train_setting_at(i)); i++) {
        ck_assert_msg(ns_train_opt_get(o, &d) == ns_train_opt_get(o, &c),
                      "/config %s: saved %.17g, loaded %.17g", o->key, ns_train_opt_get(o, &c),
                      ns_train_opt_get(o, &d));
        ck_assert_int_eq(ns_h5_get_str(f.fid, "/config", o->key, buf, sizeof buf) == NS_OK,
                         (o->flags & NS_OPT_BY_NAME) != 0);
    }
    ck_assert_str_eq((ns_h5_get_str(f.fid, "/config", "bkn_predict", buf, sizeof buf), buf),
                     "last");
    /* a run written before the later keys existed */
    for (size_t i = 0; (o = ns_train_setting_at(i)); i++)
        if (o->flags & NS_OPT_OLD)
            ck_assert_int_ge(H5Adelete_by_name(f.fid, "/config", o->key, H5P_DEFAULT), 0);
    ck_assert_msg(ns_train_config_load(f.fid, &d) == NS_OK, "%s", ns_errmsg());
    for (size_t i = 0; (o = ns_train_setting_at(i)); i++) {
        double want = o->flags & NS_OPT_OLD ? o->old : ns_train_opt_get(o, &c);
        if (!strcmp(o->key, "mabn_buffer"))   /* 16: no longer the rule's 0 */
            ck_assert_double_eq(o->old, 16);
        ck_assert_msg(ns_train_opt_get(o, &d) == want, "old /config %s: loaded %.17g, not %.17g",
                      o->key, ns_train_opt_get(o, &d), want);
    }
    ck_assert_int_eq(d.net.bkn_predict, NS_BKN_PREDICT_LAST);
    ck_assert_int_eq(d.net.bkn_grad, 0);
    ck_assert_int_eq(d.net.frn_relu, 1);
    /* a key every run has is required */
    ck_assert_int_ge(H5Adelete_by_name(f.fid, "/config", "bn_eps", H5P_DEFAULT), 0);
    ck_assert_int_eq(ns_train_config_load(f.fid, &d), NS_EFORMAT);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "'bn_eps'"));
    ns_h5out_abort(&f);
}
END_TEST

/* Settings the table cannot see alone are checked together. */
START_TEST(test_config_cross_checks)
{
    ns_train_config c;
    ns_train_config_default(&c);
    snprintf(c.net.norm, sizeof c.net.norm, "xyz");
    ck_assert_int_eq(ns_train_config_check(&c), NS_EINVAL);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "unknown normalization method 'xyz'"));
    ns_train_config_default(&c);
    snprintf(c.arch, sizeof c.arch, "mlp,banana");
    ck_assert_int_eq(ns_train_config_check(&c), NS_EINVAL);
    ns_train_config_default(&c);
    c.init.kind = NS_INIT_GAUSS;
    c.init.sw2 = INFINITY;
    ck_assert_int_eq(ns_train_config_check(&c), NS_EINVAL);
    ns_init in;
    ck_assert_int_eq(ns_parse_init("gauss:inf,0", &in), NS_EINVAL);
    ck_assert_int_eq(ns_parse_schedule("step:2@inf", &c), NS_EINVAL);
    ns_train_config_default(&c);
    c.epochs = 0;
    ck_assert_int_eq(ns_train_config_check(&c), NS_EINVAL);
    ns_train_config_default(&c);
    c.net.norm_group = 256;
    ck_assert_int_eq(ns_train_config_check(&c), NS_EINVAL);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "--norm-group 256 is larger than --batch 128"));
}
END_TEST

/* ------------------------------------------------- reading run files */

/* A run of 3 steps (batches of 32) on a small synthetic set: checkpoints
 * 0 and 3. */
static void small_run(const char *path, const char *norm, uint64_t seed, size_t epochs,
                      size_t steps)
{
    ns_train_config c;
    ns_train_config_default(&c);
    snprintf(c.arch, sizeof c.arch, "fc:12,norm,relu,fc:out");
    snprintf(c.data, sizeof c.data, "gauss:3:5:96");
    snprintf(c.net.norm, sizeof c.net.norm, "%s", norm);
    c.schedule = NS_SCHED_CONST;
    c.epochs = epochs;
    c.steps = steps;
    c.batch = 32;
    c.seed = seed;
    c.threads = 2;
    c.net.gn_groups = 4;   /* GroupNorm of 12 single features would be zero */
    const ns_norm_method *m = ns_norm_find(norm);
    if (m->flags & NS_NORM_MIMIC_INIT)
        c.init.kind = NS_INIT_MIMIC;
    ns_train_result r;
    ck_assert_msg(ns_train(&c, NULL, path, 1, "test", NULL, &r) == NS_OK, "%s: %s", norm, ns_errmsg());
}

static void copy_file(const char *src, const char *dst)
{
    ck_assert_int_eq(ns_test_system("cp '%s' '%s'", src, dst), 0);
}

/* A copy of the good run with one thing changed, and the message each
 * reader must give (ns_run_check and ns_run_load alike). */
static void damaged(const char *good, int which, const char *want)
{
    char p[1024];
    snprintf(p, sizeof p, "%s", ns_test_path("damaged.h5"));
    copy_file(good, p);
    hid_t fid = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(fid, 0);
    const char *w = "/checkpoints/3/params/00-dense/weight";
    const char *rv = "/checkpoints/3/state/01-bn/running_var";
    double v[64];
    size_t d1[1] = {12}, d2[2] = {5, 12}, d0[1] = {1};
    switch (which) {
    case 0: /* transposed weight: the size matches, the shape does not */
        ck_assert_int_eq(ns_h5_read_double(fid, w, v, 60), NS_OK);
        ck_assert_int_eq(ns_h5_write_double(fid, w, 2, d2, v), NS_OK);
        break;
    case 1: /* a negative running variance */
        ck_assert_int_eq(ns_h5_read_double(fid, rv, v, 12), NS_OK);
        v[4] = -0.25;
        ck_assert_int_eq(ns_h5_write_double(fid, rv, 1, d1, v), NS_OK);
        break;
    case 2: /* an infinite running variance */
        ck_assert_int_eq(ns_h5_read_double(fid, rv, v, 12), NS_OK);
        v[0] = INFINITY;
        ck_assert_int_eq(ns_h5_write_double(fid, rv, 1, d1, v), NS_OK);
        break;
    case 3: /* a NaN weight */
        ck_assert_int_eq(ns_h5_read_double(fid, w, v, 60), NS_OK);
        v[7] = NAN;
        ck_assert_int_eq(ns_h5_write_double(fid, w, 2, (size_t[]){12, 5}, v), NS_OK);
        break;
    case 4: ck_assert_int_eq(ns_h5_attr_int(fid, ".", "format_version", 2), NS_OK); break;
    case 5: ck_assert_int_eq(ns_h5_attr_int(fid, ".", "format_version", 0), NS_OK); break;
    case 6:
        for (int k = 0; k < 5; k++)
            v[k] = k == 2 ? 0 : 1;
        ck_assert_int_eq(ns_h5_attr_doubles(fid, "/data", "std", v, 5), NS_OK);
        break;
    case 7: ck_assert_int_eq(ns_h5_attr_doubles(fid, "/data", "mean", v, 2), NS_OK); break;
    case 8: ck_assert_int_eq(ns_h5_attr_int(fid, "/config", "threads", 1000000000), NS_OK); break;
    case 9: ck_assert_int_eq(ns_h5_attr_int(fid, "/config", "train_n", -7), NS_OK); break;
    case 10: ck_assert_int_ge(H5Ldelete(fid, "/checkpoints/3/state/01-bn/running_mean",
                                        H5P_DEFAULT), 0); break;
    case 11: ck_assert_int_eq(ns_h5_write_double(fid, rv, 1, d0, v), NS_OK); break;
    case 12: ck_assert_int_eq(ns_h5_attr_int(fid, "/data", "c", 17), NS_OK); break;
    }
    H5Fclose(fid);
    char full[1200];
    snprintf(full, sizeof full, "cannot read '%s': %s", p, want);
    ck_assert_int_eq(ns_run_check(p), NS_EFORMAT);
    ck_assert_msg(strstr(ns_errmsg(), full), "case %d: '%s' lacks '%s'", which, ns_errmsg(), full);
    ns_net *net = NULL;
    ns_train_config cfg;
    uint64_t got;
    ck_assert_int_eq(ns_run_load(p, UINT64_MAX, 0, &net, &cfg, &got), NS_EFORMAT);
    ck_assert_ptr_null(net);
    ck_assert_msg(strstr(ns_errmsg(), full), "case %d: '%s' lacks '%s'", which, ns_errmsg(), full);
}

START_TEST(test_run_file_checks)
{
    ns_progress_set_quiet(1);
    char good[1024];
    snprintf(good, sizeof good, "%s", ns_test_path("good.h5"));
    small_run(good, "bn", 1, 0, 3);
    ck_assert_int_eq(ns_run_check(good), NS_OK);
    hid_t fid;
    ns_train_config cfg;
    ns_run_data d;
    ck_assert_int_eq(ns_run_open(good, &fid, &cfg, &d), NS_OK);
    ck_assert_uint_eq(d.c, 5);
    ck_assert_uint_eq(d.nclass, 3);
    ck_assert_double_gt(d.std[4], 0);
    ck_assert_str_eq(cfg.arch, "fc:12,norm,relu,fc:out");
    ns_h5_close(fid);
    damaged(good, 0, "/checkpoints/3/params/00-dense/weight has shape 5x12, the "
            "architecture's is 12x5");
    damaged(good, 1, "/checkpoints/3/state/01-bn/running_var holds negative values");
    damaged(good, 2, "/checkpoints/3/state/01-bn/running_var holds non-finite values");
    damaged(good, 3, "/checkpoints/3/params/00-dense/weight holds non-finite values");
    damaged(good, 4, "format_version 2 is newer than this normscope reads (1)");
    damaged(good, 5, "format_version 0 is not a version normscope wrote");
    damaged(good, 6, "/data attribute 'std' holds values that are not positive");
    damaged(good, 7, "/data attribute 'mean' has 2 values for 5 channels");
    damaged(good, 8, "/config attribute 'threads' must be an integer in 1..256 or 0, got "
            "1000000000");
    damaged(good, 9, "/config attribute 'train_n' must be an integer in 0..1000000000, got -7");
    damaged(good, 10, "data set '/checkpoints/3/state/01-bn/running_mean' is missing");
    damaged(good, 11, "/checkpoints/3/state/01-bn/running_var has shape 1, the "
            "architecture's is 12");
    damaged(good, 12, "/data attribute 'c' must be an integer in 1..16, got 17");
}
END_TEST

/* The checks refuse nothing a run writes: a short run of every method
 * passes ns_run_check (the running statistics each method keeps are
 * within their flags). */
START_TEST(test_run_check_every_method)
{
    ns_progress_set_quiet(1);
    for (size_t i = 0; i < ns_norm_count(); i++) {
        const ns_norm_method *m = ns_norm_at(i);
        if (!strcmp(m->name, "in"))   /* refused on the dense slots of this net */
            continue;
        const char *p = ns_test_path("method.h5");
        small_run(p, m->name, 2, 0, 3);
        ck_assert_msg(ns_run_check(p) == NS_OK, "%s: %s", m->name, ns_errmsg());
    }
}
END_TEST

/* Resuming an interrupted run without a new length finishes it at the
 * length it was started with, bit for bit as the uninterrupted run; the
 * result describes the run's own configuration (not the caller's); a
 * complete run needs a new length. */
START_TEST(test_resume_planned_length)
{
    ns_progress_set_quiet(1);
    char whole[1024], part[1024], done[1024];
    snprintf(whole, sizeof whole, "%s", ns_test_path("whole.h5"));
    snprintf(part, sizeof part, "%s", ns_test_path("part.h5"));
    snprintf(done, sizeof done, "%s", ns_test_path("done.h5"));
    small_run(whole, "bn", 3, 2, 0);
    small_run(part, "bn", 3, 1, 0);
    /* part: the first epoch of a two-epoch run, stopped there */
    hid_t fid = H5Fopen(part, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(fid, 0);
    ck_assert_int_eq(ns_h5_attr_str(fid, ".", "status", "interrupted"), NS_OK);
    ck_assert_int_eq(ns_h5_attr_int(fid, "/config", "epochs", 2), NS_OK);
    H5Fclose(fid);
    ns_train_config c;
    ns_train_config_default(&c);   /* mlp, seed 1: none of it applies */
    c.epochs = c.steps = 0;
    ns_train_result r;
    ck_assert_int_eq(ns_train(&c, part, done, 0, "test", NULL, &r), NS_OK);
    ck_assert_uint_eq(r.steps, 6);
    ck_assert_str_eq(r.config.arch, "fc:12,norm,relu,fc:out");
    ck_assert_uint_eq(r.config.seed, 3);
    ck_assert_uint_eq(r.config.epochs, 2);
    ns_net *a, *b;
    ns_train_config ca, cb;
    uint64_t sa, sb;
    ck_assert_int_eq(ns_run_load(whole, UINT64_MAX, 0, &a, &ca, &sa), NS_OK);
    ck_assert_int_eq(ns_run_load(done, UINT64_MAX, 0, &b, &cb, &sb), NS_OK);
    ck_assert_uint_eq(sa, 6);
    ck_assert_uint_eq(sb, 6);
    ck_assert_mem_eq(a->params, b->params, a->nparams * sizeof(ns_real));
    ck_assert_mem_eq(a->state, b->state, a->nstate * sizeof(ns_real));
    ns_net_free(a);
    ns_net_free(b);
    /* complete: nothing to continue without a new length */
    ck_assert_int_eq(ns_train(&c, whole, ns_test_path("more.h5"), 0, "test", NULL, &r), NS_EINVAL);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "already has 6 steps"));
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
    tcase_add_test(tc, test_h5_string_array);
    tcase_add_test(tc, test_checkpoints_none);
    tcase_add_test(tc, test_clip);
    tcase_add_test(tc, test_option_table);
    tcase_add_test(tc, test_settings_roundtrip);
    tcase_add_test(tc, test_config_cross_checks);
    tcase_add_test(tc, test_run_file_checks);
    tcase_add_test(tc, test_run_check_every_method);
    tcase_add_test(tc, test_resume_planned_length);
    suite_add_tcase(s, tc);
    return ns_test_run(s);
}
