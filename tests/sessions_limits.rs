//! Keys and caps against the real binary: get-or-create by key (two keys, two processes and hostnames),
//! concurrent connects for one key start exactly one process, a storm of 200 connects never runs
//! more processes than the cap, `idle_lru` evicts the least recently active idle session (and the new
//! one starts only once that one has stopped), busy sessions are not evicted (503 + Retry-After), `lru`
//! evicts even a busy one, `never` only refuses, and a key's new session waits for its draining one.
//!
//! Each bound is checked at every moment by a [`Sampler`] counting the proxy's echo children in `/proc`.

mod support;

use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use support::routing::{ask, Proto};
use support::sessions::*;
use support::ws::{ws_close_cleanly, Ws};
use support::*;

const STORM: usize = 200;
const STORM_THREADS: usize = 16;

/// Serves one request with the session's token; returns the echo's pid.
fn touch(proxy: &Proxy, s: &Session) -> u32 {
    let reply = ask(
        proxy.addr(),
        Proto::Http1,
        "GET",
        &s.hostname,
        "/touch",
        &[s.token_header()],
    );
    assert_eq!(reply.status, 200, "{}: {}", s.key, reply.text());
    reply.echo_pid().expect("the echo names its pid")
}

/// Samples how many session processes the proxy runs.
fn process_sampler(proxy: &Proxy) -> Sampler {
    let pid = proxy.pid();
    Sampler::start(move || echo_children(pid).len())
}

/// A 1.5 s request through session `s`, in flight (its backend has logged it) when this returns;
/// joining gives its status.
fn slow_request(proxy: &Proxy, s: &Session) -> std::thread::JoinHandle<u16> {
    let (addr, host, token) = (proxy.addr(), s.hostname.clone(), s.token().to_string());
    let slow = std::thread::spawn(move || {
        let field = [(SESSION_HEADER, token.as_str())];
        ask(addr, Proto::Http1, "GET", &host, "/slow?ms=1500", &field).status
    });
    assert!(wait_until(WAIT, || proxy.log_contains("GET /slow?ms=1500")));
    slow
}

/// An open WebSocket through the session: it is busy while this lives.
fn busy(proxy: &Proxy, s: &Session) -> Ws {
    ws_connect_with(proxy.addr(), &s.hostname, "/ws", &[s.token_header()])
        .unwrap_or_else(|e| panic!("WebSocket to {}: {e:?}", s.key))
        .0
}

fn assert_limit_reached(response: &Response, max_retry: u64) {
    assert_proxy_error(response, "SESSION_LIMIT_REACHED", 503);
    let retry: u64 = response
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After: {:?}", response.headers));
    assert!((1..=max_retry).contains(&retry), "Retry-After: {retry}");
}

/// The sessions `GET /sessions` lists as waiting, starting or ready.
fn live_sessions(proxy: &Proxy) -> Vec<(String, String)> {
    let listed = json_of(&admin(proxy, "GET", "/sessions", &[], b""));
    listed
        .get("sessions")
        .and_then(|s| s.as_array())
        .unwrap_or_default()
        .iter()
        .map(|s| (text_at(s, "id"), text_at(s, "state")))
        .filter(|(_, state)| ["waiting", "starting", "ready"].contains(&state.as_str()))
        .collect()
}

#[test]
fn the_cap_holds_under_a_storm_of_200_connects() {
    let keys = "max_running = 3\nidle_timeout_secs = 60\nshutdown_grace_period_secs = 1";
    let proxy = Proxy::start(&echo_template("nb", 32, keys, &[]));
    let sampler = process_sampler(&proxy);
    let next = Arc::new(Mutex::new(0..STORM));
    let workers: Vec<_> = (0..STORM_THREADS)
        .map(|_| {
            let (next, addr) = (next.clone(), proxy.admin_addr());
            std::thread::spawn(move || {
                let mut answers = Vec::new();
                loop {
                    let Some(i) = next.lock().unwrap().next() else {
                        return answers;
                    };
                    // Each connect on its own connection, with the client's read timeout.
                    let body = key_body(&format!("storm-{i}"));
                    answers.push(admin_at(addr, "POST", "/sessions/nb", &[], body.as_bytes()));
                }
            })
        })
        .collect();
    let answers: Vec<Response> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("a storm worker"))
        .collect();
    assert_eq!(answers.len(), STORM);
    let created = answers.iter().filter(|r| r.status == 201).count();
    for refused in answers.iter().filter(|r| r.status != 201) {
        assert_limit_reached(refused, 60);
    }
    assert!(
        created >= 3,
        "only {created} of {STORM} connects made a session"
    );

    // It settles: at most the cap live, all of them ready (no waiting chain is stuck).
    let settled = wait_until(WAIT, || {
        let live = live_sessions(&proxy);
        live.len() <= 3 && live.iter().all(|(_, state)| state == "ready")
    });
    assert!(settled, "{:?}", live_sessions(&proxy));
    assert!(wait_until(WAIT, || echo_children(proxy.pid()).len() <= 3));
    let most = sampler.stop();
    eprintln!(
        "storm: {created} created, {} refused, at most {most} processes",
        STORM - created
    );
    assert!(most >= 1, "the sampler never saw a session process");
    assert!(
        most <= 3,
        "{most} session processes ran at once, max_running is 3"
    );
}

