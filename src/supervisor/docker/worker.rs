//! The thread behind one container: the start sequence (image, create, start), then watching it (output
//! to the log, wait for the exit, remove it), reporting each milestone to the supervisor.
//!
//! ```text
//!  connect ─▶ image per pull_policy ─▶ create (name taken: ours? remove, retry) ─▶ start ─▶ Running
//!     └──────── any failure (the created container removed again) ──────────────────────▶ StartFailed
//!  Running: follow logs (own thread) ∥ wait for not-running ─▶ remove ─▶ Exited(status, last output)
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use nix::sys::signal::Signal;

use super::client::{Docker, DockerError};
use super::create::{create_body, CreateSpec};
use super::endpoint::Endpoint;
use super::logs;
use super::owner::{Owner, Ownership, SESSION_LABEL};
use super::{ContainerEvent, DriverEvent};
use crate::config::{DockerSpec, PullPolicy};
use crate::json::Json;
use crate::msg::Mailbox;
use crate::supervisor::keys::InstanceKey;
use crate::supervisor::output::OutputSink;

/// Create attempts when the name is taken by a container that may be removed; the race with a leftover
/// sweep removing the same container settles within a few rounds.
const MAX_CREATE_ATTEMPTS: usize = 5;
/// Pause before creating again after the daemon said the old container's removal is still going on.
const REMOVAL_SETTLE: Duration = Duration::from_millis(200);
/// Waits for the exit before giving up on a daemon that keeps failing the wait call.
const WAIT_ATTEMPTS: usize = 5;
const WAIT_RETRY_PAUSE: Duration = Duration::from_secs(1);
/// How long the exit report waits for the log follower to deliver the last lines. The stream ends as
/// soon as the container stops, so this only matters when the daemon is slow.
const LOG_DRAIN_WAIT: Duration = Duration::from_secs(2);
/// Attempts to remove a stopped container before leaving it to the next leftover sweep.
const REMOVE_ATTEMPTS: usize = 3;
const REMOVE_RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Tells the supervisor about one start of one instance (its key and the start's serial number).
#[derive(Clone)]
pub struct Reporter {
    pub mailbox: Mailbox<DriverEvent>,
    pub key: InstanceKey,
    pub serial: u64,
}

impl Reporter {
    /// False when the supervisor is gone.
    fn send(&self, event: ContainerEvent) -> bool {
        self.mailbox.send(DriverEvent {
            key: self.key,
            serial: self.serial,
            event,
        })
    }
}

/// Everything the thread needs; owned, since it outlives the call that spawned it.
pub struct StartJob {
    pub hostname: String,
    /// The container's name: the instance's, which for the first instance is `spec.container_name`.
    pub name: String,
    pub spec: DockerSpec,
    /// The container port the program listens on.
    pub port: u16,
    /// Where on the host that port is published: the instance's address (`None`: not published).
    pub publish: Option<SocketAddr>,
    pub env: Vec<(String, String)>,
    pub owner: Owner,
    /// The session the container serves, for its `spawngate.session` label.
    pub session: Option<Box<str>>,
    /// A pull may take this long (the backend's startup timeout).
    pub pull_timeout: Duration,
    /// Set when the supervisor wants the start abandoned (stop or kill while starting).
    pub cancel: Arc<AtomicBool>,
    pub report: Reporter,
    /// Where the container's output goes: the log, under the instance's name, and its tail.
    pub output: OutputSink,
}

impl StartJob {
    fn name(&self) -> &str {
        &self.name
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Acquire)
    }
}

/// The thread's body: start, then watch until the container is gone.
pub fn run(job: StartJob) {
    let (docker, id) = match start(&job) {
        Ok(started) => started,
        Err(why) => {
            job.report.send(ContainerEvent::StartFailed(why));
            return;
        }
    };
    let running = ContainerEvent::Running {
        id: id.clone(),
        docker: docker.clone(),
    };
    if !job.report.send(running) {
        // Nobody is left to stop it later.
        remove(&docker, &id, &job.hostname);
        return;
    }
    let (how, last_output) = watch(&docker, &id, &job.hostname, &job.output);
    job.report.send(ContainerEvent::Exited { how, last_output });
}

