//! The reactor's part of the metrics: counting the answers it gives and the exchanges it ends under
//! their backend's label, counting lifecycle reports as they arrive, and `GET /metrics` (reading the
//! gauges it owns: connections, tunnels, backend states, held requests).

use std::time::Instant;

use super::session::Phase;
use super::Reactor;
use crate::metrics::page::{self, BackendNow, Scrape, STATES};
use crate::metrics::{label_of, process, ExchangeEnd};
use crate::msg::{BackendEvent, LifecycleEvent};
use crate::upstream::{BackendId, InstanceId};

/// The backend a request the proxy answers itself was routed to, and since when it waited.
pub(super) type Routed = (BackendId, Instant);

impl Reactor {
    /// Counts one ended request under its backend's label (or under none, for a backend unknown by now).
    pub(super) fn record_request(&self, backend: Option<BackendId>, end: &ExchangeEnd) {
        match backend.and_then(|id| self.routes.get(id)) {
            Some(backend) => backend.metrics.requests.record(end),
            None => self.metrics.unrouted.record(end),
        }
    }

    /// Counts a lifecycle report under its backend's label, before the table applies it.
    pub(super) fn record_lifecycle(&mut self, report: &BackendEvent) {
        let Some(backend) = self.routes.get(report.backend) else {
            return;
        };
        let m = &backend.metrics.lifecycle;
        let instance = InstanceId {
            backend: report.backend,
            slot: report.instance.index,
        };
        match &report.event {
            LifecycleEvent::Starting => {
                m.starts.inc();
                self.starting_since.insert(instance, self.now);
            }
            LifecycleEvent::Ready => {
                if let Some(since) = self.starting_since.remove(&instance) {
                    m.start_duration
                        .observe(self.now.saturating_duration_since(since));
                }
            }
            LifecycleEvent::StartFailed(_) => {
                m.start_failures.inc();
                self.starting_since.remove(&instance);
            }
            LifecycleEvent::BackingOff { .. } => m.backoffs.inc(),
            LifecycleEvent::Unhealthy => m.unhealthy.inc(),
            LifecycleEvent::Stopping(_) | LifecycleEvent::Stopped => {
                self.starting_since.remove(&instance);
            }
        }
    }

    /// `GET /metrics`: the exposition.
    pub(super) fn metrics_page(&self) -> String {
        let tunnels = self
            .sessions
            .iter()
            .filter(|(_, s)| matches!(s.phase, Phase::Tunnel(_)))
            .count();
        let now = Scrape {
            http1_connections: self.sessions.len() as u64,
            tunnels: tunnels as u64,
            config_generation: self.config_status.generation,
            access_log_dropped: self.access_log.dropped(),
            backends: self.backends_now(),
            process: process::read(),
            #[cfg(feature = "tls")]
            certificates: self
                .https
                .as_ref()
                .map_or(Vec::new(), |h| h.certificates_now()),
            #[cfg(not(feature = "tls"))]
            certificates: Vec::new(),
            #[cfg(feature = "acme")]
            acme: self.acme.is_some(),
            #[cfg(not(feature = "acme"))]
            acme: false,
        };
        page::render(&self.metrics, &now)
    }

    /// Each label's instances by state, in flight and held, summed over a template's sessions.
    fn backends_now(&self) -> Vec<BackendNow> {
        let mut all: Vec<BackendNow> = Vec::new();
        for backend in self.routes.iter() {
            let label = label_of(&backend.config);
            let at = match all.iter().position(|b| b.label == label) {
                Some(at) => at,
                None => {
                    all.push(BackendNow {
                        label: label.to_owned(),
                        held: backend.metrics.h2_held.get(),
                        ..BackendNow::default()
                    });
                    all.len() - 1
                }
            };
            let now = &mut all[at];
            for instance in &backend.instances {
                let state = instance.view.reported_state();
                if let Some(i) = STATES.iter().position(|s| *s == state) {
                    now.instances[i] += 1;
                }
                now.in_flight += instance.activity.in_flight() as u64;
            }
            now.held += backend.held() as u64;
        }
        all.sort_by(|a, b| a.label.cmp(&b.label));
        all
    }
}
