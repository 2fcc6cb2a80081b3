//! Local writes: what a local INSERT/UPDATE/DELETE does to its row's clock, recorded at once
//! (add_wins tables, key changes) or when `journal::fold` applies a journaled write.
//!
//! Every write of one transaction shares its db_version; each cell it touches gets the
//! next `seq`. Column clocks are Lamport counters: a local write sets `col_version` to the
//! previous value + 1. The sentinel (cid 0, shown as '-1') records the causal length when
//! it is not implied: for deletes, re-inserts, and tables that have only key columns.

use crate::addwins;
use crate::clock::{self, Cell, RowClock, SENTINEL};
use crate::error::Result;
use crate::state::State;
use crate::tableinfo::{DeletePolicy, TableInfo};

fn local_cell(st: &mut State, col_version: i64, dbv: i64) -> Result<Cell> {
    let seq = st.next_seq()?;
    Ok(Cell { col_version, db_version: dbv, site: 0, origin_version: dbv, seq })
}

/// The cells a local write of the columns flagged by `written` (by position) creates:
/// (cid, seq), sorted by cid; the seqs go to the columns in table order.
fn writes(st: &mut State, t: &TableInfo, written: impl Fn(usize) -> bool) -> Result<Vec<(u32, i64)>> {
    let tx = st.tx()?;
    let mut w = Vec::with_capacity(t.cids.len());
    for (i, &cid) in t.cids.iter().enumerate() {
        if written(i) {
            w.push((cid, tx.seq));
            tx.seq += 1;
        }
    }
    w.sort_unstable_by_key(|c| c.0);
    Ok(w)
}

/// The encoded clock of a row inserted under a key never seen before: every column at
/// version 1 (only the sentinel in a table of key columns only).
fn fresh_clock_blob(st: &mut State, t: &TableInfo) -> Result<Vec<u8>> {
    let dbv = st.next_db_version(0)?;
    let w = if t.cols.is_empty() { vec![(SENTINEL, st.next_seq()?)] } else { writes(st, t, |_| true)? };
    clock::bump_encoded(&[], &w, dbv).map_err(|e| crate::error::fail(format!("wavesync: {e}")))
}

fn fresh_clock(st: &mut State, t: &TableInfo) -> Result<RowClock> {
    let blob = fresh_clock_blob(st, t)?;
    RowClock::decode(1, &blob).map_err(|e| crate::error::fail(format!("wavesync: {e}")))
}

/// A local delete: the causal length becomes even and only the sentinel is left.
fn tombstone(st: &mut State, mut rc: RowClock) -> Result<RowClock> {
    let dbv = st.next_db_version(0)?;
    if rc.is_live() {
        rc.cl += 1;
    }
    rc.cells.clear();
    rc.set(SENTINEL, local_cell(st, rc.cl, dbv)?);
    Ok(rc)
}

/// What one delete policy records for local writes (`policy`).
struct LocalWrites {
    insert: fn(&mut State, &TableInfo, &[u8]) -> Result<()>,
    delete: fn(&mut State, &TableInfo, &[u8]) -> Result<()>,
    /// An update that kept the key and changed the columns flagged.
    update: fn(&mut State, &TableInfo, &[u8], &[bool]) -> Result<()>,
}

/// The one place a local write picks its delete policy (merges pick theirs in merge.rs).
fn policy(t: &TableInfo) -> LocalWrites {
    match t.policy {
        DeletePolicy::DeleteWins => LocalWrites { insert: insert_dw, delete: delete_dw, update: update_dw },
        DeletePolicy::AddWins => {
            LocalWrites { insert: addwins::local_insert, delete: addwins::local_delete, update: addwins::local_update }
        }
    }
}

pub fn after_insert(st: &mut State, t: &TableInfo, pk: &[u8]) -> Result<()> {
    (policy(t).insert)(st, t, pk)
}

pub fn after_delete(st: &mut State, t: &TableInfo, pk: &[u8]) -> Result<()> {
    (policy(t).delete)(st, t, pk)
}

/// delete_wins: an insert.
fn insert_dw(st: &mut State, t: &TableInfo, pk: &[u8]) -> Result<()> {
    let dbv = st.next_db_version(0)?;
    let ncols = t.cols.len();
    // Fast path: a key never seen before (the common case) needs no read of its clock.
    let seq_before = st.tx()?.seq;
    let fresh = fresh_clock_blob(st, t)?;
    if st.insert_new_clock_blob(t, pk, 1, dbv, &fresh)? {
        return Ok(());
    }
    st.tx()?.seq = seq_before;
    let rc = match st.get_clock(t, pk)? {
        None => fresh_clock(st, t)?,
        Some(mut rc) if !rc.is_live() => {
            // Re-insert after a delete: a new causal-length epoch; column clocks restart.
            rc.cl += 1;
            rc.cells.clear();
            rc.set(SENTINEL, local_cell(st, rc.cl, dbv)?);
            for &cid in &t.cids {
                rc.set(cid, local_cell(st, 1, dbv)?);
            }
            rc
        }
        Some(mut rc) => {
            // INSERT OR REPLACE over a live row: every column was written again.
            if ncols == 0 {
                return Ok(());
            }
            for &cid in &t.cids {
                let v = rc.get(cid).map_or(1, |c| c.col_version + 1);
                rc.set(cid, local_cell(st, v, dbv)?);
            }
            rc
        }
    };
    st.put_clock(t, pk, &rc)
}

/// delete_wins: a delete.
/// One statement turns the clock into a tombstone (the sentinel alone, at the even causal
/// length); a row without a clock gets one.
fn delete_dw(st: &mut State, t: &TableInfo, pk: &[u8]) -> Result<()> {
    let seq_before = st.tx()?.seq;
    let (dbv, seq) = (st.next_db_version(0)?, st.next_seq()?);
    if st.tomb_clock(t, pk, dbv, seq)? {
        return Ok(());
    }
    st.tx()?.seq = seq_before;
    let rc = tombstone(st, RowClock { cl: 1, cells: vec![] })?;
    st.put_clock(t, pk, &rc)
}

/// `changed[i]` tells whether tracked column i changed value.
pub fn after_update(st: &mut State, t: &TableInfo, new_pk: &[u8], old_pk: &[u8], changed: &[bool]) -> Result<()> {
    if new_pk != old_pk {
        // A primary-key change is a delete of the old row and an insert of the new one.
        after_delete(st, t, old_pk)?;
        return after_insert(st, t, new_pk);
    }
    if !changed.iter().any(|c| *c) {
        return Ok(());
    }
    (policy(t).update)(st, t, new_pk, changed)
}

/// delete_wins: an update that kept the key: one statement rewrites the clock.
fn update_dw(st: &mut State, t: &TableInfo, new_pk: &[u8], changed: &[bool]) -> Result<()> {
    let dbv = st.next_db_version(0)?;
    let w = writes(st, t, |i| changed[i])?;
    if st.bump_clock(t, new_pk, dbv, &clock::encode_writes(&w))? {
        return Ok(());
    }
    // A row without a clock: these cells start it.
    let blob = clock::bump_encoded(&[], &w, dbv).map_err(|e| crate::error::fail(format!("wavesync: {e}")))?;
    let rc = RowClock::decode(1, &blob).map_err(|e| crate::error::fail(format!("wavesync: {e}")))?;
    st.put_clock(t, new_pk, &rc)
}
