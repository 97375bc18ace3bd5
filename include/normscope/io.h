/*
 * normscope HDF5 files: atomic creation (written under a temporary name,
 * renamed when complete), attribute and dataset helpers, and the run file
 * of DESIGN.md section 3 (checkpoints of parameters and state by layer).
 * HDF5's own error printing is turned off; its failures are translated into
 * ns_error messages that name the file.  HDF5 itself stays behind this
 * header (DESIGN.md section 6): callers hold files and objects as ns_hid
 * handles and never include <hdf5.h>.
 */
#ifndef NORMSCOPE_IO_H
#define NORMSCOPE_IO_H

#include <stdint.h>

#include "normscope/nn.h"

/* An open HDF5 file or object: HDF5's hid_t (int64_t since HDF5 1.10;
 * src/io/h5.c checks that the two agree).  Negative is no handle. */
typedef int64_t ns_hid;
#define NS_HID_INVALID ((ns_hid)-1)

#define NS_RUN_FORMAT "normscope-run"
#define NS_RESULT_FORMAT "normscope-result"
#define NS_RESULT_FORMAT_VERSION 1
#define NS_RUN_FORMAT_VERSION 1

/* An HDF5 file being written under a temporary name, PATH.tmp-PID. */
typedef struct ns_h5out {
    ns_hid fid;
    char path[1024];  /* final name */
    char tmp[1100];   /* name while being written */
    int force;        /* commit may replace a file at path */
} ns_h5out;

/* Creates `path` for writing through a temporary file in the same
 * directory.  Refuses an existing path unless force (NS_EINVAL: "'x' exists;
 * use --force to overwrite"); NS_EIO when the directory is not writable,
 * NS_EWRITE when the disk is full.  Notes stale temporaries of path
 * (ns_out_note_stale). */
int ns_h5out_create(ns_h5out *o, const char *path, int force);
/* Starts from a copy of an existing file src (for resume/append); force as
 * for ns_h5out_create, checked at commit. */
int ns_h5out_from_copy(ns_h5out *o, const char *src, const char *path, int force);
/* Flushes, closes and moves the file into place (ns_out_publish).  A write
 * that fails here (HDF5 writes its metadata at flush and close) gives
 * NS_EWRITE naming path and the system's reason; a file that appeared at
 * path meanwhile, without force, NS_EINVAL.  On failure the temporary is
 * removed. */
int ns_h5out_commit(ns_h5out *o);
/* Closes and removes the temporary file; safe to call after commit. */
void ns_h5out_abort(ns_h5out *o);

/* Records NS_EWRITE "cannot write 'FILE': REASON (WHAT)" for an HDF5 write
 * on loc that has just failed: FILE is the final name of a file being
 * written, REASON the system's (e.g. "No space left on device") when HDF5
 * recorded one; what (may be NULL) names the object, e.g. "data set '/x'".
 * Call it before any other HDF5 call, which clears HDF5's error stack. */
int ns_h5_write_failed(ns_hid loc, const char *what);

/* ------------------------------------------------------- output files */

/* Moves the complete temporary tmp to path.  Without force, a file at path
 * is never replaced, even one that appeared since the command started:
 * NS_EINVAL "'x' was created by another process while this one wrote it; ...".
 * NS_EWRITE when the move fails.  tmp is left in place on failure. */
int ns_out_publish(const char *tmp, const char *path, int force);

/* NS_EINVAL "output 'OUT' is the input 'IN'; choose another -o" when out
 * exists and is the same file as one of inputs[0..n) (the same device and
 * inode: through a symbolic or hard link as well); NS_OK otherwise.  NULL
 * inputs are skipped. */
int ns_out_names_input(const char *out, const char *const *inputs, size_t n);

/* Notes on stderr (ns_note) every PATH.tmp-PID beside path whose process
 * no longer runs: a temporary left by a killed command.  Returns how many. */
size_t ns_out_note_stale(const char *path);

/* Temporaries removed when SIGINT, SIGTERM or SIGHUP ends the process
 * (where their action was the default when the first was registered):
 * files, then directories, which must be empty by then.  path is the final
 * name that messages use for tmp (NULL: tmp itself).  At most 64 at once. */
