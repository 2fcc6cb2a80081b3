//! The `add_wins` delete policy: an update concurrent with a delete brings the row back.
//!
//! Observed-remove semantics, decided from the change rows alone. Every cell is a tag
//! `(cid, col_version, site_id)`; an insert also writes an insert tag (cid 0, shown as '-1').
//! A delete records, per column, the largest tag it observed (its "observed set", sent as
//! the `val` of its '-1' change with an even `cl`), and removes every tag at or below it.
//! A tag the delete did not observe — a concurrent update, or a later re-insert — survives,
//! and a row with a surviving tag is live, holding only the surviving values (the other
//! columns read their default). The observed sets of concurrent deletes are unioned, so
//! the result does not depend on the order changes arrive in.
//!
//! Storage (in the row's clock blob, next to the tags): each delete that is not covered by
//! another is kept with its own observed set — its metadata as a cell at
//! `cid = BY + (i << 12)` and each observed tag at `cid = BY + (i << 12) + 1 + column cid`
//! (col_version and site of the tag). A delete covered by another (it observed no more; on
//! a tie the larger (site id, origin version) stays) is dropped, as an overwritten cell is,
//! so the kept set depends only on which changes arrived, never on their order. The row's
//! effective observed set is the union of the kept deletes'. `cl` is 1 while a tag
//! survives, else 2.

use crate::change::{exec, silenced, stored_version, Change};
use crate::clock::{Cell, RowClock, SENTINEL};
use crate::error::{fail, Result};
use crate::state::{SiteId, State};
use crate::tableinfo::TableInfo;
use crate::value::Val;
use crate::varint;
use rusqlite::params_from_iter;
use std::sync::atomic::AtomicBool;

/// Cells with cid at or above BY hold the kept deletes; below are the tags.
pub const BY: u32 = 1 << 24;
const SLOT: u32 = 1 << 12;
/// Column ids above this cannot be observed by an add_wins delete (4094 columns ever).
const MAX_CID: u32 = SLOT - 2;

pub fn is_tag(cid: u32) -> bool {
    cid < BY
}

/// Is `cid` the metadata cell of a kept delete?
pub fn is_delete(cid: u32) -> bool {
    cid >= BY && (cid - BY).is_multiple_of(SLOT)
}

/// A kept delete: its metadata and what it observed, (column cid, (col_version, site id)).
#[derive(Clone)]
struct Delete {
    meta: Cell,
    site_id: SiteId,
    observed: Vec<(u32, (i64, SiteId))>,
}

impl Delete {
    fn key(&self) -> (SiteId, i64) {
        (self.site_id, self.meta.origin_version)
    }
    fn observed(&self, cid: u32) -> Option<(i64, SiteId)> {
        self.observed.iter().find(|(c, _)| *c == cid).map(|(_, k)| *k)
    }
    /// Did `self` observe at least everything `other` did?
    fn covers(&self, other: &Delete) -> bool {
        other.observed.iter().all(|(c, k)| self.observed(*c).is_some_and(|mine| mine >= *k))
    }
    /// Does `self` make `other` redundant? (Covers it; on equal observations the larger key stays.)
    fn supersedes(&self, other: &Delete) -> bool {
        self.covers(other) && (!other.covers(self) || self.key() > other.key())
    }
}

fn deletes(st: &mut State, rc: &RowClock) -> Result<Vec<Delete>> {
    let mut out: Vec<Delete> = Vec::new();
    for (cid, cell) in rc.cells.iter().filter(|(c, _)| *c >= BY) {
        let rel = cid - BY;
        if rel.is_multiple_of(SLOT) {
            out.push(Delete { meta: *cell, site_id: st.site_of(cell.site)?, observed: Vec::new() });
        } else if let Some(d) = out.last_mut() {
            let col = rel % SLOT - 1;
            d.observed.push((col, (cell.col_version, st.site_of(cell.site)?)));
        }
    }
    Ok(out)
}

