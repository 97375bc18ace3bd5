/*
 * Gaussian expectations for the mean-field module: quadrature rules from
 * GSL, the workspace, adaptive 1-D and 2-D moments and the Hermite (Mehler)
 * coefficients of an activation.
 *
 * Rules (gsl_integration_fixed, computed once per workspace and level):
 *   Gauss-Hermite of order 8 << k for the weight exp(-z^2/2), normalised to
 *   the standard normal and folded into symmetric half rules;
 *   for activations with a kink at 0 (relu, leaky relu), Gauss-Legendre of
 *   order 4 << k on [0, MF_ZCUT] times the normal density (each side of the
 *   kink), and for the inner integral of 2-D expectations Gauss-Legendre on
 *   the two pieces of [-MF_ZCUT, MF_ZCUT] split where the inner argument
 *   crosses the kink.  Gauss-Hermite converges only algebraically across a
 *   kink; the split rules integrate piecewise-smooth integrands to rounding
 *   error.  gelu, swish and softplus take the split rules too: they turn
 *   like relu within 1/sqrt(q) of 0, where Gauss-Hermite would need orders
 *   growing with q (and q grows without bound where sw2 > 2).
 * Adaptivity: the order is doubled until two successive estimates agree to
 * tol times each quantity's natural scale (Cauchy-Schwarz bounds such as
 * sqrt(E[phi(u1)^2] E[phi(u2)^2]) for E[phi(u1) phi(u2)]); the result is the
 * higher-order estimate and the workspace records the order used.
 * 2-D expectations: tensor product over correlated normals, u1 = sqrt(q1) z1,
 * u2 = sqrt(q2) (c z1 + sqrt(1 - c^2) z2) with z1, z2 independent.
 * Mehler's formula E[phi(u1) phi(u2)] = sum_k a_k(q1) a_k(q2) c^k with
 * a_k(q) = E[phi(sqrt(q) z) He_k(z)] / sqrt(k!) (O'Donnell, Analysis of
 * Boolean Functions, ch. 11) is used by the phase diagram; the normalised
 * Hermite functions are carried times sqrt(w) through their three-term
 * recurrence, which keeps them bounded at every node.
 */
#include "mf_internal.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_integration.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SQRT_2PI 2.5066282746310002
#define INV_SQRT_2PI 0.3989422804014327

/* ------------------------------------------------------------ workspace */

ns_mf_work *ns_mf_work_alloc(double tol)
{
    if (!(tol >= 1e-14 && tol <= 1e-2)) {
        ns_error(NS_EINVAL, "quadrature tolerance %g outside [1e-14, 1e-2]", tol);
        return NULL;
    }
    ns_mf_work *w = ns_calloc(1, sizeof *w);
    if (!w)
        return NULL;
    if (!(w->rules = ns_calloc(1, sizeof *w->rules))) {
        ns_free(w);
        return NULL;
    }
    w->tol = tol;
    w->owner = 1;
    return w;
}

static void rule_free(mf_rule *r)
{
    ns_free(r->x);
    ns_free(r->w);
    memset(r, 0, sizeof *r);
}

void ns_mf_work_free(ns_mf_work *w)
{
    if (!w || !w->owner)
        return;
    for (int k = 0; k < MF_LEVELS; k++) {
        rule_free(&w->rules->gh[k]);
        rule_free(&w->rules->kh[k]);
        rule_free(&w->rules->gl[k]);
    }
    ns_free(w->rules);
    ns_free(w);
}

void mf_work_view(const ns_mf_work *w, ns_mf_work *view)
{
    *view = *w;
    view->owner = 0;
    view->order = 0;
}

double ns_mf_work_tol(const ns_mf_work *w)
{
    return w->tol;
}

size_t ns_mf_work_order(const ns_mf_work *w)
{
    return w->order;
}

void ns_mf_work_reset_order(ns_mf_work *w)
{
    w->order = 0;
}

void mf_note_order(ns_mf_work *w, size_t order)
{
    if (order > w->order)
        w->order = order;
}

/* ---------------------------------------------------------------- rules */

