/*
 * normscope core: scalar type, status codes and the error handler,
 * checked allocation, a string builder, the random number generator,
 * BLAS/thread glue and progress reporting.  Every other module builds on this header.
 */
#ifndef NORMSCOPE_CORE_H
#define NORMSCOPE_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define NS_VERSION "0.1.0"

/* The network's scalar type: float unless built with PRECISION=double. */
#ifdef NS_DOUBLE
typedef double ns_real;
#define NS_REAL_NAME "double"
#else
typedef float ns_real;
#define NS_REAL_NAME "float"
#endif

/* ---------------------------------------------------------------- status */

/* Status codes returned by every library function (0 is success). */
enum ns_status {
    NS_OK = 0,
    NS_EINVAL,   /* bad argument or option value */
    NS_EIO,      /* file cannot be opened, read or written */
    NS_EFORMAT,  /* file exists but has the wrong format or is truncated */
    NS_ENOMEM,   /* allocation failed or a memory limit is too small */
    NS_ENUMERIC, /* NaN or inf where a finite number is required */
    NS_EFAIL,    /* the work failed (third-party error, internal error) */
    NS_EWRITE    /* an output could not be written (disk full, file too large,
                  * I/O error): the work failed, not the input */
};

/* Handler called with every error raised through ns_error(). */
typedef void ns_error_handler(int status, const char *msg);

/* Records an error message (printf-style, lowercase, no final full stop),
 * passes it to the handler and returns status, so library code can write
 * `return ns_error(NS_EINVAL, "bad width '%s'", s);`. */
int ns_error(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The message of the most recent error of this thread ("" if none). */
const char *ns_errmsg(void);

/* Clears the recorded error message. */
void ns_error_clear(void);

/* Replaces the handler (NULL: record only, print nothing; the default).
 * Returns the previous one. */
ns_error_handler *ns_set_error_handler(ns_error_handler *h);

/* Short name of a status code ("bad input", "out of memory", ...). */
const char *ns_strstatus(int status);

/* 1 when the status means the user's input was wrong (CLI exit code 2). */
int ns_status_is_input(int status);

/* ---------------------------------------------------------- allocation */

/* malloc/calloc that record NS_ENOMEM with the size on failure.  Memory is
 * 64-byte aligned; release with ns_free (NULL is safe). */
void *ns_malloc(size_t bytes);
void *ns_calloc(size_t count, size_t size);
void ns_free(void *p);

/* Multiplies with overflow check; returns 0 on overflow and records
 * NS_ENOMEM. */
size_t ns_mul_size(size_t a, size_t b);

/* Peak resident set size of this process in bytes (getrusage). */
size_t ns_peak_rss(void);

/* --------------------------------------------------------- strings */

/* A growing string: text of unbounded length (a report, a gnuplot
 * variable) built by appending.  Zero-initialised (NS_SB_INIT or
 * ns_sb_init) it is empty and owns nothing; ns_sb_release frees it.
 * An append that fails (out of memory, or a format vsnprintf refuses)
 * sets failed and leaves the text as it was; later appends do nothing,
 * so callers check failed once, at the end. */
typedef struct ns_sb {
    char *s;        /* NUL-terminated text; NULL until the first append */
    size_t len;     /* bytes of text, without the NUL */
    size_t cap;     /* bytes allocated */
    int failed;     /* an append failed: s holds the text before it */
} ns_sb;

#define NS_SB_INIT {NULL, 0, 0, 0}

void ns_sb_init(ns_sb *b);
/* Appends the string s. */
void ns_sb_append(ns_sb *b, const char *s);
/* Appends printf-style, growing as needed. */
void ns_sb_appendf(ns_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ns_sb_vappendf(ns_sb *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Appends s as a JSON string, quoted and escaped ("null" for NULL). */
void ns_sb_json_str(ns_sb *b, const char *s);
/* Appends v as a JSON number: null for NaN and infinities, integers
 * without a fraction, otherwise 15 significant digits (%.15g). */
void ns_sb_json_num(ns_sb *b, double v);
/* The text ("" when empty). */
const char *ns_sb_str(const ns_sb *b);
/* Empties b and clears failed, keeping its memory. */
void ns_sb_reset(ns_sb *b);
/* Frees the text; b is empty again (NULL is safe). */
void ns_sb_release(ns_sb *b);

/* ------------------------------------------------------------------ rng */

/* xoshiro256** generator: 4 words of state, so checkpoints can save it and
 * derived streams (per epoch, per step, per layer) are cheap to make. */
typedef struct ns_rng {
    uint64_t s[4];
} ns_rng;

/* Seeds from a 64-bit seed and a stream number (splitmix64 expansion):
 * different streams of one seed are independent sequences. */
void ns_rng_seed(ns_rng *r, uint64_t seed, uint64_t stream);
uint64_t ns_rng_u64(ns_rng *r);
/* Uniform on [0, 1) with 53 random bits. */
double ns_rng_uniform(ns_rng *r);
/* Standard normal (Marsaglia polar method, no cached second value so the
 * state alone describes the stream). */
double ns_rng_normal(ns_rng *r);
/* Uniform integer in [0, n). */
size_t ns_rng_below(ns_rng *r, size_t n);
/* Fisher-Yates shuffle of a permutation of length n. */
void ns_rng_shuffle(ns_rng *r, size_t *perm, size_t n);

/* ------------------------------------------------------------- threads */

/* Sets the number of threads used by normscope's loops and by BLAS
 * (0: the OMP_NUM_THREADS / core count default). */
void ns_set_threads(int n);
int ns_get_threads(void);

/* C = alpha op(A) op(B) + beta C, row-major, in ns_real.  Splits the work
 * over ns_get_threads() threads along the larger output dimension with
 * single-threaded BLAS calls, so results depend only on the thread count. */
void ns_gemm(int transa, int transb, size_t m, size_t n, size_t k,
             ns_real alpha, const ns_real *a, size_t lda,
             const ns_real *b, size_t ldb, ns_real beta,
             ns_real *c, size_t ldc);

/* The same in one thread (for use inside parallel regions). */
void ns_gemm1(int transa, int transb, size_t m, size_t n, size_t k,
              ns_real alpha, const ns_real *a, size_t lda,
              const ns_real *b, size_t ldb, ns_real beta,
              ns_real *c, size_t ldc);

/* ------------------------------------------------------------ progress */

/* Progress on stderr: a bar with rate and ETA when stderr is a terminal,
 * a plain line every few seconds otherwise, nothing when quiet. */
typedef struct ns_progress {
    char label[48];
    size_t total, done;
    double t_start, t_last;
    int tty;
} ns_progress;

void ns_progress_set_quiet(int quiet);
int ns_progress_quiet(void);
void ns_progress_begin(ns_progress *p, const char *label, size_t total);
/* Reports done units; extra is a short status text (may be NULL). */
void ns_progress_update(ns_progress *p, size_t done, const char *extra);
void ns_progress_end(ns_progress *p, const char *extra);
/* A plain informational line on stderr unless quiet. */
void ns_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic wall time in seconds. */
double ns_time(void);

#endif
