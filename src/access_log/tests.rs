use std::net::IpAddr;
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::writer::{self, Queue};
use super::*;
use crate::error::ErrorCode;
use crate::json::Json;

fn seen(parts: Parts<'_>) -> Box<Seen> {
    Seen::new(parts, Protocol::Http11, Instant::now())
}

fn record<'a>(seen: Option<&'a Seen>) -> Record<'a> {
    Record {
        seen,
        client: IpAddr::from([192, 0, 2, 7]),
        request_id: b"rid-1",
        status: Some(200),
        code: None,
        bytes_in: 5,
        bytes_out: 120,
        backend: Some("app.test"),
        instance: Some(0),
    }
}

/// 2000-10-10 13:55:36.123 UTC.
fn timing() -> Timing {
    Timing {
        began: UNIX_EPOCH + Duration::from_millis(971_186_136_123),
        duration: Duration::from_micros(1_234_567),
    }
}

fn line(r: &Record<'_>, format: AccessLogFormat) -> String {
    let mut out = Vec::new();
    format_line(r, timing(), format, &mut out);
    String::from_utf8(out).expect("lines are ASCII")
}

fn parts<'a>(target: &'a [u8]) -> Parts<'a> {
    Parts {
        method: b"GET",
        target,
        host: b"app.test",
        referer: b"",
        user_agent: b"curl/8.5",
    }
}

#[test]
fn combined_line_has_apache_shape_then_the_extras() {
    let mut s = seen(parts(b"/a?b=1"));
    s.waited = Some(Duration::from_millis(250));
    s.woke = true;
    let text = line(&record(Some(&s)), AccessLogFormat::Combined);
    assert_eq!(
        text,
        "192.0.2.7 - - [10/Oct/2000:13:55:36 +0000] \"GET /a?b=1 HTTP/1.1\" 200 120 \"-\" \"curl/8.5\" \
         host=app.test rid=rid-1 backend=app.test instance=0 code=- in=5 ms=1234.567 cold=1 wait_ms=250.000 woke=1\n"
    );
}

#[test]
fn combined_line_without_a_request_line_uses_dashes() {
    let mut r = record(None);
    r.status = Some(400);
    r.code = Some(ErrorCode::BadRequest);
    r.backend = None;
    r.instance = None;
    r.request_id = b"";
    let text = line(&r, AccessLogFormat::Combined);
    assert!(
        text.starts_with("192.0.2.7 - - [10/Oct/2000:13:55:36 +0000] \"- - -\" 400 120 \"-\" \"-\" host=- rid=- backend=- instance=- code=BAD_REQUEST in=5"),
        "{text}"
    );
}

#[test]
fn json_line_is_one_object_with_every_field() {
    let s = seen(parts(b"/a?b=1"));
    let text = line(&record(Some(&s)), AccessLogFormat::Json);
    assert!(
        text.ends_with("}\n") && text.matches('\n').count() == 1,
        "{text}"
    );
    let json = Json::parse(text.trim_end().as_bytes()).expect("valid JSON");
    assert_eq!(json.str_at("time"), Some("2000-10-10T13:55:36.123Z"));
    assert_eq!(json.str_at("request_id"), Some("rid-1"));
    assert_eq!(json.str_at("client"), Some("192.0.2.7"));
    assert_eq!(json.str_at("host"), Some("app.test"));
    assert_eq!(json.str_at("method"), Some("GET"));
    assert_eq!(json.str_at("target"), Some("/a?b=1"));
    assert_eq!(json.str_at("protocol"), Some("HTTP/1.1"));
    assert_eq!(json.get("status").and_then(Json::as_i64), Some(200));
    assert_eq!(json.get("code"), Some(&Json::Null));
    assert_eq!(json.get("bytes_in").and_then(Json::as_i64), Some(5));
    assert_eq!(json.get("bytes_out").and_then(Json::as_i64), Some(120));
    assert_eq!(json.str_at("backend"), Some("app.test"));
    assert_eq!(json.get("instance").and_then(Json::as_i64), Some(0));
    assert_eq!(json.get("cold").and_then(Json::as_bool), Some(false));
    assert_eq!(json.get("wait_ms"), Some(&Json::Null));
    assert_eq!(json.get("referer"), Some(&Json::Null));
    assert_eq!(json.str_at("user_agent"), Some("curl/8.5"));
    assert!(text.contains("\"duration_ms\":1234.567,"), "{text}");
}

/// The protocol and the code are written into JSON strings without escaping: each is plain.
#[test]
fn every_error_code_makes_a_json_string() {
    for &code in ErrorCode::ALL {
        let mut r = record(None);
        r.code = Some(code);
        let text = line(&r, AccessLogFormat::Json);
        let json = Json::parse(text.trim_end().as_bytes()).expect("valid JSON");
        assert_eq!(json.str_at("code"), Some(code.as_str()));
    }
}

