/*
 * normscope networks: layers behind one small ops table, a network built
 * from an architecture string, parameters/gradients/state in single slabs,
 * forward and backward passes, softmax cross-entropy.
 *
 * A network is a list of layers in forward order.  Each layer reads the
 * output of one earlier layer (src; -1 is the network input), and the
 * residual add reads a second one (src2), so residual blocks stay a flat
 * list whose names follow forward order: 00-conv, 01-bn, 02-relu, ...
 * All tensors are NCHW, row-major, sample-major; weights use PyTorch's
 * layout (dense: out x in; conv: out x in x kh x kw).
 */
#ifndef NORMSCOPE_NN_H
#define NORMSCOPE_NN_H

#include "normscope/core.h"

/* How layers with batch dependence or randomness behave in a forward pass. */
typedef enum ns_mode {
    NS_MODE_TRAIN = 0, /* batch statistics, running statistics updated, dropout on */
    NS_MODE_EVAL = 1,  /* running statistics, dropout off */
    NS_MODE_BATCH = 2  /* batch statistics, nothing updated, dropout off */
} ns_mode;

#define NS_MAX_TENSORS 6

/* A named tensor of a layer: a view into one of the network's slabs. */
typedef struct ns_tensor {
    char name[24];    /* PyTorch's name: weight, bias, running_mean, ... */
    ns_real *data;
    ns_real *grad;    /* parameters only; NULL for state */
    size_t size;
    int ndim;
    size_t dims[4];
    unsigned flags;   /* ns_tensor_flags */
} ns_tensor;

/* What a stored tensor may hold besides finite numbers (run files are
 * checked against it when they are read). */
enum ns_tensor_flags {
    NS_TENSOR_NONNEG = 1   /* a variance, second moment or count: never negative */
};

/* Parameter initialisers. */
typedef enum ns_init_kind {
    NS_INIT_TORCH = 0,   /* PyTorch's default: U(+-1/sqrt(fan_in)) for weight and bias */
    NS_INIT_HE_NORMAL,   /* N(0, 2/fan_in), bias 0 */
    NS_INIT_HE_UNIFORM,  /* U(+-sqrt(6/fan_in)), bias 0 */
    NS_INIT_XAVIER,      /* U(+-sqrt(6/(fan_in+fan_out))), bias 0 */
    NS_INIT_GAUSS,       /* N(0, sw2/fan_in), bias N(0, sb2): mean-field init */
    NS_INIT_MIMIC        /* MimicNorm's init for weight mean: N(0, 2/((n-1)(1-1/pi))),
                          * n = fan_in, bias 0 */
} ns_init_kind;

typedef struct ns_init {
    ns_init_kind kind;
    double sw2, sb2;     /* NS_INIT_GAUSS variances */
} ns_init;

/* Per-forward context: mode, and the random stream for dropout. */
typedef struct ns_ctx {
    ns_mode mode;
    uint64_t seed;       /* run seed */
    uint64_t step;       /* optimiser step; dropout masks depend on (seed, step, layer) */
} ns_ctx;

typedef struct ns_layer ns_layer;

/* What a layer computes, for callers that treat layers differently (the
 * NTK's structured path, weight rules, the analytic comparison).  The kind
 * string of the ops is for names, printing and files only. */
typedef enum ns_layer_role {
    NS_ROLE_OTHER = 0,
    NS_ROLE_DENSE,   /* y = W x + b on the flattened input; param 0 weight (out x in), 1 bias */
    NS_ROLE_CONV,    /* convolution; param 0 weight (out x in x k x k), 1 bias */
    NS_ROLE_ACT,     /* pointwise activation; ns_layer_ops.act says which */
    NS_ROLE_ADD      /* residual join y = x + x2 */
} ns_layer_role;

/* Pointwise activation functions (ns_act_create, ns_layer_ops.act). */
typedef enum ns_act_fn {
    NS_ACT_NONE = 0,  /* not an activation */
    NS_ACT_RELU,      /* max(0, x) */
    NS_ACT_LRELU,     /* x > 0 ? x : a x */
    NS_ACT_TANH,
    NS_ACT_ERF,
    NS_ACT_ID         /* x */
} ns_act_fn;

