//! The node's libp2p behaviour (gossipsub, the catch-up request-response protocol,
//! identify, optional mDNS; for reach beyond the LAN: relay client, DCUtR hole punching,
//! rendezvous client, AutoNAT v2 client; a block list for banned peers), its identity, and
//! the swarm built from them (TCP and QUIC, and relayed connections).

use super::codec::{CatchupCodec, CATCHUP_PROTOCOL};
use crate::config::{new_private_file, Config};
use crate::wire;
use anyhow::{Context, Result};
use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    allow_block_list, autonat, connection_limits, dcutr, gossipsub, identify, mdns, noise, relay, rendezvous, tcp,
    yamux, Swarm,
};
use std::io::Write;
use std::path::Path;
use std::time::Duration;
use tracing::info;

/// Connections accepted at most: a group is a handful of devices, so these bound what a
/// stranger (or a flood of dials) can make the node hold, far above any real need.
const MAX_ESTABLISHED: u32 = 256;
const MAX_PENDING_INCOMING: u32 = 64;
const MAX_PER_PEER: u32 = 4;

#[derive(NetworkBehaviour)]
pub(super) struct Behaviour {
    pub(super) limits: connection_limits::Behaviour,
    pub(super) blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub(super) gossipsub: gossipsub::Behaviour,
    pub(super) catchup: request_response::Behaviour<CatchupCodec>,
    pub(super) identify: identify::Behaviour,
    pub(super) mdns: Toggle<mdns::tokio::Behaviour>,
    pub(super) relay: relay::client::Behaviour,
    pub(super) dcutr: dcutr::Behaviour,
    pub(super) rendezvous: rendezvous::client::Behaviour,
    pub(super) autonat: autonat::v2::client::Behaviour,
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

pub(super) fn build_swarm(cfg: &Config, identity: Keypair) -> Result<Swarm<Behaviour>> {
    let mdns_on = cfg.mdns;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(identity)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)?
        .with_quic()
        .with_relay_client(noise::Config::new, yamux::Config::default)?
        .with_behaviour(|key, relay| -> Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
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
            let limits = connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    .with_max_established(Some(MAX_ESTABLISHED))
                    .with_max_pending_incoming(Some(MAX_PENDING_INCOMING))
                    .with_max_established_per_peer(Some(MAX_PER_PEER)),
            );
            let peer_id = key.public().to_peer_id();
            Ok(Behaviour {
                limits,
                blocked: Default::default(),
                gossipsub,
                catchup,
                identify,
                mdns: Toggle::from(mdns),
                relay,
                dcutr: dcutr::Behaviour::new(peer_id),
                rendezvous: rendezvous::client::Behaviour::new(key.clone()),
                autonat: autonat::v2::client::Behaviour::default(),
            })
        })?
        // Peers stay connected while idle: changes must flow the moment they are written.
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(24 * 3600)))
        .build();
    Ok(swarm)
}
