#!/usr/bin/env python3
"""Compares two normscope result files (HDF5): the same groups and data sets
(shapes, dtypes), the same attribute names, and values equal within float
noise.  Attributes that change from run to run (created, seconds,
eig_seconds, peak memory, command_line, source paths, normscope_version)
and the timing columns of a run's history (seconds, images_per_second) are
compared by name and shape only.  Float data: rtol 1e-6 (atol scaled by the data's
largest magnitude); eigenvalues relative to the largest.

usage: compare_results.py A.h5 B.h5 [--rtol R]
Exit 0 when equivalent, 1 with one line per difference otherwise."""
import sys

import h5py
import numpy as np

VOLATILE = {"created", "seconds", "eig_seconds", "command_line", "normscope_version",
            "source", "version", "peak_rss_bytes", "resumed_by"}
# Data sets of wall-clock measurements: compared by shape only.
VOLATILE_DATA = {"seconds", "images_per_second"}


def walk(f):
    objs = {}

    def visit(name, obj):
        objs[name] = obj
    f.visititems(visit)
    objs["/"] = f
    return objs


def close(a, b, rtol, scale=None):
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" or b.dtype.kind in "fc":
        a = a.astype(np.float64)
        b = b.astype(np.float64)
        if not np.array_equal(np.isnan(a), np.isnan(b)):
            return False
        m = ~np.isnan(a)
        if scale is None:
            scale = np.abs(b[m]).max() if m.any() else 0.0
            scale = scale if np.isfinite(scale) else 0.0
        fin = m & np.isfinite(a) & np.isfinite(b)
        if not np.array_equal(a[m & ~fin], b[m & ~fin]):
            return False
        return bool(np.all(np.abs(a[fin] - b[fin]) <= rtol * np.abs(b[fin]) + rtol * scale))
    if a.dtype.kind in "OSU" or b.dtype.kind in "OSU":
        return [x.decode() if isinstance(x, bytes) else str(x) for x in a.ravel()] == \
               [x.decode() if isinstance(x, bytes) else str(x) for x in b.ravel()]
    return np.array_equal(a, b)


def main():
    args = sys.argv[1:]
    rtol = 1e-6
    if "--rtol" in args:
        i = args.index("--rtol")
        rtol = float(args[i + 1])
        del args[i:i + 2]
    fa, fb = (h5py.File(p, "r") for p in args[:2])
    oa, ob = walk(fa), walk(fb)
    diffs = []
    for name in sorted(set(oa) | set(ob)):
        if name not in oa or name not in ob:
            diffs.append("%s: only in %s" % (name, args[0] if name in oa else args[1]))
            continue
        a, b = oa[name], ob[name]
        if type(a) is not type(b) and not (name == "/"):
            diffs.append("%s: group in one, data set in the other" % name)
            continue
        na, nb = set(a.attrs), set(b.attrs)
        if na != nb:
            diffs.append("%s: attributes differ: %s" % (name, sorted(na ^ nb)))
        for k in sorted(na & nb):
            if k in VOLATILE:
                continue
            va, vb = a.attrs[k], b.attrs[k]
            if isinstance(va, (bytes, str)) or isinstance(vb, (bytes, str)):
                sa = va.decode() if isinstance(va, bytes) else str(va)
                sb = vb.decode() if isinstance(vb, bytes) else str(vb)
                if sa != sb:
                    diffs.append("%s attr %s: %r != %r" % (name, k, sa, sb))
            elif not close(va, vb, rtol, scale=0.0 if np.ndim(va) == 0 else None):
                # scalar attributes: relative, with an absolute floor for values near 0
                if not (np.ndim(va) == 0 and close(va, vb, rtol, scale=1e-12)):
                    diffs.append("%s attr %s: %r != %r" % (name, k, va, vb))
        if isinstance(a, h5py.Dataset):
            if a.shape != b.shape or a.dtype != b.dtype:
                diffs.append("%s: shape/dtype %s %s != %s %s" % (name, a.shape, a.dtype,
                                                                b.shape, b.dtype))
                continue
            if name.rsplit("/", 1)[-1] in VOLATILE_DATA:
                continue
            da, db = a[()], b[()]
            scale = None
            if name.endswith("eigenvalues") and db.size:
                scale = float(np.nanmax(np.abs(db)))
            if not close(da, db, rtol, scale):
                err = np.nanmax(np.abs(da.astype(float) - db.astype(float))) \
                    if da.dtype.kind in "fiu" else "-"
                diffs.append("%s: values differ (max abs diff %s)" % (name, err))
    for d in diffs:
        print(d)
    print("%s vs %s: %d objects, %s" % (args[0], args[1], len(oa),
                                        "equivalent" if not diffs else "%d differences" % len(diffs)))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
