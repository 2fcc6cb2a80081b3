//! The database side: one blocking thread owns the daemon's SQLite connection; the async
//! network side talks to it through a command channel and gets local changesets back on an
//! event channel. Everything here goes through the extension's public SQL surface only:
//! `wavesync_site_id()`, `wavesync_db_version()`, `wavesync_vector()`, `wavesync_changes`,
//! `wavesync_missing(?)` and `wavesync_mark_applied(?, ?, ?)`.
//!
//! The app writes the same file through its own connection, so: WAL mode, a busy timeout,
//! every write is one short `BEGIN IMMEDIATE` transaction (the gossip changesets queued
//! together, or one catch-up page), and a busy database is retried with backoff instead of
//! failing.

use crate::events::{self, TxEvent};
use crate::metrics::{observe, Counters};
use crate::wire::{ChangeRow, Page, Val, CHUNK_TARGET_BYTES};
use anyhow::{anyhow, bail, Context, Result};
use crossbeam_channel::Receiver;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, ErrorCode, LoadExtensionGuard, OpenFlags, ToSql};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

mod peers;
mod serve;
pub use serve::{ResyncServed, ServeRequest, Served, Server};

pub type SiteId = [u8; 16];

const CHANGE_COLS: &str = "\"table\", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version";

/// How long one attempt waits for the write lock (SQLite's busy handler).
const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);
/// Attempts before a write gives up (it is then repaired by the next catch-up).
const WRITE_ATTEMPTS: u32 = 20;
/// With a file watch: checks go on every `--poll-ms` until this many polls after the
/// last file change. SQLite makes a WAL commit visible (wal-index in `-shm`, which is
/// memory-mapped and so sends no events) just after its last write to `-wal`: a check
/// woken by that write can come too early.
const FOLLOW_UP_POLLS: u32 = 2;
/// With a file watch: shortest time between two checks woken by file changes (a check
/// woken by the first write of a commit comes too early; the next write wakes another).
const CHECK_GAP: Duration = Duration::from_millis(1);
/// The file watch thread's pause after each signal (bounds its wake-ups in write bursts).
const WATCH_GAP: Duration = Duration::from_millis(1);
/// Gossip changesets already queued when one is taken are applied with it in one
/// transaction, up to these bounds: with many small remote transactions a commit each (its
/// WAL frames, its lock) was most of the apply work, and a busy cluster fell behind.
const GROUP_MAX_CHANGESETS: usize = 256;
const GROUP_MAX_ROWS: usize = 20_000;
/// Commands queued for the database thread at most (gossip changesets are most of them;
/// room for several full groups).
pub const CMD_QUEUE: usize = 2048;
/// Catch-up requests queued for the catch-up server thread at most.
pub const SERVE_QUEUE: usize = 32;
/// Local changesets queued for the network side at most (then publishing waits).
pub const EVENT_QUEUE: usize = 1024;

pub struct DbConfig {
    pub path: PathBuf,
    pub ext: PathBuf,
    /// Peers heard within this long bound the automatic compaction (`--retention`).
    pub retention: Duration,
    /// How often the automatic compaction runs (`--compact-every`).
    pub compact_every: Duration,
}

/// What `/api/status` needs from the database.
pub struct DbReport {
    pub db_version: i64,
    pub vector_json: String,
}

