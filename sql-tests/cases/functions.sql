.load ./dist/wavesync
.headers on
.mode list
-- functions.sql: the scalar functions of the extension and their cr-sqlite (crsql_*) names.

-- why: the site id identifies this replica: a 16-byte blob, created once and stable.
SELECT typeof(wavesync_site_id()) AS type, length(wavesync_site_id()) AS len,
       wavesync_site_id() = wavesync_site_id() AS stable,
       wavesync_site_id() = crsql_site_id() AS same_as_crsql;

-- why: a fresh database has written nothing: db_version 0 under both names.
SELECT wavesync_db_version() AS dbv, crsql_db_version() AS crsql_dbv;

CREATE TABLE t(id INTEGER PRIMARY KEY NOT NULL, a, b);
SELECT wavesync_as_crr('t');
-- why: making an empty table a CRR writes no change, so the version stays 0.
SELECT wavesync_db_version() AS dbv_after_as_crr;

-- why: the first write transaction gets version 1.
INSERT INTO t VALUES (1, 'x', 'y');
SELECT wavesync_db_version() AS dbv_after_first_insert;

-- why: one version per transaction, however many writes it holds.
BEGIN;
INSERT INTO t VALUES (2, 'x', 'y');
UPDATE t SET a = 'z' WHERE id = 1;
INSERT INTO t VALUES (3, 'p', 'q');
COMMIT;
SELECT wavesync_db_version() AS dbv_after_tx;
SELECT db_version, count(*) AS cells, min(seq) AS first_seq, max(seq) AS last_seq
  FROM wavesync_changes GROUP BY db_version ORDER BY db_version;

-- why: next_db_version() is the version the next write will get (current + 1);
-- it does not change the current version.
SELECT wavesync_next_db_version() AS next, crsql_next_db_version() AS crsql_next;
SELECT wavesync_db_version() AS dbv_unchanged;

-- why: inside a transaction next_db_version(v) raises the pending version to v, and the
-- writes of that transaction record it; a smaller v does not lower it.
BEGIN;
SELECT wavesync_next_db_version(10) AS raised;
SELECT wavesync_next_db_version(4) AS not_lowered;
SELECT crsql_next_db_version(10) AS crsql_same;
INSERT INTO t VALUES (4, 'r', 's');
COMMIT;
SELECT wavesync_db_version() AS dbv_after_raise;
SELECT id, (SELECT max(db_version) FROM wavesync_changes c WHERE c.pk = wavesync_pack_columns(t.id)) AS row_dbv
  FROM t ORDER BY id;

-- why: the sync bit is off outside merges; crsql_internal_sync_bit reads the same flag.
SELECT wavesync_internal_sync_bit() AS bit, crsql_internal_sync_bit() AS crsql_bit;
-- why: while the bit is raised the triggers record nothing (this is how merges avoid echo).
SELECT wavesync_internal_sync_bit(1) AS raised_bit;
INSERT INTO t VALUES (5, 'silent', 'write');
DELETE FROM t WHERE id = 5;
SELECT wavesync_internal_sync_bit(0) AS lowered_bit;
SELECT count(*) AS changes_for_row_5 FROM wavesync_changes WHERE pk = wavesync_pack_columns(5);
SELECT wavesync_db_version() AS dbv_still;

-- why: finalize releases cached statements and answers OK (cr-sqlite apps call it before close).
SELECT wavesync_finalize() AS fin, crsql_finalize() AS crsql_fin;

-- why: rows_impacted counts the merged changes that won, within the current transaction,
-- and starts again at 0 in the next one.
BEGIN;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), 'b', 'remote', 5, 1, x'00000000000000000000000000000001', 1, 0);
SELECT wavesync_rows_impacted() AS impacted_1;
-- why: a change that loses (older col_version) does not count.
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), 'b', 'older', 1, 1, x'00000000000000000000000000000001', 1, 1);
SELECT wavesync_rows_impacted() AS impacted_still_1, crsql_rows_impacted() AS crsql_impacted;
COMMIT;
SELECT wavesync_rows_impacted() AS impacted_after_commit;
SELECT id, a, b FROM t ORDER BY id;

-- Version vectors -------------------------------------------------------------------
-- why: the local site's run is 1..current version: the vector blob is byte 1 (format),
-- varint 1 (one site), the 16-byte site id, varint 1 (one run), start 1, length-1.
SELECT wavesync_db_version() AS dbv;
SELECT hex(wavesync_vector()) = '0101' || hex(wavesync_site_id()) || '01' || '01' || '0A' AS local_only_vector;
SELECT replace(wavesync_vector_json(), hex(wavesync_site_id()), 'LOCAL') AS json;

-- why: remote changes that carry origin_version extend that origin's set. Here site ...02
-- sends versions 1, 2 and 5 (3 and 4 never arrive) and site ...03 version 7.
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('t', wavesync_pack_columns(20), 'a', 'r1', 1, 1, x'00000000000000000000000000000002', 1, 0, 1);
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('t', wavesync_pack_columns(21), 'a', 'r2', 1, 2, x'00000000000000000000000000000002', 1, 0, 2);
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('t', wavesync_pack_columns(22), 'a', 'r5', 1, 5, x'00000000000000000000000000000002', 1, 0, 5);
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('t', wavesync_pack_columns(23), 'a', 'r7', 1, 7, x'00000000000000000000000000000003', 1, 0, 7);
-- why: changes without origin_version (cr-sqlite style, 9 columns) leave the vector alone:
-- site ...01 (merged above) does not appear.
SELECT replace(wavesync_vector_json(), hex(wavesync_site_id()), 'LOCAL') AS json_with_gaps;