fn start(job: &StartJob) -> Result<(Docker, String), String> {
    let endpoint = Endpoint::for_backend(job.spec.docker_host.as_deref())?;
    let docker = Docker::connect(endpoint).map_err(|e| e.to_string())?;
    log::debug!(
        "{}: Docker daemon at {} (API {})",
        job.hostname,
        docker.endpoint(),
        docker.version()
    );
    ensure_image(&docker, job)?;
    if job.cancelled() {
        return Err("stopped before the container was created".to_string());
    }
    let id = create(&docker, job)?;
    if job.cancelled() {
        remove(&docker, &id, &job.hostname);
        return Err("stopped before the container started".to_string());
    }
    if let Err(e) = docker.start(&id) {
        remove(&docker, &id, &job.hostname);
        return Err(format!("cannot start container {}: {e}", job.name()));
    }
    Ok((docker, id))
}

fn ensure_image(docker: &Docker, job: &StartJob) -> Result<(), String> {
    let image = &job.spec.image;
    let pull = match job.spec.pull_policy {
        PullPolicy::Always => true,
        PullPolicy::Never | PullPolicy::IfNotPresent => {
            let present = docker
                .image_present(image)
                .map_err(|e| format!("cannot look up image {image}: {e}"))?;
            match (present, job.spec.pull_policy) {
                (true, _) => false,
                (false, PullPolicy::Never) => {
                    return Err(format!(
                        "image {image} is not present locally and pull_policy is \"never\" \
                         (build or pull it first, or allow pulling)"
                    ))
                }
                (false, _) => true,
            }
        }
    };
    if pull {
        log::info!("{}: pulling image {image}", job.hostname);
        docker
            .pull(image, job.pull_timeout)
            .map_err(|e| format!("cannot pull image {image} from its registry: {e}"))?;
        log::info!("{}: pulled image {image}", job.hostname);
    }
    Ok(())
}

fn create(docker: &Docker, job: &StartJob) -> Result<String, String> {
    let mut labels = job.owner.labels(&job.hostname);
    if let Some(id) = &job.session {
        labels.push((SESSION_LABEL.to_string(), id.to_string()));
    }
    let body = create_body(&CreateSpec {
        spec: &job.spec,
        port: job.port,
        publish: job.publish,
        env: &job.env,
        labels: &labels,
    });
    let name = job.name();
    for _ in 1..MAX_CREATE_ATTEMPTS {
        match docker.create(name, &body) {
            Ok(id) => return Ok(id),
            Err(e) if e.status() == Some(409) => clear_name(docker, job)?,
            Err(e) => return Err(format!("cannot create container {name}: {e}")),
        }
    }
    docker
        .create(name, &body)
        .map_err(|e| format!("cannot create container {name}: {e}"))
}

/// The name is taken: remove the holder if it is ours (or a leftover), refuse otherwise.
fn clear_name(docker: &Docker, job: &StartJob) -> Result<(), String> {
    let name = job.name();
    let holder = docker
        .inspect(name)
        .map_err(|e| format!("container name {name} is taken and cannot be inspected: {e}"))?;
    let Some(holder) = holder else {
        return Ok(()); // removed meanwhile
    };
    match job.owner.judge(holder.path(&["Config", "Labels"])) {
        Ownership::Ours | Ownership::Orphan { .. } => {
            let id = holder.str_at("Id").unwrap_or(name);
            log::info!(
                "{}: removing an earlier container {name} of spawngate to reuse its name",
                job.hostname
            );
            match docker.remove(id) {
                Ok(()) => Ok(()),
                // "removal of container ... is already in progress", e.g. by the leftover sweep.
                Err(e) if e.status() == Some(409) => {
                    std::thread::sleep(REMOVAL_SETTLE);
                    Ok(())
                }
                Err(e) => Err(format!("cannot remove the earlier container {name}: {e}")),
            }
        }
        Ownership::Someone(who) => Err(format!(
            "container name {name} is taken by a container of {who}; it is left alone"
        )),
        Ownership::NotManaged => Err(format!(
            "a container named {name} already exists and was not created by spawngate; it is left \
             alone (remove it, or set another container_name)"
        )),
    }
}

