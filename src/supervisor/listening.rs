//! Whether anything listens on a TCP port yet, asked of the kernel's socket table (`NETLINK_SOCK_DIAG`,
//! what `ss -ltn` uses) rather than found out by connecting; and the watch that asks it again and again
//! for every starting program that does not listen yet ([`ListenWatch`]).
//!
//! While a local program boots, the supervisor checks every millisecond or two whether it listens: the
//! moment it does is the moment it can take the held requests. A connection attempt answers that too,
//! but on loopback each refused one is a handshake answered by a reset, with the firewall's connection
//! tracking on top. Looking the port up in the kernel's socket tables is one hash lookup, the one an
//! arriving handshake makes, and touches no other socket. The HTTP health probe follows as soon
//! as the port listens. Where netlink is not available (a restricted sandbox), callers fall back to
//! connecting.
//!
//! Unix-domain instances are not looked up here: they too are knocked on with the probe's connect,
//! which for them is no handshake and touches no firewall. While nothing listens it fails at once, with
//! `ENOENT` (no socket file yet) or `ECONNREFUSED` (a stale file), both read as "refused"
//! (`probe::Verdict::of_connect_error`).

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{
    recv, send, socket, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType,
};

use super::keys::InstanceKey;
use super::timers::Timers;

/// `SOCK_DIAG_BY_FAMILY`: the dump request of `sock_diag`.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x01;
const NLMSG_ERROR: u16 = 2;
/// `TCP_LISTEN` in the kernel's TCP states; the request asks for this state only.
const TCP_LISTEN: u32 = 10;
const NLMSG_HEADER_LEN: usize = 16;
/// `struct inet_diag_req_v2`: family, protocol, ext, pad, states, then a 48-byte `inet_diag_sockid`.
const REQUEST_LEN: usize = NLMSG_HEADER_LEN + 56;
/// Offset of the source port (network order) in a reply: the message header, then `inet_diag_msg`'s
/// family, state, timer and retrans bytes, then `inet_diag_sockid` starting with the source port.
const SPORT_OFFSET: usize = NLMSG_HEADER_LEN + 4;
/// Room for the answer: one `inet_diag_msg` or one error message.
const RECV_BUFFER: usize = 1024;

/// A netlink socket for listen checks, kept open by the supervisor.
#[derive(Debug)]
pub struct ListenCheck {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl ListenCheck {
    pub fn open() -> io::Result<ListenCheck> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkSockDiag,
        )?;
        Ok(ListenCheck {
            fd,
            buf: vec![0; RECV_BUFFER],
        })
    }

    /// Whether a connection to `127.0.0.1:port` would find a listener: one exact lookup in the
    /// kernel's socket tables (the one an arriving handshake makes), so a socket bound to `0.0.0.0`,
    /// or to `[::]` taking IPv4 too, counts; no table is walked.
    pub fn is_listening(&mut self, port: u16) -> io::Result<bool> {
        send(self.fd.as_raw_fd(), &request(port), MsgFlags::empty())?;
        let n = recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty())?;
        match scan(&self.buf[..n], port) {
            Scan::Found(found) => Ok(found),
            Scan::Error(errno) if errno == nix::libc::ENOENT => Ok(false),
            Scan::Error(errno) => Err(io::Error::from_raw_os_error(errno)),
        }
    }
}

/// The gap between two looks during the first [`EARLY_WINDOW_US`] of a start: a program that is up
/// within a second (a small server, a compiled binary) is found a quarter of a millisecond after its
/// `listen` at worst, for 4,000 looks at most.
pub const EARLY_GAP_US: u64 = 250;
/// The first moments after a spawn, looked at every [`EARLY_GAP_US`].
pub const EARLY_WINDOW_US: u64 = 1_000_000;
/// The gap after that, for slower starts. Every look wakes the supervisor and costs under 10 µs of
/// CPU here (a lookup, a timer, a context switch): a program that takes 10 s to start costs about
/// 0.2 s of the proxy's CPU in all.
pub const LATE_GAP_US: u64 = 500;

/// The gap before the next look at a program that has been starting for `since_spawn_us`.
pub fn look_gap_us(since_spawn_us: u64) -> u64 {
    match since_spawn_us < EARLY_WINDOW_US {
        true => EARLY_GAP_US,
        false => LATE_GAP_US,
    }
}

/// Starting local programs that do not listen yet, each looked up in the socket table again at its
/// own moment, in microseconds of the supervisor's clock. This runs beside the lifecycle rather than
/// through it: the lifecycle sees one probe in flight from the first look until the port listens (and
/// the HTTP probe goes out) or the start ends, so a look costs one lookup and one timer, and its
/// moment is exact to the microsecond where the lifecycle's are whole milliseconds.
#[derive(Debug)]
pub struct ListenWatch {
    check: ListenCheck,
    due: Timers<InstanceKey>,
    watched: HashMap<InstanceKey, Watched>,
}

