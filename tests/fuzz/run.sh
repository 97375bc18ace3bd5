#!/bin/sh
# make fuzz: builds the seed corpora, then runs each libFuzzer harness for
# FUZZ_TIME seconds (FUZZ_PAR at a time), prints executions per harness and
# fails when any harness found a crash, a leak, a timeout or an allocation
# beyond its limit (the input is kept in build/fuzz/findings/).
# Usage: run.sh FUZZ_DIR NORMSCOPE_BINARY HARNESS...
set -u
FZ=$1; NS=$2; shift 2
TIME=${FUZZ_TIME:-60}
PAR=${FUZZ_PAR:-1}
PY=${PYTHON:-/usr/bin/python3}
SEEDS=$FZ/seeds
mkdir -p "$SEEDS" "$FZ/findings"

# ---------------------------------------------------------------- seeds
seed_idx() {
    d=$SEEDS/idx; mkdir -p "$d"
    "$PY" - "$d" <<'PYEOF'
import gzip, struct, sys
d = sys.argv[1]
def idx(dims, body):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", n) for n in dims) + body
files = {
    "labels": idx([5], bytes([0, 1, 2, 9, 3])),
    "images": idx([2, 3, 3], bytes(range(18))),
    "four": idx([1, 1, 2, 2], bytes([7, 8, 9, 10])),
    "empty": idx([0], b""),
    "short": idx([4, 2], bytes(3)),
}
for k, v in files.items():
    open(f"{d}/{k}", "wb").write(v)
    open(f"{d}/{k}.gz", "wb").write(gzip.compress(v))
PYEOF
    for f in /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz \
             /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz; do
        [ -f "$f" ] && head -c 3000 "$f" > "$d/$(basename "$f").head"
    done
}
seed_arch() {
    d=$SEEDS/arch; mkdir -p "$d"
    i=0
    # One byte choosing the method, then the string.
    for a in mlp mlp:32x2 cnn resnet8 vgg11-s deepmlp:8x3 \
        'conv3x3:32,bn,relu,conv3x3:64/2,bn,relu,gap,fc:10' \
        'fc:16,norm,relu,dropout:0.5,fc:out' 'conv5x5:4p0,norm,lrelu:0.1,maxpool:2,flatten,fc:out' \
        'res:8,res:16/2,gap,fc:out' 'conv3x3:4,norm,tanh,avgpool:2/2,conv1x1:2,erf,gap,fc:out' \
        'conv3x3:8/2p1,norm,id,gap,fc:out'; do
        printf "\\$(printf %o $((i % 20)))%s" "$a" > "$d/$i"; i=$((i + 1))
    done
}
seed_runfile() {
    d=$SEEDS/runfile; mkdir -p "$d"
    small="--train-n 64 --test-n 32 --epochs 1 --batch 32 --threads 1 --quiet --force"
    "$NS" train --arch mlp:8x1 --norm bn --data gauss:3:4 $small -o "$d/mlp-bn.h5" >/dev/null &&
    "$NS" train --arch 'conv3x3:4/2,norm,relu,maxpool:2,gap,fc:out' --norm gn --gn-groups 2 $small \
        -o "$d/conv-gn.h5" >/dev/null &&
    "$NS" train --arch 'fc:8,norm,relu,fc:out' --norm mabn --data moons $small \
        -o "$d/fc-mabn.h5" >/dev/null &&
    "$NS" train --arch 'conv3x3:4/4,norm,relu,res:4,gap,fc:out' --norm mimic $small \
        -o "$d/res-mimic.h5" >/dev/null || { echo "fuzz: cannot make the run-file seeds" >&2; exit 1; }
}
# The structure-aware harness edits the run files; its corpus starts from
# a few edit lists.
seed_runfile_edits() {
    d=$SEEDS/runfile-edits; mkdir -p "$d"
    i=0
    for e in '\000' '\001\000\000\003\000\001' '\002\003\000\007' '\003\004\000\010\000'; do
        printf "$e" > "$d/$i"; i=$((i + 1))
    done
}
seed_h5image() { seed_runfile; mkdir -p "$SEEDS/h5image"; cp "$SEEDS"/runfile/*.h5 "$SEEDS/h5image/"; }
seed_options() {
    d=$SEEDS/options; mkdir -p "$d"
    printf '[train]\narch = mlp\nnorm = bn\nlr = 0.05\nepochs = 3\nbatch = 128\nseed = 7\n' > "$d/basic"
    printf '[train]\noptim = adam\nadam-eps = 1e-8\nschedule = step:10,20@0.1\ninit = gauss:2,0.1\nwarmup = 100\nclip = 2\n' > "$d/adam"
    printf '[train]\nnorm = mabn\nmabn-buffer = 4\nnorm-group = 2\nbn-eps = 1e-5\nbn-momentum = 0.1\nthreads = 2\n' > "$d/mabn"
    printf 'lr=inf\nepochs=-1\nthreads=1000000000\ntrain-n=7\n' > "$d/bad"
}
# ---------------------------------------------------------------- runs
run_one() {
    h=$1
    mkdir -p "$FZ/corpus/$h"
    dict=""
    [ -f "tests/fuzz/$h.dict" ] && dict="-dict=tests/fuzz/$h.dict"
    seeds=$SEEDS/$h
    [ "$h" = runfile ] && seeds=$SEEDS/runfile-edits
    NS_FUZZ_RUNS=$(ls "$SEEDS"/runfile/*.h5 | tr '\n' ':') \
    "$FZ/fuzz_$h" "$FZ/corpus/$h" "$seeds" $dict -max_total_time="$TIME" \
        -timeout=20 -rss_limit_mb=4096 -malloc_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$FZ/findings/$h-" \
        > "$FZ/$h.log" 2>&1
    echo $? > "$FZ/$h.rc"
}
for h in "$@"; do "seed_$h"; done
case " $* " in *" runfile "*) seed_runfile_edits ;; esac
running=0
for h in "$@"; do
    echo "fuzz: $h for ${TIME}s" >&2
    run_one "$h" &
    running=$((running + 1))
    if [ "$running" -ge "$PAR" ]; then wait; running=0; fi
done
wait
fail=0
for h in "$@"; do
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$FZ/$h.log" | tail -1)
    rc=$(cat "$FZ/$h.rc")
    if [ "$rc" = 0 ]; then
        echo "fuzz_$h: ${execs:-?} executions in ${TIME}s, no finding"
    else
        fail=1
        echo "fuzz_$h: FINDING after ${execs:-?} executions (exit $rc); see $FZ/$h.log and $FZ/findings/"
        grep -m3 -E "ERROR: |SUMMARY: |runtime error" "$FZ/$h.log" | sed 's/^/    /'
    fi
done
exit $fail
