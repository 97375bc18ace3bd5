/*
 * Mean-field maps of a deep fully connected network at initialisation
 * (Poole et al. 2016, eqs. 3-5; Schoenholz et al. 2017, eqs. 2-9; METHODS.md
 * "Mean-field theory"), with MimicNorm's weight mean (Fei et al. 2021,
 * section 4: the dual map Tbar) and the BN gradient-explosion rate of Yang
 * et al. 2019 in the large-batch limit.
 *
 *   q-map      q' = f(q) = sw2 V(q) + sb2, V(q) = E[phi(u)^2], u ~ N(0, q)
 *              (Var[phi(u)] with the weight mean: a zero-mean row of W sees
 *              its input minus the mean over units, which is E[phi(u)]);
 *   c-map      C(c) = (sw2 M(q*, c) + sb2) / q*, M = E[phi(u1) phi(u2)] (the
 *              covariance with the weight mean); C'(c) = sw2 E[phi'(u1)
 *              phi'(u2)] by Price's theorem;
 *   chi_1      sw2 E[phi'(u)^2] at q*, the slope of C at c = 1 when q* is
 *              finite and positive;
 *   regime     ordered / critical / chaotic by the slope of the c-map at
 *              c = 1: chi_1 at a finite positive q*, the limit map's slope
 *              where q* is 0 or infinite (see ns_mf_regime in the header).
 *   depth      xi_q = -1 / ln f'(q*), xi_c = -1 / ln C'(c*): f'(q*) =
 *   scales     chi_1 + sw2 E[phi'' phi] is METHODS.md's expression, written
 *              through d V / dq = E[phi phi' u] / q so no phi'' (and no
 *              delta at a kink) is needed.
 *
 * q* is the limit of the q recursion from q0: homogeneous activations are
 * solved in closed form (V(q) = kappa q), others by damped Newton steps on
 * f(q) - q that are taken only where the map still contracts, else the
 * monotone recursion q <- f(q) itself (f is increasing for every activation
 * here), bracketing once a step crosses the root, so the recursion's limit
 * is found and not another fixed point.  The order is the one whose moments
 * at q* agree with the next lower order's to the tolerance.
 * When q* is 0 or infinite the maps are their limits along the recursion;
 * see ns_mf_point in normscope/meanfield.h (our extension, marked [ours]).
 * c* is found by Newton's method from c = 0: on [0, 1] the c-map is convex
 * (Mehler: its Hermite series has non-negative coefficients), so the iterates
 * increase monotonically to the only root below 1 when chi_1 > 1.
 */
#include "mf_internal.h"

#include <math.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

int ns_mf_net_check(const ns_mf_net *net)
{
    if (!(net->sw2 > 0) || !isfinite(net->sw2))
        return ns_error(NS_EINVAL, "sigma_w^2 must be a positive number, got %g", net->sw2);
    if (!(net->sb2 >= 0) || !isfinite(net->sb2))
        return ns_error(NS_EINVAL, "sigma_b^2 must be a non-negative number, got %g", net->sb2);
    return NS_OK;
}

/* gelu, swish and softplus are relu up to terms exponentially small in
 * their argument: where q grows without bound, their maps tend to relu's
 * (our extension, as for the homogeneous activations). */
static int relu_like(const ns_mf_act *a)
{
    return a->kind == NS_MF_GELU || a->kind == NS_MF_SWISH || a->kind == NS_MF_SOFTPLUS;
}

/* The activation whose scale-free maps hold in the q* = 0 / inf limits. */
static ns_mf_act limit_act(const ns_mf_act *a)
{
    ns_mf_act r = *a;
    if (relu_like(a)) {
        r.kind = NS_MF_RELU;
        r.alpha = 0;
    }
    return r;
}

/* 1 when the maps have a scale-free limit where q* is 0 or infinite. */
static int has_limit(const ns_mf_act *a, ns_mf_qkind kind)
{
    return ns_mf_act_homogeneous(a) || (kind == NS_MF_Q_INF && relu_like(a));
}

