/*
 * The NTK analysis (include/normscope/ntk.h, DESIGN.md section 6): the
 * checkpoint loop around ns_ntk_compute, with the kernels' sinks, spectra,
 * drift across checkpoints and the comparison with the infinite-width
 * kernel of `normscope meanfield` (METHODS.md "Empirical NTK"), written into
 * a result file.
 */
#include "normscope/ntk.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "normscope/inputs.h"
#include "normscope/meanfield.h"
#include "normscope/result.h"

#define G NS_NTK_GROUP

void ns_ntk_run_defaults(ns_ntk_run_opts *o)
{
    memset(o, 0, sizeof *o);
    o->ntk.mode = NS_MODE_EVAL;
    o->ntk.mem = (size_t)2 << 30;
    o->top = 50;
    o->analytic_depth = 50;
}

size_t ns_ntk_max_batch(int batch_mode, size_t n)
{
    return batch_mode ? n : 256;
}

void ns_ntk_summary_free(ns_ntk_summary *s)
{
    free(s->steps);
    s->steps = NULL;
    s->nsteps = 0;
}

typedef struct kern {
    uint64_t step;
    int in_mem;
    double *k;          /* in memory: dim x dim */
    char path[96];      /* data set in the result file */
    double frob;
} kern;

/* Products with a kernel on disk, with a progress line every 10. */
typedef struct counted {
    ns_result_op *op;
    size_t count;
    double t0;
    uint64_t step;
} counted;

static int counted_matvec(void *ctx, const double *x, double *y)
{
    counted *c = ctx;
    int st = ns_result_matvec(c->op, x, y);
    if (++c->count % 10 == 0)
        ns_note("ntk step %llu: ARPACK, %zu kernel products in %.0f s",
                (unsigned long long)c->step, c->count, ns_time() - c->t0);
    return st;
}

/* Reads rows [r0, r0 + nr) of a kernel into buf. */
static int kern_rows(ns_result *res, const kern *k, size_t dim, size_t r0, size_t nr,
                     double *buf)
{
    if (k->in_mem) {
        memcpy(buf, k->k + r0 * dim, nr * dim * sizeof *buf);
        return NS_OK;
    }
    return ns_result_read_rows(res, k->path, r0, nr, dim, buf);
}

/* 1 - <A,B>_F / (||A|| ||B||), reading both in row blocks. */
static int drift(ns_result *res, const kern *a, const kern *b, size_t dim, size_t mem,
                 double *out)
{
    size_t rows = mem / 4 / (2 * dim * sizeof(double));
    rows = rows < 1 ? 1 : rows > dim ? dim : rows;
    double *ba = malloc(rows * dim * sizeof *ba), *bb = malloc(rows * dim * sizeof *bb);
    int st = !ba || !bb ? ns_error(NS_ENOMEM, "out of memory comparing kernels") : NS_OK;
    double dot = 0;
    for (size_t r0 = 0; r0 < dim && !st; r0 += rows) {
        size_t nr = dim - r0 < rows ? dim - r0 : rows;
        if ((st = kern_rows(res, a, dim, r0, nr, ba)) || (st = kern_rows(res, b, dim, r0, nr, bb)))
            break;
        for (size_t q = 0; q < nr * dim; q++)
            dot += ba[q] * bb[q];
    }
    free(ba);
    free(bb);
    *out = a->frob > 0 && b->frob > 0 ? 1 - dot / (a->frob * b->frob) : NAN;
    return st;
}

