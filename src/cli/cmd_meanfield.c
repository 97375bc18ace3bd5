/*
 * normscope meanfield: mean-field theory of a deep fully connected network
 * at initialisation (METHODS.md "Mean-field theory" and "MimicNorm";
 * include/normscope/meanfield.h): fixed points, chi_1, depth scales,
 * trajectories through depth with the NTK recursion, the dual maps T and
 * Tbar, the BN gradient-explosion rate, and the phase diagram with its
 * critical line.  Needs no data set or run file; writes a result file.
 *
 * The computation and the result file are ns_mf_run's
 * (src/analysis/meanfield.c; the layout and its names in
 * normscope/meanfield.h); this command parses the options, checks them and
 * prints the summary.
 *
 * The regime (ordered, critical, chaotic) is classified by the slope of the
 * c-map at c = 1: chi_1 where 0 < q* < inf, the limit map's slope where q*
 * is 0 or infinite (normscope/meanfield.h, ns_mf_regime).
 */
#include "cli.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "normscope/meanfield.h"
#include "normscope/result.h"


static const char usage_text[] =
    "usage: normscope meanfield [--act A] [--sw2 S] [--sb2 B] [--weight-mean] [--depth L]\n"
    "                           [--q0 Q] [--c0 C] [--grid SPEC|none] [--tol T] -o OUT.h5\n"
    "\n"
    "Mean-field theory of a deep fully connected network at initialisation, W ~\n"
    "N(0, sigma_w^2/fan_in), b ~ N(0, sigma_b^2) (train --init gauss:S,B), infinite\n"
    "width (Poole et al. 2016, Schoenholz et al. 2017; MimicNorm, Fei et al. 2021).\n"
    "Needs no data set or run file; writes a result file and prints a summary.\n"
    "\n"
    "options:\n"
    "  --act A          activation (default relu), one of\n"
    "                   %s\n"
    "  --sw2 S          sigma_w^2 > 0, the weight variance times fan-in (default 2)\n"
    "  --sb2 B          sigma_b^2 >= 0, the bias variance (default 0)\n"
    "  --weight-mean    MimicNorm's weight mean: every row of W projected to zero mean,\n"
    "                   so each layer sees its inputs minus their mean over units\n"
    "  --depth L        layers of the trajectories (default 50)\n"
    "  --q0 Q           variance of the first layer's pre-activations (default 1)\n"
    "  --c0 C           correlation of the two inputs' first pre-activations (default 0.5)\n"
    "  --gram-n N       inputs of the NTK condition number along the trajectory (default 10)\n"
    "  --grid SPEC      phase diagram SW2MIN:SW2MAX:NSW,SB2MIN:SB2MAX:NSB (default\n"
    "                   " NS_MF_DEFAULT_GRID "), N = 1 takes MIN only; 'none' skips it\n"
    "  --tol T          quadrature tolerance (default 1e-10): the order is doubled until\n"
    "                   two successive estimates agree to T times the quantity's scale\n"
    "  --quadrature     quadrature even where a closed form exists (a cross-check; the\n"
    "                   phase diagram always uses the closed forms)\n"
    "  --threads T      threads of the phase diagram (default: all cores)\n"
    "  -o, --output F   result file to write; --force overwrites it\n"
    "  --quiet          no notes on stderr\n"
    "  -h, --help       this help\n"
    "\n"
    "quantities (u ~ N(0, q*), phi the activation):\n"
    "  q*       fixed point of the q-map q' = sw2 E[phi(u)^2] + sb2, the variance of deep\n"
    "           pre-activations; 0 when it decays, inf when it grows without bound\n"
    "  chi_1    sw2 E[phi'(u)^2]: how much squared gradient norms grow per layer backwards\n"
    "           and, where 0 < q* < inf, the slope of the c-map at c = 1\n"
    "  regime   by the slope of the c-map at c = 1: < 1 ordered, = 1 critical, > 1\n"
    "           chaotic.  It is chi_1 where 0 < q* < inf; where q* is 0 or infinite it\n"
    "           is the slope of the limit map (relu: 1 for every sw2 at sb2 = 0; with the\n"
    "           weight mean 1/(1 - 1/pi), chaotic, MimicNorm's Tbar) and chi_1 does not\n"
    "           decide; the summary and the result file say which one was used\n"
    "  c*       stable fixed point of the correlation map c' = (sw2 E[phi(u1) phi(u2)] +\n"
    "           sb2) / q*: where the correlation of two inputs ends up with depth\n"
    "  slope    of the c-map at c*, the rate at which correlations approach c*\n"
    "  xi_q     depth scale of q: -1/ln(slope of the q-map at q*), layers\n"
    "  xi_c     depth scale of c: -1/ln(slope at c*), layers; infinite where critical\n"
    "  BN rate  growth of squared gradient norms per layer through a BN-phi stack at\n"
    "           init, E[phi'(z)^2] / Var[phi(z)] (Yang et al. 2019, batch -> inf; their\n"
    "           pi/(pi-1) for relu, our derivation for other activations)\n"
    "  T, Tbar  the c-map without and with the weight mean (MimicNorm's Figure 4)\n"
    "  NTK      infinite-width NTK of the layer's pre-activations, NTK parametrisation;\n"
    "           ntk_cond: condition number of the Gram of --gram-n inputs with pairwise\n"
    "           correlation c0 (ordered: diverges with depth, chaotic: tends to 1)\n"
    "  phase    chi_1, the slope at c = 1, the regime, c*, q* over a (sw2, sb2) grid and\n"
    "           the critical line (slope 1; chi_1 = 1 where q* is finite) by root\n"
    "           finding along each row\n"
    "With the weight mean, E[phi phi] becomes the covariance.  Where q* is 0 or infinite\n"
    "the maps are their limits (homogeneous activations: the normalised dual map; gelu,\n"
    "swish, softplus: relu's where q* is infinite; otherwise c* is not defined, NaN) -\n"
    "our extension of the theory.\n"
    "Expectations: closed forms for relu, leaky, linear, erf; otherwise Gauss-Hermite\n"
    "(GSL), 2-D by tensor products over correlated normals; relu and leaky with\n"
    "--quadrature, and gelu, swish, softplus (relu-like at large variance) are split\n"
    "at 0 (Gauss-Legendre on each side).  On the phase grid c* of activations without\n"
    "a closed form comes from the Hermite series of the c-map, truncated to the\n"
    "tolerance.\n";

