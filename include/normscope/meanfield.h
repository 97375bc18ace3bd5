/*
 * normscope mean-field theory of deep fully connected networks at
 * initialisation (Poole et al. 2016; Schoenholz et al. 2017; METHODS.md
 * "Mean-field theory" and "MimicNorm"): the q-map and its fixed point q*,
 * the correlation map and its stable fixed point c*, chi_1, the depth scales
 * xi_q and xi_c, trajectories through depth, the phase diagram over
 * (sigma_w^2, sigma_b^2) with the critical line chi_1 = 1, the dual maps T and
 * Tbar of MimicNorm, the BN gradient-explosion rate of Yang et al. 2019 in
 * the large-batch limit, and the analytic infinite-width NNGP and NTK.
 *
 * Network: h^1 = W^1 x + b^1, h^l = W^l phi(h^{l-1}) + b^l, W^l_ij ~
 * N(0, sw2 / fan_in), b^l_i ~ N(0, sb2) (`--init gauss:SW2,SB2`).  With the
 * weight mean (MimicNorm) each row of W^l is projected to zero mean, which in
 * the infinite-width limit replaces the second moments E[phi phi] of the
 * layer's inputs by their covariances E[phi phi] - E[phi] E[phi].
 *
 * Gaussian expectations: closed forms where they exist (relu, leaky relu and
 * linear through the arc-cosine kernel, erf through the arcsine kernel),
 * quadrature otherwise.  Quadrature is Gauss-Hermite from GSL with the order
 * doubled (8, 16, ..., NS_MF_ORDER_MAX) until two successive estimates agree
 * to the workspace's tolerance; 2-D expectations use the tensor-product rule
 * over correlated normals (u1 = sqrt(q1) z1, u2 = sqrt(q2) (c z1 + sqrt(1-c^2)
 * z2)).  Activations with a kink (relu, leaky, forced to quadrature for
 * cross-checks) are split at the kink instead, with Gauss-Legendre (GSL) on
 * each piece of [-10, 10] standard deviations, because Gauss-Hermite
 * converges only algebraically across a kink; so are gelu, swish and
 * softplus, which bend like relu within 1/sqrt(q) of 0 at large variances q.
 * Everything is double, whatever ns_real is.
 *
 * Functions return NS_OK or a status of normscope/core.h with the message
 * set through ns_error(): NS_EINVAL for bad arguments, NS_ENOMEM,
 * NS_ENUMERIC when quadrature does not reach the tolerance by
 * NS_MF_ORDER_MAX or a result is not finite where it must be.
 */
#ifndef NORMSCOPE_MEANFIELD_H
#define NORMSCOPE_MEANFIELD_H

#include <stddef.h>

#include "normscope/core.h"

/* Highest quadrature order the workspace will use. */
#define NS_MF_ORDER_MAX 4096

/* ---------------------------------------------------------- activations */

typedef enum ns_mf_act_kind {
    NS_MF_RELU = 0,  /* max(0, x)                             closed form */
    NS_MF_LEAKY,     /* x > 0 ? x : alpha x                   closed form */
    NS_MF_LINEAR,    /* x                                     closed form */
    NS_MF_TANH,      /* tanh(x)                               quadrature */
    NS_MF_ERF,       /* erf(x)                                closed form */
    NS_MF_GELU,      /* x Phi(x), Phi the normal cdf          quadrature (split) */
    NS_MF_SWISH,     /* x / (1 + exp(-x)) (SiLU)              quadrature (split) */
    NS_MF_SOFTPLUS,  /* log(1 + exp(x))                       quadrature (split) */
    NS_MF_SIGMOID    /* 1 / (1 + exp(-x))                     quadrature */
} ns_mf_act_kind;

typedef struct ns_mf_act {
    ns_mf_act_kind kind;
    double alpha;    /* leaky slope (NS_MF_LEAKY) */
    int quadrature;  /* 1: quadrature even where a closed form exists */
} ns_mf_act;

/* Parses "relu", "leaky:A" (also "lrelu[:A]", A = 0.01 when omitted),
 * "linear" ("id"), "tanh", "erf", "gelu", "swish" ("silu"), "softplus",
 * "sigmoid".  NS_EINVAL "unknown activation 'x' (...)" otherwise. */
