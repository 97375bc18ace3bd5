#!/bin/sh
# CLI tests of the figures of `normscope spectrum` results (act-spectrum,
# whitening, channels, weight-esd): every kind draws one result file and
# two (a cnn with BN, an mlp without norm); the data files say what the
# figures show (a block per layer, ratios to the largest eigenvalue,
# ordered quantiles, densities that integrate to one, the last checkpoint
# of a file with several); a result with gaps (a layer without
# eigenvalues, a non-finite metric, no weight spectra) still gives a figure
# and a note; wrong input (a run file, a result without /spectrum, a
# missing file, too many files) gives one line naming the file, exit 2 and
# no figure or data left.  Works on tiny runs trained here (seconds).  Needs
# NS_BIN (the normscope binary) and, for the files with gaps, PYTHON with
# h5py; run from the project root.
. "$(dirname "$0")/../cli_lib.sh"

KINDS="act-spectrum whitening channels weight-esd"
# figure KIND DIR WHAT: DIR/KIND.png is a PNG of some substance (a blank
# canvas of that size compresses to a few kilobytes) and the run printed it
figure() {
    if is_png "$2/$1.png" && [ "$(wc -c < "$2/$1.png")" -gt 10240 ]; then ok
    else bad "$3: $2/$1.png missing, not a PNG or nearly empty"; fi
    has "$T/stdout" "$2/$1.png" "$3 prints the figure's path"
}
# refused WHAT PATTERN DIR KIND: the last run exited 2 with one line naming
# the problem and left neither the figure nor its data in DIR
refused() {
    want 2 "$1" || return
    has "$T/stderr" "$2" "$1"
    one_line && ok || bad "$1: not one line: $(cat "$T/stderr")"
    if [ -e "$3/$4.png" ] || [ -e "$3/$4-data" ]; then bad "$1 left $(ls -a "$3")"; else ok; fi
}
# blocks FILE: gnuplot index blocks (comment lines opening them) in FILE
blocks() { grep -c '^#' "$1"; }

# ----------------------------------------------------------- the inputs
Q="--quiet --threads 2"
run "$NS" train --arch cnn --norm bn --epochs 1 --train-n 256 --test-n 64 -o "$T/cnn.h5" $Q
want 0 "train cnn" || finish test_plot_spectrum
run "$NS" train --arch mlp:32x3 --norm none --epochs 1 --train-n 256 --test-n 64 -o "$T/mlp.h5" $Q
want 0 "train mlp" || finish test_plot_spectrum
S="--n 48 --gram-n 32 --quantile-n 2000 $Q"
run "$NS" spectrum "$T/cnn.h5" $S -o "$T/s-cnn.h5"
want 0 "spectrum of the cnn"
run "$NS" spectrum "$T/mlp.h5" $S -o "$T/s-mlp.h5"
want 0 "spectrum of the mlp"
run "$NS" spectrum "$T/mlp.h5" $S --ckpt all -o "$T/s-all.h5"
want 0 "spectrum --ckpt all"
run "$NS" spectrum "$T/mlp.h5" $S --no-weights -o "$T/s-now.h5"
want 0 "spectrum --no-weights"

run "$NS" plot --what list
for kind in $KINDS; do has "$T/stdout" "  $kind " "--what list names $kind"; done

