//! The response head forwarded to an HTTP/1 client, re-serialised from the backend's parsed head.

use std::io::Write;
use std::time::Duration;

use super::super::fields::FieldName;
use super::super::response::ResponseHead;
use super::super::{Framing, Header, Version};
use super::server_timing::{cold_start_value, SERVER_TIMING};
use super::{write_field, Nominated, ResponseEdits, Vars};

/// What the proxy adds at the end of a final response head.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ending {
    /// The client connection closes after this response.
    pub close: bool,
    /// The request was held this long while its backend started (and the backend's `server_timing`
    /// is on).
    pub cold_start: Option<Duration>,
}

impl From<bool> for Ending {
    fn from(close: bool) -> Ending {
        Ending {
            close,
            cold_start: None,
        }
    }
}

/// Writes the response head forwarded to the client: `HTTP/1.1 {status} {reason}`, hop-by-hop fields
/// dropped, the route's response `edits` applied to every final (non-1xx) head (fields it removes or
/// sets dropped, then its set and added fields, rendered with `vars`), the backend's X-Request-ID
/// replaced by ours (`vars.request_id`), `Server-Timing` when the request waited for a start
/// ([`Ending::cold_start`]), then the connection's fate: `Connection: close` when `ending.close`, else
/// `Connection: keep-alive` for an HTTP/1.0 client (HTTP/1.1 needs nothing).
/// Edits cannot name framing, connection or id fields ([`EditableName`](super::EditableName)), so
/// none of the lines this function decides is ever touched by one.
/// A 101 keeps `Upgrade` and says `Connection: Upgrade`; other 1xx heads are interim and get no
/// connection or id fields. `Transfer-Encoding` is kept except where RFC 9112 section 6.1 forbids it
/// (1xx, 204); a response to HEAD keeps it to describe the body it would have had.
pub fn write_response(
    buf: &[u8],
    head: &ResponseHead,
    client_version: Version,
    ending: Ending,
    edits: &ResponseEdits,
    vars: &Vars,
    out: &mut Vec<u8>,
) {
    out.reserve(head.len + 128);
    // Writing into a Vec cannot fail.
    let _ = write!(out, "HTTP/1.1 {} ", head.status);
    out.extend_from_slice(&buf[head.reason.clone()]);
    out.extend_from_slice(b"\r\n");

    let switching = head.status == 101;
    let interim = (100..200).contains(&head.status) && !switching;
    let transfer_encoding_allowed =
        head.framing == Framing::Chunked || !(interim || switching || head.status == 204);
    let nominated = Nominated::collect(buf, &head.headers);
    let edited = !interim && !edits.is_empty();
    for header in &head.headers {
        let keep = match header.kind {
            FieldName::TransferEncoding => {
                if transfer_encoding_allowed {
                    write_framing_field(out, buf, header);
                }
                false
            }
            FieldName::ContentLength => {
                write_framing_field(out, buf, header);
                false
            }
            FieldName::Upgrade => switching,
            FieldName::XRequestId => false,
            hop_by_hop if hop_by_hop.is_hop_by_hop() => false,
            _ => {
                let edited_away = edited && edits.replaces(&buf[header.name.clone()]);
                !edited_away && !nominated.names(buf, header)
            }
        };
        if keep {
            write_field(out, &buf[header.name.clone()], &buf[header.value.clone()]);
        }
    }
    if edited {
        edits.write(vars, out);
    }
    if !interim {
        write_field(out, b"X-Request-ID", vars.request_id);
        if let Some(waited) = ending.cold_start {
            let value = cold_start_value(waited);
            write_field(out, SERVER_TIMING.as_bytes(), value.as_bytes());
        }
        if switching {
            out.extend_from_slice(b"Connection: Upgrade\r\n");
        } else if ending.close {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if client_version == Version::Http10 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes a `Transfer-Encoding` or `Content-Length` field the head's parser already validated (exactly
/// `chunked` in any case, or digits) in canonical form, keeping the name's case. From the field rather
/// than the decided framing: a response to HEAD has no body but keeps the length it describes.
fn write_framing_field(out: &mut Vec<u8>, buf: &[u8], header: &Header) {
    let name = &buf[header.name.clone()];
    let value = &buf[header.value.clone()];
    let canonical = match header.kind {
        FieldName::TransferEncoding => &b"chunked"[..],
        _ => {
            let significant = value.iter().position(|&b| b != b'0').unwrap_or(value.len());
            match &value[significant..] {
                [] => b"0",
                digits => digits,
            }
        }
    };
    write_field(out, name, canonical);
}
