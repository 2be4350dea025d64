//! Backends on unix-domain sockets, end to end through the real reactor and h2 worker, with a real
//! `spawngate-echo` listening on a socket file.
//!
//! The config cannot name a socket yet, so the test plays the supervisor: when the reactor (or the h2
//! worker) asks for a start, it reports the instance `Starting` then `Ready` at a unix address, exactly as
//! the supervisor reports every instance's address. Everything after that report is the proxy's own
//! path: connect, forward, pool, tunnel, hand-off to h2.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use spawngate::msg::{
    BackendEvent, Clock, Command as SupervisorCommand, Host, InstanceRef, LifecycleEvent, Mailbox,
    ReactorMsg,
};
use spawngate::reactor::{Bound, Wiring};
use spawngate::supervisor::SupervisorHandle;
use spawngate::systemd::Inherited;
use spawngate::upstream::{BackendId, Reconcile, UpstreamAddr};
use support::ws::{ws_close_cleanly, ws_connect, ws_echo};
use support::*;
use tungstenite::Message;

const HOST: &str = "unix.test";
/// How long any one wait of these tests may take before it fails instead of hanging.
const STEP: Duration = Duration::from_secs(10);

/// `spawngate-echo` serving on a unix socket, killed on drop. Its "listening" line on stderr is the
/// event the start waits for.
struct UnixEcho {
    child: Child,
}

impl UnixEcho {
    /// Started with `--socket path`.
    fn start(path: &Path) -> UnixEcho {
        let mut command = Command::new(echo_bin());
        command.arg("--socket").arg(path);
        Self::spawn(command, "listening on unix:")
    }

