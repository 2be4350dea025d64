"""The benchmark's servers: configs rendered from templates/ into a scratch directory, then started.

Layout of the scratch directory:
  backend/            the shared nginx backend (config, big.bin under www/)
  spawngate/          Spawngate's config and log
  nginx-proxy/        nginx as proxy
  haproxy/            HAProxy
  tls/                the certificate all three serve over HTTPS, and the clients' OpenSSL settings
  cold-<probe>ms/     a Spawngate with stopped backends cold0..N, each with a backend dir of its own
"""

import os
import re
import shutil
import subprocess

import procs
import tls

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = os.path.join(HERE, "templates")

BENCH_HOST = "bench.localhost"
# The WebSocket echo backend (spawngate-echo's /ws), routed by this Host by all three proxies.
WS_HOST = "ws.localhost"
BIG_PATH = "/big.bin"
BIG_BYTES = 1024 * 1024
# A small file the backend answers at a limited rate, so that requests sent at once wait there together.
HELD_PATH = "/held.txt"
# Idle backend connections each proxy may keep: the keep-alive run has 64 clients.
POOL = 64
START_TIMEOUT_S = 20


def render(template, values, dest):
    with open(os.path.join(TEMPLATES, template)) as f:
        text = f.read()
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    leftover = re.findall(r"@[A-Z0-9_]+@", text)
    if leftover:
        raise RuntimeError(f"{template}: unfilled placeholders {leftover}")
    if dest is not None:
        with open(dest, "w") as f:
            f.write(text)
    return text


def backend_dir(root, name, port):
    """Writes one nginx backend config under root/name; returns (dir, argv that runs it)."""
    path = os.path.join(root, name)
    www = os.path.join(root, "www")
    os.makedirs(path, exist_ok=True)
    render("backend-nginx.conf", {"DIR": path, "PORT": port, "WWW": www},
           os.path.join(path, "nginx.conf"))
    nginx = shutil.which("nginx")
    argv = [nginx, "-p", path, "-e", os.path.join(path, "error.log"), "-c",
            os.path.join(path, "nginx.conf")]
    return path, argv


def make_www(root):
    www = os.path.join(root, "www")
    os.makedirs(www, exist_ok=True)
    # nginx workers of the proxy run as an unprivileged user; the backend runs as whoever runs this.
    os.chmod(root, 0o755)
    os.chmod(www, 0o755)
    with open(os.path.join(www, BIG_PATH.lstrip("/")), "wb") as f:
        f.write(bytes(i % 251 for i in range(BIG_BYTES)))
    with open(os.path.join(www, HELD_PATH.lstrip("/")), "w") as f:
        f.write("held back, then served\n")


class Proxy:
    """One proxy under test: where it listens for HTTP/1.1, h2c and HTTPS (None: no HTTPS listener),
    the server behind it, and the environment its TLS clients run with."""

    def __init__(self, name, server, port, h2_port, backend_port, https_port=None, certificate=None):
        self.name = name
        self.server = server
        self.port = port
        self.h2_port = h2_port
        self.backend_port = backend_port
        self.https_port = https_port
        self.tls_env = tls.client_env(certificate) if https_port is not None else None

    def pids(self):
        return self.server.pids()


def echo_binary(binary):
    """spawngate-echo, built beside the proxy (run.sh builds both)."""
    echo = os.environ.get("SPAWNGATE_ECHO_BIN") or os.path.join(os.path.dirname(binary), "spawngate-echo")
    if not os.access(echo, os.X_OK):
        raise RuntimeError(f"{echo} is missing: build it with cargo build --release --bins")
    return echo


def has_tls(binary):
    """Whether the build serves HTTPS: `--version` lists the compiled features."""
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    features = done.stdout.partition("features:")[2]
    return "tls" in re.findall(r"[a-z0-9_]+", features)


def start_spawngate(root, binary, backend_port, ws_port, port, admin_port, https_port, certificate):
    """`https_port` None: no HTTPS listener (a build without the `tls` feature)."""
    path = os.path.join(root, "spawngate")
    os.makedirs(path, exist_ok=True)
    backend_path, _ = backend_dir(root, "backend", backend_port)
    config = os.path.join(path, "spawngate.toml")
    https_line, tls_section = "# no HTTPS: built without the tls feature", ""
    if https_port is not None:
        https_line = f"https_port = {https_port}"
        tls_section = render("spawngate-tls.toml", {"CERT": certificate.cert, "KEY": certificate.key},
                             None)
    render("spawngate.toml", {
        "PORT": port, "ADMIN_PORT": admin_port, "POOL": POOL, "NGINX": shutil.which("nginx"),
        "DIR": backend_path, "BACKEND_PORT": backend_port, "ECHO": echo_binary(binary),
        "WS_PORT": ws_port, "HTTPS_PORT_LINE": https_line, "TLS_SECTION": tls_section,
    }, config)
    server = procs.Server("spawngate", [binary, config], os.path.join(path, "spawngate.log"))
    procs.wait_http_ok(admin_port, "127.0.0.1", START_TIMEOUT_S, path="/health")
    return Proxy("Spawngate", server, port, port, backend_port, https_port, certificate)


