//! The worker thread's state and its control loop.
//!
//! Everything runs on one thread (a current-thread runtime inside a `LocalSet`), so the state the
//! connections share lives in one `Rc<Worker>` with `RefCell`s that are borrowed only between awaits.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::conn;
use super::pool::Pool;
use super::routes::{Release, Routes};
use super::{Control, H2Settings};
use crate::access_log::AccessLog;
use crate::config::Limits;
use crate::http1::request_id::RequestIdGenerator;
use crate::memory::give_back_freed_memory;
use crate::metrics::Metrics;
use crate::msg::{Clock, Command, Mailbox, ReactorMsg, Thread};
use crate::sessions::route::SessionHosts;
use crate::upstream::{Outcome, PoolLimits, Reconcile};

/// How long open streams may run after shutdown began before the worker ends regardless: as long as a
/// backend's default drain, after which the supervisor stops the backends these streams talk to anyway.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(30);

pub struct Worker {
    pub routes: RefCell<Routes>,
    /// Session hostnames, as the reactor's registry publishes them.
    pub sessions: RefCell<SessionHosts>,
    pub pool: RefCell<Pool>,
    /// Wakes the pool sweeper when the pool's next deadline may have moved earlier (`Put::sweep_by`).
    pub sweep_sooner: Notify,
    pub ids: RefCell<RequestIdGenerator>,
    pub supervisor: Mailbox<Command>,
    /// The reactor, told of places freed in full pools it waits on (given once it runs).
    pub reactor: RefCell<Option<Mailbox<ReactorMsg>>>,
    pub limits: Limits,
    pub settings: H2Settings,
    pub shutting_down: Cell<bool>,
    /// Shared with the reactor, which opens, reopens and reconfigures it.
    pub access_log: Arc<AccessLog>,
    /// Its open connections and streams, and the requests it answers before routing them.
    pub metrics: Arc<Metrics>,
}

impl Worker {
    pub fn new(
        backends: &Reconcile,
        supervisor: Mailbox<Command>,
        clock: Clock,
        (limits, pool, settings): (Limits, PoolLimits, H2Settings),
        access_log: Arc<AccessLog>,
        metrics: Arc<Metrics>,
    ) -> Rc<Worker> {
        let mut routes = Routes::new(limits.max_held_requests, Thread::H2, clock);
        // A fresh table forgets nothing on its first reconcile.
        let _ = routes.apply(backends);
        Rc::new(Worker {
            routes: RefCell::new(routes),
            sessions: RefCell::new(SessionHosts::default()),
            pool: RefCell::new(Pool::new(pool)),
            sweep_sooner: Notify::new(),
            ids: RefCell::new(RequestIdGenerator::seeded()),
            supervisor,
            reactor: RefCell::new(None),
            limits,
            settings,
            shutting_down: Cell::new(false),
            access_log,
            metrics,
        })
    }

    /// Sends the supervisor what admission or a report asks of it (a start, a pool's demand).
    pub fn ask(&self, command: Command) {
        log::debug!("h2: asking the supervisor: {command:?}");
        if !self.supervisor.send(command) {
            log::error!("the supervisor thread is gone");
        }
    }

    /// Tells the reactor something (once it has given its mailbox, which it does before anything else).
    pub fn tell_reactor(&self, msg: ReactorMsg) {
        match self.reactor.borrow().as_ref() {
            Some(reactor) => {
                reactor.send(msg);
            }
            None => log::debug!("h2: no reactor mailbox yet for {msg:?}"),
        }
    }

    /// A stream traded credential `index` of the session at `host` for its cookie: spent here at once
    /// (so the token cannot be traded again on this thread), and the registry told.
    pub fn spend(&self, host: &str, index: usize) {
        self.sessions.borrow_mut().spend(host, index);
        self.tell_reactor(ReactorMsg::TokenSpent {
            hostname: host.into(),
            index,
        });
    }

    /// Carries out what a report, a reload or a freed place asks: release held streams, close pools,
    /// ask for starts.
    pub fn settle(&self, outcome: Outcome<tokio::sync::oneshot::Sender<Release>, ()>) {
        release(outcome.release);
        if outcome.drop_pool {
            // Dropping the sockets closes them.
            drop(
                self.pool
                    .borrow_mut()
                    .drop_backend(outcome.id, outcome.slot),
            );
        }
        if let Some(command) = outcome.ask {
            self.ask(command);
        }
    }
}

