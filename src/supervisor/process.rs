//! The local-process driver: spawn a backend in its own process group, signal the group, notice the exit
//! and reap it. Its stdout and stderr are pipes the output thread reads (`output`), unless there is none.
//!
//! Each backend leads its own process group so one signal reaches everything it forked. It is also tied to
//! the proxy's life with `PR_SET_PDEATHSIG(SIGKILL)`, so even a SIGKILLed proxy leaves no backend behind
//! (the group's grandchildren are caught by the group kill that follows every exit).

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};

use nix::errno::Errno;
use nix::sys::prctl;
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::{getpid, getppid, Pid};

use super::activation::{hold_descriptor_3, ExecPlan};
use super::output::{attach_child, OutputSink};
use crate::config::LocalSpec;

/// A running (or exited but not yet reaped) backend process.
#[derive(Debug)]
pub struct ProcessInstance {
    child: Child,
    /// The child's pid, which is also its process group id.
    group: Pid,
    reaped: bool,
    /// A socket-activated instance's listener, kept until the process is reaped: closing it earlier
    /// would refuse the connections still waiting in its backlog, and a restart binds it anew.
    listener: Option<OwnedFd>,
}

impl ProcessInstance {
    /// Starts `spec` with exactly `env` added to the proxy's own environment; with a `listener`, socket
    /// activated (`activation.rs`): the program inherits it as descriptor 3 with `LISTEN_FDS=1`. Its
    /// stdout and stderr go to `output` (pipes, when it has a thread to read them; else the proxy's own).
    ///
    /// Must be called from the supervisor thread: the parent-death signal fires when the *thread* that
    /// forked the child exits, and that thread lives as long as the proxy.
    pub fn spawn(
        spec: &LocalSpec,
        env: &[(String, String)],
        listener: Option<OwnedFd>,
        output: &OutputSink,
    ) -> Result<Self, String> {
        let supervisor_pid = getpid();
        let stdio = || match output.captures() {
            true => Stdio::piped(),
            false => Stdio::inherit(),
        };
        let mut command = Command::new(&spec.command);
        // The proxy's own service-manager variables describe the proxy, not the backend.
        for name in crate::systemd::OWN_VARIABLES {
            command.env_remove(name);
        }
        command
            .args(&spec.args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(stdio())
            .stderr(stdio())
            .process_group(0);
        if let Some(dir) = &spec.working_dir {
            command.current_dir(dir);
        }
        let mut plan = match &listener {
            Some(fd) => Some(
                ExecPlan::new(
                    &spec.command,
                    &spec.args,
                    env,
                    &crate::systemd::OWN_VARIABLES,
                    fd,
                )
                .map_err(|e| describe_spawn_error(spec, &e))?,
            ),
            None => None,
        };
        // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe calls are
        // allowed. It makes two plain syscalls (prctl, getppid), compares integers and builds an io::Error
        // from a raw errno (no allocation); on error std reports it to the parent and calls `_exit`. For
        // a socket-activated instance it then execs itself from the plan made above (see there).
        unsafe {
            command.pre_exec(move || {
                prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
                // If the proxy died between fork and prctl, the death signal was never armed: give up now.
                if getppid() != supervisor_pid {
                    return Err(io::Error::from_raw_os_error(Errno::ESRCH as i32));
                }
                match plan.as_mut() {
                    // SAFETY: this is the child between fork and exec, as `exec_in_child` requires; it
                    // makes only async-signal-safe calls on memory the plan allocated before the fork,
                    // and returns only with an error.
                    Some(plan) => Err(plan.exec_in_child()),
                    None => Ok(()),
                }
            });
        }
        let held = listener.as_ref().and_then(hold_descriptor_3);
        let spawned = command.spawn();
        drop(held);
        let mut child = spawned.map_err(|e| describe_spawn_error(spec, &e))?;
        attach_child(output, &mut child);
        let Ok(raw_pid) = i32::try_from(child.id()) else {
            // Cannot happen on Linux (pid_max < 2^22); refuse rather than signal a wrong group.
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("`{}` got a pid out of range", spec.command));
        };
        Ok(ProcessInstance {
            child,
            group: Pid::from_raw(raw_pid),
            reaped: false,
            listener,
        })
    }

    /// Spawned on a listener the supervisor bound (socket activation).
    pub fn is_socket_activated(&self) -> bool {
        self.listener.is_some()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the whole process group. A group that is already gone is not an error.
    pub fn signal_group(&self, signal: Signal) {
        if self.reaped {
            // The group id may belong to someone else by now.
            return;
        }
        match killpg(self.group, signal) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => log::warn!("cannot send {signal} to process group {}: {e}", self.group),
        }
    }

    /// If the process has exited: kills what is left of its group, reaps it and says how it ended.
    ///
    /// The exit is first observed without reaping (`WNOWAIT`): while the zombie exists its pid, and so its
    /// group id, cannot be reused, which makes the leftover kill safe.
    pub fn poll_exit(&mut self) -> Option<String> {
        if self.reaped {
            return None;
        }
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(Id::Pid(self.group), flags) {
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => return None,
            Ok(_) => self.signal_group(Signal::SIGKILL),
            // Someone else reaped it (nothing in this process should): it is gone either way.
            Err(Errno::ECHILD) => {
                self.reaped = true;
                return Some("an unknown status".to_string());
            }
            Err(e) => {
                log::warn!("waitid({}) failed: {e}", self.group);
                return None;
            }
        }
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.reaped = true;
                self.listener = None;
                Some(describe_exit(status))
            }
            Ok(None) => None,
            Err(e) => {
                log::warn!("cannot reap pid {}: {e}", self.group);
                None
            }
        }
    }

    /// SIGKILLs the group and waits for the process (blocking; the kill cannot be ignored).
    pub fn kill_and_reap(&mut self) {
        if self.reaped {
            return;
        }
        self.signal_group(Signal::SIGKILL);
        if let Err(e) = self.child.wait() {
            log::warn!("cannot reap pid {}: {e}", self.group);
        }
        self.reaped = true;
        self.listener = None;
        // Grandchildren that were in the group died with the first kill; nothing else to catch here.
    }
}

impl Drop for ProcessInstance {
    /// A backend is never left running or unreaped, whatever path dropped its handle.
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

fn describe_spawn_error(spec: &LocalSpec, error: &io::Error) -> String {
    match &spec.working_dir {
        Some(dir) => format!(
            "cannot run `{}` in {}: {error}",
            spec.command,
            dir.display()
        ),
        None => format!("cannot run `{}`: {error}", spec.command),
    }
}

/// "status 1" or "signal SIGKILL": how a process ended, in the words the lifecycle messages use.
pub fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("status {code}");
    }
    match status.signal() {
        Some(raw) => match Signal::try_from(raw) {
            Ok(signal) => format!("signal {signal}"),
            Err(_) => format!("signal {raw}"),
        },
        None => "an unknown status".to_string(),
    }
}

#[cfg(test)]
#[path = "process_tests.rs"]
mod tests;