/* ------------------------------------------------------------ q recursion */

/* f(q) and f'(q) from the moments at q. */
static void qmap_eval(const ns_mf_net *net, const ns_mf_m1 *m, double *F, double *dF)
{
    double V = m->sq, dV = m->dsq_dq;
    if (net->weight_mean) {
        V -= m->mean * m->mean;
        dV -= 2 * m->mean * m->dmean_dq;
    }
    *F = net->sw2 * V + net->sb2;
    *dF = net->sw2 * dV;
}

/* Moments at q with closed forms or quadrature at level k. */
static int level_m1(ns_mf_work *w, const ns_mf_act *a, double q, int k, ns_mf_m1 *m)
{
    if (ns_mf_act_closed(a)) {
        mf_closed_m1(a, q, m);
        return NS_OK;
    }
    if (mf_ensure_level(w, a, k))
        return NS_ENOMEM;
    mf_quad_m1_level(w, a, q, k, m);
    return NS_OK;
}

/* Moments at q of a homogeneous activation from those at q = 1. */
static void scale_m1(const ns_mf_m1 *u, double q, ns_mf_m1 *m)
{
    double s = sqrt(q);
    m->mean = s * u->mean;
    m->sq = q * u->sq;
    m->dmean = u->dmean;
    m->dsq = u->dsq;
    m->dsq_dq = u->sq;
    m->dmean_dq = q > 0 ? u->mean / (2 * s) : (u->mean != 0 ? INFINITY : 0);
}

static int solve_homogeneous(ns_mf_work *w, const ns_mf_net *net, double q0, mf_qsol *s)
{
    ns_mf_m1 u;
    int st = ns_mf_moments1(w, &net->act, 1, &u);
    if (st)
        return st;
    double kappa = u.sq - (net->weight_mean ? u.mean * u.mean : 0);
    double r = net->sw2 * kappa;
    s->slope = r;
    if (fabs(r - 1) <= 1e-12) {
        s->slope = 1;
        s->kind = net->sb2 == 0 ? NS_MF_Q_ANY : NS_MF_Q_INF;
        s->q = net->sb2 == 0 ? q0 : INFINITY;
    } else if (r < 1) {
        s->kind = net->sb2 == 0 ? NS_MF_Q_ZERO : NS_MF_Q_FINITE;
        s->q = net->sb2 / (1 - r);
    } else {
        s->kind = NS_MF_Q_INF;
        s->q = INFINITY;
    }
    if (s->kind == NS_MF_Q_FINITE || s->kind == NS_MF_Q_ANY)
        scale_m1(&u, s->q, &s->m);
    else
        s->m = u; /* scale-free quantities at q = 1 */
    return NS_OK;
}

/* Safeguarded Newton on g(q) = f(q) - q in the bracket [lo, hi], g of
 * opposite signs at the ends, from x in it with its moments m (in/out). */
static int bracket_solve(ns_mf_work *w, const ns_mf_net *net, int k, double lo, double hi,
                         int pos_lo, double *q, ns_mf_m1 *m)
{
    double F, dF, x = *q;
    int st = NS_OK;
    qmap_eval(net, m, &F, &dF);
    for (int it = 0; it < 200; it++) {
        double g = F - x;
        if (g == 0)
            break;
        if ((g > 0) == pos_lo)
            lo = x;
        else
            hi = x;
        double xn = dF != 1 ? x - g / (dF - 1) : 0.5 * (lo + hi);
        int newton = xn > lo && xn < hi;
        if (!newton)
            xn = 0.5 * (lo + hi);
        /* as in solve_level: a Newton step this small lands within about
         * 1e-14 q of the root */
        int last = (newton && dF < 1 && fabs(xn - x) <= 1e-7 * x * fmin(1, 1 - dF)) ||
                   hi - lo <= 1e-15 * hi;
        x = xn;
        if ((st = level_m1(w, &net->act, x, k, m)))
            return st;
        qmap_eval(net, m, &F, &dF);
        if (last)
            break;
    }
    *q = x;
    return st;
}

