//! Requests held while their backend starts, against the real binary: a client that leaves gives its place
//! under `max_held_requests` back, a hold that runs out is 503 `BACKEND_START_FAILED` (closing the
//! connection only when the request asked for that), and shutdown answers held requests at once with 503
//! `BACKEND_SHUTTING_DOWN`. Each scenario over HTTP/1.1 and over h2c.
//!
//! "Slow to become ready" is a `spawngate-echo` whose `/health` fails while a file exists (the test makes
//! it ready by removing the file) or always fails (`ECHO_NEVER_HEALTHY`).

mod support;

use std::io;
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::client::{ResponseFuture, SendRequest};
use support::*;

/// A second backend that is always healthy, to show a connection is still usable after a refusal.
const OK_HOST: &str = "ok.test";

/// How long one step (a state change, a start) may take on a loaded machine before the test fails.
const STEP: Duration = Duration::from_secs(20);

fn server_table(extra: &str) -> String {
    format!("[server]\nport = 0\nadmin_port = 0\nbind = \"127.0.0.1\"\n{extra}\n\n")
}

/// True when the proxy has sent nothing (no answer, no close) on this connection yet. Only meaningful
/// before anything was read from the client (its buffer is empty then).
fn nothing_received(client: &Client) -> bool {
    let stream = client.stream();
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let peeked = stream.peek(&mut byte);
    stream.set_nonblocking(false).unwrap();
    matches!(peeked, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

fn held_get(proxy: &Proxy, path: &str, extra: &[&str]) -> Client {
    let mut client = proxy.client();
    client.send(&build_request("GET", ECHO_HOST, path, extra, b""));
    client
}

/// `max_held_requests = 2` and an echo backend that is not ready while `fail_file` exists.
fn proxy_with_gated_backend(fail_file: &std::path::Path) -> Proxy {
    Proxy::start(&format!(
        "{}{}",
        server_table("max_held_requests = 2"),
        echo_backend(
            ECHO_HOST,
            free_port(),
            "startup_timeout_secs = 60\nhealth_check_interval_ms = 50",
            &[
                ("ECHO_HEALTH_FAIL_FILE", fail_file.to_str().unwrap()),
                ("ECHO_LOG", "1"),
            ],
        )
    ))
}

// ---------------------------------------------------------------------------------------------------
// 1. A held request whose client leaves frees its place.

/// Two requests fill `max_held_requests = 2` and a third is refused; one held client hangs up, and the
/// next request is held in its place (and served once the backend is ready) while the limit still holds.
#[test]
fn a_held_request_whose_client_leaves_frees_its_place() {
    let dir = TempDir::new("held-leaves");
    let fail_file = dir.file("not-ready");
    std::fs::write(&fail_file, "").unwrap();
    let proxy = proxy_with_gated_backend(&fail_file);

    let a = held_get(&proxy, "/held/a", &[]);
    // The start is asked for by the first held request, so "starting" means `a` is held.
    proxy.wait_for_state(ECHO_HOST, "starting", STEP);
    // `b` is written before the connection of the request after it opens: the reactor reads it first.
    let mut b = held_get(&proxy, "/held/b", &[]);
    let refused = get(proxy.addr(), ECHO_HOST, "/held/c");
    assert_proxy_error(&refused, "TOO_MANY_WAITING_REQUESTS", 503);
    assert!(nothing_received(&a), "a held request was answered early");
    assert!(nothing_received(&b), "a held request was answered early");

    // The first client gives up while held. Its FIN reaches the proxy before the next connection opens.
    drop(a);
    let mut d = held_get(&proxy, "/held/d", &[]);
    // `d` took the free place: the limit is full again, so the one after it is refused...
    let refused = get(proxy.addr(), ECHO_HOST, "/held/e");
    assert_proxy_error(&refused, "TOO_MANY_WAITING_REQUESTS", 503);
    // ...and `d` itself (read by the proxy before `e`) was not refused: it has no answer yet.
    if !nothing_received(&d) {
        let early = d.read_response();
        panic!(
            "the request sent after a held client left was answered at once instead of held: {} {}",
            early.status,
            early.text()
        );
    }
    assert_eq!(proxy.state_of(ECHO_HOST), "starting");

    std::fs::remove_file(&fail_file).unwrap();
    for (client, path) in [(&mut b, "/held/b"), (&mut d, "/held/d")] {
        let response = client.read_response();
        assert_eq!(response.status, 200, "{path}: {}", response.text());
        assert_eq!(response.json()["path"], path);
    }
    // Nothing was sent to the backend for the client that left.
    assert!(proxy.wait_for_log("GET /held/d HTTP/1.1", STEP));
    assert!(proxy.wait_for_log("GET /held/b HTTP/1.1", STEP));
    assert!(
        !proxy.log_contains("GET /held/a HTTP/1.1"),
        "the request of a client that left was forwarded"
    );
    proxy.shut_down_leaving_nothing(STEP);
}

/// The same over h2c: a held stream the client resets gives its place to the next stream.
#[test]
fn a_held_h2_stream_the_client_resets_frees_its_place() {
    let dir = TempDir::new("held-h2-reset");
    let fail_file = dir.file("not-ready");
    std::fs::write(&fail_file, "").unwrap();
    let proxy = proxy_with_gated_backend(&fail_file);

    block_on(async {
        let (client, _conn) = h2_connect(proxy.addr()).await;
        let (a, mut a_send) = open_stream(&client, "/held/a").await;
        wait_for_state_async(&proxy, ECHO_HOST, "starting").await;
        let (mut b, _b_send) = open_stream(&client, "/held/b").await;
        // Streams of one connection are admitted in the order they were opened.
        let refused = h2_get(&client, ECHO_HOST, "/held/c").await;
        assert_h2_proxy_error(&refused, "TOO_MANY_WAITING_REQUESTS", 503);

        a_send.send_reset(h2::Reason::CANCEL);
        drop(a);
        let (mut d, _d_send) = open_stream(&client, "/held/d").await;
        let refused = h2_get(&client, ECHO_HOST, "/held/e").await;
        assert_h2_proxy_error(&refused, "TOO_MANY_WAITING_REQUESTS", 503);
        // The answer to `e` came after any answer to `d` (the worker admits in order and the connection
        // delivers in order), so a refused `d` would be ready now.
        for (name, stream) in [("b", &mut b), ("d", &mut d)] {
            if let Ok(early) = tokio::time::timeout(Duration::ZERO, &mut *stream).await {
                let early = h2_read_response(early.expect("stream")).await.unwrap();
                panic!(
                    "held stream {name} was answered at once: {} {}",
                    early.status,
                    early.text()
                );
            }
        }

        std::fs::remove_file(&fail_file).unwrap();
        for (stream, path) in [(b, "/held/b"), (d, "/held/d")] {
            let response = tokio::time::timeout(STEP, stream)
                .await
                .unwrap_or_else(|_| panic!("{path} was never answered"))
                .expect("response head");
            let response = h2_read_response(response).await.expect("response body");
            assert_eq!(response.status, 200, "{path}: {}", response.text());
            assert_eq!(response.json()["path"], path);
        }
    });
    assert!(proxy.wait_for_log("GET /held/d HTTP/1.1", STEP));
    assert!(
        !proxy.log_contains("GET /held/a HTTP/1.1"),
        "a reset stream was forwarded"
    );
    proxy.shut_down_leaving_nothing(STEP);
}

/// Sends a GET for `ECHO_HOST` and returns its response future without awaiting it.
async fn open_stream(
    client: &SendRequest<Bytes>,
    path: &str,
) -> (ResponseFuture, h2::SendStream<Bytes>) {
    let request = http::Request::builder()
        .uri(format!("http://{ECHO_HOST}{path}"))
        .body(())
        .unwrap();
    let mut ready = client.clone().ready().await.expect("connection ready");
    ready.send_request(request, true).expect("send request")
}

async fn wait_for_state_async(proxy: &Proxy, host: &str, state: &str) {
    let deadline = Instant::now() + STEP;
    while proxy.state_of(host) != state {
        assert!(
            Instant::now() < deadline,
            "{host} did not reach {state}: {}",
            proxy.backend(host)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------------
// 2. A hold that runs out.

/// An echo backend that never becomes healthy (1 s startup timeout) and an always healthy one.
fn proxy_with_never_ready_backend() -> Proxy {
    Proxy::start(&format!(
        "{}{}",
        echo_backend(
            ECHO_HOST,
            free_port(),
            "startup_timeout_secs = 1\nhealth_check_interval_ms = 50",
            &[("ECHO_NEVER_HEALTHY", "1")],
        ),
        echo_backend(OK_HOST, free_port(), "", &[])
    ))
}

/// Checks the two held requests' answers: both 503 `BACKEND_START_FAILED` after about `hold`; the one
/// that asked to close is closed, the keep-alive one serves another request.
fn assert_timed_out_holds(
    mut closing: Client,
    mut keep_alive: Client,
    sent: Instant,
    hold: Duration,
    message: &str,
) {
    for (which, client) in [("close", &mut closing), ("keep-alive", &mut keep_alive)] {
        let response = client.read_response();
        let took = sent.elapsed();
        assert_proxy_error(&response, "BACKEND_START_FAILED", 503);
        let text = response.json()["message"].as_str().unwrap().to_string();
        assert!(
            text.contains(message),
            "{which}: message {text:?} lacks {message:?}"
        );
        assert!(
            took >= hold.saturating_sub(Duration::from_millis(300)),
            "{which}: answered after {took:?}, before the hold of {hold:?} ran out"
        );
        assert!(
            took < hold + Duration::from_secs(8),
            "{which}: answered only after {took:?}"
        );
        assert_eq!(
            response.closes(),
            which == "close",
            "{which}: Connection field {:?}",
            response.headers_named("connection")
        );
    }
    assert!(
        closing.closed_by_peer_within(Duration::from_secs(5)),
        "the held `Connection: close` request's connection stayed open after its 503"
    );
    let next = keep_alive.get(OK_HOST, "/after-timeout");
    assert_eq!(
        next.status,
        200,
        "the keep-alive connection is usable: {}",
        next.text()
    );
    assert_eq!(next.json()["path"], "/after-timeout");
}

/// The supervisor gives up at `startup_timeout_secs` and its report answers the held requests (before
/// the hold's own expiry, 2 s later).
#[test]
fn a_failed_start_answers_held_requests_and_closes_only_connection_close_ones() {
    let proxy = proxy_with_never_ready_backend();
    let sent = Instant::now();
    let closing = held_get(&proxy, "/held-close", &["Connection: close"]);
    let keep_alive = held_get(&proxy, "/held-keep-alive", &[]);
    assert_timed_out_holds(
        closing,
        keep_alive,
        sent,
        Duration::from_secs(1),
        "could not be started",
    );
    proxy.shut_down_leaving_nothing(STEP);
}

/// The hold's own expiry: requests arrive while the backend's idle stop lasts (it ignores SIGTERM, so the
/// stop takes its whole grace period) and nothing is reported for them before startup timeout + 2 s.
#[test]
fn a_hold_that_runs_out_answers_and_closes_only_connection_close_requests() {
    let proxy = Proxy::start(&format!(
        "{}{}",
        shell_backend(
            ECHO_HOST,
            free_port(),
            "trap '' TERM; exec \"$ECHO_BIN\"",
            "idle_timeout_secs = 1\nstartup_timeout_secs = 2\nshutdown_grace_period_secs = 15",
            &[],
        ),
        echo_backend(OK_HOST, free_port(), "", &[])
    ));
    assert_eq!(get(proxy.addr(), ECHO_HOST, "/warm").status, 200);
    proxy.wait_for_state(ECHO_HOST, "stopping", STEP);
    let sent = Instant::now();
    let closing = held_get(&proxy, "/held-close", &["Connection: close"]);
    let keep_alive = held_get(&proxy, "/held-keep-alive", &[]);
    // startup_timeout + HOLD_SLACK; the stop (15 s of grace) is still under way then.
    assert_timed_out_holds(
        closing,
        keep_alive,
        sent,
        Duration::from_secs(4),
        "did not become ready in time",
    );
    proxy.shut_down_leaving_nothing(Duration::from_secs(40));
}

/// Over h2c a held stream whose start fails gets the same 503, and its connection serves other streams.
#[test]
fn a_held_h2_stream_whose_start_fails_is_503_and_the_connection_goes_on() {
    let proxy = proxy_with_never_ready_backend();
    block_on(async {
        let (client, _conn) = h2_connect(proxy.addr()).await;
        let sent = Instant::now();
        let response = h2_get(&client, ECHO_HOST, "/held").await;
        let took = sent.elapsed();
        assert_h2_proxy_error(&response, "BACKEND_START_FAILED", 503);
        assert!(
            took >= Duration::from_millis(700) && took < Duration::from_secs(9),
            "answered after {took:?}"
        );
        let next = h2_get(&client, OK_HOST, "/after-timeout").await;
        assert_eq!(next.status, 200, "{}", next.text());
        assert_eq!(next.json()["path"], "/after-timeout");
    });
    proxy.shut_down_leaving_nothing(STEP);
}

// ---------------------------------------------------------------------------------------------------
// 3. Shutdown answers held requests at once.

/// A backend that would be waited for a minute; SIGTERM must not wait for it.
fn proxy_with_slow_backend() -> Proxy {
    Proxy::start(&echo_backend(
        ECHO_HOST,
        free_port(),
        "startup_timeout_secs = 60",
        &[("ECHO_NEVER_HEALTHY", "1")],
    ))
}

/// What a held request's answer must look like, and how soon after SIGTERM it must come.
const SHUTDOWN_ANSWER_WITHIN: Duration = Duration::from_secs(10);

#[test]
fn held_requests_are_answered_503_backend_shutting_down_at_shutdown() {
    let proxy = proxy_with_slow_backend();
    let mut held = held_get(&proxy, "/held", &[]);
    proxy.wait_for_state(ECHO_HOST, "starting", STEP);
    assert!(nothing_received(&held));
    let reader = std::thread::spawn(move || {
        let response = held.try_read_response();
        let at = Instant::now();
        let closed = held.closed_by_peer_within(Duration::from_secs(5));
        (response, at, closed)
    });

    let signalled = Instant::now();
    proxy.shut_down_leaving_nothing(Duration::from_secs(30));
    let (response, at, closed) = reader.join().unwrap();
    let response =
        response.unwrap_or_else(|e| panic!("the held request got no answer at shutdown: {e}"));
    assert_proxy_error(&response, "BACKEND_SHUTTING_DOWN", 503);
    let after = at.saturating_duration_since(signalled);
    assert!(
        after < SHUTDOWN_ANSWER_WITHIN,
        "the held request was answered {after:?} after SIGTERM"
    );
    assert!(
        response.closes(),
        "a shutdown answer closes: {:?}",
        response.headers
    );
    assert!(
        closed,
        "the connection stayed open after the shutdown answer"
    );
}

#[test]
fn held_h2_streams_are_answered_503_backend_shutting_down_at_shutdown() {
    let proxy = proxy_with_slow_backend();
    let addr = proxy.addr();
    let (sent_tx, sent_rx) = std::sync::mpsc::channel();
    let client = std::thread::spawn(move || {
        block_on(async {
            let (client, _conn) = h2_connect(addr).await;
            let request = http::Request::builder()
                .uri(format!("http://{ECHO_HOST}/held"))
                .body(())
                .unwrap();
            let mut ready = client.clone().ready().await.unwrap();
            let (response, _send) = ready.send_request(request, true).unwrap();
            sent_tx.send(()).unwrap();
            let response = tokio::time::timeout(Duration::from_secs(90), response)
                .await
                .expect("the held stream was never answered")
                .expect("response head");
            let at = Instant::now();
            (h2_read_response(response).await.expect("body"), at)
        })
    });
    sent_rx.recv().unwrap();
    proxy.wait_for_state(ECHO_HOST, "starting", STEP);

    let signalled = Instant::now();
    proxy.shut_down_leaving_nothing(Duration::from_secs(30));
    let (response, at) = client.join().unwrap();
    assert_h2_proxy_error(&response, "BACKEND_SHUTTING_DOWN", 503);
    let after = at.saturating_duration_since(signalled);
    assert!(
        after < SHUTDOWN_ANSWER_WITHIN,
        "the held stream was answered {after:?} after SIGTERM"
    );
}
