//! The supervisor thread's loop and what it owns: one `mio::Poll` for commands and driver reports (one
//! waker), child exits (SIGCHLD pipe) and health probes, plus a timer heap with every instance's next
//! deadline, the listen watch's looks, and an alarm that wakes the poll at the earliest of them to the
//! microsecond. Commands name backends by id; their policy turns each into inputs for instances (`feed.rs`
//! runs those through the instance's lifecycle). Reloads are in `reload.rs`, exits, probe readiness and
//! timers in `wakeups.rs`, container reports in `driver_events.rs`.

use std::collections::HashMap;
use std::io;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Waker};
use slab::Slab;

use super::backend::Backend;
use super::docker::{DockerDriver, DriverEvent};
use super::keys::{InstanceKey, ALARM_TOKEN, NOTIFY_TOKEN, SIGCHLD_TOKEN, WAKER_TOKEN};
use super::listening::ListenWatch;
use super::notify::NotifySocket;
use super::output::OutputThread;
use super::policy::Order;
use super::sigchld::SigchldPipe;
use super::slot::InstanceSlot;
use super::timers::{Alarm, Timers};
use super::watchdog::Watchdog;
use crate::msg::{Clock, Command, Mailbox, ReactorMsg, StopReason};
use crate::upstream::BackendId;

/// Readiness events handled per poll call; more simply wait for the next call.
const EVENT_CAPACITY: usize = 256;

pub struct Supervisor {
    pub poll: Poll,
    pub commands: Receiver<Command>,
    /// Reports from container worker threads; they wake the poll through the same waker as commands.
    pub driver_events: Receiver<DriverEvent>,
    pub docker: DockerDriver,
    pub reactor: Mailbox<ReactorMsg>,
    pub clock: Clock,
    pub ready_url_base: String,
    pub sigchld: SigchldPipe,
    /// The `NOTIFY_SOCKET` of every local instance; `None` if it could not be made (instances then
    /// become ready by their health path or ready callback only).
    pub notify: Option<NotifySocket>,
    /// Asks the kernel whether a starting program listens yet, instead of connecting to find out, and
    /// asks again every fraction of a millisecond until it does; `None` where netlink is unavailable
    /// (knocks then connect, at the lifecycle's pace).
    pub listen_watch: Option<ListenWatch>,
    /// Wakes the poll at the next deadline, to the microsecond; `None` if the timer could not be made
    /// (the poll's timeout, in whole milliseconds, does it then).
    pub alarm: Option<Alarm>,
    pub backends: Slab<Backend>,
    /// Commands name a backend by the id the reactor gave it; the slab key names it within this thread
    /// (instance keys, probe tokens).
    pub by_id: HashMap<BackendId, usize>,
    /// Sessions forgotten before they ran, and the backend each waited for, which is still there: a
    /// session added later that names one of them waits for that backend instead (see `sessions`).
    /// An entry goes when the backend it names is forgotten, so this never outgrows `backends`.
    pub passed_waits: HashMap<BackendId, BackendId>,
    /// One deadline per instance.
    pub timers: Timers<InstanceKey>,
    /// The end of each pool's scale-down window (by backend key), armed only while a pool with a
    /// `target_in_flight` runs more instances than its `min_running`.
    pub windows: Timers<usize>,
    pub shutting_down: bool,
    /// The pool controller is at work: the starts it makes do not call it again.
    pub controlling: bool,
    /// The reactor dropped its end: nobody is left to report to.
    pub reactor_gone: bool,
    /// Kills every backend process group if the proxy dies (see `watchdog`).
    pub watchdog: Option<Watchdog>,
    /// Reads the stdout and stderr of local processes (started with the first one).
    pub output: OutputThread,
}

/// Whether the loop goes on after a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    Continue,
    Done,
}

