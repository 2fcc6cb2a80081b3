.load ./dist/wavesync
.headers on
.mode list
-- alter.sql: schema changes of a CRR with wavesync_begin_alter / wavesync_commit_alter (and
-- their crsql_* names), what happens when begin_alter is forgotten, DROP TABLE of a CRR and
-- wavesync_as_table. The remote site R1 is made up: x'00..01' (shown as 01); this replica's
-- random site id is shown as 'local'.

CREATE TABLE t(id INTEGER PRIMARY KEY NOT NULL, a TEXT, b TEXT);
SELECT wavesync_as_crr('t');
CREATE TEMP VIEW ch AS
  SELECT "table" AS tbl, hex(pk) AS pk, cid, quote(val) AS val, col_version, db_version,
         CASE WHEN site_id = wavesync_site_id() THEN 'local' ELSE hex(substr(site_id, 16)) END AS site,
         cl, seq
    FROM wavesync_changes;
CREATE TEMP VIEW cols AS
  SELECT kind, idx, name FROM wavesync_columns WHERE tbl = 't' ORDER BY kind DESC, pos, idx;
INSERT INTO t VALUES (1, 'a1', 'b1'), (2, 'a2', 'b2');
UPDATE t SET a = 'a1-v2' WHERE id = 1;
SELECT * FROM ch ORDER BY pk, cid;
SELECT * FROM cols;
SELECT wavesync_db_version() AS dbv;

-- ADD COLUMN -----------------------------------------------------------------------------
-- why: begin_alter/commit_alter around ALTER TABLE; every live row gets a clock for the new
-- column at col_version 1 and at the CURRENT db_version (2): a migration that changes no
-- data is not news, so wavesync_db_version() stays 2. The new column gets the next id (3).
SELECT wavesync_begin_alter('t');
ALTER TABLE t ADD COLUMN c TEXT DEFAULT 'c?';
SELECT wavesync_commit_alter('t');
SELECT wavesync_db_version() AS dbv_unchanged;
SELECT * FROM ch ORDER BY pk, cid;
SELECT * FROM cols;
-- why: local writes of the new column are recorded (col_version 2, the next db_version 3) ...
UPDATE t SET c = 'c1' WHERE id = 1;
INSERT INTO t VALUES (3, 'a3', 'b3', 'c3');
-- ... and merges of it apply: R1's col_version 5 for row 2's c wins.
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(2), 'c', 'c2-from-R1', 5, 1, x'00000000000000000000000000000001', 1, 0);
SELECT * FROM t ORDER BY id;
SELECT * FROM ch WHERE cid = 'c' ORDER BY pk;

-- RENAME COLUMN ----------------------------------------------------------------------------
-- why: a renamed column keeps its id and its clocks: row 1's a was at col_version 2 and is
-- still at col_version 2 (same db_version, same seq) under the name a2; nothing is new, so
-- db_version does not move. (The cr-sqlite names are used here.)
SELECT wavesync_db_version() AS dbv_before_rename;
SELECT crsql_begin_alter('t');
ALTER TABLE t RENAME COLUMN a TO a2;
SELECT crsql_commit_alter('t');
SELECT wavesync_db_version() AS dbv_after_rename;
SELECT * FROM ch WHERE cid IN ('a', 'a2') ORDER BY pk;
SELECT * FROM cols;
-- why: the next local write of a2 goes on from col_version 2 to 3.
UPDATE t SET a2 = 'a1-v3' WHERE id = 1;
SELECT * FROM ch WHERE cid = 'a2' AND pk = '010901';
-- why: merges address the column by its new name; R1's col_version 4 wins.
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(2), 'a2', 'a2-from-R1', 4, 1, x'00000000000000000000000000000001', 1, 0);
SELECT * FROM ch WHERE cid = 'a2' ORDER BY pk;

