//! Catch-up with version vectors, both sides: asking a peer for what this replica lacks
//! (its vector, then pages, the next request pipelined while pages are applied), and
//! serving a peer's request from the catch-up server thread.

use super::codec::{bad_frame, MAX_PAGE_BYTES, MAX_PAGE_ROWS};
use super::{Internal, Node};
use crate::status;
use crate::wire::{self, Body, WireError};
use indicatif::{ProgressBar, ProgressStyle};
use libp2p::{request_response, PeerId};
use std::sync::atomic::Ordering;
use tracing::{debug, info, warn};

/// Where this node's catch-up with one peer stands. A request and the pages of the
/// previous response may be under way at once (the next request is pipelined while pages
/// are applied), so the request and the pages being applied are kept apart.
#[derive(Debug, Default, PartialEq)]
pub(super) struct CatchupState {
    request: Request,
    /// Responses whose pages are being applied.
    applying: u32,
    /// Another round is wanted as soon as this one is done.
    again: bool,
}

#[derive(Debug, Default, PartialEq)]
enum Request {
    #[default]
    None,
    /// This node's vector is being read (or computed for a pipelined request).
    Preparing,
    /// Sent with this vector; waiting for the response.
    Sent(Vec<u8>),
}

impl CatchupState {
    /// Starts a round if none is under way (true); otherwise asks for one after it.
    fn begin(&mut self) -> bool {
        if self.request != Request::None || self.applying > 0 {
            self.again = true;
            return false;
        }
        self.request = Request::Preparing;
        self.again = false;
        true
    }

    /// The request went out with `vector`.
    fn sent(&mut self, vector: Vec<u8>) {
        self.request = Request::Sent(vector);
    }

    /// The request will get no response: not sent, failed, refused, or the peer left.
    pub(super) fn request_ended(&mut self) {
        self.request = Request::None;
    }

    /// The vector could not be read: no request now, another round later.
    fn vector_failed(&mut self) {
        self.request = Request::None;
        self.again = true;
    }

    /// A response came and its pages go to be applied. With `pipeline`, the next request is
    /// prepared at once from the vector the previous one carried (returned).
    fn response(&mut self, pipeline: bool) -> Option<Vec<u8>> {
        self.applying += 1;
        let base = match std::mem::take(&mut self.request) {
            Request::Sent(vector) if pipeline => Some(vector),
            _ => None,
        };
        if base.is_some() {
            self.request = Request::Preparing;
        }
        base
    }

    /// One response's pages were applied; `more` asks for another round. Whether a round
    /// is to start now (nothing else under way and one is wanted).
    fn applied(&mut self, more: bool) -> bool {
        self.applying = self.applying.saturating_sub(1);
        self.again |= more;
        self.again && self.request == Request::None && self.applying == 0
    }
}

/// The progress bar of a catch-up that takes more than one round.
pub(super) struct Progress {
    pub(super) bar: ProgressBar,
    pub(super) done: u64,
}

impl Node {
    pub(super) fn catchup_all(&mut self) {
        let ids: Vec<PeerId> = self.peers.iter().filter(|(_, p)| p.connected).map(|(id, _)| *id).collect();
        for id in ids {
            self.start_catchup(id);
        }
    }

    /// Starts a catch-up with `peer` (or asks for another round after the running one).
    pub(super) fn start_catchup(&mut self, peer: PeerId) {
        if self.resync_instead(peer) {
            return;
        }
        if !self.peer(peer).catchup.begin() {
            return;
        }
        let db = self.db.clone();
        let tx = self.internal.clone();
        tokio::spawn(async move {
            let vector = db.vector().await;
            let _ = tx.send(Internal::VectorReady { peer, vector }).await;
        });
    }

