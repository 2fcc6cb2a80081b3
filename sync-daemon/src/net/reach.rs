//! Reach beyond the LAN: the `--relay` relays (a reservation on each, so members behind
//! NATs can be dialed through it), the group's rendezvous namespace on them (register,
//! discover, dial what is found), hole punching results (DCUtR) and tries again after a
//! failure, and this node's reachability (AutoNAT v2).
//!
//! A relay is dialed like a `--peer` (dialer.rs, with backoff); once connected, the node
//! listens on `<relay>/p2p-circuit` (the reservation), registers under the namespace when
//! the reservation's address is confirmed, and discovers members every DISCOVER_EVERY.

use super::behaviour::Behaviour;
use super::Node;
use crate::status::RelayStatus;
use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::ConnectionId;
use libp2p::{autonat, dcutr, identify, relay, rendezvous, Multiaddr, PeerId, Swarm};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// How often the members registered on a relay are looked up (a member that restarted or
/// moved is found within this).
const DISCOVER_EVERY: Duration = Duration::from_secs(5);
/// A refused or lost reservation (a full relay) is asked for again after this.
const RESERVE_RETRY: Duration = Duration::from_secs(10);
/// Registration lifetime asked for (rendezvous' minimum is 2 hours); renewed at half.
const REGISTER_TTL: u64 = 2 * 3600;
/// A failed hole punch is tried again after this, doubling to PUNCH_RETRY_MAX while the
/// peer stays relayed: what failed once (addresses not all learnt yet, say, right after a
/// restart) often works the next time, and libp2p's DCUtR itself never tries again.
const PUNCH_RETRY_MIN: Duration = Duration::from_secs(10);
const PUNCH_RETRY_MAX: Duration = Duration::from_secs(600);
/// The relayed connection opened to try again is closed after this unless it is the peer's
/// last one (DCUtR gives up after three dials of at most 10 s each).
const PUNCH_CONN_KEEP: Duration = Duration::from_secs(60);

/// Hole punching to one peer, after a failure: when to try again (None: a try is under way
/// or the peer's turn), and the wait after the next failure.
struct PunchRetry {
    due: Option<Instant>,
    backoff: Duration,
}

pub(super) struct Relay {
    pub(super) addr: Multiaddr,
    pub(super) peer: PeerId,
    connected: bool,
    listener: Option<ListenerId>,
    /// When to ask again for a reservation that was refused or lost.
    reserve_due: Instant,
    reserved: bool,
    registered: bool,
    /// When to (re)register: renewal at half the lifetime, or a retry.
    register_due: Instant,
    next_discover: Instant,
    members_found: usize,
    /// A QUIC connection to the relay was asked for (its observed address is what UDP hole
    /// punching needs).
    quic_dialed: bool,
}

pub(super) struct Reach {
    pub(super) relays: Vec<Relay>,
    namespace: rendezvous::Namespace,
    /// Addresses confirmed reachable from outside (AutoNAT), relayed ones included.
    external: BTreeSet<Multiaddr>,
    /// The last AutoNAT v2 results: any success, any failure.
    probe_ok: bool,
    probe_failed: bool,
    /// Peers whose hole punch failed, while they stay relayed.
    punch: HashMap<PeerId, PunchRetry>,
    /// Relayed connections opened to try again, and when to close them.
    punch_conns: HashMap<ConnectionId, (PeerId, Instant)>,
}

fn relay_peer(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last() {
        Some(Protocol::P2p(p)) => Some(p),
        _ => None,
    }
}

pub(super) fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| p == Protocol::P2pCircuit)
}

impl Reach {
    /// `relays` were checked to end in /p2p/<id> (config.rs).
    pub(super) fn new(relays: &[Multiaddr], namespace: &str) -> Reach {
        let relays = relays
            .iter()
            .filter_map(|a| {
                Some(Relay {
                    addr: a.clone(),
                    peer: relay_peer(a)?,
                    connected: false,
                    listener: None,
                    reserve_due: Instant::now(),
                    reserved: false,
                    registered: false,
                    register_due: Instant::now(),
                    next_discover: Instant::now(),
                    members_found: 0,
                    quic_dialed: false,
                })
            })
            .collect();
        Reach {
            relays,
            // 64 hex digits and a prefix: far below rendezvous' 255-byte limit.
            namespace: rendezvous::Namespace::new(namespace.to_string()).expect("namespace below 255 bytes"),
            external: BTreeSet::new(),
            probe_ok: false,
            probe_failed: false,
            punch: HashMap::new(),
            punch_conns: HashMap::new(),
        }
    }