-- DROP COLUMN ------------------------------------------------------------------------------
-- why: the dropped column's cells disappear from wavesync_changes; its id 2 is retired
-- (kind 'dropped'), so a column added later under the same name gets a fresh id (4) and
-- starts again at col_version 1. Nothing is new, so db_version does not move.
SELECT wavesync_db_version() AS dbv_before_drop;
SELECT wavesync_begin_alter('t');
ALTER TABLE t DROP COLUMN b;
SELECT wavesync_commit_alter('t');
SELECT wavesync_db_version() AS dbv_after_drop;
SELECT * FROM cols;
SELECT count(*) AS b_cells FROM wavesync_changes WHERE cid = 'b';
SELECT * FROM ch ORDER BY pk, cid;
-- why: a change for the dropped column from a peer that has not migrated yet is kept aside
-- (wavesync_pending), not applied and not an error. Changes name columns, not ids: when a
-- column b exists again (added below, fresh id 4, col_version 1 for rows 2 and 3), the kept
-- change is merged into it (row 1: R1's col_version 9, at the next db_version 8).
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), 'b', 'late-b', 9, 1, x'00000000000000000000000000000001', 1, 0);
SELECT tbl, cid, val FROM wavesync_pending;
SELECT wavesync_begin_alter('t');
ALTER TABLE t ADD COLUMN b TEXT;
SELECT wavesync_commit_alter('t');
SELECT * FROM cols;
SELECT * FROM ch WHERE cid = 'b' ORDER BY pk;
SELECT * FROM t ORDER BY id;

-- CREATE / DROP INDEX ------------------------------------------------------------------------
-- why: index changes go between begin_alter/commit_alter too; clocks and db_version stay,
-- and writes go on being recorded.
SELECT wavesync_db_version() AS dbv_before_index;
SELECT wavesync_begin_alter('t');
CREATE INDEX t_c ON t(c);
SELECT wavesync_commit_alter('t');
SELECT wavesync_db_version() AS dbv_after_index;
UPDATE t SET c = 'c3-v2' WHERE id = 3;
SELECT * FROM ch WHERE pk = '010903' AND cid = 'c';
SELECT wavesync_begin_alter('t');
DROP INDEX t_c;
SELECT wavesync_commit_alter('t');
SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 't';
UPDATE t SET c = 'c3-v3' WHERE id = 3;
SELECT * FROM ch WHERE pk = '010903' AND cid = 'c';
-- why: a unique index would make t ineligible: commit_alter refuses it with the reason.
SELECT wavesync_begin_alter('t');
CREATE UNIQUE INDEX t_c_unique ON t(c);
SELECT wavesync_commit_alter('t');
DROP INDEX t_c_unique;
SELECT wavesync_commit_alter('t');

-- Primary-key change by table rebuild ----------------------------------------------------------
-- why: the SQLite way to change a key: create the new table, copy, drop, rename, then
-- commit_alter. Old keys mean nothing under the new key: every row gets fresh clocks
-- (col_version 1) at ONE NEW db_version, and db_version never goes backwards.
SELECT wavesync_db_version() AS dbv_before_rekey;
SELECT wavesync_begin_alter('t');
CREATE TABLE t_new(id INTEGER NOT NULL, a2 TEXT NOT NULL DEFAULT '', c TEXT DEFAULT 'c?', b TEXT,
                   PRIMARY KEY (id, a2));
INSERT INTO t_new SELECT id, a2, c, b FROM t;
DROP TABLE t;
ALTER TABLE t_new RENAME TO t;
SELECT wavesync_commit_alter('t');
SELECT wavesync_db_version() AS dbv_after_rekey;
SELECT * FROM cols;
SELECT * FROM ch ORDER BY pk, cid;
-- why: local writes and merges use the new two-column key.
UPDATE t SET c = 'rekeyed' WHERE id = 1;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(9, 'nine'), 'c', 'from-R1', 1, 1, x'00000000000000000000000000000001', 1, 0);
SELECT * FROM t ORDER BY id;
SELECT * FROM ch WHERE cid = 'c' ORDER BY pk;
SELECT wavesync_db_version() AS dbv_after_writes;

