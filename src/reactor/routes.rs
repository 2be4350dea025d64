//! The routing table: each configured Host, the reactor's view of its lifecycle, the requests held for it
//! and its idle pooled connections.
//!
//! The view is only what the supervisor last reported; the supervisor owns the truth. Whatever the view,
//! a request never waits unboundedly: holds are capped per backend and carry a deadline.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crate::config::BackendConfig;
use crate::error::ErrorCode;
use crate::msg::{Activity, BackendEntry, Host, State, StopReason};

pub struct Route {
    pub host: Host,
    pub config: Arc<BackendConfig>,
    pub activity: Arc<Activity>,
    pub addr: SocketAddr,
    pub state: State,
    pub stop_reason: Option<StopReason>,
    /// A `Start` was sent and no answer (Ready or StartFailed) has come back yet.
    pub start_requested: bool,
    /// Sessions held until the backend is ready: (slab key, serial).
    pub waiting: Vec<(usize, u64)>,
    /// Pooled upstream connections (upstream slab keys), most recently used last.
    pub idle_upstreams: Vec<usize>,
    /// Gone from the config; answered 404 once its stop completes.
    pub removed: bool,
    /// Failed its health checks; stays set through the restart that follows, until the new instance is
    /// ready (or fails to start), so requests meanwhile get a prompt 503 BACKEND_UNHEALTHY instead of
    /// waiting on an instance that just proved unreliable.
    pub unhealthy: bool,
    /// Starts are suspended after repeated failures: until then requests are refused with `Retry-After`.
    pub backoff: Option<(std::time::Instant, String)>,
}

/// What to do with a request for a route, given the route's current view.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    Forward,
    /// Hold the request; `start` says a `Start` command must be sent now.
    Hold {
        start: bool,
    },
    Reject(ErrorCode, &'static str),
    /// Starts are suspended (crash loop): refuse with this message and `Retry-After` seconds.
    BackingOff {
        message: String,
        retry_after_secs: u64,
    },
}

impl Route {
    pub fn new(entry: BackendEntry) -> Self {
        let config = entry.config;
        Route {
            host: Host::from(config.hostname.as_str()),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, config.port)),
            config,
            activity: entry.activity,
            state: State::Stopped,
            stop_reason: None,
            start_requested: false,
            waiting: Vec::new(),
            idle_upstreams: Vec::new(),
            removed: false,
            unhealthy: false,
            backoff: None,
        }
    }

    /// The state `/backends` reports.
    pub fn reported_state(&self) -> State {
        if self.unhealthy && !self.shutting_down() {
            State::Unhealthy
        } else {
            self.state
        }
    }

    fn shutting_down(&self) -> bool {
        self.state == State::Stopping
            && matches!(
                self.stop_reason,
                Some(StopReason::Removed | StopReason::Shutdown)
            )
    }

    pub fn admit(&mut self, max_held: usize, now: std::time::Instant) -> Admission {
        if let Some((until, reason)) = &self.backoff {
            if *until > now && !self.shutting_down() {
                let wait = until.saturating_duration_since(now);
                return Admission::BackingOff {
                    message: format!("backend {} keeps failing to start: {reason}", self.host),
                    // Round up: a client retrying after the advertised time must find starts allowed.
                    retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                };
            }
        }
        if self.unhealthy && !self.shutting_down() {
            return Admission::Reject(
                ErrorCode::BackendUnhealthy,
                "backend failed its health checks and is restarting",
            );
        }
        let hold = match self.state {
            State::Ready => return Admission::Forward,
            State::Unhealthy => {
                return Admission::Reject(
                    ErrorCode::BackendUnhealthy,
                    "backend failed its health checks and is restarting",
                )
            }
            State::Stopping => match self.stop_reason {
                Some(StopReason::Removed) | Some(StopReason::Shutdown) => {
                    return Admission::Reject(
                        ErrorCode::BackendShuttingDown,
                        "backend is shutting down",
                    )
                }
                _ => true,
            },
            State::Starting | State::Stopped => true,
        };
        if self.removed {
            return Admission::Reject(ErrorCode::BackendShuttingDown, "backend is shutting down");
        }
        debug_assert!(hold);
        if self.waiting.len() >= max_held {
            return Admission::Reject(
                ErrorCode::TooManyHeld,
                "too many requests are waiting for this backend to start",
            );
        }
        let start = !self.start_requested && self.state != State::Starting;
        if start {
            self.start_requested = true;
        }
        Admission::Hold { start }
    }
}

#[derive(Default)]
pub struct Routes {
    map: HashMap<Box<str>, Route>,
}

impl Routes {
    pub fn new(entries: impl IntoIterator<Item = BackendEntry>) -> Self {
        let mut routes = Routes::default();
        for entry in entries {
            routes.insert(entry);
        }
        routes
    }

    pub fn insert(&mut self, entry: BackendEntry) {
        let route = Route::new(entry);
        self.map.insert(Box::from(&*route.host), route);
    }

    pub fn get(&self, host: &str) -> Option<&Route> {
        self.map.get(host)
    }

    pub fn get_mut(&mut self, host: &str) -> Option<&mut Route> {
        self.map.get_mut(host)
    }

    pub fn remove(&mut self, host: &str) -> Option<Route> {
        self.map.remove(host)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.map.values()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Route> {
        self.map.values_mut()
    }

    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

/// Lower-cases an ASCII host into `scratch` for a table lookup without allocating per request.
pub fn normalize_host<'a>(raw: &[u8], scratch: &'a mut String) -> Option<&'a str> {
    let text = std::str::from_utf8(raw).ok()?;
    scratch.clear();
    scratch.push_str(text.trim_end_matches('.'));
    scratch.make_ascii_lowercase();
    Some(scratch.as_str())
}
