/*
 * Synthetic classification sets, deterministic for a seed:
 *   gauss:K:D[:N]  K Gaussians with identity covariance around means 3 u_k,
 *                  u_k uniform on the unit sphere (a normalised standard
 *                  normal vector; Muller, CACM 2(4), 1959)
 *   spirals[:N]    the two-spirals problem (Lang and Witbrock, 1988):
 *                  r = 0.05 + t, angle = 3 pi t + k pi, t ~ U[0, 1)
 *   moons[:N]      scikit-learn's make_moons: (cos a, sin a) and
 *                  (1 - cos a, 0.5 - sin a), a ~ U[0, pi), noise 0.1
 *   rings[:N]      scikit-learn's make_circles: radii 1 and 0.5, noise 0.05
 *   xor[:N]        blobs (std 0.35) at (+-1, +-1), label = sign(x) xor sign(y)
 * N is the number of samples of each split (1000 by default).  Labels cycle
 * through the classes, so classes are balanced to within one sample.  Each
 * split draws its samples from its own stream of the seed; the Gaussian
 * means come from a third stream, shared, so both splits have one
 * distribution.
 */
#include "data/internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_N 1000
#define MAX_FIELDS 5
#define STREAM_TRAIN 0x7a11
#define STREAM_TEST 0x7e57
#define STREAM_MEANS 0x3ea5

static const double PI = 3.14159265358979323846;

/* One 2-D sample i into x[0..1]; returns its label. */
typedef int32_t sample_fn(float *x, size_t i, ns_rng *r);

static int32_t spirals_sample(float *x, size_t i, ns_rng *r)
{
    int32_t k = (int32_t)(i % 2);
    double t = ns_rng_uniform(r);
    double rad = 0.05 + t, a = 3 * PI * t + k * PI;
    double e0 = 0.03 * ns_rng_normal(r);
    double e1 = 0.03 * ns_rng_normal(r);
    x[0] = (float)(rad * cos(a) + e0);
    x[1] = (float)(rad * sin(a) + e1);
    return k;
}

static int32_t moons_sample(float *x, size_t i, ns_rng *r)
{
    int32_t k = (int32_t)(i % 2);
    double a = PI * ns_rng_uniform(r);
    double e0 = 0.1 * ns_rng_normal(r);
    double e1 = 0.1 * ns_rng_normal(r);
    /* Shifted by (-0.5, -0.25) so the pair is centred on the origin. */
    double px = k ? 1 - cos(a) : cos(a), py = k ? 0.5 - sin(a) : sin(a);
    x[0] = (float)(px - 0.5 + e0);
    x[1] = (float)(py - 0.25 + e1);
    return k;
}

static int32_t rings_sample(float *x, size_t i, ns_rng *r)
{
    int32_t k = (int32_t)(i % 2);
    double a = 2 * PI * ns_rng_uniform(r);
    double rad = k ? 0.5 : 1.0;
    double e0 = 0.05 * ns_rng_normal(r);
    double e1 = 0.05 * ns_rng_normal(r);
    x[0] = (float)(rad * cos(a) + e0);
    x[1] = (float)(rad * sin(a) + e1);
    return k;
}

static int32_t xor_sample(float *x, size_t i, ns_rng *r)
{
    /* Blobs 0..3 at (-1,-1), (1,-1), (-1,1), (1,1): labels 0, 1, 1, 0. */
    size_t b = i % 4;
    int sx = (int)(b & 1), sy = (int)(b >> 1);
    double e0 = 0.35 * ns_rng_normal(r);
    double e1 = 0.35 * ns_rng_normal(r);
    x[0] = (float)((sx ? 1 : -1) + e0);
    x[1] = (float)((sy ? 1 : -1) + e1);
    return sx ^ sy;
}

typedef struct synthetic_kind {
    const char *name;
    const char *usage;
    int nparam;          /* numbers before the optional N (gauss: K, D) */
    size_t nclass;       /* 0: K */
    sample_fn *sample;   /* NULL: gauss */
} synthetic_kind;

static const synthetic_kind kinds[] = {
    {"gauss", "gauss:K:D[:N]", 2, 0, NULL},
    {"spirals", "spirals[:N]", 0, 2, spirals_sample},
    {"moons", "moons[:N]", 0, 2, moons_sample},
    {"rings", "rings[:N]", 0, 2, rings_sample},
    {"xor", "xor[:N]", 0, 2, xor_sample},
};

