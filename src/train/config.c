/*
 * Training configuration: the option table of the training settings (the
 * methods' options are declared with the methods, src/norm), defaults (the
 * recipe that trains the presets well without further flags), validation,
 * names of settings, and its storage as attributes of /config in the run
 * file, all driven from the tables.
 */
#include "normscope/train.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "normscope/norm.h"

/* ------------------------------------------------------ the option table */

#define TRAIN(f) .key = #f, .offset = offsetof(ns_train_config, f)

/* Longest runs the command line accepts: a million epochs, a billion steps. */
#define MAX_EPOCHS 1e6
#define MAX_STEPS NS_OPT_MAX_STEPS

/* The training settings; `train --help` describes them.  Method options are
 * declared with their methods (ns_norm_opt_at). */
static const ns_opt opts[] = {
    {.option = "--lr", TRAIN(lr), .type = NS_OPT_DOUBLE, .min = 0, .max = 1e6,
     .flags = NS_OPT_MIN_OPEN, .def = 0.05, .arg = "LR"},
    {.option = "--momentum", TRAIN(momentum), .type = NS_OPT_DOUBLE, .min = 0, .max = 1,
     .flags = NS_OPT_MAX_OPEN, .def = 0.9, .arg = "M"},
    {.option = "--wd", TRAIN(wd), .type = NS_OPT_DOUBLE, .min = 0, .max = INFINITY,
     .def = 0, .arg = "W"},
    {.option = "--clip", TRAIN(clip), .type = NS_OPT_DOUBLE, .min = 0, .max = INFINITY,
     .flags = NS_OPT_OLD, .def = 0, .old = 0, .arg = "N"},
    {.flag = "--nesterov", TRAIN(nesterov), .type = NS_OPT_INT, .min = 0, .max = 1, .def = 0},
    {.option = "--beta1", TRAIN(beta1), .type = NS_OPT_DOUBLE, .min = 0, .max = 1,
     .flags = NS_OPT_MAX_OPEN, .def = 0.9, .arg = "B"},
    {.option = "--beta2", TRAIN(beta2), .type = NS_OPT_DOUBLE, .min = 0, .max = 1,
     .flags = NS_OPT_MAX_OPEN, .def = 0.999, .arg = "B"},
    {.option = "--adam-eps", TRAIN(adam_eps), .type = NS_OPT_DOUBLE, .min = 0,
     .max = INFINITY, .flags = NS_OPT_MIN_OPEN, .def = 1e-8, .arg = "E"},
    {.option = "--warmup", TRAIN(warmup), .type = NS_OPT_SIZE, .min = 0, .max = MAX_STEPS,
     .def = 0, .arg = "N"},
    {.option = "--epochs", TRAIN(epochs), .type = NS_OPT_SIZE, .min = 0, .max = MAX_EPOCHS,
     .def = 3, .arg = "E"},
    {.option = "--steps", TRAIN(steps), .type = NS_OPT_SIZE, .min = 0, .max = MAX_STEPS,
     .def = 0, .arg = "S"},
    {.option = "--batch", TRAIN(batch), .type = NS_OPT_SIZE, .min = 1, .max = 65536,
     .def = 128, .arg = "B"},
    {.option = "--seed", TRAIN(seed), .type = NS_OPT_U64, .def = 1, .arg = "S"},
    {.option = "--ckpt-every", TRAIN(ckpt_every), .type = NS_OPT_SIZE, .min = 0,
     .max = MAX_EPOCHS, .def = 1, .arg = "E"},
    {.flag = "--no-standardize", TRAIN(standardize), .type = NS_OPT_INT, .min = 0, .max = 1,
     .def = 1},
    {.option = "--train-n", TRAIN(train_n), .type = NS_OPT_SIZE, .min = 0, .max = 1e9,
     .def = 0, .arg = "N"},
    {.option = "--test-n", TRAIN(test_n), .type = NS_OPT_SIZE, .min = 0, .max = 1e9,
     .def = 0, .arg = "N"},
    {.option = "--threads", TRAIN(threads), .type = NS_OPT_INT, .min = 1, .max = 256,
     .flags = NS_OPT_UNSET, .unset = 0, .def = 0, .arg = "T"},
};

