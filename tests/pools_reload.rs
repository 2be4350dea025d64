//! Pools across reloads, against the real binary: more replicas start, fewer drain and stop without
//! dropping what they carry, and a request in flight on a retired instance finishes.

mod support;

use support::pools::*;
use support::routing::{ask_get, Proto};
use support::*;

#[test]
fn replicas_grow_and_shrink_on_reload_and_a_retired_instance_finishes_its_request() {
    let base = free_ports(3);
    let keys = |n: u32| {
        format!("port = {base}\nreplicas = {n}\nmin_running = {n}\nstrategy = \"round_robin\"")
    };
    let proxy = Proxy::start(&echo_pool("elastic", &keys(2)));
    wait_states(&proxy, "elastic", &["ready", "ready"]);

    proxy.rewrite_config(&echo_pool("elastic", &keys(3)));
    assert_eq!(proxy.post_reload().status, 200);
    wait_states(&proxy, "elastic", &["ready", "ready", "ready"]);

    // Round robin from here: slot 0, 1, 2. The slow request lands on slot 1, which the next reload
    // retires.
    let addr = proxy.addr();
    let first = ask_get(addr, Proto::Http1, "elastic.test", "/");
    assert_eq!(first.status, 200);
    let slow = std::thread::spawn(move || {
        let reply = ask_get(addr, Proto::Http1, "elastic.test", "/slow?ms=1500");
        (reply.status, reply.body.len())
    });
    let busy = wait_until(WAIT, || {
        pool_status(&proxy, "elastic")["instances"][1]["in_flight"] == 1
    });
    assert!(busy, "the slow request is on slot 1");
    let retired: Vec<u32> = [1, 2]
        .into_iter()
        .flat_map(|slot| slot_pids(&proxy, "elastic", slot))
        .collect();
    assert_eq!(retired.len(), 2, "slots 1 and 2 each started once");

    proxy.rewrite_config(&echo_pool("elastic", &keys(1)));
    assert_eq!(proxy.post_reload().status, 200);
    wait_states(&proxy, "elastic", &["ready"]);
    let (status, _) = slow.join().expect("the slow request");
    assert_eq!(status, 200, "a retired instance finishes what it carries");
    let gone = wait_until(WAIT, || retired.iter().all(|&pid| !pid_alive(pid)));
    assert!(gone, "retired instances {retired:?} exit");
    assert_eq!(ask_get(addr, Proto::H2c, "elastic.test", "/").status, 200);
    proxy.shut_down_leaving_nothing(WAIT);
}

#[test]
fn a_rolling_reload_under_load_replaces_every_instance_and_fails_no_request() {
    let base = free_ports(2);
    let keys = |generation: u32| {
        format!(
            "port = {base}\nreplicas = 2\nmin_running = 2\nstrategy = \"round_robin\"\n\
             reload = \"rolling\"\n[pools.roll.env]\nGENERATION = \"{generation}\""
        )
    };
    let proxy = Proxy::start(&echo_pool("roll", &keys(1)));
    wait_states(&proxy, "roll", &["ready", "ready"]);
    let before: Vec<u32> = (0..2)
        .flat_map(|slot| slot_pids(&proxy, "roll", slot))
        .collect();
    assert_eq!(before.len(), 2, "{before:?} {:#?}", proxy.log_lines());
    let addr = proxy.addr();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = [Proto::Http1, Proto::H2c, Proto::Http1, Proto::H2c]
        .into_iter()
        .map(|proto| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    statuses.push(ask_get(addr, proto, "roll.test", "/slow?ms=20").status);
                }
                statuses
            })
        })
        .collect();
    proxy.rewrite_config(&echo_pool("roll", &keys(2)));
    assert_eq!(proxy.post_reload().status, 200);
    let replaced = wait_until(WAIT, || {
        (0..2).all(|slot| slot_pids(&proxy, "roll", slot).len() == 2)
            && states(&proxy, "roll") == ["ready", "ready"]
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let statuses: Vec<u16> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("a client"))
        .collect();
    assert!(
        replaced,
        "both instances replaced: {:?}",
        states(&proxy, "roll")
    );
    assert!(
        statuses.len() > 20,
        "traffic flowed throughout: {}",
        statuses.len()
    );
    let failed: Vec<_> = statuses.iter().filter(|&&s| s != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        statuses.len()
    );
    let gone = wait_until(WAIT, || before.iter().all(|&pid| !pid_alive(pid)));
    assert!(gone, "the old instances exit");
    let replacing = proxy.count_log(|l| l.contains("roll: replacing instance"));
    assert_eq!(replacing, 2, "one at a time, each once");
}

#[test]
fn hashed_keys_move_only_from_the_instance_that_leaves() {
    let base = free_ports(3);
    let keys = |n: u32| {
        format!(
            "port = {base}\nreplicas = {n}\nmin_running = {n}\nstrategy = \"hash\"\n\
             hash_on = \"query:user\""
        )
    };
    let proxy = Proxy::start(&echo_pool("hashed", &keys(3)));
    wait_states(&proxy, "hashed", &["ready", "ready", "ready"]);
    let owners = |proxy: &Proxy| -> Vec<u32> {
        (0..60)
            .map(|user| {
                let reply = ask_get(
                    proxy.addr(),
                    Proto::Http1,
                    "hashed.test",
                    &format!("/?user={user}"),
                );
                assert_eq!(reply.status, 200);
                pid_of(&reply)
            })
            .collect()
    };
    let before = owners(&proxy);
    let leaving = slot_pids(&proxy, "hashed", 2)[0];
    assert!(before.contains(&leaving), "slot 2 owned some of 60 keys");
    proxy.rewrite_config(&echo_pool("hashed", &keys(2)));
    assert_eq!(proxy.post_reload().status, 200);
    wait_states(&proxy, "hashed", &["ready", "ready"]);
    let after = owners(&proxy);
    for (user, (was, is)) in before.iter().zip(&after).enumerate() {
        if *was == leaving {
            assert_ne!(*is, leaving, "user {user} still on the retired instance");
        } else {
            assert_eq!(was, is, "user {user} moved although its instance stayed");
        }
    }
}