/* Nodes and weights of a GSL fixed rule, ascending. */
static int gsl_rule(const gsl_integration_fixed_type *type, size_t n, double a, double b,
                    double **x, double **wt)
{
    /* GSL's default handler aborts; the library reports instead. */
    gsl_set_error_handler_off();
    gsl_integration_fixed_workspace *ws = gsl_integration_fixed_alloc(type, n, a, b, 0, 0);
    if (!ws)
        return ns_error(NS_ENOMEM, "cannot build a quadrature rule of order %zu (GSL)", n);
    *x = ns_malloc(n * sizeof **x);
    *wt = ns_malloc(n * sizeof **wt);
    if (!*x || !*wt) {
        gsl_integration_fixed_free(ws);
        ns_free(*x);
        ns_free(*wt);
        *x = *wt = NULL;
        return NS_ENOMEM;
    }
    const double *gx = gsl_integration_fixed_nodes(ws), *gw = gsl_integration_fixed_weights(ws);
    /* insertion sort by node (GSL's order is its eigen-solver's) */
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        while (j > 0 && (*x)[j - 1] > gx[i]) {
            (*x)[j] = (*x)[j - 1];
            (*wt)[j] = (*wt)[j - 1];
            j--;
        }
        (*x)[j] = gx[i];
        (*wt)[j] = gw[i];
    }
    gsl_integration_fixed_free(ws);
    return NS_OK;
}

static int build_gh(mf_rule *r, int k)
{
    size_t n = (size_t)8 << k;
    double *x, *wt;
    int st = gsl_rule(gsl_integration_fixed_hermite, n, 0, 0.5, &x, &wt);
    if (st)
        return st;
    r->n = n / 2;
    r->x = ns_malloc(r->n * sizeof *r->x);
    r->w = ns_malloc(r->n * sizeof *r->w);
    if (!r->x || !r->w) {
        ns_free(x);
        ns_free(wt);
        rule_free(r);
        return NS_ENOMEM;
    }
    /* Fold into a half rule, symmetrising away the eigen-solver's rounding;
     * weights of the Gaussian exp(-z^2/2) sum to sqrt(2 pi). */
    for (size_t i = 0; i < r->n; i++) {
        size_t lo = r->n - 1 - i, hi = r->n + i;
        r->x[i] = 0.5 * (x[hi] - x[lo]);
        r->w[i] = 0.5 * (wt[hi] + wt[lo]) / SQRT_2PI;
    }
    ns_free(x);
    ns_free(wt);
    return NS_OK;
}

static int build_kh(mf_rule *r, int k)
{
    size_t n = (size_t)4 << k;
    int st = gsl_rule(gsl_integration_fixed_legendre, n, 0, MF_ZCUT, &r->x, &r->w);
    if (st)
        return st;
    r->n = n;
    for (size_t i = 0; i < n; i++)
        r->w[i] *= INV_SQRT_2PI * exp(-0.5 * r->x[i] * r->x[i]);
    return NS_OK;
}

static int build_gl(mf_rule *r, int k)
{
    size_t n = (size_t)4 << k;
    int st = gsl_rule(gsl_integration_fixed_legendre, n, -1, 1, &r->x, &r->w);
    if (!st)
        r->n = n;
    return st;
}

/* Rules are built inside a critical section, so threads may share a
 * workspace's rules (the phase diagram does). */
static const mf_rule *get_rule(ns_mf_work *w, mf_rule *tab, int k, int (*build)(mf_rule *, int))
{
    if (k < 0 || k >= MF_LEVELS) {
        ns_error(NS_ENUMERIC, "quadrature order %d outside the rule table", k < 0 ? 0 : 8 << k);
        return NULL;
    }
    const mf_rule *out = NULL;
    (void)w;
#pragma omp critical(ns_mf_rules)
    {
        if (tab[k].n || build(&tab[k], k) == NS_OK)
            out = &tab[k];
    }
    return out;
}

const mf_rule *mf_rule_gh(ns_mf_work *w, int k) { return get_rule(w, w->rules->gh, k, build_gh); }
const mf_rule *mf_rule_kh(ns_mf_work *w, int k) { return get_rule(w, w->rules->kh, k, build_kh); }
const mf_rule *mf_rule_gl(ns_mf_work *w, int k) { return get_rule(w, w->rules->gl, k, build_gl); }

int mf_rules_upto(ns_mf_work *w, int k)
{
    for (int i = 0; i <= k && i < MF_LEVELS; i++)
        if (!mf_rule_gh(w, i) || !mf_rule_kh(w, i) || !mf_rule_gl(w, i))
            return NS_ENOMEM;
    return NS_OK;
}

