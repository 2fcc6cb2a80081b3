//! Helpers shared by the Rust-level tests: open SQLite connections (rusqlite's bundled,
//! modern SQLite) with the built extension `dist/wavesync.so` loaded, and move changes
//! between them the way any transport would. They live in the test-and-bench kit
//! (`testkit/`, `wavesync-testkit`); this crate's tests use them under its name.

pub use wavesync_testkit::{all_changes, apply, ext_path, open, rows, sync_by_vector, Row, CHANGE_COLS};
