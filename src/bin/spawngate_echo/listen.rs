//! Where the echo listens, and opening it: a listener inherited by socket activation (`LISTEN_FDS`)
//! wins; else the place the command line or environment names ([`place_from`]), a TCP port on
//! `$ECHO_BIND` (127.0.0.1 by default) or a unix-domain socket, whose stale file from an earlier run is
//! removed first ([`bind_unix`]).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where to listen, as the command line and environment say.
#[derive(Debug, PartialEq, Eq)]
pub enum Place {
    Port(u16),
    Socket(PathBuf),
}

/// The listen place: `--socket PATH`, else `--port N`, else `$SPAWNGATE_SOCKET`, else `$PORT`. A socket
/// wins over a port from the same source: a supervisor that gives a unix-socket instance its path may
/// also pass the `PORT` every instance gets. `None` when nothing names one (fine for an inherited
/// listener).
pub fn place_from(
    args: &[String],
    env_socket: Option<String>,
    env_port: Option<String>,
) -> Result<Option<Place>, String> {
    let (mut port, mut socket) = (None, None);
    let mut i = 0;
    while i < args.len() {
        let slot = match args[i].as_str() {
            "--port" => &mut port,
            "--socket" => &mut socket,
            other => return Err(format!("unknown argument {other:?}")),
        };
        let value = args
            .get(i + 1)
            .ok_or_else(|| format!("{} needs a value", args[i]))?;
        *slot = Some(value.clone());
        i += 2;
    }
    let socket = socket.or(port.is_none().then_some(env_socket).flatten());
    if let Some(path) = socket.filter(|p| !p.is_empty()) {
        return Ok(Some(Place::Socket(PathBuf::from(path))));
    }
    let Some(text) = port.or(env_port) else {
        return Ok(None);
    };
    text.parse::<u16>()
        .map(|port| Some(Place::Port(port)))
        .map_err(|_| format!("bad port {text:?}"))
}

/// The server's listening socket, TCP or unix-domain.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    pub fn try_clone(&self) -> io::Result<Listener> {
        Ok(match self {
            Listener::Tcp(l) => Listener::Tcp(l.try_clone()?),
            Listener::Unix(l) => Listener::Unix(l.try_clone()?),
        })
    }
}

/// The listener to serve on: the inherited one if there is one, else one bound at `place`. On failure
/// it has said why on stderr, and gives the status to exit with: 2 for a bad `ECHO_BIND` or nowhere to
/// listen (a usage error), 1 when the bind itself fails. `ECHO_BIND` is checked even when a listener is
/// inherited, so a typo shows whichever way the echo is started.
pub fn open(pid: u32, place: Option<Place>) -> Result<Listener, ExitCode> {
    let ip = match std::env::var("ECHO_BIND") {
        Ok(text) => match text.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => {
                eprintln!("spawngate-echo: bad ECHO_BIND {text:?}");
                return Err(ExitCode::from(2));
            }
        },
        Err(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    if let Some(listener) = inherited_listener(pid) {
        eprintln!("spawngate-echo: pid {pid} serving on its inherited listener");
        return Ok(listener);
    }
    let Some(place) = place else {
        eprintln!(
            "spawngate-echo: set PORT or SPAWNGATE_SOCKET, or pass --port N or --socket PATH"
        );
        return Err(ExitCode::from(2));
    };
    let (bound, what) = match &place {
        Place::Port(port) => (
            TcpListener::bind(SocketAddr::new(ip, *port)).map(Listener::Tcp),
            format!("{ip}:{port}"),
        ),
        Place::Socket(path) => (
            bind_unix(path).map(Listener::Unix),
            format!("unix:{}", path.display()),
        ),
    };
    match bound {
        Ok(l) => {
            eprintln!("spawngate-echo: pid {pid} listening on {what}");
            Ok(l)
        }
        Err(e) => {
            eprintln!("spawngate-echo: cannot listen on {what}: {e}");
            Err(ExitCode::from(1))
        }
    }
}

/// The listener a service manager passed (systemd's `sd_listen_fds`): descriptor 3, when `LISTEN_PID`
/// names this process and `LISTEN_FDS` is 1. Another process's variables (inherited by mistake) are not
/// ours to act on.
fn inherited_listener(pid: u32) -> Option<Listener> {
    let ours = std::env::var("LISTEN_PID").is_ok_and(|v| v.trim() == pid.to_string());
    let one = std::env::var("LISTEN_FDS").is_ok_and(|v| v.trim() == "1");
    if !(ours && one) {
        return None;
    }
    // SAFETY: the service manager passed descriptor 3 to this process for it to own (LISTEN_PID is this
    // process, LISTEN_FDS says one), nothing else in this program uses it, and it is taken once.
    let fd = unsafe { OwnedFd::from_raw_fd(3) };
    // The socket's own address tells its family: std's `local_addr` refuses one of the other family.
    let tcp = TcpListener::from(fd);
    if tcp.local_addr().is_ok() {
        return Some(Listener::Tcp(tcp));
    }
    let unix = UnixListener::from(OwnedFd::from(tcp));
    match unix.local_addr() {
        Ok(_) => Some(Listener::Unix(unix)),
        // A descriptor that is not a socket of either kind is refused rather than served on.
        Err(e) => {
            eprintln!("spawngate-echo: LISTEN_FDS=1 but descriptor 3 is not a listener: {e}");
            None
        }
    }
}

/// Binds a unix-domain socket at `path`. A socket file left by an earlier run (one that refuses
/// connections) is removed first; a file something still listens on, or that is no socket, is left for
/// the bind to refuse.
fn bind_unix(path: &Path) -> io::Result<UnixListener> {
    let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    if is_socket {
        if let Err(e) = UnixStream::connect(path) {
            if e.kind() == io::ErrorKind::ConnectionRefused {
                let _ = std::fs::remove_file(path);
            }
        }
    }
    UnixListener::bind(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn the_listen_place_comes_from_arguments_then_environment() {
        let sock = |p: &str| Ok(Some(Place::Socket(PathBuf::from(p))));
        let env = |v: &str| Some(v.to_string());
        assert_eq!(
            place_from(&args(&["--port", "80"]), None, None),
            Ok(Some(Place::Port(80)))
        );
        assert_eq!(
            place_from(&args(&["--socket", "/a.sock"]), None, env("80")),
            sock("/a.sock")
        );
        assert_eq!(place_from(&[], env("/b.sock"), env("80")), sock("/b.sock"));
        assert_eq!(
            place_from(&args(&["--port", "81"]), env("/b.sock"), None),
            Ok(Some(Place::Port(81))),
            "an argument overrides the environment"
        );
        assert_eq!(
            place_from(&[], env(""), env("82")),
            Ok(Some(Place::Port(82)))
        );
        assert_eq!(
            place_from(&[], None, None),
            Ok(None),
            "an inherited listener needs none"
        );
        assert!(place_from(&[], None, env("x")).is_err());
        assert!(place_from(&args(&["--socket"]), None, None).is_err());
        assert!(place_from(&args(&["--nope", "1"]), None, None).is_err());
    }
}