#[test]
fn idle_lru_evicts_the_least_recently_active_idle_session_before_starting_the_new_one() {
    let keys = "max_running = 2\nidle_timeout_secs = 60\nshutdown_grace_period_secs = 1";
    let proxy = Proxy::start(&echo_template("nb", 4, keys, &[]));
    let a = create(&proxy, "nb", &key_body("a"));
    let b = create(&proxy, "nb", &key_body("b"));
    let b_pid = touch(&proxy, &b);
    // Millisecond timestamps: let a's activity come clearly later than b's.
    std::thread::sleep(Duration::from_millis(50));
    let a_pid = touch(&proxy, &a);
    let sampler = process_sampler(&proxy);
    let c = create(&proxy, "nb", &key_body("c"));
    assert_eq!(c.status, 201);
    let c_pid = touch(&proxy, &c);
    assert_eq!(wait_ended(&proxy, &b.id, WAIT), "evicted");
    assert!(!pid_alive(b_pid));
    assert_eq!(
        touch(&proxy, &a),
        a_pid,
        "the more recently active session was evicted"
    );
    assert_ne!(c_pid, b_pid);
    let most = sampler.stop();
    assert!(most >= 2, "the sampler missed the running sessions");
    assert!(
        most <= 2,
        "{most} processes at once: c started before b stopped"
    );
    let reply = ask(
        proxy.addr(),
        Proto::Http1,
        "GET",
        &b.hostname,
        "/",
        &[b.token_header()],
    );
    assert_eq!(reply.status, 410);
    assert!(reply.text().contains("evicted"), "{}", reply.text());
}

#[test]
fn busy_sessions_are_not_evicted_by_idle_lru_but_are_by_lru_and_never_only_refuses() {
    let idle_lru = echo_template("il", 4, "max_running = 2\nlifetime_secs = 30", &[]);
    let lru = echo_template(
        "lru",
        4,
        "max_running = 1\nevict = \"lru\"\ndrain_timeout_secs = 1",
        &[],
    );
    let never = echo_template(
        "nev",
        4,
        "max_running = 1\nevict = \"never\"\nidle_timeout_secs = 60",
        &[],
    );
    let proxy = Proxy::start(&format!("{idle_lru}\n{lru}\n{never}"));

    let first = create(&proxy, "il", &key_body("one"));
    let second = create(&proxy, "il", &key_body("two"));
    let ws_first = busy(&proxy, &first);
    let _ws_second = busy(&proxy, &second);
    assert_limit_reached(&connect(&proxy, "il", &key_body("three")), 30);
    // A connect for a key that has a session is not a new session: it is let in at the cap.
    assert_eq!(create(&proxy, "il", &key_body("one")).status, 200);
    ws_close_cleanly(ws_first);
    let third = create(&proxy, "il", &key_body("three"));
    assert_eq!(third.status, 201, "the idle one makes room");
    assert_eq!(wait_ended(&proxy, &first.id, WAIT), "evicted");
    assert_eq!(state_of(&proxy, &second.id), "ready", "the busy one stays");
    touch(&proxy, &third);

    let old = create(&proxy, "lru", &key_body("old"));
    let mut old_ws = busy(&proxy, &old);
    let new = create(&proxy, "lru", &key_body("new"));
    assert_eq!(new.status, 201, "lru evicts even a busy session");
    assert_eq!(wait_ended(&proxy, &old.id, WAIT), "evicted");
    assert!(support::ws::ws_ended_within(&mut old_ws, WAIT));
    touch(&proxy, &new);

    let only = create(&proxy, "nev", &key_body("only"));
    touch(&proxy, &only);
    assert_limit_reached(&connect(&proxy, "nev", &key_body("more")), 60);
    assert_eq!(state_of(&proxy, &only.id), "ready");
}

