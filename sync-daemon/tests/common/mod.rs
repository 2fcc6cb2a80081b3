//! Helpers for tests that run real `wavesyncd` processes on 127.0.0.1.
#![allow(dead_code)]

use rusqlite::{Connection, LoadExtensionGuard};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_wavesyncd");

/// Generous: the suite runs on small CI machines; nothing asserts on timing.
pub const CONVERGE: Duration = Duration::from_secs(60);

/// The built extension: `$WAVESYNC_EXT`, or `<repo>/dist/wavesync` (`make ext`).
pub fn ext_path() -> PathBuf {
    match std::env::var_os("WAVESYNC_EXT") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dist/wavesync"),
    }
}

/// An app connection: the extension loaded, WAL, and a busy timeout — what an app that
/// shares its database with the daemon must set.
pub fn app(db: &Path) -> Connection {
    let conn = Connection::open(db).expect("open database");
    unsafe {
        let _g = LoadExtensionGuard::new(&conn).expect("enable extension loading");
        conn.load_extension(ext_path(), Some("sqlite3_wavesync_init"))
            .unwrap_or_else(|e| panic!("load {}: {e} (run `make ext` first)", ext_path().display()));
    }
    conn.busy_timeout(Duration::from_secs(5)).expect("busy timeout");
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(())).expect("WAL");
    conn
}

pub fn create_items(db: &Path) {
    let c = app(db);
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS items(id INTEGER PRIMARY KEY NOT NULL, v TEXT, n INTEGER DEFAULT 0);
         SELECT wavesync_as_crr('items');",
    )
    .expect("create items");
}

pub type Item = (i64, Option<String>, i64);

pub fn items(c: &Connection) -> Vec<Item> {
    let mut s = c.prepare("SELECT id, v, n FROM items ORDER BY id").expect("prepare");
    let rows = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).expect("query");
    rows.collect::<Result<_, _>>().expect("rows")
}

pub fn count(c: &Connection) -> i64 {
    c.query_row("SELECT count(*) FROM items", [], |r| r.get(0)).expect("count")
}

/// Every change, without the local db_version (which differs between replicas).
pub fn changes(c: &Connection) -> Vec<Vec<rusqlite::types::Value>> {
    let mut s = c
        .prepare(
            "SELECT \"table\", pk, cid, val, col_version, site_id, cl, seq, origin_version FROM wavesync_changes \
             ORDER BY \"table\", pk, cid",
        )
        .expect("prepare");
    let rows = s.query_map([], |r| (0..9).map(|i| r.get(i)).collect()).expect("query");
    rows.collect::<Result<_, _>>().expect("rows")
}

/// `PRAGMA integrity_check` of a database file ("ok" when sound).
pub fn integrity(db: &Path) -> String {
    let c = Connection::open(db).expect("open database");
    c.busy_timeout(Duration::from_secs(10)).expect("busy timeout");
    let mut s = c.prepare("PRAGMA integrity_check").expect("prepare");
    let rows = s.query_map([], |r| r.get::<_, String>(0)).expect("integrity_check");
    rows.collect::<Result<Vec<_>, _>>().expect("rows").join("; ")
}

/// Picks a free TCP port on 127.0.0.1 (for daemons that must keep their address across
/// restarts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A small xorshift generator: tests print their seed and take `WAVESYNC_SEED` to replay.
pub struct Rng(pub u64);

impl Rng {
    pub fn from_env(test: &str) -> Rng {
        let seed = std::env::var("WAVESYNC_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
                | 1
        });
        eprintln!("{test}: seed {seed} (replay with WAVESYNC_SEED={seed})");
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }
}

/// `WAVESYNC_LONG=1` runs the long versions of the reliability tests.
pub fn long_run() -> bool {
    std::env::var("WAVESYNC_LONG").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Reports that test `name` could not run here and why. The line goes to stderr and, for
/// `sql-tests/test-all.sh` (which counts such a test as skipped, not passed), to the file
/// `$WAVESYNC_SKIPPED` names.
pub fn skip(name: &str, reason: &str) {
    eprintln!("SKIPPED {name}: {reason}");
    if let Some(path) = std::env::var_os("WAVESYNC_SKIPPED") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{name}: {reason}");
        }
    }
}

