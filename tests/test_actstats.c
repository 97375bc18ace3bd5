/*
 * Statistics of activations and weights (src/analysis/actstats.c): closed
 * forms (identity and rank-one-plus-noise covariances), brute force (the
 * cosine Gram, covariance in two passes, quantiles by sorting), and a
 * power-law fit on Pareto samples of known exponent.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "normscope/actstats.h"
#include "normscope/eig.h"
#include "testutil.h"

static double gauss(ns_rng *r)
{
    return ns_rng_normal(r);
}

START_TEST(test_whitening_identity)
{
    enum { F = 12 };
    double c[F * F] = {0}, ce[F], re[F];
    for (size_t i = 0; i < F; i++)
        c[i * F + i] = 3.5;          /* a multiple of the identity: perfectly whitened */
    ns_whitening w;
    ck_assert_int_eq(ns_whitening_of(c, F, ce, re, &w), NS_OK);
    ck_assert_double_eq_tol(w.condition_number, 1, 1e-12);
    ck_assert_double_eq_tol(w.effective_rank, F, 1e-10);
    ck_assert_double_eq_tol(w.participation_ratio, F, 1e-10);
    ck_assert_double_eq_tol(w.mean_abs_corr, 0, 1e-15);
    ck_assert_double_eq_tol(w.corr_identity_distance, 0, 1e-15);
    for (size_t i = 0; i < F; i++) {
        ck_assert_double_eq_tol(ce[i], 3.5, 1e-12);
        ck_assert_double_eq_tol(re[i], 1, 1e-12);
    }
}
END_TEST

/* C = v v^T + s I: eigenvalues |v|^2 + s once and s (F - 1) times;
 * R_ij = v_i v_j / sqrt((v_i^2 + s)(v_j^2 + s)). */
START_TEST(test_whitening_rank_one)
{
    enum { F = 9 };
    double v[F], c[F * F], ce[F], re[F], s = 0.3, vv = 0;
    for (size_t i = 0; i < F; i++) {
        v[i] = 0.5 + 0.25 * (double)i * (i % 2 ? -1 : 1);
        vv += v[i] * v[i];
    }
    for (size_t i = 0; i < F; i++)
        for (size_t j = 0; j < F; j++)
            c[i * F + j] = v[i] * v[j] + (i == j ? s : 0);
    ns_whitening w;
    ck_assert_int_eq(ns_whitening_of(c, F, ce, re, &w), NS_OK);
    double l1 = vv + s, tot = vv + F * s;
    ck_assert_double_eq_tol(ce[0], l1, 1e-12 * l1);
    for (size_t i = 1; i < F; i++)
        ck_assert_double_eq_tol(ce[i], s, 1e-12 * l1);
    ck_assert_double_eq_tol(w.condition_number, l1 / s, 1e-9 * l1 / s);
    double pr = tot * tot / (l1 * l1 + (F - 1) * s * s);
    ck_assert_double_eq_tol(w.participation_ratio, pr, 1e-10 * pr);
    double p1 = l1 / tot, ps = s / tot;
    double er = exp(-(p1 * log(p1) + (F - 1) * ps * log(ps)));
    ck_assert_double_eq_tol(w.effective_rank, er, 1e-10 * er);
    double sa = 0, s2 = 0;
    for (size_t i = 0; i < F; i++)
        for (size_t j = 0; j < F; j++)
            if (i != j) {
                double r = v[i] * v[j] / sqrt((v[i] * v[i] + s) * (v[j] * v[j] + s));
                sa += fabs(r);
                s2 += r * r;
            }
    ck_assert_double_eq_tol(w.mean_abs_corr, sa / (F * (F - 1)), 1e-12);
    ck_assert_double_eq_tol(w.corr_identity_distance, sqrt(s2 / (F * (F - 1))), 1e-12);
    double tr = 0;                   /* the correlation spectrum sums to F */
    for (size_t i = 0; i < F; i++)
        tr += re[i];
    ck_assert_double_eq_tol(tr, F, 1e-10);
}
END_TEST

/* A dead feature (zero variance) has identity rows in R; a rank-deficient
 * covariance has the floored condition number. */
START_TEST(test_whitening_dead_feature)
{
    double c[9] = {2, 1, 0, 1, 2, 0, 0, 0, 0}, ce[3], re[3];
    ns_whitening w;
    ck_assert_int_eq(ns_whitening_of(c, 3, ce, re, &w), NS_OK);
    ck_assert_double_eq_tol(w.condition_number, 1 / NS_COND_FLOOR, 1e-3 / NS_COND_FLOOR);
    ck_assert_double_eq_tol(w.mean_abs_corr, 2 * 0.5 / 6, 1e-15);
    ck_assert_double_eq_tol(re[0], 1.5, 1e-12);
    ck_assert_double_eq_tol(re[1], 1, 1e-12);
    ck_assert_double_eq_tol(re[2], 0.5, 1e-12);
}
END_TEST

