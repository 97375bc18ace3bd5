/* Tests of the mean-field module: closed forms against quadrature, the
 * quadrature engine on known integrals, MimicNorm's values, the critical
 * line, a tanh phase-diagram point against an independent trapezoid
 * computation, depth scales, trajectories, the NNGP/NTK recursions against
 * finite-width networks, the BN gradient-explosion rate against a BN-ReLU
 * stack, and every error path. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "normscope/meanfield.h"
#include "normscope/nn.h"
#include "normscope/norm.h"
#include "testutil.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static ns_mf_act act_of(const char *s, int quad)
{
    ns_mf_act a;
    ck_assert_msg(ns_mf_act_parse(s, &a) == NS_OK, "parse '%s': %s", s, ns_errmsg());
    a.quadrature = quad;
    return a;
}

static ns_mf_work *work(double tol)
{
    ns_mf_work *w = ns_mf_work_alloc(tol);
    ck_assert_ptr_nonnull(w);
    return w;
}

#define CLOSE(a, b, tol, what)                                                               \
    ck_assert_msg(fabs((a) - (b)) <= (tol), "%s: %.17g vs %.17g (|diff| %.3g > %.3g)", what, \
                  (double)(a), (double)(b), fabs((double)(a) - (double)(b)), (double)(tol))

static double phi_hat(double c)
{
    return (sqrt(1 - c * c) + (M_PI - acos(c)) * c) / (2 * M_PI);
}

/* ------------------------------------------------------------ activations */

START_TEST(test_act_parse)
{
    ns_mf_act a;
    char buf[64];
    ck_assert_int_eq(ns_mf_act_parse("leaky:0.2", &a), NS_OK);
    ck_assert_int_eq(a.kind, NS_MF_LEAKY);
    CLOSE(a.alpha, 0.2, 0, "leaky slope");
    ns_mf_act_name(&a, buf, sizeof buf);
    ck_assert_str_eq(buf, "leaky:0.2");
    ck_assert_int_eq(ns_mf_act_parse("lrelu", &a), NS_OK);
    CLOSE(a.alpha, 0.01, 0, "default slope");
    static const char *const ok[] = {"relu", "linear", "id", "tanh", "erf", "gelu", "swish",
                                     "silu", "softplus", "sigmoid"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        ck_assert_msg(ns_mf_act_parse(ok[i], &a) == NS_OK, "'%s'", ok[i]);
    ck_assert_int_eq(ns_mf_act_parse("sine", &a), NS_EINVAL);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "unknown activation 'sine'"));
    ck_assert_int_eq(ns_mf_act_parse("leaky:x", &a), NS_EINVAL);
    ck_assert_int_eq(ns_mf_act_parse("tanh:2", &a), NS_EINVAL);
    ck_assert_int_eq(ns_mf_act_parse(NULL, &a), NS_EINVAL);
    /* derivatives against central differences */
    static const char *const all[] = {"relu", "leaky:0.3", "linear", "tanh", "erf", "gelu",
                                      "swish", "softplus", "sigmoid"};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        a = act_of(all[i], 0);
        for (double x = -2.385; x < 3; x += 0.7) {
            double h = 1e-5;
            double d1 = (ns_mf_act_eval(&a, 0, x + h) - ns_mf_act_eval(&a, 0, x - h)) / (2 * h);
            double d2 = (ns_mf_act_eval(&a, 1, x + h) - ns_mf_act_eval(&a, 1, x - h)) / (2 * h);
            CLOSE(ns_mf_act_eval(&a, 1, x), d1, 1e-8, all[i]);
            CLOSE(ns_mf_act_eval(&a, 2, x), d2, 1e-8, all[i]);
        }
    }
}
END_TEST

/* ------------------------------------------- closed forms vs quadrature */

static void compare_forms(const char *name, double tol)
{
    ns_mf_act closed = act_of(name, 0), quad = act_of(name, 1);
    ns_mf_work *w = work(1e-12);
    const double qs[] = {0.0137, 0.4, 1, 2.385, 7.3};
    for (size_t i = 0; i < sizeof qs / sizeof *qs; i++) {
        ns_mf_m1 a, b;
        ck_assert_int_eq(ns_mf_moments1(w, &closed, qs[i], &a), NS_OK);
        ck_assert_int_eq(ns_mf_moments1(w, &quad, qs[i], &b), NS_OK);
        double s = fmax(1, qs[i]);
        CLOSE(b.sq, a.sq, tol * s, "E[phi^2] (q-map)");
        CLOSE(b.dsq, a.dsq, tol, "E[phi'^2] (chi_1)");
        CLOSE(b.mean, a.mean, tol * s, "E[phi]");
        CLOSE(b.dmean, a.dmean, tol, "E[phi']");
        CLOSE(b.dsq_dq, a.dsq_dq, tol, "d E[phi^2] / dq");
        CLOSE(b.dmean_dq, a.dmean_dq, tol / sqrt(qs[i]), "d E[phi] / dq");
    }
    const double pts[][3] = {{1, 1, 0.3}, {0.4, 2.385, -0.77}, {1.3, 0.7, 0.999},
                             {2, 2, -1}, {0.2, 5, 0}, {1, 1, 1}};
    for (size_t i = 0; i < sizeof pts / sizeof *pts; i++) {
        ns_mf_m2 a, b;
        ck_assert_int_eq(ns_mf_moments2(w, &closed, pts[i][0], pts[i][1], pts[i][2], &a), NS_OK);
        ck_assert_int_eq(ns_mf_moments2(w, &quad, pts[i][0], pts[i][1], pts[i][2], &b), NS_OK);
        CLOSE(b.pp, a.pp, tol * fmax(1, sqrt(pts[i][0] * pts[i][1])), "E[phi phi]");
        CLOSE(b.dd, a.dd, tol, "E[phi' phi']");
    }
    ns_mf_work_free(w);
}

START_TEST(test_relu_closed_vs_quadrature)
{
    compare_forms("relu", 1e-10);
    /* the q-map and chi_1 = sigma_w^2 / 2 through the whole machinery */
    ns_mf_work *w = work(1e-12);
    for (int quad = 0; quad < 2; quad++) {
        ns_mf_net net = {act_of("relu", quad), 1.6, 0.23, 0};
        ns_mf_point p;
        ck_assert_int_eq(ns_mf_fixed_point(w, &net, 1, &p), NS_OK);
        CLOSE(p.chi1, 0.8, 1e-10, "relu chi_1 = sw2/2");
        CLOSE(p.qstar, 0.23 / (1 - 0.8), 1e-10, "relu q* = sb2 / (1 - sw2/2)");
        double qn, q2n, cn;
        ck_assert_int_eq(ns_mf_step(w, &net, 1.7, 1.7, 0.3, &qn, &q2n, &cn, NULL), NS_OK);
        CLOSE(qn, 1.6 * 1.7 / 2 + 0.23, 1e-10, "relu q-map");
        CLOSE(cn, (1.6 * 1.7 * phi_hat(0.3) + 0.23) / qn, 1e-10, "relu c-map");
    }
    ns_mf_work_free(w);
}
END_TEST

