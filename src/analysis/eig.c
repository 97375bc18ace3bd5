/*
 * Eigenvalues of symmetric kernels: LAPACK for matrices in memory, ARPACK's
 * implicitly restarted Lanczos for the extreme eigenvalues of operators
 * given as matrix-vector products (kernels in memory or in an HDF5 data
 * set read in row blocks).
 */
#include "normscope/ntk.h"

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
    const ns_ntk_memsink *m = ctx;
    size_t n = m->dim;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        const double *r = m->k + i * n;
        double s = 0;
        for (size_t j = 0; j < n; j++)
            s += r[j] * x[j];
        y[i] = s;
    }
    return NS_OK;
}

int ns_h5_matvec_init(ns_h5_matvec *m, hid_t dset, size_t dim, size_t mem)
{
    m->dset = dset;
    m->dim = dim;
    hid_t t = H5Dget_type(dset);
    m->single = t >= 0 && H5Tget_class(t) == H5T_FLOAT && H5Tget_size(t) == 4;
    if (t >= 0)
        H5Tclose(t);
    size_t es = m->single ? sizeof(float) : sizeof(double);
    m->rows = mem / (dim * es);
    if (m->rows < 1)
        m->rows = 1;
    if (m->rows > dim)
        m->rows = dim;
    /* Whole chunks per read, and a chunk cache that holds a row of them:
     * without it HDF5 reads a chunk row by row, one system call each. */
    m->cc = 1;
    m->own = H5I_INVALID_HID;
    hid_t cp = H5Dget_create_plist(dset);
    hsize_t ch[2];
    if (cp >= 0 && H5Pget_layout(cp) == H5D_CHUNKED && H5Pget_chunk(cp, 2, ch) == 2) {
        size_t cr = (size_t)ch[0];
        m->cc = (size_t)ch[1];
        if (m->rows > cr)
            m->rows = m->rows / cr * cr;
        size_t nbytes = ((dim + m->cc - 1) / m->cc + 1) * (size_t)ch[0] * (size_t)ch[1] * es;
        hid_t ap = H5Pcreate(H5P_DATASET_ACCESS);
        char name[512];
        hid_t file = H5Iget_file_id(dset);
        if (ap >= 0 && file >= 0 && H5Iget_name(dset, name, sizeof name) > 0 &&
            H5Pset_chunk_cache(ap, 10007, nbytes, 1.0) >= 0)
            m->own = H5Dopen2(file, name, ap);
        if (ap >= 0)
            H5Pclose(ap);
        if (file >= 0)
            H5Fclose(file);
    }
    if (cp >= 0)
        H5Pclose(cp);
    if (m->own >= 0)
        m->dset = m->own;
    m->buf = malloc(m->rows * dim * es);
    if (!m->buf)
        return ns_error(NS_ENOMEM, "out of memory for %zu kernel rows", m->rows);
    return NS_OK;
}

/* Row r of a block of the buffer as double. */
static inline double buf_at(const ns_h5_matvec *m, size_t w, size_t i, size_t j)
{
    return m->single ? (double)((const float *)m->buf)[i * w + j]
                     : ((const double *)m->buf)[i * w + j];
}

int ns_matvec_h5(void *ctx, const double *x, double *y)
{
    ns_h5_matvec *m = ctx;
    size_t n = m->dim;
    hid_t fs = H5Dget_space(m->dset);
    if (fs < 0)
        return ns_error(NS_EIO, "cannot read the kernel data set");
    int st = NS_OK;
    memset(y, 0, n * sizeof *y);
    for (size_t r0 = 0; r0 < n && !st; r0 += m->rows) {
        size_t nr = n - r0 < m->rows ? n - r0 : m->rows;
        /* columns from r0 on when only the upper part is read (from the
         * chunk boundary at or before it; the row products skip the rest) */
        size_t c0 = m->upper ? r0 / m->cc * m->cc : 0, w = n - c0, skip = m->upper ? r0 - c0 : 0;
        hsize_t off[2] = {r0, c0}, cnt[2] = {nr, w};
        hid_t ms = H5Screate_simple(2, cnt, NULL);
        if (ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL) < 0 ||
            H5Dread(m->dset, m->single ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE, ms, fs,
                    H5P_DEFAULT, m->buf) < 0)
            st = ns_error(NS_EIO, "cannot read kernel rows %zu..%zu", r0, r0 + nr);
        if (ms >= 0)
            H5Sclose(ms);
        if (st)
            break;
        /* y[r0 + i] += row i . x[c0..] */
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < nr; i++) {
            double s = 0;
            if (m->single) {
                const float *r = (const float *)m->buf + i * w;
                for (size_t j = skip; j < w; j++)
                    s += (double)r[j] * x[c0 + j];
            } else {
                const double *r = (const double *)m->buf + i * w;
                for (size_t j = skip; j < w; j++)
                    s += r[j] * x[c0 + j];
            }
            y[r0 + i] += s;
        }
        if (!m->upper)
            continue;
        /* the mirror of the blocks right of the diagonal block:
         * y[j] += sum_i K[r0 + i, j] x[r0 + i] for j >= r0 + nr */
        size_t jlo = skip + nr;   /* buffer column of r0 + nr */
#pragma omp parallel
        {
            int nt = omp_get_num_threads(), t = omp_get_thread_num();
            size_t span = w - jlo, a = jlo + span * (size_t)t / (size_t)nt,
                   b = jlo + span * (size_t)(t + 1) / (size_t)nt;
            for (size_t i = 0; i < nr; i++) {
                double xi = x[r0 + i];
                for (size_t j = a; j < b; j++)
                    y[c0 + j] += buf_at(m, w, i, j) * xi;
            }
        }
    }
    H5Sclose(fs);
    return st;
}

void ns_h5_matvec_free(ns_h5_matvec *m)
{
    if (m->own >= 0 && m->buf)
        H5Dclose(m->own);
    m->own = H5I_INVALID_HID;
    free(m->buf);
    m->buf = NULL;
}
