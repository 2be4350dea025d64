//! The live status view of the admin API: `GET /status` (one snapshot), `GET /status/events` (a
//! snapshot at once, then one a second while the client stays) and the page at `GET /`.
//!
//! The one-second timer runs only while a stream is open, so an idle proxy nobody watches still does not
//! wake up.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::timers::{Deadline, TimerKey, TimerTarget, Timers};
use super::Reactor;
use crate::admin::status::{status_event, status_json, Kind, StatusRow};
use crate::msg::State;

/// How often an open stream gets a new snapshot.
const PERIOD: Duration = Duration::from_secs(1);
/// Status streams open at once; more get 503 so the admin API stays reachable.
pub const MAX_STATUS_STREAMS: usize = 8;

const SSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n";

#[derive(Default)]
pub struct StatusFeed {
    /// Admin connection keys with an open stream.
    streams: Vec<usize>,
    deadline: Deadline,
}

impl StatusFeed {
    pub fn is_full(&self) -> bool {
        self.streams.len() >= MAX_STATUS_STREAMS
    }

    /// Admin connection `key` closed; with the last stream gone, the tick is not needed either.
    pub fn forget_conn(&mut self, key: usize, timers: &mut Timers) {
        self.streams.retain(|&k| k != key);
        if self.streams.is_empty() {
            self.deadline.cancel(timers);
        }
    }
}

impl Reactor {
    /// The snapshot `GET /status` answers and each stream event carries.
    pub(super) fn status_snapshot(&self) -> String {
        let unix_secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        status_json(
            self.config_status.generation,
            unix_secs,
            &self.status_rows(),
        )
    }

    fn status_rows(&self) -> Vec<StatusRow> {
        let mut rows: Vec<StatusRow> = self
            .routes
            .iter()
            .map(|backend| {
                let kind = if backend.config.session.is_some() {
                    Kind::Session
                } else if backend.config.is_pool() {
                    Kind::Pool
                } else {
                    Kind::Backend
                };
                let states: Vec<State> = backend
                    .instances
                    .iter()
                    .map(|i| i.view.reported_state())
                    .collect();
                let ready = states.iter().filter(|&&s| s == State::Ready).count();
                let state = match states[..] {
                    [one] => one.as_str().to_string(),
                    _ => format!("{ready}/{} ready", states.len()),
                };
                StatusRow {
                    name: backend.host.to_string(),
                    kind,
                    state,
                    instances: states.len(),
                    ready,
                    in_flight: backend
                        .instances
                        .iter()
                        .map(|i| i.activity.in_flight())
                        .sum(),
                    held: backend.held(),
                    started_at: backend
                        .instances
                        .iter()
                        .filter_map(|i| i.activity.facts().started_at)
                        .max(),
                    // A session's counters are its template's, shared by all its sessions.
                    requests: (kind != Kind::Session)
                        .then(|| backend.metrics.requests.duration.count()),
                }
            })
            .collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        rows
    }

    /// Opens a status stream on admin connection `key`. Returns true when the connection is done.
    pub(super) fn status_subscribe(&mut self, key: usize) -> bool {
        let mut bytes = SSE_HEAD.to_vec();
        bytes.extend_from_slice(status_event(&self.status_snapshot()).as_bytes());
        let done = self
            .admins
            .get_mut(key)
            .is_none_or(|conn| conn.stream(bytes, false));
        if !done {
            self.status_feed.streams.push(key);
            let at = self.now + PERIOD;
            self.status_feed
                .deadline
                .set(at, TimerTarget::Status, &mut self.timers);
        }
        done
    }

    /// The stream timer: a new snapshot to every open stream, and the next tick while any is left.
    pub(super) fn status_tick(&mut self, at: TimerKey) {
        let now = self.now;
        if !self
            .status_feed
            .deadline
            .fire(at, now, TimerTarget::Status, &mut self.timers)
        {
            return;
        }
        let event = status_event(&self.status_snapshot());
        let mut gone = Vec::new();
        for &key in &self.status_feed.streams {
            let done = self
                .admins
                .get_mut(key)
                .is_none_or(|conn| conn.push(event.as_bytes(), false));
            if done {
                gone.push(key);
            }
        }
        for key in gone {
            self.close_admin(key);
        }
        if !self.status_feed.streams.is_empty() {
            self.status_feed
                .deadline
                .set(now + PERIOD, TimerTarget::Status, &mut self.timers);
        }
    }
}