/// Requests from the network side.
pub enum Cmd {
    /// Apply one complete gossip changeset (all chunks) in one transaction.
    /// `received`: when its last chunk arrived (receive-to-apply latency).
    ApplyVersion {
        site: SiteId,
        start: i64,
        version: i64,
        rows: Vec<ChangeRow>,
        received: Instant,
    },
    /// This replica's `wavesync_vector()`.
    Vector(oneshot::Sender<Result<Vec<u8>>>),
    /// Apply catch-up pages, each in one transaction; replies with the rows applied.
    ApplyPages {
        pages: Vec<Page>,
        reply: oneshot::Sender<Result<usize>>,
    },
    /// The vector `base` with the runs `(site, start, end)` added (`wavesync_vector_add`):
    /// what a catch-up asks with next while the last pages are still being applied.
    VectorAfter {
        base: Vec<u8>,
        runs: Vec<(SiteId, i64, i64)>,
        reply: oneshot::Sender<Result<Vec<u8>>>,
    },
    /// A peer's site and vector, from a catch-up message (remembered for compaction).
    PeerSeen {
        site: SiteId,
        vector: Vec<u8>,
    },
    /// Starts (or restarts) a full resync from the peer `from`.
    ResyncBegin {
        from: SiteId,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Merges one resync response's rows in one transaction; replies with the rows.
    ResyncApply {
        from: SiteId,
        rows: Vec<ChangeRow>,
        reply: oneshot::Sender<Result<usize>>,
    },
    /// Ends the resync: deletes what the peer no longer has (`wavesync_resync_finish` with
    /// the peer's vector as of the first response); replies with the rows deleted.
    ResyncFinish {
        vector: Vec<u8>,
        reply: oneshot::Sender<Result<i64>>,
    },
    /// Answered at once (`/health`: the database thread is alive and not stuck).
    Ping(oneshot::Sender<()>),
    Report(oneshot::Sender<Result<DbReport>>),
}

/// Events to the network side.
pub enum Event {
    /// Local changes of origin versions `start..=version` (committed by the app).
    /// `noticed`: when the check that found them began (commit-to-publish latency).
    Local { site: SiteId, start: i64, version: i64, rows: Vec<ChangeRow>, noticed: Instant },
}

/// Process-wide SQLite settings, before the first connection opens: no allocation
/// statistics (they take a global mutex on every allocation; nothing here reads them).
pub fn configure_sqlite() {
    // SAFETY: called before SQLite is initialized (first thing in main); if it were not,
    // SQLite refuses the call with SQLITE_MISUSE and nothing changes.
    unsafe {
        rusqlite::ffi::sqlite3_config(rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS, 0 as std::ffi::c_int);
    }
}

/// Opens a connection with the extension loaded.
pub fn open(path: &Path, ext: &Path, flags: OpenFlags) -> Result<Connection> {
    // One thread uses a connection: SQLite's per-call connection mutex is not needed (with
    // its global allocation-statistics mutex, see `configure_sqlite`, it was a sixth of the
    // database thread's time in a catch-up).
    let flags = flags | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn =
        Connection::open_with_flags(path, flags).with_context(|| format!("cannot open database {}", path.display()))?;
    // SAFETY: loading a trusted extension chosen by the operator; the guard disables
    // extension loading again right after.
    let loaded = unsafe {
        let _guard = LoadExtensionGuard::new(&conn).context("cannot enable extension loading")?;
        conn.load_extension(ext, Some("sqlite3_wavesync_init"))
    };
    if let Err(e) = loaded {
        // When the extension's init fails (e.g. on a read-only database) SQLite unloads the
        // library, but functions it registered before failing stay on the connection with
        // destructors inside the unloaded library: closing the connection would call them
        // and crash (SIGSEGV). Leak the connection instead; the caller reports and exits.
        std::mem::forget(conn);
        return Err(anyhow::Error::new(e).context(format!(
            "cannot load the wavesync extension from {} (set --ext or WAVESYNC_EXT)",
            ext.display()
        )));
    }
    Ok(conn)
}

pub struct Db {
    conn: Connection,
    /// The database file (watched for changes by `run`).
    path: PathBuf,
    site: SiteId,
    counters: Arc<Counters>,
    data_version: i64,
    last_published: i64,
    /// Transactions that applied gossip (a unit test checks that queued changesets share one).
    gossip_transactions: u64,
    events: events::Sender,
    peers: peers::Peers,
    /// A resync runs (or was cut short by a stop and must run again): from this site.
    resync_from: Option<String>,
    next_gauges: Instant,
}

impl Db {
    pub fn open(cfg: &DbConfig, counters: Arc<Counters>, events: events::Sender) -> Result<Db> {
        let conn = open(&cfg.path, &cfg.ext, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE)?;
        // SQLite opens a write-protected file read-only instead of failing: say so now, not
        // at the first merge.
        if conn.is_readonly(rusqlite::MAIN_DB)? {
            bail!("{} is read-only (file permissions or a read-only file system); wavesyncd writes the changes it receives into it", cfg.path.display());
        }
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String = retry_busy("set WAL mode", || {
            conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(Into::into)
        })?;
        if !mode.eq_ignore_ascii_case("wal") {
            bail!("cannot switch {} to WAL mode (journal_mode is {mode})", cfg.path.display());
        }
        let site: Vec<u8> = conn.query_row("SELECT wavesync_site_id()", [], |r| r.get(0))?;
        let site: SiteId = site.try_into().map_err(|_| anyhow!("wavesync_site_id() is not 16 bytes"))?;
        retry_busy("create the daemon's tables", || conn.execute_batch(peers::SCHEMA).map_err(Into::into))
            .context("cannot create the daemon's tables (wavesyncd_peers, wavesyncd_state)")?;
        let resync_from = peers::resync_under_way(&conn)?;
        if let Some(from) = &resync_from {
            info!(from = %from, "a resync was cut short by a stop: it runs again with the first peer");
        }
        let data_version = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        // Publishing starts at the current version: peers get older versions by catch-up.
        let last_published = conn.query_row("SELECT wavesync_db_version()", [], |r| r.get(0))?;
        info!(site = %hex::encode(site), db_version = last_published, db = %cfg.path.display(), "database open");
        Ok(Db {
            conn,
            path: cfg.path.clone(),
            site,
            counters,
            data_version,
            last_published,
            gossip_transactions: 0,
            events,
            peers: peers::Peers::new(cfg.retention, cfg.compact_every),
            resync_from,
            next_gauges: Instant::now(),
        })
    }

