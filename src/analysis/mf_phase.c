/*
 * The mean-field phase diagram over (sigma_w^2, sigma_b^2) (Poole et al.
 * 2016, Fig. 2; Schoenholz et al. 2017, Fig. 1): chi_1, the slope of the
 * c-map at c = 1, the regime, c* and q* on a grid, and the critical line
 * (slope 1) traced by root finding.  The regime is classified by the slope
 * of the c-map at c = 1, which is chi_1 where 0 < q* < inf and the slope of
 * the limit map where q* is 0 or infinite (mf_fixed.c, "regime"): on the
 * sb2 = 0 row relu is critical and relu with the weight mean chaotic for
 * every sw2, whatever chi_1 = sw2 / 2 says.
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
 * positive fixed point is unique).  The line, row by row (row_line):
 * between an ordered and a chaotic column, the crossing of slope 1 refined
 * with GSL's Brent solver to |d sw2| <= 1e-12 sw2, the slope evaluated at
 * the tolerance; between an ordered or chaotic column and a critical region
 * (q* 0 or infinite, slope 1 throughout), the region's edge by bisection on
 * the kind of q*; a critical column with a finite q* is itself a point.
 * Where the slope jumps over 1 or onto it instead of reaching it (q*
 * changing kind: the recursion from q0 reaching another basin, or q*
 * becoming infinite) no point is recorded.
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

/* The slope of the c-map at c = 1 of a solved recursion: chi_1 at a finite
 * q*, the limit map's slope otherwise (closed forms). */
static int slope_at_one(ns_mf_work *w, const ns_mf_net *net, const mf_qsol *s, double chi,
                        double *slope1)
{
    double G1;
    *slope1 = chi;
    if (ns_mf_regime_by_of(s->kind) == NS_MF_BY_CHI1)
        return NS_OK;
    return mf_cmap_eval(w, net, s, 1, &G1, slope1);
}

/* One grid point: q*, chi_1, the slope at c = 1 and its kind, c*. */
typedef struct cell {
    double chi, slope1, cstar, qstar;
    ns_mf_regime_by by;
} cell;

static int grid_point(ns_mf_work *w, const ns_mf_act *act, int wm, double q0, double sw2,
                      double sb2, int *level, size_t *Kh, cell *out)
{
    ns_mf_net net = {*act, sw2, sb2, wm};
    mf_qsol s;
    int st = mf_solve_q(w, &net, q0, level, &s);
    if (st)
        return st;
    out->qstar = s.q;
    out->chi = mf_chi1(&net, &s);
    out->by = ns_mf_regime_by_of(s.kind);
    double slope1, d, *cstar = &out->cstar;
    if ((st = slope_at_one(w, &net, &s, out->chi, &slope1)))
        return st;
    out->slope1 = slope1;
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
        return series_cstar(w, &net, &s, slope1, Kh, cstar, &d);
    }
    mf_cmap_ctx x = {w, &net, &s};
    return mf_cstar(mf_cmap_cb, &x, slope1, cstar, &d);
}

/* ------------------------------------------------------ critical line */

typedef struct line_ctx {
    ns_mf_work *w;
    const ns_mf_act *act;
    int wm, level, st;
    double q0, sb2, tol;
    double edge_rel;   /* bisection width of a critical region's edge */
} line_ctx;

/* The slope of the c-map at c = 1 at (sw2, x->sb2) and whether q* is 0 or
 * infinite there (by may be NULL). */
static int slope_of(line_ctx *x, double sw2, double *slope1, ns_mf_regime_by *by)
{
    ns_mf_net net = {*x->act, sw2, x->sb2, x->wm};
    mf_qsol s;
    int st = mf_solve_q(x->w, &net, x->q0, &x->level, &s);
    if (!st)
        st = slope_at_one(x->w, &net, &s, mf_chi1(&net, &s), slope1);
    if (by)
        *by = ns_mf_regime_by_of(s.kind);
    return st;
}

static double slope_minus_one(double sw2, void *p)
{
    line_ctx *x = p;
    double v;
    if (x->st)
        return NAN;
    x->st = slope_of(x, sw2, &v, NULL);
    return x->st ? NAN : v - 1;
}

