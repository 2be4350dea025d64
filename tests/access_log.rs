//! The access log from the outside: the real binary writing to a file, with real HTTP/1, h2c and
//! WebSocket clients. One line per request, stream or tunnel with the right fields (JSON format, parsed),
//! the combined format's shape, redacted session tokens, SIGUSR1 after a rename (logrotate), and hostile
//! client bytes that still make one well-formed line each.

mod support;

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;
use support::ws::*;
use support::*;

/// How long a line may take to reach the file (the writer thread runs as soon as it is woken).
const LINE_DEADLINE: Duration = Duration::from_secs(10);

/// A config with the echo backend on `port` and the access log at `path` in `format`.
fn logging_config(path: &Path, format: &str, port: u16, echo_env: &[(&str, &str)]) -> String {
    let server = format!(
        "[server]\nport = 0\nadmin_port = 0\nbind = \"127.0.0.1\"\naccess_log = {}\n\
         access_log_format = \"{format}\"\n\n",
        toml_str(path.to_str().unwrap())
    );
    server + &echo_backend(ECHO_HOST, port, "", echo_env)
}

fn logging_proxy(path: &Path, format: &str, echo_env: &[(&str, &str)]) -> Proxy {
    Proxy::start(&logging_config(path, format, free_port(), echo_env))
}

fn lines(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8(bytes).expect("the access log is UTF-8");
    text.lines().map(str::to_owned).collect()
}

/// Waits until the file has `n` lines, and returns them.
fn wait_lines(path: &Path, n: usize) -> Vec<String> {
    let reached = wait_until(LINE_DEADLINE, || lines(path).len() >= n);
    let found = lines(path);
    assert!(reached, "expected {n} lines, found {found:#?}");
    found
}

fn json_lines(path: &Path, n: usize) -> Vec<Value> {
    wait_lines(path, n)
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// The one line whose request id is `id`.
fn line_of<'a>(all: &'a [Value], id: &str) -> &'a Value {
    let found: Vec<&Value> = all.iter().filter(|l| l["request_id"] == id).collect();
    assert_eq!(found.len(), 1, "lines for {id}: {all:#?}");
    found[0]
}

#[test]
fn every_request_stream_and_tunnel_has_one_json_line() {
    let dir = TempDir::new("access-json");
    let path = dir.file("access.log");
    let proxy = logging_proxy(&path, "json", &[]);

    // HTTP/1: the first request waits for the backend to start, the second does not.
    let mut client = proxy.client();
    let raw = build_request("GET", ECHO_HOST, "/first?x=1", &["User-Agent: t/1"], b"");
    client.send(&raw);
    let cold = client.read_response();
    assert_eq!(cold.status, 200);
    let raw = build_request("POST", ECHO_HOST, "/second", &[], b"hello");
    client.send(&raw);
    let warm = client.read_response();
    assert_eq!(warm.status, 200);
    let unknown = get(proxy.addr(), "nobody.test", "/");
    assert_eq!(unknown.status, 404);
    let h2 = block_on(async {
        let (client, _driver) = h2_connect(proxy.addr()).await;
        h2_get(&client, ECHO_HOST, "/over-h2").await
    });
    assert_eq!(h2.status, 200);
    let (ws, handshake) = ws_connect(proxy.addr(), ECHO_HOST, "/ws");
    ws_close_cleanly(ws);

    let all = json_lines(&path, 5);
    assert_eq!(all.len(), 5, "{all:#?}");
    let id = |r: &Response| r.header("x-request-id").unwrap().to_owned();

    let first = line_of(&all, &id(&cold));
    assert_eq!(first["method"], "GET");
    assert_eq!(first["target"], "/first?x=1");
    assert_eq!(first["host"], ECHO_HOST);
    assert_eq!(first["protocol"], "HTTP/1.1");
    assert_eq!(first["status"], 200);
    assert_eq!(first["code"], Value::Null);
    assert_eq!(first["client"], "127.0.0.1");
    assert_eq!(first["backend"], ECHO_HOST);
    assert_eq!(first["instance"], 0);
    assert_eq!(first["user_agent"], "t/1");
    assert_eq!(first["cold"], true);
    assert_eq!(first["woke"], true);
    // The proxy's own line of that start names the request that woke the backend.
    let started = format!("starting on demand for request {}", id(&cold));
    assert!(proxy.logs(&started), "no {started:?}");
    assert!(first["wait_ms"].as_f64().unwrap() > 0.0, "{first}");
    assert!(first["duration_ms"].as_f64().unwrap() >= first["wait_ms"].as_f64().unwrap());
    assert!(first["bytes_out"].as_u64().unwrap() > cold.body.len() as u64);

    let second = line_of(&all, &id(&warm));
    assert_eq!(second["method"], "POST");
    assert_eq!(second["bytes_in"], 5);
    assert_eq!(second["cold"], false);
    assert_eq!(second["woke"], false);
    assert_eq!(second["wait_ms"], Value::Null);

    let missing = line_of(&all, &id(&unknown));
    assert_eq!(missing["status"], 404);
    assert_eq!(missing["code"], "UNKNOWN_HOST");
    assert_eq!(missing["host"], "nobody.test");
    assert_eq!(missing["backend"], Value::Null);

    let stream = line_of(&all, h2.header("x-request-id").unwrap());
    assert_eq!(stream["protocol"], "HTTP/2");
    assert_eq!(stream["target"], "/over-h2");
    assert_eq!(stream["host"], ECHO_HOST);
    assert_eq!(stream["status"], 200);
    assert_eq!(stream["bytes_out"], h2.body.len());
    assert_eq!(stream["backend"], ECHO_HOST);

    let ws_id = handshake.headers()["x-request-id"].to_str().unwrap();
    let tunnel = line_of(&all, ws_id);
    assert_eq!(tunnel["status"], 101);
    assert_eq!(tunnel["target"], "/ws");
}

