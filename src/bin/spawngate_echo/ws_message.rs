//! Messages from frames (RFC 6455 section 5.4): a message is one data frame, or a first frame and
//! continuations, with control frames allowed in between. Also what a close frame's payload may hold.

use crate::ws_frame::Opcode;

/// Largest message the echo endpoint holds before answering: four times the biggest one the tests send,
/// and a bound on what one connection can make this server allocate.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Close status codes (section 7.4.1).
pub const CLOSE_NORMAL: u16 = 1000;
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
pub const CLOSE_INVALID_PAYLOAD: u16 = 1007;
pub const CLOSE_TOO_BIG: u16 = 1009;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Text,
    Binary,
}

impl MessageKind {
    pub fn opcode(self) -> Opcode {
        match self {
            MessageKind::Text => Opcode::Text,
            MessageKind::Binary => Opcode::Binary,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Message {
    pub kind: MessageKind,
    pub data: Vec<u8>,
}

/// Why the connection must be failed: the close code to send and a short reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub code: u16,
    pub reason: &'static str,
}

impl Failure {
    pub fn protocol(reason: &'static str) -> Failure {
        Failure {
            code: CLOSE_PROTOCOL_ERROR,
            reason,
        }
    }
}

/// Where the reassembly of the current message is.
#[derive(Debug, PartialEq, Eq)]
pub enum Assembly {
    /// Between messages: the next data frame must start one.
    Idle,
    /// A message was started without FIN; only continuations may follow.
    Receiving { kind: MessageKind, data: Vec<u8> },
}

impl Assembly {
    /// Checks a data frame's header before its payload is read, so an oversized frame is refused without
    /// being buffered.
    pub fn admit(&self, opcode: Opcode, payload_len: u64) -> Result<(), Failure> {
        let held = match (self, opcode) {
            (Assembly::Idle, Opcode::Text | Opcode::Binary) => 0,
            (Assembly::Idle, Opcode::Continuation) => {
                return Err(Failure::protocol("continuation without a message"))
            }
            (Assembly::Receiving { data, .. }, Opcode::Continuation) => data.len(),
            (Assembly::Receiving { .. }, Opcode::Text | Opcode::Binary) => {
                return Err(Failure::protocol("new message inside a fragmented one"))
            }
            (_, Opcode::Close | Opcode::Ping | Opcode::Pong) => {
                return Err(Failure::protocol("control frame taken for data"))
            }
        };
        let room = (MAX_MESSAGE_BYTES - held) as u64;
        if payload_len > room {
            return Err(Failure {
                code: CLOSE_TOO_BIG,
                reason: "message too big",
            });
        }
        Ok(())
    }

    /// Takes one data frame's (unmasked) payload; yields the message once its last frame arrived.
    pub fn push(
        self,
        opcode: Opcode,
        fin: bool,
        payload: Vec<u8>,
    ) -> Result<(Assembly, Option<Message>), Failure> {
        self.admit(opcode, payload.len() as u64)?;
        let (kind, data) = match self {
            Assembly::Idle => {
                let kind = if opcode == Opcode::Text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                (kind, payload)
            }
            Assembly::Receiving { kind, mut data } => {
                data.extend_from_slice(&payload);
                (kind, data)
            }
        };
        if !fin {
            return Ok((Assembly::Receiving { kind, data }, None));
        }
        if kind == MessageKind::Text && std::str::from_utf8(&data).is_err() {
            return Err(Failure {
                code: CLOSE_INVALID_PAYLOAD,
                reason: "text message is not UTF-8",
            });
        }
        Ok((Assembly::Idle, Some(Message { kind, data })))
    }
}

/// Codes a peer may send in a close frame: the defined ones it may use, and the ranges for libraries
/// and applications. 1004-1006 and 1015 are reserved for reporting and never appear on the wire.
fn is_sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Reads a peer's close frame: the status code to echo back (none if it sent none).
pub fn close_reply(payload: &[u8]) -> Result<Option<u16>, Failure> {
    match payload {
        [] => Ok(None),
        [_] => Err(Failure::protocol("close payload of one byte")),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            if !is_sendable_close_code(code) {
                return Err(Failure::protocol("close code not allowed on the wire"));
            }
            if std::str::from_utf8(reason).is_err() {
                return Err(Failure {
                    code: CLOSE_INVALID_PAYLOAD,
                    reason: "close reason is not UTF-8",
                });
            }
            Ok(Some(code))
        }
    }
}

/// A close frame's payload: the code, then as much of the reason as fits in a control frame.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    let room = crate::ws_frame::MAX_CONTROL_PAYLOAD - payload.len();
    let mut end = reason.len().min(room);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_frame_is_a_message() {
        let (next, message) = Assembly::Idle
            .push(Opcode::Binary, true, vec![1, 2])
            .unwrap();
        assert_eq!(next, Assembly::Idle);
        assert_eq!(
            message,
            Some(Message {
                kind: MessageKind::Binary,
                data: vec![1, 2]
            })
        );
    }