static int write_layer_info(ns_result *res, const char *g, const ns_net *net,
                            const ns_ntk_stats *s)
{
    size_t nl = 0;
    for (size_t i = 0; i < net->nlayers; i++)
        nl += s->layer_method[i] != 0;
    double *t = malloc((nl ? nl : 1) * sizeof *t);
    char *names = calloc(nl ? nl : 1, 40), *methods = calloc(nl + 1, 1);
    int st = !t || !names || !methods ? ns_error(NS_ENOMEM, "out of memory") : NS_OK;
    size_t j = 0, len = 0;
    for (size_t i = 0; !st && i < net->nlayers; i++) {
        if (!s->layer_method[i])
            continue;
        t[j] = s->layer_trace[i];
        methods[j] = s->layer_method[i];
        len += (size_t)snprintf(names + len, 40, "%s%s", j ? "," : "", net->layers[i].name);
        j++;
    }
    char path[256];
    snprintf(path, sizeof path, "%s/" NS_NTK_LAYER_TRACE, g);
    size_t dims[1] = {nl};
    if (!st) st = ns_result_write_double(res, path, 1, dims, t, "each parameterised layer's "
                                         "share of the kernel's trace, in the order of the "
                                         "attribute layers", NULL);
    if (!st) st = ns_result_attr_str(res, path, "layers", names);
    if (!st) st = ns_result_attr_str(res, path, "methods", methods);
    free(t);
    free(names);
    free(methods);
    return st;
}

/* ------------------------------------------------------ the analytic NTK */

/* The analytic counterpart of a dense network (see --analytic). */
typedef struct analytic {
    size_t depth, maxdepth, *widths;
    ns_mf_net mn;
    double *kernel;          /* n x n, one output */
} analytic;

static void analytic_free(analytic *a)
{
    free(a->widths);
    free(a->kernel);
    a->widths = NULL;
    a->kernel = NULL;
}

/* The mean-field name of an activation the analytic kernel covers, or NULL. */
static const char *mf_act_name(ns_act_fn fn)
{
    switch (fn) {
    case NS_ACT_RELU: return "relu";
    case NS_ACT_TANH: return "tanh";
    case NS_ACT_ERF: return "erf";
    case NS_ACT_ID: return "linear";
    default: return NULL;
    }
}

static int analytic_setup(analytic *a, const ns_net *net, const ns_train_config *cfg,
                          const char *path)
{
    if (cfg->init.kind != NS_INIT_GAUSS)
        return ns_error(NS_EINVAL, "--analytic needs a run trained from --init gauss:SW2,SB2 "
                        "('%s' used another initialisation)", path);
    const ns_layer *act = NULL;   /* the first activation */
    int wm = -1;
    a->depth = 0;
    a->widths = calloc(net->nlayers + 1, sizeof *a->widths);
    if (!a->widths)
        return NS_ENOMEM;
    a->widths[0] = net->in_c * net->in_h * net->in_w;
    for (size_t i = 0; i < net->nlayers; i++) {
        const ns_layer *L = &net->layers[i];
        if (L->ops->role == NS_ROLE_DENSE) {
            if (ns_layer_wrule(L))
                return ns_error(NS_EINVAL, "--analytic: layer '%s' reparametrises its weight",
                                L->name);
            if (a->depth > 0) {
                int lw = ns_layer_weight_mean(L) != 0;
                if (wm >= 0 && lw != wm)
                    return ns_error(NS_EINVAL, "--analytic: the weight mean projects some hidden "
                                    "layers and not others");
                wm = lw;
            }
            a->widths[++a->depth] = L->out_c;
            continue;
        }
        if (L->ops->role == NS_ROLE_ACT && mf_act_name(L->ops->act)) {
            if (act && act->ops->act != L->ops->act)
                return ns_error(NS_EINVAL, "--analytic needs one activation (found %s and %s)",
                                act->ops->kind, L->ops->kind);
            if (!act)
                act = L;
            continue;
        }
        return ns_error(NS_EINVAL, "--analytic needs a network of dense layers and activations; "
                        "'%s' has layer %s (norm %s)", path, L->name, cfg->net.norm);
    }
    if (!act || a->depth < 2)
        return ns_error(NS_EINVAL, "--analytic needs at least one hidden dense layer and an "
                        "activation");
    memset(&a->mn, 0, sizeof a->mn);
    if (ns_mf_act_parse(mf_act_name(act->ops->act), &a->mn.act))
        return NS_EINVAL;
    a->mn.sw2 = cfg->init.sw2;
    a->mn.sb2 = cfg->init.sb2;
    a->mn.weight_mean = wm > 0;
    return ns_mf_net_check(&a->mn);
}

