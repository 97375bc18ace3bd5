/*
 * Inputs of an analysis (include/normscope/inputs.h, DESIGN.md section 6):
 * one way to open a run, choose its checkpoints, rebuild its network in a
 * normalization mode and load its samples as at training.
 */
#include "normscope/inputs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ns_run_inputs_defaults(ns_inputs_opts *o)
{
    memset(o, 0, sizeof *o);
    o->split = NS_SPLIT_TRAIN;
    o->n = 128;
    o->ckpt = "all";
    o->mode = NS_BN_EVAL;
    o->recal_n = 10000;
}

const char *ns_bn_mode_name(ns_bn_mode m)
{
    return m == NS_BN_RECAL ? "recal" : m == NS_BN_BATCH ? "batch" : "eval";
}

ns_mode ns_bn_mode_net(ns_bn_mode m)
{
    return m == NS_BN_BATCH ? NS_MODE_BATCH : NS_MODE_EVAL;
}

/* Decimal digits only, in range (no sign, blank or empty item). */
static int parse_step(const char *s, size_t len, uint64_t *v)
{
    if (!len || len > 20)
        return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned dg = (unsigned)(s[i] - '0');
        if (x > (UINT64_MAX - dg) / 10)
            return -1;
        x = x * 10 + dg;
    }
    *v = x;
    return 0;
}

int ns_ckpt_resolve(const char *spec, const uint64_t *have, size_t nhave, const char *path,
                    uint64_t **steps, size_t *n, int *usage)
{
    int u = 0, st = NS_OK;
    uint64_t *s = NULL;
    size_t k = 0;
    *steps = NULL;
    *n = 0;
    if (!nhave) {
        st = ns_error(NS_EFORMAT, "'%s' has no checkpoints", path);
        goto cleanup;
    }
    if (!(s = ns_malloc((nhave + NS_CKPT_MAX_LIST) * sizeof *s))) {
        st = NS_ENOMEM;
        goto cleanup;
    }
    if (!strcmp(spec, "all")) {
        memcpy(s, have, nhave * sizeof *s);
        k = nhave;
    } else if (!strcmp(spec, "init")) {
        s[k++] = have[0];
    } else if (!strcmp(spec, "last")) {
        s[k++] = have[nhave - 1];
    } else {
        /* An empty item anywhere is malformed; otherwise items in order,
         * the first bad one decides the message. */
        size_t sl = strlen(spec);
        u = !sl || spec[0] == ',' || spec[sl - 1] == ',' || strstr(spec, ",,");
        const char *p = spec;
        while (!u) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            uint64_t v;
            if (parse_step(p, len, &v) || k >= NS_CKPT_MAX_LIST) {
                u = 1;
                break;
            }
            size_t j = 0;
            while (j < nhave && have[j] != v)
                j++;
            if (j == nhave) {
                char list[256];
                size_t w = 0;
                for (size_t q = 0; q < nhave && w < sizeof list - 24; q++)
                    w += (size_t)snprintf(list + w, sizeof list - w, "%s%llu", q ? ", " : "",
                                          (unsigned long long)have[q]);
                st = ns_error(NS_EINVAL, "no checkpoint at step %llu in '%s' (it has %s)",
                              (unsigned long long)v, path, list);
                goto cleanup;
            }
            for (size_t q = 0; q < k; q++)
                if (s[q] == v) {
                    st = ns_error(NS_EINVAL, "--ckpt names step %llu twice",
                                  (unsigned long long)v);
                    goto cleanup;
                }
            s[k++] = v;
            if (!e)
                break;
            p = e + 1;
        }
        if (u || !k) {
            u = 1;
            st = ns_error(NS_EINVAL, "--ckpt takes init, last, all or a list of at most %d "
                          "steps, got '%s'", NS_CKPT_MAX_LIST, spec);
            goto cleanup;
        }
    }
    *steps = s;
    *n = k;
    s = NULL;
cleanup:
    ns_free(s);
    if (usage)
        *usage = u;
    return st;
}

/* n indices of d: the first n, or n drawn without replacement by seed. */
static int choose(const ns_dataset *d, size_t n, uint64_t seed, size_t *idx)
{
    if (!seed) {
        for (size_t i = 0; i < n; i++)
            idx[i] = i;
        return NS_OK;
    }
    size_t *perm = ns_malloc(d->n * sizeof *perm);
    if (!perm)
        return NS_ENOMEM;
    for (size_t i = 0; i < d->n; i++)
        perm[i] = i;
    ns_rng r;
    ns_rng_seed(&r, seed, 0);
    ns_rng_shuffle(&r, perm, d->n);
    memcpy(idx, perm, n * sizeof *idx);
    ns_free(perm);
    return NS_OK;
}

