#!/bin/sh
# make bench: normscope against the PyTorch peer (Debian's python3-torch),
# in one invocation, on the same models: batch 128, float32, 2 threads,
# median images/s of several repeats of full SGD steps.
# PyTorch runs twice: as configured by default (torch.set_num_threads(2)),
# and with OPENBLAS_NUM_THREADS=1, which stops Debian's OpenBLAS from
# starting threads of its own that compete with torch's (much faster for
# the mlp).  Ratios are given against both.
set -e
PY=${PYTHON:-/usr/bin/python3}
cd "$(dirname "$0")"
THREADS=${NS_BENCH_THREADS:-2}
REPEATS=${NS_BENCH_REPEATS:-5}
echo "training throughput (img/s), batch 128, float32, $THREADS threads, median of $REPEATS repeats"
printf '%-5s %-5s %10s %10s %10s %8s %8s\n' model norm normscope torch torch-ob1 ratio ratio-ob1
for case in "mlp bn 50" "cnn bn 20" "mlp none 50" "cnn none 20"; do
    set -- $case
    ns=$("$NS_THROUGHPUT" "$1" "$2" "$REPEATS" "$3" "$THREADS" | awk '{print $4}')
    pt=$("$PY" torch_throughput.py --arch "$1" --norm "$2" --repeats "$REPEATS" \
         --steps "$3" --threads "$THREADS" | awk '{print $4}')
    pt1=$(OPENBLAS_NUM_THREADS=1 "$PY" torch_throughput.py --arch "$1" --norm "$2" \
          --repeats "$REPEATS" --steps "$3" --threads "$THREADS" | awk '{print $4}')
    r=$(awk -v a="$ns" -v b="$pt" 'BEGIN { printf "%.2fx", a / b }')
    r1=$(awk -v a="$ns" -v b="$pt1" 'BEGIN { printf "%.2fx", a / b }')
    printf '%-5s %-5s %10.0f %10.0f %10.0f %8s %8s\n' "$1" "$2" "$ns" "$pt" "$pt1" "$r" "$r1"
done
# Per method on the cnn: normscope's img/s and its ratio to BN's in the same
# run (the issue's "close to plain BN": above 1.5x slower needs a reason),
# next to PyTorch where it has the layer (bn, gn, ln, in, frn, none).
echo
echo "per-method training throughput on the cnn (img/s), $THREADS threads, median of $REPEATS repeats"
printf '%-8s %10s %8s %10s %8s\n' norm normscope "BN/x" torch ratio
bn=$("$NS_THROUGHPUT" cnn bn "$REPEATS" 20 "$THREADS" | awk '{print $4}')
for m in $("${NS_BIN:?NS_BIN not set}" train --list-norms | awk '{print $1}'); do
    ns=$("$NS_THROUGHPUT" cnn "$m" "$REPEATS" 20 "$THREADS" | awk '{print $4}')
    slow=$(awk -v a="$bn" -v b="$ns" 'BEGIN { printf "%.2f", a / b }')
    case $m in
    bn|gn|ln|in|frn|none)
        pt=$(OPENBLAS_NUM_THREADS=1 "$PY" torch_throughput.py --arch cnn --norm "$m" \
             --repeats "$REPEATS" --steps 20 --threads "$THREADS" | awk '{print $4}')
        r=$(awk -v a="$ns" -v b="$pt" 'BEGIN { printf "%.2fx", a / b }')
        printf '%-8s %10.0f %8s %10.0f %8s\n' "$m" "$ns" "$slow" "$pt" "$r" ;;
    *)
        printf '%-8s %10.0f %8s %10s %8s\n' "$m" "$ns" "$slow" - - ;;
    esac
done
echo
sh ntk.sh
sh spectrum.sh
