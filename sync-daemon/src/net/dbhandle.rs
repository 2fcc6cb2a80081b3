//! The network side's handle on the database thread and on the catch-up server's thread:
//! each call sends a command over their channel and awaits the answer.

use crate::db::{Cmd, DbReport, ResyncServed, ServeRequest, Served, SiteId, SERVE_QUEUE};
use crate::wire::{ChangeRow, Page};
use anyhow::{anyhow, Result};
use crossbeam_channel::TrySendError;
use tokio::sync::oneshot;

/// The async side's handle on the database thread and the catch-up server's thread.
/// What became of a gossip changeset offered to the database thread.
pub(super) enum Offered {
    Queued,
    Full,
}

#[derive(Clone)]
pub struct DbHandle {
    tx: crossbeam_channel::Sender<Cmd>,
    serve_tx: crossbeam_channel::Sender<ServeRequest>,
}

impl DbHandle {
    pub fn new(tx: crossbeam_channel::Sender<Cmd>, serve_tx: crossbeam_channel::Sender<ServeRequest>) -> Self {
        DbHandle { tx, serve_tx }
    }

    /// Queues a catch-up command, waiting for room: catch-up is pushed back while the
    /// database thread is behind (at most two responses per peer are held anyway).
    pub(super) fn send(&self, cmd: Cmd) -> Result<()> {
        let stopped = || anyhow!("the database thread has stopped");
        match self.tx.try_send(cmd) {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(_)) => Err(stopped()),
            // Full: wait off the async workers' hands.
            Err(TrySendError::Full(cmd)) => tokio::task::block_in_place(|| self.tx.send(cmd)).map_err(|_| stopped()),
        }
    }

    /// Queues a gossip changeset, or gives it back when the queue is full: the caller drops
    /// it and lets catch-up fetch it, so a burst costs bounded memory.
    pub(super) fn offer(&self, cmd: Cmd) -> Result<Offered> {
        match self.tx.try_send(cmd) {
            Ok(()) => Ok(Offered::Queued),
            Err(TrySendError::Full(_)) => Ok(Offered::Full),
            Err(TrySendError::Disconnected(_)) => Err(anyhow!("the database thread has stopped")),
        }
    }

    /// Sends `make(reply)` to the database thread and awaits the answer.
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Cmd) -> Result<T> {
        let (t, r) = oneshot::channel();
        self.send(make(t))?;
        r.await.map_err(|_| anyhow!("the database thread has stopped"))?
    }

    pub(super) async fn vector(&self) -> Result<Vec<u8>> {
        self.ask(Cmd::Vector).await
    }

    /// Remembers a peer's vector (for compaction); dropped when the queue is full (the
    /// peer's next catch-up message brings it again).
    pub(super) fn peer_seen(&self, site: SiteId, vector: Vec<u8>) {
        let _ = self.offer(Cmd::PeerSeen { site, vector });
    }

    pub(super) async fn resync_begin(&self, from: SiteId) -> Result<()> {
        self.ask(|reply| Cmd::ResyncBegin { from, reply }).await
    }

    pub(super) async fn resync_apply(&self, from: SiteId, rows: Vec<ChangeRow>) -> Result<usize> {
        self.ask(|reply| Cmd::ResyncApply { from, rows, reply }).await
    }

    pub(super) async fn resync_finish(&self, vector: Vec<u8>) -> Result<i64> {
        self.ask(|reply| Cmd::ResyncFinish { vector, reply }).await
    }

    pub async fn report(&self) -> Result<DbReport> {
        self.ask(Cmd::Report).await
    }

    /// Whether the database thread answers within `within`.
    pub async fn ping(&self, within: std::time::Duration) -> Result<()> {
        let (t, r) = oneshot::channel();
        // Not `send`: a full queue is an answer too ("busy"), and this must not wait.
        self.tx.try_send(Cmd::Ping(t)).map_err(|e| match e {
            TrySendError::Full(_) => anyhow!("the database thread's queue is full"),
            TrySendError::Disconnected(_) => anyhow!("the database thread has stopped"),
        })?;
        match tokio::time::timeout(within, r).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(anyhow!("the database thread has stopped")),
            Err(_) => Err(anyhow!("the database thread did not answer within {} ms", within.as_millis())),
        }
    }

    /// Commands waiting for the database thread.
    pub fn queued(&self) -> usize {
        self.tx.len()
    }

    /// Queues a request for the catch-up server; one it has no room for gets no answer
    /// (the peer asks again).
    fn serve_request(&self, req: ServeRequest) -> Result<()> {
        match self.serve_tx.try_send(req) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(anyhow!("the catch-up server is busy ({SERVE_QUEUE} requests queued)")),
            Err(TrySendError::Disconnected(_)) => Err(anyhow!("the catch-up server thread has stopped")),
        }
    }

    pub(super) async fn serve(&self, vector: Vec<u8>, max_rows: usize, max_bytes: usize) -> Result<Served> {
        let (reply, r) = oneshot::channel();
        self.serve_request(ServeRequest::Catchup { vector, max_rows, max_bytes, reply })?;
        r.await.map_err(|_| anyhow!("the catch-up server thread has stopped"))?
    }

    pub(super) async fn serve_resync(
        &self,
        after: (i64, i64),
        max_rows: usize,
        max_bytes: usize,
    ) -> Result<ResyncServed> {
        let (reply, r) = oneshot::channel();
        self.serve_request(ServeRequest::Resync { after, max_rows, max_bytes, reply })?;
        r.await.map_err(|_| anyhow!("the catch-up server thread has stopped"))?
    }

    /// Applies `pages`. With a `base` vector, first (the database thread takes commands in
    /// order) the vector the pages will make: awaited here, before the pages are applied.
    pub(super) async fn apply_pages_after(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gossip_offered_to_a_full_queue_comes_back_and_nothing_waits() {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let (serve_tx, _serve_rx) = crossbeam_channel::bounded(1);
        let db = DbHandle::new(tx, serve_tx);
        let cmd = || Cmd::ApplyVersion {
            site: [1; 16],
            start: 1,
            version: 1,
            rows: Vec::new(),
            received: std::time::Instant::now(),
        };
        assert!(matches!(db.offer(cmd()), Ok(Offered::Queued)));
        assert!(matches!(db.offer(cmd()), Ok(Offered::Full)));
        drop(rx);
        assert!(db.offer(cmd()).is_err(), "a stopped database thread is an error, not a full queue");
    }
}