/* Chunked shifted sums against two passes, with a mean far from zero. */
START_TEST(test_cov_acc_two_pass)
{
    enum { N = 1000, F = 7 };
    double *x = malloc(N * F * sizeof *x);
    ns_rng r;
    ns_rng_seed(&r, 11, 0);
    for (size_t i = 0; i < N; i++)
        for (size_t f = 0; f < F; f++)
            x[i * F + f] = 1e6 + 10.0 * (double)f + gauss(&r) * (1 + (double)f) +
                           (f ? 0.5 * x[i * F] - 5e5 : 0);
    ns_cov_acc a;
    ck_assert_int_eq(ns_cov_acc_init(&a, F), NS_OK);
    size_t cuts[] = {0, 3, 300, 301, 700, N};
    for (size_t k = 0; k + 1 < sizeof cuts / sizeof *cuts; k++)
        ck_assert_int_eq(ns_cov_acc_add(&a, x + cuts[k] * F, cuts[k + 1] - cuts[k], F), NS_OK);
    double mean[F], cov[F * F], m2[F] = {0};
    ck_assert_int_eq(ns_cov_acc_result(&a, mean, cov), NS_OK);
    for (size_t i = 0; i < N; i++)
        for (size_t f = 0; f < F; f++)
            m2[f] += x[i * F + f] / N;
    for (size_t f = 0; f < F; f++) {
        ck_assert_double_eq_tol(mean[f], m2[f], 1e-9 * fabs(m2[f]));
        for (size_t g = 0; g < F; g++) {
            double s = 0;
            for (size_t i = 0; i < N; i++)
                s += (x[i * F + f] - m2[f]) * (x[i * F + g] - m2[g]);
            s /= N - 1;
            ck_assert_double_eq_tol(cov[f * F + g], s, 1e-8 * (1 + fabs(s)));
            ck_assert(cov[f * F + g] == cov[g * F + f]);
        }
    }
    ns_cov_acc_free(&a);
    ck_assert_int_eq(ns_cov_acc_init(&a, 2), NS_OK);
    ck_assert_int_eq(ns_cov_acc_add(&a, x, 1, 2), NS_OK);
    ck_assert_int_eq(ns_cov_acc_result(&a, NULL, cov), NS_EINVAL);
    ns_cov_acc_free(&a);
    free(x);
}
END_TEST

static void brute_gram(const double *X, size_t n, size_t D, double *mean, double *ev)
{
    double *g = malloc(n * n * sizeof *g), s = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double d = 0, a = 0, b = 0;
            for (size_t k = 0; k < D; k++) {
                d += X[i * D + k] * X[j * D + k];
                a += X[i * D + k] * X[i * D + k];
                b += X[j * D + k] * X[j * D + k];
            }
            g[i * n + j] = a > 0 && b > 0 ? d / sqrt(a * b) : 0;
            if (i != j)
                s += g[i * n + j];
        }
    *mean = s / (double)(n * (n - 1));
    ck_assert_int_eq(ns_eig_sym(g, n, ev), NS_OK);
    free(g);
}

START_TEST(test_cosine_gram)
{
    size_t shapes[][2] = {{6, 20}, {20, 6}, {8, 8}};
    ns_rng r;
    ns_rng_seed(&r, 5, 0);
    for (size_t t = 0; t < 3; t++) {
        size_t n = shapes[t][0], D = shapes[t][1];
        double *x = malloc(n * D * sizeof *x), *e1 = malloc(n * sizeof *e1);
        double *e2 = malloc(n * sizeof *e2), m1, m2;
        for (size_t i = 0; i < n * D; i++)
            x[i] = 0.3 + gauss(&r);
        memset(x + D, 0, D * sizeof *x);     /* a zero sample */
        ck_assert_int_eq(ns_cosine_gram(x, n, D, &m1, e1), NS_OK);
        brute_gram(x, n, D, &m2, e2);
        ck_assert_double_eq_tol(m1, m2, 1e-12);
        for (size_t i = 0; i < n; i++)
            ck_assert_double_eq_tol(e1[i], e2[i], 1e-10 * e2[0]);
        free(x);
        free(e1);
        free(e2);
    }
    double one[3] = {1, 2, 3}, m;
    ck_assert_int_eq(ns_cosine_gram(one, 1, 3, &m, NULL), NS_EINVAL);
}
END_TEST

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

