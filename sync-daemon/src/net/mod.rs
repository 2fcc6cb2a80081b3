//! The network side: one libp2p swarm (TCP + Noise + Yamux) with
//! - gossipsub on the group's topic: local changesets out, remote changesets in;
//! - request-response `/wavesync/catchup/1`: version-vector catch-up in bounded pages;
//! - identify (peer addresses for status) and mDNS (LAN discovery, optional);
//! - beyond the LAN: relay reservations, rendezvous discovery, DCUtR, AutoNAT (`reach`);
//! - bans of peers whose messages keep failing the key's check (`bans`).
//!
//! Database work never runs on this task: it goes to the database thread through
//! [`DbHandle`], and results come back as [`Internal`] messages.
//!
//! This file is the node and its event loop (swarm events, ticks, status); each protocol
//! has its own file: `behaviour` (the swarm), `codec` (catch-up frames), `gossip`,
//! `reassembly` (chunked changesets), `catchup`, `resync`, `dialer` (`--peer` and
//! `--relay` redial), `reach`, `bans`, `dbhandle`.

mod bans;
mod behaviour;
mod catchup;
mod codec;
mod dbhandle;
mod dialer;
mod gossip;
mod reach;
mod reassembly;
mod resync;

pub use behaviour::load_identity;
pub use dbhandle::DbHandle;

use crate::config::Config;
use crate::db::{Event as DbEvent, Served, SiteId};
use crate::status::{self, Counters, Live, PeerStatus, Sample, StatusFile};
use crate::wire::GroupKeys;
use anyhow::{anyhow, Context, Result};
use behaviour::{build_swarm, Behaviour, BehaviourEvent};
use catchup::{CatchupState, Progress};
use dialer::{Dialed, REDIAL_MAX, REDIAL_MIN};
use futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::request_response::ResponseChannel;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::SwarmEvent;
use libp2p::{gossipsub, identify, mdns, Multiaddr, PeerId, Swarm};
use reassembly::{Reassembly, PARTIAL_MAX_BYTES, PARTIAL_TIMEOUT};
use std::collections::{BTreeSet, HashMap};
use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// Task results queued for the event loop at most.
const INTERNAL_QUEUE: usize = 1024;
/// How often gaps due for a catch-up and the end of a gossip burst are looked for.
const QUICK_TICK: Duration = Duration::from_millis(250);
/// Gossip quiet for this long after a burst: one catch-up round with every peer.
const SETTLE_QUIET: Duration = Duration::from_millis(500);

/// Returns free heap pages to the OS. glibc's malloc keeps the memory of a burst (gossip
/// buffers, catch-up pages) in its arenas after it is freed: an idle daemon stayed at
/// 70-110 MB of RSS after replicating a few million changes, and at about 20 MB after this.
fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

// ---------------------------------------------------------------------------------------
// The node

/// Results of work done off the event loop.
enum Internal {
    VectorReady {
        peer: PeerId,
        vector: Result<Vec<u8>>,
    },
    Served {
        peer: PeerId,
        channel: ResponseChannel<Vec<u8>>,
        result: Result<Served>,
    },
    ServedResync {
        peer: PeerId,
        channel: ResponseChannel<Vec<u8>>,
        result: Result<crate::db::ResyncServed>,
    },
    ResyncStarted {
        peer: PeerId,
        result: Result<()>,
    },
    ResyncApplied {
        peer: PeerId,
        result: Result<usize>,
        next: Option<(i64, i64)>,
    },
    ResyncFinished {
        peer: PeerId,
        result: Result<i64>,
    },
    /// `pipelined`: the next request went out before these pages were applied.
    PagesApplied {
        peer: PeerId,
        result: Result<usize>,
        versions: u64,
        more: bool,
        remaining: u64,
        pipelined: bool,
    },
}

#[derive(Default)]
struct Peer {
    /// Its replica's site id, from its catch-up messages.
    site: Option<SiteId>,
    addrs: BTreeSet<Multiaddr>,
    connected: bool,
    /// Open connections, and whether each goes through a relay.
    conns: HashMap<libp2p::swarm::ConnectionId, bool>,
    /// This node's catch-up with the peer.
    catchup: CatchupState,
    they_lack: Option<u64>,
    we_lack: Option<u64>,
    last_catchup: Option<u64>,
    gap_due: Option<Instant>,
}

