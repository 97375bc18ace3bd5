/*
 * The network: built from an architecture string into a flat list of
 * layers, with parameters, gradients and state each in one slab (so the
 * parameter vector is contiguous), and one output and one gradient buffer
 * per layer sized for max_batch.  Nothing is allocated after the build.
 * What a normalization method does to the network comes in as hooks
 * (ns_net_method): the builder knows no method.
 */
#include "normscope/nn.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- parser */

typedef struct builder {
    ns_net *net;
    size_t cap;
    int cur;                 /* layer whose output feeds the next token (-1 input) */
    int slot;                /* the last layer that filled a `norm` slot (-1 none) */
    const ns_layer *prev_norm;
    const char *token;       /* for error messages */
    ns_net_method method;    /* the method's hooks (members NULL where it has none) */
    size_t nblocks;          /* residual blocks so far */
} builder;

static int bad_token(const builder *b, const char *why)
{
    return ns_error(NS_EINVAL, "bad architecture token '%s': %s", b->token, why);
}

/* Starts a new layer reading from src; its input shape is src's output. */
static ns_layer *new_layer(builder *b, int src)
{
    ns_net *net = b->net;
    if (net->nlayers >= b->cap)
        return NULL;
    ns_layer *L = &net->layers[net->nlayers];
    memset(L, 0, sizeof *L);
    L->src = src;
    L->src2 = -1;
    L->in_layer = src < 0 ? NULL : &net->layers[src];
    L->max_batch = net->max_batch;
    if (src < 0) {
        L->in_c = net->in_c;
        L->in_h = net->in_h;
        L->in_w = net->in_w;
    } else {
        const ns_layer *S = &net->layers[src];
        L->in_c = S->out_c;
        L->in_h = S->out_h;
        L->in_w = S->out_w;
    }
    /* Position as a provisional name: dropout seeds its stream with it. */
    snprintf(L->name, sizeof L->name, "%zu", net->nlayers);
    return L;
}

/* Finishes the layer started by new_layer after its create call. */
static int commit_layer(builder *b, ns_layer *L, int st)
{
    /* Sizes per sample within bounds: no buffer size derived from them
     * wraps (a wrapped one would be too small for the loops). */
    if (!st && !ns_size_bounded(ns_size_bounded(L->out_c, L->out_h), L->out_w))
        st = ns_error(NS_EINVAL, "output of %zu x %zu x %zu values per sample is too large",
                      L->out_c, L->out_h, L->out_w);
    if (st) {
        if (L->ops && L->ops->release)
            L->ops->release(L);
        else if (!L->ops)
            ns_free(L->impl);
        L->impl = NULL;
        if (st == NS_EINVAL) {
            /* ns_error writes the buffer ns_errmsg returns: copy the reason
             * first, or it is overwritten while being formatted. */
            char why[512];
            snprintf(why, sizeof why, "%s", ns_errmsg());
            return bad_token(b, why);
        }
        return st;
    }
    b->cur = (int)(L - b->net->layers);
    b->net->nlayers++;
    if (ns_layer_is_norm(L))
        b->prev_norm = L;
    return NS_OK;
}

/* Starts a layer that a method's hook fills, after the current one; a
 * normalization layer there reads the previous one's statistics. */
static ns_layer *new_method_layer(builder *b)
{
    ns_layer *L = new_layer(b, b->cur);
    if (L)
        L->prev_norm = b->prev_norm;
    return L;
}

/* Finishes it: *added says whether the hook filled it (an empty one adds
 * nothing); prev_norm stays with normalization layers only. */
static int commit_method_layer(builder *b, ns_layer *L, int st, int *added)
{
    *added = st || L->ops;
    if (!*added)
        return NS_OK;
    if (!st && !ns_layer_is_norm(L))
        L->prev_norm = NULL;
    return commit_layer(b, L, st);
}

static int too_many_layers(const builder *b)
{
    return ns_error(NS_EFAIL, "too many layers for the architecture at token '%s'", b->token);
}

static int parse_size(const char *s, char **end, size_t *v)
{
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    unsigned long long x = strtoull(s, end, 10);
    if (errno || x == 0 || x > (1ULL << 24))
        return -1;
    *v = (size_t)x;
    return 0;
}

