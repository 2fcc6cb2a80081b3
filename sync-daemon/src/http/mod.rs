//! `--http ADDR`: the daemon's HTTP endpoints, on the daemon's tokio runtime (axum routes,
//! served by hyper with limits set for clients that are slow or hostile):
//! - `/metrics`: Prometheus (OpenMetrics) text, see `metrics.rs`;
//! - `/health`: 200 while the event loop and the database thread answer, else 503 + reason;
//! - `/api/status`: the JSON of `wavesyncd status --json`;
//! - `/api/throughput`: rows applied and published per second, the last minutes;
//! - `/api/events`: Server-Sent Events, one per transaction (`events.rs`);
//! - `/`: the status page (`page.html`, served from the binary).
//!
//! Limits: `MAX_CONNECTIONS` connections at once (more are closed at once), request heads
//! of at most `MAX_HEAD_BYTES` that must arrive within `HEAD_TIMEOUT` (else 431 or the
//! connection is closed), `MAX_EVENT_CLIENTS` event streams (more get 503); an event
//! client that falls `events::EVENT_BUFFER` events behind is dropped (its browser
//! reconnects), so a slow reader costs the daemon nothing it would have to buffer.

mod metrics;

use crate::events::{self, TxEvent};
use crate::metrics::Counters;
use crate::net::DbHandle;
use crate::status::{self, Live, Report};
use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch, Semaphore};
use tracing::{debug, info, warn};

const MAX_CONNECTIONS: usize = 64;
const MAX_EVENT_CLIENTS: usize = 32;
const MAX_HEAD_BYTES: usize = 16 * 1024;
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// An answer from the database thread takes longer than this: unhealthy.
const DB_ANSWER: Duration = Duration::from_secs(2);
/// The event loop renews the status every second; older than this: unhealthy.
const LOOP_STALE_SECS: u64 = 5;

const PAGE: &str = include_str!("page.html");

/// What the handlers read.
#[derive(Clone)]
pub struct Shared {
    pub db_path: PathBuf,
    pub counters: Arc<Counters>,
    pub db: DbHandle,
    pub events: events::Sender,
    pub live: watch::Receiver<Option<Live>>,
    event_clients: Arc<Semaphore>,
}

impl Shared {
    pub fn new(
        db_path: PathBuf,
        counters: Arc<Counters>,
        db: DbHandle,
        events: events::Sender,
        live: watch::Receiver<Option<Live>>,
    ) -> Shared {
        Shared { db_path, counters, db, events, live, event_clients: Arc::new(Semaphore::new(MAX_EVENT_CLIENTS)) }
    }
}

/// Binds now (a taken port is an error at start, not later).
pub fn bind(addr: std::net::SocketAddr) -> Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr).with_context(|| format!("--http {addr}: cannot listen"))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/metrics", get(metrics::handler))
        .route("/health", get(health))
        .route("/api/status", get(api_status))
        .route("/api/throughput", get(api_throughput))
        .route("/api/events", get(api_events))
        .fallback(|| async { (StatusCode::NOT_FOUND, Json(serde_json::json!({"error": "no such endpoint"}))) })
        .with_state(shared)
}

/// Accepts connections until the runtime stops.
pub async fn serve(listener: std::net::TcpListener, shared: Shared) -> Result<()> {
    let listener = TcpListener::from_std(listener)?;
    let addr = listener.local_addr()?;
    info!(%addr, "serving HTTP: /, /metrics, /health, /api/status, /api/events");
    let app = router(shared);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors, say: wait instead of spinning.
                warn!("HTTP accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            debug!(%from, "HTTP connection refused: {MAX_CONNECTIONS} open");
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                debug!(%from, "HTTP connection ended: {e}");
            }
            drop(slot);
        });
    }
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            // The page loads nothing from elsewhere and runs only its own script.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:",
            ),
        ],
        PAGE,
    )
        .into_response()
}

fn unhealthy(reason: String) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"status": "unhealthy", "reason": reason})))
        .into_response()
}

async fn health(State(s): State<Shared>) -> Response {
    let updated = s.live.borrow().as_ref().map(|l| l.status.updated_unix);
    match updated {
        None => return unhealthy("the event loop has not reported yet".into()),
        Some(t) if status::now_unix().saturating_sub(t) > LOOP_STALE_SECS => {
            return unhealthy(format!("the event loop has not reported for {} s", status::now_unix() - t))
        }
        Some(_) => {}
    }
    if let Err(e) = s.db.ping(DB_ANSWER).await {
        return unhealthy(format!("{e:#}"));
    }
    Json(serde_json::json!({"status": "ok"})).into_response()
}

async fn api_status(State(s): State<Shared>) -> Response {
    let daemon = s.live.borrow().as_ref().map(|l| l.status.clone());
    let read = match (&daemon, s.db.report().await) {
        (Some(d), Ok(r)) => Ok((d.site_id.clone(), r.db_version, r.vector_json)),
        (None, Ok(_)) => Err(anyhow::anyhow!("the daemon is starting")),
        (_, Err(e)) => Err(e),
    };
    let running = daemon.is_some();
    Json(Report::new(&s.db_path, running, daemon, read)).into_response()
}

async fn api_throughput(State(s): State<Shared>) -> Response {
    let samples: Vec<status::Sample> =
        s.live.borrow().as_ref().map(|l| l.throughput.iter().cloned().collect()).unwrap_or_default();
    Json(serde_json::json!({"interval_s": 1, "samples": samples})).into_response()
}

async fn api_events(State(s): State<Shared>) -> Response {
    let Ok(slot) = s.event_clients.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"error": format!("{MAX_EVENT_CLIENTS} event clients already connected")})),
        )
            .into_response();
    };
    let stream = event_stream(s.events.subscribe(), slot);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}

/// The events for one client, holding its `slot` until it ends: at once when the client
/// fell so far behind that the channel dropped events for it.
fn event_stream(
    rx: broadcast::Receiver<TxEvent>,
    slot: tokio::sync::OwnedSemaphorePermit,
) -> impl futures::Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold((rx, slot), |(mut rx, slot)| async move {
        match rx.recv().await {
            Ok(ev) => Some((Ok::<Event, Infallible>(sse_event(&ev)), (rx, slot))),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                // Dropping the stream (and the slot) ends the response.
                debug!(missed = n, "an event client fell behind: dropped");
                None
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    })
}

fn sse_event(ev: &TxEvent) -> Event {
    Event::default().event("tx").data(serde_json::to_string(ev).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn a_client_that_falls_behind_is_dropped_and_frees_its_slot() {
        let tx = events::channel();
        let slots = Arc::new(Semaphore::new(1));
        let ev = || events::tx("remote", "gossip", &[1; 16], 1, 1, ["t"].into_iter(), 1);

        let mut keeping_up = Box::pin(event_stream(tx.subscribe(), slots.clone().try_acquire_owned().unwrap()));
        tx.send(ev()).unwrap();
        assert!(keeping_up.next().await.is_some(), "a client that keeps up gets its events");
        drop(keeping_up);

        let mut slow = Box::pin(event_stream(tx.subscribe(), slots.clone().try_acquire_owned().unwrap()));
        assert_eq!(slots.available_permits(), 0);
        // It reads nothing while more events than the channel holds go out.
        for _ in 0..events::EVENT_BUFFER + 10 {
            tx.send(ev()).unwrap();
        }
        assert!(slow.next().await.is_none(), "a client that fell behind is dropped, not buffered for");
        drop(slow);
        assert_eq!(slots.available_permits(), 1, "its slot is free again");
    }
}
