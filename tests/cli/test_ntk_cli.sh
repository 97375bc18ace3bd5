#!/bin/sh
# CLI tests of ntk: a small run's kernels, spectra and drift land in the
# result file; bad input gives one line naming the problem, exit 2 and no
# output file.  Needs NS_BIN (the normscope binary) and PYTHON (with h5py).
. "$(dirname "$0")/../cli_lib.sh"

Q="--quiet --threads 2"
$NS train --arch mlp:64x2 --norm bn --epochs 2 --train-n 600 --test-n 100 -o "$T/bn.h5" $Q >/dev/null || bad "training bn"
$NS train --arch mlp:64x2 --norm none --epochs 1 --train-n 600 --test-n 100 -o "$T/none.h5" $Q >/dev/null || bad "training none"

# A good result: every checkpoint, drift, indices; info shows the numbers.
if $NS ntk "$T/bn.h5" --n 12 -o "$T/k.h5" $Q > "$T/out.txt"; then ok; else bad "ntk failed"; fi
"$PY" - "$T/k.h5" <<'PYEOF' && ok || bad "ntk result layout"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
assert f.attrs["format"] == "normscope-result"
g = f["ntk"]
steps = sorted(int(s) for s in g if s.isdigit())
assert steps[0] == 0 and len(steps) == 3, steps
for s in steps:
    k = g["%d/kernel" % s][()]
    ev = g["%d/eigenvalues" % s][()]
    assert k.shape == (120, 120)
    assert np.allclose(k, k.T)
    assert np.allclose(np.sort(np.linalg.eigvalsh(k))[::-1], ev, rtol=1e-6, atol=1e-6 * ev[0])
    a = g[str(s)].attrs
    assert abs(a["trace"] - np.trace(k)) < 1e-6 * a["trace"]
    assert abs(a["condition_number"] - ev[0] / ev[-1]) < 1e-6 * a["condition_number"]
    assert abs(g["%d/layer_trace" % s][()].sum() - a["trace"]) < 1e-5 * a["trace"]
d = g["drift/to_init"][()]
assert d[0] == 0 and (d[1:] > 0).all()
assert list(g["indices"][()]) == list(range(12))
PYEOF
$NS info "$T/k.h5" | grep -q "condition_number" && ok || bad "info lacks the condition number"

# Trace kernel, batch mode, one checkpoint by step.
$NS ntk "$T/bn.h5" --n 8 --kernel trace --mode batch --ckpt 0,10 -o "$T/kb.h5" $Q >/dev/null && ok || bad "ntk batch/trace"
$NS ntk "$T/bn.h5" --n 8 --mode recal --recal-n 300 --ckpt last -o "$T/kr.h5" $Q | grep -q "recal mode" && ok || bad "ntk recal"
# Out of core: a budget smaller than the kernel writes it tile by tile and
# asks ARPACK for the top eigenvalues.
$NS ntk "$T/none.h5" --n 24 --ckpt last --mem 300K --block 4 --top 5 -o "$T/ko.h5" $Q >/dev/null && ok || bad "ntk out of core"
$NS ntk "$T/none.h5" --n 24 --ckpt last -o "$T/ki.h5" $Q >/dev/null
"$PY" - "$T/ko.h5" "$T/ki.h5" <<'PYEOF' && ok || bad "out-of-core kernel differs from in-memory"
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
s = [k for k in a["ntk"] if k.isdigit()][0]
ka, kb = a["ntk/%s/kernel" % s][()], b["ntk/%s/kernel" % s][()]
assert np.abs(ka - kb).max() < 1e-5 * np.abs(kb).max()
ea, eb = a["ntk/%s/eigenvalues" % s][()], b["ntk/%s/eigenvalues" % s][()]
assert len(ea) == 5 and np.allclose(ea, eb[:5], rtol=1e-5)
assert np.isnan(a["ntk/%s" % s].attrs["condition_number"])
PYEOF

# The analytic kernel of a wide dense net at init (gauss init) is close to
# the measured kernel of one output.
$NS train --arch mlp:1024x2 --norm none --init gauss:2,0.05 --steps 1 --train-n 300 --test-n 100 \
    -o "$T/g.h5" $Q >/dev/null || bad "training gauss"