static int add_norm_slot(builder *b, int explicit_bn)
{
    const ns_net_opts *o = &b->net->opts;
    int (*fill)(ns_layer *, const ns_net_opts *) = explicit_bn ? b->method.bn : b->method.slot;
    if (!fill) {
        if (explicit_bn)
            return bad_token(b, "no batch normalization without a normalization module");
        return NS_OK;   /* empty slot */
    }
    ns_layer *L = new_method_layer(b);
    if (!L)
        return too_many_layers(b);
    int added, st = commit_method_layer(b, L, fill(L, o), &added);
    if (!st && added && !explicit_bn)
        b->slot = b->cur;
    return st;
}

static int add_conv(builder *b, int src, size_t cout, size_t k, size_t s, size_t p)
{
    ns_layer *L = new_layer(b, src);
    return commit_layer(b, L, ns_conv_create(L, cout, k, s, p));
}

static int add_act(builder *b, ns_act_fn fn, double alpha)
{
    const ns_net_method *m = &b->method;
    const ns_net_opts *o = &b->net->opts;
    /* A slot layer that ends in an activation of its own takes this one's
     * place (FRN's TLU for a relu). */
    if (m->replaces_act && b->slot >= 0 && b->cur == b->slot && m->replaces_act(fn, o))
        return NS_OK;
    ns_layer *L = new_layer(b, b->cur);
    if (!L)
        return too_many_layers(b);
    int st = commit_layer(b, L, ns_act_create(L, fn, alpha)), added = 1;
    /* Layers the method puts after every activation (IC: BN, dropout). */
    for (size_t k = 0; !st && added && m->after_act; k++) {
        if (!(L = new_method_layer(b)))
            return too_many_layers(b);
        st = commit_method_layer(b, L, m->after_act(L, k, o), &added);
    }
    return st;
}

static int add_resblock(builder *b, size_t cout, size_t stride)
{
    int in = b->cur;
    if (in < 0)
        return bad_token(b, "a residual block cannot be the first layer");
    const ns_layer *pn_in = b->prev_norm;   /* statistics entering the block */
    int st = add_conv(b, in, cout, 3, stride, 1);
    if (!st) st = add_norm_slot(b, 0);
    if (!st) st = add_act(b, NS_ACT_RELU, 0);
    if (!st) st = add_conv(b, b->cur, cout, 3, 1, 1);
    if (!st) st = add_norm_slot(b, 0);
    b->nblocks++;
    if (!st && b->method.branch_end) {
        /* the method's layer at the end of the branch (MimicNorm's scalar) */
        ns_layer *S = new_method_layer(b);
        int added;
        st = S ? commit_method_layer(b, S, b->method.branch_end(S, b->nblocks, &b->net->opts),
                                     &added)
               : too_many_layers(b);
    }
    if (st)
        return st;
    int branch = b->cur;
    const ns_layer *pn_branch = b->prev_norm;
    const ns_layer *B = &b->net->layers[branch];
    const ns_layer *I = &b->net->layers[in];
    int shortcut = in;
    const ns_layer *pn_skip = pn_in;
    if (I->out_c != B->out_c || I->out_h != B->out_h || I->out_w != B->out_w) {
        st = add_conv(b, in, cout, 1, stride, 0);
        b->prev_norm = pn_in;   /* the shortcut reads the block's input */
        if (!st) st = add_norm_slot(b, 0);
        if (st)
            return st;
        shortcut = b->cur;
        pn_skip = b->prev_norm;
    }
    ns_layer *L = new_layer(b, branch);
    L->src2 = shortcut;
    L->prev_norm = pn_branch;
    L->prev_norm2 = pn_skip;
    const ns_layer *other = &b->net->layers[shortcut];
    st = commit_layer(b, L, ns_add_create(L, other));
    if (st)
        return st;
    /* Statistics after the block are the sum of both paths' (BKN). */
    b->prev_norm = L;
    return add_act(b, NS_ACT_RELU, 0);
}