/// Replaces the kept deletes of `rc` by `ds` (in key order, so equal sets encode equally).
fn store_deletes(st: &mut State, rc: &mut RowClock, mut ds: Vec<Delete>) -> Result<()> {
    rc.cells.retain(|(c, _)| is_tag(*c));
    ds.sort_by_key(|d| d.key());
    for (i, d) in ds.iter().enumerate() {
        let base = BY + (i as u32) * SLOT;
        rc.set(base, d.meta);
        for (col, (cv, site)) in &d.observed {
            let ord = st.site_ord(site, true)?.unwrap_or(0);
            rc.set(base + 1 + col, Cell { col_version: *cv, db_version: 0, site: ord, origin_version: 0, seq: 0 });
        }
    }
    Ok(())
}

/// The union of what the kept deletes observed of column `cid`.
fn observed(ds: &[Delete], cid: u32) -> Option<(i64, SiteId)> {
    ds.iter().filter_map(|d| d.observed(cid)).max()
}

/// (col_version, site id) of a tag: the order in which a delete's observation covers tags.
fn tag_key(st: &mut State, c: &Cell) -> Result<(i64, SiteId)> {
    Ok((c.col_version, st.site_of(c.site)?))
}

fn live(rc: &RowClock) -> bool {
    rc.cells.iter().any(|(cid, _)| is_tag(*cid))
}

fn set_cl(rc: &mut RowClock) {
    rc.cl = if live(rc) { 1 } else { 2 };
}

/// Drops the tags the kept deletes observed; true if any went.
fn drop_observed(st: &mut State, rc: &mut RowClock, ds: &[Delete]) -> Result<bool> {
    let mut removed = false;
    for (cid, tag) in rc.cells.clone() {
        if is_tag(cid) {
            if let Some(o) = observed(ds, cid) {
                if tag_key(st, &tag)? <= o {
                    rc.cells.retain(|(x, _)| *x != cid);
                    removed = true;
                }
            }
        }
    }
    Ok(removed)
}

fn local_cell(st: &mut State, col_version: i64, dbv: i64) -> Result<Cell> {
    let seq = st.next_seq()?;
    Ok(Cell { col_version, db_version: dbv, site: 0, origin_version: dbv, seq })
}

/// The next col_version of a cell: above the cell and above what any delete observed.
fn next_version(rc: &RowClock, ds: &[Delete], cid: u32) -> i64 {
    let cell = rc.get(cid).map_or(0, |c| c.col_version);
    let obs = observed(ds, cid).map_or(0, |k| k.0);
    cell.max(obs) + 1
}

/// Local insert (also INSERT OR REPLACE over a live row): every tag is written anew.
pub fn local_insert(st: &mut State, t: &TableInfo, pk: &[u8]) -> Result<()> {
    let dbv = st.next_db_version(0)?;
    let mut rc = st.get_clock(t, pk)?.unwrap_or_default();
    let ds = deletes(st, &rc)?;
    for cid in std::iter::once(SENTINEL).chain(t.cids.iter().copied()) {
        let v = next_version(&rc, &ds, cid);
        rc.set(cid, local_cell(st, v, dbv)?);
    }
    set_cl(&mut rc);
    st.put_clock(t, pk, &rc)
}

pub fn local_update(st: &mut State, t: &TableInfo, pk: &[u8], changed: &[bool]) -> Result<()> {
    let dbv = st.next_db_version(0)?;
    let mut rc = st.get_clock(t, pk)?.unwrap_or_default();
    let ds = deletes(st, &rc)?;
    for (i, _) in changed.iter().enumerate().filter(|(_, c)| **c) {
        let cid = t.cids[i];
        let v = next_version(&rc, &ds, cid);
        rc.set(cid, local_cell(st, v, dbv)?);
    }
    set_cl(&mut rc);
    st.put_clock(t, pk, &rc)
}