pub fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting until {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A test's temporary directory and its group key.
pub struct Group {
    pub dir: tempfile::TempDir,
    pub key: PathBuf,
}

impl Group {
    pub fn new() -> Group {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = dir.path().join("group.key");
        keygen(&key);
        Group { dir, key }
    }

    pub fn db(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.db"))
    }

    /// Starts a daemon for `<name>.db` that dials `peers`.
    pub fn start(&self, name: &str, peers: &[&Daemon], extra: &[&str]) -> Daemon {
        self.start_with_key(name, &self.key, peers, extra)
    }

    pub fn start_with_key(&self, name: &str, key: &Path, peers: &[&Daemon], extra: &[&str]) -> Daemon {
        let db = self.db(name);
        let mut args: Vec<String> =
            vec!["run".into(), "--db".into(), db.display().to_string(), "--key-file".into(), key.display().to_string()];
        for p in peers {
            args.push("--peer".into());
            args.push(p.addr());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        Daemon::spawn(name, db, self.dir.path(), args)
    }
}

pub fn keygen(out: &Path) {
    let st = Command::new(BIN).args(["keygen", "--out"]).arg(out).status().expect("run keygen");
    assert!(st.success(), "keygen failed");
}

/// A running `wavesyncd run`; killed when dropped, its log printed if the test failed.
pub struct Daemon {
    pub name: String,
    pub db: PathBuf,
    child: Option<Child>,
    log: PathBuf,
    args: Vec<String>,
    dir: PathBuf,
    addr: String,
    /// A command the daemon runs under, e.g. `ip netns exec NS` (it must exec the daemon,
    /// so that the child's pid is the daemon's).
    wrapper: Vec<String>,
}

impl Daemon {
    pub fn spawn(name: &str, db: PathBuf, dir: &Path, mut args: Vec<String>) -> Daemon {
        if !args.iter().any(|a| a == "--listen") {
            args.extend(["--listen".into(), "/ip4/127.0.0.1/tcp/0".into()]);
        }
        if !args.iter().any(|a| a == "--no-mdns") {
            args.push("--no-mdns".into());
        }
        if !args.iter().any(|a| a == "--ext") {
            args.extend(["--ext".into(), ext_path().display().to_string()]);
        }
        let log = dir.join(format!("{name}.log"));
        let mut d = Daemon {
            name: name.into(),
            db,
            child: None,
            log,
            args,
            dir: dir.to_path_buf(),
            addr: String::new(),
            wrapper: Vec::new(),
        };
        d.launch();
        d
    }

    /// Like `spawn`, run under `wrapper` (e.g. `["ip", "netns", "exec", "ns1"]`).
    pub fn spawn_wrapped(name: &str, db: PathBuf, dir: &Path, args: Vec<String>, wrapper: Vec<String>) -> Daemon {
        let mut d = Daemon {
            name: name.into(),
            db,
            child: None,
            log: dir.join(format!("{name}.log")),
            args,
            dir: dir.to_path_buf(),
            addr: String::new(),
            wrapper,
        };
        if !d.args.iter().any(|a| a == "--listen") {
            d.args.extend(["--listen".into(), "/ip4/127.0.0.1/tcp/0".into()]);
        }
        if !d.args.iter().any(|a| a == "--no-mdns") {
            d.args.push("--no-mdns".into());
        }
        if !d.args.iter().any(|a| a == "--ext") {
            d.args.extend(["--ext".into(), ext_path().display().to_string()]);
        }
        d.launch();
        d
    }

    fn launch(&mut self) {
        let _ = std::fs::remove_file(self.status_path());
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
        let mut cmd = match self.wrapper.split_first() {
            Some((w, rest)) => {
                let mut c = Command::new(w);
                c.args(rest).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        let child = cmd
            .args(&self.args)
            .env("RUST_LOG", "info,wavesyncd=debug,libp2p_gossipsub=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn wavesyncd");
        self.child = Some(child);
        let mut addr = String::new();
        wait_until(&format!("{} listens", self.name), Duration::from_secs(30), || {
            if let Some(st) = self.try_status() {
                if let Some(a) = st["listen"].as_array().and_then(|l| l.first()).and_then(|a| a.as_str()) {
                    addr = a.to_string();
                    return true;
                }
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(code)) = c.try_wait() {
                    panic!(
                        "{} exited early with {code}:\n{}",
                        self.name,
                        std::fs::read_to_string(&self.log).unwrap_or_default()
                    );
                }
            }
            false
        });
        self.addr = addr;
    }

    /// The listen address with /p2p/<peer id>.
    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    pub fn status_path(&self) -> PathBuf {
        PathBuf::from(format!("{}.wavesyncd-status.json", self.db.display()))
    }

    pub fn try_status(&self) -> Option<Value> {
        let bytes = std::fs::read(self.status_path()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn status(&self) -> Value {
        self.try_status().expect("status file")
    }

    pub fn counter(&self, name: &str) -> u64 {
        self.status()["counters"][name].as_u64().unwrap_or(0)
    }

    pub fn peer_id(&self) -> String {
        self.status()["peer_id"].as_str().unwrap_or_default().to_string()
    }

    /// The daemon's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether the process is still running (false once it exited or was killed).
    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Resident set size of the daemon, in KiB (from /proc).
    pub fn rss_kib(&self) -> Option<u64> {
        let st = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        st.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
    }

    /// Sends a signal (`STOP`, `CONT`, ...) to the daemon.
    pub fn signal(&self, sig: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status();
        }
    }

    /// SIGKILL, like a crash.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.launch();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
        // WAVESYNC_TEST_LOGS=1 shows the logs of passing tests too (with --nocapture).
        if std::thread::panicking() || std::env::var_os("WAVESYNC_TEST_LOGS").is_some() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("---- log of {} (last 60 lines) ----", self.name);
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// An app writing small transactions until `stop`; returns the ids of committed rows.
pub fn writer(db: PathBuf, base: i64, stop: Arc<AtomicBool>, seed: u64) -> std::thread::JoinHandle<BTreeSet<i64>> {
    std::thread::spawn(move || {
        let conn = app(&db);
        let mut rng = Rng(seed | 1);
        let mut committed = BTreeSet::new();
        let mut next = base;
        let mut failed = 0;
        while !stop.load(Ordering::Relaxed) {
            let n = rng.range(1, 6) as i64;
            let ids: Vec<i64> = (next..next + n).collect();
            next += n;
            let r = (|| -> rusqlite::Result<()> {
                let tx = conn.unchecked_transaction()?;
                for &id in &ids {
                    tx.execute("INSERT INTO items(id, v) VALUES (?1, ?2)", rusqlite::params![id, format!("w{id}")])?;
                }
                if let Some(&old) = committed.iter().nth_back(rng.range(0, 20) as usize) {
                    tx.execute("UPDATE items SET n = n + 1 WHERE id = ?1", [old])?;
                }
                tx.commit()
            })();
            match r {
                Ok(()) => committed.extend(ids),
                Err(e) => {
                    failed += 1;
                    eprintln!("app write failed (not counted as committed): {e}");
                }
            }
            std::thread::sleep(Duration::from_millis(rng.range(2, 15)));
        }
        assert!(failed < 5, "{failed} app writes failed");
        committed
    })
}

pub fn converged(dbs: &[PathBuf], committed: &BTreeSet<i64>) -> bool {
    let conns: Vec<_> = dbs.iter().map(|d| app(d)).collect();
    let first = items(&conns[0]);
    if first.len() < committed.len() || conns[1..].iter().any(|c| items(c) != first) {
        return false;
    }
    let ch = changes(&conns[0]);
    conns[1..].iter().all(|c| changes(c) == ch)
}

pub fn check_all_present(dbs: &[PathBuf], committed: &BTreeSet<i64>) {
    for db in dbs {
        let have: BTreeSet<i64> = items(&app(db)).into_iter().map(|r| r.0).collect();
        let lost: Vec<_> = committed.difference(&have).take(10).collect();
        assert!(lost.is_empty(), "{}: committed rows lost, e.g. {lost:?}", db.display());
        assert_eq!(integrity(db), "ok", "{}", db.display());
    }
}
