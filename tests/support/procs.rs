//! Process facts read from /proc: liveness, children, zombies, memory.

use std::fs;

/// State letter and parent pid from `/proc/PID/stat`. The command name sits in parentheses and may
/// itself contain spaces or parentheses, so the fields are read after the last ')'.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &text[text.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Running (or sleeping, stopped...) and not yet a zombie.
pub fn pid_alive(pid: u32) -> bool {
    matches!(stat(pid), Some((state, _)) if state != 'Z' && state != 'X')
}

fn all_pids() -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Every process whose parent is `pid`, zombies included.
pub fn children_of(pid: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&p| matches!(stat(p), Some((_, ppid)) if ppid == pid))
        .collect()
}

/// Children of `pid` that have exited but were not reaped.
pub fn zombies_of(pid: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&p| matches!(stat(p), Some(('Z', ppid)) if ppid == pid))
        .collect()
}

/// Children, grandchildren... of `pid`, so a test can find a backend started through `sh -c`.
pub fn descendants_of(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for child in children_of(parent) {
            if !found.contains(&child) {
                found.push(child);
                frontier.push(child);
            }
        }
    }
    found
}

/// Resident memory in KiB (`VmRSS` in `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The pids a `spawngate-echo` wrote to its `ECHO_START_LOG`, one per start.
pub fn start_log_pids(path: &std::path::Path) -> Vec<u32> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Children of the proxy `pid` that are backends: every child but its orphan-guard watchdog.
pub fn backend_children_of(pid: u32) -> Vec<u32> {
    children_of(pid)
        .into_iter()
        .filter(|&child| {
            let cmdline = fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
            !cmdline
                .split(|&b| b == 0)
                .any(|arg| arg == b"__spawngate-watchdog")
        })
        .collect()
}
