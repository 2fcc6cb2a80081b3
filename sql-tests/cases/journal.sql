.open journal.db
.load ./dist/wavesync
.headers on
.mode list
-- journal.sql: the triggers of a delete_wins table append one entry per written row to
-- wavesync_journal (version, first seq, what was written) and leave the clock rows alone;
-- wavesync_fold(), a read of wavesync_changes, a merge, or any write recorded at once folds
-- the entries into the clocks first, with the versions and seqs the writes took then.
CREATE TABLE t(id INTEGER PRIMARY KEY NOT NULL, a TEXT, b INTEGER);
CREATE TABLE k(name TEXT PRIMARY KEY NOT NULL, n INTEGER);
CREATE TABLE w(id INTEGER PRIMARY KEY NOT NULL, x);
SELECT wavesync_as_crr('t'), wavesync_as_crr('k'), wavesync_as_crr('w', 'add_wins');
INSERT INTO t VALUES (1, 'one', 1), (2, 'two', 2);                    -- version 1
UPDATE t SET b = 10 WHERE id = 1;                                     -- version 2
INSERT INTO k VALUES ('x', 1);                                        -- version 3
DELETE FROM t WHERE id = 2;                                           -- version 4
SELECT 'journal' AS step, tbl, quote(pk) AS pk, vs >> 32 AS db_version, vs & 4294967295 AS seq, op FROM wavesync_journal ORDER BY id;
SELECT 'clock rows before the fold' AS step, (SELECT count(*) FROM t__wavesync_clock) AS t, (SELECT count(*) FROM k__wavesync_clock) AS k;
SELECT 'db_version counts the journal' AS step, wavesync_db_version() AS v;

-- A read folds first.
SELECT "table", quote(pk) AS pk, cid, quote(val) AS val, col_version, db_version, cl, seq FROM wavesync_changes;
SELECT 'after the read' AS step, (SELECT count(*) FROM wavesync_journal) AS journal, (SELECT count(*) FROM t__wavesync_clock) AS t_clocks;

-- A re-insert after a delete writes the sentinel too: one seq more than the insert took,
-- and the later writes of the version move with it (folded in a later transaction).
BEGIN;                                                                -- version 5
INSERT INTO t VALUES (2, 'two again', 22);
UPDATE t SET a = 'ONE' WHERE id = 1;
INSERT INTO k VALUES ('y', 2);
COMMIT;
SELECT 'journal' AS step, tbl, quote(pk) AS pk, vs >> 32 AS db_version, vs & 4294967295 AS seq, op FROM wavesync_journal ORDER BY id;
SELECT 'folded' AS step, wavesync_fold() AS entries, wavesync_fold() AS again;
SELECT "table", quote(pk) AS pk, cid, col_version, cl, seq FROM wavesync_changes WHERE db_version = 5;

-- Folded in the middle of a transaction (a read), then more writes, one recorded at once
-- (add_wins) between journaled ones: every seq of the version once, in the order written.
BEGIN;                                                                -- version 6
DELETE FROM t WHERE id = 2;
INSERT INTO t VALUES (2, 'and again', 3);
SELECT 'read inside' AS step, count(*) AS changes FROM wavesync_changes WHERE db_version = 6;
UPDATE t SET b = 11, a = 'One' WHERE id = 1;
INSERT INTO w VALUES (1, 'w');
UPDATE k SET n = 3 WHERE name = 'x';
COMMIT;
SELECT "table", quote(pk) AS pk, cid, col_version, cl, seq FROM wavesync_changes WHERE db_version = 6 ORDER BY seq;
SELECT 'seqs of version 6' AS step, count(*) AS cells, count(DISTINCT seq) AS distinct_seqs, max(seq) AS last FROM wavesync_changes WHERE db_version = 6;

-- A rolled-back transaction and a failed statement leave no entry and no version.
BEGIN;
UPDATE t SET b = 99;
ROLLBACK;
INSERT INTO t VALUES (3, 'three', 3), (1, 'duplicate key', 0);
SELECT 'after rollbacks' AS step, (SELECT count(*) FROM wavesync_journal) AS journal, wavesync_db_version() AS v;

-- A key change is recorded at once, after the row's journaled update is folded.
BEGIN;                                                                -- version 7
UPDATE t SET b = 12 WHERE id = 1;
UPDATE t SET id = 4 WHERE id = 1;
COMMIT;
SELECT "table", quote(pk) AS pk, cid, quote(val) AS val, col_version, cl, seq FROM wavesync_changes WHERE db_version = 7 ORDER BY seq;

-- A merge folds first: the local update (col_version 2) beats a remote one at col_version 1.
UPDATE k SET n = 4 WHERE name = 'y';                                  -- version 8
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('k', wavesync_pack_columns('y'), 'n', 100, 1, 1, x'00000000000000000000000000000001', 1, 0);
SELECT 'merged' AS step, n, (SELECT col_version FROM wavesync_changes WHERE "table" = 'k' AND cid = 'n' AND pk = wavesync_pack_columns('y')) AS col_version FROM k WHERE name = 'y';

