/*
 * The result writer (include/normscope/result.h): result files of DESIGN.md
 * section 3 through the atomic ns_h5out of io.h.
 */
#include "normscope/result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "normscope/io.h"

struct ns_result {
    ns_h5out out;
};

struct ns_result_matrix {
    ns_ntk_h5sink sink;
    char path[256];
};

struct ns_result_op {
    hid_t dset;
    ns_h5_matvec mv;
};

int ns_result_create(ns_result **r, const char *path, int force, const char *cmdline,
                     const char *const *inputs, size_t ninputs)
{
    *r = NULL;
    int st = ns_out_names_input(path, inputs, ninputs);
    if (st)
        return st;
    ns_result *w = ns_malloc(sizeof *w);
    if (!w)
        return NS_ENOMEM;
    w->out.fid = H5I_INVALID_HID;
    if ((st = ns_h5out_create(&w->out, path, force))) {
        ns_free(w);
        return st;
    }
    if ((st = ns_result_file_attrs(w->out.fid, cmdline))) {
        ns_result_free(w);
        return st;
    }
    *r = w;
    return NS_OK;
}

int ns_result_commit(ns_result *r)
{
    int st = ns_h5out_commit(&r->out);
    if (st)
        ns_h5out_abort(&r->out);
    ns_free(r);
    return st;
}

void ns_result_free(ns_result *r)
{
    if (!r)
        return;
    ns_h5out_abort(&r->out);
    ns_free(r);
}

const char *ns_result_path(const ns_result *r)
{
    return r->out.path;
}

int ns_result_group(ns_result *r, const char *group, const ns_provenance *p)
{
    if (!p)
        return ns_h5_group(r->out.fid, group);
    return ns_result_group_attrs(r->out.fid, group, p->cmdline, p->source, p->mode, p->seed);
}

int ns_result_describe(ns_result *r, const char *path, const char *description,
                       const char *units)
{
    return ns_h5_describe(r->out.fid, path, description, units);
}

int ns_result_write_double(ns_result *r, const char *path, int ndim, const size_t *dims,
                           const double *data, const char *description, const char *units)
{
    int st = ns_h5_write_double(r->out.fid, path, ndim, dims, data);
    if (!st && description)
        st = ns_h5_describe(r->out.fid, path, description, units);
    return st;
}

int ns_result_write_int(ns_result *r, const char *path, int ndim, const size_t *dims,
                        const int64_t *data, const char *description, const char *units)
{
    int st = ns_h5_write_int(r->out.fid, path, ndim, dims, data);
    if (!st && description)
        st = ns_h5_describe(r->out.fid, path, description, units);
    return st;
}

int ns_result_attr_str(ns_result *r, const char *obj, const char *name, const char *val)
{
    return ns_h5_attr_str(r->out.fid, obj, name, val);
}

int ns_result_attr_double(ns_result *r, const char *obj, const char *name, double val)
{
    return ns_h5_attr_double(r->out.fid, obj, name, val);
}

int ns_result_attr_int(ns_result *r, const char *obj, const char *name, int64_t val)
{
    return ns_h5_attr_int(r->out.fid, obj, name, val);
}

int ns_result_attr_doubles(ns_result *r, const char *obj, const char *name, const double *val,
                           size_t n)
{
    return ns_h5_attr_doubles(r->out.fid, obj, name, val, n);
}

/* ------------------------------------------------------------ matrices */

