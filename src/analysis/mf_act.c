/*
 * Activations of the mean-field module and their closed-form Gaussian
 * moments.
 *
 * Leaky relu phi(x) = (1-a) relu(x) + a x covers relu (a = 0) and linear
 * (a = 1).  With (u1, u2) centred normal, variances q1, q2, correlation c
 * and theta = arccos c (Cho & Saul 2009, arc-cosine kernel of degree 1 and 0;
 * MimicNorm's phi_hat(c) = (sqrt(1-c^2) + (pi - theta) c) / (2 pi)):
 *   E[phi(u1) phi(u2)]   = sqrt(q1 q2) ((1-a)^2 phi_hat(c) + a c)
 *   E[phi'(u1) phi'(u2)] = a + (1-a)^2 (pi - theta) / (2 pi)
 *   E[phi(u)] = (1-a) sqrt(q / (2 pi)),  E[phi(u)^2] = q (1+a^2)/2,
 *   E[phi'(u)] = (1+a)/2,                E[phi'(u)^2] = (1+a^2)/2;
 * the cross terms use E[relu(u1) u2] = E[u1 u2] / 2 (symmetry).
 * erf (Williams 1998, arcsine kernel):
 *   E[erf(u1) erf(u2)]   = (2/pi) asin(2 c sqrt(q1 q2) / sqrt((1+2q1)(1+2q2)))
 *   E[erf'(u1) erf'(u2)] = (4/pi) / sqrt((1+2q1)(1+2q2) - 4 c^2 q1 q2)
 *   E[erf(u)^2] = (2/pi) asin(2q / (1+2q)),  E[erf'(u)^2] = (4/pi) / sqrt(1+4q),
 *   E[erf'(u)] = (2/sqrt(pi)) / sqrt(1+2q),  d E[erf(u)^2]/dq =
 *   (4/pi) / ((1+2q) sqrt(1+4q)).
 */
#include "mf_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static const struct {
    const char *name;
    ns_mf_act_kind kind;
} act_names[] = {
    {"relu", NS_MF_RELU},       {"leaky", NS_MF_LEAKY},       {"lrelu", NS_MF_LEAKY},
    {"linear", NS_MF_LINEAR},   {"id", NS_MF_LINEAR},         {"tanh", NS_MF_TANH},
    {"erf", NS_MF_ERF},         {"gelu", NS_MF_GELU},         {"swish", NS_MF_SWISH},
    {"silu", NS_MF_SWISH},      {"softplus", NS_MF_SOFTPLUS}, {"sigmoid", NS_MF_SIGMOID},
};

const char *ns_mf_act_names(void)
{
    return "relu, leaky:A (A = 0.01 by default), linear, tanh, erf, gelu, swish, softplus, "
           "sigmoid";
}

int ns_mf_act_parse(const char *s, ns_mf_act *act)
{
    memset(act, 0, sizeof *act);
    if (!s)
        s = "";
    const char *colon = strchr(s, ':');
    size_t k = colon ? (size_t)(colon - s) : strlen(s);
    for (size_t i = 0; i < sizeof act_names / sizeof *act_names; i++) {
        if (strlen(act_names[i].name) != k || strncmp(s, act_names[i].name, k) != 0)
            continue;
        act->kind = act_names[i].kind;
        if (act->kind != NS_MF_LEAKY) {
            if (colon)
                break;
            return NS_OK;
        }
        act->alpha = 0.01;
        if (!colon)
            return NS_OK;
        char *end;
        errno = 0;
        double a = strtod(colon + 1, &end);
        if (end == colon + 1 || *end || errno || !isfinite(a))
            return ns_error(NS_EINVAL, "bad leaky relu slope in activation '%s' (leaky:A, "
                            "A a number)", s);
        act->alpha = a;
        return NS_OK;
    }
    return ns_error(NS_EINVAL, "unknown activation '%s' (%s)", s, ns_mf_act_names());
}

void ns_mf_act_name(const ns_mf_act *act, char *buf, size_t len)
{
    static const char *const names[] = {"relu", "leaky", "linear", "tanh", "erf",
                                        "gelu", "swish", "softplus", "sigmoid"};
    const char *n = (size_t)act->kind < sizeof names / sizeof *names ? names[act->kind] : "?";
    if (act->kind == NS_MF_LEAKY)
        snprintf(buf, len, "leaky:%g", act->alpha);
    else
        snprintf(buf, len, "%s", n);
}

int ns_mf_act_closed(const ns_mf_act *act)
{
    if (act->quadrature)
        return 0;
    return act->kind == NS_MF_RELU || act->kind == NS_MF_LEAKY || act->kind == NS_MF_LINEAR ||
           act->kind == NS_MF_ERF;
}

int ns_mf_act_homogeneous(const ns_mf_act *act)
{
    return act->kind == NS_MF_RELU || act->kind == NS_MF_LEAKY || act->kind == NS_MF_LINEAR;
}

int mf_act_split(const ns_mf_act *a)
{
    switch (a->kind) {
    case NS_MF_RELU: return 1;
    case NS_MF_LEAKY: return a->alpha != 1;
    /* smooth, but relu at large variances: phi(sqrt(q) z) turns within
     * 1/sqrt(q) of z = 0, which Gauss-Hermite resolves only at orders that
     * grow like q, the split rule at any q */
    case NS_MF_GELU:
    case NS_MF_SWISH:
    case NS_MF_SOFTPLUS: return 1;
    default: return 0;
    }
}

