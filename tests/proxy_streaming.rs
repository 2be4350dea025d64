//! Large bodies stream through the proxy with bounded memory, in both directions.

mod support;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::*;

const BIG: u64 = 64 * 1024 * 1024;
/// Allowed growth of the proxy's resident memory while a 64 MiB body passes: a fraction of the body, so
/// whole-message buffering fails the test while normal per-connection buffers pass.
const MAX_RSS_GROWTH_KIB: u64 = 16 * 1024;

/// Samples the proxy's RSS on a thread until told to stop; returns the peak in KiB.
struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss_kib(pid).unwrap_or(0)));
        let thread = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(rss) = rss_kib(pid) {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        RssSampler {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

/// Reads exactly `len` body bytes, checking the `/stream` pattern; the first `slow_bytes` are read in
/// small pieces with pauses, the way a slow client would, so the proxy must push back on the backend.
fn read_pattern(reader: &mut impl Read, len: u64, slow_bytes: u64) {
    let mut buf = vec![0u8; 256 * 1024];
    let mut offset = 0u64;
    while offset < len {
        let want = if offset < slow_bytes {
            16 * 1024
        } else {
            buf.len()
        };
        let want = want.min((len - offset) as usize);
        let n = reader.read(&mut buf[..want]).unwrap();
        assert!(n > 0, "body ended after {offset} of {len} bytes");
        for (i, &b) in buf[..n].iter().enumerate() {
            if b != pattern_byte(offset + i as u64) {
                panic!(
                    "byte {} is {b}, expected {}",
                    offset + i as u64,
                    pattern_byte(offset + i as u64)
                );
            }
        }
        offset += n as u64;
        if offset < slow_bytes {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[test]
fn a_64_mib_response_streams_through_with_bounded_memory() {
    let proxy = proxy_with_echo("", &[]);
    let mut client = proxy.client();
    assert_eq!(client.get(ECHO_HOST, "/warmup").status, 200);
    let baseline = rss_kib(proxy.pid()).unwrap();
    let sampler = RssSampler::start(proxy.pid());

    client.send(&build_request(
        "GET",
        ECHO_HOST,
        &format!("/stream?bytes={BIG}"),
        &[],
        b"",
    ));
    let (status, headers) = client.read_head();
    assert_eq!(status, 200);
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"));
    assert_eq!(
        length.map(|(_, v)| v.as_str()),
        Some(BIG.to_string().as_str())
    );
    read_pattern(client.reader(), BIG, 4 * 1024 * 1024);

    let peak = sampler.finish();
    eprintln!("proxy RSS: {baseline} KiB before, {peak} KiB at peak");
    assert!(
        peak.saturating_sub(baseline) < MAX_RSS_GROWTH_KIB,
        "proxy RSS grew from {baseline} KiB to {peak} KiB while streaming 64 MiB"
    );
    assert_eq!(
        client.get(ECHO_HOST, "/after").status,
        200,
        "connection reusable after a big body"
    );
}

#[test]
fn a_large_chunked_response_streams_through() {
    let proxy = proxy_with_echo("", &[]);
    let mut client = proxy.client();
    let len = 8 * 1024 * 1024 + 3;
    let response = client.get(
        ECHO_HOST,
        &format!("/stream?bytes={len}&chunked=1&chunk=10007"),
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.body.len(), len);
    assert!(response
        .body
        .iter()
        .enumerate()
        .all(|(i, &b)| b == pattern_byte(i as u64)));
    assert_eq!(client.get(ECHO_HOST, "/after").status, 200);
}

#[test]
fn a_64_mib_upload_streams_through_with_bounded_memory() {
    let proxy = proxy_with_echo("", &[]);
    let mut client = proxy.client();
    assert_eq!(client.get(ECHO_HOST, "/warmup").status, 200);
    let baseline = rss_kib(proxy.pid()).unwrap();
    let sampler = RssSampler::start(proxy.pid());

    let mut writer = client.stream().try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let head = build_request(
            "POST",
            ECHO_HOST,
            "/echo",
            &[&format!("Content-Length: {BIG}")],
            b"",
        );
        writer.write_all(&head).unwrap();
        let mut piece = vec![0u8; 64 * 1024];
        let mut offset = 0u64;
        while offset < BIG {
            for (i, b) in piece.iter_mut().enumerate() {
                *b = pattern_byte(offset + i as u64);
            }
            writer.write_all(&piece).unwrap();
            offset += piece.len() as u64;
        }
    });
    let (status, _) = client.read_head();
    assert_eq!(status, 200);
    read_pattern(client.reader(), BIG, 0);
    sender.join().unwrap();

    let peak = sampler.finish();
    eprintln!("proxy RSS: {baseline} KiB before, {peak} KiB at peak");
    assert!(
        peak.saturating_sub(baseline) < MAX_RSS_GROWTH_KIB,
        "proxy RSS grew from {baseline} KiB to {peak} KiB while echoing 64 MiB"
    );
}
