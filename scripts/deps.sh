#!/usr/bin/env bash
# Install what sipguard needs to build, run and test on Debian 12.
# Idempotent: installs only what is missing. Needs root (or sudo) only
# when something is missing.
set -euo pipefail

PKGS=(
	build-essential dpkg-dev ca-certificates
	kamailio kamailio-tls-modules openssl sip-tester sipvicious fail2ban
	python3-pytest procps iproute2
	lintian kamailio-lua-modules kamailio-python3-modules
	# OpenSIPS, built from its source (scripts/opensips-build.sh)
	bison flex libssl-dev
)

log() { printf 'deps: %s\n' "$*" >&2; }

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q ' installed$'
}

missing=()
for p in "${PKGS[@]}"; do
	installed "$p" || missing+=("$p")
done
# A Rust toolchain only when no cargo is on PATH (e.g. rustup's). Debian 12's
# plain "cargo" is 1.63, too old for the core; "cargo-web" (rustc-web) is a
# current toolchain from the same archive and installs /usr/bin/cargo.
if ! command -v cargo >/dev/null 2>&1; then
	installed cargo-web || missing+=(cargo-web)
fi

if [ "${#missing[@]}" -eq 0 ]; then
	log "all dependencies present"
	exit 0
fi

log "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -q
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	--no-install-recommends "${missing[@]}"
log "done"
