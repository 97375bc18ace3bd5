/*
 * libFuzzer harness of the architecture-string parser and network builder
 * (src/nn/arch.c, src/nn/net.c): the first byte picks the method in the
 * norm slots, the rest is the --arch string.  A string that builds must
 * run a forward and backward pass on two 3x8x8 samples in train mode;
 * anything else must be refused with a status.
 */
#include "fuzz_util.h"

#include "normscope/norm.h"
#include "normscope/nn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_setup();
    if (size < 1)
        return 0;
    char *arch = fuzz_string(data + 1, size - 1, 512);
    if (!arch)
        return 0;
    ns_net_opts o;
    ns_net_opts_default(&o);
    o.max_batch = 2;
    snprintf(o.norm, sizeof o.norm, "%s", ns_norm_at(data[0] % ns_norm_count())->name);
    char expanded[4096];
    ns_net *net = NULL;
    if (ns_arch_expand(arch, expanded, sizeof expanded) == NS_OK &&
        ns_net_build(arch, &o, 3, 8, 8, 10, &net) == NS_OK && net->nparams < (1u << 22)) {
        ns_init init = {.kind = NS_INIT_TORCH};
        ns_net_init(net, &init, 1);
        ns_real x[2 * 3 * 8 * 8];
        for (size_t i = 0; i < sizeof x / sizeof *x; i++)
            x[i] = (ns_real)((double)(i % 7) - 3.0) * (ns_real)0.37;
        ns_ctx ctx = {.mode = NS_MODE_TRAIN, .seed = 1, .step = 0};
        if (ns_net_forward(net, x, 2, &ctx) == NS_OK) {
            ns_real dl[2 * 10];
            for (size_t i = 0; i < 2 * 10; i++)
                dl[i] = (ns_real)0.1;
            ns_net_zero_grad(net);
            ns_net_backward(net, dl);
        }
    }
    ns_net_free(net);
    free(arch);
    return 0;
}
