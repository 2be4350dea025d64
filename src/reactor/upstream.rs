//! Connections to backends, and the keep-alive pool they return to between requests.
//!
//! Every upstream connection has a stable slot (and so a stable mio token) from connect to close; lending
//! it to a session or pooling it (`Reactor::pool`, by slab key) changes only its `owner`, so reuse costs
//! no system call.
//!
//! The phases read and write through [`Upstream::fill`] and [`Upstream::flush`], so an instance at an
//! `https://` address (feature `tls`) keeps its TLS session beside the socket (`backend_tls`) without the
//! phases noticing, as a client stream does.

use std::io::{self, Read};
use std::net::Shutdown;

use mio::event::Event;
use mio::{Interest, Registry, Token};

use super::buffer::Buffer;
use super::sockio::{self, Filled, Readiness};
use crate::upstream::{InstanceId, UpstreamAddr, UpstreamStream};

/// How much of a backend's response is read ahead of the client.
pub const UPSTREAM_BUFFER: usize = 64 * 1024;

pub struct Upstream {
    /// TCP or unix-domain, whichever the instance listens on.
    pub stream: UpstreamStream,
    pub instance: InstanceId,
    pub io: Readiness,
    pub connected: bool,
    pub inbuf: Buffer,
    /// The session using it: (slab key, serial); `None` while pooled.
    pub owner: Option<(usize, u64)>,
    /// Boxed: a cleartext connection pays one pointer for it.
    #[cfg(feature = "tls")]
    tls: Option<Box<super::backend_tls::BackendTls>>,
}

impl Upstream {
    pub fn connect(
        addr: &UpstreamAddr,
        instance: InstanceId,
        registry: &Registry,
        token: Token,
    ) -> io::Result<Self> {
        #[cfg(feature = "tls")]
        let tls = match addr {
            UpstreamAddr::Tls(target) => {
                let conn = target.connection().map_err(io::Error::other)?;
                Some(Box::new(super::backend_tls::BackendTls::new(conn)))
            }
            _ => None,
        };
        let mut stream = UpstreamStream::connect(addr)?;
        registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(Upstream {
            stream,
            instance,
            io: Readiness::default(),
            connected: false,
            inbuf: Buffer::new(UPSTREAM_BUFFER),
            owner: None,
            #[cfg(feature = "tls")]
            tls,
        })
    }

    /// After a writable (or error) event on a connecting socket: `Ok(true)` connected, `Ok(false)` not yet.
    /// (A unix-domain connect has completed by the time `connect` returns; its first event finds it so.)
    pub fn finish_connect(&mut self) -> io::Result<bool> {
        if self.connected {
            return Ok(true);
        }
        if let Some(err) = self.stream.take_error()? {
            return Err(err);
        }
        if !self.stream.is_connected()? {
            return Ok(false);
        }
        self.connected = true;
        // Heads and small bodies go out in separate writes; don't let Nagle hold them back (TCP only).
        let _ = self.stream.set_nodelay();
        Ok(true)
    }

    /// Records what a poll event says about the socket (and, connected over TLS, sends what rustls holds
    /// for it: the ClientHello, a handshake flight, the request kept during the handshake).
    pub fn on_event(&mut self, event: &Event) {
        self.io.on_event(event);
        #[cfg(feature = "tls")]
        if let (Some(tls), true, true) = (&mut self.tls, self.connected, self.io.writable) {
            tls.on_writable(&mut self.stream, &mut self.io);
        }
    }

    /// One read into `inbuf`, if the socket is readable and `inbuf` has room (over TLS: decrypted bytes,
    /// until `inbuf` is full or nothing more is ready; a TLS failure is a `TlsFailure`).
    pub fn fill(&mut self) -> io::Result<Filled> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            return tls.fill(&mut self.inbuf, &mut self.stream, &mut self.io);
        }
        sockio::fill(&mut self.inbuf, &mut self.stream, &mut self.io)
    }

    /// One vectored write of `first` then `second`, if the socket is writable; returns bytes written
    /// (over TLS: taken for encryption once earlier output is out).
    pub fn flush(&mut self, first: &[u8], second: &[u8]) -> io::Result<usize> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            return tls.flush(&mut self.stream, &mut self.io, first, second);
        }
        sockio::flush(&mut self.stream, &mut self.io, first, second)
    }

    /// The backend finished sending (over TLS: close_notify or the socket's end, once everything before
    /// it is decrypted).
    pub fn read_eof(&self) -> bool {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.read_eof();
        }
        self.io.read_eof
    }

    /// Ends our direction (over TLS: close_notify first). A failure means the connection is gone, which
    /// the next read or write reports.
    pub fn shutdown_write(&mut self) {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            return tls.shutdown_write(&mut self.stream, &mut self.io);
        }
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// A pooled connection's socket became readable: whether it is still usable. An idle backend has
    /// nothing to say, so anything readable is it closing the connection (or garbage); a spurious
    /// wake-up reads nothing and keeps it. Over TLS, records without data (session tickets) are taken.
    pub fn idle_alive(&mut self) -> bool {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            return tls.idle_alive(&mut self.stream, &mut self.io);
        }
        let mut probe = [0u8; 1];
        let alive = matches!(self.stream.read(&mut probe), Err(ref e) if e.kind() == io::ErrorKind::WouldBlock);
        if alive {
            self.io.readable = false;
        }
        alive
    }
}
