//! Just enough HTTP/1.1 for a test backend: request heads, request bodies (fixed length or chunked) and
//! response writing. Strictness is not the point here: the proxy in front of this server is what gets
//! tested, so this side accepts what a reasonable client sends and keeps everything it saw.

use std::io::{self, BufRead, Read, Write};

/// Largest request head accepted; twice the proxy's own limit, so it never gets in the proxy's way.
const MAX_HEAD_BYTES: u64 = 128 * 1024;
/// Longest chunk-size or trailer line accepted inside a chunked body.
const MAX_CHUNK_LINE_BYTES: u64 = 4 * 1024;
/// Empty lines tolerated before a request line (RFC 9112 section 2.2 allows at least one).
const MAX_LEADING_EMPTY_LINES: usize = 8;

/// A parsed request head. Names and values are kept exactly as received (case, order, duplicates).
#[derive(Debug)]
pub struct RequestHead {
    pub method: String,
    pub target: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
}

impl RequestHead {
    /// The first header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The value of one query parameter (no percent-decoding: the test parameters are plain numbers).
    pub fn query(&self, key: &str) -> Option<&str> {
        let (_, query) = self.target.split_once('?')?;
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    fn has_connection_token(&self, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether the client asked for the connection to end after this exchange.
    pub fn wants_close(&self) -> bool {
        if self.version == "HTTP/1.0" {
            !self.has_connection_token("keep-alive")
        } else {
            self.has_connection_token("close")
        }
    }

    pub fn is_http10(&self) -> bool {
        self.version == "HTTP/1.0"
    }

    pub fn framing(&self) -> io::Result<Framing> {
        let chunked = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
            .any(|(_, v)| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            return Ok(Framing::Chunked);
        }
        match self.header("content-length") {
            None => Ok(Framing::None),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map(Framing::Length)
                .map_err(|_| invalid("bad Content-Length")),
        }
    }
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

/// Reads one line (without its CRLF or LF), refusing lines longer than `limit`. `Ok(None)` at EOF.
fn read_line(reader: &mut impl BufRead, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let n = reader.by_ref().take(limit).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(if (n as u64) >= limit {
            invalid("line too long")
        } else {
            io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-line")
        });
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(line))
}

/// Reads the next request head. `Ok(None)` when the client closed the connection between requests.
pub fn read_head(reader: &mut impl BufRead) -> io::Result<Option<RequestHead>> {
    let mut budget = MAX_HEAD_BYTES;
    let mut request_line = None;
    for _ in 0..=MAX_LEADING_EMPTY_LINES {
        match read_line(reader, budget)? {
            None => return Ok(None),
            Some(line) if line.is_empty() => continue,
            Some(line) => {
                budget = budget.saturating_sub(line.len() as u64 + 2);
                request_line = Some(line);
                break;
            }
        }
    }
    let request_line = request_line.ok_or_else(|| invalid("no request line"))?;
    let text = String::from_utf8_lossy(&request_line);
    let mut parts = text.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("malformed request line"));
    };
    let mut head = RequestHead {
        method: method.to_string(),
        target: target.to_string(),
        version: version.to_string(),
        headers: Vec::new(),
    };
    loop {
        let line = read_line(reader, budget.max(1))?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "closed in head"))?;
        if line.is_empty() {
            return Ok(Some(head));
        }
        budget = budget.saturating_sub(line.len() as u64 + 2);
        if budget == 0 {
            return Err(invalid("head too large"));
        }
        let text = String::from_utf8_lossy(&line);
        let (name, value) = text
            .split_once(':')
            .ok_or_else(|| invalid("header line without a colon"))?;
        head.headers.push((
            name.to_string(),
            value.trim_matches([' ', '\t']).to_string(),
        ));
    }
}

/// Where a chunked body decoder is.
#[derive(Debug)]
pub enum ChunkState {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data.
    Data { remaining: u64 },
}

/// Reads one request body, whatever its framing, and stops exactly at its end.
#[derive(Debug)]
pub enum BodyReader {
    Length { remaining: u64 },
    Chunked(ChunkState),
    Done,
}

impl BodyReader {
    pub fn new(framing: Framing) -> Self {
        match framing {
            Framing::None | Framing::Length(0) => BodyReader::Done,
            Framing::Length(n) => BodyReader::Length { remaining: n },
            Framing::Chunked => BodyReader::Chunked(ChunkState::Size),
        }
    }