/* The q recursion of a non-homogeneous activation at quadrature level k
 * (closed forms ignore k), from q. */
static int solve_level(ns_mf_work *w, const ns_mf_net *net, double q0, double q, int k,
                       mf_qsol *s)
{
    const ns_mf_act *a = &net->act;
    double f0 = ns_mf_act_eval(a, 0, 0), d0 = ns_mf_act_eval(a, 1, 0);
    int zero_fixed = net->sb2 == 0 && (net->weight_mean || f0 == 0);
    double slope0 = net->sw2 * d0 * d0, big = 1e15 * fmax(1, fmax(q0, net->sb2));
    ns_mf_m1 m;
    double F, dF;
    int st = level_m1(w, a, q, k, &m);
    if (st)
        return st;
    qmap_eval(net, &m, &F, &dF);
    for (int it = 0; it < 20000; it++) {
        double g = F - q;
        /* Relu-like activations: f(q) - q = (sw2 kappa - 1) q + O(1/sqrt(q))
         * + sb2, kappa = 1/2 (1/2 - 1/(2 pi) with the weight mean); at
         * large q (1e3 here, where the O() term is ~1e-5) growth with
         * sw2 kappa >= 1 is growth for ever, and near sw2 kappa = 1 the
         * recursion would need 1e4 steps to show it. */
        double kinf = net->weight_mean ? 0.5 - 0.5 / M_PI : 0.5;
        if (!isfinite(F) || (q > big && g > 0) ||
            (relu_like(a) && net->sw2 * kinf >= 1 && q > 1e3 * fmax(1, fmax(q0, net->sb2)) &&
             g > 0)) {
            s->kind = NS_MF_Q_INF;
            s->q = INFINITY;
            s->slope = NAN;
            return NS_OK;
        }
        if (zero_fixed && slope0 < 1 && q < 1e-30 * q0 && g <= 0) {
            s->kind = NS_MF_Q_ZERO;
            s->q = 0;
            s->slope = slope0;
            return level_m1(w, a, 0, k, &s->m);
        }
        /* Once the Newton step is below 1e-7 q (1 - f'), the next iterate
         * is within about 1e-14 q of q*: take it and stop. */
        if (g == 0 || (dF < 1 && fabs(g / (1 - dF)) <= 1e-7 * q * fmin(1, 1 - dF))) {
            if (g != 0) {
                q += g / (1 - dF);
                if ((st = level_m1(w, a, q, k, &m)))
                    return st;
                qmap_eval(net, &m, &F, &dF);
            }
            s->kind = NS_MF_Q_FINITE;
            s->q = q;
            s->m = m;
            s->slope = dF;
            return NS_OK;
        }
        /* Damped Newton: a step is taken when it crosses the root (then
         * bracketed) or lands where the map still contracts (f' < 1), so it
         * cannot jump over a stable and the next unstable fixed point
         * together; otherwise the recursion's own step q <- f(q). */
        double step = dF < 1 ? g / (1 - dF) : 0, qn = F;
        ns_mf_m1 mn;
        double Fn = 0, dFn = 0;
        int taken = 0;
        for (int h = 0; h < 40 && step != 0 && !taken; h++, step *= 0.5) {
            double cand = q + step;
            if (!(cand > 0))
                continue;
            if ((st = level_m1(w, a, cand, k, &mn)))
                return st;
            qmap_eval(net, &mn, &Fn, &dFn);
            double gn = Fn - cand;
            if ((g > 0 && gn < 0) || (g < 0 && gn > 0)) {
                double lo = fmin(q, cand), hi = fmax(q, cand), x = cand;
                s->m = mn;
                if ((st = bracket_solve(w, net, k, lo, hi, (lo == q) == (g > 0), &x, &s->m)))
                    return st;
                qmap_eval(net, &s->m, &F, &dF);
                s->kind = NS_MF_Q_FINITE;
                s->q = x;
                s->slope = dF;
                return NS_OK;
            }
            if (dFn < 1) {
                qn = cand;
                taken = 1;
            }
        }
        /* Growth where f' >= 1: the recursion's steps g crawl when f' is
         * near 1 (relu-like activations near sw2 = 2).  For those, whose
         * f is nearly linear at large q, steps of 2g, 4g, ... until the
         * sign of g changes (a bracket) or f' < 1 (Newton again). */
        double g0 = fmax(g, 1e-9 * q), last = q; /* leaves an unstable point fast */
        int grow = !taken && relu_like(a) && g > 0 && dF >= 1;
        for (int h = 1; grow && h < 60; h++) {
            double cand = q + ldexp(g0, h);
            ns_mf_m1 mc;
            double Fc, dFc;
            if ((st = level_m1(w, a, cand, k, &mc)))
                return st;
            qmap_eval(net, &mc, &Fc, &dFc);
            if (Fc - cand < 0) {
                double x = cand;
                s->m = mc;
                if ((st = bracket_solve(w, net, k, last, cand, 1, &x, &s->m)))
                    return st;
                qmap_eval(net, &s->m, &F, &dF);
                s->kind = NS_MF_Q_FINITE;
                s->q = x;
                s->slope = dF;
                return NS_OK;
            }
            /* still growing: progress kept, the loop goes on while f' >= 1 */
            last = qn = cand;
            mn = mc;
            Fn = Fc;
            dFn = dFc;
            if (dFc < 1 || !isfinite(Fc) || cand > 1e3 * fmax(1, fmax(q0, net->sb2)))
                break;
        }
        if (grow)
            taken = last > q;
        if (!taken) {
            if (!(qn > 0))
                qn = 0.5 * q;
            if ((st = level_m1(w, a, qn, k, &mn)))
                return st;
            qmap_eval(net, &mn, &Fn, &dFn);
        }
        q = qn;
        m = mn;
        F = Fn;
        dF = dFn;
    }
    /* Still moving after 20000 steps: an unbounded activation whose q
     * grows (slowly) without bound. */
    if (F > q) {
        s->kind = NS_MF_Q_INF;
        s->q = INFINITY;
        s->slope = NAN;
        return NS_OK;
    }
    return ns_error(NS_ENUMERIC, "the q-map did not converge from q0 = %g", q0);
}

