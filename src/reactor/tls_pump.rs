//! The socket <-> rustls pump both sides of the reactor run (feature `tls`): a client connection from the
//! HTTPS listener (`client_tls`, over [`crate::tls::session::TlsSession`]) and a backend connection to an
//! `https://` instance (`backend_tls`, over rustls' `ClientConnection`). Socket bytes are decrypted into
//! the phases' buffer in `fill`, the phases' bytes encrypted in `flush`, so the phases see plaintext and
//! nothing else. What differs between the sides is a [`TlsEngine`]; the reactor's counterpart of the h2
//! worker's `h2::tls_io`, which shares the async side the same way.
//!
//! Readiness stays edge-triggered and honest:
//! * bytes already read from the socket but not yet taken by rustls (`raw`), and plaintext waiting
//!   inside rustls, count as "readable" exactly like a socket whose readiness was not cleared: every
//!   pump that would read a ready socket reads them, so no event is needed for them;
//! * TLS output rustls holds (handshake, records, alerts, close_notify) is written by `fill`, `flush`
//!   and on every writable event, so it goes out even when the phases have nothing left to send (the
//!   end of a response, a handshake flight, a request held during the backend handshake);
//! * `flush` accepts plaintext only once earlier TLS output is out, so the socket's backpressure reaches
//!   the phases as it does without TLS (rustls holds at most one flush's worth).

use std::io::{self, Read, Write};

use super::buffer::Buffer;
use super::sockio::{Filled, Readiness};
use super::transport::Socket;

/// Socket bytes read ahead of rustls: a little more than one TLS record (16 KiB plus overhead), so a
/// record never needs two reads of the same buffer.
const RAW_CAPACITY: usize = 17 * 1024;

/// Passes through the read loop per `fill`: each either decrypts into the buffer, gives rustls more
/// bytes or reads the socket, so this bounds the work one call does for one connection (about 1 MiB).
const MAX_FILL_PASSES: usize = 64;

/// One side's TLS connection without its socket: what the pump needs of it.
pub trait TlsEngine {
    /// Gives bytes read from the socket; returns how many were taken (fewer than offered is
    /// backpressure: the rest is offered again). An error is fatal; its alert, if any, is queued.
    fn feed(&mut self, bytes: &[u8]) -> Result<usize, String>;

    /// Called after each `feed`: the server side chooses its certificate once the ClientHello is in.
    fn after_feed(&mut self) -> Result<(), String> {
        Ok(())
    }

    /// The socket reached its end (everything before it was fed). An error is fatal.
    fn feed_eof(&mut self) -> Result<(), String>;

    /// Decrypted bytes into `out`: `WouldBlock` is nothing yet, 0 is the end of the plaintext stream
    /// (close_notify, or the socket's end without it: the HTTP framing tells whether anything was cut).
    fn read_plaintext(&mut self, out: &mut [u8]) -> io::Result<usize>;

    /// Decrypted bytes wait although the last `feed` took nothing (the hook made them).
    fn plaintext_pending(&self) -> bool;

    /// Whether to read the socket now.
    fn wants_read(&self) -> bool;

    /// Whether TLS output waits for the socket.
    fn wants_write(&self) -> bool;

    /// Writes pending TLS output to `out`, once; returns bytes written.
    fn write_tls(&mut self, out: &mut dyn Write) -> io::Result<usize>;

    /// Encrypts what fits of `data`; returns how much was taken (0 with data offered is backpressure).
    fn write_plaintext(&mut self, data: &[u8]) -> usize;

    fn send_close_notify(&mut self);

    fn is_handshaking(&self) -> bool;

    /// The session failed on its own: only its alert remains to send.
    fn has_failed(&self) -> bool;

    /// The error a fatal failure is reported as (the backend side marks it for `BACKEND_TLS`).
    fn failure(why: String) -> io::Error;
}

pub struct TlsPump<E> {
    engine: E,
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
    /// Why the session failed, repeated to later calls.
    failed: Option<String>,
}

