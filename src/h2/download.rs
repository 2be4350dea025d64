//! The response half of an exchange: read the backend's head (passing interim responses on), send it as
//! the HTTP/2 response head, then relay the body as the client's flow-control window allows, with a
//! chunked body's trailer section as trailers.
//!
//! A response chunk is read from the backend only once the previous one fit in the client's window (and
//! our send buffer), so a slow client slows its backend down. Every wait also watches for the client
//! resetting the stream.

use std::cell::Cell;
use std::future::poll_fn;

use bytes::{Bytes, BytesMut};
use h2::server::SendResponse;
use h2::SendStream;
use http::header::{HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

use super::errors::Failure;
use super::forward::Exchange;
use super::response::{response_head, TrailerTail};
use super::tally::Tally;
use crate::error::{ErrorCode, ProxyError};
use crate::http1::body::BodyReader;
use crate::http1::chunked::ChunkedDecoder;
use crate::http1::response::parse_response;
use crate::http1::rewrite::{apply_to_header_map, cold_start_value};
use crate::http1::Framing;

/// The read buffer a response starts with: room for a typical head and small body in one read, and a
/// cheap allocation for the many small responses.
const FIRST_READ: usize = 8 * 1024;
/// How much the read buffer grows by for larger bodies: they then move in few reads.
const READ_CHUNK: usize = 32 * 1024;
/// Below this much free room the read buffer is grown (by [`READ_CHUNK`]) before reading.
const MIN_READ_ROOM: usize = 4 * 1024;
/// `Server-Timing`, as HTTP/2 spells field names.
const SERVER_TIMING_H2: HeaderName = HeaderName::from_static("server-timing");
/// Interim (1xx) responses passed on per exchange; a backend sending more is broken.
const MAX_INTERIM_RESPONSES: usize = 8;

pub enum Download {
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
pub async fn download<R: AsyncRead + Unpin>(
    reader: &mut R,
    ex: &Exchange<'_>,
    respond: &mut SendResponse<Bytes>,
    head_sent: &Cell<bool>,
) -> Result<bool, Download> {
    let mut buf = BytesMut::with_capacity(FIRST_READ);
    let deadline = tokio::time::sleep_until(Instant::now() + ex.target.request_timeout);
    tokio::pin!(deadline);
    let mut interim = 0usize;
    let head = loop {
        // Nothing to parse before the first read (or right after an interim head that ended the bytes).
        let parsed = if buf.is_empty() {
            Ok(None)
        } else {
            parse_response(&buf, ex.is_head)
        };
        match parsed {
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
                let head_bytes = buf.split_to(head.len).freeze();
                if let Some(response) = response_head(&head_bytes, &head, ex.request_id) {
                    if let Err(e) = respond.send_informational(response) {
                        log::debug!("could not pass on an interim response: {e}");
                    }
                }
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

    let head_bytes = buf.split_to(head.len).freeze();
    let Some(mut response) = response_head(&head_bytes, &head, ex.request_id) else {
        return Err(answer(ErrorCode::BadGateway, "unusable response status"));
    };
    if let Some(editing) = ex.editing {
        let vars = editing.vars(ex.request_id);
        apply_to_header_map(editing.edits(), response.headers_mut(), &vars);
    }
    if let Some(waited) = ex.cold_start {
        if let Ok(value) = HeaderValue::from_str(&cold_start_value(waited)) {
            response.headers_mut().append(SERVER_TIMING_H2, value);
        }
    }
    super::errors::add_hsts(response.headers_mut(), ex.hsts);
    let bodiless = matches!(head.framing, Framing::None | Framing::Length(0));
    let mut send = respond
        .send_response(response, bodiless)
        .map_err(|_| Download::Failed(Failure::ClientGone))?;
    head_sent.set(true);
    ex.tally.head(head.status);
    if bodiless {
        return Ok(head.keep_alive && buf.is_empty());
    }
    let body = match head.framing {
        Framing::Chunked => Body::Chunked(ChunkedDecoder::new(), TrailerTail::default()),
        other => Body::Plain(BodyReader::new(other)),
    };
    let complete = relay_body(reader, &mut send, buf, body, ex.tally).await?;
    Ok(head.keep_alive && complete)
}

enum Body {
    Plain(BodyReader),
    Chunked(ChunkedDecoder, TrailerTail),
}

/// Streams the response body that follows the head (`buf` holds what was read past the head). Returns
/// whether the connection ended exactly at the body's end (nothing extra read after it).
async fn relay_body<R: AsyncRead + Unpin>(
    reader: &mut R,
    send: &mut SendStream<Bytes>,
    mut buf: BytesMut,
    mut body: Body,
    tally: &Tally,
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
                    send_all(send, data, last, tally).await?;
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
                            send_all(send, consumed.slice(range), false, tally).await?;
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
    tally: &Tally,
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
        tally.add_out(chunk.len());
        send.send_data(chunk, end && data.is_empty())
            .map_err(gone)?;
    }
    Ok(())
}
