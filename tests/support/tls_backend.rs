//! Backends over TLS as the tests drive them (feature `tls`): the real `nginx` terminating TLS with
//! certificates a test CA issued, in front of the echo backend (so WebSocket works too), each request's
//! nginx connection serial echoed in `X-Backend-Connection`; curl through the proxy; a pool at an
//! `https://` address.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::https::Ca;
use super::pools::route_to;
use super::{debian_tool, wait_until, EchoServer, Proxy, TempDir};

const WAIT: Duration = Duration::from_secs(20);

/// nginx terminating TLS on its own port per `server` entry, proxying to an echo backend.
pub struct Nginx {
    child: Child,
    dir: TempDir,
}

/// One TLS listener of the test nginx: its port and the certificate it serves (files written by
/// `Ca::issue` in `ca`'s directory).
pub struct Listener<'a> {
    pub port: u16,
    pub ca: &'a Ca,
    pub cert: &'a str,
}

impl Nginx {
    /// `None` when nginx is not installed (and `CI` is not set).
    pub fn start(listeners: &[Listener<'_>], echo: &EchoServer) -> Option<Nginx> {
        let binary = debian_tool("/usr/sbin/nginx", "nginx")?;
        let dir = TempDir::new("backend-tls-nginx");
        let servers: String = listeners
            .iter()
            .map(|l| {
                let file = |ext: &str| l.ca.dir.file(&format!("{}.{ext}", l.cert));
                format!(
                    "server {{\n listen 127.0.0.1:{port} ssl;\n \
                     ssl_certificate {cert};\n ssl_certificate_key {key};\n \
                     add_header X-Backend-Connection $connection always;\n \
                     location = /health {{ return 200 \"ok\\n\"; }}\n \
                     location / {{\n  proxy_pass http://{echo};\n  proxy_http_version 1.1;\n  \
                     proxy_set_header Host $host;\n  proxy_set_header Upgrade $http_upgrade;\n  \
                     proxy_set_header Connection $connection_upgrade;\n }}\n}}\n",
                    port = l.port,
                    cert = file("pem").display(),
                    key = file("key").display(),
                    echo = echo.addr(),
                )
            })
            .collect();
        let d = dir.path().display();
        let config = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log info;\nevents {{ worker_connections 256; }}\n\
             http {{\n log_format conn '$connection $connection_requests \"$http_user_agent\" $request';\n\
             access_log {d}/access.log conn;\n\
             client_body_temp_path {d}/body;\nproxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\nuwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n\
             keepalive_timeout 300s;\nkeepalive_requests 100000;\nclient_max_body_size 0;\n\
             map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}\n{servers}}}\n"
        );
        std::fs::write(dir.file("nginx.conf"), config).unwrap();
        let child = Command::new(binary)
            .args(["-p", &d.to_string(), "-e"])
            .arg(dir.file("error.log"))
            .arg("-c")
            .arg(dir.file("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx");
        let nginx = Nginx { child, dir };
        for l in listeners {
            let up = wait_until(WAIT, || TcpStream::connect(("127.0.0.1", l.port)).is_ok());
            assert!(up, "nginx did not listen on {}: {}", l.port, nginx.errors());
        }
        Some(nginx)
    }

    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.file("access.log")).unwrap_or_default()
    }

    pub fn errors(&self) -> String {
        std::fs::read_to_string(self.dir.file("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What curl got: status, lower-case header names, body.
pub struct Got {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Got {
    pub fn header(&self, name: &str) -> Option<&str> {
        (self.headers.iter())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn assert_error(&self, code: &str) {
        assert_eq!(self.status, 502, "{}", self.body);
        assert_eq!(self.header("x-proxy-error"), Some(code), "{}", self.body);
        assert!(self.body.contains(code), "{}", self.body);
    }
}

/// `curl -i` to the proxy's cleartext port with `Host: host` (`h2`: h2c with prior knowledge).
pub fn curl(proxy: &Proxy, h2: bool, host: &str, path: &str) -> Got {
    let url = format!("http://{}{path}", proxy.addr());
    let version = if h2 {
        "--http2-prior-knowledge"
    } else {
        "--http1.1"
    };
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "20", version, "-H"])
        .arg(format!("Host: {host}"))
        .arg(&url)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = (lines.next())
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Got {
        status,
        headers,
        body: body.to_string(),
    }
}

/// A pool `name` at `https://127.0.0.1:port`, verified as `server_name` against `ca_file`, routed
/// from `name.test`; `keys` adds to it.
pub fn tls_pool(name: &str, port: u16, server_name: &str, ca_file: &str, keys: &str) -> String {
    format!(
        "[pools.{name}]\naddress = \"https://127.0.0.1:{port}\"\ntls_server_name = \"{server_name}\"\n\
         ca_file = \"{ca_file}\"\n{keys}\n\n{}",
        route_to(name)
    )
}

/// curl through the proxy with the response body to a file: (status, body). `upload`: a file POSTed.
pub fn curl_to_file(
    proxy: &Proxy,
    h2: bool,
    host: &str,
    path: &str,
    upload: Option<&std::path::Path>,
    dir: &TempDir,
) -> (u16, Vec<u8>) {
    let out_file = dir.file(&format!("out-{h2}"));
    let mut command = Command::new("curl");
    command
        .args(["-sS", "--max-time", "60", "-o"])
        .arg(&out_file)
        .args(["-w", "%{http_code}", "-H"])
        .arg(format!("Host: {host}"))
        .arg(if h2 {
            "--http2-prior-knowledge"
        } else {
            "--http1.1"
        });
    if let Some(file) = upload {
        command
            .arg("--data-binary")
            .arg(format!("@{}", file.display()));
    }
    let out = command
        .arg(format!("http://{}{path}", proxy.addr()))
        .output()
        .expect("run curl");
    let status = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    (status, std::fs::read(&out_file).unwrap_or_default())
}
