//! Which Spawngate a container belongs to, told by its labels, and whether that Spawngate still runs.
//!
//! Every container Spawngate creates carries `spawngate.managed=true`, `spawngate.host=<backend>`,
//! `spawngate.machine=<this machine>` and `spawngate.instance=<pid>-<start time>` of the proxy process
//! (a session's container also `spawngate.session=<id>`).
//! A managed container of this machine whose proxy process is gone is a leftover (the proxy was
//! SIGKILLed or crashed) and may be removed; one whose proxy still runs belongs to another live Spawngate
//! and is left alone, so several proxies can share one daemon. Containers of other machines (a shared
//! `tcp://` daemon) are never judged: only their own proxy can tell whether it is alive.

use std::path::Path;

use crate::json::Json;

pub const MANAGED_LABEL: &str = "spawngate.managed";
pub const INSTANCE_LABEL: &str = "spawngate.instance";
pub const MACHINE_LABEL: &str = "spawngate.machine";
pub const HOST_LABEL: &str = "spawngate.host";
/// On a session's container: the session id.
pub const SESSION_LABEL: &str = "spawngate.session";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// "<pid>-<start time in clock ticks since boot>": unique among the processes of one boot.
    pub instance: String,
    /// "<hostname>/<machine id>".
    pub machine: String,
}

/// How a managed container relates to this proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// Created by this very process.
    Ours,
    /// Created by a Spawngate on this machine that no longer runs.
    Orphan { instance: String },
    /// Belongs to a live Spawngate, or to another machine, or carries no owner we can read.
    Someone(String),
    /// Not created by Spawngate at all.
    NotManaged,
}

impl Owner {
    pub fn current() -> Owner {
        let pid = std::process::id();
        let started = process_start_ticks(pid).unwrap_or(0);
        Owner {
            instance: format!("{pid}-{started}"),
            machine: machine_identity(),
        }
    }

    pub fn labels(&self, hostname: &str) -> Vec<(String, String)> {
        vec![
            (MANAGED_LABEL.to_string(), "true".to_string()),
            (HOST_LABEL.to_string(), hostname.to_string()),
            (MACHINE_LABEL.to_string(), self.machine.clone()),
            (INSTANCE_LABEL.to_string(), self.instance.clone()),
        ]
    }

    /// Judges a container by its labels object (`Config.Labels` or `Labels` of a list entry).
    pub fn judge(&self, labels: Option<&Json>) -> Ownership {
        self.judge_with(labels, instance_alive)
    }

    pub fn judge_with(&self, labels: Option<&Json>, alive: impl Fn(&str) -> bool) -> Ownership {
        let label = |name: &str| labels.and_then(|l| l.str_at(name));
        if label(MANAGED_LABEL) != Some("true") {
            return Ownership::NotManaged;
        }
        let (Some(machine), Some(instance)) = (label(MACHINE_LABEL), label(INSTANCE_LABEL)) else {
            return Ownership::Someone("a Spawngate whose labels are incomplete".to_string());
        };
        if machine != self.machine {
            return Ownership::Someone(format!("a Spawngate on another machine ({machine})"));
        }
        if instance == self.instance {
            return Ownership::Ours;
        }
        if alive(instance) {
            return Ownership::Someone(format!("another running Spawngate (instance {instance})"));
        }
        Ownership::Orphan {
            instance: instance.to_string(),
        }
    }
}

/// True while the process named by "<pid>-<start ticks>" runs (a reused pid has another start time).
pub fn instance_alive(instance: &str) -> bool {
    let Some((pid, started)) = instance.split_once('-') else {
        return false;
    };
    let (Ok(pid), Ok(started)) = (pid.parse::<u32>(), started.parse::<u64>()) else {
        return false;
    };
    process_start_ticks(pid) == Some(started)
}

/// Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot.
fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    start_ticks_of(&stat)
}

fn start_ticks_of(stat: &str) -> Option<u64> {
    // The command name (field 2) may contain spaces and parentheses; fields after its last ')' are plain.
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` begins with field 3 (state), so field 22 is the 20th word.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// This machine's name for the labels: the kernel hostname plus the machine id (or the boot id where
/// there is no machine id), so two hosts sharing one daemon never judge each other's containers.
fn machine_identity() -> String {
    let read = |path: &str| {
        std::fs::read_to_string(Path::new(path))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let hostname = read("/proc/sys/kernel/hostname").unwrap_or_else(|| "localhost".to_string());
    let id = read("/etc/machine-id")
        .or_else(|| read("/proc/sys/kernel/random/boot_id"))
        .unwrap_or_default();
    format!("{hostname}/{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Json {
        Json::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Json::String(v.to_string())))
                .collect(),
        )
    }

    fn owner() -> Owner {
        Owner {
            instance: "10-500".into(),
            machine: "box/abc".into(),
        }
    }

    #[test]
    fn our_own_labels_judge_as_ours() {
        let me = owner();
        let ours = labels(
            &me.labels("app.localhost")
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
        );
        assert_eq!(me.judge_with(Some(&ours), |_| true), Ownership::Ours);
        assert_eq!(ours.str_at(HOST_LABEL), Some("app.localhost"));
    }

    #[test]
    fn a_dead_owner_on_this_machine_makes_an_orphan() {
        let other = labels(&[
            (MANAGED_LABEL, "true"),
            (MACHINE_LABEL, "box/abc"),
            (INSTANCE_LABEL, "11-600"),
        ]);
        assert_eq!(
            owner().judge_with(Some(&other), |_| false),
            Ownership::Orphan {
                instance: "11-600".into()
            }
        );
        assert!(matches!(
            owner().judge_with(Some(&other), |i| i == "11-600"),
            Ownership::Someone(_)
        ));
    }

    #[test]
    fn other_machines_and_strangers_are_left_alone() {
        let remote = labels(&[
            (MANAGED_LABEL, "true"),
            (MACHINE_LABEL, "elsewhere/1"),
            (INSTANCE_LABEL, "11-600"),
        ]);
        assert!(matches!(
            owner().judge_with(Some(&remote), |_| false),
            Ownership::Someone(why) if why.contains("another machine")
        ));
        let partial = labels(&[(MANAGED_LABEL, "true")]);
        assert!(matches!(
            owner().judge_with(Some(&partial), |_| false),
            Ownership::Someone(_)
        ));
        let stranger = labels(&[("maintainer", "someone")]);
        assert_eq!(
            owner().judge_with(Some(&stranger), |_| false),
            Ownership::NotManaged
        );
        assert_eq!(owner().judge_with(None, |_| false), Ownership::NotManaged);
        assert_eq!(
            owner().judge_with(Some(&Json::Null), |_| false),
            Ownership::NotManaged
        );
    }

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not() {
        let me = Owner::current();
        assert!(instance_alive(&me.instance), "{}", me.instance);
        let pid = std::process::id();
        assert!(!instance_alive(&format!("{pid}-1")));
        for junk in ["", "x", "1-", "-1", "a-b", "99999999999-1"] {
            assert!(!instance_alive(junk), "{junk}");
        }
    }

    #[test]
    fn start_ticks_survive_odd_command_names() {
        let stat = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(start_ticks_of(stat), Some(98765));
        assert_eq!(start_ticks_of("garbage"), None);
        assert_eq!(start_ticks_of("1 (x) S 1"), None);
    }
}
