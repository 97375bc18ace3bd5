/*
 * Figures of `normscope meanfield` result files (the NS_MF_GROUP group of
 * src/analysis/meanfield.c, names in include/normscope/meanfield.h):
 *   phase       plots/phase.gp: the slope of the c-map at c = 1 (the
 *               regime's quantity: chi_1 where 0 < q* < inf, the limit
 *               map's slope where q* is 0 or infinite, those cells dotted)
 *               and c* as heat maps over sigma_w^2 x sigma_b^2 with the
 *               critical line (slope 1) and the chosen point.  Writes
 *               phase.dat (sw2 sb2 chi1 cstar slope1 regime_by, one block
 *               per sigma_b^2 row; files written before slope1 existed give
 *               chi1 and 0), line.dat (sw2 sb2, one block per crossing
 *               index, broken where a row has none) and point.dat (sw2 sb2).
 *   trajectory  plots/trajectory.gp: q^l, c^l and the NTK condition number
 *               through depth, one colour per file.  traj<i>.dat: depth q c
 *               chi ntk_corr ntk_cond.
 *   dualmap     plots/dualmap.gp: the c-maps T (plain) and Tbar (weight
 *               mean) against the identity, with their fixed points, one
 *               colour per file (MimicNorm's Figure 4).  dual<i>.dat:
 *               rho T Tbar; fix<i>.dat: cstar_T cstar_Tbar.
 * Labels are "<act> (sw2, sb2)" plus " + weight mean" where it is on.
 * Non-finite values are written as NaN (missing for gnuplot).
 */
#include "internal.h"

#include "normscope/meanfield.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The /meanfield group or a message saying what is missing. */
static int need(const ns_plot_ctx *c, size_t i, const char *path, const char *what)
{
    if (ns_h5_exists(c->fids[i], path))
        return NS_OK;
    return ns_error(NS_EFORMAT, "cannot read '%s': no %s ('%s' is missing; write it with "
                    "normscope meanfield)", c->paths[i], what, path);
}

static void label_of(const ns_plot_ctx *c, size_t i, char *buf, size_t len)
{
    char act[64] = "?";
    double sw2 = NAN, sb2 = NAN;
    int64_t wm = 0;
    ns_hid f = c->fids[i];
    ns_h5_get_str(f, NS_MF_GROUP, "act", act, sizeof act);
    ns_h5_get_double(f, NS_MF_GROUP, "sw2", &sw2);
    ns_h5_get_double(f, NS_MF_GROUP, "sb2", &sb2);
    ns_h5_get_int(f, NS_MF_GROUP, "weight_mean", &wm);
    snprintf(buf, len, "%s (%g, %g)%s", act, sw2, sb2, wm ? " + weight mean" : "");
    for (char *p = buf; *p; p++)
        if (*p == '|')
            *p = '/';
}

static double scalar(ns_hid f, const char *path)
{
    double v;
    return ns_h5_read_double(f, path, &v, 1) == NS_OK ? v : NAN;
}

/* Appends a number (NaN when not finite) to a space-separated list. */
static void list_num(char *buf, size_t len, double v)
{
    size_t k = strlen(buf);
    if (isfinite(v))
        snprintf(buf + k, len - k, "%s%.9g", k ? " " : "", v);
    else
        snprintf(buf + k, len - k, "%sNaN", k ? " " : "");
}

/* -------------------------------------------------------------- phase */

