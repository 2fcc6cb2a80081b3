//! What the daemon reports: the status
//! file the running daemon rewrites every second (`<db>.wavesyncd-status.json`), and the
//! `wavesyncd status` command that reads it back together with the database's vector.

pub use crate::metrics::{CounterSnapshot, Counters};
use anyhow::{Context, Result};
use rusqlite::OpenFlags;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct PeerStatus {
    pub peer_id: String,
    /// Its replica's site id (hex), once a catch-up message told it.
    #[serde(default)]
    pub site_id: Option<String>,
    pub addresses: Vec<String>,
    pub connected: bool,
    /// While connected: "direct" if one of its connections is (TCP or QUIC, dialed or hole
    /// punched), "relayed" if all go through a relay; else None.
    #[serde(default)]
    pub connection: Option<String>,
    /// Versions this peer lacked from us at its last catch-up request.
    pub they_lack_versions: Option<u64>,
    /// Versions we lacked from this peer at our last catch-up (0 once caught up).
    pub we_lack_versions: Option<u64>,
    pub last_catchup_unix: Option<u64>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct StatusFile {
    pub pid: u32,
    pub peer_id: String,
    pub site_id: String,
    pub db: String,
    pub started_unix: u64,
    pub updated_unix: u64,
    pub listen: Vec<String>,
    /// The address `--http` serves on, if any (`wavesyncd watch` connects there).
    #[serde(default)]
    pub http: Option<String>,
    pub peers: Vec<PeerStatus>,
    pub counters: CounterSnapshot,
    pub last_catchup_unix: Option<u64>,
    #[serde(default)]
    pub last_compaction_unix: Option<u64>,
    /// Whether a resync runs (or must run again after a stop).
    #[serde(default)]
    pub resyncing: bool,
    /// "public" (a relay dialed one of our addresses back: AutoNAT), "private" (none could
    /// be), or "unknown" (not tested: no relay, or no answer yet).
    #[serde(default)]
    pub reachability: String,
    /// Addresses others confirmed they can dial (AutoNAT), and our relayed ones.
    #[serde(default)]
    pub external_addresses: Vec<String>,
    /// The `--relay` relays and this node's state on each.
    #[serde(default)]
    pub relays: Vec<RelayStatus>,
    /// Peers refused for a while after messages that failed the key's check.
    #[serde(default)]
    pub banned: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct RelayStatus {
    pub address: String,
    pub connected: bool,
    /// A reservation is held: members can reach this node through the relay.
    pub reservation: bool,
    /// Registered on the relay's rendezvous point under the group's namespace.
    pub registered: bool,
    /// Members of the group found there at the last discovery.
    pub members_found: usize,
}

/// Rows applied and published during one second.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Sample {
    pub unix: u64,
    pub rows_applied: u64,
    pub rows_published: u64,
}

/// Seconds of throughput kept for the status page.
pub const THROUGHPUT_SECONDS: usize = 300;

/// What the running daemon shows its HTTP side, renewed every second by the event loop.
#[derive(Debug, Clone)]
pub struct Live {
    pub status: StatusFile,
    pub throughput: std::collections::VecDeque<Sample>,
    /// Catch-up versions still lacked from connected peers.
    pub catchup_remaining: u64,
}

pub fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub fn status_path(db: &Path) -> PathBuf {
    sibling(db, "wavesyncd-status.json")
}

pub fn identity_path(db: &Path) -> PathBuf {
    sibling(db, "wavesyncd-identity")
}

fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes the status file atomically (temp file + rename), so readers never see half.
pub fn write_status(db: &Path, st: &StatusFile) -> Result<()> {
    let path = status_path(db);
    let tmp = sibling(db, "wavesyncd-status.json.tmp");
    let json = serde_json::to_vec_pretty(st)?;
    std::fs::write(&tmp, json).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

pub fn read_status(db: &Path) -> Option<StatusFile> {
    let bytes = std::fs::read(status_path(db)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// What `wavesyncd status --json` and `/api/status` show.
#[derive(Serialize, Deserialize, Debug)]
pub struct Report {
    db: String,
    daemon_running: bool,
    site_id: Option<String>,
    db_version: Option<i64>,
    /// `wavesync_vector_json()`: for every origin, the version runs applied here.
    vector: Option<serde_json::Value>,
    database_error: Option<String>,
    daemon: Option<StatusFile>,
}

pub fn command(db: &Path, ext: &Path, json: bool) -> Result<()> {
    let daemon = read_status(db);
    let running =
        daemon.as_ref().is_some_and(|d| process_alive(d.pid) && now_unix().saturating_sub(d.updated_unix) < 10);
    let read = if db.exists() { read_db(db, ext) } else { Err(anyhow::anyhow!("database file does not exist")) };
    let report = Report::new(db, running, daemon, read);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

impl Report {
    /// `read`: the site id, db_version and vector (`wavesync_vector_json()`) read from the
    /// database, or why they could not be.
    pub fn new(db: &Path, running: bool, daemon: Option<StatusFile>, read: Result<(String, i64, String)>) -> Report {
        let mut report = Report {
            db: db.display().to_string(),
            daemon_running: running,
            site_id: None,
            db_version: None,
            vector: None,
            database_error: None,
            daemon,
        };
        match read {
            Ok((site, v, vec)) => {
                report.site_id = Some(site);
                report.db_version = Some(v);
                report.vector = Some(serde_json::from_str(&vec).unwrap_or(serde_json::Value::String(vec)));
            }
            Err(e) => report.database_error = Some(format!("{e:#}")),
        }
        report
    }
}

fn read_db(db: &Path, ext: &Path) -> Result<(String, i64, String)> {
    let conn = crate::db::open(db, ext, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let site: Vec<u8> = conn.query_row("SELECT wavesync_site_id()", [], |r| r.get(0))?;
    let v: i64 = conn.query_row("SELECT wavesync_db_version()", [], |r| r.get(0))?;
    let vec: String = conn.query_row("SELECT wavesync_vector_json()", [], |r| r.get(0))?;
    Ok((hex::encode(site), v, vec))
}

fn print_report(r: &Report) {
    println!("database:   {}", r.db);
    match (&r.site_id, r.db_version) {
        (Some(site), Some(v)) => println!("site id:    {site}\ndb version: {v}"),
        _ => println!("site id:    (unknown: {})", r.database_error.as_deref().unwrap_or("?")),
    }
    if let Some(v) = &r.vector {
        println!("vector:     {v}");
    }
    let Some(d) = &r.daemon else {
        println!("daemon:     not running (no status file {})", status_path(Path::new(&r.db)).display());
        return;
    };
    if r.daemon_running {
        println!("daemon:     running, pid {}, peer id {}", d.pid, d.peer_id);
    } else {
        println!("daemon:     NOT running (last status from pid {} at unix time {})", d.pid, d.updated_unix);
    }
    for a in &d.listen {
        println!("listening:  {a}");
    }
    if let Some(h) = &d.http {
        println!("http:       http://{h}/");
    }
    let c = &d.counters;
    println!(
        "gossip:     {} received, {} applied, {} rejected, {} replays dropped; {} local changesets published",
        c.gossip_received, c.gossip_applied, c.gossip_rejected, c.gossip_replayed, c.published
    );
    println!(
        "catch-up:   {} pages received, {} applied, {} sent ({} requests served), {} rejected; last {}",
        c.catchup_pages_received,
        c.catchup_pages_applied,
        c.catchup_pages_sent,
        c.catchup_requests_served,
        c.catchup_rejected,
        d.last_catchup_unix.map(|t| format!("{}s ago", now_unix().saturating_sub(t))).unwrap_or_else(|| "never".into())
    );
    println!(
        "compaction: {} runs, {} tombstones removed, last {}; {} resyncs{}",
        c.compactions,
        c.tombstones_removed,
        d.last_compaction_unix
            .map(|t| format!("{}s ago", now_unix().saturating_sub(t)))
            .unwrap_or_else(|| "never".into()),
        c.resyncs,
        if d.resyncing { " (one under way)" } else { "" }
    );
    if c.apply_failed + c.partial_dropped + c.gossip_dropped_busy > 0 {
        println!(
            "problems:   {} failed applies, {} incomplete changesets dropped, {} changesets dropped while the database was busy",
            c.apply_failed, c.partial_dropped, c.gossip_dropped_busy
        );
    }
    if !d.reachability.is_empty() {
        println!("reachable:  {}", d.reachability);
    }
    for a in &d.external_addresses {
        println!("external:   {a}");
    }
    for r in &d.relays {
        println!(
            "relay:      {} — {}{}{}; {} members found",
            r.address,
            if r.connected { "connected" } else { "not connected" },
            if r.reservation { ", reservation held" } else { ", no reservation" },
            if r.registered { ", registered" } else { "" },
            r.members_found
        );
    }
    if c.holepunch_succeeded + c.holepunch_failed > 0 {
        println!(
            "hole punch: {} succeeded, {} failed, {} tried again",
            c.holepunch_succeeded, c.holepunch_failed, c.holepunch_retried
        );
    }
    for b in &d.banned {
        println!("banned:     {b}");
    }
    println!("peers:      {}", d.peers.iter().filter(|p| p.connected).count());
    for p in &d.peers {
        let lag = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_else(|| "?".into());
        println!(
            "  {} {}{} — they lack {} versions of ours, we lack {} of theirs; {}",
            p.peer_id,
            if p.connected { "connected" } else { "disconnected" },
            p.connection.as_deref().map(|c| format!(" ({c})")).unwrap_or_default(),
            lag(p.they_lack_versions),
            lag(p.we_lack_versions),
            if p.addresses.is_empty() { "no known address".to_string() } else { p.addresses.join(", ") }
        );
    }
}