struct Node {
    swarm: Swarm<Behaviour>,
    keys: GroupKeys,
    topic: gossipsub::IdentTopic,
    db: DbHandle,
    counters: Arc<Counters>,
    cfg: Config,
    site: SiteId,
    /// Results of tasks; bounded by the tasks that can be under way (catch-up: two
    /// responses per peer; serving: the server's queue), and tasks wait for room.
    internal: mpsc::Sender<Internal>,
    peers: HashMap<PeerId, Peer>,
    dialed: Vec<Dialed>,
    reach: reach::Reach,
    bans: bans::Bans,
    /// Chunked gossip changesets not complete yet.
    reassembly: Reassembly,
    /// Per origin site, the highest version received by gossip (to notice gaps).
    gossip_seen: HashMap<SiteId, i64>,
    /// Nonces of recently accepted gossip messages, oldest first (replay detection).
    nonces: std::collections::HashSet<crate::wire::Nonce>,
    nonce_order: std::collections::VecDeque<crate::wire::Nonce>,
    listen: Vec<String>,
    started: u64,
    last_catchup: Option<u64>,
    progress: Option<Progress>,
    /// The resync under way, and whether one is to run (behind a horizon, or cut short).
    resync: Option<resync::Resync>,
    resync_pending: bool,
    live: tokio::sync::watch::Sender<Option<Live>>,
    http: Option<String>,
    /// Rows applied and published per second, the last THROUGHPUT_SECONDS.
    throughput: std::collections::VecDeque<Sample>,
    rows_at_tick: (u64, u64),
    tty: bool,
    /// Activity seen at the last housekeeping tick, and whether memory is to be returned to
    /// the OS at the first quiet tick after it (see `release_memory`).
    activity: u64,
    trim_due: bool,
    /// Gossip received as of the last housekeeping tick, and whether some arrived since the
    /// last catch-up round: the first quiet tick after a burst runs one (see `housekeeping`).
    gossip_at_tick: u64,
    gossip_changed: Instant,
    settle_due: bool,
}

/// What the event loop starts with.
pub struct Start {
    pub cfg: Config,
    pub keys: GroupKeys,
    pub identity: Keypair,
    pub site: SiteId,
    pub db: DbHandle,
    pub db_events: mpsc::Receiver<DbEvent>,
    pub counters: Arc<Counters>,
    /// A resync was cut short: it runs again with the first peer.
    pub resync_pending: bool,
    /// Where the status goes every second for the HTTP side.
    pub live: tokio::sync::watch::Sender<Option<Live>>,
    /// The address `--http` serves on.
    pub http: Option<String>,
}