int mf_solve_q(ns_mf_work *w, const ns_mf_net *net, double q0, int *level, mf_qsol *s)
{
    memset(s, 0, sizeof *s);
    if (ns_mf_act_homogeneous(&net->act))
        return solve_homogeneous(w, net, q0, s);
    if (ns_mf_act_closed(&net->act))
        return solve_level(w, net, q0, q0, 0, s);
    /* Solve at level k, accept when level k-1 agrees at the solution (two
     * successive orders), else k grows and the solve resumes from there. */
    int k = level && *level >= 1 ? *level : (w->hint1 >= 1 ? w->hint1 : 2);
    double q = q0;
    for (; k < MF_LEVELS; k++) {
        int st = solve_level(w, net, q0, q, k, s);
        if (st)
            return st;
        double qv = s->kind == NS_MF_Q_FINITE ? s->q : s->kind == NS_MF_Q_ZERO ? 0 : 1;
        ns_mf_m1 lo;
        if ((st = level_m1(w, &net->act, qv, k - 1, &lo)))
            return st;
        if (s->kind == NS_MF_Q_INF || mf_m1_agree(&lo, &s->m, qv, w->tol)) {
            mf_note_order(w, (size_t)8 << k);
            if (s->kind == NS_MF_Q_INF && relu_like(&net->act)) {
                ns_mf_act r = limit_act(&net->act);
                mf_closed_m1(&r, 1, &s->m);
                s->slope = net->sw2 * (s->m.sq - (net->weight_mean ? s->m.mean * s->m.mean : 0));
            }
            if (level)
                *level = k;
            w->hint1 = k;
            return NS_OK;
        }
        if (s->kind == NS_MF_Q_FINITE)
            q = s->q;
    }
    return ns_error(NS_ENUMERIC, "quadrature of the q-map did not reach the tolerance %g by "
                    "order %d; loosen --tol", w->tol, NS_MF_ORDER_MAX);
}