/// Local delete: observes every current tag on top of what the kept deletes observed, so
/// it supersedes all of them.
pub fn local_delete(st: &mut State, t: &TableInfo, pk: &[u8]) -> Result<()> {
    let dbv = st.next_db_version(0)?;
    let mut rc = st.get_clock(t, pk)?.unwrap_or_default();
    let ds = deletes(st, &rc)?;
    let mut seen: Vec<(u32, (i64, SiteId))> = Vec::new();
    let tags: Vec<(u32, Cell)> = rc.cells.iter().filter(|(c, _)| is_tag(*c)).copied().collect();
    for (cid, tag) in tags {
        if cid > MAX_CID {
            return Err(fail(format!(
                "wavesync: table '{}' has more column ids than an add_wins delete can record",
                t.name
            )));
        }
        let k = tag_key(st, &tag)?;
        seen.push((cid, observed(&ds, cid).map_or(k, |o| o.max(k))));
    }
    for d in &ds {
        for (cid, k) in &d.observed {
            if !seen.iter().any(|(c, _)| c == cid) {
                seen.push((*cid, observed(&ds, *cid).unwrap_or(*k)));
            }
        }
    }
    seen.sort_by_key(|(c, _)| *c);
    let meta = local_cell(st, 2, dbv)?;
    let me = Delete { meta, site_id: st.site_id()?, observed: seen };
    rc.cells.retain(|(c, _)| !is_tag(*c));
    store_deletes(st, &mut rc, vec![me])?;
    set_cl(&mut rc);
    st.put_clock(t, pk, &rc)
}

/// The observed set of one kept delete, as sent in the `val` of its change: byte 1, varint
/// count, then per column its name (varint length + bytes), varint col_version and the
/// 16-byte site id of the observed tag. Names, not cids: cids are local to a replica.
pub fn encode_observed(st: &mut State, t: &TableInfo, rc: &RowClock, delete_cid: u32) -> Result<Vec<u8>> {
    let idx = ((delete_cid - BY) / SLOT) as usize;
    let ds = deletes(st, rc)?;
    let d = ds.get(idx).ok_or_else(|| fail("wavesync: corrupt add_wins clock"))?;
    let mut out = vec![1u8];
    varint::put(&mut out, d.observed.len() as u64);
    for (cid, (cv, site)) in &d.observed {
        let name = t.col_name(*cid);
        varint::put(&mut out, name.len() as u64);
        out.extend_from_slice(name.as_bytes());
        varint::put(&mut out, *cv as u64);
        out.extend_from_slice(site);
    }
    Ok(out)
}

fn decode_observed(blob: &[u8]) -> Result<Vec<(String, i64, SiteId)>, String> {
    if blob.first() != Some(&1) {
        return Err("the observed set of an add_wins delete must be a blob made by wavesync".into());
    }
    let mut pos = 1;
    let n = varint::get(blob, &mut pos, "observed set")?;
    if n > blob.len() as u64 {
        return Err("observed set claims too many entries".into());
    }
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let len = varint::get(blob, &mut pos, "observed set")? as usize;
        let name = blob.get(pos..pos + len).ok_or("observed set is truncated")?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| "observed set has a non-UTF-8 name")?;
        pos += len;
        let cv = varint::get(blob, &mut pos, "observed set")?;
        let site: SiteId =
            blob.get(pos..pos + 16).ok_or("observed set is truncated")?.try_into().map_err(|_| "truncated")?;
        pos += 16;
        out.push((name, cv as i64, site));
    }
    if pos != blob.len() {
        return Err("observed set has trailing bytes".into());
    }
    Ok(out)
}

/// Rewrites the base row from the surviving tags: gone when none survives, else exactly
/// the surviving values (other columns take their default, as after a fresh insert).
fn rebuild_base(st: &State, sync: &AtomicBool, t: &TableInfo, pk: &[Val], rc: &RowClock) -> Result<()> {
    let values: Vec<(usize, Val)> = {
        let mut stmt = st.stmt(&t.sql.select_row)?;
        let mut rows = stmt.query(params_from_iter(pk.iter()))?;
        match rows.next()? {
            Some(r) if !t.cols.is_empty() => (0..t.cols.len())
                .filter(|i| rc.get(t.cids[*i]).is_some())
                .map(|i| r.get_ref(i).map(|v| (i, Val::from_ref(v))))
                .collect::<Result<_, _>>()?,
            _ => Vec::new(),
        }
    };
    silenced(sync, || {
        exec(st, &t.sql.delete_row, pk.iter().cloned())?;
        if live(rc) {
            exec(st, &t.sql.insert_pk, pk.iter().cloned())?;
            for (i, v) in values {
                exec(st, &t.sql.upsert_col[i], pk.iter().cloned().chain([v]))?;
            }
        }
        Ok(())
    })
}

