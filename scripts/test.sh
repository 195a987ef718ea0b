#!/usr/bin/env bash
# sipguard's test command (README): install dependencies, build, run the
# Rust tests and the end-to-end suite against a real Kamailio.
#
#   bash scripts/test.sh            everything
#   bash scripts/test.sh -k flood   extra arguments go to pytest
#
# Steps: scripts/deps.sh, make, make opensips (OpenSIPS built from its
# source, reused when built), cargo test --release, a bounded cargo fuzz
# run of every fuzz target (fuzz/fuzz_targets: the SDP checker, the state
# files, the fraud rules, the parameters, dialled numbers), then
# /usr/bin/python3 -m pytest -v tests/e2e (Debian's python3-pytest, so the
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

step "OpenSIPS from source and its sipguard module (make opensips)"
make opensips

step "Rust tests (cargo test --release)"
cargo_rc=0
cargo test --release 2>&1 | tee "$LOGDIR/cargo.log" || cargo_rc=$?

step "fuzz every target (cargo fuzz, each bounded: 500 000 runs, the SDP checker 2 000 000, or 30 s)"
# Stable toolchain: no sanitizer (-s none); the core is safe Rust, so a
# panic (a target's properties assert) or a hang is what the fuzzer looks
# for. Every target `cargo fuzz list` names runs, one after the other,
# seeded with fuzz/seeds/<target> (the SDP checker with tests/sdp), each in
# a fresh corpus. A target that fails leaves its crash input in
# fuzz/artifacts/<target>/.
export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
fuzz_rc=0
fuzz_targets=()
(cd fuzz && cargo fuzz build -s none) >"$LOGDIR/fuzz-build.log" 2>&1 || fuzz_rc=$?
if [ "$fuzz_rc" -eq 0 ]; then
	mapfile -t fuzz_targets < <(cd fuzz && cargo fuzz list)
	[ "${#fuzz_targets[@]}" -gt 0 ] || fuzz_rc=1
else
	tail -n 20 "$LOGDIR/fuzz-build.log"
fi
: >"$LOGDIR/fuzz-targets"
for t in "${fuzz_targets[@]}"; do
	seeds=()
	[ -d "fuzz/seeds/$t" ] && seeds+=("seeds/$t")
	[ "$t" = sdp_check ] && seeds+=(../tests/sdp)
	runs=500000 max_len=8192
	case $t in
	sdp_check) runs=2000000 max_len=70000 ;; # fast; whole SDP bodies
	config_values) max_len=1024 ;;           # a few name=value lines
	esac
	corpus=$(mktemp -d "${TMPDIR:-/tmp}/sipguard-corpus.XXXXXX")
	t_rc=0
	(cd fuzz && cargo fuzz run -s none "$t" "$corpus" "${seeds[@]}" -- \
		-runs="$runs" -max_total_time=30 -max_len="$max_len" -print_final_stats=1) \
		>"$LOGDIR/fuzz-$t.log" 2>&1 || t_rc=$?
	rm -rf "$corpus"
	echo "$t $t_rc" >>"$LOGDIR/fuzz-targets"
	[ "$t_rc" -eq 0 ] || fuzz_rc=$t_rc
	printf -- '-- %s (exit %s): %s\n' "$t" "$t_rc" \
		"$(grep -m1 '^Done [0-9]* runs.*' "$LOGDIR/fuzz-$t.log" || echo 'no final line')"
	[ "$t_rc" -eq 0 ] || tail -n 30 "$LOGDIR/fuzz-$t.log"
done

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

# One pass per fuzz target that ran to its bound without a failure.
f_pass=0 f_fail=0
while read -r t t_rc; do
	if [ "$t_rc" -eq 0 ] && grep -q '^Done [0-9]* runs' "$LOGDIR/fuzz-$t.log"; then
		f_pass=$((f_pass + 1))
	else
		f_fail=$((f_fail + 1))
	fi
	echo "fuzz $t: $(grep -m1 '^Done [0-9]* runs.*' "$LOGDIR/fuzz-$t.log" || echo 'no final line') (exit ${t_rc})"
done <"$LOGDIR/fuzz-targets"
[ "$fuzz_rc" -eq 0 ] || [ "$f_fail" -gt 0 ] || f_fail=1   # did not build, or no target
echo "fuzz: ${f_pass} targets passed, ${f_fail} failed (exit ${fuzz_rc})"

rm -rf "$LOGDIR"
echo "total: $((c_pass + p_pass + f_pass)) passed, $((c_fail + p_fail + f_fail)) failed, $((c_ign + p_skip)) skipped"
if [ "$cargo_rc" -ne 0 ] || [ "$pytest_rc" -ne 0 ] || [ "$fuzz_rc" -ne 0 ]; then
	exit 1
fi
