#!/usr/bin/env bash
# Checks the reverse direction of cr-sqlite compatibility against a real cr-sqlite build
# (not available in CI, so not part of `make test`):
#   sql-tests/crsqlite-interop.sh /path/to/crsqlite.so
# For each fixture of sql-tests/fixtures/crsqlite-0.16.3 and each direction, wavesync merges
# one site's cr-sqlite changeset, exports its own crsql_changes, and cr-sqlite merges that
# export on top of the other site's changeset: the tables must equal what cr-sqlite reached.
set -euo pipefail
crsqlite="${1:?usage: $0 /path/to/crsqlite.so}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fx="$root/sql-tests/fixtures/crsqlite-0.16.3"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT; cd "$work"
fail=0
check() { # fixture schema value-fixup tables...
    local fixture="$1" schema="$2" fix="$3"; shift 3
    for dir in ab ba; do
        if [ $dir = ab ]; then mine=changes_b; theirs=changes_a; res=a_after_b; else mine=changes_a; theirs=changes_b; res=b_after_a; fi
        rm -f w.db c.db x.db
        local cols="\"table\", pk, cid, $fix, col_version, db_version, site_id, cl, seq"
        sqlite3 w.db ".load $root/dist/wavesync" "$schema" "attach '$fx/$fixture' as f" \
            "begin; insert into wavesync_changes select $cols from f.$mine; commit" \
            "attach 'x.db' as x" "create table x.w as select \"table\", pk, cid, val, col_version, db_version, site_id, cl, seq from crsql_changes" >/dev/null
        for t in "$@"; do
            n=$(sqlite3 c.db ".load ${crsqlite%.so}" "${schema//wavesync_as_crr/crsql_as_crr}" "attach '$fx/$fixture' as f" \
                "begin; insert into crsql_changes select $cols from f.$theirs; commit" "attach 'x.db' as x" \
                "begin; insert into crsql_changes select * from x.w; commit" \
                "select count(*) from (select * from $t except select * from f.${res}_$t union all select * from f.${res}_$t except select * from $t)" \
                "select crsql_finalize()" | grep -E '^[0-9]+$' | head -1)
            rm -f c.db
            if [ "$n" = 0 ]; then echo "ok $fixture $dir $t"; else echo "FAIL $fixture $dir $t ($n differing rows)"; fail=1; fi
        done
    done
}
# The fixtures' change tables declare `val NUM`, which stored whole REALs as integers.
check basic.db "create table tasks(id text primary key not null, title text, done integer, prio real); create table tags(task text not null, tag text not null, primary key(task, tag)); select wavesync_as_crr('tasks'), wavesync_as_crr('tags');" \
    "case when cid = 'prio' and typeof(val) = 'integer' then cast(val as real) else val end" tasks tags
check types.db "create table m(k1 integer not null, k2 text not null, v, w, x real, primary key(k1, k2)); select wavesync_as_crr('m');" \
    "case when cid = 'x' and typeof(val) = 'integer' then cast(val as real) else val end" m
exit $fail
