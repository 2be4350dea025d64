//! The TLS half of a backend connection (feature `tls`, an instance at `address = "https://..."`): the
//! client side of what `client_tls` is for clients. The phases read and write plaintext through
//! [`super::upstream::Upstream`]'s `fill` and `flush` and never see TLS.
//!
//! * The handshake needs no phase of its own: rustls queues the ClientHello when the session is made,
//!   it goes out on the first writable event after the connect, and plaintext written meanwhile (the
//!   request head) waits inside rustls (bounded by its buffer limit) until the handshake is done. Its
//!   time is the exchange's (the response deadline runs from the request).
//! * Readiness stays edge-triggered and honest, as in `client_tls`: socket bytes read but not yet taken
//!   by rustls (`raw`) and plaintext waiting inside rustls count as readable; TLS output is written by
//!   `fill`, `flush` and every writable event; `flush` takes plaintext only once earlier TLS output is
//!   out, so the socket's backpressure reaches the phases.
//! * Every TLS failure is returned as a [`TlsFailure`], which the exchange answers with `BACKEND_TLS`.

use std::io::{self, Read, Write};
use std::net::Shutdown;

use rustls::ClientConnection;

use super::buffer::Buffer;
use super::sockio::{Filled, Readiness};
use crate::upstream::{TlsFailure, UpstreamStream};

/// Socket bytes read ahead of rustls: a little more than one TLS record.
const RAW_CAPACITY: usize = 17 * 1024;

/// Passes through the read loop per `fill` (about 1 MiB of work), as in `client_tls`.
const MAX_FILL_PASSES: usize = 64;

pub struct BackendTls {
    conn: ClientConnection,
    /// Socket bytes not yet taken by rustls: `raw[raw_pos..raw_end]`; freed when the socket is drained.
    raw: Vec<u8>,
    raw_pos: usize,
    raw_end: usize,
    socket_eof: bool,
    /// The plaintext stream ended (close_notify, or the socket's end): what `read_eof` reports.
    eof: bool,
    /// The end was seen behind bytes just returned; the next `fill` reports it.
    eof_due: bool,
    shut_wanted: bool,
    shut_done: bool,
    /// A socket write failed where no caller could be told (a writable event): the next call says so.
    broken: Option<io::ErrorKind>,
    /// Why the session failed, repeated to later calls.
    failed: Option<String>,
}

impl BackendTls {
    pub fn new(conn: ClientConnection) -> BackendTls {
        BackendTls {
            conn,
            raw: Vec::new(),
            raw_pos: 0,
            raw_end: 0,
            socket_eof: false,
            eof: false,
            eof_due: false,
            shut_wanted: false,
            shut_done: false,
            broken: None,
            failed: None,
        }
    }

    pub fn read_eof(&self) -> bool {
        self.eof
    }

