#!/usr/bin/env bash
# Runs every test suite in order and stops at the first failing suite (`make test` calls
# this after `make deps build`):
#   1. cargo test --release -p wavesync-ext          (unit tests of the extension)
#   2. sql-tests/run.sh                              (SQL cases through the sqlite3 CLI)
#   3. cargo test --release -p wavesync-sql-tests    (Rust tests loading dist/wavesync.so)
#   4. pytest sql-tests/python                       (Python tests loading dist/wavesync.so)
#   5. cargo test --release -p wavesyncd             (daemon: codec unit tests, and real
#                                                     wavesyncd processes on 127.0.0.1)
#   6. bindings/tasks.sh test python                 (the wheel, installed in a fresh venv)
#   7. bindings/tasks.sh test node                   (the npm package, node --test)
#   8. bindings/tasks.sh test rust                   (cargo test --release -p wavesync)
# and ends with one line `N passed, N failed, N skipped` counting the tests of all suites
# that ran (skipped: tests that could not run here, listed above that line).
# Suites 3 and 5 include the reliability tests of docs/RELIABILITY.md (crash, partition,
# hostile peers, disk faults, fuzzing) in their bounded CI size. `SUITES=reliability` runs
# only those, long (WAVESYNC_LONG=1: 70 daemon kills, 25 partitions, 20000-message flood,
# 20000-50000 fuzz cases per target; several minutes) — `make test-reliability`.
# The binding suites install what they need (a venv, npm packages: better-sqlite3 is
# compiled from source the first time, about a minute).
#
# Environment: WAVESYNC_EXT (default <repo>/dist/wavesync), VENV (default .venv),
# CARGO_RUN (default: flock /tmp/wavesync-cargo.lock cargo), SUITES (`all`, the default;
# `check` for 1-2, what `make check` runs; `core` for 1-5; `bindings` for 6-8, which is what `make test-bindings` runs;
# `reliability` for the long reliability run).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

export WAVESYNC_EXT="${WAVESYNC_EXT:-$root/dist/wavesync}"
venv="${VENV:-.venv}"
cargo_run="${CARGO_RUN:-flock /tmp/wavesync-cargo.lock cargo}"
suites="${SUITES:-all}"
case "$suites" in
    all | check | core | bindings | reliability) ;;
    *) echo "test-all.sh: SUITES must be all, check, core, bindings or reliability (not '$suites')" >&2; exit 2 ;;
esac

log="$(mktemp "${TMPDIR:-/tmp}/wavesync-test.XXXXXX")"
# Tests that cannot run here (no privilege for a mount, say) write a line to this file
# (wavesync-testkit `skip`): they are counted as skipped, not as passed.
skipped_log="$(mktemp "${TMPDIR:-/tmp}/wavesync-skipped.XXXXXX")"
export WAVESYNC_SKIPPED="$skipped_log"
trap 'rm -f "$log" "$skipped_log"' EXIT

total_passed=0
total_failed=0
total_skipped=0

summary() {
    echo
    if [ -s "$skipped_log" ]; then
        echo "skipped (could not run here):"
        sed 's/^/  /' "$skipped_log"
    fi
    echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
}

# run_suite NAME PARSER CMD...: runs CMD with its output shown and logged, adds the counts
# that PARSER reads from the log, and stops everything if CMD failed.
run_suite() {
    local name="$1" parser="$2"
    shift 2
    echo
    echo "==> $name: $*"
    "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    local counts p f s skips_before skips
    skips_before=$(wc -l < "$skipped_log")
    counts="$("$parser" < "$log")"
    read -r p f s <<< "$counts"
    # A test that skips itself through the testkit returns early, so its runner counted
    # it as passed.
    skips=$(( $(wc -l < "$skipped_log") - skips_before ))
    p=$(( p - skips ))
    total_skipped=$((total_skipped + skips))
    # Tests the runner itself reports as skipped (pytest's skip, node's t.skip).
    if [ "${s:-0}" -gt 0 ]; then
        total_skipped=$((total_skipped + s))
        grep -E '^SKIPPED ' "$log" | sed "s|^|$name: |" >> "$skipped_log" || true
        grep -E '^ok [0-9]+ .*# SKIP' "$log" | sed "s|^|$name: |" >> "$skipped_log" || true
        if ! grep -q "^$name: " "$skipped_log"; then
            echo "$name: $s tests skipped by the runner (see its output)" >> "$skipped_log"
        fi
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1 # failed without a countable test failure (build error, crash, missing file)
    fi
    total_passed=$((total_passed + p))
    total_failed=$((total_failed + f))
    if [ "$rc" -ne 0 ]; then
        echo
        echo "==> $name FAILED (exit $rc); stopping"
        summary
        exit 1
    fi
}

