//! The `process_*` metrics Prometheus client libraries export, read from `/proc` at scrape time (nothing
//! is sampled in between): resident and virtual memory, open and allowed file descriptors, CPU seconds
//! and the start time. The parsing is sans-IO; [`read`] does the reading.

use std::fs;

/// One reading; a value `/proc` did not give is `None` (and left out).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    /// Unix seconds.
    pub start_time: Option<f64>,
}

/// What `/proc/self/stat` says, in its own units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// User plus system time, in clock ticks.
    pub cpu_ticks: u64,
    /// Since boot, in clock ticks.
    pub start_ticks: u64,
    pub vsize: u64,
    /// In pages.
    pub rss_pages: u64,
}

/// Parses `/proc/self/stat`. The command name (field 2) may hold spaces and parentheses, so fields are
/// counted from its last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let after = &text[text.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name; utime is field 14, so index 11 here.
    let fields: Vec<&str> = after.split_ascii_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        cpu_ticks: field(14)? + field(15)?,
        start_ticks: field(22)?,
        vsize: field(23)?,
        rss_pages: field(24)?,
    })
}

/// `btime` of `/proc/stat`: when the system booted, in Unix seconds.
pub fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// The soft limit of `Max open files` in `/proc/self/limits`.
pub fn parse_max_fds(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Reads this process's figures now.
pub fn read() -> ProcessStats {
    let tick = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|t| *t > 0)
        .unwrap_or(100) as f64;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .filter(|p| *p > 0)
        .unwrap_or(4096) as u64;
    let stat = fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|t| parse_stat(&t));
    let boot = fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| parse_boot_time(&t));
    let open_fds = fs::read_dir("/proc/self/fd")
        .ok()
        // The directory handle itself is one of the entries while it is read.
        .map(|dir| (dir.count() as u64).saturating_sub(1));
    let max_fds = fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| parse_max_fds(&t));
    ProcessStats {
        cpu_seconds: stat.map(|s| s.cpu_ticks as f64 / tick),
        resident_bytes: stat.map(|s| s.rss_pages.saturating_mul(page)),
        virtual_bytes: stat.map(|s| s.vsize),
        open_fds,
        max_fds,
        start_time: stat
            .zip(boot)
            .map(|(s, boot)| boot as f64 + s.start_ticks as f64 / tick),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let text = "4242 (spawn (gate) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 \
                    5 0 123456 987654321 1500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1";
        assert_eq!(
            parse_stat(text),
            Some(Stat {
                cpu_ticks: 300,
                start_ticks: 123_456,
                vsize: 987_654_321,
                rss_pages: 1_500,
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn boot_time_and_fd_limit() {
        assert_eq!(
            parse_boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n"),
            Some(1_700_000_000)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_max_fds(limits), Some(1024));
    }

    #[test]
    fn this_process_can_be_read() {
        let stats = read();
        assert!(stats.resident_bytes.is_some_and(|b| b > 0));
        assert!(stats.open_fds.is_some_and(|n| n >= 3));
        assert!(stats.start_time.is_some_and(|t| t > 1.6e9));
    }
}
