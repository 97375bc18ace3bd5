/*
 * The spectrum analysis (include/normscope/spectrum.h, DESIGN.md section
 * 6): one forward pass per checkpoint over the samples, streaming every
 * chosen layer's activations into its statistics (covariance by chunks,
 * sums of normalised sample vectors, drawn observations for quantiles, the
 * first gram_n sample vectors), then the spectra and metrics of
 * actstats.h, and the weight spectra, written under the header's names.
 */
#include "normscope/spectrum.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "normscope/inputs.h"
#include "normscope/result.h"

#define G NS_SPEC_GROUP

enum { SPEC_CHUNK = 32 };

void ns_spectrum_defaults(ns_spectrum_opts *o)
{
    memset(o, 0, sizeof *o);
    o->gram_n = 500;
    o->quantile_n = 65536;
    o->seed = 1;
    o->weights = 1;
    o->min_tail = 5;
}

void ns_spectrum_summary_free(ns_spectrum_summary *s)
{
    free(s->layers);
    memset(s, 0, sizeof *s);
}

size_t ns_spectrum_max_batch(int batch_mode, size_t n)
{
    return batch_mode ? n : n < 256 ? n : 256;
}

/* ------------------------------------------------------ layer choice */

/* A dense or conv layer, whose first parameter is its weight. */
static int has_weight(const ns_layer *L)
{
    return L->ops->role == NS_ROLE_DENSE || L->ops->role == NS_ROLE_CONV;
}

/* An activation that changes its input (the identity is left out). */
static int is_activation(const ns_layer *L)
{
    return L->ops->role == NS_ROLE_ACT && L->ops->act != NS_ACT_ID;
}

static int default_layer(const ns_layer *L)
{
    return has_weight(L) || is_activation(L);
}

/* The role a figure needs, as a word in the result file. */
static const char *role_name(const ns_layer *L)
{
    return has_weight(L) ? (L->ops->role == NS_ROLE_DENSE ? "dense" : "conv")
           : is_activation(L) ? "activation" : ns_layer_is_norm(L) ? "norm" : "other";
}

/* The next name of a comma-separated list into buf; NULL at the end. */
static const char *next_name(const char *s, char *buf, size_t len)
{
    if (!s || !*s)
        return NULL;
    const char *e = strchr(s, ',');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    snprintf(buf, len, "%.*s", (int)(n < len ? n : len - 1), s);
    return e ? e + 1 : s + n;
}

int ns_spectrum_check(const ns_spectrum_opts *o, const ns_run_inputs *in)
{
    char name[64];
    for (const char *p = next_name(o->layers, name, sizeof name); p;
         p = next_name(p, name, sizeof name)) {
        if (ns_net_find(in->net, name))
            continue;
        char have[1024] = "";
        size_t used = 0;
        for (size_t i = 0; i < in->net->nlayers && used < sizeof have; i++)
            used += (size_t)snprintf(have + used, sizeof have - used, "%s%s", i ? ", " : "",
                                     in->net->layers[i].name);
        return ns_error(NS_EINVAL, "--layers: '%s' is not a layer of '%s' (it has %s)", name,
                        in->path, have);
    }
    return NS_OK;
}

/* ------------------------------------------------- per-layer streaming */

typedef struct lstats {
    size_t li;               /* layer index */
    size_t C, HW, F, D;      /* channels, positions, features, values per sample vector */
    size_t T;                /* observations in all */
    ns_cov_acc cov;
    size_t *npos;            /* F: observations > 0 */
    size_t *qobs, nq, qnext; /* drawn observation indices (sorted), how many, next */
    double *qval;            /* F x nq */
    double *vsum;            /* D: sum of the normalised sample vectors */
    size_t nz;               /* nonzero sample vectors */
    float *gram;             /* gram rows x D: the first sample vectors */
    size_t ng;
    double *rows;            /* SPEC_CHUNK x HW x C: a chunk's observations */
    double *vec;             /* SPEC_CHUNK: 1 / norm of its sample vectors */
} lstats;

