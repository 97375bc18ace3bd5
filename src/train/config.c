/*
 * Training configuration: defaults (the recipe that trains the presets
 * well without further flags), validation, names of settings, and its
 * storage as attributes of /config in the run file.
 */
#include "normscope/train.h"
#include "normscope/norm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ns_train_config_default(ns_train_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->arch, sizeof c->arch, "mlp");
    snprintf(c->data, sizeof c->data, "fashion-mnist");
    ns_net_opts_default(&c->net);
    c->init.kind = NS_INIT_TORCH;
    c->init.sw2 = 2;
    c->optim = NS_OPTIM_SGD;
    c->lr = 0.05;
    c->momentum = 0.9;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->adam_eps = 1e-8;
    c->gamma = 0.1;
    c->epochs = 3;
    c->batch = 128;
    c->seed = 1;
    c->ckpt_every = 1;
    c->schedule = NS_SCHED_COSINE;
    c->standardize = 1;
}

int ns_train_config_check(const ns_train_config *c)
{
    if (!(c->lr > 0) || c->lr > 1e6)
        return ns_error(NS_EINVAL, "--lr must be positive, got %g", c->lr);
    if (!(c->momentum >= 0 && c->momentum < 1))
        return ns_error(NS_EINVAL, "--momentum must be in [0, 1), got %g", c->momentum);
    if (!(c->wd >= 0))
        return ns_error(NS_EINVAL, "--wd must be non-negative, got %g", c->wd);
    if (!(c->clip >= 0) || !isfinite(c->clip))
        return ns_error(NS_EINVAL, "--clip must be a non-negative number, got %g", c->clip);
    if (c->batch == 0 || c->batch > 65536)
        return ns_error(NS_EINVAL, "--batch must be between 1 and 65536, got %zu", c->batch);
    if (c->epochs == 0 && c->steps == 0)
        return ns_error(NS_EINVAL, "--epochs or --steps must be positive");
    if (c->nesterov && c->momentum == 0)
        return ns_error(NS_EINVAL, "--nesterov needs a positive --momentum");
    if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1))
        return ns_error(NS_EINVAL, "Adam betas must be in [0, 1)");
    if (!(c->net.bn_momentum >= 0 && c->net.bn_momentum <= 1))
        return ns_error(NS_EINVAL, "--bn-momentum must be in [0, 1], got %g", c->net.bn_momentum);
    if (!(c->net.bn_eps > 0))
        return ns_error(NS_EINVAL, "--bn-eps must be positive, got %g", c->net.bn_eps);
    if (c->net.norm_group > c->batch)
        return ns_error(NS_EINVAL, "--norm-group %zu is larger than --batch %zu",
                        c->net.norm_group, c->batch);
    if (!(c->net.ic_drop >= 0 && c->net.ic_drop < 1))
        return ns_error(NS_EINVAL, "--ic-drop must be in [0, 1), got %g", c->net.ic_drop);
    if (!(c->net.bkn_p <= 1) || (c->net.bkn_p < 0 && c->net.bkn_p != -1))
        return ns_error(NS_EINVAL, "--bkn-p must be in [0, 1], got %g", c->net.bkn_p);
    if (c->net.bkn_samples == 0)
        return ns_error(NS_EINVAL, "--bkn-samples must be positive");
    if (c->net.bkn_predict != NS_BKN_PREDICT_GROUP && c->net.bkn_predict != NS_BKN_PREDICT_LAST)
        return ns_error(NS_EINVAL, "--bkn-predict is group or last");
    if (c->net.bkn_grad != 0 && c->net.bkn_grad != 1)
        return ns_error(NS_EINVAL, "--bkn-grad is none or full");
    if (!(c->net.agc > 0))
        return ns_error(NS_EINVAL, "--agc must be positive, got %g", c->net.agc);
    if (c->net.mabn_buffer > 4096)
        return ns_error(NS_EINVAL, "--mabn-buffer must be between 1 and 4096");
    if (c->net.mabn_real_batch == 0 || c->net.mabn_real_batch > 65536)
        return ns_error(NS_EINVAL, "--mabn-real-batch must be between 1 and 65536");
    if (c->net.gn_groups == 0)
        return ns_error(NS_EINVAL, "--gn-groups must be positive");
    if (!(c->net.fct > -1 && c->net.fct <= 1))
        return ns_error(NS_EINVAL, "--fct must be in (-1, 1], got %g", c->net.fct);
    if (!(c->net.frn_eps > 0))
        return ns_error(NS_EINVAL, "--frn-eps must be positive, got %g", c->net.frn_eps);
    if (!isfinite(c->net.psbn_alpha))
        return ns_error(NS_EINVAL, "--psbn-alpha must be finite");
    if (c->init.kind == NS_INIT_GAUSS && (!(c->init.sw2 > 0) || !(c->init.sb2 >= 0)))
        return ns_error(NS_EINVAL, "--init gauss needs sw2 > 0 and sb2 >= 0");
    return NS_OK;
}

