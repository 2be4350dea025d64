//! The request half of an exchange: the head, then the client's DATA frames as the body (re-chunked
//! when the client gave no length), then its trailers when the body is chunked.
//!
//! Each frame's flow-control window is released only after the backend took the bytes, so a slow
//! backend slows the client down instead of filling our memory. A client that stops sending its body
//! for the stall limit (`header_read_timeout`, as for HTTP/1) loses the stream: it would otherwise hold
//! a backend connection for nothing.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use h2::RecvStream;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;

use super::request::BodyPlan;
use super::tally::Tally;
use crate::http1::fields::FieldName;

#[derive(Debug)]
pub enum UploadError {
    /// The client reset the stream or broke the protocol (the h2 crate reset it).
    Client,
    /// More than `max_request_body_bytes` arrived on a body without a declared length.
    TooLarge(u64),
    /// Writing to the backend failed.
    Backend(io::Error),
    /// The client sent nothing of its body for the stall limit.
    Stalled,
}

pub async fn upload<W: AsyncWrite + Unpin>(
    writer: &mut W,
    head: &[u8],
    plan: BodyPlan,
    recv: &mut RecvStream,
    max_body: Option<u64>,
    stall_limit: Duration,
    tally: &Tally,
) -> Result<(), UploadError> {
    writer.write_all(head).await.map_err(UploadError::Backend)?;
    if !plan.has_body() {
        return Ok(());
    }
    let chunked = plan == BodyPlan::Chunked;
    let mut received: u64 = 0;
    let mut chunks_sent = false;
    loop {
        let next = timeout(stall_limit, recv.data())
            .await
            .map_err(|_| UploadError::Stalled)?;
        let Some(data) = next else { break };
        let data: Bytes = data.map_err(|_| UploadError::Client)?;
        if data.is_empty() {
            continue;
        }
        received = received.saturating_add(data.len() as u64);
        tally.add_in(data.len());
        if let Some(max) = max_body.filter(|&max| received > max) {
            return Err(UploadError::TooLarge(max));
        }
        if chunked {
            // The CRLF closing the previous chunk rides with the next size line: one write fewer.
            let separator = if chunks_sent { "\r\n" } else { "" };
            let line = format!("{separator}{:x}\r\n", data.len());
            writer
                .write_all(line.as_bytes())
                .await
                .map_err(UploadError::Backend)?;
            chunks_sent = true;
        }
        writer
            .write_all(&data)
            .await
            .map_err(UploadError::Backend)?;
        // Only the window of bytes actually received can be released; this cannot fail otherwise.
        let _ = recv.flow_control().release_capacity(data.len());
    }
    if chunked {
        let trailers = timeout(stall_limit, recv.trailers())
            .await
            .map_err(|_| UploadError::Stalled)?
            .map_err(|_| UploadError::Client)?;
        let mut end = Vec::with_capacity(64);
        if chunks_sent {
            end.extend_from_slice(b"\r\n");
        }
        end.extend_from_slice(b"0\r\n");
        for (name, value) in trailers.iter().flatten() {
            let allowed = match FieldName::classify(name.as_str().as_bytes()) {
                FieldName::Host | FieldName::ContentLength | FieldName::TransferEncoding => false,
                other => !other.is_hop_by_hop(),
            };
            if allowed {
                end.extend_from_slice(name.as_str().as_bytes());
                end.extend_from_slice(b": ");
                end.extend_from_slice(value.as_bytes());
                end.extend_from_slice(b"\r\n");
            }
        }
        end.extend_from_slice(b"\r\n");
        writer.write_all(&end).await.map_err(UploadError::Backend)?;
    }
    Ok(())
}
