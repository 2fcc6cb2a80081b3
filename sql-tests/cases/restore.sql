-- restore.sql: a database replaced under an open connection (the shell's .restore, the
-- backup API) is noticed: this replica's site id, the site ordinals and the db_version
-- are read from the restored file, not remembered from the one it replaced.
.headers on
.mode list
.load ./dist/wavesync
CREATE TABLE t(id INTEGER PRIMARY KEY NOT NULL, a TEXT);
SELECT wavesync_as_crr('t');
CREATE TEMP TABLE before_restore AS SELECT wavesync_site_id() AS own;
INSERT INTO t VALUES (1, 'local');
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)
  VALUES ('t', wavesync_pack_columns(2), 'a', 'from F', 1, 1, x'000000000000000000000000000000F0', 1, 0, 1);
SELECT CASE WHEN site_id = (SELECT own FROM before_restore) THEN 'own id before the restore' ELSE hex(site_id) END AS site,
       "table", hex(pk) AS pk, val, db_version FROM wavesync_changes ORDER BY pk;

-- Another replica: a copy whose own site id is B0, whose ordinal 1 is site C0, and which
-- has written more versions.
VACUUM INTO 'other.db';
ATTACH 'other.db' AS o;
UPDATE o.wavesync_sites SET site_id = x'000000000000000000000000000000B0' WHERE ord = 0;
UPDATE o.wavesync_sites SET site_id = x'000000000000000000000000000000C0' WHERE ord = 1;
-- (the clock rows' newest-version column and the change log only: enough to move the
-- newest version)
UPDATE o.t__wavesync_clock SET db_version = 40;
UPDATE o.t__wavesync_log SET db_version = 40;
DETACH o;

.restore other.db
-- why: each of these would show the replaced database's own id, F0 or 2 if they were cached.
SELECT CASE WHEN wavesync_site_id() = (SELECT own FROM before_restore) THEN 'own id before the restore' ELSE hex(wavesync_site_id()) END
  AS site_after_restore;
SELECT wavesync_db_version() AS db_version_after_restore;
INSERT INTO t VALUES (3, 'written after the restore');
SELECT CASE WHEN site_id = (SELECT own FROM before_restore) THEN 'own id before the restore' ELSE hex(site_id) END AS site,
       "table", hex(pk) AS pk, val, db_version FROM wavesync_changes ORDER BY pk;
