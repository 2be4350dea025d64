//! `parse_request` never panics, and every range it hands back lies inside the head it measured.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spawngate::http1::request::parse_request;
use spawngate::http1::Framing;

fuzz_target!(|data: &[u8]| {
    let Ok(Some(head)) = parse_request(data) else {
        return;
    };
    assert!(head.len <= data.len());
    let in_head = |r: &std::ops::Range<usize>| r.start <= r.end && r.end <= head.len;
    assert!(in_head(&head.method) && in_head(&head.target) && in_head(&head.origin_form));
    assert!(head
        .headers
        .iter()
        .all(|h| in_head(&h.name) && in_head(&h.value)));
    assert!(head.host.iter().chain(&head.authority).all(in_head));
    assert!(head.request_id.iter().all(|h| in_head(&h.value)));
    assert_ne!(head.framing, Framing::UntilClose);
});