def start_backend_through(proxy):
    """The shared backend is Spawngate's on-demand backend: the first request starts it."""
    procs.wait_http_ok(proxy.port, BENCH_HOST, START_TIMEOUT_S)
    procs.wait_http_ok(proxy.port, WS_HOST, START_TIMEOUT_S)


def start_nginx_proxy(root, backend_port, ws_port, port, h2_port, https_port, certificate):
    path = os.path.join(root, "nginx-proxy")
    os.makedirs(path, exist_ok=True)
    config = os.path.join(path, "nginx.conf")
    render("proxy-nginx.conf", {
        "DIR": path, "PORT": port, "H2_PORT": h2_port, "BACKEND_PORT": backend_port, "POOL": POOL,
        "WS_PORT": ws_port, "HTTPS_PORT": https_port, "CERT": certificate.cert, "KEY": certificate.key,
        "CIPHER": tls.CIPHER, "GROUP": tls.GROUP,
    }, config)
    argv = [shutil.which("nginx"), "-p", path, "-e", os.path.join(path, "error.log"), "-c", config]
    server = procs.Server("nginx", argv, os.path.join(path, "stdout.log"), count_children=True)
    procs.wait_http_ok(port, BENCH_HOST, START_TIMEOUT_S)
    return Proxy("nginx", server, port, h2_port, backend_port, https_port, certificate)


def start_haproxy(root, backend_port, ws_port, port, h2_port, https_port, certificate):
    path = os.path.join(root, "haproxy")
    os.makedirs(path, exist_ok=True)
    config = os.path.join(path, "haproxy.cfg")
    render("haproxy.cfg", {
        "DIR": path, "PORT": port, "H2_PORT": h2_port, "BACKEND_PORT": backend_port,
        "WS_PORT": ws_port, "HTTPS_PORT": https_port, "CERT_AND_KEY": certificate.combined,
        "CIPHER": tls.CIPHER, "GROUP": tls.GROUP,
    }, config)
    argv = [shutil.which("haproxy"), "-db", "-f", config]
    server = procs.Server("haproxy", argv, os.path.join(path, "haproxy.log"))
    procs.wait_http_ok(port, BENCH_HOST, START_TIMEOUT_S)
    return Proxy("HAProxy", server, port, h2_port, backend_port, https_port, certificate)


class ColdSet:
    """A Spawngate whose backends cold0..N-1 are all stopped, and how to start each one directly."""

    def __init__(self, server, port, hosts, backend_ports, direct_argv):
        self.server = server
        self.port = port
        self.hosts = hosts
        self.backend_ports = backend_ports
        self.direct_argv = direct_argv


def start_cold_set(root, binary, count, probe_ms, ports):
    """`ports` holds the proxy port, the admin port and one port per backend."""
    port, admin_port, backend_ports = ports[0], ports[1], ports[2:2 + count]
    path = os.path.join(root, f"cold-{probe_ms}ms")
    os.makedirs(path, exist_ok=True)
    text = render("spawngate-cold.toml", {
        "COUNT": count, "PORT": port, "ADMIN_PORT": admin_port, "PROBE_MS": probe_ms,
    }, None)
    hosts, argvs = [], []
    for i, backend_port in enumerate(backend_ports):
        host = f"cold{i}.localhost"
        dir_i, argv = backend_dir(path, f"backend{i}", backend_port)
        text += render("spawngate-cold-backend.toml", {
            "HOST": host, "NGINX": shutil.which("nginx"), "DIR": dir_i, "BACKEND_PORT": backend_port,
        }, None)
        hosts.append(host)
        argvs.append(argv)
    config = os.path.join(path, "spawngate.toml")
    with open(config, "w") as f:
        f.write(text)
    server = procs.Server(f"spawngate-cold-{probe_ms}ms", [binary, config],
                          os.path.join(path, "spawngate.log"))
    procs.wait_http_ok(admin_port, "127.0.0.1", START_TIMEOUT_S, path="/health")
    return ColdSet(server, port, hosts, backend_ports, argvs)
