//! instant-acme's `HttpClient` over the ureq the Docker client already links, instead of its hyper
//! client: the same ACME with 0.6 MiB less in the static binary (shared/design/tls.md, 2.1).
//!
//! Which CAs the directory's HTTPS trusts: with `ca_file`, that file only (a private CA, Pebble);
//! otherwise the system store, as for backends over TLS (`tls::backend::load_roots`). Not roots compiled
//! in: the system's are kept current by its package manager, and they cost the static binary 60 KiB. The
//! release image is `FROM scratch`, so there the host's bundle is mounted (README, HTTPS) or `ca_file`
//! given; without either the proxy does not start and says why. The ring provider is passed
//! explicitly, like everywhere else, never installed process-wide.
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
    // The same roots backends over TLS are verified with: `ca_file`, else the system store.
    let (_, roots) = crate::tls::backend::load_roots(ca_file)
        .map_err(|e| format!("ACME: the CA's HTTPS cannot be verified: {e}"))?;
    let certs: Vec<Certificate<'static>> = (roots.iter())
        .map(|der| Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    let roots = RootCerts::new_with_certs(&certs);
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
