//! The h2 worker's own view of each backend: its lifecycle as last reported by the supervisor (through the
//! reactor), the streams held until it is ready, and whether a start was already asked for.
//!
//! The rules are the reactor's (`reactor/routes.rs`): Ready forwards; Starting, Stopped and an idle or
//! restart stop hold the stream and ask for one start; Unhealthy, and a stop for removal or shutdown, are
//! answered at once. Holds are capped per backend, and a held stream waits at most the backend's
//! `startup_timeout` plus [`HOLD_SLACK`] (the caller enforces the wait).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::error::{ErrorCode, ProxyError};
use crate::msg::{Activity, BackendEntry, BackendEvent, Host, LifecycleEvent, State, StopReason};

/// How much longer than `startup_timeout` a stream is held: the supervisor reports a failed start when
/// the timeout passes, and that report should win over the hold's own expiry.
pub const HOLD_SLACK: Duration = Duration::from_secs(2);

/// Where an admitted stream goes, captured when it was admitted.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: Host,
    pub addr: SocketAddr,
    pub activity: Arc<Activity>,
    pub request_timeout: Duration,
}

/// The outcome of a held stream's wait: go ahead, or the error to answer with.
pub type Release = Result<(), ProxyError>;

pub enum Admission {
    Forward(Target),
    /// Wait on `release` for at most `limit`.
    Hold {
        target: Target,
        release: oneshot::Receiver<Release>,
        limit: Duration,
    },
    Reject(ProxyError),
}

/// What the caller must do after a lifecycle event or a reload.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Send `Command::Start` for these hosts.
    pub start: Vec<Host>,
    /// Close the idle pooled connections to these hosts: the process behind them is going away.
    pub drop_pool: Vec<Host>,
}

struct Route {
    target: Target,
    startup_timeout: Duration,
    state: State,
    stop_reason: Option<StopReason>,
    /// A start was asked for and neither Ready nor StartFailed has come back yet.
    start_requested: bool,
    waiting: Vec<oneshot::Sender<Release>>,
    /// Gone from the config; answered 404 once its stop completes.
    removed: bool,
    /// A reload changed the port: the running process keeps the old one until its next start.
    next_addr: Option<SocketAddr>,
}

impl Route {
    fn new(entry: BackendEntry) -> Self {
        let config = entry.config;
        Route {
            target: Target {
                host: Host::from(config.hostname.as_str()),
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, config.port)),
                activity: entry.activity,
                request_timeout: config.timings.request_timeout,
            },
            startup_timeout: config.timings.startup_timeout,
            state: State::Stopped,
            stop_reason: None,
            start_requested: false,
            waiting: Vec::new(),
            removed: false,
            next_addr: None,
        }
    }

    fn release_all(&mut self, outcome: &Release) {
        for waiter in self.waiting.drain(..) {
            // A waiter whose stream is gone has dropped its receiver; nothing to tell it.
            let _ = waiter.send(outcome.clone());
        }
    }
}

/// Every configured backend by hostname.
pub struct Routes {
    map: HashMap<Host, Route>,
    max_held: usize,
    /// The proxy is shutting down: nothing is held any more (no backend will start).
    shutting_down: bool,
}

impl Routes {
    /// `max_held` is `limits.max_held_requests`: streams held per backend while it starts.
    pub fn new(entries: Vec<BackendEntry>, max_held: usize) -> Self {
        let mut routes = Routes {
            map: HashMap::new(),
            max_held,
            shutting_down: false,
        };
        for entry in entries {
            let route = Route::new(entry);
            routes.map.insert(route.target.host.clone(), route);
        }
        routes
    }

    /// Decides what happens to a stream for `host` (already normalised). The host comes back alongside
    /// when a `Command::Start` must be sent for it now.
    pub fn admit(&mut self, host: &str) -> (Admission, Option<Host>) {
        let Some(route) = self.map.get_mut(host) else {
            let err = ProxyError::new(
                ErrorCode::UnknownHost,
                format!("no backend for host {host}"),
            );
            return (Admission::Reject(err), None);
        };
        let shutting_down =
            || ProxyError::new(ErrorCode::BackendShuttingDown, "backend is shutting down");
        match route.state {
            State::Ready => {
                return (Admission::Forward(route.target.clone()), None);
            }
            State::Unhealthy => {
                let err = ProxyError::new(
                    ErrorCode::BackendUnhealthy,
                    "backend failed its health checks and is restarting",
                );
                return (Admission::Reject(err), None);
            }
            State::Stopping
                if matches!(
                    route.stop_reason,
                    Some(StopReason::Removed | StopReason::Shutdown)
                ) =>
            {
                return (Admission::Reject(shutting_down()), None);
            }
            _ if route.removed || self.shutting_down => {
                return (Admission::Reject(shutting_down()), None)
            }
            _ => {}
        }
        // Streams that gave up waiting leave a closed sender behind; they no longer count.
        route.waiting.retain(|waiter| !waiter.is_closed());
        if route.waiting.len() >= self.max_held {
            let err = ProxyError::new(
                ErrorCode::TooManyHeld,
                "too many requests are waiting for this backend to start",
            );
            return (Admission::Reject(err), None);
        }
        let (tx, rx) = oneshot::channel();
        route.waiting.push(tx);
        let start = !route.start_requested && route.state != State::Starting;
        if start {
            route.start_requested = true;
        }
        let admission = Admission::Hold {
            target: route.target.clone(),
            release: rx,
            limit: route.startup_timeout + HOLD_SLACK,
        };
        (admission, start.then(|| route.target.host.clone()))
    }

