#!/bin/sh
# Runs every Check suite given as an argument, then the CLI tests in
# tests/cli/*.sh, and prints one closing line.  NS_BIN is the normscope binary.
pass=0; fail=0; failed=""
for t in "$@"; do
    echo "== $(basename "$t") ($NS_PRECISION)"
    if "$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); failed="$failed $(basename "$t")"; fi
done
for t in tests/cli/*.sh; do
    [ -f "$t" ] || continue
    echo "== $(basename "$t") ($NS_PRECISION)"
    if sh "$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); failed="$failed $(basename "$t")"; fi
done
echo "$NS_PRECISION: $pass passed, $fail failed"
[ "$fail" -eq 0 ] || { echo "failed:$failed"; exit 1; }
