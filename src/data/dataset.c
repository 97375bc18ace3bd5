/*
 * In-memory data sets: allocation, the dispatch of ns_data_load over the
 * supported sources, per-channel statistics and standardisation (the
 * "subtract the mean, divide by the standard deviation" preprocessing of
 * LeCun et al., "Efficient BackProp", 1998, section 4.3), subsets and
 * batch gathering.
 */
#include "data/internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Seed of the synthetic sets that ns_data_load makes: the data set must not
 * change with the training seed. */
#define SYNTHETIC_SEED 0

#define DEFAULT_FASHION_DIR "/usr/share/datasets/fashion-mnist"
#define DEFAULT_MNIST_DIR "/usr/share/datasets/mnist"

static const char *const synthetic_names[] = {"gauss", "spirals", "moons",
                                              "rings", "xor"};

/* Allocates a data set; the samples are zeroed only when asked, since the
 * loaders overwrite them at once and zeroing 200 MB costs a tenth of a
 * second. */
static int data_alloc(size_t n, size_t c, size_t h, size_t w, size_t nclass,
                      int zero, ns_dataset **out)
{
    int st = NS_OK;
    ns_dataset *d = NULL;
    *out = NULL;
    if (c == 0 || h == 0 || w == 0)
        return ns_error(NS_EINVAL, "data set sample shape %zux%zux%zu has a zero dimension",
                        c, h, w);
    size_t dim = ns_mul_size(ns_mul_size(c, h), w);
    size_t count = ns_mul_size(n, dim);
    if (dim == 0 || (count == 0 && n != 0) || count > SIZE_MAX / sizeof(float))
        return ns_error(NS_ENOMEM, "data set of %zu samples of %zux%zux%zu is too large",
                        n, c, h, w);
    d = ns_calloc(1, sizeof *d);
    if (!d) {
        st = NS_ENOMEM;
        goto cleanup;
    }
    d->n = n;
    d->c = c;
    d->h = h;
    d->w = w;
    d->nclass = nclass;
    d->x = zero ? ns_calloc(count, sizeof *d->x) : ns_malloc(count * sizeof *d->x);
    d->y = ns_calloc(n, sizeof *d->y);
    if (!d->x || !d->y) {
        st = NS_ENOMEM;
        goto cleanup;
    }
    *out = d;
    d = NULL;
cleanup:
    ns_data_free(d);
    return st;
}

int ns_data_alloc(size_t n, size_t c, size_t h, size_t w, size_t nclass,
                  ns_dataset **out)
{
    return data_alloc(n, c, h, w, nclass, 1, out);
}

int ns_data_alloc_uninit(size_t n, size_t c, size_t h, size_t w, size_t nclass,
                         ns_dataset **out)
{
    return data_alloc(n, c, h, w, nclass, 0, out);
}

void ns_data_free(ns_dataset *d)
{
    if (!d)
        return;
    ns_free(d->x);
    ns_free(d->y);
    ns_free(d);
}

void ns_data_describe(ns_dataset *d, const char *base, int split,
                      const char *source)
{
    int len = snprintf(d->name, sizeof d->name, "%s/%s", base,
                       split == NS_SPLIT_TEST ? "test" : "train");
    (void)len; /* a long name is cut, which is what we want */
    len = snprintf(d->source, sizeof d->source, "%s", source);
    (void)len;
}

void ns_data_u8_to_float(float *dst, const uint8_t *src, size_t n)
{
    /* Divided rather than multiplied by 1/255 so that 255 maps to exactly 1;
     * the loop vectorises, so the division costs nothing noticeable. */
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)src[i] / 255.0f;
}

/* fashion-mnist and mnist: a fixed directory unless NS_DATA_DIR is set. */
static int load_named_idx(const char *base, const char *dflt, const char *hint,
                          int split, ns_dataset **out)
{
    const char *dir = getenv("NS_DATA_DIR");
    struct stat sb;
    if (!dir || !*dir)
        dir = dflt;
    if (stat(dir, &sb) != 0)
        return ns_error(NS_EIO, "cannot open '%s': %s (%s)", dir, strerror(errno), hint);
    if (!S_ISDIR(sb.st_mode))
        return ns_error(NS_EIO, "cannot open '%s': %s (%s)", dir, strerror(ENOTDIR), hint);
    return ns_data_load_idx(dir, base, 10, split, out);
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && strcmp(s + n - m, suffix) == 0;
}

static int is_synthetic(const char *spec)
{
    size_t len = strcspn(spec, ":");
    for (size_t i = 0; i < sizeof synthetic_names / sizeof *synthetic_names; i++)
        if (strlen(synthetic_names[i]) == len && strncmp(spec, synthetic_names[i], len) == 0)
            return 1;
    return 0;
}