pub async fn run(start: Start) -> Result<()> {
    let Start { cfg, keys, identity, site, db, mut db_events, counters, resync_pending, live, http } = start;
    let mut swarm = build_swarm(&cfg, identity)?;
    let topic = gossipsub::IdentTopic::new(keys.topic());
    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&topic)
        .map_err(|e| anyhow!("cannot subscribe to the group topic: {e:?}"))?;
    for l in &cfg.listen {
        let addr: Multiaddr =
            l.parse().with_context(|| format!("--listen {l}: not a multiaddr (e.g. /ip4/0.0.0.0/tcp/4001)"))?;
        swarm.listen_on(addr).with_context(|| format!("cannot listen on {l}"))?;
    }
    let mut dialed = Vec::new();
    for p in &cfg.peers {
        let addr: Multiaddr =
            p.parse().with_context(|| format!("--peer {p}: not a multiaddr (e.g. /ip4/192.168.1.20/tcp/4001)"))?;
        dialed.push(Dialed::new(addr));
    }
    // Relays are dialed and redialed like --peer addresses.
    dialed.extend(cfg.relays.iter().cloned().map(Dialed::new));
    let reach = reach::Reach::new(&cfg.relays, keys.rendezvous_namespace());
    info!(peer_id = %swarm.local_peer_id(), mdns = cfg.mdns, peers = cfg.peers.len(), relays = cfg.relays.len(), "wavesyncd started");
    let (internal, mut internal_rx) = mpsc::channel(INTERNAL_QUEUE);
    let mut node = Node {
        swarm,
        keys,
        topic,
        db,
        counters,
        site,
        internal,
        peers: HashMap::new(),
        dialed,
        reach,
        bans: bans::Bans::default(),
        reassembly: Reassembly::new(PARTIAL_MAX_BYTES),
        gossip_seen: HashMap::new(),
        nonces: std::collections::HashSet::new(),
        nonce_order: std::collections::VecDeque::new(),
        listen: Vec::new(),
        started: status::now_unix(),
        last_catchup: None,
        progress: None,
        resync: None,
        resync_pending,
        live,
        http,
        throughput: std::collections::VecDeque::new(),
        rows_at_tick: (0, 0),
        tty: std::io::stderr().is_terminal(),
        activity: 0,
        trim_due: false,
        gossip_at_tick: 0,
        gossip_changed: Instant::now(),
        settle_due: false,
        cfg,
    };
    node.redial();

    let mut anti_entropy = tokio::time::interval(node.cfg.anti_entropy);
    anti_entropy.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut housekeeping = tokio::time::interval(Duration::from_secs(1));
    let mut quick = tokio::time::interval(QUICK_TICK);
    quick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            ev = node.swarm.select_next_some() => node.on_swarm(ev),
            Some(ev) = db_events.recv() => node.on_local(ev),
            Some(msg) = internal_rx.recv() => node.on_internal(msg),
            _ = anti_entropy.tick() => node.catchup_all(),
            _ = housekeeping.tick() => node.housekeeping(),
            _ = quick.tick() => node.quick_tick(),
            _ = tokio::signal::ctrl_c() => { info!("interrupted, stopping"); break; }
            _ = sigterm.recv() => { info!("terminated, stopping"); break; }
        }
    }
    if let Some(p) = node.progress.take() {
        p.bar.abandon();
    }
    let _ = std::fs::remove_file(status::status_path(&node.cfg.db));
    Ok(())
}

impl Node {
    fn peer(&mut self, id: PeerId) -> &mut Peer {
        self.peers.entry(id).or_default()
    }

    // ----- swarm events

