#!/usr/bin/env bash
# Runs the SQL cases in sql-tests/cases through the real sqlite3 CLI.
#
#   sql-tests/run.sh                 run every case
#   sql-tests/run.sh NAME...         run only these cases (NAME or NAME.sql or a path)
#   sql-tests/run.sh --bless [NAME...]
#                                    rewrite NAME.expected with the current output
#                                    (review the result with `git diff` before committing)
#
# Each case runs in a fresh temporary directory that holds a symlink `dist` -> <repo>/dist
# and a symlink `fixtures` -> sql-tests/fixtures, so a case starts with
# `.load ./dist/wavesync` and may create or ATTACH files by relative path (nothing outside
# the repository). The case is fed on stdin to `sqlite3 -batch` (no .bail: a case may show several
# errors); stdout and stderr are merged and compared with cases/NAME.expected.
# The actual output of the last run of each case is kept in sql-tests/out/NAME.out.
#
# Environment: SQLITE3 (default: sqlite3), CASE_TIMEOUT seconds per case (default: 60).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cases_dir="$here/cases"
out_dir="$here/out"
sqlite3_bin="${SQLITE3:-sqlite3}"
case_timeout="${CASE_TIMEOUT:-60}"

bless=0
names=()
for arg in "$@"; do
    case "$arg" in
        --bless) bless=1 ;;
        -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "run.sh: unknown option $arg" >&2; exit 2 ;;
        *) n="$(basename "$arg")"; names+=("${n%.sql}") ;;
    esac
done

if ! command -v "$sqlite3_bin" >/dev/null 2>&1; then
    echo "run.sh: '$sqlite3_bin' not found (run 'make deps')" >&2
    exit 2
fi
if [ ! -e "$root/dist/wavesync.so" ]; then
    echo "run.sh: $root/dist/wavesync.so is missing (run 'make build')" >&2
    exit 2
fi

if [ ${#names[@]} -eq 0 ]; then
    shopt -s nullglob
    for f in "$cases_dir"/*.sql; do
        n="$(basename "$f")"
        names+=("${n%.sql}")
    done
    shopt -u nullglob
fi
if [ ${#names[@]} -eq 0 ]; then
    echo "run.sh: no cases in $cases_dir" >&2
    exit 2
fi

mkdir -p "$out_dir"
tmp_root="$(mktemp -d "${TMPDIR:-/tmp}/wavesync-sql.XXXXXX")"
trap 'rm -rf "$tmp_root"' EXIT

passed=0
failed=0
blessed=0
for name in "${names[@]}"; do
    sql="$cases_dir/$name.sql"
    expected="$cases_dir/$name.expected"
    actual="$out_dir/$name.out"
    if [ ! -f "$sql" ]; then
        echo "FAIL $name"
        echo "    no such case: $sql"
        failed=$((failed + 1))
        continue
    fi

    work="$tmp_root/$name"
    mkdir -p "$work"
    ln -s "$root/dist" "$work/dist"
    # Data files the cases read (the cr-sqlite fixtures), kept in the repository.
    ln -s "$here/fixtures" "$work/fixtures"
    # -init /dev/null: ignore the user's ~/.sqliterc so output does not depend on it.
    ( cd "$work" && timeout "$case_timeout" "$sqlite3_bin" -batch -init /dev/null < "$sql" ) > "$actual" 2>&1
    rc=$?
    if [ $rc -eq 124 ]; then
        echo "[run.sh: timed out after ${case_timeout}s]" >> "$actual"
    elif [ $rc -gt 128 ]; then
        echo "[run.sh: sqlite3 killed by signal $((rc - 128))]" >> "$actual"
    fi
    rm -rf "$work"

    if [ $bless -eq 1 ]; then
        if [ -f "$expected" ] && cmp -s "$expected" "$actual"; then
            echo "ok $name"
        else
            cp "$actual" "$expected"
            echo "blessed $name"
            blessed=$((blessed + 1))
        fi
        passed=$((passed + 1))
        continue
    fi

    if [ ! -f "$expected" ]; then
        echo "FAIL $name"
        echo "    missing $expected (review the output below, then run: sql-tests/run.sh --bless $name)"
        sed 's/^/    | /' "$actual"
        failed=$((failed + 1))
    elif cmp -s "$expected" "$actual"; then
        echo "ok $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name"
        diff -u --label "cases/$name.expected" --label "actual" "$expected" "$actual"
        failed=$((failed + 1))
    fi
done

if [ $bless -eq 1 ]; then
    echo "sql-tests: $blessed expected file(s) rewritten; review with: git diff -- sql-tests/cases"
fi
echo "sql-tests: $passed passed, $failed failed"
[ $failed -eq 0 ]
