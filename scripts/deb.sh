#!/usr/bin/env bash
# Build the Debian binary package kamailio-sipguard-modules from
# build/sipguard.so (run `make` first; `make deb` does both):
#
#   <Kamailio module directory>/sipguard.so        stripped
#   /etc/fail2ban/filter.d/sipguard.conf           conffile
#   /etc/fail2ban/jail.d/sipguard.conf             conffile, jail disabled
#   /usr/share/doc/kamailio-sipguard-modules/      README, copyright,
#                                                  changelog, examples/
#
# The module is built against the source of exactly the installed Kamailio
# and its ABI is locked to that version, so the package depends on
# "kamailio (= <installed version>)". The package goes to build/deb/; its
# path is the last line printed. lintian runs on it unless
# SIPGUARD_SKIP_LINTIAN=1; an error (E:) fails the build.
#
# Environment:
#   SIPGUARD_MAINTAINER   Maintainer field (sipguard maintainers <...>)
#   SIPGUARD_DEB_REVISION Debian revision of the version (1)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PKG=kamailio-sipguard-modules
MODULE=$ROOT/build/sipguard.so
OUT=$ROOT/build/deb
STAGE=$OUT/stage
MAINTAINER=${SIPGUARD_MAINTAINER:-sipguard maintainers <sipguard@example.org>}

log() { printf 'deb: %s\n' "$*" >&2; }

[ -f "$MODULE" ] || { log "$MODULE missing: run make first"; exit 1; }
UPSTREAM=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n1)
VERSION=$UPSTREAM-${SIPGUARD_DEB_REVISION:-1}
ARCH=$(dpkg --print-architecture)
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
KAMAILIO_VERSION=$(dpkg-query -W -f='${Version}' kamailio)
[ -n "$KAMAILIO_VERSION" ] || { log "kamailio is not installed"; exit 1; }
# the date of the last commit: the same tree gives the same package
EPOCH=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH=$EPOCH

rm -rf "$STAGE"
MODDIR=$STAGE/usr/lib/$MULTIARCH/kamailio/modules
DOC=$STAGE/usr/share/doc/$PKG
install -d "$MODDIR" "$DOC/examples" "$STAGE/etc/fail2ban/filter.d" \
	"$STAGE/etc/fail2ban/jail.d" "$STAGE/DEBIAN" \
	"$STAGE/usr/share/lintian/overrides"

# not an upload to Debian: no ITP bug for the changelog to close
cat >"$STAGE/usr/share/lintian/overrides/$PKG" <<EOF
# built from the sipguard tree, not uploaded to Debian: no ITP bug to close
$PKG: initial-upload-closes-no-bugs
EOF
chmod 644 "$STAGE/usr/share/lintian/overrides/$PKG"

# the module, stripped as dh_strip strips a shared object
install -m 644 "$MODULE" "$MODDIR/sipguard.so"
strip --remove-section=.comment --remove-section=.note --strip-unneeded \
	"$MODDIR/sipguard.so"

# fail2ban: the filter as is; the jail off until the operator turns it on
install -m 644 "$ROOT/kamailio-cfg/fail2ban/filter.d/sipguard.conf" \
	"$STAGE/etc/fail2ban/filter.d/sipguard.conf"
sed 's/^enabled[[:space:]]*=.*/enabled   = false/' \
	"$ROOT/kamailio-cfg/fail2ban/jail.d/sipguard.conf" \
	>"$STAGE/etc/fail2ban/jail.d/sipguard.conf"
chmod 644 "$STAGE/etc/fail2ban/jail.d/sipguard.conf"
grep -q '^enabled   = false$' "$STAGE/etc/fail2ban/jail.d/sipguard.conf" ||
	{ log "the jail has no enabled line to turn off"; exit 1; }

# documentation: the README and the example configs (not the benchmark ones)
gzip -9n <"$ROOT/README.md" >"$DOC/README.md.gz"
tar -C "$ROOT/kamailio-cfg" --exclude=./bench --exclude=./pike.cfg \
	--exclude=./nocheck.cfg -cf - . | tar -C "$DOC/examples" -xf -
find "$DOC/examples" -type d -exec chmod 755 {} +
find "$DOC/examples" -type f -exec chmod 644 {} +

cat >"$DOC/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: sipguard

Files: *
Copyright: $(date -u -d "@$EPOCH" +%Y) sipguard authors
License: GPL-2+

License: GPL-2+
 This program is free software; you can redistribute it and/or modify it
 under the terms of the GNU General Public License as published by the Free
 Software Foundation; either version 2 of the License, or (at your option)
 any later version.
 .
 On Debian systems, the complete text of the GNU General Public License
 version 2 can be found in "/usr/share/common-licenses/GPL-2".
EOF

gzip -9n >"$DOC/changelog.Debian.gz" <<EOF
$PKG ($VERSION) unstable; urgency=medium

  * Built against kamailio $KAMAILIO_VERSION.

 -- $MAINTAINER  $(date -R -u -d "@$EPOCH")
EOF

# shared-library dependencies of the module, as dpkg-shlibdeps finds them
mkdir -p "$OUT/shlibs/debian"
printf 'Source: sipguard\n\nPackage: %s\nArchitecture: any\n' "$PKG" \
	>"$OUT/shlibs/debian/control"
SHLIBS=$(cd "$OUT/shlibs" && dpkg-shlibdeps -O "$MODDIR/sipguard.so" |
	sed -n 's/^shlibs:Depends=//p')

find "$STAGE" -path "$STAGE/DEBIAN" -prune -o -type d -exec chmod 755 {} +
SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
cat >"$STAGE/DEBIAN/control" <<EOF
Package: $PKG
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $SIZE
Depends: kamailio (= $KAMAILIO_VERSION), $SHLIBS
Suggests: fail2ban
Section: net
Priority: optional
Description: SIP flood, scan, guessing and toll-fraud defences for Kamailio
 sipguard is a Kamailio module that stops REGISTER and OPTIONS floods,
 extension scans and password guessing, enforces SRTP/TLS policy and
 stops toll fraud, with one fixed-size table shared by every Kamailio
 process.
 .
 This package holds the module, built for exactly the Kamailio version it
 depends on, a fail2ban filter and jail (disabled) and example configs.
EOF
printf '/etc/fail2ban/filter.d/sipguard.conf\n/etc/fail2ban/jail.d/sipguard.conf\n' \
	>"$STAGE/DEBIAN/conffiles"
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' |
	sort -z | xargs -0 md5sum) >"$STAGE/DEBIAN/md5sums"
chmod 644 "$STAGE/DEBIAN/control" "$STAGE/DEBIAN/conffiles" "$STAGE/DEBIAN/md5sums"

DEB=$OUT/${PKG}_${VERSION}_$ARCH.deb
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$DEB" >/dev/null
log "built $DEB (depends on kamailio $KAMAILIO_VERSION)"

if [ "${SIPGUARD_SKIP_LINTIAN:-0}" != 1 ]; then
	command -v lintian >/dev/null || { log "lintian missing: run scripts/deps.sh"; exit 1; }
	report=$(lintian --tag-display-limit 0 "$DEB" 2>&1 | grep -v '^running with root' || true)
	[ -z "$report" ] || printf '%s\n' "$report" >&2
	if printf '%s\n' "$report" | grep -q '^E: '; then
		log "lintian reports errors"
		exit 1
	fi
	log "lintian: no errors"
fi
echo "$DEB"