/* /ntk/analytic: the kernel for the inputs, its spectrum, cond vs depth. */
static int analytic_write(analytic *a, ns_result *res, const ns_real *x, size_t n, size_t din,
                          ns_ntk_summary *sum)
{
    double *Gm = malloc(n * n * sizeof *Gm);
    a->kernel = malloc(n * n * sizeof *a->kernel);
    double *ev = malloc(n * sizeof *ev), *cp = malloc(n * n * sizeof *cp);
    size_t L = a->maxdepth;
    double *c0 = malloc(L * sizeof *c0), *c1 = malloc(L * sizeof *c1), *dd = malloc(L * sizeof *dd);
    size_t *wl = malloc((L + 1) * sizeof *wl);
    ns_mf_work *w = ns_mf_work_alloc(1e-10);
    int st = !Gm || !a->kernel || !ev || !cp || !c0 || !c1 || !dd || !wl || !w
                 ? ns_error(NS_ENOMEM, "out of memory for the analytic kernel") : NS_OK;
    for (size_t i = 0; !st && i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t q = 0; q < din; q++)
                s += (double)x[i * din + q] * (double)x[j * din + q];
            Gm[i * n + j] = s / (double)din;
        }
    unsigned flags = a->mn.weight_mean ? NS_MF_WM_HIDDEN : 0;
    ns_mf_net mn = a->mn;
    mn.weight_mean = (int)flags;
    if (!st)
        st = ns_mf_kernel(w, &mn, a->depth, Gm, n, a->widths, NULL, a->kernel);
    const char *ag = G "/" NS_NTK_ANALYTIC;
    size_t dims2[2] = {n, n}, d1[1] = {n}, dl[1] = {L};
    if (!st) st = ns_result_write_double(res, G "/" NS_NTK_ANALYTIC "/" NS_NTK_KERNEL, 2, dims2,
                                         a->kernel, "infinite-width NTK of one output (standard "
                                         "parametrisation, the run's widths and variances)", NULL);
    if (!st) {
        memcpy(cp, a->kernel, n * n * sizeof *cp);
        st = ns_eig_sym(cp, n, ev);
    }
    if (!st) st = ns_result_write_double(res, G "/" NS_NTK_ANALYTIC "/" NS_NTK_EIGENVALUES, 1, d1,
                                         ev, "eigenvalues of the analytic kernel, descending",
                                         NULL);
    ns_mf_act_name(&a->mn.act, sum->act, sizeof sum->act);
    double cond = !st && ev[n - 1] > 0 ? ev[0] / ev[n - 1] : INFINITY;
    if (!st) st = ns_result_attr_double(res, ag, "condition_number", cond);
    if (!st) st = ns_result_attr_int(res, ag, "depth", (int64_t)a->depth);
    if (!st) st = ns_result_attr_double(res, ag, "sw2", a->mn.sw2);
    if (!st) st = ns_result_attr_double(res, ag, "sb2", a->mn.sb2);
    if (!st) st = ns_result_attr_int(res, ag, "weight_mean", a->mn.weight_mean);
    if (!st) st = ns_result_attr_str(res, ag, "activation", sum->act);
    /* cond against depth: hidden layers as wide as the first */
    for (size_t l = 0; !st && l <= L; l++)
        wl[l] = l == 0 ? a->widths[0] : a->widths[1];
    for (size_t l = 0; !st && l < L; l++)
        dd[l] = (double)(l + 1);
    ns_mf_net plain = a->mn, wmn = a->mn;
    plain.weight_mean = 0;
    wmn.weight_mean = NS_MF_WM_HIDDEN;
    if (!st) st = ns_mf_ntk_cond(w, &plain, L, Gm, n, wl, c0);
    if (!st) st = ns_mf_ntk_cond(w, &wmn, L, Gm, n, wl, c1);