double mf_chi1(const ns_mf_net *net, const mf_qsol *s)
{
    if (s->kind == NS_MF_Q_INF && !has_limit(&net->act, s->kind))
        return NAN;
    return net->sw2 * s->m.dsq;
}

/* ------------------------------------------------------------ c-map */

/* C(c) and C'(c) at the solved fixed point (or the limits, see the header). */
int mf_cmap_eval(ns_mf_work *w, const ns_mf_net *net, const mf_qsol *s, double c, double *G,
                 double *dG)
{
    double wm = net->weight_mean ? 1 : 0;
    ns_mf_m2 m2;
    int st;
    switch (s->kind) {
    case NS_MF_Q_FINITE:
    case NS_MF_Q_ANY:
        if ((st = ns_mf_moments2(w, &net->act, s->q, s->q, c, &m2)))
            return st;
        *G = (net->sw2 * (m2.pp - wm * s->m.mean * s->m.mean) + net->sb2) / s->q;
        *dG = net->sw2 * m2.dd;
        return NS_OK;
    case NS_MF_Q_ZERO:
    case NS_MF_Q_INF:
        if (has_limit(&net->act, s->kind)) {
            ns_mf_act la = limit_act(&net->act);
            if ((st = ns_mf_moments2(w, &la, 1, 1, c, &m2)))
                return st;
            double m1 = s->m.sq - wm * s->m.mean * s->m.mean;
            *G = (m2.pp - wm * s->m.mean * s->m.mean) / m1;
            *dG = m2.dd / m1;
        } else if (s->kind == NS_MF_Q_ZERO) {
            *G = c; /* phi is linear in the limit */
            *dG = 1;
        } else {
            *G = *dG = NAN;
        }
        return NS_OK;
    }
    *G = *dG = NAN;
    return NS_OK;
}

int mf_cstar(mf_cmap_fn eval, void *x, double slope1, double *cstar, double *cslope)
{
    double G, dG;
    int st;
    if (!isfinite(slope1)) {
        *cstar = *cslope = NAN;
        return NS_OK;
    }
    if (slope1 <= 1 + 1e-12) {
        *cstar = 1;
        *cslope = slope1;
        return NS_OK;
    }
    if ((st = eval(x, 0, &G, &dG)))
        return st;
    if (G <= 1e-14) {
        /* C(0) = 0: with C convex and C(1) = 1, C(c) <= c on [0, 1]. */
        *cstar = 0;
        *cslope = dG;
        return NS_OK;
    }
    double lo = 0, hi = 1, c = 0;
    for (int it = 0; it < 300; it++) {
        double h = G - c, dh = dG - 1;
        if (h > 0)
            lo = c;
        else
            hi = c;
        double cn = dh < 0 ? c - h / dh : 0.5 * (lo + hi);
        if (!(cn > lo && cn < hi))
            cn = 0.5 * (lo + hi);
        double dc = fabs(cn - c);
        c = cn;
        if ((st = eval(x, c, &G, &dG)))
            return st;
        if (dc <= 1e-15 || hi - lo <= 1e-15)
            break;
    }
    *cstar = c;
    *cslope = dG;
    return NS_OK;
}

int mf_cmap_cb(void *ctx, double c, double *G, double *dG)
{
    const mf_cmap_ctx *x = ctx;
    return mf_cmap_eval(x->w, x->net, x->s, c, G, dG);
}

double mf_depth_scale(double slope, double tol)
{
    if (!isfinite(slope))
        return NAN;
    if (slope >= 1 - 10 * tol)
        return INFINITY;
    if (slope <= 0)
        return 0;
    return -1 / log(slope);
}

