//! The response machine (`http1::exchange`) fed a backend's bytes in fuzzer-chosen pieces, relayed to a
//! client that takes fuzzer-chosen amounts per write: it never panics, always ends once the backend has
//! closed, ends exactly once, and what the client receives matches feeding everything at once (equal when
//! the response completes; a prefix of it when the body breaks, since pieces may relay good chunks before
//! the bad one). The first byte picks the request's shape, the second seeds the cuts and the window.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spawngate::http1::exchange::{Advance, Asked, Fault, ResponsePhase};
use spawngate::http1::Version;
use spawngate_fuzz::Cuts;

#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Interim,
    Tunnel,
    Head { status: u16, keep: bool },
    Done { reusable: bool },
    Fault(Fault),
}

struct Run {
    seen: Vec<Seen>,
    client: Vec<u8>,
}

fn run(input: &[u8], cuts: &[usize], window: usize, asked: &Asked<'_>, client_eof: bool) -> Run {
    let mut phase = ResponsePhase::awaiting_head();
    let mut backend: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut client = Vec::new();
    let mut seen = Vec::new();
    let mut ended = false;
    let mut fed = 0;
    let pieces = cuts.iter().copied().chain(std::iter::once(input.len()));
    // The last round is the backend's close.
    for (end, eof) in pieces
        .map(|e| (e, false))
        .chain(std::iter::once((input.len(), true)))
    {
        backend.extend_from_slice(&input[fed..end]);
        fed = end;
        // Every turn writes at least one byte or waits, so this bound is never reached by a live machine.
        let mut turns = 0;
        while !ended {
            turns += 1;
            assert!(turns < 4 * (input.len() + out.len()) + 64, "no progress");
            let mut write = |out: &mut Vec<u8>, backend: &mut Vec<u8>, pending: usize| {
                let from_out = out.len().min(window);
                client.extend(out.drain(..from_out));
                let from_body = pending.min(window - from_out);
                client.extend(backend.drain(..from_body));
                (from_out, from_body)
            };
            match phase.advance(&backend, eof, client_eof, asked, &mut out) {
                Ok(Advance::Wait) => {
                    assert!(!eof, "waiting after the backend closed");
                    if write(&mut out, &mut backend, 0).0 == 0 {
                        break;
                    }
                }
                Ok(Advance::Interim { consumed }) => {
                    backend.drain(..consumed);
                    seen.push(Seen::Interim);
                }
                Ok(Advance::Tunnel { consumed }) => {
                    backend.drain(..consumed);
                    seen.push(Seen::Tunnel);
                    ended = true;
                }
                Ok(Advance::Head {
                    consumed,
                    status,
                    head_at,
                    keep,
                }) => {
                    assert!(head_at <= out.len());
                    assert!((200..1000).contains(&status));
                    backend.drain(..consumed);
                    seen.push(Seen::Head { status, keep });
                }
                Ok(Advance::Relay { pending }) => {
                    assert!(pending <= backend.len());
                    let (from_out, from_body) = write(&mut out, &mut backend, pending);
                    phase.relayed(from_body);
                    if phase.is_complete() && out.is_empty() {
                        seen.push(Seen::Done {
                            reusable: phase.backend_reusable(),
                        });
                        ended = true;
                    } else if from_out + from_body == 0 {
                        assert!(!eof || pending == 0, "a relay that cannot move");
                        break;
                    }
                }
                Err(fault) => {
                    seen.push(Seen::Fault(fault));
                    ended = true;
                }
            }
        }
    }
    // Heads the client never got (a tunnel's 101 is flushed by the tunnel) still count.
    client.extend_from_slice(&out);
    assert!(ended, "the backend closed and the machine did not end");
    let ends = seen
        .iter()
        .filter(|s| matches!(s, Seen::Tunnel | Seen::Done { .. } | Seen::Fault(_)))
        .count();
    assert_eq!(ends, 1);
    Run { seen, client }
}

fuzz_target!(|data: &[u8]| {
    let [shape, seed, input @ ..] = data else {
        return;
    };
    let asked = Asked {
        version: if shape & 1 == 0 {
            Version::Http11
        } else {
            Version::Http10
        },
        is_head: shape & 2 != 0,
        upgrade: shape & 4 != 0,
        keep_alive: shape & 8 != 0,
        request_id: b"fuzz",
        editing: None,
    };
    let client_eof = shape & 16 != 0;
    let whole = run(input, &[], usize::MAX, &asked, client_eof);

    let mut generator = Cuts::seeded(*seed);
    let cuts = generator.points(usize::from(seed % 16), input.len());
    let window = 1 + generator.next() % 64;
    let split = run(input, &cuts, window, &asked, client_eof);

    let faulted = |r: &Run| matches!(r.seen.last(), Some(Seen::Fault(_)));
    if faulted(&whole) {
        // The same decisions, to the same fault (the reason may name a different spot).
        assert_eq!(whole.seen.len(), split.seen.len());
        assert!(faulted(&split));
        assert!(split.client.starts_with(&whole.client));
    } else {
        assert_eq!(whole.seen, split.seen);
        assert_eq!(whole.client, split.client);
    }
});
