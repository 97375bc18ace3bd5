/*
 * Analytic infinite-width NNGP and NTK of a fully connected network
 * (Neal 1996; Lee et al. 2018, eq. 4; Jacot et al. 2018, Theorem 1; Arora
 * et al. 2019, eq. 7; METHODS.md "MimicNorm": Theta = sum_l K^l prod_{r>l}
 * Tdot(K^r)), in the NTK parametrisation and in the standard one of a
 * PyTorch Linear layer (the conversion is in normscope/meanfield.h), with
 * MimicNorm's weight mean on chosen layers.
 *
 * Layer l >= 2 of the recursion needs, for every pair of inputs, the
 * moments of (u_i, u_j) ~ N(0, K^{l-1} restricted to {i, j}): E[phi phi]
 * and E[phi' phi'] from ns_mf_moments2 (closed forms or the tensor-product
 * rule), E[phi] from ns_mf_moments1 for the weight mean.
 */
#include "mf_internal.h"

#include <lapacke.h>
#include <math.h>
#include <string.h>

static int check_gram(const double *G, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!(G[i * n + i] >= 0) || !isfinite(G[i * n + i]))
            return ns_error(NS_EINVAL, "input Gram matrix: diagonal element %zu is %g (must "
                            "be a finite non-negative number)", i, G[i * n + i]);
        for (size_t j = 0; j < i; j++) {
            double a = G[i * n + j], b = G[j * n + i];
            if (!isfinite(a) || fabs(a - b) > 1e-12 * (fabs(a) + fabs(b)) + 1e-300)
                return ns_error(NS_EINVAL, "input Gram matrix is not symmetric at (%zu, %zu)",
                                i, j);
        }
    }
    return NS_OK;
}

/* Condition number of a symmetric n x n matrix (overwrites a). */
static int sym_cond(double *a, size_t n, double *ev, double *cond)
{
    lapack_int info = LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', (lapack_int)n, a,
                                    (lapack_int)n, ev);
    if (info != 0)
        return ns_error(NS_ENUMERIC, "LAPACK dsyev failed (info %d) on a %zu x %zu kernel",
                        (int)info, n, n);
    double lo = ev[0], hi = ev[n - 1];
    *cond = lo > 0 ? hi / lo : INFINITY;
    return NS_OK;
}

/* The recursion; per layer: store NNGP / NTK (depth x n x n, may be NULL)
 * and the condition number of the NTK (cond, may be NULL); the last layer
 * also into nngp_last / ntk_last (may be NULL). */
