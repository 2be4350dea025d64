//! The admin API: what each endpoint answers, given a snapshot of the backends. Sans-IO; the reactor
//! owns the admin sockets (`reactor::admin_conn`).
//!
//! | endpoint              | method | answer                                                            |
//! |-----------------------|--------|-------------------------------------------------------------------|
//! | `/health`             | GET    | `{"status":"ok"}`                                                 |
//! | `/version`            | GET    | `{"name":"spawngate","version":"X.Y.Z"}`                          |
//! | `/backends`           | GET    | `{"backends":[{"hostname","state","port","in_flight"}],"count":N}`|
//! | `/ready/{hostname}`   | POST   | marks a starting backend ready (the backend's ready callback)     |

use crate::error::{push_json_string, ErrorCode, ProxyError};
use crate::msg::State;

/// One row of `/backends`.
pub struct BackendStatus<'a> {
    pub hostname: &'a str,
    pub state: State,
    pub port: u16,
    pub in_flight: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this complete response and close.
    Respond(Vec<u8>),
    /// Tell the supervisor this backend is ready, then send the response and close.
    ReadyCallback { hostname: String, response: Vec<u8> },
}

pub fn handle<'a>(
    method: &[u8],
    path: &[u8],
    backends: impl Iterator<Item = BackendStatus<'a>>,
) -> Action {
    let path = path.split(|&b| b == b'?').next().unwrap_or(path);
    let get = method == b"GET" || method == b"HEAD";
    match path {
        b"/health" if get => Action::Respond(json_ok(r#"{"status":"ok"}"#)),
        b"/version" if get => Action::Respond(json_ok(&format!(
            r#"{{"name":"spawngate","version":"{}"}}"#,
            env!("CARGO_PKG_VERSION")
        ))),
        b"/backends" if get => Action::Respond(json_ok(&backends_json(backends))),
        b"/health" | b"/version" | b"/backends" => {
            Action::Respond(error(ErrorCode::MethodNotAllowed, "use GET"))
        }
        _ => match path.strip_prefix(b"/ready/") {
            Some(host) if method == b"POST" => {
                let hostname = String::from_utf8_lossy(host)
                    .trim_end_matches('.')
                    .to_ascii_lowercase();
                let mut backends = backends;
                if backends.any(|b| b.hostname == hostname) {
                    Action::ReadyCallback {
                        hostname,
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
            r#","state":"{}","port":{},"in_flight":{}}}"#,
            b.state.as_str(),
            b.port,
            b.in_flight
        ));
    }
    out.push_str(&format!(r#"],"count":{}}}"#, rows.len()));
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
            },
            BackendStatus {
                hostname: "a.localhost",
                state: State::Stopped,
                port: 3000,
                in_flight: 0,
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
        let action = handle(b"GET", b"/backends", rows().into_iter());
        assert_eq!(
            body(&action),
            r#"{"backends":[{"hostname":"a.localhost","state":"stopped","port":3000,"in_flight":0},{"hostname":"b.localhost","state":"ready","port":3001,"in_flight":2}],"count":2}"#
        );
    }

    #[test]
    fn ready_callback_for_known_and_unknown_hosts() {
        let action = handle(b"POST", b"/ready/B.localhost", rows().into_iter());
        assert!(
            matches!(action, Action::ReadyCallback { ref hostname, .. } if hostname == "b.localhost")
        );
        let action = handle(b"POST", b"/ready/nope", rows().into_iter());
        assert!(body(&action).contains("UNKNOWN_HOST"));
        let action = handle(b"GET", b"/ready/b.localhost", rows().into_iter());
        assert!(body(&action).contains("METHOD_NOT_ALLOWED"));
    }

    #[test]
    fn unknown_path_is_404() {
        assert!(body(&handle(b"GET", b"/nope", rows().into_iter())).contains("\"status\":404"));
    }
}
