//! HTTP/1 and h2c side by side: one request over each protocol, reduced to what the two must agree on
//! (status, `X-Proxy-Error`, whether `Retry-After` is there) plus what tells backend instances apart.

use std::net::SocketAddr;

use super::client::{get, Response};
use super::h2client::{block_on, h2_connect, h2_get, H2Response, H2_STEP_DEADLINE};
use super::Proxy;

/// What one client saw.
#[derive(Debug, Clone)]
pub struct Answer {
    pub protocol: &'static str,
    pub status: u16,
    /// `X-Proxy-Error`.
    pub error: Option<String>,
    pub retry_after: Option<String>,
    /// `X-Echo-Pid`: which echo backend instance answered.
    pub echo_pid: Option<u32>,
    pub body: String,
}

impl Answer {
    fn from_http1(response: &Response) -> Answer {
        Answer {
            protocol: "HTTP/1.1",
            status: response.status,
            error: response.header("x-proxy-error").map(str::to_string),
            retry_after: response.header("retry-after").map(str::to_string),
            echo_pid: response.header("x-echo-pid").and_then(|v| v.parse().ok()),
            body: response.text(),
        }
    }

    fn from_h2(response: &H2Response) -> Answer {
        Answer {
            protocol: "h2c",
            status: response.status.as_u16(),
            error: response.header("x-proxy-error").map(str::to_string),
            retry_after: response.header("retry-after").map(str::to_string),
            echo_pid: response.header("x-echo-pid").and_then(|v| v.parse().ok()),
            body: response.text(),
        }
    }

    /// What HTTP/1 and h2c must agree on: status, error code, and whether a `Retry-After` is sent.
    pub fn verdict(&self) -> (u16, Option<&str>, bool) {
        (
            self.status,
            self.error.as_deref(),
            self.retry_after.is_some(),
        )
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{self:?}: the body is not JSON ({e})"))
    }

    /// The echo backend instance that answered; panics when the answer did not come from one.
    pub fn pid(&self) -> u32 {
        self.echo_pid
            .unwrap_or_else(|| panic!("not answered by an echo backend: {self:?}"))
    }
}

/// `GET http://{host}{path}` over HTTP/1.1 on a fresh connection.
pub fn http1_answer(addr: SocketAddr, host: &str, path: &str) -> Answer {
    Answer::from_http1(&get(addr, host, path))
}

/// `GET http://{host}{path}` over h2c on a fresh connection.
///
/// A fresh connection matters: the reactor hands it to the h2 worker through the same queue as the
/// backend reports and reloads it forwards, so everything the reactor had applied before the connection
/// was made (and the admin API showed) has reached the h2 worker before this request.
pub fn h2c_answer(addr: SocketAddr, host: &str, path: &str) -> Answer {
    block_on(async {
        let (client, _driver) = tokio::time::timeout(H2_STEP_DEADLINE, h2_connect(addr))
            .await
            .unwrap_or_else(|_| panic!("h2c connection to {addr} timed out"));
        Answer::from_h2(&h2_get(&client, host, path).await)
    })
}

/// One HTTP/1.1 request, then one h2c request, each on a fresh connection.
pub fn both(proxy: &Proxy, host: &str, path: &str) -> (Answer, Answer) {
    (
        http1_answer(proxy.addr(), host, path),
        h2c_answer(proxy.addr(), host, path),
    )
}

/// The two protocols answered alike: same status, same `X-Proxy-Error`, `Retry-After` on both or neither.
pub fn assert_alike(http1: &Answer, h2c: &Answer) {
    assert_eq!(
        http1.verdict(),
        h2c.verdict(),
        "HTTP/1.1 and h2c answered differently:\n  HTTP/1.1: {http1:?}\n  h2c:      {h2c:?}"
    );
}

/// The proxy's own JSON error `code` with `status`, with or without `Retry-After`.
pub fn assert_refused(answer: &Answer, code: &str, status: u16, retry_after: bool) {
    assert_eq!(
        (answer.status, answer.error.as_deref()),
        (status, Some(code)),
        "{} expected {status} {code}: {answer:?}",
        answer.protocol
    );
    let json = answer.json();
    assert_eq!(json["code"], code, "{}: {json}", answer.protocol);
    assert_eq!(json["status"], status, "{}: {json}", answer.protocol);
    assert_eq!(
        answer.retry_after.is_some(),
        retry_after,
        "{}: Retry-After {} expected: {answer:?}",
        answer.protocol,
        if retry_after { "was" } else { "was not" }
    );
    if let Some(value) = &answer.retry_after {
        assert!(
            value.parse::<u64>().is_ok_and(|secs| secs >= 1),
            "{}: Retry-After {value:?} is not a positive number of seconds",
            answer.protocol
        );
    }
}

/// A 200 from an echo backend that saw `path`; returns the instance's pid.
pub fn assert_echoed(answer: &Answer, path: &str) -> u32 {
    assert_eq!(
        answer.status, 200,
        "{} expected 200: {answer:?}",
        answer.protocol
    );
    assert_eq!(
        answer.json()["path"],
        path,
        "{}: {answer:?}",
        answer.protocol
    );
    answer.pid()
}
