#!/usr/bin/env bash
# Self-signed TLS certificate and key for sipguard's TLS example and tests:
# CN=localhost, subjectAltName DNS:localhost, IP:127.0.0.1, IP:::1 (EC P-256,
# valid 825 days). Idempotent: does nothing when DIR already holds a
# certificate valid for at least one more day and its matching key.
#
#   scripts/gen-cert.sh DIR
#
# Writes (the key mode 0600, written atomically):
#   DIR/sipguard.key   private key (PEM)
#   DIR/sipguard.crt   certificate (PEM)
#   DIR/tls.cfg        kamailio-cfg/tls/tls.cfg with certificate and
#                      private_key pointing at the two files above (the tls
#                      module's config file takes no defines, so the
#                      certificate directory is written into a copy of it)
#                      - rewritten every run, so changes to the template
#                      reach it.
# Environment:
#   SIPGUARD_TLS_TEMPLATE  tls.cfg template (kamailio-cfg/tls/tls.cfg)
#   OPENSSL                openssl binary   (openssl)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEMPLATE=${SIPGUARD_TLS_TEMPLATE:-$ROOT/kamailio-cfg/tls/tls.cfg}
OPENSSL=${OPENSSL:-openssl}

log() { printf 'gen-cert: %s\n' "$*" >&2; }

if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi
DIR=$1
case $DIR in /*) ;; *) DIR=$PWD/$DIR ;; esac
# written between double quotes into tls.cfg, whose parser has no escapes
case $DIR in *[[:space:]\"\|\\\&]*)
	log "error: directory name must not contain blanks, '\"', '|', '&' or '\\': $DIR"
	exit 2 ;;
esac
command -v "$OPENSSL" >/dev/null 2>&1 || {
	log "error: $OPENSSL not found (apt-get install openssl)"
	exit 1
}

mkdir -p "$DIR"
KEY=$DIR/sipguard.key
CRT=$DIR/sipguard.crt

have_pair() {
	[ -s "$KEY" ] && [ -s "$CRT" ] || return 1
	# still valid tomorrow, and the key belongs to the certificate
	"$OPENSSL" x509 -in "$CRT" -noout -checkend 86400 >/dev/null 2>&1 || return 1
	local a b
	a=$("$OPENSSL" x509 -in "$CRT" -noout -pubkey 2>/dev/null) || return 1
	b=$("$OPENSSL" pkey -in "$KEY" -pubout 2>/dev/null) || return 1
	[ -n "$a" ] && [ "$a" = "$b" ]
}

if have_pair; then
	log "certificate present: $CRT"
else
	tmp=$(mktemp -d "$DIR/.gen-cert.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	(
		umask 077
		"$OPENSSL" req -x509 -new -nodes \
			-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
			-keyout "$tmp/key.pem" -out "$tmp/crt.pem" -days 825 \
			-subj "/CN=localhost" \
			-addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
			-addext "basicConstraints=critical,CA:FALSE" \
			-addext "keyUsage=critical,digitalSignature" \
			-addext "extendedKeyUsage=serverAuth,clientAuth" \
			2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
	)
	chmod 600 "$tmp/key.pem"
	chmod 644 "$tmp/crt.pem"
	# key first: a reader that sees the new certificate finds its key
	mv -f "$tmp/key.pem" "$KEY"
	mv -f "$tmp/crt.pem" "$CRT"
	log "wrote $CRT and $KEY"
fi

# DIR/tls.cfg: the template with this directory's certificate and key
if [ -f "$TEMPLATE" ]; then
	tmpcfg=$(mktemp "$DIR/.tls.cfg.XXXXXX")
	sed -E \
		-e "s|^([[:space:]]*certificate[[:space:]]*=).*|\1 \"$CRT\"|" \
		-e "s|^([[:space:]]*private_key[[:space:]]*=).*|\1 \"$KEY\"|" \
		"$TEMPLATE" >"$tmpcfg"
	chmod 644 "$tmpcfg"
	mv -f "$tmpcfg" "$DIR/tls.cfg"
else
	log "warning: no template $TEMPLATE: $DIR/tls.cfg not written"
fi
