//! What each path answers. Every handler reads the whole request body before it finishes, so the
//! connection is always positioned at the next request.

use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

use crate::http::{self, BodyReader, Framing, RequestHead};

/// Size of the buffers that move body bytes; bounds this server's memory per connection.
const COPY_BUFFER_BYTES: usize = 64 * 1024;
/// Default piece size for `/stream` when `chunk` is not given.
const DEFAULT_STREAM_PIECE_BYTES: usize = 16 * 1024;
/// Largest `chunk` accepted for `/stream`, so a query cannot make this server allocate without bound.
const MAX_STREAM_PIECE_BYTES: usize = 1024 * 1024;
/// Longest `/slow` delay: more than any test waits, short enough that a mistyped query cannot wedge a thread.
const MAX_SLOW_MS: u64 = 10 * 60 * 1000;
/// `/stream` (and `/ws-flood`) write byte i as `i % PATTERN_MODULUS`: a prime, so a shifted or dropped range
/// is detectable.
pub const PATTERN_MODULUS: u64 = 251;

/// How `/health` answers.
#[derive(Debug)]
pub enum HealthMode {
    Healthy,
    /// 503 forever (`ECHO_NEVER_HEALTHY`, or `ECHO_READY_CALLBACK` where the callback is the only way in).
    NeverHealthy,
    /// 500 while this file exists.
    FailWhileFileExists(PathBuf),
    /// 503 until this moment (`ECHO_HEALTH_DELAY_MS` after it started listening).
    FailUntil(std::time::Instant),
}

#[derive(Debug)]
pub struct Settings {
    pub pid: u32,
    pub health: HealthMode,
    pub log_requests: bool,
}

/// What the connection does after a response.
#[derive(Debug, PartialEq, Eq)]
pub enum After {
    KeepAlive,
    Close,
    /// Exit the process (status 0) once the response is flushed.
    Exit,
}

pub fn serve<R: BufRead, W: Write>(
    head: &RequestHead,
    reader: &mut R,
    writer: &mut W,
    settings: &Settings,
) -> io::Result<After> {
    if settings.log_requests {
        println!("{} {} {}", head.method, head.target, head.version);
    }
    let framing = head.framing()?;
    let mut body = BodyReader::new(framing);
    let method = head.method.as_str();
    match head.path() {
        "/echo" if method == "POST" || method == "PUT" => {
            echo_body(head, framing, &mut body, reader, writer)
        }
        "/health" => {
            body.drain(reader)?;
            let (status, text) = health_status(&settings.health);
            simple(head, writer, status, text.as_bytes(), &[], false)
        }
        "/stream" => {
            body.drain(reader)?;
            stream(head, writer)
        }
        "/slow" => {
            body.drain(reader)?;
            let ms = head
                .query("ms")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            std::thread::sleep(Duration::from_millis(ms.min(MAX_SLOW_MS)));
            simple(head, writer, 200, b"slow done\n", &[], false)
        }
        "/status" => {
            body.drain(reader)?;
            let code = head
                .query("code")
                .and_then(|v| v.parse::<u16>().ok())
                .filter(|c| (200..=599).contains(c));
            match code {
                Some(code) => {
                    let text = format!("status {code}\n");
                    simple(head, writer, code, text.as_bytes(), &[], false)
                }
                None => simple(head, writer, 400, b"code must be 200..=599\n", &[], false),
            }
        }
        "/reject-early" => {
            // Answers without reading the request body, then closes: what a server does when it refuses
            // an upload up front (e.g. 413).
            simple(
                head,
                writer,
                413,
                b"rejected before reading the body\n",
                &[],
                true,
            )
        }
        "/close" => {
            body.drain(reader)?;
            simple(head, writer, 200, b"closing\n", &[], true)
        }
        "/ws" | "/ws-flood" => {
            body.drain(reader)?;
            crate::ws::serve(head, reader, writer, settings.pid)
        }
        "/ws-refuse" => {
            body.drain(reader)?;
            simple(head, writer, 400, b"upgrade refused\n", &[], false)
        }
        "/upgrade" if head.header("upgrade").is_some() => {
            body.drain(reader)?;
            upgrade(head, reader, writer)
        }
        "/exit" => {
            body.drain(reader)?;
            simple(head, writer, 200, b"exiting\n", &[], true)?;
            Ok(After::Exit)
        }
        _ => {
            let body_len = body.drain(reader)?;
            let json = describe(head, body_len, settings.pid);
            let pid = settings.pid.to_string();
            let extra = [
                ("Content-Type", "application/json".to_string()),
                ("X-Echo-Pid", pid),
            ];
            simple(head, writer, 200, json.as_bytes(), &extra, false)
        }
    }
}