$NS ntk "$T/g.h5" --n 6 --ckpt 0 --analytic --analytic-depth 20 -o "$T/ka.h5" $Q >/dev/null && ok || bad "ntk --analytic"
"$PY" - "$T/ka.h5" <<'PYEOF' && ok || bad "analytic comparison"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
a = f["ntk/analytic"]
assert a["kernel"].shape == (6, 6) and len(a["depth/condition_number"]) == 20
assert f["ntk/0"].attrs["analytic_relerr"] < 0.15, f["ntk/0"].attrs["analytic_relerr"]
assert f["ntk/0"].attrs["depth"] == 3
PYEOF
$NS train --arch mlp:32x2 --norm bn --init gauss:2,0 --steps 1 --train-n 300 --test-n 100 \
    -o "$T/gbn.h5" $Q >/dev/null || bad "training gauss bn"
expect 2 "--analytic needs a network of dense layers" "$T/x.h5" $NS ntk "$T/gbn.h5" --analytic -o "$T/x.h5" $Q
expect 2 "--analytic needs a run trained from --init gauss" "$T/x.h5" $NS ntk "$T/none.h5" --analytic -o "$T/x.h5" $Q

# Figures of the NTK results, two files overlaid; wrong inputs refused.
for kind in ntk-spectrum ntk-training ntk-layers; do
    if $NS plot "$T/k.h5" "$T/ki.h5" --what $kind -o "$T/fig" --quiet >/dev/null 2>"$T/err" &&
       [ "$(wc -c < "$T/fig/$kind.png")" -gt 20000 ]; then ok; else bad "plot $kind: $(cat "$T/err")"; fi
done
$NS plot "$T/ka.h5" --what ntk-depth -o "$T/fig" --quiet >/dev/null && [ -s "$T/fig/ntk-depth.png" ] && ok || bad "plot ntk-depth"
expect 2 "no analytic kernel" "$T/fig2/ntk-depth.png" $NS plot "$T/k.h5" --what ntk-depth -o "$T/fig2"
$NS plot "$T/kb.h5" --what ntk-training -o "$T/fig1" --quiet >/dev/null && ok || bad "plot one checkpoint"
expect 2 "not a normscope result file" "$T/fig2/ntk-spectrum.png" $NS plot "$T/bn.h5" --what ntk-spectrum -o "$T/fig2"
$NS meanfield --grid none -o "$T/mf.h5" $Q >/dev/null
expect 2 "no NTK results" "$T/fig2/ntk-layers.png" $NS plot "$T/mf.h5" --what ntk-layers -o "$T/fig2"

# Bad input.
expect 2 "--n 70000 is larger than the data set" "$T/x.h5" $NS ntk "$T/bn.h5" --n 70000 -o "$T/x.h5" $Q
expect 2 "no checkpoint at step 7 in" "$T/x.h5" $NS ntk "$T/bn.h5" --ckpt 7 -o "$T/x.h5" $Q
expect 2 "not a normscope run file" "$T/x.h5" $NS ntk "$T/k.h5" -o "$T/x.h5" $Q
# --mem too small: the size as typed and the least that does; that much
# passes the check, a KiB less does not.
expect 2 "^normscope: --mem 10K: too small for one block of the NTK (at least [0-9]* KiB)\$" "$T/x.h5" \
    $NS ntk "$T/bn.h5" --n 8 --mem 10K -o "$T/x.h5" $Q
least=$(sed -n 's/.*(at least \([0-9]*\) KiB)$/\1/p' "$T/stderr")
if [ -n "$least" ]; then
    expect_line 2 "normscope: --mem $((least - 1))K: too small for one block of the NTK (at least $least KiB)" \
        "$T/x.h5" $NS ntk "$T/bn.h5" --n 8 --mem $((least - 1))K -o "$T/x.h5" $Q
    $NS ntk "$T/bn.h5" --n 8 --ckpt last --mem ${least}K -o "$T/x.h5" $Q >/dev/null 2>"$T/err" &&
        ok || bad "ntk --mem ${least}K (the least the message named): $(cat "$T/err")"
    rm -f "$T/x.h5"
else
    bad "no size in the --mem message: $(cat "$T/stderr")"
