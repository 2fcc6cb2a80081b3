.headers on
.mode list
-- compat_names.sql: an app written for cr-sqlite, using only crsql_* names, the way
-- cr-sqlite's README and its users' code do. Blobs are shown as hex, and site ids as
-- "is this replica's" (they are random). Two replicas a.db and b.db sync through a third
-- file (xfer.db) with cr-sqlite's query: changes WHERE db_version > ? AND site_id IS NOT ?.

-- Site a: make the table a CRR and write -----------------------------------------------------------
.open a.db
.load ./dist/wavesync
CREATE TABLE todo(id INTEGER PRIMARY KEY NOT NULL, title TEXT, done INTEGER DEFAULT 0);
SELECT crsql_as_crr('todo');
-- why: a fresh database is at version 0; the next write will get 1.
SELECT crsql_db_version() AS dbv, crsql_next_db_version() AS next;
-- why: one transaction = one db_version; each written cell gets a seq, in column order.
INSERT INTO todo(id, title, done) VALUES (1, 'Buy milk', 0), (2, 'Walk the dog', 0);
SELECT "table", hex(pk) AS pk, cid, quote(val) AS val, col_version, db_version,
       COALESCE(site_id, crsql_site_id()) = crsql_site_id() AS own_site, cl, seq
  FROM crsql_changes WHERE db_version > 0 ORDER BY db_version, seq;
-- why: an update bumps only the changed column's col_version, at the next db_version.
UPDATE todo SET done = 1 WHERE id = 1;
UPDATE todo SET title = 'Buy oat milk' WHERE id = 1;
-- why: a delete leaves only the sentinel cid '-1' with causal length cl 2 (even = deleted),
-- its col_version equal to cl, and val NULL.
DELETE FROM todo WHERE id = 2;
-- why: several statements in one transaction share one db_version; seq goes on counting
-- within it, and a cell written twice keeps its last seq and col_version 2.
BEGIN;
INSERT INTO todo(id, title) VALUES (3, 'Call mom');
UPDATE todo SET title = 'Call dad' WHERE id = 3;
COMMIT;
SELECT crsql_db_version() AS dbv, crsql_next_db_version() AS next;
-- cr-sqlite's README query (blobs wrapped for display):
SELECT "table", hex(pk) AS pk, cid, quote(val) AS val, col_version, db_version,
       COALESCE(site_id, crsql_site_id()) = crsql_site_id() AS own_site, cl, seq
  FROM crsql_changes WHERE db_version > 0 ORDER BY db_version, seq;
-- why: pk is crsql_pack_columns of the primary key, so apps can join it back to rows.
SELECT hex(crsql_pack_columns(1)) AS pk_1, hex(crsql_pack_columns('t1')) AS pk_t1,
       hex(crsql_pack_columns(1, 'a')) AS pk_1_a;
SELECT t.id, (SELECT group_concat(cid, ',') FROM (SELECT cid FROM crsql_changes c
                  WHERE c."table" = 'todo' AND c.pk = crsql_pack_columns(t.id) ORDER BY cid)) AS cids
  FROM todo t ORDER BY t.id;
-- why: the sync bit is down outside merges.
SELECT crsql_internal_sync_bit() AS sync_bit;
ATTACH 'xfer.db' AS x;
CREATE TABLE x.sites(name TEXT PRIMARY KEY, site_id BLOB);
CREATE TABLE x.seen(who TEXT PRIMARY KEY, upto INTEGER);
INSERT INTO x.sites VALUES ('a', crsql_site_id());
INSERT INTO x.seen VALUES ('b_has_a', 0), ('a_has_b', 0);
DETACH x;
-- why: apps call crsql_finalize() before closing the connection.
SELECT crsql_finalize();