int ns_run_inputs_open(ns_run_inputs *in, const char *path, const ns_inputs_opts *o,
                       int *usage)
{
    memset(in, 0, sizeof *in);
    if (usage)
        *usage = 0;
    snprintf(in->path, sizeof in->path, "%s", path);
    if (o->set_only && o->sample_seed)
        return ns_error(NS_EINVAL, "drawn samples are gathered, not read in place");
    in->opts = *o;
    in->opts.ckpt = NULL;
    in->opts.data = NULL;
    uint64_t *have = NULL;
    size_t nhave = 0;
    ns_hid rf;
    /* The whole file is checked, whichever checkpoints are analysed. */
    int st = ns_run_check(path);
    if (!st && !(st = ns_run_open(path, &rf, NULL, &in->rd))) {
        st = ns_run_checkpoints(rf, &have, &nhave);
        ns_h5_close(rf);
    }
    if (!st)
        st = ns_ckpt_resolve(o->ckpt ? o->ckpt : "all", have, nhave, path, &in->steps,
                             &in->nsteps, usage);
    if (st)
        goto cleanup;
    if ((st = ns_run_load(path, in->steps[0], o->max_batch, &in->net, &in->cfg, &in->step)))
        goto cleanup;
    ns_train_config *cfg = &in->cfg;
    int split = o->split;
    size_t n = o->n;
    if (o->data)
        snprintf(cfg->data, sizeof cfg->data, "%s", o->data);
    {
        ns_train_config dc = *cfg;
        /* only the first n samples are used unless they are drawn */
        dc.train_n = split == NS_SPLIT_TRAIN && !o->sample_seed ? n : 0;
        dc.test_n = split == NS_SPLIT_TEST && !o->sample_seed ? n : 0;
        if ((st = ns_train_load_data(&dc, split, &in->d, NULL, NULL)))
            goto cleanup;
    }
    const ns_dataset *d = in->d;
    const ns_net *net = in->net;
    if (d->c != net->in_c || d->h != net->in_h || d->w != net->in_w) {
        st = ns_error(NS_EINVAL, "data set '%s' has samples of %zux%zux%zu; the network takes "
                      "%zux%zux%zu", cfg->data, d->c, d->h, d->w, net->in_c, net->in_h,
                      net->in_w);
        goto cleanup;
    }
    if (d->c != in->rd.c) {
        st = ns_error(NS_EFORMAT, "cannot read '%s': /data statistics have %zu channels", path,
                      in->rd.c);
        goto cleanup;
    }
    if (n > d->n) {
        st = ns_error(NS_EINVAL, "--n %zu is larger than the data set (%zu %s samples in '%s')",
                      n, d->n, split == NS_SPLIT_TRAIN ? "training" : "test", cfg->data);
        goto cleanup;
    }
    if (!n)
        n = d->n;
    if (cfg->standardize)
        ns_data_standardize(in->d, in->rd.mean, in->rd.std);
    if (o->mode == NS_BN_RECAL) {
        ns_train_config tc = *cfg;
        tc.train_n = o->recal_n;
        if ((st = ns_train_load_data(&tc, NS_SPLIT_TRAIN, &in->cal, NULL, NULL)))
            goto cleanup;
        if (o->recal_n_strict && o->recal_n > in->cal->n) {
            st = ns_error(NS_EINVAL, "--recal-n %zu is larger than the training set (%zu "
                          "samples in '%s')", o->recal_n, in->cal->n, cfg->data);
            goto cleanup;
        }
        if (cfg->standardize)
            ns_data_standardize(in->cal, in->rd.mean, in->rd.std);
    }
    if (!o->set_only) {
        /* the samples, gathered in order; eval reads d whole instead */
        size_t dim = ns_data_dim(d);
        in->n = n;
        in->x = ns_malloc(n * dim * sizeof *in->x);
        in->y = ns_malloc(n * sizeof *in->y);
        in->idx = ns_malloc(n * sizeof *in->idx);
        if (!in->x || !in->y || !in->idx) {
            st = ns_error(NS_ENOMEM, "out of memory for %zu samples", n);
            goto cleanup;
        }
        if ((st = choose(d, n, o->sample_seed, in->idx)))
            goto cleanup;
        ns_data_gather(d, in->idx, n, in->x, in->y);
    }
    if (o->mode == NS_BN_RECAL)
        st = ns_recalibrate(in->net, in->cal, o->recal_n);
cleanup:
    ns_free(have);
    if (st)
        ns_run_inputs_free(in);
    return st;
}

int ns_run_inputs_load(ns_run_inputs *in, uint64_t step)
{
    ns_net_free(in->net);
    in->net = NULL;
    ns_train_config cfg;   /* the same as in->cfg, whose data may name another set */
    int st = ns_run_load(in->path, step, in->opts.max_batch, &in->net, &cfg, &in->step);
    if (!st && in->opts.mode == NS_BN_RECAL)
        st = ns_recalibrate(in->net, in->cal, in->opts.recal_n);
    return st;
}

void ns_run_inputs_free(ns_run_inputs *in)
{
    ns_free(in->steps);
    ns_free(in->x);
    ns_free(in->y);
    ns_free(in->idx);
    ns_data_free(in->d);
    ns_data_free(in->cal);
    ns_net_free(in->net);
    in->steps = NULL;
    in->x = NULL;
    in->y = NULL;
    in->idx = NULL;
    in->d = in->cal = NULL;
    in->net = NULL;
    in->nsteps = in->n = 0;
}
