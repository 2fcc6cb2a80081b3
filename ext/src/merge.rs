//! Merging one change from another replica (an INSERT into wavesync_changes).
//!
//! The rules (DESIGN.md §2), deterministic from the change rows alone:
//! 1. the larger causal length wins outright; a smaller one is ignored;
//! 2. same causal length, same cell: the larger col_version wins, then the larger value
//!    (storage class, then value), then the larger site id takes the metadata;
//! 3. a column change for a row deleted at the same causal length loses (delete wins).
//!
//! A winner writes the base table with the triggers silenced, stores the incoming clock
//! at local db_version max(next, incoming db_version, origin version) (`stored_version`),
//! and counts as an impacted row.

use crate::change::{exec, silenced, stored_version, Change};
use crate::clock::{Cell, RowClock, SENTINEL};
use crate::error::{fail, Result};
use crate::pack;
use crate::state::State;
use crate::tableinfo::{DeletePolicy, Status, TableInfo};
use crate::value::{compare, Val};
use crate::vector;
use rusqlite::types::{ToSqlOutput, ValueRef};
use std::cmp::Ordering;
use std::sync::atomic::AtomicBool;

/// Writes one column of a row, creating the row if needed. When the row should exist (its
/// clock is live) a plain UPDATE goes first: cheaper than the upsert's conflict path.
fn write_col(st: &State, t: &TableInfo, cid: u32, pk: &[Val], val: ValueRef<'_>, row_exists: bool) -> Result<()> {
    let pos = t.pos(cid).unwrap_or_default();
    let args = || pk.iter().map(Val::as_ref).chain([val]).map(ToSqlOutput::Borrowed);
    if row_exists && exec(st, &t.sql.update_col[pos], args())? == 1 {
        return Ok(());
    }
    exec(st, &t.sql.upsert_col[pos], args())?;
    Ok(())
}

enum Outcome {
    Lose,
    /// Store the incoming clock only (equal value, larger site id).
    Metadata,
    /// Write the value and store the clock.
    Value,
}

/// Merges one change. Through wavesync_changes (`State::via_changes_table`), whose
/// xRollbackTo reports the savepoint rollbacks that would make a remembered clock wrong,
/// it reuses the clock the previous change left (`State::merge_clock`); other callers
/// (commit_alter's replay) neither use nor leave one.
pub fn merge(st: &mut State, sync: &AtomicBool, ch: &Change<'_>) -> Result<()> {
    // Starting the transaction view first also notices a schema change made since.
    st.tx()?;
    let t = st.table(ch.table)?.filter(|t| t.status != Status::Dropped).ok_or_else(|| {
        fail(format!(
            "wavesync_changes: '{}' is not a CRR table on this replica; run SELECT wavesync_as_crr('{}') after creating it",
            ch.table, ch.table
        ))
    })?;
    t.check_mergeable()?;
    let pk = pack::unpack(ch.pk).map_err(|e| fail(format!("wavesync_changes: bad pk for table '{}': {e}", t.name)))?;
    if pk.len() != t.pks.len() {
        return Err(fail(format!(
            "wavesync_changes: bad pk for table '{}': it packs {} column(s), the table's primary key has {}",
            t.name,
            pk.len(),
            t.pks.len()
        )));
    }
    if pk.contains(&Val::Null) {
        return Err(fail(format!(
            "wavesync_changes: bad pk for table '{}': primary key values cannot be NULL",
            t.name
        )));
    }
    // Keys and values as the table stores them (affinity.rs): one row has one packed key,
    // and ties compare what the column holds.
    let (pk, packed_pk) = match normalize_key(&t, &pk)? {
        Some(vals) => {
            let packed = pack::pack(&vals).map_err(fail)?;
            (vals, Some(packed))
        }
        None => (pk, None),
    };
    let keyed = Change { pk: packed_pk.as_deref().unwrap_or(ch.pk), ..*ch };
    let ch = &keyed;
    if ch.cid.is_empty() {
        return Err(fail("wavesync_changes: cid must be a column name or '-1' (got an empty name)"));
    }
    let Some(cid) = t.cid_of(ch.cid) else {
        if t.dropped.iter().any(|d| d == ch.cid) {
            // A peer that has not dropped the column yet: its value has nowhere to go.
            if let Some(ov) = ch.origin_version {
                let site = st.site_ord(&ch.site_id, true)?.unwrap_or(0);
                vector::add_version(st, site, &ch.site_id, ov)?;
            }
            return Ok(());
        }
        // A peer that migrated first: keep the change until this replica has the column.
        return keep_pending(st, ch);
    };
    let val = normalize_value(&t, cid, ch)?;
    let normalized = Change { val: val.as_ref().map_or(ch.val, Val::as_ref), ..*ch };
    let ch = &normalized;
    if cid != SENTINEL && ch.cl % 2 == 0 {
        return Err(fail(format!(
            "wavesync_changes: change of column '{}' carries an even causal length {} (a deleted row); only '-1' changes can delete",
            ch.cid, ch.cl
        )));
    }

    st.tx()?;
    let site = st.site_ord(&ch.site_id, true)?.unwrap_or(0);
    let origin_version = ch.origin_version.unwrap_or(ch.db_version);
    if site == 0 {
        // Our own write coming back: never reuse a version a peer has already seen.
        st.raise_db_version(origin_version)?;
    }
    if st.resync {
        crate::compact::note_resync(st, &t.name, ch.pk)?;
    }
    if let Some(ov) = ch.origin_version {
        // After a compaction an already-applied version may be an old copy of a row whose
        // tombstone is gone: skip it (merging it again would change nothing otherwise).
        if st.has_horizon()? && !st.versions_in_tx.contains(&(site, ov)) {
            // This replica's own versions are all applied up to its db_version.
            let applied = if site == 0 { ov <= st.current_db_version()? } else { vector::contains(st, site, ov)? };
            if applied {
                return Ok(());
            }
        }
        st.versions_in_tx.insert((site, ov));
        if st.marked_version != Some((site, ov)) {
            vector::add_version(st, site, &ch.site_id, ov)?;
            if st.via_changes_table {
                st.marked_version = Some((site, ov));
            }
        }
    }

    if t.policy == DeletePolicy::AddWins {
        return crate::addwins::merge(st, sync, &t, cid, &pk, ch, site);
    }
    let reuse_clock = st.via_changes_table;
    let remembered = if reuse_clock { st.take_merge_clock(&t, ch.pk) } else { None };
    let local = match remembered {
        Some(clock) => clock,
        None => st.get_clock(&t, ch.pk)?,
    };
    let kept = merge_cell(st, sync, &t, cid, &pk, ch, site, local)?;
    if reuse_clock {
        st.keep_merge_clock(&t, ch.pk, kept);
    }
    Ok(())
}

