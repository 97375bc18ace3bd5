/* Tests of output files (include/normscope/io.h): writes that fail on a
 * full disk, the final move that never replaces a file which appeared
 * meanwhile, outputs that name an input, stale temporaries, and ns_train's
 * stop flag before anything is written.  A full disk is a file-size limit
 * (RLIMIT_FSIZE with SIGXFSZ ignored), so writes fail with EFBIG. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "normscope/io.h"
#include "normscope/train.h"
#include "testutil.h"

static struct rlimit saved_limit;

/* Writes beyond `bytes` fail with EFBIG from here on. */
static void limit_file_size(rlim_t bytes)
{
    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved_limit), 0);
    struct rlimit r = saved_limit;
    r.rlim_cur = bytes;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &r), 0);
}

static void unlimit_file_size(void)
{
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved_limit), 0);
}

static int exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

static void check_text(const char *path, const char *text)
{
    char buf[256] = "";
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    buf[k] = '\0';
    fclose(f);
    ck_assert_str_eq(buf, text);
}

/* A data set larger than the limit: NS_EWRITE naming the final file (not
 * its temporary), the system's reason and the data set; abort leaves
 * nothing. */
START_TEST(test_write_fails_in_data_set)
{
    const char *p = ns_test_path("full-ds.h5");
    ns_h5out o;
    ck_assert_int_eq(ns_h5out_create(&o, p, 0), NS_OK);
    char tmp[sizeof o.tmp];
    snprintf(tmp, sizeof tmp, "%s", o.tmp);
    size_t n = 300000, dims[1] = {n};
    double *v = malloc(n * sizeof *v);
    ck_assert_ptr_nonnull(v);
    uint64_t x = 2385;   /* values that deflate cannot shrink */
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        v[i] = (double)(x >> 11) * 0x1p-53;
    }
    limit_file_size(64 << 10);
    int st = ns_h5_write_double(o.fid, "/big", 1, dims, v);
    ns_h5out_abort(&o);
    unlimit_file_size();
    free(v);
    ck_assert_int_eq(st, NS_EWRITE);
    char want[1200];
    snprintf(want, sizeof want, "cannot write '%s': %s (data set '/big')", p, strerror(EFBIG));
    ck_assert_str_eq(ns_errmsg(), want);
    ck_assert(!exists(tmp));
    ck_assert(!exists(p));
}
END_TEST

/* Writes that HDF5 keeps in memory fail only when it flushes them, at
 * commit: NS_EWRITE, nothing left, and HDF5 still works afterwards (a failed
 * close once crashed the process at exit). */
START_TEST(test_write_fails_at_commit)
{
    const char *p = ns_test_path("full-commit.h5");
    ns_h5out o;
    ck_assert_int_eq(ns_h5out_create(&o, p, 0), NS_OK);
    char tmp[sizeof o.tmp];
    snprintf(tmp, sizeof tmp, "%s", o.tmp);
    struct stat sb;
    ck_assert_int_eq(stat(tmp, &sb), 0);
    limit_file_size((rlim_t)sb.st_size + 512);
    int st = NS_OK;
    for (int i = 0; i < 64 && !st; i++) {
        char g[64];
        snprintf(g, sizeof g, "/group-%02d", i);
        st = ns_h5_group(o.fid, g);
        if (!st)
            st = ns_h5_attr_str(o.fid, g, "description", "a group with an attribute, "
                                "kept in HDF5's metadata cache until the file is flushed");
    }
    ck_assert_int_eq(st, NS_OK);
    st = ns_h5out_commit(&o);
    unlimit_file_size();
    ck_assert_int_eq(st, NS_EWRITE);
    char want[1200];
    snprintf(want, sizeof want, "cannot write '%s': %s", p, strerror(EFBIG));
    ck_assert_str_eq(ns_errmsg(), want);
    ck_assert(!exists(tmp));
    ck_assert(!exists(p));
    ns_h5out_abort(&o);   /* safe after a failed commit */
    ck_assert_int_eq(ns_h5out_create(&o, p, 0), NS_OK);
    ck_assert_int_eq(ns_h5_attr_int(o.fid, ".", "answer", 42), NS_OK);
    ck_assert_int_eq(ns_h5out_commit(&o), NS_OK);
    ns_hid fid;
    int64_t v = 0;
    ck_assert_int_eq(ns_h5_open(p, &fid), NS_OK);
    ck_assert_int_eq(ns_h5_get_int(fid, ".", "answer", &v), NS_OK);
    ns_h5_close(fid);
    ck_assert_int_eq(v, 42);
}
END_TEST

