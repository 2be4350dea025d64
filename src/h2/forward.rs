//! One exchange with a backend over HTTP/1.1: the request head and body go up while the response comes
//! down, at the same time (a backend may answer, or echo, before it has read the whole body).
//!
//! Flow control is the backpressure both ways (see `upload` and `download`); memory per stream is one
//! read buffer.
//!
//! A pooled connection that turns out dead before any response byte is replaced by a new one once, for
//! requests without a body (`upstream::may_retry`, the rule HTTP/1 forwarding follows too).

use std::cell::Cell;
use std::time::Duration;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::RecvStream;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::timeout;

use super::backend_io::BackendConn;
use super::download::{download, Download};
use super::errors::Failure;
use super::pool;
use super::request::BodyPlan;
use super::routes::Target;
use super::tally::Tally;
use super::upload::{upload, UploadError};
use super::worker::Worker;
use crate::error::{ErrorCode, ProxyError};
use crate::http1::rewrite::ResponseContext;
use crate::upstream;

/// What a stream sends to its backend.
pub struct Exchange<'a> {
    pub target: &'a Target,
    /// The HTTP/1.1 request head, already written.
    pub head: &'a [u8],
    pub body: BodyPlan,
    pub is_head: bool,
    pub request_id: &'a [u8],
    pub max_body: Option<u64>,
    /// Longest pause allowed inside the request body.
    pub body_stall_limit: Duration,
    /// The route's response edits and what they read, if it has any.
    pub editing: Option<&'a ResponseContext>,
    /// How long the stream was held while its backend started, to say in `Server-Timing` (`None` when
    /// it was not, or the backend's `server_timing` is off).
    pub cold_start: Option<Duration>,
    /// `Strict-Transport-Security: max-age` for the response (connections over TLS).
    pub hsts: Option<u64>,
    /// Where the stream's status, bytes and response-head time are noted.
    pub tally: &'a Tally,
}

enum Attempt {
    /// `reusable`: the connection may go back to the pool.
    Done {
        reusable: bool,
    },
    /// The backend connection failed before any response byte arrived.
    DeadBeforeResponse(String),
    Failed(Failure),
}

pub async fn exchange(
    worker: &Worker,
    ex: Exchange<'_>,
    mut recv: RecvStream,
    respond: &mut SendResponse<Bytes>,
) -> Result<(), Failure> {
    let mut retried = false;
    loop {
        let (mut upstream, reused) = connect(worker, ex.target).await?;
        match attempt(&mut upstream, &ex, &mut recv, respond).await {
            Attempt::Done { reusable } => {
                if reusable {
                    let now = std::time::Instant::now();
                    // What the pool does not keep is dropped here, which closes it.
                    let put = worker
                        .pool
                        .borrow_mut()
                        .put(ex.target.instance, upstream, now);
                    if put.sweep_by.is_some() {
                        worker.sweep_sooner.notify_one();
                    }
                }
                return Ok(());
            }
            Attempt::DeadBeforeResponse(why)
                if upstream::may_retry(reused, ex.body.has_body(), false, retried) =>
            {
                log::debug!(
                    "{}: pooled connection was dead ({why}); retrying on a new one",
                    ex.target.host
                );
                retried = true;
            }
            Attempt::DeadBeforeResponse(why) => {
                return Err(Failure::Answer(ProxyError::new(
                    ErrorCode::ConnectionFailed,
                    why,
                )))
            }
            Attempt::Failed(failure) => return Err(failure),
        }
    }
}

/// A pooled connection, or a new one. The second value says whether it was pooled.
async fn connect(worker: &Worker, target: &Target) -> Result<(BackendConn, bool), Failure> {
    let now = std::time::Instant::now();
    let pooled = pool::take(&mut worker.pool.borrow_mut(), target.instance, now);
    if let Some(stream) = pooled {
        return Ok((stream, true));
    }
    match timeout(target.request_timeout, BackendConn::connect(&target.addr)).await {
        Ok(Ok(stream)) => Ok((stream, false)),
        Ok(Err(e)) => Err(Failure::Answer(ProxyError::connect_failed(&e))),
        Err(_) => Err(Failure::Answer(ProxyError::connect_timed_out())),
    }
}

/// One exchange on `upstream`, split into its borrowed halves (no allocation, no lock) of whichever
/// kind it is.
async fn attempt(
    upstream: &mut BackendConn,
    ex: &Exchange<'_>,
    recv: &mut RecvStream,
    respond: &mut SendResponse<Bytes>,
) -> Attempt {
    match upstream {
        BackendConn::Tcp(stream) => {
            let (reader, writer) = stream.split();
            relay(reader, writer, ex, recv, respond).await
        }
        BackendConn::Unix(stream) => {
            let (reader, writer) = stream.split();
            relay(reader, writer, ex, recv, respond).await
        }
        // One rustls session serves both directions: tokio's split shares it behind a lock, uncontended
        // on this one thread.
        #[cfg(feature = "tls")]
        BackendConn::Tls(tls) => {
            let (reader, writer) = tokio::io::split(&mut **tls);
            relay(reader, writer, ex, recv, respond).await
        }
    }
}

/// Sends the request up while the response comes down.
async fn relay<R, W>(
    mut reader: R,
    mut writer: W,
    ex: &Exchange<'_>,
    recv: &mut RecvStream,
    respond: &mut SendResponse<Bytes>,
) -> Attempt
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let head_sent = Cell::new(false);
    let upload = upload(
        &mut writer,
        ex.head,
        ex.body,
        recv,
        ex.max_body,
        ex.body_stall_limit,
        ex.tally,
    );
    let download = download(&mut reader, ex, respond, &head_sent);
    tokio::pin!(upload, download);
    let mut uploaded: Option<bool> = None;
    loop {
        tokio::select! {
            result = &mut upload, if uploaded.is_none() => match result {
                Ok(()) => uploaded = Some(true),
                Err(UploadError::Client) => return Attempt::Failed(Failure::ClientGone),
                Err(UploadError::TooLarge(max)) if !head_sent.get() => {
                    return Attempt::Failed(Failure::Answer(ProxyError::new(
                        ErrorCode::PayloadTooLarge,
                        format!("request body over {max} bytes"),
                    )))
                }
                Err(UploadError::TooLarge(_)) => {
                    return Attempt::Failed(Failure::ResetForClient("request body over the limit"))
                }
                Err(UploadError::Stalled) if !head_sent.get() => {
                    return Attempt::Failed(Failure::Answer(ProxyError::new(
                        ErrorCode::ClientTimeout,
                        "the request body stalled",
                    )))
                }
                Err(UploadError::Stalled) => {
                    return Attempt::Failed(Failure::ResetForClient("the request body stalled"))
                }
                // The backend may have answered before it stopped reading: keep reading its response.
                Err(UploadError::Backend(e)) => {
                    log::debug!("{}: writing the request failed: {e}", ex.target.host);
                    uploaded = Some(false);
                }
            },
            result = &mut download => {
                return match result {
                    Ok(keep_alive) => Attempt::Done {
                        reusable: keep_alive && uploaded == Some(true),
                    },
                    Err(Download::DeadBeforeResponse(why)) => Attempt::DeadBeforeResponse(why),
                    Err(Download::Failed(failure)) => Attempt::Failed(failure),
                };
            }
        }
    }
}
