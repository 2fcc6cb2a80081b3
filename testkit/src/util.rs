//! Waiting, seeded randomness, skipped and long runs, and giving up.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

static FAILURE: OnceLock<fn(&str) -> !> = OnceLock::new();

/// Makes every helper of the kit that gives up (a timeout, a daemon that does not start or
/// exits, an extension that does not load) call `f` instead of panicking: a benchmark
/// prints one line and exits. The first call wins.
pub fn on_failure(f: fn(&str) -> !) {
    let _ = FAILURE.set(f);
}

/// Gives up with `msg`: panics (a test fails), or calls the function set by [`on_failure`].
pub fn fail(msg: &str) -> ! {
    if let Some(f) = FAILURE.get() {
        f(msg)
    }
    panic!("{msg}")
}

/// Polls `ok` every 50 ms until it holds; gives up after `timeout`. Returns the time it took.
pub fn wait_until(what: &str, timeout: Duration, ok: impl FnMut() -> bool) -> Duration {
    wait_every(what, timeout, Duration::from_millis(50), ok)
}

/// [`wait_until`], polling every `poll`.
pub fn wait_every(what: &str, timeout: Duration, poll: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !ok() {
        if start.elapsed() > timeout {
            fail(&format!("timed out after {timeout:?} waiting until {what}"));
        }
        std::thread::sleep(poll);
    }
    start.elapsed()
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

    // Not an iterator: it never ends, and the tests call `rng.next()` for a plain u64.
    #[allow(clippy::should_implement_trait)]
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

/// The processor's model name (from /proc/cpuinfo), for benchmark reports; empty if unknown.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default()
}
