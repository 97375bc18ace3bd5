/* Helpers shared by the Check suites. */
#ifndef NS_TESTUTIL_H
#define NS_TESTUTIL_H

#include <check.h>
#include <hdf5.h>
#include <stddef.h>

#include "normscope/core.h"
#include "normscope/nn.h"

/* A fresh temporary directory for this test process (removed by the OS
 * tmp cleaner; tests put their files inside).  Returns a static buffer. */
const char *ns_test_tmpdir(void);

/* Joins the temporary directory and a file name into a static buffer
 * (up to 8 live results, round-robin). */
const char *ns_test_path(const char *name);

/* The Python interpreter with torch and h5py ($PYTHON or /usr/bin/python3),
 * or NULL when it cannot import them. */
const char *ns_test_python(void);

/* Runs a shell command; returns its exit status (-1 if it did not run). */
int ns_test_system(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Max |a-b| / max(|b|, floor) over n values. */
double ns_test_relerr(const ns_real *a, const ns_real *b, size_t n, double floor);
double ns_test_relerr_d(const double *a, const double *b, size_t n, double floor);

/* ---- PyTorch cross-checks (tests/torch_ref.py) ---- */

/* Writes a network (layer kinds, wiring, geometry, parameters and state in
 * PyTorch's layout), a batch of n samples x with labels y, and the mode
 * (NS_MODE_TRAIN or NS_MODE_EVAL) to path in the layout torch_ref.py reads.
 * Geometry comes from the expanded architecture string; each layer in a
 * `norm` slot is tagged with net->opts.norm, an explicit `bn` with "bn",
 * MimicNorm's last BN with "lastbn"; dense and conv layers carry their
 * weight rule, and the root the normalization options of net->opts.
 * Does not use Check's asserts, so it may run outside a test: returns 0, or
 * -1 after a message on stderr. */
int ns_test_torch_write(const char *path, const ns_net *net, const ns_real *x,
                        const int32_t *y, size_t n, ns_mode mode);

/* Additions to a file ns_test_torch_write made, for what one network and
 * batch do not say (training batches, settings, random draws): a dataset
 * of doubles or of int32 (groups on its path are created), a numeric
 * attribute of an object ("/": the root).  Return 0, or -1 after a message
 * on stderr. */
int ns_test_h5_add(const char *path, const char *dset, int rank, const size_t *dims,
                   const double *v);
int ns_test_h5_add_int(const char *path, const char *dset, size_t n, const int32_t *v);
int ns_test_h5_set_attr(const char *path, const char *obj, const char *name, double v);

/* Reads the dataset `path` of f, which must hold exactly n values, as
 * doubles into a new buffer (fails the test otherwise). */
double *ns_test_read_ref(hid_t f, const char *path, size_t n);

/* Fails the test unless max |a - ref| / max(max |ref|, floor) < tol; cs and
 * what name the case and the tensor in the message (NS_TEST_VERBOSE=1
 * prints every error). */
void ns_test_compare(const char *cs, const char *what, const ns_real *a, const double *ref,
                     size_t n, double floor, double tol);

/*
 * One interpreter for all of a suite's PyTorch references: checks that
 * python with torch and h5py and every file in need (NULL-terminated,
 * paths from the source root) exist, writes each case with write_case(i)
 * (which returns 0, or fills why and returns nonzero), then runs
 * `python SCRIPT IN_0 OUT_0 IN_1 OUT_1 ...`.  problem receives "" when the
 * references were computed, otherwise why not.  Call it from main(),
 * before the tests fork.
 */
void ns_test_compute_refs(const char *script, const char *const *need, size_t n,
                          int (*write_case)(size_t i, char *why, size_t len),
                          const char *(*in_path)(size_t i), const char *(*out_path)(size_t i),
                          char *problem, size_t len);

/* ---- Helpers of the layer and normalization suites ---- */

/* Fills v with shift + scale * N(0, 1) draws from r. */
void ns_test_fill_normal(ns_real *v, size_t n, ns_rng *r, double scale, double shift);

/* Sets the n values of v to c. */
void ns_test_fill_const(ns_real *v, size_t n, double c);

/* 1 if all n values of v are finite. */
int ns_test_all_finite(const ns_real *v, size_t n);

/* Max |v_i| over n values (0 for none). */
double ns_test_max_abs(const ns_real *v, size_t n);

/* 1 if layer L is of the given kind ("bn", "conv", ...). */
int ns_test_is_kind(const ns_layer *L, const char *kind);

/* 1 if some layer of net is of the given kind. */
int ns_test_net_has_kind(const ns_net *net, const char *kind);

/* The tensor called name among count tensors, or NULL. */
ns_tensor *ns_test_find_tensor(ns_tensor *t, int count, const char *name);

/* Fails the test unless |a - ref| / max(|ref|, 1e-3) < tol; what and i
 * name the value in the message. */
void ns_test_assert_close(double a, double ref, double tol, const char *what, size_t i);

/* Options of a test network beyond the defaults of ns_net_opts_default
 * (zero fields keep the default). */
typedef struct ns_test_nopts {
    const char *norm;  /* what fills `norm` slots */
    size_t groups;     /* gn_groups (0: default) */
    double fct;        /* UBN threshold (0: default) */
    double eps_l;      /* FRN learned eps parameter (0: its init) */
    size_t group;      /* norm_group: ghost batches (0: the whole batch) */
    int no_affine;     /* 1: BN without affine parameters (bn_affine 0) */
    int bkn_last;      /* 1: BKN's NS_BKN_PREDICT_LAST (0: the default, per group) */
    int bkn_grad;      /* 1: BKN's gradient through the prediction */
    double bkn_p;      /* BKN's mixing weight (0: the default for the group size) */
} ns_test_nopts;

/* Builds arch with the options no for inputs c x h x w, nout outputs and
 * batches up to max_batch, initialised as PyTorch does with seed 1234
 * (fails the test if it cannot be built). */
ns_net *ns_test_build(const char *arch, const ns_test_nopts *no, size_t c, size_t h, size_t w,
                      size_t nout, size_t max_batch);

/* Non-trivial parameters and state of every normalization layer: gamma in
 * [0.5, 1.5], beta and tau about N(0, 0.3^2) (so the TLU clamps some
 * entries), learned eps eps_l (unless 0), BN running statistics away from
 * (0, 1) (the defaults 1, 0, 0, 1 would hide errors). */
void ns_test_randomize_norm(ns_net *net, double eps_l, uint64_t seed);

/* ---- Finite-difference gradient checks (meaningful in the double build) ---- */

#define NS_TEST_FD_STEP 1e-6  /* central-difference step */
#define NS_TEST_FD_TOL 1e-6   /* largest relative error of an analytic gradient */
#define NS_TEST_FD_FLOOR 1e-2 /* denominator floor: |error| / max(|fd|, floor); the
                               * differences' own noise is about 1e-10 */

/* One gradient-check case: a tiny network and a batch. */
typedef struct ns_test_gcase {
    const char *name;
    const char *arch;
    ns_test_nopts no;
    size_t c, h, w, nout;
    size_t n;            /* batch */
    ns_mode mode;        /* mode of the checked passes */
    int ce;              /* 1: softmax cross-entropy; 0: sum_k r_k z_k */
    size_t maxcheck;     /* entries checked per tensor (0: all) */
} ns_test_gcase;

/* One gradient-check problem: network, batch, objective, context. */
typedef struct ns_test_gprob {
    const ns_test_gcase *gc;
    ns_net *net;
    ns_real *x;      /* n x input size */
    ns_real *r;      /* n x nout: weights of the linear objective */
    ns_real *dl;     /* n x nout: dL/dlogits */
    int32_t *y;      /* labels for the cross-entropy */
    ns_real *ga;     /* analytic parameter gradient (nparams) */
    ns_real *gx;     /* analytic input gradient (nin) */
    size_t nin, nz;
    ns_ctx ctx;
} ns_test_gprob;

/* Builds the case's network (ns_test_build, batches up to n + 3) with
 * randomized normalization layers (seed 4321), a random batch, objective
 * weights and labels, and the context (mode, seed 77, step 5).  BKN layers
 * without gradient through their prediction make it once and then hold it
 * (finite differences must not see it move); with that gradient they
 * predict in every pass (the draws depend on seed and step only). */
void ns_test_gprob_init(ns_test_gprob *p, const ns_test_gcase *gc);
void ns_test_gprob_release(ns_test_gprob *p);

/* Forward pass and objective; writes dL/dlogits when dl is not NULL. */
double ns_test_gprob_objective(ns_test_gprob *p, ns_real *dl);

/* Analytic gradients: parameters into p->ga, network input into p->gx
 * (from the first layer's backward: the network never computes it). */
void ns_test_gprob_analytic(ns_test_gprob *p);

/* ns_test_gprob_analytic, failing the test if a pass in a mode other than
 * training changed the network's state. */
void ns_test_gprob_analytic_keep_state(ns_test_gprob *p);

/* Compares the analytic gradient ana of the size values v (all, or the
 * first, the last and random others up to the case's maxcheck) with
 * central differences of the objective; fails the test on a relative error
 * of NS_TEST_FD_TOL or more.  Returns the worst relative error. */
double ns_test_gprob_check_values(ns_test_gprob *p, const char *what, ns_real *v,
                                  const ns_real *ana, size_t size, ns_rng *r);

/* After ns_test_gprob_analytic: some parameter gradient is non-zero (if
 * there are parameters), every parameter agrees with central differences
 * (a random subset of each large tensor, drawn from a fixed seed), and so
 * does the input gradient, which must be non-zero.  With norm_checked,
 * each parameter tensor of a normalization layer must have a non-zero
 * gradient too (it would check nothing) and *norm_checked receives their
 * number.  Returns the worst relative error (printed with
 * NS_TEST_VERBOSE=1). */
double ns_test_gprob_check_all(ns_test_gprob *p, size_t *norm_checked);

/* Forward and backward run and give finite logits, gradients and state,
 * a non-zero input gradient and, if there are parameters, a non-zero
 * parameter gradient. */
void ns_test_gprob_check_finite(ns_test_gprob *p);

/* Runs the suite and returns a process exit status. */
int ns_test_run(Suite *s);

#endif
