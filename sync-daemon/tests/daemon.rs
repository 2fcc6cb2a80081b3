//! End-to-end tests: real `wavesyncd` processes on 127.0.0.1 (no mDNS), real database
//! files written through their own rusqlite connections with the extension loaded.

use rusqlite::params;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wavesync_testkit::*;

fn insert(c: &rusqlite::Connection, id: i64, v: &str) {
    c.execute("INSERT INTO items(id, v) VALUES (?1, ?2)", params![id, v]).expect("insert");
}

fn same_everywhere(dbs: &[&std::path::Path], expected_rows: usize) -> bool {
    let conns: Vec<_> = dbs.iter().map(|d| app(d)).collect();
    let first = items(&conns[0]);
    first.len() == expected_rows && conns[1..].iter().all(|c| items(c) == first)
}

#[test]
fn two_peers_converge_on_live_writes() {
    let g = Group::new();
    create_items(&g.db("a"));
    let a = g.start("a", &[], &[]);
    // b: started from a config file, on a database whose table is created after start.
    let cfg = g.dir.path().join("b.toml");
    std::fs::write(
        &cfg,
        format!(
            "db = \"b.db\"\nkey-file = \"group.key\"\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\npeer = [\"{}\"]\nno-mdns = true\next = \"{}\"\n",
            a.addr(),
            ext_path().display()
        ),
    )
    .expect("write config");
    let b =
        Daemon::spawn("b", g.db("b"), g.dir.path(), vec!["run".into(), "--config".into(), cfg.display().to_string()]);
    create_items(&g.db("b"));
    wait_until("a and b are connected", CONVERGE, || b.status()["peers"].as_array().is_some_and(|p| !p.is_empty()));
    let (ca, cb) = (app(&g.db("a")), app(&g.db("b")));
    for i in 0..30 {
        insert(&ca, i, &format!("a{i}"));
        insert(&cb, 1000 + i, &format!("b{i}"));
        if i % 5 == 0 {
            ca.execute("UPDATE items SET n = n + 1 WHERE id = ?1", [i]).expect("update");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    wait_until("a and b converge", CONVERGE, || same_everywhere(&[&g.db("a"), &g.db("b")], 60));
    assert_eq!(changes(&ca), changes(&cb));
    // Live writes travel by gossip (catch-up is the safety net, not the path).
    // (The status file is rewritten every second: wait for it rather than read it once.)
    wait_until("both sides report applied gossip", CONVERGE, || {
        b.counter("gossip_applied") > 0 && a.counter("gossip_applied") > 0
    });
    assert_eq!(a.counter("gossip_rejected") + b.counter("gossip_rejected"), 0);

    // `wavesyncd status --json` shows the peer, the vector and the counters.
    let out = std::process::Command::new(BIN)
        .args(["status", "--json", "--db"])
        .arg(g.db("a"))
        .env("WAVESYNC_EXT", ext_path())
        .output()
        .expect("status");
    assert!(out.status.success(), "status failed: {}", String::from_utf8_lossy(&out.stderr));
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert_eq!(st["daemon_running"], true);
    assert!(st["vector"].is_object(), "{st}");
    assert_eq!(st["daemon"]["peers"][0]["peer_id"].as_str(), Some(b.peer_id().as_str()));
    let text = std::process::Command::new(BIN)
        .args(["status", "--db"])
        .arg(g.db("b"))
        .env("WAVESYNC_EXT", ext_path())
        .output()
        .expect("status");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("daemon:     running") && text.contains("gossip:"), "{text}");
}

#[test]
fn late_joiner_catches_up_in_pages_and_resumes_after_a_crash() {
    let g = Group::new();
    for n in ["a", "b", "c"] {
        create_items(&g.db(n));
    }
    let a = g.start("a", &[], &[]);
    let b = g.start("b", &[&a], &[]);
    let (ca, cb) = (app(&g.db("a")), app(&g.db("b")));
    for t in 0..60 {
        let tx = ca.unchecked_transaction().expect("tx");
        for i in 0..50 {
            insert(&tx, t * 50 + i, "a");
        }
        tx.commit().expect("commit");
    }
    for i in 0..20 {
        insert(&cb, 10_000 + i, "b");
    }
    wait_until("a and b converge", CONVERGE, || same_everywhere(&[&g.db("a"), &g.db("b")], 3020));
    // c joins late, asking for small pages so the catch-up takes many rounds ...
    let mut c = g.start("c", &[&b], &["--page-rows", "100"]);
    let cc = app(&g.db("c"));
    wait_until("c has received some pages", CONVERGE, || count(&cc) >= 300);
    // ... and crashes in the middle of it; after the restart it resumes from its vector.
    c.kill9();
    let at_crash = count(&cc);
    // a's transactions are 50 rows each: a multiple of 50 of them, or one was split
    let from_a: i64 = cc.query_row("SELECT count(*) FROM items WHERE id < 10000", [], |r| r.get(0)).expect("count");
    assert_eq!(from_a % 50, 0, "a transaction was half-applied: {from_a} rows of a");
    c.restart();
    wait_until("c catches up", CONVERGE, || same_everywhere(&[&g.db("a"), &g.db("c")], 3020));
    assert_eq!(changes(&ca), changes(&cc));
    if at_crash < 3020 {
        eprintln!("c was killed with {at_crash} of 3020 rows and resumed");
    }
    wait_until("c reports catch-up pages", CONVERGE, || c.counter("catchup_pages_applied") >= 1);
}

#[test]
fn peer_stopped_during_writes_catches_up_on_restart() {
    let g = Group::new();
    create_items(&g.db("a"));
    create_items(&g.db("b"));
    let a = g.start("a", &[], &[]);
    let mut b = g.start("b", &[&a], &[]);
    let ca = app(&g.db("a"));
    for i in 0..300 {
        insert(&ca, i, "before");
        if i == 100 {
            b.kill9(); // a crash in the middle of a stream of writes
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // b's app keeps writing while its daemon is down.
    let cb = app(&g.db("b"));
    for i in 0..50 {
        insert(&cb, 5000 + i, "offline");
    }
    ca.execute("UPDATE items SET v = 'changed' WHERE id < 50", []).expect("update");
    b.restart();
    wait_until("a and b converge after the restart", CONVERGE, || same_everywhere(&[&g.db("a"), &g.db("b")], 350));
    assert_eq!(changes(&ca), changes(&cb));
    drop(a);
}

#[test]
fn three_peers_writing_the_same_cells_converge() {
    let g = Group::new();
    for n in ["a", "b", "c"] {
        create_items(&g.db(n));
    }
    let a = g.start("a", &[], &[]);
    let b = g.start("b", &[&a], &[]);
    let c = g.start("c", &[&a, &b], &[]);
    {
        let ca = app(&g.db("a"));
        for i in 0..20 {
            insert(&ca, i, "seed");
        }
    }
    wait_until("seed rows everywhere", CONVERGE, || same_everywhere(&[&g.db("a"), &g.db("b"), &g.db("c")], 20));
    let writers: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .enumerate()
        .map(|(w, name)| {
            let db = g.db(name);
            std::thread::spawn(move || {
                let conn = app(&db);
                let mut x: u64 = 0x9e37_79b9 + w as u64;
                for k in 0..150 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let id = (x % 20) as i64;
                    match k % 10 {
                        // a delete and a re-insert now and then: causal lengths move too
                        7 => {
                            conn.execute("DELETE FROM items WHERE id = ?1", [id]).expect("delete");
                        }
                        8 => {
                            conn.execute(
                                "INSERT OR IGNORE INTO items(id, v) VALUES (?1, ?2)",
                                params![id, format!("{name}{k}")],
                            )
                            .expect("reinsert");
                        }
                        _ => {
                            conn.execute(
                                "UPDATE items SET v = ?2, n = n + 1 WHERE id = ?1",
                                params![id, format!("{name}{k}")],
                            )
                            .expect("update");
                        }
                    }
                    std::thread::sleep(Duration::from_millis(3));
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    let dbs = [g.db("a"), g.db("b"), g.db("c")];
    wait_until("three replicas converge", CONVERGE, || {
        let conns: Vec<_> = dbs.iter().map(|d| app(d)).collect();
        let t = items(&conns[0]);
        let ch = changes(&conns[0]);
        conns[1..].iter().all(|c| items(c) == t && changes(c) == ch)
    });
    drop((a, b, c));
}

#[test]
fn a_peer_with_the_wrong_key_gets_nothing_and_changes_nothing() {
    let g = Group::new();
    for n in ["a", "b", "m"] {
        create_items(&g.db(n));
    }
    let other_key = g.dir.path().join("other.key");
    keygen(&other_key);
    let a = g.start("a", &[], &[]);
    let b = g.start("b", &[&a], &[]);
    // m: not a member, but it knows where a is and connects.
    let m = g.start_with_key("m", &other_key, &[&a, &b], &["--anti-entropy", "1"]);
    let (ca, cm) = (app(&g.db("a")), app(&g.db("m")));
    for i in 0..20 {
        insert(&ca, i, "member");
        insert(&cm, 100 + i, "intruder");
    }
    wait_until("b has a's rows", CONVERGE, || items(&app(&g.db("b"))).len() == 20);
    // m is connected to a, and its catch-up requests are refused.
    wait_until("a rejects m's catch-up requests", CONVERGE, || a.counter("catchup_rejected") >= 2);
    let m_id = m.peer_id();
    assert!(
        a.status()["peers"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["peer_id"] == m_id.as_str() && p["connected"] == true)),
        "m never connected to a"
    );
    std::thread::sleep(Duration::from_secs(3));
    for (name, conn) in [("a", &ca), ("b", &app(&g.db("b")))] {
        assert!(items(conn).iter().all(|r| r.0 < 100), "{name} got rows from the non-member");
    }
    assert!(items(&cm).iter().all(|r| r.0 >= 100), "the non-member got members' rows");
    assert_eq!(m.counter("gossip_applied") + m.counter("catchup_pages_applied"), 0);
}

#[test]
fn a_50k_row_transaction_arrives_whole() {
    const N: i64 = 50_000;
    let g = Group::new();
    for n in ["a", "b", "c"] {
        create_items(&g.db(n));
    }
    let a = g.start("a", &[], &[]);
    let b = g.start("b", &[&a], &[]);
    wait_until("a and b are connected", CONVERGE, || b.status()["peers"].as_array().is_some_and(|p| !p.is_empty()));
    // Watchers see only 0 or N rows, never a part.
    let stop = Arc::new(AtomicBool::new(false));
    let watch = |db: std::path::PathBuf| {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let conn = app(&db);
            let mut seen = std::collections::BTreeSet::new();
            while !stop.load(Ordering::Relaxed) {
                seen.insert(count(&conn));
                std::thread::sleep(Duration::from_millis(5));
            }
            seen.insert(count(&conn));
            seen
        })
    };
    let wb = watch(g.db("b"));
    let wc = watch(g.db("c"));
    {
        let ca = app(&g.db("a"));
        let tx = ca.unchecked_transaction().expect("tx");
        {
            let mut s = tx.prepare("INSERT INTO items(id, v, n) VALUES (?1, ?2, ?1)").expect("prepare");
            for i in 0..N {
                s.execute(params![i, format!("row {i} of the big transaction")]).expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    // By gossip (chunked) to b ...
    wait_until("b has the whole transaction", Duration::from_secs(180), || count(&app(&g.db("b"))) == N);
    // ... and by catch-up (one page: a version is never split) to c, which joins late.
    let c = g.start("c", &[&a], &[]);
    wait_until("c has the whole transaction", Duration::from_secs(180), || count(&app(&g.db("c"))) == N);
    stop.store(true, Ordering::Relaxed);
    for (name, w) in [("b", wb), ("c", wc)] {
        let seen = w.join().expect("watcher");
        assert!(seen.iter().all(|&n| n == 0 || n == N), "{name} saw a partial transaction: {seen:?}");
    }
    assert_eq!(items(&app(&g.db("a"))), items(&app(&g.db("c"))));
    drop((a, b, c));
}

#[test]
fn app_writes_while_the_daemon_applies_remote_changes() {
    let g = Group::new();
    create_items(&g.db("a"));
    create_items(&g.db("b"));
    let a = g.start("a", &[], &[]);
    let b = g.start("b", &[&a], &[]);
    wait_until("a and b are connected", CONVERGE, || b.status()["peers"].as_array().is_some_and(|p| !p.is_empty()));
    // Both apps write as fast as they can, each through its own connection, while each
    // daemon applies the other side's changes: no write may fail (no SQLITE_BUSY).
    let writers: Vec<_> = [("a", 0i64), ("b", 100_000i64)]
        .into_iter()
        .map(|(name, base)| {
            let db = g.db(name);
            std::thread::spawn(move || {
                let conn = app(&db);
                for i in 0..1500 {
                    if let Err(e) = conn.execute("INSERT INTO items(id, v) VALUES (?1, 'x')", [base + i]) {
                        panic!("app write {i} on {name} failed: {e}");
                    }
                    if i % 100 == 0 {
                        // and a multi-statement transaction, as apps do
                        let tx = conn.unchecked_transaction().expect("begin");
                        tx.execute("UPDATE items SET n = n + 1 WHERE id = ?1", [base + i]).expect("update in tx");
                        tx.commit().expect("commit");
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("an app write failed");
    }
    wait_until("a and b converge", CONVERGE, || same_everywhere(&[&g.db("a"), &g.db("b")], 3000));
    drop((a, b));
}

#[test]
fn reconnects_with_backoff_when_a_peer_comes_back() {
    let g = Group::new();
    create_items(&g.db("a"));
    create_items(&g.db("b"));
    // a on a fixed port, so b's --peer address stays valid across a's restart
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let mut a = g.start("a", &[], &["--listen", &listen]);
    let b = g.start("b", &[&a], &[]);
    let (ca, cb) = (app(&g.db("a")), app(&g.db("b")));
    insert(&ca, 1, "first");
    wait_until("b has a's first row", CONVERGE, || count(&cb) == 1);
    a.kill9();
    for i in 0..10 {
        insert(&cb, 100 + i, "while a is down");
    }
    insert(&ca, 2, "a offline");
    std::thread::sleep(Duration::from_secs(3)); // b's redials fail and back off
    a.restart();
    wait_until("b reconnects and both converge", CONVERGE, || same_everywhere(&[&g.db("a"), &g.db("b")], 12));
    assert!(b.log().contains("cannot connect to peer"), "b never had to redial");
}

#[test]
fn local_commits_are_noticed_from_file_events() {
    // The safety poll and anti-entropy are pushed out of the test's reach: every commit
    // below must be noticed from a file event on a's database (inotify on its directory).
    let g = Group::new();
    create_items(&g.db("a"));
    create_items(&g.db("b"));
    // a's daemon opens the database through a symlink in another directory: the watch is
    // on the real file's directory, where SQLite keeps the -wal.
    let link_dir = g.dir.path().join("link");
    std::fs::create_dir(&link_dir).expect("mkdir");
    let link = link_dir.join("a.db");
    std::os::unix::fs::symlink(g.db("a"), &link).expect("symlink");
    let slow = ["--safety-poll-ms", "600000", "--anti-entropy", "3600"];
    let mut args: Vec<String> =
        vec!["run".into(), "--db".into(), link.display().to_string(), "--key-file".into(), g.key.display().to_string()];
    args.extend(slow.iter().map(|s| s.to_string()));
    let a = Daemon::spawn("a", link.clone(), g.dir.path(), args);
    let b = g.start("b", &[&a], &slow);
    wait_until("a and b are connected", CONVERGE, || b.status()["peers"].as_array().is_some_and(|p| !p.is_empty()));
    let cb = app(&g.db("b"));
    let seen = |id: i64| {
        cb.query_row("SELECT count(*) FROM items WHERE id = ?1", [id], |r| r.get::<_, i64>(0)).expect("count") == 1
    };
    let quick = Duration::from_secs(10);

    let ca = app(&g.db("a"));
    insert(&ca, 1, "first");
    wait_until("the first commit reaches b", quick, || seen(1));
    // A checkpoint that truncates the -wal to zero bytes: later commits write it again.
    ca.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).expect("checkpoint");
    insert(&ca, 2, "after a truncating checkpoint");
    wait_until("a commit after a truncating checkpoint reaches b", quick, || seen(2));
    // A new app connection after the old one closed, a few commits in a row.
    drop(ca);
    let ca = app(&g.db("a"));
    for id in 3..8 {
        insert(&ca, id, "again");
    }
    wait_until("commits from a new connection reach b", quick, || (3..8).all(&seen));
    assert!(a.log().contains("watching the database files"), "{}", a.log());
}
