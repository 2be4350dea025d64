//! What one stream did, noted as it goes: status, error code, bytes each way, when the response head
//! came and how long the stream was held for a start. The stream's record ([`super::access::StreamRecord`])
//! reads it once, when the stream ends, for both its access-log line and its metrics.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::ErrorCode;
use crate::metrics::{BackendMetrics, ExchangeEnd, Protocol, RequestMetrics};

/// Cheap enough to keep for every stream, whether the access log is on or not.
#[derive(Debug)]
pub struct Tally {
    started: Instant,
    /// The routed backend's counters; `None` until routed (the stream then counts under no backend).
    backend: RefCell<Option<Arc<BackendMetrics>>>,
    /// The status of the response head sent, if one was.
    status: Cell<Option<u16>>,
    /// The proxy's error, when it answered one.
    code: Cell<Option<ErrorCode>>,
    /// Request body bytes received.
    bytes_in: Cell<u64>,
    /// Response body bytes sent.
    bytes_out: Cell<u64>,
    head_wait: Cell<Option<Duration>>,
    cold: Cell<Option<Duration>>,
}

impl Tally {
    pub fn new(started: Instant) -> Tally {
        Tally {
            started,
            backend: RefCell::new(None),
            status: Cell::new(None),
            code: Cell::new(None),
            bytes_in: Cell::new(0),
            bytes_out: Cell::new(0),
            head_wait: Cell::new(None),
            cold: Cell::new(None),
        }
    }

    pub fn add_in(&self, n: usize) {
        self.bytes_in
            .set(self.bytes_in.get().saturating_add(n as u64));
    }

    pub fn add_out(&self, n: usize) {
        self.bytes_out
            .set(self.bytes_out.get().saturating_add(n as u64));
    }

    /// Counts the stream under `backend` from now on.
    pub fn routed(&self, backend: Arc<BackendMetrics>) {
        *self.backend.borrow_mut() = Some(backend);
    }

    /// Counts the stream's `end` under its routed backend, or under none if it was not routed
    /// (borrowing the counters: no reference count taken and dropped per stream).
    pub fn record(&self, end: &ExchangeEnd, unrouted: &RequestMetrics) {
        match &*self.backend.borrow() {
            Some(backend) => backend.requests.record(end),
            None => unrouted.record(end),
        }
    }

    /// The stream was held while its backend started, until now, and goes to it.
    pub fn held_until_now(&self) {
        self.cold.set(Some(self.started.elapsed()));
    }

    /// How long it was held, if it was.
    pub fn cold(&self) -> Option<Duration> {
        self.cold.get()
    }

    /// The backend's final response head went out with `status`.
    pub fn head(&self, status: u16) {
        self.status.set(Some(status));
        self.head_wait.set(Some(self.started.elapsed()));
    }

    /// The proxy answered with `status` (and `code`, for its errors) and a body of `body` bytes.
    pub fn answered(&self, status: u16, code: Option<ErrorCode>, body: usize) {
        self.status.set(Some(status));
        self.code.set(code);
        self.add_out(body);
    }

    /// How the stream ended, as of `now`.
    pub fn end(&self, now: Instant) -> ExchangeEnd {
        ExchangeEnd {
            protocol: Protocol::H2,
            status: self.status.get(),
            code: self.code.get(),
            bytes_in: self.bytes_in.get(),
            bytes_out: self.bytes_out.get(),
            duration: now.saturating_duration_since(self.started),
            head_wait: self.head_wait.get(),
            cold: self.cold.get(),
        }
    }
}
