/*
 * Statistics of activations and weights (include/normscope/actstats.h):
 * covariance by shifted chunked sums, whitening metrics from LAPACK
 * spectra, the cosine Gram on its smaller side, quantiles by selection, and
 * the power-law fit of Clauset, Shalizi and Newman (2009).
 */
#include "normscope/actstats.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "normscope/eig.h"

const double ns_channel_probs[NS_NQUANT] = {0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99};

/* ------------------------------------------------------- covariance */

enum { COV_CHUNK = 256 };

int ns_cov_acc_init(ns_cov_acc *a, size_t F)
{
    memset(a, 0, sizeof *a);
    if (F == 0 || F > (size_t)1 << 15)
        return ns_error(NS_EINVAL, "a covariance of %zu features (1 to 32768)", F);
    a->F = F;
    a->bufrows = COV_CHUNK;
    a->shift = calloc(F, sizeof *a->shift);
    a->sum = calloc(F, sizeof *a->sum);
    a->cross = calloc(F * F, sizeof *a->cross);
    a->buf = malloc(a->bufrows * F * sizeof *a->buf);
    if (!a->shift || !a->sum || !a->cross || !a->buf) {
        ns_cov_acc_free(a);
        return ns_error(NS_ENOMEM, "out of memory for a %zu x %zu covariance", F, F);
    }
    return NS_OK;
}

void ns_cov_acc_free(ns_cov_acc *a)
{
    free(a->shift);
    free(a->sum);
    free(a->cross);
    free(a->buf);
    memset(a, 0, sizeof *a);
}

int ns_cov_acc_add(ns_cov_acc *a, const double *X, size_t m, size_t ld)
{
    size_t F = a->F;
    if (m == 0)
        return NS_OK;
    if (a->n == 0) {
        for (size_t i = 0; i < m; i++)
            for (size_t f = 0; f < F; f++)
                a->shift[f] += X[i * ld + f];
        for (size_t f = 0; f < F; f++)
            a->shift[f] /= (double)m;
    }
    for (size_t i0 = 0; i0 < m; i0 += a->bufrows) {
        size_t r = m - i0 < a->bufrows ? m - i0 : a->bufrows;
        for (size_t i = 0; i < r; i++) {
            const double *x = X + (i0 + i) * ld;
            double *b = a->buf + i * F;
            for (size_t f = 0; f < F; f++) {
                b[f] = x[f] - a->shift[f];
                a->sum[f] += b[f];
            }
        }
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)F, (int)r, 1.0, a->buf,
                    (int)F, 1.0, a->cross, (int)F);
    }
    a->n += m;
    return NS_OK;
}

int ns_cov_acc_result(const ns_cov_acc *a, double *mean, double *cov)
{
    size_t F = a->F;
    if (a->n < 2)
        return ns_error(NS_EINVAL, "a covariance needs two observations or more, got %zu",
                        a->n);
    double n = (double)a->n;
    for (size_t i = 0; i < F; i++) {
        double mi = a->sum[i] / n;
        if (mean)
            mean[i] = a->shift[i] + mi;
        for (size_t j = i; j < F; j++) {
            double c = (a->cross[i * F + j] - n * mi * (a->sum[j] / n)) / (n - 1);
            cov[i * F + j] = cov[j * F + i] = c;
        }
    }
    return NS_OK;
}

/* ---------------------------------------------------------- whitening */

void ns_spectrum_measures(const double *eval, size_t F, double *cond, double *eff_rank,
                          double *pr)
{
    double lmax = -INFINITY, lmin = INFINITY, s = 0, s2 = 0;
    for (size_t i = 0; i < F; i++) {
        double l = eval[i] > 0 ? eval[i] : 0;
        lmax = fmax(lmax, eval[i]);
        lmin = fmin(lmin, eval[i]);
        s += l;
        s2 += l * l;
    }
    double h = 0;
    for (size_t i = 0; i < F && s > 0; i++) {
        double p = (eval[i] > 0 ? eval[i] : 0) / s;
        if (p > 0)
            h -= p * log(p);
    }
    if (cond)
        *cond = lmax > 0 ? lmax / fmax(lmin, NS_COND_FLOOR * lmax) : NAN;
    if (eff_rank)
        *eff_rank = s > 0 ? exp(h) : 0;
    if (pr)
        *pr = s2 > 0 ? s * s / s2 : 0;
}

