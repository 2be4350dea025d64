//! The client's socket and everything known about it: its transport (the socket, its edge-triggered
//! readiness, reads into the session's buffer, writes, the half-close), its registration with the poll,
//! and the hand-off of the bare socket to the h2 worker.
//!
//! Nothing else touches the client socket, so the transport changes here alone without the phases
//! noticing: a connection from the HTTPS listener keeps its TLS state beside the socket
//! (`client_tls`, feature `tls`), decrypts in `fill` and encrypts in `flush`.

use std::io;

use mio::event::Event;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::buffer::Buffer;
use super::sockio::Filled;
use super::transport::Transport;

/// The TLS a client connection may run (none without the feature).
#[cfg(feature = "tls")]
type Tls = super::client_tls::ClientTls;
#[cfg(not(feature = "tls"))]
type Tls = ();

pub struct ClientStream {
    transport: Transport<TcpStream, Tls>,
}

impl ClientStream {
    /// Takes an accepted socket: registers it for both directions under `token`.
    pub fn register(mut socket: TcpStream, registry: &Registry, token: Token) -> io::Result<Self> {
        // Proxy-made heads and small bodies go out in separate writes; don't let Nagle hold them back.
        let _ = socket.set_nodelay(true);
        registry.register(&mut socket, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(ClientStream {
            transport: Transport::new(socket),
        })
    }

    /// Takes a socket accepted on the HTTPS listener: its ClientHello will choose from `store`.
    #[cfg(feature = "tls")]
    pub fn register_tls(
        socket: TcpStream,
        registry: &Registry,
        token: Token,
        store: std::sync::Arc<crate::tls::store::CertStore>,
        now: std::time::Instant,
    ) -> io::Result<Self> {
        let mut stream = ClientStream::register(socket, registry, token)?;
        (stream.transport).start_tls(super::client_tls::ClientTls::new(store, now));
        Ok(stream)
    }

    /// Records what a poll event says about the socket (and sends TLS output waiting for it).
    #[inline]
    pub fn on_event(&mut self, event: &Event) {
        // An accepted socket is connected.
        self.transport.on_event(event, true);
    }

    /// One read into `buf`, if the socket is readable and `buf` has room (with TLS: decrypted bytes,
    /// until `buf` is full or nothing more is ready).
    #[inline]
    pub fn fill(&mut self, buf: &mut Buffer) -> io::Result<Filled> {
        self.transport.fill(buf)
    }

    /// One vectored write of `first` then `second`, if the socket is writable; returns bytes written
    /// (with TLS: taken for encryption once earlier output is out).
    #[inline]
    pub fn flush(&mut self, first: &[u8], second: &[u8]) -> io::Result<usize> {
        self.transport.flush(first, second)
    }

    /// The client finished sending (a read returned end of stream; with TLS, close_notify or the
    /// socket's end once everything before it is decrypted).
    #[inline]
    pub fn read_eof(&self) -> bool {
        self.transport.read_eof()
    }

    /// Ends our direction; the client still may send. With TLS: close_notify first, the socket's
    /// half-close once it is written.
    #[inline]
    pub fn shutdown_write(&mut self) {
        self.transport.shutdown_write();
    }

    /// Whether the connection came over TLS (for `X-Forwarded-Proto`, HSTS and the HTTPS redirect).
    pub fn is_tls(&self) -> bool {
        self.transport.is_tls()
    }

    /// For a TLS connection whose handshake has not finished: when it was accepted (its handshake time
    /// runs from then).
    pub fn handshaking_since(&self) -> Option<std::time::Instant> {
        #[cfg(feature = "tls")]
        if let Some(tls) = self.transport.tls() {
            return tls.is_handshaking().then_some(tls.engine().accepted);
        }
        None
    }

    /// Stops the poll's events for this socket, before it is dropped (closed).
    pub fn deregister(&mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.transport.socket);
    }

    /// Whether this TLS connection agreed on `h2` by ALPN and finished its handshake: whatever it sends
    /// is for the h2 worker.
    pub fn is_h2_over_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        if let Some(tls) = self.transport.tls() {
            return tls.engine().is_h2() && !tls.is_handshaking();
        }
        false
    }

    /// The socket for the h2 worker, no longer registered here, and for a TLS connection its session
    /// with the socket bytes it has not decrypted yet (`hsts_max_age` goes with it, for the responses).
    /// `None` when a TLS session cannot be continued (it failed): the connection is closed.
    pub fn into_handoff(
        mut self,
        registry: &Registry,
        hsts_max_age: Option<u64>,
    ) -> Option<(std::net::TcpStream, Option<Box<crate::h2::TlsHandoff>>)> {
        self.deregister(registry);
        #[cfg(not(feature = "tls"))]
        let (socket, _) = (self.transport.socket, hsts_max_age);
        #[cfg(feature = "tls")]
        let (socket, tls) = self.transport.into_parts();
        #[cfg(feature = "tls")]
        if let Some(tls) = tls {
            let (conn, raw) = super::client_tls::into_handoff(*tls)?;
            let handoff = crate::h2::TlsHandoff {
                conn,
                raw,
                hsts_max_age,
            };
            return Some((socket.into(), Some(Box::new(handoff))));
        }
        Some((socket.into(), None))
    }
}