static void lstats_free(lstats *s)
{
    ns_cov_acc_free(&s->cov);
    free(s->npos);
    free(s->qobs);
    free(s->qval);
    free(s->vsum);
    free(s->gram);
    free(s->rows);
    free(s->vec);
    memset(s, 0, sizeof *s);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

static int lstats_init(lstats *s, const ns_spectrum_opts *o, const ns_layer *L, size_t li,
                       size_t n)
{
    memset(s, 0, sizeof *s);
    s->li = li;
    s->C = o->at_pre ? L->in_c : L->out_c;
    s->HW = o->at_pre ? L->in_h * L->in_w : L->out_h * L->out_w;
    s->F = s->C;
    s->D = o->pool ? s->C : s->C * s->HW;
    size_t per = o->pool ? 1 : s->HW;
    s->T = n * per;
    s->nq = o->quantile_n && o->quantile_n < s->T ? o->quantile_n : s->T;
    s->ng = o->gram_n && o->gram_n < n ? o->gram_n : n;
    int st = ns_cov_acc_init(&s->cov, s->F);
    if (st)
        return st;
    s->npos = calloc(s->F, sizeof *s->npos);
    s->qobs = malloc(s->nq * sizeof *s->qobs);
    s->qval = malloc(s->F * s->nq * sizeof *s->qval);
    s->vsum = calloc(s->D, sizeof *s->vsum);
    s->gram = malloc(s->ng * s->D * sizeof *s->gram);
    s->rows = malloc(SPEC_CHUNK * per * s->C * sizeof *s->rows);
    s->vec = malloc(SPEC_CHUNK * sizeof *s->vec);
    if (!s->npos || !s->qobs || !s->qval || !s->vsum || !s->gram || !s->rows || !s->vec)
        return ns_error(NS_ENOMEM, "out of memory for the statistics of layer %zu "
                        "(%zu features, %zu values per sample)", li, s->F, s->D);
    if (s->nq == s->T) {
        for (size_t i = 0; i < s->nq; i++)
            s->qobs[i] = i;
    } else {
        /* Uniform draws with replacement, by the recorded seed and the layer. */
        ns_rng r;
        ns_rng_seed(&r, o->seed, 0x5bec0000u + li);
        for (size_t i = 0; i < s->nq; i++)
            s->qobs[i] = (size_t)(ns_rng_uniform(&r) * (double)s->T) % s->T;
        qsort(s->qobs, s->nq, sizeof *s->qobs, cmp_size);
    }
    return NS_OK;
}

/* Samples i0..i0+m-1: t holds their tensors (C x HW each, channel-major),
 * one after the other.  Work goes in chunks of SPEC_CHUNK samples so that
 * the observation buffer stays small while dsyrk gets many rows. */
static int lstats_add(lstats *s, const ns_real *t, size_t i0, size_t m, int pool)
{
    size_t C = s->C, HW = s->HW, per = pool ? 1 : HW, D = s->D;
    for (size_t a = 0; a < m; a += SPEC_CHUNK) {
        size_t k = m - a < SPEC_CHUNK ? m - a : SPEC_CHUNK;
        const ns_real *tk = t + a * C * HW;
        double *rows = s->rows;
        /* Observations, rows of C: positions of each sample, or its means. */
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < k; i++) {
            const ns_real *ti = tk + i * C * HW;
            double *ri = rows + i * per * C;
            for (size_t c = 0; c < C; c++) {
                const ns_real *tc = ti + c * HW;
                if (pool) {
                    double mu = 0;
                    for (size_t p = 0; p < HW; p++)
                        mu += tc[p];
                    ri[c] = mu / (double)HW;
                } else {
                    for (size_t p = 0; p < HW; p++)
                        ri[p * C + c] = tc[p];
                }
            }
        }
        int st = ns_cov_acc_add(&s->cov, rows, k * per, C);
        if (st)
            return st;
        size_t nobs = k * per;
#pragma omp parallel for schedule(static)
        for (size_t c = 0; c < C; c++) {
            size_t np = 0;
            for (size_t o = 0; o < nobs; o++)
                np += rows[o * C + c] > 0;
            s->npos[c] += np;
        }
        size_t o0 = (i0 + a) * per;
        while (s->qnext < s->nq && s->qobs[s->qnext] < o0 + nobs) {
            const double *row = rows + (s->qobs[s->qnext] - o0) * C;
            for (size_t c = 0; c < C; c++)
                s->qval[c * s->nq + s->qnext] = row[c];
            s->qnext++;
        }
        /* Sample vectors: their values (channel-major) or channel means. */
        double *inv = s->vec;
        for (size_t i = 0; i < k; i++) {
            double q = 0;
            if (pool)
                for (size_t c = 0; c < C; c++)
                    q += rows[i * C + c] * rows[i * C + c];
            else
                for (size_t d = 0; d < D; d++)
                    q += (double)tk[i * D + d] * tk[i * D + d];
            inv[i] = q > 0 ? 1 / sqrt(q) : 0;
            s->nz += q > 0;
        }
#pragma omp parallel for schedule(static)
        for (size_t d = 0; d < D; d++) {
            double acc = 0;
            for (size_t i = 0; i < k; i++)
                acc += (pool ? rows[i * C + d] : (double)tk[i * D + d]) * inv[i];
            s->vsum[d] += acc;
        }
        for (size_t i = 0; i < k && i0 + a + i < s->ng; i++) {
            float *g = s->gram + (i0 + a + i) * D;
            for (size_t d = 0; d < D; d++)
                g[d] = (float)(pool ? rows[i * C + d] : tk[i * D + d]);
        }
    }
    return NS_OK;
}

