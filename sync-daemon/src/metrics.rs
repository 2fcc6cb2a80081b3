//! The daemon's counters, gauges and latency histograms, shared by the network side, the
//! database side, the status report and `/metrics` (each holds an `Arc<Counters>`; none
//! depends on another for them).

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Defines the counters once: the atomic struct, its serializable snapshot (the status
/// file, `status --json`, `/api/status`) and the help text of each (`/metrics`).
macro_rules! counters {
    ($($(#[doc = $help:literal])+ $name:ident,)*) => {
        /// Counters, updated with relaxed atomics from every thread.
        #[derive(Default)]
        pub struct Counters {
            $(pub $name: AtomicU64,)*
            pub gauges: Gauges,
            pub latency: Latency,
        }

        #[derive(Serialize, Deserialize, Debug, Default, Clone)]
        pub struct CounterSnapshot {
            $(#[serde(default)] pub $name: u64,)*
        }

        impl Counters {
            pub fn snapshot(&self) -> CounterSnapshot {
                CounterSnapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }

        impl CounterSnapshot {
            /// (name, help, value) of every counter.
            pub fn each(&self) -> Vec<(&'static str, &'static str, u64)> {
                vec![$((stringify!($name), concat!($($help),+), self.$name),)*]
            }
        }
    };
}

counters! {
    /// Gossip messages received.
    gossip_received,
    /// Gossip changesets applied.
    gossip_applied,
    /// Gossip messages refused (wrong key, malformed, oversized, other protocol version).
    gossip_rejected,
    /// Authentic gossip messages seen before (same nonce): dropped, not applied again.
    gossip_replayed,
    /// Local changesets published.
    published,
    /// Catch-up and resync requests answered.
    catchup_requests_served,
    /// Catch-up frames refused (wrong key, malformed, oversized).
    catchup_rejected,
    /// Catch-up pages sent.
    catchup_pages_sent,
    /// Catch-up pages received.
    catchup_pages_received,
    /// Catch-up pages applied.
    catchup_pages_applied,
    /// Changesets or pages that could not be applied (retried by catch-up).
    apply_failed,
    /// Incomplete chunked changesets dropped after a timeout (catch-up fetches them).
    partial_dropped,
    /// Gossip changesets dropped because the database thread's queue was full (catch-up fetches them).
    gossip_dropped_busy,
    /// Change rows applied from peers (gossip, catch-up and resync).
    rows_applied,
    /// Change rows published (local writes).
    rows_published,
    /// Automatic compactions run.
    compactions,
    /// Tombstones removed by automatic compaction.
    tombstones_removed,
    /// Full resyncs this replica ran after falling behind a peer's compaction horizon.
    resyncs,
    /// Relayed connections upgraded to direct ones by hole punching (DCUtR).
    holepunch_succeeded,
    /// Hole punching attempts that failed (sync goes on over the relay).
    holepunch_failed,
    /// Hole punching tried again over a new relayed connection, after a failure.
    holepunch_retried,
    /// Peers disconnected and refused for a while after messages that failed the key's check.
    peers_banned,
}

/// Values that go up and down, set by the database thread.
#[derive(Default)]
pub struct Gauges {
    pub db_version: AtomicI64,
    /// Tombstones held (counted after each compaction and every few minutes).
    pub tombstones: AtomicI64,
    /// Unix time of the last automatic compaction (0: none yet).
    pub last_compaction_unix: AtomicI64,
    /// Rows of a running resync applied so far (0: none running).
    pub resync_rows: AtomicI64,
}

/// Latency histograms (seconds).
pub struct Latency {
    /// From the database thread noticing a local commit to its changeset handed to gossip.
    pub commit_to_publish: Histogram,
    /// From a gossip changeset's last chunk received to its transaction committed.
    pub receive_to_apply: Histogram,
}

impl Default for Latency {
    fn default() -> Self {
        // 100 µs .. ~52 s
        let buckets = || Histogram::new(exponential_buckets(0.0001, 2.0, 20));
        Latency { commit_to_publish: buckets(), receive_to_apply: buckets() }
    }
}

pub fn observe(h: &Histogram, d: Duration) {
    h.observe(d.as_secs_f64());
}
