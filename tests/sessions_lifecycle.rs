//! How sessions end, against the real binary: the events stream, DELETE with and without a drain, 410
//! afterwards (traffic never restarts an ended session), idleness (a WebSocket keeps one alive, its
//! close lets it end), the lifetime that ends even a busy session, and a SIGKILLed proxy, whose session
//! processes die with it and whose ids the next proxy does not know.

mod support;

use std::time::{Duration, Instant};

use support::routing::{ask, Proto, PROTOCOLS};
use support::sessions::*;
use support::ws::{ws_close_cleanly, ws_echo, ws_ended_within};
use support::*;
use tungstenite::Message;

/// A request with the session's token, on its own thread (for requests that outlive a step).
fn slow_request(proxy: &Proxy, s: &Session, ms: u64) -> std::thread::JoinHandle<Response> {
    let (addr, host, token) = (proxy.addr(), s.hostname.clone(), s.token().to_string());
    std::thread::spawn(move || {
        let mut client = Client::connect(addr);
        let field = format!("{SESSION_HEADER}: {token}");
        client.send(&build_request(
            "GET",
            &host,
            &format!("/slow?ms={ms}"),
            &[&field],
            b"",
        ));
        // An error (the connection cut) comes back as status 0.
        client.try_read_response().unwrap_or(Response {
            status: 0,
            headers: Vec::new(),
            body: Vec::new(),
        })
    })
}

fn in_flight(proxy: &Proxy, id: &str) -> i64 {
    let listed = json_of(&admin(proxy, "GET", "/sessions", &[], b""));
    listed
        .get("sessions")
        .and_then(|s| s.as_array())
        .and_then(|all| all.iter().find(|s| s.str_at("id") == Some(id)))
        .and_then(|s| s.get("in_flight"))
        .and_then(|n| n.as_i64())
        .unwrap_or(-1)
}

/// Serves one request, returning the echo's pid.
fn ready_pid(proxy: &Proxy, s: &Session) -> u32 {
    let reply = ask(
        proxy.addr(),
        Proto::Http1,
        "GET",
        &s.hostname,
        "/",
        &[s.token_header()],
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.echo_pid().expect("the echo names its pid")
}

fn assert_ended_answer(proxy: &Proxy, s: &Session, reason: &str) {
    for proto in PROTOCOLS {
        let reply = ask(
            proxy.addr(),
            proto,
            "GET",
            &s.hostname,
            "/after",
            &[s.token_header()],
        );
        assert_eq!(reply.status, 410, "{proto:?}: {}", reply.text());
        assert_eq!(
            reply.header("x-proxy-error"),
            Some("SESSION_ENDED"),
            "{proto:?}"
        );
        let message = reply.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            message.contains(reason),
            "{proto:?}: {message:?} does not name {reason}"
        );
    }
}

#[test]
fn the_events_stream_replays_every_state_in_order_and_delete_drains() {
    let proxy = Proxy::start(&echo_template("nb", 2, "idle_timeout_secs = 60", &[]));
    let s = create(&proxy, "nb", &key_body("events"));
    let pid = ready_pid(&proxy, &s);
    wait_state(&proxy, &s.id, "ready", WAIT);

    let stream = EventStream::open(&proxy, &s.id);
    assert_eq!(stream.status, 200);
    let content_type = stream
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"));
    assert_eq!(
        content_type.map(|(_, v)| v.as_str()),
        Some("text/event-stream")
    );
    // A request still running when DELETE comes is drained: it completes.
    let slow = slow_request(&proxy, &s, 1500);
    assert!(
        wait_until(WAIT, || in_flight(&proxy, &s.id) == 1),
        "the slow request never arrived"
    );
    let deleted = delete(&proxy, &s.id, false);
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(text_at(&json_of(&deleted), "state"), "draining");
    let events = stream.read_to_end();
    assert_eq!(
        names(&events),
        ["waiting", "starting", "ready", "draining", "ended"]
    );
    let last = &events[4].data;
    assert_eq!(last.str_at("reason"), Some("terminated"), "{last:?}");
    let times: Vec<i64> = events
        .iter()
        .filter_map(|e| e.data.get("at")?.as_i64())
        .collect();
    assert!(
        times.len() == 5 && times.windows(2).all(|w| w[0] <= w[1]),
        "{times:?}"
    );
    let drained = slow.join().expect("the slow request");
    assert_eq!(
        (drained.status, drained.text()),
        (200, "slow done\n".into()),
        "drained"
    );
    assert!(
        wait_until(WAIT, || !pid_alive(pid)),
        "the process outlived its session"
    );

    // After the end: the tombstone answers, and the stream replays and closes at once.
    assert_eq!(wait_ended(&proxy, &s.id, WAIT), "terminated");
    assert_ended_answer(&proxy, &s, "terminated");
    let replay = EventStream::open(&proxy, &s.id).read_to_end();
    assert_eq!(names(&replay), names(&events));
    assert_eq!(
        delete(&proxy, &s.id, false).status,
        200,
        "deleting twice is harmless"
    );
    assert_eq!(
        echo_children(proxy.pid()),
        Vec::<u32>::new(),
        "traffic restarted it"
    );
}

