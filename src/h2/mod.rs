//! The h2 worker: one thread serving HTTP/2 on a current-thread tokio runtime, with prior knowledge (h2c)
//! or over TLS (ALPN `h2`, feature `tls`: the reactor ran the handshake and hands over the session too).
//!
//! ```text
//!  reactor ──hand_off(socket, bytes read)──▶ h2 worker ──HTTP/1.1, pooled──▶ backends
//!  reactor ──backend_event / reconcile─────▶ h2 worker ──Command::Start────▶ supervisor
//! ```
//! The reactor recognises the preface on a new connection and hands the socket over with the bytes it
//! already read. Each stream is routed by `:authority` (or `Host`) like an HTTP/1 request and forwarded as
//! HTTP/1.1 over the worker's own keep-alive pool, bodies streamed both ways under HTTP/2 flow control.
//! The worker keeps its own view of each backend's lifecycle from the events the reactor forwards, holds
//! streams for backends that are starting and asks the supervisor for starts directly. In-flight streams
//! are counted in the shared [`Activity`](crate::msg::Activity), so idle stop and drain see them.
//!
//! * `worker`: the thread's state and its control loop (hand-offs, events, reload, shutdown).
//! * `conn`: one client connection: handshake, accept loop, abuse limits, idle close, GOAWAY.
//! * `stream`: one stream: inspect, route, hold, answer errors.
//! * `forward`: one exchange with a backend: `upload` sends the request up while `download` brings the
//!   response down, both streaming.
//! * `request` / `response`: HTTP/2 ⇄ HTTP/1.1 heads and trailers; `errors`: error answers.
//! * `routes`: the adapter over the upstream core (`crate::upstream`); `pool`: its sockets in the shared
//!   keep-alive pool; `backend_io`: those sockets, TCP or unix-domain;
//!   `budget`: resets.
//! * `client_io`: replays the bytes the reactor already read; closes lingering so GOAWAY arrives.
//! * `tls_io` (feature `tls`): the handed-over rustls session over the tokio socket.

mod access;
mod backend_io;
mod budget;
mod client_io;
mod conn;
mod download;
mod errors;
mod forward;
mod pool;
mod request;
mod response;
pub(crate) mod routes;
mod stream;
mod tally;
#[cfg(feature = "tls")]
mod tls_io;
mod upload;
mod worker;

#[cfg(feature = "tls")]
pub use tls_io::TlsHandoff;
/// Without the `tls` feature no connection comes over TLS: a type with no values keeps one signature.
#[cfg(not(feature = "tls"))]
pub enum TlsHandoff {}

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::mpsc;

use crate::access_log::AccessLog;
use crate::config::Limits;
use crate::metrics::Metrics;
use crate::msg::{BackendEvent, Clock, Command, Mailbox, ReactorMsg};
use crate::sessions::route::SessionUpdate;
pub use crate::upstream::PoolLimits;
use crate::upstream::{InstanceId, Reconcile};

/// The HTTP/2 protections and window sizes, all set explicitly rather than left to the h2 crate's
/// defaults, which may change between versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H2Settings {
    /// Streams a client may have open at once on one connection.
    pub max_concurrent_streams: u32,
    /// Largest decoded header list a client may send (HPACK can expand a small frame a lot).
    pub max_header_list_size: u32,
    /// Largest frame accepted: bigger frames mean fewer of them for large uploads.
    pub max_frame_size: u32,
    /// What each stream may send before we read it: 1 MiB keeps a fast uploader busy on a fast link.
    pub initial_stream_window: u32,
    /// What the whole connection may send before we read: several full streams at once.
    pub initial_connection_window: u32,
    /// Response bytes queued per stream before we stop reading that stream's backend.
    pub max_send_buffer_size: usize,
    /// Streams reset by the client before we accepted them; more is cut off with ENHANCE_YOUR_CALM.
    pub max_pending_accept_reset_streams: usize,
    /// Streams we had to reset for the client's protocol errors; more is cut off with ENHANCE_YOUR_CALM.
    pub max_local_error_reset_streams: usize,
    /// Accepted streams the client may reset at once (see the `budget` module) ...
    pub reset_burst: u32,
    /// ... and per second after that.
    pub resets_per_sec: u32,
}

impl Default for H2Settings {
    fn default() -> Self {
        H2Settings {
            max_concurrent_streams: 250,
            max_header_list_size: 64 * 1024,
            max_frame_size: 64 * 1024,
            initial_stream_window: 1024 * 1024,
            initial_connection_window: 4 * 1024 * 1024,
            max_send_buffer_size: 256 * 1024,
            max_pending_accept_reset_streams: 50,
            max_local_error_reset_streams: 256,
            reset_burst: 250,
            resets_per_sec: 25,
        }
    }
}

/// What the reactor tells the worker.
enum Control {
    HandOff {
        stream: TcpStream,
        already_read: Vec<u8>,
        peer: SocketAddr,
        tls: Option<Box<TlsHandoff>>,
    },
    Backend(BackendEvent),
    Reconcile(Reconcile),
    /// A change to the session routes, numbered: the worker acknowledges `seq` once applied.
    Sessions {
        seq: u64,
        update: SessionUpdate,
    },
    /// Where the worker tells the reactor of places freed in full pools (sent once, at the start).
    Reactor(Mailbox<ReactorMsg>),
    /// A place on this instance of a full pool was freed by the reactor's traffic.
    SlotFreed(InstanceId),
    Shutdown,
}

