//! The journal of local writes. The triggers of a delete_wins table do not touch its clock
//! row: each written row appends one entry to `wavesync_journal` — the table, the key, the
//! transaction's db_version and the first seq the write takes (`vs`, one value), and what
//! it was (`op`: an insert, a delete, or the columns an update changed). An append at the
//! end of one B-tree is the least a recorder built on triggers pays; the clock row's seek
//! and rewrite move out of the writer's statement into `fold`.
//!
//! `fold` applies the entries to the clock rows in journal order, through the same
//! `local.rs` functions the triggers used to call, at the version and seqs each entry took:
//! the clocks and change log come out exactly as if the triggers had written them. It runs
//! before anything reads or writes clock rows (a read of wavesync_changes, a merge, every
//! local write that is not journaled, compaction, alters: `lock`), so no reader ever sees
//! the clocks without the journal.
//!
//! Seqs are handed out when the trigger fires. Only an insert can need another count than
//! it took: a re-insert after a delete also writes the sentinel (one seq more), an
//! `INSERT OR REPLACE` of a key-only row nothing. `fold` then moves the seqs of the later
//! entries of that version up by what it took more, and the open transaction's counter
//! with them; never down (what it took less stays a gap), so no fold, even of entries a
//! rolled-back fold already moved once, can give two writes of a version one seq.

use crate::error::{fail, Result};
use crate::local;
use crate::state::{version_and_seq, Locked, Shared, State, Tx};
use rusqlite::types::Value;

/// What an entry records (`op`): an insert, a delete, or for an update the changed columns
/// (bit i = tracked column i in table order; a blob of bits for tables of over 62 columns).
pub const INSERT: i64 = -1;
pub const DELETE: i64 = -2;
/// Columns per integer mask (an op, and what the update trigger of a wide table passes).
pub const MASK_BITS: usize = 62;

/// Locks the state for a use that reads or writes clock rows: with the journal folded.
pub fn lock(sh: &Shared) -> Result<Locked<'_>> {
    let mut st = sh.lock()?;
    fold_atomically(&mut st).map_err(explain_busy)?;
    Ok(st)
}

/// A fold that could not take the write lock. SQLite waits for it (the busy timeout) only
/// when the statement holds no read transaction yet: a function called alone waits, but a
/// read of wavesync_changes has its snapshot before the fold starts, and fails at once while
/// another connection writes (or has written since). Still SQLITE_BUSY, so callers retry;
/// `SELECT wavesync_fold()` before the read waits instead.
fn explain_busy(e: rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, _)
            if matches!(code.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) =>
        {
            rusqlite::Error::SqliteFailure(
                code,
                Some("wavesync: local writes wait in wavesync_journal and another connection is writing, so this statement cannot fold them first; retry, or run SELECT wavesync_fold() (which waits for the lock) before it".into()),
            )
        }
        e => e,
    }
}

/// `fold` as one unit, whatever statement it runs in:
/// - inside a write statement (a merge's `INSERT ... SELECT FROM wavesync_changes`), SQLite
///   refuses a savepoint; that statement holds the write lock and is all or nothing itself;
/// - inside an open transaction, a savepoint;
/// - otherwise (`SELECT wavesync_...()`, a read of wavesync_changes, where each write would
///   commit on its own) a transaction of its own that takes the write lock first (waiting
///   as the busy timeout says): one that read the journal first could not write once
///   another connection committed (SQLITE_BUSY_SNAPSHOT, which no waiting cures).
pub fn fold_atomically(st: &mut State) -> Result<usize> {
    if !pending(st)? {
        return Ok(0);
    }
    if st.conn.execute_batch("SAVEPOINT wavesync_fold").is_err() {
        return fold(st);
    }
    st.conn.execute_batch("RELEASE wavesync_fold")?;
    if !st.conn.is_autocommit() {
        return st.atomically(fold);
    }
    st.conn.execute_batch("BEGIN IMMEDIATE")?;
    let folded = fold(st).and_then(|n| st.conn.execute_batch("COMMIT").map(|_| n));
    if folded.is_err() && !st.conn.is_autocommit() {
        let _ = st.conn.execute_batch("ROLLBACK");
        st.journal_clean = false;
    }
    folded
}

/// The `op` of an update that changed the columns flagged; None if it changed none.
pub fn update_op(changed: &[bool]) -> Option<Value> {
    if !changed.contains(&true) {
        return None;
    }
    if changed.len() <= MASK_BITS {
        return Some(Value::Integer(changed.iter().enumerate().fold(0i64, |m, (i, c)| m | ((*c as i64) << i))));
    }
    let mut bits = vec![0u8; changed.len().div_ceil(8)];
    for (i, _) in changed.iter().enumerate().filter(|(_, c)| **c) {
        bits[i / 8] |= 1 << (i % 8);
    }
    Some(Value::Blob(bits))
}

/// The columns an update entry says changed, for a table of `ncols` tracked columns.
fn changed_columns(op: &Value, ncols: usize) -> Result<Vec<bool>> {
    match op {
        Value::Integer(m) if *m > 0 && ncols <= MASK_BITS && *m >> ncols == 0 => {
            Ok((0..ncols).map(|i| m >> i & 1 == 1).collect())
        }
        Value::Blob(b) if ncols > MASK_BITS && b.len() == ncols.div_ceil(8) => {
            Ok((0..ncols).map(|i| b[i / 8] >> (i % 8) & 1 == 1).collect())
        }
        _ => Err(fail("wavesync: malformed wavesync_journal entry (op)")),
    }
}

