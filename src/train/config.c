/*
 * Training configuration: defaults (the recipe that trains the presets
 * well without further flags), validation, names of settings, and its
 * storage as attributes of /config in the run file.
 */
#include "normscope/train.h"
#include "normscope/norm.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "normscope/norm.h"

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

/* ------------------------------------------------------ the option table */

#define TRAIN(opt, key, type, lo, hi, flags, field) \
    {opt, key, type, lo, hi, flags, 0, offsetof(ns_train_config, field)}
#define NET(opt, key, type, lo, hi, flags, field) \
    {opt, key, type, lo, hi, (flags) | NS_OPT_NET, 0, offsetof(ns_net_opts, field)}

/* Longest runs the command line accepts: a million epochs, a billion steps. */
#define MAX_EPOCHS 1e6
#define MAX_STEPS 1e9

static const ns_train_opt opts[] = {
    /* training */
    TRAIN("--lr", "lr", NS_OPT_DOUBLE, 0, 1e6, NS_OPT_MIN_OPEN, lr),
    TRAIN("--momentum", "momentum", NS_OPT_DOUBLE, 0, 1, NS_OPT_MAX_OPEN, momentum),
    TRAIN("--wd", "wd", NS_OPT_DOUBLE, 0, INFINITY, 0, wd),
    TRAIN("--clip", "clip", NS_OPT_DOUBLE, 0, INFINITY, NS_OPT_OLD, clip),
    TRAIN(NULL, "nesterov", NS_OPT_INT, 0, 1, 0, nesterov),
    TRAIN("--beta1", "beta1", NS_OPT_DOUBLE, 0, 1, NS_OPT_MAX_OPEN, beta1),
    TRAIN("--beta2", "beta2", NS_OPT_DOUBLE, 0, 1, NS_OPT_MAX_OPEN, beta2),
    TRAIN("--adam-eps", "adam_eps", NS_OPT_DOUBLE, 0, INFINITY, NS_OPT_MIN_OPEN, adam_eps),
    TRAIN("--warmup", "warmup", NS_OPT_SIZE, 0, MAX_STEPS, 0, warmup),
    TRAIN("--epochs", "epochs", NS_OPT_SIZE, 0, MAX_EPOCHS, 0, epochs),
    TRAIN("--steps", "steps", NS_OPT_SIZE, 0, MAX_STEPS, 0, steps),
    TRAIN("--batch", "batch", NS_OPT_SIZE, 1, 65536, 0, batch),
    TRAIN("--seed", "seed", NS_OPT_U64, 0, 0, 0, seed),
    TRAIN("--ckpt-every", "ckpt_every", NS_OPT_SIZE, 0, MAX_EPOCHS, 0, ckpt_every),
    TRAIN(NULL, "standardize", NS_OPT_INT, 0, 1, 0, standardize),
    TRAIN("--train-n", "train_n", NS_OPT_SIZE, 0, 1e9, 0, train_n),
    TRAIN("--test-n", "test_n", NS_OPT_SIZE, 0, 1e9, 0, test_n),
    {"--threads", "threads", NS_OPT_INT, 1, 256, NS_OPT_UNSET, 0,
     offsetof(ns_train_config, threads)},
    /* methods (ns_net_opts); --help-norm says which method reads which */
    NET("--norm-group", "norm_group", NS_OPT_SIZE, 0, 65536, 0, norm_group),
    NET("--bn-momentum", "bn_momentum", NS_OPT_DOUBLE, 0, 1, 0, bn_momentum),
    NET("--bn-eps", "bn_eps", NS_OPT_DOUBLE, 0, INFINITY, NS_OPT_MIN_OPEN, bn_eps),
    NET(NULL, "bn_affine", NS_OPT_INT, 0, 1, 0, bn_affine),
    NET("--gn-groups", "gn_groups", NS_OPT_SIZE, 1, 65536, NS_OPT_OLD, gn_groups),
    NET("--psbn-alpha", "psbn_alpha", NS_OPT_DOUBLE, -INFINITY, INFINITY, NS_OPT_OLD,
        psbn_alpha),
    NET("--fct", "fct", NS_OPT_DOUBLE, -1, 1, NS_OPT_OLD | NS_OPT_MIN_OPEN, fct),
    NET("--frn-eps", "frn_eps", NS_OPT_DOUBLE, 0, INFINITY, NS_OPT_OLD | NS_OPT_MIN_OPEN,
        frn_eps),
    NET(NULL, "frn_relu", NS_OPT_INT, 0, 1, NS_OPT_OLD, frn_relu),
    NET(NULL, "wm_all", NS_OPT_INT, 0, 1, NS_OPT_OLD, wm_all),
    NET("--ic-drop", "ic_drop", NS_OPT_DOUBLE, 0, 1, NS_OPT_OLD | NS_OPT_MAX_OPEN, ic_drop),
    NET("--agc", "agc", NS_OPT_DOUBLE, 0, INFINITY, NS_OPT_OLD | NS_OPT_MIN_OPEN, agc),
    {"--bkn-p", "bkn_p", NS_OPT_DOUBLE, 0, 1, NS_OPT_OLD | NS_OPT_UNSET | NS_OPT_NET, -1,
     offsetof(ns_net_opts, bkn_p)},
    NET("--pn-warmup", "pn_warmup", NS_OPT_SIZE, 0, MAX_STEPS, NS_OPT_OLD, pn_warmup),
    NET("--bkn-samples", "bkn_samples", NS_OPT_SIZE, 1, 65536, NS_OPT_OLD, bkn_samples),
    NET("--mabn-buffer", "mabn_buffer", NS_OPT_SIZE, 0, 4096, NS_OPT_OLD, mabn_buffer),
    NET("--mabn-real-batch", "mabn_real_batch", NS_OPT_SIZE, 1, 65536, NS_OPT_OLD,
        mabn_real_batch),
    NET("--mabn-warmup", "mabn_warmup", NS_OPT_SIZE, 0, MAX_STEPS, NS_OPT_OLD, mabn_warmup),
    NET("--brn-warmup", "brn_warmup", NS_OPT_SIZE, 0, MAX_STEPS, NS_OPT_OLD, brn_warmup),
    NET("--brn-ramp", "brn_ramp", NS_OPT_SIZE, 0, MAX_STEPS, NS_OPT_OLD, brn_ramp),
    NET(NULL, "res_scale_paper", NS_OPT_INT, 0, 1, NS_OPT_OLD, res_scale_paper),
};