int ns_mf_act_parse(const char *s, ns_mf_act *act);
/* The activation's name as ns_mf_act_parse reads it ("leaky:0.1"). */
void ns_mf_act_name(const ns_mf_act *act, char *buf, size_t len);
/* The names accepted, for help texts. */
const char *ns_mf_act_names(void);
/* 1 when expectations of act are computed in closed form. */
int ns_mf_act_closed(const ns_mf_act *act);
/* 1 for positively homogeneous activations (relu, leaky, linear). */
int ns_mf_act_homogeneous(const ns_mf_act *act);
/* phi (deriv 0), phi' (1) or phi'' (2) at x (kinks: the right derivative). */
double ns_mf_act_eval(const ns_mf_act *act, int deriv, double x);

/* ------------------------------------------------------------ workspace */

/* Cached quadrature rules and the tolerance; one per thread. */
typedef struct ns_mf_work ns_mf_work;

/* tol in [1e-14, 1e-2]: two successive quadrature estimates must agree to
 * tol times the quantity's natural scale (sqrt(E[f^2]) of the integrand).
 * NULL on a bad tol (NS_EINVAL) or out of memory. */
ns_mf_work *ns_mf_work_alloc(double tol);
void ns_mf_work_free(ns_mf_work *w);
double ns_mf_work_tol(const ns_mf_work *w);
/* Highest quadrature order used since alloc or the last reset (0: closed
 * forms only). */
size_t ns_mf_work_order(const ns_mf_work *w);
void ns_mf_work_reset_order(ns_mf_work *w);

/* --------------------------------------------------- Gaussian moments */

/* Moments of u ~ N(0, q), q >= 0. */
typedef struct ns_mf_m1 {
    double mean;      /* E[phi(u)] */
    double sq;        /* E[phi(u)^2] */
    double dmean;     /* E[phi'(u)] */
    double dsq;       /* E[phi'(u)^2] */
    double dsq_dq;    /* d E[phi(u)^2] / dq = E[phi(u) phi'(u) u] / q */
    double dmean_dq;  /* d E[phi(u)] / dq = E[phi'(u) u] / (2 q) */
} ns_mf_m1;
int ns_mf_moments1(ns_mf_work *w, const ns_mf_act *act, double q, ns_mf_m1 *m);

/* Moments of (u1, u2) centred normal with variances q1, q2 >= 0 and
 * correlation c in [-1, 1]. */
typedef struct ns_mf_m2 {
    double pp;        /* E[phi(u1) phi(u2)] */
    double dd;        /* E[phi'(u1) phi'(u2)] */
} ns_mf_m2;
int ns_mf_moments2(ns_mf_work *w, const ns_mf_act *act, double q1, double q2, double c,
                   ns_mf_m2 *m);

/* E[f(u)], u ~ N(0, q), by the adaptive quadrature of the workspace (split
 * at u = 0 when kinked).  For tests and users' own integrands. */
int ns_mf_expect1(ns_mf_work *w, double (*f)(double u, void *p), void *p, double q,
                  int kinked, double *out);
/* E[f(u1, u2)] with the tensor-product rule over correlated normals as
 * above (split at u1 = 0 and u2 = 0 when kinked). */
int ns_mf_expect2(ns_mf_work *w, double (*f)(double u1, double u2, void *p), void *p,
                  double q1, double q2, double c, int kinked, double *out);

/* --------------------------------------------- maps and fixed points */

/* A deep stack of dense layers with one activation. */
typedef struct ns_mf_net {
    ns_mf_act act;
    double sw2, sb2;   /* sw2 > 0, sb2 >= 0 */
    int weight_mean;   /* rows of W projected to zero mean (MimicNorm) */
} ns_mf_net;

/* NS_EINVAL naming the problem unless sw2 > 0, sb2 >= 0, both finite. */
int ns_mf_net_check(const ns_mf_net *net);

/* One layer of the exact two-input recursion: pre-activations with
 * variances q1, q2 and correlation c map to the next layer's q1n, q2n, cn
 * (q' = sw2 M(q, q) + sb2, cov' = sw2 M(q1, q2, c) + sb2, M the second
 * moment E[phi phi], or the covariance with the weight mean).  slope (may
 * be NULL) receives d cn / d c at fixed q1, q2. */
