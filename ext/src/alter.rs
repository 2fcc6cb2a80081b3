//! Schema changes of a CRR: `wavesync_begin_alter` / `wavesync_commit_alter`, the clean-up
//! of CRRs removed with a plain `DROP TABLE`, and replaying changes that arrived for
//! columns this replica did not have yet.
//!
//! Column ids in the clock blobs are stable: a kept or renamed column keeps its id, a new
//! column gets a fresh one, a dropped column's id is retired (recorded as kind 'dropped'
//! in wavesync_columns) and its cells are pruned. A changed primary key re-keys every row.

use crate::change::Change;
use crate::clock::Cell;
use crate::error::{fail, Result};
use crate::merge::merge;
use crate::schema;
use crate::state::{SiteId, State};
use crate::tableinfo::{Status, TableInfo};
use rusqlite::params;
use std::sync::atomic::AtomicBool;

/// Puts the table in "altering" mode: the update trigger stops naming columns (ALTER
/// TABLE would refuse to drop a column a trigger uses) and counts an update as a write of
/// every tracked column; inserts and deletes are recorded as usual. The db_version at
/// this point is kept, so commit_alter can tell rows written during the alteration.
pub fn begin_alter(st: &mut State, table: &str) -> Result<()> {
    let t = st.table(table)?.ok_or_else(|| fail(format!("wavesync_begin_alter: '{table}' is not a CRR")))?;
    if let Status::Altering(_) = t.status {
        return Ok(());
    }
    t.check_usable()?;
    let current = st.current_db_version()?;
    st.conn.execute(
        "INSERT OR REPLACE INTO wavesync_meta (key, value) VALUES ('altering:' || ?1, ?2)",
        params![t.name, current],
    )?;
    crate::triggers::create_triggers(&st.conn, &t, true)?;
    st.invalidate_tables();
    Ok(())
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
    let old = st.table(table)?.ok_or_else(|| fail(format!("wavesync_commit_alter: '{table}' is not a CRR")))?;
    let (name, pks, cols, int_key) = schema::inspect(&st.conn, &old.name)
        .map_err(|e| fail(e.to_string().replace("wavesync_as_crr:", "wavesync_commit_alter:")))?;
    let began_at = match old.status {
        Status::Altering(v) => v,
        _ => st.current_db_version()?,
    };
    st.conn.execute("DELETE FROM wavesync_meta WHERE key = 'altering:' || ?1", [&name])?;
    let mut next_cid: u32 = st.conn.query_row(
        "SELECT ifnull(max(idx), 0) FROM wavesync_columns WHERE tbl = ?1 AND kind IN ('col', 'dropped')",
        [&old.name],
        |r| r.get(0),
    )?;
    let rekey = pks != old.pks;
    let columns = assign_cids(&old, &cols, &mut next_cid);
    let kept: Vec<u32> = columns.iter().map(|c| c.0).collect();
    let retired: Vec<u32> = old.cids.iter().copied().filter(|c| !kept.contains(c)).collect();
    let added: Vec<u32> = kept.iter().copied().filter(|c| old.pos(*c).is_none()).collect();

    st.conn.execute("DELETE FROM wavesync_columns WHERE tbl = ?1 AND kind IN ('pk', 'col')", [&name])?;
    for (i, p) in pks.iter().enumerate() {
        st.conn.execute(
            "INSERT INTO wavesync_columns (tbl, kind, idx, name, pos) VALUES (?1, 'pk', ?2, ?3, ?2)",
            params![name, i as i64, p],
        )?;
    }
    for (pos, (cid, c)) in columns.iter().enumerate() {
        st.conn.execute(
            "INSERT INTO wavesync_columns (tbl, kind, idx, name, pos) VALUES (?1, 'col', ?2, ?3, ?4)",
            params![name, cid, c, pos as i64],
        )?;
    }
    let old_names: Vec<String> =
        old.cids.iter().filter(|c| retired.contains(c)).map(|c| old.col_name(*c).to_string()).collect();
    for (cid, dropped_name) in retired.iter().zip(&old_names) {
        st.conn.execute(
            "INSERT OR REPLACE INTO wavesync_columns (tbl, kind, idx, name, pos) VALUES (?1, 'dropped', ?2, ?3, -1)",
            params![name, cid, dropped_name],
        )?;
    }
    let mut info = TableInfo::new(name.clone(), pks, columns, old.policy);
    // The clock table keeps its layout unless the key changes (then it is made anew below).
    info.int_key = if rekey { int_key } else { old.int_key };
    if !rekey {
        // A table still in an earlier build's layout gets its log (a new key gets both below).
        schema::create_log(st, &name, info.int_key)?;
    }
    crate::triggers::create_triggers(&st.conn, &info, false)?;
    st.invalidate_tables();

    if rekey {
        // Old keys mean nothing under the new primary key: every row starts over, at a new
        // version, as if inserted now (tombstones of the old keys are gone with them).
        schema::raise_floor(st)?;
        schema::drop_clock_table(st, &info.name)?;
        schema::create_clock_table(st, &info.name, int_key)?;
        st.invalidate_tables();
        let info = st.table(&name)?.ok_or_else(|| fail(format!("wavesync_commit_alter: '{name}' vanished")))?;
        schema::backfill(st, &info)?;
        return replay_pending(st, sync, &info.name);
    }
    if !retired.is_empty() {
        prune(st, &info, &retired)?;
    }
    add_column_clocks(st, &info, &added, began_at)?;
    replay_pending(st, sync, &info.name)
}

