//! Schema changes of a CRR: `wavesync_begin_alter` / `wavesync_commit_alter`, the clean-up
//! of CRRs removed with a plain `DROP TABLE`, and replaying changes that arrived for
//! columns this replica did not have yet.
//!
//! Column ids in the clock blobs are stable: a kept or renamed column keeps its id, a new
//! column gets a fresh one, a dropped column's id is retired (recorded as kind 'dropped'
//! in wavesync_columns) and its cells are pruned. A changed primary key re-keys every row.

use crate::clock::{Cell, RowClock};
use crate::error::{fail, ident, Result};
use crate::merge::{merge, Change};
use crate::schema::{self, Status, TableInfo};
use crate::state::{SiteId, State};
use crate::value::Val;
use rusqlite::params;
use std::sync::atomic::AtomicBool;

pub fn begin_alter(st: &mut State, table: &str) -> Result<()> {
    let t = st
        .table(table)?
        .ok_or_else(|| fail(format!("wavesync_begin_alter: '{table}' is not a CRR")))?;
    // The triggers name every column: ALTER TABLE would refuse to drop a column they use.
    schema::drop_triggers(&st.conn, &t.name)
}

/// Assigns clock ids to the new column list: same name keeps its id, a column renamed in
/// place (same position, old name gone) keeps its id, anything else gets a fresh one.
fn assign_cids(old: &TableInfo, new_cols: &[String], next_cid: &mut u32) -> Vec<(u32, String)> {
    let same_count = old.cols.len() == new_cols.len();
    new_cols
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let cid = if let Some(c) = old.cid_of(name).filter(|_| name != "-1") {
                c
            } else if same_count && !new_cols.contains(&old.cols[i]) {
                old.cids[i]
            } else {
                *next_cid += 1;
                *next_cid
            };
            (cid, name.clone())
        })
        .collect()
}

pub fn commit_alter(st: &mut State, sync: &AtomicBool, table: &str) -> Result<()> {
    let old = st
        .table(table)?
        .ok_or_else(|| fail(format!("wavesync_commit_alter: '{table}' is not a CRR")))?;
    let (name, pks, cols) = schema::inspect(&st.conn, &old.name)
        .map_err(|e| fail(e.to_string().replace("wavesync_as_crr:", "wavesync_commit_alter:")))?;
    let mut next_cid: u32 = st.conn.query_row(
        "SELECT ifnull(max(idx), 0) FROM wavesync_columns WHERE tbl = ?1 AND kind IN ('col', 'dropped')",
        [&old.name],
        |r| r.get(0),
    )?;
    let rekey = pks != old.pks;
    let columns = assign_cids(&old, &cols, &mut next_cid);
    let kept: Vec<u32> = columns.iter().map(|c| c.0).collect();
    let added: Vec<u32> = kept.iter().copied().filter(|c| old.pos(*c).is_none()).collect();
    let retired: Vec<u32> = old.cids.iter().copied().filter(|c| !kept.contains(c)).collect();

    st.conn.execute("DELETE FROM wavesync_columns WHERE tbl = ?1 AND kind IN ('pk', 'col')", [&name])?;
    for (i, p) in pks.iter().enumerate() {
        st.conn.execute("INSERT INTO wavesync_columns (tbl, kind, idx, name, pos) VALUES (?1, 'pk', ?2, ?3, ?2)", params![name, i as i64, p])?;
    }
    for (pos, (cid, c)) in columns.iter().enumerate() {
        st.conn.execute(
            "INSERT INTO wavesync_columns (tbl, kind, idx, name, pos) VALUES (?1, 'col', ?2, ?3, ?4)",
            params![name, cid, c, pos as i64],
        )?;
    }
    for cid in &retired {
        st.conn.execute(
            "INSERT OR REPLACE INTO wavesync_columns (tbl, kind, idx, name, pos) VALUES (?1, 'dropped', ?2, '', -1)",
            params![name, cid],
        )?;
    }
    let info = TableInfo::new(name.clone(), pks, columns, old.policy);
    schema::create_triggers(&st.conn, &info)?;
    st.invalidate_tables();

    if rekey {
        // Old keys mean nothing under the new primary key: every row starts over, at a new
        // version, as if inserted now (tombstones of the old keys are gone with them).
        schema::raise_floor(st)?;
        st.conn.execute_batch(&format!("DELETE FROM {};", ident(&info.clock)))?;
        schema::backfill(st, &info)?;
    } else if !added.is_empty() || !retired.is_empty() {
        rewrite_clocks(st, &info, &added, &retired)?;
    }
    replay_pending(st, sync, &info.name)
}

/// Adds clocks for new columns to every live row — at the current db_version, so a
/// migration that changes no data does not look like news — and prunes retired ids.
fn rewrite_clocks(st: &mut State, t: &TableInfo, added: &[u32], retired: &[u32]) -> Result<()> {
    let dbv = st.current_db_version()?;
    let rows: Vec<(Vec<u8>, i64, Vec<u8>)> = st
        .conn
        .prepare(&format!("SELECT pk, cl, clocks FROM {}", ident(&t.clock)))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (pk, cl, blob) in rows {
        let mut rc = RowClock::decode(cl, &blob).map_err(|e| fail(format!("wavesync: corrupt clock row: {e}")))?;
        rc.cells.retain(|(cid, _)| !retired.contains(cid));
        if rc.is_live() {
            for &cid in added {
                let seq = st.next_seq()?;
                rc.set(cid, Cell { col_version: 1, db_version: dbv, site: 0, origin_version: dbv, seq });
            }
        }
        st.put_clock(t, &pk, &rc)?;
    }
    Ok(())
}

/// Merges the changes that were kept because their column did not exist yet.
pub fn replay_pending(st: &mut State, sync: &AtomicBool, table: &str) -> Result<()> {
    type PendingRow = (i64, String, Vec<u8>, String, rusqlite::types::Value, i64, i64, Vec<u8>, i64, i64, Option<i64>);
    let rows: Vec<PendingRow> = st
        .conn
        .prepare("SELECT rowid, tbl, pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_pending WHERE tbl = ?1 ORDER BY rowid")?
        .query_map([table], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?))
        })?
        .collect::<Result<_, _>>()?;
    let Some(t) = st.table(table)? else { return Ok(()) };
    for (rowid, tbl, pk, cid, val, col_version, db_version, site, cl, seq, origin_version) in rows {
        if t.cid_of(&cid).is_none() {
            continue; // still unknown: keep waiting
        }
        st.conn.execute("DELETE FROM wavesync_pending WHERE rowid = ?1", [rowid])?;
        let site_id: SiteId = site.as_slice().try_into().map_err(|_| fail("wavesync: malformed pending change"))?;
        let ch = Change {
            table: tbl,
            pk,
            cid,
            val: Val::from_ref((&val).into()),
            col_version,
            db_version,
            site_id,
            cl,
            seq,
            origin_version,
        };
        merge(st, sync, &ch)?;
    }
    Ok(())
}

/// Removes the metadata of CRRs whose table was dropped with a plain DROP TABLE.
/// Runs where no other statement reads the database (load, schema functions): SQLite
/// refuses DROP TABLE while another statement is active.
pub fn cleanup_dropped(st: &mut State) -> Result<()> {
    for t in st.tables()? {
        if t.status == Status::Dropped {
            schema::remove_metadata(st, &t)?;
        }
    }
    Ok(())
}
