//! Spawngate: an on-demand reverse proxy. Requests are routed by `Host`; a backend (a local process or a
//! Docker container) is started when a request first needs it and stopped again when it has been idle.
//!
//! # Threads and who owns what
//!
//! ```text
//!                 ┌───────────────────── reactor (main thread) ──────────────────────┐
//!  clients ─TCP─▶ │ mio::Poll: listeners, HTTP/1 client + backend sockets, upstream  │ ─HTTP/1.1─▶ backends
//!  admin   ─TCP─▶ │ pool, timers, routing table, lifecycle *as last reported*        │
//!                 └──┬──────────────────▲──────────────────────────────┬────────────┘
//!    h2 preface:     │ hand_off,        │ ReactorMsg: BackendEvent     │ Command
//!    socket + bytes  │ BackendEvent,    │ (Ready, StartFailed,         │ (Start(id), Demand, StartSlot,
//!                    ▼ Reconcile, stop  │  Stopping, ...) of an id     ▼  ReadyCallback, Reload, Shutdown)
//!  ┌──────── h2 worker thread ───────┐  │  ┌──────────────── supervisor thread ─────────────────┐
//!  │ tokio current-thread + `h2`:    │  └──┤ mio::Poll: processes, containers (Docker calls on  │
//!  │ streams -> HTTP/1.1, own pool   ├─────▶ worker threads), health probes, idle/drain/stop    │
//!  └─────────────────────────────────┘Start│ timers: the authoritative lifecycle of each backend│
//!                                          └────────────────────────────────────────────────────┘
//! ```
//!
//! * The **reactor** ([`reactor`]) never blocks. It parses HTTP/1 with the sans-IO code in [`http1`]
//!   (which also decides, in [`http1::exchange`], what each backend response calls for), streams bodies
//!   between sockets with bounded buffers, holds requests for backends that are starting,
//!   tunnels upgraded connections, and serves the [`admin`] API on its own listener (with the live status
//!   page and its event stream, `reactor::status_feed`, whose timer runs only while someone watches).
//!   A connection that opens with the HTTP/2 preface is handed, with the bytes already read, to the h2
//!   worker.
//! * The **h2 worker** ([`h2`]) serves HTTP/2 with prior knowledge (h2c): each stream is routed and forwarded
//!   to its backend as HTTP/1.1. It learns lifecycle changes from the reactor, which forwards every report.
//! * The **supervisor** ([`supervisor`]) owns every running backend: it spawns, probes, stops and reaps,
//!   and reports each lifecycle transition to the reactor ([`msg`]).
//!   Docker Engine API calls block, so container starts, stops and log following run on short-lived
//!   worker threads that report back to the supervisor through its mailbox.
//! * The **output** thread (`supervisor::output`, started with the first local process) reads every
//!   local backend's stdout and stderr pipes on its own `mio::Poll` and writes each line to the log
//!   under the instance's name and into the instance's bounded tail next to its [`msg::Activity`]
//!   (`GET /backends/{name}/logs` reads it); a container's log follower does the same for its lines.
//! * The **upstream core** ([`upstream`]) is what both request threads know about backends, written once:
//!   the immutable [`upstream::RouteTable`] (shared by `Arc`, swapped whole on reload) routes a request by
//!   its host and, for hosts with a route table, by path, method and headers over one normalised path, to
//!   a compact [`upstream::BackendId`] with the route's forward plan, or to an answer of its own; each thread owns an [`upstream::Upstreams`] with every backend's
//!   lifecycle as last reported, its held requests and its instance's address, and both apply the same
//!   reports and the same reload [`upstream::Reconcile`] (planned once, by the reactor), so HTTP/1 and h2
//!   admit, hold and refuse alike.
//! * A backend is a `[backends]` entry (one instance, routed by its Host) or a `[pools.NAME]` (several
//!   instances that routes send to). Each request thread picks the instance and takes its place with a
//!   [`msg::Lease`] on the shared counter; the supervisor's pool controller decides how many run, from
//!   the `Command::Demand` each thread reports.
//! * Between threads a backend is named by its [`upstream::BackendId`], never by its Host: the reactor
//!   gives the ids when it plans a reload, and the supervisor applies that same `Reconcile` (the
//!   start-up set is one too), so the three threads agree on every id. A report about a backend
//!   forgotten since, whose slot a newer backend holds, carries the old generation and is ignored.
//! * Every report from the supervisor names the backend, the instance it is about and where it listens
//!   ([`msg::InstanceRef`]); nothing else derives a backend's address.
//! * [`run`] is the composition root: it binds the reactor's sockets (or takes the ones a service manager
//!   passed, [`systemd`]), starts the supervisor and the h2 worker with the same initial backends (one
//!   `Reconcile`, so the same ids) and clock, and hands them to the reactor, which tells a `Type=notify`
//!   service manager when it is ready, reloading and stopping.
//! * A **session** ([`sessions`]) is a one-instance pool made at run time from a `[sessions.NAME]` template
//!   through the admin API, under a hostname of its own. The reactor owns the registry (get-or-create by
//!   key, caps, lifetimes, tombstones): it adds and removes a session's backend with the same
//!   [`upstream::Reconcile`] a reload uses, and publishes the session's route to its own
//!   [`sessions::route::SessionHosts`] and, numbered, to the h2 worker's, answering the admin client only
//!   once the worker acknowledged (`ReactorMsg::H2Ack`). Both request threads route session hosts first,
//!   through the one [`sessions::gate`] (tokens, cookies, `/.spawngate/`).
//! * The threads share one fact without messages: per-backend [`msg::Activity`] counters (in-flight requests,
//!   streams and tunnels; last activity), written by whoever carries traffic and read by the supervisor to
//!   decide idleness; next to them, behind locks, the admin facts and the last lines of output of each
//!   instance. Nothing else is shared: each piece of state has one owner.
//! * Signals (`signal-hook`) arrive in the reactor as events: SIGHUP reloads [`config`], SIGTERM/SIGINT drain
//!   and stop everything, SIGUSR1 reopens the access log.
//! * `tls` (feature `tls`): with `https_port` the reactor binds an HTTPS listener and terminates TLS in
//!   the client stream (`reactor::client_tls`, over the sans-IO session in [`tls`]), so HTTP/1.1 and
//!   WebSocket over TLS run through the same phases as cleartext. Certificates by SNI, one immutable
//!   `rustls::ServerConfig` each, owned by the reactor without a lock and swapped whole on reload. ALPN
//!   offers `h2` first: once the handshake is done the reactor hands the socket and its rustls session to
//!   the h2 worker, as it hands over an h2c connection. The other direction: an instance at
//!   `address = "https://..."` (`tls::backend`, its roots read with the config) is reached over TLS by
//!   both request threads (`reactor::backend_tls` beside the backend socket, `h2::tls_io` in the
//!   worker) and probed over TLS by the supervisor.
//! * `acme` (feature `acme`; not wired in yet): the ACME thread, a current-thread tokio runtime that
//!   orders, stores and renews certificates and reports to the reactor by message (`acme`).
//! * The [`access_log`] is shared by both request threads: each formats its lines and copies them into a
//!   bounded buffer that one writer thread empties (a full buffer drops the line and counts it).
//! * [`metrics`] are atomics only: each backend's counters and histograms sit in an `Arc` next to its
//!   activity counters, written by the thread that carries a request, once, when it ends, from one
//!   [`metrics::ExchangeEnd`] that also makes its access-log line (`reactor::access` for HTTP/1, the
//!   h2 stream's record for h2); the reactor counts lifecycle reports as they pass and renders
//!   `GET /metrics`, and the status view reads the same counters.