/* Capabilities of a layer kind (ns_layer_ops.flags). */
enum ns_layer_flags {
    NS_LAYER_NORM = 1,          /* a normalization layer: fills norm slots, and the
                                 * statistics seen by the next one flow through it
                                 * (prev_norm) */
    NS_LAYER_BATCH_STATS = 2,   /* in train and batch mode its output depends on the
                                 * other samples of the batch */
    NS_LAYER_PURE_BACKWARD = 4  /* backward reads only x, dy and the parameters, no
                                 * cache of the forward pass, so it may run on one
                                 * sample of a larger forward */
};

/* Bits of the acc argument of a backward. */
enum ns_backward_bits {
    NS_BACKWARD_ADD_DX = 1,       /* add into dx instead of writing it */
    NS_BACKWARD_ADD_DX2 = 2,      /* the same for dx2 */
    NS_BACKWARD_NO_PARAM_GRAD = 4 /* input gradients only: weight layers (dense, conv)
                                   * skip their parameter gradients (analyses) */
};

/* The operations of one layer kind.  forward writes y from x (and x2 for
 * the residual add) and returns a status; backward writes (acc bit 0 clear)
 * or adds (bit 0 set) the input gradient into dx (NULL: not needed), the
 * same with bit 1 for dx2, and adds parameter gradients unless bit 2
 * (ns_backward_bits) asks a weight layer for input gradients only. */
typedef struct ns_layer_ops {
    const char *kind;          /* names, printing and file layout only */
    int (*forward)(ns_layer *L, ns_real *y, const ns_real *x, const ns_real *x2,
                   size_t n, const ns_ctx *ctx);
    void (*backward)(ns_layer *L, ns_real *dx, ns_real *dx2, int acc,
                     const ns_real *dy, const ns_real *y, const ns_real *x,
                     size_t n);
    /* (Re)initialises parameters and state; may be NULL (no parameters). */
    void (*init)(ns_layer *L, const ns_init *init, ns_rng *r);
    /* Frees impl; may be NULL. */
    void (*release)(ns_layer *L);
    /* Per-step measurements of the last training forward (e.g. UBN's
     * condensation); writes up to max values and their names, returns how
     * many.  May be NULL. */
    size_t (*metrics)(const ns_layer *L, double *vals, const char **names, size_t max);
    ns_layer_role role;
    ns_act_fn act;             /* NS_ROLE_ACT: the function */
    unsigned flags;            /* ns_layer_flags */
    /* Recalibration of running statistics (the recal mode: ns_recalibrate);
     * all NULL for layers whose statistics are not re-estimated.
     * recal_begin resets the running statistics to their initial values;
     * recal_batch, before the training forward of calibration batch k
     * (0, 1, ...), makes its update leave the plain mean over batches 0..k;
     * recal_end gives the layer back its own averaging. */
    void (*recal_begin)(ns_layer *L);
    void (*recal_batch)(ns_layer *L, size_t k);
    void (*recal_end)(ns_layer *L);
} ns_layer_ops;

/* A dense or conv layer's weight rule (src/nn/wrule.c owns it). */
typedef struct ns_wrule_state ns_wrule_state;

/* One layer.  Shapes are per sample; max_batch bounds every call. */
struct ns_layer {
    const ns_layer_ops *ops;
    char name[32];             /* "03-bn": position and kind */
    int src, src2;             /* input layers (-1 network input; src2 -1 unless add) */
    struct ns_layer *in_layer; /* the layer at src (NULL for the network input) */
    size_t in_c, in_h, in_w;
    size_t out_c, out_h, out_w;
    size_t max_batch;
    int nparam, nstate;
    ns_tensor param[NS_MAX_TENSORS];
    ns_tensor state[NS_MAX_TENSORS];
    size_t cache_bytes;        /* bytes kept for backward besides the output, at max_batch */
    ns_wrule_state *wrule;     /* weight rule (dense, conv), or NULL: ns_layer_wrule */
    /* Normalization layers and residual adds: the previous normalization
     * layer (read-only), or NULL.  Statistics flow through it (BKN predicts
     * from it).  After a residual block it is the block's add layer, whose
     * prev_norm is the branch's last norm layer and prev_norm2 the skip
     * path's source of statistics. */
    const ns_layer *prev_norm;
    const ns_layer *prev_norm2;
    ns_mode last_mode;         /* mode of the last forward (backward follows it) */
    void *impl;
};

