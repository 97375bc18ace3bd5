/*
 * IDX files, the format of MNIST and Fashion-MNIST (LeCun, Cortes and
 * Burges, "The MNIST database of handwritten digits", section "File
 * formats"; Xiao, Rasul and Vollgraf, arXiv:1708.07747): a magic word
 * 0x00 0x00 TYPE NDIM, NDIM big-endian uint32 dimensions, then the elements
 * in row-major order.  zlib's gz* functions read gzip and plain files alike,
 * so the .gz files Debian installs are read as they are, in one pass into
 * memory.  Also the loader of IDX directories (fashion-mnist, mnist,
 * idx:DIR).
 */
#include "data/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_UBYTE 0x08
/* gzread takes an unsigned count and returns an int. */
#define GZ_CHUNK ((size_t)1 << 30)
/* Deflate cannot expand data by more than about 1032:1, which bounds what a
 * gzip file of a given size can hold before anything is allocated. */
#define GZ_MAX_RATIO 1040

static const char *idx_type_name(int type)
{
    switch (type) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "short";
    case 0x0C: return "int";
    case 0x0D: return "float";
    case 0x0E: return "double";
    default: return "unknown";
    }
}

/* Reads up to len bytes into buf, the count in *got; -1 when zlib reports
 * an error, which includes a gzip stream that ends early. */
static int gz_read_all(gzFile f, void *buf, size_t len, size_t *got)
{
    int errnum = Z_OK;
    *got = 0;
    while (*got < len) {
        size_t want = len - *got < GZ_CHUNK ? len - *got : GZ_CHUNK;
        int r = gzread(f, (char *)buf + *got, (unsigned)want);
        if (r <= 0)
            break;
        *got += (size_t)r;
    }
    if (*got < len)
        gzerror(f, &errnum);
    return errnum == Z_OK ? 0 : -1;
}

/* The one place where zlib's errors become ours.  A short read of a stream
 * without a zlib error is truncated data. */
