//! One exchange with a backend over HTTP/1.1: the request head and body go up while the response comes
//! down, at the same time (a backend may answer, or echo, before it has read the whole body).
//!
//! Flow control is the backpressure both ways: a request body chunk's HTTP/2 window is released only
//! once the backend took it, and a response chunk is read from the backend only once the client's window
//! (and our send buffer) has room for the previous one. Memory per stream is one read buffer.
//!
//! A pooled connection that turns out dead before any response byte is replaced by a new one once, for
//! requests without a body (the same rule as HTTP/1 forwarding).

use std::cell::Cell;
use std::future::poll_fn;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
use tokio::io::AsyncReadExt;
use tokio::net::tcp::ReadHalf;
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

use super::errors::Failure;
use super::request::BodyPlan;
use super::response::{response_head, TrailerTail};
use super::routes::Target;
use super::upload::{upload, UploadError};
use super::worker::Worker;
use crate::error::{ErrorCode, ProxyError};
use crate::http1::body::BodyReader;
use crate::http1::chunked::ChunkedDecoder;
use crate::http1::response::parse_response;
use crate::http1::Framing;

/// The read buffer a response starts with: room for a typical head and small body in one read, and a
/// cheap allocation for the many small responses.
const FIRST_READ: usize = 8 * 1024;
/// How much the read buffer grows by for larger bodies: they then move in few reads.
const READ_CHUNK: usize = 32 * 1024;
/// Below this much free room the read buffer is grown (by [`READ_CHUNK`]) before reading.
const MIN_READ_ROOM: usize = 4 * 1024;
/// Interim (1xx) responses passed on per exchange; a backend sending more is broken.
const MAX_INTERIM_RESPONSES: usize = 8;

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
                    let host = ex.target.host.clone();
                    let now = std::time::Instant::now();
                    if worker.pool.borrow_mut().put(host, upstream, now) {
                        worker.pool_filled.notify_one();
                    }
                }
                return Ok(());
            }
            Attempt::DeadBeforeResponse(why) if reused && !retried && !ex.body.has_body() => {
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
async fn connect(worker: &Worker, target: &Target) -> Result<(TcpStream, bool), Failure> {
    let pooled = worker
        .pool
        .borrow_mut()
        .take(&target.host, std::time::Instant::now());
    if let Some(stream) = pooled {
        return Ok((stream, true));
    }
    match timeout(target.request_timeout, TcpStream::connect(target.addr)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok((stream, false))
        }
        Ok(Err(e)) => Err(Failure::Answer(ProxyError::new(
            ErrorCode::ConnectionFailed,
            format!("cannot connect to the backend: {e}"),
        ))),
        Err(_) => Err(Failure::Answer(ProxyError::new(
            ErrorCode::RequestTimeout,
            "the backend did not accept a connection in time",
        ))),
    }
}

