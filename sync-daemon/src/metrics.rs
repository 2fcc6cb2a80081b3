//! The daemon's counters, shared by the network side, the database side and the status
//! report (each holds an `Arc<Counters>`; none depends on another for them).

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters, updated with relaxed atomics from both threads.
#[derive(Default)]
pub struct Counters {
    pub gossip_received: AtomicU64,
    pub gossip_applied: AtomicU64,
    pub gossip_rejected: AtomicU64,
    pub gossip_replayed: AtomicU64,
    pub published: AtomicU64,
    pub catchup_requests_served: AtomicU64,
    pub catchup_rejected: AtomicU64,
    pub catchup_pages_sent: AtomicU64,
    pub catchup_pages_received: AtomicU64,
    pub catchup_pages_applied: AtomicU64,
    pub apply_failed: AtomicU64,
    pub partial_dropped: AtomicU64,
    /// Gossip changesets dropped because the database thread's queue was full (catch-up
    /// fetches them).
    pub gossip_dropped_busy: AtomicU64,
}

#[derive(Serialize, Deserialize, Debug, Default, Clone)]
pub struct CounterSnapshot {
    pub gossip_received: u64,
    pub gossip_applied: u64,
    pub gossip_rejected: u64,
    /// Authentic gossip messages seen before (same nonce): dropped, not applied again.
    #[serde(default)]
    pub gossip_replayed: u64,
    pub published: u64,
    pub catchup_requests_served: u64,
    pub catchup_rejected: u64,
    pub catchup_pages_sent: u64,
    pub catchup_pages_received: u64,
    pub catchup_pages_applied: u64,
    pub apply_failed: u64,
    pub partial_dropped: u64,
    #[serde(default)]
    pub gossip_dropped_busy: u64,
}

impl Counters {
    pub fn snapshot(&self) -> CounterSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CounterSnapshot {
            gossip_received: g(&self.gossip_received),
            gossip_applied: g(&self.gossip_applied),
            gossip_rejected: g(&self.gossip_rejected),
            gossip_replayed: g(&self.gossip_replayed),
            published: g(&self.published),
            catchup_requests_served: g(&self.catchup_requests_served),
            catchup_rejected: g(&self.catchup_rejected),
            catchup_pages_sent: g(&self.catchup_pages_sent),
            catchup_pages_received: g(&self.catchup_pages_received),
            catchup_pages_applied: g(&self.catchup_pages_applied),
            apply_failed: g(&self.apply_failed),
            partial_dropped: g(&self.partial_dropped),
            gossip_dropped_busy: g(&self.gossip_dropped_busy),
        }
    }
}
