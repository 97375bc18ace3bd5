/*
 * Statistics of activations and weights, on plain double arrays: the
 * measures of `normscope spectrum` and the analyses after it (METHODS.md
 * "Measures of the activation, collapse and partition analyses", marked
 * [ours] there: the definitions below are normscope's).  No network, no
 * file format: the analyses feed these functions with what they gather.
 */
#ifndef NORMSCOPE_ACTSTATS_H
#define NORMSCOPE_ACTSTATS_H

#include <stddef.h>

#include "normscope/core.h"

/* ------------------------------------------------------- covariance */

/*
 * Feature covariance accumulated over chunks of observations (rows of F
 * features), in double.  The first chunk's mean is subtracted from every
 * observation before the cross products are summed (a shifted sum: no
 * cancellation when the mean is large against the spread).  The covariance
 * is the unbiased one, divided by n - 1 as numpy.cov.
 */
typedef struct ns_cov_acc {
    size_t F;
    size_t n;            /* observations so far */
    double *shift;       /* F: the first chunk's mean */
    double *sum;         /* F: sum of shifted observations */
    double *cross;       /* F x F: sum of outer products of shifted observations
                          * (upper triangle, row-major, kept by dsyrk) */
    double *buf;         /* a chunk, shifted */
    size_t bufrows;
} ns_cov_acc;

int ns_cov_acc_init(ns_cov_acc *a, size_t F);
/* Adds m observations: X is m x F row-major, row stride ld (>= F). */
int ns_cov_acc_add(ns_cov_acc *a, const double *X, size_t m, size_t ld);
/* The mean (F values, may be NULL) and the covariance (F x F, full
 * symmetric, row-major).  NS_EINVAL with fewer than two observations. */
int ns_cov_acc_result(const ns_cov_acc *a, double *mean, double *cov);
void ns_cov_acc_free(ns_cov_acc *a);

/* ---------------------------------------------------------- whitening */

/* Eigenvalues below this fraction of the largest count as this fraction in
 * the condition number (a rank-deficient covariance has a finite one). */
#define NS_COND_FLOOR 1e-12

typedef struct ns_whitening {
    double condition_number;      /* l_max / max(l_min, NS_COND_FLOOR l_max) */
    double effective_rank;        /* exp(-sum p ln p), p = l / sum l (l < 0 as 0) */
    double participation_ratio;   /* (sum l)^2 / sum l^2 */
    double mean_abs_corr;         /* mean |R_ij| over i != j */
    double corr_identity_distance; /* ||R - I||_F / sqrt(F (F - 1)) */
} ns_whitening;

/*
 * The spectra and whitening metrics of an F x F covariance (not changed):
 * cov_eval and corr_eval (F values each, descending; either may be NULL)
 * get the eigenvalues of the covariance and of the correlation matrix R =
 * D^-1/2 C D^-1/2.  A feature of zero variance has no correlation: its row
 * and column of R are those of the identity (normscope's choice, so that a
 * dead unit neither whitens nor correlates).  With F = 1 the correlation
 * measures are 0.  NS_ENOMEM, NS_ENUMERIC (LAPACK).
 */
int ns_whitening_of(const double *cov, size_t F, double *cov_eval, double *corr_eval,
                    ns_whitening *w);

/* The spectrum measures alone, from eigenvalues in any order. */
void ns_spectrum_measures(const double *eval, size_t F, double *cond, double *eff_rank,
                          double *pr);

/* ---------------------------------------------------- the sample side */

/*
 * Cosine similarity of per-sample feature vectors: X is n x D row-major.
 * *mean_cos gets the mean of cos(x_i, x_j) over i != j; a zero vector has
 * cosine 0 with every other (normscope's choice).  eval (may be NULL) gets
 * the n eigenvalues of the n x n cosine Gram matrix, descending, computed
 * on its smaller side (the Gram's nonzero eigenvalues are those of the
 * D x D matrix Xhat^T Xhat; the rest are 0).  Needs n >= 2.
 */
int ns_cosine_gram(const double *X, size_t n, size_t D, double *mean_cos, double *eval);
/* The Gram eigenvalues alone from rows kept as floats (X is read, not
 * copied: the products are summed in double, block by block).  n >= 1. */
int ns_cosine_gram_eig_f(const float *X, size_t n, size_t D, double *eval);

/* ------------------------------------------------------ distributions */

/* The quantiles of v at the probabilities p[0..np-1] (in [0, 1]), linear
 * between order statistics (numpy's default "linear" method).  v (n > 0
 * values) is reordered. */
void ns_quantiles(double *v, size_t n, const double *p, size_t np, double *q);

/* The probabilities of the per-channel quantiles of `spectrum`. */
#define NS_NQUANT 7
extern const double ns_channel_probs[NS_NQUANT];   /* 1, 5, 25, 50, 75, 95, 99 % */

/* -------------------------------------------------------------- weights */

/* The singular values of the m x n row-major matrix a (overwritten), min(m,
 * n) of them descending, by LAPACKE_dgesvd. */
int ns_singular_values(double *a, size_t m, size_t n, double *s);

/* ||W||_F^2 / ||W||_2^2 from the singular values (descending), k of them. */
double ns_stable_rank(const double *s, size_t k);

/*
 * A power law p(x) ~ x^-alpha on x >= xmin fitted to the values x (n > 0,
 * any order; reordered) by maximum likelihood, alpha = 1 + t / sum ln(x_i /
 * xmin) over the t values >= xmin, with xmin the candidate (every distinct
 * positive value leaving at least min_tail values in the tail) that
 * minimises the Kolmogorov-Smirnov distance between the tail's empirical
 * CDF and the fitted one (Clauset, Shalizi and Newman 2009, section 3).
 * NS_EINVAL when fewer than min_tail (>= 2) positive values exist.
 */
typedef struct ns_powerlaw {
    double alpha, xmin, ks;
    size_t ntail;
} ns_powerlaw;

int ns_powerlaw_fit(double *x, size_t n, size_t min_tail, ns_powerlaw *fit);

#endif