/* While a file is written, messages name it by its final name. */
START_TEST(test_name_while_written)
{
    const char *p = ns_test_path("named.h5");
    ns_h5out o;
    ck_assert_int_eq(ns_h5out_create(&o, p, 0), NS_OK);
    ck_assert_str_eq(ns_h5_name(o.fid), p);
    ns_h5out_abort(&o);
}
END_TEST

/* Without force an existing target is never replaced; with force it is. */
START_TEST(test_publish)
{
    const char *a = ns_test_path("pub-a.tmp"), *b = ns_test_path("pub-b");
    write_text(a, "new");
    write_text(b, "old");
    ck_assert_int_eq(ns_out_publish(a, b, 0), NS_EINVAL);
    ck_assert_ptr_nonnull(strstr(ns_errmsg(), "was created by another process"));
    check_text(b, "old");
    check_text(a, "new");
    ck_assert_int_eq(ns_out_publish(a, b, 1), NS_OK);
    check_text(b, "new");
    ck_assert(!exists(a));
    write_text(a, "newer");
    unlink(b);
    ck_assert_int_eq(ns_out_publish(a, b, 0), NS_OK);
    check_text(b, "newer");
    ck_assert(!exists(a));
}
END_TEST

/* A file that appears at the target while it is written (another command
 * writing the same name) stays; the commit fails with NS_EINVAL and removes
 * its temporary. */
START_TEST(test_commit_keeps_newcomer)
{
    const char *p = ns_test_path("raced.h5");
    ns_h5out o;
    ck_assert_int_eq(ns_h5out_create(&o, p, 0), NS_OK);
    char tmp[sizeof o.tmp];
    snprintf(tmp, sizeof tmp, "%s", o.tmp);
    write_text(p, "the other one");
    ck_assert_int_eq(ns_h5out_commit(&o), NS_EINVAL);
    char want[1200];
    snprintf(want, sizeof want, "'%s' was created by another process while this one wrote "
             "it; it is left as it is (use --force to overwrite)", p);
    ck_assert_str_eq(ns_errmsg(), want);
    check_text(p, "the other one");
    ck_assert(!exists(tmp));
    /* With force the newcomer is replaced. */
    ck_assert_int_eq(ns_h5out_create(&o, p, 1), NS_OK);
    ck_assert_int_eq(ns_h5out_commit(&o), NS_OK);
    ns_hid fid;
    ck_assert_int_eq(ns_h5_open(p, &fid), NS_OK);
    ns_h5_close(fid);
}
END_TEST

/* The same file under any name: itself, a symbolic link, a hard link. */
START_TEST(test_names_input)
{
    char in[1100], sym[1100], hard[1100], other[1100], none[1100];
    snprintf(in, sizeof in, "%s", ns_test_path("in.h5"));
    snprintf(sym, sizeof sym, "%s", ns_test_path("sym.h5"));
    snprintf(hard, sizeof hard, "%s", ns_test_path("hard.h5"));
    snprintf(other, sizeof other, "%s", ns_test_path("other.h5"));
    snprintf(none, sizeof none, "%s", ns_test_path("none.h5"));
    write_text(in, "run");
    write_text(other, "run");
    ck_assert_int_eq(symlink(in, sym), 0);
    ck_assert_int_eq(link(in, hard), 0);
    const char *inputs[3] = {other, NULL, in};
    ck_assert_int_eq(ns_out_names_input(in, inputs, 3), NS_EINVAL);
    char want[2400];
    snprintf(want, sizeof want, "output '%s' is the input '%s'; choose another -o", in, in);
    ck_assert_str_eq(ns_errmsg(), want);
    ck_assert_int_eq(ns_out_names_input(sym, inputs, 3), NS_EINVAL);
    ck_assert_int_eq(ns_out_names_input(hard, inputs, 3), NS_EINVAL);
    ck_assert_int_eq(ns_out_names_input(hard, inputs, 2), NS_OK);   /* only other */
    ck_assert_int_eq(ns_out_names_input(none, inputs, 3), NS_OK);
    const char *lone[1] = {sym};
    ck_assert_int_eq(ns_out_names_input(in, lone, 1), NS_EINVAL);
}
END_TEST