#define NOPTS (sizeof opts / sizeof *opts)

void ns_train_config_default(ns_train_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->arch, sizeof c->arch, "mlp");
    snprintf(c->data, sizeof c->data, "fashion-mnist");
    ns_net_opts_default(&c->net);
    ns_opt_defaults(opts, NOPTS, c);
    c->init.kind = NS_INIT_TORCH;
    c->init.sw2 = 2;
    c->optim = NS_OPTIM_SGD;
    c->gamma = 0.1;
    c->schedule = NS_SCHED_COSINE;
}

size_t ns_train_setting_count(void)
{
    size_t n = NOPTS;
    while (ns_norm_opt_at(n - NOPTS))
        n++;
    return n;
}

const ns_opt *ns_train_setting_at(size_t i)
{
    return i < NOPTS ? &opts[i] : ns_norm_opt_at(i - NOPTS);
}

size_t ns_train_opt_count(void)
{
    size_t n = 0;
    const ns_opt *o;
    for (size_t i = 0; (o = ns_train_setting_at(i)); i++)
        n += !o->choices;
    return n;
}

const ns_train_opt *ns_train_opt_at(size_t i)
{
    const ns_opt *o;
    for (size_t k = 0; (o = ns_train_setting_at(k)); k++)
        if (!o->choices && i-- == 0)
            return o;
    return NULL;
}

const ns_train_opt *ns_train_opt_find(const char *name)
{
    const ns_opt *o;
    for (size_t i = 0; (o = ns_train_setting_at(i)); i++)
        if ((o->option && !strcmp(o->option, name)) || (o->flag && !strcmp(o->flag, name)) ||
            !strcmp(o->key, name))
            return o;
    return NULL;
}

void *ns_train_opt_base(const ns_train_opt *o, ns_train_config *c)
{
    return o->flags & NS_OPT_NET ? (void *)&c->net : (void *)c;
}

static const void *const_base(const ns_opt *o, const ns_train_config *c)
{
    return o->flags & NS_OPT_NET ? (const void *)&c->net : (const void *)c;
}

double ns_train_opt_get(const ns_train_opt *o, const ns_train_config *c)
{
    return ns_opt_get(o, const_base(o, c));
}

int ns_train_opt_check(const ns_train_opt *o, double v, int cli, char *why, size_t len)
{
    return ns_opt_check(o, v, cli, why, len);
}

int ns_train_opt_parse(const ns_train_opt *o, const char *s, ns_train_config *c)
{
    return ns_opt_parse(o, s, ns_train_opt_base(o, c));
}

/* ------------------------------------------------------------ checks */

