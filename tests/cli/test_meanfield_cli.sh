#!/bin/sh
# CLI tests of meanfield: bad input gives one line on stderr, exit 2 and no
# output file; good runs write a result file that info lists (values of the
# scalars included) and that plot draws as phase, trajectory and dualmap
# figures.  Needs NS_BIN (the normscope binary) and python3 (standard
# library only); run from the project root.
. "$(dirname "$0")/../cli_lib.sh"

# ------------------------------------------------------------ bad input
# Each: exit 2, exactly one line on stderr naming the problem, no output
# file and no temporary file left beside it.
bad_input() {
    what=$1; pattern=$2; shift 2
    run "$NS" meanfield "$@"
    want 2 "$what" || return
    lines=$(wc -l < "$T/stderr")
    [ "$lines" -eq 1 ] && ok || bad "$what: $lines lines on stderr: $(cat "$T/stderr")"
    has "$T/stderr" "$pattern" "$what"
    [ ! -e "$T/out.h5" ] && ok || bad "$what: left an output file"
    [ -z "$(ls "$T" | grep tmp)" ] && ok || bad "$what: left a temporary file: $(ls "$T")"
}
bad_input "zero sigma_w^2" "sigma_w^2 must be a positive number" --sw2 0 -o "$T/out.h5"
bad_input "negative sigma_w^2" "sigma_w^2 must be a positive number" --sw2 -1 -o "$T/out.h5"
bad_input "negative sigma_b^2" "sigma_b^2 must be a non-negative number" --sb2 -0.5 -o "$T/out.h5"
bad_input "non-number variance" "--sw2 expects a number, got 'abc'" --sw2 abc -o "$T/out.h5"
bad_input "unknown activation" "unknown activation 'sine'" --act sine -o "$T/out.h5"
bad_input "bad leaky slope" "bad leaky relu slope" --act leaky:x -o "$T/out.h5"
bad_input "grid without points" "the grid has no points" --grid 0.5:4:0,0:0.5:10 -o "$T/out.h5"
bad_input "grid with an empty range" "the grid has no points" --grid 4:1:10,0:0.5:10 -o "$T/out.h5"
bad_input "grid with zero variance" "sigma_w^2 must be positive on the grid" \
    --grid 0:4:10,0:0.5:10 -o "$T/out.h5"
bad_input "malformed grid" "bad grid" --grid 1:2:3 -o "$T/out.h5"
bad_input "unwritable output" "cannot write '$T/no-such-dir/out.h5'" -o "$T/no-such-dir/out.h5"
bad_input "no output" "no output file given" --act tanh
bad_input "bad tolerance" "--tol must lie in" --tol 0.5 -o "$T/out.h5"
bad_input "bad correlation" "--c0 must lie in [-1, 1]" --c0 1.5 -o "$T/out.h5"
bad_input "unknown option" "unknown option '--bogus'" --bogus -o "$T/out.h5"
# The whole line: at most one bracketed hint, the option as typed.
expect_line 2 "normscope meanfield: no output file given (use -o OUT.h5)" "" $NS meanfield --act tanh
expect_line 2 "normscope meanfield: unknown activation 'sine' (relu, leaky:A (A = 0.01 by default), linear, tanh, erf, gelu, swish, softplus, sigmoid)" \
    "$T/out.h5" $NS meanfield --act sine -o "$T/out.h5"
expect_line 2 "normscope meanfield: --grid: bad grid '1:2:3' (SW2MIN:SW2MAX:NSW,SB2MIN:SB2MAX:NSB)" \
    "$T/out.h5" $NS meanfield --grid 1:2:3 -o "$T/out.h5"
expect_line 2 "normscope meanfield: --c0 must lie in [-1, 1], got 1.5 (see 'normscope meanfield --help')" \
    "$T/out.h5" $NS meanfield --c0 1.5 -o "$T/out.h5"
expect_line 2 "normscope meanfield: --threads must be an integer in 1..256, got '0' (see 'normscope meanfield --help')" \
    "$T/out.h5" $NS meanfield --threads 0 -o "$T/out.h5"
expect_line 2 "normscope meanfield: unknown option '-x' (see 'normscope meanfield --help')" \
    "$T/out.h5" $NS meanfield -x -o "$T/out.h5"
expect_line 2 "normscope meanfield: option '--weight-mean' takes no value (see 'normscope meanfield --help')" \
    "$T/out.h5" $NS meanfield --weight-mean=1 -o "$T/out.h5"
expect_line 2 "normscope meanfield: option '--sw2' needs a value (see 'normscope meanfield --help')" \
    "" $NS meanfield -o "$T/out.h5" --sw2

