-- resurrection.sql: a row's values belong to its causal length (incarnation). Replicas that
-- hold the same changes hold the same table, whichever of a history's changes arrived, and
-- a third replica that merges a second one's changes ends with the same table and changes.
-- Origin c1: insert (1, 7); delete; re-insert (1, 8); update to 9. c2 holds the first insert
-- and merges one change of a later state of c1 alone; c3 merges every change of c2.
.load ./dist/wavesync
.headers off
.mode list
.open c1.db
.load ./dist/wavesync
CREATE TABLE foo(a INTEGER PRIMARY KEY NOT NULL, b, c TEXT DEFAULT 'dflt');
SELECT wavesync_as_crr('foo');
ATTACH 'xfer.db' AS x;
CREATE TABLE x.snap AS SELECT 0 AS step, "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes WHERE 0;
CREATE TABLE x.result(scenario TEXT, replica TEXT, tbl TEXT, changes TEXT);
CREATE TABLE x.origin AS SELECT wavesync_site_id() AS site;
INSERT INTO foo VALUES (1, 7, 'seven');
INSERT INTO x.snap SELECT 1, "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
DELETE FROM foo WHERE a = 1;
INSERT INTO x.snap SELECT 2, "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
INSERT INTO foo (a, b) VALUES (1, 8);
INSERT INTO x.snap SELECT 3, "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
UPDATE foo SET b = 9 WHERE a = 1;
INSERT INTO x.snap SELECT 4, "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
SELECT step, cid, quote(val), col_version, cl FROM x.snap ORDER BY step, cid;
DETACH x;

-- step2:-1
.open c2_step2_m1.db
.load ./dist/wavesync
CREATE TABLE foo(a INTEGER PRIMARY KEY NOT NULL, b, c TEXT DEFAULT 'dflt');
SELECT wavesync_as_crr('foo');
ATTACH 'xfer.db' AS x;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM x.snap WHERE step = 1;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM x.snap WHERE step = 2 AND cid = '-1';
INSERT INTO x.result SELECT 'step2:-1', 'c2',
  (SELECT group_concat(quote(a) || ',' || quote(b) || ',' || quote(c), ';') FROM foo),
  (SELECT group_concat(cid || '=' || quote(val) || ' v' || col_version || ' cl' || cl || ' ' || (CASE WHEN site_id = (SELECT site FROM x.origin) THEN 'c1' ELSE hex(site_id) END)
      || ' o' || origin_version || ' s' || seq, ';')
     FROM (SELECT cid, val, col_version, cl, site_id, origin_version, seq FROM wavesync_changes ORDER BY pk, cid));
CREATE TABLE relay AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
.open c3_step2_m1.db
.load ./dist/wavesync
CREATE TABLE foo(a INTEGER PRIMARY KEY NOT NULL, b, c TEXT DEFAULT 'dflt');
SELECT wavesync_as_crr('foo');
ATTACH 'xfer.db' AS x;
ATTACH 'c2_step2_m1.db' AS c2;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM c2.relay;
INSERT INTO x.result SELECT 'step2:-1', 'c3',
  (SELECT group_concat(quote(a) || ',' || quote(b) || ',' || quote(c), ';') FROM foo),
  (SELECT group_concat(cid || '=' || quote(val) || ' v' || col_version || ' cl' || cl || ' ' || (CASE WHEN site_id = (SELECT site FROM x.origin) THEN 'c1' ELSE hex(site_id) END)
      || ' o' || origin_version || ' s' || seq, ';')
     FROM (SELECT cid, val, col_version, cl, site_id, origin_version, seq FROM wavesync_changes ORDER BY pk, cid));

-- step2:b
.open c2_step2_b.db
.load ./dist/wavesync
CREATE TABLE foo(a INTEGER PRIMARY KEY NOT NULL, b, c TEXT DEFAULT 'dflt');
SELECT wavesync_as_crr('foo');
ATTACH 'xfer.db' AS x;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM x.snap WHERE step = 1;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM x.snap WHERE step = 2 AND cid = 'b';
INSERT INTO x.result SELECT 'step2:b', 'c2',
  (SELECT group_concat(quote(a) || ',' || quote(b) || ',' || quote(c), ';') FROM foo),
  (SELECT group_concat(cid || '=' || quote(val) || ' v' || col_version || ' cl' || cl || ' ' || (CASE WHEN site_id = (SELECT site FROM x.origin) THEN 'c1' ELSE hex(site_id) END)
      || ' o' || origin_version || ' s' || seq, ';')
     FROM (SELECT cid, val, col_version, cl, site_id, origin_version, seq FROM wavesync_changes ORDER BY pk, cid));
