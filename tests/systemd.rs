//! The proxy under a service manager, with stand-ins for systemd's side: a `Type=notify` unit's
//! notification socket, and listeners passed as `LISTEN_FDS`, as a socket unit does.

mod support;

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;
use support::*;

/// The next notification the proxy sends, as text.
fn next_notification(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = socket
        .recv(&mut buf)
        .expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn a_notify_unit_hears_ready_reloading_and_stopping_and_backends_do_not_inherit_its_socket() {
    let dir = TempDir::new("notify");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the stand-in notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let env_dump = dir.path().join("backend.env");
    let backend = shell_backend(
        "env.test",
        free_port(),
        "env > \"$ENV_DUMP\"; exec \"$ECHO_BIN\"",
        "",
        &[("ENV_DUMP", env_dump.to_str().unwrap())],
    );
    let mut proxy = Proxy::start_with(&backend, |binary, config| {
        let mut command = Command::new(binary);
        command.arg(config).env("NOTIFY_SOCKET", &socket_path);
        command
    });
    let ready = next_notification(&socket);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert!(ready.contains("STATUS=1 backends configured"), "{ready:?}");

    assert_eq!(get(proxy.addr(), "env.test", "/").status, 200);
    let env = std::fs::read_to_string(&env_dump).expect("the backend wrote its environment");
    // It has one, but the supervisor's own: the proxy's service manager hears from the proxy alone.
    let theirs: Vec<&str> = env
        .lines()
        .filter(|l| l.starts_with("NOTIFY_SOCKET="))
        .collect();
    assert_eq!(theirs.len(), 1, "{env}");
    assert!(
        !theirs[0].contains(socket_path.to_str().unwrap()),
        "a backend inherited the proxy's NOTIFY_SOCKET:\n{env}"
    );

    assert_eq!(proxy.post_reload().status, 200);
    let reloading = next_notification(&socket);
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading:?}"
    );
    let ready = next_notification(&socket);
    assert!(ready.starts_with("READY=1"), "{ready:?}");

    proxy.signal(Signal::SIGTERM);
    let stopping = next_notification(&socket);
    assert!(stopping.starts_with("STOPPING=1"), "{stopping:?}");
    assert!(proxy.wait_exit(Duration::from_secs(20)).success());
}

#[test]
fn a_socket_unit_s_listener_is_served_and_not_inherited_by_backends() {
    // Bound here, as the service manager would, before the proxy exists.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fd = listener.as_raw_fd();
    let dir = TempDir::new("listen-fds");
    let env_dump = dir.path().join("backend.env");
    let backend = shell_backend(
        "fds.test",
        free_port(),
        "env > \"$ENV_DUMP\"; readlink /proc/$$/fd/3 > \"$ENV_DUMP.fd3\"; exec \"$ECHO_BIN\"",
        "",
        &[("ENV_DUMP", env_dump.to_str().unwrap())],
    );
    let proxy = Proxy::start_with(&backend, |binary, config| {
        // `sh` puts its own pid in LISTEN_PID and then becomes the proxy, as systemd sets it for the
        // process it starts.
        let mut command = Command::new("sh");
        command
            .args(["-c", "LISTEN_PID=$$ exec \"$0\" \"$@\""])
            .arg(binary)
            .arg(config)
            .env("LISTEN_FDS", "1")
            .env("LISTEN_FDNAMES", "http");
        // SAFETY: runs in the forked child before exec, where dup2 and fcntl (both async-signal-safe)
        // put the listener at descriptor 3 without close-on-exec, so it reaches the proxy like a
        // passed socket (fcntl also covers the case where it was descriptor 3 already).
        unsafe {
            command.pre_exec(move || {
                if nix::libc::dup2(fd, 3) < 0 || nix::libc::fcntl(3, nix::libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command
    });
    assert_eq!(
        proxy.addr(),
        addr,
        "the proxy serves on the listener it was given"
    );
    let response = get(addr, "fds.test", "/");
    assert_eq!(response.status, 200, "{}", response.text());
    let env = std::fs::read_to_string(&env_dump).expect("the backend wrote its environment");
    assert!(
        !env.contains("LISTEN_"),
        "a backend inherited the proxy's LISTEN_ variables:\n{env}"
    );
    let fd3 = std::fs::read_to_string(format!("{}.fd3", env_dump.display())).unwrap();
    assert!(
        fd3.trim().is_empty(),
        "a backend inherited the passed listener as fd 3: {fd3}"
    );
    drop(listener);
}
