/*
 * normscope meanfield: mean-field theory of a deep fully connected network
 * at initialisation (METHODS.md "Mean-field theory" and "MimicNorm";
 * include/normscope/meanfield.h): fixed points, chi_1, depth scales,
 * trajectories through depth with the NTK recursion, the dual maps T and
 * Tbar, the BN gradient-explosion rate, and the phase diagram with its
 * critical line.  Needs no data set or run file; writes a result file.
 *
 * Result file (every data set has a description, units where meaningful):
 *   /meanfield                 attrs: act, sw2, sb2, weight_mean, q0, c0, depth,
 *                              gram_n, tol, quadrature, provenance
 *   /meanfield/point/...       scalars: qstar, qslope, chi1, slope1, cstar,
 *                              cslope, xi_q, xi_c, bn_rate (attrs qkind, order,
 *                              regime, regime_by: "chi_1" or "c_map_slope")
 *   /meanfield/trajectory/...  per layer l = 0..depth: depth, q, c, chi,
 *                              ntk_diag, ntk_offdiag, ntk_corr, ntk_cond
 *   /meanfield/dual/...        rho and the c-maps T, dT (plain) and Tbar,
 *                              dTbar (weight mean) at the same (sw2, sb2)
 *   /meanfield/phase/...       sw2, sb2 axes, chi1, slope1, regime, regime_by,
 *                              cstar, qstar (nsb x nsw), line/{sw2, sb2, branch}
 *                              (the critical line); attr regime_by
 * The regime (ordered, critical, chaotic) is classified by the slope of the
 * c-map at c = 1: chi_1 where 0 < q* < inf, the limit map's slope where q*
 * is 0 or infinite (normscope/meanfield.h, ns_mf_regime).
 */
#include "cli.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "normscope/io.h"
#include "normscope/meanfield.h"

#define DEFAULT_GRID "0.25:4:300,0:0.5:250"
#define NRHO 101

static const char usage_text[] =
    "usage: normscope meanfield [--act A] [--sw2 S] [--sb2 B] [--weight-mean] [--depth L]\n"
    "                           [--q0 Q] [--c0 C] [--grid SPEC|none] [--tol T] -o OUT.h5\n"
    "\n"
    "Mean-field theory of a deep fully connected network at initialisation, W ~\n"
    "N(0, sigma_w^2/fan_in), b ~ N(0, sigma_b^2) (train --init gauss:S,B), infinite\n"
    "width (Poole et al. 2016, Schoenholz et al. 2017; MimicNorm, Fei et al. 2021).\n"
    "Needs no data set or run file; writes a result file and prints a summary.\n"
    "\n"
    "options:\n"
    "  --act A          activation (default relu), one of\n"
    "                   %s\n"
    "  --sw2 S          sigma_w^2 > 0, the weight variance times fan-in (default 2)\n"
    "  --sb2 B          sigma_b^2 >= 0, the bias variance (default 0)\n"
    "  --weight-mean    MimicNorm's weight mean: every row of W projected to zero mean,\n"
    "                   so each layer sees its inputs minus their mean over units\n"
    "  --depth L        layers of the trajectories (default 50)\n"
    "  --q0 Q           variance of the first layer's pre-activations (default 1)\n"
    "  --c0 C           correlation of the two inputs' first pre-activations (default 0.5)\n"
    "  --gram-n N       inputs of the NTK condition number along the trajectory (default 10)\n"
    "  --grid SPEC      phase diagram SW2MIN:SW2MAX:NSW,SB2MIN:SB2MAX:NSB (default\n"
    "                   " DEFAULT_GRID "), N = 1 takes MIN only; 'none' skips it\n"
    "  --tol T          quadrature tolerance (default 1e-10): the order is doubled until\n"
    "                   two successive estimates agree to T times the quantity's scale\n"
    "  --quadrature     quadrature even where a closed form exists (a cross-check; the\n"
    "                   phase diagram always uses the closed forms)\n"
    "  --threads T      threads of the phase diagram (default: all cores)\n"
    "  -o, --output F   result file to write; --force overwrites it\n"
    "  --quiet          no notes on stderr\n"
    "  -h, --help       this help\n"
    "\n"
    "quantities (u ~ N(0, q*), phi the activation):\n"
    "  q*       fixed point of the q-map q' = sw2 E[phi(u)^2] + sb2, the variance of deep\n"
    "           pre-activations; 0 when it decays, inf when it grows without bound\n"
    "  chi_1    sw2 E[phi'(u)^2]: how much squared gradient norms grow per layer backwards\n"
    "           and, where 0 < q* < inf, the slope of the c-map at c = 1\n"
    "  regime   by the slope of the c-map at c = 1: < 1 ordered, = 1 critical, > 1\n"
    "           chaotic.  It is chi_1 where 0 < q* < inf; where q* is 0 or infinite it\n"
    "           is the slope of the limit map (relu: 1 for every sw2 at sb2 = 0; with the\n"
    "           weight mean 1/(1 - 1/pi), chaotic, MimicNorm's Tbar) and chi_1 does not\n"
    "           decide; the summary and the result file say which one was used\n"
    "  c*       stable fixed point of the correlation map c' = (sw2 E[phi(u1) phi(u2)] +\n"
    "           sb2) / q*: where the correlation of two inputs ends up with depth\n"
    "  slope    of the c-map at c*, the rate at which correlations approach c*\n"
    "  xi_q     depth scale of q: -1/ln(slope of the q-map at q*), layers\n"
    "  xi_c     depth scale of c: -1/ln(slope at c*), layers; infinite where critical\n"
    "  BN rate  growth of squared gradient norms per layer through a BN-phi stack at\n"
    "           init, E[phi'(z)^2] / Var[phi(z)] (Yang et al. 2019, batch -> inf; their\n"
    "           pi/(pi-1) for relu, our derivation for other activations)\n"
    "  T, Tbar  the c-map without and with the weight mean (MimicNorm's Figure 4)\n"
    "  NTK      infinite-width NTK of the layer's pre-activations, NTK parametrisation;\n"
    "           ntk_cond: condition number of the Gram of --gram-n inputs with pairwise\n"
    "           correlation c0 (ordered: diverges with depth, chaotic: tends to 1)\n"
    "  phase    chi_1, the slope at c = 1, the regime, c*, q* over a (sw2, sb2) grid and\n"
    "           the critical line (slope 1; chi_1 = 1 where q* is finite) by root\n"
    "           finding along each row\n"
    "With the weight mean, E[phi phi] becomes the covariance.  Where q* is 0 or infinite\n"
    "the maps are their limits (homogeneous activations: the normalised dual map; gelu,\n"
    "swish, softplus: relu's where q* is infinite; otherwise c* is not defined, NaN) -\n"
    "our extension of the theory.\n"
    "Expectations: closed forms for relu, leaky, linear, erf; otherwise Gauss-Hermite\n"
    "(GSL), 2-D by tensor products over correlated normals; relu and leaky with\n"
    "--quadrature, and gelu, swish, softplus (relu-like at large variance) are split\n"
    "at 0 (Gauss-Legendre on each side).  On the phase grid c* of activations without\n"
    "a closed form comes from the Hermite series of the c-map, truncated to the\n"
    "tolerance.\n";