int ns_plot_export_phase(ns_plot_ctx *c)
{
    ns_hid f = c->fids[0];
    double *sw2 = NULL, *sb2 = NULL, *chi = NULL, *cs = NULL, *lw = NULL, *lb = NULL,
           *br = NULL, *sl = NULL, *by = NULL;
    size_t nsw, nsb, n, nl = 0, k;
    char path[1200];
    FILE *o = NULL;
    int st = need(c, 0, NS_MF_PHASE "/" NS_MF_CHI1, "mean-field phase diagram");
    if (!st) st = ns_h5_read_double_alloc(f, NS_MF_PHASE "/" NS_MF_SW2, &sw2, &nsw);
    if (!st) st = ns_h5_read_double_alloc(f, NS_MF_PHASE "/" NS_MF_SB2, &sb2, &nsb);
    if (!st) st = ns_h5_read_double_alloc(f, NS_MF_PHASE "/" NS_MF_CHI1, &chi, &n);
    if (!st && n != nsw * nsb)
        st = ns_error(NS_EFORMAT, "cannot read '%s': chi1 has %zu values, not %zu x %zu",
                      c->paths[0], n, nsb, nsw);
    if (!st) st = ns_h5_read_double_alloc(f, NS_MF_PHASE "/" NS_MF_CSTAR, &cs, &n);
    if (!st && n != nsw * nsb)
        st = ns_error(NS_EFORMAT, "cannot read '%s': cstar has %zu values, not %zu x %zu",
                      c->paths[0], n, nsb, nsw);
    /* the regime's quantity; chi_1 in files written before it was stored */
    int have_slope = !st && ns_h5_exists(f, NS_MF_PHASE "/" NS_MF_SLOPE1);
    if (!st && have_slope)
        st = ns_h5_read_double_alloc(f, NS_MF_PHASE "/" NS_MF_SLOPE1, &sl, &n);
    if (!st && have_slope && n != nsw * nsb)
        st = ns_error(NS_EFORMAT, "cannot read '%s': slope1 has %zu values, not %zu x %zu",
                      c->paths[0], n, nsb, nsw);
    if (!st && have_slope)
        st = ns_h5_read_double_alloc(f, NS_MF_PHASE "/" NS_MF_REGIME_BY, &by, &n);
    if (!st && have_slope && n != nsw * nsb)
        st = ns_error(NS_EFORMAT, "cannot read '%s': regime_by has %zu values, not %zu x %zu",
                      c->paths[0], n, nsb, nsw);
    if (!st) st = ns_h5_read_double_alloc(f, NS_MF_LINE "/" NS_MF_SW2, &lw, &nl);
    if (!st) st = ns_h5_read_double_alloc(f, NS_MF_LINE "/" NS_MF_SB2, &lb, &k);
    if (!st && k == nl) st = ns_h5_read_double_alloc(f, NS_MF_LINE "/" NS_MF_BRANCH, &br, &k);
    if (!st && k != nl)
        st = ns_error(NS_EFORMAT, "cannot read '%s': the critical line's columns differ in "
                      "length", c->paths[0]);
    if (st)
        goto done;

    double chimax = 0;
    size_t nlimit = 0;
    if (!(o = ns_plot_data_open(c, "phase.dat", path, sizeof path))) {
        st = NS_EIO;
        goto done;
    }
    fprintf(o, "# normscope phase diagram of '%s'\n# sw2 sb2 chi1 cstar slope1 regime_by\n",
            c->paths[0]);
    for (size_t j = 0; j < nsb; j++) {
        for (size_t i = 0; i < nsw; i++) {
            size_t cell = j * nsw + i;
            double x = sl ? sl[cell] : chi[cell], b = by ? by[cell] : 0;
            if (isfinite(x) && x > chimax)
                chimax = x;
            nlimit += b == 1;
            ns_plot_data_num(o, sw2[i]);
            ns_plot_data_num(o, sb2[j]);
            ns_plot_data_num(o, chi[cell]);
            ns_plot_data_num(o, cs[cell]);
            ns_plot_data_num(o, x);
            ns_plot_data_num(o, b);
            fputc('\n', o);
        }
        fputc('\n', o);
    }
    if ((st = ns_plot_data_close(o, path)))
        goto done;

    /* the critical line: one block per crossing index, broken where the
     * next row with that index is not the next grid row */
    if (!(o = ns_plot_data_open(c, "line.dat", path, sizeof path))) {
        st = NS_EIO;
        goto done;
    }
    fprintf(o, "# normscope critical line (slope of the c-map at c = 1 = 1) of '%s'\n"
            "# sw2 sb2\n", c->paths[0]);
    double maxb = 0;
    for (size_t i = 0; i < nl; i++)
        maxb = br[i] > maxb ? br[i] : maxb;
    for (size_t b = 0; nl && b <= (size_t)maxb; b++) {
        double prev = NAN;
        for (size_t i = 0; i < nl; i++) {
            if ((size_t)br[i] != b)
                continue;
            size_t row = 0;
            while (row < nsb && sb2[row] != lb[i])
                row++;
            if (isfinite(prev) && (row == 0 || sb2[row - 1] != prev))
                fputc('\n', o);
            ns_plot_data_num(o, lw[i]);
            ns_plot_data_num(o, lb[i]);
            fputc('\n', o);
            prev = lb[i];
        }
        fputs("\n\n", o);
    }
    if ((st = ns_plot_data_close(o, path)))
        goto done;

    double psw = NAN, psb = NAN;
    int64_t wm = 0;
    ns_h5_get_double(f, NS_MF_GROUP, "sw2", &psw);
    ns_h5_get_double(f, NS_MF_GROUP, "sb2", &psb);
    ns_h5_get_int(f, NS_MF_GROUP, "weight_mean", &wm);
    if (!(o = ns_plot_data_open(c, "point.dat", path, sizeof path))) {
        st = NS_EIO;
        goto done;
    }
    fprintf(o, "# the chosen point\n# sw2 sb2\n");
    ns_plot_data_num(o, psw);
    ns_plot_data_num(o, psb);
    fputc('\n', o);
    if ((st = ns_plot_data_close(o, path)))
        goto done;

    char act[64] = "?", label[NS_PLOT_LABEL_MAX];
    ns_h5_get_str(f, NS_MF_GROUP, "act", act, sizeof act);
    snprintf(label, sizeof label, "(%g, %g)", psw, psb);
    int inside = psw >= sw2[0] && psw <= sw2[nsw - 1] && psb >= sb2[0] && psb <= sb2[nsb - 1];
    /* a colour scale with slope 1 in the middle: [0, 2], or up to the
     * largest slope (at most 4) when it exceeds 2 */
    double cbmax = chimax > 2 ? fmin(chimax, 4) : 2;
    st = ns_plot_var_str(c, "act", act);
    if (!st) st = ns_plot_var_num(c, "wm", (double)wm);
    if (!st) st = ns_plot_var_num(c, "nline", (double)nl);
    if (!st) st = ns_plot_var_num(c, "nlimit", (double)nlimit);
    if (!st) st = ns_plot_var_num(c, "cbmax", cbmax);
    if (!st) st = ns_plot_var_num(c, "sw2min", sw2[0]);
    if (!st) st = ns_plot_var_num(c, "sw2max", sw2[nsw - 1]);
    if (!st) st = ns_plot_var_num(c, "sb2min", sb2[0]);
    if (!st) st = ns_plot_var_num(c, "sb2max", sb2[nsb - 1]);
    if (!st) st = ns_plot_var_num(c, "inside", inside);
    if (!st) st = ns_plot_var_str(c, "ptlabel", label);
    if (!st && nsw < 2)
        st = ns_error(NS_EINVAL, "cannot draw '%s': the phase diagram needs at least 2 x 2 "
                      "grid points, it has %zu x %zu", c->paths[0], nsw, nsb);
    if (!st && nsb < 2)
        st = ns_error(NS_EINVAL, "cannot draw '%s': the phase diagram needs at least 2 x 2 "
                      "grid points, it has %zu x %zu", c->paths[0], nsw, nsb);
done:
    ns_free(sw2);
    ns_free(sb2);
    ns_free(chi);
    ns_free(cs);
    ns_free(lw);
    ns_free(lb);
    ns_free(br);
    ns_free(sl);
    ns_free(by);
    return st;
}