impl Supervisor {
    /// A supervisor with no backends yet, and the mailbox its commands arrive through.
    pub fn new(
        reactor: Mailbox<ReactorMsg>,
        clock: Clock,
        ready_url_base: &str,
        watchdog: Option<Watchdog>,
    ) -> io::Result<(Supervisor, Mailbox<Command>)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER_TOKEN)?);
        let sigchld = SigchldPipe::register(poll.registry(), SIGCHLD_TOKEN)?;
        let notify = match NotifySocket::open(poll.registry(), NOTIFY_TOKEN) {
            Ok(socket) => Some(socket),
            Err(e) => {
                log::warn!("no readiness notification for backends (NOTIFY_SOCKET): {e}");
                None
            }
        };
        let listen_watch = match ListenWatch::open() {
            Ok(watch) => Some(watch),
            Err(e) => {
                log::debug!("listen checks by connecting (no sock_diag netlink: {e})");
                None
            }
        };
        let alarm = match Alarm::register(poll.registry(), ALARM_TOKEN) {
            Ok(alarm) => Some(alarm),
            Err(e) => {
                log::debug!("supervisor deadlines to the millisecond (no timerfd: {e})");
                None
            }
        };
        let (tx, commands) = mpsc::channel();
        let (driver_tx, driver_events) = mpsc::channel();
        let supervisor = Supervisor {
            poll,
            commands,
            driver_events,
            docker: DockerDriver::new(Mailbox::new(driver_tx, waker.clone())),
            reactor,
            clock,
            ready_url_base: ready_url_base.trim_end_matches('/').to_string(),
            sigchld,
            notify,
            listen_watch,
            alarm,
            backends: Slab::new(),
            by_id: HashMap::new(),
            passed_waits: HashMap::new(),
            timers: Timers::new(),
            windows: Timers::new(),
            shutting_down: false,
            controlling: false,
            reactor_gone: false,
            watchdog,
            output: OutputThread::default(),
        };
        Ok((supervisor, Mailbox::new(tx, waker)))
    }

    pub fn run(mut self) {
        let mut events = Events::with_capacity(EVENT_CAPACITY);
        while self.turn(&mut events) == Turn::Continue {}
        // The backends are gone: their last lines are read before the proxy exits.
        self.output.close();
    }

    /// Sleeps until something happens (or the next deadline), then handles all of it.
    pub fn turn(&mut self, events: &mut Events) -> Turn {
        let now = Instant::now();
        let next = self.next_wake();
        let timeout = match self.alarm.as_mut().map(|alarm| alarm.set(next, now)) {
            Some(Ok(timeout)) => timeout,
            Some(Err(e)) => {
                log::warn!(
                    "supervisor alarm failed, deadlines to the millisecond from now on: {e}"
                );
                self.alarm = None;
                next.map(|at| at.saturating_duration_since(now))
            }
            None => next.map(|at| at.saturating_duration_since(now)),
        };
        if let Err(e) = self.poll.poll(events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                return Turn::Continue;
            }
            log::error!("supervisor poll failed, killing every backend: {e}");
            self.kill_everything();
            return Turn::Done;
        }
        for event in events.iter() {
            match event.token() {
                WAKER_TOKEN => {
                    self.drain_commands();
                    self.drain_driver_events();
                }
                SIGCHLD_TOKEN => self.reap_children(),
                NOTIFY_TOKEN => self.handle_notifications(),
                ALARM_TOKEN => {
                    if let Some(alarm) = self.alarm.as_mut() {
                        alarm.rang();
                    }
                }
                token => self.advance_probe(token),
            }
        }
        self.look_for_listeners();
        self.fire_timers();
        self.close_windows();
        if self.reactor_gone {
            log::warn!("the reactor is gone; killing every backend");
            self.kill_everything();
            return Turn::Done;
        }
        if self.shutting_down && self.backends.iter().all(|(_, b)| b.is_at_rest()) {
            log::info!("every backend is stopped");
            self.reactor.send(ReactorMsg::ShutdownComplete);
            return Turn::Done;
        }
        Turn::Continue
    }

    /// The earliest deadline of all: the instances' (whole milliseconds of the clock), the pools'
    /// scale-down windows and the listen watch's next look (microseconds).
    fn next_wake(&mut self) -> Option<Instant> {
        let ms = [self.timers.next_deadline(), self.windows.next_deadline()]
            .into_iter()
            .flatten()
            .min()
            .map(|at| self.clock.instant(at));
        let look = self
            .listen_watch
            .as_mut()
            .and_then(ListenWatch::next_due_us)
            .map(|us| self.clock.instant(0) + Duration::from_micros(us));
        [ms, look].into_iter().flatten().min()
    }

    /// Microseconds of the clock at `at` (the listen watch's unit).
    pub(super) fn clock_us(&self, at: Instant) -> u64 {
        let us = at
            .saturating_duration_since(self.clock.instant(0))
            .as_micros();
        u64::try_from(us).unwrap_or(u64::MAX)
    }

    fn drain_commands(&mut self) {
        loop {
            match self.commands.try_recv() {
                Ok(command) => self.handle_command(command),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.reactor_gone = true;
                    return;
                }
            }
        }
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Start(id) if self.shutting_down => {
                log::debug!("ignoring a start of backend {id} during shutdown");
            }
            Command::Start(id) => self.order_id(id, Order::Start),
            Command::Demand { backend, .. } if self.shutting_down => {
                log::debug!("ignoring demand for backend {backend} during shutdown");
            }
            Command::Demand {
                backend,
                from,
                held,
                grow,
            } => {
                let Some(&key) = self.by_id.get(&backend) else {
                    return;
                };
                if let Some(b) = self.backends.get_mut(key) {
                    b.held[from as usize] = held;
                }
                self.control(key);
                if grow {
                    self.grow(key);
                }
            }
            Command::StartSlot { backend, .. } if self.shutting_down => {
                log::debug!("ignoring a slot start of backend {backend} during shutdown");
            }
            Command::StartSlot { backend, slot } => match self.by_id.get(&backend) {
                Some(&key) => self.start_slot(key, slot),
                None => log::debug!("start of a slot of unknown backend {backend}; ignored"),
            },
            Command::ReadyCallback(id, slot) => match self.by_id.get(&id) {
                Some(&key) => self.feed(InstanceKey::new(key, slot), Order::ReadyCallback.input()),
                None => log::debug!("ready callback for unknown backend {id}; ignored"),
            },
            Command::Reload(_) if self.shutting_down => {
                log::debug!("ignoring a reload during shutdown")
            }
            Command::Reload(reconcile) => self.reconcile(&reconcile.changes),
            Command::Sweep(config) => self.docker.sweep_leftovers(&config),
            Command::End { backend, drain } => {
                let reason = match drain {
                    true => StopReason::Removed,
                    false => StopReason::Terminated,
                };
                self.remove(backend, reason);
            }
            Command::Shutdown => {
                self.shutting_down = true;
                self.stop_in_order();
            }
        }
    }

    /// An order for a backend this thread no longer has (removed, and forgotten once stopped) is
    /// ignored: the id, generation included, names that backend and no other.
    fn order_id(&mut self, id: BackendId, order: Order) {
        match self.by_id.get(&id) {
            Some(&key) => self.order(key, order),
            None => log::debug!("{order:?} for unknown backend {id}; ignored"),
        }
    }

    /// Hands a backend-level order to the instances its policy says it reaches.
    pub(super) fn order(&mut self, backend: usize, order: Order) {
        let Some(targets) = self
            .backends
            .get(backend)
            .map(|b| b.policy.targets(order, b.count()))
        else {
            return;
        };
        for index in targets {
            self.feed(InstanceKey::new(backend, index), order.input());
        }
    }

    pub(super) fn slot_mut(&mut self, key: InstanceKey) -> Option<&mut InstanceSlot> {
        self.backends.get_mut(key.backend)?.slot_mut(key.index)
    }

    /// No one can be told anything any more: make sure no instance outlives the supervisor.
    fn kill_everything(&mut self) {
        for (_, backend) in self.backends.iter_mut() {
            for slot in &mut backend.instances {
                if let Some(mut running) = slot.running.take() {
                    running.instance.kill_and_reap();
                }
            }
        }
    }
}