#define AD G "/" NS_NTK_ANALYTIC "/" NS_NTK_ANALYTIC_DEPTH
    if (!st) st = ns_result_write_double(res, AD "/" NS_NTK_DEPTH_DEPTH, 1, dl, dd,
                                         "number of dense layers", NULL);
    if (!st) st = ns_result_write_double(res, AD "/" NS_NTK_DEPTH_COND, 1, dl, c0, "condition "
                                         "number of the analytic NTK of these inputs, plain "
                                         "network", NULL);
    if (!st) st = ns_result_write_double(res, AD "/" NS_NTK_DEPTH_COND_WM, 1, dl, c1, "the same "
                                         "with MimicNorm's weight mean on the hidden layers", NULL);
#undef AD
    if (!st) {
        sum->analytic = 1;
        sum->sw2 = a->mn.sw2;
        sum->sb2 = a->mn.sb2;
        sum->weight_mean = a->mn.weight_mean;
        sum->depth = a->depth;
        sum->maxdepth = L;
        sum->an_cond = cond;
        sum->an_cond_plain = c0[L - 1];
        sum->an_cond_wm = c1[L - 1];
    }
    ns_mf_work_free(w);
    free(Gm);
    free(ev);
    free(cp);
    free(c0);
    free(c1);
    free(dd);
    free(wl);
    return st;
}

/* Per checkpoint: the kernel of one output (in memory) against the analytic. */
static int analytic_compare(const analytic *a, ns_result *res, const char *g, const double *k,
                            size_t n, size_t K, int trace)
{
    size_t dim = trace ? n : n * K;
    double *e = malloc(n * n * sizeof *e), *ev = malloc(n * sizeof *ev);
    if (!e || !ev) {
        free(e);
        free(ev);
        return ns_error(NS_ENOMEM, "out of memory");
    }
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            if (trace)
                s = k[i * dim + j];
            else
                for (size_t c = 0; c < K; c++)
                    s += k[(i * K + c) * dim + j * K + c];
            e[i * n + j] = s / (double)K;
            num += pow(e[i * n + j] - a->kernel[i * n + j], 2);
            den += a->kernel[i * n + j] * a->kernel[i * n + j];
        }
    int st = ns_eig_sym(e, n, ev);
    if (!st) st = ns_result_attr_double(res, g, "output_condition_number",
                                        ev[n - 1] > 0 ? ev[0] / ev[n - 1] : INFINITY);
    if (!st) st = ns_result_attr_double(res, g, "analytic_relerr", sqrt(num / den));
    if (!st) st = ns_result_attr_int(res, g, "depth", (int64_t)a->depth);
    free(e);
    free(ev);
    return st;
}

/* ---------------------------------------------------------- the analysis */

int ns_ntk_check(const ns_ntk_run_opts *o, const ns_run_inputs *in, size_t *need)
{
    const ns_net *net = in->net;
    int batch = in->opts.mode == NS_BN_BATCH;
    if (batch && !ns_ntk_has_batch_stats(net))
        return ns_error(NS_EINVAL, "--mode batch needs a layer with batch statistics; the "
                        "network of '%s' (norm %s) has none", in->path, in->cfg.net.norm);
    if (o->analytic) {
        analytic a = {.maxdepth = o->analytic_depth};
        int st = analytic_setup(&a, net, &in->cfg, in->path);
        analytic_free(&a);
        if (st)
            return st;
    }
    /* The smallest block ns_ntk_compute would take. */
    ns_ntk_opts no = o->ntk;
    no.mode = ns_bn_mode_net(in->opts.mode);
    size_t n = in->n, bs = batch ? n : no.block ? no.block : 1;
    *need = ns_ntk_block_bytes(net, &no, bs < n ? bs : n);
    return NS_OK;
}