    pub fn site(&self) -> SiteId {
        self.site
    }

    /// Whether a resync must run (one was cut short).
    pub fn resync_pending(&self) -> bool {
        self.resync_from.is_some()
    }

    /// Peer vectors, compaction, gauges: every turn of the loop, each when due.
    fn upkeep(&mut self) {
        self.peers.upkeep(&self.conn, &self.site, &self.counters, self.resync_from.is_some());
        let now = Instant::now();
        if now >= self.next_gauges {
            self.next_gauges = now + Duration::from_secs(1);
            if let Ok(v) =
                self.conn.prepare_cached("SELECT wavesync_db_version()").and_then(|mut s| s.query_row([], |r| r.get(0)))
            {
                self.counters.gauges.db_version.store(v, Ordering::Relaxed);
            }
        }
    }

    fn emit(&self, kind: &str, via: &str, origin: &[u8], start: i64, end: i64, rows: &[ChangeRow]) {
        // No subscriber: nothing to build.
        if self.events.receiver_count() > 0 {
            let ev: TxEvent =
                events::tx(kind, via, origin, start, end, rows.iter().map(|r| r.table.as_str()), rows.len());
            let _ = self.events.send(ev);
        }
    }

    /// The thread body: serve commands, and check `PRAGMA data_version` for commits of
    /// other connections in between. With a watch on the database files (inotify,
    /// `watch_files`), a check runs as soon as a file changes (at most once per
    /// `CHECK_GAP`), then every `poll` until `FOLLOW_UP_POLLS` polls after the last change,
    /// and otherwise every `safety_poll` (missed events, writers the watch cannot see).
    /// Without a watch, every `poll`.
    pub fn run(mut self, cmds: Receiver<Cmd>, events: mpsc::Sender<Event>, poll: Duration, safety_poll: Duration) {
        let mut wake = match watch_files(&self.path) {
            Ok(rx) => Some(rx),
            Err(e) => {
                warn!(
                    poll_ms = poll.as_millis() as u64,
                    "cannot watch the database files, polling for commits instead: {e:#}"
                );
                None
            }
        };
        let never = crossbeam_channel::never();
        let mut last_check = Instant::now();
        let mut last_change: Option<Instant> = None;
        let mut pending = false;
        loop {
            let now = Instant::now();
            let next = match &wake {
                None => last_check + poll,
                Some(_) if pending => last_check + CHECK_GAP,
                Some(_) if last_change.is_some_and(|t| now < t + poll * FOLLOW_UP_POLLS) => last_check + poll,
                Some(_) => last_check + safety_poll,
            };
            self.upkeep();
            if now >= next {
                pending = false;
                last_check = now;
                if let Err(e) = self.publish_local(&events) {
                    warn!("reading local changes failed (will retry): {e:#}");
                }
                continue;
            }
            crossbeam_channel::select! {
                recv(cmds) -> cmd => match cmd {
                    Ok(cmd) => self.handle_queued(cmd, &cmds),
                    Err(_) => break,
                },
                recv(wake.as_ref().unwrap_or(&never)) -> ev => match ev {
                    Ok(()) => {
                        pending = true;
                        last_change = Some(Instant::now());
                    }
                    Err(_) => {
                        warn!(poll_ms = poll.as_millis() as u64, "the database file watch stopped, polling for commits instead");
                        wake = None;
                    }
                },
                default(next - now) => {}
            }
        }
        info!("database thread stopped");
    }

