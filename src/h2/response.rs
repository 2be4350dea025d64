//! A backend's HTTP/1.1 response as an HTTP/2 response: status, fields minus the connection-specific ones
//! (`Connection` and what it names, `Keep-Alive`, `Proxy-Connection`, `TE`, `Upgrade`,
//! `Transfer-Encoding`), our `X-Request-ID`, and the chunked body's trailer section as HTTP/2 trailers.
//!
//! Field names are lower-cased (HTTP/2 requires it); a field whose name or value HTTP/2 cannot carry is
//! dropped rather than failing the whole response.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};

use crate::http1::fields::FieldName;
use crate::http1::response::ResponseHead;
use crate::http1::rewrite::Nominated;
use crate::http1::Framing;

/// Trailer fields accepted from one chunked body (the decoder already caps their bytes).
const MAX_TRAILER_FIELDS: usize = 64;

/// The HTTP/2 response head for a parsed backend head at the start of `buf`. Field values share `buf`
/// rather than being copied. Interim (1xx) heads get no `X-Request-ID`. `None` when the status cannot
/// be carried.
pub fn response_head(buf: &Bytes, head: &ResponseHead, request_id: &[u8]) -> Option<Response<()>> {
    let status = StatusCode::from_u16(head.status).ok()?;
    let mut response = Response::new(());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.reserve(head.headers.len() + 1);
    let nominated = Nominated::collect(buf, &head.headers);
    let keep_length = head.framing != Framing::Chunked;
    for field in &head.headers {
        let name = &buf[field.name.clone()];
        let keep = match field.kind {
            FieldName::ContentLength => keep_length,
            FieldName::TransferEncoding | FieldName::XRequestId => false,
            other if other.is_hop_by_hop() => false,
            _ => !nominated.names(buf, field),
        };
        if keep {
            let value = HeaderValue::from_maybe_shared(buf.slice(field.value.clone()));
            append(headers, name, value);
        }
    }
    if !status.is_informational() {
        if let Ok(mut id) = HeaderValue::from_bytes(request_id) {
            // Unique per response: indexing it would only churn the client's HPACK table and evict
            // entries worth keeping.
            id.set_sensitive(true);
            headers.insert("x-request-id", id);
        }
    }
    Some(response)
}

fn append(
    headers: &mut HeaderMap,
    name: &[u8],
    value: Result<HeaderValue, http::header::InvalidHeaderValue>,
) {
    match (HeaderName::from_bytes(name), value) {
        (Ok(name), Ok(value)) => {
            headers.append(name, value);
        }
        _ => log::debug!(
            "dropped a backend field HTTP/2 cannot carry: {}",
            String::from_utf8_lossy(name)
        ),
    }
}

/// Collects the framing bytes that follow a chunked body's last payload byte: the CRLF ending the last
/// data chunk, the last-chunk line and the trailer section. Bounded by what the decoder allows.
#[derive(Debug, Default)]
pub struct TrailerTail {
    bytes: Vec<u8>,
}

/// The decoder allows 4 KiB of extensions on the last-chunk line and 16 KiB of trailers; anything past
/// this is not kept (the trailers are then dropped).
const MAX_TAIL_BYTES: usize =
    crate::http1::chunked::MAX_EXTENSION_BYTES + crate::http1::chunked::MAX_TRAILER_BYTES + 64;

impl TrailerTail {
    /// Payload was seen: what came before it is not the tail.
    pub fn restart(&mut self) {
        self.bytes.clear();
    }

    pub fn push(&mut self, framing: &[u8]) {
        if self.bytes.len() + framing.len() <= MAX_TAIL_BYTES {
            self.bytes.extend_from_slice(framing);
        } else {
            self.bytes.clear();
            self.bytes.extend_from_slice(b"!");
        }
    }

    /// The trailer fields, once the decoder reported the body done; empty when there are none or they
    /// could not be read.
    pub fn trailers(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        let tail = self.bytes.strip_prefix(b"\r\n").unwrap_or(&self.bytes);
        let Some(line_end) = tail.windows(2).position(|w| w == b"\r\n") else {
            return map;
        };
        let section = &tail[line_end + 2..];
        if section == b"\r\n" {
            return map;
        }
        let mut slots = [httparse::EMPTY_HEADER; MAX_TRAILER_FIELDS];
        let Ok(httparse::Status::Complete((_, fields))) =
            httparse::parse_headers(section, &mut slots)
        else {
            log::debug!("dropped an unreadable trailer section");
            return map;
        };
        for field in fields {
            let keep = match FieldName::classify(field.name.as_bytes()) {
                FieldName::Host | FieldName::ContentLength | FieldName::TransferEncoding => false,
                other => !other.is_hop_by_hop(),
            };
            if keep {
                append(
                    &mut map,
                    field.name.as_bytes(),
                    HeaderValue::from_bytes(field.value),
                );
            }
        }
        map
    }
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
