.load ./dist/wavesync
.headers on
.mode list
-- merge_rollbacks.sql: a merge through wavesync_changes remembers the clock it left its row
-- with, for the next change (usually of the same row). Whatever else writes or undoes a
-- clock in between must make it read the clock again. R1 = x'00..01', R2 = x'00..02'.
-- Changes carry origin_version (as wavesyncd's do): an identical one is a no-op.

CREATE TABLE m(id INTEGER PRIMARY KEY NOT NULL, a, b);
SELECT wavesync_as_crr('m');

-- A failed statement inside a transaction: SQLite undoes its writes (a statement rollback,
-- no commit or rollback hook). why: the statement merged b of row 1, then its second row
-- (a column change with an even causal length) failed; b is gone again, so delivering b
-- once more must write it.
BEGIN;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('m', wavesync_pack_columns(1), 'a', 'one', 1, 1, x'00000000000000000000000000000001', 1, 0, 1);
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('m', wavesync_pack_columns(1), 'b', 'two', 1, 1, x'00000000000000000000000000000001', 1, 1, 1),
         ('m', wavesync_pack_columns(1), 'a', 'bad', 1, 1, x'00000000000000000000000000000001', 2, 2, 1);
SELECT id, a, quote(b) AS b_after_failed_statement FROM m WHERE id = 1;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('m', wavesync_pack_columns(1), 'b', 'two', 1, 1, x'00000000000000000000000000000001', 1, 1, 1);
COMMIT;
SELECT id, a, b AS b_delivered_again FROM m WHERE id = 1;

-- ROLLBACK TO a savepoint undoes a merge (the row and the version's mark in the vector);
-- the same change then creates the row and marks the version again.
BEGIN;
SAVEPOINT s;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('m', wavesync_pack_columns(2), 'a', 'again', 1, 2, x'00000000000000000000000000000001', 1, 0, 2);
ROLLBACK TO s;
SELECT count(*) AS row_2_after_rollback_to FROM m WHERE id = 2;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('m', wavesync_pack_columns(2), 'a', 'again', 1, 2, x'00000000000000000000000000000001', 1, 0, 2);
COMMIT;
SELECT id, a FROM m WHERE id = 2;
-- The versions applied (runs per origin; R1 is site ordinal 1): R1's 1 and 2, nothing lost.
SELECT site_ord, start, last FROM wavesync_vector ORDER BY site_ord, start;

-- The same without a transaction: the failed statement rolls everything back.
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('m', wavesync_pack_columns(4), 'a', 'four', 1, 5, x'00000000000000000000000000000001', 1, 0, 5),
         ('m', wavesync_pack_columns(4), 'b', 'bad', 1, 5, x'00000000000000000000000000000001', 2, 1, 5);
SELECT count(*) AS row_4_after_failed_autocommit FROM m WHERE id = 4;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('m', wavesync_pack_columns(4), 'a', 'four', 1, 5, x'00000000000000000000000000000001', 1, 0, 5);
SELECT id, a FROM m WHERE id = 4;

-- A local write between two merges of the same row. why: the local update took a to
-- col_version 2; R2's 'aaa' at col_version 2 ties and loses to the larger 'local'.
BEGIN;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('m', wavesync_pack_columns(3), 'a', 'remote', 1, 3, x'00000000000000000000000000000001', 1, 0, 3);
UPDATE m SET a = 'local' WHERE id = 3;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('m', wavesync_pack_columns(3), 'a', 'aaa', 2, 4, x'00000000000000000000000000000002', 1, 0, 4);
SELECT wavesync_rows_impacted() AS impacted_in_tx; -- 1: the first merge (aaa lost)
COMMIT;
SELECT id, a FROM m WHERE id = 3;

-- A re-delivered change is a no-op, and so is the whole table's changes merged again.
SELECT wavesync_db_version() AS dbv_before;
BEGIN;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
SELECT wavesync_rows_impacted() AS impacted_by_remerge;
COMMIT;
SELECT wavesync_db_version() AS dbv_after;
SELECT * FROM m ORDER BY id;
SELECT site_ord, start, last FROM wavesync_vector ORDER BY site_ord, start;
