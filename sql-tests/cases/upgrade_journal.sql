.headers on
.mode list
-- upgrade_journal.sql: a database made by the build before the journal (its triggers wrote
-- the clock rows and the change log themselves; fixtures/wavesync-log/site_a.db, made by
-- make.sql next to it, holds what that build read back in expected_changes and
-- expected_version; the comparison is fixtures/wavesync-index/compare.sql).

-- Opened read-only: no journal, read as it is.
.open --readonly fixtures/wavesync-log/site_a.db
.load ./dist/wavesync
SELECT 'read-only' AS step;
.read fixtures/wavesync-index/compare.sql
SELECT count(*) AS journal_tables FROM sqlite_master WHERE name = 'wavesync_journal';
VACUUM INTO 'site_a.db';

-- Opened writable: the journal is added and the delete_wins triggers are remade to write
-- it (the add_wins table keeps its triggers); what is read back is unchanged.
.open site_a.db
.load ./dist/wavesync
SELECT count(*) AS journal_tables FROM sqlite_master WHERE name = 'wavesync_journal';
SELECT name, sql LIKE '%wavesync_journal%' AS writes_journal FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%__wavesync_upd' ORDER BY name;
SELECT 'upgraded' AS step;
.read fixtures/wavesync-index/compare.sql

-- Writes after the upgrade go to the journal, then read back as the only changes since,
-- at the versions after the old ones.
UPDATE notes SET body = 'after the upgrade' WHERE a = 3;
UPDATE tasks SET done = 0 WHERE id = 5;
INSERT INTO tasks VALUES (60, 'after the upgrade', 1);
DELETE FROM tags WHERE name = 'green';
INSERT INTO tags VALUES ('red', '#e00');
SELECT 'journal' AS step, count(*) AS entries FROM wavesync_journal;
SELECT "table", quote(pk) AS pk, cid, quote(val) AS val, col_version, db_version - (SELECT v FROM expected_version) AS after, cl, seq
  FROM wavesync_changes WHERE db_version > (SELECT v FROM expected_version) ORDER BY db_version, seq, "table", pk, cid;
SELECT 'journal' AS step, count(*) AS entries FROM wavesync_journal;

-- A fresh replica that merges everything converges to the same tables.
ATTACH 'xfer.db' AS x;
CREATE TABLE x.changes AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
DETACH x;
.open fresh.db
.load ./dist/wavesync
CREATE TABLE tasks (id INTEGER PRIMARY KEY NOT NULL, title TEXT, done INTEGER);
CREATE TABLE tags (name TEXT PRIMARY KEY NOT NULL, color TEXT);
CREATE TABLE notes (a INTEGER NOT NULL, b TEXT NOT NULL, body, PRIMARY KEY (a, b));
SELECT wavesync_as_crr('tasks'), wavesync_as_crr('tags'), wavesync_as_crr('notes', 'add_wins');
ATTACH 'xfer.db' AS x;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  SELECT * FROM x.changes;
ATTACH 'site_a.db' AS a;
SELECT 'fresh replica' AS step,
       (SELECT count(*) FROM (SELECT * FROM tasks EXCEPT SELECT * FROM a.tasks)) + (SELECT count(*) FROM (SELECT * FROM a.tasks EXCEPT SELECT * FROM tasks)) AS tasks_differ,
       (SELECT count(*) FROM (SELECT * FROM tags EXCEPT SELECT * FROM a.tags)) + (SELECT count(*) FROM (SELECT * FROM a.tags EXCEPT SELECT * FROM tags)) AS tags_differ,
       (SELECT count(*) FROM (SELECT * FROM notes EXCEPT SELECT * FROM a.notes)) + (SELECT count(*) FROM (SELECT * FROM a.notes EXCEPT SELECT * FROM notes)) AS notes_differ,
       (SELECT count(*) FROM tasks) AS tasks, (SELECT count(*) FROM tags) AS tags, (SELECT count(*) FROM notes) AS notes;
