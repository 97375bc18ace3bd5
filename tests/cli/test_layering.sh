#!/bin/sh
# Layering (DESIGN.md section 6): HDF5 lives in src/io and the data-set
# readers of src/data only.  No other file under src/ and no public header
# in include/normscope/ includes an HDF5 header or names anything of HDF5
# (H5* functions, constants and types, hid_t, herr_t, hsize_t, ...).
# Comments are stripped first (by the C preprocessor, which keeps
# directives and strings), so a comment may still speak of HDF5.
. "$(dirname "$0")/../cli_lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CC=${CC:-cc}
PAT='\bH5[A-Za-z0-9_]*\b|\b(hdf5|hdf5_hl)\.h\b|\b(hid_t|herr_t|hsize_t|hssize_t|htri_t|haddr_t)\b'

# offenders FILE...: "file: text" for every line of FILEs that uses HDF5
offenders() {
    for f in "$@"; do
        if ! "$CC" -fpreprocessed -dD -E -P -x c "$f" > "$T/stripped" 2> "$T/cc.err"; then
            echo "$f: cannot strip comments: $(head -c 200 "$T/cc.err")"
            continue
        fi
        grep -E "$PAT" "$T/stripped" | sed "s|^|$f: |"
    done
}

# The check finds what it is meant to find.
mkdir -p "$T/plant"
cat > "$T/plant/bad.c" <<'EOF'
/* A comment may say hid_t, H5Fopen( and <hdf5.h>. */
#include <hdf5.h>
static hid_t f(void) { return H5Fopen("x", H5F_ACC_RDONLY, H5P_DEFAULT); }
EOF
cat > "$T/plant/good.c" <<'EOF'
/* Comments may name HDF5: hid_t, H5Fopen(), #include <hdf5.h>. */
#include "normscope/io.h"
static ns_hid f(void) { ns_hid h = NS_HID_INVALID; return NS_H5_INT ? h : ns_h5_close(h), h; }
EOF
[ "$(offenders "$T/plant/bad.c" | wc -l)" -eq 2 ] && ok || bad "the check misses HDF5 in a planted file: $(offenders "$T/plant/bad.c")"
[ -z "$(offenders "$T/plant/good.c")" ] && ok || bad "the check flags a file without HDF5: $(offenders "$T/plant/good.c")"

# The tree.
files=$(find -H "$ROOT/src" "$ROOT/include" -type f \( -name '*.c' -o -name '*.h' \) \
        ! -path "$ROOT/src/io/*" ! -path "$ROOT/src/data/*" | sort)
[ -n "$files" ] && ok || bad "no source files found under $ROOT/src"
found=$(offenders $files)
[ -z "$found" ] && ok || bad "HDF5 outside src/io and src/data:
$found"


# src/nn knows no normalization method: it does not include their header.
nn=$(grep -ln 'normscope/norm\.h' "$ROOT"/src/nn/*.c "$ROOT"/src/nn/*.h 2>/dev/null)
[ -z "$nn" ] && ok || bad "src/nn includes the normalization header: $nn"

# No decision depends on a layer's kind string: the ops carry a role, an
# activation function and flags.  A comparison of a ->kind or .kind member
# with a string is flagged; printing it is not.
kindcmp() {
    for f in "$@"; do
        "$CC" -fpreprocessed -dD -E -P -x c "$f" 2>/dev/null |
            grep -E 'str(n)?cmp\([^;)]*(->|\.)kind\b|(->|\.)kind *[!=]= *"' | sed "s|^|$f: |"
    done
}
cat > "$T/plant/kind.c" <<'EOF'
static int f(const ns_layer *L) { return !strcmp(L->ops->kind, "bn"); }
static int g(const ns_layer *L) { return strcmp(net->layers[i].ops->kind, "relu") == 0; }
static void h(const ns_layer *L) { printf("%s", L->ops->kind); }
EOF
[ "$(kindcmp "$T/plant/kind.c" | wc -l)" -eq 2 ] && ok || bad "the kind check misses a planted comparison: $(kindcmp "$T/plant/kind.c")"
srcs=$(find -H "$ROOT/src" -type f \( -name '*.c' -o -name '*.h' \) | sort)
found=$(kindcmp $srcs)
[ -z "$found" ] && ok || bad "decisions on a layer's kind string:
$found"

finish test_layering