/// The control loop: runs until shutdown has drained every connection (or [`SHUTDOWN_DRAIN`] passed).
pub async fn run(worker: Rc<Worker>, mut inbox: mpsc::UnboundedReceiver<Control>) {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut connections: JoinSet<()> = JoinSet::new();
    let sweeper = tokio::task::spawn_local(sweep_pool(worker.clone()));
    let mut inbox_open = true;
    let mut drain_until: Option<Instant> = None;
    loop {
        tokio::select! {
            control = inbox.recv(), if inbox_open => match control {
                Some(Control::HandOff { stream, already_read, peer, tls }) => {
                    if worker.shutting_down.get() {
                        continue; // dropping the socket closes it
                    }
                    if connections.len() >= worker.limits.max_connections {
                        log::warn!("{peer}: h2 connection limit reached; closing");
                        continue;
                    }
                    let worker = worker.clone();
                    let shutdown = shutdown_rx.clone();
                    connections.spawn_local(async move {
                        conn::serve(worker, (stream, already_read, tls), peer, shutdown).await;
                    });
                }
                Some(Control::Backend(event)) => {
                    let now = std::time::Instant::now();
                    let outcome = worker.routes.borrow_mut().on_event(event, now);
                    if let Some(outcome) = outcome {
                        worker.settle(outcome);
                    }
                }
                Some(Control::Reactor(mailbox)) => {
                    *worker.reactor.borrow_mut() = Some(mailbox);
                }
                Some(Control::SlotFreed(instance)) => {
                    let now = std::time::Instant::now();
                    let outcome = worker.routes.borrow_mut().freed(instance, now);
                    if let Some(outcome) = outcome {
                        worker.settle(outcome);
                    }
                }
                Some(Control::Reconcile(reconcile)) => {
                    let outcomes = worker.routes.borrow_mut().apply(&reconcile);
                    for outcome in outcomes {
                        worker.settle(outcome);
                    }
                }
                Some(Control::Sessions { seq, update }) => {
                    worker.sessions.borrow_mut().apply(update);
                    worker.tell_reactor(ReactorMsg::H2Ack(seq));
                }
                Some(Control::Shutdown) | None => {
                    inbox_open = control_is_open(&control);
                    if !worker.shutting_down.replace(true) {
                        log::debug!("h2: shutting down, {} connections open", connections.len());
                        let held = worker.routes.borrow_mut().shut_down();
                        release(held);
                        let _ = shutdown_tx.send(true);
                        drain_until = Some(Instant::now() + SHUTDOWN_DRAIN);
                    }
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = sleep_until(drain_until), if drain_until.is_some() => {
                log::warn!("h2: {} connections still open after {SHUTDOWN_DRAIN:?}; closing them", connections.len());
                break;
            }
        }
        if worker.shutting_down.get() && connections.is_empty() {
            break;
        }
    }
    connections.abort_all();
    sweeper.abort();
    drop(worker.pool.borrow_mut().clear());
}

/// Tells held streams how their wait ended; a stream that is gone has dropped its receiver (and the
/// place leased to it is given back as the unsent result drops).
fn release(released: Vec<(tokio::sync::oneshot::Sender<Release>, Release)>) {
    for (waiter, result) in released {
        let _ = waiter.send(result);
    }
}

fn control_is_open(control: &Option<Control>) -> bool {
    control.is_some()
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Closes pooled connections as their time runs out (see `upstream::idle_pool`); sleeps until the next one
/// is due, and without a timer while the pool is empty.
async fn sweep_pool(worker: Rc<Worker>) {
    loop {
        let sweep = worker.pool.borrow_mut().sweep(std::time::Instant::now());
        let swept = !sweep.close.is_empty();
        // Dropping the sockets closes them.
        drop(sweep.close);
        if swept && worker.pool.borrow_mut().shrink_after_burst() {
            give_back_freed_memory();
        }
        match sweep.next {
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(Instant::from_std(at)) => {}
                    _ = worker.sweep_sooner.notified() => {}
                }
            }
            None => worker.sweep_sooner.notified().await,
        }
    }
}
