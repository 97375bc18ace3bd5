/*
 * normscope training: optimisers (SGD with momentum/Nesterov, Adam, AdamW),
 * learning-rate schedules, the training loop with evaluation, checkpoints,
 * history tables and bit-for-bit resume, writing a run file.
 */
#ifndef NORMSCOPE_TRAIN_H
#define NORMSCOPE_TRAIN_H

#include "normscope/data.h"
#include "normscope/io.h"
#include "normscope/nn.h"

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

/* Defaults: SGD, lr 0.05, momentum 0.9, no weight decay, batch 128, constant
 * schedule, 3 epochs, seed 1, checkpoint every epoch, standardised inputs,
 * PyTorch's default initialisation, BN with momentum 0.1, eps 1e-5. */
void ns_train_config_default(ns_train_config *c);
/* Checks values (NS_EINVAL naming the option: "--lr must be positive"). */
int ns_train_config_check(const ns_train_config *c);
/* Writes/reads the configuration as attributes of /config. */
int ns_train_config_save(hid_t fid, const ns_train_config *c);
int ns_train_config_load(hid_t fid, ns_train_config *c);

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
} ns_train_result;

/*
 * Trains per the configuration and writes the run file `out` (refusing an
 * existing file unless force).  With resume set, `resume` is a complete run
 * file whose configuration is used (epochs/steps from c extend it) and
 * training continues from its last checkpoint exactly as an uninterrupted
 * run would.  cmdline is stored in the file.
 * Returns NS_OK, NS_ENUMERIC when training diverged (the run file is still
 * written, with status "diverged"), or an error.
 */
int ns_train(const ns_train_config *c, const char *resume, const char *out,
             int force, const char *cmdline, ns_train_result *res);

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

/* Rebuilds the network of a run file and loads a checkpoint (step; or the
 * last when step is UINT64_MAX).  *cfg receives the configuration; the
 * network's max_batch is max_batch (0: the training batch). */
int ns_run_load(const char *path, uint64_t step, size_t max_batch, ns_net **net,
                ns_train_config *cfg, uint64_t *loaded_step);

#endif
