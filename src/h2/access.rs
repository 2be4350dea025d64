//! A stream's access-log line: [`StreamLog`] is made when the stream begins and writes the line when it
//! is dropped, so a stream that ends in any way (answered, forwarded, reset, or cancelled with its
//! connection) has exactly one. What the stream does on the way is noted in its [`Tally`].

use std::cell::Cell;
use std::net::IpAddr;
use std::time::Instant;

use http::request::Parts;

use crate::access_log::{self, AccessLog, Protocol, Record, Seen};
use crate::error::ErrorCode;
use crate::msg::Host;

/// What a stream sent and received, noted as it happens (cheap enough to keep with the log off).
#[derive(Debug, Default)]
pub struct Tally {
    /// The status of the response head sent, if one was.
    pub status: Cell<Option<u16>>,
    /// The proxy's error, when it answered one.
    pub code: Cell<Option<ErrorCode>>,
    /// Request body bytes received.
    pub bytes_in: Cell<u64>,
    /// Response body bytes sent.
    pub bytes_out: Cell<u64>,
}

impl Tally {
    pub fn add_in(&self, n: usize) {
        self.bytes_in
            .set(self.bytes_in.get().saturating_add(n as u64));
    }

    pub fn add_out(&self, n: usize) {
        self.bytes_out
            .set(self.bytes_out.get().saturating_add(n as u64));
    }

    /// The proxy answered with `status` (and `code`, for its errors) and a body of `body` bytes.
    pub fn answered(&self, status: u16, code: Option<ErrorCode>, body: usize) {
        self.status.set(Some(status));
        self.code.set(code);
        self.add_out(body);
    }
}

/// The line of one stream, written on drop.
pub struct StreamLog<'a> {
    log: &'a AccessLog,
    /// `None` when the log is off: nothing is copied and nothing written.
    seen: Option<Box<Seen>>,
    client: IpAddr,
    request_id: &'a [u8],
    instance: Option<u32>,
    pub tally: Tally,
}

impl<'a> StreamLog<'a> {
    pub fn begin(log: &'a AccessLog, parts: &Parts, client: IpAddr, request_id: &'a [u8]) -> Self {
        let seen = log.enabled().then(|| {
            let field = |name| parts.headers.get(name).map_or(&[][..], |v| v.as_bytes());
            let host = match parts.uri.authority() {
                Some(authority) => authority.as_str().as_bytes(),
                None => field(http::header::HOST),
            };
            let target = parts
                .uri
                .path_and_query()
                .map_or(&b"/"[..], |p| p.as_str().as_bytes());
            let parts = access_log::Parts {
                method: parts.method.as_str().as_bytes(),
                target,
                host,
                referer: field(http::header::REFERER),
                user_agent: field(http::header::USER_AGENT),
            };
            Seen::new(parts, Protocol::Http2, Instant::now())
        });
        StreamLog {
            log,
            seen,
            client,
            request_id,
            instance: None,
            tally: Tally::default(),
        }
    }

    /// The stream was routed to `backend`; `held` while it starts.
    pub fn routed(&mut self, backend: &Host, held: bool) {
        if let Some(seen) = &mut self.seen {
            seen.backend = Some(backend.clone());
            seen.held = held;
        }
    }

    /// The stream stopped waiting for a start (forwarded, or answered); `instance` when forwarded.
    pub fn wait_over(&mut self, instance: Option<u32>) {
        self.instance = instance;
        if let Some(seen) = &mut self.seen {
            seen.wait_over(Instant::now());
        }
    }
}

impl Drop for StreamLog<'_> {
    fn drop(&mut self) {
        let Some(seen) = &mut self.seen else {
            return;
        };
        seen.wait_over(Instant::now());
        let tally = &self.tally;
        self.log.record(&Record {
            seen: Some(seen),
            client: self.client,
            request_id: self.request_id,
            status: tally.status.get(),
            code: tally.code.get(),
            bytes_in: tally.bytes_in.get(),
            bytes_out: tally.bytes_out.get(),
            backend: seen.backend.as_deref(),
            instance: self.instance,
        });
    }
}