/* Full order of level k. */
static size_t level_order(int k)
{
    return (size_t)8 << k;
}

/* ------------------------------------------------------ 1-D moments */

/* Breakpoints for the split rules: [lo, hi] cut at z0 (the kink) and at
 * z0 -+ MF_GRADE / sc where inside, sc the scale of the activation's
 * argument in z, so the bend of gelu, swish and softplus within
 * |sc (z - z0)| < MF_GRADE gets pieces of its own at any variance.  Returns
 * the number of points written to ends (at most 5), ascending. */
static size_t split_ends(double lo, double hi, double z0, double sc, double *ends)
{
    double cand[5] = {lo, z0, hi, NAN, NAN};
    if (sc > 0) {
        cand[3] = z0 - MF_GRADE / sc;
        cand[4] = z0 + MF_GRADE / sc;
    }
    size_t n = 0;
    for (int i = 0; i < 5; i++) {
        double v = cand[i];
        if (!(v >= lo && v <= hi))
            continue;
        size_t j = n++;
        while (j > 0 && ends[j - 1] > v) {
            ends[j] = ends[j - 1];
            j--;
        }
        ends[j] = v;
    }
    return n;
}

void mf_quad_m1_level(const ns_mf_work *w, const ns_mf_act *a, double q, int k, ns_mf_m1 *m)
{
    double sq = sqrt(q);
    double mean = 0, s2 = 0, dmean = 0, d2 = 0, fdz = 0, dz = 0;
    /* nodes z > 0 with weights: the Gauss-Hermite half rule, or Gauss-
     * Legendre on the pieces of [0, MF_ZCUT] (times the density) */
    const mf_rule *r = mf_act_split(a) ? &w->rules->gl[k] : &w->rules->gh[k];
    double ends[5];
    size_t np = mf_act_split(a) ? split_ends(0, MF_ZCUT, 0, sq, ends) - 1 : 1;
    for (size_t p = 0; p < np; p++) {
        double mid = 0, half = 0;
        if (mf_act_split(a)) {
            mid = 0.5 * (ends[p] + ends[p + 1]);
            half = 0.5 * (ends[p + 1] - ends[p]);
            if (half <= 0)
                continue;
        }
        for (size_t i = 0; i < r->n; i++) {
            double z = r->x[i], wi = r->w[i], fp, dp, fm, dm;
            if (mf_act_split(a)) {
                z = mid + half * z;
                wi *= half * INV_SQRT_2PI * exp(-0.5 * z * z);
            }
            mf_act_eval2(a, sq * z, &fp, &dp);
            mf_act_eval2(a, -sq * z, &fm, &dm);
            mean += wi * (fp + fm);
            s2 += wi * (fp * fp + fm * fm);
            dmean += wi * (dp + dm);
            d2 += wi * (dp * dp + dm * dm);
            fdz += wi * z * (fp * dp - fm * dm);
            dz += wi * z * (dp - dm);
        }
    }
    m->mean = mean;
    m->sq = s2;
    m->dmean = dmean;
    m->dsq = d2;
    if (q > 0) {
        m->dsq_dq = fdz / sq;
        m->dmean_dq = dz / (2 * sq);
    } else {
        /* the limits q -> 0 (smooth activations) */
        double f0 = ns_mf_act_eval(a, 0, 0), d0 = ns_mf_act_eval(a, 1, 0);
        double dd0 = ns_mf_act_eval(a, 2, 0);
        m->dsq_dq = d0 * d0 + f0 * dd0;
        m->dmean_dq = 0.5 * dd0;
    }
}

static int close_to(double a, double b, double scale, double tol)
{
    return fabs(a - b) <= tol * scale;
}

int mf_m1_agree(const ns_mf_m1 *a, const ns_mf_m1 *b, double q, double tol)
{
    double s2 = fabs(b->sq), d2 = fabs(b->dsq);
    int ok = close_to(a->mean, b->mean, sqrt(s2), tol) && close_to(a->sq, b->sq, s2, tol) &&
             close_to(a->dmean, b->dmean, sqrt(d2), tol) && close_to(a->dsq, b->dsq, d2, tol);
    if (ok && q > 0)
        ok = close_to(a->dsq_dq, b->dsq_dq, sqrt(s2 * d2 / q), tol) &&
             close_to(a->dmean_dq, b->dmean_dq, 0.5 * sqrt(d2 / q), tol);
    return ok;
}

