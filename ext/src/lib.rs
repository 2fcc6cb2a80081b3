//! wavesync: SQLite tables that sync themselves.
//!
//! The loadable extension. `sqlite3_wavesync_init` registers the SQL functions, the
//! `wavesync_changes` / `crsql_changes` virtual table and `wavesync_missing`, and the
//! commit/rollback hooks that delimit transactions. See docs/ARCHITECTURE.md.
//! Every `unsafe` is in `ffi.rs`; the rest of the crate may not have one.

#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod addwins;
pub mod affinity;
pub mod alter;
pub mod args;
pub mod change;
pub mod changes;
pub mod changes_read;
pub mod changes_write;
pub mod clock;
pub mod compact;
pub mod error;
#[allow(unsafe_code)]
mod ffi;
pub mod fractindex;
pub mod functions;
pub mod journal;
pub mod local;
pub mod merge;
pub mod missing;
pub mod pack;
pub mod schema;
pub mod state;
pub mod stmts;
pub mod tableinfo;
pub mod trigger_functions;
pub mod triggers;
pub mod value;
pub mod varint;
pub mod vector;

use rusqlite::{vtab, Connection};

/// What loading the extension does (called through `ffi::sqlite3_wavesync_init`).
fn init(db: Connection) -> rusqlite::Result<bool> {
    error::guard("extension init", || {
        let handle = ffi::handle(&db);
        let shared = state::Shared::new(ffi::connection_on(handle)?)?;
        // Best effort: a read-only database gets its metadata on the first write instead.
        if let Ok(mut st) = shared.lock() {
            if st.ensure_meta().is_ok() {
                let _ = st.atomically(alter::cleanup_dropped);
                // A database an earlier build made: add the change logs, remake triggers.
                let _ = st.atomically(|st| {
                    schema::add_missing_logs(st)?;
                    triggers::refresh_outdated(st)
                });
            }
        }
        functions::register_all(&db, &shared)?;
        trigger_functions::register(&db, &shared)?;
        let changes = changes::module();
        db.create_module("wavesync_changes", changes, Some(shared.clone()))?;
        db.create_module("crsql_changes", changes, Some(shared.clone()))?;
        db.create_module(
            "wavesync_missing",
            vtab::eponymous_only_module::<ffi::Table<missing::MissingTab>>(),
            Some(shared.clone()),
        )?;
        ffi::install_hooks(handle, &shared);
        // Connect the eponymous table now: its xDisconnect, which SQLite runs at close before
        // it checks for unfinalized statements, finalizes the statements wavesync caches.
        // Not fatal (an unreadable database fails here): once functions are registered, a
        // failed init would make SQLite unload the library under their destructors.
        let _ = db.prepare("SELECT 1 FROM wavesync_changes LIMIT 0");
        // (Not SQLITE_OK_LOAD_PERMANENTLY: sqlite3_auto_extension treats it as a failure.)
        Ok(false)
    })
}