#[test]
fn combined_lines_have_the_apache_shape_then_the_proxys_fields() {
    let dir = TempDir::new("access-combined");
    let path = dir.file("access.log");
    let proxy = logging_proxy(&path, "combined", &[]);
    let mut client = proxy.client();
    let raw = build_request(
        "GET",
        ECHO_HOST,
        "/page",
        &["Referer: http://r.test/", "User-Agent: agent/2"],
        b"",
    );
    client.send(&raw);
    let response = client.read_response();
    assert_eq!(response.status, 200);
    let line = wait_lines(&path, 1).remove(0);
    let rid = response.header("x-request-id").unwrap();
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    let after_time = line.split_once("] ").expect("a time in brackets").1;
    let request_part = format!(
        "\"GET /page HTTP/1.1\" 200 {} \"http://r.test/\" \"agent/2\" host={ECHO_HOST} rid={rid} \
         backend={ECHO_HOST} instance=0 code=- in=0 ms=",
        response_bytes(&line)
    );
    assert!(
        after_time.starts_with(&request_part),
        "{line}\n{request_part}"
    );
    assert!(line.contains(" cold=1 wait_ms="), "{line}");
}

/// The bytes-out field of a combined line (checked for shape by the caller's comparison).
fn response_bytes(line: &str) -> u64 {
    let after_status = line.split("\" 200 ").nth(1).expect("a status");
    after_status
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .expect("a byte count")
}

#[test]
fn a_start_failure_is_logged_as_the_proxys_503() {
    let dir = TempDir::new("access-503");
    let path = dir.file("access.log");
    let proxy = logging_proxy(&path, "json", &[("ECHO_EXIT_AT_START", "3")]);
    let response = get(proxy.addr(), ECHO_HOST, "/x");
    assert_proxy_error(&response, "BACKEND_START_FAILED", 503);
    let all = json_lines(&path, 1);
    let line = line_of(&all, response.header("x-request-id").unwrap());
    assert_eq!(line["status"], 503);
    assert_eq!(line["code"], "BACKEND_START_FAILED");
    assert_eq!(line["backend"], ECHO_HOST);
    assert_eq!(line["cold"], true);
    assert_eq!(line["target"], "/x");
}

#[test]
fn session_tokens_in_a_query_never_reach_the_log() {
    let dir = TempDir::new("access-secret");
    let path = dir.file("access.log");
    let proxy = logging_proxy(&path, "combined", &[]);
    for target in [
        "/.spawngate/auth?token=SECRET",
        "/%2Espawngate/auth?token=SECRET",
        "/a/../.SPAWNGATE/auth?next=/&token=SECRET",
    ] {
        get(proxy.addr(), ECHO_HOST, target);
        get(proxy.addr(), "nobody.test", target);
    }
    block_on(async {
        let (client, _driver) = h2_connect(proxy.addr()).await;
        h2_get(&client, ECHO_HOST, "/.spawngate/auth?token=SECRET").await;
    });
    let all = wait_lines(&path, 7);
    for line in &all {
        assert!(!line.contains("SECRET"), "{line}");
        assert!(line.contains("auth?REDACTED"), "{line}");
    }
}

