.load ./dist/wavesync
.headers off
.mode list
.open r1.db
.load ./dist/wavesync
-- fractindex.sql: ordered lists (cr-sqlite's crsql_fract_as_ordered) that converge like any
-- other column.
CREATE TABLE todo(id INTEGER PRIMARY KEY NOT NULL, list INTEGER, title TEXT, pos);
SELECT wavesync_as_crr('todo');
SELECT crsql_fract_as_ordered('todo', 'pos', 'list');
-- 1 appends to its list, -1 prepends.
INSERT INTO todo VALUES (1, 1, 'milk', 1);
INSERT INTO todo VALUES (2, 1, 'eggs', 1);
INSERT INTO todo VALUES (3, 1, 'bread', -1);
INSERT INTO todo VALUES (4, 2, 'other list', 1);
SELECT 'appended', group_concat(title, ', ') FROM (SELECT title FROM todo WHERE list = 1 ORDER BY pos, id);
-- Insert after a row through the view; NULL after_id puts it first.
INSERT INTO todo_fractindex (id, list, title, after_id) VALUES (5, 1, 'butter', 1);
INSERT INTO todo_fractindex (id, list, title, after_id) VALUES (6, 1, 'coffee', NULL);
SELECT 'inserted', group_concat(title, ', ') FROM (SELECT title FROM todo WHERE list = 1 ORDER BY pos, id);
-- Move: set after_id on the view; or -1 / 1 on the table.
UPDATE todo_fractindex SET after_id = 2 WHERE id = 6;
UPDATE todo SET pos = -1 WHERE id = 2;
SELECT 'moved', group_concat(title, ', ') FROM (SELECT title FROM todo WHERE list = 1 ORDER BY pos, id);
SELECT 'keys', group_concat(id || '=' || pos, ' ') FROM (SELECT id, pos FROM todo ORDER BY list, pos, id);
SELECT 'other list', group_concat(title || '@' || pos, ', ') FROM todo WHERE list = 2;
DELETE FROM todo_fractindex WHERE id = 5;
SELECT 'deleted', group_concat(title, ', ') FROM (SELECT title FROM todo WHERE list = 1 ORDER BY pos, id);
-- Errors: no such row to put it after; bad keys; bad columns.
INSERT INTO todo_fractindex (id, list, title, after_id) VALUES (7, 1, 'nowhere', 99);
SELECT count(*) AS rows_after_refused FROM todo;
SELECT crsql_fract_key_between('a1', 'a0');
SELECT crsql_fract_key_between('a0', 'a0V'), wavesync_fract_key_between(NULL, NULL), crsql_fract_key_between('Zz', NULL);
SELECT crsql_fract_as_ordered('todo', 'nope');
SELECT crsql_fract_as_ordered('missing', 'pos');
SELECT crsql_fract_as_ordered('todo', 'id');

-- Two replicas move and insert at once and converge after merging each other's changes.
CREATE TABLE out AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
.open r2.db
.load ./dist/wavesync
CREATE TABLE todo(id INTEGER PRIMARY KEY NOT NULL, list INTEGER, title TEXT, pos);
SELECT wavesync_as_crr('todo');
SELECT crsql_fract_as_ordered('todo', 'pos', 'list');
ATTACH 'r1.db' AS r1;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT * FROM r1.out;
SELECT 'r2 got', group_concat(title, ', ') FROM (SELECT title FROM todo WHERE list = 1 ORDER BY pos, id);
-- r2: coffee first; jam after bread.
UPDATE todo SET pos = -1 WHERE id = 6;
INSERT INTO todo_fractindex (id, list, title, after_id) VALUES (8, 1, 'jam', 3);
SELECT 'r2', group_concat(title, ', ') FROM (SELECT title FROM todo WHERE list = 1 ORDER BY pos, id);
CREATE TABLE out AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
DETACH r1;
.open r1.db
.load ./dist/wavesync
-- r1, meanwhile: bread after coffee; tea after bread (the same place as r2's jam).
UPDATE todo_fractindex SET after_id = 6 WHERE id = 3;
INSERT INTO todo_fractindex (id, list, title, after_id) VALUES (9, 1, 'tea', 3);
SELECT 'r1', group_concat(title, ', ') FROM (SELECT title FROM todo WHERE list = 1 ORDER BY pos, id);
DROP TABLE out;
CREATE TABLE out AS SELECT "table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes;
ATTACH 'r2.db' AS r2;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT * FROM r2.out;
SELECT 'r1 merged', group_concat(title, ', ') FROM (SELECT title FROM todo WHERE list = 1 ORDER BY pos, id);
DETACH r2;
.open r2.db
.load ./dist/wavesync
ATTACH 'r1.db' AS r1;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) SELECT * FROM r1.out;
SELECT 'r2 merged', group_concat(title, ', ') FROM (SELECT title FROM todo WHERE list = 1 ORDER BY pos, id);
SELECT 'same rows', (SELECT group_concat(id || ':' || pos, ' ') FROM (SELECT * FROM todo ORDER BY id))
  = (SELECT group_concat(id || ':' || pos, ' ') FROM (SELECT * FROM r1.todo ORDER BY id));
