.headers on
.mode list
-- upgrade_log.sql: a database made by the build before the change log existed (its clock
-- tables had a db_version index; fixtures/wavesync-index/site_a.db, made by make.sql next to
-- it, holds what that build read back in expected_changes and expected_version; compare.sql
-- there is the comparison, made twice below; fresh_replica.sql there the last step).

-- Opened read-only, the old layout is read as it is, with the same changes in the same order.
.open --readonly fixtures/wavesync-index/site_a.db
.load ./dist/wavesync
SELECT 'read-only' AS step;
.read fixtures/wavesync-index/compare.sql
SELECT type, name FROM sqlite_master WHERE name LIKE '%wavesync_log' OR name LIKE '%wavesync_clock_dbv' ORDER BY name;
VACUUM INTO 'site_a.db';

-- Opened writable, the extension adds the change logs and the journal, drops the indexes
-- and remakes the triggers; what it reads back is unchanged.
.open site_a.db
.load ./dist/wavesync
SELECT type, name FROM sqlite_master WHERE name LIKE '%wavesync_log' OR name LIKE '%wavesync_clock_dbv' ORDER BY name;
SELECT name, sql LIKE '%wavesync_journal%' AS writes_journal FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%__wavesync_upd' ORDER BY name;
SELECT 'upgraded' AS step;
.read fixtures/wavesync-index/compare.sql

-- Writes after the upgrade are recorded and read back as the only changes since.
UPDATE tasks SET done = 1 WHERE id = 1;
INSERT INTO tasks VALUES (7, 'back after the upgrade', 0);
DELETE FROM tags WHERE name = 'green';
UPDATE notes SET body = 'after the upgrade' WHERE a = 3;
SELECT "table", quote(pk) AS pk, cid, quote(val) AS val, col_version, db_version - (SELECT v FROM expected_version) AS after, cl
  FROM wavesync_changes WHERE db_version > (SELECT v FROM expected_version) ORDER BY db_version, "table", pk, cid;

-- A fresh replica that merges everything converges to the same tables.
.read fixtures/wavesync-index/fresh_replica.sql
