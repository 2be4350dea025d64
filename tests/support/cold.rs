//! What the cold-start tests share: the wall clock in microseconds (as `spawngate-echo` logs the moment it
//! listened or accepted), how long after that logged moment an answer came, and the two protocols a held
//! request is asked over.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::parity::{h2c_answer, http1_answer, Answer};

/// Microseconds since the epoch, as `ECHO_LISTEN_LOG` and `ECHO_ACCEPT_LOG` write them.
pub fn now_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros()
}

/// The moment a backend logged (microseconds since the epoch).
pub fn read_micros(path: &Path) -> u128 {
    std::fs::read_to_string(path)
        .expect("the backend wrote its moment")
        .trim()
        .parse()
        .expect("microseconds")
}

/// How long after the moment logged in `path` the answer came (`answered`, from [`now_micros`]).
pub fn after_logged(path: &Path, answered: u128) -> Duration {
    let micros = answered.saturating_sub(read_micros(path));
    Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
}

/// One request on a fresh connection over one protocol.
pub type Ask = fn(SocketAddr, &str, &str) -> Answer;

/// HTTP/1 and h2c, each with the name its backend's Host starts with.
pub fn protocols() -> [(&'static str, Ask); 2] {
    [("http1", http1_answer), ("h2c", h2c_answer)]
}

/// A `{protocol}.test` echo backend for each protocol, with the same `keys`; `env` gives each its
/// environment by protocol name (a log file of its own, say).
pub fn backends_per_protocol(
    keys: &str,
    env: impl Fn(&str) -> Vec<(&'static str, String)>,
) -> String {
    protocols()
        .iter()
        .map(|(name, _)| {
            let env = env(name);
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            super::echo_backend(&format!("{name}.test"), super::free_port(), keys, &env)
        })
        .collect()
}