-- Forgetting begin_alter -----------------------------------------------------------------------
CREATE TEMP TABLE before AS SELECT * FROM t;
-- why: ADD COLUMN without begin_alter: SQLite runs it, but then writes and merges of t are
-- refused with an error that names the table and the fix; the refused writes change nothing.
ALTER TABLE t ADD COLUMN d TEXT;
-- why: the very first write after the ALTER is refused (a new transaction re-checks the schema).
INSERT INTO t(id, a2, d) VALUES (10, 'ten', 'd10');
UPDATE t SET c = 'refused' WHERE id = 1;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1, 'a1-v3'), 'c', 'refused', 9, 1, x'00000000000000000000000000000001', 1, 0);
SELECT count(*) AS changed_rows FROM (SELECT id, a2, c, b FROM t EXCEPT SELECT id, a2, c, b FROM before);
SELECT count(*) AS rows FROM t;
SELECT wavesync_db_version() AS dbv_unchanged;
-- why: commit_alter adopts the new schema (d gets the next id, 5), and the write then works.
SELECT wavesync_commit_alter('t');
SELECT * FROM cols;
INSERT INTO t(id, a2, d) VALUES (10, 'ten', 'd10');
SELECT * FROM ch WHERE pk = hex(wavesync_pack_columns(10, 'ten')) ORDER BY cid;
-- why: RENAME COLUMN without begin_alter: same refusal, same fix; the column keeps its id.
ALTER TABLE t RENAME COLUMN d TO d2;
UPDATE t SET d2 = 'refused' WHERE id = 10;
SELECT d2 FROM t WHERE id = 10;
SELECT wavesync_commit_alter('t');
SELECT * FROM cols;
UPDATE t SET d2 = 'd10-v2' WHERE id = 10;
SELECT * FROM ch WHERE pk = hex(wavesync_pack_columns(10, 'ten')) AND cid = 'd2';
-- why: DROP COLUMN without begin_alter: SQLite itself refuses, because the triggers name the
-- column; the table keeps its columns.
ALTER TABLE t DROP COLUMN d2;
SELECT group_concat(name, ', ') AS columns FROM (SELECT name FROM pragma_table_info('t') ORDER BY cid);
-- Writes between begin_alter and commit_alter -------------------------------------------------------
-- why: they are recorded: an insert as usual, an update as a write of every tracked column
-- (the update trigger names no column while the table is being altered); commit_alter gives
-- the rows written in the window a local clock for the new column (a real write, at a new
-- db_version), while untouched rows get the migration clock (site 00, current db_version).
CREATE TABLE w(id INTEGER PRIMARY KEY NOT NULL, a);
SELECT wavesync_as_crr('w');
INSERT INTO w VALUES (1, 'one'), (2, 'two');
SELECT wavesync_db_version() AS dbv_before;
SELECT wavesync_begin_alter('w');
ALTER TABLE w ADD COLUMN e DEFAULT 'e?';
INSERT INTO w VALUES (3, 'three', 'e3');
UPDATE w SET a = 'one-v2' WHERE id = 1;
-- why: merges wait until commit_alter (the columns may not match yet).
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('w', wavesync_pack_columns(2), 'a', 'two-remote', 9, 1, x'00000000000000000000000000000001', 1, 0);
SELECT wavesync_commit_alter('w');
SELECT hex(pk) AS pk, cid, quote(val) AS val, col_version, db_version,
       CASE WHEN site_id = wavesync_site_id() THEN 'local' ELSE hex(substr(site_id, 16)) END AS site
  FROM wavesync_changes WHERE "table" = 'w' ORDER BY pk, cid;

-- DROP TABLE of a CRR ---------------------------------------------------------------------------
-- why: after DROP TABLE, wavesync_changes stops listing the table at once, and merges into it
-- are refused; the clock table and the metadata go at the next wavesync_finalize() (or
-- wavesync_as_crr, wavesync_commit_alter, or extension load: see below).
-- why: t's last write is the newest version, so its clocks hold the current db_version.
CREATE TABLE keep(id INTEGER PRIMARY KEY NOT NULL, v);
SELECT wavesync_as_crr('keep');
INSERT INTO keep VALUES (1, 'kept');
UPDATE t SET c = 'last' WHERE id = 1;
SELECT (SELECT max(db_version) FROM wavesync_changes WHERE "table" = 'keep') AS keep_dbv,
       wavesync_db_version() AS dbv_before_drop_table;
