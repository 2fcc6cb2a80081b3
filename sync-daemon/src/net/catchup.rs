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

    pub(super) fn on_internal(&mut self, msg: Internal) {
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

    pub(super) fn on_catchup(&mut self, ev: request_response::Event<Vec<u8>, Vec<u8>>) {
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

    pub(super) fn reject_catchup(&mut self, peer: PeerId, e: &WireError) {
        self.counters.catchup_rejected.fetch_add(1, Ordering::Relaxed);
        warn!(%peer, "rejected catch-up message: {e}");
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