    /// Handles `first` and, if it is a gossip changeset, the changesets queued right behind
    /// it as one group (`apply_gossip`); a command of another kind met on the way is
    /// handled after the group, so the order of the queue holds.
    fn handle_queued(&mut self, first: Cmd, cmds: &Receiver<Cmd>) {
        let mut next = Some(first);
        while let Some(cmd) = next.take() {
            let Cmd::ApplyVersion { site, start, version, rows, received } = cmd else {
                self.handle(cmd);
                continue;
            };
            let mut rows_in_group = rows.len();
            let mut group = vec![(Page { site, start, end: version, rows }, received)];
            while group.len() < GROUP_MAX_CHANGESETS && rows_in_group < GROUP_MAX_ROWS {
                match cmds.try_recv() {
                    Ok(Cmd::ApplyVersion { site, start, version, rows, received }) => {
                        rows_in_group += rows.len();
                        group.push((Page { site, start, end: version, rows }, received));
                    }
                    Ok(other) => {
                        next = Some(other);
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.apply_gossip(group);
        }
    }

    /// Applies gossip changesets: all in one transaction when that succeeds. If it fails
    /// for any reason but a busy database, each is applied alone, so one bad changeset
    /// fails by itself, as it would have without the group. Each changeset is whole in
    /// either case: all its rows and its `mark_applied` are in the same transaction.
    fn apply_gossip(&mut self, group: Vec<(Page, Instant)>) {
        let group: Vec<(Page, Instant)> = group.into_iter().filter(|(p, _)| p.site != self.site).collect();
        if group.len() > 1 {
            let (conn, peers) = (&self.conn, &self.peers);
            let together = retry_busy("apply changes", || {
                write_tx(conn, |c| {
                    group.iter().try_for_each(|(p, _)| merge_page(c, p))?;
                    peers.write(c)
                })
            });
            match together {
                Ok(()) => {
                    self.peers.written();
                    self.gossip_transactions += 1;
                    self.counters.gossip_applied.fetch_add(group.len() as u64, Ordering::Relaxed);
                    for (p, received) in &group {
                        self.applied(p, "gossip", Some(*received));
                    }
                    debug!(
                        changesets = group.len(),
                        rows = group.iter().map(|(p, _)| p.rows.len()).sum::<usize>(),
                        "applied gossip changesets"
                    );
                    return;
                }
                Err(e) if is_busy(&e) => {
                    self.counters.apply_failed.fetch_add(group.len() as u64, Ordering::Relaxed);
                    warn!(changesets = group.len(), "cannot apply changesets (catch-up will retry): {e:#}");
                    return;
                }
                Err(e) => {
                    debug!(changesets = group.len(), "applying the changesets together failed, one by one now: {e:#}")
                }
            }
        }
        for (page, received) in &group {
            let (site, start, version, n) = (hex::encode(page.site), page.start, page.end, page.rows.len());
            match self.apply_page(page) {
                Ok(()) => {
                    self.gossip_transactions += 1;
                    self.counters.gossip_applied.fetch_add(1, Ordering::Relaxed);
                    self.applied(page, "gossip", Some(*received));
                    debug!(%site, start, version, rows = n, "applied gossip changeset");
                }
                Err(e) => {
                    self.counters.apply_failed.fetch_add(1, Ordering::Relaxed);
                    warn!(%site, version, "cannot apply changeset (catch-up will retry): {e:#}");
                }
            }
        }
    }

    fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::ApplyVersion { site, start, version, rows, received } => {
                self.apply_gossip(vec![(Page { site, start, end: version, rows }, received)])
            }
            Cmd::Vector(reply) => {
                let _ = reply.send(self.vector());
            }
            Cmd::ApplyPages { pages, reply } => {
                let mut rows = 0;
                let mut result = Ok(());
                for p in &pages {
                    if let Err(e) = self.apply_page(p) {
                        self.counters.apply_failed.fetch_add(1, Ordering::Relaxed);
                        result = Err(e.context(format!("page {}@{}..={}", hex::encode(p.site), p.start, p.end)));
                        break;
                    }
                    rows += p.rows.len();
                    self.counters.catchup_pages_applied.fetch_add(1, Ordering::Relaxed);
                    self.applied(p, "catchup", None);
                }
                let _ = reply.send(result.map(|()| rows));
            }
            Cmd::VectorAfter { base, runs, reply } => {
                let _ = reply.send(self.vector_after(base, &runs));
            }
            Cmd::PeerSeen { site, vector } => self.peers.heard(site, vector),
            Cmd::ResyncBegin { from, reply } => {
                let _ = reply.send(self.resync_begin(from));
            }
            Cmd::ResyncApply { from, rows, reply } => {
                let _ = reply.send(self.resync_apply(&from, &rows));
            }
            Cmd::ResyncFinish { vector, reply } => {
                let _ = reply.send(self.resync_finish(&vector));
            }
            Cmd::Ping(reply) => {
                let _ = reply.send(());
            }
            Cmd::Report(reply) => {
                let _ = reply.send(self.report());
            }
        }
    }

    /// Counts, latency and the event of a remote transaction just committed.
    fn applied(&self, p: &Page, via: &str, received: Option<Instant>) {
        self.counters.rows_applied.fetch_add(p.rows.len() as u64, Ordering::Relaxed);
        if let Some(t) = received {
            observe(&self.counters.latency.receive_to_apply, t.elapsed());
        }
        self.emit("remote", via, &p.site, p.start, p.end, &p.rows);
    }

    fn report(&self) -> Result<DbReport> {
        let (db_version, vector_json) =
            self.conn.query_row("SELECT wavesync_db_version(), wavesync_vector_json()", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        Ok(DbReport { db_version, vector_json })
    }

    fn resync_begin(&mut self, from: SiteId) -> Result<()> {
        retry_busy("begin a resync", || {
            write_tx(&self.conn, |c| {
                peers::set_resync(c, Some(&from))?;
                c.query_row("SELECT wavesync_resync_begin()", [], |_| Ok(()))?;
                Ok(())
            })
        })?;
        self.resync_from = Some(hex::encode(from));
        self.counters.gauges.resync_rows.store(0, Ordering::Relaxed);
        Ok(())
    }

    fn resync_apply(&mut self, from: &SiteId, rows: &[ChangeRow]) -> Result<usize> {
        if self.resync_from.is_none() {
            bail!("no resync under way");
        }
        let (conn, peers) = (&self.conn, &self.peers);
        retry_busy("apply resync rows", || {
            write_tx(conn, |c| {
                let mut ins = c.prepare_cached(INSERT_CHANGE)?;
                for r in rows {
                    insert_change(&mut ins, r)?;
                }
                peers.write(c)
            })
        })?;
        self.peers.written();
        self.counters.rows_applied.fetch_add(rows.len() as u64, Ordering::Relaxed);
        self.counters.gauges.resync_rows.fetch_add(rows.len() as i64, Ordering::Relaxed);
        if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
            self.emit("remote", "resync", from, first.db_version, last.db_version, rows);
        }
        Ok(rows.len())
    }

    fn resync_finish(&mut self, vector: &[u8]) -> Result<i64> {
        if self.resync_from.is_none() {
            bail!("no resync under way");
        }
        let deleted = retry_busy("finish a resync", || {
            write_tx(&self.conn, |c| {
                let n: i64 = c.query_row("SELECT wavesync_resync_finish(?1)", [vector], |r| r.get(0))?;
                peers::set_resync(c, None)?;
                Ok(n)
            })
        })?;
        self.resync_from = None;
        self.counters.gauges.resync_rows.store(0, Ordering::Relaxed);
        self.counters.resyncs.fetch_add(1, Ordering::Relaxed);
        Ok(deleted)
    }

    fn vector(&self) -> Result<Vec<u8>> {
        Ok(self.conn.query_row("SELECT wavesync_vector()", [], |r| r.get(0))?)
    }

    fn vector_after(&self, base: Vec<u8>, runs: &[(SiteId, i64, i64)]) -> Result<Vec<u8>> {
        let mut stmt = self.conn.prepare_cached("SELECT wavesync_vector_add(?1, ?2, ?3, ?4)")?;
        let mut v = base;
        for (site, start, end) in runs {
            v = stmt.query_row(params![v, site.as_slice(), start, end], |r| r.get(0))?;
        }
        Ok(v)
    }

    /// If another connection committed, publishes this replica's new local changes. The
    /// versions found by one check go out together, as few changesets as fit in one gossip
    /// message each: a writer of many small transactions would otherwise cost every peer a
    /// message (and a commit) per transaction. A version is never split between two.
    fn publish_local(&mut self, events: &mpsc::Sender<Event>) -> Result<()> {
        // Runs after every file change and at every poll: a cached statement, not a new
        // parse each time (the parse was an eighth of a 5 ms-polling daemon's CPU).
        let dv: i64 = self.conn.prepare_cached("PRAGMA data_version")?.query_row([], |r| r.get(0))?;
        if dv == self.data_version {
            return Ok(());
        }
        let noticed = Instant::now();
        fold_journal(&self.conn)?;
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {CHANGE_COLS} FROM wavesync_changes WHERE site_id = ?1 AND origin_version > ?2 ORDER BY origin_version, seq"
        ))?;
        let mut rows = stmt.query(params![self.site.as_slice(), self.last_published])?;
        // Whole versions first: (version, rows, their size).
        let mut versions: Vec<(i64, Vec<ChangeRow>, usize)> = Vec::new();
        while let Some(r) = rows.next()? {
            let row = read_row(r)?;
            let size = row.approx_size();
            match versions.last_mut() {
                Some((v, batch, bytes)) if *v == row.origin_version => {
                    *bytes += size;
                    batch.push(row);
                }
                _ => versions.push((row.origin_version, vec![row], size)),
            }
        }
        // Then groups of consecutive versions up to one message's worth of rows (a version
        // larger than that goes alone, in chunks).
        let mut groups: Vec<(i64, Vec<ChangeRow>, usize)> = Vec::new();
        for (version, rows, size) in versions {
            match groups.last_mut() {
                Some((v, batch, bytes)) if *bytes + size <= CHUNK_TARGET_BYTES => {
                    *v = version;
                    *bytes += size;
                    batch.extend(rows);
                }
                _ => groups.push((version, rows, size)),
            }
        }
        // Only now: a failed read above is retried from the same point next time.
        self.data_version = dv;
        for (version, rows, _) in groups {
            let start = self.last_published + 1;
            self.last_published = version;
            debug!(start, version, rows = rows.len(), "local changes to publish");
            self.counters.rows_published.fetch_add(rows.len() as u64, Ordering::Relaxed);
            self.emit("local", "local", &self.site.clone(), start, version, &rows);
            // Waits while the network side is behind: publishing is pushed back, not buffered.
            let _ = events.blocking_send(Event::Local { site: self.site, start, version, rows, noticed });
        }
        Ok(())
    }