static int gz_fail(gzFile f, const char *path, size_t expected, size_t got)
{
    int errnum = Z_OK;
    int saved = errno;
    const char *msg = gzerror(f, &errnum);
    /* zlib prefixes its message with the descriptor, "<fd:3>: "; we name
     * the file ourselves. */
    const char *colon = strstr(msg, ": ");
    if (colon)
        msg = colon + 2;
    if (errnum == Z_ERRNO)
        return ns_error(NS_EIO, "cannot read '%s': %s", path, strerror(saved));
    if (errnum == Z_MEM_ERROR)
        return ns_error(NS_ENOMEM, "cannot read '%s': out of memory in zlib", path);
    if (errnum == Z_DATA_ERROR)
        return ns_error(NS_EFORMAT, "cannot read '%s': corrupt gzip data (%s)", path, msg);
    if (got >= expected) /* Z_BUF_ERROR after all the data: the trailer is cut */
        return ns_error(NS_EFORMAT, "cannot read '%s': truncated gzip file (%s)", path, msg);
    return ns_error(NS_EFORMAT, "cannot read '%s': truncated IDX data "
                    "(expected %zu bytes, got %zu)", path, expected, got);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int ns_idx_read(const char *path, uint8_t **data, size_t dims[4], int *ndim)
{
    int st = NS_OK;
    gzFile f = NULL;
    uint8_t *buf = NULL;
    unsigned char head[4 + 4 * 4];
    struct stat sb = {0};
    *data = NULL;
    *ndim = 0;
    memset(dims, 0, 4 * sizeof *dims);

    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return ns_error(NS_EIO, "cannot open '%s': %s", path, strerror(errno));
    if (fstat(fd, &sb) != 0 || S_ISDIR(sb.st_mode)) {
        int err = S_ISDIR(sb.st_mode) ? EISDIR : errno;
        close(fd);
        return ns_error(NS_EIO, "cannot read '%s': %s", path, strerror(err));
    }
    f = gzdopen(fd, "rb");
    if (!f) {
        close(fd);
        return ns_error(NS_ENOMEM, "cannot read '%s': out of memory in zlib", path);
    }
    gzbuffer(f, 1u << 18);

    size_t got;
    if (gz_read_all(f, head, 4, &got) != 0) {
        st = gz_fail(f, path, 4, got);
        goto cleanup;
    }
    if (got < 4 || head[0] != 0 || head[1] != 0) {
        st = ns_error(NS_EFORMAT, "cannot read '%s': not an IDX file", path);
        goto cleanup;
    }
    int type = head[2], nd = head[3];
    if (type != IDX_UBYTE) {
        st = ns_error(NS_EFORMAT, "cannot read '%s': unsupported IDX element type 0x%02x "
                      "(%s; only unsigned byte, 0x08, is supported)", path, type,
                      idx_type_name(type));
        goto cleanup;
    }
    if (nd < 1 || nd > 4) {
        st = ns_error(NS_EFORMAT, "cannot read '%s': unsupported IDX rank %d (expected 1 to 4)",
                      path, nd);
        goto cleanup;
    }
    size_t hlen = 4 * (size_t)nd;
    if (gz_read_all(f, head + 4, hlen, &got) != 0) {
        st = gz_fail(f, path, hlen, got);
        goto cleanup;
    }
    if (got < hlen) {
        st = ns_error(NS_EFORMAT, "cannot read '%s': truncated IDX header", path);
        goto cleanup;
    }
    size_t total = 1;
    for (int i = 0; i < nd; i++) {
        dims[i] = be32(head + 4 + 4 * i);
        if (total != 0 && dims[i] > SIZE_MAX / total) {
            st = ns_error(NS_EFORMAT, "cannot read '%s': IDX dimensions too large", path);
            goto cleanup;
        }
        total *= dims[i];
    }

    /* Check the size before allocating, so a damaged header cannot ask for
     * gigabytes: exact for a plain file, a bound for a gzip file. */
    size_t fsize = (size_t)sb.st_size;
    if (gzdirect(f)) {
        size_t avail = fsize > 4 + hlen ? fsize - 4 - hlen : 0;
        if (avail < total) {
            st = ns_error(NS_EFORMAT, "cannot read '%s': truncated IDX data "
                          "(expected %zu bytes, got %zu)", path, total, avail);
            goto cleanup;
        }
    } else if (S_ISREG(sb.st_mode) && fsize < SIZE_MAX / GZ_MAX_RATIO &&
               total > fsize * GZ_MAX_RATIO) {
        st = ns_error(NS_EFORMAT, "cannot read '%s': truncated IDX data (expected %zu bytes, "
                      "a gzip file of %zu bytes cannot hold them)", path, total, fsize);
        goto cleanup;
    }

    buf = ns_malloc(total);
    if (!buf) {
        st = NS_ENOMEM;
        goto cleanup;
    }
    if (gz_read_all(f, buf, total, &got) != 0 || got < total) {
        st = gz_fail(f, path, total, got);
        goto cleanup;
    }
    /* One more read reaches the gzip trailer, so a damaged checksum or a
     * cut trailer is reported, and extra bytes are not silently ignored. */
    unsigned char extra;
    if (gz_read_all(f, &extra, 1, &got) != 0) {
        st = gz_fail(f, path, total, total);
        goto cleanup;
    }
    if (got > 0) {
        st = ns_error(NS_EFORMAT, "cannot read '%s': unexpected data after the %zu bytes "
                      "of IDX data", path, total);
        goto cleanup;
    }
    *data = buf;
    *ndim = nd;
    buf = NULL;
cleanup:
    if (f)
        gzclose_r(f);
    ns_free(buf);
    if (st)
        memset(dims, 0, 4 * sizeof *dims);
    return st;
}

/* DIR/PREFIX-KIND-ubyte.gz if it exists, else the plain file (the name an
 * error then reports). */
static int idx_path(char *buf, size_t size, const char *dir, const char *prefix,
                    const char *kind)
{
    int n = snprintf(buf, size, "%s/%s-%s-ubyte.gz", dir, prefix, kind);
    if (n < 0 || (size_t)n >= size)
        return ns_error(NS_EINVAL, "directory name '%s' is too long", dir);
    if (access(buf, F_OK) != 0) {
        buf[n - 3] = '\0';
        if (access(buf, F_OK) != 0)
            buf[n - 3] = '.';
    }
    return NS_OK;
}

/* Reads a label file: rank 1 (N). */
static int read_labels(const char *path, uint8_t **labels, size_t *n)
{
    size_t dims[4];
    int nd;
    int st = ns_idx_read(path, labels, dims, &nd);
    if (st)
        return st;
    if (nd != 1) {
        ns_free(*labels);
        *labels = NULL;
        return ns_error(NS_EFORMAT, "cannot read '%s': IDX rank %d, expected labels (rank 1)",
                        path, nd);
    }
    *n = dims[0];
    return NS_OK;
}

static size_t max_label(const uint8_t *y, size_t n)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (y[i] > m)
            m = y[i];
    return m;
}