int ns_mf_fixed_point(ns_mf_work *w, const ns_mf_net *net, double q0, ns_mf_point *p)
{
    memset(p, 0, sizeof *p);
    int st = ns_mf_net_check(net);
    if (st)
        return st;
    if (!(q0 > 0) || !isfinite(q0))
        return ns_error(NS_EINVAL, "q0 must be a positive number, got %g", q0);
    size_t order0 = w->order;
    w->order = 0;
    mf_qsol s;
    if ((st = mf_solve_q(w, net, q0, NULL, &s)))
        goto done;
    p->qkind = s.kind;
    p->qstar = s.q;
    p->qslope = s.slope;
    p->chi1 = mf_chi1(net, &s);
    mf_cmap_ctx x = {w, net, &s};
    double G1;
    p->slope1 = p->chi1; /* C'(1) = sw2 E[phi'(u)^2] at a finite q* */
    if (s.kind != NS_MF_Q_FINITE && s.kind != NS_MF_Q_ANY &&
        (st = mf_cmap_eval(w, net, &s, 1, &G1, &p->slope1)))
        goto done;
    if (s.kind == NS_MF_Q_ZERO && !ns_mf_act_homogeneous(&net->act))
        p->cstar = p->cslope = NAN; /* every c is fixed in the limit */
    else if ((st = mf_cstar(mf_cmap_cb, &x, p->slope1, &p->cstar, &p->cslope)))
        goto done;
    p->xi_q = s.kind == NS_MF_Q_INF ? NAN : mf_depth_scale(p->qslope, w->tol);
    p->xi_c = mf_depth_scale(p->cslope, w->tol);
    p->regime = ns_mf_regime_of(p->slope1, w->tol);
    p->regime_by = ns_mf_regime_by_of(s.kind);
done:
    p->order = w->order;
    if (order0 > w->order)
        w->order = order0;
    return st;
}

/* ------------------------------------------------------------ regime */

/* Why the slope of the c-map at c = 1 is the quantity (Poole et al. 2016,
 * sec. 3: chi_1 is d c^l / d c^{l-1} at c = 1, evaluated at q*).  One layer
 * maps (q, c) to c' = (sw2 M(q, c) + sb2) / f(q) with f the q-map, and
 * d M / d c = q E[phi'(u1) phi'(u2)] (Price's theorem; the weight mean's
 * E[phi]^2 does not depend on c), so at c = 1
 *   d c' / d c = sw2 E[phi'(u)^2] q / f(q) = chi_1(q) q / f(q).
 * At a fixed point 0 < q* < inf, f(q*) = q* and the slope is chi_1(q*):
 * the textbook case, with or without the weight mean (relu with the weight
 * mean at sb2 > 0 has a finite q* and slope sw2 / 2 = chi_1).  Where q^l
 * tends to 0 or infinity, q / f(q) tends to 1 / r, r the q-map's growth
 * rate (sw2 kappa for a homogeneous phi, kappa = E[phi(z)^2] or Var[phi(z)]
 * with the weight mean; sw2 phi'(0)^2 for a smooth phi with q -> 0), so the
 * slope is chi_1 / r, which mf_cmap_eval computes as the slope of the
 * normalised limit map.  Cases:
 *   relu, sb2 = 0, no weight mean: r = sw2 / 2 = chi_1, slope 1 for every
 *     sw2 (T = 2 phi_hat; a bias-free relu network is positively
 *     homogeneous, so sw2 only rescales every layer): critical, c* = 1.  At
 *     sw2 = 2 every q is a fixed point and chi_1 = 1 = the slope agree;
 *     below, chi_1 < 1 says that gradients shrink, not that correlations
 *     order; above, q grows without bound and the slope is again 1 (with
 *     sb2 > 0 too: relu has no chaotic phase).
 *   relu with the weight mean, sb2 = 0: r = sw2 (1/2 - 1/(2 pi)), slope
 *     (1/2) / (1/2 - 1/(2 pi)) = 1/(1 - 1/pi) ~ 1.4669 for every sw2
 *     (MimicNorm's Tbar, Fei et al. 2021, section 4 and METHODS.md): chaotic
 *     with c* = 0, although chi_1 = 1 at sw2 = 2.
 *   smooth phi with q* = 0 (tanh, sw2 < 1, sb2 = 0): r = sw2 phi'(0)^2 =
 *     chi_1, slope 1 and the limit map is the identity (every c fixed):
 *     critical, c* undefined. */
