//! The network side's handle on the database thread and on the catch-up server's thread:
//! each call sends a command over their channel and awaits the answer.

use crate::db::{Cmd, ServeRequest, Served};
use crate::wire::Page;
use anyhow::{anyhow, Result};
use tokio::sync::oneshot;

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

    pub(super) fn send(&self, cmd: Cmd) -> Result<()> {
        self.tx.send(cmd).map_err(|_| anyhow!("the database thread has stopped"))
    }

    pub(super) async fn vector(&self) -> Result<Vec<u8>> {
        let (t, r) = oneshot::channel();
        self.send(Cmd::Vector(t))?;
        r.await.map_err(|_| anyhow!("the database thread has stopped"))?
    }

    pub(super) async fn serve(&self, vector: Vec<u8>, max_rows: usize, max_bytes: usize) -> Result<Served> {
        let (reply, r) = oneshot::channel();
        let stopped = || anyhow!("the catch-up server thread has stopped");
        self.serve_tx.send(ServeRequest { vector, max_rows, max_bytes, reply }).map_err(|_| stopped())?;
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
