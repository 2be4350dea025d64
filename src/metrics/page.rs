//! The whole `/metrics` page: every family, from the counters in [`Metrics`] and the gauges the reactor
//! reads at scrape time ([`Scrape`]). Sans-IO: the reactor gathers, this writes.

use super::exchange::{CLASSES, CODES};
use super::process::ProcessStats;
use super::render::{Exposition, Kind};
use super::{BackendMetrics, Metrics, Protocol, RequestMetrics};
use crate::msg::State;

/// The lifecycle states, as the `state` label spells them.
pub const STATES: [State; 5] = [
    State::Stopped,
    State::Starting,
    State::Ready,
    State::Unhealthy,
    State::Stopping,
];

/// What one backend label looks like now (summed over a template's sessions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendNow {
    pub label: String,
    /// Instances in each of [`STATES`].
    pub instances: [u64; 5],
    /// Requests, streams and tunnels in flight.
    pub in_flight: u64,
    /// Requests held for a start or a free place, by both request threads.
    pub held: u64,
}

/// What the reactor reads at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    pub http1_connections: u64,
    pub tunnels: u64,
    pub config_generation: u64,
    /// Access-log lines dropped because the writer fell behind.
    pub access_log_dropped: u64,
    /// Sorted by label.
    pub backends: Vec<BackendNow>,
    pub process: ProcessStats,
    /// The certificates HTTPS serves (empty without `[tls]`).
    pub certificates: Vec<CertificateNow>,
    /// ACME is configured: its order counters are shown.
    pub acme: bool,
}

/// One certificate served over HTTPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateNow {
    /// Its first name (a certificate is labelled by it; names come from the config, so the set is
    /// bounded).
    pub name: String,
    /// `file` (`[[tls.certificates]]`) or `acme`.
    pub source: &'static str,
    /// `notAfter`, Unix seconds.
    pub not_after: i64,
}

/// A family of one sample per backend: its name, its help, and how to read the value from `T`.
type Family<T> = (&'static str, &'static str, fn(&T) -> u64);

/// Renders the exposition.
pub fn render(metrics: &Metrics, now: &Scrape) -> String {
    let labelled = metrics.labelled();
    let backends: Vec<(&str, &BackendMetrics)> =
        labelled.iter().map(|(l, m)| (&**l, &**m)).collect();
    let mut requests: Vec<(&str, &RequestMetrics)> = vec![("", &metrics.unrouted)];
    requests.extend(backends.iter().map(|(l, m)| (*l, &m.requests)));
    let mut e = Exposition::default();
    write_requests(&mut e, &requests);
    write_lifecycle(&mut e, &backends);
    write_backends_now(&mut e, &now.backends);
    write_process_wide(&mut e, metrics, now);
    write_tls(&mut e, metrics, now);
    write_process(&mut e, &now.process);
    e.finish()
}

fn write_requests(e: &mut Exposition, all: &[(&str, &RequestMetrics)]) {
    let name = "spawngate_requests_total";
    e.family(
        name,
        Kind::Counter,
        "Requests by backend, client protocol, status class and (for answers the proxy gave in the \
         backend's place) error code.",
    );
    for (backend, m) in all {
        for protocol in Protocol::ALL {
            let p = protocol as usize;
            for (class_at, class) in CLASSES.iter().enumerate() {
                let n = m.answered(p, class_at);
                if n > 0 {
                    let labels = [
                        ("backend", *backend),
                        ("protocol", protocol.as_str()),
                        ("class", class),
                    ];
                    e.sample(name, &labels, n);
                }
            }
            for (code_at, code) in CODES.iter().enumerate() {
                let n = m.refused(p, code_at);
                if n > 0 {
                    let class = CLASSES[usize::from(code.status() / 100)];
                    let labels = [
                        ("backend", *backend),
                        ("protocol", protocol.as_str()),
                        ("class", class),
                        ("code", code.as_str()),
                    ];
                    e.sample(name, &labels, n);
                }
            }
        }
    }
    let durations = [
        (
            "spawngate_request_duration_seconds",
            "From the request head to the end of the response.",
            false,
        ),
        (
            "spawngate_response_head_wait_seconds",
            "From the request head to the backend's response head.",
            true,
        ),
    ];
    for (name, help, head) in durations {
        e.family(name, Kind::Histogram, help);
        for (backend, m) in all.iter().filter(|(b, _)| !head || !b.is_empty()) {
            let h = if head { &m.head_wait } else { &m.duration };
            e.histogram(name, &[("backend", backend)], &h.snapshot());
        }
    }
    let counters: [Family<RequestMetrics>; 3] = [
        (
            "spawngate_received_bytes_total",
            "Request body bytes received from clients.",
            |m| m.bytes_in.get(),
        ),
        (
            "spawngate_sent_bytes_total",
            "Response bytes sent to clients.",
            |m| m.bytes_out.get(),
        ),
        (
            "spawngate_cold_requests_total",
            "Requests forwarded after being held while their backend started.",
            |m| m.cold.get(),
        ),
    ];
    for (name, help, read) in counters {
        e.family(name, Kind::Counter, help);
        for (backend, m) in all {
            e.sample(name, &[("backend", backend)], read(m));
        }
    }
}

