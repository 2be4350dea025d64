//! HTTP/2 with prior knowledge (h2c) from a real `h2` client: routing by `:authority`, many concurrent
//! streams on one connection, bodies both ways, proxy errors; and `Upgrade: h2c` answered over HTTP/1.1.

mod support;

use std::net::SocketAddr;

use bytes::Bytes;
use support::*;

/// A status, the response fields, and the whole body.
type H2Response = (u16, http::HeaderMap, Vec<u8>);

async fn read_body(response: http::Response<h2::RecvStream>) -> H2Response {
    let (head, mut body) = response.into_parts();
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("body chunk");
        // Hand the window back or the stream stalls once the initial window is used up.
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    (head.status.as_u16(), head.headers, data)
}

async fn connect(addr: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

async fn request(
    client: &h2::client::SendRequest<Bytes>,
    method: &str,
    authority: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> H2Response {
    let mut client = client.clone().ready().await.expect("connection ready");
    let request = http::Request::builder()
        .method(method)
        .uri(format!("http://{authority}{path}"))
        .body(())
        .unwrap();
    let (response, mut send) = client
        .send_request(request, body.is_none())
        .expect("send request");
    if let Some(body) = body {
        // Whole-body sends are fine here: the bodies are small and h2 buffers them against the window.
        send.send_data(Bytes::from(body), true).expect("send body");
    }
    read_body(response.await.expect("response head")).await
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn h2c_requests_are_routed_and_answered() {
    let proxy = proxy_with_echo("", &[]);
    runtime().block_on(async {
        let client = connect(proxy.addr()).await;
        let (status, headers, body) = request(&client, "GET", ECHO_HOST, "/h2?x=1", None).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["path"], "/h2?x=1");
        assert_eq!(
            json["version"], "HTTP/1.1",
            "forwarded to the backend as HTTP/1.1"
        );
        assert!(headers.contains_key("x-request-id"));

        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
        let (status, _, echoed) =
            request(&client, "POST", ECHO_HOST, "/echo", Some(payload.clone())).await;
        assert_eq!(status, 200);
        assert!(echoed == payload, "h2 body round trip differs");

        let (status, headers, body) = request(&client, "GET", "nobody.test", "/", None).await;
        assert_eq!(status, 404);
        assert_eq!(
            headers.get("x-proxy-error").map(|v| v.as_bytes()),
            Some(&b"UNKNOWN_HOST"[..])
        );
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["code"], "UNKNOWN_HOST");
    });
}

#[test]
fn many_concurrent_h2_streams_share_one_connection_and_one_start() {
    let dir = TempDir::new("h2-streams");
    let start_log = dir.file("starts.log");
    let proxy = proxy_with_echo(
        "",
        &[
            ("ECHO_START_LOG", start_log.to_str().unwrap()),
            ("ECHO_START_DELAY_MS", "200"),
        ],
    );
    runtime().block_on(async {
        let client = connect(proxy.addr()).await;
        let streams: Vec<_> = (0..100)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move {
                    request(&client, "GET", ECHO_HOST, &format!("/s/{i}"), None).await
                })
            })
            .collect();
        for (i, stream) in streams.into_iter().enumerate() {
            let (status, _, body) = stream.await.unwrap();
            assert_eq!(
                status,
                200,
                "stream {i}: {}",
                String::from_utf8_lossy(&body)
            );
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(json["path"], format!("/s/{i}"));
        }
    });
    assert_eq!(
        start_log_pids(&start_log).len(),
        1,
        "one backend start for all streams"
    );
}

#[test]
fn an_h2c_upgrade_request_is_answered_over_http1() {
    let proxy = proxy_with_echo("", &[]);
    let mut client = proxy.client();
    let response = client.request(
        "GET",
        ECHO_HOST,
        "/upgrade-h2c",
        &[
            "Connection: Upgrade, HTTP2-Settings",
            "Upgrade: h2c",
            "HTTP2-Settings: AAMAAABkAAQAAP__",
        ],
        b"",
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["path"], "/upgrade-h2c");
    assert_eq!(client.get(ECHO_HOST, "/still-http1").status, 200);
}
