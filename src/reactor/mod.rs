//! The reactor: one thread, one `mio::Poll`, every socket.
//!
//! It accepts clients and admin connections, parses HTTP/1 heads with the sans-IO code in `http1`, routes by
//! Host, holds requests for backends that are starting, and streams bytes between client and backend
//! sockets with bounded buffers. Lifecycle events from the supervisor and signals arrive as poll events.
//! Nothing here blocks; with no traffic it sleeps in `epoll_wait` until the next deadline, or forever.
//!
//! * `bound`: the listeners, bound before any thread starts; `accept`: accepting, the connection limit,
//!   descriptor exhaustion.
//! * `session`: a client connection and its phases; `client`: reading heads, holding, answering;
//!   `admission`: routing a head and refusing, answering, holding or forwarding it;
//!   `client_stream`: the client socket itself, which nothing else touches.
//! * `access`, `metrics`: each request's one record at its end (access-log line and counters), lifecycle
//!   counts and `GET /metrics`; `admin_api`, `status_feed`, `session_ctl`: the admin API.
//! * `forward`: one request through a backend connection (what its response calls for is decided by
//!   `http1::exchange`); `failure`: when that goes wrong; `tunnel`: after a 101.
//! * `upstream`, `pool`: backend connections and their keep-alive pool.
//! * `routes`: the adapter over the upstream core (`crate::upstream`): held sessions, pooled connections.
//! * `events`: supervisor messages, signals, reload and shutdown.
//! * `timeouts`, `timers`: what each phase waits for, and the deadline map.
//! * `buffer`, `sockio`: bounded buffers and the two raw operations on sockets; `transport`: a socket,
//!   its readiness and the TLS beside it, what a client stream and a backend connection both are.
//! * `https`, `client_tls` (feature `tls`): the HTTPS listener with its certificates, the redirect and
//!   HSTS; the TLS half of a client stream. `backend_tls`: the TLS half of a backend connection;
//!   `tls_pump`: the socket <-> rustls pump both halves run. `acme` (feature `acme`): the ACME thread's
//!   challenges and certificates.
//! * `admin_conn`, `signals`: the admin connections and the signal self-pipe.

mod accept;
mod access;
#[cfg(feature = "acme")]
mod acme;
mod admin_api;
mod admin_conn;
mod admission;
#[cfg(feature = "tls")]
mod backend_tls;
mod bound;
mod buffer;
mod client;
mod client_stream;
#[cfg(feature = "tls")]
mod client_tls;
mod direct_io;
mod events;
mod failure;
mod forward;
#[cfg(feature = "tls")]
mod https;
mod metrics;
mod pool;
pub(crate) mod routes;
mod session;
mod session_ctl;
mod signals;
mod sockio;
mod status_feed;
mod timeouts;
mod timers;
#[cfg(feature = "tls")]
mod tls_pump;
mod transport;
mod tunnel;
mod upstream;

use std::collections::HashMap;
use std::io;

use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Poll, Token, Waker};
use slab::Slab;

use crate::access_log::AccessLog;
use crate::admin::ConfigStatus;
use crate::config::Config;
use crate::h2::H2Handle;
use crate::http1::request_id::RequestIdGenerator;
use crate::metrics::Metrics;
use crate::msg::{Clock, Command, Mailbox, ReactorMsg};
use crate::sessions::registry::Registry;
use crate::supervisor::SupervisorHandle;
use crate::systemd::Notifier;
use crate::upstream::{IdlePool, InstanceId, PoolLimits, Reconcile, RouteScratch};
use admin_conn::AdminConn;
use bound::admin_base;
pub use bound::Bound;
use routes::Routes;
use session::Session;
use session_ctl::SessionCtl;
use signals::Signals;
use status_feed::StatusFeed;
use timers::{Deadline, TimerTarget, Timers};
use upstream::Upstream;

const LISTENER: Token = Token(0);
const ADMIN_LISTENER: Token = Token(1);
const WAKER: Token = Token(2);
const SIGNALS: Token = Token(3);
/// The HTTPS listener (feature `tls`, with `https_port`).
#[cfg(feature = "tls")]
const HTTPS_LISTENER: Token = Token(4);
/// Token ranges for the three slabs; each slab is capped well below the gap between bases.
const SESSION_BASE: usize = 16;
const UPSTREAM_BASE: usize = 1 << 28;
const ADMIN_BASE: usize = 1 << 29;

