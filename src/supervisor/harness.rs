//! The supervisor thread driven through its public API by a harness that plays the reactor: it keeps a
//! table of backends as the reactor does ([`Upstreams`]), plans each reload from it, hears every report,
//! and names backends by the ids that table gave them.

use std::cell::RefCell;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use mio::{Poll, Waker};

use super::{spawn, SupervisorHandle};
use crate::config::BackendConfig;
use crate::msg::{BackendEvent, Clock, Command, LifecycleEvent, Mailbox, ReactorMsg};
use crate::upstream::{BackendId, Reconcile, Upstreams, Waiter};

/// Longest wait for any one event; generous for a loaded machine, far below the test's own timeouts.
pub const EVENT_WAIT: Duration = Duration::from_secs(5);

/// The harness holds no requests.
struct NoWaiter;

impl Waiter for NoWaiter {}

pub struct Harness {
    handle: Option<SupervisorHandle>,
    pub(super) events: Option<mpsc::Receiver<ReactorMsg>>,
    /// The backends as the reactor would know them from the reloads and reports so far.
    table: RefCell<Upstreams<NoWaiter, ()>>,
    /// The waker in the reactor mailbox needs its poll alive.
    _poll: Poll,
}

impl Harness {
    /// A supervisor started with `configs`, under the ids the reactor's table gives them.
    pub fn new(configs: Vec<BackendConfig>) -> Harness {
        let configs: Vec<Arc<BackendConfig>> = configs.into_iter().map(Arc::new).collect();
        let initial = Reconcile::initial(&configs, &[]);
        let mut table = Upstreams::new(0, crate::msg::Thread::Reactor, crate::msg::Clock::new());
        table.apply(&initial);
        let poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let (tx, rx) = mpsc::channel();
        let handle = spawn(
            &initial,
            Mailbox::new(tx, waker),
            Clock::new(),
            "http://127.0.0.1:9999/".to_string(),
        )
        .unwrap();
        Harness {
            handle: Some(handle),
            events: Some(rx),
            table: RefCell::new(table),
            _poll: poll,
        }
    }

    /// The id the reactor's table has for `host` now.
    pub fn id(&self, host: &str) -> BackendId {
        let id = self.table.borrow().id_of(host);
        id.unwrap_or_else(|| panic!("no backend {host} in the table"))
    }

    pub fn send(&self, command: Command) {
        assert!(self.handle.as_ref().unwrap().mailbox.send(command));
    }

    pub fn start(&self, host: &str) {
        self.send(Command::Start(self.id(host)));
    }

    /// The backend called its ready URL (the reactor resolves the hostname to the id).
    pub fn ready(&self, host: &str) {
        self.send(Command::ReadyCallback(self.id(host), 0));
    }

    /// A reload to `configs`, planned from the table as the reactor plans it and sent; returned for a
    /// look at what was planned.
    pub fn reload(&self, configs: Vec<BackendConfig>) -> Reconcile {
        let configs: Vec<Arc<BackendConfig>> = configs.into_iter().map(Arc::new).collect();
        let reconcile = self.table.borrow().plan(&configs, &[]);
        self.table.borrow_mut().apply(&reconcile);
        self.send(Command::Reload(reconcile.clone()));
        reconcile
    }

    /// The next message, which the table hears as the reactor would.
    pub fn next(&self) -> ReactorMsg {
        let msg = self.next_unheard();
        if let ReactorMsg::Backend(event) = &msg {
            self.table
                .borrow_mut()
                .on_event(event.clone(), Instant::now());
        }
        msg
    }

    /// The next message, kept from the table: a report still on its way to the reactor.
    pub fn next_unheard(&self) -> ReactorMsg {
        let events = self.events.as_ref().unwrap();
        events
            .recv_timeout(EVENT_WAIT)
            .expect("the supervisor should have reported something")
    }

    /// The next message is `event` about `host`, under the id the table has for it.
    pub fn expect(&self, host: &str, event: LifecycleEvent) {
        let id = self.table.borrow().id_of(host);
        match self.next() {
            ReactorMsg::Backend(BackendEvent {
                backend,
                host: h,
                event: e,
                ..
            }) => {
                assert_eq!((&*h, &e), (host, &event));
                assert_eq!(Some(backend), id, "{host} reported under another id");
            }
            other => panic!("expected {host} {event:?}, got {other:?}"),
        }
    }

    pub fn quiet_for(&self, time: Duration) {
        if let Ok(msg) = self.events.as_ref().unwrap().recv_timeout(time) {
            panic!("expected silence, got {msg:?}");
        }
    }

    pub fn join(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.thread.join().unwrap();
        }
    }
}

impl Drop for Harness {
    /// Whatever a test left running is killed: with the reactor's end gone, the supervisor's next report
    /// fails and it kills every backend before exiting.
    fn drop(&mut self) {
        self.events = None;
        if let Some(handle) = self.handle.take() {
            handle.mailbox.send(Command::Shutdown);
            let _ = handle.thread.join();
        }
    }
}

/// `config` serving `host`.
pub fn named(host: &str, config: BackendConfig) -> BackendConfig {
    BackendConfig {
        hostname: host.to_string(),
        ..config
    }
}
