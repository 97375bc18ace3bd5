#!/bin/sh
# make bench, activation part: `normscope spectrum` of every default layer
# of the cnn on all 10,000 test images, one checkpoint (the issue's target:
# under 15 s on 2 cores), next to the same work in PyTorch
# (bench/torch_spectrum.py: forward with hooks, float64 covariance and
# correlation spectra, quantiles, the 500-sample cosine Gram, weight SVDs).
set -e
PY=${PYTHON:-/usr/bin/python3}
NS=${NS_BIN:?NS_BIN not set}
THREADS=${NS_BENCH_THREADS:-2}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$(dirname "$0")"
"$NS" train --arch cnn --norm bn --steps 1 --train-n 1024 --test-n 100 \
    -o "$T/cnn.h5" --quiet --threads "$THREADS" >/dev/null
t0=$(date +%s.%N)
"$NS" spectrum "$T/cnn.h5" --split test --n 0 --threads "$THREADS" -o "$T/s.h5" --quiet >/dev/null
t1=$(date +%s.%N)
ns=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
pt=$("$PY" torch_spectrum.py --arch cnn --n 10000 --threads "$THREADS" | sed -n 's/^seconds=//p')
echo
echo "spectrum of every layer of the cnn, 10000 test images, $THREADS threads (seconds; target < 15)"
printf '%-10s %10s %10s %8s\n' model normscope torch ratio
printf '%-10s %10s %10s %8s\n' cnn "$ns" "$pt" "$(awk -v a="$pt" -v b="$ns" 'BEGIN { printf "%.2fx", a / b }')"