fn health_status(mode: &HealthMode) -> (u16, &'static str) {
    match mode {
        HealthMode::Healthy => (200, "ok"),
        HealthMode::NeverHealthy => (503, "never healthy"),
        HealthMode::FailWhileFileExists(path) if path.exists() => (500, "failing"),
        HealthMode::FailWhileFileExists(_) => (200, "ok"),
        HealthMode::FailUntil(at) if std::time::Instant::now() < *at => (503, "warming up"),
        HealthMode::FailUntil(_) => (200, "ok"),
    }
}

/// The `Connection` field this response needs, and whether the connection ends after it.
fn connection_field(
    head: &RequestHead,
    force_close: bool,
) -> (Option<(&'static str, String)>, After) {
    if force_close || head.wants_close() {
        (Some(("Connection", "close".to_string())), After::Close)
    } else if head.is_http10() {
        (
            Some(("Connection", "keep-alive".to_string())),
            After::KeepAlive,
        )
    } else {
        (None, After::KeepAlive)
    }
}

/// A response with a body known in full (omitted for HEAD, and for 204/304 as RFC 9110 requires).
pub fn simple<W: Write>(
    head: &RequestHead,
    writer: &mut W,
    status: u16,
    body: &[u8],
    extra: &[(&str, String)],
    force_close: bool,
) -> io::Result<After> {
    let (connection, after) = connection_field(head, force_close);
    let bodiless_status = status == 204 || status == 304;
    let mut headers: Vec<(&str, String)> = extra.to_vec();
    if !extra
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("Content-Type", "text/plain".to_string()));
    }
    if !bodiless_status {
        headers.push(("Content-Length", body.len().to_string()));
    }
    headers.extend(connection);
    http::write_head(writer, status, &headers)?;
    if head.method != "HEAD" && !bodiless_status {
        writer.write_all(body)?;
    }
    writer.flush()?;
    Ok(after)
}

/// Answers 101 with the protocol the client asked for, then sends back every byte it receives until the
/// client closes: a stand-in for WebSocket and other upgraded protocols.
fn upgrade<R: BufRead, W: Write>(
    head: &RequestHead,
    reader: &mut R,
    writer: &mut W,
) -> io::Result<After> {
    let protocol = head.header("upgrade").unwrap_or_default().to_string();
    let headers = [("Connection", "Upgrade".to_string()), ("Upgrade", protocol)];
    http::write_head(writer, 101, &headers)?;
    writer.flush()?;
    let mut buf = vec![0u8; COPY_BUFFER_BYTES];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(After::Close),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        writer.write_all(&buf[..n])?;
        writer.flush()?;
    }
}

/// Sends the request body back as it arrives, framed the way it came.
fn echo_body<R: BufRead, W: Write>(
    head: &RequestHead,
    framing: Framing,
    body: &mut BodyReader,
    reader: &mut R,
    writer: &mut W,
) -> io::Result<After> {
    let (connection, after) = connection_field(head, false);
    let mut headers = vec![("Content-Type", "application/octet-stream".to_string())];
    let chunked = framing == Framing::Chunked;
    match framing {
        Framing::Chunked => headers.push(("Transfer-Encoding", "chunked".to_string())),
        Framing::Length(n) => headers.push(("Content-Length", n.to_string())),
        Framing::None => headers.push(("Content-Length", "0".to_string())),
    }
    headers.extend(connection);
    http::write_head(writer, 200, &headers)?;
    let mut buf = vec![0u8; COPY_BUFFER_BYTES];
    loop {
        let n = body.read(reader, &mut buf)?;
        if n == 0 {
            break;
        }
        if chunked {
            http::write_chunk(writer, &buf[..n])?;
        } else {
            writer.write_all(&buf[..n])?;
        }
        // Push what arrived on at once: the proxy is tested for streaming, not for buffering.
        writer.flush()?;
    }
    if chunked {
        http::finish_chunks(writer)?;
    }
    writer.flush()?;
    Ok(after)
}