START_TEST(test_erf_leaky_closed_vs_quadrature)
{
    compare_forms("erf", 1e-10);
    compare_forms("leaky:0.2", 1e-10);
    compare_forms("linear", 1e-10);
    /* leaky relu: chi_1 = sw2 (1 + a^2) / 2, critical at sw2 = 2 / (1 + a^2) */
    ns_mf_work *w = work(1e-12);
    ns_mf_net net = {act_of("leaky:0.2", 0), 2 / 1.04, 0.1, 0};
    ns_mf_point p;
    ck_assert_int_eq(ns_mf_fixed_point(w, &net, 1, &p), NS_OK);
    CLOSE(p.chi1, 1, 1e-14, "leaky chi_1 at 2 / (1 + a^2)");
    ns_mf_work_free(w);
}
END_TEST

/* ------------------------------------------------- quadrature engine */

static double u4(double u, void *p) { (void)p; return u * u * u * u; }
static double cosu(double u, void *p) { (void)p; return cos(u); }
static double absu(double u, void *p) { (void)p; return fabs(u); }
static double u1u2sq(double a, double b, void *p) { (void)p; return a * a * b * b; }
static double relu2(double a, double b, void *p)
{
    (void)p;
    return (a > 0 ? a : 0) * (b > 0 ? b : 0);
}

START_TEST(test_expectations)
{
    ns_mf_work *w = work(1e-12);
    double v;
    ck_assert_int_eq(ns_mf_expect1(w, u4, NULL, 1.7, 0, &v), NS_OK);
    CLOSE(v, 3 * 1.7 * 1.7, 1e-11, "E[u^4] = 3 q^2");
    ck_assert_int_eq(ns_mf_expect1(w, cosu, NULL, 2.385, 0, &v), NS_OK);
    CLOSE(v, exp(-2.385 / 2), 1e-12, "E[cos u] = exp(-q/2)");
    ck_assert_int_eq(ns_mf_expect1(w, absu, NULL, 0.7, 1, &v), NS_OK);
    CLOSE(v, sqrt(2 * 0.7 / M_PI), 1e-12, "E|u| (split at the kink)");
    ck_assert_int_eq(ns_mf_expect2(w, u1u2sq, NULL, 0.8, 1.9, -0.6, 0, &v), NS_OK);
    CLOSE(v, 0.8 * 1.9 * (1 + 2 * 0.36), 1e-11, "E[u1^2 u2^2] = q1 q2 (1 + 2 c^2)");
    ck_assert_int_eq(ns_mf_expect2(w, relu2, NULL, 0.8, 1.9, 0.45, 1, &v), NS_OK);
    CLOSE(v, sqrt(0.8 * 1.9) * phi_hat(0.45), 1e-12, "arc-cosine kernel");
    ck_assert_uint_gt(ns_mf_work_order(w), 0);
    ck_assert_uint_le(ns_mf_work_order(w), NS_MF_ORDER_MAX);
    /* a tolerance the orders cannot reach is an error, not a silent result */
    ns_mf_work *w2 = work(1e-14);
    ns_mf_act t = act_of("tanh", 0);
    ns_mf_m1 m;
    int st = ns_mf_moments1(w2, &t, 400, &m);
    ck_assert_int_eq(st, NS_ENUMERIC);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "did not reach the tolerance"));
    ns_mf_work_free(w2);
    ns_mf_work_free(w);
}
END_TEST

/* ---------------------------------------------------- MimicNorm's values */

START_TEST(test_mimicnorm_values)
{
    ns_mf_work *w = work(1e-12);
    const double chi_wm = 1 / (1 - 1 / M_PI);
    for (int quad = 0; quad < 2; quad++) {
        ns_mf_point p;
        /* plain relu at (2, 0): critical, correlations go to 1 */
        ns_mf_net plain = {act_of("relu", quad), 2, 0, 0};
        ck_assert_int_eq(ns_mf_fixed_point(w, &plain, 1, &p), NS_OK);
        CLOSE(p.chi1, 1, 1e-10, "plain relu chi_1");
        CLOSE(p.cstar, 1, 1e-10, "plain relu c*");
        ck_assert(isinf(p.xi_c) && isinf(p.xi_q));
        /* MimicNorm's init for the weight mean: chi_1 = 1/(1 - 1/pi), c* = 0 */
        ns_mf_net wm = {act_of("relu", quad), 2 * chi_wm, 0, 1};
        ck_assert_int_eq(ns_mf_fixed_point(w, &wm, 1, &p), NS_OK);
        CLOSE(p.chi1, chi_wm, 1e-10, "weight mean chi_1");
        CLOSE(p.slope1, chi_wm, 1e-10, "weight mean slope at c = 1");
        CLOSE(p.cstar, 0, 1e-10, "weight mean c*");
        CLOSE(p.qstar, 1, 1e-10, "weight mean keeps q at MimicNorm's init");
        /* the weight mean at (2, 0): q decays, the c-map is still Tbar */
        wm.sw2 = 2;
        ck_assert_int_eq(ns_mf_fixed_point(w, &wm, 1, &p), NS_OK);
        ck_assert_int_eq(p.qkind, NS_MF_Q_ZERO);
        CLOSE(p.slope1, chi_wm, 1e-10, "Tbar'(1)");
        CLOSE(p.cstar, 0, 1e-10, "Tbar's fixed point");
        /* the dual maps of Figure 4 */
        const double rho[] = {-1, -0.62, 0, 0.385, 0.9, 1};
        double T[6], dT[6], Tb[6];
        ck_assert_int_eq(ns_mf_fixed_point(w, &plain, 1, &p), NS_OK);
        ck_assert_int_eq(ns_mf_cmap(w, &plain, &p, rho, 6, T, dT), NS_OK);
        ck_assert_int_eq(ns_mf_fixed_point(w, &wm, 1, &p), NS_OK);
        ck_assert_int_eq(ns_mf_cmap(w, &wm, &p, rho, 6, Tb, NULL), NS_OK);
        for (int i = 0; i < 6; i++) {
            double ph = phi_hat(rho[i]);
            CLOSE(T[i], 2 * ph, 1e-10, "T = 2 phi_hat");
            CLOSE(dT[i], (M_PI - acos(rho[i])) / M_PI, 1e-10, "T'");
            CLOSE(Tb[i], (ph - phi_hat(0)) / (phi_hat(1) - phi_hat(0)), 1e-10, "Tbar");
        }
    }
    ns_mf_work_free(w);
}
END_TEST

/* --------------------------------------------------------- critical line */