static int parse_token(builder *b, char *tok)
{
    b->token = tok;
    char *end;
    size_t v, k, s, p;
    if (strcmp(tok, "norm") == 0 || strcmp(tok, "bn") == 0)
        return add_norm_slot(b, tok[0] == 'b');
    static const struct {
        const char *name;
        ns_act_fn fn;
    } acts[] = {{"relu", NS_ACT_RELU}, {"tanh", NS_ACT_TANH}, {"erf", NS_ACT_ERF},
                {"id", NS_ACT_ID}};
    for (size_t i = 0; i < sizeof acts / sizeof *acts; i++)
        if (strcmp(tok, acts[i].name) == 0)
            return add_act(b, acts[i].fn, 0);
    if (strncmp(tok, "lrelu", 5) == 0) {
        double a = 0.01;
        if (tok[5] == ':') {
            a = strtod(tok + 6, &end);
            if (end == tok + 6 || *end || !(a >= 0 && a < 1))
                return bad_token(b, "expected lrelu:A with 0 <= A < 1");
        } else if (tok[5]) {
            return bad_token(b, "unknown layer");
        }
        return add_act(b, NS_ACT_LRELU, a);
    }
    if (strcmp(tok, "gap") == 0) {
        ns_layer *L = new_layer(b, b->cur);
        return commit_layer(b, L, ns_gap_create(L));
    }
    if (strcmp(tok, "flatten") == 0) {
        ns_layer *L = new_layer(b, b->cur);
        return commit_layer(b, L, ns_flatten_create(L));
    }
    if (strncmp(tok, "fc:", 3) == 0) {
        if (strcmp(tok + 3, "out") == 0)
            v = b->net->nout;
        else if (parse_size(tok + 3, &end, &v) || *end)
            return bad_token(b, "expected fc:N or fc:out");
        ns_layer *L = new_layer(b, b->cur);
        return commit_layer(b, L, ns_dense_create(L, v));
    }
    if (strncmp(tok, "dropout:", 8) == 0) {
        double pr = strtod(tok + 8, &end);
        if (end == tok + 8 || *end || !(pr >= 0 && pr < 1))
            return bad_token(b, "expected dropout:P with 0 <= P < 1");
        ns_layer *L = new_layer(b, b->cur);
        return commit_layer(b, L, ns_dropout_create(L, pr));
    }
    if (strncmp(tok, "maxpool:", 8) == 0 || strncmp(tok, "avgpool:", 8) == 0) {
        if (parse_size(tok + 8, &end, &k))
            return bad_token(b, "expected maxpool:K[/S]");
        s = k;
        if (*end == '/' && (parse_size(end + 1, &end, &s)))
            return bad_token(b, "expected maxpool:K[/S]");
        if (*end)
            return bad_token(b, "expected maxpool:K[/S]");
        ns_layer *L = new_layer(b, b->cur);
        return commit_layer(b, L, ns_pool_create(L, tok[0] == 'm', k, s));
    }
    if (strncmp(tok, "conv", 4) == 0) {
        /* convKxK:C[/S][pP] */
        size_t k2;
        if (parse_size(tok + 4, &end, &k) || *end != 'x' ||
            parse_size(end + 1, &end, &k2) || k2 != k || *end != ':' ||
            parse_size(end + 1, &end, &v))
            return bad_token(b, "expected convKxK:C[/S][pP]");
        s = 1;
        p = k / 2;
        if (*end == '/' && parse_size(end + 1, &end, &s))
            return bad_token(b, "expected convKxK:C[/S][pP]");
        if (*end == 'p') {
            if (end[1] == '0' && end[2] == '\0') {
                p = 0;
                end += 2;
            } else if (parse_size(end + 1, &end, &p)) {
                return bad_token(b, "expected convKxK:C[/S][pP]");
            }
        }
        if (*end)
            return bad_token(b, "expected convKxK:C[/S][pP]");
        return add_conv(b, b->cur, v, k, s, p);
    }
    if (strncmp(tok, "res:", 4) == 0) {
        if (parse_size(tok + 4, &end, &v))
            return bad_token(b, "expected res:C[/S]");
        s = 1;
        if (*end == '/' && parse_size(end + 1, &end, &s))
            return bad_token(b, "expected res:C[/S]");
        if (*end)
            return bad_token(b, "expected res:C[/S]");
        return add_resblock(b, v, s);
    }
    return bad_token(b, "unknown layer");
}

/* ------------------------------------------------------------ build/free */