int ns_parse_optim(const char *s, ns_optim_kind *k)
{
    if (!strcmp(s, "sgd")) *k = NS_OPTIM_SGD;
    else if (!strcmp(s, "adam")) *k = NS_OPTIM_ADAM;
    else if (!strcmp(s, "adamw")) *k = NS_OPTIM_ADAMW;
    else return ns_error(NS_EINVAL, "unknown optimiser '%s' (sgd, adam, adamw)", s);
    return NS_OK;
}

const char *ns_optim_name(ns_optim_kind k)
{
    return k == NS_OPTIM_ADAM ? "adam" : k == NS_OPTIM_ADAMW ? "adamw" : "sgd";
}

int ns_parse_schedule(const char *s, ns_train_config *c)
{
    if (!strcmp(s, "const") || !strcmp(s, "constant")) {
        c->schedule = NS_SCHED_CONST;
        return NS_OK;
    }
    if (!strcmp(s, "cosine")) {
        c->schedule = NS_SCHED_COSINE;
        return NS_OK;
    }
    if (strncmp(s, "step:", 5) == 0) {
        const char *p = s + 5;
        char *end;
        c->nmilestones = 0;
        for (;;) {
            long e = strtol(p, &end, 10);
            if (end == p || e <= 0 || c->nmilestones >= NS_MAX_MILESTONES)
                return ns_error(NS_EINVAL, "bad schedule '%s' (step:E1,E2[@GAMMA])", s);
            c->milestones[c->nmilestones++] = (size_t)e;
            if (*end == ',') {
                p = end + 1;
                continue;
            }
            break;
        }
        if (*end == '@') {
            const char *g = end + 1;
            c->gamma = strtod(g, &end);
            if (end == g || !(c->gamma > 0))
                return ns_error(NS_EINVAL, "bad schedule '%s' (step:E1,E2[@GAMMA])", s);
        }
        if (*end)
            return ns_error(NS_EINVAL, "bad schedule '%s' (step:E1,E2[@GAMMA])", s);
        c->schedule = NS_SCHED_STEP;
        return NS_OK;
    }
    return ns_error(NS_EINVAL, "unknown schedule '%s' (const, step:E1,E2[@GAMMA], cosine)", s);
}

void ns_schedule_name(const ns_train_config *c, char *buf, size_t len)
{
    if (c->schedule == NS_SCHED_CONST) {
        snprintf(buf, len, "const");
    } else if (c->schedule == NS_SCHED_COSINE) {
        snprintf(buf, len, "cosine");
    } else {
        size_t u = (size_t)snprintf(buf, len, "step:");
        for (size_t i = 0; i < c->nmilestones && u < len; i++)
            u += (size_t)snprintf(buf + u, len - u, "%s%zu", i ? "," : "", c->milestones[i]);
        if (u < len)
            snprintf(buf + u, len - u, "@%g", c->gamma);
    }
}

int ns_parse_init(const char *s, ns_init *init)
{
    memset(init, 0, sizeof *init);
    if (!strcmp(s, "torch")) init->kind = NS_INIT_TORCH;
    else if (!strcmp(s, "he-normal")) init->kind = NS_INIT_HE_NORMAL;
    else if (!strcmp(s, "he-uniform")) init->kind = NS_INIT_HE_UNIFORM;
    else if (!strcmp(s, "xavier")) init->kind = NS_INIT_XAVIER;
    else if (!strcmp(s, "mimic")) init->kind = NS_INIT_MIMIC;
    else if (!strncmp(s, "gauss:", 6)) {
        char *end;
        init->kind = NS_INIT_GAUSS;
        init->sw2 = strtod(s + 6, &end);
        if (end == s + 6 || *end != ',')
            return ns_error(NS_EINVAL, "bad initialiser '%s' (gauss:SW2,SB2)", s);
        const char *b = end + 1;
        init->sb2 = strtod(b, &end);
        if (end == b || *end || !(init->sw2 > 0) || !(init->sb2 >= 0))
            return ns_error(NS_EINVAL, "bad initialiser '%s' (gauss:SW2,SB2 with SW2 > 0, SB2 >= 0)", s);
    } else
        return ns_error(NS_EINVAL, "unknown initialiser '%s' (torch, he-normal, he-uniform, "
                        "xavier, mimic, gauss:SW2,SB2)", s);
    return NS_OK;
}