/// The delete_wins rules for one change against the row's clock `local`; returns the
/// clock the row has afterwards.
#[allow(clippy::too_many_arguments)]
fn merge_cell(
    st: &mut State,
    sync: &AtomicBool,
    t: &TableInfo,
    cid: u32,
    pk: &[Val],
    ch: &Change<'_>,
    site: i64,
    local: Option<RowClock>,
) -> Result<Option<RowClock>> {
    let origin_version = ch.origin_version.unwrap_or(ch.db_version);
    let local_cl = local.as_ref().map_or(0, |r| r.cl);
    if ch.cl < local_cl {
        return Ok(local);
    }
    let incoming = |dbv: i64| Cell { col_version: ch.col_version, db_version: dbv, site, origin_version, seq: ch.seq };

    if ch.cl > local_cl {
        // A new causal-length epoch (incarnation of the row): every older cell clock is
        // superseded, and so are the values they held. A live row starts over from its
        // column defaults, which only cells of the new epoch fill, so the table stays a
        // function of the changes (ARCHITECTURE.md, "Resurrection").
        let dbv = stored_version(st, ch)?;
        let mut rc = RowClock { cl: ch.cl, cells: Vec::with_capacity(2) };
        rc.set(cid, incoming(dbv));
        if cid != SENTINEL && ch.cl > 1 {
            // The epoch's '-1' change has not arrived: record one, as cr-sqlite does, so the
            // causal length shows in the changes. At col_version 0 it loses to the real one
            // (col_version = cl) wherever that arrives, so every replica ends with that.
            rc.set(SENTINEL, Cell { col_version: 0, ..incoming(dbv) });
        }
        let was_live = local.as_ref().is_some_and(RowClock::is_live);
        let deleted = ch.cl % 2 == 0;
        silenced(sync, || {
            if deleted || was_live {
                exec(st, &t.sql.delete_row, pk.iter())?;
            }
            match (deleted, cid) {
                (true, _) => Ok(()),
                (false, SENTINEL) => exec(st, &t.sql.insert_pk, pk.iter()).map(drop),
                (false, _) => write_col(st, t, cid, pk, ch.val, false),
            }
        })?;
        if local.is_none() {
            st.insert_new_clock(t, ch.pk, &rc)?;
        } else {
            st.put_clock(t, ch.pk, &rc)?;
        }
        st.rows_impacted += 1;
        return Ok(Some(rc));
    }

    let existed = local.is_some();
    let mut rc = local.unwrap_or_default();
    let stored_dbv = rc.max_db_version();
    let outcome = match rc.get(cid).copied() {
        _ if cid != SENTINEL && !rc.is_live() => Outcome::Lose,
        None => {
            if cid == SENTINEL {
                Outcome::Metadata
            } else {
                Outcome::Value
            }
        }
        Some(l) => match ch.col_version.cmp(&l.col_version) {
            Ordering::Greater if cid != SENTINEL => Outcome::Value,
            Ordering::Greater => Outcome::Metadata,
            Ordering::Less => Outcome::Lose,
            // The very write this cell holds, delivered again: the same origin version (a
            // change that names it, as wavesyncd's do) and seq of the same site. The version
            // vector already takes (site, origin version) to name one transaction's writes.
            Ordering::Equal if ch.origin_version == Some(l.origin_version) && l.site == site && l.seq == ch.seq => {
                Outcome::Lose
            }
            Ordering::Equal => {
                let by_value = if cid == SENTINEL {
                    Ordering::Equal
                } else {
                    compare(ch.val, st.column_value(t, pk, cid)?.as_ref())
                };
                match by_value {
                    Ordering::Greater => Outcome::Value,
                    Ordering::Less => Outcome::Lose,
                    Ordering::Equal if st.merge_equal_values()? && ch.site_id > st.site_of(l.site)? => {
                        Outcome::Metadata
                    }
                    Ordering::Equal => Outcome::Lose,
                }
            }
        },
    };
    match outcome {
        Outcome::Lose => return Ok(existed.then_some(rc)),
        Outcome::Value => {
            silenced(sync, || write_col(st, t, cid, pk, ch.val, existed && rc.is_live()))?;
        }
        Outcome::Metadata => {}
    }
    let dbv = stored_version(st, ch)?;
    rc.cl = ch.cl;
    rc.set(cid, incoming(dbv));
    // Another change of a row this transaction already wrote: the row's version is the same.
    let in_place = existed && rc.max_db_version() == stored_dbv && st.rewrite_clock(t, ch.pk, &rc)?;
    if !in_place {
        st.put_clock(t, ch.pk, &rc)?;
    }
    st.rows_impacted += 1;
    Ok(Some(rc))
}

