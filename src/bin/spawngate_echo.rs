//! `spawngate-echo`: a dependency-free HTTP/1.1 server for demos and tests. Thread per connection,
//! keep-alive, fixed-length and chunked request bodies.
//!
//! Listens on 127.0.0.1:$PORT (`--port N` overrides; `ECHO_BIND` changes the address, e.g. 0.0.0.0 in a
//! container), or on a unix-domain socket at `$SPAWNGATE_SOCKET` (`--socket PATH` overrides; either one
//! takes precedence over a port). A socket file left by an earlier run is removed first, unless something
//! still listens on it. Everything below works the same on either.
//!
//! | path | answer |
//! |---|---|
//! | `GET /health` | 200 `ok` (see the knobs below) |
//! | `POST`/`PUT /echo` | the request body back, streamed, framed like the request |
//! | `/stream?bytes=N[&chunked=1][&chunk=SIZE]` | N bytes, byte i = i % 251 |
//! | `/slow?ms=N` | 200 after N ms |
//! | `/status?code=N` | status N |
//! | `/close` | 200 with `Connection: close`, then closes |
//! | `/exit` | 200, then the process exits with status 0 |
//! | `/upgrade` with `Upgrade: X` | 101, then every byte received is sent back until the client closes |
//! | `GET /ws[?describe=1]` (WebSocket) | 101; messages echoed, pings answered, close echoed; `describe=1` first sends the request as JSON |
//! | `GET /ws-flood?bytes=N[&message=SIZE]` | 101, then N bytes of binary messages without reading, close 1000 |
//! | `/ws-refuse` | 400, whatever the request asks for |
//! | anything else | 200 JSON: method, path, version, headers (as received), body_len, pid; `X-Echo-Pid` |
//!
//! Startup knobs (environment): `ECHO_START_LOG=<path>` appends `<pid>\n` per start;
//! `ECHO_EXIT_AT_START=<code>` exits at once; `ECHO_START_DELAY_MS=<n>` waits before listening;
//! `ECHO_LISTEN_LOG=<path>` appends the time it started listening (microseconds since the epoch);
//! `ECHO_NEVER_HEALTHY=1` makes `/health` 503; `ECHO_HEALTH_FAIL_FILE=<path>` makes `/health` 500 while the
//! file exists; `ECHO_HEALTH_DELAY_MS=<n>` makes `/health` 503 for n ms after it listens;
//! `ECHO_READY_CALLBACK=1` makes `/health` 503 and POSTs to `$SERVERLESS_PROXY_READY_URL` once listening;
//! `ECHO_NOTIFY=1` sends `READY=1` (and `STATUS=$ECHO_STATUS`, if set) to `$NOTIFY_SOCKET` once listening,
//! and `WATCHDOG=1` every half `$WATCHDOG_USEC`; `ECHO_STOPPING_AFTER_MS=<n>` sends `STOPPING=1` n ms after
//! listening (and goes on serving until it is stopped); `ECHO_ACCEPT_DELAY_MS=<n>` waits n ms after listening
//! before the first `accept`; `ECHO_DROP_MS=<n>` accepts and closes every connection without a byte for n
//! ms after listening (a port forwarder in front of a booting program), and the listen log then holds the
//! moment that ends; `ECHO_ACCEPT_LOG=<path>` appends the time of the first accept (microseconds
//! since the epoch); `ECHO_LOG=1` prints each request line. SIGTERM ends the process (default action); to
//! ignore it, run under `sh -c 'trap "" TERM; exec spawngate-echo'`.
//!
//! Socket activation: with `LISTEN_FDS=1` and `LISTEN_PID` = its own pid (the systemd convention) it
//! serves on the inherited listener at descriptor 3, TCP or unix-domain, instead of binding one.
//!
//! `main` below is the startup, knob by knob in the order they act. The rest, in `spawngate_echo/`:
//! `listen` where it listens and opening that; `serve` the accept loop and each connection's requests;
//! `http` heads and bodies; `routes` what each path answers; `ws`, `ws_accept`, `ws_frame` and
//! `ws_message` the WebSocket endpoints; `ready` the ready callback and `sd_notify`; `knobs` reading the
//! environment and appending to the log files.