int ns_mf_step(ns_mf_work *w, const ns_mf_net *net, double q1, double q2, double c,
               double *q1n, double *q2n, double *cn, double *slope);

/* How the q recursion ends. */
typedef enum ns_mf_qkind {
    NS_MF_Q_FINITE = 0, /* converges to a fixed point 0 < q* < inf */
    NS_MF_Q_ANY,        /* every q is a fixed point (homogeneous phi, sb2 = 0,
                         * sw2 E[phi(z)^2] = 1): q* = q0 */
    NS_MF_Q_ZERO,       /* q -> 0 geometrically (sb2 = 0) */
    NS_MF_Q_INF         /* q grows without bound (unbounded phi) */
} ns_mf_qkind;

/* The regime of the correlation map (ordered: c^l -> 1 exponentially;
 * critical: its slope at c = 1 is 1; chaotic: c = 1 is unstable and c^l ->
 * c* < 1) and the quantity that decided it.
 *
 * The regime is set by the slope of the c-map at c = 1 (Poole et al. 2016,
 * sec. 3, define chi_1 as that slope).  Layer by layer that slope is
 *   d c^{l+1} / d c^l |_{c=1} = sw2 E[phi'(u)^2] q^l / q^{l+1},  u ~ N(0, q^l)
 * (Price's theorem; the weight mean subtracts E[phi]^2, which does not
 * depend on c), so it is chi_1 = sw2 E[phi'(u)^2] exactly where q^l sits at
 * a fixed point 0 < q* < inf (NS_MF_Q_FINITE, NS_MF_Q_ANY).  Where q* is 0
 * or infinite, q^{l+1} / q^l tends to the q-map's growth rate r != 1 and the
 * slope to chi_1 / r: for relu r = sw2 / 2 and the slope is 1 whatever sw2
 * (the map T = 2 phi_hat: critical, c* = 1), with the weight mean r = sw2
 * (1/2 - 1/(2 pi)) and the slope is 1/(1 - 1/pi) whatever sw2 (MimicNorm's
 * Tbar: chaotic, c* = 0, Fei et al. 2021, section 4), while chi_1 = sw2 / 2
 * stays the per-layer growth of squared gradient norms.  Smooth activations
 * with q* = 0 are linear in the limit: slope 1, every c a fixed point. */
typedef enum ns_mf_regime {
    NS_MF_ORDERED = -1,
    NS_MF_CRITICAL = 0,
    NS_MF_CHAOTIC = 1,
    NS_MF_UNDEFINED = 2  /* the slope is not defined (NaN) */
} ns_mf_regime;

typedef enum ns_mf_regime_by {
    NS_MF_BY_CHI1 = 0,   /* 0 < q* < inf: the slope is chi_1 */
    NS_MF_BY_SLOPE1      /* q* is 0 or infinite: the limit map's slope */
} ns_mf_regime_by;

/* The regime of a slope of the c-map at c = 1: critical within 10 tol of 1
 * (the band in which the depth scales are reported infinite). */
ns_mf_regime ns_mf_regime_of(double slope1, double tol);
/* Which quantity decides the regime for a kind of q*. */
ns_mf_regime_by ns_mf_regime_by_of(ns_mf_qkind kind);
/* "ordered", "critical", "chaotic", "undefined". */
const char *ns_mf_regime_name(ns_mf_regime r);
/* "chi_1", "c_map_slope" (the names in result files). */
const char *ns_mf_regime_by_name(ns_mf_regime_by b);

/* Fixed-point quantities of a network.  Where q* is 0 or infinite, the maps
 * are their limits along the q recursion; for homogeneous activations that
 * is the normalised dual map M(1,1,c)/M(1,1,1) (T for relu, Tbar with the
 * weight mean), and gelu, swish and softplus tend to relu's where q* is
 * infinite; otherwise the quantities that need q* are NaN (q* = 0: the
 * network is linear in the limit and every c is a fixed point; q* = inf:
 * not defined) [ours, METHODS.md defines the finite case only]. */
