//! The admin API: what each endpoint answers, given a snapshot of the backends. Sans-IO; the reactor
//! owns the admin sockets (`reactor::admin_conn`).
//!
//! | endpoint              | method | answer                                                            |
//! |-----------------------|--------|-------------------------------------------------------------------|
//! | `/health`             | GET    | `{"status":"ok"}`                                                 |
//! | `/version`            | GET    | `{"name":"spawngate","version":"X.Y.Z"}`                          |
//! | `/backends`           | GET    | `{"backends":[{"hostname","state","port","in_flight","status",`  |
//! |                       |        | `"process","last_exit","last_start_failure","started_at"}],"count":N}`|
//! | `/backends/{n}/logs`  | GET    | the last lines of output of backend, pool or session `n` (`logs`) |
//! | `/hosts`              | GET    | every host's compiled route table, and the catch-all hosts        |
//! | `/routes/explain`     | GET    | `?host=&path=&method=&header=N:v`: which route matches, and why   |
//! |                       |        | each earlier one did not                                          |
//! | `/pools`              | GET    | every pool and each of its instances: state, address, in flight   |
//! | `/ready/{hostname}`   | POST   | marks a starting backend ready (the backend's ready callback)     |
//! | `/ready/pool/{p}/{n}` | POST   | marks instance `n` of pool `p` ready                               |
//! | `/reload`             | POST   | re-reads the config file, like SIGHUP, and answers the outcome    |
//!
//! `/health` also reports the config generation (1 at start, +1 per successful reload) and the last reload
//! error, so an operator can see whether the running config is the file on disk.

mod logs;
mod pools;
mod routes;
pub mod status;

pub use logs::{logs_path, logs_response, BackendOutput, InstanceOutput};
pub use pools::{InstanceStatus, PoolStatus};

use crate::error::{push_json_string, ErrorCode, ProxyError};
use crate::msg::{Facts, State};
use crate::upstream::RouteTable;

/// One row of `/backends`.
pub struct BackendStatus<'a> {
    pub hostname: &'a str,
    pub state: State,
    pub port: u16,
    pub in_flight: usize,
    /// Its status line (`STATUS=`), process, last start, exit and start failure, shown under the same
    /// names as in `/pools`; `null` for what has not happened.
    pub facts: Facts,
}

/// What the proxy knows about its config, for `/health`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigStatus {
    pub generation: u64,
    pub last_reload_error: Option<String>,
}

/// The outcome of a reload, for `POST /reload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    Applied {
        generation: u64,
        added: usize,
        removed: usize,
        updated: usize,
    },
    Rejected {
        problems: Vec<String>,
    },
}

#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this complete response and close.
    Respond(Vec<u8>),
    /// Tell the supervisor this instance (`slot` of the backend or pool `hostname`) is ready, then send
    /// the response and close.
    ReadyCallback {
        hostname: String,
        slot: u32,
        response: Vec<u8>,
    },
    /// Reload the config, then answer with [`reload_response`].
    Reload,
}

