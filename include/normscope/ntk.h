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

#endif