void ns_init_name(const ns_init *init, char *buf, size_t len)
{
    switch (init->kind) {
    case NS_INIT_TORCH: snprintf(buf, len, "torch"); break;
    case NS_INIT_HE_NORMAL: snprintf(buf, len, "he-normal"); break;
    case NS_INIT_HE_UNIFORM: snprintf(buf, len, "he-uniform"); break;
    case NS_INIT_XAVIER: snprintf(buf, len, "xavier"); break;
    case NS_INIT_GAUSS: snprintf(buf, len, "gauss:%.17g,%.17g", init->sw2, init->sb2); break;
    case NS_INIT_MIMIC: snprintf(buf, len, "mimic"); break;
    }
}

int ns_train_config_save(hid_t fid, const ns_train_config *c)
{
    const char *g = "/config";
    char buf[256];
    int st = ns_h5_group(fid, g);
    if (!st) st = ns_h5_attr_str(fid, g, "arch", c->arch);
    if (!st) st = ns_h5_attr_str(fid, g, "data", c->data);
    if (!st) st = ns_h5_attr_str(fid, g, "norm", c->net.norm);
    if (!st) st = ns_h5_attr_int(fid, g, "norm_group", (int64_t)c->net.norm_group);
    if (!st) st = ns_h5_attr_double(fid, g, "bn_momentum", c->net.bn_momentum);
    if (!st) st = ns_h5_attr_double(fid, g, "bn_eps", c->net.bn_eps);
    if (!st) st = ns_h5_attr_int(fid, g, "bn_affine", c->net.bn_affine);
    if (!st) st = ns_h5_attr_int(fid, g, "gn_groups", (int64_t)c->net.gn_groups);
    if (!st) st = ns_h5_attr_double(fid, g, "psbn_alpha", c->net.psbn_alpha);
    if (!st) st = ns_h5_attr_double(fid, g, "fct", c->net.fct);
    if (!st) st = ns_h5_attr_double(fid, g, "frn_eps", c->net.frn_eps);
    if (!st) st = ns_h5_attr_int(fid, g, "frn_relu", c->net.frn_relu);
    if (!st) st = ns_h5_attr_int(fid, g, "wm_all", c->net.wm_all);
    if (!st) st = ns_h5_attr_double(fid, g, "ic_drop", c->net.ic_drop);
    if (!st) st = ns_h5_attr_double(fid, g, "agc", c->net.agc);
    if (!st) st = ns_h5_attr_double(fid, g, "bkn_p", c->net.bkn_p);
    if (!st) st = ns_h5_attr_int(fid, g, "pn_warmup", (int64_t)c->net.pn_warmup);
    if (!st) st = ns_h5_attr_int(fid, g, "bkn_samples", (int64_t)c->net.bkn_samples);
    if (!st) st = ns_h5_attr_str(fid, g, "bkn_predict",
                                 ns_bkn_predict_name((ns_bkn_predict)c->net.bkn_predict));
    if (!st) st = ns_h5_attr_int(fid, g, "bkn_grad", c->net.bkn_grad);
    /* ns_train resolves the buffer before saving; 0 (the rule) stays 0 */
    if (!st) st = ns_h5_attr_int(fid, g, "mabn_buffer", (int64_t)c->net.mabn_buffer);
    if (!st) st = ns_h5_attr_int(fid, g, "mabn_real_batch", (int64_t)c->net.mabn_real_batch);
    if (!st) st = ns_h5_attr_int(fid, g, "mabn_warmup", (int64_t)c->net.mabn_warmup);
    if (!st) st = ns_h5_attr_int(fid, g, "brn_warmup", (int64_t)c->net.brn_warmup);
    if (!st) st = ns_h5_attr_int(fid, g, "brn_ramp", (int64_t)c->net.brn_ramp);
    if (!st) st = ns_h5_attr_int(fid, g, "res_scale_paper", c->net.res_scale_paper);
    ns_init_name(&c->init, buf, sizeof buf);
    if (!st) st = ns_h5_attr_str(fid, g, "init", buf);
    if (!st) st = ns_h5_attr_str(fid, g, "optim", ns_optim_name(c->optim));
    if (!st) st = ns_h5_attr_double(fid, g, "lr", c->lr);
    if (!st) st = ns_h5_attr_double(fid, g, "momentum", c->momentum);
    if (!st) st = ns_h5_attr_double(fid, g, "wd", c->wd);
    if (!st) st = ns_h5_attr_double(fid, g, "clip", c->clip);
    if (!st) st = ns_h5_attr_int(fid, g, "nesterov", c->nesterov);
    if (!st) st = ns_h5_attr_double(fid, g, "beta1", c->beta1);
    if (!st) st = ns_h5_attr_double(fid, g, "beta2", c->beta2);
    if (!st) st = ns_h5_attr_double(fid, g, "adam_eps", c->adam_eps);
    ns_schedule_name(c, buf, sizeof buf);
    if (!st) st = ns_h5_attr_str(fid, g, "schedule", buf);
    if (!st) st = ns_h5_attr_int(fid, g, "warmup", (int64_t)c->warmup);
    if (!st) st = ns_h5_attr_int(fid, g, "epochs", (int64_t)c->epochs);
    if (!st) st = ns_h5_attr_int(fid, g, "steps", (int64_t)c->steps);
    if (!st) st = ns_h5_attr_int(fid, g, "batch", (int64_t)c->batch);
    if (!st) st = ns_h5_attr_int(fid, g, "seed", (int64_t)c->seed);
    if (!st) st = ns_h5_attr_int(fid, g, "ckpt_every", (int64_t)c->ckpt_every);
    if (!st) st = ns_h5_attr_int(fid, g, "standardize", c->standardize);
    if (!st) st = ns_h5_attr_int(fid, g, "train_n", (int64_t)c->train_n);
    if (!st) st = ns_h5_attr_int(fid, g, "test_n", (int64_t)c->test_n);
    if (!st) st = ns_h5_attr_int(fid, g, "threads", c->threads);
    if (!st && c->nckpt_steps) {
        double v[64];
        for (size_t i = 0; i < c->nckpt_steps; i++)
            v[i] = (double)c->ckpt_steps[i];
        st = ns_h5_attr_doubles(fid, g, "ckpt_steps", v, c->nckpt_steps);
    }
    return st;
}

