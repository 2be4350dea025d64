//! WebSocket endpoints (RFC 6455, no extensions):
//! * `/ws[?describe=1]`: echoes every text and binary message back as one frame, answers pings, completes
//!   the close handshake (echoing the peer's code), and fails the connection with the fitting code on a
//!   protocol error; with `describe=1` it first sends the handshake request as a JSON text message (the
//!   default route's description), so a test can see what reached the backend;
//! * `/ws-flood?bytes=N[&message=SIZE]`: sends N bytes as binary messages of SIZE bytes (byte i of the
//!   concatenated payloads is i % 251) as fast as the peer takes them, without reading, then closes with
//!   1000 and waits for the peer's close.
//!
//! A request that is not a valid WebSocket handshake gets 400 (426 when the protocol or version is wrong).

use std::io::{self, BufRead, Read, Write};

use crate::http::{self, RequestHead};
use crate::routes::{describe, simple, After, PATTERN_MODULUS};
use crate::ws_accept::{accept_value, is_valid_key};
use crate::ws_frame::{apply_mask, read_header, write_frame, FrameError, Opcode};
use crate::ws_message::{close_payload, close_reply, Assembly, Failure, CLOSE_NORMAL};

/// The only protocol version RFC 6455 defines.
const WEBSOCKET_VERSION: &str = "13";
/// Default `/ws-flood` message size.
const DEFAULT_FLOOD_MESSAGE_BYTES: usize = 64 * 1024;
/// Largest `/ws-flood` message size, so a query cannot make this server allocate without bound.
const MAX_FLOOD_MESSAGE_BYTES: usize = 1024 * 1024;
/// How much a closing connection reads and throws away while waiting for the peer's close frame; a peer
/// that keeps sending past this is cut off.
const MAX_DISCARD_WHILE_CLOSING: u64 = 16 * 1024 * 1024;

/// What the handshake request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Handshake {
    Accept {
        accept: String,
        protocol: Option<String>,
    },
    Refuse {
        status: u16,
        why: &'static str,
    },
}

fn has_token(head: &RequestHead, name: &str, token: &str) -> bool {
    head.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn check_handshake(head: &RequestHead) -> Handshake {
    let refuse = |status, why| Handshake::Refuse { status, why };
    if head.method != "GET" || head.is_http10() {
        return refuse(400, "a WebSocket handshake is an HTTP/1.1 GET\n");
    }
    if !has_token(head, "upgrade", "websocket") {
        return refuse(426, "this endpoint speaks WebSocket only\n");
    }
    if !has_token(head, "connection", "upgrade") {
        return refuse(400, "Connection: Upgrade is missing\n");
    }
    if head.header("sec-websocket-version").map(str::trim) != Some(WEBSOCKET_VERSION) {
        return refuse(426, "Sec-WebSocket-Version must be 13\n");
    }
    let Some(key) = head.header("sec-websocket-key").map(str::trim) else {
        return refuse(400, "Sec-WebSocket-Key is missing\n");
    };
    if !is_valid_key(key) {
        return refuse(400, "Sec-WebSocket-Key is not 16 bytes of base64\n");
    }
    // Agree to the client's first choice: the echo speaks any subprotocol equally badly.
    let protocol = head
        .header("sec-websocket-protocol")
        .and_then(|v| v.split(',').next())
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty());
    Handshake::Accept {
        accept: accept_value(key),
        protocol,
    }
}

/// `/ws` and `/ws-flood`: the handshake, then the session. The request body has been read already.
pub fn serve<R: BufRead, W: Write>(
    head: &RequestHead,
    reader: &mut R,
    writer: &mut W,
    pid: u32,
) -> io::Result<After> {
    let flood = if head.path() == "/ws-flood" {
        let Some(total) = head.query("bytes").and_then(|v| v.parse::<u64>().ok()) else {
            return simple(head, writer, 400, b"bytes=N is required\n", &[], false);
        };
        let message = head
            .query("message")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(DEFAULT_FLOOD_MESSAGE_BYTES)
            .clamp(1, MAX_FLOOD_MESSAGE_BYTES);
        Some((total, message))
    } else {
        None
    };
    let (accept, protocol) = match check_handshake(head) {
        Handshake::Accept { accept, protocol } => (accept, protocol),
        Handshake::Refuse { status, why } => {
            let extra = [
                ("Sec-WebSocket-Version", WEBSOCKET_VERSION.to_string()),
                ("Upgrade", "websocket".to_string()),
            ];
            let extra = if status == 426 { &extra[..] } else { &[] };
            return simple(head, writer, status, why.as_bytes(), extra, false);
        }
    };
    let mut headers = vec![
        ("Upgrade", "websocket".to_string()),
        ("Connection", "Upgrade".to_string()),
        ("Sec-WebSocket-Accept", accept),
        ("X-Echo-Pid", pid.to_string()),
    ];
    if let Some(protocol) = protocol {
        headers.push(("Sec-WebSocket-Protocol", protocol));
    }
    http::write_head(writer, 101, &headers)?;
    writer.flush()?;
    match flood {
        Some((total, message)) => flood_session(reader, writer, total, message),
        None => {
            if head.query("describe") == Some("1") {
                let json = describe(head, 0, pid);
                write_frame(writer, true, Opcode::Text, json.as_bytes())?;
                writer.flush()?;
            }
            echo_session(reader, writer)
        }
    }
}

