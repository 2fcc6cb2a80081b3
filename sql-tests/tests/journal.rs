//! The journal's fold from outside: killed at any moment (kill -9 of the sqlite3 CLI folding
//! it), it leaves the database as it was before the fold or as it is after it, never
//! between, and the changes read afterwards are exactly those of a fold never interrupted;
//! done by a read while another connection commits all the time, it waits for the write
//! lock instead of failing.

use rusqlite::Connection;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wavesync_sql_tests::{all_changes, ext_path, open};
use wavesync_testkit::{app, skip};

const ROWS: i64 = 200_000;

fn count(c: &Connection, sql: &str) -> i64 {
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Copies a database file and its WAL.
fn copy_db(from: &Path, to: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let (f, t) = (format!("{}{suffix}", from.display()), format!("{}{suffix}", to.display()));
        let _ = std::fs::remove_file(&t);
        if Path::new(&f).exists() {
            std::fs::copy(&f, &t).unwrap();
        }
    }
}

fn wal_len(db: &Path) -> u64 {
    std::fs::metadata(format!("{}-wal", db.display())).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn a_fold_killed_midway_leaves_all_or_nothing() {
    if Command::new("sqlite3").arg("-version").output().is_err() {
        skip("a_fold_killed_midway_leaves_all_or_nothing", "no sqlite3 CLI (make deps installs it)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("wavesync-journal-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base: PathBuf = dir.join("base.db");
    {
        let c = open(base.to_str().unwrap());
        c.execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE t (id INTEGER PRIMARY KEY NOT NULL, a TEXT, b INTEGER);
             SELECT wavesync_as_crr('t');
             WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < {ROWS})
               INSERT INTO t SELECT x, 'row ' || x, x % 7 FROM s;
             UPDATE t SET b = b + 1 WHERE id % 3 = 0;
             DELETE FROM t WHERE id % 5 = 0;
             PRAGMA wal_checkpoint(TRUNCATE);"
        ))
        .unwrap();
    }
    let entries = {
        let c = open(base.to_str().unwrap());
        count(&c, "SELECT count(*) FROM wavesync_journal")
    };
    assert!(entries > ROWS, "the writes wait in the journal");
    let reference = {
        let r = dir.join("reference.db");
        copy_db(&base, &r);
        all_changes(&open(r.to_str().unwrap()))
    };

    let mut killed_while_writing = 0;
    for delay_ms in [20u64, 60, 120, 200, 300, 450, 700] {
        let work = dir.join("work.db");
        copy_db(&base, &work);
        let wal_before = wal_len(&work);
        let mut child = Command::new("sqlite3")
            .arg(&work)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let script = format!(".load {} sqlite3_wavesync_init\nSELECT wavesync_fold();\n", ext_path().display());
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let wrote = wal_len(&work) > wal_before;

        let c = open(work.to_str().unwrap());
        let (journal, clocks) =
            (count(&c, "SELECT count(*) FROM wavesync_journal"), count(&c, "SELECT count(*) FROM t__wavesync_clock"));
        match journal {
            0 => assert_eq!(clocks, ROWS, "folded: every row has its clock"),
            n if n == entries => {
                assert_eq!(clocks, 0, "not folded: no clock row was written");
                killed_while_writing += wrote as u32;
            }
            n => panic!("after a kill at {delay_ms} ms the journal holds {n} of {entries} entries"),
        }
        assert_eq!(all_changes(&c), reference, "changes after a kill at {delay_ms} ms");
        assert_eq!(count(&c, "SELECT count(*) FROM wavesync_journal"), 0);
        let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok");
    }
    // Not every kill may land inside the fold on a slow or fast day, but some must.
    assert!(killed_while_writing > 0, "no kill landed while the fold was writing");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An app reads its own writes (so each read folds them first) while another connection
/// commits without pause. `SELECT wavesync_fold()`, and every function that folds, waits
/// for the write lock: it never fails (before it took the lock first, a commit between its
/// read of the journal and its first write failed it with "database is locked"). A read of
/// wavesync_changes holds its snapshot before it can fold: it may fail, but only with
/// SQLITE_BUSY and a message that says what to do, and never after wavesync_fold().
#[test]
fn folds_wait_for_the_lock_while_another_connection_commits() {
    let dir = std::env::temp_dir().join(format!("wavesync-journal-busy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("busy.db");
    let c = app(&db);
    c.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY NOT NULL, v TEXT);
         CREATE TABLE other (id INTEGER PRIMARY KEY, v INTEGER);
         SELECT wavesync_as_crr('t');",
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, commits, db) = (stop.clone(), commits.clone(), db.clone());
        std::thread::spawn(move || {
            let w = app(&db);
            while !stop.load(Ordering::Relaxed) {
                w.execute("INSERT INTO other (v) VALUES (1)", []).expect("the other writer");
                commits.fetch_add(1, Ordering::Relaxed);
                // A pause, as any writer makes: one that never lets go starves the others.
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    let started = Instant::now();
    let (mut i, mut busy_reads) = (0i64, 0);
    let mut failed = None;
    while failed.is_none() && started.elapsed() < Duration::from_secs(3) {
        i += 1;
        c.execute("INSERT INTO t VALUES (?1, 'x')", [i]).unwrap();
        let changes = "SELECT count(*) FROM wavesync_changes WHERE \"table\" = 't'";
        let read = match i % 3 {
            0 => c.query_row("SELECT wavesync_tombstones()", [], |r| r.get::<_, i64>(0)).map(|_| ()),
            1 => c
                .query_row("SELECT wavesync_fold()", [], |r| r.get::<_, i64>(0))
                .and_then(|_| c.query_row(changes, [], |r| r.get::<_, i64>(0)))
                .map(|n| assert_eq!(n, i)),
            _ => match c.query_row(changes, [], |r| r.get::<_, i64>(0)) {
                Err(rusqlite::Error::SqliteFailure(e, Some(msg)))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy && msg.contains("wavesync_fold()") =>
                {
                    busy_reads += 1;
                    Ok(())
                }
                other => other.map(|_| ()),
            },
        };
        failed = read.err().map(|e| format!("read {i} failed while another connection committed: {e}"));
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    if let Some(f) = failed {
        panic!("{f}");
    }
    assert!(commits.load(Ordering::Relaxed) > 100, "the other connection hardly committed");
    assert_eq!(all_changes(&c).len() as i64, i, "every write read back");
    eprintln!("{i} rounds, {busy_reads} direct reads refused as busy");
    let _ = std::fs::remove_dir_all(&dir);
}
