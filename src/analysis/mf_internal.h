/*
 * Shared internals of the mean-field module (src/analysis/mf_*.c and
 * meanfield.c): quadrature rules, the workspace, closed-form moments and the
 * fast fixed-order evaluations the phase diagram uses.
 */
#ifndef NS_MF_INTERNAL_H
#define NS_MF_INTERNAL_H

#include "normscope/meanfield.h"

/* Rule levels: level k has full order 8 << k (8 .. 4096). */
#define MF_LEVELS 10
/* Split (kinked) rules integrate over |z| <= MF_ZCUT standard deviations:
 * the Gaussian mass beyond is 1.5e-23. */
#define MF_ZCUT 10.0
/* The split rules give |argument| < MF_GRADE around a kink pieces of their
 * own (exp(-40) ~ 4e-18: relu-like activations are relu beyond). */
#define MF_GRADE 40.0
/* Terms of the Hermite series (phase diagram), at most. */
#define MF_SERIES_MAX 512

/* A symmetric half rule: E[g(z)], z ~ N(0,1), is sum_i w[i] (g(x[i]) +
 * g(-x[i])) with x[i] > 0; n nodes, full order 2n. */
typedef struct mf_rule {
    size_t n;
    double *x, *w;
} mf_rule;

/* The rules of every level, shared by a workspace and its views. */
typedef struct mf_rules {
    mf_rule gh[MF_LEVELS];    /* Gauss-Hermite half rules */
    mf_rule kh[MF_LEVELS];    /* Gauss-Legendre on [0, MF_ZCUT] times the density */
    mf_rule gl[MF_LEVELS];    /* Gauss-Legendre on [-1, 1], all n nodes (x may be < 0) */
} mf_rules;

struct ns_mf_work {
    double tol;
    size_t order;             /* highest full order used */
    int hint1, hint2;         /* upper level of the pair that passed last (1-D, 2-D) */
    mf_rules *rules;
    int owner;                /* 0 for a view (mf_work_view) */
};

/* A per-thread view of w: its own hints and order, w's rules (built under
 * a critical section, so views may be used concurrently).  Nothing to free;
 * w must outlive it. */
void mf_work_view(const ns_mf_work *w, ns_mf_work *view);

/* The rules of level k, built on first use (NULL with the error set). */
const mf_rule *mf_rule_gh(ns_mf_work *w, int k);
const mf_rule *mf_rule_kh(ns_mf_work *w, int k);
const mf_rule *mf_rule_gl(ns_mf_work *w, int k);

/* 1 when expectations of the activation use the rules split at 0: relu and
 * leaky relu (a kink there) and gelu, swish, softplus (relu-like at large
 * variance); Gauss-Hermite otherwise. */
int mf_act_split(const ns_mf_act *a);
/* phi and phi' at x together. */
void mf_act_eval2(const ns_mf_act *a, double x, double *f, double *df);

/* Closed forms (only when ns_mf_act_closed(a)). */
void mf_closed_m1(const ns_mf_act *a, double q, ns_mf_m1 *m);
void mf_closed_m2(const ns_mf_act *a, double q1, double q2, double c, ns_mf_m2 *m);

/* Moments by quadrature at a fixed rule level (no tolerance check). */
void mf_quad_m1_level(const ns_mf_work *w, const ns_mf_act *a, double q, int k,
                      ns_mf_m1 *m);
/* 1 when two estimates of the 1-D moments agree to tol. */
int mf_m1_agree(const ns_mf_m1 *a, const ns_mf_m1 *b, double q, double tol);

/* Hermite coefficients a[k] = E[phi(sqrt(q) z) He_k(z)] / sqrt(k!), k < K,
 * with the Gauss-Hermite half rule r (read-only); returns the same rule's
 * E[phi(sqrt(q) z)^2]. */
double mf_hermite_coef(const mf_rule *r, const ns_mf_act *a, double q, size_t K, double *coef);

/* Ensures the rules level k of act's quadrature needs exist (NS_ENOMEM). */
int mf_ensure_level(ns_mf_work *w, const ns_mf_act *a, int k);

/* Ensures the rules of levels 0..k exist (before threads read them). */
int mf_rules_upto(ns_mf_work *w, int k);

/* Records a full order as used. */
void mf_note_order(ns_mf_work *w, size_t order);

/* The q recursion of a network: q* and its kind, the slope of the q-map
 * there, and the 1-D moments at q* (at q = 1 for homogeneous activations
 * where q* is 0 or infinite).  level: the quadrature level to start from
 * (in/out; -1 for the workspace's hint). */
typedef struct mf_qsol {
    ns_mf_qkind kind;
    double q, slope;
    ns_mf_m1 m;
} mf_qsol;
int mf_solve_q(ns_mf_work *w, const ns_mf_net *net, double q0, int *level, mf_qsol *s);

/* chi_1 from a solved q recursion. */
double mf_chi1(const ns_mf_net *net, const mf_qsol *s);

/* The c-map C(c), C'(c) at a solved recursion (closed forms or the
 * tensor-product rule; the limits of ns_mf_point where q* is 0 or inf). */
int mf_cmap_eval(ns_mf_work *w, const ns_mf_net *net, const mf_qsol *s, double c, double *G,
                 double *dG);

/* A c-map provider for mf_cstar. */
typedef int (*mf_cmap_fn)(void *ctx, double c, double *G, double *dG);
typedef struct mf_cmap_ctx {
    ns_mf_work *w;
    const ns_mf_net *net;
    const mf_qsol *s;
} mf_cmap_ctx;
int mf_cmap_cb(void *ctx, double c, double *G, double *dG);  /* ctx: mf_cmap_ctx */

/* The stable fixed point of a c-map in [0, 1] given its slope at 1 (1 when
 * slope1 <= 1, else Newton from 0; NaN when slope1 is not finite). */
int mf_cstar(mf_cmap_fn eval, void *ctx, double slope1, double *cstar, double *cslope);

/* Depth scale -1 / ln(slope); INFINITY within 10 tol of 1; NaN if undefined. */
double mf_depth_scale(double slope, double tol);

#endif
