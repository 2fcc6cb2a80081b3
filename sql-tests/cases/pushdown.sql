.load ./dist/wavesync
.headers on
.mode list
-- pushdown.sql: constraints on wavesync_changes reach the virtual table, which picks a walk
-- (EXPLAIN QUERY PLAN shows `INDEX <idx_num>:<constraints>`):
--   idx_num 1 = point lookup by pk, 2 = db_version index range, 3 = one table, 0 = everything.
-- The constraint list names each column by number (0 "table", 1 pk, 2 cid, 3 val,
-- 4 col_version, 5 db_version, 6 site_id, 7 cl, 8 seq, 9 origin_version) and the operator
-- (= > < g(>=) l(<=) !(<>) i(IS) n(IS NOT)). SQLite re-checks every constraint, so the
-- filtered results below must equal what a full scan would give.

CREATE TABLE t(id INTEGER PRIMARY KEY NOT NULL, a, b);
CREATE TABLE u(k TEXT PRIMARY KEY NOT NULL, v);
SELECT wavesync_as_crr('t'), wavesync_as_crr('u');
INSERT INTO t VALUES (1, 'a1', 'b1'), (2, 'a2', 'b2');                 -- version 1
UPDATE t SET a = 'a1*' WHERE id = 1;                                  -- version 2
INSERT INTO t VALUES (3, 'a3', 'b3');                                 -- version 3
DELETE FROM t WHERE id = 2;                                           -- version 4
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('t', wavesync_pack_columns(4), 'a', 'r4', 1, 10, x'00000000000000000000000000000001', 1, 0, 7);  -- version 10
INSERT INTO u VALUES ('x', 'ux'), ('y', 'uy');                        -- version 11
CREATE TEMP VIEW ch AS
  SELECT "table", hex(pk) AS pk, cid, quote(val) AS val, col_version, db_version,
         CASE WHEN site_id = wavesync_site_id() THEN 'local' ELSE hex(substr(site_id, 16)) END AS site,
         cl, seq, origin_version
    FROM wavesync_changes;
-- Everything (walk 0), for reference.
EXPLAIN QUERY PLAN SELECT * FROM wavesync_changes;
SELECT * FROM ch ORDER BY "table", pk, cid;

