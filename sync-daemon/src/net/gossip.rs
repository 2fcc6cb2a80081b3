//! Gossip: local changesets published on the group's topic; remote ones opened (MAC,
//! decode), checked against the replay window, put back together when chunked, and sent to
//! the database thread. A gap in an origin's versions schedules a catch-up.

use super::dbhandle::Offered;
use super::Node;
use crate::db::{Cmd, Event as DbEvent, SiteId};
use crate::wire::{self, Body, ChangeRow, Changeset, WireError};
use libp2p::{gossipsub, PeerId};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// Wait before a catch-up for a gap seen in gossip (the missing message may still come).
const GAP_DELAY: Duration = Duration::from_millis(500);
/// Nonces of the most recent authentic gossip messages remembered to drop replays
/// (24 bytes each, twice: about 3 MiB).
const REPLAY_WINDOW: usize = 65_536;

impl Node {
    pub(super) fn on_local(&mut self, ev: DbEvent) {
        let DbEvent::Local { site, start, version, rows, noticed } = ev;
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
        crate::metrics::observe(&self.counters.latency.commit_to_publish, noticed.elapsed());
        debug!(start, version, rows = n, "published local changes");
    }

    pub(super) fn on_gossip(&mut self, ev: gossipsub::Event) {
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
                self.strike(propagation_source, &e);
            }
        }
    }

    pub(super) fn on_chunk(&mut self, from: PeerId, cs: Changeset) {
        if cs.site == self.site {
            return;
        }
        let (site, start, version) = (cs.site, cs.start, cs.version);
        let rows = if cs.chunks == 1 {
            cs.rows
        } else {
            let added = self.reassembly.add(from, cs, Instant::now());
            for sender in added.dropped {
                self.counters.partial_dropped.fetch_add(1, Ordering::Relaxed);
                warn!("receive buffer full: dropped an incomplete changeset (catch-up will fetch it)");
                self.schedule_gap(sender);
            }
            match added.rows {
                Some(rows) => rows,
                None => return,
            }
        };
        self.apply_gossip(from, site, start, version, rows);
    }

    /// Sends a whole changeset to the database thread; a gap before it in this origin's
    /// gossip schedules a catch-up with the sender.
    fn apply_gossip(&mut self, from: PeerId, site: SiteId, start: i64, version: i64, rows: Vec<ChangeRow>) {
        // A gap in this origin's gossip: ask the sender for it if it is still missing soon.
        match self.gossip_seen.get(&site) {
            Some(&seen) if start > seen + 1 => {
                debug!(site = %hex::encode(site), seen, start, "gap in gossip");
                self.schedule_gap(from);
            }
            _ => {}
        }
        let seen = self.gossip_seen.entry(site).or_insert(0);
        *seen = (*seen).max(version);
        match self.db.offer(Cmd::ApplyVersion { site, start, version, rows, received: std::time::Instant::now() }) {
            Ok(Offered::Queued) => {}
            Ok(Offered::Full) => {
                self.counters.gossip_dropped_busy.fetch_add(1, Ordering::Relaxed);
                debug!(site = %hex::encode(site), version, "database queue full: changeset dropped (catch-up fetches it)");
                self.schedule_gap(from);
            }
            Err(e) => warn!("{e:#}"),
        }
    }

    pub(super) fn schedule_gap(&mut self, peer: PeerId) {
        let p = self.peer(peer);
        if p.gap_due.is_none() {
            p.gap_due = Some(Instant::now() + GAP_DELAY);
        }
    }
}
