//! A real WebSocket client (`tungstenite`, blocking) connected through the proxy, plus raw frame bytes for
//! the tests that must control exactly what goes on the wire.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Response as WsResponse;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Error as WsError, HandshakeError, Message, WebSocket};

use super::client::IO_TIMEOUT;
use super::{pattern_byte, wait_until, Proxy};

pub type Ws = WebSocket<TcpStream>;

/// Client limits: above the largest message the tests send (16 MiB in a single frame), which is exactly
/// tungstenite's default frame limit.
const MAX_TEST_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_frame_size(Some(MAX_TEST_MESSAGE_BYTES))
        .max_message_size(Some(MAX_TEST_MESSAGE_BYTES))
}

/// How long `/backends` is polled for an in-flight count to settle.
pub const IN_FLIGHT_SETTLE: Duration = Duration::from_secs(5);

/// The backend's `in_flight` count in `/backends`.
pub fn in_flight(proxy: &Proxy, host: &str) -> u64 {
    proxy.backend(host)["in_flight"]
        .as_u64()
        .unwrap_or(u64::MAX)
}

/// Waits until the backend's `in_flight` count is `expected`; panics with `/backends` otherwise.
pub fn wait_in_flight(proxy: &Proxy, host: &str, expected: u64) {
    assert!(
        wait_until(IN_FLIGHT_SETTLE, || in_flight(proxy, host) == expected),
        "in_flight did not become {expected}: {}",
        proxy.backend(host)
    );
}

/// `len` bytes of the echo backend's pattern (what `/stream` and `/ws-flood` send).
pub fn pattern_bytes(len: usize) -> Vec<u8> {
    (0..len as u64).map(pattern_byte).collect()
}

/// The backend pid that accepted the WebSocket (the echo backend's `X-Echo-Pid` on its 101).
pub fn ws_pid(response: &WsResponse) -> u32 {
    response
        .headers()
        .get("x-echo-pid")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no X-Echo-Pid in {:?}", response.headers()))
}

/// Opens a TCP connection to `addr` and runs the WebSocket handshake for `ws://{host}{path}` over it.
/// A refused handshake comes back as `Err` with the HTTP response (`WsError::Http`).
pub fn try_ws_connect(
    addr: SocketAddr,
    host: &str,
    path: &str,
) -> Result<(Ws, WsResponse), WsError> {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_nodelay(true)?;
    let request = format!("ws://{host}{path}").into_client_request()?;
    tungstenite::client::client_with_config(request, stream, Some(client_config())).map_err(|e| {
        match e {
            HandshakeError::Failure(e) => e,
            // Only a non-blocking stream can be interrupted; this one blocks.
            HandshakeError::Interrupted(_) => WsError::Io(std::io::ErrorKind::WouldBlock.into()),
        }
    })
}

/// A WebSocket through the proxy; panics if the handshake fails.
pub fn ws_connect(addr: SocketAddr, host: &str, path: &str) -> (Ws, WsResponse) {
    try_ws_connect(addr, host, path)
        .unwrap_or_else(|e| panic!("WebSocket handshake for {host}{path} failed: {e:?}"))
}

/// Sends `message` and returns the next data message (text or binary) read back; pongs and pings are
/// not expected by the callers, so they fail the test.
pub fn ws_echo(ws: &mut Ws, message: Message) -> Message {
    ws.send(message).expect("send a message");
    match ws.read().expect("read the echo") {
        reply @ (Message::Text(_) | Message::Binary(_)) => reply,
        other => panic!("expected an echoed message, got {other:?}"),
    }
}

/// After `close` was sent (by either side): reads until the connection is closed, returning the close
/// frame the peer sent. Panics on data or on an error other than the orderly end.
pub fn ws_finish_close(ws: &mut Ws) -> Option<CloseFrame> {
    let mut seen = None;
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => seen = Some(frame),
            Ok(other) => panic!("unexpected {other:?} while closing"),
            Err(WsError::ConnectionClosed) => {
                return seen.unwrap_or_else(|| panic!("closed without a close frame"))
            }
            Err(e) => panic!("closing failed: {e:?}"),
        }
    }
}

/// Ends a WebSocket with the close handshake, checks that the backend echoed the code, and closes the
/// socket.
pub fn ws_close_cleanly(mut ws: Ws) {
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "done".into(),
    }))
    .expect("send close");
    let reply = ws_finish_close(&mut ws).expect("a close frame with a code");
    assert_eq!(reply.code, CloseCode::Normal);
}

/// Whether reading from the WebSocket ends (close, EOF or reset) within `wait`. False if it stays open;
/// data arriving instead is a test failure.
pub fn ws_ended_within(ws: &mut Ws, wait: Duration) -> bool {
    ws.get_ref()
        .set_read_timeout(Some(wait))
        .expect("set a read timeout");
    let ended = loop {
        match ws.read() {
            Ok(Message::Close(_)) => continue,
            Ok(other) => panic!("unexpected {other:?} on a quiet WebSocket"),
            Err(WsError::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break false
            }
            Err(_) => break true,
        }
    };
    let _ = ws.get_ref().set_read_timeout(Some(IO_TIMEOUT));
    ended
}

/// A raw masked client frame (RFC 6455 section 5.2), for tests that write bytes themselves.
pub fn masked_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len @ 126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    let key = [0x5a, 0xc3, 0x17, 0x88];
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    frame
}

/// The raw handshake request for `path` with a fixed key; the answer's accept value is
/// `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=` (the RFC 6455 example).
pub fn raw_ws_handshake(host: &str, path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .into_bytes()
}
