//! The response half of one HTTP/1 exchange as a sans-IO machine: the backend's bytes in, what to do with
//! them out (queue a rewritten head for the client, consume it, relay this many body bytes, become a
//! tunnel, give up). No sockets, no clock: the reactor reads and writes, feeds the bytes it holds, and
//! carries out the answer.
//!
//! ```text
//!  AwaitingHead ──1xx──▶ AwaitingHead (interim head relayed to HTTP/1.1 clients)
//!       │  └─────101───▶ (tunnel: the reactor takes over)
//!       └──final head──▶ Body ──body complete, all relayed──▶ done
//! ```
//!
//! The machine keeps only what the response phase needs; which connection goes on, and what a fault
//! becomes (a 502, a retry, a close), is decided by the caller from [`Advance`] and [`Fault`]. However
//! it goes, the caller reports the exchange once, as an [`ExchangeEnd`].

use std::time::Duration;

use super::body::BodyReader;
use super::head_scan::HeadScan;
use super::response::parse_response;
use super::rewrite::{write_response, Ending, ResponseContext, ResponseEdits, Vars};
use super::{Framing, Version};

mod request;
#[cfg(test)]
mod tests;

pub use crate::metrics::ExchangeEnd;
pub use request::{HeadReader, HeadStep, RequestHalf};

/// What the request asked for, as far as its response is concerned.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    pub version: Version,
    pub is_head: bool,
    pub upgrade: bool,
    /// The client wants the connection kept open (and the proxy is not shutting down).
    pub keep_alive: bool,
    /// The X-Request-ID the client gets back.
    pub request_id: &'a [u8],
    /// The route's response edits and what they read, if it has any.
    pub editing: Option<&'a ResponseContext>,
    /// How long the request was held while its backend started, to say in `Server-Timing` (`None`
    /// when it was not, or the backend's `server_timing` is off).
    pub cold_start: Option<Duration>,
}

impl<'a> Asked<'a> {
    /// The route's response edits (none for most routes).
    fn edits(&self) -> &'a ResponseEdits {
        static NO_EDITS: ResponseEdits = ResponseEdits::NONE;
        self.editing.map_or(&NO_EDITS, |e| e.edits())
    }

    /// What response edit templates may read.
    fn vars(&self) -> Vars<'a> {
        match self.editing {
            Some(editing) => editing.vars(self.request_id),
            None => Vars {
                request_id: self.request_id,
                ..Vars::default()
            },
        }
    }
}

/// Where the response to the request being forwarded is.
#[derive(Debug)]
pub enum ResponsePhase {
    /// `scan` says when the response bytes so far are worth parsing.
    AwaitingHead { scan: HeadScan },
    Body {
        reader: BodyReader,
        /// Bytes at the front of the backend's buffer that belong to the body and are not yet relayed.
        pending: usize,
        /// The backend connection may be pooled once the body is complete.
        reusable: bool,
    },
}

/// What the backend's bytes so far call for.
#[derive(Debug, PartialEq, Eq)]
pub enum Advance {
    /// Nothing new: wait for more bytes.
    Wait,
    /// An interim (1xx) head was handled (and queued for an HTTP/1.1 client); consume `consumed` bytes
    /// and advance again: another head follows.
    Interim { consumed: usize },
    /// The 101 answering an upgrade was queued; consume `consumed` bytes: the connection is a tunnel now.
    Tunnel { consumed: usize },
    /// The final head was queued at `head_at` in the client's output; consume `consumed` bytes. The
    /// client connection may go on after this response when `keep`.
    Head {
        consumed: usize,
        status: u16,
        head_at: usize,
        keep: bool,
    },
    /// The first `pending` bytes of the backend's buffer are body, to relay (then report with
    /// [`ResponsePhase::relayed`]).
    Relay { pending: usize },
}

/// Why the response cannot go on.
#[derive(Debug, PartialEq, Eq)]
pub enum Fault {
    /// The backend closed (or failed) before sending a byte: a pooled connection dies like this, so
    /// one retry may be due.
    Gone(&'static str),
    /// The response head is unacceptable: 502.
    BadHead(String),
    /// The response broke after its head was queued: 502 if nothing of it went out yet, else a close.
    Broken(String),
}

impl ResponsePhase {
    /// Waiting for the first byte of a response head.
    pub fn awaiting_head() -> ResponsePhase {
        ResponsePhase::AwaitingHead {
            scan: HeadScan::default(),
        }
    }

