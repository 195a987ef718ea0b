#!/usr/bin/env bash
# Kamailio-level benchmark (run by `make bench`): nocheck.cfg, pike.cfg and
# sipguard.cfg side by side on loopback; prints a table, asserts nothing.
#   - OPTIONS/s at saturation (20 000 rotating sources; sipp from one source)
#   - shm / RSS / PSS after requests from 100 000 distinct sources
#   - CPU spent on a banned source flooding 40 000 req/s for 5 s
# Bounded: each step stops by itself (about 3 minutes in all).
# BENCH_SECONDS=N changes the length of each throughput run (default 5).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
[ -f build/sipguard.so ] || make
exec /usr/bin/python3 tests/e2e/bench_kamailio.py "$@"
