/*
 * Reading run files (DESIGN.md section 3): one path for every reader.
 * ns_run_open checks what the whole file relies on (format and version,
 * /config against the limits of the command line, /data); the checkpoints'
 * tensors are checked as they are read (ns_run_read_checkpoint), and
 * ns_run_check reads them all.
 */
#include "normscope/train.h"

#include <math.h>
#include <string.h>

#include "normscope/norm.h"

/* The most values a sample may have (3 x 2048 x 2048 and more). */
#define MAX_SAMPLE (1 << 24)

/* An integer attribute of /data in lo..hi. */
static int data_int(ns_hid fid, const char *path, const char *name, int64_t lo, int64_t hi,
                    size_t *v)
{
    double d;
    int64_t i;
    int is_int;
    if (ns_h5_get_num(fid, "/data", name, &d, &i, &is_int))
        return NS_EFORMAT;
    if (!is_int || i < lo || i > hi)
        return ns_error(NS_EFORMAT, "cannot read '%s': /data attribute '%s' must be an "
                        "integer in %lld..%lld, got %.15g", path, name, (long long)lo,
                        (long long)hi, d);
    *v = (size_t)i;
    return NS_OK;
}

/* mean or std of /data: one finite value per channel, positive for std. */
static int data_stats(ns_hid fid, const char *path, const char *name, size_t c, double *v,
                      int positive)
{
    size_t got;
    if (ns_h5_get_doubles(fid, "/data", name, v, 16, &got))
        return NS_EFORMAT;
    if (got != c)
        return ns_error(NS_EFORMAT, "cannot read '%s': /data attribute '%s' has %zu values "
                        "for %zu channels", path, name, got, c);
    for (size_t k = 0; k < c; k++) {
        if (!isfinite(v[k]))
            return ns_error(NS_EFORMAT, "cannot read '%s': /data attribute '%s' holds "
                            "non-finite values", path, name);
        if (positive && !(v[k] > 0))
            return ns_error(NS_EFORMAT, "cannot read '%s': /data attribute '%s' holds values "
                            "that are not positive", path, name);
    }
    return NS_OK;
}

int ns_run_open(const char *path, ns_hid *fid, ns_train_config *cfg, ns_run_data *data)
{
    ns_train_config cbuf;
    ns_run_data dbuf;
    if (!cfg)
        cfg = &cbuf;
    if (!data)
        data = &dbuf;
    memset(data, 0, sizeof *data);
    int st = ns_h5_open_format(path, NS_RUN_FORMAT, fid);
    if (st)
        return st;
    uint64_t *steps = NULL;
    size_t n = 0;
    st = ns_train_config_load(*fid, cfg);
    if (!st && !ns_h5_exists(*fid, "/data"))
        st = ns_error(NS_EFORMAT, "cannot read '%s': no /data group", path);
    if (!st) st = data_int(*fid, path, "c", 1, 16, &data->c);
    if (!st) st = data_int(*fid, path, "h", 1, 65536, &data->h);
    if (!st) st = data_int(*fid, path, "w", 1, 65536, &data->w);
    if (!st) st = data_int(*fid, path, "nclass", 1, 65536, &data->nclass);
    if (!st && data->c * data->h * data->w > MAX_SAMPLE)
        st = ns_error(NS_EFORMAT, "cannot read '%s': /data says samples of %zux%zux%zu, more "
                      "than %d values", path, data->c, data->h, data->w, MAX_SAMPLE);
    if (!st) st = data_stats(*fid, path, "mean", data->c, data->mean, 0);
    if (!st) st = data_stats(*fid, path, "std", data->c, data->std, 1);
    if (!st) st = ns_run_checkpoints(*fid, &steps, &n);
    if (!st && n == 0)
        st = ns_error(NS_EFORMAT, "cannot read '%s': no checkpoints", path);
    ns_free(steps);
    if (st) {
        ns_h5_close(*fid);
        *fid = NS_HID_INVALID;
        return st == NS_ENOMEM ? st : NS_EFORMAT;
    }
    return NS_OK;
}

/* The network of a run's configuration and data. */
static int build(const char *path, ns_train_config *cfg, const ns_run_data *d, size_t max_batch,
                 ns_net **net)
{
    cfg->net.max_batch = max_batch ? max_batch : cfg->batch;
    int st = ns_net_build(cfg->arch, &cfg->net, d->c, d->h, d->w, d->nclass, net);
    if (st == NS_ENOMEM)
        return st;
    if (st)
        return ns_error(NS_EFORMAT, "cannot read '%s': %s", path, ns_errmsg());
    return NS_OK;
}

int ns_run_check(const char *path)
{
    ns_hid fid;
    ns_train_config cfg;
    ns_run_data d;
    int st = ns_run_open(path, &fid, &cfg, &d);
    if (st)
        return st;
    uint64_t *steps = NULL;
    size_t n = 0;
    ns_net *net = NULL;
    /* State shapes do not depend on the batch: build for one sample. */
    st = build(path, &cfg, &d, 1, &net);
    if (!st) st = ns_run_checkpoints(fid, &steps, &n);
    for (size_t i = 0; !st && i < n; i++)
        st = ns_run_read_checkpoint(fid, net, steps[i]);
    ns_free(steps);
    ns_net_free(net);
    ns_h5_close(fid);
    return st;
}

int ns_run_load(const char *path, uint64_t step, size_t max_batch, ns_net **net,
                ns_train_config *cfg, uint64_t *loaded_step)
{
    ns_hid fid;
    ns_run_data d;
    *net = NULL;
    int st = ns_run_open(path, &fid, cfg, &d);
    if (st)
        return st;
    uint64_t *steps = NULL;
    size_t n = 0;
    if ((st = ns_run_checkpoints(fid, &steps, &n)))
        goto cleanup;
    if (step == UINT64_MAX)
        step = steps[n - 1];
    if ((st = build(path, cfg, &d, max_batch, net)))
        goto cleanup;
    st = ns_run_read_checkpoint(fid, *net, step);
    if (st) {
        ns_net_free(*net);
        *net = NULL;
        goto cleanup;
    }
    if (loaded_step)
        *loaded_step = step;
cleanup:
    ns_free(steps);
    ns_h5_close(fid);
    return st;
}
