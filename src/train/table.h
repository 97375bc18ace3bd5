/* Growable column tables for the training history (internal). */
#ifndef NS_TRAIN_TABLE_H
#define NS_TRAIN_TABLE_H

#include "normscope/io.h"

#define NS_TABLE_MAXCOLS 16

typedef struct ns_table {
    size_t ncols, n, cap;
    const char *names[NS_TABLE_MAXCOLS];
    const char *desc[NS_TABLE_MAXCOLS];
    int is_int[NS_TABLE_MAXCOLS];
    double *col[NS_TABLE_MAXCOLS];
    size_t width;        /* extra matrix columns (weight norms), 0 if none */
    double *matrix;      /* n x width */
} ns_table;

int ns_table_append(ns_table *t, const double *row, const double *mrow);
int ns_table_write(const ns_table *t, ns_hid fid, const char *group,
                   const char *matrix_name, const char *matrix_cols);
/* Reads columns back from a run file (rows = length of the first column). */
int ns_table_read(ns_table *t, ns_hid fid, const char *group, const char *matrix_name);
void ns_table_release(ns_table *t);

#endif