/* --------------------------------------------------------- trajectory */

static int trajectory_one(ns_plot_ctx *c, size_t i, double *qlo, double *qhi, double *klo,
                          double *khi, size_t *maxdepth)
{
    static const char *const cols[] = {NS_MF_DEPTH, NS_MF_Q, NS_MF_C, NS_MF_CHI,
                                       NS_MF_NTK_CORR, NS_MF_NTK_COND};
    enum { NC = sizeof cols / sizeof *cols };
    double *v[NC] = {NULL};
    size_t n = 0, k;
    char p[128], path[1200], name[64];
    int st = need(c, i, NS_MF_TRAJECTORY "/" NS_MF_Q, "mean-field trajectory");
    for (size_t j = 0; !st && j < NC; j++) {
        snprintf(p, sizeof p, NS_MF_TRAJECTORY "/%s", cols[j]);
        st = ns_h5_read_double_alloc(c->fids[i], p, &v[j], &k);
        if (!st && j && k != n)
            st = ns_error(NS_EFORMAT, "cannot read '%s': '%s' has %zu values, depth %zu",
                          c->paths[i], p, k, n);
        n = j ? n : k;
    }
    FILE *o = NULL;
    if (!st) {
        snprintf(name, sizeof name, "traj%zu.dat", i + 1);
        if (!(o = ns_plot_data_open(c, name, path, sizeof path)))
            st = NS_EIO;
    }
    if (!st) {
        fprintf(o, "# normscope mean-field trajectory of '%s'\n# depth q c chi ntk_corr "
                "ntk_cond\n", c->paths[i]);
        for (size_t r = 0; r < n; r++) {
            for (size_t j = 0; j < NC; j++)
                ns_plot_data_num(o, v[j][r]);
            fputc('\n', o);
            double q = v[1][r], kc = v[5][r];
            if (isfinite(q) && q > 0) {
                *qlo = fmin(*qlo, q);
                *qhi = fmax(*qhi, q);
            }
            if (isfinite(kc) && kc > 0) {
                *klo = fmin(*klo, kc);
                *khi = fmax(*khi, kc);
            }
            if (isfinite(v[0][r]) && v[0][r] > (double)*maxdepth)
                *maxdepth = (size_t)v[0][r];
        }
        st = ns_plot_data_close(o, path);
    }
    for (size_t j = 0; j < NC; j++)
        ns_free(v[j]);
    return st;
}

