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
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::backend_view::{shutting_down_error, unknown_host, BackendView, Verdict};
use crate::error::{ErrorCode, ProxyError};
use crate::msg::{Activity, BackendEntry, BackendEvent, Host, LifecycleEvent, State};

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
    /// The lifecycle as last reported, and the admission rules (shared with the reactor).
    view: BackendView,
    waiting: Vec<oneshot::Sender<Release>>,
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
            view: BackendView::default(),
            waiting: Vec::new(),
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
            return (Admission::Reject(unknown_host(host)), None);
        };
        // Streams that gave up waiting leave a closed sender behind; they no longer count.
        route.waiting.retain(|waiter| !waiter.is_closed());
        let start = match route
            .view
            .admit(host, route.waiting.len(), self.max_held, Instant::now())
        {
            Verdict::Forward => return (Admission::Forward(route.target.clone()), None),
            Verdict::Refuse(err) => return (Admission::Reject(err), None),
            // Nothing starts any more once the proxy shuts down; ready backends serve until they stop.
            Verdict::Hold { .. } if self.shutting_down => {
                return (Admission::Reject(shutting_down_error()), None)
            }
            Verdict::Hold { start } => start,
        };
        let (tx, rx) = oneshot::channel();
        route.waiting.push(tx);
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
        let BackendEvent {
            host,
            instance,
            event,
        } = event;
        let mut effects = Effects::default();
        let Some(route) = self.map.get_mut(&host) else {
            return effects;
        };
        if matches!(event, LifecycleEvent::Starting | LifecycleEvent::Ready) {
            // The instance says where it listens: a port changed by a reload takes effect with its start.
            if let Some(addr) = instance.addr.tcp() {
                route.target.addr = addr;
            }
        }
        route.waiting.retain(|waiter| !waiter.is_closed());
        let has_waiting = !route.waiting.is_empty();
        let reaction = route
            .view
            .apply(&host, event, Instant::now(), has_waiting, shutting_down);
        if reaction.forget {
            if let Some(mut gone) = self.map.remove(&host) {
                gone.release_all(&Err(unknown_host(&host)));
            }
            effects.drop_pool.push(host);
            return effects;
        }
        if let Some(outcome) = reaction.release {
            route.release_all(&outcome);
        }
        if reaction.start {
            effects.start.push(host.clone());
        }
        if reaction.drop_pool {
            effects.drop_pool.push(host);
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
                    route.view.reloaded(true);
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
                .is_some_and(|route| route.view.state == State::Stopped);
            if never_started {
                if let Some(mut route) = self.map.remove(&host) {
                    route.release_all(&Err(unknown_host(&host)));
                }
                effects.drop_pool.push(host);
            } else if let Some(route) = self.map.get_mut(&host) {
                route.view.removed = true;
            }
        }
        effects
    }
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
