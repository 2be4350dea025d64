//! A real browser for pages the proxy serves: headless Chromium (Debian's `chromium`), driven over the
//! DevTools protocol, so a test can wait until the page's script has drawn what it should, however long
//! its stream takes, instead of dumping the DOM at a guessed moment.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tungstenite::{Message, WebSocket};

use super::{debian_tool, get, wait_until, TempDir};

pub struct Browser {
    child: Child,
    socket: WebSocket<TcpStream>,
    next_id: u64,
    _profile: TempDir,
}

impl Browser {
    /// Opens `url` in a fresh headless Chromium; `None` (the test skips) when Chromium is not installed
    /// outside CI.
    pub fn open(url: &str) -> Option<Browser> {
        let chromium = debian_tool("/usr/bin/chromium", "chromium")?;
        let profile = TempDir::new("chromium");
        let child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts");
        // Chromium writes the port it took into the profile once DevTools listens.
        let port_file: PathBuf = profile.path().join("DevToolsActivePort");
        let mut port = None;
        wait_until(Duration::from_secs(30), || {
            port = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|text| text.lines().next()?.trim().parse::<u16>().ok());
            port.is_some()
        });
        let devtools = SocketAddr::from(([127, 0, 0, 1], port.expect("DevTools listens")));
        let mut page = None;
        wait_until(Duration::from_secs(30), || {
            let targets: serde_json::Value =
                serde_json::from_str(&get(devtools, "127.0.0.1", "/json/list").text())
                    .unwrap_or_default();
            page = targets.as_array().and_then(|all| {
                all.iter()
                    .find(|t| t["type"] == "page")
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(str::to_owned))
            });
            page.is_some()
        });
        let page = page.expect("a page target");
        let stream = TcpStream::connect(devtools).expect("DevTools accepts");
        let (socket, _) = tungstenite::client(page.as_str(), stream).expect("DevTools handshake");
        Some(Browser {
            child,
            socket,
            next_id: 1,
            _profile: profile,
        })
    }

    /// The value of `expression` in the page (`null` when it throws).
    pub fn eval(&mut self, expression: &str) -> serde_json::Value {
        let id = self.next_id;
        self.next_id += 1;
        let call = serde_json::json!({
            "id": id,
            "method": "Runtime.evaluate",
            "params": { "expression": expression, "returnByValue": true },
        });
        self.socket
            .send(Message::text(call.to_string()))
            .expect("DevTools takes the call");
        loop {
            let message = self.socket.read().expect("DevTools answers");
            let Message::Text(text) = message else {
                continue;
            };
            let reply: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            if reply["id"] == id {
                return reply["result"]["result"]["value"].clone();
            }
        }
    }

    /// Evaluates `expression` until `done` accepts its value, at most `limit`; returns the last value.
    pub fn wait_for(
        &mut self,
        expression: &str,
        limit: Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.eval(expression);
            if done(&value) || Instant::now() >= deadline {
                return value;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
