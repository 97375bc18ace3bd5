/*
 * What both run-file harnesses do with a file: the path every command
 * reads through (ns_run_check), ns_run_load, and a forward pass in eval
 * mode whose logits must be finite, since a file the checks accept must be
 * usable.
 */
#ifndef NS_FUZZ_RUN_H
#define NS_FUZZ_RUN_H

#include <math.h>
#include <stdlib.h>

#include "normscope/train.h"

static void fuzz_read_run(const char *path)
{
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
}

#endif
