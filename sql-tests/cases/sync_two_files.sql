-- sync_two_files.sql: two replicas (a.db, b.db) synced in plain SQL through a third file
-- (xfer.db), like sql-tests/demo.sh. `.open` closes the current database and opens another,
-- so the extension is loaded again after each one.
.headers on
.mode list

-- Round 1: each side writes on its own ------------------------------------------------------
.open a.db
.load ./dist/wavesync
CREATE TABLE tasks(id INTEGER PRIMARY KEY NOT NULL, title TEXT, done INTEGER DEFAULT 0);
SELECT wavesync_as_crr('tasks');
INSERT INTO tasks(id, title) VALUES (1, 'Buy milk'), (2, 'Walk the dog');
UPDATE tasks SET done = 1 WHERE id = 2;

.open b.db
.load ./dist/wavesync
CREATE TABLE tasks(id INTEGER PRIMARY KEY NOT NULL, title TEXT, done INTEGER DEFAULT 0);
SELECT wavesync_as_crr('tasks');
-- why: b also creates task 1 (a conflict with a's row 1) and then renames it, so b's title
-- has col_version 2 and must win on both sides. Its done = 1 and a's done = 0 both have
-- col_version 1: the larger value (1) must win on both sides. (Values differ on purpose:
-- with equal values the larger site id would take the clock, and site ids are random.)
INSERT INTO tasks(id, title, done) VALUES (1, 'Buy bread', 1), (3, 'Call mom', 0);
UPDATE tasks SET title = 'Buy oat milk' WHERE id = 1;
-- why: the two sites differ (compared through xfer.db below).
ATTACH 'xfer.db' AS x;
CREATE TABLE x.sites(name TEXT PRIMARY KEY, site_id BLOB);
INSERT INTO x.sites VALUES ('b', wavesync_site_id());
DETACH x;

-- a exports everything (with the hidden origin_version column) ------------------------------
.open a.db
.load ./dist/wavesync
ATTACH 'xfer.db' AS x;
INSERT INTO x.sites VALUES ('a', wavesync_site_id());
SELECT count(DISTINCT site_id) AS distinct_sites, min(length(site_id)) AS len FROM x.sites;
CREATE TABLE x.from_a AS
  SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
SELECT count(*) AS rows_from_a FROM x.from_a;
DETACH x;

-- b merges a's changes in one transaction, then exports everything it holds -----------------
.open b.db
.load ./dist/wavesync
ATTACH 'xfer.db' AS x;
BEGIN;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  SELECT * FROM x.from_a;
SELECT wavesync_rows_impacted() AS b_impacted;
COMMIT;
-- why: remember how far b has seen a (a's db_version numbers), for round 2.
CREATE TABLE x.seen(who TEXT PRIMARY KEY, upto INTEGER);
INSERT INTO x.seen SELECT 'b_has_a', max(db_version) FROM x.from_a;
CREATE TABLE x.from_b AS
  SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
SELECT count(*) AS rows_from_b FROM x.from_b;
SELECT * FROM tasks ORDER BY id;
DETACH x;

-- a merges b's changes (they include a's own changes, which come back as no-ops) -----------
.open a.db
.load ./dist/wavesync
ATTACH 'xfer.db' AS x;
BEGIN;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  SELECT * FROM x.from_b;
SELECT wavesync_rows_impacted() AS a_impacted;
COMMIT;
INSERT INTO x.seen SELECT 'a_has_b', max(db_version) FROM x.from_b;
SELECT * FROM tasks ORDER BY id;
DETACH x;

-- Compare: b exports its final changes, a compares tables and changes -----------------------
.open b.db
.load ./dist/wavesync
ATTACH 'xfer.db' AS x;
CREATE TABLE x.final_b AS
  SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
DETACH x;
.open a.db
.load ./dist/wavesync
ATTACH 'xfer.db' AS x;
ATTACH 'b.db' AS b;
-- why: identical tables (EXCEPT both ways is empty).
SELECT (SELECT count(*) FROM (SELECT * FROM tasks EXCEPT SELECT * FROM b.tasks)) AS only_in_a,
       (SELECT count(*) FROM (SELECT * FROM b.tasks EXCEPT SELECT * FROM tasks)) AS only_in_b;
-- why: identical changes, clocks and origins included; only the local db_version may differ.
SELECT (SELECT count(*) FROM (SELECT "table", pk, cid, val, col_version, site_id, cl, seq, origin_version FROM wavesync_changes
                              EXCEPT SELECT "table", pk, cid, val, col_version, site_id, cl, seq, origin_version FROM x.final_b)) AS changes_only_in_a,
       (SELECT count(*) FROM (SELECT "table", pk, cid, val, col_version, site_id, cl, seq, origin_version FROM x.final_b
                              EXCEPT SELECT "table", pk, cid, val, col_version, site_id, cl, seq, origin_version FROM wavesync_changes)) AS changes_only_in_b,
       (SELECT count(*) FROM wavesync_changes) AS changes_in_a, (SELECT count(*) FROM x.final_b) AS changes_in_b;
-- The changes, with sites named.
SELECT hex(c.pk) AS pk, c.cid, quote(c.val) AS val, c.col_version, s.name AS site, c.cl, c.seq, c.origin_version
  FROM wavesync_changes c JOIN x.sites s ON s.site_id = c.site_id ORDER BY c.pk, c.cid;
DETACH b;
DETACH x;

-- Round 2: incremental sync, the cr-sqlite way ----------------------------------------------
-- Each side sends only `WHERE db_version > <what the peer has seen of me> AND site_id IS NOT
-- <the peer's site>` (the peer's own changes need not travel back).
-- a: reopen task 1 (done = 0 at col_version 2), delete task 3.
UPDATE tasks SET done = 0 WHERE id = 1;
DELETE FROM tasks WHERE id = 3;
.open b.db
.load ./dist/wavesync
-- b: add task 4, and rename task 3 (concurrently with a's delete: the delete wins).
INSERT INTO tasks(id, title) VALUES (4, 'Read a book');
UPDATE tasks SET title = 'Call dad' WHERE id = 3;
ATTACH 'xfer.db' AS x;
CREATE TABLE x.from_b2 AS
  SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes
   WHERE db_version > (SELECT upto FROM x.seen WHERE who = 'a_has_b')
     AND site_id IS NOT (SELECT site_id FROM x.sites WHERE name = 'a');
SELECT hex(pk) AS pk, cid, quote(val) AS val, col_version, cl FROM x.from_b2 ORDER BY pk, cid;
DETACH x;
.open a.db
.load ./dist/wavesync
ATTACH 'xfer.db' AS x;
CREATE TABLE x.from_a2 AS
  SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes
   WHERE db_version > (SELECT upto FROM x.seen WHERE who = 'b_has_a')
     AND site_id IS NOT (SELECT site_id FROM x.sites WHERE name = 'b');
SELECT hex(pk) AS pk, cid, quote(val) AS val, col_version, cl FROM x.from_a2 ORDER BY pk, cid;
BEGIN;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  SELECT * FROM x.from_b2;
COMMIT;
SELECT * FROM tasks ORDER BY id;
DETACH x;
.open b.db
.load ./dist/wavesync
ATTACH 'xfer.db' AS x;
BEGIN;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  SELECT * FROM x.from_a2;
COMMIT;
SELECT * FROM tasks ORDER BY id;
CREATE TABLE x.final_b2 AS
  SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
DETACH x;
.open a.db
.load ./dist/wavesync
ATTACH 'xfer.db' AS x;
ATTACH 'b.db' AS b;
SELECT (SELECT count(*) FROM (SELECT * FROM tasks EXCEPT SELECT * FROM b.tasks)) AS only_in_a,
       (SELECT count(*) FROM (SELECT * FROM b.tasks EXCEPT SELECT * FROM tasks)) AS only_in_b;
SELECT (SELECT count(*) FROM (SELECT "table", pk, cid, val, col_version, site_id, cl, seq, origin_version FROM wavesync_changes
                              EXCEPT SELECT "table", pk, cid, val, col_version, site_id, cl, seq, origin_version FROM x.final_b2)) AS changes_only_in_a,
       (SELECT count(*) FROM (SELECT "table", pk, cid, val, col_version, site_id, cl, seq, origin_version FROM x.final_b2
                              EXCEPT SELECT "table", pk, cid, val, col_version, site_id, cl, seq, origin_version FROM wavesync_changes)) AS changes_only_in_b;
SELECT hex(c.pk) AS pk, c.cid, quote(c.val) AS val, c.col_version, s.name AS site, c.cl, c.seq, c.origin_version
  FROM wavesync_changes c JOIN x.sites s ON s.site_id = c.site_id ORDER BY c.pk, c.cid;
