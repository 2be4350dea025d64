//! A raw HTTP/1.1 client over `TcpStream`: the tests write exact bytes and read exact responses, so
//! nothing between them and the proxy normalises anything.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Read/write timeout for test connections: generous for a loaded machine, finite so a hang fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest response head line the client accepts.
const MAX_LINE: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// In received order, names in received case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header with this name (case-insensitive).
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}): status {} headers {:?} body {:?}",
                self.status,
                self.headers,
                self.text()
            )
        })
    }

    /// True when the `Connection` field carries `close`.
    pub fn closes(&self) -> bool {
        self.headers_named("connection")
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("close"))
    }
}

/// One client connection. The reader's buffer survives between responses, so pipelined responses that
/// arrive in one segment are all kept.
pub struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            reader: BufReader::with_capacity(64 * 1024, stream),
        }
    }

    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    pub fn reader(&mut self) -> &mut BufReader<TcpStream> {
        &mut self.reader
    }

    pub fn send(&mut self, raw: &[u8]) {
        self.try_send(raw).unwrap_or_else(|e| panic!("write: {e}"));
    }

    pub fn try_send(&mut self, raw: &[u8]) -> io::Result<()> {
        let mut stream = self.reader.get_ref();
        stream.write_all(raw)?;
        stream.flush()
    }

    pub fn read_response(&mut self) -> Response {
        self.try_read_response()
            .unwrap_or_else(|e| panic!("reading a response: {e}"))
    }

    pub fn try_read_response(&mut self) -> io::Result<Response> {
        read_response(&mut self.reader, false)
    }

    /// Reads the response to a HEAD request (no body whatever the framing says).
    pub fn read_head_response(&mut self) -> Response {
        read_response(&mut self.reader, true).unwrap_or_else(|e| panic!("reading a response: {e}"))
    }

    /// Reads just the status line and header fields (skipping 1xx), leaving the body in the reader.
    pub fn read_head(&mut self) -> (u16, Vec<(String, String)>) {
        read_final_head(&mut self.reader).unwrap_or_else(|e| panic!("reading a head: {e}"))
    }

    /// A keep-alive request with optional extra header lines (each without CRLF) and a fixed body.
    pub fn request(
        &mut self,
        method: &str,
        host: &str,
        path: &str,
        extra: &[&str],
        body: &[u8],
    ) -> Response {
        self.send(&build_request(method, host, path, extra, body));
        if method == "HEAD" {
            self.read_head_response()
        } else {
            self.read_response()
        }
    }

    pub fn get(&mut self, host: &str, path: &str) -> Response {
        self.request("GET", host, path, &[], b"")
    }

    /// Whether the peer has closed (EOF or reset) within `wait`; false if the connection is idle and open.
    pub fn closed_by_peer_within(&mut self, wait: Duration) -> bool {
        self.reader.get_ref().set_read_timeout(Some(wait)).unwrap();
        let mut byte = [0u8; 1];
        let closed = match self.reader.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => panic!(
                "unexpected byte {:?} on an idle connection",
                byte[0] as char
            ),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                false
            }
            Err(_) => true,
        };
        self.reader
            .get_ref()
            .set_read_timeout(Some(IO_TIMEOUT))
            .unwrap();
        closed
    }
}

pub fn build_request(method: &str, host: &str, path: &str, extra: &[&str], body: &[u8]) -> Vec<u8> {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    for line in extra {
        raw.push_str(line);
        raw.push_str("\r\n");
    }
    let sets_framing = extra.iter().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("content-length:") || l.starts_with("transfer-encoding:")
    });
    if !body.is_empty() && !sets_framing {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("\r\n");
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// Connects and writes `raw`; the response is read from the returned client.
pub fn send(addr: SocketAddr, raw: &[u8]) -> Client {
    let mut client = Client::connect(addr);
    client.send(raw);
    client
}

/// One GET on a fresh connection that asks to be closed afterwards.
pub fn get(addr: SocketAddr, host: &str, path: &str) -> Response {
    let mut client = Client::connect(addr);
    client.send(&build_request(
        "GET",
        host,
        path,
        &["Connection: close"],
        b"",
    ));
    client.read_response()
}

fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    let n = reader
        .by_ref()
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before a response",
        ));
    }
    if line.last() != Some(&b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "unterminated line",
        ));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn read_any_head(reader: &mut impl BufRead) -> io::Result<(u16, Vec<(String, String)>)> {
    let status_line = read_line(reader)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad status line {status_line:?}"),
            )
        })?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            return Ok((status, headers));
        }
        let (name, value) = line.split_once(':').ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad header line {line:?}"),
            )
        })?;
        headers.push((name.to_string(), value.trim().to_string()));
    }
}

/// The head of the final response: interim 1xx responses (other than 101) are skipped.
pub fn read_final_head(reader: &mut impl BufRead) -> io::Result<(u16, Vec<(String, String)>)> {
    loop {
        let (status, headers) = read_any_head(reader)?;
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        return Ok((status, headers));
    }
}

/// Reads one complete response: Content-Length, chunked or close-delimited; none for HEAD/1xx/204/304.
pub fn read_response(reader: &mut impl BufRead, for_head: bool) -> io::Result<Response> {
    let (status, headers) = read_final_head(reader)?;
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if for_head || status == 204 || status == 304 || status == 101 {
        return Ok(response);
    }
    let chunked = response
        .headers_named("transfer-encoding")
        .iter()
        .any(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        response.body = read_chunked(reader)?;
    } else if let Some(len) = response.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length"))?;
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body)?;
        response.body = body;
    } else {
        reader.read_to_end(&mut response.body)?;
    }
    Ok(response)
}

pub fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader)?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad chunk size {line:?}"),
            )
        })?;
        if size == 0 {
            while !read_line(reader)?.is_empty() {}
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        if !read_line(reader)?.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "chunk longer than its size",
            ));
        }
    }
}
