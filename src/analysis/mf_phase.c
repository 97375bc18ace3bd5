/*
 * The mean-field phase diagram over (sigma_w^2, sigma_b^2) (Poole et al.
 * 2016, Fig. 2; Schoenholz et al. 2017, Fig. 1): chi_1, c* and q* on a
 * grid, and the critical line chi_1 = 1 traced by root finding.
 *
 * Rows (fixed sigma_b^2) are shared out over threads; each thread works on a
 * view of one workspace, whose rules are built under a critical section.
 * Per point: q* (mf_solve_q), chi_1, and c* where chi_1 > 1.  For
 * activations without a closed form, c* comes from the Hermite series of
 * the c-map (Mehler's formula, see mf_quad.c):
 *   C(c) = (sw2 sum_{k >= k0} a_k^2 c^k + sb2) / q*,  C'(c) = sw2 sum k a_k^2 c^(k-1) / q*,
 * k0 = 1 with the weight mean (a_0 = E[phi] is the mean it removes); the
 * truncation and the order are chosen per point to the tolerance (see
 * series_cstar; beyond MF_SERIES_MAX terms the tensor-product rule is used).
 * A 2-D rule per point would cost seconds per row for tanh.  Along a row,
 * tanh's and erf's q recursion starts next to the neighbours' q* (their
 * positive fixed point is unique).  Each sign change of chi_1 - 1
 * between neighbouring columns of a row is refined with GSL's Brent solver
 * to |d sw2| <= 1e-12 sw2, with chi_1 evaluated at the tolerance; where
 * chi_1 jumps over 1 instead of crossing it (q* changing kind: the
 * recursion from q0 reaching another basin, or q* becoming infinite) no
 * point is recorded.
 */
#include "mf_internal.h"

#include <errno.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_roots.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ grid */

double ns_mf_grid_at(double lo, double hi, size_t n, size_t i)
{
    if (n <= 1)
        return lo;
    if (i + 1 == n)
        return hi;
    return lo + (hi - lo) * (double)i / (double)(n - 1);
}

int ns_mf_grid_check(const ns_mf_grid *g)
{
    if (g->nsw == 0 || g->nsb == 0)
        return ns_error(NS_EINVAL, "the grid has no points (%zu x %zu)", g->nsw, g->nsb);
    if (!isfinite(g->sw2_min) || !isfinite(g->sw2_max) || !isfinite(g->sb2_min) ||
        !isfinite(g->sb2_max))
        return ns_error(NS_EINVAL, "the grid's ranges must be finite numbers");
    if (g->sw2_min > g->sw2_max || g->sb2_min > g->sb2_max)
        return ns_error(NS_EINVAL, "the grid has no points: an empty range (%g:%g, %g:%g)",
                        g->sw2_min, g->sw2_max, g->sb2_min, g->sb2_max);
    if (g->nsw > 100000 || g->nsb > 100000)
        return ns_error(NS_EINVAL, "the grid has %zu x %zu points; at most 100000 per axis",
                        g->nsw, g->nsb);
    if (!(g->sw2_min > 0))
        return ns_error(NS_EINVAL, "sigma_w^2 must be positive on the grid, got %g",
                        g->sw2_min);
    if (!(g->sb2_min >= 0))
        return ns_error(NS_EINVAL, "sigma_b^2 must be non-negative on the grid, got %g",
                        g->sb2_min);
    return NS_OK;
}

/* "LO:HI:N" */
static int parse_axis(const char *s, size_t len, double *lo, double *hi, size_t *n)
{
    char buf[128];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *p = buf, *end;
    errno = 0;
    *lo = strtod(p, &end);
    if (end == p || *end != ':')
        return -1;
    p = end + 1;
    *hi = strtod(p, &end);
    if (end == p || *end != ':')
        return -1;
    p = end + 1;
    if (*p == '-' || *p == '+')
        return -1;
    unsigned long long v = strtoull(p, &end, 10);
    if (end == p || *end || errno)
        return -1;
    *n = (size_t)v;
    return 0;
}