/* ------------------------------------------------------------ writing */

static int write_vec(ns_result *res, const char *g, const char *name, const double *v,
                     size_t n, const char *desc, const char *units)
{
    char p[320];
    snprintf(p, sizeof p, "%s/%s", g, name);
    size_t dims[1] = {n};
    return ns_result_write_double(res, p, 1, dims, v, desc, units);
}

/* The statistics of one layer into g, and its line of the summary. */
static int lstats_write(lstats *s, const ns_spectrum_opts *o, const ns_layer *L, size_t n,
                        ns_result *res, const char *g, ns_spectrum_layer *out)
{
    size_t F = s->F;
    double *cov = malloc(F * F * sizeof *cov), *mean = malloc(F * sizeof *mean);
    double *ce = malloc(F * sizeof *ce), *re = malloc(F * sizeof *re);
    double *sd = malloc(F * sizeof *sd), *pos = malloc(F * sizeof *pos);
    double *qu = malloc(F * NS_NQUANT * sizeof *qu), q[NS_NQUANT];
    size_t ng = s->ng;
    double *ge = malloc(ng * sizeof *ge);
    int st = NS_OK;
    if (!cov || !mean || !ce || !re || !sd || !pos || !qu || !ge) {
        st = ns_error(NS_ENOMEM, "out of memory for the spectra of layer %s", L->name);
        goto done;
    }
    ns_whitening w;
    if ((st = ns_cov_acc_result(&s->cov, mean, cov)) ||
        (st = ns_whitening_of(cov, F, ce, re, &w)))
        goto done;
    for (size_t c = 0; c < F; c++) {
        sd[c] = sqrt(fmax(cov[c * F + c], 0));
        pos[c] = (double)s->npos[c] / (double)s->T;
        ns_quantiles(s->qval + c * s->nq, s->nq, ns_channel_probs, NS_NQUANT, q);
        memcpy(qu + c * NS_NQUANT, q, sizeof q);
    }
    double vs = 0;
    for (size_t d = 0; d < s->D; d++)
        vs += s->vsum[d] * s->vsum[d];
    double mean_cos = (vs - (double)s->nz) / ((double)n * (double)(n - 1));
    if ((st = ns_cosine_gram_eig_f(s->gram, ng, s->D, ge)))
        goto done;

    if ((st = ns_result_group(res, g, NULL)))
        goto done;
    char cdesc[256];
    snprintf(cdesc, sizeof cdesc, "eigenvalues of the feature covariance (unbiased, %s), "
             "descending; the condition number floors the smallest at %g of the largest",
             o->pool ? "per-sample channel means as observations"
                     : "samples x positions as observations", NS_COND_FLOOR);
    st = write_vec(res, g, NS_SPEC_COV_EIG, ce, F, cdesc, NULL);
    if (!st) st = write_vec(res, g, NS_SPEC_CORR_EIG, re, F, "eigenvalues of the feature "
                            "correlation matrix, descending (a feature of zero variance "
                            "counts as uncorrelated)", NULL);
    if (!st) {
        char d[160];
        snprintf(d, sizeof d, "eigenvalues of the cosine Gram matrix of the first %zu "
                 "samples' feature vectors, descending", ng);
        st = write_vec(res, g, NS_SPEC_GRAM_EIG, ge, ng, d, NULL);
    }
    if (!st) {
        char p[320], d[256];
        snprintf(p, sizeof p, "%s/%s", g, NS_SPEC_QUANTILES);
        snprintf(d, sizeof d, "per-channel quantiles at 1, 5, 25, 50, 75, 95, 99%% of %s "
                 "observations (linear between order statistics)",
                 s->nq == s->T ? "all" : "uniformly drawn");
        size_t dims[2] = {F, NS_NQUANT};
        st = ns_result_write_double(res, p, 2, dims, qu, d, NULL);
        if (!st) st = ns_result_attr_doubles(res, p, "probabilities", ns_channel_probs,
                                             NS_NQUANT);
        if (!st) st = ns_result_attr_int(res, p, "observations", (int64_t)s->nq);
    }
    if (!st) st = write_vec(res, g, NS_SPEC_MEAN, mean, F, "per-channel mean", NULL);
    if (!st) st = write_vec(res, g, NS_SPEC_STD, sd, F, "per-channel standard deviation "
                            "(unbiased)", NULL);
    if (!st) st = write_vec(res, g, NS_SPEC_POSITIVE, pos, F, "per-channel fraction of "
                            "observations above zero", NULL);
    if (!st) st = ns_result_attr_double(res, g, "condition_number", w.condition_number);
    if (!st) st = ns_result_attr_double(res, g, "effective_rank", w.effective_rank);
    if (!st) st = ns_result_attr_double(res, g, "participation_ratio", w.participation_ratio);
    if (!st) st = ns_result_attr_double(res, g, "mean_abs_corr", w.mean_abs_corr);
    if (!st) st = ns_result_attr_double(res, g, "corr_identity_distance",
                                        w.corr_identity_distance);
    if (!st) st = ns_result_attr_double(res, g, "mean_cosine", mean_cos);
    if (!st) st = ns_result_attr_int(res, g, "index", (int64_t)s->li);
    if (!st) st = ns_result_attr_str(res, g, "kind", L->ops->kind);
    if (!st) st = ns_result_attr_str(res, g, "role", role_name(L));
    if (!st) st = ns_result_attr_int(res, g, "features", (int64_t)F);
    if (!st) st = ns_result_attr_int(res, g, "observations", (int64_t)s->T);
    snprintf(out->name, sizeof out->name, "%s", L->name);
    out->features = F;
    out->w = w;
    out->mean_cosine = mean_cos;
done:
    free(cov);
    free(mean);
    free(ce);
    free(re);
    free(sd);
    free(pos);
    free(qu);
    free(ge);
    return st;
}

