//! Tombstone compaction, and the full resync of a replica that fell behind it.
//!
//! `wavesync_compact(vector)` removes the tombstones (clock rows of deleted rows) whose
//! delete every peer has seen: the caller passes a vector that every known peer has reached
//! (the smallest of their vectors). The vector is remembered as the *compaction horizon*.
//! The trade-off: a replica whose vector does not reach the horizon may lack deletes this
//! replica no longer holds, so exact catch-up cannot bring it level. `wavesync_missing`
//! then answers a first row with a NULL site_id ("full resync needed"), and that replica
//! resyncs: `wavesync_resync_begin()`, merge every change of the peer (all of
//! `wavesync_changes`), `wavesync_resync_finish(peer_vector)`, which deletes (as local
//! deletes, so the delete spreads) the rows the peer no longer has although it saw every
//! write that made them. Never a silent divergence.
//! After a compaction, merges skip changes whose origin version this replica has already
//! applied, so an old copy of a deleted row cannot come back without its tombstone.

use crate::addwins;
use crate::change::{exec, silenced};
use crate::clock::{RowClock, SENTINEL};
use crate::error::{fail, ident, Result};
use crate::schema;
use crate::state::{SiteId, State};
use crate::tableinfo::{DeletePolicy, Status};
use crate::vector::{self, Vector};
use rusqlite::OptionalExtension;
use std::sync::atomic::AtomicBool;

pub fn horizon(st: &State) -> Result<Option<Vector>> {
    let blob: Option<Vec<u8>> = st
        .conn
        .prepare_cached("SELECT value FROM wavesync_meta WHERE key = 'compact_horizon'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    match blob {
        None => Ok(None),
        Some(b) => vector::decode(&b).map(Some).map_err(|e| fail(format!("wavesync: corrupt compaction horizon: {e}"))),
    }
}

fn covered(v: &Vector, site: &SiteId, version: i64) -> bool {
    v.get(site).is_some_and(|runs| runs.iter().any(|(s, e)| *s <= version && version <= *e))
}

