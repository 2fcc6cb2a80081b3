.load ./dist/wavesync
-- Primary keys are packed byte-compatibly with cr-sqlite's crsql_pack_columns:
-- 1 byte column count, then per column a type byte (len_bytes << 3) | type
-- (1 int, 2 float, 3 text, 4 blob, 5 null) and a minimal big-endian payload.
SELECT hex(wavesync_pack_columns(1));
SELECT hex(wavesync_pack_columns('a'));
SELECT hex(wavesync_pack_columns(-1));
SELECT hex(wavesync_pack_columns(1.5));
SELECT hex(wavesync_pack_columns(256));
-- cr-sqlite writes 0 with no payload bytes (len_bytes = 0).
SELECT hex(wavesync_pack_columns(0));
-- Several columns: 1, 'a', NULL, x'0102', 256.
SELECT hex(wavesync_pack_columns(1, 'a', NULL, x'0102', 256));
-- The cr-sqlite name answers too.
SELECT hex(crsql_pack_columns(1, 'a'));
