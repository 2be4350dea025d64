//! The h2 worker on its own: a test plays the reactor (accepts, reads the first bytes, hands the socket
//! over, forwards lifecycle events) and the supervisor (receives `Start` commands), with real
//! `spawngate-echo` backends and the `h2` client.

mod support;

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::{mpsc, Arc, Weak};
use std::time::{Duration, Instant};

use http::Method;
use spawngate::h2::{self as worker, H2Handle, PoolLimits};
use spawngate::msg::{
    Activity, BackendEntry, BackendEvent, Command, Host, LifecycleEvent, Mailbox, StopReason,
};
use support::*;

/// Plays the reactor and the supervisor around one h2 worker.
struct Harness {
    handle: Option<Arc<H2Handle>>,
    addr: SocketAddr,
    commands: mpsc::Receiver<Command>,
    entries: Vec<BackendEntry>,
    _poll: mio::Poll,
}

impl Harness {
    /// `backends` is the `[backends]` part of a config (the `[server]` part is built in).
    fn start(backends: &str) -> Harness {
        let text = format!("[server]\nport = 0\nadmin_port = 0\n\n{backends}");
        let config = spawngate::config::parse(Path::new("h2-test.toml"), &text)
            .unwrap_or_else(|e| panic!("bad test config: {e:?}"));
        let entries: Vec<BackendEntry> = config
            .backends
            .iter()
            .map(|b| BackendEntry {
                config: b.clone(),
                activity: Arc::new(Activity::default()),
            })
            .collect();
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let (tx, commands) = mpsc::channel();
        let handle = worker::spawn(
            entries.clone(),
            Mailbox::new(tx, waker),
            spawngate::msg::Clock::new(),
            config.server.limits.clone(),
            PoolLimits::from(&config.server),
        )
        .unwrap();
        let handle = Arc::new(handle);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let weak = Arc::downgrade(&handle);
        std::thread::spawn(move || accept_and_hand_off(listener, weak));
        Harness {
            handle: Some(handle),
            addr,
            commands,
            entries,
            _poll: poll,
        }
    }

    fn handle(&self) -> &H2Handle {
        self.handle.as_ref().unwrap()
    }

    fn event(&self, host: &str, event: LifecycleEvent) {
        self.handle().backend_event(BackendEvent {
            host: Host::from(host),
            event,
        });
    }

    fn activity(&self, host: &str) -> Arc<Activity> {
        self.entries
            .iter()
            .find(|e| e.config.hostname == host)
            .map(|e| e.activity.clone())
            .unwrap()
    }

    /// The next command sent to the supervisor, within `wait`.
    fn next_command(&self, wait: Duration) -> Option<Command> {
        self.commands.recv_timeout(wait).ok()
    }

    /// Shuts the worker down and waits for its thread, at most `limit`.
    fn shutdown_and_join(&mut self, limit: Duration) {
        let handle = self.handle.take().unwrap();
        handle.shutdown();
        let started = Instant::now();
        let mut handle = handle;
        let owned = loop {
            match Arc::try_unwrap(handle) {
                Ok(owned) => break owned,
                Err(shared) => {
                    assert!(started.elapsed() < limit, "the acceptor kept the handle");
                    handle = shared;
                    std::thread::yield_now();
                }
            }
        };
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::spawn(move || {
            owned.join();
            let _ = done_tx.send(());
        });
        assert!(
            done_rx.recv_timeout(limit).is_ok(),
            "the h2 worker did not end within {limit:?} of shutdown"
        );
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if self.handle.is_some() && !std::thread::panicking() {
            self.shutdown_and_join(Duration::from_secs(40));
        }
    }
}

/// Accepts connections, reads their first bytes as the reactor would (whatever one read returns), and
/// hands them over.
fn accept_and_hand_off(listener: TcpListener, handle: Weak<H2Handle>) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let Some(handle) = handle.upgrade() else {
            return;
        };
        let mut first = vec![0u8; 16];
        let n = stream.read(&mut first).unwrap_or(0);
        first.truncate(n);
        let peer = stream.peer_addr().unwrap();
        stream.set_nonblocking(true).unwrap();
        handle.hand_off(stream, first, peer);
    }
}

fn echo_config(host: &str, port: u16, keys: &str) -> String {
    echo_backend(host, port, keys, &[])
}

/// A worker with one running echo backend for `ECHO_HOST`, already reported ready.
fn warm(keys: &str) -> (Harness, EchoServer) {
    let echo = EchoServer::start(&[]);
    let harness = Harness::start(&echo_config(ECHO_HOST, echo.port, keys));
    harness.event(ECHO_HOST, LifecycleEvent::Ready);
    (harness, echo)
}