/// Merges one change into an add_wins table (already validated by merge::merge).
pub fn merge(
    st: &mut State,
    sync: &AtomicBool,
    t: &TableInfo,
    cid: u32,
    pk: &[Val],
    ch: &Change,
    site: i64,
) -> Result<()> {
    let origin_version = ch.origin_version.unwrap_or(ch.db_version);
    let mut rc = st.get_clock(t, ch.pk)?.unwrap_or(RowClock { cl: 2, cells: Vec::new() });
    let was_live = live(&rc);
    let mut ds = deletes(st, &rc)?;

    if ch.cl % 2 == 1 {
        // A tag: gone if a kept delete observed it, else last-writer-wins against the cell.
        if observed(&ds, cid).is_some_and(|o| (ch.col_version, ch.site_id) <= o) {
            return Ok(());
        }
        // Ties of col_version go to the larger site id, never to the larger value: a delete
        // removes the tags at or below what it observed in (col_version, site id) order, so
        // the winner must be the largest tag in that same order. (With the value deciding,
        // a replica holding the value-winner with the smaller site lost it to a delete that
        // observed the other tag, while one that saw the delete first kept it.)
        let wins = match rc.get(cid).copied() {
            None => true,
            Some(l) => (ch.col_version, ch.site_id) > tag_key(st, &l)?,
        };
        if !wins {
            return Ok(());
        }
        let dbv = stored_version(st, ch)?;
        rc.set(cid, Cell { col_version: ch.col_version, db_version: dbv, site, origin_version, seq: ch.seq });
        set_cl(&mut rc);
        silenced(sync, || {
            if !was_live {
                exec(st, &t.sql.insert_pk, pk.iter().cloned())?;
            }
            if cid != SENTINEL {
                exec(
                    st,
                    &t.sql.upsert_col[t.pos(cid).unwrap_or_default()],
                    pk.iter().cloned().chain([Val::from_ref(ch.val)]),
                )?;
            }
            Ok(())
        })?;
        st.put_clock(t, ch.pk, &rc)?;
        st.rows_impacted += 1;
        return Ok(());
    }

    // A delete: kept unless another kept delete supersedes it; it drops those it supersedes.
    let blob = match ch.val {
        rusqlite::types::ValueRef::Blob(b) => b.to_vec(),
        _ => {
            return Err(fail(
                "wavesync_changes: a delete of an add_wins table carries its observed set as a blob in val",
            ))
        }
    };
    let mut seen = Vec::new();
    for (name, cv, obs_site) in decode_observed(&blob).map_err(|e| fail(format!("wavesync_changes: {e}")))? {
        if let Some(c) = t.cid_of(&name) {
            seen.push((c, (cv, obs_site)));
        }
    }
    seen.sort_by_key(|(c, _)| *c);
    let incoming = Delete {
        meta: Cell { col_version: ch.col_version, db_version: 0, site, origin_version, seq: ch.seq },
        site_id: ch.site_id,
        observed: seen,
    };
    if ds.iter().any(|d| d.key() == incoming.key() || d.supersedes(&incoming)) {
        return Ok(());
    }
    let dbv = stored_version(st, ch)?;
    let mut incoming = incoming;
    incoming.meta.db_version = dbv;
    ds.retain(|d| !incoming.supersedes(d));
    ds.push(incoming);
    store_deletes(st, &mut rc, ds.clone())?;
    let removed = drop_observed(st, &mut rc, &ds)?;
    set_cl(&mut rc);
    if removed || (was_live && !live(&rc)) {
        rebuild_base(st, sync, t, pk, &rc)?;
    }
    st.put_clock(t, ch.pk, &rc)?;
    st.rows_impacted += 1;
    Ok(())
}