    /// Applies one page (or one gossip changeset) and marks its versions applied, in one
    /// transaction, retrying while the database is busy.
    fn apply_page(&mut self, page: &Page) -> Result<()> {
        if page.site == self.site {
            return Ok(()); // our own changes coming back: nothing to do
        }
        let (conn, peers) = (&self.conn, &self.peers);
        retry_busy("apply changes", || {
            write_tx(conn, |c| {
                merge_page(c, page)?;
                peers.write(c)
            })
        })?;
        self.peers.written();
        Ok(())
    }
}

/// Merges the rows of `page` and marks its versions applied, inside the caller's transaction.
fn merge_page(c: &Connection, page: &Page) -> Result<()> {
    let mut ins = c.prepare_cached(INSERT_CHANGE)?;
    for r in &page.rows {
        insert_change(&mut ins, r)?;
    }
    c.prepare_cached("SELECT wavesync_mark_applied(?1, ?2, ?3)")?
        .query_row(params![page.site.as_slice(), page.start, page.end], |_| Ok(()))?;
    Ok(())
}

const INSERT_CHANGE: &str = "INSERT INTO wavesync_changes (\"table\", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

fn insert_change(ins: &mut rusqlite::CachedStatement<'_>, r: &ChangeRow) -> Result<()> {
    ins.execute(params![
        r.table,
        r.pk,
        r.cid,
        SqlVal(&r.val),
        r.col_version,
        r.db_version,
        r.site_id.as_slice(),
        r.cl,
        r.seq,
        r.origin_version
    ])
    .with_context(|| format!("merge of {}.{} (origin version {})", r.table, r.cid, r.origin_version))?;
    Ok(())
}

