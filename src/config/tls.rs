//! HTTPS settings: `https_port` and `https_bind` in `[server]` (beside `port` and `admin_port`), and the
//! `[tls]` table with its `[[tls.certificates]]` and `[tls.acme]`.
//!
//! The shape is read in every build, so a build without the `tls` feature can say exactly which line
//! asks for what it lacks ("build with --features tls") instead of calling the keys unknown. Only
//! loading the certificates needs rustls: in a `tls` build each PEM pair is read and checked here, so a
//! missing file or a key of another certificate is a config error with its file, line and key, and a
//! reload with a bad pair keeps the running config.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::reader::{Ctx, Item, Section};
use super::{server, ServerConfig};

/// The HTTPS listener and how it serves.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// `https_bind`; defaults to `bind`.
    pub https_bind: IpAddr,
    /// `https_port`; 0 asks the OS for a free port.
    pub https_port: u16,
    /// `redirect_http`: the cleartext listener answers 308 to the same URL on HTTPS (except ACME
    /// HTTP-01 challenges).
    pub redirect_http: bool,
    /// `hsts_max_age_secs`: `Strict-Transport-Security: max-age=N` on HTTPS responses; `None` (absent
    /// or 0) sends no header.
    pub hsts_max_age: Option<Duration>,
    /// `handshake_timeout_ms`: time a client has from connecting to a finished handshake.
    pub handshake_timeout: Duration,
    /// `[[tls.certificates]]` in file order.
    pub certificates: Vec<CertificateFile>,
    /// `[tls.acme]`: certificates by ACME for the hosts no file serves (feature `acme`). Read at start;
    /// a reload that changes it is applied at the next restart.
    pub acme: Option<AcmeConfig>,
}

/// One `[[tls.certificates]]` entry. Paths are relative to the working directory, like every other
/// path in the config (`pid_file`, `admin_token_file`, `access_log`).
#[derive(Debug, Clone)]
pub struct CertificateFile {
    /// PEM: the certificate, then its chain.
    pub cert: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// `default = true`: served to clients whose SNI matches no certificate (or who send none).
    /// Without one, the first certificate is the default.
    pub default: bool,
    /// The pair, read and checked when the config was loaded.
    #[cfg(feature = "tls")]
    pub loaded: crate::tls::certs::Certificate,
}

/// `[tls.acme]` (feature `acme`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeConfig {
    /// Contact address given to the CA.
    pub email: Option<String>,
    /// The CA's directory URL (`https://`).
    pub directory: String,
    /// A CA certificate to trust for the directory's own HTTPS (a private or test CA).
    pub ca_file: Option<PathBuf>,
    pub challenge: AcmeChallenge,
    /// Where the account key and the certificates are kept across restarts.
    pub storage: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcmeChallenge {
    /// `http-01`: answered on the cleartext listener.
    Http01,
    /// `tls-alpn-01`: answered on the HTTPS listener.
    TlsAlpn01,
}

/// `handshake_timeout_ms`: built-in 10 s; at least 100 ms, at most 5 minutes (a handshake is a few
/// round trips; longer only holds a connection slot for a client that is not coming).
const HANDSHAKE_TIMEOUT_MS: (u64, u64, u64) = (100, 10_000, 300_000);
/// `hsts_max_age_secs`: up to 10 years (two years is the common preload value).
const HSTS_MAX_AGE_SECS: (u64, u64) = (0, 315_360_000);

/// `https_port` and `https_bind`, taken out of `[server]` before it is read, so `server.rs` does not
/// need to know about TLS.
#[derive(Default)]
pub(super) struct Listener<'t, 'i> {
    port: Option<Item<'t, 'i>>,
    bind: Option<Item<'t, 'i>>,
}

pub(super) fn take_listener<'t, 'i>(server: &mut Section<'t, 'i>) -> Listener<'t, 'i> {
    Listener {
        port: server.take("https_port"),
        bind: server.take("https_bind"),
    }
}

/// Reads the HTTPS settings; `None` when the file has none.
pub(super) fn read(
    listener: Listener<'_, '_>,
    tls: Option<Item<'_, '_>>,
    server: &ServerConfig,
    ctx: &mut Ctx,
) -> Option<TlsConfig> {
    let first = (listener.port.as_ref())
        .or(listener.bind.as_ref())
        .or(tls.as_ref())?;
    let (first_span, first_path) = (first.key_span.clone(), first.path.clone());
    if cfg!(not(feature = "tls")) {
        let message = "TLS is not in this build of spawngate (build with --features tls)";
        ctx.report(&first_span, &first_path, message);
    }
    let mut out = TlsConfig {
        https_bind: server.bind,
        https_port: 0,
        redirect_http: false,
        hsts_max_age: None,
        handshake_timeout: Duration::from_millis(HANDSHAKE_TIMEOUT_MS.1),
        certificates: Vec::new(),
        acme: None,
    };
    if let Some(ip) = listener
        .bind
        .as_ref()
        .and_then(|item| server::ip_addr(item, ctx))
    {
        out.https_bind = ip;
    }
    match &listener.port {
        Some(item) => {
            if let Some(port) = item.uint_in(ctx, 0, 65_535) {
                out.https_port = port as u16;
                check_port_free(item, &out, server, ctx);
            }
        }
        None => {
            let message = "the HTTPS listener needs `https_port` in [server]";
            ctx.report(&first_span, "server.https_port", message);
        }
    }
    // Sources written, valid or not: one that is wrong has its own error already.
    let mut sources = 0;
    if let Some(mut section) = tls.and_then(|item| item.section(ctx)) {
        sources = read_table(&mut section, &mut out, ctx);
        section.finish(ctx);
    }
    if let (Some(port), 0) = (&listener.port, sources) {
        let message = "HTTPS needs a certificate: add [[tls.certificates]] (or [tls.acme])";
        port.invalid(ctx, message);
    }
    Some(out)
}

