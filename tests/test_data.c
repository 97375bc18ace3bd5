/*
 * Tests of the data module: the real Fashion-MNIST files, IDX, CIFAR-10 and
 * HDF5 files generated here, synthetic sets, and the data set operations.
 * Every error path of the readers is triggered once.
 */
#include "normscope/data.h"
#include "testutil.h"

#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* Mean and population std of the Fashion-MNIST training pixels in [0, 1],
 * computed independently from the raw bytes (sum and sum of squares in
 * exact integer arithmetic). */
#define FASHION_MEAN 0.2860405969887955
#define FASHION_STD 0.3530242445149226

#define ck_assert_msg_has(st, code, needle)                                     \
    do {                                                                        \
        ck_assert_int_eq((st), (code));                                         \
        ck_assert_msg(strstr(ns_errmsg(), (needle)) != NULL,                    \
                      "message '%s' lacks '%s'", ns_errmsg(), (needle));        \
    } while (0)

/* ------------------------------------------------------------ helpers */

/* A fresh directory inside the test's temporary directory. */
static const char *fresh_dir(const char *name)
{
    const char *dir = ns_test_path(name);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    return dir;
}

static const char *join(const char *dir, const char *name)
{
    static char buf[4][1024];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, 1024, "%s/%s", dir, name);
    return b;
}

/* Writes an IDX file: header of the given type and dims, then len bytes. */
static void write_idx(const char *path, int gz, int type, int ndim,
                      const size_t *dims, const uint8_t *data, size_t len)
{
    unsigned char head[20] = {0, 0, (unsigned char)type, (unsigned char)ndim};
    for (int i = 0; i < ndim; i++) {
        uint32_t v = (uint32_t)dims[i];
        head[4 + 4 * i] = (unsigned char)(v >> 24);
        head[5 + 4 * i] = (unsigned char)(v >> 16);
        head[6 + 4 * i] = (unsigned char)(v >> 8);
        head[7 + 4 * i] = (unsigned char)v;
    }
    size_t hlen = 4 + 4 * (size_t)ndim;
    if (gz) {
        gzFile f = gzopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(gzwrite(f, head, (unsigned)hlen), (int)hlen);
        if (len)
            ck_assert_int_eq(gzwrite(f, data, (unsigned)len), (int)len);
        ck_assert_int_eq(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(head, 1, hlen, f), hlen);
        if (len)
            ck_assert_uint_eq(fwrite(data, 1, len, f), len);
        ck_assert_int_eq(fclose(f), 0);
    }
}

/* Deterministic, irregular bytes. */
static void fill_bytes(uint8_t *p, size_t n, unsigned salt)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((i * 37 + salt * 101 + (i >> 3) * 13) % 256);
}

/* An IDX directory with n train and m test images of h x w; the labels
 * are (i * 3 + 1) % nclass, the test labels (i * 5) % (nclass + extra). */
static void write_idx_dir(const char *dir, int gz, size_t n, size_t m, size_t h,
                          size_t w, int nclass, int extra)
{
    const char *suffix = gz ? ".gz" : "";
    char name[128];
    for (int s = 0; s < 2; s++) {
        size_t cnt = s ? m : n;
        const char *prefix = s ? "t10k" : "train";
        uint8_t *img = malloc(cnt * h * w), *lab = malloc(cnt);
        fill_bytes(img, cnt * h * w, (unsigned)s);
        for (size_t i = 0; i < cnt; i++)
            lab[i] = (uint8_t)(s ? (i * 5) % (size_t)(nclass + extra)
                                 : (i * 3 + 1) % (size_t)nclass);
        size_t idims[3] = {cnt, h, w}, ldims[1] = {cnt};
        snprintf(name, sizeof name, "%s-images-idx3-ubyte%s", prefix, suffix);
        write_idx(join(dir, name), gz, 0x08, 3, idims, img, cnt * h * w);
        snprintf(name, sizeof name, "%s-labels-idx1-ubyte%s", prefix, suffix);
        write_idx(join(dir, name), gz, 0x08, 1, ldims, lab, cnt);
        free(img);
        free(lab);
    }
}

static long file_size(const char *path)
{
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    return (long)sb.st_size;
}

static void cut_file(const char *path, long size)
{
    ck_assert_int_eq(truncate(path, size), 0);
}

/* A CIFAR-10 batch of nrec records, label (r * 7 + salt) % 10, followed by
 * extra stray bytes. */
static void write_cifar(const char *path, size_t nrec, unsigned salt, size_t extra)
{
    size_t rec = 3073;
    uint8_t *buf = malloc(nrec * rec + extra + 1);
    fill_bytes(buf, nrec * rec + extra, salt);
    for (size_t r = 0; r < nrec; r++)
        buf[r * rec] = (uint8_t)((r * 7 + salt) % 10);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, nrec * rec + extra, f), nrec * rec + extra);
    ck_assert_int_eq(fclose(f), 0);
    free(buf);
}

