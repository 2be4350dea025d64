//! A tiny web app in front of Spawngate's sessions (std only): every visitor gets a cookie with a random
//! visitor id, and a page linking to a session of their own, which the app asks Spawngate for with
//! `POST {admin}/sessions/{template}` and `{"key": "<visitor id>"}`. The same visitor coming back gets
//! the same session (200) as long as it lives, and a new one (201) after it ended.
//!
//! ```text
//! cargo build --examples --bins
//! target/debug/spawngate examples/sessions.toml     # starts this app on demand at app.localhost:8080
//! target/debug/examples/session_app --listen 127.0.0.1:8000 --admin http://127.0.0.1:9999 --template room
//! ```
//!
//! Options: `--listen ADDR` (default `127.0.0.1:$PORT`, or `127.0.0.1:8000` without `PORT`), `--admin URL`
//! (default `http://127.0.0.1:9999`), `--template NAME` (default `room`). With `SPAWNGATE_ADMIN_TOKEN` set,
//! the app sends it as `Authorization: Bearer` (for a proxy with `admin_token_file`).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 64;
/// How long a browser may take to send its request, and the admin API to answer.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest request head read from a browser.
const MAX_HEAD_BYTES: u64 = 16 * 1024;
/// Longest admin answer read.
const MAX_ADMIN_REPLY_BYTES: u64 = 1024 * 1024;
const COOKIE: &str = "visitor";

struct Settings {
    listen: String,
    /// `host:port` of the admin API, and the path prefix before `/sessions`.
    admin_addr: String,
    admin_prefix: String,
    template: String,
    admin_token: Option<String>,
}

fn main() {
    let settings = match settings(std::env::args().skip(1).collect()) {
        Ok(settings) => Arc::new(settings),
        Err(why) => {
            eprintln!("session_app: {why}");
            eprintln!("usage: session_app [--listen ADDR] [--admin URL] [--template NAME]");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(&settings.listen) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("session_app: cannot listen on {}: {e}", settings.listen);
            std::process::exit(1);
        }
    };
    eprintln!("session_app: listening on {}", settings.listen);
    let busy = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if busy.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            // Too many at once: closing is kinder than piling up threads.
            busy.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let (settings, busy) = (settings.clone(), busy.clone());
        std::thread::spawn(move || {
            if let Err(e) = serve(stream, &settings) {
                eprintln!("session_app: {e}");
            }
            busy.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

fn settings(args: Vec<String>) -> Result<Settings, String> {
    let mut listen = match std::env::var("PORT") {
        Ok(port) => format!("127.0.0.1:{port}"),
        Err(_) => "127.0.0.1:8000".to_string(),
    };
    let mut admin = "http://127.0.0.1:9999".to_string();
    let mut template = "room".to_string();
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = value,
            "--admin" => admin = value,
            "--template" => template = value,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    let rest = admin
        .strip_prefix("http://")
        .ok_or("--admin must be an http:// URL")?;
    let (admin_addr, prefix) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if template.is_empty() || !template.chars().all(valid) {
        return Err(format!("not a template name: {template:?}"));
    }
    Ok(Settings {
        listen,
        admin_addr: admin_addr.to_string(),
        admin_prefix: prefix.trim_end_matches('/').to_string(),
        template,
        admin_token: std::env::var("SPAWNGATE_ADMIN_TOKEN").ok(),
    })
}

/// One browser request: read its head, find or make the visitor, ask for their session, answer.
fn serve(stream: TcpStream, settings: &Settings) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?).take(MAX_HEAD_BYTES);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut visitor = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("cookie") {
                visitor = visitor.or_else(|| visitor_cookie(value));
            }
        }
    }
    let mut parts = request_line.split(' ');
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" {
        return respond(&stream, "405 Method Not Allowed", &[], "only GET\n");
    }
    if path == "/health" {
        // What the proxy probes before it sends the first visitor here.
        return respond(&stream, "200 OK", &[], "ok\n");
    }
    if path != "/" {
        // Only the front page hands out rooms (a browser's /favicon.ico must not).
        return respond(&stream, "404 Not Found", &[], "not found\n");
    }
    let (visitor, new_visitor) = match visitor {
        Some(visitor) => (visitor, false),
        None => (new_visitor_id()?, true),
    };
    let mut fields = Vec::new();
    if new_visitor {
        fields.push(format!(
            "Set-Cookie: {COOKIE}={visitor}; Path=/; HttpOnly; SameSite=Lax"
        ));
    }
    match session_for(&visitor, settings) {
        Ok((status, url)) => {
            let verb = if status == 201 { "made" } else { "found" };
            let page = format!(
                "<!doctype html>\n<title>Your room</title>\n<h1>Hello, visitor {visitor}</h1>\n\
                 <p>Spawngate {verb} a room for you.</p>\n<p><a href=\"{}\">Enter your room</a></p>\n",
                html_escape(&url)
            );
            respond(&stream, "200 OK", &fields, &page)
        }
        Err(why) => {
            let page = format!(
                "<!doctype html>\n<p>No room for now: {}</p>\n",
                html_escape(&why)
            );
            respond(&stream, "503 Service Unavailable", &fields, &page)
        }
    }
}

