//! The status page in a real browser: headless Chromium (Debian's `chromium`, driven by
//! `puppeteer-core`; `make deps` installs both) opens `/` of a daemon in a running 3-peer
//! group, must show both other peers as connected, and must show a transaction written on
//! another peer as it arrives (through `/api/events`). The harness is
//! `tests/browser/status_page.mjs`; it fails on any console error or failed request.
//! `WAVESYNC_SCREENSHOT=PATH` keeps the screenshot (docs/status-page.png is one).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use wavesync_testkit::*;

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

#[test]
fn status_page_shows_the_peers_and_updates_live() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !std::path::Path::new(&chromium).exists() || !browser_dir().join("node_modules/puppeteer-core").exists() {
        skip(
            "status_page_shows_the_peers_and_updates_live",
            "no chromium or puppeteer-core here (make deps installs them)",
        );
        return;
    }
    let g = Group::new();
    for n in ["a", "b", "c"] {
        create_items(&g.db(n));
    }
    let http = format!("127.0.0.1:{}", free_port());
    let a = g.start("a", &[], &["--http", &http]);
    let b = g.start("b", &[&a], &[]);
    let c = g.start("c", &[&a, &b], &[]);
    wait_until("a sees both peers", CONVERGE, || {
        a.status()["peers"].as_array().is_some_and(|p| p.iter().filter(|p| p["connected"] == true).count() == 2)
    });

    let shot = std::env::var("WAVESYNC_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| g.dir.path().join("status-page.png"));
    let mut harness = Command::new("node")
        .arg(browser_dir().join("status_page.mjs"))
        .args(["--url", &format!("http://{http}/"), "--peers", "2", "--timeout-s", "45", "--screenshot"])
        .arg(&shot)
        .env("CHROMIUM", &chromium)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");
    let mut out = BufReader::new(harness.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    if line.trim() != "READY" {
        let _ = harness.wait();
        let mut err = String::new();
        let _ = std::io::Read::read_to_string(&mut harness.stderr.take().unwrap(), &mut err);
        panic!("the page did not show 2 connected peers: {line:?}\n{err}");
    }
    // A row written on c reaches a, and the page shows the transaction.
    std::thread::sleep(Duration::from_millis(300));
    app(&g.db("c")).execute("INSERT INTO items (id, v) VALUES (42, 'from c')", []).unwrap();
    let mut rest = String::new();
    while out.read_line(&mut rest).unwrap_or(0) > 0 {}
    let status = harness.wait().unwrap();
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut harness.stderr.take().unwrap(), &mut err);
    assert!(status.success(), "the page did not update: {rest}\n{err}");
    assert!(rest.contains("UPDATED"), "{rest}");
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false), "no screenshot at {}", shot.display());
    drop((a, b, c));
}