/* Writes dataset name (creating its groups) into an open HDF5 file. */
static void h5_put(hid_t file, const char *name, int rank, const hsize_t *dims,
                   hid_t type, const void *data)
{
    char group[64];
    for (const char *p = strchr(name + 1, '/'); p; p = strchr(p + 1, '/')) {
        snprintf(group, sizeof group, "%.*s", (int)(p - name), name);
        if (H5Lexists(file, group, H5P_DEFAULT) <= 0) {
            hid_t g = H5Gcreate2(file, group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            ck_assert_int_ge(g, 0);
            H5Gclose(g);
        }
    }
    ck_assert_int_ge(H5LTmake_dataset(file, name, rank, dims, type, data), 0);
}

static void count_classes(const ns_dataset *d, size_t *count)
{
    memset(count, 0, d->nclass * sizeof *count);
    for (size_t i = 0; i < d->n; i++) {
        ck_assert_int_ge(d->y[i], 0);
        ck_assert_int_lt(d->y[i], (int)d->nclass);
        count[d->y[i]]++;
    }
}

/* --------------------------------------------------- real Fashion-MNIST */

static ns_dataset *fm_train, *fm_test;
static int fm_train_st = -1, fm_test_st = -1;

static void fashion_setup(void)
{
    unsetenv("NS_DATA_DIR");
    fm_train_st = ns_data_load("fashion-mnist", NS_SPLIT_TRAIN, &fm_train);
    fm_test_st = ns_data_load("fashion-mnist", NS_SPLIT_TEST, &fm_test);
}

static void fashion_teardown(void)
{
    ns_data_free(fm_train);
    ns_data_free(fm_test);
    fm_train = fm_test = NULL;
}

START_TEST(test_fashion_train_shape)
{
    ck_assert_msg(fm_train_st == NS_OK, "load failed: %s", ns_errmsg());
    ck_assert_uint_eq(fm_train->n, 60000);
    ck_assert_uint_eq(fm_train->c, 1);
    ck_assert_uint_eq(fm_train->h, 28);
    ck_assert_uint_eq(fm_train->w, 28);
    ck_assert_uint_eq(fm_train->nclass, 10);
    ck_assert_str_eq(fm_train->name, "fashion-mnist/train");
    ck_assert_str_eq(fm_train->source, "/usr/share/datasets/fashion-mnist");
    const int32_t first[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(fm_train->y[i], first[i]);
}
END_TEST

START_TEST(test_fashion_test_shape)
{
    ck_assert_msg(fm_test_st == NS_OK, "load failed: %s", ns_errmsg());
    ck_assert_uint_eq(fm_test->n, 10000);
    ck_assert_uint_eq(ns_data_dim(fm_test), 784);
    ck_assert_uint_eq(fm_test->nclass, 10);
    ck_assert_str_eq(fm_test->name, "fashion-mnist/test");
    const int32_t first[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(fm_test->y[i], first[i]);
}
END_TEST

START_TEST(test_fashion_labels_balanced)
{
    ck_assert_int_eq(fm_train_st, NS_OK);
    size_t count[10];
    count_classes(fm_train, count);
    for (int k = 0; k < 10; k++)
        ck_assert_uint_eq(count[k], 6000);
    count_classes(fm_test, count);
    for (int k = 0; k < 10; k++)
        ck_assert_uint_eq(count[k], 1000);
}
END_TEST

START_TEST(test_fashion_pixel_range)
{
    ck_assert_int_eq(fm_train_st, NS_OK);
    float lo = 1, hi = 0;
    size_t total = fm_train->n * ns_data_dim(fm_train);
    for (size_t i = 0; i < total; i++) {
        lo = fm_train->x[i] < lo ? fm_train->x[i] : lo;
        hi = fm_train->x[i] > hi ? fm_train->x[i] : hi;
    }
    ck_assert_float_eq(lo, 0.0f);
    ck_assert_float_eq(hi, 1.0f);
}
END_TEST

START_TEST(test_fashion_channel_stats)
{
    ck_assert_int_eq(fm_train_st, NS_OK);
    double mean, std;
    ns_data_channel_stats(fm_train, &mean, &std);
    ck_assert_double_eq_tol(mean, FASHION_MEAN, 1e-6);
    ck_assert_double_eq_tol(std, FASHION_STD, 1e-6);
}
END_TEST

/* ---------------------------------------------------------------- IDX */

static void idx_round_trip(int gz)
{
    const char *path = ns_test_path(gz ? "rt.idx.gz" : "rt.idx");
    size_t dims[3] = {5, 3, 4}, got[4];
    uint8_t data[60], *back = NULL;
    int nd;
    fill_bytes(data, sizeof data, 3);
    write_idx(path, gz, 0x08, 3, dims, data, sizeof data);
    ck_assert_int_eq(ns_idx_read(path, &back, got, &nd), NS_OK);
    ck_assert_int_eq(nd, 3);
    ck_assert_uint_eq(got[0], 5);
    ck_assert_uint_eq(got[1], 3);
    ck_assert_uint_eq(got[2], 4);
    ck_assert_uint_eq(got[3], 0);
    ck_assert_mem_eq(back, data, sizeof data);
    ns_free(back);
}

START_TEST(test_idx_round_trip_plain)
{
    idx_round_trip(0);
}
END_TEST

START_TEST(test_idx_round_trip_gzip)
{
    idx_round_trip(1);
}
END_TEST

START_TEST(test_idx_dir_load)
{
    const char *dir = fresh_dir("kmnist");
    write_idx_dir(dir, 1, 7, 4, 3, 2, 4, 2);
    char spec[600];
    snprintf(spec, sizeof spec, "idx:%s/", dir);
    ns_dataset *d = NULL;
    ck_assert_int_eq(ns_data_load(spec, NS_SPLIT_TRAIN, &d), NS_OK);
    ck_assert_uint_eq(d->n, 7);
    ck_assert_uint_eq(d->c, 1);
    ck_assert_uint_eq(d->h, 3);
    ck_assert_uint_eq(d->w, 2);
    /* Train labels reach 3, test labels 5: both splits get 6 classes. */
    ck_assert_uint_eq(d->nclass, 6);
    ck_assert_str_eq(d->name, "kmnist/train");
    uint8_t img[42];
    fill_bytes(img, sizeof img, 0);
    for (size_t i = 0; i < 42; i++)
        ck_assert_float_eq(d->x[i], (float)img[i] / 255.0f);
    for (size_t i = 0; i < 7; i++)
        ck_assert_int_eq(d->y[i], (int)((i * 3 + 1) % 4));
    ns_data_free(d);
}
END_TEST

START_TEST(test_idx_plain_dir_test_split)
{
    const char *dir = fresh_dir("plainidx");
    write_idx_dir(dir, 0, 6, 5, 2, 2, 3, 0);
    char spec[600];
    snprintf(spec, sizeof spec, "idx:%s", dir);
    ns_dataset *d = NULL;
    ck_assert_int_eq(ns_data_load(spec, NS_SPLIT_TEST, &d), NS_OK);
    ck_assert_uint_eq(d->n, 5);
    ck_assert_uint_eq(d->nclass, 3);
    ck_assert_str_eq(d->name, "plainidx/test");
    ck_assert_int_eq(d->y[4], (4 * 5) % 3);
    ns_data_free(d);
}
END_TEST

START_TEST(test_idx_truncated_plain)
{
    const char *path = ns_test_path("cut.idx");
    size_t dims[3] = {4, 5, 5};
    uint8_t data[100];
    fill_bytes(data, sizeof data, 1);
    write_idx(path, 0, 0x08, 3, dims, data, sizeof data);
    cut_file(path, 16 + 60);
    uint8_t *back = NULL;
    size_t got[4];
    int nd;
    ck_assert_msg_has(ns_idx_read(path, &back, got, &nd), NS_EFORMAT, path);
    ck_assert_ptr_null(back);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "expected 100 bytes, got 60"));
}
END_TEST

START_TEST(test_idx_truncated_gzip)
{
    const char *path = ns_test_path("cut.idx.gz");
    size_t dims[2] = {300, 100};
    uint8_t *data = malloc(30000);
    fill_bytes(data, 30000, 2);
    write_idx(path, 1, 0x08, 2, dims, data, 30000);
    free(data);
    cut_file(path, file_size(path) / 2);
    uint8_t *back = NULL;
    size_t got[4];
    int nd;
    ck_assert_msg_has(ns_idx_read(path, &back, got, &nd), NS_EFORMAT, path);
    ck_assert_ptr_null(back);
}
END_TEST

START_TEST(test_idx_cut_gzip_trailer)
{
    /* All data present but the CRC and length trailer cut off. */
    const char *path = ns_test_path("trailer.idx.gz");
    size_t dims[1] = {50};
    uint8_t data[50];
    fill_bytes(data, sizeof data, 4);
    write_idx(path, 1, 0x08, 1, dims, data, sizeof data);
    cut_file(path, file_size(path) - 4);
    uint8_t *back = NULL;
    size_t got[4];
    int nd;
    ck_assert_msg_has(ns_idx_read(path, &back, got, &nd), NS_EFORMAT, path);
}
END_TEST

START_TEST(test_idx_corrupt_gzip)
{
    const char *path = ns_test_path("corrupt.idx.gz");
    size_t dims[2] = {40, 40};
    uint8_t data[1600];
    fill_bytes(data, sizeof data, 5);
    write_idx(path, 1, 0x08, 2, dims, data, sizeof data);
    /* Flip bits in the stored CRC-32 of the trailer. */
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, -8, SEEK_END);
    int c = fgetc(f);
    fseek(f, -8, SEEK_END);
    fputc(c ^ 0x5a, f);
    fclose(f);
    uint8_t *back = NULL;
    size_t got[4];
    int nd;
    ck_assert_msg_has(ns_idx_read(path, &back, got, &nd), NS_EFORMAT, "corrupt gzip");
}
END_TEST

START_TEST(test_idx_wrong_magic)
{
    const char *path = ns_test_path("magic.idx");
    FILE *f = fopen(path, "wb");
    fputs("P5\n28 28\n255\n", f);
    fclose(f);
    uint8_t *back = NULL;
    size_t got[4];
    int nd;
    ck_assert_msg_has(ns_idx_read(path, &back, got, &nd), NS_EFORMAT, "not an IDX file");
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), path));
}
END_TEST

