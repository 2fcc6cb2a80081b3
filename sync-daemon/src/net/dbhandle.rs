//! The network side's handle on the database thread and on the catch-up server's thread:
//! each call sends a command over their channel and awaits the answer.

use crate::db::{Cmd, ServeRequest, Served, SERVE_QUEUE};
use crate::wire::Page;
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

    pub(super) async fn vector(&self) -> Result<Vec<u8>> {
        let (t, r) = oneshot::channel();
        self.send(Cmd::Vector(t))?;
        r.await.map_err(|_| anyhow!("the database thread has stopped"))?
    }

    pub(super) async fn serve(&self, vector: Vec<u8>, max_rows: usize, max_bytes: usize) -> Result<Served> {
        let (reply, r) = oneshot::channel();
        let stopped = || anyhow!("the catch-up server thread has stopped");
        // A request the server has no room for gets no answer; the peer asks again.
        match self.serve_tx.try_send(ServeRequest { vector, max_rows, max_bytes, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(anyhow!("the catch-up server is busy ({SERVE_QUEUE} requests queued)"))
            }
            Err(TrySendError::Disconnected(_)) => return Err(stopped()),
        }
        r.await.map_err(|_| stopped())?
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
        let cmd = || Cmd::ApplyVersion { site: [1; 16], start: 1, version: 1, rows: Vec::new() };
        assert!(matches!(db.offer(cmd()), Ok(Offered::Queued)));
        assert!(matches!(db.offer(cmd()), Ok(Offered::Full)));
        drop(rx);
        assert!(db.offer(cmd()).is_err(), "a stopped database thread is an error, not a full queue");
    }
}