DROP TABLE t;
SELECT "table", count(*) AS cells FROM wavesync_changes GROUP BY "table";
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1, 'x'), 'c', 'x', 1, 1, x'00000000000000000000000000000001', 1, 0);
SELECT name FROM sqlite_master WHERE name LIKE 't\_\_%' ESCAPE '\' ORDER BY name;
SELECT name FROM wavesync_tables ORDER BY name;
SELECT wavesync_db_version() AS dbv_after_drop;
SELECT wavesync_finalize();
SELECT count(*) AS t_objects FROM sqlite_master WHERE name LIKE 't\_\_%' ESCAPE '\';
SELECT name FROM wavesync_tables ORDER BY name;
SELECT count(*) AS t_columns FROM wavesync_columns WHERE tbl = 't';
-- why: db_version does not go backwards although the clocks that held it are gone.
SELECT wavesync_db_version() AS dbv_not_backwards;
-- why: the table can be created again and made a CRR; its first write gets the next version.
CREATE TABLE t(id INTEGER PRIMARY KEY NOT NULL, a TEXT);
SELECT wavesync_as_crr('t');
INSERT INTO t VALUES (1, 'reborn');
SELECT * FROM ch WHERE tbl = 't' ORDER BY pk, cid;
SELECT "table", count(*) AS cells FROM wavesync_changes GROUP BY "table";
-- why: commit_alter of another table also removes what a DROP TABLE left behind.
CREATE TABLE gone(id INTEGER PRIMARY KEY NOT NULL, v);
SELECT wavesync_as_crr('gone');
DROP TABLE gone;
SELECT name FROM wavesync_tables ORDER BY name;
SELECT wavesync_begin_alter('keep');
SELECT wavesync_commit_alter('keep');
SELECT name FROM wavesync_tables ORDER BY name;
SELECT count(*) AS gone_objects FROM sqlite_master WHERE name LIKE 'gone%';

-- wavesync_as_table ---------------------------------------------------------------------------
-- why: back to a plain table: rows stay, triggers/clock/metadata go, later writes are not
-- recorded, db_version does not go backwards.
SELECT wavesync_db_version() AS dbv_before_as_table;
SELECT wavesync_as_table('t');
SELECT count(*) AS t_objects FROM sqlite_master WHERE name LIKE 't\_\_%' ESCAPE '\';
SELECT name FROM wavesync_tables ORDER BY name;
INSERT INTO t VALUES (2, 'plain');
SELECT * FROM t ORDER BY id;
SELECT "table", count(*) AS cells FROM wavesync_changes GROUP BY "table";
SELECT wavesync_db_version() AS dbv_after_as_table;
SELECT wavesync_as_table('t');
SELECT crsql_as_crr('t');
SELECT * FROM ch WHERE tbl = 't' ORDER BY pk, cid;
SELECT crsql_as_table('t');
SELECT name FROM wavesync_tables ORDER BY name;

-- Clean-up at extension load ------------------------------------------------------------------
-- why: a CRR dropped in a connection that never calls wavesync again is cleaned up the next
-- time the extension loads into that database.
.open dropped.db
.load ./dist/wavesync
CREATE TABLE f(id INTEGER PRIMARY KEY NOT NULL, v);
SELECT wavesync_as_crr('f');
INSERT INTO f VALUES (1, 'one');
SELECT wavesync_db_version() AS dbv;
DROP TABLE f;
.open dropped.db
SELECT name FROM sqlite_master WHERE name LIKE 'f\_\_%' ESCAPE '\' ORDER BY name;
.load ./dist/wavesync
SELECT count(*) AS f_objects FROM sqlite_master WHERE name LIKE 'f\_\_%' ESCAPE '\';
SELECT count(*) AS crr_tables FROM wavesync_tables;
SELECT wavesync_db_version() AS dbv_not_backwards;
