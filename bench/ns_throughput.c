/*
 * Training throughput of normscope on random data: the same full SGD step
 * as `normscope train` (forward, cross-entropy, backward, momentum update),
 * batch 128 by default, with the method's gradient clipping (AGC, its
 * default --clip) and weight projection where it has them; prints the median images/s of several
 * repeats.
 *   ns_throughput ARCH NORM [repeats] [steps] [threads]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "normscope/nn.h"
#include "normscope/norm.h"
#include "normscope/train.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: ns_throughput ARCH NORM [repeats] [steps] [threads]\n");
        return 2;
    }
    int repeats = argc > 3 ? atoi(argv[3]) : 5;
    int steps = argc > 4 ? atoi(argv[4]) : 50;
    int threads = argc > 5 ? atoi(argv[5]) : 2;
    if (repeats < 1 || repeats > 100 || steps < 1) {
        fprintf(stderr, "ns_throughput: bad repeats or steps\n");
        return 2;
    }
    ns_set_threads(threads);
    ns_train_config c;
    ns_train_config_default(&c);
    snprintf(c.net.norm, sizeof c.net.norm, "%s", argv[2]);
    size_t B = c.batch;
    ns_net *net;
    if (ns_net_build(argv[1], &c.net, 1, 28, 28, 10, &net)) {
        fprintf(stderr, "ns_throughput: %s\n", ns_errmsg());
        return 2;
    }
    ns_net_init(net, &c.init, 1);
    int agc = (ns_norm_find(argv[2])->flags & NS_NORM_AGC) != 0;
    double clip = ns_norm_find(argv[2])->clip;   /* the method's default --clip */
    int proj = ns_net_has_projection(net);
    ns_optim opt;
    ns_optim_alloc(&opt, NS_OPTIM_SGD, net->nparams);
    ns_real *x = malloc(B * 784 * sizeof *x), *dl = malloc(B * 10 * sizeof *dl);
    int32_t *y = malloc(B * sizeof *y);
    ns_rng r;
    ns_rng_seed(&r, 7, 0);
    for (size_t i = 0; i < B * 784; i++)
        x[i] = (ns_real)ns_rng_normal(&r);
    for (size_t i = 0; i < B; i++)
        y[i] = (int32_t)ns_rng_below(&r, 10);
    double *ips = malloc((size_t)repeats * sizeof *ips);
    for (int rep = -1; rep < repeats; rep++) {
        int n = rep < 0 ? 20 : steps; /* first round warms up */
        double t0 = ns_time();
        for (int s = 0; s < n; s++) {
            ns_ctx ctx = {.mode = NS_MODE_TRAIN, .seed = 1, .step = (uint64_t)s};
            double loss;
            ns_net_forward(net, x, B, &ctx);
            ns_softmax_ce(ns_net_logits(net), y, B, 10, dl, &loss, NULL);
            ns_net_zero_grad(net);
            ns_net_backward(net, dl);
            ns_net_clip_grad(net, clip);
            if (agc)
                ns_net_agc(net, c.net.agc);
            ns_optim_step(&opt, &c, 0.01, net->params, net->grads);
            if (proj)
                ns_net_project(net);
        }
        if (rep >= 0)
            ips[rep] = (double)n * B / (ns_time() - t0);
    }
    qsort(ips, (size_t)repeats, sizeof *ips, cmp);
    printf("normscope %s %s %.0f\n", argv[1], argv[2], ips[repeats / 2]);
    free(ips);
    free(x);
    free(dl);
    free(y);
    ns_optim_release(&opt);
    ns_net_free(net);
    return 0;
}
