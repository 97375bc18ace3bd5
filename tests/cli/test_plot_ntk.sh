#!/bin/sh
# CLI tests of the NTK figures of plot (ntk-spectrum, ntk-training,
# ntk-layers): every kind draws one result file and several overlaid (PNG,
# once SVG), with a row of panels per file where the kind has them; results
# with gaps (one checkpoint, top eigenvalues only, no drift, a checkpoint
# without eigenvalues or layer_trace) still give a figure and a note; wrong
# input (a run file, a result without /ntk, one without any eigenvalues)
# gives one line naming the file, exit 2 and no figure or data left.
# Works on a tiny run trained here (seconds).  Needs NS_BIN (the normscope
# binary) and, for the files with gaps, PYTHON with h5py; run from the
# project root.
. "$(dirname "$0")/../cli_lib.sh"

# png_height FILE: the height in pixels from the IHDR chunk
png_height() { od -An -tu1 -j20 -N4 "$1" | awk '{print (($1 * 256 + $2) * 256 + $3) * 256 + $4}'; }
# figure KIND DIR WHAT: DIR/KIND.png is a PNG of some substance (a blank
# canvas of that size compresses to a few kilobytes) and the run printed it
figure() {
    if is_png "$2/$1.png" && [ "$(wc -c < "$2/$1.png")" -gt 15000 ]; then ok
    else bad "$3: $2/$1.png missing, not a PNG or nearly empty"; fi
    has "$T/stdout" "$2/$1.png" "$3 prints the figure's path"
}
# refused WHAT PATTERN DIR KIND: the last run exited 2 with one line naming
# the problem and left neither the figure nor its data in DIR
refused() {
    want 2 "$1" || return
    has "$T/stderr" "$2" "$1"
    [ "$(grep -c . "$T/stderr")" -eq 1 ] && ok || bad "$1: not one line: $(cat "$T/stderr")"
    if [ -e "$3/$4.png" ] || [ -e "$3/$4-data" ]; then bad "$1 left $(ls "$3")"; else ok; fi
}

# ----------------------------------------------------------- the inputs
Q="--quiet --threads 2"
for norm in bn none; do
    run "$NS" train --arch mlp:64x2 --norm $norm --epochs 2 --train-n 500 --test-n 100 \
        -o "$T/$norm.h5" $Q
    want 0 "train --norm $norm" || finish test_plot_ntk
    run "$NS" ntk "$T/$norm.h5" --n 8 -o "$T/k-$norm.h5" $Q
    want 0 "ntk of the $norm run"
done
run "$NS" ntk "$T/bn.h5" --n 8 --ckpt last -o "$T/k-one.h5" $Q
want 0 "ntk --ckpt last"
run "$NS" ntk "$T/bn.h5" --n 8 --kernel trace -o "$T/k-trace.h5" $Q
want 0 "ntk --kernel trace"
# A kernel larger than a sixteenth of --mem: ARPACK's top 5 eigenvalues
# only, so no condition number.
run "$NS" ntk "$T/none.h5" --n 24 --mem 300K --block 4 --top 5 -o "$T/k-top.h5" $Q
want 0 "ntk --top 5 out of core"

