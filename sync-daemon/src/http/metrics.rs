//! `/metrics`: every counter of `status`, the gauges and the latency histograms, encoded by
//! `prometheus-client` (OpenMetrics text; Prometheus reads it). A registry is filled from
//! the current values at each scrape: the counters live in `Counters` (atomics shared with
//! the status file), not in the registry.

use super::Shared;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;
use std::sync::atomic::Ordering;

type Labels = Vec<(String, String)>;

pub async fn handler(State(s): State<Shared>) -> Response {
    match render(&s) {
        Ok(text) => ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode the metrics: {e}")).into_response(),
    }
}

fn render(s: &Shared) -> Result<String, std::fmt::Error> {
    let mut reg = Registry::with_prefix("wavesync");
    let c = &s.counters;
    for (name, help, value) in c.snapshot().each() {
        // prometheus-client ends the help with a period itself.
        reg.register(name, help.trim().trim_end_matches('.'), ConstCounter::new(value));
    }
    let g = &c.gauges;
    reg.register("db_version", "This replica's db_version", ConstGauge::new(g.db_version.load(Ordering::Relaxed)));
    reg.register(
        "tombstones",
        "Tombstones held (clock rows of deleted rows; recounted every minute and after each compaction)",
        ConstGauge::new(g.tombstones.load(Ordering::Relaxed)),
    );
    reg.register(
        "last_compaction_timestamp_seconds",
        "Unix time of the last automatic compaction (0: none yet)",
        ConstGauge::new(g.last_compaction_unix.load(Ordering::Relaxed)),
    );
    reg.register(
        "resync_rows",
        "Rows merged so far by the resync under way (0: none)",
        ConstGauge::new(g.resync_rows.load(Ordering::Relaxed)),
    );
    reg.register(
        "pending_commands",
        "Commands (gossip changesets, catch-up pages) waiting for the database thread",
        ConstGauge::new(s.db.queued() as i64),
    );

    let peers = Family::<Labels, Gauge>::default();
    let lag = Family::<Labels, Gauge>::default();
    let mut remaining = 0;
    if let Some(live) = s.live.borrow().as_ref() {
        remaining = live.catchup_remaining as i64;
        // Both kinds always appear, so a dashboard sees 0 rather than nothing.
        for kind in ["direct", "relayed"] {
            let _ = peers.get_or_create(&vec![("connection".into(), kind.into())]);
        }
        for p in &live.status.peers {
            if let Some(kind) = &p.connection {
                peers.get_or_create(&vec![("connection".into(), kind.clone())]).inc();
            }
            for (direction, v) in [("they_lack", p.they_lack_versions), ("we_lack", p.we_lack_versions)] {
                if let (true, Some(v)) = (p.connected, v) {
                    let labels = vec![("peer".into(), p.peer_id.clone()), ("direction".into(), direction.into())];
                    lag.get_or_create(&labels).set(v as i64);
                }
            }
        }
    }
    reg.register("peers", "Connected peers, by how they are connected", peers);
    reg.register(
        "peer_lag_versions",
        "Versions a connected peer lacked from us (they_lack) or we lacked from it (we_lack) at the last catch-up",
        lag,
    );
    reg.register(
        "catchup_remaining_versions",
        "Versions still to fetch from connected peers (catch-up progress)",
        ConstGauge::new(remaining),
    );
    reg.register(
        "commit_to_publish_seconds",
        "From noticing a local commit to its changeset handed to gossip",
        c.latency.commit_to_publish.clone(),
    );
    reg.register(
        "receive_to_apply_seconds",
        "From a gossip changeset received to its transaction committed",
        c.latency.receive_to_apply.clone(),
    );
    let mut out = String::new();
    encode(&mut out, &reg)?;
    Ok(out)
}
