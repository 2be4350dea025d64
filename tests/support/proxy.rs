//! The proxy under test: the real `spawngate` binary on port 0 with a config written by the test.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::client::{get, Client};
use super::procs::{descendants_of, pid_alive};
use super::{wait_until, TempDir};

/// How long the proxy may take to log that it listens.
const STARTUP_DEADLINE: Duration = Duration::from_secs(10);
/// How long a dropped proxy gets to exit on SIGTERM before it is killed.
const DROP_GRACE: Duration = Duration::from_secs(10);

pub struct Proxy {
    child: Child,
    exit: Option<ExitStatus>,
    addr: SocketAddr,
    admin_addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    dir: TempDir,
    config_path: PathBuf,
}

/// The `[server]` table the harness adds when the test does not bring its own.
fn server_table() -> &'static str {
    "[server]\nport = 0\nadmin_port = 0\nbind = \"127.0.0.1\"\n\n"
}

fn full_config(body: &str) -> String {
    if body.lines().any(|l| l.trim() == "[server]") {
        body.to_string()
    } else {
        format!("{}{}", server_table(), body)
    }
}

/// The binary under test: `SPAWNGATE_BIN` runs the suite against another build of the same source (the
/// static release build in CI), otherwise the one Cargo built for this test run.
fn proxy_binary() -> PathBuf {
    std::env::var_os("SPAWNGATE_BIN")
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_spawngate")))
}

/// Keeps every line a stream produces and mirrors it to the test's stderr with a prefix.
fn collect_lines(stream: impl Read + Send + 'static, tag: String, log: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line).trim_end().to_string();
                    eprintln!("[{tag}] {text}");
                    log.lock().unwrap().push(text);
                }
            }
        }
    });
}

/// The address logged after `marker`, e.g. "proxy listening on 127.0.0.1:4321".
fn address_after(lines: &[String], marker: &str) -> Option<SocketAddr> {
    lines.iter().find_map(|line| {
        let rest = &line[line.find(marker)? + marker.len()..];
        rest.split(|c: char| c.is_whitespace() || c == ',' || c == ')')
            .next()?
            .parse()
            .ok()
    })
}

impl Proxy {
    /// Starts the proxy with `[server]` (ports 0, bind 127.0.0.1) followed by `config_body`, and waits
    /// until both listeners are up.
    pub fn start(config_body: &str) -> Proxy {
        Proxy::start_with(config_body, |binary, config| {
            let mut command = Command::new(binary);
            command.arg(config);
            command
        })
    }