CREATE TABLE relay AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
.open c3_step2_b.db
.load ./dist/wavesync
CREATE TABLE foo(a INTEGER PRIMARY KEY NOT NULL, b, c TEXT DEFAULT 'dflt');
SELECT wavesync_as_crr('foo');
ATTACH 'xfer.db' AS x;
ATTACH 'c2_step2_b.db' AS c2;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM c2.relay;
INSERT INTO x.result SELECT 'step2:b', 'c3',
  (SELECT group_concat(quote(a) || ',' || quote(b) || ',' || quote(c), ';') FROM foo),
  (SELECT group_concat(cid || '=' || quote(val) || ' v' || col_version || ' cl' || cl || ' ' || (CASE WHEN site_id = (SELECT site FROM x.origin) THEN 'c1' ELSE hex(site_id) END)
      || ' o' || origin_version || ' s' || seq, ';')
     FROM (SELECT cid, val, col_version, cl, site_id, origin_version, seq FROM wavesync_changes ORDER BY pk, cid));

-- step2:c
.open c2_step2_c.db
.load ./dist/wavesync
CREATE TABLE foo(a INTEGER PRIMARY KEY NOT NULL, b, c TEXT DEFAULT 'dflt');
SELECT wavesync_as_crr('foo');
ATTACH 'xfer.db' AS x;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM x.snap WHERE step = 1;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM x.snap WHERE step = 2 AND cid = 'c';
INSERT INTO x.result SELECT 'step2:c', 'c2',
  (SELECT group_concat(quote(a) || ',' || quote(b) || ',' || quote(c), ';') FROM foo),
  (SELECT group_concat(cid || '=' || quote(val) || ' v' || col_version || ' cl' || cl || ' ' || (CASE WHEN site_id = (SELECT site FROM x.origin) THEN 'c1' ELSE hex(site_id) END)
      || ' o' || origin_version || ' s' || seq, ';')
     FROM (SELECT cid, val, col_version, cl, site_id, origin_version, seq FROM wavesync_changes ORDER BY pk, cid));
CREATE TABLE relay AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
.open c3_step2_c.db
.load ./dist/wavesync
CREATE TABLE foo(a INTEGER PRIMARY KEY NOT NULL, b, c TEXT DEFAULT 'dflt');
SELECT wavesync_as_crr('foo');
ATTACH 'xfer.db' AS x;
ATTACH 'c2_step2_c.db' AS c2;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM c2.relay;
INSERT INTO x.result SELECT 'step2:c', 'c3',
  (SELECT group_concat(quote(a) || ',' || quote(b) || ',' || quote(c), ';') FROM foo),
  (SELECT group_concat(cid || '=' || quote(val) || ' v' || col_version || ' cl' || cl || ' ' || (CASE WHEN site_id = (SELECT site FROM x.origin) THEN 'c1' ELSE hex(site_id) END)
      || ' o' || origin_version || ' s' || seq, ';')
     FROM (SELECT cid, val, col_version, cl, site_id, origin_version, seq FROM wavesync_changes ORDER BY pk, cid));

-- step3:-1
.open c2_step3_m1.db
.load ./dist/wavesync
CREATE TABLE foo(a INTEGER PRIMARY KEY NOT NULL, b, c TEXT DEFAULT 'dflt');
SELECT wavesync_as_crr('foo');
ATTACH 'xfer.db' AS x;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM x.snap WHERE step = 1;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM x.snap WHERE step = 3 AND cid = '-1';
INSERT INTO x.result SELECT 'step3:-1', 'c2',
  (SELECT group_concat(quote(a) || ',' || quote(b) || ',' || quote(c), ';') FROM foo),
  (SELECT group_concat(cid || '=' || quote(val) || ' v' || col_version || ' cl' || cl || ' ' || (CASE WHEN site_id = (SELECT site FROM x.origin) THEN 'c1' ELSE hex(site_id) END)
      || ' o' || origin_version || ' s' || seq, ';')
     FROM (SELECT cid, val, col_version, cl, site_id, origin_version, seq FROM wavesync_changes ORDER BY pk, cid));
