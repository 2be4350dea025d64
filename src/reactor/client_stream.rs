//! The client's socket and everything known about it: its edge-triggered readiness, reads into the
//! session's buffer, writes, the half-close, its registration with the poll, and the hand-off of the bare
//! socket to the h2 worker.
//!
//! Nothing else touches the client socket, so the transport changes here alone without the phases
//! noticing: a connection from the HTTPS listener keeps its TLS state beside the socket
//! (`client_tls`, feature `tls`), decrypts in `fill` and encrypts in `flush`.

use std::io;
use std::net::Shutdown;

use mio::event::Event;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::buffer::Buffer;
use super::sockio::{self, Filled, Readiness};

pub struct ClientStream {
    socket: TcpStream,
    io: Readiness,
    /// Boxed: a cleartext connection pays one pointer for it.
    #[cfg(feature = "tls")]
    tls: Option<Box<super::client_tls::ClientTls>>,
}

impl ClientStream {
    /// Takes an accepted socket: registers it for both directions under `token`.
    pub fn register(mut socket: TcpStream, registry: &Registry, token: Token) -> io::Result<Self> {
        // Proxy-made heads and small bodies go out in separate writes; don't let Nagle hold them back.
        let _ = socket.set_nodelay(true);
        registry.register(&mut socket, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(ClientStream {
            socket,
            io: Readiness::default(),
            #[cfg(feature = "tls")]
            tls: None,
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
        stream.tls = Some(Box::new(super::client_tls::ClientTls::new(store, now)));
        Ok(stream)
    }

    /// Records what a poll event says about the socket (and sends TLS output waiting for it).
    pub fn on_event(&mut self, event: &Event) {
        self.io.on_event(event);
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            if self.io.writable {
                tls.on_writable(&mut self.socket, &mut self.io);
            }
        }
    }

    /// One read into `buf`, if the socket is readable and `buf` has room (with TLS: decrypted bytes,
    /// until `buf` is full or nothing more is ready).
    pub fn fill(&mut self, buf: &mut Buffer) -> io::Result<Filled> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            return tls.fill(buf, &mut self.socket, &mut self.io);
        }
        sockio::fill(buf, &mut self.socket, &mut self.io)
    }

    /// One vectored write of `first` then `second`, if the socket is writable; returns bytes written
    /// (with TLS: taken for encryption once earlier output is out).
    pub fn flush(&mut self, first: &[u8], second: &[u8]) -> io::Result<usize> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            return tls.flush(&mut self.socket, &mut self.io, first, second);
        }
        sockio::flush(&mut self.socket, &mut self.io, first, second)
    }

    /// The client finished sending (a read returned end of stream; with TLS, close_notify or the
    /// socket's end once everything before it is decrypted).
    pub fn read_eof(&self) -> bool {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.read_eof();
        }
        self.io.read_eof
    }

    /// Ends our direction; the client still may send. A failure means the connection is already gone,
    /// which the next read or write reports. With TLS: close_notify first, the socket's half-close once
    /// it is written.
    pub fn shutdown_write(&mut self) {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            return tls.shutdown_write(&mut self.socket, &mut self.io);
        }
        let _ = self.socket.shutdown(Shutdown::Write);
    }

    /// Whether the connection came over TLS (for `X-Forwarded-Proto`, HSTS and the HTTPS redirect).
    pub fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return true;
        }
        false
    }

    /// For a TLS connection whose handshake has not finished: when it was accepted (its handshake time
    /// runs from then).
    pub fn handshaking_since(&self) -> Option<std::time::Instant> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.is_handshaking().then_some(tls.accepted);
        }
        None
    }

    /// Stops the poll's events for this socket, before it is dropped (closed).
    pub fn deregister(&mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.socket);
    }

    /// Whether this TLS connection agreed on `h2` by ALPN and finished its handshake: whatever it sends
    /// is for the h2 worker.
    pub fn is_h2_over_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.is_h2() && !tls.is_handshaking();
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
        let _ = hsts_max_age;
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls {
            let (conn, raw) = tls.into_handoff()?;
            let handoff = crate::h2::TlsHandoff {
                conn,
                raw,
                hsts_max_age,
            };
            return Some((self.socket.into(), Some(Box::new(handoff))));
        }
        Some((std::net::TcpStream::from(self.socket), None))
    }
}