run "$NS" meanfield --help
want 0 "meanfield --help" && for q in "q*" "chi_1" "regime" "c*" "slope" "xi_q" "xi_c" "BN rate" \
                                       "T, Tbar" "NTK" "phase" "tanh" "leaky:A"; do
    has "$T/stdout" "$q" "--help explains $q"
done

# ------------------------------------------------------------ good runs
# relu at (2, 0): critical, with the default 300 x 250 grid (closed forms)
run "$NS" meanfield --act relu --sw2 2 --sb2 0 -o "$T/relu.h5" --quiet
if want 0 "relu at (2, 0)"; then
    has "$T/stdout" "regime   critical (chi_1: 1 = 1" "relu summary"
    has "$T/stdout" "infinite (critical)" "relu depth scales"
    has "$T/stdout" "300 x 250" "relu phase diagram"
    [ -s "$T/relu.h5" ] && ok || bad "relu: no result file"
fi
# the existing file is refused without --force, and left alone
cp "$T/relu.h5" "$T/relu.bak"
run "$NS" meanfield -o "$T/relu.h5"
want 2 "existing output" && has "$T/stderr" "use --force" "existing output"
cmp -s "$T/relu.h5" "$T/relu.bak" && ok || bad "existing output was modified"
# MimicNorm's weight mean at its init: chi_1 = 1/(1 - 1/pi), c* = 0
run "$NS" meanfield --act relu --weight-mean --sw2 2.933884 --grid none -o "$T/wm.h5" --quiet
want 0 "relu with weight mean" && has "$T/stdout" "regime   chaotic (" "weight mean summary"
# The weight mean at (2, 0): q* = 0 and chi_1 = 1, but the regime is the c-map's,
# Tbar with slope 1/(1 - 1/pi) at c = 1 and c* = 0: chaotic (MimicNorm's Theorem);
# the summary and the file say that the c-map's slope decided it, and the phase
# grid classifies the (2, 0) cell and the whole sb2 = 0 row the same way
run "$NS" meanfield --act relu --sw2 2 --sb2 0 --weight-mean --grid 1:3:5,0:0.2:3 -o "$T/wm2.h5" --quiet
if want 0 "relu with weight mean at (2, 0)"; then
    has "$T/stdout" "regime   chaotic (c-map slope at c = 1: 1.467 > 1; q* = 0, so chi_1 does not decide)" \
        "weight mean at (2, 0): verdict by the c-map slope"
    if grep -q "regime   critical\|critical (= 1)" "$T/stdout"; then bad "weight mean at (2, 0) called critical: $(grep critical "$T/stdout")"; else ok; fi
    "$PY" - "$T/wm2.h5" <<'PYEOF' && ok || bad "weight mean at (2, 0): regime attributes"
import math, sys
import h5py
f = h5py.File(sys.argv[1], "r")
pt = f["meanfield/point"]
assert pt.attrs["regime"] == "chaotic", pt.attrs["regime"]
assert pt.attrs["regime_by"] == "c_map_slope", pt.attrs["regime_by"]
s = 1 / (1 - 1 / math.pi)
assert abs(pt["slope1"][()] - s) < 1e-12 and abs(pt["chi1"][()] - 1) < 1e-12
assert abs(pt["cstar"][()]) < 1e-12
ph = f["meanfield/phase"]
assert ph.attrs["regime_by"] == "c_map_slope"
i = list(ph["sw2"][:]).index(2.0)
assert ph["sb2"][0] == 0
assert ph["regime"][0, i] == 1 and ph["regime_by"][0, i] == 1, (ph["regime"][0], ph["regime_by"][0])
assert abs(ph["slope1"][0, i] - s) < 1e-12 and abs(ph["chi1"][0, i] - 1) < 1e-12
assert (ph["regime"][0] == 1).all()
assert 0 not in list(ph["line/sb2"][:]), ph["line/sb2"][:]
assert all(abs(x - 2) < 1e-12 for x in ph["line/sw2"][:]), ph["line/sw2"][:]
PYEOF
    run "$NS" info --json "$T/wm2.h5"
    want 0 "info --json of the weight mean at (2, 0)" && \
        has "$T/stdout" '"regime": "chaotic", "regime_by": "c_map_slope"' "info shows the verdict"
fi
# plain relu below sw2 = 2 without bias: q* = 0 and chi_1 = 0.75, but the c-map is
# T = 2 phi_hat at every sw2: critical by its slope (the correlations of (2, 0))
run "$NS" meanfield --act relu --sw2 1.5 --sb2 0 --grid none -o "$T/relu15.h5" --quiet
want 0 "relu at (1.5, 0)" && \
    has "$T/stdout" "regime   critical (c-map slope at c = 1: 1 = 1; q* = 0, so chi_1 does not decide)" \
        "relu at (1.5, 0): verdict by the c-map slope"
