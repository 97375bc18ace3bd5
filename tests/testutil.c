/* Helpers shared by the Check suites. */
#include "testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

const char *ns_test_tmpdir(void)
{
    static char dir[256];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/nstest-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            abort();
        }
    }
    return dir;
}

const char *ns_test_path(const char *name)
{
    static char buf[8][512];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, 512, "%s/%s", ns_test_tmpdir(), name);
    return b;
}

const char *ns_test_python(void)
{
    static int probed;
    static char py[256];
    if (!probed) {
        probed = 1;
        const char *p = getenv("PYTHON");
        snprintf(py, sizeof py, "%s", p && *p ? p : "/usr/bin/python3");
        if (ns_test_system("%s -c 'import torch, h5py' >/dev/null 2>&1", py) != 0)
            py[0] = '\0';
    }
    return py[0] ? py : NULL;
}

int ns_test_system(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

double ns_test_relerr(const ns_real *a, const ns_real *b, size_t n, double floor)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double den = fabs((double)b[i]);
        if (den < floor)
            den = floor;
        double e = fabs((double)a[i] - (double)b[i]) / den;
        if (!(e <= worst))
            worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

double ns_test_relerr_d(const double *a, const double *b, size_t n, double floor)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double den = fabs(b[i]);
        if (den < floor)
            den = floor;
        double e = fabs(a[i] - b[i]) / den;
        if (!(e <= worst))
            worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

int ns_test_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
