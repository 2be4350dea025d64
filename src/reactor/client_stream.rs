//! The client's socket and everything known about it: its edge-triggered readiness, reads into the
//! session's buffer, writes, the half-close, its registration with the poll, and the hand-off of the bare
//! socket to the h2 worker.
//!
//! Nothing else touches the client socket, so the transport can change here alone (TLS will keep its state
//! beside the socket and decrypt in `fill`, encrypt in `flush`) without the phases noticing.

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
        })
    }

    /// Records what a poll event says about the socket.
    pub fn on_event(&mut self, event: &Event) {
        self.io.on_event(event);
    }

    /// One read into `buf`, if the socket is readable and `buf` has room.
    pub fn fill(&mut self, buf: &mut Buffer) -> io::Result<Filled> {
        sockio::fill(buf, &mut self.socket, &mut self.io)
    }

    /// One vectored write of `first` then `second`, if the socket is writable; returns bytes written.
    pub fn flush(&mut self, first: &[u8], second: &[u8]) -> io::Result<usize> {
        sockio::flush(&mut self.socket, &mut self.io, first, second)
    }

    /// The client finished sending (a read returned end of stream).
    pub fn read_eof(&self) -> bool {
        self.io.read_eof
    }

    /// Ends our direction; the client still may send. A failure means the connection is already gone,
    /// which the next read or write reports.
    pub fn shutdown_write(&mut self) {
        let _ = self.socket.shutdown(Shutdown::Write);
    }

    /// Stops the poll's events for this socket, before it is dropped (closed).
    pub fn deregister(&mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.socket);
    }

    /// The bare socket for the h2 worker, no longer registered here.
    pub fn into_handoff(mut self, registry: &Registry) -> std::net::TcpStream {
        self.deregister(registry);
        std::net::TcpStream::from(self.socket)
    }
}
