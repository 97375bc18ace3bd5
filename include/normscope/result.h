/*
 * Result files (DESIGN.md sections 3 and 6, "results"): one writer for every
 * analysis.  The file is written under a temporary name and moved into place
 * by ns_result_commit (ns_h5out of io.h: a full disk gives NS_EWRITE naming
 * the file, nothing is left behind); the root carries format, version,
 * creation time and command line; each analysis group carries its
 * provenance (source run, mode, seed, command line, version); data sets
 * carry `description` and, where meaningful, `units`.  Matrices too large
 * for memory are written tile by tile into chunked data sets and read back
 * in row blocks.  The writer is opaque: no HDF5 in this API.
 */
#ifndef NORMSCOPE_RESULT_H
#define NORMSCOPE_RESULT_H

#include <stddef.h>
#include <stdint.h>

#include "normscope/core.h"

typedef struct ns_result ns_result;

/* Where a group's results come from. */
typedef struct ns_provenance {
    const char *cmdline;    /* the command line (NULL: "") */
    const char *source;     /* the run file (NULL: "") */
    const char *mode;       /* "eval", "batch", "recal" (NULL: "") */
    uint64_t seed;
} ns_provenance;

/* Creates the result file path (refusing an existing one unless force,
 * NS_EINVAL; and one that names an input: inputs[0..ninputs), NULL items
 * skipped, NS_EINVAL "output 'OUT' is the input 'IN'; choose another -o")
 * with the root attributes; *r is owned by the caller (ns_result_commit or
 * ns_result_free).  Errors of ns_h5out_create. */
int ns_result_create(ns_result **r, const char *path, int force, const char *cmdline,
                     const char *const *inputs, size_t ninputs);
/* Moves the complete file into place and frees r (also on failure, when
 * the temporary is removed).  Errors of ns_h5out_commit. */
int ns_result_commit(ns_result *r);
/* Abandons the file (the temporary is removed) and frees r; NULL is safe. */
void ns_result_free(ns_result *r);
/* The final name of the file. */
const char *ns_result_path(const ns_result *r);

/* Creates group (and intermediate groups); with prov, stamps its provenance:
 * command_line, source, mode, seed, normscope_version, created. */
int ns_result_group(ns_result *r, const char *group, const ns_provenance *prov);

/* Data sets at path (groups on the way created), with their description
 * and units (NULL: none).  dims: ndim sizes, data row-major. */
int ns_result_write_double(ns_result *r, const char *path, int ndim, const size_t *dims,
                           const double *data, const char *description, const char *units);
int ns_result_write_int(ns_result *r, const char *path, int ndim, const size_t *dims,
                        const int64_t *data, const char *description, const char *units);
/* Attributes of the object at obj. */
int ns_result_attr_str(ns_result *r, const char *obj, const char *name, const char *val);
int ns_result_attr_double(ns_result *r, const char *obj, const char *name, double val);
int ns_result_attr_int(ns_result *r, const char *obj, const char *name, int64_t val);
int ns_result_attr_doubles(ns_result *r, const char *obj, const char *name, const double *val,
                           size_t n);
/* Sets description and units (NULL: none) of an existing object. */
int ns_result_describe(ns_result *r, const char *path, const char *description,
                       const char *units);

/* ------------------------------------------- matrices larger than memory */

typedef struct ns_result_matrix ns_result_matrix;

/* Creates a rows x cols data set of ns_real at path, chunked in squares of
 * at most chunk (1024 when 0), for writing tile by tile with
 * ns_result_matrix_put (an ns_ntk_sink put: pass the matrix as ctx).
 * NS_EWRITE when it cannot be created. */
int ns_result_matrix_create(ns_result *r, const char *path, size_t rows, size_t cols,
                            size_t chunk, ns_result_matrix **m);
int ns_result_matrix_put(void *ctx, size_t r0, size_t c0, size_t nr, size_t nc,
                         const double *tile);
/* Writes out what is still cached (a full disk shows here as NS_EWRITE
 * naming the file, not later as a failed read) and frees m; NULL is safe.
 * flush = 0 only frees (after an error). */
int ns_result_matrix_close(ns_result_matrix *m, int flush);

/* Rows r0..r0+nr of the 2-D data set path (cols columns) into buf as
 * doubles.  NS_EIO naming the data set when it cannot be read. */
int ns_result_read_rows(ns_result *r, const char *path, size_t r0, size_t nr, size_t cols,
                        double *buf);

/* Products with the symmetric dim x dim data set at path read back in row
 * blocks of about mem bytes (only its upper part: half the reads): an
 * ns_matvec_fn (eig.h) through ns_result_matvec with the handle as ctx. */
typedef struct ns_result_op ns_result_op;
int ns_result_op_open(ns_result *r, const char *path, size_t dim, size_t mem,
                      ns_result_op **op);
int ns_result_matvec(void *ctx, const double *x, double *y);
void ns_result_op_close(ns_result_op *op);

#endif
