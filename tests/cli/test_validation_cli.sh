#!/bin/sh
# CLI tests of what normscope accepts: every command that reads run files
# (info, eval, ntk, plot, train --resume) checks the whole file and refuses
# a damaged one with one line naming the file, the data set and the
# problem, exit 2 and no output; numeric options are checked from one table
# (finite, range, integer); a resumed run reports its own configuration and,
# without a new length, finishes the length it was started with.
# Needs NS_BIN (the normscope binary) and PYTHON (with h5py).
. "$(dirname "$0")/../cli_lib.sh"

Q="--quiet --threads 2"
SMALL="--train-n 512 --test-n 100 $Q"

# ------------------------------------------------- damaged run files
# 512 samples in batches of 128: checkpoints 0 and 4.
$NS train --arch mlp:32x1 --epochs 1 -o "$T/good.h5" $SMALL >/dev/null || bad "training the good run"
"$PY" - "$T/good.h5" "$T" <<'PYEOF' || bad "cannot write damaged run files with h5py"
import sys, shutil, h5py, numpy as np
good, T = sys.argv[1:3]
def damage(case, fn):
    p = "%s/%s.h5" % (T, case)
    shutil.copy(good, p)
    with h5py.File(p, "r+") as f:
        fn(f)
def transposed(f):
    p = "checkpoints/4/params/00-dense/weight"; w = f[p][()]; del f[p]; f[p] = w.T.copy()
def setval(path, idx, v):
    def fn(f):
        a = f[path][()]; a[idx] = v; f[path][...] = a
    return fn
def attr(group, key, v):
    def fn(f):
        f[group].attrs[key] = v
    return fn
damage("transposed", transposed)
damage("version", attr("/", "format_version", np.int64(2)))
damage("nanweight", setval("checkpoints/4/params/03-dense/weight", (1, 2), np.nan))
damage("infweight", setval("checkpoints/4/params/00-dense/bias", 5, -np.inf))
damage("negvar", setval("checkpoints/4/state/01-bn/running_var", 3, -0.5))
damage("nanmean", setval("checkpoints/4/state/01-bn/running_mean", 0, np.nan))
damage("std0", attr("data", "std", np.array([0.0])))
damage("stdneg", attr("data", "std", np.array([-0.35])))
damage("stdinf", attr("data", "std", np.array([np.inf])))
damage("meannan", attr("data", "mean", np.array([np.nan])))
damage("threads", attr("config", "threads", np.int64(1000000000)))
damage("trainn", attr("config", "train_n", np.int64(-7)))
damage("adameps", attr("config", "adam_eps", -1.0))
damage("batch", attr("config", "batch", 12.5))
PYEOF

# refused CASE WHAT: every reader of run files refuses $T/CASE.h5 with one
# line "normscope: cannot read '$T/CASE.h5': WHAT", exit 2, and writes nothing.
refused() {
    f="$T/$1.h5"; pat="^normscope: cannot read '$f': $2"
    cp "$f" "$T/before.h5"
    expect 2 "$pat" "" $NS info "$f"
    expect 2 "$pat" "" $NS info --json "$f"
    expect 2 "$pat" "" $NS eval "$f" --n 100
    # the whole file is checked, whichever checkpoint is asked for
    expect 2 "$pat" "" $NS eval "$f" --n 100 --ckpt 0
    expect 2 "$pat" "$T/out.h5" $NS ntk "$f" --n 8 --ckpt last -o "$T/out.h5" $Q
    expect 2 "$pat" "$T/out.h5" $NS ntk "$f" --n 8 --ckpt init -o "$T/out.h5" $Q
    expect 2 "$pat" "$T/fig" $NS plot "$f" --what curves -o "$T/fig"
    expect 2 "$pat" "$T/res.h5" $NS train --resume "$f" --epochs 2 -o "$T/res.h5" $Q
    # in place: the damaged file stays as it was, no temporary is left
    expect 2 "$pat" "" $NS train --resume "$f" --epochs 2 $Q
    cmp -s "$f" "$T/before.h5" && ok || bad "$1: train --resume in place changed the file"
    ls "$f".tmp-* >/dev/null 2>&1 && bad "$1: a temporary file was left" || ok
}
refused transposed "/checkpoints/4/params/00-dense/weight has shape 784x32, the architecture's is 32x784$"
refused version "format_version 2 is newer than this normscope reads (1)$"
refused nanweight "/checkpoints/4/params/03-dense/weight holds non-finite values$"
refused infweight "/checkpoints/4/params/00-dense/bias holds non-finite values$"
refused negvar "/checkpoints/4/state/01-bn/running_var holds negative values$"
refused nanmean "/checkpoints/4/state/01-bn/running_mean holds non-finite values$"
refused std0 "/data attribute 'std' holds values that are not positive$"
refused stdneg "/data attribute 'std' holds values that are not positive$"
refused stdinf "/data attribute 'std' holds non-finite values$"
refused meannan "/data attribute 'mean' holds non-finite values$"
refused threads "/config attribute 'threads' must be an integer in 1..256 or 0, got 1000000000$"
refused trainn "/config attribute 'train_n' must be an integer in 0..1000000000, got -7$"
refused adameps "/config attribute 'adam_eps' must be a finite number > 0, got -1$"
refused batch "/config attribute 'batch' must be an integer in 1..65536, got 12.5$"
# The good file is read by all of them.
run $NS info "$T/good.h5"; want 0 "info of the good run"
run $NS eval "$T/good.h5" --n 100; want 0 "eval of the good run"

