//! h2c through the real proxy binary: curl with prior knowledge on a cold backend, 250 streams on one
//! connection, in-flight accounting with resets and idle stop, GOAWAY on SIGTERM, and a Rapid Reset client
//! cut off while polite HTTP/2 and HTTP/1 clients carry on.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

fn in_flight(proxy: &Proxy) -> u64 {
    proxy.backend(ECHO_HOST)["in_flight"].as_u64().unwrap_or(0)
}

#[test]
fn curl_with_prior_knowledge_starts_a_cold_backend_and_is_answered() {
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("curl is not installed; skipping (CI installs it)");
        return;
    }
    let proxy = proxy_with_echo("", &[]);
    assert_eq!(proxy.state_of(ECHO_HOST), "stopped");
    for path in ["/cold", "/warm"] {
        let output = Command::new("curl")
            .args(["-sS", "-i", "--http2-prior-knowledge", "--max-time", "30"])
            .args(["-H", "Host: echo.test:8080"])
            .arg(format!("http://{}{path}", proxy.addr()))
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "curl failed: {output:?}");
        assert!(text.starts_with("HTTP/2 200"), "{text}");
        assert!(text.contains(&format!("\"path\":\"{path}\"")), "{text}");
        assert!(text.contains("[\"X-Forwarded-Proto\",\"http\"]"), "{text}");
    }
    assert_eq!(proxy.state_of(ECHO_HOST), "ready");
}

#[test]
fn two_hundred_fifty_streams_on_one_connection_are_all_answered() {
    let proxy = proxy_with_echo("", &[]);
    let addr = proxy.addr();
    block_on(async {
        let (client, _conn) = h2_connect(addr).await;
        let streams: Vec<_> = (0..250)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move {
                    h2_get(&client, ECHO_HOST, &format!("/slow?ms=200&i={i}")).await
                })
            })
            .collect();
        for (i, stream) in streams.into_iter().enumerate() {
            let response = stream.await.unwrap();
            assert_eq!(response.status, 200, "stream {i}: {}", response.text());
        }
    });
    assert!(wait_until(Duration::from_secs(5), || in_flight(&proxy) == 0));
}

/// Body size for the memory test: large enough that buffering it whole would show.
const HUGE: usize = 32 * 1024 * 1024;
/// Allowed growth of the proxy's resident memory while `HUGE` bodies pass both ways.
const MAX_RSS_GROWTH_KIB: u64 = 16 * 1024;

