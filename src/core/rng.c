/*
 * xoshiro256** (Blackman & Vigna, 2018) seeded through splitmix64.  The
 * whole state is four words, so a checkpoint can store it, and streams
 * derived from (seed, stream) make shuffles and dropout masks depend only on
 * the seed, the epoch and the step: a resumed run draws the same numbers as
 * an uninterrupted one.
 */
#include "normscope/core.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void ns_rng_seed(ns_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL + 0x632be59bd9b4e019ULL);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

uint64_t ns_rng_u64(ns_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double ns_rng_uniform(ns_rng *r)
{
    return (double)(ns_rng_u64(r) >> 11) * 0x1.0p-53;
}

double ns_rng_normal(ns_rng *r)
{
    double u, v, s;
    do {
        u = 2.0 * ns_rng_uniform(r) - 1.0;
        v = 2.0 * ns_rng_uniform(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    return u * sqrt(-2.0 * log(s) / s);
}

size_t ns_rng_below(ns_rng *r, size_t n)
{
    /* Lemire's nearly divisionless method would be faster; rejection on the
     * top bits is simple and unbiased. */
    if (n <= 1)
        return 0;
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = ns_rng_u64(r);
    while (x >= lim);
    return (size_t)(x % n);
}

void ns_rng_shuffle(ns_rng *r, size_t *perm, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = ns_rng_below(r, i);
        size_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}
