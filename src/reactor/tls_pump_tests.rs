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
        take(&mut self.plain, self.ended, out)
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
        take(&mut self.input, self.input_eof, out)
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

/// Bytes from `queue`, as a non-blocking source reads: none yet is `WouldBlock`, none after `ended` is 0.
fn take(queue: &mut VecDeque<u8>, ended: bool, out: &mut [u8]) -> io::Result<usize> {
    if queue.is_empty() && !ended {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    queue.read(out)
}

/// A pump over a `Clear` engine and a `Pipe` holding `input` (then its end if `input_eof`), both ways
/// ready, with a buffer of `room` for what it decrypts.
struct Rig {
    pump: TlsPump<Clear>,
    socket: Pipe,
    io: Readiness,
    buf: Buffer,
}

impl Rig {
    fn new(engine: Clear, input: &[u8], input_eof: bool, room: usize) -> Rig {
        let socket = Pipe {
            input: input.iter().copied().collect(),
            input_eof,
            ..Pipe::default()
        };
        let io = Readiness {
            readable: true,
            writable: true,
            ..Readiness::default()
        };
        let buf = Buffer::new(room);
        Rig {
            pump: TlsPump::new(engine),
            socket,
            io,
            buf,
        }
    }

    fn fill(&mut self) -> io::Result<Filled> {
        self.pump
            .fill(&mut self.buf, &mut self.socket, &mut self.io)
    }

    fn flush(&mut self, first: &[u8], second: &[u8]) -> io::Result<usize> {
        (self.pump).flush(&mut self.socket, &mut self.io, first, second)
    }
}

#[test]
fn the_end_is_reported_once_after_the_bytes_before_it() {
    let mut rig = Rig::new(Clear::new(64), b"hello", true, 64);
    assert_eq!(rig.fill().unwrap(), Filled::Bytes(5));
    assert_eq!(rig.buf.data(), b"hello");
    assert!(!rig.pump.read_eof(), "the end waits behind the bytes");
    assert_eq!(rig.fill().unwrap(), Filled::Eof);
    assert!(rig.pump.read_eof());
    assert_eq!(rig.fill().unwrap(), Filled::Nothing);
}

#[test]
fn bytes_read_ahead_stay_readable_without_a_new_event() {
    // rustls holds 3 bytes of plaintext at most: the rest waits in `raw`.
    let mut rig = Rig::new(Clear::new(3), b"abcdefgh", false, 4);
    assert_eq!(rig.fill().unwrap(), Filled::Bytes(4));
    assert_eq!(rig.buf.data(), b"abcd");
    rig.buf.consume(4);
    // The socket has nothing more and says so by no event: what the pump holds is still read.
    rig.io.readable = false;
    assert_eq!(rig.fill().unwrap(), Filled::Bytes(4));
    assert_eq!(rig.buf.data(), b"efgh");
    rig.buf.consume(4);
    assert_eq!(rig.fill().unwrap(), Filled::Nothing);
}

#[test]
fn flush_takes_nothing_until_earlier_output_is_out_and_the_half_close_follows_it() {
    let mut rig = Rig::new(Clear::new(64), b"", false, 64);
    rig.socket.room = 3;
    assert_eq!(rig.flush(b"hello", b" world").unwrap(), 11);
    assert_eq!(rig.socket.output, b"hel");
    assert!(!rig.io.writable, "the full socket cleared writability");
    assert_eq!(rig.flush(b"more", b"").unwrap(), 0, "backpressure");
    rig.pump.shutdown_write(&mut rig.socket, &mut rig.io);
    assert!(!rig.socket.shut.get(), "not before close_notify is out");

    rig.socket.room = 100;
    rig.io.writable = true;
    rig.pump.on_writable(&mut rig.socket, &mut rig.io);
    assert_eq!(rig.socket.output, b"hello worldCLOSE");
    assert!(rig.socket.shut.get(), "half-closed once everything is out");
}

#[test]
fn a_fatal_error_sends_its_alert_and_every_later_call_repeats_it() {
    let mut rig = Rig::new(Clear::new(64), b"ab!", false, 64);
    rig.socket.room = 100;
    let err = rig.fill().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert_eq!(err.to_string(), "bad record");
    assert_eq!(
        rig.socket.output, b"ALERT",
        "the alert went out before the close"
    );
    assert_eq!(rig.fill().unwrap_err().to_string(), "bad record");
    assert_eq!(rig.flush(b"x", b"").unwrap_err().to_string(), "bad record");
}

#[test]
fn the_socket_ending_during_the_handshake_is_a_failure() {
    let mut engine = Clear::new(64);
    engine.handshaking = true;
    let mut rig = Rig::new(engine, b"", true, 64);
    let err = rig.fill().unwrap_err();
    assert_eq!(err.to_string(), "closed during the handshake");
    assert!(rig.io.read_eof);
}

#[test]
fn an_idle_connection_is_alive_until_it_says_something() {
    let mut rig = Rig::new(Clear::new(64), b"", false, 64);
    assert!(rig.pump.idle_alive(&mut rig.socket, &mut rig.io));
    assert!(!rig.io.readable, "the spurious wake-up cleared readability");
    rig.socket.input.extend(b"x");
    rig.io.readable = true;
    assert!(!rig.pump.idle_alive(&mut rig.socket, &mut rig.io));
}

#[test]
fn the_hand_off_keeps_the_socket_bytes_the_engine_did_not_take() {
    // Takes nothing, as a session waiting for its ClientHello's config does.
    let mut rig = Rig::new(Clear::new(0), b"records", false, 64);
    assert_eq!(rig.fill().unwrap(), Filled::Nothing);
    let (_, raw) = rig.pump.into_parts();
    assert_eq!(raw, b"records");
}