pub fn handle<'a>(
    method: &[u8],
    path: &[u8],
    config: &ConfigStatus,
    backends: impl Iterator<Item = BackendStatus<'a>>,
    pools: &[PoolStatus],
    table: &RouteTable,
) -> Action {
    let (path, query) = match path.iter().position(|&b| b == b'?') {
        Some(at) => (&path[..at], &path[at + 1..]),
        None => (path, &b""[..]),
    };
    let get = method == b"GET" || method == b"HEAD";
    match path {
        b"/health" if get => Action::Respond(json_ok(&health_json(config))),
        b"/reload" if method == b"POST" => Action::Reload,
        b"/reload" => Action::Respond(error(ErrorCode::MethodNotAllowed, "use POST")),
        b"/version" if get => Action::Respond(json_ok(&format!(
            r#"{{"name":"spawngate","version":"{}"}}"#,
            env!("CARGO_PKG_VERSION")
        ))),
        b"/backends" if get => Action::Respond(json_ok(&backends_json(backends))),
        b"/hosts" if get => Action::Respond(json_ok(&routes::hosts_json(table))),
        b"/pools" if get => Action::Respond(json_ok(&pools::pools_json(pools))),
        b"/routes/explain" if get => match routes::explain_json(table, query) {
            Ok(body) => Action::Respond(json_ok(&body)),
            Err((code, message)) => Action::Respond(error(code, &message)),
        },
        b"/health" | b"/version" | b"/backends" | b"/hosts" | b"/pools" | b"/routes/explain" => {
            Action::Respond(error(ErrorCode::MethodNotAllowed, "use GET"))
        }
        _ => match path.strip_prefix(b"/ready/") {
            Some(rest) if method == b"POST" && rest.starts_with(b"pool/") => {
                match pools::ready_slot(&rest[5..], pools) {
                    Some((pool, slot)) => Action::ReadyCallback {
                        hostname: pool,
                        slot,
                        response: json_ok(r#"{"status":"ok"}"#),
                    },
                    None => Action::Respond(error(
                        ErrorCode::NotFound,
                        "no such pool instance (use /ready/pool/{pool}/{slot})",
                    )),
                }
            }
            Some(host) if method == b"POST" => {
                let hostname = String::from_utf8_lossy(host)
                    .trim_end_matches('.')
                    .to_ascii_lowercase();
                let mut backends = backends;
                if backends.any(|b| b.hostname == hostname) {
                    Action::ReadyCallback {
                        hostname,
                        slot: 0,
                        response: json_ok(r#"{"status":"ok"}"#),
                    }
                } else {
                    Action::Respond(error(
                        ErrorCode::UnknownHost,
                        &format!("no backend for host {hostname}"),
                    ))
                }
            }
            Some(_) => Action::Respond(error(ErrorCode::MethodNotAllowed, "use POST")),
            None => Action::Respond(error(ErrorCode::NotFound, "no such admin endpoint")),
        },
    }
}

fn backends_json<'a>(backends: impl Iterator<Item = BackendStatus<'a>>) -> String {
    let mut rows: Vec<BackendStatus<'a>> = backends.collect();
    rows.sort_by(|a, b| a.hostname.cmp(b.hostname));
    let mut out = String::from(r#"{"backends":["#);
    for (i, b) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"hostname":"#);
        push_json_string(&mut out, b.hostname);
        out.push_str(&format!(
            r#","state":"{}","port":{},"in_flight":{}"#,
            b.state.as_str(),
            b.port,
            b.in_flight
        ));
        pools::push_facts(&mut out, &b.facts);
        out.push('}');
    }
    out.push_str(&format!(r#"],"count":{}}}"#, rows.len()));
    out
}

fn health_json(config: &ConfigStatus) -> String {
    let mut out = format!(
        r#"{{"status":"ok","config_generation":{},"last_reload_error":"#,
        config.generation
    );
    match &config.last_reload_error {
        Some(e) => push_json_string(&mut out, e),
        None => out.push_str("null"),
    }
    out.push('}');
    out
}

/// The answer to `POST /reload`: 200 with the counts, or 400 with every problem in the file.
pub fn reload_response(outcome: &ReloadOutcome) -> Vec<u8> {
    match outcome {
        ReloadOutcome::Applied {
            generation,
            added,
            removed,
            updated,
        } => json_ok(&format!(
            r#"{{"status":"ok","config_generation":{generation},"added":{added},"removed":{removed},"updated":{updated}}}"#
        )),
        ReloadOutcome::Rejected { problems } => {
            let mut body = String::from(
                r#"{"code":"INVALID_CONFIG","message":"the config file was rejected; the running config stays","problems":["#,
            );
            for (i, p) in problems.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                push_json_string(&mut body, p);
            }
            body.push_str(r#"],"status":400}"#);
            let mut out = format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nX-Proxy-Error: INVALID_CONFIG\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            out.extend_from_slice(body.as_bytes());
            out
        }
    }
}

/// A JSON answer with any status (the session API's); a 4xx/5xx body is the error JSON, whose code also
/// goes in `X-Proxy-Error` like every proxy error.
pub fn json_reply(
    status: u16,
    body: &[u8],
    retry_after: Option<u64>,
    code: Option<&str>,
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nCache-Control: no-store\r\n",
        crate::error::reason_phrase(status),
        body.len()
    )
    .into_bytes();
    if let Some(code) = code {
        out.extend_from_slice(format!("X-Proxy-Error: {code}\r\n").as_bytes());
    }
    if let Some(secs) = retry_after {
        out.extend_from_slice(format!("Retry-After: {secs}\r\n").as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(body);
    out
}

fn json_ok(body: &str) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

pub fn error(code: ErrorCode, message: &str) -> Vec<u8> {
    ProxyError::new(code, message).to_http1(None, true, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<BackendStatus<'static>> {
        vec![
            BackendStatus {
                hostname: "b.localhost",
                state: State::Ready,
                port: 3001,
                in_flight: 2,
                facts: Facts {
                    status: Some("serving \"v2\"".to_string()),
                    process: Some("pid 42".to_string()),
                    started_at: Some(1_700_000_000),
                    last_exit: None,
                    last_start_failure: None,
                },
            },
            BackendStatus {
                hostname: "a.localhost",
                state: State::Stopped,
                port: 3000,
                in_flight: 0,
                facts: Facts {
                    last_exit: Some("status 3".to_string()),
                    last_start_failure: Some("exited before becoming ready".to_string()),
                    ..Facts::default()
                },
            },
        ]
    }

    fn body(action: &Action) -> String {
        let Action::Respond(bytes) = action else {
            panic!("expected a response")
        };
        let text = String::from_utf8(bytes.clone()).unwrap();
        text.split("\r\n\r\n").nth(1).unwrap().to_string()
    }

    #[test]
    fn backends_lists_sorted_rows_and_count() {
        let action = handle(
            b"GET",
            b"/backends",
            &ConfigStatus::default(),
            rows().into_iter(),
            &[],
            &RouteTable::default(),
        );
        assert_eq!(
            body(&action),
            r#"{"backends":[{"hostname":"a.localhost","state":"stopped","port":3000,"in_flight":0,"status":null,"process":null,"last_exit":"status 3","last_start_failure":"exited before becoming ready","started_at":null},{"hostname":"b.localhost","state":"ready","port":3001,"in_flight":2,"status":"serving \"v2\"","process":"pid 42","last_exit":null,"last_start_failure":null,"started_at":1700000000}],"count":2}"#
        );
    }

    #[test]
    fn ready_callback_for_known_and_unknown_hosts() {
        let action = handle(
            b"POST",
            b"/ready/B.localhost",
            &ConfigStatus::default(),
            rows().into_iter(),
            &[],
            &RouteTable::default(),
        );
        assert!(
            matches!(action, Action::ReadyCallback { ref hostname, .. } if hostname == "b.localhost")
        );
        let action = handle(
            b"POST",
            b"/ready/nope",
            &ConfigStatus::default(),
            rows().into_iter(),
            &[],
            &RouteTable::default(),
        );
        assert!(body(&action).contains("UNKNOWN_HOST"));
        let action = handle(
            b"GET",
            b"/ready/b.localhost",
            &ConfigStatus::default(),
            rows().into_iter(),
            &[],
            &RouteTable::default(),
        );
        assert!(body(&action).contains("METHOD_NOT_ALLOWED"));
    }

    #[test]
    fn unknown_path_is_404() {
        assert!(body(&handle(
            b"GET",
            b"/nope",
            &ConfigStatus::default(),
            rows().into_iter(),
            &[],
            &RouteTable::default(),
        ))
        .contains("\"status\":404"));
    }

    #[test]
    fn health_reports_generation_and_last_reload_error() {
        let status = ConfigStatus {
            generation: 3,
            last_reload_error: Some("bad \"port\"".into()),
        };
        let action = handle(
            b"GET",
            b"/health",
            &status,
            rows().into_iter(),
            &[],
            &RouteTable::default(),
        );
        assert_eq!(
            body(&action),
            r#"{"status":"ok","config_generation":3,"last_reload_error":"bad \"port\""}"#
        );
    }

    #[test]
    fn reload_is_post_only_and_reports_its_outcome() {
        assert_eq!(
            handle(
                b"POST",
                b"/reload",
                &ConfigStatus::default(),
                rows().into_iter(),
                &[],
                &RouteTable::default(),
            ),
            Action::Reload
        );
        let action = handle(
            b"GET",
            b"/reload",
            &ConfigStatus::default(),
            rows().into_iter(),
            &[],
            &RouteTable::default(),
        );
        assert!(body(&action).contains("METHOD_NOT_ALLOWED"));
        let ok = reload_response(&ReloadOutcome::Applied {
            generation: 2,
            added: 1,
            removed: 0,
            updated: 3,
        });
        let text = String::from_utf8(ok).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK"));
        assert!(text.ends_with(
            r#"{"status":"ok","config_generation":2,"added":1,"removed":0,"updated":3}"#
        ));
        let bad = reload_response(&ReloadOutcome::Rejected {
            problems: vec!["a.toml:3: port: bad".into()],
        });
        let text = String::from_utf8(bad).unwrap();
        assert!(text.starts_with("HTTP/1.1 400 Bad Request"));
        assert!(text.contains(r#""problems":["a.toml:3: port: bad"]"#));
    }
}
