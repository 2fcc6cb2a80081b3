.load ./dist/wavesync
.headers off
.mode list
-- value_classes.sql: a change's value in another storage class than the one its column
-- holds (JSON sends the REAL 3.0 as 3 and the TEXT '9' as 9) is compared, stored and
-- reported as SQLite stores it in that column, so every arrival order gives one table.
-- Three origins wrote row 1 of t(k INTEGER PRIMARY KEY NOT NULL, r REAL, s TEXT) at the
-- same col_version; a fourth replica merges their changes in each of the 6 orders.
.open xfer.db
-- val has no declared type (BLOB affinity): it keeps each value in the class a
-- transport delivered it in.
CREATE TABLE ch(origin TEXT, cid TEXT, val, site_id BLOB);
INSERT INTO ch VALUES
  ('A', 'r', 3, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'),      -- the REAL 3.0, sent by JSON as 3
  ('A', 's', 9, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'),      -- the TEXT '9', sent as 9
  ('B', 'r', 2.5, x'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'),
  ('B', 's', '10', x'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'),
  ('C', 'r', 1, x'cccccccccccccccccccccccccccccccc'),      -- the REAL 1.0
  ('C', 's', 8.5, x'cccccccccccccccccccccccccccccccc');    -- the TEXT '8.5'
SELECT origin, cid, typeof(val), quote(val) FROM ch ORDER BY origin, cid;
CREATE TABLE final(arrival TEXT, tbl TEXT, changes TEXT);

-- arrival order ABC
.open r_ABC.db
.load ./dist/wavesync
CREATE TABLE t(k INTEGER PRIMARY KEY NOT NULL, r REAL, s TEXT);
SELECT wavesync_as_crr('t');
ATTACH 'xfer.db' AS x;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  SELECT 't', wavesync_pack_columns(1), cid, val, 1, 1, site_id, 1, 0 FROM x.ch
  ORDER BY CASE origin WHEN 'A' THEN 0 WHEN 'B' THEN 1 WHEN 'C' THEN 2 END, cid;
INSERT INTO x.final SELECT 'ABC',
  (SELECT group_concat(quote(k) || ',' || quote(r) || ',' || quote(s), ';') FROM t),
  (SELECT group_concat(cid || '=' || quote(val) || '@' || hex(site_id), ';') FROM (SELECT * FROM wavesync_changes ORDER BY pk, cid));
DETACH x;
-- arrival order ACB
.open r_ACB.db
.load ./dist/wavesync
CREATE TABLE t(k INTEGER PRIMARY KEY NOT NULL, r REAL, s TEXT);
SELECT wavesync_as_crr('t');
ATTACH 'xfer.db' AS x;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  SELECT 't', wavesync_pack_columns(1), cid, val, 1, 1, site_id, 1, 0 FROM x.ch
  ORDER BY CASE origin WHEN 'A' THEN 0 WHEN 'C' THEN 1 WHEN 'B' THEN 2 END, cid;
INSERT INTO x.final SELECT 'ACB',
  (SELECT group_concat(quote(k) || ',' || quote(r) || ',' || quote(s), ';') FROM t),
  (SELECT group_concat(cid || '=' || quote(val) || '@' || hex(site_id), ';') FROM (SELECT * FROM wavesync_changes ORDER BY pk, cid));
DETACH x;
-- arrival order BAC
.open r_BAC.db
.load ./dist/wavesync
CREATE TABLE t(k INTEGER PRIMARY KEY NOT NULL, r REAL, s TEXT);
SELECT wavesync_as_crr('t');
ATTACH 'xfer.db' AS x;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  SELECT 't', wavesync_pack_columns(1), cid, val, 1, 1, site_id, 1, 0 FROM x.ch
  ORDER BY CASE origin WHEN 'B' THEN 0 WHEN 'A' THEN 1 WHEN 'C' THEN 2 END, cid;
INSERT INTO x.final SELECT 'BAC',
  (SELECT group_concat(quote(k) || ',' || quote(r) || ',' || quote(s), ';') FROM t),
  (SELECT group_concat(cid || '=' || quote(val) || '@' || hex(site_id), ';') FROM (SELECT * FROM wavesync_changes ORDER BY pk, cid));
DETACH x;
-- arrival order BCA
.open r_BCA.db
.load ./dist/wavesync
CREATE TABLE t(k INTEGER PRIMARY KEY NOT NULL, r REAL, s TEXT);
SELECT wavesync_as_crr('t');
ATTACH 'xfer.db' AS x;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  SELECT 't', wavesync_pack_columns(1), cid, val, 1, 1, site_id, 1, 0 FROM x.ch
  ORDER BY CASE origin WHEN 'B' THEN 0 WHEN 'C' THEN 1 WHEN 'A' THEN 2 END, cid;
INSERT INTO x.final SELECT 'BCA',
  (SELECT group_concat(quote(k) || ',' || quote(r) || ',' || quote(s), ';') FROM t),
  (SELECT group_concat(cid || '=' || quote(val) || '@' || hex(site_id), ';') FROM (SELECT * FROM wavesync_changes ORDER BY pk, cid));
DETACH x;
-- arrival order CAB
.open r_CAB.db
.load ./dist/wavesync
CREATE TABLE t(k INTEGER PRIMARY KEY NOT NULL, r REAL, s TEXT);
SELECT wavesync_as_crr('t');
ATTACH 'xfer.db' AS x;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  SELECT 't', wavesync_pack_columns(1), cid, val, 1, 1, site_id, 1, 0 FROM x.ch
  ORDER BY CASE origin WHEN 'C' THEN 0 WHEN 'A' THEN 1 WHEN 'B' THEN 2 END, cid;
INSERT INTO x.final SELECT 'CAB',
  (SELECT group_concat(quote(k) || ',' || quote(r) || ',' || quote(s), ';') FROM t),
  (SELECT group_concat(cid || '=' || quote(val) || '@' || hex(site_id), ';') FROM (SELECT * FROM wavesync_changes ORDER BY pk, cid));
DETACH x;
-- arrival order CBA
.open r_CBA.db
.load ./dist/wavesync
CREATE TABLE t(k INTEGER PRIMARY KEY NOT NULL, r REAL, s TEXT);
SELECT wavesync_as_crr('t');
ATTACH 'xfer.db' AS x;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  SELECT 't', wavesync_pack_columns(1), cid, val, 1, 1, site_id, 1, 0 FROM x.ch
  ORDER BY CASE origin WHEN 'C' THEN 0 WHEN 'B' THEN 1 WHEN 'A' THEN 2 END, cid;
INSERT INTO x.final SELECT 'CBA',
  (SELECT group_concat(quote(k) || ',' || quote(r) || ',' || quote(s), ';') FROM t),
  (SELECT group_concat(cid || '=' || quote(val) || '@' || hex(site_id), ';') FROM (SELECT * FROM wavesync_changes ORDER BY pk, cid));
DETACH x;
.open xfer.db
-- One table and one set of changes over all six orders.
SELECT count(DISTINCT tbl) AS tables, count(DISTINCT changes) AS change_sets FROM final;
SELECT tbl FROM final LIMIT 1;
SELECT changes FROM final LIMIT 1;

-- Keys: '5' and 5.0 in an INTEGER key column name the row 5 (one packed key per row).
.open keys.db
.load ./dist/wavesync
CREATE TABLE ik(k INTEGER PRIMARY KEY NOT NULL, v TEXT);
CREATE TABLE nk(a INTEGER NOT NULL, b TEXT NOT NULL, v TEXT, PRIMARY KEY (a, b));
SELECT wavesync_as_crr('ik'), wavesync_as_crr('nk');
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq) VALUES
  ('ik', wavesync_pack_columns('5'), 'v', 'from text', 1, 1, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, 0),
  ('ik', wavesync_pack_columns(5.0), 'v', 'from real', 2, 2, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, 0),
  ('nk', wavesync_pack_columns('7', 7), 'v', 'text key', 1, 3, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, 0),
  ('nk', wavesync_pack_columns(7, '7'), 'v', 'same key', 2, 4, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, 0);
SELECT 'ik', quote(k), typeof(k), v FROM ik;
SELECT 'nk', quote(a), quote(b), v FROM nk;
SELECT "table", hex(pk), cid, val FROM wavesync_changes ORDER BY 1, 2, 3;
-- A key that is no integer cannot name a row of an INTEGER PRIMARY KEY table.
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq) VALUES
  ('ik', wavesync_pack_columns(5.5), 'v', 'x', 9, 9, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, 0);
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq) VALUES
  ('ik', wavesync_pack_columns('five'), 'v', 'x', 9, 9, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, 0);
