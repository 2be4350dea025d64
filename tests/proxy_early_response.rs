//! A backend that answers before it has read the request body (an upload refused up front) and then
//! closes: the client still gets that answer, and nothing is reused afterwards.

mod support;

use std::io::Write;
use std::time::Duration;

use support::*;

const UPLOAD: usize = 8 * 1024 * 1024;

#[test]
fn an_answer_sent_before_the_body_was_read_reaches_the_client() {
    let proxy = proxy_with_echo("", &[]);
    // Warm the backend so the test is about forwarding, not starting.
    assert_eq!(get(proxy.addr(), ECHO_HOST, "/warmup").status, 200);

    let mut client = proxy.client();
    let head = format!(
        "POST /reject-early HTTP/1.1\r\nHost: {ECHO_HOST}\r\nContent-Length: {UPLOAD}\r\n\r\n"
    );
    client.send(head.as_bytes());
    let mut writer = client.stream().try_clone().unwrap();
    // The backend never reads this; the proxy must stop pushing it and still deliver the answer.
    let upload = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..UPLOAD / chunk.len() {
            if writer.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let response = client.read_response();
    assert_eq!(response.status, 413, "{}", response.text());
    assert_eq!(response.text(), "rejected before reading the body\n");
    assert!(
        client.closed_by_peer_within(Duration::from_secs(5)),
        "the connection carried an unfinished upload, so it must close"
    );
    let _ = upload.join();

    // The proxy is fine afterwards and nothing is left in flight.
    assert_eq!(get(proxy.addr(), ECHO_HOST, "/after").status, 200);
    assert!(wait_until(Duration::from_secs(5), || proxy
        .backend(ECHO_HOST)["in_flight"]
        == 0));
}
