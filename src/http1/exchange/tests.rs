//! Scenarios for the response machine, driven without sockets: a backend that sends chosen bytes (in
//! chosen pieces) and a client that takes at most a chosen number of bytes per write.

use super::*;

/// What the driver saw the machine decide, in order.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Interim,
    Tunnel,
    Head { status: u16, keep: bool },
    Done { reusable: bool },
    Fault(Fault),
}

struct Driver {
    phase: ResponsePhase,
    asked: Asked<'static>,
    /// Backend bytes read and not yet consumed.
    backend: Vec<u8>,
    backend_eof: bool,
    client_eof: bool,
    /// Proxy-made bytes queued for the client.
    out: Vec<u8>,
    /// Everything the client received, in order.
    client: Vec<u8>,
    /// Most bytes the client takes per write (a slow reader).
    window: usize,
    seen: Vec<Seen>,
    ended: bool,
}

fn asked() -> Asked<'static> {
    Asked {
        version: Version::Http11,
        is_head: false,
        upgrade: false,
        keep_alive: true,
        request_id: b"id-1",
        editing: None,
        cold_start: None,
    }
}

impl Driver {
    fn new(asked: Asked<'static>) -> Self {
        Driver {
            phase: ResponsePhase::awaiting_head(),
            asked,
            backend: Vec::new(),
            backend_eof: false,
            client_eof: false,
            out: Vec::new(),
            client: Vec::new(),
            window: usize::MAX,
            seen: Vec::new(),
            ended: false,
        }
    }

    fn send(&mut self, bytes: &[u8]) -> &mut Self {
        self.backend.extend_from_slice(bytes);
        self.pump();
        self
    }

    fn close(&mut self) -> &mut Self {
        self.backend_eof = true;
        self.pump();
        self
    }

    /// One write to the client, as the reactor does it: queued heads first, then up to `pending` body
    /// bytes from the front of the backend's buffer, at most `window` in all. Returns body bytes written.
    fn write(&mut self, pending: usize) -> usize {
        let from_out = self.out.len().min(self.window);
        self.client.extend(self.out.drain(..from_out));
        let from_body = pending.min(self.window - from_out);
        self.client.extend(self.backend.drain(..from_body));
        from_body
    }

    /// Runs the machine until it waits or ends, as `step_exchange` does.
    fn pump(&mut self) {
        while !self.ended {
            let advanced = self.phase.advance(
                &self.backend,
                self.backend_eof,
                self.client_eof,
                &self.asked,
                &mut self.out,
            );
            match advanced {
                Ok(Advance::Wait) => {
                    self.write(0);
                    return;
                }
                Ok(Advance::Interim { consumed }) => {
                    self.backend.drain(..consumed);
                    self.seen.push(Seen::Interim);
                }
                Ok(Advance::Tunnel { consumed }) => {
                    self.backend.drain(..consumed);
                    self.write(0);
                    self.seen.push(Seen::Tunnel);
                    self.ended = true;
                }
                Ok(Advance::Head {
                    consumed,
                    status,
                    head_at,
                    keep,
                }) => {
                    assert!(head_at <= self.out.len());
                    self.backend.drain(..consumed);
                    self.seen.push(Seen::Head { status, keep });
                }
                Ok(Advance::Relay { pending }) => {
                    assert!(pending <= self.backend.len());
                    let written = self.write(pending);
                    self.phase.relayed(written);
                    if self.phase.is_complete() && self.out.is_empty() {
                        let reusable = self.phase.backend_reusable();
                        self.seen.push(Seen::Done { reusable });
                        self.ended = true;
                    } else if written == 0 {
                        return;
                    }
                }
                Err(fault) => {
                    self.seen.push(Seen::Fault(fault));
                    self.ended = true;
                }
            }
        }
    }

    fn client_text(&self) -> String {
        String::from_utf8_lossy(&self.client).into_owned()
    }
}

/// A 200 relayed whole, both connections kept.
const KEPT_200: [Seen; 2] = [
    Seen::Head {
        status: 200,
        keep: true,
    },
    Seen::Done { reusable: true },
];

const OK_HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

#[test]
fn a_simple_response_keeps_both_connections() {
    let mut d = Driver::new(asked());
    d.send(OK_HELLO);
    assert_eq!(d.seen, KEPT_200);
    let text = d.client_text();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nhello"), "{text}");
    assert!(!text.contains("onnection: close"), "{text}");
    assert!(text.contains("id-1"), "{text}");
}

#[test]
fn a_response_to_head_ends_with_its_head() {
    let mut d = Driver::new(Asked {
        is_head: true,
        ..asked()
    });
    d.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
    assert_eq!(d.seen[1], Seen::Done { reusable: true });
    assert!(d.client_text().contains("Content-Length: 5"));
}

#[test]
fn interim_answers_reach_http11_clients_only() {
    let bytes = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let mut d = Driver::new(asked());
    d.send(bytes);
    assert_eq!(d.seen[0], Seen::Interim);
    assert_eq!(d.seen.last(), Some(&Seen::Done { reusable: true }));
    let text = d.client_text();
    assert!(
        text.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"),
        "{text}"
    );

    let mut d = Driver::new(Asked {
        version: Version::Http10,
        ..asked()
    });
    d.send(bytes);
    assert_eq!(d.seen[0], Seen::Interim);
    assert!(d.client_text().starts_with("HTTP/1.1 200 OK\r\n"));
}

