#!/usr/bin/env bash
# Build sipguard and run Debian's kamailio with kamailio-cfg/sipguard.cfg in
# the foreground, logging to stderr. The module is loaded from build/ (no
# install needed); runtime files (ctl socket, pid, state) go to build/run/.
#
#   scripts/run.sh [extra kamailio options]
#
# Environment:
#   SIPGUARD_SKIP_DEPS=1  do not run scripts/deps.sh
#   SIPGUARD_SKIP_BUILD=1 do not run make
#   SIPGUARD_RUNDIR       runtime directory        (build/run)
#   SIPGUARD_PORT         SIP port, UDP and TCP    (5060)
#   SIPGUARD_CFG          configuration file       (kamailio-cfg/sipguard.cfg)
# While it runs:
#   kamcmd -s unix:build/run/kamailio_ctl sipguard.list
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNDIR=${SIPGUARD_RUNDIR:-$ROOT/build/run}
PORT=${SIPGUARD_PORT:-5060}
CFG=${SIPGUARD_CFG:-$ROOT/kamailio-cfg/sipguard.cfg}
KAMAILIO=${KAMAILIO:-/usr/sbin/kamailio}

if [ "${SIPGUARD_SKIP_DEPS:-0}" != 1 ]; then
	bash "$ROOT/scripts/deps.sh"
fi
if [ "${SIPGUARD_SKIP_BUILD:-0}" != 1 ]; then
	make -C "$ROOT"
fi

case $RUNDIR in /*) ;; *) RUNDIR=$PWD/$RUNDIR ;; esac
mkdir -p "$RUNDIR"
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null ||
	gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
MPATH="$ROOT/build:/usr/lib/$multiarch/kamailio/modules"

args=(
	-f "$CFG"
	-L "$MPATH"
	--substdef="!SG_RUNDIR!$RUNDIR!g"
	-A "SG_PORT=$PORT"
	-P "$RUNDIR/kamailio.pid"
	-w "$RUNDIR"
	-m 64 -M 8
)

"$KAMAILIO" -c "${args[@]}" "$@" >/dev/null 2>"$RUNDIR/check.log" || {
	cat "$RUNDIR/check.log" >&2
	echo "run: kamailio -c failed" >&2
	exit 1
}
echo "run: kamailio on 127.0.0.1:$PORT and [::1]:$PORT (udp, tcp);" \
	"kamcmd -s unix:$RUNDIR/kamailio_ctl sipguard.list" >&2
exec "$KAMAILIO" -DD -E "${args[@]}" "$@"
