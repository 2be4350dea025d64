//! WebSocket through the proxy, driven by a real client library (`tungstenite`) against the echo
//! backend's WebSocket endpoints: messages of every kind and size, the handshake as the backend sees it,
//! the close handshake from either side, cold starts, refused upgrades, and `Upgrade: h2c`. The lifecycle
//! side (idleness, drains, memory) is in `proxy_websocket_lifecycle.rs`.

mod support;

use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame};
use tungstenite::{Error as WsError, Message};

use support::ws::*;
use support::*;

#[test]
fn text_and_binary_messages_are_echoed() {
    let proxy = proxy_with_echo("", &[]);
    let (mut ws, response) = ws_connect(proxy.addr(), ECHO_HOST, "/ws");
    assert_eq!(response.status(), 101);
    assert!(
        response.headers().contains_key("x-request-id"),
        "{:?}",
        response.headers()
    );
    for text in ["hello", "", "héllo ✓ — ünïcode 🦀"] {
        assert_eq!(ws_echo(&mut ws, Message::text(text)), Message::text(text));
    }
    let all_bytes: Vec<u8> = (0..=255).collect();
    for data in [all_bytes, Vec::new(), pattern_bytes(70_000)] {
        let back = ws_echo(&mut ws, Message::binary(data.clone()));
        assert_eq!(back, Message::binary(data));
    }
    wait_in_flight(&proxy, ECHO_HOST, 1);
    ws_close_cleanly(ws);
    wait_in_flight(&proxy, ECHO_HOST, 0);
}

#[test]
fn the_handshake_reaches_the_backend_with_upgrade_and_proxy_headers() {
    let proxy = proxy_with_echo("", &[]);
    let (mut ws, response) = ws_connect(proxy.addr(), ECHO_HOST, "/ws?describe=1");
    let Message::Text(json) = ws.read().expect("the description") else {
        panic!("the first message is not text");
    };
    let seen: serde_json::Value = serde_json::from_str(json.as_str()).unwrap();
    let values = |name| echoed_header_values(&seen, name);
    assert_eq!(values("upgrade"), ["websocket"], "{seen}");
    assert!(
        values("connection")
            .iter()
            .any(|v| v.to_ascii_lowercase().contains("upgrade")),
        "{seen}"
    );
    assert_eq!(values("sec-websocket-version"), ["13"], "{seen}");
    assert_eq!(values("sec-websocket-key").len(), 1, "{seen}");
    assert_eq!(values("x-forwarded-for"), ["127.0.0.1"], "{seen}");
    assert_eq!(values("x-forwarded-host"), [ECHO_HOST], "{seen}");
    assert_eq!(values("x-forwarded-proto"), ["http"], "{seen}");
    let request_id = values("x-request-id");
    assert_eq!(request_id.len(), 1, "{seen}");
    assert_eq!(
        response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some(request_id[0].as_str()),
        "the 101 carries the forwarded request's id"
    );
    ws_close_cleanly(ws);
}

#[test]
fn fragmented_messages_are_reassembled_with_pings_between_fragments() {
    let proxy = proxy_with_echo("", &[]);
    let (mut ws, _) = ws_connect(proxy.addr(), ECHO_HOST, "/ws");
    let text = "fragments: ✓ split — across frames";
    let bytes = text.as_bytes();
    // Cut inside the three-byte '✓' so a character spans two frames.
    let cut = text.find('✓').unwrap() + 1;
    let frames = [
        Frame::message(bytes[..cut].to_vec(), OpCode::Data(Data::Text), false),
        Frame::ping(b"between".to_vec()),
        Frame::message(bytes[cut..20].to_vec(), OpCode::Data(Data::Continue), false),
        Frame::message(bytes[20..].to_vec(), OpCode::Data(Data::Continue), true),
    ];
    for frame in frames {
        ws.send(Message::Frame(frame)).expect("send a frame");
    }
    assert_eq!(
        ws.read().unwrap(),
        Message::Pong(b"between".to_vec().into())
    );
    assert_eq!(ws.read().unwrap(), Message::text(text));

    let data = pattern_bytes(300_000);
    let pieces: Vec<&[u8]> = data.chunks(100_000).collect();
    for (i, piece) in pieces.iter().enumerate() {
        let opcode = if i == 0 { Data::Binary } else { Data::Continue };
        let last = i == pieces.len() - 1;
        let frame = Frame::message(piece.to_vec(), OpCode::Data(opcode), last);
        ws.send(Message::Frame(frame)).expect("send a frame");
    }
    assert_eq!(ws.read().unwrap(), Message::binary(data));
    ws_close_cleanly(ws);
}