/* 1 for a normalization layer (NS_LAYER_NORM). */
static inline int ns_layer_is_norm(const ns_layer *L)
{
    return (L->ops->flags & NS_LAYER_NORM) != 0;
}

/* Bounds of a network: values per sample of any layer's output, values of
 * any tensor, samples of a batch.  Within them no size derived from them
 * (times the batch, times 8 bytes, times a few buffers) can wrap; a build
 * that would exceed them fails with NS_EINVAL. */
#define NS_MAX_VALUES ((size_t)1 << 36)
#define NS_MAX_BATCH ((size_t)1 << 20)

/* a * b when both are positive and the product is at most NS_MAX_VALUES,
 * else 0: size arithmetic that cannot wrap. */
static inline size_t ns_size_bounded(size_t a, size_t b)
{
    return a && b && b <= NS_MAX_VALUES / a ? a * b : 0;
}

static inline size_t ns_layer_in_size(const ns_layer *L) { return L->in_c * L->in_h * L->in_w; }
static inline size_t ns_layer_out_size(const ns_layer *L) { return L->out_c * L->out_h * L->out_w; }

/* Declares a tensor of a layer under construction (data bound later). */
int ns_layer_add_param(ns_layer *L, const char *name, int ndim, const size_t *dims);
int ns_layer_add_state(ns_layer *L, const char *name, int ndim, const size_t *dims);
/* The same with ns_tensor_flags (NS_TENSOR_NONNEG for running variances). */
int ns_layer_add_state_flags(ns_layer *L, const char *name, int ndim, const size_t *dims,
                             unsigned flags);

/* Fills nw weights and nb biases (b may be NULL) per the initialiser, with
 * the fan-in and fan-out of the layer (PyTorch's definitions). */
void ns_init_fill(ns_real *W, size_t nw, ns_real *b, size_t nb, double fan_in,
                  double fan_out, const ns_init *init, ns_rng *r);

/* Weight rules of dense and conv layers (src/nn/wrule.c), given by a
 * method's weights hook: a reparametrisation inside the forward pass,
 * through which gradients flow, or MimicNorm's weight-mean projection of
 * the stored weights after each step (ns_net_project). */
typedef enum ns_wrule {
    NS_WRULE_NONE = 0,
    NS_WRULE_CENTER,     /* CenConv: W' = W - mean over the fan-in, per output unit */
    NS_WRULE_STANDARDIZE, /* Weight Standardization: W' = (W - mean) / sqrt(var + 1e-5) */
    NS_WRULE_SCALED       /* NF nets' scaled WS: W' = gain g (W - mean) / sqrt(n var + 1e-4),
                           * n = fan-in, g the gain folded in (sqrt(2/(1-1/pi)) after a
                           * ReLU, else 1) */
} ns_wrule;

/* Gives a dense or conv layer a reparametrisation (allocates its buffers;
 * the scaled rule adds a "gain" parameter, so call it before the slabs
 * exist).  g is the scaled rule's folded gain (ignored by the others).
 * NS_EINVAL for a layer without a weight matrix or with a rule already. */
int ns_layer_set_wrule(ns_layer *L, ns_wrule rule, double g);
/* Marks a dense or conv layer for the weight-mean projection (ns_net_project). */
int ns_layer_set_weight_mean(ns_layer *L);
/* The layer's reparametrisation (NS_WRULE_NONE without one), and 1 when
 * the weight mean projects it. */