-- why: an empty vector (format byte 1, zero sites) lacks everything: every run is listed.
SELECT CASE WHEN site_id = wavesync_site_id() THEN 'LOCAL' ELSE hex(site_id) END AS site,
       start_version, end_version
  FROM wavesync_missing(x'0100') ORDER BY site_id = wavesync_site_id(), site_id, start_version;

-- why: the vector round-trips: a replica holding our own vector lacks nothing.
SELECT count(*) AS missing_against_self FROM wavesync_missing(wavesync_vector());
-- why: vector_json(blob) decodes a given vector; the empty one is {}.
SELECT wavesync_vector_json(x'0100') AS empty_json;
-- why: a vector holding only site ...02 versions 1..2 lacks 5 of ...02, all of ...03 and ours.
SELECT CASE WHEN site_id = wavesync_site_id() THEN 'LOCAL' ELSE hex(site_id) END AS site,
       start_version, end_version
  FROM wavesync_missing(x'010100000000000000000000000000000002010101')
  ORDER BY site_id = wavesync_site_id(), site_id, start_version;
SELECT wavesync_vector_json(x'010100000000000000000000000000000002010101') AS decoded;

-- why: mark_applied records versions whose changes were all superseded (nothing to apply):
-- it fills the gap 3..4 of site ...02, which now reads as one run 1..5. It returns the
-- number of versions in the range it was given.
SELECT wavesync_mark_applied(x'00000000000000000000000000000002', 3, 4) AS marked;
SELECT replace(wavesync_vector_json(), hex(wavesync_site_id()), 'LOCAL') AS json_gap_filled;
-- why: marking an already-covered range is harmless (the vector does not change).
SELECT wavesync_mark_applied(x'00000000000000000000000000000002', 2, 3) AS marked_again;
SELECT replace(wavesync_vector_json(), hex(wavesync_site_id()), 'LOCAL') AS json_unchanged;
-- why: marking a site never seen before adds it.
SELECT wavesync_mark_applied(x'00000000000000000000000000000004', 1, 3) AS new_site;
SELECT replace(wavesync_vector_json(), hex(wavesync_site_id()), 'LOCAL') AS json_new_site;

-- why: vector_add(vector, site, start, end) is the vector once a run is applied (what a
-- transport asks with next while it applies pages): runs merge, a new site is added, the
-- database is untouched (it equals what mark_applied makes: the end of this file).
SELECT wavesync_vector_json(wavesync_vector_add(x'010100000000000000000000000000000002010101', x'00000000000000000000000000000002', 3, 4)) AS added_adjacent;
SELECT wavesync_vector_json(wavesync_vector_add(x'010100000000000000000000000000000002010101', x'00000000000000000000000000000002', 5, 9)) AS added_apart;
SELECT wavesync_vector_json(wavesync_vector_add(x'0100', x'00000000000000000000000000000009', 1, 1)) AS added_site;
SELECT wavesync_vector_add(x'02', x'00000000000000000000000000000002', 1, 1);
SELECT wavesync_vector_add(x'0100', x'0002', 1, 1);
SELECT wavesync_vector_add(x'0100', x'00000000000000000000000000000002', 3, 2);
SELECT wavesync_vector_add(x'0100', x'00000000000000000000000000000002', 1, 9223372036854775807);

-- why: bad arguments to mark_applied are refused.
SELECT wavesync_mark_applied(x'0102', 1, 2);
SELECT wavesync_mark_applied(x'00000000000000000000000000000002', 0, 2);
SELECT wavesync_mark_applied(x'00000000000000000000000000000002', 5, 4);
SELECT wavesync_mark_applied(x'00000000000000000000000000000002', '1', 2);

-- why: malformed vector blobs are refused with a message, never misread.
-- (Blobs are written as one x'..' literal: `||` on blobs would make text.)
-- empty blob / unknown format byte 2:
SELECT wavesync_vector_json(x'');
SELECT wavesync_vector_json(x'0200');
-- format byte only; a site count of 1 with only 2 bytes of site id; a site without its run count:
SELECT wavesync_vector_json(x'01');
SELECT wavesync_vector_json(x'01010000');
SELECT wavesync_vector_json(x'010100000000000000000000000000000002');
-- zero sites followed by a stray byte:
SELECT wavesync_vector_json(x'010000');
-- runs out of order (5..7 then 1..2):
SELECT wavesync_vector_json(x'0101000000000000000000000000000000020205020101');
-- the same site twice:
SELECT wavesync_vector_json(x'010200000000000000000000000000000002000000000000000000000000000000000200');
-- a run count larger than the bytes that follow:
SELECT wavesync_vector_json(x'010100000000000000000000000000000002ff01');
-- a varint longer than 64 bits:
SELECT wavesync_vector_json(x'01ffffffffffffffffffff01');
-- not a blob at all:
SELECT wavesync_vector_json('text');
-- wavesync_missing checks its argument the same way, and requires one.
SELECT * FROM wavesync_missing(x'0200');
SELECT * FROM wavesync_missing('text');
SELECT * FROM wavesync_missing;

-- why: vector_add gives the vector mark_applied makes (gaps, new runs and sites alike).
CREATE TEMP TABLE va AS SELECT wavesync_vector_add(wavesync_vector_add(wavesync_vector(),
  x'00000000000000000000000000000002', 7, 8), x'00000000000000000000000000000007', 2, 3) AS v;
SELECT wavesync_mark_applied(x'00000000000000000000000000000002', 7, 8) + wavesync_mark_applied(x'00000000000000000000000000000007', 2, 3) AS marked;
SELECT (SELECT v FROM va) = wavesync_vector() AS same_as_mark_applied;
