/*
 * The meanfield analysis (include/normscope/meanfield.h, DESIGN.md section
 * 6): the fixed point, chi_1 and depth scales at (act, sw2, sb2), the
 * trajectory through depth with the NTK recursion along it, the dual maps
 * T and Tbar (MimicNorm, Fei et al. 2021, Figure 4), the BN rate and the
 * phase diagram with its critical line, computed by the maps of
 * mf_fixed.c, mf_phase.c and mf_kernel.c and written through the result
 * writer under the names of the header.
 */
#include "normscope/meanfield.h"

#include <math.h>
#include <string.h>

#include "normscope/result.h"

/* ------------------------------------------------------------ compute */

void ns_mf_run_release(ns_mf_results *r)
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
                   const ns_mf_grid *grid, double tol, ns_mf_results *r)
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
    for (size_t i = 0; i < NS_MF_NRHO; i++)
        r->rho[i] = ns_mf_grid_at(-1, 1, NS_MF_NRHO, i);
    if (!st)
        st = ns_mf_fixed_point(w, &plain, q0, &r->pt_plain);
    if (!st)
        st = ns_mf_cmap(w, &plain, &r->pt_plain, r->rho, NS_MF_NRHO, r->T, r->dT);
    if (!st)
        st = ns_mf_fixed_point(w, &wm, q0, &r->pt_wm);
    if (!st)
        st = ns_mf_cmap(w, &wm, &r->pt_wm, r->rho, NS_MF_NRHO, r->Tb, r->dTb);
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

/* ------------------------------------------------------------- writing */

static int put_scalar(ns_result *res, const char *path, double v, const char *desc,
                      const char *units)
{
    return ns_result_write_double(res, path, 0, NULL, &v, desc, units);
}

static int put_vec(ns_result *res, const char *path, const double *v, size_t n, const char *desc,
                   const char *units)
{
    size_t dims[1] = {n};
    return ns_result_write_double(res, path, 1, dims, v, desc, units);
}

static int put_mat(ns_result *res, const char *path, const double *v, size_t rows, size_t cols,
                   const char *desc)
{
    size_t dims[2] = {rows, cols};
    return ns_result_write_double(res, path, 2, dims, v, desc, NULL);
}

/* The phase grid's regime (by = 0) or regime_by (by = 1) codes as int64. */
static int put_codes(ns_result *res, const char *path, const ns_mf_phase *p, int by,
                     const char *desc)
{
    size_t n = p->nsb * p->nsw, dims[2] = {p->nsb, p->nsw};
    int64_t *b = ns_malloc((n ? n : 1) * sizeof *b);
    if (!b)
        return NS_ENOMEM;
    for (size_t i = 0; i < n; i++)
        b[i] = by ? (int64_t)p->regime_by[i] : (int64_t)p->regime[i];
    int st = ns_result_write_int(res, path, 2, dims, b, desc, NULL);
    ns_free(b);
    return st;
}

const char *ns_mf_qkind_name(ns_mf_qkind k)
{
    switch (k) {
    case NS_MF_Q_FINITE: return "finite";
    case NS_MF_Q_ANY: return "any (every q is a fixed point)";
    case NS_MF_Q_ZERO: return "zero (q decays geometrically)";
    case NS_MF_Q_INF: return "infinite (q grows without bound)";
    }
    return "?";
}

