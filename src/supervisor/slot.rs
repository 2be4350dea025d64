//! One instance of a backend as the supervisor keeps it: its spec, its own lifecycle and crash-loop
//! record, and what it owns while it runs (the process or container, a health probe in flight). Nothing
//! here touches the OS; the loop (`feed.rs`) carries out the effects [`InstanceSlot::step`] returns.

use std::fmt;
use std::sync::Arc;

use super::instance::Instance;
use super::lifecycle::{CrashLoop, Effect, Env, Input, Lifecycle};
use super::probe::Probe;
use crate::config::BackendConfig;
use crate::msg::{Activity, InstanceRef, LifecycleEvent};
use crate::upstream::instance::InstanceSpec;

#[derive(Debug)]
pub struct InstanceSlot {
    /// What the next start uses: the backend's latest config made it.
    pub spec: InstanceSpec,
    pub lifecycle: Lifecycle,
    /// This instance's recent bad starts and any back-off in force; it outlives every lifecycle state,
    /// and another instance of the backend failing does not touch it.
    pub crash_loop: CrashLoop,
    pub running: Option<Running>,
    pub probe: Option<Probe>,
    /// When the current stop began (for the log line once it has stopped).
    pub stopping_since_ms: Option<u64>,
    /// The pool controller wants it running (`always_on`, `min_running`): once a back-off ends it is
    /// started again without waiting for a request.
    pub keep_running: bool,
    /// Gone from its pool (a reload lowered `replicas`): stopped, never started again.
    pub retired: bool,
    /// A rolling reload is replacing it: from its stop until it is ready with the new spec.
    pub replacing: bool,
    /// The TLS failure its health probes last logged (an `https://` instance): a probe runs every
    /// interval, so the same reason is logged once, and again only after a success or another reason.
    #[cfg(feature = "tls")]
    pub probe_tls_failure: Option<String>,
}

/// A started instance and what it was started with: a reload changes neither its config nor its address
/// until it stops (the next start takes the new ones).
#[derive(Debug)]
pub struct Running {
    pub instance: Instance,
    pub config: Arc<BackendConfig>,
    pub spec: InstanceSpec,
    pub started_ms: u64,
}

/// How an instance is named in logs: the backend's host for the first instance (as before instances
/// existed), `host#N` for instance N of a backend that has several.
#[derive(Debug, Clone, Copy)]
pub struct InstanceName<'a> {
    pub host: &'a str,
    pub index: u32,
}

impl fmt::Display for InstanceName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            0 => write!(f, "{}", self.host),
            n => write!(f, "{}#{n}", self.host),
        }
    }
}

impl InstanceSlot {
    /// A stopped instance with a clean record.
    pub fn new(spec: InstanceSpec) -> Self {
        InstanceSlot {
            spec,
            lifecycle: Lifecycle::Stopped,
            crash_loop: CrashLoop::default(),
            running: None,
            probe: None,
            stopping_since_ms: None,
            keep_running: false,
            retired: false,
            replacing: false,
            #[cfg(feature = "tls")]
            probe_tls_failure: None,
        }
    }

    /// One input through the crash-loop rules and the lifecycle. `next_config` is the backend's latest
    /// config; the running instance's own config applies while it runs. `activity` is the backend's
    /// traffic: idleness is judged per backend while the reactor counts traffic per backend.
    pub fn step(
        &mut self,
        input: Input,
        now_ms: u64,
        next_config: &Arc<BackendConfig>,
        activity: &Activity,
        may_stop_idle: bool,
    ) -> Vec<Effect> {
        let config = self.current_config(next_config);
        let env = Env {
            now_ms,
            in_flight: activity.in_flight(),
            last_active_ms: activity.last_active_ms(),
            timings: &config.timings,
            may_stop_idle,
        };
        let state = std::mem::replace(&mut self.lifecycle, Lifecycle::Stopped);
        let (state, effects) = self.crash_loop.step(state, input, &env);
        self.lifecycle = state;
        effects
    }

    /// The config whose settings apply now: the running instance's, else the one the next start will use.
    pub fn current_config(&self, next_config: &Arc<BackendConfig>) -> Arc<BackendConfig> {
        match &self.running {
            Some(running) => running.config.clone(),
            None => next_config.clone(),
        }
    }

    /// The instance reports are about: the running one's address, else the next start's.
    pub fn instance_ref(&self) -> InstanceRef {
        let spec = self.running.as_ref().map_or(&self.spec, |r| &r.spec);
        InstanceRef {
            index: spec.index,
            addr: spec.addr.clone(),
        }
    }

    /// When the supervisor must next look at this instance.
    pub fn deadline(&self) -> Option<u64> {
        let probe = self.probe.as_ref().map(Probe::deadline_ms);
        let retry = match self.keep_running && self.is_at_rest() {
            true => self.crash_loop.backoff_until(),
            false => None,
        };
        [self.lifecycle.deadline(), probe, retry]
            .into_iter()
            .flatten()
            .min()
    }

    /// Stopped with nothing left to reap.
    pub fn is_at_rest(&self) -> bool {
        self.lifecycle.is_stopped() && self.running.is_none()
    }

    /// Writes the log line for a transition about to be reported.
    pub fn log_event(
        &mut self,
        name: InstanceName,
        next_config: &Arc<BackendConfig>,
        event: &LifecycleEvent,
        now_ms: u64,
    ) {
        let instance = self
            .running
            .as_ref()
            .map(|r| (r.instance.describe(), r.started_ms));
        match event {
            LifecycleEvent::Starting => {}
            LifecycleEvent::Ready => match instance {
                Some((what, started)) => log::info!(
                    "{name}: ready after {} ms ({what})",
                    now_ms.saturating_sub(started)
                ),
                None => log::info!("{name}: ready"),
            },
            LifecycleEvent::StartFailed(why) => log::warn!("{name}: start failed: {why}"),
            LifecycleEvent::BackingOff {
                reason,
                retry_after,
            } => log::warn!(
                "{name}: keeps failing ({reason}); next start allowed in {} ms",
                retry_after.as_millis()
            ),
            LifecycleEvent::Unhealthy => {
                let timings = &self.current_config(next_config).timings;
                let watchdog = match timings.watchdog {
                    Some(_) => ", or no WATCHDOG=1 within watchdog_secs",
                    None => "",
                };
                log::warn!(
                    "{name}: unhealthy ({} health checks failed in a row{watchdog}); restarting",
                    timings.unhealthy_threshold
                )
            }
            LifecycleEvent::Stopping(reason) => {
                self.stopping_since_ms = Some(now_ms);
                log::info!("{name}: stopping ({reason:?})");
            }
            LifecycleEvent::Stopped => match self.stopping_since_ms.take() {
                Some(since) => log::info!("{name}: stopped in {} ms", now_ms.saturating_sub(since)),
                None => log::info!("{name}: stopped"),
            },
        }
    }
}
