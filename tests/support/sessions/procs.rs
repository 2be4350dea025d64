//! Session processes as `/proc` shows them: the proxy's echo children, their environment, and a
//! sampler that checks a bound at every moment rather than only at the end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::super::{backend_children_of, echo_bin, pid_alive};

/// The environment of a running process.
pub fn environ(pid: u32) -> HashMap<String, String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    raw.split(|&b| b == 0)
        .filter_map(|pair| {
            let text = String::from_utf8_lossy(pair);
            let (k, v) = text.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// The proxy's children that run `spawngate-echo` directly: its session (and backend) processes.
pub fn echo_children(proxy_pid: u32) -> Vec<u32> {
    backend_children_of(proxy_pid)
        .into_iter()
        .filter(|&pid| pid_alive(pid))
        .filter(|&pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            cmdline.split(|&b| b == 0).next() == Some(echo_bin().as_bytes())
        })
        .collect()
}

/// The echo children whose `SPAWNGATE_SESSION_KEY` is `key`.
pub fn processes_of_key(proxy_pid: u32, key: &str) -> Vec<u32> {
    echo_children(proxy_pid)
        .into_iter()
        .filter(|&pid| {
            environ(pid)
                .get("SPAWNGATE_SESSION_KEY")
                .map(String::as_str)
                == Some(key)
        })
        .collect()
}

/// Counts `count()` every few milliseconds on a thread of its own and keeps the largest value, until
/// stopped: how a test checks that a bound held at every moment, not only at the end.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    max: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    pub fn start(count: impl Fn() -> usize + Send + 'static) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        // The first sample is taken before this returns: what runs now is counted even if the thread
        // is not scheduled before the next change on a loaded machine.
        let max = Arc::new(AtomicUsize::new(count()));
        let (s, m) = (stop.clone(), max.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                m.fetch_max(count(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Sampler {
            stop,
            max,
            thread: Some(thread),
        }
    }

    /// The largest count seen so far.
    pub fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }

    pub fn stop(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.max()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
