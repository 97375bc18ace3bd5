#!/bin/sh
# make demo: the main job on the embedded default data set.  Trains the mlp
# preset with batch normalization and without normalization on
# Fashion-MNIST, computes the empirical NTK of every checkpoint of both, the
# mean-field theory of plain and weight-mean ReLU networks, draws the
# figures and prints where the files are.
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
for norm in bn none; do
    echo "== empirical NTK of every checkpoint of the $norm run (256 samples)"
    "$NS" ntk "$OUT/mlp-$norm.h5" --n 256 -o "$OUT/ntk-$norm.h5" --force
done
echo "== mean-field theory: ReLU at (2, 0) with MimicNorm's weight mean, tanh phase diagram"
"$NS" meanfield --act relu --sw2 2 --sb2 0 --weight-mean --grid none -o "$OUT/meanfield-relu-wm.h5" --force
"$NS" meanfield --act tanh --sw2 1.5 --sb2 0.05 -o "$OUT/meanfield-tanh.h5" --force
echo "== drawing figures"
"$NS" plot "$OUT/mlp-bn.h5" "$OUT/mlp-none.h5" --what curves -o "$OUT/figures" --force
for kind in ntk-spectrum ntk-training ntk-layers; do
    "$NS" plot "$OUT/ntk-bn.h5" "$OUT/ntk-none.h5" --what "$kind" -o "$OUT/figures" --force
done
"$NS" plot "$OUT/meanfield-relu-wm.h5" --what dualmap -o "$OUT/figures" --force
"$NS" plot "$OUT/meanfield-tanh.h5" --what phase -o "$OUT/figures" --force
"$NS" plot "$OUT/meanfield-tanh.h5" --what trajectory -o "$OUT/figures" --force
echo "== summary of the BN run"
"$NS" info "$OUT/mlp-bn.h5"
echo
echo "== summary of the NTK of the BN run"
"$NS" info "$OUT/ntk-bn.h5" | grep -v "^    ntk/"
echo
echo "demo files in $OUT/: mlp-bn.h5, mlp-none.h5 (run files), ntk-*.h5 and"
echo "meanfield-*.h5 (result files), figures/*.png"
