#!/usr/bin/env bash
# Cluster benchmark (run by `make bench`): three nodes of
# kamailio-cfg/sipguard-cluster.cfg on 127.0.1.1-3; prints the replication
# lag (p50/p99) and the DMQ messages and CPU per node under a 20 000-source
# flood; asserts nothing. Bounded (about a minute).
# BENCH_CLUSTER_BANS=N changes the number of lag samples (default 100 bans,
# two samples each).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
[ -f build/sipguard.so ] || make
exec /usr/bin/python3 tests/e2e/bench_cluster.py "$@"
