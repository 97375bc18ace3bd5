/*
 * normscope training: optimisers (SGD with momentum/Nesterov, Adam, AdamW),
 * learning-rate schedules, the training loop with evaluation, checkpoints,
 * history tables and bit-for-bit resume, writing a run file.
 */
#ifndef NORMSCOPE_TRAIN_H
#define NORMSCOPE_TRAIN_H

#include <signal.h>

#include "normscope/data.h"
#include "normscope/io.h"
#include "normscope/nn.h"
#include "normscope/opt.h"

typedef enum ns_optim_kind { NS_OPTIM_SGD = 0, NS_OPTIM_ADAM, NS_OPTIM_ADAMW } ns_optim_kind;
typedef enum ns_sched_kind { NS_SCHED_CONST = 0, NS_SCHED_STEP, NS_SCHED_COSINE } ns_sched_kind;

#define NS_MAX_MILESTONES 16
/* Training stops as diverged when the mini-batch loss is not finite or
 * exceeds this. */
#define NS_DIVERGED_LOSS 1e6

/* Everything that defines a training run; stored in /config. */
typedef struct ns_train_config {
    char arch[256];
    char data[512];
    ns_net_opts net;            /* norm, norm_group, BN settings, batch (max_batch) */
    ns_init init;
    ns_optim_kind optim;
    double lr, momentum, wd;
    double clip;                /* global gradient-norm clipping threshold (0: none) */
    int nesterov;
    double beta1, beta2, adam_eps;
    ns_sched_kind schedule;
    double gamma;               /* step schedule factor */
    size_t milestones[NS_MAX_MILESTONES]; /* epochs */
    size_t nmilestones;
    size_t warmup;              /* linear warm-up steps */
    size_t epochs;              /* training length in epochs ... */
    size_t steps;               /* ... or in steps when > 0 */
    size_t batch;
    uint64_t seed;
    size_t ckpt_every;          /* checkpoint every this many epochs (0: only first/last) */
    size_t ckpt_steps[64];      /* and at these steps */
    size_t nckpt_steps;
    int standardize;            /* per-channel standardisation with train statistics */
    size_t train_n, test_n;     /* use the first n samples (0: all) */
    int threads;
} ns_train_config;

/* Defaults: those of the option tables (lr 0.05, momentum 0.9, no weight
 * decay, batch 128, 3 epochs, seed 1, checkpoint every epoch, standardised
 * inputs; BN with momentum 0.1, eps 1e-5 and every other method option's),
 * architecture mlp on fashion-mnist, SGD, cosine schedule, PyTorch's
 * default initialisation. */
void ns_train_config_default(ns_train_config *c);
/* Checks values: every entry of the option tables below, then what ties
 * settings together (--norm-group within --batch, --nesterov with momentum,
 * a length, a known method and architecture, the initialiser's and the step
 * schedule's numbers).  NS_EINVAL naming the option: "--lr must be a number
 * in (0, 1e+06], got -1". */
int ns_train_config_check(const ns_train_config *c);
/* Writes/reads the configuration as attributes of /config: arch, data,
 * norm, every entry of the option tables under its key (a number, or a
 * choice's name with NS_OPT_BY_NAME), init, optim, schedule and ckpt_steps.
 * Loading checks every value as the command line does (the option tables,
 * then ns_train_config_check): NS_EFORMAT naming the file and the
 * attribute, "cannot read 'run.h5': /config attribute 'threads' must be an
 * integer in 1..256 or 0, got 1000000000".  Keys added after format version
 * 1 (NS_OPT_OLD) may be missing: such a run loads with what it trained with,
 * the entry's `old` (frn_relu 1, mabn_buffer 16, bkn_predict last, bkn_grad
 * none; the default for the others). */
int ns_train_config_save(ns_hid fid, const ns_train_config *c);
int ns_train_config_load(ns_hid fid, ns_train_config *c);

/* ------------------------------------------------- the option table */

