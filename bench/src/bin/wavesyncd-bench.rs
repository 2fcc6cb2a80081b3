//! `make bench-daemon`: real `wavesyncd` processes on 127.0.0.1, written to through
//! rusqlite connections with the extension loaded, measured against the daemon targets of
//! issue 5 (docs/BENCHMARKS.md, "## Daemon"):
//!
//! 1. commit-to-visible latency between two peers (p50/p99 of `--samples` single-row commits);
//! 2. sustained replication throughput: a writer commits `--batch`-row transactions on A for
//!    `--seconds`, pausing while B lags more than `--max-lag` changes (0: never), and B's row
//!    count is sampled until it has everything;
//! 3. catch-up of a fresh peer: A holds `--changes` changes (rows x 4 columns, written
//!    before its daemon starts), B starts empty; time until B has them all;
//! 4. convergence of a `--peers` cluster after `--cluster-writes` rows written on all peers;
//! 5. bytes on the wire per change: TCP payload bytes of the daemons' sockets (`ss -tinp`,
//!    so libp2p's Noise, Yamux and gossipsub framing are included), per phase;
//! 6. idle CPU (utime+stime from /proc over `--idle-secs`, after `--settle-secs` without
//!    writes) and VmRSS of converged daemons.
//!
//!   wavesyncd-bench [--quick] [--changes N] [--samples N] [--seconds S] [--batch ROWS]
//!                   [--max-lag CHANGES] [--catchup-batch ROWS] [--peers N] [--cluster-writes N] [--cluster-batch ROWS]
//!                   [--topology star|chain|mesh] [--idle-secs S] [--settle-secs S] [--only PHASE,...]
//!                   [--perf DIR] [--daemon PATH] [--append FILE] [--keep]
//!
//! Phases for `--only`: latency, throughput, catchup, cluster, idle. `--perf DIR` records
//! `perf record -g` profiles of the daemons during the throughput, catch-up and cluster
//! phases into DIR. The daemon binary is `--daemon`, `$WAVESYNCD` or `<repo>/dist/wavesyncd`;
//! the extension `$WAVESYNC_EXT` or `<repo>/dist/wavesync`. Every daemon is killed when the
//! benchmark ends (and by the kernel if the benchmark itself dies: PR_SET_PDEATHSIG).

use clap::Parser;
use rusqlite::{params, Connection};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wavesync_testkit::{app_with, cpu_model, on_failure, repo_path, wait_every, Daemon, Group, Launch, Rng};

// ---------------------------------------------------------------------------------------
// Arguments

#[derive(Clone)]
struct Args {
    quick: bool,
    changes: u64,
    samples: usize,
    seconds: f64,
    batch: u64,
    max_lag: u64,
    peers: usize,
    catchup_batch: u64,
    cluster_writes: u64,
    cluster_batch: u64,
    topology: String,
    idle_secs: f64,
    settle_secs: f64,
    only: Option<Vec<String>>,
    perf: Option<PathBuf>,
    daemon: PathBuf,
    append: Option<PathBuf>,
    keep: bool,
}

/// Real wavesyncd processes on 127.0.0.1 against the daemon targets (docs/BENCHMARKS.md,
/// "## Daemon"). Numbers may contain `_` (1_000_000).
#[derive(Parser)]
#[command(name = "wavesyncd-bench", args_override_self = true)]
struct Cli {
    /// Smaller defaults (under a minute): --changes 100000 --samples 50 --seconds 3
    /// --cluster-writes 2000 --idle-secs 3 --settle-secs 3.
    #[arg(long)]
    quick: bool,
    /// Changes a fresh peer catches up on [default: 1000000].
    #[arg(long, value_name = "N", value_parser = num::<u64>)]
    changes: Option<u64>,
    /// Single-row commits timed for the latency [default: 200].
    #[arg(long, value_name = "N", value_parser = num::<usize>)]
    samples: Option<usize>,
    /// Seconds the throughput writer runs [default: 10].
    #[arg(long, value_name = "S", value_parser = num::<f64>)]
    seconds: Option<f64>,
    /// Rows per transaction of the throughput writer.
    #[arg(long, value_name = "ROWS", value_parser = num::<u64>, default_value_t = 100)]
    batch: u64,
    /// The throughput writer pauses while b lags more than this many changes (0: never).
    #[arg(long, value_name = "CHANGES", value_parser = num::<u64>, default_value_t = 200_000)]
    max_lag: u64,
    /// Rows per transaction written before the catch-up.
    #[arg(long, value_name = "ROWS", value_parser = num::<u64>, default_value_t = 1000)]
    catchup_batch: u64,
    /// Daemons of the cluster (at least 2).
    #[arg(long, value_name = "N", value_parser = num::<usize>, default_value_t = 10)]
    peers: usize,
    /// Rows written across the cluster [default: 10000].
    #[arg(long, value_name = "N", value_parser = num::<u64>)]
    cluster_writes: Option<u64>,
    /// Rows per transaction of the cluster writers.
    #[arg(long, value_name = "ROWS", value_parser = num::<u64>, default_value_t = 10)]
    cluster_batch: u64,
    /// Whom each cluster peer dials: the first peer, the previous one, or all before it.
    #[arg(long, value_parser = ["star", "chain", "mesh"], default_value = "star")]
    topology: String,
    /// Seconds over which idle CPU is sampled [default: 10].
    #[arg(long, value_name = "S", value_parser = num::<f64>)]
    idle_secs: Option<f64>,
    /// Seconds without writes before idle CPU is sampled [default: 10].
    #[arg(long, value_name = "S", value_parser = num::<f64>)]
    settle_secs: Option<f64>,
    /// Only these phases: latency, throughput, catchup, cluster, idle (comma-separated).
    #[arg(long, value_name = "PHASE,...")]
    only: Option<String>,
    /// Record `perf record -g` profiles of the daemons into DIR.
    #[arg(long, value_name = "DIR")]
    perf: Option<PathBuf>,
    /// The daemon binary [default: $WAVESYNCD or <repo>/dist/wavesyncd].
    #[arg(long, value_name = "PATH")]
    daemon: Option<PathBuf>,
    /// Append the report to the "## Daemon" section of FILE.
    #[arg(long, value_name = "FILE")]
    append: Option<PathBuf>,
    /// Keep the working directory (databases, logs).
    #[arg(long)]
    keep: bool,
}

