.load ./dist/wavesync
.headers on
.mode list
-- merge.sql: merging changes from other replicas by INSERTing them into wavesync_changes.
-- Remote site ids are made up: R1 = x'00..01', R2 = x'00..02' (shown as their last byte);
-- this replica's own random site id is shown as 'local'.

CREATE TABLE t(id INTEGER PRIMARY KEY NOT NULL, a, b);
SELECT wavesync_as_crr('t');
CREATE TEMP VIEW ch AS
  SELECT hex(pk) AS pk, cid, quote(val) AS val, col_version, db_version,
         CASE WHEN site_id = wavesync_site_id() THEN 'local' ELSE hex(substr(site_id, 16)) END AS site,
         cl, seq, origin_version
    FROM wavesync_changes;
INSERT INTO t VALUES (1, 'local-a', 'local-b');
SELECT * FROM ch ORDER BY pk, cid;

-- Rule: an unknown row is created -------------------------------------------------------
-- why: the merge writes the base table and keeps the remote clock (site, seq, origin_version);
-- its local db_version is max(next local version = 2, incoming db_version = 5) = 5.
BEGIN;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('t', wavesync_pack_columns(2), 'a', 'r1-a', 1, 5, x'00000000000000000000000000000001', 1, 0, 5);
SELECT wavesync_rows_impacted() AS impacted;
COMMIT;
SELECT * FROM t ORDER BY id;
SELECT * FROM ch WHERE pk = '010902' ORDER BY cid;
SELECT wavesync_db_version() AS dbv;

-- Rule: a larger col_version wins, a smaller one is ignored -----------------------------
-- why: local a of row 1 has col_version 1; R1's col_version 2 wins; then R1's col_version 1 loses.
BEGIN;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), 'a', 'r1-a-v2', 2, 6, x'00000000000000000000000000000001', 1, 0);
SELECT wavesync_rows_impacted() AS impacted_newer;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), 'a', 'zzz-older', 1, 7, x'00000000000000000000000000000001', 1, 0);
SELECT wavesync_rows_impacted() AS impacted_still_1;
COMMIT;
SELECT * FROM t WHERE id = 1;
SELECT * FROM ch WHERE pk = '010901' ORDER BY cid;

-- Rule: equal col_version -> the larger value wins ---------------------------------------
-- Values order by storage class first: INTEGER < REAL < TEXT < BLOB < NULL, then by value.
-- why: 100 (integer) loses to the current 'r1-a-v2' (text) at the same col_version 2.
BEGIN;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), 'a', 100, 2, 8, x'00000000000000000000000000000002', 1, 0);
SELECT wavesync_rows_impacted() AS integer_vs_text;
-- why: 'r1-a-v1' < 'r1-a-v2' (same class, smaller text) loses too.
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), 'a', 'r1-a-v1', 2, 8, x'00000000000000000000000000000002', 1, 0);
SELECT wavesync_rows_impacted() AS smaller_text;
-- why: 'r2-a' > 'r1-a-v2' wins.
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), 'a', 'r2-a', 2, 8, x'00000000000000000000000000000002', 1, 0);
SELECT wavesync_rows_impacted() AS larger_text;
COMMIT;
SELECT id, quote(a) AS a FROM t WHERE id = 1;
-- why: a blob beats text, and NULL beats everything.
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), 'a', x'00', 2, 8, x'00000000000000000000000000000001', 1, 0);
SELECT id, quote(a) AS a FROM t WHERE id = 1;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), 'a', NULL, 2, 8, x'00000000000000000000000000000001', 1, 0);
SELECT id, quote(a) AS a FROM t WHERE id = 1;
-- why: a real beats an integer (row 3 is created by the first change).
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(3), 'b', 100, 1, 1, x'00000000000000000000000000000001', 1, 0);
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(3), 'b', 1.5, 1, 1, x'00000000000000000000000000000001', 1, 0);
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(3), 'b', 2, 1, 1, x'00000000000000000000000000000001', 1, 0);
SELECT id, quote(b) AS b, typeof(b) AS type FROM t WHERE id = 3;

