//! The TLS half of a client stream (feature `tls`): socket bytes are decrypted into the session's buffer
//! in `fill`, the phases' bytes encrypted in `flush`, so the phases see plaintext and nothing else.
//!
//! Readiness stays edge-triggered and honest:
//! * bytes already read from the socket but not yet taken by rustls (`raw`), and plaintext waiting
//!   inside rustls, count as "readable" exactly like a socket whose readiness was not cleared: every
//!   pump that would read a ready socket reads them, so no event is needed for them;
//! * TLS output rustls holds (handshake, records, alerts, close_notify) is written by `fill`, `flush`
//!   and on every writable event, so it goes out even when the phases have nothing left to send (the
//!   end of a response, or a handshake flight);
//! * `flush` accepts plaintext only once earlier TLS output is out, so the socket's backpressure reaches
//!   the phases as it does without TLS (rustls holds at most one flush's worth).

use std::io::{self, Read};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;

use super::buffer::Buffer;
use super::sockio::{Filled, Readiness};
use crate::tls::session::TlsSession;
use crate::tls::store::CertStore;

/// Socket bytes read ahead of rustls: a little more than one TLS record (16 KiB plus overhead), so a
/// record never needs two reads of the same buffer.
const RAW_CAPACITY: usize = 17 * 1024;

/// Passes through the read loop per `fill`: each either decrypts into the buffer, gives rustls more
/// bytes or reads the socket, so this bounds the work one call does for one connection (about 1 MiB).
const MAX_FILL_PASSES: usize = 64;

pub struct ClientTls {
    session: TlsSession,
    /// The certificates to choose from once the ClientHello is in; dropped then (a reload's new store
    /// serves the next connections, this one keeps the config it was given).
    store: Option<Arc<CertStore>>,
    /// Socket bytes not yet taken by rustls: `raw[raw_pos..raw_end]`. Allocated (`RAW_CAPACITY`) while
    /// the connection reads, freed when the socket is drained with nothing left in it.
    raw: Vec<u8>,
    raw_pos: usize,
    raw_end: usize,
    /// The socket reached its end (read returned 0).
    socket_eof: bool,
    /// The plaintext stream ended (close_notify, or the socket's end): what `read_eof` reports.
    eof: bool,
    /// The end was seen behind bytes just returned; the next `fill` reports it.
    eof_due: bool,
    /// `shutdown_write` was asked: the socket is shut once close_notify and everything before it are out.
    shut_wanted: bool,
    shut_done: bool,
    /// A socket write failed where no caller could be told (a writable event): the next call says so.
    broken: Option<io::ErrorKind>,
    /// When the connection was accepted, for the handshake's time bound.
    pub accepted: Instant,
}

impl ClientTls {
    pub fn new(store: Arc<CertStore>, accepted: Instant) -> ClientTls {
        ClientTls {
            session: TlsSession::default(),
            store: Some(store),
            raw: Vec::new(),
            raw_pos: 0,
            raw_end: 0,
            socket_eof: false,
            eof: false,
            eof_due: false,
            shut_wanted: false,
            shut_done: false,
            broken: None,
            accepted,
        }
    }

    pub fn read_eof(&self) -> bool {
        self.eof
    }

