/* Helpers shared by the Check suites. */
#ifndef NS_TESTUTIL_H
#define NS_TESTUTIL_H

#include <check.h>
#include <hdf5.h>
#include <stddef.h>

#include "normscope/core.h"
#include "normscope/nn.h"

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

/* ---- PyTorch cross-checks (tests/torch_ref.py) ---- */

/* Writes a network (layer kinds, wiring, geometry, parameters and state in
 * PyTorch's layout), a batch of n samples x with labels y, and the mode
 * (NS_MODE_TRAIN or NS_MODE_EVAL) to path in the layout torch_ref.py reads.
 * Geometry comes from the expanded architecture string; each layer in a
 * `norm` slot is tagged with net->opts.norm, an explicit `bn` with "bn",
 * MimicNorm's last BN with "lastbn"; dense and conv layers carry their
 * weight rule, and the root the normalization options of net->opts.
 * Does not use Check's asserts, so it may run outside a test: returns 0, or
 * -1 after a message on stderr. */
int ns_test_torch_write(const char *path, const ns_net *net, const ns_real *x,
                        const int32_t *y, size_t n, ns_mode mode);

/* Additions to a file ns_test_torch_write made, for what one network and
 * batch do not say (training batches, settings, random draws): a dataset
 * of doubles or of int32 (groups on its path are created), a numeric
 * attribute of an object ("/": the root).  Return 0, or -1 after a message
 * on stderr. */
int ns_test_h5_add(const char *path, const char *dset, int rank, const size_t *dims,
                   const double *v);
int ns_test_h5_add_int(const char *path, const char *dset, size_t n, const int32_t *v);
int ns_test_h5_set_attr(const char *path, const char *obj, const char *name, double v);

/* Reads the dataset `path` of f, which must hold exactly n values, as
 * doubles into a new buffer (fails the test otherwise). */
double *ns_test_read_ref(hid_t f, const char *path, size_t n);

/* Fails the test unless max |a - ref| / max(max |ref|, floor) < tol; cs and
 * what name the case and the tensor in the message (NS_TEST_VERBOSE=1
 * prints every error). */
void ns_test_compare(const char *cs, const char *what, const ns_real *a, const double *ref,
                     size_t n, double floor, double tol);

/*
 * One interpreter for all of a suite's PyTorch references: checks that
 * python with torch and h5py and every file in need (NULL-terminated,
 * paths from the source root) exist, writes each case with write_case(i)
 * (which returns 0, or fills why and returns nonzero), then runs
 * `python SCRIPT IN_0 OUT_0 IN_1 OUT_1 ...`.  problem receives "" when the
 * references were computed, otherwise why not.  Call it from main(),
 * before the tests fork.
 */
void ns_test_compute_refs(const char *script, const char *const *need, size_t n,
                          int (*write_case)(size_t i, char *why, size_t len),
                          const char *(*in_path)(size_t i), const char *(*out_path)(size_t i),
                          char *problem, size_t len);

/* Runs the suite and returns a process exit status. */
int ns_test_run(Suite *s);

#endif
