//! The ACME thread: network round-trips and sleeps that must not run in the reactor (which never
//! blocks) or the supervisor (which must stay responsive). A current-thread tokio runtime (instant-acme
//! waits with tokio timers), commands in through a channel any thread can send on without blocking,
//! events out through a callback (`FnMut(AcmeEvent) + Send`) that the reactor will wrap around its
//! `Mailbox`. It keeps one timer per certificate ([`super::schedule`]) and orders one at a time.

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::Notify;

use super::client::{unix_now, ChallengeHost, Client};
use super::messages::{AcmeCmd, AcmeEvent, Served};
use super::schedule::{sleep_for, CertSchedule, Start, MAX_SLEEP};
use super::storage::{LoadedCert, Storage};
use crate::config::AcmeConfig;

/// How long an order waits for another proxy sharing the storage to finish its own, before it counts
/// as a failure (and backs off).
const LOCK_WAIT: Duration = Duration::from_secs(10 * 60);

/// The running thread. Dropping it stops the thread too.
pub struct AcmeHandle {
    commands: UnboundedSender<AcmeCmd>,
    thread: Option<JoinHandle<()>>,
}

impl AcmeHandle {
    /// Where commands go; cheap to clone, never blocks.
    pub fn sender(&self) -> UnboundedSender<AcmeCmd> {
        self.commands.clone()
    }

    /// Sends one command; `false` when the thread has ended.
    pub fn send(&self, command: AcmeCmd) -> bool {
        self.commands.send(command).is_ok()
    }

    /// Stops the thread and waits for it: an order in progress is abandoned after the request in
    /// flight (at most `http::TIMEOUT`), its challenges retracted.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.commands.send(AcmeCmd::Shutdown);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::error!("ACME: the thread panicked");
            }
        }
    }
}

impl Drop for AcmeHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the ACME thread. The storage directory is opened (created 0700) here, so a path that cannot
/// be used is an error at start-up rather than at the first order.
pub fn spawn<F>(config: AcmeConfig, emit: F) -> Result<AcmeHandle, String>
where
    F: FnMut(AcmeEvent) + Send + 'static,
{
    let storage = Storage::open(&config.storage).map_err(|e| e.0)?;
    // The roots the CA's HTTPS is checked against, read now so a start without any fails at once.
    super::http::client(config.ca_file.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| format!("ACME: cannot make its runtime: {e}"))?;
    let (commands, receiver) = unbounded_channel();
    let thread = std::thread::Builder::new()
        .name("acme".to_string())
        .spawn(move || {
            let hub = Hub {
                emit: RefCell::new(emit),
                published: RefCell::new(Vec::new()),
                confirmed: RefCell::new(HashSet::new()),
                notify: Notify::new(),
            };
            runtime.block_on(run(Client::new(config), storage, receiver, &hub));
        })
        .map_err(|e| format!("ACME: cannot start its thread: {e}"))?;
    Ok(AcmeHandle {
        commands,
        thread: Some(thread),
    })
}

/// The thread's side of challenges: events out, confirmations in, and what to retract.
struct Hub<F> {
    emit: RefCell<F>,
    published: RefCell<Vec<Served>>,
    confirmed: RefCell<HashSet<Served>>,
    notify: Notify,
}

impl<F: FnMut(AcmeEvent)> Hub<F> {
    fn emit(&self, event: AcmeEvent) {
        log::debug!("ACME: {event:?}");
        (self.emit.borrow_mut())(event);
    }

    fn confirm(&self, served: Served) {
        self.confirmed.borrow_mut().insert(served);
        self.notify.notify_one();
    }

    /// Tells the proxy to stop answering every challenge published so far.
    fn retract_all(&self) {
        let published = std::mem::take(&mut *self.published.borrow_mut());
        self.confirmed.borrow_mut().clear();
        for served in published {
            self.emit(match served {
                Served::Http01 { token } => AcmeEvent::Http01Done { token },
                Served::TlsAlpn01 { name } => AcmeEvent::TlsAlpn01Done { name },
            });
        }
    }
}

