/*
 * Run-file checkpoints (DESIGN.md section 3):
 *   /checkpoints/<step>/params/<layer>/<name>   weights in PyTorch layout
 *   /checkpoints/<step>/state/<layer>/<name>    running statistics, counters
 * and the common attributes of analysis result groups.
 */
#include "normscope/io.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

static int write_tensors(hid_t fid, const char *base, const ns_layer *L,
                         const ns_tensor *t, int n)
{
    char path[512];
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s/%s", base, L->name, t[i].name);
        int st = ns_h5_write_real(fid, path, t[i].ndim, t[i].dims, t[i].data);
        if (st)
            return st;
    }
    return NS_OK;
}

int ns_run_write_checkpoint(hid_t fid, const ns_net *net, uint64_t step)
{
    char p[128], s[128];
    snprintf(p, sizeof p, "/checkpoints/%llu/params", (unsigned long long)step);
    snprintf(s, sizeof s, "/checkpoints/%llu/state", (unsigned long long)step);
    int st = ns_h5_group(fid, p);
    if (!st)
        st = ns_h5_group(fid, s);
    for (size_t i = 0; !st && i < net->nlayers; i++) {
        const ns_layer *L = &net->layers[i];
        st = write_tensors(fid, p, L, L->param, L->nparam);
        if (!st)
            st = write_tensors(fid, s, L, L->state, L->nstate);
    }
    return st;
}

static void shape_text(char *buf, size_t len, int ndim, const size_t *dims)
{
    size_t u = 0;
    if (ndim == 0)
        snprintf(buf, len, "a scalar");
    for (int i = 0; i < ndim && u < len; i++)
        u += (size_t)snprintf(buf + u, len - u, "%s%zu", i ? "x" : "", dims[i]);
}

/* Reads one tensor of a checkpoint: the data set must have the tensor's
 * shape (a transposed weight has the right size and the wrong meaning) and
 * hold finite values, non-negative ones where the tensor says so. */
static int read_tensor(hid_t fid, const char *path, ns_tensor *t)
{
    int nd;
    size_t dims[8], n;
    int st = ns_h5_shape(fid, path, &nd, dims, &n);
    if (st)
        return st;
    int same = nd == t->ndim;
    for (int i = 0; same && i < nd; i++)
        same = dims[i] == t->dims[i];
    if (!same) {
        char got[128], want[128];
        shape_text(got, sizeof got, nd, dims);
        shape_text(want, sizeof want, t->ndim, t->dims);
        return ns_error(NS_EFORMAT, "cannot read '%s': %s has shape %s, the architecture's "
                        "is %s", ns_h5_name(fid), path, got, want);
    }
    if ((st = ns_h5_read_real(fid, path, t->data, t->size)))
        return st;
    const ns_real *v = t->data;
    for (size_t i = 0; i < t->size; i++) {
        if (!isfinite(v[i]))
            return ns_error(NS_EFORMAT, "cannot read '%s': %s holds non-finite values",
                            ns_h5_name(fid), path);
        if ((t->flags & NS_TENSOR_NONNEG) && v[i] < 0)
            return ns_error(NS_EFORMAT, "cannot read '%s': %s holds negative values",
                            ns_h5_name(fid), path);
    }
    return NS_OK;
}

static int read_tensors(hid_t fid, const char *base, ns_layer *L, ns_tensor *t, int n)
{
    char path[512];
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s/%s", base, L->name, t[i].name);
        int st = read_tensor(fid, path, &t[i]);
        if (st)
            return st;
    }
    return NS_OK;
}