    /// No more hole punching tries for `peer`: a direct connection is up, or it went away.
    pub(super) fn forget_punch(&mut self, peer: &PeerId) {
        self.punch.remove(peer);
    }

    fn relay_mut(&mut self, peer: &PeerId) -> Option<&mut Relay> {
        self.relays.iter_mut().find(|r| r.peer == *peer)
    }

    pub(super) fn is_relay(&self, peer: &PeerId) -> bool {
        self.relays.iter().any(|r| r.peer == *peer)
    }

    pub(super) fn connected_relays(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.relays.iter().filter(|r| r.connected).map(|r| r.peer)
    }

    pub(super) fn reachability(&self) -> &'static str {
        if self.external.iter().any(|a| !is_relayed(a)) || self.probe_ok {
            "public"
        } else if self.probe_failed {
            "private"
        } else {
            "unknown"
        }
    }

    pub(super) fn external(&self) -> Vec<String> {
        self.external.iter().map(|a| a.to_string()).collect()
    }

    pub(super) fn status(&self) -> Vec<RelayStatus> {
        self.relays
            .iter()
            .map(|r| RelayStatus {
                address: r.addr.to_string(),
                connected: r.connected,
                reservation: r.reserved,
                registered: r.registered,
                members_found: r.members_found,
            })
            .collect()
    }
}

impl Node {
    /// A connection to a relay came up: reserve (listen on its circuit address).
    pub(super) fn relay_connected(&mut self, peer: PeerId) {
        let Some(r) = self.reach.relay_mut(&peer) else { return };
        r.connected = true;
        reserve(&mut self.swarm, r);
    }

    pub(super) fn relay_disconnected(&mut self, peer: PeerId) {
        let Some(r) = self.reach.relay_mut(&peer) else { return };
        warn!(relay = %r.addr, "lost the connection to the relay; redialing");
        r.connected = false;
        r.reserved = false;
        r.registered = false;
        r.register_due = Instant::now();
        r.quic_dialed = false;
        if let Some(id) = r.listener.take() {
            self.swarm.remove_listener(id);
        }
    }

    /// A listener closed: if it was a relay's circuit listener, reserve again when connected.
    pub(super) fn listener_closed(&mut self, id: ListenerId, reason: &Result<(), std::io::Error>) {
        for r in &mut self.reach.relays {
            if r.listener == Some(id) {
                if let Err(e) = reason {
                    warn!(relay = %r.addr, "no reservation on the relay (asking again in 10 s): {e}");
                }
                r.listener = None;
                r.reserved = false;
                r.reserve_due = Instant::now() + RESERVE_RETRY;
            }
        }
    }

    /// The relay's identify: dial it on QUIC too (the observed UDP address is what QUIC
    /// hole punching uses), once per connection.
    pub(super) fn relay_identified(&mut self, peer: PeerId, info: &identify::Info) {
        let Some(r) = self.reach.relay_mut(&peer) else { return };
        let on_quic = r.addr.iter().any(|p| matches!(p, Protocol::QuicV1));
        if r.quic_dialed || on_quic {
            return;
        }
        let quic: Vec<Multiaddr> =
            info.listen_addrs.iter().filter(|a| a.iter().any(|p| matches!(p, Protocol::QuicV1))).cloned().collect();
        if quic.is_empty() {
            return;
        }
        r.quic_dialed = true;
        let opts = DialOpts::peer_id(peer).addresses(quic).condition(PeerCondition::Always).build();
        if let Err(e) = self.swarm.dial(opts) {
            debug!(relay = %peer, "cannot dial the relay on QUIC: {e}");
        }
    }