-- Site b: the same schema, its own writes ---------------------------------------------------------
.open b.db
.load ./dist/wavesync
CREATE TABLE todo(id INTEGER PRIMARY KEY NOT NULL, title TEXT, done INTEGER DEFAULT 0);
SELECT crsql_as_crr('todo');
-- why: b edits row 4 twice (title col_version 2) so the conflict-free result is known.
INSERT INTO todo(id, title) VALUES (4, 'Read a book');
UPDATE todo SET title = 'Read two books' WHERE id = 4;
ATTACH 'xfer.db' AS x;
INSERT INTO x.sites VALUES ('b', crsql_site_id());
SELECT count(DISTINCT site_id) AS distinct_sites FROM x.sites;
DETACH x;
SELECT crsql_finalize();

-- Round 1: a -> b ---------------------------------------------------------------------------------------
.open a.db
.load ./dist/wavesync
ATTACH 'xfer.db' AS x;
-- why: what b lacks: a's changes after the version b has seen, without b's own changes.
CREATE TABLE x.a_to_b AS
  SELECT "table", pk, cid, val, col_version, db_version, COALESCE(site_id, crsql_site_id()) AS site_id, cl, seq
    FROM crsql_changes
   WHERE db_version > (SELECT upto FROM x.seen WHERE who = 'b_has_a')
     AND site_id IS NOT (SELECT site_id FROM x.sites WHERE name = 'b');
