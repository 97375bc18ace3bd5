/* Helpers shared by the Check suites. */
#ifndef NS_TESTUTIL_H
#define NS_TESTUTIL_H

#include <check.h>
#include <stddef.h>

#include "normscope/core.h"

/* A fresh temporary directory for this test process (removed by the OS
 * tmp cleaner; tests put their files inside).  Returns a static buffer. */
const char *ns_test_tmpdir(void);

/* Joins the temporary directory and a file name into a static buffer
 * (up to 8 live results, round-robin). */
const char *ns_test_path(const char *name);

/* The Python interpreter with torch and h5py ($PYTHON or /usr/bin/python3),
 * or NULL when it cannot import them. */
const char *ns_test_python(void);

/* Runs a shell command; returns its exit status (-1 if it did not run). */
int ns_test_system(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Max |a-b| / max(|b|, floor) over n values. */
double ns_test_relerr(const ns_real *a, const ns_real *b, size_t n, double floor);
double ns_test_relerr_d(const double *a, const double *b, size_t n, double floor);

/* Runs the suite and returns a process exit status. */
int ns_test_run(Suite *s);

#endif
