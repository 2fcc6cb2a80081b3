//! Transaction events: one per remote transaction applied here and per local one published,
//! for apps that refresh their UI when data changes (`/api/events`, `wavesyncd watch`).
//! The database thread sends them on a broadcast channel; a subscriber that falls behind
//! loses the oldest ones (and the HTTP side then drops that client) — a slow reader never
//! makes the daemon buffer without limit.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use tokio::sync::broadcast;

/// Events kept for subscribers at most (each is small: tables and counts, no values).
pub const EVENT_BUFFER: usize = 1024;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct TxEvent {
    /// "remote" (applied here) or "local" (this replica's, published).
    pub kind: String,
    /// The origin site id (hex).
    pub origin: String,
    /// Origin versions `start..=end` (one transaction each).
    pub start: i64,
    pub end: i64,
    pub tables: Vec<String>,
    pub rows: usize,
    /// "gossip", "catchup", "resync" or "local".
    pub via: String,
    pub unix_ms: u64,
}

pub type Sender = broadcast::Sender<TxEvent>;

pub fn channel() -> Sender {
    broadcast::channel(EVENT_BUFFER).0
}

/// Builds an event; `tables` lists each table once, sorted.
pub fn tx<'a>(
    kind: &str,
    via: &str,
    origin: &[u8],
    start: i64,
    end: i64,
    tables: impl Iterator<Item = &'a str>,
    rows: usize,
) -> TxEvent {
    let tables: BTreeSet<&str> = tables.collect();
    TxEvent {
        kind: kind.into(),
        origin: hex::encode(origin),
        start,
        end,
        tables: tables.into_iter().map(String::from).collect(),
        rows,
        via: via.into(),
        unix_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    }
}