SELECT count(*) AS sent_a_to_b FROM x.a_to_b;
DETACH x;
SELECT crsql_finalize();
.open b.db
.load ./dist/wavesync
ATTACH 'xfer.db' AS x;
-- why: one transaction per batch; crsql_rows_impacted() counts the changes that won.
BEGIN;
INSERT INTO crsql_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq FROM x.a_to_b;
SELECT crsql_rows_impacted() AS b_impacted;
COMMIT;
UPDATE x.seen SET upto = (SELECT max(db_version) FROM x.a_to_b) WHERE who = 'b_has_a';
SELECT * FROM todo ORDER BY id;
-- why: merged cells keep a's site id, col_version and seq; b stores each at local db_version
-- max(b's next version, the incoming db_version), so b's versions never fall behind a's.
SELECT hex(pk) AS pk, cid, quote(val) AS val, col_version, db_version,
       CASE WHEN site_id = crsql_site_id() THEN 'b' ELSE 'a' END AS site, cl, seq
  FROM crsql_changes ORDER BY pk, cid;
-- Round 1: b -> a
CREATE TABLE x.b_to_a AS
  SELECT "table", pk, cid, val, col_version, db_version, COALESCE(site_id, crsql_site_id()) AS site_id, cl, seq
    FROM crsql_changes
   WHERE db_version > (SELECT upto FROM x.seen WHERE who = 'a_has_b')
     AND site_id IS NOT (SELECT site_id FROM x.sites WHERE name = 'a');
-- why: a's own changes are not sent back to it (site_id IS NOT a).
SELECT count(*) AS sent_b_to_a, count(*) FILTER (WHERE site_id = (SELECT site_id FROM x.sites WHERE name = 'a')) AS echoes
  FROM x.b_to_a;
DETACH x;
SELECT crsql_finalize();
.open a.db
.load ./dist/wavesync
ATTACH 'xfer.db' AS x;
BEGIN;
INSERT INTO crsql_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq FROM x.b_to_a;
SELECT crsql_rows_impacted() AS a_impacted;
COMMIT;
UPDATE x.seen SET upto = (SELECT max(db_version) FROM x.b_to_a) WHERE who = 'a_has_b';
SELECT * FROM todo ORDER BY id;

-- Round 2: concurrent edits, then both directions -----------------------------------------------------
-- why: a finishes task 3 and deletes task 4 ...
UPDATE todo SET done = 1 WHERE id = 3;
DELETE FROM todo WHERE id = 4;
CREATE TABLE x.a_to_b2 AS
  SELECT "table", pk, cid, val, col_version, db_version, COALESCE(site_id, crsql_site_id()) AS site_id, cl, seq
    FROM crsql_changes
   WHERE db_version > (SELECT upto FROM x.seen WHERE who = 'b_has_a')
     AND site_id IS NOT (SELECT site_id FROM x.sites WHERE name = 'b');
SELECT hex(pk) AS pk, cid, quote(val) AS val, col_version, cl FROM x.a_to_b2 ORDER BY pk, cid;
DETACH x;
SELECT crsql_finalize();
.open b.db
.load ./dist/wavesync
-- ... while b renames task 1 (title col_version 3 beats a's 2) and edits task 4, which a deleted
-- concurrently (the delete wins: a larger causal length beats any column edit).
UPDATE todo SET title = 'Buy bread' WHERE id = 1;
UPDATE todo SET done = 1 WHERE id = 4;
ATTACH 'xfer.db' AS x;
CREATE TABLE x.b_to_a2 AS
  SELECT "table", pk, cid, val, col_version, db_version, COALESCE(site_id, crsql_site_id()) AS site_id, cl, seq
    FROM crsql_changes
   WHERE db_version > (SELECT upto FROM x.seen WHERE who = 'a_has_b')
     AND site_id IS NOT (SELECT site_id FROM x.sites WHERE name = 'a');
SELECT hex(pk) AS pk, cid, quote(val) AS val, col_version, cl FROM x.b_to_a2 ORDER BY pk, cid;
BEGIN;
INSERT INTO crsql_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq FROM x.a_to_b2;
SELECT crsql_rows_impacted() AS b_impacted;
COMMIT;
SELECT * FROM todo ORDER BY id;
CREATE TABLE x.final_b AS
  SELECT "table", pk, cid, val, col_version, site_id, cl, seq FROM crsql_changes;
CREATE TABLE x.todo_b AS SELECT * FROM todo;
DETACH x;
SELECT crsql_finalize();
.open a.db
.load ./dist/wavesync
ATTACH 'xfer.db' AS x;
BEGIN;
INSERT INTO crsql_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq FROM x.b_to_a2;
SELECT crsql_rows_impacted() AS a_impacted;
COMMIT;
SELECT * FROM todo ORDER BY id;
-- why: both replicas now hold the same rows and the same changes (all but the local db_version).
SELECT (SELECT count(*) FROM (SELECT * FROM todo EXCEPT SELECT * FROM x.todo_b)) AS only_in_a,
       (SELECT count(*) FROM (SELECT * FROM x.todo_b EXCEPT SELECT * FROM todo)) AS only_in_b;
SELECT (SELECT count(*) FROM (SELECT "table", pk, cid, val, col_version, site_id, cl, seq FROM crsql_changes
                              EXCEPT SELECT * FROM x.final_b)) AS changes_only_in_a,
       (SELECT count(*) FROM (SELECT * FROM x.final_b
                              EXCEPT SELECT "table", pk, cid, val, col_version, site_id, cl, seq FROM crsql_changes)) AS changes_only_in_b;
SELECT hex(c.pk) AS pk, c.cid, quote(c.val) AS val, c.col_version, s.name AS site, c.cl, c.seq
  FROM crsql_changes c JOIN x.sites s ON s.site_id = c.site_id ORDER BY c.pk, c.cid;
DETACH x;

-- Schema change and back to a plain table --------------------------------------------------------------
-- why: crsql_begin_alter / crsql_commit_alter around ALTER TABLE: existing rows get the new
-- column at col_version 1 without a new db_version.
SELECT crsql_db_version() AS dbv_before_alter;
SELECT crsql_begin_alter('todo');
ALTER TABLE todo ADD COLUMN prio INTEGER DEFAULT 0;
SELECT crsql_commit_alter('todo');
SELECT crsql_db_version() AS dbv_after_alter;
UPDATE todo SET prio = 5 WHERE id = 1;
SELECT hex(pk) AS pk, cid, quote(val) AS val, col_version, db_version = crsql_db_version() AS newest
  FROM crsql_changes WHERE cid = 'prio' ORDER BY pk;
-- why: crsql_as_table drops the CRR machinery; the rows stay and crsql_changes is empty.
SELECT crsql_as_table('todo');
SELECT count(*) AS changes FROM crsql_changes;
SELECT count(*) AS clock_objects FROM sqlite_master WHERE name LIKE 'todo\_\_%' ESCAPE '\';
SELECT * FROM todo ORDER BY id;
SELECT crsql_finalize();