SELECT count(*) AS rows_after_refused FROM ik;

-- STRICT tables take what SQLite would convert and refuse the rest, changing nothing.
CREATE TABLE st(k INTEGER PRIMARY KEY NOT NULL, i INTEGER, r REAL, t TEXT, b BLOB, a ANY) STRICT;
SELECT wavesync_as_crr('st');
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq) VALUES
  ('st', wavesync_pack_columns(1), 'i', '42', 1, 5, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, 0),
  ('st', wavesync_pack_columns(1), 'r', 2, 1, 5, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, 1),
  ('st', wavesync_pack_columns(1), 't', 3.5, 1, 5, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, 2),
  ('st', wavesync_pack_columns(1), 'a', '42', 1, 5, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, 3);
SELECT 'st', quote(i), quote(r), quote(t), quote(b), quote(a), typeof(a) FROM st;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq) VALUES
  ('st', wavesync_pack_columns(1), 'i', 'forty-two', 2, 6, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, 0);
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq) VALUES
  ('st', wavesync_pack_columns(1), 'b', 7, 2, 6, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, 0);
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq) VALUES
  ('st', wavesync_pack_columns(1), 'r', 'x', 2, 6, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, 0);
SELECT 'st after refused', quote(i), quote(r), quote(t), quote(b), quote(a) FROM st;
SELECT cid, col_version FROM wavesync_changes WHERE "table" = 'st' ORDER BY cid;
