#!/bin/sh
# make demo: the main job on the embedded default data set.  Trains the mlp
# preset with batch normalization and without normalization on
# Fashion-MNIST, draws their training curves and prints where the files are.
# Output goes to ${NS_DEMO_DIR:-demo-out}; existing demo files are replaced.
set -e
NS=${1:?usage: demo.sh NORMSCOPE_BINARY}
OUT=${NS_DEMO_DIR:-demo-out}
EPOCHS=${NS_DEMO_EPOCHS:-3}
mkdir -p "$OUT"
for norm in bn none; do
    echo "== training mlp with --norm $norm on fashion-mnist ($EPOCHS epochs)"
    "$NS" train --arch mlp --norm "$norm" --data fashion-mnist --epochs "$EPOCHS" \
        -o "$OUT/mlp-$norm.h5" --force
done
echo "== drawing training curves"
"$NS" plot "$OUT/mlp-bn.h5" "$OUT/mlp-none.h5" --what curves -o "$OUT/figures" --force
echo "== summary of the BN run"
"$NS" info "$OUT/mlp-bn.h5"
echo
echo "demo files in $OUT/: mlp-bn.h5, mlp-none.h5 (run files), figures/curves.png"