int ns_mf_grid_parse(const char *s, ns_mf_grid *g)
{
    memset(g, 0, sizeof *g);
    const char *comma = s ? strchr(s, ',') : NULL;
    if (!comma || parse_axis(s, (size_t)(comma - s), &g->sw2_min, &g->sw2_max, &g->nsw) ||
        parse_axis(comma + 1, strlen(comma + 1), &g->sb2_min, &g->sb2_max, &g->nsb))
        return ns_error(NS_EINVAL, "bad grid '%s' (SW2MIN:SW2MAX:NSW,SB2MIN:SB2MAX:NSB)",
                        s ? s : "");
    return ns_mf_grid_check(g);
}

/* ---------------------------------------------------------- one point */

typedef struct series {
    const ns_mf_net *net;
    double q;
    const double *a;
    size_t K;
} series;

static int series_eval(void *ctx, double c, double *G, double *dG)
{
    const series *s = ctx;
    size_t k0 = s->net->weight_mean ? 1 : 0;
    double p = 0, dp = 0;
    /* Horner: p = sum_{k >= k0} a_k^2 c^(k - k0), dp = sum_{k >= 1} k a_k^2 c^(k-1) */
    for (size_t k = s->K; k-- > k0;)
        p = p * c + s->a[k] * s->a[k];
    for (size_t k = s->K; k-- > 1;)
        dp = dp * c + (double)k * s->a[k] * s->a[k];
    if (k0)
        p *= c;
    *G = (s->net->sw2 * p + s->net->sb2) / s->q;
    *dG = s->net->sw2 * dp / s->q;
    return NS_OK;
}

/* Lowest level whose Gauss-Hermite rule has at least 2K nodes. */
static int level_for(size_t K)
{
    int L = 0;
    while (((size_t)8 << L) < 2 * K && L + 1 < MF_LEVELS)
        L++;
    return L;
}

/* c* of a smooth activation at a finite q* from the Hermite series.  The
 * coefficients come from Gauss-Hermite at level L with at least 2K nodes
 * for K terms, so the rule's discrete Parseval identity holds and the tail
 * at c = 1 is sum_{k>=K} a_k^2 = E[phi^2] - sum_{k<K} a_k^2 (a negative one
 * means the rule is too coarse for K terms: L grows).  The terms being
 * non-negative, the truncation error at c* is at most c*^K times that tail;
 * K doubles until it is below the tolerance, then shrinks to the fewest
 * terms that keep it so.  Order: the map at c* from level L+1 must agree to
 * the tolerance, else L grows. */
static int series_cstar(ns_mf_work *w, const ns_mf_net *net, const mf_qsol *s, double slope1,
                        size_t *Kh, double *cstar, double *cslope)
{
    double a1[MF_SERIES_MAX], a2[MF_SERIES_MAX];
    size_t K = *Kh < 16 ? 16 : *Kh;
    double q = s->q, scale = net->sw2 / q;
    int L = level_for(K);
    while (L + 1 < MF_LEVELS) {
        const mf_rule *r1 = mf_rule_gh(w, L), *r2 = mf_rule_gh(w, L + 1);
        if (!r1 || !r2)
            return NS_ENOMEM;
        double sq = mf_hermite_coef(r1, &net->act, q, K, a1), t = 0;
        for (size_t k = 0; k < K; k++)
            t += a1[k] * a1[k];
        double tail = scale * (sq - t);
        if (tail < -w->tol) {
            L++;
            continue;
        }
        series x1 = {net, q, a1, K}, x2 = {net, q, a2, K};
        double c, d, G1, dG1, G2, dG2;
        int st = mf_cstar(series_eval, &x1, slope1, &c, &d);
        if (st)
            return st;
        if (tail * pow(fmax(c, 0), (double)K) > w->tol) {
            if (2 * K > MF_SERIES_MAX)
                break;
            K *= 2;
            if (L < level_for(K))
                L = level_for(K);
            continue;
        }
        /* the fewest terms (down to 16) that keep the bound */
        while (K > 16) {
            double t2 = 0;
            for (size_t k = K / 2; k < K; k++)
                t2 += a1[k] * a1[k];
            if ((tail + scale * t2) * pow(fmax(c, 0), (double)(K / 2)) > w->tol)
                break;
            tail += scale * t2;
            K /= 2;
        }
        x1.K = x2.K = K;
        mf_hermite_coef(r2, &net->act, q, K, a2);
        series_eval(&x1, c, &G1, &dG1);
        series_eval(&x2, c, &G2, &dG2);
        if (fabs(G1 - G2) <= w->tol) {
            if ((st = mf_cstar(series_eval, &x2, slope1, cstar, cslope)))
                return st;
            mf_note_order(w, (size_t)8 << (L + 1));
            *Kh = K;
            return NS_OK;
        }
        L++;
    }
    /* The series would need too many terms: the 2-D rule instead. */
    mf_cmap_ctx x = {w, net, s};
    return mf_cstar(mf_cmap_cb, &x, slope1, cstar, cslope);
}