    pub(super) fn on_relay_client(&mut self, ev: relay::client::Event) {
        match ev {
            relay::client::Event::ReservationReqAccepted { relay_peer_id, renewal, .. } => {
                if let Some(r) = self.reach.relay_mut(&relay_peer_id) {
                    if !renewal {
                        info!(relay = %r.addr, "reservation accepted: reachable through the relay");
                    }
                    r.reserved = true;
                }
            }
            other => debug!("relay client: {other:?}"),
        }
    }

    pub(super) fn on_rendezvous(&mut self, ev: rendezvous::client::Event) {
        match ev {
            rendezvous::client::Event::Registered { rendezvous_node, ttl, .. } => {
                if let Some(r) = self.reach.relay_mut(&rendezvous_node) {
                    if !r.registered {
                        info!(relay = %r.addr, "registered on the relay's rendezvous point");
                    }
                    r.registered = true;
                    r.register_due = Instant::now() + Duration::from_secs(ttl / 2);
                    r.next_discover = Instant::now();
                }
            }
            rendezvous::client::Event::RegisterFailed { rendezvous_node, error, .. } => {
                warn!(relay = %rendezvous_node, "rendezvous registration failed: {error:?}");
                if let Some(r) = self.reach.relay_mut(&rendezvous_node) {
                    r.register_due = Instant::now() + Duration::from_secs(5);
                }
            }
            rendezvous::client::Event::Discovered { rendezvous_node, registrations, .. } => {
                let me = *self.swarm.local_peer_id();
                let mut found = 0;
                for reg in registrations {
                    let peer = reg.record.peer_id();
                    if peer == me {
                        continue;
                    }
                    found += 1;
                    if self.peers.get(&peer).is_some_and(|p| p.connected) {
                        continue;
                    }
                    info!(%peer, via = %rendezvous_node, "found a member on the relay's rendezvous point; dialing");
                    let opts = DialOpts::peer_id(peer)
                        .addresses(reg.record.addresses().to_vec())
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .build();
                    if let Err(e) = self.swarm.dial(opts) {
                        debug!(%peer, "dial failed: {e}");
                    }
                }
                if let Some(r) = self.reach.relay_mut(&rendezvous_node) {
                    r.members_found = found;
                }
            }
            rendezvous::client::Event::DiscoverFailed { rendezvous_node, error, .. } => {
                warn!(relay = %rendezvous_node, "rendezvous discovery failed: {error:?}");
            }
            rendezvous::client::Event::Expired { .. } => {}
        }
    }

    pub(super) fn on_dcutr(&mut self, ev: dcutr::Event) {
        match ev.result {
            Ok(_) => {
                self.counters.holepunch_succeeded.fetch_add(1, Ordering::Relaxed);
                info!(peer = %ev.remote_peer_id, "hole punching succeeded: direct connection");
                self.reach.forget_punch(&ev.remote_peer_id);
            }
            Err(e) => {
                self.counters.holepunch_failed.fetch_add(1, Ordering::Relaxed);
                let retry = self
                    .reach
                    .punch
                    .entry(ev.remote_peer_id)
                    .or_insert(PunchRetry { due: None, backoff: PUNCH_RETRY_MIN });
                retry.due = Some(Instant::now() + retry.backoff);
                info!(peer = %ev.remote_peer_id, retry_in_s = retry.backoff.as_secs(), "hole punching failed, staying on the relay: {e}");
                retry.backoff = (retry.backoff * 2).min(PUNCH_RETRY_MAX);
            }
        }
    }

    pub(super) fn on_autonat(&mut self, ev: autonat::v2::client::Event) {
        match ev.result {
            Ok(()) => {
                self.reach.probe_ok = true;
                info!(addr = %ev.tested_addr, server = %ev.server, "reachable from outside (AutoNAT)");
            }
            Err(e) => {
                self.reach.probe_failed = true;
                debug!(addr = %ev.tested_addr, server = %ev.server, "not reachable from outside: {e}");
            }
        }
    }

    pub(super) fn external_confirmed(&mut self, addr: Multiaddr) {
        info!(%addr, "external address confirmed");
        self.reach.external.insert(addr);
    }

