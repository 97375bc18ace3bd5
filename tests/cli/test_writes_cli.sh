#!/bin/sh
# CLI tests of what the writers keep and leave: a full disk gives one line
# naming the file, exit 1 and nothing written (train, ntk in memory and
# tiled, meanfield, plot), where a crash (exit 139) or partial figures once
# were; a save that has started ends with a complete run file whatever
# signals come (an interrupted run's save, the final save); an output that
# names an input is refused (exit 2) even with --force; a file that appeared
# at the target while a run wrote it stays (exit 2); temporaries left by a
# killed run are noted.  A full disk is a file-size limit (ulimit -f with
# SIGXFSZ ignored: writes fail with EFBIG), and a full 2 MB tmpfs when run
# as root where mounting is allowed.  The signal tests use the test-only
# hook NS_TEST_SAVE_PAUSE (src/train/train.c).  Needs NS_BIN; PYTHON with
# h5py for one check.
. "$(dirname "$0")/../cli_lib.sh"

SMALL="--train-n 600 --test-n 100 --threads 2"
# 38 steps: the per-step curve data exceeds 1 KB.
$NS train --arch mlp:64x1 --epochs 1 --batch 16 $SMALL --quiet -o "$T/run.h5" >/dev/null ||
    bad "training run.h5"
cp "$T/run.h5" "$T/run.copy"

# ------------------------------------------------------------ full disk
# tree_sum DIR: the names under DIR and the contents of its files (not
# directory times, which a temporary created and removed inside changes)
tree_sum() { (cd "$1" && find . | sort && find . -type f -exec cksum {} + | sort) | md5sum; }
# full LIMIT REASON DIR WHAT command...: the command, with files limited to
# LIMIT KB ('-': no limit), exits 1 with one line on stderr naming a file
# in DIR and REASON, and leaves DIR as it was.
full() {
    limit=$1; reason=$2; dir=$3; what=$4; shift 4
    mkdir -p "$dir"
    before=$(tree_sum "$dir")
    if [ "$limit" = - ]; then
        "$@" >"$T/stdout" 2>"$T/stderr"; rc=$?
    else
        (trap '' XFSZ; ulimit -f "$limit"; exec "$@") >"$T/stdout" 2>"$T/stderr"; rc=$?
    fi
    want 1 "$what" || return
    one_line && ok || bad "$what: not one line: $(cat "$T/stderr")"
    has "$T/stderr" "normscope: cannot write '$dir/" "$what"
    has "$T/stderr" "$reason" "$what"
    [ "$(tree_sum "$dir")" = "$before" ] && ok || bad "$what: left $(ls -AR "$dir")"
}

EFBIG="File too large"
full 64 "$EFBIG" "$T/f-train" "train, disk full" \
    $NS train --arch mlp:64x1 --epochs 1 $SMALL --quiet -o "$T/f-train/x.h5"
full 64 "$EFBIG" "$T/f-ntk" "ntk in memory, disk full" \
    $NS ntk "$T/run.h5" --n 32 --quiet -o "$T/f-ntk/k.h5"
full 64 "$EFBIG" "$T/f-tiles" "ntk tiled, disk full" \
    $NS ntk "$T/run.h5" --n 64 --mem 4M --block 16 --quiet -o "$T/f-tiles/k.h5"
full 64 "$EFBIG" "$T/f-mf" "meanfield, disk full" \
    $NS meanfield --act relu --quiet -o "$T/f-mf/mf.h5"
# plot: a data file fails; gnuplot's figure is cut short (gnuplot itself
# exits 0 then); a figure and data drawn before are kept as they were.
full 1 "$EFBIG" "$T/f-plot" "plot, data file on a full disk" \
    $NS plot "$T/run.h5" --what curves -o "$T/f-plot/figs"
full 24 "gnuplot left it incomplete" "$T/f-png" "plot, figure on a full disk" \
    $NS plot "$T/run.h5" --what curves -o "$T/f-png/figs"
