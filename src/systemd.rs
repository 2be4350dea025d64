//! The proxy's side of systemd's two service protocols, for `Type=notify` units and socket units:
//! readiness notification (`NOTIFY_SOCKET`: `READY=1` once it listens, `RELOADING=1` and `READY=1`
//! around a reload, `STOPPING=1` when it shuts down) and inherited listeners (`LISTEN_FDS`, so a
//! restart never refuses a connection: they wait in the kernel's backlog of a socket systemd keeps).
//! Without these variables nothing here does anything. The variables describe this process only: they
//! are never passed on to backends (the supervisor removes them from every child's environment).

use std::io;
use std::net::TcpListener;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{getsockopt, sockopt};

/// The environment variables that belong to this process's own service manager.
pub const OWN_VARIABLES: [&str; 4] = [
    "NOTIFY_SOCKET",
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
];

/// The first inherited descriptor (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;

/// Sends state changes to the service manager's notification socket.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// The notifier `NOTIFY_SOCKET` names (a path, or `@name` in the abstract namespace); `None` when it
    /// is unset or unusable (a warning says why: the service would then time out waiting for us).
    pub fn from_env() -> Option<Notifier> {
        let target = std::env::var_os("NOTIFY_SOCKET")?;
        let target = target.to_string_lossy();
        let addr = match target.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
            None => SocketAddr::from_pathname(target.as_ref()),
        };
        let made = addr.and_then(|addr| Ok((UnixDatagram::unbound()?, addr)));
        match made {
            Ok((socket, addr)) => {
                // A stuck service manager must not stall the reactor: a datagram either goes or not.
                let _ = socket.set_write_timeout(Some(Duration::from_millis(100)));
                Some(Notifier { socket, addr })
            }
            Err(e) => {
                log::warn!("NOTIFY_SOCKET={target} is not usable: {e}");
                None
            }
        }
    }

    /// Listening, backends known: ready to serve.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    /// A reload begins; `ready` follows when it is done (applied or rejected).
    pub fn reloading(&self) {
        let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000)
            .unwrap_or(0);
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={now}"));
    }

    /// Shutting down: draining, then stopping every backend.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=draining and stopping backends");
    }

    fn send(&self, message: &str) {
        if let Err(e) = self.socket.send_to_addr(message.as_bytes(), &self.addr) {
            log::warn!("cannot notify the service manager: {e}");
        }
    }
}

/// Listeners handed over by the service manager, by role.
#[derive(Debug, Default)]
pub struct Inherited {
    pub http: Option<TcpListener>,
    pub admin: Option<TcpListener>,
}

/// Takes the listening sockets passed to this process (`LISTEN_PID` is this process and `LISTEN_FDS`
/// counts them from descriptor 3). Named `http` and `admin` in `LISTEN_FDNAMES` (the socket unit's
/// `FileDescriptorName=`), or else the first is the proxy's and the second the admin listener. Each is
/// checked to be a listening TCP socket and made close-on-exec, so no backend inherits it.
pub fn inherited_listeners() -> io::Result<Inherited> {
    let mine = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|pid| pid.trim().parse::<u32>().ok())
        .is_some_and(|pid| pid == std::process::id());
    if !mine {
        return Ok(Inherited::default());
    }
    let count: RawFd = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    if !(0..=2).contains(&count) {
        return Err(io::Error::other(format!(
            "LISTEN_FDS={count}: expected the proxy's listener and at most the admin listener"
        )));
    }
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .map(|names| names.split(':').map(str::to_string).collect())
        .unwrap_or_default();
    let mut inherited = Inherited::default();
    for index in 0..count {
        let fd = LISTEN_FDS_START + index;
        let listener = take_listener(fd)?;
        let role = names.get(index as usize).map(String::as_str);
        let slot = match (role, index) {
            (Some("admin"), _) | (None | Some(""), 1) => &mut inherited.admin,
            (Some("http") | None | Some(""), _) => &mut inherited.http,
            (Some(other), _) => {
                return Err(io::Error::other(format!(
                    "inherited socket named {other:?}: expected \"http\" or \"admin\""
                )))
            }
        };
        if slot.replace(listener).is_some() {
            return Err(io::Error::other("two inherited sockets for one role"));
        }
    }
    Ok(inherited)
}

fn take_listener(fd: RawFd) -> io::Result<TcpListener> {
    let bad = |why: &str| io::Error::other(format!("inherited descriptor {fd} {why}"));
    // SAFETY: the service manager passed descriptors LISTEN_FDS_START.. to this process for it to own
    // (LISTEN_PID is this process), nothing else in the proxy knows of them, and each is taken once.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    fcntl(&owned, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(|_| bad("is not open"))?;
    let stream = getsockopt(&owned, sockopt::SockType).map_err(|_| bad("is not a socket"))?;
    let listening = getsockopt(&owned, sockopt::AcceptConn).unwrap_or(false);
    if stream != nix::sys::socket::SockType::Stream || !listening {
        return Err(bad("is not a listening stream socket"));
    }
    Ok(TcpListener::from(owned))
}
