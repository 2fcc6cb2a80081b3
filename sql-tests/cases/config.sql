.headers on
.mode list
-- config.sql: wavesync_config_set / wavesync_config_get (and crsql_config_*) and the one
-- setting, 'merge-equal-values': who takes a cell's clock when an incoming change has the
-- same col_version and an equal value. Remote sites are made up: LO = x'00..01',
-- HI = x'ff..ff' (HI is larger than any site id but itself); this replica's random id is
-- shown as 'local'. A file database is used so the setting can be seen to persist.
.open config.db
.load ./dist/wavesync

-- why: the default is 1 (the larger site id takes the clock, so every replica stores
-- identical metadata), under both names.
SELECT wavesync_config_get('merge-equal-values') AS default_value,
       crsql_config_get('merge-equal-values') AS crsql_default;

CREATE TABLE t(id INTEGER PRIMARY KEY NOT NULL, v TEXT);
SELECT wavesync_as_crr('t');
CREATE TEMP VIEW ch AS
  SELECT hex(pk) AS pk, cid, quote(val) AS val, col_version, db_version,
         CASE site_id WHEN wavesync_site_id() THEN 'local'
                      WHEN x'00000000000000000000000000000001' THEN 'LO'
                      WHEN x'ffffffffffffffffffffffffffffffff' THEN 'HI' END AS site,
         seq
    FROM wavesync_changes;

-- With merge-equal-values = 1 -----------------------------------------------------------------------
-- why: LO creates row 1; HI then sends the same value at the same col_version: HI > LO, so
-- HI's clock (site, seq, and a new local db_version) replaces LO's; the value stays. It counts
-- as an impacted row.
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), 'v', 'same', 1, 1, x'00000000000000000000000000000001', 1, 3);
SELECT * FROM ch WHERE pk = '010901';
BEGIN;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), 'v', 'same', 1, 1, x'ffffffffffffffffffffffffffffffff', 1, 7);
SELECT wavesync_rows_impacted() AS impacted_hi;
COMMIT;
SELECT * FROM ch WHERE pk = '010901';
-- why: the other order converges to the same clock: LO arriving after HI loses.
BEGIN;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(1), 'v', 'same', 1, 1, x'00000000000000000000000000000001', 1, 3);
SELECT wavesync_rows_impacted() AS impacted_lo;
COMMIT;
SELECT * FROM ch WHERE pk = '010901';
-- why: against a local write, HI (larger than the local id) takes the clock too.
INSERT INTO t VALUES (3, 'mine');
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(3), 'v', 'mine', 1, 1, x'ffffffffffffffffffffffffffffffff', 1, 9);
SELECT * FROM ch WHERE pk = '010903';

-- Setting it to 0 ------------------------------------------------------------------------------------
-- why: config_set returns the value it stored; the setting is stored in the database, so
-- crsql_config_get (and any later connection) sees it.
SELECT wavesync_config_set('merge-equal-values', 0) AS set_to;
SELECT wavesync_config_get('merge-equal-values') AS now, crsql_config_get('merge-equal-values') AS crsql_now;
SELECT key, value FROM wavesync_meta WHERE key LIKE 'config:%';

-- With merge-equal-values = 0 (cr-sqlite 0.16's behaviour) --------------------------------------------
-- why: LO creates row 2; HI's equal value at the same col_version now changes nothing: the
-- clock already stored is kept, and nothing is impacted.
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(2), 'v', 'same', 1, 1, x'00000000000000000000000000000001', 1, 3);
SELECT * FROM ch WHERE pk = '010902';
BEGIN;
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(2), 'v', 'same', 1, 1, x'ffffffffffffffffffffffffffffffff', 1, 7);
SELECT wavesync_rows_impacted() AS impacted_hi;
COMMIT;
SELECT * FROM ch WHERE pk = '010902';
-- why: a local clock is kept as well.
INSERT INTO t VALUES (4, 'mine');
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(4), 'v', 'mine', 1, 1, x'ffffffffffffffffffffffffffffffff', 1, 9);
SELECT * FROM ch WHERE pk = '010904';
-- why: the setting only decides ties of equal values: a larger value or col_version still wins.
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(2), 'v', 'samf', 1, 1, x'00000000000000000000000000000001', 1, 4);
INSERT INTO wavesync_changes("table", pk, cid, val, col_version, db_version, site_id, cl, seq)
  VALUES ('t', wavesync_pack_columns(4), 'v', 'aaa', 2, 1, x'00000000000000000000000000000001', 1, 5);
SELECT * FROM ch WHERE pk IN ('010902', '010904') ORDER BY pk;

-- The setting persists ----------------------------------------------------------------------------------
.open config.db
.load ./dist/wavesync
SELECT wavesync_config_get('merge-equal-values') AS after_reopen;
-- why: crsql_config_set is the same function; setting 1 again restores the default rule.
SELECT crsql_config_set('merge-equal-values', 1) AS set_back;
SELECT wavesync_config_get('merge-equal-values') AS now;

-- Unknown keys are errors ---------------------------------------------------------------------------------
SELECT wavesync_config_set('no-such-setting', 1);
SELECT wavesync_config_get('no-such-setting');
SELECT crsql_config_get('merge_equal_values');
SELECT key, value FROM wavesync_meta WHERE key LIKE 'config:%';
-- why: values other than 0 and 1 are refused and the setting is unchanged.
SELECT wavesync_config_set('merge-equal-values', 'yes');
SELECT wavesync_config_set('merge-equal-values', NULL);
SELECT wavesync_config_set('merge-equal-values', 1.5);
SELECT wavesync_config_set('merge-equal-values', 7);
SELECT wavesync_config_get('merge-equal-values') AS still;
