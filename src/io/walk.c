/*
 * Walking an HDF5 file whose layout is not known beforehand (io.h,
 * "walking a file"): the links of a group, every object below a group
 * (H5Lvisit), the attributes of an object (H5Aiterate) with their values
 * typed as stored, the shape and element type of a data set, and the JSON
 * form of attributes.  `normscope info` renders what these find; figures
 * list checkpoint groups with ns_h5_children.  Unusual objects are
 * described, never refused: a reader inspecting an odd file must see it.
 */
#include "normscope/io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

/* --------------------------------------------------------------- names */

typedef struct namelist {
    char **v;
    size_t n, cap;
    int oom;
} namelist;

static int push_name(namelist *l, const char *name)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->oom = 1;
            return -1;
        }
        l->v = v;
        l->cap = cap;
    }
    size_t k = strlen(name) + 1;
    if (!(l->v[l->n] = malloc(k))) {
        l->oom = 1;
        return -1;
    }
    memcpy(l->v[l->n++], name, k);
    return 0;
}

void ns_h5_names_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

static herr_t link_name(hid_t g, const char *name, const H5L_info_t *info, void *op)
{
    (void)g;
    (void)info;
    return push_name(op, name);
}

int ns_h5_children(hid_t loc, const char *group, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    hid_t g = ns_h5_exists(loc, group) ? H5Gopen2(loc, group, H5P_DEFAULT) : H5I_INVALID_HID;
    if (g < 0)
        return ns_error(NS_EFORMAT, "cannot read '%s': '%s' is not a group", ns_h5_name(loc),
                        group);
    namelist l = {0};
    hsize_t idx = 0;
    herr_t e = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, link_name, &l);
    int st = NS_OK;
    if (e < 0 && l.oom)
        st = ns_error(NS_ENOMEM, "cannot read '%s': out of memory listing '%s'",
                      ns_h5_name(loc), group);
    else if (e < 0)
        st = ns_error(NS_EFORMAT, "cannot read '%s': cannot list '%s'", ns_h5_name(loc), group);
    H5Gclose(g);
    if (st) {
        ns_h5_names_free(l.v, l.n);
        return st;
    }
    *names = l.v;
    *n = l.n;
    return NS_OK;
}

static herr_t attr_name(hid_t loc, const char *name, const H5A_info_t *info, void *op)
{
    (void)loc;
    (void)info;
    return push_name(op, name);
}

int ns_h5_attr_names(hid_t loc, const char *obj, int sorted, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    if (!ns_h5_exists(loc, obj))
        return NS_OK;
    hid_t o = H5Oopen(loc, obj, H5P_DEFAULT);
    if (o < 0)
        return NS_OK;
    namelist l = {0};
    hsize_t idx = 0;
    herr_t e = H5Aiterate2(o, H5_INDEX_NAME, sorted ? H5_ITER_INC : H5_ITER_NATIVE, &idx,
                           attr_name, &l);
    H5Oclose(o);
    *names = l.v;
    *n = l.n;
    if (e < 0 && l.oom)
        return ns_error(NS_ENOMEM, "cannot read '%s': out of memory listing the attributes "
                        "of '%s'", ns_h5_name(loc), obj);
    if (e < 0)
        return ns_error(NS_EFORMAT, "cannot read '%s': cannot list the attributes of '%s'",
                        ns_h5_name(loc), obj);
    return NS_OK;
}

/* -------------------------------------------------------------- values */

static ns_h5_class class_of(H5T_class_t c)
{
    switch (c) {
    case H5T_INTEGER: return NS_H5_INT;
    case H5T_FLOAT: return NS_H5_FLOAT;
    case H5T_STRING: return NS_H5_STRING;
    case H5T_ENUM: return NS_H5_ENUM;
    case H5T_COMPOUND: return NS_H5_COMPOUND;
    default: return NS_H5_OTHER;
    }
}

/* The member name of a one-value enum attribute into buf; 0 on success. */
static int enum_name(hid_t a, hid_t ft, char *buf, size_t len)
{
    hid_t nt = H5Tget_native_type(ft, H5T_DIR_ASCEND);
    long long raw = 0;
    char ename[64];
    int ok = nt >= 0 && H5Tget_size(nt) <= sizeof raw && H5Aread(a, nt, &raw) >= 0 &&
             H5Tenum_nameof(nt, &raw, ename, sizeof ename) >= 0;
    if (ok)
        snprintf(buf, len, "%s", ename);
    if (nt >= 0)
        H5Tclose(nt);
    return ok ? 0 : -1;
}

void ns_h5_attr_value(hid_t loc, const char *obj, const char *name, ns_h5_value *v)
{
    v->cls = NS_H5_UNREADABLE;
    v->count = 0;
    v->array = 0;
    v->held = 0;
    v->n = 0;
    v->str[0] = '\0';
    if (!ns_h5_attr_exists(loc, obj, name))
        return;
    hid_t a = H5Aopen_by_name(loc, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0)
        return;
    hid_t ft = H5Aget_type(a), sp = H5Aget_space(a);
    H5T_class_t cls = H5Tget_class(ft);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    v->cls = class_of(cls);
    v->count = n;
    v->array = H5Sget_simple_extent_ndims(sp) > 0;
    if (cls == H5T_STRING && n == 1) {
        if (ns_h5_get_str(loc, obj, name, v->str, sizeof v->str))
            v->cls = NS_H5_UNREADABLE;
        else
            v->held = 1;
    } else if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && n >= 1 && n <= NS_H5_VALUES_MAX) {
        if (ns_h5_get_doubles(loc, obj, name, v->num, NS_H5_VALUES_MAX, &v->n))
            v->cls = NS_H5_UNREADABLE;
        else
            v->held = 1;
    } else if (cls == H5T_ENUM && n == 1) {
        if (enum_name(a, ft, v->str, sizeof v->str))
            v->cls = NS_H5_UNREADABLE;
        else
            v->held = 1;
    }
    if (v->cls == NS_H5_UNREADABLE)
        v->n = 0;
    H5Sclose(sp);
    H5Tclose(ft);
    H5Aclose(a);
}

