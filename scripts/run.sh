#!/usr/bin/env bash
# Build sipguard and run Debian's kamailio with kamailio-cfg/sipguard.cfg in
# the foreground, logging to stderr. The module is loaded from build/ (no
# install needed); runtime files (ctl socket, pid, state) go to build/run/.
#
#   scripts/run.sh [tls|auth|fraud|prometheus|lua|python|cluster] [extra kamailio options]
#   scripts/run.sh opensips|opensips-fraud [extra opensips options]
#
# With "tls" as the first argument (or SIPGUARD_CONFIG=tls) it runs
# kamailio-cfg/sipguard-tls.cfg instead: SIP over TLS on SIPGUARD_TLS_PORT
# too, with a self-signed certificate that scripts/gen-cert.sh writes to
# build/run/tls/ if missing. With "auth" it runs kamailio-cfg/sipguard-auth.cfg:
# digest authentication over a small subscriber table, registrar, and the
# defences against extension scans and password guessing. With "fraud" it
# runs kamailio-cfg/sipguard-fraud.cfg (tm + dialog, destination rules from
# kamailio-cfg/fraud-rules.txt, calls relayed to SG_CALLEE, by default
# sip:127.0.0.1:5080). With "prometheus" it runs
# kamailio-cfg/sipguard-prometheus.cfg: sipguard.cfg and its statistics at
# http://127.0.0.1:9060/metrics (xhttp_prom). With "lua" or "python" it runs
# kamailio-cfg/kemi/sipguard-lua.cfg or sipguard-python.cfg: the KEMI script
# kamailio-cfg/kemi/sipguard.lua or .py doing what sipguard.cfg,
# sipguard-auth.cfg and sipguard-fraud.cfg do (calls relayed to SG_CALLEE).
# With "opensips" it builds OpenSIPS from its source and the sipguard
# OpenSIPS module (make opensips) and runs opensips-cfg/sipguard.cfg, the
# same example for OpenSIPS, with its port, runtime directory (RUNDIR/opensips)
# and module path set in a copy written there; "opensips-fraud" runs
# opensips-cfg/sipguard-fraud.cfg, the toll-fraud example, the same way.
# With "cluster" it starts three nodes of
# kamailio-cfg/sipguard-cluster.cfg on 127.0.1.1, 127.0.1.2 and 127.0.1.3
# (port SIPGUARD_PORT, runtime directories RUNDIR/node1..3), which share
# their bans over dmq; Ctrl-C stops all three.
#
# Environment:
#   SIPGUARD_SKIP_DEPS=1  do not run scripts/deps.sh
#   SIPGUARD_SKIP_BUILD=1 do not run make
#   SIPGUARD_RUNDIR       runtime directory        (build/run)
#   SIPGUARD_PORT         SIP port, UDP and TCP    (5060)
#   SIPGUARD_CFG          configuration file       (kamailio-cfg/sipguard.cfg,
#                         kamailio-cfg/sipguard-tls.cfg with tls)
#   SIPGUARD_CONFIG       "tls", "auth", "fraud", "prometheus", "lua" or "python":
#                         as the first argument
#   SIPGUARD_TLS_PORT     SIP port, TLS (with tls) (5061)
#   SIPGUARD_TLS_DIR      certificate directory    (RUNDIR/tls)
# While it runs:
#   kamcmd -s unix:build/run/kamailio_ctl sipguard.list
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNDIR=${SIPGUARD_RUNDIR:-$ROOT/build/run}
PORT=${SIPGUARD_PORT:-5060}
MODE=${SIPGUARD_CONFIG:-}
case ${1:-} in
tls | auth | fraud | prometheus | lua | python | opensips | opensips-fraud | cluster)
	MODE=$1
	shift
	;;
esac
case $MODE in
'') CFG=${SIPGUARD_CFG:-$ROOT/kamailio-cfg/sipguard.cfg} ;;
tls | auth | fraud | prometheus | cluster) CFG=${SIPGUARD_CFG:-$ROOT/kamailio-cfg/sipguard-$MODE.cfg} ;;
lua | python) CFG=${SIPGUARD_CFG:-$ROOT/kamailio-cfg/kemi/sipguard-$MODE.cfg} ;;
opensips) CFG=${SIPGUARD_CFG:-$ROOT/opensips-cfg/sipguard.cfg} ;;
opensips-fraud) CFG=${SIPGUARD_CFG:-$ROOT/opensips-cfg/sipguard-fraud.cfg} ;;
*) echo "run: unknown SIPGUARD_CONFIG=$MODE (expected tls, auth, fraud, prometheus, lua, python, opensips, opensips-fraud, cluster or nothing)" >&2; exit 2 ;;
esac
KAMAILIO=${KAMAILIO:-/usr/sbin/kamailio}

if [ "${SIPGUARD_SKIP_DEPS:-0}" != 1 ]; then
	bash "$ROOT/scripts/deps.sh"