#[test]
fn a_warm_backend_answers_with_proxy_headers() {
    let (harness, _echo) = warm("");
    block_on(async {
        let (client, _conn) = h2_connect(harness.addr).await;
        let response = h2_request(
            &client,
            Method::GET,
            "Echo.Test:8080",
            "/hello?x=1",
            &[("x-forwarded-for", "10.0.0.1"), ("x-custom", "yes")],
            None,
        )
        .await
        .unwrap();
        assert_eq!(response.status, 200, "{}", response.text());
        let json = response.json();
        assert_eq!(json["method"], "GET");
        assert_eq!(json["path"], "/hello?x=1");
        assert_eq!(json["version"], "HTTP/1.1");
        assert_eq!(
            echoed_header_values(&json, "host"),
            ["Echo.Test:8080"],
            "{json}"
        );
        assert_eq!(
            echoed_header_values(&json, "x-forwarded-for"),
            ["10.0.0.1, 127.0.0.1"]
        );
        assert_eq!(
            echoed_header_values(&json, "x-forwarded-host"),
            ["Echo.Test:8080"]
        );
        assert_eq!(echoed_header_values(&json, "x-forwarded-proto"), ["http"]);
        assert_eq!(echoed_header_values(&json, "x-custom"), ["yes"]);
        let id = echoed_header_values(&json, "x-request-id");
        assert_eq!(id.len(), 1);
        assert_eq!(response.header("x-request-id"), Some(id[0].as_str()));
        assert!(response.header("x-echo-pid").is_some());

        let kept = h2_request(
            &client,
            Method::GET,
            ECHO_HOST,
            "/",
            &[("x-request-id", "trace-42")],
            None,
        )
        .await
        .unwrap();
        assert_eq!(kept.header("x-request-id"), Some("trace-42"));
        assert_eq!(
            echoed_header_values(&kept.json(), "x-request-id"),
            ["trace-42"]
        );
    });
    assert_eq!(harness.activity(ECHO_HOST).in_flight(), 0);
}

#[test]
fn a_cold_backend_is_started_once_and_held_streams_are_released_when_ready() {
    let echo = EchoServer::start(&[]);
    let harness = Harness::start(&echo_config(ECHO_HOST, echo.port, ""));
    block_on(async {
        let (client, _conn) = h2_connect(harness.addr).await;
        let requests: Vec<_> = (0..5)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move { h2_get(&client, ECHO_HOST, &format!("/{i}")).await })
            })
            .collect();
        let start = tokio::task::spawn_blocking(move || {
            let first = harness.next_command(Duration::from_secs(10));
            assert!(
                matches!(&first, Some(Command::Start(host)) if &**host == ECHO_HOST),
                "expected a start, got {first:?}"
            );
            harness.event(ECHO_HOST, LifecycleEvent::Starting);
            // Only one start for all five streams.
            assert!(harness.next_command(Duration::from_millis(300)).is_none());
            harness.event(ECHO_HOST, LifecycleEvent::Ready);
            harness
        });
        for request in requests {
            let response = request.await.unwrap();
            assert_eq!(response.status, 200, "{}", response.text());
        }
        let harness = start.await.unwrap();
        assert_eq!(harness.activity(ECHO_HOST).in_flight(), 0);
    });
}

#[test]
fn a_failed_start_answers_held_streams_with_503() {
    let harness = Harness::start(&echo_config(ECHO_HOST, free_port(), ""));
    block_on(async {
        let (client, _conn) = h2_connect(harness.addr).await;
        let request = {
            let client = client.clone();
            tokio::spawn(async move { h2_get(&client, ECHO_HOST, "/").await })
        };
        let harness = tokio::task::spawn_blocking(move || {
            assert!(matches!(
                harness.next_command(Duration::from_secs(10)),
                Some(Command::Start(_))
            ));
            harness.event(
                ECHO_HOST,
                LifecycleEvent::StartFailed("exited with status 1".into()),
            );
            harness
        })
        .await
        .unwrap();
        let response = request.await.unwrap();
        assert_h2_proxy_error(&response, "BACKEND_START_FAILED", 503);
        drop(harness);
    });
}

#[test]
fn errors_stay_on_their_stream_while_siblings_succeed() {
    let echo = EchoServer::start(&[]);
    let dead_port = free_port();
    let config = format!(
        "{}{}",
        echo_config(ECHO_HOST, echo.port, ""),
        echo_config("dead.test", dead_port, "")
    );
    let harness = Harness::start(&config);
    harness.event(ECHO_HOST, LifecycleEvent::Ready);
    harness.event("dead.test", LifecycleEvent::Ready);
    block_on(async {
        let (client, _conn) = h2_connect(harness.addr).await;
        let mut tasks = Vec::new();
        for i in 0..30 {
            let client = client.clone();
            let host = match i % 3 {
                0 => ECHO_HOST,
                1 => "nowhere.test",
                _ => "dead.test",
            };
            tasks.push(tokio::spawn(async move {
                (host, h2_get(&client, host, "/").await)
            }));
        }
        for task in tasks {
            let (host, response) = task.await.unwrap();
            match host {
                ECHO_HOST => assert_eq!(response.status, 200),
                "nowhere.test" => assert_h2_proxy_error(&response, "UNKNOWN_HOST", 404),
                _ => assert_h2_proxy_error(&response, "CONNECTION_FAILED", 502),
            }
        }
        let bad_host = http::Request::builder()
            .uri("/")
            .header("host", "a b")
            .body(())
            .unwrap();
        let response = h2_send(&client, bad_host, None).await.unwrap();
        assert_h2_proxy_error(&response, "BAD_REQUEST", 400);
        let no_host = http::Request::builder().uri("/").body(()).unwrap();
        let response = h2_send(&client, no_host, None).await.unwrap();
        assert_h2_proxy_error(&response, "MISSING_HOST_HEADER", 400);
    });
    harness.event("dead.test", LifecycleEvent::Stopping(StopReason::Shutdown));
    block_on(async {
        let (client, _conn) = h2_connect(harness.addr).await;
        let response = h2_get(&client, "dead.test", "/").await;
        assert_h2_proxy_error(&response, "BACKEND_SHUTTING_DOWN", 503);
    });
}
