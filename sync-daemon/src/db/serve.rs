//! The responder side of catch-up: what a replica lacks (its vector against ours, from
//! `wavesync_missing`), cut into pages of whole versions within the requester's budget.
//!
//! Finding the changes of a version range walks every clock row changed since the range's
//! first version (the extension's index holds each row's newest cell; a cell's db_version
//! is never below its origin version, whatever the origin), and SQLite sorts what it
//! found before the first row comes out. Read a page per request, a run of N changes would
//! cost N/page such walks: quadratic. So the rows of a run are read ahead into a *backlog*,
//! a TEMP table (SQLite's temp storage, not the daemon's memory), sorted, whole versions,
//! with one walk: two pages' worth for the first request of a run, `BACKLOG_PAGES` pages
//! when a request continues where the previous one stopped; requests read their pages
//! from there by id. Several requesters keep their own backlogs (`MAX_BACKLOGS`).
//!
//! The server has its own thread and its own connection: a read ahead walks the
//! clock rows for as long as it takes (0.6 s for 1M changes, growing with the database),
//! and on the database thread it held back publishing local commits and applying gossip.

use super::{fold_journal, open, read_row, DbConfig, SiteId, BUSY_TIMEOUT, CHANGE_COLS};
use crate::wire::{ChangeRow, Page};
use anyhow::{anyhow, Context, Result};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use rusqlite::{params, Connection, OpenFlags};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tracing::{debug, info};

/// Pages of a run a backlog holds (at most; whole versions).
const BACKLOG_PAGES: usize = 16;
/// Pages the first read of a run holds. Not one: the read ends on a whole version, so one
/// page's worth is a little less than a page, and filling the rest took a second walk (as
/// long as the first) before the first response could go.
const FIRST_READ_PAGES: usize = 2;
/// A backlog nobody continued for this long is dropped (its requester went away).
const BACKLOG_IDLE: Duration = Duration::from_secs(60);
/// Backlogs kept at once (one per requester catching up); the least recently used goes.
const MAX_BACKLOGS: usize = 4;

/// A request to answer, within the budget: a catch-up (pages of what `vector` lacks) or a
/// resync page (every change after the (db_version, seq) cursor `after`).
pub enum ServeRequest {
    Catchup { vector: Vec<u8>, max_rows: usize, max_bytes: usize, reply: oneshot::Sender<Result<Served>> },
    Resync { after: (i64, i64), max_rows: usize, max_bytes: usize, reply: oneshot::Sender<Result<ResyncServed>> },
}

/// Answers catch-up requests from its own connection, keeping their backlogs.
pub struct Server {
    conn: Connection,
    backlogs: Vec<Backlog>,
    /// Reads ahead so far (a unit test checks that requests mostly do without one).
    backlog_reads: u64,
}

pub struct Served {
    /// The requester is behind our compaction horizon: no pages, it should resync.
    pub resync_needed: bool,
    /// Our vector, as of this answer.
    pub vector: Vec<u8>,
    pub pages: Vec<Page>,
    pub more: bool,
    /// Versions the requester still lacks after these pages.
    pub remaining_versions: u64,
    /// Versions the requester lacked in total (its lag behind us).
    pub lacked_versions: u64,
}

/// One resync page.
pub struct ResyncServed {
    pub vector: Vec<u8>,
    pub db_version: i64,
    pub rows: Vec<ChangeRow>,
    /// Where the next request resumes; None: that was everything.
    pub next: Option<(i64, i64)>,
}

/// Versions `next..=held` of `site`, sorted, in rows `next_id..=last_id` of
/// `temp.wavesyncd_backlog` (rows from `first_id` on were read for it). Once served up to
/// `held` its rows go and it stays as the mark that a request stopped at `next`: the
/// request that continues there reads more ahead.
pub(super) struct Backlog {
    site: SiteId,
    next: i64,
    held: i64,
    first_id: i64,
    next_id: i64,
    last_id: i64,
    used: Instant,
    /// Rows per version it held (bounds the versions the next read ahead walks and sorts).
    rows_per_version: f64,
}