impl<F: FnMut(AcmeEvent)> ChallengeHost for Hub<F> {
    fn publish(&self, event: AcmeEvent, served: Served) {
        self.published.borrow_mut().push(served);
        self.emit(event);
    }

    async fn confirmed(&self, served: &Served, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.confirmed.borrow().contains(served) {
                return true;
            }
            // `notify_one` keeps a permit when nobody waits, so a confirmation between the check and
            // this wait is not lost.
            let notified = self.notify.notified();
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.confirmed.borrow().contains(served);
            }
        }
    }
}

/// One certificate the thread keeps.
struct Managed {
    names: Vec<String>,
    schedule: CertSchedule,
}

async fn run<F: FnMut(AcmeEvent)>(
    mut client: Client,
    storage: Storage,
    mut commands: UnboundedReceiver<AcmeCmd>,
    hub: &Hub<F>,
) {
    log::info!(
        "ACME: directory {}, storage {}",
        client.config().directory,
        storage.dir().display()
    );
    let mut certs: Vec<Managed> = Vec::new();
    let mut queue: VecDeque<AcmeCmd> = VecDeque::new();
    loop {
        // Commands first, so an Obtain that storage can answer is answered before any order.
        loop {
            let command = match queue.pop_front() {
                Some(command) => command,
                None => match commands.try_recv() {
                    Ok(command) => command,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                },
            };
            match command {
                AcmeCmd::Obtain { names } => obtain(&mut certs, names, &storage, hub),
                AcmeCmd::Forget { names } => forget(&mut certs, &names),
                AcmeCmd::Serving(served) => hub.confirm(served),
                AcmeCmd::Shutdown => return,
            }
        }
        let now = unix_now();
        let Some(index) = certs.iter().position(|c| c.schedule.is_due(now)) else {
            let next = certs.iter().map(|c| c.schedule.due()).min();
            let wait = next.map_or(MAX_SLEEP, |due| sleep_for(due, now));
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => queue.push_back(command),
                    None => return,
                },
                _ = tokio::time::sleep(wait) => {}
            }
            continue;
        };
        let names = certs[index].names.clone();
        log::info!("ACME: ordering a certificate for {}", names.join(", "));
        let outcome = {
            let work = renew(&mut client, &storage, &names, hub);
            tokio::pin!(work);
            loop {
                tokio::select! {
                    outcome = &mut work => break Some(outcome),
                    command = commands.recv() => match command {
                        Some(AcmeCmd::Serving(served)) => hub.confirm(served),
                        Some(AcmeCmd::Shutdown) | None => break None,
                        Some(other) => queue.push_back(other),
                    },
                }
            }
        };
        hub.retract_all();
        let Some(outcome) = outcome else {
            log::info!("ACME: stopped during the order for {}", names.join(", "));
            return;
        };
        let managed = &mut certs[index];
        match outcome {
            Ok((cert, issued)) => {
                managed.schedule.issued(cert.stored.lifetime);
                if issued {
                    log::info!(
                        "ACME: certificate for {} issued, valid until {} (Unix), renewal at {}",
                        names.join(", "),
                        cert.stored.lifetime.not_after,
                        managed.schedule.due()
                    );
                }
                hub.emit(ready(cert, issued));
            }
            Err(why) => {
                let retry_at = managed.schedule.failed(unix_now());
                log::warn!(
                    "ACME: no certificate for {} ({why}); retry in {} s",
                    names.join(", "),
                    retry_at - unix_now()
                );
                hub.emit(AcmeEvent::CertFailed {
                    names,
                    retry_at: Some(system_time(retry_at)),
                    why,
                });
            }
        }
    }
}

