//! How the supervisor's loop names an instance in what it registers: its poll tokens, the timer heap and
//! the Docker driver's reports all carry an [`InstanceKey`] (the backend's slab key, the instance's index),
//! so two instances of one backend never share a probe token, a deadline or a container report.

use mio::Token;

/// The command and driver-report mailboxes.
pub const WAKER_TOKEN: Token = Token(0);
/// The SIGCHLD self-pipe.
pub const SIGCHLD_TOKEN: Token = Token(1);
/// The readiness-notification socket (`notify`).
pub const NOTIFY_TOKEN: Token = Token(2);
/// The alarm that wakes the loop at its next deadline (`timers::Alarm`).
pub const ALARM_TOKEN: Token = Token(3);
/// Probe sockets use the tokens from here on: one per instance, see [`probe_token`].
const FIRST_PROBE_TOKEN: usize = 4;

/// Most instances one backend can have. A token is computed from the instance's key (no table to keep in
/// step with the instances), which needs a bound; 65,536 is the slot range of the pools to come (`u16`) and
/// leaves 2^47 backend keys on a 64-bit machine.
pub const MAX_INSTANCES_PER_BACKEND: u32 = 1 << 16;

/// One instance of one backend: the backend's key in the supervisor's slab and the instance's index in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceKey {
    pub backend: usize,
    pub index: u32,
}

impl InstanceKey {
    pub fn new(backend: usize, index: u32) -> InstanceKey {
        InstanceKey { backend, index }
    }
}

/// The poll token of `key`'s health probe. `None` (the probe is not made) beyond the bounds above.
pub fn probe_token(key: InstanceKey) -> Option<Token> {
    if key.index >= MAX_INSTANCES_PER_BACKEND {
        return None;
    }
    let per_backend = usize::try_from(MAX_INSTANCES_PER_BACKEND).ok()?;
    let index = usize::try_from(key.index).ok()?;
    key.backend
        .checked_mul(per_backend)?
        .checked_add(index)?
        .checked_add(FIRST_PROBE_TOKEN)
        .map(Token)
}

/// The instance whose probe uses `token`; `None` for the waker's, the SIGCHLD pipe's, the notify
/// socket's and the alarm's.
pub fn probe_owner(token: Token) -> Option<InstanceKey> {
    let n = token.0.checked_sub(FIRST_PROBE_TOKEN)?;
    let per_backend = usize::try_from(MAX_INSTANCES_PER_BACKEND).ok()?;
    let index = u32::try_from(n % per_backend).ok()?;
    Some(InstanceKey::new(n / per_backend, index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_instance_has_its_own_probe_token_and_it_leads_back_to_it() {
        let keys = [
            InstanceKey::new(0, 0),
            InstanceKey::new(0, 1),
            InstanceKey::new(1, 0),
            InstanceKey::new(1, MAX_INSTANCES_PER_BACKEND - 1),
            InstanceKey::new(7, 3),
        ];
        let tokens: Vec<Token> = keys.iter().map(|&k| probe_token(k).unwrap()).collect();
        for (i, token) in tokens.iter().enumerate() {
            let fixed = [WAKER_TOKEN, SIGCHLD_TOKEN, NOTIFY_TOKEN, ALARM_TOKEN];
            assert!(!fixed.contains(token));
            assert_eq!(probe_owner(*token), Some(keys[i]));
            assert_eq!(tokens.iter().filter(|t| *t == token).count(), 1);
        }
        assert_eq!(probe_owner(WAKER_TOKEN), None);
        assert_eq!(probe_owner(SIGCHLD_TOKEN), None);
        assert_eq!(probe_owner(NOTIFY_TOKEN), None);
        assert_eq!(probe_owner(ALARM_TOKEN), None);
    }

    #[test]
    fn keys_beyond_the_bounds_get_no_token() {
        let too_many = InstanceKey::new(0, MAX_INSTANCES_PER_BACKEND);
        assert_eq!(probe_token(too_many), None);
        assert_eq!(probe_token(InstanceKey::new(usize::MAX, 0)), None);
    }
}
