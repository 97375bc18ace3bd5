# Shared prologue and helpers of the CLI tests in tests/cli/*.sh, sourced by
# each as  . "$(dirname "$0")/../cli_lib.sh"  (kept out of tests/cli/, whose
# every *.sh run_tests.sh runs as a test).  Sets NS (the normscope binary from
# NS_BIN, made absolute), PY (PYTHON or /usr/bin/python3) and T (a temporary
# directory removed on exit), and counts checks in pass and fail.
NS=${NS_BIN:?NS_BIN not set}
case $NS in /*) ;; *) NS=$PWD/$NS ;; esac
PY=${PYTHON:-/usr/bin/python3}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0; fail=0

# ok: one check passed
ok() { pass=$((pass + 1)); }
# bad MESSAGE...: one check failed, say why
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
# run command...: exit code in $rc, output in $T/stdout and $T/stderr
run() { "$@" >"$T/stdout" 2>"$T/stderr"; rc=$?; }
# want CODE WHAT: the last run exited with CODE
want() {
    if [ "$rc" = "$1" ]; then ok; return 0; fi
    bad "$2: exit $rc, wanted $1: $(head -c 400 "$T/stderr")"; return 1
}
# has FILE PATTERN WHAT: FILE holds PATTERN (fixed string)
has() {
    if grep -qF -- "$2" "$1"; then ok; else bad "$3: no '$2' in: $(head -c 400 "$1")"; fi
}
# is_png FILE: FILE is non-empty and starts with the PNG signature
is_png() { [ -s "$1" ] && [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; }
# one_line: $T/stderr is exactly one non-empty line
one_line() { [ "$(grep -c . "$T/stderr")" -eq 1 ] && [ "$(wc -l < "$T/stderr")" -eq 1 ]; }
# expect CODE PATTERN OUTFILE command...: exit code, stderr pattern (a basic
# regular expression; anchor it with ^...$ to match the whole line) on a
# single line, no OUTFILE* left (an empty OUTFILE skips that check)
expect() {
    code=$1; pat=$2; out=$3; shift 3
    "$@" >"$T/stdout" 2>"$T/stderr"; got=$?
    if [ "$got" != "$code" ]; then bad "$* -> exit $got, wanted $code: $(cat "$T/stderr")"; return; fi
    if ! grep -q -- "$pat" "$T/stderr"; then bad "$* -> stderr lacks '$pat': $(cat "$T/stderr")"; return; fi
    if ! one_line; then bad "$* -> not one line: $(cat "$T/stderr")"; return; fi
    if [ -n "$out" ] && ls "$out"* >/dev/null 2>&1; then bad "$* left $(ls "$out"*)"; return; fi
    ok
}
# expect_line CODE LINE OUTFILE command...: as expect, with stderr exactly
# LINE (a fixed string)
expect_line() {
    code=$1; line=$2; out=$3; shift 3
    "$@" >"$T/stdout" 2>"$T/stderr"; got=$?
    if [ "$got" != "$code" ]; then bad "$* -> exit $got, wanted $code: $(cat "$T/stderr")"; return; fi
    if ! one_line || [ "$(cat "$T/stderr")" != "$line" ]; then
        bad "$* -> stderr is not the line '$line': $(cat "$T/stderr")"; return
    fi
    if [ -n "$out" ] && ls "$out"* >/dev/null 2>&1; then bad "$* left $(ls "$out"*)"; return; fi
    ok
}
# finish NAME: print the counts and exit 0 if no check failed, else 1
finish() {
    echo "$1: $pass passed, $fail failed"
    [ "$fail" -eq 0 ] && exit 0
    exit 1
}
