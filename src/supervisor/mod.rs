//! The supervisor thread: owns every backend instance and the authoritative lifecycle of each.
//!
//! ```text
//!  Command (Start, ReadyCallback: by BackendId;    ──▶ event_loop ──▶ Backend: policy ──▶ instances
//!           Reload(Reconcile): reload; Shutdown)
//!  SIGCHLD pipe, probe sockets, timer heap          ──▶ wakeups        │ feed(InstanceKey, Input)
//!  DriverEvent (container workers: driver_events)   ──▶                ▼
//!                              InstanceSlot: CrashLoop::step ─▶ lifecycle::handle (pure) ─▶ Effects
//!  instance (process | container), probe ◀── effects; BackendEvent { backend: id, .. } ──▶ reactor
//! ```
//!
//! A backend is a policy (`policy`: on demand today) over a set of instances (`backend`, `slot`): each
//! instance has its own spec and address (`crate::upstream::instance`), lifecycle, crash-loop record,
//! process or container and health probe. The reactor speaks about backends, each named by the
//! [`BackendId`](crate::upstream::BackendId) it gave it; the policy says which instances an order
//! reaches, and every report names the backend by that id, and the instance and its address. The set of
//! backends changes only as the reactor planned it (`reload`: the start-up set and each reload's
//! [`Reconcile`], the same value the request threads apply), so there is one reload algorithm. The loop
//! keys all it registers by instance (`keys`): probe tokens, deadlines in the timer heap, container
//! reports.
//!
//! With every backend stopped the thread sleeps in `poll` with no timeout. Child exits arrive through a
//! SIGCHLD self-pipe; each instance has at most one deadline in the timer heap; health probes are
//! non-blocking sockets on the same poll. Processes are spawned only from this thread, which lives as long
//! as the proxy, because their parent-death signal is tied to the spawning thread.
//!
//! Local instances speak two systemd protocols with it (`activation`, `notify`): with `socket_activation`
//! the supervisor binds the instance's listener before the spawn and passes it as descriptor 3, so the
//! instance is routable from its spawn; and every local instance gets a `NOTIFY_SOCKET` (one datagram
//! socket on the same poll, senders told apart by their credentials) for `READY=1`, `STATUS=`,
//! `STOPPING=1` and `WATCHDOG=1`, each an input to the instance's lifecycle.
//!
//! Containers are driven through the Docker Engine API, whose calls block: the `docker` driver runs them
//! on worker threads (one per container start and life, one per stop) that report back through a channel
//! woken by the same waker as commands, so a slow daemon never stalls this loop or another backend.
//!
//! A local instance's stdout and stderr are pipes read by one "output" thread with its own poll
//! (`output`), so a backend's flood of output never delays this loop: each line goes to the log under
//! the instance's name and into the instance's tail (`crate::msg::output`), as a container's lines do
//! from its log follower.

mod activation;
mod backend;
mod docker;
#[cfg(test)]
mod docker_e2e_tests;
mod driver_events;
#[cfg(test)]
mod e2e_tests;
mod event_loop;
mod feed;
#[cfg(test)]
mod harness;
mod instance;
#[cfg(test)]
mod instances_tests;
mod keys;

mod lifecycle;
mod listening;
mod notify;
mod output;
mod policy;
mod pool_ctl;
mod probe;
mod process;
mod reload;
#[cfg(test)]
mod reload_tests;
mod rolling;
mod scale_down;
mod sessions;
mod sigchld;
mod slot;
#[cfg(test)]
mod test_support;
mod timers;
mod wakeups;
pub mod watchdog;

use std::io;
use std::thread::JoinHandle;

use crate::msg::{Clock, Command, Mailbox, ReactorMsg};
use crate::upstream::Reconcile;
use event_loop::Supervisor;

/// The running supervisor: send it commands through `mailbox`; join `thread` after `ShutdownComplete`.
pub struct SupervisorHandle {
    pub mailbox: Mailbox<Command>,
    pub thread: JoinHandle<()>,
}

/// Starts the supervisor thread with the backends of `initial` (all Stopped), under the ids the request
/// threads know them by: the same [`Reconcile::initial`] they start from. Lifecycle events go to
/// `reactor`.
///
/// `ready_url_base` is e.g. "http://127.0.0.1:9999" (the admin listener); each backend gets
/// `SERVERLESS_PROXY_READY_URL = "{ready_url_base}/ready/{hostname}"`.
pub fn spawn(
    initial: &Reconcile,
    reactor: Mailbox<ReactorMsg>,
    clock: Clock,
    ready_url_base: String,
) -> io::Result<SupervisorHandle> {
    spawn_with(initial, reactor, clock, ready_url_base, None)
}

/// [`spawn`], with an orphan guard that kills every backend process group if the proxy dies: what the
/// proxy itself uses (library tests run without one, as their executable is not `spawngate`).
pub fn spawn_guarded(
    initial: &Reconcile,
    reactor: Mailbox<ReactorMsg>,
    clock: Clock,
    ready_url_base: String,
) -> io::Result<SupervisorHandle> {
    spawn_with(
        initial,
        reactor,
        clock,
        ready_url_base,
        watchdog::Watchdog::start(),
    )
}

fn spawn_with(
    initial: &Reconcile,
    reactor: Mailbox<ReactorMsg>,
    clock: Clock,
    ready_url_base: String,
    watchdog: Option<watchdog::Watchdog>,
) -> io::Result<SupervisorHandle> {
    let (mut supervisor, mailbox) = Supervisor::new(reactor, clock, &ready_url_base, watchdog)?;
    supervisor.reconcile(&initial.changes);
    let thread = std::thread::Builder::new()
        .name("supervisor".to_string())
        .spawn(move || supervisor.run())?;
    Ok(SupervisorHandle { mailbox, thread })
}
