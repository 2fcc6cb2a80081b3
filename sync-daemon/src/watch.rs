//! `wavesyncd watch --db FILE [--json]`: follows the transaction events of the daemon that
//! runs on FILE (its `/api/events`; the address comes from the daemon's status file), and
//! reconnects when the daemon restarts.

use crate::events::TxEvent;
use crate::status;
use anyhow::{anyhow, bail, Context, Result};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

pub fn command(db: &Path, json: bool) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let mut said_waiting = false;
        loop {
            let addr = match status::read_status(db) {
                None => {
                    bail!("no daemon runs on {} (no status file {})", db.display(), status::status_path(db).display())
                }
                Some(st) => st.http.ok_or_else(|| {
                    anyhow!("the daemon on {} does not serve HTTP: start it with --http 127.0.0.1:PORT", db.display())
                })?,
            };
            match follow(&addr, json).await {
                Ok(()) => eprintln!("wavesyncd watch: the daemon closed the stream; reconnecting"),
                Err(e) if !said_waiting => eprintln!("wavesyncd watch: {e:#}; retrying"),
                Err(_) => {}
            }
            said_waiting = true;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    })
}

/// Reads one event stream to its end.
async fn follow(addr: &str, json: bool) -> Result<()> {
    let stream = tokio::net::TcpStream::connect(addr).await.with_context(|| format!("cannot connect to {addr}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = hyper::Request::get("/api/events")
        .header(hyper::header::HOST, addr)
        .header(hyper::header::ACCEPT, "text/event-stream")
        .body(http_body_util::Empty::<bytes::Bytes>::new())?;
    let resp = sender.send_request(req).await?;
    if !resp.status().is_success() {
        bail!("{addr}/api/events answered {}", resp.status());
    }
    eprintln!("wavesyncd watch: following http://{addr}/api/events (Ctrl-C to stop)");
    let mut body = resp.into_body();
    let mut buf = String::new();
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        let Some(data) = frame.data_ref() else { continue };
        buf.push_str(&String::from_utf8_lossy(data));
        // Events end with a blank line; a line "data: ..." holds the JSON.
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            for line in block.lines() {
                if let Some(data) = line.strip_prefix("data:") {
                    print_event(data.trim_start(), json);
                }
            }
        }
    }
    Ok(())
}

/// HH:MM:SS.mmm (UTC) of a unix time in milliseconds.
fn clock(unix_ms: u64) -> String {
    let s = unix_ms / 1000 % 86_400;
    format!("{:02}:{:02}:{:02}.{:03}Z", s / 3600, s / 60 % 60, s % 60, unix_ms % 1000)
}

fn print_event(data: &str, json: bool) {
    let mut out = std::io::stdout().lock();
    if json {
        let _ = writeln!(out, "{data}");
    } else {
        match serde_json::from_str::<TxEvent>(data) {
            Ok(e) => {
                let versions = if e.start == e.end {
                    format!("version {}", e.start)
                } else {
                    format!("versions {}..{}", e.start, e.end)
                };
                let _ = writeln!(
                    out,
                    "{} {:6} {:7} {} {} — {} rows in {}",
                    clock(e.unix_ms),
                    e.kind,
                    e.via,
                    &e.origin[..e.origin.len().min(8)],
                    versions,
                    e.rows,
                    e.tables.join(", ")
                );
            }
            Err(_) => {
                let _ = writeln!(out, "{data}");
            }
        }
    }
    let _ = out.flush();
}
