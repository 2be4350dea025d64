//! Reports from container worker threads, handed to the instance they are about and, once a container
//! is gone, to its backend's lifecycle. They arrive on their own channel, woken by the same waker as
//! commands.

use super::docker::{DockerDriver, DriverEvent, Outcome};
use super::event_loop::Supervisor;
use super::instance::Instance;
use super::lifecycle::{Input, Lifecycle};

impl Supervisor {
    pub(super) fn drain_driver_events(&mut self) {
        while let Ok(event) = self.driver_events.try_recv() {
            self.handle_driver_event(event);
        }
    }

    /// A container worker's report: passed to the instance it is about, and to the lifecycle once the
    /// container is gone. Reports about an instance no longer held are only cleaned up after.
    fn handle_driver_event(&mut self, event: DriverEvent) {
        let key = event.key;
        let Some(backend) = self.backends.get_mut(key) else {
            DockerDriver::discard(event, "a removed backend");
            return;
        };
        let container = match backend.running.as_mut().map(|r| &mut r.instance) {
            Some(Instance::Container(c)) if c.serial() == event.serial => c,
            _ => {
                DockerDriver::discard(event, &backend.host);
                return;
            }
        };
        let Some(outcome) = container.on_event(event.event) else {
            return;
        };
        let name = container.describe();
        let input = match outcome {
            Outcome::StartFailed(why) => Input::SpawnFailed(why),
            Outcome::Exited(how) => {
                if matches!(backend.lifecycle, Lifecycle::Ready(_)) {
                    log::warn!("{}: exited unexpectedly with {how} ({name})", backend.host);
                } else {
                    log::info!("{}: exited with {how} ({name})", backend.host);
                }
                Input::Exited(how)
            }
        };
        backend.running = None;
        self.feed(key, input);
    }
}
