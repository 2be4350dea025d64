use super::*;
use crate::msg::Stream;

fn line(unix_ms: u64, stream: Stream, text: &str) -> OutputLine {
    OutputLine {
        unix_ms,
        stream,
        text: text.into(),
    }
}

fn split(answer: &[u8]) -> (String, String) {
    let text = String::from_utf8(answer.to_vec()).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

fn pool() -> BackendOutput {
    BackendOutput {
        name: "web".into(),
        pool: true,
        instances: vec![
            InstanceOutput {
                slot: 0,
                lines: vec![
                    line(1_000, Stream::Stdout, "zero a"),
                    line(3_000, Stream::Stderr, "zero \"b\""),
                ],
                not_logged: 0,
            },
            InstanceOutput {
                slot: 1,
                lines: vec![line(2_000, Stream::Stdout, "one a")],
                not_logged: 7,
            },
        ],
    }
}

#[test]
fn the_name_is_between_backends_and_logs() {
    assert_eq!(
        logs_path(b"/backends/App.localhost./logs").as_deref(),
        Some("app.localhost")
    );
    assert_eq!(
        logs_path(b"/backends/session/abc/logs").as_deref(),
        Some("session/abc")
    );
    assert_eq!(logs_path(b"/backends//logs"), None);
    assert_eq!(logs_path(b"/backends/app/log"), None);
    assert_eq!(logs_path(b"/backends"), None);
}

#[test]
fn text_merges_a_pools_instances_in_time_order_with_their_labels() {
    let (head, body) = split(&logs_response(b"GET", "web", b"", Some(pool())));
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("Content-Type: text/plain; charset=utf-8"));
    assert_eq!(
        body,
        "1970-01-01T00:00:01.000Z instance=0 stdout: zero a\n\
         1970-01-01T00:00:02.000Z instance=1 stdout: one a\n\
         1970-01-01T00:00:03.000Z instance=0 stderr: zero \"b\"\n"
    );
    let single = BackendOutput {
        name: "app.localhost".into(),
        pool: false,
        instances: vec![InstanceOutput {
            slot: 0,
            lines: vec![line(1_700_000_000_123, Stream::Stderr, "ready")],
            not_logged: 0,
        }],
    };
    let (_, body) = split(&logs_response(b"GET", "app.localhost", b"", Some(single)));
    assert_eq!(body, "2023-11-14T22:13:20.123Z stderr: ready\n");
}

#[test]
fn json_keeps_each_instance_apart() {
    let (head, body) = split(&logs_response(
        b"GET",
        "web",
        b"x=1&format=json",
        Some(pool()),
    ));
    assert!(head.contains("application/json"));
    assert_eq!(
        body,
        r#"{"name":"web","instances":[{"instance":0,"not_logged":0,"lines":[{"time":"1970-01-01T00:00:01.000Z","unix_ms":1000,"stream":"stdout","text":"zero a"},{"time":"1970-01-01T00:00:03.000Z","unix_ms":3000,"stream":"stderr","text":"zero \"b\""}]},{"instance":1,"not_logged":7,"lines":[{"time":"1970-01-01T00:00:02.000Z","unix_ms":2000,"stream":"stdout","text":"one a"}]}]}"#
    );
}

#[test]
fn an_unknown_name_is_a_404_in_the_admin_error_format_and_only_get_is_allowed() {
    let (head, body) = split(&logs_response(b"GET", "nope", b"", None));
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    assert!(body.contains(r#""code":"NOT_FOUND""#), "{body}");
    assert!(body.contains("nope"));
    let (head, _) = split(&logs_response(b"POST", "web", b"", Some(pool())));
    assert!(head.starts_with("HTTP/1.1 405"), "{head}");
}

#[test]
fn dates_are_gregorian_utc() {
    assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    assert_eq!(rfc3339_ms(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
    assert_eq!(rfc3339_ms(4_102_444_800_000), "2100-01-01T00:00:00.000Z");
}
