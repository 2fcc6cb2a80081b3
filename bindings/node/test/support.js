'use strict';
// Shared by the test files: the package under test and one sync scenario for any driver.
//
// WAVESYNC_PACKAGE names the package directory under test: `make test` (bindings/test.sh
// node) sets it to the contents of the `npm pack` tarball, so the tests check what would be
// published. Without it the source directory is used (run `node scripts/copy-lib.js` first).

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const pkgDir = path.resolve(process.env.WAVESYNC_PACKAGE || path.join(__dirname, '..'));
const wavesync = require(pkgDir);

const CHANGE_COLUMNS = '"table", pk, cid, val, col_version, db_version, site_id, cl, seq';
const CLOCK_COLUMNS = '"table", pk, cid, val, col_version, site_id, cl, seq, origin_version';

function tmpdir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wavesync-node-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// Makes a CRR table on two databases, writes on both (concurrently on one row), syncs both
// ways through wavesync_changes and checks that tables and clocks converge.
//
// A driver adapts one SQLite package: open(file) returns a database with wavesync loaded,
// exec(db, sql) runs SQL, all(db, sql) returns rows as arrays (integers as BigInt), and
// insertAll(db, sql, rows) runs one statement for many rows in one transaction.
function syncScenario(t, driver) {
  const dir = tmpdir(t);
  const a = driver.open(path.join(dir, 'a.db'));
  const b = driver.open(path.join(dir, 'b.db'));
  t.after(() => {
    for (const db of [a, b]) {
      driver.exec(db, 'SELECT wavesync_finalize()');
      db.close();
    }
  });
  for (const db of [a, b]) {
    driver.exec(db, 'CREATE TABLE tasks (id INTEGER PRIMARY KEY NOT NULL, title TEXT, done INTEGER DEFAULT 0)');
    driver.exec(db, "SELECT wavesync_as_crr('tasks')");
  }
  const changes = (db) => driver.all(db, `SELECT ${CHANGE_COLUMNS} FROM wavesync_changes`);
  const merge = (db, rows) =>
    driver.insertAll(db, `INSERT INTO wavesync_changes (${CHANGE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)`, rows);
  const tasks = (db) => driver.all(db, 'SELECT id, title, done FROM tasks ORDER BY id');
  const clocks = (db) => driver.all(db, `SELECT ${CLOCK_COLUMNS} FROM wavesync_changes ORDER BY 1, 2, 3`);

  driver.exec(a, "INSERT INTO tasks (id, title) VALUES (1, 'buy milk'), (2, 'call mum')");
  merge(b, changes(a));
  assert.deepEqual(tasks(b), tasks(a));

  driver.exec(a, "BEGIN; UPDATE tasks SET title = 'buy oat milk' WHERE id = 1; INSERT INTO tasks (id, title) VALUES (3, 'from a'); COMMIT");
  driver.exec(b, "BEGIN; UPDATE tasks SET done = 1 WHERE id = 1; DELETE FROM tasks WHERE id = 2; INSERT INTO tasks (id, title) VALUES (4, 'from b'); COMMIT");
  const fromA = changes(a);
  const fromB = changes(b);
  merge(b, fromA);
  merge(a, fromB);

  const expected = [
    [1n, 'buy oat milk', 1n],
    [3n, 'from a', 0n],
    [4n, 'from b', 0n],
  ];
  assert.deepEqual(tasks(a), expected);
  assert.deepEqual(tasks(b), expected);
  // Same clocks everywhere (db_version is each replica's local counter, so it is left out).
  assert.deepEqual(clocks(a), clocks(b));

  // Merging again changes nothing.
  merge(a, fromB);
  merge(b, fromA);
  assert.deepEqual(tasks(a), expected);
  assert.deepEqual(tasks(b), expected);
}

module.exports = { pkgDir, wavesync, syncScenario };