// The crate root of a binary looks for modules beside itself, so point at this binary's own folder.
#[path = "spawngate_echo/http.rs"]
mod http;
#[path = "spawngate_echo/knobs.rs"]
mod knobs;
#[path = "spawngate_echo/listen.rs"]
mod listen;
#[path = "spawngate_echo/ready.rs"]
mod ready;
#[path = "spawngate_echo/routes.rs"]
mod routes;
#[path = "spawngate_echo/serve.rs"]
mod serve;
#[path = "spawngate_echo/ws.rs"]
mod ws;
#[path = "spawngate_echo/ws_accept.rs"]
mod ws_accept;
#[path = "spawngate_echo/ws_frame.rs"]
mod ws_frame;
#[path = "spawngate_echo/ws_message.rs"]
mod ws_message;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use knobs::{append_line, delay_from_env, env_flag, micros_since_epoch, record_start};
use routes::{HealthMode, Settings};

fn main() -> ExitCode {
    let pid = std::process::id();
    if let Ok(path) = std::env::var("ECHO_START_LOG") {
        record_start(&path, pid);
    }
    if let Ok(code) = std::env::var("ECHO_EXIT_AT_START") {
        eprintln!("spawngate-echo: exiting at start with status {code}, as asked");
        std::process::exit(code.trim().parse().unwrap_or(1));
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let place = match listen::place_from(
        &args,
        std::env::var("SPAWNGATE_SOCKET").ok(),
        std::env::var("PORT").ok(),
    ) {
        Ok(place) => place,
        Err(e) => {
            eprintln!("spawngate-echo: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(delay) = delay_from_env("ECHO_START_DELAY_MS") {
        std::thread::sleep(delay);
    }
    let ready_callback = env_flag("ECHO_READY_CALLBACK");
    let health = if env_flag("ECHO_NEVER_HEALTHY") || ready_callback {
        HealthMode::NeverHealthy
    } else if let Ok(path) = std::env::var("ECHO_HEALTH_FAIL_FILE") {
        HealthMode::FailWhileFileExists(PathBuf::from(path))
    } else if let Some(delay) = delay_from_env("ECHO_HEALTH_DELAY_MS") {
        HealthMode::FailUntil(std::time::Instant::now() + delay)
    } else {
        HealthMode::Healthy
    };
    let settings = Arc::new(Settings {
        pid,
        health,
        log_requests: env_flag("ECHO_LOG"),
    });
    let listener = match listen::open(pid, place) {
        Ok(listener) => listener,
        Err(code) => return code,
    };
    if let Some(span) = delay_from_env("ECHO_DROP_MS") {
        serve::drop_connections_for(&listener, span);
    }
    if let Ok(path) = std::env::var("ECHO_LISTEN_LOG") {
        // Microseconds since the Unix epoch: how long a proxy took from here to a client's answer.
        append_line(&path, &micros_since_epoch());
    }
    if env_flag("ECHO_NOTIFY") {
        let status = std::env::var("ECHO_STATUS")
            .map(|s| format!("\nSTATUS={s}"))
            .unwrap_or_default();
        ready::sd_notify(&format!("READY=1{status}"));
        ready::keep_watchdog_fed();
    }
    if let Some(delay) = delay_from_env("ECHO_STOPPING_AFTER_MS") {
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            ready::sd_notify("STOPPING=1");
        });
    }
    if ready_callback {
        match std::env::var("SERVERLESS_PROXY_READY_URL") {
            Ok(url) => {
                std::thread::spawn(move || ready::announce(&url));
            }
            Err(_) => eprintln!(
                "spawngate-echo: ECHO_READY_CALLBACK set but no SERVERLESS_PROXY_READY_URL"
            ),
        }
    }
    if let Some(delay) = delay_from_env("ECHO_ACCEPT_DELAY_MS") {
        // Connections meanwhile wait in the listener's backlog, as they would for a slow boot.
        std::thread::sleep(delay);
    }
    let accept_log = std::env::var("ECHO_ACCEPT_LOG").ok();
    serve::run(&listener, &settings, accept_log);
    ExitCode::SUCCESS
}