/*
 * The settings of /config are declared in tables of ns_opt (opt.h): the
 * training table here (src/train/config.c), then each method's own options
 * (ns_norm_opt_at; NS_OPT_NET, their field is in c->net).  `train` parses
 * its options through them, ns_train_config_default takes the defaults,
 * ns_train_config_check and ns_train_config_load check values with them,
 * and the /config attributes are written and read from them.
 */
typedef ns_opt ns_train_opt;

/* Every setting: the training table's, then every method option; entries
 * 0..ns_train_setting_count()-1, NULL beyond. */
size_t ns_train_setting_count(void);
const ns_opt *ns_train_setting_at(size_t i);
/* The numeric settings among them (all but the choices, whose values are
 * names): entries 0..ns_train_opt_count()-1; NULL beyond. */
size_t ns_train_opt_count(void);
const ns_train_opt *ns_train_opt_at(size_t i);
/* The setting of an option ("--lr"), a flag ("--nesterov") or a /config
 * key ("lr"); NULL if none. */
const ns_train_opt *ns_train_opt_find(const char *name);
/* The struct o's offset is into: &c->net for method options, else c. */
void *ns_train_opt_base(const ns_train_opt *o, ns_train_config *c);
/* 0 when v is acceptable for o (unset counts unless cli), else -1 with why
 * receiving the problem without the subject: "must be an integer in
 * 1..65536, got 0", "must be a finite number > 0, got -inf" (ns_opt_check). */
int ns_train_opt_check(const ns_train_opt *o, double v, int cli, char *why, size_t len);
/* Parses a command-line value strictly (a whole number for integers:
 * decimal digits only; a number for doubles; a name for a choice), checks
 * it and stores it in c.  NS_EINVAL naming the option: "--adam-eps must be
 * a finite number > 0, got '-1'", "--epochs expects a non-negative integer,
 * got 'many'", "--bkn-grad is none or full, got 'some'" (ns_opt_parse). */
int ns_train_opt_parse(const ns_train_opt *o, const char *s, ns_train_config *c);
/* The value of o's field in c, as a double. */
double ns_train_opt_get(const ns_train_opt *o, const ns_train_config *c);

/* Names of settings, both ways ("sgd", "adam", "adamw"; "const",
 * "step:E1,E2[@GAMMA]", "cosine"; "torch", "he-normal", "he-uniform",
 * "xavier", "gauss:SW2,SB2").  Parsers return NS_EINVAL naming the value. */
int ns_parse_optim(const char *s, ns_optim_kind *k);
const char *ns_optim_name(ns_optim_kind k);
int ns_parse_schedule(const char *s, ns_train_config *c);
void ns_schedule_name(const ns_train_config *c, char *buf, size_t len);
int ns_parse_init(const char *s, ns_init *init);
void ns_init_name(const ns_init *init, char *buf, size_t len);

/* Optimiser state over the parameter slab. */
typedef struct ns_optim {
    ns_optim_kind kind;
    size_t n;
    ns_real *buf1, *buf2;   /* momentum / Adam m, v */
    uint64_t t;             /* steps taken */
} ns_optim;

int ns_optim_alloc(ns_optim *o, ns_optim_kind kind, size_t nparams);
void ns_optim_release(ns_optim *o);
/* One update of params from grads with learning rate lr (PyTorch's rules). */
void ns_optim_step(ns_optim *o, const ns_train_config *c, double lr,
                   ns_real *params, const ns_real *grads);

/* Learning rate at a step (epoch = step / steps_per_epoch for milestones). */
double ns_schedule_lr(const ns_train_config *c, size_t step, size_t steps_per_epoch,
                      size_t total_steps);

/* Outcome of a training run. */
typedef struct ns_train_result {
    size_t steps;            /* optimiser steps done */
    double final_test_acc, final_test_loss, final_train_loss;
    double seconds, images_per_second;
    int diverged;            /* 1: stopped at a non-finite loss */
    size_t diverged_step;
    int interrupted;         /* 1: stopped by SIGINT/SIGTERM */
    ns_train_config config;  /* what was trained (a resumed run's own, with its length) */
} ns_train_result;

