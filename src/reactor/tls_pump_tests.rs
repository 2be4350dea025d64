//! The pump over a null cipher (plaintext in, the same bytes out, bounded like rustls' buffers) and an
//! in-memory socket whose room and end the tests set: edge-triggered honesty, backpressure, the end
//! after the bytes, fatal errors and the hand-off's unread bytes, without a handshake in the way.

use std::cell::Cell;
use std::collections::VecDeque;

use super::*;

/// A null cipher: fed bytes become plaintext as they are; written plaintext becomes output as it is.
struct Clear {
    plain: VecDeque<u8>,
    /// How much plaintext it holds before `feed` takes no more (rustls' received-plaintext bound).
    plain_limit: usize,
    out: Vec<u8>,
    out_limit: usize,
    ended: bool,
    handshaking: bool,
    failed: bool,
}

impl Clear {
    fn new(plain_limit: usize) -> Clear {
        Clear {
            plain: VecDeque::new(),
            plain_limit,
            out: Vec::new(),
            out_limit: 64,
            ended: false,
            handshaking: false,
            failed: false,
        }
    }
}

impl TlsEngine for Clear {
    /// `!` is a broken record: an alert is queued and the session fails.
    fn feed(&mut self, bytes: &[u8]) -> Result<usize, String> {
        if self.failed || bytes.contains(&b'!') {
            self.failed = true;
            self.out.extend_from_slice(b"ALERT");
            return Err("bad record".into());
        }
        let n = bytes.len().min(self.plain_limit - self.plain.len());
        self.plain.extend(&bytes[..n]);
        Ok(n)
    }

    fn feed_eof(&mut self) -> Result<(), String> {
        self.ended = true;
        match self.handshaking {
            true => Err("closed during the handshake".into()),
            false => Ok(()),
        }
    }

    fn read_plaintext(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.plain.is_empty() && !self.ended {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = out.len().min(self.plain.len());
        for (slot, byte) in out.iter_mut().zip(self.plain.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }

    fn plaintext_pending(&self) -> bool {
        false
    }

    fn wants_read(&self) -> bool {
        !self.failed
    }

    fn wants_write(&self) -> bool {
        !self.out.is_empty()
    }

    fn write_tls(&mut self, out: &mut dyn Write) -> io::Result<usize> {
        let n = out.write(&self.out)?;
        self.out.drain(..n);
        Ok(n)
    }

    fn write_plaintext(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.out_limit - self.out.len());
        self.out.extend_from_slice(&data[..n]);
        n
    }

    fn send_close_notify(&mut self) {
        self.out.extend_from_slice(b"CLOSE");
    }

    fn is_handshaking(&self) -> bool {
        self.handshaking
    }

    fn has_failed(&self) -> bool {
        self.failed
    }

    fn failure(why: String) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, why)
    }
}

/// A socket: `input` to read (then the end if `input_eof`, else `WouldBlock`), `room` bytes of
/// output before `WouldBlock`.
#[derive(Default)]
struct Pipe {
    input: VecDeque<u8>,
    input_eof: bool,
    output: Vec<u8>,
    room: usize,
    shut: Cell<bool>,
}

