//! HTTPS test helpers (feature `tls`): a CA made at test time with its PEM on disk for curl, certificates
//! it issues, the proxy config around them, curl and a rustls client.

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::{Proxy, TempDir};

pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A CA made for the test, its PEM on disk for curl.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    pub dir: TempDir,
}

impl Ca {
    pub fn new() -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "spawngate https test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        let dir = TempDir::new("https-pki");
        std::fs::write(dir.file("ca.pem"), cert.pem()).unwrap();
        Ca { cert, key, dir }
    }

    pub fn pem_path(&self) -> String {
        self.dir.file("ca.pem").display().to_string()
    }

    /// Issues a certificate for `names` with `cn` as its subject, written as `{file}.pem`/`{file}.key`;
    /// returns its DER.
    pub fn issue(&self, file: &str, cn: &str, names: &[&str]) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        std::fs::write(self.dir.file(&format!("{file}.pem")), cert.pem()).unwrap();
        std::fs::write(self.dir.file(&format!("{file}.key")), key.serialize_pem()).unwrap();
        cert.der().clone()
    }

    /// A `[[tls.certificates]]` entry for a file written by `issue`.
    pub fn entry(&self, file: &str, default: bool) -> String {
        let path = |ext: &str| {
            self.dir
                .file(&format!("{file}.{ext}"))
                .display()
                .to_string()
        };
        format!(
            "[[tls.certificates]]\ncert = \"{}\"\nkey = \"{}\"\ndefault = {default}\n",
            path("pem"),
            path("key")
        )
    }

    /// A rustls client trusting this CA, offering `http/1.1`.
    pub fn client(&self) -> Arc<ClientConfig> {
        self.client_offering(&[b"http/1.1"])
    }

    /// A rustls client trusting this CA, offering `alpn`.
    pub fn client_offering(&self, alpn: &[&[u8]]) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

/// `[server]` with an HTTPS listener on a port of the OS's choosing, then `[tls]` with `tls_keys`.
pub fn config(tls_keys: &str, rest: &str) -> String {
    format!(
        "[server]\nport = 0\nadmin_port = 0\nbind = \"127.0.0.1\"\nhttps_port = 0\n\n\
         [tls]\n{tls_keys}\n{rest}"
    )
}

/// `curl -sS -v` with `args`; returns (exit success, stdout, stderr).
pub fn curl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "-v", "--max-time", "20"])
        .args(args)
        .output()
        .expect("run curl (installed by .ci/run)");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// curl over HTTP/1.1 to `https://{name}:{port}{path}` resolved to the proxy, trusting `ca`.
pub fn curl_https(ca: &Ca, proxy: &Proxy, name: &str, path: &str) -> (bool, String, String) {
    curl_https_as("--http1.1", ca, proxy, name, path)
}

/// The same with curl's `version` flag (`--http2`: ALPN offers `h2` then `http/1.1`).
pub fn curl_https_as(
    version: &str,
    ca: &Ca,
    proxy: &Proxy,
    name: &str,
    path: &str,
) -> (bool, String, String) {
    let port = proxy.https_addr().port();
    let resolve = format!("{name}:{port}:127.0.0.1");
    let url = format!("https://{name}:{port}{path}");
    curl(&[
        version,
        "--cacert",
        &ca.pem_path(),
        "--resolve",
        &resolve,
        &url,
    ])
}

/// The served certificate's subject as curl -v shows it ("CN=a.test").
pub fn subject(stderr: &str) -> String {
    let line = (stderr.lines())
        .find_map(|l| l.trim_start_matches(['*', ' ']).strip_prefix("subject: "))
        .unwrap_or_else(|| panic!("no subject in curl's output:\n{stderr}"));
    line.trim().to_string()
}

/// A TLS connection to the proxy's HTTPS listener through rustls, for what curl cannot pace.
pub fn tls_connect(
    ca: &Ca,
    addr: SocketAddr,
    name: &str,
) -> StreamOwned<ClientConnection, TcpStream> {
    let socket = TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap();
    socket.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let name = ServerName::try_from(name.to_string()).unwrap();
    let conn = ClientConnection::new(ca.client(), name).unwrap();
    StreamOwned::new(conn, socket)
}
