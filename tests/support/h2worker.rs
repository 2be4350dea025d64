//! The h2 worker driven directly, before (or besides) the reactor: the harness plays the reactor (accepts,
//! reads the first bytes, hands the socket over, forwards lifecycle events) and the supervisor (receives
//! `Start` commands).

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::{mpsc, Arc, Weak};
use std::time::{Duration, Instant};

use spawngate::h2::{self as h2_worker, H2Handle, H2Settings, PoolLimits};
use spawngate::msg::{
    Activity, BackendEntry, BackendEvent, Command, Host, InstanceRef, LifecycleEvent, Mailbox,
};
use spawngate::upstream::{BackendId, Change, Reconcile, UpstreamAddr};

use super::{echo_backend, EchoServer, ECHO_HOST};

/// Plays the reactor and the supervisor around one h2 worker.
pub struct H2Worker {
    handle: Option<Arc<H2Handle>>,
    pub addr: SocketAddr,
    commands: mpsc::Receiver<Command>,
    /// The backends as the worker starts with them, under the ids the reactor gave them.
    entries: Vec<(BackendId, BackendEntry)>,
    _poll: mio::Poll,
}

impl H2Worker {
    /// `backends` is the `[backends]` part of a config (the `[server]` part is built in).
    pub fn start(backends: &str) -> H2Worker {
        Self::start_with(backends, "", H2Settings::default())
    }

    /// `server_keys` are extra `[server]` lines (limits such as `header_read_timeout_secs = 1`).
    pub fn start_with(backends: &str, server_keys: &str, settings: H2Settings) -> H2Worker {
        let text = format!("[server]\nport = 0\nadmin_port = 0\n{server_keys}\n\n{backends}");
        let config = spawngate::config::parse(Path::new("h2-test.toml"), &text)
            .unwrap_or_else(|e| panic!("bad test config: {e:?}"));
        let backends = Reconcile::initial(&config.backends, &config.hosts);
        let entries = backends
            .changes
            .iter()
            .filter_map(|change| match change {
                Change::Add { id, entry } => Some((*id, entry.clone())),
                _ => None,
            })
            .collect();
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let (tx, commands) = mpsc::channel();
        let handle = h2_worker::spawn_with(
            backends,
            Mailbox::new(tx, waker),
            spawngate::msg::Clock::new(),
            config.server.limits.clone(),
            PoolLimits::from(&config.server),
            settings,
            Arc::default(),
        )
        .unwrap();
        let handle = Arc::new(handle);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let weak = Arc::downgrade(&handle);
        std::thread::spawn(move || accept_and_hand_off(listener, weak));
        H2Worker {
            handle: Some(handle),
            addr,
            commands,
            entries,
            _poll: poll,
        }
    }

    pub fn handle(&self) -> &H2Handle {
        self.handle.as_ref().unwrap()
    }

    fn entry(&self, host: &str) -> Option<&(BackendId, BackendEntry)> {
        self.entries.iter().find(|(_, e)| e.config.hostname == host)
    }

    /// The id the backend for `host` has.
    pub fn id(&self, host: &str) -> BackendId {
        self.entry(host).map(|(id, _)| *id).unwrap()
    }

    pub fn event(&self, host: &str, event: LifecycleEvent) {
        // Reports name the backend, the instance and its address, as the supervisor's do; an unknown
        // host gets a placeholder id (no generation 0 is ever given) and address, since the worker
        // ignores reports for backends it does not know.
        let (backend, addr) = self.entry(host).map_or(
            (
                BackendId::new(u32::MAX, 0),
                UpstreamAddr::Tcp(([127, 0, 0, 1], 9).into()),
            ),
            |(id, e)| (*id, UpstreamAddr::of(&e.config)),
        );
        self.handle().backend_event(BackendEvent {
            backend,
            host: Host::from(host),
            instance: InstanceRef { index: 0, addr },
            event,
        });
    }

    pub fn activity(&self, host: &str) -> Arc<Activity> {
        self.entry(host)
            .map(|(_, e)| e.activity[0].clone())
            .unwrap()
    }

    /// The next command sent to the supervisor, within `wait`.
    pub fn next_command(&self, wait: Duration) -> Option<Command> {
        self.commands.recv_timeout(wait).ok()
    }

    /// Shuts the worker down and waits for its thread, at most `limit`.
    pub fn shutdown_and_join(&mut self, limit: Duration) {
        let handle = self.handle.take().unwrap();
        handle.shutdown();
        let started = Instant::now();
        let mut handle = handle;
        let owned = loop {
            match Arc::try_unwrap(handle) {
                Ok(owned) => break owned,
                Err(shared) => {
                    assert!(started.elapsed() < limit, "the acceptor kept the handle");
                    handle = shared;
                    std::thread::yield_now();
                }
            }
        };
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::spawn(move || {
            owned.join();
            let _ = done_tx.send(());
        });
        assert!(
            done_rx.recv_timeout(limit).is_ok(),
            "the h2 worker did not end within {limit:?} of shutdown"
        );
    }
}

impl Drop for H2Worker {
    fn drop(&mut self) {
        if self.handle.is_some() && !std::thread::panicking() {
            self.shutdown_and_join(Duration::from_secs(40));
        }
    }
}

/// Accepts connections, reads their first bytes as the reactor would (whatever one read returns), and
/// hands them over.
fn accept_and_hand_off(listener: TcpListener, handle: Weak<H2Handle>) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let Some(handle) = handle.upgrade() else {
            return;
        };
        let mut first = vec![0u8; 16];
        let n = stream.read(&mut first).unwrap_or(0);
        first.truncate(n);
        let peer = stream.peer_addr().unwrap();
        stream.set_nonblocking(true).unwrap();
        handle.hand_off(stream, first, peer, None);
    }
}

pub fn h2_echo_config(host: &str, port: u16, keys: &str) -> String {
    echo_backend(host, port, keys, &[])
}

/// A worker with one running echo backend for `ECHO_HOST`, already reported ready.
pub fn warm_h2_worker(keys: &str) -> (H2Worker, EchoServer) {
    let echo = EchoServer::start(&[]);
    let worker = H2Worker::start(&h2_echo_config(ECHO_HOST, echo.port, keys));
    worker.event(ECHO_HOST, LifecycleEvent::Ready);
    (worker, echo)
}
