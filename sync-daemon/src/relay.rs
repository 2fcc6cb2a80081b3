//! `wavesyncd relay`: a node for a small public server that lets members behind NATs reach
//! each other. It runs libp2p circuit relay v2 (server), rendezvous (server), identify and
//! AutoNAT v2 (server). It has no group key and no database and stores nothing: it forwards
//! Noise-encrypted streams, whose wavesync bodies are sealed with the group key besides.

use crate::cli::RelayArgs;
use crate::net::load_identity;
use anyhow::{Context, Result};
use futures::StreamExt;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{autonat, connection_limits, identify, noise, relay, rendezvous, tcp, yamux, Multiaddr};
use std::io::Write;
use std::time::Duration;
use tracing::{debug, info, warn};

/// The relay's limits, resolved from the flags.
pub struct Limits {
    pub max_reservations: usize,
    pub max_circuits: usize,
    pub max_circuit_duration: Duration,
    pub max_circuit_bytes: u64,
    pub max_connections: u32,
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    limits: connection_limits::Behaviour,
    relay: relay::Behaviour,
    rendezvous: rendezvous::server::Behaviour,
    identify: identify::Behaviour,
    autonat: autonat::v2::server::Behaviour,
}

impl Limits {
    fn from_args(args: &RelayArgs) -> Result<Limits> {
        let duration = humantime::parse_duration(&args.max_circuit_duration).with_context(|| {
            format!("--max-circuit-duration {}: not a duration (e.g. 1h)", args.max_circuit_duration)
        })?;
        Ok(Limits {
            max_reservations: args.max_reservations,
            max_circuits: args.max_circuits,
            max_circuit_duration: duration,
            max_circuit_bytes: args.max_circuit_mib.saturating_mul(1 << 20),
            max_connections: args.max_connections,
        })
    }

    fn relay_config(&self) -> relay::Config {
        relay::Config {
            max_reservations: self.max_reservations,
            // A member holds one reservation per transport it reaches the relay on.
            max_reservations_per_peer: 4,
            reservation_duration: Duration::from_secs(3600),
            max_circuits: self.max_circuits,
            max_circuits_per_peer: 8,
            // relay v2's defaults (2 minutes, 128 KiB) cut a relayed catch-up short.
            max_circuit_duration: self.max_circuit_duration,
            max_circuit_bytes: self.max_circuit_bytes,
            ..relay::Config::default()
        }
    }
}

pub fn command(args: RelayArgs) -> Result<()> {
    let limits = Limits::from_args(&args)?;
    let external: Vec<Multiaddr> = args
        .external
        .iter()
        .map(|a| a.parse().with_context(|| format!("--external {a}: not a multiaddr (e.g. /ip4/203.0.113.7/tcp/4001)")))
        .collect::<Result<_>>()?;
    let identity = load_identity(&args.identity)?;
    let listen: Vec<Multiaddr> = if args.listen.is_empty() {
        vec!["/ip4/0.0.0.0/tcp/4001".parse()?, "/ip4/0.0.0.0/udp/4001/quic-v1".parse()?]
    } else {
        args.listen
            .iter()
            .map(|l| l.parse().with_context(|| format!("--listen {l}: not a multiaddr (e.g. /ip4/0.0.0.0/tcp/4001)")))
            .collect::<Result<_>>()?
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(identity, listen, external, limits))
}

async fn serve(
    identity: libp2p::identity::Keypair,
    listen: Vec<Multiaddr>,
    external: Vec<Multiaddr>,
    limits: Limits,
) -> Result<()> {
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(identity)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)?
        .with_quic()
        .with_behaviour(|key| Behaviour {
            limits: connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    .with_max_established(Some(limits.max_connections))
                    .with_max_pending_incoming(Some(128))
                    .with_max_established_per_peer(Some(8)),
            ),
            relay: relay::Behaviour::new(key.public().to_peer_id(), limits.relay_config()),
            rendezvous: rendezvous::server::Behaviour::new(
                rendezvous::server::Config::default().with_max_registration_per_peer(4),
            ),
            identify: identify::Behaviour::new(identify::Config::new("/wavesync-relay/1".into(), key.public())),
            autonat: autonat::v2::server::Behaviour::default(),
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    // relay v2 advertises itself only once it has a confirmed external address; whoever
    // runs `wavesyncd relay` put it where members can reach it.
    swarm.behaviour_mut().relay.set_status(Some(relay::Status::Enable));
    // A reservation carries the relay's addresses: the ones given, else the listen ones.
    let announce_listen = external.is_empty();
    for a in external {
        swarm.add_external_address(a);
    }
    for addr in listen {
        swarm.listen_on(addr.clone()).with_context(|| format!("cannot listen on {addr}"))?;
    }
    info!(peer_id = %swarm.local_peer_id(), "wavesyncd relay started");
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            ev = swarm.select_next_some() => on_event(&mut swarm, ev, announce_listen),
            _ = tokio::signal::ctrl_c() => { info!("interrupted, stopping"); break; }
            _ = sigterm.recv() => { info!("terminated, stopping"); break; }
        }
    }
    Ok(())
}

fn on_event(swarm: &mut libp2p::Swarm<Behaviour>, ev: SwarmEvent<BehaviourEvent>, announce_listen: bool) {
    match ev {
        SwarmEvent::NewListenAddr { address, .. } => {
            let full = format!("{address}/p2p/{}", swarm.local_peer_id());
            info!(address = %full, "listening");
            println!("listening on {full}");
            let _ = std::io::stdout().flush();
            if announce_listen {
                swarm.add_external_address(address);
            }
        }
        SwarmEvent::Behaviour(BehaviourEvent::Relay(ev)) => match ev {
            relay::Event::ReservationReqAccepted { src_peer_id, renewed, .. } => {
                info!(peer = %src_peer_id, renewed, "reservation accepted")
            }
            relay::Event::ReservationTimedOut { src_peer_id } => info!(peer = %src_peer_id, "reservation expired"),
            relay::Event::CircuitReqAccepted { src_peer_id, dst_peer_id } => {
                info!(src = %src_peer_id, dst = %dst_peer_id, "circuit opened")
            }
            relay::Event::CircuitClosed { src_peer_id, dst_peer_id, error } => {
                info!(src = %src_peer_id, dst = %dst_peer_id, error = ?error.map(|e| e.to_string()), "circuit closed")
            }
            relay::Event::ReservationReqDenied { src_peer_id, .. } => {
                warn!(peer = %src_peer_id, "reservation denied (limit reached)")
            }
            relay::Event::CircuitReqDenied { src_peer_id, dst_peer_id, .. } => {
                warn!(src = %src_peer_id, dst = %dst_peer_id, "circuit denied (limit reached or no reservation)")
            }
            other => debug!("relay: {other:?}"),
        },
        SwarmEvent::Behaviour(BehaviourEvent::Rendezvous(ev)) => match ev {
            rendezvous::server::Event::PeerRegistered { peer, registration } => {
                info!(%peer, addresses = registration.record.addresses().len(), "registered")
            }
            other => debug!("rendezvous: {other:?}"),
        },
        SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => {
            debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "connected")
        }
        SwarmEvent::IncomingConnectionError { send_back_addr, error, .. } => {
            debug!(addr = %send_back_addr, "incoming connection failed: {error}")
        }
        _ => {}
    }
}