START_TEST(test_critical_line)
{
    ns_mf_work *w = work(1e-10);
    ns_mf_grid g = {0.5, 4, 36, 0, 0.5, 11};
    static const char *const acts[] = {"tanh", "erf", "relu"};
    for (size_t a = 0; a < 3; a++) {
        ns_mf_act act = act_of(acts[a], 0);
        ns_mf_phase ph;
        ck_assert_int_eq(ns_mf_phase_compute(&act, 0, 1, &g, 1e-10, &ph), NS_OK);
        /* one crossing per row; relu's sb2 = 0 row is critical throughout
         * (q* = 0 or inf, the c-map T = 2 phi_hat for every sw2) and has none */
        size_t row0 = a == 2;
        ck_assert_uint_eq(ph.nline, 11 - row0);
        for (size_t k = 0; k < ph.nline; k++) {
            CLOSE(ph.line_sb2[k], ph.sb2[k + row0], 0, "one point per row");
            ns_mf_net net = {act, ph.line_sw2[k], ph.line_sb2[k], 0};
            ns_mf_point p;
            ck_assert_int_eq(ns_mf_fixed_point(w, &net, 1, &p), NS_OK);
            CLOSE(p.chi1, 1, 1e-9, acts[a]);
            CLOSE(p.slope1, 1, 1e-9, acts[a]);
            /* relu: q* is classified infinite where |sw2/2 - 1| <= 1e-12, the
             * edge of the critical region sw2 >= 2 found by bisection */
            if (a == 2)
                CLOSE(ph.line_sw2[k], 2, 1e-11, "relu's critical line sw2 = 2");
        }
        /* the line is sigma_w^2 increasing with sigma_b^2 for tanh and erf */
        for (size_t k = 1; a < 2 && k < ph.nline; k++)
            ck_assert(ph.line_sw2[k] > ph.line_sw2[k - 1]);
        /* ordered (or critical where q* is 0 or inf) left of the line, chaotic
         * (relu: critical, q* = inf) right of it, by the c-map's slope */
        for (size_t j = row0; j < ph.nsb; j++)
            for (size_t i = 0; i < ph.nsw; i++) {
                size_t c = j * ph.nsw + i;
                double x = ph.slope1[c], line = ph.line_sw2[j - row0];
                ns_mf_regime r = ph.regime[c];
                if (fabs(x - 1) < 1e-9)
                    continue;
                if (ph.sw2[i] < line)
                    ck_assert(r == NS_MF_ORDERED ||
                              (r == NS_MF_CRITICAL && ph.regime_by[c] == NS_MF_BY_SLOPE1));
                else
                    ck_assert_int_eq(r, a == 2 ? NS_MF_CRITICAL : NS_MF_CHAOTIC);
            }
        ns_mf_phase_release(&ph);
    }
    ns_mf_work_free(w);
}
END_TEST

/* --------------------- a tanh point against an independent computation */

/* Trapezoid rule on [-12, 12]: for the analytic, Gaussian-decaying
 * integrands here its error is below 1e-15 at h = 0.04 (exponential in 1/h),
 * independent of the Gauss-Hermite and Hermite-series code under test. */
#define TZ 12.0
#define TH 0.04

static double trap_V(double q, double *dsq)
{
    double s = 0, d = 0, sq = sqrt(q);
    for (double z = -TZ; z <= TZ + 1e-9; z += TH) {
        double t = tanh(sq * z), g = exp(-0.5 * z * z);
        s += t * t * g;
        d += (1 - t * t) * (1 - t * t) * g;
    }
    *dsq = d * TH / sqrt(2 * M_PI);
    return s * TH / sqrt(2 * M_PI);
}

static double trap_C(double q, double c)
{
    double s = 0, sq = sqrt(q), r = sqrt(1 - c * c);
    for (double z1 = -TZ; z1 <= TZ + 1e-9; z1 += TH) {
        double inner = 0, a = tanh(sq * z1);
        for (double z2 = -TZ; z2 <= TZ + 1e-9; z2 += TH)
            inner += tanh(sq * (c * z1 + r * z2)) * exp(-0.5 * z2 * z2);
        s += a * inner * exp(-0.5 * z1 * z1);
    }
    return s * TH * TH / (2 * M_PI);
}

START_TEST(test_tanh_point_independent)
{
    const double sw2 = 2.5, sb2 = 0.1;
    /* the grid cell at (2.5, 0.1) of a small phase diagram */
    ns_mf_act act = act_of("tanh", 0);
    ns_mf_grid g = {2, 3, 5, 0, 0.2, 3};
    ns_mf_phase ph;
    ck_assert_int_eq(ns_mf_phase_compute(&act, 0, 1, &g, 1e-10, &ph), NS_OK);
    CLOSE(ph.sw2[2], sw2, 0, "grid axis");
    CLOSE(ph.sb2[1], sb2, 0, "grid axis");
    double q_grid = ph.qstar[1 * 5 + 2], chi_grid = ph.chi1[1 * 5 + 2];
    double c_grid = ph.cstar[1 * 5 + 2];
    ns_mf_phase_release(&ph);

    /* independent: fixed-point iteration with the trapezoid rule */
    double q = 1, dsq = 0;
    for (int it = 0; it < 200; it++)
        q = sw2 * trap_V(q, &dsq) + sb2;
    trap_V(q, &dsq);
    double chi = sw2 * dsq;
    double lo = 0, hi = 0.99; /* C(c) - c > 0 below c*, < 0 above (chi > 1) */
    for (int it = 0; it < 36; it++) {
        double mid = 0.5 * (lo + hi);
        if ((sw2 * trap_C(q, mid) + sb2) / q - mid > 0)
            lo = mid;
        else
            hi = mid;
    }
    double cstar = 0.5 * (lo + hi);
    CLOSE(q_grid, q, 1e-10, "q* (grid vs trapezoid)");
    CLOSE(chi_grid, chi, 1e-10, "chi_1 (grid vs trapezoid)");
    CLOSE(c_grid, cstar, 1e-8, "c* (grid, Hermite series, vs trapezoid)");
    ck_assert(chi > 1.09 && cstar > 0.6 && cstar < 0.7); /* a chaotic point */

    /* and the point computation (tensor-product rule) */
    ns_mf_work *w = work(1e-10);
    ns_mf_net net = {act, sw2, sb2, 0};
    ns_mf_point p;
    ck_assert_int_eq(ns_mf_fixed_point(w, &net, 1, &p), NS_OK);
    CLOSE(p.qstar, q, 1e-10, "q* (point)");
    CLOSE(p.chi1, chi, 1e-10, "chi_1 (point)");
    CLOSE(p.cstar, cstar, 1e-8, "c* (point, tensor product)");
    ck_assert_uint_gt(p.order, 0);
    ns_mf_work_free(w);
}
END_TEST

/* ------------------------------------------------ depth scales, q* kinds */

