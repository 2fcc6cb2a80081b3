//! Explicit `--peer` and `--relay` addresses: dialed at start, and again with exponential
//! backoff while not connected (mDNS-discovered peers are dialed once, from the node's
//! event loop; members found on a relay, from `reach`).

use super::Node;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tracing::warn;

pub(super) const REDIAL_MIN: Duration = Duration::from_secs(1);
pub(super) const REDIAL_MAX: Duration = Duration::from_secs(30);

/// An explicit `--peer` or `--relay` address, redialed with backoff while not connected.
pub(super) struct Dialed {
    pub(super) addr: Multiaddr,
    pub(super) peer: Option<PeerId>,
    pub(super) pending: Option<ConnectionId>,
    pub(super) next_try: Instant,
    pub(super) backoff: Duration,
}

impl Dialed {
    /// An address to dial now.
    pub(super) fn new(addr: Multiaddr) -> Dialed {
        Dialed { addr, peer: None, pending: None, next_try: Instant::now(), backoff: REDIAL_MIN }
    }
}

impl Node {
    /// The last connection to `peer` closed: redial its explicit address after the backoff.
    pub(super) fn redial_later(&mut self, peer: PeerId) {
        for d in &mut self.dialed {
            if d.peer == Some(peer) {
                d.next_try = Instant::now() + d.backoff;
            }
        }
    }

    /// Dials the `--peer` and `--relay` addresses that are due.
    pub(super) fn redial(&mut self) {
        let now = Instant::now();
        let mut connected: BTreeSet<PeerId> =
            self.peers.iter().filter(|(_, p)| p.connected).map(|(id, _)| *id).collect();
        connected.extend(self.reach.connected_relays());
        for d in &mut self.dialed {
            let up = d.peer.is_some_and(|p| connected.contains(&p));
            if up || d.pending.is_some() || now < d.next_try {
                continue;
            }
            let opts = DialOpts::unknown_peer_id().address(d.addr.clone()).build();
            let id = opts.connection_id();
            match self.swarm.dial(opts) {
                Ok(()) => d.pending = Some(id),
                Err(e) => {
                    warn!(addr = %d.addr, "cannot dial: {e}");
                    d.next_try = now + d.backoff;
                    d.backoff = (d.backoff * 2).min(REDIAL_MAX);
                }
            }
        }
    }
}