#[test]
fn hostile_bytes_are_escaped_in_both_formats() {
    let target = b"/x\r\n\"\\\x00\x1b[31m\xff\xfe caf\xc3\xa9";
    let s = seen(parts(target));
    let combined = line(&record(Some(&s)), AccessLogFormat::Combined);
    assert!(
        combined.contains(r#""GET /x\x0d\x0a\"\\\x00\x1b[31m\xff\xfe caf\xc3\xa9 HTTP/1.1""#),
        "{combined}"
    );
    let json = line(&record(Some(&s)), AccessLogFormat::Json);
    let parsed = Json::parse(json.trim_end().as_bytes()).expect("valid JSON");
    assert_eq!(
        parsed.str_at("target"),
        Some("/x\r\n\"\\\0\u{1b}[31m\u{fffd}\u{fffd} café")
    );
}

#[test]
fn the_query_of_the_proxys_own_paths_is_redacted() {
    for target in [
        &b"/.spawngate/auth?token=SECRET&next=/"[..],
        b"/.SpawnGate/auth?token=SECRET",
        b"/%2espawngate/auth?token=SECRET",
        b"//.spawngate/auth?token=SECRET",
        b"/a/../.spawngate/auth?token=SECRET",
        b"/%zz?token=SECRET",
        b"http://app.test/.spawngate/auth?token=SECRET",
    ] {
        let s = seen(parts(target));
        let shown = String::from_utf8_lossy(s.target()).into_owned();
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.ends_with("?REDACTED"), "{shown}");
    }
    let mut p = parts(b"/");
    p.referer = b"http://app.test/.spawngate/auth?token=SECRET";
    let s = seen(p);
    assert_eq!(s.referer(), b"http://app.test/.spawngate/auth?REDACTED");
    // Other queries are the backend's business and kept.
    assert_eq!(
        seen(parts(b"/spawngate?token=1")).target(),
        b"/spawngate?token=1"
    );
}

#[test]
fn long_parts_are_cut_to_their_bound() {
    let long = vec![b'a'; record::MAX_TARGET * 3];
    let s = seen(Parts {
        method: &long,
        target: &long,
        host: &long,
        referer: &long,
        user_agent: &long,
    });
    assert_eq!(s.target().len(), record::MAX_TARGET);
    assert_eq!(s.method().len(), record::MAX_FIELD);
    assert_eq!(s.user_agent().len(), record::MAX_FIELD);
}

/// A line is given room for its longest form before it is written (and dropped whole when that room is
/// not there), so the longest form must bound every line: here every kept byte needs the widest escape.
#[test]
fn the_room_a_line_is_given_holds_its_worst_case() {
    let control = vec![0x01u8; record::MAX_TARGET * 2];
    let s = seen(Parts {
        method: &control,
        target: &control,
        host: &control,
        referer: &control,
        user_agent: &control,
    });
    let id = vec![0x01u8; 64];
    let mut r = record(Some(&s));
    r.request_id = &id;
    r.backend = Some("\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}\u{1}");
    r.code = Some(ErrorCode::BackendStartFailed);
    r.status = None;
    for format in [AccessLogFormat::Combined, AccessLogFormat::Json] {
        let mut out = Vec::new();
        format_line(&r, timing(), format, &mut out);
        let room = format::longest_line(&r);
        assert!(
            out.len() <= room,
            "{format:?}: a {} byte line for {room} bytes of room",
            out.len()
        );
    }
}

/// A small deterministic fuzz: any bytes make exactly one printable line, and valid JSON.
#[test]
fn any_bytes_make_one_well_formed_line() {
    let mut rng = crate::test_rng::XorShift::new(0x9e37_79b9_7f4a_7c15);
    for round in 0..2_000 {
        let len = (round % 97) as usize;
        let data: Vec<u8> = (0..len)
            .map(|_| {
                let state = rng.next_u64();
                // Bias towards the bytes that matter: separators, quotes, controls, high bytes.
                let pick = [0xFF, b'"', b'\\', b'\n', b'\r', 0, b' ', b'?', 0xC3, 0x80];
                if state % 3 == 0 {
                    pick[(state >> 8) as usize % pick.len()]
                } else {
                    (state >> 16) as u8
                }
            })
            .collect();
        for format in [AccessLogFormat::Combined, AccessLogFormat::Json] {
            let out = line_from_bytes(&data, format);
            assert_eq!(out.last(), Some(&b'\n'));
            let body = &out[..out.len() - 1];
            assert!(
                body.iter().all(|&b| (0x20..=0x7e).contains(&b)),
                "{:?}",
                String::from_utf8_lossy(&out)
            );
            if format == AccessLogFormat::Json {
                Json::parse(body).expect("valid JSON");
            }
        }
    }
}

#[test]
fn a_full_queue_drops_lines_and_counts_them() {
    let queue = Queue::new(100);
    assert!(queue.push(&[b'x'; 60]));
    assert!(!queue.push(&[b'x'; 60]));
    assert!(queue.push(&[b'x'; 40]));
    assert!(!queue.push(b"y"));
    assert_eq!(queue.dropped(), 2);
}

#[test]
fn an_off_log_records_nothing() {
    let log = AccessLog::off();
    assert!(!log.enabled());
    log.record(&record(None), Instant::now());
    assert_eq!(log.dropped(), 0);
}

#[test]
fn lines_queued_before_a_switch_go_to_the_old_file() {
    let dir = std::env::temp_dir().join(format!("spawngate-unit-switch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (old, new) = (dir.join("old.log"), dir.join("new.log"));
    let queue = Queue::new(1_000);
    queue.push(b"before\n");
    queue.switch(writer::Sink::open(&new).unwrap());
    queue.push(b"after\n");
    queue.stop();
    // Everything is queued and the stop asked for: the writer runs once on this thread and returns.
    queue.run_writer(writer::Sink::open(&old).unwrap());
    assert_eq!(std::fs::read_to_string(&old).unwrap(), "before\n");
    assert_eq!(std::fs::read_to_string(&new).unwrap(), "after\n");
    let _ = std::fs::remove_dir_all(&dir);
}
