-- affinity_oracle.sql: a merged value is stored exactly as SQLite stores the same value
-- written to a column of that type: each value goes into a plain table p and, merged, into
-- a CRR q with the same column type; every (type, value) that differs is listed.
.load ./dist/wavesync
.headers on
.mode list
CREATE TABLE vals(i INTEGER PRIMARY KEY, v);
INSERT INTO vals(v) VALUES (3), (-0.0), (3.0), (2.5), (-2.5), ('3'), (' 3 '), ('3.0'), ('1e3'), ('.5'), ('5.'), ('0x10'), ('1e'), ('abc'), (''), (x'33'), (NULL), (9223372036854775807), (-9223372036854775808), ('9223372036854775808'), ('-9223372036854775809'), (1e20), (0.1), (1.5e-7), (123456789012345678.0), ('-0'), ('+7'), ('1e400'), (1e308*10), (-1e308*10), ('  12  '), ('12abc'), ('1.5e+3'), ('1E2'), (9007199254740993.0), ('0.1'), (1e15), (1e16), (100.25), ('	4
'), (0.30000000000000004), (1.0/3);
CREATE TABLE mismatch(type TEXT, i INTEGER, plain TEXT, merged TEXT);
CREATE TABLE p0(k INTEGER PRIMARY KEY NOT NULL, c INTEGER);
CREATE TABLE q0(k INTEGER PRIMARY KEY NOT NULL, c INTEGER);
SELECT wavesync_as_crr('q0') AS 'INTEGER';
INSERT INTO p0 SELECT i, v FROM vals;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  SELECT 'q0', wavesync_pack_columns(i), 'c', v, 1, 1, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, i FROM vals;
INSERT INTO mismatch SELECT 'INTEGER', k, typeof(p.c) || ' ' || quote(p.c), typeof(q.c) || ' ' || quote(q.c)
  FROM p0 p JOIN q0 q USING (k) WHERE typeof(p.c) IS NOT typeof(q.c) OR quote(p.c) IS NOT quote(q.c);
INSERT INTO mismatch SELECT 'INTEGER', k, typeof(q.c) || ' ' || quote(q.c), 'changes: ' || typeof(ch.val) || ' ' || quote(ch.val)
  FROM q0 q JOIN wavesync_changes ch ON ch."table" = 'q0' AND ch.pk = wavesync_pack_columns(q.k)
  WHERE typeof(q.c) IS NOT typeof(ch.val) OR quote(q.c) IS NOT quote(ch.val);
CREATE TABLE p1(k INTEGER PRIMARY KEY NOT NULL, c INT);
CREATE TABLE q1(k INTEGER PRIMARY KEY NOT NULL, c INT);
SELECT wavesync_as_crr('q1') AS 'INT';
INSERT INTO p1 SELECT i, v FROM vals;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  SELECT 'q1', wavesync_pack_columns(i), 'c', v, 1, 1, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, i FROM vals;
INSERT INTO mismatch SELECT 'INT', k, typeof(p.c) || ' ' || quote(p.c), typeof(q.c) || ' ' || quote(q.c)
  FROM p1 p JOIN q1 q USING (k) WHERE typeof(p.c) IS NOT typeof(q.c) OR quote(p.c) IS NOT quote(q.c);
INSERT INTO mismatch SELECT 'INT', k, typeof(q.c) || ' ' || quote(q.c), 'changes: ' || typeof(ch.val) || ' ' || quote(ch.val)
  FROM q1 q JOIN wavesync_changes ch ON ch."table" = 'q1' AND ch.pk = wavesync_pack_columns(q.k)
  WHERE typeof(q.c) IS NOT typeof(ch.val) OR quote(q.c) IS NOT quote(ch.val);
CREATE TABLE p2(k INTEGER PRIMARY KEY NOT NULL, c REAL);
CREATE TABLE q2(k INTEGER PRIMARY KEY NOT NULL, c REAL);
SELECT wavesync_as_crr('q2') AS 'REAL';
INSERT INTO p2 SELECT i, v FROM vals;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  SELECT 'q2', wavesync_pack_columns(i), 'c', v, 1, 1, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, i FROM vals;
INSERT INTO mismatch SELECT 'REAL', k, typeof(p.c) || ' ' || quote(p.c), typeof(q.c) || ' ' || quote(q.c)
  FROM p2 p JOIN q2 q USING (k) WHERE typeof(p.c) IS NOT typeof(q.c) OR quote(p.c) IS NOT quote(q.c);
INSERT INTO mismatch SELECT 'REAL', k, typeof(q.c) || ' ' || quote(q.c), 'changes: ' || typeof(ch.val) || ' ' || quote(ch.val)
  FROM q2 q JOIN wavesync_changes ch ON ch."table" = 'q2' AND ch.pk = wavesync_pack_columns(q.k)
  WHERE typeof(q.c) IS NOT typeof(ch.val) OR quote(q.c) IS NOT quote(ch.val);
CREATE TABLE p3(k INTEGER PRIMARY KEY NOT NULL, c TEXT);
CREATE TABLE q3(k INTEGER PRIMARY KEY NOT NULL, c TEXT);
SELECT wavesync_as_crr('q3') AS 'TEXT';
INSERT INTO p3 SELECT i, v FROM vals;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  SELECT 'q3', wavesync_pack_columns(i), 'c', v, 1, 1, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, i FROM vals;
INSERT INTO mismatch SELECT 'TEXT', k, typeof(p.c) || ' ' || quote(p.c), typeof(q.c) || ' ' || quote(q.c)
  FROM p3 p JOIN q3 q USING (k) WHERE typeof(p.c) IS NOT typeof(q.c) OR quote(p.c) IS NOT quote(q.c);
INSERT INTO mismatch SELECT 'TEXT', k, typeof(q.c) || ' ' || quote(q.c), 'changes: ' || typeof(ch.val) || ' ' || quote(ch.val)
  FROM q3 q JOIN wavesync_changes ch ON ch."table" = 'q3' AND ch.pk = wavesync_pack_columns(q.k)
  WHERE typeof(q.c) IS NOT typeof(ch.val) OR quote(q.c) IS NOT quote(ch.val);
CREATE TABLE p4(k INTEGER PRIMARY KEY NOT NULL, c NUMERIC);
CREATE TABLE q4(k INTEGER PRIMARY KEY NOT NULL, c NUMERIC);
SELECT wavesync_as_crr('q4') AS 'NUMERIC';
INSERT INTO p4 SELECT i, v FROM vals;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  SELECT 'q4', wavesync_pack_columns(i), 'c', v, 1, 1, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, i FROM vals;
INSERT INTO mismatch SELECT 'NUMERIC', k, typeof(p.c) || ' ' || quote(p.c), typeof(q.c) || ' ' || quote(q.c)
  FROM p4 p JOIN q4 q USING (k) WHERE typeof(p.c) IS NOT typeof(q.c) OR quote(p.c) IS NOT quote(q.c);
INSERT INTO mismatch SELECT 'NUMERIC', k, typeof(q.c) || ' ' || quote(q.c), 'changes: ' || typeof(ch.val) || ' ' || quote(ch.val)
  FROM q4 q JOIN wavesync_changes ch ON ch."table" = 'q4' AND ch.pk = wavesync_pack_columns(q.k)
  WHERE typeof(q.c) IS NOT typeof(ch.val) OR quote(q.c) IS NOT quote(ch.val);
CREATE TABLE p5(k INTEGER PRIMARY KEY NOT NULL, c BLOB);
CREATE TABLE q5(k INTEGER PRIMARY KEY NOT NULL, c BLOB);
SELECT wavesync_as_crr('q5') AS 'BLOB';
INSERT INTO p5 SELECT i, v FROM vals;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  SELECT 'q5', wavesync_pack_columns(i), 'c', v, 1, 1, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, i FROM vals;
INSERT INTO mismatch SELECT 'BLOB', k, typeof(p.c) || ' ' || quote(p.c), typeof(q.c) || ' ' || quote(q.c)
  FROM p5 p JOIN q5 q USING (k) WHERE typeof(p.c) IS NOT typeof(q.c) OR quote(p.c) IS NOT quote(q.c);
INSERT INTO mismatch SELECT 'BLOB', k, typeof(q.c) || ' ' || quote(q.c), 'changes: ' || typeof(ch.val) || ' ' || quote(ch.val)
  FROM q5 q JOIN wavesync_changes ch ON ch."table" = 'q5' AND ch.pk = wavesync_pack_columns(q.k)
  WHERE typeof(q.c) IS NOT typeof(ch.val) OR quote(q.c) IS NOT quote(ch.val);
CREATE TABLE p6(k INTEGER PRIMARY KEY NOT NULL, c );
CREATE TABLE q6(k INTEGER PRIMARY KEY NOT NULL, c );
SELECT wavesync_as_crr('q6') AS '(none)';
INSERT INTO p6 SELECT i, v FROM vals;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  SELECT 'q6', wavesync_pack_columns(i), 'c', v, 1, 1, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, i FROM vals;
INSERT INTO mismatch SELECT '', k, typeof(p.c) || ' ' || quote(p.c), typeof(q.c) || ' ' || quote(q.c)
  FROM p6 p JOIN q6 q USING (k) WHERE typeof(p.c) IS NOT typeof(q.c) OR quote(p.c) IS NOT quote(q.c);
INSERT INTO mismatch SELECT '', k, typeof(q.c) || ' ' || quote(q.c), 'changes: ' || typeof(ch.val) || ' ' || quote(ch.val)
  FROM q6 q JOIN wavesync_changes ch ON ch."table" = 'q6' AND ch.pk = wavesync_pack_columns(q.k)
  WHERE typeof(q.c) IS NOT typeof(ch.val) OR quote(q.c) IS NOT quote(ch.val);
CREATE TABLE p7(k INTEGER PRIMARY KEY NOT NULL, c DECIMAL(10,2));
CREATE TABLE q7(k INTEGER PRIMARY KEY NOT NULL, c DECIMAL(10,2));
SELECT wavesync_as_crr('q7') AS 'DECIMAL(10,2)';
INSERT INTO p7 SELECT i, v FROM vals;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  SELECT 'q7', wavesync_pack_columns(i), 'c', v, 1, 1, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, i FROM vals;
INSERT INTO mismatch SELECT 'DECIMAL(10,2)', k, typeof(p.c) || ' ' || quote(p.c), typeof(q.c) || ' ' || quote(q.c)
  FROM p7 p JOIN q7 q USING (k) WHERE typeof(p.c) IS NOT typeof(q.c) OR quote(p.c) IS NOT quote(q.c);
INSERT INTO mismatch SELECT 'DECIMAL(10,2)', k, typeof(q.c) || ' ' || quote(q.c), 'changes: ' || typeof(ch.val) || ' ' || quote(ch.val)
  FROM q7 q JOIN wavesync_changes ch ON ch."table" = 'q7' AND ch.pk = wavesync_pack_columns(q.k)
  WHERE typeof(q.c) IS NOT typeof(ch.val) OR quote(q.c) IS NOT quote(ch.val);
CREATE TABLE p8(k INTEGER PRIMARY KEY NOT NULL, c VARCHAR(5));
CREATE TABLE q8(k INTEGER PRIMARY KEY NOT NULL, c VARCHAR(5));
SELECT wavesync_as_crr('q8') AS 'VARCHAR(5)';
INSERT INTO p8 SELECT i, v FROM vals;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  SELECT 'q8', wavesync_pack_columns(i), 'c', v, 1, 1, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, i FROM vals;
INSERT INTO mismatch SELECT 'VARCHAR(5)', k, typeof(p.c) || ' ' || quote(p.c), typeof(q.c) || ' ' || quote(q.c)
  FROM p8 p JOIN q8 q USING (k) WHERE typeof(p.c) IS NOT typeof(q.c) OR quote(p.c) IS NOT quote(q.c);
INSERT INTO mismatch SELECT 'VARCHAR(5)', k, typeof(q.c) || ' ' || quote(q.c), 'changes: ' || typeof(ch.val) || ' ' || quote(ch.val)
  FROM q8 q JOIN wavesync_changes ch ON ch."table" = 'q8' AND ch.pk = wavesync_pack_columns(q.k)
  WHERE typeof(q.c) IS NOT typeof(ch.val) OR quote(q.c) IS NOT quote(ch.val);
CREATE TABLE p9(k INTEGER PRIMARY KEY NOT NULL, c DOUBLE);
CREATE TABLE q9(k INTEGER PRIMARY KEY NOT NULL, c DOUBLE);
SELECT wavesync_as_crr('q9') AS 'DOUBLE';
INSERT INTO p9 SELECT i, v FROM vals;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  SELECT 'q9', wavesync_pack_columns(i), 'c', v, 1, 1, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, i FROM vals;
INSERT INTO mismatch SELECT 'DOUBLE', k, typeof(p.c) || ' ' || quote(p.c), typeof(q.c) || ' ' || quote(q.c)
  FROM p9 p JOIN q9 q USING (k) WHERE typeof(p.c) IS NOT typeof(q.c) OR quote(p.c) IS NOT quote(q.c);
INSERT INTO mismatch SELECT 'DOUBLE', k, typeof(q.c) || ' ' || quote(q.c), 'changes: ' || typeof(ch.val) || ' ' || quote(ch.val)
  FROM q9 q JOIN wavesync_changes ch ON ch."table" = 'q9' AND ch.pk = wavesync_pack_columns(q.k)
  WHERE typeof(q.c) IS NOT typeof(ch.val) OR quote(q.c) IS NOT quote(ch.val);
CREATE TABLE p10(k INTEGER PRIMARY KEY NOT NULL, c FLOAT);
CREATE TABLE q10(k INTEGER PRIMARY KEY NOT NULL, c FLOAT);
SELECT wavesync_as_crr('q10') AS 'FLOAT';
INSERT INTO p10 SELECT i, v FROM vals;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  SELECT 'q10', wavesync_pack_columns(i), 'c', v, 1, 1, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, i FROM vals;
INSERT INTO mismatch SELECT 'FLOAT', k, typeof(p.c) || ' ' || quote(p.c), typeof(q.c) || ' ' || quote(q.c)
  FROM p10 p JOIN q10 q USING (k) WHERE typeof(p.c) IS NOT typeof(q.c) OR quote(p.c) IS NOT quote(q.c);
INSERT INTO mismatch SELECT 'FLOAT', k, typeof(q.c) || ' ' || quote(q.c), 'changes: ' || typeof(ch.val) || ' ' || quote(ch.val)
  FROM q10 q JOIN wavesync_changes ch ON ch."table" = 'q10' AND ch.pk = wavesync_pack_columns(q.k)
  WHERE typeof(q.c) IS NOT typeof(ch.val) OR quote(q.c) IS NOT quote(ch.val);
CREATE TABLE p11(k INTEGER PRIMARY KEY NOT NULL, c ANY);
CREATE TABLE q11(k INTEGER PRIMARY KEY NOT NULL, c ANY);
SELECT wavesync_as_crr('q11') AS 'ANY';
INSERT INTO p11 SELECT i, v FROM vals;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  SELECT 'q11', wavesync_pack_columns(i), 'c', v, 1, 1, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, i FROM vals;
INSERT INTO mismatch SELECT 'ANY', k, typeof(p.c) || ' ' || quote(p.c), typeof(q.c) || ' ' || quote(q.c)
  FROM p11 p JOIN q11 q USING (k) WHERE typeof(p.c) IS NOT typeof(q.c) OR quote(p.c) IS NOT quote(q.c);
INSERT INTO mismatch SELECT 'ANY', k, typeof(q.c) || ' ' || quote(q.c), 'changes: ' || typeof(ch.val) || ' ' || quote(ch.val)
  FROM q11 q JOIN wavesync_changes ch ON ch."table" = 'q11' AND ch.pk = wavesync_pack_columns(q.k)
  WHERE typeof(q.c) IS NOT typeof(ch.val) OR quote(q.c) IS NOT quote(ch.val);
CREATE TABLE p12(k INTEGER PRIMARY KEY NOT NULL, c BOOLEAN);
CREATE TABLE q12(k INTEGER PRIMARY KEY NOT NULL, c BOOLEAN);
SELECT wavesync_as_crr('q12') AS 'BOOLEAN';
INSERT INTO p12 SELECT i, v FROM vals;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  SELECT 'q12', wavesync_pack_columns(i), 'c', v, 1, 1, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, i FROM vals;
INSERT INTO mismatch SELECT 'BOOLEAN', k, typeof(p.c) || ' ' || quote(p.c), typeof(q.c) || ' ' || quote(q.c)
  FROM p12 p JOIN q12 q USING (k) WHERE typeof(p.c) IS NOT typeof(q.c) OR quote(p.c) IS NOT quote(q.c);
INSERT INTO mismatch SELECT 'BOOLEAN', k, typeof(q.c) || ' ' || quote(q.c), 'changes: ' || typeof(ch.val) || ' ' || quote(ch.val)
  FROM q12 q JOIN wavesync_changes ch ON ch."table" = 'q12' AND ch.pk = wavesync_pack_columns(q.k)
  WHERE typeof(q.c) IS NOT typeof(ch.val) OR quote(q.c) IS NOT quote(ch.val);
CREATE TABLE p13(k INTEGER PRIMARY KEY NOT NULL, c DATETIME);
CREATE TABLE q13(k INTEGER PRIMARY KEY NOT NULL, c DATETIME);
SELECT wavesync_as_crr('q13') AS 'DATETIME';
INSERT INTO p13 SELECT i, v FROM vals;
INSERT INTO wavesync_changes ("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  SELECT 'q13', wavesync_pack_columns(i), 'c', v, 1, 1, x'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, i FROM vals;
INSERT INTO mismatch SELECT 'DATETIME', k, typeof(p.c) || ' ' || quote(p.c), typeof(q.c) || ' ' || quote(q.c)
  FROM p13 p JOIN q13 q USING (k) WHERE typeof(p.c) IS NOT typeof(q.c) OR quote(p.c) IS NOT quote(q.c);
INSERT INTO mismatch SELECT 'DATETIME', k, typeof(q.c) || ' ' || quote(q.c), 'changes: ' || typeof(ch.val) || ' ' || quote(ch.val)
  FROM q13 q JOIN wavesync_changes ch ON ch."table" = 'q13' AND ch.pk = wavesync_pack_columns(q.k)
  WHERE typeof(q.c) IS NOT typeof(ch.val) OR quote(q.c) IS NOT quote(ch.val);
SELECT count(*) AS cases FROM vals;
SELECT type, (SELECT quote(v) FROM vals WHERE vals.i = mismatch.i) AS value, plain, merged FROM mismatch;
SELECT count(*) AS mismatches FROM mismatch;