CREATE TABLE relay AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
.open c3_step3_m1.db
.load ./dist/wavesync
CREATE TABLE foo(a INTEGER PRIMARY KEY NOT NULL, b, c TEXT DEFAULT 'dflt');
SELECT wavesync_as_crr('foo');
ATTACH 'xfer.db' AS x;
ATTACH 'c2_step3_m1.db' AS c2;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM c2.relay;
INSERT INTO x.result SELECT 'step3:-1', 'c3',
  (SELECT group_concat(quote(a) || ',' || quote(b) || ',' || quote(c), ';') FROM foo),
  (SELECT group_concat(cid || '=' || quote(val) || ' v' || col_version || ' cl' || cl || ' ' || (CASE WHEN site_id = (SELECT site FROM x.origin) THEN 'c1' ELSE hex(site_id) END)
      || ' o' || origin_version || ' s' || seq, ';')
     FROM (SELECT cid, val, col_version, cl, site_id, origin_version, seq FROM wavesync_changes ORDER BY pk, cid));

-- step3:b
.open c2_step3_b.db
.load ./dist/wavesync
CREATE TABLE foo(a INTEGER PRIMARY KEY NOT NULL, b, c TEXT DEFAULT 'dflt');
SELECT wavesync_as_crr('foo');
ATTACH 'xfer.db' AS x;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM x.snap WHERE step = 1;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM x.snap WHERE step = 3 AND cid = 'b';
INSERT INTO x.result SELECT 'step3:b', 'c2',
  (SELECT group_concat(quote(a) || ',' || quote(b) || ',' || quote(c), ';') FROM foo),
  (SELECT group_concat(cid || '=' || quote(val) || ' v' || col_version || ' cl' || cl || ' ' || (CASE WHEN site_id = (SELECT site FROM x.origin) THEN 'c1' ELSE hex(site_id) END)
      || ' o' || origin_version || ' s' || seq, ';')
     FROM (SELECT cid, val, col_version, cl, site_id, origin_version, seq FROM wavesync_changes ORDER BY pk, cid));
CREATE TABLE relay AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
.open c3_step3_b.db
.load ./dist/wavesync
CREATE TABLE foo(a INTEGER PRIMARY KEY NOT NULL, b, c TEXT DEFAULT 'dflt');
SELECT wavesync_as_crr('foo');
ATTACH 'xfer.db' AS x;
ATTACH 'c2_step3_b.db' AS c2;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM c2.relay;
INSERT INTO x.result SELECT 'step3:b', 'c3',
  (SELECT group_concat(quote(a) || ',' || quote(b) || ',' || quote(c), ';') FROM foo),
  (SELECT group_concat(cid || '=' || quote(val) || ' v' || col_version || ' cl' || cl || ' ' || (CASE WHEN site_id = (SELECT site FROM x.origin) THEN 'c1' ELSE hex(site_id) END)
      || ' o' || origin_version || ' s' || seq, ';')
     FROM (SELECT cid, val, col_version, cl, site_id, origin_version, seq FROM wavesync_changes ORDER BY pk, cid));

-- step3:c
.open c2_step3_c.db
.load ./dist/wavesync
CREATE TABLE foo(a INTEGER PRIMARY KEY NOT NULL, b, c TEXT DEFAULT 'dflt');
SELECT wavesync_as_crr('foo');
ATTACH 'xfer.db' AS x;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM x.snap WHERE step = 1;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM x.snap WHERE step = 3 AND cid = 'c';
INSERT INTO x.result SELECT 'step3:c', 'c2',
  (SELECT group_concat(quote(a) || ',' || quote(b) || ',' || quote(c), ';') FROM foo),
  (SELECT group_concat(cid || '=' || quote(val) || ' v' || col_version || ' cl' || cl || ' ' || (CASE WHEN site_id = (SELECT site FROM x.origin) THEN 'c1' ELSE hex(site_id) END)
      || ' o' || origin_version || ' s' || seq, ';')
     FROM (SELECT cid, val, col_version, cl, site_id, origin_version, seq FROM wavesync_changes ORDER BY pk, cid));
CREATE TABLE relay AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
.open c3_step3_c.db
.load ./dist/wavesync
CREATE TABLE foo(a INTEGER PRIMARY KEY NOT NULL, b, c TEXT DEFAULT 'dflt');
SELECT wavesync_as_crr('foo');
ATTACH 'xfer.db' AS x;
ATTACH 'c2_step3_c.db' AS c2;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM c2.relay;
INSERT INTO x.result SELECT 'step3:c', 'c3',
  (SELECT group_concat(quote(a) || ',' || quote(b) || ',' || quote(c), ';') FROM foo),
  (SELECT group_concat(cid || '=' || quote(val) || ' v' || col_version || ' cl' || cl || ' ' || (CASE WHEN site_id = (SELECT site FROM x.origin) THEN 'c1' ELSE hex(site_id) END)
      || ' o' || origin_version || ' s' || seq, ';')
     FROM (SELECT cid, val, col_version, cl, site_id, origin_version, seq FROM wavesync_changes ORDER BY pk, cid));