/// A number, `_` allowed between digits.
fn num<T: std::str::FromStr>(v: &str) -> Result<T, String> {
    v.replace('_', "").parse().map_err(|_| format!("not a number: {v}"))
}

fn parse_args() -> Args {
    let cli = Cli::parse();
    let quick = cli.quick;
    Args {
        quick,
        changes: cli.changes.unwrap_or(if quick { 100_000 } else { 1_000_000 }),
        samples: cli.samples.unwrap_or(if quick { 50 } else { 200 }),
        seconds: cli.seconds.unwrap_or(if quick { 3.0 } else { 10.0 }),
        batch: cli.batch.max(1),
        max_lag: cli.max_lag,
        peers: cli.peers.max(2),
        catchup_batch: cli.catchup_batch.max(1),
        cluster_writes: cli.cluster_writes.unwrap_or(if quick { 2_000 } else { 10_000 }),
        cluster_batch: cli.cluster_batch.max(1),
        topology: cli.topology,
        idle_secs: cli.idle_secs.unwrap_or(if quick { 3.0 } else { 10.0 }),
        settle_secs: cli.settle_secs.unwrap_or(if quick { 3.0 } else { 10.0 }),
        only: cli.only.map(|o| o.split(',').map(|s| s.trim().to_string()).collect()),
        perf: cli.perf,
        daemon: cli.daemon.unwrap_or_else(|| {
            std::env::var_os("WAVESYNCD").map(PathBuf::from).unwrap_or_else(|| repo_path("dist/wavesyncd"))
        }),
        append: cli.append,
        keep: cli.keep,
    }
}

fn die(msg: &str) -> ! {
    eprintln!("wavesyncd-bench: {msg}");
    std::process::exit(2);
}

fn log(msg: impl AsRef<str>) {
    eprintln!("[bench] {}", msg.as_ref());
}

// ---------------------------------------------------------------------------------------
// SQLite side

/// An app connection: extension loaded, WAL, busy timeout of 10 s, synchronous=NORMAL (the
/// app's own choice; the daemon keeps its own connection's settings).
fn app(db: &Path) -> Connection {
    let conn = app_with(db, Duration::from_secs(10));
    conn.execute_batch("PRAGMA synchronous=NORMAL").expect("synchronous");
    conn
}

/// `t(id, a, b, c, d)`: four columns, so one inserted row is four changes.
fn create_wide(db: &Path, table: &str) {
    app(db)
        .execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {table}(id INTEGER PRIMARY KEY NOT NULL, a TEXT, b INTEGER, c REAL, d TEXT);
             SELECT wavesync_as_crr('{table}');"
        ))
        .expect("create table");
}

fn create_narrow(db: &Path, table: &str) {
    app(db)
        .execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {table}(id INTEGER PRIMARY KEY NOT NULL, v TEXT, n INTEGER DEFAULT 0);
             SELECT wavesync_as_crr('{table}');"
        ))
        .expect("create table");
}

/// Inserts rows `first..first+n` into a wide table in one transaction.
fn insert_wide(c: &Connection, table: &str, first: u64, n: u64) {
    let tx = c.unchecked_transaction().expect("begin");
    tx.execute(
        &format!(
            "WITH RECURSIVE s(x) AS (SELECT ?1 UNION ALL SELECT x + 1 FROM s WHERE x < ?2)
             INSERT INTO {table}(id, a, b, c, d) SELECT x, 'title ' || x, x % 1000, x * 0.5, 'payload-' || hex(x) FROM s"
        ),
        params![first as i64, (first + n - 1) as i64],
    )
    .expect("insert");
    tx.commit().expect("commit");
}

fn count(c: &Connection, table: &str) -> u64 {
    c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get::<_, i64>(0)).unwrap_or(0) as u64
}

// ---------------------------------------------------------------------------------------
// Daemons

/// Daemons and groups are the kit's (`Launch::bench`: `--daemon`, `$WAVESYNCD_LOG`, killed
/// with the benchmark); its waits poll every 20 ms.
const POLL: Duration = Duration::from_millis(20);

fn group(root: &Path, name: &str, args: &Args) -> Group {
    Group::in_dir(root, name, Launch::bench(&args.daemon))
}

/// The pid of a daemon the benchmark started (and never stops before it is dropped).
fn pid(d: &Daemon) -> u32 {
    d.pid().expect("a running daemon")
}

// ---------------------------------------------------------------------------------------
// Bytes on the wire: the TCP payload bytes of every socket of a process (`ss -tinp`).