START_TEST(test_idx_unsupported_type)
{
    const char *path = ns_test_path("float.idx");
    size_t dims[1] = {2};
    uint8_t data[8] = {0};
    write_idx(path, 0, 0x0D, 1, dims, data, sizeof data);
    uint8_t *back = NULL;
    size_t got[4];
    int nd;
    ck_assert_msg_has(ns_idx_read(path, &back, got, &nd), NS_EFORMAT,
                      "unsupported IDX element type 0x0d (float");
}
END_TEST

START_TEST(test_idx_bad_rank)
{
    const char *path = ns_test_path("rank.idx");
    unsigned char head[4] = {0, 0, 0x08, 0};
    FILE *f = fopen(path, "wb");
    fwrite(head, 1, 4, f);
    fclose(f);
    uint8_t *back = NULL;
    size_t got[4];
    int nd;
    ck_assert_msg_has(ns_idx_read(path, &back, got, &nd), NS_EFORMAT, "rank 0");
}
END_TEST

START_TEST(test_idx_truncated_header)
{
    const char *path = ns_test_path("head.idx");
    unsigned char head[10] = {0, 0, 0x08, 3, 0, 0, 0, 7, 0, 0};
    FILE *f = fopen(path, "wb");
    fwrite(head, 1, sizeof head, f);
    fclose(f);
    uint8_t *back = NULL;
    size_t got[4];
    int nd;
    ck_assert_msg_has(ns_idx_read(path, &back, got, &nd), NS_EFORMAT, "truncated IDX header");
}
END_TEST

START_TEST(test_idx_huge_dims)
{
    const char *path = ns_test_path("huge.idx");
    size_t dims[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    write_idx(path, 0, 0x08, 4, dims, NULL, 0);
    uint8_t *back = NULL;
    size_t got[4];
    int nd;
    ck_assert_msg_has(ns_idx_read(path, &back, got, &nd), NS_EFORMAT,
                      "IDX dimensions too large");
    ck_assert_uint_eq(got[0], 0);
}
END_TEST

START_TEST(test_idx_gzip_size_bound)
{
    /* A header claiming 4 GB in a tiny gzip file fails before allocating. */
    const char *path = ns_test_path("bound.idx.gz");
    size_t dims[1] = {0xffffffffu};
    uint8_t data[16] = {0};
    write_idx(path, 1, 0x08, 1, dims, data, sizeof data);
    uint8_t *back = NULL;
    size_t got[4];
    int nd;
    ck_assert_msg_has(ns_idx_read(path, &back, got, &nd), NS_EFORMAT, "cannot hold them");
}
END_TEST

START_TEST(test_idx_trailing_data)
{
    const char *path = ns_test_path("long.idx");
    size_t dims[1] = {10};
    uint8_t data[12];
    fill_bytes(data, sizeof data, 6);
    write_idx(path, 0, 0x08, 1, dims, data, sizeof data);
    uint8_t *back = NULL;
    size_t got[4];
    int nd;
    ck_assert_msg_has(ns_idx_read(path, &back, got, &nd), NS_EFORMAT, "unexpected data");
}
END_TEST

START_TEST(test_idx_missing_file)
{
    const char *path = ns_test_path("nothere.idx");
    uint8_t *back = NULL;
    size_t got[4];
    int nd;
    char want[700];
    snprintf(want, sizeof want, "cannot open '%s': No such file or directory", path);
    ck_assert_int_eq(ns_idx_read(path, &back, got, &nd), NS_EIO);
    ck_assert_str_eq(ns_errmsg(), want);
}
END_TEST

START_TEST(test_idx_directory_as_file)
{
    uint8_t *back = NULL;
    size_t got[4];
    int nd;
    ck_assert_msg_has(ns_idx_read(ns_test_tmpdir(), &back, got, &nd), NS_EIO,
                      "Is a directory");
}
END_TEST

START_TEST(test_idx_count_mismatch)
{
    const char *dir = fresh_dir("mismatch");
    write_idx_dir(dir, 0, 6, 2, 2, 2, 3, 0);
    size_t ldims[1] = {5};
    uint8_t lab[5] = {0, 1, 2, 0, 1};
    write_idx(join(dir, "train-labels-idx1-ubyte"), 0, 0x08, 1, ldims, lab, 5);
    char spec[600];
    snprintf(spec, sizeof spec, "idx:%s", dir);
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load(spec, NS_SPLIT_TRAIN, &d), NS_EFORMAT,
                      "image/label count mismatch");
    ck_assert_ptr_null(d);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "has 6 images"));
}
END_TEST

START_TEST(test_idx_labels_wrong_rank)
{
    const char *dir = fresh_dir("lrank");
    write_idx_dir(dir, 0, 4, 2, 2, 2, 3, 0);
    size_t ldims[2] = {4, 1};
    uint8_t lab[4] = {0, 1, 2, 0};
    write_idx(join(dir, "train-labels-idx1-ubyte"), 0, 0x08, 2, ldims, lab, 4);
    char spec[600];
    snprintf(spec, sizeof spec, "idx:%s", dir);
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load(spec, NS_SPLIT_TRAIN, &d), NS_EFORMAT, "expected labels");
}
END_TEST

START_TEST(test_idx_images_wrong_rank)
{
    const char *dir = fresh_dir("irank");
    write_idx_dir(dir, 0, 4, 2, 2, 2, 3, 0);
    size_t idims[1] = {4};
    uint8_t img[4] = {0, 1, 2, 3};
    write_idx(join(dir, "train-images-idx3-ubyte"), 0, 0x08, 1, idims, img, 4);
    char spec[600];
    snprintf(spec, sizeof spec, "idx:%s", dir);
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load(spec, NS_SPLIT_TRAIN, &d), NS_EFORMAT, "expected images");
}
END_TEST

START_TEST(test_idx_empty_images)
{
    const char *dir = fresh_dir("empty");
    write_idx_dir(dir, 0, 4, 2, 2, 2, 3, 0);
    size_t idims[3] = {4, 0, 2};
    write_idx(join(dir, "train-images-idx3-ubyte"), 0, 0x08, 3, idims, NULL, 0);
    char spec[600];
    snprintf(spec, sizeof spec, "idx:%s", dir);
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load(spec, NS_SPLIT_TRAIN, &d), NS_EFORMAT, "size zero");
}
END_TEST

START_TEST(test_data_dir_override)
{
    const char *dir = fresh_dir("override");
    write_idx_dir(dir, 1, 5, 3, 4, 4, 10, 0);
    setenv("NS_DATA_DIR", dir, 1);
    ns_dataset *d = NULL;
    ck_assert_int_eq(ns_data_load("fashion-mnist", NS_SPLIT_TEST, &d), NS_OK);
    ck_assert_uint_eq(d->n, 3);
    ck_assert_uint_eq(d->h, 4);
    ck_assert_uint_eq(d->nclass, 10);
    ck_assert_str_eq(d->source, dir);
    ns_data_free(d);
    ck_assert_int_eq(ns_data_load("mnist", NS_SPLIT_TRAIN, &d), NS_OK);
    ck_assert_str_eq(d->name, "mnist/train");
    ns_data_free(d);
}
END_TEST

START_TEST(test_named_label_out_of_range)
{
    const char *dir = fresh_dir("eleven");
    write_idx_dir(dir, 0, 12, 2, 2, 2, 11, 0);
    setenv("NS_DATA_DIR", dir, 1);
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load("fashion-mnist", NS_SPLIT_TRAIN, &d), NS_EFORMAT,
                      "label 10 of sample 3 is out of range");
}
END_TEST

