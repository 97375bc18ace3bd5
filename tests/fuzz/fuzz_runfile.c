/*
 * libFuzzer harness of the run-file reader, structure-aware: the bytes pick
 * one of the seed run files (NS_FUZZ_RUNS, colon-separated, set by
 * tests/fuzz/run.sh) and a list of edits made to a copy of it through the
 * HDF5 API: values of data sets set to NaN, infinities, negatives or any
 * float; data sets replaced by others of another shape or removed;
 * attributes removed or replaced by numbers, strings or arrays; checkpoint
 * groups removed or renamed.  The edited file then goes through the path
 * every command uses (ns_run_check), ns_run_load and a forward pass whose
 * logits must be finite.  Unlike fuzz_h5image, the container stays valid,
 * so what is exercised is normscope's own validation, not libhdf5's parser.
 */
#include "fuzz_util.h"

#include <hdf5.h>
#include <math.h>

#include "fuzz_run.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_SEEDS = 16, MAX_OBJ = 512 };
static char *seed_data[MAX_SEEDS];
static size_t seed_len[MAX_SEEDS], nseeds;

static void load_seeds(void)
{
    const char *list = getenv("NS_FUZZ_RUNS");
    if (!list || nseeds)
        return;
    char *copy = strdup(list), *save = NULL;
    for (char *p = strtok_r(copy, ":", &save); p && nseeds < MAX_SEEDS;
         p = strtok_r(NULL, ":", &save)) {
        FILE *f = fopen(p, "rb");
        if (!f)
            continue;
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *b = malloc((size_t)n);
        if (b && fread(b, 1, (size_t)n, f) == (size_t)n) {
            seed_data[nseeds] = b;
            seed_len[nseeds++] = (size_t)n;
        } else {
            free(b);
        }
        fclose(f);
    }
    free(copy);
}

/* Objects of the file: data sets, groups, and (object, attribute) pairs. */
typedef struct objs {
    char dset[MAX_OBJ][160];
    size_t ndset;
    char group[MAX_OBJ][160];
    size_t ngroup;
    char aobj[MAX_OBJ][160], aname[MAX_OBJ][64];
    size_t nattr;
} objs;

static herr_t on_attr(hid_t loc, const char *name, const H5A_info_t *info, void *op)
{
    (void)loc;
    (void)info;
    objs *o = op;
    if (o->nattr < MAX_OBJ) {
        snprintf(o->aobj[o->nattr], sizeof o->aobj[0], "%s", o->aobj[MAX_OBJ - 1]);
        snprintf(o->aname[o->nattr], sizeof o->aname[0], "%s", name);
        o->nattr++;
    }
    return 0;
}

static herr_t on_obj(hid_t fid, const char *name, const H5O_info_t *info, void *op)
{
    objs *o = op;
    char path[160];
    snprintf(path, sizeof path, "/%s", strcmp(name, ".") ? name : "");
    if (info->type == H5O_TYPE_DATASET && o->ndset < MAX_OBJ)
        snprintf(o->dset[o->ndset++], sizeof o->dset[0], "%s", path);
    if (info->type == H5O_TYPE_GROUP && o->ngroup < MAX_OBJ - 1)
        snprintf(o->group[o->ngroup++], sizeof o->group[0], "%s", path);
    /* The last slot carries the object's path into on_attr. */
    snprintf(o->aobj[MAX_OBJ - 1], sizeof o->aobj[0], "%s", path);
    H5Aiterate_by_name(fid, path, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, on_attr, o, H5P_DEFAULT);
    return 0;
}

/* The input, read a little at a time. */
typedef struct cursor {
    const uint8_t *p;
    size_t n;
} cursor;

static unsigned take(cursor *c)
{
    if (!c->n)
        return 0;
    c->n--;
    return *c->p++;
}

static double take_value(cursor *c)
{
    static const double special[] = {NAN, INFINITY, -INFINITY, -1.0, 0.0, 1e30, -1e-30,
                                     3.5, 1e300, -2.385};
    unsigned k = take(c);
    if (k < 200)
        return special[k % (sizeof special / sizeof *special)];
    float f = 0;
    uint8_t b[4] = {(uint8_t)take(c), (uint8_t)take(c), (uint8_t)take(c), (uint8_t)take(c)};
    memcpy(&f, b, 4);
    return f;
}

