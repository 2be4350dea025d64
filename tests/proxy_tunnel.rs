//! HTTP Upgrade: the handshake is forwarded, then bytes flow both ways; an open tunnel counts as
//! in-flight, so it keeps its backend from being stopped for idleness.

mod support;

use std::io::Read;
use std::time::Duration;

use support::*;

fn open_tunnel(proxy: &Proxy) -> Client {
    let mut client = proxy.client();
    client.send(&build_request(
        "GET",
        ECHO_HOST,
        "/upgrade",
        &["Connection: Upgrade", "Upgrade: echo-test"],
        b"",
    ));
    let (status, headers) = client.read_head();
    assert_eq!(status, 101, "{headers:?}");
    assert!(
        headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("upgrade") && v == "echo-test"),
        "{headers:?}"
    );
    client
}

fn round_trip(client: &mut Client, payload: &[u8]) {
    client.send(payload);
    let mut back = vec![0u8; payload.len()];
    client.reader().read_exact(&mut back).unwrap();
    assert!(back == payload, "the tunnel changed the bytes");
}

#[test]
fn an_upgraded_connection_relays_bytes_both_ways() {
    let proxy = proxy_with_echo("", &[]);
    let mut client = open_tunnel(&proxy);
    round_trip(&mut client, b"hello through the tunnel");
    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i % 253) as u8).collect();
    let mut writer = client.stream().try_clone().unwrap();
    let payload = big.clone();
    let sender =
        std::thread::spawn(move || std::io::Write::write_all(&mut writer, &payload).unwrap());
    let mut back = vec![0u8; big.len()];
    client.reader().read_exact(&mut back).unwrap();
    sender.join().unwrap();
    assert!(back == big, "1 MiB through the tunnel differs");
}

#[test]
fn an_open_tunnel_is_in_flight_and_prevents_idle_stop() {
    let proxy = proxy_with_echo("idle_timeout_secs = 1", &[]);
    let pid = echo_pid(&get(proxy.addr(), ECHO_HOST, "/"));
    let mut client = open_tunnel(&proxy);
    assert!(
        wait_until(Duration::from_secs(5), || proxy.backend(ECHO_HOST)
            ["in_flight"]
            == 1),
        "an open tunnel is not counted: {}",
        proxy.backend(ECHO_HOST)
    );
    // Three idle timeouts with the tunnel open but quiet.
    let stopped = wait_until(Duration::from_secs(3), || {
        proxy.state_of(ECHO_HOST) != "ready"
    });
    assert!(!stopped, "the backend was stopped with a tunnel open");
    assert!(pid_alive(pid));
    round_trip(&mut client, b"still here");

    drop(client);
    assert!(wait_until(Duration::from_secs(5), || proxy
        .backend(ECHO_HOST)["in_flight"]
        == 0));
    proxy.wait_for_state(ECHO_HOST, "stopped", Duration::from_secs(10));
    assert!(wait_until(Duration::from_secs(5), || !pid_alive(pid)));
}
