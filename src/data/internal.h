/*
 * Functions shared by the files of the data module (not exported in
 * include/normscope/data.h).  Each loader returns a new data set in *out
 * or an error that names the file read.
 */
#ifndef NS_DATA_INTERNAL_H
#define NS_DATA_INTERNAL_H

#include "normscope/data.h"

/* ns_data_alloc without zeroing the samples (the caller fills them). */
int ns_data_alloc_uninit(size_t n, size_t c, size_t h, size_t w, size_t nclass,
                         ns_dataset **out);

/* Sets d->name to "<base>/<train|test>" and d->source to source, both
 * truncated to fit. */
void ns_data_describe(ns_dataset *d, const char *base, int split,
                      const char *source);

/* dst[i] = src[i] / 255 for uint8 pixels. */
void ns_data_u8_to_float(float *dst, const uint8_t *src, size_t n);

/* IDX directory: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz].
 * nclass 0: max label + 1 over both splits' label files; otherwise labels
 * must be below nclass.  base names the data set ("fashion-mnist"). */
int ns_data_load_idx(const char *dir, const char *base, size_t nclass,
                     int split, ns_dataset **out);

/* CIFAR-10 binary batches: data_batch_{1..5}.bin or test_batch.bin. */
int ns_data_load_cifar10(const char *dir, int split, ns_dataset **out);

/* HDF5 file with /train/x, /train/y, /test/x, /test/y. */
int ns_data_load_h5(const char *path, int split, ns_dataset **out);

#endif