START_TEST(test_depth_scales)
{
    ns_mf_work *w = work(1e-12);
    ns_mf_point p;
    /* relu, ordered: q and c converge at the rate sw2/2 */
    ns_mf_net relu = {act_of("relu", 0), 1.5, 0.2, 0};
    ck_assert_int_eq(ns_mf_fixed_point(w, &relu, 1, &p), NS_OK);
    CLOSE(p.xi_q, -1 / log(0.75), 1e-12, "relu xi_q");
    CLOSE(p.xi_c, -1 / log(0.75), 1e-12, "relu xi_c (ordered: -1/ln chi_1)");
    /* relu above sw2 = 2: q grows without bound, correlations still go to 1 */
    relu.sw2 = 3;
    ck_assert_int_eq(ns_mf_fixed_point(w, &relu, 1, &p), NS_OK);
    ck_assert_int_eq(p.qkind, NS_MF_Q_INF);
    ck_assert(isinf(p.qstar) && isnan(p.xi_q));
    CLOSE(p.chi1, 1.5, 1e-14, "relu chi_1 = sw2/2 beyond 2");
    CLOSE(p.cstar, 1, 0, "relu c* = 1");
    /* tanh below sw2 = 1 without bias: q -> 0 and c* is undefined */
    ns_mf_net tanh0 = {act_of("tanh", 0), 0.8, 0, 0};
    ck_assert_int_eq(ns_mf_fixed_point(w, &tanh0, 1, &p), NS_OK);
    ck_assert_int_eq(p.qkind, NS_MF_Q_ZERO);
    CLOSE(p.chi1, 0.8, 1e-12, "tanh chi_1 -> sw2 phi'(0)^2");
    CLOSE(p.xi_q, -1 / log(0.8), 1e-9, "tanh xi_q at q* = 0");
    ck_assert(isnan(p.cstar));
    /* tanh ordered: xi_c = -1/ln chi_1 and c* = 1 */
    ns_mf_net ord = {act_of("tanh", 0), 1.5, 0.05, 0};
    ck_assert_int_eq(ns_mf_fixed_point(w, &ord, 1, &p), NS_OK);
    ck_assert(p.chi1 < 1);
    CLOSE(p.cstar, 1, 0, "ordered c*");
    CLOSE(p.xi_c, -1 / log(p.chi1), 1e-9, "ordered xi_c");
    /* tanh chaotic: |c^l - c*| shrinks by the slope at c* per layer, and
     * q^l - q* by the slope of the q-map */
    ns_mf_net ch = {act_of("tanh", 0), 2.5, 0.1, 0};
    ck_assert_int_eq(ns_mf_fixed_point(w, &ch, 1, &p), NS_OK);
    /* deep enough for the linear regime (|c - c*| ~ 1e-5), not so deep that
     * the quadrature's rounding dominates the differences */
    enum { L = 140 };
    double q[L + 1], c[L + 1], chi[L + 1];
    ck_assert_int_eq(ns_mf_trajectory(w, &ch, 1, 0.2, L, q, c, chi, NULL, NULL), NS_OK);
    double r = (c[L] - p.cstar) / (c[L - 1] - p.cstar);
    CLOSE(r, p.cslope, 1e-4, "correlation decay rate exp(-1/xi_c)");
    CLOSE(exp(-1 / p.xi_c), p.cslope, 1e-12, "xi_c definition");
    double rq = (q[8] - p.qstar) / (q[7] - p.qstar);
    CLOSE(rq, p.qslope, 2e-3, "variance decay rate exp(-1/xi_q)");
    CLOSE(chi[L], p.chi1, 1e-9, "chi along the trajectory -> chi_1");
    ns_mf_work_free(w);
}
END_TEST

/* -------------------------------------------------- other activations */

START_TEST(test_other_activations)
{
    ns_mf_work *w = work(1e-10);
    static const char *const acts[] = {"gelu", "swish", "softplus", "sigmoid"};
    for (size_t a = 0; a < 4; a++) {
        ns_mf_net net = {act_of(acts[a], 0), 1.7, 0.1, 0};
        ns_mf_point p;
        ck_assert_int_eq(ns_mf_fixed_point(w, &net, 1, &p), NS_OK);
        ck_assert_int_eq(p.qkind, NS_MF_Q_FINITE);
        /* q* is a fixed point of the step map and chi_1 its c-map slope */
        double qn, q2, cn, slope;
        ck_assert_int_eq(ns_mf_step(w, &net, p.qstar, p.qstar, 1, &qn, &q2, &cn, &slope), NS_OK);
        CLOSE(qn, p.qstar, 1e-9 * p.qstar, acts[a]);
        CLOSE(slope, p.chi1, 1e-8, acts[a]);
        CLOSE(p.cstar, 1, 0, acts[a]); /* all ordered at (1.7, 0.1) */
    }
    /* BN rates: pi/(pi-1) for relu; linear has no explosion */
    double rate;
    ns_mf_act relu = act_of("relu", 0), lin = act_of("linear", 0), rq = act_of("relu", 1);
    ck_assert_int_eq(ns_mf_bn_rate(w, &relu, &rate), NS_OK);
    CLOSE(rate, M_PI / (M_PI - 1), 1e-14, "BN-relu rate");
    ck_assert_int_eq(ns_mf_bn_rate(w, &rq, &rate), NS_OK);
    CLOSE(rate, M_PI / (M_PI - 1), 1e-10, "BN-relu rate by quadrature");
    ck_assert_int_eq(ns_mf_bn_rate(w, &lin, &rate), NS_OK);
    CLOSE(rate, 1, 1e-14, "BN-linear rate");
    ns_mf_work_free(w);
}
END_TEST

/* ------------------------------------------------------ NNGP and NTK */