int ns_data_load_idx(const char *dir, const char *base, size_t nclass,
                     int split, ns_dataset **out)
{
    int st;
    char ipath[PATH_MAX], lpath[PATH_MAX], opath[PATH_MAX];
    uint8_t *img = NULL, *lab = NULL, *other = NULL;
    ns_dataset *d = NULL;
    size_t dims[4], nlab = 0;
    int nd;
    const char *prefix = split == NS_SPLIT_TEST ? "t10k" : "train";
    *out = NULL;

    if ((st = idx_path(ipath, sizeof ipath, dir, prefix, "images-idx3")) ||
        (st = idx_path(lpath, sizeof lpath, dir, prefix, "labels-idx1")) ||
        (st = idx_path(opath, sizeof opath, dir, split == NS_SPLIT_TEST ? "train" : "t10k",
                       "labels-idx1")))
        goto cleanup;
    if ((st = ns_idx_read(ipath, &img, dims, &nd)))
        goto cleanup;
    if (nd != 2 && nd != 3) {
        st = ns_error(NS_EFORMAT, "cannot read '%s': IDX rank %d, expected images "
                      "(N, H, W) or vectors (N, D)", ipath, nd);
        goto cleanup;
    }
    if (dims[1] == 0 || (nd == 3 && dims[2] == 0)) {
        st = ns_error(NS_EFORMAT, "cannot read '%s': images of size zero", ipath);
        goto cleanup;
    }
    if ((st = read_labels(lpath, &lab, &nlab)))
        goto cleanup;
    if (nlab != dims[0]) {
        st = ns_error(NS_EFORMAT, "image/label count mismatch: '%s' has %zu images, "
                      "'%s' has %zu labels", ipath, dims[0], lpath, nlab);
        goto cleanup;
    }
    if (dims[0] == 0) {
        st = ns_error(NS_EFORMAT, "cannot read '%s': no images", ipath);
        goto cleanup;
    }

    size_t top = max_label(lab, nlab);
    if (nclass == 0) {
        /* Both splits must agree on the class count, so it comes from the
         * labels of both when the other split is there. */
        nclass = top + 1;
        if (access(opath, F_OK) == 0) {
            size_t nother = 0;
            if ((st = read_labels(opath, &other, &nother)))
                goto cleanup;
            size_t otop = max_label(other, nother);
            if (nother > 0 && otop + 1 > nclass)
                nclass = otop + 1;
        }
    } else if (top >= nclass) {
        for (size_t i = 0; i < nlab; i++)
            if (lab[i] >= nclass) {
                st = ns_error(NS_EFORMAT, "cannot read '%s': label %d of sample %zu is out "
                              "of range (expected 0 to %zu)", lpath, lab[i], i, nclass - 1);
                goto cleanup;
            }
    }

    size_t c = nd == 2 ? dims[1] : 1, h = nd == 2 ? 1 : dims[1], w = nd == 2 ? 1 : dims[2];
    if ((st = ns_data_alloc_uninit(dims[0], c, h, w, nclass, &d)))
        goto cleanup;
    ns_data_u8_to_float(d->x, img, d->n * ns_data_dim(d));
    for (size_t i = 0; i < nlab; i++)
        d->y[i] = lab[i];
    ns_data_describe(d, base, split, dir);
    *out = d;
    d = NULL;
cleanup:
    ns_free(img);
    ns_free(lab);
    ns_free(other);
    ns_data_free(d);
    return st;
}
