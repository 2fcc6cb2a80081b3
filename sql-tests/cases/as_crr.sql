.load ./dist/wavesync
.headers on
.mode list
-- as_crr.sql: which tables wavesync_as_crr accepts, what it creates, and every refusal.

-- why: rows that exist before as_crr are backfilled: each column gets a clock with
-- col_version 1, all at one new db_version, as if inserted now.
CREATE TABLE items(id INTEGER PRIMARY KEY NOT NULL, name TEXT, qty INTEGER DEFAULT 0);
INSERT INTO items VALUES (1, 'apple', 3), (2, 'pear', 5);
SELECT wavesync_as_crr('items') AS first_call;
SELECT "table", hex(pk) AS pk, cid, quote(val) AS val, col_version, db_version, cl, seq,
       site_id = wavesync_site_id() AS local
  FROM wavesync_changes ORDER BY db_version, seq;

-- why: calling it again is fine (idempotent) and records nothing new.
SELECT wavesync_as_crr('items') AS second_call;
SELECT crsql_as_crr('items') AS crsql_alias;
SELECT count(*) AS changes, max(db_version) AS dbv FROM wavesync_changes;

-- why: the table gets three triggers and a clock table (with its db_version index).
SELECT type, name FROM sqlite_master WHERE tbl_name LIKE 'items%' ORDER BY type, name;

-- why: the delete policy can be given as a second argument, and the schema name 'main'
-- as the first of two or three.
CREATE TABLE p1(id INTEGER PRIMARY KEY NOT NULL, v);
CREATE TABLE p2(id INTEGER PRIMARY KEY NOT NULL, v);
CREATE TABLE p3(id INTEGER PRIMARY KEY NOT NULL, v);
CREATE TABLE p4(id INTEGER PRIMARY KEY NOT NULL, v);
SELECT wavesync_as_crr('p1', 'delete_wins') AS policy_arg;
SELECT wavesync_as_crr('main', 'p2') AS schema_arg;
SELECT wavesync_as_crr('main', 'p3', 'add_wins') AS schema_and_policy;
SELECT crsql_as_crr('p4', 'ADD_WINS') AS policy_any_case;
SELECT name, delete_policy FROM wavesync_tables ORDER BY name;
-- why: the policy of an existing CRR cannot be changed in place; repeating it is fine.
SELECT wavesync_as_crr('p3', 'add_wins') AS same_policy_again;
SELECT wavesync_as_crr('p3', 'delete_wins');

-- why: an INTEGER PRIMARY KEY without NOT NULL is the rowid alias, which is never NULL.
CREATE TABLE rowid_alias(id INTEGER PRIMARY KEY, v);
SELECT wavesync_as_crr('rowid_alias') AS rowid_alias_ok;
-- why: WITHOUT ROWID tables are accepted (SQLite forces their key NOT NULL).
CREATE TABLE wr(k TEXT PRIMARY KEY, v) WITHOUT ROWID;
SELECT wavesync_as_crr('wr') AS without_rowid_ok;
INSERT INTO wr VALUES ('a', 1);
SELECT hex(pk) AS pk, cid, val FROM wavesync_changes WHERE "table" = 'wr';
-- why: generated columns are computed, so they are not tracked; the table is accepted.
CREATE TABLE gen(id INTEGER PRIMARY KEY NOT NULL, a INTEGER, twice INTEGER GENERATED ALWAYS AS (a * 2));
SELECT wavesync_as_crr('gen') AS generated_ok;
INSERT INTO gen(id, a) VALUES (1, 21);
SELECT cid, val FROM wavesync_changes WHERE "table" = 'gen' ORDER BY seq;
-- why: a NOT NULL column with a DEFAULT is fine (a merge can create the row first).
CREATE TABLE nn_default(id INTEGER PRIMARY KEY NOT NULL, v TEXT NOT NULL DEFAULT '');
SELECT wavesync_as_crr('nn_default') AS not_null_with_default_ok;

