//! `GET /metrics` after known traffic (HTTP/1 and h2c, an unknown host, a cold start): the counters say
//! exactly that, `promtool check metrics` accepts the page, and a real Prometheus server scraping the
//! admin port answers queries for the request counter and the cold-start histogram. Also
//! `Server-Timing: cold-start` on the response that waited, and only there.
//!
//! promtool and prometheus come from Debian's `prometheus` package (`.ci/run` installs it): without
//! them these tests fail under CI and are skipped elsewhere.

mod support;

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(30);

/// `GET /metrics`, checked for status and content type.
fn scrape(proxy: &Proxy) -> String {
    let response = proxy.admin_get("/metrics");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    response.text()
}

/// Every sample of the page, by its name and labels exactly as written.
fn samples(page: &str) -> HashMap<String, f64> {
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("name value");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

fn value(page: &str, series: &str) -> f64 {
    samples(page)
        .get(series)
        .copied()
        .unwrap_or_else(|| panic!("no sample {series} in\n{page}"))
}

/// Prometheus's tools, from Debian's package.
fn tool(name: &str) -> Option<&'static str> {
    let path = match name {
        "promtool" => "/usr/bin/promtool",
        _ => "/usr/bin/prometheus",
    };
    debian_tool(path, "prometheus")
}

fn echo(host: &str, keys: &str) -> String {
    echo_backend(host, free_port(), keys, &[("ECHO_START_DELAY_MS", "300")])
}

#[test]
fn counters_say_exactly_what_the_traffic_was_and_promtool_accepts_the_page() {
    let proxy = Proxy::start(&(echo("app.test", "") + &echo("other.test", "")));
    let cold = get(proxy.addr(), "app.test", "/first");
    assert_eq!(cold.status, 200, "{}", cold.text());
    let warm = get(proxy.addr(), "app.test", "/second");
    assert_eq!(warm.status, 200);
    let unknown = get(proxy.addr(), "nobody.test", "/");
    assert_eq!(unknown.status, 404);
    let h2 = block_on(async {
        let (client, _driver) = h2_connect(proxy.addr()).await;
        h2_get(&client, "app.test", "/third").await
    });
    assert_eq!(h2.status, 200);

    let app = "backend=\"app.test\"";
    // The h2 stream is counted when its task ends, which may be just after the client has its answer.
    let h2_counted = format!("spawngate_requests_total{{{app},protocol=\"h2\",class=\"2xx\"}}");
    assert!(wait_until(WAIT, || samples(&scrape(&proxy)).contains_key(&h2_counted)));
    let page = scrape(&proxy);
    let expected = [
        (
            format!("spawngate_requests_total{{{app},protocol=\"http1\",class=\"2xx\"}}"),
            2.0,
        ),
        (h2_counted, 1.0),
        (
            "spawngate_requests_total{protocol=\"http1\",class=\"4xx\",code=\"UNKNOWN_HOST\"}"
                .to_owned(),
            1.0,
        ),
        (format!("spawngate_cold_requests_total{{{app}}}"), 1.0),
        (format!("spawngate_backend_starts_total{{{app}}}"), 1.0),
        (
            format!("spawngate_backend_start_duration_seconds_count{{{app}}}"),
            1.0,
        ),
        (
            format!("spawngate_backend_start_duration_seconds_bucket{{{app},le=\"0.25\"}}"),
            0.0,
        ),
        (
            format!("spawngate_request_duration_seconds_count{{{app}}}"),
            3.0,
        ),
        (
            format!("spawngate_response_head_wait_seconds_count{{{app}}}"),
            3.0,
        ),
        (
            format!("spawngate_backend_instances{{{app},state=\"ready\"}}"),
            1.0,
        ),
        (
            "spawngate_backend_instances{backend=\"other.test\",state=\"stopped\"}".to_owned(),
            1.0,
        ),
        (
            "spawngate_backend_starts_total{backend=\"other.test\"}".to_owned(),
            0.0,
        ),
        (
            format!("spawngate_backend_start_failures_total{{{app}}}"),
            0.0,
        ),
        ("spawngate_config_generation".to_owned(), 1.0),
        ("spawngate_reloads_total{result=\"ok\"}".to_owned(), 0.0),
    ];
    for (series, want) in &expected {
        assert_eq!(value(&page, series), *want, "{series} in\n{page}");
    }
    let all = samples(&page);
    let app_requests: f64 = all
        .iter()
        .filter(|(k, _)| k.starts_with("spawngate_requests_total{") && k.contains(app))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(app_requests, 3.0, "no other request of app.test counted");
    assert!(value(&page, &format!("spawngate_sent_bytes_total{{{app}}}")) > 0.0);
    assert!(value(&page, "process_resident_memory_bytes") > 0.0);
    assert!(value(&page, "process_open_fds") > 0.0);
    assert!(value(&page, "process_start_time_seconds") > 1.6e9);

    // A reload is counted and moves the generation.
    assert_eq!(proxy.post_reload().status, 200);
    let page = scrape(&proxy);
    assert_eq!(value(&page, "spawngate_reloads_total{result=\"ok\"}"), 1.0);
    assert_eq!(value(&page, "spawngate_config_generation"), 2.0);

    let Some(promtool) = tool("promtool") else {
        return;
    };
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    use std::io::Write;
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(page.as_bytes())
        .expect("feed promtool");
    let out = check.wait_with_output().expect("promtool ends");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn server_timing_is_on_the_response_that_waited_for_a_start_only() {
    let proxy = Proxy::start(
        &(echo("app.test", "")
            + &echo("h2.test", "")
            + &echo("quiet.test", "server_timing = false")),
    );
    let cold = get(proxy.addr(), "app.test", "/");
    assert_eq!(cold.status, 200);
    let timing = cold
        .header("Server-Timing")
        .expect("Server-Timing after a cold start");
    let ms: u64 = timing
        .strip_prefix("cold-start;dur=")
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("Server-Timing: {timing}"));
    assert!(ms >= 300, "the backend took 300 ms to listen: {timing}");
    let warm = get(proxy.addr(), "app.test", "/");
    assert_eq!(warm.header("Server-Timing"), None, "not on a warm request");

    let (cold_h2, warm_h2) = block_on(async {
        let (client, _driver) = h2_connect(proxy.addr()).await;
        let cold = h2_get(&client, "h2.test", "/").await;
        let warm = h2_get(&client, "h2.test", "/").await;
        (cold, warm)
    });
    assert_eq!(cold_h2.status, 200);
    let timing = cold_h2.header("server-timing").expect("h2 Server-Timing");
    assert!(timing.starts_with("cold-start;dur="), "{timing}");
    assert_eq!(warm_h2.header("server-timing"), None);

    let quiet = get(proxy.addr(), "quiet.test", "/");
    assert_eq!(quiet.status, 200);
    assert_eq!(quiet.header("Server-Timing"), None, "server_timing = false");
}

