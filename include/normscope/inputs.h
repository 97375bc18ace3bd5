/*
 * What an analysis reads from a run (DESIGN.md section 6, "inputs"): the
 * run file opened and checked once (ns_run_check, ns_run_open), a list of
 * checkpoints resolved from `--ckpt` (init|last|all|STEP,...), the network
 * rebuilt at a checkpoint in a normalization mode (section 5: eval, batch,
 * recal), and --n samples of a split of the run's data set, standardised as
 * at training, with their data-set indices.  `eval` and `ntk` read runs
 * through it, and so does every later analysis.  No file format in this API.
 */
#ifndef NORMSCOPE_INPUTS_H
#define NORMSCOPE_INPUTS_H

#include <stddef.h>
#include <stdint.h>

#include "normscope/core.h"
#include "normscope/data.h"
#include "normscope/nn.h"
#include "normscope/train.h"

/* The most checkpoints a list of steps may name. */
#define NS_CKPT_MAX_LIST 64

/* Normalization modes of DESIGN.md section 5. */
typedef enum ns_bn_mode {
    NS_BN_EVAL = 0,     /* running statistics */
    NS_BN_BATCH,        /* the batch's own statistics */
    NS_BN_RECAL,        /* running statistics re-estimated first, then eval */
} ns_bn_mode;

/* What to read; ns_run_inputs_defaults gives the defaults named below. */
typedef struct ns_inputs_opts {
    const char *data;       /* data set instead of the run's own (NULL) */
    int split;              /* NS_SPLIT_TRAIN (default) or NS_SPLIT_TEST */
    size_t n;               /* samples (default 128; 0: the whole split) */
    uint64_t sample_seed;   /* 0 (default): the first n samples; otherwise n
                             * drawn without replacement by this seed */
    const char *ckpt;       /* init|last|all|STEP,... (default "all") */
    ns_bn_mode mode;        /* default NS_BN_EVAL */
    size_t recal_n;         /* recal: training samples (default 10000; 0: all) */
    int recal_n_strict;     /* 1: a recal_n larger than the training set is an
                             * error; 0 (default): it is clamped to the set */
    int set_only;           /* 1: the chosen samples are in d alone (n, idx, x
                             * and y are not filled); needs sample_seed 0 */
    size_t max_batch;       /* the networks' max_batch (0: the training batch) */
} ns_inputs_opts;

void ns_run_inputs_defaults(ns_inputs_opts *o);

/* A run opened for an analysis.  Everything is owned; release with
 * ns_run_inputs_free. */
typedef struct ns_run_inputs {
    char path[1024];        /* the run file */
    ns_inputs_opts opts;    /* as given (ckpt and data not kept) */
    ns_train_config cfg;    /* its configuration; cfg.data is the data set used */
    ns_run_data rd;         /* its /data */
    uint64_t *steps;        /* the chosen checkpoints, in the order given */
    size_t nsteps;
    ns_dataset *d;          /* the samples' data set, standardised as at training */
    ns_dataset *cal;        /* recal: the calibration samples, standardised */
    size_t n;               /* samples (0 with set_only) */
    ns_real *x;             /* n x ns_data_dim(d), in order */
    int32_t *y;             /* n labels */
    size_t *idx;            /* n data-set indices */
    ns_net *net;            /* the network at `step` (NULL before the first load) */
    uint64_t step;
} ns_run_inputs;

/*
 * Resolves a checkpoint list against the steps a run has (have[0..nhave),
 * ascending): "all", "init" (the first), "last", or up to NS_CKPT_MAX_LIST
 * comma-separated steps in the order given.  *steps (caller frees with
 * ns_free) and *n receive the list.  Errors (NS_EINVAL, one line):
 * *usage = 1 with "--ckpt takes init, last, all or a list of at most 64
 * steps, got 'S'" for a malformed list (the caller reports it as a usage
 * error); *usage = 0 with "no checkpoint at step 7 in 'run.h5' (it has 0,
 * 5, 10)" or "--ckpt names step 0 twice".  path names the run in messages.
 */
int ns_ckpt_resolve(const char *spec, const uint64_t *have, size_t nhave, const char *path,
                    uint64_t **steps, size_t *n, int *usage);

/*
 * Opens the run file path for an analysis: checks it whole (ns_run_check),
 * reads its configuration and /data (ns_run_open), resolves o->ckpt
 * (ns_ckpt_resolve; *usage as there, may be NULL), loads the network at the
 * first chosen checkpoint, the samples and, in recal mode, the calibration
 * set.  in is zeroed first; on failure what was read is released.
 * Errors: those of ns_run_check and ns_ckpt_resolve; NS_EINVAL when the data
 * set's samples do not fit the network, or --n exceeds the split ("--n 900
 * is larger than the data set (600 training samples in 'mnist')"); NS_EFORMAT
 * when /data's statistics do not match the data set's channels; with
 * recal_n_strict, NS_EINVAL "--recal-n 9000 is larger than the training set
 * (600 samples in 'mnist')"; NS_ENOMEM.
 */
int ns_run_inputs_open(ns_run_inputs *in, const char *path, const ns_inputs_opts *o,
                       int *usage);

/* Rebuilds in->net at checkpoint step (UINT64_MAX: the last) and, in recal
 * mode, re-estimates its running statistics on in->cal.  Errors as
 * ns_run_load and ns_recalibrate. */
int ns_run_inputs_load(ns_run_inputs *in, uint64_t step);

/* "eval", "batch" or "recal". */
const char *ns_bn_mode_name(ns_bn_mode m);

/* The network mode of a forward pass in m (recal and eval: NS_MODE_EVAL). */
ns_mode ns_bn_mode_net(ns_bn_mode m);

/* Releases what in holds; safe on a zeroed or already freed in. */
void ns_run_inputs_free(ns_run_inputs *in);

#endif