#[test]
fn sigusr1_after_a_rename_moves_new_lines_to_a_new_file() {
    let dir = TempDir::new("access-rotate");
    let path = dir.file("access.log");
    let rotated = dir.file("access.log.1");
    let proxy = logging_proxy(&path, "combined", &[]);
    assert_eq!(get(proxy.addr(), ECHO_HOST, "/before").status, 200);
    wait_lines(&path, 1);
    std::fs::rename(&path, &rotated).unwrap();
    proxy.signal(Signal::SIGUSR1);
    assert!(
        wait_until(LINE_DEADLINE, || path.exists()),
        "SIGUSR1 did not create a new file"
    );
    assert_eq!(get(proxy.addr(), ECHO_HOST, "/after").status, 200);
    let new = wait_lines(&path, 1);
    assert_eq!(new.len(), 1);
    assert!(new[0].contains("\"GET /after HTTP/1.1\""), "{new:?}");
    let old = lines(&rotated);
    assert_eq!(old.len(), 1);
    assert!(old[0].contains("\"GET /before HTTP/1.1\""), "{old:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
}

#[test]
fn hostile_bytes_make_one_well_formed_line_each() {
    let dir = TempDir::new("access-hostile");
    let path = dir.file("access.log");
    let proxy = logging_proxy(&path, "json", &[]);
    let requests: [&[u8]; 3] = [
        // Quotes, backslashes and a non-UTF-8 byte where HTTP allows them (target and field values).
        b"GET /q\"uo\\te HTTP/1.1\r\nHost: echo.test\r\nUser-Agent: a\"b\\c\xff\x80\r\nReferer: x\tq\r\nConnection: close\r\n\r\n",
        // Control bytes in the target: refused before the request line counts.
        b"GET /x\x1b[31m\r\n\x00 HTTP/1.1\r\nHost: echo.test\r\n\r\n",
        // A newline where the target should be.
        b"GET /a\nb HTTP/1.1\r\nHost: echo.test\r\n\r\n",
    ];
    for raw in requests {
        let mut client = send(proxy.addr(), raw);
        let _ = client.try_read_response();
    }
    let all = wait_lines(&path, requests.len());
    assert_eq!(all.len(), requests.len(), "{all:#?}");
    for line in &all {
        assert!(line.bytes().all(|b| (0x20..0x7f).contains(&b)), "{line:?}");
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    let first: Value = serde_json::from_str(&all[0]).unwrap();
    assert_eq!(first["status"], 200);
    assert_eq!(first["target"], "/q\"uo\\te");
    assert_eq!(first["referer"], "x\tq");
    assert_eq!(first["user_agent"], "a\"b\\c\u{fffd}\u{fffd}");
}

#[test]
fn a_reload_moves_the_log_and_changes_its_format() {
    let dir = TempDir::new("access-reload");
    let (first, second) = (dir.file("first.log"), dir.file("second.log"));
    let port = free_port();
    let proxy = Proxy::start(&logging_config(&first, "combined", port, &[]));
    assert_eq!(get(proxy.addr(), ECHO_HOST, "/one").status, 200);
    wait_lines(&first, 1);
    proxy.rewrite_config(&logging_config(&second, "json", port, &[]));
    assert_eq!(proxy.post_reload().status, 200);
    assert_eq!(get(proxy.addr(), ECHO_HOST, "/two").status, 200);
    let moved = json_lines(&second, 1);
    assert_eq!(moved[0]["target"], "/two");
    assert_eq!(lines(&first).len(), 1);
}

#[test]
fn an_h2_stream_that_wakes_its_backend_is_named_with_the_start() {
    let dir = TempDir::new("access-h2-wake");
    let path = dir.file("access.log");
    let proxy = logging_proxy(&path, "json", &[]);
    let h2 = block_on(async {
        let (client, _driver) = h2_connect(proxy.addr()).await;
        h2_get(&client, ECHO_HOST, "/wake").await
    });
    assert_eq!(h2.status, 200);
    let line: Value = json_lines(&path, 1).remove(0);
    assert_eq!(line["protocol"], "HTTP/2");
    assert_eq!(line["cold"], true, "{line}");
    assert_eq!(line["woke"], true, "{line}");
    let rid = line["request_id"].as_str().expect("a request id");
    let started = format!("starting on demand for request {rid}");
    assert!(proxy.logs(&started), "no {started:?}");
}
