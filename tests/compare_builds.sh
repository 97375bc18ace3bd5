#!/bin/sh
# Compares the files two normscope binaries write from the same inputs: run
# files of a few methods, `ntk` results in every mode and kernel kind (in
# memory and out of core, with the analytic comparison), `meanfield` results
# and `info` output.  A refactoring that must change no behaviour passes it
# against the binary built before it.
#
# usage: sh tests/compare_builds.sh OLD_BIN NEW_BIN [WORKDIR]
# Uses Fashion-MNIST's default data set; /usr/bin/python3 with h5py runs
# tests/compare_results.py.  Exit 0 when every pair agrees, 1 otherwise.
set -u
OLD=$1 NEW=$2
W=${3:-$(mktemp -d)}
PY=${PYTHON:-/usr/bin/python3}
CMP="$PY $(dirname "$0")/compare_results.py"
Q="--quiet --threads 2"
fail=0 n=0
mkdir -p "$W/old" "$W/new"

both() {  # both NAME 'ARGS': ARGS run by each binary, @ standing for its directory
    name=$1 args=$2
    for b in old new; do
        bin=$OLD; [ $b = new ] && bin=$NEW
        a=$(printf '%s' "$args" | sed "s#@#$W/$b#g")
        # shellcheck disable=SC2086
        "$bin" $a -o "$W/$b/$name.h5" $Q >"$W/$b/$name.out" 2>"$W/$b/$name.err" ||
            { echo "FAIL $name: $b binary failed ($(head -1 "$W/$b/$name.err"))"; fail=1; return; }
    done
    n=$((n + 1))
    if $CMP "$W/old/$name.h5" "$W/new/$name.h5" >"$W/$name.cmp" 2>&1; then
        echo "same $name"
    else
        echo "FAIL $name:"; sed 's/^/    /' "$W/$name.cmp" | head -20; fail=1
    fi
}

T="--train-n 2000 --test-n 500"
both run_bn "train --arch mlp:64x2 --norm bn --epochs 2 $T"
both run_bkn "train --arch cnn --norm bkn --norm-group 4 --steps 30 --batch 32 $T"
both run_mimic "train --arch mlp:64x3 --norm mimic --epochs 1 $T"
both run_gauss "train --arch mlp:256x3 --norm none --init gauss:2,0.05 --epochs 1 $T"
both run_bn_resumed "train --resume @/run_bn.h5 --epochs 3"

both ntk_eval "ntk @/run_bn.h5 --n 24"
both ntk_trace_batch "ntk @/run_bn.h5 --n 16 --kernel trace --mode batch --ckpt 0,16"
both ntk_recal "ntk @/run_bn.h5 --n 16 --mode recal --recal-n 500 --ckpt last"
both ntk_jac "ntk @/run_bn.h5 --n 16 --method jacobian --ckpt 16,32"
both ntk_ooc "ntk @/run_bn.h5 --n 64 --mem 300K --top 10 --ckpt last"
both ntk_cnn "ntk @/run_bkn.h5 --n 12 --ckpt all"
both ntk_mimic "ntk @/run_mimic.h5 --n 16"
both ntk_analytic "ntk @/run_gauss.h5 --n 16 --analytic --analytic-depth 12"

both mf_relu "meanfield --grid 0.5:3:24,0:0.2:12 --depth 20"
both mf_tanh_wm "meanfield --act tanh --sw2 1.5 --sb2 0.05 --weight-mean --grid 0.5:3:16,0:0.2:8"
both mf_nogrid "meanfield --act erf --sw2 1.2 --grid none --quadrature"

for f in ntk_eval ntk_analytic mf_relu; do
    n=$((n + 1))
    "$OLD" info "$W/old/$f.h5" >"$W/old/$f.info" && "$NEW" info "$W/new/$f.h5" >"$W/new/$f.info" ||
        { echo "FAIL info $f: info failed"; fail=1; continue; }
    sed -i "s#$W/old#@#g" "$W/old/$f.info"
    sed -i "s#$W/new#@#g" "$W/new/$f.info"
    if cmp -s "$W/old/$f.info" "$W/new/$f.info"; then
        echo "same info $f"
    else
        # Times and dates differ from run to run; the rest must not.
        if diff "$W/old/$f.info" "$W/new/$f.info" |
            grep '^[<>]' | grep -qv 'created\|seconds\|command_line\|images_per_second\|peak_rss\|gflop'; then
            echo "FAIL info $f:"; diff "$W/old/$f.info" "$W/new/$f.info" | head -10; fail=1
        else
            echo "same info $f (apart from times)"
        fi
    fi
done
echo "compare_builds: $n comparisons, $([ $fail = 0 ] && echo all equal || echo DIFFERENCES) (files in $W)"
exit $fail