/// The visitor id of a `Cookie` value, if it holds one this app could have made.
fn visitor_cookie(value: &str) -> Option<String> {
    value.split(';').find_map(|pair| {
        let id = pair.trim().strip_prefix(COOKIE)?.strip_prefix('=')?;
        let ours = id.len() == 17
            && id.starts_with('v')
            && id[1..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        ours.then(|| id.to_string())
    })
}

/// `v` and 16 random hex digits, from the OS.
fn new_visitor_id() -> io::Result<String> {
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().fold("v".to_string(), |mut id, b| {
        id.push_str(&format!("{b:02x}"));
        id
    }))
}

/// `POST {admin}/sessions/{template}` with the visitor as the key: the status (201 made, 200 found) and
/// the session's `url`, or why there is none.
fn session_for(visitor: &str, settings: &Settings) -> Result<(u16, String), String> {
    let body = format!("{{\"key\":\"{visitor}\"}}");
    let mut head = format!(
        "POST {}/sessions/{} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        settings.admin_prefix,
        settings.template,
        settings.admin_addr,
        body.len()
    );
    if let Some(token) = &settings.admin_token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    head.push_str("\r\n");
    let reply = exchange(&settings.admin_addr, head + &body).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&reply);
    let (status_line, rest) = text.split_once("\r\n").unwrap_or((&text, ""));
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let json = rest.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    match (status, json_string(json, "url")) {
        (200 | 201, Some(url)) => Ok((status, url)),
        _ => Err(json_string(json, "message").unwrap_or_else(|| format!("status {status}"))),
    }
}

/// One request to the admin API on a fresh connection, read to its end.
fn exchange(addr: &str, request: String) -> io::Result<Vec<u8>> {
    let target = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address for the admin API"))?;
    let mut stream = TcpStream::connect_timeout(&target, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.write_all(request.as_bytes())?;
    let mut reply = Vec::new();
    stream.take(MAX_ADMIN_REPLY_BYTES).read_to_end(&mut reply)?;
    Ok(reply)
}

fn respond(mut stream: &TcpStream, status: &str, fields: &[String], body: &str) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n",
        body.len()
    );
    for field in fields {
        head.push_str(field);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

fn html_escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// The string member `name` of the JSON object `json` (top level only), escapes decoded. Enough JSON
/// for the admin API's answers; anything it does not understand is `None`, never a panic.
fn json_string(json: &str, name: &str) -> Option<String> {
    let mut chars = json.trim_start().strip_prefix('{')?.chars().peekable();
    loop {
        skip_space(&mut chars);
        if chars.next_if_eq(&'}').is_some() {
            return None;
        }
        let key = string(&mut chars)?;
        skip_space(&mut chars);
        chars.next_if_eq(&':')?;
        skip_space(&mut chars);
        if chars.peek() == Some(&'"') {
            let value = string(&mut chars)?;
            if key == name {
                return Some(value);
            }
        } else {
            skip_value(&mut chars)?;
        }
        skip_space(&mut chars);
        chars.next_if_eq(&',');
    }
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

fn skip_space(chars: &mut Chars) {
    while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
}

/// A JSON string, its opening quote next.
fn string(chars: &mut Chars) -> Option<String> {
    chars.next_if_eq(&'"')?;
    let mut out = String::new();
    loop {
        match chars.next()? {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'u' => {
                    let hex: String = (0..4).filter_map(|_| chars.next()).collect();
                    let code = u32::from_str_radix(&hex, 16).ok()?;
                    out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
}

/// Skips a number, literal, array or object (strings inside are skipped as strings).
fn skip_value(chars: &mut Chars) -> Option<()> {
    let mut depth = 0usize;
    loop {
        match chars.peek()? {
            '"' => {
                string(chars)?;
            }
            '{' | '[' => {
                depth += 1;
                chars.next();
            }
            '}' | ']' if depth > 0 => {
                depth -= 1;
                chars.next();
            }
            ',' | '}' if depth == 0 => return Some(()),
            _ => {
                chars.next();
            }
        }
        if depth == 0 && matches!(chars.peek(), Some(',' | '}')) {
            return Some(());
        }
    }
}
