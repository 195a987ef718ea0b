#!/usr/bin/env bash
# OpenSIPS-level benchmark (run by `make bench`, after the Kamailio one):
# opensips-cfg/bench/nocheck.cfg, pike.cfg and sipguard.cfg side by side on
# loopback, the rows of the Kamailio benchmark; prints a table, asserts
# nothing. Builds OpenSIPS and the module first if needed (make opensips).
# Bounded: each step stops by itself (about 2 minutes in all).
# BENCH_SECONDS=N changes the length of each throughput run (default 5).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
make opensips >/dev/null
exec /usr/bin/python3 tests/e2e/bench_opensips.py "$@"