ns_wrule ns_layer_wrule(const ns_layer *L);
int ns_layer_weight_mean(const ns_layer *L);
/* Sets what the rule initialises (the scaled rule's gain to 1); called by
 * ns_net_init after the layer's own init. */
void ns_layer_wrule_init(ns_layer *L);
/* Frees the layer's rule (NULL-safe). */
void ns_layer_wrule_free(ns_layer *L);
/* The weight a dense/conv layer multiplies with: W, or W' computed now. */
const ns_real *ns_layer_weight_forward(ns_layer *L);
/* The weight the last forward multiplied with (backward reads it). */
const ns_real *ns_layer_weight_used(const ns_layer *L);
/* Where the layer's backward accumulates dL/dW' (zeroed), and the step
 * that maps it to dL/dW and adds it to the parameter gradient. */
ns_real *ns_layer_weight_grad_begin(ns_layer *L);
void ns_layer_weight_grad_end(ns_layer *L);

/* Options that shape a network. */
typedef struct ns_net_opts {
    char norm[32];         /* method placed in every `norm` slot: "bn", "none" */
    size_t norm_group;     /* samples per normalisation group (0: the whole batch) */
    double bn_momentum;    /* 0.1 */
    double bn_eps;         /* 1e-5 */
    int bn_affine;         /* 1 */
    size_t gn_groups;      /* GroupNorm groups (32; the largest divisor of C not above) */
    double psbn_alpha;     /* psBN post-shift (0.1) */
    double fct;            /* UBN condensation threshold (0.9); running stats skip above */
    double frn_eps;        /* FRN eps0 (1e-6) */
    int frn_relu;          /* 1: keep a relu right after an FRN slot; 0 (default): the
                              TLU takes its place, the paper's FRN + TLU for BN + ReLU */
    size_t brn_warmup;     /* BRN: steps with r = 1, d = 0 (500) */
    size_t brn_ramp;       /* BRN: steps of the linear ramp to rmax 3, dmax 5 (2000) */
    double ic_drop;        /* IC layer dropout probability (0.05) */
    size_t mabn_buffer;    /* MABN: iterations averaged (0: the authors' rule, see
                              ns_mabn_buffer_size) */
    size_t mabn_real_batch; /* MABN: samples the buffer should span (32) */
    size_t mabn_warmup;    /* MABN: warm-up iterations (100) */
    double bkn_p;          /* BKN mixing weight (-1: 0.9 for groups <= 16, else 0.05) */
    size_t bkn_samples;    /* BKN pseudo-inputs on dense layers (64) */
    int bkn_predict;       /* BKN groups: ns_bkn_predict (NS_BKN_PREDICT_GROUP, the
                              authors' per-group prediction) */
    int bkn_grad;          /* BKN: gradient through the prediction (1, the authors'
                              code; 0: the prediction is a constant in backward) */
    size_t pn_warmup;      /* PowerNorm warm-up steps (10000) */
    double agc;            /* BN-free training: AGC clipping threshold lambda (0.01) */
    int wm_all;            /* weight mean on every conv/dense layer, not the authors' rule */
    int res_scale_paper;   /* MimicNorm residual scalar init 1/sqrt(l), not 1.2^2/l */
    size_t max_batch;      /* largest batch any call will pass */
} ns_net_opts;
/* ns_net_opts_default (normscope/norm.h) fills in the defaults above: norm
 * "bn", max_batch 128, and each method option's default as its method
 * declares it. */

typedef struct ns_net {
    size_t nlayers;
    ns_layer *layers;
    size_t in_c, in_h, in_w;   /* input shape per sample */
    size_t nout;               /* outputs per sample (logits) */
    size_t max_batch;
    size_t nparams, nstate;    /* slab lengths */
    ns_real *params, *grads, *state;
    ns_real **act;             /* output of each layer, max_batch * out_size */
    ns_real **dact;            /* gradient of each layer's output */
    unsigned char *seen;       /* backward scratch, one flag per layer */
    const ns_real *input;      /* input of the last forward */
    size_t last_n;
    ns_net_opts opts;
    char arch[4096];           /* the expanded architecture string */
} ns_net;

