//! One client connection: the HTTP/2 handshake, the accept loop that spawns a task per stream, and the
//! connection's limits.
//!
//! * The handshake (preface and SETTINGS) must finish within `header_read_timeout`.
//! * With no open stream for `keepalive_timeout`, the connection is closed with GOAWAY.
//! * A client that resets accepted streams faster than its [`ResetBudget`] allows is cut off with
//!   GOAWAY(ENHANCE_YOUR_CALM) and its streams are cancelled; other connections are untouched.
//! * On shutdown: GOAWAY, then the open streams finish (the worker bounds how long).

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use h2::server::{Builder, Connection};
use h2::Reason;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{timeout, Instant};

use super::budget::ResetBudget;
use super::client_io::ClientIo;
use super::stream::{self, StreamEnd};
use super::worker::Worker;
#[cfg(feature = "tls")]
use super::TlsHandoff;
use crate::metrics::Gauge;

/// How long a closing connection with no stream left may take to finish its GOAWAY exchange: a client
/// that stops reading must not keep the socket forever.
const CLOSE_LINGER: Duration = Duration::from_secs(5);

/// How the client reached the proxy, for every stream of its connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Via {
    /// Over TLS: `X-Forwarded-Proto: https`.
    pub tls: bool,
    /// `Strict-Transport-Security: max-age` to add to responses (TLS only).
    pub hsts_max_age: Option<u64>,
}

/// The socket, the bytes the reactor already read (plaintext), and the TLS session if any.
pub type HandedOver = (std::net::TcpStream, Vec<u8>, Option<Box<super::TlsHandoff>>);

pub async fn serve(
    worker: Rc<Worker>,
    (socket, already_read, tls): HandedOver,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
) {
    // The reactor hands sockets over non-blocking; make sure, as a blocking one would stall every
    // connection on this thread.
    if let Err(e) = socket.set_nonblocking(true) {
        log::warn!("{peer}: cannot adopt the h2 connection: {e}");
        return;
    }
    let socket = match TcpStream::from_std(socket) {
        Ok(socket) => socket,
        Err(e) => {
            log::warn!("{peer}: cannot adopt the h2 connection: {e}");
            return;
        }
    };
    let _ = socket.set_nodelay(true);
    match tls {
        None => {
            let io = ClientIo::new(already_read, socket);
            run(worker, io, peer, Via::default(), shutdown).await;
        }
        #[cfg(feature = "tls")]
        Some(tls) => {
            let TlsHandoff {
                conn,
                raw,
                hsts_max_age,
            } = *tls;
            let io = ClientIo::new(already_read, super::tls_io::TlsIo::new(socket, conn, raw));
            let via = Via {
                tls: true,
                hsts_max_age,
            };
            run(worker, io, peer, via, shutdown).await;
        }
        #[cfg(not(feature = "tls"))]
        Some(tls) => match *tls {},
    }
}

/// The HTTP/2 handshake, then the connection's streams, over any transport.
async fn run<T: AsyncRead + AsyncWrite + Unpin>(
    worker: Rc<Worker>,
    io: ClientIo<T>,
    peer: SocketAddr,
    via: Via,
    mut shutdown: watch::Receiver<bool>,
) {
    let handshake = builder(&worker).handshake::<_, Bytes>(io);
    let mut conn = match timeout(worker.limits.header_read_timeout, handshake).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            log::debug!("{peer}: h2 handshake failed: {e}");
            return;
        }
        Err(_) => {
            log::debug!("{peer}: h2 handshake timed out");
            return;
        }
    };
    log::debug!("{peer}: h2 connection");
    let _open = OpenConnection::count(&worker.metrics.h2_connections);
    accept_loop(&worker, &mut conn, (peer, via), &mut shutdown).await;
    log::debug!("{peer}: h2 connection closed");
}

/// Counts a connection open until dropped (also when its task is cancelled).
struct OpenConnection<'a>(&'a Gauge);

impl<'a> OpenConnection<'a> {
    fn count(gauge: &'a Gauge) -> Self {
        gauge.inc();
        OpenConnection(gauge)
    }
}

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// HTTP/2's bounds for the frame size and the windows (RFC 9113 sections 4.2 and 6.9.2); the h2 crate
/// panics outside them, so settings are clamped.
const FRAME_SIZE_RANGE: (u32, u32) = (16_384, 16_777_215);
const MAX_WINDOW: u32 = (1 << 31) - 1;