/// `Obtain`: starts keeping a name set, serving what storage holds if it is still valid.
fn obtain<F: FnMut(AcmeEvent)>(
    certs: &mut Vec<Managed>,
    names: Vec<String>,
    storage: &Storage,
    hub: &Hub<F>,
) {
    let names = normalize(&names);
    if let Some(why) = refuse(&names) {
        log::warn!("ACME: not ordering for {}: {why}", names.join(", "));
        hub.emit(AcmeEvent::CertFailed {
            names,
            retry_at: None,
            why,
        });
        return;
    }
    if certs.iter().any(|c| c.names == names) {
        return;
    }
    // Storage is per first name: a new set for the same first name replaces the old one.
    certs.retain(|c| c.names.first() != names.first());
    let stored = match storage.load_cert(&names) {
        Ok(stored) => stored,
        Err(e) => {
            log::warn!("ACME: {e}; ordering a new certificate");
            None
        }
    };
    let lifetime = stored.as_ref().map(|loaded| loaded.stored.lifetime);
    let (schedule, start) = CertSchedule::start(lifetime, unix_now());
    if let (Start::Use { renew_at }, Some(stored)) = (start, stored) {
        log::info!(
            "ACME: certificate for {} from storage, renewal at {renew_at} (Unix)",
            names.join(", ")
        );
        hub.emit(ready(stored, false));
    }
    certs.push(Managed { names, schedule });
}

/// Names as the thread keeps them: lower-case, without a trailing dot.
fn normalize(names: &[String]) -> Vec<String> {
    (names.iter())
        .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
        .collect()
}

/// `Forget`: the name set is no longer kept (nor renewed).
fn forget(certs: &mut Vec<Managed>, names: &[String]) {
    let names = normalize(names);
    certs.retain(|c| c.names != names);
}

/// Why a name set cannot be ordered by HTTP-01 or TLS-ALPN-01, if it cannot.
fn refuse(names: &[String]) -> Option<String> {
    if names.is_empty() {
        return Some("no names".to_string());
    }
    for name in names {
        if name.starts_with("*.") {
            return Some(format!(
                "{name}: a wildcard needs DNS-01, which spawngate does not do; give it a \
                 [[tls.certificates]] file"
            ));
        }
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if name.len() > 253 || !name.contains('.') || !name.split('.').all(label_ok) {
            return Some(format!(
                "{name:?} is not a DNS name a public CA can validate"
            ));
        }
    }
    None
}

/// An order under the storage lock. Another proxy sharing the storage may have stored a fresh
/// certificate while this one waited; then that one is used and nothing is ordered.
async fn renew<F: FnMut(AcmeEvent)>(
    client: &mut Client,
    storage: &Storage,
    names: &[String],
    hub: &Hub<F>,
) -> Result<(LoadedCert, bool), String> {
    let deadline = tokio::time::Instant::now() + LOCK_WAIT;
    let _lock = loop {
        if let Some(lock) = storage.try_lock().map_err(|e| e.0)? {
            break lock;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "another process has held the ACME storage lock ({}) for {} s",
                storage.dir().join("lock").display(),
                LOCK_WAIT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let now = unix_now();
    if let Ok(Some(loaded)) = storage.load_cert(names) {
        let lifetime = loaded.stored.lifetime;
        if lifetime.is_valid(now) && lifetime.renew_at() > now {
            return Ok((loaded, false));
        }
    }
    client
        .order(storage, names, hub)
        .await
        .map(|cert| (cert, true))
}

fn ready(cert: LoadedCert, issued: bool) -> AcmeEvent {
    AcmeEvent::CertReady {
        names: cert.stored.names,
        cert_pem: cert.stored.cert_pem,
        key_pem: cert.stored.key_pem,
        not_after: cert.stored.lifetime.not_after,
        issued,
        certificate: cert.certificate,
    }
}

fn system_time(unix: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(unix).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn refuses_wildcards_and_what_is_not_a_dns_name() {
        assert_eq!(
            refuse(&names(&["demo.spawngate.test", "a-b.example"])),
            None
        );
        let why = refuse(&names(&["*.spawngate.test"])).expect("wildcard");
        assert!(why.contains("DNS-01"), "{why}");
        for bad in ["localhost", "a..b", "-a.b", "a/b.c", "a_b.c", ""] {
            assert!(refuse(&names(&[bad])).is_some(), "{bad}");
        }
        assert!(refuse(&[]).is_some());
    }
}