START_TEST(test_named_missing_dir)
{
    const char *dir = ns_test_path("no-such-dir");
    setenv("NS_DATA_DIR", dir, 1);
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load("mnist", NS_SPLIT_TRAIN, &d), NS_EIO, dir);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "NS_DATA_DIR"));
    setenv("NS_DATA_DIR", join(ns_test_tmpdir(), "a-file"), 1);
    FILE *f = fopen(join(ns_test_tmpdir(), "a-file"), "w");
    fclose(f);
    ck_assert_msg_has(ns_data_load("fashion-mnist", NS_SPLIT_TRAIN, &d), NS_EIO,
                      "Not a directory");
}
END_TEST

START_TEST(test_idx_dir_missing_files)
{
    const char *dir = fresh_dir("nofiles");
    char spec[600];
    snprintf(spec, sizeof spec, "idx:%s", dir);
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load(spec, NS_SPLIT_TRAIN, &d), NS_EIO,
                      "train-images-idx3-ubyte.gz': No such file or directory");
}
END_TEST

/* -------------------------------------------------------------- CIFAR */

START_TEST(test_cifar_tiny)
{
    const char *dir = fresh_dir("cifar");
    const size_t nrec[5] = {2, 1, 3, 1, 2};
    char name[64];
    for (int k = 0; k < 5; k++) {
        snprintf(name, sizeof name, "data_batch_%d.bin", k + 1);
        write_cifar(join(dir, name), nrec[k], (unsigned)k, 0);
    }
    write_cifar(join(dir, "test_batch.bin"), 3, 9, 0);
    char spec[600];
    snprintf(spec, sizeof spec, "cifar10:%s", dir);
    ns_dataset *d = NULL;
    ck_assert_int_eq(ns_data_load(spec, NS_SPLIT_TRAIN, &d), NS_OK);
    ck_assert_uint_eq(d->n, 9);
    ck_assert_uint_eq(d->c, 3);
    ck_assert_uint_eq(d->h, 32);
    ck_assert_uint_eq(d->w, 32);
    ck_assert_uint_eq(d->nclass, 10);
    ck_assert_str_eq(d->name, "cifar10/train");
    /* Sample 3 is record 0 of batch 3: label salt 2, pixels after it. */
    uint8_t rec[3 * 3073];
    fill_bytes(rec, sizeof rec, 2);
    ck_assert_int_eq(d->y[3], 2);
    const float *x = d->x + 3 * 3072;
    ck_assert_float_eq(x[0], (float)rec[1] / 255.0f);              /* red (0, 0) */
    ck_assert_float_eq(x[1024 + 33], (float)rec[1 + 1024 + 33] / 255.0f); /* green (1, 1) */
    ck_assert_float_eq(x[3071], (float)rec[3072] / 255.0f);        /* blue (31, 31) */
    ck_assert_int_eq(d->y[5], (2 * 7 + 2) % 10);
    ns_data_free(d);

    ck_assert_int_eq(ns_data_load(spec, NS_SPLIT_TEST, &d), NS_OK);
    ck_assert_uint_eq(d->n, 3);
    ck_assert_int_eq(d->y[1], (7 + 9) % 10);
    ns_data_free(d);
}
END_TEST

START_TEST(test_cifar_truncated_record)
{
    const char *dir = fresh_dir("cifarcut");
    write_cifar(join(dir, "test_batch.bin"), 2, 1, 100);
    char spec[600];
    snprintf(spec, sizeof spec, "cifar10:%s", dir);
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load(spec, NS_SPLIT_TEST, &d), NS_EFORMAT, "truncated");
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "test_batch.bin"));
    ck_assert_ptr_null(d);
}
END_TEST

START_TEST(test_cifar_bad_label)
{
    const char *dir = fresh_dir("cifarlabel");
    const char *path = join(dir, "test_batch.bin");
    write_cifar(path, 3, 0, 0);
    FILE *f = fopen(path, "r+b");
    fseek(f, 2 * 3073, SEEK_SET);
    fputc(10, f);
    fclose(f);
    char spec[600];
    snprintf(spec, sizeof spec, "cifar10:%s", dir);
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load(spec, NS_SPLIT_TEST, &d), NS_EFORMAT,
                      "label 10 of record 2 is out of range");
}
END_TEST

START_TEST(test_cifar_missing_batch)
{
    const char *dir = fresh_dir("cifarmissing");
    write_cifar(join(dir, "data_batch_1.bin"), 1, 0, 0);
    write_cifar(join(dir, "data_batch_2.bin"), 1, 0, 0);
    char spec[600];
    snprintf(spec, sizeof spec, "cifar10:%s", dir);
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load(spec, NS_SPLIT_TRAIN, &d), NS_EIO,
                      "data_batch_3.bin': No such file or directory");
}
END_TEST

START_TEST(test_cifar_not_a_file)
{
    const char *dir = fresh_dir("cifardir");
    ck_assert_int_eq(mkdir(join(dir, "test_batch.bin"), 0700), 0);
    char spec[600];
    snprintf(spec, sizeof spec, "cifar10:%s", dir);
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load(spec, NS_SPLIT_TEST, &d), NS_EIO, "not a regular file");
}
END_TEST

START_TEST(test_cifar_empty_file)
{
    const char *dir = fresh_dir("cifarempty");
    write_cifar(join(dir, "test_batch.bin"), 0, 0, 0);
    char spec[600];
    snprintf(spec, sizeof spec, "cifar10:%s", dir);
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load(spec, NS_SPLIT_TEST, &d), NS_EFORMAT, "empty file");
}
END_TEST

/* --------------------------------------------------------------- HDF5 */

/* uint8 images (N, 2, 3, 2) for train (5) and test (4); train labels reach
 * 2, test labels reach 4. */
static const char *write_h5_u8(const char *name, int with_test_y, int nclass_attr)
{
    const char *path = ns_test_path(name);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    uint8_t xtr[5 * 12], xte[4 * 12];
    fill_bytes(xtr, sizeof xtr, 7);
    fill_bytes(xte, sizeof xte, 8);
    int32_t ytr[5] = {2, 0, 1, 2, 1};
    int64_t yte[4] = {4, 0, 3, 1};
    hsize_t dtr[4] = {5, 2, 3, 2}, dte[4] = {4, 2, 3, 2}, ltr[1] = {5}, lte[2] = {4, 1};
    h5_put(f, "/train/x", 4, dtr, H5T_NATIVE_UCHAR, xtr);
    h5_put(f, "/train/y", 1, ltr, H5T_NATIVE_INT32, ytr);
    h5_put(f, "/test/x", 4, dte, H5T_NATIVE_UCHAR, xte);
    if (with_test_y)
        h5_put(f, "/test/y", 2, lte, H5T_NATIVE_INT64, yte);
    if (nclass_attr)
        ck_assert_int_ge(H5LTset_attribute_int(f, "/", "nclass", &nclass_attr, 1), 0);
    H5Fclose(f);
    return path;
}