    pub fn is_awaiting_head(&self) -> bool {
        matches!(self, ResponsePhase::AwaitingHead { .. })
    }

    /// Feeds the backend's unconsumed bytes (`input`) and whether it has finished sending. Response
    /// heads go to `out`; `client_eof` is whether the client has finished sending (its connection cannot
    /// go on after this response).
    pub fn advance(
        &mut self,
        input: &[u8],
        backend_eof: bool,
        client_eof: bool,
        asked: &Asked<'_>,
        out: &mut Vec<u8>,
    ) -> Result<Advance, Fault> {
        match self {
            ResponsePhase::AwaitingHead { scan } => {
                if input.is_empty() {
                    if backend_eof {
                        return Err(Fault::Gone(
                            "the backend closed the connection without answering",
                        ));
                    }
                    return Ok(Advance::Wait);
                }
                let parsed = if scan.worth_parsing(input) {
                    parse_response(input, asked.is_head)
                } else {
                    Ok(None)
                };
                let head = match parsed {
                    Err(e) => {
                        return Err(Fault::BadHead(format!(
                            "invalid response from the backend: {}",
                            e.reason
                        )))
                    }
                    Ok(None) if backend_eof => {
                        return Err(Fault::BadHead(
                            "the backend sent an incomplete response head".to_string(),
                        ))
                    }
                    Ok(None) => return Ok(Advance::Wait),
                    Ok(Some(head)) => head,
                };
                let consumed = head.len;
                if head.status < 200 {
                    let switching = head.status == 101;
                    if switching && !asked.upgrade {
                        return Err(Fault::BadHead(
                            "unexpected 101 from the backend".to_string(),
                        ));
                    }
                    // Interim answers (100 Continue, 103) go to HTTP/1.1 clients only; a 101 only ever
                    // answers an upgrade, which HTTP/1.1 alone can ask for.
                    if switching || asked.version == Version::Http11 {
                        let vars = asked.vars();
                        let edits = asked.edits();
                        let ending = Ending {
                            close: false,
                            cold_start: asked.cold_start,
                        };
                        write_response(input, &head, asked.version, ending, edits, &vars, out);
                    }
                    // What follows is another head, from its first byte.
                    *scan = HeadScan::default();
                    return Ok(if switching {
                        Advance::Tunnel { consumed }
                    } else {
                        Advance::Interim { consumed }
                    });
                }
                // A declined upgrade leaves the connection in HTTP/1.1 (RFC 9110 section 7.8): what the
                // client sent behind it is parsed as its next request, never tunnelled.
                let keep = asked.keep_alive && !client_eof && head.framing != Framing::UntilClose;
                let head_at = out.len();
                let vars = asked.vars();
                let edits = asked.edits();
                let ending = Ending {
                    close: !keep,
                    cold_start: asked.cold_start,
                };
                write_response(input, &head, asked.version, ending, edits, &vars, out);
                *self = ResponsePhase::Body {
                    reader: BodyReader::new(head.framing),
                    pending: 0,
                    reusable: head.keep_alive,
                };
                Ok(Advance::Head {
                    consumed,
                    status: head.status,
                    head_at,
                    keep,
                })
            }
            ResponsePhase::Body {
                reader, pending, ..
            } => {
                if *pending == 0 && !reader.is_done() {
                    *pending = reader.advance(input).map_err(|e| {
                        Fault::Broken(format!(
                            "invalid response body from the backend: {}",
                            e.reason
                        ))
                    })?;
                    if *pending == 0 && backend_eof && input.is_empty() && reader.at_eof().is_err()
                    {
                        return Err(Fault::Broken(
                            "the backend closed the connection in the middle of its response"
                                .to_string(),
                        ));
                    }
                }
                Ok(Advance::Relay { pending: *pending })
            }
        }
    }

    /// `n` body bytes were relayed to the client (and consumed from the backend's buffer).
    pub fn relayed(&mut self, n: usize) {
        if let ResponsePhase::Body { pending, .. } = self {
            *pending -= n.min(*pending);
        }
    }

    /// The body is complete and every byte of it was relayed.
    pub fn is_complete(&self) -> bool {
        matches!(self, ResponsePhase::Body { reader, pending: 0, .. } if reader.is_done())
    }

    /// The backend said its connection may be reused after this response.
    pub fn backend_reusable(&self) -> bool {
        matches!(self, ResponsePhase::Body { reusable: true, .. })
    }
}