int ns_result_matrix_create(ns_result *r, const char *path, size_t rows, size_t cols,
                            size_t chunk, ns_result_matrix **m)
{
    *m = NULL;
    ns_result_matrix *w = ns_malloc(sizeof *w);
    if (!w)
        return NS_ENOMEM;
    memset(w, 0, sizeof *w);
    snprintf(w->path, sizeof w->path, "%s", path);
    if (!chunk)
        chunk = 1024;
    hsize_t hd[2] = {rows, cols};
    hsize_t ch[2] = {rows < chunk ? rows : chunk, cols < chunk ? cols : chunk};
    hid_t sp = H5Screate_simple(2, hd, NULL), pl = H5Pcreate(H5P_DATASET_CREATE);
    w->sink.single = sizeof(ns_real) == 4;
    w->sink.dset = H5I_INVALID_HID;
    if (sp >= 0 && pl >= 0 && H5Pset_chunk(pl, 2, ch) >= 0)
        w->sink.dset = H5Dcreate2(r->out.fid, path,
                                  w->sink.single ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE, sp,
                                  H5P_DEFAULT, pl, H5P_DEFAULT);
    int st = NS_OK;
    if (w->sink.dset < 0) {
        char what[300];
        snprintf(what, sizeof what, "data set '%s'", path);
        st = ns_h5_write_failed(r->out.fid, what);
    }
    if (sp >= 0)
        H5Sclose(sp);
    if (pl >= 0)
        H5Pclose(pl);
    if (st) {
        ns_free(w);
        return st;
    }
    *m = w;
    return NS_OK;
}

int ns_result_matrix_put(void *ctx, size_t r0, size_t c0, size_t nr, size_t nc,
                         const double *tile)
{
    ns_result_matrix *m = ctx;
    return ns_ntk_h5sink_put(&m->sink, r0, c0, nr, nc, tile);
}

int ns_result_matrix_close(ns_result_matrix *m, int flush)
{
    if (!m)
        return NS_OK;
    int st = NS_OK;
    ns_ntk_h5sink_free(&m->sink);
    if (flush && H5Dflush(m->sink.dset) < 0) {
        char what[300];
        snprintf(what, sizeof what, "data set '%s'", m->path);
        st = ns_h5_write_failed(m->sink.dset, what);
    }
    H5Dclose(m->sink.dset);
    ns_free(m);
    return st;
}

int ns_result_read_rows(ns_result *r, const char *path, size_t r0, size_t nr, size_t cols,
                        double *buf)
{
    hid_t d = H5Dopen2(r->out.fid, path, H5P_DEFAULT);
    hid_t fs = d < 0 ? -1 : H5Dget_space(d);
    hsize_t off[2] = {r0, 0}, cnt[2] = {nr, cols};
    hid_t ms = H5Screate_simple(2, cnt, NULL);
    herr_t e = d < 0 || fs < 0 || ms < 0 ? -1
               : H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL);
    if (e >= 0)
        e = H5Dread(d, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, buf);
    if (ms >= 0)
        H5Sclose(ms);
    if (fs >= 0)
        H5Sclose(fs);
    if (d >= 0)
        H5Dclose(d);
    return e < 0 ? ns_error(NS_EIO, "cannot read kernel %s", path) : NS_OK;
}

int ns_result_op_open(ns_result *r, const char *path, size_t dim, size_t mem,
                      ns_result_op **op)
{
    *op = NULL;
    ns_result_op *o = ns_malloc(sizeof *o);
    if (!o)
        return NS_ENOMEM;
    memset(o, 0, sizeof *o);
    o->mv.own = H5I_INVALID_HID;
    o->dset = H5Dopen2(r->out.fid, path, H5P_DEFAULT);
    int st = o->dset < 0 ? ns_error(NS_EIO, "cannot reopen %s", path)
                         : ns_h5_matvec_init(&o->mv, o->dset, dim, mem);
    o->mv.upper = 1;   /* symmetric: half the reads */
    if (st) {
        ns_result_op_close(o);
        return st;
    }
    *op = o;
    return NS_OK;
}

int ns_result_matvec(void *ctx, const double *x, double *y)
{
    ns_result_op *o = ctx;
    return ns_matvec_h5(&o->mv, x, y);
}

void ns_result_op_close(ns_result_op *o)
{
    if (!o)
        return;
    ns_h5_matvec_free(&o->mv);
    if (o->dset >= 0)
        H5Dclose(o->dset);
    ns_free(o);
}
