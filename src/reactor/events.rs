//! What reaches the reactor from outside the sockets: supervisor reports, signals, reload and shutdown.

use std::sync::{mpsc, Arc};

use super::session::Phase;
use super::Reactor;
use crate::admin::ReloadOutcome;
use crate::backend_view::unknown_host;
use crate::config::{self, BackendConfig};
use crate::error::ProxyError;
use crate::msg::{BackendEntry, BackendEvent, Command, LifecycleEvent, ReactorMsg, State};

impl Reactor {
    /// Handles every queued supervisor message. Returns true once the supervisor finished shutting down.
    pub(super) fn drain_inbox(&mut self) -> bool {
        let mut finished = false;
        loop {
            match self.inbox.try_recv() {
                Ok(ReactorMsg::Backend(event)) => self.on_backend_event(event),
                Ok(ReactorMsg::ShutdownComplete) => finished = true,
                Err(mpsc::TryRecvError::Empty) => return finished,
                Err(mpsc::TryRecvError::Disconnected) => {
                    // The supervisor only ends after `ShutdownComplete`; otherwise it died, and its
                    // children with it (their parent-death signal is tied to its thread).
                    if !finished {
                        self.supervisor_lost = true;
                    }
                    return true;
                }
            }
        }
    }

    fn on_backend_event(&mut self, report: BackendEvent) {
        if let Some(h2) = &self.h2 {
            h2.backend_event(report.clone());
        }
        let BackendEvent {
            host,
            instance,
            event,
        } = report;
        let Some(route) = self.routes.get_mut(&host) else {
            return;
        };
        log::debug!("{host}: {event:?}");
        if matches!(event, LifecycleEvent::Starting | LifecycleEvent::Ready) {
            // The instance says where it listens: a port changed by a reload takes effect with its start.
            if let Some(addr) = instance.addr.tcp() {
                route.addr = addr;
            }
        }
        let has_waiting = !route.waiting.is_empty();
        let reaction = route
            .view
            .apply(&host, event, self.now, has_waiting, self.shutting_down);
        if reaction.forget {
            if let Some(route) = self.routes.remove(&host) {
                for ukey in route.idle_upstreams {
                    self.close_upstream(ukey);
                }
                self.answer_waiting(route.waiting, Err(unknown_host(&host)));
            }
            return;
        }
        if reaction.start {
            self.send_supervisor(Command::Start(host.clone()));
        }
        if reaction.drop_pool {
            self.drop_pool_of(&host);
        }
        if let Some(outcome) = reaction.release {
            let waiting = self
                .routes
                .get_mut(&host)
                .map(|r| std::mem::take(&mut r.waiting))
                .unwrap_or_default();
            self.answer_waiting(waiting, outcome);
        }
    }

    /// Forwards (`Ok`) or answers with the error every request held for a backend.
    fn answer_waiting(&mut self, waiting: Vec<(usize, u64)>, outcome: Result<(), ProxyError>) {
        for (key, serial) in waiting {
            let Some(session) = self.sessions.get_mut(key) else {
                continue;
            };
            if session.serial != serial || !matches!(session.phase, Phase::Holding(_)) {
                continue;
            }
            let Phase::Holding(request) =
                std::mem::replace(&mut session.phase, Phase::Closing { shut: false })
            else {
                continue;
            };
            match &outcome {
                Ok(()) => self.start_exchange(key, *request),
                Err(err) => {
                    let close = request.meta.has_body() || !request.meta.keep_alive;
                    self.reject(key, err.clone(), Some(request.meta.request_id), close);
                }
            }
            self.drive(key);
        }
    }

    pub(super) fn handle_signals(&mut self) {
        let pending = self.signals.take();
        if pending.terminate {
            if self.shutting_down {
                log::info!("already shutting down");
            } else {
                self.begin_shutdown();
            }
        }
        if pending.reload && !self.shutting_down {
            self.reload();
        }
    }

