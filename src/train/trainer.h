/*
 * The state of one training job, shared by the loop (train.c) and the
 * resumption of a run file (resume.c); internal to src/train.
 */
#ifndef NS_TRAIN_TRAINER_H
#define NS_TRAIN_TRAINER_H

#include "normscope/train.h"
#include "table.h"

enum { S_STEP, S_EPOCH, S_LOSS, S_ACC, S_LR, S_GNORM, S_ACT, S_NCOL };
enum { E_EPOCH, E_STEP, E_TLOSS, E_TACC, E_VLOSS, E_VACC, E_LR, E_SEC, E_IPS, E_NCOL };

typedef struct trainer {
    ns_train_config cfg;
    ns_dataset *train, *test;
    ns_net *net;
    ns_optim opt;
    ns_h5out out;
    ns_table ts, te, tm;     /* step, epoch, per-layer metric history */
    size_t *midx, nm;        /* layers reporting the metric */
    const char *mname;       /* its name, e.g. "condensation" */
    double *mrow;
    size_t *perm, *widx, nw;
    ns_real *x, *dlogits;
    int32_t *y;
    double *wrow;
    double mean[16], std[16];
} trainer;

/* Resumption (resume.c).  ns_trainer_resume_begin checks and opens the run
 * file to resume, loads its configuration into *cfg (with the length of c
 * when c asks for one) and leaves the file open in *rfid.
 * ns_trainer_resume_state, once the network and tables exist, reads the
 * optimiser, the last checkpoint and the history, closes *rfid and opens the
 * output as a copy of the run, with the step reached in *start_step. */
int ns_trainer_resume_begin(const char *resume, const ns_train_config *c,
                            ns_train_config *cfg, ns_hid *rfid);
int ns_trainer_resume_state(trainer *T, ns_hid *rfid, const char *resume, const char *out,
                            int force, const char *cmdline, size_t total,
                            size_t *start_step, double *acc3);
int ns_trainer_save_optimizer(ns_hid fid, const ns_optim *o, size_t step, const double *acc3);

#endif
