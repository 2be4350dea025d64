//! The two raw operations every pump is built from, with edge-triggered readiness bookkeeping.

use std::io::{self, IoSlice, Read, Write};

use mio::event::Event;

use super::buffer::Buffer;

/// Edge-triggered readiness as last reported by mio, cleared when an operation would block.
#[derive(Debug, Default, Clone, Copy)]
pub struct Readiness {
    pub readable: bool,
    pub writable: bool,
    /// The peer finished sending (read returned 0).
    pub read_eof: bool,
    /// An event reported the peer's close (EOF is due once the buffered data is read).
    pub peer_closed: bool,
}

impl Readiness {
    /// Records a poll event. An error or a close counts as readiness both ways: the next operation then
    /// reports what happened.
    pub fn on_event(&mut self, event: &Event) {
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.readable = true;
            self.peer_closed |= event.is_read_closed() || event.is_error();
        }
        if event.is_writable() || event.is_write_closed() || event.is_error() {
            self.writable = true;
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Filled {
    Bytes(usize),
    /// Not readable right now, or no room.
    Nothing,
    /// The peer finished sending (reported once).
    Eof,
}

/// One read into `buf` if the socket is readable and the buffer has room.
///
/// A read that fills less than the room offered drained the socket: readiness is cleared without the
/// extra read that would only return `EAGAIN` (new data raises a new edge). Unless the peer's close was
/// already reported: then no new edge will come, so reading goes on until the end of stream shows.
pub fn fill<S: Read>(buf: &mut Buffer, stream: &mut S, io: &mut Readiness) -> io::Result<Filled> {
    if !io.readable || io.read_eof || buf.is_full() {
        return Ok(Filled::Nothing);
    }
    loop {
        match buf.read_from(stream) {
            Ok((0, _)) => {
                io.read_eof = true;
                return Ok(Filled::Eof);
            }
            Ok((n, offered)) => {
                if n < offered && !io.peer_closed {
                    io.readable = false;
                }
                return Ok(Filled::Bytes(n));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                io.readable = false;
                return Ok(Filled::Nothing);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// One vectored write of `first` then `second` if the socket is writable; returns bytes written.
pub fn flush<S: Write>(
    stream: &mut S,
    io: &mut Readiness,
    first: &[u8],
    second: &[u8],
) -> io::Result<usize> {
    if !io.writable || (first.is_empty() && second.is_empty()) {
        return Ok(0);
    }
    let slices = [IoSlice::new(first), IoSlice::new(second)];
    loop {
        match stream.write_vectored(&slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                io.writable = false;
                return Ok(0);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Splits `written` bytes of a two-part write into (from first, from second).
pub fn split_written(written: usize, first_len: usize) -> (usize, usize) {
    let a = written.min(first_len);
    (a, written - a)
}
