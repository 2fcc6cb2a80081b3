//! The network side: one libp2p swarm (TCP + Noise + Yamux) with
//! - gossipsub on the group's topic: local changesets out, remote changesets in;
//! - request-response `/wavesync/catchup/1`: version-vector catch-up in bounded pages;
//! - identify (peer addresses for status) and mDNS (LAN discovery, optional).
//!
//! Database work never runs on this task: it goes to the database thread through
//! [`DbHandle`], and results come back as [`Internal`] messages.

use crate::config::{new_private_file, Config};
use crate::db::{Cmd, Event as DbEvent, ServeRequest, Served, SiteId};
use crate::status::{self, Counters, PeerStatus, StatusFile};
use crate::wire::{self, Body, ChangeRow, Changeset, GroupKeys, Page, WireError};
use anyhow::{anyhow, Context, Result};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport, ResponseChannel};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{gossipsub, identify, mdns, noise, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm};
use std::collections::{BTreeSet, HashMap};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

const CATCHUP_PROTOCOL: StreamProtocol = StreamProtocol::new("/wavesync/catchup/1");
/// Largest page budget a responder grants, whatever the request asks.
const MAX_PAGE_ROWS: u32 = 20_000;
const MAX_PAGE_BYTES: u32 = 4 * 1024 * 1024;
/// Incomplete chunked changesets are dropped after this (catch-up fetches them instead).
const PARTIAL_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound of the memory held by incomplete chunked changesets.
const PARTIAL_MAX_BYTES: usize = 512 * 1024 * 1024;
/// Wait before a catch-up for a gap seen in gossip (the missing message may still come).
const GAP_DELAY: Duration = Duration::from_millis(500);
/// How often gaps due for a catch-up and the end of a gossip burst are looked for.
const QUICK_TICK: Duration = Duration::from_millis(250);
/// Gossip quiet for this long after a burst: one catch-up round with every peer.
const SETTLE_QUIET: Duration = Duration::from_millis(500);
const REDIAL_MIN: Duration = Duration::from_secs(1);
const REDIAL_MAX: Duration = Duration::from_secs(30);
/// Nonces of the most recent authentic gossip messages remembered to drop replays
/// (16 bytes each, twice: about 2 MiB).
const REPLAY_WINDOW: usize = 65_536;

// ---------------------------------------------------------------------------------------
// Database handle

/// The async side's handle on the database thread and the catch-up server's thread.
#[derive(Clone)]
pub struct DbHandle {
    tx: crossbeam_channel::Sender<Cmd>,
    serve_tx: crossbeam_channel::Sender<ServeRequest>,
}

impl DbHandle {
    pub fn new(tx: crossbeam_channel::Sender<Cmd>, serve_tx: crossbeam_channel::Sender<ServeRequest>) -> Self {
        DbHandle { tx, serve_tx }
    }

    fn send(&self, cmd: Cmd) -> Result<()> {
        self.tx.send(cmd).map_err(|_| anyhow!("the database thread has stopped"))
    }

    async fn vector(&self) -> Result<Vec<u8>> {
        let (t, r) = oneshot::channel();
        self.send(Cmd::Vector(t))?;
        r.await.map_err(|_| anyhow!("the database thread has stopped"))?
    }

    async fn serve(&self, vector: Vec<u8>, max_rows: usize, max_bytes: usize) -> Result<Served> {
        let (reply, r) = oneshot::channel();
        let stopped = || anyhow!("the catch-up server thread has stopped");
        self.serve_tx.send(ServeRequest { vector, max_rows, max_bytes, reply }).map_err(|_| stopped())?;
        r.await.map_err(|_| stopped())?
    }

    /// Applies `pages`. With a `base` vector, first (the database thread takes commands in
    /// order) the vector the pages will make: awaited here, before the pages are applied.
    async fn apply_pages_after(
        &self,
        base: Option<Vec<u8>>,
        pages: Vec<Page>,
    ) -> (Option<Result<Vec<u8>>>, impl std::future::Future<Output = Result<usize>>) {
        let stopped = || anyhow!("the database thread has stopped");
        let next = match base {
            Some(base) => {
                let runs = pages.iter().map(|p| (p.site, p.start, p.end)).collect();
                let (reply, r) = oneshot::channel();
                let sent = self.send(Cmd::VectorAfter { base, runs, reply });
                Some((sent, r))
            }
            None => None,
        };
        let (reply, applied) = oneshot::channel();
        let sent = self.send(Cmd::ApplyPages { pages, reply });
        let next = match next {
            Some((Ok(()), r)) => Some(r.await.map_err(|_| stopped()).and_then(|v| v)),
            Some((Err(e), _)) => Some(Err(e)),
            None => None,
        };
        let result = async move {
            sent?;
            applied.await.map_err(|_| stopped())?
        };
        (next, result)
    }
}