#[test]
fn switching_protocols_hands_the_rest_to_a_tunnel() {
    let mut d = Driver::new(Asked {
        upgrade: true,
        ..asked()
    });
    d.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nframes");
    assert_eq!(d.seen, [Seen::Tunnel]);
    assert_eq!(d.backend, b"frames", "tunnel bytes stay for the tunnel");
    assert!(d.client_text().starts_with("HTTP/1.1 101 "));
}

#[test]
fn a_101_nobody_asked_for_is_a_bad_gateway() {
    let mut d = Driver::new(asked());
    d.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
    assert!(matches!(d.seen[..], [Seen::Fault(Fault::BadHead(_))]));
    assert!(d.client.is_empty());
}

#[test]
fn a_declined_upgrade_keeps_the_client_connection_in_http1() {
    let mut d = Driver::new(Asked {
        upgrade: true,
        ..asked()
    });
    d.send(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(d.seen, KEPT_200);
}

#[test]
fn a_chunked_body_split_anywhere_is_relayed_verbatim() {
    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n";
    let whole = [&head[..], &body[..]].concat();
    let reference = {
        let mut d = Driver::new(asked());
        d.send(&whole);
        d.client.clone()
    };
    assert!(reference.ends_with(body));
    // Two pieces, split at every byte; then one byte at a time, to a slow client.
    for split in 0..=whole.len() {
        let mut d = Driver::new(asked());
        d.send(&whole[..split]).send(&whole[split..]);
        assert_eq!(d.client, reference, "split at {split}");
        assert_eq!(d.seen.last(), Some(&Seen::Done { reusable: true }));
    }
    let mut d = Driver::new(asked());
    d.window = 3;
    for byte in &whole {
        d.send(std::slice::from_ref(byte));
    }
    while !d.ended {
        d.pump();
    }
    assert_eq!(d.client, reference);
    let ends = d
        .seen
        .iter()
        .filter(|s| matches!(s, Seen::Done { .. }))
        .count();
    assert_eq!(ends, 1);
}

#[test]
fn a_backend_that_closes_before_answering_is_gone() {
    let mut d = Driver::new(asked());
    d.close();
    assert!(matches!(d.seen[..], [Seen::Fault(Fault::Gone(_))]));

    let mut d = Driver::new(asked());
    d.send(b"HTTP/1.1 200 OK\r\nContent-").close();
    assert!(matches!(d.seen[..], [Seen::Fault(Fault::BadHead(_))]));
    assert!(d.client.is_empty());
}

#[test]
fn a_body_cut_short_is_broken_after_what_was_relayed() {
    let mut d = Driver::new(asked());
    d.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel")
        .close();
    assert!(matches!(
        d.seen[..],
        [Seen::Head { .. }, Seen::Fault(Fault::Broken(_))]
    ));
    assert!(d.client_text().ends_with("\r\n\r\nhel"));

    let mut d = Driver::new(asked());
    d.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    assert!(matches!(d.seen.last(), Some(Seen::Fault(Fault::Broken(_)))));
}

#[test]
fn connection_close_on_either_side() {
    // The client asked for it: its connection ends after this response; the backend's may go on.
    let mut d = Driver::new(Asked {
        keep_alive: false,
        ..asked()
    });
    d.send(OK_HELLO);
    assert_eq!(
        d.seen,
        [
            Seen::Head {
                status: 200,
                keep: false
            },
            Seen::Done { reusable: true }
        ]
    );
    assert!(d.client_text().contains("Connection: close\r\n"));

    // The backend said it: its connection is not pooled; the client's goes on.
    let mut d = Driver::new(asked());
    d.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
    assert_eq!(d.seen[1], Seen::Done { reusable: false });
    assert!(!d.client_text().contains("onnection: close"));

    // The client finished sending: nothing more can come on its connection.
    let mut d = Driver::new(asked());
    d.client_eof = true;
    d.send(OK_HELLO);
    assert_eq!(
        d.seen[0],
        Seen::Head {
            status: 200,
            keep: false
        }
    );
}

#[test]
fn a_body_until_close_ends_with_the_backend() {
    let mut d = Driver::new(asked());
    d.send(b"HTTP/1.1 200 OK\r\n\r\nstream");
    assert_eq!(
        d.seen,
        [Seen::Head {
            status: 200,
            keep: false
        }]
    );
    d.send(b"ing").close();
    assert_eq!(d.seen[1], Seen::Done { reusable: false });
    assert!(d.client_text().ends_with("\r\n\r\nstreaming"));
}

#[test]
fn a_slow_client_gets_the_body_no_faster_than_it_reads() {
    let mut d = Driver::new(asked());
    d.window = 4;
    d.send(OK_HELLO);
    let mut turns = 0;
    while !d.ended {
        d.pump();
        turns += 1;
        assert!(turns < 100);
    }
    assert!(d.client_text().ends_with("hello"));
    assert_eq!(d.seen.last(), Some(&Seen::Done { reusable: true }));
}

#[test]
fn a_response_that_waited_for_a_start_says_how_long_and_interim_heads_do_not() {
    let mut d = Driver::new(Asked {
        cold_start: Some(std::time::Duration::from_millis(1500)),
        ..asked()
    });
    d.send(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let text = d.client_text();
    assert_eq!(
        text.matches("Server-Timing: cold-start;dur=1500\r\n")
            .count(),
        1,
        "{text}"
    );
    let (interim, last) = text.split_once("\r\n\r\n").unwrap();
    assert!(!interim.contains("Server-Timing"));
    assert!(last.contains("Server-Timing"));

    let mut warm = Driver::new(asked());
    warm.send(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert!(!warm.client_text().contains("Server-Timing"));
}