-- Rule: equal value -> the larger site_id takes the metadata ------------------------------
-- why: R2 sends the same value 1.5 at the same col_version: R2 > R1, so the cell's site
-- (and seq, db_version) become R2's while the value stays; every replica then holds
-- identical clocks.
BEGIN;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(3), 'b', 1.5, 1, 1, x'00000000000000000000000000000002', 1, 7);
SELECT wavesync_rows_impacted() AS impacted;
COMMIT;
SELECT * FROM ch WHERE pk = '010903' ORDER BY cid;
-- why: R1 sending it again now loses (R1 < R2).
BEGIN;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(3), 'b', 1.5, 1, 1, x'00000000000000000000000000000001', 1, 0);
SELECT wavesync_rows_impacted() AS impacted_smaller_site;
COMMIT;

-- Rule: a re-delivered identical change is a no-op -----------------------------------------
SELECT wavesync_db_version() AS dbv_before;
BEGIN;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(3), 'b', 1.5, 1, 1, x'00000000000000000000000000000002', 1, 7);
SELECT wavesync_rows_impacted() AS impacted_duplicate;
COMMIT;
SELECT wavesync_db_version() AS dbv_after;
SELECT * FROM ch WHERE pk = '010903' ORDER BY cid;

-- Rule: a delete (cid '-1' with an even cl) removes the row -------------------------------
BEGIN;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(3), '-1', NULL, 2, 20, x'00000000000000000000000000000001', 2, 0);
SELECT wavesync_rows_impacted() AS impacted_delete;
COMMIT;
SELECT id FROM t ORDER BY id;
SELECT * FROM ch WHERE pk = '010903' ORDER BY cid;

-- Rule: an update concurrent with a delete loses (delete wins) -----------------------------
-- why: row 2 is deleted locally (cl 2). R1 then sends an update it made before seeing the
-- delete (cl 1), even with a large col_version: the smaller causal length is ignored.
DELETE FROM t WHERE id = 2;
BEGIN;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(2), 'a', 'concurrent', 9, 21, x'00000000000000000000000000000001', 1, 0);
SELECT wavesync_rows_impacted() AS impacted_concurrent_update;
COMMIT;
SELECT id FROM t ORDER BY id;
SELECT * FROM ch WHERE pk = '010902' ORDER BY cid;
-- why: a column change cannot claim the deleted row's (even) causal length: refused.
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(2), 'a', 'bad', 9, 21, x'00000000000000000000000000000001', 2, 0);

-- Rule: a re-insert with a larger odd cl brings the row back -------------------------------
BEGIN;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(2), '-1', NULL, 3, 22, x'00000000000000000000000000000001', 3, 0),
         ('t', wavesync_pack_columns(2), 'a', 'back', 1, 22, x'00000000000000000000000000000001', 3, 1);
SELECT wavesync_rows_impacted() AS impacted_reinsert;
COMMIT;
SELECT id, quote(a) AS a, quote(b) AS b FROM t ORDER BY id;
SELECT * FROM ch WHERE pk = '010902' ORDER BY cid;

-- Merged writes are not local writes -------------------------------------------------------
-- why: the triggers were silenced during merges: the only cell left with the local site id
-- is row 1's b from the first local INSERT (the local delete of row 2 was superseded by
-- R1's re-insert).
SELECT pk, cid FROM ch WHERE site = 'local' ORDER BY pk, cid;
-- why: a merge moves the version to max(local + 1, incoming db_version):
-- a small incoming db_version gives local + 1 ...
SELECT wavesync_db_version() AS dbv_before;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(4), 'a', 'small', 1, 1, x'00000000000000000000000000000001', 1, 0);
SELECT wavesync_db_version() AS dbv_plus_1;
-- ... a large one is taken as is, and the next local write follows it.
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(5), 'a', 'large', 1, 100, x'00000000000000000000000000000001', 1, 0);
SELECT wavesync_db_version() AS dbv_incoming;
UPDATE t SET b = 'local write' WHERE id = 5;
SELECT wavesync_db_version() AS dbv_local_after;
SELECT * FROM ch WHERE pk IN ('010904', '010905') ORDER BY pk, cid;
-- why: a losing change does not move the version.
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(5), 'a', 'aaa-loses', 1, 500, x'00000000000000000000000000000001', 1, 0);
SELECT wavesync_db_version() AS dbv_unchanged;
-- why: the cr-sqlite name of the table merges too.
INSERT INTO crsql_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(6), 'a', 'via crsql_changes', 1, 1, x'00000000000000000000000000000001', 1, 0);
SELECT id, a FROM t WHERE id = 6;