void ns_tmp_register(const char *tmp, const char *path);
void ns_tmp_forget(const char *tmp);

/* Opens an existing file read-only.  NS_EIO when missing or unreadable,
 * NS_EFORMAT when it is not HDF5. */
int ns_h5_open(const char *path, ns_hid *fid);
/* Opens a normscope file and checks its `format` attribute equals want
 * (NS_RUN_FORMAT or NS_RESULT_FORMAT): "not a normscope run file", and that
 * its `format_version` is an integer from 1 to the version this normscope
 * writes (NS_RUN_FORMAT_VERSION or NS_RESULT_FORMAT_VERSION): "format_version
 * 2 is newer than this normscope reads (1)".  NS_EFORMAT otherwise. */
int ns_h5_open_format(const char *path, const char *want, ns_hid *fid);
void ns_h5_close(ns_hid fid);

/* 1 if the link path exists (intermediate groups included), else 0. */
int ns_h5_exists(ns_hid loc, const char *path);
/* Creates the group path with intermediate groups if missing. */
int ns_h5_group(ns_hid loc, const char *path);
/* Removes the link path (a group with all below it, or a data set) when it
 * exists; NS_OK when there is none.  NS_EWRITE naming the file when the
 * removal fails.  The space is not reclaimed before the file is repacked. */
int ns_h5_delete(ns_hid loc, const char *path);

/* Attributes on the object at obj ("." for loc itself). */
/* 1 if obj exists and has the attribute name, else 0. */
int ns_h5_attr_exists(ns_hid loc, const char *obj, const char *name);
int ns_h5_attr_str(ns_hid loc, const char *obj, const char *name, const char *val);
int ns_h5_attr_double(ns_hid loc, const char *obj, const char *name, double val);
int ns_h5_attr_int(ns_hid loc, const char *obj, const char *name, int64_t val);
int ns_h5_attr_doubles(ns_hid loc, const char *obj, const char *name,
                       const double *val, size_t n);
/* Readers: NS_EFORMAT naming the attribute when it is missing. */
int ns_h5_get_str(ns_hid loc, const char *obj, const char *name, char *buf, size_t len);
int ns_h5_get_double(ns_hid loc, const char *obj, const char *name, double *val);
int ns_h5_get_int(ns_hid loc, const char *obj, const char *name, int64_t *val);
/* Reads up to n doubles; *got receives the attribute's length. */
int ns_h5_get_doubles(ns_hid loc, const char *obj, const char *name, double *val,
                      size_t n, size_t *got);
/* One numeric value as stored: an integer type gives *is_int = 1 and *i
 * (values beyond int64 give *is_int = 0), a floating-point one *is_int = 0;
 * *d receives the value either way.  NS_EFORMAT naming the attribute when
 * it is missing, not numeric or not exactly one value. */
int ns_h5_get_num(ns_hid loc, const char *obj, const char *name, double *d, int64_t *i,
                  int *is_int);

/* Datasets (groups on the path are created).  Chunked + deflate when
 * compress is set. */
int ns_h5_write_real(ns_hid loc, const char *path, int ndim, const size_t *dims,
                     const ns_real *data);
int ns_h5_write_double(ns_hid loc, const char *path, int ndim, const size_t *dims,
                       const double *data);
int ns_h5_write_int(ns_hid loc, const char *path, int ndim, const size_t *dims,
                    const int64_t *data);
/* Sets the `description` (and `units` when not NULL) attributes. */
int ns_h5_describe(ns_hid loc, const char *path, const char *description,
                   const char *units);
/* Reads a dataset of exactly n values into ns_real / double (converting).
 * NS_EFORMAT when missing or of another size. */
int ns_h5_read_real(ns_hid loc, const char *path, ns_real *out, size_t n);
int ns_h5_read_double(ns_hid loc, const char *path, double *out, size_t n);
/* Size (number of values) and shape of a dataset. */
int ns_h5_shape(ns_hid loc, const char *path, int *ndim, size_t dims[8], size_t *n);
/* Reads a whole 1-D/2-D dataset into a new double array. */
int ns_h5_read_double_alloc(ns_hid loc, const char *path, double **out, size_t *n);