START_TEST(test_h5_uint8_round_trip)
{
    const char *path = write_h5_u8("u8.h5", 1, 0);
    ns_dataset *d = NULL;
    ck_assert_int_eq(ns_data_load(path, NS_SPLIT_TRAIN, &d), NS_OK);
    ck_assert_uint_eq(d->n, 5);
    ck_assert_uint_eq(d->c, 2);
    ck_assert_uint_eq(d->h, 3);
    ck_assert_uint_eq(d->w, 2);
    ck_assert_uint_eq(d->nclass, 5); /* the test labels reach 4 */
    ck_assert_str_eq(d->name, "u8/train");
    ck_assert_str_eq(d->source, path);
    uint8_t xtr[60];
    fill_bytes(xtr, sizeof xtr, 7);
    for (size_t i = 0; i < 60; i++)
        ck_assert_float_eq(d->x[i], (float)xtr[i] / 255.0f);
    ck_assert_int_eq(d->y[0], 2);
    ck_assert_int_eq(d->y[4], 1);
    ns_data_free(d);

    ck_assert_int_eq(ns_data_load(path, NS_SPLIT_TEST, &d), NS_OK);
    ck_assert_uint_eq(d->n, 4);
    ck_assert_uint_eq(d->nclass, 5);
    ck_assert_int_eq(d->y[0], 4);
    ck_assert_int_eq(d->y[2], 3);
    ns_data_free(d);
}
END_TEST

START_TEST(test_h5_float_round_trip)
{
    const char *path = ns_test_path("flat.hdf5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    float xtr[3 * 4];
    double xte[2 * 4];
    for (int i = 0; i < 12; i++)
        xtr[i] = (float)(2.385 * i - 7.125);
    for (int i = 0; i < 8; i++)
        xte[i] = -1.0 / (i + 1.7);
    int16_t ytr[3] = {1, 0, 1}, yte[2] = {0, 1};
    hsize_t dtr[2] = {3, 4}, dte[2] = {2, 4}, ltr[1] = {3}, lte[1] = {2};
    h5_put(f, "/train/x", 2, dtr, H5T_NATIVE_FLOAT, xtr);
    h5_put(f, "/train/y", 1, ltr, H5T_NATIVE_INT16, ytr);
    h5_put(f, "/test/x", 2, dte, H5T_NATIVE_DOUBLE, xte);
    h5_put(f, "/test/y", 1, lte, H5T_NATIVE_INT16, yte);
    H5Fclose(f);

    ns_dataset *d = NULL;
    ck_assert_int_eq(ns_data_load(path, NS_SPLIT_TRAIN, &d), NS_OK);
    ck_assert_uint_eq(d->n, 3);
    ck_assert_uint_eq(d->c, 4);
    ck_assert_uint_eq(d->h, 1);
    ck_assert_uint_eq(d->w, 1);
    ck_assert_uint_eq(d->nclass, 2);
    ck_assert_mem_eq(d->x, xtr, sizeof xtr);
    ck_assert_int_eq(d->y[0], 1);
    ns_data_free(d);

    ck_assert_int_eq(ns_data_load(path, NS_SPLIT_TEST, &d), NS_OK);
    for (int i = 0; i < 8; i++)
        ck_assert_float_eq(d->x[i], (float)xte[i]);
    ns_data_free(d);
}
END_TEST

START_TEST(test_h5_nclass_attribute)
{
    const char *path = write_h5_u8("attr.h5", 1, 12);
    ns_dataset *d = NULL;
    ck_assert_int_eq(ns_data_load(path, NS_SPLIT_TRAIN, &d), NS_OK);
    ck_assert_uint_eq(d->nclass, 12);
    ns_data_free(d);
}
END_TEST

START_TEST(test_h5_label_above_nclass)
{
    const char *path = write_h5_u8("small-attr.h5", 1, 4);
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load(path, NS_SPLIT_TEST, &d), NS_EFORMAT,
                      "label 4 of sample 0 in '/test/y' is not below nclass 4");
    ck_assert_ptr_null(d);
}
END_TEST

START_TEST(test_h5_missing_dataset)
{
    const char *path = write_h5_u8("noy.h5", 0, 0);
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load(path, NS_SPLIT_TEST, &d), NS_EFORMAT,
                      "no dataset '/test/y'");
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), path));
    /* The train split does not need /test/y. */
    ck_assert_int_eq(ns_data_load(path, NS_SPLIT_TRAIN, &d), NS_OK);
    ck_assert_uint_eq(d->nclass, 3);
    ns_data_free(d);
}
END_TEST

START_TEST(test_h5_missing_group)
{
    const char *path = ns_test_path("trainonly.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    float x[2] = {0.5f, 1.5f};
    int32_t y[2] = {0, 1};
    hsize_t dx[2] = {2, 1}, dy[1] = {2};
    h5_put(f, "/train/x", 2, dx, H5T_NATIVE_FLOAT, x);
    h5_put(f, "/train/y", 1, dy, H5T_NATIVE_INT32, y);
    H5Fclose(f);
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load(path, NS_SPLIT_TEST, &d), NS_EFORMAT,
                      "no dataset '/test/x'");
}
END_TEST

START_TEST(test_h5_x_is_group)
{
    const char *path = ns_test_path("xgroup.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    int32_t y[2] = {0, 1};
    hsize_t dy[1] = {2};
    h5_put(f, "/train/x/inner", 1, dy, H5T_NATIVE_INT32, y);
    h5_put(f, "/train/y", 1, dy, H5T_NATIVE_INT32, y);
    H5Fclose(f);
    ns_dataset *d = NULL;
    /* HDF5's own reason follows ours in parentheses. */
    ck_assert_msg_has(ns_data_load(path, NS_SPLIT_TRAIN, &d), NS_EFORMAT,
                      "cannot open '/train/x' (");
}
END_TEST

START_TEST(test_h5_read_failure)
{
    /* Raw data kept in an external file that then disappears: the file
     * opens but reading the samples fails inside HDF5. */
    const char *path = ns_test_path("external.h5"), *raw = ns_test_path("external.raw");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t g = H5Gcreate2(f, "/train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dx[2] = {2, 2}, dy[1] = {2};
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    ck_assert_int_ge(H5Pset_external(dcpl, raw, 0, 4 * sizeof(float)), 0);
    hid_t space = H5Screate_simple(2, dx, NULL);
    hid_t ds = H5Dcreate2(f, "/train/x", H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl,
                          H5P_DEFAULT);
    float x[4] = {0.25f, 0.5f, 0.75f, 1.0f};
    int32_t y[2] = {0, 1};
    ck_assert_int_ge(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x), 0);
    H5Dclose(ds);
    H5Sclose(space);
    H5Pclose(dcpl);
    H5Gclose(g);
    h5_put(f, "/train/y", 1, dy, H5T_NATIVE_INT32, y);
    H5Fclose(f);
    ck_assert_int_eq(remove(raw), 0);
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load(path, NS_SPLIT_TRAIN, &d), NS_EFORMAT,
                      "reading the samples failed (");
    ck_assert_ptr_null(d);
}
END_TEST

START_TEST(test_h5_not_hdf5)
{
    const char *path = ns_test_path("fake.h5");
    FILE *f = fopen(path, "w");
    fputs("this is not an HDF5 file, only text pretending to be one\n", f);
    fclose(f);
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load(path, NS_SPLIT_TRAIN, &d), NS_EFORMAT, "not an HDF5 file");
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), path));
}
END_TEST

START_TEST(test_h5_missing_file)
{
    const char *path = ns_test_path("absent.h5");
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load(path, NS_SPLIT_TRAIN, &d), NS_EIO,
                      "No such file or directory");
}
END_TEST

START_TEST(test_h5_unsupported_type)
{
    const char *path = ns_test_path("int16.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    int16_t x[4] = {1, 2, 3, 4};
    int32_t y[2] = {0, 1};
    hsize_t dx[2] = {2, 2}, dy[1] = {2};
    h5_put(f, "/train/x", 2, dx, H5T_NATIVE_INT16, x);
    h5_put(f, "/train/y", 1, dy, H5T_NATIVE_INT32, y);
    H5Fclose(f);
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load(path, NS_SPLIT_TRAIN, &d), NS_EFORMAT,
                      "unsupported element type");
}
END_TEST

