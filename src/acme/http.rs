//! instant-acme's `HttpClient` over the ureq the Docker client already links, instead of its hyper
//! client: the same ACME with 0.6 MiB less in the static binary (shared/design/tls.md, 2.1).
//!
//! Which CAs the directory's HTTPS trusts: with `ca_file`, that file only (a private CA, Pebble);
//! otherwise the Mozilla roots compiled in (`webpki-roots`). Not the system store: the release image
//! is `FROM scratch`, which has no `/etc/ssl`, and a static binary that silently cannot reach Let's
//! Encrypt there would be worse than one carrying ~150 roots. The ring provider is passed explicitly,
//! like everywhere else, never installed process-wide.
//!
//! ureq blocks; the future does its work when first polled, on the ACME thread, which does nothing
//! else meanwhile. Each call is bounded by [`TIMEOUT`], so a shutdown waits at most that long.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use instant_acme::{BodyWrapper, BytesResponse, Error, HttpClient};
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::Agent;

/// One request to the CA, from connecting to the last byte of the answer.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer read: a directory, an order or a chain is a few KiB.
const MAX_BODY: u64 = 1 << 20;

/// The ACME HTTP client; `ca_file` as in `[tls.acme]`.
pub fn client(ca_file: Option<&Path>) -> Result<Box<dyn HttpClient>, String> {
    let roots = match ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("ca_file \"{}\": cannot read: {e}", path.display()))?;
            let certs = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(cert)) => Some(Ok(cert)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<Vec<Certificate<'static>>, _>>()
                .map_err(|e| format!("ca_file \"{}\": not PEM: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "ca_file \"{}\" holds no certificate (BEGIN CERTIFICATE)",
                    path.display()
                ));
            }
            RootCerts::new_with_certs(&certs)
        }
        None => RootCerts::WebPki,
    };
    let tls = TlsConfig::builder()
        .root_certs(roots)
        .unversioned_rustls_crypto_provider(crate::tls::provider())
        .build();
    let agent: Agent = Agent::config_builder()
        .tls_config(tls)
        // ACME errors are JSON problem documents that instant-acme reads, not transport errors.
        .http_status_as_error(false)
        // Every ACME URL is https (the config checks the directory; the CA names the rest): a
        // plain-HTTP link from a broken or hostile directory is refused, not followed.
        .https_only(true)
        .timeout_global(Some(TIMEOUT))
        .user_agent(concat!("spawngate/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    Ok(Box::new(UreqClient { agent }))
}

struct UreqClient {
    agent: Agent,
}

impl HttpClient for UreqClient {
    fn request(
        &self,
        request: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, Error>> + Send>> {
        let agent = self.agent.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            // Infallible: the body is bytes instant-acme already holds.
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(never) => match never {},
            };
            // GET and HEAD (directory, new nonce) carry no body, and ureq refuses one on them.
            let response = if body.is_empty() {
                agent.run(Request::from_parts(parts, ()))
            } else {
                agent.run(Request::from_parts(parts, body.to_vec()))
            };
            let response = response.map_err(|e| Error::Other(Box::new(e)))?;
            let (parts, mut body) = response.into_parts();
            let bytes = body
                .with_config()
                .limit(MAX_BODY)
                .read_to_vec()
                .map_err(|e| Error::Other(Box::new(e)))?;
            Ok(BytesResponse::from(Response::from_parts(
                parts,
                Full::new(Bytes::from(bytes)),
            )))
        })
    }
}