int ns_train_config_check(const ns_train_config *c)
{
    char why[256];
    const ns_opt *o;
    for (size_t i = 0; (o = ns_train_setting_at(i)); i++)
        if (o->type != NS_OPT_U64 && ns_opt_check(o, ns_train_opt_get(o, c), 0, why, sizeof why))
            return ns_error(NS_EINVAL, "%s %s", o->option ? o->option : o->key, why);
    if (c->epochs == 0 && c->steps == 0)
        return ns_error(NS_EINVAL, "--epochs or --steps must be positive");
    if (c->nesterov && c->momentum == 0)
        return ns_error(NS_EINVAL, "--nesterov needs a positive --momentum");
    if (c->net.norm_group > c->batch)
        return ns_error(NS_EINVAL, "--norm-group %zu is larger than --batch %zu",
                        c->net.norm_group, c->batch);
    if (!ns_norm_find(c->net.norm))
        return ns_error(NS_EINVAL, "unknown normalization method '%s'", c->net.norm);
    char buf[4096];
    if (ns_arch_expand(c->arch, buf, sizeof buf))
        return NS_EINVAL;
    if (c->init.kind == NS_INIT_GAUSS && (!(c->init.sw2 > 0) || !(c->init.sb2 >= 0) ||
                                          !isfinite(c->init.sw2) || !isfinite(c->init.sb2)))
        return ns_error(NS_EINVAL, "--init gauss needs finite sw2 > 0 and sb2 >= 0");
    if (c->schedule == NS_SCHED_STEP) {
        if (!(c->gamma > 0) || !isfinite(c->gamma))
            return ns_error(NS_EINVAL, "the step schedule's factor must be a finite number "
                            "> 0, got %g", c->gamma);
        if (c->nmilestones < 1 || c->nmilestones > NS_MAX_MILESTONES)
            return ns_error(NS_EINVAL, "the step schedule needs 1 to %d milestones",
                            NS_MAX_MILESTONES);
        for (size_t i = 0; i < c->nmilestones; i++)
            if (c->milestones[i] < 1 || c->milestones[i] > MAX_EPOCHS)
                return ns_error(NS_EINVAL, "a milestone of the step schedule must be an "
                                "epoch in 1..%.0f, got %zu", MAX_EPOCHS, c->milestones[i]);
    }
    if (c->nckpt_steps > 64)
        return ns_error(NS_EINVAL, "--ckpt-steps takes at most 64 steps");
    for (size_t i = 0; i < c->nckpt_steps; i++)
        if (c->ckpt_steps[i] > MAX_STEPS)
            return ns_error(NS_EINVAL, "--ckpt-steps must be integers in 0..%.0f, got %zu",
                            MAX_STEPS, c->ckpt_steps[i]);
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
            if (end == g || !(c->gamma > 0) || !isfinite(c->gamma))
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
        if (end == b || *end || !(init->sw2 > 0) || !(init->sb2 >= 0) ||
            !isfinite(init->sw2) || !isfinite(init->sb2))
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

int ns_train_config_save(ns_hid fid, const ns_train_config *c)
{
    const char *g = "/config";
    char buf[256];
    int st = ns_h5_group(fid, g);
    if (!st) st = ns_h5_attr_str(fid, g, "arch", c->arch);
    if (!st) st = ns_h5_attr_str(fid, g, "data", c->data);
    if (!st) st = ns_h5_attr_str(fid, g, "norm", c->net.norm);
    /* ns_train resolves the MABN buffer before saving; 0 (the rule) stays 0 */
    const ns_opt *o;
    for (size_t i = 0; !st && (o = ns_train_setting_at(i)); i++) {
        double v = ns_train_opt_get(o, c);
        if (o->flags & NS_OPT_BY_NAME) {
            const char *name = ns_opt_choice_name(o, v);
            st = name ? ns_h5_attr_str(fid, g, o->key, name)
                      : ns_error(NS_EINVAL, "%s is not one of its values: %g", o->key, v);
        } else if (o->type == NS_OPT_DOUBLE) {
            st = ns_h5_attr_double(fid, g, o->key, v);
        } else if (o->type == NS_OPT_U64) {
            const char *p = (const char *)const_base(o, c) + o->offset;
            st = ns_h5_attr_int(fid, g, o->key, (int64_t)*(const uint64_t *)p);
        } else {
            st = ns_h5_attr_int(fid, g, o->key, (int64_t)v);
        }
    }
    ns_init_name(&c->init, buf, sizeof buf);
    if (!st) st = ns_h5_attr_str(fid, g, "init", buf);
    if (!st) st = ns_h5_attr_str(fid, g, "optim", ns_optim_name(c->optim));
    ns_schedule_name(c, buf, sizeof buf);
    if (!st) st = ns_h5_attr_str(fid, g, "schedule", buf);
    if (!st && c->nckpt_steps) {
        double v[64];
        for (size_t i = 0; i < c->nckpt_steps; i++)
            v[i] = (double)c->ckpt_steps[i];
        st = ns_h5_attr_doubles(fid, g, "ckpt_steps", v, c->nckpt_steps);
    }
    return st;
}

/* A string attribute of /config. */
static int load_str(ns_hid fid, const char *name, char *buf, size_t len)
{
    return ns_h5_get_str(fid, "/config", name, buf, len);
}

/* One entry of the tables from /config, checked as the command line checks
 * it.  Keys added after format version 1 may be missing: the run trained
 * with the entry's `old` value. */
static int load_opt(ns_hid fid, const ns_opt *o, ns_train_config *c)
{
    const char *g = "/config";
    void *base = ns_train_opt_base(o, c);
    if (o->flags & NS_OPT_OLD)
        ns_opt_set(o, base, o->old);
    if ((o->flags & NS_OPT_OLD) && !ns_h5_attr_exists(fid, g, o->key))
        return NS_OK;
    char why[256];
    if (o->flags & NS_OPT_BY_NAME) {
        char buf[256];
        int v;
        if (load_str(fid, o->key, buf, sizeof buf))
            return NS_EFORMAT;
        if (ns_opt_choice_value(o, buf, &v)) {
            ns_opt_range(o, 0, why, sizeof why);
            return ns_error(NS_EFORMAT, "cannot read '%s': /config attribute '%s' must be %s, "
                            "got '%s'", ns_h5_name(fid), o->key, why, buf);
        }
        ns_opt_set(o, base, v);
        return NS_OK;
    }
    double d;
    int64_t i;
    int is_int;
    int st = ns_h5_get_num(fid, g, o->key, &d, &i, &is_int);
    if (st)
        return st;
    if (o->type == NS_OPT_U64 && is_int) {
        /* seeds from 2^63 up are written as negative int64 */
        *(uint64_t *)((char *)base + o->offset) = (uint64_t)i;
        return NS_OK;
    }
    if (ns_opt_check(o, d, 0, why, sizeof why))
        return ns_error(NS_EFORMAT, "cannot read '%s': /config attribute '%s' %s",
                        ns_h5_name(fid), o->key, why);
    ns_opt_set(o, base, d);
    return NS_OK;
}

int ns_train_config_load(ns_hid fid, ns_train_config *c)
{
    const char *g = "/config";
    char buf[256];
    ns_train_config_default(c);
    int st = load_str(fid, "arch", c->arch, sizeof c->arch);
    if (!st) st = load_str(fid, "data", c->data, sizeof c->data);
    if (!st) st = load_str(fid, "norm", c->net.norm, sizeof c->net.norm);
    const ns_opt *o;
    for (size_t i = 0; !st && (o = ns_train_setting_at(i)); i++)
        st = load_opt(fid, o, c);
    if (st)
        return NS_EFORMAT;
    const char *what = "init";
    if (!(st = load_str(fid, what, buf, sizeof buf)))
        st = ns_parse_init(buf, &c->init);
    if (!st && !(st = load_str(fid, what = "optim", buf, sizeof buf)))
        st = ns_parse_optim(buf, &c->optim);
    if (!st && !(st = load_str(fid, what = "schedule", buf, sizeof buf)))
        st = ns_parse_schedule(buf, c);
    if (st == NS_EINVAL)
        return ns_error(NS_EFORMAT, "cannot read '%s': /config attribute '%s': %s",
                        ns_h5_name(fid), what, ns_errmsg());
    if (st)
        return NS_EFORMAT;
    if (ns_h5_attr_exists(fid, g, "ckpt_steps")) {
        double v[64];
        size_t n;
        if ((st = ns_h5_get_doubles(fid, g, "ckpt_steps", v, 64, &n)))
            return NS_EFORMAT;
        for (size_t i = 0; i < n; i++) {
            if (!(v[i] >= 0 && v[i] <= MAX_STEPS) || v[i] != floor(v[i]))
                return ns_error(NS_EFORMAT, "cannot read '%s': /config attribute 'ckpt_steps' "
                                "must hold integers in 0..%.0f, got %.15g", ns_h5_name(fid),
                                MAX_STEPS, v[i]);
            c->ckpt_steps[i] = (size_t)v[i];
        }
        c->nckpt_steps = n;
    }
    c->net.max_batch = c->batch;
    /* The buffer of files that left it to the rule, resolved as ns_train
     * resolves it, so that every reader builds the same state shapes. */
    if (!c->net.mabn_buffer)
        c->net.mabn_buffer = ns_mabn_buffer_size(&c->net);
    if (ns_train_config_check(c))
        return ns_error(NS_EFORMAT, "cannot read '%s': /config: %s", ns_h5_name(fid),
                        ns_errmsg());
    return NS_OK;
}