    #[test]
    fn fragments_join_and_may_split_a_character() {
        let euro = "€".as_bytes();
        let (state, none) = Assembly::Idle
            .push(Opcode::Text, false, euro[..1].to_vec())
            .unwrap();
        assert!(none.is_none());
        let (state, none) = state
            .push(Opcode::Continuation, false, euro[1..].to_vec())
            .unwrap();
        assert!(none.is_none());
        let (state, message) = state
            .push(Opcode::Continuation, true, b"!".to_vec())
            .unwrap();
        assert_eq!(state, Assembly::Idle);
        let message = message.unwrap();
        assert_eq!(message.kind, MessageKind::Text);
        assert_eq!(message.data, "€!".as_bytes());
    }

    #[test]
    fn order_and_size_are_enforced() {
        let err = Assembly::Idle
            .push(Opcode::Continuation, true, vec![])
            .unwrap_err();
        assert_eq!(err.code, CLOSE_PROTOCOL_ERROR);
        let (state, _) = Assembly::Idle.push(Opcode::Binary, false, vec![0]).unwrap();
        assert_eq!(
            state.admit(Opcode::Text, 1).unwrap_err().code,
            CLOSE_PROTOCOL_ERROR
        );
        assert_eq!(
            state
                .admit(Opcode::Continuation, MAX_MESSAGE_BYTES as u64)
                .unwrap_err()
                .code,
            CLOSE_TOO_BIG
        );
        assert!(state
            .admit(Opcode::Continuation, MAX_MESSAGE_BYTES as u64 - 1)
            .is_ok());
    }

    #[test]
    fn text_must_be_utf8_once_complete() {
        let err = Assembly::Idle
            .push(Opcode::Text, true, vec![0xc3])
            .unwrap_err();
        assert_eq!(err.code, CLOSE_INVALID_PAYLOAD);
        assert!(Assembly::Idle
            .push(Opcode::Binary, true, vec![0xc3])
            .is_ok());
    }

    #[test]
    fn close_payloads_are_checked() {
        assert_eq!(close_reply(&[]), Ok(None));
        assert_eq!(close_reply(&[0x03, 0xe8]), Ok(Some(1000)));
        assert_eq!(close_reply(b"\x0f\xa0bye"), Ok(Some(4000)));
        assert_eq!(close_reply(&[0x03]).unwrap_err().code, CLOSE_PROTOCOL_ERROR);
        assert_eq!(
            close_reply(&[0x03, 0xed]).unwrap_err().code,
            CLOSE_PROTOCOL_ERROR,
            "1005 is never sent"
        );
        assert_eq!(
            close_reply(&[0x03, 0xe8, 0xff]).unwrap_err().code,
            CLOSE_INVALID_PAYLOAD
        );
    }

    #[test]
    fn close_reasons_are_cut_on_a_character_boundary() {
        let long = "é".repeat(100);
        let payload = close_payload(CLOSE_NORMAL, &long);
        assert!(payload.len() <= 125);
        assert!(std::str::from_utf8(&payload[2..]).is_ok());
        assert_eq!(&payload[..2], &[0x03, 0xe8]);
    }
}
