/*
 * HDF5 helpers: atomic output files, attributes and datasets.  HDF5's
 * automatic error stack printing is silenced once; every failure becomes an
 * ns_error message naming the file and the object.
 */
#include "normscope/io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <hdf5.h>

/* ns_hid of io.h stands for hid_t in every signature. */
_Static_assert(_Generic((hid_t)0, ns_hid: 1, default: 0), "hid_t is not int64_t (HDF5 >= 1.10)");
_Static_assert(H5I_INVALID_HID == NS_HID_INVALID, "H5I_INVALID_HID is not -1");

/* An H5Fclose that fails (its flush meets a full disk) leaves, in HDF5 1.10
 * (fixed in 1.14.1, HDFFV-11052), a freed file object in the library's
 * table of open identifiers, which the library's own clean-up at exit
 * closes a second time: a segmentation fault after the error message.
 * Every file normscope opens is closed explicitly, so that clean-up has
 * nothing to do; it is turned off before the library is first used. */
__attribute__((constructor)) static void h5_no_atexit(void)
{
    H5dont_atexit();
}

static void quiet_hdf5(void)
{
    static int done;
    if (!done) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        done = 1;
    }
}

/* Temporary files being written, removed if a signal ends the process
 * (SIGINT, SIGTERM, SIGHUP where their action is the default one; `train`
 * installs its own handler, which saves a resumable run instead).  Each
 * entry also keeps the final name, so messages name the file the user asked
 * for rather than its temporary. */
enum { MAX_TMP = 64 };
static struct {
    char tmp[1100];
    char path[1024];
    volatile sig_atomic_t used;
} tmps[MAX_TMP];

const char *ns_h5_name(hid_t loc)
{
    static _Thread_local char buf[1100];
    if (H5Fget_name(loc, buf, sizeof buf) < 0)
        snprintf(buf, sizeof buf, "?");
    /* A file being written is named by its final name. */
    for (int i = 0; i < MAX_TMP; i++)
        if (tmps[i].used && !strcmp(tmps[i].tmp, buf)) {
            snprintf(buf, sizeof buf, "%s", tmps[i].path);
            break;
        }
    return buf;
}

void ns_iso_time(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ------------------------------------------------------- atomic output */

static void on_fatal_signal(int sig)
{
    /* Files first, then the directories that held them. */
    for (int pass = 0; pass < 2; pass++)
        for (int i = MAX_TMP - 1; i >= 0; i--)
            if (tmps[i].used)
                (void)(pass == 0 ? unlink(tmps[i].tmp) : rmdir(tmps[i].tmp));
    signal(sig, SIG_DFL);
    raise(sig);
}

void ns_tmp_register(const char *tmp, const char *path)
{
    static int installed;
    if (!installed) {
        installed = 1;
        const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
        for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++) {
            struct sigaction old, sa;
            if (sigaction(sigs[k], NULL, &old) == 0 && old.sa_handler == SIG_DFL) {
                memset(&sa, 0, sizeof sa);
                sa.sa_handler = on_fatal_signal;
                sigemptyset(&sa.sa_mask);
                sigaction(sigs[k], &sa, NULL);
            }
        }
    }
    for (int i = 0; i < MAX_TMP; i++)
        if (!tmps[i].used) {
            snprintf(tmps[i].tmp, sizeof tmps[i].tmp, "%s", tmp);
            snprintf(tmps[i].path, sizeof tmps[i].path, "%s", path ? path : tmp);
            tmps[i].used = 1;
            return;
        }
}

void ns_tmp_forget(const char *tmp)
{
    for (int i = 0; i < MAX_TMP; i++)
        if (tmps[i].used && !strcmp(tmps[i].tmp, tmp))
            tmps[i].used = 0;
}

/* The errno of the system call under a failed HDF5 call, which the sec2
 * driver records in its message ("..., errno = 28, error message = ...");
 * 0 when the stack holds none.  Read it before the next HDF5 call, which
 * clears the stack. */
