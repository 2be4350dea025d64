//! Connections to backends, and the keep-alive pool they return to between requests.
//!
//! Every upstream connection has a stable slot (and so a stable mio token) from connect to close; lending
//! it to a session or pooling it (`Reactor::pool`, by slab key) changes only its `owner`, so reuse costs
//! no system call.
//!
//! The phases read and write through [`Upstream::fill`] and [`Upstream::flush`], so an instance at an
//! `https://` address (feature `tls`) keeps its TLS session beside the socket (`backend_tls`, in the
//! same `transport` as a client stream's) without the phases noticing.

use std::io;

use mio::event::Event;
use mio::{Interest, Registry, Token};

use super::buffer::Buffer;
use super::sockio::Filled;
use super::transport::Transport;
use crate::upstream::{InstanceId, UpstreamAddr, UpstreamStream};

/// How much of a backend's response is read ahead of the client.
pub const UPSTREAM_BUFFER: usize = 64 * 1024;

/// The TLS a backend connection may run (none without the feature).
#[cfg(feature = "tls")]
type Tls = super::backend_tls::BackendTls;
#[cfg(not(feature = "tls"))]
type Tls = ();

pub struct Upstream {
    /// TCP or unix-domain, whichever the instance listens on, with its readiness.
    pub transport: Transport<UpstreamStream, Tls>,
    pub instance: InstanceId,
    pub connected: bool,
    pub inbuf: Buffer,
    /// The session using it: (slab key, serial); `None` while pooled.
    pub owner: Option<(usize, u64)>,
}

impl Upstream {
    pub fn connect(
        addr: &UpstreamAddr,
        instance: InstanceId,
        registry: &Registry,
        token: Token,
    ) -> io::Result<Self> {
        // Made before the socket: a target that cannot make a session opens no connection.
        #[cfg(feature = "tls")]
        let tls = match addr {
            UpstreamAddr::Tls(target) => Some(target.connection().map_err(io::Error::other)?),
            _ => None,
        };
        let mut stream = UpstreamStream::connect(addr)?;
        registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        #[cfg(feature = "tls")]
        let transport = {
            let mut transport = Transport::new(stream);
            if let Some(conn) = tls {
                transport.start_tls(super::backend_tls::BackendTls(conn));
            }
            transport
        };
        #[cfg(not(feature = "tls"))]
        let transport = Transport::new(stream);
        Ok(Upstream {
            transport,
            instance,
            connected: false,
            inbuf: Buffer::new(UPSTREAM_BUFFER),
            owner: None,
        })
    }

    /// After a writable (or error) event on a connecting socket: `Ok(true)` connected, `Ok(false)` not yet.
    /// (A unix-domain connect has completed by the time `connect` returns; its first event finds it so.)
    pub fn finish_connect(&mut self) -> io::Result<bool> {
        if self.connected {
            return Ok(true);
        }
        let stream = &self.transport.socket;
        if let Some(err) = stream.take_error()? {
            return Err(err);
        }
        if !stream.is_connected()? {
            return Ok(false);
        }
        self.connected = true;
        // Heads and small bodies go out in separate writes; don't let Nagle hold them back (TCP only).
        let _ = stream.set_nodelay();
        Ok(true)
    }

    /// Records what a poll event says about the socket (and, connected over TLS, sends what rustls holds
    /// for it: the ClientHello, a handshake flight, the request kept during the handshake).
    #[inline]
    pub fn on_event(&mut self, event: &Event) {
        self.transport.on_event(event, self.connected);
    }

    /// One read into `inbuf`, if the socket is readable and `inbuf` has room (over TLS: decrypted bytes,
    /// until `inbuf` is full or nothing more is ready; a TLS failure is a `TlsFailure`).
    #[inline]
    pub fn fill(&mut self) -> io::Result<Filled> {
        self.transport.fill(&mut self.inbuf)
    }

    /// One vectored write of `first` then `second`, if the socket is writable; returns bytes written
    /// (over TLS: taken for encryption once earlier output is out).
    #[inline]
    pub fn flush(&mut self, first: &[u8], second: &[u8]) -> io::Result<usize> {
        self.transport.flush(first, second)
    }

    /// The backend finished sending (over TLS: close_notify or the socket's end, once everything before
    /// it is decrypted).
    #[inline]
    pub fn read_eof(&self) -> bool {
        self.transport.read_eof()
    }

    /// Ends our direction (over TLS: close_notify first). A failure means the connection is gone, which
    /// the next read or write reports.
    #[inline]
    pub fn shutdown_write(&mut self) {
        self.transport.shutdown_write();
    }

    /// A pooled connection's socket became readable: whether it is still usable. An idle backend has
    /// nothing to say, so anything readable is it closing the connection (or garbage); a spurious
    /// wake-up reads nothing and keeps it. Over TLS, records without data (session tickets) are taken.
    pub fn idle_alive(&mut self) -> bool {
        self.transport.idle_alive()
    }
}