typedef struct ns_mf_point {
    ns_mf_qkind qkind;
    double qstar;    /* lim q^l from q0 (0 or INFINITY as qkind says) */
    double qslope;   /* slope of the q-map at q* */
    double chi1;     /* sw2 E[phi'(u)^2], u ~ N(0, q*) (the q -> q* limit) */
    double slope1;   /* slope of the c-map at c = 1 (= chi1 when 0 < q* < inf) */
    double cstar;    /* stable fixed point of the c-map in [0, 1]: 1 when
                      * slope1 <= 1, else the root below 1 (the c-map is
                      * convex on [0, 1]: its Hermite series has non-negative
                      * coefficients, so the root is unique) */
    double cslope;   /* slope of the c-map at c* */
    double xi_q;     /* -1 / ln(qslope): INFINITY when qslope >= 1 (critical) */
    double xi_c;     /* -1 / ln(cslope): INFINITY when cslope >= 1 (critical) */
    ns_mf_regime regime;       /* by slope1, within 10 tol of 1 critical */
    ns_mf_regime_by regime_by; /* whether slope1 is chi1 or the limit's slope */
    size_t order;    /* highest quadrature order used (0: closed forms) */
} ns_mf_point;

/* q0 > 0 is the first layer's pre-activation variance (where the q
 * recursion starts; it matters only when q* is not unique). */
int ns_mf_fixed_point(ns_mf_work *w, const ns_mf_net *net, double q0, ns_mf_point *p);

/* The c-map at the fixed point (its limit where q* is 0 or infinite, see
 * ns_mf_point): cn[i] = C(rho[i]), dcn[i] = C'(rho[i]) (dcn may be NULL),
 * for rho in [-1, 1].  With net->weight_mean this is MimicNorm's Tbar, else
 * T (for relu at (2, 0): T = 2 phi_hat).  NaN where not defined. */
int ns_mf_cmap(ns_mf_work *w, const ns_mf_net *net, const ns_mf_point *p,
               const double *rho, size_t n, double *cn, double *dcn);

/* Per-layer trajectory of two inputs whose first-layer pre-activations have
 * variance q0 and correlation c0: q[l], c[l] for l = 0..depth (l = 0 is the
 * first layer), chi[l] = sw2 E[phi'(u)^2] at q[l] (the factor by which
 * E||dL/dh||^2 grows from layer l+1 back to l), and the NTK of the layer-l
 * pre-activations (NTK parametrisation, see ns_mf_kernel): ntk_diag[l] =
 * Theta(x, x), ntk_off[l] = Theta(x, x').  Any output may be NULL. */
int ns_mf_trajectory(ns_mf_work *w, const ns_mf_net *net, double q0, double c0,
                     size_t depth, double *q, double *c, double *chi,
                     double *ntk_diag, double *ntk_off);

/* Condition number of the n x n Gram matrix with diag on the diagonal and
 * off elsewhere (n inputs with equal norms and equal pairwise kernels):
 * max / min of diag + (n-1) off and diag - off; INFINITY when singular. */
double ns_mf_equicorr_cond(double diag, double off, size_t n);

/* Gradient explosion through a BN-phi stack at initialisation (Yang et al.
 * 2019) in the large-batch limit: E||dL/dh^l||^2 grows by
 * rate = E[phi'(z)^2] / Var[phi(z)], z ~ N(0, 1), per layer backwards
 * (pi / (pi - 1) ~ 1.4669 for relu, Yang et al.'s value).  The formula for
 * other activations is our derivation under the same gradient-independence
 * assumption [ours]; finite batches are not covered. */
int ns_mf_bn_rate(ns_mf_work *w, const ns_mf_act *act, double *rate);

/* -------------------------------------------------------- phase diagram */

typedef struct ns_mf_grid {
    double sw2_min, sw2_max;  /* sw2_min > 0 */
    size_t nsw;
    double sb2_min, sb2_max;  /* sb2_min >= 0 */
    size_t nsb;
} ns_mf_grid;

/* Parses "SW2MIN:SW2MAX:NSW,SB2MIN:SB2MAX:NSB" (N = 1 takes MIN only). */
int ns_mf_grid_parse(const char *s, ns_mf_grid *g);
/* NS_EINVAL unless both axes have at least one point (1 <= N <= 100000,
 * MIN <= MAX, finite) and the variances are valid. */
int ns_mf_grid_check(const ns_mf_grid *g);
/* The i-th point of an axis. */
double ns_mf_grid_at(double lo, double hi, size_t n, size_t i);