#[test]
fn sixteen_mib_messages_cross_both_ways() {
    let proxy = proxy_with_echo("", &[]);
    let (mut ws, _) = ws_connect(proxy.addr(), ECHO_HOST, "/ws");
    let size = 16 * 1024 * 1024;
    let data = pattern_bytes(size);
    let back = ws_echo(&mut ws, Message::binary(data.clone()));
    let Message::Binary(back) = back else {
        panic!("a binary message comes back as binary");
    };
    assert_eq!(back.len(), size);
    assert!(back[..] == data[..], "the 16 MiB binary message changed");

    let text: String = (0..size)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    assert_eq!(
        ws_echo(&mut ws, Message::text(text.clone())),
        Message::text(text)
    );
    ws_close_cleanly(ws);
}

#[test]
fn pings_are_answered_and_closes_complete_from_either_side() {
    let proxy = proxy_with_echo("", &[]);
    let (mut ws, _) = ws_connect(proxy.addr(), ECHO_HOST, "/ws");
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .unwrap();
    assert_eq!(
        ws.read().unwrap(),
        Message::Pong(b"are you there".to_vec().into())
    );
    // Client-initiated close with an application code: echoed, then the backend closes TCP and the proxy
    // passes that on.
    ws.close(Some(CloseFrame {
        code: CloseCode::from(4001),
        reason: "bye".into(),
    }))
    .unwrap();
    assert_eq!(
        ws_finish_close(&mut ws).unwrap().code,
        CloseCode::from(4001)
    );
    // The backend has closed and the client saw the end, but the client's own side is still open: the
    // tunnel lasts until both directions are finished.
    assert_eq!(in_flight(&proxy, ECHO_HOST), 1);
    drop(ws);
    wait_in_flight(&proxy, ECHO_HOST, 0);

    // Backend-initiated close: invalid UTF-8 in a text frame makes the backend fail the connection.
    let (mut ws, _) = ws_connect(proxy.addr(), ECHO_HOST, "/ws");
    let bad = Frame::message(vec![b'o', b'k', 0xff], OpCode::Data(Data::Text), true);
    ws.send(Message::Frame(bad)).unwrap();
    let frame = ws_finish_close(&mut ws).expect("a close frame with a code");
    assert_eq!(frame.code, CloseCode::Invalid, "{frame:?}");
    drop(ws);
    wait_in_flight(&proxy, ECHO_HOST, 0);
}

#[test]
fn a_websocket_handshake_cold_starts_the_backend() {
    let dir = TempDir::new("ws-cold");
    let start_log = dir.file("starts");
    let start_log_text = start_log.to_str().unwrap();
    let proxy = proxy_with_echo(
        "",
        &[
            ("ECHO_START_LOG", start_log_text),
            ("ECHO_START_DELAY_MS", "300"),
        ],
    );
    assert_eq!(proxy.state_of(ECHO_HOST), "stopped");
    let (mut ws, response) = ws_connect(proxy.addr(), ECHO_HOST, "/ws");
    let pids = start_log_pids(&start_log);
    assert_eq!(pids, [ws_pid(&response)], "one start, and it answered");
    assert_eq!(proxy.state_of(ECHO_HOST), "ready");
    assert_eq!(
        ws_echo(&mut ws, Message::text("first")),
        Message::text("first")
    );
    ws_close_cleanly(ws);
}