# ------------------------------------------------------ every kind draws
for kind in $KINDS; do
    run "$NS" plot "$T/s-cnn.h5" --what $kind -o "$T/one"
    want 0 "plot $kind" && figure $kind "$T/one" "plot $kind"
    run "$NS" plot "$T/s-cnn.h5" "$T/s-mlp.h5" --what $kind -o "$T/two"
    want 0 "plot $kind of two files" && figure $kind "$T/two" "plot $kind of two files"
    [ -z "$(cat "$T/stderr")" ] && ok || bad "plot $kind of two files said: $(cat "$T/stderr")"
    left=""
    for x in "$T/two"/.*tmp* "$T/two"/*tmp*; do [ -e "$x" ] && left="$left $x"; done
    [ -z "$left" ] && ok || bad "plot $kind left temporary files:$left"
done
D1=$T/one; D2=$T/two
for f in act-spectrum-data/act2.dat whitening-data/white2.dat channels-data/chan2.dat \
         weight-esd-data/esd2.dat weight-esd-data/fit2.dat; do
    [ -s "$D2/$f" ] && ok || bad "no data file $f of the second input"
done

# act-spectrum: a block per layer (the mlp: 3 dense, 3 relu, the output),
# each starting at lambda_1 / lambda_1 = 1 and never above it.
[ "$(blocks "$D2/act-spectrum-data/act2.dat")" -eq 7 ] && ok ||
    bad "act2.dat: $(blocks "$D2/act-spectrum-data/act2.dat") blocks, wanted 7 layers"
awk '/^#/ { first = 1; next } NF == 2 { if (first && $2 != 1) bad = 1; first = 0
     if ($2 != "NaN" && $2 > 1) bad = 1 } END { exit bad }' "$D2/act-spectrum-data/act2.dat" &&
    ok || bad "act2.dat: a block does not start at 1 or goes above it"
# whitening: a row per layer, fractions of the features in (0, 1].
[ "$(grep -vc '^#' "$D2/whitening-data/white2.dat")" -eq 7 ] && ok ||
    bad "white2.dat: not one row per layer"
awk '!/^#/ { for (i = 3; i <= 4; i++) if ($i <= 0 || $i > 1) bad = 1 } END { exit bad }' \
    "$D2/whitening-data/white2.dat" && ok || bad "white2.dat: rank fractions outside (0, 1]"
# channels: the mlp's three relu layers, at most 30 channels each,
# quantiles in order.
[ "$(blocks "$D2/channels-data/chan2.dat")" -eq 3 ] && ok ||
    bad "chan2.dat: $(blocks "$D2/channels-data/chan2.dat") blocks, wanted the 3 relu layers"
[ "$(grep '^#' "$D2/channels-data/chan2.dat" | cut -d' ' -f2 | tr '\n' ' ')" = '01-relu 03-relu 05-relu ' ] &&
    ok || bad "chan2.dat: not the relu layers: $(grep '^#' "$D2/channels-data/chan2.dat")"
awk '!/^#/ && NF == 8 { n[blk]++; for (i = 3; i <= 8; i++) if ($i < $(i - 1)) bad = 1 }
     /^#/ { blk++ } END { for (b in n) if (n[b] > 30) bad = 1; exit bad }' \
    "$D2/channels-data/chan2.dat" && ok || bad "chan2.dat: quantiles out of order or over 30 channels"
# weight-esd: four panels (the mlp's four weights, as many as the cnn's),
# each histogram a density: sum of density x bin width is 1.
[ "$(blocks "$D2/weight-esd-data/esd2.dat")" -eq 4 ] && ok ||
    bad "esd2.dat: $(blocks "$D2/weight-esd-data/esd2.dat") blocks, wanted 4 panels"
awk '/^#/ { if (started && (s < 0.999 || s > 1.001)) bad = 1; s = 0; started = 1; row = 0; next }
     NF == 2 { row++; if (row % 2) x0 = $1; else if ($2 != "NaN") s += $2 * ($1 - x0) }
     END { if (s < 0.999 || s > 1.001) bad = 1; exit bad }' "$D2/weight-esd-data/esd2.dat" &&
    ok || bad "esd2.dat: a histogram does not integrate to 1"

# The last checkpoint of a file with several: the numbers of the file
# made with --ckpt last (the same samples).
run "$NS" plot "$T/s-all.h5" --what whitening -o "$T/all"
want 0 "whitening of a file with two checkpoints" &&
    { cmp -s "$T/all/whitening-data/white1.dat" "$D2/whitening-data/white2.dat" && ok ||
      bad "whitening of --ckpt all: not the last checkpoint"; }

run "$NS" plot "$T/s-cnn.h5" "$T/s-mlp.h5" --what whitening -o "$T/svg" --format svg
want 0 "plot whitening --format svg" && { grep -q "<svg" "$T/svg/whitening.svg" && ok ||
    bad "plot --format svg: not an SVG file"; }
run "$NS" plot "$T/s-cnn.h5" --what channels -o "$D1"
refused "plot over an existing figure" "exists; use --force" "$T/nothing" channels
run "$NS" plot "$T/s-cnn.h5" --what channels -o "$D1" --force
want 0 "plot --force"

# ------------------------------------------------------- gaps and notes
run "$NS" plot "$T/s-now.h5" "$T/s-cnn.h5" --what weight-esd -o "$T/now"
want 0 "weight-esd, one of two files without weights" && {
    figure weight-esd "$T/now" "weight-esd, one file without weights"
    has "$T/stderr" "no weight spectra at step" "weight-esd notes the file without weights"; }
run "$NS" plot "$T/s-now.h5" --what weight-esd -o "$T/bad"
refused "weight-esd of a file without weights" "'$T/s-now.h5': no weight spectra at step" \
    "$T/bad" weight-esd

if "$PY" -c 'import h5py' 2>/dev/null; then
    "$PY" - "$T" <<'PYEOF' && ok || bad "cannot write result files with gaps with h5py"
# holes.h5: no cov_eigenvalues for 01-relu, a NaN condition number at
# 02-dense; noquant.h5: no channel quantiles anywhere.
import sys, shutil, h5py
T = sys.argv[1]
for name in ("holes", "noquant"):
    shutil.copy(T + "/s-mlp.h5", T + "/%s.h5" % name)
with h5py.File(T + "/holes.h5", "a") as f:
    step = max(s for s in f["spectrum"] if s.isdigit())
    del f["spectrum/%s/01-relu/cov_eigenvalues" % step]
    f["spectrum/%s/02-dense" % step].attrs["condition_number"] = float("nan")
with h5py.File(T + "/noquant.h5", "a") as f:
    step = max(s for s in f["spectrum"] if s.isdigit())
    for g in f["spectrum/" + step]:
        if "channel_quantiles" in f["spectrum/%s/%s" % (step, g)]:
            del f["spectrum/%s/%s/channel_quantiles" % (step, g)]
PYEOF
    run "$NS" plot "$T/holes.h5" --what act-spectrum -o "$T/holes"
    want 0 "act-spectrum with a layer without eigenvalues" && {
        figure act-spectrum "$T/holes" "act-spectrum with a gap"
        has "$T/stderr" "no cov_eigenvalues for 01-relu" "act-spectrum notes the layer"
        [ "$(blocks "$T/holes/act-spectrum-data/act1.dat")" -eq 6 ] && ok ||
            bad "act-spectrum with a gap: not six blocks"; }
    run "$NS" plot "$T/holes.h5" --what whitening -o "$T/holes"
    want 0 "whitening with a NaN condition number" && {
        figure whitening "$T/holes" "whitening with a NaN"
        grep -q '^2 NaN ' "$T/holes/whitening-data/white1.dat" && ok ||
            bad "whitening: the NaN condition number is not written as NaN"; }
    run "$NS" plot "$T/noquant.h5" --what channels -o "$T/bad"
    refused "channels without quantiles" "no layer at step 2 holds channel_quantiles" "$T/bad" channels
else
    echo "note: $PY has no h5py, skipping the result files with gaps"
fi

# ------------------------------------------------------------ bad input
run "$NS" meanfield --grid none -o "$T/mf.h5" $Q
want 0 "meanfield (a result file without /spectrum)"
for kind in $KINDS; do
    run "$NS" plot "$T/cnn.h5" --what $kind -o "$T/bad"
    refused "plot $kind of a run file" "'$T/cnn.h5': not a normscope result file" "$T/bad" $kind
    run "$NS" plot "$T/mf.h5" --what $kind -o "$T/bad"
    refused "plot $kind of a result without /spectrum" \
        "'$T/mf.h5': no spectrum results ('/spectrum' is missing; write them with normscope spectrum)" \
        "$T/bad" $kind
    # The bad file second: the good one's data must not stay behind either.
    run "$NS" plot "$T/s-cnn.h5" "$T/mf.h5" --what $kind -o "$T/bad"
    refused "plot $kind of a good and a bad file" "no spectrum results" "$T/bad" $kind
    run "$NS" plot "$T/s-cnn.h5" "$T/missing.h5" --what $kind -o "$T/bad"
    refused "plot $kind of a missing file" "cannot open '$T/missing.h5'" "$T/bad" $kind
done
[ -e "$T/bad" ] && bad "refused plots left the directory $T/bad" || ok
run "$NS" plot "$T/s-cnn.h5" "$T/s-cnn.h5" "$T/s-cnn.h5" "$T/s-cnn.h5" "$T/s-cnn.h5" \
    --what channels -o "$T/bad"
refused "channels of five files" "draws at most 4" "$T/bad" channels

finish test_plot_spectrum
