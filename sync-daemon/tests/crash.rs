//! Crash safety (docs/RELIABILITY.md): `kill -9` of daemons at random moments during live
//! sync and during a large catch-up, and `kill -9` of an app process in the middle of its
//! transactions. After the restarts every committed write is on every replica, the replicas
//! are identical (tables and `wavesync_changes`), and `PRAGMA integrity_check` is "ok".
//!
//! CI runs 5 live kills + 3 catch-up kills and 3 app kills; `WAVESYNC_LONG=1` runs 50 + 20
//! and 20. `WAVESYNC_SEED=N` replays a run's random choices.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wavesync_testkit::*;

#[test]
fn daemons_killed_at_random_moments_lose_nothing() {
    let (live_kills, catchup_kills, big_txs) = if long_run() { (50, 20, 200) } else { (5, 3, 40) };
    let mut rng = Rng::from_env("daemons_killed_at_random_moments_lose_nothing");
    let g = Group::new();
    let names = ["a", "b", "c"];
    for n in names {
        create_items(&g.db(n));
    }
    // Fixed ports, so that the --peer addresses stay valid across restarts.
    let listen: Vec<String> = names.iter().map(|_| format!("/ip4/127.0.0.1/tcp/{}", free_port())).collect();
    let a = g.start("a", &[], &["--listen", &listen[0], "--anti-entropy", "2"]);
    let b = g.start("b", &[&a], &["--listen", &listen[1], "--anti-entropy", "2"]);
    // c asks for small pages, so that its catch-ups take many rounds to kill it in.
    let c = g.start("c", &[&a, &b], &["--listen", &listen[2], "--anti-entropy", "2", "--page-rows", "100"]);
    let mut daemons = [a, b, c];
    let dbs: Vec<PathBuf> = names.iter().map(|n| g.db(n)).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = dbs
        .iter()
        .enumerate()
        .map(|(i, db)| writer(db.clone(), (i as i64 + 1) * 1_000_000, stop.clone(), rng.next()))
        .collect();

    // 1. Live sync: a random daemon is killed at a random moment and restarted a moment later.
    for k in 0..live_kills {
        std::thread::sleep(Duration::from_millis(rng.range(50, 600)));
        let i = rng.range(0, 3) as usize;
        daemons[i].kill9();
        std::thread::sleep(Duration::from_millis(rng.range(0, 500)));
        daemons[i].restart();
        if k % 10 == 9 {
            eprintln!("live sync: {} kills", k + 1);
        }
    }

    // 2. Large catch-up: c is down while a commits big transactions; then c is killed again
    // and again while it fetches them page by page.
    daemons[2].kill9();
    big_commit(&dbs[0], 0, big_txs);
    let big_total = big_txs * BIG_TX_ROWS;
    let cc = app(&dbs[2]);
    let big_in_c = |c: &rusqlite::Connection| -> i64 {
        c.query_row("SELECT count(*) FROM items WHERE id >= 50000000", [], |r| r.get(0)).expect("count")
    };
    let mut big_total = big_total;
    let mut mid_catchup = 0;
    for _ in 0..catchup_kills {
        if big_in_c(&cc) == big_total {
            // c has it all: give it another large catch-up to be killed in
            big_commit(&dbs[0], big_total, big_txs);
            big_total += big_txs * BIG_TX_ROWS;
        }
        let before = big_in_c(&cc);
        daemons[2].restart();
        wait_until("c's catch-up moves", CONVERGE, || big_in_c(&cc) > before);
        std::thread::sleep(Duration::from_millis(rng.range(0, 150)));
        daemons[2].kill9();
        let now = big_in_c(&cc);
        assert_eq!(now % BIG_TX_ROWS, 0, "c holds part of a transaction after a kill: {now} rows");
        if now < big_total {
            mid_catchup += 1;
        }
    }
    daemons[2].restart();

    stop.store(true, Ordering::Relaxed);
    let mut committed = BTreeSet::new();
    for w in writers {
        committed.extend(w.join().expect("writer"));
    }
    committed.extend((0..big_total).map(|i| 50_000_000 + i));
    let timeout = if long_run() { Duration::from_secs(300) } else { CONVERGE };
    wait_until("all replicas converge after the kills", timeout, || converged(&dbs, &committed));
    check_all_present(&dbs, &committed);
    eprintln!(
        "crash: {} kills survived ({live_kills} during live sync, {catchup_kills} during catch-up, {mid_catchup} of these \
         with the catch-up part-way); {} committed rows on 3 replicas, identical, integrity ok",
        live_kills + catchup_kills,
        committed.len()
    );
    drop(daemons);
}

