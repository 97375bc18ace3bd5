/*
 * Optimisers over the parameter slab, following PyTorch's update rules
 * (torch.optim.SGD, Adam, AdamW), and learning-rate schedules.
 *   SGD:   g = grad + wd p;  b = mu b + g (b = g at the first step);
 *          g = nesterov ? g + mu b : b;  p -= lr g
 *   Adam:  g = grad + wd p;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *          p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 *   AdamW: p -= lr wd p first, then Adam without the wd term.
 */
#include "normscope/train.h"

#include <math.h>
#include <string.h>

#ifdef NS_DOUBLE
#define sqrtr sqrt
#else
#define sqrtr sqrtf
#endif

int ns_optim_alloc(ns_optim *o, ns_optim_kind kind, size_t nparams)
{
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->n = nparams;
    o->buf1 = ns_calloc(nparams ? nparams : 1, sizeof *o->buf1);
    if (kind != NS_OPTIM_SGD)
        o->buf2 = ns_calloc(nparams ? nparams : 1, sizeof *o->buf2);
    if (!o->buf1 || (kind != NS_OPTIM_SGD && !o->buf2)) {
        ns_optim_release(o);
        return NS_ENOMEM;
    }
    return NS_OK;
}

void ns_optim_release(ns_optim *o)
{
    ns_free(o->buf1);
    ns_free(o->buf2);
    o->buf1 = o->buf2 = NULL;
}

void ns_optim_step(ns_optim *o, const ns_train_config *c, double lr,
                   ns_real *p, const ns_real *grads)
{
    size_t n = o->n;
    o->t++;
    ns_real wd = (ns_real)c->wd, lrr = (ns_real)lr;
    if (o->kind == NS_OPTIM_SGD) {
        ns_real mu = (ns_real)c->momentum;
        ns_real *b = o->buf1;
        int first = o->t == 1, nest = c->nesterov;
        if (mu == 0) {
#pragma omp parallel for schedule(static) if (n > 100000)
            for (size_t i = 0; i < n; i++)
                p[i] -= lrr * (grads[i] + wd * p[i]);
            return;
        }
#pragma omp parallel for schedule(static) if (n > 100000)
        for (size_t i = 0; i < n; i++) {
            ns_real g = grads[i] + wd * p[i];
            b[i] = first ? g : mu * b[i] + g;
            p[i] -= lrr * (nest ? g + mu * b[i] : b[i]);
        }
        return;
    }
    double b1 = c->beta1, b2 = c->beta2;
    ns_real bc1 = (ns_real)(1 - pow(b1, (double)o->t));
    ns_real bc2s = (ns_real)sqrt(1 - pow(b2, (double)o->t));
    ns_real rb1 = (ns_real)b1, rb2 = (ns_real)b2, eps = (ns_real)c->adam_eps;
    int adamw = o->kind == NS_OPTIM_ADAMW;
    ns_real *m = o->buf1, *v = o->buf2;
#pragma omp parallel for schedule(static) if (n > 100000)
    for (size_t i = 0; i < n; i++) {
        ns_real g = grads[i];
        if (adamw)
            p[i] *= 1 - lrr * wd;
        else
            g += wd * p[i];
        m[i] = rb1 * m[i] + (1 - rb1) * g;
        v[i] = rb2 * v[i] + (1 - rb2) * g * g;
        p[i] -= lrr * (m[i] / bc1) / (sqrtr(v[i]) / bc2s + eps);
    }
}

double ns_schedule_lr(const ns_train_config *c, size_t step, size_t steps_per_epoch,
                      size_t total_steps)
{
    double lr = c->lr;
    switch (c->schedule) {
    case NS_SCHED_CONST:
        break;
    case NS_SCHED_STEP: {
        size_t epoch = steps_per_epoch ? step / steps_per_epoch : 0;
        for (size_t i = 0; i < c->nmilestones; i++)
            if (epoch >= c->milestones[i])
                lr *= c->gamma;
        break;
    }
    case NS_SCHED_COSINE: {
        /* Cosine annealing to zero over the steps after warm-up. */
        size_t w = c->warmup < total_steps ? c->warmup : 0;
        double t = total_steps > w ? (double)(step - (step > w ? w : step)) /
                                         (double)(total_steps - w) : 0;
        lr *= 0.5 * (1 + cos(3.14159265358979323846 * t));
        break;
    }
    }
    if (c->warmup && step < c->warmup)
        lr *= (double)(step + 1) / (double)c->warmup;
    return lr;
}
