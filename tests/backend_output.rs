//! What local backends write on stdout and stderr: in the proxy's log under the backend's name (and the
//! instance of a pool), kept per instance for `GET /backends/{name}/logs`, drained however much is
//! written, its pipes closed when the program is gone; and `/backends` tells how the last run ended.

mod support;

use std::time::Duration;

use support::pools::{echo_pool, free_ports, wait_states};
use support::*;

/// Starts and stops on a loaded 2-core machine; generous.
const WAIT: Duration = Duration::from_secs(30);

/// The text lines of `GET /backends/{name}/logs`.
fn log_lines(proxy: &Proxy, name: &str) -> Vec<String> {
    let response = proxy.admin_get(&format!("/backends/{name}/logs"));
    assert_eq!(response.status, 200, "{}", response.text());
    response.text().lines().map(str::to_string).collect()
}

/// The texts of one stream in `/logs` lines (`TIME [instance=N ]STREAM: text`), in order.
fn stream_texts(lines: &[String], stream: &str) -> Vec<String> {
    let marker = format!(" {stream}: ");
    lines
        .iter()
        .filter_map(|l| l.split_once(&marker).map(|(_, text)| text.to_string()))
        .collect()
}

fn wait_for_logged(proxy: &Proxy, name: &str, text: &str) -> Vec<String> {
    let mut last = Vec::new();
    let seen = wait_until(WAIT, || {
        last = log_lines(proxy, name);
        last.iter().any(|l| l.contains(text))
    });
    assert!(seen, "{text:?} never in /backends/{name}/logs: {last:#?}");
    last
}

#[test]
fn output_goes_to_the_log_under_the_backends_name_and_to_its_logs_endpoint() {
    let script = "echo out-1; echo err-1 >&2; echo out-2; echo err-2 >&2; \
                  printf '\\377bad utf8\\n'; exec \"$ECHO_BIN\"";
    let config = shell_backend("talk.test", free_port(), script, "", &[]);
    let proxy = Proxy::start(&config);
    assert_eq!(get(proxy.addr(), "talk.test", "/").status, 200);

    for (stream, level, text) in [
        ("stdout", "INFO", "out-1"),
        ("stderr", "WARN", "err-1"),
        ("stdout", "INFO", "out-2"),
        ("stderr", "WARN", "err-2"),
    ] {
        let needle = format!("process] hostname=talk.test stream={stream}: {text}");
        assert!(proxy.wait_for_log(&needle, WAIT), "{needle:?} not logged");
        let line = proxy
            .log_lines()
            .into_iter()
            .find(|l| l.ends_with(&needle))
            .unwrap();
        assert!(line.contains(level), "{line}");
    }

    let lines = wait_for_logged(&proxy, "talk.test", "listening on 127.0.0.1");
    assert_eq!(
        stream_texts(&lines, "stdout"),
        vec!["out-1", "out-2", "\u{FFFD}bad utf8"]
    );
    let stderr = stream_texts(&lines, "stderr");
    assert_eq!(stderr[..2], ["err-1", "err-2"]);
    assert!(stderr[2].starts_with("spawngate-echo: pid "), "{stderr:?}");
    // Each line: an RFC 3339 UTC time, the stream, the text.
    assert!(
        lines[0].len() > 24 && lines[0].as_bytes()[10] == b'T' && lines[0][..24].ends_with('Z'),
        "{}",
        lines[0]
    );

    let json = proxy
        .admin_get("/backends/talk.test/logs?format=json")
        .json();
    assert_eq!(json["name"], "talk.test");
    let first = &json["instances"][0]["lines"][0];
    assert_eq!(first["stream"], "stdout");
    assert_eq!(first["text"], "out-1");
    assert!(first["unix_ms"]
        .as_u64()
        .is_some_and(|ms| ms > 1_600_000_000_000));

    let unknown = proxy.admin_get("/backends/nope.test/logs");
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["code"], "NOT_FOUND");

    let row = proxy.backend("talk.test");
    assert!(row["started_at"].as_u64().is_some(), "{row}");
    assert!(row["process"]
        .as_str()
        .is_some_and(|p| p.starts_with("pid ")));
    assert_eq!(row["last_exit"], serde_json::Value::Null);
}

#[test]
fn a_pools_instances_are_labelled_with_their_slot() {
    let base = free_ports(2);
    let config = echo_pool(
        "chat",
        &format!("port = {base}\nreplicas = 2\nmin_running = 2"),
    );
    let proxy = Proxy::start(&config);
    wait_states(&proxy, "chat", &["ready", "ready"]);
    for slot in 0..2u16 {
        let needle = format!("hostname=chat instance={slot} stream=stderr: spawngate-echo: pid ");
        assert!(proxy.wait_for_log(&needle, WAIT), "{needle:?} not logged");
        let listening = format!("listening on 127.0.0.1:{}", base + slot);
        let lines = wait_for_logged(&proxy, "chat", &listening);
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!(" instance={slot} stderr: "))
                    && l.ends_with(&listening)),
            "{lines:#?}"
        );
    }
}

