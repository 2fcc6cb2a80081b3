//! The peers this replica has heard from, remembered in the database, and the automatic
//! compaction they bound (DAEMON.md "Compaction and resync").
//!
//! Every catch-up message carries its sender's site id and vector. The database thread
//! keeps the latest of each in `wavesyncd_peers` (written in the transaction of the next
//! apply, or alone within a second), with the time it was heard. Every `compact_every` it
//! compacts below the meet of its own vector and the vector of every peer heard within
//! `retention`: what all of them have seen. A peer away longer than that is left out: when
//! it returns it is behind the compaction horizon and resyncs (`net/resync.rs`). Until the
//! first compaction is due, it still prunes the change logs (`wavesync_prune_log`).
//!
//! `wavesyncd_state` holds the time tracking began (no compaction before a whole retention
//! has passed since: a peer away when the daemon first started must have had its chance to
//! be heard) and the resync under way, if any (so that one cut short by a crash is run
//! again after the restart instead of leaving rows the others deleted).

use super::{retry_busy, write_tx, SiteId};
use crate::metrics::Counters;
use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS wavesyncd_peers (
    site_id BLOB PRIMARY KEY NOT NULL,
    vector BLOB NOT NULL,
    last_seen INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS wavesyncd_state (key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;
INSERT OR IGNORE INTO wavesyncd_state (key, value) VALUES ('tracking_since', CAST(strftime('%s', 'now') AS INTEGER));
";

/// Heard vectors are written at the latest this long after they arrive.
const WRITE_WITHIN: Duration = Duration::from_secs(1);
/// How often the tombstone gauge is recounted (a scan of the clock tables).
const COUNT_EVERY: Duration = Duration::from_secs(60);

pub struct Peers {
    /// Vectors heard and not written yet, with the time each was heard.
    pending: HashMap<SiteId, (Vec<u8>, u64)>,
    pending_since: Option<Instant>,
    retention: Duration,
    compact_every: Duration,
    next_compaction: Instant,
    next_count: Instant,
}

impl Peers {
    pub fn new(retention: Duration, compact_every: Duration) -> Peers {
        let now = Instant::now();
        Peers {
            pending: HashMap::new(),
            pending_since: None,
            retention,
            compact_every,
            next_compaction: now + compact_every,
            next_count: now,
        }
    }

    pub fn heard(&mut self, site: SiteId, vector: Vec<u8>) {
        self.pending.insert(site, (vector, now_unix()));
        self.pending_since.get_or_insert_with(Instant::now);
    }

    /// Writes the vectors heard, inside the caller's transaction; call `written` once it
    /// committed.
    pub fn write(&self, c: &Connection) -> Result<()> {
        let mut up = c.prepare_cached(
            "INSERT INTO wavesyncd_peers (site_id, vector, last_seen) VALUES (?1, ?2, ?3)
             ON CONFLICT (site_id) DO UPDATE SET vector = excluded.vector, last_seen = max(last_seen, excluded.last_seen)",
        )?;
        for (site, (vector, seen)) in &self.pending {
            up.execute(params![site.as_slice(), vector, *seen as i64])?;
        }
        Ok(())
    }

    pub fn written(&mut self) {
        self.pending.clear();
        self.pending_since = None;
    }

    /// Periodic work: heard vectors nobody wrote yet, the compaction when it is due (not
    /// while a resync runs: its deletes are computed against the notes it made), the
    /// tombstone gauge.
    pub fn upkeep(&mut self, conn: &Connection, me: &SiteId, counters: &Counters, resyncing: bool) {
        let now = Instant::now();
        if self.pending_since.is_some_and(|t| now >= t + WRITE_WITHIN) {
            match retry_busy("remember peers", || write_tx(conn, |c| self.write(c))) {
                Ok(()) => self.written(),
                Err(e) => warn!("cannot remember the peers' vectors (will retry): {e:#}"),
            }
        }
        if now >= self.next_compaction && !resyncing {
            self.next_compaction = now + self.compact_every;
            match self.compact(conn, me) {
                Ok(Some(removed)) => {
                    counters.compactions.fetch_add(1, Ordering::Relaxed);
                    counters.tombstones_removed.fetch_add(removed as u64, Ordering::Relaxed);
                    counters.gauges.last_compaction_unix.store(now_unix() as i64, Ordering::Relaxed);
                    self.next_count = now;
                }
                // Too early to compact: still remove the change log entries later writes
                // superseded (a compaction does that too).
                Ok(None) => match retry_busy("prune the change logs", || {
                    write_tx(conn, |c| Ok(c.query_row("SELECT wavesync_prune_log()", [], |r| r.get::<_, i64>(0))?))
                }) {
                    Ok(n) if n > 0 => info!(removed = n, "pruned change log entries later writes superseded"),
                    Ok(_) => {}
                    Err(e) => warn!("cannot prune the change logs (will retry): {e:#}"),
                },
                Err(e) => warn!("automatic compaction failed (will retry): {e:#}"),
            }
        }
        if now >= self.next_count {
            self.next_count = now + COUNT_EVERY;
            match conn.query_row("SELECT wavesync_tombstones()", [], |r| r.get::<_, i64>(0)) {
                Ok(n) => counters.gauges.tombstones.store(n, Ordering::Relaxed),
                Err(e) => debug!("cannot count tombstones: {e}"),
            }
        }
    }

    /// Compacts below what this replica and every peer heard within the retention have
    /// seen; None when it is too early (less than a retention since tracking began).
    fn compact(&self, conn: &Connection, me: &SiteId) -> Result<Option<i64>> {
        let since: i64 = conn
            .query_row("SELECT value FROM wavesyncd_state WHERE key = 'tracking_since'", [], |r| r.get(0))
            .optional()?
            .unwrap_or(i64::MAX);
        let now = now_unix() as i64;
        let retention = self.retention.as_secs() as i64;
        if now - since < retention {
            debug!(wait_s = retention - (now - since), "no compaction before a whole retention has passed");
            return Ok(None);
        }
        let began = Instant::now();
        debug!("compaction starts");
        let (removed, peers) = retry_busy("compact", || {
            write_tx(conn, |c| {
                let mut safe: Vec<u8> = c.query_row("SELECT wavesync_vector()", [], |r| r.get(0))?;
                let mut peers = 0;
                let mut stmt = c.prepare_cached("SELECT site_id, vector FROM wavesyncd_peers WHERE last_seen >= ?1")?;
                let mut rows = stmt.query([now - retention])?;
                while let Some(r) = rows.next()? {
                    let site: Vec<u8> = r.get(0)?;
                    if site == me.as_slice() {
                        continue;
                    }
                    let theirs: Vec<u8> = r.get(1)?;
                    safe = c
                        .query_row("SELECT wavesync_vector_meet(?1, ?2)", params![safe, theirs], |r| r.get(0))
                        .with_context(|| format!("the remembered vector of peer {}", hex::encode(&site)))?;
                    peers += 1;
                }
                let removed: i64 = c.query_row("SELECT wavesync_compact(?1)", [&safe], |r| r.get(0))?;
                c.execute(
                    "INSERT INTO wavesyncd_state (key, value) VALUES ('last_compaction', ?1)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [now],
                )?;
                Ok((removed, peers))
            })
        })?;
        if removed > 0 {
            info!(
                removed,
                peers,
                ms = began.elapsed().as_millis() as u64,
                "compacted tombstones every peer heard within the retention has seen"
            );
        } else {
            debug!(peers, "compaction: nothing to remove");
        }
        Ok(Some(removed))
    }
}

/// The peer a resync under way (or cut short) was run from.
pub fn resync_under_way(conn: &Connection) -> Result<Option<String>> {
    Ok(conn.query_row("SELECT value FROM wavesyncd_state WHERE key = 'resync_from'", [], |r| r.get(0)).optional()?)
}

pub fn set_resync(c: &Connection, from: Option<&SiteId>) -> Result<()> {
    match from {
        Some(site) => c.execute(
            "INSERT INTO wavesyncd_state (key, value) VALUES ('resync_from', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [hex::encode(site)],
        )?,
        None => c.execute("DELETE FROM wavesyncd_state WHERE key = 'resync_from'", [])?,
    };
    Ok(())
}