int mf_ensure_level(ns_mf_work *w, const ns_mf_act *a, int k)
{
    if (mf_act_split(a)) {
        if (!mf_rule_kh(w, k) || !mf_rule_gl(w, k))
            return NS_ENOMEM;
    } else if (!mf_rule_gh(w, k)) {
        return NS_ENOMEM;
    }
    return NS_OK;
}

static int no_convergence(const ns_mf_work *w, const char *what, double q1, double q2)
{
    if (q2 < 0)
        return ns_error(NS_ENUMERIC, "quadrature of %s did not reach the tolerance %g by "
                        "order %d (variance %g); loosen --tol", what, w->tol,
                        NS_MF_ORDER_MAX, q1);
    return ns_error(NS_ENUMERIC, "quadrature of %s did not reach the tolerance %g by order "
                    "%d (variances %g, %g); loosen --tol", what, w->tol, NS_MF_ORDER_MAX, q1,
                    q2);
}

int ns_mf_moments1(ns_mf_work *w, const ns_mf_act *a, double q, ns_mf_m1 *m)
{
    if (!(q >= 0) || !isfinite(q))
        return ns_error(NS_EINVAL, "variance %g is not a finite non-negative number", q);
    if (ns_mf_act_closed(a)) {
        mf_closed_m1(a, q, m);
        return NS_OK;
    }
    /* Pairs of successive levels (u-1, u) from the hint up; the result is
     * the estimate at u.  The hint is the last u that passed, one lower
     * when that pair agreed a thousand times better than needed. */
    int u = w->hint1 >= 1 ? w->hint1 : 1;
    ns_mf_m1 A, B;
    if (mf_ensure_level(w, a, u - 1))
        return NS_ENOMEM;
    mf_quad_m1_level(w, a, q, u - 1, &A);
    for (; u < MF_LEVELS; u++) {
        if (mf_ensure_level(w, a, u))
            return NS_ENOMEM;
        mf_quad_m1_level(w, a, q, u, &B);
        if (mf_m1_agree(&A, &B, q, w->tol)) {
            *m = B;
            w->hint1 = u > 1 && mf_m1_agree(&A, &B, q, 1e-3 * w->tol) ? u - 1 : u;
            mf_note_order(w, level_order(u));
            return NS_OK;
        }
        A = B;
    }
    return no_convergence(w, "the activation's moments", q, -1);
}

/* ------------------------------------------------------ 2-D moments */

/* Inner expectations over z2 of phi(sqrt(q2) (m + s z2)) and phi', given
 * the outer node (m = c z1). */
static void inner_smooth(const mf_rule *r, const ns_mf_act *a, double sq2, double m, double s,
                         double *A, double *B)
{
    double fa = 0, fb = 0;
    for (size_t j = 0; j < r->n; j++) {
        double fp, dp, fm, dm;
        mf_act_eval2(a, sq2 * (m + s * r->x[j]), &fp, &dp);
        mf_act_eval2(a, sq2 * (m - s * r->x[j]), &fm, &dm);
        fa += r->w[j] * (fp + fm);
        fb += r->w[j] * (dp + dm);
    }
    *A = fa;
    *B = fb;
}

/* The same split at the kink z2 = -m/s (and graded around it, see
 * split_ends), Gauss-Legendre on each piece. */
static void inner_split(const mf_rule *gl, const ns_mf_act *a, double sq2, double m, double s,
                        double *A, double *B)
{
    double fa = 0, fb = 0;
    if (s <= 0) {
        mf_act_eval2(a, sq2 * m, A, B);
        return;
    }
    double zk = fmin(MF_ZCUT, fmax(-MF_ZCUT, -m / s)), ends[5];
    size_t ne = split_ends(-MF_ZCUT, MF_ZCUT, zk, sq2 * s, ends);
    for (size_t p = 0; p + 1 < ne; p++) {
        double lo = ends[p], hi = ends[p + 1];
        if (hi <= lo)
            continue;
        double mid = 0.5 * (lo + hi), half = 0.5 * (hi - lo);
        for (size_t j = 0; j < gl->n; j++) {
            double z = mid + half * gl->x[j], f, d;
            double wj = half * gl->w[j] * INV_SQRT_2PI * exp(-0.5 * z * z);
            mf_act_eval2(a, sq2 * (m + s * z), &f, &d);
            fa += wj * f;
            fb += wj * d;
        }
    }
    *A = fa;
    *B = fb;
}