static int grid_point(ns_mf_work *w, const ns_mf_act *act, int wm, double q0, double sw2,
                      double sb2, int *level, size_t *Kh, double *chi, double *cstar,
                      double *qstar)
{
    ns_mf_net net = {*act, sw2, sb2, wm};
    mf_qsol s;
    int st = mf_solve_q(w, &net, q0, level, &s);
    if (st)
        return st;
    *qstar = s.q;
    *chi = mf_chi1(&net, &s);
    /* C'(1) = chi_1 at a finite q*; the limits otherwise (closed forms) */
    double slope1 = *chi, G1, d;
    if (s.kind != NS_MF_Q_FINITE && s.kind != NS_MF_Q_ANY &&
        (st = mf_cmap_eval(w, &net, &s, 1, &G1, &slope1)))
        return st;
    if (s.kind == NS_MF_Q_ZERO && !ns_mf_act_homogeneous(act)) {
        *cstar = NAN;
        return NS_OK;
    }
    if (!ns_mf_act_closed(act) && s.kind == NS_MF_Q_FINITE && slope1 > 1 + 1e-12) {
        /* C(0) = (sw2 E[phi]^2 + sb2) / q* (sb2 / q* with the weight mean);
         * where it vanishes c* = 0, the c-map being convex on [0, 1] */
        double c0 = (sw2 * (wm ? 0 : s.m.mean * s.m.mean) + sb2) / s.q;
        if (c0 <= 1e-14) {
            *cstar = 0;
            return NS_OK;
        }
        return series_cstar(w, &net, &s, *chi, Kh, cstar, &d);
    }
    mf_cmap_ctx x = {w, &net, &s};
    return mf_cstar(mf_cmap_cb, &x, slope1, cstar, &d);
}

/* ------------------------------------------------------ critical line */

typedef struct chi_ctx {
    ns_mf_work *w;
    const ns_mf_act *act;
    int wm, level, st;
    double q0, sb2;
} chi_ctx;

static double chi_minus_one(double sw2, void *p)
{
    chi_ctx *x = p;
    if (x->st)
        return NAN;
    ns_mf_net net = {*x->act, sw2, x->sb2, x->wm};
    mf_qsol s;
    x->st = mf_solve_q(x->w, &net, x->q0, &x->level, &s);
    return x->st ? NAN : mf_chi1(&net, &s) - 1;
}