run $NS plot "$T/run.h5" --what curves -o "$T/f-old/figs"
want 0 "plot to a directory of its own"
full 1 "$EFBIG" "$T/f-old" "plot --force over a figure, data on a full disk" \
    $NS plot "$T/run.h5" --what curves -o "$T/f-old/figs" --force
full 24 "gnuplot left it incomplete" "$T/f-old" "plot --force over a figure, figure on a full disk" \
    $NS plot "$T/run.h5" --what curves -o "$T/f-old/figs" --force
cmp -s "$T/run.h5" "$T/run.copy" && ok || bad "a failed write changed its input"

# The same on a full file system (ENOSPC), where this may mount one.
if [ "$(id -u)" = 0 ] && mkdir "$T/mnt" && mount -t tmpfs -o size=2m tmpfs "$T/mnt" 2>/dev/null; then
    trap 'umount "$T/mnt"; rm -rf "$T"' EXIT
    ENOSPC="No space left on device"
    # 148 KB left, then none.
    dd if=/dev/zero of="$T/mnt/fill" bs=1k count=1900 2>/dev/null
    full - "$ENOSPC" "$T/mnt" "train on a full tmpfs" \
        $NS train --arch mlp:64x1 --epochs 1 $SMALL --quiet -o "$T/mnt/x.h5"
    full - "$ENOSPC" "$T/mnt" "ntk on a full tmpfs" \
        $NS ntk "$T/run.h5" --n 64 --quiet -o "$T/mnt/k.h5"
    full - "$ENOSPC" "$T/mnt" "tiled ntk on a full tmpfs" \
        $NS ntk "$T/run.h5" --n 64 --mem 4M --block 16 --quiet -o "$T/mnt/k.h5"
    full - "$ENOSPC" "$T/mnt" "meanfield on a full tmpfs" \
        $NS meanfield --act relu --quiet -o "$T/mnt/mf.h5"
    rm -f "$T/mnt/fill"
    dd if=/dev/zero of="$T/mnt/fill" bs=1k count=2048 2>/dev/null
    full - "$ENOSPC" "$T/mnt" "plot on a full tmpfs" \
        $NS plot "$T/run.h5" --what curves -o "$T/mnt/figs"
    umount "$T/mnt"
    trap 'rm -rf "$T"' EXIT
else
    echo "test_writes_cli: not root or tmpfs not mountable here: full tmpfs checks skipped"
fi

# ------------------------------------------------------ signals in a save
# wait_for FILE PATTERN PID: waits (30 s at most) until FILE holds PATTERN;
# fails when process PID ends first.
wait_for() {
    i=0
    while ! grep -q -- "$2" "$1" 2>/dev/null; do
        kill -0 "$3" 2>/dev/null || return 1
        i=$((i + 1)); [ $i -le 300 ] || return 1
        sleep 0.1
    done
}
# status FILE: the run file's status as info gives it
status() { $NS info "$1" 2>/dev/null | sed -n 's/^  status *//p'; }

# Ctrl-C in training saves a resumable run; a second Ctrl-C and a SIGTERM
# during that save (paused by the hook) do not stop it.
NS_TEST_SAVE_PAUSE=3 $NS train --arch mlp:64x1 --epochs 100000 $SMALL -o "$T/int.h5" \
    >"$T/int.out" 2>"$T/int.err" &
pid=$!
if wait_for "$T/int.err" "epoch 2/" "$pid"; then
    kill -INT "$pid"
    if wait_for "$T/int.err" "save paused" "$pid"; then
        kill -INT "$pid"; sleep 0.2; kill -TERM "$pid"; ok
    else
        bad "interrupted run: no pause in its save: $(tail -c 300 "$T/int.err")"
    fi
else
    bad "interrupted run: training did not start: $(tail -c 300 "$T/int.err")"