/* Slope of the negative side of the relu family. */
static double neg_slope(const ns_mf_act *a)
{
    return a->kind == NS_MF_RELU ? 0 : a->kind == NS_MF_LINEAR ? 1 : a->alpha;
}

static double sigmoid(double x)
{
    if (x >= 0)
        return 1 / (1 + exp(-x));
    double e = exp(x);
    return e / (1 + e);
}

void mf_act_eval2(const ns_mf_act *a, double x, double *f, double *df)
{
    switch (a->kind) {
    case NS_MF_RELU: *f = x > 0 ? x : 0; *df = x > 0; return;
    case NS_MF_LEAKY: *f = x > 0 ? x : a->alpha * x; *df = x > 0 ? 1 : a->alpha; return;
    case NS_MF_LINEAR: *f = x; *df = 1; return;
    case NS_MF_TANH: {
        /* 1 - 2 / (exp(2|x|) + 1) away from 0 is faster than libm's tanh
         * and as accurate there (no cancellation for |x| >= 0.625) */
        double ax = fabs(x), t = ax < 0.625 ? tanh(ax) : 1 - 2 / (exp(2 * ax) + 1);
        t = x < 0 ? -t : t;
        *f = t;
        *df = 1 - t * t;
        return;
    }
    case NS_MF_ERF:
        *f = erf(x);
        *df = 1.1283791670955126 * exp(-x * x); /* 2/sqrt(pi) */
        return;
    case NS_MF_GELU: {
        double cdf = 0.5 * erfc(-x * 0.70710678118654752), pdf = 0.3989422804014327 * exp(-0.5 * x * x);
        *f = x * cdf;
        *df = cdf + x * pdf;
        return;
    }
    case NS_MF_SWISH: {
        double s = sigmoid(x);
        *f = x * s;
        *df = s + x * s * (1 - s);
        return;
    }
    case NS_MF_SOFTPLUS:
        *f = x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
        *df = sigmoid(x);
        return;
    case NS_MF_SIGMOID: {
        double s = sigmoid(x);
        *f = s;
        *df = s * (1 - s);
        return;
    }
    }
    *f = *df = NAN;
}

double ns_mf_act_eval(const ns_mf_act *a, int deriv, double x)
{
    double f, df;
    mf_act_eval2(a, x, &f, &df);
    if (deriv == 0)
        return f;
    if (deriv == 1)
        return df;
    switch (a->kind) {
    case NS_MF_RELU:
    case NS_MF_LEAKY:
    case NS_MF_LINEAR: return 0;
    case NS_MF_TANH: return -2 * f * df;
    case NS_MF_ERF: return -2 * x * df;
    case NS_MF_GELU: return 0.3989422804014327 * exp(-0.5 * x * x) * (2 - x * x);
    case NS_MF_SWISH: {
        double s = sigmoid(x);
        return s * (1 - s) * (2 + x * (1 - 2 * s));
    }
    case NS_MF_SOFTPLUS: return df * (1 - df);
    case NS_MF_SIGMOID: return df * (1 - 2 * f);
    }
    return NAN;
}

/* -------------------------------------------------------- closed forms */

void mf_closed_m1(const ns_mf_act *a, double q, ns_mf_m1 *m)
{
    if (a->kind == NS_MF_ERF) {
        double s = sqrt(1 + 4 * q);
        m->mean = 0;
        m->sq = (2 / M_PI) * asin(2 * q / (1 + 2 * q));
        m->dmean = 1.1283791670955126 / sqrt(1 + 2 * q);
        m->dsq = (4 / M_PI) / s;
        m->dsq_dq = (4 / M_PI) / ((1 + 2 * q) * s);
        m->dmean_dq = 0;
        return;
    }
    double al = neg_slope(a), b = 1 - al;
    m->mean = b * sqrt(q / (2 * M_PI));
    m->sq = q * (1 + al * al) / 2;
    m->dmean = (1 + al) / 2;
    m->dsq = (1 + al * al) / 2;
    m->dsq_dq = (1 + al * al) / 2;
    /* d/dq of b sqrt(q/(2 pi)); at q = 0 the limit is infinite */
    m->dmean_dq = q > 0 ? b / (2 * sqrt(2 * M_PI * q)) : (b != 0 ? INFINITY : 0);
}

void mf_closed_m2(const ns_mf_act *a, double q1, double q2, double c, ns_mf_m2 *m)
{
    if (c > 1)
        c = 1;
    if (c < -1)
        c = -1;
    if (a->kind == NS_MF_ERF) {
        double d1 = 1 + 2 * q1, d2 = 1 + 2 * q2;
        double arg = 2 * c * sqrt(q1 * q2) / sqrt(d1 * d2);
        if (arg > 1)
            arg = 1;
        if (arg < -1)
            arg = -1;
        m->pp = (2 / M_PI) * asin(arg);
        m->dd = (4 / M_PI) / sqrt(d1 * d2 - 4 * c * c * q1 * q2);
        return;
    }
    double al = neg_slope(a), b = 1 - al;
    double th = acos(c), s = sqrt(1 - c * c);
    double phihat = (s + (M_PI - th) * c) / (2 * M_PI);
    m->pp = sqrt(q1 * q2) * (b * b * phihat + al * c);
    m->dd = al + b * b * (M_PI - th) / (2 * M_PI);
}