int ns_data_load(const char *spec, int split, ns_dataset **out)
{
    *out = NULL;
    if (!spec || !*spec)
        return ns_error(NS_EINVAL, "empty data set specification");
    if (split != NS_SPLIT_TRAIN && split != NS_SPLIT_TEST)
        return ns_error(NS_EINVAL, "bad split %d for data set '%s' (expected train or test)",
                        split, spec);
    if (strcmp(spec, "fashion-mnist") == 0)
        return load_named_idx("fashion-mnist", DEFAULT_FASHION_DIR,
                              "install dataset-fashion-mnist or set NS_DATA_DIR",
                              split, out);
    if (strcmp(spec, "mnist") == 0)
        return load_named_idx("mnist", DEFAULT_MNIST_DIR,
                              "set NS_DATA_DIR to a directory with the MNIST IDX files",
                              split, out);
    if (strncmp(spec, "idx:", 4) == 0 && spec[4]) {
        /* Name the set after the directory: "idx:/data/kmnist/" -> "kmnist". */
        const char *dir = spec + 4;
        size_t len = strlen(dir);
        while (len > 1 && dir[len - 1] == '/')
            len--;
        size_t start = len;
        while (start > 0 && dir[start - 1] != '/')
            start--;
        char base[48];
        int n = snprintf(base, sizeof base, "%.*s", (int)(len - start), dir + start);
        (void)n;
        return ns_data_load_idx(dir, base[0] ? base : "idx", 0, split, out);
    }
    if (strncmp(spec, "cifar10:", 8) == 0 && spec[8])
        return ns_data_load_cifar10(spec + 8, split, out);
    if (has_suffix(spec, ".h5") || has_suffix(spec, ".hdf5"))
        return ns_data_load_h5(spec, split, out);
    if (is_synthetic(spec))
        return ns_data_synthetic(spec, SYNTHETIC_SEED, split, out);
    return ns_error(NS_EINVAL, "unknown data set '%s' (expected fashion-mnist, idx:DIR, "
                    "cifar10:DIR, FILE.h5, gauss:K:D, spirals, moons, rings, xor)", spec);
}

void ns_data_channel_stats(const ns_dataset *d, double *mean, double *std)
{
    size_t hw = d->h * d->w, dim = ns_data_dim(d);
    double count = (double)d->n * (double)hw;
    for (size_t c = 0; c < d->c; c++) {
        /* Two passes in double: the one-pass sum of squares loses digits
         * when the mean is large against the spread. */
        double s = 0;
        for (size_t i = 0; i < d->n; i++) {
            const float *p = d->x + i * dim + c * hw;
            double part = 0;
            for (size_t j = 0; j < hw; j++)
                part += p[j];
            s += part;
        }
        double m = count > 0 ? s / count : 0;
        double ss = 0;
        for (size_t i = 0; i < d->n; i++) {
            const float *p = d->x + i * dim + c * hw;
            double part = 0;
            for (size_t j = 0; j < hw; j++) {
                double e = p[j] - m;
                part += e * e;
            }
            ss += part;
        }
        mean[c] = m;
        std[c] = count > 0 ? sqrt(ss / count) : 0;
    }
}

void ns_data_standardize(ns_dataset *d, const double *mean, const double *std)
{
    size_t hw = d->h * d->w, dim = ns_data_dim(d);
    for (size_t c = 0; c < d->c; c++) {
        /* A constant channel (std 0) is only centred. */
        double s = std[c] > 0 && isfinite(std[c]) ? std[c] : 1.0;
        double inv = 1.0 / s, m = mean[c];
        for (size_t i = 0; i < d->n; i++) {
            float *p = d->x + i * dim + c * hw;
            for (size_t j = 0; j < hw; j++)
                p[j] = (float)(((double)p[j] - m) * inv);
        }
    }
}

int ns_data_subset(const ns_dataset *d, const size_t *idx, size_t n,
                   ns_dataset **out)
{
    *out = NULL;
    for (size_t i = 0; i < n; i++)
        if (idx[i] >= d->n)
            return ns_error(NS_EINVAL, "sample index %zu is out of range for '%s' (%zu samples)",
                            idx[i], d->name, d->n);
    ns_dataset *s;
    int st = data_alloc(n, d->c, d->h, d->w, d->nclass, 0, &s);
    if (st)
        return st;
    size_t dim = ns_data_dim(d);
    for (size_t i = 0; i < n; i++) {
        memcpy(s->x + i * dim, d->x + idx[i] * dim, dim * sizeof *s->x);
        s->y[i] = d->y[idx[i]];
    }
    memcpy(s->name, d->name, sizeof s->name);
    memcpy(s->source, d->source, sizeof s->source);
    *out = s;
    return NS_OK;
}

void ns_data_gather(const ns_dataset *d, const size_t *idx, size_t n,
                    ns_real *x, int32_t *y)
{
    size_t dim = ns_data_dim(d);
    for (size_t i = 0; i < n; i++) {
        const float *src = d->x + idx[i] * dim;
        ns_real *dst = x + i * dim;
#ifdef NS_DOUBLE
        for (size_t j = 0; j < dim; j++)
            dst[j] = src[j];
#else
        memcpy(dst, src, dim * sizeof *dst);
#endif
        if (y)
            y[i] = d->y[idx[i]];
    }
}