    pub(super) fn external_expired(&mut self, addr: &Multiaddr) {
        self.reach.external.remove(addr);
    }

    /// Every second: register where a reservation is held and the registration is due,
    /// and discover members where due.
    pub(super) fn reach_tick(&mut self) {
        let now = Instant::now();
        let ns = self.reach.namespace.clone();
        for r in &mut self.reach.relays {
            if !r.connected {
                continue;
            }
            if r.listener.is_none() && now >= r.reserve_due {
                reserve(&mut self.swarm, r);
            }
            if r.reserved && now >= r.register_due {
                // Fails until the reservation's address is confirmed; tried again next tick.
                match self.swarm.behaviour_mut().rendezvous.register(ns.clone(), r.peer, Some(REGISTER_TTL)) {
                    // Sent; retried if no answer comes.
                    Ok(()) => r.register_due = now + Duration::from_secs(30),
                    Err(e) => debug!(relay = %r.addr, "cannot register yet: {e}"),
                }
            }
            if now >= r.next_discover {
                r.next_discover = now + DISCOVER_EVERY;
                self.swarm.behaviour_mut().rendezvous.discover(Some(ns.clone()), None, None, r.peer);
            }
        }
        self.punch_tick(now);
    }

    /// Tries hole punching again where it failed and is due: a new relayed connection to the
    /// peer, on which the peer starts DCUtR (the side a relayed connection reaches starts
    /// it; so the two sides take turns, each waiting its own backoff after its failures).
    fn punch_tick(&mut self, now: Instant) {
        let over: Vec<(ConnectionId, PeerId)> =
            self.reach.punch_conns.iter().filter(|(_, (_, at))| now >= *at).map(|(id, (p, _))| (*id, *p)).collect();
        for (id, peer) in over {
            self.reach.punch_conns.remove(&id);
            let conns = self.peers.get(&peer).map(|p| &p.conns);
            if conns.is_some_and(|c| c.contains_key(&id) && c.len() > 1) {
                debug!(%peer, "closing the relayed connection of a hole punching try");
                self.swarm.close_connection(id);
            }
        }
        let due: Vec<PeerId> =
            self.reach.punch.iter().filter(|(_, r)| r.due.is_some_and(|t| now >= t)).map(|(p, _)| *p).collect();
        for peer in due {
            let relayed_only = self
                .peers
                .get(&peer)
                .is_some_and(|p| p.connected && !p.conns.is_empty() && p.conns.values().all(|relayed| *relayed));
            if !relayed_only {
                self.reach.punch.remove(&peer);
                continue;
            }
            let Some(retry) = self.reach.punch.get_mut(&peer) else { continue };
            let Some(relay) = self.reach.relays.iter().find(|r| r.connected) else {
                retry.due = Some(now + PUNCH_RETRY_MIN);
                continue;
            };
            retry.due = None;
            let circuit = relay.addr.clone().with(Protocol::P2pCircuit).with(Protocol::P2p(peer));
            let opts = DialOpts::peer_id(peer).addresses(vec![circuit]).condition(PeerCondition::Always).build();
            let id = opts.connection_id();
            match self.swarm.dial(opts) {
                Ok(()) => {
                    self.counters.holepunch_retried.fetch_add(1, Ordering::Relaxed);
                    info!(%peer, "trying hole punching again, over a new relayed connection");
                    self.reach.punch_conns.insert(id, (peer, now + PUNCH_CONN_KEEP));
                }
                Err(e) => debug!(%peer, "cannot dial through the relay to try hole punching again: {e}"),
            }
        }
    }
}

/// Asks `r` for a reservation (listens on its circuit address), unless one is asked for.
fn reserve(swarm: &mut Swarm<Behaviour>, r: &mut Relay) {
    if r.listener.is_some() {
        return;
    }
    match swarm.listen_on(r.addr.clone().with(Protocol::P2pCircuit)) {
        Ok(id) => r.listener = Some(id),
        Err(e) => {
            warn!(relay = %r.addr, "cannot ask the relay for a reservation: {e}");
            r.reserve_due = Instant::now() + RESERVE_RETRY;
        }
    }
}