impl Read for Pipe {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() && !self.input_eof {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = out.len().min(self.input.len());
        for (slot, byte) in out.iter_mut().zip(self.input.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = data.len().min(self.room);
        self.output.extend_from_slice(&data[..n]);
        self.room -= n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Socket for Pipe {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shut.set(true);
        Ok(())
    }
}

fn pipe(input: &[u8], input_eof: bool) -> Pipe {
    Pipe {
        input: input.iter().copied().collect(),
        input_eof,
        ..Pipe::default()
    }
}

fn ready() -> Readiness {
    Readiness {
        readable: true,
        writable: true,
        ..Readiness::default()
    }
}

#[test]
fn the_end_is_reported_once_after_the_bytes_before_it() {
    let (mut pump, mut socket, mut io) =
        (TlsPump::new(Clear::new(64)), pipe(b"hello", true), ready());
    let mut buf = Buffer::new(64);
    assert_eq!(
        pump.fill(&mut buf, &mut socket, &mut io).unwrap(),
        Filled::Bytes(5)
    );
    assert_eq!(buf.data(), b"hello");
    assert!(!pump.read_eof(), "the end waits behind the bytes");
    assert_eq!(
        pump.fill(&mut buf, &mut socket, &mut io).unwrap(),
        Filled::Eof
    );
    assert!(pump.read_eof());
    assert_eq!(
        pump.fill(&mut buf, &mut socket, &mut io).unwrap(),
        Filled::Nothing
    );
}

#[test]
fn bytes_read_ahead_stay_readable_without_a_new_event() {
    // rustls holds 3 bytes of plaintext at most: the rest waits in `raw`.
    let (mut pump, mut socket, mut io) = (
        TlsPump::new(Clear::new(3)),
        pipe(b"abcdefgh", false),
        ready(),
    );
    let mut buf = Buffer::new(4);
    assert_eq!(
        pump.fill(&mut buf, &mut socket, &mut io).unwrap(),
        Filled::Bytes(4)
    );
    assert_eq!(buf.data(), b"abcd");
    buf.consume(4);
    // The socket has nothing more and says so by no event: what the pump holds is still read.
    io.readable = false;
    assert_eq!(
        pump.fill(&mut buf, &mut socket, &mut io).unwrap(),
        Filled::Bytes(4)
    );
    assert_eq!(buf.data(), b"efgh");
    buf.consume(4);
    assert_eq!(
        pump.fill(&mut buf, &mut socket, &mut io).unwrap(),
        Filled::Nothing
    );
}

#[test]
fn flush_takes_nothing_until_earlier_output_is_out_and_the_half_close_follows_it() {
    let (mut pump, mut socket, mut io) = (TlsPump::new(Clear::new(64)), pipe(b"", false), ready());
    socket.room = 3;
    assert_eq!(
        pump.flush(&mut socket, &mut io, b"hello", b" world")
            .unwrap(),
        11
    );
    assert_eq!(socket.output, b"hel");
    assert!(!io.writable, "the full socket cleared writability");
    assert_eq!(
        pump.flush(&mut socket, &mut io, b"more", b"").unwrap(),
        0,
        "backpressure"
    );
    pump.shutdown_write(&mut socket, &mut io);
    assert!(!socket.shut.get(), "not before close_notify is out");

    socket.room = 100;
    io.writable = true;
    pump.on_writable(&mut socket, &mut io);
    assert_eq!(socket.output, b"hello worldCLOSE");
    assert!(socket.shut.get(), "half-closed once everything is out");
}

#[test]
fn a_fatal_error_sends_its_alert_and_every_later_call_repeats_it() {
    let (mut pump, mut socket, mut io) =
        (TlsPump::new(Clear::new(64)), pipe(b"ab!", false), ready());
    socket.room = 100;
    let mut buf = Buffer::new(64);
    let err = pump.fill(&mut buf, &mut socket, &mut io).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert_eq!(err.to_string(), "bad record");
    assert_eq!(
        socket.output, b"ALERT",
        "the alert went out before the close"
    );
    let again = pump.fill(&mut buf, &mut socket, &mut io).unwrap_err();
    assert_eq!(again.to_string(), "bad record");
    let flushed = pump.flush(&mut socket, &mut io, b"x", b"").unwrap_err();
    assert_eq!(flushed.to_string(), "bad record");
}

#[test]
fn the_socket_ending_during_the_handshake_is_a_failure() {
    let mut engine = Clear::new(64);
    engine.handshaking = true;
    let (mut pump, mut socket, mut io) = (TlsPump::new(engine), pipe(b"", true), ready());
    let err = pump
        .fill(&mut Buffer::new(64), &mut socket, &mut io)
        .unwrap_err();
    assert_eq!(err.to_string(), "closed during the handshake");
    assert!(io.read_eof);
}

#[test]
fn an_idle_connection_is_alive_until_it_says_something() {
    let (mut pump, mut socket, mut io) = (TlsPump::new(Clear::new(64)), pipe(b"", false), ready());
    assert!(pump.idle_alive(&mut socket, &mut io));
    assert!(!io.readable, "the spurious wake-up cleared readability");
    socket.input.extend(b"x");
    io.readable = true;
    assert!(!pump.idle_alive(&mut socket, &mut io));
}

#[test]
fn the_hand_off_keeps_the_socket_bytes_the_engine_did_not_take() {
    // Takes nothing, as a session waiting for its ClientHello's config does.
    let (mut pump, mut socket, mut io) = (
        TlsPump::new(Clear::new(0)),
        pipe(b"records", false),
        ready(),
    );
    let mut buf = Buffer::new(64);
    assert_eq!(
        pump.fill(&mut buf, &mut socket, &mut io).unwrap(),
        Filled::Nothing
    );
    let (_, raw) = pump.into_parts();
    assert_eq!(raw, b"records");
}