/// How many seqs a write takes when its trigger fires (`fold` corrects inserts).
pub fn seqs_taken(op: &Value, ncols: usize) -> i64 {
    match op {
        Value::Integer(INSERT) => ncols.max(1) as i64,
        Value::Integer(DELETE) => 1,
        Value::Integer(m) => m.count_ones() as i64,
        Value::Blob(b) => b.iter().map(|x| x.count_ones() as i64).sum(),
        _ => 0,
    }
}

/// Whether the journal may hold entries (one cheap query unless known empty).
fn pending(st: &mut State) -> Result<bool> {
    if st.journal_clean {
        return Ok(false);
    }
    let any = st.journal_present()? && st.stmt("SELECT 1 FROM wavesync_journal LIMIT 1")?.exists([])?;
    st.journal_clean = !any;
    Ok(any)
}

/// Entries read, removed and applied at a time: a fold after a transaction of millions of
/// rows holds one page of them in memory, not all.
const PAGE: i64 = 4096;

type Entry = (i64, String, Value, Value, Value);

/// Applies every journal entry to the clock rows and empties the journal; the number of
/// entries applied. Does nothing (no query) while the journal is known to be empty.
pub fn fold(st: &mut State) -> Result<usize> {
    if !pending(st)? {
        return Ok(0);
    }
    let query_only: bool = st.stmt("PRAGMA query_only")?.query_row([], |r| r.get(0))?;
    if query_only || st.conn.is_readonly(rusqlite::MAIN_DB)? {
        let n: i64 = st.stmt("SELECT count(*) FROM wavesync_journal")?.query_row([], |r| r.get(0))?;
        return Err(fail(format!(
            "wavesync: {n} local write(s) wait in wavesync_journal to be folded into the clocks, and this connection cannot write: open the database writable (or run SELECT wavesync_fold() on a writable connection) first"
        )));
    }
    let open = st.tx.take();
    let folded = fold_pages(st);
    st.tx = open;
    let (n, version, shift) = folded?;
    // The open transaction's later writes continue after the seqs its entries ended at.
    if let Some(tx) = st.tx.as_mut().filter(|tx| tx.db_version == version) {
        tx.seq += shift;
    }
    st.journal_clean = true;
    Ok(n)
}

/// Folds page after page; (entries, the version of the last one, how far its seqs moved).
fn fold_pages(st: &mut State) -> Result<(usize, i64, i64)> {
    let (mut n, mut version, mut shift) = (0, i64::MIN, 0);
    loop {
        let page: Vec<Entry> = {
            let mut stmt = st.stmt("SELECT id, tbl, pk, vs, op FROM wavesync_journal ORDER BY id LIMIT ?1")?;
            let rows = stmt.query_map([PAGE], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let Some(last) = page.last().map(|e| e.0) else { return Ok((n, version, shift)) };
        // Removed before the clock rows are written, which then reuse the freed pages (a
        // fold after a large transaction would otherwise leave the file larger by the journal).
        st.stmt("DELETE FROM wavesync_journal WHERE id <= ?1")?.execute([last])?;
        for (_, tbl, key, vs, op) in &page {
            // A table that is no longer a CRR (dropped, or as_table) keeps no clocks.
            let t = match st.last_table(tbl.as_bytes()) {
                Some(t) => t.clone(),
                None => match st.table(tbl)? {
                    Some(t) => t,
                    None => continue,
                },
            };
            let (v, seq) = version_and_seq(vs)?;
            if v != version {
                (version, shift) = (v, 0);
            }
            let start = seq + shift;
            st.tx = Some(Tx::replay(v, start));
            let pk = t.packed(rusqlite::types::ValueRef::from(key))?;
            match op {
                Value::Integer(INSERT) => local::after_insert(st, &t, &pk)?,
                Value::Integer(DELETE) => local::after_delete(st, &t, &pk)?,
                _ => local::after_update(st, &t, &pk, &pk, &changed_columns(op, t.cols.len())?)?,
            }
            let used = st.tx.as_ref().map_or(start, |tx| tx.seq) - start;
            shift += (used - seqs_taken(op, t.cols.len())).max(0);
        }
        n += page.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_ops_round_trip() {
        for n in [1usize, 3, 62, 63, 200] {
            let changed: Vec<bool> = (0..n).map(|i| i % 3 == 1 || i == n - 1).collect();
            let op = update_op(&changed).unwrap();
            assert_eq!(changed_columns(&op, n).unwrap(), changed, "{n} columns");
            assert_eq!(seqs_taken(&op, n), changed.iter().filter(|c| **c).count() as i64);
        }
        assert!(update_op(&[false; 3]).is_none() && update_op(&[false; 70]).is_none());
        assert!(changed_columns(&Value::Integer(0), 3).is_err());
        assert!(changed_columns(&Value::Integer(8), 3).is_err());
        assert!(changed_columns(&Value::Text("x".into()), 3).is_err());
        assert!(changed_columns(&Value::Blob(vec![1]), 70).is_err());
    }
}
