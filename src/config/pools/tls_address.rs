//! `address = "https://host:port"`: an instance someone else runs, reached over TLS (feature `tls`), with
//! its optional `ca_file` and `tls_server_name`. Everything is checked now (the address resolves, the CA
//! file is read and holds certificates, the name is one a certificate can carry), so a mistake is a config
//! error at its line and a reload re-reads the CA file. Without the feature, the address says which build
//! it needs.

use super::instances::TlsKeys;
use crate::config::reader::{Ctx, Item};
use crate::upstream::UpstreamAddr;

/// The port of an `https://` address that names none.
#[cfg(feature = "tls")]
const HTTPS_PORT: u16 = 443;

/// `rest` is what follows `https://` in the address `item`.
#[cfg(not(feature = "tls"))]
pub(super) fn read(
    item: &Item<'_, '_>,
    _rest: &str,
    _tls: &TlsKeys<'_, '_>,
    ctx: &mut Ctx,
) -> Option<UpstreamAddr> {
    let message =
        "backends over TLS are not in this build of spawngate (build with --features tls)";
    item.invalid(ctx, message);
    None
}

/// `rest` is what follows `https://` in the address `item`.
#[cfg(feature = "tls")]
pub(super) fn read(
    item: &Item<'_, '_>,
    rest: &str,
    tls: &TlsKeys<'_, '_>,
    ctx: &mut Ctx,
) -> Option<UpstreamAddr> {
    use std::net::ToSocketAddrs;
    use std::path::PathBuf;
    use std::sync::Arc;

    use rustls::pki_types::ServerName;

    use crate::tls::backend::{load_roots, TlsTarget};

    let (host, port) = match split_host_port(rest) {
        Ok(parts) => parts,
        Err(why) => {
            item.invalid(ctx, why);
            return None;
        }
    };
    let addr = match (host, port).to_socket_addrs() {
        Ok(mut addrs) => addrs.next(),
        Err(_) => None,
    };
    let Some(addr) = addr else {
        item.invalid(ctx, format!("\"{host}\" does not resolve"));
        return None;
    };
    let name = match &tls.server_name {
        Some(given) => {
            let text = given.text(ctx)?;
            match ServerName::try_from(text) {
                Ok(name) => name.to_owned(),
                Err(_) => {
                    given.invalid(
                        ctx,
                        format!("\"{text}\" is not a DNS name or an IP address"),
                    );
                    return None;
                }
            }
        }
        None => match ServerName::try_from(host) {
            Ok(name) => name.to_owned(),
            Err(_) => {
                let message =
                    format!("\"{host}\" cannot be verified in a certificate; set tls_server_name");
                item.invalid(ctx, message);
                return None;
            }
        },
    };
    let ca_file = match &tls.ca_file {
        Some(given) => Some(PathBuf::from(given.text(ctx)?)),
        None => None,
    };
    // A problem with the roots is the `ca_file` key's when one is given, else the address's.
    let blame = tls.ca_file.as_ref().unwrap_or(item);
    let (from, roots) = match load_roots(ca_file.as_deref()) {
        Ok(loaded) => loaded,
        Err(why) => {
            blame.invalid(ctx, why);
            return None;
        }
    };
    match TlsTarget::new(addr, name, from, roots) {
        Ok(target) => Some(UpstreamAddr::Tls(Arc::new(target))),
        Err(why) => {
            blame.invalid(ctx, why);
            None
        }
    }
}

/// `host:port`, `host` (port 443), `[v6]:port` or `[v6]`; the host without its brackets.
#[cfg(feature = "tls")]
fn split_host_port(rest: &str) -> Result<(&str, u16), String> {
    let shape = || format!("\"https://{rest}\" is not https://host:port (nor https://[v6]:port)");
    if rest.contains('/') {
        return Err(format!(
            "\"https://{rest}\": an address has no path (https://host:port)"
        ));
    }
    let (host, port) = match rest.strip_prefix('[') {
        Some(bracketed) => {
            let (v6, after) = bracketed.split_once(']').ok_or_else(shape)?;
            if v6.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(shape());
            }
            match after {
                "" => (v6, None),
                _ => (v6, Some(after.strip_prefix(':').ok_or_else(shape)?)),
            }
        }
        None => match rest.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, Some(port)),
            Some(_) => return Err(shape()),
            None => (rest, None),
        },
    };
    if host.is_empty() {
        return Err(shape());
    }
    let port = match port {
        None => HTTPS_PORT,
        Some(port) => match port.parse::<u16>() {
            Ok(0) | Err(_) => return Err(shape()),
            Ok(port) => port,
        },
    };
    Ok((host, port))
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use super::split_host_port;

    #[test]
    fn hosts_and_ports_are_split_like_a_url() {
        assert_eq!(
            split_host_port("api.internal:8443"),
            Ok(("api.internal", 8443))
        );
        assert_eq!(split_host_port("api.internal"), Ok(("api.internal", 443)));
        assert_eq!(split_host_port("[::1]:8443"), Ok(("::1", 8443)));
        assert_eq!(split_host_port("[::1]"), Ok(("::1", 443)));
        for bad in [
            "::1:443", "[::1", "[zz]:1", "h:0", "h:x", ":443", "h:1/path", "[::1]x",
        ] {
            assert!(split_host_port(bad).is_err(), "{bad}");
        }
    }
}