static int run(ns_mf_work *w, const ns_mf_net *net, size_t depth, const double *G, size_t n,
               const size_t *widths, double *nngp, double *ntk, double *cond,
               double *nngp_last, double *ntk_last)
{
    int st = ns_mf_net_check(net);
    if (st)
        return st;
    if (depth < 1)
        return ns_error(NS_EINVAL, "the network needs at least one layer (depth %zu)", depth);
    if (n < 1)
        return ns_error(NS_EINVAL, "no inputs");
    if ((st = check_gram(G, n)))
        return st;
    for (size_t l = 0; widths && l < depth; l++)
        if (widths[l] == 0)
            return ns_error(NS_EINVAL, "width of layer %zu is 0", l);
    size_t nn = ns_mul_size(n, n);
    if (!nn)
        return NS_ENOMEM;
    double *K = ns_malloc(nn * sizeof *K), *T = ns_malloc(nn * sizeof *T);
    double *Kn = ns_malloc(nn * sizeof *Kn), *Tn = ns_malloc(nn * sizeof *Tn);
    double *mean = ns_malloc(n * sizeof *mean), *sq = ns_malloc(n * sizeof *sq);
    double *dsq = ns_malloc(n * sizeof *dsq);
    double *scratch = cond ? ns_malloc(nn * sizeof *scratch) : NULL;
    double *ev = cond ? ns_malloc(n * sizeof *ev) : NULL;
    if (!K || !T || !Kn || !Tn || !mean || !sq || !dsq || (cond && (!scratch || !ev))) {
        st = NS_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < nn; i++) {
        K[i] = net->sw2 * G[i] + net->sb2;
        T[i] = widths ? (double)widths[0] * G[i] + 1 : K[i];
    }
    for (size_t l = 1;; l++) {
        /* layer l is in K, T */
        if (nngp)
            memcpy(nngp + (l - 1) * nn, K, nn * sizeof *K);
        if (ntk)
            memcpy(ntk + (l - 1) * nn, T, nn * sizeof *T);
        if (cond) {
            memcpy(scratch, T, nn * sizeof *T);
            if ((st = sym_cond(scratch, n, ev, &cond[l - 1])))
                goto done;
        }
        if (l == depth)
            break;
        /* layer l+1 */
        size_t next = l + 1;
        int proj = (next < depth && (net->weight_mean & NS_MF_WM_HIDDEN)) ||
                   (next == depth && (net->weight_mean & NS_MF_WM_READOUT));
        double wadd = widths ? (double)widths[l] : net->sw2, badd = widths ? 1 : net->sb2;
        for (size_t i = 0; i < n; i++) {
            ns_mf_m1 m;
            if ((st = ns_mf_moments1(w, &net->act, K[i * n + i], &m)))
                goto done;
            mean[i] = m.mean;
            sq[i] = m.sq;
            dsq[i] = m.dsq;
        }
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j <= i; j++) {
                double pp, dd;
                if (i == j) {
                    pp = sq[i];
                    dd = dsq[i];
                } else {
                    double qi = K[i * n + i], qj = K[j * n + j], den = sqrt(qi * qj);
                    double c = den > 0 ? K[i * n + j] / den : 0;
                    c = c > 1 ? 1 : c < -1 ? -1 : c;
                    ns_mf_m2 m2;
                    if ((st = ns_mf_moments2(w, &net->act, qi, qj, c, &m2)))
                        goto done;
                    pp = m2.pp;
                    dd = m2.dd;
                }
                double M = pp - (proj ? mean[i] * mean[j] : 0);
                double kv = net->sw2 * M + net->sb2;
                double tv = T[i * n + j] * net->sw2 * dd + wadd * pp + badd;
                Kn[i * n + j] = Kn[j * n + i] = kv;
                Tn[i * n + j] = Tn[j * n + i] = tv;
            }
        double *t = K;
        K = Kn;
        Kn = t;
        t = T;
        T = Tn;
        Tn = t;
    }
    if (nngp_last)
        memcpy(nngp_last, K, nn * sizeof *K);
    if (ntk_last)
        memcpy(ntk_last, T, nn * sizeof *T);
done:
    ns_free(K);
    ns_free(T);
    ns_free(Kn);
    ns_free(Tn);
    ns_free(mean);
    ns_free(sq);
    ns_free(dsq);
    ns_free(scratch);
    ns_free(ev);
    return st;
}

int ns_mf_kernel(ns_mf_work *w, const ns_mf_net *net, size_t depth, const double *gram_in,
                 size_t n, const size_t *widths, double *nngp_out, double *ntk_out)
{
    return run(w, net, depth, gram_in, n, widths, NULL, NULL, NULL, nngp_out, ntk_out);
}

int ns_mf_kernel_layers(ns_mf_work *w, const ns_mf_net *net, size_t depth,
                        const double *gram_in, size_t n, const size_t *widths, double *nngp,
                        double *ntk)
{
    return run(w, net, depth, gram_in, n, widths, nngp, ntk, NULL, NULL, NULL);
}

int ns_mf_ntk_cond(ns_mf_work *w, const ns_mf_net *net, size_t depth, const double *gram_in,
                   size_t n, const size_t *widths, double *cond)
{
    return run(w, net, depth, gram_in, n, widths, NULL, NULL, cond, NULL, NULL);
}
