//! What the supervisor keeps per backend: its config, its lifecycle state, and the things it owns while it
//! runs (the instance, a health probe in flight).

use std::sync::Arc;

use super::instance::Instance;
use super::lifecycle::{CrashLoop, Env, Lifecycle};
use super::probe::Probe;
use crate::config::BackendConfig;
use crate::msg::{Activity, BackendEntry, Host, InstanceRef, LifecycleEvent};
use crate::upstream::instance::InstanceSpec;

#[derive(Debug)]
pub struct Backend {
    pub host: Host,
    /// The latest config; the next start uses it.
    pub config: Arc<BackendConfig>,
    pub activity: Arc<Activity>,
    pub lifecycle: Lifecycle,
    /// Recent bad starts and any back-off in force; it outlives every lifecycle state.
    pub crash_loop: CrashLoop,
    pub running: Option<Running>,
    pub probe: Option<Probe>,
    /// Gone from the config: forget it once it has stopped.
    pub removed: bool,
    /// When the current stop began (for the log line once it has stopped).
    pub stopping_since_ms: Option<u64>,
}

/// An instance and the config it was started with (a reload does not change a running backend).
#[derive(Debug)]
pub struct Running {
    pub instance: Instance,
    pub config: Arc<BackendConfig>,
    /// The instance as started: it keeps this address until it stops, whatever a reload says.
    pub spec: InstanceSpec,
    pub started_ms: u64,
}

impl Backend {
    pub fn new(entry: BackendEntry) -> Self {
        Backend {
            host: host_of(&entry.config),
            config: entry.config,
            activity: entry.activity,
            lifecycle: Lifecycle::Stopped,
            crash_loop: CrashLoop::default(),
            running: None,
            probe: None,
            removed: false,
            stopping_since_ms: None,
        }
    }

    /// The config whose settings apply now: the running instance's, else the one the next start will use.
    pub fn current_config(&self) -> Arc<BackendConfig> {
        match &self.running {
            Some(running) => running.config.clone(),
            None => self.config.clone(),
        }
    }

    pub fn env<'a>(&self, now_ms: u64, config: &'a BackendConfig) -> Env<'a> {
        Env {
            now_ms,
            in_flight: self.activity.in_flight(),
            last_active_ms: self.activity.last_active_ms(),
            timings: &config.timings,
        }
    }

    /// The instance reports are about: its address is the running one's, else the next start's.
    pub fn instance_ref(&self) -> InstanceRef {
        let spec = match &self.running {
            Some(running) => running.spec.clone(),
            None => InstanceSpec::first(&self.config),
        };
        InstanceRef {
            index: spec.index,
            addr: spec.addr,
        }
    }

    /// When the supervisor must next look at this backend.
    pub fn deadline(&self) -> Option<u64> {
        let probe = self.probe.as_ref().map(Probe::deadline_ms);
        match (self.lifecycle.deadline(), probe) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Stopped with nothing left to reap.
    pub fn is_at_rest(&self) -> bool {
        self.lifecycle.is_stopped() && self.running.is_none()
    }

    /// Writes the log line for a transition about to be reported.
    pub fn log_event(&mut self, event: &LifecycleEvent, now_ms: u64) {
        let host = &self.host;
        let instance = self
            .running
            .as_ref()
            .map(|r| (r.instance.describe(), r.started_ms));
        match event {
            LifecycleEvent::Starting => {}
            LifecycleEvent::Ready => match instance {
                Some((name, started)) => log::info!(
                    "{host}: ready after {} ms ({name})",
                    now_ms.saturating_sub(started)
                ),
                None => log::info!("{host}: ready"),
            },
            LifecycleEvent::StartFailed(why) => log::warn!("{host}: start failed: {why}"),
            LifecycleEvent::BackingOff {
                reason,
                retry_after,
            } => log::warn!(
                "{host}: keeps failing ({reason}); next start allowed in {} ms",
                retry_after.as_millis()
            ),
            LifecycleEvent::Unhealthy => log::warn!(
                "{host}: {} health checks failed in a row; restarting",
                self.current_config().timings.unhealthy_threshold
            ),
            LifecycleEvent::Stopping(reason) => {
                self.stopping_since_ms = Some(now_ms);
                log::info!("{host}: stopping ({reason:?})");
            }
            LifecycleEvent::Stopped => match self.stopping_since_ms.take() {
                Some(since) => log::info!("{host}: stopped in {} ms", now_ms.saturating_sub(since)),
                None => log::info!("{host}: stopped"),
            },
        }
    }
}

pub fn host_of(config: &BackendConfig) -> Host {
    Host::from(config.hostname.as_str())
}