    pub fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
    }

    /// Socket -> rustls -> `buf`, until `buf` is full or nothing more is ready. A fatal TLS error sends
    /// its alert (as far as the socket takes it at once) and is returned: the caller closes.
    pub fn fill(
        &mut self,
        buf: &mut Buffer,
        socket: &mut TcpStream,
        io: &mut Readiness,
    ) -> io::Result<Filled> {
        self.check_broken()?;
        if self.eof {
            return Ok(Filled::Nothing);
        }
        if self.eof_due {
            self.eof = true;
            return Ok(Filled::Eof);
        }
        let mut taken = 0;
        for _ in 0..MAX_FILL_PASSES {
            // Full: what is left waits, as bytes wait in a socket the phases do not read.
            if buf.is_full() {
                return Ok(got(taken));
            }
            // Plaintext first: it frees rustls' bounded buffer for the next records.
            match buf.read_from(&mut self.session) {
                Ok((0, _)) => return Ok(self.ended(taken)),
                Ok((n, _)) => {
                    taken += n;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.raw_pos < self.raw_end {
                let fed = match self.session.feed(&self.raw[self.raw_pos..self.raw_end]) {
                    Ok(n) => n,
                    Err(e) => return Err(self.fatal(socket, io, e.to_string())),
                };
                self.raw_pos += fed;
                if self.raw_pos == self.raw_end {
                    self.raw_pos = 0;
                    self.raw_end = 0;
                }
                if self.session.awaiting_config() {
                    self.choose_config(socket, io)?;
                }
                // Handshake flights, tickets, alerts: out as soon as they exist.
                self.drain(socket, io)?;
                if fed > 0 || self.session.plaintext_pending() {
                    continue;
                }
                if self.session.has_failed() {
                    return Err(self.fatal(socket, io, "TLS session failed".into()));
                }
                // Not reached with a live session (rustls takes bytes until plaintext waits, and
                // waiting plaintext is taken above); should it be, `raw` is offered again next time.
                return Ok(got(taken));
            }
            if self.socket_eof {
                // Everything the socket sent is in rustls and no plaintext came of it: before an
                // established stream there is no close_notify to wait for, the end is the socket's.
                return Ok(self.ended(taken));
            }
            if !io.readable || !self.session.wants_read() || !self.read_socket(socket, io)? {
                self.drain(socket, io)?;
                return Ok(got(taken));
            }
        }
        // The pass limit, with work left: reported as progress (even of 0 bytes), so the pump comes
        // back for the rest or yields to other connections and is driven again.
        self.drain(socket, io)?;
        Ok(Filled::Bytes(taken))
    }

    /// The plaintext stream ended: `Eof` now, or after the bytes taken in this call.
    fn ended(&mut self, taken: usize) -> Filled {
        if taken > 0 {
            self.eof_due = true;
            Filled::Bytes(taken)
        } else {
            self.eof = true;
            Filled::Eof
        }
    }

    /// One read of the socket into `raw` (called only when `raw` is empty); false when the socket had
    /// nothing (readiness cleared).
    fn read_socket(&mut self, socket: &mut TcpStream, io: &mut Readiness) -> io::Result<bool> {
        if self.raw.is_empty() {
            self.raw = vec![0; RAW_CAPACITY];
        }
        loop {
            match socket.read(&mut self.raw) {
                Ok(0) => {
                    self.socket_eof = true;
                    io.read_eof = true;
                    // `raw` was empty: rustls has everything before the end.
                    self.session.feed_eof();
                    return Ok(true);
                }
                Ok(n) => {
                    (self.raw_pos, self.raw_end) = (0, n);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    io.readable = false;
                    // Drained: an idle connection keeps no read-ahead buffer.
                    self.raw = Vec::new();
                    return Ok(false);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether ALPN chose `h2`: the connection belongs to the h2 worker once its handshake is done.
    pub fn is_h2(&self) -> bool {
        self.session.alpn() == Some(b"h2")
    }

    /// The session and the socket bytes rustls has not taken yet, for the h2 worker. `None` when the
    /// session never got established or failed (nothing to continue).
    pub fn into_handoff(self) -> Option<(rustls::ServerConnection, Vec<u8>)> {
        let raw = self
            .raw
            .get(self.raw_pos..self.raw_end)
            .unwrap_or_default()
            .to_vec();
        Some((self.session.into_connection()?, raw))
    }

    /// Picks the certificate for the ClientHello's SNI (or the TLS-ALPN-01 answer, for an ACME
    /// validation) and continues the handshake with it.
    fn choose_config(&mut self, socket: &mut TcpStream, io: &mut Readiness) -> io::Result<()> {
        let hello = self.session.client_hello();
        let sni = hello.and_then(|hello| hello.server_name.clone());
        let acme_tls = hello.is_some_and(|hello| hello.offers_acme_tls());
        let config =
            (self.store.take()).and_then(|store| store.select_for(sni.as_deref(), acme_tls));
        let Some(config) = config else {
            // An empty store cannot happen with a checked config; refuse rather than hang.
            return Err(io::Error::other("TLS: no certificate to serve"));
        };
        match self.session.accept_with(config) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fatal(socket, io, e.to_string())),
        }
    }

    /// Encrypts what fits of `first` then `second`, once earlier TLS output is out; returns plaintext
    /// bytes taken (0 is backpressure, as a full socket is).
    pub fn flush(
        &mut self,
        socket: &mut TcpStream,
        io: &mut Readiness,
        first: &[u8],
        second: &[u8],
    ) -> io::Result<usize> {
        self.check_broken()?;
        if self.session.has_failed() {
            return Err(io::Error::other("TLS session failed"));
        }
        self.drain(socket, io)?;
        if self.session.wants_write() || (first.is_empty() && second.is_empty()) {
            return Ok(0);
        }
        let mut taken = self.session.write_plaintext(first);
        if taken == first.len() && !second.is_empty() {
            taken += self.session.write_plaintext(second);
        }
        self.drain(socket, io)?;
        Ok(taken)
    }

    /// A writable event: what rustls holds goes out without waiting for the phases to write again.
    pub fn on_writable(&mut self, socket: &mut TcpStream, io: &mut Readiness) {
        if let Err(e) = self.drain(socket, io) {
            self.broken = Some(e.kind());
        }
    }

    /// Sends close_notify, then half-closes the socket once it (and all before it) is written.
    pub fn shutdown_write(&mut self, socket: &mut TcpStream, io: &mut Readiness) {
        if self.shut_wanted {
            return;
        }
        self.shut_wanted = true;
        self.session.send_close_notify();
        if let Err(e) = self.drain(socket, io) {
            self.broken = Some(e.kind());
        }
    }

    /// Writes pending TLS output while the socket takes it; then the half-close, if one was asked.
    fn drain(&mut self, socket: &mut TcpStream, io: &mut Readiness) -> io::Result<()> {
        while io.writable && self.session.wants_write() {
            match self.session.pending_tls_out(&mut *socket) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => io.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.shut_wanted && !self.shut_done && !self.session.wants_write() {
            self.shut_done = true;
            let _ = socket.shutdown(Shutdown::Write);
        }
        Ok(())
    }

    /// A fatal TLS error: its alert goes out as far as the socket takes it now, and the caller closes.
    fn fatal(&mut self, socket: &mut TcpStream, io: &mut Readiness, why: String) -> io::Error {
        // Best effort: the connection ends either way.
        let _ = self.drain(socket, io);
        io::Error::new(io::ErrorKind::InvalidData, why)
    }

    fn check_broken(&self) -> io::Result<()> {
        match self.broken {
            Some(kind) => Err(kind.into()),
            None => Ok(()),
        }
    }
}

fn got(taken: usize) -> Filled {
    if taken > 0 {
        Filled::Bytes(taken)
    } else {
        Filled::Nothing
    }
}