typedef struct ns_mf_phase {
    size_t nsw, nsb;
    double *sw2, *sb2;     /* axes (nsw, nsb) */
    double *chi1;          /* (nsb, nsw): row j is sb2[j]; sw2 E[phi'^2] */
    double *slope1;        /* (nsb, nsw): slope of the c-map at c = 1, the
                            * regime's quantity (= chi1 where 0 < q* < inf) */
    ns_mf_regime *regime;  /* (nsb, nsw): by slope1 within 10 tol of 1 */
    ns_mf_regime_by *regime_by; /* (nsb, nsw): chi_1 or the limit map's slope */
    double *cstar;         /* (nsb, nsw) */
    double *qstar;         /* (nsb, nsw) */
    size_t nline;          /* points of the critical line */
    double *line_sw2, *line_sb2; /* slope1 = 1 at (line_sw2[k], line_sb2[k]) */
    size_t *line_branch;   /* which crossing of its row (0: smallest sw2) */
    size_t order;          /* highest quadrature order used */
    double seconds;        /* wall time of the grid and the line */
} ns_mf_phase;

/*
 * chi_1, the slope of the c-map at c = 1, the regime, c* and q* on the
 * grid, then the critical line, where the slope (the regime's quantity, see
 * ns_mf_regime) reaches 1: on every row (fixed sb2) each change between
 * ordered and chaotic of neighbouring columns is refined by Brent's method
 * on slope - 1 to |d sw2| <= 1e-12 sw2 with the slope at the tolerance tol,
 * so the line is traced by root finding, not by contouring the grid; where
 * an ordered or chaotic column meets a critical region (q* 0 or infinite
 * with slope 1: relu at sw2 >= 2, tanh at sw2 < 1 and sb2 = 0) the edge of
 * the region is found by bisection on the kind of q* to the same accuracy;
 * a column within the critical band that is not in such a region is a
 * point of the line itself.  Where the slope jumps over 1 or onto it
 * instead (q* changing kind) no point is recorded, nor inside a critical
 * region (relu's sb2 = 0 row is critical throughout).  For activations without a closed form, c* on the
 * grid comes from the Hermite (Mehler) series of the c-map, E[phi(u1)
 * phi(u2)] = sum_k a_k^2 c^k with a_k = E[phi(sqrt(q*) z) He_k(z)] / sqrt(k!)
 * by Gauss-Hermite quadrature, truncated where the tail (by Parseval's
 * identity, times c*^K) is below the tolerance, at the order where the map
 * at c* agrees with the next order's to the tolerance (a 2-D rule per grid
 * point would cost seconds per row).  Closed forms are used wherever they
 * exist (act->quadrature is ignored).  Runs on ns_get_threads() threads.
 * Release with ns_mf_phase_release.
 */
int ns_mf_phase_compute(const ns_mf_act *act, int weight_mean, double q0,
                        const ns_mf_grid *g, double tol, ns_mf_phase *out);
void ns_mf_phase_release(ns_mf_phase *p);

/* ------------------------------------------------ NNGP and NTK kernels */

/* Which dense layers the weight mean projects (flags for ns_mf_kernel). */
#define NS_MF_WM_HIDDEN  1  /* layers 2 .. depth-1 */
#define NS_MF_WM_READOUT 2  /* layer depth */