pub mod access_log;
#[cfg(feature = "acme")]
pub mod acme;
pub mod admin;
pub mod civil;
pub mod cli;
pub mod config;
pub mod error;
pub mod h2;
pub mod http1;
pub mod json;
pub mod memory;
pub mod metrics;
pub mod msg;
pub mod reactor;
pub mod sessions;
pub mod supervisor;
pub mod systemd;
#[cfg(test)]
mod test_rng;
#[cfg(feature = "tls")]
pub mod tls;
pub mod upstream;

/// The composition root: binds the reactor's sockets, starts the supervisor and the h2 worker with the
/// same initial backends and the same clock, and hands both to the reactor, which runs until SIGTERM or
/// SIGINT has drained and stopped every backend. What later features share between threads (TLS
/// settings, metrics, the session registry) is built here, once.
pub fn run(config: config::Config) -> std::io::Result<()> {
    // Before any thread starts: what the service manager passed belongs to this process alone.
    let inherited = systemd::inherited_listeners()?;
    let notifier = systemd::Notifier::from_env();
    let bound = reactor::Bound::bind(&config, inherited)?;
    // Opened before anything starts, so a path that cannot be written fails the start.
    let access_log = access_log::AccessLog::start(&config.server)?;
    let clock = msg::Clock::new();
    // One plan of the start-up set for all three threads, so they name every backend by the same id.
    let mut backends = upstream::Reconcile::initial(&config.backends, &config.hosts);
    let metrics = std::sync::Arc::new(metrics::Metrics::default());
    metrics.adopt(&mut backends);
    let supervisor =
        supervisor::spawn_guarded(&backends, bound.mailbox(), clock, bound.ready_url_base()?)?;
    let h2 = h2::spawn(
        backends.clone(),
        supervisor.mailbox.clone(),
        clock,
        config.server.limits.clone(),
        h2::PoolLimits::from(&config.server),
        access_log.clone(),
        metrics.clone(),
    )?;
    let wiring = reactor::Wiring {
        clock,
        backends,
        supervisor,
        h2,
        notifier,
        access_log: access_log.clone(),
        metrics,
    };
    let served = bound.serve(config, wiring);
    // Every request thread has ended: what is queued is written before the process exits.
    access_log.close();
    served
}