static int write_point(ns_result *res, const ns_mf_results *r)
{
    const ns_mf_point *p = &r->pt;
    const char *g = NS_MF_POINT;
    int st = ns_result_group(res, g, NULL);
    if (!st) st = ns_result_attr_str(res, g, "qkind", ns_mf_qkind_name(p->qkind));
    if (!st) st = ns_result_attr_int(res, g, "order", (int64_t)p->order);
    if (!st) st = ns_result_attr_str(res, g, "regime", ns_mf_regime_name(p->regime));
    if (!st) st = ns_result_attr_str(res, g, "regime_by", ns_mf_regime_by_name(p->regime_by));
    if (!st) st = put_scalar(res, NS_MF_POINT "/" NS_MF_QSTAR, p->qstar,
                             "q*: fixed point of the q-map, the variance of deep pre-activations "
                             "(0: decays, inf: grows without bound)", "variance");
    if (!st) st = put_scalar(res, NS_MF_POINT "/" NS_MF_QSLOPE, p->qslope,
                             "slope of the q-map at q* (chi_1 + sigma_w^2 E[phi'' phi])", NULL);
    if (!st) st = put_scalar(res, NS_MF_POINT "/" NS_MF_CHI1, p->chi1,
                             "chi_1 = sigma_w^2 E[phi'(u)^2], u ~ N(0, q*): per-layer growth of "
                             "squared gradient norms; the slope of the c-map at c = 1 when "
                             "0 < q* < inf (attr regime_by chi_1)", NULL);
    if (!st) st = put_scalar(res, NS_MF_POINT "/" NS_MF_SLOPE1, p->slope1,
                             "slope of the c-map at c = 1, which classifies the regime (attr "
                             "regime): < 1 ordered, 1 critical, > 1 chaotic; chi_1 when 0 < q* < "
                             "inf, the limit map's slope when q* is 0 or infinite (attr "
                             "regime_by c_map_slope)", NULL);
    if (!st) st = put_scalar(res, NS_MF_POINT "/" NS_MF_CSTAR, p->cstar,
                             "c*: stable fixed point of the c-map in [0, 1] (NaN: undefined)",
                             NULL);
    if (!st) st = put_scalar(res, NS_MF_POINT "/" NS_MF_CSLOPE, p->cslope,
                             "slope of the c-map at c*", NULL);
    if (!st) st = put_scalar(res, NS_MF_POINT "/" NS_MF_XI_Q, p->xi_q,
                             "depth scale of q, -1/ln(slope of the q-map at q*) (inf: "
                             "critical)", "layers");
    if (!st) st = put_scalar(res, NS_MF_POINT "/" NS_MF_XI_C, p->xi_c,
                             "depth scale of c, -1/ln(slope of the c-map at c*) (inf: "
                             "critical)", "layers");
    if (!st) st = put_scalar(res, NS_MF_POINT "/" NS_MF_BN_RATE, r->bn_rate,
                             "growth of squared gradient norms per layer through a BN-phi stack "
                             "at init, E[phi'(z)^2]/Var[phi(z)] (Yang et al. 2019, batch -> inf)",
                             NULL);
    return st;
}

static int write_trajectory(ns_result *res, const ns_mf_results *r, size_t gram_n)
{
    size_t n = r->depth + 1;
    int64_t *d = ns_malloc(n * sizeof *d);
    if (!d)
        return NS_ENOMEM;
    for (size_t l = 0; l < n; l++)
        d[l] = (int64_t)l;
    const char *g = NS_MF_TRAJECTORY;
    size_t dims[1] = {n};
    int st = ns_result_write_int(res, NS_MF_TRAJECTORY "/" NS_MF_DEPTH, 1, dims, d,
                                 "layer l: 0 is the first layer's pre-activations, l after l "
                                 "more activation + dense steps", "layers");
    ns_free(d);
    if (!st) st = ns_result_attr_int(res, g, "gram_n", (int64_t)gram_n);
    if (!st) st = put_vec(res, NS_MF_TRAJECTORY "/" NS_MF_Q, r->q, n,
                          "variance of the pre-activations at layer l (q-map from q0)",
                          "variance");
    if (!st) st = put_vec(res, NS_MF_TRAJECTORY "/" NS_MF_C, r->c, n,
                          "correlation of two inputs' pre-activations at layer l (from c0)",
                          NULL);
    if (!st) st = put_vec(res, NS_MF_TRAJECTORY "/" NS_MF_CHI, r->chi, n,
                          "sigma_w^2 E[phi'(u)^2] at q[l]: growth of squared gradient norms "
                          "from layer l+1 back to l", NULL);
    if (!st) st = put_vec(res, NS_MF_TRAJECTORY "/" NS_MF_NTK_DIAG, r->td, n,
                          "NTK Theta(x, x) of the layer-l pre-activations (NTK "
                          "parametrisation, infinite width)", NULL);
    if (!st) st = put_vec(res, NS_MF_TRAJECTORY "/" NS_MF_NTK_OFFDIAG, r->to, n,
                          "NTK Theta(x, x') of the layer-l pre-activations", NULL);
    if (!st) st = put_vec(res, NS_MF_TRAJECTORY "/" NS_MF_NTK_CORR, r->tcorr, n,
                          "NTK correlation Theta(x, x') / Theta(x, x)", NULL);
    if (!st) st = put_vec(res, NS_MF_TRAJECTORY "/" NS_MF_NTK_COND, r->tcond, n,
                          "condition number of the NTK Gram of gram_n inputs with pairwise "
                          "correlation c0 at layer l", NULL);
    return st;
}