START_TEST(test_kernel_recursions)
{
    ns_mf_work *w = work(1e-11);
    /* two inputs of equal norm: the kernel layers agree with the trajectory */
    static const char *const acts[] = {"relu", "tanh", "erf"};
    for (size_t a = 0; a < 3; a++)
        for (int wm = 0; wm < 2; wm++) {
            ns_mf_net net = {act_of(acts[a], 0), 1.9, 0.07, wm ? NS_MF_WM_HIDDEN | NS_MF_WM_READOUT
                                                               : 0};
            double G[4] = {1.3, 0.5, 0.5, 1.3};
            enum { D = 6 };
            double K[D * 4], T[D * 4], q[D], c[D], td[D], to[D];
            ck_assert_int_eq(ns_mf_kernel_layers(w, &net, D, G, 2, NULL, K, T), NS_OK);
            double q0 = net.sw2 * 1.3 + net.sb2, c0 = (net.sw2 * 0.5 + net.sb2) / q0;
            ns_mf_net tn = net;
            tn.weight_mean = wm;
            ck_assert_int_eq(ns_mf_trajectory(w, &tn, q0, c0, D - 1, q, c, NULL, td, to), NS_OK);
            for (int l = 0; l < D; l++) {
                CLOSE(K[l * 4], q[l], 1e-10 * q[l], "NNGP diagonal = q^l");
                CLOSE(K[l * 4 + 1] / K[l * 4], c[l], 1e-10, "NNGP correlation = c^l");
                CLOSE(T[l * 4], td[l], 1e-10 * td[l], "NTK diagonal");
                CLOSE(T[l * 4 + 1], to[l], 1e-10 * td[l], "NTK off-diagonal");
                CLOSE(K[l * 4 + 1], K[l * 4 + 2], 0, "symmetric");
            }
        }
    /* relu depth 2 by hand, NTK parametrisation: Theta^2 = Theta^1 Kdot + K^2 */
    ns_mf_net relu = {act_of("relu", 0), 2, 0.1, 0};
    double G[4] = {1, 0.3, 0.3, 2.385}, K[4], T[4];
    ck_assert_int_eq(ns_mf_kernel(w, &relu, 2, G, 2, NULL, K, T), NS_OK);
    double k11 = 2 + 0.1, k22 = 2 * 2.385 + 0.1, k12 = 0.6 + 0.1, c = k12 / sqrt(k11 * k22);
    double K12 = 2 * sqrt(k11 * k22) * phi_hat(c) + 0.1;
    CLOSE(K[1], K12, 1e-12, "relu NNGP");
    CLOSE(T[1], k12 * 2 * (M_PI - acos(c)) / (2 * M_PI) + K12, 1e-12, "relu NTK");
    /* standard parametrisation: n0 G + 1, then the n_1 R + 1 terms */
    size_t widths[2] = {16, 100};
    ck_assert_int_eq(ns_mf_kernel(w, &relu, 2, G, 2, widths, NULL, T), NS_OK);
    CLOSE(T[1], (16 * 0.3 + 1) * 2 * (M_PI - acos(c)) / (2 * M_PI) +
                100 * sqrt(k11 * k22) * phi_hat(c) + 1, 1e-10, "standard NTK");
    /* condition numbers: an equicorrelated Gram against the closed form */
    enum { N = 5, D2 = 8 };
    double Ge[N * N], cond[D2], Ke[D2 * N * N], Te[D2 * N * N];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            Ge[i * N + j] = i == j ? 1 : 0.4;
    ns_mf_net tanh = {act_of("tanh", 0), 2.5, 0.1, 0};
    ck_assert_int_eq(ns_mf_ntk_cond(w, &tanh, D2, Ge, N, NULL, cond), NS_OK);
    ck_assert_int_eq(ns_mf_kernel_layers(w, &tanh, D2, Ge, N, NULL, Ke, Te), NS_OK);
    for (int l = 0; l < D2; l++)
        CLOSE(cond[l], ns_mf_equicorr_cond(Te[l * N * N], Te[l * N * N + 1], N),
              1e-9 * cond[l], "NTK condition number");
    ck_assert(cond[D2 - 1] < cond[0]); /* chaotic: towards 1 */
    ns_mf_work_free(w);
}
END_TEST

static void fill_gauss(ns_real *x, size_t n, ns_rng *r)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (ns_real)ns_rng_normal(r);
}

static ns_net *mlp(const char *arch, size_t d, size_t nout, size_t batch, double sw2,
                   double sb2, uint64_t seed)
{
    ns_net_opts o;
    ns_net_opts_default(&o);
    o.max_batch = batch;
    ns_net *net = NULL;
    ck_assert_msg(ns_net_build(arch, &o, d, 1, 1, nout, &net) == NS_OK, "%s", ns_errmsg());
    ns_init ini = {NS_INIT_GAUSS, sw2, sb2};
    ns_net_init(net, &ini, seed);
    return net;
}

/* NNGP and NTK (standard parametrisation) of finite-width relu networks
 * initialised like `--init gauss:2,0.1`: the averages over 400 networks of
 * width 128 (per network the kernels fluctuate by 10-30%; the average's
 * error is about 1%, the finite-width bias O(1/width)). */
START_TEST(test_kernel_monte_carlo)
{
    enum { D = 16, N = 4, NETS = 400, NOUT = 4 };
    const size_t W = 128, widths[3] = {D, W, W};
    const double sw2 = 2, sb2 = 0.1;
    ns_rng r;
    ns_rng_seed(&r, 2385, 0);
    ns_real x[N * D];
    fill_gauss(x, N * D, &r);
    double G[N * N];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < D; k++)
                s += (double)x[i * D + k] * x[j * D + k];
            G[i * N + j] = s / D;
        }
    ns_mf_work *w = work(1e-10);
    ns_mf_net relu = {act_of("relu", 0), sw2, sb2, 0};
    double K[N * N], T[N * N], Tntk[N * N], Kmc[N * N] = {0}, Tmc[N * N] = {0};
    ck_assert_int_eq(ns_mf_kernel(w, &relu, 2, G, N, NULL, K, NULL), NS_OK);
    ck_assert_int_eq(ns_mf_kernel(w, &relu, 3, G, N, widths, NULL, T), NS_OK);
    ck_assert_int_eq(ns_mf_kernel(w, &relu, 3, G, N, NULL, NULL, Tntk), NS_OK);
    for (int s = 0; s < NETS; s++) {
        ns_net *net = mlp("fc:128,relu,fc:128,relu,fc:out", D, NOUT, N, sw2, sb2, 21 + s);
        ns_ctx ctx = {NS_MODE_EVAL, 0, 0};
        /* NNGP of the second layer's pre-activations (layer 2 of the net) */
        ck_assert_int_eq(ns_net_forward(net, x, N, &ctx), NS_OK);
        const ns_real *h = net->act[2];
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                double t = 0;
                for (size_t u = 0; u < W; u++)
                    t += (double)h[i * W + u] * h[j * W + u];
                Kmc[i * N + j] += t / W / NETS;
            }
        /* J J^T of each output w.r.t. the raw weights and biases */
        size_t P = net->nparams;
        ns_real *J = malloc(N * P * sizeof *J);
        ck_assert_ptr_nonnull(J);
        for (int k = 0; k < NOUT; k++) {
            ns_real e[NOUT] = {0};
            e[k] = 1;
            for (int i = 0; i < N; i++) {
                ck_assert_int_eq(ns_net_forward(net, x + i * D, 1, &ctx), NS_OK);
                ns_net_zero_grad(net);
                ns_net_backward(net, e);
                memcpy(J + i * P, net->grads, P * sizeof *J);
            }
            for (int i = 0; i < N; i++)
                for (int j = 0; j < N; j++) {
                    double t = 0;
                    for (size_t p = 0; p < P; p++)
                        t += (double)J[i * P + p] * J[j * P + p];
                    Tmc[i * N + j] += t / (NOUT * NETS);
                }
        }
        free(J);
        ns_net_free(net);
    }
    double kmax = 0, kerr = 0, tmax = 0, terr = 0;
    for (int i = 0; i < N * N; i++) {
        kmax = fmax(kmax, fabs(K[i]));
        kerr = fmax(kerr, fabs(Kmc[i] - K[i]));
        tmax = fmax(tmax, fabs(T[i]));
        terr = fmax(terr, fabs(Tmc[i] - T[i]));
    }
    ck_assert_msg(kerr <= 0.04 * kmax, "NNGP: max error %.4g of %.4g", kerr, kmax);
    ck_assert_msg(terr <= 0.04 * tmax, "NTK: max error %.4g of %.4g", terr, tmax);
    /* the NTK parametrisation's kernel is smaller by about the width */
    ck_assert(Tntk[0] < 0.05 * T[0]);
    ns_mf_work_free(w);
}
END_TEST