#[test]
fn a_refused_upgrade_is_an_ordinary_response_and_no_tunnel() {
    let proxy = proxy_with_echo("", &[]);
    match try_ws_connect(proxy.addr(), ECHO_HOST, "/ws-refuse") {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 400),
        Err(other) => panic!("expected the backend's 400, got {other:?}"),
        Ok(_) => panic!("a refused upgrade became a WebSocket"),
    }

    // A declined upgrade leaves the connection in HTTP/1.1: a request pipelined behind the upgrade
    // request is parsed and answered as the next request, never tunnelled, and the connection stays open.
    let mut raw = raw_ws_handshake(ECHO_HOST, "/ws-refuse");
    raw.extend_from_slice(&build_request("GET", ECHO_HOST, "/behind", &[], b""));
    let mut client = send(proxy.addr(), &raw);
    let response = client.read_response();
    assert_eq!(response.status, 400, "{}", response.text());
    assert_eq!(response.text(), "upgrade refused\n");
    assert!(
        response.header("upgrade").is_none(),
        "{:?}",
        response.headers
    );
    assert!(
        !response.closes(),
        "a declined upgrade closed the connection: {:?}",
        response.headers
    );
    let behind = client.read_response();
    assert_eq!(behind.status, 200, "{}", behind.text());
    assert_eq!(behind.json()["path"], "/behind", "{}", behind.text());
    // And the connection goes on.
    let next = client.get(ECHO_HOST, "/after");
    assert_eq!(next.status, 200, "{}", next.text());
    assert_eq!(next.json()["path"], "/after", "{}", next.text());

    // Bytes that are not a request (frames sent before the answer, against RFC 6455) are refused as a
    // malformed request, never relayed to the backend.
    let mut raw = raw_ws_handshake(ECHO_HOST, "/ws-refuse");
    raw.extend(masked_frame(true, 0x1, b"early"));
    let mut client = send(proxy.addr(), &raw);
    assert_eq!(client.read_response().status, 400);
    assert_proxy_error(&client.read_response(), "BAD_REQUEST", 400);
    assert!(client.closed_by_peer_within(IN_FLIGHT_SETTLE));
    wait_in_flight(&proxy, ECHO_HOST, 0);
}

#[test]
fn frames_sent_with_the_handshake_are_tunnelled_after_the_101() {
    let proxy = proxy_with_echo("", &[]);
    let mut raw = raw_ws_handshake(ECHO_HOST, "/ws");
    raw.extend(masked_frame(true, 0x1, b"early"));
    let mut client = send(proxy.addr(), &raw);
    let (status, headers) = client.read_head();
    assert_eq!(status, 101, "{headers:?}");
    let accept = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-accept"))
        .map(|(_, v)| v.as_str());
    assert_eq!(accept, Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    let mut echo = [0u8; 7];
    std::io::Read::read_exact(client.reader(), &mut echo).unwrap();
    assert_eq!(&echo, b"\x81\x05early");
}

#[test]
fn a_client_that_stops_sending_still_gets_its_answers() {
    let proxy = proxy_with_echo("", &[]);
    let mut client = send(proxy.addr(), &raw_ws_handshake(ECHO_HOST, "/ws"));
    assert_eq!(client.read_head().0, 101);
    let mut frames = masked_frame(true, 0x1, b"last words");
    frames.extend(masked_frame(true, 0x9, b"ping"));
    client.send(&frames);
    // The client finishes sending; the tunnel passes that on and keeps relaying the other way.
    client.stream().shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    std::io::Read::read_to_end(client.reader(), &mut rest).unwrap();
    assert_eq!(rest, b"\x81\x0alast words\x8a\x04ping");
    drop(client);
    wait_in_flight(&proxy, ECHO_HOST, 0);
}

#[test]
fn upgrade_h2c_is_answered_over_http1_without_the_upgrade_headers() {
    let proxy = proxy_with_echo("", &[]);
    let mut client = proxy.client();
    let response = client.request(
        "GET",
        ECHO_HOST,
        "/h2c",
        &[
            "Connection: Upgrade, HTTP2-Settings",
            "Upgrade: h2c",
            "HTTP2-Settings: AAMAAABkAAQAAP__",
        ],
        b"",
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(
        response.header("upgrade").is_none(),
        "{:?}",
        response.headers
    );
    let seen = response.json();
    assert!(echoed_header_values(&seen, "upgrade").is_empty(), "{seen}");
    assert!(
        echoed_header_values(&seen, "http2-settings").is_empty(),
        "{seen}"
    );
    assert!(
        echoed_header_values(&seen, "connection")
            .iter()
            .all(|v| !v.to_ascii_lowercase().contains("upgrade")),
        "{seen}"
    );
}
