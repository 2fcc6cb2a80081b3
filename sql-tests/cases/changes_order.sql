.load ./dist/wavesync
.headers on
.mode list
-- changes_order.sql: wavesync_changes returns rows in (db_version, seq) order across all
-- tables, as cr-sqlite does, for every read that does not sort them itself; a LIMIT keeps
-- the first rows of that order. A transport that pages with LIMIT and resumes after the
-- highest db_version it saw gets every row.
CREATE TABLE a(id INTEGER PRIMARY KEY NOT NULL, x TEXT);
CREATE TABLE b(k TEXT PRIMARY KEY NOT NULL, y TEXT, z INTEGER);
SELECT wavesync_as_crr('a'), wavesync_as_crr('b');
INSERT INTO b VALUES ('k1', 'y1', 1);                           -- version 1
INSERT INTO a VALUES (5, 'a5');                                 -- version 2
BEGIN;                                                          -- version 3
INSERT INTO a VALUES (1, 'a1');
INSERT INTO b VALUES ('k0', 'y0', 0);
INSERT INTO a VALUES (3, 'a3');
COMMIT;
UPDATE b SET z = 10 WHERE k = 'k1';                             -- version 4
UPDATE a SET x = 'a5*' WHERE id = 5;                            -- version 5
DELETE FROM b WHERE k = 'k0';                                   -- version 6

SELECT "table", quote(pk) AS pk, cid, val, db_version, seq FROM wavesync_changes;
-- The same order with constraints pushed down, and with ORDER BY db_version, seq (no
-- sort of SQLite's own: the plan shows no temp b-tree).
SELECT "table", cid, db_version, seq FROM wavesync_changes WHERE db_version > 2 AND site_id = wavesync_site_id();
EXPLAIN QUERY PLAN SELECT * FROM wavesync_changes WHERE db_version > 2 ORDER BY db_version, seq;
SELECT "table", cid, db_version, seq FROM wavesync_changes WHERE db_version > 2 ORDER BY db_version, seq;
-- Another order asked for is SQLite's to make.
SELECT "table", cid, db_version FROM wavesync_changes ORDER BY "table" DESC, db_version DESC LIMIT 3;

-- Pages of 2 rows, each resuming after the (db_version, seq) of the last row of the
-- previous page.
SELECT 'page 1', db_version, seq, "table", cid FROM wavesync_changes WHERE db_version > 0 LIMIT 2;
SELECT 'page 2', db_version, seq, "table", cid FROM wavesync_changes WHERE db_version > 3 OR (db_version = 3 AND seq > 0) LIMIT 2;
SELECT 'page 3', db_version, seq, "table", cid FROM wavesync_changes WHERE db_version > 4 OR (db_version = 4 AND seq > 0) LIMIT 2;
SELECT 'offset 3', db_version, seq, "table", cid FROM wavesync_changes LIMIT 2 OFFSET 3;
-- The three pages are the whole read.
SELECT (SELECT group_concat(db_version || '.' || seq, ' ') FROM wavesync_changes) AS whole;

-- Merged changes keep the order too: a replica that merged them lists them by its own
-- db_version, whichever table they are in.
.open replica.db
.load ./dist/wavesync
CREATE TABLE a(id INTEGER PRIMARY KEY NOT NULL, x TEXT);
CREATE TABLE b(k TEXT PRIMARY KEY NOT NULL, y TEXT, z INTEGER);
SELECT wavesync_as_crr('a'), wavesync_as_crr('b');
INSERT INTO a VALUES (9, 'local');
ATTACH ':memory:' AS m;
CREATE TABLE m.ch AS SELECT 'b' AS "table", wavesync_pack_columns('r') AS pk, 'y' AS cid, 'remote' AS val,
  1 AS col_version, 7 AS db_version, x'0102030405060708090a0b0c0d0e0f10' AS site_id, 1 AS cl, 0 AS seq;
INSERT INTO wavesync_changes SELECT * FROM m.ch;
INSERT INTO a VALUES (10, 'local again');
SELECT "table", cid, val, db_version, seq FROM wavesync_changes;
