#!/bin/sh
# CLI tests of spectrum: a small run's per-layer statistics and weight
# spectra land in the result file under the documented names; bad input
# gives one line naming the problem, exit 2 and no output file.  Needs
# NS_BIN and PYTHON (with h5py).
. "$(dirname "$0")/../cli_lib.sh"

Q="--quiet --threads 2"
$NS train --arch mlp:32x2 --norm bn --epochs 1 --train-n 400 --test-n 100 -o "$T/bn.h5" $Q >/dev/null || bad "training bn"
$NS train --arch cnn --norm bn --steps 3 --batch 16 --train-n 200 --test-n 50 -o "$T/cnn.h5" $Q >/dev/null || bad "training cnn"

# The default layers of every checkpoint, the documented layout.
if $NS spectrum "$T/bn.h5" --n 64 --ckpt all -o "$T/s.h5" $Q > "$T/out.txt"; then ok; else bad "spectrum failed"; fi
has "$T/out.txt" "02-relu" "summary lists the layers"
"$PY" - "$T/s.h5" <<'PYEOF' && ok || bad "spectrum result layout"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
assert f.attrs["format"] == "normscope-result"
g = f["spectrum"]
assert list(g["indices"][()]) == list(range(64))
steps = sorted(int(s) for s in g if s.isdigit())
assert steps == [0, 4], steps
for s in steps:
    layers = sorted(k for k in g[str(s)] if k != "weights")
    assert layers == ["00-dense", "02-relu", "03-dense", "05-relu", "06-dense"], layers
    for l in layers:
        L = g["%d/%s" % (s, l)]
        F = L.attrs["features"]
        for d in ("cov_eigenvalues", "corr_eigenvalues", "channel_mean", "channel_std",
                  "channel_positive"):
            assert L[d].shape == (F,), (l, d)
            assert "description" in L[d].attrs
        assert L["channel_quantiles"].shape == (F, 7)
        assert L["gram_eigenvalues"].shape == (64,)
        ev = L["cov_eigenvalues"][()]
        assert (np.diff(ev) <= 0).all()
        assert abs(L["corr_eigenvalues"][()].sum() - F) < 1e-6 * F
        for a in ("condition_number", "effective_rank", "participation_ratio", "mean_abs_corr",
                  "corr_identity_distance", "mean_cosine"):
            assert np.isfinite(L.attrs[a]), (l, a)
        assert 1 <= L.attrs["effective_rank"] <= F + 1e-9
        role = L.attrs["role"]
        role = role.decode() if isinstance(role, bytes) else role
        assert role == ("activation" if l.endswith("relu") else "dense"), (l, role)
        q = L["channel_quantiles"][()]
        assert (np.diff(q, axis=1) >= -1e-12).all()
    w = sorted(g["%d/weights" % s])
    assert w == ["00-dense", "03-dense", "06-dense"], w
    for l in w:
        W = g["%d/weights/%s" % (s, l)]
        assert W.attrs["stable_rank"] >= 1
# ReLU outputs are never negative.
assert (g["%d/02-relu/channel_quantiles" % steps[-1]][()] >= 0).all()
PYEOF
$NS info "$T/s.h5" | grep -q "effective_rank" && ok || bad "info lacks the metrics"

# Chosen layers, inputs of layers, pooled conv features, batch mode.
$NS spectrum "$T/cnn.h5" --n 32 --layers 02-relu,06-conv --pool -o "$T/c.h5" $Q >/dev/null && ok || bad "spectrum --layers --pool"
"$PY" - "$T/c.h5" <<'PYEOF' && ok || bad "chosen layers"
import sys, h5py
g = h5py.File(sys.argv[1], "r")["spectrum/3"]
assert sorted(k for k in g if k != "weights") == ["02-relu", "06-conv"]
assert g["02-relu"].attrs["observations"] == 32 and g["06-conv"].attrs["features"] == 128
PYEOF
$NS spectrum "$T/cnn.h5" --n 16 --at pre --no-weights --mode batch -o "$T/p.h5" $Q >/dev/null && ok || bad "spectrum --at pre --mode batch"
"$PY" - "$T/p.h5" <<'PYEOF' && ok || bad "inputs of layers"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
g = f["spectrum/3"]
at = f["spectrum"].attrs["at"]
assert "weights" not in g and (at.decode() if isinstance(at, bytes) else at) == "pre"
assert g["00-conv"].attrs["features"] == 1          # the image's one channel
PYEOF

# Bad input.
expect 2 "'07-nothing' is not a layer of" "$T/x.h5" $NS spectrum "$T/bn.h5" --layers 00-dense,07-nothing -o "$T/x.h5" $Q
expect 2 "--layers expects names separated by commas" "$T/x.h5" $NS spectrum "$T/bn.h5" --layers 00-dense,,02-relu -o "$T/x.h5"
expect 2 "--at is pre or post, got 'mid'" "$T/x.h5" $NS spectrum "$T/bn.h5" --at mid -o "$T/x.h5"
expect 2 "--mode is eval, batch or recal" "$T/x.h5" $NS spectrum "$T/bn.h5" --mode train -o "$T/x.h5"
expect 2 "--mode batch takes all samples in one pass" "$T/x.h5" $NS spectrum "$T/bn.h5" --mode batch --n 0 -o "$T/x.h5"
expect 2 "--quantile-n must be positive" "$T/x.h5" $NS spectrum "$T/bn.h5" --quantile-n 0 -o "$T/x.h5"
expect 2 "spectrum needs two samples or more" "$T/x.h5" $NS spectrum "$T/bn.h5" --n 1 -o "$T/x.h5" $Q
expect 2 "no checkpoint at step 7 in" "$T/x.h5" $NS spectrum "$T/bn.h5" --ckpt 7 -o "$T/x.h5" $Q
expect 2 "not a normscope run file" "$T/x.h5" $NS spectrum "$T/s.h5" -o "$T/x.h5" $Q
expect 2 "cannot open '$T/missing.h5'" "$T/x.h5" $NS spectrum "$T/missing.h5" -o "$T/x.h5"
expect 2 "larger than the data set" "$T/x.h5" $NS spectrum "$T/bn.h5" --n 70000 -o "$T/x.h5" $Q
expect_line 2 "normscope spectrum: no output file given (use -o OUT.h5)" "" $NS spectrum "$T/bn.h5"
expect 2 "unknown option '--bogus'" "$T/x.h5" $NS spectrum "$T/bn.h5" --bogus -o "$T/x.h5"
expect 2 "exists; use --force" "" $NS spectrum "$T/bn.h5" --n 4 -o "$T/s.h5" $Q
expect 2 "is the input" "" $NS spectrum "$T/bn.h5" --n 4 -o "$T/bn.h5" --force $Q

finish test_spectrum_cli
