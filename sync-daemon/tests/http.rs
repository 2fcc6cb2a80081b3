//! `--http`: /metrics, /health, /api/status, /api/events and `wavesyncd watch`, against
//! real daemons on 127.0.0.1, through plain sockets (what any client sends), and requests a
//! hostile or broken client sends: huge heads, a head that never ends, unknown paths,
//! other methods, more connections and event streams than allowed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use wavesync_testkit::*;

/// One request with `Connection: close`; (status, head, body).
fn get(addr: &str, path: &str) -> (u16, String, String) {
    request(addr, &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"))
}

fn request(addr: &str, raw: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(raw.as_bytes()).expect("send");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

fn json(body: &str) -> serde_json::Value {
    // Bodies of `Connection: close` answers are not chunked (content-length), except SSE.
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn start_pair(g: &Group) -> (Daemon, Daemon, String, String) {
    create_items(&g.db("a"));
    create_items(&g.db("b"));
    let (ha, hb) = (format!("127.0.0.1:{}", free_port()), format!("127.0.0.1:{}", free_port()));
    let a = g.start("a", &[], &["--http", &ha]);
    let b = g.start("b", &[&a], &["--http", &hb]);
    wait_until("a and b connected", CONVERGE, || {
        a.status()["peers"].as_array().is_some_and(|p| p.iter().any(|p| p["connected"] == true))
    });
    (a, b, ha, hb)
}

#[test]
fn metrics_health_status_and_events() {
    let g = Group::new();
    let (a, _b, ha, _hb) = start_pair(&g);

    let (code, _, body) = get(&ha, "/health");
    assert_eq!((code, json(&body)["status"].as_str()), (200, Some("ok")), "{body}");

    // An event stream opened before a row is written on b.
    let mut events = TcpStream::connect(&ha).unwrap();
    events.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(events, "GET /api/events HTTP/1.1\r\nHost: {ha}\r\nAccept: text/event-stream\r\n\r\n").unwrap();
    let mut reader = BufReader::new(events.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if line.to_ascii_lowercase().starts_with("content-type") {
            assert!(line.contains("text/event-stream"), "{line}");
        }
    }
    // `wavesyncd watch` follows the same stream.
    let mut watch = std::process::Command::new(BIN)
        .args(["watch", "--json", "--db"])
        .arg(g.db("a"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("watch");
    std::thread::sleep(Duration::from_millis(500));

    let cb = app(&g.db("b"));
    cb.execute_batch("INSERT INTO items (id, v) VALUES (1, 'one'), (2, 'two');").unwrap();
    let data = loop {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the event stream ended");
        if let Some(d) = line.trim_end().strip_prefix("data:") {
            break json(d.trim());
        }
    };
    assert_eq!(data["kind"], "remote", "{data}");
    assert_eq!(data["tables"], serde_json::json!(["items"]), "{data}");
    assert_eq!(data["rows"], 2 * 2, "two rows, two columns each: {data}");
    let mut watched = String::new();
    BufReader::new(watch.stdout.take().unwrap()).read_line(&mut watched).unwrap();
    let _ = watch.kill();
    let _ = watch.wait();
    assert_eq!(json(watched.trim())["kind"], "remote", "{watched}");

    // /api/status is `wavesyncd status --json`, live.
    wait_until("a's status shows the row counts", CONVERGE, || {
        let st = json(&get(&ha, "/api/status").2);
        st["daemon"]["counters"]["rows_applied"].as_u64() >= Some(4)
    });
    let st = json(&get(&ha, "/api/status").2);
    assert_eq!(st["daemon_running"], true);
    assert_eq!(st["db_version"], 1, "{st}");
    assert!(st["vector"].is_object(), "{st}");
    let peer = &st["daemon"]["peers"][0];
    assert_eq!((peer["connected"].as_bool(), peer["connection"].as_str()), (Some(true), Some("direct")), "{st}");
    assert!(st["daemon"]["http"].as_str() == Some(ha.as_str()), "{st}");

    // /metrics: Prometheus text with HELP lines, the counters, gauges and histograms.
    let (code, head, text) = get(&ha, "/metrics");
    assert_eq!(code, 200);
    assert!(head.to_ascii_lowercase().contains("content-type: application/openmetrics-text"), "{head}");
    for want in [
        "# HELP wavesync_gossip_received Gossip messages received.",
        "# TYPE wavesync_gossip_received counter",
        "wavesync_peers{connection=\"direct\"} 1",
        "wavesync_peers{connection=\"relayed\"} 0",
        "wavesync_db_version 1",
        "wavesync_receive_to_apply_seconds_count",
        "# TYPE wavesync_commit_to_publish_seconds histogram",
        "direction=\"we_lack\"",
        "# EOF",
    ] {
        assert!(text.contains(want), "/metrics lacks {want:?}:\n{text}");
    }
    let rows = text.lines().find_map(|l| l.strip_prefix("wavesync_rows_applied_total ")).expect("rows_applied");
    assert!(rows.trim().parse::<u64>().unwrap() >= 4, "{text}");

    let (code, _, body) = get(&ha, "/api/throughput");
    assert_eq!(code, 200);
    assert!(json(&body)["samples"].as_array().is_some_and(|s| !s.is_empty()), "{body}");
    let (code, head, page) = get(&ha, "/");
    assert_eq!(code, 200);
    assert!(head.to_ascii_lowercase().contains("text/html") && page.contains("<html"), "{head}");
    drop(a);
}

#[test]
fn hostile_and_broken_http_clients_get_errors_and_never_stall_the_daemon() {
    let g = Group::new();
    let (a, _b, ha, _hb) = start_pair(&g);
    let healthy = || get(&ha, "/health").0 == 200;

    // Unknown paths and other methods.
    assert_eq!(get(&ha, "/nope").0, 404);
    assert_eq!(get(&ha, "/../../etc/passwd").0, 404);
    assert_eq!(
        request(
            &ha,
            &format!("POST /metrics HTTP/1.1\r\nHost: {ha}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        )
        .0,
        405
    );
    // Not HTTP at all, and a huge head: an error or a closed connection, nothing else.
    let (code, _, _) = request(&ha, "\x16\x03\x01\x02\x00garbage\r\n\r\n");
    assert!(code == 400 || code == 0, "garbage got {code}");
    let huge = format!("GET / HTTP/1.1\r\nHost: {ha}\r\nX-Big: {}\r\n\r\n", "a".repeat(64 * 1024));
    let (code, _, _) = request(&ha, &huge);
    assert!(code == 431 || code == 0, "a 64 KiB head got {code}");
    assert!(healthy());

    // Heads that never end: closed after the head timeout, while others are served.
    let mut slow: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(&ha).unwrap();
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
            s
        })
        .collect();
    let began = Instant::now();
    assert!(healthy(), "a slow client stalls the others");
    for s in &mut slow {
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut buf = [0u8; 512];
        // Closed by the daemon (0 bytes or an error answer), not left open.
        let n = s.read(&mut buf).unwrap_or(0);
        assert!(n == 0 || String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"), "{n} bytes");
    }
    assert!(began.elapsed() < Duration::from_secs(14), "slow heads were kept open {:?}", began.elapsed());

    // More connections than allowed: the extra ones are closed; afterwards all is well.
    let many: Vec<TcpStream> = (0..100).filter_map(|_| TcpStream::connect(&ha).ok()).collect();
    std::thread::sleep(Duration::from_millis(200));
    drop(many);
    wait_until("healthy after the connection flood", Duration::from_secs(10), healthy);

    // More event streams than allowed get 503; the others stay open.
    let streams: Vec<TcpStream> = (0..32)
        .map(|_| {
            let mut s = TcpStream::connect(&ha).unwrap();
            write!(s, "GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = [0u8; 12];
            s.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"HTTP/1.1 200");
            s
        })
        .collect();
    let (code, _, body) = get(&ha, "/api/events");
    assert_eq!(code, 503, "{body}");
    drop(streams);
    wait_until("event streams free again", Duration::from_secs(10), || {
        let mut s = TcpStream::connect(&ha).unwrap();
        write!(s, "GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).is_ok() && &buf == b"HTTP/1.1 200"
    });
    assert!(healthy());
    drop(a);
}

#[test]
fn http_refuses_a_non_loopback_address_without_the_flag() {
    let g = Group::new();
    let out = std::process::Command::new(BIN)
        .args(["run", "--no-mdns", "--http", "0.0.0.0:9", "--db"])
        .arg(g.db("x"))
        .arg("--key-file")
        .arg(&g.key)
        .env("WAVESYNC_EXT", ext_path())
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("not a loopback address") && err.contains("--http-allow-remote"),
        "{err}"
    );
    assert!(!g.db("x").exists(), "nothing was created");
}