# ------------------------------------------------------ every kind draws
for kind in ntk-spectrum ntk-training ntk-layers; do
    run "$NS" plot "$T/k-bn.h5" --what $kind -o "$T/one"
    want 0 "plot $kind" && figure $kind "$T/one" "plot $kind"
    run "$NS" plot "$T/k-bn.h5" "$T/k-none.h5" "$T/k-trace.h5" --what $kind -o "$T/three"
    want 0 "plot $kind of three files" && figure $kind "$T/three" "plot $kind of three files"
    [ -s "$T/three/$kind-data/$(case $kind in ntk-spectrum) echo spec3;; ntk-training) echo train3;;
        *) echo layers3;; esac).dat" ] && ok || bad "plot $kind: no data file of the third input"
    left=""
    for x in "$T/three"/.*tmp* "$T/three"/*tmp*; do [ -e "$x" ] && left="$left $x"; done
    [ -z "$left" ] && ok || bad "plot $kind left temporary files:$left"
done
# The spectra get a row of panels per file.
h1=$(png_height "$T/one/ntk-spectrum.png"); h3=$(png_height "$T/three/ntk-spectrum.png")
[ "$h3" -gt $((2 * h1)) ] && ok || bad "ntk-spectrum of three files is $h3 px high, one file $h1 px"
# Three checkpoints (init and two epochs): three blocks of 80 eigenvalues.
[ "$(grep -c '^# step' "$T/one/ntk-spectrum-data/spec1.dat")" -eq 3 ] && ok ||
    bad "spec1.dat: not one block per checkpoint"
[ "$(grep -vc '^#' "$T/one/ntk-training-data/train1.dat")" -eq 3 ] && ok ||
    bad "train1.dat: not one row per checkpoint"
# Layer shares sum to one.
awk '!/^#/ { s = 0; for (i = 2; i <= NF; i++) s += $i; if (s < 0.999 || s > 1.001) bad = 1 }
     END { exit bad }' "$T/one/ntk-layers-data/layers1.dat" && ok ||
    bad "layer shares do not sum to 1: $(cat "$T/one/ntk-layers-data/layers1.dat")"

run "$NS" plot "$T/k-bn.h5" "$T/k-none.h5" --what ntk-training -o "$T/svg" --format svg
want 0 "plot ntk-training --format svg" && { grep -q "<svg" "$T/svg/ntk-training.svg" && ok ||
    bad "plot --format svg: not an SVG file"; }
run "$NS" plot "$T/k-bn.h5" --what ntk-layers -o "$T/one"
refused "plot over an existing figure" "exists; use --force" "$T/nothing" ntk-layers
run "$NS" plot "$T/k-bn.h5" --what ntk-layers -o "$T/one" --force
want 0 "plot --force"

# ------------------------------------------------------- gaps and notes
run "$NS" plot "$T/k-one.h5" --what ntk-training -o "$T/gaps"
want 0 "ntk-training of one checkpoint" && figure ntk-training "$T/gaps" "ntk-training of one checkpoint"
run "$NS" plot "$T/k-one.h5" --what ntk-layers -o "$T/gaps"
want 0 "ntk-layers of one checkpoint (bars)" && figure ntk-layers "$T/gaps" "ntk-layers of one checkpoint"
[ -s "$T/gaps/ntk-layers-data/bars1.dat" ] && ok || bad "ntk-layers of one checkpoint: no bars1.dat"
run "$NS" plot "$T/k-top.h5" --what ntk-spectrum -o "$T/gaps"
want 0 "ntk-spectrum of top eigenvalues" && { figure ntk-spectrum "$T/gaps" "ntk-spectrum of top eigenvalues"
    has "$T/stderr" "top 5 of 240 eigenvalues" "ntk-spectrum of top eigenvalues"; }
run "$NS" plot "$T/k-top.h5" "$T/k-bn.h5" --what ntk-training -o "$T/gaps2"
want 0 "ntk-training with NaN condition numbers" &&
    figure ntk-training "$T/gaps2" "ntk-training with NaN condition numbers"

if "$PY" -c 'import h5py' 2>/dev/null; then
    "$PY" - "$T" <<'PYEOF' && ok || bad "cannot write result files with gaps with h5py"
# holes.h5: no drift, no eigenvalues at the middle checkpoint, no
# layer_trace at the last; noeig.h5: no eigenvalues or layer_trace at all.
import sys, shutil, h5py
T = sys.argv[1]
for name in ("holes", "noeig"):
    shutil.copy(T + "/k-bn.h5", T + "/%s.h5" % name)
with h5py.File(T + "/holes.h5", "a") as f:
    steps = sorted(int(s) for s in f["ntk"] if s.isdigit())
    del f["ntk/drift"]
    del f["ntk/%d/eigenvalues" % steps[1]]
    del f["ntk/%d/layer_trace" % steps[-1]]
    f["ntk/%d" % steps[-1]].attrs["condition_number"] = float("nan")
with h5py.File(T + "/noeig.h5", "a") as f:
    for s in f["ntk"]:
        if s.isdigit():
            del f["ntk/%s/eigenvalues" % s]
            del f["ntk/%s/layer_trace" % s]
PYEOF
    for kind in ntk-spectrum ntk-training ntk-layers; do
        run "$NS" plot "$T/holes.h5" --what $kind -o "$T/holes"
        want 0 "plot $kind with gaps" && figure $kind "$T/holes" "plot $kind with gaps"
    done
    run "$NS" plot "$T/holes.h5" --what ntk-spectrum -o "$T/holes" --force
    has "$T/stderr" "no eigenvalues at step" "a checkpoint without eigenvalues is noted"
    run "$NS" plot "$T/holes.h5" --what ntk-training -o "$T/holes" --force
    has "$T/stderr" "no drift" "a file without drift is noted"
    # One file without eigenvalues next to one with them: drawn, with a note.
    run "$NS" plot "$T/k-bn.h5" "$T/noeig.h5" --what ntk-spectrum -o "$T/half"
    want 0 "ntk-spectrum, one of two files without eigenvalues" &&
        has "$T/stderr" "no eigenvalues in this file" "ntk-spectrum, one file without eigenvalues"
    run "$NS" plot "$T/noeig.h5" --what ntk-spectrum -o "$T/bad"
    refused "ntk-spectrum without eigenvalues" "no checkpoint holds eigenvalues" "$T/bad" ntk-spectrum
    run "$NS" plot "$T/noeig.h5" --what ntk-layers -o "$T/bad"
    refused "ntk-layers without layer_trace" "no checkpoint holds layer_trace" "$T/bad" ntk-layers
else
    echo "note: $PY has no h5py, skipping the result files with gaps"
fi

# ------------------------------------------------------------ bad input
run "$NS" meanfield --grid none -o "$T/mf.h5" $Q
want 0 "meanfield (a result file without /ntk)"
for kind in ntk-spectrum ntk-training ntk-layers; do
    run "$NS" plot "$T/bn.h5" --what $kind -o "$T/bad"
    refused "plot $kind of a run file" "'$T/bn.h5': not a normscope result file" "$T/bad" $kind
    run "$NS" plot "$T/mf.h5" --what $kind -o "$T/bad"
    refused "plot $kind of a result without /ntk" "'$T/mf.h5': no NTK results" "$T/bad" $kind
    # The bad file second: the good one's data must not stay behind either.
    run "$NS" plot "$T/k-bn.h5" "$T/mf.h5" --what $kind -o "$T/bad"
    refused "plot $kind of a good and a bad file" "no NTK results" "$T/bad" $kind
    run "$NS" plot "$T/k-bn.h5" "$T/missing.h5" --what $kind -o "$T/bad"
    refused "plot $kind of a missing file" "cannot open '$T/missing.h5'" "$T/bad" $kind
done
[ -e "$T/bad" ] && bad "refused plots left the directory $T/bad" || ok
run "$NS" plot "$T/k-bn.h5" "$T/k-bn.h5" "$T/k-bn.h5" "$T/k-bn.h5" "$T/k-bn.h5" "$T/k-bn.h5" \
    "$T/k-bn.h5" --what ntk-spectrum -o "$T/bad"
refused "ntk-spectrum of seven files" "draws at most" "$T/bad" ntk-spectrum

finish test_plot_ntk