enum {
    O_ACT = 256, O_SW2, O_SB2, O_WM, O_DEPTH, O_Q0, O_C0, O_GRAMN, O_GRID, O_TOL, O_QUAD,
    O_THREADS, O_FORCE, O_QUIET
};

static const struct option options[] = {
    {"act", required_argument, NULL, O_ACT},
    {"sw2", required_argument, NULL, O_SW2},
    {"sb2", required_argument, NULL, O_SB2},
    {"weight-mean", no_argument, NULL, O_WM},
    {"depth", required_argument, NULL, O_DEPTH},
    {"q0", required_argument, NULL, O_Q0},
    {"c0", required_argument, NULL, O_C0},
    {"gram-n", required_argument, NULL, O_GRAMN},
    {"grid", required_argument, NULL, O_GRID},
    {"tol", required_argument, NULL, O_TOL},
    {"quadrature", no_argument, NULL, O_QUAD},
    {"threads", required_argument, NULL, O_THREADS},
    {"output", required_argument, NULL, 'o'},
    {"force", no_argument, NULL, O_FORCE},
    {"quiet", no_argument, NULL, O_QUIET},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* --------------------------------------------------------------- summary */

static void print_num(const char *name, double v, const char *units, const char *note)
{
    char val[64];
    if (isinf(v) && v > 0)
        snprintf(val, sizeof val, "infinite (critical)");
    else if (isnan(v))
        snprintf(val, sizeof val, "undefined");
    else
        snprintf(val, sizeof val, "%.10g%s%s", v, units ? " " : "", units ? units : "");
    printf("  %-8s %-22s %s\n", name, val, note ? note : "");
}

/* The verdict line: the regime and the quantity that decided it, e.g.
 * "chaotic (c-map slope at c = 1: 1.467 > 1; q* = 0, so chi_1 does not
 * decide)". */
static void print_regime(const ns_mf_point *p)
{
    const char *name = ns_mf_regime_name(p->regime);
    const char *rel = p->regime == NS_MF_ORDERED ? "<" : p->regime == NS_MF_CHAOTIC ? ">" : "=";
    if (p->regime == NS_MF_UNDEFINED) {
        printf("  %-8s %s (the c-map has no limit where q* is %s)\n", "regime", name,
               p->qkind == NS_MF_Q_ZERO ? "0" : "infinite");
    } else if (p->regime_by == NS_MF_BY_CHI1) {
        printf("  %-8s %s (chi_1: %.4g %s 1, the c-map slope at c = 1 at q*)\n", "regime", name,
               p->chi1, rel);
    } else {
        printf("  %-8s %s (c-map slope at c = 1: %.4g %s 1; q* = %s, so chi_1 does not "
               "decide)\n", "regime", name, p->slope1, rel,
               p->qkind == NS_MF_Q_ZERO ? "0" : "inf");
    }
}

static void summary(const ns_mf_run_opts *o, const ns_mf_results *r, const char *out)
{
    const ns_mf_net *net = &o->net;
    char act[64];
    ns_mf_act_name(&net->act, act, sizeof act);
    const ns_mf_point *p = &r->pt;
    int by_chi = p->regime_by == NS_MF_BY_CHI1;
    const char *lim = p->qkind == NS_MF_Q_ZERO ? "q -> 0" : "q -> inf";
    char note[128];
    printf("mean field: %s, sigma_w^2 %g, sigma_b^2 %g, weight mean %s\n", act, net->sw2,
           net->sb2, net->weight_mean ? "on" : "off");
    if (p->qkind == NS_MF_Q_FINITE)
        print_num("q*", p->qstar, NULL, "fixed point of the q-map");
    else
        printf("  %-8s %s\n", "q*", ns_mf_qkind_name(p->qkind));
    if (by_chi)
        snprintf(note, sizeof note, "sigma_w^2 E[phi'^2], the slope of the c-map at c = 1");
    else
        snprintf(note, sizeof note, "sigma_w^2 E[phi'^2] as %s: |grad|^2 growth per layer", lim);
    print_num("chi_1", p->chi1, NULL, note);
    if (!by_chi) {
        snprintf(note, sizeof note, "slope of the c-map at c = 1 (its limit as %s)", lim);
        print_num("slope@1", p->slope1, NULL, note);
    }
    print_regime(p);
    print_num("c*", p->cstar, NULL,
              isnan(p->cstar) && p->qkind == NS_MF_Q_ZERO
                  ? "none: the limit map is the identity, every c is fixed"
                  : "stable fixed point of the c-map");
    print_num("slope", p->cslope, NULL, "of the c-map at c*");
    print_num("xi_q", p->xi_q, isfinite(p->xi_q) ? "layers" : NULL, NULL);
    print_num("xi_c", p->xi_c, isfinite(p->xi_c) ? "layers" : NULL, NULL);
    print_num("BN rate", r->bn_rate, NULL, "|grad|^2 growth per layer, BN stack, batch -> inf");
    size_t L = r->depth;
    printf("trajectory: %zu layers from q0 %g, c0 %g: q %.6g, c %.6g; NTK cond (%zu inputs) "
           "%.4g -> %.4g\n", L, o->q0, o->c0, r->q[L], r->c[L], o->gram_n, r->tcond[0],
           r->tcond[L]);
    printf("dual maps: T slope at 1 %.6g, c* %.6g; Tbar slope at 1 %.6g, c* %.6g\n",
           r->pt_plain.slope1, r->pt_plain.cstar, r->pt_wm.slope1, r->pt_wm.cstar);
    if (r->have_phase) {
        const ns_mf_phase *ph = &r->ph;
        size_t n = ph->nsw * ph->nsb, cnt[4] = {0, 0, 0, 0}, limit = 0;
        for (size_t i = 0; i < n; i++) {
            cnt[ph->regime[i] + 1]++;
            limit += ph->regime_by[i] == NS_MF_BY_SLOPE1;
        }
        printf("phase diagram: %zu x %zu over sigma_w^2 %g..%g, sigma_b^2 %g..%g in %.2f s; "
               "critical line %zu points\n", ph->nsw, ph->nsb, ph->sw2[0], ph->sw2[ph->nsw - 1],
               ph->sb2[0], ph->sb2[ph->nsb - 1], ph->seconds, ph->nline);
        printf("  regimes by the c-map slope at c = 1: ordered %zu, critical %zu, chaotic %zu, "
               "undefined %zu points; the slope is chi_1 at %zu, the limit map's (q* 0 or inf) "
               "at %zu\n", cnt[0], cnt[1], cnt[2], cnt[3], n - limit, limit);
    }
    if (r->order)
        printf("quadrature: tolerance %g, highest order %zu\n", o->tol, r->order);
    else
        printf("quadrature: closed forms only\n");
    printf("result file: %s\n", out);
}

/* --------------------------------------------------------------- command */

int cmd_meanfield(int argc, char **argv)
{
    ns_mf_run_opts mo;
    ns_mf_run_defaults(&mo);
    ns_mf_net *net = &mo.net;
    int threads = 0;
    const char *out = NULL, *grid_spec = NS_MF_DEFAULT_GRID;
    int force = 0, quad = 0, opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":o:h", options, NULL)) != -1) {
        int bad = 0;
        switch (opt) {
        case O_ACT:
            if (ns_mf_act_parse(optarg, &net->act))
                return ns_cli_usage_error("meanfield", "%s", ns_errmsg());
            break;
        case O_SW2: bad = ns_cli_double("meanfield", "--sw2", optarg, &net->sw2); break;
        case O_SB2: bad = ns_cli_double("meanfield", "--sb2", optarg, &net->sb2); break;
        case O_WM: net->weight_mean = 1; break;
        case O_DEPTH: bad = ns_cli_size("meanfield", "--depth", optarg, &mo.depth); break;
        case O_Q0: bad = ns_cli_double("meanfield", "--q0", optarg, &mo.q0); break;
        case O_C0: bad = ns_cli_double("meanfield", "--c0", optarg, &mo.c0); break;
        case O_GRAMN: bad = ns_cli_size("meanfield", "--gram-n", optarg, &mo.gram_n); break;
        case O_GRID: grid_spec = optarg; break;
        case O_TOL: bad = ns_cli_double("meanfield", "--tol", optarg, &mo.tol); break;
        case O_QUAD: quad = 1; break;
        case O_THREADS: bad = ns_cli_threads("meanfield", optarg, &threads); break;
        case 'o': out = optarg; break;
        case O_FORCE: force = 1; break;
        case O_QUIET: ns_progress_set_quiet(1); break;
        case 'h': printf(usage_text, ns_mf_act_names()); return NS_EXIT_OK;
        default: return ns_cli_bad_option("meanfield", options, opt, argv);
        }
        if (bad)
            return NS_EXIT_USAGE;
    }
    if (optind < argc)
        return ns_cli_usage_error("meanfield", "unexpected argument '%s'", argv[optind]);
    net->act.quadrature = quad;
    if (ns_mf_net_check(net))
        return ns_cli_usage_error("meanfield", "%s", ns_errmsg());
    if (!(mo.q0 > 0) || !isfinite(mo.q0))
        return ns_cli_usage_error("meanfield", "--q0 must be a positive number, got %g", mo.q0);
    if (!(fabs(mo.c0) <= 1))
        return ns_cli_usage_error("meanfield", "--c0 must lie in [-1, 1], got %g", mo.c0);
    if (mo.depth < 1 || mo.depth > 100000)
        return ns_cli_usage_error("meanfield", "--depth must be in 1..100000, got %zu",
                                  mo.depth);
    if (mo.gram_n < 1)
        return ns_cli_usage_error("meanfield", "--gram-n must be at least 1");
    if (!(mo.tol >= 1e-14 && mo.tol <= 1e-2))
        return ns_cli_usage_error("meanfield", "--tol must lie in [1e-14, 1e-2], got %g",
                                  mo.tol);
    mo.have_grid = strcmp(grid_spec, "none") != 0;
    if (mo.have_grid && ns_mf_grid_parse(grid_spec, &mo.grid))
        return ns_cli_usage_error("meanfield", "--grid: %s", ns_errmsg());
    if (!out)
        return ns_cli_usage_error("meanfield", "no output file given (use -o OUT.h5)");
    if (threads)
        ns_set_threads(threads);

    /* The output is created first, so a bad path fails before the work. */
    ns_result *res;
    int st = ns_result_create(&res, out, force, ns_cli_cmdline(), NULL, 0);
    if (st)
        return ns_cli_fail(st, NULL);
    ns_mf_results r;
    st = ns_mf_run(&mo, res, ns_cli_cmdline(), &r);
    if (st)
        ns_result_free(res);
    else
        st = ns_result_commit(res);
    if (st) {
        ns_mf_run_release(&r);
        return ns_cli_fail(st, NULL);
    }
    summary(&mo, &r, out);
    ns_mf_run_release(&r);
    return NS_EXIT_OK;
}
