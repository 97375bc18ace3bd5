/*
 * `normscope spectrum`: how whitened a network's activations are, layer by
 * layer, and the spectra of its weights (DESIGN.md section 6; measures in
 * METHODS.md "Measures of the activation, collapse and partition analyses",
 * normscope's definitions; the statistics themselves in actstats.h).
 *
 * For every chosen layer of every chosen checkpoint, over the samples of
 * the inputs: the feature covariance (features are units of a dense layer
 * and channels of a conv layer, observations samples x positions, or
 * per-sample spatial means with pool) and its correlation, with their
 * eigenvalues and the whitening metrics; the cosine similarity of the
 * per-sample feature vectors and the spectrum of their Gram matrix; and
 * per-channel distributions.  For every dense and conv layer, the singular
 * values of its weight (a conv kernel reshaped out x in*k*k), stable rank
 * and power-law exponent of the eigenvalues of W^T W.
 */
#ifndef NORMSCOPE_SPECTRUM_H
#define NORMSCOPE_SPECTRUM_H

#include <stddef.h>
#include <stdint.h>

#include "normscope/actstats.h"

/* Names in the result file, shared by ns_spectrum_run and the figures:
 *   /spectrum                          provenance, n, at, pool, layers
 *   /spectrum/indices                  data-set indices of the samples
 *   /spectrum/<step>/<layer>/          one chosen layer ("03-relu"):
 *       cov_eigenvalues, corr_eigenvalues (F, descending),
 *       gram_eigenvalues (the first gram_n samples, descending),
 *       channel_quantiles (F x 7), channel_mean, channel_std,
 *       channel_positive (F); attributes condition_number,
 *       effective_rank, participation_ratio, mean_abs_corr,
 *       corr_identity_distance, mean_cosine, index, kind, features,
 *       observations
 *   /spectrum/<step>/weights/<layer>/singular_values; attributes
 *       stable_rank, alpha, alpha_xmin, alpha_ks, alpha_ntail, index */
#define NS_SPEC_GROUP "/spectrum"
#define NS_SPEC_INDICES "indices"
#define NS_SPEC_WEIGHTS "weights"
#define NS_SPEC_COV_EIG "cov_eigenvalues"
#define NS_SPEC_CORR_EIG "corr_eigenvalues"
#define NS_SPEC_GRAM_EIG "gram_eigenvalues"
#define NS_SPEC_QUANTILES "channel_quantiles"
#define NS_SPEC_MEAN "channel_mean"
#define NS_SPEC_STD "channel_std"
#define NS_SPEC_POSITIVE "channel_positive"
#define NS_SPEC_SINGULAR "singular_values"

struct ns_run_inputs;
struct ns_result;
struct ns_spectrum_summary;

typedef struct ns_spectrum_opts {
    const char *layers;     /* comma-separated layer names (NULL: every dense,
                             * conv and activation layer) */
    int at_pre;             /* 1: each chosen layer's input; 0 (default): its output */
    int pool;               /* conv features as per-sample spatial means */
    size_t gram_n;          /* samples in the cosine Gram (default 1000; 0: all) */
    size_t quantile_n;      /* observations drawn for the channel quantiles
                             * (default 65536; all when there are fewer) */
    uint64_t seed;          /* draws of the quantile observations (default 1) */
    int weights;            /* weight spectra (default 1) */
    size_t min_tail;        /* power-law tail at least this long (default 5) */
    const char *cmdline;    /* for the provenance */
    /* Called after each checkpoint with its summary (may be NULL). */
    void (*report)(void *ctx, const struct ns_spectrum_summary *s);
    void *report_ctx;
} ns_spectrum_opts;

void ns_spectrum_defaults(ns_spectrum_opts *o);

/* One layer of one checkpoint, for the summary. */
typedef struct ns_spectrum_layer {
    char name[32];
    size_t features;
    ns_whitening w;
    double mean_cosine;
} ns_spectrum_layer;

typedef struct ns_spectrum_summary {
    uint64_t step;               /* the checkpoint just done */
    size_t nlayers;
    ns_spectrum_layer *layers;   /* its layers (owned; ns_spectrum_summary_free) */
    size_t n;                    /* samples */
} ns_spectrum_summary;

void ns_spectrum_summary_free(ns_spectrum_summary *s);

/* Checks that need no computation: every name of o->layers is a layer of
 * the inputs' network (NS_EINVAL naming the first that is not, with the
 * names there are). */
int ns_spectrum_check(const ns_spectrum_opts *o, const struct ns_run_inputs *in);

/* The max_batch the inputs' networks need (batch mode: all n at once). */
size_t ns_spectrum_max_batch(int batch_mode, size_t n);

/*
 * The spectrum analysis: for every checkpoint of in (rebuilt in its mode),
 * the forward pass over the samples, the statistics of every chosen layer
 * and the weight spectra, written into the group NS_SPEC_GROUP of res under
 * the names above.  Progress on stderr.  Errors: those of the inputs, the
 * statistics and the writer.
 */
int ns_spectrum_run(const ns_spectrum_opts *o, struct ns_run_inputs *in,
                    struct ns_result *res, ns_spectrum_summary *sum);

#endif