/* The file name HDF5 reports for loc (for error messages). */
const char *ns_h5_name(ns_hid loc);

/* ------------------------------------------------------ walking a file */

/* What a reader of any HDF5 file needs (`normscope info`, figures that
 * list checkpoints): the links of a group, every object below it, the
 * attributes of an object with their values, the shape and element type
 * of a data set, and the JSON form of attributes.  Odd objects (soft
 * links, named types, attributes of unusual types) are reported as such,
 * never refused. */

/* Element type classes of attributes and data sets. */
typedef enum ns_h5_class {
    NS_H5_UNREADABLE = 0,   /* missing, or could not be opened or read */
    NS_H5_INT,
    NS_H5_FLOAT,
    NS_H5_STRING,
    NS_H5_ENUM,
    NS_H5_COMPOUND,
    NS_H5_OTHER
} ns_h5_class;

/* Names of the links of group (one level, any kind of link) in name
 * order; free with ns_h5_names_free.  NS_EFORMAT naming the file when
 * group is missing or not a group, or when the listing fails; NS_ENOMEM. */
int ns_h5_children(ns_hid loc, const char *group, char ***names, size_t *n);

/* Names of the attributes of obj: sorted by name when sorted, else in the
 * order HDF5 keeps them (creation order while they are few, the order of
 * its name index when many).  An obj that is missing or cannot be opened
 * has none (NS_OK, *n = 0).  NS_ENOMEM or NS_EFORMAT (listing failed):
 * *names still holds those read before the failure. */
int ns_h5_attr_names(ns_hid loc, const char *obj, int sorted, char ***names, size_t *n);
/* Frees a list of names (NULL is safe). */
void ns_h5_names_free(char **names, size_t n);

#define NS_H5_VALUES_MAX 64     /* numbers an ns_h5_value holds */
#define NS_H5_STR_MAX 8192      /* bytes of a string value, with its NUL */

/* The value of an attribute as stored. */
typedef struct ns_h5_value {
    ns_h5_class cls;        /* NS_H5_UNREADABLE: missing or unreadable */
    int64_t count;          /* number of values (-1 when HDF5 cannot say) */
    int array;              /* stored with at least one dimension, not as
                             * a scalar (h5py writes lists so) */
    int held;               /* 1: the value is below (one string or enum
                             * member; 1..NS_H5_VALUES_MAX numbers);
                             * 0: a kind or count that is not read */
    size_t n;               /* numbers in num (NS_H5_INT, NS_H5_FLOAT) */
    double num[NS_H5_VALUES_MAX];
    char str[NS_H5_STR_MAX];   /* NS_H5_STRING: the string (cut at
                                * NS_H5_STR_MAX - 1 bytes); NS_H5_ENUM: the
                                * member's name (h5py's booleans are the
                                * members FALSE and TRUE) */
} ns_h5_value;

/* Reads the attribute name of obj into *v; what cannot be read shows in
 * v->cls and v->held rather than as an error. */
void ns_h5_attr_value(ns_hid loc, const char *obj, const char *name, ns_h5_value *v);

/* One object met by ns_h5_walk. */
typedef struct ns_h5_object {
    const char *path;       /* relative to the group walked ("ntk/0/kernel") */
    int dataset;            /* 1: a data set, 0: a group */
    int64_t count;          /* data sets: number of values (-1 unknown) */
} ns_h5_object;

/* Return NS_OK to go on, another status to stop the walk with it. */
typedef int ns_h5_walk_fn(void *ctx, const ns_h5_object *o);

/* Calls fn for every group and data set below group (not group itself),
 * recursively, in HDF5's name order, a group before what it holds.  Only
 * objects reached through hard links, unless follow: then also the
 * targets of soft and external links that can be opened (listed under
 * the link's name, not descended into).  Named types are skipped.
 * Returns fn's status when it stopped the walk; NS_EFORMAT naming the
 * file when group cannot be opened or walked. */
int ns_h5_walk(ns_hid loc, const char *group, int follow, ns_h5_walk_fn *fn, void *ctx);