/* One checkpoint: kernel, spectrum, attributes. */
static int one_step(const ns_ntk_run_opts *o, ns_ntk_opts *no, ns_run_inputs *in,
                    ns_result *res, kern *k, const analytic *an, ns_ntk_step_summary *ss)
{
    size_t n = in->n, K = in->net->nout, dim = no->trace ? n : n * K;
    char g[64];
    snprintf(g, sizeof g, G "/%llu", (unsigned long long)k->step);
    snprintf(k->path, sizeof k->path, "%s/" NS_NTK_KERNEL, g);
    ns_ntk_stats s = {0};
    ns_ntk_memsink ms = {0};
    ns_result_matrix *mx = NULL;
    ns_ntk_sink sink;
    double *ev = NULL;
    int st = ns_result_group(res, g, NULL);
    if (st)
        goto cleanup;
    if (k->in_mem) {
        ms.dim = dim;
        ms.k = k->k = malloc(dim * dim * sizeof *ms.k);
        if (!ms.k) {
            st = ns_error(NS_ENOMEM, "out of memory for a %zu x %zu kernel", dim, dim);
            goto cleanup;
        }
        sink = (ns_ntk_sink){ns_ntk_memsink_put, &ms};
    } else {
        if ((st = ns_result_matrix_create(res, k->path, dim, dim, 1024, &mx)))
            goto cleanup;
        sink = (ns_ntk_sink){ns_result_matrix_put, mx};
    }
    st = ns_ntk_compute(in->net, in->x, in->y, n, no, &sink, &s);
    int fst = ns_result_matrix_close(mx, !st);
    mx = NULL;
    if (!st)
        st = fst;
    if (st)
        goto cleanup;
    k->frob = sqrt(s.frob2);
    size_t dims2[2] = {dim, dim};
    const char *kd = no->trace ? "trace NTK sum_k Theta[(i,k),(j,k)]"
                               : "NTK, row i*K + k = sample i, output k";
    st = k->in_mem ? ns_result_write_double(res, k->path, 2, dims2, k->k, kd, NULL)
                   : ns_result_describe(res, k->path, kd, NULL);
    if (st)
        goto cleanup;
    /* Spectrum. */
    size_t nev = 0, nmv = 0;
    double t_eig = ns_time();
    if (k->in_mem && dim <= 12000) {
        double *a = malloc(dim * dim * sizeof *a);
        ev = malloc(dim * sizeof *ev);
        if (!a || !ev) {
            st = ns_error(NS_ENOMEM, "out of memory for the eigenvalues");
        } else {
            memcpy(a, k->k, dim * dim * sizeof *a);
            st = ns_eig_sym(a, dim, ev);
            nev = dim;
        }
        free(a);
    } else {
        nev = o->top < dim ? o->top : dim - 1;
        ev = malloc(nev * sizeof *ev);
        if (!ev) {
            st = NS_ENOMEM;
        } else if (k->in_mem) {
            ns_sym_matrix mm = {k->k, dim};
            st = ns_eig_arpack(ns_matvec_mem, &mm, dim, nev, 1, 1e-10, ev, &nmv);
        } else {
            ns_result_op *op = NULL;
            st = ns_result_op_open(res, k->path, dim, no->mem / 8, &op);
            counted cm = {op, 0, ns_time(), k->step};
            if (!st)
                st = ns_eig_arpack(counted_matvec, &cm, dim, nev, 1, 1e-8, ev, &nmv);
            ns_result_op_close(op);
        }
    }
    t_eig = ns_time() - t_eig;
    if (st)
        goto cleanup;
    double cond = NAN;
    if (nev == dim)
        cond = ev[dim - 1] > 0 ? ev[0] / ev[dim - 1] : INFINITY;
    char ep[96];
    snprintf(ep, sizeof ep, "%s/" NS_NTK_EIGENVALUES, g);
    size_t de[1] = {nev};
    st = ns_result_write_double(res, ep, 1, de, ev, nev == dim ? "all eigenvalues, descending "
                                "(LAPACK dsyevd)" : "the largest eigenvalues, descending (ARPACK)",
                                NULL);
    double eff = s.frob2 > 0 ? s.trace * s.trace / s.frob2 : NAN;
    if (!st) st = write_layer_info(res, g, in->net, &s);
    if (!st && an)
        st = analytic_compare(an, res, g, k->k, n, K, no->trace);
    if (!st) st = ns_result_attr_int(res, g, "step", (int64_t)k->step);
    if (!st) st = ns_result_attr_double(res, g, "trace", s.trace);
    if (!st) st = ns_result_attr_double(res, g, "frobenius_norm", k->frob);
    if (!st) st = ns_result_attr_double(res, g, "condition_number", cond);
    if (!st) st = ns_result_attr_double(res, g, "effective_rank", eff);
    if (!st) st = ns_result_attr_double(res, g, "alignment", s.align);
    if (!st) st = ns_result_attr_double(res, g, "seconds", s.seconds);
    if (!st) st = ns_result_attr_double(res, g, "eig_seconds", t_eig);
    if (!st) st = ns_result_attr_double(res, g, "gflop", s.gflop);
    if (!st) st = ns_result_attr_int(res, g, "arpack_products", (int64_t)nmv);
    *ss = (ns_ntk_step_summary){.step = k->step, .trace = s.trace, .cond = cond,
                                .eff_rank = eff, .align = s.align, .lambda_max = ev[0],
                                .seconds = s.seconds, .gflop = s.gflop};
cleanup:
    ns_result_matrix_close(mx, 0);
    free(ev);
    ns_ntk_stats_free(&s);
    return st;
}

