'use strict';
// The package with the real better-sqlite3 (built from source by bindings/test.sh).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const Database = require('better-sqlite3');
const { pkgDir, wavesync, syncScenario } = require('./support.js');

test('getLoadablePath() names the packaged library', () => {
  const file = wavesync.getLoadablePath();
  assert.ok(path.isAbsolute(file), file);
  assert.ok(fs.statSync(file).isFile(), file);
  assert.equal(path.relative(pkgDir, file), path.join('lib', `${process.platform}-${process.arch}`, path.basename(file)));
  assert.equal(wavesync.ENTRY_POINT, 'sqlite3_wavesync_init');
});

test('the packed package holds the library, index.js and index.d.ts, and no tests', { skip: !process.env.WAVESYNC_PACKAGE && 'WAVESYNC_PACKAGE not set' }, () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  assert.equal(manifest.name, 'wavesync');
  for (const f of ['index.js', 'index.d.ts']) assert.ok(fs.existsSync(path.join(pkgDir, f)), f);
  assert.ok(!fs.existsSync(path.join(pkgDir, 'test')), 'tests are not published');
  assert.ok(!fs.existsSync(path.join(pkgDir, 'node_modules')), 'node_modules is not published');
});

test('better-sqlite3: two databases sync through wavesync_changes and converge', (t) => {
  syncScenario(t, {
    open: (file) => wavesync.load(new Database(file)),
    exec: (db, sql) => db.exec(sql),
    // safeIntegers: 64-bit clocks and values survive the round trip exactly.
    all: (db, sql) => db.prepare(sql).raw().safeIntegers().all(),
    insertAll(db, sql, rows) {
      const stmt = db.prepare(sql);
      db.transaction(() => rows.forEach((r) => stmt.run(r)))();
    },
  });
});

test('better-sqlite3: crsql_* names, load() twice, load() returns the database', () => {
  const db = new Database(':memory:');
  try {
    assert.equal(wavesync.load(db), db);
    wavesync.load(db);
    const site = db.prepare('SELECT crsql_site_id() AS s').get().s;
    assert.ok(Buffer.isBuffer(site) && site.length === 16);
    assert.deepEqual(db.prepare('SELECT wavesync_site_id() AS s').get().s, site);
  } finally {
    db.close();
  }
});

test('load() rejects what is not a database, with a clear message', () => {
  assert.throws(() => wavesync.load(undefined), {
    name: 'TypeError',
    message: /better-sqlite3 Database or a node:sqlite DatabaseSync/,
  });
  assert.throws(() => wavesync.load({}), TypeError);
  const callbackStyle = { loadExtension() {}, serialize() {}, parallelize() {} };
  assert.throws(() => wavesync.load(callbackStyle), { message: /getLoadablePath\(\), callback/ });
});

test('ES module import', async () => {
  const mod = await import(pathToFileURL(path.join(pkgDir, 'index.js')).href);
  assert.equal(typeof mod.load, 'function');
  assert.equal(mod.getLoadablePath(), wavesync.getLoadablePath());
});