/// Whether every cell of the row was written by a version `v` holds.
fn all_cells_covered(st: &mut State, rc: &RowClock, v: &Vector) -> Result<bool> {
    for (cid, c) in &rc.cells {
        if !addwins::is_tag(*cid) && !addwins::is_delete(*cid) {
            continue; // what an add_wins delete observed: not a write of its own
        }
        if !covered(v, &st.site_of(c.site)?, c.origin_version) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Removes the tombstones whose deletes `safe` covers; returns how many.
pub fn compact(st: &mut State, safe: &Vector) -> Result<i64> {
    schema::raise_floor(st)?;
    let mut removed = 0;
    // The versions of the deletes whose tombstones go: a replica lacking one of them may
    // still hold the row, so it is behind the horizon; one holding them all is not (every
    // other tombstone is still here for exact catch-up).
    let mut gone_deletes: std::collections::BTreeMap<SiteId, Vec<i64>> = Default::default();
    for t in st.tables()? {
        if t.status == Status::Dropped {
            continue;
        }
        for (pk, rc) in st.clock_rows(&t, true)? {
            let deletes: Vec<(SiteId, i64)> = match t.policy {
                DeletePolicy::DeleteWins => match rc.get(SENTINEL) {
                    Some(s) => vec![(st.site_of(s.site)?, s.origin_version)],
                    None => continue,
                },
                // A dead add_wins row holds only its deletes (and tags): all must be covered.
                DeletePolicy::AddWins => {
                    let mut v = Vec::new();
                    for (cid, c) in &rc.cells {
                        if addwins::is_tag(*cid) || addwins::is_delete(*cid) {
                            v.push((st.site_of(c.site)?, c.origin_version));
                        }
                    }
                    v
                }
            };
            if deletes.is_empty() || !deletes.iter().all(|(site, v)| covered(safe, site, *v)) {
                continue;
            }
            st.conn
                .prepare_cached(&format!("DELETE FROM {} WHERE pk = ?1", ident(&t.clock)))?
                .execute([t.key(&pk)?])?;
            removed += 1;
            for (site, v) in deletes {
                gone_deletes.entry(site).or_default().push(v);
            }
        }
    }
    // The change log entries of the clock rows just removed, and of every write since
    // superseded by a later one.
    prune_logs(st)?;
    if gone_deletes.is_empty() {
        return Ok(0);
    }
    let mut h = horizon(st)?.unwrap_or_default();
    for (site, mut versions) in gone_deletes {
        versions.sort_unstable();
        versions.dedup();
        let merged = h.entry(site).or_default();
        let mut runs: Vec<(i64, i64)> = Vec::new();
        for v in versions {
            match runs.last_mut() {
                Some(last) if v == last.1 + 1 => last.1 = v,
                _ => runs.push((v, v)),
            }
        }
        for (s, e) in runs {
            vector::add_run(merged, s, e);
        }
    }
    st.conn.execute(
        "INSERT INTO wavesync_meta (key, value) VALUES ('compact_horizon', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [vector::encode(&h)],
    )?;
    st.forget_horizon();
    Ok(removed)
}

/// Removes every change log entry no clock row needs any more (`schema::prune_log`);
/// returns how many.
pub fn prune_logs(st: &mut State) -> Result<i64> {
    let mut n = 0;
    for t in st.tables()? {
        n += schema::prune_log(st, &t)? as i64;
    }
    Ok(n)
}

/// Tombstones held: clock rows of deleted rows (delete_wins) and dead add_wins rows.
pub fn tombstones(st: &mut State) -> Result<i64> {
    let mut n = 0;
    for t in st.tables()? {
        if t.status == Status::Dropped {
            continue;
        }
        n += st.conn.query_row(&format!("SELECT count(*) FROM {} WHERE cl % 2 = 0", ident(&t.clock)), [], |r| {
            r.get::<_, i64>(0)
        })?;
    }
    Ok(n)
}

/// Does a replica holding `theirs` lack versions below the compaction horizon?
pub fn behind_horizon(st: &State, theirs: &Vector) -> Result<bool> {
    let Some(h) = horizon(st)? else { return Ok(false) };
    let empty = Vec::new();
    Ok(h.iter().any(|(site, runs)| !vector::subtract(runs, theirs.get(site).unwrap_or(&empty)).is_empty()))
}

pub fn resync_begin(st: &mut State) -> Result<()> {
    st.conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS wavesync_resync (tbl TEXT NOT NULL, pk BLOB NOT NULL, PRIMARY KEY (tbl, pk)) WITHOUT ROWID;
         DELETE FROM temp.wavesync_resync;",
    )?;
    st.resync = true;
    Ok(())
}

/// Notes a row the peer sent during a resync.
pub fn note_resync(st: &State, table: &str, pk: &[u8]) -> Result<()> {
    st.conn
        .prepare_cached("INSERT OR IGNORE INTO temp.wavesync_resync (tbl, pk) VALUES (?1, ?2)")?
        .execute(rusqlite::params![table, pk])?;
    Ok(())
}

/// Deletes the live rows the peer did not send although it saw every write that made
/// them (it deleted them and compacted the tombstones); returns how many.
pub fn resync_finish(st: &mut State, sync: &AtomicBool, peer: &Vector) -> Result<i64> {
    if !st.resync {
        return Err(fail("wavesync_resync_finish: no resync in progress; call wavesync_resync_begin() first"));
    }
    let mut deleted = 0;
    for t in st.tables()? {
        if t.status != Status::Ok {
            continue;
        }
        for (pk, rc) in st.clock_rows(&t, false)? {
            if !rc.is_live() {
                continue;
            }
            let sent = st
                .conn
                .prepare_cached("SELECT 1 FROM temp.wavesync_resync WHERE tbl = ?1 AND pk = ?2")?
                .exists(rusqlite::params![t.name, pk])?;
            if sent || !all_cells_covered(st, &rc, peer)? {
                continue;
            }
            let keys = crate::pack::unpack(&pk).map_err(|e| fail(format!("wavesync: corrupt clock key: {e}")))?;
            // Delete the base row without the trigger (we hold the state), then record the
            // delete as the trigger would have: a local delete that spreads to the others.
            silenced(sync, || exec(st, &t.sql.delete_row, keys.iter().cloned()))?;
            crate::local::after_delete(st, &t, &pk)?;
            deleted += 1;
        }
    }
    // This replica now holds what the peer held at `peer`: every live row was sent, every
    // row it deleted and compacted is gone here. Mark those versions applied, so that the
    // next catch-up with any peer is exact again (the compacted versions have no change
    // left that could mark them).
    let me = st.site_id()?;
    st.tx()?;
    for (site, runs) in peer {
        if *site == me {
            continue;
        }
        let ord = st.site_ord(site, true)?.unwrap_or(0);
        for &(start, end) in runs {
            vector::mark_applied(st, ord, site, start, end)?;
        }
    }
    st.conn.execute_batch("DELETE FROM temp.wavesync_resync;")?;
    st.resync = false;
    Ok(deleted)
}
