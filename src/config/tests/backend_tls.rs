//! `address = "https://..."` with `ca_file` and `tls_server_name`: what a `tls` build reads and refuses
//! (each at its line and key), and the error a build without the feature gives.

use super::{assert_error, errors, single_error};

#[cfg(not(feature = "tls"))]
#[test]
fn a_build_without_tls_names_the_line_and_the_feature() {
    single_error(
        "[pools.api]\naddress = \"https://127.0.0.1:8443\"\n",
        2,
        "pools.api.address",
        "build with --features tls",
    );
}

#[test]
fn an_unknown_scheme_is_refused() {
    single_error(
        "[pools.api]\naddress = \"ftp://127.0.0.1:21\"\n",
        2,
        "pools.api.address",
        "\"ftp://\"",
    );
}

#[test]
fn an_address_of_the_wrong_type_is_reported_once() {
    let found = errors("[pools.api]\naddress = 8443\nca_file = \"ca.pem\"\n");
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_error(&found, 2, "pools.api.address", "must be a string");
    assert_error(&found, 3, "pools.api.ca_file", "https://");
}

#[test]
fn tls_keys_belong_to_an_https_address_only() {
    let found = errors(
        "[pools.api]\naddress = \"127.0.0.1:8080\"\nca_file = \"ca.pem\"\ntls_server_name = \"api\"\n",
    );
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_error(&found, 3, "pools.api.ca_file", "https://");
    assert_error(&found, 4, "pools.api.tls_server_name", "https://");
}

#[cfg(feature = "tls")]
mod with_tls {
    use std::sync::Arc;

    use rustls::pki_types::ServerName;

    use super::super::ok;
    use super::{assert_error, errors, single_error};
    use crate::tls::backend::TlsTarget;
    use crate::tls::tests::pki::{Ca, TempDir};
    use crate::upstream::UpstreamAddr;

    fn pool(address: &str, extra: &str) -> String {
        format!("[pools.api]\naddress = \"{address}\"\n{extra}\n")
    }

    fn target(text: &str) -> Arc<TlsTarget> {
        let config = ok(text);
        let pool = config.backends[0].pool.as_ref().unwrap();
        match &pool.instances[0].addr {
            UpstreamAddr::Tls(target) => target.clone(),
            other => panic!("not a TLS address: {other:?}"),
        }
    }

    #[test]
    fn an_https_address_reads_its_ca_file_and_its_name() {
        let ca = Ca::new();
        let dir = TempDir::new();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let keys = format!("ca_file = \"{}\"", ca_file.display());

        let by_ip = target(&pool("https://127.0.0.1:8443", &keys));
        assert_eq!(by_ip.addr, "127.0.0.1:8443".parse().unwrap());
        assert_eq!(by_ip.name(), "127.0.0.1", "an IP is verified as one");
        assert_eq!(by_ip.roots_from, ca_file);

        let named = format!("{keys}\ntls_server_name = \"api.internal\"");
        let v6 = target(&pool("https://[::1]", &named));
        assert_eq!(v6.addr, "[::1]:443".parse().unwrap(), "443 by default");
        assert_eq!(
            v6.server_name,
            ServerName::try_from("api.internal").unwrap()
        );
        assert_eq!(
            v6,
            target(&pool("https://[::1]:443", &named)),
            "a reload of the same file is no change"
        );

        std::fs::write(&ca_file, Ca::new().pem()).unwrap();
        assert_ne!(
            v6,
            target(&pool("https://[::1]:443", &named)),
            "a reload re-reads the CA file"
        );
    }

    #[test]
    fn a_ca_file_that_is_missing_or_holds_no_certificate_is_refused_at_its_key() {
        let dir = TempDir::new();
        let missing = dir.path().join("missing.pem");
        let text = pool(
            "https://127.0.0.1:8443",
            &format!("ca_file = \"{}\"", missing.display()),
        );
        single_error(&text, 3, "pools.api.ca_file", "missing.pem");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let text = pool(
            "https://127.0.0.1:8443",
            &format!("ca_file = \"{}\"", empty.display()),
        );
        single_error(&text, 3, "pools.api.ca_file", "holds no certificate");
    }

    #[test]
    fn a_bad_address_or_name_is_refused_at_its_key() {
        for bad in [
            "https://127.0.0.1:0",
            "https://h:1/path",
            "https://[::1",
            "https://",
        ] {
            let found = errors(&pool(bad, "ca_file = \"unused.pem\""));
            assert_error(&found, 2, "pools.api.address", "https://");
        }
        let found = errors(&pool(
            "https://127.0.0.1:8443",
            "tls_server_name = \"not a name!\"",
        ));
        assert_error(&found, 3, "pools.api.tls_server_name", "not a DNS name");
    }
}