/* The weight of a dense or conv layer, reshaped out x rest: singular
 * values, stable rank and the power law of W^T W's eigenvalues. */
static int weight_write(const ns_spectrum_opts *o, const ns_layer *L, size_t li,
                        ns_result *res, const char *g)
{
    const ns_tensor *W = &L->param[0];
    size_t m = W->dims[0], n = W->size / m, k = m < n ? m : n;
    double *a = malloc(W->size * sizeof *a), *s = malloc(k * sizeof *s);
    double *l = malloc(k * sizeof *l);
    int st = NS_OK;
    if (!a || !s || !l) {
        st = ns_error(NS_ENOMEM, "out of memory for the SVD of %s", L->name);
        goto done;
    }
    for (size_t i = 0; i < W->size; i++)
        a[i] = W->data[i];
    if ((st = ns_singular_values(a, m, n, s)))
        goto done;
    for (size_t i = 0; i < k; i++)
        l[i] = s[i] * s[i];
    ns_powerlaw pl = {NAN, NAN, NAN, 0};
    if (ns_powerlaw_fit(l, k, o->min_tail, &pl) != NS_OK)
        pl = (ns_powerlaw){NAN, NAN, NAN, 0};   /* too few values: no fit */
    if ((st = ns_result_group(res, g, NULL)))
        goto done;
    char d[200];
    snprintf(d, sizeof d, "singular values of the stored weight reshaped %zu x %zu, "
             "descending", m, n);
    st = write_vec(res, g, NS_SPEC_SINGULAR, s, k, d, NULL);
    if (!st) st = ns_result_attr_double(res, g, "stable_rank", ns_stable_rank(s, k));
    if (!st) st = ns_result_attr_double(res, g, "alpha", pl.alpha);
    if (!st) st = ns_result_attr_double(res, g, "alpha_xmin", pl.xmin);
    if (!st) st = ns_result_attr_double(res, g, "alpha_ks", pl.ks);
    if (!st) st = ns_result_attr_int(res, g, "alpha_ntail", (int64_t)pl.ntail);
    if (!st) st = ns_result_attr_int(res, g, "index", (int64_t)li);
done:
    free(a);
    free(s);
    free(l);
    return st;
}