/// Events handled per poll call; more simply wait for the next call.
const EVENTS_CAPACITY: usize = 1024;
/// Admin connections open at once (the admin API is for operators and backends, not for load).
const MAX_ADMIN_CONNECTIONS: usize = 64;
/// After EMFILE/ENFILE, accepting resumes when a connection closes or after this pause, whichever is first.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The other threads and what they were started with, handed to the reactor by the composition root.
pub struct Wiring {
    pub clock: Clock,
    /// The backends every thread started with.
    pub backends: Reconcile,
    pub supervisor: SupervisorHandle,
    pub h2: H2Handle,
    /// The service manager's notification socket, when the proxy runs as a `Type=notify` unit.
    pub notifier: Option<Notifier>,
    /// Shared with the h2 worker; reopened on SIGUSR1, reconfigured on reload.
    pub access_log: Arc<AccessLog>,
    /// The process's metrics, shared with the h2 worker.
    pub metrics: Arc<Metrics>,
}

pub(crate) struct Reactor {
    poll: Poll,
    listener: Option<TcpListener>,
    /// The HTTPS listener and its certificates, when `https_port` is set.
    #[cfg(feature = "tls")]
    https: Option<https::Https>,
    /// The ACME thread and the HTTP-01 answers it asked for, with `[tls.acme]`.
    #[cfg(feature = "acme")]
    acme: Option<acme::Acme>,
    admin_listener: TcpListener,
    sessions: Slab<Session>,
    upstreams: Slab<Upstream>,
    admins: Slab<AdminConn>,
    routes: Routes,
    timers: Timers,
    /// Idle backend connections (upstream slab keys), kept by the rules shared with the h2 worker.
    pool: IdlePool<usize>,
    /// When `pool` next has something to close; armed only while it holds a connection.
    pool_sweep: Deadline,
    inbox: mpsc::Receiver<ReactorMsg>,
    /// Kept here as well as in every sender: if the last sender's thread ended and dropped the waker, its
    /// eventfd would close and take a pending wake-up with it.
    _waker: Arc<Waker>,
    supervisor: Option<SupervisorHandle>,
    /// The h2 worker thread, which serves connections that open with the HTTP/2 preface.
    h2: Option<H2Handle>,
    signals: Signals,
    config: Config,
    ids: RequestIdGenerator,
    now: Instant,
    next_serial: u64,
    /// Accepting is paused (connection limit or descriptor exhaustion).
    accept_paused: bool,
    /// The last accept failed for lack of descriptors (logged once until an accept succeeds).
    fd_exhausted: bool,
    shutting_down: bool,
    /// The supervisor thread stopped answering (it panicked): shut down without waiting for it.
    supervisor_lost: bool,
    /// Sessions that stopped early to let others run; driven again before the next wait.
    again: Vec<usize>,
    /// Reused for Host lookups.
    host_scratch: String,
    route_scratch: RouteScratch,
    /// Config generation and last reload error, for the admin API.
    config_status: ConfigStatus,
    /// Told when the proxy is ready, reloading and stopping (`Type=notify` units).
    notifier: Option<Notifier>,
    /// Session-lived backends: the registry and the session routes.
    session_ctl: SessionCtl,
    /// Open streams of the live status view.
    status_feed: StatusFeed,
    /// Where each request's line goes (a bounded queue to the writer thread; off costs one load).
    access_log: Arc<AccessLog>,
    metrics: Arc<Metrics>,
    /// When each instance now starting began to, for its start-to-ready duration.
    starting_since: HashMap<InstanceId, Instant>,
}