static int refine_root(chi_ctx *x, double lo, double hi, double *root)
{
    gsl_set_error_handler_off();
    gsl_root_fsolver *sv = gsl_root_fsolver_alloc(gsl_root_fsolver_brent);
    if (!sv)
        return ns_error(NS_ENOMEM, "out of memory for the root finder");
    gsl_function F = {chi_minus_one, x};
    int st = NS_OK;
    /* The grid's chi_1 and this one agree to the tolerance; where a grid
     * value sits within it of 1 the signs may differ, and the end nearer
     * to chi_1 = 1 is the root. */
    double flo = chi_minus_one(lo, x), fhi = chi_minus_one(hi, x);
    if (x->st) {
        st = x->st;
        goto done;
    }
    if ((flo < 0) == (fhi < 0) || flo == 0 || fhi == 0) {
        *root = fabs(flo) <= fabs(fhi) ? lo : hi;
        goto done;
    }
    if (gsl_root_fsolver_set(sv, &F, lo, hi) != GSL_SUCCESS) {
        st = x->st ? x->st : ns_error(NS_ENUMERIC, "cannot bracket chi_1 = 1 in [%g, %g] at "
                                      "sigma_b^2 = %g", lo, hi, x->sb2);
        goto done;
    }
    for (int it = 0; it < 200; it++) {
        int gs = gsl_root_fsolver_iterate(sv);
        if (x->st) {
            st = x->st;
            goto done;
        }
        if (gs != GSL_SUCCESS) {
            st = ns_error(NS_ENUMERIC, "root finding of chi_1 = 1 failed at sigma_b^2 = %g "
                          "(%s)", x->sb2, gsl_strerror(gs));
            goto done;
        }
        double a = gsl_root_fsolver_x_lower(sv), b = gsl_root_fsolver_x_upper(sv);
        if (gsl_root_test_interval(a, b, 0, 1e-12) == GSL_SUCCESS)
            break;
    }
    *root = gsl_root_fsolver_root(sv);
    /* Where q* changes kind (the recursion from q0 leaves for another basin,
     * or q* becomes infinite) chi_1 may jump over 1 instead of crossing it:
     * then the ends of the final bracket differ and there is no critical
     * point. */
    double a = gsl_root_fsolver_x_lower(sv), b = gsl_root_fsolver_x_upper(sv);
    double fa = chi_minus_one(a, x), fb = chi_minus_one(b, x);
    if (x->st)
        st = x->st;
    else if (!(fabs(fa - fb) <= 1e-6))
        *root = NAN;
done:
    gsl_root_fsolver_free(sv);
    return st;
}

/* Crossings of chi_1 = 1 along row j (at most nsw of them) into roots. */
static int row_line(chi_ctx *x, const double *sw2, const double *chi, size_t nsw,
                    double *roots, size_t *nroots)
{
    size_t k = 0;
    for (size_t i = 0; i < nsw; i++) {
        double d0 = chi[i] - 1;
        if (d0 == 0) {
            roots[k++] = sw2[i];
            continue;
        }
        if (i + 1 == nsw || !isfinite(d0) || !isfinite(chi[i + 1]))
            continue;
        double d1 = chi[i + 1] - 1;
        if (d1 != 0 && (d0 < 0) != (d1 < 0)) {
            int st = refine_root(x, sw2[i], sw2[i + 1], &roots[k]);
            if (st)
                return st;
            k += !isnan(roots[k]);
        }
    }
    *nroots = k;
    return NS_OK;
}

/* ------------------------------------------------------------ driver */

void ns_mf_phase_release(ns_mf_phase *p)
{
    if (!p)
        return;
    ns_free(p->sw2);
    ns_free(p->sb2);
    ns_free(p->chi1);
    ns_free(p->cstar);
    ns_free(p->qstar);
    ns_free(p->line_sw2);
    ns_free(p->line_sb2);
    ns_free(p->line_branch);
    memset(p, 0, sizeof *p);
}

