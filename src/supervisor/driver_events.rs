//! Reports from container worker threads, each addressed to one instance (its [`InstanceKey`] and the
//! serial of its start): handed to that instance's container and, once the container is gone, to the
//! instance's lifecycle. They arrive on their own channel, woken by the same waker as commands.

use super::docker::{DockerDriver, DriverEvent, Outcome};
use super::event_loop::Supervisor;
use super::instance::Instance;
use super::lifecycle::{Input, Lifecycle};
use super::slot::InstanceName;

impl Supervisor {
    pub(super) fn drain_driver_events(&mut self) {
        while let Ok(event) = self.driver_events.try_recv() {
            self.handle_driver_event(event);
        }
    }

    /// A container worker's report: passed to the instance it is about, and to its lifecycle once the
    /// container is gone. Reports about a container no longer held are only cleaned up after.
    fn handle_driver_event(&mut self, event: DriverEvent) {
        let key = event.key;
        let Some(backend) = self.backends.get_mut(key.backend) else {
            DockerDriver::discard(event, "a removed backend");
            return;
        };
        let host = backend.host.clone();
        let Some(slot) = backend.slot_mut(key.index) else {
            DockerDriver::discard(event, &host);
            return;
        };
        let container = match slot.running.as_mut().map(|r| &mut r.instance) {
            Some(Instance::Container(c)) if c.serial() == event.serial => c,
            _ => {
                DockerDriver::discard(event, &host);
                return;
            }
        };
        let Some(outcome) = container.on_event(event.event) else {
            return;
        };
        let what = container.describe();
        let name = InstanceName {
            host: &host,
            index: key.index,
        };
        let input = match outcome {
            Outcome::StartFailed(why) => Input::SpawnFailed(why),
            Outcome::Exited(how) => {
                if matches!(slot.lifecycle, Lifecycle::Ready(_)) {
                    log::warn!("{name}: exited unexpectedly with {how} ({what})");
                } else {
                    log::info!("{name}: exited with {how} ({what})");
                }
                Input::Exited(how)
            }
        };
        slot.running = None;
        if let Input::Exited(how) = &input {
            let how = how.clone();
            backend
                .activity_of(key.index)
                .update_facts(|facts| facts.last_exit = Some(how));
        }
        self.feed(key, input);
    }
}