/* Gradient explosion through BN-relu at initialisation (Yang et al. 2019):
 * squared gradient norms at the pre-BN outputs grow by pi/(pi-1) per layer
 * backwards for a large batch.  Without BN at He init they stay put
 * (chi_1 = 1). */
START_TEST(test_bn_rate_monte_carlo)
{
    enum { D = 64, B = 512, WID = 256, BLOCKS = 14 };
    char arch[1024] = "";
    for (int l = 0; l < BLOCKS; l++)
        strcat(arch, "fc:256,bn,relu,");
    strcat(arch, "fc:out");
    ns_rng r;
    ns_rng_seed(&r, 7, 1);
    ns_real *x = malloc((size_t)B * D * sizeof *x), *dl = malloc((size_t)B * 10 * sizeof *dl);
    ck_assert(x && dl);
    fill_gauss(x, (size_t)B * D, &r);
    fill_gauss(dl, (size_t)B * 10, &r);
    for (int bn = 1; bn >= 0; bn--) {
        char a2[1024];
        snprintf(a2, sizeof a2, "%s", arch);
        if (!bn) { /* drop the bn layers */
            a2[0] = '\0';
            for (int l = 0; l < BLOCKS; l++)
                strcat(a2, "fc:256,relu,");
            strcat(a2, "fc:out");
        }
        ns_net *net = mlp(a2, D, 10, B, 2, 0, 99);
        ns_ctx ctx = {NS_MODE_BATCH, 0, 0};
        ck_assert_int_eq(ns_net_forward(net, x, B, &ctx), NS_OK);
        ns_net_zero_grad(net);
        ns_net_backward(net, dl);
        double norm2[BLOCKS];
        int k = 0;
        for (size_t i = 0; i < net->nlayers && k < BLOCKS; i++) {
            if (strcmp(net->layers[i].ops->kind, "dense") != 0)
                continue;
            double s = 0;
            size_t n = (size_t)B * WID;
            for (size_t u = 0; u < n; u++)
                s += (double)net->dact[i][u] * net->dact[i][u];
            norm2[k++] = s;
        }
        ck_assert_int_eq(k, BLOCKS);
        /* geometric mean of the per-layer ratios away from both ends */
        double rate = pow(norm2[2] / norm2[BLOCKS - 3], 1.0 / (BLOCKS - 5));
        double want = bn ? M_PI / (M_PI - 1) : 1;
        ck_assert_msg(fabs(rate / want - 1) < 0.04, "%s: rate %.4f, theory %.4f",
                      bn ? "BN-relu" : "relu", rate, want);
        ns_net_free(net);
    }
    free(x);
    free(dl);
}
END_TEST

/* ------------------------------------------------------------ regimes */

/* The slope at c = 1 of one exact layer step at (q, q), the independent
 * reference: d c^{l+1} / d c^l = sw2 E[phi'^2] q^l / q^{l+1} (ns_mf_step). */
static double step_slope(ns_mf_work *w, const ns_mf_net *net, double q)
{
    double qn, q2n, cn, slope;
    ck_assert_int_eq(ns_mf_step(w, net, q, q, 1, &qn, &q2n, &cn, &slope), NS_OK);
    return slope;
}

START_TEST(test_regime_weight_mean_relu)
{
    /* MimicNorm's Theorem: relu with the weight mean at (2, 0) is chaotic,
     * the c-map Tbar has slope 1/(1 - 1/pi) at c = 1 and c* = 0, although
     * chi_1 = sw2 E[phi'^2] = 1 (q* = 0: chi_1 does not decide) */
    const double slope_wm = 1 / (1 - 1 / M_PI);
    ns_mf_work *w = work(1e-12);
    for (int quad = 0; quad < 2; quad++) {
        double tol = quad ? 1e-9 : 1e-12; /* quadrature at 1e-12 */
        ns_mf_net net = {act_of("relu", quad), 2, 0, 1};
        ns_mf_point p;
        ck_assert_int_eq(ns_mf_fixed_point(w, &net, 1, &p), NS_OK);
        ck_assert_int_eq(p.qkind, NS_MF_Q_ZERO);
        CLOSE(p.chi1, 1, tol, "chi_1 = sw2 / 2");
        CLOSE(p.slope1, slope_wm, tol, "Tbar'(1) = 1/(1 - 1/pi)");
        ck_assert_int_eq(p.regime, NS_MF_CHAOTIC);
        ck_assert_int_eq(p.regime_by, NS_MF_BY_SLOPE1);
        ck_assert_str_eq(ns_mf_regime_name(p.regime), "chaotic");
        ck_assert_str_eq(ns_mf_regime_by_name(p.regime_by), "c_map_slope");
        CLOSE(p.cstar, 0, tol, "c* = 0");
        /* the exact layer step deep in the network, where q^l -> 0, has the
         * same slope at c = 1: chi_1 q^l / q^{l+1} = 1 / (1 - 1/pi) */
        double q[41];
        ck_assert_int_eq(ns_mf_trajectory(w, &net, 1, 0.5, 40, q, NULL, NULL, NULL, NULL),
                         NS_OK);
        ck_assert(q[40] < 1e-6);
        CLOSE(step_slope(w, &net, q[40]), p.slope1, tol, "layer step slope at c = 1");
        /* and every sw2 on the sb2 = 0 row gives the same verdict (the net is
         * homogeneous: sw2 only rescales the layers) */
        for (double sw2 = 0.7; sw2 < 4.5; sw2 += 1.385) {
            net.sw2 = sw2;
            ck_assert_int_eq(ns_mf_fixed_point(w, &net, 1, &p), NS_OK);
            CLOSE(p.slope1, slope_wm, tol, "Tbar'(1) at any sw2");
            ck_assert_int_eq(p.regime, NS_MF_CHAOTIC);
            CLOSE(p.chi1, sw2 / 2, tol, "chi_1 = sw2 / 2");
        }
    }
    ns_mf_work_free(w);
}
END_TEST