/* The group's own attributes and the samples' indices. */
static int write_head(const ns_ntk_run_opts *o, const ns_run_inputs *in, ns_result *res)
{
    ns_provenance p = {o->cmdline, in->path, ns_bn_mode_name(in->opts.mode), in->cfg.seed};
    size_t n = in->n;
    int st = ns_result_group(res, G, &p);
    if (!st) {
        int64_t *ii = ns_malloc(n * sizeof *ii);
        for (size_t i = 0; ii && i < n; i++)
            ii[i] = (int64_t)in->idx[i];
        size_t dims[1] = {n};
        st = ii ? ns_result_write_int(res, G "/" NS_NTK_INDICES, 1, dims, ii, "data-set indices "
                                      "of the samples (rows of the kernel, in order)", NULL)
                : NS_ENOMEM;
        if (!st) st = ns_result_attr_str(res, G "/" NS_NTK_INDICES, "split",
                                         in->opts.split == NS_SPLIT_TRAIN ? "train" : "test");
        ns_free(ii);
    }
    if (!st) st = ns_result_attr_str(res, G, "kernel", o->ntk.trace ? "trace" : "full");
    if (!st) st = ns_result_attr_str(res, G, "method",
                                     o->ntk.method == NS_NTK_AUTO ? "auto" :
                                     o->ntk.method == NS_NTK_STRUCTURED ? "structured" :
                                     "jacobian");
    if (!st) st = ns_result_attr_int(res, G, "n", (int64_t)n);
    if (!st) st = ns_result_attr_int(res, G, "outputs", (int64_t)in->net->nout);
    if (!st) st = ns_result_attr_str(res, G, "data", in->cfg.data);
    if (!st) st = ns_result_attr_str(res, G, "norm", in->cfg.net.norm);
    if (!st) st = ns_result_attr_str(res, G, "arch", in->cfg.arch);
    return st;
}

static int write_drift(ns_result *res, const ns_ntk_summary *sum)
{
    size_t ns = sum->nsteps, dn[1] = {ns};
    double *sv = malloc(3 * ns * sizeof *sv);
    if (!sv)
        return NS_ENOMEM;
    double *ti = sv + ns, *tp = sv + 2 * ns;
    for (size_t c = 0; c < ns; c++) {
        sv[c] = (double)sum->steps[c].step;
        ti[c] = sum->steps[c].to_init;
        tp[c] = sum->steps[c].to_previous;
    }
#define DR G "/" NS_NTK_DRIFT "/"
    int st = ns_result_write_double(res, DR NS_NTK_DRIFT_STEPS, 1, dn, sv, NULL, NULL);
    if (!st) st = ns_result_write_double(res, DR NS_NTK_DRIFT_TO_INIT, 1, dn, ti, "1 - <T_0, "
                                         "T_s>_F / (||T_0||_F ||T_s||_F) against the first "
                                         "chosen checkpoint", NULL);
    if (!st) st = ns_result_write_double(res, DR NS_NTK_DRIFT_TO_PREVIOUS, 1, dn, tp, "the same "
                                         "against the previous chosen checkpoint", NULL);
#undef DR
    free(sv);
    return st;
}

