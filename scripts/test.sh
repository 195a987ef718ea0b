#!/usr/bin/env bash
# sipguard's test command (README): install dependencies, build, run the
# Rust tests and the end-to-end suite against a real Kamailio.
#
#   bash scripts/test.sh            everything
#   bash scripts/test.sh -k flood   extra arguments go to pytest
#
# Steps: scripts/deps.sh, make, cargo test --release, a bounded cargo fuzz
# run of the SDP checker, then /usr/bin/python3 -m pytest -v tests/e2e (Debian's python3-pytest, so the
# interpreter and pytest are those of the distribution, not of a pyenv).
# A failed build stops here; otherwise both test runners always run, their
# summary lines are printed at the end, and the script exits non-zero if
# either failed (pytest's "no tests ran" counts as a failure).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PY=/usr/bin/python3
LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/sipguard-test.XXXXXX")
step() { printf '\n==== %s\n' "$*"; }

step "dependencies (scripts/deps.sh)"
bash scripts/deps.sh

step "build (make)"
make

step "Rust tests (cargo test --release)"
cargo_rc=0
cargo test --release 2>&1 | tee "$LOGDIR/cargo.log" || cargo_rc=$?

step "fuzz the SDP checker (cargo fuzz, bounded: 2 000 000 runs or 60 s)"
# Stable toolchain: no sanitizer (-s none); the core is safe Rust, so a
# panic or a hang is what the fuzzer looks for. Seeded with tests/sdp.
export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
fuzz_rc=0
corpus=$(mktemp -d "${TMPDIR:-/tmp}/sipguard-corpus.XXXXXX")
(cd fuzz && cargo fuzz run -s none sdp_check "$corpus" ../tests/sdp -- \
	-runs=2000000 -max_total_time=60 -max_len=70000 -print_final_stats=1) \
	>"$LOGDIR/fuzz.log" 2>&1 || fuzz_rc=$?
rm -rf "$corpus"
tail -n 12 "$LOGDIR/fuzz.log"

step "end-to-end tests (pytest tests/e2e)"
pytest_rc=0
"$PY" -m pytest -v -rfE -p no:cacheprovider tests/e2e "$@" 2>&1 | tee "$LOGDIR/pytest.log" \
	|| pytest_rc=$?

# ---- summary --------------------------------------------------------------
step "summary"
c_pass=0 c_fail=0 c_ign=0
while read -r p f i; do
	c_pass=$((c_pass + p)) c_fail=$((c_fail + f)) c_ign=$((c_ign + i))
done < <(sed -n -e 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored.*/\1 \2 \3/p' \
	-e 's/^[a-z_]*multiprocess: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2 0/p' "$LOGDIR/cargo.log")
echo "cargo test: ${c_pass} passed, ${c_fail} failed, ${c_ign} ignored (exit ${cargo_rc})"
[ "$cargo_rc" -eq 0 ] || [ "$c_fail" -gt 0 ] || c_fail=1   # crashed or did not build

pyline=$(grep -E '^=+ .*(passed|failed|error|no tests ran).* =+$' "$LOGDIR/pytest.log" | tail -n 1 || true)
echo "pytest: ${pyline:-no summary line} (exit ${pytest_rc})"
p_pass=$(sed -n 's/.* \([0-9]\+\) passed.*/\1/p' <<<"$pyline"); p_pass=${p_pass:-0}
p_fail=$(sed -n 's/.* \([0-9]\+\) failed.*/\1/p' <<<"$pyline"); p_fail=${p_fail:-0}
p_err=$(sed -n 's/.* \([0-9]\+\) errors\?.*/\1/p' <<<"$pyline"); p_err=${p_err:-0}
p_skip=$(sed -n 's/.* \([0-9]\+\) skipped.*/\1/p' <<<"$pyline"); p_skip=${p_skip:-0}
p_fail=$((p_fail + p_err))
[ "$pytest_rc" -eq 0 ] || [ "$p_fail" -gt 0 ] || p_fail=1   # e.g. no tests ran

f_pass=0 f_fail=0
if [ "$fuzz_rc" -eq 0 ] && grep -q '^Done [0-9]* runs' "$LOGDIR/fuzz.log"; then f_pass=1; else f_fail=1; fi
echo "fuzz: $(grep -m1 '^Done [0-9]* runs.*' "$LOGDIR/fuzz.log" || echo 'no final line') (exit ${fuzz_rc})"

rm -rf "$LOGDIR"
echo "total: $((c_pass + p_pass + f_pass)) passed, $((c_fail + p_fail + f_fail)) failed, $((c_ign + p_skip)) skipped"
if [ "$cargo_rc" -ne 0 ] || [ "$pytest_rc" -ne 0 ] || [ "$fuzz_rc" -ne 0 ]; then
	exit 1
fi