/// Watches the database `path` and its `-wal` and `-journal` files (inotify) and signals
/// on the returned channel when one is written, created, moved in or deleted. The files
/// are watched for writes, their directory only for names appearing and disappearing:
/// `-wal` may not exist yet (it is created by the first connection and may be removed by
/// the last one to close), so a file that appears is watched from then on; a checkpoint
/// that truncates or restarts `-wal` keeps the file, and its watch. (A directory watch
/// for writes would wake on every write to any file next to the database.) A thread reads
/// the events; signals coalesce (one pending at most), and it waits `WATCH_GAP` after each
/// signal so a write burst wakes it at most that often (the kernel merges the events in
/// between). The channel closes if the directory's watch is lost (the directory removed
/// or unmounted) and, when `run` ends, the thread stops at the next event.
fn watch_files(path: &Path) -> Result<Receiver<()>> {
    use inotify::{EventMask, Inotify, WatchMask};
    // SQLite follows symlinks to the database: its `-wal` is next to the real file.
    let real = std::fs::canonicalize(path).with_context(|| format!("cannot resolve {}", path.display()))?;
    let dir = real.parent().ok_or_else(|| anyhow!("{} has no directory", real.display()))?.to_path_buf();
    let name = real.file_name().ok_or_else(|| anyhow!("{} has no file name", real.display()))?.to_os_string();
    let names: Vec<OsString> = ["", "-wal", "-journal"]
        .iter()
        .map(|suffix| {
            let mut n = name.clone();
            n.push(suffix);
            n
        })
        .collect();
    let file_mask = WatchMask::MODIFY | WatchMask::CLOSE_WRITE;
    let mut inotify = Inotify::init().context("inotify_init")?;
    let dir_wd = inotify
        .watches()
        .add(
            &dir,
            WatchMask::CREATE | WatchMask::MOVED_TO | WatchMask::DELETE | WatchMask::MOVED_FROM | WatchMask::ONLYDIR,
        )
        .with_context(|| format!("cannot watch {}", dir.display()))?;
    // The files that exist now (after the directory watch: one created in between is
    // reported by it). A missing one is watched when it appears.
    for n in &names {
        match inotify.watches().add(dir.join(n), file_mask) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot watch {}", dir.join(n).display()))),
        }
    }
    debug!(dir = %dir.display(), "watching the database files");
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("wavesyncd-watch".into())
        .spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let events = match inotify.read_events_blocking(&mut buf) {
                    Ok(events) => events,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        warn!(dir = %dir.display(), "reading file events failed: {e}");
                        return;
                    }
                };
                let mut changed = false;
                let mut appeared = Vec::new();
                for ev in events {
                    if ev.wd == dir_wd {
                        if ev.mask.contains(EventMask::IGNORED) {
                            warn!(dir = %dir.display(), "the directory of the database is no longer watched");
                            return; // drops tx: `run` falls back to polling
                        }
                        let Some(n) = ev.name.filter(|n| names.iter().any(|m| m == n)) else { continue };
                        if ev.mask.intersects(EventMask::CREATE | EventMask::MOVED_TO) {
                            appeared.push(n.to_os_string());
                        }
                        changed = true;
                    } else if !ev.mask.contains(EventMask::IGNORED) {
                        // A write to a watched file (IGNORED: a removed file's watch ends).
                        changed = true;
                    }
                    changed |= ev.mask.contains(EventMask::Q_OVERFLOW);
                }
                for n in appeared {
                    if let Err(e) = inotify.watches().add(dir.join(&n), file_mask) {
                        debug!(file = %dir.join(&n).display(), "cannot watch: {e}");
                    }
                }
                if changed {
                    if let Err(crossbeam_channel::TrySendError::Disconnected(())) = tx.try_send(()) {
                        return;
                    }
                    std::thread::sleep(WATCH_GAP);
                }
            }
        })
        .context("cannot start the file watch thread")?;
    Ok(rx)
}