static int finalize(ns_net *net)
{
    size_t np = 0, ns = 0;
    for (size_t i = 0; i < net->nlayers; i++) {
        ns_layer *L = &net->layers[i];
        for (int t = 0; t < L->nparam; t++)
            np += L->param[t].size;
        for (int t = 0; t < L->nstate; t++)
            ns += L->state[t].size;
    }
    net->nparams = np;
    net->nstate = ns;
    net->params = ns_calloc(np ? np : 1, sizeof(ns_real));
    net->grads = ns_calloc(np ? np : 1, sizeof(ns_real));
    net->state = ns_calloc(ns ? ns : 1, sizeof(ns_real));
    net->act = ns_calloc(net->nlayers, sizeof *net->act);
    net->dact = ns_calloc(net->nlayers, sizeof *net->dact);
    net->seen = ns_calloc(net->nlayers, 1);
    if (!net->params || !net->grads || !net->state || !net->act || !net->dact ||
        !net->seen)
        return NS_ENOMEM;
    size_t po = 0, so = 0;
    int width = net->nlayers > 100 ? 3 : 2;
    for (size_t i = 0; i < net->nlayers; i++) {
        ns_layer *L = &net->layers[i];
        for (int t = 0; t < L->nparam; t++) {
            L->param[t].data = net->params + po;
            L->param[t].grad = net->grads + po;
            po += L->param[t].size;
        }
        for (int t = 0; t < L->nstate; t++) {
            L->state[t].data = net->state + so;
            so += L->state[t].size;
        }
        snprintf(L->name, sizeof L->name, "%0*zu-%s", width, i, L->ops->kind);
        size_t cnt = ns_mul_size(net->max_batch, ns_layer_out_size(L));
        net->act[i] = ns_malloc(cnt * sizeof(ns_real));
        net->dact[i] = ns_malloc(cnt * sizeof(ns_real));
        if (!net->act[i] || !net->dact[i])
            return NS_ENOMEM;
    }
    return NS_OK;
}

int ns_net_build_with(const char *arch, const ns_net_opts *opts, const ns_net_method *method,
                      size_t c, size_t h, size_t w, size_t nout, ns_net **out)
{
    *out = NULL;
    if (opts->max_batch == 0 || opts->max_batch > NS_MAX_BATCH)
        return ns_error(NS_EINVAL, "batch size must be between 1 and %zu, got %zu",
                        NS_MAX_BATCH, opts->max_batch);
    if (!ns_size_bounded(ns_size_bounded(c, h), w))
        return ns_error(NS_EINVAL, "input shape %zu x %zu x %zu is empty or too large", c, h, w);
    ns_net *net = ns_calloc(1, sizeof *net);
    if (!net)
        return NS_ENOMEM;
    net->opts = *opts;
    net->in_c = c;
    net->in_h = h;
    net->in_w = w;
    net->nout = nout;
    net->max_batch = opts->max_batch;
    int st = ns_arch_expand(arch, net->arch, sizeof net->arch);
    char *copy = NULL;
    if (st)
        goto cleanup;
    copy = strdup(net->arch);
    if (!copy) {
        st = ns_error(NS_ENOMEM, "out of memory");
        goto cleanup;
    }
    size_t ntok = 1;
    for (const char *q = copy; *q; q++)
        ntok += *q == ',';
    builder b = {.net = net, .cap = ntok * 10 + 2, .cur = -1, .slot = -1};
    if (method)
        b.method = *method;
    net->layers = ns_calloc(b.cap, sizeof *net->layers);
    if (!net->layers) {
        st = NS_ENOMEM;
        goto cleanup;
    }
    for (char *tok = copy, *next; tok; tok = next) {
        char *comma = strchr(tok, ',');
        next = comma ? comma + 1 : NULL;
        if (comma)
            *comma = '\0';
        while (isspace((unsigned char)*tok))
            tok++;
        char *e = tok + strlen(tok);
        while (e > tok && isspace((unsigned char)e[-1]))
            *--e = '\0';
        if (!*tok && strchr(net->arch, ',')) {
            st = ns_error(NS_EINVAL, "bad architecture '%s': empty token (two commas, or a "
                          "comma at an end)", arch);
            goto cleanup;
        }
        if (*tok && (st = parse_token(&b, tok)))
            goto cleanup;
    }
    if (net->nlayers == 0) {
        st = ns_error(NS_EINVAL, "empty architecture '%s'", arch);
        goto cleanup;
    }
    if (b.method.logits) {
        /* the method's layer on the logits (MimicNorm's last BN) */
        ns_layer *L = new_method_layer(&b);
        int added;
        b.token = "(layer on the logits)";
        st = L ? commit_method_layer(&b, L, b.method.logits(L, &net->opts), &added)
               : too_many_layers(&b);
        if (st)
            goto cleanup;
    }
    const ns_layer *last = &net->layers[net->nlayers - 1];
    if (ns_layer_out_size(last) != nout) {
        st = ns_error(NS_EINVAL, "architecture '%s' ends with %zu outputs per sample, "
                      "the data have %zu classes", arch, ns_layer_out_size(last), nout);
        goto cleanup;
    }
    /* the method's weight rules, before the slabs (a rule may add a parameter) */
    if (b.method.weights && (st = b.method.weights(net)))
        goto cleanup;
    st = finalize(net);
cleanup:
    free(copy);
    if (st) {
        ns_net_free(net);
        return st;
    }
    *out = net;
    return NS_OK;
}