fi
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 300 ]; do i=$((i + 1)); sleep 0.1; done
kill -KILL "$pid" 2>/dev/null
wait "$pid"; rc=$?
[ "$rc" = 1 ] && ok || bad "interrupted run: exit $rc, wanted 1: $(tail -c 300 "$T/int.err")"
has "$T/int.out" "interrupted: resume with --resume" "interrupted run's summary"
has "$T/int.err" "normscope: saving; please wait" "second Ctrl-C during the save"
[ "$(status "$T/int.h5")" = interrupted ] && ok || bad "interrupted run: status '$(status "$T/int.h5")'"
run $NS eval "$T/int.h5"
want 0 "eval of the interrupted run"
ls "$T"/int.h5.tmp-* >/dev/null 2>&1 && bad "interrupted run left its temporary" || ok

# Ctrl-C (twice) and SIGTERM while the finished run is saved: the run is
# complete and says so, exit 0.
NS_TEST_SAVE_PAUSE=3 $NS train --arch mlp:64x1 --epochs 1 $SMALL -o "$T/fin.h5" \
    >"$T/fin.out" 2>"$T/fin.err" &
pid=$!
if wait_for "$T/fin.err" "save paused" "$pid"; then
    kill -INT "$pid"; sleep 0.2; kill -INT "$pid"; kill -TERM "$pid"; ok
else
    bad "final save: no pause: $(tail -c 300 "$T/fin.err")"
fi
wait "$pid"; rc=$?
[ "$rc" = 0 ] && ok || bad "final save: exit $rc, wanted 0: $(tail -c 300 "$T/fin.err")"
[ "$(status "$T/fin.h5")" = complete ] && ok || bad "final save: status '$(status "$T/fin.h5")'"
has "$T/fin.out" "run file: $T/fin.h5" "final save's summary"
run $NS eval "$T/fin.h5"
want 0 "eval of the run saved under signals"

# ------------------------------------------------ outputs naming inputs
ln -s run.h5 "$T/sym.h5"
ln "$T/run.h5" "$T/hard.h5"
for o in run.h5 sym.h5 hard.h5; do
    expect_line 2 "normscope: output '$T/$o' is the input '$T/run.h5'; choose another -o" "" \
        $NS ntk "$T/run.h5" --n 16 --quiet -o "$T/$o" --force
done
expect_line 2 "normscope: output '$T/sym.h5' is the input '$T/run.h5'; choose another -o, or none to continue '$T/run.h5' in place" \
    "" $NS train --resume "$T/run.h5" --epochs 2 --quiet -o "$T/sym.h5" --force
mkdir "$T/figs"
cp "$T/run.h5" "$T/figs/curves.png"
expect_line 2 "normscope: output '$T/figs/curves.png' is the input '$T/figs/curves.png'; choose another -o" \
    "" $NS plot "$T/figs/curves.png" --what curves -o "$T/figs" --force
cmp -s "$T/run.h5" "$T/run.copy" && cmp -s "$T/figs/curves.png" "$T/run.copy" && ok ||
    bad "an input named as the output was changed"
if "$PY" -c 'import h5py' 2>/dev/null; then
    "$PY" - "$T/data.h5" <<'PYEOF' || bad "cannot write a data set file with h5py"
import sys, h5py, numpy as np
r = np.random.default_rng(5)
with h5py.File(sys.argv[1], "w") as f:
    for s, n in (("train", 64), ("test", 32)):
        f[s + "/x"] = r.standard_normal((n, 6))
        f[s + "/y"] = r.integers(0, 3, n).astype(np.int64)
PYEOF
    cp "$T/data.h5" "$T/data.copy"
    expect_line 2 "normscope: output '$T/data.h5' is the input '$T/data.h5'; choose another -o" \
        "" $NS train --arch mlp:8x1 --data "$T/data.h5" --epochs 1 --quiet -o "$T/data.h5" --force
    cmp -s "$T/data.h5" "$T/data.copy" && ok || bad "train replaced its data set file"
