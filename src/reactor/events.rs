//! What reaches the reactor from outside the sockets: supervisor reports, signals, reload and shutdown.

use std::sync::mpsc;

use super::routes::Held;
use super::session::Phase;
use super::Reactor;
use crate::admin::ReloadOutcome;
use crate::config;
use crate::error::ProxyError;
use crate::msg::{BackendEvent, Command, ReactorMsg};
use crate::upstream::{Leased, Outcome};

impl Reactor {
    /// Handles every queued supervisor message. Returns true once the supervisor finished shutting down.
    pub(super) fn drain_inbox(&mut self) -> bool {
        let mut finished = false;
        loop {
            match self.inbox.try_recv() {
                Ok(ReactorMsg::Backend(event)) => self.on_backend_event(event),
                Ok(ReactorMsg::ShutdownComplete) => finished = true,
                Ok(ReactorMsg::H2Ack(seq)) => self.session_ack(seq),
                Ok(ReactorMsg::TokenSpent { hostname, index }) => {
                    let effects = self.session_ctl.registry.spend(&hostname, index);
                    self.session_effects(effects);
                }
                #[cfg(feature = "acme")]
                Ok(ReactorMsg::Acme(event)) => self.acme_event(*event),
                Ok(ReactorMsg::SlotFreed(instance)) => {
                    if let Some(outcome) = self.routes.freed(instance, self.now) {
                        self.settle(outcome);
                    }
                }
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
        log::debug!("{}: {:?}", report.host, report.event);
        self.record_lifecycle(&report);
        let now_ms = self.session_ctl.now_ms(self.now);
        let effects = self
            .session_ctl
            .registry
            .on_event(report.backend, &report.event, now_ms);
        if let Some(outcome) = self.routes.on_event(report, self.now) {
            self.settle(outcome);
        }
        self.session_effects(effects);
    }

    /// Carries out what a report or a reload asks of one backend: close its pool, ask for a start,
    /// forward or answer what was held for it.
    pub(super) fn settle(&mut self, outcome: Outcome<Held, ()>) {
        // A forgotten backend's pool is dropped too (`drop_pool` is set).
        if outcome.drop_pool {
            self.drop_pool_of(outcome.id, outcome.slot);
        }
        if let Some(command) = outcome.ask {
            self.send_supervisor(command);
        }
        self.answer_waiting(outcome.release);
    }

    /// Forwards to the instance leased to each (`Ok`), or answers with the error, requests that were
    /// held. A request whose client left meanwhile gives its place back by dropping its lease.
    pub(super) fn answer_waiting(&mut self, released: Vec<(Held, Result<Leased, ProxyError>)>) {
        for (Held { key, serial }, outcome) in released {
            let Some(session) = self.sessions.get_mut(key) else {
                continue;
            };
            if session.serial != serial || !matches!(session.phase, Phase::Holding { .. }) {
                continue;
            }
            // The held request leaves its phase by value; forwarding or refusing it sets the next one, and
            // should neither happen the connection closes.
            let Phase::Holding { request, .. } = session.enter(Phase::closing(self.now)) else {
                continue;
            };
            match outcome {
                Ok(to) => self.start_exchange(key, *request, to),
                Err(err) => {
                    let close = request.meta.close_after_refusal();
                    let routed = Some((request.backend, request.meta.started));
                    self.reject(key, err, Some(request.meta.request_id), close, routed);
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
        if pending.reopen_log {
            self.access_log.reopen();
        }
        if pending.reload && !self.shutting_down {
            self.reload();
        }
    }

    /// SIGHUP or `POST /reload`: re-read the config file; keep the running config if the new one is invalid.
    pub(super) fn reload(&mut self) -> ReloadOutcome {
        if let Some(notifier) = &self.notifier {
            notifier.reloading();
        }
        let outcome = self.apply_reload();
        if let Some(notifier) = &self.notifier {
            // Ready again either way: a rejected reload leaves the running config serving.
            let status = match &outcome {
                ReloadOutcome::Applied { generation, .. } => {
                    format!("config generation {generation}")
                }
                ReloadOutcome::Rejected { .. } => {
                    "reload rejected; the running config stays".into()
                }
            };
            notifier.ready(&status);
        }
        outcome
    }

    fn apply_reload(&mut self) -> ReloadOutcome {
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
                self.metrics.reloads_failed.inc();
                return ReloadOutcome::Rejected { problems };
            }
        };
        // New certificates are built first: one that fails rejects the reload like any config error.
        #[cfg(feature = "tls")]
        let next_store = match self.https.as_ref().map(|https| https.next_store(&new)) {
            Some(Err(problem)) => {
                log::error!("reload rejected; keeping the running config: {problem}");
                self.config_status.last_reload_error = Some(problem.clone());
                self.metrics.reloads_failed.inc();
                return ReloadOutcome::Rejected {
                    problems: vec![problem],
                };
            }
            Some(Ok(store)) => store,
            None => None,
        };
        let diff = config::diff(&self.config, &new);
        for key in &diff.server_changed {
            log::warn!("reload: [server] {key} changed; it takes effect after a restart");
        }
        #[cfg(feature = "acme")]
        super::acme::warn_if_changed(&self.config, &new);
        let mut reconcile = self.routes.plan(&new.backends, &new.hosts);
        self.metrics.adopt(&mut reconcile);
        if let Some(h2) = &self.h2 {
            h2.reconcile(reconcile.clone());
        }
        // The supervisor applies the same changes, so it names every backend by the same id.
        self.send_supervisor(Command::Reload(reconcile.clone()));
        for outcome in self.routes.apply(&reconcile) {
            self.settle(outcome);
        }
        log::info!(
            "config reloaded: {} added, {} removed, {} updated",
            diff.added.len(),
            diff.removed.len(),
            diff.changed.len()
        );
        let mut server = self.config.server.clone();
        // The admin token is re-read on every reload (a rotated token applies at once).
        server.admin_token = new.server.admin_token.clone();
        // So are the access log's settings; a file that cannot be opened leaves the old one in use.
        match self.access_log.configure(&new.server) {
            Ok(()) => {
                server.access_log = new.server.access_log.clone();
                server.access_log_format = new.server.access_log_format;
            }
            Err(e) => log::error!("reload: {e}; the access log stays as it was"),
        }
        let effects = self.session_ctl.registry.reload(new.sessions.clone());
        self.session_effects(effects);
        #[cfg(feature = "tls")]
        let new = {
            let mut new = new;
            super::https::keep_listener(self.config.tls.as_ref(), &mut new);
            if let (Some(https), Some(store)) = (self.https.as_mut(), next_store) {
                https.swap(store);
            }
            new
        };
        self.config = new;
        // Listeners and limits stay as they were bound.
        self.config.server = server;
        self.sessions_configured();
        #[cfg(feature = "acme")]
        self.acme_configured();
        self.config_status.generation += 1;
        self.metrics.reloads_ok.inc();
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
        if let Some(notifier) = &self.notifier {
            notifier.stopping();
        }
        self.shutting_down = true;
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        #[cfg(feature = "tls")]
        if let Some(mut https) = self.https.take() {
            let _ = self.poll.registry().deregister(&mut https.listener);
        }
        #[cfg(feature = "acme")]
        if let Some(acme) = &self.acme {
            acme.stop();
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
        let now_ms = self.session_ctl.now_ms(self.now);
        let effects = self.session_ctl.registry.shutdown(now_ms);
        self.session_effects(effects);
        let answered = self.routes.shut_down();
        self.answer_waiting(answered);
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