/// Kills the Prometheus server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET /api/v1/query?query=...` on Prometheus: the result vector.
fn query(prometheus: std::net::SocketAddr, promql: &str) -> Vec<serde_json::Value> {
    let encoded: String = promql
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    if std::net::TcpStream::connect(prometheus).is_err() {
        return Vec::new(); // not listening yet
    }
    let response = get(
        prometheus,
        "localhost",
        &format!("/api/v1/query?query={encoded}"),
    );
    if response.status != 200 {
        return Vec::new();
    }
    let body = response.json();
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_prometheus_server_scrapes_the_admin_port() {
    let Some(prometheus) = tool("prometheus") else {
        return;
    };
    let proxy = Proxy::start(&echo("app.test", ""));
    assert_eq!(get(proxy.addr(), "app.test", "/").status, 200);

    let dir = TempDir::new("prometheus");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: spawngate\n    \
             static_configs:\n      - targets: ['{}']\n",
            proxy.admin_addr()
        ),
    )
    .expect("write prometheus.yml");
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("address").port()
    };
    let web = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
    let child = Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={web}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    let _server = Server(child);
    let addr = web.parse().expect("address");

    let requests = "spawngate_requests_total{backend=\"app.test\",class=\"2xx\"}";
    let found = wait_until(Duration::from_secs(60), || {
        query(addr, requests)
            .first()
            .is_some_and(|r| r["value"][1] == "1")
    });
    let log = || std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
    assert!(
        found,
        "Prometheus never had the request counter:\n{}",
        log()
    );
    let starts = query(
        addr,
        "spawngate_backend_start_duration_seconds_count{backend=\"app.test\"}",
    );
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert_eq!(starts[0]["value"][1], "1");
    let quantile = query(
        addr,
        "histogram_quantile(0.99, sum by (le) (spawngate_backend_start_duration_seconds_bucket))",
    );
    let p99: f64 = quantile[0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("a quantile");
    assert!(p99 > 0.25 && p99 <= 1.0, "p99 of one ~0.3 s start: {p99}");
}

#[test]
fn sessions_count_under_their_template_never_their_id() {
    use support::routing::Proto;
    use support::sessions::{create, echo_template, key_body, served};
    let proxy = Proxy::start(&echo_template("nb", 2, "idle_timeout_secs = 60", &[]));
    let sessions = [
        create(&proxy, "nb", &key_body("one")),
        create(&proxy, "nb", &key_body("two")),
    ];
    for s in &sessions {
        served(proxy.addr(), Proto::Http1, s, &[s.token_header()]);
    }
    let page = scrape(&proxy);
    assert_eq!(
        value(
            &page,
            "spawngate_requests_total{backend=\"nb\",protocol=\"http1\",class=\"2xx\"}"
        ),
        2.0
    );
    assert_eq!(
        value(&page, "spawngate_backend_starts_total{backend=\"nb\"}"),
        2.0
    );
    assert_eq!(
        value(&page, "spawngate_backend_instances_running{backend=\"nb\"}"),
        2.0
    );
    for s in &sessions {
        assert!(!page.contains(&s.id), "a session id in a label");
    }
}
