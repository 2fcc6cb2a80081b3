-- Delete policies: what happens when one replica deletes a row while another, not having
-- seen the delete, updates it. Two files (a.db deletes, b.db updates), exchanged both ways.
-- `dw` uses delete_wins (the default, cr-sqlite's rule), `aw` uses add_wins.
.headers on
.mode list

.open a.db
.load ./dist/wavesync
CREATE TABLE dw(id INTEGER PRIMARY KEY NOT NULL, title TEXT, done INTEGER DEFAULT 0);
CREATE TABLE aw(id INTEGER PRIMARY KEY NOT NULL, title TEXT, done INTEGER DEFAULT 0);
SELECT wavesync_as_crr('dw');
SELECT wavesync_as_crr('aw', 'add_wins');
INSERT INTO dw VALUES (1, 'shared', 0), (2, 'kept', 0);
INSERT INTO aw VALUES (1, 'shared', 0), (2, 'kept', 0);
ATTACH 'xfer.db' AS x;
CREATE TABLE x.base AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
DETACH x;

-- b.db starts from the same rows.
.open b.db
.load ./dist/wavesync
CREATE TABLE dw(id INTEGER PRIMARY KEY NOT NULL, title TEXT, done INTEGER DEFAULT 0);
CREATE TABLE aw(id INTEGER PRIMARY KEY NOT NULL, title TEXT, done INTEGER DEFAULT 0);
SELECT wavesync_as_crr('dw');
SELECT wavesync_as_crr('aw', 'add_wins');
ATTACH 'xfer.db' AS x;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT * FROM x.base;
DETACH x;
SELECT 'b starts with' AS step, * FROM aw ORDER BY id;

-- Concurrently: a.db deletes row 1, b.db marks it done.
.open a.db
.load ./dist/wavesync
DELETE FROM dw WHERE id = 1;
DELETE FROM aw WHERE id = 1;
ATTACH 'xfer.db' AS x;
CREATE TABLE x.from_a AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes WHERE db_version > 1;
DETACH x;
.open b.db
.load ./dist/wavesync
UPDATE dw SET done = 1 WHERE id = 1;
UPDATE aw SET done = 1 WHERE id = 1;
ATTACH 'xfer.db' AS x;
CREATE TABLE x.from_b AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes WHERE db_version > 1 AND site_id = wavesync_site_id();
-- why: an add_wins delete carries what it observed (a blob in val, cl even); a
-- delete_wins delete is cr-sqlite's plain sentinel (val NULL).
SELECT "table", cid, typeof(val) AS val, cl FROM x.from_a ORDER BY 1;
BEGIN;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT * FROM x.from_a;
COMMIT;
DETACH x;
-- why: delete_wins: the delete beats the concurrent update; add_wins: the update the delete
-- did not see brings the row back, with the updated column and the other columns at their
-- default (the delete removed what it saw: the title).
SELECT 'b after a' AS step, 'dw' AS t, * FROM dw ORDER BY id;
SELECT 'b after a' AS step, 'aw' AS t, * FROM aw ORDER BY id;

.open a.db
.load ./dist/wavesync
ATTACH 'xfer.db' AS x;
BEGIN;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT * FROM x.from_b;
COMMIT;
-- why: the other order gives the same tables.
SELECT 'a after b' AS step, 'dw' AS t, * FROM dw ORDER BY id;
SELECT 'a after b' AS step, 'aw' AS t, * FROM aw ORDER BY id;
CREATE TABLE x.a_final AS SELECT "table", hex(pk) AS pk, cid, quote(val) AS val, col_version, hex(site_id) AS site, cl, seq, origin_version FROM wavesync_changes;
DETACH x;

.open b.db
.load ./dist/wavesync
ATTACH 'xfer.db' AS x;
-- why: and the same changes, clock for clock (db_version aside).
SELECT count(*) AS differing_changes FROM (
  SELECT * FROM (SELECT "table", hex(pk), cid, quote(val), col_version, hex(site_id), cl, seq, origin_version FROM wavesync_changes)
  EXCEPT SELECT * FROM x.a_final
  UNION ALL
  SELECT * FROM x.a_final
  EXCEPT SELECT * FROM (SELECT "table", hex(pk), cid, quote(val), col_version, hex(site_id), cl, seq, origin_version FROM wavesync_changes));

-- why: a delete that saw the update wins under add_wins too, and a later re-insert comes back.
DELETE FROM aw WHERE id = 1;
SELECT 'deleted after seeing the update' AS step, count(*) AS rows_with_id_1 FROM aw WHERE id = 1;
INSERT INTO aw(id, title) VALUES (1, 'again');
SELECT 're-inserted' AS step, * FROM aw WHERE id = 1;
-- why: a malformed observed set is refused.
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('aw', wavesync_pack_columns(2), '-1', x'0105', 2, 9, x'00000000000000000000000000000009', 2, 0, 9);
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('aw', wavesync_pack_columns(2), '-1', NULL, 2, 9, x'00000000000000000000000000000009', 2, 0, 9);
SELECT * FROM aw ORDER BY id;
