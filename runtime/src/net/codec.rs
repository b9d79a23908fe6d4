//! The request-response codec: length-prefixed frames with hard size limits, and the ack.
//!
//! A request is one frame: a 4-byte big-endian length, then that many bytes (a CBOR
//! [`Envelope`](super::Envelope), decoded later by the event loop so that a malformed one can be
//! answered with a typed rejection). A response is one frame holding a CBOR [`Ack`].
//!
//! The length is checked against the limit **before** any buffer is allocated: a peer that
//! announces a 3 GiB frame gets its stream closed after 4 bytes (STYLE.md 8, "bound everything").
//! The buffer then grows only as bytes actually arrive.

use std::io;

use futures::prelude::*;
use libp2p::StreamProtocol;
use serde::{Deserialize, Serialize};

/// The protocol name of SECO's message exchange (request-response over one Yamux stream).
pub const MESSAGE_PROTOCOL: StreamProtocol = StreamProtocol::new("/seco/msg/1");

/// Default largest request frame (one envelope, i.e. one chunk plus framing): 4 MiB.
pub const DEFAULT_MAX_FRAME: usize = 4 * 1024 * 1024;

/// Largest response frame: an ack is a few bytes.
pub const MAX_ACK_FRAME: usize = 1024;

/// An encoded request frame body (the CBOR envelope bytes, without the length prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame(pub Vec<u8>);

/// The answer to every request: the application protocol is message-based, so a response only
/// says whether the message was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ack {
    /// The message (or chunk) was accepted; for a whole message, the receiving application
    /// acknowledged it (see [`Reply`](super::Reply)).
    Accepted,
    /// The message was refused; the sender gets this as an error.
    Rejected(Reject),
}

/// Why a receiver refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum Reject {
    /// The envelope did not decode (garbage, bad version, bad chunk header).
    #[error("malformed envelope")]
    Malformed,
    /// The message is larger than the receiver accepts.
    #[error("message too large")]
    TooLarge,
    /// The receiver's event queue is full; the sender may retry later.
    #[error("receiver busy")]
    Busy,
    /// Reassembly buffers for this peer, this session or all peers together are full.
    #[error("reassembly buffer full")]
    BufferFull,
    /// The application dropped the message without acknowledging it.
    #[error("dropped by the application")]
    Dropped,
    /// The application refused the message with its own code.
    #[error("refused by the application (code {0})")]
    Application(u16),
}

/// Error carried inside `io::Error` when a frame is refused by the codec.
#[derive(Debug, thiserror::Error)]
#[error("frame of {len} bytes exceeds the limit of {max} bytes")]
pub struct FrameTooLarge {
    /// Announced length.
    pub len: u64,
    /// Limit.
    pub max: usize,
}

/// Length-prefixed frame codec with explicit limits.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    /// Largest request frame accepted or sent.
    max_request: usize,
}

impl FrameCodec {
    /// A codec refusing request frames above `max_request` bytes.
    pub fn new(max_request: usize) -> Self {
        Self { max_request }
    }
}

/// Reads one frame of at most `max` bytes, refusing a larger announced length before allocating.
pub async fn read_frame<T: AsyncRead + Unpin>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u64::from(u32::from_be_bytes(len));
    if len > max as u64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            FrameTooLarge { len, max },
        ));
    }
    // `len <= max` fits in usize; grow with the data, never trust the announced length up front.
    let mut buf = Vec::with_capacity((len as usize).min(64 * 1024));
    io.take(len).read_to_end(&mut buf).await?;
    if buf.len() as u64 != len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(buf)
}

/// Writes one frame; refuses (without writing) a body above `max` bytes.
pub async fn write_frame<T: AsyncWrite + Unpin>(
    io: &mut T,
    body: &[u8],
    max: usize,
) -> io::Result<()> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&l| l as usize <= max)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                FrameTooLarge {
                    len: body.len() as u64,
                    max,
                },
            )
        })?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(body).await?;
    io.flush().await
}

impl libp2p::request_response::Codec for FrameCodec {
    type Protocol = StreamProtocol;
    type Request = Frame;
    type Response = Ack;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Frame>
    where
        T: AsyncRead + Unpin + Send,
    {
        let frame = read_frame(io, self.max_request).await;
        if let Err(e) = &frame {
            if let Some(too_large) = e.get_ref().and_then(|e| e.downcast_ref::<FrameTooLarge>()) {
                // libp2p reports codec failures of unknown requests at debug level only.
                tracing::warn!(%too_large, "refusing an oversized request frame");
            }
        }
        frame.map(Frame)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Ack>
    where
        T: AsyncRead + Unpin + Send,
    {
        let body = read_frame(io, MAX_ACK_FRAME).await?;
        ciborium::from_reader(body.as_slice())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Frame,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req.0, self.max_request).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        ack: Ack,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let mut body = Vec::new();
        ciborium::into_writer(&ack, &mut body).map_err(|e| io::Error::other(e.to_string()))?;
        write_frame(io, &body, MAX_ACK_FRAME).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A reader that counts how many bytes were pulled from it.
    struct Counting<R> {
        inner: R,
        read: usize,
    }

    impl<R: AsyncRead + Unpin> AsyncRead for Counting<R> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let this = &mut *self;
            let r = Pin::new(&mut this.inner).poll_read(cx, buf);
            if let Poll::Ready(Ok(n)) = r {
                this.read += n;
            }
            r
        }
    }

    #[test]
    fn oversized_frame_refused_after_header() {
        futures::executor::block_on(async {
            let mut bytes = u32::MAX.to_be_bytes().to_vec();
            bytes.extend_from_slice(&[0u8; 100]);
            let mut r = Counting {
                inner: Cursor::new(bytes),
                read: 0,
            };
            let err = read_frame(&mut r, DEFAULT_MAX_FRAME).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert!(err
                .get_ref()
                .and_then(|e| e.downcast_ref::<FrameTooLarge>())
                .is_some());
            assert_eq!(r.read, 4, "only the length prefix may be read");
        });
    }

    #[test]
    fn truncated_frame_is_eof() {
        futures::executor::block_on(async {
            let mut bytes = 10u32.to_be_bytes().to_vec();
            bytes.extend_from_slice(&[1, 2, 3]);
            let err = read_frame(&mut Cursor::new(bytes), 100).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        });
    }

    #[test]
    fn frame_roundtrip_and_write_limit() {
        futures::executor::block_on(async {
            let mut out = Cursor::new(Vec::new());
            write_frame(&mut out, b"hello", 10).await.unwrap();
            let got = read_frame(&mut Cursor::new(out.into_inner()), 10)
                .await
                .unwrap();
            assert_eq!(got, b"hello");
            let mut out = Cursor::new(Vec::new());
            assert!(write_frame(&mut out, &[0; 11], 10).await.is_err());
            assert!(out.into_inner().is_empty());
        });
    }
}