/// Reads one `wavesync_changes` row (columns in CHANGE_COLS order), checking every type.
fn read_row(r: &rusqlite::Row<'_>) -> Result<ChangeRow> {
    let site: Vec<u8> = r.get(6)?;
    Ok(ChangeRow {
        table: r.get(0)?,
        pk: r.get(1)?,
        cid: r.get(2)?,
        val: match r.get_ref(3)? {
            ValueRef::Null => Val::Null,
            ValueRef::Integer(i) => Val::Integer(i),
            ValueRef::Real(f) => Val::Real(f),
            ValueRef::Text(t) => Val::Text(t.to_vec()),
            ValueRef::Blob(b) => Val::Blob(b.to_vec()),
        },
        col_version: r.get(4)?,
        db_version: r.get(5)?,
        site_id: site.try_into().map_err(|_| anyhow!("wavesync_changes returned a site_id that is not 16 bytes"))?,
        cl: r.get(7)?,
        seq: r.get(8)?,
        origin_version: r.get(9)?,
    })
}

struct SqlVal<'a>(&'a Val);

impl ToSql for SqlVal<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Val::Null => ValueRef::Null,
            Val::Integer(i) => ValueRef::Integer(*i),
            Val::Real(f) => ValueRef::Real(*f),
            Val::Text(t) => ValueRef::Text(t),
            Val::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// Folds the app's writes, which wait in the extension's journal, into the clocks. A read of
/// wavesync_changes would fold them itself, but from inside its read transaction, which
/// fails if the app commits meanwhile; a write transaction of its own waits for the app.
pub fn fold_journal(conn: &Connection) -> Result<()> {
    if conn.prepare_cached("SELECT 1 FROM wavesync_journal LIMIT 1")?.exists([])? {
        write_tx(conn, |c| Ok(c.prepare_cached("SELECT wavesync_fold()")?.query_row([], |_| Ok(()))?))?;
    }
    Ok(())
}

/// Runs `f` in one `BEGIN IMMEDIATE` transaction: committed if it succeeds, rolled back
/// otherwise (so a failure anywhere leaves nothing half-applied).
fn write_tx<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let out = f(conn).and_then(|v| {
        conn.execute_batch("COMMIT")?;
        Ok(v)
    });
    if out.is_err() && !conn.is_autocommit() {
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            warn!("rollback failed: {e}");
        }
    }
    out
}

pub fn is_busy(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<rusqlite::Error>(),
            Some(rusqlite::Error::SqliteFailure(f, _)) if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
        )
    })
}