-- Malformed changes are refused and change nothing -----------------------------------------
-- A fingerprint of the table, the changes, the vector and the known sites, taken before.
CREATE TEMP VIEW fingerprint AS SELECT
  (SELECT group_concat(r, ' ') FROM (SELECT id || '=' || quote(a) || ',' || quote(b) AS r FROM t ORDER BY id)) AS t_rows,
  (SELECT group_concat(r, ' ') FROM (SELECT pk || cid || val || col_version || '.' || db_version || '.' || site || cl || '.' || seq AS r
                                       FROM ch ORDER BY pk, cid)) AS changes,
  wavesync_vector_json() AS vector,
  (SELECT group_concat(hex(site_id)) FROM wavesync_sites) AS sites,
  wavesync_db_version() AS dbv;
CREATE TEMP TABLE before AS SELECT * FROM fingerprint;
SELECT t_rows FROM before;
-- unknown table; an empty column name; a cid that is neither text nor -1:
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('nope', wavesync_pack_columns(1), 'a', 'x', 1, 1, x'00000000000000000000000000000003', 1, 0);
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), '', 'x', 1, 1, x'00000000000000000000000000000003', 1, 0);
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), 2, 'x', 1, 1, x'00000000000000000000000000000003', 1, 0);
-- pk: truncated (text of length 5 with 3 bytes), two columns for a one-column key, not a blob,
-- a NULL key value, an unknown type byte, trailing bytes:
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', x'010B05616263', 'a', 'x', 1, 1, x'00000000000000000000000000000003', 1, 0);
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1, 2), 'a', 'x', 1, 1, x'00000000000000000000000000000003', 1, 0);
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', 1, 'a', 'x', 1, 1, x'00000000000000000000000000000003', 1, 0);
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(NULL), 'a', 'x', 1, 1, x'00000000000000000000000000000003', 1, 0);
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', x'010701', 'a', 'x', 1, 1, x'00000000000000000000000000000003', 1, 0);
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', x'01090100', 'a', 'x', 1, 1, x'00000000000000000000000000000003', 1, 0);
-- text in col_version; a real col_version; negative db_version; cl 0; negative seq:
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), 'a', 'x', 'high', 1, x'00000000000000000000000000000003', 1, 0);
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), 'a', 'x', 2.5, 1, x'00000000000000000000000000000003', 1, 0);
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), 'a', 'x', 1, -1, x'00000000000000000000000000000003', 1, 0);
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), 'a', 'x', 1, 1, x'00000000000000000000000000000003', 0, 0);
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), 'a', 'x', 1, 1, x'00000000000000000000000000000003', 1, -1);
-- site_id of the wrong length; NULL site_id; a negative origin_version:
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), 'a', 'x', 1, 1, x'0003', 1, 0);
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), 'a', 'x', 1, 1, NULL, 1, 0);
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('t', wavesync_pack_columns(1), 'a', 'x', 1, 1, x'00000000000000000000000000000003', 1, 0, -5);
-- versions past 2^62 (local writes add to them; i64::MAX used to wrap the next version
-- around to a negative one): db_version, origin_version, col_version, cl:
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), 'a', 'x', 1, 9223372036854775807, x'00000000000000000000000000000003', 1, 0);
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('t', wavesync_pack_columns(1), 'a', 'x', 1, 1, x'00000000000000000000000000000003', 1, 0, 4611686018427387905);
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), 'a', 'x', 9223372036854775807, 1, x'00000000000000000000000000000003', 1, 0);
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), 'a', 'x', 1, 1, x'00000000000000000000000000000003', 9223372036854775807, 0);
SELECT wavesync_mark_applied(x'00000000000000000000000000000003', 1, 9223372036854775807);
-- a change without the required columns:
INSERT INTO wavesync_changes("table", pk, cid) VALUES ('t', wavesync_pack_columns(1), 'a');
-- UPDATE and DELETE are not merges:
UPDATE wavesync_changes SET val = 'x';
DELETE FROM wavesync_changes;
SELECT (SELECT t_rows FROM before) = t_rows AS same_table, (SELECT changes FROM before) = changes AS same_changes,
       (SELECT vector FROM before) = vector AS same_vector, (SELECT sites FROM before) = sites AS same_sites,
       (SELECT dbv FROM before) = dbv AS same_dbv
  FROM fingerprint;

