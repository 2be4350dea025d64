//! The body of `POST /containers/create` for a backend, and the ready URL a container can reach.

use std::net::SocketAddr;

use crate::config::DockerSpec;
use crate::json::quote;

/// Lets a container on a bridge network reach the host as `host.docker.internal` (Docker 20.10+), which is
/// how it finds the proxy's admin listener for the ready callback.
const HOST_GATEWAY_ENTRY: &str = "host.docker.internal:host-gateway";
const HOST_ALIAS: &str = "host.docker.internal";

/// Everything the container is created with.
#[derive(Debug, Clone)]
pub struct CreateSpec<'a> {
    pub spec: &'a DockerSpec,
    /// The container port the program listens on.
    pub port: u16,
    /// The host address that port is published at: the instance's address (`None`: not published).
    pub publish: Option<SocketAddr>,
    pub env: &'a [(String, String)],
    pub labels: &'a [(String, String)],
}

/// True when the container shares the host's network: no port publishing, and loopback is the host's.
pub fn uses_host_network(spec: &DockerSpec) -> bool {
    spec.network.as_deref() == Some("host")
}

/// The ready callback URL as seen from inside the container. The proxy announces its admin listener on
/// 127.0.0.1, which inside a bridge-networked container is the container itself, so the host part
/// becomes `host.docker.internal` (mapped to the host's gateway address by the create body). The admin
/// listener must then accept connections on that address (`admin_bind`), or only the health probe works.
pub fn container_ready_url(ready_url: &str, spec: &DockerSpec) -> String {
    if uses_host_network(spec) {
        return ready_url.to_string();
    }
    let Some(rest) = ready_url.strip_prefix("http://") else {
        return ready_url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.rfind(':') {
        Some(colon) if !authority.ends_with(']') => authority.split_at(colon),
        _ => (authority, ""),
    };
    let loopback = host == "localhost"
        || host.starts_with("127.")
        || host == "[::1]"
        || host == "0.0.0.0"
        || host == "[::]";
    if loopback {
        format!("http://{HOST_ALIAS}{port}{path}")
    } else {
        ready_url.to_string()
    }
}

pub fn create_body(create: &CreateSpec) -> String {
    let spec = create.spec;
    let port_key = quote(&format!("{}/tcp", create.port));
    let mut fields = vec![format!("\"Image\":{}", quote(&spec.image))];
    if !spec.args.is_empty() {
        // Without args the image's own CMD applies.
        fields.push(format!("\"Cmd\":{}", string_array(&spec.args)));
    }
    let env: Vec<String> = create.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    fields.push(format!("\"Env\":{}", string_array(&env)));
    fields.push(format!("\"Labels\":{}", string_map(create.labels)));
    fields.push(format!("\"ExposedPorts\":{{{port_key}:{{}}}}"));

    let mut host = Vec::new();
    if uses_host_network(spec) {
        // Published ports are meaningless (and warned about) in host mode: the backend listens directly.
    } else {
        if let Some(publish) = create.publish {
            host.push(format!(
                "\"PortBindings\":{{{port_key}:[{{\"HostIp\":{},\"HostPort\":{}}}]}}",
                quote(&publish.ip().to_string()),
                quote(&publish.port().to_string())
            ));
        }
        host.push(format!(
            "\"ExtraHosts\":{}",
            string_array(&[HOST_GATEWAY_ENTRY.to_string()])
        ));
    }
    if let Some(memory) = spec.memory {
        host.push(format!("\"Memory\":{memory}"));
    }
    if let Some(nano_cpus) = spec.nano_cpus {
        host.push(format!("\"NanoCpus\":{nano_cpus}"));
    }
    if let Some(network) = &spec.network {
        host.push(format!("\"NetworkMode\":{}", quote(network)));
    }
    fields.push(format!("\"HostConfig\":{{{}}}", host.join(",")));
    format!("{{{}}}", fields.join(","))
}

fn string_array(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(","))
}

