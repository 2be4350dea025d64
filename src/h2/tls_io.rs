//! An h2 connection's TLS (feature `tls`): the socket and the rustls `ServerConnection` the reactor
//! handed over, as the `AsyncRead + AsyncWrite` the h2 crate drives. No tokio-rustls: this is the whole
//! adapter, and it starts from a connection whose handshake the reactor already ran. The same adapter
//! over a `ClientConnection` is the worker's connection to a backend at `https://` (`backend_io`), which
//! runs its handshake first ([`TlsIo::handshake`]).
//!
//! * read: plaintext rustls holds first; else ciphertext the reactor read but did not feed (`raw`), else
//!   the socket, each followed by `process_new_packets`. The end is close_notify, or the socket's end
//!   (h2's framing tells whether anything was cut off).
//! * write: plaintext goes into rustls (bounded by its buffer limit, so a full buffer is backpressure),
//!   then as much TLS output as the socket takes; flush writes it all.
//! * shutdown: close_notify, then the socket's write half.
//!
//! TLS output that no write asks for (an alert, a key update answer) is also sent from `poll_read`.

use std::io::{self, Read, Write};
use std::ops::DerefMut;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use rustls::{ConnectionCommon, ServerConnection};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// What the reactor hands over with the socket of an h2 connection over TLS.
pub struct TlsHandoff {
    /// The established session (handshake done, ALPN `h2`).
    pub conn: ServerConnection,
    /// Socket bytes the reactor read but rustls did not take yet: fed before the socket is read again.
    pub raw: Vec<u8>,
    /// `Strict-Transport-Security: max-age` for this connection's responses, as configured at hand-off.
    pub hsts_max_age: Option<u64>,
}

/// `C` is the rustls connection: `ServerConnection` for a client's h2 connection, `ClientConnection` for
/// a backend's.
pub struct TlsIo<C> {
    socket: TcpStream,
    conn: C,
    raw: Vec<u8>,
    raw_pos: usize,
    socket_eof: bool,
    close_sent: bool,
}

impl<C, D> TlsIo<C>
where
    C: DerefMut<Target = ConnectionCommon<D>> + Unpin,
{
    pub fn new(socket: TcpStream, conn: C, raw: Vec<u8>) -> TlsIo<C> {
        TlsIo {
            socket,
            conn,
            raw,
            raw_pos: 0,
            socket_eof: false,
            close_sent: false,
        }
    }

    /// Writes TLS output until rustls has none left (`Ready`) or the socket is full (`Pending`, woken
    /// when it takes more).
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.conn.wants_write() {
            ready!(self.socket.poll_write_ready(cx))?;
            match self.conn.write_tls(&mut Try(&self.socket)) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(_) => {}
                // `try_write` cleared the readiness: the next `poll_write_ready` registers the waker.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Gives rustls more ciphertext: `raw` first, then one socket read. `Ready(Ok(()))` after progress
    /// (or at the socket's end).
    fn poll_feed(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.raw_pos < self.raw.len() {
            let mut rest = &self.raw[self.raw_pos..];
            let before = rest.len();
            self.conn.read_tls(&mut rest)?;
            self.raw_pos += before - rest.len();
            if self.raw_pos == self.raw.len() {
                self.raw = Vec::new();
                self.raw_pos = 0;
            }
        } else {
            loop {
                ready!(self.socket.poll_read_ready(cx))?;
                match self.conn.read_tls(&mut Try(&self.socket)) {
                    Ok(0) => {
                        self.socket_eof = true;
                        break;
                    }
                    Ok(_) => break,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
        }
        if let Err(e) = self.conn.process_new_packets() {
            // The alert rustls queued goes out if the socket takes it now; the connection ends either way.
            let _ = self.conn.write_tls(&mut Try(&self.socket));
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
        }
        Poll::Ready(Ok(()))
    }

    /// Runs the handshake to its end (a client's: the server's certificate is verified on the way), so
    /// a connection that cannot be established fails here, before any request is written to it.
    pub async fn handshake(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_handshake(cx)).await
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.poll_drain(cx))?;
            if !self.conn.is_handshaking() {
                return Poll::Ready(Ok(()));
            }
            if self.socket_eof {
                let why = "the peer closed the connection during the TLS handshake";
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::UnexpectedEof, why)));
            }
            ready!(self.poll_feed(cx))?;
        }
    }

    /// Whether an idle connection is still usable, without waiting: what the runtime already saw
    /// arrive is given to rustls (a TLS 1.3 server sends session tickets after its handshake, which are
    /// no reason to drop a connection); plaintext, close_notify, the socket's end or an error are.
    pub fn is_alive(&mut self) -> bool {
        loop {
            match self.conn.read_tls(&mut Try(&self.socket)) {
                Ok(0) => return false,
                Ok(_) => {
                    if self.conn.process_new_packets().is_err() {
                        return false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        let mut probe = [0u8; 1];
        matches!(self.conn.reader().read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

impl<C, D> AsyncRead for TlsIo<C>
where
    C: DerefMut<Target = ConnectionCommon<D>> + Unpin,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            match this.conn.reader().read(buf.initialize_unfilled()) {
                Ok(n) => {
                    // 0 is close_notify: the end of the stream, as h2 reads it.
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // The socket ended without close_notify: an end all the same.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Poll::Ready(Ok(())),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            if this.socket_eof {
                return Poll::Ready(Ok(()));
            }
            // Output nobody else would send (a `Pending` here has registered the write waker).
            if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
                return Poll::Ready(Err(e));
            }
            ready!(this.poll_feed(cx))?;
        }
    }
}

impl<C, D> AsyncWrite for TlsIo<C>
where
    C: DerefMut<Target = ConnectionCommon<D>> + Unpin,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if bufs.iter().all(|b| b.is_empty()) {
            return Poll::Ready(Ok(0));
        }
        loop {
            // One call, one set of records: h2's frame head and payload need not be separate records.
            let taken = this.conn.writer().write_vectored(bufs)?;
            let drained = this.poll_drain(cx)?;
            if taken > 0 {
                // What did not go out yet is sent by the next write or flush.
                return Poll::Ready(Ok(taken));
            }
            if drained.is_pending() {
                return Poll::Pending;
            }
            if !this.conn.wants_write() {
                // Nothing queued and still no room: rustls refuses for another reason (it failed).
                return Poll::Ready(Err(io::Error::other("TLS connection takes no more data")));
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.conn.writer().flush()?;
        this.poll_drain(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_sent {
            this.close_sent = true;
            this.conn.send_close_notify();
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.socket).poll_shutdown(cx)
    }
}

/// The socket as blocking-style `Read`/`Write` for rustls: `WouldBlock` when it is not ready (and then
/// tokio clears its readiness, so the next `poll_*_ready` waits for an event).
struct Try<'a>(&'a TcpStream);

impl Read for Try<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for Try<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
#[path = "tls_io_tests.rs"]
mod tests;