    /// Socket -> rustls -> `buf`, until `buf` is full or nothing more is ready.
    pub fn fill(
        &mut self,
        buf: &mut Buffer,
        socket: &mut UpstreamStream,
        io: &mut Readiness,
    ) -> io::Result<Filled> {
        self.check()?;
        if self.eof {
            return Ok(Filled::Nothing);
        }
        if self.eof_due {
            self.eof = true;
            return Ok(Filled::Eof);
        }
        let mut taken = 0;
        for _ in 0..MAX_FILL_PASSES {
            if buf.is_full() {
                return Ok(got(taken));
            }
            // Plaintext first: it frees rustls' bounded buffer for the next records.
            match buf.read_from(&mut Plain(&mut self.conn)) {
                Ok((0, _)) => return Ok(self.ended(taken)),
                Ok((n, _)) => {
                    taken += n;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.raw_pos < self.raw_end {
                let mut rest = &self.raw[self.raw_pos..self.raw_end];
                let before = rest.len();
                if let Err(e) = self.conn.read_tls(&mut rest) {
                    return Err(self.fatal(socket, io, e.to_string()));
                }
                let fed = before - rest.len();
                self.raw_pos += fed;
                if self.raw_pos == self.raw_end {
                    (self.raw_pos, self.raw_end) = (0, 0);
                }
                if let Err(e) = self.conn.process_new_packets() {
                    return Err(self.fatal(socket, io, e.to_string()));
                }
                // Handshake flights, the request held during the handshake, alerts: out at once.
                self.drain(socket, io)?;
                if fed > 0 {
                    continue;
                }
                // rustls took nothing with no plaintext waiting: should it happen, `raw` is offered
                // again next time rather than spinning here.
                return Ok(got(taken));
            }
            if self.socket_eof {
                return Ok(self.ended(taken));
            }
            if !io.readable || !self.read_socket(socket, io)? {
                self.drain(socket, io)?;
                return Ok(got(taken));
            }
        }
        self.drain(socket, io)?;
        Ok(Filled::Bytes(taken))
    }

    fn ended(&mut self, taken: usize) -> Filled {
        if taken > 0 {
            self.eof_due = true;
            Filled::Bytes(taken)
        } else {
            self.eof = true;
            Filled::Eof
        }
    }

    /// One read of the socket into `raw` (empty when called); false when the socket had nothing.
    fn read_socket(&mut self, socket: &mut UpstreamStream, io: &mut Readiness) -> io::Result<bool> {
        if self.raw.is_empty() {
            self.raw = vec![0; RAW_CAPACITY];
        }
        loop {
            match socket.read(&mut self.raw) {
                Ok(0) => {
                    self.socket_eof = true;
                    io.read_eof = true;
                    // Records the end in rustls: a later read says whether close_notify came first.
                    let _ = self.conn.read_tls(&mut &[][..]);
                    if self.conn.is_handshaking() {
                        let why = "the backend closed the connection during the TLS handshake";
                        return Err(self.fatal(socket, io, why.into()));
                    }
                    return Ok(true);
                }
                Ok(n) => {
                    (self.raw_pos, self.raw_end) = (0, n);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    io.readable = false;
                    self.raw = Vec::new();
                    return Ok(false);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Encrypts what fits of `first` then `second`, once earlier TLS output is out; returns plaintext
    /// bytes taken (0 is backpressure). During the handshake rustls keeps it until it can send it.
    pub fn flush(
        &mut self,
        socket: &mut UpstreamStream,
        io: &mut Readiness,
        first: &[u8],
        second: &[u8],
    ) -> io::Result<usize> {
        self.check()?;
        self.drain(socket, io)?;
        if self.conn.wants_write() || (first.is_empty() && second.is_empty()) {
            return Ok(0);
        }
        let mut taken = self.conn.writer().write(first).unwrap_or(0);
        if taken == first.len() && !second.is_empty() {
            taken += self.conn.writer().write(second).unwrap_or(0);
        }
        self.drain(socket, io)?;
        Ok(taken)
    }

    /// A writable event on a connected socket: what rustls holds goes out (the ClientHello first).
    pub fn on_writable(&mut self, socket: &mut UpstreamStream, io: &mut Readiness) {
        if let Err(e) = self.drain(socket, io) {
            self.broken = Some(e.kind());
        }
    }

    /// close_notify, then the socket's half-close once it is written.
    pub fn shutdown_write(&mut self, socket: &mut UpstreamStream, io: &mut Readiness) {
        if self.shut_wanted {
            return;
        }
        self.shut_wanted = true;
        self.conn.send_close_notify();
        if let Err(e) = self.drain(socket, io) {
            self.broken = Some(e.kind());
        }
    }

    /// Whether an idle pooled connection is still usable: whatever the socket has is given to rustls
    /// (session tickets sent after the handshake are no reason to drop it); plaintext, the end of the
    /// stream or an error are.
    pub fn idle_alive(&mut self, socket: &mut UpstreamStream, io: &mut Readiness) -> bool {
        let mut scratch = Buffer::new(1);
        matches!(self.fill(&mut scratch, socket, io), Ok(Filled::Nothing)) && scratch.is_empty()
    }

    fn drain(&mut self, socket: &mut UpstreamStream, io: &mut Readiness) -> io::Result<()> {
        while io.writable && self.conn.wants_write() {
            match self.conn.write_tls(&mut *socket) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => io.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.shut_wanted && !self.shut_done && !self.conn.wants_write() {
            self.shut_done = true;
            let _ = socket.shutdown(Shutdown::Write);
        }
        Ok(())
    }

    /// A fatal TLS error: its alert goes out as far as the socket takes it now; the caller closes.
    fn fatal(&mut self, socket: &mut UpstreamStream, io: &mut Readiness, why: String) -> io::Error {
        let _ = self.drain(socket, io);
        self.failed = Some(why.clone());
        TlsFailure::because(why)
    }

    fn check(&self) -> io::Result<()> {
        if let Some(why) = &self.failed {
            return Err(TlsFailure::because(why.clone()));
        }
        match self.broken {
            Some(kind) => Err(kind.into()),
            None => Ok(()),
        }
    }
}

/// rustls' plaintext as a reader a buffer fills itself from: nothing yet is `WouldBlock`, close_notify
/// and a socket end without it are both 0 (the HTTP framing tells whether anything was cut off).
struct Plain<'a>(&'a mut ClientConnection);

impl Read for Plain<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self.0.reader().read(out) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            other => other,
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
