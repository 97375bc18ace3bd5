#!/usr/bin/env python3
"""numpy reference for `normscope spectrum` (src/analysis/spectrum.c).

usage: spectrum_ref.py RESULT.h5 ACTS.h5 STEP POOL
ACTS.h5 (written by tests/test_spectrum.c) holds, per chosen layer, the
activations the network gave for the result's samples, acts/<layer> of shape
(n, C, HW), and per dense/conv layer its weight, weights/<layer>.  Every
statistic of the result is recomputed with numpy from them and compared.
Prints one line per mismatch; exit 0 when all agree."""
import sys

import h5py
import numpy as np

bad = []


def check(what, got, want, rtol=1e-8, atol=0.0):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        bad.append("%s: shape %s, numpy %s" % (what, got.shape, want.shape))
        return
    scale = np.max(np.abs(want)) if want.size else 0.0
    err = np.max(np.abs(got - want)) if want.size else 0.0
    if err > rtol * scale + atol:
        bad.append("%s: max abs diff %.3g (scale %.3g)" % (what, err, scale))


def whitening(cov):
    ev = np.sort(np.linalg.eigvalsh(cov))[::-1]
    lmax, lmin = ev[0], ev[-1]
    cond = lmax / max(lmin, 1e-12 * lmax)
    l = np.clip(ev, 0, None)
    p = l / l.sum()
    p = p[p > 0]
    er = np.exp(-(p * np.log(p)).sum())
    pr = l.sum() ** 2 / (l ** 2).sum()
    d = np.sqrt(np.clip(np.diag(cov), 0, None))
    F = cov.shape[0]
    inv = np.where(d > 0, 1 / np.where(d > 0, d, 1), 0)
    R = cov * inv[:, None] * inv[None, :]
    np.fill_diagonal(R, 1)
    off = R[~np.eye(F, dtype=bool)]
    mac = np.abs(off).mean() if F > 1 else 0
    dist = np.sqrt((off ** 2).sum() / (F * (F - 1))) if F > 1 else 0
    rev = np.sort(np.linalg.eigvalsh(R))[::-1]
    return ev, rev, cond, er, pr, mac, dist


def powerlaw(x, min_tail):
    x = np.sort(x[x > 0])
    n = len(x)
    best = (np.inf, np.nan, np.nan, 0)
    for j in range(n - min_tail + 1):
        if j > 0 and x[j] == x[j - 1]:
            continue
        t = x[j:]
        sl = np.log(t / x[j]).sum()
        if not sl > 0:
            continue
        a = 1 + len(t) / sl
        u, first = np.unique(t, return_index=True)
        last = np.append(first[1:], len(t))
        f = 1 - (u / x[j]) ** (1 - a)
        d = max(np.abs(f - first / len(t)).max(), np.abs(f - last / len(t)).max())
        if d < best[0]:
            best = (d, a, x[j], len(t))
    return best


def main():
    res, acts, step, pool = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    r = h5py.File(res, "r")
    a = h5py.File(acts, "r")
    top = r["spectrum"]
    n = int(top.attrs["n"])
    gram_n = int(top.attrs["gram_n"])
    g = top[step]
    for name in a["acts"]:
        x = a["acts"][name][()].astype(np.float64)      # (n, C, HW)
        assert x.shape[0] == n, (x.shape, n)
        C, HW = x.shape[1], x.shape[2]
        L = g[name]
        if pool:
            obs = x.mean(axis=2)                          # (n, C)
            vec = obs
        else:
            obs = x.transpose(0, 2, 1).reshape(-1, C)    # (n*HW, C)
            vec = x.reshape(n, -1)
        cov = np.cov(obs, rowvar=False).reshape(C, C)
        ev, rev, cond, er, pr, mac, dist = whitening(cov)
        p = "%s/%s" % (step, name)
        check(p + " cov_eigenvalues", L["cov_eigenvalues"][()], ev, 1e-8)
        check(p + " corr_eigenvalues", L["corr_eigenvalues"][()], rev, 1e-8)
        at = L.attrs
        check(p + " condition_number", at["condition_number"], cond, 1e-5)
        check(p + " effective_rank", at["effective_rank"], er, 1e-8)
        check(p + " participation_ratio", at["participation_ratio"], pr, 1e-8)
        check(p + " mean_abs_corr", at["mean_abs_corr"], mac, 1e-8)
        check(p + " corr_identity_distance", at["corr_identity_distance"], dist, 1e-8)
        check(p + " channel_mean", L["channel_mean"][()], obs.mean(axis=0), 1e-9, 1e-12)
        check(p + " channel_std", L["channel_std"][()], obs.std(axis=0, ddof=1), 1e-8, 1e-12)
        check(p + " channel_positive", L["channel_positive"][()], (obs > 0).mean(axis=0), 0,
              1e-12)
        qd = L["channel_quantiles"]
        if int(qd.attrs["observations"]) == obs.shape[0]:
            q = np.quantile(obs, [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99], axis=0).T
            check(p + " channel_quantiles", qd[()], q, 1e-12, 1e-12)
        else:
            bad.append(p + ": quantiles of drawn observations; the test asks for all")
        nrm = np.linalg.norm(vec, axis=1)
        vh = vec / np.where(nrm > 0, nrm, 1)[:, None]
        G = vh @ vh.T
        mc = (G.sum() - np.trace(G)) / (n * (n - 1))
        check(p + " mean_cosine", at["mean_cosine"], mc, 1e-8, 1e-10)
        gv = vec[:gram_n].astype(np.float32).astype(np.float64)   # kept as float
        nv = np.linalg.norm(gv, axis=1)
        gv = gv / np.where(nv > 0, nv, 1)[:, None]
        ge = np.sort(np.linalg.eigvalsh(gv @ gv.T))[::-1]
        check(p + " gram_eigenvalues", L["gram_eigenvalues"][()], ge, 1e-5, 1e-9)
    for name in a["weights"]:
        w = a["weights"][name][()].astype(np.float64)
        w = w.reshape(w.shape[0], -1)
        s = np.linalg.svd(w, compute_uv=False)
        W = g["weights"][name]
        p = "%s/weights/%s" % (step, name)
        check(p + " singular_values", W["singular_values"][()], s, 1e-9)
        check(p + " stable_rank", W.attrs["stable_rank"], (s ** 2).sum() / s[0] ** 2, 1e-9)
        ks, al, xm, nt = powerlaw(s ** 2, 5)
        if np.isnan(al):
            if not np.isnan(W.attrs["alpha"]):
                bad.append(p + " alpha: numpy finds no fit")
        else:
            check(p + " alpha", W.attrs["alpha"], al, 1e-6)
            check(p + " alpha_xmin", W.attrs["alpha_xmin"], xm, 1e-6)
            check(p + " alpha_ks", W.attrs["alpha_ks"], ks, 1e-6)
            if int(W.attrs["alpha_ntail"]) != nt:
                bad.append(p + " alpha_ntail %d, numpy %d" % (W.attrs["alpha_ntail"], nt))
    for b in bad:
        print(b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