async fn attempt(
    upstream: &mut TcpStream,
    ex: &Exchange<'_>,
    recv: &mut RecvStream,
    respond: &mut SendResponse<Bytes>,
) -> Attempt {
    let (mut reader, mut writer) = upstream.split();
    let head_sent = Cell::new(false);
    let upload = upload(
        &mut writer,
        ex.head,
        ex.body,
        recv,
        ex.max_body,
        ex.body_stall_limit,
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

enum Download {
    DeadBeforeResponse(String),
    Failed(Failure),
}

fn answer(code: ErrorCode, message: impl Into<String>) -> Download {
    Download::Failed(Failure::Answer(ProxyError::new(code, message)))
}

fn reserve_room(buf: &mut BytesMut) {
    if buf.capacity() - buf.len() < MIN_READ_ROOM {
        buf.reserve(READ_CHUNK);
    }
}

/// Reads the response and passes it on. `Ok(keep_alive)` once the whole response was sent, where
/// `keep_alive` says the backend connection is positioned at its next response.
async fn download(
    reader: &mut ReadHalf<'_>,
    ex: &Exchange<'_>,
    respond: &mut SendResponse<Bytes>,
    head_sent: &Cell<bool>,
) -> Result<bool, Download> {
    let mut buf = BytesMut::with_capacity(FIRST_READ);
    let deadline = tokio::time::sleep_until(Instant::now() + ex.target.request_timeout);
    tokio::pin!(deadline);
    let mut interim = 0usize;
    let head = loop {
        match parse_response(&buf, ex.is_head) {
            Ok(Some(head)) if head.status == 101 => {
                return Err(answer(
                    ErrorCode::BadGateway,
                    "the backend switched protocols on an HTTP/2 stream",
                ))
            }
            Ok(Some(head)) if head.status < 200 => {
                interim += 1;
                if interim > MAX_INTERIM_RESPONSES {
                    return Err(answer(ErrorCode::BadGateway, "too many interim responses"));
                }
                if let Some(response) = response_head(&buf, &head, ex.request_id) {
                    if let Err(e) = respond.send_informational(response) {
                        log::debug!("could not pass on an interim response: {e}");
                    }
                }
                buf.advance(head.len);
                continue;
            }
            Ok(Some(head)) => break head,
            Ok(None) => {}
            Err(e) => return Err(answer(ErrorCode::BadGateway, e.to_string())),
        }
        reserve_room(&mut buf);
        let read = tokio::select! {
            read = reader.read_buf(&mut buf) => read,
            () = &mut deadline => {
                return Err(answer(
                    ErrorCode::RequestTimeout,
                    format!("the backend did not answer within {:?}", ex.target.request_timeout),
                ))
            }
            _ = poll_fn(|cx| respond.poll_reset(cx)) => return Err(Download::Failed(Failure::ClientGone)),
        };
        let nothing_yet = buf.is_empty() && interim == 0;
        match read {
            Ok(0) if nothing_yet => {
                return Err(Download::DeadBeforeResponse(
                    "the backend closed the connection without answering".into(),
                ))
            }
            Ok(0) => {
                return Err(answer(
                    ErrorCode::BadGateway,
                    "the backend closed the connection in the middle of a response head",
                ))
            }
            Ok(_) => {}
            Err(e) if nothing_yet => {
                return Err(Download::DeadBeforeResponse(format!(
                    "reading from the backend failed: {e}"
                )))
            }
            Err(e) => {
                return Err(answer(
                    ErrorCode::BadGateway,
                    format!("reading from the backend failed: {e}"),
                ))
            }
        }
    };

    let Some(response) = response_head(&buf, &head, ex.request_id) else {
        return Err(answer(ErrorCode::BadGateway, "unusable response status"));
    };
    buf.advance(head.len);
    let bodiless = matches!(head.framing, Framing::None | Framing::Length(0));
    let mut send = respond
        .send_response(response, bodiless)
        .map_err(|_| Download::Failed(Failure::ClientGone))?;
    head_sent.set(true);
    if bodiless {
        return Ok(head.keep_alive && buf.is_empty());
    }
    let body = match head.framing {
        Framing::Chunked => Body::Chunked(ChunkedDecoder::new(), TrailerTail::default()),
        other => Body::Plain(BodyReader::new(other)),
    };
    let complete = relay_body(reader, &mut send, buf, body).await?;
    Ok(head.keep_alive && complete)
}

enum Body {
    Plain(BodyReader),
    Chunked(ChunkedDecoder, TrailerTail),
}

/// Streams the response body that follows the head (`buf` holds what was read past the head). Returns
/// whether the connection ended exactly at the body's end (nothing extra read after it).
async fn relay_body(
    reader: &mut ReadHalf<'_>,
    send: &mut SendStream<Bytes>,
    mut buf: BytesMut,
    mut body: Body,
) -> Result<bool, Download> {
    let cut = |why: &'static str| Download::Failed(Failure::Reset(why));
    loop {
        while !buf.is_empty() {
            match &mut body {
                Body::Plain(framing) => {
                    let n = framing.advance(&buf).map_err(|e| cut(e.reason))?;
                    if n == 0 {
                        break;
                    }
                    let data = buf.split_to(n).freeze();
                    let last = framing.is_done();
                    send_all(send, data, last).await?;
                    if last {
                        return Ok(buf.is_empty());
                    }
                }
                Body::Chunked(decoder, tail) => {
                    let decoded = decoder.decode(&buf).map_err(|e| cut(e.reason))?;
                    let consumed = buf.split_to(decoded.consumed).freeze();
                    match decoded.data {
                        Some(range) => {
                            tail.restart();
                            tail.push(&consumed[range.end..]);
                            send_all(send, consumed.slice(range), false).await?;
                        }
                        None => tail.push(&consumed),
                    }
                    if decoder.is_done() {
                        let trailers = tail.trailers();
                        let sent = if trailers.is_empty() {
                            send.send_data(Bytes::new(), true)
                        } else {
                            send.send_trailers(trailers)
                        };
                        sent.map_err(|_| Download::Failed(Failure::ClientGone))?;
                        return Ok(buf.is_empty());
                    }
                    if decoded.consumed == 0 {
                        break;
                    }
                }
            }
        }
        reserve_room(&mut buf);
        let read = tokio::select! {
            read = reader.read_buf(&mut buf) => read,
            _ = poll_fn(|cx| send.poll_reset(cx)) => return Err(Download::Failed(Failure::ClientGone)),
        };
        match read {
            Ok(0) => {
                let ends_here = match &mut body {
                    Body::Plain(framing) => framing.at_eof().is_ok(),
                    Body::Chunked(..) => false,
                };
                if !ends_here {
                    return Err(cut(
                        "the backend closed the connection in the middle of a response",
                    ));
                }
                send.send_data(Bytes::new(), true)
                    .map_err(|_| Download::Failed(Failure::ClientGone))?;
                return Ok(false);
            }
            Ok(_) => {}
            Err(_) => return Err(cut("reading the response body from the backend failed")),
        }
    }
}

/// Sends `data` as the client's window and our send buffer allow; `end` closes the stream with it.
async fn send_all(
    send: &mut SendStream<Bytes>,
    mut data: Bytes,
    end: bool,
) -> Result<(), Download> {
    let gone = |_| Download::Failed(Failure::ClientGone);
    if data.is_empty() {
        if end {
            send.send_data(data, true).map_err(gone)?;
        }
        return Ok(());
    }
    while !data.is_empty() {
        send.reserve_capacity(data.len());
        let mut available = send.capacity();
        while available == 0 {
            match poll_fn(|cx| send.poll_capacity(cx)).await {
                Some(Ok(n)) => available = n,
                Some(Err(_)) | None => return Err(Download::Failed(Failure::ClientGone)),
            }
        }
        let chunk = data.split_to(available.min(data.len()));
        send.send_data(chunk, end && data.is_empty())
            .map_err(gone)?;
    }
    Ok(())
}
