#!/bin/sh
# CLI tests of info and plot: summaries of run and result files (text and
# JSON), bad input gives exit 2 and a message naming the file, figures are
# PNG/SVG files written only when complete and never over an existing one
# without --force.  Runs on a small trained run file (NS_BIN train) and on a
# synthetic run file written with h5py, so the checks do not hang on one
# writer.  Needs NS_BIN (the normscope binary) and PYTHON (with h5py); run
# from the project root.
. "$(dirname "$0")/../cli_lib.sh"

# ------------------------------------------------------------ run files
runs=""
if run "$NS" train --arch mlp:32x1 --data fashion-mnist --epochs 1 --train-n 2000 \
       --test-n 500 -o "$T/trained.h5" --quiet && [ -s "$T/trained.h5" ]; then
    runs="$runs trained"
    echo "trained bn mlp:32x1" > "$T/trained.want"
else
    echo "note: normscope train failed, checking the synthetic run file only: $(head -c 300 "$T/stderr")"
fi
if "$PY" -c 'import h5py, numpy' 2>/dev/null; then
    "$PY" - "$T" <<'PYEOF' && runs="$runs synthetic" || bad "cannot write synthetic files with h5py"
# A run file of 4 epochs x 25 steps and a result file, per DESIGN.md section 3.
# /config holds the keys of format version 1 without the method options
# added since (as older run files do); checkpoints hold every tensor of the
# architecture in its shape.
import sys, numpy as np, h5py
T = sys.argv[1]
r = np.random.default_rng(3)
with h5py.File(T + "/synthetic.h5", "w") as f:
    for k, v in dict(format="normscope-run", arch="conv3x3:8,norm,relu,gap,fc:10", norm="gn",
                     dataset="fashion-mnist", command_line="normscope train", created="2024-01-01T00:00:00Z",
                     normscope_version="0.1.0", precision="double", status="complete").items():
        f.attrs[k] = v
    f.attrs["format_version"] = np.int64(1); f.attrs["seed"] = np.int64(7)
    for k, v in dict(lr=0.1, momentum=0.9, wd=0.0, optim="sgd", batch=64, epochs=4,
                     arch="conv3x3:8,norm,relu,gap,fc:10", data="fashion-mnist", norm="gn",
                     norm_group=0, bn_momentum=0.1, bn_eps=1e-5, bn_affine=1, init="torch",
                     nesterov=0, beta1=0.9, beta2=0.999, adam_eps=1e-8, schedule="cosine",
                     warmup=0, steps=0, seed=7, ckpt_every=4, standardize=1, train_n=1600,
                     test_n=400, threads=0).items():
        f.require_group("config").attrs[k] = v
    d = f.create_group("data")
    d.attrs["mean"] = [0.286]; d.attrs["std"] = [0.353]
    for k, v in dict(train_n=1600, test_n=400, c=1, h=28, w=28, nclass=10).items():
        d.attrs[k] = np.int64(v)
    n = 100; s = np.arange(1, n + 1)
    h = f.create_group("history/step")
    h["step"] = s; h["epoch"] = (s - 1) // 25; h["loss"] = 2.3 * np.exp(-s / 30) + 0.3 + 0.05 * r.random(n)
    h["acc"] = r.random(n); h["lr"] = np.full(n, 0.1); h["grad_norm"] = r.random(n); h["act_bytes"] = np.full(n, 1e6)
    e = f.create_group("history/epoch"); ep = np.arange(1, 5)
    e["epoch"] = ep; e["step"] = ep * 25
    for k in ("train_loss", "test_loss"): e[k] = 1.0 / ep
    for k in ("train_acc", "test_acc"): e[k] = 0.6 + 0.05 * ep
    e["lr"] = np.full(4, 0.1); e["seconds"] = np.full(4, 1.0); e["images_per_second"] = np.full(4, 1600.0)
    m = f.create_group("memory"); m.attrs["activation_bytes"] = np.int64(2 ** 20); m.attrs["peak_rss_bytes"] = np.int64(2 ** 27)
    for st in (0, 100):
        g = f.create_group("checkpoints/%d" % st)
        g["params/00-conv/weight"] = r.standard_normal((8, 1, 3, 3)); g["params/00-conv/bias"] = np.zeros(8)
        g["params/01-gn/weight"] = np.ones(8); g["params/01-gn/bias"] = np.zeros(8)
        g["params/04-dense/weight"] = r.standard_normal((10, 8)); g["params/04-dense/bias"] = np.zeros(10)
