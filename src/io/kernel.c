/*
 * Kernels in result files: the NTK sink that writes tiles into a chunked
 * 2-D data set, and matrix-vector products with such a data set read back
 * in row blocks (for ARPACK, include/normscope/eig.h), for kernels larger
 * than memory.
 */
#include "normscope/io.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

int ns_ntk_h5sink_put(void *ctx, size_t r0, size_t c0, size_t nr, size_t nc, const double *tile)
{
    ns_ntk_h5sink *s = ctx;
    const void *src = tile;
    if (s->single) {
        if (s->buf_len < nr * nc) {
            float *b = realloc(s->buf, nr * nc * sizeof *b);
            if (!b)
                return ns_error(NS_ENOMEM, "out of memory writing an NTK tile");
            s->buf = b;
            s->buf_len = nr * nc;
        }
        for (size_t q = 0; q < nr * nc; q++)
            s->buf[q] = (float)tile[q];
        src = s->buf;
    }
    hsize_t off[2] = {r0, c0}, cnt[2] = {nr, nc};
    hid_t fs = H5Dget_space(s->dset);
    hid_t ms = H5Screate_simple(2, cnt, NULL);
    herr_t e = fs < 0 || ms < 0 ? -1 : H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL);
    if (e >= 0)
        e = H5Dwrite(s->dset, s->single ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE, ms, fs,
                     H5P_DEFAULT, src);
    int st = NS_OK;
    if (e < 0) {
        /* Before the next HDF5 call, which clears the reason. */
        char what[96];
        snprintf(what, sizeof what, "NTK tile at (%zu, %zu)", r0, c0);
        st = ns_h5_write_failed(s->dset, what);
    }
    if (ms >= 0)
        H5Sclose(ms);
    if (fs >= 0)
        H5Sclose(fs);
    return st;
}

void ns_ntk_h5sink_free(ns_ntk_h5sink *s)
{
    free(s->buf);
    s->buf = NULL;
    s->buf_len = 0;
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