    /// Started the systemd way, on a unix listener bound here and inherited as descriptor 3.
    fn activated(listener: UnixListener) -> UnixEcho {
        let fd = listener.as_raw_fd();
        // `LISTEN_PID` must be the echo's own pid, known only in the child: `sh` sets it to its own
        // (`$$`) and `exec`s the echo, which keeps that pid.
        let mut command = Command::new("sh");
        command
            .args(["-c", "LISTEN_FDS=1 LISTEN_PID=$$ exec \"$0\""])
            .arg(echo_bin());
        // SAFETY: runs in the forked child before exec and calls only async-signal-safe functions
        // (`dup2`, `fcntl`) on descriptors the child inherited; it allocates nothing.
        unsafe {
            command.pre_exec(move || {
                if fd != 3 && nix::libc::dup2(fd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // dup2 clears close-on-exec on the copy; a listener that already was 3 still has it.
                if nix::libc::fcntl(3, nix::libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let echo = Self::spawn(command, "serving on its inherited listener");
        // The child has its own copy; the test's is closed so only the echo holds the socket.
        drop(listener);
        echo
    }

    fn spawn(mut command: Command, ready_line: &'static str) -> UnixEcho {
        command
            .env_remove("PORT")
            .env_remove("SPAWNGATE_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn spawngate-echo");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        // Reads the echo's log to its end (a full pipe would block the echo), passing each line on.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut said = Vec::new();
        loop {
            match rx.recv_timeout(STEP) {
                Ok(line) if line.contains(ready_line) => break,
                Ok(line) => said.push(line),
                Err(_) => panic!("spawngate-echo never said {ready_line:?}; it said {said:?}"),
            }
        }
        UnixEcho { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for UnixEcho {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real reactor and h2 worker, with the test as their supervisor: every backend "starts" at `addr`.
struct UnixProxy {
    addr: SocketAddr,
    /// Start commands the fake supervisor received, by backend.
    starts: mpsc::Receiver<BackendId>,
    /// The supervisor's own mailbox, to shut it (and so the reactor) down.
    supervisor: mpsc::Sender<SupervisorCommand>,
    reactor: Option<JoinHandle<std::io::Result<()>>>,
    _poll: mio::Poll,
}

impl UnixProxy {
    fn start(addr: UpstreamAddr) -> UnixProxy {
        let text = format!(
            "[server]\nport = 0\nadmin_port = 0\n\n{}",
            echo_backend(HOST, free_port(), "", &[])
        );
        let config = spawngate::config::parse(Path::new("unix-test.toml"), &text)
            .unwrap_or_else(|e| panic!("bad test config: {e:?}"));
        // The listeners are bound here and handed over as a service manager would, so the test knows the
        // proxy's address.
        let http = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy_addr = http.local_addr().unwrap();
        let inherited = Inherited {
            http: Some(http),
            admin: Some(TcpListener::bind("127.0.0.1:0").unwrap()),
        };
        let bound = Bound::bind(&config, inherited).unwrap();
        let clock = Clock::new();
        let backends = Reconcile::initial(&config.backends, &config.hosts);

        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let (commands_tx, commands) = mpsc::channel();
        let (starts_tx, starts) = mpsc::channel();
        let reactor_mailbox = bound.mailbox();
        let thread =
            std::thread::spawn(move || play_supervisor(commands, reactor_mailbox, addr, starts_tx));
        let supervisor = SupervisorHandle {
            mailbox: Mailbox::new(commands_tx.clone(), waker),
            thread,
        };
        let h2 = spawngate::h2::spawn(
            backends.clone(),
            supervisor.mailbox.clone(),
            clock,
            config.server.limits.clone(),
            spawngate::h2::PoolLimits::from(&config.server),
            spawngate::access_log::AccessLog::off(),
            Arc::default(),
        )
        .unwrap();
        let wiring = Wiring {
            clock,
            backends,
            supervisor,
            h2,
            notifier: None,
            access_log: spawngate::access_log::AccessLog::off(),
            metrics: Arc::default(),
        };
        let reactor = std::thread::spawn(move || bound.serve(config, wiring));
        UnixProxy {
            addr: proxy_addr,
            starts,
            supervisor: commands_tx,
            reactor: Some(reactor),
            _poll: poll,
        }
    }

    /// How many starts were asked for so far.
    fn start_count(&self) -> usize {
        self.starts.try_iter().count()
    }
}

impl Drop for UnixProxy {
    fn drop(&mut self) {
        // As the real supervisor does once every backend is stopped: the reactor then ends.
        let _ = self.supervisor.send(SupervisorCommand::Shutdown);
        if let Some(reactor) = self.reactor.take() {
            let ended = reactor.join();
            if !std::thread::panicking() {
                ended
                    .expect("the reactor panicked")
                    .expect("the reactor failed");
            }
        }
    }
}

/// The test's supervisor: answers every start with `Starting` then `Ready` at `addr`, and a shutdown
/// with `ShutdownComplete`.
fn play_supervisor(
    commands: mpsc::Receiver<SupervisorCommand>,
    reactor: Mailbox<ReactorMsg>,
    addr: UpstreamAddr,
    starts: mpsc::Sender<BackendId>,
) {
    let report = |backend, event| {
        reactor.send(ReactorMsg::Backend(BackendEvent {
            backend,
            host: Host::from(HOST),
            instance: InstanceRef {
                index: 0,
                addr: addr.clone(),
            },
            event,
        }))
    };
    while let Ok(command) = commands.recv() {
        match command {
            SupervisorCommand::Start(id) => {
                let _ = starts.send(id);
                report(id, LifecycleEvent::Starting);
                report(id, LifecycleEvent::Ready);
            }
            SupervisorCommand::Shutdown => {
                reactor.send(ReactorMsg::ShutdownComplete);
                return;
            }
            SupervisorCommand::ReadyCallback(..)
            | SupervisorCommand::Demand { .. }
            | SupervisorCommand::StartSlot { .. }
            | SupervisorCommand::Reload(_)
            | SupervisorCommand::End { .. }
            | SupervisorCommand::Sweep(_) => {}
        }
    }
}

/// A socket path in a directory of the test's own.
fn socket_in(dir: &TempDir) -> PathBuf {
    dir.file("echo.sock")
}

fn unix_addr(path: &Path) -> UpstreamAddr {
    UpstreamAddr::Unix(Arc::new(path.to_path_buf()))
}

#[test]
fn http1_requests_reach_a_unix_socket_backend() {
    let dir = TempDir::new("unix-http1");
    let path = socket_in(&dir);
    let echo = UnixEcho::start(&path);
    let proxy = UnixProxy::start(unix_addr(&path));

    let mut client = Client::connect(proxy.addr);
    let first = client.get(HOST, "/hello?x=1");
    assert_eq!(first.status, 200, "{}", first.text());
    let json = first.json();
    assert_eq!(json["path"], "/hello?x=1");
    assert_eq!(echo_pid(&first), echo.pid());
    assert_eq!(proxy.start_count(), 1, "one start for the cold backend");

    let body = b"sent over a unix socket";
    let echoed = client.request("POST", HOST, "/echo", &[], body);
    assert_eq!(echoed.status, 200);
    assert_eq!(echoed.body, body);

    // A body larger than every buffer on the way: backpressure over the unix socket.
    const LEN: usize = 3 * 1024 * 1024 + 17;
    let streamed = client.get(HOST, &format!("/stream?bytes={LEN}"));
    assert_eq!(streamed.status, 200);
    assert_eq!(streamed.body.len(), LEN);
    assert!(streamed
        .body
        .iter()
        .enumerate()
        .all(|(i, &b)| b == pattern_byte(i as u64)));

    // A second client finds the backend ready and reuses a pooled connection or opens one: either way
    // no new start.
    let other = get(proxy.addr, HOST, "/again");
    assert_eq!(other.status, 200);
    assert_eq!(echo_pid(&other), echo.pid());
    assert_eq!(proxy.start_count(), 0, "the backend stayed ready");
}

#[test]
fn a_websocket_is_tunnelled_to_a_unix_socket_backend() {
    let dir = TempDir::new("unix-ws");
    let path = socket_in(&dir);
    let _echo = UnixEcho::start(&path);
    let proxy = UnixProxy::start(unix_addr(&path));

    let (mut ws, response) = ws_connect(proxy.addr, HOST, "/ws");
    assert_eq!(response.status(), 101);
    let reply = ws_echo(&mut ws, Message::text("over the socket"));
    assert_eq!(reply, Message::text("over the socket"));
    let big = vec![7u8; 256 * 1024];
    let reply = ws_echo(&mut ws, Message::binary(big.clone()));
    assert_eq!(reply, Message::binary(big));
    ws_close_cleanly(ws);

    // A raw upgrade tunnel: bytes both ways, and the client's end of input reaches the backend.
    let mut client = Client::connect(proxy.addr);
    client.send(&build_request(
        "GET",
        HOST,
        "/upgrade",
        &["Connection: upgrade", "Upgrade: raw"],
        b"",
    ));
    let (status, _) = client.read_head();
    assert_eq!(status, 101);
    client.send(b"ping through the tunnel");
    let mut back = [0u8; 23];
    client.reader().read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ping through the tunnel");
    client.stream().shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    client.reader().read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "the tunnel ended with the client's input");
}

#[test]
fn h2_streams_are_forwarded_to_a_unix_socket_backend() {
    let dir = TempDir::new("unix-h2");
    let path = socket_in(&dir);
    let echo = UnixEcho::start(&path);
    let proxy = UnixProxy::start(unix_addr(&path));

    block_on(async {
        let (client, _conn) = h2_connect(proxy.addr).await;
        let response = h2_get(&client, HOST, "/over-h2").await;
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.json()["path"], "/over-h2");
        assert_eq!(
            response.header("x-echo-pid"),
            Some(echo.pid().to_string().as_str())
        );
        let body = Bytes::from(vec![b'u'; 200_000]);
        let echoed = h2_request(
            &client,
            Method::POST,
            HOST,
            "/echo",
            &[],
            Some(body.clone()),
        )
        .await
        .unwrap();
        assert_eq!(echoed.status, 200);
        assert_eq!(echoed.body, body);
        // Again, on the connection the first exchange left in the worker's pool.
        let again = h2_get(&client, HOST, "/pooled").await;
        assert_eq!(again.status, 200);
    });
}

#[test]
fn a_socket_that_is_not_there_is_a_connection_failure() {
    let dir = TempDir::new("unix-missing");
    let proxy = UnixProxy::start(unix_addr(&dir.file("nobody.sock")));
    let response = get(proxy.addr, HOST, "/");
    assert_proxy_error(&response, "CONNECTION_FAILED", 502);
    block_on(async {
        let (client, _conn) = h2_connect(proxy.addr).await;
        let response = h2_get(&client, HOST, "/").await;
        assert_h2_proxy_error(&response, "CONNECTION_FAILED", 502);
    });
}

#[test]
fn the_echo_serves_an_inherited_unix_listener_and_replaces_a_stale_socket() {
    let dir = TempDir::new("unix-echo");
    let path = socket_in(&dir);
    let listener = UnixListener::bind(&path).unwrap();
    let echo = UnixEcho::activated(listener);
    let health = raw_get(&path, "/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(raw_get(&path, "/x").contains(&format!("\"pid\":{}", echo.pid())));
    drop(echo);

    // The killed echo left its socket file; a new one started at the same path replaces it.
    assert!(path.exists());
    let echo = UnixEcho::start(&path);
    assert!(raw_get(&path, "/x").contains(&format!("\"pid\":{}", echo.pid())));
    // ...but a second one does not take the socket from a live server.
    let status = Command::new(echo_bin())
        .arg("--socket")
        .arg(&path)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(raw_get(&path, "/x").contains(&format!("\"pid\":{}", echo.pid())));
}

#[test]
fn both_request_paths_keep_their_unix_connections_pooled() {
    let dir = TempDir::new("unix-pool");
    let path = socket_in(&dir);
    let accepted = count_connections(UnixListener::bind(&path).unwrap());
    let proxy = UnixProxy::start(unix_addr(&path));
    for i in 0..3 {
        // A new client each time: only the proxy's pool can carry the backend connection over.
        let response = get(proxy.addr, HOST, &format!("/h1/{i}"));
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.body, b"ok");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "the reactor reused its connection"
    );
    block_on(async {
        for i in 0..3 {
            let (client, _conn) = h2_connect(proxy.addr).await;
            let response = h2_get(&client, HOST, &format!("/h2/{i}")).await;
            assert_eq!(response.status, 200, "{}", response.text());
        }
    });
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "the h2 worker opened one of its own and reused it"
    );
}

/// A keep-alive backend on `listener` that answers every request head with a 2-byte 200, counting the
/// connections it accepts.
fn count_connections(listener: UnixListener) -> Arc<AtomicUsize> {
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            count.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || answer_heads(conn));
        }
    });
    accepted
}

fn answer_heads(conn: UnixStream) {
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            // The blank line ends a head (the requests have no body).
            Ok(_) if line == "\r\n" => {
                let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                if writer.write_all(answer).is_err() {
                    return;
                }
            }
            Ok(_) => {}
        }
    }
}

/// One `Connection: close` GET straight to the unix socket; the whole response as text.
fn raw_get(path: &Path, target: &str) -> String {
    let mut stream = UnixStream::connect(path).unwrap();
    stream.set_read_timeout(Some(STEP)).unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}