/* ------------------------------------------------------- the analysis */

/* The chosen layers' indices into idx (nlayers room); returns how many. */
static size_t choose(const ns_spectrum_opts *o, ns_net *net, size_t *idx)
{
    size_t k = 0;
    if (o->layers && *o->layers) {
        char name[64];
        for (const char *p = next_name(o->layers, name, sizeof name); p;
             p = next_name(p, name, sizeof name)) {
            ns_layer *L = ns_net_find(net, name);
            size_t li = L ? (size_t)(L - net->layers) : net->nlayers;
            int dup = 0;
            for (size_t j = 0; j < k; j++)
                dup |= idx[j] == li;
            if (L && !dup)
                idx[k++] = li;
        }
    } else {
        for (size_t i = 0; i < net->nlayers; i++)
            if (default_layer(&net->layers[i]))
                idx[k++] = i;
    }
    return k;
}

static int one_step(const ns_spectrum_opts *o, ns_run_inputs *in, ns_result *res,
                    ns_spectrum_summary *sum)
{
    ns_net *net = in->net;
    size_t n = in->n, dim = ns_data_dim(in->d), B = net->max_batch;
    size_t *idx = malloc((net->nlayers + 1) * sizeof *idx);
    lstats *ls = NULL;
    int st = idx ? NS_OK : NS_ENOMEM;
    if (st)
        return st;
    size_t nl = choose(o, net, idx);
    ls = calloc(nl ? nl : 1, sizeof *ls);
    free(sum->layers);
    sum->layers = calloc(nl ? nl : 1, sizeof *sum->layers);
    sum->nlayers = 0;
    sum->step = in->step;
    sum->n = n;
    if (!ls || !sum->layers) {
        st = NS_ENOMEM;
        goto done;
    }
    for (size_t j = 0; j < nl; j++)
        if ((st = lstats_init(&ls[j], o, &net->layers[idx[j]], idx[j], n)))
            goto done;
    ns_ctx ctx = {.mode = ns_bn_mode_net(in->opts.mode), .seed = 0, .step = 0};
    ns_progress pr;
    char label[48];
    snprintf(label, sizeof label, "spectrum step %llu", (unsigned long long)in->step);
    ns_progress_begin(&pr, label, n);
    for (size_t i0 = 0; i0 < n; i0 += B) {
        size_t m = n - i0 < B ? n - i0 : B;
        const ns_real *x = in->x + i0 * dim;
        if ((st = ns_net_forward(net, x, m, &ctx)))
            break;
        for (size_t j = 0; j < nl && !st; j++) {
            const ns_layer *L = &net->layers[ls[j].li];
            const ns_real *t = !o->at_pre ? net->act[ls[j].li]
                               : L->src < 0 ? x : net->act[L->src];
            st = lstats_add(&ls[j], t, i0, m, o->pool);
        }
        ns_progress_update(&pr, i0 + m, NULL);
    }
    ns_progress_end(&pr, NULL);
    if (st)
        goto done;
    char g[256];
    for (size_t j = 0; j < nl; j++) {
        const ns_layer *L = &net->layers[ls[j].li];
        snprintf(g, sizeof g, G "/%llu/%s", (unsigned long long)in->step, L->name);
        if ((st = lstats_write(&ls[j], o, L, n, res, g, &sum->layers[j])))
            goto done;
        sum->nlayers = j + 1;
        lstats_free(&ls[j]);
    }
    for (size_t i = 0; o->weights && i < net->nlayers; i++) {
        if (!has_weight(&net->layers[i]))
            continue;
        snprintf(g, sizeof g, G "/%llu/" NS_SPEC_WEIGHTS "/%s", (unsigned long long)in->step,
                 net->layers[i].name);
        if ((st = weight_write(o, &net->layers[i], i, res, g)))
            goto done;
    }
done:
    for (size_t j = 0; ls && j < nl; j++)
        lstats_free(&ls[j]);
    free(ls);
    free(idx);
    return st;
}

