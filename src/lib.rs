//! Spawngate: an on-demand reverse proxy. Requests are routed by `Host`; a backend (a local process or a
//! Docker container) is started when a request first needs it and stopped again when it has been idle.
//!
//! # Threads and who owns what
//!
//! ```text
//!                    ┌──────────────────────── reactor (main thread) ────────────────────────┐
//!  clients ──TCP──▶  │ mio::Poll: listeners, client + backend sockets, upstream pool, timers, │ ──TCP──▶ backends
//!  admin   ──TCP──▶  │ routing table, each backend's lifecycle *as last reported*            │
//!                    └───────▲──────────────────────────────────────────────┬───────────────┘
//!                   ReactorMsg│ (Ready, StartFailed, Stopping, ...)          │Command (Start, ReadyCallback,
//!                            │                                              ▼         Reload, Shutdown)
//!                    ┌────────┴───────────────── supervisor thread ───────────────────────────┐
//!                    │ mio::Poll: child processes, health probes, idle/drain/stop timers,      │
//!                    │ the authoritative lifecycle of every backend                            │
//!                    └─────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! * The **reactor** ([`reactor`]) never blocks. It parses HTTP/1 with the sans-IO code in [`http1`],
//!   streams bodies between sockets with bounded buffers, holds requests for backends that are starting,
//!   and serves the [`admin`] API on its own listener.
//! * The **supervisor** ([`supervisor`]) owns every running backend: it spawns, probes, stops and reaps,
//!   and reports each lifecycle transition to the reactor ([`msg`]).
//! * The two share one fact without messages: per-backend [`msg::Activity`] counters (in-flight requests and
//!   tunnels, last activity), written by the reactor and read by the supervisor to decide idleness.
//! * Signals (`signal-hook`) arrive in the reactor as events: SIGHUP reloads [`config`], SIGTERM/SIGINT drain
//!   and stop everything.

pub mod admin;
pub mod cli;
pub mod config;
pub mod error;
pub mod h2;
pub mod http1;
pub mod msg;
pub mod reactor;
pub mod supervisor;

pub use reactor::run;
