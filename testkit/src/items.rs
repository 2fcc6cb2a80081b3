//! The `items` table the daemon tests write through app connections, and what they check
//! on it: the same rows and changes everywhere, nothing committed lost, sound files.

use crate::ext::app;
use crate::util::Rng;
use rusqlite::Connection;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

/// Every change, without the local db_version (which differs between replicas). Folds the
/// journal first, in a statement of its own: a daemon may be writing, and a read that had
/// to fold could be refused as busy (ARCHITECTURE.md, "The journal").
pub fn changes(c: &Connection) -> Vec<Vec<rusqlite::types::Value>> {
    c.query_row("SELECT wavesync_fold()", [], |_| Ok(())).expect("wavesync_fold");
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
