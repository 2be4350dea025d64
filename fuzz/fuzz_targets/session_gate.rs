//! The session gate on any HTTP/1 head: it never panics; a session that does not exist never forwards
//! or answers; a 401 is the same bytes whether the session exists or not; a redirect leads only to a
//! path on the same host; and a forwarded head carries no `X-Spawngate-*` field but the proxy's own and
//! no `sg_s` cookie pair, and parses again. The first byte chooses whether the session's valid cookie
//! and token are added as fields (so the fuzzer reaches the authenticated paths), and whether it has
//! ended.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use spawngate::config::sessions::Access;
use spawngate::error::ErrorCode;
use spawngate::http1::request::parse_request;
use spawngate::http1::rewrite::{write_head, ForwardInfo, ForwardPlan, Http1Source};
use spawngate::sessions::gate::{check, Gate};
use spawngate::sessions::route::{Credential, Found, SessionRoute};
use spawngate::sessions::{secret, EndReason};
use spawngate::upstream::BackendId;

const TOKEN: [u8; 32] = [0x11; 32];
const COOKIE: [u8; 32] = [0x22; 32];

fn route(ended: bool) -> Arc<SessionRoute> {
    Arc::new(SessionRoute {
        id: "sid".into(),
        name: "session/fuzz".into(),
        hostname: "s.test".into(),
        backend: BackendId::new(0, 1),
        access: Access::Token,
        secure_cookie: false,
        secret: "sec".into(),
        credentials: vec![Credential {
            token: TOKEN,
            cookie: COOKIE,
            user: Some("alice".into()),
            spent: false,
        }],
        ended: ended.then_some(EndReason::Idle),
    })
}

/// `data` with the session's credentials inserted as fields after its request line, as `flags` says.
fn with_credentials(flags: u8, data: &[u8]) -> Vec<u8> {
    let at = data
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(data.len(), |at| at + 2);
    let mut head = data[..at].to_vec();
    if flags & 1 != 0 {
        head.extend_from_slice(
            format!("Cookie: a=1; sg_s={}\r\n", secret::to_text(&COOKIE)).as_bytes(),
        );
    }
    if flags & 2 != 0 {
        let line = format!("X-Spawngate-Token: {}\r\n", secret::to_text(&TOKEN));
        head.extend_from_slice(line.as_bytes());
    }
    head.extend_from_slice(&data[at..]);
    head
}

fn refusal_bytes(gate: Option<Gate>) -> Option<Vec<u8>> {
    match gate {
        Some(Gate::Refuse(err)) => Some(err.to_http1(Some(b"rid"), false, &[])),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let buf = with_credentials(flags, rest);
    let Ok(Some(head)) = parse_request(&buf) else {
        return;
    };
    let source = Http1Source {
        buf: &buf,
        head: &head,
    };
    let route = route(flags & 4 != 0);

    let missing = check(Found::NoSuchSession, &source);
    let missing_bytes = match &missing {
        Some(Gate::Refuse(err)) => {
            assert!(matches!(err.code.status(), 400 | 401 | 405), "{err:?}");
            refusal_bytes(missing)
        }
        other => panic!("a missing session gave {other:?}"),
    };

    match check(Found::Session(&route), &source) {
        Some(Gate::Refuse(err)) if err.code.status() == 401 => {
            assert_eq!(refusal_bytes(Some(Gate::Refuse(err))), missing_bytes);
        }
        Some(Gate::Refuse(_)) => {}
        Some(Gate::Answer { answer, .. }) => {
            if let Some(location) = &answer.location {
                assert_eq!(location.first(), Some(&b'/'));
                assert!(
                    !matches!(location.get(1), Some(b'/' | b'\\')),
                    "{location:?}"
                );
                assert!(location.iter().all(|&b| b.is_ascii_graphic() && b != b'\\'));
            }
        }
        Some(Gate::Forward(stamp)) => {
            let info = ForwardInfo {
                client_ip: "192.0.2.1".into(),
                request_id: b"rid",
                target: None,
                session: Some(&stamp),
            };
            let mut out = Vec::new();
            write_head(&source, &ForwardPlan::default(), &info, &mut out);
            let text = String::from_utf8_lossy(&out);
            let ours = "X-Spawngate-Session: sid\r\nX-Spawngate-User: alice\r\n\
                        X-Spawngate-Secret: sec\r\n\r\n";
            assert!(text.ends_with(ours), "{text}");
            let fields = &text[..text.len() - ours.len()];
            for line in fields.split("\r\n").skip(1) {
                let lower = line.to_ascii_lowercase();
                assert!(!lower.starts_with("x-spawngate-"), "{text}");
                if let Some(value) = lower.strip_prefix("cookie:") {
                    for pair in value.split(';') {
                        let name = pair.split('=').next().unwrap_or_default();
                        assert_ne!(name.trim_matches([' ', '\t']), "sg_s", "{text}");
                    }
                }
            }
            match parse_request(&out) {
                Ok(Some(_)) => {}
                // The added fields can push a head that was at a limit over it.
                Err(e) if e.code == ErrorCode::HeaderFieldsTooLarge => {}
                other => panic!("forwarded head {text:?} parsed as {other:?}"),
            }
        }
        None => panic!("a session host was not the gate's"),
    }
});