/// Reads a payload of `len` bytes (already checked against the limits) and unmasks it.
fn read_payload(reader: &mut impl Read, key: [u8; 4], len: u64) -> io::Result<Vec<u8>> {
    let len = usize::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "payload too long"))?;
    let mut payload = vec![0u8; len];
    reader.read_exact(&mut payload)?;
    apply_mask(&mut payload, key, 0);
    Ok(payload)
}

fn echo_session<R: BufRead, W: Write>(reader: &mut R, writer: &mut W) -> io::Result<After> {
    let mut assembly = Assembly::Idle;
    loop {
        let header = match read_header(reader)? {
            // The peer went away without a close frame: nothing is left to answer.
            None => return Ok(After::Close),
            Some(Err(FrameError(why))) => return fail(reader, writer, Failure::protocol(why)),
            Some(Ok(header)) => header,
        };
        let Some(key) = header.mask else {
            return fail(reader, writer, Failure::protocol("unmasked client frame"));
        };
        match header.opcode {
            Opcode::Ping => {
                let payload = read_payload(reader, key, header.payload_len)?;
                write_frame(writer, true, Opcode::Pong, &payload)?;
                writer.flush()?;
            }
            Opcode::Pong => {
                read_payload(reader, key, header.payload_len)?;
            }
            Opcode::Close => {
                let payload = read_payload(reader, key, header.payload_len)?;
                let reply = match close_reply(&payload) {
                    Ok(Some(code)) => code.to_be_bytes().to_vec(),
                    Ok(None) => Vec::new(),
                    Err(failure) => close_payload(failure.code, failure.reason),
                };
                // The peer has closed its side of the WebSocket, so after this answer the server is the
                // one to close the TCP connection, as section 7.1.1 asks.
                write_frame(writer, true, Opcode::Close, &reply)?;
                writer.flush()?;
                return Ok(After::Close);
            }
            Opcode::Text | Opcode::Binary | Opcode::Continuation => {
                if let Err(failure) = assembly.admit(header.opcode, header.payload_len) {
                    return fail(reader, writer, failure);
                }
                let payload = read_payload(reader, key, header.payload_len)?;
                let current = std::mem::replace(&mut assembly, Assembly::Idle);
                match current.push(header.opcode, header.fin, payload) {
                    Ok((next, message)) => {
                        assembly = next;
                        if let Some(message) = message {
                            write_frame(writer, true, message.kind.opcode(), &message.data)?;
                            writer.flush()?;
                        }
                    }
                    Err(failure) => return fail(reader, writer, failure),
                }
            }
        }
    }
}

/// Starts the close handshake because of `failure`, then waits for the peer's close.
fn fail<R: BufRead, W: Write>(
    reader: &mut R,
    writer: &mut W,
    failure: Failure,
) -> io::Result<After> {
    eprintln!(
        "spawngate-echo: failing a WebSocket with {}: {}",
        failure.code, failure.reason
    );
    write_frame(
        writer,
        true,
        Opcode::Close,
        &close_payload(failure.code, failure.reason),
    )?;
    writer.flush()?;
    await_close(reader)
}

/// After sending a close frame: reads and discards until the peer's close frame or the end of the
/// stream, so the peer's answer does not meet a reset connection.
fn await_close(reader: &mut impl BufRead) -> io::Result<After> {
    let mut budget = MAX_DISCARD_WHILE_CLOSING;
    loop {
        let header = match read_header(reader) {
            Ok(Some(Ok(header))) => header,
            // End of stream, a broken frame or a read error: there is nothing more worth waiting for.
            Ok(None) | Ok(Some(Err(_))) | Err(_) => return Ok(After::Close),
        };
        if header.payload_len > budget {
            return Ok(After::Close);
        }
        budget -= header.payload_len;
        io::copy(
            &mut reader.by_ref().take(header.payload_len),
            &mut io::sink(),
        )?;
        if header.opcode == Opcode::Close {
            return Ok(After::Close);
        }
    }
}