/*
 * Analytic infinite-width NNGP and NTK of the network above with depth
 * dense layers (depth >= 1; the output f = h^depth, one of its units),
 * for n inputs given by their Gram matrix gram_in[i*n+j] = x_i . x_j / d_in
 * (n x n, symmetric, positive semi-definite diagonal).
 *
 *   NNGP: K^1 = sw2 G + sb2, K^l = sw2 M^{l-1} + sb2, M^{l-1} = E[phi(u)
 *         phi(u')] over u ~ N(0, K^{l-1}) (the covariance where layer l is
 *         weight-mean projected).  nngp_out = K^depth = Cov(f(x_i), f(x_j)).
 *   NTK:  J J^T of f with J the Jacobian w.r.t. all weights and biases.
 *     widths == NULL: NTK parametrisation (W = sw/sqrt(fan_in) omega, b =
 *       sb beta, derivatives w.r.t. omega, beta), width-independent:
 *       Theta^1 = sw2 G + sb2, Theta^l = Theta^{l-1} Kdot^l + sw2 R^{l-1} + sb2,
 *       Kdot^l = sw2 E[phi'(u) phi'(u')], R^{l-1} = E[phi(u) phi(u')] (the raw
 *       second moment even under the weight mean: J is taken w.r.t. the
 *       stored weights, the projection is not part of the forward pass).
 *     widths != NULL: standard parametrisation, the one of a PyTorch Linear
 *       layer initialised N(0, sw2/fan_in), N(0, sb2) and differentiated
 *       w.r.t. the raw W and b (what `normscope ntk` measures):
 *       Theta^1 = n_0 G + 1, Theta^l = Theta^{l-1} Kdot^l + n_{l-1} R^{l-1} + 1,
 *       widths[0] = n_0 = d_in, widths[l] = n_l the width of layer l
 *       (l = 1..depth-1).  It grows with the widths (the weights of layer l
 *       contribute n_{l-1} R^{l-1} per unit of Kdot-product instead of
 *       sw2 R^{l-1}): a finite network of width n has J J^T = this kernel
 *       times (1 + O(1/sqrt(n))) at initialisation.
 * weight_mean: 0 or NS_MF_WM_* flags.  normscope's mlp with --norm wm
 * projects layers 1..depth-1 (NS_MF_WM_HIDDEN); its first-layer projection
 * centres each input over its features, so pass the Gram matrix of the
 * centred inputs to model it.  nngp_out, ntk_out: n x n (either may be NULL).
 */
int ns_mf_kernel(ns_mf_work *w, const ns_mf_net *net, size_t depth, const double *gram_in,
                 size_t n, const size_t *widths, double *nngp_out, double *ntk_out);

/* The same for every layer: nngp and ntk (either may be NULL) receive
 * depth n x n matrices, the l-th (0-based) for layer l+1. */
int ns_mf_kernel_layers(ns_mf_work *w, const ns_mf_net *net, size_t depth,
                        const double *gram_in, size_t n, const size_t *widths,
                        double *nngp, double *ntk);

/* Condition number (largest / smallest eigenvalue, LAPACK dsyev) of the
 * analytic NTK Gram matrix of layer l = 1..depth: cond[l-1].  INFINITY where
 * the smallest eigenvalue is <= 0 (rounding included). */
int ns_mf_ntk_cond(ns_mf_work *w, const ns_mf_net *net, size_t depth, const double *gram_in,
                   size_t n, const size_t *widths, double *cond);

/* ------------------------------------------------------ the analysis */

/*
 * The meanfield analysis (DESIGN.md section 6): everything above at one
 * (act, sw2, sb2), written to a result file.  Its group and data-set names,
 * shared by ns_mf_run and the figures (src/plot/meanfield.c); every data
 * set has a description, units where meaningful:
 *   NS_MF_GROUP        attrs: act, sw2, sb2, weight_mean, q0, c0, depth,
 *                      gram_n, tol, order, quadrature, provenance
 *   NS_MF_POINT        scalars (attrs qkind, order, regime, regime_by)
 *   NS_MF_TRAJECTORY   per layer l = 0..depth (attr gram_n)
 *   NS_MF_DUAL         rho and the c-maps T, dT (plain) and Tbar, dTbar
 *                      (weight mean) at the same (sw2, sb2); attrs cstar_T,
 *                      cstar_Tbar, slope1_T, slope1_Tbar, qstar_T, qstar_Tbar
 *   NS_MF_PHASE        axes, (nsb x nsw) grids, line/{sw2, sb2, branch};
 *                      attrs seconds, order, tol, weight_mean, regime_by,
 *                      threads
 * A data set's path is its group's macro, "/" and its name's, e.g.
 * NS_MF_POINT "/" NS_MF_QSTAR.
 */
