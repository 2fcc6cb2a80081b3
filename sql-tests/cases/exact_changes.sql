.load ./dist/wavesync
.headers off
.mode list
-- exact_changes.sql: an UPDATE that stores a different value is recorded even where SQL's
-- IS NOT calls the two values equal: under the column's collation ('a' -> 'A' in a NOCASE
-- column), across storage classes (0.0 -> 0 in a column without affinity), and between
-- 0.0 and -0.0 (the sign of a REAL zero). Writing the same value again records nothing.
-- (Found by the convergence property test: a replica that overwrote -0.0 with 0 kept its
-- 0 while every other replica kept -0.0.)
CREATE TABLE v(id INTEGER PRIMARY KEY NOT NULL, x, t TEXT COLLATE NOCASE);
SELECT wavesync_as_crr('v');
INSERT INTO v VALUES (1, 0.0, 'a');
SELECT 'start', wavesync_db_version();
UPDATE v SET x = 0;
SELECT 'REAL 0.0 -> INTEGER 0', wavesync_db_version(), typeof(x) FROM v;
UPDATE v SET t = 'A';
SELECT 'NOCASE a -> A', wavesync_db_version(), t FROM v;
UPDATE v SET x = 0.0;
UPDATE v SET x = ieee754_from_blob(x'8000000000000000');
SELECT '0.0 -> -0.0', wavesync_db_version(), hex(ieee754_to_blob(x)) FROM v;
UPDATE v SET x = ieee754_from_blob(x'0000000000000000');
SELECT '-0.0 -> 0.0', wavesync_db_version(), hex(ieee754_to_blob(x)) FROM v;
UPDATE v SET t = 'A', x = x;
SELECT 'same values again: nothing recorded', wavesync_db_version();
-- A TEXT column (tested with IS NOT ... COLLATE BINARY alone) holds text and blobs: the
-- same bytes as a blob are another value; a number is stored as its text, the same value.
UPDATE v SET t = x'41';
SELECT 'TEXT A -> blob 41', wavesync_db_version(), typeof(t) FROM v;
UPDATE v SET t = '7';
UPDATE v SET t = 7;
SELECT 'TEXT ''7'' -> 7 (stored as ''7''): nothing recorded', wavesync_db_version() - 1, typeof(t) FROM v;
SELECT cid, col_version, db_version FROM wavesync_changes WHERE "table" = 'v' ORDER BY cid;

-- A key that changes only under its collation is a key change (the packed key differs).
CREATE TABLE k(name TEXT PRIMARY KEY COLLATE NOCASE NOT NULL, v);
SELECT wavesync_as_crr('k');
INSERT INTO k VALUES ('a', 1);
UPDATE k SET name = 'A';
SELECT quote(pk), cid, quote(val), cl FROM wavesync_changes WHERE "table" = 'k' ORDER BY cl, cid;

-- A database whose triggers a build before this fix made (their text, below): loading the
-- extension remakes them, and the NOCASE update is recorded.
.open old.db
.load ./dist/wavesync
CREATE TABLE o(id INTEGER PRIMARY KEY NOT NULL, t TEXT COLLATE NOCASE);
SELECT wavesync_as_crr('o');
INSERT INTO o VALUES (1, 'a');
DROP TRIGGER o__wavesync_upd;
CREATE TRIGGER "o__wavesync_upd" AFTER UPDATE ON "o" WHEN wavesync_recording('o') AND (NEW."id" IS OLD."id") AND (NEW."t" IS NOT OLD."t") BEGIN
  SELECT wavesync_after_update('o', NEW."id", OLD."id", NEW."t" IS NOT OLD."t");
END;
UPDATE o SET t = 'A';
SELECT 'old trigger: not recorded', wavesync_db_version();
.open old.db
.load ./dist/wavesync
SELECT 'after loading: trigger remade', sql LIKE '%wavesync_changed(%' FROM sqlite_master WHERE name = 'o__wavesync_upd';
UPDATE o SET t = 'a';
SELECT 'recorded', wavesync_db_version(), quote(val) FROM wavesync_changes WHERE "table" = 'o' AND cid = 't';
