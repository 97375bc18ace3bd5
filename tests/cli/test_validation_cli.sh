#!/bin/sh
# CLI tests of what normscope accepts: numeric options are checked from one
# table (finite, range, integer).
# Needs NS_BIN (the normscope binary) and PYTHON (with h5py).
. "$(dirname "$0")/../cli_lib.sh"

Q="--quiet --threads 2"
SMALL="--train-n 512 --test-n 100 $Q"

# ------------------------------------------------- numeric options
# Values out of range, not finite or not whole are refused with one line
# naming the option, before anything is read or written.
for o in --adam-eps --bn-eps --frn-eps --agc --lr --bn-momentum --momentum --wd --clip \
         --beta1 --beta2 --psbn-alpha --fct --ic-drop --bkn-p; do
    for v in inf -inf; do
        expect 2 "^normscope train: $o must be a .*, got '$v' (see 'normscope train --help')$" \
            "$T/o.h5" $NS train "$o" "$v" -o "$T/o.h5" $SMALL
    done
    expect 2 "^normscope train: $o expects a number, got 'nan'" "$T/o.h5" $NS train "$o" nan -o "$T/o.h5" $SMALL
done
expect_line 2 "normscope train: --adam-eps must be a finite number > 0, got '-1' (see 'normscope train --help')" \
    "$T/o.h5" $NS train --adam-eps -1 -o "$T/o.h5" $SMALL
expect_line 2 "normscope train: --bn-eps must be a finite number > 0, got '0' (see 'normscope train --help')" \
    "$T/o.h5" $NS train --bn-eps 0 -o "$T/o.h5" $SMALL
expect_line 2 "normscope train: --ic-drop must be a number in [0, 1), got '1' (see 'normscope train --help')" \
    "$T/o.h5" $NS train --ic-drop 1 -o "$T/o.h5" $SMALL
expect_line 2 "normscope train: --epochs expects a non-negative integer, got '1.5' (see 'normscope train --help')" \
    "$T/o.h5" $NS train --epochs 1.5 -o "$T/o.h5" $SMALL
expect_line 2 "normscope train: --mabn-buffer must be an integer in 0..4096, got '5000' (see 'normscope train --help')" \
    "$T/o.h5" $NS train --mabn-buffer 5000 -o "$T/o.h5" $SMALL
expect_line 2 "normscope train: --gn-groups must be an integer in 1..65536, got '0' (see 'normscope train --help')" \
    "$T/o.h5" $NS train --gn-groups 0 -o "$T/o.h5" $SMALL
expect 2 "bad initialiser 'gauss:inf,0'" "$T/o.h5" $NS train --init gauss:inf,0 -o "$T/o.h5" $SMALL
expect 2 "bad schedule 'step:1@inf'" "$T/o.h5" $NS train --schedule step:1@inf -o "$T/o.h5" $SMALL
# The bounds themselves are accepted where they are closed.
$NS train --arch mlp:8x1 --steps 1 --bn-momentum 1 --momentum 0 --ic-drop 0 -o "$T/b.h5" $SMALL >/dev/null &&
    ok || bad "closed bounds refused: $(cat "$T/stderr")"

finish test_validation_cli
