#!/bin/sh
# make bench, NTK part: `normscope ntk` against PyTorch (bench/torch_ntk.py:
# functorch's vmap(jacrev) + einsum, and a structured NTK written in
# PyTorch) on the same models, full kernel of the K = 10 logits, float32,
# 2 threads, models without BN: mlp (784-512-512-10) at N = 64 and 256,
# cnn at N = 64; then the memory of the mlp's N = 1024 full kernel.
# Seconds are the kernel computation alone on both sides (inputs in memory
# to Theta in memory; normscope's /ntk/<step> attribute `seconds`), peak
# memory the whole process (normscope: /usr/bin/time's maximum RSS).
# NS_BENCH_NTK_FUNCTORCH_256=0 skips functorch at N = 256 (minutes, ~7-9 GB).
set -e
PY=${PYTHON:-/usr/bin/python3}
NS=${NS_BIN:?NS_BIN not set}
THREADS=${NS_BENCH_THREADS:-2}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$(dirname "$0")"
for a in mlp cnn; do
    "$NS" train --arch "$a" --norm none --steps 1 --train-n 1024 --test-n 100 \
        -o "$T/$a.h5" --quiet --threads "$THREADS" >/dev/null
done
# ns_ntk ARCH N: prints "seconds peak_mb"
ns_ntk() {
    /usr/bin/time -f '%M' -o "$T/rss" "$NS" ntk "$T/$1.h5" --ckpt 0 --n "$2" \
        --threads "$THREADS" -o "$T/k.h5" --force --quiet >/dev/null
    s=$("$PY" -c "import h5py,sys; print(h5py.File(sys.argv[1])['ntk/0'].attrs['seconds'])" "$T/k.h5")
    echo "$s $(awk '{printf "%.0f", $1 / 1024}' "$T/rss")"
}
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
slow=""
[ "${NS_BENCH_NTK_FUNCTORCH_256:-1}" = 0 ] && slow="--skip-slow"
echo
echo "empirical NTK, full kernel, K = 10, float32, $THREADS threads (seconds of the kernel; peak RSS MiB)"
printf '%-4s %5s %16s %16s %16s %10s %10s\n' model N normscope functorch torch-struct "vs functorch" "vs struct"
for case in "mlp 64" "mlp 256" "cnn 64"; do
    set -- $case
    ns=$(ns_ntk "$1" "$2")
    nss=${ns% *}; nsm=${ns#* }
    sk=""
    [ "$1$2" = mlp256 ] && sk=$slow
    out=$("$PY" torch_ntk.py --arch "$1" --n "$2" --threads "$THREADS" --method all $sk 2>/dev/null)
    ft=$(echo "$out" | grep "method=functorch"); st=$(echo "$out" | grep "method=structured")
    fs=$(field "$ft" seconds); fm=$(field "$ft" peak_mb)
    ss=$(field "$st" seconds); sm=$(field "$st" peak_mb)
    rf=$( [ -n "$fs" ] && awk -v a="$fs" -v b="$nss" 'BEGIN { printf (a / b >= 10 ? "%.0fx" : "%.1fx"), a / b }' || echo "-")
    rs=$(awk -v a="$ss" -v b="$nss" 'BEGIN { printf "%.1fx", a / b }')
    printf '%-4s %5s %9.3f %6s %9s %6s %9s %6s %10s %10s\n' "$1" "$2" "$nss" "$nsm" \
        "${fs:--}" "${fm:--}" "$ss" "$sm" "$rf" "$rs"
done
ns=$(ns_ntk mlp 1024)
echo "normscope mlp N = 1024 (10240 x 10240 kernel): ${ns% *} s, peak ${ns#* } MiB"