# tanh, chaotic point, a small grid with its critical line
run "$NS" meanfield --act tanh --sw2 2.5 --sb2 0.1 --grid 0.5:4:40,0:0.5:30 -o "$T/tanh.h5" --quiet
want 0 "tanh" && { has "$T/stdout" "regime   chaotic (chi_1: 1.1 > 1" "tanh summary"
                   has "$T/stdout" "critical line 30 points" "tanh critical line"
                   has "$T/stdout" "regimes by the c-map slope at c = 1" "tanh phase regimes"
                   has "$T/stdout" "highest order" "tanh quadrature"; }
# every activation runs
for a in leaky:0.1 linear erf gelu swish softplus sigmoid; do
    run "$NS" meanfield --act "$a" --sw2 1.5 --sb2 0.05 --grid 0.5:3:12,0:0.3:6 --depth 10 \
        -o "$T/act.h5" --force --quiet
    want 0 "--act $a"
done
run "$NS" meanfield --act relu --quadrature --sw2 1.5 --sb2 0.1 --grid none -o "$T/quad.h5" --quiet
want 0 "relu by quadrature" && has "$T/stdout" "0.75" "relu chi_1 by quadrature"

# ------------------------------------------------------------------ info
run "$NS" info "$T/tanh.h5"
want 0 "info" && { has "$T/stdout" "meanfield/point/chi1" "info lists chi_1"
                   has "$T/stdout" "act tanh" "info shows the activation"
                   has "$T/stdout" "meanfield/phase/line/sw2" "info lists the critical line"
                   has "$T/stdout" "= 1.0998" "info shows scalar values"; }
run "$NS" info --json "$T/wm.h5"
if want 0 "info --json"; then
    "$PY" - "$T/stdout" <<'PYEOF' && ok || bad "info --json values: $(head -c 300 "$T/stdout")"
import json, math, sys
d = json.load(open(sys.argv[1]))
v = {x["path"]: x.get("value") for x in d["datasets"]}
assert abs(v["meanfield/point/chi1"] - 1 / (1 - 1 / math.pi)) < 1e-5, v
assert abs(v["meanfield/point/cstar"]) < 1e-12, v
assert all(x["description"] for x in d["datasets"]), "a data set without description"
PYEOF
fi

# ------------------------------------------------------------------ plot
for k in phase dualmap; do
    run "$NS" plot "$T/tanh.h5" --what $k -o "$T/fig"
    want 0 "plot $k" && { is_png "$T/fig/$k.png" && ok || bad "plot $k: no PNG"; }
done
run "$NS" plot "$T/relu.h5" "$T/wm.h5" "$T/tanh.h5" --what trajectory -o "$T/fig"
want 0 "plot trajectory" && { is_png "$T/fig/trajectory.png" && ok || bad "plot trajectory: no PNG"; }
# the figure draws the regime's quantity: slope1 (column 5) and regime_by (6)
run "$NS" plot "$T/wm2.h5" --what phase -o "$T/fig3"
if want 0 "plot phase of the weight mean at (2, 0)"; then
    is_png "$T/fig3/phase.png" && ok || bad "plot phase (weight mean): no PNG"
    "$PY" - "$T/fig3/phase-data/phase.dat" <<'PYEOF' && ok || bad "phase.dat: slope1 and regime_by columns"
import math, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")]
cell = [r for r in rows if float(r[0]) == 2 and float(r[1]) == 0][0]
assert abs(float(cell[2]) - 1) < 1e-8, cell                       # chi_1
assert abs(float(cell[4]) - 1 / (1 - 1 / math.pi)) < 1e-8, cell   # slope1
assert cell[5] == "1", cell                                       # regime_by
PYEOF
fi
run "$NS" plot "$T/wm.h5" --what phase -o "$T/fig2"
want 2 "plot phase without a grid" && has "$T/stderr" "no mean-field phase diagram" "phase without grid"
[ ! -e "$T/fig2/phase.png" ] && ok || bad "phase without grid: wrote a figure"

# ------------------------------------------------ the default tanh grid
run "$NS" meanfield --act tanh --sw2 2.5 --sb2 0.1 -o "$T/tanh-full.h5" --quiet
if want 0 "tanh, default 300 x 250 grid"; then
    echo "note: $(grep 'phase diagram' "$T/stdout")"
fi

finish "meanfield CLI"
