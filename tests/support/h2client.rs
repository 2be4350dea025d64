//! An HTTP/2 prior-knowledge client for the tests, on the `h2` crate and a current-thread tokio runtime.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use http::{HeaderMap, Method, Request, StatusCode};
use tokio::net::TcpStream;

/// How long any one h2 test step may take before the test fails instead of hanging.
pub const H2_STEP_DEADLINE: Duration = Duration::from_secs(30);

/// Runs `test` on a current-thread runtime with I/O and timers.
pub fn block_on<F: Future>(test: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(test)
}

/// Opens an h2c connection (prior knowledge) and drives it in a background task. The task's handle
/// resolves with the connection's end (an error for a GOAWAY with an error code).
pub async fn h2_connect(
    addr: SocketAddr,
) -> (
    SendRequest<Bytes>,
    tokio::task::JoinHandle<Result<(), h2::Error>>,
) {
    let tcp = TcpStream::connect(addr)
        .await
        .expect("connect to the proxy");
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    let driver = tokio::spawn(connection);
    (client, driver)
}

/// A complete response.
#[derive(Debug)]
pub struct H2Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: Option<HeaderMap>,
}

impl H2Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Sends one request (`http://{host}{path}`) with optional extra headers and body, and reads the whole
/// response.
pub async fn h2_request(
    client: &SendRequest<Bytes>,
    method: Method,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Bytes>,
) -> Result<H2Response, h2::Error> {
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("http://{host}{path}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(()).expect("request");
    h2_send(client, request, body).await
}

/// Sends a request built by the caller, with an optional body, and reads the whole response.
pub async fn h2_send(
    client: &SendRequest<Bytes>,
    request: Request<()>,
    body: Option<Bytes>,
) -> Result<H2Response, h2::Error> {
    let mut client = client.clone().ready().await?;
    let (response, mut send) = client.send_request(request, body.is_none())?;
    // Both at once: a backend may answer (or echo) before the whole body is up, and a client that only
    // reads after sending could deadlock against flow control.
    let upload = async {
        match body {
            Some(body) => send_body(&mut send, body).await,
            None => Ok(()),
        }
    };
    let download = async { h2_read_response(response.await?).await };
    let (uploaded, response) = tokio::join!(upload, download);
    let response = response?;
    uploaded?;
    Ok(response)
}

/// Sends a body as flow control allows, then ends the stream.
pub async fn send_body(send: &mut h2::SendStream<Bytes>, mut body: Bytes) -> Result<(), h2::Error> {
    while !body.is_empty() {
        send.reserve_capacity(body.len());
        let mut available = send.capacity();
        while available == 0 {
            available = match std::future::poll_fn(|cx| send.poll_capacity(cx)).await {
                Some(result) => result?,
                None => return Err(h2::Error::from(h2::Reason::CANCEL)),
            };
        }
        let chunk = body.split_to(available.min(body.len()));
        send.send_data(chunk, false)?;
    }
    send.send_data(Bytes::new(), true)
}

/// Reads a response's body (releasing flow control as it goes) and trailers.
pub async fn h2_read_response(
    response: http::Response<h2::RecvStream>,
) -> Result<H2Response, h2::Error> {
    let (parts, mut stream) = response.into_parts();
    let mut body = Vec::new();
    while let Some(chunk) = stream.data().await {
        let chunk = chunk?;
        body.extend_from_slice(&chunk);
        let _ = stream.flow_control().release_capacity(chunk.len());
    }
    let trailers = stream.trailers().await?;
    Ok(H2Response {
        status: parts.status,
        headers: parts.headers,
        body,
        trailers,
    })
}

/// `GET http://{host}{path}` on an existing connection; panics on a stream error.
pub async fn h2_get(client: &SendRequest<Bytes>, host: &str, path: &str) -> H2Response {
    let request = h2_request(client, Method::GET, host, path, &[], None);
    tokio::time::timeout(H2_STEP_DEADLINE, request)
        .await
        .unwrap_or_else(|_| panic!("GET {host}{path} timed out"))
        .unwrap_or_else(|e| panic!("GET {host}{path} failed: {e}"))
}

/// Asserts the proxy's JSON error with this code and status on an h2 response.
pub fn assert_h2_proxy_error(response: &H2Response, code: &str, status: u16) {
    assert_eq!(
        response.status.as_u16(),
        status,
        "expected {status} {code}, got {} {:?} {}",
        response.status,
        response.headers,
        response.text()
    );
    assert_eq!(response.header("x-proxy-error"), Some(code));
    assert_eq!(response.header("content-type"), Some("application/json"));
    let json = response.json();
    assert_eq!(json["code"], code, "{json}");
    assert_eq!(json["status"], status, "{json}");
    assert!(response.header("x-request-id").is_some());
}

/// Streams a Rapid Reset attacker opens at the most: bounded, so the burst stops by itself.
pub const RAPID_RESET_STREAMS: u32 = 5_000;

/// A Rapid Reset burst (CVE-2023-44487): opens streams for a slow path of `host` and resets each one
/// right after sending it, until the connection refuses or [`RAPID_RESET_STREAMS`] were sent. Returns how
/// many went out.
pub async fn rapid_reset_burst(attacker: SendRequest<Bytes>, host: &str) -> u32 {
    for i in 0..RAPID_RESET_STREAMS {
        let request = Request::builder()
            .uri(format!("http://{host}/slow?ms=2000&i={i}"))
            .body(())
            .unwrap();
        let Ok(mut ready) = attacker.clone().ready().await else {
            return i;
        };
        let Ok((_response, mut send)) = ready.send_request(request, true) else {
            return i;
        };
        send.send_reset(h2::Reason::CANCEL);
        if i % 16 == 0 {
            // Let the proxy accept some streams before their resets arrive, as a real attacker
            // spreading the burst over many packets would.
            tokio::task::yield_now().await;
        }
    }
    RAPID_RESET_STREAMS
}
