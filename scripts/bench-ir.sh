#!/usr/bin/env bash
# Instruction-count benchmark (make bench-ir, and the last step of make
# bench): instructions Kamailio's UDP worker executes per request, counted
# by callgrind, for no check, pike, the article's recipe and sipguard
# (defaults and each part alone), the reply path (relayed 200 OK,
# rewritten 404) and the early-drop path (banned datagrams), side by side
# in one table. Configs: kamailio-cfg/bench/. Method: the docstring of
# tests/e2e/bench_ir.py. Prints the table, writes build/bench-ir.txt,
# asserts nothing. About 4 minutes.
#   BENCH_IR_N=<n>            requests per phase (default 5000; 4n in all per row)
#   BENCH_IR_ROWS=<a,b,...>   only the rows whose key contains a, b, ...
#   BENCH_IR_KEEP=1           keep the callgrind files (to read with callgrind_annotate)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
[ -f build/sipguard.so ] || make
command -v valgrind >/dev/null || { echo "bench-ir: valgrind missing (apt-get install valgrind)" >&2; exit 1; }
exec /usr/bin/python3 tests/e2e/bench_ir.py "$@"