static int write_head(const ns_spectrum_opts *o, const ns_run_inputs *in, ns_result *res)
{
    ns_provenance p = {o->cmdline, in->path, ns_bn_mode_name(in->opts.mode), in->cfg.seed};
    size_t n = in->n;
    int st = ns_result_group(res, G, &p);
    if (!st) {
        int64_t *ii = malloc(n * sizeof *ii);
        for (size_t i = 0; ii && i < n; i++)
            ii[i] = (int64_t)in->idx[i];
        size_t dims[1] = {n};
        st = ii ? ns_result_write_int(res, G "/" NS_SPEC_INDICES, 1, dims, ii,
                                      "data-set indices of the samples, in order", NULL)
                : NS_ENOMEM;
        if (!st) st = ns_result_attr_str(res, G "/" NS_SPEC_INDICES, "split",
                                         in->opts.split == NS_SPLIT_TRAIN ? "train" : "test");
        free(ii);
    }
    if (!st) st = ns_result_attr_int(res, G, "n", (int64_t)n);
    if (!st) st = ns_result_attr_str(res, G, "at", o->at_pre ? "pre" : "post");
    if (!st) st = ns_result_attr_int(res, G, "pool", o->pool);
    if (!st) st = ns_result_attr_int(res, G, "gram_n", (int64_t)(o->gram_n && o->gram_n < n
                                                                   ? o->gram_n : n));
    if (!st) st = ns_result_attr_int(res, G, "quantile_seed", (int64_t)o->seed);
    if (!st) st = ns_result_attr_str(res, G, "layers", o->layers && *o->layers ? o->layers
                                                                               : "default");
    if (!st) st = ns_result_attr_str(res, G, "data", in->cfg.data);
    if (!st) st = ns_result_attr_str(res, G, "norm", in->cfg.net.norm);
    if (!st) st = ns_result_attr_str(res, G, "arch", in->cfg.arch);
    return st;
}

int ns_spectrum_run(const ns_spectrum_opts *o, ns_run_inputs *in, ns_result *res,
                    ns_spectrum_summary *sum)
{
    memset(sum, 0, sizeof *sum);
    if (in->n < 2)
        return ns_error(NS_EINVAL, "spectrum needs two samples or more, got %zu", in->n);
    int st = ns_spectrum_check(o, in);
    if (!st) st = write_head(o, in, res);
    for (size_t c = 0; !st && c < in->nsteps; c++) {
        /* The first network came with the inputs. */
        if (c > 0 && (st = ns_run_inputs_load(in, in->steps[c])))
            break;
        if ((st = one_step(o, in, res, sum)))
            break;
        if (o->report)
            o->report(o->report_ctx, sum);
    }
    return st;
}
