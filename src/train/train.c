/*
 * The training loop.  Mini-batch SGD-family training with evaluation each
 * epoch, checkpoints, history tables and a run file written atomically;
 * evaluation and recalibration are in evaluate.c, resumption in resume.c.
 *
 * Reproducibility: the shuffle of epoch e comes from the stream (seed, e)
 * and dropout masks from (seed, step), so the random numbers of a step
 * depend only on the seed and the step.  A checkpoint plus the optimiser
 * state therefore resumes bit-for-bit (same thread count), and identical
 * seeds and thread counts give identical runs.
 */

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "normscope/norm.h"
#include "trainer.h"

/* ------------------------------------------------------------ state */

static void tables_init(ns_table *ts, ns_table *te, size_t nw)
{
    static const char *sn[S_NCOL] = {"step", "epoch", "loss", "acc", "lr", "grad_norm",
                                     "act_bytes"};
    static const char *sd[S_NCOL] = {
        "optimiser step (1-based: the row describes step k)", "epoch (0-based) of the step",
        "mini-batch training loss (mean cross-entropy)", "mini-batch training accuracy",
        "learning rate used by the step", "L2 norm of the full parameter gradient",
        "bytes of activations kept for backward"};
    static const char *en[E_NCOL] = {"epoch", "step", "train_loss", "train_acc", "test_loss",
                                     "test_acc", "lr", "seconds", "images_per_second"};
    static const char *ed[E_NCOL] = {
        "epochs completed", "optimiser steps completed", "mean training loss over the epoch",
        "training accuracy over the epoch (train mode)", "test loss (eval mode)",
        "test accuracy (eval mode)", "learning rate at the end of the epoch",
        "wall time of the epoch's training steps", "training throughput"};
    memset(ts, 0, sizeof *ts);
    memset(te, 0, sizeof *te);
    ts->ncols = S_NCOL;
    te->ncols = E_NCOL;
    for (int i = 0; i < S_NCOL; i++) {
        ts->names[i] = sn[i];
        ts->desc[i] = sd[i];
    }
    ts->is_int[S_STEP] = ts->is_int[S_EPOCH] = 1;
    for (int i = 0; i < E_NCOL; i++) {
        te->names[i] = en[i];
        te->desc[i] = ed[i];
    }
    te->is_int[E_EPOCH] = te->is_int[E_STEP] = 1;
    ts->width = nw;
}

static int write_root_attrs(ns_hid fid, const ns_train_config *c, const char *cmdline,
                            const ns_dataset *train, const ns_dataset *test,
                            const double *mean, const double *std)
{
    char now[32];
    ns_iso_time(now, sizeof now);
    int st = ns_h5_attr_str(fid, ".", "format", NS_RUN_FORMAT);
    if (!st) st = ns_h5_attr_int(fid, ".", "format_version", NS_RUN_FORMAT_VERSION);
    if (!st) st = ns_h5_attr_str(fid, ".", "arch", c->arch);
    if (!st) st = ns_h5_attr_str(fid, ".", "norm", c->net.norm);
    if (!st) st = ns_h5_attr_int(fid, ".", "seed", (int64_t)c->seed);
    if (!st) st = ns_h5_attr_str(fid, ".", "dataset", c->data);
    if (!st) st = ns_h5_attr_str(fid, ".", "command_line", cmdline ? cmdline : "");
    if (!st) st = ns_h5_attr_str(fid, ".", "normscope_version", NS_VERSION);
    if (!st) st = ns_h5_attr_str(fid, ".", "created", now);
    if (!st) st = ns_h5_attr_str(fid, ".", "precision", NS_REAL_NAME);
    if (!st) st = ns_h5_attr_str(fid, ".", "status", "running");
    if (!st) st = ns_train_config_save(fid, c);
    if (!st) st = ns_h5_group(fid, "/data");
    if (!st) st = ns_h5_attr_doubles(fid, "/data", "mean", mean, train->c);
    if (!st) st = ns_h5_attr_doubles(fid, "/data", "std", std, train->c);
    if (!st) st = ns_h5_attr_str(fid, "/data", "preprocessing",
                                 c->standardize ? "x <- (x - mean[c]) / std[c], statistics "
                                                  "of the training split" : "none");
    if (!st) st = ns_h5_attr_int(fid, "/data", "train_n", (int64_t)train->n);
    if (!st) st = ns_h5_attr_int(fid, "/data", "test_n", (int64_t)test->n);
    if (!st) st = ns_h5_attr_int(fid, "/data", "c", (int64_t)train->c);
    if (!st) st = ns_h5_attr_int(fid, "/data", "h", (int64_t)train->h);
    if (!st) st = ns_h5_attr_int(fid, "/data", "w", (int64_t)train->w);
    if (!st) st = ns_h5_attr_int(fid, "/data", "nclass", (int64_t)train->nclass);
    return st;
}