int ns_mf_phase_compute(const ns_mf_act *act, int weight_mean, double q0, const ns_mf_grid *g,
                        double tol, ns_mf_phase *out)
{
    memset(out, 0, sizeof *out);
    int st = ns_mf_grid_check(g);
    if (st)
        return st;
    if (!(q0 > 0) || !isfinite(q0))
        return ns_error(NS_EINVAL, "q0 must be a positive number, got %g", q0);
    size_t nsw = g->nsw, nsb = g->nsb, cells = ns_mul_size(nsw, nsb);
    if (!cells)
        return NS_ENOMEM;
    double t0 = ns_time();
    ns_mf_work *w = ns_mf_work_alloc(tol);
    double *roots = NULL;
    size_t *nroots = NULL;
    if (!w)
        return ns_errmsg()[0] ? NS_EINVAL : NS_ENOMEM;
    out->nsw = nsw;
    out->nsb = nsb;
    out->sw2 = ns_malloc(nsw * sizeof *out->sw2);
    out->sb2 = ns_malloc(nsb * sizeof *out->sb2);
    out->chi1 = ns_malloc(cells * sizeof *out->chi1);
    out->cstar = ns_malloc(cells * sizeof *out->cstar);
    out->qstar = ns_malloc(cells * sizeof *out->qstar);
    roots = ns_malloc(cells * sizeof *roots);
    nroots = ns_calloc(nsb, sizeof *nroots);
    if (!out->sw2 || !out->sb2 || !out->chi1 || !out->cstar || !out->qstar || !roots ||
        !nroots) {
        st = NS_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < nsw; i++)
        out->sw2[i] = ns_mf_grid_at(g->sw2_min, g->sw2_max, nsw, i);
    for (size_t j = 0; j < nsb; j++)
        out->sb2[j] = ns_mf_grid_at(g->sb2_min, g->sb2_max, nsb, j);
    /* The grid uses closed forms wherever they exist. */
    ns_mf_act a = *act;
    a.quadrature = 0;
    if (!ns_mf_act_closed(&a) && mf_rules_upto(w, 3)) {
        st = NS_ENOMEM;
        goto done;
    }

    char msg[512] = "";
    int shared_st = NS_OK, warm = a.kind == NS_MF_TANH || a.kind == NS_MF_ERF;
#pragma omp parallel num_threads(ns_get_threads())
    {
        ns_mf_work v;
        mf_work_view(w, &v);
        size_t K = 32;
        int level = 2;
#pragma omp for schedule(dynamic, 1)
        for (size_t j = 0; j < nsb; j++) {
            int mine, failed;
            /* a row may need a lower order than the last one */
            level = level > 2 ? level - 1 : 2;
#pragma omp atomic read
            failed = shared_st;
            if (failed)
                continue;
            mine = NS_OK;
            double *chi = out->chi1 + j * nsw, qs = q0, *qrow = out->qstar + j * nsw;
            for (size_t i = 0; i < nsw && !mine; i++) {
                mine = grid_point(&v, &a, weight_mean, qs, out->sw2[i], out->sb2[j], &level,
                                  &K, &chi[i], &out->cstar[j * nsw + i], &qrow[i]);
                /* tanh and erf have one positive fixed point, which the
                 * recursion reaches from anywhere: start next to the
                 * neighbours' (extrapolated linearly) */
                int ok1 = qrow[i] > 0 && isfinite(qrow[i]);
                int ok2 = ok1 && i > 0 && qrow[i - 1] > 0 && isfinite(qrow[i - 1]);
                qs = q0;
                if (warm && ok2 && 2 * qrow[i] - qrow[i - 1] > 0)
                    qs = 2 * qrow[i] - qrow[i - 1];
                else if (warm && ok1)
                    qs = qrow[i];
            }
            if (!mine) {
                chi_ctx x = {&v, &a, weight_mean, level, NS_OK, q0, out->sb2[j]};
                mine = row_line(&x, out->sw2, chi, nsw, roots + j * nsw, &nroots[j]);
            }
            if (mine) {
#pragma omp critical(ns_mf_phase_err)
                if (!shared_st) {
                    shared_st = mine;
                    snprintf(msg, sizeof msg, "%s", ns_errmsg());
                }
            }
        }
#pragma omp critical(ns_mf_phase_order)
        mf_note_order(w, v.order);
    }
    if ((st = shared_st)) {
        ns_error(st, "%s", msg);
        goto done;
    }

    size_t nline = 0;
    for (size_t j = 0; j < nsb; j++)
        nline += nroots[j];
    out->line_sw2 = ns_malloc((nline ? nline : 1) * sizeof *out->line_sw2);
    out->line_sb2 = ns_malloc((nline ? nline : 1) * sizeof *out->line_sb2);
    out->line_branch = ns_malloc((nline ? nline : 1) * sizeof *out->line_branch);
    if (!out->line_sw2 || !out->line_sb2 || !out->line_branch) {
        st = NS_ENOMEM;
        goto done;
    }
    for (size_t j = 0; j < nsb; j++)
        for (size_t k = 0; k < nroots[j]; k++) {
            out->line_sw2[out->nline] = roots[j * nsw + k];
            out->line_sb2[out->nline] = out->sb2[j];
            out->line_branch[out->nline] = k;
            out->nline++;
        }
    out->order = ns_mf_work_order(w);
    out->seconds = ns_time() - t0;
done:
    ns_free(roots);
    ns_free(nroots);
    ns_mf_work_free(w);
    if (st)
        ns_mf_phase_release(out);
    return st;
}
