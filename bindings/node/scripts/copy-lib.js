#!/usr/bin/env node
// Copies the built extension into the package before `npm pack` / `npm publish`:
// $WAVESYNC_LIB, or <repo>/dist/wavesync.so (`make ext`), goes to
// lib/<platform>-<arch>/wavesync.<so|dylib|dll>, where index.js looks for it.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { libraryFile } = require('../index.js');

const src = process.env.WAVESYNC_LIB || path.join(__dirname, '..', '..', '..', 'dist', 'wavesync.so');
if (!fs.existsSync(src)) {
  console.error(`wavesync: the built extension ${src} is missing.\n` +
    'Build it first with `make ext` at the repository root, or point WAVESYNC_LIB at a built wavesync library.');
  process.exit(1);
}
const dst = libraryFile();
fs.mkdirSync(path.dirname(dst), { recursive: true });
fs.copyFileSync(src, `${dst}.tmp`);
fs.renameSync(`${dst}.tmp`, dst);
console.error(`wavesync: packaged ${src} as ${path.relative(path.join(__dirname, '..'), dst)}`);