// ---------------------------------------------------------------------------------------
// Catch-up codec: one length-prefixed frame each way; the bytes are a sealed envelope,
// opened (MAC, decode) by the node so every rejection is counted in one place.

#[derive(Clone, Default)]
pub struct CatchupCodec;

async fn read_frame<T: futures::AsyncRead + Unpin + Send>(io: &mut T, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > limit {
        // Checked before allocating: a hostile length costs nothing.
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds {limit}"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame<T: futures::AsyncWrite + Unpin + Send>(io: &mut T, data: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(data.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame too large"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(data).await?;
    io.close().await
}

/// A catch-up frame that was oversized (length prefix above the limit) or truncated (the
/// stream ended before the announced length): counted as a rejected catch-up message.
fn bad_frame(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof)
}

impl request_response::Codec for CatchupCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: futures::AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        read_frame(io, wire::MAX_REQUEST_BYTES).await
    }

    async fn read_response<T: futures::AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        read_frame(io, wire::MAX_RESPONSE_BYTES).await
    }

    async fn write_request<T: futures::AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> std::io::Result<()> {
        write_frame(io, &req).await
    }

    async fn write_response<T: futures::AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> std::io::Result<()> {
        write_frame(io, &res).await
    }
}

// ---------------------------------------------------------------------------------------
// Behaviour

#[derive(NetworkBehaviour)]
struct Behaviour {
    gossipsub: gossipsub::Behaviour,
    catchup: request_response::Behaviour<CatchupCodec>,
    identify: identify::Behaviour,
    mdns: Toggle<mdns::tokio::Behaviour>,
}

/// Loads the node's libp2p identity from `<db>.wavesyncd-identity`, creating it on first run.
pub fn load_identity(path: &Path) -> Result<Keypair> {
    if path.exists() {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read identity {}", path.display()))?;
        return Keypair::from_protobuf_encoding(&bytes)
            .with_context(|| format!("{} is not a libp2p identity key (delete it to make a new one)", path.display()));
    }
    let kp = Keypair::generate_ed25519();
    let bytes = kp.to_protobuf_encoding().context("cannot encode the new identity")?;
    let mut f = new_private_file(path)?;
    f.write_all(&bytes).with_context(|| format!("cannot write {}", path.display()))?;
    info!(path = %path.display(), "created a new node identity");
    Ok(kp)
}

/// Gossip message ids: a hash of the content (unique: every body carries a random nonce),
/// and of author and sequence number when a sender still signs.
pub fn message_id(m: &gossipsub::Message) -> gossipsub::MessageId {
    let mut h = blake3::Hasher::new();
    if let Some(src) = &m.source {
        h.update(&src.to_bytes());
    }
    if let Some(seq) = m.sequence_number {
        h.update(&seq.to_be_bytes());
    }
    h.update(m.topic.as_str().as_bytes());
    h.update(&m.data);
    gossipsub::MessageId::from(&h.finalize().as_bytes()[..20])
}