#[derive(Debug, Clone, Copy)]
struct Watched {
    port: u16,
    spawned_us: u64,
    next_us: u64,
}

impl ListenWatch {
    pub fn open() -> io::Result<ListenWatch> {
        Ok(ListenWatch {
            check: ListenCheck::open()?,
            due: Timers::new(),
            watched: HashMap::new(),
        })
    }

    pub fn is_listening(&mut self, port: u16) -> io::Result<bool> {
        self.check.is_listening(port)
    }

    /// Looks at `key`'s port again after the gap, and on until it listens or is forgotten.
    pub fn watch(&mut self, key: InstanceKey, port: u16, spawned_us: u64, now_us: u64) {
        let next_us = now_us + look_gap_us(now_us.saturating_sub(spawned_us));
        self.watched.insert(
            key,
            Watched {
                port,
                spawned_us,
                next_us,
            },
        );
        self.due.set(key, Some(next_us));
    }

    /// Stops looking at `key` (its probe was cancelled: the start ended one way or another).
    pub fn forget(&mut self, key: InstanceKey) {
        if self.watched.remove(&key).is_some() {
            self.due.set(key, None);
        }
    }

    #[cfg(test)]
    pub fn is_watching(&self, key: InstanceKey) -> bool {
        self.watched.contains_key(&key)
    }

    /// The moment of the next look, if any.
    pub fn next_due_us(&mut self) -> Option<u64> {
        self.due.next_deadline()
    }

    /// Looks at every port due at `now_us`. Those that listen (or whose lookup failed: a connection
    /// will tell) leave the watch and are returned, to be probed now; the others are looked at again one
    /// gap after their last look was due, so late wake-ups do not add up.
    pub fn look(&mut self, now_us: u64) -> Vec<InstanceKey> {
        let mut found = Vec::new();
        while let Some(key) = self.due.pop_due(now_us) {
            let Some(mut watched) = self.watched.get(&key).copied() else {
                continue;
            };
            if let Ok(false) = self.check.is_listening(watched.port) {
                let gap = look_gap_us(now_us.saturating_sub(watched.spawned_us));
                watched.next_us = (watched.next_us + gap).max(now_us + gap / 2);
                self.watched.insert(key, watched);
                self.due.set(key, Some(watched.next_us));
                continue;
            }
            self.watched.remove(&key);
            found.push(key);
        }
        found
    }
}

