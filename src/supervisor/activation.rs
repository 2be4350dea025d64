//! Socket activation of a local instance, systemd-style: the supervisor binds the instance's listener
//! (its TCP port or its unix-domain socket) itself and the program inherits it as descriptor 3, with `LISTEN_FDS=1`, `LISTEN_FDNAMES=http` and
//! `LISTEN_PID` = the program's own pid. Connections made before the program calls `accept` wait in the
//! listener's backlog, so the instance is routable from the moment it is spawned.
//!
//! `LISTEN_PID` is the one hard part: the child's pid is known only after `fork`, and std prepares the
//! environment before it (a `setenv` in the child is not async-signal-safe). So the whole exec is done
//! here, in the child, from an [`ExecPlan`] built before the fork: the program's path, `argv` and `envp`
//! are ready-made NUL-terminated arrays, with `LISTEN_PID=` followed by room for the digits. In the child
//! only async-signal-safe system calls run (`getpid`, `dup2`, `fcntl`, `execve`) and the digits are
//! written into memory allocated before the fork: no allocation, no lock, no `environ`.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::libc;
use nix::sys::socket::{listen, Backlog};

/// The descriptor the program finds its listener at (`SD_LISTEN_FDS_START`).
pub const LISTEN_FD: RawFd = 3;

/// Connections the kernel queues while the program boots: a burst of first requests waits rather than
/// being refused (capped by `net.core.somaxconn`).
const BACKLOG: i32 = 1024;

/// `LISTEN_PID=` and room for any pid (at most 10 digits for an `i32`) and the NUL.
const LISTEN_PID_PREFIX: &[u8] = b"LISTEN_PID=";
const PID_DIGITS: usize = 10;

/// Binds `addr` for an instance: SO_REUSEADDR (a restart binds over connections left in TIME_WAIT),
/// close-on-exec (only the instance it is meant for inherits it, at descriptor 3), listening.
pub fn bind_listener(addr: SocketAddr) -> io::Result<OwnedFd> {
    // std sets SO_REUSEADDR and close-on-exec; a second `listen` only raises the backlog, which Linux
    // allows on a listening socket.
    let listener = OwnedFd::from(std::net::TcpListener::bind(addr)?);
    listen(&listener, Backlog::new(BACKLOG).unwrap_or(Backlog::MAXCONN))?;
    Ok(listener)
}

/// Binds a unix-domain socket at `path` for an instance: close-on-exec (std's default), listening with
/// the same backlog as a TCP listener. A socket file left by a dead program is removed first (a bind
/// over an existing file fails); one something still answers on is not, and the bind fails with
/// `AddrInUse`.
pub fn bind_unix_listener(path: &Path) -> io::Result<OwnedFd> {
    remove_stale_socket(path)?;
    let listener = OwnedFd::from(UnixListener::bind(path)?);
    listen(&listener, Backlog::new(BACKLOG).unwrap_or(Backlog::MAXCONN))?;
    Ok(listener)
}

/// Removes the socket file at `path` if nothing listens on it. Only a refused connect proves that (the
/// rule [`super::instance::address_is_taken`] applies to unix sockets): a full backlog (`EAGAIN`) or a
/// permission error says nothing about the listener, and a file that is not a socket is not ours to
/// delete. In those cases the file stays and the bind reports it.
pub fn remove_stale_socket(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {}
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "something listens on the socket",
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            match std::fs::remove_file(path) {
                // Another process may have removed it meanwhile: the bind decides.
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        }
        Err(_) => Ok(()),
    }
}

/// Pointers into the [`ExecPlan`]'s own strings, NUL-terminated as `execve` wants them.
struct PointerArray(Vec<*const libc::c_char>);

// SAFETY: the pointers point into heap buffers owned by the same `ExecPlan` (a `CString`'s or a
// `Vec<u8>`'s, which do not move when the plan moves), are never written through in this process, and
// are only read in the forked child, where this thread is the only one.
unsafe impl Send for PointerArray {}
// SAFETY: as above; nothing reads them concurrently (only the child, after `fork`, uses them).
unsafe impl Sync for PointerArray {}

