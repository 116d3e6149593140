#!/usr/bin/env bash
# libaquifer as a program outside the tree uses it: `cmake --install` into a temporary prefix (and
# again with DESTDIR), a small C program compiled with `pkg-config --cflags --libs aquifer` only,
# then run against a real three-node cluster: put, get, stat, a missing key's error sentence.
set -euo pipefail
source "$AQ_SRC/test/integration/lib.sh"

it_log "install into a prefix and into a DESTDIR"
cmake --install "$AQ_BUILD" --prefix "$T/inst" >"$T/install.out" 2>&1 || { cat "$T/install.out"; it_fail "cmake --install failed"; }
DESTDIR="$T/dd" cmake --install "$AQ_BUILD" --prefix /opt/aq >"$T/install2.out" 2>&1 || { cat "$T/install2.out"; it_fail "DESTDIR install failed"; }
pc=$(find "$T/inst" -name aquifer.pc)
[ -n "$pc" ] || it_fail "no aquifer.pc installed"
pc2=$(find "$T/dd" -name aquifer.pc)
[ -n "$pc2" ] || it_fail "no aquifer.pc under DESTDIR"
for d in "$(dirname "$pc")" "$(dirname "$pc2")"; do
  flags=$(PKG_CONFIG_PATH=$d pkg-config --cflags --libs aquifer) || it_fail "pkg-config cannot read $d/aquifer.pc"
  inc=$(PKG_CONFIG_PATH=$d pkg-config --variable=includedir aquifer)
  [ -f "$inc/aquifer.h" ] || it_fail "pkg-config's includedir $inc has no aquifer.h"
  libdir=$(PKG_CONFIG_PATH=$d pkg-config --variable=libdir aquifer)
  [ -e "$libdir/libaquifer.so" ] && [ -e "$libdir/libaquifer.so.0" ] || it_fail "no libaquifer.so in $libdir"
done
# Only aquifer_* leaves the library.
libdir=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --variable=libdir aquifer)
if nm -D --defined-only "$libdir/libaquifer.so" | awk '{print $3}' | grep -v '^aquifer_' | it_has .; then
  nm -D --defined-only "$libdir/libaquifer.so" | awk '{print $3}' | grep -v '^aquifer_' | head
  it_fail "libaquifer.so exports names outside aquifer_*"
fi

cat >"$T/prog.c" <<'C'
#include <aquifer.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    aquifer *a;
    if (aquifer_open(NULL, &a) != 0) {
        fprintf(stderr, "open: %s\n", aquifer_errmsg(a));
        return 1;
    }
    aquifer_written w;
    if (aquifer_put(a, "pc/hello", "hello, world", 12, &w) != 0) {
        fprintf(stderr, "put: %s\n", aquifer_errmsg(a));
        return 1;
    }
    void *v;
    size_t n;
    if (aquifer_get(a, "pc/hello", &v, &n) != 0 || n != 12 || memcmp(v, "hello, world", 12) != 0) {
        fprintf(stderr, "get: %s\n", aquifer_errmsg(a));
        return 1;
    }
    aquifer_free(v);
    aquifer_stat st;
    if (aquifer_stat_key(a, "pc/hello", &st) != 0 || st.size != 12) {
        fprintf(stderr, "stat: %s\n", aquifer_errmsg(a));
        return 1;
    }
    int err = aquifer_get(a, "pc/missing", &v, &n);
    printf("version %s copies %u/%u missing %s: %s\n", aquifer_version(), w.copies, w.wanted,
           aquifer_errname(err), aquifer_errmsg(a));
    aquifer_close(a);
    return err == AQUIFER_ENOTFOUND ? 0 : 1;
}
C
flags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs aquifer)
san=""
# A sanitizer build's library needs the program built with the same runtime.
if ldd "$libdir/libaquifer.so" | it_has libasan; then san="-fsanitize=address,undefined"; fi
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror $san "$T/prog.c" $flags -o "$T/prog" || it_fail "the program does not compile with pkg-config's flags"

it_conf 3 2
it_up
# Every node sees the others up before the first write counts its copies.
for node in n1 n2 n3; do it_wait_state "$node" up; done
it_log "run the program against the cluster"
LD_LIBRARY_PATH=$libdir "$T/prog" >"$T/prog.out" 2>&1 || { cat "$T/prog.out"; it_fail "the program failed"; }
cat "$T/prog.out"
grep -q "version 0.1.0 copies 2/2 missing AQ_ENOTFOUND: get pc/missing: not found" "$T/prog.out" || it_fail "unexpected output"
it_log "ok"
