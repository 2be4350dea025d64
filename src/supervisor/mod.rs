//! The supervisor thread: owns every backend instance and the authoritative lifecycle of each.
//!
//! ```text
//!  Command (Start, ReadyCallback, Reload, Shutdown) ──▶ event_loop ──▶ lifecycle::handle (pure)
//!  SIGCHLD pipe, probe sockets, timer heap          ──▶     │              │ Effects
//!  DriverEvent (container workers: driver_events)   ──▶     ◀──────────────┘
//!  instance (process | container), probe ◀── effects; BackendEvent ──▶ reactor
//! ```
//!
//! With every backend stopped the thread sleeps in `poll` with no timeout. Child exits arrive through a
//! SIGCHLD self-pipe; each backend has at most one deadline in the timer heap; health probes are
//! non-blocking sockets on the same poll. Processes are spawned only from this thread, which lives as long
//! as the proxy, because their parent-death signal is tied to the spawning thread.
//!
//! Containers are driven through the Docker Engine API, whose calls block: the `docker` driver runs them
//! on worker threads (one per container start and life, one per stop) that report back through a channel
//! woken by the same waker as commands, so a slow daemon never stalls this loop or another backend.

mod backend;
mod docker;
#[cfg(test)]
mod docker_e2e_tests;
mod driver_events;
#[cfg(test)]
mod e2e_tests;
mod event_loop;
mod instance;
mod lifecycle;
mod probe;
mod process;
mod sigchld;
#[cfg(test)]
mod test_support;
mod timers;
pub mod watchdog;

use std::collections::HashMap;
use std::io;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use mio::{Poll, Waker};
use slab::Slab;

use crate::msg::{BackendEntry, Clock, Command, Mailbox, ReactorMsg};
use docker::DockerDriver;
use event_loop::{Supervisor, SIGCHLD_TOKEN, WAKER_TOKEN};
use sigchld::SigchldPipe;
use timers::Timers;

/// The running supervisor: send it commands through `mailbox`; join `thread` after `ShutdownComplete`.
pub struct SupervisorHandle {
    pub mailbox: Mailbox<Command>,
    pub thread: JoinHandle<()>,
}

/// Starts the supervisor thread for `backends` (all Stopped). Lifecycle events go to `reactor`.
///
/// `ready_url_base` is e.g. "http://127.0.0.1:9999" (the admin listener); each backend gets
/// `SERVERLESS_PROXY_READY_URL = "{ready_url_base}/ready/{hostname}"`.
pub fn spawn(
    backends: Vec<BackendEntry>,
    reactor: Mailbox<ReactorMsg>,
    clock: Clock,
    ready_url_base: String,
) -> io::Result<SupervisorHandle> {
    spawn_with(backends, reactor, clock, ready_url_base, None)
}

/// [`spawn`], with an orphan guard that kills every backend process group if the proxy dies: what the
/// proxy itself uses (library tests run without one, as their executable is not `spawngate`).
pub fn spawn_guarded(
    backends: Vec<BackendEntry>,
    reactor: Mailbox<ReactorMsg>,
    clock: Clock,
    ready_url_base: String,
) -> io::Result<SupervisorHandle> {
    spawn_with(
        backends,
        reactor,
        clock,
        ready_url_base,
        watchdog::Watchdog::start(),
    )
}

fn spawn_with(
    backends: Vec<BackendEntry>,
    reactor: Mailbox<ReactorMsg>,
    clock: Clock,
    ready_url_base: String,
    watchdog: Option<watchdog::Watchdog>,
) -> io::Result<SupervisorHandle> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER_TOKEN)?);
    let sigchld = SigchldPipe::register(poll.registry(), SIGCHLD_TOKEN)?;
    let (tx, commands) = mpsc::channel();
    let (driver_tx, driver_events) = mpsc::channel();
    let mut supervisor = Supervisor {
        poll,
        commands,
        driver_events,
        docker: DockerDriver::new(Mailbox::new(driver_tx, waker.clone())),
        reactor,
        clock,
        ready_url_base: ready_url_base.trim_end_matches('/').to_string(),
        sigchld,
        backends: Slab::with_capacity(backends.len()),
        by_host: HashMap::with_capacity(backends.len()),
        timers: Timers::new(),
        shutting_down: false,
        reactor_gone: false,
        watchdog,
    };
    for entry in backends {
        supervisor.add_backend(entry);
    }
    let thread = std::thread::Builder::new()
        .name("supervisor".to_string())
        .spawn(move || supervisor.run())?;
    Ok(SupervisorHandle {
        mailbox: Mailbox::new(tx, waker),
        thread,
    })
}