int ns_run_read_checkpoint(hid_t fid, ns_net *net, uint64_t step)
{
    char p[128], s[128];
    snprintf(p, sizeof p, "/checkpoints/%llu", (unsigned long long)step);
    if (!ns_h5_exists(fid, p))
        return ns_error(NS_EINVAL, "'%s' has no checkpoint at step %llu",
                        ns_h5_name(fid), (unsigned long long)step);
    snprintf(p, sizeof p, "/checkpoints/%llu/params", (unsigned long long)step);
    snprintf(s, sizeof s, "/checkpoints/%llu/state", (unsigned long long)step);
    int st = NS_OK;
    for (size_t i = 0; !st && i < net->nlayers; i++) {
        ns_layer *L = &net->layers[i];
        st = read_tensors(fid, p, L, L->param, L->nparam);
        if (!st)
            st = read_tensors(fid, s, L, L->state, L->nstate);
    }
    return st;
}

static herr_t collect(hid_t g, const char *name, const H5L_info_t *info, void *op)
{
    (void)g;
    (void)info;
    uint64_t **acc = op;
    char *end;
    /* steps are decimal digits: strtoull alone takes blanks and signs */
    if (*name < '0' || *name > '9')
        return 0;
    unsigned long long v = strtoull(name, &end, 10);
    if (*end)
        return 0;
    size_t *n = (size_t *)acc[1];
    uint64_t *arr = realloc(acc[0], (*n + 1) * sizeof *arr);
    if (!arr)
        return -1;
    arr[(*n)++] = v;
    acc[0] = arr;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int ns_run_checkpoints(hid_t fid, uint64_t **steps, size_t *n)
{
    *steps = NULL;
    *n = 0;
    if (!ns_h5_exists(fid, "/checkpoints"))
        return ns_error(NS_EFORMAT, "cannot read '%s': no checkpoints", ns_h5_name(fid));
    uint64_t *acc[2] = {NULL, (uint64_t *)n};
    hid_t g = H5Gopen2(fid, "/checkpoints", H5P_DEFAULT);
    herr_t e = H5Literate(g, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, collect, acc);
    H5Gclose(g);
    if (e < 0) {
        free(acc[0]);
        *n = 0;
        return ns_error(NS_EFORMAT, "cannot read '%s': bad checkpoint list", ns_h5_name(fid));
    }
    if (*n > 1)   /* acc[0] is NULL when there are none */
        qsort(acc[0], *n, sizeof(uint64_t), cmp_u64);
    /* Hand back memory from ns_malloc so callers free with ns_free. */
    *steps = ns_malloc((*n ? *n : 1) * sizeof(uint64_t));
    if (!*steps) {
        free(acc[0]);
        return NS_ENOMEM;
    }
    if (*n)
        memcpy(*steps, acc[0], *n * sizeof(uint64_t));
    free(acc[0]);
    return NS_OK;
}

int ns_result_file_attrs(hid_t fid, const char *cmdline)
{
    char now[32];
    ns_iso_time(now, sizeof now);
    int st = ns_h5_attr_str(fid, ".", "format", NS_RESULT_FORMAT);
    if (!st) st = ns_h5_attr_int(fid, ".", "format_version", NS_RESULT_FORMAT_VERSION);
    if (!st) st = ns_h5_attr_str(fid, ".", "normscope_version", NS_VERSION);
    if (!st) st = ns_h5_attr_str(fid, ".", "created", now);
    if (!st) st = ns_h5_attr_str(fid, ".", "command_line", cmdline ? cmdline : "");
    return st;
}

int ns_result_group_attrs(hid_t fid, const char *group, const char *cmdline,
                          const char *source, const char *mode, uint64_t seed)
{
    char now[32];
    ns_iso_time(now, sizeof now);
    int st = ns_h5_group(fid, group);
    if (!st) st = ns_h5_attr_str(fid, group, "command_line", cmdline ? cmdline : "");
    if (!st) st = ns_h5_attr_str(fid, group, "source", source ? source : "");
    if (!st) st = ns_h5_attr_str(fid, group, "mode", mode ? mode : "");
    if (!st) st = ns_h5_attr_int(fid, group, "seed", (int64_t)seed);
    if (!st) st = ns_h5_attr_str(fid, group, "normscope_version", NS_VERSION);
    if (!st) st = ns_h5_attr_str(fid, group, "created", now);
    return st;
}
