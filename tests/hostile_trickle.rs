//! Slow senders: heads trickled in small pieces. Many trickling connections must not delay a normal
//! client (slowloris), and a head that grows a byte at a time must cost the proxy work in proportion to
//! its bytes, not to its size at every read: parsing the whole head again on each read would let a slow
//! sender buy reactor time far beyond the bytes it sends.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::recorder::{warm, Recorder};
use support::*;

const HOST: &str = "rec.test";

/// CPU time (user + system) the process has used so far, from `/proc/PID/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // USER_HZ is 100 on every Linux this runs on.
    Duration::from_millis(ticks * 10)
}

#[test]
fn slowloris_does_not_delay_a_normal_client() {
    const TRICKLERS: usize = 300;
    let recorder = Recorder::ok();
    let proxy = recorder.proxy(HOST, "header_read_timeout_secs = 30");
    warm(&proxy, HOST);
    let mut tricklers: Vec<TcpStream> = (0..TRICKLERS)
        .map(|_| {
            let mut s = TcpStream::connect(proxy.addr()).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: rec.test\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trickle_stop = stop.clone();
    let trickler = std::thread::spawn(move || {
        while !trickle_stop.load(std::sync::atomic::Ordering::Relaxed) {
            for s in &mut tricklers {
                let _ = s.write_all(b"a");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        tricklers
    });
    let mut worst = Duration::ZERO;
    let mut client = Client::connect(proxy.addr());
    for i in 0..30 {
        let started = Instant::now();
        assert_eq!(client.get(HOST, &format!("/normal/{i}")).status, 200);
        worst = worst.max(started.elapsed());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let tricklers = trickler.join().unwrap();
    assert!(
        worst < Duration::from_secs(2),
        "worst latency {worst:?} under slowloris"
    );
    drop(tricklers);
}

/// Starts a head of about `size` bytes on each of `CONNECTIONS` connections, trickles `ROUNDS` more
/// bytes into each one write at a time, completes every head and checks each is answered. Returns the
/// proxy's CPU time per trickled byte.
fn cpu_per_trickled_byte(proxy: &Proxy, size: usize) -> Duration {
    const CONNECTIONS: usize = 2;
    const ROUNDS: usize = 1000;
    let filler: String = (0..size / 720)
        .map(|i| format!("X-Filler-{i:02}: {}\r\n", "f".repeat(700)))
        .collect();
    let mut senders: Vec<Client> = (0..CONNECTIONS)
        .map(|i| {
            let mut client = Client::connect(proxy.addr());
            let start = format!("GET /trickled/{i} HTTP/1.1\r\nHost: {HOST}\r\n{filler}X-Slow: ");
            client.send(start.as_bytes());
            client
        })
        .collect();
    // A request behind those on the same reactor: the starts have been read.
    assert_eq!(get(proxy.addr(), HOST, "/settled").status, 200);

    let before = cpu_time(proxy.pid());
    for _ in 0..ROUNDS {
        for client in &mut senders {
            client.send(b"a");
        }
        // Paced so that the proxy sees most bytes in reads of their own, as from a real slow sender.
        std::thread::sleep(Duration::from_millis(1));
    }
    for (i, client) in senders.iter_mut().enumerate() {
        client.send(b"\r\nConnection: close\r\n\r\n");
        let response = client.read_response();
        assert_eq!(
            response.status,
            200,
            "trickled request {i}: {}",
            response.text()
        );
    }
    let spent = cpu_time(proxy.pid()) - before;
    spent / (CONNECTIONS * ROUNDS) as u32
}

#[test]
fn a_byte_into_a_large_head_costs_a_read_not_a_parse_of_the_head() {
    let recorder = Recorder::ok();
    let proxy = recorder.proxy(HOST, "header_read_timeout_secs = 120");
    warm(&proxy, HOST);
    let small = cpu_per_trickled_byte(&proxy, 0);
    let large = cpu_per_trickled_byte(&proxy, 60 * 1024);
    eprintln!(
        "proxy CPU per trickled byte: {small:?} into a small head, {large:?} into a 60 KB one"
    );
    // A wake-up and a one-byte read cost some µs (more in a debug build); parsing a 60 KB head again on
    // every read, as the proxy once did, costs hundreds.
    assert!(
        large < Duration::from_micros(150),
        "a byte into a 60 KB head costs {large:?} (into a small head {small:?})"
    );
}