static int write_dual(ns_result *res, const ns_mf_results *r)
{
    const char *g = NS_MF_DUAL;
    int st = put_vec(res, NS_MF_DUAL "/" NS_MF_RHO, r->rho, NS_MF_NRHO,
                     "correlation rho of the layer's input pre-activations", NULL);
    if (!st) st = put_vec(res, NS_MF_DUAL "/" NS_MF_T, r->T, NS_MF_NRHO,
                          "c-map T(rho) without the weight mean at (sw2, sb2), at q*", NULL);
    if (!st) st = put_vec(res, NS_MF_DUAL "/" NS_MF_DT, r->dT, NS_MF_NRHO, "T'(rho)", NULL);
    if (!st) st = put_vec(res, NS_MF_DUAL "/" NS_MF_TBAR, r->Tb, NS_MF_NRHO,
                          "c-map Tbar(rho) with MimicNorm's weight mean at (sw2, sb2), at its "
                          "q*", NULL);
    if (!st) st = put_vec(res, NS_MF_DUAL "/" NS_MF_DTBAR, r->dTb, NS_MF_NRHO, "Tbar'(rho)", NULL);
    if (!st) st = ns_result_attr_double(res, g, "cstar_T", r->pt_plain.cstar);
    if (!st) st = ns_result_attr_double(res, g, "cstar_Tbar", r->pt_wm.cstar);
    if (!st) st = ns_result_attr_double(res, g, "slope1_T", r->pt_plain.slope1);
    if (!st) st = ns_result_attr_double(res, g, "slope1_Tbar", r->pt_wm.slope1);
    if (!st) st = ns_result_attr_double(res, g, "qstar_T", r->pt_plain.qstar);
    if (!st) st = ns_result_attr_double(res, g, "qstar_Tbar", r->pt_wm.qstar);
    return st;
}

static int write_phase(ns_result *res, const ns_mf_phase *p, int weight_mean, double tol)
{
    const char *g = NS_MF_PHASE;
    int st = put_vec(res, NS_MF_PHASE "/" NS_MF_SW2, p->sw2, p->nsw, "sigma_w^2 axis (columns)",
                     NULL);
    if (!st) st = put_vec(res, NS_MF_PHASE "/" NS_MF_SB2, p->sb2, p->nsb,
                          "sigma_b^2 axis (rows)", NULL);
    if (!st) st = put_mat(res, NS_MF_PHASE "/" NS_MF_CHI1, p->chi1, p->nsb, p->nsw,
                          "chi_1 = sigma_w^2 E[phi'^2] at (sb2[row], sw2[column])");
    if (!st) st = put_mat(res, NS_MF_PHASE "/" NS_MF_SLOPE1, p->slope1, p->nsb, p->nsw,
                          "slope of the c-map at c = 1, which classifies the regime: chi_1 "
                          "where 0 < q* < inf (regime_by 0), the limit map's slope where q* "
                          "is 0 or infinite (regime_by 1)");
    if (!st) st = put_codes(res, NS_MF_PHASE "/" NS_MF_REGIME, p, 0,
                            "regime by slope1: -1 ordered, 0 critical (within 10 tol of 1), "
                            "1 chaotic, 2 undefined");
    if (!st) st = put_codes(res, NS_MF_PHASE "/" NS_MF_REGIME_BY, p, 1,
                            "0: slope1 is chi_1 (0 < q* < inf), 1: slope1 is "
                            "the limit map's slope (q* is 0 or infinite)");
    if (!st) st = put_mat(res, NS_MF_PHASE "/" NS_MF_CSTAR, p->cstar, p->nsb, p->nsw,
                          "c* at (sb2[row], sw2[column]) (NaN: undefined)");
    if (!st) st = put_mat(res, NS_MF_PHASE "/" NS_MF_QSTAR, p->qstar, p->nsb, p->nsw,
                          "q* at (sb2[row], sw2[column])");
    size_t n = p->nline;
    int64_t *b = ns_malloc((n ? n : 1) * sizeof *b);
    if (!st && !b)
        st = NS_ENOMEM;
    for (size_t i = 0; !st && i < n; i++)
        b[i] = (int64_t)p->line_branch[i];
    if (!st) st = put_vec(res, NS_MF_LINE "/" NS_MF_SW2, p->line_sw2, n,
                          "sigma_w^2 where the slope of the c-map at c = 1 reaches 1 "
                          "(chi_1 = 1 by Brent's method where q* is finite; the edge of a "
                          "critical region where q* is 0 or infinite)", NULL);
    if (!st) st = put_vec(res, NS_MF_LINE "/" NS_MF_SB2, p->line_sb2, n,
                          "sigma_b^2 of the critical-line point (a grid row)", NULL);
    size_t dims[1] = {n};
    if (!st) st = ns_result_write_int(res, NS_MF_LINE "/" NS_MF_BRANCH, 1, dims, b,
                                      "which crossing of its row (0: the smallest sigma_w^2)",
                                      NULL);
    ns_free(b);
    if (!st) st = ns_result_attr_double(res, g, "seconds", p->seconds);
    if (!st) st = ns_result_attr_int(res, g, "order", (int64_t)p->order);
    if (!st) st = ns_result_attr_double(res, g, "tol", tol);
    if (!st) st = ns_result_attr_int(res, g, "weight_mean", weight_mean);
    if (!st) st = ns_result_attr_str(res, g, "regime_by", "c_map_slope");
    if (!st) st = ns_result_attr_int(res, g, "threads", ns_get_threads());
    return st;
}

