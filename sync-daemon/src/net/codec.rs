//! The catch-up protocol's codec: one length-prefixed frame each way. The bytes are a
//! sealed envelope, opened (MAC, decode) by the node so every rejection is counted in one
//! place.

use crate::wire;
use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::{request_response, StreamProtocol};

pub(super) const CATCHUP_PROTOCOL: StreamProtocol = StreamProtocol::new("/wavesync/catchup/1");
/// Largest page budget a responder grants, whatever the request asks.
pub(super) const MAX_PAGE_ROWS: u32 = 20_000;
pub(super) const MAX_PAGE_BYTES: u32 = 4 * 1024 * 1024;

#[derive(Clone, Default)]
pub struct CatchupCodec;

async fn read_frame<T: futures::AsyncRead + Unpin + Send>(io: &mut T, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > limit {
        // Checked before allocating: a hostile length costs nothing.
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds {limit}"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame<T: futures::AsyncWrite + Unpin + Send>(io: &mut T, data: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(data.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame too large"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(data).await?;
    io.close().await
}

/// A catch-up frame that was oversized (length prefix above the limit) or truncated (the
/// stream ended before the announced length): counted as a rejected catch-up message.
pub(super) fn bad_frame(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof)
}

impl request_response::Codec for CatchupCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: futures::AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        read_frame(io, wire::MAX_REQUEST_BYTES).await
    }

    async fn read_response<T: futures::AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        read_frame(io, wire::MAX_RESPONSE_BYTES).await
    }

    async fn write_request<T: futures::AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> std::io::Result<()> {
        write_frame(io, &req).await
    }

    async fn write_response<T: futures::AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> std::io::Result<()> {
        write_frame(io, &res).await
    }
}