int ns_whitening_of(const double *cov, size_t F, double *cov_eval, double *corr_eval,
                    ns_whitening *w)
{
    double *a = malloc(F * F * sizeof *a), *ev = malloc(F * sizeof *ev);
    double *isd = malloc(F * sizeof *isd);
    int st = NS_OK;
    if (!a || !ev || !isd) {
        st = ns_error(NS_ENOMEM, "out of memory for a %zu x %zu covariance", F, F);
        goto done;
    }
    memcpy(a, cov, F * F * sizeof *a);
    if ((st = ns_eig_sym(a, F, ev)))
        goto done;
    ns_spectrum_measures(ev, F, &w->condition_number, &w->effective_rank,
                         &w->participation_ratio);
    if (cov_eval)
        memcpy(cov_eval, ev, F * sizeof *ev);
    /* R = D^-1/2 C D^-1/2; dead features: identity rows. */
    for (size_t i = 0; i < F; i++)
        isd[i] = cov[i * F + i] > 0 ? 1 / sqrt(cov[i * F + i]) : 0;
    double sabs = 0, s2 = 0;
    for (size_t i = 0; i < F; i++)
        for (size_t j = 0; j < F; j++) {
            double r = i == j ? 1 : cov[i * F + j] * isd[i] * isd[j];
            a[i * F + j] = r;
            if (i != j) {
                sabs += fabs(r);
                s2 += r * r;
            }
        }
    double pairs = (double)F * (double)(F - 1);
    w->mean_abs_corr = F > 1 ? sabs / pairs : 0;
    w->corr_identity_distance = F > 1 ? sqrt(s2 / pairs) : 0;
    if (corr_eval)
        st = ns_eig_sym(a, F, corr_eval);
done:
    free(a);
    free(ev);
    free(isd);
    return st;
}

/* ---------------------------------------------------- the sample side */

enum { GRAM_BLOCK = 512 };

/* Eigenvalues of the Gram matrix of the rows of X (n x D, doubles or
 * floats) scaled by inv[i], on its smaller side, descending into eval (n
 * values; those beyond min(n, D) are 0).  X is read in blocks of columns
 * (or rows) converted to double, so no copy of it is made. */
static int gram_eig(const void *X, int f32, size_t n, size_t D, const double *inv,
                    double *eval)
{
    const double *xd = X;
    const float *xf = X;
    int small_n = n <= D;
    size_t k = small_n ? n : D;
    double *g = calloc(k * k, sizeof *g);
    double *blk = malloc(GRAM_BLOCK * (small_n ? n : D) * sizeof *blk);
    int st = NS_OK;
    if (!g || !blk) {
        st = ns_error(NS_ENOMEM, "out of memory for a cosine Gram of %zu samples", n);
        goto done;
    }
    if (small_n) {
        /* G = sum over column blocks of Xb Xb^T */
        for (size_t d0 = 0; d0 < D; d0 += GRAM_BLOCK) {
            size_t w = D - d0 < GRAM_BLOCK ? D - d0 : GRAM_BLOCK;
            for (size_t i = 0; i < n; i++)
                for (size_t d = 0; d < w; d++)
                    blk[i * w + d] = (f32 ? (double)xf[i * D + d0 + d] : xd[i * D + d0 + d]) *
                                     inv[i];
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)n, (int)w, 1.0, blk,
                        (int)w, 1.0, g, (int)n);
        }
    } else {
        /* M = sum over row blocks of Xb^T Xb: the same nonzero eigenvalues */
        for (size_t i0 = 0; i0 < n; i0 += GRAM_BLOCK) {
            size_t r = n - i0 < GRAM_BLOCK ? n - i0 : GRAM_BLOCK;
            for (size_t i = 0; i < r; i++)
                for (size_t d = 0; d < D; d++)
                    blk[i * D + d] = (f32 ? (double)xf[(i0 + i) * D + d]
                                          : xd[(i0 + i) * D + d]) * inv[i0 + i];
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)D, (int)r, 1.0, blk,
                        (int)D, 1.0, g, (int)D);
        }
    }
    for (size_t i = 0; i < k; i++)       /* dsyevd reads the upper triangle */
        for (size_t j = 0; j < i; j++)
            g[i * k + j] = g[j * k + i];
    if ((st = ns_eig_sym(g, k, eval)))
        goto done;
    for (size_t i = k; i < n; i++)
        eval[i] = 0;