/// (bytes sent, bytes received) over the established TCP sockets of each pid.
fn tcp_bytes(pids: &[u32]) -> Option<BTreeMap<u32, (u64, u64)>> {
    let out = Command::new("ss").args(["-tinpH", "state", "established"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut totals: BTreeMap<u32, (u64, u64)> = pids.iter().map(|p| (*p, (0, 0))).collect();
    // Each socket: a line with the addresses and `users:((...pid=N...))`, then an indented
    // line with the tcp_info fields.
    let mut current: Option<u32> = None;
    let mut seen = false;
    for line in text.lines() {
        if !line.starts_with(|c: char| c.is_whitespace()) {
            current = pids.iter().copied().find(|p| line.contains(&format!("pid={p},")));
            continue;
        }
        let Some(pid) = current else { continue };
        let field = |name: &str| {
            line.split_whitespace().find_map(|w| w.strip_prefix(name)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        };
        let e = totals.entry(pid).or_default();
        e.0 += field("bytes_sent:");
        e.1 += field("bytes_received:");
        seen = true;
        current = None;
    }
    if !seen && !pids.is_empty() {
        return None;
    }
    Some(totals)
}

/// Total bytes sent by all of `pids` (each byte sent on loopback is received by a peer).
fn sent_total(pids: &[u32]) -> Option<u64> {
    tcp_bytes(pids).map(|m| m.values().map(|v| v.0).sum())
}

// ---------------------------------------------------------------------------------------
// perf

struct Perf(Vec<Child>);

fn perf_start(dir: &Option<PathBuf>, phase: &str, daemons: &[&Daemon]) -> Perf {
    let Some(dir) = dir else { return Perf(Vec::new()) };
    std::fs::create_dir_all(dir).expect("perf dir");
    let mut kids = Vec::new();
    for d in daemons {
        let out = dir.join(format!("{phase}-{}.data", d.name));
        match Command::new("perf")
            .args(["record", "-F", "499", "-g", "-q", "-o"])
            .arg(&out)
            .args(["-p", &pid(d).to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => kids.push(c),
            Err(e) => log(format!("perf record failed to start: {e}")),
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    Perf(kids)
}

impl Drop for Perf {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = Command::new("kill").arg("-INT").arg(c.id().to_string()).status();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Results

#[derive(Default)]
struct Report {
    rows: Vec<[String; 4]>,
    notes: Vec<String>,
}

impl Report {
    fn row(
        &mut self,
        what: impl Into<String>,
        target: impl Into<String>,
        measured: impl Into<String>,
        met: Option<bool>,
    ) {
        let verdict = match met {
            Some(true) => "met",
            Some(false) => "**not met**",
            None => "",
        };
        self.rows.push([what.into(), target.into(), measured.into(), verdict.into()]);
    }

    fn note(&mut self, s: impl Into<String>) {
        let s = s.into();
        log(&s);
        self.notes.push(s);
    }
}

fn ms(d: f64) -> String {
    format!("{:.1} ms", d * 1000.0)
}

fn rate(n: f64) -> String {
    if n >= 1e6 {
        format!("{:.2}M changes/s", n / 1e6)
    } else {
        format!("{:.1}k changes/s", n / 1e3)
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Times a commit on one peer until another peer's connection sees it: `before` is taken
/// just before the commit, `wait` polls every 0.25 ms and runs the visibility query (a
/// count of one id) only when `PRAGMA data_version` moved.
struct Visibility(i64);

impl Visibility {
    fn before(c: &Connection) -> Visibility {
        Visibility(c.query_row("PRAGMA data_version", [], |r| r.get(0)).expect("data_version"))
    }

    /// Seconds until row `id` is visible on `c`; None after 10 s.
    fn wait(mut self, c: &Connection, visible: &mut rusqlite::Statement<'_>, id: i64) -> Option<f64> {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            let now: i64 = c.query_row("PRAGMA data_version", [], |r| r.get(0)).expect("data_version");
            if now != self.0 {
                self.0 = now;
                if visible.query_row([id], |r| r.get::<_, i64>(0)).expect("query") == 1 {
                    return Some(t0.elapsed().as_secs_f64());
                }
            }
            std::thread::sleep(Duration::from_micros(250));
        }
        None
    }
}

// ---------------------------------------------------------------------------------------
// Phases

/// Phases 1, 2 and 6 on one pair of daemons.
fn pair(args: &Args, root: &Path, rep: &mut Report, run: &dyn Fn(&str) -> bool) {
    let g = group(root, "pair", args);
    for n in ["a", "b"] {
        create_narrow(&g.db(n), "lat");
        create_wide(&g.db(n), "tp");
    }
    let a = g.start("a", &[], &[]);
    let mut b = g.start("b", &[&a], &[]);
    let (ca, cb) = (app(&g.db("a")), app(&g.db("b")));
    // Warm-up: the first row proves the pair is connected and subscribed.
    ca.execute("INSERT INTO lat(id, v) VALUES (0, 'warm-up')", []).expect("insert");
    wait_every("the pair is connected", Duration::from_secs(60), POLL, || count(&cb, "lat") == 1);
    std::thread::sleep(Duration::from_millis(500));

    if run("latency") {
        log(format!("latency: {} single-row commits on a, polled on b every 0.25 ms", args.samples));
        // A small xorshift: pauses between latency samples.
        let mut rng = Rng(0x9e3779b97f4a7c15);
        let mut lat = Vec::new();
        let mut lost = 0;
        let mut visible = cb.prepare("SELECT count(*) FROM lat WHERE id = ?1").expect("prepare");
        for i in 1..=args.samples as i64 {
            // A random pause, so commits fall at every phase of the daemon's poll timer.
            std::thread::sleep(Duration::from_micros(2_000 + rng.next() % 10_000));
            let seen = Visibility::before(&cb);
            ca.execute("INSERT INTO lat(id, v) VALUES (?1, 'latency sample')", [i]).expect("insert");
            match seen.wait(&cb, &mut visible, i) {
                Some(t) => lat.push(t),
                None => lost += 1,
            }
        }
        lat.sort_by(|x, y| x.partial_cmp(y).unwrap());
        let (p50, p99, max) = (percentile(&lat, 0.5), percentile(&lat, 0.99), lat.last().copied().unwrap_or(f64::NAN));
        let mean = lat.iter().sum::<f64>() / lat.len().max(1) as f64;
        rep.row("commit-to-visible latency, 2 peers, p50", "≤ 10 ms", ms(p50), Some(p50 <= 0.010));
        rep.row("commit-to-visible latency, 2 peers, p99", "≤ 50 ms", ms(p99), Some(p99 <= 0.050));
        rep.note(format!(
            "latency: {} samples (single-row INSERT commits on a, b polled every 0.25 ms): min {}, mean {}, p50 {}, p90 {}, p99 {}, max {}{}",
            lat.len(),
            ms(lat.first().copied().unwrap_or(f64::NAN)),
            ms(mean),
            ms(p50),
            ms(percentile(&lat, 0.9)),
            ms(p99),
            ms(max),
            if lost > 0 { format!(", {lost} not visible within 10 s") } else { String::new() }
        ));
    }

    if run("throughput") {
        let batch = args.batch;
        let max_lag = args.max_lag.div_ceil(4); // in rows
        log(format!(
            "throughput: a commits {batch}-row transactions (4 changes a row) for {} s{}",
            args.seconds,
            if max_lag > 0 {
                format!(", pausing while b lags more than {} changes", args.max_lag)
            } else {
                ", unthrottled".into()
            }
        ));
        let bytes0 = sent_total(&[pid(&a), pid(&b)]);
        let perf = perf_start(&args.perf, "throughput", &[&a, &b]);
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let seen = Arc::new(AtomicU64::new(0));
        let t0 = Instant::now();
        let writer = {
            let (db, stop, written, seen) = (g.db("a"), stop.clone(), written.clone(), seen.clone());
            std::thread::spawn(move || {
                let c = app(&db);
                let mut next = 1u64;
                let (mut txs, mut paused) = (0u64, Duration::ZERO);
                while !stop.load(Ordering::Relaxed) {
                    // An app that writes as fast as b keeps up (lag bounded), not faster.
                    if max_lag > 0 && next - 1 > seen.load(Ordering::Relaxed) + max_lag {
                        let p = Instant::now();
                        std::thread::sleep(Duration::from_millis(2));
                        paused += p.elapsed();
                        continue;
                    }
                    insert_wide(&c, "tp", next, batch);
                    next += batch;
                    txs += 1;
                    written.store(next - 1, Ordering::Relaxed);
                }
                (txs, paused)
            })
        };
        let mut samples: Vec<(f64, u64)> = Vec::new();
        let mut max_seen_lag = 0u64;
        let window = Duration::from_secs_f64(args.seconds);
        while t0.elapsed() < window {
            std::thread::sleep(Duration::from_millis(100));
            let w = written.load(Ordering::Relaxed);
            let n = count(&cb, "tp");
            seen.store(n, Ordering::Relaxed);
            max_seen_lag = max_seen_lag.max(w.saturating_sub(n));
            samples.push((t0.elapsed().as_secs_f64(), n));
        }
        stop.store(true, Ordering::Relaxed);
        let (txs, paused) = writer.join().expect("writer");
        let write_secs = t0.elapsed().as_secs_f64();
        let rows = written.load(Ordering::Relaxed);
        let at_stop = count(&cb, "tp");
        log(format!(
            "throughput: a wrote {rows} rows in {txs} transactions; b had {at_stop} at the end of writing; draining"
        ));
        let mut last = (0u64, Instant::now());
        loop {
            let n = count(&cb, "tp");
            samples.push((t0.elapsed().as_secs_f64(), n));
            if n >= rows {
                break;
            }
            if n != last.0 {
                last = (n, Instant::now());
            } else if last.1.elapsed() > Duration::from_secs(60) {
                rep.note(format!("throughput: b stalled at {n} of {rows} rows for 60 s"));
                break;
            }
            b.check_alive();
            std::thread::sleep(Duration::from_millis(50));
        }
        let all_secs = t0.elapsed().as_secs_f64();
        drop(perf);
        let bytes1 = sent_total(&[pid(&a), pid(&b)]);
        let changes = rows as f64 * 4.0;
        let sustained = count(&cb, "tp") as f64 * 4.0 / all_secs;
        // Arrival rate on b while the writer ran (after its first second).
        let first = samples.iter().find(|s| s.0 >= 1.0).copied().unwrap_or((0.0, 0));
        let during = (at_stop.saturating_sub(first.1)) as f64 * 4.0 / (write_secs - first.0).max(0.001);
        rep.row(
            format!("sustained replication a → b ({batch}-row transactions)"),
            "≥ 50k changes/s",
            rate(sustained),
            Some(sustained >= 50_000.0),
        );
        rep.note(format!(
            "throughput: a committed {:.0} changes in {:.1} s ({txs} transactions of {batch} rows × 4 columns, {}; {}); \
             b received {} while the writer ran (lag at most {} changes) and had all of them {:.2} s after it stopped; \
             sustained = all changes / time from the first write until b had them all = {}",
            changes,
            write_secs,
            rate(changes / write_secs),
            if max_lag > 0 {
                format!("the writer paused {:.1} s in all while b lagged more than {} changes", paused.as_secs_f64(), args.max_lag)
            } else {
                "unthrottled".into()
            },
            rate(during),
            max_seen_lag * 4,
            all_secs - write_secs,
            rate(sustained)
        ));
        if let (Some(x), Some(y)) = (bytes0, bytes1) {
            let per = (y - x) as f64 / changes;
            rep.row("bytes on the wire per change, live gossip (2 peers)", "—", format!("{per:.1} B"), None);
            rep.note(format!(
                "bytes: {} bytes of TCP payload both ways between a and b during the throughput run ({per:.1} per change, {:.0} per transaction)",
                y - x,
                (y - x) as f64 / txs.max(1) as f64
            ));
        }
        // The status file is rewritten every second: let the counters catch up.
        std::thread::sleep(Duration::from_millis(1100));
        let ca_ = a.counters();
        let cb_ = b.counters();
        rep.note(format!(
            "throughput counters: a published {}; b gossip applied {}, catch-up pages applied {}, apply_failed {}, partial_dropped {}",
            ca_.get("published").unwrap_or(&0),
            cb_.get("gossip_applied").unwrap_or(&0),
            cb_.get("catchup_pages_applied").unwrap_or(&0),
            cb_.get("apply_failed").unwrap_or(&0),
            cb_.get("partial_dropped").unwrap_or(&0)
        ));
    }

    if run("idle") {
        idle(args, rep, "2 peers", &[&a, &b]);
    }
}

/// Phase 6: idle CPU and RSS of converged daemons.
fn idle(args: &Args, rep: &mut Report, label: &str, ds: &[&Daemon]) {
    recovery(rep, label, ds);
    let settle = args.settle_secs;
    log(format!("idle ({label}): settling {settle} s, then sampling CPU for {} s", args.idle_secs));
    std::thread::sleep(Duration::from_secs_f64(settle));
    let phase = format!("idle-{}", label.replace(' ', ""));
    let perf = perf_start(&args.perf, &phase, &ds[..ds.len().min(2)]);
    let c0: Vec<f64> = ds.iter().map(|d| d.cpu_secs().unwrap_or(f64::NAN)).collect();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(args.idle_secs));
    let secs = t0.elapsed().as_secs_f64();
    let c1: Vec<f64> = ds.iter().map(|d| d.cpu_secs().unwrap_or(f64::NAN)).collect();
    drop(perf);
    let cpu: Vec<f64> = c0.iter().zip(&c1).map(|(x, y)| (y - x) / secs * 100.0).collect();
    let rss: Vec<f64> = ds.iter().map(|d| d.proc_status("VmRSS:").unwrap_or(0) as f64 / 1024.0).collect();
    let hwm: Vec<f64> = ds.iter().map(|d| d.proc_status("VmHWM:").unwrap_or(0) as f64 / 1024.0).collect();
    let max = |v: &[f64]| v.iter().cloned().fold(f64::MIN, f64::max);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    rep.row(
        format!("idle CPU per daemon ({label}), max"),
        "≤ 1% of a core",
        format!("{:.2}%", max(&cpu)),
        Some(max(&cpu) <= 1.0),
    );
    rep.row(
        format!("idle RSS per daemon ({label}), max"),
        "≤ 50 MB",
        format!("{:.1} MiB", max(&rss)),
        Some(max(&rss) * 1.048576 <= 50.0),
    );
    rep.note(format!(
        "idle ({label}): {settle:.0} s after convergence, CPU over {secs:.0} s per daemon {} (mean {:.2}%); VmRSS {} MiB (peak VmHWM {} MiB)",
        cpu.iter().map(|c| format!("{c:.2}%")).collect::<Vec<_>>().join(", "),
        mean(&cpu),
        rss.iter().map(|r| format!("{r:.1}")).collect::<Vec<_>>().join(", "),
        hwm.iter().map(|r| format!("{r:.1}")).collect::<Vec<_>>().join(", "),
    ));
}

/// Right after a burst: the time until every daemon is back under the idle targets (RSS
/// ≤ 50 MB, CPU ≤ 1% of a core over the last second), sampled every 250 ms for 30 s at most.
fn recovery(rep: &mut Report, label: &str, ds: &[&Daemon]) {
    let t0 = Instant::now();
    let cpu = || ds.iter().map(|d| d.cpu_secs().unwrap_or(f64::NAN)).collect::<Vec<f64>>();
    let rss = || ds.iter().map(|d| d.proc_status("VmRSS:").unwrap_or(0) as f64 / 1024.0).collect::<Vec<f64>>();
    let mut window: std::collections::VecDeque<(Instant, Vec<f64>)> = std::collections::VecDeque::new();
    window.push_back((Instant::now(), cpu()));
    let rss0 = rss();
    let mut recovered = None;
    while t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(250));
        let now = Instant::now();
        window.push_back((now, cpu()));
        while window.len() > 2 && now.duration_since(window[1].0) >= Duration::from_secs(1) {
            window.pop_front();
        }
        let (t_first, c_first) = &window[0];
        let span = now.duration_since(*t_first).as_secs_f64();
        if span < 0.9 {
            continue;
        }
        let c_now = &window[window.len() - 1].1;
        let busy = c_first.iter().zip(c_now).map(|(a, b)| (b - a) / span * 100.0).fold(0.0, f64::max);
        let mem = rss().into_iter().fold(0.0, f64::max);
        if busy <= 1.0 && mem * 1.048576 <= 50.0 {
            recovered = Some((t0.elapsed().as_secs_f64(), busy, mem));
            break;
        }
    }
    let shown = |v: &[f64]| v.iter().map(|r| format!("{r:.1}")).collect::<Vec<_>>().join(", ");
    rep.row(
        format!("back under the idle targets after a burst ({label})"),
        "≤ 10 s",
        recovered.map(|(t, _, _)| format!("{t:.1} s")).unwrap_or_else(|| "> 30 s".into()),
        Some(recovered.is_some_and(|(t, _, _)| t <= 10.0)),
    );
    rep.note(format!(
        "recovery ({label}): VmRSS {} MiB right after the burst; {}",
        shown(&rss0),
        match recovered {
            Some((t, c, m)) => format!(
                "after {t:.1} s the busiest daemon used {c:.2}% of a core over 1 s and the largest held {m:.1} MiB"
            ),
            None => format!("not under the targets within 30 s (VmRSS now {} MiB)", shown(&rss())),
        }
    ));
}

/// Phase 3: a fresh peer catches up on `--changes` changes.
fn catchup(args: &Args, root: &Path, rep: &mut Report) {
    let rows = args.changes.div_ceil(4);
    let g = group(root, "catchup", args);
    create_wide(&g.db("a"), "cu");
    create_wide(&g.db("b"), "cu");
    let tx_rows = args.catchup_batch;
    log(format!(
        "catch-up: writing {rows} rows × 4 columns on a (transactions of {tx_rows} rows) before its daemon starts"
    ));
    let t = Instant::now();
    {
        let c = app(&g.db("a"));
        let mut next = 1;
        while next <= rows {
            let n = tx_rows.min(rows - next + 1);
            insert_wide(&c, "cu", next, n);
            next += n;
        }
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").expect("checkpoint");
    }
    let changes: u64 = app(&g.db("a"))
        .query_row("SELECT count(*) FROM wavesync_changes", [], |r| r.get::<_, i64>(0))
        .expect("count") as u64;
    log(format!("catch-up: a holds {changes} changes ({:.1} s to write)", t.elapsed().as_secs_f64()));
    let a = g.start("a", &[], &[]);
    let cb = app(&g.db("b"));
    let bytes0 = sent_total(&[pid(&a)]).unwrap_or(0);
    let mut b = g.start("b", &[&a], &[]);
    let perf = perf_start(&args.perf, "catchup", &[&a, &b]);
    let t0 = b.spawned();
    let mut first_row: Option<f64> = None;
    let mut progress = Vec::new();
    loop {
        let n = count(&cb, "cu");
        let el = t0.elapsed().as_secs_f64();
        if n > 0 && first_row.is_none() {
            first_row = Some(el);
        }
        progress.push((el, n));
        if n >= rows {
            break;
        }
        b.check_alive();
        if t0.elapsed() > Duration::from_secs(1800) {
            die("catch-up did not finish within 30 minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let secs = t0.elapsed().as_secs_f64();
    drop(perf);
    let bytes = tcp_bytes(&[pid(&a), pid(&b)]);
    let hwm: Vec<f64> = [&a, &b].iter().map(|d| d.proc_status("VmHWM:").unwrap_or(0) as f64 / 1024.0).collect();
    // The status file is rewritten every second: let the counters catch up.
    std::thread::sleep(Duration::from_millis(1100));
    let cnt = b.counters();
    // The target is for 1M changes; a scaled run is judged by its rate.
    let per_million = secs * 1e6 / changes.max(1) as f64;
    rep.row(
        format!("catch-up of a fresh peer, {:.2}M changes", changes as f64 / 1e6),
        "≤ 20 s for 1M",
        format!("{secs:.1} s"),
        Some(per_million <= 20.0),
    );
    let halfway = progress.iter().find(|p| p.1 >= rows / 2).map(|p| p.0).unwrap_or(f64::NAN);
    rep.note(format!(
        "catch-up: {changes} changes ({rows} rows × 4, in {tx_rows}-row transactions) in {secs:.1} s from starting b's daemon ({}), first rows after {:.2} s, \
         half after {halfway:.1} s; b applied {} catch-up pages; peak RSS a {:.0} MiB, b {:.0} MiB",
        rate(changes as f64 / secs),
        first_row.unwrap_or(f64::NAN),
        cnt.get("catchup_pages_applied").unwrap_or(&0),
        hwm[0],
        hwm[1]
    ));
    if args.changes != 1_000_000 {
        rep.note(format!(
            "catch-up: scaled run ({changes} changes); at this rate 1M changes take about {:.1} s",
            secs * 1e6 / changes as f64
        ));
    }
    if let Some(m) = bytes {
        let total: u64 = m.values().map(|v| v.0).sum::<u64>() - bytes0;
        rep.row("bytes on the wire per change, catch-up", "—", format!("{:.1} B", total as f64 / changes as f64), None);
        rep.note(format!(
            "catch-up bytes: {total} bytes of TCP payload both ways ({:.1} per change)",
            total as f64 / changes as f64
        ));
    }
    // The same rows on both sides.
    let sum = |c: &Connection| -> (i64, i64) {
        c.query_row("SELECT count(*), total(b) FROM cu", [], |r| Ok((r.get(0)?, r.get::<_, f64>(1)? as i64))).unwrap()
    };
    let (sa, sb) = (sum(&app(&g.db("a"))), sum(&cb));
    if sa != sb {
        rep.note(format!("catch-up: WARNING a and b differ after catch-up: {sa:?} vs {sb:?}"));
    }

    // Live sync while a serves a catch-up: a fresh c catches up from a, and meanwhile
    // single-row commits on a are timed until b (up to date) sees them.
    create_wide(&g.db("c"), "cu");
    let cc = app(&g.db("c"));
    let ca = app(&g.db("a"));
    let mut c = g.start("c", &[&a], &[]);
    let t0 = c.spawned();
    let mut lat = Vec::new();
    let mut lost = 0;
    let mut visible = cb.prepare("SELECT count(*) FROM cu WHERE id = ?1").expect("prepare");
    let mut id = rows as i64 + 1;
    while (cc.query_row("SELECT count(*) FROM cu WHERE id <= ?1", [rows as i64], |r| r.get::<_, i64>(0)).unwrap_or(0)
        as u64)
        < rows
    {
        c.check_alive();
        if t0.elapsed() > Duration::from_secs(1800) {
            die("the second catch-up did not finish within 30 minutes");
        }
        std::thread::sleep(Duration::from_millis(20));
        let seen = Visibility::before(&cb);
        insert_wide(&ca, "cu", id as u64, 1);
        match seen.wait(&cb, &mut visible, id) {
            Some(t) => lat.push(t),
            None => lost += 1,
        }
        id += 1;
    }
    let secs = t0.elapsed().as_secs_f64();
    lat.sort_by(|x, y| x.partial_cmp(y).unwrap());
    let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
    rep.row(
        "commit-to-visible latency while serving a 1M-change catch-up, p50",
        "≤ 10 ms",
        ms(p50),
        Some(p50 <= 0.010),
    );
    rep.row(
        "commit-to-visible latency while serving a 1M-change catch-up, p99",
        "≤ 50 ms",
        ms(p99),
        Some(p99 <= 0.050),
    );
    rep.note(format!(
        "latency while a serves a catch-up: a fresh c caught up from a in {secs:.1} s; meanwhile {} single-row commits on a \
         (every 20 ms), visible on b: p50 {}, p90 {}, p99 {}, max {}{}",
        lat.len(),
        ms(p50),
        ms(percentile(&lat, 0.9)),
        ms(p99),
        ms(lat.last().copied().unwrap_or(f64::NAN)),
        if lost > 0 { format!("; {lost} not visible within 10 s") } else { String::new() }
    ));

    // Relayed catch-up: a leaves, and a fresh d catches up from b, which must serve
    // changes that originated at a (a third replica's versions, read by origin).
    let total = count(&cb, "cu").max(rows);
    drop(c);
    drop(a);
    create_wide(&g.db("d"), "cu");
    let cd = app(&g.db("d"));
    let mut d = g.start("d", &[&b], &[]);
    let (secs, first_row) = until_rows(&mut d, &cd, total, Duration::from_millis(50), "the relayed catch-up");
    rep.row(
        format!(
            "catch-up of a fresh peer from a relay (changes of a third peer), {:.2}M changes",
            changes as f64 / 1e6
        ),
        "—",
        format!("{secs:.1} s"),
        None,
    );
    rep.note(format!(
        "relayed catch-up: a stopped, a fresh d caught up {total} rows from b (every change originated at a) in {secs:.1} s, \
         first rows after {first_row:.2} s"
    ));

    // A returning peer: d stops, a comes back and writes a little, which b takes live;
    // a stops again and d restarts from b. b serves a's newest versions only.
    drop(d);
    let a = g.start("a", &[&b], &[]);
    let ca = app(&g.db("a"));
    // a's own catch-up with b (its first ask for d's versions walks all of b) goes first.
    std::thread::sleep(Duration::from_secs(2));
    let extra = 1000u64;
    let first = total as i64 + 1_000_000;
    for i in 0..extra / 10 {
        insert_wide(&ca, "cu", first as u64 + i * 10, 10);
    }
    let want = total + extra;
    wait_every("b has a's new rows", Duration::from_secs(60), POLL, || count(&cb, "cu") >= want);
    drop(a);
    let mut d = g.start("d", &[&b], &[]);
    let (secs, _) = until_rows(&mut d, &cd, want, Duration::from_millis(5), "the returning peer's catch-up");
    rep.row(
        format!("catch-up of a returning peer from a relay: {extra} new rows of a third peer, on {total} rows"),
        "—",
        ms(secs),
        None,
    );
    rep.note(format!(
        "returning peer: d stopped, a wrote {extra} rows ({} changes, 10-row transactions) that b took live, a stopped; \
         d's daemon, restarted with b as its only peer, had them {} after it was spawned",
        extra * 4,
        ms(secs)
    ));
}

/// Seconds from spawning `d` until table `cu` on `c` (its database) holds `rows` rows, and
/// until it held the first, counting every `poll` (a count of a large table takes a core
/// for milliseconds).
fn until_rows(d: &mut Daemon, c: &Connection, rows: u64, poll: Duration, what: &str) -> (f64, f64) {
    let mut first_row = f64::NAN;
    loop {
        let n = count(c, "cu");
        let el = d.spawned().elapsed().as_secs_f64();
        if n > 0 && first_row.is_nan() {
            first_row = el;
        }
        if n >= rows {
            return (el, first_row);
        }
        d.check_alive();
        if el > 1800.0 {
            die(&format!("{what} did not finish within 30 minutes"));
        }
        std::thread::sleep(poll);
    }
}

/// Phase 4: a cluster of `--peers` daemons, `--cluster-writes` rows written across all of
/// them; time from the last commit until every table is identical.
fn cluster(args: &Args, root: &Path, rep: &mut Report, run: &dyn Fn(&str) -> bool) {
    let n = args.peers;
    let g = group(root, "cluster", args);
    let names: Vec<String> = (0..n).map(|i| format!("p{i:02}")).collect();
    for name in &names {
        create_narrow(&g.db(name), "cl");
    }
    log(format!("cluster: starting {n} daemons ({} topology)", args.topology));
    let mut ds: Vec<Daemon> = Vec::new();
    for i in 0..n {
        let peers: Vec<&Daemon> = match args.topology.as_str() {
            "star" if i > 0 => vec![&ds[0]],
            "chain" if i > 0 => vec![&ds[i - 1]],
            "mesh" => ds.iter().collect(),
            _ => vec![],
        };
        let d = g.start(&names[i], &peers, &[]);
        ds.push(d);
    }
    let conns: Vec<Connection> = names.iter().map(|nm| app(&g.db(nm))).collect();
    // Warm-up: one row from every peer reaches every peer (connections and subscriptions up).
    for (i, c) in conns.iter().enumerate() {
        c.execute("INSERT INTO cl(id, v) VALUES (?1, 'warm-up')", [-(i as i64) - 1]).expect("insert");
    }
    let warm = wait_every("the cluster is connected", Duration::from_secs(120), POLL, || {
        conns.iter().all(|c| count(c, "cl") == n as u64)
    });
    log(format!("cluster: connected and warmed up in {:.1} s", warm.as_secs_f64()));
    std::thread::sleep(Duration::from_secs(1));

    let writes = args.cluster_writes;
    let batch = args.cluster_batch;
    let per_peer = writes / n as u64;
    let total = per_peer * n as u64 + n as u64;
    let pids: Vec<u32> = ds.iter().map(pid).collect();
    let bytes0 = sent_total(&pids);
    let hub: Vec<&Daemon> = ds.iter().take(2).collect();
    let perf = perf_start(&args.perf, "cluster", &hub);
    log(format!("cluster: {} rows on each of {n} peers in {batch}-row transactions, all peers at once", per_peer));
    let start = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let db = g.db(&names[i]);
            std::thread::spawn(move || {
                let c = app(&db);
                let base = (i as u64 + 1) * 10_000_000;
                let mut done = 0;
                let mut k = 0u64;
                while done < per_peer {
                    let m = batch.min(per_peer - done);
                    let tx = c.unchecked_transaction().expect("begin");
                    for j in 0..m {
                        let id = base + done + j;
                        tx.execute(
                            "INSERT INTO cl(id, v) VALUES (?1, ?2)",
                            params![id as i64, format!("peer {i} row {}", done + j)],
                        )
                        .expect("insert");
                    }
                    // Some updates of other peers' warm-up rows: concurrent writes to the same cells.
                    if k.is_multiple_of(10) {
                        tx.execute("UPDATE cl SET n = n + 1 WHERE id = ?1", [-(((i + 1) % 10) as i64) - 1])
                            .expect("update");
                    }
                    tx.commit().expect("commit");
                    done += m;
                    k += 1;
                }
                Instant::now()
            })
        })
        .collect();
    let last_write = handles.into_iter().map(|h| h.join().expect("writer")).max().unwrap();
    let write_secs = last_write.duration_since(start).as_secs_f64();
    log(format!("cluster: all writes committed in {write_secs:.2} s; waiting for convergence"));
    let digest = |c: &Connection| -> (u64, i64, i64) {
        c.query_row("SELECT count(*), total(n), total(length(v)) FROM cl", [], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, f64>(1)? as i64, r.get::<_, f64>(2)? as i64))
        })
        .unwrap()
    };
    let mut done_at: Vec<Option<f64>> = vec![None; n];
    let converged = loop {
        let ds0: Vec<(u64, i64, i64)> = conns.iter().map(digest).collect();
        let el = last_write.elapsed().as_secs_f64();
        for (i, d) in ds0.iter().enumerate() {
            if d.0 >= total && done_at[i].is_none() {
                done_at[i] = Some(el);
            }
        }
        if ds0.iter().all(|d| d.0 >= total && *d == ds0[0]) {
            break el;
        }
        if last_write.elapsed() > Duration::from_secs(600) {
            die(&format!("cluster did not converge within 10 minutes: {ds0:?}"));
        }
        for d in ds.iter_mut() {
            d.check_alive();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    drop(perf);
    let bytes1 = sent_total(&pids);
    // Full check: identical rows everywhere.
    let rows = |c: &Connection| -> Vec<(i64, String, i64)> {
        let mut s = c.prepare("SELECT id, v, n FROM cl ORDER BY id").unwrap();
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().collect::<Result<_, _>>().unwrap()
    };
    let r0 = rows(&conns[0]);
    let identical = conns[1..].iter().all(|c| rows(c) == r0);
    rep.row(
        format!("{n}-peer convergence after the last write ({} rows, {})", per_peer * n as u64, args.topology),
        "≤ 2 s",
        format!("{converged:.2} s"),
        Some(converged <= 2.0 && identical),
    );
    let mut lag: Vec<f64> = done_at.iter().map(|d| d.unwrap_or(converged)).collect();
    lag.sort_by(|x, y| x.partial_cmp(y).unwrap());
    rep.note(format!(
        "cluster: {n} daemons ({}), {} rows in {}-row transactions written on all peers at once in {write_secs:.2} s \
         (plus an update of a shared row every 10th transaction); every peer had all rows {converged:.2} s after the last commit \
         (first peer {:.2} s, median {:.2} s){}",
        args.topology,
        per_peer * n as u64,
        batch,
        lag[0],
        lag[lag.len() / 2],
        if identical { "; all tables identical" } else { "; WARNING: tables differ" }
    ));
    // The status files are rewritten every second: let the counters catch up.
    std::thread::sleep(Duration::from_millis(1100));
    let (mut published, mut gossip, mut pages) = (0, 0, 0);
    for d in &ds {
        let c = d.counters();
        published += c.get("published").copied().unwrap_or(0);
        gossip += c.get("gossip_applied").copied().unwrap_or(0);
        pages += c.get("catchup_pages_applied").copied().unwrap_or(0);
    }
    rep.note(format!(
        "cluster counters (all peers): changesets published {published}, gossip changesets applied {gossip}, catch-up pages applied {pages}"
    ));
    if let (Some(x), Some(y)) = (bytes0, bytes1) {
        let changes = (per_peer * n as u64 * 2) as f64; // id + v per row (n only in updates)
        let per = (y - x) as f64 / changes / (n - 1) as f64;
        rep.row(
            format!("bytes on the wire per change per receiving peer, {n}-peer cluster"),
            "—",
            format!("{per:.1} B"),
            None,
        );
        rep.note(format!(
            "cluster bytes: {} bytes of TCP payload sent by all daemons for {changes:.0} changes reaching {} peers each",
            y - x,
            n - 1
        ));
    }
    if run("idle") {
        let refs: Vec<&Daemon> = ds.iter().collect();
        idle(args, rep, &format!("{n} peers"), &refs);
    }
}

fn main() {
    on_failure(die);
    let args = parse_args();
    if !args.daemon.exists() {
        die(&format!("{} not found (run `make daemon`, or pass --daemon)", args.daemon.display()));
    }
    let root = std::env::temp_dir().join(format!("wavesyncd-bench-{}", std::process::id()));
    std::fs::create_dir_all(&root).expect("temp dir");
    log(format!("working in {}", root.display()));
    let only = args.only.clone();
    let run = move |phase: &str| only.as_ref().is_none_or(|o| o.iter().any(|p| p == phase));
    let mut rep = Report::default();
    let began = Instant::now();

    if run("latency") || run("throughput") || (run("idle") && !run("cluster")) {
        pair(&args, &root, &mut rep, &run);
    }
    if run("catchup") {
        catchup(&args, &root, &mut rep);
    }
    if run("cluster") {
        cluster(&args, &root, &mut rep, &run);
    }

    let host = cpu_model();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<u64>().ok()))
        .map(|kb| format!("{:.0} GiB RAM", kb as f64 / 1024.0 / 1024.0))
        .unwrap_or_default();
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let mut out = format!(
        "\n### {date} — {}{}\n\nMachine: {} cores, {host}, {mem}; everything on 127.0.0.1 (daemons, writers and pollers \
         share the cores). `wavesyncd-bench{}` ({:.0} s).\n\n| measure | target | measured | |\n|---|---|---|---|\n",
        if args.quick { "quick run" } else { "full run" },
        if args.changes != 1_000_000 && run("catchup") { format!(", catch-up scaled to {} changes", args.changes) } else { String::new() },
        std::thread::available_parallelism().map(|p| p.get()).unwrap_or(0),
        std::env::args().skip(1).filter(|a| !a.starts_with("--append") && !a.ends_with(".md")).fold(String::new(), |s, a| s + " " + &a),
        began.elapsed().as_secs_f64()
    );
    for r in &rep.rows {
        out.push_str(&format!("| {} | {} | {} | {} |\n", r[0], r[1], r[2], r[3]));
    }
    out.push('\n');
    for n in &rep.notes {
        out.push_str(&format!("- {n}\n"));
    }
    print!("{out}");
    if let Some(path) = &args.append {
        append_daemon_section(path, &out);
        log(format!("appended to {}", path.display()));
    }
    if args.keep {
        log(format!("kept {}", root.display()));
    } else {
        let _ = std::fs::remove_dir_all(&root);
    }
}

/// Adds `entry` at the end of the "## Daemon" section of `path` (created at the end of the
/// file if missing), so entries of other benchmarks and of this one stay apart.
fn append_daemon_section(path: &Path, entry: &str) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let heading = "\n## Daemon\n";
    let new = match text.find(heading) {
        Some(at) => {
            let body = at + heading.len();
            let end = text[body..].find("\n## ").map(|i| body + i + 1).unwrap_or(text.len());
            let (before, after) = text.split_at(end);
            format!("{}{}\n{}", before.trim_end_matches('\n'), ensure_nl(entry), after)
        }
        None => format!(
            "{}\n\n## Daemon\n\n`make bench-daemon` runs `wavesyncd-bench` (bench/src/bin/wavesyncd-bench.rs): real \
             `wavesyncd` processes on 127.0.0.1 (`--no-mdns`, explicit `--peer`s), written to through rusqlite connections \
             with the extension loaded, against the daemon targets of issue 5. `make bench-daemon BENCH_DAEMON_ARGS=--quick` \
             is a run of under a minute.\n{}",
            text.trim_end_matches('\n'),
            ensure_nl(entry)
        ),
    };
    std::fs::write(path, new).expect("write the benchmark file");
}

fn ensure_nl(s: &str) -> String {
    if s.ends_with('\n') {
        s.to_string()
    } else {
        format!("{s}\n")
    }
}