static void report(const ns_ntk_run_opts *o, const ns_ntk_summary *s, int event)
{
    if (o->report)
        o->report(o->report_ctx, s, event);
}

int ns_ntk_run(const ns_ntk_run_opts *o, ns_run_inputs *in, ns_result *res,
               ns_ntk_summary *sum)
{
    memset(sum, 0, sizeof *sum);
    ns_ntk_opts no = o->ntk;
    no.mode = ns_bn_mode_net(in->opts.mode);
    size_t n = in->n, K = in->net->nout, dim = no.trace ? n : n * K, nsteps = in->nsteps;
    sum->n = n;
    sum->outputs = K;
    sum->dim = dim;
    sum->trace = no.trace;
    /* Kernels in memory: the first, the previous, the current and an eigen
     * copy, within half the budget. */
    int in_mem = (double)dim * (double)dim * 8 * 4 <= (double)no.mem / 2;
    sum->in_mem = in_mem;
    analytic an = {.maxdepth = o->analytic_depth};
    kern *ks = calloc(nsteps ? nsteps : 1, sizeof *ks);
    sum->steps = calloc(nsteps ? nsteps : 1, sizeof *sum->steps);
    int st = !ks || !sum->steps ? NS_ENOMEM : NS_OK;
    if (!st && o->analytic)
        st = analytic_setup(&an, in->net, &in->cfg, in->path);
    if (!st)
        st = write_head(o, in, res);
    if (!st && o->analytic && !in_mem)
        st = ns_error(NS_EINVAL, "--analytic compares kernels in memory; this one (%zu x %zu) "
                      "exceeds --mem", dim, dim);
    if (st)
        goto cleanup;
    report(o, sum, NS_NTK_EV_BEGIN);
    if (o->analytic) {
        if ((st = analytic_write(&an, res, in->x, n, ns_data_dim(in->d), sum)))
            goto cleanup;
        report(o, sum, NS_NTK_EV_ANALYTIC);
    }
    for (size_t c = 0; c < nsteps; c++) {
        /* The first network came with the inputs. */
        if (c > 0 && (st = ns_run_inputs_load(in, in->steps[c])))
            goto cleanup;
        char label[48];
        snprintf(label, sizeof label, "ntk step %llu", (unsigned long long)in->steps[c]);
        no.label = label;
        kern *k = &ks[c];
        k->step = in->steps[c];
        k->in_mem = in_mem;
        ns_ntk_step_summary *ss = &sum->steps[c];
        if ((st = one_step(o, &no, in, res, k, o->analytic ? &an : NULL, ss)))
            goto cleanup;
        sum->nsteps = c + 1;
        report(o, sum, NS_NTK_EV_STEP);
        if (c > 0) {
            if ((st = drift(res, &ks[0], k, dim, no.mem, &ss->to_init)))
                goto cleanup;
            if ((st = drift(res, &ks[c - 1], k, dim, no.mem, &ss->to_previous)))
                goto cleanup;
        }
        /* Only the first and the previous kernel are needed from here on. */
        if (c >= 2 && ks[c - 1].k) {
            free(ks[c - 1].k);
            ks[c - 1].k = NULL;
            ks[c - 1].in_mem = 0;
        }
    }
    if (nsteps > 1) {
        if ((st = write_drift(res, sum)))
            goto cleanup;
        report(o, sum, NS_NTK_EV_DRIFT);
    }
cleanup:
    for (size_t c = 0; ks && c < nsteps; c++)
        free(ks[c].k);
    free(ks);
    analytic_free(&an);
    return st;
}