const BIG_TX_ROWS: i64 = 250;

/// Commits `txs` transactions of BIG_TX_ROWS rows, ids from 50_000_000 + `first`.
fn big_commit(db: &std::path::Path, first: i64, txs: i64) {
    let ca = app(db);
    for t in 0..txs {
        let tx = ca.unchecked_transaction().expect("tx");
        for i in 0..BIG_TX_ROWS {
            tx.execute("INSERT INTO items(id, v) VALUES (?1, 'big')", [50_000_000 + first + t * BIG_TX_ROWS + i])
                .expect("insert");
        }
        tx.commit().expect("commit");
    }
}

/// Not a test of its own: the app process that `app_killed_mid_transaction_*` starts (this
/// test binary again, with WAVESYNC_CHILD_DB set) and kills. It commits transactions of 20
/// rows, one statement at a time, and prints `committed K` after each commit.
#[test]
fn zz_child_app_writer() {
    let Some(db) = std::env::var_os("WAVESYNC_CHILD_DB") else { return };
    let base: i64 = std::env::var("WAVESYNC_CHILD_BASE").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let conn = app(Path::new(&db));
    for k in 0..100_000i64 {
        let tx = conn.unchecked_transaction().expect("tx");
        for i in 0..20 {
            tx.execute("INSERT INTO items(id, v) VALUES (?1, 'child')", [base + k * 20 + i]).expect("insert");
            std::thread::sleep(Duration::from_micros(300));
        }
        tx.commit().expect("commit");
        println!("committed {k}");
    }
}

#[test]
fn app_killed_mid_transaction_loses_no_committed_write() {
    let kills = if long_run() { 20 } else { 3 };
    let mut rng = Rng::from_env("app_killed_mid_transaction_loses_no_committed_write");
    let g = Group::new();
    create_items(&g.db("a"));
    create_items(&g.db("b"));
    let a = g.start("a", &[], &[]);
    let b = g.start("b", &[&a], &[]);
    let mut committed = BTreeSet::new();
    let mut uncommitted_seen = 0;
    for round in 0..kills {
        let base = (round as i64 + 1) * 10_000_000;
        let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "zz_child_app_writer", "--nocapture", "--test-threads=1"])
            .env("WAVESYNC_CHILD_DB", g.db("a"))
            .env("WAVESYNC_CHILD_BASE", base.to_string())
            .env("WAVESYNC_EXT", ext_path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the app process");
        let out = child.stdout.take().expect("stdout");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let seen = seen.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(k) = line.strip_prefix("committed ").and_then(|k| k.parse::<i64>().ok()) {
                        seen.lock().unwrap().push(k);
                    }
                }
            })
        };
        wait_until("the app commits", CONVERGE, || seen.lock().unwrap().len() >= 3);
        std::thread::sleep(Duration::from_millis(rng.range(0, 700)));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        reader.join().expect("reader");
        let acked: Vec<i64> = seen.lock().unwrap().clone();
        let last = *acked.last().expect("commits");
        let conn = app(&g.db("a"));
        for k in 0..=last + 1 {
            let n: i64 = conn
                .query_row(
                    "SELECT count(*) FROM items WHERE id BETWEEN ?1 AND ?2",
                    [base + k * 20, base + k * 20 + 19],
                    |r| r.get(0),
                )
                .expect("count");
            if k <= last {
                assert_eq!(n, 20, "committed transaction {k} of round {round} is not whole: {n} rows");
                committed.extend(base + k * 20..base + k * 20 + 20);
            } else {
                // killed between COMMIT and the print, or mid-transaction: all or nothing
                assert!(n == 0 || n == 20, "transaction {k} of round {round} is half there: {n} rows");
                if n == 20 {
                    committed.extend(base + k * 20..base + k * 20 + 20);
                    uncommitted_seen += 1;
                }
            }
        }
        assert_eq!(integrity(&g.db("a")), "ok");
    }
    let dbs = [g.db("a"), g.db("b")];
    wait_until("b has every committed row of the killed apps", CONVERGE, || converged(&dbs, &committed));
    check_all_present(&dbs, &committed);
    eprintln!(
        "app kills: {kills} app processes killed mid-transaction, {} committed rows on both replicas ({uncommitted_seen} \
         transactions committed just before the kill)",
        committed.len()
    );
    drop((a, b));
}
