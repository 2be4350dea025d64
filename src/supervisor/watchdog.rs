//! The orphan guard: a small process that outlives the proxy just long enough to kill its backends.
//!
//! `PR_SET_PDEATHSIG` takes a backend process down with the proxy, but not the programs that backend
//! started itself (a shell script's server, a master's workers). Those share the backend's process group,
//! so the supervisor tells this watchdog, through a pipe, every group it starts (`+PGID`) and reaps
//! (`-PGID`). When the pipe closes, because the proxy exited or was killed with SIGKILL, the watchdog sends
//! SIGKILL to every group still listed and exits. It is the proxy's own binary started with a hidden
//! argument, so it needs nothing installed beside it.

use std::collections::BTreeSet;
use std::io::{self, BufRead, Write};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};

use nix::sys::signal::{killpg, signal, SigHandler, Signal};
use nix::unistd::Pid;

/// The hidden first argument that makes `spawngate` run as the watchdog.
pub const WATCHDOG_ARG: &str = "__spawngate-watchdog";

/// Most groups remembered at once: far above any sane number of backends, so a runaway writer cannot grow
/// the watchdog without bound.
const MAX_GROUPS: usize = 65_536;

/// The proxy's end: the pipe to the watchdog.
pub struct Watchdog {
    child: Child,
    pipe: Option<ChildStdin>,
}

impl Watchdog {
    /// Starts the watchdog from the running executable. `None` (logged) when that is not possible: the
    /// proxy still works, with only the parent-death signal to protect against orphans.
    pub fn start() -> Option<Watchdog> {
        let exe = match std::env::current_exe() {
            Ok(exe) => exe,
            Err(e) => {
                log::warn!("orphan guard not started (cannot find the executable: {e})");
                return None;
            }
        };
        let spawned = Command::new(exe)
            .arg(WATCHDOG_ARG)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn();
        match spawned {
            Ok(mut child) => {
                let pipe = child.stdin.take();
                Some(Watchdog { child, pipe })
            }
            Err(e) => {
                log::warn!("orphan guard not started: {e}");
                None
            }
        }
    }

    /// A new backend process group to kill if the proxy dies.
    pub fn track(&mut self, group: u32) {
        self.send(&format!("+{group}\n"));
    }

    /// A group that is gone (reaped): its id may be reused, so it must not be killed later.
    pub fn untrack(&mut self, group: u32) {
        self.send(&format!("-{group}\n"));
    }

    fn send(&mut self, line: &str) {
        let Some(pipe) = self.pipe.as_mut() else {
            return;
        };
        if let Err(e) = pipe.write_all(line.as_bytes()) {
            log::warn!("orphan guard stopped answering: {e}");
            self.pipe = None;
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Closing the pipe is the signal to finish; by now every group was reaped and untracked.
        self.pipe = None;
        let _ = self.child.wait();
    }
}

/// The watchdog's main: follow the pipe on stdin, then kill what is left.
pub fn run() -> ExitCode {
    // A Ctrl-C or a service manager's SIGTERM aimed at the whole group must not end the guard before
    // the proxy has had its chance to stop the backends cleanly.
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: installing SIG_IGN runs no handler code, so nothing here can be async-signal-unsafe.
        let _ = unsafe { signal(sig, SigHandler::SigIgn) };
    }
    let groups = follow(io::stdin().lock());
    for group in groups {
        if let Ok(raw) = i32::try_from(group) {
            let _ = killpg(Pid::from_raw(raw), Signal::SIGKILL);
        }
    }
    ExitCode::SUCCESS
}

/// Applies `+PGID` / `-PGID` lines until end of input; returns the groups still listed. Anything else on a
/// line is ignored (group 0 or 1 would name ourselves or init, so they are never accepted).
fn follow(input: impl BufRead) -> BTreeSet<u32> {
    let mut groups = BTreeSet::new();
    for line in input.lines() {
        let Ok(line) = line else { break };
        let (sign, number) = line.split_at(line.len().min(1));
        let Ok(group) = number.parse::<u32>() else {
            continue;
        };
        if group <= 1 {
            continue;
        }
        match sign {
            "+" if groups.len() < MAX_GROUPS => {
                groups.insert(group);
            }
            "-" => {
                groups.remove(&group);
            }
            _ => {}
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_additions_and_removals() {
        let input = b"+100\n+200\n-100\n+300\ngarbage\n+1\n+0\n-999\n+\n" as &[u8];
        let left: Vec<u32> = follow(input).into_iter().collect();
        assert_eq!(left, vec![200, 300]);
    }
}