/// The key as the table stores it, if that differs from `pk` (bit for bit: -0.0 is not 0.0).
fn normalize_key(t: &TableInfo, pk: &[Val]) -> Result<Option<Vec<Val>>> {
    let mut out: Option<Vec<Val>> = None;
    for (i, (v, col)) in pk.iter().zip(&t.pk_types).enumerate() {
        if col.keeps(v.as_ref()) {
            continue;
        }
        let n = col.normalize(v).map_err(|e| {
            fail(format!("wavesync_changes: bad pk for table '{}': column '{}': {e}", t.name, t.pks[i]))
        })?;
        if !n.same(v) {
            out.get_or_insert_with(|| pk.to_vec())[i] = n;
        }
    }
    Ok(out)
}

/// The change's value as its column stores it, if that differs from the value sent.
fn normalize_value(t: &TableInfo, cid: u32, ch: &Change<'_>) -> Result<Option<Val>> {
    let Some(col) = t.pos(cid).and_then(|p| t.col_types.get(p)) else { return Ok(None) };
    if col.keeps(ch.val) {
        return Ok(None);
    }
    let v = Val::from_ref(ch.val);
    let n = col
        .normalize(&v)
        .map_err(|e| fail(format!("wavesync_changes: bad val for column '{}' of table '{}': {e}", ch.cid, t.name)))?;
    Ok((!n.same(&v)).then_some(n))
}

/// Stores a change for a column this replica does not have yet; `wavesync_commit_alter`
/// merges it once the column exists. Its origin version is not marked applied (a peer
/// asking this replica for that version would not get the kept change), so catch-up keeps
/// offering it until then.
fn keep_pending(st: &mut State, ch: &Change<'_>) -> Result<()> {
    st.tx()?;
    st.marked_version = None;
    st.stmt(
            "INSERT OR IGNORE INTO wavesync_pending (tbl, pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(rusqlite::params![
            ch.table,
            ch.pk,
            ch.cid,
            ToSqlOutput::Borrowed(ch.val),
            ch.col_version,
            ch.db_version,
            &ch.site_id[..],
            ch.cl,
            ch.seq,
            ch.origin_version
        ])?;
    if let Some(ov) = ch.origin_version {
        if let Some(site) = st.site_ord(&ch.site_id, false)? {
            vector::remove_version(st, site, ov)?;
        }
    }
    Ok(())
}
