/*
 * Data sets in HDF5 files (The HDF Group, HDF5 C API reference): the
 * datasets /train/x, /train/y, /test/x and /test/y, x of shape (N, C, H, W),
 * (N, H, W) or (N, D) in uint8 (scaled by 1/255), float or double, y of N
 * integer labels, or (N, 1).  The class count is the root attribute
 * "nclass" when present, else one more than the largest label of both
 * splits, so that the splits agree.  HDF5's own error printing is switched
 * off while we work; its messages reach the user through ns_error.
 */
#include "data/internal.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* The innermost (most specific) message of HDF5's error stack. */
static herr_t h5_walk(unsigned n, const H5E_error2_t *e, void *data)
{
    char *msg = data;
    if (n == 0 && e->desc) {
        int len = snprintf(msg, 256, "%s", e->desc);
        (void)len;
    }
    return 0;
}

/* The one place where HDF5's errors become ours. */
static int h5_fail(int status, const char *path, const char *what)
{
    char msg[256] = "";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_walk, msg);
    H5Eclear2(H5E_DEFAULT);
    if (msg[0])
        return ns_error(status, "cannot read '%s': %s (%s)", path, what, msg);
    return ns_error(status, "cannot read '%s': %s", path, what);
}

/* Opens a dataset, reporting a missing one by name. */
static int h5_open(hid_t file, const char *path, const char *name, hid_t *dset)
{
    /* H5Lexists needs every parent link to exist, so walk the path. */
    char part[64];
    const char *slash = strchr(name + 1, '/');
    int n = snprintf(part, sizeof part, "%.*s", (int)(slash ? slash - name : 0), name);
    (void)n;
    if ((slash && H5Lexists(file, part, H5P_DEFAULT) <= 0) ||
        H5Lexists(file, name, H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return ns_error(NS_EFORMAT, "cannot read '%s': no dataset '%s'", path, name);
    }
    *dset = H5Dopen2(file, name, H5P_DEFAULT);
    if (*dset < 0) {
        char what[96];
        n = snprintf(what, sizeof what, "cannot open '%s'", name);
        return h5_fail(NS_EFORMAT, path, what);
    }
    return NS_OK;
}

/* Rank and dimensions of a dataset (up to 4). */
static int h5_shape(hid_t dset, const char *path, const char *name, int *rank,
                    size_t dims[4])
{
    hsize_t h[4];
    hid_t space = H5Dget_space(dset);
    int r = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
    if (r >= 0 && r <= 4)
        r = H5Sget_simple_extent_dims(space, h, NULL);
    if (space >= 0)
        H5Sclose(space);
    if (r < 0)
        return h5_fail(NS_EFORMAT, path, "cannot get a dataset's shape");
    if (r < 1 || r > 4)
        return ns_error(NS_EFORMAT, "cannot read '%s': '%s' has rank %d (expected 1 to 4)",
                        path, name, r);
    for (int i = 0; i < r; i++) {
        dims[i] = (size_t)h[i];
        if (dims[i] == 0)
            return ns_error(NS_EFORMAT, "cannot read '%s': '%s' is empty", path, name);
    }
    *rank = r;
    return NS_OK;
}

/* Reads the labels of dataset name (N or N x 1 integers) as int64. */
static int h5_read_labels(hid_t file, const char *path, const char *name,
                          int64_t **y, size_t *n)
{
    int st = NS_OK, rank;
    size_t dims[4];
    hid_t dset = H5I_INVALID_HID, type = H5I_INVALID_HID;
    int64_t *buf = NULL;
    *y = NULL;
    if ((st = h5_open(file, path, name, &dset)) ||
        (st = h5_shape(dset, path, name, &rank, dims)))
        goto cleanup;
    if (rank > 2 || (rank == 2 && dims[1] != 1)) {
        st = ns_error(NS_EFORMAT, "cannot read '%s': '%s' must hold one label per sample "
                      "(shape N or N x 1)", path, name);
        goto cleanup;
    }
    type = H5Dget_type(dset);
    if (type < 0 || H5Tget_class(type) != H5T_INTEGER) {
        st = ns_error(NS_EFORMAT, "cannot read '%s': '%s' must hold integer labels", path, name);
        goto cleanup;
    }
    buf = ns_calloc(dims[0], sizeof *buf);
    if (!buf) {
        st = NS_ENOMEM;
        goto cleanup;
    }
    if (H5Dread(dset, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        st = h5_fail(NS_EFORMAT, path, "reading the labels failed");
        goto cleanup;
    }
    for (size_t i = 0; i < dims[0]; i++)
        if (buf[i] < 0 || buf[i] > INT32_MAX - 1) {
            st = ns_error(NS_EFORMAT, "cannot read '%s': label %lld of sample %zu in '%s' "
                          "is out of range", path, (long long)buf[i], i, name);
            goto cleanup;
        }
    *y = buf;
    *n = dims[0];
    buf = NULL;
cleanup:
    if (type >= 0)
        H5Tclose(type);
    if (dset >= 0)
        H5Dclose(dset);
    ns_free(buf);
    return st;
}

/* Reads x into a new data set of its shape (labels and nclass unset). */
static int h5_read_x(hid_t file, const char *path, const char *name,
                     ns_dataset **out)
{
    int st = NS_OK, rank;
    size_t dims[4];
    hid_t dset = H5I_INVALID_HID, type = H5I_INVALID_HID;
    uint8_t *bytes = NULL;
    ns_dataset *d = NULL;
    *out = NULL;
    if ((st = h5_open(file, path, name, &dset)) ||
        (st = h5_shape(dset, path, name, &rank, dims)))
        goto cleanup;
    if (rank < 2) {
        st = ns_error(NS_EFORMAT, "cannot read '%s': '%s' has rank 1 (expected (N, D), "
                      "(N, H, W) or (N, C, H, W))", path, name);
        goto cleanup;
    }
    type = H5Dget_type(dset);
    H5T_class_t cls = type < 0 ? H5T_NO_CLASS : H5Tget_class(type);
    int u8 = cls == H5T_INTEGER && H5Tget_size(type) == 1 && H5Tget_sign(type) == H5T_SGN_NONE;
    if (!u8 && cls != H5T_FLOAT) {
        st = ns_error(NS_EFORMAT, "cannot read '%s': '%s' has an unsupported element type "
                      "(expected uint8, float or double)", path, name);
        goto cleanup;
    }
    size_t c = rank == 4 ? dims[1] : rank == 2 ? dims[1] : 1;
    size_t h = rank == 4 ? dims[2] : rank == 3 ? dims[1] : 1;
    size_t w = rank == 4 ? dims[3] : rank == 3 ? dims[2] : 1;
    if ((st = ns_data_alloc_uninit(dims[0], c, h, w, 0, &d)))
        goto cleanup;
    size_t count = d->n * ns_data_dim(d);
    if (u8) {
        bytes = ns_malloc(count);
        if (!bytes) {
            st = NS_ENOMEM;
            goto cleanup;
        }
        if (H5Dread(dset, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes) < 0) {
            st = h5_fail(NS_EFORMAT, path, "reading the samples failed");
            goto cleanup;
        }
        ns_data_u8_to_float(d->x, bytes, count);
    } else {
        /* HDF5 converts double to float as it reads. */
        if (H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, d->x) < 0) {
            st = h5_fail(NS_EFORMAT, path, "reading the samples failed");
            goto cleanup;
        }
        for (size_t i = 0; i < count; i++)
            if (!isfinite(d->x[i])) {
                st = ns_error(NS_EFORMAT, "cannot read '%s': '%s' holds a value that is not "
                              "finite as a float (sample %zu)", path, name,
                              i / ns_data_dim(d));
                goto cleanup;
            }
    }
    *out = d;
    d = NULL;
cleanup:
    if (type >= 0)
        H5Tclose(type);
    if (dset >= 0)
        H5Dclose(dset);
    ns_free(bytes);
    ns_data_free(d);
    return st;
}

/* The root attribute "nclass" (positive integer scalar), if present:
 * *nclass stays 0 when it is not. */
static int h5_nclass_attr(hid_t file, const char *path, size_t *nclass)
{
    int st = NS_OK;
    hid_t attr = H5I_INVALID_HID, type = H5I_INVALID_HID, space = H5I_INVALID_HID;
    long long v = 0;
    *nclass = 0;
    if (H5Aexists(file, "nclass") <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return NS_OK;
    }
    attr = H5Aopen(file, "nclass", H5P_DEFAULT);
    if (attr >= 0) {
        type = H5Aget_type(attr);
        space = H5Aget_space(attr);
    }
    if (attr < 0 || type < 0 || space < 0) {
        st = h5_fail(NS_EFORMAT, path, "cannot open the attribute 'nclass'");
        goto cleanup;
    }
    if (H5Tget_class(type) != H5T_INTEGER || H5Sget_simple_extent_npoints(space) != 1) {
        st = ns_error(NS_EFORMAT, "cannot read '%s': attribute 'nclass' must be one integer",
                      path);
        goto cleanup;
    }
    if (H5Aread(attr, H5T_NATIVE_LLONG, &v) < 0) {
        st = h5_fail(NS_EFORMAT, path, "cannot read the attribute 'nclass'");
        goto cleanup;
    }
    if (v < 1 || v > INT32_MAX) {
        st = ns_error(NS_EFORMAT, "cannot read '%s': attribute 'nclass' is %lld "
                      "(expected a positive count)", path, v);
        goto cleanup;
    }
    *nclass = (size_t)v;
cleanup:
    if (space >= 0)
        H5Sclose(space);
    if (type >= 0)
        H5Tclose(type);
    if (attr >= 0)
        H5Aclose(attr);
    return st;
}

static int h5_load(hid_t file, const char *path, int split, ns_dataset **out)
{
    int st = NS_OK;
    const char *grp = split == NS_SPLIT_TEST ? "test" : "train";
    const char *other = split == NS_SPLIT_TEST ? "train" : "test";
    char xname[32], yname[32], oname[32], ogroup[32];
    int64_t *y = NULL, *oy = NULL;
    size_t ny = 0, noy = 0, nclass = 0;
    ns_dataset *d = NULL;
    *out = NULL;
    int n = snprintf(xname, sizeof xname, "/%s/x", grp);
    n = snprintf(yname, sizeof yname, "/%s/y", grp);
    n = snprintf(oname, sizeof oname, "/%s/y", other);
    n = snprintf(ogroup, sizeof ogroup, "/%s", other);
    (void)n;

    if ((st = h5_read_x(file, path, xname, &d)) ||
        (st = h5_read_labels(file, path, yname, &y, &ny)))
        goto cleanup;
    if (ny != d->n) {
        st = ns_error(NS_EFORMAT, "cannot read '%s': '%s' has %zu samples but '%s' has "
                      "%zu labels", path, xname, d->n, yname, ny);
        goto cleanup;
    }
    if ((st = h5_nclass_attr(file, path, &nclass)))
        goto cleanup;
    if (nclass == 0) {
        for (size_t i = 0; i < ny; i++)
            if ((size_t)y[i] + 1 > nclass)
                nclass = (size_t)y[i] + 1;
        int has_other = H5Lexists(file, ogroup, H5P_DEFAULT) > 0 &&
                        H5Lexists(file, oname, H5P_DEFAULT) > 0;
        H5Eclear2(H5E_DEFAULT);
        if (has_other) {
            if ((st = h5_read_labels(file, path, oname, &oy, &noy)))
                goto cleanup;
            for (size_t i = 0; i < noy; i++)
                if ((size_t)oy[i] + 1 > nclass)
                    nclass = (size_t)oy[i] + 1;
        }
    }
    for (size_t i = 0; i < ny; i++) {
        if ((size_t)y[i] >= nclass) {
            st = ns_error(NS_EFORMAT, "cannot read '%s': label %lld of sample %zu in '%s' "
                          "is not below nclass %zu", path, (long long)y[i], i, yname, nclass);
            goto cleanup;
        }
        d->y[i] = (int32_t)y[i];
    }
    d->nclass = nclass;

    /* Name the set after the file: "runs/blobs.h5" -> "blobs". */
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    char name[48];
    n = snprintf(name, sizeof name, "%.*s", (int)(dot && dot > base ? dot - base : 40), base);
    ns_data_describe(d, name[0] ? name : "hdf5", split, path);
    *out = d;
    d = NULL;
cleanup:
    ns_free(y);
    ns_free(oy);
    ns_data_free(d);
    return st;
}

int ns_data_load_h5(const char *path, int split, ns_dataset **out)
{
    int st;
    H5E_auto2_t old_func = NULL;
    void *old_data = NULL;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ns_error(NS_EIO, "cannot open '%s': %s", path, strerror(errno));
    fclose(f);

    H5Eget_auto2(H5E_DEFAULT, &old_func, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t file = H5I_INVALID_HID;
#if H5_VERSION_GE(1, 12, 0)
    htri_t is = H5Fis_accessible(path, H5P_DEFAULT);
#else
    htri_t is = H5Fis_hdf5(path);
#endif
    if (is <= 0) {
        H5Eclear2(H5E_DEFAULT);
        st = ns_error(NS_EFORMAT, "cannot read '%s': not an HDF5 file", path);
    } else if ((file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0) {
        st = h5_fail(NS_EIO, path, "cannot open the HDF5 file");
    } else {
        st = h5_load(file, path, split, out);
        H5Fclose(file);
    }
    H5Eset_auto2(H5E_DEFAULT, old_func, old_data);
    return st;
}
