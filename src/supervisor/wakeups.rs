//! What wakes an instance besides a command: its process exiting (SIGCHLD), its health probe's socket
//! becoming ready (the probe's own token), its port starting to listen (the listen watch), and its
//! deadline passing (the timer heap). Each is traced back to the one instance it is about and fed to
//! that instance's lifecycle.

use mio::Token;
use nix::unistd::{getpgid, Pid};

use super::event_loop::Supervisor;
use super::keys::{probe_owner, InstanceKey};
use super::lifecycle::{Input, Lifecycle, ProbeSlot};
use super::notify::Notice;
use super::probe::Probe;
use super::slot::InstanceName;

/// Timer expiries handled per wake-up, so a bug that re-arms in the past cannot wedge the thread.
const MAX_TIMER_FIRES_PER_WAKE: usize = 4096;

impl Supervisor {
    /// Some child exited: every running process is asked (one `waitid` each), as a SIGCHLD does not say
    /// whose.
    pub(super) fn reap_children(&mut self) {
        self.sigchld.drain();
        let keys: Vec<InstanceKey> = self
            .backends
            .iter()
            .flat_map(|(backend_key, backend)| backend.slots(backend_key))
            .filter(|(_, slot)| slot.running.is_some())
            .map(|(key, _)| key)
            .collect();
        for key in keys {
            let Some(backend) = self.backends.get_mut(key.backend) else {
                continue;
            };
            let host = backend.host.clone();
            let Some(slot) = backend.slot_mut(key.index) else {
                continue;
            };
            let Some(running) = &mut slot.running else {
                continue;
            };
            let Some(how) = running.instance.poll_exit() else {
                continue;
            };
            let what = running.instance.describe();
            if let (Some(watchdog), Some(group)) =
                (self.watchdog.as_mut(), running.instance.process_group())
            {
                watchdog.untrack(group);
            }
            let name = InstanceName {
                host: &host,
                index: key.index,
            };
            if matches!(slot.lifecycle, Lifecycle::Ready(_)) {
                log::warn!("{name}: exited unexpectedly with {how} ({what})");
            } else {
                log::info!("{name}: exited with {how} ({what})");
            }
            slot.running = None;
            // What the program said of itself went with it.
            backend.activity_of(key.index).update_facts(|facts| {
                facts.status = None;
                facts.last_exit = Some(how.clone());
            });
            self.feed(key, Input::Exited(how));
        }
    }

    /// Datagrams on the notification socket: each is traced to the instance whose process group sent
    /// it, its status kept for `/backends` and its other notices fed to that instance's lifecycle.
    pub(super) fn handle_notifications(&mut self) {
        let Some(socket) = self.notify.as_mut() else {
            return;
        };
        for message in socket.receive(self.poll.registry()) {
            let Some(key) = self.instance_of_sender(message.pid) else {
                log::debug!(
                    "a notification from pid {}, no instance of ours; ignored",
                    message.pid
                );
                continue;
            };
            for notice in message.notices {
                let input = match notice {
                    Notice::Status(text) => {
                        if let Some(backend) = self.backends.get(key.backend) {
                            log::debug!("{}: status: {text}", backend.host);
                            backend.activity_of(key.index).set_status(Some(text));
                        }
                        continue;
                    }
                    Notice::Ready => Input::NotifyReady,
                    Notice::Stopping => Input::NotifyStopping,
                    Notice::Watchdog => Input::WatchdogPing,
                };
                self.feed(key, input);
            }
        }
    }

    /// The running local instance whose process group `pid` is in (a program's own children may speak
    /// for it). A sender already gone is looked up by its pid alone.
    fn instance_of_sender(&self, pid: i32) -> Option<InstanceKey> {
        let group = getpgid(Some(Pid::from_raw(pid))).map_or(pid, Pid::as_raw);
        let group = u32::try_from(group).ok()?;
        self.backends
            .iter()
            .flat_map(|(backend_key, backend)| backend.slots(backend_key))
            .find(|(_, slot)| {
                slot.running
                    .as_ref()
                    .and_then(|running| running.instance.process_group())
                    == Some(group)
            })
            .map(|(key, _)| key)
    }

    /// The probe socket under `token` is ready: progress, and the verdict once there is one.
    pub(super) fn advance_probe(&mut self, token: Token) {
        let Some(key) = probe_owner(token) else {
            return;
        };
        let Some(slot) = self.slot_mut(key) else {
            return;
        };
        let Some(result) = slot.probe.as_mut().and_then(Probe::advance) else {
            return;
        };
        let probe = slot.probe.take();
        // The verdict goes to the lifecycle (and a ready instance to the request threads) before the
        // socket is closed: the close is not on the way to the first request.
        self.feed(key, result.input());
        if let Some(probe) = probe {
            #[cfg(feature = "tls")]
            {
                let failure = probe.tls_failure().map(str::to_owned);
                let before = self
                    .slot_mut(key)
                    .map(|slot| std::mem::replace(&mut slot.probe_tls_failure, failure.clone()));
                if before.is_some_and(|before| before != failure) {
                    if let (Some(why), Some(backend)) = (&failure, self.backends.get(key.backend)) {
                        let name = super::slot::InstanceName {
                            host: &backend.host,
                            index: key.index,
                        };
                        log::warn!("{name}: health probe: TLS with the backend failed: {why}");
                    }
                }
            }
            probe.close(self.poll.registry());
        }
    }

    /// The listen watch's looks that are due: an instance whose port now listens is probed at once (the
    /// HTTP health request follows the listen by a lookup and a connect). One whose start ended
    /// meanwhile is only forgotten: its probe was cancelled.
    pub(super) fn look_for_listeners(&mut self) {
        let now_us = self.clock_us(std::time::Instant::now());
        let Some(found) = self.listen_watch.as_mut().map(|watch| watch.look(now_us)) else {
            return;
        };
        for key in found {
            let waiting = self.slot_mut(key).is_some_and(|slot| {
                slot.probe.is_none()
                    && matches!(&slot.lifecycle, Lifecycle::Starting(s) if s.probe == ProbeSlot::InFlight)
            });
            if !waiting {
                continue;
            }
            if let Some(input) = self.connect_probe(key) {
                self.feed(key, input);
            }
        }
    }

    pub(super) fn fire_timers(&mut self) {
        let now = self.clock.now_ms();
        for _ in 0..MAX_TIMER_FIRES_PER_WAKE {
            let Some(key) = self.timers.pop_due(now) else {
                return;
            };
            let Some(backend) = self.backends.get_mut(key.backend) else {
                continue;
            };
            let host = backend.host.clone();
            let Some(slot) = backend.slot_mut(key.index) else {
                continue;
            };
            let probe_expired = slot.probe.as_ref().is_some_and(|p| p.deadline_ms() <= now);
            if probe_expired {
                if let Some(probe) = slot.probe.take() {
                    probe.close(self.poll.registry());
                }
                let name = InstanceName {
                    host: &host,
                    index: key.index,
                };
                log::debug!("{name}: health probe timed out");
                self.feed(key, Input::ProbeResult(false));
            }
            self.feed(key, Input::Tick);
        }
    }
}