-- Refusals: each names the problem and the fix, and creates nothing.
-- why: no such table.
SELECT wavesync_as_crr('nope');
-- why: a view is not a table.
CREATE VIEW v_items AS SELECT * FROM items;
SELECT wavesync_as_crr('v_items');
-- why: without a primary key, replicas cannot tell rows apart.
CREATE TABLE no_pk(a, b);
SELECT wavesync_as_crr('no_pk');
-- why: a nullable key column (TEXT PRIMARY KEY allows NULL in rowid tables).
CREATE TABLE null_pk(pk TEXT PRIMARY KEY, v);
SELECT wavesync_as_crr('null_pk');
-- why: a composite key with a nullable column.
CREATE TABLE null_pk2(a INTEGER NOT NULL, b TEXT, v, PRIMARY KEY (a, b));
SELECT wavesync_as_crr('null_pk2');
-- why: INTEGER in a composite key is not a rowid alias, so it must be NOT NULL too.
CREATE TABLE null_pk3(a INTEGER, b TEXT NOT NULL, PRIMARY KEY (a, b));
SELECT wavesync_as_crr('null_pk3');
-- why: a UNIQUE column constraint.
CREATE TABLE uniq(id INTEGER PRIMARY KEY NOT NULL, email TEXT UNIQUE);
SELECT wavesync_as_crr('uniq');
-- why: a separate CREATE UNIQUE INDEX counts the same.
CREATE TABLE uniq_ix(id INTEGER PRIMARY KEY NOT NULL, email TEXT);
CREATE UNIQUE INDEX uniq_ix_email ON uniq_ix(email);
SELECT wavesync_as_crr('uniq_ix');
-- why: a plain (non-unique) index is fine.
CREATE TABLE plain_ix(id INTEGER PRIMARY KEY NOT NULL, email TEXT);
CREATE INDEX plain_ix_email ON plain_ix(email);
SELECT wavesync_as_crr('plain_ix') AS plain_index_ok;
-- why: a FOREIGN KEY.
CREATE TABLE fk(id INTEGER PRIMARY KEY NOT NULL, item INTEGER REFERENCES items(id));
SELECT wavesync_as_crr('fk');
-- why: NOT NULL without DEFAULT.
CREATE TABLE nn(id INTEGER PRIMARY KEY NOT NULL, v TEXT NOT NULL);
SELECT wavesync_as_crr('nn');
-- why: tables of an ATTACHed database cannot be CRRs (wavesync_changes covers main only).
ATTACH ':memory:' AS other;
CREATE TABLE other.t(id INTEGER PRIMARY KEY NOT NULL, v);
SELECT wavesync_as_crr('other', 't');
SELECT wavesync_as_crr('other', 't', 'delete_wins');
-- why: unknown delete policy (with a schema argument, so the third argument is the policy).
CREATE TABLE pol(id INTEGER PRIMARY KEY NOT NULL, v);
SELECT wavesync_as_crr('main', 'pol', 'last_writer_wins');
-- why: wavesync's own tables, and sqlite's, are internal.
SELECT wavesync_as_crr('wavesync_meta');
SELECT wavesync_as_crr('items__wavesync_clock');
SELECT wavesync_as_crr('sqlite_schema');
-- why: wrong argument counts and types.
SELECT wavesync_as_crr();
SELECT wavesync_as_crr('a', 'b', 'c', 'd');
SELECT wavesync_as_crr(1);
-- why: none of the refused tables became a CRR and none got triggers or a clock table.
SELECT name FROM wavesync_tables ORDER BY name;
SELECT type, name FROM sqlite_master WHERE name LIKE '%\_\_wavesync\_%' ESCAPE '\'
   AND tbl_name NOT IN (SELECT name FROM wavesync_tables)
   AND tbl_name NOT IN (SELECT name || '__wavesync_clock' FROM wavesync_tables)
   AND tbl_name NOT IN (SELECT name || '__wavesync_log' FROM wavesync_tables);
SELECT count(*) AS crr_objects FROM sqlite_master WHERE name LIKE '%\_\_wavesync\_%' ESCAPE '\';

-- wavesync_as_table ------------------------------------------------------------------
-- why: turns a CRR back into a plain table: triggers and clock table are gone, the data stays.
SELECT wavesync_as_table('items') AS as_table;
SELECT type, name FROM sqlite_master WHERE tbl_name LIKE 'items%' ORDER BY type, name;
SELECT * FROM items ORDER BY id;
SELECT count(*) AS items_changes FROM wavesync_changes WHERE "table" = 'items';
-- why: later writes are no longer recorded, and the db_version does not move.
SELECT wavesync_db_version() AS dbv_before;
INSERT INTO items VALUES (3, 'plum', 1);
UPDATE items SET qty = 9 WHERE id = 1;
SELECT count(*) AS items_changes_after_writes FROM wavesync_changes WHERE "table" = 'items';
SELECT wavesync_db_version() AS dbv_after;
-- why: the version never goes back even though the clocks that held it are gone.
INSERT INTO p1 VALUES (1, 'x');
SELECT db_version > 0 AND db_version = wavesync_db_version() AS new_version_is_next FROM wavesync_changes WHERE "table" = 'p1';
-- why: it is a plain table again, so as_table refuses a second time; crsql_as_table is the alias.
SELECT wavesync_as_table('items');
SELECT crsql_as_table('p4') AS crsql_as_table;
-- why: and it can become a CRR again: the current rows are backfilled afresh.
SELECT wavesync_as_crr('items') AS again;
SELECT hex(pk) AS pk, cid, quote(val) AS val, col_version, cl FROM wavesync_changes
 WHERE "table" = 'items' ORDER BY pk, cid;
