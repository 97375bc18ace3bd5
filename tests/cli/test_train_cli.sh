#!/bin/sh
# CLI tests of train and eval: bad input gives one line naming the problem,
# exit 2 and no output file; determinism, resume bit for bit, divergence.
# Needs NS_BIN (the normscope binary) and PYTHON (with h5py).
. "$(dirname "$0")/../cli_lib.sh"

SMALL="--train-n 1000 --test-n 200 --quiet --threads 2"

expect 2 "cannot open '/nonexistent/x" "$T/a.h5" $NS train --data idx:/nonexistent/x -o "$T/a.h5" $SMALL
echo "not hdf5" > "$T/fake.h5"
expect 2 "not an HDF5 file" "$T/b.h5" $NS train --data "$T/fake.h5" -o "$T/b.h5" $SMALL
mkdir "$T/idx"
src=${NS_DATA_DIR:-/usr/share/datasets/fashion-mnist}
for f in train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do cp "$src/$f.gz" "$T/idx/"; done
gzip -dc "$src/train-images-idx3-ubyte.gz" | head -c 100000 > "$T/idx/train-images-idx3-ubyte"
expect 2 "truncated" "$T/c.h5" $NS train --data "idx:$T/idx" -o "$T/c.h5" $SMALL
expect 2 "bad architecture token 'conv3x3:foo'" "$T/d.h5" $NS train --arch conv3x3:foo,gap,fc:out -o "$T/d.h5" $SMALL
# A preset inside a list of layers is refused as such (before any data is
# read); an unknown layer is named by its own token.
expect_line 2 "normscope train: bad architecture token 'mlp': a preset cannot be combined with layers (use it alone or write out its layers)" \
    "$T/d.h5" $NS train --arch mlp,banana -o "$T/d.h5" $SMALL
expect_line 2 "normscope train: bad architecture token 'mlp:64x2': a preset cannot be combined with layers (use it alone or write out its layers)" \
    "$T/d.h5" $NS train --arch fc:32,mlp:64x2 -o "$T/d.h5" $SMALL
expect_line 2 "normscope: bad architecture token 'banana': unknown layer" \
    "$T/d.h5" $NS train --arch fc:64,relu,banana,fc:out -o "$T/d.h5" $SMALL
expect 2 "unknown option '--bogus'" "$T/e.h5" $NS train --bogus -o "$T/e.h5"
expect 2 "lr must be a number in (0, 1e+06\]" "$T/f.h5" $NS train --lr -0.1 -o "$T/f.h5"
expect 2 "batch must be an integer in 1..65536" "$T/g.h5" $NS train --batch 0 -o "$T/g.h5"
expect 2 "expects a non-negative integer" "$T/g.h5" $NS train --epochs many -o "$T/g.h5"
expect_line 2 "normscope train: unknown normalization method 'xyz' (see 'normscope train --list-norms')" \
    "$T/h.h5" $NS train --norm xyz -o "$T/h.h5"
expect_line 2 "normscope train: no output file given (use -o RUN.h5)" "" $NS train --epochs 1
expect 2 "unknown data set" "$T/i.h5" $NS train --data nosuchset -o "$T/i.h5" $SMALL
expect_line 2 "normscope: unknown command 'frobnicate' (see 'normscope --help')" "" $NS frobnicate

# Usage errors: one line, exit 2, at most one bracketed hint, the option
# named as it was typed.
expect_line 2 "normscope: no command given (see 'normscope --help')" "" $NS
expect_line 2 "normscope: unknown option '--bogus' (see 'normscope --help')" "" $NS --bogus
expect_line 2 "normscope train: unknown normalization method 'xyz' (see 'normscope train --list-norms')" \
    "" $NS train --help-norm xyz
expect_line 2 "normscope train: unknown optimiser 'nadam' (sgd, adam, adamw)" "$T/e.h5" \
    $NS train --optim nadam -o "$T/e.h5"