const char *ns_mf_quadrature_name(const ns_mf_act *act)
{
    ns_mf_act_kind k = act->kind;
    int split = k == NS_MF_RELU || k == NS_MF_LEAKY || k == NS_MF_GELU || k == NS_MF_SWISH ||
                k == NS_MF_SOFTPLUS;
    return ns_mf_act_closed(act) ? "closed form"
           : split ? "Gauss-Legendre on each side of 0 (GSL)"
                   : "Gauss-Hermite (GSL)";
}

static int write_all(ns_result *res, const ns_mf_run_opts *o, const char *cmdline,
                     const ns_mf_results *r)
{
    const ns_mf_net *net = &o->net;
    char act[64];
    ns_mf_act_name(&net->act, act, sizeof act);
    const char *g = NS_MF_GROUP;
    const ns_provenance prov = {cmdline, "(theory, no run file)", "theory", 0};
    int st = ns_result_group(res, g, &prov);
    if (!st) st = ns_result_attr_str(res, g, "act", act);
    if (!st) st = ns_result_attr_double(res, g, "sw2", net->sw2);
    if (!st) st = ns_result_attr_double(res, g, "sb2", net->sb2);
    if (!st) st = ns_result_attr_int(res, g, "weight_mean", net->weight_mean);
    if (!st) st = ns_result_attr_double(res, g, "q0", o->q0);
    if (!st) st = ns_result_attr_double(res, g, "c0", o->c0);
    if (!st) st = ns_result_attr_int(res, g, "depth", (int64_t)r->depth);
    if (!st) st = ns_result_attr_int(res, g, "gram_n", (int64_t)o->gram_n);
    if (!st) st = ns_result_attr_double(res, g, "tol", o->tol);
    if (!st) st = ns_result_attr_int(res, g, "order", (int64_t)r->order);
    if (!st) st = ns_result_attr_str(res, g, "quadrature", ns_mf_quadrature_name(&net->act));
    if (!st) st = write_point(res, r);
    if (!st) st = write_trajectory(res, r, o->gram_n);
    if (!st) st = write_dual(res, r);
    if (!st && r->have_phase)
        st = write_phase(res, &r->ph, net->weight_mean, o->tol);
    return st;
}

/* ------------------------------------------------------------ the run */

void ns_mf_run_defaults(ns_mf_run_opts *o)
{
    memset(o, 0, sizeof *o);
    o->net.act.kind = NS_MF_RELU;
    o->net.sw2 = 2;
    o->net.sb2 = 0;
    o->q0 = 1;
    o->c0 = 0.5;
    o->depth = 50;
    o->gram_n = 10;
    o->tol = 1e-10;
    o->have_grid = 1;
    ns_mf_grid_parse(NS_MF_DEFAULT_GRID, &o->grid);   /* well-formed: cannot fail */
}

int ns_mf_run(const ns_mf_run_opts *o, ns_result *res, const char *cmdline, ns_mf_results *r)
{
    memset(r, 0, sizeof *r);
    int st = compute(&o->net, o->q0, o->c0, o->depth, o->gram_n,
                     o->have_grid ? &o->grid : NULL, o->tol, r);
    return st ? st : write_all(res, o, cmdline ? cmdline : "", r);
}
