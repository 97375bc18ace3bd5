/*
 * Loading a trained network back from a run file: rebuild the architecture
 * from /config, then read a checkpoint's parameters and state.
 */
#include "normscope/train.h"

#include <string.h>

int ns_run_load(const char *path, uint64_t step, size_t max_batch, ns_net **net,
                ns_train_config *cfg, uint64_t *loaded_step)
{
    hid_t fid;
    *net = NULL;
    int st = ns_h5_open_format(path, NS_RUN_FORMAT, &fid);
    if (st)
        return st;
    uint64_t *steps = NULL;
    size_t n = 0;
    int64_t c, h, w, k;
    st = ns_train_config_load(fid, cfg);
    if (!st) st = ns_h5_get_int(fid, "/data", "c", &c);
    if (!st) st = ns_h5_get_int(fid, "/data", "h", &h);
    if (!st) st = ns_h5_get_int(fid, "/data", "w", &w);
    if (!st) st = ns_h5_get_int(fid, "/data", "nclass", &k);
    if (!st) st = ns_run_checkpoints(fid, &steps, &n);
    if (st)
        goto cleanup;
    if (n == 0) {
        st = ns_error(NS_EFORMAT, "cannot read '%s': no checkpoints", path);
        goto cleanup;
    }
    if (step == UINT64_MAX)
        step = steps[n - 1];
    cfg->net.max_batch = max_batch ? max_batch : cfg->batch;
    st = ns_net_build(cfg->arch, &cfg->net, (size_t)c, (size_t)h, (size_t)w, (size_t)k, net);
    if (st) {
        st = ns_error(NS_EFORMAT, "cannot read '%s': %s", path, ns_errmsg());
        goto cleanup;
    }
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
