//! Real `wavesyncd run` processes on 127.0.0.1: a group of peers (a directory and its
//! group key), daemons started in it, what their status files and /proc say.

use crate::ext::ext_path;
use crate::util::{fail, wait_until};
use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

/// Generous: the suite runs on small CI machines; nothing asserts on timing.
pub const CONVERGE: Duration = Duration::from_secs(60);

/// The `wavesyncd` binary of the running integration test, usable wherever a program path
/// goes (`Command::new(BIN)`): `$CARGO_BIN_EXE_wavesyncd` (cargo sets it when it runs
/// wavesyncd's tests), else `wavesyncd` in the target directory the test binary was built
/// in (`target/<profile>/deps/<test>` → `target/<profile>/wavesyncd`, the same file; cargo
/// builds it before wavesyncd's integration tests).
pub const BIN: DaemonBin = DaemonBin;

/// See [`BIN`].
#[derive(Clone, Copy, Debug)]
pub struct DaemonBin;

impl DaemonBin {
    pub fn path(&self) -> &'static Path {
        static PATH: OnceLock<PathBuf> = OnceLock::new();
        PATH.get_or_init(|| {
            if let Some(p) = std::env::var_os("CARGO_BIN_EXE_wavesyncd") {
                return PathBuf::from(p);
            }
            let exe = std::env::current_exe().expect("path of the test binary");
            let mut dir = exe.parent().expect("directory of the test binary");
            if dir.ends_with("deps") {
                dir = dir.parent().expect("target directory");
            }
            dir.join("wavesyncd")
        })
    }
}

impl AsRef<OsStr> for DaemonBin {
    fn as_ref(&self) -> &OsStr {
        self.path().as_os_str()
    }
}

impl AsRef<Path> for DaemonBin {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}

/// How daemons are started. A test's daemons ([`Launch::test`]) log at debug level into a
/// log file that survives restarts and is printed if the test fails; a benchmark's
/// ([`Launch::bench`]) run a given binary, log less, and die with the benchmark.
#[derive(Clone, Debug)]
pub struct Launch {
    pub bin: PathBuf,
    /// The daemons' `RUST_LOG`.
    pub rust_log: String,
    /// Take the listen address from the daemon's stdout (`listening on <addr>`, stdin
    /// closed) rather than from its status file (a stale one removed first).
    pub listen_from_stdout: bool,
    /// The daemon gets SIGKILL when the thread that started it ends (PR_SET_PDEATHSIG), so a
    /// killed benchmark leaves no daemons behind.
    pub die_with_parent: bool,
    /// Each start truncates the log file (else it appends).
    pub fresh_log: bool,
    /// Print the last 60 log lines when the daemon is dropped during a panic, or always
    /// with `WAVESYNC_TEST_LOGS` set.
    pub show_log: bool,
    /// Leave mDNS on (else `--no-mdns` is added: tests on one host must not find each other).
    pub mdns: bool,
}

impl Launch {
    pub fn test() -> Launch {
        Launch {
            bin: BIN.path().to_path_buf(),
            rust_log: "info,wavesyncd=debug,libp2p_gossipsub=warn".into(),
            listen_from_stdout: false,
            die_with_parent: false,
            fresh_log: false,
            show_log: true,
            mdns: false,
        }
    }

    /// `bin`, at the level of `$WAVESYNCD_LOG` (e.g. wavesyncd=debug) or info.
    pub fn bench(bin: &Path) -> Launch {
        Launch {
            bin: bin.to_path_buf(),
            rust_log: std::env::var("WAVESYNCD_LOG")
                .unwrap_or_else(|_| "info,libp2p_gossipsub=warn,libp2p_mdns=warn".into()),
            listen_from_stdout: true,
            die_with_parent: true,
            fresh_log: true,
            show_log: false,
            mdns: false,
        }
    }
}

impl Default for Launch {
    fn default() -> Launch {
        Launch::test()
    }
}

/// Picks a free TCP port on 127.0.0.1 (for daemons that must keep their address across
/// restarts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A directory of databases and its group key; daemons started from it.
pub struct Group {
    pub dir: tempfile::TempDir,
    pub key: PathBuf,
    launch: Launch,
}

impl Group {
    /// A test's group: a temporary directory (removed when dropped), test daemons.
    pub fn new() -> Group {
        Group::with(tempfile::tempdir().expect("temp dir"), Launch::test())
    }

    /// The directory `<root>/<name>` (created; kept when the group is dropped), daemons
    /// started per `launch`.
    pub fn in_dir(root: &Path, name: &str, launch: Launch) -> Group {
        let dir = tempfile::Builder::new()
            .prefix(name)
            .rand_bytes(0)
            .disable_cleanup(true)
            .tempdir_in(root)
            .expect("create group dir");
        Group::with(dir, launch)
    }

    fn with(dir: tempfile::TempDir, launch: Launch) -> Group {
        let key = dir.path().join("group.key");
        keygen_with(&launch.bin, &key);
        Group { dir, key, launch }
    }

    pub fn db(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.db"))
    }

    /// Starts a daemon for `<name>.db` that dials `peers`; returns once it listens.
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
        Daemon::spawn_with(name, db, self.dir.path(), args, Vec::new(), self.launch.clone())
    }
}

impl Default for Group {
    fn default() -> Group {
        Group::new()
    }
}

/// `wavesyncd keygen --out <out>` ([`BIN`]).
pub fn keygen(out: &Path) {
    keygen_with(BIN.path(), out)
}