fn flood_session<R: BufRead, W: Write>(
    reader: &mut R,
    writer: &mut W,
    total: u64,
    message: usize,
) -> io::Result<After> {
    let modulus = PATTERN_MODULUS as usize;
    // One pattern long enough that every message is a slice of it, whatever offset it starts at.
    let pattern: Vec<u8> = (0..message + modulus)
        .map(|i| (i % modulus) as u8)
        .collect();
    let mut sent = 0u64;
    while sent < total {
        let len = usize::try_from(total - sent)
            .unwrap_or(message)
            .min(message);
        let start = (sent % PATTERN_MODULUS) as usize;
        write_frame(writer, true, Opcode::Binary, &pattern[start..start + len])?;
        sent += len as u64;
    }
    write_frame(
        writer,
        true,
        Opcode::Close,
        &close_payload(CLOSE_NORMAL, "flood done"),
    )?;
    writer.flush()?;
    await_close(reader)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws_frame::{encode_header, parse_header};
    use std::io::Cursor;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn handshake(path: &str, extra: &str) -> Vec<u8> {
        format!(
            "GET {path} HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n{extra}\r\n"
        )
        .into_bytes()
    }

    /// A masked client frame.
    fn client_frame(fin: bool, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
        let (raw, used) = encode_header(fin, opcode, payload.len() as u64);
        let mut frame = raw[..used].to_vec();
        frame[1] |= 0x80;
        let key = [9, 8, 7, 6];
        frame.extend_from_slice(&key);
        let mut body = payload.to_vec();
        apply_mask(&mut body, key, 0);
        frame.extend_from_slice(&body);
        frame
    }

    fn run(input: Vec<u8>) -> (String, Vec<(Opcode, Vec<u8>)>) {
        let mut reader = Cursor::new(input);
        let head = http::read_head(&mut reader).unwrap().unwrap();
        let mut out = Vec::new();
        serve(&head, &mut reader, &mut out, 7).unwrap();
        let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head_text = String::from_utf8(out[..end].to_vec()).unwrap();
        let mut frames = Vec::new();
        let mut rest = if head_text.starts_with("HTTP/1.1 101 ") {
            &out[end..]
        } else {
            &[]
        };
        while let Some((header, used)) = parse_header(rest).unwrap() {
            let len = header.payload_len as usize;
            frames.push((header.opcode, rest[used..used + len].to_vec()));
            rest = &rest[used + len..];
        }
        (head_text, frames)
    }

    #[test]
    fn answers_the_handshake_and_echoes_messages() {
        let mut input = handshake("/ws", "Sec-WebSocket-Protocol: chat, superchat\r\n");
        input.extend(client_frame(true, Opcode::Text, "héllo".as_bytes()));
        input.extend(client_frame(false, Opcode::Binary, &[1, 2]));
        input.extend(client_frame(true, Opcode::Ping, b"p"));
        input.extend(client_frame(true, Opcode::Continuation, &[3]));
        input.extend(client_frame(true, Opcode::Close, &[0x0f, 0xa0]));
        let (head, frames) = run(input);
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(head.contains("Sec-WebSocket-Protocol: chat\r\n"));
        assert_eq!(
            frames,
            vec![
                (Opcode::Text, "héllo".as_bytes().to_vec()),
                (Opcode::Pong, b"p".to_vec()),
                (Opcode::Binary, vec![1, 2, 3]),
                (Opcode::Close, vec![0x0f, 0xa0]),
            ]
        );
    }

    #[test]
    fn fails_the_connection_on_protocol_errors() {
        let mut input = handshake("/ws", "");
        input.extend(client_frame(true, Opcode::Continuation, b"x"));
        let (_, frames) = run(input);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].0, Opcode::Close);
        assert_eq!(&frames[0].1[..2], &1002u16.to_be_bytes());

        let mut input = handshake("/ws", "");
        input.extend(client_frame(true, Opcode::Text, &[0xff]));
        let (_, frames) = run(input);
        assert_eq!(&frames[0].1[..2], &1007u16.to_be_bytes());
    }

    #[test]
    fn refuses_requests_that_are_not_handshakes() {
        let (head, _) = run(b"GET /ws HTTP/1.1\r\nHost: a\r\n\r\n".to_vec());
        assert!(head.starts_with("HTTP/1.1 426 "), "{head}");
        assert!(head.contains("Sec-WebSocket-Version: 13\r\n"), "{head}");
        let bad_key = String::from_utf8(handshake("/ws", ""))
            .unwrap()
            .replace(KEY, "c2hvcnQ=");
        let (head, _) = run(bad_key.into_bytes());
        assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
    }

    #[test]
    fn floods_the_pattern_then_closes() {
        let mut input = handshake("/ws-flood?bytes=600&message=256", "");
        input.extend(client_frame(true, Opcode::Close, &[0x03, 0xe8]));
        let (_, frames) = run(input);
        let sizes: Vec<usize> = frames.iter().map(|(_, p)| p.len()).collect();
        assert_eq!(sizes, vec![256, 256, 88, 12]);
        let data: Vec<u8> = frames[..3].iter().flat_map(|(_, p)| p.clone()).collect();
        let expected: Vec<u8> = (0..600u64).map(|i| (i % 251) as u8).collect();
        assert_eq!(data, expected);
        assert_eq!(frames[3].0, Opcode::Close);
    }
}
