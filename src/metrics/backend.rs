//! The counters of one backend (a `[backends]` entry, a pool, or every session of one template): what
//! its requests did and what its lifecycle did. One `Arc` per label, shared by the request threads (each
//! backend holds it next to its instances' `Activity`) and kept across reloads.

use super::atomic::{Counter, Gauge, Histogram, REQUEST_BUCKETS, START_BUCKETS};
use super::exchange::{class_index, ExchangeEnd, CLASSES, CODES};

/// Requests by protocol and class (answered by the backend) or by protocol and error code (answered by
/// the proxy), their bytes and durations.
#[derive(Debug)]
pub struct RequestMetrics {
    by_class: [[Counter; CLASSES.len()]; 2],
    by_code: [[Counter; CODES.len()]; 2],
    pub bytes_in: Counter,
    pub bytes_out: Counter,
    pub duration: Histogram,
    pub head_wait: Histogram,
    /// Requests forwarded after being held while the backend started.
    pub cold: Counter,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        RequestMetrics {
            by_class: Default::default(),
            by_code: Default::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            duration: Histogram::new(&REQUEST_BUCKETS),
            head_wait: Histogram::new(&REQUEST_BUCKETS),
            cold: Counter::default(),
        }
    }
}

impl RequestMetrics {
    /// A handful of relaxed atomic adds.
    pub fn record(&self, end: &ExchangeEnd) {
        let protocol = end.protocol as usize;
        match end.code {
            Some(code) => {
                if let Some(counter) = self.by_code[protocol].get(code as usize) {
                    counter.inc();
                }
            }
            None => self.by_class[protocol][class_index(end.status)].inc(),
        }
        if end.bytes_in > 0 {
            self.bytes_in.add(end.bytes_in);
        }
        self.bytes_out.add(end.bytes_out);
        self.duration.observe(end.duration);
        if let Some(wait) = end.head_wait {
            self.head_wait.observe(wait);
        }
        if end.cold.is_some() {
            self.cold.inc();
        }
    }

    /// Requests the backend answered, by protocol index and class index.
    pub fn answered(&self, protocol: usize, class: usize) -> u64 {
        self.by_class[protocol][class].get()
    }

    /// Requests the proxy answered with an error code, by protocol index and code index.
    pub fn refused(&self, protocol: usize, code: usize) -> u64 {
        self.by_code[protocol][code].get()
    }
}

/// What the lifecycle reports say happened to the backend's instances.
#[derive(Debug)]
pub struct LifecycleMetrics {
    /// Instances that began starting.
    pub starts: Counter,
    /// Start to ready, per start that became ready.
    pub start_duration: Histogram,
    pub start_failures: Counter,
    /// Times starts were suspended after repeated failures or crashes.
    pub backoffs: Counter,
    /// Instances found unhealthy (a restart follows).
    pub unhealthy: Counter,
}

impl Default for LifecycleMetrics {
    fn default() -> Self {
        LifecycleMetrics {
            starts: Counter::default(),
            start_duration: Histogram::new(&START_BUCKETS),
            start_failures: Counter::default(),
            backoffs: Counter::default(),
            unhealthy: Counter::default(),
        }
    }
}

/// Everything counted for one backend label.
#[derive(Debug, Default)]
pub struct BackendMetrics {
    pub requests: RequestMetrics,
    pub lifecycle: LifecycleMetrics,
    /// h2 streams waiting for a start or a free place (the reactor counts its own held requests at
    /// scrape time).
    pub h2_held: Gauge,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::ErrorCode;
    use crate::metrics::Protocol;

    fn end(protocol: Protocol, status: Option<u16>, code: Option<ErrorCode>) -> ExchangeEnd {
        ExchangeEnd {
            protocol,
            status,
            code,
            bytes_in: 3,
            bytes_out: 10,
            duration: Duration::from_millis(20),
            head_wait: status.map(|_| Duration::from_millis(8)),
            cold: None,
        }
    }

    #[test]
    fn a_request_counts_once_by_class_or_by_code() {
        let m = RequestMetrics::default();
        m.record(&end(Protocol::Http1, Some(200), None));
        m.record(&end(Protocol::H2, Some(404), None));
        m.record(&end(
            Protocol::Http1,
            Some(503),
            Some(ErrorCode::BackendStartFailed),
        ));
        m.record(&ExchangeEnd {
            cold: Some(Duration::from_secs(1)),
            ..end(Protocol::Http1, None, None)
        });
        assert_eq!(m.answered(0, 2), 1);
        assert_eq!(m.answered(1, 4), 1);
        assert_eq!(m.answered(0, 0), 1, "cut before a response");
        assert_eq!(m.answered(0, 5), 0, "the proxy's 503 counts under its code");
        assert_eq!(m.refused(0, ErrorCode::BackendStartFailed as usize), 1);
        assert_eq!((m.bytes_in.get(), m.bytes_out.get()), (12, 40));
        assert_eq!(m.duration.snapshot().count(), 4);
        assert_eq!(m.head_wait.snapshot().count(), 3);
        assert_eq!(m.cold.get(), 1);
    }
}
