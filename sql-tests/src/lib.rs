//! Helpers shared by the SQL-level tests (they load dist/wavesync.so).
