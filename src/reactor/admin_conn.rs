//! One admin connection: read one request (head and a bounded body), then either write its answer and
//! close, wait for the answer (a session connect waits until both request threads route the session),
//! or stream server-sent events until the session ends or the client leaves. What each request gets is
//! decided in `admin_api`.

use std::io::{self, Read, Write};

use mio::net::TcpStream;

use crate::admin;
use crate::error::ErrorCode;
use crate::http1::fields::FieldName;
use crate::http1::request::parse_request;
use crate::http1::Framing;

/// Admin request heads are tiny; anything bigger is not one.
const MAX_ADMIN_HEAD: usize = 8 * 1024;
/// The largest request body (a session connect's JSON).
pub const MAX_ADMIN_BODY: usize = 64 * 1024;
/// Unsent event bytes a stream may pile up; a client that reads slower than that is dropped.
const MAX_STREAM_BACKLOG: usize = 256 * 1024;

/// One admin request, owned: it outlives the buffer it was read from.
#[derive(Debug)]
pub struct AdminRequest {
    pub method: Box<[u8]>,
    /// The target as sent (path and query).
    pub target: Box<[u8]>,
    /// The `Authorization` field's value, if exactly one was sent.
    pub authorization: Option<Box<[u8]>>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    /// The answer is being written; close once it is out.
    Answering,
    /// The answer is not known yet.
    Parked,
    /// An event stream: frames are written as they come; nothing more is read.
    Streaming,
}

pub struct AdminConn {
    stream: TcpStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    state: State,
    /// The stream's last frame is queued: close once it is out.
    closing: bool,
}

/// What a readiness event on an admin connection led to.
pub enum Drive {
    /// A complete request to answer.
    Request(AdminRequest),
    /// Nothing to do yet.
    Pending,
    /// Done (answered, or the peer is gone): close.
    Done,
}

impl AdminConn {
    pub fn new(stream: TcpStream) -> Self {
        AdminConn {
            stream,
            inbuf: Vec::new(),
            out: Vec::new(),
            state: State::Reading,
            closing: false,
        }
    }

    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Reads what arrived, writes what is pending.
    pub fn drive(&mut self) -> Drive {
        match self.state {
            State::Reading => match self.read_request() {
                Ok(Some(request)) => Drive::Request(request),
                Ok(None) => Drive::Pending,
                Err(Some(answer)) => {
                    self.state = State::Answering;
                    self.out = answer;
                    self.flush()
                }
                Err(None) => Drive::Done,
            },
            State::Answering => self.flush(),
            // A parked or streaming client has nothing more to say; reading only tells whether it left.
            State::Parked | State::Streaming => {
                if self.peer_left() {
                    return Drive::Done;
                }
                self.flush()
            }
        }
    }

    /// Sends the complete answer, then closes. Returns true when the connection is done.
    pub fn respond(&mut self, response: Vec<u8>) -> bool {
        self.state = State::Answering;
        self.out = response;
        matches!(self.flush(), Drive::Done)
    }

    /// The answer comes later ([`respond`](Self::respond)).
    pub fn park(&mut self) {
        self.state = State::Parked;
    }

    /// Starts an event stream with `head` and the frames so far. Returns true when done already (the
    /// stream was complete, or the peer is gone).
    pub fn stream(&mut self, bytes: Vec<u8>, complete: bool) -> bool {
        self.state = State::Streaming;
        self.closing = complete;
        self.out = bytes;
        matches!(self.flush(), Drive::Done)
    }

    /// One more frame of the stream (`last`: the stream ends with it). Returns true when done.
    pub fn push(&mut self, frame: &[u8], last: bool) -> bool {
        if self.out.len() + frame.len() > MAX_STREAM_BACKLOG {
            log::debug!("admin: dropping an event stream whose client does not read");
            return true;
        }
        self.out.extend_from_slice(frame);
        self.closing |= last;
        matches!(self.flush(), Drive::Done)
    }

    /// `Ok(Some)` for a complete request, `Ok(None)` for more to read, `Err(Some(answer))` for a request
    /// refused as it is read, `Err(None)` when the peer left.
    fn read_request(&mut self) -> Result<Option<AdminRequest>, Option<Vec<u8>>> {
        let mut chunk = [0u8; 4096];
        let mut eof = false;
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    self.inbuf.extend_from_slice(&chunk[..n]);
                    if self.inbuf.len() > MAX_ADMIN_HEAD + MAX_ADMIN_BODY {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(None),
            }
        }
        let head = match parse_request(&self.inbuf) {
            Ok(Some(head)) => head,
            Ok(None) if self.inbuf.len() >= MAX_ADMIN_HEAD => {
                return Err(Some(admin::error(
                    ErrorCode::HeaderFieldsTooLarge,
                    "request head too large",
                )))
            }
            Ok(None) if eof => return Err(None),
            Ok(None) => return Ok(None),
            Err(e) => return Err(Some(admin::error(e.code, e.reason))),
        };
        let length = match head.framing {
            Framing::None => 0,
            Framing::Length(n) if n <= MAX_ADMIN_BODY as u64 => n as usize,
            Framing::Length(_) => {
                return Err(Some(admin::error(
                    ErrorCode::PayloadTooLarge,
                    "admin request bodies are at most 64 KiB",
                )))
            }
            _ => {
                return Err(Some(admin::error(
                    ErrorCode::BadRequest,
                    "send the body with Content-Length",
                )))
            }
        };
        let end = head.len + length;
        if self.inbuf.len() < end {
            return match eof {
                true => Err(None),
                false => Ok(None),
            };
        }
        let mut authorization = None;
        let mut authorizations = 0;
        for h in &head.headers {
            if h.kind == FieldName::Other
                && self.inbuf[h.name.clone()].eq_ignore_ascii_case(b"authorization")
            {
                authorizations += 1;
                authorization = Some(self.inbuf[h.value.clone()].into());
            }
        }
        Ok(Some(AdminRequest {
            method: self.inbuf[head.method.clone()].into(),
            target: self.inbuf[head.target.clone()].into(),
            authorization: authorization.filter(|_| authorizations == 1),
            body: self.inbuf[head.len..end].to_vec(),
        }))
    }

    /// Whether a client that should only be listening has closed its end (or the socket failed).
    fn peer_left(&mut self) -> bool {
        let mut chunk = [0u8; 512];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                // Whatever it sends now is ignored, but must not pile up.
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return true,
            }
        }
    }

    /// Writes what it can; `Done` once an answer (or a closing stream) is fully out, or on error.
    fn flush(&mut self) -> Drive {
        while !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(0) => return Drive::Done,
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Drive::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Drive::Done,
            }
        }
        match self.state {
            State::Answering => Drive::Done,
            State::Streaming if self.closing => Drive::Done,
            _ => Drive::Pending,
        }
    }
}