impl Backlog {
    fn is_empty(&self) -> bool {
        self.next > self.held
    }
}

struct Fill {
    pages: Vec<Page>,
    rows: usize,
    bytes: usize,
    max_rows: usize,
    max_bytes: usize,
    full: bool,
}

impl Fill {
    fn push(&mut self, page: Page) {
        if page.end >= page.start {
            self.pages.push(page);
        }
    }

    fn spent(&self) -> bool {
        self.rows >= self.max_rows || self.bytes >= self.max_bytes
    }
}

/// How a stream of rows sorted by (origin_version, seq) was cut.
#[derive(Clone, Copy)]
enum Cut {
    /// The rows ran out: every version read is in the page.
    End,
    /// The budget ran out before `version` (not in the page), whose first row had id `id`.
    Budget { version: i64, id: i64 },
}

/// Adds `rows` — (id, row), sorted by origin_version then seq — to `page` one whole version
/// at a time while the budget allows (the first version of a response always fits).
fn cut(fill: &mut Fill, page: &mut Page, rows: &mut dyn Iterator<Item = Result<(i64, ChangeRow)>>) -> Result<Cut> {
    // The version being read: (version, id of its first row, its rows, their size).
    let mut version: Option<(i64, i64, Vec<ChangeRow>, usize)> = None;
    loop {
        let next = rows.next().transpose()?;
        let boundary = match (&version, &next) {
            (Some((v, ..)), Some((_, r))) => r.origin_version != *v,
            (Some(_), None) => true,
            _ => false,
        };
        if boundary {
            if let Some((v, id, vrows, vbytes)) = version.take() {
                let empty = fill.pages.is_empty() && page.rows.is_empty();
                if !empty && (fill.rows + vrows.len() > fill.max_rows || fill.bytes + vbytes > fill.max_bytes) {
                    return Ok(Cut::Budget { version: v, id });
                }
                fill.rows += vrows.len();
                fill.bytes += vbytes;
                page.rows.extend(vrows);
                page.end = v;
            }
        }
        let Some((id, r)) = next else { return Ok(Cut::End) };
        let size = r.approx_size();
        match &mut version {
            Some((_, _, vrows, vbytes)) => {
                *vbytes += size;
                vrows.push(r);
            }
            None => version = Some((r.origin_version, id, vec![r], size)),
        }
    }
}