/// Removes the cells of retired column ids from every clock row.
fn prune(st: &mut State, t: &TableInfo, retired: &[u32]) -> Result<()> {
    for (pk, mut rc) in st.clock_rows(t, false)? {
        let before = rc.cells.len();
        rc.cells.retain(|(cid, _)| !retired.contains(cid));
        if rc.cells.len() != before {
            st.put_clock(t, &pk, &rc)?;
        }
    }
    Ok(())
}

/// The site id of clocks that every replica derives by itself from a schema change (the
/// default value of a new column): with the same metadata everywhere, replicas that ran
/// the same migration hold identical clocks without exchanging them.
pub const MIGRATION_SITE: SiteId = [0; 16];

/// Gives every live row a clock for each new column, and a clock to rows that have none
/// (written while no trigger recorded them):
/// - rows untouched since begin_alter: col_version 1 from MIGRATION_SITE at the current
///   db_version — a migration that changes no data is not news;
/// - rows written during the alteration: a local write at a new db_version.
///
/// Cells with a kept change from a peer get no default clock: the kept change is merged
/// next and must not lose a tie against a default.
fn add_column_clocks(st: &mut State, t: &TableInfo, added: &[u32], began_at: i64) -> Result<()> {
    schema::backfill_missing(st, t)?;
    if added.is_empty() {
        return Ok(());
    }
    let kept: std::collections::HashSet<(Vec<u8>, String)> = st
        .conn
        .prepare("SELECT pk, cid FROM wavesync_pending WHERE tbl = ?1")?
        .query_map([&t.name], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let current = st.current_db_version()?;
    let mut migration_site = None;
    for (pk, mut rc) in st.clock_rows(t, false)? {
        if !rc.is_live() {
            continue;
        }
        let missing: Vec<u32> = added
            .iter()
            .copied()
            .filter(|c| rc.get(*c).is_none() && !kept.contains(&(pk.clone(), t.col_name(*c).to_string())))
            .collect();
        if missing.is_empty() {
            continue;
        }
        let written_during_alter = rc.max_db_version() > began_at;
        for cid in missing {
            let cell = if written_during_alter {
                let dbv = st.next_db_version(0)?;
                let seq = st.next_seq()?;
                Cell { col_version: 1, db_version: dbv, site: 0, origin_version: dbv, seq }
            } else {
                let site = match migration_site {
                    Some(s) => s,
                    None => {
                        let s = st.site_ord(&MIGRATION_SITE, true)?.unwrap_or(0);
                        migration_site = Some(s);
                        s
                    }
                };
                Cell { col_version: 1, db_version: current, site, origin_version: 0, seq: 0 }
            };
            rc.set(cid, cell);
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
            table: &tbl,
            pk: &pk,
            cid: &cid,
            val: (&val).into(),
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