static void quad_m2_level(const ns_mf_work *w, const ns_mf_act *a, double q1, double q2,
                          double c, int k, ns_mf_m2 *m)
{
    double sq1 = sqrt(q1), sq2 = sqrt(q2), s = sqrt(fmax(0, 1 - c * c));
    double pp = 0, dd = 0;
    if (!mf_act_split(a)) {
        const mf_rule *r = &w->rules->gh[k];
        for (size_t i = 0; i < r->n; i++)
            for (int sign = -1; sign <= 1; sign += 2) {
                double z1 = sign * r->x[i], f1, d1, A, B;
                mf_act_eval2(a, sq1 * z1, &f1, &d1);
                inner_smooth(r, a, sq2, c * z1, s, &A, &B);
                pp += r->w[i] * f1 * A;
                dd += r->w[i] * d1 * B;
            }
    } else {
        /* outer z1 on the pieces of [0, MF_ZCUT] and their mirror images */
        const mf_rule *gl = &w->rules->gl[k];
        double ends[5];
        size_t ne = split_ends(0, MF_ZCUT, 0, sq1, ends);
        for (size_t p = 0; p + 1 < ne; p++) {
            double mid = 0.5 * (ends[p] + ends[p + 1]), half = 0.5 * (ends[p + 1] - ends[p]);
            if (half <= 0)
                continue;
            for (size_t i = 0; i < gl->n; i++) {
                double x = mid + half * gl->x[i];
                double wi = half * gl->w[i] * INV_SQRT_2PI * exp(-0.5 * x * x);
                for (int sign = -1; sign <= 1; sign += 2) {
                    double z1 = sign * x, f1, d1, A, B;
                    mf_act_eval2(a, sq1 * z1, &f1, &d1);
                    inner_split(gl, a, sq2, c * z1, s, &A, &B);
                    pp += wi * f1 * A;
                    dd += wi * d1 * B;
                }
            }
        }
    }
    m->pp = pp;
    m->dd = dd;
}

int ns_mf_moments2(ns_mf_work *w, const ns_mf_act *a, double q1, double q2, double c,
                   ns_mf_m2 *m)
{
    if (!(q1 >= 0) || !(q2 >= 0) || !isfinite(q1) || !isfinite(q2))
        return ns_error(NS_EINVAL, "variances %g, %g are not finite non-negative numbers", q1,
                        q2);
    if (!(fabs(c) <= 1 + 1e-12))
        return ns_error(NS_EINVAL, "correlation %g outside [-1, 1]", c);
    c = c > 1 ? 1 : c < -1 ? -1 : c;
    if (ns_mf_act_closed(a)) {
        mf_closed_m2(a, q1, q2, c, m);
        return NS_OK;
    }
    ns_mf_m1 m1a, m1b;
    int st = ns_mf_moments1(w, a, q1, &m1a);
    if (!st)
        st = ns_mf_moments1(w, a, q2, &m1b);
    if (st)
        return st;
    double sp = sqrt(fabs(m1a.sq * m1b.sq)), sd = sqrt(fabs(m1a.dsq * m1b.dsq));
    int u = w->hint2 >= 1 ? w->hint2 : 1;
    ns_mf_m2 A, B;
    if (mf_ensure_level(w, a, u - 1))
        return NS_ENOMEM;
    quad_m2_level(w, a, q1, q2, c, u - 1, &A);
    for (; u < MF_LEVELS; u++) {
        if (mf_ensure_level(w, a, u))
            return NS_ENOMEM;
        quad_m2_level(w, a, q1, q2, c, u, &B);
        if (close_to(A.pp, B.pp, sp, w->tol) && close_to(A.dd, B.dd, sd, w->tol)) {
            *m = B;
            int easy = close_to(A.pp, B.pp, sp, 1e-3 * w->tol) &&
                       close_to(A.dd, B.dd, sd, 1e-3 * w->tol);
            w->hint2 = u > 1 && easy ? u - 1 : u;
            mf_note_order(w, level_order(u));
            return NS_OK;
        }
        A = B;
    }
    return no_convergence(w, "the 2-D moments", q1, q2);
}

