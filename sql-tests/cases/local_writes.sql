.load ./dist/wavesync
.headers on
.mode list
-- local_writes.sql: what the triggers record in wavesync_changes for each kind of local write.
-- Columns shown: table, hex(pk), cid, quote(val), col_version, db_version, cl, seq, and
-- whether site_id is this replica's (it always is for local writes).
-- pk 010901 = packed integer 1 (1 column, type byte 0x09 = 1-byte int, payload 01).

CREATE TABLE t(id INTEGER PRIMARY KEY NOT NULL, a TEXT, b INTEGER);
SELECT wavesync_as_crr('t');

-- why: an INSERT records every non-key column with col_version 1, cl 1, one seq each.
-- (No '-1' sentinel row: like cr-sqlite, a first insert is implied by its columns.)
INSERT INTO t VALUES (1, 'one', 10);
SELECT "table", hex(pk), cid, quote(val), col_version, db_version, cl, seq, site_id = wavesync_site_id() AS local
  FROM wavesync_changes ORDER BY db_version, seq;

-- why: updating one column bumps only that column's col_version (and gives it the new db_version).
UPDATE t SET a = 'uno' WHERE id = 1;
SELECT "table", hex(pk), cid, quote(val), col_version, db_version, cl, seq, site_id = wavesync_site_id() AS local
  FROM wavesync_changes ORDER BY db_version, seq;

-- why: an UPDATE that writes the same value changes nothing: no new version.
UPDATE t SET a = 'uno', b = 10 WHERE id = 1;
SELECT wavesync_db_version() AS dbv_still_2;
SELECT "table", hex(pk), cid, quote(val), col_version, db_version, cl, seq, site_id = wavesync_site_id() AS local
  FROM wavesync_changes ORDER BY db_version, seq;

-- why: a DELETE leaves only the sentinel '-1' with cl 2 (even = deleted) and col_version = cl.
DELETE FROM t WHERE id = 1;
SELECT "table", hex(pk), cid, quote(val), col_version, db_version, cl, seq, site_id = wavesync_site_id() AS local
  FROM wavesync_changes ORDER BY db_version, seq;

-- why: re-inserting after the delete starts causal length 3: the sentinel carries cl 3 as its
-- col_version and the columns restart at col_version 1; seq continues within the transaction
-- (the sentinel first, then the columns).
INSERT INTO t VALUES (1, 'again', 11);
SELECT "table", hex(pk), cid, quote(val), col_version, db_version, cl, seq, site_id = wavesync_site_id() AS local
  FROM wavesync_changes ORDER BY db_version, seq;

-- why: INSERT OR REPLACE over a live row writes every column again: each col_version + 1,
-- the row stays at cl 3 (REPLACE deletes without firing the delete trigger, as in cr-sqlite,
-- since recursive_triggers is off).
INSERT OR REPLACE INTO t VALUES (1, 'replaced', 11);
SELECT "table", hex(pk), cid, quote(val), col_version, db_version, cl, seq, site_id = wavesync_site_id() AS local
  FROM wavesync_changes ORDER BY db_version, seq;

-- why: an upsert whose DO UPDATE changes one column is an update of that column only.
INSERT INTO t VALUES (1, 'ignored', 12) ON CONFLICT (id) DO UPDATE SET b = excluded.b;
SELECT "table", hex(pk), cid, quote(val), col_version, db_version, cl, seq, site_id = wavesync_site_id() AS local
  FROM wavesync_changes ORDER BY db_version, seq;
-- why: an upsert that inserts is an insert.
INSERT INTO t VALUES (2, 'two', 20) ON CONFLICT (id) DO UPDATE SET b = excluded.b;
SELECT "table", hex(pk), cid, quote(val), col_version, db_version, cl, seq, site_id = wavesync_site_id() AS local
  FROM wavesync_changes WHERE pk = wavesync_pack_columns(2) ORDER BY db_version, seq;

-- why: changing the primary key is a delete of the old key (sentinel cl 2) and an insert of
-- the new key (columns at col_version 1), in one version.
UPDATE t SET id = 9 WHERE id = 2;
SELECT "table", hex(pk), cid, quote(val), col_version, db_version, cl, seq, site_id = wavesync_site_id() AS local
  FROM wavesync_changes WHERE db_version = wavesync_db_version() ORDER BY db_version, seq;

-- why: a multi-statement transaction records one db_version and seq 0, 1, 2, ... in write order.
BEGIN;
INSERT INTO t VALUES (3, 'three', 30);
UPDATE t SET b = 99 WHERE id = 9;
DELETE FROM t WHERE id = 1;
COMMIT;
SELECT "table", hex(pk), cid, quote(val), col_version, db_version, cl, seq, site_id = wavesync_site_id() AS local
  FROM wavesync_changes WHERE db_version = wavesync_db_version() ORDER BY db_version, seq;
-- why: a rolled-back transaction leaves nothing and does not use up a version.
BEGIN;
INSERT INTO t VALUES (4, 'four', 40);
ROLLBACK;
SELECT wavesync_db_version() AS dbv_after_rollback, count(*) AS row4_changes
  FROM wavesync_changes WHERE pk = wavesync_pack_columns(4);
INSERT INTO t VALUES (5, 'five', 50);
SELECT DISTINCT db_version AS next_write_version FROM wavesync_changes WHERE pk = wavesync_pack_columns(5);

-- The whole table, for reference.
SELECT * FROM t ORDER BY id;
SELECT "table", hex(pk), cid, quote(val), col_version, db_version, cl, seq, site_id = wavesync_site_id() AS local
  FROM wavesync_changes ORDER BY db_version, seq;

-- why: a table with only primary-key columns records its rows as sentinel rows:
-- cid '-1', val NULL, col_version = cl.
CREATE TABLE tags(item INTEGER NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (item, tag));
SELECT wavesync_as_crr('tags');
INSERT INTO tags VALUES (1, 'red'), (1, 'blue');
DELETE FROM tags WHERE tag = 'red';
INSERT INTO tags VALUES (1, 'red');
SELECT "table", hex(pk), cid, quote(val), col_version, db_version, cl, seq, site_id = wavesync_site_id() AS local
  FROM wavesync_changes WHERE "table" = 'tags' ORDER BY db_version, seq;
-- why: INSERT OR REPLACE of an existing key-only row changes nothing.
INSERT OR REPLACE INTO tags VALUES (1, 'blue');
SELECT count(*) AS tags_changes, max(db_version) AS newest FROM wavesync_changes WHERE "table" = 'tags';

-- why: composite keys are packed like cr-sqlite's crsql_pack_columns: 02 = two columns;
-- 'ab' = 0B (1-byte length, type 3 text) 02 6162; 300 = 11 (2-byte int) 012C;
-- -1 = 41 (8-byte int) FFFFFFFFFFFFFFFF; 0 = 01 (int, no payload); 'é' = 0B 02 C3A9 (UTF-8 bytes).
CREATE TABLE c(name TEXT NOT NULL, n INTEGER NOT NULL, v, PRIMARY KEY (name, n));
SELECT wavesync_as_crr('c');
INSERT INTO c VALUES ('ab', 300, 'x'), ('é', -1, 'y'), ('', 0, 'z');
SELECT hex(pk), pk = wavesync_pack_columns(name, n) AS matches_pack_columns, cid, val
  FROM wavesync_changes JOIN c ON c.v = wavesync_changes.val WHERE "table" = 'c' ORDER BY seq;
