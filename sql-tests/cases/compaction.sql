-- Tombstone compaction: wavesync_compact(vector) drops the tombstones every peer has seen,
-- a replica behind the compaction horizon is told to resync, and the resync brings it level
-- without resurrecting deleted rows.
.headers on
.mode list
.load ./dist/wavesync

-- a.db: 3000 rows, 2400 deleted again (a churned table).
.open a.db
.load ./dist/wavesync
CREATE TABLE t(id INTEGER PRIMARY KEY NOT NULL, body TEXT);
SELECT wavesync_as_crr('t');
INSERT INTO t SELECT value, printf('row %d %s', value, hex(randomblob(20))) FROM generate_series(1, 3000);
ATTACH 'xfer.db' AS x;
-- c.db will only ever see this early state.
CREATE TABLE x.early AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
DETACH x;
DELETE FROM t WHERE id > 600;
ATTACH 'xfer.db' AS x;
CREATE TABLE x.all_a AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
DETACH x;

-- b.db is a peer that has everything a.db has.
.open b.db
.load ./dist/wavesync
CREATE TABLE t(id INTEGER PRIMARY KEY NOT NULL, body TEXT);
SELECT wavesync_as_crr('t');
ATTACH 'xfer.db' AS x;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT * FROM x.all_a;
CREATE TABLE x.b_vector AS SELECT wavesync_vector() AS v;
DETACH x;

.open a.db
.load ./dist/wavesync
ATTACH 'xfer.db' AS x;
SELECT 'before' AS step, count(*) AS clock_rows, sum(cl % 2 = 0) AS tombstones FROM t__wavesync_clock;
VACUUM;
SELECT 'before' AS step, page_count * page_size / 1024 AS kib FROM pragma_page_count, pragma_page_size;
-- why: every peer (here: b.db) has seen the deletes: their 2400 tombstones can go.
SELECT wavesync_compact((SELECT v FROM x.b_vector)) AS tombstones_removed;
SELECT 'after' AS step, count(*) AS clock_rows, sum(cl % 2 = 0) AS tombstones FROM t__wavesync_clock;
VACUUM;
SELECT 'after' AS step, page_count * page_size / 1024 AS kib FROM pragma_page_count, pragma_page_size;
SELECT count(*) AS live_rows FROM t;
-- why: the compaction version is not reused and not lost.
SELECT wavesync_db_version() AS db_version;
-- why: an old copy of a deleted row (already applied here) does not come back.
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  SELECT * FROM x.early WHERE pk = wavesync_pack_columns(2999);
SELECT count(*) AS row_2999 FROM t WHERE id = 2999;
-- why: b.db is level with the horizon: nothing special in what it lacks.
SELECT count(*) AS resync_markers_for_b FROM wavesync_missing((SELECT v FROM x.b_vector)) WHERE site_id IS NULL;
CREATE TABLE x.a_vector AS SELECT wavesync_vector() AS v;
CREATE TABLE x.all_a2 AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
DETACH x;

-- c.db saw only the early state and then went away; it made a row of its own meanwhile.
.open c.db
.load ./dist/wavesync
CREATE TABLE t(id INTEGER PRIMARY KEY NOT NULL, body TEXT);
SELECT wavesync_as_crr('t');
ATTACH 'xfer.db' AS x;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT * FROM x.early;
INSERT INTO t VALUES (5000, 'written by c while away');
CREATE TABLE x.c_vector AS SELECT wavesync_vector() AS v;
DETACH x;

.open a.db
.load ./dist/wavesync
ATTACH 'xfer.db' AS x;
-- why: c.db lacks versions below a.db's compaction horizon: the first row says "resync".
SELECT site_id IS NULL AS resync_needed, start_version, end_version FROM wavesync_missing((SELECT v FROM x.c_vector)) LIMIT 1;
DETACH x;

.open c.db
.load ./dist/wavesync
ATTACH 'xfer.db' AS x;
-- why: merging everything a.db has would not delete c's stale rows (their tombstones are
-- gone): the resync deletes the rows a.db no longer has although it saw every write that
-- made them, and keeps c's own new row (a.db has not seen it).
SELECT wavesync_resync_begin();
BEGIN;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT * FROM x.all_a2;
COMMIT;
SELECT wavesync_resync_finish((SELECT v FROM x.a_vector)) AS rows_deleted;
SELECT count(*) AS rows, max(id) AS max_id FROM t;
SELECT count(*) AS rows_not_in_a FROM t WHERE id < 5000 AND id > 600;
SELECT wavesync_resync_finish((SELECT v FROM x.a_vector));
SELECT wavesync_compact(x'00');
DETACH x;