expect_line 2 "normscope train: bad schedule 'step:x' (step:E1,E2[@GAMMA])" "$T/e.h5" \
    $NS train --schedule step:x -o "$T/e.h5"
expect_line 2 "normscope train: unknown option '-z' (see 'normscope train --help')" "$T/e.h5" \
    $NS train --quiet -zq -o "$T/e.h5"
expect_line 2 "normscope train: option '--quiet' takes no value (see 'normscope train --help')" \
    "$T/e.h5" $NS train --quiet=1 -o "$T/e.h5"
expect_line 2 "normscope train: option '--arch' needs a value (see 'normscope train --help')" \
    "" $NS train --arch
expect_line 2 "normscope train: option '--bn' is ambiguous: --bn-momentum, --bn-eps (see 'normscope train --help')" \
    "" $NS train --bn 3
expect_line 2 "normscope train: --threads must be an integer in 1..256, got '0' (see 'normscope train --help')" \
    "$T/e.h5" $NS train --threads 0 -o "$T/e.h5"
# A sign after a blank once wrapped round to 2^64 - 1 and trained on.
expect_line 2 "normscope train: --seed expects a non-negative integer, got ' -1' (see 'normscope train --help')" \
    "$T/e.h5" $NS train --seed " -1" -o "$T/e.h5" $SMALL
for a in "fc:10,,relu" "fc:10,relu," ",fc:10"; do
    expect_line 2 "normscope: bad architecture '$a': empty token (two commas, or a comma at an end)" \
        "$T/e.h5" $NS train --arch "$a" -o "$T/e.h5" $SMALL
done
for s in , 1,,2 ""; do
    expect_line 2 "normscope train: --ckpt-steps takes a comma-separated list of steps, got '$s' (see 'normscope train --help')" \
        "$T/e.h5" $NS train --ckpt-steps "$s" -o "$T/e.h5" $SMALL
done
expect_line 2 "normscope train: --clip must be a finite number >= 0, got '-1' (see 'normscope train --help')" \
    "$T/e.h5" $NS train --clip -1 -o "$T/e.h5" $SMALL
run $NS help train
want 0 "help train" && has "$T/stdout" "usage: normscope train" "help train prints the train usage"
expect_line 2 "normscope: no help on 'bogus': not a command (see 'normscope --help')" "" $NS help bogus
expect_line 2 "normscope: --version takes no arguments, got 'x' (see 'normscope --help')" "" $NS --version x
expect_line 2 "normscope: help takes at most one command name, got 'x' (see 'normscope --help')" "" \
    $NS help train x
expect 2 "cannot open '$T/missing.h5'" "" $NS eval "$T/missing.h5"
expect 2 "not an HDF5 file" "" $NS eval "$T/fake.h5"

# A good run, then refusal to overwrite it.
if $NS train --arch mlp:64x1 --epochs 2 -o "$T/r.h5" $SMALL >/dev/null; then ok; else bad "small training run failed"; fi
cp "$T/r.h5" "$T/r.copy"
expect 2 "exists; use --force" "" $NS train --arch mlp:64x1 --epochs 1 -o "$T/r.h5" $SMALL
cmp -s "$T/r.h5" "$T/r.copy" && ok || bad "refused overwrite still changed the file"
expect 2 "no checkpoint at step 7" "" $NS eval "$T/r.h5" --ckpt 7
$NS eval "$T/r.h5" --ckpt 0 >/dev/null 2>&1 && ok || bad "eval of step 0 failed"
$NS eval "$T/r.h5" --mode recal --recal-n 500 --n 200 2>/dev/null | grep -q "recal mode" && ok || bad "eval --mode recal failed"
expect 2 "--mode is eval, batch or recal" "" $NS eval "$T/r.h5" --mode sideways
# --n beyond the data set was once clamped silently.
expect_line 2 "normscope: --n 999999 is larger than the data set (10000 test samples in 'fashion-mnist')" \
    "" $NS eval "$T/r.h5" --n 999999
