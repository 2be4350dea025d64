//! The request half of an HTTP/1 exchange, sans-IO: finding the next request head in a client's bytes
//! ([`HeadReader`]), and sending the forwarded head and the client's body to the backend
//! ([`RequestHalf`]). The reactor reads and writes; these decide what the bytes mean and what to send.
//!
//! ```text
//!  client bytes ──HeadReader::step──▶ Wait | Http2 (hand off) | Head | Refuse (400, 413, 431, ...) | Gone
//!  Head ──route, admit (upstream core)──▶ RequestHalf: head, then body ──▶ complete | Fault (400, 413)
//! ```

use super::super::body::BodyReader;
use super::super::detect::{sniff, Sniff};
use super::super::head_scan::HeadScan;
use super::super::request::{parse_request, RequestHead};
use super::super::Framing;
use crate::error::{ErrorCode, ProxyError};

/// Looks for one request head at the front of a client's bytes.
#[derive(Debug, Default)]
pub struct HeadReader {
    scan: HeadScan,
}

/// What the client's bytes so far call for.
#[derive(Debug)]
pub enum HeadStep {
    /// Not a whole head yet: wait for more bytes.
    Wait,
    /// The connection opens with the HTTP/2 preface: it belongs to the h2 worker.
    Http2,
    /// A complete head at the front of the input (its `len` bytes).
    Head(RequestHead),
    /// The head is unacceptable: answer this and close.
    Refuse(ProxyError),
    /// The client finished sending without (the rest of) a head: nobody is left to answer.
    Gone,
}

impl HeadReader {
    /// Judges `input` (the client's unconsumed bytes). `first` is whether no request was served on the
    /// connection yet (only then may it be HTTP/2); `client_eof` whether the client finished sending.
    pub fn step(&mut self, input: &[u8], first: bool, client_eof: bool) -> HeadStep {
        if input.is_empty() {
            return if client_eof {
                HeadStep::Gone
            } else {
                HeadStep::Wait
            };
        }
        if first {
            match sniff(input) {
                Sniff::NeedMore if !client_eof => return HeadStep::Wait,
                Sniff::Http2 => return HeadStep::Http2,
                _ => {}
            }
        }
        // Parse only when the new bytes can change the answer: a trickled head costs its size, not its
        // square. Once the client has finished, the bytes get their final verdict (a 400 for garbage, not
        // a silent close), however they were split.
        let parsed = if self.scan.worth_parsing(input) || client_eof {
            parse_request(input)
        } else {
            Ok(None)
        };
        match parsed {
            Ok(Some(head)) => {
                self.scan = HeadScan::default();
                HeadStep::Head(head)
            }
            Ok(None) if client_eof => HeadStep::Gone,
            Ok(None) => HeadStep::Wait,
            Err(e) => HeadStep::Refuse(ProxyError::new(e.code, e.reason)),
        }
    }
}

/// The forwarded head and the client's body on their way to the backend.
#[derive(Debug)]
pub struct RequestHalf {
    head: Vec<u8>,
    head_pos: usize,
    body: BodyReader,
    /// Body bytes at the front of the client's input that are taken and not yet written.
    pending: usize,
    /// Body bytes taken from the client so far.
    taken: u64,
    max_body: Option<u64>,
    abandoned: bool,
}

impl RequestHalf {
    pub fn new(head: Vec<u8>, framing: Framing, max_body: Option<u64>) -> RequestHalf {
        RequestHalf {
            head,
            head_pos: 0,
            body: BodyReader::new(framing),
            pending: 0,
            taken: 0,
            max_body,
            abandoned: false,
        }
    }

    /// Takes the next body bytes from the front of `input` (the client's unconsumed bytes) when none are
    /// waiting to be written. A malformed body is a 400; one over the limit a 413.
    pub fn take_body(&mut self, input: &[u8]) -> Result<(), (ErrorCode, String)> {
        if self.pending > 0 || self.body.is_done() || self.abandoned {
            return Ok(());
        }
        let n = self
            .body
            .advance(input)
            .map_err(|e| (ErrorCode::BadRequest, e.reason.to_string()))?;
        self.pending = n;
        self.taken += n as u64;
        if self.max_body.is_some_and(|max| self.taken > max) {
            return Err((ErrorCode::PayloadTooLarge, "request body too large".into()));
        }
        Ok(())
    }

    /// What to write to the backend now: the rest of the head, then body bytes from the front of `input`.
    pub fn to_write<'a>(&'a self, input: &'a [u8]) -> (&'a [u8], &'a [u8]) {
        if self.abandoned {
            return (&[], &[]);
        }
        (&self.head[self.head_pos..], &input[..self.pending])
    }

    /// `n` bytes of [`to_write`](Self::to_write) went out; returns how many of them were body bytes, to
    /// consume from the client's input.
    pub fn wrote(&mut self, n: usize) -> usize {
        let from_head = n.min(self.head.len() - self.head_pos);
        self.head_pos += from_head;
        let from_body = n - from_head;
        self.pending -= from_body;
        from_body
    }

    /// Writing to the backend failed (it may have answered early): nothing more is sent, and neither
    /// connection is reused after this exchange.
    pub fn abandon(&mut self) {
        self.abandoned = true;
    }

    /// Sends the head again on a new connection (the one retry a dead pooled connection earns; only
    /// for requests without a body).
    pub fn restart(&mut self) {
        self.head_pos = 0;
        self.abandoned = false;
    }

    /// The body has not ended yet (the client still owes bytes).
    pub fn body_open(&self) -> bool {
        !self.body.is_done()
    }

    /// The client finished sending in the middle of its body, with nothing of it left to write.
    pub fn cut_by(&self, client_eof: bool) -> bool {
        client_eof && self.pending == 0 && !self.body.is_done()
    }

    /// Everything was written: head and whole body.
    pub fn is_complete(&self) -> bool {
        self.head_pos == self.head.len() && self.pending == 0 && self.body.is_done()
    }

    /// Body bytes taken from the client.
    pub fn bytes_in(&self) -> u64 {
        self.taken
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
