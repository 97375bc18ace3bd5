/*
 * Empirical neural tangent kernel (METHODS.md "Empirical NTK", DESIGN.md
 * sections 3 and 5).
 *
 * For a network f with K outputs (the logits) and parameters theta,
 *   Theta[(i,k),(j,l)] = sum_p df_ik/dtheta_p df_jl/dtheta_p,
 * rows sample-major (row i*K + k is sample i, output k); the trace kernel is
 * the N x N matrix sum_k Theta[(i,k),(j,k)].  Every trainable parameter
 * counts (weights, biases, norm-layer affine parameters, residual scalars).
 * Gradients are those of the stored parameters: a weight-mean projection
 * (MimicNorm) is not applied to them, and with a reparametrisation (cenconv,
 * ws, nf) they flow through it to the raw weights, as in training.
 *
 * Modes: NS_MODE_EVAL normalises with running statistics, so samples are
 * independent; NS_MODE_BATCH with the statistics of the N samples together,
 * so the outputs are coupled and the kernel is that of the batch function
 * (all N samples in one forward pass).  The recal mode of DESIGN.md section 5
 * is eval mode after ns_recalibrate().
 *
 * Methods, per parameterised layer:
 *   structured  dense layers without a reparametrisation contribute
 *               (A A^T) o (D D^T), A the layer inputs with a ones column for
 *               the bias, D the output cotangents of every (sample, output);
 *   jacobian    per-sample parameter gradients of the layer (J_l rows),
 *               contributing J_l J_l^T; every other layer kind (conv, norm
 *               parameters, scalars) and every layer in batch mode uses it;
 *   auto        structured where a layer allows it and its FLOP count is
 *               lower, the Jacobian form otherwise.
 * Convolutions always use the Jacobian form (the position-pair structured
 * form costs more for every convolution of the presets).
 *
 * The kernel is computed in tiles of sample blocks: only tiles on or above
 * the diagonal, each handed to a sink with its mirror, so kernels larger
 * than memory go to a chunked data set tile by tile (ns_ntk_h5sink, io.h).  Factors (A, D,
 * J rows) are computed once per block and kept when all of them fit in the
 * memory budget, recomputed per tile otherwise.
 */
#ifndef NORMSCOPE_NTK_H
#define NORMSCOPE_NTK_H

#include <stddef.h>
#include <stdint.h>

#include "normscope/core.h"
#include "normscope/eig.h"
#include "normscope/nn.h"

typedef enum ns_ntk_method {
    NS_NTK_AUTO = 0,
    NS_NTK_STRUCTURED,
    NS_NTK_JACOBIAN,
} ns_ntk_method;

typedef struct ns_ntk_opts {
    ns_mode mode;           /* NS_MODE_EVAL or NS_MODE_BATCH */
    int trace;              /* 1: the N x N trace kernel */
    ns_ntk_method method;
    size_t mem;             /* byte budget for factors and tiles (0: 2 GiB) */
    size_t block;           /* samples per block (0: chosen from mem) */
    const char *label;      /* progress label (may be NULL) */
} ns_ntk_opts;

/* Receives tile (r0.., c0..) of nr x nc values, row-major, c0 >= r0 or a
 * mirrored copy; returns a status. */
typedef struct ns_ntk_sink {
    int (*put)(void *ctx, size_t r0, size_t c0, size_t nr, size_t nc, const double *tile);
    void *ctx;
} ns_ntk_sink;

/* What one pass over the kernel measures besides the kernel itself. */
typedef struct ns_ntk_stats {
    size_t dim;             /* N*K, or N for the trace kernel */
    double trace;           /* sum of the diagonal */
    double frob2;           /* squared Frobenius norm */
    double align;           /* kernel-target alignment with the one-hot labels */
    double *layer_trace;    /* nlayers: each layer's share of the trace */
    char *layer_method;     /* nlayers: 's' structured, 'j' Jacobian, 0 no parameters */
    double gflop;           /* floating-point work of the contractions, 1e9 */
    double seconds;
} ns_ntk_stats;

/* Frees what ns_ntk_compute allocated in st. */
void ns_ntk_stats_free(ns_ntk_stats *st);

/*
 * Computes the NTK of net on x (n samples, labels y for the alignment) and
 * hands every tile to sink.  The network's max_batch must be at least the
 * block size in eval mode and at least n in batch mode (NS_EINVAL saying
 * so).  Errors: NS_EINVAL for bad options (batch mode without any
 * batch-statistics layer, a block too large for mem), NS_ENOMEM, and the
 * sink's status.
 */
int ns_ntk_compute(ns_net *net, const ns_real *x, const int32_t *y, size_t n,
                   const ns_ntk_opts *o, const ns_ntk_sink *sink, ns_ntk_stats *st);

/* 1 when some layer of net normalises with batch statistics. */
int ns_ntk_has_batch_stats(const ns_net *net);

/* Bytes ns_ntk_compute needs for tiles between blocks of nblock samples
 * (for checking --mem before anything is written). */ 
size_t ns_ntk_block_bytes(const ns_net *net, const ns_ntk_opts *o, size_t nblock);

/* A sink that fills a dim x dim row-major matrix of doubles. */
typedef struct ns_ntk_memsink {
    double *k;
    size_t dim;
} ns_ntk_memsink;
int ns_ntk_memsink_put(void *ctx, size_t r0, size_t c0, size_t nr, size_t nc, const double *tile);