-- step4:-1
.open c2_step4_m1.db
.load ./dist/wavesync
CREATE TABLE foo(a INTEGER PRIMARY KEY NOT NULL, b, c TEXT DEFAULT 'dflt');
SELECT wavesync_as_crr('foo');
ATTACH 'xfer.db' AS x;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM x.snap WHERE step = 1;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM x.snap WHERE step = 4 AND cid = '-1';
INSERT INTO x.result SELECT 'step4:-1', 'c2',
  (SELECT group_concat(quote(a) || ',' || quote(b) || ',' || quote(c), ';') FROM foo),
  (SELECT group_concat(cid || '=' || quote(val) || ' v' || col_version || ' cl' || cl || ' ' || (CASE WHEN site_id = (SELECT site FROM x.origin) THEN 'c1' ELSE hex(site_id) END)
      || ' o' || origin_version || ' s' || seq, ';')
     FROM (SELECT cid, val, col_version, cl, site_id, origin_version, seq FROM wavesync_changes ORDER BY pk, cid));
CREATE TABLE relay AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
.open c3_step4_m1.db
.load ./dist/wavesync
CREATE TABLE foo(a INTEGER PRIMARY KEY NOT NULL, b, c TEXT DEFAULT 'dflt');
SELECT wavesync_as_crr('foo');
ATTACH 'xfer.db' AS x;
ATTACH 'c2_step4_m1.db' AS c2;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM c2.relay;
INSERT INTO x.result SELECT 'step4:-1', 'c3',
  (SELECT group_concat(quote(a) || ',' || quote(b) || ',' || quote(c), ';') FROM foo),
  (SELECT group_concat(cid || '=' || quote(val) || ' v' || col_version || ' cl' || cl || ' ' || (CASE WHEN site_id = (SELECT site FROM x.origin) THEN 'c1' ELSE hex(site_id) END)
      || ' o' || origin_version || ' s' || seq, ';')
     FROM (SELECT cid, val, col_version, cl, site_id, origin_version, seq FROM wavesync_changes ORDER BY pk, cid));

-- step4:b
.open c2_step4_b.db
.load ./dist/wavesync
CREATE TABLE foo(a INTEGER PRIMARY KEY NOT NULL, b, c TEXT DEFAULT 'dflt');
SELECT wavesync_as_crr('foo');
ATTACH 'xfer.db' AS x;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM x.snap WHERE step = 1;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM x.snap WHERE step = 4 AND cid = 'b';
INSERT INTO x.result SELECT 'step4:b', 'c2',
  (SELECT group_concat(quote(a) || ',' || quote(b) || ',' || quote(c), ';') FROM foo),
  (SELECT group_concat(cid || '=' || quote(val) || ' v' || col_version || ' cl' || cl || ' ' || (CASE WHEN site_id = (SELECT site FROM x.origin) THEN 'c1' ELSE hex(site_id) END)
      || ' o' || origin_version || ' s' || seq, ';')
     FROM (SELECT cid, val, col_version, cl, site_id, origin_version, seq FROM wavesync_changes ORDER BY pk, cid));
CREATE TABLE relay AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
.open c3_step4_b.db
.load ./dist/wavesync
CREATE TABLE foo(a INTEGER PRIMARY KEY NOT NULL, b, c TEXT DEFAULT 'dflt');
SELECT wavesync_as_crr('foo');
ATTACH 'xfer.db' AS x;
ATTACH 'c2_step4_b.db' AS c2;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM c2.relay;
INSERT INTO x.result SELECT 'step4:b', 'c3',
  (SELECT group_concat(quote(a) || ',' || quote(b) || ',' || quote(c), ';') FROM foo),
  (SELECT group_concat(cid || '=' || quote(val) || ' v' || col_version || ' cl' || cl || ' ' || (CASE WHEN site_id = (SELECT site FROM x.origin) THEN 'c1' ELSE hex(site_id) END)
      || ' o' || origin_version || ' s' || seq, ';')
     FROM (SELECT cid, val, col_version, cl, site_id, origin_version, seq FROM wavesync_changes ORDER BY pk, cid));

