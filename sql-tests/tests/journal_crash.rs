//! A fold of the journal killed at any moment (kill -9 of the sqlite3 CLI folding it) leaves
//! the database as it was before the fold or as it is after it, never between: the journal
//! is whole and no clock row was written, or the journal is empty and every clock row is;
//! and the changes read afterwards are exactly those of a fold that was never interrupted.

use rusqlite::Connection;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use wavesync_sql_tests::{all_changes, ext_path, open};
use wavesync_testkit::skip;

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
