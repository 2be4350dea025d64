//! Reading one certificate and its key from PEM files and checking them, so a bad pair is caught when
//! the config is loaded (`spawngate check`, a reload that keeps the old config) rather than at the first
//! handshake.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;

use super::der;

/// A certificate chain with its key, checked to belong together, and what the store needs to know of it.
#[derive(Clone)]
pub struct Certificate {
    pub key: Arc<CertifiedKey>,
    /// DNS names it is valid for (lower-case, `*.` for a wildcard), each confirmed by webpki.
    pub names: Vec<String>,
    /// `notAfter` of the leaf, Unix seconds.
    pub not_after: i64,
    /// Names the certificate lists that webpki would not accept (so never routed to it).
    pub unusable_names: Vec<String>,
}

impl fmt::Debug for Certificate {
    /// The names and expiry; never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("names", &self.names)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// Which file of the pair a problem is about (the config error goes to that key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Cert,
    Key,
}

/// Why a pair could not be loaded; the message names the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub which: Which,
    pub message: String,
}

/// Largest PEM file read: a chain of a few certificates is a few KiB; the bound keeps a wrong path (a
/// log) from being read into memory.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// Loads the chain in `cert` (leaf first) and the private key in `key` (PKCS#8, PKCS#1 or SEC1).
pub fn load(cert: &Path, key: &Path) -> Result<Certificate, LoadError> {
    let cert_error = |message: String| LoadError {
        which: Which::Cert,
        message,
    };
    let key_error = |message: String| LoadError {
        which: Which::Key,
        message,
    };
    let provider = super::provider();

    let chain = read_pem(cert).map_err(cert_error)?;
    let chain = CertificateDer::pem_slice_iter(&chain)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(format!("\"{}\": not a PEM file: {e}", cert.display())))?;
    let Some(leaf) = chain.first() else {
        let message = format!(
            "\"{}\" holds no certificate (BEGIN CERTIFICATE)",
            cert.display()
        );
        return Err(cert_error(message));
    };
    let facts = der::cert_facts(leaf)
        .map_err(|why| cert_error(format!("\"{}\": {why}", cert.display())))?;
    let parsed = ParsedCertificate::try_from(leaf)
        .map_err(|e| cert_error(format!("\"{}\": {e}", cert.display())))?;
    let (names, unusable_names) = confirm_names(&parsed, facts.dns_names);

    let pem = read_pem(key).map_err(key_error)?;
    let private = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        key_error(match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                format!(
                    "\"{}\" holds no private key (BEGIN PRIVATE KEY)",
                    key.display()
                )
            }
            e => format!("\"{}\": not a PEM file: {e}", key.display()),
        })
    })?;
    let signing = provider
        .key_provider
        .load_private_key(private)
        .map_err(|e| key_error(format!("\"{}\": unusable key: {e}", key.display())))?;
    let certified = CertifiedKey::new(chain, signing);
    // Every key type ring loads can name its public key, so "cannot tell" is refused too.
    if certified.keys_match().is_err() {
        return Err(key_error(format!(
            "the key in \"{}\" does not belong to the certificate in \"{}\"",
            key.display(),
            cert.display()
        )));
    }
    Ok(Certificate {
        key: Arc::new(certified),
        names,
        not_after: facts.not_after,
        unusable_names,
    })
}

/// Splits the listed names into those webpki agrees the certificate covers and the rest. A wildcard is
/// checked with a name one label under it.
fn confirm_names(cert: &ParsedCertificate<'_>, listed: Vec<String>) -> (Vec<String>, Vec<String>) {
    let mut names = Vec::with_capacity(listed.len());
    let mut unusable = Vec::new();
    for name in listed {
        let probe = match name.strip_prefix("*.") {
            Some(parent) => format!("wildcard-probe.{parent}"),
            None => name.clone(),
        };
        let covered = ServerName::try_from(probe.as_str()).is_ok_and(|server_name| {
            rustls::client::verify_server_name(cert, &server_name).is_ok()
        });
        if covered && !names.contains(&name) {
            names.push(name);
        } else if !covered {
            unusable.push(name);
        }
    }
    (names, unusable)
}

/// The file's bytes, or why not (naming it). Only a regular file is read: a FIFO would block the load,
/// and a reload runs on the reactor.
pub(crate) fn read_pem(path: &Path) -> Result<Vec<u8>, String> {
    let cannot = |e: std::io::Error| format!("cannot read \"{}\": {e}", path.display());
    if !std::fs::metadata(path).map_err(cannot)?.is_file() {
        return Err(format!("\"{}\" is not a regular file", path.display()));
    }
    let mut bytes = Vec::new();
    File::open(path)
        .map_err(cannot)?
        .take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(format!(
            "\"{}\" is larger than {MAX_PEM_BYTES} bytes; is this a PEM file?",
            path.display()
        ));
    }
    Ok(bytes)
}