fn build_swarm(cfg: &Config, identity: Keypair) -> Result<Swarm<Behaviour>> {
    let mdns_on = cfg.mdns;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(identity)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)?
        .with_behaviour(|key| -> Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
            let gcfg = gossipsub::ConfigBuilder::default()
                // Our chunks stay below MAX_GOSSIP_BYTES; leave room for gossipsub's framing.
                .max_transmit_size(wire::MAX_GOSSIP_BYTES + 64 * 1024)
                // Messages are not signed by gossipsub: every body is already encrypted and
                // MACed with the group key (wire.rs) and checked before it is forwarded, and an
                // ed25519 signature plus its check per message was the largest CPU cost of a
                // busy 10-peer cluster. Signed messages (older daemons) are still accepted and
                // checked; they keep author and sequence number, so their ids differ.
                .validation_mode(gossipsub::ValidationMode::Permissive)
                .message_id_fn(message_id)
                // We validate (MAC, decode) before gossipsub forwards anything.
                .validate_messages()
                .heartbeat_interval(Duration::from_millis(700))
                .build()
                .map_err(|e| format!("gossipsub config: {e}"))?;
            let gossipsub = gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, gcfg)?;
            let catchup = request_response::Behaviour::with_codec(
                CatchupCodec,
                [(CATCHUP_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(300)),
            );
            let identify = identify::Behaviour::new(identify::Config::new("/wavesync/1".into(), key.public()));
            let mdns = if mdns_on {
                Some(mdns::tokio::Behaviour::new(mdns::Config::default(), key.public().to_peer_id())?)
            } else {
                None
            };
            Ok(Behaviour { gossipsub, catchup, identify, mdns: Toggle::from(mdns) })
        })?
        // Peers stay connected while idle: changes must flow the moment they are written.
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(24 * 3600)))
        .build();
    Ok(swarm)
}

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
    addrs: BTreeSet<Multiaddr>,
    connected: bool,
    /// A catch-up request is being prepared or waits for its response.
    in_flight: bool,
    /// The vector the request in flight was made with.
    sent_vector: Option<Vec<u8>>,
    /// Catch-up responses whose pages are being applied.
    applying: u32,
    again: bool,
    they_lack: Option<u64>,
    we_lack: Option<u64>,
    last_catchup: Option<u64>,
    gap_due: Option<Instant>,
}

/// An explicit `--peer` address, redialed with backoff while not connected.
struct Dialed {
    addr: Multiaddr,
    peer: Option<PeerId>,
    pending: Option<ConnectionId>,
    next_try: Instant,
    backoff: Duration,
}

struct Partial {
    start: i64,
    parts: Vec<Option<Vec<ChangeRow>>>,
    have: u32,
    bytes: usize,
    since: Instant,
    from: PeerId,
}

struct Progress {
    bar: ProgressBar,
    done: u64,
}