impl<E: TlsEngine> TlsPump<E> {
    pub fn new(engine: E) -> TlsPump<E> {
        TlsPump {
            engine,
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

    pub fn engine(&self) -> &E {
        &self.engine
    }

    pub fn read_eof(&self) -> bool {
        self.eof
    }

    pub fn is_handshaking(&self) -> bool {
        self.engine.is_handshaking()
    }

    /// Socket -> rustls -> `buf`, until `buf` is full or nothing more is ready. A fatal TLS error sends
    /// its alert (as far as the socket takes it at once) and is returned: the caller closes.
    pub fn fill<S: Socket>(
        &mut self,
        buf: &mut Buffer,
        socket: &mut S,
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
            // Full: what is left waits, as bytes wait in a socket the phases do not read.
            if buf.is_full() {
                return Ok(got(taken));
            }
            // Plaintext first: it frees rustls' bounded buffer for the next records.
            match buf.read_from(&mut Plaintext(&mut self.engine)) {
                Ok((0, _)) => return Ok(self.ended(taken)),
                Ok((n, _)) => {
                    taken += n;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.raw_pos < self.raw_end {
                let fed = match self.engine.feed(&self.raw[self.raw_pos..self.raw_end]) {
                    Ok(n) => n,
                    Err(why) => return Err(self.fatal(socket, io, why)),
                };
                self.raw_pos += fed;
                if self.raw_pos == self.raw_end {
                    (self.raw_pos, self.raw_end) = (0, 0);
                }
                if let Err(why) = self.engine.after_feed() {
                    return Err(self.fatal(socket, io, why));
                }
                // Handshake flights, tickets, the request held during a handshake, alerts: out as soon
                // as they exist.
                self.drain(socket, io)?;
                if fed > 0 || self.engine.plaintext_pending() {
                    continue;
                }
                if self.engine.has_failed() {
                    return Err(self.fatal(socket, io, "TLS session failed".into()));
                }
                // Not reached with a live session (rustls takes bytes until plaintext waits, and
                // waiting plaintext is taken above); should it be, `raw` is offered again next time
                // rather than spinning here.
                return Ok(got(taken));
            }
            if self.socket_eof {
                // Everything the socket sent is in rustls and no plaintext came of it: before an
                // established stream there is no close_notify to wait for, the end is the socket's.
                return Ok(self.ended(taken));
            }
            if !io.readable || !self.engine.wants_read() || !self.read_socket(socket, io)? {
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
    fn read_socket<S: Socket>(&mut self, socket: &mut S, io: &mut Readiness) -> io::Result<bool> {
        if self.raw.is_empty() {
            self.raw = vec![0; RAW_CAPACITY];
        }
        loop {
            match socket.read(&mut self.raw) {
                Ok(0) => {
                    self.socket_eof = true;
                    io.read_eof = true;
                    // `raw` was empty: rustls has everything before the end.
                    if let Err(why) = self.engine.feed_eof() {
                        return Err(self.fatal(socket, io, why));
                    }
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

    /// Encrypts what fits of `first` then `second`, once earlier TLS output is out; returns plaintext
    /// bytes taken (0 is backpressure, as a full socket is). During a handshake rustls keeps it until it
    /// can send it.
    pub fn flush<S: Socket>(
        &mut self,
        socket: &mut S,
        io: &mut Readiness,
        first: &[u8],
        second: &[u8],
    ) -> io::Result<usize> {
        self.check()?;
        if self.engine.has_failed() {
            return Err(E::failure("TLS session failed".into()));
        }
        self.drain(socket, io)?;
        if self.engine.wants_write() || (first.is_empty() && second.is_empty()) {
            return Ok(0);
        }
        let mut taken = self.engine.write_plaintext(first);
        if taken == first.len() && !second.is_empty() {
            taken += self.engine.write_plaintext(second);
        }
        self.drain(socket, io)?;
        Ok(taken)
    }

    /// A writable event: what rustls holds goes out without waiting for the phases to write again.
    pub fn on_writable<S: Socket>(&mut self, socket: &mut S, io: &mut Readiness) {
        if let Err(e) = self.drain(socket, io) {
            self.broken = Some(e.kind());
        }
    }

    /// Sends close_notify, then half-closes the socket once it (and all before it) is written.
    pub fn shutdown_write<S: Socket>(&mut self, socket: &mut S, io: &mut Readiness) {
        if self.shut_wanted {
            return;
        }
        self.shut_wanted = true;
        self.engine.send_close_notify();
        if let Err(e) = self.drain(socket, io) {
            self.broken = Some(e.kind());
        }
    }

    /// Whether an idle connection is still usable: whatever the socket has is given to rustls (session
    /// tickets sent after the handshake are no reason to drop it); plaintext, the end of the stream or
    /// an error are.
    pub fn idle_alive<S: Socket>(&mut self, socket: &mut S, io: &mut Readiness) -> bool {
        let mut scratch = Buffer::new(1);
        matches!(self.fill(&mut scratch, socket, io), Ok(Filled::Nothing)) && scratch.is_empty()
    }

    /// The engine and the socket bytes it has not taken yet, for continuing the connection elsewhere.
    pub fn into_parts(self) -> (E, Vec<u8>) {
        let raw = self
            .raw
            .get(self.raw_pos..self.raw_end)
            .unwrap_or_default()
            .to_vec();
        (self.engine, raw)
    }

    /// Writes pending TLS output while the socket takes it; then the half-close, if one was asked.
    fn drain<S: Socket>(&mut self, socket: &mut S, io: &mut Readiness) -> io::Result<()> {
        while io.writable && self.engine.wants_write() {
            match self.engine.write_tls(&mut *socket) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => io.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.shut_wanted && !self.shut_done && !self.engine.wants_write() {
            self.shut_done = true;
            let _ = socket.shutdown_write();
        }
        Ok(())
    }

    /// A fatal TLS error: its alert goes out as far as the socket takes it now, and the caller closes.
    fn fatal<S: Socket>(&mut self, socket: &mut S, io: &mut Readiness, why: String) -> io::Error {
        // Best effort: the connection ends either way.
        let _ = self.drain(socket, io);
        self.failed = Some(why.clone());
        E::failure(why)
    }

    fn check(&self) -> io::Result<()> {
        if let Some(why) = &self.failed {
            return Err(E::failure(why.clone()));
        }
        match self.broken {
            Some(kind) => Err(kind.into()),
            None => Ok(()),
        }
    }
}

/// The engine's plaintext as a reader a buffer fills itself from (`Buffer::read_from`), like a socket.
struct Plaintext<'a, E>(&'a mut E);

impl<E: TlsEngine> Read for Plaintext<'_, E> {
    #[inline]
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.0.read_plaintext(out)
    }
}

fn got(taken: usize) -> Filled {
    if taken > 0 {
        Filled::Bytes(taken)
    } else {
        Filled::Nothing
    }
}

#[cfg(test)]
#[path = "tls_pump_tests.rs"]
mod tests;