# ------------------------------------------------- numeric options
# Values out of range, not finite or not whole are refused with one line
# naming the option, before anything is read or written.
for o in --adam-eps --bn-eps --frn-eps --agc --lr --bn-momentum --momentum --wd --clip \
         --beta1 --beta2 --psbn-alpha --fct --ic-drop --bkn-p; do
    for v in inf -inf; do
        expect 2 "^normscope train: $o must be a .*, got '$v' (see 'normscope train --help')$" \
            "$T/o.h5" $NS train "$o" "$v" -o "$T/o.h5" $SMALL
    done
    expect 2 "^normscope train: $o expects a number, got 'nan'" "$T/o.h5" $NS train "$o" nan -o "$T/o.h5" $SMALL
done
expect_line 2 "normscope train: --adam-eps must be a finite number > 0, got '-1' (see 'normscope train --help')" \
    "$T/o.h5" $NS train --adam-eps -1 -o "$T/o.h5" $SMALL
expect_line 2 "normscope train: --bn-eps must be a finite number > 0, got '0' (see 'normscope train --help')" \
    "$T/o.h5" $NS train --bn-eps 0 -o "$T/o.h5" $SMALL
expect_line 2 "normscope train: --ic-drop must be a number in [0, 1), got '1' (see 'normscope train --help')" \
    "$T/o.h5" $NS train --ic-drop 1 -o "$T/o.h5" $SMALL
expect_line 2 "normscope train: --epochs expects a non-negative integer, got '1.5' (see 'normscope train --help')" \
    "$T/o.h5" $NS train --epochs 1.5 -o "$T/o.h5" $SMALL
expect_line 2 "normscope train: --mabn-buffer must be an integer in 0..4096, got '5000' (see 'normscope train --help')" \
    "$T/o.h5" $NS train --mabn-buffer 5000 -o "$T/o.h5" $SMALL
expect_line 2 "normscope train: --gn-groups must be an integer in 1..65536, got '0' (see 'normscope train --help')" \
    "$T/o.h5" $NS train --gn-groups 0 -o "$T/o.h5" $SMALL
expect 2 "bad initialiser 'gauss:inf,0'" "$T/o.h5" $NS train --init gauss:inf,0 -o "$T/o.h5" $SMALL
expect 2 "bad schedule 'step:1@inf'" "$T/o.h5" $NS train --schedule step:1@inf -o "$T/o.h5" $SMALL
# The bounds themselves are accepted where they are closed.
$NS train --arch mlp:8x1 --steps 1 --bn-momentum 1 --momentum 0 --ic-drop 0 -o "$T/b.h5" $SMALL >/dev/null &&
    ok || bad "closed bounds refused: $(cat "$T/stderr")"

# ------------------------------------------------- resume
# The summary of a resumed run is the run's own: a cnn with seed 3 is not
# the mlp with seed 1 of the command line's defaults.
$NS train --arch cnn --seed 3 --epochs 1 -o "$T/cnn.h5" $SMALL >/dev/null || bad "training the cnn"
run $NS train --resume "$T/cnn.h5" --epochs 2 -o "$T/cnn2.h5" $Q
want 0 "resume of the cnn" &&
    has "$T/stdout" "arch cnn, norm bn, data fashion-mnist, 8 steps, seed 3" "summary of a resumed run"
# An interrupted run resumed without a new length finishes the length it
# was started with, as the uninterrupted run (a constant lr, so that the
# two agree bit for bit): part.h5 is the first epoch of a two-epoch run.
$NS train --arch mlp:16x1 --epochs 2 --schedule const --seed 5 -o "$T/whole.h5" $SMALL >/dev/null
$NS train --arch mlp:16x1 --epochs 1 --schedule const --seed 5 -o "$T/part.h5" $SMALL >/dev/null
"$PY" -c '
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    f.attrs["status"] = "interrupted"; f["config"].attrs["epochs"] = np.int64(2)
' "$T/part.h5" || bad "cannot mark part.h5 interrupted"
run $NS train --resume "$T/part.h5" $Q
want 0 "resume of an interrupted run without --epochs" &&
    has "$T/stdout" "arch mlp:16x1, norm bn, data fashion-mnist, 8 steps, seed 5" "summary of the finished run"
"$PY" - "$T/whole.h5" "$T/part.h5" <<'PYEOF' && ok || bad "the finished run differs from the uninterrupted one"
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
assert b.attrs["status"] == "complete", b.attrs["status"]
assert sorted(a["checkpoints"]) == sorted(b["checkpoints"]) == ["0", "4", "8"], list(b["checkpoints"])
def grab(f):
    out = {}
    f["checkpoints/8"].visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out
wa, wb = grab(a), grab(b)
assert wa.keys() == wb.keys()
for k in wa:
    assert np.array_equal(wa[k], wb[k]), k
PYEOF
# A complete run has its length: resuming it needs a new one.
cp "$T/whole.h5" "$T/whole.copy"
expect_line 2 "normscope: '$T/whole.h5' already has 8 steps; ask for more with --epochs or --steps" \
    "" $NS train --resume "$T/whole.h5" $Q
cmp -s "$T/whole.h5" "$T/whole.copy" && ok || bad "a refused resume changed the file"

finish test_validation_cli
