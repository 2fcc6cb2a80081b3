//! Helpers for tests that run real `wavesyncd` processes on 127.0.0.1.
#![allow(dead_code)]

use rusqlite::{Connection, LoadExtensionGuard};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
        let mut args: Vec<String> = vec![
            "run".into(),
            "--db".into(),
            db.display().to_string(),
            "--key-file".into(),
            key.display().to_string(),
        ];
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
        let mut d = Daemon { name: name.into(), db, child: None, log, args, dir: dir.to_path_buf(), addr: String::new() };
        d.launch();
        d
    }

    fn launch(&mut self) {
        let _ = std::fs::remove_file(self.status_path());
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
        let child = Command::new(BIN)
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
                    panic!("{} exited early with {code}:\n{}", self.name, std::fs::read_to_string(&self.log).unwrap_or_default());
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