/*
 * What a normalization method does to a network while it is built.  src/nn
 * knows no method: the registry of src/norm hands ns_net_build_with the
 * hooks of the method `--norm` names (ns_net_build in normscope/norm.h).
 * Every member may be NULL (the method does nothing there).
 *
 * The layer fillers get L with its input shape set, and prev_norm (the
 * previous normalization layer) for a normalization layer to read; they
 * fill it as the ns_*_create constructors do and return a status.  A
 * filler that leaves L->ops NULL adds no layer.  Normalization layers
 * (NS_LAYER_NORM) become the prev_norm of the ones after them.
 */
typedef struct ns_net_method {
    /* A `norm` token of the architecture; NULL: every slot stays empty. */
    int (*slot)(ns_layer *L, const ns_net_opts *o);
    /* A `bn` token: batch normalization whatever the method. */
    int (*bn)(ns_layer *L, const ns_net_opts *o);
    /* 1 when activation fn right after a filled `norm` slot is left out:
     * the slot's layer ends in an activation of its own (FRN's TLU takes
     * a relu's place). */
    int (*replaces_act)(ns_act_fn fn, const ns_net_opts *o);
    /* Layers after every activation: the k-th (k = 0, 1, ...) until one is
     * left empty (IC: BN, then dropout). */
    int (*after_act)(ns_layer *L, size_t k, const ns_net_opts *o);
    /* A layer ending residual branch `block` (1, 2, ...) before its add
     * (MimicNorm's residual scalar). */
    int (*branch_end)(ns_layer *L, size_t block, const ns_net_opts *o);
    /* A layer after the last one, on the logits (MimicNorm's last BN). */
    int (*logits)(ns_layer *L, const ns_net_opts *o);
    /* Runs on the complete list of layers before the slabs exist: weight
     * rules (ns_layer_set_wrule, ns_layer_set_weight_mean). */
    int (*weights)(ns_net *net);
} ns_net_method;

/*
 * Builds a network from an architecture string for inputs of shape
 * (c, h, w) and nout outputs, with the method's hooks (NULL: none; the
 * `norm` slots stay empty and `bn` tokens are refused).  Grammar, comma
 * separated:
 *   fc:N            dense layer with N outputs (flattens its input); fc:out = nout
 *   convKxK:C[/S][pP]  KxK convolution, C channels, stride S (1), padding P (K/2)
 *   maxpool:K[/S] | avgpool:K[/S]   pooling, stride S (K)
 *   gap | flatten   global average pool; explicit flatten (a no-op view)
 *   relu | lrelu[:A] | tanh | erf | id     activations (A = 0.01)
 *   dropout:P       inverted dropout with drop probability P
 *   norm            the normalization slot (method->slot)
 *   bn              batch normalization regardless of the method (method->bn)
 *   res:C[/S]       basic residual block: conv3x3:C/S,norm,relu,conv3x3:C,norm,
 *                   plus the shortcut (identity, or conv1x1:C/S,norm when
 *                   the shape changes), add, relu
 * and presets (see ns_arch_expand): mlp[:WxD], deepmlp[:WxD], cnn, vgg11-s,
 * vgg16-s, resnet8, resnet20.  Errors (NS_EINVAL) name the bad token.
 * opts->norm is recorded, not read.
 */
int ns_net_build_with(const char *arch, const ns_net_opts *opts, const ns_net_method *method,
                      size_t c, size_t h, size_t w, size_t nout, ns_net **out);
void ns_net_free(ns_net *net);

/* Expands a preset into its architecture string; plain strings are copied.
 * NS_EINVAL for an unknown preset, bad preset arguments, or a preset inside a
 * comma-separated layer list.  ns_arch_presets lists the names. */
int ns_arch_expand(const char *arch, char *buf, size_t len);
const char *ns_arch_presets(void);

/* Initialises every parameter and resets state from the seed, then applies
 * the weight-mean projection where the method asks for it. */
