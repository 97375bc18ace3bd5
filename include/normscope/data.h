/*
 * normscope data sets: IDX (MNIST-style, gzip or plain), CIFAR-10 binary,
 * HDF5 data sets and synthetic sets, with per-channel standardisation,
 * subsets and batch gathering.
 *
 * A data set is held in memory as float samples in NCHW order with int32
 * labels in [0, nclass).
 */
#ifndef NORMSCOPE_DATA_H
#define NORMSCOPE_DATA_H

#include "normscope/core.h"

typedef struct ns_dataset {
    size_t n;          /* number of samples */
    size_t c, h, w;    /* per-sample shape (flat data: c = D, h = w = 1) */
    size_t nclass;     /* number of classes */
    float *x;          /* n * c * h * w values, sample-major NCHW */
    int32_t *y;        /* n labels */
    char name[64];     /* e.g. "fashion-mnist/train" */
    char source[512];  /* file or directory read, or the synthetic spec */
} ns_dataset;

/* Which split of a data set to load. */
enum ns_split { NS_SPLIT_TRAIN = 0, NS_SPLIT_TEST = 1 };

/*
 * Loads a data set from a specification:
 *   fashion-mnist | mnist     Debian's dataset-fashion-mnist IDX files
 *                             (directory NS_DATA_DIR or
 *                             /usr/share/datasets/fashion-mnist)
 *   idx:DIR                   DIR holds {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
 *   cifar10:DIR               DIR holds data_batch_{1..5}.bin and test_batch.bin
 *   PATH.h5                   HDF5 file with /train/x, /train/y, /test/x, /test/y
 *                             (x: N,C,H,W or N,D of uint8/float/double; y: N ints)
 *   synthetic specs           see ns_data_synthetic (made with seed 0)
 * Returns NS_OK and a new data set in *out, or an error naming the file and
 * the problem (NS_EIO missing/unreadable, NS_EFORMAT wrong/truncated data,
 * NS_EINVAL unknown specification).  uint8 images are scaled to [0, 1].
 */
int ns_data_load(const char *spec, int split, ns_dataset **out);

/*
 * Synthetic data sets, deterministic for a seed; specification strings:
 *   gauss:K:D[:N]     mixture of K Gaussians in D dimensions (unit-norm
 *                     random means times 3, unit covariance), N samples
 *   spirals[:N]       two interleaved spirals in 2-D, 2 classes
 *   moons[:N]         two half-moons in 2-D, 2 classes
 *   rings[:N]         two concentric rings in 2-D, 2 classes
 *   xor[:N]           four Gaussian blobs with XOR labels in 2-D
 * N defaults to 1000 and is the size of each split.  The test split uses a
 * different stream of the same seed (the Gaussian means are shared).
 * Returns NS_EINVAL for an unknown name or a bad count.
 */
int ns_data_synthetic(const char *spec, uint64_t seed, int split,
                      ns_dataset **out);

/* Reads one IDX file (gzip or plain, detected by magic) into a newly
 * allocated uint8 array; dims receives up to 4 dimensions.  Errors name the
 * file: missing, not an IDX file, unsupported type, truncated. */
int ns_idx_read(const char *path, uint8_t **data, size_t dims[4], int *ndim);

/* Allocates an empty data set of n samples of shape (c, h, w). */
int ns_data_alloc(size_t n, size_t c, size_t h, size_t w, size_t nclass,
                  ns_dataset **out);
void ns_data_free(ns_dataset *d);

/* Per-channel mean and standard deviation (population, over N, H, W),
 * accumulated in double.  mean and std have d->c entries. */
void ns_data_channel_stats(const ns_dataset *d, double *mean, double *std);

/* x <- (x - mean[c]) / std[c] per channel. */
void ns_data_standardize(ns_dataset *d, const double *mean, const double *std);

/* New data set made of the samples idx[0..n-1] of d. */
int ns_data_subset(const ns_dataset *d, const size_t *idx, size_t n,
                   ns_dataset **out);

/* Copies samples idx[0..n-1] into x (n * c*h*w ns_real) and y (may be NULL). */
void ns_data_gather(const ns_dataset *d, const size_t *idx, size_t n,
                    ns_real *x, int32_t *y);

/* Values per sample: c * h * w. */
static inline size_t ns_data_dim(const ns_dataset *d)
{
    return d->c * d->h * d->w;
}

#endif