START_TEST(test_h5_float_labels)
{
    const char *path = ns_test_path("floaty.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    float x[4] = {1, 2, 3, 4}, y[2] = {0, 1};
    hsize_t dx[2] = {2, 2}, dy[1] = {2};
    h5_put(f, "/train/x", 2, dx, H5T_NATIVE_FLOAT, x);
    h5_put(f, "/train/y", 1, dy, H5T_NATIVE_FLOAT, y);
    H5Fclose(f);
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load(path, NS_SPLIT_TRAIN, &d), NS_EFORMAT,
                      "'/train/y' must hold integer labels");
}
END_TEST

START_TEST(test_h5_count_mismatch)
{
    const char *path = ns_test_path("counts.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    float x[6] = {1, 2, 3, 4, 5, 6};
    int32_t y[2] = {0, 1};
    hsize_t dx[2] = {3, 2}, dy[1] = {2};
    h5_put(f, "/train/x", 2, dx, H5T_NATIVE_FLOAT, x);
    h5_put(f, "/train/y", 1, dy, H5T_NATIVE_INT32, y);
    H5Fclose(f);
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load(path, NS_SPLIT_TRAIN, &d), NS_EFORMAT,
                      "'/train/x' has 3 samples but '/train/y' has 2 labels");
}
END_TEST

START_TEST(test_h5_negative_label)
{
    const char *path = ns_test_path("negative.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    float x[2] = {1, 2};
    int32_t y[2] = {0, -1};
    hsize_t dx[2] = {2, 1}, dy[1] = {2};
    h5_put(f, "/train/x", 2, dx, H5T_NATIVE_FLOAT, x);
    h5_put(f, "/train/y", 1, dy, H5T_NATIVE_INT32, y);
    H5Fclose(f);
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load(path, NS_SPLIT_TRAIN, &d), NS_EFORMAT,
                      "label -1 of sample 1");
}
END_TEST

START_TEST(test_h5_nonfinite)
{
    const char *path = ns_test_path("nan.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    double x[4] = {1, 2, NAN, 4};
    int32_t y[2] = {0, 1};
    hsize_t dx[2] = {2, 2}, dy[1] = {2};
    h5_put(f, "/train/x", 2, dx, H5T_NATIVE_DOUBLE, x);
    h5_put(f, "/train/y", 1, dy, H5T_NATIVE_INT32, y);
    H5Fclose(f);
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load(path, NS_SPLIT_TRAIN, &d), NS_EFORMAT, "not finite");
}
END_TEST

START_TEST(test_h5_bad_rank)
{
    const char *path = ns_test_path("rank1.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    float x[2] = {1, 2};
    int32_t y[4] = {0, 1, 0, 1};
    hsize_t dx[1] = {2}, dy[2] = {2, 2};
    h5_put(f, "/train/x", 1, dx, H5T_NATIVE_FLOAT, x);
    h5_put(f, "/train/y", 2, dy, H5T_NATIVE_INT32, y);
    h5_put(f, "/test/x", 2, dy, H5T_NATIVE_FLOAT, (float[4]){1, 2, 3, 4});
    h5_put(f, "/test/y", 2, dy, H5T_NATIVE_INT32, y);
    H5Fclose(f);
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load(path, NS_SPLIT_TRAIN, &d), NS_EFORMAT, "has rank 1");
    ck_assert_msg_has(ns_data_load(path, NS_SPLIT_TEST, &d), NS_EFORMAT,
                      "one label per sample");
}
END_TEST

START_TEST(test_h5_float_nclass_attribute)
{
    const char *path = write_h5_u8("float-attr.h5", 1, 0);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    float ten = 10;
    ck_assert_int_ge(H5LTset_attribute_float(f, "/", "nclass", &ten, 1), 0);
    H5Fclose(f);
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load(path, NS_SPLIT_TRAIN, &d), NS_EFORMAT,
                      "attribute 'nclass' must be one integer");
}
END_TEST

START_TEST(test_h5_bad_nclass_attribute)
{
    const char *path = write_h5_u8("zero-attr.h5", 1, 0);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    int zero = 0;
    ck_assert_int_ge(H5LTset_attribute_int(f, "/", "nclass", &zero, 1), 0);
    H5Fclose(f);
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_load(path, NS_SPLIT_TRAIN, &d), NS_EFORMAT,
                      "attribute 'nclass' is 0");
}
END_TEST

/* ---------------------------------------------------------- synthetic */

static const char *const synthetic_specs[] = {"gauss:3:5:300", "spirals:301", "moons:200",
                                              "rings:150", "xor:203"};

START_TEST(test_synthetic_deterministic)
{
    const char *spec = synthetic_specs[_i];
    ns_dataset *a = NULL, *b = NULL;
    ck_assert_int_eq(ns_data_synthetic(spec, 20240917, NS_SPLIT_TRAIN, &a), NS_OK);
    ck_assert_int_eq(ns_data_synthetic(spec, 20240917, NS_SPLIT_TRAIN, &b), NS_OK);
    ck_assert_uint_eq(a->n, b->n);
    ck_assert_mem_eq(a->x, b->x, a->n * ns_data_dim(a) * sizeof *a->x);
    ck_assert_mem_eq(a->y, b->y, a->n * sizeof *a->y);
    ck_assert_str_eq(a->source, spec);
    ns_data_free(a);
    ns_data_free(b);
}
END_TEST

static int same_x(const ns_dataset *a, const ns_dataset *b)
{
    return memcmp(a->x, b->x, a->n * ns_data_dim(a) * sizeof *a->x) == 0;
}

START_TEST(test_synthetic_seed_and_split_differ)
{
    const char *spec = synthetic_specs[_i];
    ns_dataset *a = NULL, *b = NULL, *t = NULL;
    ck_assert_int_eq(ns_data_synthetic(spec, 7, NS_SPLIT_TRAIN, &a), NS_OK);
    ck_assert_int_eq(ns_data_synthetic(spec, 8, NS_SPLIT_TRAIN, &b), NS_OK);
    ck_assert_int_eq(ns_data_synthetic(spec, 7, NS_SPLIT_TEST, &t), NS_OK);
    ck_assert(!same_x(a, b));
    ck_assert(!same_x(a, t));
    ns_data_free(a);
    ns_data_free(b);
    ns_data_free(t);
}
END_TEST

START_TEST(test_synthetic_balanced)
{
    const char *spec = synthetic_specs[_i];
    ns_dataset *d = NULL;
    ck_assert_int_eq(ns_data_synthetic(spec, 3, NS_SPLIT_TRAIN, &d), NS_OK);
    size_t count[8], lo = SIZE_MAX, hi = 0;
    ck_assert_uint_le(d->nclass, 8);
    count_classes(d, count);
    for (size_t k = 0; k < d->nclass; k++) {
        lo = count[k] < lo ? count[k] : lo;
        hi = count[k] > hi ? count[k] : hi;
    }
    ck_assert_uint_le(hi - lo, 1);
    for (size_t i = 0; i < d->n * ns_data_dim(d); i++)
        ck_assert(isfinite(d->x[i]));
    ns_data_free(d);
}
END_TEST

/* Per-class means of a gauss set, K x D. */
static void class_means(const ns_dataset *d, double *m)
{
    size_t D = ns_data_dim(d), cnt[8] = {0};
    memset(m, 0, d->nclass * D * sizeof *m);
    for (size_t i = 0; i < d->n; i++) {
        cnt[d->y[i]]++;
        for (size_t j = 0; j < D; j++)
            m[d->y[i] * D + j] += d->x[i * D + j];
    }
    for (size_t k = 0; k < d->nclass; k++)
        for (size_t j = 0; j < D; j++)
            m[k * D + j] /= (double)cnt[k];
}