size_t ns_train_opt_count(void)
{
    return sizeof opts / sizeof *opts;
}

const ns_train_opt *ns_train_opt_at(size_t i)
{
    return i < ns_train_opt_count() ? &opts[i] : NULL;
}

const ns_train_opt *ns_train_opt_find(const char *name)
{
    for (size_t i = 0; i < ns_train_opt_count(); i++)
        if ((opts[i].option && !strcmp(opts[i].option, name)) || !strcmp(opts[i].key, name))
            return &opts[i];
    return NULL;
}

static char *field(const ns_train_opt *o, ns_train_config *c)
{
    return (o->flags & NS_OPT_NET ? (char *)&c->net : (char *)c) + o->offset;
}

double ns_train_opt_get(const ns_train_opt *o, const ns_train_config *c)
{
    const char *p = (o->flags & NS_OPT_NET ? (const char *)&c->net : (const char *)c) + o->offset;
    switch (o->type) {
    case NS_OPT_DOUBLE: return *(const double *)p;
    case NS_OPT_SIZE: return (double)*(const size_t *)p;
    case NS_OPT_INT: return *(const int *)p;
    case NS_OPT_U64: return (double)*(const uint64_t *)p;
    }
    return NAN;
}

/* Stores a value that passed value_ok. */
static void set_value(const ns_train_opt *o, ns_train_config *c, double v)
{
    char *p = field(o, c);
    switch (o->type) {
    case NS_OPT_DOUBLE: *(double *)p = v; break;
    case NS_OPT_SIZE: *(size_t *)p = (size_t)v; break;
    case NS_OPT_INT: *(int *)p = (int)v; break;
    case NS_OPT_U64: *(uint64_t *)p = (uint64_t)v; break;
    }
}

