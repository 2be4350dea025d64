//! Cold starts without socket activation, seen from outside with real processes: the supervisor looks
//! the port up in the kernel's socket table every quarter or half millisecond while the program boots,
//! so a held request is answered within a few milliseconds of the program's `listen`, over HTTP/1 and
//! h2c alike; a program whose port accepts and closes while it boots (a port forwarder in front of it) is
//! knocked on as fast; and those looks stop when the start ends, so an idle proxy does not wake.

mod support;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::cold::{after_logged, backends_per_protocol, now_micros, protocols};
use support::*;

/// Times the supervisor thread of `pid` went to sleep and was woken (its voluntary context switches).
fn supervisor_wakeups(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the proxy's threads");
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != "supervisor" {
            continue;
        }
        let status = std::fs::read_to_string(task.path().join("status")).expect("thread status");
        return status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("voluntary_ctxt_switches");
    }
    panic!("no supervisor thread in /proc/{pid}/task");
}

/// The supervisor's wake-ups during `window`. A rate is counted over a fixed span of time, so this waits
/// out the span on purpose; it waits for no event (the callers wait for the state they measure first).
fn wakeups_during(pid: u32, window: Duration) -> u64 {
    let before = supervisor_wakeups(pid);
    std::thread::sleep(window);
    supervisor_wakeups(pid) - before
}

/// One backend per protocol, each with `knob` set and a listen log (`ECHO_LISTEN_LOG`: the moment it can
/// answer), a 1 s probe interval so no probe schedule can be what lets a request through; each gets
/// one request, which must be answered no sooner than `at_least` and within 50 ms of that moment
/// (about a millisecond on a quiet machine; generous for a loaded 2-core one).
fn assert_answered_soon_after_listening(knob: (&'static str, &str), at_least: Duration) {
    let dir = TempDir::new("polling");
    let keys = "health_check_interval_ms = 1000\nstartup_timeout_secs = 30";
    let config = backends_per_protocol(keys, |name| {
        let log = dir.file(&format!("{name}.listen"));
        vec![
            (knob.0, knob.1.to_string()),
            (
                "ECHO_LISTEN_LOG",
                log.to_str().expect("utf-8 path").to_string(),
            ),
        ]
    });
    let proxy = Proxy::start(&config);
    for (name, ask) in protocols() {
        let started = Instant::now();
        let answer = ask(proxy.addr(), &format!("{name}.test"), "/first");
        let answered = now_micros();
        assert_eq!(answer.status, 200, "{name}: {answer:?}");
        answer.pid();
        assert!(
            started.elapsed() >= at_least,
            "{name}: answered before the backend could answer"
        );
        let added = after_logged(&dir.file(&format!("{name}.listen")), answered);
        eprintln!("{name}: answered {added:?} after the backend could answer");
        assert!(
            added < Duration::from_millis(50),
            "{name}: answered {added:?} after the backend could answer"
        );
    }
}

#[test]
fn a_held_request_is_answered_within_milliseconds_of_listening_over_http1_and_h2c() {
    // 1.5 s of start: past the first second, when the looks are a quarter millisecond apart, into the
    // half-millisecond ones.
    assert_answered_soon_after_listening(
        ("ECHO_START_DELAY_MS", "1500"),
        Duration::from_millis(1500),
    );
}

#[test]
fn a_program_that_drops_connections_while_it_boots_is_knocked_on_not_waited_for() {
    // In front of a booting container, Docker's port forwarder accepts and closes at once. Read as a
    // failed health answer, that waited a quarter of the start so far (about 250 ms here, and the
    // answer came ~110 ms late); read as "nothing behind the port yet", it is knocked on again within
    // a millisecond or so.
    assert_answered_soon_after_listening(("ECHO_DROP_MS", "1000"), Duration::from_millis(1000));
}

#[test]
fn the_looks_go_on_while_a_program_boots_and_stop_when_its_start_ends() {
    let keys = "startup_timeout_secs = 60";
    let config = [
        echo_backend(
            "fails.test",
            free_port(),
            keys,
            &[("ECHO_EXIT_AT_START", "3")],
        ),
        echo_backend(
            "boots.test",
            free_port(),
            keys,
            &[("ECHO_START_DELAY_MS", "60000")],
        ),
    ]
    .concat();
    let proxy = Proxy::start(&config);
    let pid = proxy.pid();
    // A program that exits before it listens fails its start, and nothing goes on looking for it.
    let answer = http1_answer(proxy.addr(), "fails.test", "/");
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.error.as_deref(), Some("BACKEND_START_FAILED"));
    let idle = wakeups_during(pid, Duration::from_millis(300));
    eprintln!("{idle} wake-ups in 300 ms after the failed start");
    assert!(
        idle < 10,
        "the supervisor woke {idle} times with nothing starting"
    );
    // A program still booting is looked at every quarter millisecond (over a thousand in 300 ms on a
    // quiet machine; a loaded one runs fewer of them).
    let mut held = TcpStream::connect(proxy.addr()).expect("connect");
    std::io::Write::write_all(
        &mut held,
        b"GET / HTTP/1.1\r\nHost: boots.test\r\nConnection: close\r\n\r\n",
    )
    .expect("send");
    proxy.wait_for_state("boots.test", "starting", Duration::from_secs(10));
    let booting = wakeups_during(pid, Duration::from_millis(300));
    eprintln!("{booting} wake-ups in 300 ms while a program boots");
    assert!(
        booting > 100,
        "only {booting} wake-ups in 300 ms while a program boots"
    );
    drop(held);
}