/* ------------------------------------------------------- the analysis */

/* Names in the result file (DESIGN.md section 3), shared by the analysis
 * (ns_ntk_run) and its figures (src/plot/ntk.c):
 *   /ntk                          provenance, kernel, method, n, outputs, data,
 *                                 norm, arch
 *   /ntk/indices                  data-set indices of the samples
 *   /ntk/<step>/kernel            (N*K, N*K) sample-major, or (N, N) trace
 *   /ntk/<step>/eigenvalues       descending
 *   /ntk/<step>/layer_trace       per parameterised layer, attrs layers, methods
 *   /ntk/drift/{steps,to_init,to_previous}
 *   /ntk/analytic/{kernel,eigenvalues}, /ntk/analytic/depth/{depth,
 *                                 condition_number,condition_number_wm} */
#define NS_NTK_GROUP "/ntk"
#define NS_NTK_INDICES "indices"
#define NS_NTK_KERNEL "kernel"
#define NS_NTK_EIGENVALUES "eigenvalues"
#define NS_NTK_LAYER_TRACE "layer_trace"
#define NS_NTK_DRIFT "drift"
#define NS_NTK_DRIFT_STEPS "steps"
#define NS_NTK_DRIFT_TO_INIT "to_init"
#define NS_NTK_DRIFT_TO_PREVIOUS "to_previous"
#define NS_NTK_ANALYTIC "analytic"
#define NS_NTK_ANALYTIC_DEPTH "depth"
#define NS_NTK_DEPTH_DEPTH "depth"
#define NS_NTK_DEPTH_COND "condition_number"
#define NS_NTK_DEPTH_COND_WM "condition_number_wm"

struct ns_run_inputs;
struct ns_result;

/* What one checkpoint gave (the attributes of /ntk/<step>). */
typedef struct ns_ntk_step_summary {
    uint64_t step;
    double trace, cond, eff_rank, align, lambda_max, seconds, gflop;
    double to_init, to_previous;    /* drift (0 for the first) */
} ns_ntk_step_summary;

/* What ns_ntk_run did, for the command's summary. */
typedef struct ns_ntk_summary {
    size_t n, outputs, dim;         /* samples, K, kernel size */
    int trace;                      /* the N x N trace kernel */
    int in_mem;                     /* kernels held in memory */
    size_t nsteps;                  /* checkpoints done so far */
    ns_ntk_step_summary *steps;     /* nsteps (owned: ns_ntk_summary_free) */
    /* --analytic */
    int analytic;
    char act[32];
    double sw2, sb2;
    int weight_mean;
    size_t depth, maxdepth;
    double an_cond, an_cond_plain, an_cond_wm;   /* own; at maxdepth plain, wm */
} ns_ntk_summary;

void ns_ntk_summary_free(ns_ntk_summary *s);

/* Events ns_ntk_run reports as it goes (for a summary printed as the work
 * proceeds): the result is set up, the analytic kernel is written, one
 * checkpoint is done (the last of s->steps), the drift is written. */
enum { NS_NTK_EV_BEGIN, NS_NTK_EV_ANALYTIC, NS_NTK_EV_STEP, NS_NTK_EV_DRIFT };

typedef struct ns_ntk_run_opts {
    ns_ntk_opts ntk;        /* trace, method, mem (default 2 GiB), block; mode
                             * and label are set from the inputs */
    size_t top;             /* eigenvalues by ARPACK when not all (default 50) */
    int analytic;           /* the infinite-width comparison (default 0) */
    size_t analytic_depth;  /* depths 1..this (default 50) */
    const char *cmdline;    /* for the provenance */
    void (*report)(void *ctx, const ns_ntk_summary *s, int event);   /* may be NULL */
    void *report_ctx;
} ns_ntk_run_opts;

void ns_ntk_run_defaults(ns_ntk_run_opts *o);

/* The max_batch the inputs' networks need for n samples in a mode
 * (batch: n, all in one pass). */
size_t ns_ntk_max_batch(int batch_mode, size_t n);

/*
 * Checks that need no kernel (before a result file is made): batch mode
 * needs a batch-statistics layer, --analytic a dense network without norm
 * layers trained from a Gaussian initialisation (NS_EINVAL naming the
 * problem).  *need receives the bytes one block of the NTK takes, for the
 * caller to hold against its memory option.
 */
int ns_ntk_check(const ns_ntk_run_opts *o, const struct ns_run_inputs *in, size_t *need);

/*
 * The NTK analysis of DESIGN.md section 6: for every chosen checkpoint of
 * in (rebuilt in its mode), the kernel (in memory, or tile by tile into a
 * chunked data set when four copies exceed half of o->ntk.mem), its
 * spectrum (LAPACK when in memory with at most 12000 rows, else the top
 * o->top by ARPACK), trace, norm, condition number, effective rank,
 * alignment and per-layer traces; across checkpoints, the drift; with
 * o->analytic, the infinite-width kernel and its comparison.  Writes the
 * group NS_NTK_GROUP of res (names above), fills *sum (zeroed first; free
 * with ns_ntk_summary_free) and reports progress on stderr.  Errors: those
 * of ns_ntk_check, ns_ntk_compute, the eigen solvers and the writer.
 */
int ns_ntk_run(const ns_ntk_run_opts *o, struct ns_run_inputs *in, struct ns_result *res,
               ns_ntk_summary *sum);

#endif