int ns_plot_export_trajectory(ns_plot_ctx *c)
{
    char labels[8 * NS_PLOT_LABEL_MAX + 8] = "", qs[512] = "", cs[512] = "";
    double qlo = INFINITY, qhi = 0, klo = INFINITY, khi = 0;
    size_t maxdepth = 1;
    int st = NS_OK;
    for (size_t i = 0; i < c->n && !st; i++) {
        char l[NS_PLOT_LABEL_MAX];
        if ((st = trajectory_one(c, i, &qlo, &qhi, &klo, &khi, &maxdepth)))
            break;
        label_of(c, i, l, sizeof l);
        size_t k = strlen(labels);
        snprintf(labels + k, sizeof labels - k, "%s%s", i ? "|" : "", l);
        double qstar = scalar(c->fids[i], NS_MF_POINT "/" NS_MF_QSTAR);
        list_num(qs, sizeof qs, qstar);
        list_num(cs, sizeof cs, scalar(c->fids[i], NS_MF_POINT "/" NS_MF_CSTAR));
        /* a finite q* belongs on the q axis */
        if (isfinite(qstar) && qstar > 0) {
            qlo = fmin(qlo, qstar);
            qhi = fmax(qhi, qstar);
        }
    }
    if (!st) st = ns_plot_var_num(c, "nfiles", (double)c->n);
    if (!st) st = ns_plot_var_str(c, "labels", labels);
    if (!st) st = ns_plot_var_str(c, "qstars", qs);
    if (!st) st = ns_plot_var_str(c, "cstars", cs);
    if (!st) st = ns_plot_var_num(c, "maxdepth", (double)maxdepth);
    /* log axes where values span more than a factor of 20 */
    if (!st) st = ns_plot_var_num(c, "qlog", qhi > 20 * qlo);
    if (!st) st = ns_plot_var_num(c, "qmin", isfinite(qlo) ? qlo : 0);
    if (!st) st = ns_plot_var_num(c, "qmax", qhi);
    if (!st) st = ns_plot_var_num(c, "kmin", isfinite(klo) ? klo : 1);
    if (!st) st = ns_plot_var_num(c, "kmax", khi > 0 ? khi : 1);
    return st;
}

/* ------------------------------------------------------------ dualmap */