fn check_port_free(item: &Item<'_, '_>, tls: &TlsConfig, server: &ServerConfig, ctx: &mut Ctx) {
    let taken = [
        (server.port, server.bind, "the proxy"),
        (server.admin_port, server.admin_bind, "the admin API"),
    ];
    for (port, bind, what) in taken {
        if tls.https_port != 0
            && tls.https_port == port
            && server::binds_overlap(tls.https_bind, bind)
        {
            item.invalid(ctx, format!("{what} already listens on port {port}"));
        }
    }
}

/// Reads `[tls]` into `out`; returns how many certificate sources it names (`[[tls.certificates]]`
/// entries and `[tls.acme]`), valid or not.
fn read_table(section: &mut Section<'_, '_>, out: &mut TlsConfig, ctx: &mut Ctx) -> usize {
    if let Some(flag) = section.take("redirect_http").and_then(|i| i.as_bool(ctx)) {
        out.redirect_http = flag;
    }
    let (min, max) = HSTS_MAX_AGE_SECS;
    if let Some(secs) = section
        .take("hsts_max_age_secs")
        .and_then(|i| i.uint_in(ctx, min, max))
    {
        out.hsts_max_age = (secs > 0).then(|| Duration::from_secs(secs));
    }
    let (min, _, max) = HANDSHAKE_TIMEOUT_MS;
    if let Some(ms) = section
        .take("handshake_timeout_ms")
        .and_then(|i| i.uint_in(ctx, min, max))
    {
        out.handshake_timeout = Duration::from_millis(ms);
    }
    let mut entries = 0;
    if let Some(tables) = section.take("certificates").and_then(|i| i.tables(ctx)) {
        entries = tables.len();
        let mut default_at: Option<String> = None;
        for mut table in tables {
            if let Some(file) = certificate(&mut table, &mut default_at, ctx) {
                out.certificates.push(file);
            }
            table.finish(ctx);
        }
    }
    if let Some(item) = section.take("acme") {
        entries += 1;
        if cfg!(all(feature = "tls", not(feature = "acme"))) {
            let message = "ACME is not in this build of spawngate (build with --features acme)";
            ctx.report(&item.key_span, &item.path, message);
        }
        if let Some(mut acme_section) = item.section(ctx) {
            out.acme = acme(&mut acme_section, ctx);
            acme_section.finish(ctx);
        }
    }
    entries
}

/// One `[[tls.certificates]]` entry; `default_at` is the path of the entry already marked default.
fn certificate(
    table: &mut Section<'_, '_>,
    default_at: &mut Option<String>,
    ctx: &mut Ctx,
) -> Option<CertificateFile> {
    let cert_item = table.require(ctx, "cert");
    let key_item = table.require(ctx, "key");
    let default = match table.take("default") {
        Some(item) => match (item.as_bool(ctx), default_at.as_deref()) {
            (Some(true), Some(first)) => {
                item.invalid(
                    ctx,
                    format!("only one certificate can be the default ({first} is)"),
                );
                false
            }
            (Some(true), None) => {
                *default_at = Some(table.path().to_string());
                true
            }
            _ => false,
        },
        None => false,
    };
    let cert_item = cert_item?;
    let key_item = key_item?;
    let cert = PathBuf::from(cert_item.text(ctx)?);
    let key = PathBuf::from(key_item.text(ctx)?);
    #[cfg(feature = "tls")]
    let loaded = match crate::tls::certs::load(&cert, &key) {
        Ok(loaded) => loaded,
        Err(error) => {
            let item = match error.which {
                crate::tls::certs::Which::Cert => &cert_item,
                crate::tls::certs::Which::Key => &key_item,
            };
            item.invalid(ctx, error.message);
            return None;
        }
    };
    Some(CertificateFile {
        cert,
        key,
        default,
        #[cfg(feature = "tls")]
        loaded,
    })
}

fn acme(section: &mut Section<'_, '_>, ctx: &mut Ctx) -> Option<AcmeConfig> {
    let email = section
        .take("email")
        .and_then(|i| i.text(ctx).map(str::to_string));
    let directory = section.require(ctx, "directory").and_then(|item| {
        let url = item.text(ctx)?;
        if url.starts_with("https://") {
            Some(url.to_string())
        } else {
            item.invalid(ctx, "must be an https:// URL (ACME runs over HTTPS)");
            None
        }
    });
    let ca_file = section
        .take("ca_file")
        .and_then(|i| i.text(ctx).map(PathBuf::from));
    let challenge = match section.take("challenge") {
        Some(item) => match item.as_str(ctx) {
            Some("http-01") => Some(AcmeChallenge::Http01),
            Some("tls-alpn-01") => Some(AcmeChallenge::TlsAlpn01),
            Some(other) => {
                let message = format!("must be \"http-01\" or \"tls-alpn-01\", found \"{other}\"");
                item.invalid(ctx, message);
                None
            }
            None => None,
        },
        None => Some(AcmeChallenge::Http01),
    };
    let storage = section
        .require(ctx, "storage")
        .and_then(|i| i.text(ctx).map(PathBuf::from));
    Some(AcmeConfig {
        email,
        directory: directory?,
        ca_file,
        challenge: challenge?,
        storage: storage?,
    })
}