#[test]
fn huge_bodies_stream_both_ways_with_bounded_proxy_memory() {
    let proxy = proxy_with_echo("", &[]);
    let addr = proxy.addr();
    let pid = proxy.pid();
    assert_eq!(get(addr, ECHO_HOST, "/warm-up").status, 200);
    let baseline = rss_kib(pid).unwrap();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(baseline));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(rss) = rss_kib(pid) {
                    peak.fetch_max(rss, std::sync::atomic::Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let expected = bytes::Bytes::from((0..HUGE as u64).map(pattern_byte).collect::<Vec<u8>>());
    block_on(async {
        let (client, _conn) = h2_connect(addr).await;
        // Down: read in paced steps so the proxy has to hold its backend back.
        let request = http::Request::builder()
            .uri(format!(
                "http://{ECHO_HOST}/stream?bytes={HUGE}&chunk=65536"
            ))
            .body(())
            .unwrap();
        let mut ready = client.clone().ready().await.unwrap();
        let (response, _send) = ready.send_request(request, true).unwrap();
        let mut body = response.await.unwrap().into_body();
        let (mut received, mut since_pause) = (0usize, 0usize);
        while let Some(chunk) = body.data().await {
            let chunk = chunk.unwrap();
            let end = received + chunk.len();
            assert!(
                end <= HUGE && chunk == expected[received..end],
                "body differs near {received}"
            );
            received = end;
            since_pause += chunk.len();
            let _ = body.flow_control().release_capacity(chunk.len());
            if since_pause >= 4 * 1024 * 1024 {
                since_pause = 0;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        assert_eq!(received, HUGE);
        // Up and back down through /echo, without a declared length.
        let payload = expected.clone();
        let echoed = h2_request(
            &client,
            http::Method::POST,
            ECHO_HOST,
            "/echo",
            &[],
            Some(payload.clone()),
        )
        .await
        .unwrap();
        assert_eq!(echoed.status, 200);
        assert!(echoed.body == payload, "echoed body differs");
    });
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.join().unwrap();
    let growth = peak.load(std::sync::atomic::Ordering::Relaxed) - baseline;
    eprintln!("proxy RSS: baseline {baseline} KiB, growth {growth} KiB over two 32 MiB bodies");
    assert!(
        growth < MAX_RSS_GROWTH_KIB,
        "the proxy grew by {growth} KiB while 32 MiB bodies passed"
    );
}

#[test]
fn h2_streams_count_in_flight_until_they_end_or_are_reset() {
    let proxy = proxy_with_echo("idle_timeout_secs = 1", &[]);
    let addr = proxy.addr();
    block_on(async {
        let (client, _conn) = h2_connect(addr).await;
        assert_eq!(h2_get(&client, ECHO_HOST, "/").await.status, 200);
        // A long download holds the backend up: no idle stop while it runs.
        let request = http::Request::builder()
            .uri(format!("http://{ECHO_HOST}/stream?bytes={}", 1u64 << 34))
            .body(())
            .unwrap();
        let mut ready = client.clone().ready().await.unwrap();
        let (response, mut send) = ready.send_request(request, true).unwrap();
        let mut body = response.await.unwrap().into_body();
        let first = body.data().await.unwrap().unwrap();
        let _ = body.flow_control().release_capacity(first.len());
        // Twice, the second time past the 1 s idle timeout: the open stream must keep the backend up.
        let admin = proxy.admin_addr();
        let snapshots = tokio::task::spawn_blocking(move || {
            let first = get(admin, "localhost", "/backends").json();
            std::thread::sleep(Duration::from_millis(1500));
            [first, get(admin, "localhost", "/backends").json()]
        })
        .await
        .unwrap();
        for snapshot in &snapshots {
            let echo = &snapshot["backends"][0];
            assert_eq!(echo["in_flight"], 1, "{snapshot}");
            assert_eq!(echo["state"], "ready", "{snapshot}");
        }
        send.send_reset(h2::Reason::CANCEL);
        drop(body);
    });
    assert!(wait_until(Duration::from_secs(5), || in_flight(&proxy) == 0));
    proxy.wait_for_state(ECHO_HOST, "stopped", Duration::from_secs(10));
}

#[test]
fn sigterm_sends_goaway_and_open_streams_finish() {
    let mut proxy = proxy_with_echo("", &[]);
    let addr = proxy.addr();
    assert_eq!(get(addr, ECHO_HOST, "/warm-up").status, 200);
    block_on(async {
        let (client, conn) = h2_connect(addr).await;
        let slow = {
            let client = client.clone();
            tokio::spawn(async move { h2_get(&client, ECHO_HOST, "/slow?ms=1500").await })
        };
        let proxy_ref = &proxy;
        let deadline = Instant::now() + Duration::from_secs(10);
        while in_flight(proxy_ref) == 0 {
            assert!(Instant::now() < deadline, "the slow stream never started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        proxy_ref.signal(Signal::SIGTERM);
        let response = slow.await.unwrap();
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.text(), "slow done\n");
        let ended = tokio::time::timeout(Duration::from_secs(15), conn)
            .await
            .expect("the connection did not end after SIGTERM")
            .unwrap();
        assert!(ended.is_ok(), "connection ended with {ended:?}");
    });
    let status = proxy.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status}");
}

#[test]
fn a_rapid_reset_client_is_cut_off_and_others_carry_on() {
    let proxy = proxy_with_echo("", &[]);
    let addr = proxy.addr();
    assert_eq!(get(addr, ECHO_HOST, "/warm-up").status, 200);
    block_on(async {
        let (attacker, attacker_conn) = h2_connect(addr).await;
        let burst = tokio::spawn(rapid_reset_burst(attacker, ECHO_HOST));
        let (polite, _polite_conn) = h2_connect(addr).await;
        for i in 0..40 {
            let response = h2_get(&polite, ECHO_HOST, &format!("/polite/{i}")).await;
            assert_eq!(response.status, 200, "{}", response.text());
        }
        let ended = tokio::time::timeout(Duration::from_secs(20), attacker_conn)
            .await
            .expect("the attacking connection was not cut off")
            .unwrap();
        let err = ended.expect_err("the attacking connection ended cleanly");
        assert_eq!(err.reason(), Some(h2::Reason::ENHANCE_YOUR_CALM), "{err:?}");
        assert!(burst.await.unwrap() < RAPID_RESET_STREAMS);
        assert_eq!(h2_get(&polite, ECHO_HOST, "/after").await.status, 200);
    });
    assert_eq!(get(addr, ECHO_HOST, "/http1-after").status, 200);
    assert!(wait_until(Duration::from_secs(10), || in_flight(&proxy) == 0));
}
