#!/usr/bin/env bash
# Build OpenSIPS (the core and only the modules sipguard's tests use) from
# the release source, into a prefix under build/opensips/.
#
#   scripts/opensips-build.sh          unpack, build, install into the prefix
#
# The source is found at $SIPGUARD_OPENSIPS_SRC (an unpacked tree or a
# .tar.gz), else at <checkout's parent>/shared/opensips/opensips-*.tar.gz.
# OpenSIPS refuses a module whose version, compile flags or revision differ
# from its core: the sipguard module is built in this same tree (make
# opensips-module). Idempotent: a finished build is reused as it is.
#
# Result: build/opensips/src -> opensips-<version>/ (the configured tree),
#         build/opensips/sbin/opensips, build/opensips/lib/modules/*.so
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=${SIPGUARD_OPENSIPS_DIR:-$ROOT/build/opensips}
SRC=${SIPGUARD_OPENSIPS_SRC:-}
JOBS=${SIPGUARD_JOBS:-$(nproc 2>/dev/null || echo 2)}

# What the example configs and the end-to-end tests load (UDP and TCP are
# in the core); nothing else is compiled (the default set takes minutes more).
MODULES=(
	sl tm rr maxfwd sipmsgops textops cfgutils signaling dialog
	auth usrloc registrar mi_fifo pike
	proto_tls tls_mgm tls_openssl
)

log() { printf 'opensips-build: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [ -z "$SRC" ]; then
	for f in "$ROOT"/../shared/opensips/opensips-*.tar.gz; do
		[ -f "$f" ] && SRC=$f
	done
fi
[ -n "$SRC" ] && [ -e "$SRC" ] ||
	die "no OpenSIPS source: set SIPGUARD_OPENSIPS_SRC to a tree or tarball"
for t in bison flex gcc make; do
	command -v "$t" >/dev/null || die "$t not found (run scripts/deps.sh)"
done

mkdir -p "$DEST"
if [ -d "$SRC" ]; then
	tree=$(cd "$SRC" && pwd)
else
	top=$(tar tzf "$SRC" | sed -n 1p)
	top=${top%%/*}
	[ -n "$top" ] || die "$SRC: not an OpenSIPS source archive"
	tree=$DEST/$top
	if [ ! -f "$tree/.sipguard-unpacked" ]; then
		log "unpacking $SRC"
		rm -rf "$tree"
		tar xzf "$SRC" -C "$DEST"
		touch "$tree/.sipguard-unpacked"
	fi
fi
[ -f "$tree/Makefile.conf.template" ] || die "$tree: not an OpenSIPS tree"
ln -sfn "$tree" "$DEST/src"

stamp=$DEST/.built
want="${MODULES[*]}"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
	[ -x "$DEST/sbin/opensips" ]; then
	touch "$stamp" # newer than this script: make asks no more
	log "OpenSIPS already built in $DEST"
	exit 0
fi

start=$(date +%s)
log "building OpenSIPS core and ${#MODULES[@]} modules in $tree (-j$JOBS)"
make -C "$tree" -j"$JOBS" app >"$DEST/build.log" 2>&1 ||
	{ tail -40 "$DEST/build.log"; die "core build failed (see $DEST/build.log)"; }
make -C "$tree" -j"$JOBS" FASTER=1 modules module="$want" >>"$DEST/build.log" 2>&1 ||
	{ tail -40 "$DEST/build.log"; die "module build failed (see $DEST/build.log)"; }

mkdir -p "$DEST/sbin" "$DEST/lib/modules"
install -m 755 "$tree/opensips" "$DEST/sbin/opensips.tmp"
mv -f "$DEST/sbin/opensips.tmp" "$DEST/sbin/opensips"
for m in "${MODULES[@]}"; do
	install -m 644 "$tree/modules/$m/$m.so" "$DEST/lib/modules/$m.so"
done
printf '%s\n' "$want" >"$stamp"
log "built in $(($(date +%s) - start)) s: $("$DEST/sbin/opensips" -V | head -1)"