/* ------------------------------------------------------------- objects */

typedef struct walk {
    ns_h5_walk_fn *fn;
    void *ctx;
    int follow;
    int st;
} walk;

static herr_t visit(hid_t g, const char *name, const H5L_info_t *info, void *op)
{
    walk *w = op;
    if (!w->follow && info->type != H5L_TYPE_HARD)
        return 0;
    hid_t o = H5Oopen(g, name, H5P_DEFAULT);
    if (o < 0)
        return 0;
    H5I_type_t t = H5Iget_type(o);
    ns_h5_object ob = {name, t == H5I_DATASET, -1};
    if (t == H5I_DATASET) {
        hid_t sp = H5Dget_space(o);
        if (sp >= 0) {
            ob.count = H5Sget_simple_extent_npoints(sp);
            H5Sclose(sp);
        }
    }
    H5Oclose(o);
    if (t != H5I_DATASET && t != H5I_GROUP)
        return 0;
    /* A positive return stops H5Lvisit without failing it. */
    w->st = w->fn(w->ctx, &ob);
    return w->st ? 1 : 0;
}

int ns_h5_walk(hid_t loc, const char *group, int follow, ns_h5_walk_fn *fn, void *ctx)
{
    hid_t g = ns_h5_exists(loc, group) ? H5Gopen2(loc, group, H5P_DEFAULT) : H5I_INVALID_HID;
    if (g < 0)
        return ns_error(NS_EFORMAT, "cannot read '%s': '%s' is not a group", ns_h5_name(loc),
                        group);
    walk w = {fn, ctx, follow, NS_OK};
    herr_t e = H5Lvisit(g, H5_INDEX_NAME, H5_ITER_INC, visit, &w);
    H5Gclose(g);
    if (w.st)
        return w.st;
    if (e < 0)
        return ns_error(NS_EFORMAT, "cannot read '%s': cannot walk '%s'", ns_h5_name(loc),
                        group);
    return NS_OK;
}

void ns_h5_dataset_info(hid_t loc, const char *path, ns_h5_dsinfo *d)
{
    memset(d, 0, sizeof *d);
    d->cls = NS_H5_UNREADABLE;
    d->ndim = -1;
    snprintf(d->type, sizeof d->type, "?");
    hid_t ds = H5Dopen2(loc, path, H5P_DEFAULT);
    if (ds < 0)
        return;
    hid_t sp = H5Dget_space(ds), t = H5Dget_type(ds);
    int nd = H5Sget_simple_extent_ndims(sp);
    if (nd >= 0 && nd <= 8) {
        hsize_t hd[8];
        H5Sget_simple_extent_dims(sp, hd, NULL);
        for (int i = 0; i < nd; i++)
            d->dims[i] = hd[i];
        d->ndim = nd;
    }
    d->bits = 8 * H5Tget_size(t);
    H5T_class_t c = H5Tget_class(t);
    d->cls = class_of(c);
    switch (c) {
    case H5T_FLOAT: snprintf(d->type, sizeof d->type, "float%zu", d->bits); break;
    case H5T_INTEGER:
        snprintf(d->type, sizeof d->type, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "",
                 d->bits);
        break;
    case H5T_STRING: snprintf(d->type, sizeof d->type, "string"); break;
    case H5T_ENUM: snprintf(d->type, sizeof d->type, "enum"); break;
    case H5T_COMPOUND: snprintf(d->type, sizeof d->type, "compound"); break;
    default: snprintf(d->type, sizeof d->type, "other"); break;
    }
    H5Tclose(t);
    H5Sclose(sp);
    H5Dclose(ds);
}

/* ---------------------------------------------------------------- JSON */

void ns_h5_json_value(ns_sb *b, const ns_h5_value *v)
{
    if (v->cls == NS_H5_UNREADABLE || !v->held) {
        ns_sb_append(b, "null");
    } else if (v->cls == NS_H5_STRING) {
        ns_sb_json_str(b, v->str);
    } else if (v->cls == NS_H5_ENUM) {
        if (!strcmp(v->str, "TRUE") || !strcmp(v->str, "FALSE"))
            ns_sb_append(b, v->str[0] == 'T' ? "true" : "false");
        else
            ns_sb_json_str(b, v->str);
    } else {
        if (v->array)
            ns_sb_append(b, "[");
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                ns_sb_append(b, ", ");
            ns_sb_json_num(b, v->num[i]);
        }
        if (v->array)
            ns_sb_append(b, "]");
    }
}

void ns_h5_json_attrs(ns_sb *b, hid_t loc, const char *obj)
{
    char **names;
    size_t n;
    ns_h5_value v;
    ns_h5_attr_names(loc, obj, 1, &names, &n);
    ns_sb_append(b, "{");
    for (size_t i = 0; i < n; i++) {
        ns_sb_append(b, i ? ", " : "");
        ns_sb_json_str(b, names[i]);
        ns_sb_append(b, ": ");
        ns_h5_attr_value(loc, obj, names[i], &v);
        ns_h5_json_value(b, &v);
    }
    ns_sb_append(b, "}");
    ns_h5_names_free(names, n);
}