/* The crossing of slope 1 between an ordered and a chaotic column. */
static int refine_root(line_ctx *x, double lo, double hi, double *root)
{
    gsl_set_error_handler_off();
    gsl_root_fsolver *sv = gsl_root_fsolver_alloc(gsl_root_fsolver_brent);
    if (!sv)
        return ns_error(NS_ENOMEM, "out of memory for the root finder");
    gsl_function F = {slope_minus_one, x};
    int st = NS_OK;
    /* The grid's slope and this one agree to the tolerance; where a grid
     * value sits within it of 1 the signs may differ, and the end nearer
     * to slope 1 is the root. */
    double flo = slope_minus_one(lo, x), fhi = slope_minus_one(hi, x);
    if (x->st) {
        st = x->st;
        goto done;
    }
    if ((flo < 0) == (fhi < 0) || flo == 0 || fhi == 0) {
        *root = fabs(flo) <= fabs(fhi) ? lo : hi;
        goto done;
    }
    if (gsl_root_fsolver_set(sv, &F, lo, hi) != GSL_SUCCESS) {
        st = x->st ? x->st : ns_error(NS_ENUMERIC, "cannot bracket slope 1 of the c-map in "
                                      "[%g, %g] at sigma_b^2 = %g", lo, hi, x->sb2);
        goto done;
    }
    for (int it = 0; it < 200; it++) {
        int gs = gsl_root_fsolver_iterate(sv);
        if (x->st) {
            st = x->st;
            goto done;
        }
        if (gs != GSL_SUCCESS) {
            st = ns_error(NS_ENUMERIC, "root finding of the critical line failed at "
                          "sigma_b^2 = %g (%s)", x->sb2, gsl_strerror(gs));
            goto done;
        }
        double a = gsl_root_fsolver_x_lower(sv), b = gsl_root_fsolver_x_upper(sv);
        if (gsl_root_test_interval(a, b, 0, 1e-12) == GSL_SUCCESS)
            break;
    }
    *root = gsl_root_fsolver_root(sv);
    /* Where q* changes kind (the recursion from q0 leaves for another basin,
     * or q* becomes infinite) the slope may jump over 1 instead of crossing
     * it: then the ends of the final bracket differ and there is no
     * critical point. */
    double a = gsl_root_fsolver_x_lower(sv), b = gsl_root_fsolver_x_upper(sv);
    double fa = slope_minus_one(a, x), fb = slope_minus_one(b, x);
    if (x->st)
        st = x->st;
    else if (!(fabs(fa - fb) <= 1e-6))
        *root = NAN;
done:
    gsl_root_fsolver_free(sv);
    return st;
}

/* The edge of a critical region (q* 0 or infinite, slope 1) between the
 * columns lo and hi, one in it and one not: bisection on the kind of q*
 * where the two differ in it (the recursion decides the kind sharply where
 * the slope is flat: tanh's chi_1 - 1 grows like (sw2 - 1)^2 above sw2 = 1
 * at sb2 = 0), else on the regime, to |d sw2| <= x->edge_rel sw2.  The
 * slope may approach the region's like a power of the distance (gelu's
 * like its square root, through q* ~ 1 / (2 - sw2)), so the edge is a point
 * of the line where the gap between the slopes at the bracket's ends closes
 * as the bracket shrinks: at most 1e-6 at the end, or a tenth of what it
 * was at |d sw2| = 1e-4 sw2; where it stays open the slope jumps onto 1 or
 * off it (q* changing kind) and there is no point (NaN). */
static int region_edge(line_ctx *x, double lo, double hi, const cell *clo, const cell *chi,
                       double *root)
{
    int use_by = clo->by != chi->by;
    ns_mf_regime r_lo = ns_mf_regime_of(clo->slope1, x->tol);
    double slo = clo->slope1, shi = chi->slope1, gap0 = fabs(slo - shi), v;
    ns_mf_regime_by by;
    int st;
    for (int it = 0; it < 200 && hi - lo > x->edge_rel * hi; it++) {
        double mid = 0.5 * (lo + hi);
        if ((st = slope_of(x, mid, &v, &by)))
            return st;
        if (use_by ? by == clo->by : ns_mf_regime_of(v, x->tol) == r_lo) {
            lo = mid;
            slo = v;
        } else {
            hi = mid;
            shi = v;
        }
        if (hi - lo > 1e-4 * hi)
            gap0 = fabs(slo - shi);
    }
    double gap = fabs(slo - shi);
    *root = gap <= 1e-6 || gap <= 0.1 * gap0 ? 0.5 * (lo + hi) : NAN;
    return NS_OK;
}