ns_mf_regime ns_mf_regime_of(double slope1, double tol)
{
    if (!isfinite(slope1))
        return NS_MF_UNDEFINED;
    if (slope1 < 1 - 10 * tol)
        return NS_MF_ORDERED;
    if (slope1 > 1 + 10 * tol)
        return NS_MF_CHAOTIC;
    return NS_MF_CRITICAL;
}

ns_mf_regime_by ns_mf_regime_by_of(ns_mf_qkind kind)
{
    return kind == NS_MF_Q_FINITE || kind == NS_MF_Q_ANY ? NS_MF_BY_CHI1 : NS_MF_BY_SLOPE1;
}

const char *ns_mf_regime_name(ns_mf_regime r)
{
    switch (r) {
    case NS_MF_ORDERED: return "ordered";
    case NS_MF_CRITICAL: return "critical";
    case NS_MF_CHAOTIC: return "chaotic";
    case NS_MF_UNDEFINED: return "undefined";
    }
    return "undefined";
}

const char *ns_mf_regime_by_name(ns_mf_regime_by b)
{
    return b == NS_MF_BY_CHI1 ? "chi_1" : "c_map_slope";
}

/* The solved recursion behind a fixed point computed earlier. */
static int qsol_of_point(ns_mf_work *w, const ns_mf_net *net, const ns_mf_point *p, mf_qsol *s)
{
    memset(s, 0, sizeof *s);
    s->kind = p->qkind;
    s->q = p->qstar;
    s->slope = p->qslope;
    double q = 1;
    if (s->kind == NS_MF_Q_FINITE || s->kind == NS_MF_Q_ANY)
        q = p->qstar;
    else if (s->kind == NS_MF_Q_ZERO && !ns_mf_act_homogeneous(&net->act))
        q = 0;
    else if (s->kind == NS_MF_Q_INF && !has_limit(&net->act, s->kind))
        return NS_OK;
    ns_mf_act la = s->kind == NS_MF_Q_INF ? limit_act(&net->act) : net->act;
    return ns_mf_moments1(w, &la, q, &s->m);
}

int ns_mf_cmap(ns_mf_work *w, const ns_mf_net *net, const ns_mf_point *p, const double *rho,
               size_t n, double *cn, double *dcn)
{
    int st = ns_mf_net_check(net);
    mf_qsol s;
    if (!st)
        st = qsol_of_point(w, net, p, &s);
    for (size_t i = 0; i < n && !st; i++) {
        double G = NAN, dG = NAN;
        if (!(fabs(rho[i]) <= 1))
            return ns_error(NS_EINVAL, "correlation %g outside [-1, 1]", rho[i]);
        st = mf_cmap_eval(w, net, &s, rho[i], &G, &dG);
        cn[i] = G;
        if (dcn)
            dcn[i] = dG;
    }
    return st;
}

/* ------------------------------------------------------- two inputs */