static int checkpoint(ns_hid fid, const ns_net *net, size_t step, size_t epoch, double lr,
                      double train_loss, double test_loss, double test_acc)
{
    char g[64];
    snprintf(g, sizeof g, "/checkpoints/%zu", step);
    int st = ns_run_write_checkpoint(fid, net, step);
    if (!st) st = ns_h5_attr_int(fid, g, "step", (int64_t)step);
    if (!st) st = ns_h5_attr_int(fid, g, "epoch", (int64_t)epoch);
    if (!st) st = ns_h5_attr_double(fid, g, "lr", lr);
    if (!st) st = ns_h5_attr_double(fid, g, "train_loss", train_loss);
    if (!st) st = ns_h5_attr_double(fid, g, "test_loss", test_loss);
    if (!st) st = ns_h5_attr_double(fid, g, "test_acc", test_acc);
    return st;
}

static int weight_layers(const ns_net *net, size_t *idx, char *names, size_t len)
{
    int n = 0;
    size_t used = 0;
    names[0] = '\0';
    for (size_t i = 0; i < net->nlayers; i++) {
        const ns_layer *L = &net->layers[i];
        if (L->ops->role == NS_ROLE_DENSE || L->ops->role == NS_ROLE_CONV) {
            idx[n++] = i;
            used += (size_t)snprintf(names + used, used < len ? len - used : 0, "%s%s",
                                     n > 1 ? "," : "", L->name);
        }
    }
    return n;
}

static int is_ckpt_step(const ns_train_config *c, size_t step)
{
    for (size_t i = 0; i < c->nckpt_steps; i++)
        if (c->ckpt_steps[i] == step)
            return 1;
    return 0;
}

/* Test hook, used only by the CLI tests of interrupted saves: with
 * NS_TEST_SAVE_PAUSE=SECONDS in the environment, the save of the run file
 * pauses that long once part of it is written, after a note on stderr, so
 * that a test can send signals in the middle of a save. */
