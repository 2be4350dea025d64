//! Prometheus metrics: lock-free counters and fixed-bucket histograms (`atomic`) per backend label
//! ([`BackendMetrics`], held by each request thread's backend next to its instances' `Activity`) and for
//! the whole process ([`Metrics`]), rendered at scrape time to the text exposition format ([`page`]).
//!
//! * A request adds to its backend's counters once, when it ends, from one [`ExchangeEnd`] built where
//!   each protocol's request ends (HTTP/1: `Reactor::report_exchange` and the proxy's own answers; h2:
//!   the end of a stream). Answers given before a backend was chosen (a 400, a 404) count under no
//!   backend label.
//! * Lifecycle counters are added by the reactor from the reports it receives.
//! * Gauges (connections, backend states, held requests) and `process_*` are read at scrape time.
//!
//! Labels are bounded: a backend label is a `[backends]` Host, a pool name or a session template name
//! (never a session id); the others are fixed sets (protocol, status class, error code, state).

mod atomic;
mod backend;
mod exchange;
pub mod page;
pub mod process;
pub mod render;

use std::sync::{Arc, Mutex};

pub use atomic::{Counter, Gauge, Histogram, HistogramSnapshot};
pub use backend::{BackendMetrics, LifecycleMetrics, RequestMetrics};
pub use exchange::{ExchangeEnd, Protocol};

use crate::config::BackendConfig;
use crate::upstream::{Change, Reconcile};

/// The metrics of the whole process, built once (`crate::run`) and shared by `Arc`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// By label, in the order first seen. Kept after a backend is removed, so its counters never go
    /// back; bounded by the names the config ever had.
    backends: Mutex<Vec<(Arc<str>, Arc<BackendMetrics>)>>,
    /// Requests answered before they had a backend (bad requests, unknown hosts, no route, session
    /// gate answers).
    pub unrouted: RequestMetrics,
    /// Open HTTP/2 client connections and streams (the h2 worker's own count).
    pub h2_connections: Gauge,
    pub h2_streams: Gauge,
    pub reloads_ok: Counter,
    pub reloads_failed: Counter,
    /// ACME orders that brought a certificate, and those that failed (each retried after a back-off).
    pub acme_issued: Counter,
    pub acme_failed: Counter,
}

/// The label a backend's requests and lifecycle are counted under: a session's template (one series
/// for all its sessions), otherwise its name.
pub fn label_of(config: &BackendConfig) -> &str {
    match &config.session {
        Some(tag) => &tag.template,
        None => &config.hostname,
    }
}

impl Metrics {
    /// The counters of `label`, made on first use. Called when a reload or a session adds a backend,
    /// never per request.
    pub fn backend(&self, label: &str) -> Arc<BackendMetrics> {
        let mut backends = self.backends.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, found)) = backends.iter().find(|(l, _)| **l == *label) {
            return found.clone();
        }
        let made = Arc::new(BackendMetrics::default());
        backends.push((label.into(), made.clone()));
        made
    }

    /// Gives each backend a reload (or a session) adds or keeps the counters of its label, before the
    /// threads apply it.
    pub fn adopt(&self, reconcile: &mut Reconcile) {
        for change in &mut reconcile.changes {
            if let Change::Add { entry, .. } | Change::Keep { entry, .. } = change {
                entry.metrics = self.backend(label_of(&entry.config));
            }
        }
    }

    /// Every label with its counters, sorted by label.
    pub fn labelled(&self) -> Vec<(Arc<str>, Arc<BackendMetrics>)> {
        let mut all = self
            .backends
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}
