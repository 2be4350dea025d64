//! A stream's record: [`StreamRecord`] is made when the stream begins and, when it is dropped, counts the
//! stream in the metrics and writes its access-log line, so a stream that ends in any way (answered,
//! forwarded, reset, or cancelled with its connection) is counted and logged exactly once, from the same
//! [`Tally`].

use std::net::IpAddr;
use std::time::Instant;

use http::request::Parts;

use super::tally::Tally;
use crate::access_log::{self, AccessLog, Protocol, Record, Seen};
use crate::metrics::Metrics;
use crate::msg::Host;

pub struct StreamRecord<'a> {
    log: &'a AccessLog,
    metrics: &'a Metrics,
    /// `None` when the log is off: nothing is copied and nothing written.
    seen: Option<Seen>,
    client: IpAddr,
    request_id: &'a [u8],
    instance: Option<u32>,
    pub tally: Tally,
}

impl<'a> StreamRecord<'a> {
    /// A stream begins: counted open until the record is dropped.
    pub fn begin(
        (log, metrics): (&'a AccessLog, &'a Metrics),
        parts: &Parts,
        client: IpAddr,
        request_id: &'a [u8],
        started: Instant,
    ) -> Self {
        metrics.h2_streams.inc();
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
            Seen::capture(parts, Protocol::Http2, started)
        });
        StreamRecord {
            log,
            metrics,
            seen,
            client,
            request_id,
            instance: None,
            tally: Tally::new(started),
        }
    }

    /// The stream was routed to `backend`; `held` while it starts, which it `woke` (began).
    pub fn routed(&mut self, backend: &Host, (held, woke): (bool, bool)) {
        if let Some(seen) = &mut self.seen {
            seen.backend = Some(backend.clone());
            seen.held = held;
            seen.woke = woke;
        }
    }

    /// The stream stopped waiting for a start (forwarded, or answered); `instance` when forwarded.
    pub fn wait_over(&mut self, instance: Option<u32>) {
        self.instance = instance;
        // The clock is read only for a stream that was held.
        if let Some(seen) = self.seen.as_mut().filter(|seen| seen.held) {
            seen.wait_over(Instant::now());
        }
    }
}

impl Drop for StreamRecord<'_> {
    fn drop(&mut self) {
        self.metrics.h2_streams.dec();
        // One reading of the clock for the stream's duration, in the metrics and on its line.
        let now = Instant::now();
        let end = self.tally.end(now);
        self.tally.record(&end, &self.metrics.unrouted);
        let Some(seen) = &mut self.seen else {
            return;
        };
        seen.wait_over(now);
        self.log.record(
            &Record {
                seen: Some(seen),
                client: self.client,
                request_id: self.request_id,
                status: end.status,
                code: end.code,
                bytes_in: end.bytes_in,
                bytes_out: end.bytes_out,
                backend: seen.backend.as_deref(),
                instance: self.instance,
            },
            now,
        );
    }
}
