'use strict';
// The package with node:sqlite, where this Node has it with loadExtension() (22.13+ / 23.5+).
// bindings/test.sh also runs this file under a Node 22 from the npm registry when the
// machine's Node is older, so the node:sqlite path is tested either way.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { wavesync, syncScenario } = require('./support.js');

let sqlite = null;
try {
  sqlite = require('node:sqlite');
} catch {
  // Node without node:sqlite (v20; v22 before 22.5; or without --experimental-sqlite)
}
const skip =
  sqlite !== null && typeof sqlite.DatabaseSync.prototype.loadExtension === 'function'
    ? false
    : `node:sqlite with loadExtension() is not in Node ${process.version}`;

test('node:sqlite: two databases sync through wavesync_changes and converge', { skip }, (t) => {
  syncScenario(t, {
    open: (file) => wavesync.load(new sqlite.DatabaseSync(file, { allowExtension: true })),
    exec: (db, sql) => db.exec(sql),
    all(db, sql) {
      const stmt = db.prepare(sql);
      stmt.setReadBigInts(true);
      return stmt.all().map((row) => Object.values(row));
    },
    insertAll(db, sql, rows) {
      const stmt = db.prepare(sql);
      db.exec('BEGIN');
      try {
        for (const r of rows) stmt.run(...r);
        db.exec('COMMIT');
      } catch (e) {
        db.exec('ROLLBACK');
        throw e;
      }
    },
  });
});

test('node:sqlite: crsql_* names and load() returning the database', { skip }, () => {
  const db = new sqlite.DatabaseSync(':memory:', { allowExtension: true });
  try {
    assert.equal(wavesync.load(db), db);
    const site = db.prepare('SELECT crsql_site_id() AS s').get().s;
    assert.ok(site instanceof Uint8Array && site.length === 16);
  } finally {
    db.close();
  }
});

test('node:sqlite: clear error without allowExtension', { skip }, () => {
  const db = new sqlite.DatabaseSync(':memory:');
  try {
    assert.throws(() => wavesync.load(db), { message: /allowExtension: true/ });
  } finally {
    db.close();
  }
});