/* A pid that no longer runs: a child that has exited and been reaped. */
static long dead_pid(void)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
    return (long)pid;
}

START_TEST(test_stale_temporaries)
{
    ns_progress_set_quiet(1);
    ck_assert_int_eq(ns_test_system("mkdir -p %s", ns_test_path("stale")), 0);
    char base[1100], f[1300];
    snprintf(base, sizeof base, "%s/run.h5", ns_test_path("stale"));
    long dead = dead_pid();
    ck_assert_uint_eq(ns_out_note_stale(base), 0);
    const char *live[] = {".tmp-%ld", ".tmp-", ".tmp-12x", "x.tmp-%ld", ".tmp-%ldx"};
    for (size_t i = 0; i < sizeof live / sizeof *live; i++) {
        char suffix[64];
        snprintf(suffix, sizeof suffix, live[i], i == 0 ? (long)getpid() : dead);
        snprintf(f, sizeof f, "%s%s", base, suffix);
        write_text(f, "");
    }
    /* Our own temporary, malformed names and other files are not stale. */
    ck_assert_uint_eq(ns_out_note_stale(base), 0);
    snprintf(f, sizeof f, "%s.tmp-%ld", base, dead);
    write_text(f, "");
    ck_assert_uint_eq(ns_out_note_stale(base), 1);
    /* pid 1 runs (for another user kill() says EPERM: running too). */
    snprintf(f, sizeof f, "%s.tmp-1", base);
    write_text(f, "");
    ck_assert_uint_eq(ns_out_note_stale(base), 1);
}
END_TEST

/* A stop asked for before training starts writes nothing. */
START_TEST(test_train_stopped_before_start)
{
    ns_progress_set_quiet(1);
    ns_train_config c;
    ns_train_config_default(&c);
    snprintf(c.arch, sizeof c.arch, "mlp:16x1");
    snprintf(c.data, sizeof c.data, "gauss:3:5:96");
    c.epochs = 1;
    c.batch = 32;
    c.threads = 2;
    const char *p = ns_test_path("stopped.h5");
    volatile sig_atomic_t stop = 1;
    ns_train_result r;
    ck_assert_int_eq(ns_train(&c, NULL, p, 0, "test", &stop, &r), NS_EFAIL);
    ck_assert_str_eq(ns_errmsg(), "interrupted before training started; nothing written");
    ck_assert(!exists(p));
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", p, (long)getpid());
    ck_assert(!exists(tmp));
    stop = 0;
    ck_assert_int_eq(ns_train(&c, NULL, p, 0, "test", &stop, &r), NS_OK);
    ck_assert_int_eq(r.interrupted, 0);
    ck_assert(exists(p));
}
END_TEST

int main(void)
{
    ns_set_threads(2);
    Suite *s = suite_create("output");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_write_fails_in_data_set);
    tcase_add_test(tc, test_write_fails_at_commit);
    tcase_add_test(tc, test_name_while_written);
    tcase_add_test(tc, test_publish);
    tcase_add_test(tc, test_commit_keeps_newcomer);
    tcase_add_test(tc, test_names_input);
    tcase_add_test(tc, test_stale_temporaries);
    tcase_add_test(tc, test_train_stopped_before_start);
    suite_add_tcase(s, tc);
    return ns_test_run(s);
}