/* A positive decimal integer up to max, whole field. */
static int parse_count(const char *spec, const char *field, const char *what,
                       size_t max, size_t *v)
{
    char *end = NULL;
    unsigned long long u = 0;
    int ok = field[0] >= '0' && field[0] <= '9';
    if (ok) {
        errno = 0;
        u = strtoull(field, &end, 10);
        ok = errno == 0 && *end == '\0' && u >= 1 && u <= max;
    }
    if (!ok)
        return ns_error(NS_EINVAL, "bad synthetic data set '%s': %s must be an integer "
                        "from 1 to %zu, got '%s'", spec, what, max, field);
    *v = (size_t)u;
    return NS_OK;
}

static void gauss_fill(ns_dataset *d, const double *means, ns_rng *r)
{
    size_t D = d->c, K = d->nclass;
    for (size_t i = 0; i < d->n; i++) {
        size_t k = i % K;
        float *x = d->x + i * D;
        for (size_t j = 0; j < D; j++)
            x[j] = (float)(means[k * D + j] + ns_rng_normal(r));
        d->y[i] = (int32_t)k;
    }
}

/* Means 3 u_k with u_k uniform on the unit sphere, from their own stream. */
static void gauss_means(double *means, size_t K, size_t D, uint64_t seed)
{
    ns_rng r;
    ns_rng_seed(&r, seed, STREAM_MEANS);
    for (size_t k = 0; k < K; k++) {
        double *m = means + k * D, norm2 = 0;
        do {
            norm2 = 0;
            for (size_t j = 0; j < D; j++) {
                m[j] = ns_rng_normal(&r);
                norm2 += m[j] * m[j];
            }
        } while (norm2 == 0);
        double s = 3 / sqrt(norm2);
        for (size_t j = 0; j < D; j++)
            m[j] *= s;
    }
}

int ns_data_synthetic(const char *spec, uint64_t seed, int split,
                      ns_dataset **out)
{
    int st = NS_OK;
    char buf[128];
    char *field[MAX_FIELDS];
    int nfield = 0;
    double *means = NULL;
    ns_dataset *d = NULL;
    *out = NULL;
    if (split != NS_SPLIT_TRAIN && split != NS_SPLIT_TEST)
        return ns_error(NS_EINVAL, "bad split %d for data set '%s' (expected train or test)",
                        split, spec);
    size_t len = strlen(spec);
    if (len >= sizeof buf)
        return ns_error(NS_EINVAL, "synthetic data set '%.40s...' is too long", spec);
    memcpy(buf, spec, len + 1);
    /* nfield ends above MAX_FIELDS when there are too many fields. */
    field[nfield++] = buf;
    for (char *p = buf; (p = strchr(p, ':')) != NULL;) {
        *p++ = '\0';
        if (nfield == MAX_FIELDS) {
            nfield++;
            break;
        }
        field[nfield++] = p;
    }

    const synthetic_kind *kind = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (strcmp(field[0], kinds[i].name) == 0)
            kind = &kinds[i];
    if (!kind)
        return ns_error(NS_EINVAL, "unknown synthetic data set '%s' (expected gauss:K:D[:N], "
                        "spirals, moons, rings or xor, each with an optional :N)", spec);
    if (nfield < 1 + kind->nparam || nfield > 2 + kind->nparam)
        return ns_error(NS_EINVAL, "bad synthetic data set '%s' (expected %s)", spec,
                        kind->usage);

    size_t K = kind->nclass, D = 2, N = DEFAULT_N;
    if (kind->nparam == 2) {
        if ((st = parse_count(spec, field[1], "K", INT32_MAX, &K)) ||
            (st = parse_count(spec, field[2], "D", (size_t)1 << 24, &D)))
            return st;
    }
    if (nfield == 2 + kind->nparam &&
        (st = parse_count(spec, field[1 + kind->nparam], "N", (size_t)1 << 32, &N)))
        return st;
    if (N < K)
        return ns_error(NS_EINVAL, "bad synthetic data set '%s': N (%zu) must be at least the "
                        "number of classes (%zu)", spec, N, K);

    if ((st = ns_data_alloc_uninit(N, D, 1, 1, K, &d)))
        goto cleanup;
    ns_rng r;
    ns_rng_seed(&r, seed, split == NS_SPLIT_TEST ? STREAM_TEST : STREAM_TRAIN);
    if (kind->sample) {
        for (size_t i = 0; i < N; i++)
            d->y[i] = kind->sample(d->x + 2 * i, i, &r);
    } else {
        means = ns_calloc(K, D * sizeof *means);
        if (!means) {
            st = NS_ENOMEM;
            goto cleanup;
        }
        gauss_means(means, K, D, seed);
        gauss_fill(d, means, &r);
    }
    ns_data_describe(d, spec, split, spec);
    *out = d;
    d = NULL;
cleanup:
    ns_free(means);
    ns_data_free(d);
    return st;
}