static void test_save_pause(void)
{
    const char *s = getenv("NS_TEST_SAVE_PAUSE");
    double sec = s ? atof(s) : 0;
    if (!(sec > 0 && sec < 600))
        return;
    ns_note("normscope: test: save paused for %g s", sec);
    struct timespec ts = {(time_t)sec, (long)((sec - floor(sec)) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* --------------------------------------------------------------- train */

static void trainer_release(trainer *t)
{
    ns_data_free(t->train);
    ns_data_free(t->test);
    ns_net_free(t->net);
    ns_optim_release(&t->opt);
    ns_table_release(&t->ts);
    ns_table_release(&t->te);
    ns_table_release(&t->tm);
    ns_free(t->midx);
    ns_free(t->mrow);
    ns_free(t->perm);
    ns_free(t->widx);
    ns_free(t->x);
    ns_free(t->dlogits);
    ns_free(t->y);
    ns_free(t->wrow);
}

int ns_train(const ns_train_config *c, const char *resume, const char *out,
             int force, const char *cmdline, volatile sig_atomic_t *stop,
             ns_train_result *res)
{
    trainer T;
    memset(&T, 0, sizeof T);
    T.out.fid = NS_HID_INVALID;
    memset(res, 0, sizeof *res);
    ns_hid rfid = NS_HID_INVALID;
    size_t start_step = 0;
    double acc3[3] = {0, 0, 0};  /* epoch loss sum, hits, samples */
    char wnames[4096];
    int st;

    T.cfg = *c;
    res->config = *c;
    if (resume && (st = ns_trainer_resume_begin(resume, c, &T.cfg, &rfid)))
        goto cleanup;
    if ((st = ns_train_config_check(&T.cfg)))
        goto cleanup;
    res->config = T.cfg;
    {
        /* Inputs that the output would replace: the run being resumed
         * (unless it is continued in place, out spelled as resume) and a
         * data set file. */
        const char *in[2] = {resume && strcmp(resume, out) ? resume : NULL, T.cfg.data};
        if ((st = ns_out_names_input(out, in, 1))) {
            st = ns_error(st, "%s, or none to continue '%s' in place", ns_errmsg(), resume);
            goto cleanup;
        }
        if ((st = ns_out_names_input(out, in + 1, 1)))
            goto cleanup;
    }
    ns_set_threads(T.cfg.threads);
    T.cfg.net.max_batch = T.cfg.batch;
    T.cfg.net.mabn_buffer = ns_mabn_buffer_size(&T.cfg.net);

    if ((st = ns_train_load_data(&T.cfg, NS_SPLIT_TRAIN, &T.train, T.mean, T.std)))
        goto cleanup;
    if ((st = ns_train_load_data(&T.cfg, NS_SPLIT_TEST, &T.test, T.mean, T.std)))
        goto cleanup;
    if ((st = ns_net_build(T.cfg.arch, &T.cfg.net, T.train->c, T.train->h, T.train->w,
                           T.train->nclass, &T.net)))
        goto cleanup;
    ns_net_init(T.net, &T.cfg.init, T.cfg.seed);
    if ((st = ns_optim_alloc(&T.opt, T.cfg.optim, T.net->nparams)))
        goto cleanup;

    size_t B = T.cfg.batch, N = T.train->n, dim = ns_data_dim(T.train);
    size_t spe = (N + B - 1) / B;
    size_t total = T.cfg.steps ? T.cfg.steps : T.cfg.epochs * spe;
    T.perm = ns_malloc(N * sizeof *T.perm);
    T.x = ns_malloc(B * dim * sizeof *T.x);
    T.y = ns_malloc(B * sizeof *T.y);
    T.dlogits = ns_malloc(B * T.net->nout * sizeof *T.dlogits);
    T.widx = ns_malloc((T.net->nlayers + 1) * sizeof *T.widx);
    if (!T.perm || !T.x || !T.y || !T.dlogits || !T.widx) {
        st = NS_ENOMEM;
        goto cleanup;
    }
    T.nw = (size_t)weight_layers(T.net, T.widx, wnames, sizeof wnames);
    T.wrow = ns_malloc((T.nw + 1) * sizeof *T.wrow);
    if (!T.wrow) {
        st = NS_ENOMEM;
        goto cleanup;
    }
    tables_init(&T.ts, &T.te, T.nw);
    /* Layers with per-step measurements (UBN's condensation). */
    char mnames[4096] = "";
    T.midx = ns_malloc((T.net->nlayers + 1) * sizeof *T.midx);
    T.mrow = ns_malloc((T.net->nlayers + 1) * sizeof *T.mrow);
    if (!T.midx || !T.mrow) {
        st = NS_ENOMEM;
        goto cleanup;
    }
    for (size_t i = 0, used = 0; i < T.net->nlayers; i++) {
        const ns_layer *L = &T.net->layers[i];
        double v;
        const char *nm;
        if (!L->ops->metrics || L->ops->metrics(L, &v, &nm, 1) < 1)
            continue;
        if (T.mname && strcmp(T.mname, nm) != 0)
            continue;
        T.mname = nm;
        T.midx[T.nm++] = i;
        used += (size_t)snprintf(mnames + used, used < sizeof mnames ? sizeof mnames - used : 0,
                                 "%s%s", T.nm > 1 ? "," : "", L->name);
    }
    memset(&T.tm, 0, sizeof T.tm);
    T.tm.ncols = 1;
    T.tm.names[0] = "metric_step";
    T.tm.is_int[0] = 1;
    T.tm.width = T.nm;

    if (stop && *stop) {
        st = ns_error(NS_EFAIL, "interrupted before training started; nothing written");
        goto cleanup;
    }
    if (resume) {
        if ((st = ns_trainer_resume_state(&T, &rfid, resume, out, force, cmdline, total,
                                          &start_step, acc3)))
            goto cleanup;
    } else {
        if ((st = ns_h5out_create(&T.out, out, force)))
            goto cleanup;
        if ((st = write_root_attrs(T.out.fid, &T.cfg, cmdline, T.train, T.test, T.mean, T.std)))
            goto cleanup;
        double tl, ta;
        if ((st = ns_evaluate(T.net, T.test, &tl, &ta)))
            goto cleanup;
        if ((st = checkpoint(T.out.fid, T.net, 0, 0, ns_schedule_lr(&T.cfg, 0, spe, total),
                             NAN, tl, ta)))
            goto cleanup;
    }

    size_t act_bytes = ns_net_activation_bytes(T.net, B);
    int agc = (ns_norm_find(T.cfg.net.norm)->flags & NS_NORM_AGC) != 0;
    ns_progress prog;
    char label[64], extra[128];
    double t_epoch = ns_time(), t_all = 0;
    double last_tl = NAN, last_ta = NAN;
    size_t epoch_of_perm = (size_t)-1, step = start_step;
    snprintf(label, sizeof label, "epoch %zu/%zu", start_step / spe + 1, (total + spe - 1) / spe);
    ns_progress_begin(&prog, label, spe);
    while (step < total) {
        size_t epoch = step / spe, b = step % spe;
        if (epoch != epoch_of_perm) {
            ns_rng r;
            ns_rng_seed(&r, T.cfg.seed, 0x5eed0000u + epoch);
            for (size_t i = 0; i < N; i++)
                T.perm[i] = i;
            ns_rng_shuffle(&r, T.perm, N);
            epoch_of_perm = epoch;
        }
        size_t lo = b * B, n = N - lo < B ? N - lo : B;
        ns_data_gather(T.train, T.perm + lo, n, T.x, T.y);
        ns_ctx ctx = {.mode = NS_MODE_TRAIN, .seed = T.cfg.seed, .step = step};
        if ((st = ns_net_forward(T.net, T.x, n, &ctx)))
            break;
        double loss;
        size_t hits;
        ns_softmax_ce(ns_net_logits(T.net), T.y, n, T.net->nout, T.dlogits, &loss, &hits);
        /* A cross-entropy above 1e6 means logits a million apart: the run has
         * blown up even where the numbers are still finite (double builds). */
        if (!isfinite(loss) || loss > NS_DIVERGED_LOSS) {
            res->diverged = 1;
            res->diverged_step = step + 1;
            ns_progress_end(&prog, "");
            ns_note("training diverged: loss is %g at step %zu", loss, step + 1);
            break;
        }
        ns_net_zero_grad(T.net);
        ns_net_backward(T.net, T.dlogits);
        /* The history keeps the norm before clipping. */
        double gnorm = ns_net_clip_grad(T.net, T.cfg.clip);
        if (agc)
            ns_net_agc(T.net, T.cfg.net.agc);
        double lr = ns_schedule_lr(&T.cfg, step, spe, total);
        ns_optim_step(&T.opt, &T.cfg, lr, T.net->params, T.net->grads);
        ns_net_project(T.net);
        step++;
        acc3[0] += loss * (double)n;
        acc3[1] += (double)hits;
        acc3[2] += (double)n;
        for (size_t k = 0; k < T.nw; k++) {
            const ns_tensor *W = &T.net->layers[T.widx[k]].param[0];
            double s = 0;
            const ns_real *wd = W->data;
#pragma omp simd reduction(+ : s)
            for (size_t i = 0; i < W->size; i++)
                s += (double)wd[i] * wd[i];
            T.wrow[k] = sqrt(s);
        }
        double row[S_NCOL] = {(double)step, (double)epoch, loss, (double)hits / (double)n,
                              lr, gnorm, (double)act_bytes};
        if ((st = ns_table_append(&T.ts, row, T.wrow)))
            break;
        if (T.nm) {
            for (size_t k = 0; k < T.nm; k++) {
                const ns_layer *L = &T.net->layers[T.midx[k]];
                const char *nm;
                L->ops->metrics(L, &T.mrow[k], &nm, 1);
            }
            double srow[1] = {(double)step};
            if ((st = ns_table_append(&T.tm, srow, T.mrow)))
                break;
        }
        snprintf(extra, sizeof extra, "loss %.4f acc %.1f%%", acc3[0] / acc3[2],
                 100 * acc3[1] / acc3[2]);
        ns_progress_update(&prog, b + 1, extra);

        int epoch_end = step % spe == 0 || step == total;
        if (epoch_end) {
            double sec = ns_time() - t_epoch;
            t_all += sec;
            if ((st = ns_evaluate(T.net, T.test, &last_tl, &last_ta)))
                break;
            double erow[E_NCOL] = {(double)(epoch + 1), (double)step, acc3[0] / acc3[2],
                                   acc3[1] / acc3[2], last_tl, last_ta, lr, sec,
                                   acc3[2] / sec};
            if ((st = ns_table_append(&T.te, erow, NULL)))
                break;
            snprintf(extra, sizeof extra, "loss %.4f acc %.2f%% test %.2f%% (%.0f img/s)",
                     erow[E_TLOSS], 100 * erow[E_TACC], 100 * last_ta, erow[E_IPS]);
            ns_progress_end(&prog, extra);
            int ck = T.cfg.ckpt_every && (epoch + 1) % T.cfg.ckpt_every == 0;
            if ((ck || step == total) &&
                (st = checkpoint(T.out.fid, T.net, step, epoch + 1, lr, erow[E_TLOSS],
                                 last_tl, last_ta)))
                break;
            acc3[0] = acc3[1] = acc3[2] = 0;
            if (step < total) {
                snprintf(label, sizeof label, "epoch %zu/%zu", step / spe + 1,
                         (total + spe - 1) / spe);
                ns_progress_begin(&prog, label, spe);
            }
            t_epoch = ns_time();
        } else if (is_ckpt_step(&T.cfg, step)) {
            if ((st = checkpoint(T.out.fid, T.net, step, epoch, lr, acc3[0] / acc3[2],
                                 NAN, NAN)))
                break;
        }
        /* A stop asked for after the last step changes nothing: the run is
         * complete and is saved as such. */
        if (stop && *stop && step < total) {
            res->interrupted = 1;
            ns_progress_end(&prog, "");
            ns_note("interrupted at step %zu: saving a resumable run file", step);
            char g[64];
            snprintf(g, sizeof g, "/checkpoints/%zu", step);
            if (!ns_h5_exists(T.out.fid, g))
                st = checkpoint(T.out.fid, T.net, step, epoch, lr, acc3[0] / acc3[2],
                                NAN, NAN);
            break;
        }
    }
    if (st)
        goto cleanup;

    /* Close the file: optimiser state, history, memory, status.  The
     * caller's signal handler only sets *stop, so nothing cuts this short. */
    ns_hid f = T.out.fid;
    if ((st = ns_trainer_save_optimizer(f, &T.opt, step, acc3)))
        goto cleanup;
    test_save_pause();
    if ((st = ns_table_write(&T.ts, f, "/history/step", "weight_norm", wnames)))
        goto cleanup;
    if (T.nw && (st = ns_h5_describe(f, "/history/step/weight_norm",
                                     "L2 norm of each layer's weight after the step", NULL)))
        goto cleanup;
    if ((st = ns_table_write(&T.te, f, "/history/epoch", NULL, NULL)))
        goto cleanup;
    if (T.nm) {
        /* Only the matrix: the step column is already in /history/step. */
        ns_table mt = T.tm;
        mt.ncols = 0;
        char mp[128];
        snprintf(mp, sizeof mp, "/history/step/%s", T.mname);
        if ((st = ns_table_write(&mt, f, "/history/step", T.mname, mnames)) ||
            (st = ns_h5_describe(f, mp, "per-layer measurement of each training step "
                                 "(condensation: mean pairwise cosine similarity of the "
                                 "BN inputs of the batch, normscope's definition)", NULL)))
            goto cleanup;
    }
    st = ns_h5_group(f, "/memory");
    if (!st) st = ns_h5_attr_int(f, "/memory", "activation_bytes", (int64_t)act_bytes);
    if (!st) st = ns_h5_attr_int(f, "/memory", "peak_rss_bytes", (int64_t)ns_peak_rss());
    if (!st) st = ns_h5_attr_int(f, "/memory", "parameter_bytes",
                                 (int64_t)(T.net->nparams * sizeof(ns_real)));
    if (!st)
        st = ns_h5_attr_str(f, "/memory", "description",
                            "activation_bytes: activations kept for backward by one "
                            "training step at the configured batch; peak_rss_bytes: peak "
                            "resident memory of the training process");
    const char *status = res->diverged ? "diverged" : res->interrupted ? "interrupted"
                                                                       : "complete";
    if (!st) st = ns_h5_attr_str(f, ".", "status", status);
    if (!st && res->diverged)
        st = ns_h5_attr_int(f, ".", "diverged_step", (int64_t)res->diverged_step);
    if (st)
        goto cleanup;
    if ((st = ns_h5out_commit(&T.out)))
        goto cleanup;
    res->steps = step;
    res->final_test_acc = last_ta;
    res->final_test_loss = last_tl;
    res->final_train_loss = T.te.n ? T.te.col[E_TLOSS][T.te.n - 1] : NAN;
    res->seconds = t_all;
    res->images_per_second = t_all > 0 ? (double)(step - start_step) * B / t_all : 0;
    if (res->diverged)
        st = ns_error(NS_ENUMERIC, "training diverged at step %zu (loss non-finite or above 1e6); "
                      "'%s' holds the run up to there", res->diverged_step, out);
cleanup:
    ns_h5out_abort(&T.out);   /* nothing left to do after a commit */
    ns_h5_close(rfid);
    trainer_release(&T);
    return st;
}