void ns_net_init(ns_net *net, const ns_init *init, uint64_t seed);

/* MimicNorm's weight mean: W[o, :] <- W[o, :] - mean(W[o, :]) over the
 * fan-in of every layer marked for it (ns_layer_set_weight_mean).  A
 * projection of the stored weights, called after initialisation and after
 * every optimiser step. */
void ns_net_project(ns_net *net);
/* Adaptive gradient clipping (Brock et al. 2021), unit-wise on the weight
 * of every layer with a reparametrisation (ns_layer_wrule): a row's
 * gradient G_o is scaled down to lambda max(|W_o|, 1e-3) when its norm
 * exceeds that. */
void ns_net_agc(ns_net *net, double lambda);
/* Global gradient-norm clipping as torch.nn.utils.clip_grad_norm_: when the
 * norm of all gradients exceeds max_norm (> 0) they are scaled by
 * max_norm / (norm + 1e-6).  Returns the norm before clipping; max_norm 0
 * only measures it. */
double ns_net_clip_grad(ns_net *net, double max_norm);
/* 1 when some layer is projected. */
int ns_net_has_projection(const ns_net *net);

/* Forward pass on n <= max_batch samples; returns the logits (n x nout). */
int ns_net_forward(ns_net *net, const ns_real *x, size_t n, const ns_ctx *ctx);
const ns_real *ns_net_logits(const ns_net *net);

/* Backward pass after a forward on the same batch: dlogits (n x nout) in,
 * parameter gradients added to net->grads. */
void ns_net_backward(ns_net *net, const ns_real *dlogits);
/* The same pass for the gradients of the layers' outputs (net->dact) only:
 * weight layers skip their parameter gradients (NS_BACKWARD_NO_PARAM_GRAD);
 * other layers may still add theirs. */
void ns_net_backward_input(ns_net *net, const ns_real *dlogits);

/* Sets every parameter gradient to zero. */
void ns_net_zero_grad(ns_net *net);

/* Bytes of activations kept for backward for a batch of n samples. */
size_t ns_net_activation_bytes(const ns_net *net, size_t n);
size_t ns_layer_activation_bytes(const ns_layer *L, size_t n);

/* Layer lookup by name ("03-bn"); NULL if absent. */
ns_layer *ns_net_find(ns_net *net, const char *name);

/* Prints a one-line-per-layer summary. */
void ns_net_print(const ns_net *net, FILE *f);

/* Mean softmax cross-entropy of logits (n x k) against labels y.  Writes
 * dlogits = (softmax - onehot) / n when dlogits is not NULL; *loss gets the
 * mean loss (double) and *correct (may be NULL) the number of argmax hits. */
void ns_softmax_ce(const ns_real *logits, const int32_t *y, size_t n, size_t k,
                   ns_real *dlogits, double *loss, size_t *correct);

/* Layer constructors used by the builder and by the norm registry: each
 * fills L (ops, out shape, tensors, impl) for the input shape already in L. */
int ns_dense_create(ns_layer *L, size_t nout);
int ns_conv_create(ns_layer *L, size_t cout, size_t k, size_t stride, size_t pad);
/* The columns of one sample x of a conv layer: col is (in_c k k) x (out_h
 * out_w), row-major, so that the layer's output is W col + b (analyses). */
void ns_conv_im2col(const ns_layer *L, const ns_real *x, ns_real *col);
int ns_pool_create(ns_layer *L, int is_max, size_t k, size_t stride);
int ns_gap_create(ns_layer *L);
int ns_flatten_create(ns_layer *L);
/* An activation: fn one of NS_ACT_* (alpha: lrelu's slope); NS_EINVAL otherwise. */
int ns_act_create(ns_layer *L, ns_act_fn fn, double alpha);
int ns_dropout_create(ns_layer *L, double p);
int ns_add_create(ns_layer *L, const ns_layer *other);
/* A learnable scalar times the input (MimicNorm's residual-branch scale). */
int ns_scale_create(ns_layer *L, double init_value);

#endif