/* ------------------------------------------- expectations of callbacks */

static void quad1_level(const ns_mf_work *w, double (*f)(double, void *), void *p, double q,
                        int kinked, int k, double *v, double *v2)
{
    const mf_rule *r = kinked ? &w->rules->kh[k] : &w->rules->gh[k];
    double sq = sqrt(q), s = 0, s2 = 0;
    for (size_t i = 0; i < r->n; i++) {
        double a = f(sq * r->x[i], p), b = f(-sq * r->x[i], p);
        s += r->w[i] * (a + b);
        s2 += r->w[i] * (a * a + b * b);
    }
    *v = s;
    *v2 = s2;
}

int ns_mf_expect1(ns_mf_work *w, double (*f)(double u, void *p), void *p, double q,
                  int kinked, double *out)
{
    if (!(q >= 0) || !isfinite(q))
        return ns_error(NS_EINVAL, "variance %g is not a finite non-negative number", q);
    ns_mf_act dummy = {kinked ? NS_MF_RELU : NS_MF_TANH, 0, 1};
    double A, A2, B, B2;
    int k = 0;
    if (mf_ensure_level(w, &dummy, k))
        return NS_ENOMEM;
    quad1_level(w, f, p, q, kinked, k, &A, &A2);
    for (; k + 1 < MF_LEVELS; k++) {
        if (mf_ensure_level(w, &dummy, k + 1))
            return NS_ENOMEM;
        quad1_level(w, f, p, q, kinked, k + 1, &B, &B2);
        if (close_to(A, B, sqrt(fabs(B2)), w->tol)) {
            *out = B;
            mf_note_order(w, level_order(k + 1));
            return NS_OK;
        }
        A = B;
    }
    return no_convergence(w, "an expectation", q, -1);
}

/* One inner expectation of f(u1, .) over z2 (split at the kink of the
 * second argument when kinked) and of f^2. */
static void quad2_inner(const ns_mf_work *w, double (*f)(double, double, void *), void *p,
                        double u1, double sq2, double m, double s, int kinked, int k,
                        double *v, double *v2)
{
    double a = 0, a2 = 0;
    if (!kinked) {
        const mf_rule *r = &w->rules->gh[k];
        for (size_t j = 0; j < r->n; j++) {
            double x = f(u1, sq2 * (m + s * r->x[j]), p), y = f(u1, sq2 * (m - s * r->x[j]), p);
            a += r->w[j] * (x + y);
            a2 += r->w[j] * (x * x + y * y);
        }
    } else if (s <= 0) {
        a = f(u1, sq2 * m, p);
        a2 = a * a;
    } else {
        const mf_rule *gl = &w->rules->gl[k];
        double zk = fmin(MF_ZCUT, fmax(-MF_ZCUT, -m / s));
        const double ends[3] = {-MF_ZCUT, zk, MF_ZCUT};
        for (int pc = 0; pc < 2; pc++) {
            double lo = ends[pc], hi = ends[pc + 1];
            if (hi <= lo)
                continue;
            double mid = 0.5 * (lo + hi), half = 0.5 * (hi - lo);
            for (size_t j = 0; j < gl->n; j++) {
                double z = mid + half * gl->x[j];
                double wj = half * gl->w[j] * INV_SQRT_2PI * exp(-0.5 * z * z);
                double x = f(u1, sq2 * (m + s * z), p);
                a += wj * x;
                a2 += wj * x * x;
            }
        }
    }
    *v = a;
    *v2 = a2;
}

static void quad2_level(const ns_mf_work *w, double (*f)(double, double, void *), void *p,
                        double q1, double q2, double c, int kinked, int k, double *v,
                        double *v2)
{
    const mf_rule *outer = kinked ? &w->rules->kh[k] : &w->rules->gh[k];
    double sq1 = sqrt(q1), sq2 = sqrt(q2), s = sqrt(fmax(0, 1 - c * c)), t = 0, t2 = 0;
    for (size_t i = 0; i < outer->n; i++)
        for (int sign = -1; sign <= 1; sign += 2) {
            double z1 = sign * outer->x[i], a, a2;
            quad2_inner(w, f, p, sq1 * z1, sq2, c * z1, s, kinked, k, &a, &a2);
            t += outer->w[i] * a;
            t2 += outer->w[i] * a2;
        }
    *v = t;
    *v2 = t2;
}

