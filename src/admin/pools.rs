//! `/pools`: every pool and each of its instances as the reactor last heard of them, and the pool
//! instances' ready URLs (`/ready/pool/{pool}/{slot}`).

use crate::error::push_json_string;
use crate::msg::{Facts, State};

/// One pool, for `/pools`.
pub struct PoolStatus {
    pub name: String,
    pub strategy: &'static str,
    pub held: usize,
    pub instances: Vec<InstanceStatus>,
}

/// One instance of a pool.
pub struct InstanceStatus {
    pub state: State,
    pub address: String,
    pub in_flight: usize,
    /// Its status line, process, last start, exit and start failure, as the supervisor recorded them.
    pub facts: Facts,
}

pub fn pools_json(pools: &[PoolStatus]) -> String {
    let mut out = String::from(r#"{"pools":["#);
    for (i, pool) in pools.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"name":"#);
        push_json_string(&mut out, &pool.name);
        out.push_str(&format!(
            r#","strategy":"{}","held":{},"instances":["#,
            pool.strategy, pool.held
        ));
        for (slot, instance) in pool.instances.iter().enumerate() {
            if slot > 0 {
                out.push(',');
            }
            out.push_str(&format!(
                r#"{{"slot":{slot},"state":"{}","address":"#,
                instance.state.as_str()
            ));
            push_json_string(&mut out, &instance.address);
            out.push_str(&format!(r#","in_flight":{}"#, instance.in_flight));
            push_facts(&mut out, &instance.facts);
            out.push('}');
        }
        out.push_str("]}");
    }
    out.push_str(&format!(r#"],"count":{}}}"#, pools.len()));
    out
}

/// `,"status":…,"process":…,"started_at":…,"last_exit":…,"last_start_failure":…` (`null` when unknown).
pub fn push_facts(out: &mut String, facts: &Facts) {
    let texts = [
        ("status", &facts.status),
        ("process", &facts.process),
        ("last_exit", &facts.last_exit),
        ("last_start_failure", &facts.last_start_failure),
    ];
    for (name, value) in texts {
        out.push_str(&format!(r#","{name}":"#));
        match value {
            Some(text) => push_json_string(out, text),
            None => out.push_str("null"),
        }
    }
    match facts.started_at {
        Some(secs) => out.push_str(&format!(r#","started_at":{secs}"#)),
        None => out.push_str(r#","started_at":null"#),
    }
}

/// `{pool}/{slot}` naming an instance of one of `pools`.
pub fn ready_slot(rest: &[u8], pools: &[PoolStatus]) -> Option<(String, u32)> {
    let rest = std::str::from_utf8(rest).ok()?;
    let (name, slot) = rest.split_once('/')?;
    let slot: u32 = slot.parse().ok()?;
    let pool = pools.iter().find(|p| p.name == name)?;
    ((slot as usize) < pool.instances.len()).then(|| (pool.name.clone(), slot))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> PoolStatus {
        PoolStatus {
            name: "web".into(),
            strategy: "least_conn",
            held: 1,
            instances: vec![
                InstanceStatus {
                    state: State::Ready,
                    address: "127.0.0.1:3000".into(),
                    in_flight: 2,
                    facts: Facts {
                        process: Some("pid 42".into()),
                        started_at: Some(1_700_000_000),
                        ..Facts::default()
                    },
                },
                InstanceStatus {
                    state: State::Stopped,
                    address: "unix:/run/web.1.sock".into(),
                    in_flight: 0,
                    facts: Facts {
                        status: Some("warming".into()),
                        last_exit: Some("signal SIGKILL".into()),
                        last_start_failure: Some("exited".into()),
                        ..Facts::default()
                    },
                },
            ],
        }
    }

    #[test]
    fn pools_list_every_instance() {
        assert_eq!(
            pools_json(&[pool()]),
            r#"{"pools":[{"name":"web","strategy":"least_conn","held":1,"instances":[{"slot":0,"state":"ready","address":"127.0.0.1:3000","in_flight":2,"status":null,"process":"pid 42","last_exit":null,"last_start_failure":null,"started_at":1700000000},{"slot":1,"state":"stopped","address":"unix:/run/web.1.sock","in_flight":0,"status":"warming","process":null,"last_exit":"signal SIGKILL","last_start_failure":"exited","started_at":null}]}],"count":1}"#
        );
    }

    #[test]
    fn a_ready_url_names_an_existing_slot() {
        assert_eq!(ready_slot(b"web/1", &[pool()]), Some(("web".into(), 1)));
        assert_eq!(ready_slot(b"web/2", &[pool()]), None);
        assert_eq!(ready_slot(b"api/0", &[pool()]), None);
        assert_eq!(ready_slot(b"web/x", &[pool()]), None);
        assert_eq!(ready_slot(b"web", &[pool()]), None);
    }
}
