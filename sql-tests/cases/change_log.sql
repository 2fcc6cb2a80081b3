.load ./dist/wavesync
.headers on
.mode list
-- change_log.sql: each CRR's change log <table>__wavesync_log(db_version, pk) holds an
-- entry per version a row was written at; reads "since v" walk it from v and skip the
-- entries a later write superseded, so every row shows once, at its newest version.
-- wavesync_prune_log() removes the superseded entries and changes nothing a read returns.
-- Local writes reach the clocks and the log when the journal is folded (a read, a merge,
-- wavesync_fold(): journal.sql), so the log is looked at after a fold.
CREATE TABLE t(id INTEGER PRIMARY KEY NOT NULL, a TEXT, b INTEGER);
CREATE TABLE s(k TEXT PRIMARY KEY NOT NULL, v);
SELECT wavesync_as_crr('t'), wavesync_as_crr('s');
INSERT INTO t VALUES (1, 'one', 1), (2, 'two', 2), (3, 'three', 3);   -- version 1
INSERT INTO s VALUES ('x', 1), ('y', 2);                              -- version 2
UPDATE t SET b = 10 WHERE id = 1;                                     -- version 3
BEGIN;                                                                -- version 4
UPDATE t SET a = 'two!' WHERE id = 2;
UPDATE t SET b = 20 WHERE id = 2;
UPDATE s SET v = 3 WHERE k = 'x';
DELETE FROM t WHERE id = 3;
COMMIT;
SELECT 'folded' AS step, wavesync_fold() AS entries;
SELECT 'log t' AS log, db_version, pk FROM t__wavesync_log;
SELECT 'log s' AS log, db_version, hex(pk) AS pk FROM s__wavesync_log;
CREATE TEMP TABLE before AS SELECT * FROM wavesync_changes;
SELECT "table", quote(pk) AS pk, cid, quote(val) AS val, col_version, db_version FROM wavesync_changes;
SELECT 'since 2' AS read, "table", quote(pk) AS pk, cid, db_version FROM wavesync_changes WHERE db_version > 2;
-- why: no row twice (the superseded entries of rows 1, 2, 3 and 'x' are skipped).
SELECT 'rows read twice' AS check_, count(*) FROM (SELECT "table", pk, cid FROM wavesync_changes GROUP BY 1, 2, 3 HAVING count(*) > 1);

SELECT 'pruned' AS step, wavesync_prune_log() AS removed, wavesync_db_version() AS db_version;
SELECT 'log t' AS log, db_version, pk FROM t__wavesync_log;
SELECT 'log s' AS log, db_version, hex(pk) AS pk FROM s__wavesync_log;
SELECT 'changes differ after pruning' AS check_,
       (SELECT count(*) FROM (SELECT * FROM wavesync_changes EXCEPT SELECT * FROM temp.before))
     + (SELECT count(*) FROM (SELECT * FROM temp.before EXCEPT SELECT * FROM wavesync_changes)) AS n;
SELECT 'again' AS step, wavesync_prune_log() AS removed;

-- The database's version is read from the log: a rolled-back write leaves no entry (and
-- no version behind), pruning never takes the version back.
UPDATE s SET v = 4 WHERE k = 'y';                                     -- version 5
BEGIN;                                                                -- version 6
UPDATE s SET v = 5 WHERE k = 'y';
ROLLBACK;
SELECT 'after a rollback' AS step, wavesync_db_version() AS db_version, wavesync_prune_log() AS removed;
DELETE FROM s WHERE k = 'y';                                          -- version 6
SELECT 'deleted' AS step, wavesync_db_version() AS db_version, wavesync_prune_log() AS removed;
SELECT 'log s' AS log, db_version, hex(pk) AS pk FROM s__wavesync_log;
