//! The built extension and loading it into rusqlite's bundled (modern) SQLite.

use crate::util::fail;
use rusqlite::{Connection, LoadExtensionGuard};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `<repo>/<rel>`.
pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// The built extension: `$WAVESYNC_EXT`, or `<repo>/dist/wavesync` (`make ext`).
pub fn ext_path() -> PathBuf {
    match std::env::var_os("WAVESYNC_EXT") {
        Some(p) => PathBuf::from(p),
        None => repo_path("dist/wavesync"),
    }
}

/// Loads the extension `ext` into `conn` with entry point `entry` (None: SQLite's default
/// name for the file), extension loading enabled only for the call.
pub fn load_extension(conn: &Connection, ext: &Path, entry: Option<&str>) -> rusqlite::Result<()> {
    // SAFETY: loading runs the library's initialisation code; `ext` is the extension built
    // by this repository (or one the caller names on purpose, e.g. a cr-sqlite build).
    unsafe {
        let _guard = LoadExtensionGuard::new(conn)?;
        conn.load_extension(ext, entry)
    }
}

/// Loads wavesync ([`ext_path`]) into `conn`; gives up ([`fail`]) if it cannot.
pub fn load_wavesync(conn: &Connection) {
    let ext = ext_path();
    if let Err(e) = load_extension(conn, &ext, Some("sqlite3_wavesync_init")) {
        fail(&format!("load {}: {e} (run `make ext` first)", ext.display()));
    }
}

/// A connection to the database file `path` with wavesync loaded.
pub fn open(path: &str) -> Connection {
    let conn = Connection::open(path).expect("open database");
    load_wavesync(&conn);
    conn
}

/// An app connection: the extension loaded, WAL, and a busy timeout of 5 s — what an app
/// that shares its database with the daemon must set.
pub fn app(db: &Path) -> Connection {
    app_with(db, Duration::from_secs(5))
}

/// [`app`] with a busy timeout of `busy`.
pub fn app_with(db: &Path, busy: Duration) -> Connection {
    let conn = Connection::open(db).expect("open database");
    load_wavesync(&conn);
    conn.busy_timeout(busy).expect("busy timeout");
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(())).expect("WAL");
    conn
}