static herr_t find_errno(unsigned n, const H5E_error2_t *e, void *data)
{
    (void)n;
    int *err = data;
    const char *p = e->desc ? strstr(e->desc, "errno = ") : NULL;
    if (p && !*err)
        *err = atoi(p + 8);
    return 0;
}

static int h5_errno(void)
{
    int err = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, find_errno, &err);
    return err;
}

/* Errors that say the output, not the input, is at fault: the work failed
 * (exit 1) rather than its request (exit 2). */
static int write_errno(int err)
{
    return err == ENOSPC || err == EFBIG || err == EDQUOT || err == EIO;
}

static int write_fail(const char *path, int err, const char *what)
{
    if (err && what && *what)
        return ns_error(NS_EWRITE, "cannot write '%s': %s (%s)", path, strerror(err), what);
    if (err)
        return ns_error(NS_EWRITE, "cannot write '%s': %s", path, strerror(err));
    if (what && *what)
        return ns_error(NS_EWRITE, "cannot write '%s': %s", path, what);
    return ns_error(NS_EWRITE, "cannot write '%s'", path);
}

int ns_h5_write_failed(hid_t loc, const char *what)
{
    int err = h5_errno();
    return write_fail(ns_h5_name(loc), err, what);
}

int ns_out_publish(const char *tmp, const char *path, int force)
{
    if (force) {
        if (rename(tmp, path) != 0)
            return write_fail(path, errno, NULL);
        return NS_OK;
    }
    /* link() fails where rename() would replace: a file that appeared since
     * the start (another process writing the same name) is kept. */
    if (link(tmp, path) == 0) {
        unlink(tmp);
        return NS_OK;
    }
    int err = errno;
    struct stat sb;
    if (err != EEXIST && (err == EPERM || err == EOPNOTSUPP || err == ENOSYS ||
                          err == EMLINK || err == EXDEV)) {
        /* A file system without hard links: the check and the rename are
         * two steps, the best it allows. */
        if (lstat(path, &sb) != 0) {
            if (rename(tmp, path) != 0)
                return write_fail(path, errno, NULL);
            return NS_OK;
        }
        err = EEXIST;
    }
    if (err == EEXIST)
        return ns_error(NS_EINVAL, "'%s' was created by another process while this one wrote "
                        "it; it is left as it is (use --force to overwrite)", path);
    return write_fail(path, err, NULL);
}

int ns_out_names_input(const char *out, const char *const *inputs, size_t n)
{
    struct stat so, si;
    if (!out || stat(out, &so) != 0)
        return NS_OK;
    for (size_t i = 0; i < n; i++)
        if (inputs[i] && stat(inputs[i], &si) == 0 && si.st_dev == so.st_dev &&
            si.st_ino == so.st_ino)
            return ns_error(NS_EINVAL, "output '%s' is the input '%s'; choose another -o", out,
                            inputs[i]);
    return NS_OK;
}