fi
ls "$T"/*.tmp-* "$T"/figs/.*tmp* >/dev/null 2>&1 && bad "refused writes left temporaries" || ok

# ------------------------------------ a target that appears during a run
# The first run pauses in its save; a second writes the same name meanwhile
# and finishes first.  The first must not replace it: exit 2, its
# temporary removed.
NS_TEST_SAVE_PAUSE=3 $NS train --arch mlp:64x1 --epochs 1 $SMALL -o "$T/same.h5" \
    >"$T/a.out" 2>"$T/a.err" &
pid=$!
if wait_for "$T/a.err" "save paused" "$pid"; then
    run $NS train --arch mlp:64x1 --epochs 1 --seed 2 $SMALL --quiet -o "$T/same.h5"
    want 0 "the second run, finished first"
    cp "$T/same.h5" "$T/same.copy"
else
    bad "first run: no pause: $(tail -c 300 "$T/a.err")"
fi
wait "$pid"; rc=$?
[ "$rc" = 2 ] && ok || bad "first run, finished second: exit $rc, wanted 2"
has "$T/a.err" "normscope: '$T/same.h5' was created by another process while this one wrote it; it is left as it is (use --force to overwrite)" \
    "first run, finished second"
cmp -s "$T/same.h5" "$T/same.copy" && ok || bad "the first run replaced the second's file"
ls "$T"/same.h5.tmp-* >/dev/null 2>&1 && bad "the refused run left its temporary" || ok

# --------------------------------------------------- stale temporaries
# A run killed with SIGKILL leaves RUN.h5.tmp-PID; info and train name it.
$NS train --arch mlp:64x1 --epochs 100000 $SMALL --quiet -o "$T/killed.h5" >/dev/null 2>&1 &
pid=$!
i=0
while [ ! -e "$T/killed.h5.tmp-$pid" ] && [ $i -lt 300 ]; do i=$((i + 1)); sleep 0.1; done
kill -KILL "$pid"; wait "$pid" 2>/dev/null
[ -e "$T/killed.h5.tmp-$pid" ] && ok || bad "the killed run left no temporary"
note="normscope: note: '$T/killed.h5.tmp-$pid' is a temporary left by a process that no longer runs (pid $pid); remove it"
cp "$T/run.h5" "$T/killed.h5"
cp "$T/run.h5" "$T/killed.h5.tmp-$$"   # this shell runs: not stale
run $NS info "$T/killed.h5"
want 0 "info beside a stale temporary"
[ "$(cat "$T/stderr")" = "$note" ] && ok || bad "info's note: $(cat "$T/stderr")"
rm "$T/killed.h5"
run $NS info "$T/killed.h5"
want 2 "info of a missing file beside a stale temporary"
has "$T/stderr" "$note" "info of a missing file"
run $NS train --arch mlp:64x1 --steps 2 $SMALL -o "$T/killed.h5"
want 0 "train to a target with a stale temporary"
has "$T/stderr" "$note" "train's note"
grep -q "tmp-$$" "$T/stderr" && bad "a live process's temporary called stale" || ok

# A file-size limit (ulimit -f) fails the write like a full disk: one line,
# exit 1, no output and no temporary left (the signal it raises is ignored).
$NS train --arch mlp:16x1 --norm bn --steps 2 --train-n 256 --test-n 64 -o "$T/small.h5" --quiet >/dev/null 2>&1
for c in "spectrum $T/small.h5 --n 64" "ntk $T/small.h5 --n 16 --ckpt last"; do
    rm -f "$T"/lim.h5*
    # shellcheck disable=SC2086
    (ulimit -f 16; $NS $c -o "$T/lim.h5" --quiet >/dev/null 2>"$T/stderr"); rc=$?
    if [ "$rc" = 1 ] && one_line && grep -q "cannot write '$T/lim.h5'" "$T/stderr" &&
       ! ls "$T"/lim.h5* >/dev/null 2>&1; then ok
    else bad "${c%% *} under ulimit -f: exit $rc, $(cat "$T/stderr"), left: $(ls "$T"/lim.h5* 2>/dev/null)"; fi
done

finish test_writes_cli
