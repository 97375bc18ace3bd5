/*
 * What a figure kind's export function gets and the helpers it shares with
 * the others (not exported in include/normscope/plot.h).
 *
 * Adding a figure kind takes three things:
 *   1. a row in the kinds[] table of src/plot/plot.c;
 *   2. an export function (in its own src/plot/<kind>.c when it is long,
 *      declared below) that reads ctx->fids, writes data files into
 *      ctx->datadir with ns_plot_data_open/close, and passes what the script
 *      needs (counts, labels, ranges) with ns_plot_var_*;
 *   3. plots/<kind>.gp, which reads the variables datadir, out, fmt plus the
 *      kind's own, and draws into `out` with the terminal for `fmt`.
 */
#ifndef NS_PLOT_INTERNAL_H
#define NS_PLOT_INTERNAL_H

#include <stdio.h>

#include "normscope/io.h"
#include "normscope/plot.h"

/* Longest run label (ns_plot_run_labels). */
#define NS_PLOT_LABEL_MAX 160

struct ns_plot_ctx {
    const ns_plot_kind *kind;
    const char *const *paths; /* input files as given on the command line */
    const ns_hid *fids;        /* the same, open read-only, format checked */
    size_t n;
    char datadir[1100];       /* where data files go while the figure is made:
                               * DIR/.<kind>-data.tmp-PID, moved to finaldir
                               * once the figure is complete */
    char finaldir[1100];      /* DIR/<kind>-data */
    int write_failed;         /* a data file could not be written */
    ns_sb vars;               /* gnuplot assignments "name=value; ..." */
};

/* Appends the gnuplot assignment name='value' (quotes doubled). */
int ns_plot_var_str(ns_plot_ctx *c, const char *name, const char *value);
/* Appends name=value for a number (integers print without a fraction). */
int ns_plot_var_num(ns_plot_ctx *c, const char *name, double value);

/* Passes b as the gnuplot string variable name, then frees b; st is
 * passed through when it is already an error (NS_ENOMEM when b failed). */
int ns_plot_sb_var(ns_plot_ctx *c, ns_sb *b, const char *name, int st);
/* The file name part of a path (the path itself when it ends in '/'). */
const char *ns_plot_base(const char *path);
/* Makes s fit a gnuplot list: '|' (the label separator) becomes '/',
 * control characters become spaces, and with space nonzero blanks become
 * space (for space-separated word lists). */
void ns_plot_clean(char *s, char space);

/* Opens ctx->datadir/<file> for writing; path (len bytes) receives the name
 * it will have, DIR/<kind>-data/<file>, for messages.  NULL with NS_EWRITE
 * recorded on failure. */
FILE *ns_plot_data_open(ns_plot_ctx *c, const char *file, char *path, size_t len);
/* Closes f and reports a write error on path (NS_EWRITE). */
int ns_plot_data_close(FILE *f, const char *path);
/* Writes v as a data-file number ("NaN" for non-finite values, which
 * gnuplot treats as missing). */
void ns_plot_data_num(FILE *f, double v);

/* Labels of run files for legends: "<norm> <arch>", followed by the file's
 * base name in parentheses where two runs would share a label (the path
 * where base names collide too), and " [diverged]" / " [interrupted]" after
 * unfinished runs; '|' becomes '/' (it separates labels for gnuplot).  labels
 * has room for c->n entries of NS_PLOT_LABEL_MAX bytes. */
void ns_plot_run_labels(const ns_plot_ctx *c, char (*labels)[NS_PLOT_LABEL_MAX]);

/* Export functions of the figure kinds. */
int ns_plot_export_curves(ns_plot_ctx *c);
int ns_plot_export_ntk_spectrum(ns_plot_ctx *c);
int ns_plot_export_ntk_training(ns_plot_ctx *c);
int ns_plot_export_ntk_layers(ns_plot_ctx *c);
int ns_plot_export_ntk_depth(ns_plot_ctx *c);
/* Mean-field figures of `normscope meanfield` result files (meanfield.c). */
int ns_plot_export_phase(ns_plot_ctx *c);
int ns_plot_export_trajectory(ns_plot_ctx *c);
int ns_plot_export_dualmap(ns_plot_ctx *c);
/* Figures of `normscope spectrum` result files (spectrum.c). */
int ns_plot_export_act_spectrum(ns_plot_ctx *c);
int ns_plot_export_whitening(ns_plot_ctx *c);
int ns_plot_export_channels(ns_plot_ctx *c);
int ns_plot_export_weight_esd(ns_plot_ctx *c);

#endif