done:
    free(g);
    free(blk);
    return st;
}

/* 1 / ||x_i|| (0 for a zero row) into inv; returns the nonzero rows. */
static size_t inv_norms(const void *X, int f32, size_t n, size_t D, double *inv)
{
    const double *xd = X;
    const float *xf = X;
    size_t nz = 0;
    for (size_t i = 0; i < n; i++) {
        double q = 0;
        for (size_t d = 0; d < D; d++) {
            double v = f32 ? (double)xf[i * D + d] : xd[i * D + d];
            q += v * v;
        }
        inv[i] = q > 0 ? 1 / sqrt(q) : 0;
        nz += q > 0;
    }
    return nz;
}

int ns_cosine_gram(const double *X, size_t n, size_t D, double *mean_cos, double *eval)
{
    if (n < 2 || D == 0)
        return ns_error(NS_EINVAL, "a cosine Gram needs two samples or more of at least one "
                        "value (got %zu of %zu)", n, D);
    double *inv = malloc(n * sizeof *inv), *s = calloc(D, sizeof *s);
    int st = NS_OK;
    if (!inv || !s) {
        st = ns_error(NS_ENOMEM, "out of memory for a cosine Gram of %zu samples", n);
        goto done;
    }
    size_t nz = inv_norms(X, 0, n, D, inv);
    for (size_t i = 0; i < n; i++)
        for (size_t d = 0; d < D; d++)
            s[d] += X[i * D + d] * inv[i];
    double ss = 0;
    for (size_t d = 0; d < D; d++)
        ss += s[d] * s[d];
    /* ||sum_i xhat_i||^2 = sum_ij cos_ij = nz + sum_{i != j} cos_ij */
    *mean_cos = (ss - (double)nz) / ((double)n * (double)(n - 1));
    if (eval)
        st = gram_eig(X, 0, n, D, inv, eval);
done:
    free(inv);
    free(s);
    return st;
}

int ns_cosine_gram_eig_f(const float *X, size_t n, size_t D, double *eval)
{
    if (n == 0 || D == 0)
        return ns_error(NS_EINVAL, "a cosine Gram of %zu samples of %zu values", n, D);
    double *inv = malloc(n * sizeof *inv);
    if (!inv)
        return ns_error(NS_ENOMEM, "out of memory for a cosine Gram of %zu samples", n);
    inv_norms(X, 1, n, D, inv);
    int st = gram_eig(X, 1, n, D, inv, eval);
    free(inv);
    return st;
}

/* ------------------------------------------------------ distributions */

static void swap(double *a, double *b)
{
    double t = *a;
    *a = *b;
    *b = t;
}

/* Reorders v[lo..hi] so that v[k] is the value of rank k there, smaller or
 * equal ones before it and larger or equal ones after (Hoare's selection
 * with a median-of-three pivot). */
static void select_k(double *v, size_t lo, size_t hi, size_t k)
{
    while (hi > lo) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < v[lo]) swap(&v[mid], &v[lo]);
        if (v[hi] < v[lo]) swap(&v[hi], &v[lo]);
        if (v[hi] < v[mid]) swap(&v[hi], &v[mid]);
        double p = v[mid];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < p) i++;
            while (v[j] > p) j--;
            if (i <= j) {
                swap(&v[i], &v[j]);
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return;
    }
}

