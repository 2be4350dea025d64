//! The live status view: the page at `GET /` (self-contained), `GET /status`, the event stream that
//! pushes a new snapshot every second while it is open, the admin token taken as `?token=` by the page
//! and its stream only, and `spawngate status` printing the same rows as a table.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use support::browser::Browser;
use support::*;

const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "status-test-token-0123456789";

fn row<'a>(snapshot: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    snapshot["backends"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("no row {name} in {snapshot}"))
}

/// Opens `/status/events` (with `query`) and returns the reader positioned after the head, and the head.
fn open_stream(proxy: &Proxy, query: &str) -> (BufReader<TcpStream>, String) {
    let mut stream = TcpStream::connect(proxy.admin_addr()).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "GET /status/events{query} HTTP/1.1\r\nHost: admin\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            return (reader, head);
        }
        head.push_str(&line);
    }
}

/// The next `event: status` of the stream, parsed.
fn next_event(reader: &mut BufReader<TcpStream>) -> serde_json::Value {
    let mut event = String::new();
    loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the stream ended");
        if line == "\n" {
            break;
        }
        event.push_str(&line);
    }
    assert!(event.starts_with("event: status\ndata: "), "{event:?}");
    let data = event["event: status\ndata: ".len()..].trim_end();
    serde_json::from_str(data).unwrap()
}

