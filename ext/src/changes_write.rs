//! INSERT into `wavesync_changes`: each row is read and validated (`parse_change`) before
//! anything is written, then merged (`merge.rs`). DELETE and UPDATE are refused.

use crate::change::Change;
use crate::changes::{
    ChangesTab, C_CID, C_CL, C_COL_VERSION, C_DB_VERSION, C_ORIGIN_VERSION, C_PK, C_SEQ, C_SITE_ID, C_TABLE, C_VAL,
};
use crate::clock::MAX_VERSION;
use crate::error::{fail, guard, Result};
use crate::ffi::Table;
use crate::merge::merge;
use crate::state::SiteId;
use rusqlite::types::ValueRef;
use rusqlite::vtab::{Inserts, UpdateVTab, Updates};

fn need_int(name: &str, v: ValueRef<'_>, min: i64) -> Result<i64> {
    match v {
        ValueRef::Integer(i) if i >= min => Ok(i),
        other => Err(fail(format!("wavesync_changes: {name} must be an integer >= {min} (got {})", describe(other)))),
    }
}

/// A version or counter: local writes add to it, so it is bounded (clock::MAX_VERSION).
fn need_version(name: &str, v: ValueRef<'_>, min: i64) -> Result<i64> {
    match v {
        ValueRef::Integer(i) if (min..=MAX_VERSION).contains(&i) => Ok(i),
        other => Err(fail(format!(
            "wavesync_changes: {name} must be an integer from {min} to {MAX_VERSION} (got {})",
            describe(other)
        ))),
    }
}

fn describe(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => format!("the real {f}"),
        ValueRef::Text(t) => format!("the text '{}'", String::from_utf8_lossy(&t[..t.len().min(40)])),
        ValueRef::Blob(b) => format!("a {}-byte blob", b.len()),
    }
}

/// Reads and validates one inserted row; nothing is written before this succeeds.
fn parse_change<'a>(args: &'a Inserts<'_>) -> Result<Change<'a>> {
    if args.len() < 2 + C_ORIGIN_VERSION {
        return Err(fail("wavesync_changes: an inserted change needs the 9 columns of wavesync_changes"));
    }
    // The two leading arguments are the rowids (old, new); then the columns.
    let mut v = [ValueRef::Null; 2 + C_ORIGIN_VERSION + 1];
    for (slot, x) in v.iter_mut().zip(args.iter()) {
        *slot = x;
    }
    let col = |i: usize| v[2 + i];
    let text = |name: &str, t: &'a [u8]| {
        std::str::from_utf8(t).map_err(|_| fail(format!("wavesync_changes: {name} is not valid UTF-8 text")))
    };
    let table = match col(C_TABLE) {
        ValueRef::Text(t) => text("\"table\"", t)?,
        other => return Err(fail(format!("wavesync_changes: \"table\" must be text (got {})", describe(other)))),
    };
    let pk = match col(C_PK) {
        ValueRef::Blob(b) => b,
        other => {
            return Err(fail(format!("wavesync_changes: pk must be a packed-columns blob (got {})", describe(other))))
        }
    };
    let cid = match col(C_CID) {
        ValueRef::Text(t) => text("cid", t)?,
        ValueRef::Integer(-1) => "-1",
        other => {
            return Err(fail(format!("wavesync_changes: cid must be a column name or '-1' (got {})", describe(other))))
        }
    };
    let site_id: SiteId = match col(C_SITE_ID) {
        ValueRef::Blob(b) if b.len() == 16 => b.try_into().unwrap_or_default(),
        other => {
            return Err(fail(format!("wavesync_changes: site_id must be a 16-byte blob (got {})", describe(other))))
        }
    };
    let origin_version = match col(C_ORIGIN_VERSION) {
        ValueRef::Null => None,
        other => Some(need_version("origin_version", other, 0)?),
    };
    Ok(Change {
        table,
        pk,
        cid,
        val: col(C_VAL),
        col_version: need_version("col_version", col(C_COL_VERSION), 0)?,
        db_version: need_version("db_version", col(C_DB_VERSION), 0)?,
        site_id,
        cl: need_version("cl", col(C_CL), 1)?,
        seq: need_int("seq", col(C_SEQ), 0)?,
        origin_version,
    })
}

impl UpdateVTab<'_> for Table<ChangesTab> {
    fn delete(&mut self, _arg: ValueRef<'_>) -> Result<()> {
        Err(fail("wavesync_changes: DELETE is not supported; the changes table only takes INSERTs (merges)"))
    }

    fn insert(&mut self, args: &Inserts<'_>) -> Result<i64> {
        guard("wavesync_changes insert", || {
            let change = parse_change(args)?;
            let shared = &self.inner.shared;
            let mut st = shared.lock_for_merge()?;
            crate::journal::fold(&mut st)?;
            merge(&mut st, &shared.sync_bit, &change)?;
            Ok(0)
        })
    }

    fn update(&mut self, _args: &Updates<'_>) -> Result<()> {
        Err(fail("wavesync_changes: UPDATE is not supported; the changes table only takes INSERTs (merges)"))
    }
}
