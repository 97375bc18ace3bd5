#!/bin/sh
# The Makefile on a machine that lacks packages: plain 'make' stops with one
# line naming them, and a target that installs them ('make build', the
# pattern of check, demo and bench) builds in the same invocation.  A fake
# pkg-config finds nothing until the fake install step has run.
. "$(dirname "$0")/../cli_lib.sh"
if [ "$NS_PRECISION" = double ]; then echo "test_build: 0 passed, 0 failed"; exit 0; fi
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REAL=$(command -v pkg-config)
mkdir -p "$T/bin"
cat > "$T/bin/pkg-config" <<EOS
#!/bin/sh
[ -e "$T/installed" ] || exit 1
exec "$REAL" "\$@"
EOS
chmod +x "$T/bin/pkg-config"

run env PATH="$T/bin:$PATH" make -s -C "$ROOT" BUILD="$T/build" all
want 2 "make without packages" && has "$T/stderr" "pkg-config finds no: hdf5 lapacke inih zlib openblas check" "missing packages named"
[ ! -e "$T/build/float/normscope" ] && ok || bad "make without packages built a binary"

run env PATH="$T/bin:$PATH" make -s -C "$ROOT" BUILD="$T/build" DEPS_CMD="touch $T/installed" build
want 0 "make build after installing, one invocation"
if [ -x "$T/build/float/normscope" ] && "$T/build/float/normscope" --version >/dev/null; then ok
else bad "make build left no working binary"; fi
finish test_build