-- An unknown column is not an error: a peer that added the column first (between
-- wavesync_begin_alter/wavesync_commit_alter) may send it before this replica migrates. The
-- change is kept aside, out of the table and out of wavesync_changes.
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), 'zz', 'x', 1, 1, x'00000000000000000000000000000001', 1, 0);
SELECT (SELECT t_rows FROM before) = t_rows AS same_table, (SELECT changes FROM before) = changes AS same_changes
  FROM fingerprint;

-- A failing statement leaves nothing of its earlier rows ------------------------------------
-- why: rows 1 and 2 of this INSERT ... SELECT are valid merges, row 3 is malformed: the
-- whole statement is rolled back (autocommit).
CREATE TEMP TABLE incoming("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version);
INSERT INTO incoming VALUES
  ('t', wavesync_pack_columns(7), 'a', 'seven', 1, 30, x'00000000000000000000000000000001', 1, 0, 30),
  ('t', wavesync_pack_columns(1), 'b', 'overwrite', 9, 30, x'00000000000000000000000000000001', 1, 1, 30),
  ('t', x'010B05616263', 'a', 'truncated pk', 1, 30, x'00000000000000000000000000000001', 1, 2, 30);
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  SELECT * FROM incoming ORDER BY seq;
SELECT (SELECT t_rows FROM before) = t_rows AS same_table, (SELECT changes FROM before) = changes AS same_changes,
       (SELECT vector FROM before) = vector AS same_vector, (SELECT sites FROM before) = sites AS same_sites,
       (SELECT dbv FROM before) = dbv AS same_dbv
  FROM fingerprint;
-- why: the same inside BEGIN..COMMIT: the failed statement is undone, the transaction goes on,
-- and the local write before it and the valid merge after it are committed.
BEGIN;
INSERT INTO t VALUES (10, 'in tx', NULL);
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  SELECT * FROM incoming ORDER BY seq;
SELECT id FROM t WHERE id IN (1, 7, 10) ORDER BY id;
SELECT quote(b) AS b_of_1 FROM t WHERE id = 1;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  SELECT * FROM incoming WHERE seq < 2 ORDER BY seq;
COMMIT;
SELECT id, quote(a) AS a, quote(b) AS b FROM t WHERE id IN (1, 7, 10) ORDER BY id;
SELECT pk, cid, val, col_version, site, cl, seq, origin_version FROM ch WHERE pk IN ('010901', '010907', '01090A') ORDER BY pk, cid;
SELECT replace(wavesync_vector_json(), hex(wavesync_site_id()), 'LOCAL') AS vector;
-- why: when the failed statement inside BEGIN..COMMIT was the first to bring a NEW site id,
-- its row in wavesync_sites is undone with the statement; a later merge from that site
-- registers it again (the clock never points at a missing site).
BEGIN;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
 VALUES ('t', wavesync_pack_columns(21), 'a', 'x', 1, 1, x'000000000000000000000000000000E1', 1, 0, 1),
        ('t', x'010B05616263', 'a', 'y', 1, 1, x'000000000000000000000000000000E1', 1, 1, 1);
COMMIT;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
 VALUES ('t', wavesync_pack_columns(23), 'a', 'z', 1, 2, x'000000000000000000000000000000E1', 1, 0, 2);
SELECT count(*) AS e1_sites FROM wavesync_sites WHERE site_id = x'000000000000000000000000000000E1';
SELECT hex(substr(site_id, 16)) AS site, hex(pk) AS pk, val FROM wavesync_changes WHERE site_id = x'000000000000000000000000000000E1';

-- why: a change at the largest version is merged, and the next local write still gets a
-- larger version that a read "since" finds (it used to wrap around past i64::MAX).
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(77), 'b', 'top', 1, 4611686018427387904, x'000000000000000000000000000000E2', 1, 0);
UPDATE t SET a = 'after top' WHERE id = 77;
SELECT hex(pk) AS pk, cid, val, db_version - 4611686018427387904 AS past_top FROM wavesync_changes
 WHERE db_version >= 4611686018427387904 ORDER BY db_version, seq;

-- The final state, for reference.
SELECT id, quote(a) AS a, quote(b) AS b FROM t ORDER BY id;
SELECT * FROM ch ORDER BY pk, cid;
