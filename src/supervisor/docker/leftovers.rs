//! Removes containers left behind by an earlier Spawngate on this machine that died without stopping
//! them (SIGKILL, a crash, a power cut): the judgement is in [`super::owner`].

use super::client::Docker;
use super::endpoint::Endpoint;
use super::owner::{Owner, Ownership, HOST_LABEL};
use super::worker::remove;

/// Containers looked at per sweep; a daemon listing more managed containers than this is not one
/// Spawngate set up, and the rest wait for the next start.
const MAX_SWEPT: usize = 1000;

/// Lists the daemon's managed containers and removes the orphans. Blocking; runs on its own thread.
pub fn sweep(endpoint: &Endpoint, owner: &Owner) {
    let docker = match Docker::connect(endpoint.clone()) {
        Ok(docker) => docker,
        Err(e) => {
            log::warn!("cannot look for leftover containers: {e}");
            return;
        }
    };
    let listed = match docker.list_managed() {
        Ok(listed) => listed,
        Err(e) => {
            log::warn!("cannot list containers at {endpoint} to find leftovers: {e}");
            return;
        }
    };
    for container in listed.iter().take(MAX_SWEPT) {
        let labels = container.labels.as_ref();
        let backend = labels.and_then(|l| l.str_at(HOST_LABEL)).unwrap_or("?");
        match owner.judge(labels) {
            Ownership::Orphan { instance } => {
                log::info!(
                    "removing leftover container {} (backend {backend}) of an earlier spawngate \
                     (instance {instance}) that is gone",
                    container.name
                );
                remove(&docker, &container.id, backend);
            }
            Ownership::Someone(who) => log::debug!(
                "leaving container {} (backend {backend}) alone: it belongs to {who}",
                container.name
            ),
            Ownership::Ours | Ownership::NotManaged => {}
        }
    }
}