# `test result: ok. 3 passed; 0 failed; ...` — one line per test binary and doc tests.
parse_cargo() {
    sed -nE 's/^test result: [A-Za-z]+\. ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/p' |
        awk '{p += $1; f += $2} END {print p + 0, f + 0, 0}'
}

# `ok NAME` / `FAIL NAME` lines of run.sh.
parse_sql() {
    awk '/^ok / {p++} /^FAIL / {f++} END {print p + 0, f + 0, 0}'
}

# pytest's last line, e.g. `1 failed, 3 passed, 1 error in 0.12s`.
parse_pytest() {
    grep -E '[0-9]+ (passed|failed|errors?)' | tail -n 1 |
        awk '{
            for (i = 2; i <= NF; i++) {
                w = $i; gsub(/[^a-z]/, "", w)
                if (w == "passed") p += $(i - 1)
                else if (w == "skipped") s += $(i - 1)
                else if (w == "failed" || w == "error" || w == "errors") f += $(i - 1)
            }
        } END {print p + 0, f + 0, s + 0}'
}

# node --test's closing counts: `# pass 5` / `# fail 0` / `# cancelled 0` with the TAP
# reporter (which bindings/tasks.sh asks for), `ℹ pass 5` with the spec reporter; summed
# over the runs of the suite.
parse_node() {
    sed -nE 's/^(# |ℹ )(pass|fail|cancelled|skipped) ([0-9]+)$/\2 \3/p' |
        awk '$1 == "pass" {p += $2} $1 == "skipped" {s += $2} $1 == "fail" || $1 == "cancelled" {f += $2}
             END {print p + 0, f + 0, s + 0}'
}

if [ "$suites" = reliability ]; then
    export WAVESYNC_LONG=1
    for t in crash partition hostile disk; do
        # shellcheck disable=SC2086
        run_suite "reliability, long: $t" parse_cargo $cargo_run test --release -p wavesyncd --test "$t" -- --nocapture
    done
    # shellcheck disable=SC2086
    run_suite "reliability, long: wire decoder fuzz" parse_cargo $cargo_run test --release -p wavesyncd --bin wavesyncd -- fuzz
    # shellcheck disable=SC2086
    run_suite "reliability, long: extension decoder fuzz" parse_cargo \
        $cargo_run test --release -p wavesync-sql-tests --test fuzz_inputs -- --nocapture
    # shellcheck disable=SC2086
    run_suite "reliability, long: db_version across connections" parse_cargo \
        $cargo_run test --release -p wavesync-sql-tests --test versions
    summary
    exit 0
fi

if [ "$suites" != bindings ]; then
    # shellcheck disable=SC2086 # cargo_run is a command line on purpose
    run_suite "unit tests (wavesync-ext)" parse_cargo $cargo_run test --release -p wavesync-ext
    run_suite "SQL cases (sqlite3 CLI)" parse_sql "$here/run.sh"
    if [ "$suites" = check ]; then
        summary
        exit 0
    fi
    # shellcheck disable=SC2086
    run_suite "Rust tests (wavesync-sql-tests)" parse_cargo $cargo_run test --release -p wavesync-sql-tests
    run_suite "Python tests (pytest)" parse_pytest \
        env PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" -m pytest -q -p no:cacheprovider "$here/python"
    # shellcheck disable=SC2086
    run_suite "daemon tests (wavesyncd)" parse_cargo $cargo_run test --release -p wavesyncd
fi

if [ "$suites" != core ]; then
    export CARGO_RUN="$cargo_run"
    run_suite "Python binding (wheel in a fresh venv)" parse_pytest "$root/bindings/tasks.sh" test python
    run_suite "Node binding (npm package, node --test)" parse_node "$root/bindings/tasks.sh" test node
    run_suite "Rust binding (crate wavesync)" parse_cargo "$root/bindings/tasks.sh" test rust
fi

summary
