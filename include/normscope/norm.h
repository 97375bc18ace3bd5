/*
 * normscope normalization methods.  `--norm NAME` picks a method from a
 * registry; each entry says how to fill a normalization slot (a layer, or
 * nothing).  Weight rules (projections after the optimiser step,
 * reparametrisations) and network rewrites hang off the same entry.
 */
#ifndef NORMSCOPE_NORM_H
#define NORMSCOPE_NORM_H

#include "normscope/nn.h"

typedef struct ns_norm_method {
    const char *name;       /* one word: "bn" */
    const char *summary;    /* one line for --list-norms */
    const char *reference;  /* paper, or "normscope's own definition" */
    /* Fills a slot layer L whose input shape is set; NULL: the slot is left
     * empty (no layer). */
    int (*create)(ns_layer *L, const ns_net_opts *o);
} ns_norm_method;

/* Lookup by name; NULL if unknown. */
const ns_norm_method *ns_norm_find(const char *name);
/* Registry access for listings. */
size_t ns_norm_count(void);
const ns_norm_method *ns_norm_at(size_t i);

/* Batch normalization over (N, H, W) per channel, in groups of `group`
 * samples (0: the whole batch); running variance unbiased as in PyTorch. */
int ns_bn_create(ns_layer *L, double momentum, double eps, int affine, size_t group);

#endif