static void edit(hid_t fid, objs *o, cursor *c)
{
    unsigned op = take(c) % 9, t = take(c) << 8;
    t |= take(c);
    if (op <= 2 && o->ndset) {
        const char *d = o->dset[t % o->ndset];
        if (op == 0) {             /* one element */
            hid_t ds = H5Dopen2(fid, d, H5P_DEFAULT);
            hid_t sp = H5Dget_space(ds);
            hssize_t n = H5Sget_simple_extent_npoints(sp);
            if (ds >= 0 && n > 0 && n < (1 << 24)) {
                double *v = malloc((size_t)n * sizeof *v);
                if (v && H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0) {
                    size_t i = ((size_t)take(c) << 8 | take(c)) % (size_t)n;
                    v[i] = take_value(c);
                    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
                }
                free(v);
            }
            H5Sclose(sp);
            H5Dclose(ds);
        } else {                   /* removed, or replaced by another shape */
            H5Ldelete(fid, d, H5P_DEFAULT);
            if (op == 1) {
                int r = 1 + (int)(take(c) % 3);
                hsize_t dims[3];
                size_t n = 1;
                for (int i = 0; i < r; i++)
                    n *= dims[i] = take(c) % 40;
                hid_t sp = H5Screate_simple(r, dims, NULL);
                hid_t ds = H5Dcreate2(fid, d, H5T_NATIVE_FLOAT, sp, H5P_DEFAULT, H5P_DEFAULT,
                                      H5P_DEFAULT);
                float *v = calloc(n ? n : 1, sizeof *v);
                for (size_t i = 0; v && i < n; i++)
                    v[i] = 0.5f;
                if (ds >= 0 && v && n)
                    H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
                free(v);
                H5Dclose(ds);
                H5Sclose(sp);
            }
        }
        return;
    }
    if (op <= 6 && o->nattr) {
        size_t a = t % o->nattr;
        const char *obj = o->aobj[a], *name = o->aname[a];
        H5Adelete_by_name(fid, obj, name, H5P_DEFAULT);
        if (op == 3)
            return;
        hid_t sp = H5Screate(H5S_SCALAR), type = -1, at = -1;
        if (op == 4) {             /* a number */
            double v = take_value(c);
            at = H5Acreate_by_name(fid, obj, name, H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT,
                                   H5P_DEFAULT, H5P_DEFAULT);
            H5Awrite(at, H5T_NATIVE_DOUBLE, &v);
        } else if (op == 5) {      /* an integer */
            int64_t v = 0;
            for (int i = 0; i < 8; i++)
                v = (int64_t)((uint64_t)v << 8 | take(c));
            at = H5Acreate_by_name(fid, obj, name, H5T_NATIVE_INT64, sp, H5P_DEFAULT,
                                   H5P_DEFAULT, H5P_DEFAULT);
            H5Awrite(at, H5T_NATIVE_INT64, &v);
        } else {                   /* a string, or an array of numbers */
            size_t n = take(c) % 64;
            if (op == 6 && t % 2) {
                char s[65];
                for (size_t i = 0; i < n; i++)
                    s[i] = (char)(take(c) | 1);
                s[n] = 0;
                type = H5Tcopy(H5T_C_S1);
                H5Tset_size(type, H5T_VARIABLE);
                const char *ps = s;
                at = H5Acreate_by_name(fid, obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT,
                                       H5P_DEFAULT);
                H5Awrite(at, type, &ps);
            } else {
                double v[64];
                hsize_t dim = n ? n : 1;
                for (size_t i = 0; i < dim; i++)
                    v[i] = take_value(c);
                H5Sclose(sp);
                sp = H5Screate_simple(1, &dim, NULL);
                at = H5Acreate_by_name(fid, obj, name, H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT,
                                       H5P_DEFAULT, H5P_DEFAULT);
                H5Awrite(at, H5T_NATIVE_DOUBLE, v);
            }
        }
        if (type >= 0)
            H5Tclose(type);
        H5Aclose(at);
        H5Sclose(sp);
        return;
    }
    if (o->ngroup > 1) {           /* a group removed or renamed */
        const char *g = o->group[1 + t % (o->ngroup - 1)];
        if (take(c) % 2) {
            H5Ldelete(fid, g, H5P_DEFAULT);
        } else {
            char to[160];
            snprintf(to, sizeof to, "/checkpoints/%u", take(c) * 7u);
            H5Lmove(fid, g, fid, to, H5P_DEFAULT, H5P_DEFAULT);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_setup();
    load_seeds();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (!nseeds || size < 1)
        return 0;
    size_t s = data[0] % nseeds;
    const char *path = fuzz_file((const uint8_t *)seed_data[s], seed_len[s], ".h5");
    if (!path)
        return 0;
    hid_t fid = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (fid < 0)
        abort();                   /* the seed itself must open */
    static objs o;
    memset(&o, 0, sizeof o);
    H5Ovisit2(fid, H5_INDEX_NAME, H5_ITER_NATIVE, on_obj, &o, H5O_INFO_BASIC);
    cursor c = {data + 1, size - 1};
    for (int k = 0; k < 8 && c.n; k++)
        edit(fid, &o, &c);
    H5Fclose(fid);

    fuzz_read_run(path);
    unlink(path);
    return 0;
}