void ns_quantiles(double *v, size_t n, const double *p, size_t np, double *q)
{
    /* With the probabilities ascending, each selection works on what lies
     * above the previous one. */
    size_t lo = 0;
    double last = -1;
    for (size_t t = 0; t < np; t++) {
        double h = (double)(n - 1) * p[t];
        size_t k = (size_t)floor(h);
        if (k > n - 1)
            k = n - 1;
        if (p[t] < last || k < lo)
            lo = 0;
        last = p[t];
        select_k(v, lo, n - 1, k);
        double a = v[k], b = a;
        if (k + 1 < n) {
            b = v[k + 1];
            for (size_t i = k + 2; i < n; i++)
                b = fmin(b, v[i]);
        }
        q[t] = a + (h - (double)k) * (b - a);
        lo = k;
    }
}

/* -------------------------------------------------------------- weights */

int ns_singular_values(double *a, size_t m, size_t n, double *s)
{
    size_t k = m < n ? m : n;
    double *superb = malloc((k > 1 ? k : 2) * sizeof *superb);
    if (!superb)
        return ns_error(NS_ENOMEM, "out of memory for the SVD of a %zu x %zu matrix", m, n);
    lapack_int info = LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', (lapack_int)m, (lapack_int)n,
                                     a, (lapack_int)n, s, NULL, 1, NULL, 1, superb);
    free(superb);
    if (info != 0)
        return ns_error(NS_ENUMERIC, "LAPACK dgesvd failed (info %d) on a %zu x %zu matrix",
                        (int)info, m, n);
    return NS_OK;
}

double ns_stable_rank(const double *s, size_t k)
{
    double f = 0;
    for (size_t i = 0; i < k; i++)
        f += s[i] * s[i];
    return k && s[0] > 0 ? f / (s[0] * s[0]) : 0;
}

static int cmp_asc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int ns_powerlaw_fit(double *x, size_t n, size_t min_tail, ns_powerlaw *fit)
{
    if (min_tail < 2)
        min_tail = 2;
    qsort(x, n, sizeof *x, cmp_asc);
    size_t z = 0;                      /* the positive values are x[z..n-1] */
    while (z < n && !(x[z] > 0))
        z++;
    if (n - z < min_tail)
        return ns_error(NS_EINVAL, "a power-law fit needs %zu positive values, got %zu",
                        min_tail, n - z);
    double *lsum = malloc((n - z + 1) * sizeof *lsum);   /* suffix sums of ln x */
    if (!lsum)
        return ns_error(NS_ENOMEM, "out of memory for a power-law fit of %zu values", n);
    lsum[n - z] = 0;
    for (size_t i = n; i-- > z;)
        lsum[i - z] = lsum[i - z + 1] + log(x[i]);
    fit->ks = INFINITY;
    for (size_t j = z; j + min_tail <= n; j++) {
        if (j > z && x[j] == x[j - 1])
            continue;                  /* each distinct value once */
        double xmin = x[j], t = (double)(n - j);
        double sl = lsum[j - z] - t * log(xmin);
        if (!(sl > 0))
            continue;                  /* a tail of equal values */
        double alpha = 1 + t / sl, d = 0;
        for (size_t i = j; i < n;) {
            size_t e = i;              /* ties: the empirical CDF jumps once */
            while (e + 1 < n && x[e + 1] == x[i])
                e++;
            double f = 1 - pow(x[i] / xmin, 1 - alpha);
            d = fmax(d, fmax(fabs(f - (double)(i - j) / t), fabs(f - (double)(e + 1 - j) / t)));
            i = e + 1;
        }
        if (d < fit->ks) {
            fit->ks = d;
            fit->alpha = alpha;
            fit->xmin = xmin;
            fit->ntail = n - j;
        }
    }
    free(lsum);
    if (!isfinite(fit->ks))
        return ns_error(NS_EINVAL, "no power-law tail: the largest %zu values are equal",
                        min_tail);
    return NS_OK;
}
