//! Docker container backends through the Docker Engine HTTP API (never the `docker` CLI).
//!
//! ```text
//!  supervisor thread                      worker threads (may block)              Docker daemon
//!  ─────────────────                      ──────────────────────────              ─────────────
//!  Effect::Spawn ─▶ DockerDriver::start ─▶ docker-start: image, create, start ──▶ /images, /containers
//!                                          │ Running{id} ─┐   then wait + logs
//!  drain DriverEvents ◀── Mailbox+Waker ───┘ Exited{..} ──┤   (docker-logs thread)
//!  ContainerInstance::on_event ─▶ Input::SpawnFailed / Exited to the lifecycle
//!  Effect::Terminate / Kill ─▶ docker-stop thread: /stop?t=grace, /kill
//! ```
//!
//! Every Engine API call blocks, so none runs on the supervisor's loop: one slow daemon call delays only
//! the container it is for. Results come back as [`DriverEvent`]s through the supervisor's mailbox,
//! tagged with the instance's key and a serial number so a late report about an old start is recognised.
//!
//! Files: `endpoint` (where the daemon is), `transport` (ureq over a Unix socket), `client` (versioned
//! calls, error bodies), `api` (the calls), `json` (reading replies), `create` (the create body),
//! `worker` (start and watch), `container` (the supervisor's handle), `logs` + `frames` (output to the
//! log and the instance's tail), `owner` + `leftovers` (labels, and removing containers of a dead proxy).

mod api;
mod client;
mod container;
mod create;
mod endpoint;
#[cfg(test)]
pub(super) mod fake_daemon;
mod frames;
mod leftovers;
mod logs;
mod owner;
mod transport;
mod worker;

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

pub use client::Docker;
pub use container::{ContainerInstance, Outcome};
pub use create::container_ready_url;

use super::keys::InstanceKey;
use super::output::OutputSink;
use crate::config::{BackendConfig, BackendKind, DockerSpec};
use crate::msg::Mailbox;
use crate::upstream::instance::InstanceSpec;
use container::remove_in_background;
use endpoint::Endpoint;
use owner::Owner;
use worker::{Reporter, StartJob};

/// A worker's report, addressed to one instance of one backend.
#[derive(Debug)]
pub struct DriverEvent {
    /// The instance's key in the supervisor (its backend's key and its own index).
    pub key: InstanceKey,
    /// Which start of it: reports about a container the supervisor has let go are recognised by this.
    pub serial: u64,
    pub event: ContainerEvent,
}

#[derive(Debug)]
pub enum ContainerEvent {
    /// The container runs; stops and kills go to this id.
    Running { id: String, docker: Docker },
    /// It never ran (and nothing of it is left); the text says why.
    StartFailed(String),
    /// It ran, ended and has been removed: how it ended ("status 3") and the last lines it wrote.
    Exited {
        how: String,
        last_output: Option<String>,
    },
}

/// The supervisor's side of the driver: where workers report, and who this proxy is to Docker.
pub struct DockerDriver {
    events: Mailbox<DriverEvent>,
    owner: Owner,
    next_serial: u64,
    /// Daemons already searched for leftovers by this process.
    swept: HashSet<Endpoint>,
}

impl DockerDriver {
    pub fn new(events: Mailbox<DriverEvent>) -> Self {
        DockerDriver {
            events,
            owner: Owner::current(),
            next_serial: 0,
            swept: HashSet::new(),
        }
    }

    /// Begins starting the container of `instance` (reported under `key`) on a worker thread; returns
    /// its handle at once. `env` is the complete set of variables to add (the config's, `PORT`, the ready
    /// URL); the container's output goes to `output`.
    pub fn start(
        &mut self,
        key: InstanceKey,
        config: &BackendConfig,
        spec: &DockerSpec,
        instance: &InstanceSpec,
        env: Vec<(String, String)>,
        output: &OutputSink,
    ) -> Result<ContainerInstance, String> {
        self.next_serial += 1;
        let serial = self.next_serial;
        let cancel = Arc::new(AtomicBool::new(false));
        let name = spec.container_name.clone();
        let job = StartJob {
            hostname: config.hostname.clone(),
            name: name.clone(),
            spec: spec.clone(),
            port: instance.port,
            publish: instance.addr.tcp(),
            env,
            owner: self.owner.clone(),
            session: config.session.as_ref().map(|tag| tag.id.clone()),
            pull_timeout: config.timings.startup_timeout,
            cancel: cancel.clone(),
            report: Reporter {
                mailbox: self.events.clone(),
                key,
                serial,
            },
            output: output.clone(),
        };
        std::thread::Builder::new()
            .name("docker-start".to_string())
            .spawn(move || worker::run(job))
            .map_err(|e| format!("cannot start a thread to run the container: {e}"))?;
        Ok(ContainerInstance::new(
            serial,
            &config.hostname,
            &name,
            config.timings.shutdown_grace_period,
            cancel,
        ))
    }

    /// Once per daemon: removes containers an earlier, dead Spawngate left there (on a thread).
    pub fn sweep_leftovers(&mut self, config: &BackendConfig) {
        let BackendKind::Docker(spec) = &config.kind else {
            return;
        };
        let endpoint = match Endpoint::for_backend(spec.docker_host.as_deref()) {
            Ok(endpoint) => endpoint,
            Err(why) => {
                log::debug!("{}: no leftover sweep: {why}", config.hostname);
                return;
            }
        };
        if !self.swept.insert(endpoint.clone()) {
            return;
        }
        let owner = self.owner.clone();
        let spawned = std::thread::Builder::new()
            .name("docker-sweep".to_string())
            .spawn(move || leftovers::sweep(&endpoint, &owner));
        if let Err(e) = spawned {
            log::warn!("cannot start a thread to look for leftover containers: {e}");
        }
    }

    /// A report about an instance the supervisor no longer holds: make sure nothing keeps running.
    pub fn discard(event: DriverEvent, hostname: &str) {
        if let ContainerEvent::Running { id, docker } = event.event {
            log::debug!("{hostname}: removing container {id}: nothing tracks it any more");
            remove_in_background(docker, id, hostname.to_string());
        }
    }
}