fi

if [ "$MODE" = opensips ] || [ "$MODE" = opensips-fraud ]; then
	[ "${SIPGUARD_SKIP_BUILD:-0}" = 1 ] || make -C "$ROOT" opensips
	case $RUNDIR in /*) ;; *) RUNDIR=$PWD/$RUNDIR ;; esac
	ORUN=$RUNDIR/opensips
	mkdir -p "$ORUN"
	# the examples name port 5060, /tmp/sipguard-opensips, an mpath and
	# the rules file relative to the repository
	sed -e "s!/tmp/sipguard-opensips!$ORUN!g" -e "s!:5060\b!:$PORT!g" \
		-e "s!\"kamailio-cfg/fraud-rules.txt\"!\"$ROOT/kamailio-cfg/fraud-rules.txt\"!" \
		-e "s!^mpath=.*!mpath=\"$ROOT/build/opensips/lib/modules/\"!" \
		"$CFG" >"$ORUN/sipguard.cfg"
	OPENSIPS=${OPENSIPS:-$ROOT/build/opensips/sbin/opensips}
	args=(-f "$ORUN/sipguard.cfg" -P "$ORUN/opensips.pid" -w "$ORUN" -m 64 -M 8)
	"$OPENSIPS" -c "${args[@]}" "$@" >/dev/null 2>"$ORUN/check.log" || {
		cat "$ORUN/check.log" >&2
		echo "run: opensips -c failed" >&2
		exit 1
	}
	echo "run: opensips on 127.0.0.1:$PORT and [::1]:$PORT (udp, tcp);" \
		"MI FIFO $ORUN/fifo (opensips-cli -o fifo_file=$ORUN/fifo -x mi sipguard_list)" >&2
	exec "$OPENSIPS" -F "${args[@]}" "$@"
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
listening="127.0.0.1:$PORT and [::1]:$PORT (udp, tcp)"
if [ "$MODE" = tls ]; then
	TLS_PORT=${SIPGUARD_TLS_PORT:-5061}
	TLS_DIR=${SIPGUARD_TLS_DIR:-$RUNDIR/tls}
	case $TLS_DIR in /*) ;; *) TLS_DIR=$PWD/$TLS_DIR ;; esac
	bash "$ROOT/scripts/gen-cert.sh" "$TLS_DIR"
	args+=(--substdef="!SG_TLS_DIR!$TLS_DIR!g" -A "SG_TLS_PORT=$TLS_PORT")
	listening+=", 127.0.0.1:$TLS_PORT and [::1]:$TLS_PORT (tls)"
fi

if [ "$MODE" = prometheus ]; then
	listening+=", metrics at http://127.0.0.1:9060/metrics"
fi

if [ "$MODE" = fraud ] || [ "$MODE" = lua ] || [ "$MODE" = python ]; then
	args+=(-A "SG_FRAUD_RULES=\"$ROOT/kamailio-cfg/fraud-rules.txt\"")
fi
case $MODE in
lua) args+=(-A "SG_KEMI_SCRIPT=\"$ROOT/kamailio-cfg/kemi/sipguard.lua\"") ;;
python) args+=(-A "SG_KEMI_SCRIPT=\"$ROOT/kamailio-cfg/kemi/sipguard.py\"") ;;
esac

if [ "$MODE" = cluster ]; then
	# three nodes, each its own address and runtime directory; node 1 is
	# every node's first contact (dmq notification address)
	pids=()
	trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
	for n in 1 2 3; do
		dir=$RUNDIR/node$n
		mkdir -p "$dir"
		node=(-f "$CFG" -L "$MPATH" -m 64 -M 8 -P "$dir/kamailio.pid" -w "$dir"
			--substdef="!SG_RUNDIR!$dir!g" --substdef="!SG_NODE!127.0.1.$n:$PORT!g"
			--substdef="!SG_SEED!127.0.1.1:$PORT!g")
		"$KAMAILIO" -c "${node[@]}" "$@" >/dev/null 2>"$dir/check.log" || {
			cat "$dir/check.log" >&2
			echo "run: kamailio -c failed (node $n)" >&2
			exit 1
		}
		"$KAMAILIO" -DD -E "${node[@]}" "$@" &
		pids+=($!)
		echo "run: node $n on 127.0.1.$n:$PORT (udp);" \
			"kamcmd -s unix:$dir/kamailio_ctl sipguard.cluster" >&2
	done
	wait -n
	exit 1
fi

"$KAMAILIO" -c "${args[@]}" "$@" >/dev/null 2>"$RUNDIR/check.log" || {
	cat "$RUNDIR/check.log" >&2
	echo "run: kamailio -c failed" >&2
	exit 1
}
echo "run: kamailio on $listening;" \
	"kamcmd -s unix:$RUNDIR/kamailio_ctl sipguard.list" >&2
exec "$KAMAILIO" -DD -E "${args[@]}" "$@"