#[test]
fn delete_now_stops_without_waiting_for_requests() {
    let proxy = Proxy::start(&echo_template("nb", 2, "idle_timeout_secs = 60", &[]));
    let s = create(&proxy, "nb", &key_body("now"));
    let pid = ready_pid(&proxy, &s);
    let slow = slow_request(&proxy, &s, 60_000);
    assert!(
        wait_until(WAIT, || in_flight(&proxy, &s.id) == 1),
        "the slow request never arrived"
    );
    let asked = Instant::now();
    assert_eq!(delete(&proxy, &s.id, true).status, 200);
    assert_eq!(wait_ended(&proxy, &s.id, WAIT), "terminated");
    assert!(!pid_alive(pid), "ended, yet its process runs");
    let cut = slow.join().expect("the slow request");
    assert_ne!(
        cut.text(),
        "slow done\n",
        "a request of a session deleted now was drained"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "{:?}",
        asked.elapsed()
    );
    assert_ended_answer(&proxy, &s, "terminated");
    assert_eq!(
        session_status(&proxy, "abcdefghijklmnopqrstuvwxyz"),
        None,
        "unknown ids are 404"
    );
}

#[test]
fn an_idle_session_ends_and_traffic_never_restarts_it() {
    let dir = TempDir::new("idle-session");
    let start_log = dir.file("starts");
    let env = [("ECHO_START_LOG", start_log.to_str().unwrap())];
    let proxy = Proxy::start(&echo_template("nb", 2, "idle_timeout_secs = 1", &env));
    let s = create(&proxy, "nb", &key_body("idle"));
    let pid = ready_pid(&proxy, &s);
    let last = Instant::now();
    assert_eq!(wait_ended(&proxy, &s.id, WAIT), "idle");
    assert!(
        last.elapsed() >= Duration::from_millis(900),
        "ended before its idle timeout"
    );
    assert!(wait_until(WAIT, || !pid_alive(pid)));
    assert_ended_answer(&proxy, &s, "idle");
    assert_eq!(
        start_log_pids(&start_log),
        [pid],
        "traffic restarted an ended session"
    );
    // A connect for the key makes a new session (and a new process).
    let next = create(&proxy, "nb", &key_body("idle"));
    assert_eq!(next.status, 201);
    assert_ne!(next.id, s.id);
    assert_ne!(ready_pid(&proxy, &next), pid);
}

#[test]
fn a_tombstone_answers_410_for_tombstone_secs_then_the_session_is_forgotten() {
    let proxy = Proxy::start(&echo_template("nb", 2, "tombstone_secs = 3", &[]));
    let s = create(&proxy, "nb", &key_body("gone"));
    ready_pid(&proxy, &s);
    assert_eq!(delete(&proxy, &s.id, true).status, 200);
    assert_eq!(wait_ended(&proxy, &s.id, WAIT), "terminated");
    let ended = Instant::now();
    assert_ended_answer(&proxy, &s, "terminated");
    let forgotten = wait_until(WAIT, || {
        let reply = ask(
            proxy.addr(),
            Proto::Http1,
            "GET",
            &s.hostname,
            "/",
            &[s.token_header()],
        );
        reply.status == 401
    });
    assert!(forgotten, "the tombstone never expired");
    assert!(
        ended.elapsed() >= Duration::from_secs(1),
        "{:?}",
        ended.elapsed()
    );
    assert_eq!(session_status(&proxy, &s.id), None, "the API forgot it too");
}

#[test]
fn on_request_waits_for_the_first_request_and_an_exit_ends_the_session() {
    let proxy = Proxy::start(&echo_template("nb", 2, "start = \"on_request\"", &[]));
    let s = create(&proxy, "nb", &key_body("lazy"));
    assert_eq!(text_at(&s.json, "state"), "waiting");
    assert!(
        echo_children(proxy.pid()).is_empty(),
        "started before any request"
    );
    assert_eq!(state_of(&proxy, &s.id), "waiting");
    let pid = ready_pid(&proxy, &s);
    assert_eq!(state_of(&proxy, &s.id), "ready");
    // The program exits on its own: the session has ended, and traffic does not start it again.
    let exit = ask(
        proxy.addr(),
        Proto::Http1,
        "GET",
        &s.hostname,
        "/exit",
        &[s.token_header()],
    );
    assert_eq!(exit.status, 200, "{}", exit.text());
    assert_eq!(wait_ended(&proxy, &s.id, WAIT), "exited");
    assert!(wait_until(WAIT, || !pid_alive(pid)));
    assert_ended_answer(&proxy, &s, "exited");
    assert!(
        echo_children(proxy.pid()).is_empty(),
        "traffic restarted it"
    );
}