fn write_lifecycle(e: &mut Exposition, all: &[(&str, &BackendMetrics)]) {
    let counters: [Family<BackendMetrics>; 4] = [
        (
            "spawngate_backend_starts_total",
            "Instances that began starting (cold starts).",
            |m| m.lifecycle.starts.get(),
        ),
        (
            "spawngate_backend_start_failures_total",
            "Starts that failed (timeout, exit, spawn or Docker error).",
            |m| m.lifecycle.start_failures.get(),
        ),
        (
            "spawngate_backend_backoffs_total",
            "Times starts were suspended after repeated failures or crashes.",
            |m| m.lifecycle.backoffs.get(),
        ),
        (
            "spawngate_backend_unhealthy_restarts_total",
            "Instances found unhealthy (failed probes or a silent watchdog) and restarted.",
            |m| m.lifecycle.unhealthy.get(),
        ),
    ];
    for (name, help, read) in counters {
        e.family(name, Kind::Counter, help);
        for (backend, m) in all {
            e.sample(name, &[("backend", backend)], read(m));
        }
    }
    let name = "spawngate_backend_start_duration_seconds";
    e.family(
        name,
        Kind::Histogram,
        "From an instance's start to its readiness.",
    );
    for (backend, m) in all {
        let h = m.lifecycle.start_duration.snapshot();
        e.histogram(name, &[("backend", backend)], &h);
    }
}

fn write_backends_now(e: &mut Exposition, all: &[BackendNow]) {
    let name = "spawngate_backend_instances";
    e.family(
        name,
        Kind::Gauge,
        "Instances of the backend in each lifecycle state.",
    );
    for b in all {
        for (state, n) in STATES.iter().zip(b.instances) {
            e.sample(name, &[("backend", &b.label), ("state", state.as_str())], n);
        }
    }
    let name = "spawngate_backend_instances_running";
    e.family(name, Kind::Gauge, "Instances that are not stopped.");
    for b in all {
        let running = b.instances.iter().sum::<u64>() - b.instances[0];
        e.sample(name, &[("backend", &b.label)], running);
    }
    let gauges: [Family<BackendNow>; 2] = [
        (
            "spawngate_in_flight_requests",
            "Requests, streams and tunnels being forwarded to the backend.",
            |b| b.in_flight,
        ),
        (
            "spawngate_held_requests",
            "Requests waiting for the backend to start or for a free place.",
            |b| b.held,
        ),
    ];
    for (name, help, read) in gauges {
        e.family(name, Kind::Gauge, help);
        for b in all {
            e.sample(name, &[("backend", &b.label)], read(b));
        }
    }
}

fn write_process_wide(e: &mut Exposition, metrics: &Metrics, now: &Scrape) {
    let name = "spawngate_open_connections";
    e.family(name, Kind::Gauge, "Open client connections by protocol.");
    e.sample(name, &[("protocol", "http1")], now.http1_connections);
    e.sample(name, &[("protocol", "h2")], metrics.h2_connections.get());
    let gauges = [
        (
            "spawngate_open_h2_streams",
            "Open HTTP/2 streams.",
            metrics.h2_streams.get(),
        ),
        (
            "spawngate_open_tunnels",
            "Open tunnels (upgraded connections such as WebSockets).",
            now.tunnels,
        ),
        (
            "spawngate_config_generation",
            "The config generation: 1 at start, one more per applied reload.",
            now.config_generation,
        ),
    ];
    for (name, help, value) in gauges {
        e.family(name, Kind::Gauge, help);
        e.sample(name, &[], value);
    }
    let name = "spawngate_reloads_total";
    e.family(name, Kind::Counter, "Config reloads by result.");
    e.sample(name, &[("result", "ok")], metrics.reloads_ok.get());
    e.sample(name, &[("result", "failed")], metrics.reloads_failed.get());
    let name = "spawngate_access_log_dropped_total";
    e.family(
        name,
        Kind::Counter,
        "Access-log lines dropped because the writer fell behind.",
    );
    e.sample(name, &[], now.access_log_dropped);
}

