//! One incoming change (a row inserted into wavesync_changes), and what every path that
//! applies one — the delete_wins merge, the add_wins merge, a resync — writes with.

use crate::error::Result;
use crate::state::{SiteId, State};
use rusqlite::params_from_iter;
use rusqlite::types::ValueRef;
use std::sync::atomic::{AtomicBool, Ordering};

/// One change, borrowed from the inserted row (no copies on the merge path).
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub table: &'a str,
    pub pk: &'a [u8],
    pub cid: &'a str,
    pub val: ValueRef<'a>,
    pub col_version: i64,
    pub db_version: i64,
    pub site_id: SiteId,
    pub cl: i64,
    pub seq: i64,
    /// The origin's own db_version for this write; None when the writer did not say
    /// (cr-sqlite style 9-column inserts), in which case the vector is left alone.
    pub origin_version: Option<i64>,
}

/// Runs base-table writes with the triggers silenced, so merged rows are not recorded
/// again as local writes.
pub(crate) fn silenced<T>(sync: &AtomicBool, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let was = sync.swap(true, Ordering::AcqRel);
    let r = f();
    sync.store(was, Ordering::Release);
    r
}

/// Runs a kept statement; the number of rows it changed.
pub(crate) fn exec<T: rusqlite::ToSql>(st: &State, sql: &str, vals: impl Iterator<Item = T>) -> Result<usize> {
    st.stmt(sql)?.execute(params_from_iter(vals))
}

/// The local db_version a merged cell is stored at: the transaction's, raised (Lamport) to
/// the change's db_version and origin version. So every cell's db_version is at least its
/// origin version, and a read of an origin's versions from `v` on may walk the db_version
/// index from `v` whatever the origin (changes.rs).
pub fn stored_version(st: &mut State, ch: &Change<'_>) -> Result<i64> {
    st.next_db_version(ch.db_version.max(ch.origin_version.unwrap_or(0)))
}