static int value_ok(const ns_train_opt *o, double v, int cli)
{
    if (!isfinite(v))
        return 0;
    if (o->type != NS_OPT_DOUBLE && v != floor(v))
        return 0;
    if (o->type == NS_OPT_U64)
        return v >= 0 && v < 18446744073709551616.0;
    if ((o->flags & NS_OPT_UNSET) && !cli && v == o->unset)
        return 1;
    int lo = o->flags & NS_OPT_MIN_OPEN ? v > o->min : v >= o->min;
    int hi = o->flags & NS_OPT_MAX_OPEN ? v < o->max : v <= o->max;
    return lo && hi;
}

/* "must be an integer in 1..65536", "must be a number in (0, 1]", "must
 * be a finite number > 0", with " or -1" for the unset value off the
 * command line. */
static void range_text(const ns_train_opt *o, int cli, char *buf, size_t len)
{
    int lo = isfinite(o->min), hi = isfinite(o->max);
    const char *gt = o->flags & NS_OPT_MIN_OPEN ? ">" : ">=";
    const char *lt = o->flags & NS_OPT_MAX_OPEN ? "<" : "<=";
    size_t u;
    if (o->type == NS_OPT_U64)
        u = (size_t)snprintf(buf, len, "must be an integer in 0..18446744073709551615");
    else if (o->type != NS_OPT_DOUBLE)
        u = (size_t)snprintf(buf, len, "must be an integer in %.0f..%.0f", o->min, o->max);
    else if (lo && hi)
        u = (size_t)snprintf(buf, len, "must be a number in %c%g, %g%c",
                             o->flags & NS_OPT_MIN_OPEN ? '(' : '[', o->min, o->max,
                             o->flags & NS_OPT_MAX_OPEN ? ')' : ']');
    else if (lo)
        u = (size_t)snprintf(buf, len, "must be a finite number %s %g", gt, o->min);
    else if (hi)
        u = (size_t)snprintf(buf, len, "must be a finite number %s %g", lt, o->max);
    else
        u = (size_t)snprintf(buf, len, "must be a finite number");
    if ((o->flags & NS_OPT_UNSET) && !cli && u < len)
        snprintf(buf + u, len - u, " or %g", o->unset);
}

int ns_train_opt_check(const ns_train_opt *o, double v, int cli, char *why, size_t len)
{
    if (value_ok(o, v, cli))
        return 0;
    char r[128];
    range_text(o, cli, r, sizeof r);
    snprintf(why, len, "%s, got %.15g", r, v);
    return -1;
}

int ns_train_opt_parse(const ns_train_opt *o, const char *s, ns_train_config *c)
{
    const char *name = o->option ? o->option : o->key;
    double v;
    char *end;
    if (o->type == NS_OPT_DOUBLE) {
        v = strtod(s, &end);
        if (end == s || *end || isnan(v))
            return ns_error(NS_EINVAL, "%s expects a number, got '%s'", name, s);
    } else {
        /* Decimal digits only: strtoull alone takes blanks and signs, and
         * wraps " -3" round to 2^64 - 3. */
        errno = 0;
        unsigned long long x = *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
        if (*s < '0' || *s > '9' || *end || errno)
            return ns_error(NS_EINVAL, "%s expects a non-negative integer, got '%s'", name, s);
        if (o->type == NS_OPT_U64) {
            *(uint64_t *)field(o, c) = x;
            return NS_OK;
        }
        v = (double)x;
    }
    if (!value_ok(o, v, 1)) {
        char r[128];
        range_text(o, 1, r, sizeof r);
        return ns_error(NS_EINVAL, "%s %s, got '%s'", name, r, s);
    }
    set_value(o, c, v);
    return NS_OK;
}

/* ------------------------------------------------------------ checks */

