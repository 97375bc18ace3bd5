/*
 * Eigenvalues of symmetric matrices and operators: LAPACK for a matrix in
 * memory, ARPACK's implicitly restarted Lanczos for the extreme eigenvalues
 * of an operator given by its matrix-vector products (a kernel in memory,
 * or one read back from a file: ns_h5_matvec in io.h).  Used by the NTK and
 * by every analysis that needs a spectrum; no file format in this API.
 */
#ifndef NORMSCOPE_EIG_H
#define NORMSCOPE_EIG_H

#include <stddef.h>

#include "normscope/core.h"

/* All eigenvalues of the symmetric dim x dim row-major matrix a (overwritten)
 * into eval (dim values), in descending order, by LAPACKE_dsyevd.
 * NS_ENUMERIC when LAPACK fails. */
int ns_eig_sym(double *a, size_t dim, double *eval);

/* y = A x for a symmetric operator of size dim (x, y: dim values); returns
 * a status, which ns_eig_arpack passes on. */
typedef int (*ns_matvec_fn)(void *ctx, const double *x, double *y);

/*
 * The k largest (largest = 1) or smallest eigenvalues of a symmetric
 * operator by ARPACK's implicitly restarted Lanczos (dsaupd/dseupd through
 * the reverse-communication interface), sorted descending into eval (k
 * values).  *nmatvec (may be NULL) gets the number of products.  tol is
 * ARPACK's relative tolerance.  NS_EINVAL unless 0 < k < dim, NS_ENOMEM,
 * NS_ENUMERIC when ARPACK reports an error or does not converge, or the
 * status of mv.
 */
int ns_eig_arpack(ns_matvec_fn mv, void *ctx, size_t dim, size_t k, int largest,
                  double tol, double *eval, size_t *nmatvec);

/* A symmetric dim x dim row-major matrix in memory (not owned). */
typedef struct ns_sym_matrix {
    const double *a;
    size_t dim;
} ns_sym_matrix;

/* ns_matvec_fn for a matrix in memory; ctx is a const ns_sym_matrix. */
int ns_matvec_mem(void *ctx, const double *x, double *y);

#endif
