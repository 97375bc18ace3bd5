/*
 * Eigenvalues of symmetric matrices (include/normscope/eig.h): LAPACK for
 * matrices in memory, ARPACK's implicitly restarted Lanczos for the extreme
 * eigenvalues of operators given as matrix-vector products.
 */
#include "normscope/eig.h"

#include <arpack/arpack.h>
#include <lapacke.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

int ns_eig_sym(double *a, size_t dim, double *eval)
{
    lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', (lapack_int)dim, a,
                                     (lapack_int)dim, eval);
    if (info != 0)
        return ns_error(NS_ENUMERIC, "LAPACK dsyevd failed (info %d) on a %zu x %zu kernel",
                        (int)info, dim, dim);
    /* ascending -> descending */
    for (size_t i = 0; i < dim / 2; i++) {
        double t = eval[i];
        eval[i] = eval[dim - 1 - i];
        eval[dim - 1 - i] = t;
    }
    return NS_OK;
}

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

int ns_eig_arpack(ns_matvec_fn mv, void *ctx, size_t dim, size_t k, int largest,
                  double tol, double *eval, size_t *nmatvec)
{
    if (k == 0 || k >= dim)
        return ns_error(NS_EINVAL, "ARPACK needs 0 < k < dim (k %zu, dim %zu)", k, dim);
    a_int n = (a_int)dim, nev = (a_int)k;
    a_int ncv = 2 * nev + 1 > 20 ? 2 * nev + 1 : 20;
    if (ncv > n)
        ncv = n;
    a_int lworkl = ncv * (ncv + 8);
    double *resid = malloc((size_t)n * sizeof *resid);
    double *v = malloc((size_t)n * (size_t)ncv * sizeof *v);
    double *workd = malloc(3 * (size_t)n * sizeof *workd);
    double *workl = malloc((size_t)lworkl * sizeof *workl);
    double *d = malloc((size_t)ncv * sizeof *d);
    a_int *select = calloc((size_t)ncv, sizeof *select);
    int st = NS_OK;
    if (!resid || !v || !workd || !workl || !d || !select) {
        st = ns_error(NS_ENOMEM, "out of memory for ARPACK (%zu x %d Lanczos vectors)", dim,
                      (int)ncv);
        goto done;
    }
    a_int iparam[11] = {0}, ipntr[14] = {0}, ido = 0, info = 0;
    iparam[0] = 1;        /* exact shifts */
    iparam[2] = 3000;     /* maximum restarts */
    iparam[6] = 1;        /* standard problem, A x = lambda x */
    const char *which = largest ? "LA" : "SA";
    size_t count = 0;
    for (;;) {
        dsaupd_c(&ido, "I", n, which, nev, tol, resid, ncv, v, n, iparam, ipntr, workd, workl,
                 lworkl, &info);
        if (ido != 1 && ido != -1)
            break;
        if ((st = mv(ctx, workd + ipntr[0] - 1, workd + ipntr[1] - 1)))
            goto done;
        count++;
    }
    if (info < 0 || info == 1) {
        st = ns_error(NS_ENUMERIC, "ARPACK dsaupd failed (info %d) after %zu products", (int)info,
                      count);
        goto done;
    }
    dseupd_c(0, "A", select, d, NULL, n, 0, "I", n, which, nev, tol, resid, ncv, v, n, iparam,
             ipntr, workd, workl, lworkl, &info);
    if (info != 0) {
        st = ns_error(NS_ENUMERIC, "ARPACK dseupd failed (info %d)", (int)info);
        goto done;
    }
    /* descending (dseupd's order depends on `which`) */
    for (size_t i = 0; i < k; i++)
        eval[i] = d[i];
    qsort(eval, k, sizeof *eval, cmp_desc);
    if (nmatvec)
        *nmatvec = count;
done:
    free(resid);
    free(v);
    free(workd);
    free(workl);
    free(d);
    free(select);
    return st;
}

int ns_matvec_mem(void *ctx, const double *x, double *y)
{
    const ns_sym_matrix *m = ctx;
    size_t n = m->dim;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        const double *r = m->a + i * n;
        double s = 0;
        for (size_t j = 0; j < n; j++)
            s += r[j] * x[j];
        y[i] = s;
    }
    return NS_OK;
}