int ns_train_config_check(const ns_train_config *c)
{
    char why[256];
    for (size_t i = 0; i < ns_train_opt_count(); i++) {
        const ns_train_opt *o = &opts[i];
        if (o->type != NS_OPT_U64 && ns_train_opt_check(o, ns_train_opt_get(o, c), 0, why,
                                                        sizeof why))
            return ns_error(NS_EINVAL, "%s %s", o->option ? o->option : o->key, why);
    }
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
    if (c->net.bkn_predict != NS_BKN_PREDICT_GROUP && c->net.bkn_predict != NS_BKN_PREDICT_LAST)
        return ns_error(NS_EINVAL, "--bkn-predict is group or last");
    if (c->net.bkn_grad != 0 && c->net.bkn_grad != 1)
        return ns_error(NS_EINVAL, "--bkn-grad is none or full");
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
    for (size_t i = 0; !st && i < ns_train_opt_count(); i++) {
        const ns_train_opt *o = &opts[i];
        const char *p = (o->flags & NS_OPT_NET ? (const char *)&c->net : (const char *)c) +
                        o->offset;
        if (o->type == NS_OPT_DOUBLE)
            st = ns_h5_attr_double(fid, g, o->key, *(const double *)p);
        else if (o->type == NS_OPT_U64)
            st = ns_h5_attr_int(fid, g, o->key, (int64_t)*(const uint64_t *)p);
        else
            st = ns_h5_attr_int(fid, g, o->key, (int64_t)ns_train_opt_get(o, c));
    }
    if (!st) st = ns_h5_attr_str(fid, g, "bkn_predict",
                                 ns_bkn_predict_name((ns_bkn_predict)c->net.bkn_predict));
    if (!st) st = ns_h5_attr_int(fid, g, "bkn_grad", c->net.bkn_grad);
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

/* One entry of the table from /config, checked as the command line checks
 * it.  Keys added after format version 1 may be missing: the value in c
 * stays. */
static int load_opt(ns_hid fid, const ns_train_opt *o, ns_train_config *c)
{
    const char *g = "/config";
    if ((o->flags & NS_OPT_OLD) && !ns_h5_attr_exists(fid, g, o->key))
        return NS_OK;
    double d;
    int64_t i;
    int is_int;
    int st = ns_h5_get_num(fid, g, o->key, &d, &i, &is_int);
    if (st)
        return st;
    if (o->type == NS_OPT_U64 && is_int) {
        /* seeds from 2^63 up are written as negative int64 */
        *(uint64_t *)field(o, c) = (uint64_t)i;
        return NS_OK;
    }
    char why[256];
    if (ns_train_opt_check(o, d, 0, why, sizeof why))
        return ns_error(NS_EFORMAT, "cannot read '%s': /config attribute '%s' %s",
                        ns_h5_name(fid), o->key, why);
    set_value(o, c, d);
    return NS_OK;
}

/* A string attribute of /config. */
static int load_str(ns_hid fid, const char *name, char *buf, size_t len)
{
    return ns_h5_get_str(fid, "/config", name, buf, len);
}

int ns_train_config_load(ns_hid fid, ns_train_config *c)
{
    const char *g = "/config";
    char buf[256];
    ns_train_config_default(c);
    c->net.frn_relu = 1;     /* runs written before the attribute kept the relu */
    c->net.mabn_buffer = 16; /* runs written before the attribute used 16 */
    int st = load_str(fid, "arch", c->arch, sizeof c->arch);
    if (!st) st = load_str(fid, "data", c->data, sizeof c->data);
    if (!st) st = load_str(fid, "norm", c->net.norm, sizeof c->net.norm);
    for (size_t i = 0; !st && i < ns_train_opt_count(); i++)
        st = load_opt(fid, &opts[i], c);
    if (st)
        return NS_EFORMAT;
    /* Runs written before these attributes predicted every BKN group from
     * the previous layer's last group, without gradient through the
     * prediction. */
    c->net.bkn_predict = NS_BKN_PREDICT_LAST;
    c->net.bkn_grad = 0;
    if (ns_h5_attr_exists(fid, g, "bkn_predict")) {
        ns_bkn_predict mode;
        if (load_str(fid, "bkn_predict", buf, sizeof buf))
            return NS_EFORMAT;
        if (ns_bkn_parse_predict(buf, &mode))
            return ns_error(NS_EFORMAT, "cannot read '%s': /config attribute 'bkn_predict' "
                            "must be group or last, got '%s'", ns_h5_name(fid), buf);
        c->net.bkn_predict = (int)mode;
    }
    if (ns_h5_attr_exists(fid, g, "bkn_grad")) {
        int64_t v;
        if (ns_h5_get_int(fid, g, "bkn_grad", &v))
            return NS_EFORMAT;
        if (v != 0 && v != 1)
            return ns_error(NS_EFORMAT, "cannot read '%s': /config attribute 'bkn_grad' "
                            "must be 0 or 1, got %lld", ns_h5_name(fid), (long long)v);
        c->net.bkn_grad = (int)v;
    }
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
