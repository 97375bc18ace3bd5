/*
 * History tables: one 1-D data set per column under a group, so h5py and
 * gnuplot exports read them column by column.
 */
#include "table.h"

#include <stdlib.h>
#include <string.h>

int ns_table_append(ns_table *t, const double *row, const double *mrow)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 256;
        for (size_t c = 0; c < t->ncols; c++) {
            double *p = realloc(t->col[c], cap * sizeof *p);
            if (!p)
                return ns_error(NS_ENOMEM, "out of memory for the history");
            t->col[c] = p;
        }
        if (t->width) {
            double *p = realloc(t->matrix, cap * t->width * sizeof *p);
            if (!p)
                return ns_error(NS_ENOMEM, "out of memory for the history");
            t->matrix = p;
        }
        t->cap = cap;
    }
    for (size_t c = 0; c < t->ncols; c++)
        t->col[c][t->n] = row[c];
    if (t->width)
        memcpy(t->matrix + t->n * t->width, mrow, t->width * sizeof *mrow);
    t->n++;
    return NS_OK;
}

int ns_table_write(const ns_table *t, ns_hid fid, const char *group,
                   const char *matrix_name, const char *matrix_cols)
{
    char path[256];
    int st = ns_h5_group(fid, group);
    int64_t *iv = ns_malloc((t->n ? t->n : 1) * sizeof *iv);
    if (!iv)
        return NS_ENOMEM;
    for (size_t c = 0; !st && c < t->ncols; c++) {
        snprintf(path, sizeof path, "%s/%s", group, t->names[c]);
        size_t dims[1] = {t->n};
        if (t->is_int[c]) {
            for (size_t i = 0; i < t->n; i++)
                iv[i] = (int64_t)t->col[c][i];
            st = ns_h5_write_int(fid, path, 1, dims, iv);
        } else {
            st = ns_h5_write_double(fid, path, 1, dims, t->n ? t->col[c] : (double *)iv);
        }
        if (!st && t->desc[c])
            st = ns_h5_describe(fid, path, t->desc[c], NULL);
    }
    ns_free(iv);
    if (!st && t->width && matrix_name) {
        snprintf(path, sizeof path, "%s/%s", group, matrix_name);
        size_t dims[2] = {t->n, t->width};
        double dummy = 0;
        st = ns_h5_write_double(fid, path, 2, dims, t->n ? t->matrix : &dummy);
        if (!st)
            st = ns_h5_attr_str(fid, path, "layers", matrix_cols);
    }
    return st;
}

int ns_table_read(ns_table *t, ns_hid fid, const char *group, const char *matrix_name)
{
    char path[256];
    size_t n = 0;
    for (size_t c = 0; c < t->ncols; c++) {
        snprintf(path, sizeof path, "%s/%s", group, t->names[c]);
        double *v;
        size_t k;
        int st = ns_h5_read_double_alloc(fid, path, &v, &k);
        if (st)
            return st;
        if (c == 0)
            n = k;
        if (k != n) {
            ns_free(v);
            return ns_error(NS_EFORMAT, "cannot read '%s': columns of %s differ in length",
                            ns_h5_name(fid), group);
        }
        /* Copy into realloc-managed storage. */
        double *p = malloc((n ? n : 1) * sizeof *p);
        if (!p) {
            ns_free(v);
            return ns_error(NS_ENOMEM, "out of memory for the history");
        }
        memcpy(p, v, n * sizeof *p);
        ns_free(v);
        free(t->col[c]);
        t->col[c] = p;
    }
    if (t->width && matrix_name) {
        snprintf(path, sizeof path, "%s/%s", group, matrix_name);
        double *v;
        size_t k;
        int st = ns_h5_read_double_alloc(fid, path, &v, &k);
        if (st)
            return st;
        if (k != n * t->width) {
            ns_free(v);
            return ns_error(NS_EFORMAT, "cannot read '%s': %s has the wrong shape",
                            ns_h5_name(fid), path);
        }
        free(t->matrix);
        t->matrix = malloc((k ? k : 1) * sizeof *t->matrix);
        if (!t->matrix) {
            ns_free(v);
            return ns_error(NS_ENOMEM, "out of memory for the history");
        }
        memcpy(t->matrix, v, k * sizeof *v);
        ns_free(v);
    }
    t->n = t->cap = n;
    return NS_OK;
}

void ns_table_release(ns_table *t)
{
    for (size_t c = 0; c < t->ncols; c++) {
        free(t->col[c]);
        t->col[c] = NULL;
    }
    free(t->matrix);
    t->matrix = NULL;
    t->n = t->cap = 0;
}