fn string_map(pairs: &[(String, String)]) -> String {
    let members: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}:{}", quote(k), quote(v)))
        .collect();
    format!("{{{}}}", members.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PullPolicy;
    use crate::json::Json;

    fn spec() -> DockerSpec {
        DockerSpec {
            image: "app:1".into(),
            container_name: "spawngate-app".into(),
            pull_policy: PullPolicy::Never,
            memory: Some(256 << 20),
            nano_cpus: Some(500_000_000),
            network: Some("bridge".into()),
            docker_host: None,
            args: vec!["--workers".into(), "4 \"quoted\"".into()],
        }
    }

    fn body_of(spec: &DockerSpec) -> Json {
        let env = vec![("PORT".to_string(), "3000".to_string())];
        let labels = vec![("spawngate.managed".to_string(), "true".to_string())];
        let create = CreateSpec {
            spec,
            port: 3000,
            publish: Some(SocketAddr::from(([127, 0, 0, 1], 3000))),
            env: &env,
            labels: &labels,
        };
        Json::parse(create_body(&create).as_bytes()).unwrap()
    }

    #[test]
    fn the_body_carries_every_setting() {
        let body = body_of(&spec());
        assert_eq!(body.str_at("Image"), Some("app:1"));
        let cmd: Vec<&str> = body["Cmd"].iter().filter_map(Json::as_str).collect();
        assert_eq!(cmd, ["--workers", "4 \"quoted\""]);
        let env: Vec<&str> = body["Env"].iter().filter_map(Json::as_str).collect();
        assert_eq!(env, ["PORT=3000"]);
        assert_eq!(
            body.path(&["Labels", "spawngate.managed"])
                .and_then(Json::as_str),
            Some("true")
        );
        assert!(body.path(&["ExposedPorts", "3000/tcp"]).is_some());
        let binding = &body
            .path(&["HostConfig", "PortBindings", "3000/tcp"])
            .unwrap();
        let first = &binding.as_array().unwrap()[0];
        assert_eq!(first.str_at("HostIp"), Some("127.0.0.1"));
        assert_eq!(first.str_at("HostPort"), Some("3000"));
        let host = body.get("HostConfig").unwrap();
        assert_eq!(host.get("Memory").and_then(Json::as_i64), Some(256 << 20));
        assert_eq!(
            host.get("NanoCpus").and_then(Json::as_i64),
            Some(500_000_000)
        );
        assert_eq!(host.str_at("NetworkMode"), Some("bridge"));
        let extra: Vec<&str> = host["ExtraHosts"].iter().filter_map(Json::as_str).collect();
        assert_eq!(extra, [HOST_GATEWAY_ENTRY]);
    }

    #[test]
    fn optional_settings_are_left_to_docker() {
        let mut plain = spec();
        plain.args.clear();
        plain.memory = None;
        plain.nano_cpus = None;
        plain.network = None;
        let body = body_of(&plain);
        assert!(body.get("Cmd").is_none(), "the image's CMD applies");
        let host = body.get("HostConfig").unwrap();
        for key in ["Memory", "NanoCpus", "NetworkMode"] {
            assert!(host.get(key).is_none(), "{key}");
        }
        assert!(host.get("PortBindings").is_some());
    }

    #[test]
    fn the_container_port_is_published_at_the_instance_address() {
        let env = Vec::new();
        let create = CreateSpec {
            spec: &spec(),
            port: 3000,
            publish: Some(SocketAddr::from(([127, 0, 0, 1], 4001))),
            env: &env,
            labels: &[],
        };
        let body = Json::parse(create_body(&create).as_bytes()).unwrap();
        assert!(body.path(&["ExposedPorts", "3000/tcp"]).is_some());
        let binding = body
            .path(&["HostConfig", "PortBindings", "3000/tcp"])
            .and_then(Json::as_array)
            .unwrap();
        assert_eq!(binding[0].str_at("HostIp"), Some("127.0.0.1"));
        assert_eq!(binding[0].str_at("HostPort"), Some("4001"));
        let unpublished = CreateSpec {
            publish: None,
            ..create
        };
        let body = Json::parse(create_body(&unpublished).as_bytes()).unwrap();
        assert!(body.path(&["HostConfig", "PortBindings"]).is_none());
    }

    #[test]
    fn host_networking_publishes_nothing() {
        let mut shared = spec();
        shared.network = Some("host".into());
        let host = body_of(&shared).get("HostConfig").cloned().unwrap();
        assert!(host.get("PortBindings").is_none());
        assert!(host.get("ExtraHosts").is_none());
        assert_eq!(host.str_at("NetworkMode"), Some("host"));
    }

    #[test]
    fn the_ready_url_points_a_container_at_the_host() {
        let bridge = spec();
        let url = "http://127.0.0.1:9999/ready/app.localhost";
        assert_eq!(
            container_ready_url(url, &bridge),
            "http://host.docker.internal:9999/ready/app.localhost"
        );
        assert_eq!(
            container_ready_url("http://[::1]:7/ready/x", &bridge),
            "http://host.docker.internal:7/ready/x"
        );
        let routed = "http://172.17.0.1:9999/ready/x";
        assert_eq!(container_ready_url(routed, &bridge), routed);
        let mut shared = spec();
        shared.network = Some("host".into());
        assert_eq!(container_ready_url(url, &shared), url);
        assert_eq!(container_ready_url("weird", &bridge), "weird");
    }

    impl std::ops::Index<&str> for Json {
        type Output = [Json];
        fn index(&self, key: &str) -> &[Json] {
            self.get(key).and_then(Json::as_array).unwrap_or(&[])
        }
    }
}
