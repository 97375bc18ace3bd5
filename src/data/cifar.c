/*
 * CIFAR-10 binary version (Krizhevsky, "Learning multiple layers of
 * features from tiny images", 2009; the format described on
 * https://www.cs.toronto.edu/~kriz/cifar.html): each record is one label
 * byte (0-9) and 3072 pixel bytes, the 32x32 red, green and blue planes in
 * turn, i.e. already CHW.  The distributed files hold 10000 records each;
 * any whole number of records is accepted.
 */
#include "data/internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define CIFAR_C 3
#define CIFAR_HW 32
#define CIFAR_PIXELS (CIFAR_C * CIFAR_HW * CIFAR_HW)
#define CIFAR_RECORD ((size_t)1 + CIFAR_PIXELS)
#define CIFAR_CLASSES 10
#define CIFAR_TRAIN_FILES 5

/* Reads exactly size bytes of path into buf. */
static int read_whole(const char *path, uint8_t *buf, size_t size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return ns_error(NS_EIO, "cannot open '%s': %s", path, strerror(errno));
    size_t got = fread(buf, 1, size, f);
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (err)
        return ns_error(NS_EIO, "cannot read '%s': %s", path, strerror(err));
    if (got < size)
        return ns_error(NS_EFORMAT, "cannot read '%s': truncated CIFAR-10 data "
                        "(expected %zu bytes, got %zu)", path, size, got);
    return NS_OK;
}

int ns_data_load_cifar10(const char *dir, int split, ns_dataset **out)
{
    int st = NS_OK;
    char path[CIFAR_TRAIN_FILES][PATH_MAX];
    size_t records[CIFAR_TRAIN_FILES], total = 0, largest = 0;
    int nfile = split == NS_SPLIT_TEST ? 1 : CIFAR_TRAIN_FILES;
    uint8_t *buf = NULL;
    ns_dataset *d = NULL;
    *out = NULL;

    for (int k = 0; k < nfile; k++) {
        int n = split == NS_SPLIT_TEST
                    ? snprintf(path[k], PATH_MAX, "%s/test_batch.bin", dir)
                    : snprintf(path[k], PATH_MAX, "%s/data_batch_%d.bin", dir, k + 1);
        if (n < 0 || n >= PATH_MAX)
            return ns_error(NS_EINVAL, "directory name '%s' is too long", dir);
        struct stat sb;
        if (stat(path[k], &sb) != 0)
            return ns_error(NS_EIO, "cannot open '%s': %s", path[k], strerror(errno));
        if (!S_ISREG(sb.st_mode))
            return ns_error(NS_EIO, "cannot read '%s': not a regular file", path[k]);
        size_t size = (size_t)sb.st_size;
        if (size == 0)
            return ns_error(NS_EFORMAT, "cannot read '%s': empty file (expected %zu-byte "
                            "CIFAR-10 records)", path[k], CIFAR_RECORD);
        if (size % CIFAR_RECORD != 0)
            return ns_error(NS_EFORMAT, "cannot read '%s': truncated CIFAR-10 data (%zu bytes "
                            "is not a whole number of %zu-byte records)", path[k], size,
                            CIFAR_RECORD);
        records[k] = size / CIFAR_RECORD;
        total += records[k];
        if (size > largest)
            largest = size;
    }

    buf = ns_malloc(largest);
    if (!buf) {
        st = NS_ENOMEM;
        goto cleanup;
    }
    if ((st = ns_data_alloc_uninit(total, CIFAR_C, CIFAR_HW, CIFAR_HW, CIFAR_CLASSES, &d)))
        goto cleanup;
    size_t at = 0;
    for (int k = 0; k < nfile; k++) {
        if ((st = read_whole(path[k], buf, records[k] * CIFAR_RECORD)))
            goto cleanup;
        for (size_t r = 0; r < records[k]; r++, at++) {
            const uint8_t *rec = buf + r * CIFAR_RECORD;
            if (rec[0] >= CIFAR_CLASSES) {
                st = ns_error(NS_EFORMAT, "cannot read '%s': label %d of record %zu is out "
                              "of range (expected 0 to %d)", path[k], rec[0], r,
                              CIFAR_CLASSES - 1);
                goto cleanup;
            }
            d->y[at] = rec[0];
            ns_data_u8_to_float(d->x + at * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS);
        }
    }
    ns_data_describe(d, "cifar10", split, dir);
    *out = d;
    d = NULL;
cleanup:
    ns_free(buf);
    ns_data_free(d);
    return st;
}
