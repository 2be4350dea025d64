//! The supervisor's readiness-notification socket: the `NOTIFY_SOCKET` every local instance is given, as
//! systemd gives one to a `Type=notify` service. A program sends datagrams of `KEY=VALUE` lines:
//! `READY=1`, `STATUS=...`, `STOPPING=1`, `WATCHDOG=1`; anything else is ignored.
//!
//! One datagram socket serves every instance, registered in the supervisor's poll like the probes (no
//! polling of its own). The kernel stamps each datagram with the sender's pid (`SO_PASSCRED`, then
//! `SCM_CREDENTIALS`, which an unprivileged sender cannot forge), and the supervisor maps the sender's
//! *process group* to the instance: each instance leads its own group, so a program started through a
//! wrapper (`npm start`, a shell script) may notify from a child, as systemd's `NotifyAccess=all` allows.
//! One socket rather than one per instance: nothing to create, clean up or register per start, and the
//! credentials say who sent what, so a program cannot speak for another instance.
//!
//! The socket lives at a path (every `sd_notify` implementation takes one; not all take the abstract
//! `@name` form) in a directory of its own made with `mkdtemp`, so mode 0700: only this user can send.
//! The directory is removed when the supervisor ends. Its name carries the proxy's pid, so one left by a
//! proxy that was killed (`kill -9` runs no destructor) is removed by the next proxy that starts.

use std::io::{self, IoSliceMut};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use mio::net::UnixDatagram;
use mio::{Interest, Registry, Token};
use nix::errno::Errno;
use nix::sys::socket::{
    recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, UnixCredentials,
};

/// Longest message read. systemd's own limit is larger, but the few keys handled here fit in far less;
/// a longer datagram is dropped whole rather than read in part.
pub const MAX_MESSAGE: usize = 4096;

/// Datagrams read per wake-up, so a flooding program cannot hold the supervisor's thread; the socket is
/// re-armed when more are waiting (the poll is edge-triggered).
const MAX_MESSAGES_PER_WAKE: usize = 64;

/// What one line of a notification says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Ready,
    Stopping,
    Watchdog,
    Status(String),
}

/// One datagram: who sent it (pid) and what it says.
#[derive(Debug, PartialEq, Eq)]
pub struct Message {
    pub pid: i32,
    pub notices: Vec<Notice>,
}

#[derive(Debug)]
pub struct NotifySocket {
    socket: UnixDatagram,
    token: Token,
    dir: PathBuf,
    path: String,
}

