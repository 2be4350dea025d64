//! A request the proxy accepts, once rewritten for the backend, parses again as the same request:
//! same method, version, framing, host and (origin-form) target.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use spawngate::error::ErrorCode;
use spawngate::http1::request::{parse_request, RequestHead};
use spawngate::http1::rewrite::{write_request, ForwardInfo, ForwardPlan};

fn origin(buf: &[u8], head: &RequestHead) -> Vec<u8> {
    let target = &buf[head.origin_form.clone()];
    let mut origin = Vec::with_capacity(target.len() + 1);
    if !matches!(target.first(), Some(b'/' | b'*')) {
        origin.push(b'/');
    }
    origin.extend_from_slice(target);
    origin
}

fn host(buf: &[u8], head: &RequestHead) -> Option<Vec<u8>> {
    head.host.clone().map(|r| buf[r].to_ascii_lowercase())
}

fuzz_target!(|data: &[u8]| {
    let Ok(Some(first)) = parse_request(data) else {
        return;
    };
    let info = ForwardInfo {
        client_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)).into(),
        request_id: b"0123456789abcdef0123456789abcdef",
        target: None,
        session: None,
    };
    let mut out = Vec::new();
    write_request(data, &first, &ForwardPlan::default(), &info, &mut out);
    let again = match parse_request(&out) {
        Ok(Some(again)) => again,
        // The added fields can push a head that was at a limit over it.
        Err(e) if e.code == ErrorCode::HeaderFieldsTooLarge => return,
        other => panic!(
            "rewritten head {:?} parsed as {other:?}",
            String::from_utf8_lossy(&out)
        ),
    };
    assert_eq!(again.len, out.len());
    assert_eq!(data[first.method.clone()], out[again.method.clone()]);
    assert_eq!(origin(data, &first), out[again.target.clone()]);
    assert_eq!(first.version, again.version);
    assert_eq!(first.framing, again.framing);
    assert_eq!(host(data, &first), host(&out, &again));
    assert_eq!(first.upgrade, again.upgrade);
});