/* Shape and element type of a data set. */
typedef struct ns_h5_dsinfo {
    ns_h5_class cls;        /* NS_H5_UNREADABLE when it cannot be opened */
    int ndim;               /* -1: unknown, or more than 8 dimensions */
    uint64_t dims[8];
    size_t bits;            /* bits of one element */
    char type[32];          /* "float64", "int32", "uint8", "string", "enum",
                             * "compound", "other"; "?" when unreadable */
} ns_h5_dsinfo;
void ns_h5_dataset_info(ns_hid loc, const char *path, ns_h5_dsinfo *d);

/* The JSON form of a value (ns_sb of core.h): a string; true or false for
 * h5py's booleans, the member's name for other enums; a number, or an
 * array of numbers when stored as an array; null for what is not held. */
void ns_h5_json_value(ns_sb *b, const ns_h5_value *v);
/* The attributes of obj as one JSON object, sorted by name ({} when it
 * has none or is missing). */
void ns_h5_json_attrs(ns_sb *b, ns_hid loc, const char *obj);

/* ----------------------------------------------------------- run files */

/* Writes /checkpoints/<step>/{params,state}/<layer>/<name>. */
int ns_run_write_checkpoint(ns_hid fid, const ns_net *net, uint64_t step);
/* Loads parameters and state of a checkpoint into net.  Every tensor must
 * be present with the tensor's shape (dims, not only the count), hold
 * finite values, and non-negative ones where its flags say NS_TENSOR_NONNEG;
 * otherwise NS_EFORMAT with one line naming the file, the data set and the
 * problem ("cannot read 'run.h5': /checkpoints/469/state/01-bn/running_var
 * holds negative values").  NS_EINVAL when there is no such checkpoint. */
int ns_run_read_checkpoint(ns_hid fid, ns_net *net, uint64_t step);
/* Steps of all checkpoints, ascending (caller frees with ns_free). */
int ns_run_checkpoints(ns_hid fid, uint64_t **steps, size_t *n);

/* The root attributes of a result file: format, format_version,
 * normscope_version, created, command_line. */
int ns_result_file_attrs(ns_hid fid, const char *cmdline);

/* Writes the standard attributes of a result group: command line, source
 * run file and checkpoint, mode, seed, version, created. */
int ns_result_group_attrs(ns_hid fid, const char *group, const char *cmdline,
                          const char *source, const char *mode, uint64_t seed);

/* ISO 8601 UTC time of now into buf. */
void ns_iso_time(char *buf, size_t len);

/* ------------------------------------------- kernels in result files */

/* An NTK sink (ns_ntk_sink of ntk.h: pass ns_ntk_h5sink_put with a pointer
 * to this) that writes tiles into a 2-D data set of an open HDF5 file
 * (created by the caller, double or float, chunked).  A failed write gives
 * NS_EWRITE naming the file (ns_h5_write_failed). */
typedef struct ns_ntk_h5sink {
    ns_hid dset;
    int single;             /* 1: the data set holds floats (written as such),
                             * 0: doubles */
    float *buf;             /* scratch for the float conversion */
    size_t buf_len;
} ns_ntk_h5sink;
int ns_ntk_h5sink_put(void *ctx, size_t r0, size_t c0, size_t nr, size_t nc, const double *tile);
void ns_ntk_h5sink_free(ns_ntk_h5sink *s);

/* Matrix-vector products (ns_matvec_fn of eig.h: ns_matvec_h5 with a
 * pointer to this) with a symmetric dim x dim data set read in row blocks
 * of about mem bytes.  init does not take ownership of dset; free releases
 * the buffer and the data set reopened with a chunk cache. */
typedef struct ns_h5_matvec {
    ns_hid dset;
    size_t dim, rows;       /* rows per read */
    int single;             /* the data set holds floats (read as such) */
    int upper;              /* symmetric: read only the blocks on and above the
                             * diagonal, half the data (set after init) */
    size_t cc;              /* chunk columns (1 when not chunked) */
    ns_hid own;             /* the data set reopened with a chunk cache */
    void *buf;
} ns_h5_matvec;
int ns_h5_matvec_init(ns_h5_matvec *m, ns_hid dset, size_t dim, size_t mem);
int ns_matvec_h5(void *ctx, const double *x, double *y);
void ns_h5_matvec_free(ns_h5_matvec *m);

#endif