impl Server {
    /// Opens the server's connection. It writes only its TEMP backlog table, but it is not
    /// opened read-only: the last connection to close checkpoints the WAL and removes the
    /// `-wal` and `-shm` files, and a read-only one cannot (they would be left behind).
    pub fn open(cfg: &DbConfig) -> Result<Server> {
        let conn = open(&cfg.path, &cfg.ext, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(Server { conn, backlogs: Vec::new(), backlog_reads: 0 })
    }

    /// The thread body: answers requests until every sender is gone; drops idle backlogs.
    pub fn run(mut self, requests: Receiver<ServeRequest>) {
        loop {
            match requests.recv_timeout(BACKLOG_IDLE / 4) {
                Ok(ServeRequest::Catchup { vector, max_rows, max_bytes, reply }) => {
                    let _ = reply.send(self.serve(&vector, max_rows, max_bytes));
                }
                Ok(ServeRequest::Resync { after, max_rows, max_bytes, reply }) => {
                    let _ = reply.send(self.serve_resync(after, max_rows, max_bytes));
                }
                Err(RecvTimeoutError::Timeout) => self.expire_backlogs(),
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        info!("catch-up server thread stopped");
    }

    /// What a replica with `vector` lacks, as pages of whole versions, within the budget (a
    /// version larger than the budget is sent alone).
    pub fn serve(&mut self, vector: &[u8], max_rows: usize, max_bytes: usize) -> Result<Served> {
        self.expire_backlogs();
        fold_journal(&self.conn)?;
        let ours: Vec<u8> = self.conn.prepare_cached("SELECT wavesync_vector()")?.query_row([], |r| r.get(0))?;
        let runs: Vec<(Option<Vec<u8>>, i64, i64)> = {
            let mut stmt =
                self.conn.prepare_cached("SELECT site_id, start_version, end_version FROM wavesync_missing(?1)")?;
            let rows = stmt.query_map([vector], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<Result<_, _>>().context("wavesync_missing rejected the peer's vector")?
        };
        // A first row without a site: the requester is behind our compaction horizon.
        if runs.first().is_some_and(|r| r.0.is_none()) {
            return Ok(Served {
                resync_needed: true,
                vector: ours,
                pages: Vec::new(),
                more: false,
                remaining_versions: 0,
                lacked_versions: 0,
            });
        }
        let mut runs: Vec<(Vec<u8>, i64, i64)> =
            runs.into_iter().filter_map(|(site, s, e)| site.map(|site| (site, s, e))).collect();
        // The latest runs first: reading a run walks the clock rows changed since its start,
        // so late runs are cheap, and they are what a returning peer lacks.
        runs.sort_by_key(|r| std::cmp::Reverse(r.1));
        let lacked_versions: u64 = runs.iter().map(|(_, s, e)| (e - s + 1).max(0) as u64).sum();
        let mut fill = Fill { pages: Vec::new(), rows: 0, bytes: 0, max_rows, max_bytes, full: false };
        let mut remaining_versions = 0u64;
        for (site, start, end) in runs {
            let site: SiteId =
                site.try_into().map_err(|_| anyhow!("wavesync_missing returned a site id that is not 16 bytes"))?;
            // A run from version 1 (a replica the requester never heard from) walks every
            // clock row: once this response holds rows, they go first and the run waits for
            // the next request.
            let deferred = start <= 1 && fill.rows > 0 && self.backlog_at(site, start)?.is_none();
            if fill.full || deferred {
                fill.full = true;
                remaining_versions += (end - start + 1) as u64;
                continue;
            }
            let covered = self.fill_run(&mut fill, site, start, end)?;
            remaining_versions += (end - covered) as u64;
        }
        Ok(Served {
            resync_needed: false,
            vector: ours,
            more: fill.full,
            pages: fill.pages,
            remaining_versions,
            lacked_versions,
        })
    }

    /// One page of a resync: every change after the cursor `after` = (db_version, seq), in
    /// that order, within the budget, with our vector and db_version read in the same
    /// transaction. Changes written meanwhile get higher db_versions, so a later page has
    /// them; the requester finishes with the vector of the first page.
    pub fn serve_resync(&mut self, after: (i64, i64), max_rows: usize, max_bytes: usize) -> Result<ResyncServed> {
        fold_journal(&self.conn)?;
        self.conn.execute_batch("BEGIN")?;
        let out = self.read_resync(after, max_rows, max_bytes);
        let _ = self.conn.execute_batch("COMMIT");
        out
    }

    fn read_resync(&mut self, after: (i64, i64), max_rows: usize, max_bytes: usize) -> Result<ResyncServed> {
        let (vector, db_version): (Vec<u8>, i64) =
            self.conn
                .query_row("SELECT wavesync_vector(), wavesync_db_version()", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
        // The rows of version `after.0` up to seq `after.1` were sent: at most seq + 1 of
        // them come first and are skipped.
        let skip = (after.1 + 1).max(0);
        let limit = max_rows as i64 + skip;
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {CHANGE_COLS} FROM wavesync_changes WHERE db_version >= ?1 ORDER BY db_version, seq LIMIT ?2"
        ))?;
        let mut rows = stmt.query(params![after.0, limit])?;
        let (mut out, mut bytes, mut read, mut cut) = (Vec::new(), 0usize, 0i64, false);
        while let Some(r) = rows.next()? {
            read += 1;
            let row = read_row(r)?;
            if (row.db_version, row.seq) <= after {
                continue;
            }
            if out.len() >= max_rows || (bytes >= max_bytes && !out.is_empty()) {
                cut = true;
                break;
            }
            bytes += row.approx_size();
            out.push(row);
        }
        // Fewer rows than asked for: SQLite had no more.
        let done = !cut && read < limit;
        let next = if done { None } else { out.last().map(|r| (r.db_version, r.seq)).or(Some(after)) };
        Ok(ResyncServed { vector, db_version, rows: out, next })
    }

    /// Adds pages for the run `start..=end` of `site`; returns the last version covered.
    fn fill_run(&mut self, fill: &mut Fill, site: SiteId, start: i64, end: i64) -> Result<i64> {
        let mut page = Page { site, start, end: start - 1, rows: Vec::new() };
        let mut lo = start;
        while lo <= end {
            let i = match self.backlog_at(site, lo)? {
                Some(i) => i,
                None => self.read_backlog(site, lo, end, fill.max_rows)?,
            };
            let covered = self.fill_from_backlog(i, fill, &mut page, end)?;
            if fill.full || (covered < end && fill.spent()) {
                fill.full = true;
                fill.push(page);
                return Ok(covered);
            }
            lo = covered + 1;
        }
        fill.push(page);
        Ok(end)
    }

    /// The backlog that holds version `lo` of `site`, positioned there.
    fn backlog_at(&mut self, site: SiteId, lo: i64) -> Result<Option<usize>> {
        let Some(i) = self.backlogs.iter().position(|b| b.site == site && b.next <= lo && lo <= b.held) else {
            return Ok(None);
        };
        if self.backlogs[i].next < lo {
            // The requester got some of these versions meanwhile (gossip).
            self.skip_to(i, lo)?;
        }
        Ok(Some(i))
    }

    /// Reads versions `lo..` (to `end` at most) of `site` ahead into a new backlog:
    /// `FIRST_READ_PAGES` pages, or `BACKLOG_PAGES` when a request stopped at `lo` before.
    fn read_backlog(&mut self, site: SiteId, lo: i64, end: i64, max_rows: usize) -> Result<usize> {
        let continued = self.backlogs.iter().position(|b| b.site == site && b.next == lo && b.is_empty());
        let pages = if continued.is_some() { BACKLOG_PAGES } else { FIRST_READ_PAGES };
        let cap = (pages * max_rows.max(1)) as i64;
        // SQLite reads and sorts every change in the range to keep the first `cap`: a
        // continued run reads the versions that held about that many rows before (+25%).
        let mut held = end;
        if let Some(i) = continued {
            let b = self.backlogs.remove(i);
            let versions = (cap as f64 * 1.25 / b.rows_per_version).ceil() as i64;
            held = end.min(lo.saturating_add(versions.max(1) - 1));
        }
        if self.backlogs.len() >= MAX_BACKLOGS {
            let lru = (0..self.backlogs.len()).min_by_key(|&i| self.backlogs[i].used).unwrap_or(0);
            self.drop_backlog(lru);
        }
        let began = Instant::now();
        self.conn.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS wavesyncd_backlog (id INTEGER PRIMARY KEY, \"table\", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version)",
        )?;
        let first_id: i64 =
            self.conn.query_row("SELECT coalesce(max(id), 0) + 1 FROM temp.wavesyncd_backlog", [], |r| r.get(0))?;
        let held = match self.read_ahead(site, lo, held, cap, first_id) {
            Ok(held) => held,
            Err(e) => {
                // Nothing half-read stays behind.
                let _ = self.conn.execute("DELETE FROM temp.wavesyncd_backlog WHERE id >= ?1", [first_id]);
                return Err(e);
            }
        };
        let last_id: i64 =
            self.conn.query_row("SELECT coalesce(max(id), 0) FROM temp.wavesyncd_backlog", [], |r| r.get(0))?;
        let rows = (last_id - first_id + 1).max(0);
        debug!(site = %hex::encode(site), lo, held, rows, ms = began.elapsed().as_millis() as u64, "catch-up backlog read");
        let rows_per_version = (rows as f64 / (held - lo + 1) as f64).max(0.01);
        self.backlogs.push(Backlog {
            site,
            next: lo,
            held,
            first_id,
            next_id: first_id,
            last_id,
            used: Instant::now(),
            rows_per_version,
        });
        Ok(self.backlogs.len() - 1)
    }

    /// Inserts versions `lo..=held` of `site` into the backlog table from row `first_id` on,
    /// at most `cap` rows (then ending on a whole version); returns the last version read.
    fn read_ahead(&mut self, site: SiteId, lo: i64, mut held: i64, cap: i64, first_id: i64) -> Result<i64> {
        self.backlog_reads += 1;
        // Rows go in in ORDER BY order, so ids follow (origin_version, seq). With a LIMIT,
        // SQLite's sort keeps only that many rows: the last version may be cut short.
        let read = |held: i64, limit: i64| -> Result<usize> {
            Ok(self
                .conn
                .prepare_cached(&format!(
                    "INSERT INTO temp.wavesyncd_backlog ({CHANGE_COLS}) SELECT {CHANGE_COLS} FROM wavesync_changes \
                     WHERE site_id = ?1 AND origin_version BETWEEN ?2 AND ?3 ORDER BY origin_version, seq LIMIT ?4"
                ))?
                .execute(params![site.as_slice(), lo, held, limit])?)
        };
        let n = read(held, cap)?;
        if n as i64 == cap {
            let top: i64 = self.conn.query_row(
                "SELECT max(origin_version) FROM temp.wavesyncd_backlog WHERE id >= ?1",
                [first_id],
                |r| r.get(0),
            )?;
            self.conn.execute(
                "DELETE FROM temp.wavesyncd_backlog WHERE id >= ?1 AND origin_version = ?2",
                params![first_id, top],
            )?;
            if top > lo {
                held = top - 1;
            } else {
                // One version larger than the cap: it is held whole (pages never split one).
                held = lo;
                read(held, -1)?;
            }
        }
        Ok(held)
    }

    /// Pages from backlog `i`, up to version `end`; returns the last version covered.
    fn fill_from_backlog(&mut self, i: usize, fill: &mut Fill, page: &mut Page, end: i64) -> Result<i64> {
        let b = &mut self.backlogs[i];
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {CHANGE_COLS}, id FROM temp.wavesyncd_backlog WHERE id BETWEEN ?1 AND ?2 AND origin_version <= ?3 ORDER BY id"
        ))?;
        let mut rows = stmt.query(params![b.next_id, b.last_id, end])?;
        let mut stream = std::iter::from_fn(|| {
            rows.next()
                .map_err(anyhow::Error::from)
                .and_then(|r| r.map(|r| Ok((r.get::<_, i64>(10)?, read_row(r)?))).transpose())
                .transpose()
        });
        let stop = cut(fill, page, &mut stream)?;
        drop(rows);
        drop(stmt);
        b.used = Instant::now();
        match stop {
            Cut::Budget { version, id } => {
                page.end = version - 1;
                (b.next, b.next_id) = (version, id);
                fill.full = true;
            }
            Cut::End => {
                page.end = b.held.min(end);
                b.next = page.end + 1;
                if !b.is_empty() {
                    // Stopped at the requester's end, inside the backlog.
                    let next = b.next;
                    self.skip_to(i, next)?;
                }
            }
        }
        if self.backlogs[i].is_empty() {
            // Served: only the mark of where it stopped stays.
            let b = &mut self.backlogs[i];
            self.conn
                .execute("DELETE FROM temp.wavesyncd_backlog WHERE id BETWEEN ?1 AND ?2", [b.first_id, b.last_id])?;
            b.first_id = b.last_id + 1;
            b.next_id = b.first_id;
        }
        Ok(page.end)
    }

    /// Moves backlog `i` on to version `v` (its rows are sorted by version).
    fn skip_to(&mut self, i: usize, v: i64) -> Result<()> {
        let b = &mut self.backlogs[i];
        b.next_id = self.conn.query_row(
            "SELECT coalesce(min(id), ?3 + 1) FROM temp.wavesyncd_backlog WHERE id BETWEEN ?1 AND ?3 AND origin_version >= ?2",
            params![b.next_id, v, b.last_id],
            |r| r.get(0),
        )?;
        b.next = v;
        Ok(())
    }

    /// Drops backlogs left idle (their requesters went away or ask for something else).
    /// Called on every request and when no request came for a while.
    fn expire_backlogs(&mut self) {
        while let Some(i) = self.backlogs.iter().position(|b| b.used.elapsed() > BACKLOG_IDLE) {
            self.drop_backlog(i);
        }
    }

    fn drop_backlog(&mut self, i: usize) {
        let b = self.backlogs.remove(i);
        if b.first_id <= b.last_id {
            if let Err(e) = self
                .conn
                .execute("DELETE FROM temp.wavesyncd_backlog WHERE id BETWEEN ?1 AND ?2", [b.first_id, b.last_id])
            {
                debug!("cannot empty a catch-up backlog: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Db, DbConfig};
    use super::Server;
    use crate::metrics::Counters;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    fn open(dir: &Path, name: &str) -> Db {
        let db = Db::open(&config(dir, name), Arc::new(Counters::default()), crate::events::channel()).expect("open");
        db.conn
            .execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, n INTEGER); SELECT wavesync_as_crr('t');")
            .unwrap();
        db
    }

    fn config(dir: &Path, name: &str) -> DbConfig {
        let ext = std::env::var_os("WAVESYNC_EXT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dist/wavesync"));
        let hour = std::time::Duration::from_secs(3600);
        DbConfig { path: dir.join(name), ext, retention: hour, compact_every: hour }
    }

    /// The catch-up server of a database `open` made.
    fn server(dir: &Path, name: &str) -> Server {
        Server::open(&config(dir, name)).expect("open the server")
    }

    /// `txs` transactions of `per_tx` new rows each; every third one also rewrites rows of
    /// older versions (their cells move to the new version).
    fn write(db: &Db, first_tx: i64, txs: i64, per_tx: i64) {
        for tx in first_tx..first_tx + txs {
            db.conn.execute_batch("BEGIN").unwrap();
            for i in 0..per_tx {
                db.conn.execute("INSERT INTO t (id, v, n) VALUES (?1, 'x', ?1)", [tx * 1000 + i]).unwrap();
            }
            if tx % 3 == 0 {
                db.conn.execute("UPDATE t SET v = 'y' || ?1 WHERE id % 7 = ?1 % 7 AND id < ?1 * 1000", [tx]).unwrap();
            }
            db.conn.execute_batch("COMMIT").unwrap();
        }
    }

    fn table(db: &Db) -> Vec<(i64, String, i64)> {
        let mut s = db.conn.prepare("SELECT id, v, n FROM t ORDER BY id").unwrap();
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().collect::<Result<_, _>>().unwrap()
    }

    /// One catch-up request of `to` against `from`, applied; checks what a page promises.
    fn round(from: &mut Server, to: &mut Db, max_rows: usize) -> bool {
        let served = from.serve(&to.vector().unwrap(), max_rows, 1 << 20).unwrap();
        let rows: usize = served.pages.iter().map(|p| p.rows.len()).sum();
        for p in &served.pages {
            assert!(p.start <= p.end, "empty page {}..{}", p.start, p.end);
            let mut last = (p.start, -1);
            for r in &p.rows {
                assert_eq!(r.site_id, p.site);
                assert!(
                    p.start <= r.origin_version && r.origin_version <= p.end,
                    "row of version {} in page {}..={}",
                    r.origin_version,
                    p.start,
                    p.end
                );
                assert!((r.origin_version, r.seq) > last, "rows out of order");
                last = (r.origin_version, r.seq);
            }
            to.apply_page(p).unwrap();
        }
        // Over the budget only with one version alone.
        assert!(
            rows <= max_rows
                || served.pages.iter().map(|p| p.end - p.start).sum::<i64>() == 0
                || served.pages.len() == 1
        );
        served.more
    }

    #[test]
    fn a_long_catch_up_reads_ahead_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let a = open(dir.path(), "a.db");
        let mut serve_a = server(dir.path(), "a.db");
        let mut b = open(dir.path(), "b.db");
        let mut c = open(dir.path(), "c.db");
        write(&a, 1, 120, 5);
        // b and c catch up in turns (each keeps its own backlog), with small pages that
        // cut versions at different places.
        let (mut more_b, mut more_c, mut requests) = (true, true, 0);
        // The first response of a run takes one walk of the clock rows, not two.
        assert!(round(&mut serve_a, &mut b, 13));
        requests += 1;
        assert_eq!(serve_a.backlog_reads, 1, "reads for the first page");
        while more_b || more_c {
            if more_b {
                more_b = round(&mut serve_a, &mut b, 13);
                requests += 1;
            }
            if more_c {
                more_c = round(&mut serve_a, &mut c, 7);
                requests += 1;
            }
            if requests == 20 {
                // Meanwhile: a writes on, rewriting cells that backlogs hold, and b gets a
                // version out of turn (as gossip would bring it).
                write(&a, 121, 9, 5);
                let v = 100;
                let rows = a
                    .conn
                    .prepare(&format!(
                        "SELECT {} FROM wavesync_changes WHERE site_id = ?1 AND origin_version = ?2",
                        super::CHANGE_COLS
                    ))
                    .unwrap()
                    .query_map(rusqlite::params![a.site().as_slice(), v], |r| Ok(super::read_row(r).unwrap()))
                    .unwrap()
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap();
                b.apply_page(&crate::wire::Page { site: a.site(), start: v, end: v, rows }).unwrap();
            }
            assert!(requests < 1000, "catch-up does not end");
        }
        assert_eq!(table(&b), table(&a));
        assert_eq!(table(&c), table(&a));
        for to in [&b, &c] {
            assert_eq!(serve_a.serve(&to.vector().unwrap(), 100, 1 << 20).unwrap().lacked_versions, 0);
        }
        // Each request read its pages from a backlog: a few reads of wavesync_changes for
        // the ~150 requests, not one each.
        assert!(requests > 100, "{requests} requests");
        assert!(serve_a.backlog_reads * 4 < requests, "{} reads for {requests} requests", serve_a.backlog_reads);
    }

    #[test]
    fn a_returning_peer_gets_new_versions_before_a_replica_it_never_heard_from() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = open(dir.path(), "a.db");
        let mut serve_a = server(dir.path(), "a.db");
        let mut b = open(dir.path(), "b.db");
        let x = open(dir.path(), "x.db");
        let mut serve_x = server(dir.path(), "x.db");
        write(&a, 1, 5, 3);
        while round(&mut serve_a, &mut b, 100) {}
        // While b is away: x writes and a takes it; a writes on.
        write(&x, 10, 3, 3);
        while round(&mut serve_x, &mut a, 100) {}
        write(&a, 20, 2, 3);
        let served = serve_a.serve(&b.vector().unwrap(), 100, 1 << 20).unwrap();
        assert!(served.more, "x's versions are left for the next request");
        assert!(
            !served.pages.is_empty() && served.pages.iter().all(|p| p.site == a.site()),
            "only a's new versions come first"
        );
        assert_eq!(
            served.remaining_versions,
            x.conn.query_row("SELECT wavesync_db_version()", [], |r| r.get::<_, i64>(0)).unwrap() as u64
        );
        for p in &served.pages {
            b.apply_page(p).unwrap();
        }
        while round(&mut serve_a, &mut b, 100) {}
        assert_eq!(table(&b), table(&a));
    }
}
