/*
 * libFuzzer harness of the run-file reader on raw bytes: an HDF5 image
 * (the seed corpus is run files written by `normscope train`).  It goes
 * through the path every command uses (ns_run_check: format, version,
 * /config, /data, every checkpoint's shapes and values), then ns_run_load
 * and a forward pass in eval mode, whose logits must be finite: a file
 * the checks accept must be usable.
 */
#include "fuzz_util.h"

#include <math.h>

#include "normscope/train.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_setup();
    const char *path = fuzz_file(data, size, ".h5");
    if (!path)
        return 0;
    ns_net *net = NULL;
    ns_real *x = NULL;
    ns_train_config cfg;
    uint64_t step;
    if (ns_run_check(path) == NS_OK &&
        ns_run_load(path, UINT64_MAX, 2, &net, &cfg, &step) == NS_OK) {
        size_t d = net->in_c * net->in_h * net->in_w;
        x = calloc(2 * d, sizeof *x);
        ns_ctx ctx = {.mode = NS_MODE_EVAL, .seed = cfg.seed, .step = step};
        if (x && ns_net_forward(net, x, 2, &ctx) == NS_OK) {
            const ns_real *y = ns_net_logits(net);
            for (size_t i = 0; i < 2 * net->nout; i++)
                if (!isfinite((double)y[i]))
                    abort();
        }
    }
    free(x);
    ns_net_free(net);
    unlink(path);
    return 0;
}