size_t ns_out_note_stale(const char *path)
{
    char d[1100], b[1100];
    if (!path || snprintf(d, sizeof d, "%s", path) >= (int)sizeof d)
        return 0;
    snprintf(b, sizeof b, "%s", path);
    const char *dir = dirname(d), *base = basename(b);
    size_t blen = strlen(base), found = 0;
    const char *slash = strrchr(path, '/');
    int dlen = slash ? (int)(slash - path + 1) : 0;
    DIR *dp = opendir(dir);
    if (!dp)
        return 0;
    for (struct dirent *e; (e = readdir(dp)) != NULL; ) {
        const char *name = e->d_name, *pid_s = name + blen + 5;
        if (strncmp(name, base, blen) || strncmp(name + blen, ".tmp-", 5) || !*pid_s ||
            strspn(pid_s, "0123456789") != strlen(pid_s) || strlen(pid_s) > 9)
            continue;
        long pid = atol(pid_s);
        /* EPERM: the process runs under another user. */
        if (pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        ns_note("normscope: note: '%.*s%s' is a temporary left by a process that no longer "
                "runs (pid %ld); remove it", dlen, path, name, pid);
        found++;
    }
    closedir(dp);
    return found;
}

static void h5out_reset(ns_h5out *o)
{
    memset(o, 0, sizeof *o);
    o->fid = H5I_INVALID_HID;
}

int ns_h5out_create(ns_h5out *o, const char *path, int force)
{
    quiet_hdf5();
    h5out_reset(o);
    if (!path || !*path)
        return ns_error(NS_EINVAL, "no output file given (use -o PATH)");
    if (strlen(path) >= sizeof o->path)
        return ns_error(NS_EINVAL, "output path too long");
    struct stat sb;
    if (!force && stat(path, &sb) == 0)
        return ns_error(NS_EINVAL, "'%s' exists; use --force to overwrite", path);
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return ns_error(NS_EINVAL, "'%s' is a directory", path);
    ns_out_note_stale(path);
    snprintf(o->path, sizeof o->path, "%s", path);
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp-%ld", path, (long)getpid());
    o->force = force;
    /* Probe the directory with a plain open so the message is the OS's. */
    int fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
        int err = errno;
        o->tmp[0] = '\0';
        return ns_error(write_errno(err) ? NS_EWRITE : NS_EIO, "cannot write '%s': %s", path,
                        strerror(err));
    }
    close(fd);
    unlink(o->tmp);
    ns_tmp_register(o->tmp, o->path);
    o->fid = H5Fcreate(o->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (o->fid < 0) {
        int err = h5_errno();
        ns_tmp_forget(o->tmp);
        unlink(o->tmp);
        o->tmp[0] = '\0';
        if (write_errno(err))
            return write_fail(path, err, NULL);
        return ns_error(NS_EIO, "cannot create '%s'", path);
    }
    return NS_OK;
}

int ns_h5out_from_copy(ns_h5out *o, const char *src, const char *path, int force)
{
    quiet_hdf5();
    h5out_reset(o);
    if (!path || strlen(path) >= sizeof o->path)
        return ns_error(NS_EINVAL, "output path too long");
    ns_out_note_stale(path);
    snprintf(o->path, sizeof o->path, "%s", path);
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp-%ld", path, (long)getpid());
    o->force = force;
    FILE *in = fopen(src, "rb");
    if (!in) {
        o->tmp[0] = '\0';
        return ns_error(NS_EIO, "cannot open '%s': %s", src, strerror(errno));
    }
    ns_tmp_register(o->tmp, o->path);
    FILE *out = fopen(o->tmp, "wb");
    if (!out) {
        int err = errno;
        ns_tmp_forget(o->tmp);
        fclose(in);
        o->tmp[0] = '\0';
        return ns_error(write_errno(err) ? NS_EWRITE : NS_EIO, "cannot write '%s': %s", path,
                        strerror(err));
    }
    char buf[1 << 16];
    size_t k;
    int err = 0, rerr = 0;
    while (!err && (k = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, k, out) != k)
            err = errno ? errno : EIO;
    if (ferror(in))
        rerr = errno ? errno : EIO;
    fclose(in);
    if (fclose(out) != 0 && !err)
        err = errno ? errno : EIO;
    if (err || rerr) {
        ns_tmp_forget(o->tmp);
        unlink(o->tmp);
        o->tmp[0] = '\0';
        if (rerr && !err)
            return ns_error(NS_EIO, "cannot read '%s': %s", src, strerror(rerr));
        return write_fail(path, err, NULL);
    }
    o->fid = H5Fopen(o->tmp, H5F_ACC_RDWR, H5P_DEFAULT);
    if (o->fid < 0) {
        ns_tmp_forget(o->tmp);
        unlink(o->tmp);
        o->tmp[0] = '\0';
        return ns_error(NS_EFORMAT, "cannot read '%s': not an HDF5 file", src);
    }
    return NS_OK;
}

int ns_h5out_commit(ns_h5out *o)
{
    if (o->fid < 0)
        return ns_error(NS_EFAIL, "'%s': file not open", o->path);
    /* A full disk often shows only here, when HDF5 writes its metadata:
     * flush while the file is still open, so the failure is seen, then
     * close and check that too. */
    if (H5Fflush(o->fid, H5F_SCOPE_GLOBAL) < 0) {
        int st = ns_h5_write_failed(o->fid, NULL);
        ns_h5out_abort(o);
        return st;
    }
    herr_t e = H5Fclose(o->fid);
    /* Never touched again, whatever the result: a failed close has already
     * released the file in HDF5 1.10. */
    o->fid = H5I_INVALID_HID;
    if (e < 0) {
        int st = write_fail(o->path, h5_errno(), NULL);
        ns_h5out_abort(o);
        return st;
    }
    int st = ns_out_publish(o->tmp, o->path, o->force);
    if (st) {
        ns_h5out_abort(o);
        return st;
    }
    ns_tmp_forget(o->tmp);
    o->tmp[0] = '\0';
    return NS_OK;
}

void ns_h5out_abort(ns_h5out *o)
{
    if (o->fid >= 0)
        H5Fclose(o->fid);   /* fails on a full disk; the file goes anyway */
    o->fid = H5I_INVALID_HID;
    if (o->tmp[0]) {
        unlink(o->tmp);
        ns_tmp_forget(o->tmp);
    }
    o->tmp[0] = '\0';
}

/* ---------------------------------------------------------------- open */

int ns_h5_open(const char *path, hid_t *fid)
{
    quiet_hdf5();
    *fid = H5I_INVALID_HID;
    if (access(path, R_OK) != 0)
        return ns_error(NS_EIO, "cannot open '%s': %s", path, strerror(errno));
    if (H5Fis_hdf5(path) <= 0)
        return ns_error(NS_EFORMAT, "cannot read '%s': not an HDF5 file", path);
    *fid = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*fid < 0)
        return ns_error(NS_EFORMAT, "cannot read '%s': damaged HDF5 file", path);
    return NS_OK;
}