/* The line along one row (at most nsw points) into roots, ascending. */
static int row_line(line_ctx *x, const double *sw2, const cell *row, const ns_mf_regime *cls,
                    size_t nsw, double *roots, size_t *nroots)
{
    size_t k = 0;
    for (size_t i = 0; i < nsw && k < nsw; i++) {
        ns_mf_regime a = cls[i];
        if (a == NS_MF_UNDEFINED)
            continue;
        /* a critical column with a finite q* next to an ordered or chaotic
         * one lies on the line */
        if (a == NS_MF_CRITICAL && row[i].by == NS_MF_BY_CHI1) {
            int left = i > 0 && cls[i - 1] != NS_MF_CRITICAL && cls[i - 1] != NS_MF_UNDEFINED;
            int right = i + 1 < nsw && cls[i + 1] != NS_MF_CRITICAL &&
                        cls[i + 1] != NS_MF_UNDEFINED;
            if (left || right)
                roots[k++] = sw2[i];
            continue;
        }
        if (i + 1 == nsw)
            continue;
        ns_mf_regime b = cls[i + 1];
        if (b == NS_MF_UNDEFINED || b == a)
            continue;
        if (b == NS_MF_CRITICAL && row[i + 1].by == NS_MF_BY_CHI1)
            continue; /* the next column is a point itself */
        int st;
        if (a == NS_MF_CRITICAL || b == NS_MF_CRITICAL) /* a region's edge */
            st = region_edge(x, sw2[i], sw2[i + 1], &row[i], &row[i + 1], &roots[k]);
        else                                             /* ordered | chaotic */
            st = refine_root(x, sw2[i], sw2[i + 1], &roots[k]);
        if (st)
            return st;
        k += !isnan(roots[k]);
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
    ns_free(p->slope1);
    ns_free(p->regime);
    ns_free(p->regime_by);
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
    cell *cl = NULL;
    if (!w)
        return ns_errmsg()[0] ? NS_EINVAL : NS_ENOMEM;
    out->nsw = nsw;
    out->nsb = nsb;
    out->sw2 = ns_malloc(nsw * sizeof *out->sw2);
    out->sb2 = ns_malloc(nsb * sizeof *out->sb2);
    out->chi1 = ns_malloc(cells * sizeof *out->chi1);
    out->slope1 = ns_malloc(cells * sizeof *out->slope1);
    out->regime = ns_malloc(cells * sizeof *out->regime);
    out->regime_by = ns_malloc(cells * sizeof *out->regime_by);
    out->cstar = ns_malloc(cells * sizeof *out->cstar);
    out->qstar = ns_malloc(cells * sizeof *out->qstar);
    roots = ns_malloc(cells * sizeof *roots);
    nroots = ns_calloc(nsb, sizeof *nroots);
    cl = ns_malloc(cells * sizeof *cl);
    if (!out->sw2 || !out->sb2 || !out->chi1 || !out->slope1 || !out->regime ||
        !out->regime_by || !out->cstar || !out->qstar || !roots || !nroots || !cl) {
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

    /* Edges of critical regions to 1e-12 sw2, but 1e-8 sw2 for gelu, swish
     * and softplus: near the edge of their q* = inf region q* ~ 1 / (2 -
     * sw2) and their q recursion crawls (f' > 1 at moderate q), at tenths
     * of a second per point within 1e-9 of the edge. */
    double edge_rel = a.kind == NS_MF_GELU || a.kind == NS_MF_SWISH ||
                      a.kind == NS_MF_SOFTPLUS ? 1e-8 : 1e-12;
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
            size_t r0 = j * nsw;
            double qs = q0, *qrow = out->qstar + r0;
            cell *row = cl + r0;
            for (size_t i = 0; i < nsw && !mine; i++) {
                mine = grid_point(&v, &a, weight_mean, qs, out->sw2[i], out->sb2[j], &level,
                                  &K, &row[i]);
                out->chi1[r0 + i] = row[i].chi;
                out->slope1[r0 + i] = row[i].slope1;
                out->regime[r0 + i] = ns_mf_regime_of(row[i].slope1, tol);
                out->regime_by[r0 + i] = row[i].by;
                out->cstar[r0 + i] = row[i].cstar;
                qrow[i] = row[i].qstar;
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
                line_ctx x = {&v, &a, weight_mean, level, NS_OK, q0, out->sb2[j], tol,
                              edge_rel};
                mine = row_line(&x, out->sw2, row, out->regime + r0, nsw, roots + r0,
                                &nroots[j]);
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
    ns_free(cl);
    ns_mf_work_free(w);
    if (st)
        ns_mf_phase_release(out);
    return st;
}