expect 2 "--recal-n 9999999 is larger than the training set" "" $NS eval "$T/r.h5" --mode recal --recal-n 9999999
expect_line 2 "normscope eval: unknown option '--bogus' (see 'normscope eval --help')" "" \
    $NS eval "$T/r.h5" --bogus
expect_line 2 "normscope eval: --ckpt expects a non-negative integer, got '+4' (see 'normscope eval --help')" \
    "" $NS eval "$T/r.h5" --ckpt +4
# A thread count beyond reason was an out-of-memory failure in libgomp.
expect_line 2 "normscope eval: --threads must be an integer in 1..256, got '5000000000' (see 'normscope eval --help')" \
    "" $NS eval "$T/r.h5" --threads 5000000000

# Determinism: the same seed and threads give identical files' weights.
$NS train --arch mlp:64x1 --epochs 2 -o "$T/r2.h5" $SMALL >/dev/null
# Resume: 1 epoch, then resume to 2, equals 2 epochs straight (at a constant
# lr: extending a cosine run changes the schedule of the steps already taken).
$NS train --arch mlp:64x1 --epochs 2 -o "$T/rc.h5" $SMALL --schedule const >/dev/null
$NS train --arch mlp:64x1 --epochs 1 -o "$T/s.h5" $SMALL --schedule const >/dev/null
$NS train --resume "$T/s.h5" --epochs 2 -o "$T/s2.h5" --quiet >/dev/null || bad "resume failed"
"$PY" - "$T/r.h5" "$T/r2.h5" "$T/rc.h5" "$T/s2.h5" <<'PYEOF' && ok || bad "determinism/resume mismatch"
import sys, h5py, numpy as np
def weights(p):
    with h5py.File(p, "r") as f:
        steps = sorted(int(s) for s in f["checkpoints"])
        out = {}
        def grab(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]
        f["checkpoints/%d" % steps[-1]].visititems(grab)
        return steps[-1], out, f["history/step/loss"][()]
a, b, r, c = (weights(p) for p in sys.argv[1:5])
assert a[0] == b[0] == r[0] == c[0], (a[0], b[0], r[0], c[0])
for k in a[1]:
    assert np.array_equal(a[1][k], b[1][k]), "determinism: " + k
    assert np.array_equal(r[1][k], c[1][k]), "resume: " + k
assert np.array_equal(r[2], c[2]), "resumed loss history differs"
PYEOF

# A method's default recipe (lr, warm-up, clipping) applies unless the
# options are given, and is what /config records.
$NS train --arch mlp:16x1 --norm ln --steps 2 -o "$T/ln.h5" $SMALL >/dev/null
$NS train --arch mlp:16x1 --norm ln --steps 2 --lr 0.1 --warmup 0 --clip 0 -o "$T/ln0.h5" $SMALL >/dev/null
$NS train --arch mlp:16x1 --norm bn --steps 2 -o "$T/bn0.h5" $SMALL >/dev/null
"$PY" - "$T/ln.h5" "$T/ln0.h5" "$T/bn0.h5" <<'PYEOF' && ok || bad "method default recipe not applied or not overridden"
import sys, h5py
def cfg(p):
    a = h5py.File(p, "r")["config"].attrs
    return float(a["lr"]), int(a["warmup"]), float(a["clip"])
assert cfg(sys.argv[1]) == (0.3, 300, 2.0), cfg(sys.argv[1])
assert cfg(sys.argv[2]) == (0.1, 0, 0.0), cfg(sys.argv[2])
assert cfg(sys.argv[3]) == (0.05, 0, 0.0), cfg(sys.argv[3])
PYEOF
run $NS train --help-norm ln
want 0 "--help-norm ln" && has "$T/stdout" "default gradient clipping: global norm 2" "--help-norm gives the clipping"
# --help-norm lists each option a method reads from its declaration: its
# own and the shared ones, with default and range.
run $NS train --help-norm bkn
want 0 "--help-norm bkn" && has "$T/stdout" "--bkn-predict group|last" "--help-norm bkn names the choices"
has "$T/stdout" "78.6%" "--help-norm bkn keeps its numbers"
has "$T/stdout" "--bkn-samples K" "--help-norm bkn lists --bkn-samples"
has "$T/stdout" "1..65536)" "--help-norm bkn gives the range"
has "$T/stdout" "--bn-eps E" "--help-norm bkn lists the shared options it reads"
run $NS train --help-norm frn
want 0 "--help-norm frn" && has "$T/stdout" "--frn-relu" "--help-norm frn lists its flag"