#[test]
fn the_page_the_snapshot_and_the_stream_show_each_backend_as_it_changes() {
    let config = echo_backend("live.test", free_port(), "", &[]);
    let proxy = Proxy::start(&config);

    let page = proxy.admin_get("/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.text().contains("new EventSource(\"/status/events\""));

    let snapshot: serde_json::Value =
        serde_json::from_str(&proxy.admin_get("/status").text()).unwrap();
    assert_eq!(row(&snapshot, "live.test")["state"], "stopped");
    assert_eq!(row(&snapshot, "live.test")["kind"], "backend");
    assert_eq!(
        row(&snapshot, "live.test")["started_at"],
        serde_json::Value::Null
    );

    let (mut events, head) = open_stream(&proxy, "");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_lowercase()
            .contains("content-type: text/event-stream"),
        "{head}"
    );
    let first = next_event(&mut events);
    assert_eq!(row(&first, "live.test")["state"], "stopped");

    // A request starts the backend; a later event of the same stream shows it ready.
    assert_eq!(get(proxy.addr(), "live.test", "/").status, 200);
    let deadline = Instant::now() + WAIT;
    loop {
        let event = next_event(&mut events);
        if row(&event, "live.test")["state"] == "ready" {
            assert!(row(&event, "live.test")["started_at"].is_u64());
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {event}");
    }
    drop(events);
    let snapshot: serde_json::Value =
        serde_json::from_str(&proxy.admin_get("/status").text()).unwrap();
    assert_eq!(row(&snapshot, "live.test")["requests"], 1, "{snapshot}");

    for (method, path, status) in [("POST", "/status", 405), ("DELETE", "/", 405)] {
        let raw = format!("{method} {path} HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
        let answer = send(proxy.admin_addr(), raw.as_bytes()).read_response();
        assert_eq!(answer.status, status, "{method} {path}");
    }
}

#[test]
fn with_an_admin_token_the_page_and_its_stream_take_it_in_the_query() {
    let dir = std::env::temp_dir().join(format!("sg-status-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let config = format!(
        "[server]\nport = 0\nadmin_port = 0\nbind = \"127.0.0.1\"\nadmin_token_file = {}\n\n{}",
        toml_str(token_file.to_str().unwrap()),
        echo_backend("locked.test", free_port(), "", &[])
    );
    let proxy = Proxy::start(&config);

    assert_eq!(proxy.admin_get("/").status, 401);
    assert_eq!(
        proxy.admin_get("/?token=wrong-token-wrong-token").status,
        401
    );
    assert_eq!(proxy.admin_get(&format!("/?token={TOKEN}")).status, 200);
    // Only the page and its stream take a token in the query: the JSON API wants the header.
    assert_eq!(
        proxy.admin_get(&format!("/status?token={TOKEN}")).status,
        401
    );
    let (_, refused) = open_stream(&proxy, "");
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    let (mut events, head) = open_stream(&proxy, &format!("?token={TOKEN}"));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(
        row(&next_event(&mut events), "locked.test")["state"],
        "stopped"
    );

    // `spawngate status` sends SPAWNGATE_ADMIN_TOKEN, and says what to do without it.
    let admin = format!("http://{}", proxy.admin_addr());
    let status = |token: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_spawngate"));
        command
            .args(["status", &admin])
            .env_remove("SPAWNGATE_ADMIN_TOKEN");
        if let Some(token) = token {
            command.env("SPAWNGATE_ADMIN_TOKEN", token);
        }
        command.output().unwrap()
    };
    let refused = status(None);
    assert_eq!(refused.status.code(), Some(1));
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("401") && why.contains("SPAWNGATE_ADMIN_TOKEN"),
        "{why}"
    );
    let shown = status(Some(TOKEN));
    assert!(shown.status.success());
    let table = String::from_utf8_lossy(&shown.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{table}");
    assert!(
        lines.iter().any(|l| l.starts_with("locked.test")
            && l.contains("backend")
            && l.contains("stopped")),
        "{table}"
    );
    assert!(
        table.ends_with("1 backend, config generation 1\n"),
        "{table}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Context switches of every thread of `pid` so far: each is a wakeup (or a preemption) of the process.
fn wakeups(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the proxy is running");
    let mut total = 0;
    for task in tasks.flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        for line in status.lines() {
            if let Some(n) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                total += n.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    total
}

#[test]
fn the_status_ticks_stop_when_the_last_stream_closes() {
    let proxy = Proxy::start(&echo_backend("quiet.test", free_port(), "", &[]));
    let (mut events, _) = open_stream(&proxy, "");
    next_event(&mut events);
    next_event(&mut events);
    drop(events);

    // The proxy learns of the close at its next tick at the latest; from then on nothing wakes it.
    // Measured in windows until one is quiet (the close), then the next 3 s must be quiet as well.
    let window = Duration::from_secs(1);
    let deadline = Instant::now() + WAIT;
    loop {
        let before = wakeups(proxy.pid());
        let quiet_until = Instant::now() + window;
        while Instant::now() < quiet_until {
            std::thread::park_timeout(quiet_until - Instant::now());
        }
        if wakeups(proxy.pid()) == before {
            break;
        }
        assert!(Instant::now() < deadline, "the proxy never went quiet");
    }
    let before = wakeups(proxy.pid());
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        std::thread::park_timeout(until - Instant::now());
    }
    assert_eq!(wakeups(proxy.pid()) - before, 0, "wakeups while idle");
}

#[test]
fn a_browser_draws_the_page_and_its_changes_from_the_stream() {
    let proxy = Proxy::start(&echo_backend("shown.test", free_port(), "", &[]));
    let Some(mut browser) = Browser::open(&format!("http://{}/", proxy.admin_addr())) else {
        return;
    };
    let rows = "document.getElementById('rows').innerText";
    let state_is = |want: &'static str| {
        move |rows: &serde_json::Value| {
            rows.as_str().is_some_and(|r| {
                let cells: Vec<&str> = r.split('\t').map(str::trim).collect();
                cells[0].starts_with("shown.test") && cells.get(1) == Some(&want)
            })
        }
    };
    let drawn = browser.wait_for(rows, WAIT, state_is("stopped"));
    assert!(state_is("stopped")(&drawn), "the row as drawn: {drawn}");
    let meta = browser.eval("document.getElementById('meta').innerText");
    assert!(
        meta.as_str()
            .is_some_and(|m| m.starts_with("1 backend · config generation 1")),
        "{meta}"
    );

    // A request starts the backend: the open page shows it, without a reload (which would lose this).
    browser.eval("window.sgMarker = 42");
    assert_eq!(get(proxy.addr(), "shown.test", "/").status, 200);
    let drawn = browser.wait_for(rows, WAIT, state_is("ready"));
    assert!(state_is("ready")(&drawn), "the row as drawn: {drawn}");
    assert_eq!(browser.eval("window.sgMarker"), 42, "the page was reloaded");
}
