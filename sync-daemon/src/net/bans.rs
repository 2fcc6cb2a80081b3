//! Peers that keep sending messages that fail the group key's check (a stranger, or a
//! member with another key) are disconnected and refused for a while: `--ban-after` such
//! messages within STRIKE_WINDOW, then BAN_FIRST, doubling with each repeat up to BAN_MAX.
//! The block list (libp2p allow-block-list) closes the peer's connections and refuses new
//! ones until the ban ends.

use super::Node;
use crate::wire::WireError;
use libp2p::PeerId;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tracing::{info, warn};

const STRIKE_WINDOW: Duration = Duration::from_secs(60);
const BAN_FIRST: Duration = Duration::from_secs(60);
const BAN_MAX: Duration = Duration::from_secs(3600);
/// An offender's last ban is remembered this long (to double the next one); then it is
/// forgotten, so peer ids made up by the thousand do not pile up.
const REMEMBER: Duration = Duration::from_secs(24 * 3600);

#[derive(Default)]
pub(super) struct Bans {
    /// Failures of each peer since the start of its window.
    strikes: HashMap<PeerId, (Instant, u32)>,
    /// Banned peers, and until when.
    banned: HashMap<PeerId, Instant>,
    /// The length and start of each offender's last ban (kept after the ban ends, to
    /// double it).
    history: HashMap<PeerId, (Duration, Instant)>,
}

impl Bans {
    pub(super) fn banned(&self) -> Vec<String> {
        let now = Instant::now();
        let mut v: Vec<String> = self
            .banned
            .iter()
            .map(|(p, until)| format!("{p} for {}s more", until.saturating_duration_since(now).as_secs()))
            .collect();
        v.sort();
        v
    }
}

/// Whether a refused message counts against its sender: it failed the key's check or is
/// not a wavesync message at all. An unknown protocol version is a member to update, not
/// an attacker, and a cut frame may be a peer that stopped mid-answer: both are only
/// counted.
fn counts_against(e: &WireError) -> bool {
    matches!(e, WireError::BadMac | WireError::Malformed(_) | WireError::TooLarge { .. })
}

impl Node {
    /// `peer` sent a message that was refused with `e`: a strike if `e` counts against it.
    pub(super) fn strike(&mut self, peer: PeerId, e: &WireError) {
        let after = self.cfg.ban_after;
        if after == 0 || !counts_against(e) || self.bans.banned.contains_key(&peer) {
            return;
        }
        let now = Instant::now();
        let s = self.bans.strikes.entry(peer).or_insert((now, 0));
        if now.duration_since(s.0) > STRIKE_WINDOW {
            *s = (now, 0);
        }
        s.1 += 1;
        if s.1 < after {
            return;
        }
        self.bans.strikes.remove(&peer);
        let len = self.bans.history.get(&peer).map(|(d, _)| (*d * 2).min(BAN_MAX)).unwrap_or(BAN_FIRST);
        self.bans.history.insert(peer, (len, now));
        self.bans.banned.insert(peer, now + len);
        self.counters.peers_banned.fetch_add(1, Ordering::Relaxed);
        warn!(%peer, ban_s = len.as_secs(), "{after} messages failed the group key's check within a minute: disconnected and refused for a while");
        self.swarm.behaviour_mut().blocked.block_peer(peer);
    }

    /// Ends the bans that are over (every housekeeping tick).
    pub(super) fn bans_tick(&mut self) {
        let now = Instant::now();
        let over: Vec<PeerId> = self.bans.banned.iter().filter(|(_, until)| now >= **until).map(|(p, _)| *p).collect();
        for peer in over {
            self.bans.banned.remove(&peer);
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
            info!(%peer, "ban over");
        }
        self.bans.strikes.retain(|_, (start, _)| now.duration_since(*start) <= STRIKE_WINDOW);
        self.bans.history.retain(|_, (_, at)| now.duration_since(*at) <= REMEMBER);
    }
}