    pub(super) fn on_internal(&mut self, msg: Internal) {
        match msg {
            Internal::VectorReady { peer, vector } => {
                let connected = self.peers.get(&peer).is_some_and(|p| p.connected);
                let body = match vector {
                    Ok(vector) if connected => Body::CatchupRequest {
                        site: self.site,
                        vector,
                        max_rows: self.cfg.page_rows,
                        max_bytes: self.cfg.page_bytes,
                    },
                    Ok(_) => {
                        self.peer(peer).catchup.request_ended();
                        return;
                    }
                    Err(e) => {
                        warn!("cannot read the version vector: {e:#}");
                        // Try again with a new round (after the pages in hand, if this was
                        // a pipelined request).
                        self.peer(peer).catchup.vector_failed();
                        return;
                    }
                };
                match self.keys.seal(&body) {
                    Ok(bytes) => {
                        debug!(%peer, "catch-up request");
                        if let Body::CatchupRequest { vector, .. } = body {
                            self.peer(peer).catchup.sent(vector);
                        }
                        self.swarm.behaviour_mut().catchup.send_request(&peer, bytes);
                    }
                    Err(e) => {
                        warn!("cannot encode a catch-up request: {e}");
                        self.peer(peer).catchup.request_ended();
                    }
                }
            }
            Internal::Served { peer, channel, result } => match result {
                Ok(served) => {
                    let n = served.pages.len() as u64;
                    let rows: usize = served.pages.iter().map(|p| p.rows.len()).sum();
                    self.peer(peer).they_lack = Some(served.lacked_versions);
                    let body = if served.resync_needed {
                        info!(%peer, "the peer is behind our compaction horizon: it is told to resync");
                        Body::ResyncNeeded { site: self.site, vector: served.vector }
                    } else {
                        Body::CatchupResponse {
                            site: self.site,
                            vector: served.vector,
                            pages: served.pages,
                            more: served.more,
                            remaining_versions: served.remaining_versions,
                        }
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
            Internal::ServedResync { peer, channel, result } => match result {
                Ok(s) => {
                    let n = s.rows.len();
                    let body = Body::ResyncResponse {
                        site: self.site,
                        vector: s.vector,
                        db_version: s.db_version,
                        rows: s.rows,
                        next: s.next,
                    };
                    match self.keys.seal(&body) {
                        Ok(bytes) if bytes.len() <= wire::MAX_RESPONSE_BYTES => {
                            debug!(%peer, rows = n, "resync page");
                            if self.swarm.behaviour_mut().catchup.send_response(channel, bytes).is_ok() {
                                self.counters.catchup_requests_served.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Ok(bytes) => warn!(%peer, bytes = bytes.len(), "resync page too large to send"),
                        Err(e) => warn!(%peer, "cannot encode a resync page: {e}"),
                    }
                }
                Err(e) => warn!(%peer, "cannot serve a resync request: {e:#}"),
            },
            msg @ (Internal::ResyncStarted { .. }
            | Internal::ResyncApplied { .. }
            | Internal::ResyncFinished { .. }) => self.on_resync_step(msg),
            Internal::PagesApplied { peer, result, versions, more, remaining, pipelined } => {
                let now = status::now_unix();
                self.last_catchup = Some(now);
                let p = self.peer(peer);
                p.last_catchup = Some(now);
                // Without a pipelined request, the next round starts once these are applied.
                let start_now = p.catchup.applied(result.is_ok() && more && !pipelined);
                match result {
                    Ok(rows) => {
                        p.we_lack = Some(remaining);
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
                if start_now {
                    self.start_catchup(peer);
                }
            }
        }
    }

    pub(super) fn on_catchup(&mut self, ev: request_response::Event<Vec<u8>, Vec<u8>>) {
        use request_response::{Event, Message};
        match ev {
            Event::Message { peer, message: Message::Request { request, channel, .. }, .. } => {
                match self.keys.open(&request, wire::MAX_REQUEST_BYTES) {
                    Ok(Body::CatchupRequest { site, vector, max_rows, max_bytes }) => {
                        self.peer(peer).site = Some(site);
                        self.db.peer_seen(site, vector.clone());
                        let max_rows = max_rows.clamp(1, MAX_PAGE_ROWS) as usize;
                        let max_bytes = max_bytes.clamp(1024, MAX_PAGE_BYTES) as usize;
                        let db = self.db.clone();
                        let tx = self.internal.clone();
                        tokio::spawn(async move {
                            let result = db.serve(vector, max_rows, max_bytes).await;
                            let _ = tx.send(Internal::Served { peer, channel, result }).await;
                        });
                    }
                    Ok(Body::ResyncRequest { site, after, max_rows, max_bytes }) => {
                        self.peer(peer).site = Some(site);
                        let max_rows = max_rows.clamp(1, MAX_PAGE_ROWS) as usize;
                        let max_bytes = max_bytes.clamp(1024, MAX_PAGE_BYTES) as usize;
                        let db = self.db.clone();
                        let tx = self.internal.clone();
                        tokio::spawn(async move {
                            let result = db.serve_resync(after, max_rows, max_bytes).await;
                            let _ = tx.send(Internal::ServedResync { peer, channel, result }).await;
                        });
                    }
                    // Dropping the channel closes the stream: a non-member gets nothing.
                    Ok(_) => self.reject_catchup(peer, &WireError::Malformed("not a catch-up request".into())),
                    Err(e) => self.reject_catchup(peer, &e),
                }
            }
            Event::Message { peer, message: Message::Response { response, .. }, .. } => {
                match self.keys.open(&response, wire::MAX_RESPONSE_BYTES) {
                    Ok(Body::ResyncResponse { site, vector, db_version, rows, next }) => {
                        self.peer(peer).site = Some(site);
                        self.counters.catchup_pages_received.fetch_add(1, Ordering::Relaxed);
                        self.on_resync_response(peer, vector, db_version, rows, next);
                    }
                    Ok(Body::ResyncNeeded { site, vector }) => {
                        self.peer(peer).site = Some(site);
                        self.peer(peer).catchup.request_ended();
                        self.db.peer_seen(site, vector);
                        self.begin_resync(peer, site, "behind the peer's compaction horizon");
                    }
                    Ok(Body::CatchupResponse { site, vector, pages, more, remaining_versions }) => {
                        self.peer(peer).site = Some(site);
                        self.db.peer_seen(site, vector);
                        if self.resync_pending && self.resync.is_none() {
                            // A resync cut short runs first; these pages can wait.
                            self.peer(peer).catchup.request_ended();
                            self.begin_resync(peer, site, "a resync was cut short");
                            return;
                        }
                        self.counters.catchup_pages_received.fetch_add(pages.len() as u64, Ordering::Relaxed);
                        let versions: u64 = pages.iter().map(|p| (p.end - p.start + 1) as u64).sum();
                        let p = self.peer(peer);
                        // More to come: ask for it with the vector these pages will make,
                        // so the responder reads the next pages while these are applied.
                        let base = p.catchup.response(more && !pages.is_empty() && p.connected);
                        let pipelined = base.is_some();
                        let db = self.db.clone();
                        let tx = self.internal.clone();
                        tokio::spawn(async move {
                            let (next, result) = db.apply_pages_after(base, pages).await;
                            if let Some(vector) = next {
                                let _ = tx.send(Internal::VectorReady { peer, vector }).await;
                            }
                            let result = result.await;
                            let _ = tx
                                .send(Internal::PagesApplied {
                                    peer,
                                    result,
                                    versions,
                                    more,
                                    remaining: remaining_versions,
                                    pipelined,
                                })
                                .await;
                        });
                    }
                    Ok(_) => {
                        self.peer(peer).catchup.request_ended();
                        self.reject_catchup(peer, &WireError::Malformed("not a catch-up response".into()));
                    }
                    Err(e) => {
                        self.peer(peer).catchup.request_ended();
                        self.reject_catchup(peer, &e);
                    }
                }
            }
            Event::OutboundFailure { peer, error, request_id, .. } => {
                if self.resync.as_ref().is_some_and(|r| r.request == Some(request_id)) {
                    self.abort_resync(&format!("the request failed: {error}"));
                } else {
                    self.peer(peer).catchup.request_ended();
                    // The connection it went on closed but another is up (a hole-punched
                    // connection replaced a relayed one): go on over that one now rather
                    // than at the next anti-entropy round.
                    let moved = matches!(error, request_response::OutboundFailure::ConnectionClosed);
                    if moved && self.peers.get(&peer).is_some_and(|p| p.connected) {
                        self.start_catchup(peer);
                    }
                }
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

    pub(super) fn reject_catchup(&mut self, peer: PeerId, e: &WireError) {
        self.counters.catchup_rejected.fetch_add(1, Ordering::Relaxed);
        warn!(%peer, "rejected catch-up message: {e}");
        self.strike(peer, e);
    }

    /// A progress bar on a terminal while a catch-up takes more than one round.
    pub(super) fn show_progress(&mut self, versions: u64, remaining: u64, more: bool) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_asked_for_while_one_runs_starts_when_it_is_done() {
        let mut c = CatchupState::default();
        assert!(c.begin());
        assert!(!c.begin(), "a round is under way");
        c.sent(vec![1]);
        assert_eq!(c.response(false), None);
        assert!(c.applied(false), "the second begin asked for another round");
        assert!(c.begin());
        assert!(!c.again);
    }

    #[test]
    fn a_pipelined_request_goes_out_while_pages_are_applied() {
        let mut c = CatchupState::default();
        assert!(c.begin());
        c.sent(vec![7]);
        assert_eq!(c.response(true), Some(vec![7]), "the next request starts from the sent vector");
        assert_eq!(c.request, Request::Preparing);
        c.sent(vec![8]);
        // The first pages are applied while the second request is out: nothing starts.
        assert!(!c.applied(false));
        assert_eq!(c.response(false), None);
        assert!(!c.applied(false));
        assert_eq!(c, CatchupState::default());
    }

    #[test]
    fn more_to_fetch_without_a_pipelined_request_starts_the_next_round() {
        let mut c = CatchupState::default();
        assert!(c.begin());
        c.sent(vec![1]);
        c.response(false);
        assert!(c.applied(true));
        assert!(c.begin());
    }

    #[test]
    fn a_lost_request_or_peer_leaves_nothing_under_way() {
        let mut c = CatchupState::default();
        assert!(c.begin());
        c.sent(vec![1]);
        c.request_ended();
        assert!(c.begin());
        c.vector_failed();
        assert!(c.again);
        assert!(c.begin());
    }
}