int ns_plot_export_dualmap(ns_plot_ctx *c)
{
    char labels[4 * NS_PLOT_LABEL_MAX + 8] = "", slopes[512] = "";
    int st = NS_OK;
    for (size_t i = 0; i < c->n && !st; i++) {
        double *rho = NULL, *T = NULL, *Tb = NULL;
        size_t n = 0, k1 = 0, k2 = 0;
        char path[1200], name[64], l[NS_PLOT_LABEL_MAX];
        FILE *o = NULL;
        st = need(c, i, NS_MF_DUAL "/" NS_MF_T, "dual maps");
        if (!st) st = ns_h5_read_double_alloc(c->fids[i], NS_MF_DUAL "/" NS_MF_RHO, &rho, &n);
        if (!st) st = ns_h5_read_double_alloc(c->fids[i], NS_MF_DUAL "/" NS_MF_T, &T, &k1);
        if (!st) st = ns_h5_read_double_alloc(c->fids[i], NS_MF_DUAL "/" NS_MF_TBAR, &Tb, &k2);
        if (!st && (k1 != n || k2 != n))
            st = ns_error(NS_EFORMAT, "cannot read '%s': the dual maps' lengths differ",
                          c->paths[i]);
        if (!st) {
            snprintf(name, sizeof name, "dual%zu.dat", i + 1);
            if (!(o = ns_plot_data_open(c, name, path, sizeof path)))
                st = NS_EIO;
        }
        if (!st) {
            fprintf(o, "# normscope dual maps of '%s'\n# rho T Tbar\n", c->paths[i]);
            for (size_t r = 0; r < n; r++) {
                ns_plot_data_num(o, rho[r]);
                ns_plot_data_num(o, T[r]);
                ns_plot_data_num(o, Tb[r]);
                fputc('\n', o);
            }
            st = ns_plot_data_close(o, path);
        }
        double ct = NAN, cb = NAN, st1 = NAN, sb1 = NAN;
        ns_h5_get_double(c->fids[i], NS_MF_DUAL, "cstar_T", &ct);
        ns_h5_get_double(c->fids[i], NS_MF_DUAL, "cstar_Tbar", &cb);
        ns_h5_get_double(c->fids[i], NS_MF_DUAL, "slope1_T", &st1);
        ns_h5_get_double(c->fids[i], NS_MF_DUAL, "slope1_Tbar", &sb1);
        if (!st) {
            snprintf(name, sizeof name, "fix%zu.dat", i + 1);
            if (!(o = ns_plot_data_open(c, name, path, sizeof path)))
                st = NS_EIO;
        }
        if (!st) {
            fprintf(o, "# fixed points c* of T and Tbar (NaN: undefined)\n# c c\n");
            ns_plot_data_num(o, ct);
            ns_plot_data_num(o, ct);
            fputc('\n', o);
            ns_plot_data_num(o, cb);
            ns_plot_data_num(o, cb);
            fputc('\n', o);
            st = ns_plot_data_close(o, path);
        }
        ns_free(rho);
        ns_free(T);
        ns_free(Tb);
        if (st)
            break;
        /* the label without the weight-mean flag: both maps are drawn */
        char act[64] = "?";
        double sw2 = NAN, sb2 = NAN;
        ns_h5_get_str(c->fids[i], NS_MF_GROUP, "act", act, sizeof act);
        ns_h5_get_double(c->fids[i], NS_MF_GROUP, "sw2", &sw2);
        ns_h5_get_double(c->fids[i], NS_MF_GROUP, "sb2", &sb2);
        snprintf(l, sizeof l, "%s (%g, %g)", act, sw2, sb2);
        size_t k = strlen(labels);
        snprintf(labels + k, sizeof labels - k, "%s%s", i ? "|" : "", l);
        list_num(slopes, sizeof slopes, st1);
        list_num(slopes, sizeof slopes, sb1);
    }
    if (!st) st = ns_plot_var_num(c, "nfiles", (double)c->n);
    if (!st) st = ns_plot_var_str(c, "labels", labels);
    if (!st) st = ns_plot_var_str(c, "slopes", slopes);
    return st;
}