/// Everything `execve` needs, made before the fork.
pub struct ExecPlan {
    path: CString,
    _argv: Vec<CString>,
    argv_ptrs: PointerArray,
    _env: Vec<CString>,
    /// `LISTEN_PID=` then digits and NUL, written in the child.
    listen_pid: Vec<u8>,
    envp_ptrs: PointerArray,
    /// The listener, as the child sees it before moving it to [`LISTEN_FD`].
    listener: RawFd,
}

impl ExecPlan {
    /// The exec of `command args` with the proxy's environment less `remove`, then `env` (later entries
    /// win), then the `LISTEN_*` variables for `listener`. `command` is looked up in `PATH` now (the one
    /// `env` sets, else the proxy's), as `execvp` would, so the child only has to call `execve`.
    pub fn new(
        command: &str,
        args: &[String],
        env: &[(String, String)],
        remove: &[&str],
        listener: &OwnedFd,
    ) -> io::Result<ExecPlan> {
        let mut vars: Vec<(OsString, OsString)> = std::env::vars_os()
            .filter(|(name, _)| !remove.iter().any(|r| OsStr::new(r) == name))
            .collect();
        let listen = [("LISTEN_FDS", "1"), ("LISTEN_FDNAMES", "http")];
        let added = env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(listen);
        for (name, value) in added {
            vars.retain(|(existing, _)| existing != name);
            vars.push((name.into(), value.into()));
        }
        vars.retain(|(name, _)| name != "LISTEN_PID");
        let search_path = vars
            .iter()
            .find(|(name, _)| name == "PATH")
            .map(|(_, value)| value.clone());
        let path = resolve(command, search_path.as_deref())?;

        let argv: Vec<CString> = std::iter::once(command.to_string())
            .chain(args.iter().cloned())
            .map(|arg| cstring(arg.into_bytes()))
            .collect::<io::Result<_>>()?;
        let env_strings: Vec<CString> = vars
            .into_iter()
            .map(|(name, value)| {
                let mut entry = name.into_vec();
                entry.push(b'=');
                entry.extend(value.into_vec());
                cstring(entry)
            })
            .collect::<io::Result<_>>()?;
        let mut listen_pid = LISTEN_PID_PREFIX.to_vec();
        listen_pid.resize(LISTEN_PID_PREFIX.len() + PID_DIGITS + 1, 0);

        let argv_ptrs = null_terminated(argv.iter().map(|a| a.as_ptr()));
        let envp_ptrs = null_terminated(
            env_strings
                .iter()
                .map(|e| e.as_ptr())
                .chain(std::iter::once(listen_pid.as_ptr().cast())),
        );
        Ok(ExecPlan {
            path: cstring(path.into_os_string().into_vec())?,
            _argv: argv,
            argv_ptrs,
            _env: env_strings,
            listen_pid,
            envp_ptrs,
            listener: listener.as_raw_fd(),
        })
    }

    /// In the forked child: puts the listener at descriptor 3 (inheritable), writes `LISTEN_PID` and
    /// execs. Returns only on failure, with the error std then reports to the parent.
    ///
    /// # Safety
    /// Only to be called in the child between `fork` and `exec` (a `pre_exec` closure): it replaces the
    /// process image. Everything it calls is async-signal-safe and it allocates nothing.
    pub unsafe fn exec_in_child(&mut self) -> io::Error {
        if self.listener != LISTEN_FD && libc::dup2(self.listener, LISTEN_FD) < 0 {
            return io::Error::last_os_error();
        }
        // dup2 leaves the copy inheritable, but when the listener already was descriptor 3 it is still
        // close-on-exec: clear the flag either way.
        if libc::fcntl(LISTEN_FD, libc::F_SETFD, 0) < 0 {
            return io::Error::last_os_error();
        }
        write_pid(
            &mut self.listen_pid[LISTEN_PID_PREFIX.len()..],
            libc::getpid(),
        );
        libc::execve(
            self.path.as_ptr(),
            self.argv_ptrs.0.as_ptr(),
            self.envp_ptrs.0.as_ptr(),
        );
        io::Error::last_os_error()
    }
}