fi
expect_line 2 "normscope: --mem 0: too small for one block of the NTK (at least $least KiB)" "$T/x.h5" \
    $NS ntk "$T/bn.h5" --n 8 --mem 0 -o "$T/x.h5" $Q
# Sizes: decimal digits, a fraction, K/M/G and an optional B or iB; nothing
# strtod alone would take (exponents, hex, inf).
for m in 1e30 0x10M inf -1G 2T 5K+ " 5M"; do
    expect_line 2 "normscope ntk: --mem expects a size such as 512M or 2G, got '$m' (see 'normscope ntk --help')" \
        "$T/x.h5" $NS ntk "$T/bn.h5" --mem "$m" -o "$T/x.h5"
done
for m in 1.5G 512MiB 64mb 1073741824; do
    $NS ntk "$T/bn.h5" --n 4 --ckpt last --mem $m -o "$T/x.h5" $Q >/dev/null 2>"$T/err" &&
        ok || bad "ntk --mem $m: $(cat "$T/err")"
    rm -f "$T/x.h5"
done
expect 2 "--mode batch needs a layer with batch statistics" "$T/x.h5" $NS ntk "$T/none.h5" --mode batch -o "$T/x.h5" $Q
expect 2 "cannot open '$T/missing.h5'" "$T/x.h5" $NS ntk "$T/missing.h5" -o "$T/x.h5"
expect 2 "--kernel is full or trace" "$T/x.h5" $NS ntk "$T/bn.h5" --kernel half -o "$T/x.h5"
expect 2 "--mem expects a size" "$T/x.h5" $NS ntk "$T/bn.h5" --mem lots -o "$T/x.h5"
expect_line 2 "normscope ntk: no output file given (use -o OUT.h5)" "" $NS ntk "$T/bn.h5"
# An empty --ckpt list once read an uninitialised step.
for c in , "" " 5" 4,,0 ,0 0,; do
    expect_line 2 "normscope ntk: --ckpt takes init, last, all or a list of at most 64 steps, got '$c' (see 'normscope ntk --help')" \
        "$T/x.h5" $NS ntk "$T/bn.h5" --ckpt "$c" -o "$T/x.h5"
done
expect_line 2 "normscope: --ckpt names step 0 twice" "$T/x.h5" $NS ntk "$T/bn.h5" --ckpt 0,0 -o "$T/x.h5" $Q
expect_line 2 "normscope ntk: --threads must be an integer in 1..256, got '5000000000' (see 'normscope ntk --help')" \
    "$T/x.h5" $NS ntk "$T/bn.h5" --threads 5000000000 -o "$T/x.h5"
expect_line 2 "normscope ntk: option '--me' is ambiguous: --method, --mem (see 'normscope ntk --help')" \
    "$T/x.h5" $NS ntk "$T/bn.h5" --me 1G -o "$T/x.h5"
expect_line 2 "normscope ntk: option '--force' takes no value (see 'normscope ntk --help')" \
    "$T/x.h5" $NS ntk "$T/bn.h5" --force=yes -o "$T/x.h5"
expect 2 "unknown option '--bogus'" "$T/x.h5" $NS ntk "$T/bn.h5" --bogus -o "$T/x.h5"
expect 2 "exists; use --force" "" $NS ntk "$T/bn.h5" --n 4 -o "$T/k.h5" $Q

# A signal while the result is being written removes the temporary file and
# leaves no output behind.
$NS ntk "$T/none.h5" --split train --n 600 --ckpt last -o "$T/ks.h5" $Q >/dev/null 2>&1 &
pid=$!
i=0
while [ $i -lt 100 ] && ! ls "$T"/ks.h5.tmp-* >/dev/null 2>&1; do sleep 0.05; i=$((i + 1)); done
if ls "$T"/ks.h5.tmp-* >/dev/null 2>&1; then
    kill -TERM $pid
    wait $pid; got=$?
    if [ "$got" = 143 ] && ! ls "$T"/ks.h5* >/dev/null 2>&1; then ok
    else bad "SIGTERM: exit $got, left: $(ls "$T"/ks.h5* 2>/dev/null)"; fi
else
    wait $pid; bad "ntk --n 600 never wrote its temporary file"
fi

finish test_ntk_cli