START_TEST(test_regime_finite_uses_chi1)
{
    /* where 0 < q* < inf the slope of the c-map at c = 1 is chi_1: the
     * verdict is chi_1's, and one exact layer step at (q*, q*) agrees */
    ns_mf_work *w = work(1e-11);
    static const struct {
        const char *act;
        double sw2, sb2;
        int wm;
        ns_mf_regime want;
    } pts[] = {
        {"tanh", 2.5, 0.1, 0, NS_MF_CHAOTIC},   {"tanh", 1.5, 0.05, 0, NS_MF_ORDERED},
        {"tanh", 2.385, 0.3, 1, NS_MF_ORDERED}, {"tanh", 3.5, 0.3, 1, NS_MF_CHAOTIC},
        {"erf", 0.9, 0.2, 0, NS_MF_ORDERED},
        {"relu", 1.6, 0.23, 1, NS_MF_ORDERED},  {"relu", 2.6, 0.1, 1, NS_MF_CHAOTIC},
    };
    for (size_t i = 0; i < sizeof pts / sizeof *pts; i++) {
        ns_mf_net net = {act_of(pts[i].act, 0), pts[i].sw2, pts[i].sb2, pts[i].wm};
        ns_mf_point p;
        ck_assert_int_eq(ns_mf_fixed_point(w, &net, 1, &p), NS_OK);
        ck_assert_int_eq(p.qkind, NS_MF_Q_FINITE);
        ck_assert_int_eq(p.regime_by, NS_MF_BY_CHI1);
        ck_assert_str_eq(ns_mf_regime_by_name(p.regime_by), "chi_1");
        CLOSE(p.slope1, p.chi1, 0, pts[i].act);
        CLOSE(step_slope(w, &net, p.qstar), p.chi1, 1e-8, "layer step slope at q*");
        ck_assert_int_eq(p.regime, pts[i].want);
        ck_assert_int_eq(p.regime, ns_mf_regime_of(p.chi1, 1e-11));
    }
    /* relu with the weight mean and a bias: q* = sb2 / (1 - sw2 (1/2 -
     * 1/(2 pi))) is finite, the bias replaces the removed mean at the fixed
     * point and the c-map is T again: critical at sw2 = 2 by chi_1 = 1 */
    ns_mf_net wm = {act_of("relu", 0), 2, 0.1, 1};
    ns_mf_point p;
    ck_assert_int_eq(ns_mf_fixed_point(w, &wm, 1, &p), NS_OK);
    CLOSE(p.qstar, 0.1 * M_PI, 1e-12, "q* = pi sb2");
    ck_assert_int_eq(p.regime_by, NS_MF_BY_CHI1);
    ck_assert_int_eq(p.regime, NS_MF_CRITICAL);
    CLOSE(p.cstar, 1, 0, "c* = 1");
    ns_mf_work_free(w);
}
END_TEST

START_TEST(test_regime_relu_plain)
{
    /* relu without the weight mean and without bias is positively
     * homogeneous: sw2 rescales every layer and the correlation map is
     * T = 2 phi_hat, slope 1 at c = 1, for every sw2.  At sw2 = 2 every q is a
     * fixed point and chi_1 = 1 is that slope (critical by chi_1); below and
     * above, q* is 0 or inf and chi_1 = sw2 / 2 is only the gradients'
     * growth: critical by the c-map's slope, c* = 1. */
    ns_mf_work *w = work(1e-12);
    ns_mf_net net = {act_of("relu", 0), 2, 0, 0};
    ns_mf_point p;
    ck_assert_int_eq(ns_mf_fixed_point(w, &net, 1.3, &p), NS_OK);
    ck_assert_int_eq(p.qkind, NS_MF_Q_ANY);
    CLOSE(p.chi1, 1, 1e-14, "chi_1 at (2, 0)");
    CLOSE(p.slope1, 1, 1e-14, "T'(1)");
    ck_assert_int_eq(p.regime, NS_MF_CRITICAL);
    ck_assert_int_eq(p.regime_by, NS_MF_BY_CHI1);
    CLOSE(p.cstar, 1, 0, "c* at (2, 0)");
    enum { L = 30 };
    double c2[L + 1], c[L + 1], q[L + 1];
    ck_assert_int_eq(ns_mf_trajectory(w, &net, 1, 0.3, L, NULL, c2, NULL, NULL, NULL), NS_OK);
    static const struct {
        double sw2, sb2;
        ns_mf_qkind kind;
    } pts[] = {{1.5, 0, NS_MF_Q_ZERO}, {3.1, 0, NS_MF_Q_INF}, {3, 0.1, NS_MF_Q_INF}};
    for (size_t i = 0; i < 3; i++) {
        net.sw2 = pts[i].sw2;
        net.sb2 = pts[i].sb2;
        ck_assert_int_eq(ns_mf_fixed_point(w, &net, 1, &p), NS_OK);
        ck_assert_int_eq(p.qkind, pts[i].kind);
        CLOSE(p.chi1, pts[i].sw2 / 2, 1e-14, "chi_1 = sw2 / 2");
        CLOSE(p.slope1, 1, 1e-14, "T'(1) = 1");
        ck_assert_int_eq(p.regime, NS_MF_CRITICAL);
        ck_assert_int_eq(p.regime_by, NS_MF_BY_SLOPE1);
        CLOSE(p.cstar, 1, 0, "c* = 1");
        ck_assert_int_eq(ns_mf_trajectory(w, &net, 1, 0.3, L, q, c, NULL, NULL, NULL), NS_OK);
        CLOSE(step_slope(w, &net, q[L]), 1, 1e-3, "layer step slope at c = 1, deep");
        /* without bias the correlations are those of (2, 0), layer by layer */
        for (size_t l = 0; pts[i].sb2 == 0 && l <= L; l++)
            CLOSE(c[l], c2[l], 1e-12, "sw2 does not change the correlations");
    }
    ns_mf_work_free(w);
}
END_TEST

