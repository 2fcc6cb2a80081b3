//! Full resync, requester side: when a peer answers a catch-up with "you are behind my
//! compaction horizon" (its tombstones of deletes this replica never saw are gone), exact
//! catch-up cannot bring this replica level. It then asks that peer for every change it
//! holds, page by page in (db_version, seq) order, merges each page in one transaction, and
//! finishes with `wavesync_resync_finish(the peer's vector as of the first page)`, which
//! deletes the rows the peer no longer has although it saw every write that made them, and
//! marks the peer's versions applied. The database remembers that a resync is under way
//! (`db/peers.rs`): one cut short by a stop or a lost peer runs again, from the start, with
//! the next peer this node catches up with.

use super::{Internal, Node};
use crate::db::SiteId;
use crate::wire::{Body, ChangeRow};
use indicatif::{ProgressBar, ProgressStyle};
use libp2p::request_response::OutboundRequestId;
use libp2p::PeerId;
use std::time::Instant;
use tracing::{info, warn};

pub(super) struct Resync {
    pub(super) peer: PeerId,
    site: SiteId,
    /// The peer's vector with its first page: what the finish deletes against.
    vector: Option<Vec<u8>>,
    /// The request under way (to notice its failure).
    pub(super) request: Option<OutboundRequestId>,
    rows: u64,
    started: Instant,
    bar: Option<ProgressBar>,
}

impl Node {
    /// Whether a catch-up with `peer` is to be a resync instead: one is pending (cut short)
    /// and none runs. Starts it when the peer's site is known.
    pub(super) fn resync_instead(&mut self, peer: PeerId) -> bool {
        if let Some(r) = &self.resync {
            // No exact catch-up with the peer we resync from; others go on.
            return r.peer == peer;
        }
        if !self.resync_pending {
            return false;
        }
        match self.peers.get(&peer).and_then(|p| p.site) {
            Some(site) => {
                self.begin_resync(peer, site, "a resync was cut short");
                true
            }
            // Its site comes with its first catch-up response.
            None => false,
        }
    }

    pub(super) fn begin_resync(&mut self, peer: PeerId, site: SiteId, why: &str) {
        if self.resync.is_some() {
            return;
        }
        info!(%peer, site = %hex::encode(site), "{why}: full resync from this peer");
        let bar = self.tty.then(|| {
            let bar = ProgressBar::new(0);
            if let Ok(style) = ProgressStyle::with_template("resync {bar:40} {pos}/{len} versions {msg}") {
                bar.set_style(style);
            }
            bar
        });
        self.resync = Some(Resync { peer, site, vector: None, request: None, rows: 0, started: Instant::now(), bar });
        let db = self.db.clone();
        let tx = self.internal.clone();
        tokio::spawn(async move {
            let result = db.resync_begin(site).await;
            let _ = tx.send(Internal::ResyncStarted { peer, result }).await;
        });
    }

    fn request_resync_page(&mut self, peer: PeerId, after: (i64, i64)) {
        let body = Body::ResyncRequest {
            site: self.site,
            after,
            max_rows: self.cfg.page_rows,
            max_bytes: self.cfg.page_bytes,
        };
        match self.keys.seal(&body) {
            Ok(bytes) => {
                let id = self.swarm.behaviour_mut().catchup.send_request(&peer, bytes);
                if let Some(r) = &mut self.resync {
                    r.request = Some(id);
                }
            }
            Err(e) => self.abort_resync(&format!("cannot encode a resync request: {e}")),
        }
    }

    /// The resync stops here; it runs again with the next catch-up.
    pub(super) fn abort_resync(&mut self, why: &str) {
        if let Some(r) = self.resync.take() {
            warn!(peer = %r.peer, rows = r.rows, "resync interrupted (it starts again with the next catch-up): {why}");
            if let Some(bar) = r.bar {
                bar.abandon();
            }
            self.resync_pending = true;
        }
    }

    pub(super) fn on_resync_response(
        &mut self,
        peer: PeerId,
        vector: Vec<u8>,
        db_version: i64,
        rows: Vec<ChangeRow>,
        next: Option<(i64, i64)>,
    ) {
        let Some(r) = self.resync.as_mut().filter(|r| r.peer == peer) else {
            warn!(%peer, "a resync page nobody asked for: dropped");
            return;
        };
        r.request = None;
        r.vector.get_or_insert(vector);
        if let (Some(bar), Some(last)) = (&r.bar, rows.last()) {
            bar.set_length(db_version.max(0) as u64);
            bar.set_position(last.db_version.max(0) as u64);
        }
        let (db, tx, site) = (self.db.clone(), self.internal.clone(), r.site);
        tokio::spawn(async move {
            let result = db.resync_apply(site, rows).await;
            let _ = tx.send(Internal::ResyncApplied { peer, result, next }).await;
        });
    }

    pub(super) fn on_resync_step(&mut self, msg: Internal) {
        match msg {
            Internal::ResyncStarted { peer, result } => match result {
                Ok(()) => self.request_resync_page(peer, (0, -1)),
                Err(e) => self.abort_resync(&format!("cannot begin: {e:#}")),
            },
            Internal::ResyncApplied { peer, result, next } => {
                let Some(r) = self.resync.as_mut().filter(|r| r.peer == peer) else { return };
                match (result, next) {
                    (Ok(n), Some(after)) => {
                        r.rows += n as u64;
                        self.request_resync_page(peer, after);
                    }
                    (Ok(n), None) => {
                        r.rows += n as u64;
                        let vector = r.vector.clone().unwrap_or_default();
                        let (db, tx) = (self.db.clone(), self.internal.clone());
                        tokio::spawn(async move {
                            let result = db.resync_finish(vector).await;
                            let _ = tx.send(Internal::ResyncFinished { peer, result }).await;
                        });
                    }
                    (Err(e), _) => self.abort_resync(&format!("cannot apply a page: {e:#}")),
                }
            }
            Internal::ResyncFinished { peer, result } => match result {
                Ok(deleted) => {
                    if let Some(r) = self.resync.take() {
                        if let Some(bar) = r.bar {
                            bar.finish_and_clear();
                        }
                        info!(
                            %peer,
                            rows = r.rows,
                            deleted,
                            secs = r.started.elapsed().as_secs_f64(),
                            "resync done: merged every change of the peer and deleted the rows it no longer has"
                        );
                    }
                    self.resync_pending = false;
                    // Exact catch-up works again from here.
                    self.start_catchup(peer);
                }
                Err(e) => self.abort_resync(&format!("cannot finish: {e:#}")),
            },
            _ => {}
        }
    }
}