struct Node {
    swarm: Swarm<Behaviour>,
    keys: GroupKeys,
    topic: gossipsub::IdentTopic,
    db: DbHandle,
    counters: Arc<Counters>,
    cfg: Config,
    site: SiteId,
    internal: mpsc::UnboundedSender<Internal>,
    peers: HashMap<PeerId, Peer>,
    dialed: Vec<Dialed>,
    partials: HashMap<(SiteId, i64), Partial>,
    partial_bytes: usize,
    /// Per origin site, the highest version received by gossip (to notice gaps).
    gossip_seen: HashMap<SiteId, i64>,
    /// Nonces of recently accepted gossip messages, oldest first (replay detection).
    nonces: std::collections::HashSet<[u8; 16]>,
    nonce_order: std::collections::VecDeque<[u8; 16]>,
    listen: Vec<String>,
    started: u64,
    last_catchup: Option<u64>,
    progress: Option<Progress>,
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

pub async fn run(
    cfg: Config,
    keys: GroupKeys,
    identity: Keypair,
    site: SiteId,
    db: DbHandle,
    mut db_events: mpsc::UnboundedReceiver<DbEvent>,
    counters: Arc<Counters>,
) -> Result<()> {
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
        dialed.push(Dialed { addr, peer: None, pending: None, next_try: Instant::now(), backoff: REDIAL_MIN });
    }
    info!(peer_id = %swarm.local_peer_id(), mdns = cfg.mdns, peers = cfg.peers.len(), "wavesyncd started");
    let (internal, mut internal_rx) = mpsc::unbounded_channel();
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
        partials: HashMap::new(),
        partial_bytes: 0,
        gossip_seen: HashMap::new(),
        nonces: std::collections::HashSet::new(),
        nonce_order: std::collections::VecDeque::new(),
        listen: Vec::new(),
        started: status::now_unix(),
        last_catchup: None,
        progress: None,
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
                let full = format!("{address}/p2p/{}", self.swarm.local_peer_id());
                info!(address = %full, "listening");
                // On stdout too, one line each, for scripts.
                println!("listening on {full}");
                let _ = std::io::stdout().flush();
                self.listen.push(full);
            }
            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, num_established, .. } => {
                let addr = endpoint.get_remote_address().clone();
                info!(peer = %peer_id, %addr, "connected");
                for d in &mut self.dialed {
                    if d.pending == Some(connection_id) {
                        d.pending = None;
                        d.peer = Some(peer_id);
                        d.backoff = REDIAL_MIN;
                    }
                }
                let p = self.peer(peer_id);
                p.connected = true;
                if endpoint.is_dialer() {
                    p.addrs.insert(addr);
                }
                if num_established.get() == 1 {
                    self.start_catchup(peer_id);
                }
            }
            // Only when the last connection to the peer closed.
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, cause, .. } => {
                info!(peer = %peer_id, cause = ?cause.map(|c| c.to_string()), "disconnected");
                let p = self.peer(peer_id);
                p.connected = false;
                p.in_flight = false;
                for d in &mut self.dialed {
                    if d.peer == Some(peer_id) {
                        d.next_try = Instant::now() + d.backoff;
                    }
                }
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
                let p = self.peer(peer_id);
                p.addrs.extend(info.listen_addrs);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, addr) in found {
                    if self.peers.get(&peer).is_some_and(|p| p.connected) {
                        continue;
                    }
                    info!(%peer, %addr, "discovered on the LAN (mDNS)");
                    if let Err(e) = self.swarm.dial(DialOpts::peer_id(peer).addresses(vec![addr]).build()) {
                        debug!(%peer, "dial failed: {e}");
                    }
                }
            }
            _ => {}
        }
    }

    /// Dials the `--peer` addresses that are due.
    fn redial(&mut self) {
        let now = Instant::now();
        let connected: BTreeSet<PeerId> = self.peers.iter().filter(|(_, p)| p.connected).map(|(id, _)| *id).collect();
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
        // Drop incomplete changesets that stopped arriving; catch-up fetches them.
        let now = Instant::now();
        let stale: Vec<(SiteId, i64)> = self
            .partials
            .iter()
            .filter(|(_, p)| now.duration_since(p.since) > PARTIAL_TIMEOUT)
            .map(|(k, _)| *k)
            .collect();
        for k in stale {
            if let Some(p) = self.partials.remove(&k) {
                self.partial_bytes = self.partial_bytes.saturating_sub(p.bytes);
                self.counters.partial_dropped.fetch_add(1, Ordering::Relaxed);
                warn!(site = %hex::encode(k.0), version = k.1, have = p.have, of = p.parts.len(), "dropped an incomplete changeset");
                self.schedule_gap(p.from);
            }
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
        if let Err(e) = status::write_status(&self.cfg.db, &self.status()) {
            warn!("cannot write the status file: {e:#}");
        }
    }

    fn status(&self) -> StatusFile {
        let mut peers: Vec<PeerStatus> = self
            .peers
            .iter()
            .map(|(id, p)| PeerStatus {
                peer_id: id.to_string(),
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
            peers,
            counters: self.counters.snapshot(),
            last_catchup_unix: self.last_catchup,
        }
    }

    // ----- gossip

    fn on_local(&mut self, ev: DbEvent) {
        let DbEvent::Local { site, start, version, rows } = ev;
        let n = rows.len();
        for cs in wire::chunk_changeset(site, start, version, rows) {
            let bytes = match self.keys.seal(&Body::Changeset(cs)) {
                Ok(b) => b,
                Err(e) => {
                    warn!(version, "cannot encode a changeset: {e}");
                    return;
                }
            };
            match self.swarm.behaviour_mut().gossipsub.publish(self.topic.clone(), bytes) {
                Ok(_) => {}
                Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                    debug!(version, "no peer to publish to (they catch up when they connect)");
                    break;
                }
                Err(e) => {
                    warn!(version, "cannot publish (peers catch up later): {e}");
                    break;
                }
            }
        }
        self.counters.published.fetch_add(1, Ordering::Relaxed);
        debug!(start, version, rows = n, "published local changes");
    }

    fn on_gossip(&mut self, ev: gossipsub::Event) {
        let (propagation_source, message_id, message) = match ev {
            gossipsub::Event::Message { propagation_source, message_id, message } => {
                (propagation_source, message_id, message)
            }
            gossipsub::Event::Subscribed { peer_id, .. } => {
                debug!(peer = %peer_id, "peer subscribed to the group topic");
                return;
            }
            _ => return,
        };
        self.counters.gossip_received.fetch_add(1, Ordering::Relaxed);
        let verdict = match self.keys.open_with_nonce(&message.data, wire::MAX_GOSSIP_BYTES) {
            Ok((nonce, Body::Changeset(cs))) => Ok((nonce, cs)),
            Ok(_) => Err(WireError::Malformed("not a changeset".into())),
            Err(e) => Err(e),
        };
        // An authentic message seen before (re-published by anyone, under a new gossipsub
        // id) is dropped: applying it again would change nothing, so it is not forwarded.
        if let Ok((nonce, _)) = &verdict {
            if self.nonces.contains(nonce) {
                self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                    &message_id,
                    &propagation_source,
                    gossipsub::MessageAcceptance::Ignore,
                );
                self.counters.gossip_replayed.fetch_add(1, Ordering::Relaxed);
                warn!(from = %propagation_source, author = ?message.source, "dropped a replayed gossip message");
                return;
            }
            self.nonces.insert(*nonce);
            self.nonce_order.push_back(*nonce);
            if self.nonce_order.len() > REPLAY_WINDOW {
                if let Some(old) = self.nonce_order.pop_front() {
                    self.nonces.remove(&old);
                }
            }
        }
        let acceptance =
            if verdict.is_ok() { gossipsub::MessageAcceptance::Accept } else { gossipsub::MessageAcceptance::Reject };
        self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
            &message_id,
            &propagation_source,
            acceptance,
        );
        match verdict {
            Ok((_, cs)) => self.on_chunk(propagation_source, cs),
            Err(e) => {
                self.counters.gossip_rejected.fetch_add(1, Ordering::Relaxed);
                warn!(from = %propagation_source, author = ?message.source, bytes = message.data.len(), "rejected gossip message: {e}");
            }
        }
    }

    fn on_chunk(&mut self, from: PeerId, cs: Changeset) {
        if cs.site == self.site {
            return;
        }
        let key = (cs.site, cs.version);
        let rows = if cs.chunks == 1 {
            cs.rows
        } else {
            let size: usize = cs.rows.iter().map(ChangeRow::approx_size).sum();
            let mismatch =
                self.partials.get(&key).is_some_and(|p| p.parts.len() != cs.chunks as usize || p.start != cs.start);
            if mismatch {
                if let Some(old) = self.partials.remove(&key) {
                    self.partial_bytes = self.partial_bytes.saturating_sub(old.bytes);
                }
            }
            self.make_room(size);
            let p = self.partials.entry(key).or_insert_with(|| Partial {
                start: cs.start,
                parts: vec![None; cs.chunks as usize],
                have: 0,
                bytes: 0,
                since: Instant::now(),
                from,
            });
            let Some(slot) = p.parts.get_mut(cs.chunk as usize) else { return };
            if slot.is_some() {
                return; // duplicate chunk
            }
            *slot = Some(cs.rows);
            p.have += 1;
            p.bytes += size;
            self.partial_bytes += size;
            if (p.have as usize) < p.parts.len() {
                return;
            }
            let Some(p) = self.partials.remove(&key) else { return };
            self.partial_bytes = self.partial_bytes.saturating_sub(p.bytes);
            p.parts.into_iter().flatten().flatten().collect()
        };
        // A gap in this origin's gossip: ask the sender for it if it is still missing soon.
        match self.gossip_seen.get(&cs.site) {
            Some(&seen) if cs.start > seen + 1 => {
                debug!(site = %hex::encode(cs.site), seen, start = cs.start, "gap in gossip");
                self.schedule_gap(from);
            }
            _ => {}
        }
        let seen = self.gossip_seen.entry(cs.site).or_insert(0);
        *seen = (*seen).max(cs.version);
        if let Err(e) = self.db.send(Cmd::ApplyVersion { site: cs.site, start: cs.start, version: cs.version, rows }) {
            warn!("{e:#}");
        }
    }

    /// Drops the oldest incomplete changesets until `size` more bytes fit.
    fn make_room(&mut self, size: usize) {
        while self.partial_bytes + size > PARTIAL_MAX_BYTES {
            let Some(oldest) = self.partials.iter().min_by_key(|(_, p)| p.since).map(|(k, _)| *k) else { break };
            if let Some(p) = self.partials.remove(&oldest) {
                self.partial_bytes = self.partial_bytes.saturating_sub(p.bytes);
                self.counters.partial_dropped.fetch_add(1, Ordering::Relaxed);
                warn!("receive buffer full: dropped an incomplete changeset (catch-up will fetch it)");
                self.schedule_gap(p.from);
            }
        }
    }

    fn schedule_gap(&mut self, peer: PeerId) {
        let p = self.peer(peer);
        if p.gap_due.is_none() {
            p.gap_due = Some(Instant::now() + GAP_DELAY);
        }
    }

    // ----- catch-up

    fn catchup_all(&mut self) {
        let ids: Vec<PeerId> = self.peers.iter().filter(|(_, p)| p.connected).map(|(id, _)| *id).collect();
        for id in ids {
            self.start_catchup(id);
        }
    }

    /// Starts a catch-up with `peer` (or asks for another round after the running one).
    fn start_catchup(&mut self, peer: PeerId) {
        let p = self.peer(peer);
        if p.in_flight || p.applying > 0 {
            p.again = true;
            return;
        }
        p.in_flight = true;
        p.again = false;
        let db = self.db.clone();
        let tx = self.internal.clone();
        tokio::spawn(async move {
            let vector = db.vector().await;
            let _ = tx.send(Internal::VectorReady { peer, vector });
        });
    }

    fn on_internal(&mut self, msg: Internal) {
        match msg {
            Internal::VectorReady { peer, vector } => {
                let connected = self.peers.get(&peer).is_some_and(|p| p.connected);
                let body = match vector {
                    Ok(vector) if connected => {
                        Body::CatchupRequest { vector, max_rows: self.cfg.page_rows, max_bytes: self.cfg.page_bytes }
                    }
                    Ok(_) => {
                        self.peer(peer).in_flight = false;
                        return;
                    }
                    Err(e) => {
                        warn!("cannot read the version vector: {e:#}");
                        let p = self.peer(peer);
                        p.in_flight = false;
                        // Try again with a new round (after the pages in hand, if this was
                        // a pipelined request).
                        p.again = true;
                        return;
                    }
                };
                match self.keys.seal(&body) {
                    Ok(bytes) => {
                        debug!(%peer, "catch-up request");
                        if let Body::CatchupRequest { vector, .. } = body {
                            self.peer(peer).sent_vector = Some(vector);
                        }
                        self.swarm.behaviour_mut().catchup.send_request(&peer, bytes);
                    }
                    Err(e) => {
                        warn!("cannot encode a catch-up request: {e}");
                        self.peer(peer).in_flight = false;
                    }
                }
            }
            Internal::Served { peer, channel, result } => match result {
                Ok(served) => {
                    let n = served.pages.len() as u64;
                    let rows: usize = served.pages.iter().map(|p| p.rows.len()).sum();
                    self.peer(peer).they_lack = Some(served.lacked_versions);
                    let body = Body::CatchupResponse {
                        pages: served.pages,
                        more: served.more,
                        remaining_versions: served.remaining_versions,
                    };
                    match self.keys.seal(&body) {
                        Ok(bytes) if bytes.len() <= wire::MAX_RESPONSE_BYTES => {
                            if n > 0 {
                                debug!(%peer, pages = n, rows, more = served.more, "catch-up response");
                            }
                            if self.swarm.behaviour_mut().catchup.send_response(channel, bytes).is_ok() {
                                self.counters.catchup_requests_served.fetch_add(1, Ordering::Relaxed);
                                self.counters.catchup_pages_sent.fetch_add(n, Ordering::Relaxed);
                            }
                        }
                        Ok(bytes) => warn!(%peer, bytes = bytes.len(), "catch-up response too large to send"),
                        Err(e) => warn!(%peer, "cannot encode a catch-up response: {e}"),
                    }
                }
                Err(e) => warn!(%peer, "cannot serve a catch-up request: {e:#}"),
            },
            Internal::PagesApplied { peer, result, versions, more, remaining, pipelined } => {
                let now = status::now_unix();
                self.last_catchup = Some(now);
                let p = self.peer(peer);
                p.applying = p.applying.saturating_sub(1);
                p.last_catchup = Some(now);
                match result {
                    Ok(rows) => {
                        p.we_lack = Some(remaining);
                        // Without a pipelined request, the next round starts now.
                        p.again |= more && !pipelined;
                        if rows > 0 {
                            info!(%peer, rows, versions, remaining_versions = remaining, "caught up");
                        }
                        self.show_progress(versions, remaining, more);
                    }
                    Err(e) => {
                        warn!(%peer, "cannot apply catch-up pages (will retry): {e:#}");
                        self.show_progress(0, 0, false);
                    }
                }
                let p = self.peer(peer);
                if p.again && !p.in_flight && p.applying == 0 {
                    self.start_catchup(peer);
                }
            }
        }
    }

    fn on_catchup(&mut self, ev: request_response::Event<Vec<u8>, Vec<u8>>) {
        use request_response::{Event, Message};
        match ev {
            Event::Message { peer, message: Message::Request { request, channel, .. }, .. } => {
                match self.keys.open(&request, wire::MAX_REQUEST_BYTES) {
                    Ok(Body::CatchupRequest { vector, max_rows, max_bytes }) => {
                        let max_rows = max_rows.clamp(1, MAX_PAGE_ROWS) as usize;
                        let max_bytes = max_bytes.clamp(1024, MAX_PAGE_BYTES) as usize;
                        let db = self.db.clone();
                        let tx = self.internal.clone();
                        tokio::spawn(async move {
                            let result = db.serve(vector, max_rows, max_bytes).await;
                            let _ = tx.send(Internal::Served { peer, channel, result });
                        });
                    }
                    // Dropping the channel closes the stream: a non-member gets nothing.
                    Ok(_) => self.reject_catchup(peer, &WireError::Malformed("not a catch-up request".into())),
                    Err(e) => self.reject_catchup(peer, &e),
                }
            }
            Event::Message { peer, message: Message::Response { response, .. }, .. } => {
                match self.keys.open(&response, wire::MAX_RESPONSE_BYTES) {
                    Ok(Body::CatchupResponse { pages, more, remaining_versions }) => {
                        self.counters.catchup_pages_received.fetch_add(pages.len() as u64, Ordering::Relaxed);
                        let versions: u64 = pages.iter().map(|p| (p.end - p.start + 1) as u64).sum();
                        let p = self.peer(peer);
                        p.applying += 1;
                        // More to come: ask for it with the vector these pages will make,
                        // so the responder reads the next pages while these are applied.
                        let base = if more && !pages.is_empty() && p.connected { p.sent_vector.take() } else { None };
                        p.in_flight = base.is_some();
                        let pipelined = base.is_some();
                        let db = self.db.clone();
                        let tx = self.internal.clone();
                        tokio::spawn(async move {
                            let (next, result) = db.apply_pages_after(base, pages).await;
                            if let Some(vector) = next {
                                let _ = tx.send(Internal::VectorReady { peer, vector });
                            }
                            let result = result.await;
                            let _ = tx.send(Internal::PagesApplied {
                                peer,
                                result,
                                versions,
                                more,
                                remaining: remaining_versions,
                                pipelined,
                            });
                        });
                    }
                    Ok(_) => {
                        self.peer(peer).in_flight = false;
                        self.reject_catchup(peer, &WireError::Malformed("not a catch-up response".into()));
                    }
                    Err(e) => {
                        self.peer(peer).in_flight = false;
                        self.reject_catchup(peer, &e);
                    }
                }
            }
            Event::OutboundFailure { peer, error, .. } => {
                self.peer(peer).in_flight = false;
                match &error {
                    request_response::OutboundFailure::Io(e) if bad_frame(e) => {
                        self.counters.catchup_rejected.fetch_add(1, Ordering::Relaxed);
                        warn!(%peer, "rejected catch-up response frame: {e}");
                    }
                    _ => debug!(%peer, "catch-up request failed: {error}"),
                }
            }
            Event::InboundFailure { peer, error, .. } => match &error {
                request_response::InboundFailure::Io(e) if bad_frame(e) => {
                    self.counters.catchup_rejected.fetch_add(1, Ordering::Relaxed);
                    warn!(%peer, "rejected catch-up request frame: {e}");
                }
                _ => debug!(%peer, "catch-up response failed: {error}"),
            },
            Event::ResponseSent { .. } => {}
        }
    }

    fn reject_catchup(&mut self, peer: PeerId, e: &WireError) {
        self.counters.catchup_rejected.fetch_add(1, Ordering::Relaxed);
        warn!(%peer, "rejected catch-up message: {e}");
    }

    /// A progress bar on a terminal while a catch-up takes more than one round.
    fn show_progress(&mut self, versions: u64, remaining: u64, more: bool) {
        if !self.tty {
            return;
        }
        if !more {
            if let Some(p) = self.progress.take() {
                p.bar.finish_and_clear();
            }
            return;
        }
        let p = self.progress.get_or_insert_with(|| {
            let bar = ProgressBar::new(0);
            if let Ok(style) = ProgressStyle::with_template("catch-up {bar:40} {pos}/{len} versions {msg}") {
                bar.set_style(style);
            }
            Progress { bar, done: 0 }
        });
        p.done += versions;
        p.bar.set_length(p.done + remaining);
        p.bar.set_position(p.done);
    }
}