/// Follows the output and waits for the end; removes the container; says how it ended and what it
/// wrote last.
fn watch(
    docker: &Docker,
    id: &str,
    hostname: &str,
    output: &OutputSink,
) -> (String, Option<String>) {
    let (tail_tx, tail_rx) = mpsc::channel();
    let follower = {
        let (docker, id, hostname) = (docker.clone(), id.to_string(), hostname.to_string());
        let output = output.clone();
        std::thread::Builder::new()
            .name("docker-logs".to_string())
            .spawn(move || {
                let _ = tail_tx.send(logs::follow(&docker, &id, &hostname, &output));
            })
    };
    if let Err(e) = follower {
        log::warn!("{hostname}: cannot follow the container's output: {e}");
    }
    let how = wait_for_exit(docker, id, hostname);
    let tail = tail_rx.recv_timeout(LOG_DRAIN_WAIT).unwrap_or_default();
    remove(docker, id, hostname);
    (how, tail.summary())
}

fn wait_for_exit(docker: &Docker, id: &str, hostname: &str) -> String {
    let mut last_error = String::new();
    for _ in 0..WAIT_ATTEMPTS {
        let error = match docker.wait(id) {
            Ok(code) => return describe_code(code),
            Err(e) if e.status() == Some(404) => {
                return "an unknown status (the container was removed by someone else)".into()
            }
            Err(e) => e,
        };
        log::warn!("{hostname}: waiting for the container to end failed: {error}");
        match docker.inspect(id) {
            Ok(None) => return "an unknown status (the container disappeared)".into(),
            Ok(Some(info)) => {
                let running = info.path(&["State", "Running"]).and_then(Json::as_bool);
                let code = info.path(&["State", "ExitCode"]).and_then(Json::as_i64);
                if let (Some(false), Some(code)) = (running, code) {
                    return describe_code(code);
                }
            }
            Err(_) => {}
        }
        last_error = error.to_string();
        std::thread::sleep(WAIT_RETRY_PAUSE);
    }
    format!("an unknown status (lost track of the container: {last_error})")
}

/// "status 3", or "status 137 (signal SIGKILL)" for the codes Docker uses for a signal death.
pub fn describe_code(code: i64) -> String {
    let signal = code
        .checked_sub(128)
        .filter(|n| (1..=64).contains(n))
        .and_then(|n| i32::try_from(n).ok())
        .and_then(|n| Signal::try_from(n).ok());
    match signal {
        Some(signal) => format!("status {code} (signal {signal})"),
        None => format!("status {code}"),
    }
}

/// Removes the container (killing it if needed); failures are logged, the next leftover sweep or a
/// name clash at the next start deals with what remains.
pub fn remove(docker: &Docker, id: &str, hostname: &str) {
    let mut outcome: Result<(), DockerError> = Ok(());
    for attempt in 0..REMOVE_ATTEMPTS {
        outcome = docker.remove(id);
        match &outcome {
            Ok(()) => return,
            // Someone else is removing it already.
            Err(e) if e.status() == Some(409) => return,
            Err(_) if attempt + 1 < REMOVE_ATTEMPTS => std::thread::sleep(REMOVE_RETRY_PAUSE),
            Err(_) => {}
        }
    }
    if let Err(e) = outcome {
        log::error!("{hostname}: cannot remove container {id}: {e}");
    }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
