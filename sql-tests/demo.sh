#!/usr/bin/env bash
# A two-file sync in the sqlite3 CLI, step by step (`make demo` runs it after building),
# then the same with the daemon: two wavesyncd processes on loopback sync two files live.
#
# Two databases, a.db and b.db, get the same `tasks` table and turn it into a CRR. Each side
# writes its own rows and both edit the same task, then the changes travel through a third
# file (xfer.db) in both directions and the two tables come out identical. The extension is
# the only sync engine involved: the "transport" is plain SQL over an attached file.
#
# Environment: SQLITE3 (default: sqlite3), KEEP=1 keeps the temporary directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
sqlite3_bin="${SQLITE3:-sqlite3}"

if [ ! -e "$root/dist/wavesync.so" ]; then
    echo "demo: $root/dist/wavesync.so is missing (run 'make build')" >&2
    exit 2
fi
command -v "$sqlite3_bin" >/dev/null || { echo "demo: $sqlite3_bin not found (run 'make deps')" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/wavesync-demo.XXXXXX")"
daemon_pids=()
stop_daemons() {
    local p
    for p in "${daemon_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${daemon_pids[@]}"; do wait "$p" 2>/dev/null || true; done
    daemon_pids=()
}
if [ "${KEEP:-0}" = 1 ]; then
    trap 'stop_daemons; echo; echo "(kept $work)"' EXIT
else
    trap 'stop_daemons; rm -rf "$work"' EXIT
fi
ln -s "$root/dist" "$work/dist"
cd "$work"

bold=""; reset=""
if [ -t 1 ]; then bold=$'\e[1m'; reset=$'\e[0m'; fi
step() { echo; echo "${bold}### $*${reset}"; }

# sql DB: runs the SQL on stdin in the sqlite3 CLI against DB with the extension loaded.
# Errors stop the script (.bail on), so a broken step is never silently skipped.
sql() {
    local db="$1"
    # .timeout: a daemon may be writing the same file (part 2); wait instead of failing
    { printf '.bail on\n.timeout 5000\n.load ./dist/wavesync\n'; cat; } | "$sqlite3_bin" -batch -init /dev/null "$db"
}

# show: prints tasks of a.db and b.db next to each other.
show() {
    # box mode draws with multi-byte characters: measure in characters, not bytes
    local LC_ALL=C.UTF-8
    local q='.headers on\n.mode box\nSELECT * FROM tasks ORDER BY id;\n'
    local -a L R
    mapfile -t L < <(echo "a.db"; printf "$q" | sql a.db)
    mapfile -t R < <(echo "b.db"; printf "$q" | sql b.db)
    local i l r width=0 n=${#L[@]}
    [ ${#R[@]} -gt "$n" ] && n=${#R[@]}
    for l in "${L[@]}"; do [ ${#l} -gt "$width" ] && width=${#l}; done
    for ((i = 0; i < n; i++)); do
        l="${L[i]-}"; r="${R[i]-}"
        if [ -z "$r" ]; then
            printf '  %s\n' "$l"
        else
            printf '  %s%*s    %s\n' "$l" $((width - ${#l})) "" "$r"
        fi
    done
}

# sync FROM TO: copies every change of FROM.db into TO.db through xfer.db.
sync_one() {
    local from="$1" to="$2" n
    echo "  sqlite3 $from.db: ATTACH 'xfer.db' AS x; CREATE TABLE x.${from}_changes AS SELECT ... FROM wavesync_changes;"
    sql "$from.db" <<SQL
ATTACH 'xfer.db' AS x;
DROP TABLE IF EXISTS x.${from}_changes;
CREATE TABLE x.${from}_changes AS
  SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq FROM wavesync_changes;
SQL
    n="$(echo "SELECT count(*) FROM ${from}_changes;" | "$sqlite3_bin" -batch -init /dev/null xfer.db)"
    echo "  ($n change rows in xfer.db)"
    echo "  sqlite3 $to.db:   ATTACH 'xfer.db' AS x; INSERT INTO wavesync_changes SELECT * FROM x.${from}_changes;"
    sql "$to.db" <<SQL
ATTACH 'xfer.db' AS x;
INSERT INTO wavesync_changes SELECT * FROM x.${from}_changes;
SQL
}

echo "wavesync demo: two SQLite files that sync through a third (in $work)"

step "1. Create the same table in a.db and b.db and make it a CRR with wavesync_as_crr('tasks')"
for db in a b; do
    sql "$db.db" >/dev/null <<'SQL'
CREATE TABLE tasks(id INTEGER PRIMARY KEY NOT NULL, title TEXT, done INTEGER DEFAULT 0);
SELECT wavesync_as_crr('tasks');
SQL
    printf '  %s.db site id: %s\n' "$db" "$(echo "SELECT hex(wavesync_site_id());" | sql "$db.db")"
done

step "2. a.db adds a task and sends it to b.db, so both start from the same row"
sql a.db <<'SQL'
INSERT INTO tasks(id, title) VALUES (1, 'Buy milk');
SQL
sync_one a b
show

step "3. Offline, each side writes: new rows on both, and both rename task 1 (a conflict)"
echo "  a.db: INSERT (2, 'Walk the dog'); UPDATE tasks SET title = 'Buy oat milk' WHERE id = 1"
sql a.db <<'SQL'
INSERT INTO tasks(id, title) VALUES (2, 'Walk the dog');
UPDATE tasks SET title = 'Buy oat milk' WHERE id = 1;
SQL
echo "  b.db: INSERT (3, 'Call mom'); UPDATE tasks SET title = 'Buy almond milk', done = 1 WHERE id = 1"
sql b.db <<'SQL'
INSERT INTO tasks(id, title) VALUES (3, 'Call mom');
UPDATE tasks SET title = 'Buy almond milk', done = 1 WHERE id = 1;
SQL
show

step "4. Sync a.db -> b.db through xfer.db"
sync_one a b

step "5. Sync b.db -> a.db through xfer.db"
sync_one b a

step "6. Both tables after the sync"
show
task1="$(echo "SELECT printf('title = %Q, done = %d', title, done) FROM tasks WHERE id = 1;" | sql a.db)"
echo
echo "  Task 1 is now: $task1"
echo "  Both renames of task 1 had the same clock, so the merge rule picks the same winner on"
echo "  both sides (equal col_version: the larger value wins). b.db also set done = 1, a"
echo "  column a.db did not touch, so that edit survives next to the winning title."

step "7. Are they identical? (SELECT * FROM tasks ORDER BY id on each side)"
a_rows="$(echo "SELECT * FROM tasks ORDER BY id;" | sql a.db)"
b_rows="$(echo "SELECT * FROM tasks ORDER BY id;" | sql b.db)"
if [ "$a_rows" = "$b_rows" ]; then
    echo "  identical: yes — a.db and b.db converged"
else
    echo "  identical: NO — a.db and b.db differ:"
    diff <(echo "$a_rows") <(echo "$b_rows") | sed 's/^/  /' || true
    exit 1
fi

# ---------------------------------------------------------------------------------------
# Part 2: the daemon. No transfer file this time: wavesyncd runs beside each database,
# notices commits, gossips them over libp2p and merges what its peer sends.

if [ ! -x "$root/dist/wavesyncd" ]; then
    echo "demo: $root/dist/wavesyncd is missing (run 'make build')" >&2
    exit 2
fi

step "8. Two daemons: a group key, two new files (one.db, two.db), wavesyncd beside each"
./dist/wavesyncd keygen --out group.key 2>/dev/null
echo "  wavesyncd keygen --out group.key"
for db in one two; do
    sql "$db.db" >/dev/null <<'SQL'
CREATE TABLE tasks(id INTEGER PRIMARY KEY NOT NULL, title TEXT, done INTEGER DEFAULT 0);
SELECT wavesync_as_crr('tasks');
SQL
done
echo "  wavesyncd run --db one.db --key-file group.key --listen /ip4/127.0.0.1/tcp/0 --no-mdns"
RUST_LOG="${RUST_LOG:-warn}" ./dist/wavesyncd run --db one.db --key-file group.key \
    --listen /ip4/127.0.0.1/tcp/0 --no-mdns >one.out 2>one.log &
daemon_pids+=($!)
addr=""
for _ in $(seq 1 100); do
    addr="$(sed -n 's/^listening on //p' one.out | head -n 1)"
    [ -n "$addr" ] && break
    sleep 0.1
done
if [ -z "$addr" ]; then
    echo "  the first daemon did not start:" >&2
    cat one.log >&2
    exit 1
fi
echo "  ... it listens on $addr"
echo "  wavesyncd run --db two.db --key-file group.key --listen /ip4/127.0.0.1/tcp/0 --no-mdns --peer $addr"
RUST_LOG="${RUST_LOG:-warn}" ./dist/wavesyncd run --db two.db --key-file group.key \
    --listen /ip4/127.0.0.1/tcp/0 --no-mdns --peer "$addr" >two.out 2>two.log &
daemon_pids+=($!)

# Wait until the two are connected (the status file lists the peer).
for _ in $(seq 1 100); do
    grep -q '"connected": true' two.db.wavesyncd-status.json 2>/dev/null && break
    sleep 0.1
done

step "9. Write in one.db with the sqlite3 CLI (the daemon is not involved in the write)"
echo "  sqlite3 one.db: INSERT INTO tasks(id, title) VALUES (1, 'Sent by the daemon')"
start_ns=$(date +%s%N)
sql one.db <<'SQL'
INSERT INTO tasks(id, title) VALUES (1, 'Sent by the daemon');
SQL

step "10. Poll two.db with the sqlite3 CLI until the row arrives"
row=""
for _ in $(seq 1 300); do
    row="$(echo "SELECT id, title, done FROM tasks WHERE id = 1;" | sql two.db)"
    [ -n "$row" ] && break
    sleep 0.1
done
if [ -z "$row" ]; then
    echo "  the row did not arrive in 30 s; daemon logs:" >&2
    cat one.log two.log >&2
    exit 1
fi
elapsed_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
echo "  two.db has: $row   (after ~${elapsed_ms} ms, including the sqlite3 start-ups)"
echo "  and back: sqlite3 two.db: UPDATE tasks SET done = 1 WHERE id = 1"
sql two.db <<'SQL'
UPDATE tasks SET done = 1 WHERE id = 1;
SQL
back=""
for _ in $(seq 1 300); do
    back="$(echo "SELECT id, title, done FROM tasks WHERE id = 1 AND done = 1;" | sql one.db)"
    [ -n "$back" ] && break
    sleep 0.1
done
[ -n "$back" ] || { echo "  the update did not come back" >&2; cat one.log two.log >&2; exit 1; }
echo "  one.db has: $back"

sleep 1.2 # the status file is rewritten every second
step "11. wavesyncd status --db two.db"
./dist/wavesyncd status --db two.db | sed 's/^/  /'

step "12. Stop both daemons"
stop_daemons
echo "  stopped (SIGTERM); the temporary directory is removed on exit"