/// While the proxy has no descriptor 3 open, holds one there (a copy of `listener`) for the time of a
/// spawn. std creates its exec-error pipe and `/dev/null` before the fork; were one of them to land on
/// descriptor 3, the child's `dup2` to 3 would replace it (and an exec failure would go unreported). In
/// the proxy, descriptor 3 is one of the first sockets it opens and stays open, so this rarely does
/// anything; library tests, which open and close freely, are where it matters.
pub fn hold_descriptor_3(listener: &OwnedFd) -> Option<OwnedFd> {
    // SAFETY: F_GETFD only reads the flags of a descriptor number; an unused one answers EBADF.
    let free = unsafe { libc::fcntl(LISTEN_FD, libc::F_GETFD) } < 0;
    if !free {
        return None;
    }
    let copy =
        nix::fcntl::fcntl(listener, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(LISTEN_FD)).ok()?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
    Some(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(copy) })
}

fn cstring(bytes: Vec<u8>) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte"))
}

fn null_terminated<'a>(ptrs: impl Iterator<Item = *const libc::c_char> + 'a) -> PointerArray {
    PointerArray(ptrs.chain(std::iter::once(std::ptr::null())).collect())
}

/// Writes `pid` in decimal then a NUL into `out` (which has room for any `i32`): no formatting
/// machinery, which may allocate.
fn write_pid(out: &mut [u8], pid: libc::pid_t) {
    let mut digits = [0u8; PID_DIGITS];
    let mut n = pid.unsigned_abs();
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
        if n == 0 || len == PID_DIGITS {
            break;
        }
    }
    for (i, digit) in digits[..len].iter().rev().enumerate() {
        out[i] = *digit;
    }
    out[len] = 0;
}

