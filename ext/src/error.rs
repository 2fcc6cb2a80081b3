//! One way to fail: an SQLITE_ERROR whose message names the problem and the fix.

use rusqlite::{ffi, Error};

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub fn fail(msg: impl Into<String>) -> Error {
    Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_ERROR), Some(msg.into()))
}

/// Runs `f`, turning a panic into an SQL error so that no panic unwinds into SQLite.
pub fn guard<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(fail(format!("wavesync: internal error in {what}: {msg}")))
        }
    }
}

/// `"name"` with embedded quotes doubled: an SQL identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'` with embedded quotes doubled: an SQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