-- step4:c
.open c2_step4_c.db
.load ./dist/wavesync
CREATE TABLE foo(a INTEGER PRIMARY KEY NOT NULL, b, c TEXT DEFAULT 'dflt');
SELECT wavesync_as_crr('foo');
ATTACH 'xfer.db' AS x;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM x.snap WHERE step = 1;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM x.snap WHERE step = 4 AND cid = 'c';
INSERT INTO x.result SELECT 'step4:c', 'c2',
  (SELECT group_concat(quote(a) || ',' || quote(b) || ',' || quote(c), ';') FROM foo),
  (SELECT group_concat(cid || '=' || quote(val) || ' v' || col_version || ' cl' || cl || ' ' || (CASE WHEN site_id = (SELECT site FROM x.origin) THEN 'c1' ELSE hex(site_id) END)
      || ' o' || origin_version || ' s' || seq, ';')
     FROM (SELECT cid, val, col_version, cl, site_id, origin_version, seq FROM wavesync_changes ORDER BY pk, cid));
CREATE TABLE relay AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
.open c3_step4_c.db
.load ./dist/wavesync
CREATE TABLE foo(a INTEGER PRIMARY KEY NOT NULL, b, c TEXT DEFAULT 'dflt');
SELECT wavesync_as_crr('foo');
ATTACH 'xfer.db' AS x;
ATTACH 'c2_step4_c.db' AS c2;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM c2.relay;
INSERT INTO x.result SELECT 'step4:c', 'c3',
  (SELECT group_concat(quote(a) || ',' || quote(b) || ',' || quote(c), ';') FROM foo),
  (SELECT group_concat(cid || '=' || quote(val) || ' v' || col_version || ' cl' || cl || ' ' || (CASE WHEN site_id = (SELECT site FROM x.origin) THEN 'c1' ELSE hex(site_id) END)
      || ' o' || origin_version || ' s' || seq, ';')
     FROM (SELECT cid, val, col_version, cl, site_id, origin_version, seq FROM wavesync_changes ORDER BY pk, cid));

-- step3:all
.open c2_step3_all.db
.load ./dist/wavesync
CREATE TABLE foo(a INTEGER PRIMARY KEY NOT NULL, b, c TEXT DEFAULT 'dflt');
SELECT wavesync_as_crr('foo');
ATTACH 'xfer.db' AS x;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM x.snap WHERE step = 1;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM x.snap WHERE step = 3;
INSERT INTO x.result SELECT 'step3:all', 'c2',
  (SELECT group_concat(quote(a) || ',' || quote(b) || ',' || quote(c), ';') FROM foo),
  (SELECT group_concat(cid || '=' || quote(val) || ' v' || col_version || ' cl' || cl || ' ' || (CASE WHEN site_id = (SELECT site FROM x.origin) THEN 'c1' ELSE hex(site_id) END)
      || ' o' || origin_version || ' s' || seq, ';')
     FROM (SELECT cid, val, col_version, cl, site_id, origin_version, seq FROM wavesync_changes ORDER BY pk, cid));
CREATE TABLE relay AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
.open c3_step3_all.db
.load ./dist/wavesync
CREATE TABLE foo(a INTEGER PRIMARY KEY NOT NULL, b, c TEXT DEFAULT 'dflt');
SELECT wavesync_as_crr('foo');
ATTACH 'xfer.db' AS x;
ATTACH 'c2_step3_all.db' AS c2;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM c2.relay;
INSERT INTO x.result SELECT 'step3:all', 'c3',
  (SELECT group_concat(quote(a) || ',' || quote(b) || ',' || quote(c), ';') FROM foo),
  (SELECT group_concat(cid || '=' || quote(val) || ' v' || col_version || ' cl' || cl || ' ' || (CASE WHEN site_id = (SELECT site FROM x.origin) THEN 'c1' ELSE hex(site_id) END)
      || ' o' || origin_version || ' s' || seq, ';')
     FROM (SELECT cid, val, col_version, cl, site_id, origin_version, seq FROM wavesync_changes ORDER BY pk, cid));

.open xfer.db
-- c2 and c3 hold the same changes (c3 merged all of c2's): same table, same changes.
SELECT c2.scenario, c2.tbl, c2.tbl IS c3.tbl AS same_table, c2.changes IS c3.changes AS same_changes
  FROM result c2 JOIN result c3 ON c2.scenario = c3.scenario AND c2.replica = 'c2' AND c3.replica = 'c3' ORDER BY c2.rowid;
SELECT scenario, changes FROM result WHERE replica = 'c2' ORDER BY rowid;