/// `/stream?bytes=N[&chunked=1][&chunk=SIZE]`: N bytes of the pattern, written piece by piece.
fn stream<W: Write>(head: &RequestHead, writer: &mut W) -> io::Result<After> {
    let Some(total) = head.query("bytes").and_then(|v| v.parse::<u64>().ok()) else {
        return simple(head, writer, 400, b"bytes=N is required\n", &[], false);
    };
    let chunked = head.query("chunked") == Some("1");
    let piece = head
        .query("chunk")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(DEFAULT_STREAM_PIECE_BYTES)
        .clamp(1, MAX_STREAM_PIECE_BYTES);
    let (connection, after) = connection_field(head, false);
    let mut headers = vec![("Content-Type", "application/octet-stream".to_string())];
    if chunked {
        headers.push(("Transfer-Encoding", "chunked".to_string()));
    } else {
        headers.push(("Content-Length", total.to_string()));
    }
    headers.extend(connection);
    http::write_head(writer, 200, &headers)?;
    if head.method != "HEAD" {
        let mut buf = vec![0u8; piece];
        let mut offset = 0u64;
        while offset < total {
            let len = usize::try_from(total - offset).unwrap_or(piece).min(piece);
            for (i, byte) in buf[..len].iter_mut().enumerate() {
                *byte = ((offset + i as u64) % PATTERN_MODULUS) as u8;
            }
            if chunked {
                http::write_chunk(writer, &buf[..len])?;
            } else {
                writer.write_all(&buf[..len])?;
            }
            offset += len as u64;
        }
        if chunked {
            http::finish_chunks(writer)?;
        }
    }
    writer.flush()?;
    Ok(after)
}

/// The JSON description of a request that the default route answers with.
pub fn describe(head: &RequestHead, body_len: u64, pid: u32) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"method\":");
    push_json_string(&mut out, &head.method);
    out.push_str(",\"path\":");
    push_json_string(&mut out, &head.target);
    out.push_str(",\"version\":");
    push_json_string(&mut out, &head.version);
    out.push_str(",\"headers\":[");
    for (i, (name, value)) in head.headers.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        push_json_string(&mut out, name);
        out.push(',');
        push_json_string(&mut out, value);
        out.push(']');
    }
    out.push_str(&format!("],\"body_len\":{body_len},\"pid\":{pid}}}"));
    out
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn run(raw: &[u8]) -> (Vec<u8>, After) {
        let mut reader = Cursor::new(raw);
        let head = http::read_head(&mut reader).unwrap().unwrap();
        let settings = Settings {
            pid: 7,
            health: HealthMode::Healthy,
            log_requests: false,
        };
        let mut out = Vec::new();
        let after = serve(&head, &mut reader, &mut out, &settings).unwrap();
        (out, after)
    }

    #[test]
    fn describes_the_request_as_json() {
        let (out, after) =
            run(b"GET /x?y=1 HTTP/1.1\r\nHoSt: a\"b\r\nContent-Length: 3\r\n\r\nabc");
        let out = String::from_utf8(out).unwrap();
        assert_eq!(after, After::KeepAlive);
        assert!(out.contains("X-Echo-Pid: 7\r\n"));
        assert!(out.ends_with(
            r#"{"method":"GET","path":"/x?y=1","version":"HTTP/1.1","headers":[["HoSt","a\"b"],["Content-Length","3"]],"body_len":3,"pid":7}"#
        ));
    }

    #[test]
    fn stream_writes_the_pattern_chunked() {
        let (out, _) = run(b"GET /stream?bytes=300&chunked=1&chunk=256 HTTP/1.1\r\n\r\n");
        let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let body = &out[head_end..];
        let expected: Vec<u8> = (0..300u64).map(|i| (i % 251) as u8).collect();
        let mut want = b"100\r\n".to_vec();
        want.extend_from_slice(&expected[..256]);
        want.extend_from_slice(b"\r\n2c\r\n");
        want.extend_from_slice(&expected[256..]);
        want.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(body, &want[..]);
    }

    #[test]
    fn head_and_close_are_honoured() {
        let (out, after) = run(b"HEAD /close HTTP/1.1\r\n\r\n");
        let out = String::from_utf8(out).unwrap();
        assert_eq!(after, After::Close);
        assert!(out.ends_with("Content-Length: 8\r\nConnection: close\r\n\r\n"));
    }
}