with h5py.File(T + "/result.h5", "w") as f:
    f.attrs["format"] = "normscope-result"; f.attrs["format_version"] = np.int64(1)
    g = f.create_group("ntk/100"); g.attrs["source"] = "synthetic.h5"; g.attrs["mode"] = "eval"
    ds = g.create_dataset("eigenvalues", data=np.arange(20.0)[::-1])
    ds.attrs["description"] = "eigenvalues of the empirical NTK, descending"; ds.attrs["units"] = "1"
    g["indices"] = np.arange(20)
PYEOF
    echo "synthetic gn conv3x3:8,norm,relu,gap,fc:10" > "$T/synthetic.want"
else
    echo "note: $PY has no h5py, checking the trained run file only"
fi
[ -n "$runs" ] || bad "no run file to test with (train failed and no h5py)"

# ----------------------------------------------------------------- info
for name in $runs; do
    f="$T/$name.h5"
    read -r _ norm arch < "$T/$name.want"
    run "$NS" info "$f"
    want 0 "info $name" && { has "$T/stdout" "$arch" "info $name"; has "$T/stdout" "$norm" "info $name"
                             has "$T/stdout" "epoch" "info $name"; has "$T/stdout" "parameters" "info $name"; }
    run "$NS" info --json "$f"
    if want 0 "info --json $name"; then
        "$PY" - "$T/stdout" "$arch" "$norm" <<'PYEOF' && ok || bad "info --json $name: $(head -c 300 "$T/stdout")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["format"] == "normscope-run" and d["arch"] == sys.argv[2] and d["norm"] == sys.argv[3], d
assert isinstance(d["checkpoints"], list) and d["checkpoints"][0] == 0, d["checkpoints"]
assert d["epochs"] and 0 <= d["epochs"][-1]["test_acc"] <= 1, d["epochs"]
assert d["parameters"] > 0 and isinstance(d["seed"], int) and d["status"] == "complete"
PYEOF
    fi