/// `command` as `execvp` would find it: a name with a '/' is a path (relative to the working directory
/// the child runs in); anything else is looked up in `search_path`, or `/bin:/usr/bin` without one.
fn resolve(command: &str, search_path: Option<&OsStr>) -> io::Result<PathBuf> {
    if command.is_empty() {
        return Err(io::Error::from(io::ErrorKind::NotFound));
    }
    if command.contains('/') {
        return Ok(PathBuf::from(command));
    }
    let dirs = search_path.unwrap_or(OsStr::new("/bin:/usr/bin"));
    std::env::split_paths(dirs)
        .map(|dir| dir.join(command))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unix_listener_replaces_a_stale_socket_file_but_not_a_live_one() {
        let path = crate::supervisor::test_support::scratch_file("activation.sock");
        let first = bind_unix_listener(&path).unwrap();
        let live = bind_unix_listener(&path).unwrap_err();
        assert_eq!(live.kind(), io::ErrorKind::AddrInUse, "{live}");
        // The listener accepts (queues) connections before anything calls accept.
        let queued = UnixStream::connect(&path).unwrap();
        drop((queued, first));
        assert!(path.exists(), "a closed listener leaves its file");
        let second = bind_unix_listener(&path).unwrap();
        assert!(
            UnixStream::connect(&path).is_ok(),
            "bound again over the stale file"
        );
        drop(second);
        let _ = std::fs::remove_file(&path);

        std::fs::write(&path, b"not a socket").unwrap();
        let refused = bind_unix_listener(&path).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::AddrInUse, "{refused}");
        assert_eq!(std::fs::read(&path).unwrap(), b"not a socket", "left alone");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_socket_activated_unix_instance_inherits_its_bound_listener() {
        use crate::supervisor::instance::Instance;
        use crate::supervisor::keys::InstanceKey;
        use crate::supervisor::test_support::{
            docker_driver, local_config, scratch_file, wait_for,
        };
        use crate::upstream::instance::InstanceSpec;
        use crate::upstream::UpstreamAddr;

        let path = scratch_file("activated-unix.sock");
        // A stale file from an earlier run, which the bind replaces.
        drop(UnixListener::bind(&path).unwrap());
        // The program checks what it inherited: the systemd variables for its own pid, and a socket
        // at descriptor 3.
        let script = r#"[ "$LISTEN_FDS" = 1 ] && [ "$LISTEN_PID" = $$ ] && [ -S /proc/$$/fd/3 ]"#;
        let mut config = local_config(1, "sh", &["-c", script]);
        config.timings.socket_activation = true;
        let spec = InstanceSpec {
            addr: UpstreamAddr::Unix(std::sync::Arc::new(path.clone())),
            port: 0,
            ..InstanceSpec::first(&config)
        };
        let (mut docker, _events, _poll) = docker_driver();
        let key = InstanceKey::new(0, 0);
        let mut instance = Instance::start(
            &config,
            &spec,
            "http://x",
            None,
            &mut docker,
            key,
            &crate::supervisor::output::OutputSink::inherit("x", "process"),
        )
        .unwrap();
        assert!(instance.is_socket_activated());
        // Bound and listening before the program runs: a client's connection waits in the backlog.
        assert!(UnixStream::connect(&path).is_ok());
        let how = wait_for(std::time::Duration::from_secs(5), || instance.poll_exit());
        assert_eq!(
            how.as_deref(),
            Some("status 0"),
            "the program found its listener"
        );
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn the_pid_is_written_in_place_with_its_nul() {
        let mut out = [0xffu8; PID_DIGITS + 1];
        write_pid(&mut out, 4_194_303);
        assert_eq!(&out[..8], b"4194303\0");
        write_pid(&mut out, 7);
        assert_eq!(&out[..2], b"7\0");
        write_pid(&mut out, i32::MAX);
        assert_eq!(&out[..11], b"2147483647\0");
    }

    #[test]
    fn commands_are_found_as_execvp_would() {
        assert_eq!(
            resolve("sh", Some(OsStr::new("/nonexistent:/bin:/usr/bin"))).unwrap(),
            PathBuf::from("/bin/sh")
        );
        assert_eq!(
            resolve("./run", None).unwrap(),
            PathBuf::from("./run"),
            "a path is the child's to resolve"
        );
        let missing = resolve("no-such-program-here", Some(OsStr::new("/bin"))).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn the_plan_replaces_listen_variables_and_keeps_the_table_order() {
        let listener = bind_listener("127.0.0.1:0".parse().unwrap()).unwrap();
        let env = vec![
            ("A".to_string(), "1".to_string()),
            ("LISTEN_FDS".to_string(), "7".to_string()),
            ("A".to_string(), "2".to_string()),
        ];
        let plan =
            ExecPlan::new("sh", &["-c".into()], &env, &["NOTIFY_SOCKET"], &listener).unwrap();
        let entries: Vec<&[u8]> = plan._env.iter().map(|e| e.as_bytes()).collect();
        assert!(entries.contains(&&b"A=2"[..]));
        assert!(!entries.contains(&&b"A=1"[..]));
        assert_eq!(
            entries
                .iter()
                .filter(|e| e.starts_with(b"LISTEN_FDS="))
                .count(),
            1
        );
        assert!(entries.contains(&&b"LISTEN_FDS=1"[..]));
        assert!(entries.contains(&&b"LISTEN_FDNAMES=http"[..]));
        assert!(!entries.iter().any(|e| e.starts_with(b"NOTIFY_SOCKET=")));
        assert_eq!(plan.envp_ptrs.0.last(), Some(&std::ptr::null()));
        assert_eq!(plan.argv_ptrs.0.len(), 3);
    }
}
