/*
 * Evaluation and recalibration of a network, and the data a run trains on
 * (include/normscope/train.h): the split loaded and standardised as at
 * training, accuracy and loss in eval mode, and BN's running statistics
 * recomputed from training samples (the `recal` mode of DESIGN.md section 5).
 */
#include "normscope/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ns_train_load_data(const ns_train_config *c, int split, ns_dataset **out,
                       double *mean, double *std)
{
    ns_dataset *d = NULL, *sub = NULL;
    *out = NULL;
    int st = ns_data_load(c->data, split, &d);
    if (st)
        return st;
    size_t want = split == NS_SPLIT_TRAIN ? c->train_n : c->test_n;
    if (want && want < d->n) {
        size_t *idx = ns_malloc(want * sizeof *idx);
        if (!idx) {
            ns_data_free(d);
            return NS_ENOMEM;
        }
        for (size_t i = 0; i < want; i++)
            idx[i] = i;
        st = ns_data_subset(d, idx, want, &sub);
        ns_free(idx);
        ns_data_free(d);
        if (st)
            return st;
        d = sub;
    }
    if (d->c > 16) {
        ns_data_free(d);
        return ns_error(NS_EINVAL, "data set '%s' has %zu channels (at most 16 supported)",
                        c->data, d->c);
    }
    if (split == NS_SPLIT_TRAIN && mean && std) {
        if (c->standardize) {
            ns_data_channel_stats(d, mean, std);
        } else {
            for (size_t k = 0; k < d->c; k++) {
                mean[k] = 0;
                std[k] = 1;
            }
        }
    }
    if (c->standardize && mean && std)
        ns_data_standardize(d, mean, std);
    *out = d;
    return NS_OK;
}

int ns_evaluate(ns_net *net, const ns_dataset *d, double *loss, double *acc)
{
    size_t B = net->max_batch, dim = ns_data_dim(d);
    ns_real *x = ns_malloc(B * dim * sizeof *x);
    int32_t *y = ns_malloc(B * sizeof *y);
    size_t *idx = ns_malloc(B * sizeof *idx);
    int st = NS_OK;
    if (!x || !y || !idx) {
        st = NS_ENOMEM;
        goto cleanup;
    }
    double total = 0;
    size_t hits = 0;
    ns_ctx ctx = {.mode = NS_MODE_EVAL};
    for (size_t i = 0; i < d->n; i += B) {
        size_t n = d->n - i < B ? d->n - i : B;
        for (size_t j = 0; j < n; j++)
            idx[j] = i + j;
        ns_data_gather(d, idx, n, x, y);
        if ((st = ns_net_forward(net, x, n, &ctx)))
            goto cleanup;
        double l;
        size_t h;
        ns_softmax_ce(ns_net_logits(net), y, n, net->nout, NULL, &l, &h);
        total += l * (double)n;
        hits += h;
    }
    *loss = total / (double)d->n;
    *acc = (double)hits / (double)d->n;
cleanup:
    ns_free(x);
    ns_free(y);
    ns_free(idx);
    return st;
}

int ns_recalibrate(ns_net *net, const ns_dataset *d, size_t n)
{
    size_t B = net->max_batch, dim = ns_data_dim(d);
    if (n == 0 || n > d->n)
        n = d->n;
    ns_real *x = ns_malloc(B * dim * sizeof *x);
    size_t *idx = ns_malloc(B * sizeof *idx);
    int st = NS_OK;
    if (!x || !idx) {
        st = NS_ENOMEM;
        goto cleanup;
    }
    /* Layers that recalibrate (BN, BKN): running statistics reset, then the
     * plain average over the batches. */
    for (size_t i = 0; i < net->nlayers; i++) {
        ns_layer *L = &net->layers[i];
        if (L->ops->recal_begin)
            L->ops->recal_begin(L);
    }
    ns_ctx ctx = {.mode = NS_MODE_TRAIN, .seed = 0, .step = 0};
    for (size_t k = 0, i0 = 0; i0 < n; k++, i0 += B) {
        size_t m = n - i0 < B ? n - i0 : B;
        for (size_t j = 0; j < m; j++)
            idx[j] = i0 + j;
        ns_data_gather(d, idx, m, x, NULL);
        for (size_t i = 0; i < net->nlayers; i++) {
            ns_layer *L = &net->layers[i];
            if (L->ops->recal_batch)
                L->ops->recal_batch(L, k);
        }
        if ((st = ns_net_forward(net, x, m, &ctx)))
            break;
    }
    for (size_t i = 0; i < net->nlayers; i++) {
        ns_layer *L = &net->layers[i];
        if (L->ops->recal_end)
            L->ops->recal_end(L);
    }
cleanup:
    ns_free(x);
    ns_free(idx);
    return st;
}