/// Removes the notify directories in `base` of proxies that are no longer running: `spawngate-{pid}-*`
/// owned by this user whose pid is gone. Best effort: a directory that cannot be read or removed stays.
fn remove_leftovers(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    // This process's own uid, without the `user` feature of nix: /proc/self belongs to it.
    let Ok(uid) = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m))
    else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(leftover_pid) else {
            continue;
        };
        let ours = std::os::unix::fs::MetadataExt::uid(&match entry.metadata() {
            Ok(meta) if meta.is_dir() => meta,
            _ => continue,
        }) == uid;
        if ours && !process_exists(pid) {
            log::debug!(
                "removing {}, left by a proxy that is gone",
                entry.path().display()
            );
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The pid in a notify directory's name (`spawngate-{pid}-XXXXXX`).
fn leftover_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix("spawngate-")?;
    let (pid, suffix) = rest.split_once('-')?;
    let pid = pid.parse().ok().filter(|&pid: &i32| pid > 0)?;
    (suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(pid)
}

fn process_exists(pid: i32) -> bool {
    // Signal 0 checks existence; EPERM means it exists under another user.
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

impl NotifySocket {
    /// Makes the private directory and the socket in it, and registers it under `token`.
    pub fn open(registry: &Registry, token: Token) -> io::Result<NotifySocket> {
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|dir| dir.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        remove_leftovers(&base);
        let dir =
            nix::unistd::mkdtemp(&base.join(format!("spawngate-{}-XXXXXX", std::process::id())))?;
        let opened = Self::open_in(&dir, registry, token);
        if opened.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        opened
    }

    fn open_in(dir: &Path, registry: &Registry, token: Token) -> io::Result<NotifySocket> {
        let path = dir.join("notify");
        let text = path
            .to_str()
            .ok_or_else(|| io::Error::other("the runtime directory's path is not UTF-8"))?
            .to_string();
        let mut socket = UnixDatagram::bind(&path)?;
        setsockopt(&socket, sockopt::PassCred, &true)?;
        registry.register(&mut socket, token, Interest::READABLE)?;
        Ok(NotifySocket {
            socket,
            token,
            dir: dir.to_path_buf(),
            path: text,
        })
    }

    /// The value of `NOTIFY_SOCKET` for the instances.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Reads the datagrams waiting, up to a bound; with more left, re-registers the socket so the poll
    /// reports it again at once. Datagrams without credentials or too long are dropped with a debug log.
    pub fn receive(&mut self, registry: &Registry) -> Vec<Message> {
        let mut out = Vec::new();
        for _ in 0..MAX_MESSAGES_PER_WAKE {
            match self.receive_one() {
                Ok(Some(message)) => out.push(message),
                Ok(None) => {}
                Err(Errno::EAGAIN) => return out,
                Err(Errno::EINTR) => {}
                Err(e) => {
                    log::warn!("cannot read the notification socket: {e}");
                    return out;
                }
            }
        }
        // Re-registering re-checks readiness: the rest is reported on the next turn of the loop.
        if let Err(e) = registry.reregister(&mut self.socket, self.token, Interest::READABLE) {
            log::warn!("cannot re-arm the notification socket: {e}");
        }
        out
    }

    fn receive_one(&self) -> Result<Option<Message>, Errno> {
        let mut buf = [0u8; MAX_MESSAGE];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!(UnixCredentials, [std::os::fd::RawFd; 4]);
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC;
        let msg = recvmsg::<()>(self.socket.as_raw_fd(), &mut iov, Some(&mut space), flags)?;
        let mut pid = None;
        for cmsg in msg.cmsgs()? {
            match cmsg {
                ControlMessageOwned::ScmCredentials(creds) => pid = Some(creds.pid()),
                ControlMessageOwned::ScmRights(fds) => {
                    // File descriptors (`FDSTORE=1`) are not kept: close them rather than leak.
                    for fd in fds {
                        let _ = nix::unistd::close(fd);
                    }
                }
                _ => {}
            }
        }
        let truncated = msg.flags.contains(MsgFlags::MSG_TRUNC);
        let len = msg.bytes;
        let Some(pid) = pid else {
            log::debug!("a notification without credentials; ignored");
            return Ok(None);
        };
        if truncated {
            log::debug!("a notification from pid {pid} over {MAX_MESSAGE} bytes; ignored");
            return Ok(None);
        }
        let notices = parse(&buf[..len]);
        if notices.is_empty() {
            log::debug!("a notification from pid {pid} with nothing understood; ignored");
            return Ok(None);
        }
        Ok(Some(Message { pid, notices }))
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Longest `STATUS=` kept: a line in `/backends`, not a log.
const MAX_STATUS: usize = 256;

/// The notices of one datagram, in order. Lines that are not UTF-8, not `KEY=VALUE`, or not one of the
/// handled keys and values are skipped (a debug log per message says so).
pub fn parse(datagram: &[u8]) -> Vec<Notice> {
    let mut out = Vec::new();
    for line in datagram.split(|&b| b == b'\n') {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let notice = match line.split_once('=') {
            Some(("READY", "1")) => Notice::Ready,
            Some(("STOPPING", "1")) => Notice::Stopping,
            Some(("WATCHDOG", "1")) => Notice::Watchdog,
            Some(("STATUS", text)) => {
                let clean: String = text
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_STATUS)
                    .collect();
                Notice::Status(clean)
            }
            _ => continue,
        };
        out.push(notice);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram as StdDatagram;
    use std::time::Duration;

    use mio::{Events, Poll};

    use super::*;

    #[test]
    fn known_lines_are_read_and_everything_else_is_skipped() {
        assert_eq!(
            parse(b"READY=1\nSTATUS=warming the cache\nWATCHDOG=1\n"),
            vec![
                Notice::Ready,
                Notice::Status("warming the cache".into()),
                Notice::Watchdog
            ]
        );
        assert_eq!(parse(b"STOPPING=1"), vec![Notice::Stopping]);
        assert!(parse(b"READY=0\nMAINPID=12\nnonsense\n\xff\xfe=1\n").is_empty());
        let long = format!("STATUS={}\x07", "x".repeat(1000));
        assert_eq!(
            parse(long.as_bytes()),
            vec![Notice::Status("x".repeat(MAX_STATUS))]
        );
    }

    #[test]
    fn a_datagram_arrives_with_the_senders_pid_and_the_directory_is_private() {
        let mut poll = Poll::new().unwrap();
        let mut socket = NotifySocket::open(poll.registry(), Token(9)).unwrap();
        let dir = Path::new(socket.path()).parent().unwrap().to_path_buf();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&dir).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o700);
        let sender = StdDatagram::unbound().unwrap();
        sender
            .send_to(b"READY=1\nSTATUS=up", socket.path())
            .unwrap();
        sender
            .send_to(&[b'x'; MAX_MESSAGE + 10], socket.path())
            .unwrap();
        sender.send_to(b"garbage", socket.path()).unwrap();
        let mut events = Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        assert!(events.iter().any(|e| e.token() == Token(9)));
        let messages = socket.receive(poll.registry());
        assert_eq!(
            messages,
            vec![Message {
                pid: std::process::id() as i32,
                notices: vec![Notice::Ready, Notice::Status("up".into())],
            }]
        );
        drop(socket);
        assert!(!dir.exists(), "the directory goes with the socket");
    }

    #[test]
    fn a_directory_left_by_a_proxy_that_is_gone_is_removed_by_the_next() {
        let base = std::env::temp_dir().join(format!("sg-notify-test-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        // A pid that cannot exist (above the kernel's pid_max limit of 2^22), and ours, which does.
        let gone = base.join("spawngate-4194305-AbC123");
        let alive = base.join(format!("spawngate-{}-XyZ789", std::process::id()));
        let unrelated = base.join("spawngate-data");
        for dir in [&gone, &alive, &unrelated] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(gone.join("notify"), b"").unwrap();
        remove_leftovers(&base);
        assert!(!gone.exists());
        assert!(alive.exists() && unrelated.exists());
        std::fs::remove_dir_all(&base).unwrap();
        assert_eq!(leftover_pid("spawngate-12-abcdef"), Some(12));
        assert_eq!(leftover_pid("spawngate-0-abcdef"), None);
        assert_eq!(leftover_pid("spawngate-12-abc"), None);
    }

    #[test]
    fn a_flood_of_datagrams_is_all_read() {
        let mut poll = Poll::new().unwrap();
        let mut socket = NotifySocket::open(poll.registry(), Token(3)).unwrap();
        let path = socket.path().to_string();
        // The kernel queues only a few datagrams (`net.unix.max_dgram_qlen`, often 10): the sender
        // blocks until they are read, so it runs beside the reader, as a flooding program would.
        let sent = MAX_MESSAGES_PER_WAKE * 2 + 5;
        let sender = std::thread::spawn(move || {
            let sender = StdDatagram::unbound().unwrap();
            sender
                .set_write_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            for _ in 0..sent {
                sender.send_to(b"WATCHDOG=1", &path).unwrap();
            }
        });
        let mut events = Events::with_capacity(4);
        let mut read = 0;
        while read < sent {
            poll.poll(&mut events, Some(Duration::from_secs(5)))
                .unwrap();
            assert!(!events.is_empty(), "no wake-up with {} unread", sent - read);
            read += socket.receive(poll.registry()).len();
        }
        assert_eq!(read, sent);
        sender.join().unwrap();
    }
}