#[test]
fn connect_is_get_or_create_by_key_and_two_keys_get_two_processes() {
    let dir = TempDir::new("sessions-keys");
    let start_log = dir.file("starts");
    let env = [("ECHO_START_LOG", start_log.to_str().unwrap())];
    let keys = "idle_timeout_secs = 60\nlifetime_secs = 600\nallow_env = [\"NOTEBOOK_ID\"]";
    let proxy = Proxy::start(&echo_template("nb", 4, keys, &env));
    let body = r#"{"key":"nb-7731","user":"alice","env":{"NOTEBOOK_ID":"7731"}}"#;
    let first = create(&proxy, "nb", body);
    assert_eq!(first.status, 201, "{:?}", first.json);
    assert!(is_session_id(&first.id), "{}", first.id);
    assert_eq!(first.key, "nb-7731");
    assert_eq!(text_at(&first.json, "template"), "nb");
    assert_eq!(first.hostname, format!("{}.nb.test", first.id));
    let url = format!(
        "http://{}/.spawngate/auth?token={}&next=/",
        first.hostname,
        first.token()
    );
    assert_eq!(first.url, url);
    let state = text_at(&first.json, "state");
    assert!(
        ["waiting", "starting", "ready"].contains(&state.as_str()),
        "{state}"
    );
    let number = |key: &str| first.json.get(key).and_then(|v| v.as_i64());
    let (created, expires) = (number("created").unwrap(), number("expires_at").unwrap());
    assert!(
        (599..=601).contains(&(expires - created)),
        "{:?}",
        first.json
    );
    assert_eq!(number("idle_timeout_secs"), Some(60));
    let status_url = text_at(&first.json, "status_url");
    let admin_path = format!("{}/sessions/{}", proxy.admin_addr(), first.id);
    assert!(status_url.ends_with(&admin_path), "{status_url}");
    assert_eq!(
        text_at(&first.json, "events_url"),
        format!("{status_url}/events")
    );

    // The answer came once both request threads route the new hostname: no retry needed, h2c first.
    for proto in [Proto::H2c, Proto::Http1] {
        served(proxy.addr(), proto, &first, &[first.token_header()]);
    }
    let again = create(&proxy, "nb", r#"{"key":"nb-7731","user":"bob"}"#);
    assert_eq!(again.status, 200);
    assert_eq!((&again.id, &again.hostname), (&first.id, &first.hostname));
    assert_ne!(again.token(), first.token(), "every connect mints a token");
    let user = served(proxy.addr(), Proto::H2c, &again, &[again.token_header()]);
    assert_eq!(
        user.echoed_header("x-spawngate-user").as_deref(),
        Some("bob")
    );

    let other = create(&proxy, "nb", &key_body("nb-8000"));
    assert_eq!(other.status, 201);
    assert_ne!(other.id, first.id);
    assert_ne!(other.hostname, first.hostname);
    let pids: Vec<u32> = [&first, &other]
        .iter()
        .map(|s| {
            served(proxy.addr(), Proto::Http1, s, &[s.token_header()])
                .echo_pid()
                .unwrap()
        })
        .collect();
    assert_ne!(pids[0], pids[1], "two keys, two processes");
    assert_eq!(
        start_log_pids(&start_log).len(),
        2,
        "{:?}",
        start_log_pids(&start_log)
    );
    assert_eq!(echo_children(proxy.pid()).len(), 2);
    let listed = json_of(&admin(&proxy, "GET", "/sessions", &[], b""));
    assert_eq!(
        listed.get("count").and_then(|c| c.as_i64()),
        Some(2),
        "{listed:?}"
    );
}

#[test]
fn connect_refusals_name_their_cause() {
    let keys = "allow_env = [\"NOTEBOOK_ID\"]\nkey_pattern = \"^[a-z0-9-]{1,20}$\"";
    let a = echo_template("a", 2, keys, &[]);
    let b = echo_template("b", 4, "", &[]);
    let proxy = Proxy::start(&format!("{a}\n{b}"));
    assert_proxy_error(&connect(&proxy, "nosuch", "{}"), "UNKNOWN_TEMPLATE", 404);
    let invalid = [
        "not json",
        "[1]",
        r#"{"key":"Not-A-Key"}"#,
        r#"{"key":"k","env":{"OTHER":"1"}}"#,
        r#"{"key":"k","env":{"PORT":"1"}}"#,
        r#"{"key":"k","user":"a\r\nX-Injected: 1"}"#,
    ];
    for body in invalid {
        let response = connect(&proxy, "a", body);
        assert_proxy_error(&response, "INVALID_SESSION_REQUEST", 400);
    }
    assert_eq!(create(&proxy, "a", &key_body("shared")).status, 201);
    let conflict = connect(&proxy, "b", &key_body("shared"));
    assert_proxy_error(&conflict, "SESSION_KEY_CONFLICT", 409);
    // Without a key every connect makes a session of its own.
    let (x, y) = (create(&proxy, "b", ""), create(&proxy, "b", "{}"));
    assert_eq!((x.status, y.status), (201, 201));
    assert_ne!(x.id, y.id);
    let unknown = "abcdefghijklmnopqrstuvwxyz";
    for (method, path) in [
        ("GET", format!("/sessions/{unknown}")),
        ("GET", format!("/sessions/{unknown}/events")),
        ("DELETE", format!("/sessions/{unknown}")),
    ] {
        let response = admin(&proxy, method, &path, &[], b"");
        assert_proxy_error(&response, "UNKNOWN_SESSION", 404);
    }
}

#[test]
fn concurrent_connects_for_one_key_start_exactly_one_process() {
    const CALLERS: usize = 16;
    let dir = TempDir::new("sessions-race");
    let start_log = dir.file("starts");
    let env = [("ECHO_START_LOG", start_log.to_str().unwrap())];
    let proxy = Proxy::start(&echo_template("nb", 4, "idle_timeout_secs = 60", &env));
    for round in 0..3 {
        let key = format!("shared-{round}");
        let barrier = Arc::new(Barrier::new(CALLERS));
        let callers: Vec<_> = (0..CALLERS)
            .map(|_| {
                let (addr, barrier, body) = (proxy.admin_addr(), barrier.clone(), key_body(&key));
                std::thread::spawn(move || {
                    barrier.wait();
                    admin_at(addr, "POST", "/sessions/nb", &[], body.as_bytes())
                })
            })
            .collect();
        let sessions: Vec<Session> = callers
            .into_iter()
            .map(|c| Session::from_response(&c.join().expect("a caller")))
            .collect();
        let created = sessions.iter().filter(|s| s.status == 201).count();
        assert_eq!(
            created, 1,
            "round {round}: one connect creates, the rest join"
        );
        assert!(
            sessions.iter().all(|s| s.id == sessions[0].id),
            "round {round}"
        );
        for s in &sessions {
            touch(&proxy, s);
        }
        assert_eq!(
            processes_of_key(proxy.pid(), &key).len(),
            1,
            "round {round}"
        );
        assert_eq!(
            start_log_pids(&start_log).len(),
            round + 1,
            "round {round}: {:?}",
            start_log_pids(&start_log)
        );
    }
}

#[test]
fn a_key_never_has_two_processes_even_while_its_previous_session_drains() {
    let proxy = Proxy::start(&echo_template("nb", 4, "idle_timeout_secs = 60", &[]));
    let first = create(&proxy, "nb", &key_body("doc-1"));
    let first_pid = touch(&proxy, &first);
    let pid = proxy.pid();
    let sampler = Sampler::start(move || processes_of_key(pid, "doc-1").len());
    let slow = slow_request(&proxy, &first);
    assert_eq!(delete(&proxy, &first.id, false).status, 200);
    let second = create(&proxy, "nb", &key_body("doc-1"));
    assert_eq!(
        second.status, 201,
        "a draining session's key gets a new session"
    );
    assert_ne!(second.id, first.id);
    assert_eq!(text_at(&second.json, "state"), "waiting");
    let second_pid = touch(&proxy, &second);
    assert_eq!(
        slow.join().expect("the slow request"),
        200,
        "the old one drained"
    );
    assert_ne!(second_pid, first_pid);
    assert!(!pid_alive(first_pid));
    let most = sampler.stop();
    assert_eq!(most, 1, "two processes of one key ran at once");
}

#[test]
fn evicting_a_session_that_waits_for_room_passes_its_wait_on() {
    // One running at a time, evicted even when busy: the first drains a slow request while the
    // second waits for its room; a third evicts the second before it ever ran, and must then wait
    // for the first itself (the cap holds through the chain).
    let keys =
        "max_running = 1\nevict = \"lru\"\nidle_timeout_secs = 60\nshutdown_grace_period_secs = 5";
    let proxy = Proxy::start(&echo_template("nb", 4, keys, &[]));
    let first = create(&proxy, "nb", &key_body("one"));
    touch(&proxy, &first);
    let sampler = process_sampler(&proxy);
    let slow = slow_request(&proxy, &first);
    let second = create(&proxy, "nb", &key_body("two"));
    assert_eq!(second.status, 201);
    assert_eq!(text_at(&second.json, "state"), "waiting");
    let third = create(&proxy, "nb", &key_body("three"));
    assert_eq!(third.status, 201);
    touch(&proxy, &third);
    assert_eq!(slow.join().expect("the slow request"), 200);
    let most = sampler.stop();
    assert_eq!(
        most, 1,
        "{most} session processes ran at once, max_running is 1"
    );
}
