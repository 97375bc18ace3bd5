#!/bin/sh
# make bench: normscope against the PyTorch peer (Debian's python3-torch),
# in one invocation, on the same models, batch 128, float32, 2 threads.
# Prints the median images/s of each and the ratio.
set -e
PY=${PYTHON:-/usr/bin/python3}
cd "$(dirname "$0")"
THREADS=${NS_BENCH_THREADS:-2}
REPEATS=${NS_BENCH_REPEATS:-5}
echo "training throughput, batch 128, float32, $THREADS threads, median of $REPEATS repeats"
printf '%-6s %-5s %14s %14s %8s\n' model norm normscope pytorch ratio
for case in "mlp bn 50" "cnn bn 10" "mlp none 50" "cnn none 10"; do
    set -- $case
    ns=$("$NS_THROUGHPUT" "$1" "$2" "$REPEATS" "$3" "$THREADS" | awk '{print $4}')
    pt=$("$PY" torch_throughput.py --arch "$1" --norm "$2" --repeats "$REPEATS" \
         --steps "$3" --threads "$THREADS" 2>/dev/null | awk '{print $4}')
    ratio=$(awk -v a="$ns" -v b="$pt" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
    printf '%-6s %-5s %10s img/s %8s img/s %7sx\n' "$1" "$2" "$ns" "$pt" "$ratio"
done
