//! `/pools`: every pool and each of its instances as the reactor last heard of them, and the pool
//! instances' ready URLs (`/ready/pool/{pool}/{slot}`).

use crate::error::push_json_string;
use crate::msg::State;

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
    pub status: Option<String>,
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
            out.push_str(&format!(r#","in_flight":{},"status":"#, instance.in_flight));
            match &instance.status {
                Some(status) => push_json_string(&mut out, status),
                None => out.push_str("null"),
            }
            out.push('}');
        }
        out.push_str("]}");
    }
    out.push_str(&format!(r#"],"count":{}}}"#, pools.len()));
    out
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
                    status: None,
                },
                InstanceStatus {
                    state: State::Stopped,
                    address: "unix:/run/web.1.sock".into(),
                    in_flight: 0,
                    status: Some("warming".into()),
                },
            ],
        }
    }

    #[test]
    fn pools_list_every_instance() {
        assert_eq!(
            pools_json(&[pool()]),
            r#"{"pools":[{"name":"web","strategy":"least_conn","held":1,"instances":[{"slot":0,"state":"ready","address":"127.0.0.1:3000","in_flight":2,"status":null},{"slot":1,"state":"stopped","address":"unix:/run/web.1.sock","in_flight":0,"status":"warming"}]}],"count":1}"#
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
