//! What the tests of the session gate compare and look for: identical refusals, the access cookie,
//! credentials in the proxy's log, and a WebSocket that carries the token.

use std::net::{SocketAddr, TcpStream};

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Response as WsResponse;
use tungstenite::{Error as WsError, HandshakeError};

use super::super::client::IO_TIMEOUT;
use super::super::routing::Reply;
use super::super::ws::Ws;
use super::super::Proxy;

/// 26 lower-case base32 characters (RFC 4648 alphabet).
pub fn is_session_id(id: &str) -> bool {
    id.len() == 26 && id.bytes().all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7'))
}

/// Two refusals are the same answer: status, body and every field but those that differ per response.
pub fn assert_same_answer(a: &Reply, b: &Reply, what: &str) {
    let fields = |r: &Reply| -> Vec<(String, String)> {
        let mut f: Vec<(String, String)> = r
            .headers
            .iter()
            .filter(|(n, _)| !matches!(n.as_str(), "date" | "x-request-id"))
            .cloned()
            .collect();
        f.sort();
        f
    };
    assert_eq!(
        (a.status, a.text(), fields(a)),
        (b.status, b.text(), fields(b)),
        "{what}: {:?} differs",
        a.proto
    );
}

/// A WebSocket to `ws://{host}{path}` through the proxy, with extra request fields (the token).
pub fn ws_connect_with(
    addr: SocketAddr,
    host: &str,
    path: &str,
    fields: &[(&'static str, &str)],
) -> Result<(Ws, WsResponse), WsError> {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut request = format!("ws://{host}{path}").into_client_request()?;
    for (name, value) in fields {
        let value = http::HeaderValue::from_str(value).expect("a field value");
        request.headers_mut().insert(*name, value);
    }
    tungstenite::client::client(request, stream).map_err(|e| match e {
        HandshakeError::Failure(e) => e,
        HandshakeError::Interrupted(_) => WsError::Io(std::io::ErrorKind::WouldBlock.into()),
    })
}

/// The `sg_s` cookie pair (`sg_s=VALUE`) of a `Set-Cookie` value.
pub fn cookie_pair(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Log lines that contain `secret` (the test prints only how many, never the secret itself twice).
pub fn log_lines_with(proxy: &Proxy, secret: &str) -> Vec<String> {
    assert!(secret.len() >= 16, "too short to search for: {secret:?}");
    proxy
        .log_lines()
        .into_iter()
        .filter(|l| l.contains(secret))
        .collect()
}