int ns_h5_open_format(const char *path, const char *want, hid_t *fid)
{
    int st = ns_h5_open(path, fid);
    if (st)
        return st;
    char fmt[64] = "";
    int run = strcmp(want, NS_RUN_FORMAT) == 0;
    if (ns_h5_get_str(*fid, ".", "format", fmt, sizeof fmt) || strcmp(fmt, want) != 0) {
        ns_h5_close(*fid);
        *fid = H5I_INVALID_HID;
        return ns_error(NS_EFORMAT, "cannot read '%s': not a normscope %s file", path,
                        run ? "run" : "result");
    }
    /* A newer writer may have changed what any reader relies on: refuse it
     * here, where every reader opens its file. */
    int64_t have = run ? NS_RUN_FORMAT_VERSION : NS_RESULT_FORMAT_VERSION, iv = 0;
    double dv = 0;
    int is_int = 0;
    st = ns_h5_get_num(*fid, ".", "format_version", &dv, &iv, &is_int);
    if (!st && !is_int && dv == floor(dv) && fabs(dv) < 1e15) {
        iv = (int64_t)dv;   /* a whole number written as a float */
        is_int = 1;
    }
    if (!st && (!is_int || iv < 1))
        st = ns_error(NS_EFORMAT, "cannot read '%s': format_version %g is not a version "
                      "normscope wrote", path, dv);
    else if (!st && iv > have)
        st = ns_error(NS_EFORMAT, "cannot read '%s': format_version %lld is newer than this "
                      "normscope reads (%lld)", path, (long long)iv, (long long)have);
    if (st) {
        ns_h5_close(*fid);
        *fid = H5I_INVALID_HID;
    }
    return st;
}