int ns_mf_step(ns_mf_work *w, const ns_mf_net *net, double q1, double q2, double c,
               double *q1n, double *q2n, double *cn, double *slope)
{
    ns_mf_m1 a, b;
    ns_mf_m2 m;
    int st = ns_mf_net_check(net);
    if (!st)
        st = ns_mf_moments1(w, &net->act, q1, &a);
    if (!st)
        b = a;
    if (!st && q2 != q1)
        st = ns_mf_moments1(w, &net->act, q2, &b);
    if (!st)
        st = ns_mf_moments2(w, &net->act, q1, q2, c, &m);
    if (st)
        return st;
    double wm = net->weight_mean ? 1 : 0;
    double v1 = net->sw2 * (a.sq - wm * a.mean * a.mean) + net->sb2;
    double v2 = net->sw2 * (b.sq - wm * b.mean * b.mean) + net->sb2;
    double cov = net->sw2 * (m.pp - wm * a.mean * b.mean) + net->sb2;
    double den = sqrt(v1 * v2);
    *q1n = v1;
    *q2n = v2;
    double r = den > 0 ? cov / den : c;
    *cn = r > 1 ? 1 : r < -1 ? -1 : r;
    if (slope)
        *slope = den > 0 ? net->sw2 * sqrt(q1 * q2) * m.dd / den : 1;
    return NS_OK;
}

int ns_mf_trajectory(ns_mf_work *w, const ns_mf_net *net, double q0, double c0, size_t depth,
                     double *q, double *c, double *chi, double *ntk_diag, double *ntk_off)
{
    int st = ns_mf_net_check(net);
    if (st)
        return st;
    if (!(q0 > 0) || !isfinite(q0))
        return ns_error(NS_EINVAL, "q0 must be a positive number, got %g", q0);
    if (!(fabs(c0) <= 1))
        return ns_error(NS_EINVAL, "c0 must lie in [-1, 1], got %g", c0);
    double ql = q0, cl = c0, td = q0, to = c0 * q0;
    for (size_t l = 0; l <= depth; l++) {
        if (q)
            q[l] = ql;
        if (c)
            c[l] = cl;
        if (ntk_diag)
            ntk_diag[l] = td;
        if (ntk_off)
            ntk_off[l] = to;
        if (!isfinite(ql)) {
            /* q overflowed (it grows without bound): nothing more to say */
            if (chi)
                chi[l] = NAN;
            ql = cl = td = to = NAN;
            continue;
        }
        ns_mf_m1 m1;
        ns_mf_m2 m2;
        if ((st = ns_mf_moments1(w, &net->act, ql, &m1)) ||
            (st = ns_mf_moments2(w, &net->act, ql, ql, cl, &m2)))
            return st;
        if (chi)
            chi[l] = net->sw2 * m1.dsq;
        if (l == depth)
            break;
        /* NTK parametrisation: Theta' = Theta Kdot + sw2 R + sb2 (raw R) */
        td = td * net->sw2 * m1.dsq + net->sw2 * m1.sq + net->sb2;
        to = to * net->sw2 * m2.dd + net->sw2 * m2.pp + net->sb2;
        double wm = net->weight_mean ? 1 : 0;
        double qn = net->sw2 * (m1.sq - wm * m1.mean * m1.mean) + net->sb2;
        double cov = net->sw2 * (m2.pp - wm * m1.mean * m1.mean) + net->sb2;
        double r = qn > 0 ? cov / qn : cl;
        cl = r > 1 ? 1 : r < -1 ? -1 : r;
        ql = qn;
    }
    return NS_OK;
}

double ns_mf_equicorr_cond(double diag, double off, size_t n)
{
    if (n <= 1)
        return diag > 0 ? 1 : INFINITY;
    double e1 = diag + (double)(n - 1) * off, e2 = diag - off;
    double lo = fmin(e1, e2), hi = fmax(e1, e2);
    if (!(lo > 0))
        return INFINITY;
    return hi / lo;
}

int ns_mf_bn_rate(ns_mf_work *w, const ns_mf_act *act, double *rate)
{
    ns_mf_m1 m;
    int st = ns_mf_moments1(w, act, 1, &m);
    if (st)
        return st;
    double var = m.sq - m.mean * m.mean;
    if (!(var > 0))
        return ns_error(NS_ENUMERIC, "the activation has no variance under N(0, 1)");
    *rate = m.dsq / var;
    return NS_OK;
}
