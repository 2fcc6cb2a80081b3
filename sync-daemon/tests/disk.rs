//! Disk and database faults (docs/RELIABILITY.md): a database locked by the app, a full
//! disk (a small tmpfs made by the test) and a read-only database. The daemon reports the
//! fault, retries, and loses nothing: once the fault is gone the replicas converge.
//!
//! The tmpfs tests need mount privileges; without them they say so and skip (they do not
//! fail; `common::skip` has sql-tests/test-all.sh count them as skipped, not passed). A database that becomes read-only *while the daemon has it open* cannot be made
//! here: Linux refuses to remount a filesystem read-only while a file on it is open for
//! writing (EBUSY), so the read-only case is a daemon started on a read-only filesystem.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use wavesync_testkit::*;

/// A tmpfs mounted by the test; unmounted on drop (also on failure).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(at).output();
        match out {
            Ok(o) if o.status.success() => Ok(Tmpfs(at.to_path_buf())),
            Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
            Err(e) => Err(format!("cannot run mount: {e}")),
        }
    }

    fn remount(&self, opts: &str) {
        let st = Command::new("mount").args(["-o", &format!("remount,{opts}")]).arg(&self.0).status().expect("mount");
        assert!(st.success(), "remount {opts} failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn same(a: &Path, b: &Path, n: usize) -> bool {
    let (x, y) = (items(&app(a)), items(&app(b)));
    x.len() == n && x == y && changes(&app(a)) == changes(&app(b))
}

fn write_rows(db: &Path, from: i64, txs: i64, per_tx: i64, val_len: usize) {
    let c = app(db);
    for t in 0..txs {
        let tx = c.unchecked_transaction().expect("tx");
        for i in 0..per_tx {
            tx.execute(
                "INSERT INTO items(id, v) VALUES (?1, ?2)",
                rusqlite::params![from + t * per_tx + i, "x".repeat(val_len)],
            )
            .expect("insert");
        }
        tx.commit().expect("commit");
    }
}

#[test]
fn a_database_locked_by_the_app_is_retried_and_nothing_is_lost() {
    let g = Group::new();
    create_items(&g.db("a"));
    create_items(&g.db("b"));
    let a = g.start("a", &[], &[]);
    let b = g.start("b", &[&a], &["--anti-entropy", "2"]);
    wait_until("a and b are connected", CONVERGE, || b.status()["peers"].as_array().is_some_and(|p| !p.is_empty()));
    // The app on b holds the write lock for 12 s: longer than the daemon's busy timeout (5 s).
    let holder = app(&g.db("b"));
    holder.execute_batch("BEGIN EXCLUSIVE; INSERT INTO items(id, v) VALUES (500, 'held');").expect("lock");
    write_rows(&g.db("a"), 0, 10, 5, 10);
    wait_until("b reports the busy database", CONVERGE, || b.log().contains("database busy, retrying"));
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(count(&app(&g.db("b"))), 0, "b wrote through the app's lock");
    holder.execute_batch("COMMIT").expect("release");
    wait_until("b applies everything after the lock is released", CONVERGE, || same(&g.db("a"), &g.db("b"), 51));
    eprintln!("locked: b retried while the app held the lock ~12 s; 51 rows on both, nothing lost");
    drop((a, b));
}

#[test]
fn a_full_disk_is_reported_and_recovered_from() {
    let g = Group::new();
    let mnt = match Tmpfs::mount(&g.dir.path().join("small"), "1536k") {
        Ok(m) => m,
        Err(e) => {
            skip(
                "a_full_disk_is_reported_and_recovered_from",
                &format!("cannot mount a small tmpfs to fill ({e}); needs CAP_SYS_ADMIN"),
            );
            return;
        }
    };
    let db_b = mnt.0.join("b.db");
    create_items(&g.db("a"));
    create_items(&db_b);
    let a = g.start("a", &[], &[]);
    let b = Daemon::spawn(
        "b",
        db_b.clone(),
        g.dir.path(),
        vec![
            "run".into(),
            "--db".into(),
            db_b.display().to_string(),
            "--key-file".into(),
            g.key.display().to_string(),
            "--peer".into(),
            a.addr(),
            "--anti-entropy".into(),
            "2".into(),
        ],
    );
    wait_until("a and b are connected", CONVERGE, || {
        b.try_status().is_some_and(|s| s["peers"].as_array().is_some_and(|p| !p.is_empty()))
    });
    // ~3 MB of rows for a 1.5 MB filesystem.
    write_rows(&g.db("a"), 0, 30, 100, 1000);
    wait_until("b reports the full disk", CONVERGE, || b.log().contains("full"));
    let mut b = b;
    assert!(b.running(), "b died on a full disk");
    assert!(count(&app(&db_b)) < 3000);
    mnt.remount("size=256m");
    wait_until("b catches up once there is room", CONVERGE, || same(&g.db("a"), &db_b, 3000));
    assert!(b.running());
    assert_eq!(integrity(&db_b), "ok");
    let fails = b.log().matches("cannot apply").count();
    eprintln!("disk full: b reported {fails} failed applies on a 1.5 MB tmpfs, kept running, and converged (3000 rows) after it grew");
    drop((a, b));
}

#[test]
fn a_read_only_database_is_reported_and_synced_once_writable() {
    let g = Group::new();
    let mnt = match Tmpfs::mount(&g.dir.path().join("ro"), "64m") {
        Ok(m) => m,
        Err(e) => {
            skip(
                "a_read_only_database_is_reported_and_synced_once_writable",
                &format!("cannot mount a tmpfs to make read-only ({e}); needs CAP_SYS_ADMIN"),
            );
            return;
        }
    };
    let db_b = mnt.0.join("b.db");
    create_items(&g.db("a"));
    create_items(&db_b);
    write_rows(&db_b, 1000, 1, 10, 10); // b has its own rows, written before the fault
    let a = g.start("a", &[], &[]);
    // b ran before (its identity file exists), then its filesystem became read-only.
    let b_args = vec![
        "run".into(),
        "--db".into(),
        db_b.display().to_string(),
        "--key-file".into(),
        g.key.display().to_string(),
        "--peer".into(),
        a.addr(),
    ];
    let mut b = Daemon::spawn("b", db_b.clone(), g.dir.path(), b_args.clone());
    wait_until("b has b's rows", CONVERGE, || count(&app(&g.db("a"))) == 10);
    b.stop();
    write_rows(&g.db("a"), 0, 5, 10, 10);
    mnt.remount("ro");
    let out = Command::new(BIN)
        .args(["run", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--db"])
        .arg(&db_b)
        .arg("--key-file")
        .arg(&g.key)
        .args(["--peer", &a.addr(), "--ext"])
        .arg(ext_path())
        .output()
        .expect("run wavesyncd");
    let err = String::from_utf8_lossy(&out.stderr);
    // A clean, reported failure (exit status 1 and a message), not a crash by a signal.
    assert_eq!(
        out.status.code(),
        Some(1),
        "the daemon did not fail cleanly on a read-only database: {:?} {err}",
        out.status
    );
    assert!(
        err.contains("wavesyncd: ") && err.contains("is read-only"),
        "no clear error message on a read-only database: {err}"
    );
    eprintln!("read-only: the daemon refused to start: {}", err.lines().last().unwrap_or_default());
    mnt.remount("rw");
    b.restart();
    wait_until("b and a converge once b is writable", CONVERGE, || same(&g.db("a"), &db_b, 60));
    assert_eq!(integrity(&db_b), "ok");
    drop((a, b));
}