START_TEST(test_phase_regime)
{
    /* the phase grid classifies like the point computation, and by the
     * c-map's slope: relu with the weight mean is chaotic on the whole
     * sb2 = 0 row (including (2, 0), where chi_1 = 1) and has no critical
     * line there; with a bias, ordered below sw2 = 2 and chaotic above */
    const double slope_wm = 1 / (1 - 1 / M_PI);
    ns_mf_act relu = act_of("relu", 0), tanh_a = act_of("tanh", 0);
    ns_mf_grid g = {0.5, 4, 36, 0, 0.5, 6};
    ns_mf_phase ph;
    ck_assert_int_eq(ns_mf_phase_compute(&relu, 1, 1, &g, 1e-10, &ph), NS_OK);
    CLOSE(ph.sw2[15], 2, 0, "grid axis");
    CLOSE(ph.chi1[15], 1, 1e-14, "chi_1 at (2, 0)");
    CLOSE(ph.slope1[15], slope_wm, 1e-14, "slope at (2, 0)");
    ck_assert_int_eq(ph.regime[15], NS_MF_CHAOTIC);
    ck_assert_int_eq(ph.regime_by[15], NS_MF_BY_SLOPE1);
    CLOSE(ph.cstar[15], 0, 1e-12, "c* at (2, 0)");
    for (size_t i = 0; i < ph.nsw; i++)
        ck_assert_int_eq(ph.regime[i], NS_MF_CHAOTIC);
    ck_assert_uint_eq(ph.nline, 5);
    for (size_t k = 0; k < ph.nline; k++) {
        ck_assert(ph.line_sb2[k] > 0);
        CLOSE(ph.line_sw2[k], 2, 1e-12, "weight mean, sb2 > 0: chi_1 = sw2 / 2 = 1");
    }
    /* the grid against the point computation, cell by cell */
    ns_mf_work *w = work(1e-10);
    for (size_t j = 0; j < ph.nsb; j++)
        for (size_t i = 0; i < ph.nsw; i += 5) {
            ns_mf_net net = {relu, ph.sw2[i], ph.sb2[j], 1};
            ns_mf_point p;
            ck_assert_int_eq(ns_mf_fixed_point(w, &net, 1, &p), NS_OK);
            size_t c = j * ph.nsw + i;
            ck_assert_int_eq(ph.regime[c], p.regime);
            ck_assert_int_eq(ph.regime_by[c], p.regime_by);
            CLOSE(ph.slope1[c], p.slope1, 1e-12, "slope1, grid vs point");
        }
    ns_mf_phase_release(&ph);

    /* tanh at sb2 = 0: q* = 0 below sw2 = 1, the limit map the identity
     * (critical by the slope, chi_1 = sw2 < 1 does not decide); the line
     * meets the row at the region's edge sw2 = 1 */
    ns_mf_grid g2 = {0.5, 2.4, 20, 0, 0, 1};
    ck_assert_int_eq(ns_mf_phase_compute(&tanh_a, 0, 1, &g2, 1e-10, &ph), NS_OK);
    for (size_t i = 0; i < ph.nsw; i++) {
        if (ph.sw2[i] < 1) {
            ck_assert_int_eq(ph.regime[i], NS_MF_CRITICAL);
            ck_assert_int_eq(ph.regime_by[i], NS_MF_BY_SLOPE1);
            CLOSE(ph.chi1[i], ph.sw2[i], 1e-10, "tanh chi_1 as q -> 0");
            ck_assert(isnan(ph.cstar[i]));
        } else if (ph.sw2[i] > 1.05) {
            ck_assert_int_eq(ph.regime[i], NS_MF_CHAOTIC);
            ck_assert_int_eq(ph.regime_by[i], NS_MF_BY_CHI1);
        }
    }
    ck_assert_uint_eq(ph.nline, 1);
    CLOSE(ph.line_sw2[0], 1, 1e-11, "tanh: the edge of q* = 0 at sw2 = 1");
    ns_mf_phase_release(&ph);
    ns_mf_work_free(w);
}
END_TEST

/* -------------------------------------------------------------- errors */

START_TEST(test_errors)
{
    ck_assert_ptr_null(ns_mf_work_alloc(0));
    ck_assert_ptr_null(ns_mf_work_alloc(0.5));
    ns_mf_work *w = work(1e-10);
    ns_mf_point p;
    ns_mf_net net = {act_of("tanh", 0), 0, 0.1, 0};
    ck_assert_int_eq(ns_mf_fixed_point(w, &net, 1, &p), NS_EINVAL);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "sigma_w^2 must be a positive number"));
    net.sw2 = -1;
    ck_assert_int_eq(ns_mf_net_check(&net), NS_EINVAL);
    net.sw2 = 1;
    net.sb2 = -0.1;
    ck_assert_int_eq(ns_mf_fixed_point(w, &net, 1, &p), NS_EINVAL);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "sigma_b^2"));
    net.sb2 = NAN;
    ck_assert_int_eq(ns_mf_net_check(&net), NS_EINVAL);
    net.sb2 = 0.1;
    ck_assert_int_eq(ns_mf_fixed_point(w, &net, 0, &p), NS_EINVAL);
    double q[3];
    ck_assert_int_eq(ns_mf_trajectory(w, &net, 1, 1.5, 2, q, NULL, NULL, NULL, NULL), NS_EINVAL);
    ns_mf_m1 m1;
    ns_mf_m2 m2;
    ck_assert_int_eq(ns_mf_moments1(w, &net.act, -1, &m1), NS_EINVAL);
    ck_assert_int_eq(ns_mf_moments2(w, &net.act, 1, 1, 1.5, &m2), NS_EINVAL);
    double G[4] = {1, 0.5, 0.4, 1}, K[4];
    ck_assert_int_eq(ns_mf_kernel(w, &net, 2, G, 2, NULL, K, NULL), NS_EINVAL);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "not symmetric"));
    G[2] = 0.5;
    ck_assert_int_eq(ns_mf_kernel(w, &net, 0, G, 2, NULL, K, NULL), NS_EINVAL);
    G[0] = -1;
    ck_assert_int_eq(ns_mf_kernel(w, &net, 2, G, 2, NULL, K, NULL), NS_EINVAL);
    /* grids */
    ns_mf_grid g;
    ck_assert_int_eq(ns_mf_grid_parse("0.5:4:0,0:0.5:10", &g), NS_EINVAL);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "no points"));
    ck_assert_int_eq(ns_mf_grid_parse("4:0.5:10,0:0.5:10", &g), NS_EINVAL);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "no points"));
    ck_assert_int_eq(ns_mf_grid_parse("0:4:10,0:0.5:10", &g), NS_EINVAL);
    ck_assert_int_eq(ns_mf_grid_parse("1:4:10,-1:0.5:10", &g), NS_EINVAL);
    ck_assert_int_eq(ns_mf_grid_parse("1:4:10", &g), NS_EINVAL);
    ck_assert_int_eq(ns_mf_grid_parse("1:4:x,0:1:2", &g), NS_EINVAL);
    ck_assert_int_eq(ns_mf_grid_parse("1:4:-3,0:1:2", &g), NS_EINVAL);
    ck_assert_int_eq(ns_mf_grid_parse("0.5:4:3,0:0.5:1", &g), NS_OK);
    CLOSE(ns_mf_grid_at(0.5, 4, 3, 2), 4, 0, "grid end");
    CLOSE(ns_mf_grid_at(0, 0.5, 1, 0), 0, 0, "single point");
    ns_mf_phase ph;
    g.nsb = 0;
    ns_mf_act a = act_of("relu", 0);
    ck_assert_int_eq(ns_mf_phase_compute(&a, 0, 1, &g, 1e-10, &ph), NS_EINVAL);
    ns_mf_work_free(w);
    ns_mf_work_free(NULL);
    ns_mf_phase_release(NULL);
}
END_TEST

int main(void)
{
    ns_set_threads(2);
    Suite *s = suite_create("meanfield");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_act_parse);
    tcase_add_test(tc, test_relu_closed_vs_quadrature);
    tcase_add_test(tc, test_erf_leaky_closed_vs_quadrature);
    tcase_add_test(tc, test_expectations);
    tcase_add_test(tc, test_mimicnorm_values);
    tcase_add_test(tc, test_critical_line);
    tcase_add_test(tc, test_regime_weight_mean_relu);
    tcase_add_test(tc, test_regime_finite_uses_chi1);
    tcase_add_test(tc, test_regime_relu_plain);
    tcase_add_test(tc, test_phase_regime);
    tcase_add_test(tc, test_tanh_point_independent);
    tcase_add_test(tc, test_depth_scales);
    tcase_add_test(tc, test_other_activations);
    tcase_add_test(tc, test_kernel_recursions);
    tcase_add_test(tc, test_kernel_monte_carlo);
    tcase_add_test(tc, test_bn_rate_monte_carlo);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return ns_test_run(s);
}