    /// [`Proxy::start`], with the command made by `command` from the binary and the config file (to
    /// add variables, descriptors or a wrapper).
    pub fn start_with(config_body: &str, command: impl FnOnce(&Path, &Path) -> Command) -> Proxy {
        let dir = TempDir::new("proxy");
        let config_path = dir.path().join("spawngate.toml");
        std::fs::write(&config_path, full_config(config_body)).unwrap();
        let mut child = command(&proxy_binary(), &config_path)
            .env("RUST_LOG", "spawngate=debug,info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn spawngate");
        let log = Arc::new(Mutex::new(Vec::new()));
        let tag = format!("spawngate {}", child.id());
        collect_lines(child.stderr.take().unwrap(), tag.clone(), log.clone());
        collect_lines(child.stdout.take().unwrap(), tag, log.clone());
        let deadline = Instant::now() + STARTUP_DEADLINE;
        loop {
            let (addr, admin_addr) = {
                let lines = log.lock().unwrap();
                (
                    address_after(&lines, "proxy listening on "),
                    address_after(&lines, "admin listening on "),
                )
            };
            if let (Some(addr), Some(admin_addr)) = (addr, admin_addr) {
                return Proxy {
                    child,
                    exit: None,
                    addr,
                    admin_addr,
                    log,
                    dir,
                    config_path,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100)); // let the reader threads drain the pipes
                panic!(
                    "spawngate exited during startup with {status}; log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "spawngate did not report both listeners within {STARTUP_DEADLINE:?}; log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The HTTPS listener (a `tls` build with `https_port`), logged before the admin listener.
    pub fn https_addr(&self) -> SocketAddr {
        let lines = self.log.lock().unwrap();
        address_after(&lines, "https listening on ").expect("the proxy logged no HTTPS listener")
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A scratch directory that lives as long as the proxy.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Replaces the config file (with the same `[server]` prefix rule as `start`); send SIGHUP to apply.
    pub fn rewrite_config(&self, config_body: &str) {
        std::fs::write(&self.config_path, full_config(config_body)).unwrap();
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn log_contains(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.log_contains(needle))
    }

    /// Whether the proxy logs `needle` within 10 s. Its stderr is read by another thread, so a line
    /// the proxy wrote before answering may still be on its way when the answer arrives: a positive
    /// check waits for it rather than racing that thread.
    pub fn logs(&self, needle: &str) -> bool {
        self.wait_for_log(needle, Duration::from_secs(10))
    }

    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    pub fn admin_get(&self, path: &str) -> super::Response {
        get(self.admin_addr, "localhost", path)
    }

    /// `GET /backends` on the admin port.
    pub fn backends(&self) -> serde_json::Value {
        let response = self.admin_get("/backends");
        assert_eq!(response.status, 200, "GET /backends: {}", response.text());
        response.json()
    }

    /// The `/backends` entry for one hostname.
    pub fn backend(&self, host: &str) -> serde_json::Value {
        let all = self.backends();
        all["backends"]
            .as_array()
            .and_then(|list| list.iter().find(|b| b["hostname"] == host).cloned())
            .unwrap_or_else(|| panic!("no backend {host} in {all}"))
    }

    pub fn state_of(&self, host: &str) -> String {
        self.backend(host)["state"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Waits until `/backends` reports `state` for `host`; panics with the last answer otherwise.
    pub fn wait_for_state(&self, host: &str, state: &str, timeout: Duration) {
        if !wait_until(timeout, || self.state_of(host) == state) {
            panic!(
                "{host} did not reach state {state} within {timeout:?}: {}",
                self.backend(host)
            );
        }
    }

    /// `POST /reload` on the admin port: the reload's outcome (200 with the counts, or 400).
    pub fn post_reload(&self) -> super::Response {
        let mut admin = Client::connect(self.admin_addr);
        admin.request("POST", "localhost", "/reload", &["Connection: close"], b"")
    }

    /// How many log lines received so far satisfy `matches`.
    pub fn count_log(&self, matches: impl Fn(&str) -> bool) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| matches(l))
            .count()
    }

    /// Makes sure every line the proxy logged before this call has been collected: sends a request for a
    /// host of its own that the proxy logs (at debug) while refusing it, and waits for that line. Stderr
    /// keeps the order of writes, so every line written before arrives before it.
    pub fn log_barrier(&self) {
        static BARRIERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = BARRIERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let host = format!("log-barrier-{n}.invalid");
        let response = get(self.addr, &host, "/");
        assert_eq!(response.status, 404, "{}", response.text());
        assert!(
            self.wait_for_log(&host, Duration::from_secs(10)),
            "the proxy never logged the refusal of {host}"
        );
    }

    /// Whether `/backends` lists `host`.
    pub fn has_backend(&self, host: &str) -> bool {
        self.backends()["backends"]
            .as_array()
            .is_some_and(|list| list.iter().any(|b| b["hostname"] == host))
    }

    /// Sends SIGTERM, waits for a clean exit, and checks that no process the proxy started (backends,
    /// their children, the orphan guard) is left: the harness's own clean-up on drop does not count.
    pub fn shut_down_leaving_nothing(mut self, timeout: Duration) {
        let started = descendants_of(self.pid());
        self.signal(Signal::SIGTERM);
        let status = self.wait_exit(timeout);
        assert!(
            status.success(),
            "spawngate exited with {status} on SIGTERM"
        );
        let left: Vec<u32> = started.into_iter().filter(|&pid| pid_alive(pid)).collect();
        assert!(
            wait_until(Duration::from_secs(5), || left
                .iter()
                .all(|&pid| !pid_alive(pid))),
            "processes left behind by the proxy: {:?}",
            left.iter()
                .filter(|&&pid| pid_alive(pid))
                .collect::<Vec<_>>()
        );
    }

    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid() as i32), signal).expect("signal the proxy");
    }

    /// Waits for the proxy to exit; panics if it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(status) = self.exit {
            return status;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exit = Some(status);
                return status;
            }
            if Instant::now() > deadline {
                panic!("spawngate still running {timeout:?} after being asked to stop");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Remember the backends first: if the proxy fails to clean up, the test must not leak them.
        let descendants = descendants_of(self.pid());
        if self.exit.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            let _ = kill(Pid::from_raw(self.pid() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + DROP_GRACE;
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(self.child.try_wait(), Ok(None)) {
                eprintln!(
                    "[harness] spawngate {} ignored SIGTERM; killing it",
                    self.pid()
                );
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        for pid in descendants {
            if pid_alive(pid) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
    }
}