/// The reactor's end of the worker. Every call returns at once: the channel is unbounded because the
/// reactor must never block, and what flows through it is bounded elsewhere (hand-offs by the connection
/// limit, events by the number of backends).
pub struct H2Handle {
    control: mpsc::UnboundedSender<Control>,
    thread: JoinHandle<()>,
    shutdown_requested: std::sync::atomic::AtomicBool,
}

impl H2Handle {
    /// Hands over a client connection whose first bytes (`already_read`: the full or partial HTTP/2
    /// preface and maybe more) were HTTP/2. The socket is a std TcpStream, already deregistered from the
    /// reactor's poll and non-blocking. Over TLS (`tls`), `already_read` is plaintext and the session
    /// continues in the worker.
    pub fn hand_off(
        &self,
        stream: TcpStream,
        already_read: Vec<u8>,
        peer: SocketAddr,
        tls: Option<Box<TlsHandoff>>,
    ) {
        self.send(Control::HandOff {
            stream,
            already_read,
            peer,
            tls,
        });
    }

    /// A backend lifecycle report, forwarded by the reactor as it arrives from the supervisor.
    pub fn backend_event(&self, event: BackendEvent) {
        self.send(Control::Backend(event));
    }

    /// Gives the worker the reactor's mailbox, for places it frees in full pools the reactor waits on.
    pub fn connect_reactor(&self, reactor: Mailbox<ReactorMsg>) {
        self.send(Control::Reactor(reactor));
    }

    /// A request of the reactor's on `instance` (of a full pool) ended while the worker held requests
    /// for that pool.
    pub fn slot_freed(&self, instance: InstanceId) {
        self.send(Control::SlotFreed(instance));
    }

    /// A config reload, as the reactor computed it and applies it itself.
    pub fn reconcile(&self, reconcile: Reconcile) {
        self.send(Control::Reconcile(reconcile));
    }

    /// A change to the session routes; the worker answers `ReactorMsg::H2Ack(seq)` once it routes by it.
    pub fn sessions(&self, seq: u64, update: SessionUpdate) {
        self.send(Control::Sessions { seq, update });
    }

    /// Graceful shutdown: GOAWAY on every connection, let open streams finish (bounded), then end.
    pub fn shutdown(&self) {
        self.send(Control::Shutdown);
    }

    /// Waits for the thread to end (after [`shutdown`](Self::shutdown); dropping the handle also asks).
    pub fn join(self) {
        drop(self.control);
        if self.thread.join().is_err() {
            log::error!("the h2 worker thread panicked");
        }
    }

    fn send(&self, control: Control) {
        if matches!(control, Control::Shutdown) {
            self.shutdown_requested
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        // After a shutdown the worker ends on its own once its connections are done; reports that still
        // arrive for it are expected to find it gone.
        if self.control.send(control).is_err()
            && !self
                .shutdown_requested
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            log::error!("the h2 worker thread is gone");
        }
    }
}

/// Starts the worker thread with the default [`H2Settings`]. `supervisor` is where `Command::Start(id)`
/// goes when a stream needs a stopped backend; each stream's line goes to `access_log`.
pub fn spawn(
    backends: Reconcile,
    supervisor: Mailbox<Command>,
    clock: Clock,
    limits: Limits,
    pool: PoolLimits,
    access_log: Arc<AccessLog>,
    metrics: Arc<Metrics>,
) -> io::Result<H2Handle> {
    let settings = H2Settings::default();
    start(
        backends,
        supervisor,
        clock,
        (limits, pool, settings),
        access_log,
        metrics,
    )
}

/// [`spawn`] with explicit HTTP/2 settings and no access log.
pub fn spawn_with(
    backends: Reconcile,
    supervisor: Mailbox<Command>,
    clock: Clock,
    limits: Limits,
    pool: PoolLimits,
    settings: H2Settings,
    metrics: Arc<Metrics>,
) -> io::Result<H2Handle> {
    let limits = (limits, pool, settings);
    start(
        backends,
        supervisor,
        clock,
        limits,
        AccessLog::off(),
        metrics,
    )
}

fn start(
    backends: Reconcile,
    supervisor: Mailbox<Command>,
    clock: Clock,
    (limits, pool, settings): (Limits, PoolLimits, H2Settings),
    access_log: Arc<AccessLog>,
    metrics: Arc<Metrics>,
) -> io::Result<H2Handle> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let (control, inbox) = mpsc::unbounded_channel();
    let thread = std::thread::Builder::new()
        .name("h2".into())
        .spawn(move || {
            let limits = (limits, pool, settings);
            let worker =
                worker::Worker::new(&backends, supervisor, clock, limits, access_log, metrics);
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, worker::run(worker, inbox));
        })?;
    Ok(H2Handle {
        control,
        thread,
        shutdown_requested: std::sync::atomic::AtomicBool::new(false),
    })
}
