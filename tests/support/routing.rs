//! One request over either protocol, reduced to what route-table tests look at: status, a few fields,
//! the body, and (for forwarded requests) what the echo backend saw.

use std::net::SocketAddr;

use bytes::Bytes;
use http::Method;

use super::client::{build_request, Client};
use super::h2client::{block_on, h2_connect, h2_request, H2_STEP_DEADLINE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Http1,
    H2c,
}

/// Both protocols, for tests that must give the same answers over each.
pub const PROTOCOLS: [Proto; 2] = [Proto::Http1, Proto::H2c];

#[derive(Debug, Clone)]
pub struct Reply {
    pub proto: Proto,
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{:?}: not JSON ({e}): {}", self.proto, self.text()))
    }

    /// The path the echo backend received (panics when the echo did not answer).
    pub fn echoed_path(&self) -> String {
        assert_eq!(self.status, 200, "{self:?} {}", self.text());
        let json = self.json();
        json["path"]
            .as_str()
            .unwrap_or_else(|| panic!("{:?}: no echoed path: {json}", self.proto))
            .to_string()
    }

    /// A field the echo backend received, by name (case-insensitive).
    pub fn echoed_header(&self, name: &str) -> Option<String> {
        let json = self.json();
        json["headers"].as_array()?.iter().find_map(|pair| {
            let pair = pair.as_array()?;
            let n = pair.first()?.as_str()?;
            n.eq_ignore_ascii_case(name)
                .then(|| pair.get(1)?.as_str().map(str::to_string))
                .flatten()
        })
    }

    /// Which echo process answered.
    pub fn echo_pid(&self) -> Option<u32> {
        self.header("x-echo-pid").and_then(|v| v.parse().ok())
    }
}

/// One request on a fresh connection: `method http://{host}{path}` with extra `headers`.
pub fn ask(
    addr: SocketAddr,
    proto: Proto,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    match proto {
        Proto::Http1 => {
            let lines: Vec<String> = headers
                .iter()
                .map(|(n, v)| format!("{n}: {v}"))
                .chain(std::iter::once("Connection: close".to_string()))
                .collect();
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            let mut client = Client::connect(addr);
            client.send(&build_request(method, host, path, &lines, b""));
            let response = if method == "HEAD" {
                client.read_head_response()
            } else {
                client.read_response()
            };
            Reply {
                proto,
                status: response.status,
                headers: response
                    .headers
                    .into_iter()
                    .map(|(n, v)| (n.to_ascii_lowercase(), v))
                    .collect(),
                body: response.body,
            }
        }
        Proto::H2c => block_on(async {
            let step = async {
                let (client, _driver) = h2_connect(addr).await;
                let method = Method::from_bytes(method.as_bytes()).expect("a method");
                h2_request(&client, method, host, path, headers, None::<Bytes>).await
            };
            let response = tokio::time::timeout(H2_STEP_DEADLINE, step)
                .await
                .unwrap_or_else(|_| panic!("h2c request to {addr} timed out"))
                .unwrap_or_else(|e| panic!("h2c request failed: {e}"));
            Reply {
                proto,
                status: response.status.as_u16(),
                headers: response
                    .headers
                    .iter()
                    .map(|(n, v)| {
                        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                        (n.as_str().to_string(), v)
                    })
                    .collect(),
                body: response.body,
            }
        }),
    }
}

/// `GET` with no extra fields.
pub fn ask_get(addr: SocketAddr, proto: Proto, host: &str, path: &str) -> Reply {
    ask(addr, proto, "GET", host, path, &[])
}
