.load ./dist/wavesync
.headers on
.mode list
-- crsqlite_differences.sql: where wavesync differs from cr-sqlite 0.16 on purpose
-- (docs/MIGRATING.md, "Different on purpose"); each block shows the behaviour.
-- (Equal-value merges, the first difference, are config.sql.)
.open a.db
.load ./dist/wavesync
CREATE TABLE t(id INTEGER PRIMARY KEY NOT NULL, name TEXT, qty INTEGER);
SELECT wavesync_as_crr('t');
INSERT INTO t VALUES (1, 'one', 10), (2, 'two', 20), (3, 'three', 30);
CREATE TABLE out AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
.open b.db
.load ./dist/wavesync
CREATE TABLE t(id INTEGER PRIMARY KEY NOT NULL, name TEXT, qty INTEGER);
SELECT wavesync_as_crr('t');
ATTACH 'a.db' AS a;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT * FROM a.out;
DETACH a;

-- 1. A primary-key update keeps every cell: it is a delete of the old key and an insert of
-- the new one with every column, so a peer that pulls db_version > v (cr-sqlite's sync
-- query) gets the whole moved row. (cr-sqlite 0.16 sends only the cells it bumped, and the
-- peer gets the new key with NULLs.) The same for UPDATE OR REPLACE onto an existing row,
-- which replaces it (cr-sqlite diverges there).
.open a.db
.load ./dist/wavesync
SELECT wavesync_db_version() AS v_before;
UPDATE t SET id = 9 WHERE id = 2;
UPDATE OR REPLACE t SET id = 1 WHERE id = 3;
SELECT id, name, qty FROM t ORDER BY id;
DROP TABLE out;
CREATE TABLE out AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes WHERE db_version > 1;
SELECT cid, val, cl FROM out ORDER BY db_version, seq;
.open b.db
.load ./dist/wavesync
ATTACH 'a.db' AS a;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT * FROM a.out;
SELECT 'b after pulling since v', id, name, qty FROM t ORDER BY id;
SELECT 'same table', (SELECT group_concat(id || name || qty) FROM (SELECT * FROM t ORDER BY id))
  = (SELECT group_concat(id || name || qty) FROM (SELECT * FROM a.t ORDER BY id)) AS same;
DETACH a;

-- 2. Schema changes keep delete records and column clocks: a delete made before an
-- ALTER still reaches a replica that had the row, and the cells keep their col_versions.
-- (cr-sqlite 0.16's alter drops clocks it cannot map.)
.open a.db
.load ./dist/wavesync
DELETE FROM t WHERE id = 9;
UPDATE t SET qty = 11 WHERE id = 1;
SELECT wavesync_begin_alter('t');
ALTER TABLE t ADD COLUMN note TEXT;
SELECT wavesync_commit_alter('t');
SELECT hex(pk) AS pk, cid, col_version, cl FROM wavesync_changes ORDER BY pk, cid;
DROP TABLE out;
CREATE TABLE out AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
.open b.db
.load ./dist/wavesync
SELECT wavesync_begin_alter('t');
ALTER TABLE t ADD COLUMN note TEXT;
SELECT wavesync_commit_alter('t');
ATTACH 'a.db' AS a;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT * FROM a.out;
SELECT 'b after the alter', id, name, qty, note FROM t ORDER BY id;
SELECT 'same changes', (SELECT group_concat(hex(pk) || cid || col_version || cl, ' ') FROM (SELECT * FROM wavesync_changes ORDER BY pk, cid))
  = (SELECT group_concat(hex(pk) || cid || col_version || cl, ' ') FROM (SELECT pk, cid, col_version, cl FROM a.out ORDER BY pk, cid)) AS same;