enum {
    O_ACT = 256, O_SW2, O_SB2, O_WM, O_DEPTH, O_Q0, O_C0, O_GRAMN, O_GRID, O_TOL, O_QUAD,
    O_THREADS, O_FORCE, O_QUIET
};

static const struct option options[] = {
    {"act", required_argument, NULL, O_ACT},
    {"sw2", required_argument, NULL, O_SW2},
    {"sb2", required_argument, NULL, O_SB2},
    {"weight-mean", no_argument, NULL, O_WM},
    {"depth", required_argument, NULL, O_DEPTH},
    {"q0", required_argument, NULL, O_Q0},
    {"c0", required_argument, NULL, O_C0},
    {"gram-n", required_argument, NULL, O_GRAMN},
    {"grid", required_argument, NULL, O_GRID},
    {"tol", required_argument, NULL, O_TOL},
    {"quadrature", no_argument, NULL, O_QUAD},
    {"threads", required_argument, NULL, O_THREADS},
    {"output", required_argument, NULL, 'o'},
    {"force", no_argument, NULL, O_FORCE},
    {"quiet", no_argument, NULL, O_QUIET},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* ------------------------------------------------------------- results */

typedef struct results {
    ns_mf_point pt;
    double bn_rate;
    size_t depth;
    double *q, *c, *chi, *td, *to, *tcorr, *tcond;
    double rho[NRHO], T[NRHO], dT[NRHO], Tb[NRHO], dTb[NRHO];
    ns_mf_point pt_plain, pt_wm;
    int have_phase;
    ns_mf_phase ph;
    size_t order;
} results;

static void results_release(results *r)
{
    ns_free(r->q);
    ns_free(r->c);
    ns_free(r->chi);
    ns_free(r->td);
    ns_free(r->to);
    ns_free(r->tcorr);
    ns_free(r->tcond);
    if (r->have_phase)
        ns_mf_phase_release(&r->ph);
}

static int compute(const ns_mf_net *net, double q0, double c0, size_t depth, size_t gram_n,
                   const ns_mf_grid *grid, double tol, results *r)
{
    ns_mf_work *w = ns_mf_work_alloc(tol);
    if (!w)
        return NS_ENOMEM;
    int st = ns_mf_fixed_point(w, net, q0, &r->pt);
    if (!st)
        st = ns_mf_bn_rate(w, &net->act, &r->bn_rate);

    /* trajectory and the NTK along it */
    size_t n = depth + 1;
    r->depth = depth;
    r->q = ns_malloc(n * sizeof *r->q);
    r->c = ns_malloc(n * sizeof *r->c);
    r->chi = ns_malloc(n * sizeof *r->chi);
    r->td = ns_malloc(n * sizeof *r->td);
    r->to = ns_malloc(n * sizeof *r->to);
    r->tcorr = ns_malloc(n * sizeof *r->tcorr);
    r->tcond = ns_malloc(n * sizeof *r->tcond);
    if (!st && (!r->q || !r->c || !r->chi || !r->td || !r->to || !r->tcorr || !r->tcond))
        st = NS_ENOMEM;
    if (!st)
        st = ns_mf_trajectory(w, net, q0, c0, depth, r->q, r->c, r->chi, r->td, r->to);
    for (size_t l = 0; !st && l < n; l++) {
        r->tcorr[l] = r->td[l] > 0 ? r->to[l] / r->td[l] : NAN;
        r->tcond[l] = ns_mf_equicorr_cond(r->td[l], r->to[l], gram_n);
    }

    /* the dual maps without and with the weight mean */
    ns_mf_net plain = *net, wm = *net;
    plain.weight_mean = 0;
    wm.weight_mean = 1;
    for (size_t i = 0; i < NRHO; i++)
        r->rho[i] = ns_mf_grid_at(-1, 1, NRHO, i);
    if (!st)
        st = ns_mf_fixed_point(w, &plain, q0, &r->pt_plain);
    if (!st)
        st = ns_mf_cmap(w, &plain, &r->pt_plain, r->rho, NRHO, r->T, r->dT);
    if (!st)
        st = ns_mf_fixed_point(w, &wm, q0, &r->pt_wm);
    if (!st)
        st = ns_mf_cmap(w, &wm, &r->pt_wm, r->rho, NRHO, r->Tb, r->dTb);
    r->order = ns_mf_work_order(w);
    ns_mf_work_free(w);

    if (!st && grid) {
        ns_note("normscope meanfield: phase diagram on %zu x %zu points", grid->nsw, grid->nsb);
        st = ns_mf_phase_compute(&net->act, net->weight_mean, q0, grid, tol, &r->ph);
        r->have_phase = st == NS_OK;
        if (!st && r->ph.order > r->order)
            r->order = r->ph.order;
    }
    return st;
}

/* --------------------------------------------------------------- writing */

static int put_scalar(hid_t fid, const char *path, double v, const char *desc,
                      const char *units)
{
    int st = ns_h5_write_double(fid, path, 0, NULL, &v);
    return st ? st : ns_h5_describe(fid, path, desc, units);
}

static int put_vec(hid_t fid, const char *path, const double *v, size_t n, const char *desc,
                   const char *units)
{
    size_t dims[1] = {n};
    int st = ns_h5_write_double(fid, path, 1, dims, v);
    return st ? st : ns_h5_describe(fid, path, desc, units);
}

static int put_mat(hid_t fid, const char *path, const double *v, size_t rows, size_t cols,
                   const char *desc)
{
    size_t dims[2] = {rows, cols};
    int st = ns_h5_write_double(fid, path, 2, dims, v);
    return st ? st : ns_h5_describe(fid, path, desc, NULL);
}

/* The phase grid's regime (by = 0) or regime_by (by = 1) codes as int64. */
static int put_codes(hid_t fid, const char *path, const ns_mf_phase *p, int by,
                     const char *desc)
{
    size_t n = p->nsb * p->nsw, dims[2] = {p->nsb, p->nsw};
    int64_t *b = ns_malloc((n ? n : 1) * sizeof *b);
    if (!b)
        return NS_ENOMEM;
    for (size_t i = 0; i < n; i++)
        b[i] = by ? (int64_t)p->regime_by[i] : (int64_t)p->regime[i];
    int st = ns_h5_write_int(fid, path, 2, dims, b);
    ns_free(b);
    return st ? st : ns_h5_describe(fid, path, desc, NULL);
}

static const char *qkind_name(ns_mf_qkind k)
{
    switch (k) {
    case NS_MF_Q_FINITE: return "finite";
    case NS_MF_Q_ANY: return "any (every q is a fixed point)";
    case NS_MF_Q_ZERO: return "zero (q decays geometrically)";
    case NS_MF_Q_INF: return "infinite (q grows without bound)";
    }
    return "?";
}

static int write_point(hid_t fid, const results *r)
{
    const ns_mf_point *p = &r->pt;
    const char *g = "/meanfield/point";
    int st = ns_h5_group(fid, g);
    if (!st) st = ns_h5_attr_str(fid, g, "qkind", qkind_name(p->qkind));
    if (!st) st = ns_h5_attr_int(fid, g, "order", (int64_t)p->order);
    if (!st) st = ns_h5_attr_str(fid, g, "regime", ns_mf_regime_name(p->regime));
    if (!st) st = ns_h5_attr_str(fid, g, "regime_by", ns_mf_regime_by_name(p->regime_by));
    if (!st) st = put_scalar(fid, "/meanfield/point/qstar", p->qstar,
                             "q*: fixed point of the q-map, the variance of deep pre-activations "
                             "(0: decays, inf: grows without bound)", "variance");
    if (!st) st = put_scalar(fid, "/meanfield/point/qslope", p->qslope,
                             "slope of the q-map at q* (chi_1 + sigma_w^2 E[phi'' phi])", NULL);
    if (!st) st = put_scalar(fid, "/meanfield/point/chi1", p->chi1,
                             "chi_1 = sigma_w^2 E[phi'(u)^2], u ~ N(0, q*): per-layer growth of "
                             "squared gradient norms; the slope of the c-map at c = 1 when "
                             "0 < q* < inf (attr regime_by chi_1)", NULL);
    if (!st) st = put_scalar(fid, "/meanfield/point/slope1", p->slope1,
                             "slope of the c-map at c = 1, which classifies the regime (attr "
                             "regime): < 1 ordered, 1 critical, > 1 chaotic; chi_1 when 0 < q* < "
                             "inf, the limit map's slope when q* is 0 or infinite (attr "
                             "regime_by c_map_slope)", NULL);
    if (!st) st = put_scalar(fid, "/meanfield/point/cstar", p->cstar,
                             "c*: stable fixed point of the c-map in [0, 1] (NaN: undefined)",
                             NULL);
    if (!st) st = put_scalar(fid, "/meanfield/point/cslope", p->cslope,
                             "slope of the c-map at c*", NULL);
    if (!st) st = put_scalar(fid, "/meanfield/point/xi_q", p->xi_q,
                             "depth scale of q, -1/ln(slope of the q-map at q*) (inf: "
                             "critical)", "layers");
    if (!st) st = put_scalar(fid, "/meanfield/point/xi_c", p->xi_c,
                             "depth scale of c, -1/ln(slope of the c-map at c*) (inf: "
                             "critical)", "layers");
    if (!st) st = put_scalar(fid, "/meanfield/point/bn_rate", r->bn_rate,
                             "growth of squared gradient norms per layer through a BN-phi stack "
                             "at init, E[phi'(z)^2]/Var[phi(z)] (Yang et al. 2019, batch -> inf)",
                             NULL);
    return st;
}

static int write_trajectory(hid_t fid, const results *r, size_t gram_n)
{
    size_t n = r->depth + 1;
    int64_t *d = ns_malloc(n * sizeof *d);
    if (!d)
        return NS_ENOMEM;
    for (size_t l = 0; l < n; l++)
        d[l] = (int64_t)l;
    const char *g = "/meanfield/trajectory";
    size_t dims[1] = {n};
    int st = ns_h5_write_int(fid, "/meanfield/trajectory/depth", 1, dims, d);
    ns_free(d);
    if (!st) st = ns_h5_describe(fid, "/meanfield/trajectory/depth",
                                 "layer l: 0 is the first layer's pre-activations, l after l "
                                 "more activation + dense steps", "layers");
    if (!st) st = ns_h5_attr_int(fid, g, "gram_n", (int64_t)gram_n);
    if (!st) st = put_vec(fid, "/meanfield/trajectory/q", r->q, n,
                          "variance of the pre-activations at layer l (q-map from q0)",
                          "variance");
    if (!st) st = put_vec(fid, "/meanfield/trajectory/c", r->c, n,
                          "correlation of two inputs' pre-activations at layer l (from c0)",
                          NULL);
    if (!st) st = put_vec(fid, "/meanfield/trajectory/chi", r->chi, n,
                          "sigma_w^2 E[phi'(u)^2] at q[l]: growth of squared gradient norms "
                          "from layer l+1 back to l", NULL);
    if (!st) st = put_vec(fid, "/meanfield/trajectory/ntk_diag", r->td, n,
                          "NTK Theta(x, x) of the layer-l pre-activations (NTK "
                          "parametrisation, infinite width)", NULL);
    if (!st) st = put_vec(fid, "/meanfield/trajectory/ntk_offdiag", r->to, n,
                          "NTK Theta(x, x') of the layer-l pre-activations", NULL);
    if (!st) st = put_vec(fid, "/meanfield/trajectory/ntk_corr", r->tcorr, n,
                          "NTK correlation Theta(x, x') / Theta(x, x)", NULL);
    if (!st) st = put_vec(fid, "/meanfield/trajectory/ntk_cond", r->tcond, n,
                          "condition number of the NTK Gram of gram_n inputs with pairwise "
                          "correlation c0 at layer l", NULL);
    return st;
}

static int write_dual(hid_t fid, const results *r)
{
    const char *g = "/meanfield/dual";
    int st = put_vec(fid, "/meanfield/dual/rho", r->rho, NRHO,
                     "correlation rho of the layer's input pre-activations", NULL);
    if (!st) st = put_vec(fid, "/meanfield/dual/T", r->T, NRHO,
                          "c-map T(rho) without the weight mean at (sw2, sb2), at q*", NULL);
    if (!st) st = put_vec(fid, "/meanfield/dual/dT", r->dT, NRHO, "T'(rho)", NULL);
    if (!st) st = put_vec(fid, "/meanfield/dual/Tbar", r->Tb, NRHO,
                          "c-map Tbar(rho) with MimicNorm's weight mean at (sw2, sb2), at its "
                          "q*", NULL);
    if (!st) st = put_vec(fid, "/meanfield/dual/dTbar", r->dTb, NRHO, "Tbar'(rho)", NULL);
    if (!st) st = ns_h5_attr_double(fid, g, "cstar_T", r->pt_plain.cstar);
    if (!st) st = ns_h5_attr_double(fid, g, "cstar_Tbar", r->pt_wm.cstar);
    if (!st) st = ns_h5_attr_double(fid, g, "slope1_T", r->pt_plain.slope1);
    if (!st) st = ns_h5_attr_double(fid, g, "slope1_Tbar", r->pt_wm.slope1);
    if (!st) st = ns_h5_attr_double(fid, g, "qstar_T", r->pt_plain.qstar);
    if (!st) st = ns_h5_attr_double(fid, g, "qstar_Tbar", r->pt_wm.qstar);
    return st;
}

static int write_phase(hid_t fid, const ns_mf_phase *p, int weight_mean, double tol)
{
    const char *g = "/meanfield/phase";
    int st = put_vec(fid, "/meanfield/phase/sw2", p->sw2, p->nsw, "sigma_w^2 axis (columns)",
                     NULL);
    if (!st) st = put_vec(fid, "/meanfield/phase/sb2", p->sb2, p->nsb,
                          "sigma_b^2 axis (rows)", NULL);
    if (!st) st = put_mat(fid, "/meanfield/phase/chi1", p->chi1, p->nsb, p->nsw,
                          "chi_1 = sigma_w^2 E[phi'^2] at (sb2[row], sw2[column])");
    if (!st) st = put_mat(fid, "/meanfield/phase/slope1", p->slope1, p->nsb, p->nsw,
                          "slope of the c-map at c = 1, which classifies the regime: chi_1 "
                          "where 0 < q* < inf (regime_by 0), the limit map's slope where q* "
                          "is 0 or infinite (regime_by 1)");
    if (!st) st = put_codes(fid, "/meanfield/phase/regime", p, 0,
                            "regime by slope1: -1 ordered, 0 critical (within 10 tol of 1), "
                            "1 chaotic, 2 undefined");
    if (!st) st = put_codes(fid, "/meanfield/phase/regime_by", p, 1, "0: slope1 is chi_1 (0 < q* < inf), 1: slope1 is "
                            "the limit map's slope (q* is 0 or infinite)");
    if (!st) st = put_mat(fid, "/meanfield/phase/cstar", p->cstar, p->nsb, p->nsw,
                          "c* at (sb2[row], sw2[column]) (NaN: undefined)");
    if (!st) st = put_mat(fid, "/meanfield/phase/qstar", p->qstar, p->nsb, p->nsw,
                          "q* at (sb2[row], sw2[column])");
    size_t n = p->nline;
    int64_t *b = ns_malloc((n ? n : 1) * sizeof *b);
    if (!st && !b)
        st = NS_ENOMEM;
    for (size_t i = 0; !st && i < n; i++)
        b[i] = (int64_t)p->line_branch[i];
    if (!st) st = put_vec(fid, "/meanfield/phase/line/sw2", p->line_sw2, n,
                          "sigma_w^2 where the slope of the c-map at c = 1 reaches 1 "
                          "(chi_1 = 1 by Brent's method where q* is finite; the edge of a "
                          "critical region where q* is 0 or infinite)", NULL);
    if (!st) st = put_vec(fid, "/meanfield/phase/line/sb2", p->line_sb2, n,
                          "sigma_b^2 of the critical-line point (a grid row)", NULL);
    size_t dims[1] = {n};
    if (!st) st = ns_h5_write_int(fid, "/meanfield/phase/line/branch", 1, dims, b);
    if (!st) st = ns_h5_describe(fid, "/meanfield/phase/line/branch",
                                 "which crossing of its row (0: the smallest sigma_w^2)", NULL);
    ns_free(b);
    if (!st) st = ns_h5_attr_double(fid, g, "seconds", p->seconds);
    if (!st) st = ns_h5_attr_int(fid, g, "order", (int64_t)p->order);
    if (!st) st = ns_h5_attr_double(fid, g, "tol", tol);
    if (!st) st = ns_h5_attr_int(fid, g, "weight_mean", weight_mean);
    if (!st) st = ns_h5_attr_str(fid, g, "regime_by", "c_map_slope");
    if (!st) st = ns_h5_attr_int(fid, g, "threads", ns_get_threads());
    return st;
}

static int write_all(hid_t fid, const ns_mf_net *net, double q0, double c0, size_t gram_n,
                     double tol, const results *r)
{
    char act[64], now[32];
    ns_mf_act_name(&net->act, act, sizeof act);
    ns_iso_time(now, sizeof now);
    const char *g = "/meanfield";
    int st = ns_h5_attr_str(fid, ".", "format", NS_RESULT_FORMAT);
    if (!st) st = ns_h5_attr_int(fid, ".", "format_version", NS_RUN_FORMAT_VERSION);
    if (!st) st = ns_h5_attr_str(fid, ".", "normscope_version", NS_VERSION);
    if (!st) st = ns_h5_attr_str(fid, ".", "created", now);
    if (!st) st = ns_h5_attr_str(fid, ".", "command_line", ns_cli_cmdline());
    if (!st) st = ns_result_group_attrs(fid, g, ns_cli_cmdline(), "(theory, no run file)",
                                        "theory", 0);
    if (!st) st = ns_h5_attr_str(fid, g, "act", act);
    if (!st) st = ns_h5_attr_double(fid, g, "sw2", net->sw2);
    if (!st) st = ns_h5_attr_double(fid, g, "sb2", net->sb2);
    if (!st) st = ns_h5_attr_int(fid, g, "weight_mean", net->weight_mean);
    if (!st) st = ns_h5_attr_double(fid, g, "q0", q0);
    if (!st) st = ns_h5_attr_double(fid, g, "c0", c0);
    if (!st) st = ns_h5_attr_int(fid, g, "depth", (int64_t)r->depth);
    if (!st) st = ns_h5_attr_int(fid, g, "gram_n", (int64_t)gram_n);
    if (!st) st = ns_h5_attr_double(fid, g, "tol", tol);
    if (!st) st = ns_h5_attr_int(fid, g, "order", (int64_t)r->order);
    ns_mf_act_kind k = net->act.kind;
    int split = k == NS_MF_RELU || k == NS_MF_LEAKY || k == NS_MF_GELU || k == NS_MF_SWISH ||
                k == NS_MF_SOFTPLUS;
    if (!st) st = ns_h5_attr_str(fid, g, "quadrature",
                                 ns_mf_act_closed(&net->act) ? "closed form"
                                 : split ? "Gauss-Legendre on each side of 0 (GSL)"
                                         : "Gauss-Hermite (GSL)");
    if (!st) st = write_point(fid, r);
    if (!st) st = write_trajectory(fid, r, gram_n);
    if (!st) st = write_dual(fid, r);
    if (!st && r->have_phase)
        st = write_phase(fid, &r->ph, net->weight_mean, tol);
    return st;
}

/* --------------------------------------------------------------- summary */

static void print_num(const char *name, double v, const char *units, const char *note)
{
    char val[64];
    if (isinf(v) && v > 0)
        snprintf(val, sizeof val, "infinite (critical)");
    else if (isnan(v))
        snprintf(val, sizeof val, "undefined");
    else
        snprintf(val, sizeof val, "%.10g%s%s", v, units ? " " : "", units ? units : "");
    printf("  %-8s %-22s %s\n", name, val, note ? note : "");
}

/* The verdict line: the regime and the quantity that decided it, e.g.
 * "chaotic (c-map slope at c = 1: 1.467 > 1; q* = 0, so chi_1 does not
 * decide)". */
static void print_regime(const ns_mf_point *p)
{
    const char *name = ns_mf_regime_name(p->regime);
    const char *rel = p->regime == NS_MF_ORDERED ? "<" : p->regime == NS_MF_CHAOTIC ? ">" : "=";
    if (p->regime == NS_MF_UNDEFINED) {
        printf("  %-8s %s (the c-map has no limit where q* is %s)\n", "regime", name,
               p->qkind == NS_MF_Q_ZERO ? "0" : "infinite");
    } else if (p->regime_by == NS_MF_BY_CHI1) {
        printf("  %-8s %s (chi_1: %.4g %s 1, the c-map slope at c = 1 at q*)\n", "regime", name,
               p->chi1, rel);
    } else {
        printf("  %-8s %s (c-map slope at c = 1: %.4g %s 1; q* = %s, so chi_1 does not "
               "decide)\n", "regime", name, p->slope1, rel,
               p->qkind == NS_MF_Q_ZERO ? "0" : "inf");
    }
}

static void summary(const ns_mf_net *net, double q0, double c0, size_t gram_n, double tol,
                    const results *r, const char *out)
{
    char act[64];
    ns_mf_act_name(&net->act, act, sizeof act);
    const ns_mf_point *p = &r->pt;
    int by_chi = p->regime_by == NS_MF_BY_CHI1;
    const char *lim = p->qkind == NS_MF_Q_ZERO ? "q -> 0" : "q -> inf";
    char note[128];
    printf("mean field: %s, sigma_w^2 %g, sigma_b^2 %g, weight mean %s\n", act, net->sw2,
           net->sb2, net->weight_mean ? "on" : "off");
    if (p->qkind == NS_MF_Q_FINITE)
        print_num("q*", p->qstar, NULL, "fixed point of the q-map");
    else
        printf("  %-8s %s\n", "q*", qkind_name(p->qkind));
    if (by_chi)
        snprintf(note, sizeof note, "sigma_w^2 E[phi'^2], the slope of the c-map at c = 1");
    else
        snprintf(note, sizeof note, "sigma_w^2 E[phi'^2] as %s: |grad|^2 growth per layer", lim);
    print_num("chi_1", p->chi1, NULL, note);
    if (!by_chi) {
        snprintf(note, sizeof note, "slope of the c-map at c = 1 (its limit as %s)", lim);
        print_num("slope@1", p->slope1, NULL, note);
    }
    print_regime(p);
    print_num("c*", p->cstar, NULL,
              isnan(p->cstar) && p->qkind == NS_MF_Q_ZERO
                  ? "none: the limit map is the identity, every c is fixed"
                  : "stable fixed point of the c-map");
    print_num("slope", p->cslope, NULL, "of the c-map at c*");
    print_num("xi_q", p->xi_q, isfinite(p->xi_q) ? "layers" : NULL, NULL);
    print_num("xi_c", p->xi_c, isfinite(p->xi_c) ? "layers" : NULL, NULL);
    print_num("BN rate", r->bn_rate, NULL, "|grad|^2 growth per layer, BN stack, batch -> inf");
    size_t L = r->depth;
    printf("trajectory: %zu layers from q0 %g, c0 %g: q %.6g, c %.6g; NTK cond (%zu inputs) "
           "%.4g -> %.4g\n", L, q0, c0, r->q[L], r->c[L], gram_n, r->tcond[0], r->tcond[L]);
    printf("dual maps: T slope at 1 %.6g, c* %.6g; Tbar slope at 1 %.6g, c* %.6g\n",
           r->pt_plain.slope1, r->pt_plain.cstar, r->pt_wm.slope1, r->pt_wm.cstar);
    if (r->have_phase) {
        const ns_mf_phase *ph = &r->ph;
        size_t n = ph->nsw * ph->nsb, cnt[4] = {0, 0, 0, 0}, limit = 0;
        for (size_t i = 0; i < n; i++) {
            cnt[ph->regime[i] + 1]++;
            limit += ph->regime_by[i] == NS_MF_BY_SLOPE1;
        }
        printf("phase diagram: %zu x %zu over sigma_w^2 %g..%g, sigma_b^2 %g..%g in %.2f s; "
               "critical line %zu points\n", ph->nsw, ph->nsb, ph->sw2[0], ph->sw2[ph->nsw - 1],
               ph->sb2[0], ph->sb2[ph->nsb - 1], ph->seconds, ph->nline);
        printf("  regimes by the c-map slope at c = 1: ordered %zu, critical %zu, chaotic %zu, "
               "undefined %zu points; the slope is chi_1 at %zu, the limit map's (q* 0 or inf) "
               "at %zu\n", cnt[0], cnt[1], cnt[2], cnt[3], n - limit, limit);
    }
    if (r->order)
        printf("quadrature: tolerance %g, highest order %zu\n", tol, r->order);
    else
        printf("quadrature: closed forms only\n");
    printf("result file: %s\n", out);
}

/* --------------------------------------------------------------- command */

int cmd_meanfield(int argc, char **argv)
{
    ns_mf_net net = {{NS_MF_RELU, 0, 0}, 2, 0, 0};
    double q0 = 1, c0 = 0.5, tol = 1e-10;
    size_t depth = 50, gram_n = 10;
    int threads = 0;
    const char *out = NULL, *grid_spec = DEFAULT_GRID;
    int force = 0, quad = 0, opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":o:h", options, NULL)) != -1) {
        int bad = 0;
        switch (opt) {
        case O_ACT:
            if (ns_mf_act_parse(optarg, &net.act))
                return ns_cli_usage_error("meanfield", "%s", ns_errmsg());
            break;
        case O_SW2: bad = ns_cli_double("meanfield", "--sw2", optarg, &net.sw2); break;
        case O_SB2: bad = ns_cli_double("meanfield", "--sb2", optarg, &net.sb2); break;
        case O_WM: net.weight_mean = 1; break;
        case O_DEPTH: bad = ns_cli_size("meanfield", "--depth", optarg, &depth); break;
        case O_Q0: bad = ns_cli_double("meanfield", "--q0", optarg, &q0); break;
        case O_C0: bad = ns_cli_double("meanfield", "--c0", optarg, &c0); break;
        case O_GRAMN: bad = ns_cli_size("meanfield", "--gram-n", optarg, &gram_n); break;
        case O_GRID: grid_spec = optarg; break;
        case O_TOL: bad = ns_cli_double("meanfield", "--tol", optarg, &tol); break;
        case O_QUAD: quad = 1; break;
        case O_THREADS: bad = ns_cli_threads("meanfield", optarg, &threads); break;
        case 'o': out = optarg; break;
        case O_FORCE: force = 1; break;
        case O_QUIET: ns_progress_set_quiet(1); break;
        case 'h': printf(usage_text, ns_mf_act_names()); return NS_EXIT_OK;
        default: return ns_cli_bad_option("meanfield", options, opt, argv);
        }
        if (bad)
            return NS_EXIT_USAGE;
    }
    if (optind < argc)
        return ns_cli_usage_error("meanfield", "unexpected argument '%s'", argv[optind]);
    net.act.quadrature = quad;
    if (ns_mf_net_check(&net))
        return ns_cli_usage_error("meanfield", "%s", ns_errmsg());
    if (!(q0 > 0) || !isfinite(q0))
        return ns_cli_usage_error("meanfield", "--q0 must be a positive number, got %g", q0);
    if (!(fabs(c0) <= 1))
        return ns_cli_usage_error("meanfield", "--c0 must lie in [-1, 1], got %g", c0);
    if (depth < 1 || depth > 100000)
        return ns_cli_usage_error("meanfield", "--depth must be in 1..100000, got %zu", depth);
    if (gram_n < 1)
        return ns_cli_usage_error("meanfield", "--gram-n must be at least 1");
    if (!(tol >= 1e-14 && tol <= 1e-2))
        return ns_cli_usage_error("meanfield", "--tol must lie in [1e-14, 1e-2], got %g", tol);
    ns_mf_grid grid;
    int have_grid = strcmp(grid_spec, "none") != 0;
    if (have_grid && ns_mf_grid_parse(grid_spec, &grid))
        return ns_cli_usage_error("meanfield", "--grid: %s", ns_errmsg());
    if (!out)
        return ns_cli_usage_error("meanfield", "no output file given (use -o OUT.h5)");
    if (threads)
        ns_set_threads(threads);

    /* The output is created first, so a bad path fails before the work. */
    ns_h5out o;
    int st = ns_h5out_create(&o, out, force);
    if (st)
        return ns_cli_fail(st, NULL);
    results r;
    memset(&r, 0, sizeof r);
    st = compute(&net, q0, c0, depth, gram_n, have_grid ? &grid : NULL, tol, &r);
    if (!st)
        st = write_all(o.fid, &net, q0, c0, gram_n, tol, &r);
    if (!st)
        st = ns_h5out_commit(&o);
    if (st) {
        ns_h5out_abort(&o);
        results_release(&r);
        return ns_cli_fail(st, NULL);
    }
    summary(&net, q0, c0, gram_n, tol, &r, out);
    results_release(&r);
    return NS_EXIT_OK;
}
