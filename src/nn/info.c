/*
 * Network queries: activation memory, layer lookup, a printed summary.
 */
#include "normscope/nn.h"

#include <string.h>

size_t ns_layer_activation_bytes(const ns_layer *L, size_t n)
{
    /* The layer's output buffer plus what it caches, scaled to n samples. */
    size_t out = n * ns_layer_out_size(L) * sizeof(ns_real);
    size_t cache = L->max_batch ? L->cache_bytes * n / L->max_batch : 0;
    return out + cache;
}

size_t ns_net_activation_bytes(const ns_net *net, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < net->nlayers; i++)
        total += ns_layer_activation_bytes(&net->layers[i], n);
    return total;
}

ns_layer *ns_net_find(ns_net *net, const char *name)
{
    for (size_t i = 0; i < net->nlayers; i++)
        if (strcmp(net->layers[i].name, name) == 0)
            return &net->layers[i];
    return NULL;
}

void ns_net_print(const ns_net *net, FILE *f)
{
    for (size_t i = 0; i < net->nlayers; i++) {
        const ns_layer *L = &net->layers[i];
        size_t np = 0;
        for (int t = 0; t < L->nparam; t++)
            np += L->param[t].size;
        fprintf(f, "  %-12s %4zux%3zux%-3zu -> %4zux%3zux%-3zu %9zu params", L->name,
                L->in_c, L->in_h, L->in_w, L->out_c, L->out_h, L->out_w, np);
        if (L->src != (int)i - 1 || L->src2 >= 0) {
            fprintf(f, "  (from %s", L->src < 0 ? "input" : net->layers[L->src].name);
            if (L->src2 >= 0)
                fprintf(f, " + %s", net->layers[L->src2].name);
            fputc(')', f);
        }
        fputc('\n', f);
    }
    fprintf(f, "  %zu parameters, %zu state values\n", net->nparams, net->nstate);
}