    /// SIGHUP or `POST /reload`: re-read the config file; keep the running config if the new one is invalid.
    pub(super) fn reload(&mut self) -> ReloadOutcome {
        let path = self.config.path.clone();
        let new = match config::load(&path) {
            Ok(new) => new,
            Err(errors) => {
                log::error!("reload rejected; keeping the running config:");
                let problems: Vec<String> = errors.0.iter().map(|e| e.to_string()).collect();
                for p in &problems {
                    log::error!("  {p}");
                }
                self.config_status.last_reload_error = Some(problems.join("; "));
                return ReloadOutcome::Rejected { problems };
            }
        };
        let diff = config::diff(&self.config, &new);
        for key in &diff.server_changed {
            log::warn!("reload: [server] {key} changed; it takes effect after a restart");
        }
        let mut entries = Vec::with_capacity(new.backends.len());
        for backend in &new.backends {
            let activity = match self.routes.get_mut(&backend.hostname) {
                Some(route) => {
                    route.view.reloaded(route.config != *backend);
                    route.config = Arc::<BackendConfig>::clone(backend);
                    route.activity.clone()
                }
                None => {
                    let entry = BackendEntry::new(backend.clone());
                    let activity = entry.activity.clone();
                    self.routes.insert(entry);
                    activity
                }
            };
            entries.push(BackendEntry {
                config: backend.clone(),
                activity,
            });
        }
        let mut gone = Vec::new();
        for route in self.routes.iter_mut() {
            if new.backend(&route.host).is_none() {
                route.view.removed = true;
                if route.view.state == State::Stopped {
                    gone.push(route.host.clone());
                }
            }
        }
        for host in gone {
            // Never started: nothing to drain.
            if let Some(route) = self.routes.remove(&host) {
                self.answer_waiting(route.waiting, Err(unknown_host(&host)));
            }
        }
        if let Some(h2) = &self.h2 {
            h2.set_backends(entries.clone());
        }
        self.send_supervisor(Command::Reload(entries));
        log::info!(
            "config reloaded: {} added, {} removed, {} updated",
            diff.added.len(),
            diff.removed.len(),
            diff.changed.len()
        );
        let server = self.config.server.clone();
        self.config = new;
        // Listeners and limits stay as they were bound.
        self.config.server = server;
        self.config_status.generation += 1;
        self.config_status.last_reload_error = None;
        ReloadOutcome::Applied {
            generation: self.config_status.generation,
            added: diff.added.len(),
            removed: diff.removed.len(),
            updated: diff.changed.len(),
        }
    }

    /// SIGTERM/SIGINT: stop accepting, answer what waits, and let the supervisor drain and stop backends.
    fn begin_shutdown(&mut self) {
        log::info!("shutting down: draining requests and stopping backends");
        self.shutting_down = true;
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let idle: Vec<usize> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                matches!(
                    s.phase,
                    Phase::ReadingHead {
                        head_started: false,
                        ..
                    }
                ) && s.out_pending().is_empty()
            })
            .map(|(key, _)| key)
            .collect();
        for key in idle {
            self.close_session(key);
        }
        if let Some(h2) = &self.h2 {
            h2.shutdown();
        }
        if !self.send_supervisor(Command::Shutdown) {
            // Nobody is left to stop the backends or to say when it is done; their parent-death signal
            // takes them down with us.
            self.supervisor_lost = true;
        }
    }

    pub(super) fn finish_shutdown(&mut self) {
        let keys: Vec<usize> = self.sessions.iter().map(|(key, _)| key).collect();
        for key in keys {
            self.close_session(key);
        }
        if let Some(h2) = self.h2.take() {
            h2.join();
        }
        if let Some(supervisor) = self.supervisor.take() {
            if supervisor.thread.join().is_err() {
                log::error!("the supervisor thread panicked");
            }
        }
        if let Some(path) = &self.config.server.pid_file {
            if let Err(e) = std::fs::remove_file(path) {
                log::warn!("cannot remove pid file {}: {e}", path.display());
            }
        }
        log::info!("stopped");
    }
}