void ns_net_free(ns_net *net)
{
    if (!net)
        return;
    for (size_t i = 0; net->layers && i < net->nlayers; i++) {
        ns_layer *L = &net->layers[i];
        if (L->ops && L->ops->release)
            L->ops->release(L);
        ns_layer_wrule_free(L);
        if (net->act)
            ns_free(net->act[i]);
        if (net->dact)
            ns_free(net->dact[i]);
    }
    ns_free(net->layers);
    ns_free(net->params);
    ns_free(net->grads);
    ns_free(net->state);
    ns_free(net->act);
    ns_free(net->dact);
    ns_free(net->seen);
    ns_free(net);
}

/* ------------------------------------------------------------ passes */

void ns_net_init(ns_net *net, const ns_init *init, uint64_t seed)
{
    for (size_t i = 0; i < net->nlayers; i++) {
        ns_layer *L = &net->layers[i];
        ns_rng r;
        /* One stream per layer: a layer's init does not depend on the
         * others' sizes. */
        ns_rng_seed(&r, seed, 0x1000 + i);
        if (L->ops->init)
            L->ops->init(L, init, &r);
        ns_layer_wrule_init(L);
    }
    ns_net_project(net);
}

int ns_net_forward(ns_net *net, const ns_real *x, size_t n, const ns_ctx *ctx)
{
    if (n == 0 || n > net->max_batch)
        return ns_error(NS_EINVAL, "batch of %zu samples (the network takes 1 to %zu)",
                        n, net->max_batch);
    net->input = x;
    net->last_n = n;
    for (size_t i = 0; i < net->nlayers; i++) {
        ns_layer *L = &net->layers[i];
        const ns_real *in = L->src < 0 ? x : net->act[L->src];
        const ns_real *in2 = L->src2 < 0 ? NULL : net->act[L->src2];
        L->last_mode = ctx->mode;
        int st = L->ops->forward(L, net->act[i], in, in2, n, ctx);
        if (st)
            return st;
    }
    return NS_OK;
}

const ns_real *ns_net_logits(const ns_net *net)
{
    return net->act[net->nlayers - 1];
}

void ns_net_zero_grad(ns_net *net)
{
    memset(net->grads, 0, net->nparams * sizeof *net->grads);
}

double ns_net_clip_grad(ns_net *net, double max_norm)
{
    ns_real *g = net->grads;
    double g2 = 0;
#pragma omp simd reduction(+ : g2)
    for (size_t i = 0; i < net->nparams; i++)
        g2 += (double)g[i] * g[i];
    double norm = sqrt(g2);
    if (max_norm > 0 && norm > max_norm) {
        ns_real f = (ns_real)(max_norm / (norm + 1e-6));
#pragma omp simd
        for (size_t i = 0; i < net->nparams; i++)
            g[i] *= f;
    }
    return norm;
}

/* The backward pass; bits (ns_backward_bits) go to every layer. */
static void backward(ns_net *net, const ns_real *dlogits, int bits)
{
    size_t n = net->last_n, nl = net->nlayers;
    /* seen[j]: layer j's output gradient already holds a contribution, so
     * later consumers add to it instead of overwriting (no zeroing pass). */
    unsigned char *seen = net->seen;
    memset(seen, 0, nl);
    for (size_t ii = nl; ii-- > 0;) {
        ns_layer *L = &net->layers[ii];
        const ns_real *dy = ii == nl - 1 ? dlogits : net->dact[ii];
        if (ii != nl - 1 && !seen[ii])
            continue;  /* output unused downstream */
        const ns_real *x = L->src < 0 ? net->input : net->act[L->src];
        ns_real *dx = L->src < 0 ? NULL : net->dact[L->src];
        ns_real *dx2 = L->src2 < 0 ? NULL : net->dact[L->src2];
        int acc = 0;
        if (dx) {
            acc |= seen[L->src] ? 1 : 0;
            seen[L->src] = 1;
        }
        if (dx2) {
            acc |= seen[L->src2] ? 2 : 0;
            seen[L->src2] = 1;
        }
        L->ops->backward(L, dx, dx2, acc | bits, dy, net->act[ii], x, n);
    }
}

void ns_net_backward(ns_net *net, const ns_real *dlogits)
{
    backward(net, dlogits, 0);
}

void ns_net_backward_input(ns_net *net, const ns_real *dlogits)
{
    backward(net, dlogits, NS_BACKWARD_NO_PARAM_GRAD);
}
