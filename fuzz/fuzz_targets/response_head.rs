//! `parse_response` never panics, and every range it hands back lies inside the head it measured.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spawngate::http1::response::parse_response;
use spawngate::http1::Framing;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, text)) = data.split_first() else {
        return;
    };
    let request_was_head = flags & 1 == 1;
    let Ok(Some(head)) = parse_response(text, request_was_head) else {
        return;
    };
    assert!(head.len <= text.len());
    let in_head = |r: &std::ops::Range<usize>| r.start <= r.end && r.end <= head.len;
    assert!(in_head(&head.reason));
    assert!(head
        .headers
        .iter()
        .all(|h| in_head(&h.name) && in_head(&h.value)));
    assert!((100..=599).contains(&head.status));
    if request_was_head || head.status < 200 || head.status == 204 || head.status == 304 {
        assert_eq!(head.framing, Framing::None);
    }
    if head.keep_alive {
        assert_ne!(head.framing, Framing::UntilClose);
    }
});