    fn on_swarm(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                let me = *self.swarm.local_peer_id();
                // Relayed listen addresses end in /p2p/<us> already.
                let full = if address.iter().last() == Some(libp2p::multiaddr::Protocol::P2p(me)) {
                    address.to_string()
                } else {
                    format!("{address}/p2p/{me}")
                };
                info!(address = %full, "listening");
                // On stdout too, one line each, for scripts.
                println!("listening on {full}");
                let _ = std::io::stdout().flush();
                self.listen.push(full);
            }
            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, num_established, .. } => {
                let addr = endpoint.get_remote_address().clone();
                let relayed = endpoint.is_relayed();
                for d in &mut self.dialed {
                    if d.pending == Some(connection_id) {
                        d.pending = None;
                        d.peer = Some(peer_id);
                        d.backoff = REDIAL_MIN;
                    }
                }
                if self.reach.is_relay(&peer_id) {
                    info!(relay = %peer_id, %addr, "connected to the relay");
                    self.relay_connected(peer_id);
                    return;
                }
                info!(peer = %peer_id, %addr, connection = if relayed { "relayed" } else { "direct" }, "connected");
                let p = self.peer(peer_id);
                p.connected = true;
                p.conns.insert(connection_id, relayed);
                if endpoint.is_dialer() && !relayed {
                    p.addrs.insert(addr);
                }
                // A direct connection (dialed, or hole punched) replaces relayed ones: the
                // protocols use a peer's oldest connection, and the relay is the slow path.
                let relayed_conns: Vec<_> =
                    if relayed { Vec::new() } else { p.conns.iter().filter(|(_, r)| **r).map(|(id, _)| *id).collect() };
                if !relayed {
                    self.reach.forget_punch(&peer_id);
                }
                for id in relayed_conns {
                    debug!(peer = %peer_id, "closing the relayed connection: a direct one is up");
                    self.swarm.close_connection(id);
                }
                if num_established.get() == 1 {
                    self.start_catchup(peer_id);
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, connection_id, num_established, .. } if num_established > 0 => {
                if let Some(p) = self.peers.get_mut(&peer_id) {
                    p.conns.remove(&connection_id);
                }
            }
            // Only when the last connection to the peer closed.
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, cause, .. }
                if self.reach.is_relay(&peer_id) =>
            {
                debug!(relay = %peer_id, cause = ?cause.map(|c| c.to_string()), "relay disconnected");
                self.relay_disconnected(peer_id);
                self.redial_later(peer_id);
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, cause, .. } => {
                info!(peer = %peer_id, cause = ?cause.map(|c| c.to_string()), "disconnected");
                self.reach.forget_punch(&peer_id);
                let p = self.peer(peer_id);
                p.connected = false;
                p.conns.clear();
                p.catchup.request_ended();
                if self.resync.as_ref().is_some_and(|r| r.peer == peer_id) {
                    self.abort_resync("the peer disconnected");
                }
                self.redial_later(peer_id);
            }
            SwarmEvent::OutgoingConnectionError { connection_id, peer_id, error } => {
                let mut explicit = false;
                for d in &mut self.dialed {
                    if d.pending == Some(connection_id) {
                        explicit = true;
                        d.pending = None;
                        d.next_try = Instant::now() + d.backoff;
                        warn!(addr = %d.addr, retry_in_s = d.backoff.as_secs(), "cannot connect to peer: {error}");
                        d.backoff = (d.backoff * 2).min(REDIAL_MAX);
                    }
                }
                if !explicit {
                    debug!(peer = ?peer_id, "dial failed: {error}");
                }
            }
            SwarmEvent::IncomingConnectionError { send_back_addr, error, .. } => {
                debug!(addr = %send_back_addr, "incoming connection failed: {error}");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(ev)) => self.on_gossip(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Catchup(ev)) => self.on_catchup(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                if self.reach.is_relay(&peer_id) {
                    self.relay_identified(peer_id, &info);
                    return;
                }
                let p = self.peer(peer_id);
                // Relayed addresses change with reservations; they are not for dialing again.
                p.addrs.extend(info.listen_addrs.into_iter().filter(|a| !reach::is_relayed(a)));
            }
            SwarmEvent::Behaviour(BehaviourEvent::Relay(ev)) => self.on_relay_client(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Rendezvous(ev)) => self.on_rendezvous(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(ev)) => self.on_dcutr(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Autonat(ev)) => self.on_autonat(ev),
            SwarmEvent::ExternalAddrConfirmed { address } => self.external_confirmed(address),
            SwarmEvent::ExternalAddrExpired { address } => self.external_expired(&address),
            SwarmEvent::ListenerClosed { listener_id, reason, .. } => {
                debug!(?reason, "listener closed");
                self.listener_closed(listener_id, &reason);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, addr) in found {
                    if self.peers.get(&peer).is_some_and(|p| p.connected) {
                        continue;
                    }
                    info!(%peer, %addr, "discovered on the LAN (mDNS)");
                    // Both sides discover each other at the same moment and dial. From their
                    // listen ports (libp2p's default, for hole punching) the two dials meet as
                    // one TCP simultaneous open with two Noise initiators, which fails on both
                    // sides, and mDNS does not announce again for minutes: dial from a new port.
                    let opts = DialOpts::peer_id(peer).addresses(vec![addr]).allocate_new_port().build();
                    if let Err(e) = self.swarm.dial(opts) {
                        debug!(%peer, "dial failed: {e}");
                    }
                }
            }
            _ => {}
        }
    }

    /// Catch-ups that cannot wait for the next anti-entropy round: gaps seen in gossip, and
    /// the end of a burst.
    fn quick_tick(&mut self) {
        let now = Instant::now();
        let due: Vec<PeerId> = self
            .peers
            .iter_mut()
            .filter(|(_, p)| p.gap_due.is_some_and(|t| now >= t))
            .map(|(id, p)| {
                p.gap_due = None;
                *id
            })
            .collect();
        for peer in due {
            debug!(%peer, "catch-up for a gap in gossip");
            self.start_catchup(peer);
        }
        let gossip = self.counters.gossip_received.load(Ordering::Relaxed);
        // A burst of gossip just ended: ask every peer for what is still missing now rather
        // than at the next anti-entropy round. A message lost at the end of a burst leaves
        // no later message to reveal the gap, and gossipsub drops under load.
        if gossip != self.gossip_at_tick {
            self.gossip_at_tick = gossip;
            self.gossip_changed = now;
            self.settle_due = true;
        } else if self.settle_due && now.duration_since(self.gossip_changed) >= SETTLE_QUIET {
            self.settle_due = false;
            debug!("gossip went quiet: catch-up round");
            self.catchup_all();
        }
    }

    fn housekeeping(&mut self) {
        self.redial();
        self.reach_tick();
        self.bans_tick();
        // Drop incomplete changesets that stopped arriving; catch-up fetches them.
        for p in self.reassembly.expire(Instant::now(), PARTIAL_TIMEOUT) {
            self.counters.partial_dropped.fetch_add(1, Ordering::Relaxed);
            warn!(site = %hex::encode(p.site), version = p.version, have = p.have, of = p.of, "dropped an incomplete changeset");
            self.schedule_gap(p.from);
        }
        // After a burst of traffic, give the freed heap back once things are quiet.
        let c = self.counters.snapshot();
        let activity = c.gossip_received + c.published + c.catchup_pages_received + c.catchup_requests_served;
        if activity != self.activity {
            self.activity = activity;
            self.trim_due = true;
        } else if self.trim_due {
            self.trim_due = false;
            release_memory();
        }
        let st = self.status();
        if let Err(e) = status::write_status(&self.cfg.db, &st) {
            warn!("cannot write the status file: {e:#}");
        }
        let rows = (c.rows_applied, c.rows_published);
        self.throughput.push_back(Sample {
            unix: status::now_unix(),
            rows_applied: rows.0.saturating_sub(self.rows_at_tick.0),
            rows_published: rows.1.saturating_sub(self.rows_at_tick.1),
        });
        self.rows_at_tick = rows;
        while self.throughput.len() > status::THROUGHPUT_SECONDS {
            self.throughput.pop_front();
        }
        let catchup_remaining = self.peers.values().filter(|p| p.connected).filter_map(|p| p.we_lack).sum();
        self.live.send_replace(Some(Live { status: st, throughput: self.throughput.clone(), catchup_remaining }));
    }

    fn status(&self) -> StatusFile {
        let mut peers: Vec<PeerStatus> = self
            .peers
            .iter()
            .map(|(id, p)| PeerStatus {
                peer_id: id.to_string(),
                site_id: p.site.map(hex::encode),
                connection: p
                    .connected
                    .then(|| if p.conns.values().any(|relayed| !relayed) { "direct" } else { "relayed" }.to_string()),
                addresses: p.addrs.iter().map(|a| a.to_string()).collect(),
                connected: p.connected,
                they_lack_versions: p.they_lack,
                we_lack_versions: p.we_lack,
                last_catchup_unix: p.last_catchup,
            })
            .collect();
        peers.sort_by(|a, b| b.connected.cmp(&a.connected).then(a.peer_id.cmp(&b.peer_id)));
        StatusFile {
            pid: std::process::id(),
            peer_id: self.swarm.local_peer_id().to_string(),
            site_id: hex::encode(self.site),
            db: self.cfg.db.display().to_string(),
            started_unix: self.started,
            updated_unix: status::now_unix(),
            listen: self.listen.clone(),
            http: self.http.clone(),
            peers,
            counters: self.counters.snapshot(),
            last_catchup_unix: self.last_catchup,
            last_compaction_unix: match self.counters.gauges.last_compaction_unix.load(Ordering::Relaxed) {
                0 => None,
                t => Some(t as u64),
            },
            resyncing: self.resync.is_some() || self.resync_pending,
            reachability: self.reach.reachability().to_string(),
            external_addresses: self.reach.external(),
            relays: self.reach.status(),
            banned: self.bans.banned(),
        }
    }
}