/// The exact-lookup request for a listener on `127.0.0.1:port` (no remote end).
fn request(port: u16) -> [u8; REQUEST_LEN] {
    let mut out = [0u8; REQUEST_LEN];
    out[0..4].copy_from_slice(&(REQUEST_LEN as u32).to_ne_bytes());
    out[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    out[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    // Sequence number and port id stay 0: one request at a time, answered to this socket.
    out[16] = nix::libc::AF_INET as u8;
    out[17] = nix::libc::IPPROTO_TCP as u8;
    out[20..24].copy_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes());
    // inet_diag_sockid: source port and address (network order), remote left zero, any interface,
    // and INET_DIAG_NOCOOKIE (all ones), which any socket's cookie check accepts.
    out[24..26].copy_from_slice(&port.to_be_bytes());
    out[28..32].copy_from_slice(&[127, 0, 0, 1]);
    out[64..72].fill(0xff);
    out
}

#[derive(Debug, PartialEq, Eq)]
enum Scan {
    /// A socket answered the lookup; whether it listens on the port.
    Found(bool),
    Error(i32),
}

/// Reads the answer to one lookup: a socket, or an error (`ENOENT`: none).
fn scan(answer: &[u8], port: u16) -> Scan {
    if answer.len() < NLMSG_HEADER_LEN {
        return Scan::Error(nix::libc::EPROTO);
    }
    let len = u32::from_ne_bytes([answer[0], answer[1], answer[2], answer[3]]) as usize;
    let kind = u16::from_ne_bytes([answer[4], answer[5]]);
    if len < NLMSG_HEADER_LEN || len > answer.len() {
        return Scan::Error(nix::libc::EPROTO);
    }
    match kind {
        NLMSG_ERROR => {
            let errno = answer
                .get(NLMSG_HEADER_LEN..NLMSG_HEADER_LEN + 4)
                .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
            Scan::Error(errno.checked_neg().unwrap_or(nix::libc::EPROTO))
        }
        SOCK_DIAG_BY_FAMILY => {
            let state = answer.get(NLMSG_HEADER_LEN + 1).copied();
            let sport = answer.get(SPORT_OFFSET..SPORT_OFFSET + 2);
            let listens = state == Some(TCP_LISTEN as u8)
                && sport.is_some_and(|p| u16::from_be_bytes([p[0], p[1]]) == port);
            Scan::Found(listens)
        }
        _ => Scan::Error(nix::libc::EPROTO),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Netlink can be missing in a sandbox (the supervisor then connects instead); CI has it.
    fn open_or_skip<T>(open: impl FnOnce() -> io::Result<T>) -> Option<T> {
        match open() {
            Ok(it) => Some(it),
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!("no sock_diag: {e}");
                None
            }
            Err(e) => panic!("no sock_diag netlink: {e}"),
        }
    }

    /// A port nothing listens on (just now).
    fn free_port() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    }

    #[test]
    fn a_listening_port_is_seen_and_a_closed_one_is_not() {
        let Some(mut check) = open_or_skip(ListenCheck::open) else {
            return;
        };
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        assert_eq!(check.is_listening(port).ok(), Some(true));
        drop(listener);
        assert_eq!(check.is_listening(port).ok(), Some(false));
        // Bound to every address, and dual-stack IPv6: a connection to 127.0.0.1 would find both.
        let any = TcpListener::bind("0.0.0.0:0").expect("bind");
        let port = any.local_addr().expect("addr").port();
        assert_eq!(check.is_listening(port).ok(), Some(true), "0.0.0.0");
        if let Ok(v6) = TcpListener::bind("[::]:0") {
            let port = v6.local_addr().expect("addr").port();
            assert_eq!(check.is_listening(port).ok(), Some(true), "[::] dual-stack");
        }
    }

    #[test]
    fn the_watch_looks_at_its_moments_until_the_port_listens_then_lets_go() {
        let Some(mut watch) = open_or_skip(ListenWatch::open) else {
            return;
        };
        let (key, port) = (InstanceKey::new(0, 0), free_port());
        watch.watch(key, port, 0, 0);
        assert_eq!(watch.next_due_us(), Some(EARLY_GAP_US));
        assert!(watch.look(EARLY_GAP_US - 1).is_empty(), "not due yet");
        assert!(watch.look(EARLY_GAP_US).is_empty(), "nothing listens");
        assert_eq!(watch.next_due_us(), Some(2 * EARLY_GAP_US));
        assert!(watch.is_watching(key));
        let _listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the port");
        assert_eq!(watch.look(2 * EARLY_GAP_US), vec![key]);
        assert!(!watch.is_watching(key));
        assert_eq!(watch.next_due_us(), None, "no look once it listens");
    }

    #[test]
    fn slow_starts_are_looked_at_less_often_and_late_looks_do_not_bunch_up() {
        let Some(mut watch) = open_or_skip(ListenWatch::open) else {
            return;
        };
        assert_eq!(look_gap_us(0), EARLY_GAP_US);
        assert_eq!(look_gap_us(EARLY_WINDOW_US), LATE_GAP_US);
        let (key, port) = (InstanceKey::new(3, 1), free_port());
        let now = 5 * EARLY_WINDOW_US;
        watch.watch(key, port, 0, now);
        assert_eq!(watch.next_due_us(), Some(now + LATE_GAP_US));
        // Woken 10 gaps late: the next look is half a gap away, not 10 looks in a row.
        let late = now + 11 * LATE_GAP_US;
        assert!(watch.look(late).is_empty());
        assert_eq!(watch.next_due_us(), Some(late + LATE_GAP_US / 2));
    }

    #[test]
    fn a_forgotten_instance_is_looked_at_no_more() {
        let Some(mut watch) = open_or_skip(ListenWatch::open) else {
            return;
        };
        let (key, port) = (InstanceKey::new(1, 0), free_port());
        watch.watch(key, port, 0, 0);
        watch.forget(key);
        assert_eq!(watch.next_due_us(), None);
        let _listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the port");
        assert!(watch.look(u64::MAX / 2).is_empty());
    }

    #[test]
    fn malformed_batches_are_errors_not_panics() {
        assert_eq!(scan(&[], 80), Scan::Error(nix::libc::EPROTO));
        assert_eq!(scan(&[0xff; 20], 80), Scan::Error(nix::libc::EPROTO));
        let mut other = [0u8; 16];
        other[0..4].copy_from_slice(&16u32.to_ne_bytes());
        other[4..6].copy_from_slice(&3u16.to_ne_bytes()); // NLMSG_DONE: not an answer to a lookup
        assert_eq!(scan(&other, 80), Scan::Error(nix::libc::EPROTO));
        let mut short = [0u8; 16];
        short[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert_eq!(scan(&short, 80), Scan::Error(nix::libc::EPROTO));
    }
}