static int get_size(hid_t fid, const char *g, const char *name, size_t *v)
{
    int64_t x;
    int st = ns_h5_get_int(fid, g, name, &x);
    if (!st)
        *v = (size_t)x;
    return st;
}

/* Options of normalization methods were added after format version 1
 * appeared: files without them keep the defaults. */
static int opt_double(hid_t fid, const char *g, const char *name, double *v)
{
    if (H5Aexists_by_name(fid, g, name, H5P_DEFAULT) <= 0)
        return NS_OK;
    return ns_h5_get_double(fid, g, name, v);
}

static int opt_size(hid_t fid, const char *g, const char *name, size_t *v)
{
    if (H5Aexists_by_name(fid, g, name, H5P_DEFAULT) <= 0)
        return NS_OK;
    return get_size(fid, g, name, v);
}

static int opt_int(hid_t fid, const char *g, const char *name, int *v)
{
    int64_t x;
    if (H5Aexists_by_name(fid, g, name, H5P_DEFAULT) <= 0)
        return NS_OK;
    int st = ns_h5_get_int(fid, g, name, &x);
    if (!st)
        *v = (int)x;
    return st;
}

int ns_train_config_load(hid_t fid, ns_train_config *c)
{
    const char *g = "/config";
    char buf[256];
    int64_t iv;
    ns_train_config_default(c);
    int st = ns_h5_get_str(fid, g, "arch", c->arch, sizeof c->arch);
    if (!st) st = ns_h5_get_str(fid, g, "data", c->data, sizeof c->data);
    if (!st) st = ns_h5_get_str(fid, g, "norm", c->net.norm, sizeof c->net.norm);
    if (!st) st = get_size(fid, g, "norm_group", &c->net.norm_group);
    if (!st) st = ns_h5_get_double(fid, g, "bn_momentum", &c->net.bn_momentum);
    if (!st) st = ns_h5_get_double(fid, g, "bn_eps", &c->net.bn_eps);
    if (!st && !(st = ns_h5_get_int(fid, g, "bn_affine", &iv))) c->net.bn_affine = (int)iv;
    if (!st) st = opt_size(fid, g, "gn_groups", &c->net.gn_groups);
    if (!st) st = opt_double(fid, g, "psbn_alpha", &c->net.psbn_alpha);
    if (!st) st = opt_double(fid, g, "fct", &c->net.fct);
    if (!st) st = opt_double(fid, g, "frn_eps", &c->net.frn_eps);
    c->net.frn_relu = 1; /* runs written before the attribute kept the relu */
    if (!st) st = opt_int(fid, g, "frn_relu", &c->net.frn_relu);
    if (!st) st = opt_int(fid, g, "wm_all", &c->net.wm_all);
    if (!st) st = opt_double(fid, g, "ic_drop", &c->net.ic_drop);
    if (!st) st = opt_double(fid, g, "agc", &c->net.agc);
    if (!st) st = opt_double(fid, g, "bkn_p", &c->net.bkn_p);
    if (!st) st = opt_size(fid, g, "pn_warmup", &c->net.pn_warmup);
    if (!st) st = opt_size(fid, g, "bkn_samples", &c->net.bkn_samples);
    /* runs written before these attributes predicted every group from the
     * previous layer's last group, without gradient through the prediction */
    c->net.bkn_predict = NS_BKN_PREDICT_LAST;
    c->net.bkn_grad = 0;
    if (!st && H5Aexists_by_name(fid, g, "bkn_predict", H5P_DEFAULT) > 0) {
        ns_bkn_predict mode = NS_BKN_PREDICT_LAST;
        if (!(st = ns_h5_get_str(fid, g, "bkn_predict", buf, sizeof buf)))
            st = ns_bkn_parse_predict(buf, &mode);
        c->net.bkn_predict = (int)mode;
    }
    if (!st) st = opt_int(fid, g, "bkn_grad", &c->net.bkn_grad);
    c->net.mabn_buffer = 16; /* runs written before the attribute used 16 */
    if (!st) st = opt_size(fid, g, "mabn_buffer", &c->net.mabn_buffer);
    if (!st) st = opt_size(fid, g, "mabn_real_batch", &c->net.mabn_real_batch);
    if (!st) st = opt_size(fid, g, "mabn_warmup", &c->net.mabn_warmup);
    if (!st) st = opt_size(fid, g, "brn_warmup", &c->net.brn_warmup);
    if (!st) st = opt_size(fid, g, "brn_ramp", &c->net.brn_ramp);
    if (!st) st = opt_int(fid, g, "res_scale_paper", &c->net.res_scale_paper);
    if (!st && !(st = ns_h5_get_str(fid, g, "init", buf, sizeof buf))) st = ns_parse_init(buf, &c->init);
    if (!st && !(st = ns_h5_get_str(fid, g, "optim", buf, sizeof buf))) st = ns_parse_optim(buf, &c->optim);
    if (!st) st = ns_h5_get_double(fid, g, "lr", &c->lr);
    if (!st) st = ns_h5_get_double(fid, g, "momentum", &c->momentum);
    if (!st) st = ns_h5_get_double(fid, g, "wd", &c->wd);
    if (!st) st = opt_double(fid, g, "clip", &c->clip);
    if (!st && !(st = ns_h5_get_int(fid, g, "nesterov", &iv))) c->nesterov = (int)iv;
    if (!st) st = ns_h5_get_double(fid, g, "beta1", &c->beta1);
    if (!st) st = ns_h5_get_double(fid, g, "beta2", &c->beta2);
    if (!st) st = ns_h5_get_double(fid, g, "adam_eps", &c->adam_eps);
    if (!st && !(st = ns_h5_get_str(fid, g, "schedule", buf, sizeof buf))) st = ns_parse_schedule(buf, c);
    if (!st) st = get_size(fid, g, "warmup", &c->warmup);
    if (!st) st = get_size(fid, g, "epochs", &c->epochs);
    if (!st) st = get_size(fid, g, "steps", &c->steps);
    if (!st) st = get_size(fid, g, "batch", &c->batch);
    if (!st && !(st = ns_h5_get_int(fid, g, "seed", &iv))) c->seed = (uint64_t)iv;
    if (!st) st = get_size(fid, g, "ckpt_every", &c->ckpt_every);
    if (!st && !(st = ns_h5_get_int(fid, g, "standardize", &iv))) c->standardize = (int)iv;
    if (!st) st = get_size(fid, g, "train_n", &c->train_n);
    if (!st) st = get_size(fid, g, "test_n", &c->test_n);
    if (!st && !(st = ns_h5_get_int(fid, g, "threads", &iv))) c->threads = (int)iv;
    if (!st && H5Aexists_by_name(fid, g, "ckpt_steps", H5P_DEFAULT) > 0) {
        double v[64];
        size_t n;
        st = ns_h5_get_doubles(fid, g, "ckpt_steps", v, 64, &n);
        for (size_t i = 0; !st && i < n; i++)
            c->ckpt_steps[i] = (size_t)v[i];
        c->nckpt_steps = st ? 0 : n;
    }
    c->net.max_batch = c->batch;
    if (st)
        return ns_error(NS_EFORMAT, "%s", ns_errmsg());
    return NS_OK;
}
