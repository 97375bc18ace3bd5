/*
 * BLAS and thread glue.  OpenBLAS runs single-threaded; normscope splits a
 * GEMM's output into one slab per OpenMP thread itself.  That keeps the
 * result a function of the thread count only (deterministic runs, bit-for-bit
 * resume) and lets layers call ns_gemm1 inside their own parallel loops
 * without oversubscription.
 */
#include "normscope/core.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

static int nthreads;

void ns_set_threads(int n)
{
    if (n <= 0) {
        const char *e = getenv("OMP_NUM_THREADS");
        n = e ? atoi(e) : 0;
        if (n <= 0)
            n = omp_get_num_procs();
    }
    nthreads = n;
    openblas_set_num_threads(1);
    omp_set_num_threads(n);
}

int ns_get_threads(void)
{
    if (nthreads == 0)
        ns_set_threads(0);
    return nthreads;
}

void ns_gemm1(int transa, int transb, size_t m, size_t n, size_t k,
              ns_real alpha, const ns_real *a, size_t lda,
              const ns_real *b, size_t ldb, ns_real beta,
              ns_real *c, size_t ldc)
{
    if (m == 0 || n == 0)
        return;
#ifdef NS_DOUBLE
    cblas_dgemm(CblasRowMajor, transa ? CblasTrans : CblasNoTrans,
                transb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
                alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
#else
    cblas_sgemm(CblasRowMajor, transa ? CblasTrans : CblasNoTrans,
                transb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
                alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
#endif
}

void ns_gemm(int transa, int transb, size_t m, size_t n, size_t k,
             ns_real alpha, const ns_real *a, size_t lda,
             const ns_real *b, size_t ldb, ns_real beta,
             ns_real *c, size_t ldc)
{
    int t = ns_get_threads();
    /* Below ~2 MFLOP a second thread costs more than it saves. */
    if (t <= 1 || (double)m * n * k < 1e6 || omp_in_parallel()) {
        ns_gemm1(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    int split_rows = m >= n;
    size_t len = split_rows ? m : n;
    if ((size_t)t > len)
        t = (int)len;
#pragma omp parallel num_threads(t)
    {
        int id = omp_get_thread_num();
        size_t lo = len * (size_t)id / (size_t)t;
        size_t hi = len * (size_t)(id + 1) / (size_t)t;
        if (split_rows) {
            const ns_real *ai = transa ? a + lo : a + lo * lda;
            ns_gemm1(transa, transb, hi - lo, n, k, alpha, ai, lda, b, ldb,
                     beta, c + lo * ldc, ldc);
        } else {
            const ns_real *bi = transb ? b + lo * ldb : b + lo;
            ns_gemm1(transa, transb, m, hi - lo, k, alpha, a, lda, bi, ldb,
                     beta, c + lo, ldc);
        }
    }
}
