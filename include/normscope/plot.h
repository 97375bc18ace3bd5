/*
 * normscope figures: a table of figure kinds, each a gnuplot script in
 * plots/ plus a function that exports the data the script reads.  Rendering
 * a kind opens the input files, writes whitespace-separated data files into
 * DIR/<kind>-data/, runs gnuplot on the script and renames the figure into
 * place as DIR/<kind>.<format> once it is complete (DESIGN.md section 4).
 */
#ifndef NORMSCOPE_PLOT_H
#define NORMSCOPE_PLOT_H

#include <stddef.h>

#include "normscope/core.h"

/* What a kind's export function works on (defined in src/plot/internal.h). */
typedef struct ns_plot_ctx ns_plot_ctx;

/* One figure kind of the table in src/plot/plot.c. */
typedef struct ns_plot_kind {
    const char *name;        /* `--what` value, also the figure's file name */
    const char *description; /* one line for `--what list` */
    const char *script;      /* gnuplot script file name inside plots/ */
    const char *input;       /* NS_RUN_FORMAT or NS_RESULT_FORMAT */
    size_t max_inputs;       /* most input files it overlays (0: no limit) */
    /* Writes the data files and the gnuplot variables (see src/plot/internal.h). */
    int (*export_data)(ns_plot_ctx *ctx);
} ns_plot_kind;

/* Output formats and their file extensions. */
#define NS_PLOT_FORMATS "png, svg, pdf"

typedef struct ns_plot_opts {
    const char *outdir;   /* created (with parents) when missing */
    const char *format;   /* "png" (default when NULL), "svg" or "pdf" */
    int force;            /* overwrite an existing figure */
} ns_plot_opts;

/* The table of figure kinds; *n receives its length. */
const ns_plot_kind *ns_plot_kinds(size_t *n);

/* The kind called name, or NULL. */
const ns_plot_kind *ns_plot_find(const char *name);

/* 1 when format is one of NS_PLOT_FORMATS. */
int ns_plot_format_ok(const char *format);

/*
 * Finds the directory holding the gnuplot script `script`, in this order:
 * $NS_PLOTS_DIR; plots/ of the source tree beside the executable
 * (build/<precision>/normscope -> ../../plots); <exe>/../share/normscope/plots;
 * NS_PREFIX/share/normscope/plots.  NS_EFAIL listing where it looked when
 * none holds the script.
 */
int ns_plot_scripts_dir(const char *script, char *dir, size_t len);

/*
 * Renders kind from the files paths[0..n) into opts->outdir and stores the
 * figure's path in figure (len bytes).  Every input is opened and checked
 * before anything is written.  Errors: NS_EIO / NS_EFORMAT for unreadable or
 * wrong inputs, NS_EINVAL for bad options or an existing figure without
 * force ("'DIR/curves.png' exists; use --force to overwrite"), NS_EIO when
 * the output directory cannot be written, NS_EFAIL when the scripts or
 * gnuplot are missing or gnuplot fails (with its messages summarised).
 */
int ns_plot_render(const ns_plot_kind *kind, const char *const *paths, size_t n,
                   const ns_plot_opts *opts, char *figure, size_t len);

#endif
