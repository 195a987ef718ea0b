#!/usr/bin/env bash
# Obtain the Kamailio source tree that matches the installed Debian package,
# so the sipguard module is built with exactly the flags of /usr/sbin/kamailio.
#
#   scripts/kamailio-src.sh            fetch + unpack into build/kamailio-src/
#
# Result: build/kamailio-src/current -> kamailio-<upstream version>/
# Nothing is downloaded when the matching tree is already unpacked.
# Enabling deb-src and "apt-get update" need root (sudo is used if present).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=${SIPGUARD_KSRC_DIR:-$ROOT/build/kamailio-src}
SRC_LIST=/etc/apt/sources.list.d/debian-src.sources

log() { printf 'kamailio-src: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v dpkg-query >/dev/null || die "dpkg-query not found (Debian only)"
version=$(dpkg-query -W -f='${Version}' kamailio 2>/dev/null) ||
	die "kamailio is not installed (run scripts/deps.sh)"
[ -n "$version" ] || die "kamailio is not installed (run scripts/deps.sh)"
upstream=${version#*:}      # drop an epoch
upstream=${upstream%-*}     # drop the Debian revision
srcdir=$DEST/kamailio-$upstream
stamp=$srcdir/.sipguard-debian-version

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$version" ] &&
	[ -f "$srcdir/src/Makefile.defs" ]; then
	ln -sfn "kamailio-$upstream" "$DEST/current"
	log "kamailio $version source already in $srcdir"
	exit 0
fi

# deb-src for the Debian archive (idempotent).
want_list='Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg'
updated=0
if [ ! -f "$SRC_LIST" ] || [ "$(cat "$SRC_LIST")" != "$want_list" ]; then
	log "enabling deb-src in $SRC_LIST"
	printf '%s\n' "$want_list" | as_root tee "$SRC_LIST" >/dev/null
	as_root apt-get update -q
	updated=1
fi

mkdir -p "$DEST"
dsc=$DEST/kamailio_${version#*:}.dsc
orig=$DEST/kamailio_${upstream}.orig.tar.gz
if [ ! -f "$dsc" ] || [ ! -f "$orig" ]; then
	log "downloading source of kamailio=$version"
	if ! (cd "$DEST" && apt-get source --download-only "kamailio=$version"); then
		[ "$updated" -eq 1 ] && die "apt-get source kamailio=$version failed"
		# The package lists may predate the deb-src entry: refresh once.
		as_root apt-get update -q
		(cd "$DEST" && apt-get source --download-only "kamailio=$version") ||
			die "apt-get source kamailio=$version failed"
	fi
fi
[ -f "$dsc" ] || die "expected $dsc after download"
[ -f "$orig" ] || die "expected $orig after download"
dsc_version=$(sed -n 's/^Version: *//p' "$dsc" | head -n1)
[ "$dsc_version" = "$version" ] ||
	die "source version $dsc_version does not match installed $version"

log "unpacking $orig"
rm -rf "$srcdir" "$DEST/unpack.tmp"
mkdir -p "$DEST/unpack.tmp"
tar -xzf "$orig" -C "$DEST/unpack.tmp"
top=$(find "$DEST/unpack.tmp" -mindepth 1 -maxdepth 1 -type d | head -n1)
[ -n "$top" ] && [ -f "$top/src/Makefile.defs" ] ||
	die "unexpected layout in $orig"
mv "$top" "$srcdir"
rmdir "$DEST/unpack.tmp"
printf '%s\n' "$version" >"$stamp"
ln -sfn "kamailio-$upstream" "$DEST/current"
log "kamailio $version source ready in $srcdir"
