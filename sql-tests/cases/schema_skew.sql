.load ./dist/wavesync
.headers on
.mode list
-- schema_skew.sql: merging from a peer whose schema is ahead. This database is site B; peer A
-- (made-up site id x'00..A1', shown as A1) already ran ALTER TABLE t ADD COLUMN c and sends
-- changes for c before B has migrated. This replica's random site id is shown as 'local'.

CREATE TABLE t(id INTEGER PRIMARY KEY NOT NULL, a TEXT, b TEXT);
SELECT wavesync_as_crr('t');
INSERT INTO t VALUES (1, 'b-a', 'b-b');
CREATE TEMP VIEW ch AS
  SELECT hex(pk) AS pk, cid, quote(val) AS val, col_version, db_version,
         CASE WHEN site_id = wavesync_site_id() THEN 'local' ELSE hex(substr(site_id, 16)) END AS site,
         cl, seq, origin_version
    FROM wavesync_changes;
CREATE TEMP VIEW pending AS
  SELECT tbl, hex(pk) AS pk, cid, quote(val) AS val, col_version, db_version, hex(substr(site_id, 16)) AS site,
         cl, seq, origin_version
    FROM wavesync_pending;
CREATE TEMP VIEW vec AS SELECT replace(wavesync_vector_json(), hex(wavesync_site_id()), 'LOCAL') AS vector;

-- A's version 2: an ordinary change of a known column; it is applied and recorded.
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('t', wavesync_pack_columns(1), 'b', 'A-b', 2, 2, x'000000000000000000000000000000A1', 1, 0, 2);
SELECT * FROM vec;

-- A's version 3 changes row 1's a (known) and c (unknown here) ------------------------------------
-- why: no error; the a change is applied; the c change is kept in wavesync_pending (not lost);
-- version 3 is NOT in the vector, because part of it is still waiting.
BEGIN;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('t', wavesync_pack_columns(1), 'a', 'A-a', 2, 3, x'000000000000000000000000000000A1', 1, 0, 3),
         ('t', wavesync_pack_columns(1), 'c', 'A-c1', 2, 3, x'000000000000000000000000000000A1', 1, 1, 3);
COMMIT;
SELECT * FROM t ORDER BY id;
SELECT * FROM ch ORDER BY pk, cid;
SELECT * FROM pending;
SELECT * FROM vec;

-- A's version 4 creates row 2 with a and c, the unknown column first ----------------------------
-- (A inserted row 2 and updated its c in the same transaction, so c has col_version 2.)
-- why: the order inside a version does not matter: the kept c change holds version 4 back
-- even though the a change after it was applied.
BEGIN;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('t', wavesync_pack_columns(2), 'c', 'A-c2', 2, 4, x'000000000000000000000000000000A1', 1, 2, 4),
         ('t', wavesync_pack_columns(2), 'a', 'A-a2', 1, 4, x'000000000000000000000000000000A1', 1, 0, 4);
COMMIT;
SELECT * FROM t ORDER BY id;
SELECT * FROM pending;
SELECT * FROM vec;

-- why: catch-up marks whole runs applied (covering superseded versions); a waiting version
-- stays out: marking 1..5 gives the runs 1..2 and 5..5.
SELECT wavesync_mark_applied(x'000000000000000000000000000000A1', 1, 5) AS marked;
SELECT * FROM vec;
SELECT s.site_id = x'000000000000000000000000000000A1' AS site_a1, v.start, v.last
  FROM wavesync_vector v JOIN wavesync_sites s ON s.ord = v.site_ord ORDER BY v.start;
-- why: a peer offering version 3 again (catch-up keeps offering it while it is missing here)
-- does not add a second copy of the kept change.
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  SELECT tbl, pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_pending;
SELECT count(*) AS pending_after_redelivery FROM wavesync_pending;

-- B migrates: the kept changes are merged ---------------------------------------------------------
-- why: commit_alter merges what was waiting for column c: the values appear in the table,
-- the cells appear in wavesync_changes with A's site id and origin versions, pending is empty,
-- and versions 3 and 4 join A's run (now 1..5).
SELECT wavesync_begin_alter('t');
ALTER TABLE t ADD COLUMN c TEXT;
SELECT wavesync_commit_alter('t');
SELECT * FROM t ORDER BY id;
SELECT * FROM ch ORDER BY pk, cid;
SELECT count(*) AS pending_rows FROM wavesync_pending;
SELECT * FROM vec;
-- why: a kept change at col_version 1 (a plain insert on the peer) is not shadowed by the
-- default clock the new column gets: cells with a kept change get no default clock.
CREATE TABLE u(id INTEGER PRIMARY KEY NOT NULL, a TEXT);
SELECT wavesync_as_crr('u');
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('u', wavesync_pack_columns(1), 'a', 'A-a', 1, 6, x'000000000000000000000000000000A1', 1, 0, 6),
         ('u', wavesync_pack_columns(1), 'c', 'A-c', 1, 6, x'000000000000000000000000000000A1', 1, 1, 6);
SELECT wavesync_begin_alter('u');
ALTER TABLE u ADD COLUMN c TEXT;
SELECT wavesync_commit_alter('u');
SELECT * FROM u;
SELECT cid, val, col_version, hex(substr(site_id, 16)) AS site FROM wavesync_changes WHERE "table" = 'u' ORDER BY cid;

-- A change for an unknown TABLE is refused -----------------------------------------------------------
-- why: unlike an unknown column, an unknown table is an error that names the table and the
-- fix, and changes nothing: no row, no pending change, no new site, no vector entry.
CREATE TEMP TABLE before AS
  SELECT (SELECT count(*) FROM wavesync_pending) AS pending, (SELECT count(*) FROM wavesync_sites) AS sites,
         (SELECT vector FROM vec) AS vector, wavesync_db_version() AS dbv;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('notes', wavesync_pack_columns(1), 'body', 'hello', 1, 6, x'000000000000000000000000000000A2', 1, 0, 6);
SELECT (SELECT pending FROM before) = (SELECT count(*) FROM wavesync_pending) AS same_pending,
       (SELECT sites FROM before) = (SELECT count(*) FROM wavesync_sites) AS same_sites,
       (SELECT vector FROM before) = (SELECT vector FROM vec) AS same_vector,
       (SELECT dbv FROM before) = wavesync_db_version() AS same_dbv;