-- why: "changes since version N" walks the db_version index (2); a cell is returned only if
-- its own db_version qualifies (row 1's b stays at version 1, its a moved to 2).
EXPLAIN QUERY PLAN SELECT * FROM wavesync_changes WHERE db_version > 1;
SELECT "table", hex(pk) AS pk, cid, db_version FROM wavesync_changes WHERE db_version > 1 ORDER BY db_version, seq;
SELECT "table", hex(pk) AS pk, cid, db_version FROM wavesync_changes WHERE db_version >= 4 ORDER BY db_version, seq;
-- why: an upper bound (no lower bound) is checked per cell.
EXPLAIN QUERY PLAN SELECT * FROM wavesync_changes WHERE db_version < 3;
SELECT "table", hex(pk) AS pk, cid, db_version FROM wavesync_changes WHERE db_version < 3 ORDER BY db_version, seq;
SELECT "table", hex(pk) AS pk, cid, db_version FROM wavesync_changes WHERE db_version BETWEEN 2 AND 4 ORDER BY db_version, seq;
SELECT "table", hex(pk) AS pk, cid, db_version FROM wavesync_changes WHERE db_version = 10;
-- why: the cr-sqlite sync query: newer than what the peer saw, not from the peer itself.
EXPLAIN QUERY PLAN SELECT * FROM wavesync_changes WHERE db_version > ? AND site_id IS NOT ?;
SELECT "table", hex(pk) AS pk, cid, db_version FROM wavesync_changes
 WHERE db_version > 2 AND site_id IS NOT x'00000000000000000000000000000001' ORDER BY db_version, seq;
SELECT "table", hex(pk) AS pk, cid, db_version FROM wavesync_changes
 WHERE db_version > 2 AND site_id IS NOT wavesync_site_id() ORDER BY db_version, seq;
-- why: comparisons with another type are left to SQLite: '3' (text) against an INTEGER column.
SELECT count(*) AS newer_than_text_3 FROM wavesync_changes WHERE db_version > '3';
SELECT count(*) AS equal_to_real_10 FROM wavesync_changes WHERE db_version = 10.0;

-- why: one table (walk 3).
EXPLAIN QUERY PLAN SELECT * FROM wavesync_changes WHERE "table" = ?;
SELECT "table", hex(pk) AS pk, cid, val FROM wavesync_changes WHERE "table" = 'u' ORDER BY pk, cid;
SELECT count(*) AS unknown_table FROM wavesync_changes WHERE "table" = 'nope';
SELECT count(*) AS other_case FROM wavesync_changes WHERE "table" = 'U';

-- why: one row by its packed pk (walk 1), with or without the table.
EXPLAIN QUERY PLAN SELECT * FROM wavesync_changes WHERE pk = ?;
EXPLAIN QUERY PLAN SELECT * FROM wavesync_changes WHERE "table" = ? AND pk = ?;
SELECT "table", hex(pk) AS pk, cid, val FROM wavesync_changes WHERE pk = wavesync_pack_columns(1) ORDER BY cid;
SELECT "table", hex(pk) AS pk, cid, val FROM wavesync_changes WHERE "table" = 't' AND pk = wavesync_pack_columns(3) ORDER BY cid;
SELECT "table", hex(pk) AS pk, cid, val FROM wavesync_changes WHERE "table" = 'u' AND pk = wavesync_pack_columns('y') ORDER BY cid;
-- why: the deleted row 2 shows only its sentinel.
SELECT "table", hex(pk) AS pk, cid, cl FROM wavesync_changes WHERE pk = wavesync_pack_columns(2);
-- why: a pk of the wrong table, or no such pk, gives nothing.
SELECT count(*) AS wrong_table FROM wavesync_changes WHERE "table" = 'u' AND pk = wavesync_pack_columns(1);
SELECT count(*) AS no_such_pk FROM wavesync_changes WHERE pk = wavesync_pack_columns(99);
-- why: IN lists and joins feed the pk lookup one value at a time.
SELECT "table", hex(pk) AS pk, cid FROM wavesync_changes WHERE pk IN (wavesync_pack_columns(3), wavesync_pack_columns('x')) ORDER BY "table", pk, cid;
CREATE TEMP TABLE wanted(pk BLOB);
INSERT INTO wanted VALUES (wavesync_pack_columns(1)), (wavesync_pack_columns(4));
EXPLAIN QUERY PLAN SELECT c.cid FROM wanted w JOIN wavesync_changes c ON c.pk = w.pk;
SELECT hex(c.pk) AS pk, c.cid, c.val FROM wanted w JOIN wavesync_changes c ON c.pk = w.pk ORDER BY c.pk, c.cid;

-- why: origin_version selects the changes of one origin's versions (what a vector catch-up
-- asks for); it walks the db_version index from its lower bound, for any origin (a cell's
-- db_version is at least its origin version); with this site's own id the upper bound
-- bounds the walk too.
EXPLAIN QUERY PLAN SELECT * FROM wavesync_changes WHERE site_id = ? AND origin_version BETWEEN ? AND ?;
SELECT "table", hex(pk) AS pk, cid, db_version, origin_version FROM wavesync_changes
 WHERE site_id = x'00000000000000000000000000000001' AND origin_version BETWEEN 5 AND 8;
SELECT "table", hex(pk) AS pk, cid, db_version, origin_version FROM wavesync_changes
 WHERE site_id = wavesync_site_id() AND origin_version BETWEEN 3 AND 4 ORDER BY db_version, seq;
SELECT count(*) AS origin_gt_7 FROM wavesync_changes WHERE origin_version > 7;

-- why: other columns (cid, cl, col_version, seq, val) are passed down and checked by the
-- cursor; the walk stays 0 (or whatever the other constraints pick).
EXPLAIN QUERY PLAN SELECT * FROM wavesync_changes WHERE cid = ?;
SELECT "table", hex(pk) AS pk, cid FROM wavesync_changes WHERE cid = 'a' ORDER BY "table", pk;
SELECT "table", hex(pk) AS pk, cid FROM wavesync_changes WHERE cid = '-1';
SELECT "table", hex(pk) AS pk, cid, col_version FROM wavesync_changes WHERE col_version >= 2 ORDER BY pk, cid;
SELECT "table", hex(pk) AS pk, cid, cl FROM wavesync_changes WHERE cl <> 1;
SELECT "table", hex(pk) AS pk, cid, val FROM wavesync_changes WHERE val = 'uy';
EXPLAIN QUERY PLAN SELECT * FROM wavesync_changes WHERE "table" = ? AND db_version > ? AND cid = ?;
SELECT "table", hex(pk) AS pk, cid, db_version FROM wavesync_changes WHERE "table" = 't' AND db_version > 1 AND cid = 'a' ORDER BY db_version;