START_TEST(test_quantiles)
{
    ns_rng r;
    ns_rng_seed(&r, 3, 0);
    size_t sizes[] = {1, 2, 7, 100, 1001};
    for (size_t t = 0; t < 5; t++) {
        size_t n = sizes[t];
        double *v = malloc(n * sizeof *v), *s = malloc(n * sizeof *s), q[NS_NQUANT];
        for (size_t i = 0; i < n; i++)
            v[i] = floor(gauss(&r) * 4) / 4;   /* many ties */
        memcpy(s, v, n * sizeof *v);
        qsort(s, n, sizeof *s, cmp);
        ns_quantiles(v, n, ns_channel_probs, NS_NQUANT, q);
        for (size_t k = 0; k < NS_NQUANT; k++) {
            double h = (double)(n - 1) * ns_channel_probs[k];
            size_t lo = (size_t)floor(h), hi = lo + 1 < n ? lo + 1 : lo;
            double want = s[lo] + (h - (double)lo) * (s[hi] - s[lo]);
            ck_assert_double_eq_tol(q[k], want, 1e-12);
        }
        free(v);
        free(s);
    }
}
END_TEST

START_TEST(test_singular_values)
{
    enum { M = 5, N = 8 };
    double a[M * N], b[M * N], s[M], ata[M * M], ev[M];
    ns_rng r;
    ns_rng_seed(&r, 9, 0);
    for (size_t i = 0; i < M * N; i++)
        a[i] = b[i] = gauss(&r);
    ck_assert_int_eq(ns_singular_values(a, M, N, s), NS_OK);
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < M; j++) {
            double d = 0;
            for (size_t k = 0; k < N; k++)
                d += b[i * N + k] * b[j * N + k];
            ata[i * M + j] = d;
        }
    ck_assert_int_eq(ns_eig_sym(ata, M, ev), NS_OK);
    double f = 0;
    for (size_t i = 0; i < M; i++) {
        ck_assert_double_eq_tol(s[i] * s[i], ev[i], 1e-10 * ev[0]);
        if (i) ck_assert(s[i] <= s[i - 1]);
    }
    for (size_t i = 0; i < M * N; i++)
        f += b[i] * b[i];
    ck_assert_double_eq_tol(ns_stable_rank(s, M), f / ev[0], 1e-10 * f / ev[0]);
}
END_TEST

/* Pareto samples of exponent alpha above xmin = 1, below it a uniform
 * body the fit must cut off: alpha within 0.05 (the bar), xmin
 * near 1. */
START_TEST(test_powerlaw_pareto)
{
    double alphas[] = {2.0, 2.5, 4.0};
    for (size_t t = 0; t < 3; t++) {
        enum { NT = 20000, NB = 5000 };
        double *x = malloc((NT + NB) * sizeof *x);
        ns_rng r;
        ns_rng_seed(&r, 100 + t, 0);
        for (size_t i = 0; i < NT; i++)
            x[i] = pow(1 - ns_rng_uniform(&r), -1 / (alphas[t] - 1));
        for (size_t i = 0; i < NB; i++)
            x[NT + i] = 0.05 + 0.9 * ns_rng_uniform(&r);
        ns_powerlaw p;
        ck_assert_int_eq(ns_powerlaw_fit(x, NT + NB, 50, &p), NS_OK);
        ck_assert_msg(fabs(p.alpha - alphas[t]) < 0.05, "alpha %g, want %g (xmin %g, %zu)",
                      p.alpha, alphas[t], p.xmin, p.ntail);
        /* xmin cuts the uniform body off (KS may place it further out) */
        ck_assert_msg(p.xmin >= 0.95 && p.xmin < 3, "xmin %g", p.xmin);
        ck_assert(p.ks > 0 && p.ks < 0.02);
        ck_assert(p.ntail >= 1000 && p.ntail <= NT);
        free(x);
    }
    double eq[5] = {1, 1, 1, 1, 1};
    ns_powerlaw p;
    ck_assert_int_eq(ns_powerlaw_fit(eq, 5, 2, &p), NS_EINVAL);
    double neg[3] = {-1, 0, 2};
    ck_assert_int_eq(ns_powerlaw_fit(neg, 3, 2, &p), NS_EINVAL);
}
END_TEST

int main(void)
{
    ns_set_threads(2);
    Suite *s = suite_create("actstats");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_whitening_identity);
    tcase_add_test(tc, test_whitening_rank_one);
    tcase_add_test(tc, test_whitening_dead_feature);
    tcase_add_test(tc, test_cov_acc_two_pass);
    tcase_add_test(tc, test_cosine_gram);
    tcase_add_test(tc, test_quantiles);
    tcase_add_test(tc, test_singular_values);
    tcase_add_test(tc, test_powerlaw_pareto);
    suite_add_tcase(s, tc);
    return ns_test_run(s);
}