fn builder(worker: &Worker) -> Builder {
    let s = &worker.settings;
    let mut builder = Builder::new();
    builder
        .max_concurrent_streams(s.max_concurrent_streams)
        .max_header_list_size(s.max_header_list_size)
        .max_frame_size(
            s.max_frame_size
                .clamp(FRAME_SIZE_RANGE.0, FRAME_SIZE_RANGE.1),
        )
        .initial_window_size(s.initial_stream_window.min(MAX_WINDOW))
        .initial_connection_window_size(s.initial_connection_window.min(MAX_WINDOW))
        .max_send_buffer_size(s.max_send_buffer_size.min(MAX_WINDOW as usize))
        .max_pending_accept_reset_streams(s.max_pending_accept_reset_streams)
        .max_local_error_reset_streams(Some(s.max_local_error_reset_streams));
    builder
}

async fn accept_loop<T: AsyncRead + AsyncWrite + Unpin>(
    worker: &Rc<Worker>,
    conn: &mut Connection<ClientIo<T>, Bytes>,
    (peer, via): (SocketAddr, Via),
    shutdown: &mut watch::Receiver<bool>,
) {
    let mut streams: JoinSet<StreamEnd> = JoinSet::new();
    let mut budget = ResetBudget::new(
        worker.settings.reset_burst,
        worker.settings.resets_per_sec,
        std::time::Instant::now(),
    );
    let keepalive = worker.limits.keepalive_timeout;
    // Every stream's X-Forwarded-For ends with it: formatted once, not per request.
    let client_ip: Rc<str> = peer.ip().to_canonical().to_string().into();
    let mut closing = *shutdown.borrow();
    if closing {
        conn.graceful_shutdown();
    }
    // One timer for both waits, checked lazily: while open, `keepalive` after the last stream ended;
    // while closing, `CLOSE_LINGER` after closing began or the last stream ended.
    let mut last_activity = Instant::now();
    let first_limit = if closing { CLOSE_LINGER } else { keepalive };
    let timer = tokio::time::sleep_until(last_activity + first_limit);
    tokio::pin!(timer);
    loop {
        let was_closing = closing;
        tokio::select! {
            accepted = conn.accept() => match accepted {
                Some(Ok((request, respond))) => {
                    let worker = worker.clone();
                    streams.spawn_local(stream::serve(worker, request, respond, (peer, via), client_ip.clone()));
                }
                Some(Err(e)) => {
                    log_connection_error(peer, &e);
                    break;
                }
                None => break,
            },
            Some(ended) = streams.join_next(), if !streams.is_empty() => {
                last_activity = Instant::now();
                let client_reset = matches!(ended, Ok(StreamEnd::ClientReset));
                if client_reset && !budget.spend(std::time::Instant::now()) {
                    log::warn!("{peer}: too many streams reset by the client; closing the connection");
                    conn.abrupt_shutdown(Reason::ENHANCE_YOUR_CALM);
                    streams.abort_all();
                    closing = true;
                }
            }
            changed = shutdown.changed(), if !closing => {
                // A closed channel means the worker is going away: close as for a shutdown.
                if changed.is_err() || *shutdown.borrow() {
                    conn.graceful_shutdown();
                    closing = true;
                }
            }
            () = &mut timer, if streams.is_empty() => {
                let limit = if closing { CLOSE_LINGER } else { keepalive };
                let due = last_activity + limit;
                if Instant::now() < due {
                    timer.as_mut().reset(due);
                } else if closing {
                    log::debug!("{peer}: h2 connection did not finish closing; dropping it");
                    break;
                } else {
                    log::debug!("{peer}: h2 connection idle; closing");
                    conn.graceful_shutdown();
                    closing = true;
                }
            }
        }
        if closing && !was_closing {
            last_activity = Instant::now();
            timer.as_mut().reset(last_activity + CLOSE_LINGER);
        }
    }
    // The connection is gone: nobody can read what the remaining streams would send.
    streams.abort_all();
}

fn log_connection_error(peer: SocketAddr, e: &h2::Error) {
    if e.is_go_away() && e.reason() == Some(Reason::ENHANCE_YOUR_CALM) {
        log::warn!("{peer}: h2 connection cut off: {e}");
    } else if e.is_io() {
        log::debug!("{peer}: h2 connection I/O error: {e}");
    } else {
        log::debug!("{peer}: h2 connection error: {e}");
    }
}