START_TEST(test_synthetic_gauss_means)
{
    ns_dataset *tr = NULL, *te = NULL;
    ck_assert_int_eq(ns_data_synthetic("gauss:4:6:4000", 11, NS_SPLIT_TRAIN, &tr), NS_OK);
    ck_assert_int_eq(ns_data_synthetic("gauss:4:6:4000", 11, NS_SPLIT_TEST, &te), NS_OK);
    ck_assert_uint_eq(tr->n, 4000);
    ck_assert_uint_eq(tr->c, 6);
    ck_assert_uint_eq(tr->h * tr->w, 1);
    ck_assert_uint_eq(tr->nclass, 4);
    double mtr[24], mte[24];
    class_means(tr, mtr);
    class_means(te, mte);
    /* 1000 samples per class: the class mean is within ~0.1 of 3 u_k, and
     * both splits share u_k. */
    for (int k = 0; k < 4; k++) {
        double norm2 = 0;
        for (int j = 0; j < 6; j++) {
            norm2 += mtr[k * 6 + j] * mtr[k * 6 + j];
            ck_assert_double_eq_tol(mtr[k * 6 + j], mte[k * 6 + j], 0.25);
        }
        ck_assert_double_eq_tol(sqrt(norm2), 3.0, 0.3);
    }
    ns_data_free(tr);
    ns_data_free(te);
}
END_TEST

START_TEST(test_synthetic_default_n)
{
    ns_dataset *d = NULL;
    ck_assert_int_eq(ns_data_load("moons", NS_SPLIT_TRAIN, &d), NS_OK);
    ck_assert_uint_eq(d->n, 1000);
    ck_assert_uint_eq(d->c, 2);
    ck_assert_uint_eq(d->nclass, 2);
    ck_assert_str_eq(d->name, "moons/train");
    ns_data_free(d);
    ck_assert_int_eq(ns_data_load("gauss:3:2", NS_SPLIT_TEST, &d), NS_OK);
    ck_assert_uint_eq(d->n, 1000);
    ck_assert_str_eq(d->name, "gauss:3:2/test");
    ns_data_free(d);
}
END_TEST

static const char *const bad_specs[] = {
    "gauss:0:2", "gauss:3",    "gauss:a:2",  "gauss:3:0",   "gauss:3:2:2", "gauss:3:2:10:4",
    "spirals:0", "spirals:10:3", "moons:-5", "moons:",      "xor:1e3",    "rings:12x",
    "gauss::2",  "xor:99999999999999999999999",
};

START_TEST(test_synthetic_bad_spec)
{
    ns_dataset *d = NULL;
    ns_error_clear();
    ck_assert_int_eq(ns_data_synthetic(bad_specs[_i], 1, NS_SPLIT_TRAIN, &d), NS_EINVAL);
    ck_assert_ptr_null(d);
    ck_assert_msg(strstr(ns_errmsg(), bad_specs[_i]) != NULL, "message '%s'", ns_errmsg());
}
END_TEST

START_TEST(test_synthetic_unknown_name)
{
    ns_dataset *d = NULL;
    ck_assert_msg_has(ns_data_synthetic("blobs:3", 1, NS_SPLIT_TRAIN, &d), NS_EINVAL,
                      "unknown synthetic data set 'blobs:3'");
    ck_assert_msg_has(ns_data_synthetic("xor", 1, 2, &d), NS_EINVAL, "bad split 2");
}
END_TEST

START_TEST(test_load_unknown_spec)
{
    ns_dataset *d = NULL;
    ck_assert_int_eq(ns_data_load("imagenet", NS_SPLIT_TRAIN, &d), NS_EINVAL);
    ck_assert_str_eq(ns_errmsg(), "unknown data set 'imagenet' (expected fashion-mnist, "
                     "idx:DIR, cifar10:DIR, FILE.h5, gauss:K:D, spirals, moons, rings, xor)");
    ck_assert_int_eq(ns_data_load("", NS_SPLIT_TRAIN, &d), NS_EINVAL);
    ck_assert_int_eq(ns_data_load("idx:", NS_SPLIT_TRAIN, &d), NS_EINVAL);
    ck_assert_int_eq(ns_data_load("moons", 5, &d), NS_EINVAL);
    ck_assert_ptr_null(d);
}
END_TEST

/* ---------------------------------------------------------- operations */

/* A 5-sample set of 2 channels of 1 x 3 with high-entropy values. */
static ns_dataset *small_set(void)
{
    ns_dataset *d = NULL;
    ck_assert_int_eq(ns_data_alloc(5, 2, 1, 3, 3, &d), NS_OK);
    for (size_t i = 0; i < 30; i++)
        d->x[i] = (float)(sin(1.7 * (double)i + 0.3) * 2.385 + (i % 6 < 3 ? 1.25 : -0.5));
    for (size_t i = 0; i < 5; i++)
        d->y[i] = (int32_t)(i * 2 % 3);
    snprintf(d->name, sizeof d->name, "small/train");
    return d;
}

START_TEST(test_channel_stats_small)
{
    ns_dataset *d = small_set();
    double mean[2], std[2];
    ns_data_channel_stats(d, mean, std);
    for (int c = 0; c < 2; c++) {
        double s = 0, ss = 0;
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 3; j++)
                s += d->x[i * 6 + c * 3 + j];
        double m = s / 15;
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 3; j++) {
                double e = d->x[i * 6 + c * 3 + j] - m;
                ss += e * e;
            }
        ck_assert_double_eq_tol(mean[c], m, 1e-12);
        ck_assert_double_eq_tol(std[c], sqrt(ss / 15), 1e-12);
    }
    ns_data_free(d);
}
END_TEST

START_TEST(test_standardize)
{
    ns_dataset *d = NULL;
    ck_assert_int_eq(ns_data_synthetic("gauss:3:4:900", 5, NS_SPLIT_TRAIN, &d), NS_OK);
    double mean[4], std[4];
    ns_data_channel_stats(d, mean, std);
    ns_data_standardize(d, mean, std);
    ns_data_channel_stats(d, mean, std);
    for (int c = 0; c < 4; c++) {
        ck_assert_double_eq_tol(mean[c], 0.0, 1e-6);
        ck_assert_double_eq_tol(std[c], 1.0, 1e-6);
    }
    ns_data_free(d);
}
END_TEST

START_TEST(test_standardize_constant_channel)
{
    ns_dataset *d = small_set();
    for (size_t i = 0; i < 5; i++)
        for (size_t j = 0; j < 3; j++)
            d->x[i * 6 + 3 + j] = 0.75f;
    double mean[2], std[2];
    ns_data_channel_stats(d, mean, std);
    ck_assert_double_eq(std[1], 0.0);
    ns_data_standardize(d, mean, std);
    for (size_t i = 0; i < 5; i++)
        for (size_t j = 0; j < 3; j++)
            ck_assert_float_eq(d->x[i * 6 + 3 + j], 0.0f);
    ns_data_free(d);
}
END_TEST