    /// Proxy shutdown: held streams are answered 503 at once and new ones are not held; backends that
    /// are ready keep serving until their own stop begins.
    pub fn shut_down(&mut self) {
        self.shutting_down = true;
        let err = ProxyError::new(ErrorCode::BackendShuttingDown, "the proxy is shutting down");
        for route in self.map.values_mut() {
            route.release_all(&Err(err.clone()));
        }
    }

    /// Applies one lifecycle report; `shutting_down` stops restarts for streams held during a stop.
    pub fn on_event(&mut self, event: BackendEvent, shutting_down: bool) -> Effects {
        let BackendEvent { host, event } = event;
        let mut effects = Effects::default();
        let Some(route) = self.map.get_mut(&host) else {
            return effects;
        };
        match event {
            LifecycleEvent::Starting => {
                route.state = State::Starting;
                route.stop_reason = None;
                if let Some(addr) = route.next_addr.take() {
                    route.target.addr = addr;
                }
            }
            LifecycleEvent::Ready => {
                route.state = State::Ready;
                route.start_requested = false;
                route.release_all(&Ok(()));
            }
            LifecycleEvent::StartFailed(reason) => {
                route.state = State::Stopped;
                route.start_requested = false;
                route.release_all(&Err(ProxyError::new(
                    ErrorCode::BackendStartFailed,
                    format!("backend {host} could not be started: {reason}"),
                )));
            }
            LifecycleEvent::BackingOff {
                reason,
                retry_after,
            } => {
                route.state = State::Stopped;
                route.start_requested = false;
                let err = ProxyError::new(
                    ErrorCode::BackendStartFailed,
                    format!("backend {host} keeps failing to start: {reason}"),
                )
                .with_retry_after(
                    retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0),
                );
                route.release_all(&Err(err));
            }
            LifecycleEvent::Unhealthy => {
                route.state = State::Unhealthy;
                effects.drop_pool.push(host.clone());
            }
            LifecycleEvent::Stopping(reason) => {
                route.state = State::Stopping;
                route.stop_reason = Some(reason);
                effects.drop_pool.push(host.clone());
                if matches!(reason, StopReason::Removed | StopReason::Shutdown) {
                    route.release_all(&Err(ProxyError::new(
                        ErrorCode::BackendShuttingDown,
                        "backend is shutting down",
                    )));
                }
            }
            LifecycleEvent::Stopped => {
                route.state = State::Stopped;
                route.stop_reason = None;
                effects.drop_pool.push(host.clone());
                if route.removed {
                    if let Some(mut gone) = self.map.remove(&host) {
                        gone.release_all(&Err(unknown_host(&host)));
                    }
                    return effects;
                }
                route.waiting.retain(|waiter| !waiter.is_closed());
                if !route.waiting.is_empty() && !route.start_requested && !shutting_down {
                    // Streams arrived during an idle stop: the supervisor restarts after the stop, but make
                    // sure it was asked.
                    route.start_requested = true;
                    effects.start.push(host.clone());
                }
            }
        }
        effects
    }

    /// A reload's complete backend set: new hosts route at once, changed ones take their new settings,
    /// missing ones refuse new streams and disappear once stopped.
    pub fn replace(&mut self, entries: Vec<BackendEntry>) -> Effects {
        let mut effects = Effects::default();
        let mut present: Vec<Host> = Vec::with_capacity(entries.len());
        for entry in entries {
            let fresh = Route::new(entry);
            let host = fresh.target.host.clone();
            match self.map.get_mut(&host) {
                Some(route) => {
                    route.next_addr =
                        (fresh.target.addr != route.target.addr).then_some(fresh.target.addr);
                    route.target.activity = fresh.target.activity;
                    route.target.request_timeout = fresh.target.request_timeout;
                    route.startup_timeout = fresh.startup_timeout;
                    route.removed = false;
                }
                None => {
                    self.map.insert(host.clone(), fresh);
                }
            }
            present.push(host);
        }
        let gone: Vec<Host> = self
            .map
            .keys()
            .filter(|host| !present.contains(host))
            .cloned()
            .collect();
        for host in gone {
            let never_started = self
                .map
                .get(&host)
                .is_some_and(|route| route.state == State::Stopped);
            if never_started {
                if let Some(mut route) = self.map.remove(&host) {
                    route.release_all(&Err(unknown_host(&host)));
                }
                effects.drop_pool.push(host);
            } else if let Some(route) = self.map.get_mut(&host) {
                route.removed = true;
            }
        }
        effects
    }
}

fn unknown_host(host: &str) -> ProxyError {
    ProxyError::new(
        ErrorCode::UnknownHost,
        format!("no backend for host {host}"),
    )
}

/// The routing key for an authority's host part: lower-case, without a trailing dot (the same rule as
/// HTTP/1 routing). `None` when it is not UTF-8.
pub fn normalize_host(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut host = text.trim_end_matches('.').to_string();
    host.make_ascii_lowercase();
    Some(host)
}

#[cfg(test)]
#[path = "routes_tests.rs"]
mod tests;