/// Retries `f` with backoff while the database is busy (each attempt already waited for
/// the busy timeout); other errors return at once.
fn retry_busy<T>(what: &str, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let mut delay = Duration::from_millis(20);
    let began = Instant::now();
    let mut attempt = 1;
    loop {
        match f() {
            Err(e) if is_busy(&e) && attempt < WRITE_ATTEMPTS => {
                warn!(attempt, waited_ms = began.elapsed().as_millis() as u64, "{what}: database busy, retrying");
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(2));
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Counters;

    fn ext() -> PathBuf {
        std::env::var_os("WAVESYNC_EXT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dist/wavesync"))
    }

    /// The daemon's side of `name`, and an app's connection to the same file.
    fn open_pair(dir: &Path, name: &str) -> (Db, Connection) {
        let cfg = DbConfig {
            path: dir.join(name),
            ext: ext(),
            retention: Duration::from_secs(3600),
            compact_every: Duration::from_secs(3600),
        };
        let db = Db::open(&cfg, Arc::new(Counters::default()), events::channel()).expect("open");
        db.conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); SELECT wavesync_as_crr('t');").unwrap();
        let app = open(&dir.join(name), &ext(), OpenFlags::SQLITE_OPEN_READ_WRITE).unwrap();
        (db, app)
    }

    /// The events one check publishes.
    fn publish(db: &mut Db) -> Vec<(i64, i64, Vec<ChangeRow>)> {
        let (tx, mut rx) = mpsc::channel(EVENT_QUEUE);
        db.publish_local(&tx).unwrap();
        let mut out = Vec::new();
        while let Ok(Event::Local { start, version, rows, .. }) = rx.try_recv() {
            out.push((start, version, rows));
        }
        out
    }

    fn count(c: &Connection) -> i64 {
        c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn one_check_publishes_its_versions_together_and_never_splits_one() {
        let dir = tempfile::tempdir().unwrap();
        let (mut a, app) = open_pair(dir.path(), "a.db");
        let v0 = a.last_published;
        for i in 0..5 {
            app.execute("INSERT INTO t VALUES (?1, 'x')", [i]).unwrap();
        }
        let evs = publish(&mut a);
        assert_eq!(evs.len(), 1, "five small transactions, one changeset");
        assert_eq!((evs[0].0, evs[0].1, evs[0].2.len()), (v0 + 1, v0 + 5, 5));

        // Small, large (over one message), small, small: three changesets, whole versions.
        let big = "y".repeat(1000);
        app.execute("INSERT INTO t VALUES (100, 'x')", []).unwrap();
        app.execute_batch("BEGIN").unwrap();
        for i in 0..700 {
            app.execute("INSERT INTO t VALUES (?1, ?2)", params![1000 + i, big]).unwrap();
        }
        app.execute_batch("COMMIT").unwrap();
        app.execute("INSERT INTO t VALUES (101, 'x')", []).unwrap();
        app.execute("INSERT INTO t VALUES (102, 'x')", []).unwrap();
        let evs = publish(&mut a);
        let ranges: Vec<(i64, i64, usize)> = evs.iter().map(|(s, v, r)| (*s, *v, r.len())).collect();
        assert_eq!(ranges, vec![(v0 + 6, v0 + 6, 1), (v0 + 7, v0 + 7, 700), (v0 + 8, v0 + 9, 2)]);
        for (s, v, rows) in &evs {
            assert!(rows.iter().all(|r| (*s..=*v).contains(&r.origin_version)));
        }
        assert!(publish(&mut a).is_empty(), "nothing new");
    }

    #[test]
    fn queued_changesets_share_a_transaction_and_a_bad_one_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (mut a, app) = open_pair(dir.path(), "a.db");
        let (mut b, b_app) = open_pair(dir.path(), "b.db");
        let mut changesets = Vec::new();
        for i in 0..6 {
            app.execute("INSERT INTO t VALUES (?1, 'x')", [i]).unwrap();
            let mut evs = publish(&mut a);
            assert_eq!(evs.len(), 1);
            changesets.push(evs.remove(0));
        }
        let cmd = |(start, version, rows): &(i64, i64, Vec<ChangeRow>)| Cmd::ApplyVersion {
            site: a.site,
            start: *start,
            version: *version,
            rows: rows.clone(),
            received: Instant::now(),
        };
        let (tx, rx) = crossbeam_channel::unbounded();

        // Three queued behind the first: one transaction for all four.
        for c in &changesets[1..4] {
            tx.send(cmd(c)).unwrap();
        }
        b.handle_queued(cmd(&changesets[0]), &rx);
        assert_eq!(b.gossip_transactions, 1);
        assert_eq!(count(&b_app), 4);

        // A changeset that cannot merge (its key is not a packed key) between two good ones:
        // the group is rolled back and each applied alone; only the bad one fails.
        let mut bad = changesets[5].clone();
        bad.2[0].pk = vec![0xff, 0xff];
        tx.send(cmd(&bad)).unwrap();
        tx.send(cmd(&changesets[5])).unwrap();
        b.handle_queued(cmd(&changesets[4]), &rx);
        assert_eq!(b.gossip_transactions, 1 + 2);
        assert_eq!(count(&b_app), 6);
        assert_eq!(b.counters.gossip_applied.load(Ordering::Relaxed), 6);
        assert_eq!(b.counters.apply_failed.load(Ordering::Relaxed), 1);

        // Another kind of command met in the queue is still served, after the group.
        let (vtx, mut vrx) = oneshot::channel();
        tx.send(Cmd::Vector(vtx)).unwrap();
        b.handle_queued(cmd(&changesets[0]), &rx);
        assert!(vrx.try_recv().expect("vector answered").is_ok());
    }
}
