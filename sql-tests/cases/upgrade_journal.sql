.headers on
.mode list
-- upgrade_journal.sql: a database made by the build before the journal (its triggers wrote
-- the clock rows and the change log themselves; fixtures/wavesync-log/site_a.db, made by
-- make.sql next to it, holds what that build read back in expected_changes and
-- expected_version; the comparison is fixtures/wavesync-index/compare.sql, the last step
-- fresh_replica.sql there).

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
.read fixtures/wavesync-index/fresh_replica.sql