-- A fold inside a savepoint that is then rolled back: the entry is back in the journal,
-- and the merge that follows folds it again first. The local write (col_version
-- 3) beats the remote one (col_version 2), whatever its value.
BEGIN;
UPDATE k SET n = 5 WHERE name = 'y';
SAVEPOINT s;
SELECT 'folded in the savepoint' AS step, wavesync_fold() AS entries;
ROLLBACK TO s;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('k', wavesync_pack_columns('y'), 'n', 99, 2, 1, x'00000000000000000000000000000002', 1, 0);
COMMIT;
SELECT 'local write kept' AS step, n, (SELECT col_version FROM wavesync_changes WHERE "table" = 'k' AND cid = 'n' AND pk = wavesync_pack_columns('y')) AS col_version FROM k WHERE name = 'y';

-- An INSERT OR REPLACE over a live row of a key-only table writes no cell: its seq stays a
-- gap, even when a fold that counted it was rolled back and the writes after it fold
-- again (every seq of the version once).
CREATE TABLE kt(k TEXT PRIMARY KEY NOT NULL);
SELECT wavesync_as_crr('kt');
INSERT INTO kt VALUES ('a');
BEGIN;
INSERT OR REPLACE INTO kt VALUES ('a');
INSERT INTO kt VALUES ('b');
SAVEPOINT s2;
SELECT 'folded in the savepoint' AS step, wavesync_fold() AS entries;
ROLLBACK TO s2;
INSERT INTO kt VALUES ('c');
COMMIT;
SELECT 'key-only' AS step, count(*) AS cells, count(DISTINCT seq) AS seqs FROM wavesync_changes
 WHERE db_version = (SELECT max(db_version) FROM wavesync_changes WHERE "table" = 'kt');

-- A table of over 62 tracked columns journals its updates' columns as a blob of bits; a
-- version past 2^31 (a peer's, taken by the Lamport rule) goes in as 16 bytes.
CREATE TABLE wide(id INTEGER PRIMARY KEY NOT NULL, c0 INTEGER, c1 INTEGER, c2 INTEGER, c3 INTEGER, c4 INTEGER, c5 INTEGER, c6 INTEGER, c7 INTEGER, c8 INTEGER, c9 INTEGER, c10 INTEGER, c11 INTEGER, c12 INTEGER, c13 INTEGER, c14 INTEGER, c15 INTEGER, c16 INTEGER, c17 INTEGER, c18 INTEGER, c19 INTEGER, c20 INTEGER, c21 INTEGER, c22 INTEGER, c23 INTEGER, c24 INTEGER, c25 INTEGER, c26 INTEGER, c27 INTEGER, c28 INTEGER, c29 INTEGER, c30 INTEGER, c31 INTEGER, c32 INTEGER, c33 INTEGER, c34 INTEGER, c35 INTEGER, c36 INTEGER, c37 INTEGER, c38 INTEGER, c39 INTEGER, c40 INTEGER, c41 INTEGER, c42 INTEGER, c43 INTEGER, c44 INTEGER, c45 INTEGER, c46 INTEGER, c47 INTEGER, c48 INTEGER, c49 INTEGER, c50 INTEGER, c51 INTEGER, c52 INTEGER, c53 INTEGER, c54 INTEGER, c55 INTEGER, c56 INTEGER, c57 INTEGER, c58 INTEGER, c59 INTEGER, c60 INTEGER, c61 INTEGER, c62 INTEGER, c63 INTEGER, c64 INTEGER, c65 INTEGER, c66 INTEGER, c67 INTEGER, c68 INTEGER, c69 INTEGER);
SELECT wavesync_as_crr('wide');
INSERT INTO wide (id, c0) VALUES (1, 0);
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('k', wavesync_pack_columns('z'), 'n', 1, 1, 4294967296, x'00000000000000000000000000000001', 1, 0);
UPDATE wide SET c3 = 3, c69 = 69 WHERE id = 1;
SELECT 'journal' AS step, tbl, typeof(vs) AS vs, quote(op) AS op FROM wavesync_journal ORDER BY id;
SELECT 'db_version' AS step, wavesync_db_version() AS v;
SELECT cid, col_version, db_version, seq FROM wavesync_changes WHERE "table" = 'wide' AND col_version = 2 ORDER BY seq;

-- A connection that cannot write cannot fold: a read says so and changes nothing.
UPDATE t SET a = 'four' WHERE id = 4;                                 -- version 9
.open --readonly journal.db
.load ./dist/wavesync
SELECT count(*) FROM wavesync_changes;
SELECT 'read-only' AS step, (SELECT count(*) FROM wavesync_journal) AS journal, wavesync_db_version() AS v;
.open journal.db
.load ./dist/wavesync
SELECT 'writable' AS step, count(*) AS changes_since_v FROM wavesync_changes WHERE db_version > 4294967296;
SELECT 'journal' AS step, count(*) AS entries FROM wavesync_journal;