pub fn keygen_with(bin: &Path, out: &Path) {
    let st = Command::new(bin).args(["keygen", "--out"]).arg(out).status().expect("run wavesyncd keygen");
    assert!(st.success(), "wavesyncd keygen failed");
}

/// A running `wavesyncd run`; killed when dropped (see [`Launch`] for its log).
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
    launch: Launch,
    spawned: Instant,
}

impl Daemon {
    /// Runs the test binary with `args` (`--listen` on 127.0.0.1, `--no-mdns` and `--ext`
    /// added unless given); returns once it listens.
    pub fn spawn(name: &str, db: PathBuf, dir: &Path, args: Vec<String>) -> Daemon {
        Daemon::spawn_with(name, db, dir, args, Vec::new(), Launch::test())
    }

    /// Like `spawn`, run under `wrapper` (e.g. `["ip", "netns", "exec", "ns1"]`).
    pub fn spawn_wrapped(name: &str, db: PathBuf, dir: &Path, args: Vec<String>, wrapper: Vec<String>) -> Daemon {
        Daemon::spawn_with(name, db, dir, args, wrapper, Launch::test())
    }

    /// Like `spawn_wrapped`, started per `launch`.
    pub fn spawn_with(
        name: &str,
        db: PathBuf,
        dir: &Path,
        mut args: Vec<String>,
        wrapper: Vec<String>,
        launch: Launch,
    ) -> Daemon {
        if !args.iter().any(|a| a == "--listen") {
            args.extend(["--listen".into(), "/ip4/127.0.0.1/tcp/0".into()]);
        }
        if !launch.mdns && !args.iter().any(|a| a == "--no-mdns") {
            args.push("--no-mdns".into());
        }
        if !args.iter().any(|a| a == "--ext") {
            args.extend(["--ext".into(), ext_path().display().to_string()]);
        }
        let mut d = Daemon {
            name: name.into(),
            db,
            child: None,
            log: dir.join(format!("{name}.log")),
            args,
            dir: dir.to_path_buf(),
            addr: String::new(),
            wrapper,
            launch,
            spawned: Instant::now(),
        };
        d.launch();
        d
    }

    fn launch(&mut self) {
        let bin = &self.launch.bin;
        let log = if self.launch.fresh_log {
            std::fs::File::create(&self.log)
        } else {
            std::fs::OpenOptions::new().create(true).append(true).open(&self.log)
        }
        .expect("log file");
        let mut cmd = match self.wrapper.split_first() {
            Some((w, rest)) => {
                let mut c = Command::new(w);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.args(&self.args).env("RUST_LOG", &self.launch.rust_log).stderr(log);
        if self.launch.listen_from_stdout {
            cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        } else {
            let _ = std::fs::remove_file(self.status_path());
            cmd.stdout(Stdio::null());
        }
        if self.launch.die_with_parent {
            // SAFETY: prctl is async-signal-safe; the daemon dies with the thread that
            // spawned it (a benchmark's main thread).
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
        self.spawned = Instant::now();
        let child =
            cmd.spawn().unwrap_or_else(|e| fail(&format!("cannot run {}: {e} (run `make daemon`)", bin.display())));
        self.child = Some(child);
        self.addr = if self.launch.listen_from_stdout { self.addr_from_stdout() } else { self.addr_from_status() };
    }

    /// The daemon prints `listening on <addr>/p2p/<id>` for every listen address; stdout is
    /// drained to its end so that a later line never meets a closed pipe.
    fn addr_from_stdout(&mut self) -> String {
        let child = self.child.as_mut().expect("child");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(a) = line.strip_prefix("listening on ") {
                    let _ = tx.send(a.to_string());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                self.kill9();
                fail(&format!("{} did not start listening:\n{}", self.name, self.log()));
            }
        }
    }

    fn addr_from_status(&mut self) -> String {
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
                    fail(&format!(
                        "{} exited early with {code}:\n{}",
                        self.name,
                        std::fs::read_to_string(&self.log).unwrap_or_default()
                    ));
                }
            }
            false
        });
        addr
    }

    /// The listen address with /p2p/<peer id>.
    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    /// When the running process was spawned.
    pub fn spawned(&self) -> Instant {
        self.spawned
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

    /// Every counter of the status file (none without one).
    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.try_status()
            .and_then(|s| {
                s["counters"].as_object().map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect())
            })
            .unwrap_or_default()
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

    /// Gives up ([`fail`]) with the end of the log if the daemon is no longer running.
    pub fn check_alive(&mut self) {
        if !self.running() {
            fail(&format!("{} exited unexpectedly:\n{}", self.name, tail(&self.log, 40)));
        }
    }

    /// A numeric field of /proc/<pid>/status (`VmRSS:`, `VmHWM:`, in KiB).
    pub fn proc_status(&self, field: &str) -> Option<u64> {
        let st = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        st.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
    }

    /// Resident set size of the daemon, in KiB (from /proc).
    pub fn rss_kib(&self) -> Option<u64> {
        self.proc_status("VmRSS:")
    }

    /// CPU time used (utime + stime), in seconds (from /proc).
    pub fn cpu_secs(&self) -> Option<f64> {
        let st = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()?)).ok()?;
        let rest = &st[st.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // Fields after the comm: state is field 3, utime field 14, stime field 15.
        let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        Some(ticks as f64 / clock_ticks())
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
        if self.launch.show_log && (std::thread::panicking() || std::env::var_os("WAVESYNC_TEST_LOGS").is_some()) {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("---- log of {} (last 60 lines) ----", self.name);
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// The last `n` lines of the file `path`.
fn tail(path: &Path, n: usize) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}