/// Certificate expiry (alert on it: a renewal that keeps failing shows here weeks before clients do)
/// and ACME's orders.
fn write_tls(e: &mut Exposition, metrics: &Metrics, now: &Scrape) {
    if !now.certificates.is_empty() {
        let name = "spawngate_tls_certificate_expiry_timestamp_seconds";
        let help =
            "When each certificate served over HTTPS expires (notAfter, Unix seconds), by its \
                    first name and where it came from (file or acme).";
        e.family(name, Kind::Gauge, help);
        for cert in &now.certificates {
            let labels = [("name", cert.name.as_str()), ("source", cert.source)];
            e.sample(name, &labels, u64::try_from(cert.not_after).unwrap_or(0));
        }
    }
    if now.acme {
        let name = "spawngate_acme_orders_total";
        e.family(
            name,
            Kind::Counter,
            "ACME orders by result (failed ones are retried).",
        );
        e.sample(name, &[("result", "issued")], metrics.acme_issued.get());
        e.sample(name, &[("result", "failed")], metrics.acme_failed.get());
    }
}

fn write_process(e: &mut Exposition, p: &ProcessStats) {
    let floats = [
        (
            "process_cpu_seconds_total",
            Kind::Counter,
            "Total user and system CPU time spent in seconds.",
            p.cpu_seconds,
        ),
        (
            "process_start_time_seconds",
            Kind::Gauge,
            "Start time of the process since unix epoch in seconds.",
            p.start_time,
        ),
    ];
    for (name, kind, help, value) in floats {
        if let Some(value) = value {
            e.family(name, kind, help);
            e.sample_f64(name, &[], value);
        }
    }
    let ints = [
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            p.resident_bytes,
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            p.virtual_bytes,
        ),
        (
            "process_open_fds",
            "Number of open file descriptors.",
            p.open_fds,
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors.",
            p.max_fds,
        ),
    ];
    for (name, help, value) in ints {
        if let Some(value) = value {
            e.family(name, Kind::Gauge, help);
            e.sample(name, &[], value);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::ErrorCode;
    use crate::metrics::ExchangeEnd;

    #[test]
    fn a_page_has_every_family_once_and_the_counts_recorded() {
        let metrics = Metrics::default();
        let app = metrics.backend("app.test");
        app.requests.record(&ExchangeEnd {
            protocol: Protocol::H2,
            status: Some(200),
            code: None,
            bytes_in: 0,
            bytes_out: 5,
            duration: Duration::from_millis(3),
            head_wait: Some(Duration::from_millis(2)),
            cold: Some(Duration::from_millis(1)),
        });
        metrics.unrouted.record(&ExchangeEnd {
            protocol: Protocol::Http1,
            status: Some(404),
            code: Some(ErrorCode::UnknownHost),
            bytes_in: 0,
            bytes_out: 100,
            duration: Duration::ZERO,
            head_wait: None,
            cold: None,
        });
        app.lifecycle
            .start_duration
            .observe(Duration::from_millis(700));
        let now = Scrape {
            http1_connections: 2,
            config_generation: 1,
            access_log_dropped: 3,
            backends: vec![BackendNow {
                label: "app.test".into(),
                instances: [0, 0, 1, 0, 0],
                ..BackendNow::default()
            }],
            certificates: vec![CertificateNow {
                name: "app.test".into(),
                source: "acme",
                not_after: 1_800_000_000,
            }],
            acme: true,
            ..Scrape::default()
        };
        let page = render(&metrics, &now);
        for line in [
            "spawngate_requests_total{backend=\"app.test\",protocol=\"h2\",class=\"2xx\"} 1\n",
            "spawngate_requests_total{protocol=\"http1\",class=\"4xx\",code=\"UNKNOWN_HOST\"} 1\n",
            "spawngate_backend_start_duration_seconds_bucket{backend=\"app.test\",le=\"1\"} 1\n",
            "spawngate_backend_instances{backend=\"app.test\",state=\"ready\"} 1\n",
            "spawngate_backend_instances_running{backend=\"app.test\"} 1\n",
            "spawngate_cold_requests_total{backend=\"app.test\"} 1\n",
            "spawngate_open_connections{protocol=\"http1\"} 2\n",
            "spawngate_sent_bytes_total 100\n",
            "spawngate_tls_certificate_expiry_timestamp_seconds{name=\"app.test\",source=\"acme\"} 1800000000\n",
            "spawngate_acme_orders_total{result=\"issued\"} 0\n",
            "spawngate_access_log_dropped_total 3\n",
        ] {
            assert!(page.contains(line), "missing {line:?} in\n{page}");
        }
        let mut types: Vec<&str> = page.lines().filter(|l| l.starts_with("# TYPE")).collect();
        let count = types.len();
        types.sort();
        types.dedup();
        assert_eq!(types.len(), count, "a family appears once");
    }
}
