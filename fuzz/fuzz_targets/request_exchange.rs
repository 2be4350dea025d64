//! The request half (`http1::exchange::{HeadReader, RequestHalf}`) fed a client's bytes in fuzzer-chosen
//! pieces, sending to a backend that takes fuzzer-chosen amounts per write: it never panics; the verdict
//! on the head does not depend on the pieces (the same head, or the same refusal, as reading everything
//! at once); and what reaches the backend is the head followed by exactly the body bytes the framing
//! says, whatever the splits. The first byte seeds the cuts and the window.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spawngate::http1::exchange::{HeadReader, HeadStep, RequestHalf};
use spawngate_fuzz::Cuts;

/// The verdict, reduced to what must not depend on the pieces.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Wait,
    Http2,
    Head { len: usize },
    Refuse(&'static str),
    Gone,
}

fn verdict(step: &HeadStep) -> Verdict {
    match step {
        HeadStep::Wait => Verdict::Wait,
        HeadStep::Http2 => Verdict::Http2,
        HeadStep::Head(head) => Verdict::Head { len: head.len },
        HeadStep::Refuse(err) => Verdict::Refuse(err.code.as_str()),
        HeadStep::Gone => Verdict::Gone,
    }
}

/// Reads a head from `input` arriving in pieces ending at `cuts`, the client finishing at the end.
fn read_head(input: &[u8], cuts: &[usize]) -> HeadStep {
    let mut reader = HeadReader::default();
    for &end in cuts.iter().chain(std::iter::once(&input.len())) {
        let eof = end == input.len();
        match reader.step(&input[..end], true, eof) {
            HeadStep::Wait if !eof => continue,
            step => return step,
        }
    }
    HeadStep::Gone
}

/// Sends the head and body with the client's bytes after the head arriving in pieces; the backend takes
/// at most `window` bytes per write. Returns what the backend got, or `None` when the body was refused.
fn send(half: &mut RequestHalf, rest: &[u8], cuts: &mut Cuts, window: usize) -> Option<Vec<u8>> {
    let mut arrived = 0;
    let mut input: Vec<u8> = Vec::new();
    let mut backend = Vec::new();
    for _ in 0..100_000 {
        if arrived < rest.len() {
            let more = 1 + cuts.next() % (rest.len() - arrived);
            input.extend_from_slice(&rest[arrived..arrived + more]);
            arrived += more;
        }
        half.take_body(&input).ok()?;
        let (head, body) = half.to_write(&input);
        let joined: Vec<u8> = head.iter().chain(body).copied().collect();
        let n = joined.len().min(window);
        backend.extend_from_slice(&joined[..n]);
        let from_body = half.wrote(n);
        input.drain(..from_body);
        if half.is_complete() || (n == 0 && arrived == rest.len()) {
            break;
        }
    }
    Some(backend)
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let mut cuts = Cuts::seeded(seed);
    let points = cuts.points(1 + seed as usize % 8, input.len());
    let whole = read_head(input, &[]);
    let pieced = read_head(input, &points);
    assert_eq!(
        verdict(&whole),
        verdict(&pieced),
        "the pieces changed the verdict"
    );

    let HeadStep::Head(head) = whole else {
        return;
    };
    let forwarded = input[..head.len].to_vec();
    let rest = &input[head.len..];
    let window = 1 + seed as usize % 64;
    let mut half = RequestHalf::new(forwarded.clone(), head.framing, None);
    let Some(sent) = send(&mut half, rest, &mut cuts, window) else {
        return;
    };
    assert!(sent.starts_with(&forwarded), "the head goes first, whole");
    let body = &sent[forwarded.len()..];
    assert!(
        rest.starts_with(body),
        "body bytes are the client's, in order"
    );
    if half.is_complete() {
        assert_eq!(body.len() as u64, half.bytes_in());
    }
});
