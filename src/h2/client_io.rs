//! A client socket as the h2 crate sees it:
//! * its first bytes were already read by the reactor (to recognise the HTTP/2 preface), so reads replay
//!   those bytes first, then continue on the socket;
//! * closing is a lingering close: after the last frame (a GOAWAY) the write side is shut, and what the
//!   client still sends is read and discarded until it closes too or [`CLOSE_LINGER`] passes. Closing a
//!   socket with unread input makes the kernel send a reset, and a client that is still writing (the
//!   Rapid Reset case) would then lose the GOAWAY that says why it was cut off.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// How long a closing connection keeps reading what the client still sends.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// Most bytes discarded while lingering: a client flooding us does not get to keep us reading.
const MAX_LINGER_DISCARD: usize = 1024 * 1024;
/// Discard buffer for one read while lingering.
const DISCARD_CHUNK: usize = 4096;

pub struct ClientIo<S> {
    prefix: Vec<u8>,
    replayed: usize,
    inner: S,
    closing: Option<Closing>,
}

struct Closing {
    write_shut: bool,
    discarded: usize,
    linger: Pin<Box<Sleep>>,
}

impl<S> ClientIo<S> {
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        ClientIo {
            prefix,
            replayed: 0,
            inner,
            closing: None,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ClientIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let left = &this.prefix[this.replayed..];
        if left.is_empty() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let n = left.len().min(buf.remaining());
        buf.put_slice(&left[..n]);
        this.replayed += n;
        if this.replayed == this.prefix.len() {
            // Free the prefix: the connection may live for hours.
            this.prefix = Vec::new();
            this.replayed = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for ClientIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let closing = this.closing.get_or_insert_with(|| Closing {
            write_shut: false,
            discarded: 0,
            linger: Box::pin(tokio::time::sleep(CLOSE_LINGER)),
        });
        if !closing.write_shut {
            // A failed shutdown leaves nothing to linger for.
            if ready!(Pin::new(&mut this.inner).poll_shutdown(cx)).is_err() {
                return Poll::Ready(Ok(()));
            }
            closing.write_shut = true;
        }
        let mut scratch = [0u8; DISCARD_CHUNK];
        loop {
            if closing.linger.as_mut().poll(cx).is_ready() || closing.discarded > MAX_LINGER_DISCARD
            {
                return Poll::Ready(Ok(()));
            }
            let mut discard = ReadBuf::new(&mut scratch);
            match ready!(Pin::new(&mut this.inner).poll_read(cx, &mut discard)) {
                Ok(()) if discard.filled().is_empty() => return Poll::Ready(Ok(())),
                Ok(()) => closing.discarded += discard.filled().len(),
                Err(_) => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn the_prefix_comes_first_then_the_stream() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (ours, mut theirs) = tokio::io::duplex(64);
            let mut io = ClientIo::new(b"PRI *".to_vec(), ours);
            theirs.write_all(b" HTTP/2.0").await.unwrap();
            drop(theirs);
            let mut small = [0u8; 3];
            io.read_exact(&mut small).await.unwrap();
            assert_eq!(&small, b"PRI");
            let mut rest = Vec::new();
            io.read_to_end(&mut rest).await.unwrap();
            assert_eq!(rest, b" * HTTP/2.0");
        });
    }

    #[test]
    fn closing_reads_until_the_client_closes_too() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (ours, mut theirs) = tokio::io::duplex(64);
            let mut io = ClientIo::new(Vec::new(), ours);
            let client = async move {
                // Still writing after the server closed its side, then reading what was left for it.
                theirs.write_all(b"late frames").await.unwrap();
                let mut seen = Vec::new();
                theirs.read_to_end(&mut seen).await.unwrap();
                seen
            };
            let server = async move {
                io.write_all(b"GOAWAY").await.unwrap();
                io.shutdown().await.unwrap();
            };
            let (seen, ()) = tokio::join!(client, server);
            assert_eq!(seen, b"GOAWAY");
        });
    }

    #[test]
    fn closing_gives_up_on_a_client_that_never_closes() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (ours, _theirs) = tokio::io::duplex(64);
            let mut io = ClientIo::new(Vec::new(), ours);
            let started = std::time::Instant::now();
            io.shutdown().await.unwrap();
            let waited = started.elapsed();
            assert!(
                waited >= CLOSE_LINGER && waited < CLOSE_LINGER * 3,
                "{waited:?}"
            );
        });
    }
}