impl Reactor {
    fn new(bound: Bound, config: Config, wiring: Wiring) -> io::Result<Self> {
        let Bound {
            poll,
            listener,
            #[cfg(feature = "tls")]
            https,
            admin_listener,
            signals,
            waker,
            tx,
            inbox,
        } = bound;
        // The h2 worker tells the reactor of places it frees in full pools the reactor waits on.
        wiring
            .h2
            .connect_reactor(Mailbox::new(tx.clone(), waker.clone()));
        let mut routes = Routes::new(
            config.server.limits.max_held_requests,
            crate::msg::Thread::Reactor,
            wiring.clock,
        );
        // A fresh table forgets nothing on its first reconcile.
        let _ = routes.apply(&wiring.backends);
        if let Some(path) = &config.server.pid_file {
            std::fs::write(path, format!("{}\n", std::process::id())).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot write pid file {}: {e}", path.display()),
                )
            })?;
        }
        log::info!("{} backends configured", routes.len());
        let admin_base = admin_base(&admin_listener)?;
        // Unix time of the clock's epoch, so the registry writes wall-clock times without reading a clock.
        let unix_now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let epoch_unix_ms = unix_now_ms.saturating_sub(wiring.clock.now_ms());
        let registry = Registry::new(config.sessions.clone(), admin_base, epoch_unix_ms);
        let session_ctl = SessionCtl::new(registry, wiring.clock);
        #[cfg(feature = "acme")]
        let acme = acme::Acme::start(&config, Mailbox::new(tx.clone(), waker.clone()))?;

        let mut reactor = Reactor {
            poll,
            listener: Some(listener),
            #[cfg(feature = "tls")]
            https,
            #[cfg(feature = "acme")]
            acme,
            admin_listener,
            // Reserved up front, not grown by doubling: untouched capacity costs address space, not memory,
            // and an idle connection then costs its own slot and nothing more.
            sessions: Slab::with_capacity(slot_reservation(&config)),
            upstreams: Slab::with_capacity(slot_reservation(&config)),
            admins: Slab::new(),
            routes,
            timers: Timers::default(),
            pool: IdlePool::new(PoolLimits::from(&config.server)),
            pool_sweep: Deadline::default(),
            inbox,
            _waker: waker,
            notifier: wiring.notifier,
            supervisor: Some(wiring.supervisor),
            h2: Some(wiring.h2),
            signals,
            config,
            ids: RequestIdGenerator::seeded(),
            now: Instant::now(),
            next_serial: 0,
            accept_paused: false,
            fd_exhausted: false,
            shutting_down: false,
            supervisor_lost: false,
            again: Vec::new(),
            host_scratch: String::new(),
            route_scratch: RouteScratch::default(),
            config_status: ConfigStatus {
                generation: 1,
                last_reload_error: None,
            },
            session_ctl,
            status_feed: StatusFeed::default(),
            access_log: wiring.access_log,
            metrics: wiring.metrics,
            starting_since: HashMap::new(),
        };
        reactor.sessions_configured();
        #[cfg(feature = "acme")]
        reactor.acme_configured();
        Ok(reactor)
    }

    fn event_loop(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        loop {
            let timeout = if !self.again.is_empty() {
                Some(Duration::ZERO)
            } else {
                self.timers
                    .next_deadline()
                    .map(|at| at.saturating_duration_since(Instant::now()))
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_clients(false),
                    #[cfg(feature = "tls")]
                    HTTPS_LISTENER => self.accept_clients(true),
                    ADMIN_LISTENER => self.accept_admins(),
                    WAKER => {}
                    SIGNALS => self.handle_signals(),
                    Token(t) if t >= ADMIN_BASE => self.admin_ready(t - ADMIN_BASE),
                    Token(t) if t >= UPSTREAM_BASE => self.upstream_ready(t - UPSTREAM_BASE, event),
                    Token(t) => self.client_ready(t - SESSION_BASE, event),
                }
            }
            // Supervisor messages are drained on every turn, not only on the waker's token: a wake-up may be
            // coalesced with other events.
            if self.drain_inbox() || self.supervisor_lost {
                self.finish_shutdown();
                if self.supervisor_lost && !self.shutting_down {
                    return Err(io::Error::other("the supervisor thread ended unexpectedly"));
                }
                return Ok(());
            }
            for key in std::mem::take(&mut self.again) {
                self.drive(key);
            }
            self.fire_timers();
            // A thread-local check per turn, true only on a turn whose events ended a burst (or halved its
            // tail): the memory goes back on that event, with no timer of its own.
            if buffer::burst_over() {
                self.trim_after_burst();
            }
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        self.now = now;
        while let Some((at, target)) = self.timers.pop_due(now) {
            match target {
                TimerTarget::Session { key, serial } => self.session_timer(key, serial, at),
                TimerTarget::PoolSweep => {
                    if self
                        .pool_sweep
                        .fire(at, now, TimerTarget::PoolSweep, &mut self.timers)
                    {
                        self.sweep_pool();
                    }
                }
                TimerTarget::ResumeAccept => self.resume_accept(),
                TimerTarget::Sessions => self.registry_timer(at),
                TimerTarget::Status => self.status_tick(at),
            }
        }
    }

    /// Returns false if the supervisor thread is gone.
    fn send_supervisor(&self, command: Command) -> bool {
        let sent = self
            .supervisor
            .as_ref()
            .is_some_and(|s| s.mailbox.send(command));
        if !sent {
            log::error!("the supervisor thread is gone");
        }
        sent
    }
}

/// Slots reserved for sessions (and for backend connections, at most one per session plus the pools).
fn slot_reservation(config: &Config) -> usize {
    // Beyond this the slab grows as usual; the cap keeps a huge `max_connections` from reserving gigabytes
    // of address space.
    const MAX_RESERVED: usize = 1 << 16;
    config.server.limits.max_connections.min(MAX_RESERVED)
}

fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == nix::libc::EMFILE || code == nix::libc::ENFILE || code == nix::libc::ENOBUFS || code == nix::libc::ENOMEM)
}