done
if [ -f "$T/result.h5" ]; then
    run "$NS" info "$T/result.h5"
    want 0 "info result" && { has "$T/stdout" "ntk/100/eigenvalues" "info result"
                              has "$T/stdout" "eigenvalues of the empirical NTK" "info result"; }
    run "$NS" info --json "$T/result.h5"
    want 0 "info --json result" && { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["datasets"][0]["shape"] == [20], d' "$T/stdout" && ok || bad "info --json result: $(head -c 300 "$T/stdout")"; }
fi
run "$NS" info "$T/missing.h5"
want 2 "info on a missing file" && has "$T/stderr" "cannot open '$T/missing.h5'" "info on a missing file"
echo "not hdf5" > "$T/fake.h5"
run "$NS" info "$T/fake.h5"
want 2 "info on a non-HDF5 file" && has "$T/stderr" "'$T/fake.h5': not an HDF5 file" "info on a non-HDF5 file"
run "$NS" info --help
want 0 "info --help" && has "$T/stdout" "usage: normscope info" "info --help"
# A result file without objects (sorting an empty list was undefined: seen
# with make check SAN=1).
if "$PY" -c 'import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    f.attrs["format"] = "normscope-result"; f.attrs["format_version"] = np.int64(1)' "$T/empty.h5"
then
    run "$NS" info "$T/empty.h5"
    want 0 "info on an empty result file" && has "$T/stdout" "(empty)" "info on an empty result file"
fi
run "$NS" info
want 2 "info without a file"
expect_line 2 "normscope info: no file given (see 'normscope info --help')" "" $NS info
expect_line 2 "normscope info: option '--json' takes no value (see 'normscope info --help')" "" \
    $NS info --json=yes "$T/missing.h5"
expect_line 2 "normscope info: unknown option '-z' (see 'normscope info --help')" "" $NS info -zh "$T/missing.h5"

# ----------------------------------------------------------------- plot
run "$NS" plot --what list
want 0 "plot --what list" && has "$T/stdout" "curves" "plot --what list"
run "$NS" plot --help
want 0 "plot --help"
for name in $runs; do
    f="$T/$name.h5"; d="$T/fig-$name"
    run "$NS" plot "$f" --what curves -o "$d"
    want 0 "plot curves $name" && has "$T/stdout" "$d/curves.png" "plot prints the figure's path"
    is_png "$d/curves.png" && ok || bad "plot curves $name: $d/curves.png is not a PNG file"
    [ -s "$d/curves-data/run1-epoch.dat" ] && [ -s "$d/curves-data/run1-step.dat" ] && ok ||
        bad "plot curves $name: no data files in $d/curves-data"
    left=""
    for x in "$d"/.*tmp* "$d"/*tmp*; do [ -e "$x" ] && left="$left $x"; done
    [ -z "$left" ] && ok || bad "plot left temporary files:$left"
    cp "$d/curves.png" "$T/before.png"
    run "$NS" plot "$f" --what curves -o "$d"
    want 2 "plot over an existing figure" && has "$T/stderr" "$d/curves.png' exists" "plot over an existing figure"
    cmp -s "$d/curves.png" "$T/before.png" && ok || bad "refused overwrite still changed the figure"
    run "$NS" plot "$f" --what curves -o "$d" --force
    want 0 "plot --force" && { is_png "$d/curves.png" && ok || bad "plot --force: not a PNG file"; }
done
set -- $runs
if [ $# -ge 1 ]; then
    first="$T/$1.h5"
    # several runs overlaid (the same file twice gets labels from its path), SVG output
    run "$NS" plot "$first" "$T/$(echo $runs | awk '{print $NF}').h5" "$first" --what curves -o "$T/svg" --format svg
    want 0 "plot overlay svg" && { grep -q "<svg" "$T/svg/curves.svg" && ok || bad "plot --format svg: not an SVG file"; }
    run "$NS" plot "$first" --what nosuchkind -o "$T/u"
    want 2 "plot --what nosuchkind" && has "$T/stderr" "nosuchkind" "plot --what nosuchkind"
    expect_line 2 "normscope plot: unknown figure kind 'nosuchkind' (see 'normscope plot --what list')" \
        "$T/u" $NS plot "$first" --what nosuchkind -o "$T/u"
    expect_line 2 "normscope plot: no figure kind given (use --what KIND; see 'normscope plot --what list')" \
        "$T/u" $NS plot "$first" -o "$T/u"
    expect_line 2 "normscope plot: unknown format 'gif' (png, svg, pdf)" "$T/u" \
        $NS plot "$first" --what curves -o "$T/u" --format gif
    expect_line 2 "normscope plot: no output directory given (-o DIR)" "" $NS plot "$first" --what curves
    expect_line 2 "normscope plot: unknown option '-z' (see 'normscope plot --help')" "$T/u" \
        $NS plot "$first" -zq --what curves -o "$T/u"
    expect_line 2 "normscope plot: option '--what' needs a value (see 'normscope plot --help')" "$T/u" \
        $NS plot "$first" -o "$T/u" --what
    run "$NS" plot "$first" "$T/missing.h5" --what curves -o "$T/m"
    want 2 "plot on a missing file" && has "$T/stderr" "cannot open '$T/missing.h5'" "plot on a missing file"
    [ -e "$T/m/curves.png" ] && bad "plot on a missing file left a figure" || ok
    run "$NS" plot "$T/fake.h5" --what curves -o "$T/m"
    want 2 "plot on a non-HDF5 file"
    if [ -f "$T/result.h5" ]; then
        run "$NS" plot "$T/result.h5" --what curves -o "$T/m"
        want 2 "plot curves on a result file" && has "$T/stderr" "not a normscope run file" "plot curves on a result file"
    fi
    [ -e "$T/m/curves.png" ] && bad "plot on bad input left a figure" || ok
    run "$NS" plot "$first" --what curves -o "$T/f" --format gif
    want 2 "plot --format gif"
    run "$NS" plot "$first" --what curves
    want 2 "plot without -o"
    # A diverged run (non-finite losses) still gets its figure, labelled so.
    run "$NS" train --arch mlp:32x1 --norm none --lr 1e4 --data fashion-mnist --epochs 1 \
        --train-n 1000 --test-n 200 -o "$T/nan.h5" --quiet
    if [ -s "$T/nan.h5" ]; then
        run "$NS" plot "$T/nan.h5" --what curves -o "$T/nan"
        want 0 "plot curves of a diverged run" && { is_png "$T/nan/curves.png" && ok || bad "plot of a diverged run: not a PNG file"; }
        run "$NS" info "$T/nan.h5"
        want 0 "info on a diverged run" && has "$T/stdout" "diverged at step" "info on a diverged run"
    fi
    run env PATH=/nonexistent "$NS" plot "$first" --what curves -o "$T/g"
    want 1 "plot without gnuplot" && has "$T/stderr" "gnuplot" "plot without gnuplot"
    [ -e "$T/g/curves.png" ] && bad "plot without gnuplot left a figure" || ok
fi

finish test_plot_info