#define NS_MF_GROUP "/meanfield"
#define NS_MF_POINT NS_MF_GROUP "/point"
#define NS_MF_QSTAR "qstar"
#define NS_MF_QSLOPE "qslope"
#define NS_MF_CHI1 "chi1"
#define NS_MF_SLOPE1 "slope1"
#define NS_MF_CSTAR "cstar"
#define NS_MF_CSLOPE "cslope"
#define NS_MF_XI_Q "xi_q"
#define NS_MF_XI_C "xi_c"
#define NS_MF_BN_RATE "bn_rate"
#define NS_MF_TRAJECTORY NS_MF_GROUP "/trajectory"
#define NS_MF_DEPTH "depth"
#define NS_MF_Q "q"
#define NS_MF_C "c"
#define NS_MF_CHI "chi"
#define NS_MF_NTK_DIAG "ntk_diag"
#define NS_MF_NTK_OFFDIAG "ntk_offdiag"
#define NS_MF_NTK_CORR "ntk_corr"
#define NS_MF_NTK_COND "ntk_cond"
#define NS_MF_DUAL NS_MF_GROUP "/dual"
#define NS_MF_RHO "rho"
#define NS_MF_T "T"
#define NS_MF_DT "dT"
#define NS_MF_TBAR "Tbar"
#define NS_MF_DTBAR "dTbar"
#define NS_MF_PHASE NS_MF_GROUP "/phase"
#define NS_MF_SW2 "sw2"
#define NS_MF_SB2 "sb2"
/* NS_MF_PHASE also holds NS_MF_CHI1, NS_MF_SLOPE1, NS_MF_CSTAR, NS_MF_QSTAR */
#define NS_MF_REGIME "regime"
#define NS_MF_REGIME_BY "regime_by"
#define NS_MF_LINE NS_MF_PHASE "/line"
#define NS_MF_BRANCH "branch"
/* NS_MF_LINE also holds NS_MF_SW2 and NS_MF_SB2 */

/* Points of the dual maps on rho in [-1, 1]. */
#define NS_MF_NRHO 101
/* The phase grid unless another is chosen. */
#define NS_MF_DEFAULT_GRID "0.25:4:300,0:0.5:250"

/* What to compute; ns_mf_run_defaults gives the defaults named below. */
typedef struct ns_mf_run_opts {
    ns_mf_net net;          /* relu (closed forms), sw2 2, sb2 0, no weight mean */
    double q0;              /* first layer's pre-activation variance (1) */
    double c0;              /* the two inputs' first correlation (0.5) */
    size_t depth;           /* layers of the trajectory (50) */
    size_t gram_n;          /* inputs of the NTK condition number (10) */
    double tol;             /* quadrature tolerance (1e-10) */
    int have_grid;          /* 1 (default): the phase diagram on grid */
    ns_mf_grid grid;        /* NS_MF_DEFAULT_GRID */
} ns_mf_run_opts;

void ns_mf_run_defaults(ns_mf_run_opts *o);

/* What ns_mf_run computed, for the command's summary.  Owned; release with
 * ns_mf_run_release. */
typedef struct ns_mf_results {
    ns_mf_point pt;         /* at (sw2, sb2) */
    double bn_rate;
    size_t depth;
    double *q, *c, *chi;    /* depth + 1 each: the trajectory */
    double *td, *to, *tcorr, *tcond;   /* the NTK along it (diag, offdiag,
                                        * correlation, condition number) */
    double rho[NS_MF_NRHO], T[NS_MF_NRHO], dT[NS_MF_NRHO], Tb[NS_MF_NRHO],
        dTb[NS_MF_NRHO];
    ns_mf_point pt_plain, pt_wm;   /* the fixed points of T and Tbar */
    int have_phase;
    ns_mf_phase ph;
    size_t order;           /* highest quadrature order (0: closed forms only) */
} ns_mf_results;

/* Releases what r holds; safe on a zeroed r. */
void ns_mf_run_release(ns_mf_results *r);

/* "finite", "zero (q decays geometrically)", ... for q*'s kind. */
const char *ns_mf_qkind_name(ns_mf_qkind k);

/* How the expectations of act are computed: "closed form", "Gauss-Hermite
 * (GSL)" or "Gauss-Legendre on each side of 0 (GSL)". */
const char *ns_mf_quadrature_name(const ns_mf_act *act);

struct ns_result;

/*
 * Computes the analysis of o (checked by the caller with ns_mf_net_check
 * and the ranges of the command) and writes it to res under NS_MF_GROUP,
 * with provenance command line cmdline (NULL: "").  *r is zeroed first and
 * filled even on failure (release it either way).  Notes the phase diagram
 * on stderr.  Errors: those of the computations above and of the result
 * writer; NS_ENOMEM.
 */
int ns_mf_run(const ns_mf_run_opts *o, struct ns_result *res, const char *cmdline,
              ns_mf_results *r);

#endif