void ns_h5_close(hid_t fid)
{
    if (fid >= 0)
        H5Fclose(fid);
}

int ns_h5_exists(hid_t loc, const char *path)
{
    if (strcmp(path, ".") == 0 || strcmp(path, "/") == 0)
        return 1;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    /* H5Lexists needs every intermediate link to exist. */
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (H5Lexists(loc, buf, H5P_DEFAULT) <= 0)
                return 0;
            if (c == '\0')
                return 1;
            *p = c;
        }
    }
}

int ns_h5_delete(hid_t loc, const char *path)
{
    if (!ns_h5_exists(loc, path))
        return NS_OK;
    if (H5Ldelete(loc, path, H5P_DEFAULT) < 0) {
        char what[1100];
        snprintf(what, sizeof what, "removing '%s'", path);
        return ns_h5_write_failed(loc, what);
    }
    return NS_OK;
}

static hid_t lcpl_intermediate(void)
{
    hid_t p = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(p, 1);
    return p;
}

int ns_h5_group(hid_t loc, const char *path)
{
    if (ns_h5_exists(loc, path))
        return NS_OK;
    hid_t lcpl = lcpl_intermediate();
    hid_t g = H5Gcreate2(loc, path, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    int st = NS_OK;
    if (g < 0) {
        char what[1100];
        snprintf(what, sizeof what, "group '%s'", path);
        st = ns_h5_write_failed(loc, what);
    } else {
        H5Gclose(g);
    }
    H5Pclose(lcpl);
    return st;
}

/* ---------------------------------------------------------- attributes */

static int attr_write(hid_t loc, const char *obj, const char *name, hid_t type,
                      hid_t space, const void *val)
{
    if (H5Aexists_by_name(loc, obj, name, H5P_DEFAULT) > 0)
        H5Adelete_by_name(loc, obj, name, H5P_DEFAULT);
    hid_t a = H5Acreate_by_name(loc, obj, name, type, space, H5P_DEFAULT,
                                H5P_DEFAULT, H5P_DEFAULT);
    int st = NS_OK;
    if (a < 0 || H5Awrite(a, type, val) < 0) {
        char what[1200];
        snprintf(what, sizeof what, "attribute '%s' of '%s'", name, obj);
        st = ns_h5_write_failed(loc, what);
    }
    if (a >= 0)
        H5Aclose(a);
    return st;
}

int ns_h5_attr_str(hid_t loc, const char *obj, const char *name, const char *val)
{
    /* Variable-length UTF-8, which h5py reads as str rather than bytes. */
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t s = H5Screate(H5S_SCALAR);
    int st = attr_write(loc, obj, name, t, s, &val);
    H5Sclose(s);
    H5Tclose(t);
    return st;
}

int ns_h5_attr_double(hid_t loc, const char *obj, const char *name, double val)
{
    hid_t s = H5Screate(H5S_SCALAR);
    int st = attr_write(loc, obj, name, H5T_NATIVE_DOUBLE, s, &val);
    H5Sclose(s);
    return st;
}

int ns_h5_attr_int(hid_t loc, const char *obj, const char *name, int64_t val)
{
    hid_t s = H5Screate(H5S_SCALAR);
    int st = attr_write(loc, obj, name, H5T_NATIVE_INT64, s, &val);
    H5Sclose(s);
    return st;
}

int ns_h5_attr_doubles(hid_t loc, const char *obj, const char *name,
                       const double *val, size_t n)
{
    hsize_t d = n;
    hid_t s = H5Screate_simple(1, &d, NULL);
    int st = attr_write(loc, obj, name, H5T_NATIVE_DOUBLE, s, val);
    H5Sclose(s);
    return st;
}

int ns_h5_attr_exists(hid_t loc, const char *obj, const char *name)
{
    return ns_h5_exists(loc, obj) && H5Aexists_by_name(loc, obj, name, H5P_DEFAULT) > 0;
}

static hid_t attr_open(hid_t loc, const char *obj, const char *name)
{
    if (!ns_h5_attr_exists(loc, obj, name)) {
        ns_error(NS_EFORMAT, "cannot read '%s': attribute '%s' of '%s' is missing",
                 ns_h5_name(loc), name, obj);
        return H5I_INVALID_HID;
    }
    return H5Aopen_by_name(loc, obj, name, H5P_DEFAULT, H5P_DEFAULT);
}

int ns_h5_get_str(hid_t loc, const char *obj, const char *name, char *buf, size_t len)
{
    hid_t a = attr_open(loc, obj, name);
    if (a < 0)
        return NS_EFORMAT;
    int st = NS_OK;
    hid_t ft = H5Aget_type(a);
    /* One string: H5Aread writes every element of an array. */
    hid_t sp = H5Aget_space(a);
    hssize_t cnt = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    if (H5Tget_class(ft) != H5T_STRING || cnt != 1) {
        st = ns_error(NS_EFORMAT, "cannot read '%s': attribute '%s' is not a string",
                      ns_h5_name(loc), name);
    } else if (H5Tis_variable_str(ft) > 0) {
        char *v = NULL;
        hid_t mt = H5Tcopy(ft);
        if (H5Aread(a, mt, &v) < 0 || !v)
            st = ns_error(NS_EFORMAT, "cannot read attribute '%s'", name);
        else
            snprintf(buf, len, "%s", v);
        if (v)
            H5free_memory(v);
        H5Tclose(mt);
    } else {
        size_t sz = H5Tget_size(ft);
        char *tmp = ns_malloc(sz + 1);
        /* Same type as the file's (character sets do not convert). */
        hid_t mt = H5Tcopy(ft);
        H5Tset_size(mt, sz + 1);
        H5Tset_strpad(mt, H5T_STR_NULLTERM);
        if (!tmp || H5Aread(a, mt, tmp) < 0) {
            st = ns_error(NS_EFORMAT, "cannot read attribute '%s'", name);
        } else {
            tmp[sz] = '\0';
            snprintf(buf, len, "%s", tmp);
        }
        H5Tclose(mt);
        ns_free(tmp);
    }
    H5Tclose(ft);
    H5Aclose(a);
    return st;
}

static int get_numeric(hid_t loc, const char *obj, const char *name, hid_t mt,
                       void *val, size_t n, size_t *got)
{
    hid_t a = attr_open(loc, obj, name);
    if (a < 0)
        return NS_EFORMAT;
    hid_t sp = H5Aget_space(a);
    hssize_t cnt = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    int st = NS_OK;
    if (got)
        *got = cnt > 0 ? (size_t)cnt : 0;
    if (cnt < 1 || (size_t)cnt > n) {
        st = ns_error(NS_EFORMAT, "cannot read '%s': attribute '%s' has %lld values",
                      ns_h5_name(loc), name, (long long)cnt);
    } else if (H5Aread(a, mt, val) < 0) {
        st = ns_error(NS_EFORMAT, "cannot read '%s': attribute '%s' is not numeric",
                      ns_h5_name(loc), name);
    }
    H5Aclose(a);
    return st;
}

int ns_h5_get_double(hid_t loc, const char *obj, const char *name, double *val)
{
    return get_numeric(loc, obj, name, H5T_NATIVE_DOUBLE, val, 1, NULL);
}

int ns_h5_get_int(hid_t loc, const char *obj, const char *name, int64_t *val)
{
    return get_numeric(loc, obj, name, H5T_NATIVE_INT64, val, 1, NULL);
}

int ns_h5_get_doubles(hid_t loc, const char *obj, const char *name, double *val,
                      size_t n, size_t *got)
{
    return get_numeric(loc, obj, name, H5T_NATIVE_DOUBLE, val, n, got);
}

int ns_h5_get_num(hid_t loc, const char *obj, const char *name, double *d, int64_t *i,
                  int *is_int)
{
    *d = 0;
    *i = 0;
    *is_int = 0;
    hid_t a = attr_open(loc, obj, name);
    if (a < 0)
        return NS_EFORMAT;
    hid_t sp = H5Aget_space(a), ft = H5Aget_type(a);
    hssize_t cnt = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    H5T_class_t cls = ft >= 0 ? H5Tget_class(ft) : H5T_NO_CLASS;
    int st = NS_OK;
    if (cnt != 1) {
        st = ns_error(NS_EFORMAT, "cannot read '%s': attribute '%s' of '%s' has %lld values, "
                      "expected one", ns_h5_name(loc), name, obj, (long long)cnt);
    } else if (cls == H5T_INTEGER && H5Tget_sign(ft) == H5T_SGN_NONE) {
        uint64_t u;
        if (H5Aread(a, H5T_NATIVE_UINT64, &u) < 0) {
            st = NS_EFORMAT;
        } else if (u <= INT64_MAX) {
            *i = (int64_t)u;
            *d = (double)u;
            *is_int = 1;
        } else {
            *d = (double)u;   /* beyond int64: whole, but no option takes it */
        }
    } else if (cls == H5T_INTEGER) {
        if (H5Aread(a, H5T_NATIVE_INT64, i) < 0)
            st = NS_EFORMAT;
        *d = (double)*i;
        *is_int = 1;
    } else if (cls == H5T_FLOAT) {
        if (H5Aread(a, H5T_NATIVE_DOUBLE, d) < 0)
            st = NS_EFORMAT;
    } else {
        st = NS_EFORMAT;
    }
    if (st && cnt == 1)
        st = ns_error(NS_EFORMAT, "cannot read '%s': attribute '%s' of '%s' is not a number",
                      ns_h5_name(loc), name, obj);
    if (ft >= 0)
        H5Tclose(ft);
    if (sp >= 0)
        H5Sclose(sp);
    H5Aclose(a);
    return st;
}

/* ------------------------------------------------------------ datasets */

static int write_ds(hid_t loc, const char *path, hid_t ft, hid_t mt, int ndim,
                    const size_t *dims, const void *data)
{
    hsize_t hd[8];
    size_t total = 1;
    for (int i = 0; i < ndim; i++) {
        hd[i] = dims[i];
        total *= dims[i];
    }
    if (ns_h5_exists(loc, path))
        H5Ldelete(loc, path, H5P_DEFAULT);
    hid_t sp = H5Screate_simple(ndim, hd, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    /* Compress large data sets; small ones stay contiguous for speed. */
    if (total >= 65536 && ndim >= 1) {
        hsize_t chunk[8];
        size_t csz = 1;
        for (int i = ndim - 1; i >= 0; i--) {
            chunk[i] = hd[i];
            if (csz * hd[i] > 262144)
                chunk[i] = hd[i] ? (262144 / csz ? 262144 / csz : 1) : 1;
            csz *= chunk[i];
        }
        H5Pset_chunk(dcpl, ndim, chunk);
        H5Pset_deflate(dcpl, 4);
    }
    hid_t lcpl = lcpl_intermediate();
    hid_t d = H5Dcreate2(loc, path, ft, sp, lcpl, dcpl, H5P_DEFAULT);
    int st = NS_OK;
    if (d < 0 || H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
        char what[1100];
        snprintf(what, sizeof what, "data set '%s'", path);
        st = ns_h5_write_failed(loc, what);
    }
    if (d >= 0)
        H5Dclose(d);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return st;
}

int ns_h5_write_real(hid_t loc, const char *path, int ndim, const size_t *dims,
                     const ns_real *data)
{
#ifdef NS_DOUBLE
    return write_ds(loc, path, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, ndim, dims, data);
#else
    return write_ds(loc, path, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, ndim, dims, data);
#endif
}

int ns_h5_write_double(hid_t loc, const char *path, int ndim, const size_t *dims,
                       const double *data)
{
    return write_ds(loc, path, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, ndim, dims, data);
}

int ns_h5_write_int(hid_t loc, const char *path, int ndim, const size_t *dims,
                    const int64_t *data)
{
    return write_ds(loc, path, H5T_STD_I64LE, H5T_NATIVE_INT64, ndim, dims, data);
}

int ns_h5_describe(hid_t loc, const char *path, const char *description,
                   const char *units)
{
    int st = ns_h5_attr_str(loc, path, "description", description);
    if (!st && units)
        st = ns_h5_attr_str(loc, path, "units", units);
    return st;
}

int ns_h5_shape(hid_t loc, const char *path, int *ndim, size_t dims[8], size_t *n)
{
    if (!ns_h5_exists(loc, path))
        return ns_error(NS_EFORMAT, "cannot read '%s': data set '%s' is missing",
                        ns_h5_name(loc), path);
    hid_t d = H5Dopen2(loc, path, H5P_DEFAULT);
    if (d < 0)
        return ns_error(NS_EFORMAT, "cannot read '%s': '%s' is not a data set",
                        ns_h5_name(loc), path);
    hid_t sp = H5Dget_space(d);
    hsize_t hd[8];
    /* The rank first: HDF5 allows 32 dimensions, the buffer holds 8. */
    int nd = H5Sget_simple_extent_ndims(sp);
    if (nd >= 0 && nd <= 8)
        nd = H5Sget_simple_extent_dims(sp, hd, NULL);
    H5Sclose(sp);
    H5Dclose(d);
    if (nd < 0 || nd > 8)
        return ns_error(NS_EFORMAT, "cannot read '%s': bad shape of '%s'",
                        ns_h5_name(loc), path);
    size_t total = 1;
    for (int i = 0; i < nd; i++) {
        dims[i] = hd[i];
        if (hd[i] && total > (SIZE_MAX / sizeof(double)) / hd[i])
            return ns_error(NS_EFORMAT, "cannot read '%s': '%s' is too large",
                            ns_h5_name(loc), path);
        total *= hd[i];
    }
    *ndim = nd;
    *n = total;
    return NS_OK;
}

static int read_ds(hid_t loc, const char *path, hid_t mt, void *out, size_t n)
{
    int nd;
    size_t dims[8], total;
    int st = ns_h5_shape(loc, path, &nd, dims, &total);
    if (st)
        return st;
    if (total != n)
        return ns_error(NS_EFORMAT, "cannot read '%s': '%s' has %zu values, expected %zu",
                        ns_h5_name(loc), path, total, n);
    hid_t d = H5Dopen2(loc, path, H5P_DEFAULT);
    herr_t e = H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, out);
    H5Dclose(d);
    if (e < 0)
        return ns_error(NS_EFORMAT, "cannot read '%s': data set '%s' is damaged",
                        ns_h5_name(loc), path);
    return NS_OK;
}

int ns_h5_read_real(hid_t loc, const char *path, ns_real *out, size_t n)
{
#ifdef NS_DOUBLE
    return read_ds(loc, path, H5T_NATIVE_DOUBLE, out, n);
#else
    return read_ds(loc, path, H5T_NATIVE_FLOAT, out, n);
#endif
}

int ns_h5_read_double(hid_t loc, const char *path, double *out, size_t n)
{
    return read_ds(loc, path, H5T_NATIVE_DOUBLE, out, n);
}

int ns_h5_read_double_alloc(hid_t loc, const char *path, double **out, size_t *n)
{
    int nd;
    size_t dims[8];
    *out = NULL;
    int st = ns_h5_shape(loc, path, &nd, dims, n);
    if (st)
        return st;
    *out = ns_malloc((*n ? *n : 1) * sizeof **out);
    if (!*out)
        return NS_ENOMEM;
    st = read_ds(loc, path, H5T_NATIVE_DOUBLE, *out, *n);
    if (st) {
        ns_free(*out);
        *out = NULL;
    }
    return st;
}