/*
 * Trains per the configuration and writes the run file `out` (refusing an
 * existing file unless force, at the start and again when the finished file
 * is moved into place).  With resume set, `resume` is a complete or
 * interrupted run file, checked whole (ns_run_check), whose configuration
 * is used and training continues from its last checkpoint exactly as an
 * uninterrupted run would: up to the new length when c sets epochs or
 * steps, otherwise up to the length the run was started with (an
 * interrupted run finishes; a complete one is refused with NS_EINVAL, "it
 * already has N steps").  out equal to resume continues it in place, out
 * naming it otherwise (a link) is refused, as is out naming the data set
 * file.  cmdline is stored in the file.
 * stop (may be NULL) is polled after every step: once it is non-zero
 * training ends there and saves a resumable run with status "interrupted"
 * (res->interrupted); set before the output is created, nothing is written
 * (NS_EFAIL).  The caller's signal handler sets it: ns_train installs none,
 * and nothing it does cuts a save short.
 * Returns NS_OK, NS_ENUMERIC when training diverged (the run file is still
 * written, with status "diverged"), or an error.
 */
int ns_train(const ns_train_config *c, const char *resume, const char *out,
             int force, const char *cmdline, volatile sig_atomic_t *stop,
             ns_train_result *res);

/* Evaluates net (eval mode) on a data set already standardised; loss mean
 * and accuracy in [0, 1]. */
int ns_evaluate(ns_net *net, const ns_dataset *d, double *loss, double *acc);

/* Recalibration: resets the running statistics of every BN-family layer and
 * re-estimates them as the plain average of the batch statistics of the
 * first `n` samples of d (train-mode forwards, parameters untouched).
 * DESIGN.md section 5's `recal` mode.  BKN layers likewise average their
 * group 0's estimate (mu~, s2~) over the batches (with --bkn-predict last
 * the groups of a batch update in turn, as in training).  Other layers are
 * not reset. */
int ns_recalibrate(ns_net *net, const ns_dataset *d, size_t n);

/* Loads a data set per the configuration (split, subset) and applies the
 * standardisation of /data in the run file, or computes it from the
 * training split when fid < 0. mean/std have room for 16 channels. */
int ns_train_load_data(const ns_train_config *c, int split, ns_dataset **out,
                       double *mean, double *std);

/* ------------------------------------------------ reading run files */

/* What /data of a run file says about its inputs. */
typedef struct ns_run_data {
    size_t c, h, w;           /* shape of a sample */
    size_t nclass;
    double mean[16], std[16]; /* per-channel standardisation, c values each */
} ns_run_data;

/*
 * The one way into a run file: every reader (eval, ntk, plot, info,
 * train --resume, ns_run_load) opens run files through it.  Opens path
 * read-only and checks all but the checkpoints' tensors: the format and a
 * format_version this normscope reads (ns_h5_open_format); /config, every
 * value within what the command line accepts (ns_train_config_load); /data:
 * c in 1..16, h and w in 1..65536 (at most 2^24 values a sample), nclass in
 * 1..65536, mean and std with c
 * finite values each, std positive; at least one checkpoint.  cfg and data
 * (either may be NULL) receive what was read; the caller closes *fid with
 * ns_h5_close.  Errors: NS_EIO (cannot open), NS_EFORMAT with one line
 * naming the file, the data set or attribute and the problem ("cannot read
 * 'run.h5': /data attribute 'std' holds values that are not positive");
 * *fid is then closed.
 */
int ns_run_open(const char *path, ns_hid *fid, ns_train_config *cfg, ns_run_data *data);

/* Checks a whole run file: ns_run_open, then every checkpoint read into the
 * network /config describes (ns_run_read_checkpoint: shapes, finite values,
 * non-negative running variances).  NS_OK or the first problem, as
 * ns_run_open reports it. */
int ns_run_check(const char *path);

/* Rebuilds the network of a run file and loads a checkpoint (step; or the
 * last when step is UINT64_MAX), through ns_run_open and
 * ns_run_read_checkpoint.  *cfg receives the configuration; the network's
 * max_batch is max_batch (0: the training batch). */
int ns_run_load(const char *path, uint64_t step, size_t max_batch, ns_net **net,
                ns_train_config *cfg, uint64_t *loaded_step);

#endif