# BKN's prediction mode and gradient are recorded in /config and bad values
# refused; a run written before they were recorded resumes with the old
# behaviour (last group, no gradient through the prediction): resumed from
# a copy without the attributes, it matches a --bkn-predict last run.
BKN="--arch conv3x3:4,norm,relu,conv3x3:4/2,norm,relu,gap,fc:out --norm bkn --norm-group 4 --schedule const"
expect_line 2 "normscope train: --bkn-predict is group or last, got 'first' (see 'normscope train --help')" \
    "$T/e.h5" $NS train --bkn-predict first -o "$T/e.h5" $SMALL
expect_line 2 "normscope train: --bkn-grad is none or full, got 'some' (see 'normscope train --help')" \
    "$T/e.h5" $NS train --bkn-grad some -o "$T/e.h5" $SMALL
$NS train $BKN --steps 4 -o "$T/bg.h5" $SMALL >/dev/null || bad "bkn run failed"
$NS train $BKN --steps 4 --bkn-predict last --bkn-grad none -o "$T/bl.h5" $SMALL >/dev/null ||
    bad "bkn run with --bkn-predict last --bkn-grad none failed"
$NS train $BKN --steps 2 --bkn-predict last --bkn-grad none -o "$T/bo.h5" $SMALL >/dev/null
"$PY" - "$T/bg.h5" "$T/bl.h5" "$T/bo.h5" <<'PYEOF' && ok || bad "bkn modes not recorded in /config"
import sys, h5py
def cfg(p):
    a = h5py.File(p, "r")["config"].attrs
    return a["bkn_predict"], int(a["bkn_grad"])
assert cfg(sys.argv[1]) == ("group", 1), cfg(sys.argv[1])
assert cfg(sys.argv[2]) == ("last", 0), cfg(sys.argv[2])
with h5py.File(sys.argv[3], "r+") as f:
    del f["config"].attrs["bkn_predict"]
    del f["config"].attrs["bkn_grad"]
PYEOF
$NS train --resume "$T/bo.h5" --steps 4 -o "$T/bo4.h5" --quiet >/dev/null || bad "resume of an old bkn run failed"
"$PY" - "$T/bl.h5" "$T/bo4.h5" "$T/bg.h5" <<'PYEOF' && ok || bad "old bkn run did not resume with the last-group prediction"
import sys, h5py, numpy as np
def last(p):
    with h5py.File(p, "r") as f:
        return f["history/step/loss"][()], f["config"].attrs["bkn_predict"]
(a, _), (b, mode), (g, _) = (last(p) for p in sys.argv[1:4])
assert mode == "last", mode
assert np.array_equal(a, b), (a, b)
assert not np.array_equal(a, g), "the two modes trained alike"
PYEOF

# Divergence: exit 1, the run file stays valid and says so.
expect 1 "diverged" "" $NS train --arch mlp:64x1 --norm none --lr 1e4 --epochs 1 -o "$T/nan.h5" $SMALL
"$PY" -c "
import h5py,sys
f=h5py.File('$T/nan.h5','r'); assert f.attrs['status']=='diverged'; assert f.attrs['diverged_step']>=1
" && ok || bad "diverged run file not valid"
ls "$T"/*.tmp-* >/dev/null 2>&1 && bad "temporary files left behind" || ok

finish test_train_cli
