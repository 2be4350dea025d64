//! A socket with its edge-triggered readiness and, for a connection over TLS (feature `tls`), the pump
//! beside it: what a client stream (`client_stream`) and a backend connection (`upstream`) both are. The
//! phases read and write through `fill` and `flush` and never see whether TLS is in between.
//!
//! Generic over the socket (`mio`'s TCP stream for clients, [`UpstreamStream`] for backends) and the TLS
//! engine, so each call is a direct one: the cleartext path is `sockio`'s, behind one branch on a boxed
//! option (a cleartext connection pays one pointer for it), and without the feature not even that.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;

use mio::event::Event;
use mio::net::TcpStream;

use super::buffer::Buffer;
use super::direct_io::Direct;
use super::sockio::{self, Filled, Readiness};
use crate::upstream::UpstreamStream;

#[cfg(feature = "tls")]
pub use super::tls_pump::TlsEngine as Engine;
#[cfg(feature = "tls")]
use super::tls_pump::TlsPump;

/// Without the feature there is no TLS: the engine parameter is `()` and names nothing.
#[cfg(not(feature = "tls"))]
pub trait Engine {}
#[cfg(not(feature = "tls"))]
impl Engine for () {}

/// A connected stream socket: bytes both ways and the half-close. The TLS pump needs no more; the
/// transport also wants the descriptor (`AsRawFd`) for its cleartext path (see `direct_io`).
pub trait Socket: Read + Write {
    fn shutdown_write(&self) -> io::Result<()>;
}

impl Socket for TcpStream {
    #[inline]
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

impl Socket for UpstreamStream {
    #[inline]
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

pub struct Transport<S, E> {
    pub socket: S,
    pub io: Readiness,
    /// Boxed: a cleartext connection pays one pointer for it.
    #[cfg(feature = "tls")]
    tls: Option<Box<TlsPump<E>>>,
    #[cfg(not(feature = "tls"))]
    tls: std::marker::PhantomData<E>,
}

impl<S: Socket + AsRawFd, E: Engine> Transport<S, E> {
    /// A cleartext transport over `socket`.
    pub fn new(socket: S) -> Self {
        Transport {
            socket,
            io: Readiness::default(),
            tls: Default::default(),
        }
    }

    /// Puts TLS between the socket and the phases, before any byte went either way.
    #[cfg(feature = "tls")]
    pub fn start_tls(&mut self, engine: E) {
        self.tls = Some(Box::new(TlsPump::new(engine)));
    }

    /// Records what a poll event says about the socket and, over TLS, sends what rustls holds for it once
    /// the socket is `connected` (a connecting socket cannot take it yet).
    #[inline]
    pub fn on_event(&mut self, event: &Event, connected: bool) {
        self.io.on_event(event);
        #[cfg(not(feature = "tls"))]
        let _ = connected;
        #[cfg(feature = "tls")]
        if let (Some(tls), true, true) = (&mut self.tls, connected, self.io.writable) {
            tls.on_writable(&mut self.socket, &mut self.io);
        }
    }

    /// One read into `buf`, if the socket is readable and `buf` has room (over TLS: decrypted bytes,
    /// until `buf` is full or nothing more is ready).
    #[inline]
    pub fn fill(&mut self, buf: &mut Buffer) -> io::Result<Filled> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            return tls.fill(buf, &mut self.socket, &mut self.io);
        }
        sockio::fill(buf, &mut Direct::of(&self.socket), &mut self.io)
    }

    /// One vectored write of `first` then `second`, if the socket is writable; returns bytes written
    /// (over TLS: taken for encryption once earlier output is out).
    #[inline]
    pub fn flush(&mut self, first: &[u8], second: &[u8]) -> io::Result<usize> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            return tls.flush(&mut self.socket, &mut self.io, first, second);
        }
        sockio::flush(&mut Direct::of(&self.socket), &mut self.io, first, second)
    }

    /// The peer finished sending (a read returned end of stream; over TLS, close_notify or the socket's
    /// end once everything before it is decrypted).
    #[inline]
    pub fn read_eof(&self) -> bool {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.read_eof();
        }
        self.io.read_eof
    }

    /// Ends our direction; the peer still may send. A failure means the connection is already gone,
    /// which the next read or write reports. Over TLS: close_notify first, the socket's half-close once
    /// it is written.
    #[inline]
    pub fn shutdown_write(&mut self) {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            return tls.shutdown_write(&mut self.socket, &mut self.io);
        }
        let _ = self.socket.shutdown_write();
    }

    /// Whether an idle connection, whose peer has nothing to say, is still usable: anything readable is
    /// it closing the connection (or garbage); a spurious wake-up reads nothing and keeps it. Over TLS,
    /// records without data (session tickets) are taken.
    pub fn idle_alive(&mut self) -> bool {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            return tls.idle_alive(&mut self.socket, &mut self.io);
        }
        let mut probe = [0u8; 1];
        let read = self.socket.read(&mut probe);
        let alive = matches!(read, Err(ref e) if e.kind() == io::ErrorKind::WouldBlock);
        if alive {
            self.io.readable = false;
        }
        alive
    }

    #[inline]
    pub fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return true;
        }
        false
    }

    #[cfg(feature = "tls")]
    pub fn tls(&self) -> Option<&TlsPump<E>> {
        self.tls.as_deref()
    }

    /// The socket and the TLS state beside it, for continuing the connection elsewhere.
    #[cfg(feature = "tls")]
    pub fn into_parts(self) -> (S, Option<Box<TlsPump<E>>>) {
        (self.socket, self.tls)
    }
}
