//! The `spawngate-echo` backend: config snippets that run it behind the proxy, and a directly started
//! instance for testing the backend on its own.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{echo_bin, free_port, wait_until};

/// How long a directly started echo server may take to accept connections.
const ECHO_START_DEADLINE: Duration = Duration::from_secs(10);

/// A TOML basic string holding `s`.
pub fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn env_table(host: &str, env: &[(&str, &str)]) -> String {
    if env.is_empty() {
        return String::new();
    }
    let mut out = format!("[backends.\"{host}\".env]\n");
    for (key, value) in env {
        out.push_str(&format!("{key} = {}\n", toml_str(value)));
    }
    out
}

/// A `[backends."host"]` table that runs `spawngate-echo` on `port`. `keys` is extra TOML lines for the
/// table (e.g. "idle_timeout_secs = 1"); `env` becomes its env table (the echo knobs).
pub fn echo_backend(host: &str, port: u16, keys: &str, env: &[(&str, &str)]) -> String {
    format!(
        "[backends.\"{host}\"]\ncommand = {}\nport = {port}\n{keys}\n{}\n",
        toml_str(echo_bin()),
        env_table(host, env)
    )
}

/// A backend run as `sh -c script`; the script finds the echo binary in `$ECHO_BIN`.
pub fn shell_backend(
    host: &str,
    port: u16,
    script: &str,
    keys: &str,
    env: &[(&str, &str)],
) -> String {
    let mut all_env = vec![("ECHO_BIN", echo_bin())];
    all_env.extend_from_slice(env);
    format!(
        "[backends.\"{host}\"]\ncommand = \"sh\"\nargs = [\"-c\", {}]\nport = {port}\n{keys}\n{}\n",
        toml_str(script),
        env_table(host, &all_env)
    )
}

/// `spawngate-echo` started directly (no proxy), killed on drop.
pub struct EchoServer {
    child: Child,
    pub port: u16,
}

impl EchoServer {
    pub fn start(env: &[(&str, &str)]) -> EchoServer {
        let port = free_port();
        let mut command = Command::new(echo_bin());
        command
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("spawn spawngate-echo");
        let server = EchoServer { child, port };
        let listening = wait_until(ECHO_START_DEADLINE, || {
            TcpStream::connect(server.addr()).is_ok()
        });
        assert!(
            listening,
            "spawngate-echo did not listen on {}",
            server.addr()
        );
        server
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