#[test]
fn a_backend_that_crashes_shows_its_last_words_and_how_it_ended() {
    let script = "echo 'loading config'; echo 'fatal: no config.yml' >&2; \
                  printf 'last words, no newline' >&2; exit 3";
    let config = shell_backend("crash.test", free_port(), script, "", &[]);
    let proxy = Proxy::start(&config);
    let response = get(proxy.addr(), "crash.test", "/");
    assert_eq!(response.status, 503, "{}", response.text());

    let lines = wait_for_logged(&proxy, "crash.test", "last words, no newline");
    assert_eq!(stream_texts(&lines, "stdout"), vec!["loading config"]);
    assert_eq!(
        stream_texts(&lines, "stderr"),
        vec!["fatal: no config.yml", "last words, no newline"]
    );
    assert!(proxy.wait_for_log(
        "hostname=crash.test stream=stderr: last words, no newline",
        WAIT
    ));
    let row = proxy.backend("crash.test");
    assert_eq!(row["last_exit"], "status 3", "{row}");
    assert!(
        row["last_start_failure"]
            .as_str()
            .is_some_and(|why| why.contains("status 3")),
        "{row}"
    );
    assert!(row["started_at"].as_u64().is_some(), "{row}");
}

/// Open descriptors of `pid`.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

#[test]
fn each_run_s_pipes_are_closed_once_it_has_stopped() {
    let script = "echo started; exec \"$ECHO_BIN\"";
    let config = shell_backend(
        "cycle.test",
        free_port(),
        script,
        "idle_timeout_secs = 1",
        &[],
    );
    let proxy = Proxy::start(&config);
    let cycle = || {
        assert_eq!(get(proxy.addr(), "cycle.test", "/").status, 200);
        proxy.wait_for_state("cycle.test", "stopped", WAIT);
    };
    // The first run starts the output thread; from then on a run leaves nothing open.
    cycle();
    let baseline = fd_count(proxy.pid());
    for _ in 0..3 {
        cycle();
        let settled = wait_until(WAIT, || fd_count(proxy.pid()) <= baseline);
        assert!(
            settled,
            "{} descriptors open after a run, {baseline} before",
            fd_count(proxy.pid())
        );
    }
    let starts = wait_for_logged(&proxy, "cycle.test", "started");
    assert_eq!(stream_texts(&starts, "stdout").len(), 4, "{starts:#?}");
}

#[test]
fn a_flood_of_output_neither_grows_the_proxy_nor_stops_the_backend() {
    let dir = TempDir::new("flood");
    let done = dir.path().join("flood-done");
    // 45 MB in lines of 100,000 bytes (each logged cut at 8 KiB), then 50,000 short lines (~1 MB):
    // written as fast as the pipe takes them, while the backend serves.
    let script = "( head -c 45000000 /dev/zero | tr '\\0' x | fold -w 100000; \
                    seq 1 50000 | sed 's/^/short line /'; echo flood-end; touch \"$DONE\" ) & \
                  exec \"$ECHO_BIN\"";
    let done_path = done.display().to_string();
    let config = shell_backend(
        "flood.test",
        free_port(),
        script,
        "",
        &[("DONE", done_path.as_str())],
    );
    let proxy = Proxy::start(&config);
    let before = rss_kib(proxy.pid()).expect("the proxy's RSS");
    let mut peak = before;
    let mut served = 0;
    let finished = wait_until(Duration::from_secs(120), || {
        let response = get(proxy.addr(), "flood.test", "/");
        assert_eq!(response.status, 200, "{}", response.text());
        served += 1;
        peak = peak.max(rss_kib(proxy.pid()).unwrap_or(0));
        done.exists()
    });
    assert!(
        finished,
        "the flood never finished: its writes were blocked"
    );
    assert!(served > 0);
    let lines = wait_for_logged(&proxy, "flood.test", "flood-end");
    let stdout = stream_texts(&lines, "stdout");
    assert_eq!(
        stdout[stdout.len() - 2..],
        ["short line 50000", "flood-end"],
        "the last lines, in order"
    );
    assert!(lines.len() <= 200, "{} lines kept", lines.len());
    let cut =
        proxy.count_log(|l| l.contains("stream=stdout: xxxx") && l.ends_with("longer than 8 KiB]"));
    assert!(cut > 0, "no cut line logged");
    // The tail is 64 KiB, the reads 64 KiB at a time: the flood passes through, it is not kept.
    let grown = peak.saturating_sub(before);
    assert!(
        grown < 32 * 1024,
        "RSS grew by {grown} KiB during a 46 MB flood ({before} KiB before)"
    );
    assert_eq!(get(proxy.addr(), "flood.test", "/").status, 200);
}