#[test]
fn a_websocket_keeps_its_session_past_the_idle_timeout_and_its_close_lets_it_end() {
    let proxy = Proxy::start(&echo_template("nb", 2, "idle_timeout_secs = 1", &[]));
    let s = create(&proxy, "nb", &key_body("ws"));
    let (mut ws, _) = ws_connect_with(proxy.addr(), &s.hostname, "/ws", &[s.token_header()])
        .unwrap_or_else(|e| panic!("WebSocket to the session: {e:?}"));
    assert_eq!(ws_echo(&mut ws, Message::text("hi")), Message::text("hi"));
    // A quiet but open WebSocket: three idle timeouts pass and the session stays ready.
    let quiet = Instant::now();
    let ended_early = wait_until(Duration::from_secs(3), || {
        state_of(&proxy, &s.id) != "ready"
    });
    assert!(
        !ended_early,
        "ended with an open WebSocket: {:?}",
        session_status(&proxy, &s.id)
    );
    assert!(quiet.elapsed() >= Duration::from_secs(3));
    assert_eq!(
        ws_echo(&mut ws, Message::text("still")),
        Message::text("still")
    );
    ws_close_cleanly(ws);
    let closed = Instant::now();
    assert_eq!(wait_ended(&proxy, &s.id, WAIT), "idle");
    assert!(
        closed.elapsed() < Duration::from_secs(10),
        "{:?}",
        closed.elapsed()
    );
}

#[test]
fn the_lifetime_ends_even_a_busy_session() {
    // A short drain: an open WebSocket would otherwise hold the drain for its whole default timeout.
    let keys = "idle_timeout_secs = 60\nlifetime_secs = 2\ndrain_timeout_secs = 2";
    let proxy = Proxy::start(&echo_template("nb", 2, keys, &[]));
    let created = Instant::now();
    let s = create(&proxy, "nb", &key_body("busy"));
    let pid = ready_pid(&proxy, &s);
    // Busy all along: a request every few milliseconds and an open WebSocket.
    let (mut ws, _) = ws_connect_with(proxy.addr(), &s.hostname, "/ws", &[s.token_header()])
        .unwrap_or_else(|e| panic!("WebSocket to the session: {e:?}"));
    let ended = wait_until(WAIT, || {
        let reply = ask(
            proxy.addr(),
            Proto::Http1,
            "GET",
            &s.hostname,
            "/",
            &[s.token_header()],
        );
        reply.status == 410
    });
    assert!(ended, "a busy session outlived its lifetime");
    let lived = created.elapsed();
    assert!(
        lived >= Duration::from_millis(1500),
        "ended after {lived:?}"
    );
    assert_eq!(wait_ended(&proxy, &s.id, WAIT), "lifetime");
    assert!(
        ws_ended_within(&mut ws, WAIT),
        "the WebSocket outlived its session"
    );
    assert!(wait_until(WAIT, || !pid_alive(pid)));
    assert_ended_answer(&proxy, &s, "lifetime");
}

#[test]
fn a_sigkilled_proxy_takes_its_session_processes_and_the_next_knows_no_old_id() {
    let template = echo_template("nb", 4, "idle_timeout_secs = 60", &[]);
    let mut proxy = Proxy::start(&template);
    let sessions: Vec<Session> = ["k1", "k2"]
        .iter()
        .map(|k| create(&proxy, "nb", &key_body(k)))
        .collect();
    let pids: Vec<u32> = sessions.iter().map(|s| ready_pid(&proxy, s)).collect();
    proxy.signal(Signal::SIGKILL);
    proxy.wait_exit(Duration::from_secs(10));
    for pid in pids {
        assert!(
            wait_until(Duration::from_secs(5), || !pid_alive(pid)),
            "session process {pid} outlived the SIGKILLed proxy"
        );
    }
    let next = Proxy::start(&template);
    for s in &sessions {
        let response = admin(&next, "GET", &format!("/sessions/{}", s.id), &[], b"");
        assert_proxy_error(&response, "UNKNOWN_SESSION", 404);
    }
}