    /// Reads the next piece of body into `buf`; 0 means the body is complete.
    pub fn read(&mut self, reader: &mut impl BufRead, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self {
                BodyReader::Done => return Ok(0),
                BodyReader::Length { remaining } => {
                    let want = buf
                        .len()
                        .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    let got = read_some(reader, &mut buf[..want])?;
                    *remaining -= got as u64;
                    if *remaining == 0 {
                        *self = BodyReader::Done;
                    }
                    return Ok(got);
                }
                BodyReader::Chunked(ChunkState::Size) => {
                    let line = read_line(reader, MAX_CHUNK_LINE_BYTES)?.ok_or_else(eof)?;
                    let text = String::from_utf8_lossy(&line);
                    let size_text = text.split(';').next().unwrap_or("").trim();
                    let size = u64::from_str_radix(size_text, 16)
                        .map_err(|_| invalid("bad chunk size"))?;
                    if size == 0 {
                        skip_trailers(reader)?;
                        *self = BodyReader::Done;
                    } else {
                        *self = BodyReader::Chunked(ChunkState::Data { remaining: size });
                    }
                }
                BodyReader::Chunked(ChunkState::Data { remaining }) => {
                    let want = buf
                        .len()
                        .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    let got = read_some(reader, &mut buf[..want])?;
                    *remaining -= got as u64;
                    if *remaining == 0 {
                        let end = read_line(reader, MAX_CHUNK_LINE_BYTES)?.ok_or_else(eof)?;
                        if !end.is_empty() {
                            return Err(invalid("chunk data longer than its size"));
                        }
                        *self = BodyReader::Chunked(ChunkState::Size);
                    }
                    return Ok(got);
                }
            }
        }
    }

    /// Reads and discards the rest of the body, returning how many bytes it had.
    pub fn drain(&mut self, reader: &mut impl BufRead) -> io::Result<u64> {
        let mut buf = [0u8; 16 * 1024];
        let mut total = 0u64;
        loop {
            match self.read(reader, &mut buf)? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    }
}

fn eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed inside a body",
    )
}

/// One read that treats end-of-stream as an error, since the caller knows more bytes are due.
fn read_some(reader: &mut impl BufRead, buf: &mut [u8]) -> io::Result<usize> {
    if buf.is_empty() {
        return Ok(0);
    }
    match reader.read(buf)? {
        0 => Err(eof()),
        n => Ok(n),
    }
}

fn skip_trailers(reader: &mut impl BufRead) -> io::Result<()> {
    // Bounded like a head: trailer fields are at most a head's worth of lines.
    for _ in 0..1024 {
        let line = read_line(reader, MAX_CHUNK_LINE_BYTES)?.ok_or_else(eof)?;
        if line.is_empty() {
            return Ok(());
        }
    }
    Err(invalid("too many trailer lines"))
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Writes a status line and header fields, then the blank line.
pub fn write_head(w: &mut impl Write, status: u16, headers: &[(&str, String)]) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", status, reason(status));
    for (name, value) in headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())
}

pub fn write_chunk(w: &mut impl Write, data: &[u8]) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    write!(w, "{:x}\r\n", data.len())?;
    w.write_all(data)?;
    w.write_all(b"\r\n")
}

pub fn finish_chunks(w: &mut impl Write) -> io::Result<()> {
    w.write_all(b"0\r\n\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn reads_head_and_chunked_body_then_the_next_head() {
        let raw = b"POST /echo?x=1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
                    3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: t\r\n\r\nGET / HTTP/1.0\r\n\r\n";
        let mut r = Cursor::new(&raw[..]);
        let head = read_head(&mut r).unwrap().unwrap();
        assert_eq!(head.path(), "/echo");
        assert_eq!(head.query("x"), Some("1"));
        assert_eq!(head.framing().unwrap(), Framing::Chunked);
        let mut body = BodyReader::new(Framing::Chunked);
        assert_eq!(body.drain(&mut r).unwrap(), 5);
        let next = read_head(&mut r).unwrap().unwrap();
        assert!(next.wants_close());
        assert!(read_head(&mut r).unwrap().is_none());
    }
}
