//! The TLS-ALPN-01 answer (RFC 8737): a self-signed certificate for the one name, with the critical
//! `id-pe-acmeIdentifier` extension holding the SHA-256 of the key authorization, made ready for
//! rustls so the reactor's ClientHello hook can hand it out as it is.

use std::sync::Arc;

use rcgen_acme::{CertificateParams, CustomExtension, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

/// The certificate and key to present for `name`; `digest` is `KeyAuthorization::digest()`.
pub fn answer(name: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, String> {
    let fail = |e: rcgen_acme::Error| format!("TLS-ALPN-01 certificate for {name}: {e}");
    let mut params = CertificateParams::new(vec![name.to_string()]).map_err(fail)?;
    params
        .custom_extensions
        .push(CustomExtension::new_acme_identifier(digest));
    let key = KeyPair::generate().map_err(fail)?;
    let cert = params.self_signed(&key).map_err(fail)?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing_key = crate::tls::provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| format!("TLS-ALPN-01 key for {name}: {e}"))?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signing_key,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_covers_the_name_and_carries_the_digest() {
        let digest = [7u8; 32];
        let key = answer("demo.spawngate.test", &digest).expect("answer");
        let der = key.end_entity_cert().expect("leaf").as_ref().to_vec();
        let facts = crate::tls::der::cert_facts(&der).expect("parse");
        assert_eq!(facts.dns_names, ["demo.spawngate.test"]);
        // id-pe-acmeIdentifier (1.3.6.1.5.5.7.1.31), then critical, then OCTET STRING { OCTET STRING
        // of the 32-byte digest }.
        let oid = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x1f];
        let at = der
            .windows(oid.len())
            .position(|w| w == oid)
            .expect("extension");
        let rest = &der[at + oid.len()..];
        assert_eq!(&rest[..3], [0x01, 0x01, 0xff], "critical");
        assert_eq!(&rest[3..7], [0x04, 34, 0x04, 32]);
        assert_eq!(&rest[7..39], digest);
    }
}