-- why: contradictory constraints give nothing.
SELECT count(*) AS contradictory FROM wavesync_changes WHERE "table" = 't' AND "table" = 'u';
SELECT count(*) AS empty_range FROM wavesync_changes WHERE db_version > 5 AND db_version < 6;

-- why: every filtered query agrees with filtering a full copy of the changes.
CREATE TEMP TABLE full_copy AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
SELECT
  (SELECT count(*) FROM (SELECT * FROM full_copy WHERE db_version > 2 EXCEPT SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes WHERE db_version > 2)) +
  (SELECT count(*) FROM (SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes WHERE db_version > 2 EXCEPT SELECT * FROM full_copy WHERE db_version > 2)) AS dbv_diff,
  (SELECT count(*) FROM (SELECT * FROM full_copy WHERE "table" = 't' EXCEPT SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes WHERE "table" = 't')) +
  (SELECT count(*) FROM (SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes WHERE "table" = 't' EXCEPT SELECT * FROM full_copy WHERE "table" = 't')) AS table_diff,
  (SELECT count(*) FROM full_copy) AS total;

-- A version range walks rows by their newest cell and skips the rows with nothing in the
-- range, pages of them at a time. why: rows 1..599 were rewritten at version v+1 (nothing
-- left at v); row 600 kept b from version v under a newer a: a read of version v finds
-- only that cell, behind more than two pages (256 rows each) of skipped rows.
CREATE TABLE w(id INTEGER PRIMARY KEY NOT NULL, a, b);
SELECT wavesync_as_crr('w');
INSERT INTO w SELECT value, 'a', 'b' FROM generate_series(1, 600);
CREATE TEMP TABLE v AS SELECT wavesync_db_version() AS v;
UPDATE w SET a = 'a2', b = 'b2' WHERE id < 600;
UPDATE w SET a = 'a3' WHERE id = 600;
SELECT hex(pk) AS pk, cid, val, db_version - (SELECT v FROM v) AS version FROM wavesync_changes
 WHERE "table" = 'w' AND db_version = (SELECT v FROM v);
SELECT count(*) AS w_v_to_v1 FROM wavesync_changes
 WHERE "table" = 'w' AND db_version BETWEEN (SELECT v FROM v) AND (SELECT v FROM v) + 1;
SELECT count(*) AS w_v1_on FROM wavesync_changes WHERE "table" = 'w' AND db_version > (SELECT v FROM v);

-- why: a lower bound on origin_version walks the db_version index for any origin (walk 2).
-- A merged cell is stored at a db_version at least its origin version, even when the change
-- names a smaller db_version (3 below, origin version 2000): the walk from 1000 finds it.
EXPLAIN QUERY PLAN SELECT * FROM wavesync_changes WHERE site_id = ? AND origin_version >= ?;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('w', wavesync_pack_columns(5), 'b', 'far', 9, 3, x'00000000000000000000000000000002', 1, 0, 2000);
SELECT hex(pk) AS pk, cid, val, db_version >= 2000 AS stored_at_or_above_origin, origin_version FROM wavesync_changes
 WHERE site_id = x'00000000000000000000000000000002' AND origin_version >= 1000;
SELECT wavesync_db_version() >= 2000 AS clock_raised;
-- why: every read bounded by origin_version agrees with filtering a full copy.
CREATE TEMP TABLE full_copy2 AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
CREATE TEMP VIEW live AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
SELECT
  (SELECT count(*) FROM (SELECT * FROM full_copy2 WHERE site_id = x'00000000000000000000000000000001' AND origin_version >= 7
     EXCEPT SELECT * FROM live WHERE site_id = x'00000000000000000000000000000001' AND origin_version >= 7)) AS site1_diff,
  (SELECT count(*) FROM (SELECT * FROM full_copy2 WHERE site_id = x'00000000000000000000000000000002' AND origin_version BETWEEN 1 AND 2000
     EXCEPT SELECT * FROM live WHERE site_id = x'00000000000000000000000000000002' AND origin_version BETWEEN 1 AND 2000)) AS site2_diff,
  (SELECT count(*) FROM (SELECT * FROM full_copy2 WHERE origin_version > 5 EXCEPT SELECT * FROM live WHERE origin_version > 5)) AS any_site_diff,
  (SELECT count(*) FROM (SELECT * FROM full_copy2 WHERE origin_version = 2000 EXCEPT SELECT * FROM live WHERE origin_version = 2000)) AS eq_diff,
  (SELECT count(*) FROM live WHERE origin_version > 5) AS newer_than_5;
