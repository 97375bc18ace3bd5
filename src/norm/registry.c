/*
 * The registry of normalization methods behind `--norm NAME`.  An entry says
 * how a normalization slot of an architecture is filled; methods that are
 * weight rules or network rewrites extend the entry with their hooks.
 */
#include "normscope/norm.h"

#include <string.h>

static int create_bn(ns_layer *L, const ns_net_opts *o)
{
    return ns_bn_create(L, o->bn_momentum, o->bn_eps, o->bn_affine, o->norm_group);
}

static const ns_norm_method methods[] = {
    {"none", "no normalization: the slots are left empty", "-", NULL},
    {"bn", "batch normalization over (N,H,W) per channel; --norm-group S for ghost batches",
     "Ioffe & Szegedy, ICML 2015", create_bn},
};

size_t ns_norm_count(void)
{
    return sizeof methods / sizeof *methods;
}

const ns_norm_method *ns_norm_at(size_t i)
{
    return i < ns_norm_count() ? &methods[i] : NULL;
}

const ns_norm_method *ns_norm_find(const char *name)
{
    for (size_t i = 0; i < ns_norm_count(); i++)
        if (strcmp(methods[i].name, name) == 0)
            return &methods[i];
    return NULL;
}
