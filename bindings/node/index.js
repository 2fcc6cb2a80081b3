'use strict';
// wavesync for Node: load the wavesync SQLite extension into a better-sqlite3 Database or a
// node:sqlite DatabaseSync in one call.
//
//   const Database = require('better-sqlite3');
//   const wavesync = require('wavesync');
//   const db = new Database('app.db');
//   wavesync.load(db);
//   db.prepare("SELECT wavesync_as_crr('tasks')").get();

const fs = require('node:fs');
const path = require('node:path');

/** The extension's entry point (SQLite also derives it from the file name). */
const ENTRY_POINT = 'sqlite3_wavesync_init';

const SUFFIX = { darwin: 'dylib', win32: 'dll' };

/** Where this package keeps the library for a platform: lib/<platform>-<arch>/wavesync.<ext>. */
function libraryFile(platform = process.platform, arch = process.arch) {
  return path.join(__dirname, 'lib', `${platform}-${arch}`, `wavesync.${SUFFIX[platform] || 'so'}`);
}

/** Absolute path of the wavesync extension for this platform (throws if there is none). */
function getLoadablePath() {
  const file = libraryFile();
  if (fs.existsSync(file)) return file;
  let have = [];
  try {
    have = fs.readdirSync(path.join(__dirname, 'lib'));
  } catch {
    // no lib/ at all: a source checkout that was never packed
  }
  throw new Error(
    `wavesync: this package has no build of the extension for ${process.platform}-${process.arch} ` +
      `(it has: ${have.length ? have.join(', ') : 'none'}). ` +
      'Build it from source with `make ext` in the wavesync repository, then `npm pack` (or ' +
      '`node scripts/copy-lib.js`) in bindings/node.',
  );
}

function isNodeSqlite(db) {
  // node:sqlite's DatabaseSync has enableLoadExtension(); better-sqlite3 has no such method
  // (its loadExtension() enables loading for that one call by itself).
  return typeof db.enableLoadExtension === 'function';
}

/**
 * Loads wavesync into `db`, a better-sqlite3 `Database` or a node:sqlite `DatabaseSync`
 * (which must have been opened with `{ allowExtension: true }`). Returns `db`.
 */
function load(db) {
  if (db == null || typeof db.loadExtension !== 'function') {
    throw new TypeError(
      'wavesync.load(db): db must be a better-sqlite3 Database or a node:sqlite DatabaseSync ' +
        '(this object has no loadExtension method)',
    );
  }
  if (typeof db.serialize === 'function' && typeof db.parallelize === 'function') {
    // The callback-style `sqlite3` package: its loadExtension(path, callback) is asynchronous.
    throw new TypeError(
      'wavesync.load(db): the `sqlite3` package is asynchronous; use ' +
        'db.loadExtension(wavesync.getLoadablePath(), callback) with it instead',
    );
  }
  const file = getLoadablePath();
  if (isNodeSqlite(db)) {
    try {
      db.loadExtension(file);
    } catch (err) {
      if (err && err.code === 'ERR_INVALID_STATE') {
        throw new Error(
          'wavesync.load(db): this node:sqlite database does not allow extensions. ' +
            "Open it with `new DatabaseSync(path, { allowExtension: true })` (node:sqlite refuses " +
            'to enable loading later), and do not call enableLoadExtension(false) before load().',
          { cause: err },
        );
      }
      throw err;
    }
  } else {
    db.loadExtension(file, ENTRY_POINT);
  }
  return db;
}

module.exports = { load, getLoadablePath, libraryFile, ENTRY_POINT };