START_TEST(test_subset)
{
    ns_dataset *d = small_set(), *s = NULL;
    size_t idx[4] = {4, 1, 1, 0};
    ck_assert_int_eq(ns_data_subset(d, idx, 4, &s), NS_OK);
    ck_assert_uint_eq(s->n, 4);
    ck_assert_uint_eq(s->c, 2);
    ck_assert_uint_eq(s->w, 3);
    ck_assert_uint_eq(s->nclass, 3);
    ck_assert_str_eq(s->name, "small/train");
    for (size_t i = 0; i < 4; i++) {
        ck_assert_mem_eq(s->x + i * 6, d->x + idx[i] * 6, 6 * sizeof *s->x);
        ck_assert_int_eq(s->y[i], d->y[idx[i]]);
    }
    ns_data_free(s);
    ns_data_free(d);
}
END_TEST

START_TEST(test_subset_out_of_range)
{
    ns_dataset *d = small_set(), *s = NULL;
    size_t idx[2] = {2, 5};
    ck_assert_msg_has(ns_data_subset(d, idx, 2, &s), NS_EINVAL,
                      "sample index 5 is out of range for 'small/train' (5 samples)");
    ck_assert_ptr_null(s);
    ns_data_free(d);
}
END_TEST

START_TEST(test_gather)
{
    ns_dataset *d = small_set();
    size_t idx[3] = {3, 0, 3};
    ns_real x[18];
    int32_t y[3];
    ns_data_gather(d, idx, 3, x, y);
    for (size_t i = 0; i < 3; i++) {
        for (size_t j = 0; j < 6; j++)
            ck_assert((double)x[i * 6 + j] == (double)d->x[idx[i] * 6 + j]);
        ck_assert_int_eq(y[i], d->y[idx[i]]);
    }
    /* Without labels. */
    ns_real x2[6] = {0};
    ns_data_gather(d, idx + 1, 1, x2, NULL);
    ck_assert((double)x2[5] == (double)d->x[5]);
    ns_data_free(d);
}
END_TEST

START_TEST(test_alloc_zero_shape)
{
    ns_dataset *d = NULL;
    ck_assert_int_eq(ns_data_alloc(3, 1, 0, 2, 2, &d), NS_EINVAL);
    ck_assert_ptr_null(d);
    ck_assert_int_eq(ns_data_alloc(0, 1, 1, 2, 2, &d), NS_OK);
    ck_assert_uint_eq(d->n, 0);
    ns_data_free(d);
    ns_data_free(NULL);
}
END_TEST

/* -------------------------------------------------------------- suite */

static Suite *data_suite(void)
{
    Suite *s = suite_create("data");
    size_t nsyn = sizeof synthetic_specs / sizeof *synthetic_specs;
    size_t nbad = sizeof bad_specs / sizeof *bad_specs;

    TCase *tc = tcase_create("fashion-mnist");
    tcase_add_unchecked_fixture(tc, fashion_setup, fashion_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fashion_train_shape);
    tcase_add_test(tc, test_fashion_test_shape);
    tcase_add_test(tc, test_fashion_labels_balanced);
    tcase_add_test(tc, test_fashion_pixel_range);
    tcase_add_test(tc, test_fashion_channel_stats);
    suite_add_tcase(s, tc);

    tc = tcase_create("idx");
    tcase_add_test(tc, test_idx_round_trip_plain);
    tcase_add_test(tc, test_idx_round_trip_gzip);
    tcase_add_test(tc, test_idx_dir_load);
    tcase_add_test(tc, test_idx_plain_dir_test_split);
    tcase_add_test(tc, test_idx_truncated_plain);
    tcase_add_test(tc, test_idx_truncated_gzip);
    tcase_add_test(tc, test_idx_cut_gzip_trailer);
    tcase_add_test(tc, test_idx_corrupt_gzip);
    tcase_add_test(tc, test_idx_wrong_magic);
    tcase_add_test(tc, test_idx_unsupported_type);
    tcase_add_test(tc, test_idx_bad_rank);
    tcase_add_test(tc, test_idx_truncated_header);
    tcase_add_test(tc, test_idx_huge_dims);
    tcase_add_test(tc, test_idx_gzip_size_bound);
    tcase_add_test(tc, test_idx_trailing_data);
    tcase_add_test(tc, test_idx_missing_file);
    tcase_add_test(tc, test_idx_directory_as_file);
    tcase_add_test(tc, test_idx_count_mismatch);
    tcase_add_test(tc, test_idx_labels_wrong_rank);
    tcase_add_test(tc, test_idx_images_wrong_rank);
    tcase_add_test(tc, test_idx_empty_images);
    tcase_add_test(tc, test_data_dir_override);
    tcase_add_test(tc, test_named_label_out_of_range);
    tcase_add_test(tc, test_named_missing_dir);
    tcase_add_test(tc, test_idx_dir_missing_files);
    suite_add_tcase(s, tc);

    tc = tcase_create("cifar10");
    tcase_add_test(tc, test_cifar_tiny);
    tcase_add_test(tc, test_cifar_truncated_record);
    tcase_add_test(tc, test_cifar_bad_label);
    tcase_add_test(tc, test_cifar_missing_batch);
    tcase_add_test(tc, test_cifar_not_a_file);
    tcase_add_test(tc, test_cifar_empty_file);
    suite_add_tcase(s, tc);

    tc = tcase_create("hdf5");
    tcase_add_test(tc, test_h5_uint8_round_trip);
    tcase_add_test(tc, test_h5_float_round_trip);
    tcase_add_test(tc, test_h5_nclass_attribute);
    tcase_add_test(tc, test_h5_label_above_nclass);
    tcase_add_test(tc, test_h5_missing_dataset);
    tcase_add_test(tc, test_h5_missing_group);
    tcase_add_test(tc, test_h5_x_is_group);
    tcase_add_test(tc, test_h5_read_failure);
    tcase_add_test(tc, test_h5_not_hdf5);
    tcase_add_test(tc, test_h5_missing_file);
    tcase_add_test(tc, test_h5_unsupported_type);
    tcase_add_test(tc, test_h5_float_labels);
    tcase_add_test(tc, test_h5_count_mismatch);
    tcase_add_test(tc, test_h5_negative_label);
    tcase_add_test(tc, test_h5_nonfinite);
    tcase_add_test(tc, test_h5_bad_rank);
    tcase_add_test(tc, test_h5_float_nclass_attribute);
    tcase_add_test(tc, test_h5_bad_nclass_attribute);
    suite_add_tcase(s, tc);

    tc = tcase_create("synthetic");
    tcase_add_loop_test(tc, test_synthetic_deterministic, 0, (int)nsyn);
    tcase_add_loop_test(tc, test_synthetic_seed_and_split_differ, 0, (int)nsyn);
    tcase_add_loop_test(tc, test_synthetic_balanced, 0, (int)nsyn);
    tcase_add_test(tc, test_synthetic_gauss_means);
    tcase_add_test(tc, test_synthetic_default_n);
    tcase_add_loop_test(tc, test_synthetic_bad_spec, 0, (int)nbad);
    tcase_add_test(tc, test_synthetic_unknown_name);
    tcase_add_test(tc, test_load_unknown_spec);
    suite_add_tcase(s, tc);

    tc = tcase_create("operations");
    tcase_add_test(tc, test_channel_stats_small);
    tcase_add_test(tc, test_standardize);
    tcase_add_test(tc, test_standardize_constant_channel);
    tcase_add_test(tc, test_subset);
    tcase_add_test(tc, test_subset_out_of_range);
    tcase_add_test(tc, test_gather);
    tcase_add_test(tc, test_alloc_zero_shape);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* One directory for all the forked tests, made before they fork and
     * removed at the end unless NS_KEEP_TMP is set. */
    const char *dir = ns_test_tmpdir();
    int st = ns_test_run(data_suite());
    if (!getenv("NS_KEEP_TMP"))
        ns_test_system("rm -rf '%s'", dir);
    return st;
}
