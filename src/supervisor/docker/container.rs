//! A container as the supervisor holds it: which phase it is in, and the non-blocking stop and kill that
//! hand the actual API call to a short-lived thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::client::Docker;
use super::worker::remove;
use super::ContainerEvent;

/// Characters of a container id shown in logs, as `docker ps` shows them.
const SHORT_ID_LEN: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopKind {
    Terminate,
    Kill,
}

impl StopKind {
    fn verb(self) -> &'static str {
        match self {
            StopKind::Terminate => "stop",
            StopKind::Kill => "kill",
        }
    }
}

#[derive(Debug)]
enum Phase {
    /// The worker is pulling, creating or starting; a stop asked for meanwhile waits here.
    Creating { pending: Option<StopKind> },
    /// `stopping`: a stop or kill went out, so its end is expected.
    Running {
        id: String,
        docker: Docker,
        stopping: bool,
    },
    /// Removed (or never created); nothing is left to clean up.
    Gone,
}

/// How a container's life ended, for the lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It never ran; the text says why.
    StartFailed(String),
    /// It ran, ended and was removed; the text says how it ended (with its last output when the end
    /// was not asked for).
    Exited(String),
}

#[derive(Debug)]
pub struct ContainerInstance {
    serial: u64,
    hostname: String,
    name: String,
    grace: Duration,
    cancel: Arc<AtomicBool>,
    phase: Phase,
}

impl ContainerInstance {
    pub(super) fn new(
        serial: u64,
        hostname: &str,
        name: &str,
        grace: Duration,
        cancel: Arc<AtomicBool>,
    ) -> Self {
        ContainerInstance {
            serial,
            hostname: hostname.to_string(),
            name: name.to_string(),
            grace,
            cancel,
            phase: Phase::Creating { pending: None },
        }
    }

    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// True once the container runs. Before that its published port leads nowhere, and a connection
    /// made while Docker is still wiring the container's network can stall every connection to it for
    /// about a second (the address lookup fails and is only retried later), so it is not probed yet.
    pub fn is_running(&self) -> bool {
        matches!(self.phase, Phase::Running { .. })
    }

    /// "container spawngate-app 0123456789ab": names it in logs.
    pub fn describe(&self) -> String {
        match &self.phase {
            Phase::Running { id, .. } => format!("container {} {}", self.name, short(id)),
            _ => format!("container {}", self.name),
        }
    }

    /// `docker stop` with the grace period (SIGTERM, then SIGKILL from the daemon).
    pub fn terminate(&mut self) {
        self.stop(StopKind::Terminate);
    }

    pub fn kill(&mut self) {
        self.stop(StopKind::Kill);
    }

    fn stop(&mut self, kind: StopKind) {
        match &mut self.phase {
            Phase::Creating { pending } => {
                self.cancel.store(true, Ordering::Release);
                if *pending != Some(StopKind::Kill) {
                    *pending = Some(kind);
                }
            }
            Phase::Running {
                id,
                docker,
                stopping,
            } => {
                *stopping = true;
                spawn_stop(kind, docker.clone(), id.clone(), &self.hostname, self.grace);
            }
            Phase::Gone => {}
        }
    }

    /// A worker's report about this instance; `Some` once the container is gone for good.
    pub fn on_event(&mut self, event: ContainerEvent) -> Option<Outcome> {
        match event {
            ContainerEvent::Running { id, docker } => {
                let pending = match &self.phase {
                    Phase::Creating { pending } => *pending,
                    // Reported twice or after the end: keep what we know.
                    _ => return None,
                };
                log::info!(
                    "{}: container {} {} is running",
                    self.hostname,
                    self.name,
                    short(&id)
                );
                if let Some(kind) = pending {
                    spawn_stop(kind, docker.clone(), id.clone(), &self.hostname, self.grace);
                }
                self.phase = Phase::Running {
                    id,
                    docker,
                    stopping: pending.is_some(),
                };
                None
            }
            ContainerEvent::StartFailed(why) => {
                self.phase = Phase::Gone;
                Some(Outcome::StartFailed(why))
            }
            ContainerEvent::Exited { how, last_output } => {
                let expected = matches!(self.phase, Phase::Running { stopping: true, .. });
                self.phase = Phase::Gone;
                let how = match last_output {
                    Some(lines) if !expected => format!("{how}; last output: {lines}"),
                    _ => how,
                };
                Some(Outcome::Exited(how))
            }
        }
    }

    /// Removes the container now, blocking: for when nobody will be around to hear of its end.
    pub fn kill_and_remove(&mut self) {
        self.cancel.store(true, Ordering::Release);
        if let Phase::Running { id, docker, .. } = std::mem::replace(&mut self.phase, Phase::Gone) {
            remove(&docker, &id, &self.hostname);
        }
    }
}

impl Drop for ContainerInstance {
    /// A container is never left behind by a dropped handle: a start in progress is abandoned (the worker
    /// removes what it created), a running one is removed in the background.
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Release);
        if let Phase::Running { id, docker, .. } = std::mem::replace(&mut self.phase, Phase::Gone) {
            remove_in_background(docker, id, self.hostname.clone());
        }
    }
}

pub fn short(id: &str) -> &str {
    id.get(..SHORT_ID_LEN).unwrap_or(id)
}

fn spawn_stop(kind: StopKind, docker: Docker, id: String, hostname: &str, grace: Duration) {
    let host = hostname.to_string();
    let spawned = std::thread::Builder::new()
        .name("docker-stop".to_string())
        .spawn(move || {
            let result = match kind {
                StopKind::Terminate => docker.stop(&id, grace),
                StopKind::Kill => docker.kill(&id),
            };
            if let Err(e) = result {
                log::warn!(
                    "{host}: cannot {} container {}: {e}",
                    kind.verb(),
                    short(&id)
                );
            }
        });
    if let Err(e) = spawned {
        // The lifecycle escalates to a kill after the grace period, which tries again.
        log::error!("{hostname}: cannot start a thread to stop the container: {e}");
    }
}

/// Removes a container nobody tracks any more (a dropped handle, a start that finished too late).
pub fn remove_in_background(docker: Docker, id: String, hostname: String) {
    let spawned = std::thread::Builder::new()
        .name("docker-remove".to_string())
        .spawn(move || remove(&docker, &id, &hostname));
    if let Err(e) = spawned {
        log::error!("cannot start a thread to remove a container: {e}");
    }
}