int ns_mf_expect2(ns_mf_work *w, double (*f)(double u1, double u2, void *p), void *p,
                  double q1, double q2, double c, int kinked, double *out)
{
    if (!(q1 >= 0) || !(q2 >= 0) || !isfinite(q1) || !isfinite(q2))
        return ns_error(NS_EINVAL, "variances %g, %g are not finite non-negative numbers", q1,
                        q2);
    if (!(fabs(c) <= 1 + 1e-12))
        return ns_error(NS_EINVAL, "correlation %g outside [-1, 1]", c);
    c = c > 1 ? 1 : c < -1 ? -1 : c;
    ns_mf_act dummy = {kinked ? NS_MF_RELU : NS_MF_TANH, 0, 1};
    double A, A2, B, B2;
    int k = 0;
    if (mf_ensure_level(w, &dummy, k))
        return NS_ENOMEM;
    quad2_level(w, f, p, q1, q2, c, kinked, k, &A, &A2);
    for (; k + 1 < MF_LEVELS; k++) {
        if (mf_ensure_level(w, &dummy, k + 1))
            return NS_ENOMEM;
        quad2_level(w, f, p, q1, q2, c, kinked, k + 1, &B, &B2);
        if (close_to(A, B, sqrt(fabs(B2)), w->tol)) {
            *out = B;
            mf_note_order(w, level_order(k + 1));
            return NS_OK;
        }
        A = B;
    }
    return no_convergence(w, "an expectation", q1, q2);
}

/* ------------------------------------------------ Hermite coefficients */

double mf_hermite_coef(const mf_rule *r, const ns_mf_act *a, double q, size_t K, double *coef)
{
    enum { B = 32 }; /* nodes per block: the recurrence runs across a block */
    double sq = sqrt(q);
    double rt[MF_SERIES_MAX + 1], irt[MF_SERIES_MAX + 1];
    if (K > MF_SERIES_MAX)
        K = MF_SERIES_MAX;
    for (size_t k = 0; k <= K; k++) {
        rt[k] = sqrt((double)k);
        irt[k] = k ? 1 / rt[k] : 0;
    }
    memset(coef, 0, K * sizeof *coef);
    double sqsum = 0;
    for (size_t i0 = 0; i0 < r->n; i0 += B) {
        size_t nb = r->n - i0 < B ? r->n - i0 : B;
        double x[B], g0[B], g1[B], ev[B], od[B];
        for (size_t i = 0; i < nb; i++) {
            double sw = sqrt(r->w[i0 + i]), fp, fm, d;
            x[i] = r->x[i0 + i];
            mf_act_eval2(a, sq * x[i], &fp, &d);
            mf_act_eval2(a, -sq * x[i], &fm, &d);
            ev[i] = sw * (fp + fm);
            od[i] = sw * (fp - fm);
            sqsum += r->w[i0 + i] * (fp * fp + fm * fm);
            /* g_k = sqrt(w) He_k(x) / sqrt(k!), bounded at every node */
            g0[i] = sw;
            g1[i] = sw * x[i];
        }
        for (; nb < B; nb++)
            x[nb] = g0[nb] = g1[nb] = ev[nb] = od[nb] = 0;
        double s0 = 0, s1 = 0;
        for (size_t i = 0; i < B; i++) {
            s0 += g0[i] * ev[i];
            s1 += g1[i] * od[i];
        }
        coef[0] += s0;
        if (K > 1)
            coef[1] += s1;
        for (size_t k = 1; k + 1 < K; k++) {
            const double *par = (k + 1) & 1 ? od : ev;
            double acc = 0, c1 = rt[k], c2 = irt[k + 1];
            for (size_t i = 0; i < B; i++) {
                double g2 = (x[i] * g1[i] - c1 * g0[i]) * c2;
                g0[i] = g1[i];
                g1[i] = g2;
                acc += g2 * par[i];
            }
            coef[k + 1] += acc;
        }
    }
    return sqsum;
}
